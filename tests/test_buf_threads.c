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

/* Neighbouring ranges consumed by several threads at once, with no options (the short way of
 * consume and of release): ranges of 1 to 40 bytes at any offset in a small arena, so that one
 * often contains another, meets it exactly or overlaps it by a byte. Each byte's holders are
 * counted outside the library: a consume the index let overlap a live range shows as a byte
 * with two holders. */
#define NEIGHBOUR_BYTES 1024
#define NEIGHBOUR_ROUNDS 4000
static unsigned char neighbour_arena[NEIGHBOUR_BYTES];
static atomic_int holders[NEIGHBOUR_BYTES];
static atomic_int neighbour_wins, neighbour_overlaps;

/* Each thread holds its last HELD ranges, so that a new one often meets a held one. */
#define HELD 8

typedef struct held_range {
  shk_buf *buf;
  size_t at, size;
} held_range;

static void neighbour_let_go(held_range *h) {
  if (!h->buf) return;
  for (size_t j = h->at; j < h->at + h->size; j++) atomic_fetch_sub(&holders[j], 1);
  shk_buf_release(h->buf);
  h->buf = NULL;
}

static void neighbour_churn(void *arg) {
  uint32_t x = 2463534242u + (uint32_t)(intptr_t)arg * 7919u;
  held_range held[HELD] = {{0}};
  for (int i = 0; i < NEIGHBOUR_ROUNDS; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    held_range *h = &held[i % HELD];
    neighbour_let_go(h);
    size_t size = 1 + (x >> 20) % 40, at = x % (NEIGHBOUR_BYTES - size);
    if (shk_buf_consume(neighbour_arena + at, size, 1, NULL, &h->buf) != SHK_OK) continue;
    atomic_fetch_add(&neighbour_wins, 1);
    h->at = at;
    h->size = size;
    for (size_t j = at; j < at + size; j++)
      if (atomic_fetch_add(&holders[j], 1) != 0) atomic_fetch_add(&neighbour_overlaps, 1);
  }
  for (size_t k = 0; k < HELD; k++) neighbour_let_go(&held[k]);
}

static void threads_consuming_neighbouring_ranges_never_hold_one_place_twice(void **state) {
  (void)state;
  size_t live_before = shk_buf_live_count();
  shk__os_thread *threads[THREADS];
  for (int t = 0; t < THREADS; t++)
    assert_int_equal(
        shk__os_thread_start(&threads[t], neighbour_churn, (void *)(intptr_t)t), SHK_OK);
  for (int t = 0; t < THREADS; t++) shk__os_thread_join(threads[t]);
  assert_int_equal(atomic_load(&neighbour_overlaps), 0);
  assert_true(atomic_load(&neighbour_wins) > NEIGHBOUR_ROUNDS); /* many got their place */
  assert_int_equal(shk_buf_live_count(), live_before);
  /* Every place free again: the whole arena goes in as one range. */
  shk_buf *all = NULL;
  assert_int_equal(shk_buf_consume(neighbour_arena, sizeof neighbour_arena, 1, NULL, &all),
                   SHK_OK);
  shk_buf_release(all);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(threads_consuming_neighbouring_ranges_never_hold_one_place_twice),
    cmocka_unit_test(concurrent_create_consume_release_and_free_deferred_agree),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
