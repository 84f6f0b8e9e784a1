/* ctest: labels=multiprocess;fault timeout=300 internal */
/* Fault walks (src/os_faults.h) under the chunk-task calls: shk_task_pool_create in process and
 * thread mode, shk_task_run, and shk_task_pool_run on a pool that exists. Each failure of a
 * process start, channel, thread start or segment primitive gives a documented code, keeps the
 * raw OS error, leaves no worker, segment, mapping or descriptor behind, and the same call
 * works once the fault is gone. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "common/task_internal.h"
#include "shk_test_faults.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 240000

static const int task_codes[] = {SHK_ENOMEM, SHK_ELIMIT, SHK_EOS};

static int sum_chunk(const shk_task_chunk *chunk, shk_task_out *out) {
  uint64_t sum = 0;
  for (size_t i = 0; i < chunk->size; i++) sum += ((const unsigned char *)chunk->data)[i];
  return shk_task_out_write(out, &sum, sizeof sum);
}

static unsigned char input[64 * 1024];

/* Runs fn (NULL: a hosted pool's plugin, which sums as sum_chunk does) over the chunks on `pool`
 * (or one-shot when NULL) and checks every sum. */
static int run_fn_and_check(shk_task_pool *pool, shk_task_mode mode, shk_task_fn fn) {
  shk_task_options o;
  memset(&o, 0, sizeof o);
  o.chunks = 4;
  o.workers = 2;
  o.mode = mode;
  shk_task_results *results = NULL;
  int rc = pool ? shk_task_pool_run(pool, input, sizeof input, fn, &o, &results)
                : shk_task_run(input, sizeof input, fn, &o, &results);
  if (rc != SHK_OK) {
    if (results) rc = -9999; /* a failure before any chunk runs gives no results */
    shk_task_results_free(results);
    return rc;
  }
  uint64_t total = 0;
  for (size_t i = 0; i < shk_task_results_count(results); i++) {
    const shk_task_result *r = shk_task_results_get(results, i);
    uint64_t sum;
    if (r->status != SHK_TASK_OK || r->size != sizeof sum) rc = -9998;
    else memcpy(&sum, r->data, sizeof sum), total += sum;
  }
  shk_task_results_free(results);
  return rc == SHK_OK && total != 255u * 256u * (sizeof input / 256u) / 2u ? -9997 : rc;
}

static int run_and_check(shk_task_pool *pool, shk_task_mode mode) {
  return run_fn_and_check(pool, mode, sum_chunk);
}

static void fill_input(void) {
  for (size_t i = 0; i < sizeof input; i++) input[i] = (unsigned char)i;
}

static int pool_create_and_run(void *ctx) {
  shk_task_mode mode = *(const shk_task_mode *)ctx;
  shk_task_pool *pool = NULL;
  int rc = shk_task_pool_create(2, mode, &pool);
  if (rc != SHK_OK) return pool == NULL ? rc : -9999;
  rc = run_and_check(pool, mode);
  shk_task_pool_free(pool);
  return rc;
}

static const shk__fault_point process_points[] = {
    SHK__FAULT_PROC_START, SHK__FAULT_CHANNEL_CREATE, SHK__FAULT_SEGMENT_CREATE,
    SHK__FAULT_SEGMENT_SIZE, SHK__FAULT_SEGMENT_MAP};

/* By name, not by position: a point added to the enum must not shift these (one did, and the
 * labels went wrong, and one past the end under UBSan). */
static const char *point_name(shk__fault_point p) {
  static const char *const names[SHK__FAULT_COUNT] = {
      [SHK__FAULT_SEGMENT_CREATE] = "segment create", [SHK__FAULT_SEGMENT_SIZE] = "segment size",
      [SHK__FAULT_SEGMENT_MAP] = "segment map",       [SHK__FAULT_PROC_START] = "process start",
      [SHK__FAULT_CHANNEL_CREATE] = "channel create", [SHK__FAULT_MODULE_LOAD] = "module load",
      [SHK__FAULT_THREAD_START] = "thread start", [SHK__FAULT_CHANNEL_GIVE] = "handle give"};
  return (unsigned)p < SHK__FAULT_COUNT && names[p] ? names[p] : "another point";
}

static int walk_points(const char *what, int (*call)(void *), void *ctx,
                       const shk__fault_point *points, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char label[128];
    snprintf(label, sizeof label, "%s / %s", what, point_name(points[i]));
    shk_fault_case fc = {label, points[i], call, ctx, task_codes, SHK__ARRAY_LEN(task_codes),
                         true, false, NULL};
    SHK_FAULT_WALK(&fc, false);
    fc.sticky = true;
    SHK_FAULT_WALK(&fc, false);
  }
  return 0;
}

SHK_CHILD_TEST(process_pool_create_fails_cleanly_at_each_primitive, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  fill_input();
  shk_task_mode mode = SHK_TASK_PROCESSES;
  return walk_points("shk_task_pool_create(processes)", pool_create_and_run, &mode,
                     process_points, SHK__ARRAY_LEN(process_points));
}

SHK_CHILD_TEST(thread_pool_create_fails_cleanly_when_a_thread_cannot_start, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  fill_input();
  shk_task_mode mode = SHK_TASK_THREADS;
  static const shk__fault_point points[] = {SHK__FAULT_THREAD_START, SHK__FAULT_CHANNEL_CREATE,
                                            SHK__FAULT_SEGMENT_CREATE, SHK__FAULT_SEGMENT_MAP};
  return walk_points("shk_task_pool_create(threads)", pool_create_and_run, &mode, points,
                     SHK__ARRAY_LEN(points));
}

/* The one-call form keeps its arena for the next call (task_arena.c): dropped before and after
 * each call, so that every call makes its own and the walk reaches the segment primitives. */
static void drop_kept_arena(void) {
  shk__os_segment kept;
  if (shk__task_arena_take(0, &kept)) shk__os_segment_close(&kept);
}

static int one_shot(void *ctx) {
  drop_kept_arena();
  int rc = run_and_check(NULL, *(const shk_task_mode *)ctx);
  drop_kept_arena();
  return rc;
}

SHK_CHILD_TEST(task_run_fails_cleanly_at_each_primitive, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  fill_input();
  shk_task_mode mode = SHK_TASK_PROCESSES;
  int line = walk_points("shk_task_run(processes)", one_shot, &mode, process_points,
                         SHK__ARRAY_LEN(process_points));
  if (line) return line;
  mode = SHK_TASK_THREADS;
  static const shk__fault_point points[] = {SHK__FAULT_THREAD_START};
  return walk_points("shk_task_run(threads)", one_shot, &mode, points, SHK__ARRAY_LEN(points));
}

/* A call on a pool that exists, with an input made after the pool (its forked workers cannot
 * see it: it is copied into the pool's staging segment), whose staging segment is dropped
 * before and after (a new one is made every call). A failure leaves the pool usable. */
typedef struct pool_call {
  shk_task_pool *pool;
  size_t size;
} pool_call;

/* Sums `size` bytes of ones at `data` in 4 chunks on the pool: the call's code, or a negative
 * value no code has when results came with a failure or the sums are wrong. */
static int sum_ones(shk_task_pool *pool, const unsigned char *data, size_t size) {
  shk_task_options o;
  memset(&o, 0, sizeof o);
  o.chunks = 4;
  shk_task_results *results = NULL;
  int rc = shk_task_pool_run(pool, data, size, sum_chunk, &o, &results);
  if (rc != SHK_OK && results) rc = -9999;
  uint64_t total = 0;
  for (size_t i = 0; rc == SHK_OK && i < shk_task_results_count(results); i++) {
    uint64_t sum;
    memcpy(&sum, shk_task_results_get(results, i)->data, sizeof sum);
    total += sum;
  }
  shk_task_results_free(results);
  return rc == SHK_OK && total != size ? -9997 : rc;
}

static int pool_run(void *ctx) {
  pool_call *c = ctx;
  shk__os_segment_close(&c->pool->staging);
  unsigned char *data = malloc(c->size);
  if (!data) return -9996;
  memset(data, 1, c->size);
  int rc = sum_ones(c->pool, data, c->size);
  free(data);
  shk__os_segment_close(&c->pool->staging); /* so that no call finds one */
  return rc;
}

SHK_CHILD_TEST(pool_run_fails_cleanly_and_the_pool_stays_usable, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  pool_call c = {NULL, 256 * 1024};
  SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &c.pool) == SHK_OK);
  static const shk__fault_point points[] = {SHK__FAULT_SEGMENT_CREATE, SHK__FAULT_SEGMENT_SIZE,
                                            SHK__FAULT_SEGMENT_MAP};
  int line = walk_points("shk_task_pool_run", pool_run, &c, points, SHK__ARRAY_LEN(points));
  shk_task_pool_free(c.pool);
  return line;
}

/* Handing the input's segment to a worker fails (the worker is gone: EPIPE; or any failure):
 * the pool replaces that worker (shk__task_worker_restart) and hands it over again. One failure:
 * the call succeeds, with the replaced worker a new process and the old one reaped; failures
 * that go on: the call fails with a documented code, the raw error kept, nothing left behind,
 * and the pool works again afterwards. For the staging segment (an input made after the pool)
 * and for a caller's shmkit segment (read in place). */
static int worker_pids(shk_task_pool *pool, int *pids) {
  for (unsigned i = 0; i < pool->workers; i++) pids[i] = pool->ws[i].proc.pid;
  return (int)pool->workers;
}

/* A call whose input lies in a shmkit segment of this process, which the workers map in place. */
typedef struct borrowed_call {
  shk_task_pool *pool;
  shk_shm *shm;
} borrowed_call;

static int pool_run_borrowed(void *ctx) {
  borrowed_call *c = ctx;
  /* A new segment each call, so that every call gives it to the workers. */
  size_t size = 64 * 1024;
  if (shk_shm_create_anonymous(size, &c->shm) != SHK_OK) return -9996;
  memset(shk_shm_data(c->shm), 1, size);
  int rc = sum_ones(c->pool, shk_shm_data(c->shm), size);
  shk_shm_close(c->shm);
  c->shm = NULL;
  return rc;
}

static int check_one_give_failure(int (*call)(void *), void *ctx, shk_task_pool *pool) {
  int before[SHK_TASK_WORKERS_MAX], after[SHK_TASK_WORKERS_MAX];
  SHK_CHECK(call(ctx) == SHK_OK); /* warm: the workers hold what a first call gives */
  int n = worker_pids(pool, before);
  shk__fault_arm(SHK__FAULT_CHANNEL_GIVE, 1, EPIPE, false);
  int rc = call(ctx);
  unsigned failed = shk__fault_failures(SHK__FAULT_CHANNEL_GIVE);
  shk__fault_disarm_all();
  SHK_CHECK(failed == 1);
  SHK_CHECK(rc == SHK_OK);
  worker_pids(pool, after);
  /* The first worker's hand-over failed: it is a new process; the other is the same. */
  SHK_CHECK(after[0] > 0 && after[0] != before[0]);
  for (int i = 1; i < n; i++) SHK_CHECK(after[i] == before[i]);
#if defined(__linux__)
  SHK_CHECK(waitpid(before[0], NULL, WNOHANG) == -1 && errno == ECHILD); /* reaped */
#endif
  SHK_CHECK(call(ctx) == SHK_OK);
  /* The replacement gone too (the hand-over fails again): a documented code of the call, with
   * the raw error kept (it was SHK_ENOENT, which shk_task_pool_run does not document), and the
   * pool works again afterwards. */
  shk__fault_arm(SHK__FAULT_CHANNEL_GIVE, 1, EPIPE, true);
  rc = call(ctx);
  int raw = shk_last_os_error();
  shk__fault_disarm_all();
  bool documented = false;
  for (size_t i = 0; i < SHK__ARRAY_LEN(task_codes); i++) documented |= rc == task_codes[i];
  if (!documented || raw != EPIPE) {
    fprintf(stderr, "the hand-over failing twice gave %s (raw %d)\n", shk_error_name(rc), raw);
    return __LINE__;
  }
  SHK_CHECK(call(ctx) == SHK_OK);
  return 0;
}

SHK_CHILD_TEST(pool_run_replaces_a_worker_that_cannot_take_the_input, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  static const shk__fault_point points[] = {SHK__FAULT_CHANNEL_GIVE};
  pool_call c = {NULL, 256 * 1024};
  SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &c.pool) == SHK_OK);
  int line = check_one_give_failure(pool_run, &c, c.pool);
  if (!line) line = walk_points("shk_task_pool_run (staging)", pool_run, &c, points, 1);
  shk_task_pool_free(c.pool);
  if (line) return line;
  borrowed_call b = {NULL, NULL};
  SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &b.pool) == SHK_OK);
  line = check_one_give_failure(pool_run_borrowed, &b, b.pool);
  if (!line) line = walk_points("shk_task_pool_run (borrowed)", pool_run_borrowed, &b, points, 1);
  shk_task_pool_free(b.pool);
  return line;
}

/* A hosted pool: workers are the worker host started as an executable (posix_spawn on Linux,
 * not fork), with a start-up handshake; the plugin is loaded there, out of reach of the walk. */
static int hosted_create_and_run(void *ctx) {
  (void)ctx;
#ifdef SHK_TEST_PLUGIN
  shk_task_pool *pool = NULL;
  int rc = shk_task_pool_create_hosted(2, SHK_TEST_PLUGIN, "plugin_sum", &pool);
  if (rc != SHK_OK) return pool == NULL ? rc : -9999;
  rc = run_fn_and_check(pool, SHK_TASK_PROCESSES, NULL);
  shk_task_pool_free(pool);
  return rc;
#else
  return SHK_OK;
#endif
}

SHK_CHILD_TEST(hosted_pool_create_fails_cleanly_at_each_primitive, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
#if !defined(SHK_TEST_PLUGIN) || defined(SHK_TEST_NO_WORKER_HOST)
  fprintf(stderr, "SKIPPED: no worker host or test plugin in this build\n");
  return 0;
#else
  fill_input();
  return walk_points("shk_task_pool_create_hosted", hosted_create_and_run, NULL, process_points,
                     SHK__ARRAY_LEN(process_points));
#endif
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(process_pool_create_fails_cleanly_at_each_primitive),
    cmocka_unit_test(thread_pool_create_fails_cleanly_when_a_thread_cannot_start),
    cmocka_unit_test(task_run_fails_cleanly_at_each_primitive),
    cmocka_unit_test(pool_run_fails_cleanly_and_the_pool_stays_usable),
    cmocka_unit_test(pool_run_replaces_a_worker_that_cannot_take_the_input),
    cmocka_unit_test(hosted_pool_create_fails_cleanly_at_each_primitive),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(process_pool_create_fails_cleanly_at_each_primitive),
    SHK_TEST_CHILD(thread_pool_create_fails_cleanly_when_a_thread_cannot_start),
    SHK_TEST_CHILD(task_run_fails_cleanly_at_each_primitive),
    SHK_TEST_CHILD(pool_run_fails_cleanly_and_the_pool_stays_usable),
    SHK_TEST_CHILD(pool_run_replaces_a_worker_that_cannot_take_the_input),
    SHK_TEST_CHILD(hosted_pool_create_fails_cleanly_at_each_primitive),
};

int main(int argc, char **argv) {
  shk_worker_main(argc, argv); /* Windows: a worker run serves its pool and never returns */
  return shk_test_main(argc, argv, __FILE__, tests, SHK__ARRAY_LEN(tests), children,
                       SHK__ARRAY_LEN(children));
}
