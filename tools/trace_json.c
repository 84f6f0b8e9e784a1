/* Chrome Trace Event JSON for lens events (the format of chrome://tracing, Perfetto and DevTools). */
#include "trace_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Each producer process is a process of the trace (its real pid), each producing thread a thread
 * (its real tid). Frames and logs get tracks of their own in each process, with tids no OS gives
 * a thread (odd, above any Linux pid and never a multiple of 4 as Windows thread ids are). */
#define FRAMES_TID 2147483645
#define LOG_TID 2147483643
#define HEAP_TID 2147483641

typedef struct thread_track {
  uint32_t pid;
  uint64_t tid;
  char *name;
} thread_track;

typedef struct process_track {
  uint32_t pid;
  uint64_t live_heap; /* saturates at both ends: a hostile producer cannot overflow it */
  bool frames, logs, heap_marks;
} process_track;

#define NAME_CACHE 256

typedef struct name_entry {
  const char *name; /* the reader's pointer */
  char *json;
  size_t len;
} name_entry;

struct trace_json {
  FILE *f;
  name_entry names[NAME_CACHE];
  uint32_t last_thread_pid;
  uint64_t last_thread_tid;
  const char *last_thread_name;
  char *process_name;
  bool first;
  thread_track *threads;
  size_t thread_count, thread_cap;
  process_track *processes;
  size_t process_count, process_cap;
};

static size_t utf8_sequence(const unsigned char *s, size_t left) {
  unsigned char c = s[0];
  size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  if (n == 0 || n > left) return 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  /* Overlong forms and surrogates are not UTF-8. */
  if (n == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))) return 0;
  if (n == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))) return 0;
  return n;
}

/* Writes text as a JSON string with quotes into out (room for 6 * len + 2 bytes); returns the
 * bytes written. Escapes, and U+FFFD for bytes that are not UTF-8. */
static size_t json_escape(char *out, const char *text, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)text;
  char *o = out;
  *o++ = '"';
  for (size_t i = 0; i < len;) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      *o++ = '\\';
      *o++ = (char)c;
      i++;
    } else if (c < 0x20) {
      memcpy(o, "\\u00", 4);
      o[4] = hex[c >> 4];
      o[5] = hex[c & 15];
      o += 6;
      i++;
    } else if (c < 0x80) {
      *o++ = (char)c;
      i++;
    } else {
      size_t n = utf8_sequence(s + i, len - i);
      if (n == 0) {
        memcpy(o, "\\ufffd", 6);
        o += 6;
        i++;
      } else {
        memcpy(o, s + i, n);
        o += n;
        i += n;
      }
    }
  }
  *o++ = '"';
  return (size_t)(o - out);
}

void trace_json_string(FILE *f, const char *text, size_t len) {
  char small[1024];
  char *out = len <= (sizeof small - 2) / 6 ? small : malloc(len * 6 + 2);
  if (!out) {
    fputs("\"\"", f);
    return;
  }
  fwrite(out, 1, json_escape(out, text, len), f);
  if (out != small) free(out);
}

static void put_cstring(FILE *f, const char *s) { trace_json_string(f, s, strlen(s)); }

int trace_json_open(const char *path, const char *process_name, trace_json **out) {
  *out = NULL;
  trace_json *t = calloc(1, sizeof *t);
  if (!t) return -1;
  t->f = fopen(path, "wb");
  if (t->f) setvbuf(t->f, NULL, _IOFBF, 1u << 16);
  t->process_name = malloc(strlen(process_name) + 1);
  if (!t->f || !t->process_name) {
    if (t->f) fclose(t->f);
    free(t->process_name);
    free(t);
    return -1;
  }
  strcpy(t->process_name, process_name);
  t->first = true;
  fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", t->f);
  *out = t;
  return 0;
}

static void begin_event(trace_json *t) {
  if (!t->first) fputs(",\n", t->f);
  t->first = false;
}

static char *copy_string(const char *s) {
  char *c = malloc(strlen(s) + 1);
  if (c) strcpy(c, s);
  return c;
}

/* Grows *list (of `size`-byte items) to hold one more; false when memory ran out. */
static bool grow(void **list, size_t *cap, size_t count, size_t size) {
  if (count < *cap) return true;
  size_t n = *cap ? *cap * 2 : 8;
  void *p = realloc(*list, n * size);
  if (!p) return false;
  *list = p;
  *cap = n;
  return true;
}

/* Remembers a thread for its name at the end; its name is the first one seen... and then the
 * latest, so that a name that came late replaces the placeholder. */
static void note_thread(trace_json *t, const shk_lens_event *e) {
  for (size_t i = 0; i < t->thread_count; i++) {
    thread_track *tr = &t->threads[i];
    if (tr->pid == e->pid && tr->tid == e->tid) {
      if (e->thread && (!tr->name || strcmp(tr->name, e->thread) != 0)) {
        char *name = copy_string(e->thread);
        if (name) {
          free(tr->name);
          tr->name = name;
        }
      }
      return;
    }
  }
  if (!grow((void **)&t->threads, &t->thread_cap, t->thread_count, sizeof *t->threads)) return;
  thread_track *tr = &t->threads[t->thread_count++];
  tr->pid = e->pid;
  tr->tid = e->tid;
  tr->name = e->thread ? copy_string(e->thread) : NULL;
}

static process_track *process_of(trace_json *t, uint32_t pid) {
  for (size_t i = 0; i < t->process_count; i++)
    if (t->processes[i].pid == pid) return &t->processes[i];
  if (!grow((void **)&t->processes, &t->process_cap, t->process_count, sizeof *t->processes))
    return NULL;
  process_track *p = &t->processes[t->process_count++];
  memset(p, 0, sizeof *p);
  p->pid = pid;
  return p;
}

size_t trace_json_threads(const trace_json *t) { return t->thread_count; }

/* Times are kept in whole nanoseconds and printed as microseconds with three decimals, so that a
 * frame that starts where the previous one ended touches it exactly instead of overlapping by a
 * rounding error (importers would nest them). JSON has no NaN or infinity: those become 0. */
static int64_t ns_of(double seconds) {
  if (!isfinite(seconds) || seconds <= 0) return 0;
  if (seconds > 9e9) return INT64_C(9000000000000000000);
  return (int64_t)(seconds * 1e9 + 0.5); /* positive here: rounds to nearest */
}

static void put_us(FILE *f, const char *key, int64_t ns) {
  if (ns < 0) ns = 0;
  fprintf(f, ",\"%s\":%lld.%03lld", key, (long long)(ns / 1000), (long long)(ns % 1000));
}

/* A complete event's start and duration in nanoseconds from its end time and duration. Start
 * and end are each rounded from the exact times, never one from the other and a rounded
 * duration: rounding is monotonic, so zones that nest (or start at the same instant) still nest
 * after it, where end - duration could put a child a nanosecond before its parent. */
static void span_ns(double end, uint64_t duration_ns, int64_t *start_ns, int64_t *dur_ns) {
  int64_t end_ns = ns_of(end);
  int64_t start = ns_of(end - (double)duration_ns * 1e-9);
  if (start > end_ns) start = end_ns;
  *start_ns = start;
  *dur_ns = end_ns - start;
}

/* A complete event's times. `gap_ns` is taken off the shown duration: frames touch end to
 * start, and an importer that adds ts + dur in floating point would otherwise find some of them
 * overlapping and nest one frame inside the previous one. */
static void put_span(FILE *f, double end, uint64_t duration_ns, int64_t gap_ns) {
  int64_t start, dur;
  span_ns(end, duration_ns, &start, &dur);
  put_us(f, "ts", start);
  put_us(f, "dur", dur > gap_ns ? dur - gap_ns : dur);
}

/* Decimal digits of v at p; returns the end. */
static char *put_u64(char *p, uint64_t v) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) *p++ = tmp[--n];
  return p;
}

/* Microseconds with three decimals, from nanoseconds. */
static char *put_micro(char *p, int64_t ns) {
  if (ns < 0) ns = 0;
  p = put_u64(p, (uint64_t)ns / 1000);
  unsigned frac = (unsigned)((uint64_t)ns % 1000);
  p[0] = '.';
  p[1] = (char)('0' + frac / 100);
  p[2] = (char)('0' + frac / 10 % 10);
  p[3] = (char)('0' + frac % 10);
  return p + 4;
}

/* The escaped JSON of a name, by its address (names stay valid until the reader closes, and a
 * name is escaped once instead of at every zone). */
static const char *escaped_name(trace_json *t, const char *name, size_t *len) {
  size_t slot = ((uintptr_t)name >> 4) % NAME_CACHE;
  name_entry *c = &t->names[slot];
  if (c->name != name) {
    size_t n = strlen(name);
    char *json = malloc(n * 6 + 2);
    if (!json) {
      *len = 2;
      return "\"\"";
    }
    free(c->json);
    c->json = json;
    c->len = json_escape(json, name, n);
    c->name = name;
  }
  *len = c->len;
  return c->json;
}

/* An event's arguments as JSON members, a comma before each (but the first when !after_member). */
static void put_args(FILE *f, const shk_lens_arg *args, size_t n, bool after_member) {
  for (size_t i = 0; i < n; i++) {
    const shk_lens_arg *a = &args[i];
    if (i > 0 || after_member) fputc(',', f);
    put_cstring(f, a->name);
    fputc(':', f);
    if (a->type == SHK_LENS_ARG_TEXT) put_cstring(f, a->text ? a->text : "");
    else if (a->type == SHK_LENS_ARG_INT) fprintf(f, "%lld", (long long)(int64_t)a->value);
    else fprintf(f, "%llu", (unsigned long long)a->value);
  }
}

/* The argument named `name` of type `type`, or NULL. */
static const shk_lens_arg *find_arg(const shk_lens_arg *args, size_t n, const char *name,
                                    uint32_t type) {
  for (size_t i = 0; i < n; i++)
    if (args[i].type == type && strcmp(args[i].name, name) == 0) return &args[i];
  return NULL;
}

/* Zones are most of a trace: written with one fwrite, no printf. */
static void zone_event(trace_json *t, const shk_lens_event *e, const shk_lens_arg *args,
                       size_t nargs) {
  if (t->last_thread_pid != e->pid || t->last_thread_tid != e->tid ||
      t->last_thread_name != e->thread) {
    note_thread(t, e);
    process_of(t, e->pid);
    t->last_thread_pid = e->pid;
    t->last_thread_tid = e->tid;
    t->last_thread_name = e->thread;
  }
  size_t name_len;
  const char *name = escaped_name(t, e->name, &name_len);
  char line[256];
  char *p = line;
  if (!t->first) {
    memcpy(p, ",\n", 2);
    p += 2;
  }
  t->first = false;
  static const char head[] = "{\"ph\":\"X\",\"cat\":\"zone\",\"name\":";
  memcpy(p, head, sizeof head - 1);
  p += sizeof head - 1;
  fwrite(line, 1, (size_t)(p - line), t->f);
  fwrite(name, 1, name_len, t->f);
  p = line;
  memcpy(p, ",\"pid\":", 7);
  p = put_u64(p + 7, e->pid);
  memcpy(p, ",\"tid\":", 7);
  p = put_u64(p + 7, e->tid);
  int64_t start_ns, dur;
  span_ns(e->time, e->duration_ns, &start_ns, &dur);
  memcpy(p, ",\"ts\":", 6);
  p = put_micro(p + 6, start_ns);
  memcpy(p, ",\"dur\":", 7);
  p = put_micro(p + 7, dur);
  /* Only the producer's own arguments: speedscope folds an event's args into its name
   * (`update {"depth":0}`), so a zone without arguments carries only its name; depth is its
   * nesting, and its colour goes in a field of its own, which importers that do not know it
   * ignore (the report reads it). */
  if (e->color != 0) {
    static const char hex[] = "0123456789abcdef";
    memcpy(p, ",\"color\":\"#", 11);
    p += 11;
    for (int shift = 20; shift >= 0; shift -= 4) *p++ = hex[(e->color >> shift) & 15];
    *p++ = '"';
  }
  if (nargs == 0) {
    *p++ = '}';
    fwrite(line, 1, (size_t)(p - line), t->f);
    return;
  }
  fwrite(line, 1, (size_t)(p - line), t->f);
  fputs(",\"args\":{", t->f);
  put_args(t->f, args, nargs, false);
  fputs("}}", t->f);
}

static void frame_event(trace_json *t, const shk_lens_event *e) {
  process_track *p = process_of(t, e->pid);
  if (p) p->frames = true;
  begin_event(t);
  fprintf(t->f, "{\"ph\":\"X\",\"cat\":\"frame\",\"name\":\"frame %llu\",\"pid\":%u,\"tid\":%d",
          (unsigned long long)e->number, e->pid, FRAMES_TID);
  put_span(t->f, e->time, e->duration_ns, 1);
  fputs("}", t->f);
}

static void plot_event(trace_json *t, const shk_lens_event *e) {
  begin_event(t);
  fputs("{\"ph\":\"C\",\"cat\":\"plot\",\"name\":", t->f);
  put_cstring(t->f, e->name);
  process_of(t, e->pid);
  fprintf(t->f, ",\"pid\":%u", e->pid);
  put_us(t->f, "ts", ns_of(e->time));
  fprintf(t->f, ",\"args\":{\"value\":%.17g}}", isfinite(e->value) ? e->value : 0.0);
}

static void heap_event(trace_json *t, const shk_lens_event *e, const shk_lens_arg *args,
                       size_t nargs) {
  /* Live bytes per process as the producer reports them: a free carries the size it releases.
   * Unsigned and saturating: sizes come from another process and may be anything. */
  process_track *p = process_of(t, e->pid);
  if (!p) return;
  if (e->is_free) p->live_heap = e->size > p->live_heap ? 0 : p->live_heap - e->size;
  else p->live_heap = e->size > UINT64_MAX - p->live_heap ? UINT64_MAX : p->live_heap + e->size;
  begin_event(t);
  fprintf(t->f, "{\"ph\":\"C\",\"cat\":\"heap\",\"name\":\"heap\",\"pid\":%u", e->pid);
  put_us(t->f, "ts", ns_of(e->time));
  fprintf(t->f, ",\"args\":{\"live bytes\":%llu}}", (unsigned long long)p->live_heap);
  if (nargs == 0) return;
  /* A heap event with arguments (shmkit's buffers: the allocator) is also a marker on the
   * process's heap track, where its arguments can be seen. */
  p->heap_marks = true;
  begin_event(t);
  fprintf(t->f, "{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"heap\",\"name\":\"%s %llu B\"",
          e->is_free ? "free" : "alloc", (unsigned long long)e->size);
  fprintf(t->f, ",\"pid\":%u,\"tid\":%d", e->pid, HEAP_TID);
  put_us(t->f, "ts", ns_of(e->time));
  fprintf(t->f, ",\"args\":{\"address\":\"0x%llx\",\"size\":%llu", (unsigned long long)e->addr,
          (unsigned long long)e->size);
  put_args(t->f, args, nargs, true);
  fputs("}}", t->f);
}

/* A log with an unsigned argument "thread" is shown on that thread's track (the watcher's events
 * on the thread that wrote), others on the process's log track. */
static void log_event(trace_json *t, const shk_lens_event *e, const shk_lens_arg *args,
                      size_t nargs) {
  process_track *p = process_of(t, e->pid);
  const shk_lens_arg *thread = find_arg(args, nargs, "thread", SHK_LENS_ARG_UINT);
  if (p && !thread) p->logs = true;
  if (thread && thread->value == e->tid) note_thread(t, e); /* its own track: named */
  begin_event(t);
  fprintf(t->f, "{\"ph\":\"i\",\"s\":\"%s\",\"cat\":\"log\",\"name\":", thread ? "t" : "p");
  trace_json_string(t->f, e->message, e->length);
  if (thread) fprintf(t->f, ",\"pid\":%u,\"tid\":%llu", e->pid, (unsigned long long)thread->value);
  else fprintf(t->f, ",\"pid\":%u,\"tid\":%d", e->pid, LOG_TID);
  put_us(t->f, "ts", ns_of(e->time));
  fprintf(t->f, ",\"args\":{\"color\":\"#%06x\"", e->color);
  put_args(t->f, args, nargs, true);
  fputs("}}", t->f);
}

void trace_json_event_args(trace_json *t, const shk_lens_event *e, const shk_lens_arg *args,
                           size_t nargs) {
  switch (e->kind) {
    case SHK_LENS_ZONE: zone_event(t, e, args, nargs); break;
    case SHK_LENS_FRAME: frame_event(t, e); break;
    case SHK_LENS_PLOT: plot_event(t, e); break;
    case SHK_LENS_HEAP: heap_event(t, e, args, nargs); break;
    case SHK_LENS_LOG: log_event(t, e, args, nargs); break;
    default: break;
  }
}

void trace_json_event(trace_json *t, const shk_lens_event *e) {
  trace_json_event_args(t, e, NULL, 0);
}

static void name_event(trace_json *t, const char *what, uint32_t pid, uint64_t tid,
                       const char *name) {
  begin_event(t);
  fprintf(t->f, "{\"ph\":\"M\",\"name\":\"%s\",\"pid\":%u,\"tid\":%llu,\"args\":{\"name\":",
          what, pid, (unsigned long long)tid);
  put_cstring(t->f, name);
  fputs("}}", t->f);
}

int trace_json_close(trace_json *t) {
  if (!t) return 0;
  for (size_t i = 0; i < t->process_count; i++) {
    const process_track *p = &t->processes[i];
    char name[160];
    snprintf(name, sizeof name, "%s (pid %u)", t->process_name, p->pid);
    name_event(t, "process_name", p->pid, 0, name);
    if (p->frames) name_event(t, "thread_name", p->pid, FRAMES_TID, "Frames");
    if (p->logs) name_event(t, "thread_name", p->pid, LOG_TID, "Log");
    if (p->heap_marks) name_event(t, "thread_name", p->pid, HEAP_TID, "Heap");
  }
  for (size_t i = 0; i < t->thread_count; i++) {
    name_event(t, "thread_name", t->threads[i].pid, t->threads[i].tid,
               t->threads[i].name ? t->threads[i].name : "?");
    free(t->threads[i].name);
  }
  fputs("\n]}\n", t->f);
  int rc = ferror(t->f) ? -1 : 0;
  if (fclose(t->f) != 0) rc = -1;
  for (size_t i = 0; i < NAME_CACHE; i++) free(t->names[i].json);
  free(t->threads);
  free(t->processes);
  free(t->process_name);
  free(t);
  return rc;
}
