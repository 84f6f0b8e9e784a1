/* For the coverage stage (ci/stages/45-coverage.sh) only, preloaded into the tests: an _exit()
 * that writes the coverage counters first. shmkit's workers and the tests' forked children end
 * with _exit(), which skips the exit handlers where gcov writes its counters, so code that runs
 * only in a worker (the serve loop, the hosted plugin path) counted as never run.
 * __gcov_dump() writes the counters of every instrumented module of the process (they share one
 * list); the process then ends as _exit() would. */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>

extern void __gcov_dump(void);

void _exit(int code) {
  __gcov_dump();
  for (;;) syscall(SYS_exit_group, code);
}
