/* What the files of the MPI component share: the call's agreed parameters, each rank's run of
 * the global chunk list, messages of any size, and the results object's parts. */
#ifndef SHMKIT_MPI_INTERNAL_H
#define SHMKIT_MPI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmkit.h"
#include "shmkit/mpi.h"

/* Where the input is. */
enum { SHK__MPI_ROOT_INPUT = 1, SHK__MPI_FILE_INPUT = 2 };

/* What every rank agreed on (mpi_check.c), and this rank's place. */
typedef struct shk__mpi_call {
  MPI_Comm comm;     /* a duplicate of the caller's, freed at the end of the call */
  int rank, ranks, root;
  unsigned flags;
  size_t total;      /* the whole input's size */
  size_t chunks;     /* global chunk count */
  size_t halo;
  size_t item_size;  /* 1 for any byte */
  size_t message_max; /* the largest single message, in bytes */
  unsigned workers;  /* this rank's local workers */
  shk_task_options local; /* the caller's options with this rank's workers */
  shk_task_fn fn;
  char host[MPI_MAX_PROCESSOR_NAME + 1];
} shk__mpi_call;

/* One rank's contiguous run of global chunks and the bytes it reads. */
typedef struct shk__mpi_run {
  size_t first;   /* its first global chunk */
  size_t count;   /* how many (may be 0) */
  size_t lo, hi;  /* its chunks' bytes: [lo, hi) */
  size_t end;     /* what its chunks may read: [lo, end), end = hi + halo clipped at total */
} shk__mpi_run;

/* Rank r's run (mpi_layout.c); the same on every rank. */
shk__mpi_run shk__mpi_run_of(const shk__mpi_call *call, int r);

/* The bounds of global chunk i (as shk_task_run splits): offset, size, readable. */
void shk__mpi_chunk_bounds(size_t total, size_t item_size, size_t halo, size_t count, size_t i,
                           size_t *offset, size_t *size, size_t *readable);

/* ---- messages of any size (mpi_messages.c) ---- */

/* Non-blocking requests collected for one wait. */
typedef struct shk__mpi_reqs {
  MPI_Request *r;
  size_t n, cap;
} shk__mpi_reqs;

/* Posts a send / receive of n bytes as messages of at most call->message_max bytes (the
 * receiver posts the same split; messages between two ranks on one tag arrive in order).
 * SHK_ENOMEM, SHK_EOS. */
int shk__mpi_isend(const shk__mpi_call *call, const void *buf, size_t n, int dest, int tag,
                   shk__mpi_reqs *reqs);
int shk__mpi_irecv(const shk__mpi_call *call, void *buf, size_t n, int src, int tag,
                   shk__mpi_reqs *reqs);
/* Waits for every request and frees the list (also after an earlier failure: pass rc). */
int shk__mpi_wait(shk__mpi_reqs *reqs, int rc);

/* Returns the same code on every rank: the most negative of each rank's rc. */
int shk__mpi_agree(const shk__mpi_call *call, int rc);

/* ---- the call's set-up (mpi_check.c) ---- */

/* What a rank brings to the up-front check. */
typedef struct shk__mpi_args {
  int kind;            /* SHK__MPI_ROOT_INPUT or SHK__MPI_FILE_INPUT */
  int root;
  unsigned flags;
  size_t size;         /* root input: the root's size (others 0); file input: the file's size */
  shk_task_fn fn;
  const shk_task_options *opts;
  bool results_ok;     /* a results pointer was given */
  int local_rc;        /* what this rank found wrong on its own (0 none) */
} shk__mpi_args;

/* Duplicates comm, groups the ranks of a host to divide its workers, and checks in one
 * collective that every rank called with the same parameters; fills call. On failure the same
 * code on every rank and nothing to free. */
int shk__mpi_setup(MPI_Comm comm, const shk__mpi_args *args, shk__mpi_call *call);
void shk__mpi_teardown(shk__mpi_call *call);

/* ---- where each rank's bytes come from ---- */

/* A receive buffer of at least size bytes (mpi_buffer.c): the process's kept one when no other
 * call holds it (held), else a new one; data NULL for size 0. SHK_ENOMEM, SHK_EOS, ... */
typedef struct shk__mpi_buffer {
  shk_shm *shm;
  bool held;
  unsigned char *data;
} shk__mpi_buffer;
int shk__mpi_buffer_take(size_t size, shk__mpi_buffer *buf);
void shk__mpi_buffer_give(shk__mpi_buffer *buf);

/* Has release called when MPI is finalized (an attribute of MPI_COMM_SELF under *key, made on
 * the first call; the caller holds its own lock). For what a process keeps between calls. */
void shk__mpi_at_finalize(int *key, MPI_Comm_delete_attr_function *release);

/* The process's kept pool of `workers` worker processes (mpi_pool.c), started on first use
 * (and again when the workers or the loaded modules changed), for running fn; *pool NULL where
 * no pool may be used (another call holds it, or fn lies in no module: fork fresh workers
 * instead). Codes of shk_task_pool_create(). Give it back with shk__mpi_pool_give (accepts
 * NULL); it is freed when MPI is finalized. */
int shk__mpi_pool_take(unsigned workers, shk_task_fn fn, shk_task_pool **pool);
void shk__mpi_pool_give(shk_task_pool *pool);

/* Frees the kept pool / receive buffer now (waiting for a call that holds it to end). */
void shk__mpi_pool_release(void);
void shk__mpi_buffer_release(void);

/* Root input (mpi_scatter.c): the root's bytes of rank `rank`'s run are sent to it, then its
 * halo, in separate messages. *local points at bytes [run.lo, run.end) on every rank (the root:
 * into data; others: the receive buffer *owned, see shk__mpi_buffer_take). */
int shk__mpi_scatter(const shk__mpi_call *call, const unsigned char *data,
                     const unsigned char **local, shk__mpi_buffer *owned);

/* File input (mpi_file.c): maps [run.lo, run.end) of path read-only. */
typedef struct shk__mpi_map {
  void *addr;
  size_t size;
  const unsigned char *at; /* byte run.lo */
} shk__mpi_map;
int shk__mpi_file_size(const char *path, size_t *size);
int shk__mpi_file_map(const char *path, size_t lo, size_t end, shk__mpi_map *map);
void shk__mpi_file_unmap(shk__mpi_map *map);

/* ---- running the rank's chunks (mpi_local.c) ---- */

/* Runs this rank's chunks on its own workers (the kept pool in process mode, see
 * shk__mpi_pool_take); local holds the bytes [run.lo, run.end); path, when not NULL, is the file
 * they were mapped from, which the pool's workers map themselves. *results as shk_task_run()
 * leaves it (NULL for an empty run). Returns shk_task_run()'s code. */
int shk__mpi_run_local(const shk__mpi_call *call, const unsigned char *local, const char *path,
                       shk_task_results **results);

/* ---- results (mpi_results.c) ---- */

/* Collects every rank's results on the root (or builds this rank's own, SHK_MPI_DISTRIBUTED)
 * from the local results (NULL for an empty run). *out NULL on other ranks. */
int shk__mpi_results_collect(const shk__mpi_call *call, const shk_task_results *local,
                             shk_mpi_results **out);

/* The code of the whole call from every rank's local code: the same on every rank. */
int shk__mpi_outcome(const shk__mpi_call *call, int local_rc);

#endif
