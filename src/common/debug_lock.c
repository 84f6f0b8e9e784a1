/* SHK_DEBUG=lock: each thread's view of the process-wide locks it holds (internal.h's order),
 * so that a lock taken twice, out of order, given back by a thread that does not hold it, or
 * held across fork() is named with its call sites. Nothing here runs unless the part is on. */
#include <stdlib.h>

#include "debug.h"
#include "internal.h"

/* The gate, the mutexes and the range index fit; run-time extras (leaves) are not followed. */
#define FOLLOWED 32u

static SHK__THREAD_LOCAL uint32_t held;                  /* bit n: this thread holds lock n */
static SHK__THREAD_LOCAL const void *held_at[FOLLOWED];  /* where it took each */
/* Set while this thread writes a report: a lock the writing takes (naming a site may reach a
 * set-up) is neither checked nor counted, so that a report never reports itself. */
static SHK__THREAD_LOCAL bool reporting;

static bool followed(size_t order) {
  return !reporting && order < FOLLOWED && order <= SHK__LOCK_ORDER_RANGES;
}

/* Starts a report (see `reporting`) naming two sites: where the lock is taken now and where
 * the lock the report is about was taken. */
static void begin_report(const void *site, const void *before_site, char here[1024],
                         char before[1024]) {
  reporting = true;
  shk__debug_site(site, here, 1024);
  shk__debug_site(before_site, before, 1024);
}

static const char *name_of(size_t order) {
  const char *name = shk__lock_name(order);
  return name ? name : "?";
}

void shk__lock_debug_take(size_t order, const void *site) {
  if (!followed(order)) return;
  uint32_t bit = 1u << order;
  char here[1024], before[1024];
  if (held & bit) {
    begin_report(site, held_at[order], here, before);
    shk__debug_report(SHK__DEBUG_LOCK,
                      "%s taken again by the thread that holds it (thread %llu), at %s; it took "
                      "it at %s: it would wait for itself forever, aborting",
                      name_of(order), (unsigned long long)shk__os_thread_id(), here, before);
    abort();
  }
  /* A lock after this one in the order, held: the first such is named. */
  uint32_t later = held & ~((bit << 1) - 1u);
  if (later) {
    size_t j = order + 1;
    while (!(later & (1u << j))) j++;
    begin_report(site, held_at[j], here, before);
    shk__debug_report(SHK__DEBUG_LOCK,
                      "lock order: %s (number %lu) taken at %s while this thread holds %s "
                      "(number %lu, taken at %s); the order is in src/common/internal.h",
                      name_of(order), (unsigned long)order, here, name_of(j), (unsigned long)j,
                      before);
    reporting = false;
  }
  held |= bit;
  held_at[order] = site;
}

bool shk__lock_debug_give(size_t order, const void *site) {
  if (!followed(order)) return true;
  uint32_t bit = 1u << order;
  if (held & bit) {
    held &= ~bit;
    return true;
  }
  char here[1024];
  reporting = true;
  shk__debug_site(site, here, sizeof here);
  shk__debug_report(SHK__DEBUG_LOCK,
                    "%s given back at %s by a thread that does not hold it (thread %llu); ignored",
                    name_of(order), here, (unsigned long long)shk__os_thread_id());
  reporting = false;
  return false;
}

void shk__lock_debug_fork(void) {
  if (!held || reporting) return;
  reporting = true;
  for (size_t j = 0; j < FOLLOWED; j++) {
    if (!(held & (1u << j))) continue;
    char at[1024];
    shk__debug_site(held_at[j], at, sizeof at);
    shk__debug_report(SHK__DEBUG_LOCK,
                      "fork() while the forking thread (thread %llu) holds %s, taken at %s: the "
                      "fork would wait for it forever, aborting",
                      (unsigned long long)shk__os_thread_id(), name_of(j), at);
  }
  abort();
}

/* ---- handles documented "one thread at a time" ----
 * A small table of the handles some thread is inside now, under its own spin lock (a leaf,
 * held across fork()). Only while SHK_DEBUG=lock is on; a full table checks nothing more. */
#define SOLO_SLOTS 64

typedef struct solo {
  const void *key;   /* the handle; NULL: a free entry */
  uint64_t thread;   /* the thread inside it */
  const char *fn;    /* the function it is in, called from site */
  const void *site;
  unsigned depth;    /* nested calls of that thread (a callback calling back) */
} solo;

static solo solos[SOLO_SLOTS];
static atomic_int solo_lock;
static shk__once solo_once;

static void solo_take(void) {
  while (atomic_exchange_explicit(&solo_lock, 1, memory_order_acquire) != 0) shk__os_yield();
}
static void solo_give(void) { atomic_store_explicit(&solo_lock, 0, memory_order_release); }
static void solo_init(void) { shk__fork_guard(solo_take, solo_give); }

bool shk__debug_solo_enter(const char *what, const void *key, const char *fn, const void *site) {
  shk__once_run(&solo_once, solo_init);
  uint64_t me = shk__os_thread_id();
  solo other = {0};
  bool entered = false, clash = false;
  solo_take();
  solo *hit = NULL, *free_entry = NULL;
  for (size_t i = 0; i < SOLO_SLOTS && !hit; i++) {
    if (solos[i].key == key) hit = &solos[i];
    else if (!solos[i].key && !free_entry) free_entry = &solos[i];
  }
  if (hit && hit->thread != me) {
    other = *hit;
    clash = true;
  } else if (hit) {
    hit->depth++;
    entered = true;
  } else if (free_entry) {
    *free_entry = (solo){key, me, fn, site, 1};
    entered = true;
  }
  solo_give();
  if (clash) {
    char here[1024], there[1024];
    shk__debug_site(site, here, sizeof here);
    shk__debug_site(other.site, there, sizeof there);
    shk__debug_report(SHK__DEBUG_LOCK,
                      "%s %p used by two threads at once: %s in thread %llu, called from %s, "
                      "while thread %llu is in %s, called from %s",
                      what, key, fn, (unsigned long long)me, here,
                      (unsigned long long)other.thread, other.fn, there);
  }
  return entered;
}

void shk__debug_solo_leave(const void *key) {
  solo_take();
  for (size_t i = 0; i < SOLO_SLOTS; i++) {
    if (solos[i].key != key) continue;
    if (--solos[i].depth == 0) solos[i].key = NULL;
    break;
  }
  solo_give();
}
