/* The short way of a heap create when nothing of its size class is parked in the thread (every
 * create while more such buffers are live than the thread parks): a new object made in one go
 * must read as one made the general way, be indexed exactly, carry the options' callback, delay
 * and user pointer, and step aside for SHK_DEBUG=buf (the heap hook: test_buf_recycle). */
/* ctest: labels=unit;internal;tsan timeout=120 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "common/buf_internal.h"

enum { MANY = 3000 }; /* more than a thread parks of one class */
static shk_buf *bufs[MANY];

static shk_buf *make(size_t count, size_t item_size, const shk_buf_options *opts) {
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_create(count, item_size, opts, &buf), SHK_OK);
  return buf;
}

static void release_all(size_t n) {
  for (size_t i = 0; i < n; i++) shk_buf_release(bufs[i]);
}

static void new_buffers_made_while_none_is_parked_read_as_any_new_buffer(void **state) {
  (void)state;
  assert_int_equal(shk_buf_shutdown(), SHK_OK); /* nothing parked: every create is new */
  size_t live = shk_buf_live_count();
  uint64_t last = 0;
  for (size_t i = 0; i < MANY; i++) {
    shk_buf *b = bufs[i] = make(12, 5, NULL);
    assert_int_equal(shk_buf_size(b), 60);
    assert_int_equal(shk_buf_count(b), 12);
    assert_int_equal(shk_buf_item_size(b), 5);
    assert_false(shk_buf_consumed(b));
    assert_string_equal(shk_buf_allocator_name(b), "heap");
    assert_int_equal(shk_buf_refcount(b), 1);
    assert_false(shk_buf_device_mapped(b));
    assert_true(shk_buf_address(b) == (uintptr_t)shk_buf_data(b));
    assert_int_equal((uintptr_t)shk_buf_data(b) % SHK__MAX_ALIGN, 0);
    assert_true(shk_buf_id(b) > last);
    last = shk_buf_id(b);
    memset(shk_buf_data(b), (int)i, 60);
  }
  assert_int_equal(shk_buf_live_count(), live + MANY);
  for (size_t i = 0; i < MANY; i++) {
    const unsigned char *p = shk_buf_data(bufs[i]);
    assert_int_equal(p[0], (unsigned char)i);
    assert_int_equal(p[59], (unsigned char)i);
  }
  /* Indexed exactly: memory inside one of them cannot be consumed, memory after it can. */
  shk_buf *inside = NULL;
  unsigned char *p = shk_buf_data(bufs[MANY - 1]);
  assert_int_equal(shk_buf_consume(p + 10, 4, 1, NULL, &inside), SHK_EOVERLAP);
  assert_null(inside);
  release_all(MANY);
  assert_int_equal(shk_buf_live_count(), live);
}

static int destroyed;
static void *destroyed_user;
static void count_destroy(const shk_buf_info *info, void *user) {
  (void)info;
  destroyed++;
  destroyed_user = user;
}

/* Options other than the allocator and init still take the short way, and keep their meaning. */
static void new_buffers_keep_their_callback_delay_and_user_pointer(void **state) {
  (void)state;
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  shk_buf_options cb = {.struct_size = sizeof cb, .on_destroy = count_destroy,
                        .on_destroy_user = &destroyed};
  shk_buf_options delayed = {.struct_size = sizeof delayed, .delayed_free = true};
  shk_buf_options user = {.struct_size = sizeof user, .on_destroy_user = &destroyed};
  for (size_t i = 0; i < MANY; i++) bufs[i] = make(64, 1, NULL); /* the class's list stays empty */
  destroyed = 0;
  shk_buf *a = make(64, 1, &cb), *b = make(64, 1, &delayed), *c = make(64, 1, &user);
  shk_buf_release(a);
  assert_int_equal(destroyed, 1);
  assert_ptr_equal(destroyed_user, &destroyed);
  shk_buf_release(b);
  uint64_t id = 0;
  size_t n = 0;
  assert_int_equal(shk_buf_deferred_list(&id, 1, &n), SHK_OK);
  assert_int_equal(n, 1);
  assert_true(id == shk_buf_id(b));
  assert_int_equal(shk_buf_free_deferred_all(&n), SHK_OK);
  assert_int_equal(n, 1);
  shk_buf_release(c);
  assert_int_equal(destroyed, 1);
  release_all(MANY);
  assert_int_equal(destroyed, 1);
}

/* SHK_DEBUG=buf turned on: a new heap buffer gets its guards (the general way). */
static void new_buffers_after_shk_debug_is_on_get_guards(void **state) {
  (void)state;
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  for (size_t i = 0; i < MANY; i++) bufs[i] = make(64, 1, NULL);
  shk__debug_parse("buf");
  shk_buf *b = make(64, 1, NULL);
  assert_true(b->guarded);
  assert_false(b->recyclable);
  assert_non_null(shk__buf_created_at(b));
  shk_buf_release(b);
  shk__debug_parse("");
  assert_int_equal(shk_buf_set_heap_hook(NULL, NULL), SHK_OK); /* recomputes the observed flag */
  b = make(64, 1, NULL);
  assert_false(b->guarded);
  assert_true(b->recyclable);
  shk_buf_release(b);
  release_all(MANY);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(new_buffers_made_while_none_is_parked_read_as_any_new_buffer),
    cmocka_unit_test(new_buffers_keep_their_callback_delay_and_user_pointer),
    cmocka_unit_test(new_buffers_after_shk_debug_is_on_get_guards),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
