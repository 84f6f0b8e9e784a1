/* Delayed free: released buffers wait on a list until collected one by one, all at once, by
 * shk_buf_shutdown() or at process exit. Callbacks run outside the lock. */
#include <stdlib.h>

#include "buf_internal.h"

static shk__once pending_once;
static shk_buf *head, *tail; /* oldest first; guarded by SHK__LOCK_BUF_PENDING */
static size_t pending_count; /* guarded by SHK__LOCK_BUF_PENDING */

static void collect_at_exit(void) { shk_buf_shutdown(); }

static void lock_pending(void) { shk__lock(SHK__LOCK_BUF_PENDING); }
static void unlock_pending(void) { shk__unlock(SHK__LOCK_BUF_PENDING); }

static void pending_init(void) {
  /* Whatever is still pending when the process ends normally gets its callbacks. */
  atexit(collect_at_exit);
}

static void unlink_locked(shk_buf *buf) {
  if (buf->pending_prev) buf->pending_prev->pending_next = buf->pending_next;
  else head = buf->pending_next;
  if (buf->pending_next) buf->pending_next->pending_prev = buf->pending_prev;
  else tail = buf->pending_prev;
  buf->pending_prev = buf->pending_next = NULL;
  pending_count--;
}

void shk__buf_pending_add(shk_buf *buf) {
  shk__once_run(&pending_once, pending_init);
  lock_pending();
  buf->pending_next = NULL;
  buf->pending_prev = tail;
  if (tail) tail->pending_next = buf;
  else head = buf;
  tail = buf;
  pending_count++;
  unlock_pending();
}

int shk_buf_pending_list(uint64_t *ids, size_t capacity, size_t *count) {
  if (!count || (capacity > 0 && !ids)) return SHK_EINVAL;
  shk__once_run(&pending_once, pending_init);
  lock_pending();
  size_t i = 0;
  for (shk_buf *b = head; b && i < capacity; b = b->pending_next) ids[i++] = b->id;
  *count = pending_count;
  unlock_pending();
  return SHK_OK;
}

int shk_buf_collect(uint64_t id) {
  shk__once_run(&pending_once, pending_init);
  lock_pending();
  shk_buf *b = head;
  while (b && b->id != id) b = b->pending_next;
  if (b) unlink_locked(b);
  unlock_pending();
  if (!b) return SHK_ENOENT;
  shk__buf_destroy(b);
  return SHK_OK;
}

int shk_buf_collect_all(size_t *collected) {
  shk__once_run(&pending_once, pending_init);
  size_t n = 0;
  for (;;) {
    lock_pending();
    shk_buf *b = head;
    if (b) unlink_locked(b);
    unlock_pending();
    if (!b) break;
    shk__buf_destroy(b);
    n++;
  }
  if (collected) *collected = n;
  return SHK_OK;
}

int shk_buf_shutdown(void) {
  int rc = shk_buf_collect_all(NULL);
  shk__buf_recycle_flush(); /* after the collection, which may park more */
  return rc;
}
