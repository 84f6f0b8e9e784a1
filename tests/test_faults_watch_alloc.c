/* ctest: labels=unit;fault timeout=180 internal */
/* Fault walks (src/os_faults.h, SHK__FAULT_ALLOC) of the watcher's own allocations under
 * shk_watch_add (region, name copy, shadow copy, dirty map, the region list growing, the fault
 * table's chunks) and shk_watch_create (the watcher, its sink and ring), for the protection and
 * the poll backends. These calls allocate on the calling thread; the watcher's worker allocates
 * only while it handles writes, and nothing is written during a walk. Each failure gives
 * SHK_ENOMEM, leaves no region, no protection change and nothing else behind, and the calls
 * work again after. */
#include <stdio.h>
#include <string.h>

#include "shk_test_faults.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 120000
#define REGIONS 20 /* enough for the region list to grow past its first capacity */

static const int enomem[] = {SHK_ENOMEM};

typedef struct add_ctx {
  shk_watcher *w;
  unsigned char *pages;
  size_t size, page;
} add_ctx;

/* Adds REGIONS regions (one per page, some sharing a page), then removes them. */
static int add_many(void *ctx) {
  add_ctx *c = ctx;
  uint32_t ids[REGIONS] = {0};
  int rc = SHK_OK;
  size_t added = 0;
  for (; added < REGIONS && rc == SHK_OK; added++) {
    size_t off = (added / 2) * c->page + (added % 2) * (c->page / 2);
    rc = shk_watch_add(c->w, c->pages + off, c->page / 4, added % 3 ? "a region" : NULL,
                       &ids[added]);
    if (rc != SHK_OK && ids[added] != 0) rc = -9999;
  }
  if (rc != SHK_OK) added--; /* the failed one added nothing */
  shk__fault_disarm_all();  /* the removes are not walked */
  for (size_t i = 0; i < added; i++)
    if (shk_watch_remove(c->w, ids[i]) != SHK_OK) return -9998;
  return rc;
}

/* Nothing watched, every page read-write and writable. */
static int nothing_left(void *ctx) {
  add_ctx *c = ctx;
  shk_watch_stats st;
  if (shk_watch_stats_get(c->w, &st) != SHK_OK || st.regions != 0) return 1;
  int prot = 0;
  bool uniform = false;
  int rc = shk__os_prot_query(c->pages, c->size, &prot, &uniform);
  if (rc != SHK_EUNSUPPORTED &&
      (rc != SHK_OK || !uniform || (prot & SHK__OS_PROT_READ_WRITE) != SHK__OS_PROT_READ_WRITE))
    return 2;
  for (size_t off = 0; off < c->size; off += c->page) c->pages[off] ^= 1;
  return 0;
}

static int walk_adds(shk_watch_backend backend, const char *what) {
  add_ctx c = {NULL, NULL, 0, shk__os_caps_get()->page_size};
  c.size = (REGIONS / 2 + 1) * c.page;
  SHK_CHECK(shk_watch_pages_alloc(c.size, (void **)&c.pages) == SHK_OK);
  shk_watch_options opts;
  shk_watch_options_init(&opts);
  opts.backend = backend;
  SHK_CHECK(shk_watch_create(&opts, &c.w) == SHK_OK);
  shk_fault_case fc = {what, SHK__FAULT_ALLOC, add_many, &c, enomem, SHK__ARRAY_LEN(enomem),
                       false, false, nothing_left};
  SHK_FAULT_WALK(&fc, true);
  fc.sticky = true;
  SHK_FAULT_WALK(&fc, true);
  /* Usable after: a write to a watched region is seen. */
  uint32_t id = 0;
  SHK_CHECK(shk_watch_add(c.w, c.pages + 8, 64, "after", &id) == SHK_OK);
  c.pages[9] ^= 0x55;
  SHK_CHECK(shk_watch_flush(c.w) == SHK_OK);
  shk_watch_stats st;
  SHK_CHECK(shk_watch_stats_get(c.w, &st) == SHK_OK);
  SHK_CHECK(st.events_unobserved + st.events_delivered >= 1);
  shk_watch_free(c.w);
  shk_watch_pages_free(c.pages, c.size);
  return 0;
}

SHK_CHILD_TEST(watch_add_fails_cleanly_without_memory_mprotect, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return walk_adds(SHK_WATCH_MPROTECT, "shk_watch_add(mprotect) x20");
}

SHK_CHILD_TEST(watch_add_fails_cleanly_without_memory_poll, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return walk_adds(SHK_WATCH_POLL, "shk_watch_add(poll) x20");
}

static int create(void *ctx) {
  shk_watch_options *opts = ctx;
  shk_watcher *w = NULL;
  int rc = shk_watch_create(opts, &w);
  shk__fault_disarm_all(); /* the worker thread, once started, is not walked */
  if (rc != SHK_OK) return w == NULL ? rc : -9999;
  shk_watch_free(w);
  return SHK_OK;
}

SHK_CHILD_TEST(watch_create_fails_cleanly_without_memory, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  shk_watch_options opts;
  shk_watch_options_init(&opts);
  opts.backend = SHK_WATCH_MPROTECT;
  shk_fault_case fc = {"shk_watch_create", SHK__FAULT_ALLOC, create, &opts, enomem,
                       SHK__ARRAY_LEN(enomem), false, false, NULL};
  SHK_FAULT_WALK(&fc, true);
  fc.sticky = true;
  SHK_FAULT_WALK(&fc, true);
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(watch_add_fails_cleanly_without_memory_mprotect),
    cmocka_unit_test(watch_add_fails_cleanly_without_memory_poll),
    cmocka_unit_test(watch_create_fails_cleanly_without_memory),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(watch_add_fails_cleanly_without_memory_mprotect),
    SHK_TEST_CHILD(watch_add_fails_cleanly_without_memory_poll),
    SHK_TEST_CHILD(watch_create_fails_cleanly_without_memory),
};

SHK_TEST_MAIN(tests, children)
