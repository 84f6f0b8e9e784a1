/* Root input: the root sends every other rank the bytes of its run, then, separately, the halo
 * its last chunk may read (which lies in the next ranks' runs): no byte goes twice to one rank,
 * and no collective reads a byte of the root twice. The root's own run stays where it is. */
#include <limits.h>
#include <stdlib.h>

#include "mpi_internal.h"

enum { TAG_RUN = 1, TAG_HALO = 2 };

/* base + off, where an empty input may have no address at all. */
static const unsigned char *at(const unsigned char *base, size_t off) {
  return base ? base + off : NULL;
}

/* Every rank's run in one MPI_Scatterv (the root's own stays in place). */
static int scatter_runs(const shk__mpi_call *call, const unsigned char *data,
                        unsigned char *owned) {
  int *counts = NULL, *displs = NULL;
  if (call->rank == call->root) {
    counts = calloc((size_t)call->ranks, sizeof *counts);
    displs = calloc((size_t)call->ranks, sizeof *displs);
    if (!counts || !displs) {
      free(counts);
      free(displs);
      return SHK_ENOMEM; /* not reached in practice: the other ranks would wait in the scatter */
    }
    for (int r = 0; r < call->ranks; r++) {
      shk__mpi_run run = shk__mpi_run_of(call, r);
      counts[r] = (int)(run.hi - run.lo);
      displs[r] = (int)run.lo;
    }
  }
  shk__mpi_run mine = shk__mpi_run_of(call, call->rank);
  int mrc = call->rank == call->root
                ? MPI_Scatterv(data, counts, displs, MPI_BYTE, MPI_IN_PLACE, 0, MPI_BYTE,
                               call->root, call->comm)
                : MPI_Scatterv(NULL, NULL, NULL, MPI_BYTE, owned, (int)(mine.hi - mine.lo),
                               MPI_BYTE, call->root, call->comm);
  free(counts);
  free(displs);
  return mrc == MPI_SUCCESS ? SHK_OK : SHK_EOS;
}

int shk__mpi_scatter(const shk__mpi_call *call, const unsigned char *data,
                     const unsigned char **local, shk__mpi_buffer *owned) {
  shk__mpi_run mine = shk__mpi_run_of(call, call->rank);
  *local = NULL;
  int rc = SHK_OK;
  owned->shm = NULL;
  owned->held = false;
  owned->data = NULL;
  if (call->rank == call->root) {
    *local = at(data, mine.lo);
  } else if (mine.end > mine.lo) {
    rc = shk__mpi_buffer_take(mine.end - mine.lo, owned);
    *local = owned->data;
  }
  /* Every rank has its buffer before any byte moves: a failure ends the call on every rank. */
  rc = shk__mpi_agree(call, rc);
  if (rc != SHK_OK) {
    shk__mpi_buffer_give(owned);
    *local = NULL;
    return rc;
  }
  /* The runs: one MPI_Scatterv when every count and displacement fits its int (the runs are
   * disjoint: no byte is read twice), else messages of at most message_max bytes. */
  bool one_scatter = call->total <= call->message_max && call->total <= INT_MAX;
  if (one_scatter) rc = scatter_runs(call, data, owned->data);
  shk__mpi_reqs reqs = {0};
  if (call->rank == call->root) {
    for (int r = 0; r < call->ranks && rc == SHK_OK; r++) {
      if (r == call->root) continue;
      shk__mpi_run run = shk__mpi_run_of(call, r);
      if (!one_scatter)
        rc = shk__mpi_isend(call, at(data, run.lo), run.hi - run.lo, r, TAG_RUN, &reqs);
      if (rc == SHK_OK)
        rc = shk__mpi_isend(call, at(data, run.hi), run.end - run.hi, r, TAG_HALO, &reqs);
    }
  } else if (rc == SHK_OK) {
    if (!one_scatter)
      rc = shk__mpi_irecv(call, owned->data, mine.hi - mine.lo, call->root, TAG_RUN, &reqs);
    if (rc == SHK_OK)
      rc = shk__mpi_irecv(call, (unsigned char *)(uintptr_t)at(owned->data, mine.hi - mine.lo),
                          mine.end - mine.hi, call->root, TAG_HALO, &reqs);
  }
  rc = shk__mpi_wait(&reqs, rc);
  if (rc != SHK_OK) {
    shk__mpi_buffer_give(owned);
    *local = NULL;
  }
  return rc;
}
