/* Buffers: creation, accessors, init values, size errors, retain/release/assign, the destroy
 * callback (exactly once, with the right facts) and the heap hook. */
/* ctest: labels=unit timeout=60 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

typedef struct destroyed {
  int calls;
  shk_buf_info last;
  unsigned char first_byte; /* the memory is still readable during the callback */
} destroyed;

static void on_destroy(const shk_buf_info *info, void *user) {
  destroyed *d = user;
  d->calls++;
  d->last = *info;
  d->first_byte = *(const unsigned char *)info->data;
}

static void create_gives_a_buffer_with_its_shape(void **state) {
  (void)state;
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_create(10, 4, NULL, &buf), SHK_OK);
  assert_non_null(buf);
  assert_non_null(shk_buf_data(buf));
  assert_int_equal(shk_buf_size(buf), 40);
  assert_int_equal(shk_buf_count(buf), 10);
  assert_int_equal(shk_buf_item_size(buf), 4);
  assert_true(shk_buf_id(buf) > 0);
  assert_string_equal(shk_buf_allocator_name(buf), "heap");
  assert_int_equal(shk_buf_address(buf), (uintptr_t)shk_buf_data(buf));
  assert_int_equal(shk_buf_refcount(buf), 1);
  assert_false(shk_buf_consumed(buf));
  assert_null(shk_buf_segment_name(buf));
  memset(shk_buf_data(buf), 0x5A, 40);
  shk_buf_release(buf);
}

static void ids_are_unique_and_growing(void **state) {
  (void)state;
  shk_buf *a = NULL, *b = NULL;
  assert_int_equal(shk_buf_create(1, 1, NULL, &a), SHK_OK);
  assert_int_equal(shk_buf_create(1, 1, NULL, &b), SHK_OK);
  assert_true(shk_buf_id(b) > shk_buf_id(a));
  shk_buf_release(a);
  shk_buf_release(b);
}

static void create_refuses_bad_shapes_and_arguments(void **state) {
  (void)state;
  shk_buf *buf = (shk_buf *)1;
  assert_int_equal(shk_buf_create(1, 1, NULL, NULL), SHK_EINVAL);
  assert_int_equal(shk_buf_create(0, 8, NULL, &buf), SHK_ESIZE);
  assert_null(buf);
  assert_int_equal(shk_buf_create(8, 0, NULL, &buf), SHK_ESIZE);
  assert_int_equal(shk_buf_create(SIZE_MAX / 2, 3, NULL, &buf), SHK_EOVERFLOW);
  assert_int_equal(shk_buf_create(SIZE_MAX, SIZE_MAX, NULL, &buf), SHK_EOVERFLOW);
  shk_buf_options bad_init = {.init = (shk_buf_init)9};
  assert_int_equal(shk_buf_create(1, 1, &bad_init, &buf), SHK_EINVAL);
  shk_buf_options bad_align = {.allocator = "aligned", .alignment = 48};
  assert_int_equal(shk_buf_create(1, 1, &bad_align, &buf), SHK_EINVAL);
  assert_null(buf);
  assert_int_equal(shk_buf_live_count(), 0);
}

static void create_reports_an_unknown_allocator(void **state) {
  (void)state;
  shk_buf *buf = (shk_buf *)1;
  shk_buf_options o = {.allocator = "no-such-allocator"};
  assert_int_equal(shk_buf_create(4, 4, &o, &buf), SHK_ENOENT);
  assert_null(buf);
}

static void create_reports_allocation_failure(void **state) {
  (void)state;
  shk_buf *buf = (shk_buf *)1;
  shk_buf_options o = {.allocator = "pages"};
  /* Far more address space than any system maps: the allocator refuses. */
  int rc = shk_buf_create((size_t)1 << 20, (size_t)1 << 40, &o, &buf);
  /* Linux says ENOMEM; Windows (and wine) call such a size an invalid parameter. */
  if (rc != SHK_ENOMEM && rc != SHK_ESIZE && rc != SHK_EINVAL) fail_msg("rc = %s", shk_error_name(rc));
  assert_null(buf);
  assert_int_equal(shk_buf_live_count(), 0);
}

static int all_bytes_are(const shk_buf *buf, unsigned char value) {
  const unsigned char *p = shk_buf_data(buf);
  for (size_t i = 0; i < shk_buf_size(buf); i++)
    if (p[i] != value) return 0;
  return 1;
}

static void zero_init_really_zeroes_with_every_allocator(void **state) {
  (void)state;
  const char *names[] = {"heap", "aligned", "pages", "shm"};
  for (size_t i = 0; i < 4; i++) {
    /* Dirty some memory of the same size first so malloc has garbage to give back. */
    shk_buf *dirty = NULL;
    shk_buf_options d = {.allocator = names[i], .init = SHK_BUF_INIT_BYTE, .init_byte = 0xEE};
    assert_int_equal(shk_buf_create(1000, 3, &d, &dirty), SHK_OK);
    assert_true(all_bytes_are(dirty, 0xEE));
    shk_buf_release(dirty);
    shk_buf *buf = NULL;
    shk_buf_options z = {.allocator = names[i], .init = SHK_BUF_INIT_ZERO};
    assert_int_equal(shk_buf_create(1000, 3, &z, &buf), SHK_OK);
    assert_string_equal(shk_buf_allocator_name(buf), names[i]);
    assert_true(all_bytes_are(buf, 0));
    shk_buf_release(buf);
  }
}

static void byte_init_fills_every_byte(void **state) {
  (void)state;
  shk_buf *buf = NULL;
  shk_buf_options o = {.init = SHK_BUF_INIT_BYTE, .init_byte = 'A'};
  assert_int_equal(shk_buf_create(7, 9, &o, &buf), SHK_OK);
  assert_true(all_bytes_are(buf, 'A'));
  shk_buf_release(buf);
}

static void destroy_callback_runs_once_with_the_buffer_facts(void **state) {
  (void)state;
  destroyed d = {0};
  shk_buf *buf = NULL;
  shk_buf_options o = {.init = SHK_BUF_INIT_BYTE, .init_byte = 7, .on_destroy = on_destroy,
                       .on_destroy_user = &d};
  assert_int_equal(shk_buf_create(5, 8, &o, &buf), SHK_OK);
  void *data = shk_buf_data(buf);
  uint64_t id = shk_buf_id(buf);
  assert_int_equal(shk_buf_retain(buf), SHK_OK);
  assert_int_equal(shk_buf_refcount(buf), 2);
  shk_buf_release(buf);
  assert_int_equal(d.calls, 0);
  shk_buf_release(buf);
  assert_int_equal(d.calls, 1);
  assert_ptr_equal(d.last.data, data);
  assert_int_equal(d.last.address, (uintptr_t)data);
  assert_int_equal(d.last.size, 40);
  assert_int_equal(d.last.item_size, 8);
  assert_int_equal(d.last.count, 5);
  assert_int_equal(d.last.id, id);
  assert_string_equal(d.last.allocator, "heap");
  assert_int_equal(d.first_byte, 7);
}

static void retain_and_release_accept_null(void **state) {
  (void)state;
  assert_int_equal(shk_buf_retain(NULL), SHK_EINVAL);
  shk_buf_release(NULL);
  assert_null(shk_buf_data(NULL));
  assert_int_equal(shk_buf_address(NULL), 0);
  assert_int_equal(shk_buf_size(NULL), 0);
  assert_int_equal(shk_buf_item_size(NULL), 0);
  assert_int_equal(shk_buf_count(NULL), 0);
  assert_int_equal(shk_buf_id(NULL), 0);
  assert_null(shk_buf_allocator_name(NULL));
  assert_int_equal(shk_buf_refcount(NULL), 0);
  assert_false(shk_buf_consumed(NULL));
  assert_null(shk_buf_segment_name(NULL));
}

static void assign_replaces_and_destroys_the_old_buffer(void **state) {
  (void)state;
  destroyed d1 = {0}, d2 = {0};
  shk_buf_options o1 = {.on_destroy = on_destroy, .on_destroy_user = &d1};
  shk_buf_options o2 = {.on_destroy = on_destroy, .on_destroy_user = &d2};
  shk_buf *slot = NULL, *b = NULL;
  assert_int_equal(shk_buf_create(4, 1, &o1, &slot), SHK_OK);
  assert_int_equal(shk_buf_create(4, 1, &o2, &b), SHK_OK);
  assert_int_equal(shk_buf_assign(&slot, b), SHK_OK);
  assert_int_equal(d1.calls, 1);
  assert_ptr_equal(slot, b);
  /* Assigning the same buffer again changes nothing. */
  assert_int_equal(shk_buf_assign(&slot, b), SHK_OK);
  assert_int_equal(d2.calls, 0);
  assert_int_equal(shk_buf_assign(&slot, NULL), SHK_OK);
  assert_int_equal(d2.calls, 1);
  assert_null(slot);
  assert_int_equal(shk_buf_assign(NULL, NULL), SHK_EINVAL);
}

typedef struct heap_log {
  int allocs, frees;
  uint64_t last_id;
  size_t last_size;
} heap_log;

static void on_heap(bool allocated, const shk_buf_info *info, void *user) {
  heap_log *log = user;
  if (allocated) log->allocs++;
  else log->frees++;
  log->last_id = info->id;
  log->last_size = info->size;
}

static void heap_hook_hears_allocations_and_frees(void **state) {
  (void)state;
  heap_log log = {0};
  assert_int_equal(shk_buf_set_heap_hook(on_heap, &log), SHK_OK);
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_create(3, 100, NULL, &buf), SHK_OK);
  assert_int_equal(log.allocs, 1);
  assert_int_equal(log.last_id, shk_buf_id(buf));
  assert_int_equal(log.last_size, 300);
  shk_buf_release(buf);
  assert_int_equal(log.frees, 1);
  assert_int_equal(shk_buf_set_heap_hook(NULL, NULL), SHK_OK);
  assert_int_equal(shk_buf_create(3, 100, NULL, &buf), SHK_OK);
  shk_buf_release(buf);
  assert_int_equal(log.allocs, 1);
  assert_int_equal(log.frees, 1);
}

static void every_buffer_leaves_the_live_count(void **state) {
  (void)state;
  size_t before = shk_buf_live_count();
  shk_buf *a = NULL, *b = NULL;
  assert_int_equal(shk_buf_create(1, 64, NULL, &a), SHK_OK);
  assert_int_equal(shk_buf_create(1, 64, NULL, &b), SHK_OK);
  assert_int_equal(shk_buf_live_count(), before + 2);
  shk_buf_release(a);
  shk_buf_release(b);
  assert_int_equal(shk_buf_live_count(), before);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(create_gives_a_buffer_with_its_shape),
    cmocka_unit_test(ids_are_unique_and_growing),
    cmocka_unit_test(create_refuses_bad_shapes_and_arguments),
    cmocka_unit_test(create_reports_an_unknown_allocator),
    cmocka_unit_test(create_reports_allocation_failure),
    cmocka_unit_test(zero_init_really_zeroes_with_every_allocator),
    cmocka_unit_test(byte_init_fills_every_byte),
    cmocka_unit_test(destroy_callback_runs_once_with_the_buffer_facts),
    cmocka_unit_test(retain_and_release_accept_null),
    cmocka_unit_test(assign_replaces_and_destroys_the_old_buffer),
    cmocka_unit_test(heap_hook_hears_allocations_and_frees),
    cmocka_unit_test(every_buffer_leaves_the_live_count),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
