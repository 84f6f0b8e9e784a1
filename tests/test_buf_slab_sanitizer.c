/* Buffer slabs under an address sanitizer (src/common/buf_slab.c, src/posix/sanitizer.c). A
 * slab is one malloc block of many buffers, so without help a program's own sanitizer would not
 * see a write past a buffer's end: it lands in the next slot. With ASan's runtime in the
 * process, each slot is followed by a poisoned red zone: the program's checks report the write,
 * as they would past a malloc block. (A released slot is not poisoned, as a parked object is
 * not.) The bad write runs in a child, which ASan ends with its report.
 * Skipped (visibly) where no sanitizer is in the process: the plain, valgrind and wine runs; the
 * ASan+UBSan run of the test command runs it. */
/* ctest: labels=unit;internal;multiprocess timeout=120 */
#include <stdio.h>
#include <stdlib.h>

#include "shk_test.h"
#include "common/buf_internal.h"

enum {
  MANY = 3000, /* more than a thread parks of one class */
  SIZE = 64,
  UNSEEN = 100 /* a child's exit code when its bad write went unreported */
};

static shk_buf *held[MANY];

/* MANY live buffers of SIZE bytes, each a slab's slot; false on failure. */
static bool make_many(void) {
  for (int k = 0; k < MANY; k++)
    if (shk_buf_create(SIZE, 1, NULL, &held[k]) != SHK_OK || !held[k]->in_slab) return false;
  return true;
}

static int inside_child(int argc, char **argv) {
  (void)argc;
  (void)argv;
  SHK_CHECK(make_many());
  volatile unsigned char *p = shk_buf_data(held[MANY / 2]);
  p[0] = 1;
  p[SIZE - 1] = 2; /* the last byte is the buffer's */
  SHK_CHECK(p[0] + p[SIZE - 1] == 3);
  for (int k = 0; k < MANY; k++) shk_buf_release(held[k]);
  return 0;
}

static int overflow_child(int argc, char **argv) {
  (void)argc;
  (void)argv;
  SHK_CHECK(make_many());
  volatile unsigned char *p = shk_buf_data(held[MANY / 2]);
  fprintf(stderr, "writing one byte past a slab buffer's end\n");
  p[SIZE] = 1;
  return UNSEEN;
}

/* Runs child `name`, which must end with the sanitizer's exit code (1 unless ASAN_OPTIONS sets
 * another), not by a signal, a timeout or UNSEEN. */
static void expect_reported(const char *name) {
  shk_test_proc proc;
  assert_int_equal(shk_test_spawn(name, 0, NULL, &proc), 0);
  shk_test_exit how = shk_test_wait(&proc, 60000);
  assert_false(how.timed_out);
  assert_false(how.killed);
  assert_int_equal(how.code, 1);
}

static void skip_without_sanitizer(void) {
  if (!shk__os_sanitizer_present()) {
    fprintf(stderr, "no address sanitizer in this process: nothing to show\n");
    skip();
  }
}

static void a_slab_buffer_is_usable_to_its_last_byte(void **state) {
  (void)state;
  skip_without_sanitizer();
  shk_test_run_child_ok("inside", 0, NULL, 60000);
}

static void a_write_past_a_slab_buffers_end_is_reported(void **state) {
  (void)state;
  skip_without_sanitizer();
  expect_reported("overflow");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_slab_buffer_is_usable_to_its_last_byte),
    cmocka_unit_test(a_write_past_a_slab_buffers_end_is_reported),
};

static const shk_test_child children[] = {
    {"inside", inside_child},
    {"overflow", overflow_child},
};

SHK_TEST_MAIN(tests, children)
