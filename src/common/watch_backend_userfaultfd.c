/* The userfaultfd backend (Linux): pages write-protected in async mode; the kernel resolves
 * write faults itself and marks pages written; each pass the worker collects and re-protects
 * them in one PAGEMAP_SCAN per run of adjacent regions, then compares. */
#include "watch_internal.h"

static bool available(void) { return shk__os_caps_get()->has_uffd_wp_async; }

static int attach(shk_watcher *w, shk__watch_region *r) {
  if (!w->uffd) {
    int rc = shk__os_uffd_open(&w->uffd);
    if (rc != SHK_OK) return rc;
  }
  if (!shk__watch_areas_take()) return SHK_ELIMIT;
  int rc = shk__os_uffd_add(w->uffd, (void *)r->page_start, r->page_end - r->page_start);
  if (rc != SHK_OK) {
    shk__watch_areas_give();
    return rc == SHK_ENOMEM ? SHK_ELIMIT : rc;
  }
  r->holds_area = true;
  return SHK_OK;
}

static void detach(shk_watcher *w, shk__watch_region *r, uintptr_t es, uintptr_t ee) {
  (void)r;
  if (ee > es) shk__os_uffd_remove(w->uffd, (void *)es, ee - es);
}

static void collect(shk_watcher *w, uint64_t now, bool force) {
  (void)now;
  (void)force;
  for (size_t i = 0; i < w->count;) {
    if (w->regions[i]->ops != &shk__watch_backend_userfaultfd) {
      i++;
      continue;
    }
    uintptr_t start = w->regions[i]->page_start, end = w->regions[i]->page_end;
    size_t j = i + 1;
    while (j < w->count && w->regions[j]->ops == &shk__watch_backend_userfaultfd &&
           w->regions[j]->page_start <= end) {
      end = SHK__MAX(end, w->regions[j]->page_end);
      j++;
    }
    shk__os_uffd_scan(w->uffd, (void *)start, end - start, shk__watch_mark_pages_cb, w);
    i = j;
  }
}

const shk__watch_backend_ops shk__watch_backend_userfaultfd = {
    SHK_WATCH_USERFAULTFD, available, NULL, attach, detach, collect, NULL};
