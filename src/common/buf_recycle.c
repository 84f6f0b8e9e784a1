/* Recycling of inline heap buffers: the last release parks the object (header and bytes in one
 * malloc block) in a slot per size class, its range still in the index, and the next create of
 * the same size takes it back, skipping malloc, free and both index updates. */
#include <stdlib.h>

#include "buf_internal.h"

/* Class k holds sizes of bit length k, so at most one block below 2^k each: with sizes up to
 * 2 MiB - 1 cached, the memory kept back is below 4 MiB in all. */
#define CLASSES 22

/* Each slot is owned by whoever exchanged its pointer out: no lock, no ABA (nothing is compared). */
static _Atomic(shk_buf *) slots[CLASSES];

/* The bit length of size in five halving steps (a loop over the bits cost ~100 instructions
 * for 1 MiB), or CLASSES when size is not cached. */
static size_t class_of(size_t size) {
  if (size >> (CLASSES - 1)) return CLASSES;
  uint32_t x = (uint32_t)size;
  size_t k = x != 0;
  if (x >> 16) { x >>= 16; k += 16; }
  if (x >> 8) { x >>= 8; k += 8; }
  if (x >> 4) { x >>= 4; k += 4; }
  if (x >> 2) { x >>= 2; k += 2; }
  if (x >> 1) k += 1;
  return k;
}

/* A parked block leaves for good: out of the index, then back to malloc. */
static void discard(shk_buf *buf) {
  shk__buf_ranges_remove(&buf->range);
  free(buf);
}

shk_buf *shk__buf_recycle_take(size_t size) {
  size_t k = class_of(size);
  if (k >= CLASSES) return NULL;
  /* A plain load first: an empty slot costs no locked instruction. */
  if (!atomic_load_explicit(&slots[k], memory_order_relaxed)) return NULL;
  shk_buf *buf = atomic_exchange_explicit(&slots[k], NULL, memory_order_acquire);
  if (buf && buf->size != size) {
    discard(buf);
    buf = NULL;
  }
  return buf;
}

bool shk__buf_recycle_keep(shk_buf *buf) {
  size_t k = class_of(buf->size);
  if (k >= CLASSES) return false;
  /* A full slot (many buffers of this class live and released) is left alone, and the caller
   * frees as without recycling: an exchange there cost ~15 ns (a locked instruction waits for
   * the stores of the previous free's index memmove). A slot filled meanwhile is still handled. */
  if (atomic_load_explicit(&slots[k], memory_order_relaxed)) return false;
  shk_buf *old = atomic_exchange_explicit(&slots[k], buf, memory_order_acq_rel);
  if (old) discard(old);
  return true;
}

size_t shk__buf_recycle_count(void) {
  size_t n = 0;
  for (size_t k = 0; k < CLASSES; k++)
    n += atomic_load_explicit(&slots[k], memory_order_relaxed) != NULL;
  return n;
}

void shk__buf_recycle_flush(void) {
  for (size_t k = 0; k < CLASSES; k++) {
    shk_buf *buf = atomic_exchange_explicit(&slots[k], NULL, memory_order_acquire);
    if (buf) discard(buf);
  }
}
