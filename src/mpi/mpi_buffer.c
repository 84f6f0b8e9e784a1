/* The receive buffer of root-input calls, kept for the next call: a fresh allocation's first
 * touch costs about 2.8 us per 4 KiB page here (a third of a second per GiB received), which a
 * warm buffer does not pay. One buffer per process, taken by one call at a time (a concurrent
 * call makes its own), released when MPI is finalized. */
#include <stdatomic.h>
#include <stdlib.h>

#include "mpi_internal.h"

static atomic_flag kept_busy = ATOMIC_FLAG_INIT;
static unsigned char *kept;
static size_t kept_size;
static int finalize_key = MPI_KEYVAL_INVALID;

/* Called by MPI_Finalize (attributes of MPI_COMM_SELF are deleted first thing there). */
static int release_kept(MPI_Comm comm, int key, void *value, void *extra) {
  (void)comm, (void)key, (void)value, (void)extra;
  while (atomic_flag_test_and_set(&kept_busy)) {
  }
  free(kept);
  kept = NULL;
  kept_size = 0;
  atomic_flag_clear(&kept_busy);
  return MPI_SUCCESS;
}

unsigned char *shk__mpi_buffer_take(size_t size, bool *held) {
  *held = false;
  if (size == 0) return NULL;
  if (atomic_flag_test_and_set(&kept_busy)) return malloc(size); /* another call has it */
  if (finalize_key == MPI_KEYVAL_INVALID &&
      MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, release_kept, &finalize_key, NULL) == MPI_SUCCESS)
    MPI_Comm_set_attr(MPI_COMM_SELF, finalize_key, NULL);
  if (!kept || kept_size < size) {
    free(kept);
    kept = malloc(size);
    kept_size = kept ? size : 0;
  }
  if (!kept) {
    atomic_flag_clear(&kept_busy);
    return NULL;
  }
  *held = true;
  return kept;
}

void shk__mpi_buffer_give(unsigned char *p, bool held) {
  if (held) atomic_flag_clear(&kept_busy); /* the kept buffer stays kept */
  else free(p);
}
