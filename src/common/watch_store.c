/* Stored values: the old and new bytes of changes to regions above the inline threshold, kept
 * under increasing keys until dropped, or evicted oldest first beyond the store limit. */
#include <stdlib.h>
#include <string.h>

#include "watch_internal.h"

void shk__watch_store_init(shk__watch_store *s, size_t limit) {
  memset(s, 0, sizeof *s);
  shk__os_mutex_init(&s->lock);
  s->next_key = 1;
  s->limit = limit;
}

void shk__watch_store_destroy(shk__watch_store *s) {
  for (size_t i = 0; i < s->count; i++) free(s->items[(s->first + i) % s->cap].bytes);
  free(s->items);
  shk__os_mutex_destroy(&s->lock);
}

static shk__watch_stored *at(shk__watch_store *s, size_t i) {
  return &s->items[(s->first + i) % s->cap];
}

/* Drops entries from the front that were dropped, or that must go to respect the limit. */
static void trim(shk__watch_store *s) {
  while (s->count > 0) {
    shk__watch_stored *e = at(s, 0);
    if (e->bytes && s->bytes <= s->limit) break;
    if (e->bytes) {
      s->bytes -= e->length;
      free(e->bytes);
    }
    s->first = (s->first + 1) % s->cap;
    s->count--;
  }
}

static bool grow(shk__watch_store *s) {
  size_t cap = s->cap ? s->cap * 2 : 64;
  shk__watch_stored *items = shk__malloc(cap * sizeof *items);
  if (!items) return false;
  for (size_t i = 0; i < s->count; i++) items[i] = *at(s, i);
  free(s->items);
  s->items = items;
  s->first = 0;
  s->cap = cap;
  return true;
}

uint64_t shk__watch_store_put(shk__watch_store *s, const void *data, size_t len) {
  unsigned char *copy = shk__malloc(len ? len : 1);
  if (!copy) return 0;
  if (len) memcpy(copy, data, len);
  shk__os_mutex_lock(&s->lock);
  if (s->count == s->cap && !grow(s)) {
    shk__os_mutex_unlock(&s->lock);
    free(copy);
    return 0;
  }
  uint64_t key = s->next_key++;
  s->items[(s->first + s->count) % s->cap] = (shk__watch_stored){key, len, copy};
  s->count++;
  s->bytes += len;
  trim(s);
  shk__os_mutex_unlock(&s->lock);
  return key;
}

/* The live entry of a key, or NULL (lock held). Keys increase along the ring. */
static shk__watch_stored *find(shk__watch_store *s, uint64_t key) {
  size_t lo = 0, hi = s->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (at(s, mid)->key < key) lo = mid + 1;
    else hi = mid;
  }
  if (lo == s->count) return NULL;
  shk__watch_stored *e = at(s, lo);
  return e->key == key && e->bytes ? e : NULL;
}

int shk__watch_store_fetch(shk__watch_store *s, uint64_t key, void *buf, size_t size,
                           size_t *length) {
  shk__os_mutex_lock(&s->lock);
  shk__watch_stored *e = find(s, key);
  if (!e) {
    shk__os_mutex_unlock(&s->lock);
    return SHK_ENOENT;
  }
  size_t n = SHK__MIN(size, e->length);
  if (n) memcpy(buf, e->bytes, n);
  if (length) *length = e->length;
  int rc = size < e->length ? SHK_ERANGE : SHK_OK;
  shk__os_mutex_unlock(&s->lock);
  return rc;
}

int shk__watch_store_drop(shk__watch_store *s, uint64_t key) {
  shk__os_mutex_lock(&s->lock);
  shk__watch_stored *e = find(s, key);
  if (e) {
    s->bytes -= e->length;
    free(e->bytes);
    e->bytes = NULL;
    trim(s);
  }
  shk__os_mutex_unlock(&s->lock);
  return e ? SHK_OK : SHK_ENOENT;
}

size_t shk__watch_store_bytes(shk__watch_store *s, size_t *overhead) {
  shk__os_mutex_lock(&s->lock);
  size_t bytes = s->bytes;
  if (overhead) *overhead = s->cap * sizeof(shk__watch_stored);
  shk__os_mutex_unlock(&s->lock);
  return bytes;
}
