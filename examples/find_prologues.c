/* find_prologues: counts the x86-64 function prologue 55 48 89 E5 (push rbp; mov rbp, rsp) in a
 * binary file, in 16 chunks on worker processes, and checks the count against a one-thread scan.
 * Usage: find_prologues [file]   (default: shmkit's own shared library) */
#ifndef _WIN32
#define _GNU_SOURCE /* dladdr */
#endif
#include <shmkit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
static double now_ms(void) {
  LARGE_INTEGER f, t;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&t);
  return (double)t.QuadPart * 1e3 / (double)f.QuadPart;
}
/* The file the shmkit DLL was loaded from. */
static int library_path(char *buf, size_t size) {
  HMODULE mod;
  if (!GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                              GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                          (LPCSTR)(uintptr_t)shk_version, &mod)) /* not via void *: C4152 */
    return -1;
  DWORD n = GetModuleFileNameA(mod, buf, (DWORD)size);
  return n > 0 && n < size ? 0 : -1;
}
#else
#include <dlfcn.h>
#include <time.h>
static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
static int library_path(char *buf, size_t size) {
  Dl_info info;
  void *addr;
  int (*fn)(void) = shk_version;
  memcpy(&addr, &fn, sizeof addr);
  if (!dladdr(addr, &info) || !info.dli_fname) return -1;
  snprintf(buf, size, "%s", info.dli_fname);
  return 0;
}
#endif

static const unsigned char PROLOGUE[4] = {0x55, 0x48, 0x89, 0xE5};

/* The chunk function. The rule that makes every match count exactly once: report only matches
 * that START inside your own range [0, size), but read up to `readable` bytes (size + halo) so
 * that a match crossing the chunk's end is still seen. With halo = 3 (pattern length - 1) the
 * chunk after it never reports that match, because it starts in this chunk. */
static int count_prologues(const shk_task_chunk *chunk, shk_task_out *out) {
  const unsigned char *d = chunk->data;
  uint64_t n = 0;
  for (size_t i = 0; i < chunk->size; i++)
    if (i + sizeof PROLOGUE <= chunk->readable && memcmp(d + i, PROLOGUE, sizeof PROLOGUE) == 0) n++;
  return shk_task_out_write(out, &n, sizeof n);
}

int main(int argc, char **argv) {
  shk_worker_main(argc, argv); /* first thing: on Windows, workers are this program again */

  char path[4096];
  if (argc > 1) {
    snprintf(path, sizeof path, "%s", argv[1]);
  } else if (library_path(path, sizeof path) != 0) {
    fprintf(stderr, "cannot find the shmkit library; give a file\n");
    return 2;
  }
  FILE *f = fopen(path, "rb");
  if (!f || fseek(f, 0, SEEK_END) != 0) {
    fprintf(stderr, "cannot open %s\n", path);
    return 2;
  }
  long length = ftell(f);
  rewind(f);
  size_t size = length > 0 ? (size_t)length : 0;

  /* The file goes straight into a segment: the workers read it there, with no further copy. */
  shk_shm *shm = NULL;
  int rc = shk_shm_create_anonymous(size ? size : 1, &shm);
  if (rc != SHK_OK || fread(shk_shm_data(shm), 1, size, f) != size) {
    fprintf(stderr, "cannot read %s: %s\n", path, shk_strerror(rc));
    return 2;
  }
  fclose(f);
  const unsigned char *data = shk_shm_data(shm);

  shk_task_options opts = {0};
  opts.chunks = 16;
  opts.halo = sizeof PROLOGUE - 1;
  shk_task_results *results = NULL;
  double t0 = now_ms();
  rc = shk_task_run(data, size, count_prologues, &opts, &results);
  double t1 = now_ms();
  if (rc != SHK_OK) {
    fprintf(stderr, "task failed: %s\n", shk_strerror(rc));
    shk_task_results_free(results);
    return 1;
  }
  uint64_t parallel = 0;
  for (size_t i = 0; i < shk_task_results_count(results); i++) {
    uint64_t n;
    memcpy(&n, shk_task_results_get(results, i)->data, sizeof n);
    parallel += n;
  }
  shk_task_results_free(results);

  double t2 = now_ms();
  uint64_t serial = 0;
  for (size_t i = 0; i + sizeof PROLOGUE <= size; i++)
    if (memcmp(data + i, PROLOGUE, sizeof PROLOGUE) == 0) serial++;
  double t3 = now_ms();
  shk_shm_close(shm);

  printf("%s: %zu bytes\n", path, size);
  printf("  16 chunks on worker processes: %llu prologues in %.2f ms (workers started and reaped)\n",
         (unsigned long long)parallel, t1 - t0);
  printf("  one thread:                    %llu prologues in %.2f ms\n", (unsigned long long)serial,
         t3 - t2);
  printf("  %s\n", parallel == serial ? "counts match" : "COUNTS DIFFER");
  return parallel == serial ? 0 : 1;
}
