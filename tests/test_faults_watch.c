/* ctest: labels=unit;fault timeout=180 internal */
/* Fault walks (src/os_faults.h) under the watcher: shk_watch_create when its worker thread
 * cannot start, shk_watch_add (mprotect backend) when pages cannot be protected, and
 * shk_watch_pages_alloc when the system gives no pages. Each failure gives a documented code
 * with the raw OS error kept, and leaves the pages' protection and the process as they were. */
#include <stdio.h>
#include <string.h>

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
  /* The walk covers the add only: a remove that cannot give the pages their protection back
   * reports SHK_OK and leaves them read-only (a known gap, not walked here). */
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

SHK_CHILD_TEST(watch_add_fails_cleanly_when_pages_cannot_be_protected, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  add_call c = {NULL, NULL, 3 * shk__os_caps_get()->page_size};
  SHK_CHECK(shk_watch_pages_alloc(c.size, (void **)&c.pages) == SHK_OK);
  shk_watch_options opts;
  shk_watch_options_init(&opts);
  opts.backend = SHK_WATCH_MPROTECT;
  SHK_CHECK(shk_watch_create(&opts, &c.w) == SHK_OK);
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
    cmocka_unit_test(watch_pages_alloc_fails_cleanly_when_the_system_gives_no_pages),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(watch_create_fails_cleanly_when_its_thread_cannot_start),
    SHK_TEST_CHILD(watch_add_fails_cleanly_when_pages_cannot_be_protected),
    SHK_TEST_CHILD(watch_pages_alloc_fails_cleanly_when_the_system_gives_no_pages),
};

SHK_TEST_MAIN(tests, children)
