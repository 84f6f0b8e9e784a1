/* The lens reader: attaches to a segment, takes each payload out under its lock into private
 * memory, and only then validates it. Shared memory is untrusted: every count, size and length is
 * checked against the fixed layout before use; bad entries are counted and skipped. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lens_internal.h"

#define MAX_LOG_ENTRIES (SHK_LENS_LOG_DATA_SIZE / sizeof(shk_lens_log_header))
#define MAX_EVENTS (4 * SHK_LENS_NUM_ENTRIES + MAX_LOG_ENTRIES)
#define MAX_DEPTH 65535u

struct shk_lens_reader {
  shk_shm *shm; /* NULL when attached to plain memory */
  shk_lens_segment *seg;
  uint32_t pid;
  bool registered; /* we are ext.reader_pid */
  shk_lens_reader_options options;
  shk__lens_string_map strings;
  uint64_t received[SHK_LENS_KIND_COUNT];
  uint64_t malformed[SHK_LENS_KIND_COUNT];
  uint64_t last_event_ns;
  uint64_t producer_checked_ns; /* when the producer's liveness was last asked of the OS */
  bool producer_seen_alive;
  bool batching;                              /* inside poll: apply batch_ns */
  uint64_t pending_since[SHK_LENS_KIND_COUNT]; /* when a partly filled payload was first seen */
  /* Events of the last drain not yet handed out (iterator form). */
  shk_lens_event events[MAX_EVENTS];
  size_t event_count, event_next;
  /* Private copies of the payloads, and the log messages made NUL-terminated. */
  shk_lens_frame_data frames[SHK_LENS_NUM_ENTRIES];
  shk_lens_zone_data zones[SHK_LENS_NUM_ENTRIES];
  shk_lens_heap_data heaps[SHK_LENS_NUM_ENTRIES];
  shk_lens_plot_data plots[SHK_LENS_NUM_ENTRIES];
  uint8_t log_copy[SHK_LENS_LOG_DATA_SIZE];
  char log_text[SHK_LENS_LOG_DATA_SIZE + MAX_LOG_ENTRIES];
};

void shk_lens_reader_options_init(shk_lens_reader_options *options) {
  if (!options) return;
  memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
  options->max_strings = 65536;
  options->lock_timeout_ns = 100000000u;
  options->idle_spin_ns = 10000000u;
  options->idle_sleep_ns = 1000000u;
  options->batch_ns = 1000000u;
}

static int make_reader(const shk_lens_reader_options *options, shk_lens_reader **out) {
  shk_lens_reader *r = calloc(1, sizeof *r);
  if (!r) return SHK_ENOMEM;
  shk_lens_reader_options_init(&r->options);
  if (options) {
    if (options->struct_size < sizeof(uint32_t) * 2 || options->struct_size > sizeof *options) {
      free(r);
      return SHK_EINVAL;
    }
    memcpy(&r->options, options, options->struct_size);
  }
  r->strings.limit = r->options.max_strings;
  r->pid = (uint32_t)shk__os_pid();
  r->last_event_ns = shk__os_now_ns();
  *out = r;
  return SHK_OK;
}

int shk__lens_reader_attach_memory(void *mem, size_t size, const shk_lens_reader_options *options,
                                   shk_lens_reader **out) {
  if (!out) return SHK_EINVAL;
  *out = NULL;
  int rc = shk__lens_layout_check(mem, size);
  if (rc != SHK_OK) return rc;
  shk_lens_reader *r;
  rc = make_reader(options, &r);
  if (rc != SHK_OK) return rc;
  r->seg = mem;
  *out = r;
  return SHK_OK;
}

/* Becomes the segment's reader, unless a live one is there. */
static int register_reader(shk_lens_reader *r) {
  _Atomic uint32_t *slot = SHK__A32(&r->seg->ext.reader_pid);
  uint32_t current = atomic_load(slot);
  for (;;) {
    if (current != 0 && (current == r->pid || shk__lens_pid_alive(current))) return SHK_EBUSY;
    if (atomic_compare_exchange_strong(slot, &current, r->pid)) break;
  }
  r->registered = true;
  /* Producers see the new generation and send string contents again. */
  atomic_fetch_add(SHK__A32(&r->seg->ext.reader_generation), 1);
  return SHK_OK;
}

int shk_lens_reader_open(const char *name, const shk_lens_reader_options *options,
                         shk_lens_reader **out) {
  if (!out) return SHK_EINVAL;
  *out = NULL;
  shk_shm *shm = NULL;
  int rc = shk_shm_open(name, SHK_SHM_READ_WRITE, &shm);
  if (rc != SHK_OK) return rc;
  shk_lens_reader *r = NULL;
  rc = shk__lens_reader_attach_memory(shk_shm_data(shm), shk_shm_size(shm), options, &r);
  if (rc == SHK_OK) {
    r->shm = shm;
    rc = register_reader(r);
  }
  if (rc != SHK_OK) {
    if (r) r->shm = NULL;
    shk_lens_reader_close(r);
    shk_shm_close(shm);
    return rc;
  }
  *out = r;
  return SHK_OK;
}

void shk_lens_reader_close(shk_lens_reader *r) {
  if (!r) return;
  if (r->registered) {
    uint32_t me = r->pid;
    atomic_compare_exchange_strong(SHK__A32(&r->seg->ext.reader_pid), &me, 0);
  }
  shk_shm_close(r->shm);
  shk__lens_strings_free(&r->strings);
  free(r);
}

/* ---- taking payloads out ---- */

/* Whether to take a payload now: always for an explicit drain; inside poll, once it is half full
 * or has waited batch_ns. Taking every entry as it comes would hand the lock's cache line back
 * and forth with the producer for each entry. */
static bool worth_taking(shk_lens_reader *r, int kind, uint32_t fill, uint32_t capacity) {
  if (fill == 0) {
    r->pending_since[kind] = 0;
    return false;
  }
  if (!r->batching || r->options.batch_ns == 0 || fill >= capacity / 2) return true;
  uint64_t now = shk__os_now_ns();
  if (r->pending_since[kind] == 0) r->pending_since[kind] = now;
  return now - r->pending_since[kind] >= r->options.batch_ns;
}

/* Copies the first `fill` entries of a fixed payload out under its lock and empties it. Returns
 * the entries copied; a fill above 32 is counted as one malformed payload and thrown away. */
static uint32_t take_entries(shk_lens_reader *r, int kind, shk_lens_lock *lock, uint32_t *fill,
                             const void *data, size_t entry_size, void *copy) {
  /* A look without the lock keeps the line shared. */
  if (!worth_taking(r, kind, shk__lens_load32(fill), SHK_LENS_NUM_ENTRIES)) return 0;
  r->pending_since[kind] = 0;
  if (shk__lens_lock(lock, r->pid, r->options.lock_timeout_ns) == SHK__LENS_TIMEOUT) return 0;
  uint32_t n = shk__lens_load32(fill);
  if (n > SHK_LENS_NUM_ENTRIES) {
    r->malformed[kind]++;
    n = 0;
  } else {
    memcpy(copy, data, (size_t)n * entry_size);
    shk__lens_add64(&r->seg->ext.counters[kind].drained, n);
  }
  shk__lens_store32(fill, 0);
  shk__lens_unlock(lock);
  return n;
}

static uint32_t take_log(shk_lens_reader *r) {
  shk_lens_segment *s = r->seg;
  if (!worth_taking(r, SHK_LENS_LOG, shk__lens_load32(&s->log_data_count), SHK_LENS_LOG_DATA_SIZE))
    return 0;
  r->pending_since[SHK_LENS_LOG] = 0;
  if (shk__lens_lock(&s->log_data_lock, r->pid, r->options.lock_timeout_ns) == SHK__LENS_TIMEOUT)
    return 0;
  uint32_t n = shk__lens_load32(&s->log_data_count);
  if (n > SHK_LENS_LOG_DATA_SIZE) {
    r->malformed[SHK_LENS_LOG]++;
    n = 0;
  } else {
    memcpy(r->log_copy, s->log_data, n);
  }
  shk__lens_store32(&s->log_data_count, 0);
  shk__lens_unlock(&s->log_data_lock);
  return n;
}

/* ---- validating the private copies ---- */

static bool string_ok(const shk_lens_shared_string *s) {
  return s->size <= SHK_LENS_SHARED_STRING_MAX_SIZE && s->has_contents <= 1;
}

static const char *resolve(shk_lens_reader *r, const shk_lens_shared_string *s) {
  if (s->has_contents) return shk__lens_strings_put(&r->strings, s->key, s->contents, s->size);
  return shk__lens_strings_get(&r->strings, s->key);
}

static shk_lens_event *new_event(shk_lens_reader *r, shk_lens_kind kind) {
  shk_lens_event *e = &r->events[r->event_count++];
  memset(e, 0, sizeof *e);
  e->kind = kind;
  r->received[kind]++;
  return e;
}

static void add_frames(shk_lens_reader *r, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    const shk_lens_frame_data *d = &r->frames[i];
    if (!isfinite(d->end)) {
      r->malformed[SHK_LENS_FRAME]++;
      continue;
    }
    shk_lens_event *e = new_event(r, SHK_LENS_FRAME);
    e->number = d->number;
    e->time = d->end;
    e->duration_ns = d->duration;
  }
}

static void add_zones(shk_lens_reader *r, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    const shk_lens_zone_data *d = &r->zones[i];
    if (!isfinite(d->end) || d->depth > MAX_DEPTH || d->color > 0xFFFFFFu ||
        !string_ok(&d->name) || !string_ok(&d->thread)) {
      r->malformed[SHK_LENS_ZONE]++;
      continue;
    }
    shk_lens_event *e = new_event(r, SHK_LENS_ZONE);
    e->uid = d->uid;
    e->color = d->color;
    e->time = d->end;
    e->duration_ns = d->duration;
    e->depth = d->depth;
    e->name_key = d->name.key;
    e->thread_key = d->thread.key;
    e->name = resolve(r, &d->name);
    e->thread = resolve(r, &d->thread);
  }
}

static void add_heap(shk_lens_reader *r, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    const shk_lens_heap_data *d = &r->heaps[i];
    if (!isfinite(d->time) || d->is_free > 1) {
      r->malformed[SHK_LENS_HEAP]++;
      continue;
    }
    shk_lens_event *e = new_event(r, SHK_LENS_HEAP);
    e->time = d->time;
    e->addr = d->addr;
    e->size = d->size;
    e->is_free = d->is_free != 0;
  }
}

static void add_plots(shk_lens_reader *r, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    const shk_lens_plot_data *d = &r->plots[i];
    if (!isfinite(d->time) || !isfinite(d->value) || d->color > 0xFFFFFFu ||
        !string_ok(&d->name)) {
      r->malformed[SHK_LENS_PLOT]++;
      continue;
    }
    shk_lens_event *e = new_event(r, SHK_LENS_PLOT);
    e->time = d->time;
    e->color = d->color;
    e->value = d->value;
    e->name_key = d->name.key;
    e->name = resolve(r, &d->name);
  }
}

/* Walks the packed log entries; the first one that does not fit ends the walk (what follows it
 * cannot be framed). Returns the entries taken out, valid or not, for the drained counter. */
static uint64_t add_logs(shk_lens_reader *r, uint32_t bytes) {
  uint32_t at = 0;
  size_t text_at = 0;
  uint64_t taken = 0;
  while (at < bytes) {
    shk_lens_log_header h;
    taken++;
    if (bytes - at < sizeof h) {
      r->malformed[SHK_LENS_LOG]++;
      break;
    }
    memcpy(&h, r->log_copy + at, sizeof h);
    at += (uint32_t)sizeof h;
    if (h.length > bytes - at) {
      r->malformed[SHK_LENS_LOG]++;
      break;
    }
    const uint8_t *message = r->log_copy + at;
    at += h.length;
    if (!isfinite(h.time) || h.color > 0xFFFFFFu) {
      r->malformed[SHK_LENS_LOG]++;
      continue;
    }
    /* text_at + length + 1 stays inside log_text: lengths sum to at most 8192 - 16 * entries. */
    char *text = r->log_text + text_at;
    memcpy(text, message, h.length);
    text[h.length] = '\0';
    text_at += (size_t)h.length + 1;
    shk_lens_event *e = new_event(r, SHK_LENS_LOG);
    e->time = h.time;
    e->color = h.color;
    e->message = text;
    e->length = h.length;
  }
  return taken;
}

static void collect(shk_lens_reader *r) {
  shk_lens_segment *s = r->seg;
  r->event_count = r->event_next = 0;
  add_frames(r, take_entries(r, SHK_LENS_FRAME, &s->frame.lock, &s->frame.size, s->frame.data,
                             sizeof(shk_lens_frame_data), r->frames));
  add_zones(r, take_entries(r, SHK_LENS_ZONE, &s->zone.lock, &s->zone.size, s->zone.data,
                            sizeof(shk_lens_zone_data), r->zones));
  add_heap(r, take_entries(r, SHK_LENS_HEAP, &s->heap.lock, &s->heap.size, s->heap.data,
                           sizeof(shk_lens_heap_data), r->heaps));
  add_plots(r, take_entries(r, SHK_LENS_PLOT, &s->plot.lock, &s->plot.size, s->plot.data,
                            sizeof(shk_lens_plot_data), r->plots));
  uint32_t log_bytes = take_log(r);
  if (log_bytes > 0) shk__lens_add64(&s->ext.counters[SHK_LENS_LOG].drained, add_logs(r, log_bytes));
  if (r->event_count > 0) r->last_event_ns = shk__os_now_ns();
}

static size_t deliver_pending(shk_lens_reader *r, shk_lens_event_fn fn, void *user) {
  size_t n = 0;
  while (r->event_next < r->event_count) {
    fn(&r->events[r->event_next++], user);
    n++;
  }
  return n;
}

int shk_lens_reader_drain(shk_lens_reader *r, shk_lens_event_fn fn, void *user, size_t *count) {
  if (count) *count = 0;
  if (!r) return SHK_EINVAL;
  size_t n = 0;
  if (r->event_next < r->event_count) {
    /* Events the iterator has not handed out yet come first, and must not be overwritten. */
    if (!fn) {
      if (count) *count = r->event_count - r->event_next;
      return SHK_OK;
    }
    n = deliver_pending(r, fn, user);
  }
  collect(r);
  if (fn) n += deliver_pending(r, fn, user);
  else n += r->event_count;
  if (count) *count = n;
  return SHK_OK;
}

/* Spins on the fill counts (plain loads: the lines stay shared with the producer) until one is
 * non-zero or `until` passes, then yields once. */
static void spin_for_data(shk_lens_reader *r, uint64_t until) {
  const shk_lens_segment *s = r->seg;
  for (unsigned i = 1;; i++) {
    if (shk__lens_load32(&s->frame.size) | shk__lens_load32(&s->zone.size) |
        shk__lens_load32(&s->heap.size) | shk__lens_load32(&s->plot.size) |
        shk__lens_load32(&s->log_data_count))
      return;
    shk__lens_cpu_relax();
    if (i % 64 == 0 && shk__os_now_ns() >= until) break;
  }
  shk__os_yield();
}

int shk_lens_reader_poll(shk_lens_reader *r, uint64_t timeout_ns, shk_lens_event_fn fn,
                         void *user, size_t *count) {
  if (count) *count = 0;
  if (!r) return SHK_EINVAL;
  uint64_t start = shk__os_now_ns();
  for (;;) {
    size_t n = 0;
    r->batching = true;
    shk_lens_reader_drain(r, fn, user, &n);
    r->batching = false;
    if (n > 0) {
      if (count) *count = n;
      return SHK_OK;
    }
    uint64_t now = shk__os_now_ns();
    if (now - start >= timeout_ns) return SHK_ETIMEDOUT;
    /* Right after events, look again at once: a producer that fills a payload waits for us.
     * After a quiet spell, sleep so that an idle recorder costs nothing. */
    if (now - r->last_event_ns < r->options.idle_spin_ns) {
      spin_for_data(r, now + SHK__LENS_SPIN_NS);
    } else {
      uint64_t left = timeout_ns - (now - start);
      shk__os_sleep_ns(SHK__MIN(r->options.idle_sleep_ns, left));
    }
  }
}

int shk_lens_reader_next(shk_lens_reader *r, shk_lens_event *event) {
  if (!r || !event) return SHK_EINVAL;
  if (r->event_next >= r->event_count) collect(r);
  if (r->event_next >= r->event_count) return SHK_ENOENT;
  *event = r->events[r->event_next++];
  return SHK_OK;
}

bool shk_lens_reader_finished(shk_lens_reader *r) {
  if (!r) return true;
  const shk_lens_segment *s = r->seg;
  if (r->event_next < r->event_count) return false;
  uint32_t producers = shk__lens_load32(&s->ext.producers);
  if (producers != 0) {
    /* Asking the OS whether the producer lives costs a /proc read or a system call: a reader
     * that calls this after every poll would spend its time there, so ask at most every 10 ms. */
    uint64_t now = shk__os_now_ns();
    if (now - r->producer_checked_ns >= 10000000u) {
      r->producer_seen_alive = shk__lens_pid_alive(shk__lens_load32(&s->ext.producer_pid));
      r->producer_checked_ns = now;
    }
    if (r->producer_seen_alive) return false;
  }
  return shk__lens_load32(&s->frame.size) == 0 && shk__lens_load32(&s->zone.size) == 0 &&
         shk__lens_load32(&s->heap.size) == 0 && shk__lens_load32(&s->plot.size) == 0 &&
         shk__lens_load32(&s->log_data_count) == 0;
}

int shk_lens_reader_stats(const shk_lens_reader *r, shk_lens_stats *out) {
  if (!r || !out) return SHK_EINVAL;
  const shk_lens_segment *s = r->seg;
  shk__lens_segment_stats(s, out);
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
    out->received[k] = r->received[k];
    out->malformed[k] = r->malformed[k];
  }
  out->strings = r->strings.known_count;
  out->unknown_strings = r->strings.unknown_count;
  return SHK_OK;
}
