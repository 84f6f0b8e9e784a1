/* The poll backend: every poll interval the worker compares whole regions with their copies.
 * Works on any memory, including shared segments written by other processes. */
#include "watch_internal.h"

static bool available(void) { return true; }

static void scan(shk_watcher *w, uint64_t now, bool force) {
  if (!force && now - w->last_poll_ns < (uint64_t)w->opts.poll_interval_ms * 1000000u) return;
  w->last_poll_ns = now;
  for (size_t i = 0; i < w->count; i++) {
    shk__watch_region *r = w->regions[i];
    if (r->ops != &shk__watch_backend_poll) continue;
    shk__watch_mark_pages(w, r->page_start, (r->page_end - r->page_start) / w->page_size, now);
  }
}

const shk__watch_backend_ops shk__watch_backend_poll = {
    SHK_WATCH_POLL, available, NULL, NULL, NULL, scan, NULL, NULL};

const shk__watch_backend_ops *shk__watch_backend_ops_of(shk_watch_backend kind) {
  switch (kind) {
    case SHK_WATCH_MPROTECT: return &shk__watch_backend_mprotect;
    case SHK_WATCH_USERFAULTFD: return &shk__watch_backend_userfaultfd;
    case SHK_WATCH_WRITE_WATCH: return &shk__watch_backend_write_watch;
    default: return &shk__watch_backend_poll;
  }
}
