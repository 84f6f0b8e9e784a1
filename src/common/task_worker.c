/* The worker side of chunk tasks: wait for a job, claim chunks one by one, run them, record how
 * they ended. The same loop serves worker processes and worker threads; inline mode reuses
 * shk__task_run_chunk(). Everything read from the control segment is checked before use. */
#include <string.h>

#include "lens_hook.h"
#include "task_internal.h"

/* How long an idle worker polls for the next job before it sleeps: a call that follows within
 * this time is dispatched in well under a microsecond instead of a ~30 us cross-CPU wake-up. */
#define WORKER_SPIN_NS 60000u

typedef struct mapped_input {
  uint64_t id;  /* 0: none */
  bool release; /* unmap when the job ends */
  uint32_t seq; /* ... that job */
  shk__os_segment seg;
} mapped_input;

typedef struct worker_state {
  shk__task_ctl *ctl;
  shk__task_slot *slot;
  unsigned index;
  const shk__task_boot *boot;
  const shk__os_channel *link;
  shk__os_segment out_seg;
  shk_task_out out;
  mapped_input kept;     /* the pool's staging segment, kept from call to call */
  mapped_input borrowed; /* the caller's segment (kept while the same one comes back) */
  bool same_space;
  shk__task_fn_id fn_id;
  shk_task_fn fn;
  shk__os_library *fn_library; /* the module loaded by path to find fn, if any */
  shk_task_fn fixed_fn;        /* a worker host's plugin function */
} worker_state;

static void notify_parent(shk__task_ctl *ctl, const shk__os_channel *link) {
  if (link && atomic_load(&ctl->parent_sleeping)) shk__os_channel_notify(link);
}

/* Waits until the pool's copy-in has placed the input's first `need` bytes (it runs beside the
 * work, in chunk order, and always finishes: a copy takes milliseconds, so spin, then yield). */
static void wait_copied(shk__task_ctl *ctl, uint64_t need) {
  for (unsigned n = 0; atomic_load_explicit(&ctl->copied, memory_order_acquire) < need; n++) {
    if (n < 64) continue;
    if (n < 256) shk__os_yield();
    else shk__os_sleep_ns(20000u);
  }
}

void shk__task_run_chunk(shk__task_ctl *ctl, unsigned worker, uint32_t seq, uint64_t i,
                         const unsigned char *input, shk_task_fn fn, shk_task_out *out) {
  shk__task_chunk_rec *rec = shk__ctl_chunk(ctl, i);
  shk__task_slot *slot = shk__ctl_slot(ctl, worker);
  uint64_t total = ctl->job.input_size, arg_size = ctl->job.arg_size;
  uint64_t off = rec->offset, size = rec->size, readable = rec->readable;
  int rc;
  shk_lens_zone lens_chunk;
  SHK__LENS_ZONE(SHK__LENS_TASKS, &lens_chunk, "shk chunk", SHK__LENS_COLOR_CHUNK);
  out->used = (size_t)atomic_load(&slot->out_used);
  size_t start = out->used;
  /* out_used comes from the slot too: past the output segment, every write would be refused
   * (SHK_ELIMIT) after the function ran; refuse before it runs. */
  if (off > total || readable > total - off || size > readable || arg_size > SHK_TASK_ARG_MAX ||
      (input == NULL && readable > 0) || out->used > out->seg->size) {
    rc = SHK_EFORMAT; /* a corrupt table: refuse rather than read out of bounds */
  } else {
    wait_copied(ctl, off + readable);
    shk_task_chunk c;
    c.data = readable > 0 ? input + off : NULL;
    c.size = (size_t)size;
    c.readable = (size_t)readable;
    c.index = (size_t)i;
    c.count = (size_t)ctl->job.chunk_count;
    c.offset = (size_t)off;
    c.total = (size_t)total;
    c.arg = arg_size > 0 ? shk__ctl_arg(ctl) : NULL;
    c.arg_size = (size_t)arg_size;
    rc = fn(&c, out);
  }
  SHK__LENS_CHUNK_END(&lens_chunk, i, off, size, rc);
  rec->code = rc;
  rec->worker = worker;
  rec->out_off = start;
  rec->out_len = out->used - start;
  atomic_store(&slot->out_used, out->used);
  uint64_t expected = SHK__STATE(seq, SHK__CHUNK_RUNNING + worker);
  /* Fails only when the pool gave up on this chunk (deadline): the result is then discarded. */
  if (atomic_compare_exchange_strong(&rec->state, &expected, SHK__STATE(seq, SHK__CHUNK_DONE)))
    atomic_fetch_add(&ctl->finished, 1);
}

/* Claims the next queued chunk of job seq; -1 when there is none (or the job is over). */
static int64_t claim_chunk(shk__task_ctl *ctl, unsigned worker, uint32_t seq, uint64_t count) {
  uint64_t i = atomic_load(&ctl->hint);
  for (; i < count; i++) {
    if (atomic_load(&ctl->stop)) return -1;
    shk__task_chunk_rec *rec = shk__ctl_chunk(ctl, i);
    uint64_t expected = SHK__STATE(seq, SHK__CHUNK_QUEUED);
    if (atomic_compare_exchange_strong(&rec->state, &expected,
                                       SHK__STATE(seq, SHK__CHUNK_RUNNING + worker))) {
      uint64_t h = atomic_load(&ctl->hint);
      while (h < i + 1 && !atomic_compare_exchange_weak(&ctl->hint, &h, i + 1)) {
      }
      return (int64_t)i;
    }
    if (SHK__STATE_SEQ(expected) != seq) return -1; /* the table belongs to another job now */
  }
  return -1;
}

static void drop_input(worker_state *w, mapped_input *m) {
  if (m->id != 0) shk__os_segment_close(&m->seg);
  m->id = 0;
  if (m == &w->borrowed) atomic_store(&w->slot->have_borrowed, 0);
}

/* Reads the input the slot names, consistently (see the sequence lock in give_input). */
static void read_input_slot(shk__task_slot *slot, uint64_t *id, uint64_t *token, uint64_t *size,
                            uint32_t *flags, uint32_t *seq) {
  for (;;) {
    uint32_t v = atomic_load(&slot->in_version);
    if (v & 1) {
      shk__os_yield();
      continue;
    }
    *id = atomic_load(&slot->in_id);
    *token = atomic_load(&slot->in_token);
    *size = atomic_load(&slot->in_size);
    *flags = atomic_load(&slot->in_flags);
    *seq = atomic_load(&slot->in_seq);
    if (atomic_load(&slot->in_version) == v) return;
  }
}

/* Maps the segment the slot names, when it is not the one mapped already. */
static mapped_input *map_input(worker_state *w) {
  uint64_t id, token, size;
  uint32_t flags, seq;
  read_input_slot(w->slot, &id, &token, &size, &flags, &seq);
  mapped_input *m = (flags & SHK__IN_BORROWED) ? &w->borrowed : &w->kept;
  if (id == m->id) return m;
  drop_input(w, m);
  m->release = (flags & SHK__IN_RELEASE) != 0;
  m->seq = seq;
  if (id == 0 || size == 0 || size > (uint64_t)PTRDIFF_MAX) return m;
  uint64_t keep = atomic_load(&w->slot->keep_id);
  if (shk__task_take_segment(w->boot, id, token, (size_t)size, keep, &m->seg) == SHK_OK) {
    m->id = id;
    if (m == &w->borrowed) atomic_store(&w->slot->have_borrowed, id);
  }
  return m;
}

static const unsigned char *job_input(worker_state *w) {
  const shk__task_job *job = &w->ctl->job;
  if (job->input_kind == SHK__INPUT_ADDRESS) return (const unsigned char *)(uintptr_t)job->input_addr;
  if (job->input_kind != SHK__INPUT_SEGMENT) return NULL;
  mapped_input *m = map_input(w);
  if (m->id == 0) return NULL;
  if (job->input_offset > m->seg.size || job->input_size > m->seg.size - job->input_offset)
    return NULL;
  return (const unsigned char *)m->seg.addr + job->input_offset;
}

/* Stands in for a function made at run time that this worker cannot reach (it was started
 * before the function existed): the chunk fails with SHK_EUNSUPPORTED. */
static int unreachable_fn(const shk_task_chunk *chunk, shk_task_out *out) {
  (void)chunk;
  (void)out;
  return SHK_EUNSUPPORTED;
}

/* A function in no module, at the pool's address, when the same code lies there here. */
static shk_task_fn fn_here(const shk__task_job *job) {
  unsigned char code[sizeof job->fn_code];
  void *addr;
  memcpy(&addr, &job->fn_ptr, sizeof addr);
  size_t n = job->fn_code_size;
  if (n == 0 || n > sizeof code || shk__os_memory_peek(addr, code, n) != SHK_OK ||
      memcmp(code, job->fn_code, n) != 0)
    return unreachable_fn;
  return job->fn_ptr;
}

static shk_task_fn job_fn(worker_state *w) {
  /* A thread, or a process forked after the pool located the function, has it at this address;
   * any other worker resolves it by module and offset. */
  if (w->fixed_fn) return w->fixed_fn;
  if (w->same_space || w->ctl->job.fn_inherited) return w->ctl->job.fn_ptr;
  if (w->ctl->job.fn_by_address) return fn_here(&w->ctl->job);
  const shk__task_fn_id *id = &w->ctl->job.fn;
  if (w->fn && w->fn_id.base == id->base && w->fn_id.offset == id->offset &&
      strncmp(w->fn_id.module, id->module, sizeof id->module) == 0)
    return w->fn;
  memcpy(&w->fn_id, id, sizeof *id);
  w->fn_id.module[sizeof w->fn_id.module - 1] = '\0';
  if (shk__task_fn_resolve(&w->fn_id, &w->fn_library, &w->fn) != SHK_OK) w->fn = NULL;
  return w->fn;
}

/* A stand-in for a function the worker cannot find: the chunk fails with SHK_ENOENT. */
static int missing_fn(const shk_task_chunk *chunk, shk_task_out *out) {
  (void)chunk;
  (void)out;
  return SHK_ENOENT;
}

static void serve_job(worker_state *w, uint32_t seq) {
  shk__task_ctl *ctl = w->ctl;
  /* Until a claim succeeds the job may already be the next one, being written: read only the
   * atomics (the slot's input, the chunk count), never the job's plain fields. */
  map_input(w);
  for (;;) {
    uint64_t count = atomic_load(&ctl->chunk_count);
    if (count > SHK_TASK_CHUNKS_MAX) break;
    int64_t i = claim_chunk(ctl, w->index, seq, count);
    if (i < 0) break;
    /* The claim succeeded, so the job's fields are stable until this chunk ends. */
    const unsigned char *input = job_input(w);
    shk_task_fn fn = job_fn(w);
    if (!fn) fn = missing_fn;
    if (!input && ctl->job.input_size > 0) fn = missing_fn;
    shk__task_run_chunk(ctl, w->index, seq, (uint64_t)i, input, fn, &w->out);
    /* A quiet job's workers leave when it ends: their exits wake the pool, once. */
    if (!atomic_load(&ctl->job_quiet)) notify_parent(ctl, w->link);
  }
  /* Not a segment given for a later job, which the slot may already name. */
  if (w->borrowed.release && w->borrowed.seq == seq) drop_input(w, &w->borrowed);
}

/* Whether there is a job newer than `seen` that this worker has been armed for (a worker started
 * during a job waits until the pool has given it the job's input). */
static bool job_ready(worker_state *w, uint32_t seen, uint32_t *seq) {
  *seq = atomic_load(&w->ctl->job_seq);
  return *seq != seen && atomic_load(&w->slot->armed);
}

/* Waits for a job newer than `seen`: spins first, then sleeps on the link. */
static bool wait_for_job(worker_state *w, uint32_t seen, uint32_t *seq) {
  shk__task_ctl *ctl = w->ctl;
  uint64_t start = shk__os_now_ns();
  for (unsigned n = 0;; n++) {
    if (atomic_load(&ctl->quit)) return false;
    if (job_ready(w, seen, seq)) return true;
    /* Yielding keeps a polling worker from taking the CPU the pool needs on a busy machine. */
    if ((n & 15) == 15) {
      shk__os_yield();
      if (shk__os_now_ns() - start > WORKER_SPIN_NS) break;
    }
  }
  for (;;) {
    atomic_store(&w->slot->sleeping, 1);
    bool ready = job_ready(w, seen, seq);
    bool quit = atomic_load(&ctl->quit);
    if (ready || quit) {
      atomic_store(&w->slot->sleeping, 0);
      return !quit;
    }
    int rc = shk__task_link_wait(w->boot, UINT64_MAX);
    atomic_store(&w->slot->sleeping, 0);
    if (rc == SHK_ENOENT) return false; /* the pool is gone */
  }
}

void shk__task_worker_serve(const shk__task_boot *boot) {
  shk__task_ctl *ctl = boot->ctl.addr;
  if (!ctl || boot->ctl.size < SHK__CTL_TABLE_OFF || ctl->magic != SHK__TASK_MAGIC ||
      ctl->version != SHK__TASK_VERSION || boot->index >= ctl->workers ||
      boot->index >= SHK_TASK_WORKERS_MAX)
    return;
  worker_state w;
  memset(&w, 0, sizeof w);
  w.ctl = ctl;
  w.index = boot->index;
  w.slot = shk__ctl_slot(ctl, boot->index);
  w.boot = boot;
  w.link = &boot->link;
  w.same_space = boot->same_space;
  w.fixed_fn = boot->fixed_fn;
  w.out_seg = boot->out;
  w.out.seg = &w.out_seg;
  /* A process started anew (not forked: it has its starter's handle) inherits nothing of its
   * pool caller's instrumentation but the record in its slot. */
  if (!boot->same_space && boot->parent.handle) SHK__LENS_JOIN(&w.slot->lens);
  SHK__LENS_WORKER(boot->same_space, boot->index);
  atomic_store(&w.slot->ready, 1);
  if (atomic_load(&ctl->handshake)) notify_parent(ctl, w.link);
  uint32_t seen = 0, seq;
  while (wait_for_job(&w, seen, &seq)) {
    seen = seq;
    serve_job(&w, seq);
    if (atomic_load(&ctl->quit_after_job)) break;
  }
  drop_input(&w, &w.kept);
  drop_input(&w, &w.borrowed);
  shk__os_library_close(w.fn_library);
  SHK__LENS_WORKER_END(boot->same_space);
}

void shk__task_worker_refuse(const shk__task_boot *boot, int code) {
  shk__task_ctl *ctl = boot->ctl.addr;
  if (!ctl || boot->ctl.size < SHK__CTL_TABLE_OFF || ctl->magic != SHK__TASK_MAGIC ||
      ctl->version != SHK__TASK_VERSION || boot->index >= ctl->workers ||
      boot->index >= SHK_TASK_WORKERS_MAX)
    return;
  atomic_store(&shk__ctl_slot(ctl, boot->index)->start_error, code);
  notify_parent(ctl, &boot->link);
}
