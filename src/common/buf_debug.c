/* SHK_DEBUG=buf: guard bytes around inline heap and aligned buffers, checked at the end of each;
 * ended handles kept a while (quarantine) so that a double release or a use after release is
 * reported with both call sites instead of touching freed memory. Nothing here runs unless
 * SHK_DEBUG names buf (see docs/debug.md). */
#include <stdlib.h>
#include <string.h>

#include "buf_internal.h"

#define GUARD_BYTE 0xFD
/* Ended handles kept before they are freed for good: a use after release later than this many
 * releases is no longer recognised (it reads freed memory, as without SHK_DEBUG). */
#define QUARANTINE 4096

void shk__buf_debug_guard_set(shk_buf *buf) {
  unsigned char *p = buf->block.ptr;
  memset(p - SHK__BUF_GUARD, GUARD_BYTE, SHK__BUF_GUARD);
  memset(p + buf->size, GUARD_BYTE, SHK__BUF_GUARD);
}

/* How many of the n bytes at p differ from the guard pattern. */
static size_t spoiled(const unsigned char *p, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) k += p[i] != GUARD_BYTE;
  return k;
}

void shk__buf_debug_guard_check(const shk_buf *buf) {
  const unsigned char *p = buf->block.ptr;
  size_t before = spoiled(p - SHK__BUF_GUARD, SHK__BUF_GUARD);
  size_t after = spoiled(p + buf->size, SHK__BUF_GUARD);
  if (!before && !after) return;
  char created[1024], released[1024];
  shk__debug_site(shk__buf_created_at(buf), created, sizeof created);
  shk__debug_site(shk__buf_released_at(buf), released, sizeof released);
  shk__debug_report(SHK__DEBUG_BUF,
                    "guard bytes overwritten: %lu of %d before and %lu of %d after buffer id "
                    "%llu (%llu B, %s, data %p); created from %s; released from %s",
                    (unsigned long)before, SHK__BUF_GUARD, (unsigned long)after, SHK__BUF_GUARD,
                    (unsigned long long)buf->id, (unsigned long long)buf->size,
                    buf->allocator->name, (void *)p, created, released);
}

bool shk__buf_debug_handle_ok(const shk_buf *buf, const char *fn, const void *caller) {
  if (!shk__debug_on(SHK__DEBUG_BUF)) return true;
  uint32_t magic = buf->magic;
  if (magic == SHK__BUF_MAGIC_LIVE && atomic_load_explicit(&buf->refs, memory_order_relaxed) > 0)
    return true;
  char here[1024], released[1024];
  shk__debug_site(caller, here, sizeof here);
  if (magic == SHK__BUF_MAGIC_DEAD) {
    shk__debug_site(shk__buf_released_at(buf), released, sizeof released);
    shk__debug_report(SHK__DEBUG_BUF, "%s of buffer id %llu in %s, called from %s; it was released from %s",
                      strcmp(fn, "shk_buf_release") == 0 ? "double release" : "use after release",
                      (unsigned long long)buf->id, fn, here, released);
  } else {
    shk__debug_report(SHK__DEBUG_BUF, "not a buffer handle: %p (tag 0x%08x) in %s, called from %s",
                      (const void *)buf, (unsigned)magic, fn, here);
  }
  return false;
}

/* The ended handles, oldest first out; the lock is a leaf taken across fork(). */
static atomic_int quarantine_lock;
static shk_buf *quarantine[QUARANTINE];
static size_t quarantine_next;
static shk__once quarantine_once;

static void take(void) {
  while (atomic_exchange_explicit(&quarantine_lock, 1, memory_order_acquire) != 0) shk__os_yield();
}
static void give(void) { atomic_store_explicit(&quarantine_lock, 0, memory_order_release); }
static void quarantine_init(void) { shk__fork_guard(take, give); }

void shk__buf_debug_retire(shk_buf *buf) {
  shk__once_run(&quarantine_once, quarantine_init);
  take();
  shk_buf *oldest = quarantine[quarantine_next];
  quarantine[quarantine_next] = buf;
  quarantine_next = (quarantine_next + 1) % QUARANTINE;
  give();
  if (oldest) shk__buf_rare_drop(oldest); /* kept with it for its reports */
  free(oldest);
}
