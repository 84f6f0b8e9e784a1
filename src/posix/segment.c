/* POSIX segments: shm_open + ftruncate + mmap for named ones, memfd_create for anonymous ones,
 * shared anonymous mappings for reserved ones, references by device and inode, and the list
 * of names in /dev/shm. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

#include "posix.h"

void shk__os_segment_name(const char *portable, char os_name[SHK__OS_SEGMENT_NAME_SIZE]) {
  snprintf(os_name, SHK__OS_SEGMENT_NAME_SIZE, "/%s", portable);
}

/* shm_open's descriptor is close-on-exec by POSIX, and O_CLOEXEC is not one of its flags:
 * macOS 26.4+ refuses it (EINVAL). glibc and musl open with O_CLOEXEC themselves; elsewhere the
 * flag is set again in case a system skips it. */
static int posix_shm_open(const char *name, int flags, mode_t mode) {
  int fd = shm_open(name, flags, mode);
#ifndef __linux__
  if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
  return fd;
}

static int open_anonymous_fd(void) {
#ifdef SYS_memfd_create
  if (shk__os_has(SHK__OS_MEMFD)) {
    int fd = (int)POSIX_FAULTABLE(SHK__FAULT_MEMFD, -1,
                                  syscall(SYS_memfd_create, "shmkit", 1 /* MFD_CLOEXEC */));
    if (fd >= 0) return fd;
  }
#endif
  /* No memfd: a private random name, removed at once so it can never be left behind. */
  for (int attempt = 0; attempt < 16; attempt++) {
    /* At most 26 characters: macOS refuses shm names over 31 (PSHMNAMLEN), and the full
     * nanosecond count in hex could pass that. O_EXCL and the retries settle any collision. */
    char name[64];
    snprintf(name, sizeof name, "/shk-a-%d-%x-%x", (int)getpid(), /* "-<pid>-": test_task */
             (unsigned)shk__os_now_ns(), (unsigned)attempt);
    int fd = posix_shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
      shm_unlink(name);
      return fd;
    }
    if (errno != EEXIST) return -1;
  }
  return -1;
}

static int map_fd(int fd, size_t size, bool writable, shk__os_segment *seg) {
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void *addr = POSIX_FAULTABLE(SHK__FAULT_SEGMENT_MAP, MAP_FAILED,
                               mmap(NULL, size, prot, MAP_SHARED, fd, 0));
  if (addr == MAP_FAILED) return -1;
  seg->addr = addr;
  seg->size = size;
  seg->handle = fd;
  seg->writable = writable;
  return 0;
}


int shk__os_segment_create(const char *os_name, size_t size, shk__os_segment *seg) {
  memset(seg, 0, sizeof *seg);
  if (size > (size_t)INT64_MAX) return SHK_ESIZE;
  int fd = POSIX_FAULTABLE(SHK__FAULT_SEGMENT_CREATE, -1,
                           os_name ? posix_shm_open(os_name, O_RDWR | O_CREAT | O_EXCL, 0600)
                                   : open_anonymous_fd());
  if (fd < 0) return posix_error(errno);
  int err = 0;
  if (POSIX_FAULTABLE(SHK__FAULT_SEGMENT_SIZE, -1, ftruncate(fd, (off_t)size)) != 0 ||
      map_fd(fd, size, true, seg) != 0)
    err = errno;
  if (err == 0) return SHK_OK;
  close(fd);
  if (os_name) shm_unlink(os_name);
  return shk__error_as_size(posix_error(err)); /* ftruncate or mmap refused the size */
}

int shk__os_segment_open(const char *os_name, bool writable, shk__os_segment *seg) {
  memset(seg, 0, sizeof *seg);
  int fd = POSIX_FAULTABLE(SHK__FAULT_SEGMENT_OPEN, -1,
                           posix_shm_open(os_name, writable ? O_RDWR : O_RDONLY, 0));
  if (fd < 0) return posix_error(errno);
  struct stat st;
  int err = 0;
  if (fstat(fd, &st) != 0) {
    err = errno;
  } else if (st.st_size <= 0) {
    /* A name whose creator has not sized it yet, or that someone else made empty. */
    close(fd);
    return SHK_ESIZE;
  } else if (map_fd(fd, (size_t)st.st_size, writable, seg) != 0) {
    err = errno;
  }
  if (err == 0) return SHK_OK;
  close(fd);
  return posix_error(err);
}

int shk__os_segment_map(intptr_t handle, size_t offset, size_t size, bool writable,
                        shk__os_segment *seg) {
  memset(seg, 0, sizeof *seg);
  if (handle < 0 || size == 0 || offset > (size_t)INT64_MAX) return SHK_EINVAL;
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void *addr = POSIX_FAULTABLE(SHK__FAULT_SEGMENT_MAP, MAP_FAILED,
                               mmap(NULL, size, prot, MAP_SHARED, (int)handle, (off_t)offset));
  if (addr == MAP_FAILED) return posix_error(errno);
  seg->addr = addr;
  seg->size = size;
  seg->handle = handle;
  seg->writable = writable;
  return SHK_OK;
}

void shk__os_segment_close(shk__os_segment *seg) {
  if (seg->addr) {
    (void)POSIX_FAULTABLE(SHK__FAULT_SEGMENT_UNMAP, -1, munmap(seg->addr, seg->size));
    if (seg->handle >= 0) close((int)seg->handle); /* reserved segments have none (-1) */
  }
  memset(seg, 0, sizeof *seg);
}

int shk__os_segment_unlink(const char *os_name) {
  if (POSIX_FAULTABLE(SHK__FAULT_SEGMENT_UNLINK, -1, shm_unlink(os_name)) != 0)
    return posix_error(errno);
  return SHK_OK;
}

int shk__os_segment_size_now(const shk__os_segment *seg, uint64_t *size) {
  if (seg->handle < 0) { /* a reserved anonymous mapping: no object, nothing can shrink it */
    *size = seg->size;
    return SHK_OK;
  }
  struct stat st;
  if (fstat((int)seg->handle, &st) != 0) return posix_error(errno);
  *size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
  return SHK_OK;
}

int shk__os_segment_ref_take(const shk__os_segment *seg, shk__os_segment_ref *ref) {
  struct stat st;
  if (fstat((int)seg->handle, &st) != 0) return posix_error(errno);
  ref->a = (uint64_t)st.st_dev;
  ref->b = (uint64_t)st.st_ino;
  return SHK_OK;
}

bool shk__os_segment_ref_same(const shk__os_segment_ref *ref, const shk__os_segment *seg) {
  struct stat st;
  return fstat((int)seg->handle, &st) == 0 && ref->a == (uint64_t)st.st_dev &&
         ref->b == (uint64_t)st.st_ino;
}

void shk__os_segment_ref_drop(shk__os_segment_ref *ref) { ref->a = ref->b = 0; }

int shk__os_segment_reserve(size_t size, shk__os_segment *seg) {
  /* Workers are forked after the pool made this, so a shared anonymous mapping reaches them
   * without a descriptor; it is sparse (pages exist once touched) and, with MAP_NORESERVE, not
   * charged against the commit limit. Cheaper than a memfd: no inode, descriptor or truncate. */
  memset(seg, 0, sizeof *seg);
  void *addr = POSIX_FAULTABLE(SHK__FAULT_SEGMENT_MAP, MAP_FAILED,
                               mmap(NULL, size, PROT_READ | PROT_WRITE,
                                    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (addr == MAP_FAILED) return shk__error_as_size(posix_error(errno));
  seg->addr = addr;
  seg->size = size;
  seg->handle = -1; /* none: shk__os_segment_close() then only unmaps */
  seg->writable = true;
  return SHK_OK;
}

int shk__os_segment_commit(shk__os_segment *seg, size_t offset, size_t size) {
  (void)seg;
  (void)offset;
  (void)size;
  return SHK_OK;
}

int shk__os_segment_list(shk__os_segment_name_fn fn, void *user) {
  DIR *dir = opendir("/dev/shm");
  if (!dir) return errno == ENOENT || errno == ENOTDIR ? SHK_EUNSUPPORTED : posix_error(errno);
  uid_t me = geteuid();
  struct dirent *entry;
  while ((entry = readdir(dir)) != NULL) {
    if (entry->d_name[0] == '.') continue;
    struct stat st;
    /* No link is followed: a name is listed only as what it is. */
    if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode) || st.st_uid != me) continue;
    fn(entry->d_name, (size_t)st.st_size, (int64_t)st.st_mtime, user);
  }
  closedir(dir);
  return SHK_OK;
}
