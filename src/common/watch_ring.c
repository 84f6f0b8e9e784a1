/* The fault ring: a bounded lock-free queue (per-slot sequence numbers) that fault handlers on
 * any number of threads push into and the watcher's worker drains. No allocation after init. */
#include <stdlib.h>

#include "watch_internal.h"

int shk__watch_ring_init(shk__watch_ring *ring, size_t capacity) {
  if (capacity == 0) return SHK_EINVAL;
  size_t limit = 1;
  while (limit < capacity) {
    if (limit > SIZE_MAX / 2 / sizeof(shk__watch_slot)) return SHK_EINVAL;
    limit *= 2;
  }
  /* The per-slot sequence numbers need two slots at least; the limit keeps a ring of one. */
  size_t cap = limit < 2 ? 2 : limit;
  ring->slots = shk__malloc(cap * sizeof *ring->slots);
  if (!ring->slots) return SHK_ENOMEM;
  for (size_t i = 0; i < cap; i++) atomic_init(&ring->slots[i].seq, i);
  ring->mask = cap - 1;
  ring->limit = limit;
  atomic_init(&ring->tail, 0);
  atomic_init(&ring->released, 0);
  ring->head = 0;
  return SHK_OK;
}

void shk__watch_ring_destroy(shk__watch_ring *ring) {
  free(ring->slots);
  ring->slots = NULL;
}

size_t shk__watch_ring_capacity(const shk__watch_ring *ring) { return ring->limit; }

bool shk__watch_ring_push(shk__watch_ring *ring, const shk__watch_record *rec) {
  size_t pos = atomic_load_explicit(&ring->tail, memory_order_relaxed);
  for (;;) {
    shk__watch_slot *slot = &ring->slots[pos & ring->mask];
    size_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
    intptr_t dif = (intptr_t)seq - (intptr_t)pos;
    if (dif == 0) {
      /* Past the limit the ring is full even where slots are free (a ring of one). */
      if (pos - atomic_load_explicit(&ring->released, memory_order_acquire) >= ring->limit)
        return false;
      /* The slot is free for this lap: claim the position; on failure pos is reloaded. */
      if (atomic_compare_exchange_weak_explicit(&ring->tail, &pos, pos + 1, memory_order_relaxed,
                                                memory_order_relaxed)) {
        slot->rec = *rec;
        atomic_store_explicit(&slot->seq, pos + 1, memory_order_release);
        return true;
      }
    } else if (dif < 0) {
      return false; /* the consumer has not freed this slot yet: full */
    } else {
      pos = atomic_load_explicit(&ring->tail, memory_order_relaxed);
    }
  }
}

bool shk__watch_ring_pop(shk__watch_ring *ring, shk__watch_record *rec) {
  shk__watch_slot *slot = &ring->slots[ring->head & ring->mask];
  size_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
  if (seq != ring->head + 1) return false;
  *rec = slot->rec;
  atomic_store_explicit(&slot->seq, ring->head + ring->mask + 1, memory_order_release);
  ring->head++;
  atomic_store_explicit(&ring->released, ring->head, memory_order_release);
  return true;
}
