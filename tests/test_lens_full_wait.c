/* A producer whose thread's ring is full while a reader is attached: it waits up to full_wait_ns
 * for room. When the reader drains meanwhile (another thread), the send succeeds and nothing is
 * dropped; when nobody drains, the send gives SHK_EBUSY after the wait and the drop is counted
 * exactly once; with full_wait_ns 0, at once. After a drain the next send fits again. */
/* ctest: labels=unit timeout=120 internal */
#include <stdio.h>
#include <string.h>

#include "os.h"
#include "shk_test.h"
#include "shmkit.h"

static void on_event(const shk_lens_event *e, void *user) {
  (void)e;
  ++*(unsigned long long *)user;
}

typedef struct fixture {
  char name[64];
  shk_lens *lens;
  shk_lens_reader *reader;
} fixture;

/* A lens with the smallest rings (8 KiB: 256 records) and a reader attached. */
static void open_small(fixture *f, uint64_t full_wait_ns) {
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.ring_bytes = 8192;
  o.full_wait_ns = full_wait_ns;
  assert_int_equal(shk_lens_open(shk_test_unique_name(f->name, sizeof f->name, "full"), &o, &f->lens),
                   SHK_OK);
  assert_int_equal(shk_lens_reader_open(f->name, NULL, &f->reader), SHK_OK);
}

static void close_small(fixture *f) {
  shk_lens_reader_close(f->reader);
  shk_lens_close(f->lens);
}

/* Sends zones until one is refused (at most `limit`); how many went in. */
static unsigned fill(shk_lens *lens, unsigned limit, int *last_rc) {
  unsigned n = 0;
  *last_rc = SHK_OK;
  for (; n < limit; n++) {
    shk_lens_zone z;
    assert_int_equal(shk_lens_zone_begin(lens, &z, "fill", 0), SHK_OK);
    *last_rc = shk_lens_zone_end(&z);
    if (*last_rc != SHK_OK) break;
  }
  return n;
}

static uint64_t dropped_zones(shk_lens_reader *r) {
  shk_lens_stats st;
  assert_int_equal(shk_lens_reader_stats(r, &st), SHK_OK);
  return st.segment[SHK_LENS_ZONE].dropped;
}

static void a_full_ring_with_nobody_draining_drops_after_the_wait(void **state) {
  (void)state;
  fixture f;
  open_small(&f, 2000000); /* 2 ms */
  int rc = SHK_OK;
  unsigned n = fill(f.lens, 1000, &rc);
  assert_int_equal(rc, SHK_EBUSY);
  assert_true(n > 200 && n < 256); /* the ring's 256 records, less the name's */
  assert_int_equal(dropped_zones(f.reader), 1);
  unsigned long long got = 0;
  size_t drained = 0;
  do assert_int_equal(shk_lens_reader_drain(f.reader, on_event, &got, &drained), SHK_OK);
  while (drained > 0);
  assert_int_equal(got, n);
  /* Room again. */
  assert_int_equal(fill(f.lens, 10, &rc), 10);
  assert_int_equal(dropped_zones(f.reader), 1);
  close_small(&f);
}

static void a_full_ring_without_a_wait_drops_at_once(void **state) {
  (void)state;
  fixture f;
  open_small(&f, 0);
  int rc = SHK_OK;
  unsigned n = fill(f.lens, 1000, &rc);
  assert_int_equal(rc, SHK_EBUSY);
  assert_true(n > 200 && n < 256);
  assert_int_equal(fill(f.lens, 5, &rc), 0);
  assert_int_equal(rc, SHK_EBUSY);
  assert_int_equal(dropped_zones(f.reader), 2);
  close_small(&f);
}

typedef struct drainer {
  shk_lens_reader *reader;
  unsigned long long got;
} drainer;

static void drain_later(void *arg) {
  drainer *d = arg;
  shk__os_sleep_ns(50000000u);
  size_t drained = 0;
  do shk_lens_reader_drain(d->reader, on_event, &d->got, &drained);
  while (drained > 0);
}

/* The wait is long (10 s): the reader's drain, on another thread 50 ms later, makes the room
 * (no timing is asserted: the send waits as long as it takes, up to 10 s). */
static void a_full_ring_waits_for_the_reader_to_make_room(void **state) {
  (void)state;
  fixture f;
  open_small(&f, 10000000000u);
  int rc = SHK_OK;
  unsigned n = fill(f.lens, 200, &rc); /* within the ring: no wait */
  assert_int_equal(n, 200);
  drainer d = {f.reader, 0};
  shk__os_thread *t = NULL;
  assert_int_equal(shk__os_thread_start(&t, drain_later, &d), SHK_OK);
  unsigned more = fill(f.lens, 200, &rc); /* passes the ring's end: waits for the drain */
  shk__os_thread_join(t);
  assert_int_equal(rc, SHK_OK);
  assert_int_equal(more, 200);
  assert_int_equal(dropped_zones(f.reader), 0);
  size_t drained = 0;
  do assert_int_equal(shk_lens_reader_drain(f.reader, on_event, &d.got, &drained), SHK_OK);
  while (drained > 0);
  assert_int_equal(d.got, n + more);
  close_small(&f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_full_ring_with_nobody_draining_drops_after_the_wait),
    cmocka_unit_test(a_full_ring_without_a_wait_drops_at_once),
    cmocka_unit_test(a_full_ring_waits_for_the_reader_to_make_room),
};

static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
