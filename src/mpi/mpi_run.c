/* The collective calls: set up and check, place each rank's bytes, run its chunks locally,
 * agree on the outcome, collect the results. */
#include <stdlib.h>

#include "mpi_internal.h"

/* Runs and collects, given each rank's bytes [run.lo, run.end) at local (mapped from path). */
static int run_and_collect(shk__mpi_call *call, const unsigned char *local, const char *path,
                           shk_mpi_results **results) {
  shk_task_results *mine = NULL;
  int rc = shk__mpi_run_local(call, local, path, &mine);
  int all = shk__mpi_outcome(call, rc);
  /* Chunk outcomes (SHK_ECRASHED .. SHK_ECHUNK) still give results; anything else does not. */
  bool with_results = all == SHK_OK || all == SHK_ECRASHED || all == SHK_ETIMEDOUT ||
                      all == SHK_ECANCELED || all == SHK_ECHUNK;
  if (with_results) {
    int crc = shk__mpi_results_collect(call, mine, results);
    if (crc != SHK_OK) all = crc;
  }
  shk_task_results_free(mine);
  return all;
}

int shk_mpi_task_run(MPI_Comm comm, int root, const void *data, size_t size, shk_task_fn fn,
                     const shk_task_options *opts, unsigned flags, shk_mpi_results **results) {
  if (results) *results = NULL;
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  shk__mpi_args args = {SHK__MPI_ROOT_INPUT, root, flags, rank == root ? size : 0, fn, opts,
                        results != NULL, SHK_OK};
  if (rank == root && ((!data && size > 0) || (uintptr_t)data > UINTPTR_MAX - size))
    args.local_rc = SHK_EINVAL;
  shk__mpi_call call;
  int rc = shk__mpi_setup(comm, &args, &call);
  if (rc != SHK_OK) return rc;
  const unsigned char *local = NULL;
  shk__mpi_buffer owned;
  rc = shk__mpi_scatter(&call, data, &local, &owned);
  if (rc == SHK_OK) rc = run_and_collect(&call, local, NULL, results);
  shk__mpi_buffer_give(&owned);
  shk__mpi_teardown(&call);
  return rc;
}

int shk_mpi_task_run_file(MPI_Comm comm, int root, const char *path, shk_task_fn fn,
                          const shk_task_options *opts, unsigned flags,
                          shk_mpi_results **results) {
  if (results) *results = NULL;
  shk__mpi_args args = {SHK__MPI_FILE_INPUT, root, flags, 0, fn, opts, results != NULL, SHK_OK};
  args.local_rc = shk__mpi_file_size(path, &args.size);
  shk__mpi_call call;
  int rc = shk__mpi_setup(comm, &args, &call);
  if (rc != SHK_OK) return rc;
  shk__mpi_run run = shk__mpi_run_of(&call, call.rank);
  shk__mpi_map map;
  rc = shk__mpi_agree(&call, shk__mpi_file_map(path, run.lo, run.end, &map));
  if (rc == SHK_OK) rc = run_and_collect(&call, map.at, path, results);
  shk__mpi_file_unmap(&map);
  shk__mpi_teardown(&call);
  return rc;
}

void shk_mpi_release(void) {
  shk__mpi_pool_release();
  shk__mpi_buffer_release();
}
