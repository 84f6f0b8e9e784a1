/* The userfaultfd backend (Linux). Async mode: pages write-protected, the kernel resolves write
 * faults itself and marks pages written; each pass the worker scans: finds and re-protects them in
 * one PAGEMAP_SCAN per run of adjacent regions, then compares. Sync mode (no async mode in the
 * kernel, or asked for): a reader thread takes each first write, records it in the fault ring
 * and opens the page; the worker protects it again after the window, like mprotect. */
#include "watch_internal.h"

static bool available(void) { return shk__os_has(SHK__OS_UFFD_WP); }

/* Watchers with an async-mode descriptor in this process: while there is one, its pass scans
 * everything from its first to its last region in one call. */
static atomic_int async_users;

static void reader_main(void *arg) {
  shk_watcher *w = arg;
  shk__watch_sink *sink = w->sink;
  while (!atomic_load(&w->uffd_stop)) {
    uintptr_t addr = 0;
    uint64_t tid = 0;
    if (shk__os_uffd_next(w->uffd, 50, &addr, &tid) != SHK_OK) continue;
    shk__watch_record rec = {addr, 0, tid, shk__os_now_ns()};
    atomic_fetch_add_explicit(&sink->faults, 1, memory_order_relaxed);
    if (!shk__watch_ring_push(&sink->ring, &rec)) {
      atomic_fetch_add_explicit(&sink->dropped, 1, memory_order_relaxed);
      shk__watch_sink_overflow(sink, rec.time_ns);
    }
    /* Recorded first, then the writer is let go: the worker cannot miss its write. */
    uintptr_t page = addr & ~(uintptr_t)(w->page_size - 1);
    shk__os_uffd_protect(w->uffd, (void *)page, w->page_size, false);
  }
}

static int open_uffd(shk_watcher *w) {
  bool sync = w->opts.userfaultfd_sync || !shk__os_has(SHK__OS_UFFD_WP_ASYNC);
  int rc = shk__os_uffd_open(sync, &w->uffd);
  if (rc != SHK_OK) return rc;
  w->uffd_sync = sync;
  if (!sync) atomic_fetch_add(&async_users, 1);
  if (sync) {
    atomic_store(&w->uffd_stop, false);
    rc = shk__os_thread_start(&w->uffd_reader, reader_main, w);
    if (rc != SHK_OK) {
      shk__os_uffd_close(w->uffd);
      w->uffd = NULL;
      w->uffd_reader = NULL;
    }
  }
  return rc;
}

void shk__watch_uffd_shutdown(shk_watcher *w) {
  if (w->uffd_reader) {
    atomic_store(&w->uffd_stop, true);
    shk__os_thread_join(w->uffd_reader);
    w->uffd_reader = NULL;
  }
  if (w->uffd && !w->uffd_sync) atomic_fetch_sub(&async_users, 1);
  shk__os_uffd_close(w->uffd);
  w->uffd = NULL;
}

static int attach(shk_watcher *w, shk__watch_region *r) {
  /* Write-protect on memory that cannot be written would watch nothing. */
  if (!shk__watch_region_writable(r)) return SHK_EACCES;
  if (!w->uffd) {
    int rc = open_uffd(w);
    if (rc != SHK_OK) return rc;
  }
  if (!shk__watch_areas_take()) return SHK_ELIMIT;
  int rc = shk__os_uffd_add(w->uffd, (void *)r->page_start, r->page_end - r->page_start);
  if (rc != SHK_OK) {
    shk__watch_areas_give();
    return rc == SHK_ENOMEM ? SHK_ELIMIT : rc;
  }
  r->holds_area = true;
  if (w->uffd_sync) r->ops = &shk__watch_backend_userfaultfd_sync;
  return SHK_OK;
}

static int detach(shk_watcher *w, shk__watch_region *r, uintptr_t es, uintptr_t ee) {
  (void)r;
  /* Unprotecting also wakes a writer the reader thread has not reached yet. */
  if (ee > es) shk__os_uffd_remove(w->uffd, (void *)es, ee - es);
  return SHK_OK; /* what the kernel refuses here is not reported yet (shk__os_uffd_remove) */
}

static void scan_regions(shk_watcher *w);

/* One scan from the first region to the last (the kernel passes over the areas in between, which
 * no other async watcher of shmkit can own while this is the only one): 30,000 scattered
 * regions cost one system call per pass instead of 30,000. */
static bool scan_at_once(shk_watcher *w) {
  if (atomic_load(&async_users) != 1) return false;
  uintptr_t start = UINTPTR_MAX, end = 0;
  for (size_t i = 0; i < w->count; i++) {
    const shk__watch_region *r = w->regions[i];
    if (r->ops != &shk__watch_backend_userfaultfd) continue;
    if (r->page_start < start) start = r->page_start;
    if (r->page_end > end) end = r->page_end;
  }
  if (end > start)
    shk__os_uffd_scan(w->uffd, (void *)start, end - start, true, shk__watch_mark_pages_cb, w);
  return true;
}

static void scan(shk_watcher *w, uint64_t now, bool force) {
  /* A scan walks every area of the range: with tens of thousands of regions it takes
   * milliseconds; nothing is lost by scanning less often. */
  uint64_t t0;
  if (!shk__watch_scan_start(w->uffd_scan_due_ns, now, force, &t0)) return;
  scan_regions(w);
  shk__watch_scan_done(&w->uffd_scan_due_ns, t0);
}

static void scan_regions(shk_watcher *w) {
  if (scan_at_once(w)) return;
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
    shk__os_uffd_scan(w->uffd, (void *)start, end - start, false, shk__watch_mark_pages_cb, w);
    i = j;
  }
}

static int rearm(shk_watcher *w, uintptr_t addr, size_t size, int prot) {
  (void)prot; /* write-protect leaves the page's own protection alone */
  return shk__os_uffd_protect(w->uffd, (void *)addr, size, true);
}

const shk__watch_backend_ops shk__watch_backend_userfaultfd = {
    SHK_WATCH_USERFAULTFD, available, NULL, attach, detach, scan, NULL, NULL};

const shk__watch_backend_ops shk__watch_backend_userfaultfd_sync = {
    SHK_WATCH_USERFAULTFD, available, NULL, attach, detach, NULL, rearm, NULL};
