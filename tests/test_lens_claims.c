/* lens ring and producer-slot ownership: a producer killed while claiming a ring leaves it
 * recoverable, and a dead producer whose pid the OS gave to another process stays dead (2.1:
 * pid + process start stamp). */
/* ctest: labels=unit;multiprocess timeout=120 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"
#include "shmkit/lens_wire.h"

#ifdef _WIN32
#include <windows.h>
static uint32_t this_pid(void) { return (uint32_t)GetCurrentProcessId(); }
#else
#include <time.h>
#include <unistd.h>
static uint32_t this_pid(void) { return (uint32_t)getpid(); }
#endif

#define CHILD_TIMEOUT_MS 30000
#define WAIT_MS 10000u

static shk_lens_wire_header *raw_open(const char *name, shk_shm **shm) {
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_WRITE, shm), SHK_OK);
  return shk_shm_data(*shm);
}

static shk_lens_wire_ring *raw_ring(shk_lens_wire_header *h, uint32_t i) {
  return (shk_lens_wire_ring *)(void *)((unsigned char *)h + h->ring_offset +
                                        (uint64_t)i * h->ring_stride);
}

static volatile uint32_t *vol32(uint32_t *p) { return (volatile uint32_t *)p; }

/* A lens of one ring (max_threads 1) whose name stays until the test removes it. */
static shk_lens *open_one_ring(const char *name) {
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.max_threads = 1;
  o.ring_bytes = 8 * 1024;
  o.full_wait_ns = 0;
  o.flags |= SHK_LENS_KEEP_NAME;
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(name, &o, &lens), SHK_OK);
  return lens;
}

static int one_zone(shk_lens *lens, const char *name) {
  shk_lens_zone z;
  if (shk_lens_zone_begin(lens, &z, name, 0) != SHK_OK) return -1;
  return shk_lens_zone_end(&z);
}

/* Claims ring 0 through the library (one zone), then puts it back into the state of a producer
 * stopped in the middle of a claim: argv[1] "claiming" (claim word and state taken, ring not yet
 * live) or "closed" (claim word taken, state not yet moved), records consumed. Then waits to be
 * killed. */
static int child_stuck_claimer(int argc, char **argv) {
  if (argc < 2) return 2;
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.full_wait_ns = 0;
  shk_lens *lens = NULL;
  if (shk_lens_open(argv[0], &o, &lens) != SHK_OK) return 3;
  if (one_zone(lens, "child") != SHK_OK) return 4;
  shk_shm *shm = NULL;
  if (shk_shm_open(argv[0], SHK_SHM_READ_WRITE, &shm) != SHK_OK) return 5;
  shk_lens_wire_ring *r = raw_ring(shk_shm_data(shm), 0);
  if (r->claim == 0 || (uint32_t)r->claim != this_pid()) return 6; /* the library's claim word */
  r->tail = r->head;
  *vol32(&r->state) = strcmp(argv[1], "claiming") == 0 ? SHK_LENS_RING_CLAIMING : SHK_LENS_RING_CLOSED;
  for (;;) shk_test_sleep_ms(1000); /* killed by the parent */
}

static void check_killed_while_claiming(const char *mode) {
  char name[64];
  shk_lens *lens = open_one_ring(shk_test_unique_name(name, sizeof name, "kc"));
  shk_shm *shm = NULL;
  shk_lens_wire_header *h = raw_open(name, &shm);
  shk_lens_wire_ring *r = raw_ring(h, 0);
  uint32_t want = strcmp(mode, "claiming") == 0 ? SHK_LENS_RING_CLAIMING : SHK_LENS_RING_CLOSED;
  const char *args[] = {name, mode};
  shk_test_proc proc;
  assert_int_equal(shk_test_spawn("stuck_claimer", 2, args, &proc), 0);
  unsigned waited = 0;
  while (!(*vol32(&r->state) == want && r->head == r->tail && r->head != 0) && waited < WAIT_MS) {
    shk_test_sleep_ms(5);
    waited += 5;
  }
  assert_true(waited < WAIT_MS);
  shk_test_exit how = shk_test_wait(&proc, 1); /* killed at that moment */
  assert_int_equal(how.killed || how.timed_out, 1);
  /* The only ring is left by a dead claimer: the next producer thread takes it over. */
  assert_int_equal(one_zone(lens, "after"), SHK_OK);
  assert_int_equal(r->state, SHK_LENS_RING_LIVE);
  assert_int_equal((uint32_t)r->claim, this_pid());
  /* And a reader gets that zone, from a ring that is whole again. */
  shk_lens_reader *reader = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &reader), SHK_OK);
  assert_int_equal(one_zone(lens, "read"), SHK_OK);
  shk_lens_event e;
  bool seen = false;
  for (int i = 0; i < 200 && !seen; i++) {
    shk_lens_reader_poll(reader, 10000000ull, NULL, NULL, NULL);
    while (shk_lens_reader_next(reader, &e) == SHK_OK)
      if (e.kind == SHK_LENS_ZONE && strcmp(e.name, "read") == 0) seen = true;
  }
  assert_true(seen);
  shk_lens_reader_close(reader);
  shk_shm_close(shm);
  shk_lens_close(lens);
  shk_shm_unlink(name);
}

static void a_ring_left_claiming_by_a_killed_producer_is_taken_over(void **state) {
  (void)state;
  check_killed_while_claiming("claiming");
}

static void a_claim_word_left_by_a_killed_producer_is_taken_over(void **state) {
  (void)state;
  check_killed_while_claiming("closed");
}

/* A producer slot naming a live pid with another start stamp: that pid was reused. */
static void a_slot_with_a_live_pid_and_another_start_is_a_dead_producer(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_one_ring(shk_test_unique_name(name, sizeof name, "pr"));
  shk_shm *shm = NULL;
  shk_lens_wire_header *h = raw_open(name, &shm);
  assert_int_equal(h->processes[0].pid, this_pid());
  assert_int_not_equal(h->processes[0].start, 0); /* 2.1 records the start (Linux, Windows) */
  shk_lens_info info;
  assert_int_equal(shk_lens_probe(name, &info), SHK_OK);
  assert_int_equal(info.producers, 1);
  assert_int_equal(info.dead_producers, 0);
  h->processes[5].start = h->processes[0].start + 1;
  *vol32(&h->processes[5].pid) = this_pid();
  assert_int_equal(shk_lens_probe(name, &info), SHK_OK);
  assert_int_equal(info.producers, 1);
  assert_int_equal(info.dead_producers, 1);
  /* The same pid with no stamp (a 2.0 producer) counts as alive: the pid is all there is. */
  h->processes[5].start = 0;
  assert_int_equal(shk_lens_probe(name, &info), SHK_OK);
  assert_int_equal(info.producers, 2);
  *vol32(&h->processes[5].pid) = 0;
  shk_shm_close(shm);
  shk_lens_close(lens);
  shk_shm_unlink(name);
}

/* A live ring whose claim word names a live pid with another start stamp: its owner is dead,
 * so the reader closes the ring once drained (and no longer shows its thread alive). */
static void a_ring_owned_by_a_reused_pid_is_closed_by_the_reader(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_one_ring(shk_test_unique_name(name, sizeof name, "rr"));
  assert_int_equal(one_zone(lens, "mine"), SHK_OK);
  shk_shm *shm = NULL;
  shk_lens_wire_header *h = raw_open(name, &shm);
  shk_lens_wire_ring *r = raw_ring(h, 0);
  assert_int_equal(r->state, SHK_LENS_RING_LIVE);
  assert_int_equal((uint32_t)r->claim, this_pid());
  /* The owner as it would be recorded by an earlier process with our pid. */
  r->claim += (uint64_t)1 << 32;
  shk_lens_reader *reader = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &reader), SHK_OK);
  unsigned waited = 0;
  while (*vol32(&r->state) == SHK_LENS_RING_LIVE && waited < WAIT_MS) {
    shk_lens_reader_poll(reader, 10000000ull, NULL, NULL, NULL);
    shk_lens_event e;
    while (shk_lens_reader_next(reader, &e) == SHK_OK) {
    }
    waited += 10;
  }
  assert_int_equal(r->state, SHK_LENS_RING_CLOSED);
  assert_int_equal(r->claim, 0);
  shk_lens_reader_close(reader);
  shk_shm_close(shm);
  shk_lens_close(lens);
  shk_shm_unlink(name);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_ring_left_claiming_by_a_killed_producer_is_taken_over),
    cmocka_unit_test(a_claim_word_left_by_a_killed_producer_is_taken_over),
    cmocka_unit_test(a_slot_with_a_live_pid_and_another_start_is_a_dead_producer),
    cmocka_unit_test(a_ring_owned_by_a_reused_pid_is_closed_by_the_reader),
};

static const shk_test_child children[] = {
    {"stuck_claimer", child_stuck_claimer},
};

SHK_TEST_MAIN(tests, children)
