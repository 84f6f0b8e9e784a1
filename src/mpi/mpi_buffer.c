/* The receive buffer of root-input calls: anonymous shared memory (a shmkit segment), kept for
 * the next call. Shared, not private, memory: after the rank forks its workers, a write to a
 * private page takes a copy-on-write fault (about 1 us per 4 KiB page here, ~0.28 s per GiB
 * received by the next call), a write to a shared one does not; and a fresh buffer's first touch
 * costs about as much, which a kept one does not pay. One kept buffer per process, taken by one
 * call at a time (a concurrent call makes its own), released when MPI is finalized. */
#include <stdatomic.h>
#include <stdlib.h>

#include "mpi_internal.h"

static atomic_flag kept_busy = ATOMIC_FLAG_INIT;
static shk_shm *kept;
static int finalize_key = MPI_KEYVAL_INVALID;

/* Called by MPI_Finalize (attributes of MPI_COMM_SELF are deleted first thing there). */
void shk__mpi_buffer_release(void) {
  while (atomic_flag_test_and_set(&kept_busy)) { /* a call in another thread: its end */
  }
  shk_shm_close(kept);
  kept = NULL;
  atomic_flag_clear(&kept_busy);
}

static int release_kept(MPI_Comm comm, int key, void *value, void *extra) {
  (void)comm, (void)key, (void)value, (void)extra;
  shk__mpi_buffer_release();
  return MPI_SUCCESS;
}

void shk__mpi_at_finalize(int *key, MPI_Comm_delete_attr_function *release) {
  if (*key == MPI_KEYVAL_INVALID &&
      MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, release, key, NULL) == MPI_SUCCESS)
    MPI_Comm_set_attr(MPI_COMM_SELF, *key, NULL);
}

int shk__mpi_buffer_take(size_t size, shk__mpi_buffer *buf) {
  buf->shm = NULL;
  buf->held = false;
  buf->data = NULL;
  if (size == 0) return SHK_OK;
  if (atomic_flag_test_and_set(&kept_busy)) { /* another call has it */
    int rc = shk_shm_create_anonymous(size, &buf->shm);
    if (rc == SHK_OK) buf->data = shk_shm_data(buf->shm);
    return rc;
  }
  shk__mpi_at_finalize(&finalize_key, release_kept);
  if (!kept || shk_shm_size(kept) < size) {
    shk_shm_close(kept);
    kept = NULL;
    int rc = shk_shm_create_anonymous(size, &kept);
    if (rc != SHK_OK) {
      kept = NULL;
      atomic_flag_clear(&kept_busy);
      return rc;
    }
  }
  buf->shm = kept;
  buf->held = true;
  buf->data = shk_shm_data(kept);
  return SHK_OK;
}

void shk__mpi_buffer_give(shk__mpi_buffer *buf) {
  if (buf->held) atomic_flag_clear(&kept_busy); /* the kept buffer stays kept */
  else shk_shm_close(buf->shm);
  buf->shm = NULL;
  buf->held = false;
  buf->data = NULL;
}
