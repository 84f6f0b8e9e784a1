/* Backends of users' own: the internal ops that call a registered table, and the public way a
 * backend records single writes into a watcher's fault ring. */
#include "watch_internal.h"
#include "debug.h"

static bool always(void) { return true; }

static int attach(shk_watcher *w, shk__watch_region *r) {
  const shk_watch_backend_table *t = r->ops->custom;
  r->custom_state = NULL;
  return t->attach(t->user, w, (void *)r->addr, r->size, &r->custom_state);
}

static int detach(shk_watcher *w, shk__watch_region *r, uintptr_t es, uintptr_t ee) {
  (void)w, (void)es, (void)ee;
  const shk_watch_backend_table *t = r->ops->custom;
  if (t->detach) t->detach(t->user, r->custom_state);
  return SHK_OK;
}

static void written(void *ctx, const void *addr, size_t size) {
  shk_watcher *w = ctx;
  if (size == 0) return;
  uintptr_t a = (uintptr_t)addr, page = a & ~(uintptr_t)(w->page_size - 1);
  uintptr_t end = shk__round_up(a + size, w->page_size);
  if (end > page) shk__watch_mark_pages(w, page, (end - page) / w->page_size, shk__os_now_ns());
}

static void scan(shk_watcher *w, uint64_t now, bool force) {
  (void)now;
  const shk__watch_backend_ops *ops = w->custom_ops;
  if (!ops || !ops->custom->scan) return;
  const shk_watch_backend_table *t = ops->custom;
  for (size_t i = 0; i < w->count; i++) {
    shk__watch_region *r = w->regions[i];
    if (r->ops == ops) t->scan(t->user, r->custom_state, (void *)r->addr, r->size, force, written, w);
  }
}

static int rearm(shk_watcher *w, uintptr_t addr, size_t size, int prot) {
  (void)prot;
  const shk_watch_backend_table *t = w->custom_ops->custom;
  return t->rearm ? t->rearm(t->user, (void *)addr, size) : SHK_OK;
}

void shk__watch_custom_ops_init(shk__watch_backend_ops *ops, const shk_watch_backend_table *t) {
  ops->kind = SHK_WATCH_CUSTOM;
  ops->available = always; /* the table's own available() is asked with its user pointer */
  ops->accepts = NULL;
  ops->attach = attach;
  ops->detach = detach;
  ops->scan = scan;
  /* Every region of such a backend is compared after an overflow (its writes may have gone
   * through the ring): rearm marks it so, and does nothing else without the table's. */
  ops->rearm = rearm;
  ops->custom = t;
}

static int watch_report_write_impl(shk_watcher *w, const void *addr, uintptr_t ip,
                                   uint64_t thread_id) {
  if (!w) return SHK_EINVAL;
  shk__watch_sink *sink = w->sink;
  uint64_t now = shk__os_now_ns();
  shk__watch_record rec = {(uintptr_t)addr, ip, thread_id, now};
  atomic_fetch_add_explicit(&sink->faults, 1, memory_order_relaxed);
  if (shk__watch_ring_push(&sink->ring, &rec)) return SHK_OK;
  atomic_fetch_add_explicit(&sink->dropped, 1, memory_order_relaxed);
  shk__watch_sink_overflow(sink, now);
  return SHK_ELIMIT;
}

int shk_watch_report_write(shk_watcher *w, const void *addr, uintptr_t ip, uint64_t thread_id) {
  int rc = watch_report_write_impl(w, addr, ip, thread_id);
  /* SHK_ELIMIT: the ring was full, the drop counted (stats), not a failure of the call */
  return rc != SHK_ELIMIT ? SHK__DEBUG_RET(SHK__DEBUG_WATCH, rc) : rc;
}
