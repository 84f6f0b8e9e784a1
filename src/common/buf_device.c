/* Device mapping of buffers: argument checks and the mapped / not-mapped state (so map, unmap,
 * map again works), over a backend table from src/device/ (CUDA, or none). Partial updates take
 * (start, length); the Perl original passed (start, end) where a length was meant. */
#include "buf_internal.h"

static _Atomic(const shk__device_ops *) injected;

void shk__device_set_ops(const shk__device_ops *ops) { atomic_store(&injected, ops); }

static const shk__device_ops *ops_now(void) {
  const shk__device_ops *ops = atomic_load(&injected);
  return ops ? ops : shk__device_backend();
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
  if (buf->device.mode != 0) return SHK_ESTATE;
  const shk__device_ops *ops = ops_now();
  int n = 0;
  int rc = ops->count(&n);
  if (rc != SHK_OK) return rc;
  if (device < 0 || device >= n) return SHK_ERANGE;
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
  if (rc != SHK_OK) return rc;
  buf->device.mode = (int)mode;
  buf->end_way = SHK__BUF_END_GENERAL; /* its release must unmap it */
  buf->device.device = device;
  buf->device.ptr = dev;
  buf->device.ops = ops;
  return SHK_OK;
}

int shk_buf_device_map(shk_buf *buf, int device, shk_buf_device_mode mode) {
  SHK__BUF_CHECK(buf, SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL));
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_device_map_impl(buf, device, mode));
}

static int buf_device_update_impl(shk_buf *buf, shk_buf_device_dir dir, size_t start, size_t length) {
  if (!buf || dir < SHK_BUF_TO_DEVICE || dir > SHK_BUF_BOTH) return SHK_EINVAL;
  if (buf->device.mode == 0) return SHK_ESTATE;
  if (start > buf->size || length > buf->size - start) return SHK_ERANGE;
  if (buf->device.mode == SHK_BUF_DEVICE_PINNED || length == 0) return SHK_OK;
  const shk__device_ops *ops = buf->device.ops;
  unsigned char *host = (unsigned char *)buf->data + start;
  unsigned char *dev = (unsigned char *)buf->device.ptr + start;
  int rc = SHK_OK;
  if (dir & SHK_BUF_TO_DEVICE) rc = ops->to_device(buf->device.device, dev, host, length);
  if (rc == SHK_OK && (dir & SHK_BUF_FROM_DEVICE))
    rc = ops->from_device(buf->device.device, host, dev, length);
  return rc;
}

int shk_buf_device_update(shk_buf *buf, shk_buf_device_dir dir, size_t start, size_t length) {
  SHK__BUF_CHECK(buf, SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL));
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_device_update_impl(buf, dir, start, length));
}

static int buf_device_unmap_impl(shk_buf *buf) {
  if (!buf) return SHK_EINVAL;
  if (buf->device.mode == 0) return SHK_ESTATE;
  shk__buf_device_drop(buf);
  return SHK_OK;
}

int shk_buf_device_unmap(shk_buf *buf) {
  SHK__BUF_CHECK(buf, SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL));
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_device_unmap_impl(buf));
}

void shk__buf_device_drop(shk_buf *buf) {
  shk__buf_device *d = &buf->device;
  if (d->mode == SHK_BUF_DEVICE_PINNED) d->ops->unpin(d->device, buf->data);
  else if (d->mode == SHK_BUF_DEVICE_COPY) d->ops->free(d->device, d->ptr);
  d->mode = 0;
  d->ptr = NULL;
  d->ops = NULL;
}

bool shk_buf_device_mapped(const shk_buf *buf) { return buf && buf->device.mode != 0; }

static int buf_device_pointer_impl(const shk_buf *buf, void **ptr) {
  if (!buf || !ptr) return SHK_EINVAL;
  *ptr = NULL;
  if (buf->device.mode == 0) return SHK_ESTATE;
  *ptr = buf->device.ptr;
  return SHK_OK;
}

int shk_buf_device_pointer(const shk_buf *buf, void **ptr) {
  SHK__BUF_CHECK(buf, SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL));
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_device_pointer_impl(buf, ptr));
}
