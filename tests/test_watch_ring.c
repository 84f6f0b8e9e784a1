/* The watcher's fault ring on its own: many producers, one consumer, every record arrives once,
 * a full ring refuses instead of overwriting. Meant for ThreadSanitizer as much as for gcc. */
/* ctest: labels=unit;tsan;internal timeout=120 */
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "common/watch_internal.h"

static void a_full_ring_refuses_and_gives_back_in_order(void **state) {
  (void)state;
  shk__watch_ring ring;
  assert_int_equal(shk__watch_ring_init(&ring, 5), SHK_OK);
  assert_int_equal(shk__watch_ring_capacity(&ring), 8);
  shk__watch_record rec = {0, 0, 0, 0}, out;
  assert_false(shk__watch_ring_pop(&ring, &out));
  for (uintptr_t i = 1; i <= 8; i++) {
    rec.addr = i;
    assert_true(shk__watch_ring_push(&ring, &rec));
  }
  rec.addr = 9;
  assert_false(shk__watch_ring_push(&ring, &rec));
  for (uintptr_t i = 1; i <= 8; i++) {
    assert_true(shk__watch_ring_pop(&ring, &out));
    assert_int_equal(out.addr, i);
  }
  assert_false(shk__watch_ring_pop(&ring, &out));
  /* And again after wrapping around. */
  for (int lap = 0; lap < 100; lap++) {
    rec.addr = (uintptr_t)lap;
    assert_true(shk__watch_ring_push(&ring, &rec));
    assert_true(shk__watch_ring_pop(&ring, &out));
    assert_int_equal(out.addr, (uintptr_t)lap);
  }
  shk__watch_ring_destroy(&ring);
}

static void a_ring_of_one_holds_one(void **state) {
  (void)state;
  shk__watch_ring ring;
  assert_int_equal(shk__watch_ring_init(&ring, 0), SHK_EINVAL);
  assert_int_equal(shk__watch_ring_init(&ring, 1), SHK_OK);
  assert_int_equal(shk__watch_ring_capacity(&ring), 1);
  shk__watch_record rec = {0, 0, 0, 0}, out;
  for (uintptr_t lap = 1; lap <= 10; lap++) {
    rec.addr = lap;
    assert_true(shk__watch_ring_push(&ring, &rec));
    assert_false(shk__watch_ring_push(&ring, &rec)); /* one record, not two */
    assert_true(shk__watch_ring_pop(&ring, &out));
    assert_int_equal(out.addr, lap);
    assert_false(shk__watch_ring_pop(&ring, &out));
  }
  shk__watch_ring_destroy(&ring);
}

enum { PRODUCERS = 4, PER_PRODUCER = 50000 };

typedef struct shared {
  shk__watch_ring ring;
  atomic_int done;
  atomic_uint_least64_t refused;
} shared;

typedef struct producer {
  shared *s;
  int index;
} producer;

static void produce(void *arg) {
  producer *p = arg;
  for (uint64_t i = 0; i < PER_PRODUCER; i++) {
    shk__watch_record rec = {(uintptr_t)p->index, 0, i, 0};
    while (!shk__watch_ring_push(&p->s->ring, &rec)) {
      atomic_fetch_add(&p->s->refused, 1);
      shk__os_yield();
    }
  }
  atomic_fetch_add(&p->s->done, 1);
}

static void many_producers_and_one_consumer_lose_and_repeat_nothing(void **state) {
  (void)state;
  shared *s = calloc(1, sizeof *s);
  assert_int_equal(shk__watch_ring_init(&s->ring, 64), SHK_OK);
  producer ps[PRODUCERS];
  shk__os_thread *threads[PRODUCERS];
  for (int i = 0; i < PRODUCERS; i++) {
    ps[i].s = s;
    ps[i].index = i;
    assert_int_equal(shk__os_thread_start(&threads[i], produce, &ps[i]), SHK_OK);
  }
  uint64_t next[PRODUCERS] = {0};
  uint64_t received = 0;
  shk__watch_record rec;
  while (received < (uint64_t)PRODUCERS * PER_PRODUCER) {
    if (!shk__watch_ring_pop(&s->ring, &rec)) {
      shk__os_yield();
      continue;
    }
    assert_true(rec.addr < PRODUCERS);
    /* Each producer's records come out in the order it pushed them, none missing. */
    assert_int_equal(rec.tid, next[rec.addr]);
    next[rec.addr]++;
    received++;
  }
  for (int i = 0; i < PRODUCERS; i++) shk__os_thread_join(threads[i]);
  assert_false(shk__watch_ring_pop(&s->ring, &rec));
  assert_int_equal(atomic_load(&s->done), PRODUCERS);
  shk__watch_ring_destroy(&s->ring);
  free(s);
}

static void the_store_keeps_drops_and_evicts_values(void **state) {
  (void)state;
  shk__watch_store st;
  shk__watch_store_init(&st, 100);
  uint64_t a = shk__watch_store_put(&st, "hello", 5);
  uint64_t b = shk__watch_store_put(&st, "world!", 6);
  assert_true(a != 0 && b > a);
  char buf[16];
  size_t len = 0;
  assert_int_equal(shk__watch_store_fetch(&st, a, buf, sizeof buf, &len), SHK_OK);
  assert_int_equal(len, 5);
  assert_memory_equal(buf, "hello", 5);
  assert_int_equal(shk__watch_store_drop(&st, a), SHK_OK);
  assert_int_equal(shk__watch_store_fetch(&st, a, buf, sizeof buf, &len), SHK_ENOENT);
  assert_int_equal(shk__watch_store_bytes(&st, NULL), 6);
  /* Past the limit the oldest go first. */
  char big[60];
  memset(big, 'x', sizeof big);
  uint64_t c = shk__watch_store_put(&st, big, sizeof big);
  uint64_t d = shk__watch_store_put(&st, big, sizeof big);
  assert_int_equal(shk__watch_store_fetch(&st, b, buf, sizeof buf, &len), SHK_ENOENT);
  assert_int_equal(shk__watch_store_fetch(&st, c, buf, sizeof buf, &len), SHK_ENOENT);
  assert_int_equal(shk__watch_store_fetch(&st, d, buf, sizeof buf, &len), SHK_ERANGE);
  assert_int_equal(len, sizeof big);
  for (int i = 0; i < 1000; i++) {
    uint64_t k = shk__watch_store_put(&st, "k", 1);
    assert_int_equal(shk__watch_store_drop(&st, k), SHK_OK);
  }
  shk__watch_store_destroy(&st);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_full_ring_refuses_and_gives_back_in_order),
    cmocka_unit_test(a_ring_of_one_holds_one),
    cmocka_unit_test(many_producers_and_one_consumer_lose_and_repeat_nothing),
    cmocka_unit_test(the_store_keeps_drops_and_evicts_values),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
