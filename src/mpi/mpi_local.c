/* A rank runs its run of chunks (on its kept process pool, else with shk_task_run()) over its
 * own bytes: the local split of
 * [lo, hi) into `count` chunks is the global split's run exactly (the first chunks of a run
 * are the ones one item larger, as locally), and a small chunk function in front of the
 * caller's gives each chunk its global index, count, offset, total and readable (the halo past
 * hi lies in the rank's memory right after hi, which the workers see: they are threads,
 * processes forked after the bytes were in place, which read the input at its address, or the
 * kept pool's processes, which map the shared segment that holds [lo, end)). The caller's
 * function travels in the argument bytes as an address: valid in threads and forks, and in
 * the pool only for functions in modules loaded before it started (mpi_pool.c). */
#include <stdlib.h>
#include <string.h>

#include "mpi_internal.h"

/* What the front function needs, sent ahead of the caller's argument bytes. */
typedef struct shk__mpi_front {
  shk_task_fn fn; /* valid in the workers: threads, or processes forked from this one */
  uint64_t first, count, total, halo, item_size, lo, arg_size;
} shk__mpi_front;

static int front_fn(const shk_task_chunk *c, shk_task_out *out) {
  shk__mpi_front f;
  if (!c->arg || c->arg_size < sizeof f) return SHK_EFORMAT;
  memcpy(&f, c->arg, sizeof f);
  shk_task_chunk g = *c;
  g.index = (size_t)(f.first + c->index);
  g.count = (size_t)f.count;
  g.total = (size_t)f.total;
  size_t off, size, readable;
  shk__mpi_chunk_bounds(g.total, (size_t)f.item_size, (size_t)f.halo, g.count, g.index, &off,
                        &size, &readable);
  if (off - f.lo != c->offset || size != c->size) return SHK_EFORMAT; /* splits disagree */
  g.offset = off;
  /* An empty chunk at the very end of a run has no address to read from. */
  g.readable = c->data ? readable : 0;
  g.arg = f.arg_size ? (const unsigned char *)c->arg + sizeof f : NULL;
  g.arg_size = (size_t)f.arg_size;
  return f.fn(&g, out);
}

/* The pool's workers were forked before this input existed: they read it in place only from a
 * shmkit segment, which they map whole, so the halo past hi is theirs too (the pool's own
 * staging copy would hold [lo, hi) only). The rank's receive buffer is one; other bytes (the
 * root's own run, a mapped file) are copied once into one, kept for the next call. */
static int in_shared_memory(const unsigned char *local, size_t n, shk__mpi_buffer *copy,
                            const unsigned char **data) {
  shk_shm *shm;
  size_t offset;
  if (n == 0 || shk_shm_find(local, n, &shm, &offset) == SHK_OK) return SHK_OK;
  int rc = shk__mpi_buffer_take(n, copy);
  if (rc != SHK_OK) return rc;
  memcpy(copy->data, local, n);
  *data = copy->data;
  return SHK_OK;
}

int shk__mpi_run_local(const shk__mpi_call *call, const unsigned char *local,
                       shk_task_results **results) {
  *results = NULL;
  shk__mpi_run run = shk__mpi_run_of(call, call->rank);
  if (run.count == 0) return SHK_OK;
  shk_task_options o = call->local;
  shk__mpi_front f = {call->fn, run.first, call->chunks, call->total, call->halo,
                      call->item_size, run.lo, o.arg_size};
  if (o.arg_size > SHK_TASK_ARG_MAX - sizeof f) return SHK_ERANGE;
  unsigned char *arg = malloc(sizeof f + o.arg_size);
  if (!arg) return SHK_ENOMEM;
  memcpy(arg, &f, sizeof f);
  if (o.arg_size) memcpy(arg + sizeof f, o.arg, o.arg_size);
  o.arg = arg;
  o.arg_size = sizeof f + f.arg_size;
  o.chunks = run.count;
  o.halo = call->halo;
  o.item_size = call->item_size;
  const unsigned char *data = run.hi > run.lo ? local : NULL;
  shk_task_pool *pool = NULL;
  shk__mpi_buffer copy = {0};
  int rc = o.mode == SHK_TASK_PROCESSES ? shk__mpi_pool_take(call->workers, call->fn, &pool)
                                        : SHK_OK;
  if (rc == SHK_OK && pool) rc = in_shared_memory(local, run.end - run.lo, &copy, &data);
  if (rc == SHK_OK)
    rc = pool ? shk_task_pool_run(pool, data, run.hi - run.lo, front_fn, &o, results)
              : shk_task_run(data, run.hi - run.lo, front_fn, &o, results);
  shk__mpi_pool_give(pool);
  shk__mpi_buffer_give(&copy);
  free(arg);
  return rc;
}
