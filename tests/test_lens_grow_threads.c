/* lens rings that grow with the segment (2.3), in one process: more producing threads at once than
 * the segment was made for, and every event arrives, counted exactly per thread, with nothing
 * dropped for want of a ring; a reader that did not say it reads 2.3 keeps the segment from
 * growing, and the loss then shows. Threads only, so that ThreadSanitizer can watch. */
/* ctest: labels=unit;tsan timeout=180 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"
#include "shmkit/lens_wire.h"

#include "shk_test_thread.h"

#define MAX_PRODUCERS 16
#define ZONES_EACH 2000

typedef struct shared {
  shk_lens *lens;
  shk_lens_reader *reader;
  int producers;
  atomic_int started, left;
  uint64_t per_thread[MAX_PRODUCERS];
  uint64_t other_events;
} shared;

typedef struct producer_arg {
  shared *s;
  int index;
} producer_arg;

static void one_zone(shk_lens *lens, const char *name) {
  shk_lens_zone z;
  shk_lens_zone_begin(lens, &z, name, 0);
  shk_lens_zone_end(&z);
}

/* Every producer holds its ring (one zone) until all have one: they produce at once. */
static void produce(void *arg) {
  producer_arg *a = arg;
  char name[16];
  snprintf(name, sizeof name, "g%02d", a->index);
  shk_lens_thread_name(a->s->lens, name);
  one_zone(a->s->lens, "zone");
  atomic_fetch_add(&a->s->started, 1);
  while (atomic_load(&a->s->started) < a->s->producers) shk_test_sleep_ms(1);
  for (int i = 1; i < ZONES_EACH; i++) one_zone(a->s->lens, "zone");
  atomic_fetch_sub(&a->s->left, 1);
}

static void on_event(const shk_lens_event *e, void *user) {
  shared *s = user;
  int index = -1;
  if (e->kind == SHK_LENS_ZONE && sscanf(e->thread, "g%d", &index) == 1 && index >= 0 &&
      index < s->producers && strcmp(e->name, "zone") == 0)
    s->per_thread[index]++;
  else
    s->other_events++;
}

static void read_all(void *arg) {
  shared *s = arg;
  while (atomic_load(&s->left) > 0) shk_lens_reader_poll(s->reader, 10000000u, on_event, s, NULL);
  size_t n;
  do shk_lens_reader_drain(s->reader, on_event, s, &n);
  while (n > 0);
}

/* Threads of a lens made for `rings` rings, all producing at once. */
static void check_threads_on_rings(uint32_t rings, int producers, uint32_t want_rings) {
  static shared s;
  memset(&s, 0, sizeof s);
  s.producers = producers;
  char name[64];
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.max_threads = rings;
  o.ring_bytes = 64 * 1024;
  o.full_wait_ns = 10000000000ull; /* a loaded machine: the ring may fill, nothing may drop */
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "gt"), &o, &s.lens), SHK_OK);
  assert_int_equal(shk_lens_reader_open(name, NULL, &s.reader), SHK_OK);
  atomic_store(&s.left, producers);
  shk_test_thread reader, threads[MAX_PRODUCERS];
  producer_arg args[MAX_PRODUCERS];
  assert_int_equal(shk_test_thread_start(&reader, read_all, &s), 0);
  for (int i = 0; i < producers; i++) {
    args[i].s = &s;
    args[i].index = i;
    assert_int_equal(shk_test_thread_start(&threads[i], produce, &args[i]), 0);
  }
  for (int i = 0; i < producers; i++) shk_test_thread_join(&threads[i]);
  shk_test_thread_join(&reader);

  assert_null(shk_lens_reader_problem(s.reader));
  shk_lens_stats st, rs;
  assert_int_equal(shk_lens_stats_get(s.lens, &st), SHK_OK);
  assert_int_equal(shk_lens_reader_stats(s.reader, &rs), SHK_OK);
  print_message("%d threads on %u initial rings: %llu rings used\n", producers, rings,
                (unsigned long long)st.rings);
  assert_int_equal(st.rings, want_rings);
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
    assert_int_equal(st.segment[k].dropped, 0); /* no_ring_dropped included */
    assert_int_equal(rs.malformed[k], 0);
  }
  assert_int_equal(s.other_events, 0);
  for (int i = 0; i < producers; i++) assert_int_equal(s.per_thread[i], ZONES_EACH);
  /* Exact per thread, as the producers' rings count it. */
  shk_lens_thread_info info[MAX_PRODUCERS + 1];
  size_t count = 0;
  assert_int_equal(shk_lens_reader_threads(s.reader, info, MAX_PRODUCERS + 1, &count), SHK_OK);
  assert_int_equal(count, (size_t)producers);
  for (size_t i = 0; i < count; i++) {
    const shk_lens_counters *z = &info[i].counters[SHK_LENS_ZONE];
    assert_int_equal(z->written, ZONES_EACH);
    assert_int_equal(z->dropped, 0);
    assert_int_equal(z->drained, ZONES_EACH);
  }
  shk_lens_reader_close(s.reader);
  shk_lens_close(s.lens);
  /* The last producer removed the lens name and every extension's. */
  for (uint32_t k = 0; k <= 4; k++) {
    char part[80];
    if (k == 0) snprintf(part, sizeof part, "%s", name);
    else snprintf(part, sizeof part, "%s.x%02u", name, k);
    shk_shm *shm = NULL;
    assert_int_equal(shk_shm_open(part, SHK_SHM_READ_ONLY, &shm), SHK_ENOENT);
  }
}

/* 16 threads on a lens made for 2: extensions of 2, 4 and 8 rings (16 in all). */
static void sixteen_threads_on_a_lens_of_two_rings_lose_nothing(void **state) {
  (void)state;
  check_threads_on_rings(2, 16, 16);
}

/* A lens of 1 ring: extensions of 1, 2, 4, 8 rings (16 in all) for 9 threads at once. */
static void nine_threads_on_a_lens_of_one_ring_lose_nothing(void **state) {
  (void)state;
  check_threads_on_rings(1, 9, 9);
}

/* A lens of one small ring, its full wait as given, and a raw view of its header (*shm) to play
 * a reader's part in. */
static shk_lens_wire_header *open_one_ring(char *name, size_t size, const char *tag,
                                           uint64_t full_wait_ns, shk_lens **lens, shk_shm **shm) {
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.max_threads = 1;
  o.ring_bytes = 8 * 1024;
  o.full_wait_ns = full_wait_ns;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, size, tag), &o, lens), SHK_OK);
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_WRITE, shm), SHK_OK);
  return shk_shm_data(*shm);
}

/* The 2.2 reader's view, simulated: a reader that takes reader_pid and raises the generation
 * without the 2.3 version word reads the main segment only. Producers then do not grow the
 * segment: a thread without a ring drops, and the loss shows in no_ring_dropped, as in 2.2. */
static void a_reader_that_does_not_read_extensions_keeps_the_lens_from_growing(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = NULL;
  shk_shm *shm = NULL;
  shk_lens_wire_header *h = open_one_ring(name, sizeof name, "g2", 0, &lens, &shm);
  atomic_store((_Atomic uint32_t *)(void *)&h->reader_pid, shk_test_pid());
  atomic_fetch_add((_Atomic uint32_t *)(void *)&h->reader_generation, 1);
  one_zone(lens, "main"); /* this thread takes the one ring */
  shk_test_thread t;
  static shared s;
  memset(&s, 0, sizeof s);
  s.lens = lens;
  s.producers = 1;
  atomic_store(&s.left, 1);
  producer_arg a = {&s, 0};
  assert_int_equal(shk_test_thread_start(&t, produce, &a), 0);
  shk_test_thread_join(&t);
  assert_int_equal(h->ext_count, 0);
  assert_int_equal(h->no_ring_dropped[SHK_LENS_ZONE], ZONES_EACH);
  /* A 2.3 reader attached instead: the next thread grows the lens. */
  atomic_store((_Atomic uint32_t *)(void *)&h->reader_pid, 0);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  atomic_store(&s.started, 0);
  atomic_store(&s.left, 1);
  assert_int_equal(shk_test_thread_start(&t, produce, &a), 0);
  shk_test_thread_join(&t);
  assert_int_equal(h->ext_count, 1);
  assert_int_equal(h->no_ring_dropped[SHK_LENS_ZONE], ZONES_EACH);
  shk_lens_reader_close(r);
  shk_shm_close(shm);
  shk_lens_close(lens);
}

/* Finishes a 2.3 reader's attach after a while: the version word for the next generation, then
 * the generation (what register_reader does right after it takes reader_pid). */
static void finish_attach_later(void *arg) {
  shk_lens_wire_header *h = arg;
  shk_test_sleep_ms(100);
  _Atomic uint32_t *generation = (_Atomic uint32_t *)(void *)&h->reader_generation;
  uint32_t g = atomic_load(generation);
  atomic_store((_Atomic uint64_t *)(void *)&h->reader_version,
               (uint64_t)(g + 1) << 32 | SHK_LENS_PROTOCOL_VERSION);
  atomic_store(generation, g + 1);
}

/* A thread's first zone: it needs a ring of its own. (Only one: nobody drains the rings.) */
static void one_zone_of_a_new_thread(void *arg) { one_zone(arg, "zone"); }

/* A reader takes reader_pid on a lens of one ring (held by this thread) and `reader_side` does
 * the rest of its attach, or its leaving, from a thread of its own; meanwhile a new thread needs
 * a ring. It must grow the lens and drop nothing. The header is h, for what the caller checks
 * or undoes after. */
static void a_new_thread_grows_while_a_reader_attaches(const char *tag, void (*reader_side)(void *),
                                                       void (*after)(shk_lens_wire_header *h)) {
  char name[64];
  shk_lens *lens = NULL;
  shk_shm *shm = NULL;
  shk_lens_wire_header *h = open_one_ring(name, sizeof name, tag, 5000000000u, &lens, &shm);
  atomic_store((_Atomic uint32_t *)(void *)&h->reader_pid, shk_test_pid()); /* pid taken... */
  one_zone(lens, "main"); /* this thread takes the one ring */
  shk_test_thread reader;
  assert_int_equal(shk_test_thread_start(&reader, reader_side, h), 0); /* ...the rest */
  shk_test_thread t;
  assert_int_equal(shk_test_thread_start(&t, one_zone_of_a_new_thread, lens), 0);
  shk_test_thread_join(&t);
  shk_test_thread_join(&reader);
  assert_int_equal(h->ext_count, 1);
  assert_int_equal(h->no_ring_dropped[SHK_LENS_ZONE], 0);
  if (after) after(h);
  shk_shm_close(shm);
  shk_lens_close(lens);
}

/* The reader detaches. */
static void detach(shk_lens_wire_header *h) {
  atomic_store((_Atomic uint64_t *)(void *)&h->reader_version, 0);
  atomic_store((_Atomic uint32_t *)(void *)&h->reader_pid, 0);
}

/* A 2.3 reader caught between taking reader_pid and writing its version word (preempted there,
 * or slow: seen under valgrind on a loaded machine, where the whole lens of a fresh segment,
 * version word 0, was taken for a 2.2 reader's and every thread without a ring dropped): a
 * thread that needs a ring waits for the word, as long as it would wait for room, and grows
 * the lens once the word says 2.3. Nothing is dropped. */
static void a_reader_in_the_middle_of_attaching_is_waited_for(void **state) {
  (void)state;
  a_new_thread_grows_while_a_reader_attaches("gw", finish_attach_later, detach);
}

/* The reader goes after a while without having written its version word (killed between its
 * stores, or closed at once). */
static void leave_later(void *arg) {
  shk_lens_wire_header *h = arg;
  shk_test_sleep_ms(100);
  atomic_store((_Atomic uint32_t *)(void *)&h->reader_pid, 0);
}

/* A reader that goes in the middle of attaching: the thread waiting for its version word stops
 * waiting and grows the lens (a later reader reads extensions or says it does not), instead of
 * waiting out the whole wait and taking the gone reader for a 2.2 one. Nothing is dropped. */
static void a_reader_that_goes_while_attaching_lets_the_lens_grow(void **state) {
  (void)state;
  a_new_thread_grows_while_a_reader_attaches("gg", leave_later, NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(sixteen_threads_on_a_lens_of_two_rings_lose_nothing),
    cmocka_unit_test(nine_threads_on_a_lens_of_one_ring_lose_nothing),
    cmocka_unit_test(a_reader_in_the_middle_of_attaching_is_waited_for),
    cmocka_unit_test(a_reader_that_goes_while_attaching_lets_the_lens_grow),
    cmocka_unit_test(a_reader_that_does_not_read_extensions_keeps_the_lens_from_growing),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
