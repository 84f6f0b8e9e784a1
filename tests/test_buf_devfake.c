/* Device mapping over an injected fake device (host memory standing in for device memory), so
 * the mapping state machine and the (start, length) updates are tested on machines without a
 * GPU: enter-exit-enter, partial copies that touch exactly their range, failures that leave the
 * buffer unmapped, destruction that unmaps. */
/* ctest: labels=unit;internal timeout=60 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "common/buf_internal.h"

typedef struct fake_state {
  int devices;
  int allocs, frees, pins, unpins, copies_to, copies_from;
  int fail_alloc, fail_copy, fail_pin;
  size_t last_offset, last_size;
  unsigned char *mem; /* the one live "device" allocation */
} fake_state;

static fake_state fake;

static int fake_count(int *count) {
  *count = fake.devices;
  return fake.devices > 0 ? SHK_OK : SHK_ENODEV;
}

static int fake_alloc(int device, size_t size, void **dev) {
  (void)device;
  if (fake.fail_alloc) return SHK_ENOMEM;
  fake.allocs++;
  fake.mem = malloc(size);
  memset(fake.mem, 0xDD, size);
  *dev = fake.mem;
  return SHK_OK;
}

static void fake_free(int device, void *dev) {
  (void)device;
  assert_ptr_equal(dev, fake.mem);
  fake.frees++;
  free(dev);
  fake.mem = NULL;
}

static int fake_to(int device, void *dev, const void *host, size_t size) {
  (void)device;
  if (fake.fail_copy) return SHK_EOS;
  fake.copies_to++;
  fake.last_offset = (size_t)((unsigned char *)dev - fake.mem);
  fake.last_size = size;
  memcpy(dev, host, size);
  return SHK_OK;
}

static int fake_from(int device, void *host, const void *dev, size_t size) {
  (void)device;
  if (fake.fail_copy) return SHK_EOS;
  fake.copies_from++;
  fake.last_offset = (size_t)((const unsigned char *)dev - fake.mem);
  fake.last_size = size;
  memcpy(host, dev, size);
  return SHK_OK;
}

static int fake_pin(int device, void *host, size_t size, void **dev) {
  (void)device;
  (void)size;
  if (fake.fail_pin) return SHK_EOS;
  fake.pins++;
  *dev = host;
  return SHK_OK;
}

static void fake_unpin(int device, void *host) {
  (void)device;
  (void)host;
  fake.unpins++;
}

static const shk__device_ops fake_ops = {fake_count, fake_alloc, fake_free, fake_to,
                                         fake_from,  fake_pin,   fake_unpin};

static int setup(void **state) {
  (void)state;
  memset(&fake, 0, sizeof fake);
  fake.devices = 2;
  shk__device_set_ops(&fake_ops);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  shk__device_set_ops(NULL);
  return 0;
}

static shk_buf *bytes(size_t n) {
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_create(n, 1, NULL, &buf), SHK_OK);
  unsigned char *p = shk_buf_data(buf);
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)i;
  return buf;
}

static void map_copies_the_whole_buffer_to_the_device(void **state) {
  (void)state;
  shk_buf *buf = bytes(256);
  int n = 0;
  assert_int_equal(shk_buf_device_count(&n), SHK_OK);
  assert_int_equal(n, 2);
  assert_int_equal(shk_buf_device_map(buf, 1, SHK_BUF_DEVICE_COPY), SHK_OK);
  assert_int_equal(fake.copies_to, 1);
  assert_int_equal(fake.last_size, 256);
  assert_memory_equal(fake.mem, shk_buf_data(buf), 256);
  void *dev = NULL;
  assert_int_equal(shk_buf_device_pointer(buf, &dev), SHK_OK);
  assert_ptr_equal(dev, fake.mem);
  shk_buf_release(buf);
  assert_int_equal(fake.frees, 1); /* destruction unmapped */
}

static void update_takes_start_and_length_not_start_and_end(void **state) {
  (void)state;
  shk_buf *buf = bytes(256);
  unsigned char *p = shk_buf_data(buf);
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_OK);
  memset(p, 0xAA, 256);
  /* (100, 20) means bytes 100..119: the Perl original would have read it as 100..20. */
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_TO_DEVICE, 100, 20), SHK_OK);
  assert_int_equal(fake.last_offset, 100);
  assert_int_equal(fake.last_size, 20);
  assert_int_equal(fake.mem[99], 99);
  assert_int_equal(fake.mem[100], 0xAA);
  assert_int_equal(fake.mem[119], 0xAA);
  assert_int_equal(fake.mem[120], 120);
  /* From the device: bytes 0..9 come back, the rest of the host stays. */
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_FROM_DEVICE, 0, 10), SHK_OK);
  assert_int_equal(p[9], 9);
  assert_int_equal(p[10], 0xAA);
  /* Both: to, then from. */
  int to = fake.copies_to, from = fake.copies_from;
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_BOTH, 250, 6), SHK_OK);
  assert_int_equal(fake.copies_to, to + 1);
  assert_int_equal(fake.copies_from, from + 1);
  /* An empty range and the very end are fine; past the end is not. */
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_TO_DEVICE, 256, 0), SHK_OK);
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_TO_DEVICE, 0, 257), SHK_ERANGE);
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_TO_DEVICE, 257, 0), SHK_ERANGE);
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_TO_DEVICE, 200, SIZE_MAX), SHK_ERANGE);
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_TO_DEVICE, SIZE_MAX, 2), SHK_ERANGE);
  shk_buf_release(buf);
}

static void map_unmap_map_again_works_and_double_calls_are_refused(void **state) {
  (void)state;
  shk_buf *buf = bytes(64);
  for (int round = 0; round < 3; round++) {
    assert_false(shk_buf_device_mapped(buf));
    assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_OK);
    assert_true(shk_buf_device_mapped(buf));
    assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_ESTATE);
    assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_PINNED), SHK_ESTATE);
    assert_int_equal(shk_buf_device_unmap(buf), SHK_OK);
    assert_int_equal(shk_buf_device_unmap(buf), SHK_ESTATE);
  }
  assert_int_equal(fake.allocs, 3);
  assert_int_equal(fake.frees, 3);
  /* Switching mode after an unmap is allowed too. */
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_PINNED), SHK_OK);
  assert_int_equal(shk_buf_device_unmap(buf), SHK_OK);
  shk_buf_release(buf);
  assert_int_equal(fake.frees, 3);
  assert_int_equal(fake.unpins, 1);
}

static void pinned_mapping_shares_host_memory_and_copies_nothing(void **state) {
  (void)state;
  shk_buf *buf = bytes(128);
  assert_int_equal(shk_buf_device_map(buf, 1, SHK_BUF_DEVICE_PINNED), SHK_OK);
  assert_int_equal(fake.pins, 1);
  void *dev = NULL;
  assert_int_equal(shk_buf_device_pointer(buf, &dev), SHK_OK);
  assert_ptr_equal(dev, shk_buf_data(buf));
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_BOTH, 0, 128), SHK_OK);
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_BOTH, 0, 129), SHK_ERANGE);
  assert_int_equal(fake.copies_to + fake.copies_from, 0);
  shk_buf_release(buf);
  assert_int_equal(fake.unpins, 1); /* destruction unpinned */
}

static void failures_leave_the_buffer_unmapped(void **state) {
  (void)state;
  shk_buf *buf = bytes(32);
  fake.fail_alloc = 1;
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_ENOMEM);
  assert_false(shk_buf_device_mapped(buf));
  fake.fail_alloc = 0;
  fake.fail_copy = 1;
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_EOS);
  assert_false(shk_buf_device_mapped(buf));
  assert_int_equal(fake.frees, 1); /* the device memory of the failed map was given back */
  fake.fail_copy = 0;
  fake.fail_pin = 1;
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_PINNED), SHK_EOS);
  assert_false(shk_buf_device_mapped(buf));
  fake.fail_pin = 0;
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_OK);
  fake.fail_copy = 1;
  assert_int_equal(shk_buf_device_update(buf, SHK_BUF_FROM_DEVICE, 0, 1), SHK_EOS);
  assert_true(shk_buf_device_mapped(buf)); /* a failed copy does not end the mapping */
  fake.fail_copy = 0;
  shk_buf_release(buf);
}

static void devices_out_of_range_and_no_devices_are_refused(void **state) {
  (void)state;
  shk_buf *buf = bytes(32);
  assert_int_equal(shk_buf_device_map(buf, 2, SHK_BUF_DEVICE_COPY), SHK_ERANGE);
  assert_int_equal(shk_buf_device_map(buf, -1, SHK_BUF_DEVICE_COPY), SHK_ERANGE);
  fake.devices = 0;
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_ENODEV);
  int n = 5;
  assert_int_equal(shk_buf_device_count(&n), SHK_ENODEV);
  assert_int_equal(n, 0);
  assert_int_equal(fake.allocs, 0);
  shk_buf_release(buf);
}

/* A mapped default consume ends the general way (unmapped), and its header, reused by the next
 * consume, reads as unmapped. */
static void a_mapped_consume_is_unmapped_at_its_end_and_its_header_reused_unmapped(void **state) {
  (void)state;
  static unsigned char host[64];
  for (int round = 0; round < 3; round++) {
    shk_buf *buf = NULL;
    assert_int_equal(shk_buf_consume(host, sizeof host, 1, NULL, &buf), SHK_OK);
    assert_false(shk_buf_device_mapped(buf));
    assert_int_equal(shk_buf_device_map(buf, 1, SHK_BUF_DEVICE_PINNED), SHK_OK);
    shk_buf_release(buf);
    assert_int_equal(fake.unpins, round + 1);
  }
  assert_int_equal(fake.pins, 3);
}

/* The mapping lives in the buffer's block of rare fields: made by the map when the buffer has
 * none (without memory for it, the map fails with nothing changed), freed by the unmap when the
 * mapping was all it held, and by the buffer's end. */
static void a_map_makes_the_block_it_needs_or_fails_with_nothing_changed(void **state) {
  (void)state;
  shk_buf *buf = bytes(64);
  assert_null(buf->rare);
  uint8_t way = buf->end_way;
  shk__fault_arm(SHK__FAULT_ALLOC, 1, ENOMEM, false);
  int rc = shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY);
  unsigned failed = shk__fault_failures(SHK__FAULT_ALLOC);
  shk__fault_disarm_all();
  assert_int_equal(rc, SHK_ENOMEM);
  assert_int_equal(failed, 1);
  assert_false(shk_buf_device_mapped(buf));
  assert_null(buf->rare);
  assert_int_equal(buf->end_way, way);
  assert_int_equal(fake.allocs, 0);
  fake.fail_alloc = 1; /* the device's failure after the block was made: freed again */
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_ENOMEM);
  assert_null(buf->rare);
  fake.fail_alloc = 0;
  assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_OK);
  assert_non_null(buf->rare);
  assert_int_equal(shk_buf_device_unmap(buf), SHK_OK);
  assert_null(buf->rare);
  assert_int_equal(shk_buf_device_map(buf, 1, SHK_BUF_DEVICE_PINNED), SHK_OK);
  shk_buf_release(buf); /* unmaps and frees the block (leaks: the sanitizer run) */
  assert_int_equal(fake.unpins, 1);
}

static void count_destroy(const shk_buf_info *info, void *user) {
  (void)info;
  ++*(int *)user;
}

static void an_unmap_keeps_the_block_of_a_buffer_with_a_callback_or_a_delay(void **state) {
  (void)state;
  int calls = 0;
  for (int delay = 0; delay < 2; delay++) {
    shk_buf_options o;
    shk_buf_options_init(&o);
    o.on_destroy = count_destroy;
    o.on_destroy_user = &calls;
    o.delayed_free = delay;
    shk_buf *buf = NULL;
    assert_int_equal(shk_buf_create(64, 1, &o, &buf), SHK_OK);
    shk__buf_rare *rare = buf->rare;
    assert_non_null(rare);
    assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_OK);
    assert_ptr_equal(buf->rare, rare);
    assert_int_equal(shk_buf_device_unmap(buf), SHK_OK);
    assert_ptr_equal(buf->rare, rare);
    assert_int_equal(shk_buf_device_map(buf, 0, SHK_BUF_DEVICE_COPY), SHK_OK);
    shk_buf_release(buf);
    if (delay) assert_int_equal(shk_buf_free_deferred_all(NULL), SHK_OK);
    assert_int_equal(calls, delay + 1);
    assert_int_equal(fake.frees, 2 * (delay + 1));
  }
}

static void the_compiled_backend_returns_when_the_fake_is_removed(void **state) {
  (void)state;
  shk__device_set_ops(NULL);
  int n = 0;
  int rc = shk_buf_device_count(&n);
  assert_true(rc == SHK_OK || rc == SHK_ENODEV);
  assert_ptr_not_equal(shk__device_backend(), &fake_ops);
}

#define FAKE_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

static const struct CMUnitTest tests[] = {
    FAKE_TEST(map_copies_the_whole_buffer_to_the_device),
    FAKE_TEST(update_takes_start_and_length_not_start_and_end),
    FAKE_TEST(map_unmap_map_again_works_and_double_calls_are_refused),
    FAKE_TEST(pinned_mapping_shares_host_memory_and_copies_nothing),
    FAKE_TEST(failures_leave_the_buffer_unmapped),
    FAKE_TEST(devices_out_of_range_and_no_devices_are_refused),
    FAKE_TEST(a_mapped_consume_is_unmapped_at_its_end_and_its_header_reused_unmapped),
    FAKE_TEST(a_map_makes_the_block_it_needs_or_fails_with_nothing_changed),
    FAKE_TEST(an_unmap_keeps_the_block_of_a_buffer_with_a_callback_or_a_delay),
    FAKE_TEST(the_compiled_backend_returns_when_the_fake_is_removed),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
