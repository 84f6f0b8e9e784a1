/* Regions ([start, end), end exclusive) and views (offset, count, stride, element type) that keep
 * their buffer alive. */
/* ctest: labels=unit timeout=60 */
#include <stdint.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

static shk_buf *counting_bytes(size_t n) {
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_create(n, 1, NULL, &buf), SHK_OK);
  unsigned char *p = shk_buf_data(buf);
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)i;
  return buf;
}

static void region_copy_takes_start_inclusive_end_exclusive(void **state) {
  (void)state;
  shk_buf *buf = counting_bytes(16);
  unsigned char out[16];
  memset(out, 0xFF, sizeof out);
  assert_int_equal(shk_buf_region_copy(buf, 3, 6, out, sizeof out), SHK_OK);
  assert_int_equal(out[0], 3);
  assert_int_equal(out[1], 4);
  assert_int_equal(out[2], 5);
  assert_int_equal(out[3], 0xFF); /* byte 6 is not part of [3, 6) */
  assert_int_equal(shk_buf_region_copy(buf, 0, 16, out, sizeof out), SHK_OK);
  assert_int_equal(out[15], 15);
  /* An empty region copies nothing and needs no destination. */
  assert_int_equal(shk_buf_region_copy(buf, 5, 5, NULL, 0), SHK_OK);
  assert_int_equal(shk_buf_region_copy(buf, 16, 16, NULL, 0), SHK_OK);
  shk_buf_release(buf);
}

static void region_copy_checks_bounds(void **state) {
  (void)state;
  shk_buf *buf = counting_bytes(16);
  unsigned char out[32];
  assert_int_equal(shk_buf_region_copy(buf, 0, 17, out, sizeof out), SHK_ERANGE);
  assert_int_equal(shk_buf_region_copy(buf, 6, 5, out, sizeof out), SHK_ERANGE);
  assert_int_equal(shk_buf_region_copy(buf, 17, 17, out, sizeof out), SHK_ERANGE);
  assert_int_equal(shk_buf_region_copy(buf, SIZE_MAX, SIZE_MAX, out, sizeof out), SHK_ERANGE);
  assert_int_equal(shk_buf_region_copy(buf, 0, 8, out, 7), SHK_ESIZE);
  assert_int_equal(shk_buf_region_copy(buf, 0, 8, NULL, 8), SHK_EINVAL);
  assert_int_equal(shk_buf_region_copy(NULL, 0, 0, out, 8), SHK_EINVAL);
  shk_buf_release(buf);
}

static void region_new_copies_into_a_new_buffer(void **state) {
  (void)state;
  shk_buf *buf = counting_bytes(64);
  shk_buf *region = NULL;
  assert_int_equal(shk_buf_region_new(buf, 10, 20, NULL, &region), SHK_OK);
  assert_int_equal(shk_buf_size(region), 10);
  assert_ptr_not_equal(shk_buf_data(region), shk_buf_data(buf));
  assert_int_equal(((unsigned char *)shk_buf_data(region))[0], 10);
  assert_int_equal(((unsigned char *)shk_buf_data(region))[9], 19);
  shk_buf_release(region);
  shk_buf_options o = {.allocator = "aligned", .init = SHK_BUF_INIT_ZERO};
  assert_int_equal(shk_buf_region_new(buf, 0, 64, &o, &region), SHK_OK);
  assert_string_equal(shk_buf_allocator_name(region), "aligned");
  assert_int_equal(((unsigned char *)shk_buf_data(region))[63], 63); /* init ignored */
  shk_buf_release(region);
  region = (shk_buf *)1;
  assert_int_equal(shk_buf_region_new(buf, 5, 5, NULL, &region), SHK_ESIZE);
  assert_null(region);
  assert_int_equal(shk_buf_region_new(buf, 0, 65, NULL, &region), SHK_ERANGE);
  assert_int_equal(shk_buf_region_new(buf, 0, 1, NULL, NULL), SHK_EINVAL);
  assert_int_equal(shk_buf_region_new(NULL, 0, 1, NULL, &region), SHK_EINVAL);
  shk_buf_release(buf);
}

static void a_strided_typed_view_reads_and_writes_the_buffer(void **state) {
  (void)state;
  /* Interleaved x, y pairs of int32; the view sees every y. */
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_create(8, 2 * sizeof(int32_t), NULL, &buf), SHK_OK);
  int32_t *xy = shk_buf_data(buf);
  for (int i = 0; i < 8; i++) {
    xy[2 * i] = i;
    xy[2 * i + 1] = -10 * i;
  }
  shk_buf_view_spec spec = {.offset = sizeof(int32_t), .count = 8, .stride = 2 * sizeof(int32_t),
                            .type = SHK_BUF_I32};
  shk_buf_view *v = NULL;
  assert_int_equal(shk_buf_view_create(buf, &spec, &v), SHK_OK);
  assert_int_equal(shk_buf_view_count(v), 8);
  assert_int_equal(shk_buf_view_stride(v), 8);
  assert_int_equal(shk_buf_view_elem_size(v), 4);
  assert_int_equal(shk_buf_view_type(v), SHK_BUF_I32);
  assert_ptr_equal(shk_buf_view_buffer(v), buf);
  assert_ptr_equal(shk_buf_view_at(v, 0), &xy[1]);
  assert_ptr_equal(shk_buf_view_at(v, 7), &xy[15]);
  assert_null(shk_buf_view_at(v, 8));
  int32_t y = 0;
  assert_int_equal(shk_buf_view_get(v, 3, &y), SHK_OK);
  assert_int_equal(y, -30);
  double d = 0;
  assert_int_equal(shk_buf_view_get_f64(v, 5, &d), SHK_OK);
  assert_true(d == -50.0);
  assert_int_equal(shk_buf_view_set_f64(v, 2, 1234.9), SHK_OK);
  assert_int_equal(xy[5], 1234); /* zero copy: the buffer itself changed */
  int32_t nine = 9;
  assert_int_equal(shk_buf_view_set(v, 0, &nine), SHK_OK);
  assert_int_equal(xy[1], 9);
  assert_int_equal(xy[0], 0); /* the x next to it is untouched */
  assert_int_equal(shk_buf_view_get(v, 8, &y), SHK_ERANGE);
  assert_int_equal(shk_buf_view_set(v, 8, &y), SHK_ERANGE);
  assert_int_equal(shk_buf_view_get_f64(v, 8, &d), SHK_ERANGE);
  assert_int_equal(shk_buf_view_set_f64(v, 8, 1.0), SHK_ERANGE);
  assert_int_equal(shk_buf_view_set_f64(v, 0, 3e10), SHK_ERANGE);
  assert_int_equal(shk_buf_view_get(v, 0, NULL), SHK_EINVAL);
  assert_int_equal(shk_buf_view_set(v, 0, NULL), SHK_EINVAL);
  shk_buf_view_free(v);
  shk_buf_release(buf);
}

static void every_numeric_type_converts_through_double(void **state) {
  (void)state;
  shk_buf_type types[] = {SHK_BUF_U8,  SHK_BUF_I8,  SHK_BUF_U16, SHK_BUF_I16, SHK_BUF_U32,
                          SHK_BUF_I32, SHK_BUF_U64, SHK_BUF_I64, SHK_BUF_F32, SHK_BUF_F64};
  size_t sizes[] = {1, 1, 2, 2, 4, 4, 8, 8, 4, 8};
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_create(4, 8, NULL, &buf), SHK_OK);
  for (size_t t = 0; t < 10; t++) {
    assert_int_equal(shk_buf_type_size(types[t]), sizes[t]);
    shk_buf_view_spec spec = {.offset = 1, .count = 3, .type = types[t]}; /* unaligned on purpose */
    shk_buf_view *v = NULL;
    assert_int_equal(shk_buf_view_create(buf, &spec, &v), SHK_OK);
    double value = (types[t] == SHK_BUF_I8 || types[t] == SHK_BUF_I16 || types[t] == SHK_BUF_I32 ||
                    types[t] == SHK_BUF_I64 || types[t] == SHK_BUF_F32 || types[t] == SHK_BUF_F64)
                       ? -100.0
                       : 100.0;
    assert_int_equal(shk_buf_view_set_f64(v, 2, value), SHK_OK);
    double back = 0;
    assert_int_equal(shk_buf_view_get_f64(v, 2, &back), SHK_OK);
    assert_true(back == value);
    shk_buf_view_free(v);
  }
  assert_int_equal(shk_buf_type_size(SHK_BUF_BYTES), 0);
  assert_int_equal(shk_buf_type_size((shk_buf_type)99), 0);
  shk_buf_release(buf);
}

static void a_bytes_view_has_opaque_elements(void **state) {
  (void)state;
  shk_buf *buf = counting_bytes(30);
  shk_buf_view_spec spec = {.offset = 2, .count = 4, .stride = 7, .type = SHK_BUF_BYTES,
                            .elem_size = 3};
  shk_buf_view *v = NULL;
  assert_int_equal(shk_buf_view_create(buf, &spec, &v), SHK_OK);
  unsigned char e[3];
  assert_int_equal(shk_buf_view_get(v, 3, e), SHK_OK);
  assert_int_equal(e[0], 23);
  assert_int_equal(e[2], 25);
  double d;
  assert_int_equal(shk_buf_view_get_f64(v, 0, &d), SHK_EINVAL);
  assert_int_equal(shk_buf_view_set_f64(v, 0, 1.0), SHK_EINVAL);
  shk_buf_view_free(v);
  shk_buf_release(buf);
}

static void view_create_checks_its_window(void **state) {
  (void)state;
  shk_buf *buf = counting_bytes(32);
  shk_buf_view *v = (shk_buf_view *)1;
  shk_buf_view_spec ok = {.offset = 0, .count = 8, .type = SHK_BUF_U32};
  assert_int_equal(shk_buf_view_create(buf, &ok, &v), SHK_OK); /* exactly the whole buffer */
  shk_buf_view_free(v);
  shk_buf_view_spec s = ok;
  s.count = 9;
  assert_int_equal(shk_buf_view_create(buf, &s, &v), SHK_ERANGE);
  assert_null(v);
  s = ok;
  s.offset = 1;
  assert_int_equal(shk_buf_view_create(buf, &s, &v), SHK_ERANGE);
  s = ok;
  s.count = 0;
  assert_int_equal(shk_buf_view_create(buf, &s, &v), SHK_ESIZE);
  s = ok;
  s.stride = 2; /* elements may not overlap */
  assert_int_equal(shk_buf_view_create(buf, &s, &v), SHK_EINVAL);
  s = ok;
  s.elem_size = 8; /* contradicts the type */
  assert_int_equal(shk_buf_view_create(buf, &s, &v), SHK_EINVAL);
  s = ok;
  s.type = (shk_buf_type)77;
  assert_int_equal(shk_buf_view_create(buf, &s, &v), SHK_EINVAL);
  s = ok;
  s.type = SHK_BUF_BYTES;
  s.elem_size = 0;
  assert_int_equal(shk_buf_view_create(buf, &s, &v), SHK_ESIZE);
  s = ok;
  s.stride = SIZE_MAX / 2;
  s.count = 3;
  assert_int_equal(shk_buf_view_create(buf, &s, &v), SHK_EOVERFLOW);
  s = ok;
  s.offset = SIZE_MAX;
  assert_int_equal(shk_buf_view_create(buf, &s, &v), SHK_EOVERFLOW);
  assert_int_equal(shk_buf_view_create(NULL, &ok, &v), SHK_EINVAL);
  assert_int_equal(shk_buf_view_create(buf, NULL, &v), SHK_EINVAL);
  assert_int_equal(shk_buf_view_create(buf, &ok, NULL), SHK_EINVAL);
  assert_int_equal(shk_buf_refcount(buf), 1); /* failures took no reference */
  shk_buf_release(buf);
}

static int destroyed_calls;
static void count_destroy(const shk_buf_info *info, void *user) {
  (void)info;
  (void)user;
  destroyed_calls++;
}

static void a_view_keeps_its_buffer_alive(void **state) {
  (void)state;
  destroyed_calls = 0;
  shk_buf *buf = NULL;
  shk_buf_options o = {.init = SHK_BUF_INIT_BYTE, .init_byte = 42, .on_destroy = count_destroy};
  assert_int_equal(shk_buf_create(16, 1, &o, &buf), SHK_OK);
  shk_buf_view_spec spec = {.count = 16, .type = SHK_BUF_U8};
  shk_buf_view *v = NULL;
  assert_int_equal(shk_buf_view_create(buf, &spec, &v), SHK_OK);
  assert_int_equal(shk_buf_refcount(buf), 2);
  shk_buf_release(buf); /* the owner lets go; the view still reads valid memory */
  assert_int_equal(destroyed_calls, 0);
  double d = 0;
  assert_int_equal(shk_buf_view_get_f64(v, 15, &d), SHK_OK);
  assert_true(d == 42.0);
  shk_buf_view_free(v);
  assert_int_equal(destroyed_calls, 1);
}

static void view_accessors_accept_null(void **state) {
  (void)state;
  shk_buf_view_free(NULL);
  assert_null(shk_buf_view_at(NULL, 0));
  assert_int_equal(shk_buf_view_count(NULL), 0);
  assert_int_equal(shk_buf_view_stride(NULL), 0);
  assert_int_equal(shk_buf_view_elem_size(NULL), 0);
  assert_int_equal(shk_buf_view_type(NULL), SHK_BUF_BYTES);
  assert_null(shk_buf_view_buffer(NULL));
  double d;
  assert_int_equal(shk_buf_view_get(NULL, 0, &d), SHK_EINVAL);
  assert_int_equal(shk_buf_view_get_f64(NULL, 0, &d), SHK_EINVAL);
  assert_int_equal(shk_buf_view_set_f64(NULL, 0, 1.0), SHK_EINVAL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(region_copy_takes_start_inclusive_end_exclusive),
    cmocka_unit_test(region_copy_checks_bounds),
    cmocka_unit_test(region_new_copies_into_a_new_buffer),
    cmocka_unit_test(a_strided_typed_view_reads_and_writes_the_buffer),
    cmocka_unit_test(every_numeric_type_converts_through_double),
    cmocka_unit_test(a_bytes_view_has_opaque_elements),
    cmocka_unit_test(view_create_checks_its_window),
    cmocka_unit_test(a_view_keeps_its_buffer_alive),
    cmocka_unit_test(view_accessors_accept_null),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
