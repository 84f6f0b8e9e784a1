/* The buffer accessors at their edges: each answers its "none" value (0, NULL, false) for a NULL
 * handle, and, under SHK_DEBUG=buf (which keeps ended handles), for a handle already released,
 * instead of reading freed memory; retain refuses both with SHK_EINVAL, and a live buffer's
 * answers are its own. The SHK_DEBUG case runs in a child process started with the variable. */
/* ctest: labels=unit;multiprocess timeout=60 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

/* Every accessor gives its "none" value for b (NULL, or an ended handle). */
static int all_none(shk_buf *b) {
  SHK_CHECK(shk_buf_data(b) == NULL);
  SHK_CHECK(shk_buf_address(b) == 0);
  SHK_CHECK(shk_buf_size(b) == 0);
  SHK_CHECK(shk_buf_item_size(b) == 0);
  SHK_CHECK(shk_buf_count(b) == 0);
  SHK_CHECK(shk_buf_id(b) == 0);
  SHK_CHECK(shk_buf_consumed(b) == false);
  SHK_CHECK(shk_buf_allocator_name(b) == NULL);
  SHK_CHECK(shk_buf_refcount(b) == 0);
  SHK_CHECK(shk_buf_segment_name(b) == NULL);
  SHK_CHECK(shk_buf_retain(b) == SHK_EINVAL);
  return 0;
}

/* A live buffer of the "shm" allocator: every accessor gives its own value. */
static int all_live(shk_buf *b) {
  SHK_CHECK(shk_buf_data(b) != NULL);
  SHK_CHECK(shk_buf_address(b) == (uintptr_t)shk_buf_data(b));
  SHK_CHECK(shk_buf_size(b) == 24 * 8);
  SHK_CHECK(shk_buf_item_size(b) == 8);
  SHK_CHECK(shk_buf_count(b) == 24);
  SHK_CHECK(shk_buf_id(b) != 0);
  SHK_CHECK(shk_buf_consumed(b) == false);
  SHK_CHECK(shk_buf_allocator_name(b) && strcmp(shk_buf_allocator_name(b), "shm") == 0);
  SHK_CHECK(shk_buf_refcount(b) == 1);
  SHK_CHECK(shk_buf_segment_name(b) != NULL);
  return 0;
}

static shk_buf *shm_buffer(void) {
  shk_buf_options o;
  shk_buf_options_init(&o);
  o.allocator = "shm";
  shk_buf *b = NULL;
  return shk_buf_create(24, 8, &o, &b) == SHK_OK ? b : NULL;
}

static void accessors_answer_none_for_a_null_handle(void **state) {
  (void)state;
  assert_int_equal(all_none(NULL), 0);
  shk_buf *b = shm_buffer();
  assert_non_null(b);
  assert_int_equal(all_live(b), 0);
  /* A heap buffer has no segment name. */
  shk_buf *h = NULL;
  assert_int_equal(shk_buf_create(4, 4, NULL, &h), SHK_OK);
  assert_null(shk_buf_segment_name(h));
  shk_buf_release(h);
  shk_buf_release(b);
}

/* Started with SHK_DEBUG=buf: ended handles are kept and recognised. stderr (the reports) goes
 * to the file named by argv[0]. */
static int ended_handle_child(int argc, char **argv) {
  SHK_CHECK(argc >= 1 && freopen(argv[0], "w", stderr) != NULL);
  shk_buf *b = shm_buffer();
  SHK_CHECK(b != NULL);
  SHK_CHECK(all_live(b) == 0);
  shk_buf_release(b);
  SHK_CHECK(all_none(b) == 0);
  fflush(stderr);
  return 0;
}

static void accessors_answer_none_for_an_ended_handle_under_shk_debug(void **state) {
  (void)state;
  char path[96];
  shk_test_unique_name(path, sizeof path, "acc.txt");
  const char *args[] = {path};
  shk_test_setenv("SHK_DEBUG", "buf");
  shk_test_run_child_ok("ended_handle_child", 1, args, 60000);
  shk_test_setenv("SHK_DEBUG", NULL);
  /* Each refused use was reported. */
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static char text[65536];
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  remove(path);
  assert_non_null(strstr(text, "use after release of buffer id "));
  assert_non_null(strstr(text, "in shk_buf_size"));
  assert_non_null(strstr(text, "in shk_buf_segment_name"));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(accessors_answer_none_for_a_null_handle),
    cmocka_unit_test(accessors_answer_none_for_an_ended_handle_under_shk_debug),
};

static const shk_test_child children[] = {
    {"ended_handle_child", ended_handle_child},
};

SHK_TEST_MAIN(tests, children)
