/* What each thread keeps for buffers: its parked small objects (buf_recycle.c) and a block of
 * ids reserved from the shared counter, so that making and ending a small heap buffer writes no
 * shared memory. A thread's state is made on first need, listed (for the count of parked
 * objects, and so that leak checkers see parked memory as reachable) and freed as the thread
 * ends, through a thread-exit key of the OS layer. */
#include <stdlib.h>

#include "buf_internal.h"

SHK__THREAD_LOCAL shk__buf_thread *shk__buf_this_thread;

/* Ids are handed out in blocks: one shared increment per block, none per buffer. */
#define ID_BLOCK 1024
static atomic_uint_fast64_t next_unreserved_id = 1;

static shk__once threads_once;
static shk__os_thread_key thread_key;
static bool have_key;
static shk__buf_thread *threads; /* guarded by SHK__LOCK_BUF_THREADS */
/* The slab_out counts of the threads that ended (their slots may still be out, given back later
 * by others, who count that apart): guarded by SHK__LOCK_BUF_THREADS. */
static size_t ended_slab_out;

static void lock_threads(void) { shk__lock(SHK__LOCK_BUF_THREADS); }
static void unlock_threads(void) { shk__unlock(SHK__LOCK_BUF_THREADS); }

static void unlist(shk__buf_thread *t) {
  lock_threads();
  ended_slab_out += atomic_load_explicit(&t->slab_out, memory_order_relaxed);
  if (t->prev) t->prev->next = t->next;
  else threads = t->next;
  if (t->next) t->next->prev = t->prev;
  unlock_threads();
}

static void thread_ended(void *value) {
  shk__buf_thread *t = value;
  shk__buf_recycle_flush_thread(t);
  unlist(t);
  if (shk__buf_this_thread == t) shk__buf_this_thread = NULL;
  free(t);
}

static void threads_init(void) {
  have_key = shk__os_thread_key_create(&thread_key, thread_ended) == SHK_OK;
}

shk__buf_thread *shk__buf_thread_attach(void) {
  shk__once_run(&threads_once, threads_init);
  /* Without a key the state could not be freed at thread exit: such threads go without. */
  if (!have_key) return NULL;
  shk__buf_thread *t = shk__calloc(1, sizeof *t);
  if (!t) return NULL;
  if (shk__os_thread_key_set(&thread_key, t) != SHK_OK) {
    free(t);
    return NULL;
  }
  lock_threads();
  t->next = threads;
  if (threads) threads->prev = t;
  threads = t;
  unlock_threads();
  shk__buf_this_thread = t;
  return t;
}

void shk__buf_refill_ids(shk__buf_thread *t) {
  t->next_id = atomic_fetch_add_explicit(&next_unreserved_id, ID_BLOCK, memory_order_relaxed);
  t->id_end = t->next_id + ID_BLOCK;
}

uint64_t shk__buf_reserve_ids(void) {
  shk__buf_thread *t = shk__buf_thread_get();
  if (!t) return atomic_fetch_add_explicit(&next_unreserved_id, 1, memory_order_relaxed);
  shk__buf_refill_ids(t);
  return t->next_id++;
}

void shk__buf_thread_totals(size_t *parked, size_t *slab_out) {
  shk__once_run(&threads_once, threads_init);
  size_t n = 0;
  lock_threads();
  size_t out = ended_slab_out;
  for (const shk__buf_thread *t = threads; t; t = t->next) {
    n += atomic_load_explicit(&t->parked_count, memory_order_relaxed);
    out += atomic_load_explicit(&t->slab_out, memory_order_relaxed);
  }
  unlock_threads();
  *parked = n;
  *slab_out = out;
}
