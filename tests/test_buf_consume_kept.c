/* The short ways of a consume with no options and of its release: the header of an ended default
 * consume is kept on its thread's own list and reused with only its identity, shape and range
 * written, so every other field must still read as a default consume sets it; consumes with
 * options, mapped buffers, other threads, SHK_DEBUG and refusals must find the general way's
 * answers (the heap hook: test_buf_recycle). */
/* ctest: labels=unit;internal;tsan;multiprocess timeout=120 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "common/buf_granules.h"
#include "common/buf_internal.h"

static unsigned char arena[4096];

static shk_buf *wrap(void *ptr, size_t count, size_t item_size) {
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_consume(ptr, count, item_size, NULL, &buf), SHK_OK);
  return buf;
}

/* How many headers the calling thread keeps for default consumes. */
static size_t kept(void) {
  shk__buf_thread *t = shk__buf_thread_get();
  assert_non_null(t);
  return t->consumed.n;
}

/* Everything a default consume of count x item_size at ptr answers. */
static void assert_default_consume(const shk_buf *buf, void *ptr, size_t count, size_t item_size) {
  assert_ptr_equal(shk_buf_data(buf), ptr);
  assert_true(shk_buf_address(buf) == (uintptr_t)ptr);
  assert_int_equal(shk_buf_size(buf), count * item_size);
  assert_int_equal(shk_buf_count(buf), count);
  assert_int_equal(shk_buf_item_size(buf), item_size);
  assert_true(shk_buf_consumed(buf));
  assert_string_equal(shk_buf_allocator_name(buf), "heap");
  assert_int_equal(shk_buf_refcount(buf), 1);
  assert_null(shk_buf_segment_name(buf));
  assert_false(shk_buf_device_mapped(buf));
}

static void a_kept_header_comes_back_as_a_new_default_consume(void **state) {
  (void)state;
  shk_buf *a = wrap(arena, 16, 4);
  uint64_t first = shk_buf_id(a);
  shk_buf_release(a);
  size_t n = kept();
  assert_true(n >= 1);
  shk_buf *b = wrap(arena + 100, 3, 7); /* another place and shape, same header */
  assert_ptr_equal(b, a);
  assert_int_equal(kept(), n - 1);
  assert_default_consume(b, arena + 100, 3, 7);
  assert_true(shk_buf_id(b) > first);
  /* Its range is indexed exactly: overlaps are refused, neighbours are not. */
  shk_buf *c = NULL;
  assert_int_equal(shk_buf_consume(arena + 120, 1, 1, NULL, &c), SHK_EOVERLAP);
  assert_null(c);
  c = wrap(arena + 121, 1, 1); /* a header of its own: none was left */
  shk_buf_release(c);
  shk_buf_release(b);
  assert_int_equal(kept(), n + 1);
}

/* A refusal by the index hands the header back; the shape errors keep their exact codes with a
 * header at hand (the short way checks them in one branch and leaves the code to the general
 * way). */
static void refusals_keep_their_codes_and_the_header(void **state) {
  (void)state;
  shk_buf_release(wrap(arena, 8, 1));
  shk_buf *live = wrap(arena, 64, 1);
  size_t n = kept(), indexed = shk__buf_ranges_count();
  assert_true(n >= 1);
  shk_buf *buf = (shk_buf *)(uintptr_t)1;
  assert_int_equal(shk_buf_consume(arena + 32, 64, 1, NULL, &buf), SHK_EOVERLAP);
  assert_null(buf);
  assert_int_equal(shk_buf_consume(arena + 200, 0, 1, NULL, &buf), SHK_ESIZE);
  assert_int_equal(shk_buf_consume(arena + 200, 1, 0, NULL, &buf), SHK_ESIZE);
  assert_int_equal(shk_buf_consume(arena + 200, SIZE_MAX / 2, 3, NULL, &buf), SHK_EOVERFLOW);
  assert_int_equal(shk_buf_consume(arena + 200, (size_t)1 << 32, (size_t)1 << 32, NULL, &buf),
                   SHK_EOVERFLOW);
  assert_int_equal(shk_buf_consume((void *)(UINTPTR_MAX - 15), 32, 1, NULL, &buf), SHK_EOVERFLOW);
  assert_int_equal(shk_buf_consume(NULL, 1, 1, NULL, &buf), SHK_EINVAL);
  assert_int_equal(shk_buf_consume(arena + 200, 1, 1, NULL, NULL), SHK_EINVAL);
  assert_null(buf);
  assert_int_equal(kept(), n);
  assert_int_equal(shk__buf_ranges_count(), indexed);
  shk_buf_release(live); /* the ranges below cover the program's image on some systems */
  /* Factors just below half the bits (the short way's check); a range that reaches into the last
   * block of the address space (SHK__GRANULE_SIZE bytes) is refused, one that ends just before
   * it is not. */
  shk_buf *big = wrap((void *)(uintptr_t)0x10000, (size_t)1 << 20, ((size_t)1 << 20) - 1);
  assert_int_equal(shk_buf_size(big), ((size_t)1 << 40) - ((size_t)1 << 20));
  shk_buf_release(big);
  assert_int_equal(shk_buf_consume((void *)(UINTPTR_MAX - 15), 15, 1, NULL, &buf), SHK_EOVERFLOW);
  assert_null(buf);
  assert_int_equal(kept(), n + 1); /* live's header, back; the refusal kept it */
  /* ends where the last block begins */
  shk_buf *top = wrap((void *)(UINTPTR_MAX - (SHK__GRANULE_SIZE - 1) - 16), 16, 1);
  shk_buf_release(top);
}

static int destroyed;
static void count_destroy(const shk_buf_info *info, void *user) {
  (void)info;
  (void)user;
  destroyed++;
}

/* A consume with options does not take a kept header, and its header (callback, user pointer,
 * delay, ownership) is never kept as a default one: a default consume after it runs no callback,
 * frees nothing and is not deferred. */
static void headers_of_consumes_with_options_are_not_kept_as_default_ones(void **state) {
  (void)state;
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  shk_buf_release(wrap(arena, 8, 1));
  size_t n = kept();
  shk_buf_options cb = {.struct_size = sizeof cb, .on_destroy = count_destroy};
  shk_buf_options user = {.struct_size = sizeof user, .on_destroy_user = &destroyed};
  shk_buf_options delayed = {.struct_size = sizeof delayed, .delayed_free = true};
  shk_buf_options owned = {.struct_size = sizeof owned, .take_ownership = true};
  shk_buf_options plain = {.struct_size = sizeof plain};
  const shk_buf_options *all[] = {&cb, &user, &delayed, &owned, &plain};
  destroyed = 0;
  for (size_t i = 0; i < SHK__ARRAY_LEN(all); i++) {
    void *mem = all[i] == &owned ? malloc(32) : arena + 64 * i;
    assert_non_null(mem);
    shk_buf *buf = NULL;
    assert_int_equal(shk_buf_consume(mem, 32, 1, all[i], &buf), SHK_OK);
    assert_int_equal(kept(), n); /* the kept header stayed for the default consumes */
    shk_buf_release(buf);
  }
  assert_int_equal(destroyed, 1);
  size_t deferred = 0;
  assert_int_equal(shk_buf_free_deferred_all(&deferred), SHK_OK);
  assert_int_equal(deferred, 1);
  /* Only the plain options' header joined the default ones (options equal to the defaults). */
  assert_int_equal(kept(), n + 1);
  for (int round = 0; round < 8; round++) {
    shk_buf *buf = wrap(arena + 512, 16, 1);
    assert_default_consume(buf, arena + 512, 16, 1);
    shk_buf_release(buf);
  }
  assert_int_equal(destroyed, 1);
  assert_int_equal(shk_buf_free_deferred_all(&deferred), SHK_OK);
  assert_int_equal(deferred, 0);
}

/* A header released by another thread is kept there, and that thread's default consumes use
 * it; each thread's list is its own (ThreadSanitizer runs this). */
enum { HANDOVERS = 200 };
static shk_buf *handed[HANDOVERS];
static atomic_int wrong;

static void release_and_reuse(void *arg) {
  (void)arg;
  for (int i = 0; i < HANDOVERS; i++) shk_buf_release(handed[i]);
  for (int i = 0; i < 1000; i++) {
    shk_buf *buf = NULL;
    unsigned char *p = arena + 2048 + (size_t)(i % 16) * 8;
    if (shk_buf_consume(p, 8, 1, NULL, &buf) != SHK_OK || shk_buf_data(buf) != p ||
        shk_buf_size(buf) != 8 || !shk_buf_consumed(buf))
      atomic_fetch_add(&wrong, 1);
    shk_buf_release(buf);
  }
}

static void a_header_released_by_another_thread_is_kept_and_reused_there(void **state) {
  (void)state;
  size_t live = shk_buf_live_count();
  for (int i = 0; i < HANDOVERS; i++) handed[i] = wrap(arena + i * 8, 8, 1);
  shk__os_thread *t;
  assert_int_equal(shk__os_thread_start(&t, release_and_reuse, NULL), SHK_OK);
  /* This thread consumes meanwhile with its own headers, in another part of the arena. */
  for (int i = 0; i < 1000; i++) shk_buf_release(wrap(arena + 1600 + (size_t)(i % 16) * 8, 8, 1));
  shk__os_thread_join(t); /* its kept headers were freed as it ended */
  assert_int_equal(atomic_load(&wrong), 0);
  assert_int_equal(shk_buf_live_count(), live);
}

/* Ids of the short way come from the thread's blocks too: unique and increasing across blocks. */
static void ids_of_the_short_way_increase_across_id_blocks(void **state) {
  (void)state;
  uint64_t last = 0;
  for (int i = 0; i < 3000; i++) {
    shk_buf *buf = wrap(arena, 4, 1);
    assert_true(shk_buf_id(buf) > last);
    last = shk_buf_id(buf);
    shk_buf_release(buf);
  }
}

/* SHK_DEBUG=buf turned on while headers are kept: consumes take the general way (call site
 * noted, handle kept in quarantine after its release, so a double release is recognised and
 * harmless), and the kept headers wait. */
static void consumes_after_shk_debug_is_on_take_the_general_way(void **state) {
  (void)state;
  shk_buf_release(wrap(arena, 8, 1));
  shk__buf_thread *t = shk__buf_thread_get();
  shk_buf *head = t->consumed.head;
  size_t n = kept();
  assert_non_null(head);
  shk__debug_parse("buf");
  shk_buf *buf = wrap(arena + 16, 8, 1);
  assert_ptr_not_equal(buf, head);
  assert_non_null(shk__buf_created_at(buf));
  shk_buf_release(buf);
  assert_int_equal(buf->magic, SHK__BUF_MAGIC_DEAD); /* in quarantine, not kept */
  assert_int_equal(kept(), n);
  assert_ptr_equal(t->consumed.head, head);
  shk__debug_parse("");
  assert_int_equal(shk_buf_set_heap_hook(NULL, NULL), SHK_OK); /* recomputes the observed flag */
  shk_buf *again = wrap(arena + 16, 8, 1);
  assert_ptr_equal(again, head); /* the short way again */
  assert_default_consume(again, arena + 16, 8, 1);
  shk_buf_release(again);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_kept_header_comes_back_as_a_new_default_consume),
    cmocka_unit_test(refusals_keep_their_codes_and_the_header),
    cmocka_unit_test(headers_of_consumes_with_options_are_not_kept_as_default_ones),
    cmocka_unit_test(a_header_released_by_another_thread_is_kept_and_reused_there),
    cmocka_unit_test(ids_of_the_short_way_increase_across_id_blocks),
    cmocka_unit_test(consumes_after_shk_debug_is_on_take_the_general_way),
};

/* Fork: test_buf_fork's children consume with the headers their parent's thread kept. */
static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
