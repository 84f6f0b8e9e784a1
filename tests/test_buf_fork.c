/* A process forked while other threads hold the buffer locks (the range index, the thread list)
 * must find them free in the child: a forked chunk-task worker may make buffers. Many forks
 * while two threads churn through those locks; each child must finish in time. POSIX only:
 * Windows has no fork (its workers are new processes). */
/* ctest: labels=unit;internal;multiprocess timeout=120 */
#include <stdatomic.h>
#include <stdint.h>

#include "shk_test.h"
#include "shmkit.h"
#include "common/internal.h"

#ifndef _WIN32
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "os.h"

enum { FORKS = 60, CHILD_LIMIT_MS = 5000 };

static atomic_bool stop;

/* The range index's lock: consume+release of its own bytes. */
static void churn_ranges(void *arg) {
  unsigned char *mem = arg;
  while (!atomic_load(&stop)) {
    shk_buf *buf = NULL;
    if (shk_buf_consume(mem, 64, 1, NULL, &buf) == SHK_OK) shk_buf_release(buf);
  }
}

/* The thread list's lock: short-lived threads, each given state and ending with it. */
static void make_one(void *arg) {
  (void)arg;
  shk_buf *buf = NULL;
  if (shk_buf_create(32, 1, NULL, &buf) == SHK_OK) shk_buf_release(buf);
}

static void churn_threads(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    shk__os_thread *t;
    if (shk__os_thread_start(&t, make_one, NULL) == SHK_OK) shk__os_thread_join(t);
  }
}

/* In the child: both locks are needed (consume, and the live count reads the thread list). */
static int child_work(void) {
  static unsigned char mine[128];
  shk_buf *buf = NULL;
  if (shk_buf_consume(mine, 64, 1, NULL, &buf) != SHK_OK) return 1;
  shk_buf_release(buf);
  (void)shk_buf_live_count();
  return 0;
}

/* 0 when the child exited 0 in time; else it is killed and 1 returned. */
static int reap(pid_t pid) {
  for (int waited = 0; waited < CHILD_LIMIT_MS; waited++) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return 1;
}

static void a_child_forked_amid_buffer_traffic_can_make_buffers(void **state) {
  (void)state;
  static unsigned char mem[128];
  /* The library's one-time set-ups done first: a fork in the middle of another thread's first
   * call would leave the child waiting for a set-up nobody finishes (a window of the first use
   * only, which this test is not about). */
  assert_int_equal(child_work(), 0);
  shk__os_thread *ranges, *threads;
  assert_int_equal(shk__os_thread_start(&ranges, churn_ranges, mem), SHK_OK);
  assert_int_equal(shk__os_thread_start(&threads, churn_threads, NULL), SHK_OK);
  int stuck = 0;
  for (int i = 0; i < FORKS; i++) {
    pid_t pid = fork();
    if (pid == 0) _exit(child_work());
    assert_true(pid > 0);
    stuck += reap(pid);
  }
  atomic_store(&stop, true);
  shk__os_thread_join(ranges);
  shk__os_thread_join(threads);
  if (stuck) print_message("%d of %d children did not finish\n", stuck, FORKS);
  assert_int_equal(stuck, 0);
}
#else
static void a_child_forked_amid_buffer_traffic_can_make_buffers(void **state) {
  (void)state;
  print_message("no fork on Windows: workers are new processes and inherit no lock\n");
  skip();
}
#endif

/* The guard holds a fixed number of locks; one more is refused, not written past the end. Run
 * in a child: the slots it fills stay taken for the life of the process. */
static void no_lock(void) {}

static int fill_the_guard(int argc, char **argv) {
  (void)argc;
  (void)argv;
  int added = 0;
  while (added <= SHK__FORK_GUARD_MAX && shk__fork_guard(no_lock, no_lock)) added++;
  return added >= 1 && added <= SHK__FORK_GUARD_MAX && !shk__fork_guard(no_lock, no_lock) ? 0 : 1;
}

static void the_guard_refuses_a_lock_past_its_capacity(void **state) {
  (void)state;
  shk_test_run_child_ok("fill_the_guard", 0, NULL, 30000);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_child_forked_amid_buffer_traffic_can_make_buffers),
    cmocka_unit_test(the_guard_refuses_a_lock_past_its_capacity),
};
static const shk_test_child children[] = {{"fill_the_guard", fill_the_guard}};
SHK_TEST_MAIN(tests, children)
