/* What the buf_*.c files share: the buffer object, the allocator registry entry, the live-range
 * index, the deferred list and the device backend table. */
#ifndef SHMKIT_BUF_INTERNAL_H
#define SHMKIT_BUF_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "debug.h"
#include "internal.h"

/* ---- allocator registry (buf_alloc.c, built-ins in buf_alloc_builtin.c) ---- */

typedef struct shk__buf_allocator {
  char name[SHK_BUF_ALLOCATOR_NAME_MAX + 1];
  shk_buf_allocator table;
  atomic_size_t users;  /* live buffers using it: unregister refuses while > 0 */
  bool builtin;
  struct shk__buf_allocator *next;
} shk__buf_allocator;

/* The caller's options (NULL: defaults) read by the evolution rule into *out (buf.c).
 * SHK_OK or SHK_EINVAL. */
int shk__buf_options_read(const shk_buf_options *opts, shk_buf_options *out);

/* Finds an allocator by name (NULL: "heap") and counts one more user. SHK_ENOENT. */
int shk__buf_allocator_acquire(const char *name, shk__buf_allocator **out);
static inline void shk__buf_allocator_drop(shk__buf_allocator *a) {
  if (a && !a->builtin) atomic_fetch_sub_explicit(&a->users, 1, memory_order_release);
}

/* The built-in "heap" once the registry is set up, else NULL. */
extern _Atomic(shk__buf_allocator *) shk__buf_heap_entry;

/* shk__buf_allocator_acquire, with no call for the default (NULL) once the registry is set up:
 * the one-time check and the call were 30 instructions of a consume+release. */
static inline int shk__buf_allocator_get(const char *name, shk__buf_allocator **out) {
  shk__buf_allocator *heap = atomic_load_explicit(&shk__buf_heap_entry, memory_order_acquire);
  if (!name && heap) {
    *out = heap;
    return SHK_OK;
  }
  return shk__buf_allocator_acquire(name, out);
}

/* The alignment of "aligned" when the options give none. */
#define SHK__BUF_ALIGNED_DEFAULT 64

/* The built-in tables (buf_alloc_builtin.c). */
extern const shk_buf_allocator shk__buf_heap_allocator;
extern const shk_buf_allocator shk__buf_aligned_allocator;
extern const shk_buf_allocator shk__buf_pages_allocator;
extern const shk_buf_allocator shk__buf_shm_allocator;
/* The segment name of a block made or adopted by the shm allocator. */
const char *shk__buf_shm_block_name(const shk_buf_block *block);

/* ---- live-range index (buf_ranges.c: sorted chunks, and small ranges by their block in
 * buf_granules.c) ---- */

/* The whole aligned blocks of a live range (buf_granules.h), as the chunk tree keeps them. */
typedef struct shk__buf_blocks {
  uintptr_t start, end; /* [start, end), never empty */
  /* Where the tree last put this entry (chunk number and slot), written under its lock: a
   * remove that finds the entry still there skips both searches. Only a hint: later inserts
   * and compactions move entries, and the remove checks it before use. */
  uint32_t at_chunk, at_slot;
} shk__buf_blocks;

typedef struct shk__buf_range {
  uintptr_t start, end; /* [start, end), never empty */
  /* Where its parts are, set and read under the index's lock: whether it has a piece in the
   * record of its first and of its last block (buf_granules.h: SHK__GRANULE_NONE, _HAS, or for
   * the first _PAIR, its words noted below), and its whole blocks in the tree. */
  shk__buf_blocks blocks;
  uint8_t head_piece, tail_piece;
  bool in_tree;
  bool slab; /* the node of a slab (buf_slab.c), whose live slots the walk lists one by one */
  /* Its first piece's words in its record's bitmap when head_piece is SHK__GRANULE_PAIR
   * (shk__granule_pair: the remove clears them as they are, with no offsets worked out). */
  uint8_t head_w0, head_w1;
  /* The table slots of the records of its first and last piece when they were put
   * (shk__granule_find_at): hints that let a remove skip the hash and the probe. */
  uint32_t head_slot, tail_slot;
  uint64_t head_m0, head_m1;
  /* Its place on the index's list of ranges with pieces (the walk: bitmaps name no range). */
  struct shk__buf_range *prev, *next;
} shk__buf_range;

/* Inserts [start, end) unless it overlaps a live range (SHK_EOVERLAP, nothing changes);
 * SHK_ENOMEM when the index cannot grow. O(log n) search. Thread-safe. The node itself is kept
 * (for the walk below) until removed. */
int shk__buf_ranges_insert(shk__buf_range *node);
/* The same, and on success whether a buffer observer was set (shk__buf_observed), read under
 * the index's lock: SHK__BUF_RANGES_OBSERVED instead of SHK_OK (the answer in the return value
 * saves the short way a store and a load); so does the return of remove. Read there, the answer
 * cannot miss an observer that set itself before walking the index: either the walk sees the
 * range, or the insert or remove that came after it sees the observer. */
#define SHK__BUF_RANGES_OBSERVED 1
int shk__buf_ranges_insert_seen(shk__buf_range *node);
bool shk__buf_ranges_remove(shk__buf_range *node);
/* Calls fn for every indexed range, under the index's lock (fn takes no lock and calls nothing
 * of buf); returns how many. */
size_t shk__buf_ranges_walk(void (*fn)(shk__buf_range *node, void *ctx), void *ctx);
size_t shk__buf_ranges_count(void);
/* The index's lock, for the fork handlers of process_state.c (it is number RANGES there). */
void shk__buf_ranges_hold(void);
void shk__buf_ranges_release(void);

/* ---- device mapping (buf_device.c over a backend in src/device/) ---- */

typedef struct shk__device_ops {
  /* Usable devices; SHK_ENODEV when there are none. */
  int (*count)(int *count);
  int (*alloc)(int device, size_t size, void **dev);
  void (*free)(int device, void *dev);
  int (*to_device)(int device, void *dev, const void *host, size_t size);
  int (*from_device)(int device, void *host, const void *dev, size_t size);
  /* Registers host memory as pinned and gives its device address. */
  int (*pin)(int device, void *host, size_t size, void **dev);
  void (*unpin)(int device, void *host);
} shk__device_ops;

/* The backend compiled in (src/device/cuda.c or none.c). */
const shk__device_ops *shk__device_backend(void);
/* Replaces the backend (tests inject a fake device); NULL restores the compiled one. */
void shk__device_set_ops(const shk__device_ops *ops);

typedef struct shk__buf_device {
  int mode; /* 0 = not mapped, else shk_buf_device_mode */
  int device;
  void *ptr;
  const shk__device_ops *ops; /* the backend that mapped it, so a swap cannot mismatch unmap */
} shk__buf_device;

/* Unmaps if mapped (destruction). */
void shk__buf_device_drop(shk_buf *buf);

/* ---- the fields few buffers use (buf_rare.c) ---- */

/* What a buffer holds only when it has a destroy callback or a delay (from its options), a
 * device mapping, or was made under SHK_DEBUG=buf: one malloc block behind shk_buf.rare, NULL
 * for the usual buffer, so that a header (and a slab's slot) is 64 bytes smaller to write. A
 * buffer whose rare is not NULL ends the general way (end_way GENERAL). The block is its
 * buffer's, its fields its holder's (as the buffer's). */
typedef struct shk__buf_rare {
  shk_buf_destroy_fn on_destroy;
  void *on_destroy_user;
  const void *created_at, *released_at; /* call sites, recorded under SHK_DEBUG=buf */
  struct shk_buf *deferred_prev, *deferred_next; /* buf_deferred.c */
  shk__buf_device device;                      /* buf_device.c */
} shk__buf_rare;

/* Whether options need a buffer's rare block at creation: a callback (or its user pointer) or a
 * delay. */
static inline bool shk__buf_rare_wanted(const shk_buf_options *opts) {
  /* One test of three loads, no branch each. */
  return opts->delayed_free | (opts->on_destroy != NULL) | (opts->on_destroy_user != NULL);
}
/* A new block with the options' callback and every other field empty (opts NULL: no callback);
 * NULL when there is no memory. */
shk__buf_rare *shk__buf_rare_new(const shk_buf_options *opts);
/* buf's block, made (empty) when it has none, and its end then the general way; NULL when there
 * is no memory (buf unchanged). */
shk__buf_rare *shk__buf_rare_get(shk_buf *buf);
/* Frees buf's block, if any, and sets the pointer NULL (the end of a buffer, or an object
 * parked or kept for another). */
void shk__buf_rare_drop(shk_buf *buf);
/* The same, only when nothing but an unmapped device is left in it and buf is not delayed
 * (after an unmap). */
void shk__buf_rare_trim(shk_buf *buf);
/* A call site of buf recorded under SHK_DEBUG=buf, NULL when none was. */
const void *shk__buf_created_at(const shk_buf *buf);
const void *shk__buf_released_at(const shk_buf *buf);

/* ---- buffers (buf.c) ---- */

/* Set while the heap hook or the buffer observer is: creation and release take their short
 * ways only while it is clear. */
extern atomic_bool shk__buf_observed;

/* The tag of a handle: live, or ended and kept in quarantine (SHK_DEBUG=buf). */
#define SHK__BUF_MAGIC_LIVE 0x53484b42u /* "SHKB" */
#define SHK__BUF_MAGIC_DEAD 0xdeadb0ffu

/* Guard bytes on each side of an inline buffer's bytes under SHK_DEBUG=buf. */
#define SHK__BUF_GUARD 16

/* How the last release of a buffer may end it without the general way (buf.c), decided when
 * the buffer is made, so that the release tests one byte instead of five fields: */
enum {
  SHK__BUF_END_GENERAL,  /* delay, callback, mapping, guards, another allocator, owned memory */
  SHK__BUF_END_PARK,     /* a recyclable inline object with no delay or callback: parked */
  SHK__BUF_END_CONSUMED  /* consumed with default options: out of the index, header kept with
                          * its fields as a default consume sets them (shk__buf_bare_keep) */
};

/* Ordered so that the fields the short ways of consume, create and release touch share the
 * first two 64-byte lines of the object (as laid out on x86-64): identity and shape first, then
 * the range, the block, the list link and the allocator; what only the general ways read
 * (callbacks, debug call sites, deferred links, device) is out of line, behind `rare`. */
struct shk_buf {
  atomic_size_t refs;
  uint32_t magic;  /* SHK__BUF_MAGIC_LIVE from creation; DEAD once released under SHK_DEBUG */
  uint8_t end_way; /* SHK__BUF_END_*; GENERAL once mapped to a device */
  uint8_t kind;    /* SHK__BUF_KIND_* of a recyclable object */
  bool guarded;    /* SHK__BUF_GUARD bytes of guard on each side of block.ptr (SHK_DEBUG) */
  bool owned;      /* destruction frees the memory */
  bool consumed;
  bool delayed;
  bool recyclable; /* inline heap or aligned object: may be parked by buf_recycle.c */
  bool bare;       /* a header alone (sizeof, no inline bytes): kept for the next one */
  bool in_slab;    /* a slot of a slab (buf_slab.c): indexed with its slab, not alone */
  uint64_t id;
  void *data;
  size_t size, count, item_size;
  shk_buf_block block;
  struct shk_buf *park_next; /* the next parked object, or kept header, of its list */
  shk__buf_allocator *allocator;
  size_t align;    /* an inline aligned object's alignment (0 for the heap) */
  size_t park_key; /* size and alignment in one word, for the per-thread lists */
  struct shk__buf_rare *rare; /* NULL for the usual buffer: callback, delay, device, debug */
  /* Last, so that a slab's slot ends at the slab pointer (SHK__BUF_SLOT_HEADER_SIZE): its bytes
   * follow there, 80 bytes less of a slot to write (create+release of 64 B, 10 000 live); with
   * the rare fields out of line, a slot's header is 144 bytes. */
  union {
    shk__buf_range range;       /* its own node in the index (not in_slab) */
    struct shk__buf_slab *slab; /* in_slab: the slab it is a slot of */
  };
};

/* The object header rounded so inline data after it is aligned like malloc's. */
#define SHK__BUF_HEADER_SIZE \
  ((sizeof(shk_buf) + SHK__MAX_ALIGN - 1) / SHK__MAX_ALIGN * SHK__MAX_ALIGN)
/* The header of a slab's slot (in_slab): the object up to its slab pointer, rounded the same way;
 * the range node it never uses is its bytes' place. */
#define SHK__BUF_SLOT_HEADER_SIZE                                                           \
  ((offsetof(shk_buf, slab) + sizeof(struct shk__buf_slab *) + SHK__MAX_ALIGN - 1) /       \
   SHK__MAX_ALIGN * SHK__MAX_ALIGN)

/* Tells the observer (not the heap hook) that buf's memory leaves the index. */
void shk__buf_tell_removed(const shk_buf *buf);

/* Runs the destroy callback, unmaps, frees and removes the range: the end of a buffer. */
void shk__buf_destroy(shk_buf *buf);

/* ---- SHK_DEBUG=buf (buf_debug.c) ---- */

/* Fills / checks (reporting a spoiled one) the guard bytes of a guarded buffer. */
void shk__buf_debug_guard_set(shk_buf *buf);
void shk__buf_debug_guard_check(const shk_buf *buf);
/* Whether buf is a live handle, or SHK_DEBUG=buf is off (true); else reports a double release,
 * a use after release or a handle that is none (by its tag and count), naming fn and its
 * caller, and returns false. */
bool shk__buf_debug_handle_ok(const shk_buf *buf, const char *fn, const void *caller);
/* Keeps an ended object (instead of free) so its tag can still be read; frees the oldest. */
void shk__buf_debug_retire(shk_buf *buf);
/* Checks the whole range index (buf_ranges.c), reporting each inconsistency; how many. */
size_t shk__buf_ranges_check(void);
/* SHK_DEBUG=buf's check after a change of the index (a creation or an end it follows): the
 * whole index while it holds at most 4 096 ranges, else at every 1 024th call. */
void shk__buf_ranges_debug_check(void);

/* In a public function taking a handle: under SHK_DEBUG=buf, returns `fail` for a handle that
 * is not live (after reporting it). The test is of the handle's own tag, which the function
 * reads beside its other fields: no global flag is read unless the tag is wrong, and without
 * SHK_DEBUG a tag is never made wrong. */
#define SHK__BUF_CHECK(buf, fail)                                                     \
  do {                                                                                \
    if (SHK__UNLIKELY((buf) && (buf)->magic != SHK__BUF_MAGIC_LIVE) &&                \
        !shk__buf_debug_handle_ok((buf), __func__, SHK__CALLER()))                    \
      return (fail);                                                                  \
  } while (0)

/* ---- per-thread state (buf_thread.c) ---- */

/* Size classes parked per thread (sizes below 4 KiB); larger ones share process-wide slots. */
#define SHK__BUF_THREAD_CLASSES 13

/* The recyclable objects: inline bytes of the built-in "heap", and of the built-in "aligned"
 * (bytes aligned inside the object's own malloc block). Each has its own lists. */
enum { SHK__BUF_KIND_HEAP, SHK__BUF_KIND_ALIGNED, SHK__BUF_KINDS };

/* Objects parked by one thread in one class: all of one size and alignment, linked through
 * park_next, at most shk__buf_park_limit(class) of them. */
typedef struct shk__buf_park {
  shk_buf *head;
  size_t n;
  size_t key; /* shk__buf_park_key() of every object in the list, when n > 0 */
} shk__buf_park;

/* Headers without bytes kept by a thread after their buffer ended (buf_recycle.c), linked
 * through park_next: ended, out of the index and holding nothing, they are plain memory kept
 * for reuse, not parked buffers. */
typedef struct shk__buf_headers {
  struct shk_buf *head;
  size_t n;
} shk__buf_headers;

typedef struct shk__buf_thread {
  shk__buf_park parked[SHK__BUF_KINDS][SHK__BUF_THREAD_CLASSES]; /* the owning thread's only */
  atomic_size_t parked_count;               /* written by the owner, read by any thread */
  shk__buf_headers bare;                    /* of any bare object but those below */
  /* Of ended consumes made with default options, every field still as such a consume sets it
   * (buf.c: only the identity, shape and range are written on reuse). */
  shk__buf_headers consumed;
  uint64_t next_id, id_end;                 /* the ids [next_id, id_end) reserved by the owner */
  /* Slabs (buf_slab.c), the owner's only: the one of each class that creates take slots from,
   * every slab it owns, how far its next slab of each class grows. */
  struct shk__buf_slab *slabs[SHK__BUF_THREAD_CLASSES];
  struct shk__buf_slab *slab_list;
  uint8_t slab_grow[SHK__BUF_THREAD_CLASSES];
  /* Slots the owner took from slabs less those it gave back to its own: written by the owner
   * alone, read by shk_buf_live_count (slots given back by other threads: buf_slab.c). */
  atomic_size_t slab_out;
  struct shk__buf_thread *prev, *next;      /* the list of all, under buf_thread.c's lock */
} shk__buf_thread;

/* The calling thread's state, NULL until first needed. */
extern SHK__THREAD_LOCAL shk__buf_thread *shk__buf_this_thread;
/* Makes the calling thread's state; NULL when it cannot (no memory, no thread-exit key). */
shk__buf_thread *shk__buf_thread_attach(void);

static inline shk__buf_thread *shk__buf_thread_get(void) {
  shk__buf_thread *t = shk__buf_this_thread;
  return t ? t : shk__buf_thread_attach();
}

/* Reserves the calling thread a new block of ids and returns its first. */
uint64_t shk__buf_reserve_ids(void);
/* Reserves thread t (the caller's) a new block of ids, none spent. */
void shk__buf_refill_ids(shk__buf_thread *t);

/* A new buffer id: unique in the process, increasing within a thread. */
static inline uint64_t shk__buf_next_id(void) {
  shk__buf_thread *t = shk__buf_this_thread;
  if (t && t->next_id != t->id_end) return t->next_id++;
  return shk__buf_reserve_ids();
}
/* The objects parked by all threads, and the sum of their slab_out counts (with those of the
 * threads that ended, wrapping: see buf_slab.c). */
void shk__buf_thread_totals(size_t *parked, size_t *slab_out);

/* ---- recycling (buf_recycle.c, with the per-thread short ways inline here) ---- */

/* Class k holds sizes of bit length k, so at most one block below 2^k each: with sizes up to
 * 2 MiB - 1 cached, under 4 MiB is kept back by the shared slots and under 8 KiB per thread. */
#define SHK__BUF_CLASSES 22

/* The class of a size, or SHK__BUF_CLASSES when the size is not cached. */
static inline size_t shk__buf_class_of(size_t size) {
  return size >> (SHK__BUF_CLASSES - 1) ? SHK__BUF_CLASSES : shk__bit_length(size);
}

/* The owner alone writes its count: a load and a store, no locked instruction. */
static inline void shk__buf_count_parked(shk__buf_thread *t, int delta) {
  size_t n = atomic_load_explicit(&t->parked_count, memory_order_relaxed);
  atomic_store_explicit(&t->parked_count, n + (size_t)delta, memory_order_relaxed);
}

/* The other cases of shk__buf_recycle_take / _keep below: shared classes, mismatched sizes, no
 * thread state yet. */
shk_buf *shk__buf_recycle_take_slow(int kind, size_t size, size_t align);
bool shk__buf_recycle_keep_slow(shk_buf *buf);

/* How many objects of class k (< SHK__BUF_THREAD_CLASSES) one thread may park: about 128 KiB
 * of bytes per class (sizes of class k are below 2^k), and at most 1 024 objects, so that a
 * thread that keeps a thousand small buffers alive and renews them never reaches malloc or the
 * index (the cost of that was 15x malloc+free). A table: computing it cost the short way of
 * release 6 instructions. */
extern const uint16_t shk__buf_park_limits[SHK__BUF_THREAD_CLASSES];
static inline size_t shk__buf_park_limit(size_t k) { return shk__buf_park_limits[k]; }

/* Size (below 4 KiB here) and alignment (a power of two, or 0) in one word, compared in one
 * instruction by the lists. */
static inline size_t shk__buf_park_key(size_t size, size_t align) {
  return size | (size_t)shk__bit_length(align) << 16;
}

/* Takes the head of a non-empty list of thread t. */
static inline shk_buf *shk__buf_park_pop(shk__buf_thread *t, shk__buf_park *p) {
  shk_buf *buf = p->head;
  p->head = buf->park_next;
  p->n--;
  shk__buf_count_parked(t, -1);
  return buf;
}

/* The short ways, in the calling thread's own lists only: a parked object of exactly this kind,
 * size and alignment (else NULL), and parking one in class k's list when it has room. */
static inline shk_buf *shk__buf_recycle_take_own(int kind, size_t size, size_t align) {
  size_t k = shk__buf_class_of(size);
  shk__buf_thread *t = shk__buf_this_thread;
  if (!t || k >= SHK__BUF_THREAD_CLASSES) return NULL;
  shk__buf_park *p = &t->parked[kind][k];
  if (!p->n || p->key != shk__buf_park_key(size, align)) return NULL;
  return shk__buf_park_pop(t, p);
}

static inline bool shk__buf_park_push(shk__buf_thread *t, size_t k, shk_buf *buf) {
  shk__buf_park *p = &t->parked[buf->kind][k];
  if (!p->n) p->key = buf->park_key;
  else if (p->key != buf->park_key || p->n >= shk__buf_park_limit(k)) return false;
  buf->park_next = p->head;
  p->head = buf;
  p->n++;
  shk__buf_count_parked(t, 1);
  return true;
}

static inline bool shk__buf_recycle_keep_own(shk_buf *buf) {
  size_t k = shk__buf_class_of(buf->size);
  shk__buf_thread *t = shk__buf_this_thread;
  return t && k < SHK__BUF_THREAD_CLASSES && shk__buf_park_push(t, k, buf);
}

/* A parked inline object of exactly this kind, size and alignment, its range still indexed;
 * else NULL (a list of another size in the class is freed: the new size replaces it). The slow
 * way is called only where it can find or free something: an empty list of this thread (every
 * create while more buffers are live than parked) costs no call. */
static inline shk_buf *shk__buf_recycle_take(int kind, size_t size, size_t align) {
  size_t k = shk__buf_class_of(size);
  shk__buf_thread *t = shk__buf_this_thread;
  if (!t || k >= SHK__BUF_THREAD_CLASSES) return shk__buf_recycle_take_slow(kind, size, align);
  shk__buf_park *p = &t->parked[kind][k];
  if (!p->n) return NULL;
  if (p->key != shk__buf_park_key(size, align)) return shk__buf_recycle_take_slow(kind, size, align);
  return shk__buf_park_pop(t, p);
}

/* Parks a destroyed inline object (range still indexed); false when its size is not cached or
 * its list is full or holds another size (the caller frees it). */
static inline bool shk__buf_recycle_keep(shk_buf *buf) {
  size_t k = shk__buf_class_of(buf->size);
  shk__buf_thread *t = shk__buf_this_thread;
  if (!t || k >= SHK__BUF_THREAD_CLASSES) return shk__buf_recycle_keep_slow(buf);
  return shk__buf_park_push(t, k, buf);
}

/* Headers kept per thread (shk__buf_headers) so that consume+release needs no malloc. At most
 * this many in each list. */
#define SHK__BUF_BARE_MAX 64

static inline shk_buf *shk__buf_headers_pop(shk__buf_headers *list) {
  shk_buf *buf = list->head;
  list->head = buf->park_next;
  list->n--;
  return buf;
}

static inline bool shk__buf_headers_push(shk__buf_headers *list, shk_buf *buf) {
  if (list->n >= SHK__BUF_BARE_MAX) return false;
  buf->park_next = list->head;
  list->head = buf;
  list->n++;
  return true;
}

/* A kept header of any bare object (its fields all to be written), else NULL. */
static inline shk_buf *shk__buf_bare_take(void) {
  shk__buf_thread *t = shk__buf_this_thread;
  return t && t->bare.head ? shk__buf_headers_pop(&t->bare) : NULL;
}

/* Keeps an ended bare object's header (false: full, or no thread state; the caller frees it):
 * a default consume's on the list of its kind (buf.c knows which), any other on the general
 * one. */
static inline bool shk__buf_bare_keep(shk_buf *buf, bool default_consume) {
  shk__buf_thread *t = shk__buf_this_thread;
  return t && shk__buf_headers_push(default_consume ? &t->consumed : &t->bare, buf);
}

/* How many objects are parked (shk_buf_live_count leaves them out). */
size_t shk__buf_recycle_count(void);
/* The same, and the threads' slots taken from slabs (shk__buf_thread_totals), in one walk of the
 * threads. */
size_t shk__buf_recycle_totals(size_t *slab_out);
/* Frees what the calling thread parked and what the shared slots hold (shutdown). */
void shk__buf_recycle_flush(void);
/* Frees what thread t parked (t's owner, as it ends). */
void shk__buf_recycle_flush_thread(shk__buf_thread *t);

/* ---- slabs (buf_slab.c, with the owner's short ways inline here) ---- */

/* One malloc block of slots for new heap buffers of one size, made by one thread (its owner)
 * and indexed as ONE range: a create that finds nothing parked takes a slot (no malloc, no index
 * work), a release that cannot park gives the slot back (no free, no index work). The whole
 * block is the library's while the slab lives, as a parked object's memory is, so a consume
 * into any of it, free slot or live buffer, is refused. A slot given back keeps its header's
 * fields as made (like a parked object), so taking it again writes only the identity. */
typedef struct shk__buf_slab {
  shk__buf_range range; /* first: the index's node is the block's own address */
  /* The owning thread's state; NULL once the slab is orphaned (its owner ended, or shut down).
   * Written by the owner only, read by any thread to learn whether it is the owner. */
  _Atomic(shk__buf_thread *) owner;
  shk_buf *free;       /* the owner's: slots given back by it, linked through park_next */
  size_t used;         /* the owner's: slots out (live, parked, or on `remote` not yet taken) */
  size_t size;         /* of every slot's bytes */
  size_t stride, cap;  /* bytes from one slot to the next; slots in the block */
  /* With an address sanitizer in the process (shk__os_sanitizer_present), what a slot uses
   * (header and bytes) is followed by SHK__BUF_SLAB_REDZONE bytes, poisoned when the slab is
   * made, so that the program's own checks see a write past a buffer's end in a slab as they
   * would past a malloc block. Nothing else is poisoned, so that take and give have no work for
   * it: a released slot's bytes (as a parked object's are not) cost every slab create+release a
   * branch and saved registers, 23 instructions of 253; unpoisoning at each carve, 8. */
  size_t span;         /* bytes of a slot in use: header and bytes */
  bool poisoned;
  atomic_size_t carved; /* slots made so far (owner writes, the walk reads): the rest is raw */
  uint8_t k;           /* the size class */
  /* Slots given back by other threads, linked through park_next, taken by the owner in one
   * exchange; SHK__BUF_SLAB_ORPHAN (alone) once orphaned, after which `outstanding` counts the
   * slots still out and whoever gives back the last one frees the slab. */
  _Atomic(uintptr_t) remote;
  atomic_size_t outstanding;
  struct shk__buf_slab *prev, *next; /* the owner's list of its slabs (t->slab_list) */
  unsigned char *slots;
} shk__buf_slab;

#define SHK__BUF_SLAB_ORPHAN ((uintptr_t)1)
#define SHK__BUF_SLAB_REDZONE 32


/* The owner's other ways of taking a slot (shk__buf_slab_take below): the slots other threads
 * gave back, another slab, a new slab; NULL when none can be had (the caller mallocs). */
shk_buf *shk__buf_slab_take_slow(shk__buf_thread *t, size_t k, size_t size, bool *fresh);
/* A slot given back by a thread that does not own its slab (or to an orphaned slab). */
void shk__buf_slab_give_other(shk_buf *buf);
/* The owner's slab s, none of whose slots is out and which is not its current one, is freed. */
void shk__buf_slab_drop(shk__buf_thread *t, shk__buf_slab *s);
/* Orphans (or frees, when nothing of it is out) every slab thread t owns (t's owner, as it
 * ends, or shk_buf_shutdown). */
void shk__buf_slab_flush_thread(shk__buf_thread *t);
/* Slabs in the index, and the slots given back by other threads (for shk_buf_live_count). */
size_t shk__buf_slab_count(void);
size_t shk__buf_slab_given_by_others(void);
/* Lists the slots of slab node s whose count is not 0 (the walk over live buffers, under the
 * index's lock, which keeps the slab from going meanwhile). */
void shk__buf_slab_each_live(const shk__buf_range *node, void (*fn)(const shk_buf *slot,
                                                                     void *bytes, size_t size,
                                                                     void *ctx),
                             void *ctx);

static inline void shk__buf_count_slab_out(shk__buf_thread *t, int delta) {
  size_t n = atomic_load_explicit(&t->slab_out, memory_order_relaxed);
  atomic_store_explicit(&t->slab_out, n + (size_t)delta, memory_order_relaxed);
}

/* Takes a slot that thread t (the owner) gave back to its slab s (s->free not NULL): its fields
 * are as made. */
static inline shk_buf *shk__buf_slab_pop(shk__buf_thread *t, shk__buf_slab *s) {
  shk_buf *buf = s->free;
  s->free = buf->park_next;
  s->used++;
  shk__buf_count_slab_out(t, 1);
  return buf;
}

/* Carves a new slot of thread t's slab s (fewer carved than it holds): its header raw but for
 * its slab pointer and a count of 0, which the walk reads first. */
static inline shk_buf *shk__buf_slab_carve(shk__buf_thread *t, shk__buf_slab *s) {
  size_t i = atomic_load_explicit(&s->carved, memory_order_relaxed);
  shk_buf *buf = (shk_buf *)(s->slots + i * s->stride);
  atomic_store_explicit(&buf->refs, 0, memory_order_relaxed);
  buf->slab = s;
  atomic_store_explicit(&s->carved, i + 1, memory_order_release);
  s->used++;
  shk__buf_count_slab_out(t, 1);
  return buf;
}

/* A slot of the calling thread's current slab for this class and size: one it gave back, else
 * a new one carved (*fresh), else the slow way. t is the calling thread's state. */
static inline shk_buf *shk__buf_slab_take(shk__buf_thread *t, size_t k, size_t size,
                                          bool *fresh) {
  shk__buf_slab *s = t->slabs[k];
  if (SHK__UNLIKELY(!s || s->size != size)) return shk__buf_slab_take_slow(t, k, size, fresh);
  *fresh = !s->free;
  if (s->free) return shk__buf_slab_pop(t, s);
  if (SHK__UNLIKELY(atomic_load_explicit(&s->carved, memory_order_relaxed) == s->cap))
    return shk__buf_slab_take_slow(t, k, size, fresh);
  return shk__buf_slab_carve(t, s);
}

/* Gives a slot back to its slab: the owner's own list with plain stores, or the other way. A
 * slab left with nothing out goes back unless it is its owner's current one. */
static inline void shk__buf_slab_give(shk_buf *buf) {
  shk__buf_slab *s = buf->slab;
  shk__buf_thread *t = shk__buf_this_thread;
  if (t && atomic_load_explicit(&s->owner, memory_order_relaxed) == t) {
    buf->park_next = s->free;
    s->free = buf;
    shk__buf_count_slab_out(t, -1);
    if (--s->used == 0 && t->slabs[s->k] != s) shk__buf_slab_drop(t, s);
  } else {
    shk__buf_slab_give_other(buf);
  }
}

/* ---- deferred list (buf_deferred.c) ---- */

/* Moves a buffer whose last reference went to the deferred list. */
void shk__buf_deferred_add(shk_buf *buf);

#endif
