/* Delayed free: released delayed_free buffers wait on the deferred list until freed one by one,
 * all at once, by shk_buf_shutdown() or at process exit. Callbacks run outside the lock. The
 * earlier names (shk_buf_pending_list, shk_buf_collect, shk_buf_collect_all) forward here. */
#include <stdlib.h>

#include "buf_internal.h"

static shk__once deferred_once;
static shk_buf *head, *tail;  /* oldest first; guarded by SHK__LOCK_BUF_DEFERRED */
static size_t deferred_count; /* guarded by SHK__LOCK_BUF_DEFERRED */

static void free_at_exit(void) { shk_buf_shutdown(); }

static void lock_deferred(void) { shk__lock(SHK__LOCK_BUF_DEFERRED); }
static void unlock_deferred(void) { shk__unlock(SHK__LOCK_BUF_DEFERRED); }

static void deferred_init(void) {
  /* Whatever is still deferred when the process ends normally gets its callbacks. */
  atexit(free_at_exit);
}

/* The links are in each buffer's rare block, which a delayed buffer has from its creation. */
static void unlink_locked(shk_buf *buf) {
  shk__buf_rare *r = buf->rare;
  if (r->deferred_prev) r->deferred_prev->rare->deferred_next = r->deferred_next;
  else head = r->deferred_next;
  if (r->deferred_next) r->deferred_next->rare->deferred_prev = r->deferred_prev;
  else tail = r->deferred_prev;
  r->deferred_prev = r->deferred_next = NULL;
  deferred_count--;
}

void shk__buf_deferred_add(shk_buf *buf) {
  shk__once_run(&deferred_once, deferred_init);
  lock_deferred();
  buf->rare->deferred_next = NULL;
  buf->rare->deferred_prev = tail;
  if (tail) tail->rare->deferred_next = buf;
  else head = buf;
  tail = buf;
  deferred_count++;
  unlock_deferred();
}

static int buf_deferred_list_impl(uint64_t *ids, size_t capacity, size_t *count) {
  if (!count || (capacity > 0 && !ids)) return SHK_EINVAL;
  shk__once_run(&deferred_once, deferred_init);
  lock_deferred();
  size_t i = 0;
  for (shk_buf *b = head; b && i < capacity; b = b->rare->deferred_next) ids[i++] = b->id;
  *count = deferred_count;
  unlock_deferred();
  return SHK_OK;
}

int shk_buf_deferred_list(uint64_t *ids, size_t capacity, size_t *count) {
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_deferred_list_impl(ids, capacity, count));
}

static int buf_free_deferred_impl(uint64_t id) {
  shk__once_run(&deferred_once, deferred_init);
  lock_deferred();
  shk_buf *b = head;
  while (b && b->id != id) b = b->rare->deferred_next;
  if (b) unlink_locked(b);
  unlock_deferred();
  if (!b) return SHK_ENOENT;
  shk__buf_destroy(b);
  return SHK_OK;
}

int shk_buf_free_deferred(uint64_t id) {
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_free_deferred_impl(id));
}

static int buf_free_deferred_all_impl(size_t *freed) {
  shk__once_run(&deferred_once, deferred_init);
  size_t n = 0;
  for (;;) {
    lock_deferred();
    shk_buf *b = head;
    if (b) unlink_locked(b);
    unlock_deferred();
    if (!b) break;
    shk__buf_destroy(b);
    n++;
  }
  if (freed) *freed = n;
  return SHK_OK;
}

int shk_buf_free_deferred_all(size_t *freed) {
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_free_deferred_all_impl(freed));
}

static int buf_shutdown_impl(void) {
  int rc = shk_buf_free_deferred_all(NULL);
  shk__buf_recycle_flush(); /* after the deferred buffers are freed, which may park more */
  return rc;
}

int shk_buf_shutdown(void) {
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_shutdown_impl());
}

/* Deprecated names, kept exported so programs built against them keep working. */
static int buf_pending_list_impl(uint64_t *ids, size_t capacity, size_t *count) {
  return shk_buf_deferred_list(ids, capacity, count);
}

int shk_buf_pending_list(uint64_t *ids, size_t capacity, size_t *count) {
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_pending_list_impl(ids, capacity, count));
}

int shk_buf_collect(uint64_t id) { return shk_buf_free_deferred(id); }

int shk_buf_collect_all(size_t *collected) { return shk_buf_free_deferred_all(collected); }
