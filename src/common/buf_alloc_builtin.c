/* The built-in allocators: heap (malloc), aligned (over-allocation, so no OS difference),
 * pages (whole pages from the OS layer, write-watchable on Windows) and shm (named segments). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf_internal.h"

/* ---- heap ---- */

static int heap_alloc(void *user, const shk_buf_alloc_request *req, shk_buf_block *out) {
  (void)user;
  out->ptr = req->zero ? shk__calloc(1, req->size) : shk__malloc(req->size);
  out->zeroed = req->zero;
  return out->ptr ? SHK_OK : SHK_ENOMEM;
}

static void heap_free(void *user, const shk_buf_block *block, size_t size) {
  (void)user;
  (void)size;
  free(block->ptr);
}

const shk_buf_allocator shk__buf_heap_allocator = {SHK_BUF_ALLOCATOR_VERSION, heap_alloc,
                                                   heap_free, NULL, NULL, NULL};

/* ---- aligned: the raw malloc pointer is the block state ---- */

static int aligned_alloc_block(void *user, const shk_buf_alloc_request *req, shk_buf_block *out) {
  (void)user;
  size_t align = req->alignment ? req->alignment : SHK__BUF_ALIGNED_DEFAULT;
  if ((align & (align - 1)) != 0) return SHK_EINVAL;
  if (req->size > SIZE_MAX - align) return SHK_EOVERFLOW;
  unsigned char *raw = req->zero ? shk__calloc(1, req->size + align) : shk__malloc(req->size + align);
  if (!raw) return SHK_ENOMEM;
  uintptr_t p = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
  out->ptr = raw + (p - (uintptr_t)raw);
  out->state = raw;
  out->zeroed = req->zero;
  return SHK_OK;
}

static void aligned_free(void *user, const shk_buf_block *block, size_t size) {
  (void)user;
  (void)size;
  /* A consumed block handed over with ownership has no raw pointer: it is the malloc result. */
  free(block->state ? block->state : block->ptr);
}

const shk_buf_allocator shk__buf_aligned_allocator = {SHK_BUF_ALLOCATOR_VERSION,
                                                      aligned_alloc_block, aligned_free, NULL,
                                                      NULL, NULL};

/* ---- pages ---- */

static size_t page_rounded(size_t size) {
  return shk__round_up(size, shk__os_caps_get()->page_size);
}

static int pages_alloc(void *user, const shk_buf_alloc_request *req, shk_buf_block *out) {
  (void)user;
  size_t rounded = page_rounded(req->size);
  if (rounded == 0) return SHK_EOVERFLOW;
  /* write_watch: on Windows the write-watch backend of the watcher can then track them. */
  int rc = shk__os_pages_alloc(rounded, true, &out->ptr);
  out->zeroed = true;
  return rc;
}

static void pages_free(void *user, const shk_buf_block *block, size_t size) {
  (void)user;
  shk__os_pages_free(block->ptr, page_rounded(size));
}

static int pages_consume(void *user, void *ptr, size_t size, bool owned, shk_buf_block *out) {
  (void)user;
  (void)out;
  (void)owned;
  (void)size;
  size_t page = shk__os_caps_get()->page_size;
  /* Only whole pages can later be freed or watched as such. */
  return ((uintptr_t)ptr & (page - 1)) == 0 ? SHK_OK : SHK_EINVAL;
}

const shk_buf_allocator shk__buf_pages_allocator = {SHK_BUF_ALLOCATOR_VERSION, pages_alloc,
                                                    pages_free, pages_consume, NULL, NULL};

/* ---- shm: the block state is the shk_shm handle of a segment this buffer created ---- */

static int shm_alloc(void *user, const shk_buf_alloc_request *req, shk_buf_block *out) {
  (void)user;
  char generated[SHK_SHM_NAME_MAX + 1];
  const char *name = req->name;
  if (!name) {
    shk__shm_generate_name("shkb-", generated);
    name = generated;
  }
  shk_shm *shm = NULL;
  int rc = shk__shm_create(name, req->size, &shm);
  if (rc != SHK_OK) return rc;
  out->ptr = shk_shm_data(shm);
  out->state = shm;
  out->zeroed = true;
  return SHK_OK;
}

static void shm_free(void *user, const shk_buf_block *block, size_t size) {
  (void)user;
  (void)size;
  shk_shm *shm = block->state;
  if (!shm) return;
  char name[SHK_SHM_NAME_MAX + 1];
  strcpy(name, shk_shm_name(shm));
  shk_shm_close(shm);
  shk__shm_unlink(name);
}

static int shm_consume(void *user, void *ptr, size_t size, bool owned, shk_buf_block *out) {
  (void)user;
  (void)out;
  /* The segment belongs to whoever opened it: a buffer can wrap part of it, never free it. */
  if (owned) return SHK_EUNSUPPORTED;
  shk_shm *shm = NULL;
  size_t offset = 0;
  return shk__shm_find(ptr, size, &shm, &offset) == SHK_OK ? SHK_OK : SHK_EINVAL;
}

const shk_buf_allocator shk__buf_shm_allocator = {SHK_BUF_ALLOCATOR_VERSION, shm_alloc, shm_free,
                                                  shm_consume, NULL, NULL};

const char *shk__buf_shm_block_name(const shk_buf_block *block) {
  return block->state ? shk_shm_name(block->state) : NULL;
}
