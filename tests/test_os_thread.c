/* The OS layer's threads, locks, condition variables and clock, on every backend. */
/* ctest: labels=unit;tsan timeout=60 */
#include <stdatomic.h>
#include <stdint.h>

#include "shk_test.h"
#include "os.h"

typedef struct counter_state {
  shk__os_mutex lock;
  shk__os_cond changed;
  long value;
  int finished;
} counter_state;

enum { THREADS = 4, INCREMENTS = 20000 };

static void add_many(void *arg) {
  counter_state *s = arg;
  for (int i = 0; i < INCREMENTS; i++) {
    shk__os_mutex_lock(&s->lock);
    s->value++;
    shk__os_mutex_unlock(&s->lock);
  }
  shk__os_mutex_lock(&s->lock);
  s->finished++;
  shk__os_cond_broadcast(&s->changed);
  shk__os_mutex_unlock(&s->lock);
}

static void threads_under_a_mutex_lose_no_increment(void **state) {
  (void)state;
  counter_state s = {0};
  shk__os_mutex_init(&s.lock);
  shk__os_cond_init(&s.changed);
  shk__os_thread *threads[THREADS];
  for (int i = 0; i < THREADS; i++) assert_int_equal(shk__os_thread_start(&threads[i], add_many, &s), SHK_OK);
  shk__os_mutex_lock(&s.lock);
  while (s.finished < THREADS) shk__os_cond_wait(&s.changed, &s.lock);
  shk__os_mutex_unlock(&s.lock);
  for (int i = 0; i < THREADS; i++) shk__os_thread_join(threads[i]);
  assert_int_equal(s.value, (long)THREADS * INCREMENTS);
  shk__os_cond_destroy(&s.changed);
  shk__os_mutex_destroy(&s.lock);
}

static void a_timed_wait_with_no_signal_times_out(void **state) {
  (void)state;
  shk__os_mutex m;
  shk__os_cond c;
  shk__os_mutex_init(&m);
  shk__os_cond_init(&c);
  uint64_t t0 = shk__os_now_ns();
  shk__os_mutex_lock(&m);
  int rc = shk__os_cond_timedwait(&c, &m, 20 * 1000000u);
  shk__os_mutex_unlock(&m);
  assert_int_equal(rc, SHK_ETIMEDOUT);
  assert_true(shk__os_now_ns() - t0 >= 15 * 1000000u); /* it waited, within clock granularity */
  shk__os_cond_destroy(&c);
  shk__os_mutex_destroy(&m);
}

static void record_thread_id(void *arg) { *(uint64_t *)arg = shk__os_thread_id(); }

static void each_thread_has_its_own_id(void **state) {
  (void)state;
  uint64_t other = 0;
  shk__os_thread *t;
  assert_int_equal(shk__os_thread_start(&t, record_thread_id, &other), SHK_OK);
  shk__os_thread_join(t);
  assert_true(other != 0);
  assert_true(other != shk__os_thread_id());
  shk__os_thread_join(NULL); /* accepted */
}

/* Thread-exit keys: the value set by a thread reaches the callback on that thread as it ends
 * (before its join returns); a thread that set none, or set NULL, causes no call. */
typedef struct exit_record {
  _Atomic int calls;
  _Atomic uint64_t value_seen;
  _Atomic uint64_t thread_seen;
} exit_record;

static exit_record exits;
static shk__os_thread_key exit_key;

static void note_exit(void *value) {
  atomic_fetch_add(&exits.calls, 1);
  atomic_store(&exits.value_seen, (uint64_t)(uintptr_t)value);
  atomic_store(&exits.thread_seen, shk__os_thread_id());
}

typedef struct key_user {
  void *value;
  uint64_t thread;
  int rc; /* checked on the main thread: CMocka asserts only there */
} key_user;

static void set_key_and_end(void *arg) {
  key_user *u = arg;
  u->thread = shk__os_thread_id();
  u->rc = SHK_OK;
  if (u->value) {
    u->rc = shk__os_thread_key_set(&exit_key, (void *)1);
    if (u->rc == SHK_OK) u->rc = shk__os_thread_key_set(&exit_key, u->value); /* the last counts */
  }
}

static void run_key_user(key_user *u) {
  shk__os_thread *t;
  assert_int_equal(shk__os_thread_start(&t, set_key_and_end, u), SHK_OK);
  shk__os_thread_join(t);
  assert_int_equal(u->rc, SHK_OK);
}

static void a_thread_key_hands_its_value_over_as_the_thread_ends(void **state) {
  (void)state;
  assert_int_equal(shk__os_thread_key_create(&exit_key, note_exit), SHK_OK);
  int marker;
  key_user with = {&marker, 0, -1};
  run_key_user(&with);
  assert_int_equal(atomic_load(&exits.calls), 1);
  assert_true(atomic_load(&exits.value_seen) == (uint64_t)(uintptr_t)&marker);
  assert_true(atomic_load(&exits.thread_seen) == with.thread); /* on the ending thread */
  key_user without = {NULL, 0, -1};
  run_key_user(&without);
  assert_int_equal(atomic_load(&exits.calls), 1); /* no value, no call */
  /* The main thread's value is not handed over here: it is only set, never ended. */
  assert_int_equal(shk__os_thread_key_set(&exit_key, &marker), SHK_OK);
  assert_int_equal(shk__os_thread_key_set(&exit_key, NULL), SHK_OK);
  assert_int_equal(atomic_load(&exits.calls), 1);
}

static void the_clock_is_monotonic_and_sleep_sleeps(void **state) {
  (void)state;
  uint64_t a = shk__os_now_ns();
  shk__os_sleep_ns(2 * 1000000u);
  uint64_t b = shk__os_now_ns();
  assert_true(b >= a + 1500000u);
  shk__os_yield();
  assert_true(shk__os_now_ns() >= b);
}

static void capabilities_are_sane(void **state) {
  (void)state;
  const shk__os_caps *caps = shk__os_caps_get();
  assert_non_null(caps);
  assert_ptr_equal(caps, shk__os_caps_get());
  assert_true(caps->page_size >= 4096);
  assert_int_equal(caps->page_size & (caps->page_size - 1), 0);
  assert_true(caps->alloc_granularity >= caps->page_size);
  assert_true(shk__os_cpu_count() >= 1);
  assert_int_equal(shk__os_cpu_count(), shk__os_cpu_count());
  /* The costly facts: asked once, then remembered; consistent with each other and the OS. */
  for (int f = 0; f < SHK__OS_FEATURES; f++)
    assert_int_equal(shk__os_has((shk__os_feature)f), shk__os_has((shk__os_feature)f));
  assert_false(shk__os_has(SHK__OS_FEATURES)); /* not a feature */
  if (shk__os_has(SHK__OS_UFFD_WP_ASYNC)) assert_true(shk__os_has(SHK__OS_UFFD_WP));
  if (caps->has_fork) assert_false(shk__os_has(SHK__OS_WRITE_WATCH)); /* Windows only */
  else assert_false(shk__os_has(SHK__OS_MEMFD) || shk__os_has(SHK__OS_UFFD_WP)); /* Linux only */
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(threads_under_a_mutex_lose_no_increment),
    cmocka_unit_test(a_timed_wait_with_no_signal_times_out),
    cmocka_unit_test(each_thread_has_its_own_id),
    cmocka_unit_test(a_thread_key_hands_its_value_over_as_the_thread_ends),
    cmocka_unit_test(the_clock_is_monotonic_and_sleep_sleeps),
    cmocka_unit_test(capabilities_are_sane),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
