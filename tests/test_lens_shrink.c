/* A lens segment shrunk under a reader in the library (POSIX ftruncate by a process with write
 * access): a reader that begins a read pass after the shrink reports it and never touches the
 * segment again, instead of dying of SIGBUS. Windows cannot shrink a mapped section: the test
 * says so and passes. */
/* ctest: labels=unit;multiprocess;fault timeout=60 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#ifndef _WIN32
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHILD_TIMEOUT_MS 30000

static int count_events(shk_lens_reader *r) {
  int n = 0;
  shk_lens_event e;
  while (shk_lens_reader_next(r, &e) == SHK_OK) n++;
  return n;
}

/* argv[0]: the lens name; argv[1]: the size to shrink it to. Exit 0 when every call after the
 * shrink reports it or stays harmless; a SIGBUS kills the child (the parent sees the signal). */
static int child_shrinks_under_its_reader(int argc, char **argv) {
  if (argc < 2) return 2;
  shk_lens *lens = NULL;
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.max_threads = 2;
  if (shk_lens_open(argv[0], &o, &lens) != SHK_OK) return 3;
  shk_lens_reader *r = NULL;
  if (shk_lens_reader_open(argv[0], NULL, &r) != SHK_OK) return 4;
  for (int i = 0; i < 100; i++) {
    shk_lens_zone z;
    shk_lens_zone_begin(lens, &z, "before", 0);
    shk_lens_zone_end(&z);
  }
  if (count_events(r) == 0) return 5;
  for (int i = 0; i < 100; i++) { /* records the reader has not taken yet */
    shk_lens_zone z;
    shk_lens_zone_begin(lens, &z, "after", 0);
    shk_lens_zone_end(&z);
  }
  char os_name[80];
  snprintf(os_name, sizeof os_name, "/%s", argv[0]);
  int fd = shm_open(os_name, O_RDWR, 0);
  if (fd < 0) return 6;
  if (ftruncate(fd, (off_t)strtoull(argv[1], NULL, 10)) != 0) return 7;
  close(fd);
  /* From here the producer must not write either (it would fault too): only the reader runs. */
  size_t n = 99;
  if (shk_lens_reader_drain(r, NULL, NULL, &n) != SHK_EFORMAT || n != 0) return 10;
  if (shk_lens_reader_poll(r, 1000000u, NULL, NULL, &n) != SHK_EFORMAT) return 11;
  shk_lens_event e;
  if (shk_lens_reader_next(r, &e) != SHK_ENOENT) return 12;
  if (!shk_lens_reader_finished(r)) return 13;
  shk_lens_stats st;
  if (shk_lens_reader_stats(r, &st) != SHK_OK) return 14;
  shk_lens_thread_info info[4];
  size_t count = 0;
  if (shk_lens_reader_threads(r, info, 4, &count) != SHK_OK) return 15;
  shk_lens_reader_close(r);
  shk_shm_unlink(argv[0]);
  _exit(0); /* the producer's handle is left: closing it would touch the segment */
}

static void check_shrink(const char *size) {
  char name[64];
  shk_test_unique_name(name, sizeof name, "sh");
  const char *args[] = {name, size};
  shk_test_proc proc;
  assert_int_equal(shk_test_spawn("shrinks_under_its_reader", 2, args, &proc), 0);
  shk_test_exit how = shk_test_wait(&proc, CHILD_TIMEOUT_MS);
  shk_shm_unlink(name);
  if (how.killed) fprintf(stderr, "child killed by signal %d\n", how.code);
  assert_int_equal(how.killed, 0);
  assert_int_equal(how.timed_out, 0);
  assert_int_equal(how.code, 0);
}

static void a_segment_emptied_under_the_reader_is_reported_not_faulted(void **state) {
  (void)state;
  check_shrink("0");
}

static void a_segment_cut_after_its_header_is_reported_not_faulted(void **state) {
  (void)state;
  check_shrink("4096");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_segment_emptied_under_the_reader_is_reported_not_faulted),
    cmocka_unit_test(a_segment_cut_after_its_header_is_reported_not_faulted),
};

static const shk_test_child children[] = {
    {"shrinks_under_its_reader", child_shrinks_under_its_reader},
};
#else
static void windows_cannot_shrink_a_mapped_section(void **state) {
  (void)state;
  printf("a mapped section cannot be shrunk on Windows: nothing to test\n");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(windows_cannot_shrink_a_mapped_section),
};

static const shk_test_child children[] = {{NULL, NULL}};
#endif

SHK_TEST_MAIN(tests, children)
