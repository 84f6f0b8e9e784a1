/* The watcher's worker thread: drains the fault ring, lets scanning backends report written
 * pages, and after the coalescing window protects the pages again, then compares them with the
 * region's copy (in that order, so a write that lands during the compare faults again and is
 * not lost), builds the events and calls the callback outside the watcher lock. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lens_hook.h"
#include "watch_internal.h"

size_t shk__watch_first_region(shk_watcher *w, uintptr_t addr) {
  size_t lo = 0, hi = w->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const shk__watch_region *r = w->regions[mid];
    if (r->addr + r->size <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

SHK__RACY_READ void shk__watch_copy_in(void *dst, const void *watched, size_t n) {
  unsigned char *d = dst;
  const volatile unsigned char *s = watched;
  for (size_t i = 0; i < n; i++) d[i] = s[i];
}

/* First and last differing byte of watched memory against the copy; false when equal. Compares
 * word by word where it can (a region of a few MiB in well under a millisecond): the copy is
 * allocated with the same alignment modulo 8 as the region, so both sides align together. */
#define WORD(p) (*(const volatile uint64_t *)(const volatile void *)(p))
SHK__RACY_READ static bool diff(const unsigned char *mem, const unsigned char *copy, size_t n,
                               size_t *first, size_t *last) {
  const volatile unsigned char *m = mem;
  size_t i = 0;
  while (i < n && ((uintptr_t)(mem + i) & 7) != 0 && m[i] == copy[i]) i++;
  if (((uintptr_t)(mem + i) & 7) == 0)
    while (i + 8 <= n && WORD(mem + i) == WORD(copy + i)) i += 8;
  while (i < n && m[i] == copy[i]) i++;
  if (i == n) return false;
  *first = i;
  size_t j = n;
  while (j > i && ((uintptr_t)(mem + j) & 7) != 0 && m[j - 1] == copy[j - 1]) j--;
  if (((uintptr_t)(mem + j) & 7) == 0)
    while (j >= i + 8 && WORD(mem + j - 8) == WORD(copy + j - 8)) j -= 8;
  while (j > i && m[j - 1] == copy[j - 1]) j--;
  *last = j - 1;
  return true;
}
#undef WORD

static void set_dirty(shk__watch_region *r, size_t page_index, uint64_t t) {
  unsigned char bit = (unsigned char)(1u << (page_index & 7));
  if (!(r->dirty[page_index >> 3] & bit)) {
    r->dirty[page_index >> 3] |= bit;
    r->dirty_count++;
  }
  if (r->first_ns == 0) r->first_ns = t ? t : 1;
}

void shk__watch_mark_pages(shk_watcher *w, uintptr_t page, size_t pages, uint64_t now) {
  uintptr_t end = page + pages * w->page_size;
  for (size_t i = shk__watch_first_region(w, page); i < w->count; i++) {
    shk__watch_region *r = w->regions[i];
    if (r->addr >= end) break;
    uintptr_t p = SHK__MAX(page, r->page_start), e = SHK__MIN(end, r->page_end);
    for (; p < e; p += w->page_size) set_dirty(r, (p - r->page_start) / w->page_size, now);
  }
}

bool shk__watch_scan_start(uint64_t due_ns, uint64_t now, bool force, uint64_t *t0) {
  if (!force && now < due_ns) return false;
  *t0 = shk__os_now_ns();
  return true;
}

void shk__watch_scan_done(uint64_t *due_ns, uint64_t t0) {
  uint64_t t1 = shk__os_now_ns();
  *due_ns = t1 + 9 * (t1 - t0);
}

void shk__watch_mark_pages_cb(uintptr_t page, size_t pages, void *ctx) {
  shk__watch_mark_pages(ctx, page, pages, shk__os_now_ns());
}

static void take_record(shk_watcher *w, const shk__watch_record *rec) {
  uintptr_t page = rec->addr & ~(uintptr_t)(w->page_size - 1);
  shk__watch_mark_pages(w, page, 1, rec->time_ns);
  size_t i = shk__watch_first_region(w, rec->addr);
  if (i == w->count || w->regions[i]->addr > rec->addr) return; /* unwatched bytes */
  shk__watch_region *r = w->regions[i];
  r->fault_count++;
  if (!r->has_fault) {
    r->has_fault = true;
    r->fault_addr = rec->addr;
    r->ip = rec->ip;
    r->tid = rec->tid;
    if (rec->time_ns && rec->time_ns < r->first_ns) r->first_ns = rec->time_ns;
  }
}

/* After dropped records, every protected page may be open: close them all, compare all, once
 * the coalescing window after the first lost record has passed (like any other burst: a burst
 * that overflowed the ring is still one event per region). */
static void resync(shk_watcher *w, uint64_t since) {
  w->resyncs++;
  for (size_t i = 0; i < w->count; i++) {
    shk__watch_region *r = w->regions[i];
    if (!r->ops->rearm) continue;
    r->resync = true;
    shk__watch_mark_pages(w, r->page_start, (r->page_end - r->page_start) / w->page_size, since);
    if (since < r->first_ns) r->first_ns = since;
  }
}

/* Appends bytes to the batch arena, aligned like malloc memory so a callback may read an
 * old/new value through a pointer to its own struct type; returns the offset, or SIZE_MAX
 * without memory. (The arena itself comes from realloc, hence malloc alignment.) */
static size_t arena_put(shk_watcher *w, const void *data, size_t n) {
  size_t align = SHK__MAX_ALIGN;
  size_t off = (w->arena_len + align - 1) & ~(align - 1);
  if (off > SIZE_MAX - n) return SIZE_MAX;
  if (off + n > w->arena_cap) {
    size_t cap = w->arena_cap ? w->arena_cap : 4096;
    while (cap < off + n) {
      if (cap > SIZE_MAX / 2) return SIZE_MAX;
      cap *= 2;
    }
    unsigned char *grown = shk__realloc(w->arena, cap);
    if (!grown) return SIZE_MAX;
    w->arena = grown;
    w->arena_cap = cap;
  }
  memcpy(w->arena + off, data, n);
  w->arena_len = off + n;
  return off;
}

static shk__watch_batch_entry *batch_add(shk_watcher *w) {
  if (w->batch_count == w->batch_cap) {
    size_t cap = w->batch_cap ? w->batch_cap * 2 : 64;
    shk__watch_batch_entry *grown = shk__realloc(w->batch, cap * sizeof *grown);
    if (!grown) return NULL;
    w->batch = grown;
    w->batch_cap = cap;
  }
  shk__watch_batch_entry *p = &w->batch[w->batch_count++];
  memset(p, 0xff, sizeof *p); /* offsets SIZE_MAX = absent */
  memset(&p->ev, 0, sizeof p->ev);
  return p;
}

/* Calls fn for each run of dirty pages of r, as byte ranges clipped to the region. */
typedef bool (*run_fn)(shk_watcher *w, shk__watch_region *r, uintptr_t page, size_t pages,
                       void *ctx);
static bool each_run(shk_watcher *w, shk__watch_region *r, run_fn fn, void *ctx) {
  size_t pages = (r->page_end - r->page_start) / w->page_size;
  for (size_t p = 0; p < pages;) {
    if (!(r->dirty[p >> 3] & (1u << (p & 7)))) {
      p++;
      continue;
    }
    size_t q = p;
    while (q < pages && (r->dirty[q >> 3] & (1u << (q & 7)))) q++;
    if (!fn(w, r, r->page_start + p * w->page_size, q - p, ctx)) return false;
    p = q;
  }
  return true;
}

/* Pages to protect again, merged across regions so that a pass over many small neighbouring
 * regions makes one protection call per run of pages, not one per region: each call costs a
 * TLB shootdown on the writers' CPUs. */
typedef struct rearm_batch {
  const shk__watch_backend_ops *ops;
  int prot;
  uintptr_t start, end;
  bool failed;
} rearm_batch;

static void rearm_flush(shk_watcher *w, rearm_batch *b) {
  if (b->end > b->start && b->ops->rearm(w, b->start, b->end - b->start, b->prot) != SHK_OK)
    b->failed = true;
  b->start = b->end = 0;
}

static bool rearm_run(shk_watcher *w, shk__watch_region *r, uintptr_t page, size_t pages,
                      void *ctx) {
  rearm_batch *b = ctx;
  uintptr_t end = page + pages * w->page_size;
  if (b->end > b->start && b->ops == r->ops && b->prot == r->prot && page <= b->end &&
      end >= b->start) {
    b->start = SHK__MIN(b->start, page);
    b->end = SHK__MAX(b->end, end);
  } else {
    rearm_flush(w, b);
    b->ops = r->ops;
    b->prot = r->prot;
    b->start = page;
    b->end = end;
  }
  return true;
}

typedef struct span_diff {
  bool any;
  size_t lo, hi; /* region offsets, hi exclusive */
} span_diff;

static bool diff_run(shk_watcher *w, shk__watch_region *r, uintptr_t page, size_t pages,
                     void *ctx) {
  span_diff *d = ctx;
  uintptr_t a = SHK__MAX(page, r->addr);
  uintptr_t e = SHK__MIN(page + pages * w->page_size, r->addr + r->size);
  if (e <= a) return true;
  size_t off = a - r->addr, first, last;
  if (diff((const unsigned char *)a, r->shadow + off, e - a, &first, &last)) {
    if (!d->any || off + first < d->lo) d->lo = off + first;
    if (!d->any || off + last + 1 > d->hi) d->hi = off + last + 1;
    d->any = true;
  }
  return true;
}

static void clear_dirty(shk_watcher *w, shk__watch_region *r) {
  size_t pages = (r->page_end - r->page_start) / w->page_size;
  memset(r->dirty, 0, (pages + 7) / 8);
  r->dirty_count = 0;
  r->first_ns = 0;
  r->resync = false;
  r->has_fault = false;
  r->fault_count = 0;
}

/* File, function and line of the writing instruction, where debug information tells. */
static void source(shk_watcher *w, shk__watch_batch_entry *p, uintptr_t ip) {
  char file[512], function[256];
  unsigned line = 0;
  int rc = shk__os_source_line(ip, file, sizeof file, function, sizeof function, &line);
  if (function[0]) p->function_off = arena_put(w, function, strlen(function) + 1);
  if (rc != SHK_OK) return;
  p->file_off = arena_put(w, file, strlen(file) + 1);
  p->ev.line = line;
  if (p->file_off != SIZE_MAX) p->ev.flags |= SHK_WATCH_EVENT_SOURCE;
}

static void emit(shk_watcher *w, shk__watch_region *r, size_t lo, size_t hi, uint64_t first_ns) {
  shk__watch_batch_entry *p = batch_add(w);
  if (!p) return;
  shk_watch_event *ev = &p->ev;
  size_t len = hi - lo, plen = SHK__MIN(len, w->opts.preview_size);
  unsigned char *mem = (unsigned char *)r->addr;
  ev->time_ns = first_ns;
  ev->region_id = r->id;
  ev->region_addr = mem;
  ev->region_size = r->size;
  ev->offset = lo;
  ev->length = len;
  ev->backend = r->backend;
  ev->fault_count = r->fault_count;
  p->name_off = arena_put(w, r->name, strlen(r->name) + 1);
  ev->buffer_id = r->buffer_id;
  if (r->buffer_allocator)
    p->allocator_off = arena_put(w, r->buffer_allocator, strlen(r->buffer_allocator) + 1);
  if (r->size <= w->opts.inline_threshold) {
    ev->flags |= SHK_WATCH_EVENT_INLINE;
    p->old_off = arena_put(w, r->shadow, r->size);
    shk__watch_copy_in(r->shadow + lo, mem + lo, len);
    p->new_off = arena_put(w, r->shadow, r->size);
    if (p->old_off != SIZE_MAX) p->oldp_off = p->old_off + lo;
    if (p->new_off != SIZE_MAX) p->newp_off = p->new_off + lo;
  } else {
    p->oldp_off = arena_put(w, r->shadow + lo, plen);
    ev->old_key = shk__watch_store_put(&w->store, r->shadow + lo, len);
    shk__watch_copy_in(r->shadow + lo, mem + lo, len);
    p->newp_off = arena_put(w, r->shadow + lo, plen);
    ev->new_key = shk__watch_store_put(&w->store, r->shadow + lo, len);
    if (ev->old_key && ev->new_key) ev->flags |= SHK_WATCH_EVENT_STORED;
  }
  ev->preview_length = plen;
  if (r->resync) ev->flags |= SHK_WATCH_EVENT_RESYNC;
  if (r->has_fault) {
    ev->fault_address = r->fault_addr;
    ev->thread_id = r->tid;
    ev->ip = r->ip;
    ev->flags |= SHK_WATCH_EVENT_FAULT_ADDRESS | SHK_WATCH_EVENT_THREAD;
    if (r->ip) ev->flags |= SHK_WATCH_EVENT_IP;
    char module[512], symbol[256];
    if (r->ip && w->opts.resolve_symbols &&
        shk__os_symbolize(r->ip, module, sizeof module, symbol, sizeof symbol) == SHK_OK) {
      if (module[0]) p->module_off = arena_put(w, module, strlen(module) + 1);
      if (symbol[0]) p->symbol_off = arena_put(w, symbol, strlen(symbol) + 1);
      source(w, p, r->ip);
    }
  }
}

/* Compares a due region (already protected again) and emits its event. */
static void process(shk_watcher *w, shk__watch_region *r, uint64_t now, bool armed) {
  uint64_t first_ns = r->first_ns;
  span_diff d = {false, 0, 0};
  each_run(w, r, diff_run, &d);
  if (d.any) emit(w, r, d.lo, d.hi, first_ns);
  clear_dirty(w, r);
  /* Pages that could not be closed again are compared on every pass instead. */
  if (!armed) shk__watch_mark_pages(w, r->page_start, (r->page_end - r->page_start) / w->page_size, now);
}

void shk__watch_worker_pass(shk_watcher *w, bool force) {
  uint64_t now = shk__os_now_ns();
  uint64_t window = (uint64_t)w->opts.coalesce_ms * 1000000u;
  static const shk_watch_backend scanners[] = {SHK_WATCH_USERFAULTFD, SHK_WATCH_WRITE_WATCH,
                                               SHK_WATCH_POLL};
  for (size_t i = 0; i < SHK__ARRAY_LEN(scanners); i++) {
    const shk__watch_backend_ops *ops = shk__watch_backend_ops_of(scanners[i]);
    if (ops->scan) ops->scan(w, now, force);
  }
  if (w->custom_ops && w->custom_ops->scan) w->custom_ops->scan(w, now, force);
  /* The ring after the scans: a backend of one's own may report through it there. */
  shk__watch_record rec;
  while (shk__watch_ring_pop(&w->sink->ring, &rec)) take_record(w, &rec);
  if (atomic_exchange(&w->sink->overflow, 0)) {
    uint64_t since = atomic_exchange(&w->sink->overflow_ns, 0);
    resync(w, since && since <= now ? since : now);
  }
  /* Which regions are due; their pages are protected again (all of them, merged) before any
   * of them is compared, so a write racing with the comparison faults and is not lost. */
  rearm_batch batch = {NULL, 0, 0, 0, false};
  bool any = false;
  for (size_t i = 0; i < w->count; i++) {
    shk__watch_region *r = w->regions[i];
    /* Every backend waits for the window after the first write it noticed, so a burst becomes
     * one event (scanning backends notice at their scan, fault backends at the fault). */
    r->due = r->dirty_count > 0 && (force || (now >= r->first_ns && now - r->first_ns >= window));
    if (!r->due) continue;
    any = true;
    if (r->ops->rearm) each_run(w, r, rearm_run, &batch);
  }
  if (!any) return;
  rearm_flush(w, &batch);
  for (size_t i = 0; i < w->count; i++) {
    shk__watch_region *r = w->regions[i];
    if (r->due) process(w, r, now, !(batch.failed && r->ops->rearm));
    r->due = false;
  }
}

/* Calls the callback for each event of the batch (worker thread, watcher lock not held). */
static void deliver(shk_watcher *w) {
  shk__os_mutex_lock(&w->deliver_lock);
  for (size_t i = 0; i < w->batch_count; i++) {
    shk__watch_batch_entry *p = &w->batch[i];
    shk_watch_event *ev = &p->ev;
#define SHK_ARENA_PTR_(off) ((off) == SIZE_MAX ? NULL : (const void *)(w->arena + (off)))
    ev->region_name = p->name_off == SIZE_MAX ? "" : (const char *)SHK_ARENA_PTR_(p->name_off);
    ev->old_value = SHK_ARENA_PTR_(p->old_off);
    ev->new_value = SHK_ARENA_PTR_(p->new_off);
    ev->old_preview = SHK_ARENA_PTR_(p->oldp_off);
    ev->new_preview = SHK_ARENA_PTR_(p->newp_off);
    ev->module = SHK_ARENA_PTR_(p->module_off);
    ev->symbol = SHK_ARENA_PTR_(p->symbol_off);
    ev->file = SHK_ARENA_PTR_(p->file_off);
    ev->function = SHK_ARENA_PTR_(p->function_off);
    ev->buffer_allocator = SHK_ARENA_PTR_(p->allocator_off);
    if (!ev->file) ev->line = 0;
#undef SHK_ARENA_PTR_
    if (!ev->old_value || !ev->new_value) ev->flags &= ~SHK_WATCH_EVENT_INLINE;
    if (!ev->old_preview || !ev->new_preview) ev->preview_length = 0;
    shk__os_mutex_lock(&w->lock);
    shk_watch_fn fn = w->fn;
    void *user = w->user;
    ev->seq = ++w->seq;
    if (fn) w->delivered++;
    else w->unobserved++;
    shk__os_mutex_unlock(&w->lock);
    SHK__LENS_WATCH_EVENT(ev);
    if (fn) fn(ev, user);
  }
  w->batch_count = 0;
  w->arena_len = 0;
  shk__os_mutex_unlock(&w->deliver_lock);
}

void shk__watch_worker_main(void *arg) {
  shk_watcher *w = arg;
  atomic_store(&w->worker_tid, shk__os_thread_id());
  uint64_t tick_ms = SHK__MIN(w->opts.coalesce_ms, w->opts.poll_interval_ms);
  if (tick_ms == 0) tick_ms = 1;
  shk__os_mutex_lock(&w->lock);
  while (!w->stop) {
    uint64_t ticket = w->flush_req;
    bool force = ticket > w->flush_done;
    shk__watch_worker_pass(w, force);
    shk__os_mutex_unlock(&w->lock);
    deliver(w);
    shk__os_mutex_lock(&w->lock);
    if (force) {
      w->flush_done = ticket;
      shk__os_cond_broadcast(&w->flushed);
    }
    if (!w->stop && w->flush_req == w->flush_done)
      shk__os_cond_timedwait(&w->wake, &w->lock, tick_ms * 1000000u);
  }
  shk__os_cond_broadcast(&w->flushed);
  shk__os_mutex_unlock(&w->lock);
}
