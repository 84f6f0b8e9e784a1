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
