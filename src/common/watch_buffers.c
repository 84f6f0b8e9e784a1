/* Watching every live buffer: the watchers that follow buffers, the observer buf tells of each
 * creation and release, and the walk over the buffers live when a watcher starts following.
 * Lock order (internal.h): this file's lock, then a watcher's lock, then the watch table or the
 * range index; buf calls the observer with no buf lock held. */
#include <stdlib.h>
#include <string.h>

#include "watch_internal.h"
#include "debug.h"

typedef struct shk__watch_follower {
  shk_watcher *w;
  char **allocators; /* the names asked for; NULL: every allocator the backend can watch */
  size_t allocator_count;
  struct shk__watch_follower *next;
} shk__watch_follower;

static shk__watch_follower *followers; /* guarded by SHK__LOCK_WATCH_BUFFERS */

static void lock_followers(void) { shk__lock(SHK__LOCK_WATCH_BUFFERS); }
static void unlock_followers(void) { shk__unlock(SHK__LOCK_WATCH_BUFFERS); }

static const shk_watch_buffers_options buffers_defaults = {
    .struct_size = sizeof(shk_watch_buffers_options)};
/* Version 1 is the 0.2.0 layout. */
#define BUFFERS_OPTIONS_V1_SIZE SHK__OPTIONS_END(shk_watch_buffers_options, allocator_count)
static const size_t buffers_legacy[] = {BUFFERS_OPTIONS_V1_SIZE};
static const shk__options_layout buffers_layout = {
    sizeof(shk_watch_buffers_options), BUFFERS_OPTIONS_V1_SIZE, BUFFERS_OPTIONS_V1_SIZE,
    buffers_legacy, 1, &buffers_defaults};

void shk_watch_buffers_options_init_size(shk_watch_buffers_options *opts, size_t size) {
  shk__options_init(&buffers_layout, opts, size);
}

/* Programs built before the init macro call this: their struct is the version-1 layout. */
void(shk_watch_buffers_options_init)(shk_watch_buffers_options *opts) {
  shk__options_init(&buffers_layout, opts, BUFFERS_OPTIONS_V1_SIZE);
  if (opts) opts->struct_size = SHK_WATCH_BUFFERS_OPTIONS_VERSION;
}

/* Buffers of "pages" own their pages; every other allocator's share them with other memory. */
static bool owns_pages(const char *allocator) { return strcmp(allocator, "pages") == 0; }

/* Whether the watcher's backend write-protects (or may: one's own): then only buffers that own
 * their pages may go on it. */
static bool protects(const shk_watcher *w) {
  return w->custom_ops || (w->opts.backend != SHK_WATCH_POLL && w->opts.backend != SHK_WATCH_AUTO);
}

typedef enum placement { SKIP, OWN_BACKEND, ON_POLL } placement;

static placement place_of(const shk__watch_follower *f, const char *allocator) {
  if (f->allocators) {
    size_t i = 0;
    while (i < f->allocator_count && strcmp(f->allocators[i], allocator) != 0) i++;
    if (i == f->allocator_count) return SKIP;
  }
  if (owns_pages(allocator)) return OWN_BACKEND;
  if (protects(f->w)) return SKIP;
  return f->w->opts.backend == SHK_WATCH_AUTO ? ON_POLL : OWN_BACKEND;
}

/* Lock held. A buffer that cannot be added (memory watched by hand, a limit) is skipped. */
static void follow(const shk__watch_follower *f, const shk_buf_info *info) {
  placement p = place_of(f, info->allocator);
  if (p != SKIP) (void)shk__watch_buffer_add(f->w, info, p == ON_POLL);
}

/* buf's observer: called with no buf lock held. */
static void observe(const shk_buf_info *info, bool created) {
  lock_followers();
  for (const shk__watch_follower *f = followers; f; f = f->next) {
    if (created) follow(f, info);
    else shk__watch_buffer_remove(f->w, (uintptr_t)info->data);
  }
  unlock_followers();
}

static void follower_free(shk__watch_follower *f) {
  if (!f) return;
  for (size_t i = 0; i < f->allocator_count && f->allocators; i++) free(f->allocators[i]);
  free(f->allocators);
  free(f);
}

static int follower_new(shk_watcher *w, const shk_watch_buffers_options *o,
                        shk__watch_follower **out) {
  shk__watch_follower *f = shk__calloc(1, sizeof *f);
  if (!f) return SHK_ENOMEM;
  f->w = w;
  if (o->allocators) {
    f->allocators = shk__calloc(o->allocator_count ? o->allocator_count : 1, sizeof *f->allocators);
    if (!f->allocators) {
      free(f);
      return SHK_ENOMEM;
    }
    f->allocator_count = o->allocator_count;
    for (size_t i = 0; i < o->allocator_count; i++) {
      size_t len = strlen(o->allocators[i]) + 1;
      if (!(f->allocators[i] = shk__malloc(len))) {
        follower_free(f);
        return SHK_ENOMEM;
      }
      memcpy(f->allocators[i], o->allocators[i], len);
    }
  }
  *out = f;
  return SHK_OK;
}

static int check_options(const shk_watcher *w, const shk_watch_buffers_options *o) {
  if (!o->allocators) return o->allocator_count ? SHK_EINVAL : SHK_OK;
  for (size_t i = 0; i < o->allocator_count; i++) {
    if (!o->allocators[i]) return SHK_EINVAL;
    if (!owns_pages(o->allocators[i]) && protects(w)) return SHK_EUNSUPPORTED;
  }
  return SHK_OK;
}

/* Removes w's buffer regions, then unlinks its follower (lock held); the observer goes with the
 * last one. In this order: once unlinked, a release is no longer told to w, so a region left
 * behind would outlive its memory. */
static shk__watch_follower *unlink_locked(shk_watcher *w) {
  shk__watch_follower *f = w->follower;
  if (!f) return NULL;
  shk__watch_buffer_remove_all(w);
  shk__watch_follower **link = &followers;
  while (*link != f) link = &(*link)->next;
  *link = f->next;
  w->follower = NULL;
  if (!followers) shk__buf_observer_set(NULL);
  return f;
}

static int watch_add_buffers_impl(shk_watcher *w, const shk_watch_buffers_options *opts) {
  if (!w) return SHK_EINVAL;
  shk_watch_buffers_options read;
  if (shk__options_read(&buffers_layout, opts, &read) != SHK_OK) return SHK_EINVAL;
  const shk_watch_buffers_options *o = &read;
  int rc = check_options(w, o);
  if (rc != SHK_OK) return rc;
  shk__watch_follower *f = NULL;
  rc = follower_new(w, o, &f);
  if (rc != SHK_OK) return rc;
  lock_followers();
  if (w->follower) {
    unlock_followers();
    follower_free(f);
    return SHK_EEXIST;
  }
  f->next = followers;
  followers = f;
  w->follower = f;
  /* The observer first, then the walk: a buffer created or ended meanwhile is either listed or
   * told (and told only once this lock is free, so after its listing was handled). */
  shk__buf_observer_set(observe);
  shk_buf_info *live = NULL;
  size_t n = 0;
  rc = shk__buf_live_list(&live, &n);
  if (rc == SHK_OK) {
    for (size_t i = 0; i < n; i++) follow(f, &live[i]);
  } else {
    unlink_locked(w);
  }
  unlock_followers();
  free(live);
  if (rc != SHK_OK) follower_free(f);
  return rc;
}

int shk_watch_add_buffers(shk_watcher *w, const shk_watch_buffers_options *opts) {
  return SHK__DEBUG_RET(SHK__DEBUG_WATCH, watch_add_buffers_impl(w, opts));
}

static int watch_remove_buffers_impl(shk_watcher *w) {
  if (!w) return SHK_EINVAL;
  lock_followers();
  shk__watch_follower *f = unlink_locked(w);
  unlock_followers();
  if (!f) return SHK_ENOENT;
  follower_free(f);
  return SHK_OK;
}

int shk_watch_remove_buffers(shk_watcher *w) {
  return SHK__DEBUG_RET(SHK__DEBUG_WATCH, watch_remove_buffers_impl(w));
}

void shk__watch_buffers_forget(shk_watcher *w) {
  lock_followers();
  shk__watch_follower *f = unlink_locked(w);
  unlock_followers();
  follower_free(f);
}
