/* What the lens files share: atomic access to the wire layout, the owner lock, header checks,
 * and the two string maps (producer: keys already sent; reader: key -> contents). */
#ifndef SHMKIT_LENS_INTERNAL_H
#define SHMKIT_LENS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

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

/* How long a waiter spins on shared memory before it yields the CPU: the other side, when it runs
 * on another CPU, answers within a few microseconds, while a yield can cost a whole time slice. */
#define SHK__LENS_SPIN_NS 20000u

/* ---- the owner lock (lens_lock.c) ---- */

/* Result of a lock attempt. */
typedef enum shk__lens_lock_result {
  SHK__LENS_LOCKED = 0,    /* taken the normal way */
  SHK__LENS_RECOVERED = 1, /* taken over from a dead owner: the data it guards is suspect */
  SHK__LENS_TIMEOUT = 2    /* a live process held it for the whole timeout */
} shk__lens_lock_result;

/* Takes the lock for process `me` (the caller's pid, cached by the caller: getpid() is a system
 * call): spins briefly, then yields; checks whether the owner's process
 * still exists after 1 ms and every 10 ms after that, and takes over from a dead owner.
 * timeout_ns 0 makes exactly one attempt (plus a liveness check when held). */
shk__lens_lock_result shk__lens_lock(shk_lens_lock *lock, uint32_t me, uint64_t timeout_ns);
/* Releases a lock taken by this process. */
void shk__lens_unlock(shk_lens_lock *lock);

/* ---- the producer's clock (lens_clock.c) ---- */

/* Calibrates once per process (about 10 ms, the first time); later calls return at once. */
void shk__lens_clock_init(void);
/* Nanoseconds on the OS monotonic clock's scale (shk__os_now_ns), read cheaply. */
uint64_t shk__lens_now_ns(void);

/* ---- header (lens_layout.c) ---- */

/* Writes a fresh header, extension and time origin into a zero-filled segment, with creator_pid
 * (0: none) already counted as its one producer; magic last. */
void shk__lens_layout_init(shk_lens_segment *seg, uint32_t creator_pid);
/* Checks the fixed header of `size` readable bytes at `mem`: magic (0 -> SHK_EBUSY), major
 * version, sizeof_usize, size, extension block. Reads every field once, through atomics. */
int shk__lens_layout_check(const void *mem, size_t size);
/* Zeroes *out and fills its segment counters and lock recoveries from a checked segment. */
void shk__lens_segment_stats(const shk_lens_segment *s, shk_lens_stats *out);
/* The process id in a lock or pid field as the OS layer takes it. */
bool shk__lens_pid_alive(uint32_t pid);

/* ---- producer's set of keys already sent (lens_strings.c) ---- */

typedef struct shk__lens_sent_set {
  uint64_t *keys; /* open addressing; 0 = empty slot */
  size_t cap;     /* power of two, or 0 */
  size_t count;
  uint32_t generation; /* the reader generation the set belongs to */
} shk__lens_sent_set;

/* Whether key was already sent. */
bool shk__lens_sent_has(const shk__lens_sent_set *set, uint64_t key);
/* Records key as sent; false when memory ran out (the key is then simply sent again later). */
bool shk__lens_sent_add(shk__lens_sent_set *set, uint64_t key);
void shk__lens_sent_clear(shk__lens_sent_set *set);
void shk__lens_sent_free(shk__lens_sent_set *set);

/* ---- reader's map from key to contents (lens_strings.c) ---- */

typedef struct shk__lens_string_entry {
  uint64_t key;
  char *text; /* NUL-terminated, owned; placeholder text when !known */
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

/* Stores contents for key (replacing a placeholder or changed text). Returns the stored text,
 * or the static placeholder when the map is full or memory ran out. */
const char *shk__lens_strings_put(shk__lens_string_map *map, uint64_t key, const uint8_t *bytes,
                                  size_t size);
/* The text for key, or a placeholder (recorded, counted once). Never NULL. */
const char *shk__lens_strings_get(shk__lens_string_map *map, uint64_t key);
void shk__lens_strings_free(shk__lens_string_map *map);

/* ---- reader core on memory (lens_reader.c), for the tool's tests and the fuzzer ---- */

/* Attaches a reader to `size` bytes at `mem` (not a named segment; not registered as the
 * segment's reader). The memory must stay mapped and writable until the reader is closed. */
int shk__lens_reader_attach_memory(void *mem, size_t size, const shk_lens_reader_options *options,
                                   shk_lens_reader **out);

#endif
