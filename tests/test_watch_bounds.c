/* The watcher at the ends of what it watches, on every backend available here (each scenario in a
 * child process, where CMocka's signal handlers are not in the way): a write to a region's last
 * byte and to the next region's first byte on the same page, writes to the bytes just outside
 * (no event), regions that end at a page end and start at the next page, overlap refused by one
 * byte and adjacency accepted; the inline threshold, the preview size and shk_watch_fetch() at
 * exactly their value and one past it. */
/* ctest: labels=unit;fault timeout=120 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#define MAX_SEEN 64

typedef struct seen {
  uint32_t region_id, flags;
  size_t offset, length, preview_length, region_size;
  uint64_t new_key;
  unsigned char new_byte; /* the first changed byte's new value */
} seen;

typedef struct collector {
  seen ev[MAX_SEEN];
  size_t count;
} collector;

static void collect(const shk_watch_event *e, void *user) {
  collector *c = user;
  if (c->count == MAX_SEEN) return;
  seen *s = &c->ev[c->count++];
  s->region_id = e->region_id;
  s->flags = e->flags;
  s->offset = e->offset;
  s->length = e->length;
  s->preview_length = e->preview_length;
  s->region_size = e->region_size;
  s->new_key = e->new_key;
  s->new_byte = e->flags & SHK_WATCH_EVENT_INLINE
                    ? ((const unsigned char *)e->new_value)[e->offset]
                    : ((const unsigned char *)e->new_preview)[0];
}

static const shk_watch_backend backends[] = {SHK_WATCH_MPROTECT, SHK_WATCH_USERFAULTFD,
                                             SHK_WATCH_WRITE_WATCH, SHK_WATCH_POLL};

/* A watcher that finds changes only on shk_watch_flush() (exact event counts however slow). */
static shk_watcher *start(shk_watch_backend b, collector *c, size_t inline_threshold,
                          size_t preview) {
  shk_watch_options o;
  shk_watch_options_init(&o);
  o.backend = b;
  o.coalesce_ms = 10000;
  o.poll_interval_ms = 10000;
  if (inline_threshold) o.inline_threshold = inline_threshold;
  if (preview) o.preview_size = preview;
  shk_watcher *w = NULL;
  if (shk_watch_create(&o, &w) != SHK_OK) return NULL;
  memset(c, 0, sizeof *c);
  if (shk_watch_set_callback(w, collect, c) != SHK_OK) {
    shk_watch_free(w);
    return NULL;
  }
  return w;
}

static size_t page_size(void) {
  shk_shm *s = NULL;
  if (shk_shm_create_anonymous(1, &s) != SHK_OK) return 0;
  size_t n = shk_shm_size(s);
  shk_shm_close(s);
  return n;
}

static int regions_see_writes_exactly_to_their_ends(shk_watch_backend b) {
  size_t page = page_size();
  SHK_CHECK(page > 0);
  unsigned char *p = NULL;
  SHK_CHECK(shk_watch_pages_alloc(3 * page, (void **)&p) == SHK_OK);
  collector *c = calloc(1, sizeof *c);
  SHK_CHECK(c != NULL);
  shk_watcher *w = start(b, c, 0, 0);
  SHK_CHECK(w != NULL);
  /* a = [64, 80) and b = [80, 96) share a page; tail = the last 16 bytes of page 0, next = the
   * first 16 of page 1; bytes 63, 96 and page 2 stay unwatched. */
  unsigned char *a = p + 64, *bb = p + 80, *tail = p + page - 16, *next = p + page;
  uint32_t ida = 0, idb = 0, idt = 0, idn = 0, id = 0;
  SHK_CHECK(shk_watch_add(w, a, 16, "a", &ida) == SHK_OK);
  SHK_CHECK(shk_watch_add(w, bb, 16, "b", &idb) == SHK_OK);
  SHK_CHECK(shk_watch_add(w, tail, 16, "tail", &idt) == SHK_OK);
  SHK_CHECK(shk_watch_add(w, next, 16, "next", &idn) == SHK_OK);
  /* overlap by one byte at either end is refused, touching is not */
  SHK_CHECK(shk_watch_add(w, bb + 15, 2, "over-end", &id) == SHK_EOVERLAP && id == 0);
  SHK_CHECK(shk_watch_add(w, a - 1, 2, "over-start", &id) == SHK_EOVERLAP && id == 0);
  SHK_CHECK(shk_watch_add(w, tail - 1, 2, "over-tail", &id) == SHK_EOVERLAP);
  SHK_CHECK(shk_watch_add(w, next + 15, 2, "over-next", &id) == SHK_EOVERLAP);
  SHK_CHECK(shk_watch_add(w, (void *)(UINTPTR_MAX - 1), 2, "wraps", &id) == SHK_EINVAL);
  /* a region that ends exactly where a watched one starts (added after it) is accepted */
  SHK_CHECK(shk_watch_add(w, a - 16, 16, "before-a", &id) == SHK_OK && id != 0);
  SHK_CHECK(shk_watch_remove(w, id) == SHK_OK);
  SHK_CHECK(shk_watch_flush(w) == SHK_OK);
  SHK_CHECK(c->count == 0);

  a[15] = 0xA1;     /* a's last byte */
  bb[0] = 0xB1;     /* b's first byte */
  a[-1] = 0x11;     /* just before a */
  bb[16] = 0x22;    /* just after b */
  tail[15] = 0xC1;  /* the last byte of page 0 */
  next[0] = 0xD1;   /* the first byte of page 1 */
  next[16] = 0x33;  /* just after next */
  p[2 * page] = 0x44; /* an unwatched page */
  SHK_CHECK(shk_watch_flush(w) == SHK_OK);
  if (c->count != 4) {
    for (size_t i = 0; i < c->count; i++)
      fprintf(stderr, "event: region %u offset %u length %u\n", (unsigned)c->ev[i].region_id,
              (unsigned)c->ev[i].offset, (unsigned)c->ev[i].length);
    fprintf(stderr, "%s: %u events, expected 4\n", shk_watch_backend_name(b), (unsigned)c->count);
    return __LINE__;
  }
  const struct {
    uint32_t id;
    size_t offset;
    unsigned char value;
  } want[] = {{ida, 15, 0xA1}, {idb, 0, 0xB1}, {idt, 15, 0xC1}, {idn, 0, 0xD1}};
  for (size_t k = 0; k < 4; k++) {
    const seen *s = NULL;
    for (size_t i = 0; i < c->count; i++)
      if (c->ev[i].region_id == want[k].id) s = &c->ev[i];
    SHK_CHECK(s != NULL);
    SHK_CHECK(s->offset == want[k].offset && s->length == 1 && s->region_size == 16);
    SHK_CHECK(s->new_byte == want[k].value);
  }
  /* a region added next to the written bytes starts from their current content */
  SHK_CHECK(shk_watch_add(w, bb + 16, 1, "after-b", &id) == SHK_OK);
  SHK_CHECK(shk_watch_remove(w, id) == SHK_OK);
  SHK_CHECK(shk_watch_remove(w, id) == SHK_ENOENT);
  shk_watch_free(w);
  /* every page is writable again, also the unwatched ones next to watched ones */
  a[15] = 1;
  tail[15] = 2;
  next[0] = 3;
  shk_watch_pages_free(p, 3 * page);
  free(c);
  return 0;
}

/* The inline threshold and the preview size, at their value and one past it. */
static int inline_and_preview_sizes_hold_at_their_limits(shk_watch_backend b) {
  unsigned char *p = NULL;
  SHK_CHECK(shk_watch_pages_alloc(65536, (void **)&p) == SHK_OK);
  collector *c = calloc(1, sizeof *c);
  SHK_CHECK(c != NULL);
  shk_watcher *w = start(b, c, 64, 32);
  SHK_CHECK(w != NULL);
  uint32_t at = 0, over = 0;
  SHK_CHECK(shk_watch_add(w, p, 64, "at", &at) == SHK_OK);
  SHK_CHECK(shk_watch_add(w, p + 128, 65, "over", &over) == SHK_OK);
  memset(p, 7, 64);          /* the whole inline region */
  memset(p + 128, 8, 32);    /* exactly the preview size */
  SHK_CHECK(shk_watch_flush(w) == SHK_OK);
  SHK_CHECK(c->count == 2);
  for (size_t i = 0; i < 2; i++) {
    const seen *s = &c->ev[i];
    if (s->region_id == at) {
      SHK_CHECK(s->flags & SHK_WATCH_EVENT_INLINE);
      SHK_CHECK(s->offset == 0 && s->length == 64 && s->preview_length == 32);
    } else {
      SHK_CHECK(s->region_id == over);
      SHK_CHECK(!(s->flags & SHK_WATCH_EVENT_INLINE));
      SHK_CHECK(s->flags & SHK_WATCH_EVENT_STORED);
      SHK_CHECK(s->offset == 0 && s->length == 32 && s->preview_length == 32);
    }
  }
  c->count = 0;
  memset(p + 128, 9, 65); /* one more than the preview: all 65 bytes of "over" */
  SHK_CHECK(shk_watch_flush(w) == SHK_OK);
  SHK_CHECK(c->count == 1);
  SHK_CHECK(c->ev[0].length == 65 && c->ev[0].preview_length == 32);
  /* fetch: exactly the stored length, and one byte less */
  unsigned char buf[65];
  size_t len = 0;
  SHK_CHECK(shk_watch_fetch(w, c->ev[0].new_key, buf, 65, &len) == SHK_OK && len == 65);
  SHK_CHECK(buf[0] == 9 && buf[64] == 9);
  len = 0;
  memset(buf, 0, sizeof buf);
  SHK_CHECK(shk_watch_fetch(w, c->ev[0].new_key, buf, 64, &len) == SHK_ERANGE && len == 65);
  SHK_CHECK(buf[63] == 9 && buf[64] == 0);
  SHK_CHECK(shk_watch_fetch(w, c->ev[0].new_key, NULL, 0, &len) == SHK_ERANGE && len == 65);
  SHK_CHECK(shk_watch_drop(w, c->ev[0].new_key) == SHK_OK);
  SHK_CHECK(shk_watch_fetch(w, c->ev[0].new_key, buf, 65, &len) == SHK_ENOENT);
  shk_watch_free(w);
  shk_watch_pages_free(p, 65536);
  free(c);
  return 0;
}

static int on_every_backend(int (*scenario)(shk_watch_backend)) {
  int ran = 0;
  for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
    if (!shk_watch_backend_available(backends[i])) {
      fprintf(stderr, "backend %s not available here: not run\n", shk_watch_backend_name(backends[i]));
      continue;
    }
    int rc = scenario(backends[i]);
    if (rc != 0) {
      fprintf(stderr, "backend %s failed at line %d\n", shk_watch_backend_name(backends[i]), rc);
      return rc;
    }
    ran++;
  }
  return ran > 0 ? 0 : 1;
}

SHK_CHILD_TEST(regions_see_writes_exactly_to_their_ends_on_every_backend, 60000) {
  (void)argc;
  (void)argv;
  return on_every_backend(regions_see_writes_exactly_to_their_ends);
}

SHK_CHILD_TEST(inline_and_preview_sizes_hold_at_their_limits_on_every_backend, 60000) {
  (void)argc;
  (void)argv;
  return on_every_backend(inline_and_preview_sizes_hold_at_their_limits);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(regions_see_writes_exactly_to_their_ends_on_every_backend),
    cmocka_unit_test(inline_and_preview_sizes_hold_at_their_limits_on_every_backend),
};
static const shk_test_child children[] = {
    SHK_TEST_CHILD(regions_see_writes_exactly_to_their_ends_on_every_backend),
    SHK_TEST_CHILD(inline_and_preview_sizes_hold_at_their_limits_on_every_backend),
};
SHK_TEST_MAIN(tests, children)
