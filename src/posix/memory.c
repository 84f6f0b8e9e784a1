/* POSIX pages: anonymous mmap, mprotect for the watcher, and reads that cannot fault. */
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

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

int shk__os_memory_peek(const void *addr, void *buf, size_t n) {
  if (n == 0) return SHK_OK;
#ifdef __linux__
  struct iovec local = {buf, n}, remote = {(void *)(uintptr_t)addr, n};
  ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  if (got == (ssize_t)n) return SHK_OK;
  if (got >= 0 || errno == EFAULT) return shk__error_record_os(SHK_EFAULT, got >= 0 ? EFAULT : errno);
  if (errno != ENOSYS && errno != EPERM) return posix_error(errno);
#endif
  /* The kernel reads the bytes on write() and says EFAULT where it cannot. */
  int p[2];
  if (pipe(p) != 0) return posix_error(errno);
  int rc = SHK_OK;
  size_t done = 0;
  while (rc == SHK_OK && done < n) {
    size_t step = n - done < 512 ? n - done : 512; /* within the pipe's buffer */
    ssize_t w = write(p[1], (const char *)addr + done, step);
    if (w <= 0) {
      rc = w < 0 && errno == EFAULT ? shk__error_record_os(SHK_EFAULT, EFAULT) : posix_error(errno);
      break;
    }
    if (read(p[0], (char *)buf + done, (size_t)w) != w) rc = posix_error(errno);
    done += (size_t)w;
  }
  close(p[0]);
  close(p[1]);
  return rc;
}
