/* The fault-injection table behind src/os_faults.h: compiled in only with SHK_FAULT_INJECTION
 * (the internal test library); empty otherwise. */
#include "os_faults.h"

#ifdef SHK_FAULT_INJECTION

#include <stdatomic.h>

#include "common/internal.h"

typedef struct fault_slot {
  atomic_uint nth;      /* 0: disarmed */
  atomic_int os_error;
  atomic_bool sticky;
  atomic_uint calls;
  atomic_uint failures;
} fault_slot;

static fault_slot fault_table[SHK__FAULT_COUNT];
static atomic_int fault_pid; /* the process that armed; others pass through */

void shk__fault_arm(shk__fault_point point, unsigned nth, int os_error, bool sticky) {
  fault_slot *s = &fault_table[point];
  atomic_store(&s->nth, 0u);
  atomic_store(&s->calls, 0u);
  atomic_store(&s->failures, 0u);
  atomic_store(&s->os_error, os_error);
  atomic_store(&s->sticky, sticky);
  atomic_store(&fault_pid, shk__os_pid());
  atomic_store(&s->nth, nth);
}

void shk__fault_disarm_all(void) {
  for (int i = 0; i < SHK__FAULT_COUNT; i++) atomic_store(&fault_table[i].nth, 0u);
}

unsigned shk__fault_calls(shk__fault_point point) { return atomic_load(&fault_table[point].calls); }

unsigned shk__fault_failures(shk__fault_point point) {
  return atomic_load(&fault_table[point].failures);
}

int shk__fault_take(shk__fault_point point) {
  fault_slot *s = &fault_table[point];
  unsigned nth = atomic_load(&s->nth);
  if (nth == 0 || atomic_load(&fault_pid) != shk__os_pid()) return 0;
  unsigned call = atomic_fetch_add(&s->calls, 1u) + 1u;
  if (call < nth || (call > nth && !atomic_load(&s->sticky))) return 0;
  atomic_fetch_add(&s->failures, 1u);
  return atomic_load(&s->os_error);
}

#else

typedef int shk__os_faults_unused; /* ISO C wants a translation unit to declare something */

#endif
