/* The OS layer's processes and pages: spawn this binary again, wait, kill, exit kinds, liveness,
 * page allocation and protection. */
/* ctest: labels=unit;multiprocess timeout=120 */
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "os.h"

static int child_exits_with(int argc, char **argv) { return argc > 0 ? (int)strtol(argv[0], NULL, 10) : 99; }

static int child_sleeps(int argc, char **argv) {
  (void)argc, (void)argv;
  shk__os_sleep_ns(60ull * 1000000000u);
  return 0;
}

static int child_writes_to_null(int argc, char **argv) {
  (void)argc, (void)argv;
  volatile int *volatile p = NULL;
  *p = 1;
  return 0;
}

static int child_checks_its_arguments(int argc, char **argv) {
  if (argc != 3) return 1;
  if (strcmp(argv[0], "plain") != 0) return 2;
  if (strcmp(argv[1], "with space") != 0) return 3;
  if (strcmp(argv[2], "quote\" and \\ back\\") != 0) return 4;
  return 0;
}

static void spawn_runs_the_child_and_wait_reports_its_exit_code(void **state) {
  (void)state;
  const char *args[] = {"--shk-test-child", "exits_with", "7"};
  shk__os_proc proc;
  shk__os_exit how;
  assert_int_equal(shk__os_proc_start(NULL, args, 3, NULL, 0, false, &proc), SHK_OK);
  assert_true(proc.pid > 0);
  assert_int_equal(shk__os_proc_wait(&proc, 30000, &how), SHK_OK);
  assert_int_equal(how.kind, SHK__OS_EXITED);
  assert_int_equal(how.code, 7);
  assert_int_equal(shk__os_proc_wait(&proc, 0, &how), SHK_EINVAL); /* already reaped */
}

static void arguments_arrive_unchanged(void **state) {
  (void)state;
  const char *args[] = {"--shk-test-child", "checks_its_arguments", "plain", "with space",
                        "quote\" and \\ back\\"};
  shk__os_proc proc;
  shk__os_exit how;
  assert_int_equal(shk__os_proc_start(NULL, args, 5, NULL, 0, false, &proc), SHK_OK);
  assert_int_equal(shk__os_proc_wait(&proc, 30000, &how), SHK_OK);
  assert_int_equal(how.code, 0);
}

static void wait_times_out_then_kill_ends_the_child(void **state) {
  (void)state;
  const char *args[] = {"--shk-test-child", "sleeps"};
  shk__os_proc proc;
  shk__os_exit how;
  assert_int_equal(shk__os_proc_start(NULL, args, 2, NULL, 0, false, &proc), SHK_OK);
  int pid = proc.pid;
  assert_int_equal(shk__os_proc_wait(&proc, 50, &how), SHK_ETIMEDOUT);
  assert_true(shk__os_pid_alive(pid));
  assert_int_equal(shk__os_proc_kill(&proc), SHK_OK);
  assert_int_equal(shk__os_proc_wait(&proc, 30000, &how), SHK_OK);
  assert_false(shk__os_pid_alive(pid));
}

static void a_crash_is_reported_with_its_signal_or_exception(void **state) {
  (void)state;
  const char *args[] = {"--shk-test-child", "writes_to_null"};
  shk__os_proc proc;
  shk__os_exit how;
  assert_int_equal(shk__os_proc_start(NULL, args, 2, NULL, 0, false, &proc), SHK_OK);
  assert_int_equal(shk__os_proc_wait(&proc, 30000, &how), SHK_OK);
  assert_int_equal(how.kind, SHK__OS_SIGNALED);
  assert_int_equal(how.code, shk_test_access_violation_code());
}

static void liveness_knows_this_process_and_not_a_bogus_one(void **state) {
  (void)state;
  assert_true(shk__os_pid_alive(shk__os_pid()));
  assert_false(shk__os_pid_alive(0));
  assert_false(shk__os_pid_alive(-5));
}

static void self_path_names_an_executable_and_refuses_a_short_buffer(void **state) {
  (void)state;
  char path[4096], tiny[4];
  assert_int_equal(shk__os_self_path(path, sizeof path), SHK_OK);
  assert_non_null(strstr(path, "test_os_proc"));
  assert_int_not_equal(shk__os_self_path(tiny, sizeof tiny), SHK_OK);
}

static void pages_are_zeroed_and_protection_can_be_changed(void **state) {
  (void)state;
  size_t page = shk__os_caps_get()->page_size;
  unsigned char *p = NULL;
  assert_int_equal(shk__os_pages_alloc(3 * page, true, (void **)&p), SHK_OK);
  assert_int_equal((uintptr_t)p % page, 0);
  for (size_t i = 0; i < 3 * page; i++) assert_int_equal(p[i], 0);
  p[0] = 1;
  assert_int_equal(shk__os_protect(p, page, SHK__OS_PROT_READ), SHK_OK);
  assert_int_equal(p[0], 1); /* still readable */
  assert_int_equal(shk__os_protect(p, page, SHK__OS_PROT_READ_WRITE), SHK_OK);
  p[0] = 2;
  assert_int_equal(shk__os_protect(p + 1, page, SHK__OS_PROT_READ), SHK_EINVAL); /* unaligned */
  shk__os_pages_free(p, 3 * page);
  assert_int_equal(shk__os_pages_alloc(0, false, (void **)&p), SHK_ESIZE);
  assert_null(p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(spawn_runs_the_child_and_wait_reports_its_exit_code),
    cmocka_unit_test(arguments_arrive_unchanged),
    cmocka_unit_test(wait_times_out_then_kill_ends_the_child),
    cmocka_unit_test(a_crash_is_reported_with_its_signal_or_exception),
    cmocka_unit_test(liveness_knows_this_process_and_not_a_bogus_one),
    cmocka_unit_test(self_path_names_an_executable_and_refuses_a_short_buffer),
    cmocka_unit_test(pages_are_zeroed_and_protection_can_be_changed),
};
static const shk_test_child children[] = {
    {"exits_with", child_exits_with},
    {"sleeps", child_sleeps},
    {"writes_to_null", child_writes_to_null},
    {"checks_its_arguments", child_checks_its_arguments},
};
SHK_TEST_MAIN(tests, children)
