/** @file
 * shmkit lens: a shared-memory profiling protocol (lens 2.0, descended from temporal-lens 0.1.5:
 * docs/lens-protocol.md says how), its producer (an instrumented program, any number of processes
 * and threads) and its reader (a recorder). Every producing thread writes into a ring of its own
 * in the segment: no lock and no system call on the producer's path.
 * Threads: a producer handle may be used from any thread at once (zones end on the thread that
 * began them); a reader handle by one thread at a time; the other functions from any thread. */
#ifndef SHMKIT_LENS_H
#define SHMKIT_LENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmkit/export.h"
#include "shmkit/options.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The wire layout (records, rings, header) is in shmkit/lens_wire.h, which shmkit.h does not
 * include: only readers and producers written without the library need it. */

/** major << 16 | minor << 8 | patch of the wire layout this library speaks (shmkit/lens_wire.h
 * has the same value as SHK_LENS_PROTOCOL_VERSION). */
#define SHK_LENS_VERSION 0x00020300u

/** Event kinds, also the index of the counters below. */
typedef enum shk_lens_kind {
  SHK_LENS_FRAME = 0,
  SHK_LENS_ZONE = 1,
  SHK_LENS_HEAP = 2,
  SHK_LENS_PLOT = 3,
  SHK_LENS_LOG = 4,
  SHK_LENS_KIND_COUNT = 5
} shk_lens_kind;

/** Exact accounting, per kind: every event a producer tries to send is written or dropped;
 * the reader adds what it took out to drained. */
typedef struct shk_lens_counters {
  uint64_t written; /**< events written into the segment */
  uint64_t dropped; /**< events not written (ring full after any wait, or no ring free) */
  uint64_t drained; /**< events the reader took out */
} shk_lens_counters;

/* ---- counters as a program sees them -------------------------------------------------- */

/** Statistics of a producer or a reader handle, per kind (index: shk_lens_kind). */
typedef struct shk_lens_stats {
  uint64_t sent[SHK_LENS_KIND_COUNT];      /**< producer: events this handle tried to send */
  uint64_t received[SHK_LENS_KIND_COUNT];  /**< reader: valid events delivered to the program */
  uint64_t malformed[SHK_LENS_KIND_COUNT]; /**< reader: records found invalid and skipped */
  shk_lens_counters segment[SHK_LENS_KIND_COUNT]; /**< the segment's counters (every ring, live
                                                     or closed, in its current epoch) */
  uint64_t strings;         /**< reader: distinct string keys with contents */
  uint64_t unknown_strings; /**< reader: keys seen without contents (shown as a placeholder) */
  uint64_t rings;           /**< rings ever claimed in the segment */
} shk_lens_stats;

/** What shk_lens_probe() learns about a segment. */
typedef struct shk_lens_info {
  uint32_t magic;            /**< as in the segment (SHK_LENS_MAGIC when valid) */
  uint32_t protocol_version; /**< as in the segment (SHK_LENS_VERSION when valid) */
  size_t segment_size;       /**< the mapped size of the segment in bytes */
  int producer_pid;    /**< a producer process with a handle open; 0 when none */
  bool producer_alive; /**< whether that process is still running */
  uint32_t producers;  /**< open producer handles whose process is alive */
  uint32_t dead_producers; /**< handles left open by processes that are gone */
  int reader_pid;    /**< the attached reader; 0 when none */
  bool reader_alive; /**< whether that process is still running */
  uint32_t rings;    /**< rings ever claimed */
  shk_lens_counters counters[SHK_LENS_KIND_COUNT]; /**< the segment's counters, per kind */
  char reason[160];  /**< when the segment is refused: what is wrong, in words */
} shk_lens_info;

/** Opens segment `name` read-only and reads its header and counters into *info (zeroed first).
 * Returns SHK_OK for a valid lens segment; SHK_EFORMAT (not a lens 2.x segment: bad magic,
 * temporal-lens 0.1.5, header sizes or ring geometry that do not fit; info->reason says which),
 * SHK_EBUSY (magic still 0: being created), SHK_ESIZE (the name is still empty: being created),
 * SHK_EVERSION (another major version; info->reason
 * names the version found and the one spoken), SHK_EINVAL (NULL info or name), SHK_ENAME,
 * SHK_ENOENT, SHK_EACCES or SHK_EOS. Thread-safe. */
SHK_API int shk_lens_probe(const char *name, shk_lens_info *info);

/* ---- producer --------------------------------------------------------------------------- */

/** A producer handle. Thread-safe: any thread may send through it. */
typedef struct shk_lens shk_lens;

/** Do not remove the segment's name when the last producer handle closes. */
#define SHK_LENS_KEEP_NAME 1u

/** Options of shk_lens_open(). Fill with shk_lens_options_init() first, then change fields.
 * ring_bytes and max_threads matter only to the handle that creates the segment. Evolves by
 * the rule in shmkit/options.h (first published layout: struct_size and flags; a
 * zero-initialised struct is read as the 0.2.0 layout, every field below, zeros as written: a
 * ring_bytes or max_threads of 0 is refused). */
typedef struct shk_lens_options {
  uint32_t struct_size;  /**< sizeof(shk_lens_options), set by shk_lens_options_init() */
  uint32_t flags;        /**< SHK_LENS_KEEP_NAME */
  uint64_t full_wait_ns; /**< how long a send waits for an attached reader when its thread's ring
                            is full; 0 drops at once (and counts). Default 2 ms. */
  uint32_t ring_bytes;   /**< bytes of records per thread ring: a power of two from 8 KiB to
                            64 MiB; default 1 MiB (32,768 records: a reader may pause about 32 ms
                            at 1 M zones/s per thread without loss) */
  uint32_t max_threads;  /**< the rings the segment starts with, 1 to 4096, default 64. When
                            more threads of every process together produce at once, producers
                            add extension segments (each with as many rings as all before it),
                            up to 65,536 rings in all (lens 2.3). A ring's pages cost memory only
                            once used (on Windows a segment's pages are committed whole). */
} shk_lens_options;

/** Fills the first `size` bytes of *options (sizeof the struct where the caller was compiled)
 * with the defaults (flags 0) and struct_size = size. Accepts NULL (does nothing). Call it
 * through shk_lens_options_init(). Thread-safe. */
SHK_API void shk_lens_options_init_size(shk_lens_options *options, size_t size);

/** Kept for programs built before the init macro, which call it: fills the 0.2.0 layout. */
SHK_API void(shk_lens_options_init)(shk_lens_options *options);

/** Fills *options with the defaults (see shk_lens_options_init_size()). */
#define shk_lens_options_init(options) shk_lens_options_init_size((options), sizeof(shk_lens_options))

/** Opens the lens segment `name` (a portable shm name), creating it when it does not exist;
 * several processes may each open it (each handle counts as one producer). options may be NULL
 * (defaults). An existing segment is validated as a reader would.
 * Returns SHK_OK, SHK_EINVAL (NULL out, options refused by the rule of shmkit/options.h, ring_bytes
 * or max_threads out of range), SHK_ENAME, SHK_EFORMAT, SHK_EVERSION, SHK_EBUSY (a creator never
 * finished, or every producer slot taken), SHK_ESIZE (a name that stayed empty: a creator that
 * never sized it; another producer's creation in progress is waited for, up to a second),
 * SHK_EACCES, SHK_ENOMEM or SHK_EOS; *out is NULL on failure. Free with shk_lens_close(). Thread-safe. */
SHK_API int shk_lens_open(const char *name, const shk_lens_options *options, shk_lens **out);

/** Closes the handle: the rings its threads used are marked closed (the reader drains them, then
 * they may be reused). When no other live process holds a handle, the name is removed (unless
 * SHK_LENS_KEEP_NAME); an attached reader keeps its mapping and drains what is left.
 * Accepts NULL. No other thread may use the handle during or after the call. */
SHK_API void shk_lens_close(shk_lens *lens);

/** Waits until a reader is attached, at most timeout_ns. Returns SHK_OK, SHK_ETIMEDOUT or
 * SHK_EINVAL. Lets a program send nothing before its recorder is there. */
SHK_API int shk_lens_wait_reader(shk_lens *lens, uint64_t timeout_ns);

/** Names the calling thread (its track in a trace carries the name). At most 128 bytes are kept;
 * the name is copied. Returns SHK_OK or SHK_EINVAL. Without a call, a thread is "thread <id>". */
SHK_API int shk_lens_thread_name(shk_lens *lens, const char *name);

/** Marks the end of a frame: frames are numbered from 1 per handle and last from the previous
 * mark (or the open). Every send returns SHK_OK (written), SHK_EBUSY (dropped and counted: the
 * thread's ring full after the wait, or no ring free) or SHK_EINVAL. */
SHK_API int shk_lens_frame(shk_lens *lens);

/** Kept from lens 1.x, where zone ends were staged: every event is now published when it is
 * sent, so there is nothing to flush. Returns SHK_OK, or SHK_EINVAL for a NULL lens. */
SHK_API int shk_lens_flush(shk_lens *lens);

/** An open zone. Lives on the caller's stack between begin and end. Every field is the
 * library's: shk_lens_zone_begin() writes them and shk_lens_zone_end() reads them. A caller
 * may read `lens` (NULL: begin failed, or the zone has ended), `name`, `color` and `depth`, and
 * writes none of them. `reserved` is room for later releases (the struct's size is part of the
 * ABI: a zone compiled into a program keeps this size); it is neither initialised nor read by
 * this release. */
typedef struct shk_lens_zone {
  shk_lens *lens;   /**< NULL when begin failed (end is then a no-op) and after end */
  const char *name; /**< as given to shk_lens_zone_begin() */
  uint64_t start;   /**< the segment's clock at begin (see lens_wire.h clock_kind) */
  uint32_t color;   /**< as given to shk_lens_zone_begin() */
  uint32_t depth;   /**< the thread's zone depth at begin */
  uint64_t reserved[2]; /**< the library's, for later releases */
} shk_lens_zone;

/** Opens a zone on the calling thread; depth is counted per thread. `name` is sent by address:
 * it must stay valid and unchanged while the lens is open (a string literal is ideal).
 * color is 0x00RRGGBB. Returns SHK_OK or SHK_EINVAL (then zone->lens is NULL). No lock, no
 * system call: one clock read. */
SHK_API int shk_lens_zone_begin(shk_lens *lens, shk_lens_zone *zone, const char *name,
                                uint32_t color);

/** Closes the zone and writes it into the calling thread's ring (one 32-byte record; the name's
 * contents go once per thread and reader). Call it on the thread that began the zone. Returns
 * SHK_OK (written, or a failed begin), SHK_EBUSY (dropped and counted) or SHK_EINVAL (NULL zone).
 * No lock, no system call (except the first zone of a thread on a lens, which claims its ring, and
 * a wait for room, see full_wait_ns). */
SHK_API int shk_lens_zone_end(shk_lens_zone *zone);

/** shk_lens_zone_end() without a result, for the scope macro. */
SHK_API void shk_lens_zone_cleanup(shk_lens_zone *zone);

#if defined(__GNUC__) || defined(__clang__)
#define SHK_LENS_CAT2_(a, b) a##b
#define SHK_LENS_CAT_(a, b) SHK_LENS_CAT2_(a, b)
/** A zone that ends when the enclosing block ends (gcc and clang, which have the cleanup
 * attribute; with MSVC call shk_lens_zone_begin() and shk_lens_zone_end()). */
#define SHK_LENS_ZONE(lens, name, color)                                                       \
  shk_lens_zone SHK_LENS_CAT_(shk_lens_scope_, __LINE__)                                       \
      __attribute__((cleanup(shk_lens_zone_cleanup)));                                         \
  shk_lens_zone_begin((lens), &SHK_LENS_CAT_(shk_lens_scope_, __LINE__), (name), (color))
#endif

/** Sends a plot point. `name` identifies the plot and is sent by address (as zone names).
 * Returns as shk_lens_frame(); SHK_EINVAL also for a NULL name or a value that is not finite. */
SHK_API int shk_lens_plot(shk_lens *lens, const char *name, double value, uint32_t color);

/** Sends a heap event: `size` bytes at `addr` allocated (is_free false) or freed.
 * Returns as shk_lens_frame(); SHK_EINVAL also when addr + size wraps past 2^64. */
SHK_API int shk_lens_heap(shk_lens *lens, uint64_t addr, uint64_t size, bool is_free);

/** Sends a log message formatted printf-style; longer than 4064 bytes is cut.
 * Returns as shk_lens_frame(); SHK_EINVAL also for a NULL format or a formatting error. */
SHK_API int shk_lens_log(shk_lens *lens, uint32_t color, const char *format, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- arguments (lens 2.2) ---------------------------------------------------------------- */

/** The type of an argument's value. */
typedef enum shk_lens_arg_type {
  SHK_LENS_ARG_UINT = 0, /**< value: an unsigned 64-bit integer */
  SHK_LENS_ARG_INT = 1,  /**< value: a signed 64-bit integer, stored as (uint64_t)(int64_t)v */
  SHK_LENS_ARG_TEXT = 2  /**< text: a string (value unused) */
} shk_lens_arg_type;

/** One named value attached to a zone, heap or log event (at most SHK_LENS_ARGS_MAX, 8, per event).
 * Sending: `name` and `text` go by address, as zone names do: each must stay valid and unchanged
 * while the lens is open (string literals are ideal; a text that changes needs a new address).
 * Reading (shk_lens_reader_args()): name and text are the reader's copies, valid until it closes. */
typedef struct shk_lens_arg {
  const char *name;  /**< the argument's name */
  uint32_t type;     /**< shk_lens_arg_type */
  uint32_t known;    /**< reader: 1 when name (and text) hold the contents the producer sent, 0
                          when shown as a placeholder; ignored when sending */
  uint64_t value;    /**< SHK_LENS_ARG_UINT, SHK_LENS_ARG_INT */
  const char *text;  /**< SHK_LENS_ARG_TEXT; NULL otherwise */
} shk_lens_arg;

/** The most arguments of one event. */
#define SHK_LENS_ARGS_MAX 8u

/** shk_lens_zone_end() with arguments (count may be 0; args may then be NULL). The arguments and
 * the zone are written together: a reader gets both or neither. Returns as shk_lens_zone_end(), and
 * SHK_EINVAL (nothing written, the zone still open) for more than SHK_LENS_ARGS_MAX arguments, NULL
 * args with count > 0, an argument with a NULL name, an unknown type, or a text argument whose
 * text is NULL. */
SHK_API int shk_lens_zone_end_args(shk_lens_zone *zone, const shk_lens_arg *args, size_t count);

/** shk_lens_heap() with arguments (for example the allocator's name), written together as in
 * shk_lens_zone_end_args(). Returns as shk_lens_heap(), and SHK_EINVAL for arguments refused as
 * there. */
SHK_API int shk_lens_heap_args(shk_lens *lens, uint64_t addr, uint64_t size, bool is_free,
                               const shk_lens_arg *args, size_t count);

/** shk_lens_log() with arguments, written together as in shk_lens_zone_end_args(). shmkit's own
 * trace writer shows a log with an unsigned argument named "thread" on the track of that thread
 * of the same process (as the OS numbers threads) instead of the process's log track. Returns as
 * shk_lens_log(), and SHK_EINVAL for arguments refused as in shk_lens_zone_end_args(). */
SHK_API int shk_lens_log_args(shk_lens *lens, uint32_t color, const shk_lens_arg *args,
                              size_t count, const char *format, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/** Counters of this handle and of the segment. The handle is not const: the call takes the
 * handle's lock (before 0.2.0 it was declared const). Returns SHK_OK or SHK_EINVAL.
 * Thread-safe. */
SHK_API int shk_lens_stats_get(shk_lens *lens, shk_lens_stats *out);

/* ---- shmkit's own parts on the same timeline ------------------------------------------ */

#define SHK_LENS_TASKS 0x1u /**< chunk tasks: calls, copy-in, chunks (on the workers), results */
#define SHK_LENS_WATCH 0x2u /**< the watcher: each change event delivered */
#define SHK_LENS_BUFS 0x4u  /**< buffers: creation and release as heap events, live count */
#define SHK_LENS_ALL 0x7u   /**< every part */

/** Makes shmkit's own parts report into `lens`, beside the program's zones: `parts` is an OR
 * of SHK_LENS_TASKS, SHK_LENS_WATCH, SHK_LENS_BUFS (docs/lens.md lists the events). Replaces
 * any earlier choice, including one made by the SHK_LENS environment variable (which is then
 * no longer read); lens NULL or parts 0 turns everything off. Off is the default and costs each
 * instrumented path one relaxed load. Worker processes report through handles of their own on
 * the same segment: forked workers, and workers started as new processes (worker hosts, every
 * process worker on Windows), which open the lens the pool's caller had for its tasks when it
 * started them, with no SHK_LENS needed; the caller's choice then replaces theirs.
 * shk_lens_close() turns off the parts that report into the lens it closes; the lens must
 * otherwise stay open while parts report into it, and no instrumented call may be running in
 * another thread while it closes. A child forked by the program (not a task worker) while
 * instrumentation is on must turn it off before using shmkit.
 * Returns SHK_OK, or SHK_EINVAL for bits outside SHK_LENS_ALL. Thread-safe. */
SHK_API int shk_lens_instrument(shk_lens *lens, unsigned parts);

/* ---- reader ----------------------------------------------------------------------------- */

/** A reader handle: one thread at a time. */
typedef struct shk_lens_reader shk_lens_reader;

/** Options of shk_lens_reader_open(). Fill with shk_lens_reader_options_init() first, then
 * change fields. Evolves by the rule in shmkit/options.h (first published layout: struct_size
 * and max_strings; a zero-initialised struct is read as the 0.2.0 layout, every field below,
 * zeros as written). */
typedef struct shk_lens_reader_options {
  uint32_t struct_size;   /**< sizeof(shk_lens_reader_options), set by
                             shk_lens_reader_options_init() */
  uint32_t max_strings;   /**< distinct string keys kept; default 65536 */
  uint64_t idle_spin_ns;  /**< poll: keep looking without a pause this long after a look that
                             found a ring at least 1/8 full; default 2 ms */
  uint64_t idle_sleep_ns; /**< poll: otherwise look once per this long (events flowing slowly,
                             or none); default 1 ms (a thread ring of the default size holds
                             about 8 ms at 1 M zones/s) */
} shk_lens_reader_options;

/** Fills the first `size` bytes of *options (sizeof the struct where the caller was compiled)
 * with the defaults and struct_size = size. Accepts NULL (does nothing). Call it through
 * shk_lens_reader_options_init(). Thread-safe. */
SHK_API void shk_lens_reader_options_init_size(shk_lens_reader_options *options, size_t size);

/** Kept for programs built before the init macro, which call it: fills the 0.2.0 layout. */
SHK_API void(shk_lens_reader_options_init)(shk_lens_reader_options *options);

/** Fills *options with the defaults (see shk_lens_reader_options_init_size()). */
#define shk_lens_reader_options_init(options)                                                  \
  shk_lens_reader_options_init_size((options), sizeof(shk_lens_reader_options))

/** One event, strings resolved. name and thread stay valid until the reader is closed; message
 * until the reader next takes records out (the next drain, poll, or next() that finds nothing
 * buffered). */
typedef struct shk_lens_event {
  shk_lens_kind kind;   /**< which of the fields below are set */
  uint32_t color;       /**< zone, plot, log: 0x00RRGGBB; 0 for the others */
  double time;          /**< frame and zone: end; the others: when (seconds since Time 0) */
  uint64_t duration_ns; /**< frame, zone */
  uint64_t number;      /**< frame */
  uint64_t uid;         /**< zone: unique per ring epoch and record position */
  uint32_t depth;       /**< zone */
  const char *name;     /**< zone, plot ("<unknown string ...>" when never sent with contents) */
  const char *thread;   /**< every kind: the name of the thread that sent it */
  uint64_t name_key;    /**< zone, plot: the key of name (an address in process pid) */
  uint64_t thread_key;  /**< every kind: pid << 32 | (tid & 0xFFFFFFFF), unique per thread */
  double value;         /**< plot */
  uint64_t addr;        /**< heap */
  uint64_t size;        /**< heap */
  bool is_free;         /**< heap */
  bool name_known;      /**< zone, plot: name holds the contents the producer sent */
  const char *message;  /**< log: NUL-terminated copy; may also hold NULs inside */
  uint32_t length;      /**< log: message bytes */
  uint32_t pid;         /**< every kind: the producer's process */
  uint64_t tid;         /**< every kind: the producer's thread (as the OS numbers it) */
} shk_lens_event;

/** Receives one event during shk_lens_reader_drain() or shk_lens_reader_poll(), on the
 * calling thread; `event` is valid during the call only. */
typedef void (*shk_lens_event_fn)(const shk_lens_event *event, void *user);

/** Attaches to the lens segment `name` and validates it: magic, major version, header and ring
 * geometry against the mapped size. Only one reader may be attached at a time.
 * Returns SHK_OK, SHK_EINVAL (also options refused by the rule of shmkit/options.h), SHK_ENAME,
 * SHK_ENOENT, SHK_EFORMAT, SHK_EVERSION, SHK_EBUSY
 * (another live reader, or a creator that never finished), SHK_ESIZE (the name is still empty:
 * its creator has not sized it yet; try again), SHK_EACCES, SHK_ENOMEM, SHK_EOS.
 * shk_lens_probe() says why a segment is refused. */
SHK_API int shk_lens_reader_open(const char *name, const shk_lens_reader_options *options,
                                 shk_lens_reader **out);

/** Detaches and frees. Accepts NULL. */
SHK_API void shk_lens_reader_close(shk_lens_reader *reader);

/** Takes what every ring holds (up to a few thousand events per call), validates it and calls
 * fn(event, user) for each valid event, ring by ring, in each ring's order. *count (may be NULL)
 * gets the number delivered. Invalid records are counted and skipped. Events that
 * shk_lens_reader_next() has not handed out yet are delivered first. Returns SHK_OK,
 * SHK_EINVAL (NULL reader), or SHK_EFORMAT once the segment has been found smaller than when the
 * reader attached (shrunk by another process, POSIX only): the reader then never touches the
 * segment again; shk_lens_reader_finished() is true, stats and threads keep what was read, and
 * close is safe. The size is checked as each drain begins: a shrink that happens during a drain
 * (a window of microseconds) can still raise SIGBUS in the reading thread. fn may be NULL: events then wait for shk_lens_reader_next() (and
 * *count tells how many wait). */
SHK_API int shk_lens_reader_drain(shk_lens_reader *reader, shk_lens_event_fn fn, void *user,
                                  size_t *count);

/** Drains; when nothing came, keeps looking per the idle policy until events come or timeout_ns
 * passes. Returns SHK_OK (events delivered, *count > 0), SHK_ETIMEDOUT, SHK_EINVAL, or
 * SHK_EFORMAT (the segment shrank: see shk_lens_reader_drain()). */
SHK_API int shk_lens_reader_poll(shk_lens_reader *reader, uint64_t timeout_ns,
                                 shk_lens_event_fn fn, void *user, size_t *count);

/** Iterator form: the next buffered event (taken from the segment, not yet handed out),
 * reading the segment when none is buffered.
 * Returns SHK_OK, SHK_ENOENT (nothing now) or SHK_EINVAL. */
SHK_API int shk_lens_reader_next(shk_lens_reader *reader, shk_lens_event *event);

/** Whether every producer is gone (no handle open, or only handles of processes that ended),
 * every ring is drained and no event waits for shk_lens_reader_next(): nothing more will come.
 * True for a NULL reader. */
SHK_API bool shk_lens_reader_finished(shk_lens_reader *reader);

/** Counters of this reader and of the segment. Returns SHK_OK or SHK_EINVAL. */
SHK_API int shk_lens_reader_stats(const shk_lens_reader *reader, shk_lens_stats *out);

/** What is wrong with the segment's extensions (lens 2.3: the segments a lens adds when its rings
 * are all taken), in words, or NULL when nothing is: an extension that is missing, refused (wrong
 * magic, index, geometry, or left over from an older lens of the same name), shrunk, or a count
 * past the limit. The rings of a refused extension, and of every one after it, are not read; the
 * main segment's and the others' still are. The text is the reader's (valid until the next call
 * on it, or its close). reader may be NULL (NULL). Same thread rules as shk_lens_reader_stats(). */
SHK_API const char *shk_lens_reader_problem(const shk_lens_reader *reader);

/** One producing thread as the reader knows it (a ring epoch). */
typedef struct shk_lens_thread_info {
  uint32_t pid;           /**< its process */
  uint64_t tid;           /**< its thread id */
  const char *name;       /**< its name; valid until the reader is closed */
  bool alive;             /**< its ring is live and its process running */
  shk_lens_counters counters[SHK_LENS_KIND_COUNT]; /**< written and dropped as the producer
                            counted them (as last seen), drained as this reader did */
  bool implausible;       /**< counters that cannot be true (drained > written, or a count past
                             2^62): shown, but marked */
} shk_lens_thread_info;

/** Copies up to `capacity` producing threads the reader has seen (every ring epoch, ended ones
 * too) into out[]; *count gets how many there are (may exceed capacity). The reader is not
 * const: the call first refreshes its counts of the rings still live (before 0.2.0 it was
 * declared const). Returns SHK_OK or
 * SHK_EINVAL (NULL reader or count, or NULL out with capacity > 0). */
SHK_API int shk_lens_reader_threads(shk_lens_reader *reader, shk_lens_thread_info *out,
                                    size_t capacity, size_t *count);

/** The arguments of the event this reader delivered last: the one `fn` is called with during
 * shk_lens_reader_drain() or shk_lens_reader_poll(), or the one shk_lens_reader_next() returned
 * last. Copies up to `capacity` into out[]; *count gets how many the event has (0 to
 * SHK_LENS_ARGS_MAX; 0 also before any event). Names and texts stay valid until the reader
 * closes; a name never sent with contents is a placeholder (known 0). Returns SHK_OK or
 * SHK_EINVAL (NULL reader or count, or NULL out with capacity > 0). */
SHK_API int shk_lens_reader_args(shk_lens_reader *reader, shk_lens_arg *out, size_t capacity,
                                 size_t *count);

/** The current contents of string `key` of process `pid`, or NULL when never sent (a name that
 * arrived after the events that used it can be looked up again). Valid until close. */
SHK_API const char *shk_lens_reader_string(shk_lens_reader *reader, uint32_t pid, uint64_t key);

/** The name of a kind ("frame", "zone", "heap", "plot", "log"; "?" otherwise). Static. */
SHK_API const char *shk_lens_kind_name(int kind);

#ifdef __cplusplus
}
#endif

#endif
