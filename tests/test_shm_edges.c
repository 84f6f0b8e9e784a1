/* Segments made by someone else: a name whose creator has not sized it yet (an empty object) is
 * refused with SHK_ESIZE, read-only or read-write, leaving no descriptor behind; once sized, the
 * same name opens. POSIX only (a Windows section always has a size); skipped, saying so, there. */
/* ctest: labels=unit timeout=60 */
#include <stdio.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#ifndef _WIN32
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Open descriptors of this process, where the system lists them (-1 elsewhere). */
static int open_descriptors(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) d = opendir("/dev/fd");
  if (!d) return -1;
  int n = 0;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}
#endif

static void an_empty_segment_opened_by_name_is_refused_until_it_has_a_size(void **state) {
  (void)state;
#ifdef _WIN32
  printf("SKIPPED: a Windows section cannot be empty\n");
  skip();
#else
  char name[64], os_name[80];
  shk_test_unique_name(name, sizeof name, "empty");
  snprintf(os_name, sizeof os_name, "/%s", name); /* the POSIX name of a portable one */
  int fd = shm_open(os_name, O_RDWR | O_CREAT | O_EXCL, 0600);
  assert_true(fd >= 0);
  int before = open_descriptors();
  shk_shm *shm = (shk_shm *)&shm;
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_WRITE, &shm), SHK_ESIZE);
  assert_null(shm);
  shm = (shk_shm *)&shm;
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_ONLY, &shm), SHK_ESIZE);
  assert_null(shm);
  assert_int_equal(open_descriptors(), before);

  assert_int_equal(ftruncate(fd, 1), 0); /* the smallest size that opens */
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_ONLY, &shm), SHK_OK);
  assert_int_equal(shk_shm_size(shm), 1);
  assert_false(shk_shm_writable(shm));
  shk_shm_close(shm);
  assert_int_equal(open_descriptors(), before);
  close(fd);
  assert_int_equal(shk_shm_unlink(name), SHK_OK);
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_ONLY, &shm), SHK_ENOENT);
#endif
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(an_empty_segment_opened_by_name_is_refused_until_it_has_a_size),
};

static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
