/* Point-to-point transfers of any size: MPI counts are int, so a transfer above message_max
 * bytes goes as several messages, which arrive in order (same source, tag and communicator). */
#include <limits.h>
#include <stdlib.h>

#include "mpi_internal.h"

static int push(shk__mpi_reqs *reqs, MPI_Request **slot) {
  if (reqs->n == reqs->cap) {
    size_t cap = reqs->cap ? reqs->cap * 2 : 16;
    MPI_Request *r = realloc(reqs->r, cap * sizeof *r);
    if (!r) return SHK_ENOMEM;
    reqs->r = r;
    reqs->cap = cap;
  }
  *slot = &reqs->r[reqs->n++];
  return SHK_OK;
}

/* One function for both directions: the split must be the same on both sides. */
static int post(const shk__mpi_call *call, void *buf, size_t n, int peer, int tag, bool send,
                shk__mpi_reqs *reqs) {
  unsigned char *p = buf;
  size_t step = call->message_max;
  for (size_t done = 0; done < n; done += step) {
    size_t part = n - done < step ? n - done : step;
    MPI_Request *r;
    int rc = push(reqs, &r);
    if (rc != SHK_OK) return rc;
    int mrc = send ? MPI_Isend(p + done, (int)part, MPI_BYTE, peer, tag, call->comm, r)
                   : MPI_Irecv(p + done, (int)part, MPI_BYTE, peer, tag, call->comm, r);
    if (mrc != MPI_SUCCESS) {
      reqs->n--;
      return SHK_EOS;
    }
  }
  return SHK_OK;
}

int shk__mpi_isend(const shk__mpi_call *call, const void *buf, size_t n, int dest, int tag,
                   shk__mpi_reqs *reqs) {
  /* MPI_Isend takes a non-const buffer in MPI-2 headers; it is only read. */
  return post(call, (void *)(uintptr_t)buf, n, dest, tag, true, reqs);
}

int shk__mpi_irecv(const shk__mpi_call *call, void *buf, size_t n, int src, int tag,
                   shk__mpi_reqs *reqs) {
  return post(call, buf, n, src, tag, false, reqs);
}

int shk__mpi_wait(shk__mpi_reqs *reqs, int rc) {
  if (reqs->n > 0 && reqs->n <= INT_MAX &&
      MPI_Waitall((int)reqs->n, reqs->r, MPI_STATUSES_IGNORE) != MPI_SUCCESS && rc == SHK_OK)
    rc = SHK_EOS;
  free(reqs->r);
  reqs->r = NULL;
  reqs->n = reqs->cap = 0;
  return rc;
}

int shk__mpi_agree(const shk__mpi_call *call, int rc) {
  int all = rc;
  if (MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MIN, call->comm) != MPI_SUCCESS) return SHK_EOS;
  return all;
}
