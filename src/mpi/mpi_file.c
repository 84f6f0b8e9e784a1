/* File input: each rank maps only its own byte range plus halo of the shared file, read-only. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpi_internal.h"

static int from_errno(int e) {
  switch (e) {
    case ENOENT: case ENOTDIR: return SHK_ENOENT;
    case EACCES: case EPERM: return SHK_EACCES;
    case ENOMEM: return SHK_ENOMEM;
    default: return SHK_EOS;
  }
}

int shk__mpi_file_size(const char *path, size_t *size) {
  *size = 0;
  if (!path || !*path) return SHK_EINVAL;
  struct stat st;
  if (stat(path, &st) != 0) return from_errno(errno);
  if (!S_ISREG(st.st_mode)) return SHK_EINVAL;
  *size = (size_t)st.st_size;
  return SHK_OK;
}

int shk__mpi_file_map(const char *path, size_t lo, size_t end, shk__mpi_map *map) {
  map->addr = NULL;
  map->size = 0;
  map->at = NULL;
  if (end <= lo) return SHK_OK;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return from_errno(errno);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t start = lo - lo % page;
  void *addr = mmap(NULL, end - start, PROT_READ, MAP_SHARED, fd, (off_t)start);
  int e = errno;
  close(fd);
  if (addr == MAP_FAILED) return from_errno(e);
  map->addr = addr;
  map->size = end - start;
  map->at = (const unsigned char *)addr + (lo - start);
  return SHK_OK;
}

void shk__mpi_file_unmap(shk__mpi_map *map) {
  if (map->addr) munmap(map->addr, map->size);
  map->addr = NULL;
  map->at = NULL;
}
