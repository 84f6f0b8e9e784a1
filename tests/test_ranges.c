/* Input ranges that wrap around the address space (data near UINTPTR_MAX with a size that runs
 * past the end) are refused by every public entry point that takes a pointer and a size, before
 * anything touches the memory. */
/* ctest: labels=unit;multiprocess timeout=120 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 60000

/* The range of the defect report, and one that ends exactly at the top (2^N: no object ends
 * there either). */
#define WILD ((void *)(UINTPTR_MAX - 10))
#define WILD_SIZE ((size_t)1000)
#define TOP ((void *)(UINTPTR_MAX - 999))
#define TOP_SIZE ((size_t)1000)


static const shk_task_mode MODES[] = {SHK_TASK_PROCESSES, SHK_TASK_THREADS, SHK_TASK_INLINE};

static int count_fn(const shk_task_chunk *c, shk_task_out *out) {
  uint64_t n = c->size;
  return shk_task_out_write(out, &n, sizeof n);
}

/* Writes from a wrapping range and reports the writer's code as the chunk's code (a crash, as
 * before the check, shows as SHK_TASK_CRASHED). */
static int wild_write_fn(const shk_task_chunk *c, shk_task_out *out) {
  (void)c;
  int rc = shk_task_out_write(out, WILD, WILD_SIZE);
  return rc == SHK_EINVAL ? 0 : 1000 + (rc < 0 ? -rc : rc);
}

SHK_CHILD_TEST(task_run_refuses_a_wrapping_range_in_every_mode, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  for (size_t m = 0; m < sizeof MODES / sizeof MODES[0]; m++) {
    shk_task_options o = {0};
    o.mode = MODES[m];
    o.chunks = 4;
    o.workers = 2;
    shk_task_results *r = (shk_task_results *)&o;
    SHK_CHECK(shk_task_run(WILD, WILD_SIZE, count_fn, &o, &r) == SHK_EINVAL);
    SHK_CHECK(r == NULL);
    SHK_CHECK(shk_task_run(TOP, TOP_SIZE, count_fn, &o, &r) == SHK_EINVAL);
    SHK_CHECK(r == NULL);
  }
  return 0;
}

SHK_CHILD_TEST(pool_run_refuses_a_wrapping_range_in_every_mode, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  static unsigned char input[4096];
  for (size_t m = 0; m < sizeof MODES / sizeof MODES[0]; m++) {
    shk_task_pool *pool = NULL;
    SHK_CHECK(shk_task_pool_create(2, MODES[m], &pool) == SHK_OK);
    shk_task_options o = {0};
    o.chunks = 4;
    shk_task_results *r = NULL;
    SHK_CHECK(shk_task_pool_run(pool, WILD, WILD_SIZE, count_fn, &o, &r) == SHK_EINVAL);
    SHK_CHECK(r == NULL);
    SHK_CHECK(shk_task_pool_run(pool, TOP, TOP_SIZE, count_fn, &o, &r) == SHK_EINVAL);
    SHK_CHECK(r == NULL);
    /* The pool still works afterwards. */
    SHK_CHECK(shk_task_pool_run(pool, input, sizeof input, count_fn, &o, &r) == SHK_OK);
    SHK_CHECK(shk_task_results_count(r) == 4);
    shk_task_results_free(r);
    shk_task_pool_free(pool);
  }
  return 0;
}

SHK_CHILD_TEST(the_output_writer_refuses_a_wrapping_range, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  static unsigned char input[64];
  shk_task_options o = {0};
  o.mode = SHK_TASK_PROCESSES; /* a crash before the check stays in the worker */
  o.chunks = 2;
  o.workers = 2;
  shk_task_results *r = NULL;
  int rc = shk_task_run(input, sizeof input, wild_write_fn, &o, &r);
  SHK_CHECK(r != NULL);
  for (size_t i = 0; i < shk_task_results_count(r); i++) {
    const shk_task_result *c = shk_task_results_get(r, i);
    if (c->status != SHK_TASK_OK)
      fprintf(stderr, "chunk %zu: %s code %d\n", i, shk_task_status_name(c->status), c->code);
  }
  shk_task_results_free(r);
  SHK_CHECK(rc == SHK_OK);
  return 0;
}

static void buffers_refuse_a_wrapping_range(void **state) {
  (void)state;
  shk_buf *b = NULL;
  assert_int_equal(shk_buf_consume(WILD, WILD_SIZE, 1, NULL, &b), SHK_EOVERFLOW);
  assert_null(b);
  assert_int_equal(shk_buf_consume(TOP, TOP_SIZE, 1, NULL, &b), SHK_EOVERFLOW);
  assert_int_equal(shk_buf_create(16, 1, NULL, &b), SHK_OK);
  /* A destination that wraps: refused before memcpy writes through it. */
  assert_int_equal(shk_buf_region_copy(b, 0, 16, WILD, WILD_SIZE), SHK_EINVAL);
  assert_int_equal(shk_buf_region_copy(b, 0, 16, TOP, TOP_SIZE), SHK_EINVAL);
  shk_buf_release(b);
}

static void segments_refuse_a_wrapping_range(void **state) {
  (void)state;
  shk_shm *s = NULL;
  size_t off = 0;
  assert_int_equal(shk_shm_find(WILD, WILD_SIZE, &s, &off), SHK_EINVAL);
  assert_int_equal(shk_shm_find(TOP, TOP_SIZE, &s, &off), SHK_EINVAL);
}

static void the_watcher_refuses_a_wrapping_range(void **state) {
  (void)state;
  shk_watcher *w = NULL;
  assert_int_equal(shk_watch_create(NULL, &w), SHK_OK);
  uint32_t id = 0;
  assert_int_equal(shk_watch_add(w, WILD, WILD_SIZE, "wild", &id), SHK_EINVAL);
  assert_int_equal(shk_watch_add(w, TOP, TOP_SIZE, "top", &id), SHK_EINVAL);
  size_t length = 0;
  assert_int_equal(shk_watch_fetch(w, 1, WILD, WILD_SIZE, &length), SHK_EINVAL);
  assert_int_equal(shk_watch_fetch(w, 1, TOP, TOP_SIZE, &length), SHK_EINVAL);
  shk_watch_free(w);
}

static void lens_heap_events_refuse_a_wrapping_range(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "rg"), NULL, &lens),
                   SHK_OK);
  assert_int_equal(shk_lens_heap(lens, UINT64_MAX - 10, 1000, false), SHK_EINVAL);
  assert_int_equal(shk_lens_heap(lens, UINT64_MAX - 999, 1000, true), SHK_EINVAL);
  assert_int_equal(shk_lens_heap(lens, 4096, 1000, false), SHK_OK);
  shk_lens_close(lens);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(buffers_refuse_a_wrapping_range),
    cmocka_unit_test(segments_refuse_a_wrapping_range),
    cmocka_unit_test(the_watcher_refuses_a_wrapping_range),
    cmocka_unit_test(lens_heap_events_refuse_a_wrapping_range),
    cmocka_unit_test(task_run_refuses_a_wrapping_range_in_every_mode),
    cmocka_unit_test(pool_run_refuses_a_wrapping_range_in_every_mode),
    cmocka_unit_test(the_output_writer_refuses_a_wrapping_range),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(task_run_refuses_a_wrapping_range_in_every_mode),
    SHK_TEST_CHILD(pool_run_refuses_a_wrapping_range_in_every_mode),
    SHK_TEST_CHILD(the_output_writer_refuses_a_wrapping_range),
};

int main(int argc, char **argv) {
  shk_worker_main(argc, argv);
  return shk_test_main(argc, argv, __FILE__, tests, sizeof tests / sizeof tests[0], children,
                       sizeof children / sizeof children[0]);
}
