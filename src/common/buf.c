/* Buffers: creation by a named allocator, wrapping external memory, reference counting,
 * destruction (callback exactly once), accessors and the heap-event hook. */
#include <stdlib.h>
#include <string.h>

#include "buf_internal.h"
#include "buf_ranges_short.h"
#include "lens_hook.h"

/* ---- heap hook and observer ---- */

/* Fast check so buffers pay nothing without a hook, an observer or SHK_DEBUG=buf (whose checks
 * ride on it: the short ways below need no test of their own). Read by the index under its
 * lock too (shk__buf_ranges_insert_seen). */
atomic_bool shk__buf_observed;
static shk_buf_heap_fn hook_fn;            /* guarded by SHK__LOCK_BUF_HOOK */
static void *hook_user;                    /* guarded by SHK__LOCK_BUF_HOOK */
static shk__buf_observer_fn observer_fn;   /* guarded by SHK__LOCK_BUF_HOOK */
static bool lens_on;                       /* guarded by SHK__LOCK_BUF_HOOK: a lens hears of buffers */

static void lock_hook(void) { shk__lock(SHK__LOCK_BUF_HOOK); }
static void unlock_hook(void) { shk__unlock(SHK__LOCK_BUF_HOOK); }

static void update_observed_locked(void) {
  atomic_store(&shk__buf_observed, hook_fn != NULL || observer_fn != NULL || lens_on ||
                                        shk__debug_on(SHK__DEBUG_BUF));
}

int shk_buf_set_heap_hook(shk_buf_heap_fn fn, void *user) {
  lock_hook();
  hook_fn = fn;
  hook_user = user;
  update_observed_locked();
  unlock_hook();
  return SHK_OK;
}

void shk__buf_lens_changed(void) {
  lock_hook();
  lens_on = shk__lens_bufs_on();
  update_observed_locked();
  unlock_hook();
}

void shk__buf_observer_set(shk__buf_observer_fn fn) {
  lock_hook();
  observer_fn = fn;
  update_observed_locked();
  unlock_hook();
}

/* The address the allocator gives for the bytes (no handle check: also for an ending buffer). */
static uintptr_t address_of(const shk_buf *buf) {
  const shk_buf_allocator *t = &buf->allocator->table;
  return t->address ? t->address(t->user, &buf->block) : (uintptr_t)buf->data;
}

static void fill_info(const shk_buf *buf, shk_buf_info *info) {
  info->data = buf->data;
  info->address = address_of(buf);
  info->size = buf->size;
  info->item_size = buf->item_size;
  info->count = buf->count;
  info->id = buf->id;
  info->allocator = buf->allocator->name;
}

/* Calls the hook and, when `observer`, the observer, with no lock held (lock order in
 * internal.h: the observer takes the watcher's locks). */
static SHK__NOINLINE void tell(const shk_buf *buf, bool allocated, bool hook, bool observer) {
  lock_hook();
  shk_buf_heap_fn fn = hook ? hook_fn : NULL;
  void *user = hook_user;
  shk__buf_observer_fn ofn = observer ? observer_fn : NULL;
  bool lens = hook && lens_on;
  unlock_hook();
  if (!fn && !ofn && !lens) return;
  shk_buf_info info;
  fill_info(buf, &info);
  if (lens) shk__lens_hook_buf(&info, allocated);
  if (fn) fn(allocated, &info, user);
  if (ofn) ofn(&info, allocated);
}

static inline void report_heap(const shk_buf *buf, bool allocated) {
  if (atomic_load_explicit(&shk__buf_observed, memory_order_relaxed))
    tell(buf, allocated, true, true);
}

void shk__buf_tell_removed(const shk_buf *buf) { tell(buf, false, false, true); }

/* ---- the walk over live buffers ---- */

typedef struct live_walk {
  shk_buf_info *infos;
  size_t cap, n;
} live_walk;

/* One live buffer of the walk: its bytes and size from the index's node or its slab (stable
 * under the index's lock), its other fields from the object, read racily (below). */
SHK__RACY_READ static void list_one(const shk_buf *buf, void *bytes, size_t size,
                                    const char *allocator, live_walk *walk) {
  if (walk->n < walk->cap) {
    shk_buf_info *info = &walk->infos[walk->n];
    info->data = bytes;
    info->address = (uintptr_t)bytes;
    info->size = size;
    info->item_size = buf->item_size;
    info->count = buf->count;
    info->id = buf->id;
    info->allocator = allocator;
  }
  walk->n++;
}

/* A live slot of a slab: always the built-in heap's (its allocator field is not read, as it may
 * be being written by the slot's first creation). */
static void list_slot(const shk_buf *slot, void *bytes, size_t size, void *ctx) {
  /* Slots are made only once the registry is set up (create_heap_fresh). */
  const shk__buf_allocator *heap = atomic_load_explicit(&shk__buf_heap_entry, memory_order_acquire);
  list_one(slot, bytes, size, heap->name, ctx);
}

/* A parked or released object (count 0) is not live, nor a slab's free slot. A parked heap
 * object may be taken back by another thread meanwhile without any lock: its fields are then
 * read racily (an answer at worst stale, which the observer, told of the reuse, corrects);
 * ThreadSanitizer is told so. */
SHK__RACY_READ static void list_live(shk__buf_range *node, void *ctx) {
  if (node->slab) {
    shk__buf_slab_each_live(node, list_slot, ctx);
    return;
  }
  shk_buf *buf = (shk_buf *)((unsigned char *)node - offsetof(shk_buf, range));
  if (atomic_load_explicit(&buf->refs, memory_order_relaxed) == 0) return;
  list_one(buf, (void *)node->start, node->end - node->start, buf->allocator->name, ctx);
}

int shk__buf_live_list(shk_buf_info **out, size_t *count) {
  *out = NULL;
  *count = 0;
  size_t cap = shk__buf_ranges_count() + 64;
  for (;;) {
    live_walk walk = {shk__malloc(cap * sizeof(shk_buf_info)), cap, 0};
    if (!walk.infos) return SHK_ENOMEM;
    shk__buf_ranges_walk(list_live, &walk);
    if (walk.n <= cap) {
      *out = walk.infos;
      *count = walk.n;
      return SHK_OK;
    }
    free(walk.infos);
    cap = walk.n * 2;
  }
}

/* ---- creation ---- */

/* Every field's zero is its default. */
static const shk_buf_options default_options = {.struct_size = sizeof(shk_buf_options)};

static const shk__options_layout options_layout = {
    sizeof(shk_buf_options), SHK__OPTIONS_END(shk_buf_options, take_ownership),
    SHK__OPTIONS_END(shk_buf_options, take_ownership), NULL, 0, &default_options};

void shk_buf_options_init_size(shk_buf_options *opts, size_t size) {
  shk__options_init(&options_layout, opts, size);
}

int shk__buf_options_read(const shk_buf_options *opts, shk_buf_options *out) {
  return shk__options_read(&options_layout, opts, out);
}

#define HEADER_SIZE SHK__BUF_HEADER_SIZE

static int check_shape(size_t count, size_t item_size, size_t *size) {
  if (count == 0 || item_size == 0) return SHK_ESIZE;
  return shk__mul_overflows(count, item_size, size) ? SHK_EOVERFLOW : SHK_OK;
}

/* Whether count x item_size bytes at ptr make a valid range of *size bytes: no factor zero, no
 * overflow, no wrap, ptr not NULL. One branch where check_shape and shk__range_wraps take five:
 * the short way of consume asks this, and leaves the exact error to the general way. */
static inline bool shape_fits(const void *ptr, size_t count, size_t item_size, size_t *size) {
  *size = count * item_size;
  /* Factors below 2^(half the bits) cannot overflow; ptr - 1 < UINTPTR_MAX - size holds
   * exactly when ptr is not NULL and [ptr, ptr + size) does not wrap. */
  return ((count | item_size) >> (sizeof(size_t) * 4) == 0) & (*size != 0) &
         ((uintptr_t)ptr - 1 < UINTPTR_MAX - *size);
}

/* What each new buffer sets, fresh or recycled, whose options want no rare block: its rare
 * pointer is NULL already (object_fill writes it; no object is parked, kept or given back to a
 * slab with one), so nothing of the rare fields is written. An id is spent when creation fails
 * later; ids stay unique, and increasing per thread. */
static inline void set_identity_plain(shk_buf *buf, uint64_t id, size_t count, size_t item_size,
                                      uint8_t end_way) {
  /* A store, not atomic_init: a parked object taken back here may be read meanwhile by the
   * walk over live buffers (same instruction on x86 and ARM). */
  atomic_store_explicit(&buf->refs, 1, memory_order_relaxed);
  buf->magic = SHK__BUF_MAGIC_LIVE;
  buf->id = id;
  buf->count = count;
  buf->item_size = item_size;
  buf->delayed = false;
  buf->end_way = end_way;
}

/* The same for any options: rare is the block made for them (shk__buf_rare_wanted, before any
 * object was taken, so that its failure changes nothing), else NULL. plain_way: the buffer's
 * end_way when it has no block. */
static void set_identity(shk_buf *buf, uint64_t id, size_t count, size_t item_size,
                         const shk_buf_options *opts, uint8_t plain_way, shk__buf_rare *rare) {
  set_identity_plain(buf, id, count, item_size, rare ? SHK__BUF_END_GENERAL : plain_way);
  if (rare) {
    buf->rare = rare;
    buf->delayed = opts->delayed_free;
  }
}

/* The recyclable kind named by an allocator name, or -1. The built-ins can be neither replaced
 * nor unregistered, so the name alone decides; compared without a call (a strcmp per create
 * was an eighth of an aligned create+release). */
static SHK__NOINLINE int builtin_kind(const char *name) {
  if (!name) return SHK__BUF_KIND_HEAP;
  if (name[0] == 'h' && name[1] == 'e' && name[2] == 'a' && name[3] == 'p' && name[4] == 0)
    return SHK__BUF_KIND_HEAP;
  if (name[0] == 'a' && name[1] == 'l' && name[2] == 'i' && name[3] == 'g' && name[4] == 'n' &&
      name[5] == 'e' && name[6] == 'd' && name[7] == 0)
    return SHK__BUF_KIND_ALIGNED;
  return -1;
}

/* The alignment an inline object of this kind keeps (0: malloc's own). */
static size_t kind_align(int kind, const shk_buf_options *opts) {
  if (kind != SHK__BUF_KIND_ALIGNED) return 0;
  return opts->alignment ? opts->alignment : SHK__BUF_ALIGNED_DEFAULT;
}

/* A parked object of this size when a built-in heap or aligned allocator is asked for, else
 * NULL. No lookup is needed: the object already points at its allocator. Its other fields are as
 * its destruction left them, which is as made: inline, owned by no one, indexed, unmapped, on no
 * list. */
static shk_buf *object_reuse(size_t size, size_t count, size_t item_size,
                             const shk_buf_options *opts, shk__buf_rare *rare) {
  int kind = builtin_kind(opts->allocator);
  if (kind < 0) return NULL;
  shk_buf *buf = shk__buf_recycle_take(kind, size, kind_align(kind, opts));
  if (buf) set_identity(buf, shk__buf_next_id(), count, item_size, opts, SHK__BUF_END_PARK, rare);
  return buf;
}

/* Whether the object can hold its bytes (inline) for this allocator, and where they start;
 * *extra counts the bytes beyond header and size (alignment, guards). */
static bool inline_layout(const shk__buf_allocator *allocator, size_t size, bool guard,
                          const shk_buf_options *opts, int *kind, size_t *align, size_t *extra) {
  if (!allocator->builtin) return false;
  if (allocator->table.alloc == shk__buf_heap_allocator.alloc) *kind = SHK__BUF_KIND_HEAP;
  else if (allocator->table.alloc == shk__buf_aligned_allocator.alloc) *kind = SHK__BUF_KIND_ALIGNED;
  else return false;
  *align = kind_align(*kind, opts);
  *extra = (*align > SHK__MAX_ALIGN ? *align - 1 : 0) + (guard ? 2 * SHK__BUF_GUARD : 0);
  return size <= SIZE_MAX - HEADER_SIZE - *extra;
}

/* The fields of a new object besides its identity (set_identity, after this): bytes is where its
 * inline bytes start, NULL for a bare header (whose memory the allocator gives later). Field by
 * field in the order of the struct rather than memset: a small memset compiled to `rep stos`,
 * which was half of the cost of creating a buffer; inlined with constants (create_heap_fresh),
 * the adjacent stores merge. */
static inline void object_fill(shk_buf *buf, shk__buf_allocator *allocator, size_t size,
                               void *bytes, int kind, size_t align, bool debug) {
  buf->kind = (uint8_t)kind;
  buf->guarded = bytes && debug;
  buf->owned = false;
  buf->consumed = false;
  buf->recyclable = bytes && !debug;
  buf->bare = !bytes;
  buf->in_slab = false;
  buf->data = NULL;
  buf->size = size;
  buf->block.ptr = bytes;
  buf->block.state = NULL;
  buf->block.zeroed = false;
  buf->park_next = NULL;
  buf->allocator = allocator;
  buf->align = align;
  buf->park_key = shk__buf_park_key(size, align);
  buf->rare = NULL;
}

/* A new object for the named allocator. Buffers of the built-in heap and aligned allocators get
 * their bytes in the same malloc block (inline) when may_inline, which halves the malloc calls
 * and lets them be recycled; other memory comes later from the allocator. rare: the options'
 * block (set_identity) or NULL, the new object's, or freed when this fails. */
static inline int object_new(size_t size, size_t count, size_t item_size,
                             const shk_buf_options *opts, bool may_inline, shk__buf_rare *rare,
                             shk_buf **out) {
  shk__buf_allocator *allocator = NULL;
  int rc = shk__buf_allocator_get(opts->allocator, &allocator);
  if (rc != SHK_OK) {
    free(rare);
    return rc;
  }
  int kind = 0;
  size_t align = 0, extra = 0;
  /* Under SHK_DEBUG=buf inline bytes get guards and are never parked (a parked object would
   * hide a use after release), and every creation and release takes its long way. */
  bool debug = shk__debug_on(SHK__DEBUG_BUF);
  if (debug && !atomic_load_explicit(&shk__buf_observed, memory_order_relaxed))
    atomic_store(&shk__buf_observed, true);
  bool inline_data =
      may_inline && inline_layout(allocator, size, debug, opts, &kind, &align, &extra);
  shk_buf *buf = inline_data ? shk__malloc(HEADER_SIZE + extra + size) : shk__buf_bare_take();
  bool bare = !inline_data;
  if (bare && !buf) buf = shk__malloc(sizeof *buf);
  if (!buf) {
    shk__buf_allocator_drop(allocator);
    free(rare);
    return SHK_ENOMEM;
  }
  void *bytes = NULL;
  if (inline_data) {
    uintptr_t p = (uintptr_t)buf + HEADER_SIZE + (debug ? SHK__BUF_GUARD : 0);
    if (align > SHK__MAX_ALIGN) p = (p + align - 1) & ~(uintptr_t)(align - 1);
    bytes = (void *)p;
  }
  object_fill(buf, allocator, size, bytes, kind, align, debug);
  set_identity(buf, shk__buf_next_id(), count, item_size, opts,
               inline_data && !debug ? SHK__BUF_END_PARK : SHK__BUF_END_GENERAL, rare);
  if (buf->guarded) shk__buf_debug_guard_set(buf);
  *out = buf;
  return SHK_OK;
}

/* Frees an object whose creation failed, and its rare block; its memory, if any, is already
 * handled. */
static void object_abandon(shk_buf *buf) {
  shk__buf_allocator_drop(buf->allocator);
  shk__buf_rare_drop(buf);
  free(buf);
}

/* Ends the creation of a new object: the range enters the index, the hook hears of it. On
 * failure the memory is handed back (when owned) and the object freed. */
static inline int buf_publish(shk_buf *buf, shk_buf **out) {
  buf->data = buf->block.ptr;
  buf->range.start = (uintptr_t)buf->data;
  buf->range.end = buf->range.start + buf->size;
  buf->range.slab = false; /* a buffer's own node, for the walk */
  int rc = shk__buf_ranges_insert_seen(&buf->range);
  if (rc < 0) {
    const shk_buf_allocator *t = &buf->allocator->table;
    /* Refused external memory stays the caller's, even when ownership was offered. */
    if (buf->owned && !buf->consumed) t->free(t->user, &buf->block, buf->size);
    object_abandon(buf);
    return rc;
  }
  if (rc == SHK__BUF_RANGES_OBSERVED) tell(buf, true, true, true);
  *out = buf;
  return SHK_OK;
}

static void init_bytes(shk_buf *buf, const shk_buf_options *opts) {
  /* Zero means zero: the Perl original's C allocator skipped this and returned garbage. */
  if (opts->init == SHK_BUF_INIT_ZERO && !buf->block.zeroed) memset(buf->block.ptr, 0, buf->size);
  if (opts->init == SHK_BUF_INIT_BYTE) memset(buf->block.ptr, opts->init_byte, buf->size);
}

/* Creation without a parked object: a new object, memory from the allocator unless inline. */
static SHK__NOINLINE int create_new(size_t size, size_t count, size_t item_size, const shk_buf_options *opts,
                      shk__buf_rare *rare, shk_buf **out) {
  shk_buf *buf = NULL;
  int rc = object_new(size, count, item_size, opts, true, rare, &buf);
  if (rc != SHK_OK) return rc;
  if (!buf->block.ptr) {
    shk_buf_alloc_request req = {size, count, item_size, opts->alignment, opts->name,
                                 opts->init == SHK_BUF_INIT_ZERO};
    const shk_buf_allocator *t = &buf->allocator->table;
    rc = t->alloc(t->user, &req, &buf->block);
    if (rc == SHK_OK && !buf->block.ptr) rc = SHK_ENOMEM; /* an allocator that said yes to nothing */
    if (rc != SHK_OK) {
      object_abandon(buf);
      return rc;
    }
    buf->owned = true;
  }
  init_bytes(buf, opts);
  return buf_publish(buf, out);
}

/* Under SHK_DEBUG=buf: the index checked, then the error reported or the new buffer's call site
 * noted in its rare block, made for it when it has none (best effort: without memory for it,
 * no call site, and the creation still succeeds). */
static SHK__NOINLINE void debug_created(int rc, shk_buf **out, const char *fn, const void *caller) {
  shk__buf_ranges_debug_check();
  if (rc != SHK_OK) {
    shk__debug_error(SHK__DEBUG_BUF, fn, rc, caller);
  } else if (out && *out) {
    shk__buf_rare *rare = shk__buf_rare_get(*out);
    if (rare) rare->created_at = caller;
  }
}

static int create_heap_slow(size_t k, size_t size, size_t count, size_t item_size,
                            const shk_buf_options *opts, shk_buf **out);

/* The thread state for a new object of the built-in heap made the short way's way (slab or
 * one malloc block, create_heap_fresh) when the short way was not taken only for want of thread
 * state or of an id at hand (every 1 024th create of a thread), or for an init; else NULL. */
static shk__buf_thread *heap_fresh_way(const shk_buf_options *opts, size_t size) {
  shk__buf_allocator *heap = NULL; /* the get sets the registry up on a process's first create */
  if (opts->allocator || shk__buf_class_of(size) >= SHK__BUF_THREAD_CLASSES ||
      atomic_load_explicit(&shk__buf_observed, memory_order_relaxed) ||
      shk__debug_on(SHK__DEBUG_BUF) || shk__buf_allocator_get(NULL, &heap) != SHK_OK)
    return NULL;
  shk__buf_thread *t = shk__buf_thread_get();
  if (t && t->next_id == t->id_end) shk__buf_refill_ids(t);
  return t;
}

/* Creation with nothing parked to take back: a slot or a heap object made as the short way
 * would (heap_fresh_way) when the options want no rare block, else create_new (rare: the
 * options' block, the new buffer's or freed). Out of line: with it inline, create_general saved
 * more registers on every call, and a create of 1 MiB taking a parked object back cost about
 * 2 ns more. */
static SHK__NOINLINE int create_unparked(size_t size, size_t count, size_t item_size,
                                         const shk_buf_options *opts, shk__buf_rare *rare,
                                         shk_buf **out) {
  if (rare || !heap_fresh_way(opts, size))
    return create_new(size, count, item_size, opts, rare, out);
  int rc = create_heap_slow(shk__buf_class_of(size), size, count, item_size, opts, out);
  if (rc == SHK_OK) init_bytes(*out, opts);
  return rc;
}

/* Creation when the short way below does not apply: options, another allocator, the shared
 * slots, or a new object. SHK_DEBUG's work for a creation is done here, off the short way (which
 * it turns off). */
static SHK__NOINLINE int create_general(size_t size, size_t count, size_t item_size,
                                        const shk_buf_options *opts, shk_buf **out,
                                        const void *caller) {
  SHK__LENS_BUF_READY();
  int rc = SHK_OK;
  /* The options' rare block first, so that without memory for it nothing is taken. */
  shk__buf_rare *rare = NULL;
  shk_buf *buf = NULL;
  if (shk__buf_rare_wanted(opts) && !(rare = shk__buf_rare_new(opts))) {
    rc = SHK_ENOMEM;
  } else if (!(buf = object_reuse(size, count, item_size, opts, rare))) {
    rc = create_unparked(size, count, item_size, opts, rare, out);
  } else {
    init_bytes(buf, opts); /* nothing to allocate, the range is indexed already */
    buf->data = buf->block.ptr;
    report_heap(buf, true);
    *out = buf;
  }
  if (SHK__UNLIKELY(shk__debug_on(SHK__DEBUG_BUF))) debug_created(rc, out, "shk_buf_create", caller);
  return rc;
}

/* The short way's object: parked in this thread, with no hook and an id at hand; else NULL. */
static inline shk_buf *take_short(int kind, size_t size, size_t align) {
  shk__buf_thread *t = shk__buf_this_thread;
  if (!t || t->next_id == t->id_end || atomic_load_explicit(&shk__buf_observed, memory_order_relaxed))
    return NULL;
  return shk__buf_recycle_take_own(kind, size, align);
}

/* A slot of the heap's, made ready as a new buffer: filled when new (fresh), a slot given back
 * keeping its fields as made; then its identity. */
static inline int heap_slot_ready(shk__buf_thread *t, shk_buf *buf, bool fresh, size_t size,
                                  size_t count, size_t item_size, const shk_buf_options *opts,
                                  shk_buf **out) {
  if (fresh) {
    shk__buf_allocator *heap = atomic_load_explicit(&shk__buf_heap_entry, memory_order_relaxed);
    unsigned char *bytes = (unsigned char *)buf + SHK__BUF_SLOT_HEADER_SIZE;
    object_fill(buf, heap, size, bytes, SHK__BUF_KIND_HEAP, 0, false);
    buf->in_slab = true;
  }
  set_identity_plain(buf, t->next_id++, count, item_size, SHK__BUF_END_PARK);
  buf->data = buf->block.ptr;
  *out = buf;
  return SHK_OK;
}

/* A new inline heap object when this thread parks none of its size class (every create while
 * more such buffers are live than it parks): a slot of the thread's slab of class k
 * (buf_slab.c) when one can be had, else one malloc block made as object_new and create_new
 * would, with the default heap's answers as constants and no look-up. The caller checked what
 * the short way checks (thread state, an id at hand, no hook, the registry set up, a size below
 * the shared classes) and that SHK_DEBUG=buf is off. */
static SHK__NOINLINE int create_heap_slow(size_t k, size_t size, size_t count, size_t item_size,
                                          const shk_buf_options *opts, shk_buf **out) {
  shk__buf_thread *t = shk__buf_this_thread;
  bool fresh = false;
  shk_buf *buf = shk__buf_slab_take(t, k, size, &fresh);
  if (buf) return heap_slot_ready(t, buf, fresh, size, count, item_size, opts, out);
  buf = shk__malloc(HEADER_SIZE + size);
  if (!buf) return SHK_ENOMEM;
  shk__buf_allocator *heap = atomic_load_explicit(&shk__buf_heap_entry, memory_order_relaxed);
  object_fill(buf, heap, size, (unsigned char *)buf + HEADER_SIZE, SHK__BUF_KIND_HEAP, 0, false);
  set_identity_plain(buf, t->next_id++, count, item_size, SHK__BUF_END_PARK);
  return buf_publish(buf, out);
}

/* The usual way of create_heap_slow, when the short way found no slot given back in the
 * current slab: a new slot carved there. No call but the slow way's, a tail call, so that this
 * way saves no registers (their saving and restoring were 18 of its 85 instructions). */
static SHK__NOINLINE int create_heap_fresh(size_t k, size_t size, size_t count, size_t item_size,
                                           const shk_buf_options *opts, shk_buf **out) {
  SHK__LENS_BUF_READY();
  shk__buf_thread *t = shk__buf_this_thread;
  shk__buf_slab *s = t->slabs[k];
  if (SHK__UNLIKELY(!s || s->size != size || s->free ||
                    atomic_load_explicit(&s->carved, memory_order_relaxed) == s->cap))
    return create_heap_slow(k, size, count, item_size, opts, out);
  return heap_slot_ready(t, shk__buf_slab_carve(t, s), true, size, count, item_size, opts, out);
}

SHK__LINE_ALIGNED int shk_buf_create(size_t count, size_t item_size, const shk_buf_options *given,
                                     shk_buf **out) {
  if (!out) return SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL);
  *out = NULL;
  shk_buf_options local;
  const void *use = &default_options; /* no call for no options */
  if (given && shk__options_use(&options_layout, given, &local, &use) != SHK_OK)
    return SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL);
  const shk_buf_options *opts = use;
  if (opts->init != SHK_BUF_INIT_NONE && opts->init != SHK_BUF_INIT_ZERO &&
      opts->init != SHK_BUF_INIT_BYTE)
    return SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL);
  if (opts->alignment & (opts->alignment - 1)) return SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL);
  size_t size = 0;
  int rc = check_shape(count, item_size, &size);
  if (rc != SHK_OK) return SHK__DEBUG_RET(SHK__DEBUG_BUF, rc);
  /* The short way, with no call at all for the default heap: no init, no hook, and a parked
   * object of this size and an id at hand in this thread; or, with none parked in its class,
   * a new object made in one go. Written twice so that the heap's kind and alignment are
   * constants there (the general form cost it 20 instructions). */
  if (opts->init == SHK_BUF_INIT_NONE) {
    shk_buf *buf = NULL;
    shk__buf_thread *t = shk__buf_this_thread;
    size_t k = shk__buf_class_of(size);
    /* Options that want a rare block (a callback, a delay) go the general way, which makes it
     * before taking anything; tested last, so that sizes that go there anyway skip the test. */
    if (!opts->allocator) {
      if (t && t->next_id != t->id_end && k < SHK__BUF_THREAD_CLASSES &&
          !atomic_load_explicit(&shk__buf_observed, memory_order_relaxed) &&
          !shk__buf_rare_wanted(opts)) {
        shk__buf_park *p = &t->parked[SHK__BUF_KIND_HEAP][k];
        shk__buf_allocator *heap = atomic_load_explicit(&shk__buf_heap_entry, memory_order_acquire);
        if (p->n && p->key == shk__buf_park_key(size, 0)) {
          buf = shk__buf_park_pop(t, p);
        } else if (!p->n && heap &&
                   !(atomic_load_explicit(&shk__debug_mask, memory_order_relaxed) & SHK__DEBUG_BUF)) {
          /* Nothing parked: a slot this thread gave back to its current slab, else a new one. */
          shk__buf_slab *s = t->slabs[k];
          if (!s || !s->free || s->size != size)
            return create_heap_fresh(k, size, count, item_size, opts, out);
          buf = shk__buf_slab_pop(t, s);
        }
      }
    } else if (builtin_kind(opts->allocator) == SHK__BUF_KIND_ALIGNED &&
               !shk__buf_rare_wanted(opts)) {
      buf = take_short(SHK__BUF_KIND_ALIGNED, size, kind_align(SHK__BUF_KIND_ALIGNED, opts));
    }
    if (buf) {
      set_identity_plain(buf, shk__buf_this_thread->next_id++, count, item_size,
                         SHK__BUF_END_PARK);
      buf->data = buf->block.ptr;
      *out = buf;
      return SHK_OK;
    }
  }
  return create_general(size, count, item_size, opts, out, SHK__CALLER());
}

/* The consumption itself, once the options are known: inline, so that the usual call with no
 * options has the defaults' fields as constants (allocator, init, ownership, delay, callback):
 * their tests and loads went, about 60 instructions of a consume+release. */
static inline int consume_with(void *ptr, size_t count, size_t item_size,
                               const shk_buf_options *opts, shk_buf **out) {
  if (opts->init != SHK_BUF_INIT_NONE) return SHK_EINVAL;
  size_t size = 0;
  int rc = check_shape(count, item_size, &size);
  if (rc != SHK_OK) return rc;
  if (shk__range_wraps(ptr, size)) return SHK_EOVERFLOW;
  shk__buf_rare *rare = NULL;
  if (shk__buf_rare_wanted(opts) && !(rare = shk__buf_rare_new(opts))) return SHK_ENOMEM;
  shk_buf *buf = NULL;
  rc = object_new(size, count, item_size, opts, false, rare, &buf);
  if (rc != SHK_OK) return rc;
  if (buf->allocator->table.consume) {
    const shk_buf_allocator *t = &buf->allocator->table;
    rc = t->consume(t->user, ptr, size, opts->take_ownership, &buf->block);
    if (rc != SHK_OK) {
      object_abandon(buf);
      return rc;
    }
  }
  buf->block.ptr = ptr;
  buf->consumed = true;
  buf->owned = opts->take_ownership;
  /* The header of a consume with default options (the built-in heap, nothing owned, no delay,
   * callback or debug) can end and be reused the short ways (release, consume_kept). */
  const shk__buf_allocator *a = buf->allocator;
  if (!buf->rare && !buf->owned && a->builtin &&
      a->table.alloc == shk__buf_heap_allocator.alloc && !shk__debug_on(SHK__DEBUG_BUF))
    buf->end_way = SHK__BUF_END_CONSUMED;
  return buf_publish(buf, out);
}

/* The short way of a consume with no options: a kept header of a default consume of this thread
 * (t->consumed not empty), whose other fields need no writing, and an id at hand. */
static inline int consume_kept(shk__buf_thread *t, void *ptr, size_t count, size_t item_size,
                               size_t size, shk_buf **out) {
  shk_buf *buf = shk__buf_headers_pop(&t->consumed);
  /* Out of the index, the header is seen by no other thread: plain stores. */
  atomic_store_explicit(&buf->refs, 1, memory_order_relaxed);
  buf->id = t->next_id++;
  buf->count = count;
  buf->item_size = item_size;
  buf->size = size;
  buf->data = ptr;
  buf->block.ptr = ptr;
  buf->range.start = (uintptr_t)ptr;
  buf->range.end = (uintptr_t)ptr + size;
  int rc = shk__buf_ranges_insert_fast(&buf->range);
  if (SHK__UNLIKELY(rc != SHK_OK)) {
    if (rc == SHK__BUF_RANGES_OBSERVED) {
      tell(buf, true, true, true);
      rc = SHK_OK;
    } else {
      shk__buf_headers_push(&t->consumed, buf); /* back where it came from, room and all */
      buf = NULL;
    }
  }
  *out = buf;
  return rc;
}

/* Every consume the short way below does not take. Out of line, so that the short way saves
 * no registers for it. caller: the call site of shk_buf_consume, for SHK_DEBUG=buf. */
static SHK__NOINLINE int consume_general(void *ptr, size_t count, size_t item_size,
                                         const shk_buf_options *given, shk_buf **out,
                                         const void *caller) {
  int rc = SHK_EINVAL;
  if (out) *out = NULL;
  if (!out || !ptr) {
    /* rc stays SHK_EINVAL */
  } else if (!given) {
    rc = consume_with(ptr, count, item_size, &default_options, out);
  } else {
    shk_buf_options local;
    const void *use;
    if (shk__options_use(&options_layout, given, &local, &use) == SHK_OK)
      rc = consume_with(ptr, count, item_size, use, out);
  }
  if (SHK__UNLIKELY(shk__debug_on(SHK__DEBUG_BUF))) debug_created(rc, out, "shk_buf_consume", caller);
  return rc;
}

SHK__LINE_ALIGNED int shk_buf_consume(void *ptr, size_t count, size_t item_size,
                                      const shk_buf_options *opts, shk_buf **out) {
  /* The short way: no options, a valid shape, a kept header and an id at hand, SHK_DEBUG=buf
   * off (the mask holds every part until SHK_DEBUG is read, so the first consume goes the
   * general way). The observer and the heap hook are heard of through the index's answer, as
   * in buf_publish. */
  shk__buf_thread *t = shk__buf_this_thread;
  size_t size;
  if (!opts && out && t && t->consumed.head && t->next_id != t->id_end &&
      shape_fits(ptr, count, item_size, &size) &&
      !(atomic_load_explicit(&shk__debug_mask, memory_order_relaxed) & SHK__DEBUG_BUF))
    return consume_kept(t, ptr, count, item_size, size, out);
  return consume_general(ptr, count, item_size, opts, out, SHK__CALLER());
}

/* ---- lifetime ---- */

static SHK__NOINLINE void run_destroy_callback(shk_buf *buf) {
  shk_buf_info info;
  fill_info(buf, &info);
  buf->rare->on_destroy(&info, buf->rare->on_destroy_user);
}

/* Under SHK_DEBUG=buf, a buffer out of the index: the index checked, the object kept a while,
 * tagged dead, to recognise a late use. */
static SHK__NOINLINE void debug_ended(shk_buf *buf) {
  shk__buf_ranges_debug_check();
  shk__buf_debug_retire(buf);
}

/* The end of a buffer whose end_way is not GENERAL, with no observer or hook at the release:
 * parked, or out of the index and kept or freed. Such a buffer has no callback, delay, mapping,
 * guards or owned memory, and its allocator (a built-in) counts no users. */
/* The part of end_plain that leaves the index, out of line: the index's short way inline there
 * needs registers that the release of a parked object would otherwise save too (create+release
 * of 64 B 10.2 -> 10.9 ns with it inline in the release). */
/* SHK_DEBUG=buf is not tested here: it sets the observed flag (at the first creation it follows,
 * and whenever the flag is worked out again), so its buffers never end this way. A buffer made
 * before SHK_DEBUG=buf was turned on at run time (a test's hook: the environment is read once)
 * and released before any creation after it ends here, unretired. */
static SHK__NOINLINE void end_unparked(shk_buf *buf, unsigned way) {
  /* An observer that set itself after the caller's check is told now, before the memory goes. */
  if (SHK__UNLIKELY(shk__buf_ranges_remove_fast(&buf->range))) shk__buf_tell_removed(buf);
  if (way != SHK__BUF_END_CONSUMED || !shk__buf_bare_keep(buf, true)) free(buf);
}

static inline void end_plain(shk_buf *buf, unsigned way) {
  if (way == SHK__BUF_END_PARK) {
    if (shk__buf_recycle_keep(buf)) return;
    /* A slab's slot goes back to its slab: it was never indexed alone. */
    if (buf->in_slab) {
      shk__buf_slab_give(buf);
      return;
    }
  }
  end_unparked(buf, way);
}

/* The last of a buffer's end, after its callback, unmapping and heap event: parked, or out of
 * the index and freed (told: the observer heard of it already). Inline in the release of a plain
 * buffer, which has none of those three. */
static inline void buf_end(shk_buf *buf, bool told) {
  bool debug = shk__debug_on(SHK__DEBUG_BUF);
  /* Its rare block goes with it: a parked object, a slot or a kept header starts its next
   * buffer with none. Only an object SHK_DEBUG=buf retires keeps it, for the call sites of its
   * reports (shk__buf_debug_retire frees both). */
  if (buf->rare && (!debug || buf->recyclable || buf->in_slab)) shk__buf_rare_drop(buf);
  /* Parked with its range: the memory stays the library's, so nothing else may claim it. */
  if (buf->recyclable && shk__buf_recycle_keep(buf)) return;
  /* A slab's slot (made with SHK_DEBUG=buf off, so neither guarded nor to be retired; nothing
   * owned, its allocator the built-in heap) goes back to its slab. */
  if (buf->in_slab) {
    shk__buf_slab_give(buf);
    return;
  }
  /* Out of the index before the memory goes back, so a new buffer there is never refused. An
   * observer that set itself after the caller's check is told now, before the memory goes. */
  if (shk__buf_ranges_remove(&buf->range) && !told) shk__buf_tell_removed(buf);
  const shk_buf_allocator *t = &buf->allocator->table;
  if (buf->owned) t->free(t->user, &buf->block, buf->size);
  shk__buf_allocator_drop(buf->allocator);
  /* Under SHK_DEBUG=buf the object is kept a while, tagged dead, to recognise a late use. */
  if (buf->guarded) shk__buf_debug_guard_check(buf);
  if (SHK__UNLIKELY(debug)) debug_ended(buf);
  else if (!buf->bare || !shk__buf_bare_keep(buf, buf->end_way == SHK__BUF_END_CONSUMED)) free(buf);
}

/* The end of a buffer: callback, unmapping, heap event, then parked or freed. */
static SHK__NOINLINE void buf_finish(shk_buf *buf) {
  if (buf->rare) {
    if (buf->rare->on_destroy) run_destroy_callback(buf);
    if (buf->rare->device.mode != 0) shk__buf_device_drop(buf);
  }
  bool told = atomic_load_explicit(&shk__buf_observed, memory_order_relaxed);
  if (told) tell(buf, false, true, true);
  buf_end(buf, told);
}

void shk__buf_destroy(shk_buf *buf) { buf_finish(buf); }

/* A buffer's last reference went, not the short way: tagged dead under SHK_DEBUG=buf (caller:
 * the call site of the release), then deferred or ended. */
static SHK__NOINLINE void buf_released(shk_buf *buf, const void *caller) {
  if (SHK__UNLIKELY(shk__debug_on(SHK__DEBUG_BUF))) {
    buf->magic = SHK__BUF_MAGIC_DEAD;
    /* Best effort: release cannot fail, so a buffer with no block records no call site. */
    if (buf->rare) buf->rare->released_at = caller;
  }
  if (buf->delayed)
    shk__buf_deferred_add(buf);
  else
    buf_finish(buf);
}

int shk_buf_retain(shk_buf *buf) {
  if (!buf) return SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL);
  SHK__BUF_CHECK(buf, SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL));
  atomic_fetch_add_explicit(&buf->refs, 1, memory_order_relaxed);
  return SHK_OK;
}

SHK__LINE_ALIGNED void shk_buf_release(shk_buf *buf) {
  if (!buf) return;
  /* A count of 1 read by the holder of that one reference cannot change under it: another
   * thread would need a reference of its own to retain. The acquire load pairs with the release
   * decrements of earlier holders as the read-modify-write would, and the last release of an
   * unshared buffer (the common case) skips the locked instruction. */
  size_t refs = atomic_load_explicit(&buf->refs, memory_order_acquire);
  if (refs == 1) {
    atomic_store_explicit(&buf->refs, 0, memory_order_relaxed);
  } else {
    /* An ended handle (count 0, kept under SHK_DEBUG=buf) is recognised here, off the usual
     * way: SHK_DEBUG costs the last release nothing. */
    if (SHK__UNLIKELY(refs == 0 || buf->magic != SHK__BUF_MAGIC_LIVE) &&
        !shk__buf_debug_handle_ok(buf, __func__, SHK__CALLER()))
      return;
    if (atomic_fetch_sub_explicit(&buf->refs, 1, memory_order_acq_rel) != 1) return;
  }
  /* The usual small heap buffer goes straight to its thread's list with no call at all, and a
   * default consume's header to its own list after the index: one byte, set at creation, says
   * there is no delay, callback, mapping or guard (five loads before). SHK_DEBUG=buf sets the
   * observed flag, so a buffer it follows never ends here. */
  unsigned way = buf->end_way;
  if (way != SHK__BUF_END_GENERAL && !atomic_load_explicit(&shk__buf_observed, memory_order_relaxed))
    end_plain(buf, way);
  else
    buf_released(buf, SHK__CALLER());
}

static inline void assign_now(shk_buf **slot, shk_buf *buf) {
  shk_buf *old = *slot;
  *slot = buf;
  if (old != buf) shk_buf_release(old);
}

/* Under SHK_DEBUG=lock: a slot is one thread's at a time (buf.h); two at once are reported. */
static SHK__NOINLINE void assign_followed(shk_buf **slot, shk_buf *buf, const void *caller) {
  bool entered = shk__debug_solo_enter("buffer slot", slot, "shk_buf_assign", caller);
  assign_now(slot, buf);
  if (entered) shk__debug_solo_leave(slot);
}

int shk_buf_assign(shk_buf **slot, shk_buf *buf) {
  if (!slot) return SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL);
  if (SHK__UNLIKELY(shk__debug_on(SHK__DEBUG_LOCK))) assign_followed(slot, buf, SHK__CALLER());
  else assign_now(slot, buf);
  return SHK_OK;
}

/* ---- accessors ---- */

void *shk_buf_data(const shk_buf *buf) {
  SHK__BUF_CHECK(buf, NULL);
  return buf ? buf->data : NULL;
}

uintptr_t shk_buf_address(const shk_buf *buf) {
  if (!buf) return 0;
  SHK__BUF_CHECK(buf, 0);
  return address_of(buf);
}

/* An accessor of one field: `none` for NULL or, under SHK_DEBUG=buf, an ended handle. */
#define FIELD_ACCESSOR(type, fn, field, none) \
  type fn(const shk_buf *buf) {               \
    SHK__BUF_CHECK(buf, none);                \
    return buf ? (type)buf->field : none;     \
  }

FIELD_ACCESSOR(size_t, shk_buf_size, size, 0)
FIELD_ACCESSOR(size_t, shk_buf_item_size, item_size, 0)
FIELD_ACCESSOR(size_t, shk_buf_count, count, 0)
FIELD_ACCESSOR(uint64_t, shk_buf_id, id, 0)
FIELD_ACCESSOR(bool, shk_buf_consumed, consumed, false)

const char *shk_buf_allocator_name(const shk_buf *buf) {
  SHK__BUF_CHECK(buf, NULL);
  return buf ? buf->allocator->name : NULL;
}

size_t shk_buf_refcount(const shk_buf *buf) {
  SHK__BUF_CHECK(buf, 0);
  return buf ? atomic_load_explicit(&((shk_buf *)buf)->refs, memory_order_relaxed) : 0;
}

const char *shk_buf_segment_name(const shk_buf *buf) {
  SHK__BUF_CHECK(buf, NULL);
  if (!buf || buf->allocator->table.alloc != shk__buf_shm_allocator.alloc) return NULL;
  return shk__buf_shm_block_name(&buf->block);
}

size_t shk_buf_live_count(void) {
  /* Read in this order, a parked object is never subtracted without having been counted, except
   * one parked meanwhile that entered the index after the count: hence the floor at zero. A
   * slab is one range of the index, its slots out (live or parked) are counted by the threads
   * that took them less those given back by others (buf_slab.c); the sums wrap, and meanwhile
   * may be off by the slots moving: the result is read as signed. */
  size_t indexed = shk__buf_ranges_count() - shk__buf_slab_count();
  size_t slab_out = 0;
  size_t parked = shk__buf_recycle_totals(&slab_out);
  size_t live = indexed + slab_out - shk__buf_slab_given_by_others() - parked;
  return (ptrdiff_t)live > 0 ? live : 0;
}
