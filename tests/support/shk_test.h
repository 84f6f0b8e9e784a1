/* The test harness shared by every tests/test_*.c: CMocka includes, a main() that can also run a
 * named child routine (the test binary started again with a marker argument, which works the same
 * on Windows), and helpers to start and reap such children with a timeout. */
#ifndef SHMKIT_SHK_TEST_H
#define SHMKIT_SHK_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* cmocka's skip(), counted: a test binary all of whose tests skipped exercised nothing, and
 * shk_test_main() then ends with SHK_TEST_SKIPPED (CTest's SKIP_RETURN_CODE, set for every test)
 * after saying so, so that CTest shows it as skipped, not passed. */
#define SHK_TEST_SKIPPED 77
void shk_test_skip(const char *file, int line);
#undef skip
#define skip() shk_test_skip(__FILE__, __LINE__)

/* A routine the test binary runs when started as a child: its return value is the exit code. */
typedef struct shk_test_child {
  const char *name;
  int (*run)(int argc, char **argv); /* argv[0] is the first argument after the child's name */
} shk_test_child;

/* A child process started by shk_test_spawn(). */
typedef struct shk_test_proc {
  intptr_t handle;
  int pid;
} shk_test_proc;

/* How a child ended: exited with `code`, or was killed by signal / exception `code`. */
typedef struct shk_test_exit {
  int killed;   /* 1 when a signal (POSIX) or an unhandled exception (Windows) ended it */
  int code;
  int timed_out; /* 1 when it did not end in time; it was then killed */
} shk_test_exit;

/* Starts this test binary again running child routine `name` with up to 8 extra arguments.
 * Returns 0 or -1. */
int shk_test_spawn(const char *name, int argc, const char *const *argv, shk_test_proc *proc);

/* Waits up to timeout_ms; kills the child when it runs longer. Always reaps it. */
shk_test_exit shk_test_wait(shk_test_proc *proc, int timeout_ms);

/* spawn + wait, asserting that the child exited with code 0 within timeout_ms. */
void shk_test_run_child_ok(const char *name, int argc, const char *const *argv, int timeout_ms);

/* A name for segments that is unique to this process and call, "shkt-<pid>-<n>-<tag>". */
const char *shk_test_unique_name(char *buf, size_t size, const char *tag);


/* The signal a null-pointer write kills a process with: SIGSEGV, or on Windows the exception
 * code of an access violation. */
int shk_test_access_violation_code(void);

/* Whether this process runs under valgrind (its preload library is in LD_PRELOAD; never on
 * Windows), for the few tests whose timing a valgrind-slowed process cannot keep. */
bool shk_test_under_valgrind(void);

/* Sleeps about ms milliseconds (Sleep on Windows, nanosleep elsewhere). */
void shk_test_sleep_ms(unsigned ms);

/* This process's id. */
uint32_t shk_test_pid(void);

/* Sets environment variable `name` of this process (and the children it starts from now) to
 * value, or removes it (value NULL; on Windows an empty value removes it too). Returns 0 or -1. */
int shk_test_setenv(const char *name, const char *value);

/* Kills process pid, a child of this process (a pool's worker), at once (SIGKILL; on Windows
 * TerminateProcess with exit code 9) and waits up to 30 s until it has ended, leaving it for its
 * parent to reap. Returns 1 once it ended, else 0. */
int shk_test_kill_child(uint64_t pid);

/* The entry point: runs the child routine named after "--shk-test-child", or else the group. */
int shk_test_main(int argc, char **argv, const char *group, const struct CMUnitTest *tests,
                  size_t count, const shk_test_child *children, size_t child_count);

/* In a child routine: report the failing line on stderr (include <stdio.h>) and fail the child
 * with the line number as its exit code. */
#define SHK_CHECK(cond)                                                        \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      return __LINE__;                                                         \
    }                                                                          \
  } while (0)

/* A test whose body runs in a child process (it spawns workers, faults or may hang), within
 * timeout_ms: declares `static void name(void **state)` for the group and `name_child` for the
 * children table (SHK_TEST_CHILD(name)); the body follows as the child's. */
#define SHK_CHILD_TEST(name, timeout_ms)                                     \
  static int name##_child(int argc, char **argv);                            \
  static void name(void **state) {                                           \
    (void)state;                                                             \
    shk_test_run_child_ok(#name, 0, NULL, timeout_ms);                       \
  }                                                                          \
  static int name##_child(int argc, char **argv)
#define SHK_TEST_CHILD(name) {#name, name##_child}

#define SHK_TEST_MAIN(tests, children)                                                      \
  int main(int argc, char **argv) {                                                         \
    return shk_test_main(argc, argv, __FILE__, tests, sizeof(tests) / sizeof((tests)[0]),   \
                         children, sizeof(children) / sizeof((children)[0]));              \
  }

#endif
