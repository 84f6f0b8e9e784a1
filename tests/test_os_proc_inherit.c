/* The OS layer's process start (shk__os_proc_start), what it promises beyond running the
 * program: exactly the listed descriptors inherited, a missing executable reported to the
 * caller, and kill_on_close once the program has bound itself to its starter. POSIX only. */
/* ctest: labels=unit;multiprocess timeout=120 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "os.h"

#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

/* argv: the kept descriptor, then descriptors that must not be open here. */
static int child_holds_only_the_first(int argc, char **argv) {
  SHK_CHECK(argc >= 2);
  SHK_CHECK(fcntl((int)strtol(argv[0], NULL, 10), F_GETFD) >= 0);
  for (int i = 1; i < argc; i++) {
    errno = 0;
    SHK_CHECK(fcntl((int)strtol(argv[i], NULL, 10), F_GETFD) < 0 && errno == EBADF);
  }
  return 0;
}

static int child_binds_then_sleeps(int argc, char **argv) {
  SHK_CHECK(argc == 1);
  shk__os_proc_bind_to_starter((int)strtol(argv[0], NULL, 10));
  shk__os_sleep_ns(60ull * 1000000000u);
  return 0;
}

/* argv: a descriptor; starts a bound sleeper with kill_on_close, writes its pid there, exits. */
static int child_starts_a_bound_sleeper(int argc, char **argv) {
  SHK_CHECK(argc == 1);
  char me[24];
  snprintf(me, sizeof me, "%d", shk__os_pid());
  const char *args[] = {"--shk-test-child", "binds_then_sleeps", me};
  shk__os_proc sleeper;
  SHK_CHECK(shk__os_proc_start(NULL, args, 3, NULL, 0, true, &sleeper) == SHK_OK);
  int pid = sleeper.pid;
  SHK_CHECK(write((int)strtol(argv[0], NULL, 10), &pid, sizeof pid) == (ssize_t)sizeof pid);
  return 0;
}

static void a_started_process_holds_only_the_listed_descriptors(void **state) {
  (void)state;
  int below[2];
  assert_int_equal(pipe(below), 0); /* no close-on-exec: plain inheritance would pass them on */
  intptr_t kept = 0;
  assert_int_equal(shk__os_handle_dup(below[0], true, &kept), SHK_OK);
  int above = fcntl(below[1], F_DUPFD, (int)kept + 1); /* also without close-on-exec */
  assert_true(above > kept);
  char text[4][24];
  snprintf(text[0], sizeof text[0], "%d", (int)kept);
  snprintf(text[1], sizeof text[1], "%d", below[0]);
  snprintf(text[2], sizeof text[2], "%d", below[1]);
  snprintf(text[3], sizeof text[3], "%d", above);
  const char *args[] = {"--shk-test-child", "holds_only_the_first", text[0], text[1], text[2],
                        text[3]};
  shk__os_proc proc;
  shk__os_exit how;
  assert_int_equal(shk__os_proc_start(NULL, args, 6, &kept, 1, false, &proc), SHK_OK);
  assert_int_equal(shk__os_proc_wait(&proc, 30000, &how), SHK_OK);
  assert_int_equal(how.kind, SHK__OS_EXITED);
  assert_int_equal(how.code, 0);
  shk__os_handle_close(kept);
  close(above);
  close(below[0]);
  close(below[1]);
}

static void a_missing_executable_is_reported_to_the_caller(void **state) {
  (void)state;
  const char *args[] = {"x"};
  shk__os_proc proc;
  shk__os_exit how;
  int rc = shk__os_proc_start("/nonexistent/shk-no-such-program", args, 1, NULL, 0, true, &proc);
  /* valgrind runs glibc's vfork-like clone as a fork: the exec error no longer reaches
   * posix_spawn's caller, the child exits with 127 as after a fork. */
  bool under_valgrind = shk_test_under_valgrind();
  (void)under_valgrind;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  if (!under_valgrind) {
    assert_int_equal(rc, SHK_ENOENT); /* posix_spawn says so at once */
    assert_int_equal(proc.pid, 0);
  }
#endif
  if (rc == SHK_OK) { /* fork and exec: the child reports it */
    assert_int_equal(shk__os_proc_wait(&proc, 30000, &how), SHK_OK);
    assert_int_equal(how.code, 127);
  } else {
    assert_int_equal(rc, SHK_ENOENT);
  }
}

/* The starter (a child of this test) ends at once; the sleeper it started must end with it. */
static void kill_on_close_ends_the_program_with_its_starter(void **state) {
  (void)state;
  int link[2];
  assert_int_equal(pipe(link), 0);
  intptr_t w = 0;
  assert_int_equal(shk__os_handle_dup(link[1], true, &w), SHK_OK);
  close(link[1]);
  char text[24];
  snprintf(text, sizeof text, "%d", (int)w);
  const char *args[] = {"--shk-test-child", "starts_a_bound_sleeper", text};
  shk__os_proc starter;
  shk__os_exit how;
  assert_int_equal(shk__os_proc_start(NULL, args, 3, &w, 1, false, &starter), SHK_OK);
  shk__os_handle_close(w);
  int sleeper = 0;
  assert_int_equal(read(link[0], &sleeper, sizeof sleeper), (ssize_t)sizeof sleeper);
  close(link[0]);
  assert_true(sleeper > 0);
  assert_int_equal(shk__os_proc_wait(&starter, 30000, &how), SHK_OK);
  assert_int_equal(how.code, 0);
  bool gone = false;
  for (int i = 0; i < 3000 && !gone; i++) { /* up to 30 s: no timing is asserted */
    gone = !shk__os_pid_alive(sleeper);
    if (!gone) shk__os_sleep_ns(10000000u);
  }
  if (!gone) kill(sleeper, SIGKILL);
  assert_true(gone);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_started_process_holds_only_the_listed_descriptors),
    cmocka_unit_test(a_missing_executable_is_reported_to_the_caller),
    cmocka_unit_test(kill_on_close_ends_the_program_with_its_starter),
};
static const shk_test_child children[] = {
    {"holds_only_the_first", child_holds_only_the_first},
    {"binds_then_sleeps", child_binds_then_sleeps},
    {"starts_a_bound_sleeper", child_starts_a_bound_sleeper},
};
#else
static void posix_only(void **state) {
  (void)state;
  skip(); /* Windows: the handle list and the job object; test_os_channel starts with both */
}
static const struct CMUnitTest tests[] = {cmocka_unit_test(posix_only)};
static const shk_test_child children[] = {{"none", NULL}};
#endif
SHK_TEST_MAIN(tests, children)
