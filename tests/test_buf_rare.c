/* The fields few buffers use, out of line (shk__buf_rare, buf_rare.c): a block made for a buffer
 * with a destroy callback, a delay, a device mapping (test_buf_devfake) or SHK_DEBUG=buf, on
 * every way of creation, and never for the usual buffer; without memory for it a creation fails
 * with nothing taken or changed; gone with its buffer, so that a parked object, a slot or a kept
 * header starts its next buffer with none. */
/* ctest: labels=unit;internal timeout=60 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "shk_test.h"
#include "common/buf_internal.h"

static int destroyed;

static void count_destroy(const shk_buf_info *info, void *user) {
  (void)info;
  destroyed += user == &destroyed;
}

/* Each callback test starts with nothing parked, kept or deferred, and no callback counted. */
static void start_clean(void) {
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  destroyed = 0;
}

static shk_buf_options with_callback(const char *allocator) {
  shk_buf_options o;
  shk_buf_options_init(&o);
  o.allocator = allocator;
  o.on_destroy = count_destroy;
  o.on_destroy_user = &destroyed;
  return o;
}

static shk_buf *make(size_t size, const shk_buf_options *o) {
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_create(size, 1, o, &buf), SHK_OK);
  return buf;
}

static shk_buf *wrap(void *p, size_t size, const shk_buf_options *o) {
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_consume(p, size, 1, o, &buf), SHK_OK);
  return buf;
}

static size_t deferred_count(void) {
  size_t n = 0;
  assert_int_equal(shk_buf_deferred_list(NULL, 0, &n), SHK_OK);
  return n;
}

static void a_slab_slot_header_is_144_bytes_on_64_bit_systems(void **state) {
  (void)state;
  if (sizeof(void *) != 8 || sizeof(size_t) != 8) skip();
  /* 208 with the 72 bytes of rare fields inline (create+release of 64 B, 10 000 live). */
  assert_int_equal(SHK__BUF_SLOT_HEADER_SIZE, 144);
}

static void the_usual_buffer_has_no_block_on_any_short_way(void **state) {
  (void)state;
  static unsigned char arena[256];
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  shk_buf *a = make(64, NULL); /* a new slot of a slab */
  assert_true(a->in_slab);
  assert_null(a->rare);
  shk_buf_release(a);
  shk_buf *b = make(64, NULL); /* the same, parked and taken back */
  assert_ptr_equal(b, a);
  assert_null(b->rare);
  shk_buf_release(b);
  shk_buf_options aligned;
  shk_buf_options_init(&aligned);
  aligned.allocator = "aligned";
  shk_buf *c = make(64, &aligned);
  assert_null(c->rare);
  shk_buf_release(c);
  shk_buf *d = wrap(arena, 32, NULL);
  assert_null(d->rare);
  assert_int_equal(d->end_way, SHK__BUF_END_CONSUMED);
  shk_buf_release(d);
  shk_buf *e = wrap(arena + 64, 32, NULL); /* a kept header */
  assert_null(e->rare);
  shk_buf_release(e);
}

static void every_way_of_creation_with_a_callback_makes_the_block_and_runs_it_once(void **state) {
  (void)state;
  static unsigned char arena[256];
  start_clean();
  shk_buf_options cb = with_callback(NULL);
  /* A parked object taken back (the general way's reuse). */
  shk_buf *a = make(64, NULL);
  shk_buf_release(a);
  shk_buf *b = make(64, &cb);
  assert_ptr_equal(b, a);
  assert_non_null(b->rare);
  assert_ptr_equal(b->rare->on_destroy, count_destroy);
  assert_ptr_equal(b->rare->on_destroy_user, &destroyed);
  assert_int_equal(b->end_way, SHK__BUF_END_GENERAL);
  shk_buf_release(b);
  assert_int_equal(destroyed, 1);
  /* Parked again without its block: the next plain create takes it back with none. */
  shk_buf *c = make(64, NULL);
  assert_ptr_equal(c, a);
  assert_null(c->rare);
  assert_int_equal(c->end_way, SHK__BUF_END_PARK);
  shk_buf_release(c);
  /* New objects of each kind of allocator (nothing of 3000 B is parked). */
  static const char *const allocators[] = {NULL, "aligned", "pages"};
  for (size_t i = 0; i < SHK__ARRAY_LEN(allocators); i++) {
    shk_buf_options o = with_callback(allocators[i]);
    shk_buf *n = make(3000, &o);
    assert_non_null(n->rare);
    assert_ptr_equal(n->rare->on_destroy, count_destroy);
    shk_buf_release(n);
    assert_int_equal(destroyed, 2 + (int)i);
  }
  /* A consume: its header ends the general way, then kept without the block. */
  shk_buf *d = wrap(arena, 32, &cb);
  assert_non_null(d->rare);
  assert_int_equal(d->end_way, SHK__BUF_END_GENERAL);
  shk_buf_release(d);
  assert_int_equal(destroyed, 5);
  shk_buf *e = wrap(arena, 32, NULL);
  assert_null(e->rare);
  shk_buf_release(e);
  /* The user pointer alone is kept too, and calls nothing. */
  shk_buf_options user_only;
  shk_buf_options_init(&user_only);
  user_only.on_destroy_user = &destroyed;
  shk_buf *f = make(64, &user_only);
  assert_non_null(f->rare);
  assert_null(f->rare->on_destroy);
  shk_buf_release(f);
  assert_int_equal(destroyed, 5);
}

static void delayed_buffers_wait_on_the_deferred_list_through_their_blocks(void **state) {
  (void)state;
  static unsigned char arena[256];
  start_clean();
  shk_buf_options delayed = with_callback(NULL);
  delayed.delayed_free = true;
  shk_buf *parked = make(64, NULL);
  shk_buf_release(parked);
  shk_buf *bufs[3] = {make(64, &delayed), make(3000, &delayed), wrap(arena, 32, &delayed)};
  assert_ptr_equal(bufs[0], parked);
  uint64_t ids[3];
  for (int i = 0; i < 3; i++) {
    assert_non_null(bufs[i]->rare);
    ids[i] = shk_buf_id(bufs[i]);
    shk_buf_release(bufs[i]);
  }
  assert_int_equal(destroyed, 0);
  uint64_t listed[3] = {0};
  size_t n = 0;
  assert_int_equal(shk_buf_deferred_list(listed, 3, &n), SHK_OK);
  assert_int_equal(n, 3);
  assert_memory_equal(listed, ids, sizeof ids);
  assert_int_equal(shk_buf_free_deferred(ids[1]), SHK_OK);
  assert_int_equal(destroyed, 1);
  assert_int_equal(shk_buf_deferred_list(listed, 3, &n), SHK_OK);
  assert_int_equal(n, 2);
  assert_int_equal(listed[0], ids[0]);
  assert_int_equal(listed[1], ids[2]);
  assert_int_equal(shk_buf_free_deferred_all(&n), SHK_OK);
  assert_int_equal(n, 2);
  assert_int_equal(destroyed, 3);
  shk_buf *again = make(64, NULL); /* parked by the free, with no block */
  assert_ptr_equal(again, parked);
  assert_null(again->rare);
  shk_buf_release(again);
}

/* Fails the next allocation of the library, runs the call, and checks it was the one failed. */
#define WITHOUT_MEMORY(call)                                      \
  do {                                                            \
    shk__fault_arm(SHK__FAULT_ALLOC, 1, ENOMEM, false);           \
    int rc_ = (call);                                             \
    unsigned failed_ = shk__fault_failures(SHK__FAULT_ALLOC);     \
    shk__fault_disarm_all();                                      \
    assert_int_equal(failed_, 1);                                 \
    assert_int_equal(rc_, SHK_ENOMEM);                            \
  } while (0)

static void without_memory_for_the_block_a_creation_fails_and_takes_nothing(void **state) {
  (void)state;
  static unsigned char arena[256];
  start_clean();
  shk_buf *parked = make(64, NULL);
  shk_buf_release(parked);
  size_t kept = shk__buf_recycle_count(), live = shk_buf_live_count();
  shk_buf_options cb = with_callback(NULL);
  for (int delay = 0; delay < 2; delay++) {
    cb.delayed_free = delay;
    shk_buf *buf = (shk_buf *)&destroyed;
    WITHOUT_MEMORY(shk_buf_create(64, 1, &cb, &buf)); /* would take the parked object */
    assert_null(buf);
    WITHOUT_MEMORY(shk_buf_create(3000, 1, &cb, &buf)); /* would make a new one */
    assert_null(buf);
    buf = (shk_buf *)&destroyed;
    WITHOUT_MEMORY(shk_buf_consume(arena, 32, 1, &cb, &buf));
    assert_null(buf);
    assert_int_equal(shk__buf_recycle_count(), kept);
    assert_int_equal(shk_buf_live_count(), live);
    assert_int_equal(deferred_count(), 0);
  }
  assert_int_equal(destroyed, 0);
  /* Nothing was taken or indexed: the parked object and the range are still to be had. */
  cb.delayed_free = false;
  shk_buf *again = make(64, &cb);
  assert_ptr_equal(again, parked);
  shk_buf_release(again);
  shk_buf *wrapped = wrap(arena, 32, &cb);
  shk_buf_release(wrapped);
  assert_int_equal(destroyed, 2);
}

static void under_shk_debug_the_block_holds_call_sites_and_leaves_a_parked_object(void **state) {
  (void)state;
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  shk_buf *parked = make(64, NULL); /* parked before SHK_DEBUG=buf is on */
  shk_buf_release(parked);
  shk__debug_parse("buf");
  shk_buf_options o;
  shk_buf_options_init(&o);
  o.init = SHK_BUF_INIT_ZERO; /* the general way, which takes parked objects back */
  shk_buf *c = make(64, &o);
  assert_ptr_equal(c, parked);
  assert_non_null(shk__buf_created_at(c));
  assert_int_equal(c->end_way, SHK__BUF_END_GENERAL);
  shk_buf *b = make(128, NULL); /* nothing of its class parked: a new object, with guards */
  assert_true(b->guarded);
  assert_non_null(b->rare);
  assert_non_null(shk__buf_created_at(b));
  shk_buf_release(b);
  assert_int_equal(b->magic, SHK__BUF_MAGIC_DEAD); /* kept in quarantine, block and all */
  assert_non_null(shk__buf_released_at(b));
  shk_buf_release(c); /* parked again, without its block */
  shk__debug_parse("");
  assert_int_equal(shk_buf_set_heap_hook(NULL, NULL), SHK_OK); /* recomputes the observed flag */
  shk_buf *d = make(64, NULL);
  assert_ptr_equal(d, parked);
  assert_null(d->rare);
  assert_int_equal(d->end_way, SHK__BUF_END_PARK);
  shk_buf_release(d);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_slab_slot_header_is_144_bytes_on_64_bit_systems),
    cmocka_unit_test(the_usual_buffer_has_no_block_on_any_short_way),
    cmocka_unit_test(every_way_of_creation_with_a_callback_makes_the_block_and_runs_it_once),
    cmocka_unit_test(delayed_buffers_wait_on_the_deferred_list_through_their_blocks),
    cmocka_unit_test(without_memory_for_the_block_a_creation_fails_and_takes_nothing),
    cmocka_unit_test(under_shk_debug_the_block_holds_call_sites_and_leaves_a_parked_object),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
