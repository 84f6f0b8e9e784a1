/* The one-call form's arena, kept for the next call: making, first-touching and unmapping the
 * ~1.1 GB control and output reservation cost a fresh call about as much as one fork. One arena
 * is kept process-wide, taken by the next one-call run that fits in it and given back when that
 * run ends, if it holds little memory. A forked child never uses its parent's (the mapping is
 * shared with the parent): it is dropped there. Only forked one-call workers use it (no handle
 * reaches another process). At exit the system takes it back like any other mapping. */
#include <string.h>

#include "task_internal.h"

/* A kept arena holds at most this much touched memory besides its control header. */
#define KEEP_MAX_BYTES ((size_t)4 << 20)

enum { EMPTY, BUSY, FULL };
static atomic_int state;
static shk__os_segment kept;
static int kept_pid;

bool shk__task_arena_take(size_t size, shk__os_segment *seg) {
  int full = FULL;
  if (!atomic_compare_exchange_strong(&state, &full, BUSY)) return false;
  shk__os_segment mine = kept;
  bool ours = kept_pid == shk__os_pid();
  atomic_store(&state, EMPTY);
  if (ours && mine.size >= size) {
    *seg = mine;
    /* The previous run's header, slots and states go: the workers of this run start from zero. */
    memset(seg->addr, 0, SHK__CTL_TABLE_OFF);
    return true;
  }
  /* Too small, or inherited through a fork (the parent still has it): only this view goes. */
  shk__os_segment_close(&mine);
  return false;
}

void shk__task_arena_give(shk__os_segment *seg, size_t touched) {
  int empty = EMPTY;
  if (seg->addr && touched <= KEEP_MAX_BYTES &&
      atomic_compare_exchange_strong(&state, &empty, BUSY)) {
    kept = *seg;
    kept_pid = shk__os_pid();
    atomic_store(&state, FULL);
    memset(seg, 0, sizeof *seg);
    return;
  }
  shk__os_segment_close(seg);
}
