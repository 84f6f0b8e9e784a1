/* ctest: labels=unit;fault timeout=180 internal */
/* Fault walks (src/os_faults.h) under the watcher: shk_watch_create when its worker thread
 * cannot start, shk_watch_add (mprotect backend) when pages cannot be protected, and
 * shk_watch_pages_alloc when the system gives no pages. Each failure gives a documented code
 * with the raw OS error kept, and leaves the pages' protection and the process as they were. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/watch_internal.h"
#include "shk_test_faults.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 120000

static const int watch_codes[] = {SHK_ENOMEM, SHK_EOS};

static int watch_create(void *ctx) {
  (void)ctx;
  shk_watch_options opts;
  shk_watch_options_init(&opts);
  opts.backend = SHK_WATCH_MPROTECT;
  shk_watcher *w = NULL;
  int rc = shk_watch_create(&opts, &w);
  if (rc != SHK_OK) return w == NULL ? rc : -9999;
  shk_watch_free(w);
  return SHK_OK;
}

SHK_CHILD_TEST(watch_create_fails_cleanly_when_its_thread_cannot_start, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  shk_fault_case fc = {"shk_watch_create", SHK__FAULT_THREAD_START, watch_create, NULL,
                       watch_codes, SHK__ARRAY_LEN(watch_codes), true, false, NULL};
  SHK_FAULT_WALK(&fc, true);
  return 0;
}

typedef struct add_call {
  shk_watcher *w;
  unsigned char *pages;
  size_t size;
} add_call;

static int watch_add(void *ctx) {
  add_call *c = ctx;
  uint32_t id = 0;
  int rc = shk_watch_add(c->w, c->pages + 100, c->size - 200, "fault", &id);
  /* The walk covers the add only: a remove that cannot give the pages back has its own tests
   * (below). */
  shk__fault_disarm_all();
  if (rc != SHK_OK) return id == 0 ? rc : -9999;
  c->pages[150] = 7; /* watched: the write is seen, not refused */
  return shk_watch_remove(c->w, id);
}

/* The pages are read-write again (and writable in fact) after a failed add. */
static int pages_restored(void *ctx) {
  add_call *c = ctx;
  int prot = 0;
  bool uniform = false;
  int rc = shk__os_prot_query(c->pages, c->size, &prot, &uniform);
  if (rc == SHK_EUNSUPPORTED) return 0;
  if (rc != SHK_OK || !uniform || (prot & SHK__OS_PROT_READ_WRITE) != SHK__OS_PROT_READ_WRITE)
    return 1;
  c->pages[c->size - 1] = 1;
  return 0;
}

/* Three fresh pages and an mprotect watcher (nothing watched yet) for an add_call. */
static int three_pages_watcher(add_call *c) {
  c->w = NULL;
  c->size = 3 * shk__os_caps_get()->page_size;
  SHK_CHECK(shk_watch_pages_alloc(c->size, (void **)&c->pages) == SHK_OK);
  shk_watch_options opts;
  shk_watch_options_init(&opts);
  opts.backend = SHK_WATCH_MPROTECT;
  SHK_CHECK(shk_watch_create(&opts, &c->w) == SHK_OK);
  return 0;
}

SHK_CHILD_TEST(watch_add_fails_cleanly_when_pages_cannot_be_protected, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  add_call c;
  SHK_CHECK(three_pages_watcher(&c) == 0);
  shk_fault_case fc = {"shk_watch_add(mprotect)", SHK__FAULT_PROTECT, watch_add, &c, watch_codes,
                       SHK__ARRAY_LEN(watch_codes), true, false, pages_restored};
  SHK_FAULT_WALK(&fc, true);
  fc.sticky = true;
  SHK_FAULT_WALK(&fc, true);
  shk_watch_free(c.w);
  SHK_CHECK(pages_restored(&c) == 0);
  shk_watch_pages_free(c.pages, c.size);
  return 0;
}

/* The system out of memory areas (mprotect's ENOMEM at vm.max_map_count; Windows:
 * ERROR_NOT_ENOUGH_MEMORY) while an add protects its pages: SHK_ELIMIT as shk_watch_add documents
 * (not SHK_ENOMEM), the raw error kept, the pages read-write again, and the add works once the
 * system allows it. */
#ifdef _WIN32
#define OUT_OF_AREAS 8 /* ERROR_NOT_ENOUGH_MEMORY */
#else
#define OUT_OF_AREAS ENOMEM
#endif

SHK_CHILD_TEST(watch_add_reports_the_memory_area_limit_as_elimit, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  add_call c;
  SHK_CHECK(three_pages_watcher(&c) == 0);
  for (int sticky = 0; sticky < 2; sticky++) {
    uint32_t id = 77;
    shk__fault_arm(SHK__FAULT_PROTECT, 1, OUT_OF_AREAS, sticky != 0);
    int rc = shk_watch_add(c.w, c.pages + 100, c.size - 200, "limit", &id);
    int raw = shk_last_os_error();
    unsigned failed = shk__fault_failures(SHK__FAULT_PROTECT);
    shk__fault_disarm_all();
    SHK_CHECK(failed >= 1);
    SHK_CHECK(rc == SHK_ELIMIT);
    SHK_CHECK(id == 0);
    SHK_CHECK(raw == OUT_OF_AREAS);
    SHK_CHECK(pages_restored(&c) == 0);
  }
  SHK_CHECK(watch_add(&c) == SHK_OK);
  shk_watch_free(c.w);
  shk_watch_pages_free(c.pages, c.size);
  return 0;
}

/* mprotect failing part-way through the add's protection (the first page already read-only):
 * the add gives every page its protection back before it reports the failure (POSIX: the
 * point exists there only; elsewhere the add succeeds and this says nothing more). */
SHK_CHILD_TEST(watch_add_gives_pages_back_when_protection_fails_part_way, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  add_call c;
  SHK_CHECK(three_pages_watcher(&c) == 0);
  uint32_t id = 0;
  shk__fault_arm(SHK__FAULT_PROTECT_PARTIAL, 1, SHK_FAULT_RAW, false);
  int rc = shk_watch_add(c.w, c.pages, c.size, "partial", &id);
  int raw = shk_last_os_error();
  unsigned failed = shk__fault_failures(SHK__FAULT_PROTECT_PARTIAL);
  shk__fault_disarm_all();
  if (failed == 0) { /* no such point here */
    SHK_CHECK(rc == SHK_OK);
    SHK_CHECK(shk_watch_remove(c.w, id) == SHK_OK);
  } else {
    SHK_CHECK(rc == SHK_EOS && raw == SHK_FAULT_RAW && id == 0);
    SHK_CHECK(pages_restored(&c) == 0); /* before the restore: the first page read-only */
    c.pages[0] = 1;                    /* and writable in fact */
  }
  shk_watch_free(c.w);
  shk_watch_pages_free(c.pages, c.size);
  return 0;
}

/* A watcher (mprotect) on `size` bytes of pages, one region over all but the edges. */
static int watched_pages(size_t size, unsigned char **pages, shk_watcher **w, uint32_t *id) {
  if (shk_watch_pages_alloc(size, (void **)pages) != SHK_OK) return 1;
  shk_watch_options opts;
  shk_watch_options_init(&opts);
  opts.backend = SHK_WATCH_MPROTECT;
  if (shk_watch_create(&opts, w) != SHK_OK) return 2;
  return shk_watch_add(*w, *pages + 100, size - 200, "unprotect", id) == SHK_OK ? 0 : 3;
}

/* Writes to every page of [pages, + size): a crash here is what the watcher must never cause. */
static void write_every_page(unsigned char *pages, size_t size, size_t ps) {
  for (size_t off = 0; off < size; off += ps) pages[off + 150] = 7;
}

/* shk_watch_remove when the pages cannot be given their protection back (every try fails):
 * the code and the raw error are reported, the region is gone, and a later write to the pages
 * (read-only still) is opened by the fault handler instead of crashing the program. A single
 * failure is retried and the remove succeeds. */
SHK_CHILD_TEST(watch_remove_reports_and_keeps_pages_writable_when_they_cannot_be_opened,
               CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  size_t ps = shk__os_caps_get()->page_size, size = 3 * ps;
  unsigned char *pages = NULL;
  shk_watcher *w = NULL;
  uint32_t id = 0;
  SHK_CHECK(watched_pages(size, &pages, &w, &id) == 0);
  size_t orphans = shk__watch_table_orphans();
  shk__fault_arm(SHK__FAULT_PROTECT, 1, SHK_FAULT_RAW, true);
  int rc = shk_watch_remove(w, id);
  int raw = shk_last_os_error();
  unsigned failures = shk__fault_failures(SHK__FAULT_PROTECT);
  shk__fault_disarm_all();
  write_every_page(pages, size, ps); /* before the fix: SIGSEGV here */
  SHK_CHECK(rc == SHK_EOS);
  SHK_CHECK(raw == SHK_FAULT_RAW);
  SHK_CHECK(failures >= 2); /* retried before giving up */
  SHK_CHECK(shk__watch_table_orphans() == orphans + 1);
  SHK_CHECK(shk_watch_remove(w, id) == SHK_ENOENT);
  shk_watch_stats st;
  SHK_CHECK(shk_watch_stats_get(w, &st) == SHK_OK && st.regions == 0);

  /* One failure alone: the retry gives the pages back. */
  unsigned char *more = NULL;
  shk_watch_free(w);
  w = NULL;
  SHK_CHECK(watched_pages(size, &more, &w, &id) == 0);
  shk__fault_arm(SHK__FAULT_PROTECT, 1, SHK_FAULT_RAW, false);
  rc = shk_watch_remove(w, id);
  failures = shk__fault_failures(SHK__FAULT_PROTECT);
  shk__fault_disarm_all();
  SHK_CHECK(rc == SHK_OK);
  SHK_CHECK(failures == 1);
  add_call c = {w, more, size};
  SHK_CHECK(pages_restored(&c) == 0);
  SHK_CHECK(shk__watch_table_orphans() == orphans + 1);
  shk_watch_free(w);
  shk_watch_pages_free(more, size);
  shk_watch_pages_free(pages, size);
  return 0;
}

/* shk_watch_free, which returns nothing, in the same case: shk_last_os_error() holds the raw
 * code, and the pages stay writable for the program (opened on their next write). */
SHK_CHILD_TEST(watch_free_reports_and_keeps_pages_writable_when_they_cannot_be_opened,
               CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  size_t ps = shk__os_caps_get()->page_size, size = 3 * ps;
  unsigned char *pages = NULL;
  shk_watcher *w = NULL;
  uint32_t id = 0;
  SHK_CHECK(watched_pages(size, &pages, &w, &id) == 0);
  size_t orphans = shk__watch_table_orphans();
  shk__fault_arm(SHK__FAULT_PROTECT, 1, SHK_FAULT_RAW, true);
  shk_watch_free(w);
  int raw = shk_last_os_error();
  shk__fault_disarm_all();
  write_every_page(pages, size, ps); /* before the fix: SIGSEGV here */
  SHK_CHECK(raw == SHK_FAULT_RAW);
  SHK_CHECK(shk__watch_table_orphans() == orphans + 1);
  /* A free that meets no failure says so. */
  unsigned char *more = NULL;
  SHK_CHECK(watched_pages(size, &more, &w, &id) == 0);
  shk__error_clear_os();
  shk_watch_free(w);
  SHK_CHECK(shk_last_os_error() == 0); /* nothing failed: nothing recorded */
  shk_watch_pages_free(more, size);
  shk_watch_pages_free(pages, size);
  return 0;
}

static int pages_alloc(void *ctx) {
  (void)ctx;
  void *p = NULL;
  int rc = shk_watch_pages_alloc(65536, &p);
  if (rc != SHK_OK) return p == NULL ? rc : -9999;
  shk_watch_pages_free(p, 65536);
  return SHK_OK;
}

SHK_CHILD_TEST(watch_pages_alloc_fails_cleanly_when_the_system_gives_no_pages,
               CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  shk_fault_case fc = {"shk_watch_pages_alloc", SHK__FAULT_PAGES_ALLOC, pages_alloc, NULL,
                       watch_codes, SHK__ARRAY_LEN(watch_codes), true, false, NULL};
  SHK_FAULT_WALK(&fc, true);
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(watch_create_fails_cleanly_when_its_thread_cannot_start),
    cmocka_unit_test(watch_add_fails_cleanly_when_pages_cannot_be_protected),
    cmocka_unit_test(watch_add_gives_pages_back_when_protection_fails_part_way),
    cmocka_unit_test(watch_add_reports_the_memory_area_limit_as_elimit),
    cmocka_unit_test(watch_pages_alloc_fails_cleanly_when_the_system_gives_no_pages),
    cmocka_unit_test(watch_remove_reports_and_keeps_pages_writable_when_they_cannot_be_opened),
    cmocka_unit_test(watch_free_reports_and_keeps_pages_writable_when_they_cannot_be_opened),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(watch_create_fails_cleanly_when_its_thread_cannot_start),
    SHK_TEST_CHILD(watch_add_fails_cleanly_when_pages_cannot_be_protected),
    SHK_TEST_CHILD(watch_add_gives_pages_back_when_protection_fails_part_way),
    SHK_TEST_CHILD(watch_add_reports_the_memory_area_limit_as_elimit),
    SHK_TEST_CHILD(watch_pages_alloc_fails_cleanly_when_the_system_gives_no_pages),
    SHK_TEST_CHILD(watch_remove_reports_and_keeps_pages_writable_when_they_cannot_be_opened),
    SHK_TEST_CHILD(watch_free_reports_and_keeps_pages_writable_when_they_cannot_be_opened),
};

SHK_TEST_MAIN(tests, children)
