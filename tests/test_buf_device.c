/* Device mapping through the compiled backend (CUDA when the toolkit was found, none otherwise):
 * argument errors everywhere, "no device" without a GPU, and real map/update/unmap on a GPU.
 * Tests that need a GPU call skip() where there is none, so the output shows them SKIPPED. */
/* ctest: labels=unit timeout=60 */
#include <stdint.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

static shk_buf *bytes(size_t n, unsigned char fill) {
  shk_buf *buf = NULL;
  shk_buf_options o = {.init = SHK_BUF_INIT_BYTE, .init_byte = fill};
  assert_int_equal(shk_buf_create(n, 1, &o, &buf), SHK_OK);
  return buf;
}

/* The number of devices, or a visible skip of the calling test when there is none. */
static int devices_or_skip(void) {
  int n = 0;
  int rc = shk_buf_device_count(&n);
  if (rc == SHK_ENODEV) {
    print_message("no usable CUDA device: %s\n", shk_strerror(rc));
    skip();
  }
  assert_int_equal(rc, SHK_OK);
  return n;
}

static void device_count_reports_devices_or_no_device(void **state) {
  (void)state;
  int n = -1;
  int rc = shk_buf_device_count(&n);
  assert_true(rc == SHK_OK || rc == SHK_ENODEV);
  if (rc == SHK_OK) assert_true(n > 0);
  else assert_int_equal(n, 0);
  assert_int_equal(shk_buf_device_count(NULL), SHK_EINVAL);
}

static void device_calls_check_their_arguments(void **state) {
  (void)state;
  shk_buf *buf = bytes(64, 1);
  void *ptr = (void *)1;
  assert_int_equal(shk_buf_device_map(NULL, 0, SHK_BUF_DEVICE_COPY), SHK_EINVAL);
  assert_int_equal(shk_buf_device_map(buf, 0, (shk_buf_device_mode)0), SHK_EINVAL);
  assert_int_equal(shk_buf_device_map(buf, 0, (shk_buf_device_mode)3), SHK_EINVAL);
  assert_int_equal(shk_buf_device_update(NULL, SHK_BUF_TO_DEVICE, 0, 1), SHK_EINVAL);
  assert_int_equal(shk_buf_device_update(buf, (shk_buf_device_dir)0, 0, 1), SHK_EINVAL);
  assert_int_equal(shk_buf_device_update(buf, (shk_buf_device_dir)4, 0, 1), SHK_EINVAL);
  assert_int_equal(shk_buf_device_unmap(NULL), SHK_EINVAL);
  assert_int_equal(shk_buf_device_pointer(NULL, &ptr), SHK_EINVAL);
  assert_int_equal(shk_buf_device_pointer(buf, NULL), SHK_EINVAL);
  assert_false(shk_buf_device_mapped(NULL));
  /* Not mapped: the state errors come before any device is needed. */
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_TO_DEVICE, 0, 1), SHK_ESTATE);
  assert_int_equal(shk_buf_device_unmap(buf), SHK_ESTATE);
  assert_int_equal(shk_buf_device_pointer(buf, &ptr), SHK_ESTATE);
  assert_null(ptr);
  assert_false(shk_buf_device_mapped(buf));
  shk_buf_release(buf);
}

static void without_a_device_mapping_says_no_device(void **state) {
  (void)state;
  int n = 0;
  if (shk_buf_device_count(&n) == SHK_OK) {
    print_message("a CUDA device is present: the no-device path cannot be shown\n");
    skip();
  }
  shk_buf *buf = bytes(64, 1);
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_ENODEV);
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_PINNED), SHK_ENODEV);
  assert_false(shk_buf_device_mapped(buf));
  shk_buf_release(buf);
}

static void cuda_copy_mapping_updates_a_sub_range_and_maps_again(void **state) {
  (void)state;
  devices_or_skip();
  shk_buf *buf = bytes(4096, 0x11);
  unsigned char *p = shk_buf_data(buf);
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_OK);
  assert_true(shk_buf_device_mapped(buf));
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_ESTATE);
  memset(p + 100, 0x22, 50);
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_TO_DEVICE, 100, 50), SHK_OK);
  memset(p, 0, 4096);
  /* Back from the device: only [1000, 1200) comes back, and it holds the first fill. */
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_FROM_DEVICE, 1000, 200), SHK_OK);
  assert_int_equal(p[999], 0);
  assert_int_equal(p[1000], 0x11);
  assert_int_equal(p[1199], 0x11);
  assert_int_equal(p[1200], 0);
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_FROM_DEVICE, 100, 50), SHK_OK);
  assert_int_equal(p[149], 0x22);
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_BOTH, 4000, 97), SHK_ERANGE);
  assert_int_equal(shk_buf_device_unmap(buf), SHK_OK);
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_OK); /* enter again */
  shk_buf_release(buf); /* destruction unmaps */
}

static void cuda_pinned_mapping_gives_a_device_pointer(void **state) {
  (void)state;
  devices_or_skip();
  shk_buf *buf = bytes(8192, 3);
  void *dev = NULL;
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_PINNED), SHK_OK);
  assert_int_equal(shk_buf_device_pointer(buf, &dev), SHK_OK);
  assert_non_null(dev);
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_BOTH, 0, 8192), SHK_OK);
  assert_int_equal(shk_buf_device_unmap(buf), SHK_OK);
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_PINNED), SHK_OK);
  shk_buf_release(buf);
}

static void cuda_refuses_a_device_that_does_not_exist(void **state) {
  (void)state;
  int n = devices_or_skip();
  shk_buf *buf = bytes(16, 0);
  assert_int_equal(shk_buf_device_map(buf, n, SHK_BUF_DEVICE_COPY), SHK_ERANGE);
  assert_int_equal(shk_buf_device_map(buf, -1, SHK_BUF_DEVICE_COPY), SHK_ERANGE);
  shk_buf_release(buf);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(device_count_reports_devices_or_no_device),
    cmocka_unit_test(device_calls_check_their_arguments),
    cmocka_unit_test(without_a_device_mapping_says_no_device),
    cmocka_unit_test(cuda_copy_mapping_updates_a_sub_range_and_maps_again),
    cmocka_unit_test(cuda_pinned_mapping_gives_a_device_pointer),
    cmocka_unit_test(cuda_refuses_a_device_that_does_not_exist),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
