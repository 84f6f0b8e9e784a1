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
static inline shk_lens_wire_ring *shk__lens_ring(void *mem, const shk__lens_geometry *g,
                                                 uint32_t i) {
  return (shk_lens_wire_ring *)(void *)((unsigned char *)mem + g->ring_offset +
                                        (uint64_t)i * g->ring_stride);
}
static inline shk_lens_wire_record *shk__lens_records(shk_lens_wire_ring *ring) {
  return (shk_lens_wire_record *)(void *)((unsigned char *)ring + SHK_LENS_RING_HEADER_SIZE);
}
/* Zeroes *out and fills its segment counters from every claimed ring. */
void shk__lens_segment_stats(void *mem, const shk__lens_geometry *g, shk_lens_stats *out);
/* Whether process `pid` is running. */
bool shk__lens_pid_alive(uint32_t pid);

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
