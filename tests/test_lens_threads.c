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

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(threads_share_one_lens_and_every_zone_is_accounted_for),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
