/* mpi_find_prologues: find_prologues across machines. Counts the x86-64 function prologue
 * 55 48 89 E5 in a big file with MPI: every rank maps only its own part of the file (plus the
 * 3-byte halo a match crossing its end needs) and scans it on its own worker processes; the
 * root gathers every chunk's count, with the host that ran it, and checks the total against
 * one serial scan of the whole file.
 * Usage: mpiexec -n 4 --bind-to none mpi_find_prologues FILE [CHUNKS]
 *        (as root add --allow-run-as-root; on a cluster, --hostfile HOSTS and a FILE that every
 *        host sees at the same path; bound the run with --timeout SECONDS; --bind-to none lets
 *        each rank's workers use the cores of its host) */
#define _POSIX_C_SOURCE 200809L
#include <shmkit.h>
#include <shmkit/mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char PROLOGUE[4] = {0x55, 0x48, 0x89, 0xE5};

/* The same chunk function as find_prologues: count the matches that START in [0, size), reading
 * up to `readable` (size + halo) so that a match crossing the end is still seen exactly once. */
static int count_chunk(const shk_task_chunk *chunk, shk_task_out *out) {
  const unsigned char *d = chunk->data;
  uint64_t n = 0;
  for (size_t i = 0; i < chunk->size && i + sizeof PROLOGUE <= chunk->readable; i++)
    if (memcmp(d + i, PROLOGUE, sizeof PROLOGUE) == 0) n++;
  return shk_task_out_write(out, &n, sizeof n);
}

static uint64_t serial_count(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return UINT64_MAX;
  static unsigned char buf[1 << 20];
  unsigned char tail[3];
  size_t kept = 0, got;
  uint64_t n = 0;
  while ((got = fread(buf + kept, 1, sizeof buf - kept, f)) > 0) {
    size_t have = kept + got;
    for (size_t i = 0; i + sizeof PROLOGUE <= have; i++)
      if (memcmp(buf + i, PROLOGUE, sizeof PROLOGUE) == 0) n++;
    kept = have < 3 ? have : 3; /* a match may cross into the next block */
    memcpy(tail, buf + have - kept, kept);
    memcpy(buf, tail, kept);
  }
  fclose(f);
  return n;
}

int main(int argc, char **argv) {
  shk_worker_main(argc, argv);
  MPI_Init(&argc, &argv);
  int rank, ranks;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  if (argc < 2) {
    if (rank == 0) fprintf(stderr, "usage: mpiexec -n N mpi_find_prologues FILE [CHUNKS]\n");
    MPI_Finalize();
    return 2;
  }
  shk_task_options opts = {0}; /* each host's CPUs, shared by the ranks on that host */
  opts.chunks = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;
  opts.halo = sizeof PROLOGUE - 1;
  shk_mpi_results *results = NULL;
  double t0 = MPI_Wtime();
  int rc = shk_mpi_task_run_file(MPI_COMM_WORLD, 0, argv[1], count_chunk, &opts, 0, &results);
  double t1 = MPI_Wtime();
  int status = 0;
  if (rc != SHK_OK) {
    if (rank == 0) fprintf(stderr, "mpi task failed: %s\n", shk_strerror(rc));
    status = 1;
  } else if (rank == 0) {
    uint64_t total = 0;
    int last_rank = -1;
    for (size_t i = 0; i < shk_mpi_results_count(results); i++) {
      const shk_mpi_result *r = shk_mpi_results_get(results, i);
      uint64_t n;
      memcpy(&n, r->data, sizeof n);
      total += n;
      if (r->rank != last_rank)
        printf("  chunks from %zu: rank %d on %s\n", r->index, r->rank, r->host);
      last_rank = r->rank;
    }
    uint64_t serial = serial_count(argv[1]);
    printf("%s: %zu chunks on %d ranks: %llu prologues in %.1f ms; one serial scan: %llu\n",
           argv[1], shk_mpi_results_count(results), ranks, (unsigned long long)total,
           (t1 - t0) * 1e3, (unsigned long long)serial);
    if (total != serial) {
      printf("COUNTS DIFFER\n");
      status = 1;
    }
  }
  shk_mpi_results_free(results);
  MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Finalize();
  return status;
}
