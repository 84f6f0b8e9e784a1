/* The CUDA device backend (compiled when the CUDA toolkit is found): device copies and pinned
 * host memory through the CUDA driver API, which is loaded when a device call first needs it
 * (libcuda.so.1 / nvcuda.dll, installed with the NVIDIA driver; SHK_CUDA_DRIVER names another).
 * Nothing is linked: shmkit loads, and dlopen()s, on machines without CUDA, and there every
 * device call is SHK_ENODEV. Each device's primary context is retained on first use and made
 * current around each call. CUDA errors become SHK_E* codes here, the raw CUresult kept for
 * shk_last_os_error(). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>

#include "common/buf_internal.h"

#ifdef _WIN32
#define DRIVER_LIBRARY "nvcuda.dll"
#else
#define DRIVER_LIBRARY "libcuda.so.1"
#endif

/* The driver functions used, each under its exported (versioned) name below. */
typedef struct driver_api {
  CUresult(CUDAAPI *init)(unsigned int flags);
  CUresult(CUDAAPI *device_count)(int *count);
  CUresult(CUDAAPI *device_get)(CUdevice *device, int ordinal);
  CUresult(CUDAAPI *primary_retain)(CUcontext *context, CUdevice device);
  CUresult(CUDAAPI *push)(CUcontext context);
  CUresult(CUDAAPI *pop)(CUcontext *context);
  CUresult(CUDAAPI *alloc)(CUdeviceptr *ptr, size_t size);
  CUresult(CUDAAPI *free)(CUdeviceptr ptr);
  CUresult(CUDAAPI *to_device)(CUdeviceptr dst, const void *src, size_t size);
  CUresult(CUDAAPI *from_device)(void *dst, CUdeviceptr src, size_t size);
  CUresult(CUDAAPI *host_register)(void *host, size_t size, unsigned int flags);
  CUresult(CUDAAPI *host_unregister)(void *host);
  CUresult(CUDAAPI *host_device_pointer)(CUdeviceptr *ptr, void *host, unsigned int flags);
} driver_api;

static const struct {
  const char *name;
  size_t offset;
} driver_symbols[] = {
    {"cuInit", offsetof(driver_api, init)},
    {"cuDeviceGetCount", offsetof(driver_api, device_count)},
    {"cuDeviceGet", offsetof(driver_api, device_get)},
    {"cuDevicePrimaryCtxRetain", offsetof(driver_api, primary_retain)},
    {"cuCtxPushCurrent_v2", offsetof(driver_api, push)},
    {"cuCtxPopCurrent_v2", offsetof(driver_api, pop)},
    {"cuMemAlloc_v2", offsetof(driver_api, alloc)},
    {"cuMemFree_v2", offsetof(driver_api, free)},
    {"cuMemcpyHtoD_v2", offsetof(driver_api, to_device)},
    {"cuMemcpyDtoH_v2", offsetof(driver_api, from_device)},
    {"cuMemHostRegister_v2", offsetof(driver_api, host_register)},
    {"cuMemHostUnregister", offsetof(driver_api, host_unregister)},
    {"cuMemHostGetDevicePointer_v2", offsetof(driver_api, host_device_pointer)},
};

/* Devices past this ordinal are refused (SHK_ERANGE); machines have a handful. */
#define MAX_DEVICES 64

static shk__once load_once;
static int load_rc; /* the result of loading the driver and cuInit, final after load_once */
static driver_api driver;
static shk__os_mutex contexts_lock;
static CUcontext contexts[MAX_DEVICES]; /* retained primary contexts, guarded by contexts_lock */

static int cuda_error(CUresult err) {
  int code;
  switch (err) {
    case CUDA_SUCCESS: return SHK_OK;
    case CUDA_ERROR_NO_DEVICE:
    case CUDA_ERROR_STUB_LIBRARY:
    case CUDA_ERROR_NOT_INITIALIZED:
    case CUDA_ERROR_DEINITIALIZED:
    case CUDA_ERROR_SYSTEM_NOT_READY:
    case CUDA_ERROR_SYSTEM_DRIVER_MISMATCH:
    case CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE:
    case CUDA_ERROR_DEVICE_UNAVAILABLE:
    case CUDA_ERROR_DEVICE_NOT_LICENSED: code = SHK_ENODEV; break;
    case CUDA_ERROR_OUT_OF_MEMORY: code = SHK_ENOMEM; break;
    case CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED: code = SHK_ESTATE; break;
    case CUDA_ERROR_INVALID_DEVICE: code = SHK_ERANGE; break;
    default: code = SHK_EOS; break;
  }
  return shk__error_record_os(code, (int)err);
}

/* SHK_CUDA_DRIVER, unless empty; ignored in set-user-id programs (glibc's secure_getenv), which
 * must not load code an unprivileged caller names. */
static const char *driver_override(void) {
#ifdef __GLIBC__
  const char *name = secure_getenv("SHK_CUDA_DRIVER");
#else
  const char *name = getenv("SHK_CUDA_DRIVER");
#endif
  return name && *name ? name : NULL;
}

/* A driver without one of the functions is too old to use: no device, as without a driver. */
static int resolve_all(shk__os_library *lib) {
  for (size_t i = 0; i < SHK__ARRAY_LEN(driver_symbols); i++) {
    shk__os_function fn = shk__os_library_function(lib, driver_symbols[i].name);
    if (!fn) return SHK_ENODEV;
    /* Copied, not cast through another pointer type: every function pointer here has the
     * same representation, and the call goes through the field's own, correct type. */
    memcpy((char *)&driver + driver_symbols[i].offset, &fn, sizeof fn);
  }
  return SHK_OK;
}

static void load_driver(void) {
  shk__os_mutex_init(&contexts_lock);
  const char *name = driver_override();
  shk__os_library *lib = NULL;
  /* The default name only from the system's own directory: no planted nvcuda.dll is taken. */
  bool system_only = !name;
  if (shk__os_library_open(name ? name : DRIVER_LIBRARY, system_only, &lib) != SHK_OK) {
    load_rc = SHK_ENODEV;
    return;
  }
  load_rc = resolve_all(lib);
  if (load_rc == SHK_OK) load_rc = cuda_error(driver.init(0));
  /* Kept loaded for the life of the process once usable: its functions are called later. */
  if (load_rc != SHK_OK) shk__os_library_close(lib);
}

static int driver_ready(void) {
  shk__once_run(&load_once, load_driver);
  return load_rc;
}

/* Makes the device's primary context current on this thread; leave() undoes it. */
static int enter(int device) {
  int rc = driver_ready();
  if (rc != SHK_OK) return rc;
  if (device < 0 || device >= MAX_DEVICES) return SHK_ERANGE;
  shk__os_mutex_lock(&contexts_lock);
  if (!contexts[device]) {
    CUdevice handle;
    rc = cuda_error(driver.device_get(&handle, device));
    if (rc == SHK_OK) rc = cuda_error(driver.primary_retain(&contexts[device], handle));
  }
  CUcontext context = contexts[device];
  shk__os_mutex_unlock(&contexts_lock);
  return rc == SHK_OK ? cuda_error(driver.push(context)) : rc;
}

static int leave(int rc) {
  CUcontext popped;
  driver.pop(&popped);
  return rc;
}

static void *host_pointer(CUdeviceptr ptr) { return (void *)(uintptr_t)ptr; }
static CUdeviceptr device_pointer(const void *ptr) { return (CUdeviceptr)(uintptr_t)ptr; }

static int cuda_count(int *count) {
  int rc = driver_ready();
  if (rc != SHK_OK) return rc;
  int n = 0;
  rc = cuda_error(driver.device_count(&n));
  if (rc != SHK_OK) return rc;
  *count = n;
  return n > 0 ? SHK_OK : SHK_ENODEV;
}

static int cuda_alloc(int device, size_t size, void **dev) {
  int rc = enter(device);
  if (rc != SHK_OK) return rc;
  CUdeviceptr ptr = 0;
  rc = cuda_error(driver.alloc(&ptr, size));
  *dev = host_pointer(ptr);
  return leave(rc);
}

static void cuda_free(int device, void *dev) {
  if (enter(device) == SHK_OK) leave(cuda_error(driver.free(device_pointer(dev))));
}

static int cuda_to_device(int device, void *dev, const void *host, size_t size) {
  int rc = enter(device);
  if (rc != SHK_OK) return rc;
  return leave(cuda_error(driver.to_device(device_pointer(dev), host, size)));
}

static int cuda_from_device(int device, void *host, const void *dev, size_t size) {
  int rc = enter(device);
  if (rc != SHK_OK) return rc;
  return leave(cuda_error(driver.from_device(host, device_pointer(dev), size)));
}

static int cuda_pin(int device, void *host, size_t size, void **dev) {
  int rc = enter(device);
  if (rc != SHK_OK) return rc;
  rc = cuda_error(driver.host_register(host, size, CU_MEMHOSTREGISTER_DEVICEMAP));
  if (rc == SHK_OK) {
    CUdeviceptr ptr = 0;
    rc = cuda_error(driver.host_device_pointer(&ptr, host, 0));
    if (rc == SHK_OK) *dev = host_pointer(ptr);
    else driver.host_unregister(host);
  }
  return leave(rc);
}

static void cuda_unpin(int device, void *host) {
  if (enter(device) == SHK_OK) leave(cuda_error(driver.host_unregister(host)));
}

static const shk__device_ops cuda_ops = {cuda_count,       cuda_alloc, cuda_free, cuda_to_device,
                                         cuda_from_device, cuda_pin,   cuda_unpin};

const shk__device_ops *shk__device_backend(void) { return &cuda_ops; }
