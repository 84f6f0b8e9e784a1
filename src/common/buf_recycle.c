/* Recycling of inline heap buffers: the last release parks the object (header and bytes in one
 * malloc block), its range still in the index, and the next create of the same size takes it
 * back, skipping malloc, free and both index updates. Small sizes are parked per thread, as
 * malloc's thread caches do, so their round trip has no locked instruction at all (that short
 * way is inline in buf_internal.h); larger ones, whose bytes cost more than an atomic exchange,
 * share one slot per class across threads. */
#include <stdlib.h>

#include "buf_internal.h"

/* Each shared slot is owned by whoever exchanged its pointer out: no lock, no ABA (nothing is
 * compared). Index k - SHK__BUF_THREAD_CLASSES. */
static _Atomic(shk_buf *) shared_slots[SHK__BUF_CLASSES - SHK__BUF_THREAD_CLASSES];

/* A parked block leaves for good: out of the index, then back to malloc. An observer that may
 * have taken it for live (shk__buf_live_list racing with its parking) hears it go. */
static void discard(shk_buf *buf) {
  if (shk__buf_ranges_remove(&buf->range)) shk__buf_tell_removed(buf);
  free(buf);
}

shk_buf *shk__buf_recycle_take_slow(size_t size) {
  size_t k = shk__buf_class_of(size);
  if (k >= SHK__BUF_CLASSES) return NULL;
  shk_buf *buf = NULL;
  if (k < SHK__BUF_THREAD_CLASSES) {
    shk__buf_thread *t = shk__buf_this_thread; /* no state yet: nothing parked */
    if (!t || !(buf = t->parked[k])) return NULL;
    t->parked[k] = NULL;
    shk__buf_count_parked(t, -1);
  } else {
    _Atomic(shk_buf *) *slot = &shared_slots[k - SHK__BUF_THREAD_CLASSES];
    /* A plain load first: an empty slot costs no locked instruction. */
    if (!atomic_load_explicit(slot, memory_order_relaxed)) return NULL;
    buf = atomic_exchange_explicit(slot, NULL, memory_order_acquire);
  }
  if (buf && buf->size != size) { /* another size of the class: the new one will replace it */
    discard(buf);
    buf = NULL;
  }
  return buf;
}

bool shk__buf_recycle_keep_slow(shk_buf *buf) {
  size_t k = shk__buf_class_of(buf->size);
  if (k >= SHK__BUF_CLASSES) return false;
  if (k < SHK__BUF_THREAD_CLASSES) {
    shk__buf_thread *t = shk__buf_thread_get(); /* the short way found none */
    if (!t || t->parked[k]) return false;
    t->parked[k] = buf;
    shk__buf_count_parked(t, 1);
    return true;
  }
  _Atomic(shk_buf *) *slot = &shared_slots[k - SHK__BUF_THREAD_CLASSES];
  /* A full slot (many buffers of this class live and released) is left alone, and the caller
   * frees as without recycling: an exchange there cost ~15 ns (a locked instruction waits for
   * the stores of the previous free's index memmove). A slot filled meanwhile is still handled. */
  if (atomic_load_explicit(slot, memory_order_relaxed)) return false;
  shk_buf *old = atomic_exchange_explicit(slot, buf, memory_order_acq_rel);
  if (old) discard(old);
  return true;
}

size_t shk__buf_recycle_count(void) {
  size_t n = shk__buf_thread_parked_total();
  for (size_t i = 0; i < SHK__ARRAY_LEN(shared_slots); i++)
    n += atomic_load_explicit(&shared_slots[i], memory_order_relaxed) != NULL;
  return n;
}

void shk__buf_recycle_flush_thread(shk__buf_thread *t) {
  for (size_t k = 0; k < SHK__BUF_THREAD_CLASSES; k++) {
    shk_buf *buf = t->parked[k];
    if (!buf) continue;
    /* Uncounted before it leaves the index, the order shk_buf_live_count() relies on. */
    t->parked[k] = NULL;
    shk__buf_count_parked(t, -1);
    discard(buf);
  }
}

void shk__buf_recycle_flush(void) {
  if (shk__buf_this_thread) shk__buf_recycle_flush_thread(shk__buf_this_thread);
  for (size_t i = 0; i < SHK__ARRAY_LEN(shared_slots); i++) {
    shk_buf *buf = atomic_exchange_explicit(&shared_slots[i], NULL, memory_order_acquire);
    if (buf) discard(buf);
  }
}
