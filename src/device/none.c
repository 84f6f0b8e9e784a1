/* The device backend of builds without CUDA: there is never a device, so every device call of
 * shk_buf_device_*() ends with SHK_ENODEV. */
#include "common/buf_internal.h"

static int none_count(int *count) {
  *count = 0;
  return SHK_ENODEV;
}

static int none_alloc(int device, size_t size, void **dev) {
  (void)device;
  (void)size;
  *dev = NULL;
  return SHK_ENODEV;
}

static void none_free(int device, void *dev) {
  (void)device;
  (void)dev;
}

static int none_copy(int device, void *dst, const void *src, size_t size) {
  (void)device;
  (void)dst;
  (void)src;
  (void)size;
  return SHK_ENODEV;
}

static int none_pin(int device, void *host, size_t size, void **dev) {
  (void)host;
  return none_alloc(device, size, dev);
}

static void none_unpin(int device, void *host) {
  (void)device;
  (void)host;
}

static const shk__device_ops none_ops = {none_count, none_alloc, none_free, none_copy,
                                         none_copy,  none_pin,   none_unpin};

const shk__device_ops *shk__device_backend(void) { return &none_ops; }
