/* The OS layer's process start time (shk__os_proc_start_time): what tells a process from a later
 * one that got the same pid. */
/* ctest: labels=unit;multiprocess timeout=60 */
#include <stdlib.h>

#include "shk_test.h"
#include "os.h"

static int child_sleeps(int argc, char **argv) {
  (void)argc, (void)argv;
  shk__os_sleep_ns(60ull * 1000000000u);
  return 0;
}

static void this_process_has_a_stable_start_time(void **state) {
  (void)state;
  uint64_t a = 0, b = 0;
  assert_int_equal(shk__os_proc_start_time(shk__os_pid(), &a), SHK_OK);
  shk__os_sleep_ns(20000000u);
  assert_int_equal(shk__os_proc_start_time(shk__os_pid(), &b), SHK_OK);
  assert_true(a == b);
}

static void bad_arguments_are_refused(void **state) {
  (void)state;
  uint64_t t = 0;
  assert_int_equal(shk__os_proc_start_time(0, &t), SHK_EINVAL);
  assert_int_equal(shk__os_proc_start_time(-3, &t), SHK_EINVAL);
  assert_int_equal(shk__os_proc_start_time(shk__os_pid(), NULL), SHK_EINVAL);
}

/* A child started after us did not start before us; once it is reaped it has no start time. */
static void a_child_starts_later_and_is_gone_once_reaped(void **state) {
  (void)state;
  uint64_t mine = 0, its = 0;
  assert_int_equal(shk__os_proc_start_time(shk__os_pid(), &mine), SHK_OK);
  shk__os_sleep_ns(20000000u); /* Linux counts in clock ticks (10 ms at 100 Hz) */
  const char *args[] = {"--shk-test-child", "sleeps"};
  shk__os_proc proc;
  shk__os_exit how;
  assert_int_equal(shk__os_proc_start(NULL, args, 2, NULL, 0, false, &proc), SHK_OK);
  int pid = proc.pid;
  assert_int_equal(shk__os_proc_start_time(pid, &its), SHK_OK);
  assert_true(its > mine);
  assert_int_equal(shk__os_proc_kill(&proc), SHK_OK);
  assert_int_equal(shk__os_proc_wait(&proc, 30000, &how), SHK_OK);
  assert_int_equal(shk__os_proc_start_time(pid, &its), SHK_ENOENT);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(this_process_has_a_stable_start_time),
    cmocka_unit_test(bad_arguments_are_refused),
    cmocka_unit_test(a_child_starts_later_and_is_gone_once_reaped),
};

static const shk_test_child children[] = {
    {"sleeps", child_sleeps},
};

SHK_TEST_MAIN(tests, children)
