/* The write watcher: every scenario runs once per backend (skipped visibly where a backend is
 * not available here), plus API errors, crashes in child processes and the system limits. */
/* ctest: labels=unit;fault;multiprocess;tsan timeout=600 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shk_test_watch.h"
#include "shmkit.h"

#ifndef _WIN32
#include <dlfcn.h>
#include <unistd.h>
#endif

#define CHILD_TIMEOUT_MS 60000
#define MAX_EVENTS 4096
/* malloc's alignment; MSVC's <stddef.h> declares no max_align_t in C (double is its widest). */
#if defined(_MSC_VER) && !defined(__clang__)
#define MAX_ALIGN _Alignof(double)
#else
#define MAX_ALIGN _Alignof(max_align_t)
#endif

/* ---- collecting events ----------------------------------------------------------------- */

typedef struct seen {
  uint32_t region_id;
  size_t offset, length, region_size;
  uint32_t flags;
  uint64_t seq, old_key, new_key;
  unsigned char old_bytes[64], new_bytes[64]; /* the first changed bytes */
  size_t preview_length;
  uintptr_t fault_address, ip;
  uint64_t thread_id;
  char module[256];
  char file[256], function[128];
  unsigned line;
  char name[32];
  bool aligned; /* inline values may be read through the region's own type */
} seen;

typedef struct collector {
  seen *events;
  size_t count;
} collector;

static void collect(const shk_watch_event *ev, void *user) {
  collector *c = user;
  if (c->count == MAX_EVENTS) return;
  seen *s = &c->events[c->count++];
  memset(s, 0, sizeof *s);
  s->region_id = ev->region_id;
  s->offset = ev->offset;
  s->length = ev->length;
  s->region_size = ev->region_size;
  s->flags = ev->flags;
  s->seq = ev->seq;
  s->old_key = ev->old_key;
  s->new_key = ev->new_key;
  size_t n = ev->length < 64 ? ev->length : 64;
  if (ev->flags & SHK_WATCH_EVENT_INLINE) {
    s->aligned = (uintptr_t)ev->old_value % MAX_ALIGN == 0 &&
                 (uintptr_t)ev->new_value % MAX_ALIGN == 0;
    memcpy(s->old_bytes, (const unsigned char *)ev->old_value + ev->offset, n);
    memcpy(s->new_bytes, (const unsigned char *)ev->new_value + ev->offset, n);
  } else {
    size_t p = ev->preview_length < 64 ? ev->preview_length : 64;
    memcpy(s->old_bytes, ev->old_preview, p);
    memcpy(s->new_bytes, ev->new_preview, p);
  }
  s->preview_length = ev->preview_length;
  s->fault_address = ev->fault_address;
  s->ip = ev->ip;
  s->thread_id = ev->thread_id;
  if (ev->module) snprintf(s->module, sizeof s->module, "%s", ev->module);
  if (ev->file) snprintf(s->file, sizeof s->file, "%s", ev->file);
  if (ev->function) snprintf(s->function, sizeof s->function, "%s", ev->function);
  s->line = ev->line;
  snprintf(s->name, sizeof s->name, "%s", ev->region_name);
}

static collector *collector_new(void) {
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  c->events = calloc(MAX_EVENTS, sizeof *c->events);
  assert_non_null(c->events);
  return c;
}

static void collector_free(collector *c) {
  free(c->events);
  free(c);
}

static size_t count_for(const collector *c, uint32_t id) {
  size_t n = 0;
  for (size_t i = 0; i < c->count; i++) n += c->events[i].region_id == id;
  return n;
}

static const seen *last_for(const collector *c, uint32_t id) {
  for (size_t i = c->count; i > 0; i--)
    if (c->events[i - 1].region_id == id) return &c->events[i - 1];
  return NULL;
}

/* ---- the backend parameter ------------------------------------------------------------- */

/* A backend and, for userfaultfd, whether its synchronous mode is forced. */
typedef struct param {
  shk_watch_backend backend;
  bool sync;
} param;

static shk_watch_backend backend_of(void **state) { return ((const param *)*state)->backend; }
static bool sync_of(void **state) { return ((const param *)*state)->sync; }

/* Whether the test's backend records a fault per first write on the memory of pages():
 * write-watch scans GetWriteWatch there instead (and takes faults only on other memory), and
 * userfaultfd does so only in its sync mode. */
static bool records_faults(void **state) {
  return backend_of(state) == SHK_WATCH_MPROTECT ||
         (backend_of(state) == SHK_WATCH_USERFAULTFD && sync_of(state));
}

/* A started watcher of the test's backend (available here) with these settings. */
static shk_watcher *start_tuned(void **state, uint32_t ring, uint32_t coalesce_ms, uint32_t poll_ms,
                                collector *c) {
  shk_watch_options o;
  shk_watch_options_init(&o);
  o.backend = backend_of(state);
  o.userfaultfd_sync = sync_of(state);
  o.coalesce_ms = coalesce_ms;
  o.poll_interval_ms = poll_ms;
  if (ring) o.ring_capacity = ring;
  shk_watcher *w = NULL;
  assert_int_equal(shk_watch_create(&o, &w), SHK_OK);
  if (c) assert_int_equal(shk_watch_set_callback(w, collect, c), SHK_OK);
  return w;
}

/* A started watcher of the test's backend, or a visible skip. Its worker finds changes on
 * shk_watch_flush() only (a long window and poll interval), which keeps event counts exact
 * however slowly a sanitizer or wine runs; `busy` makes it pass every millisecond instead. */
static shk_watcher *start_with(void **state, uint32_t ring, collector *c, bool busy) {
  shk_watch_backend b = backend_of(state);
  if (!shk_watch_backend_available(b)) {
    printf("    backend %s is not available on this system: skipped\n", shk_watch_backend_name(b));
    if (c) collector_free(c);
    skip();
  }
  printf("    backend %s%s\n", shk_watch_backend_name(b), sync_of(state) ? " (sync mode)" : "");
  return start_tuned(state, ring, busy ? 1 : 10000, busy ? 1 : 10000, c);
}

static shk_watcher *start(void **state, uint32_t ring, collector *c) {
  return start_with(state, ring, c, false);
}

static unsigned char *pages(size_t size) {
  void *p = NULL;
  assert_int_equal(shk_watch_pages_alloc(size, &p), SHK_OK);
  return p;
}

/* ---- scenarios, once per backend ------------------------------------------------------- */

typedef struct point {
  int x, y;
  char label[24];
} point;

static void small_region_gives_inline_old_and_new(void **state) {
  collector *c = collector_new();
  shk_watcher *w = start(state, 0, c);
  point *pt = (point *)pages(4096);
  pt->x = 1;
  uint32_t id;
  assert_int_equal(shk_watch_add(w, pt, sizeof *pt, "point", &id), SHK_OK);
  pt->y = 0x01020304;
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(c->count, 1);
  const seen *s = &c->events[0];
  assert_int_equal(s->region_id, id);
  assert_string_equal(s->name, "point");
  assert_true(s->flags & SHK_WATCH_EVENT_INLINE);
  assert_true(s->aligned);
  assert_int_equal(s->region_size, sizeof *pt);
  assert_int_equal(s->offset, offsetof(point, y));
  assert_int_equal(s->length, sizeof(int));
  int before, after;
  memcpy(&before, s->old_bytes, sizeof before);
  memcpy(&after, s->new_bytes, sizeof after);
  assert_int_equal(before, 0);
  assert_int_equal(after, 0x01020304);
  assert_int_equal(s->seq, 1);
  shk_watch_backend used = SHK_WATCH_AUTO;
  assert_int_equal(shk_watch_region_backend(w, id, &used), SHK_OK);
  assert_int_equal(used, backend_of(state));
  shk_watch_free(w);
  shk_watch_pages_free(pt, 4096);
  collector_free(c);
}

static void large_region_gives_store_keys_and_previews(void **state) {
  collector *c = collector_new();
  shk_watcher *w = start(state, 0, c);
  size_t size = 1 << 20;
  unsigned char *buf = pages(size);
  uint32_t id;
  assert_int_equal(shk_watch_add(w, buf, size, "big", &id), SHK_OK);
  memset(buf + 300000, 0x5A, 1000);
  buf[700000] = 7;
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(c->count, 1);
  const seen *s = &c->events[0];
  assert_false(s->flags & SHK_WATCH_EVENT_INLINE);
  assert_true(s->flags & SHK_WATCH_EVENT_STORED);
  assert_int_equal(s->offset, 300000);
  assert_int_equal(s->length, 700000 - 300000 + 1);
  assert_int_equal(s->preview_length, 256);
  assert_int_equal(s->old_bytes[0], 0);
  assert_int_equal(s->new_bytes[0], 0x5A);
  unsigned char *old = malloc(s->length), *now = malloc(s->length);
  size_t len = 0;
  assert_int_equal(shk_watch_fetch(w, s->old_key, old, s->length, &len), SHK_OK);
  assert_int_equal(len, s->length);
  assert_int_equal(shk_watch_fetch(w, s->new_key, now, s->length, &len), SHK_OK);
  assert_memory_equal(now, buf + 300000, s->length);
  for (size_t i = 0; i < s->length; i++) assert_int_equal(old[i], 0);
  /* A short buffer gets the length and SHK_ERANGE; a dropped key is gone. */
  assert_int_equal(shk_watch_fetch(w, s->new_key, now, 10, &len), SHK_ERANGE);
  assert_int_equal(len, s->length);
  shk_watch_stats st;
  assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
  assert_true(st.stored_bytes >= 2 * s->length);
  assert_int_equal(shk_watch_drop(w, s->old_key), SHK_OK);
  assert_int_equal(shk_watch_fetch(w, s->old_key, old, s->length, &len), SHK_ENOENT);
  assert_int_equal(shk_watch_drop(w, s->old_key), SHK_ENOENT);
  free(old);
  free(now);
  shk_watch_free(w);
  shk_watch_pages_free(buf, size);
  collector_free(c);
}

static void regions_sharing_a_page_get_their_own_events(void **state) {
  collector *c = collector_new();
  shk_watcher *w = start(state, 0, c);
  unsigned char *page = pages(4096);
  uint32_t ids[16];
  for (int i = 0; i < 16; i++) {
    char name[16];
    snprintf(name, sizeof name, "r%d", i);
    /* 16-byte regions with 16-byte gaps between them. */
    assert_int_equal(shk_watch_add(w, page + i * 32, 16, name, &ids[i]), SHK_OK);
  }
  for (int i = 0; i < 16; i += 2) page[i * 32 + 3] = (unsigned char)(i + 1);
  for (int i = 0; i < 16; i++) page[i * 32 + 20] = 0xEE; /* the gaps: unwatched */
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(c->count, 8);
  for (int i = 0; i < 16; i++) {
    size_t n = count_for(c, ids[i]);
    assert_int_equal(n, i % 2 == 0 ? 1 : 0);
    if (n) {
      const seen *s = last_for(c, ids[i]);
      assert_int_equal(s->offset, 3);
      assert_int_equal(s->length, 1);
      assert_int_equal(s->new_bytes[0], i + 1);
    }
  }
  /* An odd address and length compare as well as aligned ones. */
  uint32_t odd;
  assert_int_equal(shk_watch_add(w, page + 1027, 61, "odd", &odd), SHK_OK);
  page[1027 + 40] = 0x77;
  page[1027 + 60] = 0x78;
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(count_for(c, odd), 1);
  assert_int_equal(last_for(c, odd)->offset, 40);
  assert_int_equal(last_for(c, odd)->length, 21);
  /* Removing one region keeps its neighbours on the shared page watched. */
  assert_int_equal(shk_watch_remove(w, ids[0]), SHK_OK);
  page[0] = 9;
  page[32 + 1] = 9;
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(count_for(c, ids[0]), 1);
  assert_int_equal(count_for(c, ids[1]), 1);
  shk_watch_free(w);
  shk_watch_pages_free(page, 4096);
  collector_free(c);
}

static void writes_to_unwatched_bytes_of_a_watched_page_give_no_event(void **state) {
  collector *c = collector_new();
  shk_watcher *w = start(state, 0, c);
  unsigned char *page = pages(4096);
  uint32_t id;
  assert_int_equal(shk_watch_add(w, page + 1000, 8, "mid", &id), SHK_OK);
  for (int round = 0; round < 20; round++) {
    page[round] = (unsigned char)(round + 1);
    page[4000 + round] = (unsigned char)(round + 1);
    assert_int_equal(shk_watch_flush(w), SHK_OK);
  }
  assert_int_equal(c->count, 0);
  shk_watch_free(w);
  shk_watch_pages_free(page, 4096);
  collector_free(c);
}

static void writing_the_same_value_gives_no_event(void **state) {
  collector *c = collector_new();
  shk_watcher *w = start(state, 0, c);
  unsigned char *page = pages(4096);
  memset(page, 0x11, 64);
  uint32_t id;
  assert_int_equal(shk_watch_add(w, page, 64, "same", &id), SHK_OK);
  memset(page, 0x11, 64);
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  page[5] = 0x22;
  page[5] = 0x11; /* changed and changed back within the window: no change */
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(c->count, 0);
  shk_watch_stats st;
  assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
  if (records_faults(state)) assert_true(st.faults >= 1);
  shk_watch_free(w);
  shk_watch_pages_free(page, 4096);
  collector_free(c);
}

/* A callback that keeps the region's value as the events describe it. */
typedef struct mirror {
  uint32_t id;
  unsigned char value[512];
  int bad_old;
} mirror;

static void apply(const shk_watch_event *ev, void *user) {
  mirror *m = user;
  if (ev->region_id != m->id) return;
  const unsigned char *old = ev->old_value, *now = ev->new_value;
  if (!(ev->flags & SHK_WATCH_EVENT_INLINE)) return;
  if (memcmp(m->value, old, ev->region_size) != 0) m->bad_old++;
  memcpy(m->value, now, ev->region_size);
}

static void the_last_write_of_a_burst_is_delivered(void **state) {
  /* The worker runs passes every millisecond while the writes go on; whatever it groups, the
   * values the events carry, replayed, must end at the memory's last state. */
  shk_watcher *w = start_with(state, 0, NULL, true);
  mirror *m = calloc(1, sizeof *m);
  unsigned char *page = pages(4096);
  assert_int_equal(shk_watch_add(w, page, 256, "burst", &m->id), SHK_OK);
  assert_int_equal(shk_watch_set_callback(w, apply, m), SHK_OK);
  for (int i = 1; i <= 20000; i++) {
    page[i % 256] = (unsigned char)i;
    if (i % 2000 == 0) {
      volatile int spin = 0;
      while (spin < 100000) spin++;
    }
  }
  page[255] = 0xAB; /* the very last write */
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(m->bad_old, 0);
  assert_int_equal(m->value[255], 0xAB);
  assert_memory_equal(m->value, page, 256);
  /* Nothing is left over, and one more change is one more event. */
  assert_int_equal(shk_watch_set_callback(w, NULL, NULL), SHK_OK);
  collector *c = collector_new();
  assert_int_equal(shk_watch_set_callback(w, collect, c), SHK_OK);
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(c->count, 0);
  page[255] = 0xAB; /* same value again: nothing */
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(c->count, 0);
  page[255] = 0xAC;
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(c->count, 1);
  assert_int_equal(c->events[0].old_bytes[0], 0xAB);
  assert_int_equal(c->events[0].new_bytes[0], 0xAC);
  shk_watch_free(w);
  shk_watch_pages_free(page, 4096);
  collector_free(c);
  free(m);
}

static void old_and_new_values_are_right_over_many_random_writes(void **state) {
  shk_watcher *w = start(state, 0, NULL);
  mirror *m = calloc(1, sizeof *m);
  unsigned char *buf = pages(8192);
  unsigned char *region = buf + 4096 - 256; /* straddles two pages */
  assert_int_equal(shk_watch_add(w, region, 512, "straddle", &m->id), SHK_OK);
  assert_int_equal(shk_watch_set_callback(w, apply, m), SHK_OK);
  srand(12345);
  for (int round = 0; round < 200; round++) {
    int writes = 1 + rand() % 8;
    for (int k = 0; k < writes; k++) region[rand() % 512] = (unsigned char)rand();
    if (rand() % 3 == 0) assert_int_equal(shk_watch_flush(w), SHK_OK);
  }
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(m->bad_old, 0);
  assert_memory_equal(m->value, region, 512);
  shk_watch_free(w);
  shk_watch_pages_free(buf, 8192);
  free(m);
}

typedef struct writer_arg {
  unsigned char *base;
  int index;
} writer_arg;

#ifdef _WIN32
#include <windows.h>
typedef HANDLE thread_t;
static DWORD WINAPI writer_main_w(LPVOID p);
#else
#include <pthread.h>
typedef pthread_t thread_t;
#endif

static void writer_body(writer_arg *a) {
  /* Each thread owns one page and writes its index into every 64th byte. */
  unsigned char *p = a->base + (size_t)a->index * 4096;
  for (int rep = 0; rep < 50; rep++)
    for (int i = 0; i < 4096; i += 64) p[i] = (unsigned char)(a->index + 1 + rep);
}

#ifdef _WIN32
static DWORD WINAPI writer_main_w(LPVOID p) {
  writer_body(p);
  return 0;
}
static void thread_go(thread_t *t, writer_arg *a) {
  *t = CreateThread(NULL, 0, writer_main_w, a, 0, NULL);
  assert_non_null(*t);
}
static void thread_join(thread_t t) {
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
}
#else
static void *writer_main_p(void *p) {
  writer_body(p);
  return NULL;
}
static void thread_go(thread_t *t, writer_arg *a) {
  assert_int_equal(pthread_create(t, NULL, writer_main_p, a), 0);
}
static void thread_join(thread_t t) { pthread_join(t, NULL); }
#endif

static void several_threads_write_at_once(void **state) {
  collector *c = collector_new();
  shk_watcher *w = start_with(state, 0, c, true);
  enum { THREADS = 8 };
  unsigned char *buf = pages(THREADS * 4096);
  uint32_t id;
  assert_int_equal(shk_watch_add(w, buf, THREADS * 4096, "shared", &id), SHK_OK);
  thread_t t[THREADS];
  writer_arg args[THREADS];
  for (int i = 0; i < THREADS; i++) {
    args[i].base = buf;
    args[i].index = i;
    thread_go(&t[i], &args[i]);
  }
  for (int i = 0; i < THREADS; i++) thread_join(t[i]);
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_true(c->count >= 1);
  /* Whatever the grouping, nothing is left undelivered: the next flush finds nothing. */
  size_t n = c->count;
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(c->count, n);
  for (int i = 0; i < THREADS; i++) assert_int_equal(buf[i * 4096], i + 50);
  shk_watch_stats st;
  assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
  if (records_faults(state)) assert_true(st.faults >= THREADS);
  shk_watch_free(w);
  shk_watch_pages_free(buf, THREADS * 4096);
  collector_free(c);
}

static void burst_beyond_a_ring_of(void **state, uint32_t ring);

static void a_burst_beyond_the_ring_counts_drops_and_loses_no_change(void **state) {
  burst_beyond_a_ring_of(state, 8);
}

/* ring_capacity is what the ring holds: 1 holds 1 (it held 2 before). */
static void a_ring_of_one_holds_exactly_one_record(void **state) { burst_beyond_a_ring_of(state, 1); }

static void burst_beyond_a_ring_of(void **state, uint32_t ring) {
  shk_watch_backend b = backend_of(state);
  if (!shk_watch_backend_available(b) || (!records_faults(state) && b != SHK_WATCH_WRITE_WATCH)) {
    printf("    backend %s %s: skipped\n", shk_watch_backend_name(b),
           shk_watch_backend_available(b) ? "records no faults in a ring" : "is not available");
    skip();
  }
  collector *c = collector_new();
  /* The worker holds still while the burst happens. */
  shk_watcher *w = start_tuned(state, ring, 10000, 10000, c);
  enum { N = 64 };
  /* Write-watch falls back to protection on mapped views, where GetWriteWatch does not work. */
  shk_shm *view = NULL;
  unsigned char *buf;
  if (b == SHK_WATCH_WRITE_WATCH) {
    assert_int_equal(shk_shm_create_anonymous(N * 4096, &view), SHK_OK);
    buf = shk_shm_data(view);
  } else {
    buf = pages(N * 4096);
  }
  uint32_t ids[N];
  for (int i = 0; i < N; i++) assert_int_equal(shk_watch_add(w, buf + i * 4096, 16, "p", &ids[i]), SHK_OK);
  /* Right after a pass the worker sleeps for the whole window: nothing drains the ring. */
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  for (int i = 0; i < N; i++) buf[i * 4096] = 1;
  shk_watch_stats st;
  assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
  assert_int_equal(st.faults, N);
  /* Exactly what did not fit in the ring is counted. */
  assert_int_equal(st.events_dropped, N - ring);
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(c->count, N);
  for (int i = 0; i < N; i++) assert_int_equal(count_for(c, ids[i]), 1);
  assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
  assert_int_equal(st.resyncs, 1);
  /* It keeps working: a later write arrives as a normal event with writer details. */
  buf[5 * 4096 + 1] = 2;
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(c->count, N + 1);
  const seen *s = &c->events[N];
  assert_int_equal(s->region_id, ids[5]);
  assert_false(s->flags & SHK_WATCH_EVENT_RESYNC);
  assert_true(s->flags & SHK_WATCH_EVENT_FAULT_ADDRESS);
  assert_int_equal(s->fault_address, (uintptr_t)(buf + 5 * 4096 + 1));
  assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
  assert_int_equal(st.faults, N + 1);
  shk_watch_free(w);
  if (view) shk_shm_close(view);
  else shk_watch_pages_free(buf, N * 4096);
  collector_free(c);
}

/* A burst that overflows the ring is still one event per region: the resync after the overflow
 * waits for the coalescing window like any burst (it used to compare at once, splitting the
 * burst in two events). The worker passes every millisecond; the window is long. */
static void a_burst_that_overflows_the_ring_is_still_one_event(void **state) {
  shk_watch_backend b = backend_of(state);
  if (!shk_watch_backend_available(b) || !records_faults(state)) {
    printf("    backend %s: records no faults here: skipped\n", shk_watch_backend_name(b));
    skip();
  }
  collector *c = collector_new();
  shk_watcher *w = start_tuned(state, 1, 60000, 1, c);
  enum { N = 64 };
  unsigned char *buf = pages(N * 4096);
  uint32_t id;
  assert_int_equal(shk_watch_add(w, buf, N * 4096, "burst", &id), SHK_OK);
  for (int i = 0; i < N / 2; i++) buf[i * 4096] = 1;
  /* Let the worker see the overflow (it resyncs); a slow machine only makes this weaker. */
  shk_watch_stats st;
  for (int tries = 0; tries < 200; tries++) {
    assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
    if (st.resyncs > 0) break;
    shk_test_sleep_ms(5);
  }
  shk_test_sleep_ms(20);
  for (int i = N / 2; i < N; i++) buf[i * 4096] = 2;
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
  printf("    %llu faults, %llu dropped, %llu resyncs, %zu event(s)\n",
         (unsigned long long)st.faults, (unsigned long long)st.events_dropped,
         (unsigned long long)st.resyncs, c->count);
  assert_int_equal(c->count, 1);
  assert_int_equal(c->events[0].offset, 0);
  assert_int_equal(c->events[0].length, (N - 1) * 4096 + 1);
  shk_watch_free(w);
  shk_watch_pages_free(buf, N * 4096);
  collector_free(c);
}

static void removing_the_callback_stops_delivery(void **state) {
  collector *c = collector_new();
  shk_watcher *w = start(state, 0, c);
  unsigned char *page = pages(4096);
  uint32_t id;
  assert_int_equal(shk_watch_add(w, page, 64, "cb", &id), SHK_OK);
  page[0] = 1;
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(c->count, 1);
  assert_int_equal(shk_watch_set_callback(w, NULL, NULL), SHK_OK);
  page[1] = 2;
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(c->count, 1);
  shk_watch_stats st;
  assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
  assert_int_equal(st.events_delivered, 1);
  assert_int_equal(st.events_unobserved, 1);
  shk_watch_free(w);
  shk_watch_pages_free(page, 4096);
  collector_free(c);
}

static void ten_thousand_watch_and_unwatch_cycles_leave_nothing_behind(void **state) {
  shk_watcher *w = start(state, 0, NULL);
  unsigned char *buf = pages(4 * 4096);
  shk_watch_stats st0, st;
  uint32_t keep;
  assert_int_equal(shk_watch_add(w, buf, 16, "keep", &keep), SHK_OK);
  assert_int_equal(shk_watch_stats_get(w, &st0), SHK_OK);
  for (int i = 0; i < 10000; i++) {
    uint32_t id;
    assert_int_equal(shk_watch_add(w, buf + 4096 + (i % 3) * 4096, 100, "cycle", &id), SHK_OK);
    if (i % 1000 == 0) buf[4096 + (i % 3) * 4096] = (unsigned char)i;
    assert_int_equal(shk_watch_remove(w, id), SHK_OK);
  }
  assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
  assert_int_equal(st.regions, 1);
  assert_true(st.memory_bytes <= st0.memory_bytes + 64 * 1024);
  /* The unwatched pages are plain writable memory again. */
  memset(buf + 4096, 0x33, 3 * 4096);
  shk_watch_free(w);
  shk_watch_pages_free(buf, 4 * 4096);
}

/* ---- the EFAULT case: a kernel write into a watched buffer -------------------------------- */

static void a_kernel_write_into_a_watched_buffer(void **state) {
#ifdef _WIN32
  (void)state;
  printf("    kernel writes through read(): POSIX only: skipped\n");
  skip();
#else
  collector *c = collector_new();
  shk_watcher *w = start(state, 0, c);
  unsigned char *page = pages(4096);
  uint32_t id;
  assert_int_equal(shk_watch_add(w, page, 64, "rx", &id), SHK_OK);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  assert_int_equal(write(fds[1], "kernel", 6), 6);
  ssize_t n = read(fds[0], page, 6);
  int err = errno;
  close(fds[0]);
  close(fds[1]);
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  /* Sync mode handles kernel faults only with the privilege for it (see the test below). */
  bool kernel_faults = true;
  if (sync_of(state) && geteuid() != 0) {
    FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "r");
    int unpriv = 0;
    if (f && fscanf(f, "%d", &unpriv) != 1) unpriv = 0;
    if (f) fclose(f);
    kernel_faults = unpriv == 1;
  }
  if (backend_of(state) == SHK_WATCH_MPROTECT || !kernel_faults) {
    /* The kernel does not fault on the user's behalf: it refuses, and nothing was written. */
    assert_int_equal(n, -1);
    assert_int_equal(err, EFAULT);
    assert_int_equal(c->count, 0);
  } else {
    assert_int_equal(n, 6);
    assert_int_equal(c->count, 1);
    assert_memory_equal(c->events[0].new_bytes, "kernel", 6);
  }
  shk_watch_free(w);
  shk_watch_pages_free(page, 4096);
  collector_free(c);
#endif
}

/* Userfaultfd's sync mode and kernel writes: the kernel waits for the reader thread only when the
 * descriptor could be opened for kernel faults too (root, CAP_SYS_PTRACE, or
 * vm.unprivileged_userfaultfd=1); otherwise shmkit opens it for user faults only
 * (UFFD_USER_MODE_ONLY) and read() into the buffer fails with EFAULT, writing nothing. The child
 * drops root first when it has it, so both cases are seen on a machine where tests run as root. */
static int child_kernel_write_unprivileged(int argc, char **argv) {
  (void)argc;
  (void)argv;
#ifdef __linux__
  if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 2;
  int unpriv = 0;
  FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "r");
  if (f) {
    if (fscanf(f, "%d", &unpriv) != 1) unpriv = 0;
    fclose(f);
  }
  shk_watch_options o;
  shk_watch_options_init(&o);
  o.backend = SHK_WATCH_USERFAULTFD;
  o.userfaultfd_sync = true;
  shk_watcher *w = NULL;
  int rc = shk_watch_create(&o, &w);
  if (rc == SHK_EUNSUPPORTED) {
    printf("    userfaultfd is not available to an unprivileged process here: skipped\n");
    return 0;
  }
  if (rc != SHK_OK) return 3;
  unsigned char *page = NULL;
  if (shk_watch_pages_alloc(4096, (void **)&page) != SHK_OK) return 4;
  uint32_t id;
  if (shk_watch_add(w, page, 64, "rx", &id) != SHK_OK) return 5;
  int fds[2];
  if (pipe(fds) != 0 || write(fds[1], "kernel", 6) != 6) return 6;
  ssize_t n = read(fds[0], page, 6);
  int err = errno;
  close(fds[0]);
  close(fds[1]);
  printf("    unprivileged, vm.unprivileged_userfaultfd=%d: read() into the buffer: %zd%s\n", unpriv,
         n, n < 0 && err == EFAULT ? " (EFAULT)" : "");
  shk_watch_free(w);
  if (unpriv) return n == 6 && memcmp(page, "kernel", 6) == 0 ? 0 : 7;
  return n == -1 && err == EFAULT && page[0] == 0 ? 0 : 8;
#else
  return 0;
#endif
}

static void a_kernel_write_under_userfaultfd_sync_depends_on_the_privilege(void **state) {
  (void)state;
  if (!shk_watch_backend_available(SHK_WATCH_USERFAULTFD)) {
    printf("    userfaultfd is not available here: skipped\n");
    skip();
  }
  shk_test_run_child_ok("kernel_write_unprivileged", 0, NULL, CHILD_TIMEOUT_MS);
}

/* ---- real crashes stay real ------------------------------------------------------------- */

static int child_null_write(int argc, char **argv) {
  (void)argc;
  int b = atoi(argv[0]);
  if (b >= 0) {
    shk_watch_options o;
    shk_watch_options_init(&o);
    o.backend = (shk_watch_backend)b;
    o.userfaultfd_sync = strchr(argv[0], 's') != NULL;
    shk_watcher *w = NULL;
    if (shk_watch_create(&o, &w) != SHK_OK) return 2;
    void *p = NULL;
    if (shk_watch_pages_alloc(4096, &p) != SHK_OK) return 3;
    uint32_t id;
    if (shk_watch_add(w, p, 64, "x", &id) != SHK_OK) return 4;
    ((volatile unsigned char *)p)[0] = 1; /* a watched write first: the hook is live */
  }
  volatile int *volatile null_ptr = NULL;
  *null_ptr = 42;
  return 0; /* not reached */
}

static shk_test_exit run_null_write(const char *backend) {
  const char *args[] = {backend};
  shk_test_proc proc;
  assert_int_equal(shk_test_spawn("null_write", 1, args, &proc), 0);
  return shk_test_wait(&proc, CHILD_TIMEOUT_MS);
}

static void a_null_write_with_an_active_watcher_still_kills_the_process(void **state) {
  shk_watch_backend b = backend_of(state);
  if (!shk_watch_backend_available(b)) {
    printf("    backend %s is not available on this system: skipped\n", shk_watch_backend_name(b));
    skip();
  }
  char arg[8];
  snprintf(arg, sizeof arg, "%d%s", (int)b, sync_of(state) ? "s" : "");
  /* The same crash without any watcher is the reference: under a sanitizer that catches
   * SIGSEGV itself the process exits with its report instead of dying of the signal. */
  shk_test_exit plain = run_null_write("-1");
  shk_test_exit watched = run_null_write(arg);
  assert_int_equal(watched.timed_out, 0); /* no fault loop */
  assert_int_equal(watched.killed, plain.killed);
  assert_int_equal(watched.code, plain.code);
  if (plain.killed) assert_int_equal(watched.code, shk_test_access_violation_code());
}

/* A handler the program installed before shmkit keeps getting the faults that are not shmkit's,
 * while a watcher runs and after it is gone. */
#ifdef _WIN32
static LONG CALLBACK program_handler(EXCEPTION_POINTERS *ep) {
  if (ep->ExceptionRecord->ExceptionCode == EXCEPTION_ACCESS_VIOLATION) ExitProcess(42);
  return EXCEPTION_CONTINUE_SEARCH;
}
static void install_program_handler(void) { AddVectoredExceptionHandler(0, program_handler); }
#else
#include <signal.h>
static void program_handler(int sig) {
  (void)sig;
  _exit(42);
}
static void install_program_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = program_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, NULL);
}
#endif

static int child_chains(int argc, char **argv) {
  (void)argc;
  int free_first = atoi(argv[0]);
  install_program_handler();
  shk_watch_options o;
  shk_watch_options_init(&o);
  o.backend = SHK_WATCH_MPROTECT;
  shk_watcher *w = NULL;
  if (shk_watch_create(&o, &w) != SHK_OK) return 2;
  void *p = NULL;
  if (shk_watch_pages_alloc(4096, &p) != SHK_OK) return 3;
  uint32_t id;
  if (shk_watch_add(w, p, 64, "x", &id) != SHK_OK) return 4;
  ((volatile unsigned char *)p)[0] = 1; /* shmkit's fault: handled, never reaches the program */
  if (shk_watch_flush(w) != SHK_OK) return 5;
  if (free_first) shk_watch_free(w);
  volatile int *volatile null_ptr = NULL;
  *null_ptr = 42;
  return 0;
}

static void a_handler_installed_before_gets_the_faults_that_are_not_ours(void **state) {
  (void)state;
  const char *during[] = {"0"}, *after[] = {"1"};
  for (int i = 0; i < 2; i++) {
    shk_test_proc proc;
    assert_int_equal(shk_test_spawn("chains", 1, i == 0 ? during : after, &proc), 0);
    shk_test_exit how = shk_test_wait(&proc, CHILD_TIMEOUT_MS);
    assert_int_equal(how.timed_out, 0);
    assert_int_equal(how.killed, 0);
    assert_int_equal(how.code, 42);
  }
}

/* ---- the memory-area limit ---------------------------------------------------------------- */

static int child_area_limit(int argc, char **argv) {
  (void)argc;
  shk_watch_options o;
  shk_watch_options_init(&o);
  o.backend = (shk_watch_backend)atoi(argv[0]);
  o.userfaultfd_sync = strchr(argv[0], 's') != NULL;
  o.poll_interval_ms = 50;
  shk_watcher *w = NULL;
  if (shk_watch_create(&o, &w) != SHK_OK) return 2;
  size_t regions = (size_t)strtoul(argv[1], NULL, 10), ps = shk_test_page_size();
  unsigned char *buf = NULL;
  if (shk_watch_pages_alloc(regions * 2 * ps, (void **)&buf) != SHK_OK) return 3;
  size_t added = 0;
  int rc = SHK_OK;
  for (size_t i = 0; i < regions; i++) {
    uint32_t id;
    rc = shk_watch_add(w, buf + i * 2 * ps, 8, NULL, &id);
    if (rc != SHK_OK) break;
    added++;
  }
  shk_watch_stats st;
  shk_watch_stats_get(w, &st);
  printf("    %s: %zu regions added, last code %s, %zu moved to poll\n",
         shk_watch_backend_name(o.backend), added, shk_error_name(rc), st.regions_moved_to_poll);
  if (o.backend == SHK_WATCH_AUTO) {
    if (rc != SHK_OK || st.regions_moved_to_poll == 0) return 5;
  } else if (rc != SHK_ELIMIT || added < 1000) {
    return 6;
  }
  /* Every watched page can still be written: no fault loop, no crash. */
  for (size_t i = 0; i < added; i++) buf[i * 2 * ps] = 1;
  if (shk_watch_flush(w) != SHK_OK) return 7;
  shk_watch_stats_get(w, &st);
  if (st.events_unobserved != added) {
    printf("    %llu changes seen of %zu\n", (unsigned long long)st.events_unobserved, added);
    return 8;
  }
  shk_watch_free(w);
  shk_watch_pages_free(buf, regions * 2 * ps);
  return 0;
}

/* Scattered single-page regions enough to go past this machine's memory-area limit (each splits
 * off two areas), read from the system; 0 when that is impractical here (printed, then skipped). */
#ifndef _WIN32
#define AREA_TEST_MAX_REGIONS 60000u
static size_t regions_past_the_area_limit(void) {
#ifdef __linux__
  FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
  unsigned long max = 0;
  if (!f || fscanf(f, "%lu", &max) != 1) max = 0;
  if (f) fclose(f);
  if (max == 0) {
    printf("    vm.max_map_count cannot be read here: skipped\n");
    return 0;
  }
  size_t need = (size_t)max / 2 + 2000;
  if (need > AREA_TEST_MAX_REGIONS) {
    printf("    vm.max_map_count is %lu: going past it takes %zu regions (more than %u, "
           "impractical in a test): skipped\n", max, need, AREA_TEST_MAX_REGIONS);
    return 0;
  }
  printf("    vm.max_map_count is %lu: %zu regions\n", max, need);
  return need;
#else
  printf("    no readable memory-area limit on this system: skipped\n");
  return 0;
#endif
}
#endif

static void the_memory_area_limit_is_refused_not_hit(void **state) {
  shk_watch_backend b = backend_of(state);
#ifdef _WIN32
  (void)b;
  printf("    no memory-area limit on Windows: skipped\n");
  skip();
#else
  if (b != SHK_WATCH_AUTO && (!shk_watch_backend_available(b) || b == SHK_WATCH_POLL)) {
    printf("    backend %s splits no memory areas: skipped\n", shk_watch_backend_name(b));
    skip();
  }
  size_t regions = regions_past_the_area_limit();
  if (regions == 0) skip();
  char arg[8], count[24];
  snprintf(arg, sizeof arg, "%d%s", (int)b, sync_of(state) ? "s" : "");
  snprintf(count, sizeof count, "%zu", regions);
  const char *args[] = {arg, count};
  shk_test_run_child_ok("area_limit", 2, args, 240000);
#endif
}

/* ---- not parametrised ------------------------------------------------------------------- */

static void options_have_the_documented_defaults(void **state) {
  (void)state;
  shk_watch_options o;
  shk_watch_options_init(&o);
  shk_watch_options_init(NULL);
  assert_int_equal(o.struct_size, sizeof o);
  assert_int_equal(o.backend, SHK_WATCH_AUTO);
  assert_int_equal(o.coalesce_ms, 5);
  assert_int_equal(o.ring_capacity, 65536);
  assert_int_equal(o.inline_threshold, 4096);
  assert_int_equal(o.preview_size, 256);
  assert_string_equal(shk_watch_backend_name(SHK_WATCH_USERFAULTFD), "userfaultfd");
  assert_string_equal(shk_watch_backend_name((shk_watch_backend)99), "unknown");
  assert_true(shk_watch_backend_available(SHK_WATCH_AUTO));
  assert_true(shk_watch_backend_available(SHK_WATCH_POLL));
  assert_false(shk_watch_backend_available((shk_watch_backend)99));
}

static void create_refuses_bad_options(void **state) {
  (void)state;
  shk_watcher *w = (shk_watcher *)1;
  shk_watch_options o;
  assert_int_equal(shk_watch_create(NULL, NULL), SHK_EINVAL);
  shk_watch_options_init(&o);
  o.struct_size = 7; /* below the first published layout, and not a version of 0.1.x */
  assert_int_equal(shk_watch_create(&o, &w), SHK_EINVAL);
  assert_null(w);
  shk_watch_options_init(&o);
  o.ring_capacity = 0;
  assert_int_equal(shk_watch_create(&o, &w), SHK_EINVAL);
  shk_watch_options_init(&o);
  o.backend = (shk_watch_backend)42;
  assert_int_equal(shk_watch_create(&o, &w), SHK_EINVAL);
  for (int b = 1; b < SHK_WATCH_BACKEND_COUNT; b++) {
    if (shk_watch_backend_available((shk_watch_backend)b)) continue;
    shk_watch_options_init(&o);
    o.backend = (shk_watch_backend)b;
    assert_int_equal(shk_watch_create(&o, &w), SHK_EUNSUPPORTED);
  }
  shk_watch_free(NULL);
}

static void add_remove_and_friends_check_their_arguments(void **state) {
  (void)state;
  shk_watcher *w = NULL;
  assert_int_equal(shk_watch_create(NULL, &w), SHK_OK);
  unsigned char *page = pages(4096);
  uint32_t id = 0, other = 0;
  assert_int_equal(shk_watch_add(NULL, page, 8, "x", &id), SHK_EINVAL);
  assert_int_equal(shk_watch_add(w, NULL, 8, "x", &id), SHK_EINVAL);
  assert_int_equal(shk_watch_add(w, page, 0, "x", &id), SHK_EINVAL);
  assert_int_equal(shk_watch_add(w, page, 8, "x", NULL), SHK_EINVAL);
  assert_int_equal(shk_watch_add(w, (void *)(UINTPTR_MAX - 4), 8, "x", &id), SHK_EINVAL);
  assert_int_equal(shk_watch_add(w, page, 8, NULL, &id), SHK_OK);
  assert_int_not_equal(id, 0);
  assert_int_equal(shk_watch_add(w, page + 4, 8, "overlap", &other), SHK_EOVERLAP);
  assert_int_equal(shk_watch_remove(w, id + 1000), SHK_ENOENT);
  assert_int_equal(shk_watch_remove(NULL, id), SHK_EINVAL);
  shk_watch_backend b;
  assert_int_equal(shk_watch_region_backend(w, id + 1000, &b), SHK_ENOENT);
  assert_int_equal(shk_watch_region_backend(w, id, NULL), SHK_EINVAL);
  assert_int_equal(shk_watch_remove(w, id), SHK_OK);
  assert_int_equal(shk_watch_remove(w, id), SHK_ENOENT);
  assert_int_equal(shk_watch_set_callback(NULL, NULL, NULL), SHK_EINVAL);
  assert_int_equal(shk_watch_flush(NULL), SHK_EINVAL);
  shk_watch_stats st;
  assert_int_equal(shk_watch_stats_get(NULL, &st), SHK_EINVAL);
  assert_int_equal(shk_watch_stats_get(w, NULL), SHK_EINVAL);
  char buf[4];
  assert_int_equal(shk_watch_fetch(w, 12345, buf, sizeof buf, NULL), SHK_ENOENT);
  assert_int_equal(shk_watch_fetch(w, 1, NULL, 4, NULL), SHK_EINVAL);
  assert_int_equal(shk_watch_drop(w, 12345), SHK_ENOENT);
  assert_int_equal(shk_watch_drop(NULL, 1), SHK_EINVAL);
  void *p = (void *)1;
  assert_int_equal(shk_watch_pages_alloc(0, &p), SHK_ESIZE);
  assert_int_equal(shk_watch_pages_alloc(4096, NULL), SHK_EINVAL);
  shk_watch_pages_free(NULL, 4096);
  shk_watch_free(w);
  shk_watch_pages_free(page, 4096);
}

typedef struct reentry {
  shk_watcher *w;
  int flush_rc;
  int stats_rc;
  int set_rc;
  int calls;
} reentry;

static void reenter(const shk_watch_event *ev, void *user) {
  (void)ev;
  reentry *r = user;
  shk_watch_stats st;
  r->calls++;
  r->flush_rc = shk_watch_flush(r->w);
  r->stats_rc = shk_watch_stats_get(r->w, &st);
  shk_watch_free(r->w); /* refused from the callback: must do nothing */
  r->set_rc = shk_watch_set_callback(r->w, NULL, NULL);
}

static void the_callback_may_call_back_in_but_not_flush(void **state) {
  (void)state;
  reentry *r = calloc(1, sizeof *r);
  assert_int_equal(shk_watch_create(NULL, &r->w), SHK_OK);
  unsigned char *page = pages(4096);
  uint32_t id;
  assert_int_equal(shk_watch_add(r->w, page, 8, "re", &id), SHK_OK);
  assert_int_equal(shk_watch_set_callback(r->w, reenter, r), SHK_OK);
  page[0] = 1;
  assert_int_equal(shk_watch_flush(r->w), SHK_OK);
  assert_int_equal(r->calls, 1);
  assert_int_equal(r->flush_rc, SHK_ESTATE);
  assert_int_equal(r->stats_rc, SHK_OK);
  assert_int_equal(r->set_rc, SHK_OK);
  page[1] = 1; /* the callback removed itself */
  assert_int_equal(shk_watch_flush(r->w), SHK_OK);
  assert_int_equal(r->calls, 1);
  shk_watch_free(r->w);
  shk_watch_pages_free(page, 4096);
  free(r);
}

static int anchor_function(void) { return 0; }

static void protection_events_know_address_instruction_and_thread(void **state) {
  (void)state;
  if (!shk_watch_backend_available(SHK_WATCH_MPROTECT)) skip();
  collector *c = collector_new();
  shk_watch_options o;
  shk_watch_options_init(&o);
  o.backend = SHK_WATCH_MPROTECT;
  shk_watcher *w = NULL;
  assert_int_equal(shk_watch_create(&o, &w), SHK_OK);
  assert_int_equal(shk_watch_set_callback(w, collect, c), SHK_OK);
  unsigned char *page = pages(4096);
  uint32_t id;
  assert_int_equal(shk_watch_add(w, page + 100, 32, "who", &id), SHK_OK);
  ((volatile unsigned char *)page)[110] = 5; const unsigned write_line = __LINE__;
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  assert_int_equal(c->count, 1);
  const seen *s = &c->events[0];
  assert_true(s->flags & SHK_WATCH_EVENT_FAULT_ADDRESS);
  assert_true(s->flags & SHK_WATCH_EVENT_THREAD);
  assert_int_equal(s->fault_address, (uintptr_t)(page + 110));
  assert_int_not_equal(s->thread_id, 0);
  if (s->flags & SHK_WATCH_EVENT_IP) {
    /* The writing instruction is in this test program, not at the data address. */
    assert_int_not_equal(s->ip, s->fault_address);
    assert_true(s->module[0] != '\0');
    assert_non_null(strstr(s->module, "test_watch"));
    printf("    ip %p in %s (anchor %p)\n", (void *)s->ip, s->module, (void *)(uintptr_t)anchor_function);
  }
  /* File, function and line where debug information and the system's reader exist (libdw on
   * Linux, DbgHelp on Windows; Debug and RelWithDebInfo builds carry it, Release ones do not). */
  if (s->flags & SHK_WATCH_EVENT_SOURCE) {
    printf("    %s:%u in %s (the write is on line %u)\n", s->file, s->line, s->function, write_line);
    assert_non_null(strstr(s->file, "test_watch.c"));
    assert_int_equal(s->line, write_line);
    assert_non_null(strstr(s->function, "protection_events_know"));
  } else {
    printf("    no source line for the writer here (no libdw / DbgHelp, or no debug information)\n");
#if defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && defined(SHK_TEST_DEBUG_INFO)
    /* gcc's DWARF is found by libdw as it is; clang's needs -gdwarf-aranges (libdw 0.188 looks
     * addresses up through .debug_aranges, which clang leaves out by default). */
    void *dw = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (dw) dlclose(dw);
    assert_null(dw); /* libdw is here: the line must have been found */
#endif
  }
  shk_watch_free(w);
  shk_watch_pages_free(page, 4096);
  collector_free(c);
}

/* Another process writes a shared segment: only polling can see it. */
static int child_writes_segment(int argc, char **argv) {
  (void)argc;
  shk_shm *shm = NULL;
  if (shk_shm_open(argv[0], SHK_SHM_READ_WRITE, &shm) != SHK_OK) return 2;
  memcpy(shk_shm_data(shm), "from the child", 15);
  shk_shm_close(shm);
  return 0;
}

static void only_poll_sees_another_processes_writes(void **state) {
  (void)state;
  char name[64];
  shk_shm *shm = NULL;
  assert_int_equal(shk_shm_create(shk_test_unique_name(name, sizeof name, "w"), 4096, &shm), SHK_OK);
  for (int b = 1; b < SHK_WATCH_BACKEND_COUNT; b++) {
    if (!shk_watch_backend_available((shk_watch_backend)b)) continue;
    collector *c = collector_new();
    shk_watch_options o;
    shk_watch_options_init(&o);
    o.backend = (shk_watch_backend)b;
    shk_watcher *w = NULL;
    assert_int_equal(shk_watch_create(&o, &w), SHK_OK);
    assert_int_equal(shk_watch_set_callback(w, collect, c), SHK_OK);
    memset(shk_shm_data(shm), 0, 64);
    uint32_t id;
    int rc = shk_watch_add(w, shk_shm_data(shm), 64, "seg", &id);
    if (rc == SHK_OK) {
      const char *args[] = {name};
      shk_test_run_child_ok("writes_segment", 1, args, CHILD_TIMEOUT_MS);
      assert_int_equal(shk_watch_flush(w), SHK_OK);
      printf("    %s: %zu event(s) for the other process's write\n",
             shk_watch_backend_name((shk_watch_backend)b), c->count);
      if (b == SHK_WATCH_POLL) {
        assert_int_equal(c->count, 1);
        assert_memory_equal(c->events[0].new_bytes, "from the child", 15);
      } else {
        assert_int_equal(c->count, 0);
      }
    } else {
      printf("    %s cannot watch a shared segment here: %s\n",
             shk_watch_backend_name((shk_watch_backend)b), shk_error_name(rc));
    }
    shk_watch_free(w);
    collector_free(c);
  }
  shk_shm_close(shm);
  shk_shm_unlink(name);
}

static param b_mprotect = {SHK_WATCH_MPROTECT, false}, b_uffd = {SHK_WATCH_USERFAULTFD, false},
             b_uffd_sync = {SHK_WATCH_USERFAULTFD, true}, b_ww = {SHK_WATCH_WRITE_WATCH, false},
             b_poll = {SHK_WATCH_POLL, false}, b_auto = {SHK_WATCH_AUTO, false};

/* Each scenario once per backend; the cmocka name is the same, the first output line of a run
 * says which backend it is. */
#define EACH_BACKEND(f)                                                                     \
  cmocka_unit_test_prestate(f, &b_mprotect), cmocka_unit_test_prestate(f, &b_uffd),         \
      cmocka_unit_test_prestate(f, &b_uffd_sync), cmocka_unit_test_prestate(f, &b_ww),      \
      cmocka_unit_test_prestate(f, &b_poll)

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(options_have_the_documented_defaults),
    cmocka_unit_test(create_refuses_bad_options),
    cmocka_unit_test(add_remove_and_friends_check_their_arguments),
    cmocka_unit_test(the_callback_may_call_back_in_but_not_flush),
    cmocka_unit_test(protection_events_know_address_instruction_and_thread),
    cmocka_unit_test(only_poll_sees_another_processes_writes),
    cmocka_unit_test(a_handler_installed_before_gets_the_faults_that_are_not_ours),
    cmocka_unit_test(a_kernel_write_under_userfaultfd_sync_depends_on_the_privilege),
    EACH_BACKEND(small_region_gives_inline_old_and_new),
    EACH_BACKEND(large_region_gives_store_keys_and_previews),
    EACH_BACKEND(regions_sharing_a_page_get_their_own_events),
    EACH_BACKEND(writes_to_unwatched_bytes_of_a_watched_page_give_no_event),
    EACH_BACKEND(writing_the_same_value_gives_no_event),
    EACH_BACKEND(the_last_write_of_a_burst_is_delivered),
    EACH_BACKEND(old_and_new_values_are_right_over_many_random_writes),
    EACH_BACKEND(several_threads_write_at_once),
    EACH_BACKEND(a_burst_beyond_the_ring_counts_drops_and_loses_no_change),
    EACH_BACKEND(a_ring_of_one_holds_exactly_one_record),
    EACH_BACKEND(a_burst_that_overflows_the_ring_is_still_one_event),
    EACH_BACKEND(removing_the_callback_stops_delivery),
    EACH_BACKEND(ten_thousand_watch_and_unwatch_cycles_leave_nothing_behind),
    EACH_BACKEND(a_kernel_write_into_a_watched_buffer),
    EACH_BACKEND(a_null_write_with_an_active_watcher_still_kills_the_process),
    EACH_BACKEND(the_memory_area_limit_is_refused_not_hit),
    cmocka_unit_test_prestate(the_memory_area_limit_is_refused_not_hit, &b_auto),
};

static const shk_test_child children[] = {
    {"null_write", child_null_write},
    {"area_limit", child_area_limit},
    {"writes_segment", child_writes_segment},
    {"chains", child_chains},
    {"kernel_write_unprivileged", child_kernel_write_unprivileged},
};

SHK_TEST_MAIN(tests, children)
