/* The lens producer's calls at the edges of their arguments: a plot value at the largest finite
 * double is sent, infinities and NaN are SHK_EINVAL; a heap event whose address + size is
 * exactly UINT64_MAX is sent, one more is SHK_EINVAL; NULL handles, names, formats and outputs
 * are SHK_EINVAL everywhere; a log of exactly SHK_LENS_LOG_MAX bytes and a longer one (cut to
 * the limit) are both sent. Nothing is sent by a refused call. */
/* ctest: labels=unit timeout=60 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"
#include "shmkit/lens_wire.h"

static shk_lens *open_lens(char *name, size_t size) {
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.full_wait_ns = 0;
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, size, "api"), &o, &lens), SHK_OK);
  return lens;
}

static uint64_t sent(shk_lens *lens, int kind) {
  shk_lens_stats st;
  assert_int_equal(shk_lens_stats_get(lens, &st), SHK_OK);
  return st.sent[kind];
}

static void plot_values_at_the_edges_of_finite(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_lens(name, sizeof name);
  assert_int_equal(shk_lens_plot(lens, "p", DBL_MAX, 0), SHK_OK);
  assert_int_equal(shk_lens_plot(lens, "p", -DBL_MAX, 0), SHK_OK);
  assert_int_equal(shk_lens_plot(lens, "p", INFINITY, 0), SHK_EINVAL);
  assert_int_equal(shk_lens_plot(lens, "p", -INFINITY, 0), SHK_EINVAL);
  assert_int_equal(shk_lens_plot(lens, "p", NAN, 0), SHK_EINVAL);
  assert_int_equal(shk_lens_plot(lens, NULL, 1.0, 0), SHK_EINVAL);
  assert_int_equal(shk_lens_plot(NULL, "p", 1.0, 0), SHK_EINVAL);
  assert_int_equal(sent(lens, SHK_LENS_PLOT), 2);
  shk_lens_close(lens);
}

static void heap_ranges_up_to_the_end_of_the_address_space(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_lens(name, sizeof name);
  assert_int_equal(shk_lens_heap(lens, UINT64_MAX - 16, 16, false), SHK_OK);
  assert_int_equal(shk_lens_heap(lens, UINT64_MAX, 0, true), SHK_OK);
  assert_int_equal(shk_lens_heap(lens, UINT64_MAX - 16, 17, false), SHK_EINVAL);
  assert_int_equal(shk_lens_heap(lens, 1, UINT64_MAX, false), SHK_EINVAL);
  assert_int_equal(shk_lens_heap(NULL, 0, 0, false), SHK_EINVAL);
  assert_int_equal(sent(lens, SHK_LENS_HEAP), 2);
  shk_lens_close(lens);
}

static void logs_at_their_limit_and_null_arguments(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_lens(name, sizeof name);
  static char text[SHK_LENS_LOG_MAX + 2];
  memset(text, 'x', SHK_LENS_LOG_MAX);
  assert_int_equal(shk_lens_log(lens, 0, "%s", text), SHK_OK);
  text[SHK_LENS_LOG_MAX] = 'y'; /* one more: cut to the limit, still sent */
  assert_int_equal(shk_lens_log(lens, 0, "%s", text), SHK_OK);
  /* A NULL format, through a pointer to the function (which carries no format attribute, so
   * neither gcc nor clang's -Wformat-security objects to the test's deliberate misuse). */
  int (*log_fn)(shk_lens *, uint32_t, const char *, ...) = shk_lens_log;
  const char *volatile no_format = NULL;
  assert_int_equal(log_fn(lens, 0, no_format), SHK_EINVAL);
  assert_int_equal(shk_lens_log(NULL, 0, "x"), SHK_EINVAL);
  assert_int_equal(sent(lens, SHK_LENS_LOG), 2);
  shk_lens_stats st;
  assert_int_equal(shk_lens_stats_get(NULL, &st), SHK_EINVAL);
  assert_int_equal(shk_lens_stats_get(lens, NULL), SHK_EINVAL);
  shk_lens_close(lens);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(plot_values_at_the_edges_of_finite),
    cmocka_unit_test(heap_ranges_up_to_the_end_of_the_address_space),
    cmocka_unit_test(logs_at_their_limit_and_null_arguments),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
