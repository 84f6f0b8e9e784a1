/* The lens producer: opens or creates the segment, claims one ring per producing thread, and
 * writes frames, zones, plots, heap events and logs into it as 32-byte records: no lock and no
 * system call on the way, one release store of the ring's head per event. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lens_internal.h"
#include "debug.h"

#define READER_CHECK_NS 100000000u /* re-check a reader's liveness at most every 100 ms */
#define CREATOR_WAIT_NS 1000000000u
#define NAME_CACHE 64u /* direct-mapped: keys whose contents this ring already carried */
#define MIN_RING_BYTES (8u * 1024u)
#define MAX_RING_BYTES (64u * 1024u * 1024u)
#define MAX_THREADS 4096u

/* One thread's ring on one lens. Only its thread touches it, except close (which the caller must
 * not run concurrently with any use of the handle) and stats (which read the shared counters). */
typedef struct ring_handle {
  struct ring_handle *next;
  struct shk_lens *lens;
  struct thread_rings *thread;     /* the ending thread's list it is on; NULL when none */
  struct ring_handle *thread_next; /* next on that list */
  shk_lens_wire_ring *ring;
  shk_lens_wire_record *rec;
  uint64_t mask;       /* ring_records - 1 */
  uint64_t head;       /* our copy of ring->head */
  uint64_t limit;      /* the tail last seen + ring_records: room up to here */
  uint32_t generation; /* the reader generation the name cache belongs to */
  uint32_t name_seq;   /* the thread name version this ring carries */
  uint32_t thread_serial;
  uint64_t written[SHK_LENS_KIND_COUNT]; /* our copies: the shared counters are only stored to */
  uint64_t sent[NAME_CACHE];
} ring_handle;

struct shk_lens {
  shk_shm *shm;
  void *mem;
  shk_lens_wire_header *hdr;
  shk__lens_geometry geo;
  shk__lens_space space; /* every ring, extensions included: under handles_mutex */
  char name[SHK_SHM_NAME_MAX + 1];
  uint32_t pid;  /* cached: getpid() is a system call */
  uint64_t identity; /* pid and start stamp, as slots and ring claims hold it */
  uint32_t slot; /* our entry in hdr->processes */
  bool tsc;
  shk_lens_options options;
  _Atomic uint64_t frame_number;
  _Atomic uint64_t last_frame;
  _Atomic uint64_t reader_seen_ns; /* when the attached reader was last found alive */
  _Atomic uint64_t no_ring_dropped[SHK_LENS_KIND_COUNT];
  _Atomic uint64_t unaware_reader; /* 1 << 32 | the reader generation found not to read 2.3 */
  uint64_t id;                     /* unique per open: tells a reused address from this handle */
  shk__os_mutex handles_mutex;     /* guards the list, not the handles */
  ring_handle *handles;
  _Atomic uint64_t ended_sent[SHK_LENS_KIND_COUNT]; /* events of rings given back by ended threads */
};

/* The rings a thread holds, on every lens: given back as the thread ends (thread-exit key), so
 * that threads that come and go do not use up the rings. */
typedef struct thread_rings {
  ring_handle *first;
} thread_rings;

/* What a thread keeps between calls: zone depth, its name, the ring it used last. */
typedef struct lens_thread {
  uint32_t depth;
  uint64_t last_tick; /* the latest zone time this thread stamped (its timeline never goes back) */
  uint32_t serial;
  uint32_t name_seq; /* +1 per rename; 0: the default name */
  uint8_t name_len;
  char name[SHK_LENS_STRING_MAX];
  uint64_t handle_lens_id; /* handle is valid while this matches */
  ring_handle *handle;
  thread_rings *rings; /* made at the thread's first ring; freed as it ends */
} lens_thread;

/* Initial-exec where the format has it: no __tls_get_addr call on every zone. */
static SHK__THREAD_LOCAL lens_thread this_thread;
static _Atomic uint32_t next_thread_serial;
static _Atomic uint64_t next_lens_id;

/* SHK__LOCK_LENS_THREADS guards every thread_rings list and the handles' places on them; it is
 * taken before a lens's handles_mutex, never after (internal.h, the lock order). */
static shk__once exit_once;
static shk__os_thread_key exit_key;
static bool have_exit_key;

static const shk_lens_options lens_defaults = {
    .struct_size = sizeof(shk_lens_options),
    .full_wait_ns = 2000000u,
    .ring_bytes = 1024u * 1024u, /* docs/lens.md, "Ring size": measured */
    .max_threads = 64,
};

/* The first published layout ended after flags; struct_size 0 means the 0.2.0 layout. */
#define LENS_OPTIONS_V020_SIZE SHK__OPTIONS_END(shk_lens_options, max_threads)
static const shk__options_layout lens_layout = {
    sizeof(shk_lens_options), SHK__OPTIONS_END(shk_lens_options, flags), LENS_OPTIONS_V020_SIZE,
    NULL, 0, &lens_defaults};

void shk_lens_options_init_size(shk_lens_options *options, size_t size) {
  shk__options_init(&lens_layout, options, size);
}

/* Programs built before the init macro call this: their struct is the 0.2.0 layout. */
void(shk_lens_options_init)(shk_lens_options *options) {
  shk__options_init(&lens_layout, options, LENS_OPTIONS_V020_SIZE);
}

static size_t name_length(const char *name) {
  const char *end = memchr(name, '\0', SHK_LENS_STRING_MAX);
  return end ? (size_t)(end - name) : SHK_LENS_STRING_MAX;
}

/* ---- opening and closing ---- */

/* Opens a lens that another producer created. Its creator makes the name, sizes it and writes
 * magic last: a name still empty (SHK_ESIZE) or not yet marked (SHK_EBUSY) is given a moment.
 * A name that goes meanwhile (SHK_ENOENT) sends the caller back to creating it. */
static int attach_existing(const char *name, shk_shm **shm) {
  uint64_t deadline = shk__os_now_ns() + CREATOR_WAIT_NS;
  for (;;) {
    int rc = shk__shm_open(name, SHK_SHM_READ_WRITE, shm);
    if (rc == SHK_OK) {
      rc = shk__lens_layout_check(shk_shm_data(*shm), shk_shm_size(*shm), NULL, 0);
      if (rc == SHK_OK) return SHK_OK;
      shk_shm_close(*shm);
      *shm = NULL;
    }
    if ((rc != SHK_EBUSY && rc != SHK_ESIZE) || shk__os_now_ns() >= deadline) return rc;
    shk__os_sleep_ns(1000000);
  }
}

static int open_or_create(const char *name, const shk_lens_options *o, uint64_t identity,
                          shk_shm **shm, bool *created) {
  uint32_t records = o->ring_bytes / SHK_LENS_RECORD_SIZE;
  size_t size = shk__lens_layout_size(records, o->max_threads);
  /* Another producer may create or remove the name between our two calls: try a few times. */
  int rc = SHK_ENOENT;
  for (int attempt = 0; attempt < 8 && rc == SHK_ENOENT; attempt++) {
    rc = shk__shm_create(name, size, shm);
    if (rc == SHK_OK) {
      shk__lens_layout_init(shk_shm_data(*shm), size, records, o->max_threads, identity);
      *created = true;
      return SHK_OK;
    }
    if (rc == SHK_EEXIST) rc = attach_existing(name, shm);
  }
  return rc;
}

static bool options_valid(const shk_lens_options *o) {
  return o->ring_bytes >= MIN_RING_BYTES && o->ring_bytes <= MAX_RING_BYTES &&
         (o->ring_bytes & (o->ring_bytes - 1)) == 0 && o->max_threads >= 1 &&
         o->max_threads <= MAX_THREADS;
}

/* Takes a free producer slot, or one left by a process that is gone. */
static int take_process_slot(shk_lens *lens) {
  shk_lens_wire_header *h = lens->hdr;
  for (int pass = 0; pass < 2; pass++) {
    for (uint32_t i = 0; i < SHK_LENS_PROCESS_SLOTS; i++) {
      /* pid and start stamp change together: never a moment where ours pairs with another's */
      uint64_t cur = atomic_load(SHK__LENS_SLOT(h, i));
      if (pass == 0 ? cur != 0 : (cur == 0 || cur == lens->identity || shk__lens_identity_alive(cur)))
        continue;
      if (atomic_compare_exchange_strong(SHK__LENS_SLOT(h, i), &cur, lens->identity)) {
        lens->slot = i;
        return SHK_OK;
      }
    }
  }
  return SHK_EBUSY;
}

static int lens_open_impl(const char *name, const shk_lens_options *options, shk_lens **out) {
  if (!out) return SHK_EINVAL;
  *out = NULL;
  int rc = shk_shm_name_check(name);
  if (rc != SHK_OK) return rc;
  shk_lens *lens = shk__calloc(1, sizeof *lens);
  if (!lens) return SHK_ENOMEM;
  if (shk__options_read(&lens_layout, options, &lens->options) != SHK_OK ||
      !options_valid(&lens->options)) {
    free(lens);
    return SHK_EINVAL;
  }
  lens->pid = (uint32_t)shk__os_pid();
  lens->identity = shk__lens_identity(lens->pid, shk__lens_stamp_of(lens->pid));
  bool created = false;
  rc = open_or_create(name, &lens->options, lens->identity, &lens->shm, &created);
  if (rc != SHK_OK) {
    free(lens);
    return rc;
  }
  lens->mem = shk_shm_data(lens->shm);
  lens->hdr = lens->mem;
  if (!created && (rc = take_process_slot(lens)) != SHK_OK) {
    shk_shm_close(lens->shm);
    free(lens);
    return rc;
  }
  strcpy(lens->name, name);
  shk__lens_layout_geometry(lens->mem, &lens->geo);
  shk__lens_space_init(&lens->space, lens->mem, shk_shm_size(lens->shm), &lens->geo, name, true);
  lens->tsc = lens->geo.tsc;
  lens->id = atomic_fetch_add(&next_lens_id, 1) + 1;
  shk__os_mutex_init(&lens->handles_mutex);
  atomic_store(&lens->last_frame, shk__lens_ticks(lens->tsc));
  *out = lens;
  return SHK_OK;
}

int shk_lens_open(const char *name, const shk_lens_options *options, shk_lens **out) {
  return SHK__DEBUG_RET(SHK__DEBUG_LENS, lens_open_impl(name, options, out));
}

static void unlock_ring(shk_lens *lens, shk_lens_wire_ring *r);

/* ---- threads that end ---- */

static void thread_ended(void *value);

static void exits_init(void) {
  have_exit_key = shk__os_thread_key_create(&exit_key, thread_ended) == SHK_OK;
}

/* The calling thread's list, made on first need; NULL without a key (its rings then stay until
 * the lens is closed, as before). */
static thread_rings *rings_of(lens_thread *t) {
  if (t->rings) return t->rings;
  shk__once_run(&exit_once, exits_init);
  if (!have_exit_key) return NULL;
  thread_rings *tr = shk__calloc(1, sizeof *tr);
  if (!tr) return NULL;
  if (shk__os_thread_key_set(&exit_key, tr) != SHK_OK) {
    free(tr);
    return NULL;
  }
  t->rings = tr;
  return tr;
}

/* Takes h off its thread's list. Under SHK__LOCK_LENS_THREADS. */
static void unlist_from_thread(ring_handle *h) {
  if (!h->thread) return;
  ring_handle **at = &h->thread->first;
  while (*at && *at != h) at = &(*at)->thread_next;
  if (*at) *at = h->thread_next;
  h->thread = NULL;
}

/* The thread is ending: each of its rings is closed (the reader drains it, acknowledges it, and a
 * producer may then take it) and its counts move to the lens's total. */
static void thread_ended(void *value) {
  thread_rings *tr = value;
  shk__lock(SHK__LOCK_LENS_THREADS);
  for (ring_handle *h = tr->first, *next; h; h = next) {
    next = h->thread_next;
    shk_lens *lens = h->lens;
    shk__os_mutex_lock(&lens->handles_mutex);
    ring_handle **at = &lens->handles;
    while (*at && *at != h) at = &(*at)->next;
    if (*at) *at = h->next;
    for (int k = 0; k < SHK_LENS_KIND_COUNT; k++)
      atomic_fetch_add(&lens->ended_sent[k], h->written[k] + shk__lens_load64(&h->ring->dropped[k]));
    shk__os_mutex_unlock(&lens->handles_mutex);
    shk__lens_store32(&h->ring->state, SHK_LENS_RING_CLOSED);
    unlock_ring(lens, h->ring);
    /* A destructor that runs after this one and uses the lens must not find the freed handle. */
    if (this_thread.handle == h) {
      this_thread.handle = NULL;
      this_thread.handle_lens_id = 0;
    }
    free(h);
  }
  shk__unlock(SHK__LOCK_LENS_THREADS);
  if (this_thread.rings == tr) this_thread.rings = NULL;
  free(tr);
}

static bool reader_attached(shk_lens *lens);
static bool extensions_read(shk_lens *lens);

/* The rings of extensions hold records the attached reader may not have taken yet: before a
 * handle goes (and with it, perhaps, the last handle on or the name of an extension), the reader
 * is given a moment to map every published extension. */
static void wait_reader_follows(shk_lens *lens) {
  uint32_t published = SHK__MIN(shk__lens_load32(&lens->hdr->ext_count), SHK_LENS_EXT_MAX);
  if (published == 0) return;
  uint64_t deadline = shk__os_now_ns() + CREATOR_WAIT_NS;
  while (shk__lens_load32(&lens->hdr->reader_extensions) < published && reader_attached(lens) &&
         extensions_read(lens) && shk__os_now_ns() < deadline)
    shk__os_sleep_ns(1000000);
}

void shk_lens_close(shk_lens *lens) {
  if (!lens) return;
  shk__lens_instrument_forget(lens); /* shmkit's parts stop reporting into it */
  /* Threads that end later must not find these handles. */
  shk__lock(SHK__LOCK_LENS_THREADS);
  for (ring_handle *h = lens->handles; h; h = h->next) unlist_from_thread(h);
  shk__unlock(SHK__LOCK_LENS_THREADS);
  /* Our rings are done: the reader drains them and may then hand them to other threads. */
  for (ring_handle *h = lens->handles, *next; h; h = next) {
    next = h->next;
    shk__lens_store32(&h->ring->state, SHK_LENS_RING_CLOSED);
    unlock_ring(lens, h->ring);
    free(h);
  }
  shk__os_mutex_destroy(&lens->handles_mutex);
  wait_reader_follows(lens);
  atomic_store(SHK__LENS_SLOT(lens->hdr, lens->slot), 0);
  uint32_t live, dead, some;
  shk__lens_count_producers(lens->hdr, &live, &dead, &some);
  uint32_t extensions = shk__lens_load32(&lens->hdr->ext_count);
  shk__lens_space_close(&lens->space);
  shk_shm_close(lens->shm);
  /* Handles of processes that are gone (killed) do not keep the name alive. */
  if (live == 0 && !(lens->options.flags & SHK_LENS_KEEP_NAME))
    shk__lens_space_unlink(lens->name, extensions);
  free(lens);
}

bool shk__lens_is_ours(const shk_lens *lens) { return lens->pid == (uint32_t)shk__os_pid(); }

int shk__lens_reopen(const shk_lens *lens, shk_lens **out) {
  return shk_lens_open(lens->name, &lens->options, out);
}

const char *shk__lens_name(const shk_lens *lens, shk_lens_options *options) {
  if (options) *options = lens->options;
  return lens->name;
}

/* ---- the reader, as a producer sees it ---- */

static bool reader_attached(shk_lens *lens) {
  uint32_t pid = shk__lens_load32(&lens->hdr->reader_pid);
  if (pid == 0) return false;
  uint64_t now = shk__os_now_ns();
  if (now - atomic_load_explicit(&lens->reader_seen_ns, memory_order_relaxed) < READER_CHECK_NS)
    return true;
  if (!shk__lens_pid_alive(pid)) return false;
  atomic_store_explicit(&lens->reader_seen_ns, now, memory_order_relaxed);
  return true;
}

static int lens_wait_reader_impl(shk_lens *lens, uint64_t timeout_ns) {
  if (!lens) return SHK_EINVAL;
  uint64_t start = shk__os_now_ns();
  while (!reader_attached(lens)) {
    if (shk__os_now_ns() - start >= timeout_ns) return SHK_ETIMEDOUT;
    shk__os_sleep_ns(1000000);
  }
  return SHK_OK;
}

int shk_lens_wait_reader(shk_lens *lens, uint64_t timeout_ns) {
  return SHK__DEBUG_RET(SHK__DEBUG_LENS, lens_wait_reader_impl(lens, timeout_ns));
}

/* ---- rings ---- */

/* A closed ring may go to a new owner once the reader has emptied it and taken its final counts
 * in (or when no reader is there to want them). */
static bool reusable(shk_lens_wire_ring *r, bool reader) {
  return shk__lens_load32(&r->state) == SHK_LENS_RING_CLOSED &&
         shk__lens_load64(&r->head) == shk__lens_load64(&r->tail) &&
         (!reader || shk__lens_load32(&r->acked) == shk__lens_load32(&r->epoch));
}

/* The claim word says who may set a ring up. Taken from nobody, or from a process that is gone
 * (killed while claiming, or while closing): what it held is ours now. */
static bool lock_ring(shk_lens *lens, shk_lens_wire_ring *r, bool only_from_dead) {
  uint64_t cur = shk__lens_load64(&r->claim);
  if (cur == 0 ? only_from_dead : (cur == lens->identity || shk__lens_identity_alive(cur)))
    return false;
  return atomic_compare_exchange_strong(SHK__A64(&r->claim), &cur, lens->identity);
}

static void unlock_ring(shk_lens *lens, shk_lens_wire_ring *r) {
  uint64_t mine = lens->identity;
  atomic_compare_exchange_strong(SHK__A64(&r->claim), &mine, 0);
}

/* Claims ring r for the calling thread when it is free, closed and done with, or left claiming by
 * a producer that died at it (its claim word names a dead process). On success the ring is in
 * state claiming and its claim word is ours. */
static bool claim_ring(shk_lens *lens, shk_lens_wire_ring *r, bool reader) {
  uint32_t state = shk__lens_load32(&r->state);
  if (state == SHK_LENS_RING_CLAIMING) {
    /* A claim word of 0 here is a claim in progress by a 2.0 producer: not ours to break. */
    if (!lock_ring(lens, r, true)) return false;
    if (shk__lens_load32(&r->state) == SHK_LENS_RING_CLAIMING) return true;
    unlock_ring(lens, r);
    return false;
  }
  if (state != SHK_LENS_RING_FREE && !reusable(r, reader)) return false;
  if (!lock_ring(lens, r, false)) return false;
  /* Holding the claim word, look again: the ring may have changed hands in between. */
  if (state == SHK_LENS_RING_FREE ? shk__lens_load32(&r->state) == state : reusable(r, reader)) {
    if (atomic_compare_exchange_strong(SHK__A32(&r->state), &state, SHK_LENS_RING_CLAIMING))
      return true;
  }
  unlock_ring(lens, r);
  return false;
}

/* The first ring of the mapped parts, below `limit`, that can be claimed (rings used before come
 * first, lowest index first, then fresh ones), claimed; NULL when none. */
static shk_lens_wire_ring *claim_first(shk_lens *lens, bool reader, uint32_t limit) {
  const shk__lens_space *s = &lens->space;
  for (uint32_t i = 0; i < s->total && i < limit; i++) {
    const shk__lens_part *part;
    shk_lens_wire_ring *r = shk__lens_space_slot(s, i, &part);
    if (!r || !claim_ring(lens, r, reader)) continue;
    /* rings_used only grows: readers look at rings below it. */
    uint32_t seen = shk__lens_load32(part->used), used = i - part->first + 1;
    while (seen < used && !atomic_compare_exchange_weak(SHK__A32(part->used), &seen, used)) {
    }
    return r;
  }
  return NULL;
}

/* Whether rings in a new extension would be read. A reader attached that did not say it speaks
 * 2.3 (a 2.2 reader leaves reader_version behind the generation) reads the main segment only:
 * for it a thread is refused a ring as in 2.2, and the loss shows in no_ring_dropped. A 2.3
 * reader writes the word just after it takes reader_pid, and a version word of 0 is no word yet
 * (a 2.3 reader's generation is never 0 once it has attached): until the word names the
 * generation, the reader may be in the middle of attaching, preempted between its stores. That
 * is waited out, once per reader generation, for as long as the producer would wait for room
 * (full_wait_ns), at least STAMP_WAIT_NS; only then is the reader taken for a 2.2 one. */
#define STAMP_WAIT_NS 10000000u
static bool extensions_read(shk_lens *lens) {
  if (!reader_attached(lens)) return true; /* a later reader: see the document */
  uint64_t deadline = 0;
  for (;;) {
    uint32_t generation = shk__lens_load32(&lens->hdr->reader_generation);
    uint64_t version = shk__lens_load64(&lens->hdr->reader_version); /* stored before generation */
    if (version != 0 && (uint32_t)(version >> 32) == generation)
      return (uint32_t)version >= 0x00020300u;
    uint64_t unaware = 1ull << 32 | generation;
    if (atomic_load_explicit(&lens->unaware_reader, memory_order_relaxed) == unaware) return false;
    uint64_t now = shk__os_now_ns();
    if (deadline == 0) {
      deadline = now + SHK__MAX(lens->options.full_wait_ns, (uint64_t)STAMP_WAIT_NS);
    } else if (!reader_attached(lens)) {
      return true; /* it went before saying: a later reader decides */
    } else if (now >= deadline) {
      atomic_store_explicit(&lens->unaware_reader, unaware, memory_order_relaxed);
      return false;
    }
    shk__os_sleep_ns(100000);
  }
}

static shk_lens_wire_ring *take_ring(shk_lens *lens) {
  bool reader = reader_attached(lens);
  /* Each pass maps what others published, then claims; when every ring is taken, the space
   * grows by one extension (made here or by another producer) and the next pass claims in it. */
  for (;;) {
    shk__lens_space_follow(&lens->space);
    /* Rings of extensions made earlier (before a 2.2 reader attached) it does not read either. */
    const shk__lens_space *s = &lens->space;
    uint32_t limit = s->parts > 1 && !extensions_read(lens) ? s->part[0].count : UINT32_MAX;
    shk_lens_wire_ring *r = claim_first(lens, reader, limit);
    if (r || !extensions_read(lens) || shk__lens_space_grow(&lens->space, lens->identity) != SHK_OK)
      return r;
  }
}

/* Sets up a ring just claimed for the calling thread and publishes it as live. */
static void own_ring(shk_lens *lens, shk_lens_wire_ring *r) {
  /* The state left "closed" (claiming) before any counter is zeroed: a reader checks the state
   * and epoch around its reads of the counters. */
  atomic_thread_fence(memory_order_seq_cst);
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
    shk__lens_store64(&r->written[k], 0);
    shk__lens_store64(&r->dropped[k], 0);
    shk__lens_store64(&r->drained[k], 0);
  }
  /* Indices never go back: the new owner continues where the reader stopped. */
  shk__lens_store64(&r->head, shk__lens_load64(&r->tail));
  r->pid = lens->pid;
  r->tid = shk__os_thread_id();
  shk__lens_store32(&r->epoch, shk__lens_load32(&r->epoch) + 1);
  shk__lens_store32(&r->state, SHK_LENS_RING_LIVE);
}

/* The ring is claimed (and the segment grown, which may wait for another process) under the
 * lens's handles_mutex only; the process-wide SHK__LOCK_LENS_THREADS, which every ending thread
 * of every lens takes, is held just to put the new handle on the lists. Only this thread looks
 * for or adds its own handle, so nothing comes between the two. */
static ring_handle *handle_slow(shk_lens *lens, lens_thread *t) {
  if (t->serial == 0) t->serial = atomic_fetch_add(&next_thread_serial, 1) + 1;
  thread_rings *tr = rings_of(t);
  shk__os_mutex_lock(&lens->handles_mutex);
  ring_handle *h = lens->handles;
  while (h && h->thread_serial != t->serial) h = h->next;
  shk_lens_wire_ring *r = NULL;
  if (!h && (h = shk__calloc(1, sizeof *h)) != NULL && (r = take_ring(lens)) == NULL) {
    free(h);
    h = NULL;
  }
  shk__os_mutex_unlock(&lens->handles_mutex);
  if (r) {
    own_ring(lens, r);
    h->ring = r;
    h->rec = shk__lens_records(r);
    h->mask = lens->geo.ring_records - 1;
    h->head = shk__lens_load64(&r->head);
    h->limit = h->head + lens->geo.ring_records;
    h->thread_serial = t->serial;
    h->name_seq = UINT32_MAX; /* the thread's name goes first */
    h->lens = lens;
    if (tr) shk__lock(SHK__LOCK_LENS_THREADS);
    shk__os_mutex_lock(&lens->handles_mutex);
    h->next = lens->handles;
    lens->handles = h;
    if (tr) {
      h->thread = tr;
      h->thread_next = tr->first;
      tr->first = h;
    }
    shk__os_mutex_unlock(&lens->handles_mutex);
    if (tr) shk__unlock(SHK__LOCK_LENS_THREADS);
  }
  if (h) {
    t->handle = h;
    t->handle_lens_id = lens->id;
  }
  return h;
}

static inline ring_handle *handle_of(shk_lens *lens, lens_thread *t) {
  if (t->handle_lens_id == lens->id) return t->handle;
  return handle_slow(lens, t);
}

static int drop_no_ring(shk_lens *lens, int kind) {
  atomic_fetch_add_explicit(&lens->no_ring_dropped[kind], 1, memory_order_relaxed);
  shk__lens_add64(&lens->hdr->no_ring_dropped[kind], 1);
  return SHK_EBUSY;
}

static int drop(ring_handle *h, int kind) {
  shk__lens_bump64(&h->ring->dropped[kind], 1);
  return SHK_EBUSY;
}

/* Waits, spinning then yielding, until the reader has made room or the wait is over. */
static bool wait_for_room(shk_lens *lens, ring_handle *h, uint64_t n) {
  if (lens->options.full_wait_ns == 0 || !reader_attached(lens)) return false;
  uint64_t now = shk__os_now_ns();
  uint64_t deadline = now + lens->options.full_wait_ns, spin_until = now + SHK__LENS_SPIN_NS;
  for (unsigned i = 1;; i++) {
    h->limit = shk__lens_load64(&h->ring->tail) + lens->geo.ring_records;
    if (h->head + n <= h->limit) return true;
    shk__lens_cpu_relax();
    if (i % 64 != 0) continue; /* the clock costs more than a look at the tail */
    now = shk__os_now_ns();
    if (now >= deadline) return false;
    if (now >= spin_until) shk__os_yield();
  }
}

/* Room for n more records, or false (the caller drops and counts). */
static inline bool reserve(shk_lens *lens, ring_handle *h, uint64_t n) {
  if (h->head + n <= h->limit) return true;
  h->limit = shk__lens_load64(&h->ring->tail) + lens->geo.ring_records;
  if (h->head + n <= h->limit) return true;
  if (n > lens->geo.ring_records) return false;
  return wait_for_room(lens, h, n);
}

static inline shk_lens_wire_record *next_record(ring_handle *h) {
  return &h->rec[h->head++ & h->mask];
}

/* Makes every record written since the last publication visible, counted as one `kind` event.
 * Two plain stores into one line of ours: a load of the shared counter would first fetch the line
 * back from the reader, who reads it, and then upgrade it: two transfers instead of one. */
static inline int publish(ring_handle *h, int kind) {
  atomic_store_explicit(SHK__A64(&h->ring->written[kind]), ++h->written[kind], memory_order_relaxed);
  shk__lens_store64(&h->ring->head, h->head);
  return SHK_OK;
}

static uint64_t data_records(size_t len) { return (len + SHK_LENS_RECORD_SIZE - 1) / SHK_LENS_RECORD_SIZE; }

/* A header record of `type` with `len` bytes after it, in 32-byte records (the last one padded). */
static void put_bytes(ring_handle *h, uint8_t type, uint64_t a, uint64_t b, uint64_t c,
                      const void *bytes, size_t len) {
  shk_lens_wire_record *r = next_record(h);
  memset(r, 0, sizeof *r);
  r->type = type;
  r->len = (uint32_t)len;
  r->a = a;
  r->b = b;
  r->c = c;
  for (size_t at = 0; at < len; at += SHK_LENS_RECORD_SIZE) {
    shk_lens_wire_record *d = next_record(h);
    size_t n = SHK__MIN(len - at, (size_t)SHK_LENS_RECORD_SIZE);
    if (n < SHK_LENS_RECORD_SIZE) memset(d, 0, sizeof *d);
    memcpy(d, (const unsigned char *)bytes + at, n);
  }
}

static void default_thread_name(lens_thread *t) {
  int n = snprintf(t->name, sizeof t->name, "thread %llu", (unsigned long long)shk__os_thread_id());
  t->name_len = (uint8_t)(n > 0 ? n : 0);
}

/* A new reader has never seen our names, and a renamed thread has a new one: the ring carries the
 * thread's name first. Returns false when it did not fit (tried again at the next event). */
static bool sync_names(shk_lens *lens, ring_handle *h, lens_thread *t) {
  uint32_t generation = atomic_load_explicit(SHK__A32(&lens->hdr->reader_generation),
                                             memory_order_relaxed);
  if (generation != h->generation) {
    memset(h->sent, 0, sizeof h->sent);
    h->generation = generation;
    h->name_seq = UINT32_MAX;
  }
  if (h->name_seq == t->name_seq) return true;
  if (t->name_len == 0) default_thread_name(t);
  if (!reserve(lens, h, 1 + data_records(t->name_len))) return false;
  put_bytes(h, SHK_LENS_REC_THREAD, 0, 0, 0, t->name, t->name_len);
  shk__lens_store64(&h->ring->head, h->head);
  h->name_seq = t->name_seq;
  return true;
}

static inline uint64_t *name_slot(ring_handle *h, uint64_t key) {
  return &h->sent[((key >> 3) ^ (key >> 11)) & (NAME_CACHE - 1)];
}

static void put_name(ring_handle *h, const char *name, size_t len) {
  uint64_t key = (uint64_t)(uintptr_t)name;
  put_bytes(h, SHK_LENS_REC_STRING, key, 0, 0, name, len);
  *name_slot(h, key) = key;
}

/* Whether an event's arguments can be sent (see shk_lens_zone_end_args()). */
static bool args_valid(const shk_lens_arg *args, size_t count) {
  if (count > SHK_LENS_ARGS_MAX || (count > 0 && !args)) return false;
  for (size_t i = 0; i < count; i++)
    if (!args[i].name || args[i].type > SHK_LENS_ARG_TEXT ||
        (args[i].type == SHK_LENS_ARG_TEXT && !args[i].text))
      return false;
  return true;
}

/* The strings an event still has to carry in this ring (its name, its arguments' names and
 * texts), decided from the cache once, before the room is reserved: the cache is direct-mapped,
 * so putting one string can evict another of the same event, and asking the cache again while
 * writing would send that one too, past the room reserved. */
typedef struct name_plan {
  const char *name[1 + 2 * SHK_LENS_ARGS_MAX];
  size_t len[1 + 2 * SHK_LENS_ARGS_MAX];
  size_t n;
  uint64_t records;
} name_plan;

static void plan_name(ring_handle *h, name_plan *p, const char *name) {
  uint64_t key = (uint64_t)(uintptr_t)name;
  if (*name_slot(h, key) == key) return;
  for (size_t i = 0; i < p->n; i++)
    if (p->name[i] == name) return;
  p->len[p->n] = name_length(name);
  p->records += 1 + data_records(p->len[p->n]);
  p->name[p->n++] = name;
}

/* The argument records, directly before the event's own record. */
static void put_args(ring_handle *h, const shk_lens_arg *args, size_t count) {
  for (size_t i = 0; i < count; i++) {
    shk_lens_wire_record *r = next_record(h);
    memset(r, 0, sizeof *r);
    r->type = SHK_LENS_REC_ZONE;
    r->flags = (uint8_t)(SHK_LENS_ARG_RECORD | args[i].type << 1);
    r->a = args[i].type == SHK_LENS_ARG_TEXT ? (uint64_t)(uintptr_t)args[i].text : args[i].value;
    r->c = (uint64_t)(uintptr_t)args[i].name;
  }
}

/* The calling thread's ring with room for `n` records plus the strings of the event's name and
 * arguments (sent first when this ring has not carried them yet), names synced, the argument
 * records written; NULL when the event was dropped (counted). */
static ring_handle *begin_send_args(shk_lens *lens, int kind, const char *name,
                                    const shk_lens_arg *args, size_t count, uint64_t n) {
  lens_thread *t = &this_thread;
  ring_handle *h = handle_of(lens, t);
  if (!h) {
    drop_no_ring(lens, kind);
    return NULL;
  }
  if (!sync_names(lens, h, t)) {
    drop(h, kind);
    return NULL;
  }
  name_plan plan; /* only n and records set: the arrays are filled as far as n */
  plan.n = 0;
  plan.records = 0;
  if (name) plan_name(h, &plan, name);
  for (size_t i = 0; i < count; i++) {
    plan_name(h, &plan, args[i].name);
    if (args[i].type == SHK_LENS_ARG_TEXT) plan_name(h, &plan, args[i].text);
  }
  if (!reserve(lens, h, n + plan.records)) {
    drop(h, kind);
    return NULL;
  }
  for (size_t i = 0; i < plan.n; i++) put_name(h, plan.name[i], plan.len[i]);
  put_args(h, args, count);
  return h;
}

/* Sends an event of one record, after its arguments (strings first when needed). */
static int send_record_args(shk_lens *lens, int kind, const char *name,
                            const shk_lens_wire_record *rec, const shk_lens_arg *args,
                            size_t count) {
  ring_handle *h = begin_send_args(lens, kind, name, args, count, count + 1);
  if (!h) return SHK_EBUSY;
  *next_record(h) = *rec;
  return publish(h, kind);
}

static inline int send_record(shk_lens *lens, int kind, const char *name,
                              const shk_lens_wire_record *rec) {
  return send_record_args(lens, kind, name, rec, NULL, 0);
}

static uint32_t color_of(uint32_t color) { return color & 0xFFFFFFu; }

/* The calling thread's ring when an event of one record named `name` can go straight in: the
 * ring is this thread's on this lens, the reader has its names (thread and `name`), and there is
 * room. NULL otherwise: the event then takes send_record() (claim, names, wait or drop). */
static inline ring_handle *ready_ring(shk_lens *lens, lens_thread *t, const char *name) {
  if (t->handle_lens_id != lens->id) return NULL;
  ring_handle *h = t->handle;
  uint32_t generation = atomic_load_explicit(SHK__A32(&lens->hdr->reader_generation),
                                             memory_order_relaxed);
  uint64_t key = (uint64_t)(uintptr_t)name;
  if (generation != h->generation || h->name_seq != t->name_seq || *name_slot(h, key) != key ||
      h->head >= h->limit)
    return NULL;
  return h;
}

/* ---- the event kinds ---- */

static int lens_frame_impl(shk_lens *lens) {
  if (!lens) return SHK_EINVAL;
  uint64_t now = shk__lens_ticks(lens->tsc);
  uint64_t previous = atomic_exchange(&lens->last_frame, now);
  /* Two threads marking frames at once: the later mark may have been exchanged first. */
  if (previous > now) previous = now;
  uint64_t number = atomic_fetch_add(&lens->frame_number, 1) + 1;
  shk_lens_wire_record r = {.type = SHK_LENS_REC_FRAME, .a = previous, .b = now, .c = number};
  return send_record(lens, SHK_LENS_FRAME, NULL, &r);
}

int shk_lens_frame(shk_lens *lens) {
  int rc = lens_frame_impl(lens);
  /* SHK_EBUSY: dropped and counted (stats), not a failure of the call */
  return rc != SHK_EBUSY ? SHK__DEBUG_RET(SHK__DEBUG_LENS, rc) : rc;
}

static int lens_flush_impl(shk_lens *lens) { return lens ? SHK_OK : SHK_EINVAL; }

int shk_lens_flush(shk_lens *lens) {
  return SHK__DEBUG_RET(SHK__DEBUG_LENS, lens_flush_impl(lens));
}

static int lens_thread_name_impl(shk_lens *lens, const char *name) {
  if (!lens || !name) return SHK_EINVAL;
  lens_thread *t = &this_thread;
  size_t len = name_length(name);
  memcpy(t->name, name, len);
  t->name_len = (uint8_t)len;
  t->name_seq++;
  if (t->name_seq == UINT32_MAX) t->name_seq = 1;
  return SHK_OK;
}

int shk_lens_thread_name(shk_lens *lens, const char *name) {
  return SHK__DEBUG_RET(SHK__DEBUG_LENS, lens_thread_name_impl(lens, name));
}

static int lens_zone_begin_impl(shk_lens *lens, shk_lens_zone *zone, const char *name,
                                uint32_t color) {
  if (!zone) return SHK_EINVAL;
  zone->lens = NULL;
  if (!lens || !name) return SHK_EINVAL;
  zone->name = name;
  zone->color = color;
  lens_thread *t = &this_thread;
  zone->depth = t->depth++;
  /* A thread moved to a CPU whose clock lags a little must not start a zone before the one it
   * is nested in: each thread's stamps never go back, so zones nest as they were opened. */
  uint64_t now = shk__lens_ticks(lens->tsc);
  if (now < t->last_tick) now = t->last_tick;
  t->last_tick = now;
  zone->start = now;
  zone->lens = lens;
  return SHK_OK;
}

int shk_lens_zone_begin(shk_lens *lens, shk_lens_zone *zone, const char *name, uint32_t color) {
  int rc = lens_zone_begin_impl(lens, zone, name, color);
  /* SHK_EBUSY: dropped and counted (stats), not a failure of the call */
  return rc != SHK_EBUSY ? SHK__DEBUG_RET(SHK__DEBUG_LENS, rc) : rc;
}

static uint16_t zone_depth(const shk_lens_zone *zone) {
  return (uint16_t)(zone->depth > 0xFFFFu ? 0xFFFFu : zone->depth);
}

static shk_lens_wire_record zone_record(const shk_lens_zone *zone, uint64_t now) {
  shk_lens_wire_record r = {.type = SHK_LENS_REC_ZONE,
                            .depth = zone_depth(zone),
                            .len = color_of(zone->color),
                            .a = zone->start,
                            .b = now,
                            .c = (uint64_t)(uintptr_t)zone->name};
  return r;
}

/* A zone's end when it cannot go straight in (see ready_ring): out of line, so that the common
 * path saves no registers for it. */
static SHK__NOINLINE int zone_end_slow(shk_lens *lens, const shk_lens_zone *zone, uint64_t now) {
  shk_lens_wire_record r = zone_record(zone, now);
  return send_record(lens, SHK_LENS_ZONE, zone->name, &r);
}

/* Closes the zone on the calling thread: its end stamp (never before anything the thread stamped),
 * the thread's depth. */
static inline uint64_t zone_close(shk_lens_zone *zone, lens_thread *t) {
  uint64_t now = shk__lens_ticks(zone->lens->tsc);
  if (now < t->last_tick) now = t->last_tick;
  t->last_tick = now;
  zone->lens = NULL;
  if (t->depth > 0) t->depth--;
  return now;
}

static int lens_zone_end_impl(shk_lens_zone *zone) {
  if (!zone) return SHK_EINVAL;
  shk_lens *lens = zone->lens;
  if (!lens) return SHK_OK;
  lens_thread *t = &this_thread;
  uint64_t now = zone_close(zone, t);
  ring_handle *h = ready_ring(lens, t, zone->name);
  if (!h) return zone_end_slow(lens, zone, now);
  /* Written in place, field by field: no record built on the stack and copied. */
  uint64_t head = h->head;
  shk_lens_wire_record *d = &h->rec[head & h->mask];
  d->type = SHK_LENS_REC_ZONE;
  d->flags = 0;
  d->depth = zone_depth(zone);
  d->len = color_of(zone->color);
  d->a = zone->start;
  d->b = now;
  d->c = (uint64_t)(uintptr_t)zone->name;
  h->head = head + 1;
  return publish(h, SHK_LENS_ZONE);
}

int shk_lens_zone_end(shk_lens_zone *zone) {
  int rc = lens_zone_end_impl(zone);
  /* SHK_EBUSY: dropped and counted (stats), not a failure of the call */
  return rc != SHK_EBUSY ? SHK__DEBUG_RET(SHK__DEBUG_LENS, rc) : rc;
}

static int lens_zone_end_args_impl(shk_lens_zone *zone, const shk_lens_arg *args, size_t count) {
  if (!zone || !args_valid(args, count)) return SHK_EINVAL;
  shk_lens *lens = zone->lens;
  if (!lens) return SHK_OK;
  uint64_t now = zone_close(zone, &this_thread);
  shk_lens_wire_record r = zone_record(zone, now);
  return send_record_args(lens, SHK_LENS_ZONE, zone->name, &r, args, count);
}

int shk_lens_zone_end_args(shk_lens_zone *zone, const shk_lens_arg *args, size_t count) {
  int rc = lens_zone_end_args_impl(zone, args, count);
  /* SHK_EBUSY: dropped and counted (stats), not a failure of the call */
  return rc != SHK_EBUSY ? SHK__DEBUG_RET(SHK__DEBUG_LENS, rc) : rc;
}

void shk_lens_zone_cleanup(shk_lens_zone *zone) { (void)shk_lens_zone_end(zone); }

static int lens_plot_impl(shk_lens *lens, const char *name, double value, uint32_t color) {
  if (!lens || !name || !isfinite(value)) return SHK_EINVAL;
  uint64_t now = shk__lens_ticks(lens->tsc);
  shk_lens_wire_record r = {.type = SHK_LENS_REC_PLOT, .len = color_of(color), .a = now,
                            .c = (uint64_t)(uintptr_t)name};
  memcpy(&r.b, &value, sizeof value);
  return send_record(lens, SHK_LENS_PLOT, name, &r);
}

int shk_lens_plot(shk_lens *lens, const char *name, double value, uint32_t color) {
  int rc = lens_plot_impl(lens, name, value, color);
  /* SHK_EBUSY: dropped and counted (stats), not a failure of the call */
  return rc != SHK_EBUSY ? SHK__DEBUG_RET(SHK__DEBUG_LENS, rc) : rc;
}

static int lens_heap_impl(shk_lens *lens, uint64_t addr, uint64_t size, bool is_free,
                          const shk_lens_arg *args, size_t count) {
  if (!lens || size > UINT64_MAX - addr || !args_valid(args, count)) return SHK_EINVAL;
  uint64_t now = shk__lens_ticks(lens->tsc);
  shk_lens_wire_record r = {.type = SHK_LENS_REC_HEAP, .flags = is_free ? 1 : 0, .a = now,
                            .b = addr, .c = size};
  return send_record_args(lens, SHK_LENS_HEAP, NULL, &r, args, count);
}

int shk_lens_heap(shk_lens *lens, uint64_t addr, uint64_t size, bool is_free) {
  int rc = lens_heap_impl(lens, addr, size, is_free, NULL, 0);
  /* SHK_EBUSY: dropped and counted (stats), not a failure of the call */
  return rc != SHK_EBUSY ? SHK__DEBUG_RET(SHK__DEBUG_LENS, rc) : rc;
}

int shk_lens_heap_args(shk_lens *lens, uint64_t addr, uint64_t size, bool is_free,
                       const shk_lens_arg *args, size_t count) {
  int rc = lens_heap_impl(lens, addr, size, is_free, args, count);
  return rc != SHK_EBUSY ? SHK__DEBUG_RET(SHK__DEBUG_LENS, rc) : rc;
}

static int lens_vlog(shk_lens *lens, uint32_t color, const shk_lens_arg *args, size_t count,
                     const char *format, va_list ap) {
  if (!lens || !format || !args_valid(args, count)) return SHK_EINVAL;
  uint64_t now = shk__lens_ticks(lens->tsc);
  char message[SHK_LENS_LOG_MAX + 1];
  int n = vsnprintf(message, sizeof message, format, ap);
  if (n < 0) return SHK_EINVAL;
  size_t length = (size_t)n > SHK_LENS_LOG_MAX ? SHK_LENS_LOG_MAX : (size_t)n;
  ring_handle *h = begin_send_args(lens, SHK_LENS_LOG, NULL, args, count,
                                   count + 1 + data_records(length));
  if (!h) return SHK_EBUSY;
  put_bytes(h, SHK_LENS_REC_LOG, now, color_of(color), 0, message, length);
  return publish(h, SHK_LENS_LOG);
}

int shk_lens_log(shk_lens *lens, uint32_t color, const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  int rc = lens_vlog(lens, color, NULL, 0, format, ap);
  va_end(ap);
  /* SHK_EBUSY: dropped and counted (stats), not a failure of the call */
  return rc != SHK_EBUSY ? SHK__DEBUG_RET(SHK__DEBUG_LENS, rc) : rc;
}

int shk_lens_log_args(shk_lens *lens, uint32_t color, const shk_lens_arg *args, size_t count,
                      const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  int rc = lens_vlog(lens, color, args, count, format, ap);
  va_end(ap);
  return rc != SHK_EBUSY ? SHK__DEBUG_RET(SHK__DEBUG_LENS, rc) : rc;
}

static int lens_stats_get_impl(shk_lens *l, shk_lens_stats *out) {
  if (!l || !out) return SHK_EINVAL;
  shk__os_mutex_lock(&l->handles_mutex);
  shk__lens_space_follow(&l->space);
  shk__lens_space_stats(&l->space, out);
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++)
    out->sent[k] = atomic_load(&l->no_ring_dropped[k]) + atomic_load(&l->ended_sent[k]);
  for (ring_handle *h = l->handles; h; h = h->next)
    for (int k = 0; k < SHK_LENS_KIND_COUNT; k++)
      out->sent[k] += shk__lens_load64(&h->ring->written[k]) + shk__lens_load64(&h->ring->dropped[k]);
  shk__os_mutex_unlock(&l->handles_mutex);
  return SHK_OK;
}

int shk_lens_stats_get(shk_lens *l, shk_lens_stats *out) {
  return SHK__DEBUG_RET(SHK__DEBUG_LENS, lens_stats_get_impl(l, out));
}
