/* The CUDA device backend (compiled when the CUDA toolkit is found): device copies with
 * cudaMalloc/cudaMemcpy, pinned host memory with cudaHostRegister. CUDA errors become SHK_E*
 * codes here, the raw cudaError_t kept for shk_last_os_error(). */
#include <cuda_runtime_api.h>

#include "common/buf_internal.h"

static int cuda_error(cudaError_t err) {
  int code;
  switch (err) {
    case cudaSuccess: return SHK_OK;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorDevicesUnavailable:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
      code = SHK_ENODEV;
      break;
    case cudaErrorMemoryAllocation:
    case cudaErrorHostMemoryAlreadyRegistered:
      code = err == cudaErrorMemoryAllocation ? SHK_ENOMEM : SHK_ESTATE;
      break;
    case cudaErrorInvalidDevice: code = SHK_ERANGE; break;
    default: code = SHK_EOS; break;
  }
  /* A failed call leaves a sticky "last error" in the runtime; clear it for the next call. */
  (void)cudaGetLastError();
  return shk__error_record_os(code, (int)err);
}

static int cuda_count(int *count) {
  int n = 0;
  int rc = cuda_error(cudaGetDeviceCount(&n));
  if (rc != SHK_OK) return rc;
  *count = n;
  return n > 0 ? SHK_OK : SHK_ENODEV;
}

static int cuda_alloc(int device, size_t size, void **dev) {
  int rc = cuda_error(cudaSetDevice(device));
  if (rc != SHK_OK) return rc;
  return cuda_error(cudaMalloc(dev, size));
}

static void cuda_free(int device, void *dev) {
  if (cudaSetDevice(device) == cudaSuccess) cudaFree(dev);
}

static int cuda_to_device(int device, void *dev, const void *host, size_t size) {
  int rc = cuda_error(cudaSetDevice(device));
  if (rc != SHK_OK) return rc;
  return cuda_error(cudaMemcpy(dev, host, size, cudaMemcpyHostToDevice));
}

static int cuda_from_device(int device, void *host, const void *dev, size_t size) {
  int rc = cuda_error(cudaSetDevice(device));
  if (rc != SHK_OK) return rc;
  return cuda_error(cudaMemcpy(host, dev, size, cudaMemcpyDeviceToHost));
}

static int cuda_pin(int device, void *host, size_t size, void **dev) {
  int rc = cuda_error(cudaSetDevice(device));
  if (rc != SHK_OK) return rc;
  rc = cuda_error(cudaHostRegister(host, size, cudaHostRegisterMapped));
  if (rc != SHK_OK) return rc;
  rc = cuda_error(cudaHostGetDevicePointer(dev, host, 0));
  if (rc != SHK_OK) cudaHostUnregister(host);
  return rc;
}

static void cuda_unpin(int device, void *host) {
  if (cudaSetDevice(device) == cudaSuccess) cudaHostUnregister(host);
}

static const shk__device_ops cuda_ops = {cuda_count,       cuda_alloc, cuda_free, cuda_to_device,
                                         cuda_from_device, cuda_pin,   cuda_unpin};

const shk__device_ops *shk__device_backend(void) { return &cuda_ops; }
