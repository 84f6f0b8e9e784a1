/* Linux userfaultfd write-protect in async mode: the kernel resolves write faults by itself and
 * marks the page written, PAGEMAP_SCAN on /proc/self/pagemap reports written pages and
 * protects them again in the same call. Detected at run time; constants newer than the build's
 * kernel headers are defined here, and other systems get a clean SHK_EUNSUPPORTED. */
#include <stdlib.h>
#include <string.h>

#include "posix.h"

#if defined(__linux__) && __has_include(<linux/userfaultfd.h>)
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#define SHK_HAVE_UFFD 1
#endif

#if defined(SHK_HAVE_UFFD) && defined(SYS_userfaultfd)

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_THREAD_ID
#define UFFD_FEATURE_THREAD_ID (1 << 8)
#endif
#ifndef UFFD_FEATURE_EXACT_ADDRESS
#define UFFD_FEATURE_EXACT_ADDRESS (1 << 11)
#endif

#ifndef PAGEMAP_SCAN
/* Linux 6.7 uapi (include/uapi/linux/fs.h). */
#define PAGE_IS_WRITTEN (1 << 1)
struct page_region {
  __u64 start;
  __u64 end;
  __u64 categories;
};
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
struct pm_scan_arg {
  __u64 size;
  __u64 flags;
  __u64 start;
  __u64 end;
  __u64 walk_end;
  __u64 vec;
  __u64 vec_len;
  __u64 max_pages;
  __u64 category_inverted;
  __u64 category_mask;
  __u64 category_anyof_mask;
  __u64 return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

struct shk__os_uffd {
  int fd;
  int pagemap;     /* async mode only */
  bool sync;
  bool thread_id;  /* sync messages carry the writer's thread id */
  bool unpopulated; /* the kernel protects pages never touched; else they are touched first */
  size_t page_size;
};

static int uffd_fd(void) {
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  /* vm.unprivileged_userfaultfd=0 still allows faults from user mode only. */
  if (fd < 0 && errno == EPERM)
    fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  return fd;
}

/* Performs the API handshake asking for `features`; false when refused. */
static bool handshake(int fd, __u64 features, __u64 *have) {
  struct uffdio_api api;
  memset(&api, 0, sizeof api);
  api.api = UFFD_API;
  api.features = features;
  if (ioctl(fd, UFFDIO_API, &api) != 0) return false;
  if (have) *have = api.features;
  return true;
}

static bool pagemap_scan_works(int pagemap) {
  static char probe_page[1];
  long ps = sysconf(_SC_PAGESIZE);
  uintptr_t page = (uintptr_t)probe_page & ~(uintptr_t)(ps - 1);
  struct page_region vec[1];
  struct pm_scan_arg a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.start = page;
  a.end = page + (uintptr_t)ps;
  a.vec = (uintptr_t)vec;
  a.vec_len = 1;
  a.category_mask = PAGE_IS_WRITTEN;
  a.return_mask = PAGE_IS_WRITTEN;
  return ioctl(pagemap, PAGEMAP_SCAN, &a) >= 0;
}

bool shk__os_uffd_probe(bool *async) {
  *async = false;
  int fd = uffd_fd();
  if (fd < 0) return false;
  __u64 have = 0;
  bool ok = handshake(fd, 0, &have) && (have & UFFD_FEATURE_PAGEFAULT_FLAG_WP);
  close(fd);
  if (ok && (have & UFFD_FEATURE_WP_ASYNC)) {
    int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pm >= 0) {
      *async = pagemap_scan_works(pm);
      close(pm);
    }
  }
  return ok;
}

/* Opens a descriptor and performs the handshake with `want`, plus WP_UNPOPULATED, and for sync
 * mode THREAD_ID and EXACT_ADDRESS, when the kernel has them (a refused handshake leaves a descriptor unusable, so each try
 * starts over). */
static int open_with(shk__os_uffd *u, __u64 want) {
  int fd = uffd_fd();
  if (fd < 0) return posix_error(errno);
  __u64 have = 0;
  bool ok = handshake(fd, 0, &have);
  close(fd);
  if (!ok || (have & want) != want) return shk__error_record_os(SHK_EUNSUPPORTED, ENOTSUP);
  __u64 extra = have & (UFFD_FEATURE_WP_UNPOPULATED |
                        (u->sync ? UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_EXACT_ADDRESS : 0));
  u->fd = uffd_fd();
  if (u->fd < 0) return posix_error(errno);
  if (!handshake(u->fd, want | extra, NULL)) {
    close(u->fd);
    u->fd = -1;
    return shk__error_record_os(SHK_EUNSUPPORTED, ENOTSUP);
  }
  u->unpopulated = (extra & UFFD_FEATURE_WP_UNPOPULATED) != 0;
  u->thread_id = (extra & UFFD_FEATURE_THREAD_ID) != 0;
  return SHK_OK;
}

int shk__os_uffd_open(bool sync, shk__os_uffd **out) {
  *out = NULL;
  shk__os_uffd *u = calloc(1, sizeof *u);
  if (!u) return SHK_ENOMEM;
  u->page_size = (size_t)sysconf(_SC_PAGESIZE);
  u->sync = sync;
  u->pagemap = -1;
  __u64 want = UFFD_FEATURE_PAGEFAULT_FLAG_WP | (sync ? 0 : UFFD_FEATURE_WP_ASYNC);
  int rc = open_with(u, want);
  if (rc == SHK_OK && !sync) {
    u->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (u->pagemap < 0) {
      rc = posix_error(errno);
      close(u->fd);
    }
  }
  if (rc != SHK_OK) {
    free(u);
    return rc;
  }
  *out = u;
  return SHK_OK;
}

void shk__os_uffd_close(shk__os_uffd *u) {
  if (!u) return;
  if (u->pagemap >= 0) close(u->pagemap);
  close(u->fd);
  free(u);
}

int shk__os_uffd_protect(shk__os_uffd *u, void *addr, size_t size, bool on) {
  struct uffdio_writeprotect wp;
  memset(&wp, 0, sizeof wp);
  wp.range.start = (uintptr_t)addr;
  wp.range.len = size;
  wp.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
  return ioctl(u->fd, UFFDIO_WRITEPROTECT, &wp) == 0 ? SHK_OK : posix_error(errno);
}

int shk__os_uffd_add(shk__os_uffd *u, void *addr, size_t size) {
  struct uffdio_register reg;
  memset(&reg, 0, sizeof reg);
  reg.range.start = (uintptr_t)addr;
  reg.range.len = size;
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (ioctl(u->fd, UFFDIO_REGISTER, &reg) != 0) return posix_error(errno);
  if (!u->unpopulated) {
    /* Without WP_UNPOPULATED a page with no entry yet cannot be protected: read it in. */
    for (size_t off = 0; off < size; off += u->page_size) (void)((volatile char *)addr)[off];
  }
  int rc = shk__os_uffd_protect(u, addr, size, true);
  if (rc != SHK_OK) {
    struct uffdio_range range = {(uintptr_t)addr, size};
    ioctl(u->fd, UFFDIO_UNREGISTER, &range);
  }
  return rc;
}

void shk__os_uffd_remove(shk__os_uffd *u, void *addr, size_t size) {
  shk__os_uffd_protect(u, addr, size, false);
  struct uffdio_range range = {(uintptr_t)addr, size};
  ioctl(u->fd, UFFDIO_UNREGISTER, &range);
}

int shk__os_uffd_scan(shk__os_uffd *u, void *addr, size_t size, bool skip_others,
                      shk__os_dirty_fn fn, void *ctx) {
  struct page_region vec[64];
  struct pm_scan_arg a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  /* WP_MATCHING alone skips areas that are not async write-protected; CHECK_WPASYNC fails. */
  a.flags = PM_SCAN_WP_MATCHING | (skip_others ? 0 : PM_SCAN_CHECK_WPASYNC);
  a.start = (uintptr_t)addr;
  a.end = (uintptr_t)addr + size;
  a.vec = (uintptr_t)vec;
  a.vec_len = SHK__ARRAY_LEN(vec);
  a.category_mask = PAGE_IS_WRITTEN;
  a.return_mask = PAGE_IS_WRITTEN;
  for (;;) {
    int n = ioctl(u->pagemap, PAGEMAP_SCAN, &a);
    if (n < 0) return posix_error(errno);
    for (int i = 0; i < n; i++)
      if (fn) fn((uintptr_t)vec[i].start, (size_t)(vec[i].end - vec[i].start) / u->page_size, ctx);
    if (a.walk_end >= a.end || a.walk_end == 0) break;
    a.start = a.walk_end;
  }
  return SHK_OK;
}

int shk__os_uffd_next(shk__os_uffd *u, int timeout_ms, uintptr_t *addr, uint64_t *tid) {
  struct pollfd pfd = {u->fd, POLLIN, 0};
  int n = poll(&pfd, 1, timeout_ms);
  if (n < 0) return errno == EINTR ? SHK_ETIMEDOUT : posix_error(errno);
  if (n == 0) return SHK_ETIMEDOUT;
  struct uffd_msg msg;
  ssize_t got = read(u->fd, &msg, sizeof msg);
  if (got < 0) return errno == EAGAIN || errno == EINTR ? SHK_ETIMEDOUT : posix_error(errno);
  if (got != (ssize_t)sizeof msg || msg.event != UFFD_EVENT_PAGEFAULT) return SHK_ETIMEDOUT;
  *addr = (uintptr_t)msg.arg.pagefault.address;
  *tid = u->thread_id ? (uint64_t)msg.arg.pagefault.feat.ptid : 0;
  return SHK_OK;
}

#else

#include "uffd_none.inc"

#endif
