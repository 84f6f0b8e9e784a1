/* What the files of src/common/ share: small helpers, the run-once primitive, error recording. */
#ifndef SHMKIT_INTERNAL_H
#define SHMKIT_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#ifdef _MSC_VER
#include <intrin.h>
#endif

#include "shmkit.h"
#include "os.h"
#include "os_faults.h"

/* The library's own heap allocations. In the internal test library a test can make them fail
 * (SHK__FAULT_ALLOC, src/os_faults.h); everywhere else they are the bare calls. */
#define shk__malloc(size) (SHK__FAULT(SHK__FAULT_ALLOC) ? NULL : malloc(size))
#define shk__calloc(count, size) (SHK__FAULT(SHK__FAULT_ALLOC) ? NULL : calloc(count, size))
#define shk__realloc(ptr, size) (SHK__FAULT(SHK__FAULT_ALLOC) ? NULL : realloc(ptr, size))

#define SHK__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SHK__MIN(a, b) ((a) < (b) ? (a) : (b))
#define SHK__MAX(a, b) ((a) > (b) ? (a) : (b))

/* The alignment malloc memory has for any object: _Alignof(max_align_t). MSVC's <stddef.h>
 * declares no max_align_t in C; double is its strictest fundamental type (as clang-cl's). */
#if defined(_MSC_VER) && !defined(__clang__)
#define SHK__MAX_ALIGN _Alignof(double)
#else
#define SHK__MAX_ALIGN _Alignof(max_align_t)
#endif

/* Thread-local storage with the cheapest access the object format offers: initial-exec on ELF
 * (one load from the thread pointer, no __tls_get_addr call), the compiler's default elsewhere.
 * For small variables only: initial-exec takes the static TLS space a dlopen can still get. */
#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define SHK__THREAD_LOCAL _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define SHK__THREAD_LOCAL _Thread_local
#endif

/* Keeps a rarely taken path out of its caller, so the caller's common path stays short (no
 * registers saved for code it does not run). */
#if defined(__GNUC__) || defined(__clang__)
#define SHK__NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define SHK__NOINLINE __declspec(noinline)
#else
#define SHK__NOINLINE
#endif

/* Inlined in every caller, also where the compiler would rather call it (a short way called
 * from its long way too, written to save no register where it is inlined). */
#if defined(__GNUC__) || defined(__clang__)
#define SHK__ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define SHK__ALWAYS_INLINE inline
#endif

/* A function seldom called: placed apart from the hot code, and a call of it taken as unlikely,
 * so that the short way that calls it stays in one straight run (buf_ranges_short.h: 16.8 ->
 * 16.2 ns of a consume+release). The compiler makes a cold function small, not fast, and also
 * what only it calls: SHK__HOT on such a callee keeps it fast. */
#if defined(__GNUC__) || defined(__clang__)
#define SHK__COLD __attribute__((cold))
#define SHK__HOT __attribute__((hot))
#else
#define SHK__COLD
#define SHK__HOT
#endif

/* A function whose short way is measured against a raw mechanism of a few nanoseconds (buf's
 * create, consume, release): started at a 64-byte line, so that where the linker happens to put
 * it does not move its figure (create+release of 64 B was 10.1 or 11.3 ns with the same code,
 * as unrelated functions around it grew). */
#if defined(__GNUC__) || defined(__clang__)
#define SHK__LINE_ALIGNED __attribute__((aligned(64)))
#else
#define SHK__LINE_ALIGNED
#endif

/* Asks for the cache line holding p to be loaded, without waiting for it (a hint: nothing
 * where the compiler has no such builtin). */
#if defined(__GNUC__) || defined(__clang__)
#define SHK__PREFETCH(p) __builtin_prefetch(p)
#else
#define SHK__PREFETCH(p) ((void)(p))
#endif

/* A function whose reads race with other threads' writes by design; ThreadSanitizer is told so
 * (the watcher's reads of watched memory, buf's walk over parked objects). */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHK__RACY_READ __attribute__((no_sanitize("thread")))
#endif
#endif
#if !defined(SHK__RACY_READ) && defined(__SANITIZE_THREAD__)
#define SHK__RACY_READ __attribute__((no_sanitize_thread))
#endif
#ifndef SHK__RACY_READ
#define SHK__RACY_READ
#endif

/* A wait of timeout_ns in whole milliseconds for a system call that counts in them: rounded up
 * (a short wait never becomes a busy one), at most `cap` (the call's "forever" stays out of
 * reach); UINT64_MAX gives `forever`. Both backends use it. */
static inline uint32_t shk__ms_from_ns_capped(uint64_t ns, uint32_t cap, uint32_t forever) {
  if (ns == UINT64_MAX) return forever;
  uint64_t ms = ns / 1000000u + (ns % 1000000u != 0);
  return ms > cap ? cap : (uint32_t)ms;
}
#define shk__ms_from_ns(ns, cap) shk__ms_from_ns_capped((ns), (cap), 0xFFFFFFFFu)

/* The rule for a size the system refused while making a segment or mapping: whatever the
 * system called it (no memory, invalid argument, another failure), the caller learns SHK_ESIZE;
 * the raw code stays recorded. Other codes (SHK_EACCES, SHK_EEXIST, ...) pass unchanged. */
static inline int shk__error_as_size(int code) {
  return code == SHK_ENOMEM || code == SHK_EINVAL || code == SHK_EOS ? SHK_ESIZE : code;
}

/* Records the raw OS error behind the SHK_E* code about to be returned (thread-local), and
 * returns that code, so a backend can write `return shk__error_record_os(code, errno)`. */
int shk__error_record_os(int code, int raw);

/* Forgets the recorded raw OS error (this thread): entry points that promise shk_last_os_error()
 * describes nothing older than themselves call it first. */
void shk__error_clear_os(void);

/* ---- process-wide state (process_state.c) ---------------------------------------------
 *
 * One module owns what lives as long as the process: the one-time set-ups, the locks, and
 * holding them across fork(). A forked child has only the forking thread, so a lock another
 * thread held at the fork would stay held in the child for good; before a fork every lock below
 * is taken, in this order, and released after it in both processes (pthread_atfork through
 * shk__os_at_fork; nothing on Windows, which has no fork).
 *
 * THE LOCK ORDER. A thread holding one of these may take only locks listed after it:
 *   0  one-time set-up gate  process_state.c: every shk__once_run set-up runs under it, so a
 *                            fork never catches one half done. A set-up may take any lock
 *                            below; no set-up may start while its thread holds one of them
 *                            (all set-ups a locked section could reach run with the state's own
 *                            set-up: the mutexes, the capabilities).
 *  1.. the mutexes of shk__lock_id, in the enum's order (all leaves but watch buffers):
 *      shm registry          shm.c: the open segments (shk_shm_find)
 *      watch buffers         watch_buffers.c: the watchers that follow buffers. Held while
 *                            telling them of a buffer (shk_watch_add/remove: a watcher's own
 *                            lock, then the watch table), while setting buf's observer (buf
 *                            heap hook) and while walking the live buffers (the range
 *                            index). Nothing under it creates or releases a buffer. buf calls its observer with no buf lock held,
 *                            so a thread that creates or releases a buffer takes this lock
 *                            first; a watcher's callback may create and release buffers (it
 *                            runs with no watcher lock, only the deliver lock, which nothing
 *                            under this lock takes)
 *      watch table           watch_table.c: writers of the table of protected spans (the
 *                            fault path reads it without locks)
 *      buf allocators        buf_alloc.c: the allocator registry
 *      buf heap hook         buf.c
 *      buf deferred list     buf_deferred.c
 *      buf thread list       buf_thread.c
 *      lens thread rings     lens_producer.c: each thread's list of rings, given back as the
 *                            thread ends; held while taking one lens's own handle-list lock
 *                            (per object, not process-wide)
 *   .  buf range index       buf_ranges.c: a spin lock kept there (its fast path), held through
 *                            shk__buf_ranges_hold/release
 *   .  run-time extras       shk__fork_guard(): leaves, taken last, in the order added
 * Not process-wide, hence not here: a watcher's own locks, a lens's stage list (per object),
 * a lens segment's locks (in shared memory, owned per process and broken by pid when the owner
 * is gone), the last OS error (thread-local), counters (atomics). */

/* Runs init() exactly once across all threads; later callers wait until it has finished.
 * A zero-initialised shk__once is ready to use (static storage needs no set-up). */
typedef struct shk__once {
  atomic_int state; /* 0 not started, 1 running, 2 done */
} shk__once;
void shk__once_run(shk__once *once, void (*init)(void));

typedef enum shk__lock_id {
  SHK__LOCK_SHM_REGISTRY,
  SHK__LOCK_WATCH_BUFFERS,
  SHK__LOCK_WATCH_TABLE,
  SHK__LOCK_BUF_ALLOCATORS,
  SHK__LOCK_BUF_HOOK,
  SHK__LOCK_BUF_DEFERRED,
  SHK__LOCK_BUF_THREADS,
  SHK__LOCK_LENS_THREADS,
  SHK__LOCK_MUTEX_COUNT
} shk__lock_id;

/* The order above by number: the gate, each mutex, the range index; run-time extras follow. */
#define SHK__LOCK_ORDER_GATE 0u
#define SHK__LOCK_ORDER_MUTEX(id) (1u + (unsigned)(id))
#define SHK__LOCK_ORDER_RANGES (1u + (unsigned)SHK__LOCK_MUTEX_COUNT)

/* Takes / gives a declared process-wide mutex (no set-up needed by the caller). */
void shk__lock(shk__lock_id id);
void shk__unlock(shk__lock_id id);

/* Makes sure the state is set up: the mutexes made, the fork handlers installed. For a unit
 * whose lock lives elsewhere (the range index) before its first use. */
void shk__process_state_ready(void);

/* Adds a lock held across fork() after all the declared ones (a leaf: no other lock of the
 * order is taken while holding it). At most SHK__FORK_GUARD_MAX; beyond that the lock is not
 * guarded (false). A lock that lives as long as the process belongs in the order above. */
#define SHK__FORK_GUARD_MAX 16
bool shk__fork_guard(void (*lock)(void), void (*unlock)(void));

/* The whole order by number, for tests: how many locks, the name of number i (NULL past the
 * end), and taking / giving number i as a fork would. */
size_t shk__lock_count(void);
const char *shk__lock_name(size_t i);
void shk__lock_hold(size_t i);
void shk__lock_release(size_t i);

/* ---- buffers followed by the watcher (buf.c for watch_buffers.c) ---- */

/* Told of each buffer that is created (created true) or whose memory leaves buf (false: the
 * buffer's end, or a parked object freed for good), after the heap hook, with no buf lock held.
 * A buffer created may be told again, and a removal may concern memory never told of: the
 * observer makes the answer exact by the address (info->data). */
typedef void (*shk__buf_observer_fn)(const shk_buf_info *info, bool created);
/* Sets (fn NULL: clears) the one observer slot, beside the heap hook and sharing its fast-path
 * flag: while both are clear, creation and release call nothing. */
void shk__buf_observer_set(shk__buf_observer_fn fn);
/* The buffers live now, in address order: *out malloc'd (free it), *count of them. Call after
 * setting the observer: a buffer created or ended meanwhile is then either listed or told.
 * SHK_OK or SHK_ENOMEM. */
int shk__buf_live_list(shk_buf_info **out, size_t *count);

/* Writes a fresh generated segment name, "<prefix><pid>-<n>" (shm_names.c; prefix "shkb-" for
 * buffers, one of the kinds shk_shm_list() knows). The first call in a process first removes
 * the stale generated names of this user (shk_shm_clean()). */
void shk__shm_generate_name(const char *prefix, char out[SHK_SHM_NAME_MAX + 1]);

/* shk_shm_create, _open, _find and _unlink without the SHK_DEBUG=shm report (shm.c): for the
 * library's own calls, where a failure can be an expected answer (not in a segment, no such
 * name yet) that the calling part handles or reports itself. */
int shk__shm_create(const char *name, size_t size, shk_shm **out);
int shk__shm_open(const char *name, shk_shm_access access, shk_shm **out);
int shk__shm_find(const void *ptr, size_t len, shk_shm **out, size_t *offset);
int shk__shm_unlink(const char *name);

/* The OS segment behind a handle (shm.c), for chunk tasks that hand segments to workers. */
const shk__os_segment *shk__shm_os_segment(const shk_shm *shm);

/* ---- the evolution rule of options and table structs (options.c) ---- */

/* What the library knows of one options or table struct, whose first field is a uint32_t
 * struct_size (or a legacy version number, 1 .. legacy_count). */
typedef struct shk__options_layout {
  size_t size;                /* sizeof the struct this library is built with */
  size_t min_size;            /* the smallest struct_size accepted: the first published layout */
  size_t zero_size;           /* what struct_size 0 stands for: the layout of 0.2.0 */
  const size_t *legacy_sizes; /* sizes of version numbers 1 .. legacy_count (before 0.2.0) */
  size_t legacy_count;
  const void *defaults;       /* `size` bytes: every default, struct_size = size */
} shk__options_layout;

/* The end of a field: a layout's first published size is the end of its last field then. */
#define SHK__OPTIONS_END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* Reads the caller's struct (NULL: none) into *local (l->size bytes): the defaults, then
 * min(caller's size, l->size) bytes of the caller's, struct_size set to l->size. Returns SHK_OK,
 * or SHK_EINVAL for a size that is refused or non-zero bytes past l->size (fields of a newer
 * header than this library). */
int shk__options_read(const shk__options_layout *l, const void *caller, void *local);

/* As shk__options_read(), but *out points at what to use: the caller's own struct when it has
 * exactly this library's layout, the defaults for NULL, else *local after the read (hot paths:
 * no copy in the common cases). Returns as shk__options_read(). */
int shk__options_use(const shk__options_layout *l, const void *caller, void *local,
                     const void **out);

/* Fills a caller's struct of `size` bytes (sizeof it where the caller was compiled) with zeros,
 * then min(size, l->size) bytes of defaults, and sets its struct_size to size. NULL dst:
 * nothing. */
void shk__options_init(const shk__options_layout *l, void *dst, size_t size);

/* The number of zero bits below the lowest one of n, which is not 0. */
static inline unsigned shk__trailing_zeros(uint64_t n) {
#if defined(__GNUC__) || defined(__clang__)
  return (unsigned)__builtin_ctzll(n);
#elif defined(_MSC_VER)
  unsigned long low;
  _BitScanForward64(&low, n);
  return (unsigned)low;
#else
  unsigned k = 0;
  for (; !(n & 1); n >>= 1) k++;
  return k;
#endif
}

/* Rounds n up to a multiple of `unit` (a power of two). Returns 0 on overflow. */
size_t shk__round_up(size_t n, size_t unit);

/* The number of bits needed to write n: 0 for 0, 1 for 1, 7 for 100. */
static inline unsigned shk__bit_length(uint64_t n) {
#if defined(__GNUC__) || defined(__clang__)
  return n ? 64u - (unsigned)__builtin_clzll(n) : 0u;
#elif defined(_MSC_VER)
  unsigned long top;
  return _BitScanReverse64(&top, n) ? (unsigned)top + 1u : 0u;
#else
  unsigned k = 0;
  for (; n; n >>= 1) k++;
  return k;
#endif
}

/* Whether [ptr, ptr + size) runs past the end of the address space (an end of exactly 2^N counts
 * as wrapping: no object can end there). Every public entry point that takes a pointer and a
 * size refuses such a range before touching it. */
static inline bool shk__range_wraps(const void *ptr, size_t size) {
  return size > UINTPTR_MAX - (uintptr_t)ptr;
}

/* a * b into *out; false on overflow. */
static inline int shk__mul_overflows(size_t a, size_t b, size_t *out) {
  if (a != 0 && b > SIZE_MAX / a) return 1;
  *out = a * b;
  return 0;
}

#endif
