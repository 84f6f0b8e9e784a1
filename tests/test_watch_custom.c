/* Backends of one's own: a snapshot backend of this test's (it compares each region with its own
 * copy and reports what differs), registered by name, gets the same events, coalescing, ring and
 * drop counting as the built-ins; the registry's rules; options of version 1 still work. */
/* ctest: labels=unit timeout=120 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

/* ---- the test's backend ------------------------------------------------------------------- */

typedef struct snap {
  shk_watcher *w;
  unsigned char *copy;
  size_t size;
} snap;

typedef struct snap_backend {
  bool through_ring; /* report with shk_watch_report_write (one per changed page) or written() */
  int attached, detached, scans, rearms;
  atomic_bool paused; /* scan reports nothing meanwhile (the test writes a burst first) */
} snap_backend;

static int snap_attach(void *user, shk_watcher *w, void *addr, size_t size, void **state) {
  snap_backend *b = user;
  snap *s = malloc(sizeof *s);
  if (!s) return SHK_ENOMEM;
  s->w = w;
  s->size = size;
  s->copy = malloc(size);
  if (!s->copy) {
    free(s);
    return SHK_ENOMEM;
  }
  memcpy(s->copy, addr, size);
  *state = s;
  b->attached++;
  return SHK_OK;
}

static void snap_detach(void *user, void *state) {
  snap_backend *b = user;
  snap *s = state;
  free(s->copy);
  free(s);
  b->detached++;
}

static void snap_scan(void *user, void *state, void *addr, size_t size, bool force,
                      shk_watch_written_fn written, void *ctx) {
  (void)force;
  snap_backend *b = user;
  snap *s = state;
  b->scans++;
  if (atomic_load(&b->paused)) return;
  unsigned char *mem = addr;
  for (size_t off = 0; off < size; off += 4096) {
    size_t n = size - off < 4096 ? size - off : 4096;
    if (memcmp(mem + off, s->copy + off, n) == 0) continue;
    size_t first = 0;
    while (mem[off + first] == s->copy[off + first]) first++;
    if (b->through_ring) shk_watch_report_write(s->w, mem + off + first, 0, 0);
    else written(ctx, mem + off, n);
    memcpy(s->copy + off, mem + off, n);
  }
}

static int snap_rearm(void *user, void *addr, size_t size) {
  (void)addr, (void)size;
  snap_backend *b = user;
  b->rearms++;
  return SHK_OK;
}

static shk_watch_backend_table table_for(snap_backend *b) {
  shk_watch_backend_table t;
  shk_watch_backend_table_init(&t);
  t.attach = snap_attach;
  t.detach = snap_detach;
  t.scan = snap_scan;
  t.rearm = snap_rearm;
  t.user = b;
  return t;
}

/* ---- recording events ----------------------------------------------------------------------- */

typedef struct seen {
  size_t count;
  uint32_t region_id[64];
  size_t offset[64], length[64];
  uint32_t flags[64];
  shk_watch_backend backend[64];
  uintptr_t fault_address[64];
} seen;

static void record_event(const shk_watch_event *ev, void *user) {
  seen *s = user;
  if (s->count == 64) return;
  s->region_id[s->count] = ev->region_id;
  s->offset[s->count] = ev->offset;
  s->length[s->count] = ev->length;
  s->flags[s->count] = ev->flags;
  s->backend[s->count] = ev->backend;
  s->fault_address[s->count] = ev->fault_address;
  s->count++;
}

static shk_watcher *start(const char *name, uint32_t ring, seen *c) {
  shk_watch_options o;
  shk_watch_options_init(&o);
  o.backend_name = name;
  o.coalesce_ms = 10000; /* events on flush only: counts stay exact however slow the machine */
  o.poll_interval_ms = 10000;
  if (ring) o.ring_capacity = ring;
  shk_watcher *w = NULL;
  assert_int_equal(shk_watch_create(&o, &w), SHK_OK);
  assert_int_equal(shk_watch_set_callback(w, record_event, c), SHK_OK);
  return w;
}

static unsigned char *pages(size_t size) {
  void *p = NULL;
  assert_int_equal(shk_watch_pages_alloc(size, &p), SHK_OK);
  return p;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void a_backend_of_ones_own_gives_the_same_events_as_the_built_ins(void **state) {
  (void)state;
  for (int ring = 0; ring < 2; ring++) {
    snap_backend b = {ring == 1, 0, 0, 0, 0, false};
    shk_watch_backend_table t = table_for(&b);
    const char *name = ring ? "test-snapshot-ring" : "test-snapshot";
    assert_int_equal(shk_watch_backend_register(name, &t), SHK_OK);
    assert_true(shk_watch_backend_exists(name));
    seen *c = calloc(1, sizeof *c);
    shk_watcher *w = start(name, 0, c);
    unsigned char *buf = pages(8192);
    uint32_t a, big;
    assert_int_equal(shk_watch_add(w, buf + 100, 32, "a", &a), SHK_OK);
    assert_int_equal(shk_watch_add(w, buf + 4096, 4096, "big", &big), SHK_OK);
    shk_watch_backend used;
    assert_int_equal(shk_watch_region_backend(w, a, &used), SHK_OK);
    assert_int_equal(used, SHK_WATCH_CUSTOM);
    buf[110] = 1; /* two writes in one window: one event */
    buf[120] = 2;
    buf[4096 + 4000] = 3;
    assert_int_equal(shk_watch_flush(w), SHK_OK);
    printf("    %s: %zu events\n", name, c->count);
    assert_int_equal(c->count, 2);
    assert_int_equal(c->region_id[0], a);
    assert_int_equal(c->offset[0], 10);
    assert_int_equal(c->length[0], 11);
    assert_int_equal(c->backend[0], SHK_WATCH_CUSTOM);
    assert_int_equal(c->region_id[1], big);
    assert_int_equal(c->offset[1], 4000);
    if (ring) { /* writes through the ring carry their address */
      assert_true(c->flags[0] & SHK_WATCH_EVENT_FAULT_ADDRESS);
      assert_int_equal(c->fault_address[0], (uintptr_t)(buf + 110));
    }
    /* The same value again: no event. */
    buf[110] = 1;
    assert_int_equal(shk_watch_flush(w), SHK_OK);
    assert_int_equal(c->count, 2);
    shk_watch_stats st;
    assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
    assert_int_equal(st.regions, 2);
    assert_int_equal(st.backend, SHK_WATCH_CUSTOM);
    if (ring) assert_int_equal(st.faults, 2);
    /* In use: cannot go. */
    assert_int_equal(shk_watch_backend_unregister(name), SHK_EBUSY);
    assert_int_equal(shk_watch_remove(w, a), SHK_OK);
    assert_int_equal(b.detached, 1);
    shk_watch_free(w);
    assert_int_equal(b.attached, 2);
    assert_int_equal(b.detached, 2);
    assert_true(b.scans > 0);
    assert_true(b.rearms > 0);
    assert_int_equal(shk_watch_backend_unregister(name), SHK_OK);
    assert_false(shk_watch_backend_exists(name));
    shk_watch_pages_free(buf, 8192);
    free(c);
  }
}

static void its_writes_through_the_ring_are_counted_and_dropped_like_faults(void **state) {
  (void)state;
  snap_backend b = {true, 0, 0, 0, 0, false};
  shk_watch_backend_table t = table_for(&b);
  assert_int_equal(shk_watch_backend_register("test-drops", &t), SHK_OK);
  seen *c = calloc(1, sizeof *c);
  shk_watcher *w = start("test-drops", 4, c);
  enum { N = 16 };
  unsigned char *buf = pages(N * 4096);
  uint32_t id;
  assert_int_equal(shk_watch_add(w, buf, N * 4096, "r", &id), SHK_OK);
  /* The whole burst is written before the backend reports any of it, so that the ring of 4 must
   * drop 12 whatever the worker's timing (with many cores it scans during the writes). */
  atomic_store(&b.paused, true);
  for (int i = 0; i < N; i++) buf[i * 4096 + 7] = 9;
  atomic_store(&b.paused, false);
  assert_int_equal(shk_watch_flush(w), SHK_OK);
  shk_watch_stats st;
  assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
  printf("    %llu writes reported, %llu dropped, %zu event(s)\n", (unsigned long long)st.faults,
         (unsigned long long)st.events_dropped, c->count);
  assert_int_equal(st.faults, N);
  assert_int_equal(st.events_dropped, N - 4); /* the ring holds 4 */
  assert_int_equal(st.resyncs, 1);
  assert_int_equal(c->count, 1); /* one region, one burst: one event, nothing lost */
  assert_int_equal(c->offset[0], 7);
  assert_int_equal(c->length[0], (N - 1) * 4096 + 1);
  assert_true(c->flags[0] & SHK_WATCH_EVENT_RESYNC);
  shk_watch_free(w);
  assert_int_equal(shk_watch_backend_unregister("test-drops"), SHK_OK);
  shk_watch_pages_free(buf, N * 4096);
  free(c);
}

static bool never(void *user) {
  (void)user;
  return false;
}

static void the_registry_checks_names_versions_and_use(void **state) {
  (void)state;
  snap_backend b = {false, 0, 0, 0, 0, false};
  shk_watch_backend_table t = table_for(&b);
  const char *builtins[] = {"mprotect", "userfaultfd", "write-watch", "poll"};
  for (int i = 0; i < 4; i++) {
    assert_true(shk_watch_backend_exists(builtins[i]));
    assert_int_equal(shk_watch_backend_register(builtins[i], &t), SHK_EEXIST);
    assert_int_equal(shk_watch_backend_unregister(builtins[i]), SHK_EACCES);
  }
  assert_int_equal(shk_watch_backend_register(NULL, &t), SHK_EINVAL);
  assert_int_equal(shk_watch_backend_register("x", NULL), SHK_EINVAL);
  assert_int_equal(shk_watch_backend_register("", &t), SHK_ENAME);
  assert_int_equal(shk_watch_backend_register("bad name", &t), SHK_ENAME);
  assert_int_equal(shk_watch_backend_register("a-name-that-is-longer-than-31-chars", &t), SHK_ENAME);
  shk_watch_backend_table bad = t;
  bad.struct_size = 7; /* below the first published layout, and not a version of 0.1.x */
  assert_int_equal(shk_watch_backend_register("v7", &bad), SHK_EINVAL);
  bad = t;
  bad.attach = NULL;
  assert_int_equal(shk_watch_backend_register("noattach", &bad), SHK_EINVAL);
  assert_int_equal(shk_watch_backend_unregister("never-registered"), SHK_ENOENT);
  assert_int_equal(shk_watch_backend_unregister(NULL), SHK_EINVAL);
  assert_false(shk_watch_backend_exists(NULL));
  /* A name nobody registered, and a backend that is not available here. */
  shk_watch_options o;
  shk_watch_options_init(&o);
  o.backend_name = "never-registered";
  shk_watcher *w = NULL;
  assert_int_equal(shk_watch_create(&o, &w), SHK_ENOENT);
  bad = t;
  bad.available = never;
  assert_int_equal(shk_watch_backend_register("unavailable", &bad), SHK_OK);
  o.backend_name = "unavailable";
  assert_int_equal(shk_watch_create(&o, &w), SHK_EUNSUPPORTED);
  assert_int_equal(shk_watch_backend_unregister("unavailable"), SHK_OK);
  /* A built-in by name is that built-in. */
  o.backend_name = "poll";
  assert_int_equal(shk_watch_create(&o, &w), SHK_OK);
  unsigned char *buf = pages(4096);
  uint32_t id;
  assert_int_equal(shk_watch_add(w, buf, 8, "p", &id), SHK_OK);
  shk_watch_backend used;
  assert_int_equal(shk_watch_region_backend(w, id, &used), SHK_OK);
  assert_int_equal(used, SHK_WATCH_POLL);
  shk_watch_free(w);
  shk_watch_pages_free(buf, 4096);
  assert_int_equal(shk_watch_report_write(NULL, buf, 0, 0), SHK_EINVAL);
  assert_string_equal(shk_watch_backend_name(SHK_WATCH_CUSTOM), "custom");
  assert_false(shk_watch_backend_available(SHK_WATCH_CUSTOM));
}

/* A caller built against version 1 of the options (no backend_name) still gets its settings. */
static void options_of_version_one_are_read_up_to_their_end(void **state) {
  (void)state;
  shk_watch_options o;
  shk_watch_options_init(&o);
  o.struct_size = 1; /* the version number of 0.1.x */
  o.backend = SHK_WATCH_POLL;
  o.backend_name = (const char *)"garbage past a version-1 struct";
  shk_watcher *w = NULL;
  assert_int_equal(shk_watch_create(&o, &w), SHK_OK);
  shk_watch_stats st;
  assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
  assert_int_equal(st.backend, SHK_WATCH_POLL);
  shk_watch_free(w);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_backend_of_ones_own_gives_the_same_events_as_the_built_ins),
    cmocka_unit_test(its_writes_through_the_ring_are_counted_and_dropped_like_faults),
    cmocka_unit_test(the_registry_checks_names_versions_and_use),
    cmocka_unit_test(options_of_version_one_are_read_up_to_their_end),
};

static const shk_test_child children[] = {{"none", NULL}};

SHK_TEST_MAIN(tests, children)
