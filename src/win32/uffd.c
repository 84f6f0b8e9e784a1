/* Windows has no userfaultfd: the calls of src/os.h say so. */
#include "win32.h"

bool shk__os_uffd_probe(bool *async) {
  *async = false;
  return false;
}

int shk__os_uffd_open(bool sync, shk__os_uffd **out) {
  (void)sync;
  *out = NULL;
  return SHK_EUNSUPPORTED;
}

void shk__os_uffd_close(shk__os_uffd *u) { (void)u; }

int shk__os_uffd_add(shk__os_uffd *u, void *addr, size_t size) {
  (void)u, (void)addr, (void)size;
  return SHK_EUNSUPPORTED;
}

void shk__os_uffd_remove(shk__os_uffd *u, void *addr, size_t size) {
  (void)u, (void)addr, (void)size;
}

int shk__os_uffd_scan(shk__os_uffd *u, void *addr, size_t size, shk__os_dirty_fn fn, void *ctx) {
  (void)u, (void)addr, (void)size, (void)fn, (void)ctx;
  return SHK_EUNSUPPORTED;
}

int shk__os_uffd_next(shk__os_uffd *u, int timeout_ms, uintptr_t *addr, uint64_t *tid) {
  (void)u, (void)timeout_ms, (void)addr, (void)tid;
  return SHK_EUNSUPPORTED;
}

int shk__os_uffd_protect(shk__os_uffd *u, void *addr, size_t size, bool on) {
  (void)u, (void)addr, (void)size, (void)on;
  return SHK_EUNSUPPORTED;
}
