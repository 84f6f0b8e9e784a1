/** @file
 * shmkit lens wire layout, protocol 2.3.0: what a lens segment holds, byte by byte, for readers and
 * producers written without the library (any language: docs/lens-protocol.md says the same in
 * words). Not included by shmkit.h: a program that only produces or records never needs it.
 *
 * A segment is a header (1280 bytes), then `ring_count` rings, each a 256-byte ring header and
 * `ring_records` records of 32 bytes; 2.3: when every ring is taken, producers add extension
 * segments (a 256-byte extension header, then rings laid out the same way), each named after the
 * lens (shk_lens_wire_ext_header). Each producing thread owns one ring (single producer, single
 * reader): it writes records at `head`, then publishes them with a release store of `head`; the
 * reader reads up to `head` (acquire load) and gives the space back with a release store of `tail`.
 * All integers are little-endian (the byte order of the machine; lens is a same-machine protocol).
 */
#ifndef SHMKIT_LENS_WIRE_H
#define SHMKIT_LENS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The first word of a lens segment once its creator has set it up (0 while being created). */
#define SHK_LENS_MAGIC 0x1DC45EF1u
/** major << 16 | minor << 8 | patch: 2.3.0. A reader accepts any segment whose major matches.
 * 2.1 adds, in space that 2.0 kept zero, process start stamps (the `start` of a producer slot, the
 * high half of a ring's `claim`) and the ring claim word: 2.0 segments read as before.
 * 2.2 adds argument records (SHK_LENS_ARG_RECORD): a 2.0 or 2.1 reader counts each as a malformed
 * zone and reads on, so it loses the arguments and nothing else.
 * 2.3 adds extension segments (more rings when every ring is taken), in header space that 2.2 kept
 * zero: a 2.2 reader reads the main segment's rings only (docs/lens-protocol.md, "2.2 -> 2.3"). */
#define SHK_LENS_PROTOCOL_VERSION 0x00020300u
/** What temporal-lens 0.1.5 puts in its first word: its (unversioned) layout is refused by name. */
#define SHK_LENS_PROTOCOL_015 0x00000105u
#define SHK_LENS_RECORD_SIZE 32u       /**< bytes of every record */
#define SHK_LENS_RING_HEADER_SIZE 256u /**< bytes of a ring header */
#define SHK_LENS_HEADER_SIZE 1280u     /**< bytes of the segment header; rings start here */
#define SHK_LENS_PROCESS_SLOTS 128u    /**< producer handles that may be open at once */
#define SHK_LENS_STRING_MAX 128u       /**< the most bytes of one string (zone, plot, thread name) */
#define SHK_LENS_LOG_MAX 4064u         /**< the most bytes of one log message */
#define SHK_LENS_KINDS 5u              /**< frame, zone, heap, plot, log (shk_lens_kind) */
#define SHK_LENS_ARGS_MAX 8u           /**< the most argument records before one event */
/** 2.3: the first word of an extension segment once its creator has set it up. */
#define SHK_LENS_EXT_MAGIC 0x1DC45EF2u
#define SHK_LENS_EXT_HEADER_SIZE 256u /**< bytes of an extension header; its rings start here */
#define SHK_LENS_EXT_MAX 16u          /**< the most extension segments of one lens */
#define SHK_LENS_RINGS_MAX 65536u     /**< the most rings of one lens, extensions included */

/** clock_kind: what the time fields of records count. */
#define SHK_LENS_CLOCK_TSC 1u /**< the x86 invariant time-stamp counter (rdtsc) */
#define SHK_LENS_CLOCK_NS 2u  /**< nanoseconds of the OS monotonic clock */

/** Ring states (shk_lens_wire_ring.state). */
#define SHK_LENS_RING_FREE 0u     /**< never used */
#define SHK_LENS_RING_CLAIMING 1u /**< a producer is setting it up */
#define SHK_LENS_RING_LIVE 2u     /**< owned by thread `tid` of process `pid` */
#define SHK_LENS_RING_CLOSED 3u   /**< its owner is done (or dead): drain it, then it may be reused */

/** Record types (shk_lens_wire_record.type). */
#define SHK_LENS_REC_ZONE 1u   /**< a zone: depth, color, a = begin, b = end, c = name key */
#define SHK_LENS_REC_FRAME 2u  /**< a frame: a = start, b = end, c = frame number */
#define SHK_LENS_REC_PLOT 3u   /**< a plot value: color, a = time, b = value (IEEE double), c = name key */
#define SHK_LENS_REC_HEAP 4u   /**< flags bit 0: a free; a = time, b = address, c = size */
#define SHK_LENS_REC_LOG 5u    /**< len = bytes, a = time, b = color; then ceil(len/32) data records */
#define SHK_LENS_REC_STRING 6u /**< len = bytes, a = key; then ceil(len/32) data records */
#define SHK_LENS_REC_THREAD 7u /**< the ring's thread name: len = bytes; then data records */

/** 2.2: a record of type SHK_LENS_REC_ZONE whose flags have this bit is not a zone but an argument
 * of the event whose record follows: `c` = the argument's name key, `a` = its value, flags bits 1-2
 * = the value's type (0: unsigned, 1: signed two's complement, 2: `a` is a string key, of the same
 * process, like a name key); depth, len and b are 0. Up to SHK_LENS_ARGS_MAX argument records
 * stand directly before a zone, heap or log record in the same ring and are published with it.
 * They carry type 1 so that 2.0 and 2.1 readers, which refuse a zone with flags and read on, skip
 * them one record at a time (an unknown type would make them skip the rest of the ring). */
#define SHK_LENS_ARG_RECORD 1u

/** One record: 32 bytes. Times are clock values (see clock_kind). */
typedef struct shk_lens_wire_record {
  uint8_t type;   /**< SHK_LENS_REC_* */
  uint8_t flags;  /**< heap: bit 0 set for a free; argument: see SHK_LENS_ARG_RECORD; else 0 */
  uint16_t depth; /**< zone: zones open on the thread when it began; 0 otherwise */
  uint32_t len;   /**< zone, plot: color 0x00RRGGBB; log, string, thread: bytes that follow */
  uint64_t a;     /**< see the record types */
  uint64_t b;     /**< see the record types */
  uint64_t c;     /**< see the record types */
} shk_lens_wire_record;

/** A producer handle's slot in the segment header. */
typedef struct shk_lens_wire_process {
  uint32_t pid;   /**< the process that holds this handle; 0 for a free slot */
  uint32_t start; /**< 2.1: its start stamp (0: unknown, the pid alone identifies it). The slot is
                       one 64-bit word: taken and freed by 64-bit compare-and-swap / store. */
} shk_lens_wire_process;

/** The segment header, at offset 0. */
typedef struct shk_lens_wire_header {
  uint32_t magic;             /**< SHK_LENS_MAGIC, written last (release) by the creator */
  uint32_t protocol_version;  /**< SHK_LENS_PROTOCOL_VERSION */
  uint32_t header_size;       /**< SHK_LENS_HEADER_SIZE */
  uint32_t record_size;       /**< SHK_LENS_RECORD_SIZE */
  uint64_t segment_size;      /**< bytes of the segment as created */
  uint64_t ring_offset;       /**< offset of ring 0 (= header_size) */
  uint32_t ring_count;        /**< ring slots */
  uint32_t ring_records;      /**< records per ring: a power of two, >= 64 */
  uint32_t ring_stride;       /**< bytes from one ring to the next: 256 + 32 * ring_records */
  uint32_t rings_used;        /**< rings 0 .. rings_used-1 have ever been claimed (only grows) */
  uint32_t clock_kind;        /**< SHK_LENS_CLOCK_TSC or SHK_LENS_CLOCK_NS */
  uint32_t reserved0;         /**< 0 */
  uint64_t clock_origin;      /**< the clock's value at Time 0 */
  double ns_per_tick;         /**< nanoseconds per clock unit (1.0 for SHK_LENS_CLOCK_NS) */
  uint64_t origin_ns;         /**< the OS monotonic clock (ns) at Time 0, for information */
  uint32_t reader_pid;        /**< the attached reader, 0 when none */
  uint32_t reader_generation; /**< +1 per reader attach: producers send names again */
  uint32_t process_slots;     /**< SHK_LENS_PROCESS_SLOTS */
  uint32_t reserved1;         /**< 0 */
  uint64_t no_ring_dropped[SHK_LENS_KINDS]; /**< events dropped because no ring was free, per kind */
  /* 2.3, in bytes that 2.2 kept zero (reserved2, its name kept): 0 in 2.2 segments, which then
   * never grow. */
  union {
    uint8_t reserved2[120]; /**< 2.2: reserved, 0; the bytes below from 2.3 on */
    struct {
      uint32_t ext_count;         /**< extension segments published (release store after set-up),
                                       0..16 */
      uint32_t reader_extensions; /**< extensions the attached 2.3 reader has mapped (it stores this
                                       after mapping them): a closing producer waits (up to 1 s)
                                       for it to reach ext_count before it removes any name */
      uint64_t creation;          /**< this segment's creation identity (never 0 in 2.3):
                                       extensions carry it, so that one left by an older lens of
                                       the same name is refused */
      uint64_t ext_creating;      /**< start << 32 | pid of the producer creating the next
                                       extension, 0 when none: taken by compare-and-swap (from 0,
                                       or from a dead one) */
      uint64_t reader_version;    /**< reader_generation << 32 | protocol version of the attached
                                       reader, written by a 2.3 reader before it raises
                                       reader_generation; a 2.2 reader leaves it behind the
                                       generation (see the document) */
      uint8_t reserved3[88];      /**< 0 */
    };
  };
  shk_lens_wire_process processes[SHK_LENS_PROCESS_SLOTS]; /**< open producer handles */
} shk_lens_wire_header;

/** 2.3: the header of extension segment `index` (1..SHK_LENS_EXT_MAX), at its offset 0; its rings
 * follow at ring_offset, laid out as the main segment's. Its name is derived from the lens name
 * (docs/lens-protocol.md, "Extensions"). */
typedef struct shk_lens_wire_ext_header {
  uint32_t magic;            /**< SHK_LENS_EXT_MAGIC, written last (release) by its creator */
  uint32_t protocol_version; /**< SHK_LENS_PROTOCOL_VERSION */
  uint32_t header_size;      /**< SHK_LENS_EXT_HEADER_SIZE */
  uint32_t index;            /**< which extension: 1 .. SHK_LENS_EXT_MAX */
  uint64_t segment_size;     /**< bytes of this segment as created */
  uint64_t ring_offset;      /**< offset of its ring 0 (= header_size) */
  uint32_t ring_count;       /**< rings in this segment: see the document's rule */
  uint32_t ring_records;     /**< as the main segment's */
  uint32_t ring_stride;      /**< as the main segment's */
  uint32_t rings_used;       /**< its rings 0 .. rings_used-1 have ever been claimed (only grows) */
  uint64_t creation;         /**< the main segment's `creation` */
  uint64_t creator;          /**< start << 32 | pid of the producer that made it (information) */
  uint8_t reserved[192];     /**< 0 */
} shk_lens_wire_ext_header;

/** A ring header; its records follow it. Four cache lines: owner, producer (two), reader. */
typedef struct shk_lens_wire_ring {
  /* line 0: written when the ring is claimed or closed */
  uint32_t state;        /**< SHK_LENS_RING_* */
  uint32_t epoch;        /**< +1 each time the ring is claimed */
  uint32_t pid;          /**< the owner's process */
  uint32_t acked;        /**< the reader has taken in the close of this epoch */
  uint64_t tid;          /**< the owner's thread id (as the OS numbers threads) */
  uint64_t claim;        /**< 2.1: start stamp << 32 | pid of the process that claims or owns the
                              ring; 0 when none. A producer takes it (compare-and-swap from 0, or
                              from a holder that is dead) before it moves `state` to claiming,
                              keeps it while live, and stores 0 after closing. */
  uint8_t reserved0[32]; /**< 0 */
  /* lines 1-2: written by the producer only */
  uint64_t head;                   /**< records published (release store); never decreases */
  uint64_t written[SHK_LENS_KINDS]; /**< events written into this ring, per kind, this epoch */
  uint64_t dropped[SHK_LENS_KINDS]; /**< events dropped (ring full), per kind, this epoch */
  uint8_t reserved1[40];           /**< 0 */
  /* line 3: written by the reader only */
  uint64_t tail;                   /**< records consumed (release store); tail <= head */
  uint64_t drained[SHK_LENS_KINDS]; /**< events the reader took out, per kind, this epoch */
  uint8_t reserved2[16];           /**< 0 */
} shk_lens_wire_ring;

#ifdef __cplusplus
#define SHK_LENS_ASSERT_(cond, msg) static_assert(cond, msg)
#else
#define SHK_LENS_ASSERT_(cond, msg) _Static_assert(cond, msg)
#endif
#define SHK_LENS_AT_(T, f, off) SHK_LENS_ASSERT_(offsetof(T, f) == (off), #T "." #f " offset")
#define SHK_LENS_SIZE_(T, n) SHK_LENS_ASSERT_(sizeof(T) == (n), #T " size")

SHK_LENS_SIZE_(double, 8);
SHK_LENS_SIZE_(shk_lens_wire_record, 32);
SHK_LENS_AT_(shk_lens_wire_record, type, 0);
SHK_LENS_AT_(shk_lens_wire_record, flags, 1);
SHK_LENS_AT_(shk_lens_wire_record, depth, 2);
SHK_LENS_AT_(shk_lens_wire_record, len, 4);
SHK_LENS_AT_(shk_lens_wire_record, a, 8);
SHK_LENS_AT_(shk_lens_wire_record, b, 16);
SHK_LENS_AT_(shk_lens_wire_record, c, 24);
SHK_LENS_SIZE_(shk_lens_wire_process, 8);
SHK_LENS_AT_(shk_lens_wire_process, start, 4);
SHK_LENS_SIZE_(shk_lens_wire_header, 1280);
SHK_LENS_AT_(shk_lens_wire_header, magic, 0);
SHK_LENS_AT_(shk_lens_wire_header, protocol_version, 4);
SHK_LENS_AT_(shk_lens_wire_header, header_size, 8);
SHK_LENS_AT_(shk_lens_wire_header, record_size, 12);
SHK_LENS_AT_(shk_lens_wire_header, segment_size, 16);
SHK_LENS_AT_(shk_lens_wire_header, ring_offset, 24);
SHK_LENS_AT_(shk_lens_wire_header, ring_count, 32);
SHK_LENS_AT_(shk_lens_wire_header, ring_records, 36);
SHK_LENS_AT_(shk_lens_wire_header, ring_stride, 40);
SHK_LENS_AT_(shk_lens_wire_header, rings_used, 44);
SHK_LENS_AT_(shk_lens_wire_header, clock_kind, 48);
SHK_LENS_AT_(shk_lens_wire_header, reserved0, 52);
SHK_LENS_AT_(shk_lens_wire_header, clock_origin, 56);
SHK_LENS_AT_(shk_lens_wire_header, ns_per_tick, 64);
SHK_LENS_AT_(shk_lens_wire_header, origin_ns, 72);
SHK_LENS_AT_(shk_lens_wire_header, reader_pid, 80);
SHK_LENS_AT_(shk_lens_wire_header, reader_generation, 84);
SHK_LENS_AT_(shk_lens_wire_header, process_slots, 88);
SHK_LENS_AT_(shk_lens_wire_header, reserved1, 92);
SHK_LENS_AT_(shk_lens_wire_header, no_ring_dropped, 96);
SHK_LENS_AT_(shk_lens_wire_header, ext_count, 136);
SHK_LENS_AT_(shk_lens_wire_header, reader_extensions, 140);
SHK_LENS_AT_(shk_lens_wire_header, creation, 144);
SHK_LENS_AT_(shk_lens_wire_header, ext_creating, 152);
SHK_LENS_AT_(shk_lens_wire_header, reader_version, 160);
SHK_LENS_AT_(shk_lens_wire_header, reserved3, 168);
SHK_LENS_AT_(shk_lens_wire_header, reserved2, 136);
SHK_LENS_AT_(shk_lens_wire_header, processes, 256);
SHK_LENS_SIZE_(shk_lens_wire_ext_header, 256);
SHK_LENS_AT_(shk_lens_wire_ext_header, magic, 0);
SHK_LENS_AT_(shk_lens_wire_ext_header, protocol_version, 4);
SHK_LENS_AT_(shk_lens_wire_ext_header, header_size, 8);
SHK_LENS_AT_(shk_lens_wire_ext_header, index, 12);
SHK_LENS_AT_(shk_lens_wire_ext_header, segment_size, 16);
SHK_LENS_AT_(shk_lens_wire_ext_header, ring_offset, 24);
SHK_LENS_AT_(shk_lens_wire_ext_header, ring_count, 32);
SHK_LENS_AT_(shk_lens_wire_ext_header, ring_records, 36);
SHK_LENS_AT_(shk_lens_wire_ext_header, ring_stride, 40);
SHK_LENS_AT_(shk_lens_wire_ext_header, rings_used, 44);
SHK_LENS_AT_(shk_lens_wire_ext_header, creation, 48);
SHK_LENS_AT_(shk_lens_wire_ext_header, creator, 56);
SHK_LENS_AT_(shk_lens_wire_ext_header, reserved, 64);
SHK_LENS_SIZE_(shk_lens_wire_ring, 256);
SHK_LENS_AT_(shk_lens_wire_ring, state, 0);
SHK_LENS_AT_(shk_lens_wire_ring, epoch, 4);
SHK_LENS_AT_(shk_lens_wire_ring, pid, 8);
SHK_LENS_AT_(shk_lens_wire_ring, acked, 12);
SHK_LENS_AT_(shk_lens_wire_ring, tid, 16);
SHK_LENS_AT_(shk_lens_wire_ring, claim, 24);
SHK_LENS_AT_(shk_lens_wire_ring, head, 64);
SHK_LENS_AT_(shk_lens_wire_ring, written, 72);
SHK_LENS_AT_(shk_lens_wire_ring, dropped, 112);
SHK_LENS_AT_(shk_lens_wire_ring, reserved1, 152);
SHK_LENS_AT_(shk_lens_wire_ring, tail, 192);
SHK_LENS_AT_(shk_lens_wire_ring, drained, 200);
SHK_LENS_AT_(shk_lens_wire_ring, reserved2, 240);

#ifdef __cplusplus
}
#endif

#endif
