/* Recycled heap buffers: a released inline heap buffer is parked with its range still indexed,
 * the next create of that size takes it back as a new buffer (new id, init applied, callbacks
 * and live count as for any buffer), and shutdown or the end of the parking thread frees what
 * is parked. */
/* ctest: labels=unit;internal;tsan;multiprocess timeout=180 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#ifdef _WIN32
#include <windows.h>
#endif
#include "common/buf_internal.h"

static int destroyed;
static void count_destroy(const shk_buf_info *info, void *user) {
  (void)info;
  (void)user;
  destroyed++;
}

/* For child processes and threads, where CMocka's asserts cannot be used: NULL on failure. */
static shk_buf *make_quietly(size_t size) {
  shk_buf *buf = NULL;
  return shk_buf_create(size, 1, NULL, &buf) == SHK_OK ? buf : NULL;
}

static shk_buf *make(size_t size, const shk_buf_options *opts) {
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_create(size, 1, opts, &buf), SHK_OK);
  return buf;
}

static void a_released_buffer_comes_back_as_a_new_zeroed_buffer(void **state) {
  (void)state;
  shk_buf_options counted = {.on_destroy = count_destroy};
  shk_buf *a = make(100, &counted);
  void *where = shk_buf_data(a);
  uint64_t id = shk_buf_id(a);
  memset(where, 0xAB, 100);
  destroyed = 0;
  shk_buf_release(a);
  assert_int_equal(destroyed, 1); /* parking still ends the buffer */
  shk_buf_options zero = {.init = SHK_BUF_INIT_ZERO};
  shk_buf *b = make(100, &zero);
  assert_ptr_equal(shk_buf_data(b), where); /* the parked object, taken back */
  assert_true(shk_buf_id(b) > id);
  assert_int_equal(shk_buf_refcount(b), 1);
  unsigned char want[100] = {0};
  assert_memory_equal(shk_buf_data(b), want, sizeof want);
  shk_buf_release(b);
}

static void parked_memory_stays_indexed_but_not_live(void **state) {
  (void)state;
  size_t live = shk_buf_live_count();
  shk_buf *a = make(48, NULL);
  unsigned char *p = shk_buf_data(a);
  assert_int_equal(shk_buf_live_count(), live + 1);
  shk_buf_release(a);
  assert_int_equal(shk_buf_live_count(), live);
  assert_true(shk__buf_ranges_count() > shk_buf_live_count());
  /* The bytes are still the library's: nothing may wrap them while they are parked. */
  shk_buf *c = (shk_buf *)1;
  assert_int_equal(shk_buf_consume(p + 8, 8, 1, NULL, &c), SHK_EOVERLAP);
  assert_null(c);
}

static void another_size_of_the_class_replaces_the_parked_one(void **state) {
  (void)state;
  size_t indexed = shk__buf_ranges_count();
  shk_buf *a = make(80, NULL); /* 80 and 90 share a class (bit length 7) */
  shk_buf_release(a);
  shk_buf *b = make(90, NULL); /* the parked 80 leaves the index, a fresh 90 is made */
  assert_int_equal(shk_buf_size(b), 90);
  shk_buf_release(b);
  assert_true(shk__buf_ranges_count() <= indexed + 1);
}

/* A thread parks up to shk__buf_park_limit() objects of a class; the release after that frees. */
static void a_full_list_leaves_the_release_to_free(void **state) {
  (void)state;
  assert_int_equal(shk_buf_shutdown(), SHK_OK); /* empty lists */
  size_t limit = shk__buf_park_limit(shk__buf_class_of(300));
  shk_buf **held = calloc(limit + 1, sizeof *held);
  assert_non_null(held);
  for (size_t i = 0; i <= limit; i++) held[i] = make(300, NULL);
  void *first = shk_buf_data(held[0]);
  for (size_t i = 0; i < limit; i++) shk_buf_release(held[i]); /* parked */
  assert_int_equal(shk__buf_recycle_count(), limit);
  size_t indexed = shk__buf_ranges_count();
  /* Its list is full: made in the thread's current slab (nothing of its class was parked), it
   * goes back there, the slab staying indexed; one made alone would leave the index. */
  shk_buf *last = held[limit];
  shk__buf_slab *slab = last->in_slab ? last->slab : NULL;
  shk_buf_release(last);
  if (slab) {
    assert_ptr_equal(slab->free, last);
    assert_int_equal(shk__buf_ranges_count(), indexed);
  } else {
    assert_int_equal(shk__buf_ranges_count(), indexed - 1);
  }
  assert_int_equal(shk__buf_recycle_count(), limit);
  /* Taken back last in, first out: the first one parked comes back last. */
  for (size_t i = 0; i < limit; i++) held[i] = make(300, NULL);
  assert_ptr_equal(shk_buf_data(held[limit - 1]), first);
  assert_int_equal(shk__buf_recycle_count(), 0);
  for (size_t i = 0; i < limit; i++) shk_buf_release(held[i]);
  free(held);
}

/* A thousand small buffers renewed together come back from the thread's list: no new memory. */
static void a_thousand_small_buffers_are_recycled_together(void **state) {
  (void)state;
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  enum { N = 1000 };
  static shk_buf *held[N];
  static void *where[N];
  for (size_t i = 0; i < N; i++) where[i] = shk_buf_data(held[i] = make(64, NULL));
  for (size_t i = 0; i < N; i++) shk_buf_release(held[i]);
  size_t indexed = shk__buf_ranges_count();
  for (size_t i = 0; i < N; i++) held[i] = make(64, NULL);
  assert_int_equal(shk__buf_ranges_count(), indexed); /* nothing entered the index */
  for (size_t i = 0; i < N; i++) assert_ptr_equal(shk_buf_data(held[i]), where[N - 1 - i]);
  for (size_t i = 0; i < N; i++) shk_buf_release(held[i]);
}

/* "aligned" buffers are parked too, apart from heap ones, and come back only with their own
 * alignment. */
static void aligned_buffers_are_recycled_with_their_alignment(void **state) {
  (void)state;
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  shk_buf_options a64 = {.allocator = "aligned"}, a256 = {.allocator = "aligned", .alignment = 256};
  shk_buf *a = make(100, &a64);
  void *p = shk_buf_data(a);
  assert_int_equal((uintptr_t)p % 64, 0);
  assert_string_equal(shk_buf_allocator_name(a), "aligned");
  shk_buf_release(a);
  /* Parked aligned memory is still the library's. */
  shk_buf *e = (shk_buf *)1;
  assert_int_equal(shk_buf_consume((unsigned char *)p + 8, 8, 1, NULL, &e), SHK_EOVERLAP);
  assert_null(e);
  shk_buf *h = make(100, NULL); /* the heap does not take the aligned object */
  assert_ptr_not_equal(shk_buf_data(h), p);
  assert_string_equal(shk_buf_allocator_name(h), "heap");
  shk_buf *b = make(100, &a64);
  assert_ptr_equal(shk_buf_data(b), p); /* taken back */
  shk_buf_release(b);
  shk_buf *c = make(100, &a256); /* another alignment: the parked one is replaced */
  assert_int_equal((uintptr_t)shk_buf_data(c) % 256, 0);
  shk_buf_release(c);
  shk_buf *d = make(100, &a256);
  assert_int_equal((uintptr_t)shk_buf_data(d) % 256, 0);
  shk_buf_release(h);
  shk_buf_release(d);
}

static void large_buffers_are_freed_not_parked(void **state) {
  (void)state;
  size_t indexed = shk__buf_ranges_count();
  shk_buf *a = make((size_t)4 << 20, NULL);
  shk_buf_release(a);
  assert_int_equal(shk__buf_ranges_count(), indexed);
}

static void shared_buffers_are_parked_by_the_last_release_only(void **state) {
  (void)state;
  size_t live = shk_buf_live_count();
  shk_buf *a = make(200, NULL);
  assert_int_equal(shk_buf_retain(a), SHK_OK);
  shk_buf_release(a);
  assert_int_equal(shk_buf_live_count(), live + 1);
  assert_int_equal(shk_buf_refcount(a), 1);
  shk_buf_release(a);
  assert_int_equal(shk_buf_live_count(), live);
}

static void shutdown_frees_every_parked_object(void **state) {
  (void)state;
  for (size_t size = 1; size <= ((size_t)1 << 20); size *= 2) shk_buf_release(make(size, NULL));
  assert_true(shk__buf_recycle_count() > 10);
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  assert_int_equal(shk__buf_recycle_count(), 0);
  assert_int_equal(shk__buf_ranges_count(), shk_buf_live_count());
}

/* Threads swap same-size buffers through the slots: a block handed to two owners at once would
 * show the other thread's bytes. */
static atomic_int mixups;

static void same_size_churn(void *arg) {
  unsigned char mark = (unsigned char)(uintptr_t)arg;
  for (int i = 0; i < 20000; i++) {
    shk_buf *buf = NULL;
    if (shk_buf_create(64, 1, NULL, &buf) != SHK_OK) {
      atomic_fetch_add(&mixups, 1);
      continue;
    }
    unsigned char *p = shk_buf_data(buf);
    memset(p, mark, 64);
    for (int k = 0; k < 64; k++)
      if (p[k] != mark) atomic_fetch_add(&mixups, 1);
    shk_buf_release(buf);
  }
}

static void threads_never_share_a_recycled_buffer(void **state) {
  (void)state;
  size_t live = shk_buf_live_count();
  shk__os_thread *threads[4];
  for (uintptr_t t = 0; t < 4; t++)
    assert_int_equal(shk__os_thread_start(&threads[t], same_size_churn, (void *)(t + 1)), SHK_OK);
  for (int t = 0; t < 4; t++) shk__os_thread_join(threads[t]);
  assert_int_equal(atomic_load(&mixups), 0);
  assert_int_equal(shk_buf_live_count(), live);
}

/* The heap hook hears a parked object leave and come back like any buffer (the short ways of
 * create and release step aside while a hook is set). */
static int hook_allocs, hook_frees;
static uint64_t hook_last_id;
static void count_heap(bool allocated, const shk_buf_info *info, void *user) {
  (void)user;
  if (allocated) hook_allocs++;
  else hook_frees++;
  hook_last_id = info->id;
}

static void the_heap_hook_hears_recycled_buffers(void **state) {
  (void)state;
  shk_buf *a = make(100, NULL);
  void *where = shk_buf_data(a);
  shk_buf_release(a); /* parked */
  assert_int_equal(shk_buf_set_heap_hook(count_heap, NULL), SHK_OK);
  shk_buf *b = make(100, NULL);
  assert_ptr_equal(shk_buf_data(b), where); /* taken back, and heard */
  assert_int_equal(hook_allocs, 1);
  assert_true(hook_last_id == shk_buf_id(b));
  shk_buf_release(b);
  assert_int_equal(hook_frees, 1);
  assert_int_equal(shk_buf_set_heap_hook(NULL, NULL), SHK_OK);
  shk_buf_release(make(100, NULL)); /* the short ways again: nothing heard */
  assert_int_equal(hook_allocs, 1);
  assert_int_equal(hook_frees, 1);
}

/* The same for the other short ways: a default consume that takes a kept header, and a create
 * that finds nothing parked in its class (a new object made in one go). */
static void the_heap_hook_hears_kept_consume_headers_and_new_objects(void **state) {
  (void)state;
  static unsigned char mem[64];
  assert_int_equal(shk_buf_shutdown(), SHK_OK); /* nothing parked */
  shk_buf *c = NULL;
  assert_int_equal(shk_buf_consume(mem, 8, 1, NULL, &c), SHK_OK);
  shk_buf *kept = c;
  shk_buf_release(c); /* its header kept */
  hook_allocs = hook_frees = 0;
  assert_int_equal(shk_buf_set_heap_hook(count_heap, NULL), SHK_OK);
  assert_int_equal(shk_buf_consume(mem + 8, 8, 1, NULL, &c), SHK_OK);
  assert_ptr_equal(c, kept);
  assert_int_equal(hook_allocs, 1);
  assert_true(hook_last_id == shk_buf_id(c));
  shk_buf *b = make(48, NULL);
  assert_int_equal(hook_allocs, 2);
  shk_buf_release(c);
  shk_buf_release(b);
  assert_int_equal(hook_frees, 2);
  assert_int_equal(shk_buf_set_heap_hook(NULL, NULL), SHK_OK);
  assert_int_equal(shk_buf_consume(mem + 8, 8, 1, NULL, &c), SHK_OK);
  shk_buf_release(c);
  shk_buf_release(make(48, NULL));
  assert_int_equal(hook_allocs, 2);
  assert_int_equal(hook_frees, 2);
}

/* Small sizes are parked per thread: what a thread parked is freed when it ends, leaving the
 * index as it was (nothing lost with the thread, nothing leaked). */
static void park_small_sizes(void *arg) {
  (void)arg;
  for (size_t size = 1; size < 4096; size = size * 2 + 1) shk_buf_release(make(size, NULL));
}

static void a_thread_frees_what_it_parked_as_it_ends(void **state) {
  (void)state;
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  size_t parked = shk__buf_recycle_count(), indexed = shk__buf_ranges_count();
  shk__os_thread *t;
  assert_int_equal(shk__os_thread_start(&t, park_small_sizes, NULL), SHK_OK);
  shk__os_thread_join(t);
  assert_int_equal(shk__buf_recycle_count(), parked);
  assert_int_equal(shk__buf_ranges_count(), indexed);
}

/* A buffer released on another thread than its creator's is parked by the releasing thread. */
static shk_buf *handed_over;
static size_t parked_there; /* what the release parked, seen from the releasing thread */
static void release_handed_over(void *arg) {
  (void)arg;
  size_t before = shk__buf_recycle_count();
  shk_buf_release(handed_over);
  parked_there = shk__buf_recycle_count() - before;
}

static void a_buffer_released_by_another_thread_is_parked_there(void **state) {
  (void)state;
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  size_t indexed = shk__buf_ranges_count() - shk__buf_slab_count(), live = shk_buf_live_count();
  handed_over = make(64, NULL);
  shk__os_thread *t;
  assert_int_equal(shk__os_thread_start(&t, release_handed_over, NULL), SHK_OK);
  shk__os_thread_join(t); /* parked there, then given back to its slab as that thread ended */
  assert_int_equal(parked_there, 1);
  /* Nothing indexed alone is left; the slot's slab is this thread's current one (it stays). */
  assert_int_equal(shk__buf_ranges_count() - shk__buf_slab_count(), indexed);
  assert_int_equal(shk_buf_live_count(), live);
  assert_int_equal(shk__buf_recycle_count(), 0);
}

/* Ids come from per-thread blocks: still unique across threads, increasing within each. */
enum { ID_THREADS = 4, IDS_PER_THREAD = 3000 };
static uint64_t ids[ID_THREADS][IDS_PER_THREAD];

static void collect_ids(void *arg) {
  uint64_t *out = arg;
  for (int i = 0; i < IDS_PER_THREAD; i++) {
    shk_buf *buf = NULL;
    if (shk_buf_create(16, 1, NULL, &buf) == SHK_OK) out[i] = shk_buf_id(buf);
    shk_buf_release(buf);
  }
}

static int compare_ids(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static void ids_are_unique_across_threads_and_increase_within_one(void **state) {
  (void)state;
  shk__os_thread *threads[ID_THREADS];
  for (int t = 0; t < ID_THREADS; t++)
    assert_int_equal(shk__os_thread_start(&threads[t], collect_ids, ids[t]), SHK_OK);
  for (int t = 0; t < ID_THREADS; t++) shk__os_thread_join(threads[t]);
  for (int t = 0; t < ID_THREADS; t++)
    for (int i = 1; i < IDS_PER_THREAD; i++) assert_true(ids[t][i] > ids[t][i - 1]);
  uint64_t *all = &ids[0][0];
  qsort(all, ID_THREADS * IDS_PER_THREAD, sizeof *all, compare_ids);
  assert_true(all[0] > 0);
  for (int i = 1; i < ID_THREADS * IDS_PER_THREAD; i++) assert_true(all[i] != all[i - 1]);
}

/* A process whose main thread has parked a buffer exits while other threads still create and
 * release: nothing of the library may run for the threads the exit ends (they may hold its
 * locks), so the exit never hangs. Run a few times: the window is narrow. */
static void churn_forever(void *arg) {
  unsigned char *mem = arg;
  for (;;) {
    shk_buf *buf = NULL;
    if (shk_buf_consume(mem, 64, 1, NULL, &buf) == SHK_OK) shk_buf_release(buf);
    shk_buf_release(make_quietly(64));
  }
}

static int exit_while_threads_churn(int argc, char **argv) {
  (void)argc;
  (void)argv;
  static unsigned char mem[4][256];
  shk_buf_release(make_quietly(64)); /* parked by the main thread */
  for (int i = 0; i < 4; i++) {
    shk__os_thread *t;
    if (shk__os_thread_start(&t, churn_forever, mem[i]) != SHK_OK) return 1;
  }
  shk__os_sleep_ns(20 * 1000000u);
  return 0; /* exit with the threads running, never joined */
}

static void exit_with_busy_threads_does_not_hang(void **state) {
  (void)state;
  for (int run = 0; run < 5; run++) shk_test_run_child_ok("exit_while_threads_churn", 0, NULL, 30000);
}

/* Windows: fiber-local storage would follow a fiber to the thread that deletes it and free the
 * first thread's state there; thread state must stay with its thread. */
#ifdef _WIN32
static void *main_fiber, *side_fiber;

static void WINAPI park_in_fiber(void *arg) {
  (void)arg;
  shk_buf_release(make_quietly(64)); /* the thread's state is made inside the fiber */
  SwitchToFiber(main_fiber);
}

static DWORD WINAPI delete_side_fiber(void *arg) {
  (void)arg;
  DeleteFiber(side_fiber);
  return 0;
}

static int fiber_deleted_elsewhere(int argc, char **argv) {
  (void)argc;
  (void)argv;
  main_fiber = ConvertThreadToFiber(NULL);
  side_fiber = CreateFiber(0, park_in_fiber, NULL);
  if (!main_fiber || !side_fiber) return 2;
  SwitchToFiber(side_fiber);
  HANDLE other = CreateThread(NULL, 0, delete_side_fiber, NULL, 0, NULL);
  if (!other) return 3;
  WaitForSingleObject(other, INFINITE);
  CloseHandle(other);
  for (int i = 0; i < 1000; i++) shk_buf_release(make_quietly(64)); /* state still this thread's */
  return shk__buf_recycle_count() == 1 ? 0 : 4;
}

static void a_fiber_deleted_on_another_thread_leaves_thread_state_alone(void **state) {
  (void)state;
  shk_test_run_child_ok("fiber_deleted_elsewhere", 0, NULL, 30000);
}
#else
static void a_fiber_deleted_on_another_thread_leaves_thread_state_alone(void **state) {
  (void)state;
  print_message("fibers are Windows only\n");
  skip();
}
#endif

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(exit_with_busy_threads_does_not_hang),
    cmocka_unit_test(a_fiber_deleted_on_another_thread_leaves_thread_state_alone),
    cmocka_unit_test(the_heap_hook_hears_recycled_buffers),
    cmocka_unit_test(the_heap_hook_hears_kept_consume_headers_and_new_objects),
    cmocka_unit_test(a_thread_frees_what_it_parked_as_it_ends),
    cmocka_unit_test(a_buffer_released_by_another_thread_is_parked_there),
    cmocka_unit_test(ids_are_unique_across_threads_and_increase_within_one),
    cmocka_unit_test(threads_never_share_a_recycled_buffer),
    cmocka_unit_test(a_released_buffer_comes_back_as_a_new_zeroed_buffer),
    cmocka_unit_test(parked_memory_stays_indexed_but_not_live),
    cmocka_unit_test(another_size_of_the_class_replaces_the_parked_one),
    cmocka_unit_test(a_full_list_leaves_the_release_to_free),
    cmocka_unit_test(a_thousand_small_buffers_are_recycled_together),
    cmocka_unit_test(aligned_buffers_are_recycled_with_their_alignment),
    cmocka_unit_test(large_buffers_are_freed_not_parked),
    cmocka_unit_test(shared_buffers_are_parked_by_the_last_release_only),
    cmocka_unit_test(shutdown_frees_every_parked_object),
};

static const shk_test_child children[] = {
    {"exit_while_threads_churn", exit_while_threads_churn},
#ifdef _WIN32
    {"fiber_deleted_elsewhere", fiber_deleted_elsewhere},
#endif
};

SHK_TEST_MAIN(tests, children)
