/* Chunk tasks, the caller's side: options and their defaults, the one-call form, the output
 * writer, and the results (copied out of the workers' output segments into one allocation). */
#include <stdlib.h>
#include <string.h>

#include "task_internal.h"
#include "debug.h"

struct shk_task_results {
  size_t count;
  shk_task_result items[]; /* followed by the result bytes */
};

const char *shk_task_status_name(shk_task_status status) {
  switch (status) {
    case SHK_TASK_OK: return "ok";
    case SHK_TASK_FAILED: return "failed";
    case SHK_TASK_CRASHED: return "crashed";
    case SHK_TASK_TIMED_OUT: return "timed out";
    case SHK_TASK_CANCELLED: return "cancelled";
  }
  return "unknown";
}

/* Every field's zero is its default. */
static const shk_task_options task_defaults = {.struct_size = sizeof(shk_task_options)};

static const shk__options_layout task_layout = {
    sizeof(shk_task_options), SHK__OPTIONS_END(shk_task_options, function_name),
    SHK__OPTIONS_END(shk_task_options, function_name), NULL, 0, &task_defaults};

void shk_task_options_init_size(shk_task_options *opts, size_t size) {
  shk__options_init(&task_layout, opts, size);
}

int shk__task_options_read(const shk_task_options *opts, shk_task_options *out) {
  return shk__options_read(&task_layout, opts, out);
}

int shk__task_call_init(shk__task_call *call, const void *data, size_t size, shk_task_fn fn,
                        const shk_task_options *opts, unsigned default_chunks) {
  if (!opts) opts = &task_defaults;
  if (!fn || (!data && size > 0) || shk__range_wraps(data, size)) return SHK_EINVAL;
  if (opts->mode != SHK_TASK_PROCESSES && opts->mode != SHK_TASK_THREADS &&
      opts->mode != SHK_TASK_INLINE)
    return SHK_EINVAL;
  if (opts->arg_size > SHK_TASK_ARG_MAX || opts->workers > SHK_TASK_WORKERS_MAX) return SHK_ERANGE;
  if (!opts->arg && opts->arg_size > 0) return SHK_EINVAL;
  memset(call, 0, sizeof *call);
  call->data = data;
  call->size = size;
  call->fn = fn;
  call->chunks = opts->chunks ? opts->chunks : (default_chunks ? default_chunks : 1);
  call->halo = opts->halo;
  call->item_size = opts->item_size > 1 ? opts->item_size : 1;
  call->arg = opts->arg;
  call->arg_size = opts->arg_size;
  call->timeout_ms = opts->timeout_ms;
  call->progress = opts->progress;
  call->progress_user = opts->progress_user;
  return shk__task_check_split(size, call->item_size, call->chunks);
}

static int task_run_impl(const void *data, size_t size, shk_task_fn fn,
                         const shk_task_options *caller, shk_task_results **results) {
  shk__error_clear_os();
  if (results) *results = NULL;
  shk_task_options o;
  int rc = shk__task_options_read(caller, &o);
  if (rc != SHK_OK) return rc;
  const shk_task_options *opts = &o;
  if (opts->mode == SHK_TASK_HOSTED) return shk__task_run_hosted(data, size, fn, opts, results);
  unsigned workers = opts->workers ? opts->workers : shk__task_default_workers();
  shk__task_call call;
  rc = shk__task_call_init(&call, data, size, fn, opts, workers);
  if (rc != SHK_OK) return rc;
  if (!results) return SHK_EINVAL;
  /* More workers than chunks would only be started and stopped. */
  if (call.chunks < workers) workers = (unsigned)call.chunks;
  shk_task_pool *pool;
  rc = shk__task_pool_create(workers, opts->mode, true, &pool);
  if (rc != SHK_OK) return rc;
  rc = shk__task_pool_run(pool, &call, results);
  shk_task_pool_free(pool);
  return rc;
}

int shk_task_run(const void *data, size_t size, shk_task_fn fn, const shk_task_options *caller,
                 shk_task_results **results) {
  return SHK__DEBUG_RET(SHK__DEBUG_TASK, task_run_impl(data, size, fn, caller, results));
}

static int task_out_write_impl(shk_task_out *out, const void *bytes, size_t size) {
  if (!out || (!bytes && size > 0) || shk__range_wraps(bytes, size)) return SHK_EINVAL;
  if (size == 0) return SHK_OK;
  size_t cap = out->seg->size;
  if (out->used > cap || size > cap - out->used) return SHK_ELIMIT;
  size_t end = out->used + size;
  if (end > out->committed) {
    /* Commit in steps of at least 1 MiB so that small writes cost no system call. */
    size_t want = SHK__MAX(end, SHK__MIN(cap, out->committed + ((size_t)1 << 20)));
    int rc = shk__os_segment_commit(out->seg, 0, want);
    if (rc != SHK_OK) return rc;
    out->committed = want;
  }
  memcpy((unsigned char *)out->seg->addr + out->used, bytes, size);
  out->used = end;
  return SHK_OK;
}

int shk_task_out_write(shk_task_out *out, const void *bytes, size_t size) {
  return SHK__DEBUG_RET(SHK__DEBUG_TASK, task_out_write_impl(out, bytes, size));
}

/* ---- results ---------------------------------------------------------------------------- */

static shk_task_status status_of(uint32_t low, int code) {
  switch (low) {
    case SHK__CHUNK_DONE: return code == 0 ? SHK_TASK_OK : SHK_TASK_FAILED;
    case SHK__CHUNK_CRASHED: return SHK_TASK_CRASHED;
    case SHK__CHUNK_TIMED_OUT: return SHK_TASK_TIMED_OUT;
    default: return SHK_TASK_CANCELLED;
  }
}

/* Where chunk i's bytes are, or false when it has none or its record is not plausible. */
static bool chunk_bytes(const shk__task_chunk_rec *rec, const shk__os_segment *outs,
                        unsigned nouts, const unsigned char **data, size_t *len) {
  if (rec->worker >= nouts || rec->out_len == 0) return false;
  const shk__os_segment *seg = &outs[rec->worker];
  if (rec->out_off > seg->size || rec->out_len > seg->size - rec->out_off) return false;
  *data = (const unsigned char *)seg->addr + rec->out_off;
  *len = (size_t)rec->out_len;
  return true;
}

int shk__task_results_build(shk__task_ctl *ctl, uint32_t seq, uint64_t count, shk__os_segment *outs,
                            unsigned nouts, shk_task_results **results) {
  size_t bytes = 0, used[SHK_TASK_WORKERS_MAX] = {0};
  for (uint64_t i = 0; i < count; i++) {
    const shk__task_chunk_rec *rec = shk__ctl_chunk(ctl, i);
    const unsigned char *d;
    size_t len;
    if (SHK__STATE_LOW(atomic_load(&rec->state)) == SHK__CHUNK_DONE &&
        chunk_bytes(rec, outs, nouts, &d, &len)) {
      if (len > SIZE_MAX - bytes) return SHK_EOVERFLOW;
      bytes += len;
      used[rec->worker] = SHK__MAX(used[rec->worker], (size_t)(rec->out_off + len));
    }
  }
  /* Pages a worker committed in its own mapping are made usable in this one too (Windows). */
  for (unsigned w = 0; w < nouts && w < SHK_TASK_WORKERS_MAX; w++) {
    int rc = shk__os_segment_commit(&outs[w], 0, used[w]);
    if (rc != SHK_OK) return rc;
  }
  size_t head = sizeof(shk_task_results) + (size_t)count * sizeof(shk_task_result);
  if (bytes > SIZE_MAX - head) return SHK_EOVERFLOW;
  shk_task_results *r = shk__malloc(head + bytes);
  if (!r) return SHK_ENOMEM;
  r->count = (size_t)count;
  unsigned char *cursor = (unsigned char *)r + head;
  bool crashed = false, timed_out = false, cancelled = false, failed = false;
  for (uint64_t i = 0; i < count; i++) {
    const shk__task_chunk_rec *rec = shk__ctl_chunk(ctl, i);
    uint64_t s = atomic_load(&rec->state);
    uint32_t low = SHK__STATE_SEQ(s) == seq ? SHK__STATE_LOW(s) : SHK__CHUNK_CANCELLED;
    shk_task_result *res = &r->items[i];
    res->status = status_of(low, rec->code);
    res->code = res->status == SHK_TASK_OK || res->status == SHK_TASK_CANCELLED ||
                res->status == SHK_TASK_TIMED_OUT ? 0 : rec->code;
    res->offset = (size_t)rec->offset;
    res->length = (size_t)rec->size;
    res->data = NULL;
    res->size = 0;
    const unsigned char *d;
    size_t len;
    if (low == SHK__CHUNK_DONE && chunk_bytes(rec, outs, nouts, &d, &len) &&
        len <= (size_t)((unsigned char *)r + head + bytes - cursor)) {
      memcpy(cursor, d, len);
      res->data = cursor;
      res->size = len;
      cursor += len;
    }
    crashed |= res->status == SHK_TASK_CRASHED;
    timed_out |= res->status == SHK_TASK_TIMED_OUT;
    cancelled |= res->status == SHK_TASK_CANCELLED;
    failed |= res->status == SHK_TASK_FAILED;
  }
  *results = r;
  return crashed ? SHK_ECRASHED : timed_out ? SHK_ETIMEDOUT : cancelled ? SHK_ECANCELED
                                                : failed ? SHK_ECHUNK : SHK_OK;
}

size_t shk_task_results_count(const shk_task_results *results) {
  return results ? results->count : 0;
}

const shk_task_result *shk_task_results_get(const shk_task_results *results, size_t index) {
  if (!results || index >= results->count) return NULL;
  return &results->items[index];
}

void shk_task_results_free(shk_task_results *results) { free(results); }
