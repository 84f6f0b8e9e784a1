/* What the chunk-task files share: the control segment's layout (read by workers in other
 * processes, so every field a worker or the pool reads from it is checked before use), the pool,
 * the output writer, and the chunk splitter. */
#ifndef SHMKIT_TASK_INTERNAL_H
#define SHMKIT_TASK_INTERNAL_H

#include <stdatomic.h>

#include "internal.h"
#include "lens_hook.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "chunk states need lock-free 64-bit atomics");

#define SHK__TASK_MAGIC 0x544b4853u /* "SHKT" */
#define SHK__TASK_VERSION 3u /* 3: the lens record in each worker slot */

/* Chunk states: the low 32 bits of a chunk's state word; the high 32 bits are the job sequence
 * number, so a late worker's compare-and-swap on an older job's chunk always fails. */
enum {
  SHK__CHUNK_QUEUED = 0,   /* waiting to be claimed by a worker */
  SHK__CHUNK_DONE = 1,      /* code / out_off / out_len are valid */
  SHK__CHUNK_CRASHED = 2,   /* code = signal / exception / exit status */
  SHK__CHUNK_TIMED_OUT = 3,
  SHK__CHUNK_CANCELLED = 4,
  SHK__CHUNK_RUNNING = 0x100 /* + worker index */
};

#define SHK__STATE(seq, low) (((uint64_t)(seq) << 32) | (uint32_t)(low))
#define SHK__STATE_SEQ(s) ((uint32_t)((s) >> 32))
#define SHK__STATE_LOW(s) ((uint32_t)(s))

/* Where a job's input is. */
enum {
  SHK__INPUT_ADDRESS = 1, /* at input_addr in the worker's own address space (threads, inline,
                             or a worker forked after the input existed) */
  SHK__INPUT_SEGMENT = 2  /* in the segment given to each worker (slot in_id / in_token) */
};

/* What a worker does with the input segment its slot names. */
enum {
  SHK__IN_BORROWED = 1, /* the caller's segment, not the pool's staging segment */
  SHK__IN_RELEASE = 2   /* unmap it when the job ends */
};

/* A function's identity that another process running the same program can resolve: its
 * module's path and load address, and its offset inside the module (task_fn.c). */
typedef struct shk__task_fn_id {
  uint64_t base;
  uint64_t offset;
  char module[1024];
} shk__task_fn_id;

/* Finds the module that holds fn. SHK_ENOENT when fn lies in no module. */
int shk__task_fn_locate(shk_task_fn fn, shk__task_fn_id *id);

/* Finds the function in this process: in the module at the same place, else in the module
 * loaded by path (kept in *loaded, which replaces and closes the previous one). SHK_ENOENT. */
int shk__task_fn_resolve(const shk__task_fn_id *id, shk__os_library **loaded, shk_task_fn *fn);

/* ---- the worker transport (task_transport.c) ---- */

/* The pool's record of one worker. proc is zero for a thread worker or one not running. */
typedef struct shk__task_worker {
  shk__os_channel pool_end;   /* kept by the pool */
  shk__os_channel worker_end; /* the worker's; the pool closes its copy once a process has it */
  shk__os_proc proc;
} shk__task_worker;

/* What a worker serves with, in the worker's address space. */
typedef struct shk__task_boot {
  shk__os_segment ctl;  /* the pool's control segment */
  shk__os_segment out;  /* this worker's output segment (reserved, see shk__os_segment_reserve) */
  unsigned index;
  shk__os_channel link; /* the worker's end */
  shk__os_proc parent;  /* the pool's process, when started as an executable */
  shk_task_fn fixed_fn; /* a worker host's plugin function: every job runs it */
  bool same_space;      /* a thread of the pool's process */
} shk__task_boot;

/* Opens / closes both ends of w's link. */
int shk__task_link_open(shk__task_worker *w);
void shk__task_link_close(shk__task_worker *w);

/* Starts a worker process for w (whose link is open) as worker `index`, serving the pool's
 * arena: the control part is [0, ctl_size), its output [out_offset, +out_size), both offsets
 * multiples of 64 KiB. A fork where the system has one (the child serves and exits), else this
 * executable with a start-up record, served from shk_worker_main(). The pool's copy of the
 * worker's end is closed. SHK_ENOHOOK (no fork, and shk_worker_main() was not called in this
 * process), SHK_ENOMEM, SHK_ELIMIT, SHK_EOS. */
/* A worker host and what it runs (shk_task_pool_create_hosted). */
typedef struct shk__task_host {
  char exe[1024];
  char module[1024];
  char function[256];
} shk__task_host;

/* Finds the worker host executable: SHK_WORKER_HOST, else next to the shmkit library.
 * SHK_EUNSUPPORTED when there is none. */
int shk__task_host_find(char *exe, size_t size);

/* A worker host set up to run `function` of `module` (task_hosted.c): checks the names and finds
 * the host. SHK_EINVAL, SHK_ERANGE, SHK_ENOMEM, SHK_EUNSUPPORTED. Free with free(). */
int shk__task_host_make(const char *module, const char *function, shk__task_host **out);

/* Stands in for a hosted pool's function on the caller's side: never called (the workers run
 * the plugin's). */
int shk__task_hosted_fn(const shk_task_chunk *chunk, shk_task_out *out);

/* shk_task_run() in mode SHK_TASK_HOSTED. */
int shk__task_run_hosted(const void *data, size_t size, shk_task_fn fn,
                         const shk_task_options *opts, shk_task_results **results);

int shk__task_spawn(shk__task_worker *w, unsigned index, const shk__os_segment *arena,
                    size_t ctl_size, size_t out_offset, size_t out_size,
                    const shk__task_host *host);

/* Worker side: records in the worker's slot why it cannot serve (a host's plugin could not be
 * loaded), for the pool's start-up handshake. */
void shk__task_worker_refuse(const shk__task_boot *boot, int code);

/* Waits at most timeout_ns for a wake-up from any of the n workers or the end of any worker
 * process, and consumes the wake-ups; sets ended[i] for each worker process that ended.
 * SHK_OK, SHK_ETIMEDOUT, SHK_EOS (the wait failed). */
int shk__task_wait_workers(const shk__task_worker *ws, unsigned n, uint64_t timeout_ns,
                           bool *ended);

/* Kills the worker process when `kill`, else waits for it to end, at most timeout_ms (then it is
 * killed anyway); reaps it, fills *how, closes its link. Leaves nothing behind. */
void shk__task_reap(shk__task_worker *w, bool kill, int64_t timeout_ms, shk__os_exit *how);

/* Gives worker process w the segment under pool-wide id `id`; *token is what the worker passes
 * to shk__task_take_segment(). SHK_ENOENT (the worker is gone), SHK_EACCES, SHK_EOS. */
int shk__task_give_segment(shk__task_worker *w, const shk__os_segment *seg, uint64_t id,
                           uint64_t *token);

/* Worker side: maps, read-only, `size` bytes of the segment given as (id, token). Handles given
 * with a smaller id and never taken are dropped, except `keep` (the staging segment).
 * SHK_ENOENT, SHK_EOS. */
int shk__task_take_segment(const shk__task_boot *boot, uint64_t id, uint64_t token, size_t size,
                           uint64_t keep, shk__os_segment *seg);

/* Worker side: waits for a wake-up from the pool, keeping handles that arrive meanwhile.
 * SHK_OK, SHK_ETIMEDOUT, SHK_ENOENT (the pool is gone). */
int shk__task_link_wait(const shk__task_boot *boot, uint64_t timeout_ns);

/* The worker's loop (task_worker.c); returns when the pool says quit or is gone. */
void shk__task_worker_serve(const shk__task_boot *boot);

typedef struct shk__task_job {
  uint32_t input_kind;
  uint32_t borrowed;     /* the segment is the caller's (not the pool's staging segment) */
  uint32_t release;      /* workers unmap the caller's segment when the job ends */
  uint32_t fn_inherited; /* every worker was forked after fn existed: fn_ptr is valid */
  uint32_t fn_by_address; /* fn lies in no module: workers run fn_ptr if its code is there */
  uint32_t fn_code_size;  /* bytes of fn_code */
  uint8_t fn_code[32];    /* the first bytes of fn's code, as the pool sees them */
  uint64_t input_addr;
  uint64_t input_offset; /* of the input inside its segment */
  uint64_t input_size;
  uint64_t chunk_count;
  uint64_t arg_size;
  shk_task_fn fn_ptr;    /* the function, for workers in the caller's address space */
  shk__task_fn_id fn;    /* the function, for worker processes */
} shk__task_job;

/* One worker's slot; written by the pool between jobs except the atomics. */
typedef struct shk__task_slot {
  _Alignas(64) atomic_uint sleeping; /* the worker is (about to be) blocked on its link */
  atomic_uint ready;                 /* the worker has started serving */
  atomic_uint armed;                 /* the pool has given it what the current job needs */
  _Atomic uint64_t out_used;         /* bytes of its output segment used in this job */
  atomic_uint in_version;            /* odd while the pool rewrites in_id / in_token / in_size */
  _Atomic uint64_t in_id;            /* the input segment of the current job, 0 none */
  atomic_uint in_flags;              /* SHK__IN_* */
  atomic_uint in_seq;                /* the job it was given for */
  _Atomic uint64_t in_token;
  _Atomic uint64_t in_size;
  _Atomic uint64_t keep_id;          /* the staging segment's id: never drop it unmapped */
  _Atomic uint64_t have_borrowed;    /* written by the worker: the caller's segment it holds */
  atomic_int start_error;            /* written by a worker that cannot serve: why (SHK_E*) */
  shk__lens_join lens;               /* a worker process started anew reports into this lens */
} shk__task_slot;

typedef struct shk__task_chunk_rec {
  _Alignas(64) _Atomic uint64_t state;
  uint64_t offset;
  uint64_t size;
  uint64_t readable;
  uint64_t out_off;
  uint64_t out_len;
  int32_t code;
  uint32_t worker;
} shk__task_chunk_rec;

typedef struct shk__task_ctl {
  uint32_t magic;
  uint32_t version;
  uint32_t workers;
  atomic_uint job_seq;         /* bumped by the pool to publish a job */
  atomic_uint quit;
  atomic_uint quit_after_job;  /* workers leave once the current job has nothing left for them */
  atomic_uint handshake;       /* the pool waits for new workers to report ready */
  atomic_uint job_quiet;       /* ... and need not wake the pool after each chunk (no progress) */
  atomic_uint stop;            /* workers claim no more chunks of the current job */
  atomic_uint parent_sleeping; /* the pool is (about to be) blocked: wake it after a chunk */
  _Atomic uint64_t finished;   /* chunks of the current job in a final state */
  _Atomic uint64_t hint;       /* the lowest chunk that may still be queued */
  _Atomic uint64_t chunk_count; /* of the current job (also in job, read after a claim) */
  _Atomic uint64_t copied;     /* input bytes in place, from the start: a chunk runs once its
                                  bytes and halo are (the copy-in runs beside the work) */
  shk__task_job job;
} shk__task_ctl;

/* The control segment: header, worker slots, chunk table, argument bytes. */
#define SHK__CTL_SLOTS_OFF ((size_t)4096 * 2)
#define SHK__CTL_TABLE_OFF (SHK__CTL_SLOTS_OFF + (size_t)SHK_TASK_WORKERS_MAX * sizeof(shk__task_slot))
#define SHK__CTL_ARG_OFF (SHK__CTL_TABLE_OFF + SHK_TASK_CHUNKS_MAX * sizeof(shk__task_chunk_rec))
#define SHK__CTL_SIZE (SHK__CTL_ARG_OFF + SHK_TASK_ARG_MAX)
/* Views into a segment start at multiples of this (Windows maps views at 64 KiB boundaries). */
#define SHK__TASK_VIEW_ALIGN ((size_t)1 << 16)

_Static_assert(sizeof(shk__task_ctl) <= SHK__CTL_SLOTS_OFF, "control header too large");
_Static_assert(sizeof(shk__task_chunk_rec) == 64, "chunk record is one cache line");

/* The code for a segment of the pool's own making (arena, staging) that the system refused:
 * the segment layer calls a refused size SHK_ESIZE (a caller's size), which a task call does not
 * document; for the pool's memory it is SHK_ENOMEM. The raw OS code stays recorded. */
static inline int shk__task_segment_code(int rc) { return rc == SHK_ESIZE ? SHK_ENOMEM : rc; }

static inline shk__task_slot *shk__ctl_slot(shk__task_ctl *ctl, unsigned i) {
  return (shk__task_slot *)(void *)((unsigned char *)ctl + SHK__CTL_SLOTS_OFF) + i;
}
static inline shk__task_chunk_rec *shk__ctl_chunk(shk__task_ctl *ctl, uint64_t i) {
  return (shk__task_chunk_rec *)(void *)((unsigned char *)ctl + SHK__CTL_TABLE_OFF) + i;
}
static inline unsigned char *shk__ctl_arg(shk__task_ctl *ctl) {
  return (unsigned char *)ctl + SHK__CTL_ARG_OFF;
}

/* The output writer a chunk function gets. */
struct shk_task_out {
  shk__os_segment *seg; /* the worker's output segment */
  size_t used;          /* bytes used so far in this job */
  size_t committed;     /* bytes made usable (Windows commits in steps) */
};

/* One chunk's bounds, computed once by the pool (task_chunks.c). */
typedef struct shk__task_bounds {
  size_t offset;
  size_t size;
  size_t readable;
} shk__task_bounds;

/* Checks size against item_size and returns the bounds of chunk i of count. */
int shk__task_check_split(size_t size, size_t item_size, size_t count);
shk__task_bounds shk__task_chunk_bounds(size_t size, size_t item_size, size_t halo, size_t count,
                                        size_t i);

/* Runs chunk i of the current job (claimed by the caller) and records how it ended. Used by
 * workers and by inline mode alike (task_pool.c). */
void shk__task_run_chunk(shk__task_ctl *ctl, unsigned worker, uint32_t seq, uint64_t i,
                         const unsigned char *input, shk_task_fn fn, shk_task_out *out);

/* Builds the results object from a finished job's chunk table and the workers' outputs
 * (task.c). outs[w] is worker w's output segment as the pool maps it. */
int shk__task_results_build(shk__task_ctl *ctl, uint32_t seq, uint64_t count, shk__os_segment *outs,
                      unsigned nouts, shk_task_results **results);

/* The options with defaults applied, shared by the one-call form and the pool. */
typedef struct shk__task_call {
  const unsigned char *data;
  size_t size;
  shk_task_fn fn;
  size_t chunks;
  size_t halo;
  size_t item_size;
  const void *arg;
  size_t arg_size;
  uint32_t timeout_ms;
  shk_task_progress_fn progress;
  void *progress_user;
} shk__task_call;

/* The caller's options (NULL: defaults) read by the evolution rule into *out (task.c).
 * SHK_OK or SHK_EINVAL. */
int shk__task_options_read(const shk_task_options *opts, shk_task_options *out);

/* Fills call from the arguments; SHK_EINVAL, SHK_ERANGE. */
int shk__task_call_init(shk__task_call *call, const void *data, size_t size, shk_task_fn fn,
                        const shk_task_options *opts, unsigned default_chunks);

/* A pool: its control arena, workers, and input state. Shared by task_pool.c (workers and
 * dispatch) and task_input.c (where the input lives). */
struct shk_task_pool {
  shk_task_mode mode;
  unsigned workers; /* slots; 1 in inline mode */
  bool inherit_input;
  bool one_shot;
  bool started;    /* a one-shot pool's workers, started by its only call */
  shk__task_host *host; /* a hosted pool's worker host, else NULL */
  atomic_flag busy;
  uint32_t seq;
  shk__os_segment arena;   /* one reserved segment: the control part, then one output per worker
                              (one segment instead of 1 + workers: each costs ~45 us to make) */
  shk__os_segment ctl_seg; /* views into the arena, never closed on their own */
  shk__task_ctl *ctl;
  size_t table_committed; /* bytes of the chunk table made usable */
  size_t arg_committed;
  shk__os_segment outs[SHK_TASK_WORKERS_MAX];
  shk__task_worker ws[SHK_TASK_WORKERS_MAX];
  shk__task_boot boots[SHK_TASK_WORKERS_MAX]; /* thread workers read theirs while running */
  shk__os_thread *threads[SHK_TASK_WORKERS_MAX];
  bool alive[SHK_TASK_WORKERS_MAX];
  bool ran[SHK_TASK_WORKERS_MAX];               /* a worker has run in this slot before */
  shk__os_exit ended[SHK_TASK_WORKERS_MAX];     /* how the last one in each slot ended */
  uint64_t given[SHK_TASK_WORKERS_MAX]; /* the staging segment id each worker was given */
  uint64_t given_token[SHK_TASK_WORKERS_MAX];
  uint64_t borrow_id;       /* the caller's segment workers may hold mapped, 0 none */
  shk__os_segment_ref borrow_ref;
  size_t borrow_size;
  uint64_t job_in_id;       /* the caller's segment of the current job */
  shk__os_segment staging;              /* the pool's copy of inputs, kept warm and grown */
  const void *copy_from;                /* the input still to copy into staging once the job is
                                           published (shk__task_copy_job_input), else NULL */
  uint64_t staging_id;
  uint64_t next_id;
};

/* Describes in job where the workers find the call's input, copying or giving it as needed
 * (task_input.c). SHK_ENOMEM, SHK_ESIZE, SHK_EOS. */
int shk__task_place_input(shk_task_pool *pool, const shk__task_call *call, shk__task_job *job);

/* Gives worker k, started during the job, the job's input. */
int shk__task_give_job_input(shk_task_pool *pool, unsigned k, const shk__task_call *call);

/* Replaces worker i, killing it first if it still runs (a worker that could not be given a
 * segment has died since the pool last looked). The new worker has been given nothing. */
int shk__task_worker_restart(shk_task_pool *pool, unsigned i);

/* The one-call form's kept arena (task_arena.c). take: true and *seg set (its control header
 * zeroed) when a kept arena of at least `size` bytes made by this process was free. give: keeps
 * *seg for the next run when none is kept and `touched` (bytes past the control header the run
 * used) is small, else closes it; *seg is emptied either way. Thread-safe. */
bool shk__task_arena_take(size_t size, shk__os_segment *seg);
void shk__task_arena_give(shk__os_segment *seg, size_t touched);

/* Copies the published job's input into the staging segment, in chunk order, advancing
 * ctl->copied as it goes, when shk__task_place_input left it to do; else nothing. */
void shk__task_copy_job_input(shk_task_pool *pool, size_t size);

/* Releases the staging segment and the caller's segment the pool holds. */
void shk__task_input_release(shk_task_pool *pool);

/* Creates a pool; one_shot: for a single call (the one-call form): forked workers read the
 * input at its address (they were forked after it existed) and leave after the job. */
int shk__task_pool_create(unsigned workers, shk_task_mode mode, bool one_shot,
                          shk_task_pool **out);
/* Creates a process pool of worker hosts running `host` (which it owns from now on, also on
 * failure); one_shot as above, but the workers are started executables all the same. */
int shk__task_pool_create_hosting(unsigned workers, bool one_shot, shk__task_host *host,
                                  shk_task_pool **out);
int shk__task_pool_run(shk_task_pool *pool, const shk__task_call *call, shk_task_results **results);

/* The default worker count: the number of CPUs, at most SHK_TASK_WORKERS_MAX. */
unsigned shk__task_default_workers(void);

#endif
