/* bench_mpi: chunk tasks across MPI ranks against a bare MPI program doing the same work in the
 * same run. Run it once per rank count, e.g.
 *   for n in 1 2 4; do mpiexec -n $n --oversubscribe bench_mpi; done     (as root add --allow-run-as-root)
 * Each run prints, for a prologue scan (memory-bound) and a byte hash (compute-bound):
 *   bare: MPI_Scatterv of equal parts from rank 0 + a plain loop on each rank + MPI_Reduce;
 *   shmkit, root input: shk_mpi_task_run (each rank on its own workers: the host's CPUs divided
 *   among the ranks on it), as a ratio of the bare program's throughput (goal >= 0.9);
 *   shmkit, file input: shk_mpi_task_run_file over the same bytes in a file (page cache).
 * and the transfer rate of the bare MPI_Scatterv beside a plain MPI_Send of the same bytes, and
 * shmkit's root-input call with empty chunks (its transfer plus one local run per rank).
 * The forms take turns within each repetition (best of R each), so that a load that changes
 * during the run weighs on all of them alike.
 * Usage: bench_mpi [--mib MiB (1024)] [--hash-mib MiB (256)] [--reps R (3)] [--quick] [--threads]
 * Launch with --bind-to none: Open MPI binds 1-2 ranks to one core each by default, and a
 * rank's workers inherit its binding (shmkit then gives it as many workers as it has CPUs). */
#define _POSIX_C_SOURCE 200809L
#include <shmkit.h>
#include <shmkit/mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_clock.h"
#include "bench_work.h" /* the same work as bench_task (b) */

static int rank, ranks;
static bool use_threads; /* --threads: the ranks' workers are threads */

/* Equal parts for MPI_Scatterv (int counts: the bare program is limited to < 2 GiB per rank). */
static void parts(size_t size, int *counts, int *displs) {
  for (int r = 0; r < ranks; r++) {
    size_t lo = size * (size_t)r / (size_t)ranks, hi = size * (size_t)(r + 1) / (size_t)ranks;
    counts[r] = (int)(hi - lo);
    displs[r] = (int)lo;
  }
}

/* The bare program: scatter, plain loop, reduce. kind 0 scan, 1 hash, 2 transfer only. */
static double bare(const unsigned char *data, size_t size, unsigned char *mine, int kind) {
  int counts[256], displs[256];
  parts(size, counts, displs);
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = bench_now_ns();
  MPI_Scatterv(data, counts, displs, MPI_BYTE, mine, counts[rank], MPI_BYTE, 0, MPI_COMM_WORLD);
  uint64_t v = kind == 0 ? count_prologues(mine, 0, (size_t)counts[rank], (size_t)counts[rank])
             : kind == 1 ? mix_bytes(mine, 0, (size_t)counts[rank]) : 0;
  uint64_t all = 0;
  MPI_Reduce(&v, &all, 1, MPI_UINT64_T, kind == 0 ? MPI_SUM : MPI_BXOR, 0, MPI_COMM_WORLD);
  return bench_now_ns() - t0;
}

/* Plain MPI_Send of each non-root rank's part from rank 0, one rank after the other. */
static double plain_send(const unsigned char *data, size_t size, unsigned char *mine) {
  int counts[256], displs[256];
  parts(size, counts, displs);
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = bench_now_ns();
  if (rank == 0) {
    for (int r = 1; r < ranks; r++)
      MPI_Send(data + displs[r], counts[r], MPI_BYTE, r, 9, MPI_COMM_WORLD);
  } else {
    MPI_Recv(mine, counts[rank], MPI_BYTE, 0, 9, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return bench_now_ns() - t0;
}

static double shmkit(const unsigned char *data, size_t size, const char *path, shk_task_fn fn) {
  shk_task_options o = {0};
  o.halo = 3;
  o.mode = use_threads ? SHK_TASK_THREADS : SHK_TASK_PROCESSES;
  shk_mpi_results *res = NULL;
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = bench_now_ns();
  int rc = path ? shk_mpi_task_run_file(MPI_COMM_WORLD, 0, path, fn, &o, 0, &res)
                : shk_mpi_task_run(MPI_COMM_WORLD, 0, rank == 0 ? data : NULL,
                                   rank == 0 ? size : 0, fn, &o, 0, &res);
  double t = bench_now_ns() - t0;
  if (rc != SHK_OK) {
    fprintf(stderr, "rank %d: %s\n", rank, shk_strerror(rc));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  shk_mpi_results_free(res);
  return t;
}

typedef double (*measure_fn)(void *);

/* The best time of each of n jobs over reps rounds, the jobs taking turns within a round, so
 * that a change in the machine's load (a shared machine) falls on all of them alike. */
static void best_of(int reps, double (*f)(const void *), const void *const *jobs, int n,
                    double *best) {
  for (int j = 0; j < n; j++) best[j] = 1e300;
  for (int i = 0; i < reps; i++) {
    for (int j = 0; j < n; j++) {
      double t = f(jobs[j]);
      MPI_Bcast(&t, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD); /* rank 0's clock decides */
      if (t < best[j]) best[j] = t;
    }
  }
}

typedef struct job {
  const unsigned char *data;
  unsigned char *mine;
  size_t size;
  const char *path;
  int kind; /* 0 scan, 1 hash, 2 transfer / empty chunks */
  int form; /* 0 bare, 1 shmkit root input, 2 shmkit file input, 3 plain MPI_Send */
} job;

static double run_job(const void *p) {
  const job *j = p;
  shk_task_fn fns[3] = {prologue_chunk, mix_chunk, empty_chunk};
  switch (j->form) {
    case 0: return bare(j->data, j->size, j->mine, j->kind);
    case 1: return shmkit(j->data, j->size, NULL, fns[j->kind]);
    case 2: return shmkit(j->data, j->size, j->path, fns[j->kind]);
    default: return plain_send(j->data, j->size, j->mine);
  }
}

static double gbs(size_t bytes, double ns) { return (double)bytes / ns; }

int main(int argc, char **argv) {
  shk_worker_main(argc, argv);
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  size_t mib = 1024, hash_mib = 256;
  int reps = 3;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) mib = 32, hash_mib = 8, reps = 1;
    else if (strcmp(argv[i], "--threads") == 0) use_threads = true;
    else if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc) mib = strtoul(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--hash-mib") == 0 && i + 1 < argc) hash_mib = strtoul(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
  }
  if (hash_mib > mib) hash_mib = mib;
  if (ranks > 256 || mib == 0 || (mib << 20) / (size_t)ranks > 2047u << 20 || reps < 1) {
    if (rank == 0) fprintf(stderr, "bench_mpi: at most 256 ranks, parts below 2 GiB, reps >= 1\n");
    MPI_Finalize();
    return 2;
  }
  size_t size = mib << 20;
  unsigned char *data = NULL;
  char path[128];
  int pid = (int)getpid();
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  snprintf(path, sizeof path, "/tmp/shk-bench-mpi-%d", pid);
  if (rank == 0) {
    data = malloc(size);
    uint64_t x = 88172645463325252u;
    for (size_t i = 0; i + 8 <= size; i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      memcpy(data + i, &x, 8);
    }
    for (size_t i = 1000; i + 4 <= size; i += 4093) memcpy(data + i, "\x55\x48\x89\xE5", 4);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) MPI_Abort(MPI_COMM_WORLD, 1);
  }
  unsigned char *mine = malloc(size / (size_t)ranks + 1);
  memset(mine, 0, size / (size_t)ranks + 1); /* touched, as a warm receive buffer would be */
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0)
    printf("bench_mpi: %d rank(s), %zu MiB scan, %zu MiB hash, best of %d (rank 0's clock), "
           "workers: %s\n", ranks, mib, hash_mib, reps, use_threads ? "threads" : "processes");
  /* A first exchange of the same size pays Open MPI's warm-up, outside the figures. */
  job warm = {data, mine, size, path, 2, 0};
  run_job(&warm);
  const char *names[2] = {"prologue scan", "byte hash"};
  for (int kind = 0; kind < 2; kind++) {
    size_t n = kind == 0 ? size : hash_mib << 20;
    job b = {data, mine, n, path, kind, 0}, s = {data, mine, n, NULL, kind, 1};
    job f = {data, mine, n, path, kind, 2};
    const void *jobs[3] = {&b, &s, &f};
    double t[3] = {0, 0, 0};
    best_of(reps, run_job, jobs, kind == 0 ? 3 : 2, t);
    double tb = t[0], ts = t[1], tf = t[2];
    if (rank == 0) {
      printf("  %-13s bare Scatterv+loop %8.1f ms %6.2f GB/s | shmkit root input %8.1f ms "
             "%6.2f GB/s (%.2fx bare)", names[kind], tb / 1e6, gbs(n, tb), ts / 1e6, gbs(n, ts),
             tb / ts);
      if (kind == 0)
        printf(" | file input %8.1f ms %6.2f GB/s (%.2fx bare, %.2fx root input)", tf / 1e6,
               gbs(n, tf), tb / tf, ts / tf);
      printf("\n");
    }
  }
  if (ranks > 1) {
    size_t moved = size - size / (size_t)ranks; /* what leaves rank 0 */
    job b = {data, mine, size, NULL, 2, 0}, p = {data, mine, size, NULL, 2, 3};
    job s = {data, mine, size, NULL, 2, 1};
    const void *jobs[3] = {&b, &p, &s};
    double t[3];
    best_of(reps, run_job, jobs, 3, t);
    double tb = t[0], tp = t[1], ts = t[2];
    if (rank == 0)
      printf("  transfer of %zu MiB from rank 0: MPI_Scatterv %6.2f GB/s | plain MPI_Send %6.2f "
             "GB/s | shmkit root input, empty chunks %6.2f GB/s (%.2fx Scatterv)\n",
             moved >> 20, gbs(moved, tb), gbs(moved, tp), gbs(moved, ts), tb / ts);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) unlink(path);
  free(data);
  free(mine);
  MPI_Finalize();
  return 0;
}
