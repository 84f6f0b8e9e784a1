/* The process-wide table of protected spans that the fault path reads without locks: an
 * immutable sorted array, replaced whole by writers and freed once no handler can be reading
 * it. Also the fault routine itself, the reference count of the OS hook and the budget of
 * memory areas that protection may split. */
#include <stdlib.h>
#include <string.h>

#include "watch_internal.h"

typedef struct span {
  uintptr_t start, end; /* whole pages */
  shk__watch_sink *sink;
} span;

typedef struct table {
  size_t count, cap;
  span spans[]; /* sorted by (start, end) */
} table;

/* Spans withdrawn lately. A thread may fault on a page just before its span is withdrawn and
 * reach the table just after: it is sent back to retry (the page is writable by then) instead
 * of being treated as a crash. Entries expire after GRACE_NS. */
#define GRACE_SLOTS 64
#define GRACE_NS 200000000u
typedef struct grace {
  atomic_uintptr_t start, end;
  atomic_uint_least64_t time_ns;
} grace;

/* Writers take SHK__LOCK_WATCH_TABLE (process_state.c). */
static _Atomic(table *) current;
static table *spare; /* the table replaced last, kept for reuse (writers only) */
static atomic_uint readers;
static grace graces[GRACE_SLOTS];
static unsigned grace_next;
static int hook_users;
static size_t areas_budget, areas_used;
static bool areas_known;

static void lock(void) { shk__lock(SHK__LOCK_WATCH_TABLE); }

static void unlock(void) { shk__unlock(SHK__LOCK_WATCH_TABLE); }

/* The last span with start <= addr, or NULL. Regions of one watcher never overlap, so a span
 * that starts later and ends before addr cannot hide an earlier one containing it. */
static const span *find(const table *t, uintptr_t addr) {
  size_t lo = 0, hi = t->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->spans[mid].start <= addr) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return NULL;
  const span *s = &t->spans[lo - 1];
  return addr < s->end ? s : NULL;
}

static bool before(const span *a, uintptr_t start, uintptr_t end) {
  return a->start < start || (a->start == start && a->end < end);
}

/* Replaces the table; once no fault handler is inside the old one, keeps it for reuse, so that
 * adding thousands of regions does not map and fault in a fresh array each time. */
static void publish(table *next) {
  table *old = atomic_exchange(&current, next);
  while (atomic_load(&readers) != 0) shk__os_yield();
  if (old && (!spare || old->cap > spare->cap)) {
    free(spare);
    spare = old;
  } else {
    free(old);
  }
}

/* A table with room for n spans, the spare when it fits (lock held). */
static table *table_for(size_t n) {
  if (spare && spare->cap >= n) {
    table *t = spare;
    spare = NULL;
    return t;
  }
  size_t cap = n < 16 ? 16 : n + n / 2;
  table *t = malloc(sizeof *t + cap * sizeof(span));
  if (t) t->cap = cap;
  return t;
}

/* The index of the first span not before (start, end). */
static size_t position(const table *t, uintptr_t start, uintptr_t end) {
  size_t lo = 0, hi = t ? t->count : 0;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (before(&t->spans[mid], start, end)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

int shk__watch_table_add(shk__watch_sink *sink, uintptr_t start, uintptr_t end) {
  lock();
  table *t = atomic_load(&current);
  size_t n = t ? t->count : 0;
  for (size_t i = 0; i < n; i++) {
    const span *s = &t->spans[i];
    if (s->start >= end) break; /* sorted by start: nothing later can overlap */
    if (s->sink != sink && start < s->end) {
      unlock();
      return SHK_EOVERLAP;
    }
  }
  table *next = table_for(n + 1);
  if (!next) {
    unlock();
    return SHK_ENOMEM;
  }
  size_t at = position(t, start, end);
  if (at) memcpy(next->spans, t->spans, at * sizeof(span));
  next->spans[at] = (span){start, end, sink};
  if (n > at) memcpy(next->spans + at + 1, t->spans + at, (n - at) * sizeof(span));
  next->count = n + 1;
  publish(next);
  unlock();
  return SHK_OK;
}

void shk__watch_table_remove(shk__watch_sink *sink, uintptr_t start, uintptr_t end) {
  lock();
  table *t = atomic_load(&current);
  size_t n = t ? t->count : 0, at = n;
  for (size_t i = position(t, start, end); i < n; i++) {
    if (t->spans[i].start != start || t->spans[i].end != end) break;
    if (t->spans[i].sink == sink) {
      at = i;
      break;
    }
  }
  if (at < n) {
    grace *g = &graces[grace_next++ % GRACE_SLOTS];
    atomic_store(&g->time_ns, 0);
    atomic_store(&g->start, start);
    atomic_store(&g->end, end);
    atomic_store(&g->time_ns, shk__os_now_ns());
    table *next = n > 1 ? table_for(n - 1) : NULL;
    if (next) {
      memcpy(next->spans, t->spans, at * sizeof(span));
      memcpy(next->spans + at, t->spans + at + 1, (n - at - 1) * sizeof(span));
      next->count = n - 1;
    } else if (n > 1) {
      /* No memory for a smaller copy: neutralise the entry in place. Handlers read either
       * the old sink or an empty span; both are safe because the sink outlives this call. */
      t->spans[at].end = t->spans[at].start;
    }
    if (n == 1 || next) publish(next);
    if (n == 1) {
      free(spare); /* the last span is gone: give the memory back */
      spare = NULL;
    }
  }
  unlock();
}

static bool in_grace(uintptr_t addr) {
  uint64_t now = shk__os_now_ns();
  for (size_t i = 0; i < GRACE_SLOTS; i++) {
    uint64_t t = atomic_load_explicit(&graces[i].time_ns, memory_order_acquire);
    if (t == 0 || now - t > GRACE_NS) continue;
    if (addr >= atomic_load(&graces[i].start) && addr < atomic_load(&graces[i].end)) return true;
  }
  return false;
}

bool shk__watch_on_fault(const shk__os_fault *fault) {
  atomic_fetch_add(&readers, 1);
  const table *t = atomic_load(&current);
  const span *s = t ? find(t, fault->addr) : NULL;
  if (!s) {
    atomic_fetch_sub(&readers, 1);
    return in_grace(fault->addr);
  }
  shk__watch_sink *sink = s->sink;
  uintptr_t page = fault->addr & ~(uintptr_t)(sink->page_size - 1);
  bool ok = shk__os_protect((void *)page, sink->page_size, SHK__OS_PROT_READ_WRITE) == SHK_OK;
  if (!ok) {
    /* The kernel could not split one more area: open the whole span (merging areas) and let the
     * worker compare everything. Never return with the page still closed: that loops. */
    ok = shk__os_protect((void *)s->start, s->end - s->start, SHK__OS_PROT_READ_WRITE) == SHK_OK;
    if (ok) atomic_store(&sink->overflow, 1);
  }
  if (ok) {
    shk__watch_record rec = {fault->addr, fault->ip, shk__os_thread_id(), shk__os_now_ns()};
    atomic_fetch_add_explicit(&sink->faults, 1, memory_order_relaxed);
    if (!shk__watch_ring_push(&sink->ring, &rec)) {
      atomic_fetch_add_explicit(&sink->dropped, 1, memory_order_relaxed);
      atomic_store(&sink->overflow, 1);
    }
  }
  atomic_fetch_sub(&readers, 1);
  return ok;
}

int shk__watch_hook_acquire(void) {
  lock();
  int rc = SHK_OK;
  if (hook_users == 0) rc = shk__os_fault_install(shk__watch_on_fault);
  if (rc == SHK_OK) hook_users++;
  unlock();
  return rc;
}

void shk__watch_hook_release(void) {
  lock();
  if (hook_users > 0 && --hook_users == 0) shk__os_fault_remove();
  unlock();
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
