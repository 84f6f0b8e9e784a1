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
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_internal.h"

/* What the front function needs, sent ahead of the caller's argument bytes (and, where the
 * workers map the input file themselves, its path after them, NUL included). */
typedef struct shk__mpi_front {
  shk_task_fn fn; /* valid in the workers: threads, processes forked from this one, or the pool */
  uint64_t first, count, total, halo, item_size, lo, arg_size, path_size;
  uint64_t end;  /* what the rank's chunks may read: [lo, end) */
  uint64_t call; /* this process's call number (file input: a worker's mapping is per call) */
} shk__mpi_front;

/* A worker's mapping of the rank's range of the file, made by its first chunk of a call and
 * kept for its next chunks of that call (an open, map and unmap cost ~20-40 us here, a lot
 * beside a small chunk); replaced by the next call's (the file may have been replaced since),
 * released when the worker ends. */
static _Thread_local struct {
  uint64_t call;
  shk__mpi_map map;
} file_map;

/* A chunk of a file the worker maps itself: [off, off + readable) inside the rank's range. */
static int run_on_file(shk__mpi_front f, const char *path, shk_task_chunk *g,
                       shk_task_out *out) {
  if (g->readable == 0) {
    g->data = NULL;
    return f.fn(g, out);
  }
  if (!file_map.map.addr || file_map.call != f.call) {
    shk__mpi_file_unmap(&file_map.map);
    int rc = shk__mpi_file_map(path, (size_t)f.lo, (size_t)f.end, &file_map.map);
    if (rc != SHK_OK) return rc;
    file_map.call = f.call;
  }
  if (g->offset < f.lo || g->offset + g->readable > f.end) return SHK_EFORMAT;
  g->data = file_map.map.at + (g->offset - f.lo);
  return f.fn(g, out);
}

static int front_fn(const shk_task_chunk *c, shk_task_out *out) {
  shk__mpi_front f;
  if (!c->arg || c->arg_size < sizeof f) return SHK_EFORMAT;
  memcpy(&f, c->arg, sizeof f);
  if (f.arg_size > c->arg_size - sizeof f || f.path_size > c->arg_size - sizeof f - f.arg_size)
    return SHK_EFORMAT;
  const char *path = (const char *)c->arg + sizeof f + f.arg_size;
  if (f.path_size && path[f.path_size - 1] != '\0') return SHK_EFORMAT;
  shk_task_chunk g = *c;
  g.index = (size_t)(f.first + c->index);
  g.count = (size_t)f.count;
  g.total = (size_t)f.total;
  size_t off, size, readable;
  shk__mpi_chunk_bounds(g.total, (size_t)f.item_size, (size_t)f.halo, g.count, g.index, &off,
                        &size, &readable);
  g.arg = f.arg_size ? (const unsigned char *)c->arg + sizeof f : NULL;
  g.arg_size = (size_t)f.arg_size;
  g.offset = off;
  g.size = size;
  g.readable = readable;
  if (f.path_size) return run_on_file(f, path, &g, out); /* the pool ran empty chunks */
  if (off - f.lo != c->offset || size != c->size) return SHK_EFORMAT; /* splits disagree */
  /* An empty chunk at the very end of a run has no address to read from. */
  g.readable = c->data ? readable : 0;
  return f.fn(&g, out);
}

/* The pool's workers were forked before this input existed: they read it in place only from a
 * shmkit segment, which they map whole, so the halo past hi is theirs too (the pool's own
 * staging copy would hold [lo, hi) only). The rank's receive buffer is one; other bytes (the
 * root's own run) are copied once into one, kept for the next call. */
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

/* The front's argument bytes: the front, the caller's bytes, the path (path_size 0: none). */
static int front_arg(const shk__mpi_front *f, const shk_task_options *o, const char *path,
                     unsigned char **arg, size_t *size) {
  *arg = NULL;
  *size = sizeof *f + f->arg_size + f->path_size;
  if (f->arg_size + f->path_size > SHK_TASK_ARG_MAX - sizeof *f) return SHK_ERANGE;
  *arg = malloc(*size);
  if (!*arg) return SHK_ENOMEM;
  memcpy(*arg, f, sizeof *f);
  if (f->arg_size) memcpy(*arg + sizeof *f, o->arg, f->arg_size);
  if (f->path_size) memcpy(*arg + sizeof *f + f->arg_size, path, f->path_size);
  return SHK_OK;
}

int shk__mpi_run_local(const shk__mpi_call *call, const unsigned char *local, const char *path,
                       shk_task_results **results) {
  *results = NULL;
  shk__mpi_run run = shk__mpi_run_of(call, call->rank);
  if (run.count == 0) return SHK_OK;
  shk_task_options o = call->local;
  shk_task_pool *pool = NULL;
  int rc = o.mode == SHK_TASK_PROCESSES ? shk__mpi_pool_take(call->workers, call->fn, &pool)
                                        : SHK_OK;
  if (rc != SHK_OK) return rc;
  /* A pool's workers map their chunks of a file themselves, by its full path (the caller may
   * change directory while the pool lives); others read the rank's mapping. */
  char *full = pool && path ? realpath(path, NULL) : NULL;
  if (path && !full) { /* no pool, or no full path: fresh workers read the rank's mapping */
    shk__mpi_pool_give(pool);
    pool = NULL;
  }
  static atomic_uint_fast64_t calls;
  shk__mpi_front f = {call->fn, run.first, call->chunks, call->total, call->halo,
                      call->item_size, run.lo, o.arg_size, full ? strlen(full) + 1 : 0,
                      run.end, atomic_fetch_add(&calls, 1) + 1};
  unsigned char *arg;
  size_t arg_size;
  rc = front_arg(&f, &o, full, &arg, &arg_size);
  o.arg = arg;
  o.arg_size = arg_size;
  o.chunks = run.count;
  o.halo = call->halo;
  o.item_size = call->item_size;
  const unsigned char *data = run.hi > run.lo ? local : NULL;
  size_t size = full ? 0 : run.hi - run.lo;
  shk__mpi_buffer copy = {0};
  if (rc == SHK_OK && pool && !full) rc = in_shared_memory(local, run.end - run.lo, &copy, &data);
  if (rc == SHK_OK)
    rc = pool ? shk_task_pool_run(pool, full ? NULL : data, size, front_fn, &o, results)
              : shk_task_run(data, size, front_fn, &o, results);
  shk__mpi_pool_give(pool);
  shk__mpi_buffer_give(&copy);
  free(full);
  free(arg);
  return rc;
}
