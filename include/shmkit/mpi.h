/** @file
 * Chunk tasks across machines on MPI (the optional component shmkit::mpi, library shmkit_mpi).
 * Not included by shmkit.h: it needs <mpi.h>. Every call here is collective over its
 * communicator: every rank calls it with the same root, chunk count, halo, item size and flags
 * (checked up front by one small collective; a mismatch gives SHK_EINVAL on every rank, never a
 * hang). Each rank runs its contiguous run of the global chunk list on its own local workers as
 * shk_task_run() does (processes by default, kept between calls; threads on request), with the same chunk function, the
 * same shk_task_chunk (global index, count, offset and total) and the same shk_task_options.
 * Built on POSIX systems where CMake finds MPI; not built for Windows yet (no MS-MPI here).
 * Threads: call from the thread that may make MPI calls (MPI_THREAD_FUNNELED is enough). */
#ifndef SHMKIT_MPI_H
#define SHMKIT_MPI_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmkit/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The per-chunk results of one distributed call (allocated by shmkit). */
typedef struct shk_mpi_results shk_mpi_results;

/** One chunk's result: what shk_task_result says, plus where it ran. */
typedef struct shk_mpi_result {
  shk_task_status status; /**< how the chunk ended */
  int code;               /**< as shk_task_result.code */
  const void *data;       /**< the bytes the chunk wrote (NULL when size is 0) */
  size_t size;            /**< the number of bytes at data */
  size_t offset;          /**< the chunk's first byte in the whole input */
  size_t length;          /**< the chunk's size in the input, in bytes */
  size_t index;           /**< the chunk's global index, 0 .. chunks-1 */
  int rank;               /**< the rank (in the call's communicator) that ran it */
  const char *host;       /**< that rank's MPI_Get_processor_name() */
} shk_mpi_result;

/** Flags of the distributed calls. */
enum {
  /** Leave results distributed: every rank gets its own chunks' results (in global order)
   * instead of the root getting all of them. */
  SHK_MPI_DISTRIBUTED = 1u
};

/** Runs `fn` over the input held by rank `root` (`data`, `size` are read on the root only;
 * other ranks pass NULL, 0), split into opts->chunks global chunks (0: the number of ranks times
 * the most workers any rank has) as shk_task_run() splits it. Rank r gets the contiguous run of
 * chunks [r*chunks/ranks, (r+1)*chunks/ranks): the root sends each rank only its run's bytes (one
 * MPI_Scatterv of the disjoint runs when the input is below 1 GiB, else messages of at most
 * 1 GiB: MPI counts are int), then, in separate messages, the halo its last chunk may read (no
 * collective reads a byte of the root twice). A non-root rank receives into a buffer it keeps
 * for the next call (released by MPI_Finalize or shk_mpi_release()). Each rank runs its chunks
 * as shk_task_run() would: a chunk that crashes or times out is a per-chunk status, never the end
 * of its rank. In process mode (the default) the workers are a pool the rank keeps: started by its
 * first process-mode call and kept, with the memory they hold, until MPI_Finalize or
 * shk_mpi_release(), so that a call forks nothing (a fork costs in proportion to the rank's
 * memory). The workers read a non-root rank's bytes in place in its receive buffer; the root's
 * own run is copied once into a buffer the root keeps likewise, unless it lies in a shmkit
 * segment (shk_shm_find), which the workers read in place (the pool then holds a reference to
 * that segment, not a copy, until a later call uses another one or the pool is released). The forked workers share, copy on
 * write, the memory the rank had when they started: memory the rank frees later stays held by
 * them until the pool is released, and the rank's first write to each page it had then costs a
 * copy-on-write fault; make the first call early, call shk_mpi_release(), or use threads mode.
 * A chunk function in no module (code made at run time), or any call made after a module was
 * loaded since the pool started, runs on freshly forked workers instead (or a new pool). opts->workers is the workers of one host (0: its CPUs, and then at most the CPUs the rank
 * is bound to: launch with --bind-to none for one rank per host), divided among the ranks that
 * share the host (MPI_Comm_split_type MPI_COMM_TYPE_SHARED); opts->timeout_ms, progress (with the rank's
 * own counts) and arg apply on each rank. Mode SHK_TASK_HOSTED is not supported (SHK_EUNSUPPORTED).
 * On success *results holds every chunk's result in global chunk order on the root (NULL on the
 * other ranks), or with SHK_MPI_DISTRIBUTED each rank's own chunks on that rank.
 * Returns the same code on every rank: SHK_OK when every chunk ended SHK_TASK_OK; otherwise,
 * with *results still set where it would be (free it), SHK_ECRASHED, SHK_ETIMEDOUT,
 * SHK_ECANCELED or SHK_ECHUNK in that order of precedence over all ranks. Without results:
 * SHK_EINVAL (NULL fn or results, NULL data with size > 0 on the root, a bad root, bad flags, a
 * size that is not a multiple of item_size, or any argument that differs between ranks: chunks,
 * halo, item_size, root, flags, mode), SHK_ERANGE, SHK_EUNSUPPORTED, SHK_ENOMEM, SHK_EOS (an MPI
 * call failed), or any code shk_task_run() gave on some rank. Leaves nothing behind.
 * Collective; the communicator is duplicated for the call (no traffic on `comm` itself). */
SHK_API int shk_mpi_task_run(MPI_Comm comm, int root, const void *data, size_t size,
                             shk_task_fn fn, const shk_task_options *opts, unsigned flags,
                             shk_mpi_results **results);

/** As shk_mpi_task_run(), over the file at `path`, which every rank opens (a cluster file system;
 * on one machine, any file): each rank maps only its own byte range plus halo, read-only; nothing
 * is sent from a root. `root` only receives the results. With the kept process pool, each worker
 * maps the rank's range (plus halo) itself, by the file's full path, once per call, and keeps
 * that mapping until its first chunk of a later call or its end. Every rank must see the same file size
 * (SHK_EINVAL on every rank otherwise); a file that some rank cannot open or map gives SHK_ENOENT,
 * SHK_EACCES or SHK_EOS on every rank. */
SHK_API int shk_mpi_task_run_file(MPI_Comm comm, int root, const char *path, shk_task_fn fn,
                                  const shk_task_options *opts, unsigned flags,
                                  shk_mpi_results **results);

/** Frees what the calls of this process keep between calls: its worker pool (the worker
 * processes are stopped and reaped) and its receive buffer. The next call starts them again.
 * MPI_Finalize does the same; call this to give the memory back earlier. Not collective; needs
 * no MPI call. Thread-safe: waits for a call that holds them (in another thread) to end. */
SHK_API void shk_mpi_release(void);

/** The number of results held (0 for NULL). */
SHK_API size_t shk_mpi_results_count(const shk_mpi_results *results);

/** The i-th result held (in global chunk order), owned by `results`; NULL when out of range. */
SHK_API const shk_mpi_result *shk_mpi_results_get(const shk_mpi_results *results, size_t i);

/** Frees results. Accepts NULL. */
SHK_API void shk_mpi_results_free(shk_mpi_results *results);

#ifdef __cplusplus
}
#endif

#endif
