/* Device mapping of buffers: argument checks and the mapped / not-mapped state (so map, unmap,
 * map again works), over a backend table from src/device/ (CUDA, or none). Partial updates take
 * (start, length); the Perl original passed (start, end) where a length was meant. */
#include <stdlib.h>

#include "buf_internal.h"

static _Atomic(const shk__device_ops *) injected;

void shk__device_set_ops(const shk__device_ops *ops) { atomic_store(&injected, ops); }

static const shk__device_ops *ops_now(void) {
  const shk__device_ops *ops = atomic_load(&injected);
  return ops ? ops : shk__device_backend();
}

/* A buffer's mapping; an unmapped one for a buffer with no rare block. */
static const shk__buf_device unmapped;

static const shk__buf_device *device_of(const shk_buf *buf) {
  return buf->rare ? &buf->rare->device : &unmapped;
}

static int buf_device_count_impl(int *count) {
  if (!count) return SHK_EINVAL;
  *count = 0;
  return ops_now()->count(count);
}

int shk_buf_device_count(int *count) {
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_device_count_impl(count));
}

static int buf_device_map_impl(shk_buf *buf, int device, shk_buf_device_mode mode) {
  if (!buf || (mode != SHK_BUF_DEVICE_COPY && mode != SHK_BUF_DEVICE_PINNED)) return SHK_EINVAL;
  if (device_of(buf)->mode != 0) return SHK_ESTATE;
  const shk__device_ops *ops = ops_now();
  int n = 0;
  int rc = ops->count(&n);
  if (rc != SHK_OK) return rc;
  if (device < 0 || device >= n) return SHK_ERANGE;
  /* The mapping's place, made before the device is touched, so that without memory for it
   * nothing changes; attached only once the mapping is made. */
  shk__buf_rare *fresh = NULL;
  if (!buf->rare && !(fresh = shk__buf_rare_new(NULL))) return SHK_ENOMEM;
  void *dev = NULL;
  if (mode == SHK_BUF_DEVICE_PINNED) {
    rc = ops->pin(device, buf->data, buf->size, &dev);
  } else {
    rc = ops->alloc(device, buf->size, &dev);
    if (rc == SHK_OK) {
      rc = ops->to_device(device, dev, buf->data, buf->size);
      if (rc != SHK_OK) ops->free(device, dev);
    }
  }
  if (rc != SHK_OK) {
    free(fresh);
    return rc;
  }
  if (fresh) buf->rare = fresh;
  buf->end_way = SHK__BUF_END_GENERAL; /* its release must unmap it */
  buf->rare->device = (shk__buf_device){(int)mode, device, dev, ops};
  return SHK_OK;
}

int shk_buf_device_map(shk_buf *buf, int device, shk_buf_device_mode mode) {
  SHK__BUF_CHECK(buf, SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL));
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_device_map_impl(buf, device, mode));
}

static int buf_device_update_impl(shk_buf *buf, shk_buf_device_dir dir, size_t start, size_t length) {
  if (!buf || dir < SHK_BUF_TO_DEVICE || dir > SHK_BUF_BOTH) return SHK_EINVAL;
  const shk__buf_device *d = device_of(buf);
  if (d->mode == 0) return SHK_ESTATE;
  if (start > buf->size || length > buf->size - start) return SHK_ERANGE;
  if (d->mode == SHK_BUF_DEVICE_PINNED || length == 0) return SHK_OK;
  unsigned char *host = (unsigned char *)buf->data + start;
  unsigned char *dev = (unsigned char *)d->ptr + start;
  int rc = SHK_OK;
  if (dir & SHK_BUF_TO_DEVICE) rc = d->ops->to_device(d->device, dev, host, length);
  if (rc == SHK_OK && (dir & SHK_BUF_FROM_DEVICE))
    rc = d->ops->from_device(d->device, host, dev, length);
  return rc;
}

int shk_buf_device_update(shk_buf *buf, shk_buf_device_dir dir, size_t start, size_t length) {
  SHK__BUF_CHECK(buf, SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL));
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_device_update_impl(buf, dir, start, length));
}

static int buf_device_unmap_impl(shk_buf *buf) {
  if (!buf) return SHK_EINVAL;
  if (device_of(buf)->mode == 0) return SHK_ESTATE;
  shk__buf_device_drop(buf);
  shk__buf_rare_trim(buf); /* made for the mapping alone: it goes with it */
  return SHK_OK;
}

int shk_buf_device_unmap(shk_buf *buf) {
  SHK__BUF_CHECK(buf, SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL));
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_device_unmap_impl(buf));
}

void shk__buf_device_drop(shk_buf *buf) {
  shk__buf_device *d = &buf->rare->device;
  if (d->mode == SHK_BUF_DEVICE_PINNED) d->ops->unpin(d->device, buf->data);
  else if (d->mode == SHK_BUF_DEVICE_COPY) d->ops->free(d->device, d->ptr);
  d->mode = 0;
  d->ptr = NULL;
  d->ops = NULL;
}

bool shk_buf_device_mapped(const shk_buf *buf) { return buf && device_of(buf)->mode != 0; }

static int buf_device_pointer_impl(const shk_buf *buf, void **ptr) {
  if (!buf || !ptr) return SHK_EINVAL;
  *ptr = NULL;
  const shk__buf_device *d = device_of(buf);
  if (d->mode == 0) return SHK_ESTATE;
  *ptr = d->ptr;
  return SHK_OK;
}

int shk_buf_device_pointer(const shk_buf *buf, void **ptr) {
  SHK__BUF_CHECK(buf, SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL));
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_device_pointer_impl(buf, ptr));
}
