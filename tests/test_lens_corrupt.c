/* lens against hostile or broken shared memory: every validation path on hand-corrupted segments,
 * and locks left held by a process that was killed. */
/* ctest: labels=unit;multiprocess timeout=120 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#ifdef _WIN32
#include <windows.h>
static int self_pid(void) { return (int)GetCurrentProcessId(); }
#else
#include <unistd.h>
static int self_pid(void) { return (int)getpid(); }
#endif

#define CHILD_TIMEOUT_MS 60000

/* A producer (kept open, never waiting) and a raw read-write view of its segment. */
typedef struct fixture {
  char name[64];
  shk_lens *lens;
  shk_shm *shm;
  shk_lens_segment *seg;
} fixture;

static void fixture_open(fixture *f, const char *tag) {
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.full_wait_ns = 0;
  o.lock_timeout_ns = 20000000;
  assert_int_equal(shk_lens_open(shk_test_unique_name(f->name, sizeof f->name, tag), &o, &f->lens),
                   SHK_OK);
  assert_int_equal(shk_shm_open(f->name, SHK_SHM_READ_WRITE, &f->shm), SHK_OK);
  f->seg = shk_shm_data(f->shm);
}

static void fixture_close(fixture *f) {
  shk_shm_close(f->shm);
  shk_lens_close(f->lens);
}

static int reader_open_code(const char *name) {
  shk_lens_reader *r = NULL;
  int rc = shk_lens_reader_open(name, NULL, &r);
  shk_lens_reader_close(r);
  return rc;
}

/* Drains once with a fresh reader; returns its statistics. */
static shk_lens_stats drain_once(const char *name, size_t *events) {
  shk_lens_reader_options o;
  shk_lens_reader_options_init(&o);
  o.lock_timeout_ns = 20000000;
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, &o, &r), SHK_OK);
  size_t n = 0;
  assert_int_equal(shk_lens_reader_drain(r, NULL, NULL, &n), SHK_OK);
  /* Every event handed out must be well-formed: names resolved, messages terminated. */
  shk_lens_event e;
  while (shk_lens_reader_next(r, &e) == SHK_OK) {
    if (e.kind == SHK_LENS_ZONE) assert_true(e.name && e.thread);
    if (e.kind == SHK_LENS_LOG) assert_int_equal(strlen(e.message) <= e.length, 1);
  }
  shk_lens_stats st;
  assert_int_equal(shk_lens_reader_stats(r, &st), SHK_OK);
  shk_lens_reader_close(r);
  if (events) *events = n;
  return st;
}

static void send_one_zone(shk_lens *lens) {
  shk_lens_zone z;
  assert_int_equal(shk_lens_zone_begin(lens, &z, "zone", 0), SHK_OK);
  assert_int_equal(shk_lens_zone_end(&z), SHK_OK);
  assert_int_equal(shk_lens_flush(lens), SHK_OK);
}

/* ---- the header ---- */

static void a_bad_magic_is_refused(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f, "bm");
  f.seg->magic = 0xDEADBEEF;
  assert_int_equal(reader_open_code(f.name), SHK_EFORMAT);
  shk_lens_info info;
  assert_int_equal(shk_lens_probe(f.name, &info), SHK_EFORMAT);
  assert_int_equal(info.magic, 0xDEADBEEF);
  shk_lens *second = (shk_lens *)1;
  assert_int_equal(shk_lens_open(f.name, NULL, &second), SHK_EFORMAT);
  assert_null(second);
  f.seg->magic = 0; /* a creator that has not finished */
  assert_int_equal(reader_open_code(f.name), SHK_EBUSY);
  f.seg->magic = SHK_LENS_MAGIC;
  assert_int_equal(reader_open_code(f.name), SHK_OK);
  fixture_close(&f);
}

static void another_major_version_is_refused_and_another_minor_accepted(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f, "ve");
  f.seg->protocol_version = 0x00020005;
  assert_int_equal(reader_open_code(f.name), SHK_EVERSION);
  shk_lens_info info;
  assert_int_equal(shk_lens_probe(f.name, &info), SHK_EVERSION);
  assert_int_equal(info.protocol_version, 0x00020005);
  f.seg->protocol_version = 0x00000105;
  assert_int_equal(reader_open_code(f.name), SHK_EVERSION);
  f.seg->protocol_version = 0x00010203;
  assert_int_equal(reader_open_code(f.name), SHK_OK);
  fixture_close(&f);
}

static void a_wrong_sizeof_usize_is_refused(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f, "us");
  f.seg->sizeof_usize = 3;
  assert_int_equal(reader_open_code(f.name), SHK_EFORMAT);
  f.seg->sizeof_usize = 16;
  assert_int_equal(reader_open_code(f.name), SHK_EFORMAT);
  f.seg->sizeof_usize = 4; /* a 32-bit producer: keys are 64-bit on the wire anyway */
  assert_int_equal(reader_open_code(f.name), SHK_OK);
  fixture_close(&f);
}

static void a_bad_extension_block_is_refused(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f, "ex");
  f.seg->ext.magic = 0;
  assert_int_equal(reader_open_code(f.name), SHK_EFORMAT);
  f.seg->ext.magic = SHK_LENS_EXT_MAGIC;
  f.seg->ext.size = 8;
  assert_int_equal(reader_open_code(f.name), SHK_EFORMAT);
  f.seg->ext.size = 0x7FFFFFFF; /* larger than the mapping */
  assert_int_equal(reader_open_code(f.name), SHK_EFORMAT);
  f.seg->ext.size = sizeof(shk_lens_ext);
  assert_int_equal(reader_open_code(f.name), SHK_OK);
  fixture_close(&f);
}

static void a_truncated_segment_is_refused(void **state) {
  (void)state;
  char name[64];
  shk_shm *shm = NULL;
  /* One page holds a valid-looking header but not the payloads. */
  assert_int_equal(shk_shm_create(shk_test_unique_name(name, sizeof name, "tr"), 4096, &shm), SHK_OK);
  assert_true(shk_shm_size(shm) < sizeof(shk_lens_segment));
  uint32_t *h = shk_shm_data(shm);
  h[0] = SHK_LENS_MAGIC;
  h[1] = SHK_LENS_PROTOCOL_VERSION;
  h[2] = sizeof(void *);
  assert_int_equal(reader_open_code(name), SHK_EFORMAT);
  shk_lens_info info;
  assert_int_equal(shk_lens_probe(name, &info), SHK_EFORMAT);
  assert_int_equal(info.magic, SHK_LENS_MAGIC);
  shk_lens *lens = (shk_lens *)1;
  assert_int_equal(shk_lens_open(name, NULL, &lens), SHK_EFORMAT);
  shk_shm_close(shm);
  assert_int_equal(shk_shm_unlink(name), SHK_OK);
}

/* ---- payload counts ---- */

static void a_count_above_32_is_counted_and_the_payload_reset(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f, "sz");
  send_one_zone(f.lens);
  f.seg->frame.size = 33;
  f.seg->zone.size = 1000;
  f.seg->heap.size = 0xFFFFFFFF;
  f.seg->plot.size = 64;
  f.seg->log_data_count = 8193;
  size_t n = 1;
  shk_lens_stats st = drain_once(f.name, &n);
  assert_int_equal(n, 0);
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) assert_int_equal(st.malformed[k], 1);
  assert_int_equal(f.seg->zone.size, 0);
  assert_int_equal(f.seg->log_data_count, 0);
  /* The producer goes on normally after the reset. */
  send_one_zone(f.lens);
  st = drain_once(f.name, &n);
  assert_int_equal(n, 1);
  assert_int_equal(st.malformed[SHK_LENS_ZONE], 0);
  fixture_close(&f);
}

static void a_producer_never_writes_past_a_corrupt_count(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f, "pc");
  f.seg->zone.size = 5000;
  f.seg->log_data_count = 100000;
  send_one_zone(f.lens); /* resets the count instead of writing at entry 5000 */
  assert_int_equal(f.seg->zone.size, 1);
  assert_int_equal(shk_lens_log(f.lens, 0, "x"), SHK_OK);
  assert_int_equal(f.seg->log_data_count, 17);
  fixture_close(&f);
}

/* ---- strings and fields ---- */

static void bad_shared_strings_are_counted_and_skipped(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f, "ss");
  for (int i = 0; i < 4; i++) send_one_zone(f.lens);
  assert_int_equal(shk_lens_plot(f.lens, "plot", 1.0, 0), SHK_OK);
  f.seg->zone.data[0].name.size = 129;
  f.seg->zone.data[1].thread.size = 255;
  f.seg->zone.data[2].name.has_contents = 2;
  f.seg->plot.data[0].name.size = 200;
  size_t n = 0;
  shk_lens_stats st = drain_once(f.name, &n);
  assert_int_equal(st.malformed[SHK_LENS_ZONE], 3);
  assert_int_equal(st.malformed[SHK_LENS_PLOT], 1);
  assert_int_equal(st.received[SHK_LENS_ZONE], 1);
  assert_int_equal(n, 1);
  fixture_close(&f);
}

static void bad_numbers_are_counted_and_skipped(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f, "nu");
  for (int i = 0; i < 3; i++) send_one_zone(f.lens);
  assert_int_equal(shk_lens_frame(f.lens), SHK_OK);
  assert_int_equal(shk_lens_plot(f.lens, "p", 1.0, 0), SHK_OK);
  assert_int_equal(shk_lens_plot(f.lens, "p", 2.0, 0), SHK_OK);
  assert_int_equal(shk_lens_heap(f.lens, 1, 1, false), SHK_OK);
  f.seg->zone.data[0].end = INFINITY;
  f.seg->zone.data[1].depth = 1u << 20;
  f.seg->zone.data[2].color = 0xFF000000u;
  f.seg->frame.data[0].end = NAN;
  f.seg->plot.data[0].value = NAN;
  f.seg->plot.data[1].time = -INFINITY;
  f.seg->heap.data[0].is_free = 7;
  size_t n = 9;
  shk_lens_stats st = drain_once(f.name, &n);
  assert_int_equal(n, 0);
  assert_int_equal(st.malformed[SHK_LENS_ZONE], 3);
  assert_int_equal(st.malformed[SHK_LENS_FRAME], 1);
  assert_int_equal(st.malformed[SHK_LENS_PLOT], 2);
  assert_int_equal(st.malformed[SHK_LENS_HEAP], 1);
  fixture_close(&f);
}

/* ---- the log area ---- */

static void a_log_length_past_the_end_stops_the_walk(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f, "lg");
  assert_int_equal(shk_lens_log(f.lens, 0, "first"), SHK_OK);
  assert_int_equal(shk_lens_log(f.lens, 0, "second"), SHK_OK);
  assert_int_equal(shk_lens_log(f.lens, 0, "third"), SHK_OK);
  /* The second header claims more bytes than the area holds. */
  shk_lens_log_header h;
  memcpy(&h, f.seg->log_data + 16 + 5, sizeof h);
  h.length = 100000;
  memcpy(f.seg->log_data + 16 + 5, &h, sizeof h);
  size_t n = 0;
  shk_lens_stats st = drain_once(f.name, &n);
  assert_int_equal(n, 1);
  assert_int_equal(st.received[SHK_LENS_LOG], 1);
  assert_int_equal(st.malformed[SHK_LENS_LOG], 1);
  fixture_close(&f);
}

static void a_cut_log_header_or_bad_time_is_counted(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f, "lh");
  assert_int_equal(shk_lens_log(f.lens, 0, "whole"), SHK_OK);
  assert_int_equal(shk_lens_log(f.lens, 0, "nan time"), SHK_OK);
  shk_lens_log_header h;
  memcpy(&h, f.seg->log_data + 21, sizeof h);
  h.time = NAN;
  memcpy(f.seg->log_data + 21, &h, sizeof h);
  f.seg->log_data_count += 10; /* ten bytes: less than a header */
  size_t n = 0;
  shk_lens_stats st = drain_once(f.name, &n);
  assert_int_equal(n, 1);
  assert_int_equal(st.malformed[SHK_LENS_LOG], 2);
  fixture_close(&f);
}

/* ---- locks ---- */

/* Takes the zone and plot locks the way a producer would, then waits to be killed. */
static int child_lock_holder(int argc, char **argv) {
  if (argc < 1) return 2;
  shk_shm *shm = NULL;
  if (shk_shm_open(argv[0], SHK_SHM_READ_WRITE, &shm) != SHK_OK) return 3;
  shk_lens_segment *seg = shk_shm_data(shm);
  uint32_t me = (uint32_t)self_pid();
  volatile uint32_t *zone_owner = &seg->zone.lock.owner, *plot_owner = &seg->plot.lock.owner;
  if (*zone_owner != 0 || *plot_owner != 0) return 4;
  *zone_owner = me;
  *plot_owner = me;
  for (;;) {
    (void)*zone_owner;
  }
}

static void a_lock_held_by_a_killed_process_is_recovered(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f, "lk");
  assert_int_equal(shk_lens_plot(f.lens, "before", 1.0, 0), SHK_OK);
  const char *args[] = {f.name};
  shk_test_proc proc;
  assert_int_equal(shk_test_spawn("lock_holder", 1, args, &proc), 0);
  while (*(volatile uint32_t *)&f.seg->plot.lock.owner != (uint32_t)proc.pid) {
  }
  /* While the holder lives, a send waits its lock timeout and drops; nothing hangs. */
  shk_lens_zone z;
  assert_int_equal(shk_lens_zone_begin(f.lens, &z, "blocked", 0), SHK_OK);
  assert_int_equal(shk_lens_zone_end(&z), SHK_OK); /* staged */
  assert_int_equal(shk_lens_flush(f.lens), SHK_EBUSY);
  shk_test_exit how = shk_test_wait(&proc, 0); /* kills it: it never ends by itself */
  assert_int_equal(how.timed_out, 1);
  /* The reader takes over the plot lock, the producer the zone lock. */
  size_t n = 0;
  shk_lens_stats st = drain_once(f.name, &n);
  assert_int_equal(st.received[SHK_LENS_PLOT], 1);
  send_one_zone(f.lens);
  assert_int_equal(f.seg->zone.lock.owner, 0);
  assert_int_equal(f.seg->plot.lock.owner, 0);
  assert_int_equal(shk_lens_stats_get(f.lens, &st), SHK_OK);
  assert_int_equal(st.lock_recoveries, 2);
  assert_int_equal(st.segment[SHK_LENS_ZONE].dropped, 1);
  assert_int_equal(st.segment[SHK_LENS_ZONE].written, 1);
  st = drain_once(f.name, &n);
  assert_int_equal(st.received[SHK_LENS_ZONE], 1);
  fixture_close(&f);
}

static void a_lock_held_by_a_live_thread_times_out_without_hanging(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f, "lv");
  send_one_zone(f.lens);
  /* Our own pid: to the lock, another thread of this process that is busy. */
  f.seg->zone.lock.owner = (uint32_t)self_pid();
  shk_lens_zone z;
  assert_int_equal(shk_lens_zone_begin(f.lens, &z, "late", 0), SHK_OK);
  assert_int_equal(shk_lens_zone_end(&z), SHK_OK); /* staged */
  assert_int_equal(shk_lens_flush(f.lens), SHK_EBUSY);
  size_t n = 9;
  shk_lens_stats st = drain_once(f.name, &n);
  assert_int_equal(n, 0);
  assert_int_equal(f.seg->zone.size, 1); /* untouched: the reader never had the lock */
  f.seg->zone.lock.owner = 0;
  st = drain_once(f.name, &n);
  assert_int_equal(n, 1);
  assert_int_equal(st.segment[SHK_LENS_ZONE].dropped, 1);
  fixture_close(&f);
}

static void a_dead_pid_in_a_lock_is_taken_over(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f, "dp");
  f.seg->heap.lock.owner = 0x7FFFFFF0u; /* beyond any pid in use */
  f.seg->log_data_lock.owner = 0xFFFFFFFFu; /* not even a valid pid */
  assert_int_equal(shk_lens_heap(f.lens, 1, 2, false), SHK_OK);
  assert_int_equal(shk_lens_log(f.lens, 0, "after"), SHK_OK);
  shk_lens_stats st;
  assert_int_equal(shk_lens_stats_get(f.lens, &st), SHK_OK);
  assert_int_equal(st.lock_recoveries, 2);
  assert_int_equal(f.seg->heap.lock.recoveries, 1);
  fixture_close(&f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_bad_magic_is_refused),
    cmocka_unit_test(another_major_version_is_refused_and_another_minor_accepted),
    cmocka_unit_test(a_wrong_sizeof_usize_is_refused),
    cmocka_unit_test(a_bad_extension_block_is_refused),
    cmocka_unit_test(a_truncated_segment_is_refused),
    cmocka_unit_test(a_count_above_32_is_counted_and_the_payload_reset),
    cmocka_unit_test(a_producer_never_writes_past_a_corrupt_count),
    cmocka_unit_test(bad_shared_strings_are_counted_and_skipped),
    cmocka_unit_test(bad_numbers_are_counted_and_skipped),
    cmocka_unit_test(a_log_length_past_the_end_stops_the_walk),
    cmocka_unit_test(a_cut_log_header_or_bad_time_is_counted),
    cmocka_unit_test(a_lock_held_by_a_killed_process_is_recovered),
    cmocka_unit_test(a_lock_held_by_a_live_thread_times_out_without_hanging),
    cmocka_unit_test(a_dead_pid_in_a_lock_is_taken_over),
};

static const shk_test_child children[] = {
    {"lock_holder", child_lock_holder},
};

SHK_TEST_MAIN(tests, children)
