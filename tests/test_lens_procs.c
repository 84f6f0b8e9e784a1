/* lens with several producer processes on one segment (issue 13, defects 1 and 2): the reader
 * follows every producer until the last one ends, and threads of different processes stay apart.
 * Written against the public API only, so it builds against the 1.x library too (where it fails). */
/* ctest: labels=unit;multiprocess timeout=180 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 60000
#define SECOND 1000000000ull

#ifdef _WIN32
#include <windows.h>
static void nap_ms(int ms) { Sleep((DWORD)ms); }
#else
#include <time.h>
static void nap_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}
#endif

/* Opens NAME, waits for the reader, sends ZONES zones on a thread named "worker", sleeps
 * PAUSE_MS, sends ZONES more, closes. */
static int child_producer(int argc, char **argv) {
  if (argc < 3) return 2;
  int zones = atoi(argv[1]), pause_ms = atoi(argv[2]);
  shk_lens *lens = NULL;
  if (shk_lens_open(argv[0], NULL, &lens) != SHK_OK) return 3;
  if (shk_lens_wait_reader(lens, 30 * SECOND) != SHK_OK) return 4;
  shk_lens_thread_name(lens, "worker");
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < zones; i++) {
      shk_lens_zone z;
      shk_lens_zone_begin(lens, &z, "work", 0);
      shk_lens_zone_end(&z);
    }
    shk_lens_frame(lens);
    shk_lens_flush(lens);
    nap_ms(pause_ms);
  }
  shk_lens_close(lens);
  return 0;
}

static void wait_producers(const char *name, uint32_t n) {
  for (int i = 0; i < 30000; i++) {
    shk_lens_info info;
    if (shk_lens_probe(name, &info) == SHK_OK && info.producers >= n) return;
    nap_ms(1);
  }
  fail_msg("%u producers never appeared on %s", n, name);
}

typedef struct seen {
  uint64_t zones, frames;
  uint64_t keys[8];
  size_t key_count;
} seen;

static void on_event(const shk_lens_event *e, void *user) {
  seen *s = user;
  if (e->kind == SHK_LENS_FRAME) s->frames++;
  if (e->kind != SHK_LENS_ZONE) return;
  s->zones++;
  for (size_t i = 0; i < s->key_count; i++)
    if (s->keys[i] == e->thread_key) return;
  if (s->key_count < 8) s->keys[s->key_count++] = e->thread_key;
}

/* Defect 1: with two producer processes, the reader stopped when the last process that opened
 * the lens ended, while the other still ran (its later zones were never read). Defect 2: thread
 * keys were per-process counters, so both processes' "worker" threads shared one key. */
static void the_reader_follows_every_producer_process_and_keeps_their_threads_apart(void **state) {
  (void)state;
  char name[64];
  shk_test_unique_name(name, sizeof name, "pp");
  enum { ZONES = 50 };
  char zones[16];
  snprintf(zones, sizeof zones, "%d", ZONES);
  const char *long_args[] = {name, zones, "400"}, *short_args[] = {name, zones, "0"};
  shk_test_proc slow, quick;
  assert_int_equal(shk_test_spawn("producer", 3, long_args, &slow), 0);
  wait_producers(name, 1);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  /* Opens last, and may be gone before anyone looks: not waited for. */
  assert_int_equal(shk_test_spawn("producer", 3, short_args, &quick), 0);
  seen s;
  memset(&s, 0, sizeof s);
  int polls = 0;
  while (!shk_lens_reader_finished(r)) {
    shk_lens_reader_poll(r, 10000000u, on_event, &s, NULL);
    assert_true(++polls < 6000); /* a minute */
  }
  shk_lens_reader_drain(r, on_event, &s, NULL);
  shk_test_exit a = shk_test_wait(&slow, CHILD_TIMEOUT_MS), b = shk_test_wait(&quick, CHILD_TIMEOUT_MS);
  assert_int_equal(a.code, 0);
  assert_int_equal(b.code, 0);
  assert_int_equal(s.zones, 4 * ZONES); /* both rounds of both processes */
  assert_int_equal(s.frames, 4);
  assert_int_equal(s.key_count, 2); /* two processes' "worker" threads: two tracks */
  shk_lens_reader_close(r);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(the_reader_follows_every_producer_process_and_keeps_their_threads_apart),
};

static const shk_test_child children[] = {
    {"producer", child_producer},
};

SHK_TEST_MAIN(tests, children)
