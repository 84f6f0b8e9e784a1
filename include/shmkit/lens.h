/** @file
 * shmkit lens: a shared-memory profiling protocol (temporal-lens 0.1.5 with a fixed layout), its
 * producer (an instrumented program) and its reader (a recorder). Wire layout: docs/lens-protocol.md.
 * Threads: a producer handle may be used from any thread at once (zones end on the thread that
 * began them); a reader handle by one thread at a time; the other functions from any thread. */
#ifndef SHMKIT_LENS_H
#define SHMKIT_LENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmkit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- protocol constants ---------------------------------------------------------------- */

/** The first word of a lens segment (shk_lens_segment.magic) once its creator has set it up. */
#define SHK_LENS_MAGIC 0x1DC45EF1u
/** major << 16 | minor << 8 | patch: 1.0.5. A reader accepts any segment whose major matches. */
#define SHK_LENS_PROTOCOL_VERSION 0x00010005u
#define SHK_LENS_NUM_ENTRIES 32u /**< entries of each event payload (frame, zone, heap, plot) */
#define SHK_LENS_LOG_DATA_SIZE 8192u /**< bytes of the log area: headers and messages */
#define SHK_LENS_SHARED_STRING_MAX_SIZE 128u /**< the most content bytes of one shared string */
/** Marks the extension block that follows the 0.1.5 structure (counters, pids, time origin):
 * "SLNX" in little-endian bytes. */
#define SHK_LENS_EXT_MAGIC 0x584E4C53u

/* ---- wire layout: every field fixed, checked below, written down in docs/lens-protocol.md ---- */

/** A spin lock owned by a process: owner is the holder's process id, 0 when free. A waiter that
 * finds the owner's process gone takes the lock over and counts it in `recoveries`. */
typedef struct shk_lens_lock {
  uint32_t owner;      /**< the holder's process id; 0 when free */
  uint32_t recoveries; /**< times the lock was taken over from a dead owner */
} shk_lens_lock;

/** A string that travels by key: contents are sent the first time a key appears, then only the key. */
typedef struct shk_lens_shared_string {
  uint64_t key;          /**< pointer-sized in 0.1.5; always 64 bits here */
  uint8_t size;          /**< bytes of contents, <= 128 */
  uint8_t has_contents;  /**< 0 or 1 */
  uint8_t contents[SHK_LENS_SHARED_STRING_MAX_SIZE]; /**< not NUL-terminated */
  uint8_t reserved[6];   /**< 0 */
} shk_lens_shared_string;

/** A frame entry: frame `number` ended at `end` after `duration`. */
typedef struct shk_lens_frame_data {
  uint64_t number;   /**< frames are numbered from 1 per producer handle */
  double end;        /**< Time: seconds since the segment's time origin */
  uint64_t duration; /**< Duration: nanoseconds */
} shk_lens_frame_data;

/** A zone entry: a named span of time on one thread, sent when the zone ends. */
typedef struct shk_lens_zone_data {
  uint64_t uid;       /**< unique per zone: the thread's serial number and its zone count */
  uint32_t color;     /**< 0x00RRGGBB */
  uint32_t reserved0; /**< 0 */
  double end;         /**< Time: seconds since the segment's time origin */
  uint64_t duration;  /**< Duration: nanoseconds */
  uint32_t depth;     /**< zones open on the thread when it began (0 for an outermost zone) */
  uint32_t reserved1; /**< 0 */
  shk_lens_shared_string name;   /**< the zone's name */
  shk_lens_shared_string thread; /**< the name of the thread it ran on */
} shk_lens_zone_data;

/** A plot entry: one value of a named plot. */
typedef struct shk_lens_plot_data {
  double time;     /**< Time: seconds since the segment's time origin */
  uint32_t color;  /**< 0x00RRGGBB */
  uint32_t reserved; /**< 0 */
  double value;    /**< the value plotted */
  shk_lens_shared_string name; /**< also the plot's identity */
} shk_lens_plot_data;

/** A heap entry: an allocation or a free. */
typedef struct shk_lens_heap_data {
  double time;     /**< Time: seconds since the segment's time origin */
  uint64_t addr;   /**< the address allocated or freed */
  uint64_t size;   /**< its size in bytes */
  uint8_t is_free; /**< 0 allocation, 1 free */
  uint8_t reserved[7]; /**< 0 */
} shk_lens_heap_data;

/** Packed in the log area: entries follow each other with no alignment; copy them out with memcpy.
 * `length` message bytes (not NUL-terminated) follow each header. */
typedef struct shk_lens_log_header {
  double time;     /**< Time: seconds since the segment's time origin */
  uint32_t color;  /**< 0x00RRGGBB */
  uint32_t length; /**< message bytes that follow the header */
} shk_lens_log_header;

#define SHK_LENS_PAYLOAD_(T)                                                                   \
  struct {                                                                                     \
    shk_lens_lock lock;                                                                        \
    uint32_t size; /* valid entries, <= 32 */                                                  \
    uint32_t reserved;                                                                         \
    T data[SHK_LENS_NUM_ENTRIES];                                                              \
  }
typedef SHK_LENS_PAYLOAD_(shk_lens_frame_data) shk_lens_frame_payload;
typedef SHK_LENS_PAYLOAD_(shk_lens_zone_data) shk_lens_zone_payload;
typedef SHK_LENS_PAYLOAD_(shk_lens_heap_data) shk_lens_heap_payload;
typedef SHK_LENS_PAYLOAD_(shk_lens_plot_data) shk_lens_plot_payload;

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
  uint64_t dropped; /**< events not written (payload full, or a lock not obtained) */
  uint64_t drained; /**< events the reader took out */
} shk_lens_counters;

/** The extension block (not in 0.1.5): right after the log area. */
typedef struct shk_lens_ext {
  uint32_t magic;             /**< SHK_LENS_EXT_MAGIC */
  uint32_t size;              /**< sizeof(shk_lens_ext) */
  uint32_t producer_pid;      /**< the last producer that opened the segment */
  uint32_t producers;         /**< open producer handles */
  uint32_t reader_pid;        /**< the attached reader, 0 when none */
  uint32_t reader_generation; /**< +1 per reader attach: producers send string contents again */
  uint64_t origin_ns;         /**< the monotonic clock (ns) at Time 0 */
  shk_lens_counters counters[SHK_LENS_KIND_COUNT]; /**< per kind (index: shk_lens_kind) */
} shk_lens_ext;

/** SharedMemoryData: the whole segment, starting at the first byte of the mapping. */
typedef struct shk_lens_segment {
  uint32_t magic;            /**< SHK_LENS_MAGIC, written last by the creator */
  uint32_t protocol_version; /**< SHK_LENS_PROTOCOL_VERSION */
  uint32_t sizeof_usize;     /**< the producer's pointer size: 4 or 8 */
  uint32_t reserved;         /**< 0 */
  shk_lens_frame_payload frame; /**< frame entries */
  shk_lens_zone_payload zone;   /**< zone entries */
  shk_lens_heap_payload heap;   /**< heap entries */
  shk_lens_plot_payload plot;   /**< plot entries */
  shk_lens_lock log_data_lock;  /**< guards log_data and log_data_count */
  uint32_t log_data_count; /**< bytes of log_data in use */
  uint32_t log_reserved;   /**< 0 */
  uint8_t log_data[SHK_LENS_LOG_DATA_SIZE]; /**< packed shk_lens_log_header + message entries */
  shk_lens_ext ext;        /**< the extension block */
} shk_lens_segment;

#ifdef __cplusplus
#define SHK_LENS_ASSERT_(cond, msg) static_assert(cond, msg)
#else
#define SHK_LENS_ASSERT_(cond, msg) _Static_assert(cond, msg)
#endif
#define SHK_LENS_AT_(T, f, off) SHK_LENS_ASSERT_(offsetof(T, f) == (off), #T "." #f " offset")
#define SHK_LENS_SIZE_(T, n) SHK_LENS_ASSERT_(sizeof(T) == (n), #T " size")

SHK_LENS_SIZE_(double, 8);
SHK_LENS_SIZE_(shk_lens_lock, 8);
SHK_LENS_AT_(shk_lens_lock, owner, 0);
SHK_LENS_AT_(shk_lens_lock, recoveries, 4);
SHK_LENS_SIZE_(shk_lens_shared_string, 144);
SHK_LENS_AT_(shk_lens_shared_string, key, 0);
SHK_LENS_AT_(shk_lens_shared_string, size, 8);
SHK_LENS_AT_(shk_lens_shared_string, has_contents, 9);
SHK_LENS_AT_(shk_lens_shared_string, contents, 10);
SHK_LENS_AT_(shk_lens_shared_string, reserved, 138);
SHK_LENS_SIZE_(shk_lens_frame_data, 24);
SHK_LENS_AT_(shk_lens_frame_data, number, 0);
SHK_LENS_AT_(shk_lens_frame_data, end, 8);
SHK_LENS_AT_(shk_lens_frame_data, duration, 16);
SHK_LENS_SIZE_(shk_lens_zone_data, 328);
SHK_LENS_AT_(shk_lens_zone_data, uid, 0);
SHK_LENS_AT_(shk_lens_zone_data, color, 8);
SHK_LENS_AT_(shk_lens_zone_data, reserved0, 12);
SHK_LENS_AT_(shk_lens_zone_data, end, 16);
SHK_LENS_AT_(shk_lens_zone_data, duration, 24);
SHK_LENS_AT_(shk_lens_zone_data, depth, 32);
SHK_LENS_AT_(shk_lens_zone_data, reserved1, 36);
SHK_LENS_AT_(shk_lens_zone_data, name, 40);
SHK_LENS_AT_(shk_lens_zone_data, thread, 184);
SHK_LENS_SIZE_(shk_lens_plot_data, 168);
SHK_LENS_AT_(shk_lens_plot_data, time, 0);
SHK_LENS_AT_(shk_lens_plot_data, color, 8);
SHK_LENS_AT_(shk_lens_plot_data, reserved, 12);
SHK_LENS_AT_(shk_lens_plot_data, value, 16);
SHK_LENS_AT_(shk_lens_plot_data, name, 24);
SHK_LENS_SIZE_(shk_lens_heap_data, 32);
SHK_LENS_AT_(shk_lens_heap_data, time, 0);
SHK_LENS_AT_(shk_lens_heap_data, addr, 8);
SHK_LENS_AT_(shk_lens_heap_data, size, 16);
SHK_LENS_AT_(shk_lens_heap_data, is_free, 24);
SHK_LENS_AT_(shk_lens_heap_data, reserved, 25);
SHK_LENS_SIZE_(shk_lens_log_header, 16);
SHK_LENS_AT_(shk_lens_log_header, time, 0);
SHK_LENS_AT_(shk_lens_log_header, color, 8);
SHK_LENS_AT_(shk_lens_log_header, length, 12);
SHK_LENS_SIZE_(shk_lens_frame_payload, 16 + 32 * 24);
SHK_LENS_AT_(shk_lens_frame_payload, lock, 0);
SHK_LENS_AT_(shk_lens_frame_payload, size, 8);
SHK_LENS_AT_(shk_lens_frame_payload, reserved, 12);
SHK_LENS_AT_(shk_lens_frame_payload, data, 16);
SHK_LENS_SIZE_(shk_lens_zone_payload, 16 + 32 * 328);
SHK_LENS_AT_(shk_lens_zone_payload, size, 8);
SHK_LENS_AT_(shk_lens_zone_payload, data, 16);
SHK_LENS_SIZE_(shk_lens_heap_payload, 16 + 32 * 32);
SHK_LENS_AT_(shk_lens_heap_payload, size, 8);
SHK_LENS_AT_(shk_lens_heap_payload, data, 16);
SHK_LENS_SIZE_(shk_lens_plot_payload, 16 + 32 * 168);
SHK_LENS_AT_(shk_lens_plot_payload, size, 8);
SHK_LENS_AT_(shk_lens_plot_payload, data, 16);
SHK_LENS_SIZE_(shk_lens_counters, 24);
SHK_LENS_AT_(shk_lens_counters, written, 0);
SHK_LENS_AT_(shk_lens_counters, dropped, 8);
SHK_LENS_AT_(shk_lens_counters, drained, 16);
SHK_LENS_SIZE_(shk_lens_ext, 152);
SHK_LENS_AT_(shk_lens_ext, magic, 0);
SHK_LENS_AT_(shk_lens_ext, size, 4);
SHK_LENS_AT_(shk_lens_ext, producer_pid, 8);
SHK_LENS_AT_(shk_lens_ext, producers, 12);
SHK_LENS_AT_(shk_lens_ext, reader_pid, 16);
SHK_LENS_AT_(shk_lens_ext, reader_generation, 20);
SHK_LENS_AT_(shk_lens_ext, origin_ns, 24);
SHK_LENS_AT_(shk_lens_ext, counters, 32);
SHK_LENS_SIZE_(shk_lens_segment, 26104);
SHK_LENS_AT_(shk_lens_segment, magic, 0);
SHK_LENS_AT_(shk_lens_segment, protocol_version, 4);
SHK_LENS_AT_(shk_lens_segment, sizeof_usize, 8);
SHK_LENS_AT_(shk_lens_segment, reserved, 12);
SHK_LENS_AT_(shk_lens_segment, frame, 16);
SHK_LENS_AT_(shk_lens_segment, zone, 800);
SHK_LENS_AT_(shk_lens_segment, heap, 11312);
SHK_LENS_AT_(shk_lens_segment, plot, 12352);
SHK_LENS_AT_(shk_lens_segment, log_data_lock, 17744);
SHK_LENS_AT_(shk_lens_segment, log_data_count, 17752);
SHK_LENS_AT_(shk_lens_segment, log_reserved, 17756);
SHK_LENS_AT_(shk_lens_segment, log_data, 17760);
SHK_LENS_AT_(shk_lens_segment, ext, 25952);

/* ---- counters as a program sees them -------------------------------------------------- */

/** Statistics of a producer or a reader handle, per kind (index: shk_lens_kind). */
typedef struct shk_lens_stats {
  uint64_t sent[SHK_LENS_KIND_COUNT];      /**< producer: events this handle tried to send */
  uint64_t received[SHK_LENS_KIND_COUNT];  /**< reader: valid events delivered to the program */
  uint64_t malformed[SHK_LENS_KIND_COUNT]; /**< reader: entries (or payloads) found invalid and skipped */
  shk_lens_counters segment[SHK_LENS_KIND_COUNT]; /**< the segment's counters (all producers) */
  uint64_t strings;         /**< reader: distinct string keys with contents */
  uint64_t unknown_strings; /**< reader: keys seen without contents (shown as a placeholder) */
  uint64_t lock_recoveries; /**< locks taken over from a dead process, seen in the segment */
} shk_lens_stats;

/** What shk_lens_probe() learns about a segment. */
typedef struct shk_lens_info {
  uint32_t magic;            /**< as in the segment (SHK_LENS_MAGIC when valid) */
  uint32_t protocol_version; /**< as in the segment */
  uint32_t sizeof_usize;     /**< as in the segment: the producer's pointer size */
  size_t segment_size;       /**< the mapped size of the segment in bytes */
  int producer_pid; /**< the last producer that opened the segment; 0 when unknown */
  bool producer_alive; /**< whether that process is still running */
  uint32_t producers; /**< open producer handles */
  int reader_pid;    /**< the attached reader; 0 when none */
  bool reader_alive; /**< whether that process is still running */
  shk_lens_counters counters[SHK_LENS_KIND_COUNT]; /**< the segment's counters, per kind */
} shk_lens_info;

/** Opens segment `name` read-only and reads its header and counters into *info (zeroed first).
 * Returns SHK_OK for a valid lens segment; SHK_EFORMAT (bad magic, sizeof_usize, size or
 * extension block; info holds what was read), SHK_EBUSY (magic still 0: being created),
 * SHK_EVERSION (another major version; info holds what was read), SHK_EINVAL (NULL info or
 * name), SHK_ENAME, SHK_ENOENT, SHK_EACCES or SHK_EOS. Thread-safe. */
SHK_API int shk_lens_probe(const char *name, shk_lens_info *info);

/* ---- producer --------------------------------------------------------------------------- */

/** A producer handle. Thread-safe: any thread may send through it. */
typedef struct shk_lens shk_lens;

/** Do not remove the segment's name when the last producer handle closes. */
#define SHK_LENS_KEEP_NAME 1u

/** Options of shk_lens_open(). Fill with shk_lens_options_init() first, then change fields. */
typedef struct shk_lens_options {
  uint32_t struct_size;     /**< sizeof(shk_lens_options) */
  uint32_t flags;           /**< SHK_LENS_KEEP_NAME */
  uint64_t full_wait_ns;    /**< how long a send waits for an attached reader when a payload is
                               full; 0 drops at once. Default 2 ms. */
  uint64_t lock_timeout_ns; /**< longest wait for a lock held by a live process; default 100 ms */
} shk_lens_options;

/** Fills *options with the defaults (struct_size set, flags 0). Accepts NULL (does nothing). */
SHK_API void shk_lens_options_init(shk_lens_options *options);

/** Opens the lens segment `name` (a portable shm name), creating it when it does not exist.
 * options may be NULL (defaults). An existing segment is validated as a reader would.
 * Returns SHK_OK, SHK_EINVAL (NULL out, or options->struct_size too small or too large),
 * SHK_ENAME, SHK_EFORMAT, SHK_EVERSION, SHK_EBUSY (a creator never finished), SHK_EACCES,
 * SHK_ENOMEM or SHK_EOS; *out is NULL on failure. Free with shk_lens_close(). Thread-safe. */
SHK_API int shk_lens_open(const char *name, const shk_lens_options *options, shk_lens **out);

/** Closes the handle. First publishes the zones every thread staged on it (or drops and counts
 * them, as shk_lens_flush()). When it was the last producer handle on the segment, the name is
 * removed (unless SHK_LENS_KEEP_NAME); an attached reader keeps its mapping and drains what is
 * left.
 * Accepts NULL. No other thread may use the handle during or after the call. */
SHK_API void shk_lens_close(shk_lens *lens);

/** Waits until a reader is attached, at most timeout_ns. Returns SHK_OK, SHK_ETIMEDOUT or
 * SHK_EINVAL. Lets a program send nothing before its recorder is there. */
SHK_API int shk_lens_wait_reader(shk_lens *lens, uint64_t timeout_ns);

/** Names the calling thread (its zones carry the name). At most 128 bytes are kept; the name is
 * copied. Returns SHK_OK or SHK_EINVAL. Without a call, a thread is "thread <id>". */
SHK_API int shk_lens_thread_name(shk_lens *lens, const char *name);

/** Marks the end of a frame: frames are numbered from 1 and last from the previous mark (or the
 * open). The calling thread's staged zones are published first (see shk_lens_flush()). Every send returns SHK_OK (written), SHK_EBUSY (dropped and counted: payload full after
 * the wait, or a lock held past the timeout) or SHK_EINVAL. */
SHK_API int shk_lens_frame(shk_lens *lens);

/** Publishes the zones the calling thread has ended on `lens` and not yet published. Zone ends
 * are staged per thread (up to 16) and published together in one lock acquisition: when the
 * stage fills, when a zone ends more than 1 ms after the oldest staged one, at the thread's
 * frame marks (shk_lens_frame()), thread naming and shk_lens_stats_get(), and, for every
 * thread, at shk_lens_close(). A thread that stops sending (a worker about to exit, a program
 * about to hand the segment to a reader) calls this so that its last zones do not wait for
 * the close. A staged zone is counted when it is published or dropped, never before.
 * Returns SHK_OK (nothing staged, or all published), SHK_EBUSY (some staged zones dropped and
 * counted: payload full after the wait, or a lock held past the timeout) or SHK_EINVAL (NULL
 * lens). Thread-safe; acts on the calling thread's zones only. */
SHK_API int shk_lens_flush(shk_lens *lens);

/** An open zone. Lives on the caller's stack between begin and end; fields are the library's. */
typedef struct shk_lens_zone {
  shk_lens *lens; /**< NULL when begin failed: end is then a no-op */
  const char *name;   /**< as given to shk_lens_zone_begin() */
  uint64_t start_ns;  /**< monotonic clock at begin, in nanoseconds */
  uint32_t color;     /**< as given to shk_lens_zone_begin() */
  uint32_t depth;     /**< the thread's zone depth at begin */
} shk_lens_zone;

/** Opens a zone on the calling thread; depth is counted per thread. `name` is sent by address:
 * it must stay valid and unchanged while the lens is open (a string literal is ideal).
 * color is 0x00RRGGBB. Returns SHK_OK or SHK_EINVAL (then zone->lens is NULL). */
SHK_API int shk_lens_zone_begin(shk_lens *lens, shk_lens_zone *zone, const char *name,
                                uint32_t color);

/** Closes the zone and stages it for publication (see shk_lens_flush()); call it on the thread
 * that began the zone (the depth and the thread name are that thread's). Returns SHK_OK (staged,
 * or a failed begin), SHK_EBUSY (a publication made by this call dropped staged zones, counted;
 * or no memory for the thread's stage, this zone dropped and counted) or SHK_EINVAL (NULL
 * zone). */
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

/** Sends a log message formatted printf-style; longer than 8176 bytes is cut.
 * Returns as shk_lens_frame(); SHK_EINVAL also for a NULL format or a formatting error. */
SHK_API int shk_lens_log(shk_lens *lens, uint32_t color, const char *format, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/** Counters of this handle and of the segment, after publishing the calling thread's staged
 * zones (as shk_lens_flush(); other threads' staged zones are not counted yet). Returns SHK_OK
 * or SHK_EINVAL. Thread-safe. */
SHK_API int shk_lens_stats_get(const shk_lens *lens, shk_lens_stats *out);

/* ---- reader ----------------------------------------------------------------------------- */

/** A reader handle: one thread at a time. */
typedef struct shk_lens_reader shk_lens_reader;

/** Options of shk_lens_reader_open(). Fill with shk_lens_reader_options_init() first, then
 * change fields. */
typedef struct shk_lens_reader_options {
  uint32_t struct_size;     /**< sizeof(shk_lens_reader_options) */
  uint32_t max_strings;     /**< distinct string keys kept; default 65536 */
  uint64_t lock_timeout_ns; /**< longest wait for a lock held by a live process; default 100 ms */
  uint64_t idle_spin_ns;    /**< poll: keep polling without sleeping this long after the last
                               event (the producer then rarely meets a full payload); 10 ms */
  uint64_t idle_sleep_ns;   /**< poll: then sleep this long between looks; default 1 ms */
  uint64_t batch_ns;        /**< poll: a payload less than half full is left to fill for up to
                               this long, so the reader takes the producer's lock once per many
                               entries instead of once per entry; default 1 ms, 0 = take at once */
} shk_lens_reader_options;

/** Fills *options with the defaults (struct_size set). Accepts NULL (does nothing). */
SHK_API void shk_lens_reader_options_init(shk_lens_reader_options *options);

/** One event, strings resolved. name and thread stay valid until the reader is closed; message
 * until the reader next takes payloads out (the next drain, poll, or next() that finds nothing
 * pending). */
typedef struct shk_lens_event {
  shk_lens_kind kind;   /**< which of the fields below are set */
  uint32_t color;       /**< zone, plot, log: 0x00RRGGBB; 0 for the others */
  double time;          /**< frame and zone: end; the others: when */
  uint64_t duration_ns; /**< frame, zone */
  uint64_t number;      /**< frame */
  uint64_t uid;         /**< zone */
  uint32_t depth;       /**< zone */
  const char *name;     /**< zone, plot ("<unknown string>" when never sent with contents) */
  const char *thread;   /**< zone */
  uint64_t name_key;    /**< zone, plot: the key of name */
  uint64_t thread_key;  /**< zone: the key of thread */
  double value;         /**< plot */
  uint64_t addr;        /**< heap */
  uint64_t size;        /**< heap */
  bool is_free;         /**< heap */
  const char *message;  /**< log: NUL-terminated copy; may also hold NULs inside */
  uint32_t length;      /**< log: message bytes */
} shk_lens_event;

/** Receives one event during shk_lens_reader_drain() or shk_lens_reader_poll(), on the
 * calling thread; `event` is valid during the call only. */
typedef void (*shk_lens_event_fn)(const shk_lens_event *event, void *user);

/** Attaches to the lens segment `name` and validates it: magic, major version, sizeof_usize,
 * segment size, extension block. Only one reader may be attached at a time.
 * Returns SHK_OK, SHK_EINVAL, SHK_ENAME, SHK_ENOENT, SHK_EFORMAT, SHK_EVERSION, SHK_EBUSY
 * (another live reader, or a creator that never finished), SHK_EACCES, SHK_ENOMEM, SHK_EOS. */
SHK_API int shk_lens_reader_open(const char *name, const shk_lens_reader_options *options,
                                 shk_lens_reader **out);

/** Detaches and frees. Accepts NULL. */
SHK_API void shk_lens_reader_close(shk_lens_reader *reader);

/** Takes everything out of every payload (each under its lock), validates it and calls
 * fn(event, user) for each valid event, in payload order (frames, zones, heap, plots, logs).
 * *count (may be NULL) gets the number delivered. Invalid entries are counted and skipped.
 * Events that shk_lens_reader_next() has not handed out yet are delivered first. Returns SHK_OK
 * or SHK_EINVAL (NULL reader). fn may be NULL: events then wait for shk_lens_reader_next()
 * (and *count tells how many wait). */
SHK_API int shk_lens_reader_drain(shk_lens_reader *reader, shk_lens_event_fn fn, void *user,
                                  size_t *count);

/** Drains (leaving a payload less than half full to fill for up to batch_ns); when nothing came,
 * keeps looking per the idle policy until events come or timeout_ns passes. Returns SHK_OK (events delivered, *count > 0), SHK_ETIMEDOUT or SHK_EINVAL. */
SHK_API int shk_lens_reader_poll(shk_lens_reader *reader, uint64_t timeout_ns,
                                 shk_lens_event_fn fn, void *user, size_t *count);

/** Iterator form: the next pending event, draining the segment when none is pending.
 * Returns SHK_OK, SHK_ENOENT (nothing now) or SHK_EINVAL. */
SHK_API int shk_lens_reader_next(shk_lens_reader *reader, shk_lens_event *event);

/** Whether the producers are gone (none open, or the last one's process ended), every payload
 * is empty and no event waits for shk_lens_reader_next(): nothing more will come. True for a
 * NULL reader. */
SHK_API bool shk_lens_reader_finished(shk_lens_reader *reader);

/** Counters of this reader and of the segment. Returns SHK_OK or SHK_EINVAL. */
SHK_API int shk_lens_reader_stats(const shk_lens_reader *reader, shk_lens_stats *out);

/** The name of a kind ("frame", "zone", "heap", "plot", "log"; "?" otherwise). Static. */
SHK_API const char *shk_lens_kind_name(int kind);

#ifdef __cplusplus
}
#endif

#endif
