/* The lens spin lock: the owner is a process id, so a waiter can tell a busy owner from a dead one
 * and take the lock over within a second instead of freezing (the flaw of the 0.1.5 flag). */
#include "lens_internal.h"

/* Spinning pays while the holder is on another CPU and holds the lock for tens of nanoseconds;
 * after that, yielding lets a holder that shares our CPU finish. */
enum { LENS_SPINS = 128 };
#define LENS_FIRST_CHECK_NS 1000000u   /* the first liveness check after 1 ms of waiting */
#define LENS_CHECK_EVERY_NS 10000000u  /* then every 10 ms: each check costs a system call */

static bool try_take(_Atomic uint32_t *owner, uint32_t expected, uint32_t me) {
  return atomic_compare_exchange_strong_explicit(owner, &expected, me, memory_order_acquire,
                                                 memory_order_relaxed);
}

shk__lens_lock_result shk__lens_lock(shk_lens_lock *lock, uint32_t me, uint64_t timeout_ns) {
  _Atomic uint32_t *owner = SHK__A32(&lock->owner);
  if (try_take(owner, 0, me)) return SHK__LENS_LOCKED;
  for (int i = 0; i < LENS_SPINS; i++) {
    shk__lens_cpu_relax();
    if (atomic_load_explicit(owner, memory_order_relaxed) == 0 && try_take(owner, 0, me))
      return SHK__LENS_LOCKED;
  }
  uint64_t start = shk__os_now_ns();
  uint64_t next_check = timeout_ns == 0 ? start : start + LENS_FIRST_CHECK_NS;
  for (;;) {
    uint32_t holder = atomic_load_explicit(owner, memory_order_relaxed);
    if (holder == 0) {
      if (try_take(owner, 0, me)) return SHK__LENS_LOCKED;
      continue;
    }
    uint64_t now = shk__os_now_ns();
    if (now >= next_check) {
      /* Our own pid means another thread of this process: alive by definition. */
      if (holder != me && !shk__lens_pid_alive(holder)) {
        if (try_take(owner, holder, me)) {
          atomic_fetch_add_explicit(SHK__A32(&lock->recoveries), 1, memory_order_relaxed);
          return SHK__LENS_RECOVERED;
        }
        continue;
      }
      next_check = now + LENS_CHECK_EVERY_NS;
    }
    if (now - start >= timeout_ns) return SHK__LENS_TIMEOUT;
    shk__os_yield();
  }
}

void shk__lens_unlock(shk_lens_lock *lock) {
  atomic_store_explicit(SHK__A32(&lock->owner), 0, memory_order_release);
}
