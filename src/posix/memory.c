/* POSIX pages: anonymous mmap, mprotect for the watcher, reads that cannot fault, and what
 * pages allow now (Linux: PROCMAP_QUERY on /proc/self/maps, or the file's text where the kernel
 * is older than 6.11). */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "posix.h"

#ifdef __linux__
#include <sys/ioctl.h>
#endif

int shk__os_pages_alloc(size_t size, bool write_watch, void **out) {
  (void)write_watch; /* no such facility: the watcher uses protection or userfaultfd instead */
  *out = NULL;
  if (size == 0 || size > (size_t)PTRDIFF_MAX) return SHK_ESIZE;
  void *p = POSIX_FAULTABLE(SHK__FAULT_PAGES_ALLOC, MAP_FAILED,
                            mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                 -1, 0));
  if (p == MAP_FAILED) return posix_error(errno);
  *out = p;
  return SHK_OK;
}

void shk__os_pages_free(void *addr, size_t size) {
  if (addr) munmap(addr, size);
}

int shk__os_protect(void *addr, size_t size, int prot) {
  int p = ((prot & SHK__OS_PROT_READ) ? PROT_READ : 0) |
          ((prot & SHK__OS_PROT_WRITE) ? PROT_WRITE : 0) |
          ((prot & SHK__OS_PROT_EXEC) ? PROT_EXEC : 0);
  /* errno is saved and restored: this runs inside signal handlers. posix_error is a switch and
   * a thread-local store (error.c), both async-signal-safe; every errno keeps its own code (an
   * EIO was once reported as SHK_EINVAL, without the raw code). */
  int saved = errno;
  int r;
  if (posix_fault(SHK__FAULT_PROTECT_PARTIAL)) {
    /* A failure after a part of the range changed, as a real one over several areas can. */
    int err = errno;
    size_t first = shk__os_caps_get()->page_size;
    (void)mprotect(addr, size < first ? size : first, p);
    errno = err;
    r = -1;
  } else {
    r = POSIX_FAULTABLE(SHK__FAULT_PROTECT, -1, mprotect(addr, size, p));
  }
  int rc = r == 0 ? SHK_OK : posix_error(errno);
  errno = saved;
  return rc;
}

int shk__os_memory_peek(const void *addr, void *buf, size_t n) {
  if (n == 0) return SHK_OK;
#ifdef __linux__
  struct iovec local = {buf, n}, remote = {(void *)(uintptr_t)addr, n};
  ssize_t got = POSIX_FAULTABLE(SHK__FAULT_MEMORY_READ, -1,
                                process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
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

#ifdef __linux__

/* Folds one mapping's flags into the answer for a range. */
static void fold(int flags, bool *first, int *prot, bool *uniform) {
  if (*first) {
    *prot = flags;
    *first = false;
  } else {
    if (flags != *prot) *uniform = false;
    *prot &= flags;
  }
}

/* Linux 6.11 uapi (include/uapi/linux/fs.h), for older build headers. */
struct shk_procmap_query {
  uint64_t size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size,
      vma_offset, inode;
  uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
  uint64_t vma_name_addr, build_id_addr;
};
#define SHK_PROCMAP_QUERY _IOWR('f', 17, struct shk_procmap_query)

/* The query by ioctl, one call per mapping the range crosses. SHK_EUNSUPPORTED when the kernel
 * has no PROCMAP_QUERY. */
static int query_ioctl(int fd, uintptr_t start, uintptr_t end, int *prot, bool *uniform) {
  bool first = true;
  for (uintptr_t at = start; at < end;) {
    struct shk_procmap_query q = {0};
    q.size = sizeof q;
    q.query_addr = at;
    if (POSIX_FAULTABLE(SHK__FAULT_MAPS_QUERY, -1, ioctl(fd, SHK_PROCMAP_QUERY, &q)) != 0)
      return errno == ENOENT ? SHK_EFAULT : SHK_EUNSUPPORTED; /* ENOTTY: an older kernel */
    if (q.vma_start > at) return SHK_EFAULT;
    fold((int)(q.vma_flags & 7), &first, prot, uniform); /* r=1 w=2 x=4, as ours */
    at = (uintptr_t)q.vma_end;
  }
  return SHK_OK;
}

static uintptr_t parse_hex(const char **p, const char *end) {
  uintptr_t v = 0;
  for (; *p < end; (*p)++) {
    char c = **p;
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) break;
    v = v * 16 + (uintptr_t)d;
  }
  return v;
}

/* One line of the text ("start-end rwxp ..."; only its start is read) folded into the answer
 * for [*covered, end): 1 to read on, SHK_OK when the range is covered, SHK_EFAULT at a hole. */
static int take_line(const char *p, const char *e, uintptr_t end, uintptr_t *covered,
                     bool *first, int *prot, bool *uniform) {
  uintptr_t lo = parse_hex(&p, e);
  if (p < e && *p == '-') p++;
  uintptr_t hi = parse_hex(&p, e);
  if (p + 4 >= e) return 1;
  p++;
  int flags = (p[0] == 'r' ? SHK__OS_PROT_READ : 0) | (p[1] == 'w' ? SHK__OS_PROT_WRITE : 0) |
              (p[2] == 'x' ? SHK__OS_PROT_EXEC : 0);
  if (hi <= *covered) return 1;
  if (lo > *covered) return SHK_EFAULT; /* a hole before the next mapping */
  fold(flags, first, prot, uniform);
  *covered = hi;
  return *covered >= end ? SHK_OK : 1;
}

/* The query by reading the text, in a fixed buffer: lines are short enough up to the
 * permissions, and the rest of a long line (a long path) is skipped. */
static int query_text(int fd, uintptr_t start, uintptr_t end, int *prot, bool *uniform) {
  char buf[4096];
  size_t have = 0;
  bool first = true, skipping = false;
  uintptr_t covered = start;
  for (;;) {
    ssize_t n = read(fd, buf + have, sizeof buf - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SHK_EUNSUPPORTED;
    have += (size_t)n;
    size_t used = 0;
    for (;;) {
      char *nl = memchr(buf + used, '\n', have - used);
      if (!nl) break;
      const char *p = buf + used;
      used = (size_t)(nl - buf) + 1;
      if (skipping) {
        skipping = false;
        continue;
      }
      int rc = take_line(p, nl, end, &covered, &first, prot, uniform);
      if (rc != 1) return rc;
    }
    if (used == 0 && have == sizeof buf && !skipping) {
      /* A line longer than the buffer: its start is read here, its rest skipped. (Before, the
       * whole line was skipped, and its mapping seen as a hole.) */
      int rc = take_line(buf, buf + have, end, &covered, &first, prot, uniform);
      if (rc != 1) return rc;
      skipping = true;
    }
    if (used == 0 && have == sizeof buf) used = have; /* (still) inside the long line */
    memmove(buf, buf + used, have - used);
    have -= used;
    if (n == 0) return SHK_EFAULT; /* the end of the maps, before the end of the range */
  }
}

/* A descriptor of /proc/self/maps kept for the ioctl, which has no file position to share: it
 * saves an open and a close per query. It names the process that opened it, so a forked child
 * opens its own (the parent's stays open in the child, unused: closing it could pull it from
 * under a thread of the child that is using it). */
static atomic_int maps_fd = -1;
static atomic_int maps_pid;

static int maps_cached(void) {
  int pid = (int)getpid();
  int fd = atomic_load(&maps_fd);
  if (fd >= 0 && atomic_load(&maps_pid) == pid) return fd;
  fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int seen = atomic_load(&maps_fd);
  if (atomic_compare_exchange_strong(&maps_fd, &seen, fd)) {
    atomic_store(&maps_pid, pid);
    return fd;
  }
  close(fd); /* another thread cached one meanwhile */
  fd = atomic_load(&maps_fd);
  return atomic_load(&maps_pid) == pid ? fd : -1;
}

int shk__os_prot_query(void *addr, size_t size, int *prot, bool *uniform) {
  *prot = SHK__OS_PROT_NONE;
  *uniform = true;
  uintptr_t start = (uintptr_t)addr, end = start + size;
  if (size == 0 || end < start) return SHK_EINVAL;
  int saved = errno;
  int rc = SHK_EUNSUPPORTED, fd = maps_cached();
  if (fd >= 0) rc = query_ioctl(fd, start, end, prot, uniform);
  if (rc == SHK_EUNSUPPORTED) {
    /* An older kernel: the text, through a descriptor of our own (it has a position). */
    *prot = SHK__OS_PROT_NONE;
    *uniform = true;
    fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      rc = query_text(fd, start, end, prot, uniform);
      close(fd);
    }
  }
  errno = saved;
  return rc;
}

#else

/* No way to read protection here: mapped-ness from msync (ENOMEM on unmapped pages), and the
 * answer "read-write" (callers document this assumption). */
int shk__os_prot_query(void *addr, size_t size, int *prot, bool *uniform) {
  *prot = SHK__OS_PROT_READ_WRITE;
  *uniform = true;
  int saved = errno;
  int rc = msync(addr, size, MS_ASYNC) == 0 ? SHK_OK : errno == ENOMEM ? SHK_EFAULT : SHK_EUNSUPPORTED;
  errno = saved;
  return rc;
}

#endif
