/* Each rank's kept process pool: started on the first process-mode call and kept until MPI is
 * finalized, so that a call forks no worker (a fork costs in proportion to the rank's memory,
 * which holds the input: ~0.1-0.5 s per call for 1 GiB here). The workers are forked once, so
 * the caller's chunk function, which travels inside the argument bytes (mpi_local.c), must lie
 * in a module they have too: a function in no module (code made at run time), or any call after
 * a module was loaded since the pool started, is not given a pool (the caller then forks fresh
 * workers, which have everything this process has). One pool per process, taken by one call at
 * a time (a concurrent call forks its own). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr, dl_iterate_phdr */
#endif
#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "mpi_internal.h"

static atomic_flag kept_busy = ATOMIC_FLAG_INIT;
static shk_task_pool *kept;
static unsigned long long kept_loads; /* modules ever loaded when the pool was started */
static int finalize_key = MPI_KEYVAL_INVALID;

void shk__mpi_pool_release(void) {
  while (atomic_flag_test_and_set(&kept_busy)) { /* a call in another thread: its end */
  }
  shk_task_pool_free(kept);
  kept = NULL;
  atomic_flag_clear(&kept_busy);
}

static int release_kept(MPI_Comm comm, int key, void *value, void *extra) {
  (void)comm, (void)key, (void)value, (void)extra;
  shk__mpi_pool_release();
  return MPI_SUCCESS;
}

static int first_loads(struct dl_phdr_info *info, size_t size, void *out) {
  if (size < offsetof(struct dl_phdr_info, dlpi_adds) + sizeof info->dlpi_adds) return -1;
  *(unsigned long long *)out = info->dlpi_adds;
  return 1;
}

/* How many modules were ever loaded in this process; 0 when the system cannot say (then no
 * pool is kept: a module loaded later could not be told apart). */
static unsigned long long modules_loaded(void) {
  unsigned long long n = 0;
  if (dl_iterate_phdr(first_loads, &n) != 1) return 0;
  return n;
}

static bool in_a_module(shk_task_fn fn) {
  void *addr;
  memcpy(&addr, &fn, sizeof addr); /* a function's address, as dladdr takes it (POSIX) */
  Dl_info info;
  return dladdr(addr, &info) != 0 && info.dli_fbase != NULL;
}

int shk__mpi_pool_take(unsigned workers, shk_task_fn fn, shk_task_pool **pool) {
  *pool = NULL;
  unsigned long long loads = modules_loaded();
  if (loads == 0 || !in_a_module(fn)) return SHK_OK;
  if (atomic_flag_test_and_set(&kept_busy)) return SHK_OK; /* another call has it */
  shk__mpi_at_finalize(&finalize_key, release_kept);
  if (kept && (shk_task_pool_workers(kept) != workers || kept_loads != loads)) {
    shk_task_pool_free(kept);
    kept = NULL;
  }
  if (!kept) {
    int rc = shk_task_pool_create(workers, SHK_TASK_PROCESSES, &kept);
    if (rc != SHK_OK) {
      kept = NULL;
      atomic_flag_clear(&kept_busy);
      return rc;
    }
    kept_loads = loads;
  }
  *pool = kept;
  return SHK_OK;
}

void shk__mpi_pool_give(shk_task_pool *pool) {
  if (pool) atomic_flag_clear(&kept_busy); /* the pool stays kept */
}
