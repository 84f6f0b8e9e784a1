/* Where a pool's workers find a job's input: in place (threads, inline, a one-call fork), in the
 * caller's segment (given to each worker once and kept while it comes back), or copied once
 * into the pool's staging segment, which is kept warm and grown. */
#include <string.h>

#include "task_copy.h"
#include "task_internal.h"

/* Gives worker i the input segment (id, seg) unless it has it, and names it in its slot. The
 * staging segment is given once (the worker keeps it); a caller's segment until the worker
 * reports it mapped (a worker that skipped a job never took it). */
static int give_input(shk_task_pool *pool, unsigned i, const shk__os_segment *seg, uint64_t id,
                      bool staging) {
  shk__task_slot *slot = shk__ctl_slot(pool->ctl, i);
  uint64_t token = staging ? pool->given_token[i] : 0;
  bool has = staging ? pool->given[i] == id
                     : !pool->ctl->job.release && atomic_load(&slot->have_borrowed) == id;
  if (!has) {
    int rc = shk__task_give_segment(&pool->ws[i], seg, id, &token);
    if (rc != SHK_OK) return rc;
  }
  if (staging) {
    pool->given[i] = id;
    pool->given_token[i] = token;
  }
  /* A sequence lock: a worker that reads while this writes sees an odd or changed version. */
  atomic_fetch_add(&slot->in_version, 1);
  atomic_store(&slot->in_token, token);
  atomic_store(&slot->in_size, seg->size);
  atomic_store(&slot->in_id, id);
  atomic_store(&slot->in_seq, pool->seq);
  atomic_store(&slot->in_flags, staging ? 0u
                                        : SHK__IN_BORROWED | (pool->ctl->job.release ? SHK__IN_RELEASE : 0u));
  atomic_fetch_add(&slot->in_version, 1);
  atomic_store(&slot->keep_id, pool->staging_id);
  return SHK_OK;
}

static int give_input_all(shk_task_pool *pool, const shk__os_segment *seg, uint64_t id,
                          bool staging) {
  for (unsigned i = 0; i < pool->workers; i++) {
    if (!pool->alive[i]) continue;
    int rc = give_input(pool, i, seg, id, staging);
    /* The worker may have died since the pool last looked: a new one gets the segment. */
    if (rc != SHK_OK && shk__task_worker_restart(pool, i) == SHK_OK)
      rc = give_input(pool, i, seg, id, staging);
    if (rc != SHK_OK) return rc;
  }
  return SHK_OK;
}

/* The id under which workers know the caller's segment: the same as last time when it is the
 * same object (workers then keep it mapped: no new page faults), otherwise a new one; where the
 * system cannot tell, a new one each time, and the workers unmap it after the job. */
static uint64_t borrow_id(shk_task_pool *pool, const shk__os_segment *seg, uint32_t *release) {
  *release = 0;
  if (pool->borrow_id != 0 && pool->borrow_size == seg->size &&
      shk__os_segment_ref_same(&pool->borrow_ref, seg))
    return pool->borrow_id;
  shk__os_segment_ref_drop(&pool->borrow_ref);
  pool->borrow_id = 0;
  if (shk__os_segment_ref_take(seg, &pool->borrow_ref) != SHK_OK) {
    *release = 1;
    return ++pool->next_id;
  }
  pool->borrow_id = ++pool->next_id;
  pool->borrow_size = seg->size;
  return pool->borrow_id;
}

/* Grows the staging segment to hold size bytes: a new segment (the old one's pages were
 * touched, but a bigger one must be made anyway), rounded up to a power of two. */
static int grow_staging(shk_task_pool *pool, size_t size) {
  if (pool->staging.addr && pool->staging.size >= size) return SHK_OK;
  size_t want = 1u << 16;
  while (want < size && want <= SIZE_MAX / 2) want *= 2;
  if (want < size) want = size;
  shk__os_segment seg;
  int rc = shk__os_segment_create(NULL, shk__round_up(want, shk__os_caps_get()->page_size), &seg);
  if (rc != SHK_OK) return shk__task_segment_code(rc);
  shk__os_segment_close(&pool->staging);
  pool->staging = seg;
  pool->staging_id = ++pool->next_id;
  return SHK_OK;
}

/* Describes where the workers find the input: in place, in the caller's segment, or copied once
 * into the staging segment. */
int shk__task_place_input(shk_task_pool *pool, const shk__task_call *call, shk__task_job *job) {
  job->input_size = call->size;
  job->borrowed = 0;
  job->release = 0;
  job->input_offset = 0;
  pool->copy_from = NULL;
  atomic_store(&pool->ctl->copied, UINT64_MAX); /* in place: no chunk waits */
  if (call->size == 0 || pool->mode != SHK_TASK_PROCESSES || pool->inherit_input) {
    job->input_kind = SHK__INPUT_ADDRESS;
    job->input_addr = (uint64_t)(uintptr_t)call->data;
    return SHK_OK;
  }
  job->input_kind = SHK__INPUT_SEGMENT;
  shk_shm *shm;
  size_t offset;
  if (shk__shm_find(call->data, call->size, &shm, &offset) == SHK_OK) {
    const shk__os_segment *seg = shk__shm_os_segment(shm);
    job->borrowed = 1;
    job->input_offset = offset;
    uint64_t id = borrow_id(pool, seg, &job->release);
    pool->job_in_id = id;
    return give_input_all(pool, seg, id, false);
  }
  int rc = grow_staging(pool, call->size);
  if (rc != SHK_OK) return rc;
  /* Copied once the job is published, beside the work (shk__task_copy_job_input). */
  pool->copy_from = call->data;
  atomic_store(&pool->ctl->copied, 0);
  return give_input_all(pool, &pool->staging, pool->staging_id, true);
}

void shk__task_copy_job_input(shk_task_pool *pool, size_t size) {
  if (!pool->copy_from) return;
  shk__task_copy_in_order(pool->staging.addr, pool->copy_from, size,
                          shk__os_cpu_count(), &pool->ctl->copied);
  pool->copy_from = NULL;
}

int shk__task_give_job_input(shk_task_pool *pool, unsigned k, const shk__task_call *call) {
  shk__task_job *job = &pool->ctl->job;
  if (job->input_kind != SHK__INPUT_SEGMENT) return SHK_OK;
  shk_shm *shm;
  size_t offset;
  if (job->borrowed && shk__shm_find(call->data, call->size, &shm, &offset) == SHK_OK)
    return give_input(pool, k, shk__shm_os_segment(shm), pool->job_in_id, false);
  return give_input(pool, k, &pool->staging, pool->staging_id, true);
}

void shk__task_input_release(shk_task_pool *pool) {
  shk__os_segment_ref_drop(&pool->borrow_ref);
  shk__os_segment_close(&pool->staging);
}
