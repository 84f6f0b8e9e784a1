/** @file
 * Buffers of N items x item size made by pluggable, named allocators; wrapping external memory
 * with overlap detection; retain/release; delayed free; destroy callbacks; regions, typed views
 * and optional device (CUDA) mapping. The model is Perl's Task::MemManager, without its bugs.
 * Threads: every function may be called from any thread; a buffer's or a view's accessors while
 * the caller holds a reference; reading and writing the bytes themselves is the caller's to order;
 * device calls on one buffer one at a time. */
#ifndef SHMKIT_BUF_H
#define SHMKIT_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmkit/export.h"
#include "shmkit/options.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- allocators ------------------------------------------------------------------------- */

/** The version number shk_buf_allocator carried before 0.2.0 (kept: a table whose first field
 * is 1 is read as the 0.2.0 layout). New code uses shk_buf_allocator_init(). */
#define SHK_BUF_ALLOCATOR_VERSION 1

/** The longest allocator name, in characters. Names follow the rules of segment names
 * (shk_shm_name_check): 1 to 30 characters from [A-Za-z0-9._-], not starting with '.'. */
#define SHK_BUF_ALLOCATOR_NAME_MAX 30

/** What a buffer asks its allocator for. */
typedef struct shk_buf_alloc_request {
  size_t size;        /**< bytes: count * item_size, never 0 */
  size_t count;       /**< items */
  size_t item_size;   /**< bytes per item */
  size_t alignment;   /**< from the options; 0 means the allocator's default */
  const char *name;   /**< from the options (the segment name of "shm"); may be NULL */
  bool zero;          /**< zeroed memory is wanted: an allocator that can give it cheaply (calloc)
                         does so and sets shk_buf_block.zeroed */
} shk_buf_alloc_request;

/** One block of memory as an allocator describes it. `state` is the allocator's own per-block
 * data (the segment handle of "shm", for example); the library only hands it back. */
typedef struct shk_buf_block {
  void *ptr;     /**< first byte of the buffer */
  void *state;   /**< allocator-private, may be NULL */
  bool zeroed;   /**< set by alloc when the memory is known to be zero already */
} shk_buf_block;

/** An allocator: a table of functions plus a user pointer, registered under a name. Fill with
 * shk_buf_allocator_init() first, then set the functions; it evolves by the rule in
 * shmkit/options.h (first published layout: 0.2.0, every field below; a zero-initialised
 * table, or one that starts with SHK_BUF_ALLOCATOR_VERSION, is read as that layout).
 * `user` is passed as the first argument of every function.
 * - alloc (required): fills *out for req->size bytes. Returns SHK_OK or a negative SHK_E* code;
 *   on failure it must leave nothing allocated.
 * - free (required): releases a block that alloc made (or that consume adopted with ownership).
 * - consume (optional): checks and adopts external memory that a buffer is about to wrap;
 *   `owned` tells whether free will later be called on it. May fill out->state. NULL: every
 *   range is accepted as is.
 * - address (optional): the address shk_buf_address() reports; NULL: the data pointer.
 * Functions may be called from several threads at once. */
typedef struct shk_buf_allocator {
  uint32_t struct_size; /**< sizeof(shk_buf_allocator), set by shk_buf_allocator_init(); was
                           `int version` before 0.2.0, and SHK_BUF_ALLOCATOR_VERSION (1) is still
                           read as the 0.2.0 layout */
  /** Required: allocates req->size bytes into *out; SHK_OK or a negative SHK_E* code. */
  int (*alloc)(void *user, const shk_buf_alloc_request *req, shk_buf_block *out);
  /** Required: releases `size` bytes of a block that alloc made or consume adopted with
   * ownership. */
  void (*free)(void *user, const shk_buf_block *block, size_t size);
  /** Optional: checks and adopts `size` external bytes at ptr; SHK_OK or a code that refuses
   * them. NULL: every range is accepted. */
  int (*consume)(void *user, void *ptr, size_t size, bool owned, shk_buf_block *out);
  /** Optional: the address shk_buf_address() reports for a block; NULL: the data pointer. */
  uintptr_t (*address)(void *user, const shk_buf_block *block);
  void *user; /**< passed as the first argument of every function */
} shk_buf_allocator;

/** Fills the first `size` bytes of *table (sizeof the struct where the caller was compiled):
 * every function NULL, user NULL, struct_size = size. Accepts NULL (does nothing). Call it
 * through shk_buf_allocator_init(). Thread-safe. */
SHK_API void shk_buf_allocator_init_size(shk_buf_allocator *table, size_t size);

/** Fills *table as shk_buf_allocator_init_size() with the caller's sizeof. */
#define shk_buf_allocator_init(table) shk_buf_allocator_init_size((table), sizeof(shk_buf_allocator))

/** Registers an allocator under `name`; the table is copied. Built-in names are "heap" (malloc,
 * the default), "aligned" (options.alignment, a power of two, default 64), "pages" (whole zeroed
 * pages from mmap / VirtualAlloc with MEM_WRITE_WATCH, so a watcher can watch them without
 * touching neighbours) and "shm" (a named shared-memory segment, see shk_buf_segment_name).
 * Returns SHK_OK, SHK_EINVAL (NULL table, missing alloc or free, a struct_size refused by the
 * rule of shmkit/options.h), SHK_ENAME, SHK_EEXIST (name taken) or SHK_ENOMEM.
 * Thread-safe. */
SHK_API int shk_buf_allocator_register(const char *name, const shk_buf_allocator *table);

/** Removes a registered allocator. Returns SHK_OK, SHK_EINVAL (NULL), SHK_ENOENT (not
 * registered), SHK_EACCES (a built-in) or SHK_EBUSY (live buffers still use it). Thread-safe. */
SHK_API int shk_buf_allocator_unregister(const char *name);

/** Whether an allocator of this name is registered now. Thread-safe. */
SHK_API bool shk_buf_allocator_exists(const char *name);

/* ---- buffers ---------------------------------------------------------------------------- */

/** A reference-counted buffer. Created by shk_buf_create() or shk_buf_consume() holding one
 * reference; shk_buf_retain() adds one, shk_buf_release() drops one, and the last release
 * destroys it (or, with delayed_free, makes it deferred). Accessors may be called from any thread
 * while the caller holds a reference; retain/release are thread-safe. */
typedef struct shk_buf shk_buf;

/** How a new buffer's bytes start out. */
typedef enum shk_buf_init {
  SHK_BUF_INIT_NONE = 0, /**< whatever the allocator gives */
  SHK_BUF_INIT_ZERO = 1, /**< all bytes 0 */
  SHK_BUF_INIT_BYTE = 2  /**< all bytes options.init_byte */
} shk_buf_init;

/** What a destroy callback and the heap hook learn about a buffer. Valid during the call only. */
typedef struct shk_buf_info {
  void *data;            /**< first byte (still valid during a destroy callback) */
  uintptr_t address;     /**< as shk_buf_address() */
  size_t size;           /**< bytes */
  size_t item_size;      /**< bytes per item */
  size_t count;          /**< items */
  uint64_t id;           /**< as shk_buf_id() */
  const char *allocator; /**< allocator name */
} shk_buf_info;

/** Called exactly once when a buffer is destroyed, before its memory is freed. It must not
 * retain or release the buffer being destroyed. */
typedef void (*shk_buf_destroy_fn)(const shk_buf_info *info, void *user);

/** Options of shk_buf_create() and shk_buf_consume(). Fill with shk_buf_options_init() first,
 * then change fields; NULL means the defaults: the "heap" allocator, no init, no callback,
 * immediate free, caller keeps ownership of consumed memory. Evolves by the rule in
 * shmkit/options.h (first published layout: 0.2.0, every field below). Every field's zero is
 * its default, so a zero-initialised struct (struct_size 0) works too, read as that layout. */
typedef struct shk_buf_options {
  uint32_t struct_size;         /**< sizeof(shk_buf_options), set by shk_buf_options_init() */
  const char *allocator;        /**< registered name; NULL: "heap" */
  shk_buf_init init;            /**< create only */
  unsigned char init_byte;      /**< for SHK_BUF_INIT_BYTE */
  size_t alignment;             /**< "aligned": power of two, 0 = 64; ignored by the others */
  const char *name;             /**< "shm": segment name; NULL = a unique generated name */
  shk_buf_destroy_fn on_destroy; /**< called once when the buffer is destroyed; may be NULL */
  void *on_destroy_user;        /**< passed to on_destroy as `user` */
  bool delayed_free;            /**< last release makes the buffer deferred (see below) */
  bool take_ownership;          /**< consume only: destruction frees the memory via the allocator */
} shk_buf_options;

/** Fills the first `size` bytes of *opts (sizeof the struct where the caller was compiled) with
 * the defaults: zeros, struct_size = size. Accepts NULL (does nothing). Call it through
 * shk_buf_options_init(). Thread-safe. */
SHK_API void shk_buf_options_init_size(shk_buf_options *opts, size_t size);

/** Fills *opts with the defaults (see shk_buf_options_init_size()). */
#define shk_buf_options_init(opts) shk_buf_options_init_size((opts), sizeof(shk_buf_options))

/** Allocates a buffer of count x item_size bytes with the named allocator and registers its
 * range in the live-range index. Returns SHK_OK, SHK_EINVAL (NULL out, bad init value, an
 * alignment that is not a power of two, or options refused by the rule of shmkit/options.h), SHK_ESIZE (count or item_size 0), SHK_EOVERFLOW
 * (count x item_size overflows), SHK_ENOENT (unknown allocator), SHK_EOVERLAP (the allocator
 * returned memory that overlaps a live buffer: it is handed back), SHK_ENOMEM, or an
 * allocator's code (SHK_ENAME, SHK_EEXIST, SHK_EOS for "shm"). *out is NULL on failure.
 * Thread-safe. */
SHK_API int shk_buf_create(size_t count, size_t item_size, const shk_buf_options *opts,
                           shk_buf **out);

/** Wraps count x item_size bytes at ptr, without copying. The range must not overlap any live
 * buffer's range (containment counts; touching ranges are fine), else SHK_EOVERLAP and nothing
 * changes. With opts->take_ownership the allocator's free releases the memory on destruction,
 * so it must come from something that allocator can free; without it the memory is never freed
 * by shmkit. The allocator's consume function may refuse the range. Returns SHK_OK, SHK_EINVAL
 * (NULL ptr or out, an init value other than NONE, or options refused as for shk_buf_create), SHK_ESIZE, SHK_EOVERFLOW (also when the
 * range wraps the address space or reaches into its last 512 bytes), SHK_ENOENT, SHK_EOVERLAP, SHK_ENOMEM or the allocator's code;
 * *out is NULL on failure and the memory stays the caller's. Thread-safe. */
SHK_API int shk_buf_consume(void *ptr, size_t count, size_t item_size, const shk_buf_options *opts,
                            shk_buf **out);

/** Adds a reference. Returns SHK_OK or SHK_EINVAL (NULL). Thread-safe. */
SHK_API int shk_buf_retain(shk_buf *buf);

/** Drops a reference; the last one destroys the buffer (destroy callback, device unmap, free,
 * range leaves the index) or, with delayed_free, moves it to the deferred list. Accepts NULL.
 * A destroyed "heap" or "aligned" buffer of up to 2 MiB may be parked for reuse by the next
 * create of the same allocator, size and alignment, by size class (bit length of the size):
 * below 4 KiB by the releasing thread, up to 1 024 objects and about 128 KiB of bytes per class
 * (freed when that thread ends by itself or calls shk_buf_shutdown(); the main thread's and
 * those of threads still running at exit go with the process), from 4 KiB on one per class in
 * slots shared by all threads (under 4 MiB per allocator, freed by shk_buf_shutdown()). While
 * parked its range stays in the index, so consuming that (dangling) memory gives SHK_EOVERLAP.
 * A small "heap" buffer made while nothing of its class was parked is a slot of a slab of its
 * creating thread (docs/buf.md): not parked, it goes back to its slab, whose memory stays the
 * library's (SHK_EOVERLAP for a consume into any of it) until none of its slots is out.
 * Under SHK_DEBUG=buf (docs/debug.md) nothing is parked, and releasing an ended buffer again is
 * reported and does nothing. Thread-safe. */
SHK_API void shk_buf_release(shk_buf *buf);

/** Releases what *slot holds and stores buf there (the caller's reference to buf moves into the
 * slot): replacing a buffer destroys the old one at once unless other references remain.
 * buf may be NULL (the slot is cleared); assigning the buffer the slot already holds changes
 * nothing. Returns SHK_OK or SHK_EINVAL (NULL slot). The slot itself is not locked: one thread
 * at a time per slot. */
SHK_API int shk_buf_assign(shk_buf **slot, shk_buf *buf);

/* Accessors: each returns 0 / NULL / false for a NULL buffer. */

/** The first byte of the buffer's memory. */
SHK_API void *shk_buf_data(const shk_buf *buf);
/** The address the allocator reports (its address function), else the data pointer. */
SHK_API uintptr_t shk_buf_address(const shk_buf *buf);
/** The size in bytes: count x item_size. */
SHK_API size_t shk_buf_size(const shk_buf *buf);
/** The bytes per item. */
SHK_API size_t shk_buf_item_size(const shk_buf *buf);
/** The number of items. */
SHK_API size_t shk_buf_count(const shk_buf *buf);
/** A number unique among the buffers of this process, at least 1, increasing from one buffer
 * to the next made by the same thread, not necessarily consecutive: each thread takes ids from
 * a block of its own, so two threads' ids interleave in no particular order. */
SHK_API uint64_t shk_buf_id(const shk_buf *buf);
/** The allocator name (owned by the library, valid while the buffer lives). */
SHK_API const char *shk_buf_allocator_name(const shk_buf *buf);
/** The number of references (a snapshot; for tests and diagnostics). */
SHK_API size_t shk_buf_refcount(const shk_buf *buf);
/** Whether the buffer wraps external memory (shk_buf_consume). */
SHK_API bool shk_buf_consumed(const shk_buf *buf);
/** The segment name of a "shm" buffer, which another process passes to shk_shm_open(); NULL for
 * other allocators. The creating buffer removes the name when it is destroyed. */
SHK_API const char *shk_buf_segment_name(const shk_buf *buf);

/** The number of live and deferred buffers (buffers parked for reuse are not counted). Exact
 * while no other thread creates or releases buffers; during such calls it is a snapshot that may
 * be off by the buffers made or parked meanwhile. For tests and diagnostics. */
SHK_API size_t shk_buf_live_count(void);

/* ---- regions and views ------------------------------------------------------------------ */

/** Copies bytes [start, end) of the buffer into dst: end is EXCLUSIVE (the Perl original's is
 * inclusive), so end - start bytes are copied and start == end copies nothing. Returns SHK_OK,
 * SHK_EINVAL (NULL buf, or NULL dst with bytes to copy, or [dst, dst + dst_size) wrapping
 * around the address space), SHK_ERANGE (start > end or
 * end > size) or SHK_ESIZE (dst_size < end - start). Thread-safe as far as the bytes are. */
SHK_API int shk_buf_region_copy(const shk_buf *buf, size_t start, size_t end, void *dst,
                                size_t dst_size);

/** Like shk_buf_region_copy() into a new "heap" buffer of end - start items of one byte (the
 * region must not be empty: SHK_ESIZE). opts may choose another allocator or a callback;
 * its init is ignored. */
SHK_API int shk_buf_region_new(const shk_buf *buf, size_t start, size_t end,
                               const shk_buf_options *opts, shk_buf **out);

/** Element types of a view. SHK_BUF_BYTES means opaque elements of spec.elem_size bytes. */
typedef enum shk_buf_type {
  SHK_BUF_BYTES = 0,
  SHK_BUF_U8, SHK_BUF_I8, SHK_BUF_U16, SHK_BUF_I16, SHK_BUF_U32, SHK_BUF_I32,
  SHK_BUF_U64, SHK_BUF_I64, SHK_BUF_F32, SHK_BUF_F64
} shk_buf_type;

/** The size in bytes of a type (0 for SHK_BUF_BYTES or an unknown value). */
SHK_API size_t shk_buf_type_size(shk_buf_type type);

/** A zero-copy window: element i lives at data + offset + i * stride. */
typedef struct shk_buf_view_spec {
  size_t offset;     /**< bytes from the buffer start to element 0 */
  size_t count;      /**< elements, > 0 */
  size_t stride;     /**< bytes from one element to the next; 0 = the element size */
  shk_buf_type type; /**< the element type */
  size_t elem_size;  /**< for SHK_BUF_BYTES; otherwise 0 or the type's size */
} shk_buf_view_spec;

/** A view holds a reference to its buffer: the buffer lives at least as long as the view. */
typedef struct shk_buf_view shk_buf_view;

/** Makes a view. Returns SHK_OK, SHK_EINVAL (NULL argument, unknown type, elem_size that does
 * not match the type, or a stride smaller than the element), SHK_ESIZE (count or element size
 * 0), SHK_ERANGE (the last element ends past the buffer), SHK_EOVERFLOW or SHK_ENOMEM.
 * Thread-safe. */
SHK_API int shk_buf_view_create(shk_buf *buf, const shk_buf_view_spec *spec, shk_buf_view **out);

/** Frees the view and releases its buffer reference. Accepts NULL. */
SHK_API void shk_buf_view_free(shk_buf_view *view);

/** The address of element i, or NULL when i >= count or view is NULL. It may be unaligned for its
 * type: prefer shk_buf_view_get / shk_buf_view_set. */
SHK_API void *shk_buf_view_at(const shk_buf_view *view, size_t i);

/** Copies element i out to dst (elem_size bytes; dst needs no alignment). Returns SHK_OK,
 * SHK_EINVAL (NULL view or dst) or SHK_ERANGE (i >= count). */
SHK_API int shk_buf_view_get(const shk_buf_view *view, size_t i, void *dst);
/** Copies elem_size bytes from src into element i. Returns SHK_OK, SHK_EINVAL (NULL view or
 * src) or SHK_ERANGE (i >= count). */
SHK_API int shk_buf_view_set(shk_buf_view *view, size_t i, const void *src);

/** Element i of a numeric view converted to double into *out (64-bit integers may round).
 * Returns SHK_OK, SHK_EINVAL (NULL view or out, or a SHK_BUF_BYTES view) or SHK_ERANGE
 * (i >= count). */
SHK_API int shk_buf_view_get_f64(const shk_buf_view *view, size_t i, double *out);
/** Stores `value` converted to the view's type into element i (integers truncate toward zero).
 * Returns SHK_OK, SHK_EINVAL (NULL view, or a SHK_BUF_BYTES view) or SHK_ERANGE (i >= count, or
 * a value the integer type cannot hold, NaN included); nothing is written on failure. */
SHK_API int shk_buf_view_set_f64(shk_buf_view *view, size_t i, double value);

/* View accessors: each returns 0 / NULL for a NULL view. */

/** The number of elements. */
SHK_API size_t shk_buf_view_count(const shk_buf_view *view);
/** The bytes from one element to the next. */
SHK_API size_t shk_buf_view_stride(const shk_buf_view *view);
/** The bytes of one element. */
SHK_API size_t shk_buf_view_elem_size(const shk_buf_view *view);
/** The element type (SHK_BUF_BYTES for NULL). */
SHK_API shk_buf_type shk_buf_view_type(const shk_buf_view *view);
/** The viewed buffer; no reference is added (the view's own keeps it alive). */
SHK_API shk_buf *shk_buf_view_buffer(const shk_buf_view *view);

/* ---- delayed free ----------------------------------------------------------------------- */

/* A buffer created with delayed_free is not destroyed by its last release: it becomes deferred
 * (it waits on the deferred list), its memory and range stay valid, and it is destroyed (callback
 * included) by shk_buf_free_deferred() or shk_buf_free_deferred_all(), by shk_buf_shutdown(), or
 * when the process exits normally. All thread-safe. */

/** Writes up to `capacity` ids of deferred buffers (oldest first) into ids (may be NULL when
 * capacity is 0) and their total number into *count. Returns SHK_OK or SHK_EINVAL (count NULL,
 * or ids NULL with capacity > 0). Thread-safe; the list may change as soon as it returns. */
SHK_API int shk_buf_deferred_list(uint64_t *ids, size_t capacity, size_t *count);

/** Frees the deferred buffer with this id now: its destroy callback runs on the calling thread
 * (no library lock held), then its range leaves the index and its memory is freed. Returns
 * SHK_OK or SHK_ENOENT (no deferred buffer has this id, e.g. already freed). Thread-safe: of two
 * threads freeing the same id, one gets SHK_OK, the other SHK_ENOENT. */
SHK_API int shk_buf_free_deferred(uint64_t id);

/** Frees every deferred buffer, oldest first, as shk_buf_free_deferred() does; *freed (may be
 * NULL) gets how many. Returns SHK_OK. Thread-safe. */
SHK_API int shk_buf_free_deferred_all(size_t *freed);

/** The earlier name of shk_buf_deferred_list(), which it calls: same parameters and codes.
 * Kept exported so that programs built against it keep working.
 * @deprecated Use shk_buf_deferred_list(). */
SHK_API int shk_buf_pending_list(uint64_t *ids, size_t capacity, size_t *count);

/** The earlier name of shk_buf_free_deferred(), which it calls: same parameter and codes.
 * Kept exported so that programs built against it keep working.
 * @deprecated Use shk_buf_free_deferred(). */
SHK_API int shk_buf_collect(uint64_t id);

/** The earlier name of shk_buf_free_deferred_all(), which it calls: same parameter and code.
 * Kept exported so that programs built against it keep working.
 * @deprecated Use shk_buf_free_deferred_all(). */
SHK_API int shk_buf_collect_all(size_t *collected);

/** Frees every deferred buffer and frees the buffers parked for reuse in the shared slots
 * and by the calling thread (other threads' parked buffers are freed as those threads end), and
 * gives up the calling thread's slabs (each freed once none of its buffers is live).
 * Also runs at normal process exit once a buffer has been deferred (an atexit handler registered
 * then), so deferred buffers get their callbacks. The library stays usable afterwards. Returns
 * SHK_OK. */
SHK_API int shk_buf_shutdown(void);

/* ---- heap events ------------------------------------------------------------------------ */

/** Called after a buffer is created (allocated = true) and before it is freed (false), from the
 * thread doing it. For profilers (lens heap events). Must not create or release buffers. */
typedef void (*shk_buf_heap_fn)(bool allocated, const shk_buf_info *info, void *user);

/** Sets (fn non-NULL) or removes (NULL) the process-wide heap hook. Returns SHK_OK.
 * Thread-safe; a call in flight on another thread may still use the previous hook. */
SHK_API int shk_buf_set_heap_hook(shk_buf_heap_fn fn, void *user);

/* ---- device mapping (CUDA) -------------------------------------------------------------- */

/** How a buffer is mapped to a device. */
typedef enum shk_buf_device_mode {
  SHK_BUF_DEVICE_COPY = 1,  /**< a device copy (cuMemAlloc), kept in sync by shk_buf_device_update */
  SHK_BUF_DEVICE_PINNED = 2 /**< the host memory is registered as pinned (cuMemHostRegister) */
} shk_buf_device_mode;

/** Direction of an update. */
typedef enum shk_buf_device_dir {
  SHK_BUF_TO_DEVICE = 1,
  SHK_BUF_FROM_DEVICE = 2,
  SHK_BUF_BOTH = 3 /**< to the device, then back from it */
} shk_buf_device_dir;

/* Device calls on one buffer must not run concurrently; different buffers are independent.
 * Builds without CUDA, and machines without a usable device, return SHK_ENODEV. */

/** The number of usable devices into *count. SHK_OK, SHK_EINVAL, SHK_ENODEV. */
SHK_API int shk_buf_device_count(int *count);

/** Maps the buffer to device `device` (COPY copies the whole buffer to the device). Returns
 * SHK_OK, SHK_EINVAL (NULL, bad mode), SHK_ENODEV, SHK_ERANGE (no such device), SHK_ESTATE
 * (already mapped), SHK_ENOMEM or SHK_EOS. */
SHK_API int shk_buf_device_map(shk_buf *buf, int device, shk_buf_device_mode mode);

/** Copies bytes [start, start + length) between host and device. A pinned mapping needs no copy
 * (SHK_OK). Returns SHK_OK, SHK_EINVAL, SHK_ESTATE (not mapped), SHK_ERANGE (past the end or
 * overflowing), SHK_ENODEV or SHK_EOS. */
SHK_API int shk_buf_device_update(shk_buf *buf, shk_buf_device_dir dir, size_t start,
                                  size_t length);

/** Removes the mapping (a COPY's device memory is freed without copying back: update first).
 * The buffer may be mapped again. Destruction unmaps. SHK_OK, SHK_EINVAL, SHK_ESTATE. */
SHK_API int shk_buf_device_unmap(shk_buf *buf);

/** Whether the buffer is mapped now. */
SHK_API bool shk_buf_device_mapped(const shk_buf *buf);

/** The device address of a mapped buffer into *ptr. SHK_OK, SHK_EINVAL, SHK_ESTATE. */
SHK_API int shk_buf_device_pointer(const shk_buf *buf, void **ptr);

#ifdef __cplusplus
}
#endif

#endif
