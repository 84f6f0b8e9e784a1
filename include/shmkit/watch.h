/** @file
 * The write watcher: watch memory regions for writes and receive change events (old and new
 * bytes, where, when, which thread and instruction) from the watcher's own worker thread.
 * Every function may be called from any thread unless it says otherwise (see shk_watcher). */
#ifndef SHMKIT_WATCH_H
#define SHMKIT_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmkit/export.h"
#include "shmkit/options.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A watcher: a set of regions, one worker thread, one callback. Created by shk_watch_create(),
 * freed by shk_watch_free(). Every function may be called from any thread unless it says
 * otherwise; the callback runs on the worker thread. */
typedef struct shk_watcher shk_watcher;

/** How writes are noticed. Every backend gives the same events; they differ in cost, in which
 * memory they can watch and in what they know about the writer (see docs/watch.md).
 *  - SHK_WATCH_MPROTECT: pages made read-only; the first write to a page faults (SIGSEGV/SIGBUS
 *    on POSIX, an access violation caught by a vectored handler on Windows), the page is opened
 *    and the worker compares and re-protects after the coalescing window. Knows the faulting
 *    address, the instruction pointer and the thread. Kernel writes (read() into the region)
 *    fail with EFAULT on POSIX. Pages get back exactly the protection they had.
 *  - SHK_WATCH_USERFAULTFD: Linux userfaultfd write-protect, asynchronous mode with the
 *    PAGEMAP_SCAN ioctl: no signal, about 1 us per first write; knows neither address, nor
 *    instruction, nor thread. Kernel writes succeed and are seen. Without the async mode (or
 *    with options.userfaultfd_sync) the synchronous mode: a handler thread resolves each first
 *    write and records its address and thread; kernel writes then succeed only where the
 *    process may handle kernel faults (root, CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1),
 *    and otherwise fail with EFAULT, writing nothing, as with mprotect.
 *  - SHK_WATCH_WRITE_WATCH: Windows GetWriteWatch on memory allocated with write watching
 *    (shk_watch_pages_alloc); on other memory, the same protection path as SHK_WATCH_MPROTECT.
 *  - SHK_WATCH_POLL: the worker compares the whole region against its copy every poll
 *    interval. Any memory, any OS, and the only backend that sees writes made by other
 *    processes to a shared segment. Knows nothing about the writer.
 *  - SHK_WATCH_AUTO: per region, the best that works: userfaultfd (async mode only), then
 *    write-watch, then protection, then poll when a system limit is reached or the memory is
 *    not writable.
 * Memory that was not writable (read-only pages, a static const array) stays so: every backend
 * that write-protects refuses it with SHK_EACCES, poll watches it without touching it (it can
 * change only through another mapping), and a write to it crashes as it would without shmkit. */
typedef enum shk_watch_backend {
  SHK_WATCH_AUTO = 0,
  SHK_WATCH_MPROTECT = 1,
  SHK_WATCH_USERFAULTFD = 2,
  SHK_WATCH_WRITE_WATCH = 3,
  SHK_WATCH_POLL = 4,
  SHK_WATCH_CUSTOM = 5 /**< a backend registered with shk_watch_backend_register(), chosen by
                          name (shk_watch_options.backend_name); not counted per backend */
} shk_watch_backend;

/** The number of built-in shk_watch_backend values (the length of
 * shk_watch_stats.regions_by_backend); SHK_WATCH_CUSTOM is not among them. */
#define SHK_WATCH_BACKEND_COUNT 5

/** The name of a backend ("auto", "mprotect", "userfaultfd", "write-watch", "poll", "custom"),
 * static; "unknown" for other values. */
SHK_API const char *shk_watch_backend_name(shk_watch_backend backend);

/** Whether `backend` can be used on this system now (auto and poll always can). */
SHK_API bool shk_watch_backend_available(shk_watch_backend backend);

/** The version number shk_watch_options carried in its first field before 0.2.0. Still read:
 * version 1 as the fields up to userfaultfd_sync, version 2 as the 0.2.0 layout. */
#define SHK_WATCH_OPTIONS_VERSION 2

/** Options of a watcher. Fill with shk_watch_options_init() first, then change fields; NULL
 * means the defaults. Evolves by the rule in shmkit/options.h (first published layout: 0.2.0,
 * every field below). Several defaults are not zero: a zero-initialised struct (struct_size 0)
 * is read with the zeros as written (a ring_capacity or poll_interval_ms of 0 is refused). */
typedef struct shk_watch_options {
  uint32_t struct_size;       /**< sizeof(shk_watch_options), set by shk_watch_options_init();
                                 was `version` before 0.2.0 (1 and 2 are still read) */
  shk_watch_backend backend;  /**< default SHK_WATCH_AUTO */
  uint32_t coalesce_ms;       /**< writes to a region within this window (from the first) give
                                 one event, also when the ring overflowed meanwhile; default 5 */
  uint32_t ring_capacity;     /**< fault records held between worker passes; rounded up to a
                                 power of two (1 holds one record); default 65536 */
  size_t inline_threshold;    /**< regions up to this size get old/new inline; default 4096 */
  size_t preview_size;        /**< bytes of old/new previews for larger regions; default 256 */
  uint32_t poll_interval_ms;  /**< how often the poll backend compares; default 10 */
  size_t store_limit;         /**< bytes kept for stored values before the oldest are evicted;
                                 default 256 MiB */
  bool resolve_symbols;       /**< fill module/symbol (and file/function/line where debug
                                 information exists) of the writing instruction; default true */
  bool userfaultfd_sync;      /**< userfaultfd in its synchronous mode even where the async mode
                                 exists: a handler thread takes each first write (slower, about
                                 10-90 us, but knows the address and the thread). Used anyway
                                 when the kernel has no async mode. Default false */
  const char *backend_name;   /**< a registered backend by name, built-in ("mprotect",
                                 ...) or registered with shk_watch_backend_register(); overrides
                                 `backend`. NULL (default): `backend` decides */
} shk_watch_options;

/** Fills the first `size` bytes of *opts (sizeof the struct where the caller was compiled) with
 * the defaults above and struct_size = size. Accepts NULL (does nothing). Call it through
 * shk_watch_options_init(). Thread-safe. */
SHK_API void shk_watch_options_init_size(shk_watch_options *opts, size_t size);

/** Kept for programs built against 0.1.x, which call it: fills the 0.2.0 layout, version 2. */
SHK_API void(shk_watch_options_init)(shk_watch_options *opts);

/** Fills *opts with the defaults above (see shk_watch_options_init_size()). */
#define shk_watch_options_init(opts) shk_watch_options_init_size((opts), sizeof(shk_watch_options))

/** What an event knows; bits of shk_watch_event.flags. */
#define SHK_WATCH_EVENT_INLINE 0x1u        /**< old_value / new_value hold the whole region */
#define SHK_WATCH_EVENT_STORED 0x2u        /**< old_key / new_key name the changed bytes */
#define SHK_WATCH_EVENT_FAULT_ADDRESS 0x4u /**< fault_address is the written address */
#define SHK_WATCH_EVENT_IP 0x8u            /**< ip is the writing instruction */
#define SHK_WATCH_EVENT_THREAD 0x10u       /**< thread_id is the writing thread */
#define SHK_WATCH_EVENT_RESYNC 0x20u       /**< found by a full compare after the ring overflowed */
#define SHK_WATCH_EVENT_SOURCE 0x40u       /**< file / line (and function) of ip are known */

/** One change of one region. Valid only during the callback: pointers point into the watcher's
 * scratch memory; copy what you keep. Fields may be appended in later versions. */
typedef struct shk_watch_event {
  uint64_t seq;              /**< 1, 2, 3, ... per watcher, in delivery order */
  uint64_t time_ns;          /**< monotonic time of the first write of the burst when the backend
                                knows it, else when the change was found */
  uint32_t region_id;        /**< the id shk_watch_add() gave the region */
  const char *region_name;   /**< the name given to shk_watch_add() ("" when none) */
  const void *region_addr;   /**< the region's first byte */
  size_t region_size;       /**< the region's size in bytes */
  size_t offset;             /**< first changed byte, from the region's start */
  size_t length;             /**< bytes from the first to the last changed byte, inclusive */
  const void *old_value;     /**< region_size bytes before / after, when SHK_WATCH_EVENT_INLINE;
                                aligned for any type, so they may be read as the region's type */
  const void *new_value;     /**< the region's bytes after the change (see old_value) */
  uint64_t old_key;          /**< store keys of the changed bytes before / after, when
                                SHK_WATCH_EVENT_STORED; see shk_watch_fetch() */
  uint64_t new_key;          /**< store key of the changed bytes after (see old_key) */
  const void *old_preview;   /**< the first preview_length changed bytes before / after; always */
  const void *new_preview;   /**< the first preview_length changed bytes after (see old_preview) */
  size_t preview_length;     /**< min(length, preview_size) */
  uintptr_t fault_address;   /**< the first faulting address of the burst inside this region */
  uintptr_t ip;              /**< the instruction that wrote */
  const char *module;        /**< the module (executable or shared library) of ip, or NULL */
  const char *symbol;        /**< the nearest exported symbol before ip, or NULL */
  uint64_t thread_id;        /**< the writing thread (gettid / GetCurrentThreadId) */
  uint32_t fault_count;      /**< faults coalesced into this event (0 for scanning backends) */
  uint32_t flags;            /**< SHK_WATCH_EVENT_* */
  shk_watch_backend backend; /**< the backend that watched this region */
  const char *file;          /**< source file of ip from debug information (Linux: libdw when
                                installed; Windows: DbgHelp), when SHK_WATCH_EVENT_SOURCE;
                                else NULL */
  const char *function;      /**< the function around ip from debug information, or NULL */
  uint32_t line;             /**< the line of ip in file, when SHK_WATCH_EVENT_SOURCE; else 0 */
  uint64_t buffer_id;        /**< for a region followed by shk_watch_add_buffers(): the buffer's
                                id (shk_buf_id); 0 for regions added with shk_watch_add() */
  const char *buffer_allocator; /**< ... and its allocator's name; NULL for other regions */
} shk_watch_event;

/** The callback: called on the watcher's worker thread, one event at a time, in seq order. It may
 * call shk_watch_add/remove/stats/fetch/drop and shk_watch_set_callback, but not
 * shk_watch_flush or shk_watch_free (they return SHK_ESTATE / are refused). Writes it makes to
 * watched regions are seen like any other write. */
typedef void (*shk_watch_fn)(const shk_watch_event *event, void *user);

/** Creates a watcher and starts its worker thread. opts NULL means defaults. Process-wide fault
 * handlers are installed when the first watcher that needs them adds a region and stay installed
 * for the life of the process, also after the last watcher is freed (see shk_watch_free());
 * handlers installed before are chained, so faults that are not on watched pages (real crashes)
 * reach them or the default action unchanged. Once they were installed, each creation checks
 * that they still are (POSIX: a handler the program installed over them and then replaced by
 * another, as CMocka does around each test, took them out) and installs them again, in front
 * of what is there now, if not. SHK_EOS when that fails.
 * Returns SHK_OK, SHK_EINVAL (NULL out, options refused by the rule of shmkit/options.h, a bad
 * field), SHK_EUNSUPPORTED (the
 * backend asked for is not available here), SHK_ENOMEM or SHK_EOS. */
SHK_API int shk_watch_create(const shk_watch_options *opts, shk_watcher **out);

/** Stops the worker (changes not yet delivered are dropped: call shk_watch_flush() first to
 * have them), unwatches every region (restoring page protection), frees every stored value and the watcher.
 * Accepts NULL. Must not be called from the callback (it then does nothing). The process-wide
 * fault handlers stay installed after the last watcher is freed, doing nothing but retrying,
 * once, a write fault on a page that is writable by now and passing every other fault on: a
 * thread that wrote to a watched page just before it was unprotected may not have had its
 * fault handled yet, and without the handlers it would die although its write is now allowed.
 * A handler the program installs afterwards gets real crashes first and must chain to the one
 * it replaced (as while a watcher is live); if it does and shmkit's handler is put in front of
 * it again by a later watcher, a crash passed round that loop once goes to the default action.
 * When the system refuses to give pages their protection back (mprotect / VirtualProtect fails,
 * after retries), the watcher never breaks the program: such pages stay known to the fault
 * handler, which opens each on its next write; shk_last_os_error() then holds the raw code of
 * the first such failure (unchanged by a free that met none), and SHK_DEBUG=watch reports it. Such
 * pages stay claimed for the life of the process (a later shk_watch_add of them answers
 * SHK_EOVERLAP).
 * Free in any thread but the callback's; not async-signal-safe. */
SHK_API void shk_watch_free(shk_watcher *w);

/** Starts watching [addr, addr+size). `name` (may be NULL) is copied. Regions of one watcher may
 * not overlap, but may share pages; a write to unwatched bytes of a watched page never gives an
 * event. The region's content now is the first "old value". *id receives a non-zero id (0 on
 * failure, when nothing was changed).
 * Returns SHK_OK, SHK_EINVAL (NULL addr/id, size 0, addr+size overflows), SHK_EFAULT (part of
 * the range is not mapped, on every backend), SHK_EACCES (the memory cannot be read; or, for
 * mprotect, userfaultfd and write-watch, it is not writable on every page), SHK_EOVERLAP (overlaps
 * a region of this watcher, or its pages are watched by protection in another watcher),
 * SHK_ELIMIT (the protection backend would exceed the kernel's memory-area limit; with
 * SHK_WATCH_AUTO the region goes to the poll backend instead and stats say so),
 * SHK_EUNSUPPORTED (the backend cannot watch this memory), SHK_EBUSY (userfaultfd: the pages
 * are registered by another watcher), SHK_ENOMEM or SHK_EOS. */
SHK_API int shk_watch_add(shk_watcher *w, void *addr, size_t size, const char *name, uint32_t *id);

/** Stops watching a region; pages no other region of the watcher needs get their protection
 * back. Changes of the region not yet delivered are discarded. Returns SHK_OK, SHK_EINVAL
 * (NULL w), SHK_ENOENT (no region with this id), or a system failure code (SHK_ENOMEM,
 * SHK_EOS, ...; the raw one in shk_last_os_error()) when the system refused to give the pages their protection back: the
 * region is removed all the same, and its pages stay known to the fault handler, which opens
 * each on its next write, so the program does not crash (see shk_watch_free()). */
SHK_API int shk_watch_remove(shk_watcher *w, uint32_t id);

/** The backend that watches region `id`. Returns SHK_OK, SHK_EINVAL or SHK_ENOENT. */
SHK_API int shk_watch_region_backend(shk_watcher *w, uint32_t id, shk_watch_backend *backend);

/** Sets (or with fn NULL removes) the callback. When this returns, the previous callback is not
 * running and will not be called again (unless this is called from the callback itself).
 * Events found while no callback is set are counted in events_unobserved. Returns SHK_OK or
 * SHK_EINVAL. */
SHK_API int shk_watch_set_callback(shk_watcher *w, shk_watch_fn fn, void *user);

/** Finds every change made before this call, ignoring the coalescing window, and delivers it
 * before returning. Returns SHK_OK, SHK_EINVAL or SHK_ESTATE (called from the callback). */
SHK_API int shk_watch_flush(shk_watcher *w);

/** Counters of a watcher. */
typedef struct shk_watch_stats {
  size_t regions;                                 /**< regions watched now */
  size_t regions_by_backend[SHK_WATCH_BACKEND_COUNT]; /**< ... per backend (index: the enum) */
  size_t regions_moved_to_poll;   /**< regions auto put on poll because a limit was reached */
  size_t memory_bytes;            /**< native memory the watcher holds (ring, copies, store, ...) */
  size_t stored_bytes;            /**< of which bytes kept for stored old/new values */
  uint64_t faults;                /**< write faults taken on watched pages */
  uint64_t events_delivered;      /**< callbacks made */
  uint64_t events_unobserved;     /**< changes found while no callback was set */
  uint64_t events_dropped;        /**< fault records that did not fit in the ring. Their changes
                                     are still delivered (found by a full compare, flagged
                                     SHK_WATCH_EVENT_RESYNC) but without writer details */
  uint64_t resyncs;               /**< full compares made because of dropped records */
  shk_watch_backend backend;      /**< the backend asked for, resolved: for auto, the one the most
                                     regions use (auto itself when there are none) */
} shk_watch_stats;

/** Fills *stats. Returns SHK_OK or SHK_EINVAL. */
SHK_API int shk_watch_stats_get(shk_watcher *w, shk_watch_stats *stats);

/** Copies a stored value (the changed bytes of an event, before or after) into buf. *length
 * receives its full length even when size is smaller (then only size bytes are copied and
 * SHK_ERANGE is returned). Returns SHK_OK, SHK_EINVAL (NULL w, NULL buf with size > 0, or
 * [buf, buf + size) wrapping around the address space), SHK_ENOENT (unknown, dropped or evicted
 * key) or SHK_ERANGE. */
SHK_API int shk_watch_fetch(shk_watcher *w, uint64_t key, void *buf, size_t size, size_t *length);

/** Frees a stored value early. Returns SHK_OK, SHK_EINVAL or SHK_ENOENT. */
SHK_API int shk_watch_drop(shk_watcher *w, uint64_t key);

/* ---- every live buffer --------------------------------------------------------------- */

/** The version number shk_watch_buffers_options carried in its first field before 0.2.0; still
 * read, as the 0.2.0 layout. */
#define SHK_WATCH_BUFFERS_OPTIONS_VERSION 1

/** Which buffers shk_watch_add_buffers() follows. Fill with shk_watch_buffers_options_init().
 * Evolves by the rule in shmkit/options.h (first published layout: 0.2.0, every field below;
 * every field's zero is its default, so a zero-initialised struct works too). */
typedef struct shk_watch_buffers_options {
  uint32_t struct_size;           /**< sizeof(shk_watch_buffers_options), set by
                                     shk_watch_buffers_options_init(); was `version` before
                                     0.2.0 (1 is still read) */
  const char *const *allocators;  /**< names of the allocators whose buffers are followed; NULL
                                     (default): every allocator the watcher's backend can watch
                                     (see shk_watch_add_buffers) */
  size_t allocator_count;         /**< how many names `allocators` holds */
} shk_watch_buffers_options;

/** Fills the first `size` bytes of *opts (sizeof the struct where the caller was compiled) with
 * the defaults (every allocator) and struct_size = size. Accepts NULL (does nothing). Call it
 * through shk_watch_buffers_options_init(). Thread-safe. */
SHK_API void shk_watch_buffers_options_init_size(shk_watch_buffers_options *opts, size_t size);

/** Kept for programs built before the init macro, which call it: fills the 0.2.0 layout,
 * version 1. */
SHK_API void(shk_watch_buffers_options_init)(shk_watch_buffers_options *opts);

/** Fills *opts with the defaults (see shk_watch_buffers_options_init_size()). */
#define shk_watch_buffers_options_init(opts)                                                   \
  shk_watch_buffers_options_init_size((opts), sizeof(shk_watch_buffers_options))

/** Watches every live shmkit buffer (shmkit/buf.h) now and follows creation and release from
 * then on: a buffer created later is added when it is created, one released is removed before
 * its memory goes back (its region never faults, and gives no event after that). Each buffer's
 * region is its bytes, [shk_buf_data, + shk_buf_size); its events carry buffer_id and
 * buffer_allocator, and its region name is "buffer <id>".
 * Which memory each backend can take: buffers of the "pages" allocator own their pages, and are
 * watched by every backend. Buffers of other allocators share pages with other memory (the heap,
 * other buffers), which a write-protecting backend would slow down or stop: SHK_WATCH_POLL
 * watches them, SHK_WATCH_AUTO puts them on poll (and "pages" buffers on its best backend); the
 * other backends (mprotect, userfaultfd, write-watch, one's own) skip them when no allocator is
 * named, and refuse with SHK_EUNSUPPORTED an `allocators` list naming one.
 * A buffer whose memory the watcher already watches (a region added by hand), or that cannot be
 * added (a system limit), is skipped; it is tried again when the next buffer at its address is
 * created. Heap buffers recycled by another thread at the moment of this call may be seen late
 * (at their next creation). Creating and releasing buffers costs what adding and removing a
 * region does while a watcher follows them; nothing when none does.
 * One call per watcher: shk_watch_remove_buffers() stops following (shk_watch_free does too).
 * opts NULL means the defaults. Returns SHK_OK, SHK_EINVAL (NULL w, options refused by the rule
 * of shmkit/options.h, names NULL
 * with a count, a NULL name), SHK_EUNSUPPORTED (see above), SHK_EEXIST (this watcher already
 * follows buffers) or SHK_ENOMEM. Thread-safe; may be called from the callback. */
SHK_API int shk_watch_add_buffers(shk_watcher *w, const shk_watch_buffers_options *opts);

/** Stops following buffers and removes the regions of the buffers followed. Returns SHK_OK,
 * SHK_EINVAL (NULL w) or SHK_ENOENT (not following). Thread-safe; may be called from the
 * callback. */
SHK_API int shk_watch_remove_buffers(shk_watcher *w);

/* ---- backends of your own --------------------------------------------------------------- */

/** The version number shk_watch_backend_table carried in its first field before 0.2.0; still
 * read, as the 0.2.0 layout. New code uses shk_watch_backend_table_init(). */
#define SHK_WATCH_BACKEND_VERSION 1

/** How a backend's scan() reports bytes written since its last report (worker thread). */
typedef void (*shk_watch_written_fn)(void *ctx, const void *addr, size_t size);

/** A backend: a table of functions plus a user pointer, registered under a name and chosen with
 * shk_watch_options.backend_name. Fill with shk_watch_backend_table_init() first, then set the
 * functions; it evolves by the rule in shmkit/options.h (first published layout: 0.2.0, every
 * field below; a zero-initialised table is read as that layout). It tells the watcher where writes happened, in
 * either or both of two ways; the watcher does the rest as for the built-ins (copies, compare,
 * coalescing window, events, ring, drop counting, resync after an overflow):
 *  - scan() reports written bytes through `written` on each worker pass (a scanning backend,
 *    like poll or userfaultfd);
 *  - shk_watch_report_write() records one write, from any thread or a signal handler, through
 *    the watcher's fault ring (a fault backend, like mprotect: events carry the address, and the
 *    instruction and thread when given; records that do not fit are counted as dropped).
 * `user` is the first argument of every function. Functions run with the watcher's lock held
 * (attach and detach on the calling thread, scan and rearm on the worker): they must not call
 * shk_watch_* functions other than shk_watch_report_write(). */
typedef struct shk_watch_backend_table {
  uint32_t struct_size; /**< sizeof(shk_watch_backend_table), set by
                           shk_watch_backend_table_init(); was `int version` before 0.2.0
                           (SHK_WATCH_BACKEND_VERSION is still read) */
  /** Optional: whether the backend works here now (NULL: always). */
  bool (*available)(void *user);
  /** Required: starts watching [addr, addr+size) for watcher w (keep w for
   * shk_watch_report_write); `*state` receives what detach and scan get back. SHK_OK or a
   * negative SHK_E* code (shk_watch_add returns it). */
  int (*attach)(void *user, shk_watcher *w, void *addr, size_t size, void **state);
  /** Optional: stops watching the region attached with `state`. */
  void (*detach)(void *user, void *state);
  /** Optional: reports the region's written bytes with written(ctx, addr, size); `force` is set
   * for shk_watch_flush (report everything written before the call). */
  void (*scan)(void *user, void *state, void *addr, size_t size, bool force,
               shk_watch_written_fn written, void *ctx);
  /** Optional: makes writes to [addr, addr+size) (whole pages of its regions) noticed again,
   * before the watcher compares them (a fault backend closes them again here). */
  int (*rearm)(void *user, void *addr, size_t size);
  void *user; /**< passed as the first argument of every function above */
} shk_watch_backend_table;

/** Fills the first `size` bytes of *table (sizeof the struct where the caller was compiled):
 * every function NULL, user NULL, struct_size = size. Accepts NULL (does nothing). Call it
 * through shk_watch_backend_table_init(). Thread-safe. */
SHK_API void shk_watch_backend_table_init_size(shk_watch_backend_table *table, size_t size);

/** Fills *table as shk_watch_backend_table_init_size() with the caller's sizeof. */
#define shk_watch_backend_table_init(table)                                                    \
  shk_watch_backend_table_init_size((table), sizeof(shk_watch_backend_table))

/** The longest backend name, in characters; names follow the rules of segment names
 * (shk_shm_name_check: [A-Za-z0-9._-], not starting with a dot). */
#define SHK_WATCH_BACKEND_NAME_MAX 30

/** Registers a backend under `name` (copied, as is the table). The built-ins are registered
 * under their names (shk_watch_backend_name) through the same table.
 * Returns SHK_OK, SHK_EINVAL (NULL table or name, missing attach, a struct_size refused by the
 * rule of shmkit/options.h), SHK_ENAME, SHK_EEXIST (name taken), SHK_ELIMIT (32 backends
 * already). Thread-safe. */
SHK_API int shk_watch_backend_register(const char *name, const shk_watch_backend_table *table);

/** Removes a registered backend. Returns SHK_OK, SHK_EINVAL (NULL), SHK_ENOENT, SHK_EACCES (a
 * built-in) or SHK_EBUSY (a watcher uses it). Thread-safe. */
SHK_API int shk_watch_backend_unregister(const char *name);

/** Whether a backend of this name is registered now (built-ins included). Thread-safe. */
SHK_API bool shk_watch_backend_exists(const char *name);

/** Records one write at addr into the watcher's fault ring, for a backend of one's own: the
 * region's page is compared after the coalescing window; ip and thread_id (0 when unknown) are
 * reported with the event. Lock-free and async-signal-safe (callable from a fault handler).
 * Returns SHK_OK, SHK_EINVAL (NULL w) or SHK_ELIMIT (the ring is full: counted in
 * events_dropped, and the change is still found by a full compare). */
SHK_API int shk_watch_report_write(shk_watcher *w, const void *addr, uintptr_t ip,
                                   uint64_t thread_id);

/** Allocates zeroed whole pages that every backend can watch well: on Windows with write
 * watching (for SHK_WATCH_WRITE_WATCH); elsewhere plain anonymous pages. Returns SHK_OK,
 * SHK_EINVAL, SHK_ESIZE or SHK_ENOMEM. Free with shk_watch_pages_free(). */
SHK_API int shk_watch_pages_alloc(size_t size, void **out);

/** Frees pages from shk_watch_pages_alloc() (same size). Accepts NULL. */
SHK_API void shk_watch_pages_free(void *addr, size_t size);

#ifdef __cplusplus
}
#endif

#endif
