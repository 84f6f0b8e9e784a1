/* Slabs of new heap buffers (buf_internal.h): a thread carves the small heap buffers it makes
 * while nothing of their class is parked from blocks of slots of one size, each block indexed as
 * one range, so that with more buffers live than a thread parks (10 000 of 64 B) a create and a
 * release touch neither malloc nor the index. Slots given back by their slab's owner go on the
 * slab's own list with plain stores; by other threads, on the slab's `remote` list with one
 * compare-and-swap, which the owner takes in one exchange when its list runs dry. When the owner
 * ends, its slabs are orphaned: from then on a count of the slots still out decides, and whoever
 * gives back the last one frees the slab. No lock of its own: the index's lock is taken only to
 * put a slab in or take it out. */
#include <stdlib.h>

#include "buf_internal.h"

/* A slab holds this many bytes of slots at first, doubling for each further slab of the class
 * a thread makes up to the last: under glibc's 128 KiB mmap threshold, so a new slab is no
 * system call. With 64-byte buffers (272-byte slots: a slot ends its header at the slab pointer,
 * buf_internal.h) the largest holds 240. */
#define SLAB_FIRST_BYTES 4096
#define SLAB_GROWTHS 4
#define SLAB_MIN_SLOTS 4

static atomic_size_t slabs_indexed;   /* slabs in the index */
static atomic_size_t given_by_others; /* slots given back by another thread than the owner */

size_t shk__buf_slab_count(void) { return atomic_load_explicit(&slabs_indexed, memory_order_relaxed); }

size_t shk__buf_slab_given_by_others(void) {
  return atomic_load_explicit(&given_by_others, memory_order_relaxed);
}

/* The block's own header, rounded so the first slot is aligned like malloc's memory. */
#define SLAB_HEADER ((sizeof(shk__buf_slab) + SHK__MAX_ALIGN - 1) / SHK__MAX_ALIGN * SHK__MAX_ALIGN)

/* Out of the index and back to malloc; nothing of it is out. An observer (set meanwhile) hears
 * every slot go, as it hears a parked object go when it is freed: its walk may have taken a slot
 * for live while it was being given back with no observer to tell (list_live in buf.c). */
static void slab_free(shk__buf_slab *s) {
  atomic_fetch_sub_explicit(&slabs_indexed, 1, memory_order_relaxed);
  if (shk__buf_ranges_remove(&s->range)) {
    size_t carved = atomic_load_explicit(&s->carved, memory_order_relaxed);
    for (size_t i = 0; i < carved; i++) shk__buf_tell_removed((shk_buf *)(s->slots + i * s->stride));
  }
  if (s->poisoned) shk__os_sanitizer_poison(s->slots, s->cap * s->stride, false);
  free(s);
}

static void unlist(shk__buf_thread *t, shk__buf_slab *s) {
  if (s->prev) s->prev->next = s->next;
  else t->slab_list = s->next;
  if (s->next) s->next->prev = s->prev;
  if (t->slabs[s->k] == s) t->slabs[s->k] = NULL;
}

void shk__buf_slab_drop(shk__buf_thread *t, shk__buf_slab *s) {
  unlist(t, s);
  slab_free(s);
}

/* A new slab of class k and this size for thread t, made its current one; NULL when malloc or
 * the index says no (the caller then mallocs its object as without slabs). */
static shk__buf_slab *slab_new(shk__buf_thread *t, size_t k, size_t size) {
  size_t span =
      SHK__BUF_SLOT_HEADER_SIZE + (size + SHK__MAX_ALIGN - 1) / SHK__MAX_ALIGN * SHK__MAX_ALIGN;
  bool poisoned = shk__os_sanitizer_present();
  size_t stride = span + (poisoned ? SHK__BUF_SLAB_REDZONE : 0);
  size_t cap = ((size_t)SLAB_FIRST_BYTES << t->slab_grow[k]) / stride;
  if (cap < SLAB_MIN_SLOTS) cap = SLAB_MIN_SLOTS;
  size_t bytes = SLAB_HEADER + cap * stride;
  shk__buf_slab *s = shk__malloc(bytes);
  if (!s) return NULL;
  /* Every field before the index: the walk reads the slab as soon as it is in. */
  atomic_init(&s->owner, t);
  s->free = NULL;
  s->used = 0;
  s->size = size;
  s->stride = stride;
  s->span = span;
  s->poisoned = poisoned;
  s->cap = cap;
  atomic_init(&s->carved, 0);
  s->k = (uint8_t)k;
  atomic_init(&s->remote, 0);
  atomic_init(&s->outstanding, 0);
  s->slots = (unsigned char *)s + SLAB_HEADER;
  for (size_t i = 0; poisoned && i < cap; i++)
    shk__os_sanitizer_poison(s->slots + i * stride + span, SHK__BUF_SLAB_REDZONE, true);
  s->range = (shk__buf_range){.start = (uintptr_t)s, .end = (uintptr_t)s + bytes, .slab = true};
  if (shk__buf_ranges_insert(&s->range) != SHK_OK) { /* SHK_ENOMEM, or memory a user wrapped */
    free(s);
    return NULL;
  }
  atomic_fetch_add_explicit(&slabs_indexed, 1, memory_order_relaxed);
  s->prev = NULL;
  s->next = t->slab_list;
  if (s->next) s->next->prev = s;
  t->slab_list = s;
  t->slabs[k] = s;
  if (t->slab_grow[k] < SLAB_GROWTHS) t->slab_grow[k]++;
  return s;
}

/* The owner takes the slots other threads gave back onto its own list; how many. */
static size_t take_remote(shk__buf_slab *s) {
  if (!atomic_load_explicit(&s->remote, memory_order_relaxed)) return 0;
  shk_buf *list = (shk_buf *)atomic_exchange_explicit(&s->remote, 0, memory_order_acquire);
  size_t n = 0;
  while (list) {
    shk_buf *next = list->park_next;
    list->park_next = s->free;
    s->free = list;
    list = next;
    n++;
  }
  s->used -= n;
  return n;
}

/* Another slab of thread t for class k and this size with a quarter of its slots or more to
 * give (its own list, slots given back by others, slots not carved yet), made current; slabs
 * found with nothing out are freed. A quarter, so that the search (every slab of the thread) is
 * made once per that many creates at most, even where live buffers are spread over many slabs
 * with a few free slots each; a slab with less waits to empty further. */
static shk__buf_slab *another_with_room(shk__buf_thread *t, size_t k, size_t size) {
  shk__buf_slab *found = NULL;
  for (shk__buf_slab *s = t->slab_list, *next; s; s = next) {
    next = s->next;
    if (s->k != k || s == t->slabs[k]) continue;
    take_remote(s);
    if (!found && s->size == size && (s->cap - s->used) * 4 >= s->cap) found = s;
    else if (s->used == 0) shk__buf_slab_drop(t, s);
  }
  if (found) t->slabs[k] = found;
  return found;
}

shk_buf *shk__buf_slab_take_slow(shk__buf_thread *t, size_t k, size_t size, bool *fresh) {
  shk__buf_slab *s = t->slabs[k];
  if (s && s->size != size) {
    /* Another size: its slab is replaced once nothing of it is out; until then this size's
     * buffers are malloc'd as without slabs. */
    take_remote(s);
    if (s->used != 0) return NULL;
    shk__buf_slab_drop(t, s);
    s = NULL;
  }
  /* The current slab is full (nothing given back, every slot carved): what others gave back,
   * else another slab with room, else a new one. */
  if (!s || !take_remote(s)) {
    s = another_with_room(t, k, size);
    if (!s) s = slab_new(t, k, size);
    if (!s) return NULL;
  }
  return shk__buf_slab_take(t, k, size, fresh);
}

/* Frees an orphaned slab once its last slot is back; n: slots given back now. */
static void orphan_gave(shk__buf_slab *s, size_t n) {
  if (atomic_fetch_sub_explicit(&s->outstanding, n, memory_order_acq_rel) == n) slab_free(s);
}

void shk__buf_slab_give_other(shk_buf *buf) {
  shk__buf_slab *s = buf->slab;
  atomic_fetch_add_explicit(&given_by_others, 1, memory_order_relaxed);
  uintptr_t head = atomic_load_explicit(&s->remote, memory_order_acquire);
  for (;;) {
    if (head == SHK__BUF_SLAB_ORPHAN) {
      orphan_gave(s, 1);
      return;
    }
    buf->park_next = (shk_buf *)head;
    if (atomic_compare_exchange_weak_explicit(&s->remote, &head, (uintptr_t)buf,
                                              memory_order_release, memory_order_acquire))
      return;
  }
}

/* The owner gives its slab up: slots still out are counted, and the last one given back frees
 * the slab (orphan_gave); with none out it goes now. */
static void orphan(shk__buf_thread *t, shk__buf_slab *s) {
  unlist(t, s);
  take_remote(s);
  if (s->used == 0) {
    slab_free(s);
    return;
  }
  atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
  atomic_store_explicit(&s->outstanding, s->used, memory_order_relaxed);
  /* Slots given back between take_remote and here are counted in `used` and come with the
   * exchange; after it, givers see the mark and count down instead. */
  shk_buf *late = (shk_buf *)atomic_exchange_explicit(&s->remote, SHK__BUF_SLAB_ORPHAN,
                                                      memory_order_acq_rel);
  size_t n = 0;
  for (; late; late = late->park_next) n++;
  orphan_gave(s, n);
}

void shk__buf_slab_flush_thread(shk__buf_thread *t) {
  while (t->slab_list) orphan(t, t->slab_list);
}

SHK__RACY_READ void shk__buf_slab_each_live(const shk__buf_range *node,
                                            void (*fn)(const shk_buf *slot, void *bytes,
                                                       size_t size, void *ctx),
                                            void *ctx) {
  const shk__buf_slab *s = (const shk__buf_slab *)node;
  size_t carved = atomic_load_explicit(&s->carved, memory_order_acquire);
  for (size_t i = 0; i < carved; i++) {
    shk_buf *slot = (shk_buf *)(s->slots + i * s->stride);
    if (atomic_load_explicit(&slot->refs, memory_order_relaxed) != 0)
      fn(slot, (unsigned char *)slot + SHK__BUF_SLOT_HEADER_SIZE, s->size, ctx);
  }
}
