/* Shared-memory segments: portable names, size rules, and the list of this process's open
 * segments that lets a pointer be traced back to its segment (zero-copy chunk tasks). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "debug.h"

struct shk_shm {
  shk__os_segment seg;
  char name[SHK_SHM_NAME_MAX + 1]; /* "" when anonymous */
  struct shk_shm *next;            /* in open_segments */
};

static shk_shm *open_segments; /* guarded by SHK__LOCK_SHM_REGISTRY */

/* SHK_DEBUG=shm (registry lock held): a new mapping overlaps no open segment's (the OS never
 * maps twice over live memory: an overlap means a stale entry, whose shk_shm_find answer is
 * wrong). One walk of the list, only with the check on. */
static void debug_check_add(const shk_shm *shm) {
  uintptr_t a = (uintptr_t)shm->seg.addr, b = a + shm->seg.size;
  for (const shk_shm *o = open_segments; o; o = o->next) {
    uintptr_t oa = (uintptr_t)o->seg.addr, ob = oa + o->seg.size;
    if (a < ob && oa < b)
      shk__debug_report(SHK__DEBUG_SHM,
                        "registry inconsistent: segment \"%s\" at %p (%lu B) overlaps open "
                        "segment \"%s\" at %p",
                        shm->name, (void *)a, (unsigned long)shm->seg.size, o->name, (void *)oa);
  }
}

static void registry_add(shk_shm *shm) {
  shk__lock(SHK__LOCK_SHM_REGISTRY);
  if (SHK__UNLIKELY(shk__debug_on(SHK__DEBUG_SHM))) debug_check_add(shm);
  shm->next = open_segments;
  open_segments = shm;
  shk__unlock(SHK__LOCK_SHM_REGISTRY);
}

/* false when shm is not in the list (a handle closed twice, or never opened). */
static bool registry_remove(shk_shm *shm) {
  bool found = false;
  shk__lock(SHK__LOCK_SHM_REGISTRY);
  for (shk_shm **p = &open_segments; *p; p = &(*p)->next) {
    if (*p == shm) {
      *p = shm->next;
      found = true;
      break;
    }
  }
  shk__unlock(SHK__LOCK_SHM_REGISTRY);
  return found;
}

int shk_shm_name_check(const char *name) {
  if (!name) return SHK_EINVAL;
  size_t len = strlen(name);
  if (len == 0 || len > SHK_SHM_NAME_MAX || name[0] == '.') return SHK_ENAME;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    if (!ok) return SHK_ENAME;
  }
  return SHK_OK;
}

/* The page-rounded size, or 0 when it is 0 or cannot be mapped on this system. */
static size_t mappable_size(size_t size) {
  if (size == 0 || size > (size_t)PTRDIFF_MAX) return 0;
  return shk__round_up(size, shk__os_caps_get()->page_size);
}

static int wrap_segment(const shk__os_segment *seg, const char *name, shk_shm **out) {
  shk_shm *shm = shk__calloc(1, sizeof *shm);
  if (!shm) return SHK_ENOMEM;
  shm->seg = *seg;
  if (name) strcpy(shm->name, name);
  registry_add(shm);
  *out = shm;
  return SHK_OK;
}

static int create_segment(const char *name, size_t size, shk_shm **out) {
  if (!out) return SHK_EINVAL;
  *out = NULL;
  size_t mapped = mappable_size(size);
  if (mapped == 0) return SHK_ESIZE;
  char os_name[SHK__OS_SEGMENT_NAME_SIZE];
  if (name) shk__os_segment_name(name, os_name);
  shk__os_segment seg;
  int rc = shk__os_segment_create(name ? os_name : NULL, mapped, &seg);
  if (rc != SHK_OK) return rc;
  rc = wrap_segment(&seg, name, out);
  if (rc != SHK_OK) {
    shk__os_segment_close(&seg);
    if (name) shk__os_segment_unlink(os_name);
  }
  return rc;
}

int shk__shm_create(const char *name, size_t size, shk_shm **out) {
  int rc = shk_shm_name_check(name);
  if (rc != SHK_OK) {
    if (out) *out = NULL;
    return rc;
  }
  return create_segment(name, size, out);
}

int shk_shm_create(const char *name, size_t size, shk_shm **out) {
  return SHK__DEBUG_RET(SHK__DEBUG_SHM, shk__shm_create(name, size, out));
}

static int shm_create_anonymous_impl(size_t size, shk_shm **out) {
  return create_segment(NULL, size, out);
}

int shk_shm_create_anonymous(size_t size, shk_shm **out) {
  return SHK__DEBUG_RET(SHK__DEBUG_SHM, shm_create_anonymous_impl(size, out));
}

int shk__shm_open(const char *name, shk_shm_access access, shk_shm **out) {
  if (!out) return SHK_EINVAL;
  *out = NULL;
  if (access != SHK_SHM_READ_ONLY && access != SHK_SHM_READ_WRITE) return SHK_EINVAL;
  int rc = shk_shm_name_check(name);
  if (rc != SHK_OK) return rc;
  char os_name[SHK__OS_SEGMENT_NAME_SIZE];
  shk__os_segment_name(name, os_name);
  shk__os_segment seg;
  rc = shk__os_segment_open(os_name, access == SHK_SHM_READ_WRITE, &seg);
  if (rc != SHK_OK) return rc;
  rc = wrap_segment(&seg, name, out);
  if (rc != SHK_OK) shk__os_segment_close(&seg);
  return rc;
}

int shk_shm_open(const char *name, shk_shm_access access, shk_shm **out) {
  return SHK__DEBUG_RET(SHK__DEBUG_SHM, shk__shm_open(name, access, out));
}

void *shk_shm_data(const shk_shm *shm) { return shm ? shm->seg.addr : NULL; }

size_t shk_shm_size(const shk_shm *shm) { return shm ? shm->seg.size : 0; }

const char *shk_shm_name(const shk_shm *shm) { return shm && shm->name[0] ? shm->name : NULL; }

bool shk_shm_writable(const shk_shm *shm) { return shm && shm->seg.writable; }

const shk__os_segment *shk__shm_os_segment(const shk_shm *shm) { return &shm->seg; }

int shk__shm_find(const void *ptr, size_t len, shk_shm **out, size_t *offset) {
  if (!ptr || !out || !offset) return SHK_EINVAL;
  if (shk__range_wraps(ptr, len)) return SHK_EINVAL;
  uintptr_t start = (uintptr_t)ptr;
  int rc = SHK_ENOENT;
  shk__lock(SHK__LOCK_SHM_REGISTRY);
  for (shk_shm *s = open_segments; s; s = s->next) {
    uintptr_t base = (uintptr_t)s->seg.addr;
    if (start >= base && start - base < s->seg.size && len <= s->seg.size - (start - base)) {
      *out = s;
      *offset = start - base;
      rc = SHK_OK;
      break;
    }
  }
  shk__unlock(SHK__LOCK_SHM_REGISTRY);
  return rc;
}

int shk_shm_find(const void *ptr, size_t len, shk_shm **out, size_t *offset) {
  return SHK__DEBUG_RET(SHK__DEBUG_SHM, shk__shm_find(ptr, len, out, offset));
}

void shk_shm_close(shk_shm *shm) {
  if (!shm) return;
  /* Under SHK_DEBUG=shm a handle that is not open is reported and left alone (its memory is
   * not read: it may be freed); without it, closing twice is undefined behaviour. */
  if (!registry_remove(shm) && shk__debug_on(SHK__DEBUG_SHM)) {
    char site[1024];
    shk__debug_site(SHK__CALLER(), site, sizeof site);
    shk__debug_report(SHK__DEBUG_SHM,
                      "shk_shm_close of a handle that is not open (%p: closed twice?), called "
                      "from %s; ignored",
                      (void *)shm, site);
    return;
  }
  shk__os_segment_close(&shm->seg);
  free(shm);
}

int shk__shm_unlink(const char *name) {
  int rc = shk_shm_name_check(name);
  if (rc != SHK_OK) return rc;
  char os_name[SHK__OS_SEGMENT_NAME_SIZE];
  shk__os_segment_name(name, os_name);
  return shk__os_segment_unlink(os_name);
}

int shk_shm_unlink(const char *name) {
  return SHK__DEBUG_RET(SHK__DEBUG_SHM, shk__shm_unlink(name));
}
