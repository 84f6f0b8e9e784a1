/* The write-watch backend (Windows): GetWriteWatch on memory allocated with write watching
 * (shk_watch_pages_alloc); on any other memory it hands the region to the protection backend
 * (vectored exception handler + VirtualProtect) while still reporting "write-watch". */
#include "watch_internal.h"

static bool available(void) { return shk__os_has(SHK__OS_WRITE_WATCH); }

static void reset(void *addr, size_t size) {
  /* Discard what was written before watching started: those writes are in the first copy. */
  shk__os_write_watch_scan(addr, size, NULL, NULL);
}

static int attach(shk_watcher *w, shk__watch_region *r) {
  size_t size = r->page_end - r->page_start;
  if (!shk__watch_region_writable(r)) return SHK_EACCES;
  if (!shk__os_write_watch_covers((void *)r->page_start, size)) {
    int rc = shk__watch_backend_mprotect.attach(w, r);
    if (rc == SHK_OK) r->ops = &shk__watch_backend_mprotect;
    return rc;
  }
  reset((void *)r->page_start, size);
  return SHK_OK;
}

/* One GetWriteWatch per run of regions on adjacent or shared pages (a call may not cross
 * allocations, and regions apart may lie in different ones); with tens of thousands of regions a
 * pass takes long, so it is budgeted like userfaultfd's scan. */
static void scan(shk_watcher *w, uint64_t now, bool force) {
  uint64_t t0;
  if (!shk__watch_scan_start(w->ww_scan_due_ns, now, force, &t0)) return;
  for (size_t i = 0; i < w->count;) {
    shk__watch_region *r = w->regions[i];
    if (r->ops != &shk__watch_backend_write_watch) {
      i++;
      continue;
    }
    uintptr_t start = r->page_start, end = r->page_end;
    size_t j = i + 1;
    while (j < w->count && w->regions[j]->ops == &shk__watch_backend_write_watch &&
           w->regions[j]->page_start <= end) {
      end = SHK__MAX(end, w->regions[j]->page_end);
      j++;
    }
    shk__os_write_watch_scan((void *)start, end - start, shk__watch_mark_pages_cb, w);
    i = j;
  }
  shk__watch_scan_done(&w->ww_scan_due_ns, t0);
}

const shk__watch_backend_ops shk__watch_backend_write_watch = {
    SHK_WATCH_WRITE_WATCH, available, NULL, attach, NULL, scan, NULL, NULL};
