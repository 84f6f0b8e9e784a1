/* lens from several threads at once: producers on four threads and a reader on a fifth, in one
 * process, so that ThreadSanitizer can watch the locks, the payloads and the counters. */
/* ctest: labels=unit;tsan timeout=180 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#include "shk_test_thread.h"

#define PRODUCERS 4
#define ZONES_EACH 5000

typedef struct shared {
  shk_lens *lens;
  shk_lens_reader *reader;
  atomic_int producers_left;
  uint64_t zones, frames, per_thread[PRODUCERS];
  const char *names[PRODUCERS];
  int bad_names;
} shared;

typedef struct producer_arg {
  shared *s;
  int index;
} producer_arg;

static void produce(void *arg) {
  producer_arg *a = arg;
  static const char *const thread_names[PRODUCERS] = {"t0", "t1", "t2", "t3"};
  shk_lens_thread_name(a->s->lens, thread_names[a->index]);
  for (int i = 0; i < ZONES_EACH; i++) {
    shk_lens_zone outer, inner;
    shk_lens_zone_begin(a->s->lens, &outer, "outer", 0);
    shk_lens_zone_begin(a->s->lens, &inner, "inner", 0);
    shk_lens_zone_end(&inner);
    shk_lens_zone_end(&outer);
    if (i % 100 == 0) shk_lens_frame(a->s->lens);
  }
  atomic_fetch_sub(&a->s->producers_left, 1);
}

static void on_event(const shk_lens_event *e, void *user) {
  shared *s = user;
  if (e->kind == SHK_LENS_FRAME) s->frames++;
  if (e->kind != SHK_LENS_ZONE) return;
  s->zones++;
  if (e->thread[0] == 't' && e->thread[1] >= '0' && e->thread[1] < '0' + PRODUCERS)
    s->per_thread[e->thread[1] - '0']++;
  else
    s->bad_names++;
  if (strcmp(e->name, "outer") != 0 && strcmp(e->name, "inner") != 0) s->bad_names++;
}

static void read_all(void *arg) {
  shared *s = arg;
  while (atomic_load(&s->producers_left) > 0)
    shk_lens_reader_poll(s->reader, 10000000u, on_event, s, NULL);
  size_t n;
  do shk_lens_reader_drain(s->reader, on_event, s, &n); /* a few thousand per call */
  while (n > 0);
}


static void threads_share_one_lens_and_every_zone_is_accounted_for(void **state) {
  (void)state;
  static shared s;
  memset(&s, 0, sizeof s);
  char name[64];
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.full_wait_ns = 50000000u;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "mt"), &o, &s.lens), SHK_OK);
  assert_int_equal(shk_lens_reader_open(name, NULL, &s.reader), SHK_OK);
  atomic_store(&s.producers_left, PRODUCERS);
  shk_test_thread reader, producers[PRODUCERS];
  producer_arg args[PRODUCERS];
  assert_int_equal(shk_test_thread_start(&reader, read_all, &s), 0);
  for (int i = 0; i < PRODUCERS; i++) {
    args[i].s = &s;
    args[i].index = i;
    assert_int_equal(shk_test_thread_start(&producers[i], produce, &args[i]), 0);
  }
  for (int i = 0; i < PRODUCERS; i++) shk_test_thread_join(&producers[i]);
  shk_test_thread_join(&reader);
  shk_lens_stats st;
  assert_int_equal(shk_lens_stats_get(s.lens, &st), SHK_OK);
  uint64_t sent = 2ull * PRODUCERS * ZONES_EACH;
  shk_lens_stats rs;
  assert_int_equal(shk_lens_reader_stats(s.reader, &rs), SHK_OK);
  print_message("zones: %llu received, %llu dropped, %llu malformed; %llu written, %llu drained\n",
                (unsigned long long)s.zones, (unsigned long long)st.segment[SHK_LENS_ZONE].dropped,
                (unsigned long long)rs.malformed[SHK_LENS_ZONE],
                (unsigned long long)st.segment[SHK_LENS_ZONE].written,
                (unsigned long long)st.segment[SHK_LENS_ZONE].drained);
  assert_int_equal(st.sent[SHK_LENS_ZONE], sent);
  assert_int_equal(s.zones + st.segment[SHK_LENS_ZONE].dropped, sent);
  assert_int_equal(s.frames + st.segment[SHK_LENS_FRAME].dropped, PRODUCERS * (ZONES_EACH / 100));
  assert_int_equal(s.bad_names, 0);
  assert_int_equal(st.segment[SHK_LENS_ZONE].written, st.segment[SHK_LENS_ZONE].drained);
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) assert_int_equal(rs.malformed[k], 0);
  /* Exact per thread: each producing thread's ring counts what it wrote and dropped. */
  shk_lens_thread_info info[PRODUCERS + 1];
  size_t count = 0;
  assert_int_equal(shk_lens_reader_threads(s.reader, info, PRODUCERS + 1, &count), SHK_OK);
  assert_int_equal(count, PRODUCERS);
  for (size_t i = 0; i < count; i++) {
    const shk_lens_counters *z = &info[i].counters[SHK_LENS_ZONE];
    int index = info[i].name[1] - '0';
    assert_true(index >= 0 && index < PRODUCERS);
    assert_int_equal(z->written + z->dropped, 2ull * ZONES_EACH);
    assert_int_equal(z->drained, z->written);
    assert_int_equal(z->drained, s.per_thread[index]);
    assert_false(info[i].implausible);
  }
  shk_lens_reader_close(s.reader);
  shk_lens_close(s.lens);
}

/* ---- threads that end give their ring back ---- */

#define SHORT_RINGS 4
#define SHORT_THREADS 40 /* ten times the rings */
#define SHORT_ZONES 10

static void short_lived(void *arg) {
  shk_lens *lens = arg;
  for (int i = 0; i < SHORT_ZONES; i++) {
    shk_lens_zone z;
    shk_lens_zone_begin(lens, &z, "short", 0);
    shk_lens_zone_end(&z);
  }
}

static void count_zone(const shk_lens_event *e, void *user) {
  if (e->kind == SHK_LENS_ZONE) (*(uint64_t *)user)++;
}

/* Threads start, send a few zones and end, one after another, many more of them than rings: each
 * ended thread's ring is drained, acknowledged and taken by the next thread, and nothing is
 * dropped for want of a ring. */
static void more_short_lived_threads_than_rings_lose_nothing(void **state) {
  (void)state;
  char name[64];
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.max_threads = SHORT_RINGS;
  o.ring_bytes = 8 * 1024;
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "sl"), &o, &lens), SHK_OK);
  shk_lens_reader *reader = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &reader), SHK_OK);
  uint64_t zones = 0;
  for (int t = 0; t < SHORT_THREADS; t++) {
    shk_test_thread th;
    assert_int_equal(shk_test_thread_start(&th, short_lived, lens), 0);
    shk_test_thread_join(&th);
    /* Drain until this thread's zones are in: the drain that empties its closed ring also
     * acknowledges it. */
    uint64_t want = (uint64_t)(t + 1) * SHORT_ZONES;
    for (int tries = 0; zones < want && tries < 1000; tries++)
      shk_lens_reader_poll(reader, 10000000u, count_zone, &zones, NULL);
    assert_int_equal(zones, want);
  }
  shk_lens_stats st;
  assert_int_equal(shk_lens_stats_get(lens, &st), SHK_OK);
  assert_int_equal(st.sent[SHK_LENS_ZONE], (uint64_t)SHORT_THREADS * SHORT_ZONES);
  assert_true(st.rings <= SHORT_RINGS);
  shk_lens_thread_info info[SHORT_THREADS + 1];
  size_t count = 0;
  assert_int_equal(shk_lens_reader_threads(reader, info, SHORT_THREADS + 1, &count), SHK_OK);
  assert_int_equal(count, SHORT_THREADS); /* one track per thread, though rings were reused */
  for (size_t i = 0; i < count; i++) {
    assert_int_equal(info[i].counters[SHK_LENS_ZONE].written, SHORT_ZONES);
    assert_int_equal(info[i].counters[SHK_LENS_ZONE].dropped, 0);
    assert_false(info[i].alive);
  }
  shk_lens_reader_close(reader);
  shk_lens_close(lens);
}

/* A thread that sends more after the reader's last look at its counts, and ends after the last
 * drain: the entry must show its final counts (they were taken only for live rings, so under wine,
 * where a thread's end comes late, the first test saw ended threads with a part of their zones). */
typedef struct late_end {
  shk_lens *lens;
  atomic_int phase; /* 1: one zone sent; 2: go on; 3: 99 more sent; 4: end */
} late_end;

static void wait_phase(atomic_int *phase, int want) {
  while (atomic_load(phase) != want) shk_test_sleep_ms(1);
}

static void send_then_end_late(void *arg) {
  late_end *le = arg;
  shk_lens_zone z;
  shk_lens_zone_begin(le->lens, &z, "first", 0);
  shk_lens_zone_end(&z);
  atomic_store(&le->phase, 1);
  wait_phase(&le->phase, 2);
  for (int i = 0; i < 99; i++) {
    shk_lens_zone_begin(le->lens, &z, "more", 0);
    shk_lens_zone_end(&z);
  }
  atomic_store(&le->phase, 3);
  wait_phase(&le->phase, 4);
}

static void a_thread_that_ends_after_the_last_drain_shows_its_final_counts(void **state) {
  (void)state;
  static late_end le;
  char name[64];
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "le"), NULL, &le.lens), SHK_OK);
  shk_lens_reader *reader = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &reader), SHK_OK);
  atomic_store(&le.phase, 0);
  uint64_t zones = 0;
  shk_test_thread th;
  assert_int_equal(shk_test_thread_start(&th, send_then_end_late, &le), 0);
  wait_phase(&le.phase, 1);
  shk_lens_reader_drain(reader, count_zone, &zones, NULL); /* takes the counts in: 1 written */
  atomic_store(&le.phase, 2);
  wait_phase(&le.phase, 3);
  shk_lens_reader_drain(reader, count_zone, &zones, NULL); /* the zones, not yet the counts */
  assert_int_equal(zones, 100);
  atomic_store(&le.phase, 4);
  shk_test_thread_join(&th); /* the ring is closed now, with nothing left in it to drain */
  shk_lens_thread_info info[2];
  size_t count = 0;
  assert_int_equal(shk_lens_reader_threads(reader, info, 2, &count), SHK_OK);
  assert_int_equal(count, 1);
  assert_int_equal(info[0].counters[SHK_LENS_ZONE].written, 100);
  assert_int_equal(info[0].counters[SHK_LENS_ZONE].drained, 100);
  assert_false(info[0].alive);
  shk_lens_reader_close(reader);
  shk_lens_close(le.lens);
}

/* A lens closed while a thread that used it still runs: the thread's later end must not touch
 * the closed lens (ASan and TSan watch this). */
typedef struct outliving {
  shk_lens *lens;
  atomic_int phase; /* 1: zones sent; 2: the lens is closed */
} outliving;

static void outlive(void *arg) {
  outliving *o = arg;
  short_lived(o->lens);
  atomic_store(&o->phase, 1);
  while (atomic_load(&o->phase) != 2) {
  }
}

static void a_thread_that_outlives_its_lens_ends_cleanly(void **state) {
  (void)state;
  char name[64];
  static outliving o;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "ol"), NULL, &o.lens), SHK_OK);
  atomic_store(&o.phase, 0);
  shk_test_thread th;
  assert_int_equal(shk_test_thread_start(&th, outlive, &o), 0);
  while (atomic_load(&o.phase) != 1) {
  }
  shk_lens_close(o.lens);
  atomic_store(&o.phase, 2);
  shk_test_thread_join(&th);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(threads_share_one_lens_and_every_zone_is_accounted_for),
    cmocka_unit_test(more_short_lived_threads_than_rings_lose_nothing),
    cmocka_unit_test(a_thread_that_ends_after_the_last_drain_shows_its_final_counts),
    cmocka_unit_test(a_thread_that_outlives_its_lens_ends_cleanly),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
