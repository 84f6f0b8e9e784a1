/* The library's process-wide state: the one-time set-ups, every lock that lives as long as the
 * process (in the order written down in internal.h), and holding them all across fork(). */
#include "internal.h"
#include "buf_internal.h"
#include "debug.h"

/* ---- one-time set-ups ---- */

/* Every set-up runs under this gate, the first lock of the order: a fork waits until no set-up
 * is half done (a child would wait for it forever), and none starts until the fork is over. A
 * spin lock because it needs no set-up of its own; it is taken only on a thread's first use of
 * each part. Nested set-ups (one set-up reaching another) take it once, at the outermost. */
static atomic_int once_gate;
static SHK__THREAD_LOCAL unsigned once_depth;

static void gate_take(void) {
  while (atomic_exchange_explicit(&once_gate, 1, memory_order_acquire) != 0) shk__os_yield();
}

static void gate_give(void) { atomic_store_explicit(&once_gate, 0, memory_order_release); }

/* The gate taken and given at the outermost set-up, followed under SHK_DEBUG=lock (a set-up
 * started while this thread holds a later lock breaks the order). */
static void gate_enter(const void *site) {
  if (SHK__UNLIKELY(shk__debug_on(SHK__DEBUG_LOCK))) shk__lock_debug_take(SHK__LOCK_ORDER_GATE, site);
  gate_take();
}

static void gate_leave(const void *site) {
  if (SHK__UNLIKELY(shk__debug_on(SHK__DEBUG_LOCK)) &&
      !shk__lock_debug_give(SHK__LOCK_ORDER_GATE, site))
    return;
  gate_give();
}

void shk__once_run(shk__once *once, void (*init)(void)) {
  if (atomic_load_explicit(&once->state, memory_order_acquire) == 2) return;
  if (once_depth++ == 0) gate_enter(SHK__CALLER());
  /* Under the gate no other thread is inside a set-up: 1 here would be this thread's own set-up
   * reaching itself again, a bug that must not hang. */
  if (atomic_load_explicit(&once->state, memory_order_relaxed) == 0) {
    atomic_store_explicit(&once->state, 1, memory_order_relaxed);
    init();
    atomic_store_explicit(&once->state, 2, memory_order_release);
  }
  if (--once_depth == 0) gate_leave(SHK__CALLER());
}

/* ---- the declared locks ---- */

static shk__once state_once;
static shk__os_mutex mutexes[SHK__LOCK_MUTEX_COUNT];

/* Locks that units add at run time (shk__fork_guard): leaves, taken after every declared one. */
typedef struct guarded_lock {
  void (*lock)(void);
  void (*unlock)(void);
} guarded_lock;
static guarded_lock extras[SHK__FORK_GUARD_MAX];
static atomic_size_t extra_count;

static const char *const mutex_names[SHK__LOCK_MUTEX_COUNT] = {
    [SHK__LOCK_SHM_REGISTRY] = "shm registry",
    [SHK__LOCK_WATCH_BUFFERS] = "watch buffers",
    [SHK__LOCK_WATCH_TABLE] = "watch table",
    [SHK__LOCK_BUF_ALLOCATORS] = "buf allocator registry",
    [SHK__LOCK_BUF_HOOK] = "buf heap hook",
    [SHK__LOCK_BUF_DEFERRED] = "buf deferred list",
    [SHK__LOCK_BUF_THREADS] = "buf thread list",
    [SHK__LOCK_LENS_THREADS] = "lens thread rings",
};

/* The whole order as one numbering: the gate, the mutexes, the range index, then the extras. */
#define FIRST_MUTEX SHK__LOCK_ORDER_MUTEX(0)
#define RANGES SHK__LOCK_ORDER_RANGES
#define FIRST_EXTRA (RANGES + 1u)

size_t shk__lock_count(void) {
  return FIRST_EXTRA + atomic_load_explicit(&extra_count, memory_order_acquire);
}

const char *shk__lock_name(size_t i) {
  if (i == 0) return "one-time set-up gate";
  if (i < RANGES) return mutex_names[i - FIRST_MUTEX];
  if (i == RANGES) return "buf range index";
  return i < shk__lock_count() ? "run-time extra" : NULL;
}

void shk__lock_hold(size_t i) {
  shk__process_state_ready();
  if (i == 0) gate_take();
  else if (i < RANGES) shk__os_mutex_lock(&mutexes[i - FIRST_MUTEX]);
  else if (i == RANGES) shk__buf_ranges_hold();
  else if (i < shk__lock_count()) extras[i - FIRST_EXTRA].lock();
}

void shk__lock_release(size_t i) {
  if (i == 0) gate_give();
  else if (i < RANGES) shk__os_mutex_unlock(&mutexes[i - FIRST_MUTEX]);
  else if (i == RANGES) shk__buf_ranges_release();
  else if (i < shk__lock_count()) extras[i - FIRST_EXTRA].unlock();
}

/* The gate is held across the whole fork, and shk__fork_guard() adds under it, so the list the
 * handlers walk before the fork is the one they walk after it. A fork from inside a set-up (a
 * set-up's own code forking) would wait for itself: set-ups never fork. */
static size_t held_at_fork;

static void before_fork(void) {
  /* A lock the forking thread holds would be waited for below forever. */
  if (SHK__UNLIKELY(shk__debug_on(SHK__DEBUG_LOCK))) shk__lock_debug_fork();
  gate_take();
  size_t n = shk__lock_count();
  for (size_t i = 1; i < n; i++) shk__lock_hold(i);
  held_at_fork = n;
}

static void after_fork(void) {
  for (size_t i = held_at_fork; i-- > 1;) shk__lock_release(i);
  gate_give();
}

static void state_init(void) {
  for (size_t i = 0; i < SHK__LOCK_MUTEX_COUNT; i++) shk__os_mutex_init(&mutexes[i]);
  /* The capabilities are filled now, so that no later first use (under some lock) has to. */
  (void)shk__os_caps_get();
  shk__os_at_fork(before_fork, after_fork, after_fork);
}

void shk__process_state_ready(void) { shk__once_run(&state_once, state_init); }

void shk__lock(shk__lock_id id) {
  shk__process_state_ready();
  if (SHK__UNLIKELY(shk__debug_on(SHK__DEBUG_LOCK)))
    shk__lock_debug_take(SHK__LOCK_ORDER_MUTEX(id), SHK__CALLER());
  shk__os_mutex_lock(&mutexes[id]);
}

void shk__unlock(shk__lock_id id) {
  /* Under SHK_DEBUG=lock a give by a thread that does not hold the mutex is reported and not
   * done (unlocking a mutex another thread holds would break its exclusion). */
  if (SHK__UNLIKELY(shk__debug_on(SHK__DEBUG_LOCK)) &&
      !shk__lock_debug_give(SHK__LOCK_ORDER_MUTEX(id), SHK__CALLER()))
    return;
  shk__os_mutex_unlock(&mutexes[id]);
}

bool shk__fork_guard(void (*lock)(void), void (*unlock)(void)) {
  shk__process_state_ready();
  /* Under the gate: a fork in progress holds it, so the list cannot change under its handlers. */
  if (once_depth == 0) gate_enter(SHK__CALLER());
  size_t n = atomic_load_explicit(&extra_count, memory_order_relaxed);
  bool added = n < SHK__FORK_GUARD_MAX;
  if (added) {
    extras[n].lock = lock;
    extras[n].unlock = unlock;
    atomic_store_explicit(&extra_count, n + 1, memory_order_release);
  }
  if (once_depth == 0) gate_leave(SHK__CALLER());
  return added;
}
