/* POSIX has no GetWriteWatch: the write-watch calls of src/os.h say so. */
#include "posix.h"

bool shk__os_write_watch_covers(void *addr, size_t size) {
  (void)addr;
  (void)size;
  return false;
}

int shk__os_write_watch_scan(void *addr, size_t size, shk__os_dirty_fn fn, void *ctx) {
  (void)addr;
  (void)size;
  (void)fn;
  (void)ctx;
  return SHK_EUNSUPPORTED;
}
