/* lens rings that grow with the segment (2.3) across processes: producer processes x threads on a
 * lens made for fewer rings lose nothing; producers racing to create the same extension make it
 * once; a producer killed while it creates one stops no one; no name is left behind, also when
 * every producer is killed and the reader ends. */
/* ctest: labels=unit;internal;multiprocess timeout=240 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lens_internal.h"
#include "shk_test.h"
#include "shmkit.h"

#include "shk_test_thread.h"

#define CHILD_TIMEOUT_MS 60000
#define SECOND 1000000000ull
#define MAX_THREADS 8
#define MAX_NAMES 64

/* ---- children ---- */

typedef struct child_thread {
  shk_lens *lens;
  char name[32];
  int zones;
  int hold_ms;
} child_thread;

static void child_produce(void *arg) {
  child_thread *t = arg;
  shk_lens_thread_name(t->lens, t->name);
  for (int i = 0; i < t->zones; i++) {
    shk_lens_zone z;
    shk_lens_zone_begin(t->lens, &z, "zone", 0);
    shk_lens_zone_end(&z);
  }
  if (t->hold_ms > 0) shk_test_sleep_ms((unsigned)t->hold_ms); /* keeps its ring */
}

/* argv: lens name, threads, zones per thread, tag, hold ms (< 0: until killed, at most a minute). Opens the lens,
 * waits for a reader, runs the threads (named "<tag>.<j>") and closes. */
static int child_producer(int argc, char **argv) {
  if (argc < 5) return 2;
  int threads = atoi(argv[1]), zones = atoi(argv[2]), hold = atoi(argv[4]);
  if (threads < 1 || threads > MAX_THREADS) return 3;
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.full_wait_ns = 10 * SECOND; /* a loaded machine: a ring may fill, nothing may drop */
  shk_lens *lens = NULL;
  if (shk_lens_open(argv[0], &o, &lens) != SHK_OK) return 4;
  if (shk_lens_wait_reader(lens, 30 * SECOND) != SHK_OK) return 5;
  child_thread t[MAX_THREADS];
  shk_test_thread th[MAX_THREADS];
  for (int j = 0; j < threads; j++) {
    t[j].lens = lens;
    snprintf(t[j].name, sizeof t[j].name, "%s.%d", argv[3], j);
    t[j].zones = zones;
    t[j].hold_ms = hold < 0 ? CHILD_TIMEOUT_MS : hold; /* bounded: a failed parent leaves none */
    if (shk_test_thread_start(&th[j], child_produce, &t[j]) != 0) return 6;
  }
  for (int j = 0; j < threads; j++) shk_test_thread_join(&th[j]);
  shk_lens_stats st;
  if (shk_lens_stats_get(lens, &st) != SHK_OK) return 7;
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++)
    if (st.segment[k].dropped != 0) {
      fprintf(stderr, "child %s: kind %d: %llu dropped, %llu rings\n", argv[3], k,
              (unsigned long long)st.segment[k].dropped, (unsigned long long)st.rings);
      return 8;
    }
  shk_lens_close(lens);
  return 0;
}

static void stall(uint32_t k) {
  (void)k;
  shk_test_sleep_ms(CHILD_TIMEOUT_MS); /* killed here by the parent */
  exit(9);
}

/* argv: lens name. Opens the lens and sends a zone from a thread that finds no ring: it starts
 * creating extension 1 and stops there (the test hook) until killed. */
static int child_stalls_creating(int argc, char **argv) {
  if (argc < 1) return 2;
  shk__lens_grow_hook = stall;
  shk_lens *lens = NULL;
  if (shk_lens_open(argv[0], NULL, &lens) != SHK_OK) return 3;
  shk_lens_zone z;
  shk_lens_zone_begin(lens, &z, "never", 0);
  shk_lens_zone_end(&z);
  return 4; /* the hook never returns */
}

/* ---- the parent's side ---- */

typedef struct tally {
  char names[MAX_NAMES][32];
  uint64_t counts[MAX_NAMES];
  size_t n;
  uint64_t zones;
} tally;

static void on_event(const shk_lens_event *e, void *user) {
  tally *t = user;
  if (e->kind != SHK_LENS_ZONE) return;
  t->zones++;
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->names[i], e->thread) == 0) {
      t->counts[i]++;
      return;
    }
  if (t->n == MAX_NAMES) return;
  snprintf(t->names[t->n], sizeof t->names[0], "%s", e->thread);
  t->counts[t->n++] = 1;
}

static uint64_t count_of(const tally *t, const char *name) {
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->names[i], name) == 0) return t->counts[i];
  return 0;
}

/* A lens of `rings` rings whose creator (the returned handle) sends nothing. */
static shk_lens *create_lens(char *name, size_t size, const char *tag, uint32_t rings) {
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.max_threads = rings;
  o.ring_bytes = 64 * 1024;
  o.full_wait_ns = 10 * SECOND;
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, size, tag), &o, &lens), SHK_OK);
  return lens;
}

static void wait_producers(const char *name, uint32_t n) {
  for (int i = 0; i < 30000; i++) {
    shk_lens_info info;
    if (shk_lens_probe(name, &info) == SHK_OK && info.producers >= n) return;
    shk_test_sleep_ms(1);
  }
  fail_msg("%u producers never appeared on %s", n, name);
}

static void read_until_finished(shk_lens_reader *r, tally *t) {
  memset(t, 0, sizeof *t);
  int polls = 0;
  while (!shk_lens_reader_finished(r)) {
    shk_lens_reader_poll(r, 10000000u, on_event, t, NULL);
    assert_true(++polls < 12000); /* two minutes */
  }
  size_t n;
  do shk_lens_reader_drain(r, on_event, t, &n);
  while (n > 0);
}

static void assert_nothing_lost(shk_lens_reader *r) {
  const char *problem = shk_lens_reader_problem(r);
  if (problem) fail_msg("reader: %s", problem);
  shk_lens_stats st;
  assert_int_equal(shk_lens_reader_stats(r, &st), SHK_OK);
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
    assert_int_equal(st.segment[k].dropped, 0); /* no_ring_dropped included */
    assert_int_equal(st.malformed[k], 0);
    assert_int_equal(st.segment[k].written, st.segment[k].drained);
  }
}

/* Neither the lens name nor any extension name of it exists. */
static void assert_names_gone(const char *name) {
  shk_shm *shm = NULL;
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_ONLY, &shm), SHK_ENOENT);
  for (uint32_t k = 1; k <= SHK_LENS_EXT_MAX; k++) {
    char ext[SHK_SHM_NAME_MAX + 1];
    shk__lens_ext_name(name, k, ext);
    if (shk_shm_open(ext, SHK_SHM_READ_ONLY, &shm) == SHK_OK) {
      shk_shm_close(shm);
      fail_msg("extension name %s is left", ext);
    }
  }
}

static uint32_t extensions_of(const char *name) {
  shk_shm *shm = NULL;
  if (shk_shm_open(name, SHK_SHM_READ_ONLY, &shm) != SHK_OK) return 0;
  uint32_t n = shk__lens_load32(&((shk_lens_wire_header *)shk_shm_data(shm))->ext_count);
  shk_shm_close(shm);
  return n;
}

/* `procs` processes of `threads` threads each on a lens of `rings` rings, sending `zones` zones
 * per thread and holding their rings `hold_ms`: every zone arrives, per thread. */
static void check_processes(uint32_t rings, int procs, int threads, int zones, int hold_ms,
                            const char *tag) {
  char name[64], arg_threads[16], arg_zones[16], arg_hold[16], tags[8][16];
  shk_lens *creator = create_lens(name, sizeof name, tag, rings);
  snprintf(arg_threads, sizeof arg_threads, "%d", threads);
  snprintf(arg_zones, sizeof arg_zones, "%d", zones);
  snprintf(arg_hold, sizeof arg_hold, "%d", hold_ms);
  shk_test_proc proc[8];
  for (int i = 0; i < procs; i++) {
    snprintf(tags[i], sizeof tags[i], "p%d", i);
    const char *args[] = {name, arg_threads, arg_zones, tags[i], arg_hold};
    assert_int_equal(shk_test_spawn("producer", 5, args, &proc[i]), 0);
  }
  wait_producers(name, (uint32_t)procs + 1);
  shk_lens_close(creator); /* the children keep the lens */
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK); /* they all start now */
  tally t;
  read_until_finished(r, &t);
  for (int i = 0; i < procs; i++) {
    shk_test_exit how = shk_test_wait(&proc[i], CHILD_TIMEOUT_MS);
    assert_int_equal(how.killed, 0);
    assert_int_equal(how.code, 0);
  }
  assert_nothing_lost(r);
  shk_lens_stats st;
  assert_int_equal(shk_lens_reader_stats(r, &st), SHK_OK);
  print_message("%d processes x %d threads on %u rings: %llu rings used\n", procs, threads, rings,
                (unsigned long long)st.rings);
  assert_true(st.rings <= (uint64_t)procs * (uint64_t)threads);
  assert_int_equal(t.zones, (uint64_t)procs * (uint64_t)threads * (uint64_t)zones);
  for (int i = 0; i < procs; i++)
    for (int j = 0; j < threads; j++) {
      char thread[32];
      snprintf(thread, sizeof thread, "p%d.%d", i, j);
      assert_int_equal(count_of(&t, thread), (uint64_t)zones);
    }
  shk_lens_reader_close(r);
  assert_names_gone(name);
}

static void processes_and_threads_on_a_lens_of_two_rings_lose_nothing(void **state) {
  (void)state;
  check_processes(2, 4, 4, 3000, 200, "gp");
}

/* Four processes of one thread each on a lens of one ring, all starting as the reader attaches:
 * three race for extension 1, the losers then for extension 2. Each extension is made once (a
 * second one under the same name would take the rings of the first one's threads away from the
 * reader), many times over. */
static void producers_of_several_processes_race_to_create_the_same_extension(void **state) {
  (void)state;
  for (int round = 0; round < 5; round++) check_processes(1, 4, 1, 500, 300, "gr");
}

/* A producer killed while it creates extension 1 (after the segment exists, before its header is
 * written) leaves the creation word naming a dead process and a half-made segment: the next
 * producer that needs a ring takes the word over, makes the extension again, and the reader and
 * the other producers carry on. */
static void a_producer_killed_while_creating_an_extension_stops_no_one(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = create_lens(name, sizeof name, "gk", 1);
  shk_lens_zone z;
  shk_lens_zone_begin(lens, &z, "parent", 0); /* this thread takes the one ring */
  shk_lens_zone_end(&z);
  const char *args[] = {name};
  shk_test_proc stalled;
  assert_int_equal(shk_test_spawn("stalls_creating", 1, args, &stalled), 0);
  shk_shm *shm = NULL;
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_ONLY, &shm), SHK_OK);
  shk_lens_wire_header *h = shk_shm_data(shm);
  char ext[SHK_SHM_NAME_MAX + 1];
  shk__lens_ext_name(name, 1, ext);
  bool made = false;
  for (int i = 0; i < 20000 && !made; i++) {
    shk_shm *e = NULL;
    made = shk__lens_load64(&h->ext_creating) != 0 &&
           shk_shm_open(ext, SHK_SHM_READ_ONLY, &e) == SHK_OK;
    shk_shm_close(e);
    if (!made) shk_test_sleep_ms(1);
  }
  assert_true(made);
  assert_int_equal(shk_test_kill_child((uint64_t)stalled.pid), 1);
  shk_test_exit how = shk_test_wait(&stalled, CHILD_TIMEOUT_MS);
  assert_int_equal(how.killed || how.timed_out || how.code == 9, 1); /* 9: TerminateProcess */
  assert_int_equal(h->ext_count, 0);

  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  /* A new producer process: its two threads need extension 1 (1 ring) and 2 (2 rings). */
  const char *pargs[] = {name, "2", "200", "n", "0"};
  shk_test_proc fresh;
  assert_int_equal(shk_test_spawn("producer", 5, pargs, &fresh), 0);
  for (int i = 0; i < 99; i++) { /* and this producer carries on */
    shk_lens_zone_begin(lens, &z, "parent", 0);
    shk_lens_zone_end(&z);
  }
  tally t;
  memset(&t, 0, sizeof t);
  for (int polls = 0; t.zones < 400 + 100; polls++) {
    shk_lens_reader_poll(r, 10000000u, on_event, &t, NULL);
    assert_true(polls < 12000);
  }
  how = shk_test_wait(&fresh, CHILD_TIMEOUT_MS);
  assert_int_equal(how.killed, 0);
  assert_int_equal(how.code, 0);
  assert_true(h->ext_count >= 1);
  assert_int_equal(h->ext_creating, 0);
  shk_shm_close(shm);
  shk_lens_close(lens);
  tally rest;
  read_until_finished(r, &rest);
  assert_int_equal(rest.zones, 0);
  assert_nothing_lost(r);
  assert_int_equal(count_of(&t, "n.0"), 200);
  assert_int_equal(count_of(&t, "n.1"), 200);
  assert_int_equal(t.zones, 400 + 100); /* the parent's first zone too: it waited in its ring */
  shk_lens_reader_close(r);
  assert_names_gone(name);
}

/* Every producer killed with rings in extensions: the reader, once it ends, removes the lens name
 * and every extension's. */
static void nothing_is_left_when_every_producer_is_killed_and_the_reader_ends(void **state) {
  (void)state;
  char name[64];
  shk_lens *creator = create_lens(name, sizeof name, "gx", 1);
  const char *a0[] = {name, "2", "100", "a", "-1"}, *a1[] = {name, "2", "100", "b", "-1"};
  shk_test_proc p0, p1;
  assert_int_equal(shk_test_spawn("producer", 5, a0, &p0), 0);
  assert_int_equal(shk_test_spawn("producer", 5, a1, &p1), 0);
  wait_producers(name, 3);
  shk_lens_close(creator);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  tally t;
  memset(&t, 0, sizeof t);
  for (int polls = 0; t.zones < 400; polls++) {
    shk_lens_reader_poll(r, 10000000u, on_event, &t, NULL);
    assert_true(polls < 12000);
  }
  uint32_t extensions = extensions_of(name);
  assert_true(extensions >= 2); /* four threads at once on one ring: 1 + 1 + 2 */
  assert_int_equal(shk_test_kill_child((uint64_t)p0.pid), 1);
  assert_int_equal(shk_test_kill_child((uint64_t)p1.pid), 1);
  shk_test_wait(&p0, CHILD_TIMEOUT_MS);
  shk_test_wait(&p1, CHILD_TIMEOUT_MS);
  tally rest;
  read_until_finished(r, &rest);
  assert_int_equal(rest.zones, 0);
  shk_lens_reader_close(r);
  assert_names_gone(name);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(processes_and_threads_on_a_lens_of_two_rings_lose_nothing),
    cmocka_unit_test(producers_of_several_processes_race_to_create_the_same_extension),
    cmocka_unit_test(a_producer_killed_while_creating_an_extension_stops_no_one),
    cmocka_unit_test(nothing_is_left_when_every_producer_is_killed_and_the_reader_ends),
};

static const shk_test_child children[] = {
    {"producer", child_producer},
    {"stalls_creating", child_stalls_creating},
};

SHK_TEST_MAIN(tests, children)
