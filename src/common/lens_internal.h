/* What the lens files share: atomic access to the wire layout, the clock, header checks, ring
 * addressing, and the reader's string map (scope + key -> contents). */
#ifndef SHMKIT_LENS_INTERNAL_H
#define SHMKIT_LENS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"
#include "shmkit/lens_wire.h"

_Static_assert(SHK_LENS_KINDS == SHK_LENS_KIND_COUNT, "kinds");
_Static_assert(SHK_LENS_VERSION == SHK_LENS_PROTOCOL_VERSION, "version");

/* The wire structs hold plain integers so that the public header is C++- and language-neutral;
 * the library accesses the shared ones through atomic views of the same size and alignment. */
_Static_assert(sizeof(_Atomic uint32_t) == 4 && _Alignof(_Atomic uint32_t) == 4, "atomic u32");
_Static_assert(sizeof(_Atomic uint64_t) == 8 && _Alignof(_Atomic uint64_t) <= 8, "atomic u64");
#define SHK__A32(p) ((_Atomic uint32_t *)(void *)(p))
#define SHK__A64(p) ((_Atomic uint64_t *)(void *)(p))

static inline uint32_t shk__lens_load32(const uint32_t *p) {
  return atomic_load_explicit(SHK__A32((uint32_t *)p), memory_order_acquire);
}
static inline uint64_t shk__lens_load64(const uint64_t *p) {
  return atomic_load_explicit(SHK__A64((uint64_t *)p), memory_order_acquire);
}

/* A field of a wire struct of `type` at `mem`, loaded as the protocol says (A: acquire), for
 * memory that may be hostile or not yet aligned to the struct: through its offset only. */
#define SHK__LENS_FIELD_AT(type, mem, field) \
  ((const void *)((const unsigned char *)(mem) + offsetof(type, field)))
#define SHK__LENS_FIELD32(type, mem, field) \
  shk__lens_load32((const uint32_t *)SHK__LENS_FIELD_AT(type, mem, field))
#define SHK__LENS_FIELD64(type, mem, field) \
  shk__lens_load64((const uint64_t *)SHK__LENS_FIELD_AT(type, mem, field))

/* In a check that explains itself: fills reason (when given) and returns code. */
#define SHK__LENS_REFUSE(code, ...)                                                            \
  do {                                                                                         \
    if (reason) snprintf(reason, reason_size, __VA_ARGS__);                                    \
    return (code);                                                                             \
  } while (0)
static inline void shk__lens_store32(uint32_t *p, uint32_t v) {
  atomic_store_explicit(SHK__A32(p), v, memory_order_release);
}
static inline void shk__lens_store64(uint64_t *p, uint64_t v) {
  atomic_store_explicit(SHK__A64(p), v, memory_order_release);
}
/* A counter with one writer: a relaxed load and store, no locked instruction. */
static inline void shk__lens_bump64(uint64_t *p, uint64_t v) {
  atomic_store_explicit(SHK__A64(p), atomic_load_explicit(SHK__A64(p), memory_order_relaxed) + v,
                        memory_order_relaxed);
}
static inline void shk__lens_add64(uint64_t *p, uint64_t v) {
  atomic_fetch_add_explicit(SHK__A64(p), v, memory_order_relaxed);
}

/* A pause inside a spin loop: lets the sibling hyperthread run and saves power. */
#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <intrin.h>
static inline void shk__lens_cpu_relax(void) { _mm_pause(); }
#elif (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
static inline void shk__lens_cpu_relax(void) { __builtin_ia32_pause(); }
#else
static inline void shk__lens_cpu_relax(void) {}
#endif

/* How long a waiter spins on shared memory before it yields the CPU. */
#define SHK__LENS_SPIN_NS 20000u

/* ---- shmkit's parts on a lens (lens_instrument.c, lens_producer.c) ---- */

/* Turns off every part that reports into `lens` (it is closing). */
void shk__lens_instrument_forget(shk_lens *lens);
/* Whether this process opened the handle (a forked child has its parent's, which it must not
 * write through). */
bool shk__lens_is_ours(const shk_lens *lens);
/* Opens another handle on lens's segment with its options (a worker process's own). */
int shk__lens_reopen(const shk_lens *lens, shk_lens **out);
/* The segment name lens was opened under, and (options not NULL) the options it was opened
 * with: what a worker started as a new process needs to open its own handle. */
const char *shk__lens_name(const shk_lens *lens, shk_lens_options *options);

/* ---- the clock (lens_clock.c) ---- */

#if defined(_MSC_VER) && defined(_M_X64)
#include <intrin.h>
#define SHK__LENS_HAVE_TSC 1
static inline uint64_t shk__lens_tsc(void) { return __rdtsc(); }
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <x86intrin.h>
#define SHK__LENS_HAVE_TSC 1
static inline uint64_t shk__lens_tsc(void) { return __rdtsc(); }
#else
#define SHK__LENS_HAVE_TSC 0
static inline uint64_t shk__lens_tsc(void) { return 0; }
#endif

/* The segment's clock: the TSC when the segment says so, else the OS monotonic clock (ns). */
static inline uint64_t shk__lens_ticks(bool tsc) { return tsc ? shk__lens_tsc() : shk__os_now_ns(); }

/* The clock a new segment uses and its calibration (about 10 ms, once per process).
 * *kind: SHK_LENS_CLOCK_TSC or SHK_LENS_CLOCK_NS; origin: the clock now; ns_per_tick. */
void shk__lens_clock_choose(uint32_t *kind, uint64_t *origin, double *ns_per_tick);
/* Whether this process can read clock `kind` (a TSC segment made elsewhere, read on a machine
 * without one, is refused). */
bool shk__lens_clock_usable(uint32_t kind);

/* ---- header (lens_layout.c) ---- */

/* Bytes of a segment with `ring_count` rings of `ring_records` records. */
size_t shk__lens_layout_size(uint32_t ring_records, uint32_t ring_count);
/* Writes a fresh header into a zero-filled segment of `size` bytes, with creator (an identity, 0: none)
 * holding process slot 0; magic last. */
void shk__lens_layout_init(void *mem, size_t size, uint32_t ring_records, uint32_t ring_count,
                           uint64_t creator);
/* Checks the header of `size` readable bytes at `mem`: magic (0 -> SHK_EBUSY), version,
 * geometry. Writes what is wrong into reason (may be NULL). Reads every field once. */
int shk__lens_layout_check(const void *mem, size_t size, char *reason, size_t reason_size);
/* The geometry of a checked segment, read once (a producer could change the header later). */
typedef struct shk__lens_geometry {
  uint32_t ring_count, ring_records, ring_stride;
  uint64_t ring_offset;
  bool tsc;
  uint64_t clock_origin;
  double ns_per_tick;
} shk__lens_geometry;
void shk__lens_layout_geometry(const void *mem, shk__lens_geometry *g);
static inline shk_lens_wire_record *shk__lens_records(shk_lens_wire_ring *ring) {
  return (shk_lens_wire_record *)(void *)((unsigned char *)ring + SHK_LENS_RING_HEADER_SIZE);
}
/* Whether process `pid` is running. */
bool shk__lens_pid_alive(uint32_t pid);

/* ---- the ring space: the main segment and its extensions (lens_space.c, lens_grow.c) ---- */

/* One mapped segment of a lens: the main one (part 0) or extension `index` (parts 1..). */
typedef struct shk__lens_part {
  void *mem;
  shk_shm *shm;     /* the extension's handle; NULL for the main segment (its owner keeps it) */
  size_t size;      /* bytes mapped */
  uint64_t ring_offset;
  uint32_t first;   /* the global index of its ring 0 */
  uint32_t count;   /* its rings */
  uint32_t *used;   /* its rings_used word (only grows; read with acquire, never trusted) */
  bool shrunk;      /* smaller than mapped now: touched no more */
} shk__lens_part;

/* Every ring of a lens, numbered globally: the main segment's first, then each extension's. One
 * owner uses it at a time (a producer handle under its handles_mutex, a reader on its thread). */
typedef struct shk__lens_space {
  shk__lens_part part[1 + SHK_LENS_EXT_MAX];
  uint32_t parts;   /* mapped: 1 + the extensions followed */
  uint32_t total;   /* rings of the mapped parts */
  uint32_t ring_records, ring_stride;
  uint64_t creation; /* the main header's, read once (0: a 2.2 segment, which never grows) */
  char name[SHK_SHM_NAME_MAX + 1]; /* the lens name; "" when unnamed (no extension followed) */
  bool writable;
  bool stopped;      /* an extension was refused: none after it is followed */
  char problem[384]; /* what is wrong with the extensions, in words; "" when nothing */
} shk__lens_space;

/* Part 0 = the checked main segment at mem (size bytes mapped), geometry g. name may be NULL. */
void shk__lens_space_init(shk__lens_space *s, void *mem, size_t size, const shk__lens_geometry *g,
                          const char *name, bool writable);
/* Maps the extensions published since the last call (each checked as hostile input); a refused
 * one sets problem and stops the following. Returns the number of parts added. */
uint32_t shk__lens_space_follow(shk__lens_space *s);
/* Adds the checked extension mapped by shm (the next one) as a part; the space owns shm now. */
void shk__lens_space_add(shk__lens_space *s, shk_shm *shm);
/* Whether the main header publishes an extension that follow() would still map. */
bool shk__lens_space_behind(const shk__lens_space *s);
/* Unmaps the extensions (the main segment stays its owner's). */
void shk__lens_space_close(shk__lens_space *s);
/* Marks each extension that became smaller than its mapping (POSIX ftruncate) as shrunk. */
void shk__lens_space_check_sizes(shk__lens_space *s);
/* One past the highest global index of a ring ever claimed, over the mapped parts. */
uint32_t shk__lens_space_span(const shk__lens_space *s);
/* Ring number i (global) of the mapped parts, or NULL past them or when its part shrank: the one
 * way every walk over "all rings" reaches a ring. *part (may be NULL) gets its part. */
shk_lens_wire_ring *shk__lens_space_slot(const shk__lens_space *s, uint32_t i,
                                         const shk__lens_part **part);
/* shk__lens_space_slot(), and NULL for a ring never claimed (at or past its part's rings_used). */
shk_lens_wire_ring *shk__lens_space_ring(const shk__lens_space *s, uint32_t i,
                                         const shk__lens_part **part);
/* Zeroes *out and fills its segment counters from every claimed ring of every mapped part. */
void shk__lens_space_stats(const shk__lens_space *s, shk_lens_stats *out);
/* The rings of extension k of a lens whose main segment has main_count: main_count << (k-1),
 * cut to SHK_LENS_RINGS_MAX rings in all; 0 when k is past the limit. */
uint32_t shk__lens_ext_rings(uint32_t main_count, uint32_t k);
/* The name of extension k (1..SHK_LENS_EXT_MAX) of the lens `name` (docs/lens-protocol.md). */
void shk__lens_ext_name(const char *name, uint32_t k, char out[SHK_SHM_NAME_MAX + 1]);
/* Checks extension k's header at mem (size bytes) against the space: SHK_OK, or SHK_EFORMAT (and
 * SHK_EBUSY for magic 0) with what is wrong in reason. */
int shk__lens_ext_check(const shk__lens_space *s, uint32_t k, const void *mem, size_t size,
                        char *reason, size_t reason_size);
/* Removes the lens name `name` and the names of its extensions (1 .. ext_count, and one more: a
 * creator may have died before publishing it). */
void shk__lens_space_unlink(const char *name, uint32_t ext_count);
/* Producers: makes the next extension (or waits for the producer making it). SHK_OK when an
 * extension beyond the ones mapped is published now (follow() maps it); SHK_ELIMIT at the limit
 * or for a 2.2 segment; SHK_ETIMEDOUT, or a segment error. identity: the calling process's. */
int shk__lens_space_grow(shk__lens_space *s, uint64_t identity);
/* Tests only (internal library): called by the producer creating extension k, after the segment
 * exists and before its header is written. */
extern void (*shk__lens_grow_hook)(uint32_t k);

/* ---- process identity (lens_identity.c): pid + start stamp, as in slots and ring claims ---- */

static inline uint64_t shk__lens_identity(uint32_t pid, uint32_t stamp) {
  return (uint64_t)stamp << 32 | pid;
}
static inline uint32_t shk__lens_identity_pid(uint64_t id) { return (uint32_t)id; }
static inline uint32_t shk__lens_identity_stamp(uint64_t id) { return (uint32_t)(id >> 32); }
/* The start stamp of process `pid` (a fold of its start time, never 0), or 0 when the OS does not
 * say or the process is gone. */
uint32_t shk__lens_stamp_of(uint32_t pid);
/* Whether the process named by identity is the one running now under its pid: false when the pid
 * is free or was given to a process that started at another time. A stamp of 0 checks the pid. */
bool shk__lens_identity_alive(uint64_t identity);
/* A producer slot or ring claim word, read or swapped as one 64-bit word. */
#define SHK__LENS_SLOT(h, i) SHK__A64(&(h)->processes[i])
/* Live and dead producer handles in the process table; *some_pid gets a live one (or 0). */
void shk__lens_count_producers(const shk_lens_wire_header *h, uint32_t *live, uint32_t *dead,
                               uint32_t *some_pid);

/* ---- reader's map from (scope, key) to contents (lens_strings.c) ---- */

typedef struct shk__lens_string_entry {
  uint64_t key;
  uint32_t scope; /* the producer's pid: keys are addresses in its address space */
  char *text;     /* NUL-terminated, owned; placeholder text when !known */
  bool known;
  bool used; /* slot taken */
} shk__lens_string_entry;

typedef struct shk__lens_string_map {
  shk__lens_string_entry *slots;
  size_t cap;
  size_t count;
  size_t limit;       /* most keys kept */
  char **retired;     /* replaced texts, kept so event pointers stay valid until close */
  size_t retired_count, retired_cap;
  uint64_t known_count, unknown_count;
} shk__lens_string_map;

#define SHK__LENS_UNKNOWN_STRING "<unknown string>"

/* Stores contents for (scope, key) (replacing a placeholder or changed text). Returns the stored
 * text, or the static placeholder when the map is full or memory ran out. */
const char *shk__lens_strings_put(shk__lens_string_map *map, uint32_t scope, uint64_t key,
                                  const uint8_t *bytes, size_t size);
/* The text for (scope, key), or a placeholder (recorded, counted once). Never NULL. *known (may be
 * NULL) says whether it is the real contents. */
const char *shk__lens_strings_get(shk__lens_string_map *map, uint32_t scope, uint64_t key,
                                  bool *known);
/* The real contents, or NULL; records nothing. */
const char *shk__lens_strings_find(const shk__lens_string_map *map, uint32_t scope, uint64_t key);
void shk__lens_strings_free(shk__lens_string_map *map);

/* ---- reader core on memory (lens_reader.c), for the tool's tests and the fuzzer ---- */

/* Attaches a reader to `size` bytes at `mem` (not a named segment; not registered as the
 * segment's reader). The memory must stay mapped and writable until the reader is closed. */
int shk__lens_reader_attach_memory(void *mem, size_t size, const shk_lens_reader_options *options,
                                   shk_lens_reader **out);

#endif
