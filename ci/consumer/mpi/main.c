/* The MPI consumer: one collective chunk task over 1 MiB held by rank 0, every chunk's result
 * gathered on rank 0 in order; checks the count of 0x55 bytes against a plain loop. */
#include <shmkit.h>
#include <shmkit/mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int count_chunk(const shk_task_chunk *c, shk_task_out *out) {
  uint64_t n = 0;
  const unsigned char *d = c->data;
  for (size_t i = 0; i < c->size; i++) n += d[i] == 0x55;
  return shk_task_out_write(out, &n, sizeof n);
}

int main(int argc, char **argv) {
  shk_worker_main(argc, argv);
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  size_t size = (size_t)1 << 20;
  unsigned char *d = malloc(size);
  uint64_t want = 0;
  for (size_t i = 0; i < size; i++) want += (d[i] = (unsigned char)(i * 31 % 251)) == 0x55;
  shk_task_options o;
  shk_task_options_init(&o);
  o.chunks = 8;
  shk_mpi_results *res = NULL;
  int rc = shk_mpi_task_run(MPI_COMM_WORLD, 0, rank == 0 ? d : NULL, rank == 0 ? size : 0,
                            count_chunk, &o, 0, &res);
  int bad = rc != SHK_OK;
  if (rank == 0 && !bad) {
    uint64_t got = 0;
    for (size_t i = 0; i < shk_mpi_results_count(res); i++) {
      uint64_t n;
      memcpy(&n, shk_mpi_results_get(res, i)->data, sizeof n);
      got += n;
    }
    bad = got != want || shk_mpi_results_count(res) != 8;
    printf("mpi consumer %s: %llu of %llu (shmkit %s)\n", bad ? "FAILED" : "ok",
           (unsigned long long)got, (unsigned long long)want, shk_version_string());
  }
  if (rc != SHK_OK) fprintf(stderr, "rank %d: %s\n", rank, shk_strerror(rc));
  shk_mpi_results_free(res);
  free(d);
  MPI_Finalize();
  return bad;
}
