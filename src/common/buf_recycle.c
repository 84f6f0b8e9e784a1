/* Recycling of inline heap and aligned buffers: the last release parks the object (header and
 * bytes in one malloc block), its range still in the index, and the next create of the same
 * size takes it back, skipping malloc, free and both index updates. Small sizes are parked per
 * thread, a bounded list per class as malloc's thread caches do, so their round trip has no
 * locked instruction at all (that short way is inline in buf_internal.h); larger ones, whose
 * bytes cost more than an atomic exchange, share one slot per class across threads. */
#include <stdlib.h>

#include "buf_internal.h"

const uint16_t shk__buf_park_limits[SHK__BUF_THREAD_CLASSES] = {
    1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 512, 256, 128, 64, 32};

/* Each shared slot is owned by whoever exchanged its pointer out: no lock, no ABA (nothing is
 * compared). Index [kind][k - SHK__BUF_THREAD_CLASSES]. */
static _Atomic(shk_buf *) shared_slots[SHK__BUF_KINDS][SHK__BUF_CLASSES - SHK__BUF_THREAD_CLASSES];

/* A parked block leaves for good: out of the index, then back to malloc. An observer that may
 * have taken it for live (shk__buf_live_list racing with its parking) hears it go. */
static void discard(shk_buf *buf) {
  if (buf->in_slab) { /* back to its slab: not indexed alone, its slab's memory */
    shk__buf_slab_give(buf);
    return;
  }
  if (shk__buf_ranges_remove(&buf->range)) shk__buf_tell_removed(buf);
  free(buf);
}

/* Frees one list of thread t. Each object is uncounted before it leaves the index, the order
 * shk_buf_live_count() relies on. */
static void discard_list(shk__buf_thread *t, shk__buf_park *p) {
  while (p->head) {
    shk_buf *buf = p->head;
    p->head = buf->park_next;
    p->n--;
    shk__buf_count_parked(t, -1);
    discard(buf);
  }
}

shk_buf *shk__buf_recycle_take_slow(int kind, size_t size, size_t align) {
  size_t k = shk__buf_class_of(size);
  if (k >= SHK__BUF_CLASSES) return NULL;
  if (k < SHK__BUF_THREAD_CLASSES) {
    /* The short way found no match: a list of another size or alignment is replaced. */
    shk__buf_thread *t = shk__buf_this_thread; /* no state yet: nothing parked */
    if (t) discard_list(t, &t->parked[kind][k]);
    return NULL;
  }
  _Atomic(shk_buf *) *slot = &shared_slots[kind][k - SHK__BUF_THREAD_CLASSES];
  /* A plain load first: an empty slot costs no locked instruction. */
  if (!atomic_load_explicit(slot, memory_order_relaxed)) return NULL;
  shk_buf *buf = atomic_exchange_explicit(slot, NULL, memory_order_acquire);
  if (buf && (buf->size != size || buf->align != align)) { /* the new one will replace it */
    discard(buf);
    buf = NULL;
  }
  return buf;
}

bool shk__buf_recycle_keep_slow(shk_buf *buf) {
  size_t k = shk__buf_class_of(buf->size);
  if (k >= SHK__BUF_CLASSES) return false;
  if (k < SHK__BUF_THREAD_CLASSES) {
    /* The short way failed for want of thread state, or on a full or mismatched list. */
    return !shk__buf_this_thread && shk__buf_thread_get() && shk__buf_recycle_keep_own(buf);
  }
  _Atomic(shk_buf *) *slot = &shared_slots[buf->kind][k - SHK__BUF_THREAD_CLASSES];
  /* A full slot (many buffers of this class live and released) is left alone, and the caller
   * frees as without recycling: an exchange there cost ~15 ns (a locked instruction waits for
   * the stores of the previous free's index memmove). A slot filled meanwhile is still handled. */
  if (atomic_load_explicit(slot, memory_order_relaxed)) return false;
  shk_buf *old = atomic_exchange_explicit(slot, buf, memory_order_acq_rel);
  if (old) discard(old);
  return true;
}

size_t shk__buf_recycle_totals(size_t *slab_out) {
  size_t n = 0;
  shk__buf_thread_totals(&n, slab_out);
  for (size_t kind = 0; kind < SHK__BUF_KINDS; kind++)
    for (size_t i = 0; i < SHK__ARRAY_LEN(shared_slots[kind]); i++)
      n += atomic_load_explicit(&shared_slots[kind][i], memory_order_relaxed) != NULL;
  return n;
}

size_t shk__buf_recycle_count(void) {
  size_t slab_out;
  return shk__buf_recycle_totals(&slab_out);
}

/* Frees a list of kept headers (plain memory: out of the index, holding nothing). */
static void free_headers(shk__buf_headers *list) {
  while (list->head) free(shk__buf_headers_pop(list));
}

void shk__buf_recycle_flush_thread(shk__buf_thread *t) {
  for (size_t kind = 0; kind < SHK__BUF_KINDS; kind++)
    for (size_t k = 0; k < SHK__BUF_THREAD_CLASSES; k++) discard_list(t, &t->parked[kind][k]);
  shk__buf_slab_flush_thread(t); /* after the parked slots went back to their slabs */
  free_headers(&t->bare);
  free_headers(&t->consumed);
}

void shk__buf_recycle_flush(void) {
  if (shk__buf_this_thread) shk__buf_recycle_flush_thread(shk__buf_this_thread);
  for (size_t kind = 0; kind < SHK__BUF_KINDS; kind++) {
    for (size_t i = 0; i < SHK__ARRAY_LEN(shared_slots[kind]); i++) {
      shk_buf *buf = atomic_exchange_explicit(&shared_slots[kind][i], NULL, memory_order_acquire);
      if (buf) discard(buf);
    }
  }
}
