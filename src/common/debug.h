/* SHK_DEBUG: which parts run their extra checks (read once from the environment, cached in one
 * word), and the one writer of every diagnostic line (format in docs/debug.md). */
#ifndef SHMKIT_DEBUG_H
#define SHMKIT_DEBUG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The parts SHK_DEBUG names: "1" or "all" turns all on, else a comma list of these names. */
enum {
  SHK__DEBUG_BUF = 1u << 0,
  SHK__DEBUG_WATCH = 1u << 1,
  SHK__DEBUG_TASK = 1u << 2,
  SHK__DEBUG_LENS = 1u << 3,
  SHK__DEBUG_SHM = 1u << 4,
  SHK__DEBUG_LOCK = 1u << 5,
  SHK__DEBUG_ALL = (1u << 6) - 1,
  SHK__DEBUG_UNREAD = 1u << 31 /* the environment is read at the first check */
};

#if defined(__GNUC__) || defined(__clang__)
#define SHK__UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Where the calling function returns to: the caller's call site. */
#define SHK__CALLER() __builtin_return_address(0)
#else
#define SHK__UNLIKELY(x) (x)
#define SHK__CALLER() ((void *)0)
#endif

/* The parts on; SHK__DEBUG_UNREAD (with every part bit) until the first check reads SHK_DEBUG. */
extern atomic_uint shk__debug_mask;

/* The first check, and every check of a part that is on: reads SHK_DEBUG if not yet read. */
bool shk__debug_on_slow(unsigned part);

/* Whether part's checks are on. Off, this is one relaxed load and one branch that is never
 * taken: the whole cost of SHK_DEBUG in a program that does not set it. */
static inline bool shk__debug_on(unsigned part) {
  if (SHK__UNLIKELY(atomic_load_explicit(&shk__debug_mask, memory_order_relaxed) & part))
    return shk__debug_on_slow(part);
  return false;
}

/* Writes one line "shmkit debug: <part>: <message>\n" to stderr in one write (part 0: about
 * SHK_DEBUG itself, named so). */
void shk__debug_report(unsigned part, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A code address as "module!symbol+0xN" (with " at file:line" where debug information tells),
 * else "0x<address>"; "unknown" for NULL. */
void shk__debug_site(const void *ip, char *out, size_t size);

/* Reports that public function `fn`, called from `caller`, returns error rc. */
void shk__debug_error(unsigned part, const char *fn, int rc, const void *caller);

/* rc, reported first when it is an error and part's checks are on. */
static inline int shk__debug_ret(unsigned part, const char *fn, int rc, const void *caller) {
  if (SHK__UNLIKELY(rc < 0) && shk__debug_on(part)) shk__debug_error(part, fn, rc, caller);
  return rc;
}

/* In a public function: its result, with its error reported under SHK_DEBUG. */
#define SHK__DEBUG_RET(part, rc) shk__debug_ret((part), __func__, (rc), SHK__CALLER())

/* Sets the parts as if SHK_DEBUG said so (tests of the parser); returns what was set. */
unsigned shk__debug_parse(const char *value);

/* ---- SHK_DEBUG=lock (debug_lock.c) ----
 * The locks of the process-wide order (internal.h), numbered as there (SHK__LOCK_ORDER_*),
 * followed per thread while the part is on. Each call is made only when shk__debug_on(
 * SHK__DEBUG_LOCK) said yes, with the call site that takes or gives the lock. */

/* Before taking lock `order`: reports it taken out of order (a lock after it in the order is
 * held by this thread); reports and aborts when this thread holds it already (it would wait for
 * itself forever). Then counts it held. */
void shk__lock_debug_take(size_t order, const void *site);
/* Before giving lock `order` back: true when this thread holds it (now counted free); else
 * reports a give by a thread that does not hold it, and false: the caller leaves the lock as is. */
bool shk__lock_debug_give(size_t order, const void *site);
/* In fork()'s prepare handler, before it takes every lock: reports and aborts when the forking
 * thread holds one (the handler would wait for it forever). */
void shk__lock_debug_fork(void);

/* A handle documented "one thread at a time" (named `what`), entered by public function fn
 * called from site: reports when another thread is inside it now (both threads, functions and
 * sites). True when the entry was counted: the caller then calls shk__debug_solo_leave(key) as
 * fn returns. The same thread may enter again (a callback calling back). */
bool shk__debug_solo_enter(const char *what, const void *key, const char *fn, const void *site);
void shk__debug_solo_leave(const void *key);

#endif
