/* Item sizes at their smallest edge: an input of 2-byte items must be a whole number of them
 * (one byte short or over is SHK_EINVAL), while item sizes 0 and 1 (bytes) take any size; each
 * accepted split gives chunks that start and end on item boundaries. Inline mode: nothing spawns. */
/* ctest: labels=unit timeout=60 */
#include <stdint.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

static int nothing_fn(const shk_task_chunk *c, shk_task_out *out) {
  (void)c;
  (void)out;
  return 0;
}

static int run(size_t size, size_t item_size, size_t chunks, shk_task_results **r) {
  static unsigned char input[64];
  shk_task_options o;
  memset(&o, 0, sizeof o);
  o.mode = SHK_TASK_INLINE;
  o.item_size = item_size;
  o.chunks = chunks;
  return shk_task_run(input, size, nothing_fn, &o, r);
}

static void two_byte_items_need_a_whole_number_of_them(void **state) {
  (void)state;
  shk_task_results *r = NULL;
  assert_int_equal(run(23, 2, 4, &r), SHK_EINVAL);
  assert_null(r);
  assert_int_equal(run(25, 2, 4, &r), SHK_EINVAL);
  assert_null(r);
  assert_int_equal(run(1, 2, 1, &r), SHK_EINVAL);
  assert_null(r);
  assert_int_equal(run(24, 2, 5, &r), SHK_OK);
  assert_int_equal(shk_task_results_count(r), 5);
  for (size_t i = 0; i < 5; i++) {
    const shk_task_result *c = shk_task_results_get(r, i);
    assert_int_equal(c->status, SHK_TASK_OK);
    assert_int_equal(c->offset % 2, 0);
    assert_int_equal(c->length % 2, 0);
  }
  shk_task_results_free(r);
}

static void byte_items_take_any_size(void **state) {
  (void)state;
  for (size_t item = 0; item <= 1; item++) {
    shk_task_results *r = NULL;
    assert_int_equal(run(23, item, 4, &r), SHK_OK);
    shk_task_results_free(r);
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(two_byte_items_need_a_whole_number_of_them),
    cmocka_unit_test(byte_items_take_any_size),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
