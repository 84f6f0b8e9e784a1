/* Segments when the process has no descriptor left (RLIMIT_NOFILE reached, EMFILE): creating a
 * named or an anonymous segment and opening one fail with SHK_ELIMIT, the raw EMFILE kept,
 * nothing left behind (no name), and work again once a descriptor is free. Linux (the limit is
 * set in a child process); elsewhere the test says why it has nothing to do and skips. */
/* ctest: labels=unit;multiprocess timeout=60 */
#include <stdio.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#if defined(__linux__)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#define CHILD_TIMEOUT_MS 30000

/* The highest descriptor open in this process. */
static int highest_fd(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int top = -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' && atoi(e->d_name) > top) top = atoi(e->d_name);
  closedir(d);
  return top; /* may be opendir's own, closed now: one more free number at most */
}

SHK_CHILD_TEST(segments_report_the_descriptor_limit_as_elimit, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  char name[64], other[64];
  shk_test_unique_name(name, sizeof name, "lim");
  shk_test_unique_name(other, sizeof other, "lim2");
  /* First use done before the limit: the library's one-time probes need a descriptor. */
  shk_shm *warm = NULL;
  SHK_CHECK(shk_shm_create_anonymous(1, &warm) == SHK_OK);
  shk_shm_close(warm);
  shk_shm *existing = NULL;
  SHK_CHECK(shk_shm_create(other, 1, &existing) == SHK_OK);
  struct rlimit was;
  SHK_CHECK(getrlimit(RLIMIT_NOFILE, &was) == 0);
  /* Fill every number up to the limit: no new descriptor can be opened. */
  int top = highest_fd();
  SHK_CHECK(top >= 0);
  struct rlimit none = {(rlim_t)top + 1, was.rlim_max};
  SHK_CHECK(setrlimit(RLIMIT_NOFILE, &none) == 0);
  /* Numbers below it that are free are taken too: then the limit really is reached. */
  enum { FILL_MAX = 4096 };
  static int fill[FILL_MAX];
  int filled = 0;
  while (filled < FILL_MAX && (fill[filled] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
    filled++;
  SHK_CHECK(filled < FILL_MAX && errno == EMFILE);
  shk_shm *shm = NULL;
  int rc = shk_shm_create(name, 4096, &shm);
  SHK_CHECK(rc == SHK_ELIMIT && shm == NULL && shk_last_os_error() == EMFILE);
  rc = shk_shm_create_anonymous(4096, &shm);
  SHK_CHECK(rc == SHK_ELIMIT && shm == NULL && shk_last_os_error() == EMFILE);
  rc = shk_shm_open(other, SHK_SHM_READ_WRITE, &shm);
  SHK_CHECK(rc == SHK_ELIMIT && shm == NULL && shk_last_os_error() == EMFILE);
  for (int i = 0; i < filled; i++) close(fill[i]);
  SHK_CHECK(setrlimit(RLIMIT_NOFILE, &was) == 0);
  /* Nothing was left: the name was never made; everything works again. */
  SHK_CHECK(shk_shm_open(name, SHK_SHM_READ_ONLY, &shm) == SHK_ENOENT);
  SHK_CHECK(shk_shm_create(name, 4096, &shm) == SHK_OK);
  shk_shm_close(shm);
  SHK_CHECK(shk_shm_unlink(name) == SHK_OK);
  SHK_CHECK(shk_shm_open(other, SHK_SHM_READ_WRITE, &shm) == SHK_OK);
  shk_shm_close(shm);
  shk_shm_close(existing);
  SHK_CHECK(shk_shm_unlink(other) == SHK_OK);
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(segments_report_the_descriptor_limit_as_elimit),
};
static const shk_test_child children[] = {
    SHK_TEST_CHILD(segments_report_the_descriptor_limit_as_elimit),
};
#else
static void descriptor_limit_not_settable_here_skipped(void **state) {
  (void)state;
  print_message("the descriptor limit is set with setrlimit on Linux only: nothing to test\n");
  skip();
}
static const struct CMUnitTest tests[] = {
    cmocka_unit_test(descriptor_limit_not_settable_here_skipped),
};
static const shk_test_child children[] = {{NULL, NULL}};
#endif

SHK_TEST_MAIN(tests, children)
