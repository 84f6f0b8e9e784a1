/* POSIX pages: anonymous mmap, and mprotect for the watcher. */
#include <sys/mman.h>

#include "posix.h"

int shk__os_pages_alloc(size_t size, bool write_watch, void **out) {
  (void)write_watch; /* no such facility: the watcher uses protection or userfaultfd instead */
  *out = NULL;
  if (size == 0 || size > (size_t)PTRDIFF_MAX) return SHK_ESIZE;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return posix_error(errno);
  *out = p;
  return SHK_OK;
}

void shk__os_pages_free(void *addr, size_t size) {
  if (addr) munmap(addr, size);
}

int shk__os_protect(void *addr, size_t size, shk__os_prot prot) {
  int p = prot == SHK__OS_PROT_NONE ? PROT_NONE
          : prot == SHK__OS_PROT_READ ? PROT_READ
                                      : PROT_READ | PROT_WRITE;
  /* errno is saved and restored: this may run inside a signal handler. */
  int saved = errno;
  int rc = mprotect(addr, size, p) == 0 ? SHK_OK : (errno == ENOMEM ? SHK_ENOMEM : SHK_EINVAL);
  errno = saved;
  return rc;
}
