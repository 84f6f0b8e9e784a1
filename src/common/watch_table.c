/* The process-wide table of protected spans that the fault path reads without locks: immutable
 * sorted chunks under an immutable list, replaced by writers and freed once no handler can be
 * reading them. Also the reference count of the OS hook and the budget of memory areas that
 * protection may split. */
#include <stdlib.h>
#include <string.h>

#include "watch_internal.h"

typedef shk__watch_span span;

/* Spans live in chunks of at most CHUNK_MAX, sorted by (start, end); a table is the sorted list
 * of chunks. Both are immutable once published: a writer copies the one chunk it changes and
 * the list of chunk pointers (a few kilobytes for 30,000 spans), publishes, and frees the
 * old ones once no fault handler is inside. Adding 40,000 spans copies about 100 MB instead of
 * the 25 GB a flat array needs. */
#define CHUNK_MAX 128
typedef struct chunk {
  size_t count;
  span spans[CHUNK_MAX];
} chunk;

typedef struct table {
  size_t count; /* chunks, none of them empty */
  chunk *chunks[];
} table;

/* Writers take SHK__LOCK_WATCH_TABLE (process_state.c). */
static _Atomic(table *) current;
static atomic_uint readers;
static bool hook_installed;
static size_t areas_budget, areas_used;
static bool areas_known;

static void lock(void) { shk__lock(SHK__LOCK_WATCH_TABLE); }

static void unlock(void) { shk__unlock(SHK__LOCK_WATCH_TABLE); }

static bool before(const span *a, uintptr_t start, uintptr_t end) {
  return a->start < start || (a->start == start && a->end < end);
}

/* In chunk c, the number of spans with start <= addr. */
static size_t upto(const chunk *c, uintptr_t addr) {
  size_t lo = 0, hi = c->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c->spans[mid].start <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* The last span with start <= addr, if it contains addr, else NULL. Regions of one watcher
 * never overlap, so a span that starts later and ends before addr cannot hide an earlier one
 * containing it. */
static const span *find(const table *t, uintptr_t addr) {
  size_t lo = 0, hi = t->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->chunks[mid]->spans[0].start <= addr) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return NULL;
  const chunk *c = t->chunks[lo - 1];
  const span *s = &c->spans[upto(c, addr) - 1];
  return addr < s->end ? s : NULL;
}

/* Where (start, end) goes: chunk *ci, index *si inside it (the first span not before it). */
static void position(const table *t, uintptr_t start, uintptr_t end, size_t *ci, size_t *si) {
  size_t lo = 0, hi = t ? t->count : 0;
  while (lo < hi) { /* the last chunk whose first span is before (start, end) */
    size_t mid = lo + (hi - lo) / 2;
    if (before(&t->chunks[mid]->spans[0], start, end)) lo = mid + 1;
    else hi = mid;
  }
  *ci = lo ? lo - 1 : 0;
  *si = 0;
  if (!t || t->count == 0) return;
  const chunk *c = t->chunks[*ci];
  size_t a = 0, b = c->count;
  while (a < b) {
    size_t mid = a + (b - a) / 2;
    if (before(&c->spans[mid], start, end)) a = mid + 1;
    else b = mid;
  }
  *si = a;
  /* Past the end of a chunk: the first span of the next one (which may equal (start, end)). */
  if (a == c->count && *ci + 1 < t->count) {
    (*ci)++;
    *si = 0;
  }
}

/* Whether a span of another sink overlaps [start, end), looking back from the position where
 * it goes. Spans of different sinks are disjoint, and a span of one sink that starts inside
 * another of the same sink starts on its last page: walking back, the first span that ends at
 * or before `start` has no earlier span overlapping. */
static bool overlaps_other(const table *t, const shk__watch_sink *sink, uintptr_t start,
                           uintptr_t end, size_t ci, size_t si) {
  if (!t) return false;
  /* Spans at and after the position that start before `end`. */
  for (size_t c = ci; c < t->count; c++) {
    const chunk *ch = t->chunks[c];
    for (size_t i = c == ci ? si : 0; i < ch->count; i++) {
      if (ch->spans[i].start >= end) return false; /* sorted: nothing further */
      if (ch->spans[i].sink != sink) return true;
    }
  }
  return false;
}

static bool overlaps_before(const table *t, const shk__watch_sink *sink, uintptr_t start,
                            size_t ci, size_t si) {
  if (!t) return false;
  for (size_t c = ci + 1; c-- > 0;) {
    const chunk *ch = t->chunks[c];
    for (size_t i = c == ci ? si : ch->count; i-- > 0;) {
      if (ch->spans[i].end <= start) return false;
      if (ch->spans[i].sink != sink) return true;
    }
  }
  return false;
}

/* Replaces the table, waits until no fault handler is inside the old one, then frees it and
 * the chunk it no longer shares (writers only, lock held). */
static void publish(table *next, table *old, chunk *gone) {
  shk__watch_protection_changed();
  atomic_store(&current, next);
  while (atomic_load(&readers) != 0) shk__os_yield();
  free(old);
  free(gone);
}

/* A copy of t's chunk list with chunk ci replaced by `n` chunks (0, 1 or 2). */
static table *relist(const table *t, size_t ci, chunk *const *with, size_t n) {
  size_t old = t ? t->count : 0, drop = old ? 1 : 0;
  table *next = shk__malloc(sizeof *next + (old - drop + n) * sizeof(chunk *));
  if (!next) return NULL;
  next->count = old - drop + n;
  if (old) memcpy(next->chunks, t->chunks, ci * sizeof(chunk *));
  memcpy(next->chunks + ci, with, n * sizeof(chunk *));
  if (old > ci + 1) memcpy(next->chunks + ci + n, t->chunks + ci + 1, (old - ci - 1) * sizeof(chunk *));
  return next;
}

int shk__watch_table_add(shk__watch_sink *sink, uintptr_t start, uintptr_t end, int prot) {
  lock();
  table *t = atomic_load(&current);
  size_t ci, si;
  position(t, start, end, &ci, &si);
  if (overlaps_other(t, sink, start, end, ci, si) || overlaps_before(t, sink, start, ci, si)) {
    unlock();
    return SHK_EOVERLAP;
  }
  const chunk *old = t && t->count ? t->chunks[ci] : NULL;
  size_t n = old ? old->count : 0;
  chunk *parts[2] = {shk__malloc(sizeof(chunk)), n + 1 > CHUNK_MAX ? shk__malloc(sizeof(chunk)) : NULL};
  size_t count = parts[1] ? 2 : 1;
  table *next = parts[0] && (count == 1 || parts[1]) ? relist(t, ci, parts, count) : NULL;
  if (!next) {
    free(parts[0]);
    free(parts[1]);
    unlock();
    return SHK_ENOMEM;
  }
  /* The n old spans and the new one at si, split in halves when they do not fit in one. */
  size_t first = count == 2 ? (n + 1) / 2 : n + 1;
  parts[0]->count = first;
  if (count == 2) parts[1]->count = n + 1 - first;
  for (size_t k = 0, from = 0; k <= n; k++) {
    span *to = k < first ? &parts[0]->spans[k] : &parts[1]->spans[k - first];
    *to = k == si ? (span){start, end, sink, prot} : old->spans[from++];
  }
  publish(next, t, (chunk *)old);
  unlock();
  return SHK_OK;
}

/* The chunk holding sink's span (start, end) and its index there; NULL when there is none
 * (lock held). */
static chunk *locate(const table *t, const shk__watch_sink *sink, uintptr_t start, uintptr_t end,
                     size_t *ci, size_t *si) {
  position(t, start, end, ci, si);
  /* Equal spans of other sinks cannot exist (they would overlap), but look past them anyway. */
  chunk *c = t && t->count ? t->chunks[*ci] : NULL;
  while (c && *si < c->count && c->spans[*si].start == start && c->spans[*si].end == end &&
         c->spans[*si].sink != sink)
    (*si)++;
  if (!c || *si >= c->count || c->spans[*si].start != start || c->spans[*si].end != end)
    return NULL;
  return c;
}

void shk__watch_table_remove(shk__watch_sink *sink, uintptr_t start, uintptr_t end) {
  lock();
  table *t = atomic_load(&current);
  size_t ci, si;
  chunk *c = locate(t, sink, start, end, &ci, &si);
  if (!c) {
    unlock();
    return;
  }
  chunk *part = c->count > 1 ? shk__malloc(sizeof(chunk)) : NULL;
  table *next = c->count == 1 || part ? relist(t, ci, &part, part ? 1 : 0) : NULL;
  if (!next) {
    /* No memory for smaller copies: neutralise the entry in place. Handlers read either the
     * old sink or an empty span; both are safe because the sink outlives this call. */
    free(part);
    c->spans[si].end = c->spans[si].start;
    unlock();
    return;
  }
  if (part) {
    part->count = c->count - 1;
    memcpy(part->spans, c->spans, si * sizeof(span));
    memcpy(part->spans + si, c->spans + si + 1, (c->count - si - 1) * sizeof(span));
  }
  if (next->count == 0) {
    free(next);
    next = NULL;
  }
  publish(next, t, c);
  unlock();
}

/* The sink of spans whose pages could not be opened when their watcher let them go: it outlives
 * every watcher, so the fault path can still open such a page on its next write. Its ring
 * (static slots, one record) only ever fills and counts drops: nobody drains it. */
static shk__watch_slot orphan_slots[2];
static shk__watch_sink orphan_sink;
static size_t orphan_spans;

void shk__watch_table_orphan(shk__watch_sink *sink, uintptr_t start, uintptr_t end) {
  lock();
  if (!orphan_sink.ring.slots) {
    for (size_t i = 0; i < 2; i++) atomic_init(&orphan_slots[i].seq, i);
    orphan_sink.ring.slots = orphan_slots;
    orphan_sink.ring.mask = 1;
    orphan_sink.ring.limit = 1;
    orphan_sink.page_size = sink->page_size;
  }
  table *t = atomic_load(&current);
  size_t ci, si;
  chunk *c = locate(t, sink, start, end, &ci, &si);
  if (!c) {
    unlock();
    return;
  }
  /* A copy of the chunk with the span handed over, published like any change; without memory
   * for it, the one pointer is changed in place (a handler reads the old sink or the new one,
   * and the old one is not freed before the readers are gone, below). */
  chunk *part = shk__malloc(sizeof(chunk));
  table *next = part ? relist(t, ci, &part, 1) : NULL;
  orphan_spans++;
  if (!next) {
    free(part);
    c->spans[si].sink = &orphan_sink;
    while (atomic_load(&readers) != 0) shk__os_yield();
    unlock();
    return;
  }
  memcpy(part, c, sizeof(chunk));
  part->spans[si].sink = &orphan_sink;
  publish(next, t, c);
  unlock();
}

size_t shk__watch_table_orphans(void) {
  lock();
  size_t n = orphan_spans;
  unlock();
  return n;
}

const shk__watch_span *shk__watch_table_enter(uintptr_t addr) {
  atomic_fetch_add(&readers, 1);
  const table *t = atomic_load(&current);
  return t ? find(t, addr) : NULL;
}

void shk__watch_table_exit(void) { atomic_fetch_sub(&readers, 1); }

int shk__watch_hook_acquire(void) {
  lock();
  int rc = SHK_OK;
  if (!hook_installed) rc = shk__os_fault_install(shk__watch_on_fault);
  if (rc == SHK_OK) hook_installed = true;
  unlock();
  return rc;
}

/* Each protected span may split an area in three, and each page opened inside it in a burst
 * splits once more; a reserve is kept for the bursts. */
#define AREAS_RESERVE 4096u

bool shk__watch_areas_take(void) {
  lock();
  if (!areas_known) {
    size_t left = shk__os_map_areas_left();
    areas_budget = left == SIZE_MAX ? SIZE_MAX : (left > AREAS_RESERVE ? (left - AREAS_RESERVE) / 2 : 0);
    areas_known = true;
  }
  bool ok = areas_used < areas_budget;
  if (ok) areas_used++;
  unlock();
  return ok;
}

void shk__watch_areas_give(void) {
  lock();
  if (areas_used > 0 && --areas_used == 0) areas_known = false; /* measure again next time */
  unlock();
}
