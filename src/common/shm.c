/* Shared-memory segments: portable names, size rules, and the list of this process's open
 * segments that lets a pointer be traced back to its segment (zero-copy chunk tasks). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct shk_shm {
  shk__os_segment seg;
  char name[SHK_SHM_NAME_MAX + 1]; /* "" when anonymous */
  struct shk_shm *next;            /* in open_segments */
};

static shk_shm *open_segments; /* guarded by SHK__LOCK_SHM_REGISTRY */

static void registry_add(shk_shm *shm) {
  shk__lock(SHK__LOCK_SHM_REGISTRY);
  shm->next = open_segments;
  open_segments = shm;
  shk__unlock(SHK__LOCK_SHM_REGISTRY);
}

static void registry_remove(shk_shm *shm) {
  shk__lock(SHK__LOCK_SHM_REGISTRY);
  for (shk_shm **p = &open_segments; *p; p = &(*p)->next) {
    if (*p == shm) {
      *p = shm->next;
      break;
    }
  }
  shk__unlock(SHK__LOCK_SHM_REGISTRY);
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
  shk_shm *shm = calloc(1, sizeof *shm);
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

int shk_shm_create(const char *name, size_t size, shk_shm **out) {
  int rc = shk_shm_name_check(name);
  if (rc != SHK_OK) {
    if (out) *out = NULL;
    return rc;
  }
  return create_segment(name, size, out);
}

int shk_shm_create_anonymous(size_t size, shk_shm **out) { return create_segment(NULL, size, out); }

int shk_shm_open(const char *name, shk_shm_access access, shk_shm **out) {
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

void *shk_shm_data(const shk_shm *shm) { return shm ? shm->seg.addr : NULL; }

size_t shk_shm_size(const shk_shm *shm) { return shm ? shm->seg.size : 0; }

const char *shk_shm_name(const shk_shm *shm) { return shm && shm->name[0] ? shm->name : NULL; }

bool shk_shm_writable(const shk_shm *shm) { return shm && shm->seg.writable; }

const shk__os_segment *shk__shm_os_segment(const shk_shm *shm) { return &shm->seg; }

int shk_shm_find(const void *ptr, size_t len, shk_shm **out, size_t *offset) {
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

void shk_shm_close(shk_shm *shm) {
  if (!shm) return;
  registry_remove(shm);
  shk__os_segment_close(&shm->seg);
  free(shm);
}

int shk_shm_unlink(const char *name) {
  int rc = shk_shm_name_check(name);
  if (rc != SHK_OK) return rc;
  char os_name[SHK__OS_SEGMENT_NAME_SIZE];
  shk__os_segment_name(name, os_name);
  return shk__os_segment_unlink(os_name);
}
