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
  int prot;             /* what the pages allowed before: the fault path opens them to it */
} span;

typedef struct table {
  size_t count, cap;
  span spans[]; /* sorted by (start, end) */
} table;

/* The last fault each thread had resolved: a thread claims a slot by its id (never given back:
 * ids are few and a reused id only inherits a record that cannot match anything live). A fault
 * equal to the thread's last one, with no protection changed since (same generation), was not
 * cured by what was done the first time: it is passed on instead of looping. */
#define GUARD_SLOTS 1024
typedef struct guard {
  atomic_uint_least64_t tid;
  atomic_uintptr_t addr, ip;
  atomic_uint_least64_t gen;
} guard;

static shk__once table_once;
static shk__os_mutex table_lock; /* writers only */
static _Atomic(table *) current;
static table *spare; /* the table replaced last, kept for reuse (writers only) */
static atomic_uint readers;
static guard guards[GUARD_SLOTS];
static atomic_uint_least64_t prot_gen; /* changes before any page is protected (again) */
static size_t fault_page_size;         /* set before the hook is installed */
static int hook_users;
static size_t areas_budget, areas_used;
static bool areas_known;

static void table_init(void) { shk__os_mutex_init(&table_lock); }

static void lock(void) {
  shk__once_run(&table_once, table_init);
  shk__os_mutex_lock(&table_lock);
}

static void unlock(void) { shk__os_mutex_unlock(&table_lock); }

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
  shk__watch_protection_changed();
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

int shk__watch_table_add(shk__watch_sink *sink, uintptr_t start, uintptr_t end, int prot) {
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
  next->spans[at] = (span){start, end, sink, prot};
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

void shk__watch_protection_changed(void) { atomic_fetch_add(&prot_gen, 1); }

void shk__watch_sink_overflow(shk__watch_sink *sink, uint64_t now) {
  uint_least64_t none = 0;
  atomic_compare_exchange_strong(&sink->overflow_ns, &none, now ? now : 1);
  atomic_store(&sink->overflow, 1);
}

/* This thread's guard slot, claimed on first use; NULL when every slot is taken (then faults are
 * resolved without the guard, as before it existed). */
static guard *guard_of(uint64_t tid) {
  for (size_t i = 0; i < GUARD_SLOTS; i++) {
    guard *g = &guards[(tid + i) % GUARD_SLOTS];
    uint_least64_t owner = atomic_load_explicit(&g->tid, memory_order_relaxed);
    if (owner == tid) return g;
    if (owner == 0 && atomic_compare_exchange_strong(&g->tid, &owner, tid)) return g;
    if (owner == tid) return g;
  }
  return NULL;
}

static bool repeated(const guard *g, const shk__os_fault *fault, uint64_t gen) {
  return g && atomic_load_explicit(&g->gen, memory_order_relaxed) == gen &&
         atomic_load_explicit(&g->addr, memory_order_relaxed) == fault->addr &&
         atomic_load_explicit(&g->ip, memory_order_relaxed) == fault->ip;
}

static void remember(guard *g, const shk__os_fault *fault, uint64_t gen) {
  if (!g) return;
  atomic_store_explicit(&g->addr, fault->addr, memory_order_relaxed);
  atomic_store_explicit(&g->ip, fault->ip, memory_order_relaxed);
  atomic_store_explicit(&g->gen, gen, memory_order_relaxed);
}

/* Whether the page of addr is writable now (another thread unwatched it while this fault was
 * on its way to the handler). Rare: only faults outside every span get here. */
static bool writable_now(uintptr_t addr) {
  int prot = 0;
  bool uniform = true;
  uintptr_t page = addr & ~(uintptr_t)(fault_page_size - 1);
  return shk__os_prot_query((void *)page, fault_page_size, &prot, &uniform) == SHK_OK &&
         (prot & SHK__OS_PROT_WRITE);
}

/* Opens the page of a span, or the whole span when the kernel cannot split one more area. */
static bool open_page(const span *s, uintptr_t addr) {
  shk__watch_sink *sink = s->sink;
  uintptr_t page = addr & ~(uintptr_t)(sink->page_size - 1);
  if (shk__os_protect((void *)page, sink->page_size, s->prot) == SHK_OK) return true;
  if (shk__os_protect((void *)s->start, s->end - s->start, s->prot) != SHK_OK) return false;
  shk__watch_sink_overflow(sink, shk__os_now_ns());
  return true;
}

/* Records a resolved fault of a span in its sink's ring. */
static void record(shk__watch_sink *sink, const shk__os_fault *fault, uint64_t tid) {
  uint64_t now = shk__os_now_ns();
  shk__watch_record rec = {fault->addr, fault->ip, tid, now};
  atomic_fetch_add_explicit(&sink->faults, 1, memory_order_relaxed);
  if (!shk__watch_ring_push(&sink->ring, &rec)) {
    atomic_fetch_add_explicit(&sink->dropped, 1, memory_order_relaxed);
    shk__watch_sink_overflow(sink, now);
  }
}

/* How often a fault outside every span is looked up again while protections keep changing
 * under it (a region removed and another added on the same page meanwhile). */
#define LOOKUPS 64

bool shk__watch_on_fault(const shk__os_fault *fault) {
  if (!fault->write) return false; /* a read or an instruction fetch: never ours to resolve */
  uint64_t tid = shk__os_thread_id();
  guard *g = guard_of(tid);
  for (int lookup = 0; lookup < LOOKUPS; lookup++) {
    uint64_t gen = atomic_load(&prot_gen);
    bool again = repeated(g, fault, gen);
    atomic_fetch_add(&readers, 1);
    const table *t = atomic_load(&current);
    const span *s = t ? find(t, fault->addr) : NULL;
    if (s) {
      /* Ours. Where the OS does not say which access faulted, the same fault again on a page
       * that is already open (an instruction fetch, say) is not one opening can cure. */
      bool ok = !(again && !fault->write_known && writable_now(fault->addr)) &&
                open_page(s, fault->addr);
      if (ok) {
        record(s->sink, fault, tid);
        remember(g, fault, gen);
      }
      atomic_fetch_sub(&readers, 1);
      return ok;
    }
    atomic_fetch_sub(&readers, 1);
    /* Not ours now. Retried when the page is writable by now (its region was removed while the
     * fault was on its way), but not twice: a write fault on a writable page that comes back
     * unchanged is not one retrying can cure. */
    if (again) return false;
    if (writable_now(fault->addr)) {
      remember(g, fault, gen);
      return true;
    }
    /* Read-only and in no span: a real crash, unless shmkit changed protections meanwhile (a
     * region added on the page after the lookup): then look again. */
    if (atomic_load(&prot_gen) == gen) return false;
  }
  return false;
}

int shk__watch_hook_acquire(void) {
  lock();
  int rc = SHK_OK;
  fault_page_size = shk__os_caps_get()->page_size;
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
