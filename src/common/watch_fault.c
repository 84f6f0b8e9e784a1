/* The common fault routine: decides whether a write fault is the watcher's (a page of a span,
 * opened now and recorded in the sink's ring), one that only has to be retried (its region was
 * removed meanwhile), or a real crash to pass on, and never returns to a fault that opening did
 * not cure. Async-signal-safe: no allocation, no lock. */
#include "watch_internal.h"

typedef shk__watch_span span;

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

static guard guards[GUARD_SLOTS];
static atomic_uint_least64_t prot_gen; /* changes before any page is protected (again) */

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
  /* The capabilities were filled before the hook was installed: this is an atomic load. */
  size_t ps = shk__os_caps_get()->page_size;
  int prot = 0;
  bool uniform = true;
  uintptr_t page = addr & ~(uintptr_t)(ps - 1);
  return shk__os_prot_query((void *)page, ps, &prot, &uniform) == SHK_OK &&
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
    const span *s = shk__watch_table_enter(fault->addr);
    if (s) {
      /* Ours. Where the OS does not say which access faulted, the same fault again on a page
       * that is already open (an instruction fetch, say) is not one opening can cure. */
      bool ok = !(again && !fault->write_known && writable_now(fault->addr)) &&
                open_page(s, fault->addr);
      if (ok) {
        record(s->sink, fault, tid);
        remember(g, fault, gen);
      }
      shk__watch_table_exit();
      return ok;
    }
    shk__watch_table_exit();
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

