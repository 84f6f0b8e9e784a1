/* POSIX: capabilities filled once, and errno translation. */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "posix.h"

int posix_error(int err) {
  int code;
  switch (err) {
    case 0: code = SHK_OK; break;
    case EINVAL: code = SHK_EINVAL; break;
    case ENOMEM: code = SHK_ENOMEM; break;
    case EEXIST: code = SHK_EEXIST; break;
    case ENOENT: code = SHK_ENOENT; break;
    case EACCES:
    case EPERM: code = SHK_EACCES; break;
    case EFBIG: code = SHK_ESIZE; break;
    case ETIMEDOUT: code = SHK_ETIMEDOUT; break;
    case ENAMETOOLONG: code = SHK_ENAME; break;
    case EBUSY:
    case EAGAIN: code = SHK_EBUSY; break;
    case EMFILE:
    case ENFILE: code = SHK_ELIMIT; break;
    case EFAULT: code = SHK_EFAULT; break;
    case ENOSYS:
    case EOPNOTSUPP:
#if defined(ENOTSUP) && ENOTSUP != EOPNOTSUPP
    case ENOTSUP: /* a separate value on macOS */
#endif
      code = SHK_EUNSUPPORTED;
      break;
    default: code = SHK_EOS; break;
  }
  return shk__error_record_os(code, err);
}

static shk__os_caps caps;
static shk__once caps_once;

static bool probe_memfd(void) {
#ifdef SYS_memfd_create
  int fd = (int)syscall(SYS_memfd_create, "shmkit-probe", 0);
  if (fd < 0) return false;
  close(fd);
  return true;
#else
  return false;
#endif
}

static void fill_caps(void) {
  long page = sysconf(_SC_PAGESIZE);
  caps.page_size = page > 0 ? (size_t)page : 4096;
  caps.alloc_granularity = caps.page_size;
  caps.has_fork = true;
  caps.exe_suffix = "";
  caps.handles_by_token = false; /* descriptors travel over the channel */
}

const shk__os_caps *shk__os_caps_get(void) {
  shk__once_run(&caps_once, fill_caps);
  return &caps;
}

bool shk__os_feature_probe(shk__os_feature f) {
  bool async = false;
  switch (f) {
    case SHK__OS_MEMFD: return probe_memfd();
    case SHK__OS_UFFD_WP: return shk__os_uffd_probe(&async);
    case SHK__OS_UFFD_WP_ASYNC: return shk__os_uffd_probe(&async) && async;
    default: return false; /* SHK__OS_WRITE_WATCH: Windows only */
  }
}

unsigned shk__os_cpu_count_probe(void) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN); /* reads /sys: not free, hence asked lazily */
  return cpus > 0 ? (unsigned)cpus : 1;
}
