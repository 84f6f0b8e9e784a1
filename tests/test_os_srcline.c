/* shk__os_source_line (the file, function and line of a code address: the watcher's event
 * "where", SHK_DEBUG's call sites) through libdw, loaded at run time, and in a process forked
 * after it was loaded: the fork handler gives the child the lock free and drops the parent's
 * session (it describes the parent), so the child's first look reports its own modules, even
 * when another thread of the parent held the lock at the fork. Linux with libdw installed (and
 * a build with debug information); elsewhere the test says why it has nothing to do and skips. */
/* ctest: labels=unit;multiprocess timeout=60 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shk_test_thread.h"

#if defined(__linux__) && defined(SHK_TEST_DEBUG_INFO)
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/internal.h"
#include "os.h"

#define CHILD_TIMEOUT_MS 30000

/* How a forked child ends: exit(), so that its coverage counters are written (the coverage
 * stage's _exit hook cannot reach those of a test linked with the internal static library);
 * under AddressSanitizer _exit(), since the parent's libdw session, which the fork handler leaves
 * to the child on purpose (srcline.c: nothing else is safe there), would be reported as a leak
 * at exit(). */
#if defined(__SANITIZE_ADDRESS__)
#define CHILD_EXIT _exit
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHILD_EXIT _exit
#endif
#endif
#ifndef CHILD_EXIT
#define CHILD_EXIT exit
#endif

/* The function whose line is looked up, and the line it starts on. */
enum { MARKED_LINE = __LINE__ + 1 };
static SHK__NOINLINE int marked_function(int x) {
  return x * 3 + 1;
}

/* Whether the address of marked_function is reported as it is written above. */
static int check_marked(void) {
  char file[512], function[256];
  unsigned line = 0;
  int rc = shk__os_source_line((uintptr_t)(void *)marked_function, file, sizeof file, function,
                               sizeof function, &line);
#ifdef __clang__
  /* libdw 0.188 finds lines through .debug_aranges, which clang leaves out unless given
   * -gdwarf-aranges: the function's name only (its symbol), SHK_ENOENT, as in test_watch. */
  if (rc == SHK_ENOENT && line == 0 && strcmp(function, "marked_function") == 0) return 0;
#endif
  if (rc != SHK_OK) return rc;
  const char *base = strrchr(file, '/');
  if (!base || strcmp(base + 1, "test_os_srcline.c") != 0) return 1001;
  if (strcmp(function, "marked_function") != 0) return 1002;
  if (line < (unsigned)MARKED_LINE || line > (unsigned)MARKED_LINE + 1) {
    fprintf(stderr, "%s:%u, expected line %d\n", file, line, MARKED_LINE);
    return 1003;
  }
  return 0;
}

/* Whether this system can answer at all (libdw present): when not, the test says so. */
static bool srcline_available(void) {
  char file[8], function[8];
  unsigned line;
  return shk__os_source_line((uintptr_t)(void *)marked_function, file, sizeof file, function,
                             sizeof function, &line) != SHK_EUNSUPPORTED;
}

/* Forks; the child checks the look-up and exits with its answer. Returns the child's exit code
 * (0: right), or a negative value when it did not exit. */
static int check_in_fork(void) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) CHILD_EXIT(check_marked() == 0 ? 0 : 1);
  if (pid < 0) return -1;
  for (int waited = 0; waited < 20000; waited += 10) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
    shk_test_sleep_ms(10);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -3; /* hung: the lock stayed held in the child */
}

static atomic_bool stop;

/* Looks up lines without a pause, so that the lock is often held when the main thread forks. */
static void keep_looking(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) (void)check_marked();
}

SHK_CHILD_TEST(a_forked_process_looks_up_its_own_lines, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  int rc = check_marked(); /* loads libdw and reports this process */
  if (rc != 0) {
    fprintf(stderr, "look-up in the parent: %d\n", rc);
    return __LINE__;
  }
  SHK_CHECK(check_in_fork() == 0);
  /* Forks while another thread is inside the look-up (holding its lock) again and again: the
   * children never inherit a held lock. */
  shk_test_thread t;
  SHK_CHECK(shk_test_thread_start(&t, keep_looking, NULL) == 0);
  int bad = 0;
  for (int i = 0; i < 20 && !bad; i++) bad = check_in_fork();
  atomic_store(&stop, true);
  shk_test_thread_join(&t);
  if (bad) fprintf(stderr, "a child forked during a look-up: %d\n", bad);
  SHK_CHECK(bad == 0);
  SHK_CHECK(check_marked() == 0); /* and the parent's session still works */
  return 0;
}

static void source_lines_need_libdw_skipped(void **state) {
  (void)state;
  print_message("libdw.so.1 is not installed: source lines are SHK_EUNSUPPORTED, nothing to test\n");
  skip();
}

int main(int argc, char **argv) {
  static const shk_test_child children[] = {
      SHK_TEST_CHILD(a_forked_process_looks_up_its_own_lines),
  };
  static const struct CMUnitTest with[] = {
      cmocka_unit_test(a_forked_process_looks_up_its_own_lines),
  };
  static const struct CMUnitTest without[] = {
      cmocka_unit_test(source_lines_need_libdw_skipped),
  };
  /* Asked in the parent only when it runs the group (a child routine needs no answer). */
  bool child = argc > 1 && strcmp(argv[1], "--shk-test-child") == 0;
  if (child || srcline_available())
    return shk_test_main(argc, argv, __FILE__, with, 1, children, 1);
  return shk_test_main(argc, argv, __FILE__, without, 1, children, 1);
}
#else
static void source_lines_not_testable_here_skipped(void **state) {
  (void)state;
  print_message("source lines come from libdw on Linux, in a build with debug information: "
                "nothing to test here\n");
  skip();
}
static const struct CMUnitTest tests[] = {cmocka_unit_test(source_lines_not_testable_here_skipped)};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
#endif
