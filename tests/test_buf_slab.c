/* Slabs of small heap buffers (src/common/buf_slab.c): with more buffers live than a thread
 * parks, new ones are slots of per-thread slabs, each slab one range of the index. Each slab is
 * the library's memory whole (a consume into any of it is refused), the walk and the live count
 * see its live slots one by one, slots released by other threads, by a thread whose creator
 * ended, or in a forked child go back to their slab, and a slab with nothing out goes back
 * (out of the index, freed) unless it is its owner's current one. */
/* ctest: labels=unit;internal;tsan;multiprocess timeout=180 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "common/buf_internal.h"

#ifndef _WIN32
#include <unistd.h>
#endif

enum { MANY = 3000, SIZE = 64 }; /* more than a thread parks of one class */

static shk_buf *make(size_t size) {
  shk_buf *buf = NULL;
  assert_int_equal(shk_buf_create(size, 1, NULL, &buf), SHK_OK);
  return buf;
}

/* For threads and children, where CMocka's asserts cannot be used: NULL on failure. */
static shk_buf *make_quietly(size_t size) {
  shk_buf *buf = NULL;
  return shk_buf_create(size, 1, NULL, &buf) == SHK_OK ? buf : NULL;
}

/* Ranges of the index that are not slabs: buffers indexed alone. */
static size_t indexed_alone(void) { return shk__buf_ranges_count() - shk__buf_slab_count(); }

/* What the process holds before a test, to be found again after it. */
typedef struct baseline {
  size_t alone, slabs, live;
} baseline;

static baseline baseline_now(void) {
  assert_int_equal(shk_buf_shutdown(), SHK_OK); /* nothing parked, no slab of this thread */
  return (baseline){indexed_alone(), shk__buf_slab_count(), shk_buf_live_count()};
}

static void assert_baseline(baseline b) {
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  assert_int_equal(indexed_alone(), b.alone);
  assert_int_equal(shk__buf_slab_count(), b.slabs);
  assert_int_equal(shk_buf_live_count(), b.live);
}

static shk_buf *bufs[MANY];

static void make_many(void) {
  for (size_t i = 0; i < MANY; i++) {
    bufs[i] = make(SIZE);
    memset(shk_buf_data(bufs[i]), (int)(i & 0xff), SIZE);
  }
}

static void release_many_from(size_t from, size_t to) {
  for (size_t i = from; i < to; i++) shk_buf_release(bufs[i]);
}

static void release_many(void) { release_many_from(0, MANY); }

static void new_small_buffers_are_slots_of_slabs_indexed_as_one_range_each(void **state) {
  (void)state;
  baseline b = baseline_now();
  make_many();
  size_t slabs = shk__buf_slab_count() - b.slabs;
  assert_true(slabs > 0);
  assert_true(slabs < MANY / 16); /* slabs of many slots, not a range per buffer */
  assert_int_equal(indexed_alone(), b.alone); /* no buffer indexed alone */
  assert_int_equal(shk_buf_live_count(), b.live + MANY);
  for (size_t i = 0; i < MANY; i++) {
    assert_true(bufs[i]->in_slab);
    assert_int_equal(shk_buf_size(bufs[i]), SIZE);
    assert_string_equal(shk_buf_allocator_name(bufs[i]), "heap");
    assert_int_equal((uintptr_t)shk_buf_data(bufs[i]) % SHK__MAX_ALIGN, 0);
    const unsigned char *p = shk_buf_data(bufs[i]);
    assert_int_equal(p[0], (unsigned char)i);
    assert_int_equal(p[SIZE - 1], (unsigned char)i);
  }
  release_many();
  assert_int_equal(shk_buf_live_count(), b.live);
  assert_baseline(b);
}

/* A slab is the library's memory whole, as a parked object's is: a live slot's bytes, a parked
 * slot's, a slot given back, a slot's header and the slab's own header are all refused. */
static void a_consume_into_any_part_of_a_slab_is_refused(void **state) {
  (void)state;
  baseline b = baseline_now();
  make_many();
  shk__buf_slab *s = bufs[MANY - 1]->slab;
  shk_buf *live = bufs[MANY - 1];
  shk_buf *given = bufs[MANY - 2], *parked = bufs[MANY - 3];
  unsigned char *given_bytes = shk_buf_data(given), *parked_bytes = shk_buf_data(parked);
  assert_ptr_equal(given->slab, s);
  assert_ptr_equal(parked->slab, s);
  /* Fill the thread's list of the class, so that `given` goes back to its slab. */
  for (size_t i = 0; i < shk__buf_park_limit(shk__buf_class_of(SIZE)) - 1; i++)
    shk_buf_release(bufs[i]);
  shk_buf_release(parked); /* the last the list takes */
  shk_buf_release(given);  /* the list is full: back to the slab */
  assert_ptr_equal(s->free, given);
  unsigned char *targets[] = {shk_buf_data(live), parked_bytes, given_bytes,
                              (unsigned char *)given, (unsigned char *)s,
                              (unsigned char *)s + s->range.end - s->range.start - 1};
  for (size_t i = 0; i < SHK__ARRAY_LEN(targets); i++) {
    shk_buf *c = (shk_buf *)1;
    assert_int_equal(shk_buf_consume(targets[i], 1, 1, NULL, &c), SHK_EOVERLAP);
    assert_null(c);
  }
  shk_buf *c = (shk_buf *)1; /* a range that takes the whole slab in */
  assert_int_equal(shk_buf_consume((void *)(s->range.start - 64),
                                   s->range.end - s->range.start + 128, 1, NULL, &c),
                   SHK_EOVERLAP);
  assert_null(c);
  for (size_t i = shk__buf_park_limit(shk__buf_class_of(SIZE)) - 1; i < MANY - 3; i++)
    shk_buf_release(bufs[i]);
  shk_buf_release(live);
  assert_baseline(b);
}

static bool listed(const shk_buf_info *infos, size_t n, const shk_buf *buf) {
  for (size_t i = 0; i < n; i++)
    if (infos[i].id == shk_buf_id(buf)) {
      assert_ptr_equal(infos[i].data, shk_buf_data(buf));
      assert_int_equal(infos[i].size, SIZE);
      assert_string_equal(infos[i].allocator, "heap");
      return true;
    }
  return false;
}

/* The walk over live buffers (watch-all, the observer, lens) lists a slab's live slots one by
 * one and none of its free or parked ones. */
static void the_walk_lists_the_live_slots_of_a_slab_one_by_one(void **state) {
  (void)state;
  baseline b = baseline_now();
  make_many();
  for (size_t i = 0; i < MANY; i += 2) shk_buf_release(bufs[i]);
  shk_buf_info *infos = NULL;
  size_t n = 0;
  assert_int_equal(shk__buf_live_list(&infos, &n), SHK_OK);
  assert_int_equal(n, b.live + MANY / 2);
  for (size_t i = 1; i < MANY; i += 2) assert_true(listed(infos, n, bufs[i]));
  free(infos);
  for (size_t i = 1; i < MANY; i += 2) shk_buf_release(bufs[i]);
  assert_int_equal(shk__buf_live_list(&infos, &n), SHK_OK);
  assert_int_equal(n, b.live);
  free(infos);
  assert_baseline(b);
}

/* Released, a slab with nothing out goes back at once unless it is the thread's current one:
 * what stays is the slabs of the slots the thread parked (the first ones released, up to its
 * list's limit) and its current slab. Shutdown gives those back too. */
static void a_slab_with_nothing_out_goes_back_unless_it_is_the_current_one(void **state) {
  (void)state;
  baseline b = baseline_now();
  make_many();
  size_t limit = shk__buf_park_limit(shk__buf_class_of(SIZE));
  static shk__buf_slab *kept[MANY];
  size_t n = 0;
  kept[n++] = bufs[MANY - 1]->slab; /* the current one */
  for (size_t i = 0; i < limit; i++) {
    size_t j = 0;
    while (j < n && kept[j] != bufs[i]->slab) j++;
    if (j == n) kept[n++] = bufs[i]->slab;
  }
  assert_true(shk__buf_slab_count() - b.slabs > n);
  release_many();
  assert_int_equal(shk__buf_slab_count() - b.slabs, n);
  assert_int_equal(shk__buf_recycle_count(), limit);
  assert_baseline(b);
}

/* shk_buf_shutdown gives up the calling thread's slabs while their slots live: released later
 * by the same thread, the slots go back to them as to any orphan (counted down, the last one
 * freeing the slab), not as to slabs of its own. */
static void slabs_given_up_by_shutdown_go_back_with_their_last_slot(void **state) {
  (void)state;
  baseline b = baseline_now();
  make_many();
  size_t slabs = shk__buf_slab_count();
  assert_int_equal(shk_buf_shutdown(), SHK_OK); /* orphaned: every slot is live */
  assert_int_equal(shk__buf_slab_count(), slabs);
  assert_null(shk__buf_this_thread->slab_list);
  for (size_t i = 0; i < MANY; i++)
    assert_null(atomic_load(&bufs[i]->slab->owner));
  shk__buf_slab *last = bufs[MANY - 1]->slab;
  shk_buf_release(bufs[MANY - 1]); /* parked, still out */
  release_many_from(0, MANY - 1);
  assert_int_equal(atomic_load(&last->outstanding), 1); /* the parked one */
  assert_int_equal(shk_buf_live_count(), b.live);
  assert_baseline(b); /* the parked ones go back: the last orphans go */
}

/* ---- threads ---- */

enum { THREADS = 4, ROUNDS = 20000, SWAP_SLOTS = 64 };
static _Atomic(shk_buf *) swap[SWAP_SLOTS];
static atomic_int mixups, failures;

/* Each thread makes buffers marked with its number and swaps them through shared slots: what it
 * gets back is someone else's (often another thread's slot), checked and released here. */
static void swap_buffers(void *arg) {
  unsigned mark = (unsigned)(uintptr_t)arg;
  uint32_t x = mark * 2654435761u + 1;
  for (int i = 0; i < ROUNDS; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    shk_buf *buf = make_quietly(SIZE);
    if (!buf) {
      atomic_fetch_add(&failures, 1);
      continue;
    }
    unsigned char *p = shk_buf_data(buf);
    memset(p, (int)mark, SIZE);
    p[1] = (unsigned char)i;
    shk_buf *old = atomic_exchange(&swap[x % SWAP_SLOTS], buf);
    if (!old) continue;
    const unsigned char *q = shk_buf_data(old);
    if (q[0] == 0 || q[0] > THREADS || q[SIZE - 1] != q[0]) atomic_fetch_add(&mixups, 1);
    shk_buf_release(old);
  }
}

static void slots_released_by_other_threads_go_back_to_their_slabs(void **state) {
  (void)state;
  baseline b = baseline_now();
  shk__os_thread *threads[THREADS];
  for (uintptr_t t = 0; t < THREADS; t++)
    assert_int_equal(shk__os_thread_start(&threads[t], swap_buffers, (void *)(t + 1)), SHK_OK);
  for (int t = 0; t < THREADS; t++) shk__os_thread_join(threads[t]);
  assert_int_equal(atomic_load(&failures), 0);
  assert_int_equal(atomic_load(&mixups), 0);
  size_t left = 0;
  for (int i = 0; i < SWAP_SLOTS; i++) left += atomic_load(&swap[i]) != NULL;
  assert_int_equal(shk_buf_live_count(), b.live + left);
  /* The threads ended: their slabs are orphaned, each freed with the last of its slots. */
  for (int i = 0; i < SWAP_SLOTS; i++) shk_buf_release(atomic_exchange(&swap[i], NULL));
  assert_baseline(b);
}

/* Slots another thread gave back (on their slabs' remote lists) are taken up again by the
 * owner once its current slab is full: no new slab while old ones have room. */
static void release_first_half(void *arg) {
  (void)arg;
  for (size_t i = 0; i < MANY / 2; i++) shk_buf_release(bufs[i]);
}

static void slots_given_back_by_another_thread_are_taken_up_again(void **state) {
  (void)state;
  baseline b = baseline_now();
  make_many();
  shk__os_thread *t;
  assert_int_equal(shk__os_thread_start(&t, release_first_half, NULL), SHK_OK);
  shk__os_thread_join(t); /* what it parked went back to the slabs as it ended */
  assert_int_equal(shk_buf_live_count(), b.live + MANY - MANY / 2);
  size_t slabs = shk__buf_slab_count();
  for (size_t i = 0; i < MANY / 2; i++) bufs[i] = make(SIZE);
  assert_true(shk__buf_slab_count() <= slabs);
  assert_int_equal(shk_buf_live_count(), b.live + MANY);
  for (size_t i = 0; i < MANY / 2; i++) assert_true(bufs[i]->in_slab);
  release_many();
  assert_baseline(b);
}

/* A creator that ends while its buffers live: another thread releases them later, and each
 * slab goes back with its last slot. */
static void make_and_end(void *arg) {
  (void)arg;
  for (size_t i = 0; i < MANY; i++) {
    bufs[i] = make_quietly(SIZE);
    if (bufs[i]) memset(shk_buf_data(bufs[i]), (int)(i & 0xff), SIZE);
  }
}

static void slabs_of_a_creator_that_ended_go_back_with_their_last_slot(void **state) {
  (void)state;
  baseline b = baseline_now();
  shk__os_thread *t;
  assert_int_equal(shk__os_thread_start(&t, make_and_end, NULL), SHK_OK);
  shk__os_thread_join(t);
  for (size_t i = 0; i < MANY; i++) assert_non_null(bufs[i]);
  size_t orphans = shk__buf_slab_count() - b.slabs;
  assert_true(orphans > 0);
  assert_int_equal(shk_buf_live_count(), b.live + MANY);
  assert_int_equal(indexed_alone(), b.alone);
  for (size_t i = 0; i < MANY; i++) {
    const unsigned char *p = shk_buf_data(bufs[i]);
    assert_int_equal(p[SIZE - 1], (unsigned char)i);
  }
  for (size_t i = 0; i < MANY; i++) shk_buf_release(bufs[i]); /* parked here, or to its slab */
  assert_int_equal(shk_buf_live_count(), b.live);
  assert_baseline(b); /* shutdown gives the parked ones back: the last orphans go */
}

/* ---- fork ---- */

#ifndef _WIN32
enum { CHILD_LIMIT_MS = 20000 };
static atomic_int holder_ready, holder_done;

/* Makes its buffers, then waits while the test forks: a child has its slabs but not it. */
static void hold_then_release(void *arg) {
  (void)arg;
  make_and_end(NULL);
  atomic_store(&holder_ready, 1);
  while (!atomic_load(&holder_done)) shk__os_sleep_ns(1000000);
  for (size_t i = 0; i < MANY; i++) shk_buf_release(bufs[i]);
}

/* In the child: release the missing thread's buffers, make and release its own, count. */
static int child_releases(size_t live_before) {
  for (size_t i = 0; i < MANY; i++) {
    const unsigned char *p = shk_buf_data(bufs[i]);
    if (p[SIZE - 1] != (unsigned char)i) return 2;
    shk_buf_release(bufs[i]);
  }
  if (shk_buf_live_count() != live_before) return 3;
  static shk_buf *mine[MANY];
  for (size_t i = 0; i < MANY; i++)
    if (!(mine[i] = make_quietly(SIZE))) return 4;
  if (shk_buf_live_count() != live_before + MANY) return 5;
  for (size_t i = 0; i < MANY; i++) shk_buf_release(mine[i]);
  if (shk_buf_live_count() != live_before) return 6;
  return shk_buf_shutdown() == SHK_OK && shk_buf_live_count() == live_before ? 0 : 7;
}

static void a_forked_child_releases_slots_of_a_thread_it_does_not_have(void **state) {
  (void)state;
  baseline b = baseline_now();
  shk__os_thread *t;
  assert_int_equal(shk__os_thread_start(&t, hold_then_release, NULL), SHK_OK);
  while (!atomic_load(&holder_ready)) shk__os_sleep_ns(1000000);
  pid_t pid = fork();
  if (pid == 0) _exit(child_releases(b.live));
  assert_true(pid > 0);
  shk_test_proc child = {0, (int)pid}; /* waited for (and killed past the limit) by its pid */
  shk_test_exit how = shk_test_wait(&child, CHILD_LIMIT_MS);
  assert_int_equal(how.timed_out, 0);
  assert_int_equal(how.killed, 0);
  assert_int_equal(how.code, 0);
  atomic_store(&holder_done, 1);
  shk__os_thread_join(t);
  assert_baseline(b);
}
#else
static void a_forked_child_releases_slots_of_a_thread_it_does_not_have(void **state) {
  (void)state;
  print_message("no fork on Windows\n");
  skip();
}
#endif

/* ---- the heap hook and SHK_DEBUG=buf ---- */

static int hook_allocs, hook_frees;
static void count_heap(bool allocated, const shk_buf_info *info, void *user) {
  (void)info;
  (void)user;
  if (allocated) hook_allocs++;
  else hook_frees++;
}

/* Slots made before a hook is set end through it (told, then back to their slab); while it is
 * set, creations take no slot (each is told as today). */
static void the_heap_hook_hears_every_slot_end_and_no_slot_is_made_under_it(void **state) {
  (void)state;
  baseline b = baseline_now();
  make_many();
  hook_allocs = hook_frees = 0;
  assert_int_equal(shk_buf_set_heap_hook(count_heap, NULL), SHK_OK);
  size_t slabs = shk__buf_slab_count();
  release_many();
  assert_int_equal(hook_frees, MANY);
  for (size_t i = 0; i < MANY; i++) bufs[i] = make(SIZE);
  assert_int_equal(hook_allocs, MANY);
  assert_true(shk__buf_slab_count() <= slabs); /* parked slots taken back, or malloc'd alone */
  assert_false(bufs[MANY - 1]->in_slab);       /* past the parked ones: made alone */
  release_many();
  assert_int_equal(hook_frees, 2 * MANY);
  assert_int_equal(shk_buf_set_heap_hook(NULL, NULL), SHK_OK);
  assert_baseline(b);
}

/* SHK_DEBUG=buf keeps the slab way off (guards, retired handles); a slot made before it is
 * turned on still goes back to its slab, never retired or freed alone. */
static void shk_debug_buf_makes_no_slot_and_ends_earlier_ones_in_their_slab(void **state) {
  (void)state;
  baseline b = baseline_now();
  make_many();
  shk__debug_parse("buf");
  shk_buf *guarded = make(SIZE);
  assert_false(guarded->in_slab);
  assert_true(guarded->guarded);
  shk_buf_release(guarded);
  release_many();
  shk__debug_parse("");
  assert_int_equal(shk_buf_set_heap_hook(NULL, NULL), SHK_OK); /* recomputes the observed flag */
  assert_baseline(b);
}

/* ---- device mapping ---- */

/* A pinned-only fake device: pinning host memory is all a mapped slot needs here. */
static int unpins;
static int one_device(int *count) {
  *count = 1;
  return SHK_OK;
}
static int no_alloc(int device, size_t size, void **dev) {
  (void)device, (void)size, (void)dev;
  return SHK_ENOMEM;
}
static void no_free(int device, void *dev) { (void)device, (void)dev; }
static int no_copy(int device, void *a, const void *b, size_t size) {
  (void)device, (void)a, (void)b, (void)size;
  return SHK_EOS;
}
static int pin_as_is(int device, void *host, size_t size, void **dev) {
  (void)device, (void)size;
  *dev = host;
  return SHK_OK;
}
static void count_unpin(int device, void *host) {
  (void)device, (void)host;
  unpins++;
}
static const shk__device_ops pinning_ops = {one_device, no_alloc, no_free, no_copy,
                                            no_copy,    pin_as_is, count_unpin};

/* A mapped slot ends the general way (unmapped), back to its slab; taken again, it reads as
 * unmapped and ends the short way. */
static void a_mapped_slot_is_unmapped_at_its_end_and_goes_back_to_its_slab(void **state) {
  (void)state;
  baseline b = baseline_now();
  shk__device_set_ops(&pinning_ops);
  unpins = 0;
  make_many();
  shk_buf *mapped = bufs[MANY - 1];
  assert_true(mapped->in_slab);
  assert_int_equal(shk_buf_device_map(mapped, 0, SHK_BUF_DEVICE_PINNED), SHK_OK);
  release_many();
  assert_int_equal(unpins, 1);
  make_many();
  for (size_t i = 0; i < MANY; i++) assert_false(shk_buf_device_mapped(bufs[i]));
  release_many();
  assert_int_equal(unpins, 1);
  shk__device_set_ops(NULL);
  assert_baseline(b);
}

/* Without memory for a new slab, a small heap buffer is one malloc block of its own, made as
 * without slabs: the creation succeeds, and the buffer is used, ended and parked as any. */
static void without_memory_for_a_slab_a_buffer_is_made_alone(void **state) {
  (void)state;
  baseline b = baseline_now();
  shk__fault_arm(SHK__FAULT_ALLOC, 1, ENOMEM, false); /* the slab's block */
  shk_buf *buf = make(SIZE);
  unsigned failed = shk__fault_failures(SHK__FAULT_ALLOC);
  shk__fault_disarm_all();
  assert_int_equal(failed, 1);
  assert_false(buf->in_slab);
  assert_int_equal(shk__buf_slab_count(), b.slabs);
  assert_int_equal(indexed_alone(), b.alone + 1);
  memset(shk_buf_data(buf), 0x5a, SIZE);
  shk_buf *next = make(SIZE); /* memory again: a slot */
  assert_true(next->in_slab);
  shk_buf_release(next);
  shk_buf_release(buf);
  assert_ptr_equal(make(SIZE), buf); /* parked, taken back */
  shk_buf_release(buf);
  assert_baseline(b);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(new_small_buffers_are_slots_of_slabs_indexed_as_one_range_each),
    cmocka_unit_test(a_consume_into_any_part_of_a_slab_is_refused),
    cmocka_unit_test(the_walk_lists_the_live_slots_of_a_slab_one_by_one),
    cmocka_unit_test(a_slab_with_nothing_out_goes_back_unless_it_is_the_current_one),
    cmocka_unit_test(slabs_given_up_by_shutdown_go_back_with_their_last_slot),
    cmocka_unit_test(slots_released_by_other_threads_go_back_to_their_slabs),
    cmocka_unit_test(slots_given_back_by_another_thread_are_taken_up_again),
    cmocka_unit_test(slabs_of_a_creator_that_ended_go_back_with_their_last_slot),
    cmocka_unit_test(a_forked_child_releases_slots_of_a_thread_it_does_not_have),
    cmocka_unit_test(the_heap_hook_hears_every_slot_end_and_no_slot_is_made_under_it),
    cmocka_unit_test(shk_debug_buf_makes_no_slot_and_ends_earlier_ones_in_their_slab),
    cmocka_unit_test(a_mapped_slot_is_unmapped_at_its_end_and_goes_back_to_its_slab),
    cmocka_unit_test(without_memory_for_a_slab_a_buffer_is_made_alone),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
