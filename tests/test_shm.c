/* Shared-memory segments: every function, every error path, and real sharing between processes. */
/* ctest: labels=unit;multiprocess timeout=120 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 30000

static void name_check_accepts_the_portable_alphabet(void **state) {
  (void)state;
  assert_int_equal(shk_shm_name_check("a"), SHK_OK);
  assert_int_equal(shk_shm_name_check("Seg_1.data-x"), SHK_OK);
  char longest[SHK_SHM_NAME_MAX + 1];
  memset(longest, 'n', SHK_SHM_NAME_MAX);
  longest[SHK_SHM_NAME_MAX] = '\0';
  assert_int_equal(shk_shm_name_check(longest), SHK_OK);
}

static void name_check_rejects_bad_names(void **state) {
  (void)state;
  char too_long[SHK_SHM_NAME_MAX + 2];
  memset(too_long, 'n', SHK_SHM_NAME_MAX + 1);
  too_long[SHK_SHM_NAME_MAX + 1] = '\0';
  assert_int_equal(shk_shm_name_check(NULL), SHK_EINVAL);
  assert_int_equal(shk_shm_name_check(""), SHK_ENAME);
  assert_int_equal(shk_shm_name_check(too_long), SHK_ENAME);
  assert_int_equal(shk_shm_name_check("a/b"), SHK_ENAME);
  assert_int_equal(shk_shm_name_check("a\\b"), SHK_ENAME);
  assert_int_equal(shk_shm_name_check("sp ace"), SHK_ENAME);
  assert_int_equal(shk_shm_name_check(".hidden"), SHK_ENAME);
  assert_int_equal(shk_shm_name_check("caf\xc3\xa9"), SHK_ENAME);
}

static void create_gives_a_zeroed_page_rounded_writable_mapping(void **state) {
  (void)state;
  char name[64];
  shk_shm *shm = NULL;
  assert_int_equal(shk_shm_create(shk_test_unique_name(name, sizeof name, "c"), 100, &shm), SHK_OK);
  assert_non_null(shm);
  size_t size = shk_shm_size(shm);
  assert_true(size >= 100);
  assert_int_equal(size % 4096, 0);
  unsigned char *p = shk_shm_data(shm);
  assert_non_null(p);
  for (size_t i = 0; i < size; i++) assert_int_equal(p[i], 0);
  memset(p, 0xAB, size);
  assert_string_equal(shk_shm_name(shm), name);
  assert_true(shk_shm_writable(shm));
  shk_shm_close(shm);
  assert_int_equal(shk_shm_unlink(name), SHK_OK);
}

static void create_refuses_bad_arguments_and_leaves_nothing(void **state) {
  (void)state;
  char name[64];
  shk_test_unique_name(name, sizeof name, "bad");
  shk_shm *shm = (shk_shm *)1;
  assert_int_equal(shk_shm_create(name, 4096, NULL), SHK_EINVAL);
  assert_int_equal(shk_shm_create(NULL, 4096, &shm), SHK_EINVAL);
  assert_null(shm);
  assert_int_equal(shk_shm_create("no/slash", 4096, &shm), SHK_ENAME);
  assert_int_equal(shk_shm_create(name, 0, &shm), SHK_ESIZE);
  assert_int_equal(shk_shm_create(name, SIZE_MAX, &shm), SHK_ESIZE);
  assert_int_equal(shk_shm_create(name, SIZE_MAX / 2, &shm), SHK_ESIZE);
  assert_null(shm);
  /* None of the failures may have left the name behind. */
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_ONLY, &shm), SHK_ENOENT);
#ifdef _WIN32
  assert_int_equal(shk_shm_unlink(name), SHK_OK); /* Windows names cannot be removed: a no-op */
#else
  assert_int_equal(shk_shm_unlink(name), SHK_ENOENT);
#endif
}

static void create_is_exclusive(void **state) {
  (void)state;
  char name[64];
  shk_shm *a = NULL, *b = (shk_shm *)1;
  assert_int_equal(shk_shm_create(shk_test_unique_name(name, sizeof name, "x"), 4096, &a), SHK_OK);
  assert_int_equal(shk_shm_create(name, 4096, &b), SHK_EEXIST);
  assert_null(b);
  shk_shm_close(a);
  assert_int_equal(shk_shm_unlink(name), SHK_OK);
}

static void open_sees_the_same_bytes_and_size(void **state) {
  (void)state;
  char name[64];
  shk_shm *a = NULL, *b = NULL;
  assert_int_equal(shk_shm_create(shk_test_unique_name(name, sizeof name, "o"), 10000, &a), SHK_OK);
  strcpy(shk_shm_data(a), "hello");
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_WRITE, &b), SHK_OK);
  assert_int_equal(shk_shm_size(b), shk_shm_size(a));
  assert_string_equal(shk_shm_data(b), "hello");
  assert_ptr_not_equal(shk_shm_data(a), shk_shm_data(b));
  strcpy(shk_shm_data(b), "world");
  assert_string_equal(shk_shm_data(a), "world");
  shk_shm_close(b);
  shk_shm_close(a);
  assert_int_equal(shk_shm_unlink(name), SHK_OK);
}

static void open_read_only_is_not_writable(void **state) {
  (void)state;
  char name[64];
  shk_shm *a = NULL, *b = NULL;
  assert_int_equal(shk_shm_create(shk_test_unique_name(name, sizeof name, "ro"), 4096, &a), SHK_OK);
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_ONLY, &b), SHK_OK);
  assert_false(shk_shm_writable(b));
  shk_shm_close(b);
  shk_shm_close(a);
  shk_shm_unlink(name);
}

static void open_fails_when_segment_is_missing(void **state) {
  (void)state;
  char name[64];
  shk_shm *shm = (shk_shm *)1;
  assert_int_equal(shk_shm_open(shk_test_unique_name(name, sizeof name, "m"), SHK_SHM_READ_WRITE, &shm),
                   SHK_ENOENT);
  assert_null(shm);
}

static void open_refuses_bad_arguments(void **state) {
  (void)state;
  shk_shm *shm = NULL;
  assert_int_equal(shk_shm_open("x", SHK_SHM_READ_WRITE, NULL), SHK_EINVAL);
  assert_int_equal(shk_shm_open("x", (shk_shm_access)7, &shm), SHK_EINVAL);
  assert_int_equal(shk_shm_open("", SHK_SHM_READ_WRITE, &shm), SHK_ENAME);
  assert_int_equal(shk_shm_open(NULL, SHK_SHM_READ_WRITE, &shm), SHK_EINVAL);
  assert_int_equal(shk_shm_unlink("bad name"), SHK_ENAME);
  assert_int_equal(shk_shm_unlink(NULL), SHK_EINVAL);
}

static void anonymous_segments_have_no_name(void **state) {
  (void)state;
  shk_shm *shm = NULL;
  assert_int_equal(shk_shm_create_anonymous(1, &shm), SHK_OK);
  assert_null(shk_shm_name(shm));
  assert_true(shk_shm_size(shm) >= 1);
  ((char *)shk_shm_data(shm))[0] = 'z';
  shk_shm_close(shm);
  assert_int_equal(shk_shm_create_anonymous(0, &shm), SHK_ESIZE);
  assert_int_equal(shk_shm_create_anonymous(16, NULL), SHK_EINVAL);
}

static void accessors_accept_null(void **state) {
  (void)state;
  assert_null(shk_shm_data(NULL));
  assert_int_equal(shk_shm_size(NULL), 0);
  assert_null(shk_shm_name(NULL));
  assert_false(shk_shm_writable(NULL));
  shk_shm_close(NULL);
}

static void find_traces_a_pointer_to_its_segment(void **state) {
  (void)state;
  shk_shm *shm = NULL, *found = NULL;
  size_t offset = 0;
  int local = 0;
  assert_int_equal(shk_shm_create_anonymous(8192, &shm), SHK_OK);
  char *p = shk_shm_data(shm);
  assert_int_equal(shk_shm_find(p + 100, 50, &found, &offset), SHK_OK);
  assert_ptr_equal(found, shm);
  assert_int_equal(offset, 100);
  assert_int_equal(shk_shm_find(p + 8000, 500, &found, &offset), SHK_ENOENT);
  assert_int_equal(shk_shm_find(&local, sizeof local, &found, &offset), SHK_ENOENT);
  assert_int_equal(shk_shm_find(NULL, 1, &found, &offset), SHK_EINVAL);
  shk_shm_close(shm);
  assert_int_equal(shk_shm_find(p + 100, 50, &found, &offset), SHK_ENOENT);
}

/* ---- across processes ---- */

static int child_writes_greeting(int argc, char **argv) {
  if (argc < 1) return 10;
  shk_shm *shm = NULL;
  if (shk_shm_open(argv[0], SHK_SHM_READ_WRITE, &shm) != SHK_OK) return 11;
  strcpy(shk_shm_data(shm), "written by the child");
  shk_shm_close(shm);
  return 0;
}

static int child_tries_to_create(int argc, char **argv) {
  if (argc < 1) return 10;
  shk_shm *shm = NULL;
  int rc = shk_shm_create(argv[0], 4096, &shm);
  shk_shm_close(shm);
  return rc == SHK_EEXIST ? 0 : 20;
}

static void a_child_process_writes_and_the_parent_sees_it(void **state) {
  (void)state;
  char name[64];
  shk_shm *shm = NULL;
  assert_int_equal(shk_shm_create(shk_test_unique_name(name, sizeof name, "mp"), 4096, &shm), SHK_OK);
  const char *args[] = {name};
  shk_test_run_child_ok("writes_greeting", 1, args, CHILD_TIMEOUT_MS);
  assert_string_equal(shk_shm_data(shm), "written by the child");
  shk_shm_close(shm);
  assert_int_equal(shk_shm_unlink(name), SHK_OK);
}

static void a_child_cannot_create_a_name_that_exists(void **state) {
  (void)state;
  char name[64];
  shk_shm *shm = NULL;
  assert_int_equal(shk_shm_create(shk_test_unique_name(name, sizeof name, "ex"), 4096, &shm), SHK_OK);
  const char *args[] = {name};
  shk_test_run_child_ok("tries_to_create", 1, args, CHILD_TIMEOUT_MS);
  shk_shm_close(shm);
  assert_int_equal(shk_shm_unlink(name), SHK_OK);
}

static void close_and_unlink_leave_nothing_behind(void **state) {
  (void)state;
  char name[64];
  shk_shm *shm = NULL;
  assert_int_equal(shk_shm_create(shk_test_unique_name(name, sizeof name, "gone"), 4096, &shm), SHK_OK);
#ifdef __linux__ /* macOS has no file system view of shm names */
  char path[128];
  snprintf(path, sizeof path, "/dev/shm/%s", name);
  FILE *f = fopen(path, "r");
  assert_non_null(f); /* the segment is visible where Linux keeps them... */
  fclose(f);
#endif
  shk_shm_close(shm);
  assert_int_equal(shk_shm_unlink(name), SHK_OK);
#ifdef __linux__
  assert_null(fopen(path, "r")); /* ...and gone after close + unlink */
#endif
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_ONLY, &shm), SHK_ENOENT);
}

static void the_name_can_be_created_again_after_unlink(void **state) {
  (void)state;
  char name[64];
  shk_shm *shm = NULL;
  shk_test_unique_name(name, sizeof name, "again");
  for (int i = 0; i < 3; i++) {
    assert_int_equal(shk_shm_create(name, 4096, &shm), SHK_OK);
    shk_shm_close(shm);
    assert_int_equal(shk_shm_unlink(name), SHK_OK);
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(name_check_accepts_the_portable_alphabet),
    cmocka_unit_test(name_check_rejects_bad_names),
    cmocka_unit_test(create_gives_a_zeroed_page_rounded_writable_mapping),
    cmocka_unit_test(create_refuses_bad_arguments_and_leaves_nothing),
    cmocka_unit_test(create_is_exclusive),
    cmocka_unit_test(open_sees_the_same_bytes_and_size),
    cmocka_unit_test(open_read_only_is_not_writable),
    cmocka_unit_test(open_fails_when_segment_is_missing),
    cmocka_unit_test(open_refuses_bad_arguments),
    cmocka_unit_test(anonymous_segments_have_no_name),
    cmocka_unit_test(accessors_accept_null),
    cmocka_unit_test(find_traces_a_pointer_to_its_segment),
    cmocka_unit_test(a_child_process_writes_and_the_parent_sees_it),
    cmocka_unit_test(a_child_cannot_create_a_name_that_exists),
    cmocka_unit_test(close_and_unlink_leave_nothing_behind),
    cmocka_unit_test(the_name_can_be_created_again_after_unlink),
};

static const shk_test_child children[] = {
    {"writes_greeting", child_writes_greeting},
    {"tries_to_create", child_tries_to_create},
};

SHK_TEST_MAIN(tests, children)
