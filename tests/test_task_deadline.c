/* ctest: labels=unit;multiprocess timeout=180 */
/* shk_task_options.timeout_ms is milliseconds: chunks that take a small part of a generous
 * deadline all finish (SHK_OK), in every mode, through shk_task_run and a pool. No timing is
 * asserted: the chunks sleep about 1/100 of the deadline in all, and only the outcome is
 * checked. (The deadline's other side, a hanging chunk timed out, is in test_task.c.) */
#include <stdio.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 120000
#define CHUNKS 4
#define CHUNK_SLEEP_MS 50
#define DEADLINE_MS 30000 /* 150 times what 4 chunks sleep in all, on one worker */

static const shk_task_mode modes[] = {SHK_TASK_INLINE, SHK_TASK_THREADS, SHK_TASK_PROCESSES};

static int slow_fn(const shk_task_chunk *c, shk_task_out *out) {
  shk_test_sleep_ms(CHUNK_SLEEP_MS);
  uint64_t v = c->index;
  return shk_task_out_write(out, &v, sizeof v);
}

static int check_all_ok(int rc, shk_task_results *r, const char *what, shk_task_mode mode) {
  int bad = rc != SHK_OK || shk_task_results_count(r) != CHUNKS;
  for (size_t i = 0; !bad && i < CHUNKS; i++) {
    const shk_task_result *res = shk_task_results_get(r, i);
    bad = res->status != SHK_TASK_OK || res->size != sizeof(uint64_t);
  }
  if (bad) {
    fprintf(stderr, "%s, mode %d: %s, %zu results:", what, (int)mode, shk_error_name(rc),
            shk_task_results_count(r));
    for (size_t i = 0; i < shk_task_results_count(r); i++) {
      const shk_task_result *res = shk_task_results_get(r, i);
      fprintf(stderr, " [status %d code %d size %zu]", (int)res->status, res->code, res->size);
    }
    fprintf(stderr, "\n");
  }
  shk_task_results_free(r);
  return bad;
}

SHK_CHILD_TEST(chunks_well_inside_the_deadline_all_finish_in_every_mode, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  char data[CHUNKS * 8] = {0};
  int failures = 0;
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    shk_task_options o = {0};
    o.mode = modes[m];
    o.chunks = CHUNKS;
    o.workers = 2;
    o.timeout_ms = DEADLINE_MS;
    shk_task_results *r = NULL;
    int rc = shk_task_run(data, sizeof data, slow_fn, &o, &r);
    failures += check_all_ok(rc, r, "shk_task_run", modes[m]);
    shk_task_pool *pool = NULL;
    SHK_CHECK(shk_task_pool_create(2, modes[m], &pool) == SHK_OK);
    for (int call = 0; call < 2; call++) {
      r = NULL;
      rc = shk_task_pool_run(pool, data, sizeof data, slow_fn, &o, &r);
      failures += check_all_ok(rc, r, "shk_task_pool_run", modes[m]);
    }
    shk_task_pool_free(pool);
  }
  SHK_CHECK(failures == 0);
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(chunks_well_inside_the_deadline_all_finish_in_every_mode),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(chunks_well_inside_the_deadline_all_finish_in_every_mode),
};

int main(int argc, char **argv) {
  shk_worker_main(argc, argv); /* Windows: workers are this executable started again */
  return shk_test_main(argc, argv, __FILE__, tests, sizeof tests / sizeof tests[0], children,
                       sizeof children / sizeof children[0]);
}
