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
};

/* What a thread keeps between calls: zone depth, zone ids, and its name as a shared string. */
typedef struct lens_thread {
  uint32_t depth;
  uint32_t serial;
  uint64_t zone_seq;
  uint64_t name_key; /* 0 until named */
  uint8_t name_len;
  char name[SHK_LENS_SHARED_STRING_MAX_SIZE];
} lens_thread;

/* Initial-exec TLS where the format has it: no __tls_get_addr call on every zone. */
#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
static _Thread_local lens_thread this_thread __attribute__((tls_model("initial-exec")));
#else
static _Thread_local lens_thread this_thread;
#endif
static _Atomic uint64_t next_generated_key;
static _Atomic uint32_t next_thread_serial;

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

void shk_lens_close(shk_lens *lens) {
  if (!lens) return;
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

static int drop(shk_lens *lens, int kind) {
  atomic_fetch_add_explicit(&lens->dropped[kind], 1, memory_order_relaxed);
  shk__lens_add64(&lens->seg->ext.counters[kind].dropped, 1);
  return SHK_EBUSY;
}

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

/* Publishes what reserve() made room for and releases the lock. Counters are written under the
 * lock, so a plain load and store is enough (cheaper than a locked add). */
static int commit(shk_lens *lens, const payload_ref *p, uint32_t new_fill) {
  shk__lens_store32(p->fill, new_fill);
  uint64_t *w = &lens->seg->ext.counters[p->kind].written;
  atomic_store_explicit(SHK__A64(w), atomic_load_explicit(SHK__A64(w), memory_order_relaxed) + 1,
                        memory_order_relaxed);
  atomic_store_explicit(&lens->written[p->kind],
                        atomic_load_explicit(&lens->written[p->kind], memory_order_relaxed) + 1,
                        memory_order_relaxed);
  shk__lens_unlock(p->lock);
  return SHK_OK;
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

/* ---- the event kinds ---- */

int shk_lens_frame(shk_lens *lens) {
  if (!lens) return SHK_EINVAL;
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

int shk_lens_thread_name(shk_lens *lens, const char *name) {
  if (!lens || !name) return SHK_EINVAL;
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
  payload_ref p = payload_of(lens, SHK_LENS_ZONE);
  uint32_t at;
  int rc = reserve(lens, &p, 1, &at);
  if (rc != SHK_OK) return rc;
  shk_lens_zone_data *d = &lens->seg->zone.data[at];
  d->uid = (uint64_t)t->serial << 40 | (++t->zone_seq & ((1ull << 40) - 1));
  d->color = color_of(zone->color);
  d->end = seconds_since_origin(lens, now);
  d->duration = now > zone->start_ns ? now - zone->start_ns : 0;
  d->depth = zone->depth;
  sync_generation(lens, &lens->zone_sent);
  put_string(&d->name, (uint64_t)(uintptr_t)zone->name, zone->name, MEASURE, &lens->zone_sent);
  put_string(&d->thread, t->name_key, t->name, t->name_len, &lens->zone_sent);
  return commit(lens, &p, at + 1);
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
  if (!lens) return SHK_EINVAL;
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
  const shk_lens_segment *s = lens->seg;
  shk__lens_segment_stats(s, out);
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
    out->sent[k] = atomic_load(&((shk_lens *)lens)->written[k]) +
                   atomic_load(&((shk_lens *)lens)->dropped[k]);
  }
  return SHK_OK;
}
