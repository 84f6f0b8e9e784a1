/* The OS facts that cost system calls to learn, learned on first use and remembered. No once
 * guard: two threads asking at once may both ask the system and store the same answer, and a
 * fork while one asks leaves the child with "not known yet", never with a half-held lock. */
#include <stdatomic.h>

#include "internal.h"

enum { UNKNOWN = 0, ABSENT = 1, PRESENT = 2 };

static _Atomic unsigned char features[SHK__OS_FEATURES];
static _Atomic unsigned cpus;

bool shk__os_has(shk__os_feature f) {
  if ((unsigned)f >= SHK__OS_FEATURES) return false;
  unsigned char known = atomic_load_explicit(&features[f], memory_order_relaxed);
  if (known == UNKNOWN) {
    known = shk__os_feature_probe(f) ? PRESENT : ABSENT;
    atomic_store_explicit(&features[f], known, memory_order_relaxed);
  }
  return known == PRESENT;
}

unsigned shk__os_cpu_count(void) {
  unsigned n = atomic_load_explicit(&cpus, memory_order_relaxed);
  if (n == 0) {
    n = shk__os_cpu_count_probe();
    if (n == 0) n = 1;
    atomic_store_explicit(&cpus, n, memory_order_relaxed);
  }
  return n;
}
