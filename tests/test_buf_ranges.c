/* Consuming external memory and the live-range index: every kind of overlap is refused
 * (containment included), touching ranges are fine, freed ranges leave the index, ownership is
 * freed exactly once. */
/* ctest: labels=unit timeout=60 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

static unsigned char arena[4096];

static shk_buf *consume_ok(size_t offset, size_t len) {
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_consume(arena + offset, len, 1, NULL, &buf), SHK_OK);
  return buf;
}

static int consume_rc(size_t offset, size_t len) {
  shk_buf *buf = (shk_buf *)1;
  int rc = shk_buf_consume(arena + offset, len, 1, NULL, &buf);
  if (rc == SHK_OK) shk_buf_release(buf);
  else assert_null(buf);
  return rc;
}

static void consume_wraps_memory_without_copying(void **state) {
  (void)state;
  strcpy((char *)arena, "external");
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_consume(arena, 4, 2, NULL, &buf), SHK_OK);
  assert_ptr_equal(shk_buf_data(buf), arena);
  assert_int_equal(shk_buf_size(buf), 8);
  assert_int_equal(shk_buf_count(buf), 4);
  assert_int_equal(shk_buf_item_size(buf), 2);
  assert_true(shk_buf_consumed(buf));
  assert_string_equal(shk_buf_data(buf), "external");
  shk_buf_release(buf);
  assert_string_equal((char *)arena, "external"); /* not freed, not changed */
}

static void every_overlap_is_refused_and_touching_is_fine(void **state) {
  (void)state;
  shk_buf *live = consume_ok(100, 100); /* [100, 200) */
  size_t before = shk_buf_live_count();
  assert_int_equal(consume_rc(100, 100), SHK_EOVERLAP); /* same */
  assert_int_equal(consume_rc(0, 101), SHK_EOVERLAP);   /* over the start */
  assert_int_equal(consume_rc(199, 10), SHK_EOVERLAP);  /* over the end */
  assert_int_equal(consume_rc(110, 10), SHK_EOVERLAP);  /* inside */
  assert_int_equal(consume_rc(0, 1000), SHK_EOVERLAP);  /* containing: the Perl original missed it */
  assert_int_equal(consume_rc(150, 1), SHK_EOVERLAP);   /* one byte inside */
  assert_int_equal(shk_buf_live_count(), before);       /* refusals changed nothing */
  assert_int_equal(consume_rc(0, 100), SHK_OK);         /* touches the start */
  assert_int_equal(consume_rc(200, 100), SHK_OK);       /* touches the end */
  shk_buf_release(live);
}

static void containment_is_refused_among_many_ranges(void **state) {
  (void)state;
  shk_buf *bufs[64];
  for (size_t i = 0; i < 64; i++) bufs[i] = consume_ok(i * 64 + 16, 16); /* [64i+16, 64i+32) */
  for (size_t i = 0; i < 64; i++) {
    assert_int_equal(consume_rc(i * 64, 64), SHK_EOVERLAP);      /* contains one */
    assert_int_equal(consume_rc(i * 64 + 20, 4), SHK_EOVERLAP);  /* inside one */
    assert_int_equal(consume_rc(i * 64 + 32, 32), SHK_OK);       /* the gap after it */
    assert_int_equal(consume_rc(i * 64, 16), SHK_OK);            /* the gap before it */
  }
  assert_int_equal(consume_rc(0, sizeof arena), SHK_EOVERLAP);
  for (size_t i = 0; i < 64; i++) shk_buf_release(bufs[i]);
  assert_int_equal(consume_rc(0, sizeof arena), SHK_OK);
}

static void freed_ranges_can_be_consumed_again(void **state) {
  (void)state;
  for (int round = 0; round < 100; round++) {
    shk_buf *buf = consume_ok(1000, 500);
    assert_int_equal(consume_rc(1200, 10), SHK_EOVERLAP);
    shk_buf_release(buf);
  }
  assert_int_equal(consume_rc(1000, 500), SHK_OK);
}

static void consuming_a_created_buffer_is_refused(void **state) {
  (void)state;
  shk_buf *buf = NULL, *inner = (shk_buf *)1;
  assert_int_equal(shk_buf_create(100, 1, NULL, &buf), SHK_OK);
  unsigned char *p = shk_buf_data(buf);
  assert_int_equal(shk_buf_consume(p + 10, 10, 1, NULL, &inner), SHK_EOVERLAP);
  assert_null(inner);
  shk_buf_release(buf);
}

static void consume_refuses_bad_arguments(void **state) {
  (void)state;
  shk_buf *buf = (shk_buf *)1;
  assert_int_equal(shk_buf_consume(arena, 1, 1, NULL, NULL), SHK_EINVAL);
  assert_int_equal(shk_buf_consume(NULL, 1, 1, NULL, &buf), SHK_EINVAL);
  assert_null(buf);
  assert_int_equal(shk_buf_consume(arena, 0, 1, NULL, &buf), SHK_ESIZE);
  assert_int_equal(shk_buf_consume(arena, 1, 0, NULL, &buf), SHK_ESIZE);
  assert_int_equal(shk_buf_consume(arena, SIZE_MAX, 2, NULL, &buf), SHK_EOVERFLOW);
  /* A range that would wrap past the end of the address space. */
  assert_int_equal(shk_buf_consume(arena + 1, SIZE_MAX, 1, NULL, &buf), SHK_EOVERFLOW);
  shk_buf_options init = {.init = SHK_BUF_INIT_ZERO};
  assert_int_equal(shk_buf_consume(arena, 1, 1, &init, &buf), SHK_EINVAL);
  shk_buf_options unknown = {.allocator = "nope"};
  assert_int_equal(shk_buf_consume(arena, 1, 1, &unknown, &buf), SHK_ENOENT);
  assert_null(buf);
}

/* Frees are counted, to prove that nothing is freed twice. */
static int frees;

static void counted_free(void *user, const shk_buf_block *block, size_t size) {
  (void)user;
  (void)size;
  frees++;
  free(block->ptr);
}

static int counted_alloc(void *user, const shk_buf_alloc_request *req, shk_buf_block *out) {
  (void)user;
  out->ptr = malloc(req->size);
  return out->ptr ? SHK_OK : SHK_ENOMEM;
}

static void handed_over_memory_is_freed_once_and_refused_memory_never(void **state) {
  (void)state;
  shk_buf_allocator t = {SHK_BUF_ALLOCATOR_VERSION, counted_alloc, counted_free, NULL, NULL, NULL};
  assert_int_equal(shk_buf_allocator_register("counted", &t), SHK_OK);
  frees = 0;
  unsigned char *mem = malloc(256);
  shk_buf_options own = {.allocator = "counted", .take_ownership = true};
  shk_buf *a = NULL, *b = (shk_buf *)1;
  assert_int_equal(shk_buf_consume(mem, 256, 1, &own, &a), SHK_OK);
  /* A second owner of the same memory is refused, so it cannot free it a second time. */
  assert_int_equal(shk_buf_consume(mem + 64, 64, 1, &own, &b), SHK_EOVERLAP);
  assert_null(b);
  assert_int_equal(frees, 0);
  shk_buf_release(a);
  assert_int_equal(frees, 1);
  assert_int_equal(shk_buf_allocator_unregister("counted"), SHK_OK);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(consume_wraps_memory_without_copying),
    cmocka_unit_test(every_overlap_is_refused_and_touching_is_fine),
    cmocka_unit_test(containment_is_refused_among_many_ranges),
    cmocka_unit_test(freed_ranges_can_be_consumed_again),
    cmocka_unit_test(consuming_a_created_buffer_is_refused),
    cmocka_unit_test(consume_refuses_bad_arguments),
    cmocka_unit_test(handed_over_memory_is_freed_once_and_refused_memory_never),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
