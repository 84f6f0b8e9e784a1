/* The pool side of chunk tasks: start workers once, publish a job through the control segment,
 * wait (spin, then sleep) while watching deadlines, progress and worker deaths, replace dead
 * workers, and build the results from the finished chunk table. */
#include <stdlib.h>
#include <string.h>

#include "lens_hook.h"
#include "task_internal.h"
#include "debug.h"

/* The pool polls this long for the last chunks before it sleeps (see WORKER_SPIN_NS). */
#define POOL_SPIN_NS 30000u
/* Longest sleep between checks of deadlines and worker ends. */
#define POOL_SLICE_NS 50000000u
/* How long a new worker process may take to reach its serving loop. On Windows a worker that
 * never gets there did not call shk_worker_main(). */
#define START_TIMEOUT_NS 20000000000ull


unsigned shk__task_default_workers(void) {
  unsigned n = shk__os_cpu_count();
  return n < 1 ? 1 : n > SHK_TASK_WORKERS_MAX ? SHK_TASK_WORKERS_MAX : n;
}

static void thread_worker(void *arg) { shk__task_worker_serve(arg); }

/* Why worker i's host could not serve, as it wrote it in its slot (shared memory): 0 for no
 * reason, one of the codes a host reports (task_transport.c, load_plugin), or SHK_EFORMAT for
 * anything else, which is never passed on as if it were a code. */
static int host_refusal(const shk_task_pool *pool, unsigned i) {
  int why = atomic_load(&shk__ctl_slot(pool->ctl, i)->start_error);
  if (why == 0 || why == SHK_ENOENT || why == SHK_ENOSYM || why == SHK_EVERSION) return why;
  return SHK_EFORMAT;
}

static int start_worker(shk_task_pool *pool, unsigned i) {
  shk__task_worker *w = &pool->ws[i];
  shk__task_slot *slot = shk__ctl_slot(pool->ctl, i);
  atomic_store(&slot->ready, 0);
  atomic_store(&slot->armed, 0);
  atomic_store(&slot->sleeping, 0);
  atomic_fetch_add(&slot->in_version, 1);
  atomic_store(&slot->in_id, 0);
  atomic_fetch_add(&slot->in_version, 1);
  atomic_store(&slot->have_borrowed, 0);
  atomic_store(&slot->start_error, 0);
  pool->given[i] = 0;
  int rc = shk__task_link_open(w);
  if (rc != SHK_OK) return rc;
  if (pool->mode == SHK_TASK_PROCESSES) {
    SHK__LENS_JOIN_WRITE(&slot->lens); /* read by a worker started as a new process */
    rc = shk__task_spawn(w, i, &pool->arena, pool->ctl_seg.size,
                         (size_t)((unsigned char *)pool->outs[i].addr -
                                  (unsigned char *)pool->arena.addr),
                         pool->outs[i].size, pool->host);
  } else {
    shk__task_boot *b = &pool->boots[i];
    memset(b, 0, sizeof *b);
    b->ctl = pool->ctl_seg;
    b->out = pool->outs[i];
    b->index = i;
    b->link = w->worker_end;
    b->same_space = true;
    rc = shk__os_thread_start(&pool->threads[i], thread_worker, b);
  }
  if (rc != SHK_OK) {
    shk__task_link_close(w);
    return rc;
  }
  pool->alive[i] = true;
  SHK__LENS_WORKER_STARTED(i, pool->mode == SHK_TASK_PROCESSES ? w->proc.pid : 0,
                           pool->ran[i] ? &pool->ended[i] : NULL);
  pool->ran[i] = true;
  return SHK_OK;
}

static void stop_worker(shk_task_pool *pool, unsigned i, bool kill, shk__os_exit *how) {
  if (!pool->alive[i]) return;
  pool->alive[i] = false;
  if (pool->mode == SHK_TASK_PROCESSES) {
    shk__task_reap(&pool->ws[i], kill, 2000, how);
  } else {
    shk__os_thread_join(pool->threads[i]);
    pool->threads[i] = NULL;
    shk__task_link_close(&pool->ws[i]);
    how->kind = SHK__OS_EXITED;
    how->code = 0;
  }
  pool->ended[i] = *how; /* told when the slot's next worker starts */
}

static bool any_alive(const shk_task_pool *pool) {
  for (unsigned i = 0; i < pool->workers; i++)
    if (pool->alive[i]) return true;
  return false;
}

/* Waits until every live worker has reached its loop; a worker process that ends or never gets
 * there fails the start. */
static int await_ready(shk_task_pool *pool) {
  uint64_t deadline = shk__os_now_ns() + START_TIMEOUT_NS;
  for (;;) {
    bool all = true;
    for (unsigned i = 0; i < pool->workers; i++)
      if (pool->alive[i] && !atomic_load(&shk__ctl_slot(pool->ctl, i)->ready)) all = false;
    if (all) return SHK_OK;
    if (shk__os_now_ns() >= deadline) return SHK_ENOHOOK;
    bool ended[SHK_TASK_WORKERS_MAX] = {false};
    atomic_store(&pool->ctl->parent_sleeping, 1);
    if (shk__task_wait_workers(pool->ws, pool->workers, 1000000u, ended) == SHK_EOS)
      shk__os_sleep_ns(1000000u);
    atomic_store(&pool->ctl->parent_sleeping, 0);
    for (unsigned i = 0; i < pool->workers; i++) {
      if (ended[i] && !atomic_load(&shk__ctl_slot(pool->ctl, i)->ready)) {
        shk__os_exit how;
        stop_worker(pool, i, false, &how);
        int why = host_refusal(pool, i);
        if (why != 0) return why; /* a worker host that could not load its plugin */
        return shk__os_caps_get()->has_fork || pool->host ? SHK_ECRASHED : SHK_ENOHOOK;
      }
    }
  }
}

/* Only a started executable can fail to reach the worker loop (a program without the hook); a
 * forked worker or a thread calls it directly and picks up jobs whenever it gets there. */
static bool needs_handshake(const shk_task_pool *pool) {
  return pool->mode == SHK_TASK_PROCESSES && (pool->host || !shk__os_caps_get()->has_fork);
}

/* Starts every worker that is not running, then waits for the handshake, inside a zone
 * "shk pool start" on the caller's thread. all: the first worker that cannot start fails it (a
 * pool's creation); else it starts what it can and succeeds while any worker runs (replacements
 * of workers that died). */
static int start_missing(shk_task_pool *pool, bool all) {
  shk_lens_zone lens_start;
  SHK__LENS_ZONE(SHK__LENS_TASKS, &lens_start, "shk pool start", SHK__LENS_COLOR_POOL);
  int rc = SHK_OK;
  bool started = false;
  for (unsigned i = 0; i < pool->workers && (rc == SHK_OK || !all); i++) {
    if (pool->alive[i]) continue;
    int r = start_worker(pool, i);
    if (r == SHK_OK) started = true;
    else rc = r;
  }
  if (started && (rc == SHK_OK || !all) && needs_handshake(pool)) {
    int r = await_ready(pool);
    if (r != SHK_OK) rc = r;
  }
  SHK__LENS_ZONE_END(&lens_start);
  return all || !any_alive(pool) ? rc : SHK_OK;
}

static int commit_ctl(shk_task_pool *pool, size_t offset, size_t size, size_t *committed) {
  if (size <= *committed) return SHK_OK;
  int rc = shk__os_segment_commit(&pool->ctl_seg, offset, size);
  if (rc == SHK_OK) *committed = size;
  return rc;
}

/* Memory a pool's arena holds past its control header: what the last call used. */
static size_t touched(const shk_task_pool *pool) {
  size_t n = pool->table_committed + pool->arg_committed;
  for (unsigned i = 0; pool->ctl && i < pool->workers; i++)
    n += (size_t)atomic_load(&shk__ctl_slot(pool->ctl, i)->out_used);
  return n;
}

void shk_task_pool_free(shk_task_pool *pool) {
  if (!pool) return;
  if (pool->ctl) {
    atomic_store(&pool->ctl->quit, 1);
    for (unsigned i = 0; i < pool->workers; i++)
      if (pool->alive[i]) shk__os_channel_notify(&pool->ws[i].pool_end);
    for (unsigned i = 0; i < pool->workers; i++) {
      shk__os_exit how;
      stop_worker(pool, i, false, &how);
    }
  }
  shk__task_input_release(pool);
  if (pool->inherit_input) shk__task_arena_give(&pool->arena, touched(pool));
  else shk__os_segment_close(&pool->arena);
  free(pool->host);
  free(pool);
}

/* The pool's arena: reserved memory; a worker host, started as an executable, must be able to
 * map it by handle, which a POSIX reservation (an anonymous mapping) has none of. */
static int make_arena(shk_task_pool *pool, size_t size) {
  int rc = shk__os_segment_reserve(size, &pool->arena);
  if (rc != SHK_OK || !pool->host || pool->arena.handle > 0) return shk__task_segment_code(rc);
  shk__os_segment_close(&pool->arena);
  /* sparse: pages cost once touched */
  return shk__task_segment_code(shk__os_segment_create(NULL, size, &pool->arena));
}

static int pool_create(unsigned workers, shk_task_mode mode, bool one_shot,
                       shk__task_host *host, shk_task_pool **out) {
  if (!out) {
    free(host);
    return SHK_EINVAL;
  }
  *out = NULL;
  if (workers == 0) workers = shk__task_default_workers();
  if ((mode != SHK_TASK_PROCESSES && mode != SHK_TASK_THREADS && mode != SHK_TASK_INLINE) ||
      workers > SHK_TASK_WORKERS_MAX) {
    free(host);
    return workers > SHK_TASK_WORKERS_MAX ? SHK_ERANGE : SHK_EINVAL;
  }
  if (mode == SHK_TASK_INLINE) workers = 1;
  shk_task_pool *pool = shk__calloc(1, sizeof *pool);
  if (!pool) {
    free(host);
    return SHK_ENOMEM;
  }
  pool->host = host;
  pool->mode = mode;
  pool->workers = workers;
  pool->one_shot = one_shot;
  pool->inherit_input =
      one_shot && mode == SHK_TASK_PROCESSES && !host && shk__os_caps_get()->has_fork;
  atomic_flag_clear(&pool->busy);
  size_t ctl_size = shk__round_up(SHK__CTL_SIZE, SHK__TASK_VIEW_ALIGN);
  size_t arena_size = ctl_size + (size_t)workers * SHK_TASK_OUT_MAX;
  int rc = pool->inherit_input && shk__task_arena_take(arena_size, &pool->arena)
               ? SHK_OK : make_arena(pool, arena_size);
  if (rc != SHK_OK) {
    shk_task_pool_free(pool);
    return rc;
  }
  pool->ctl_seg = pool->arena;
  pool->ctl_seg.size = ctl_size;
  for (unsigned i = 0; i < workers; i++) {
    pool->outs[i] = pool->arena;
    pool->outs[i].addr = (unsigned char *)pool->arena.addr + ctl_size + (size_t)i * SHK_TASK_OUT_MAX;
    pool->outs[i].size = SHK_TASK_OUT_MAX;
  }
  rc = shk__os_segment_commit(&pool->ctl_seg, 0, SHK__CTL_TABLE_OFF);
  if (rc != SHK_OK) {
    shk_task_pool_free(pool);
    return rc;
  }
  pool->ctl = pool->ctl_seg.addr;
  pool->ctl->magic = SHK__TASK_MAGIC;
  pool->ctl->version = SHK__TASK_VERSION;
  pool->ctl->workers = workers;
  /* Workers of a one-call run leave as soon as the job has no more chunks for them, so their
   * exits overlap with building the results. */
  pool->ctl->quit_after_job = one_shot;
  pool->ctl->handshake = needs_handshake(pool);
  if (mode != SHK_TASK_INLINE && !one_shot) rc = start_missing(pool, true);
  if (rc != SHK_OK) {
    shk_task_pool_free(pool);
    return rc;
  }
  *out = pool;
  return SHK_OK;
}

int shk__task_pool_create(unsigned workers, shk_task_mode mode, bool one_shot,
                          shk_task_pool **out) {
  return pool_create(workers, mode, one_shot, NULL, out);
}

static int task_pool_create_impl(unsigned workers, shk_task_mode mode, shk_task_pool **out) {
  shk__error_clear_os();
  return shk__task_pool_create(workers, mode, false, out);
}

int shk_task_pool_create(unsigned workers, shk_task_mode mode, shk_task_pool **out) {
  return SHK__DEBUG_RET(SHK__DEBUG_TASK, task_pool_create_impl(workers, mode, out));
}

int shk__task_pool_create_hosting(unsigned workers, bool one_shot, shk__task_host *host,
                                  shk_task_pool **out) {
  return pool_create(workers, SHK_TASK_PROCESSES, one_shot, host, out);
}

unsigned shk_task_pool_workers(const shk_task_pool *pool) {
  return pool ? (pool->mode == SHK_TASK_INLINE ? 1 : pool->workers) : 0;
}

/* ---- the job --------------------------------------------------------------------------- */

/* A function in no module (a closure or JIT code made at run time): workers forked after it
 * existed have it at the same address; the job carries its first bytes so that a worker can
 * tell. Started executables never have it. */
static int fn_by_address(shk_task_fn fn, shk__task_job *job) {
  if (!shk__os_caps_get()->has_fork) return SHK_EUNSUPPORTED;
  void *addr;
  memcpy(&addr, &fn, sizeof addr);
  size_t n = sizeof job->fn_code;
  /* Fewer bytes where the code ends at a page end. */
  size_t page = shk__os_caps_get()->page_size;
  size_t left = page - (size_t)((uintptr_t)addr % page);
  if (left < n) n = left;
  if (shk__os_memory_peek(addr, job->fn_code, n) != SHK_OK) return SHK_EUNSUPPORTED;
  job->fn_code_size = (uint32_t)n;
  job->fn_by_address = 1;
  return SHK_OK;
}

static int write_job(shk_task_pool *pool, const shk__task_call *call, uint32_t seq) {
  shk__task_ctl *ctl = pool->ctl;
  size_t count = call->chunks;
  int rc = commit_ctl(pool, SHK__CTL_TABLE_OFF, count * sizeof(shk__task_chunk_rec),
                      &pool->table_committed);
  if (rc == SHK_OK && call->arg_size > 0)
    rc = commit_ctl(pool, SHK__CTL_ARG_OFF, call->arg_size, &pool->arg_committed);
  if (rc != SHK_OK) return rc;
  shk__task_job *job = &ctl->job;
  memset(job, 0, sizeof *job);
  rc = shk__task_place_input(pool, call, job);
  if (rc != SHK_OK) return rc;
  job->chunk_count = count;
  atomic_store(&ctl->chunk_count, count);
  job->arg_size = call->arg_size;
  if (call->arg_size > 0) memcpy(shk__ctl_arg(ctl), call->arg, call->arg_size);
  job->fn_ptr = call->fn;
  /* The one-call form forks its workers after this point (and so does a replacement). */
  job->fn_inherited = pool->inherit_input;
  if (pool->mode == SHK_TASK_PROCESSES && !job->fn_inherited && !pool->host) {
    rc = shk__task_fn_locate(call->fn, &job->fn);
    if (rc == SHK_ENOENT) rc = fn_by_address(call->fn, job);
    if (rc != SHK_OK) return rc;
  }
  for (size_t i = 0; i < count; i++) {
    shk__task_chunk_rec *rec = shk__ctl_chunk(ctl, i);
    shk__task_bounds b = shk__task_chunk_bounds(call->size, call->item_size, call->halo, count, i);
    rec->offset = b.offset;
    rec->size = b.size;
    rec->readable = b.readable;
    rec->out_off = rec->out_len = 0;
    rec->code = 0;
    rec->worker = 0;
    atomic_store(&rec->state, SHK__STATE(seq, SHK__CHUNK_QUEUED));
  }
  for (unsigned i = 0; i < pool->workers; i++) {
    atomic_store(&shk__ctl_slot(ctl, i)->out_used, 0);
    atomic_store(&shk__ctl_slot(ctl, i)->armed, 1);
  }
  atomic_store(&ctl->finished, 0);
  atomic_store(&ctl->hint, 0);
  atomic_store(&ctl->stop, 0);
  atomic_store(&ctl->job_quiet, pool->one_shot && pool->mode == SHK_TASK_PROCESSES && !call->progress);
  return SHK_OK;
}

static void publish(shk_task_pool *pool, uint32_t seq) {
  atomic_store(&pool->ctl->job_seq, seq);
  for (unsigned i = 0; i < pool->workers; i++)
    if (pool->alive[i] && atomic_load(&shk__ctl_slot(pool->ctl, i)->sleeping))
      shk__os_channel_notify(&pool->ws[i].pool_end);
}

/* Moves chunk i from a state `match` accepts to `final`. Returns the state it found. */
static uint64_t finish_chunk(shk__task_ctl *ctl, uint32_t seq, uint64_t i, uint32_t final,
                             bool take_running, int code) {
  shk__task_chunk_rec *rec = shk__ctl_chunk(ctl, i);
  uint64_t s = atomic_load(&rec->state);
  for (;;) {
    uint32_t low = SHK__STATE_LOW(s);
    bool queued = low == SHK__CHUNK_QUEUED;
    bool running = low >= SHK__CHUNK_RUNNING;
    if (SHK__STATE_SEQ(s) != seq || !(queued || (running && take_running))) return s;
    if (atomic_compare_exchange_strong(&rec->state, &s, SHK__STATE(seq, final))) {
      rec->code = code;
      atomic_fetch_add(&ctl->finished, 1);
      return s;
    }
  }
}

/* Stops handing out chunks and ends every queued one as `final`. */
static void stop_queued(shk_task_pool *pool, uint32_t seq, uint64_t count, uint32_t final) {
  atomic_store(&pool->ctl->stop, 1);
  for (uint64_t i = 0; i < count; i++) finish_chunk(pool->ctl, seq, i, final, false, 0);
}

/* The deadline: queued chunks time out; in process mode so do running ones, whose workers are
 * killed (and replaced at the next call). Threads cannot be stopped: their chunks run on. */
static void expire(shk_task_pool *pool, uint32_t seq, uint64_t count) {
  atomic_store(&pool->ctl->stop, 1);
  bool kill[SHK_TASK_WORKERS_MAX] = {false};
  bool procs = pool->mode == SHK_TASK_PROCESSES;
  for (uint64_t i = 0; i < count; i++) {
    uint64_t s = finish_chunk(pool->ctl, seq, i, SHK__CHUNK_TIMED_OUT, procs, 0);
    uint32_t low = SHK__STATE_LOW(s);
    if (procs && low >= SHK__CHUNK_RUNNING && low - SHK__CHUNK_RUNNING < pool->workers)
      kill[low - SHK__CHUNK_RUNNING] = true;
  }
  for (unsigned k = 0; k < pool->workers; k++) {
    shk__os_exit how;
    if (kill[k]) stop_worker(pool, k, true, &how);
  }
}

/* Starts worker k for the job already published: gives it the job's input, then arms it. */
static int join_worker(shk_task_pool *pool, unsigned k, const shk__task_call *call) {
  int rc = start_worker(pool, k);
  if (rc != SHK_OK) return rc;
  rc = shk__task_give_job_input(pool, k, call);
  shk__task_slot *slot = shk__ctl_slot(pool->ctl, k);
  if (rc != SHK_OK) {
    shk__os_exit ignored;
    stop_worker(pool, k, true, &ignored);
    /* A worker host that refused its plugin may have ended before the hand-over: its reason,
     * written before it ended, is the call's answer, not the failed hand-over's SHK_EOS. */
    int why = host_refusal(pool, k);
    return why != 0 ? why : rc;
  }
  atomic_store(&slot->armed, 1);
  if (atomic_load(&slot->sleeping)) shk__os_channel_notify(&pool->ws[k].pool_end);
  return SHK_OK;
}

static bool any_queued(shk__task_ctl *ctl, uint32_t seq, uint64_t count) {
  for (uint64_t i = atomic_load(&ctl->hint); i < count; i++)
    if (atomic_load(&shk__ctl_chunk(ctl, i)->state) == SHK__STATE(seq, SHK__CHUNK_QUEUED))
      return true;
  return false;
}

/* A worker process ended during the job: its running chunk crashed; it is replaced while chunks
 * are still waiting. */
static void worker_ended(shk_task_pool *pool, unsigned k, uint32_t seq, uint64_t count,
                         const shk__task_call *call) {
  shk__os_exit how = {SHK__OS_EXITED, 0};
  stop_worker(pool, k, false, &how);
  for (uint64_t i = 0; i < count; i++) {
    uint64_t s = atomic_load(&shk__ctl_chunk(pool->ctl, i)->state);
    if (s == SHK__STATE(seq, SHK__CHUNK_RUNNING + k))
      finish_chunk(pool->ctl, seq, i, SHK__CHUNK_CRASHED, true, how.code);
  }
  if (atomic_load(&pool->ctl->stop) || !any_queued(pool->ctl, seq, count)) return;
  shk_lens_zone lens_start;
  SHK__LENS_ZONE(SHK__LENS_TASKS, &lens_start, "shk pool start", SHK__LENS_COLOR_POOL);
  join_worker(pool, k, call);
  SHK__LENS_ZONE_END(&lens_start);
}

/* Spins until *word changes from seen, at most ns. */
static bool spin_changed(_Atomic uint64_t *word, uint64_t seen, uint64_t ns) {
  uint64_t start = shk__os_now_ns();
  for (unsigned n = 0;; n++) {
    if (atomic_load(word) != seen) return true;
    if ((n & 15) == 15) {
      shk__os_yield();
      if (shk__os_now_ns() - start > ns) return false;
    }
  }
}

static void await_job(shk_task_pool *pool, const shk__task_call *call, uint32_t seq) {
  shk__task_ctl *ctl = pool->ctl;
  uint64_t count = call->chunks;
  uint64_t deadline = call->timeout_ms ? shk__os_now_ns() + (uint64_t)call->timeout_ms * 1000000u
                                       : UINT64_MAX;
  uint64_t reported = 0;
  bool cancelled = false;
  for (;;) {
    uint64_t fin = atomic_load(&ctl->finished);
    if (call->progress && fin != reported) {
      reported = fin;
      if (!cancelled && !call->progress((size_t)fin, (size_t)count, call->progress_user)) {
        cancelled = true;
        stop_queued(pool, seq, count, SHK__CHUNK_CANCELLED);
        continue;
      }
    }
    if (fin >= count) return;
    uint64_t now = shk__os_now_ns();
    if (now >= deadline) {
      expire(pool, seq, count);
      deadline = UINT64_MAX;
      continue;
    }
    if (!any_alive(pool)) {
      stop_queued(pool, seq, count, SHK__CHUNK_CRASHED);
      continue;
    }
    /* Freshly started workers need the CPU more than a polling pool does. */
    if (!pool->one_shot && spin_changed(&ctl->finished, fin, POOL_SPIN_NS)) continue;
    bool ended[SHK_TASK_WORKERS_MAX] = {false};
    atomic_store(&ctl->parent_sleeping, 1);
    if (atomic_load(&ctl->finished) == fin) {
      uint64_t slice = deadline - now < POOL_SLICE_NS ? deadline - now : POOL_SLICE_NS;
      /* A wait that fails (not a timeout) must not turn this loop into a busy one. */
      if (shk__task_wait_workers(pool->ws, pool->workers, slice, ended) == SHK_EOS)
        shk__os_sleep_ns(SHK__MIN(slice, (uint64_t)1000000u));
    }
    atomic_store(&ctl->parent_sleeping, 0);
    for (unsigned k = 0; k < pool->workers; k++)
      if (ended[k] && pool->alive[k]) worker_ended(pool, k, seq, count, call);
  }
}

/* Inline mode: the caller is the only worker. */
static void run_inline(shk_task_pool *pool, const shk__task_call *call, uint32_t seq) {
  shk__task_ctl *ctl = pool->ctl;
  uint64_t count = call->chunks;
  uint64_t deadline = call->timeout_ms ? shk__os_now_ns() + (uint64_t)call->timeout_ms * 1000000u
                                       : UINT64_MAX;
  shk_task_out out = {&pool->outs[0], 0, 0};
  for (uint64_t i = 0; i < count; i++) {
    shk__task_chunk_rec *rec = shk__ctl_chunk(ctl, i);
    if (atomic_load(&ctl->stop)) break;
    if (shk__os_now_ns() >= deadline) {
      stop_queued(pool, seq, count, SHK__CHUNK_TIMED_OUT);
      break;
    }
    uint64_t expected = SHK__STATE(seq, SHK__CHUNK_QUEUED);
    if (!atomic_compare_exchange_strong(&rec->state, &expected,
                                        SHK__STATE(seq, SHK__CHUNK_RUNNING)))
      continue;
    shk__task_run_chunk(ctl, 0, seq, i, call->data, call->fn, &out);
    if (call->progress && !call->progress((size_t)(i + 1), (size_t)count, call->progress_user))
      stop_queued(pool, seq, count, SHK__CHUNK_CANCELLED);
  }
}

/* Reaps the worker processes that ended while the pool was idle (killed, out of memory, or on
 * Linux the thread that forked them ended), so that they are replaced before the call hands the
 * workers anything: a segment given to a dead worker would fail the whole call. */
static void reap_idle_deaths(shk_task_pool *pool) {
  if (pool->mode != SHK_TASK_PROCESSES) return;
  bool ended[SHK_TASK_WORKERS_MAX] = {false};
  shk__task_wait_workers(pool->ws, pool->workers, 0, ended);
  for (unsigned i = 0; i < pool->workers; i++) {
    shk__os_exit how;
    if (ended[i] && pool->alive[i]) stop_worker(pool, i, false, &how);
  }
}

int shk__task_worker_restart(shk_task_pool *pool, unsigned i) {
  shk__os_exit how;
  stop_worker(pool, i, true, &how);
  return start_worker(pool, i);
}

static int replace_dead_workers(shk_task_pool *pool) {
  if (pool->mode == SHK_TASK_INLINE) return SHK_OK;
  reap_idle_deaths(pool);
  for (unsigned i = 0; i < pool->workers; i++)
    if (!pool->alive[i]) return start_missing(pool, false);
  return SHK_OK;
}

/* The one-call form's workers start after the job is published, so that the first one works
 * while the next one is being started. */
static int start_for_job(shk_task_pool *pool, const shk__task_call *call, uint32_t seq) {
  int rc = SHK_OK;
  shk_lens_zone lens_start;
  SHK__LENS_ZONE(SHK__LENS_TASKS, &lens_start, "shk pool start", SHK__LENS_COLOR_POOL);
  for (unsigned i = 0; i < pool->workers && rc == SHK_OK; i++) rc = join_worker(pool, i, call);
  if (rc == SHK_OK && needs_handshake(pool)) rc = await_ready(pool);
  SHK__LENS_ZONE_END(&lens_start);
  if (rc != SHK_OK) {
    stop_queued(pool, seq, call->chunks, SHK__CHUNK_CANCELLED);
    for (unsigned i = 0; i < pool->workers; i++) {
      shk__os_exit how;
      stop_worker(pool, i, true, &how);
    }
  }
  return rc;
}

int shk__task_pool_run(shk_task_pool *pool, const shk__task_call *call, shk_task_results **results) {
  if (atomic_flag_test_and_set(&pool->busy)) return SHK_EBUSY;
  shk_lens_zone lens_call, lens_copy, lens_results;
  SHK__LENS_TASK(&lens_call);
  bool deferred = pool->one_shot && pool->mode != SHK_TASK_INLINE && !pool->started;
  int rc = deferred ? SHK_OK : replace_dead_workers(pool);
  uint32_t seq = 0;
  if (rc == SHK_OK) {
    seq = ++pool->seq;
    if (seq == 0) seq = ++pool->seq; /* 0 means "no job yet" to a new worker */
    rc = write_job(pool, call, seq);
  }
  if (rc == SHK_OK && pool->mode == SHK_TASK_INLINE) {
    atomic_store(&pool->ctl->job_seq, seq);
    run_inline(pool, call, seq);
  } else if (rc == SHK_OK) {
    publish(pool, seq);
    /* A copy-in runs now, in chunk order: workers start on the first chunks meanwhile. */
    SHK__LENS_ZONE_IN(&lens_call, &lens_copy, "shk copy-in", SHK__LENS_COLOR_COPY);
    shk__task_copy_job_input(pool, call->size);
    SHK__LENS_ZONE_END(&lens_copy);
    if (deferred) {
      pool->started = true;
      rc = start_for_job(pool, call, seq);
    }
    if (rc == SHK_OK) await_job(pool, call, seq);
  }
  SHK__LENS_ZONE_IN(&lens_call, &lens_results, "shk results", SHK__LENS_COLOR_RESULTS);
  if (rc == SHK_OK)
    rc = shk__task_results_build(pool->ctl, seq, call->chunks, pool->outs, pool->workers, results);
  SHK__LENS_ZONE_END(&lens_results);
  SHK__LENS_TASK_END(&lens_call, call->chunks, pool->workers, pool->mode, call->size);
  atomic_flag_clear(&pool->busy);
  return rc;
}

static int task_pool_run_impl(shk_task_pool *pool, const void *data, size_t size, shk_task_fn fn,
                              const shk_task_options *opts, shk_task_results **results) {
  shk__error_clear_os();
  if (results) *results = NULL;
  if (!pool) return SHK_EINVAL;
  /* A hosted pool runs its plugin's function, and only that. */
  if (pool->host ? fn != NULL : fn == NULL) return SHK_EINVAL;
  shk_task_options o;
  int rc = shk__task_options_read(opts, &o);
  if (rc != SHK_OK) return rc;
  shk__task_call call;
  rc = shk__task_call_init(&call, data, size, pool->host ? shk__task_hosted_fn : fn, &o,
                               shk_task_pool_workers(pool));
  if (rc != SHK_OK || !results) return rc == SHK_OK ? SHK_EINVAL : rc;
  return shk__task_pool_run(pool, &call, results);
}

int shk_task_pool_run(shk_task_pool *pool, const void *data, size_t size, shk_task_fn fn,
                      const shk_task_options *opts, shk_task_results **results) {
  return SHK__DEBUG_RET(SHK__DEBUG_TASK, task_pool_run_impl(pool, data, size, fn, opts, results));
}
