/* Internal entry points that the public calls do not reach on this system, tested directly
 * so that each does what its table or its platform promises: the built-in heap and aligned
 * allocators' tables (buf.c keeps their bytes inline and never goes through them), the hosted
 * pool's stand-in function (the workers run the plugin's), the POSIX answer of the
 * write-watch primitives (GetWriteWatch exists on Windows only), and the internal operations of a
 * custom watch backend (whose `available` stands in for the table's own, which the registry asks
 * with its user pointer). */
/* ctest: labels=unit;internal timeout=60 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "common/buf_internal.h"
#include "common/task_internal.h"
#include "common/watch_internal.h"
#include "os.h"

static shk_buf_alloc_request request(size_t size, size_t alignment, bool zero) {
  shk_buf_alloc_request r;
  memset(&r, 0, sizeof r);
  r.size = size;
  r.alignment = alignment;
  r.zero = zero;
  return r;
}

static bool all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

static void the_heap_table_allocates_zeroes_and_frees(void **state) {
  (void)state;
  const shk_buf_allocator *t = &shk__buf_heap_allocator;
  shk_buf_alloc_request r = request(4096, 0, true);
  shk_buf_block b;
  memset(&b, 0, sizeof b);
  assert_int_equal(t->alloc(t->user, &r, &b), SHK_OK);
  assert_non_null(b.ptr);
  assert_true(b.zeroed);
  assert_true(all_zero(b.ptr, 4096));
  memset(b.ptr, 0xAB, 4096); /* really ours: valgrind and ASan would say otherwise */
  t->free(t->user, &b, 4096);
}

static void the_aligned_table_aligns_checks_and_frees(void **state) {
  (void)state;
  const shk_buf_allocator *t = &shk__buf_aligned_allocator;
  const size_t aligns[] = {0, 16, 4096, 1u << 16};
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    size_t want = aligns[i] ? aligns[i] : SHK__BUF_ALIGNED_DEFAULT;
    shk_buf_alloc_request r = request(1000, aligns[i], i % 2 == 0);
    shk_buf_block b;
    memset(&b, 0, sizeof b);
    assert_int_equal(t->alloc(t->user, &r, &b), SHK_OK);
    assert_int_equal((uintptr_t)b.ptr % want, 0);
    assert_non_null(b.state); /* the raw block, which free gives back */
    if (r.zero) assert_true(all_zero(b.ptr, 1000));
    memset(b.ptr, 0xCD, 1000);
    t->free(t->user, &b, 1000);
  }
  shk_buf_block b;
  memset(&b, 0, sizeof b);
  shk_buf_alloc_request bad = request(64, 48, false); /* not a power of two */
  assert_int_equal(t->alloc(t->user, &bad, &b), SHK_EINVAL);
  shk_buf_alloc_request huge = request(SIZE_MAX - 8, 64, false); /* size + alignment wraps */
  assert_int_equal(t->alloc(t->user, &huge, &b), SHK_EOVERFLOW);
  /* A block handed over with ownership (consumed) has no raw pointer: its pointer is freed. */
  shk_buf_block consumed = {0};
  consumed.ptr = malloc(32);
  assert_non_null(consumed.ptr);
  t->free(t->user, &consumed, 32);
}

static void the_hosted_stand_in_runs_nothing(void **state) {
  (void)state;
  shk_task_chunk chunk;
  memset(&chunk, 0, sizeof chunk);
  assert_int_equal(shk__task_hosted_fn(&chunk, NULL), SHK_EUNSUPPORTED);
}

static int no_attach(void *user, shk_watcher *w, void *addr, size_t size, void **state) {
  (void)user, (void)w, (void)addr, (void)size, (void)state;
  return SHK_OK;
}

static void custom_backend_ops_stand_for_the_table(void **state) {
  (void)state;
  shk_watch_backend_table table;
  shk_watch_backend_table_init(&table);
  table.attach = no_attach;
  shk__watch_backend_ops ops;
  memset(&ops, 0, sizeof ops);
  shk__watch_custom_ops_init(&ops, &table);
  assert_int_equal(ops.kind, SHK_WATCH_CUSTOM);
  assert_true(ops.custom == &table);
  assert_true(ops.available()); /* the table's own available() is the registry's to ask */
  assert_null(ops.accepts);
  assert_non_null(ops.attach);
  assert_non_null(ops.detach);
  assert_non_null(ops.scan);
  assert_non_null(ops.rearm);
}

static void count_dirty(uintptr_t addr, size_t pages, void *ctx) {
  (void)addr;
  *(size_t *)ctx += pages;
}

static void write_watch_answers_for_this_system(void **state) {
  (void)state;
#ifdef _WIN32
  (void)count_dirty;
  skip(); /* the real GetWriteWatch: tested through the write-watch backend (test_watch) */
#else
  static unsigned char page[8192];
  size_t dirty = 0;
  assert_false(shk__os_write_watch_covers(page, sizeof page));
  assert_int_equal(shk__os_write_watch_scan(page, sizeof page, count_dirty, &dirty),
                   SHK_EUNSUPPORTED);
  assert_int_equal(dirty, 0);
#endif
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(the_heap_table_allocates_zeroes_and_frees),
    cmocka_unit_test(the_aligned_table_aligns_checks_and_frees),
    cmocka_unit_test(the_hosted_stand_in_runs_nothing),
    cmocka_unit_test(write_watch_answers_for_this_system),
    cmocka_unit_test(custom_backend_ops_stand_for_the_table),
};

static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
