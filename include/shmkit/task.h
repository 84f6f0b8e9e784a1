/** @file
 * Chunk tasks: split a buffer into N chunks, run one function on every chunk in parallel worker
 * processes (or threads, or inline), and gather per-chunk results; plus a reusable worker pool.
 * Threads: shk_task_run() and shk_task_pool_create() from any thread; one call at a time per pool;
 * a results object may be read from several threads and is freed once; shk_task_out_write()
 * only inside a chunk function; shk_worker_main() from the main thread. */
#ifndef SHMKIT_TASK_H
#define SHMKIT_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmkit/export.h"
#include "shmkit/options.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Where a chunk function writes its result bytes (owned by shmkit, valid during the call). */
typedef struct shk_task_out shk_task_out;

/** A set of workers started once and reused by many calls. */
typedef struct shk_task_pool shk_task_pool;

/** The per-chunk results of one call, in chunk order (allocated by shmkit). */
typedef struct shk_task_results shk_task_results;

/** What a chunk function is told about its chunk. All pointers are valid only during the call. */
typedef struct shk_task_chunk {
  const void *data;  /**< the chunk's first byte, read-only (NULL when size and readable are 0) */
  size_t size;       /**< the chunk's own bytes: [data, data + size) */
  size_t readable;   /**< bytes that may be read from data: size + halo, clipped at the input end */
  size_t index;      /**< 0 .. count-1 */
  size_t count;      /**< the number of chunks of this call */
  size_t offset;     /**< the absolute offset of data in the whole input */
  size_t total;      /**< the size of the whole input */
  const void *arg;   /**< a copy of the argument bytes (NULL when arg_size is 0) */
  size_t arg_size;   /**< the number of argument bytes at arg */
} shk_task_chunk;

/** A chunk function: reads its chunk, appends result bytes to `out` with shk_task_out_write(),
 * returns 0 or an error code of its own (any non-zero int, reported as SHK_TASK_FAILED).
 * In process mode it runs in another process: it must not rely on pointers into the caller's
 * memory (pass data through the input and the argument bytes). */
typedef int (*shk_task_fn)(const shk_task_chunk *chunk, shk_task_out *out);

/** Called in the caller's thread when the number of finished chunks changes: `done` of `total`.
 * Return false to cancel: chunks not yet started end SHK_TASK_CANCELLED; chunks already running
 * finish and keep their results. */
typedef bool (*shk_task_progress_fn)(size_t done, size_t total, void *user);

/** Where chunks run. All modes give identical results for a well-behaved chunk function. */
typedef enum shk_task_mode {
  SHK_TASK_PROCESSES = 0, /**< worker processes (default): a crashing chunk does not kill the caller */
  SHK_TASK_THREADS = 1,   /**< threads of the caller's process */
  SHK_TASK_INLINE = 2,    /**< one after the other in the caller's thread (for debugging) */
  SHK_TASK_HOSTED = 3     /**< shk_task_run only: worker processes of the worker host running the
                             plugin function named by shk_task_options.module_path and
                             function_name (see shk_task_pool_create_hosted()) */
} shk_task_mode;

/** Options of one call. Fill with shk_task_options_init() first, then change fields; a NULL
 * options pointer means all defaults. Evolves by the rule in shmkit/options.h: the library reads
 * only the struct_size bytes the caller's struct holds. Every field's zero is its default, so a
 * zero-initialised struct (`= {0}`, or designated initialisers: struct_size 0) works too and is
 * read as the 0.2.0 layout (every field below). */
typedef struct shk_task_options {
  uint32_t struct_size; /**< sizeof(shk_task_options), set by shk_task_options_init() */
  size_t chunks;       /**< number of chunks; 0: the number of workers */
  unsigned workers;    /**< shk_task_run only: workers to start; 0: the number of CPUs (at most
                          SHK_TASK_WORKERS_MAX) */
  shk_task_mode mode;  /**< shk_task_run only (a pool has its own mode) */
  size_t halo;         /**< bytes each chunk may read past its end (see shk_task_chunk.readable) */
  size_t item_size;    /**< chunk boundaries fall on multiples of this; 0 or 1: any byte.
                          The input size must be a multiple of it. */
  const void *arg;     /**< argument bytes, copied to every worker; never passed as a pointer */
  size_t arg_size;     /**< at most SHK_TASK_ARG_MAX */
  uint32_t timeout_ms; /**< the whole call's deadline; 0: none. Process mode kills the workers of
                          chunks still running at the deadline; threads and inline modes cannot
                          stop a running chunk and only stop starting new ones. */
  shk_task_progress_fn progress; /**< may be NULL */
  void *progress_user;           /**< passed to progress as `user` */
  const char *module_path;   /**< SHK_TASK_HOSTED: the plugin (.so / .dll marked SHK_TASK_PLUGIN) */
  const char *function_name; /**< SHK_TASK_HOSTED: the chunk function it exports */
} shk_task_options;

/** Fills the first `size` bytes of *opts (sizeof the struct where the caller was compiled) with
 * the defaults: zeros, and struct_size = size. Accepts NULL (does nothing). Call it through the
 * macro shk_task_options_init(), which passes the size. Thread-safe. */
SHK_API void shk_task_options_init_size(shk_task_options *opts, size_t size);

/** Fills *opts with the defaults, struct_size included (see shk_task_options_init_size()). */
#define shk_task_options_init(opts) shk_task_options_init_size((opts), sizeof(shk_task_options))

/** The largest argument, in bytes. */
#define SHK_TASK_ARG_MAX ((size_t)16 << 20)
/** The largest number of chunks of one call. */
#define SHK_TASK_CHUNKS_MAX ((size_t)1 << 20)
/** The most workers of one pool. */
#define SHK_TASK_WORKERS_MAX 64u

/** How a chunk ended. */
typedef enum shk_task_status {
  SHK_TASK_OK = 0,        /**< the function returned 0 */
  SHK_TASK_FAILED = 1,    /**< the function returned `code` (non-zero) */
  SHK_TASK_CRASHED = 2,   /**< its worker died: `code` is the signal number (POSIX), the exception
                             code (Windows), or the exit status if the function called exit() */
  SHK_TASK_TIMED_OUT = 3, /**< it had not finished at the deadline */
  SHK_TASK_CANCELLED = 4  /**< it was not started because the progress callback cancelled */
} shk_task_status;

/** One chunk's result. `data` points into the results object; bytes written by a chunk that did
 * not end SHK_TASK_OK or SHK_TASK_FAILED are discarded (size 0). */
typedef struct shk_task_result {
  shk_task_status status; /**< how the chunk ended */
  int code;          /**< see shk_task_status; 0 for SHK_TASK_OK */
  const void *data;  /**< the bytes the chunk wrote (NULL when size is 0) */
  size_t size;       /**< the number of bytes at data */
  size_t offset;     /**< the chunk's place in the input: its first byte's offset */
  size_t length;     /**< the chunk's size in the input, in bytes */
} shk_task_result;

/** The worker hook. Call it first thing in main(), before anything else, in every program that
 * runs chunk tasks in process mode: `int main(int argc, char **argv) { shk_worker_main(argc,
 * argv); ... }`. In a normal run it returns SHK_OK at once. On Windows, where workers are this
 * same executable started again with a marker argument, a worker run never returns: it serves
 * the pool that started it and exits. On POSIX (workers are forked) it only returns SHK_OK.
 * A Windows program that did not call it gets SHK_ENOHOOK from process-mode calls; it never
 * spawns a chain of workers. Call it from the main thread, once. */
SHK_API int shk_worker_main(int argc, char **argv);

/** Appends `size` bytes to the chunk's result. Only from inside a chunk function, with the `out`
 * it was given. Returns SHK_OK, SHK_EINVAL (NULL out, or NULL bytes with size > 0) or
 * SHK_ELIMIT (the worker's output for this call would exceed SHK_TASK_OUT_MAX); [bytes,
 * bytes + size) wrapping around the address space is SHK_EINVAL. */
SHK_API int shk_task_out_write(shk_task_out *out, const void *bytes, size_t size);

/** The most bytes one worker may write during one call (the sum over the chunks it runs). */
#define SHK_TASK_OUT_MAX ((size_t)1 << 30)

/** Runs `fn` over `size` bytes at `data`, split into chunks, and writes the per-chunk results to
 * *results. The chunks are: `chunks` pieces (always exactly that many, in order) whose sizes
 * differ by at most one item; when the input has fewer items than chunks, some chunks are empty;
 * an empty input (size 0, data may be NULL) gives only empty chunks. The function is called for
 * every chunk, empty or not.
 * In process mode this call starts fresh workers and reaps them before it returns (on POSIX the
 * forked workers see the input without a copy); use a pool for repeated calls.
 * Functions that lie in no module (code made at run time: a libffi closure such as Python's
 * ctypes and cffi make for callbacks, JIT code): threads and inline mode run them as any other.
 * In process mode, POSIX workers forked after the function existed run it by address: every
 * worker of this call, and of a pool created after it. A pool created before it cannot reach
 * it: each chunk ends SHK_TASK_FAILED with code SHK_EUNSUPPORTED (the call returns SHK_ECHUNK).
 * Likewise a function in a module loaded after a pool's workers started, which they load by its
 * path: when they cannot (the file was removed or replaced since), each chunk ends
 * SHK_TASK_FAILED with code SHK_ENOENT.
 * Where workers are started as executables (Windows) the call returns SHK_EUNSUPPORTED before
 * any chunk runs, without results.
 * Mode SHK_TASK_HOSTED (for code that does not own main(), such as a plugin inside a host
 * program): fn must be NULL; fresh workers of the worker host load opts->module_path and run its
 * exported opts->function_name, as the workers of shk_task_pool_create_hosted() do (exec, not
 * fork, on every system; no shk_worker_main() needed; the worker host is found the same way).
 * A wrong plugin is reported before any chunk runs, without results and leaving nothing behind:
 * SHK_ENOENT (module), SHK_ENOSYM (function), SHK_EVERSION (not a plugin of this major version),
 * SHK_EUNSUPPORTED (no worker host), SHK_ERANGE (a path or name too long), SHK_EINVAL (a NULL or
 * empty module_path or function_name, or fn not NULL). The input is copied into a segment once,
 * unless it lies in a shmkit segment of this process, which the workers read in place.
 * Returns SHK_OK when every chunk ended SHK_TASK_OK. Otherwise, with *results still set (free
 * it): SHK_ECRASHED (a chunk crashed), SHK_ETIMEDOUT, SHK_ECANCELED, SHK_ECHUNK (a function
 * returned an error), in that order of precedence. Without results (*results NULL): SHK_EINVAL
 * (NULL fn or results, NULL data with size > 0, [data, data + size) wrapping around the
 * address space, NULL arg with arg_size > 0, size not a multiple
 * of item_size, a bad mode, options refused by the rule of shmkit/options.h), SHK_ERANGE (chunks, workers or arg_size above the maximum),
 * SHK_ENOHOOK (Windows, see shk_worker_main), SHK_EUNSUPPORTED (a function in no module that
 * the workers cannot reach, see above), SHK_ENOMEM, SHK_ELIMIT, SHK_EOS. Nothing is left behind:
 * no segment, process or handle.
 * Thread-safe (each call has its own workers). */
SHK_API int shk_task_run(const void *data, size_t size, shk_task_fn fn,
                         const shk_task_options *opts, shk_task_results **results);

/** What a worker process holds: its standard input, output and error, its link to the pool, the
 * pool's control and output memory, and the input segments the pool gives it; nothing else of
 * the caller's descriptors or handles (POSIX: every other descriptor is closed in the worker as
 * it starts; Windows: only those handles are inherited). So a pipe whose write end the caller
 * closes sees end of file whatever pools exist, and a chunk function cannot use a descriptor
 * the caller opened: pass what it needs as argument bytes, or use a thread pool. */

/** Creates a pool of `workers` workers (0: the number of CPUs, capped at SHK_TASK_WORKERS_MAX;
 * inline mode always has one) in `mode`, started once. Returns SHK_OK, SHK_EINVAL (NULL out,
 * bad mode; for SHK_TASK_HOSTED use shk_task_pool_create_hosted()), SHK_ERANGE (workers above
 * SHK_TASK_WORKERS_MAX), SHK_ENOHOOK, SHK_ENOMEM, SHK_ELIMIT or SHK_EOS; *out is NULL on failure. Free with shk_task_pool_free(). Thread-safe. */
SHK_API int shk_task_pool_create(unsigned workers, shk_task_mode mode, shk_task_pool **out);

/** Exports a chunk function from a plugin (a .so / .dll that worker hosts load). */
#if defined(_WIN32)
#define SHK_TASK_PLUGIN_EXPORT __declspec(dllexport)
#else
#define SHK_TASK_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/** Marks a shared library as a chunk-task plugin: write `SHK_TASK_PLUGIN;` once at file scope in
 * one of its sources (after including shmkit.h). It exports the major version of shmkit the
 * plugin was built against, which the worker host checks before any chunk runs. */
#define SHK_TASK_PLUGIN                                                        \
  SHK_TASK_PLUGIN_EXPORT extern const unsigned shk_task_plugin_major;          \
  SHK_TASK_PLUGIN_EXPORT const unsigned shk_task_plugin_major = SHK_VERSION_MAJOR

/** Creates a process pool whose workers are clean processes of the worker host `shmkit-worker`
 * (installed in bin/ with the library), each loading the plugin `module_path` (a path to a
 * .so / .dll marked with SHK_TASK_PLUGIN) and running its exported chunk function
 * `function_name` on every chunk: pass NULL as fn to shk_task_pool_run(). For code that does not
 * own main() (a plugin inside a host program): no shk_worker_main() is needed, and the workers
 * are started as executables on every system (exec, not fork: nothing of the caller's memory,
 * threads or locks is inherited). Crash isolation, timeouts, per-chunk status and input read in
 * place work as in any process pool; functions in no module do not apply.
 * The host is the file named by the environment variable SHK_WORKER_HOST, else `shmkit-worker`
 * next to the shmkit library (its folder, bin/ in it, ../bin from it, or ../tools/shmkit or
 * ../../tools/shmkit from it, where a vcpkg install tree has it for a release or debug library).
 * A program linked with the static library looks next to itself instead, so it usually needs
 * SHK_WORKER_HOST.
 * Returns, before any chunk runs and leaving nothing behind: SHK_OK; SHK_EINVAL (NULL argument);
 * SHK_ERANGE (workers above SHK_TASK_WORKERS_MAX); SHK_EUNSUPPORTED (no worker host found);
 * SHK_ENOENT (the module cannot be loaded); SHK_ENOSYM (it does not export function_name);
 * SHK_EVERSION (it is not marked as a plugin, or was built against another major version of
 * shmkit); SHK_EFORMAT (a worker host reported a reason that is none of these); SHK_ENOMEM,
 * SHK_ELIMIT, SHK_EOS. Thread-safe. */
SHK_API int shk_task_pool_create_hosted(unsigned workers, const char *module_path,
                                        const char *function_name, shk_task_pool **out);

/** As shk_task_run(), on the pool's workers: opts->workers and opts->mode do not apply (they are
 * still checked: a bad mode gives SHK_EINVAL, and so does SHK_TASK_HOSTED: a pool's plugin is
 * chosen when it is created; workers above the maximum SHK_ERANGE), and chunks
 * default to the pool's number of workers. In process mode the input is copied once into a
 * segment the pool keeps and grows, unless it lies inside a shmkit segment of this process
 * (shk_shm_find), which workers then read in place; they keep that segment mapped while the next
 * calls use the same one (POSIX, Windows 10+), and the pool holds it until another segment is
 * used or the pool is freed. A worker that crashed or was killed at a deadline is replaced, and so
 * is one that ended while the pool was idle (killed from outside, out of memory, or on Linux the
 * thread that created the pool or started the worker ended: forked workers die with that thread).
 * A hosted pool (shk_task_pool_create_hosted) runs its plugin's function: fn must be NULL there
 * (SHK_EINVAL otherwise), and must not be NULL for any other pool.
 * Returns the codes of shk_task_run() (SHK_EINVAL also for a NULL pool), or SHK_EBUSY: one call
 * at a time per pool, a concurrent call is refused. */
SHK_API int shk_task_pool_run(shk_task_pool *pool, const void *data, size_t size, shk_task_fn fn,
                              const shk_task_options *opts, shk_task_results **results);

/** The number of workers of the pool (0 for NULL). */
SHK_API unsigned shk_task_pool_workers(const shk_task_pool *pool);

/** Stops the workers, waits for them and frees everything. Accepts NULL. Not while a call runs. */
SHK_API void shk_task_pool_free(shk_task_pool *pool);

/** The number of chunks (0 for NULL). */
SHK_API size_t shk_task_results_count(const shk_task_results *results);

/** The result of chunk `index`, owned by `results`; NULL when out of range or NULL results. */
SHK_API const shk_task_result *shk_task_results_get(const shk_task_results *results, size_t index);

/** Frees results. Accepts NULL. */
SHK_API void shk_task_results_free(shk_task_results *results);

/** "ok", "failed", "crashed", "timed out", "cancelled" (static; "unknown" otherwise). */
SHK_API const char *shk_task_status_name(shk_task_status status);

#ifdef __cplusplus
}
#endif

#endif
