/* ctest: labels=unit;fault;multiprocess timeout=60 internal */
/* Anonymous segments where memfd_create is missing (SHK__FAULT_MEMFD fails it with ENOSYS, as on
 * a kernel or system without it): the POSIX backend makes them from a private shm_open name that
 * it removes at once. Such a segment is zeroed, writable, shared with a forked process, and
 * leaves no name behind; the same as with memfd. Each test runs in a child process. */
#include <stdio.h>
#include <string.h>

#include "shk_test.h"

#if defined(__linux__)
#include <dirent.h>
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os.h"
#include "os_faults.h"

#define CHILD_TIMEOUT_MS 30000

/* Names in /dev/shm that the fallback would make for this process ("shk-a-<pid>-..."). */
static int fallback_names(void) {
  char prefix[32];
  snprintf(prefix, sizeof prefix, "shk-a-%d-", (int)getpid());
  DIR *d = opendir("/dev/shm");
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
  closedir(d);
  return n;
}

/* An anonymous segment (memfd failing or not): zeroed, writable, shared with a forked child,
 * no name left. */
static int anonymous_segment_works(bool without_memfd) {
  size_t size = 3 * shk__os_caps_get()->page_size;
  shk__os_segment seg;
  if (without_memfd) shk__fault_arm(SHK__FAULT_MEMFD, 1, ENOSYS, true);
  int rc = shk__os_segment_create(NULL, size, &seg);
  unsigned failed = shk__fault_failures(SHK__FAULT_MEMFD);
  shk__fault_disarm_all();
  SHK_CHECK(rc == SHK_OK);
  if (without_memfd && shk__os_has(SHK__OS_MEMFD)) SHK_CHECK(failed == 1);
  SHK_CHECK(fallback_names() == 0); /* removed at once */
  unsigned char *p = seg.addr;
  for (size_t i = 0; i < size; i += 509) SHK_CHECK(p[i] == 0);
  pid_t child = fork();
  SHK_CHECK(child >= 0);
  if (child == 0) {
    memset(p, 0x5a, size);
    _exit(0);
  }
  int status = 0;
  SHK_CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  SHK_CHECK(p[0] == 0x5a && p[size - 1] == 0x5a); /* shared, not copied */
  shk__os_segment_close(&seg);
  return 0;
}

SHK_CHILD_TEST(an_anonymous_segment_is_shared_and_nameless_with_memfd, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return anonymous_segment_works(false);
}

SHK_CHILD_TEST(an_anonymous_segment_is_shared_and_nameless_without_memfd, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return anonymous_segment_works(true);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(an_anonymous_segment_is_shared_and_nameless_with_memfd),
    cmocka_unit_test(an_anonymous_segment_is_shared_and_nameless_without_memfd),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(an_anonymous_segment_is_shared_and_nameless_with_memfd),
    SHK_TEST_CHILD(an_anonymous_segment_is_shared_and_nameless_without_memfd),
};

#else

/* Windows: an anonymous section has no name and no memfd to miss. */
static void skipped_linux_only(void **state) {
  (void)state;
  fprintf(stderr, "SKIPPED: memfd_create and its fallback are Linux only\n");
  skip();
}

static const struct CMUnitTest tests[] = {cmocka_unit_test(skipped_linux_only)};
static const shk_test_child children[] = {{NULL, NULL}};

#endif

SHK_TEST_MAIN(tests, children)
