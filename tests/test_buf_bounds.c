/* Buffers and views at their ends: count x item_size at SIZE_MAX (no overflow, no memory) and one
 * item more (overflow); strided views whose last element ends exactly at the buffer's end and one
 * byte past it, element count-1 and count; shk_buf_view_set_f64 at the first and last value each
 * integer type holds and the next value out. */
/* ctest: labels=unit timeout=60 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

/* AddressSanitizer reports an impossible malloc instead of returning NULL (and valgrind counts
 * it as an error): those checks run only without either. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static void sizes_up_to_size_max_do_not_overflow_and_one_item_more_does(void **state) {
  (void)state;
  shk_buf *buf = (shk_buf *)1;
  size_t live = shk_buf_live_count();
  assert_int_equal(shk_buf_create(SIZE_MAX / 2 + 1, 2, NULL, &buf), SHK_EOVERFLOW);
  assert_null(buf);
  assert_int_equal(shk_buf_create(2, SIZE_MAX / 2 + 1, NULL, &buf), SHK_EOVERFLOW);
  assert_int_equal(shk_buf_create(SIZE_MAX, 0, NULL, &buf), SHK_ESIZE);
#ifndef UNDER_ASAN
  /* exactly SIZE_MAX bytes: no overflow, but no system has them (the heap's own path, since
   * such a block cannot carry the buffer's header in front of it). Valgrind counts a malloc
   * of SIZE_MAX as an error ("fishy value"): not there. */
  if (!shk_test_under_valgrind()) {
    assert_int_equal(shk_buf_create(SIZE_MAX, 1, NULL, &buf), SHK_ENOMEM);
    assert_null(buf);
    assert_int_equal(shk_buf_create(SIZE_MAX / 3, 3, NULL, &buf), SHK_ENOMEM);
    shk_buf_options o = {.init = SHK_BUF_INIT_ZERO};
    assert_int_equal(shk_buf_create(SIZE_MAX, 1, &o, &buf), SHK_ENOMEM);
  }
#endif
  assert_int_equal(shk_buf_live_count(), live);
  /* and the heap still works at the small end */
  assert_int_equal(shk_buf_create(1, 1, NULL, &buf), SHK_OK);
  assert_int_equal(shk_buf_size(buf), 1);
  shk_buf_release(buf);
}

static shk_buf *bytes_0_to(size_t n) {
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_create(n, 1, NULL, &buf), SHK_OK);
  unsigned char *p = shk_buf_data(buf);
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)i;
  return buf;
}

static void strided_views_end_exactly_at_the_buffer_end(void **state) {
  (void)state;
  shk_buf *buf = bytes_0_to(40);
  /* stride 6, 6 elements of 4 bytes: at offset 6 the last is bytes [36, 40), the buffer's end */
  const struct {
    size_t offset, count, stride;
    int rc;
  } cases[] = {{3, 6, 6, SHK_OK},     {6, 6, 6, SHK_OK},      {7, 6, 6, SHK_ERANGE},
               {0, 7, 6, SHK_OK},     {0, 8, 6, SHK_ERANGE},  {36, 1, 0, SHK_OK},
               {37, 1, 0, SHK_ERANGE}, {0, 10, 4, SHK_OK},    {0, 11, 4, SHK_ERANGE},
               {40, 1, 4, SHK_ERANGE}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    shk_buf_view_spec s = {.offset = cases[k].offset, .count = cases[k].count,
                           .stride = cases[k].stride, .type = SHK_BUF_BYTES, .elem_size = 4};
    shk_buf_view *v = NULL;
    int rc = shk_buf_view_create(buf, &s, &v);
    if (rc != cases[k].rc) {
      print_error("offset %u count %u stride %u: %s\n", (unsigned)s.offset, (unsigned)s.count,
                  (unsigned)s.stride, shk_error_name(rc));
      fail();
    }
    if (rc != SHK_OK) {
      assert_null(v);
      continue;
    }
    size_t stride = s.stride ? s.stride : 4;
    size_t last = s.offset + (s.count - 1) * stride;
    unsigned char got[4], put[4] = {0xF0, 0xF1, 0xF2, 0xF3};
    assert_int_equal(shk_buf_view_get(v, s.count - 1, got), SHK_OK);
    for (int b = 0; b < 4; b++) assert_int_equal(got[b], (unsigned char)(last + b));
    assert_ptr_equal(shk_buf_view_at(v, s.count - 1), (unsigned char *)shk_buf_data(buf) + last);
    assert_null(shk_buf_view_at(v, s.count));
    assert_int_equal(shk_buf_view_get(v, s.count, got), SHK_ERANGE);
    assert_int_equal(shk_buf_view_set(v, s.count, put), SHK_ERANGE);
    assert_int_equal(shk_buf_view_set(v, s.count - 1, put), SHK_OK);
    assert_memory_equal((unsigned char *)shk_buf_data(buf) + last, put, 4);
    for (int b = 0; b < 4; b++) ((unsigned char *)shk_buf_data(buf))[last + b] = (unsigned char)(last + b);
    shk_buf_view_free(v);
  }
  shk_buf_release(buf);
}

/* Each integer type: its least and greatest value are stored, the next value out is refused
 * and leaves the element unchanged. */
static void numeric_views_take_each_types_range_and_nothing_beyond(void **state) {
  (void)state;
  const struct {
    shk_buf_type type;
    double lo, hi, below, above;
  } types[] = {
      {SHK_BUF_U8, 0, 255, -1, 256},
      {SHK_BUF_I8, -128, 127, -129, 128},
      {SHK_BUF_U16, 0, 65535, -1, 65536},
      {SHK_BUF_I16, -32768, 32767, -32769, 32768},
      {SHK_BUF_U32, 0, 4294967295.0, -1, 4294967296.0},
      {SHK_BUF_I32, -2147483648.0, 2147483647.0, -2147483649.0, 2147483648.0},
      /* the doubles next to 2^64 and 2^63: 2^64 - 2048 is the greatest below 2^64 */
      {SHK_BUF_U64, 0, 18446744073709549568.0, -1, 18446744073709551616.0},
      {SHK_BUF_I64, -9223372036854775808.0, 9223372036854774784.0, -9223372036854777856.0,
       9223372036854775808.0},
  };
  shk_buf *buf = bytes_0_to(16);
  for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
    shk_buf_view_spec s = {.offset = 0, .count = 1, .type = types[k].type};
    shk_buf_view *v = NULL;
    assert_int_equal(shk_buf_view_create(buf, &s, &v), SHK_OK);
    double got = 0;
    assert_int_equal(shk_buf_view_set_f64(v, 0, types[k].lo), SHK_OK);
    assert_int_equal(shk_buf_view_get_f64(v, 0, &got), SHK_OK);
    assert_true(got == types[k].lo);
    assert_int_equal(shk_buf_view_set_f64(v, 0, types[k].hi), SHK_OK);
    assert_int_equal(shk_buf_view_get_f64(v, 0, &got), SHK_OK);
    assert_true(got == types[k].hi);
    const double out[] = {types[k].below, types[k].above, NAN, INFINITY, -INFINITY};
    for (size_t j = 0; j < sizeof out / sizeof out[0]; j++) {
      if (shk_buf_view_set_f64(v, 0, out[j]) != SHK_ERANGE) {
        print_error("type %d took %g\n", (int)types[k].type, out[j]);
        fail();
      }
      assert_int_equal(shk_buf_view_get_f64(v, 0, &got), SHK_OK);
      assert_true(got == types[k].hi); /* unchanged */
    }
    shk_buf_view_free(v);
  }
  shk_buf_release(buf);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(sizes_up_to_size_max_do_not_overflow_and_one_item_more_does),
    cmocka_unit_test(strided_views_end_exactly_at_the_buffer_end),
    cmocka_unit_test(numeric_views_take_each_types_range_and_nothing_beyond),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
