/* The lens reader: attaches to a segment and drains every thread's ring. Shared memory is
 * untrusted: each record is copied out once and then checked; a ring whose indices or lengths
 * cannot be true is counted and skipped to its head, never followed. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lens_internal.h"
#include "debug.h"

/* Events per read pass: small enough that the batch stays in the CPU's cache between being written
 * and being handed out (4096 events, 600 KB, made the reader slower than its producer). */
#define MAX_EVENTS 512u
#define RING_NAMES 16u /* names a ring used last, known ones only: most zones repeat a few */
#define TEXT_SIZE (64u * 1024u)
#define MAX_ARGS 1024u /* arguments of the events of one read pass */
#define LIVENESS_CHECK_NS 10000000u /* ask the OS whether a process lives at most every 10 ms */
#define THREAD_KEY_BIT (1ull << 63) /* string keys of thread names: addresses never have it */
#define IMPLAUSIBLE (1ull << 62)

/* What the reader knows of one ring: the epoch it follows and where it stands. */
typedef struct ring_state {
  bool seen;
  uint32_t epoch;
  uint32_t pid;
  uint64_t tid;
  uint64_t tail;
  const char *thread;
  size_t info; /* index in threads[] */
  uint64_t checked_ns;
  bool alive;
  struct {
    uint64_t key;
    const char *text;
  } names[RING_NAMES];
} ring_state;

struct shk_lens_reader {
  shk_shm *shm; /* NULL when attached to plain memory */
  void *mem;
  shk_lens_wire_header *hdr;
  size_t size;
  shk__lens_geometry geo;
  shk__lens_space space; /* the main segment's rings and the extensions' (2.3) */
  double seconds_per_tick;
  uint32_t pid;
  bool registered; /* we are hdr->reader_pid */
  bool shrunk;     /* the segment became smaller than our mapping: touched no more */
  char name[SHK_SHM_NAME_MAX + 1];
  shk_lens_reader_options options;
  shk__lens_string_map strings;
  uint64_t received[SHK_LENS_KIND_COUNT];
  uint64_t malformed[SHK_LENS_KIND_COUNT];
  uint64_t last_event_ns;
  uint64_t last_busy_ns;    /* when a read pass last found a ring at least 1/8 full */
  uint64_t last_read_ns;    /* when the last read pass began */
  uint64_t max_backlog;     /* the fullest ring seen by the last read pass, in records */
  uint64_t producers_checked_ns;
  uint32_t live_producers, dead_producers;
  ring_state *rings; /* one per global ring index, rings_cap of them */
  uint32_t rings_cap;
  shk_lens_thread_info *threads; /* one per ring epoch seen */
  size_t thread_count, thread_cap;
  uint32_t next_ring; /* where the next read pass starts: every ring gets its turn */
  /* Buffered: events of the last read pass not yet handed out (iterator form), and their log
   * texts. */
  shk_lens_event events[MAX_EVENTS];
  size_t event_count, event_next;
  /* Their arguments (lens 2.2): event i has arg_count[i] of them from args[arg_first[i]]. */
  uint16_t arg_first[MAX_EVENTS];
  uint8_t arg_count[MAX_EVENTS];
  shk_lens_arg args[MAX_ARGS];
  size_t arg_used;
  char text[TEXT_SIZE];
  size_t text_used;
};

static const shk_lens_reader_options reader_defaults = {
    .struct_size = sizeof(shk_lens_reader_options),
    .max_strings = 65536,
    .idle_spin_ns = 2000000u,
    .idle_sleep_ns = 1000000u,
};

/* The first published layout ended after max_strings; struct_size 0 means the 0.2.0 layout. */
#define READER_OPTIONS_V020_SIZE SHK__OPTIONS_END(shk_lens_reader_options, idle_sleep_ns)
static const shk__options_layout reader_layout = {
    sizeof(shk_lens_reader_options), SHK__OPTIONS_END(shk_lens_reader_options, max_strings),
    READER_OPTIONS_V020_SIZE, NULL, 0, &reader_defaults};

void shk_lens_reader_options_init_size(shk_lens_reader_options *options, size_t size) {
  shk__options_init(&reader_layout, options, size);
}

/* Programs built before the init macro call this: their struct is the 0.2.0 layout. */
void(shk_lens_reader_options_init)(shk_lens_reader_options *options) {
  shk__options_init(&reader_layout, options, READER_OPTIONS_V020_SIZE);
}

static int make_reader(const shk_lens_reader_options *options, shk_lens_reader **out) {
  shk_lens_reader *r = shk__calloc(1, sizeof *r);
  if (!r) return SHK_ENOMEM;
  if (shk__options_read(&reader_layout, options, &r->options) != SHK_OK) {
    free(r);
    return SHK_EINVAL;
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
  int rc = shk__lens_layout_check(mem, size, NULL, 0);
  if (rc != SHK_OK) return rc;
  shk_lens_reader *r;
  rc = make_reader(options, &r);
  if (rc != SHK_OK) return rc;
  r->mem = mem;
  r->hdr = mem;
  r->size = size;
  /* Read once: later changes to the header by a producer are not followed. */
  shk__lens_layout_geometry(mem, &r->geo);
  shk__lens_space_init(&r->space, mem, size, &r->geo, NULL, true);
  r->seconds_per_tick = r->geo.ns_per_tick / 1e9;
  r->rings = shk__calloc(r->space.total, sizeof *r->rings);
  if (!r->rings) {
    free(r);
    return SHK_ENOMEM;
  }
  r->rings_cap = r->space.total;
  *out = r;
  return SHK_OK;
}

/* Becomes the segment's reader, unless a live one is there. */
static int register_reader(shk_lens_reader *r) {
  _Atomic uint32_t *slot = SHK__A32(&r->hdr->reader_pid);
  uint32_t current = atomic_load(slot);
  for (;;) {
    if (current != 0 && (current == r->pid || shk__lens_pid_alive(current))) return SHK_EBUSY;
    if (atomic_compare_exchange_strong(slot, &current, r->pid)) break;
  }
  r->registered = true;
  /* The last reader's count is not ours: zeroed before a producer can see this reader as one that
   * reads extensions, so that none closing takes it for ours and removes names we have not mapped. */
  shk__lens_store32(&r->hdr->reader_extensions, 0);
  /* Producers see the new generation and send their names again. The version word goes first,
   * naming the generation about to be: a producer that sees the generation sees that we read
   * extensions (2.3). */
  uint32_t generation = atomic_load(SHK__A32(&r->hdr->reader_generation));
  do shk__lens_store64(&r->hdr->reader_version,
                       (uint64_t)(generation + 1) << 32 | SHK_LENS_PROTOCOL_VERSION);
  while (!atomic_compare_exchange_strong(SHK__A32(&r->hdr->reader_generation), &generation,
                                         generation + 1));
  return SHK_OK;
}

static void follow_extensions(shk_lens_reader *r);

static int lens_reader_open_impl(const char *name, const shk_lens_reader_options *options,
                                 shk_lens_reader **out) {
  if (!out) return SHK_EINVAL;
  *out = NULL;
  shk_shm *shm = NULL;
  int rc = shk__shm_open(name, SHK_SHM_READ_WRITE, &shm);
  if (rc != SHK_OK) return rc;
  shk_lens_reader *r = NULL;
  rc = shk__lens_reader_attach_memory(shk_shm_data(shm), shk_shm_size(shm), options, &r);
  if (rc == SHK_OK) {
    r->shm = shm;
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->space.name, sizeof r->space.name, "%s", name); /* extensions can be followed */
    rc = register_reader(r);
    if (rc == SHK_OK) follow_extensions(r); /* those there now, before a closing producer removes them */
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

int shk_lens_reader_open(const char *name, const shk_lens_reader_options *options,
                         shk_lens_reader **out) {
  return SHK__DEBUG_RET(SHK__DEBUG_LENS, lens_reader_open_impl(name, options, out));
}

/* Producers killed with their handles open leave the name behind: the reader removes it when no
 * live producer remains (a clean close with SHK_LENS_KEEP_NAME leaves no handle, so no trace). */
static void remove_orphaned_name(shk_lens_reader *r) {
  uint32_t live, dead, some;
  shk__lens_count_producers(r->hdr, &live, &dead, &some);
  if (live != 0 || dead == 0) return;
  for (uint32_t i = 0; i < SHK_LENS_PROCESS_SLOTS; i++) {
    uint64_t id = atomic_load(SHK__LENS_SLOT(r->hdr, i));
    if (id != 0 && !shk__lens_identity_alive(id))
      atomic_compare_exchange_strong(SHK__LENS_SLOT(r->hdr, i), &id, 0);
  }
  shk__lens_space_unlink(r->name, shk__lens_load32(&r->hdr->ext_count));
}

/* Whether the segment still has the size we mapped. A process with write access may shrink it
 * (POSIX ftruncate); touching the mapping past the new end would raise SIGBUS. Asked at the start
 * of every read pass (one system call per few thousand events) and before close; once shrunk,
 * the reader never touches the segment again. A shrink during a read pass is not caught here. */
static bool segment_whole(shk_lens_reader *r) {
  if (r->shrunk) return false;
  if (!r->shm) return true;
  uint64_t size = 0;
  if (shk__os_segment_size_now(shk__shm_os_segment(r->shm), &size) == SHK_OK && size < r->size)
    r->shrunk = true;
  else
    shk__lens_space_check_sizes(&r->space); /* a shrunk extension: its rings are left alone */
  return !r->shrunk;
}

void shk_lens_reader_close(shk_lens_reader *r) {
  if (!r) return;
  if (r->registered && segment_whole(r)) {
    remove_orphaned_name(r);
    shk__lens_store64(&r->hdr->reader_version, 0);
    uint32_t me = r->pid;
    atomic_compare_exchange_strong(SHK__A32(&r->hdr->reader_pid), &me, 0);
  }
  shk__lens_space_close(&r->space);
  shk_shm_close(r->shm);
  shk__lens_strings_free(&r->strings);
  free(r->rings);
  free(r->threads);
  free(r);
}

/* ---- following rings ---- */

static double seconds_of(const shk_lens_reader *r, uint64_t ticks) {
  if (ticks <= r->geo.clock_origin) return 0.0;
  return (double)(ticks - r->geo.clock_origin) * r->seconds_per_tick;
}

/* A span's end time and duration from its two stamps, both rounded to whole nanoseconds since the
 * origin: end - duration is then the start rounded the same way, so spans that nest, or start at
 * the same stamp, still do in nanoseconds (a truncated duration put a child before its parent). */
static void span_of(const shk_lens_reader *r, uint64_t start, uint64_t end, shk_lens_event *e) {
  double end_ns = (double)(end > r->geo.clock_origin ? end - r->geo.clock_origin : 0) * r->geo.ns_per_tick;
  double start_ns = (double)(start > r->geo.clock_origin ? start - r->geo.clock_origin : 0) * r->geo.ns_per_tick;
  uint64_t e_ns = end_ns >= 1.8e19 ? UINT64_MAX : (uint64_t)(end_ns + 0.5);
  uint64_t s_ns = start_ns >= 1.8e19 ? UINT64_MAX : (uint64_t)(start_ns + 0.5);
  e->time = (double)e_ns * 1e-9;
  e->duration_ns = e_ns > s_ns ? e_ns - s_ns : 0;
}

static const char *thread_name_default(shk_lens_reader *r, ring_state *rs) {
  char buf[48];
  int n = snprintf(buf, sizeof buf, "thread %llu", (unsigned long long)rs->tid);
  return shk__lens_strings_put(&r->strings, rs->pid, THREAD_KEY_BIT | rs->tid,
                               (const uint8_t *)buf, (size_t)n);
}

/* A ring claimed by a new owner (or seen for the first time): a new thread entry. */
static void adopt(shk_lens_reader *r, ring_state *rs, shk_lens_wire_ring *ring, uint32_t epoch) {
  rs->seen = true;
  rs->epoch = epoch;
  memset(rs->names, 0, sizeof rs->names);
  rs->pid = shk__lens_load32(&ring->pid);
  rs->tid = shk__lens_load64(&ring->tid);
  rs->tail = shk__lens_load64(&ring->tail);
  rs->thread = thread_name_default(r, rs);
  rs->checked_ns = 0;
  rs->alive = true;
  rs->info = SIZE_MAX;
  if (r->thread_count == r->thread_cap) {
    size_t cap = r->thread_cap ? r->thread_cap * 2 : 16;
    shk_lens_thread_info *list = shk__realloc(r->threads, cap * sizeof *list);
    if (!list) return;
    r->threads = list;
    r->thread_cap = cap;
  }
  rs->info = r->thread_count++;
  shk_lens_thread_info *ti = &r->threads[rs->info];
  memset(ti, 0, sizeof *ti);
  ti->pid = rs->pid;
  ti->tid = rs->tid;
  ti->name = rs->thread;
  ti->alive = true;
}

/* new_event() sets every field by name: a field added to the event must be added there too. */
_Static_assert(offsetof(shk_lens_event, tid) + sizeof(uint64_t) == sizeof(shk_lens_event),
               "shk_lens_event grew: set the new field in new_event()");

static shk_lens_event *new_event(shk_lens_reader *r, ring_state *rs, shk_lens_kind kind) {
  r->arg_count[r->event_count] = 0;
  shk_lens_event *e = &r->events[r->event_count++];
  /* Field by field: a memset of the whole event compiled to `rep stos`, the reader's top cost. */
  e->kind = kind;
  e->color = 0;
  e->time = 0;
  e->duration_ns = 0;
  e->number = 0;
  e->uid = 0;
  e->depth = 0;
  e->name = NULL;
  e->name_key = 0;
  e->value = 0;
  e->addr = 0;
  e->size = 0;
  e->is_free = false;
  e->name_known = false;
  e->message = NULL;
  e->length = 0;
  e->pid = rs->pid;
  e->tid = rs->tid;
  e->thread = rs->thread;
  e->thread_key = (uint64_t)rs->pid << 32 | (rs->tid & 0xFFFFFFFFu);
  r->received[kind]++;
  if (rs->info != SIZE_MAX) r->threads[rs->info].counters[kind].drained++;
  return e;
}

static const char *name_of(shk_lens_reader *r, ring_state *rs, uint64_t key, bool *known) {
  size_t slot = (size_t)((key >> 3) ^ (key >> 9)) % RING_NAMES;
  if (rs->names[slot].text && rs->names[slot].key == key) {
    *known = true;
    return rs->names[slot].text;
  }
  const char *text = shk__lens_strings_get(&r->strings, rs->pid, key, known);
  if (*known) {
    rs->names[slot].key = key;
    rs->names[slot].text = text;
  }
  return text;
}

static uint64_t data_records(uint64_t len) {
  return (len + SHK_LENS_RECORD_SIZE - 1) / SHK_LENS_RECORD_SIZE;
}

/* Copies `len` bytes from the data records after position `at` into dst. */
static void copy_data(const shk_lens_wire_record *recs, uint64_t mask, uint64_t at, void *dst,
                      size_t len) {
  for (size_t done = 0; done < len; done += SHK_LENS_RECORD_SIZE, at++) {
    size_t n = SHK__MIN(len - done, (size_t)SHK_LENS_RECORD_SIZE);
    memcpy((unsigned char *)dst + done, &recs[at & mask], n);
  }
}

typedef enum step { STEP_OK, STEP_STOP, STEP_BROKEN } step;

static step take_record(shk_lens_reader *r, ring_state *rs, const shk_lens_wire_record *recs,
                        uint64_t avail, const shk_lens_wire_record *rec, uint64_t *used);

static bool is_arg(const shk_lens_wire_record *rec) {
  return rec->type == SHK_LENS_REC_ZONE && (rec->flags & SHK_LENS_ARG_RECORD) != 0;
}

static bool arg_valid(const shk_lens_wire_record *rec) {
  return rec->flags <= (SHK_LENS_ARG_RECORD | SHK_LENS_ARG_TEXT << 1) && rec->depth == 0 &&
         rec->len == 0 && rec->b == 0;
}

/* The event just taken (events[at]) gets the valid arguments of group[0..n). */
static void attach_args(shk_lens_reader *r, ring_state *rs, size_t at,
                        const shk_lens_wire_record *group, size_t n) {
  r->arg_first[at] = (uint16_t)r->arg_used;
  for (size_t i = 0; i < n; i++) {
    if (!arg_valid(&group[i])) {
      r->malformed[SHK_LENS_ZONE]++;
      continue;
    }
    shk_lens_arg *a = &r->args[r->arg_used++];
    bool known, text_known = true;
    a->type = (uint32_t)(group[i].flags >> 1);
    a->name = name_of(r, rs, group[i].c, &known);
    a->value = a->type == SHK_LENS_ARG_TEXT ? 0 : group[i].a;
    a->text = a->type == SHK_LENS_ARG_TEXT ? name_of(r, rs, group[i].a, &text_known) : NULL;
    a->known = known && text_known;
    r->arg_count[at]++;
  }
}

/* Argument records (lens 2.2) at rs->tail and the zone, heap or log record they precede, taken
 * together: the producer publishes them at once, so a group cut short by the head cannot be
 * framed. Arguments before any other record are counted as malformed and skipped. */
static step take_args(shk_lens_reader *r, ring_state *rs, const shk_lens_wire_record *recs,
                      uint64_t avail, const shk_lens_wire_record *first, uint64_t *used) {
  uint64_t mask = r->geo.ring_records - 1;
  shk_lens_wire_record group[SHK_LENS_ARGS_MAX], rec = *first;
  size_t n = 0;
  while (is_arg(&rec)) {
    if (n == SHK_LENS_ARGS_MAX || n + 1 >= avail) {
      r->malformed[SHK_LENS_ZONE]++;
      return STEP_BROKEN;
    }
    group[n++] = rec;
    memcpy(&rec, &recs[(rs->tail + n) & mask], sizeof rec);
  }
  if (rec.type != SHK_LENS_REC_ZONE && rec.type != SHK_LENS_REC_HEAP &&
      rec.type != SHK_LENS_REC_LOG) {
    r->malformed[SHK_LENS_ZONE] += n;
    *used = n;
    return STEP_OK;
  }
  if (r->arg_used + n > MAX_ARGS) return STEP_STOP;
  size_t before = r->event_count;
  uint64_t event_used;
  rs->tail += n; /* the event's own record: its position, its data records */
  step s = take_record(r, rs, recs, avail - n, &rec, &event_used);
  rs->tail -= n;
  if (s != STEP_OK) return s;
  *used = n + event_used;
  if (r->event_count > before) attach_args(r, rs, before, group, n);
  return STEP_OK;
}

/* Handles the record at rs->tail (copied into *rec); *used gets the records it spans. */
static step take_record(shk_lens_reader *r, ring_state *rs, const shk_lens_wire_record *recs,
                        uint64_t avail, const shk_lens_wire_record *rec, uint64_t *used) {
  uint64_t mask = r->geo.ring_records - 1;
  *used = 1;
  switch (rec->type) {
    case SHK_LENS_REC_ZONE: {
      if (is_arg(rec)) return take_args(r, rs, recs, avail, rec, used);
      if (rec->len > 0xFFFFFFu || rec->b < rec->a || rec->flags != 0) {
        r->malformed[SHK_LENS_ZONE]++;
        return STEP_OK;
      }
      shk_lens_event *e = new_event(r, rs, SHK_LENS_ZONE);
      e->color = rec->len;
      span_of(r, rec->a, rec->b, e);
      e->depth = rec->depth;
      e->uid = (uint64_t)(rs - r->rings) << 48 ^ (uint64_t)(rs->epoch & 0xFF) << 40 ^
               (rs->tail & ((1ull << 40) - 1));
      e->name_key = rec->c;
      e->name = name_of(r, rs, rec->c, &e->name_known);
      return STEP_OK;
    }
    case SHK_LENS_REC_FRAME: {
      if (rec->b < rec->a) {
        r->malformed[SHK_LENS_FRAME]++;
        return STEP_OK;
      }
      shk_lens_event *e = new_event(r, rs, SHK_LENS_FRAME);
      span_of(r, rec->a, rec->b, e);
      e->number = rec->c;
      return STEP_OK;
    }
    case SHK_LENS_REC_PLOT: {
      double value;
      memcpy(&value, &rec->b, sizeof value);
      if (!isfinite(value) || rec->len > 0xFFFFFFu) {
        r->malformed[SHK_LENS_PLOT]++;
        return STEP_OK;
      }
      shk_lens_event *e = new_event(r, rs, SHK_LENS_PLOT);
      e->time = seconds_of(r, rec->a);
      e->color = rec->len;
      e->value = value;
      e->name_key = rec->c;
      e->name = name_of(r, rs, rec->c, &e->name_known);
      return STEP_OK;
    }
    case SHK_LENS_REC_HEAP: {
      if (rec->flags > 1) {
        r->malformed[SHK_LENS_HEAP]++;
        return STEP_OK;
      }
      shk_lens_event *e = new_event(r, rs, SHK_LENS_HEAP);
      e->time = seconds_of(r, rec->a);
      e->is_free = rec->flags != 0;
      e->addr = rec->b;
      e->size = rec->c;
      return STEP_OK;
    }
    case SHK_LENS_REC_LOG: {
      if (rec->len > SHK_LENS_LOG_MAX || data_records(rec->len) >= avail || rec->b > 0xFFFFFFu) {
        r->malformed[SHK_LENS_LOG]++;
        return STEP_BROKEN;
      }
      if (r->text_used + rec->len + 1 > TEXT_SIZE) return STEP_STOP;
      *used = 1 + data_records(rec->len);
      char *text = r->text + r->text_used;
      copy_data(recs, mask, rs->tail + 1, text, rec->len);
      text[rec->len] = '\0';
      r->text_used += (size_t)rec->len + 1;
      shk_lens_event *e = new_event(r, rs, SHK_LENS_LOG);
      e->time = seconds_of(r, rec->a);
      e->color = (uint32_t)rec->b;
      e->message = text;
      e->length = rec->len;
      return STEP_OK;
    }
    case SHK_LENS_REC_STRING:
    case SHK_LENS_REC_THREAD: {
      if (rec->len > SHK_LENS_STRING_MAX || data_records(rec->len) >= avail) {
        r->malformed[SHK_LENS_ZONE]++;
        return STEP_BROKEN;
      }
      *used = 1 + data_records(rec->len);
      uint8_t bytes[SHK_LENS_STRING_MAX];
      copy_data(recs, mask, rs->tail + 1, bytes, rec->len);
      if (rec->type == SHK_LENS_REC_STRING) {
        memset(rs->names, 0, sizeof rs->names); /* a name that changes gets a new text */
        shk__lens_strings_put(&r->strings, rs->pid, rec->a, bytes, rec->len);
      } else {
        rs->thread = shk__lens_strings_put(&r->strings, rs->pid, THREAD_KEY_BIT | rs->tid, bytes,
                                           rec->len);
        if (rs->info != SIZE_MAX) r->threads[rs->info].name = rs->thread;
      }
      return STEP_OK;
    }
    default:
      /* An unknown type cannot be framed: what follows it in this ring is skipped. */
      r->malformed[SHK_LENS_ZONE]++;
      return STEP_BROKEN;
  }
}

static bool implausible(const shk_lens_counters *c) {
  return c->written >= IMPLAUSIBLE || c->dropped >= IMPLAUSIBLE || c->drained > c->written;
}

/* The producer's own counts of a ring, as last seen, into its thread entry. */
static void refresh_counts(shk_lens_reader *r, ring_state *rs, shk_lens_wire_ring *ring) {
  if (rs->info == SIZE_MAX) return;
  shk_lens_thread_info *ti = &r->threads[rs->info];
  bool bad = false;
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
    ti->counters[k].written = shk__lens_load64(&ring->written[k]);
    ti->counters[k].dropped = shk__lens_load64(&ring->dropped[k]);
    bad |= implausible(&ti->counters[k]);
  }
  ti->implausible = bad;
}

/* refresh_counts() outside a drain: only while the ring still belongs to the epoch we follow (a
 * closed, acknowledged ring may have been claimed again, its counters zeroed for a new owner).
 * A closed ring not yet drained to the end has final counts the drains have not taken in yet (its
 * thread ended after the last drain). Read like a seqlock: state and epoch before and after. */
static void refresh_if_current(shk_lens_reader *r, ring_state *rs, shk_lens_wire_ring *ring) {
  if (!rs->seen || rs->info == SIZE_MAX) return;
  uint32_t state = shk__lens_load32(&ring->state), epoch = shk__lens_load32(&ring->epoch);
  if ((state != SHK_LENS_RING_LIVE && state != SHK_LENS_RING_CLOSED) || epoch != rs->epoch) return;
  shk_lens_thread_info saved = r->threads[rs->info];
  refresh_counts(r, rs, ring);
  r->threads[rs->info].alive = state == SHK_LENS_RING_LIVE && rs->alive;
  atomic_thread_fence(memory_order_acquire);
  if (shk__lens_load32(&ring->state) != state || shk__lens_load32(&ring->epoch) != epoch)
    r->threads[rs->info] = saved;
}

/* Whether the owner of a live ring still runs: by the claim word's pid and start stamp (2.1), so
 * that a pid given to a new process does not keep a dead owner's ring open; by the pid alone when
 * the claim word names someone else (a 2.0 producer leaves it 0). */
static bool owner_alive(const shk_lens_wire_ring *ring, uint32_t pid) {
  uint64_t claim = shk__lens_load64(&ring->claim);
  if (claim != 0 && shk__lens_identity_pid(claim) == pid) return shk__lens_identity_alive(claim);
  return shk__lens_pid_alive(pid);
}

/* A live ring whose process is gone will get no more records: once drained it is closed. */
static void check_owner(shk_lens_reader *r, ring_state *rs, shk_lens_wire_ring *ring, uint64_t now) {
  if (now - rs->checked_ns < LIVENESS_CHECK_NS) return;
  rs->checked_ns = now;
  /* The producer's counters share its head's line: read them with the liveness check, not at
   * every drain (each read takes the line away from the producer). */
  refresh_if_current(r, rs, ring);
  rs->alive = owner_alive(ring, rs->pid);
  if (rs->alive || shk__lens_load64(&ring->head) != rs->tail) return;
  uint32_t live = SHK_LENS_RING_LIVE;
  if (shk__lens_load32(&ring->epoch) != rs->epoch) return; /* a new owner's since settle() looked */
  if (!atomic_compare_exchange_strong(SHK__A32(&ring->state), &live, SHK_LENS_RING_CLOSED)) return;
  /* The dead owner's claim goes with it (a producer would also take it over from the dead). */
  uint64_t claim = shk__lens_load64(&ring->claim);
  if (claim != 0 && !shk__lens_identity_alive(claim))
    atomic_compare_exchange_strong(SHK__A64(&ring->claim), &claim, 0);
}

static uint32_t settle(shk_lens_reader *r, ring_state *rs, shk_lens_wire_ring *ring, uint64_t now);

/* Takes what ring i holds, as far as the event and text buffers allow. Returns false when a
 * buffer is full (the read pass stops here). */
static bool drain_ring(shk_lens_reader *r, uint32_t i, uint64_t now) {
  shk_lens_wire_ring *ring = shk__lens_space_ring(&r->space, i, NULL);
  if (!ring) return true;
  uint32_t state = shk__lens_load32(&ring->state);
  if (state != SHK_LENS_RING_LIVE && state != SHK_LENS_RING_CLOSED) return true;
  uint64_t head = shk__lens_load64(&ring->head); /* acquire: the records up to it are written */
  uint32_t epoch = shk__lens_load32(&ring->epoch);
  ring_state *rs = &r->rings[i];
  if (!rs->seen || epoch != rs->epoch) adopt(r, rs, ring, epoch);
  const shk_lens_wire_record *recs = shk__lens_records(ring);
  uint64_t mask = r->geo.ring_records - 1;
  uint64_t start = rs->tail;
  bool room = true;
  if (head - rs->tail > r->max_backlog && head - rs->tail <= r->geo.ring_records)
    r->max_backlog = head - rs->tail;
  if (head - rs->tail > r->geo.ring_records) {
    r->malformed[SHK_LENS_ZONE]++; /* head behind tail, or past a whole ring: not followable */
    rs->tail = head;
  }
  while (rs->tail != head) {
    if (r->event_count == MAX_EVENTS) {
      room = false;
      break;
    }
    shk_lens_wire_record rec;
    memcpy(&rec, &recs[rs->tail & mask], sizeof rec);
    uint64_t used;
    step s = take_record(r, rs, recs, head - rs->tail, &rec, &used);
    if (s == STEP_STOP) {
      room = false;
      break;
    }
    if (s == STEP_BROKEN) {
      rs->tail = head;
      break;
    }
    rs->tail += used;
  }
  if (rs->tail != start) shk__lens_store64(&ring->tail, rs->tail);
  settle(r, rs, ring, now);
  return room;
}

/* A live ring whose owner died is closed once drained; a closed, drained ring is acknowledged
 * (its last counts are in), after which a producer may reuse it. Returns the ring's state. */
static uint32_t settle(shk_lens_reader *r, ring_state *rs, shk_lens_wire_ring *ring, uint64_t now) {
  uint32_t state = shk__lens_load32(&ring->state);
  /* Claimed again since the drain looked (a new owner sets the epoch before the state): the ring
   * is someone else's now, and the next drain adopts it. Its counters are not this entry's. */
  if (shk__lens_load32(&ring->epoch) != rs->epoch) return state;
  if (state == SHK_LENS_RING_LIVE) {
    check_owner(r, rs, ring, now);
    state = shk__lens_load32(&ring->state);
  }
  if (state == SHK_LENS_RING_CLOSED && rs->tail == shk__lens_load64(&ring->head) &&
      shk__lens_load32(&ring->acked) != rs->epoch) {
    rs->alive = false;
    refresh_counts(r, rs, ring);
    shk__lens_store32(&ring->acked, rs->epoch);
  }
  if (rs->info != SIZE_MAX) r->threads[rs->info].alive = state == SHK_LENS_RING_LIVE && rs->alive;
  return state;
}

/* The drained counters live in the reader's line of each ring: added once per ring and kind. */
static void count_drained(shk_lens_reader *r, uint32_t i, size_t first) {
  if (first == r->event_count) return; /* nothing drained: no ring to look up */
  uint64_t n[SHK_LENS_KIND_COUNT] = {0};
  for (size_t e = first; e < r->event_count; e++) n[r->events[e].kind]++;
  shk_lens_wire_ring *ring = shk__lens_space_ring(&r->space, i, NULL);
  if (!ring) return;
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++)
    if (n[k]) shk__lens_bump64(&ring->drained[k], n[k]);
}

/* Maps the extensions published since the last look (2.3), with a ring_state for each new ring. */
static void follow_extensions(shk_lens_reader *r) {
  if (!shk__lens_space_behind(&r->space)) return; /* one load when nothing is new */
  shk__lens_space_follow(&r->space);
  /* Producers closing wait for this before they remove names (or, on Windows, their handles).
   * After a refused extension nothing more is mapped: no producer is kept waiting for it. */
  if (r->registered)
    shk__lens_store32(&r->hdr->reader_extensions,
                      r->space.stopped ? SHK_LENS_EXT_MAX : r->space.parts - 1);
  if (r->space.total <= r->rings_cap) return;
  ring_state *more = shk__realloc(r->rings, (size_t)r->space.total * sizeof *more);
  if (!more) return; /* the new rings wait for memory (ring_span() stops below them) */
  memset(more + r->rings_cap, 0, (size_t)(r->space.total - r->rings_cap) * sizeof *more);
  r->rings = more;
  r->rings_cap = r->space.total;
}

/* One past the highest ring to look at: every ring ever claimed that has a ring_state. */
static uint32_t ring_span(const shk_lens_reader *r) {
  return SHK__MIN(shk__lens_space_span(&r->space), r->rings_cap);
}

/* One read pass: takes what the rings hold into the event buffer, every ring in turn. */
static void read_rings(shk_lens_reader *r) {
  r->event_count = r->event_next = 0;
  r->text_used = 0;
  r->arg_used = 0;
  r->max_backlog = 0;
  r->last_read_ns = shk__os_now_ns();
  if (!segment_whole(r)) return;
  follow_extensions(r);
  uint32_t used = ring_span(r);
  if (used == 0) return;
  uint64_t now = shk__os_now_ns();
  uint32_t first = r->next_ring % used;
  for (uint32_t n = 0; n < used; n++) {
    uint32_t i = (first + n) % used;
    size_t before = r->event_count;
    bool room = drain_ring(r, i, now);
    count_drained(r, i, before);
    if (!room) {
      r->next_ring = i; /* this ring first next time */
      break;
    }
  }
  if (r->event_count > 0) r->last_event_ns = now;
  if (r->max_backlog >= r->geo.ring_records / 8) r->last_busy_ns = now;
}

static size_t deliver_buffered(shk_lens_reader *r, shk_lens_event_fn fn, void *user) {
  size_t n = 0;
  while (r->event_next < r->event_count) {
    fn(&r->events[r->event_next++], user);
    n++;
  }
  return n;
}

static int lens_reader_drain_impl(shk_lens_reader *r, shk_lens_event_fn fn, void *user,
                                  size_t *count) {
  if (count) *count = 0;
  if (!r) return SHK_EINVAL;
  size_t n = 0;
  if (r->event_next < r->event_count) {
    /* Events the iterator has not handed out yet come first, and must not be overwritten. */
    if (!fn) {
      if (count) *count = r->event_count - r->event_next;
      return SHK_OK;
    }
    n = deliver_buffered(r, fn, user);
  }
  read_rings(r);
  if (fn) n += deliver_buffered(r, fn, user);
  else n += r->event_count;
  if (count) *count = n;
  return r->shrunk ? SHK_EFORMAT : SHK_OK;
}

/* Under SHK_DEBUG=lock: a reader is one thread's at a time (lens.h); another thread inside it at
 * the same moment is reported. The same thread may come back in (fn calling the reader). True
 * when entered: the caller leaves with shk__debug_solo_leave(r). */
static bool reader_enter(shk_lens_reader *r, const char *fn, const void *site) {
  return r && shk__debug_on(SHK__DEBUG_LOCK) && shk__debug_solo_enter("lens reader", r, fn, site);
}

int shk_lens_reader_drain(shk_lens_reader *r, shk_lens_event_fn fn, void *user, size_t *count) {
  bool entered = reader_enter(r, __func__, SHK__CALLER());
  int rc = SHK__DEBUG_RET(SHK__DEBUG_LENS, lens_reader_drain_impl(r, fn, user, count));
  if (entered) shk__debug_solo_leave(r);
  return rc;
}

/* Whether any ring holds records we have not taken (plain loads: the lines stay shared). */
static bool anything_waiting(shk_lens_reader *r) {
  if (r->shrunk) return false;
  if (shk__lens_space_behind(&r->space)) return true; /* a new extension: its rings may hold some */
  uint32_t used = ring_span(r);
  for (uint32_t i = 0; i < used; i++) {
    shk_lens_wire_ring *ring = shk__lens_space_ring(&r->space, i, NULL);
    if (ring && shk__lens_load64(&ring->head) != r->rings[i].tail) return true;
  }
  return false;
}

static void spin_for_data(shk_lens_reader *r, uint64_t until) {
  for (unsigned i = 1;; i++) {
    if (anything_waiting(r)) return;
    shk__lens_cpu_relax();
    if (i % 64 == 0 && shk__os_now_ns() >= until) break;
  }
  shk__os_yield();
}

/* Sleeps up to ns, but not past the poll's deadline. */
static void nap(uint64_t ns, uint64_t start, uint64_t timeout_ns) {
  uint64_t now = shk__os_now_ns();
  if (now - start >= timeout_ns) return;
  shk__os_sleep_ns(SHK__MIN(ns, timeout_ns - (now - start)));
}

static int lens_reader_poll_impl(shk_lens_reader *r, uint64_t timeout_ns, shk_lens_event_fn fn,
                                 void *user, size_t *count) {
  if (count) *count = 0;
  if (!r) return SHK_EINVAL;
  uint64_t start = shk__os_now_ns();
  /* A thread ring holds milliseconds of events: while every ring stays under 1/8 full, looking
   * once per idle_sleep_ns loses nothing and costs the reader little CPU per event. Only a ring
   * filling faster than that keeps the reader looking without a pause (for idle_spin_ns). */
  bool busy = start - r->last_busy_ns < r->options.idle_spin_ns;
  if (!busy && start - r->last_read_ns < r->options.idle_sleep_ns)
    nap(r->options.idle_sleep_ns - (start - r->last_read_ns), start, timeout_ns);
  for (;;) {
    size_t n = 0;
    if (shk_lens_reader_drain(r, fn, user, &n) == SHK_EFORMAT) {
      if (count) *count = n;
      return SHK_EFORMAT;
    }
    if (n > 0) {
      if (count) *count = n;
      return SHK_OK;
    }
    uint64_t now = shk__os_now_ns();
    if (now - start >= timeout_ns) return SHK_ETIMEDOUT;
    if (now - r->last_busy_ns < r->options.idle_spin_ns) spin_for_data(r, now + SHK__LENS_SPIN_NS);
    else nap(r->options.idle_sleep_ns, start, timeout_ns);
  }
}

int shk_lens_reader_poll(shk_lens_reader *r, uint64_t timeout_ns, shk_lens_event_fn fn,
                         void *user, size_t *count) {
  bool entered = reader_enter(r, __func__, SHK__CALLER());
  int rc = lens_reader_poll_impl(r, timeout_ns, fn, user, count);
  if (entered) shk__debug_solo_leave(r);
  /* SHK_ETIMEDOUT: nothing arrived in time, an answer rather than a failure */
  return rc != SHK_ETIMEDOUT ? SHK__DEBUG_RET(SHK__DEBUG_LENS, rc) : rc;
}

static int lens_reader_next_impl(shk_lens_reader *r, shk_lens_event *event) {
  if (!r || !event) return SHK_EINVAL;
  if (r->event_next >= r->event_count) read_rings(r);
  if (r->event_next >= r->event_count) return SHK_ENOENT;
  *event = r->events[r->event_next++];
  return SHK_OK;
}

int shk_lens_reader_next(shk_lens_reader *r, shk_lens_event *event) {
  bool entered = reader_enter(r, __func__, SHK__CALLER());
  int rc = lens_reader_next_impl(r, event);
  if (entered) shk__debug_solo_leave(r);
  /* SHK_ENOENT: nothing now, an answer rather than a failure */
  return rc != SHK_ENOENT ? SHK__DEBUG_RET(SHK__DEBUG_LENS, rc) : rc;
}

static int lens_reader_args_impl(shk_lens_reader *r, shk_lens_arg *out, size_t capacity,
                                 size_t *count) {
  if (count) *count = 0;
  if (!r || !count || (!out && capacity > 0)) return SHK_EINVAL;
  if (r->event_next == 0) return SHK_OK; /* nothing delivered from this read pass */
  size_t at = r->event_next - 1, n = r->arg_count[at];
  for (size_t i = 0; i < n && i < capacity; i++) out[i] = r->args[r->arg_first[at] + i];
  *count = n;
  return SHK_OK;
}

int shk_lens_reader_args(shk_lens_reader *r, shk_lens_arg *out, size_t capacity, size_t *count) {
  return SHK__DEBUG_RET(SHK__DEBUG_LENS, lens_reader_args_impl(r, out, capacity, count));
}

bool shk_lens_reader_finished(shk_lens_reader *r) {
  if (!r) return true;
  if (r->event_next < r->event_count) return false;
  if (r->shrunk) return true; /* nothing more can be read */
  /* Slots in use are plain loads; whether their processes live costs a system call each, so
   * that is asked at most every 10 ms. */
  bool any = false;
  for (uint32_t i = 0; i < SHK_LENS_PROCESS_SLOTS && !any; i++)
    any = shk__lens_load32(&r->hdr->processes[i].pid) != 0;
  if (!any) return !anything_waiting(r);
  uint64_t now = shk__os_now_ns();
  if (r->producers_checked_ns == 0 || now - r->producers_checked_ns >= LIVENESS_CHECK_NS) {
    uint32_t some;
    shk__lens_count_producers(r->hdr, &r->live_producers, &r->dead_producers, &some);
    r->producers_checked_ns = now;
  }
  if (r->live_producers != 0) return false;
  if (anything_waiting(r)) return false;
  /* Rings of producers that were killed: closed now (each owner's liveness asked once more). */
  uint32_t used = ring_span(r);
  for (uint32_t i = 0; i < used; i++) {
    shk_lens_wire_ring *ring = shk__lens_space_ring(&r->space, i, NULL);
    if (!ring) continue;
    ring_state *rs = &r->rings[i];
    uint32_t state = shk__lens_load32(&ring->state);
    if (state != SHK_LENS_RING_LIVE && state != SHK_LENS_RING_CLOSED) continue;
    if (!rs->seen || rs->epoch != shk__lens_load32(&ring->epoch)) return false;
    rs->checked_ns = 0;
    if (settle(r, rs, ring, now) == SHK_LENS_RING_LIVE) return false;
  }
  return true;
}

static int lens_reader_stats_impl(const shk_lens_reader *r, shk_lens_stats *out) {
  if (!r || !out) return SHK_EINVAL;
  if (r->shrunk) memset(out, 0, sizeof *out);
  else shk__lens_space_stats(&r->space, out);
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
    out->received[k] = r->received[k];
    out->malformed[k] = r->malformed[k];
  }
  out->strings = r->strings.known_count;
  out->unknown_strings = r->strings.unknown_count;
  return SHK_OK;
}

int shk_lens_reader_stats(const shk_lens_reader *r, shk_lens_stats *out) {
  return SHK__DEBUG_RET(SHK__DEBUG_LENS, lens_reader_stats_impl(r, out));
}

static int lens_reader_threads_impl(shk_lens_reader *r, shk_lens_thread_info *out, size_t capacity,
                                    size_t *count) {
  if (!r || !count || (!out && capacity > 0)) return SHK_EINVAL;
  /* The counts of rings still followed, as they are now (drains read them only now and then). */
  uint32_t used = r->shrunk ? 0 : ring_span(r);
  for (uint32_t i = 0; i < used; i++) {
    shk_lens_wire_ring *ring = shk__lens_space_ring(&r->space, i, NULL);
    if (ring) refresh_if_current(r, &r->rings[i], ring);
  }
  *count = r->thread_count;
  size_t n = SHK__MIN(capacity, r->thread_count);
  if (n) memcpy(out, r->threads, n * sizeof *out);
  return SHK_OK;
}

int shk_lens_reader_threads(shk_lens_reader *r, shk_lens_thread_info *out, size_t capacity,
                            size_t *count) {
  bool entered = reader_enter(r, __func__, SHK__CALLER());
  int rc = SHK__DEBUG_RET(SHK__DEBUG_LENS, lens_reader_threads_impl(r, out, capacity, count));
  if (entered) shk__debug_solo_leave(r);
  return rc;
}

const char *shk_lens_reader_string(shk_lens_reader *r, uint32_t pid, uint64_t key) {
  if (!r) return NULL;
  return shk__lens_strings_find(&r->strings, pid, key);
}

const char *shk_lens_reader_problem(const shk_lens_reader *r) {
  return r && r->space.problem[0] ? r->space.problem : NULL;
}
