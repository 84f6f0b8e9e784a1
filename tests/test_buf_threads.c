/* Buffers from several threads at once: create/retain/release, consume races on the same range
 * (exactly one wins), delayed free with concurrent freeing of deferred buffers, registry changes. Run under
 * ThreadSanitizer too. Uses the OS layer's threads, so it links the internal library. */
/* ctest: labels=unit;internal;tsan timeout=120 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "shk_test.h"
#include "os.h"
#include "shmkit.h"

#define THREADS 4
#define ROUNDS 2000
#define SLOTS 64

static atomic_int created, destroyed_calls, consume_wins, failures;
static unsigned char arena[SLOTS * 32];

static void count_destroy(const shk_buf_info *info, void *user) {
  (void)info;
  (void)user;
  atomic_fetch_add(&destroyed_calls, 1);
}

static void churn(void *arg) {
  int self = (int)(intptr_t)arg;
  const char *names[] = {"heap", "aligned", "pages"};
  for (int i = 0; i < ROUNDS; i++) {
    shk_buf *buf = NULL;
    shk_buf_options o = {.allocator = names[(i + self) % 3], .init = SHK_BUF_INIT_ZERO,
                         .on_destroy = count_destroy, .delayed_free = (i % 5) == 0};
    if (shk_buf_create(1 + (size_t)(i % 300), 8, &o, &buf) != SHK_OK) {
      atomic_fetch_add(&failures, 1);
      continue;
    }
    atomic_fetch_add(&created, 1);
    unsigned char *p = shk_buf_data(buf);
    p[0] = (unsigned char)self;
    shk_buf_retain(buf);
    shk_buf_release(buf);
    shk_buf_release(buf);
    /* Every thread races for the same slot; the index lets exactly one own it at a time. */
    shk_buf *slot = NULL;
    shk_buf_options c = {.on_destroy = count_destroy};
    if (shk_buf_consume(arena + (size_t)(i % SLOTS) * 32, 32, 1, &c, &slot) == SHK_OK) {
      atomic_fetch_add(&consume_wins, 1);
      atomic_fetch_add(&created, 1);
      shk_buf_release(slot);
    }
    if (self == 0 && i % 50 == 0) shk_buf_free_deferred_all(NULL);
    if (self == 1 && i % 100 == 0) {
      uint64_t ids[8];
      size_t n = 0;
      shk_buf_deferred_list(ids, 8, &n);
      if (n > 0) shk_buf_free_deferred(ids[0]); /* may race with free_deferred_all: SHK_ENOENT is fine */
    }
  }
}

/* A registry user in parallel: registers, uses, unregisters its own (always failing) allocator. */
static int plain_alloc(void *user, const shk_buf_alloc_request *req, shk_buf_block *out) {
  (void)user;
  (void)req;
  out->ptr = NULL;
  return SHK_ENOMEM;
}

static void plain_free(void *user, const shk_buf_block *block, size_t size) {
  (void)user;
  (void)block;
  (void)size;
}

static void registry_churn(void *arg) {
  (void)arg;
  shk_buf_allocator t = {SHK_BUF_ALLOCATOR_VERSION, plain_alloc, plain_free, NULL, NULL, NULL};
  for (int i = 0; i < ROUNDS / 4; i++) {
    if (shk_buf_allocator_register("threaded", &t) != SHK_OK) atomic_fetch_add(&failures, 1);
    shk_buf *buf = NULL;
    shk_buf_options o = {.allocator = "threaded"};
    if (shk_buf_create(1, 1, &o, &buf) != SHK_ENOMEM) atomic_fetch_add(&failures, 1);
    if (!shk_buf_allocator_exists("heap")) atomic_fetch_add(&failures, 1);
    if (shk_buf_allocator_unregister("threaded") != SHK_OK) atomic_fetch_add(&failures, 1);
  }
}

static void concurrent_create_consume_release_and_free_deferred_agree(void **state) {
  (void)state;
  size_t live_before = shk_buf_live_count();
  shk__os_thread *threads[THREADS + 1];
  for (int t = 0; t < THREADS; t++)
    assert_int_equal(shk__os_thread_start(&threads[t], churn, (void *)(intptr_t)t), SHK_OK);
  assert_int_equal(shk__os_thread_start(&threads[THREADS], registry_churn, NULL), SHK_OK);
  for (int t = 0; t <= THREADS; t++) shk__os_thread_join(threads[t]);
  assert_int_equal(shk_buf_free_deferred_all(NULL), SHK_OK);
  assert_int_equal(atomic_load(&failures), 0);
  assert_true(atomic_load(&consume_wins) > 0);
  /* Every buffer made was destroyed exactly once, and every range left the index. */
  assert_int_equal(atomic_load(&destroyed_calls), atomic_load(&created));
  assert_int_equal(shk_buf_live_count(), live_before);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(concurrent_create_consume_release_and_free_deferred_agree),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
