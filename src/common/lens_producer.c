/* The lens producer: opens or creates the segment, and sends frames, zones, plots, heap events and
 * logs into its payloads, waiting a bounded time for the reader when one is full. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lens_internal.h"

/* Keys the library makes itself (thread names) have the top bit set: user-space addresses,
 * the other keys, never do on the systems shmkit supports. */
#define GENERATED_KEY_BIT (1ull << 63)
#define LOG_MESSAGE_MAX (SHK_LENS_LOG_DATA_SIZE - sizeof(shk_lens_log_header))
#define READER_CHECK_NS 100000000u /* re-check a reader's liveness at most every 100 ms */
#define CREATOR_WAIT_NS 1000000000u
/* Zones a thread stages before it publishes them in one lock acquisition: half a payload, so
 * that two batches fit before the reader must take the payload out. */
#define STAGE_ZONES 16u
/* Staged zones older than this are published at the thread's next zone end. */
#define STAGE_AGE_NS 1000000u

/* A finished zone waiting in a thread's stage. */
typedef struct staged_zone {
  uint64_t uid;
  uint64_t start_ns, end_ns;
  const char *name;
  uint32_t color, depth;
} staged_zone;

/* One thread's finished zones for one lens, owned by the lens (freed at close): the thread may
 * end before the lens closes, and close publishes what it left. Only its thread touches it,
 * except close, which the caller must not run concurrently with any use of the handle. */
typedef struct lens_stage {
  struct lens_stage *next;
  uint32_t thread_serial; /* the owner */
  uint32_t count;
  uint8_t thread_len;
  uint64_t thread_key; /* the thread name every staged zone carries */
  char thread_name[SHK_LENS_SHARED_STRING_MAX_SIZE];
  staged_zone zones[STAGE_ZONES];
} lens_stage;

struct shk_lens {
  shk_shm *shm;
  shk_lens_segment *seg;
  char name[SHK_SHM_NAME_MAX + 1];
  uint32_t pid; /* cached: getpid() is a system call */
  uint64_t origin_ns;
  shk_lens_options options;
  /* Each set is used only under its payload's lock, which already serializes the senders. */
  shk__lens_sent_set zone_sent, plot_sent;
  /* Written under the payload's lock (plain load + store); dropped from anywhere (fetch_add). */
  _Atomic uint64_t written[SHK_LENS_KIND_COUNT];
  _Atomic uint64_t dropped[SHK_LENS_KIND_COUNT];
  _Atomic uint64_t frame_number;
  _Atomic uint64_t last_frame_ns;
  _Atomic uint64_t reader_seen_ns; /* when the attached reader was last found alive */
  uint64_t id;                     /* unique per open: tells a reused address from this handle */
  shk__os_mutex stages_mutex;      /* guards the list, not the stages */
  lens_stage *stages;
};

/* What a thread keeps between calls: zone depth, zone ids, and its name as a shared string. */
typedef struct lens_thread {
  uint32_t depth;
  uint32_t serial;
  uint64_t zone_seq;
  uint64_t name_key; /* 0 until named */
  uint8_t name_len;
  char name[SHK_LENS_SHARED_STRING_MAX_SIZE];
  /* The stage of the lens this thread used last (valid while stage_lens_id matches). */
  uint64_t stage_lens_id;
  lens_stage *stage;
} lens_thread;

/* Initial-exec where the format has it: no __tls_get_addr call on every zone. */
static SHK__THREAD_LOCAL lens_thread this_thread;
static _Atomic uint64_t next_generated_key;
static _Atomic uint32_t next_thread_serial;
static _Atomic uint64_t next_lens_id;

void shk_lens_options_init(shk_lens_options *options) {
  if (!options) return;
  memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
  options->full_wait_ns = 2000000u;
  options->lock_timeout_ns = 100000000u;
}

static void set_thread_name(const char *name, size_t len) {
  if (len > SHK_LENS_SHARED_STRING_MAX_SIZE) len = SHK_LENS_SHARED_STRING_MAX_SIZE;
  memcpy(this_thread.name, name, len);
  this_thread.name_len = (uint8_t)len;
  /* A new key per name: the reader keeps the old name for zones already sent. */
  this_thread.name_key = GENERATED_KEY_BIT | (atomic_fetch_add(&next_generated_key, 1) + 1);
}

static lens_thread *current_thread(void) {
  lens_thread *t = &this_thread;
  if (t->name_key == 0) {
    char name[48];
    int n = snprintf(name, sizeof name, "thread %llu", (unsigned long long)shk__os_thread_id());
    set_thread_name(name, (size_t)n);
  }
  if (t->serial == 0) t->serial = atomic_fetch_add(&next_thread_serial, 1) + 1;
  return t;
}

/* ---- opening and closing ---- */

static int attach_existing(const char *name, shk_shm **shm) {
  int rc = shk_shm_open(name, SHK_SHM_READ_WRITE, shm);
  if (rc != SHK_OK) return rc;
  /* The creator writes magic last; give it a moment. */
  uint64_t deadline = shk__os_now_ns() + CREATOR_WAIT_NS;
  for (;;) {
    rc = shk__lens_layout_check(shk_shm_data(*shm), shk_shm_size(*shm));
    if (rc != SHK_EBUSY || shk__os_now_ns() >= deadline) break;
    shk__os_sleep_ns(1000000);
  }
  if (rc != SHK_OK) {
    shk_shm_close(*shm);
    *shm = NULL;
  }
  return rc;
}

static int open_or_create(const char *name, uint32_t pid, shk_shm **shm, bool *created) {
  /* Another producer may create or remove the name between our two calls: try a few times. */
  int rc = SHK_ENOENT;
  for (int attempt = 0; attempt < 8 && rc == SHK_ENOENT; attempt++) {
    rc = shk_shm_create(name, sizeof(shk_lens_segment), shm);
    if (rc == SHK_OK) {
      shk__lens_layout_init(shk_shm_data(*shm), pid);
      *created = true;
      return SHK_OK;
    }
    if (rc == SHK_EEXIST) rc = attach_existing(name, shm);
  }
  return rc;
}

int shk_lens_open(const char *name, const shk_lens_options *options, shk_lens **out) {
  if (!out) return SHK_EINVAL;
  *out = NULL;
  int rc = shk_shm_name_check(name);
  if (rc != SHK_OK) return rc;
  shk_lens *lens = calloc(1, sizeof *lens);
  if (!lens) return SHK_ENOMEM;
  shk_lens_options_init(&lens->options);
  if (options) {
    if (options->struct_size < sizeof(uint32_t) * 2 || options->struct_size > sizeof *options) {
      free(lens);
      return SHK_EINVAL;
    }
    memcpy(&lens->options, options, options->struct_size);
  }
  lens->pid = (uint32_t)shk__os_pid();
  bool created = false;
  rc = open_or_create(name, lens->pid, &lens->shm, &created);
  if (rc != SHK_OK) {
    free(lens);
    return rc;
  }
  strcpy(lens->name, name);
  lens->seg = shk_shm_data(lens->shm);
  lens->id = atomic_fetch_add(&next_lens_id, 1) + 1;
  shk__os_mutex_init(&lens->stages_mutex);
  lens->origin_ns = shk__lens_load64(&lens->seg->ext.origin_ns);
  shk__lens_clock_init();
  atomic_store(&lens->last_frame_ns, shk__lens_now_ns());
  if (!created) {
    atomic_fetch_add(SHK__A32(&lens->seg->ext.producers), 1);
    shk__lens_store32(&lens->seg->ext.producer_pid, lens->pid);
  }
  *out = lens;
  return SHK_OK;
}

static void publish_stage(shk_lens *lens, lens_stage *st, bool *dropped);

void shk_lens_close(shk_lens *lens) {
  if (!lens) return;
  /* Zones staged by every thread are published (or dropped and counted) before the counts end. */
  for (lens_stage *st = lens->stages, *next; st; st = next) {
    next = st->next;
    bool dropped = false;
    publish_stage(lens, st, &dropped);
    free(st);
  }
  shk__os_mutex_destroy(&lens->stages_mutex);
  uint32_t left = atomic_fetch_sub(SHK__A32(&lens->seg->ext.producers), 1) - 1;
  shk_shm_close(lens->shm);
  if (left == 0 && !(lens->options.flags & SHK_LENS_KEEP_NAME)) shk_shm_unlink(lens->name);
  shk__lens_sent_free(&lens->zone_sent);
  shk__lens_sent_free(&lens->plot_sent);
  free(lens);
}

/* ---- the reader, as a producer sees it ---- */

static bool reader_attached(shk_lens *lens) {
  uint32_t pid = shk__lens_load32(&lens->seg->ext.reader_pid);
  if (pid == 0) return false;
  uint64_t now = shk__os_now_ns();
  if (now - atomic_load_explicit(&lens->reader_seen_ns, memory_order_relaxed) < READER_CHECK_NS)
    return true;
  if (!shk__lens_pid_alive(pid)) return false;
  atomic_store_explicit(&lens->reader_seen_ns, now, memory_order_relaxed);
  return true;
}

int shk_lens_wait_reader(shk_lens *lens, uint64_t timeout_ns) {
  if (!lens) return SHK_EINVAL;
  uint64_t start = shk__os_now_ns();
  while (!reader_attached(lens)) {
    if (shk__os_now_ns() - start >= timeout_ns) return SHK_ETIMEDOUT;
    shk__os_sleep_ns(1000000);
  }
  return SHK_OK;
}

/* ---- the common send path ---- */

/* A payload as the send path sees it: its lock, its fill level and capacity (entries, or log bytes). */
typedef struct payload_ref {
  shk_lens_lock *lock;
  uint32_t *fill;
  uint32_t capacity;
  int kind;
} payload_ref;

static payload_ref payload_of(shk_lens *lens, int kind) {
  shk_lens_segment *s = lens->seg;
  switch (kind) {
    case SHK_LENS_FRAME: return (payload_ref){&s->frame.lock, &s->frame.size, SHK_LENS_NUM_ENTRIES, kind};
    case SHK_LENS_ZONE: return (payload_ref){&s->zone.lock, &s->zone.size, SHK_LENS_NUM_ENTRIES, kind};
    case SHK_LENS_HEAP: return (payload_ref){&s->heap.lock, &s->heap.size, SHK_LENS_NUM_ENTRIES, kind};
    case SHK_LENS_PLOT: return (payload_ref){&s->plot.lock, &s->plot.size, SHK_LENS_NUM_ENTRIES, kind};
    default: return (payload_ref){&s->log_data_lock, &s->log_data_count, SHK_LENS_LOG_DATA_SIZE, kind};
  }
}

static int drop_n(shk_lens *lens, int kind, uint32_t n) {
  atomic_fetch_add_explicit(&lens->dropped[kind], n, memory_order_relaxed);
  shk__lens_add64(&lens->seg->ext.counters[kind].dropped, n);
  return SHK_EBUSY;
}

static int drop(shk_lens *lens, int kind) { return drop_n(lens, kind, 1); }

/* Waits, without the lock, until the reader has made room or the deadline passes. */
static bool wait_for_room(const payload_ref *p, uint32_t needed, uint64_t deadline) {
  uint64_t spin_until = shk__os_now_ns() + SHK__LENS_SPIN_NS;
  for (unsigned i = 1;; i++) {
    uint32_t fill = shk__lens_load32(p->fill);
    if (fill <= p->capacity && needed <= p->capacity - fill) return true;
    shk__lens_cpu_relax();
    if (i % 64 != 0) continue; /* the clock costs more than a look at the fill */
    uint64_t now = shk__os_now_ns();
    if (now >= deadline) return false;
    if (now >= spin_until) shk__os_yield();
  }
}

/* Takes the payload's lock with room for `needed` more units; *at gets the current fill.
 * On failure the event is counted as dropped and SHK_EBUSY returned, without the lock. */
static int reserve(shk_lens *lens, const payload_ref *p, uint32_t needed, uint32_t *at) {
  uint64_t deadline = 0;
  for (;;) {
    if (shk__lens_lock(p->lock, lens->pid, lens->options.lock_timeout_ns) == SHK__LENS_TIMEOUT)
      return drop(lens, p->kind);
    uint32_t fill = *p->fill;
    /* Shared memory is not trusted here either: a fill past capacity is reset, never used. */
    if (fill > p->capacity) {
      fill = 0;
      shk__lens_store32(p->fill, 0);
    }
    if (needed <= p->capacity - fill) {
      *at = fill;
      return SHK_OK;
    }
    shk__lens_unlock(p->lock);
    if (lens->options.full_wait_ns == 0 || !reader_attached(lens)) return drop(lens, p->kind);
    uint64_t now = shk__os_now_ns();
    if (deadline == 0) deadline = now + lens->options.full_wait_ns;
    if (!wait_for_room(p, needed, deadline)) return drop(lens, p->kind);
  }
}

/* Publishes the `events` entries reserve() made room for and releases the lock. Counters are
 * written under the lock, so a plain load and store is enough (cheaper than a locked add). */
static int commit_n(shk_lens *lens, const payload_ref *p, uint32_t new_fill, uint32_t events) {
  shk__lens_store32(p->fill, new_fill);
  uint64_t *w = &lens->seg->ext.counters[p->kind].written;
  atomic_store_explicit(SHK__A64(w),
                        atomic_load_explicit(SHK__A64(w), memory_order_relaxed) + events,
                        memory_order_relaxed);
  atomic_store_explicit(&lens->written[p->kind],
                        atomic_load_explicit(&lens->written[p->kind], memory_order_relaxed) + events,
                        memory_order_relaxed);
  shk__lens_unlock(p->lock);
  return SHK_OK;
}

static int commit(shk_lens *lens, const payload_ref *p, uint32_t new_fill) {
  return commit_n(lens, p, new_fill, 1);
}

static double seconds_since_origin(const shk_lens *lens, uint64_t ns) {
  return ns > lens->origin_ns ? (double)(ns - lens->origin_ns) / 1e9 : 0.0;
}

/* A new reader has never seen our strings: send their contents again. Called under the lock. */
static void sync_generation(shk_lens *lens, shk__lens_sent_set *set) {
  uint32_t generation = shk__lens_load32(&lens->seg->ext.reader_generation);
  if (set->generation != generation) {
    shk__lens_sent_clear(set);
    set->generation = generation;
  }
}

static size_t name_length(const char *name) {
  const char *end = memchr(name, '\0', SHK_LENS_SHARED_STRING_MAX_SIZE);
  return end ? (size_t)(end - name) : SHK_LENS_SHARED_STRING_MAX_SIZE;
}

#define MEASURE ((size_t)-1)

/* Writes only the bytes the reader will look at: the contents travel once per key, and a name is
 * measured only when its contents are sent. len MEASURE: text is NUL-terminated (or cut at 128). */
static void put_string(shk_lens_shared_string *dst, uint64_t key, const char *text, size_t len,
                       shk__lens_sent_set *set) {
  dst->key = key;
  if (shk__lens_sent_has(set, key)) {
    dst->size = 0;
    dst->has_contents = 0;
    return;
  }
  if (len == MEASURE) len = name_length(text);
  if (len > SHK_LENS_SHARED_STRING_MAX_SIZE) len = SHK_LENS_SHARED_STRING_MAX_SIZE;
  memcpy(dst->contents, text, len);
  dst->size = (uint8_t)len;
  dst->has_contents = 1;
  shk__lens_sent_add(set, key);
}

static uint32_t color_of(uint32_t color) { return color & 0xFFFFFFu; }

/* ---- zones: staged per thread, published in batches ---- */

/* Publishes a stage's zones in as few lock acquisitions as the payload's free entries allow,
 * waiting for room as a single send would; what cannot go is dropped and counted. Either way
 * each zone is counted exactly once, and the stage is empty afterwards. */
static void publish_stage(shk_lens *lens, lens_stage *st, bool *dropped) {
  payload_ref p = payload_of(lens, SHK_LENS_ZONE);
  uint32_t done = 0;
  while (done < st->count) {
    uint32_t at;
    if (reserve(lens, &p, 1, &at) != SHK_OK) {
      /* reserve() counted one; the rest of the stage goes with it. */
      if (st->count - done > 1) drop_n(lens, SHK_LENS_ZONE, st->count - done - 1);
      *dropped = true;
      break;
    }
    uint32_t n = SHK__MIN(st->count - done, SHK_LENS_NUM_ENTRIES - at);
    sync_generation(lens, &lens->zone_sent);
    for (uint32_t i = 0; i < n; i++) {
      const staged_zone *z = &st->zones[done + i];
      shk_lens_zone_data *d = &lens->seg->zone.data[at + i];
      d->uid = z->uid;
      d->color = z->color;
      d->end = seconds_since_origin(lens, z->end_ns);
      d->duration = z->end_ns > z->start_ns ? z->end_ns - z->start_ns : 0;
      d->depth = z->depth;
      put_string(&d->name, (uint64_t)(uintptr_t)z->name, z->name, MEASURE, &lens->zone_sent);
      put_string(&d->thread, st->thread_key, st->thread_name, st->thread_len, &lens->zone_sent);
    }
    commit_n(lens, &p, at + n, n);
    done += n;
  }
  st->count = 0;
}

/* The calling thread's stage for lens; made on first use when `make`. NULL when there is none
 * (or memory ran out). The thread remembers the last lens it used, so only a thread that
 * alternates between lenses searches the list. */
static lens_stage *stage_of(shk_lens *lens, lens_thread *t, bool make) {
  if (t->stage_lens_id == lens->id) return t->stage;
  shk__os_mutex_lock(&lens->stages_mutex);
  lens_stage *st = lens->stages;
  while (st && st->thread_serial != t->serial) st = st->next;
  if (!st && make && (st = calloc(1, sizeof *st)) != NULL) {
    st->thread_serial = t->serial;
    st->next = lens->stages;
    lens->stages = st;
  }
  shk__os_mutex_unlock(&lens->stages_mutex);
  if (st) {
    t->stage = st;
    t->stage_lens_id = lens->id;
  }
  return st;
}

/* Publishes the calling thread's staged zones for lens, if it has any. */
static bool flush_this_thread(shk_lens *lens) {
  lens_thread *t = current_thread();
  lens_stage *st = stage_of(lens, t, false);
  bool dropped = false;
  if (st && st->count > 0) publish_stage(lens, st, &dropped);
  return !dropped;
}

/* ---- the event kinds ---- */

int shk_lens_frame(shk_lens *lens) {
  if (!lens) return SHK_EINVAL;
  flush_this_thread(lens); /* the frame's zones go first */
  uint64_t now = shk__lens_now_ns();
  uint64_t previous = atomic_exchange(&lens->last_frame_ns, now);
  uint64_t number = atomic_fetch_add(&lens->frame_number, 1) + 1;
  payload_ref p = payload_of(lens, SHK_LENS_FRAME);
  uint32_t at;
  int rc = reserve(lens, &p, 1, &at);
  if (rc != SHK_OK) return rc;
  shk_lens_frame_data *d = &lens->seg->frame.data[at];
  d->number = number;
  d->end = seconds_since_origin(lens, now);
  d->duration = now > previous ? now - previous : 0;
  return commit(lens, &p, at + 1);
}

int shk_lens_flush(shk_lens *lens) {
  if (!lens) return SHK_EINVAL;
  return flush_this_thread(lens) ? SHK_OK : SHK_EBUSY;
}

int shk_lens_thread_name(shk_lens *lens, const char *name) {
  if (!lens || !name) return SHK_EINVAL;
  flush_this_thread(lens); /* staged zones keep the name they were made under */
  set_thread_name(name, name_length(name));
  return SHK_OK;
}

int shk_lens_zone_begin(shk_lens *lens, shk_lens_zone *zone, const char *name, uint32_t color) {
  if (!zone) return SHK_EINVAL;
  zone->lens = NULL;
  if (!lens || !name) return SHK_EINVAL;
  lens_thread *t = current_thread();
  zone->name = name;
  zone->color = color;
  zone->depth = t->depth++;
  zone->start_ns = shk__lens_now_ns();
  zone->lens = lens;
  return SHK_OK;
}

int shk_lens_zone_end(shk_lens_zone *zone) {
  if (!zone) return SHK_EINVAL;
  shk_lens *lens = zone->lens;
  if (!lens) return SHK_OK;
  uint64_t now = shk__lens_now_ns();
  zone->lens = NULL;
  lens_thread *t = current_thread();
  if (t->depth > 0) t->depth--;
  lens_stage *st = stage_of(lens, t, true);
  if (!st) return drop(lens, SHK_LENS_ZONE);
  bool dropped = false;
  if (st->thread_key != t->name_key) {
    /* Named since: a stage carries one thread name. */
    if (st->count > 0) publish_stage(lens, st, &dropped);
    st->thread_key = t->name_key;
    st->thread_len = t->name_len;
    memcpy(st->thread_name, t->name, t->name_len);
  }
  staged_zone *z = &st->zones[st->count++];
  z->uid = (uint64_t)t->serial << 40 | (++t->zone_seq & ((1ull << 40) - 1));
  z->start_ns = zone->start_ns;
  z->end_ns = now;
  z->name = zone->name;
  z->color = color_of(zone->color);
  z->depth = zone->depth;
  if (st->count == STAGE_ZONES || now - st->zones[0].end_ns >= STAGE_AGE_NS)
    publish_stage(lens, st, &dropped);
  return dropped ? SHK_EBUSY : SHK_OK;
}

void shk_lens_zone_cleanup(shk_lens_zone *zone) { (void)shk_lens_zone_end(zone); }

int shk_lens_plot(shk_lens *lens, const char *name, double value, uint32_t color) {
  if (!lens || !name || !isfinite(value)) return SHK_EINVAL;
  uint64_t now = shk__lens_now_ns();
  payload_ref p = payload_of(lens, SHK_LENS_PLOT);
  uint32_t at;
  int rc = reserve(lens, &p, 1, &at);
  if (rc != SHK_OK) return rc;
  shk_lens_plot_data *d = &lens->seg->plot.data[at];
  d->time = seconds_since_origin(lens, now);
  d->color = color_of(color);
  d->value = value;
  sync_generation(lens, &lens->plot_sent);
  put_string(&d->name, (uint64_t)(uintptr_t)name, name, MEASURE, &lens->plot_sent);
  return commit(lens, &p, at + 1);
}

int shk_lens_heap(shk_lens *lens, uint64_t addr, uint64_t size, bool is_free) {
  if (!lens || size > UINT64_MAX - addr) return SHK_EINVAL;
  uint64_t now = shk__lens_now_ns();
  payload_ref p = payload_of(lens, SHK_LENS_HEAP);
  uint32_t at;
  int rc = reserve(lens, &p, 1, &at);
  if (rc != SHK_OK) return rc;
  shk_lens_heap_data *d = &lens->seg->heap.data[at];
  d->time = seconds_since_origin(lens, now);
  d->addr = addr;
  d->size = size;
  d->is_free = is_free ? 1 : 0;
  return commit(lens, &p, at + 1);
}

int shk_lens_log(shk_lens *lens, uint32_t color, const char *format, ...) {
  if (!lens || !format) return SHK_EINVAL;
  uint64_t now = shk__lens_now_ns();
  char message[LOG_MESSAGE_MAX + 1];
  va_list ap;
  va_start(ap, format);
  int n = vsnprintf(message, sizeof message, format, ap);
  va_end(ap);
  if (n < 0) return SHK_EINVAL;
  uint32_t length = (uint32_t)n > LOG_MESSAGE_MAX ? (uint32_t)LOG_MESSAGE_MAX : (uint32_t)n;
  shk_lens_log_header h = {seconds_since_origin(lens, now), color_of(color), length};
  payload_ref p = payload_of(lens, SHK_LENS_LOG);
  uint32_t needed = (uint32_t)sizeof h + length;
  uint32_t at;
  int rc = reserve(lens, &p, needed, &at);
  if (rc != SHK_OK) return rc;
  memcpy(lens->seg->log_data + at, &h, sizeof h);
  memcpy(lens->seg->log_data + at + sizeof h, message, length);
  return commit(lens, &p, at + needed);
}

int shk_lens_stats_get(const shk_lens *lens, shk_lens_stats *out) {
  if (!lens || !out) return SHK_EINVAL;
  /* The calling thread's staged zones are published first, so that what it sent is counted;
   * the handle was made writable by shk_lens_open(), so dropping const is sound. */
  flush_this_thread((shk_lens *)lens);
  const shk_lens_segment *s = lens->seg;
  shk__lens_segment_stats(s, out);
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
    out->sent[k] = atomic_load(&((shk_lens *)lens)->written[k]) +
                   atomic_load(&((shk_lens *)lens)->dropped[k]);
  }
  return SHK_OK;
}
