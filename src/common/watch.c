/* The watcher object: options, regions (sorted, disjoint, possibly sharing pages), choosing a
 * backend per region, the callback, flush, stats and the store's public face. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "watch_internal.h"

static const char *const backend_names[SHK_WATCH_CUSTOM + 1] = {
    "auto", "mprotect", "userfaultfd", "write-watch", "poll", "custom"};

const char *shk_watch_backend_name(shk_watch_backend backend) {
  return (unsigned)backend <= SHK_WATCH_CUSTOM ? backend_names[backend] : "unknown";
}

bool shk_watch_backend_available(shk_watch_backend backend) {
  if (backend == SHK_WATCH_AUTO) return true;
  if ((unsigned)backend >= SHK_WATCH_BACKEND_COUNT) return false;
  return shk__watch_backend_ops_of(backend)->available();
}

static const shk_watch_options watch_defaults = {
    .struct_size = sizeof(shk_watch_options),
    .backend = SHK_WATCH_AUTO,
    .coalesce_ms = 5,
    .ring_capacity = 65536,
    .inline_threshold = 4096,
    .preview_size = 256,
    .poll_interval_ms = 10,
    .store_limit = (size_t)256 << 20,
    .resolve_symbols = true,
};

/* Versions 1 (ending before backend_name) and 2 (the 0.2.0 layout) of 0.1.x. */
#define WATCH_OPTIONS_V2_SIZE SHK__OPTIONS_END(shk_watch_options, backend_name)
static const size_t watch_legacy[] = {offsetof(shk_watch_options, backend_name),
                                      WATCH_OPTIONS_V2_SIZE};
static const shk__options_layout watch_layout = {sizeof(shk_watch_options), WATCH_OPTIONS_V2_SIZE,
                                                 WATCH_OPTIONS_V2_SIZE, watch_legacy, 2,
                                                 &watch_defaults};

void shk_watch_options_init_size(shk_watch_options *opts, size_t size) {
  shk__options_init(&watch_layout, opts, size);
}

/* Programs built against 0.1.x call this: their struct is the version-2 layout, marked so. */
void(shk_watch_options_init)(shk_watch_options *opts) {
  shk__options_init(&watch_layout, opts, WATCH_OPTIONS_V2_SIZE);
  if (opts) opts->struct_size = SHK_WATCH_OPTIONS_VERSION;
}

static int watch_pages_alloc_impl(size_t size, void **out) {
  if (!out) return SHK_EINVAL;
  *out = NULL;
  size_t ps = shk__os_caps_get()->page_size;
  size_t rounded = size ? shk__round_up(size, ps) : 0;
  if (rounded == 0) return SHK_ESIZE;
  return shk__os_pages_alloc(rounded, true, out);
}

int shk_watch_pages_alloc(size_t size, void **out) {
  return SHK__DEBUG_RET(SHK__DEBUG_WATCH, watch_pages_alloc_impl(size, out));
}

void shk_watch_pages_free(void *addr, size_t size) {
  if (!addr || size == 0) return;
  shk__os_pages_free(addr, shk__round_up(size, shk__os_caps_get()->page_size));
}

bool shk__watch_region_writable(const shk__watch_region *r) {
  return r->prot_uniform && (r->prot & SHK__OS_PROT_READ_WRITE) == SHK__OS_PROT_READ_WRITE;
}

static bool on_worker(shk_watcher *w) {
  return atomic_load(&w->worker_tid) == shk__os_thread_id();
}

static int watch_create_impl(const shk_watch_options *opts, shk_watcher **out) {
  if (!out) return SHK_EINVAL;
  *out = NULL;
  shk_watch_options o;
  if (shk__options_read(&watch_layout, opts, &o) != SHK_OK) return SHK_EINVAL;
  if ((unsigned)o.backend >= SHK_WATCH_BACKEND_COUNT || o.ring_capacity == 0 ||
      o.ring_capacity > (1u << 30) || o.poll_interval_ms == 0)
    return SHK_EINVAL;
  const shk__watch_backend_ops *named = NULL;
  if (o.backend_name) {
    int rc = shk__watch_registry_acquire(o.backend_name, &named);
    if (rc != SHK_OK) return rc;
    o.backend = named->kind;
    if (!named->custom) { /* a built-in by name: the same as by kind */
      shk__watch_registry_release(named);
      named = NULL;
    }
    o.backend_name = NULL; /* not kept: the caller's string */
  }
  if (!named && !shk_watch_backend_available(o.backend)) return SHK_EUNSUPPORTED;
  /* The fault hook stays installed once a watcher has used it, but a handler the program
   * installed and then restored to another (CMocka, around each test) may have left it out of
   * the chain: in front again before this watcher counts on it. Under the table's lock, which
   * serialises every installation. */
  shk__lock(SHK__LOCK_WATCH_TABLE);
  int hook_rc = shk__os_fault_refresh();
  shk__unlock(SHK__LOCK_WATCH_TABLE);
  if (hook_rc != SHK_OK) {
    if (named) shk__watch_registry_release(named);
    return hook_rc;
  }

  shk_watcher *w = shk__calloc(1, sizeof *w);
  if (!w) {
    if (named) shk__watch_registry_release(named);
    return SHK_ENOMEM;
  }
  w->opts = o;
  w->custom_ops = named;
  w->page_size = shk__os_caps_get()->page_size;
  w->next_id = 1;
  w->sink = shk__calloc(1, sizeof *w->sink);
  if (!w->sink || shk__watch_ring_init(&w->sink->ring, o.ring_capacity) != SHK_OK) {
    if (named) shk__watch_registry_release(named);
    free(w->sink);
    free(w);
    return SHK_ENOMEM;
  }
  w->sink->page_size = w->page_size;
  shk__watch_store_init(&w->store, o.store_limit);
  shk__os_mutex_init(&w->lock);
  shk__os_mutex_init(&w->deliver_lock);
  shk__os_cond_init(&w->wake);
  shk__os_cond_init(&w->flushed);
  int rc = shk__os_thread_start(&w->thread, shk__watch_worker_main, w);
  if (rc != SHK_OK) {
    w->thread = NULL;
    shk_watch_free(w);
    return rc;
  }
  *out = w;
  return SHK_OK;
}

int shk_watch_create(const shk_watch_options *opts, shk_watcher **out) {
  return SHK__DEBUG_RET(SHK__DEBUG_WATCH, watch_create_impl(opts, out));
}

static size_t index_of(shk_watcher *w, uint32_t id) {
  for (size_t i = 0; i < w->count; i++)
    if (w->regions[i]->id == id) return i;
  return SIZE_MAX;
}

static void region_free(shk__watch_region *r) {
  if (!r) return;
  free(r->name);
  free(r->buffer_allocator);
  free(r->shadow_block);
  free(r->dirty);
  free(r);
}

/* The pages of region i that no neighbour shares (lock held). */
static void exclusive_pages(shk_watcher *w, size_t i, uintptr_t *start, uintptr_t *end) {
  const shk__watch_region *r = w->regions[i];
  *start = r->page_start;
  *end = r->page_end;
  if (i > 0 && w->regions[i - 1]->page_end > *start) *start += w->page_size;
  if (i + 1 < w->count && w->regions[i + 1]->page_start < *end) *end -= w->page_size;
  if (*end < *start) *end = *start;
}

/* SHK_DEBUG=watch, after a change at index i (lock held): the regions around it are in address
 * order and disjoint, and each one the protection backend watches has its first page in the
 * fault table under this watcher (a missing span would turn a write into a crash). Three
 * regions and three look-ups: the cost stays that of the change. */
static void debug_check_around(shk_watcher *w, size_t i) {
  for (size_t k = i ? i - 1 : 0; k < w->count && k < i + 2; k++) {
    const shk__watch_region *r = w->regions[k];
    if (k + 1 < w->count && r->addr + r->size > w->regions[k + 1]->addr)
      shk__debug_report(SHK__DEBUG_WATCH,
                        "regions inconsistent: region %u \"%s\" overlaps or follows region %u",
                        (unsigned)r->id, r->name, (unsigned)w->regions[k + 1]->id);
    if (r->ops != &shk__watch_backend_mprotect) continue;
    const shk__watch_span *span = shk__watch_table_enter(r->page_start);
    bool ours = span && span->sink == w->sink;
    shk__watch_table_exit();
    if (!ours)
      shk__debug_report(SHK__DEBUG_WATCH,
                        "fault table inconsistent: region %u \"%s\" (mprotect) at %p is not in "
                        "it",
                        (unsigned)r->id, r->name, (void *)r->page_start);
  }
}

/* Detaches region i and takes it out of the array (lock held). The region goes even when its
 * pages could not all be given back: the backend's code is returned (and reported under
 * SHK_DEBUG=watch), and the backend has kept them openable by the fault path. */
static int remove_at(shk_watcher *w, size_t i) {
  shk__watch_region *r = w->regions[i];
  uintptr_t es, ee;
  exclusive_pages(w, i, &es, &ee);
  int rc = r->ops->detach ? r->ops->detach(w, r, es, ee) : SHK_OK;
  if (SHK__UNLIKELY(rc != SHK_OK) && shk__debug_on(SHK__DEBUG_WATCH))
    shk__debug_report(SHK__DEBUG_WATCH,
                      "region %u \"%s\": its pages could not be given back (%s, OS error %d); "
                      "they open on their next write (%lu such spans in this process)",
                      (unsigned)r->id, r->name, shk_error_name(rc), shk_last_os_error(),
                      (unsigned long)shk__watch_table_orphans());
  if (r->holds_area) shk__watch_areas_give();
  memmove(w->regions + i, w->regions + i + 1, (w->count - i - 1) * sizeof *w->regions);
  w->count--;
  region_free(r);
  if (SHK__UNLIKELY(shk__debug_on(SHK__DEBUG_WATCH))) debug_check_around(w, i);
  return rc;
}

void shk_watch_free(shk_watcher *w) {
  if (!w) return;
  if (w->thread && on_worker(w)) return;
  shk__watch_buffers_forget(w); /* no buffer is added from now on */
  if (w->thread) {
    shk__os_mutex_lock(&w->lock);
    w->stop = true;
    shk__os_cond_signal(&w->wake);
    shk__os_mutex_unlock(&w->lock);
    shk__os_thread_join(w->thread);
  }
  /* A region whose pages could not be given back leaves its code in shk_last_os_error();
   * otherwise the value stays what it was (shk_watch_create frees after a failure). */
  int failed = SHK_OK, raw = shk_last_os_error();
  shk__os_mutex_lock(&w->lock);
  while (w->count > 0) {
    int rc = remove_at(w, w->count - 1);
    if (rc != SHK_OK && failed == SHK_OK) {
      failed = rc;
      raw = shk_last_os_error();
    }
  }
  shk__os_mutex_unlock(&w->lock);
  shk__watch_uffd_shutdown(w);
  free(w->regions);
  free(w->batch);
  free(w->arena);
  shk__watch_store_destroy(&w->store);
  shk__os_cond_destroy(&w->wake);
  shk__os_cond_destroy(&w->flushed);
  shk__os_mutex_destroy(&w->deliver_lock);
  shk__os_mutex_destroy(&w->lock);
  shk__watch_ring_destroy(&w->sink->ring);
  if (w->custom_ops) shk__watch_registry_release(w->custom_ops);
  free(w->sink);
  free(w);
  shk__error_record_os(failed, raw);
}

/* What the region's pages allow (lock held, the region not yet in the array). A page shared
 * with a neighbour that a protection backend watches is read-only now because of us: it is
 * taken to allow what the neighbour recorded, and only the other pages are asked about. */
static int settle_prot(shk_watcher *w, shk__watch_region *r, size_t at) {
  const shk__watch_region *prev = at > 0 ? w->regions[at - 1] : NULL;
  const shk__watch_region *next = at < w->count ? w->regions[at] : NULL;
  if (prev && (prev->page_end <= r->page_start || !prev->ops->rearm)) prev = NULL;
  if (next && (next->page_start >= r->page_end || !next->ops->rearm)) next = NULL;
  if (!prev && !next) return SHK_OK; /* the answer shk_watch_add() got stands */
  uintptr_t start = r->page_start + (prev ? w->page_size : 0);
  uintptr_t end = r->page_end - (next && r->page_end - w->page_size >= start ? w->page_size : 0);
  int prot = (prev ? prev : next)->prot;
  bool uniform = (prev ? prev : next)->prot_uniform;
  if (prev && next && (next->prot != prot || !next->prot_uniform)) uniform = false;
  if (end > start) {
    int own = 0;
    bool own_uniform = true;
    int rc = shk__os_prot_query((void *)start, end - start, &own, &own_uniform);
    if (rc == SHK_EFAULT) return rc;
    if (rc == SHK_OK && (own != prot || !own_uniform)) uniform = false;
    if (rc == SHK_OK) prot &= own;
  }
  r->prot = prot;
  r->prot_uniform = uniform;
  return SHK_OK;
}

/* The backends to try for a new region, best first. */
static size_t candidates(shk_watcher *w, const shk__watch_region *r, size_t at,
                         shk_watch_backend out[4]) {
  if (w->opts.backend != SHK_WATCH_AUTO) {
    out[0] = w->opts.backend;
    return 1;
  }
  if (r->poll_only) {
    out[0] = SHK_WATCH_POLL;
    return 1;
  }
  /* A page shared with a neighbour is protected one way only; polling, which touches no
   * protection, can still join it when a limit is reached. */
  if (at > 0 && w->regions[at - 1]->page_end > r->page_start) {
    out[0] = w->regions[at - 1]->backend;
    out[1] = SHK_WATCH_POLL;
    return out[0] == SHK_WATCH_POLL ? 1 : 2;
  }
  if (at < w->count && w->regions[at]->page_start < r->page_end) {
    out[0] = w->regions[at]->backend;
    out[1] = SHK_WATCH_POLL;
    return out[0] == SHK_WATCH_POLL ? 1 : 2;
  }
  size_t n = 0;
  static const shk_watch_backend order[] = {SHK_WATCH_USERFAULTFD, SHK_WATCH_WRITE_WATCH,
                                            SHK_WATCH_MPROTECT, SHK_WATCH_POLL};
  for (size_t i = 0; i < SHK__ARRAY_LEN(order); i++) {
    /* The sync mode of userfaultfd is slower than protection: auto takes only the async one. */
    if (order[i] == SHK_WATCH_USERFAULTFD && !shk__os_has(SHK__OS_UFFD_WP_ASYNC)) continue;
    if (shk__watch_backend_ops_of(order[i])->available()) out[n++] = order[i];
  }
  return n;
}

static int attach(shk_watcher *w, shk__watch_region *r, size_t at) {
  if (w->custom_ops) {
    r->backend = SHK_WATCH_CUSTOM;
    r->ops = w->custom_ops;
    return r->ops->attach(w, r);
  }
  shk_watch_backend list[4];
  size_t n = candidates(w, r, at, list);
  int rc = SHK_EUNSUPPORTED;
  bool limited = false;
  for (size_t i = 0; i < n; i++) {
    const shk__watch_backend_ops *ops = shk__watch_backend_ops_of(list[i]);
    if (ops->accepts && !ops->accepts(w, r)) continue;
    r->backend = list[i];
    r->ops = ops;
    rc = ops->attach ? ops->attach(w, r) : SHK_OK;
    if (rc == SHK_OK) {
      if (limited && list[i] == SHK_WATCH_POLL) w->moved_to_poll++;
      return SHK_OK;
    }
    if (rc == SHK_ELIMIT) limited = true;
    if (w->opts.backend != SHK_WATCH_AUTO || rc == SHK_ENOMEM) break;
  }
  return rc;
}

/* What a followed buffer's region carries besides the public arguments. */
typedef struct region_tag {
  uint64_t buffer_id;
  const char *allocator;
  bool poll_only;
} region_tag;

static int add_region(shk_watcher *w, void *addr, size_t size, const char *name,
                      const region_tag *tag, uint32_t *id);

static int watch_add_impl(shk_watcher *w, void *addr, size_t size, const char *name, uint32_t *id) {
  if (!w || !addr || !id || size == 0 || shk__range_wraps(addr, size))
    return SHK_EINVAL;
  *id = 0;
  return add_region(w, addr, size, name, NULL, id);
}

int shk_watch_add(shk_watcher *w, void *addr, size_t size, const char *name, uint32_t *id) {
  return SHK__DEBUG_RET(SHK__DEBUG_WATCH, watch_add_impl(w, addr, size, name, id));
}

/* The index of the followed buffer's region that starts at addr, or SIZE_MAX (lock held). */
static size_t buffer_region_at(shk_watcher *w, uintptr_t addr) {
  size_t at = shk__watch_first_region(w, addr);
  return at < w->count && w->regions[at]->addr == addr && w->regions[at]->buffer_id != 0 ? at
                                                                                           : SIZE_MAX;
}

int shk__watch_buffer_add(shk_watcher *w, const shk_buf_info *info, bool poll_only) {
  uintptr_t a = (uintptr_t)info->data;
  shk__os_mutex_lock(&w->lock);
  size_t at = buffer_region_at(w, a);
  bool same = at != SIZE_MAX && w->regions[at]->buffer_id == info->id &&
              w->regions[at]->size == info->size;
  if (at != SIZE_MAX && !same) remove_at(w, at); /* a parked object's stale region */
  shk__os_mutex_unlock(&w->lock);
  if (same) return SHK_OK;
  char name[32];
  snprintf(name, sizeof name, "buffer %llu", (unsigned long long)info->id);
  region_tag tag = {info->id, info->allocator, poll_only};
  uint32_t id;
  return add_region(w, info->data, info->size, name, &tag, &id);
}

void shk__watch_buffer_remove(shk_watcher *w, uintptr_t addr) {
  shk__os_mutex_lock(&w->lock);
  size_t at = buffer_region_at(w, addr);
  if (at != SIZE_MAX) remove_at(w, at);
  shk__os_mutex_unlock(&w->lock);
}

void shk__watch_buffer_remove_all(shk_watcher *w) {
  shk__os_mutex_lock(&w->lock);
  for (size_t i = w->count; i-- > 0;)
    if (w->regions[i]->buffer_id != 0) remove_at(w, i);
  shk__os_mutex_unlock(&w->lock);
}

static int add_region(shk_watcher *w, void *addr, size_t size, const char *name,
                      const region_tag *tag, uint32_t *id) {
  uintptr_t a = (uintptr_t)addr;
  shk__watch_region *r = shk__calloc(1, sizeof *r);
  if (!r) return SHK_ENOMEM;
  r->addr = a;
  r->size = size;
  r->page_start = a & ~(uintptr_t)(w->page_size - 1);
  r->page_end = shk__round_up(a + size, w->page_size);
  if (r->page_end == 0) {
    free(r);
    return SHK_EINVAL;
  }
  size_t pages = (r->page_end - r->page_start) / w->page_size;
  r->name = shk__malloc(name ? strlen(name) + 1 : 1);
  r->shadow_block = size <= SIZE_MAX - 8 ? shk__malloc(size + 8) : NULL;
  r->shadow = r->shadow_block ? r->shadow_block + (a & 7) : NULL;
  r->dirty = shk__calloc((pages + 7) / 8, 1);
  if (!r->name || !r->shadow || !r->dirty) {
    region_free(r);
    return SHK_ENOMEM;
  }
  strcpy(r->name, name ? name : "");
  if (tag) {
    r->buffer_id = tag->buffer_id;
    r->poll_only = tag->poll_only;
    size_t len = strlen(tag->allocator) + 1;
    r->buffer_allocator = shk__malloc(len);
    if (!r->buffer_allocator) {
      region_free(r);
      return SHK_ENOMEM;
    }
    memcpy(r->buffer_allocator, tag->allocator, len);
  }
  /* The memory must be mapped and readable (the copy below reads it); what else it allows
   * decides which backends may take it. Where the system cannot tell, read-write is assumed. */
  int qrc = shk__os_prot_query((void *)r->page_start, r->page_end - r->page_start, &r->prot,
                               &r->prot_uniform);
  if (qrc == SHK_EUNSUPPORTED) {
    r->prot = SHK__OS_PROT_READ_WRITE;
    r->prot_uniform = true;
  } else if (qrc != SHK_OK || !(r->prot & SHK__OS_PROT_READ)) {
    region_free(r);
    return qrc != SHK_OK ? qrc : SHK_EACCES;
  }

  shk__os_mutex_lock(&w->lock);
  size_t at = shk__watch_first_region(w, a);
  int rc = SHK_OK;
  if (at < w->count && w->regions[at]->addr < a + size) rc = SHK_EOVERLAP;
  if (rc == SHK_OK && w->count == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 16;
    shk__watch_region **grown = shk__realloc(w->regions, cap * sizeof *grown);
    if (grown) {
      w->regions = grown;
      w->cap = cap;
    } else {
      rc = SHK_ENOMEM;
    }
  }
  if (rc == SHK_OK && !shk__watch_region_writable(r)) rc = settle_prot(w, r, at);
  if (rc == SHK_OK) rc = attach(w, r, at);
  if (rc != SHK_OK) {
    shk__os_mutex_unlock(&w->lock);
    region_free(r);
    return rc;
  }
  /* The backend protects first, then the copy is taken: a write in between faults and is
   * compared against this copy later, so it is not lost. */
  shk__watch_copy_in(r->shadow, addr, size); /* racy by design: the program may be writing */
  r->id = w->next_id++;
  if (w->next_id == 0) w->next_id = 1;
  memmove(w->regions + at + 1, w->regions + at, (w->count - at) * sizeof *w->regions);
  w->regions[at] = r;
  w->count++;
  *id = r->id;
  if (SHK__UNLIKELY(shk__debug_on(SHK__DEBUG_WATCH))) debug_check_around(w, at);
  shk__os_mutex_unlock(&w->lock);
  return SHK_OK;
}

static int watch_remove_impl(shk_watcher *w, uint32_t id) {
  if (!w) return SHK_EINVAL;
  shk__os_mutex_lock(&w->lock);
  size_t i = index_of(w, id);
  int rc = i == SIZE_MAX ? SHK_ENOENT : remove_at(w, i);
  shk__os_mutex_unlock(&w->lock);
  return rc;
}

int shk_watch_remove(shk_watcher *w, uint32_t id) {
  return SHK__DEBUG_RET(SHK__DEBUG_WATCH, watch_remove_impl(w, id));
}

static int watch_region_backend_impl(shk_watcher *w, uint32_t id, shk_watch_backend *backend) {
  if (!w || !backend) return SHK_EINVAL;
  shk__os_mutex_lock(&w->lock);
  size_t i = index_of(w, id);
  if (i != SIZE_MAX) *backend = w->regions[i]->backend;
  shk__os_mutex_unlock(&w->lock);
  return i == SIZE_MAX ? SHK_ENOENT : SHK_OK;
}

int shk_watch_region_backend(shk_watcher *w, uint32_t id, shk_watch_backend *backend) {
  return SHK__DEBUG_RET(SHK__DEBUG_WATCH, watch_region_backend_impl(w, id, backend));
}

static int watch_set_callback_impl(shk_watcher *w, shk_watch_fn fn, void *user) {
  if (!w) return SHK_EINVAL;
  /* Taking deliver_lock waits for a callback in progress; from the callback itself it is
   * already held by this thread. */
  bool self = on_worker(w);
  if (!self) shk__os_mutex_lock(&w->deliver_lock);
  shk__os_mutex_lock(&w->lock);
  w->fn = fn;
  w->user = user;
  shk__os_mutex_unlock(&w->lock);
  if (!self) shk__os_mutex_unlock(&w->deliver_lock);
  return SHK_OK;
}

int shk_watch_set_callback(shk_watcher *w, shk_watch_fn fn, void *user) {
  return SHK__DEBUG_RET(SHK__DEBUG_WATCH, watch_set_callback_impl(w, fn, user));
}

static int watch_flush_impl(shk_watcher *w) {
  if (!w) return SHK_EINVAL;
  if (on_worker(w)) return SHK_ESTATE;
  shk__os_mutex_lock(&w->lock);
  uint64_t ticket = ++w->flush_req;
  shk__os_cond_signal(&w->wake);
  while (w->flush_done < ticket && !w->stop) shk__os_cond_wait(&w->flushed, &w->lock);
  shk__os_mutex_unlock(&w->lock);
  return SHK_OK;
}

int shk_watch_flush(shk_watcher *w) {
  return SHK__DEBUG_RET(SHK__DEBUG_WATCH, watch_flush_impl(w));
}

static int watch_stats_get_impl(shk_watcher *w, shk_watch_stats *stats) {
  if (!w || !stats) return SHK_EINVAL;
  memset(stats, 0, sizeof *stats);
  size_t store_overhead = 0;
  size_t stored = shk__watch_store_bytes(&w->store, &store_overhead);
  shk__os_mutex_lock(&w->lock);
  size_t mem = sizeof *w + sizeof *w->sink +
               (w->sink->ring.mask + 1) * sizeof(shk__watch_slot) +
               w->cap * sizeof *w->regions + w->batch_cap * sizeof *w->batch + w->arena_cap +
               stored + store_overhead;
  for (size_t i = 0; i < w->count; i++) {
    const shk__watch_region *r = w->regions[i];
    size_t pages = (r->page_end - r->page_start) / w->page_size;
    mem += sizeof *r + strlen(r->name) + 1 + r->size + (pages + 7) / 8;
    if ((unsigned)r->backend < SHK_WATCH_BACKEND_COUNT) stats->regions_by_backend[r->backend]++;
  }
  stats->regions = w->count;
  stats->regions_moved_to_poll = w->moved_to_poll;
  stats->memory_bytes = mem;
  stats->stored_bytes = stored;
  stats->faults = atomic_load(&w->sink->faults);
  stats->events_dropped = atomic_load(&w->sink->dropped);
  stats->events_delivered = w->delivered;
  stats->events_unobserved = w->unobserved;
  stats->resyncs = w->resyncs;
  stats->backend = w->opts.backend;
  if (w->opts.backend == SHK_WATCH_AUTO) {
    size_t best = 0;
    for (int b = 1; b < SHK_WATCH_BACKEND_COUNT; b++) {
      if (stats->regions_by_backend[b] > best) {
        best = stats->regions_by_backend[b];
        stats->backend = (shk_watch_backend)b;
      }
    }
  }
  shk__os_mutex_unlock(&w->lock);
  return SHK_OK;
}

int shk_watch_stats_get(shk_watcher *w, shk_watch_stats *stats) {
  return SHK__DEBUG_RET(SHK__DEBUG_WATCH, watch_stats_get_impl(w, stats));
}

static int watch_fetch_impl(shk_watcher *w, uint64_t key, void *buf, size_t size, size_t *length) {
  if (!w || (!buf && size) || shk__range_wraps(buf, size)) return SHK_EINVAL;
  return shk__watch_store_fetch(&w->store, key, buf, size, length);
}

int shk_watch_fetch(shk_watcher *w, uint64_t key, void *buf, size_t size, size_t *length) {
  return SHK__DEBUG_RET(SHK__DEBUG_WATCH, watch_fetch_impl(w, key, buf, size, length));
}

static int watch_drop_impl(shk_watcher *w, uint64_t key) {
  if (!w) return SHK_EINVAL;
  return shk__watch_store_drop(&w->store, key);
}

int shk_watch_drop(shk_watcher *w, uint64_t key) {
  return SHK__DEBUG_RET(SHK__DEBUG_WATCH, watch_drop_impl(w, key));
}
