/* ctest: labels=unit;fault timeout=120 internal */
/* What a freshly started worker keeps of its parent's descriptors (posix_close_all_but, run in
 * every forked worker): exactly the ones it is given, whichever way the closing is done: with
 * close_range, and without it (SHK__FAULT_CLOSE_RANGE fails it with ENOSYS, as on a kernel
 * before 5.9) by the numbers found in /proc/self/fd, or, with more descriptors than that walk
 * collects, by every number up to the descriptor limit. Each test runs in a child process (it
 * closes descriptors). */
#include <stdio.h>
#include <string.h>

#include "shk_test.h"

#if defined(__linux__)
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "posix/posix.h"

#define CHILD_TIMEOUT_MS 60000
#define MAX_FDS 600

static bool is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

/* Opens n descriptors (one of /dev/null and its duplicates) into fds[]; how many it got. */
static int open_many(int *fds, int n) {
  int got = 0;
  int base = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (base < 0) return 0;
  fds[got++] = base;
  while (got < n) {
    int fd = fcntl(base, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) break;
    fds[got++] = fd;
  }
  return got;
}

/* Opens n descriptors, keeps two of them (one in the middle, the highest), closes all the rest
 * with close_range failing (when `fallback`), and checks what is left: 0-2 and the two kept. */
static int close_all_but_two(int n, bool fallback, int top_fd) {
  static int fds[MAX_FDS + 1];
  bool std_open[3] = {is_open(0), is_open(1), is_open(2)};
  int got = open_many(fds, n);
  SHK_CHECK(got == n);
  int keep[2] = {fds[n / 2], fds[n - 1]};
  if (top_fd > 0) { /* one more, not kept, at the highest number the limit allows */
    fds[n] = fcntl(fds[0], F_DUPFD_CLOEXEC, top_fd);
    SHK_CHECK(fds[n] == top_fd);
    n++;
  }
  if (fallback) shk__fault_arm(SHK__FAULT_CLOSE_RANGE, 1, ENOSYS, true);
  posix_close_all_but(keep, 2);
  unsigned failed = shk__fault_failures(SHK__FAULT_CLOSE_RANGE);
  shk__fault_disarm_all();
#ifdef SYS_close_range
  SHK_CHECK(!fallback || failed >= 1); /* the fallback ran */
#else
  (void)failed;
#endif
  for (int i = 0; i < n; i++) {
    bool kept = fds[i] == keep[0] || fds[i] == keep[1];
    if (is_open(fds[i]) != kept) {
      fprintf(stderr, "descriptor %d: %s\n", fds[i], kept ? "closed, but kept" : "left open");
      return __LINE__;
    }
  }
  for (int fd = 0; fd <= 2; fd++) SHK_CHECK(is_open(fd) == std_open[fd]); /* never touched */
  close(keep[0]);
  close(keep[1]);
  return 0;
}

SHK_CHILD_TEST(close_all_but_keeps_exactly_the_given_descriptors_with_close_range,
               CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return close_all_but_two(20, false, 0);
}

SHK_CHILD_TEST(close_all_but_keeps_exactly_the_given_descriptors_by_proc_self_fd,
               CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return close_all_but_two(20, true, 0);
}

/* More descriptors than the /proc/self/fd walk collects (256): every number up to the limit is
 * closed instead, the last one included. The test sets the soft descriptor limit (within the
 * hard one, which it reads; one below what it needs fails the test, saying so). */
SHK_CHILD_TEST(close_all_but_keeps_exactly_the_given_descriptors_past_the_walk_limit,
               CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  struct rlimit rl;
  SHK_CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < MAX_FDS + 16)
    fprintf(stderr, "the hard descriptor limit %llu is below the %d this test needs\n",
            (unsigned long long)rl.rlim_max, MAX_FDS + 16);
  SHK_CHECK(rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= MAX_FDS + 16);
  rl.rlim_cur = MAX_FDS + 16; /* raised or lowered: the last number is then known */
  SHK_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
  return close_all_but_two(MAX_FDS - 20, true, MAX_FDS + 15);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(close_all_but_keeps_exactly_the_given_descriptors_with_close_range),
    cmocka_unit_test(close_all_but_keeps_exactly_the_given_descriptors_by_proc_self_fd),
    cmocka_unit_test(close_all_but_keeps_exactly_the_given_descriptors_past_the_walk_limit),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(close_all_but_keeps_exactly_the_given_descriptors_with_close_range),
    SHK_TEST_CHILD(close_all_but_keeps_exactly_the_given_descriptors_by_proc_self_fd),
    SHK_TEST_CHILD(close_all_but_keeps_exactly_the_given_descriptors_past_the_walk_limit),
};

#else

/* Windows hands a new process only the handles named in its start-up list: there is nothing
 * to close, and this backend function does not exist there. */
static void skipped_posix_only(void **state) {
  (void)state;
  fprintf(stderr, "SKIPPED: closing inherited descriptors is POSIX only\n");
  skip();
}

static const struct CMUnitTest tests[] = {cmocka_unit_test(skipped_posix_only)};
static const shk_test_child children[] = {{NULL, NULL}};

#endif

SHK_TEST_MAIN(tests, children)
