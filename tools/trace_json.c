/* Chrome Trace Event JSON for lens events (the format of chrome://tracing, Perfetto and DevTools). */
#include "trace_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PID 1
#define FRAMES_TID 1 /* frames and logs get tracks of their own; threads start at 3 */
#define LOG_TID 2
#define FIRST_THREAD_TID 3

typedef struct thread_track {
  uint64_t key;
  char *name;
} thread_track;

struct trace_json {
  FILE *f;
  char *process_name;
  bool first;
  thread_track *threads;
  size_t thread_count, thread_cap;
  int64_t live_heap;
};

static size_t utf8_sequence(const unsigned char *s, size_t left) {
  unsigned char c = s[0];
  size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  if (n == 0 || n > left) return 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  /* Overlong forms and surrogates are not UTF-8. */
  if (n == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))) return 0;
  if (n == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))) return 0;
  return n;
}

void trace_json_string(FILE *f, const char *text, size_t len) {
  const unsigned char *s = (const unsigned char *)text;
  fputc('"', f);
  for (size_t i = 0; i < len;) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      fputc('\\', f);
      fputc(c, f);
      i++;
    } else if (c < 0x20) {
      fprintf(f, "\\u%04x", c);
      i++;
    } else if (c < 0x80) {
      fputc(c, f);
      i++;
    } else {
      size_t n = utf8_sequence(s + i, len - i);
      if (n == 0) {
        fputs("\\ufffd", f);
        i++;
      } else {
        fwrite(s + i, 1, n, f);
        i += n;
      }
    }
  }
  fputc('"', f);
}

static void put_cstring(FILE *f, const char *s) { trace_json_string(f, s, strlen(s)); }

int trace_json_open(const char *path, const char *process_name, trace_json **out) {
  *out = NULL;
  trace_json *t = calloc(1, sizeof *t);
  if (!t) return -1;
  t->f = fopen(path, "wb");
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

/* The track of a thread, by its key; a thread's name is its first name seen. */
static int thread_tid(trace_json *t, uint64_t key, const char *name) {
  for (size_t i = 0; i < t->thread_count; i++)
    if (t->threads[i].key == key) return (int)i + FIRST_THREAD_TID;
  if (t->thread_count == t->thread_cap) {
    size_t cap = t->thread_cap ? t->thread_cap * 2 : 8;
    thread_track *list = realloc(t->threads, cap * sizeof *list);
    if (!list) return FIRST_THREAD_TID;
    t->threads = list;
    t->thread_cap = cap;
  }
  thread_track *tr = &t->threads[t->thread_count];
  tr->key = key;
  tr->name = malloc(strlen(name) + 1);
  if (tr->name) strcpy(tr->name, name);
  t->thread_count++;
  return (int)t->thread_count - 1 + FIRST_THREAD_TID;
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

/* A complete event's times: start = end - duration, clamped at 0. `gap_ns` is taken off the
 * shown duration: frames touch end to start, and an importer that adds ts + dur in floating point
 * would otherwise find some of them overlapping and nest one frame inside the previous one. */
static void put_span(FILE *f, double end, uint64_t duration_ns, int64_t gap_ns) {
  int64_t end_ns = ns_of(end);
  int64_t dur = duration_ns > (uint64_t)end_ns ? end_ns : (int64_t)duration_ns;
  put_us(f, "ts", end_ns - dur);
  put_us(f, "dur", dur > gap_ns ? dur - gap_ns : dur);
}

static void zone_event(trace_json *t, const shk_lens_event *e) {
  int tid = thread_tid(t, e->thread_key, e->thread);
  begin_event(t);
  fputs("{\"ph\":\"X\",\"cat\":\"zone\",\"name\":", t->f);
  put_cstring(t->f, e->name);
  fprintf(t->f, ",\"pid\":%d,\"tid\":%d", PID, tid);
  put_span(t->f, e->time, e->duration_ns, 0);
  fprintf(t->f, ",\"args\":{\"depth\":%u,\"color\":\"#%06x\"}}", e->depth, e->color);
}

static void frame_event(trace_json *t, const shk_lens_event *e) {
  begin_event(t);
  fprintf(t->f, "{\"ph\":\"X\",\"cat\":\"frame\",\"name\":\"frame %llu\",\"pid\":%d,\"tid\":%d",
          (unsigned long long)e->number, PID, FRAMES_TID);
  put_span(t->f, e->time, e->duration_ns, 1);
  fputs("}", t->f);
}

static void plot_event(trace_json *t, const shk_lens_event *e) {
  begin_event(t);
  fputs("{\"ph\":\"C\",\"cat\":\"plot\",\"name\":", t->f);
  put_cstring(t->f, e->name);
  fprintf(t->f, ",\"pid\":%d", PID);
  put_us(t->f, "ts", ns_of(e->time));
  fprintf(t->f, ",\"args\":{\"value\":%.17g}}", isfinite(e->value) ? e->value : 0.0);
}

static void heap_event(trace_json *t, const shk_lens_event *e) {
  /* Live bytes as the producer reports them: a free carries the size it releases. */
  int64_t size = e->size > INT64_MAX ? INT64_MAX : (int64_t)e->size;
  t->live_heap += e->is_free ? -size : size;
  if (t->live_heap < 0) t->live_heap = 0;
  begin_event(t);
  fprintf(t->f, "{\"ph\":\"C\",\"cat\":\"heap\",\"name\":\"heap\",\"pid\":%d", PID);
  put_us(t->f, "ts", ns_of(e->time));
  fprintf(t->f, ",\"args\":{\"live bytes\":%lld}}", (long long)t->live_heap);
}

static void log_event(trace_json *t, const shk_lens_event *e) {
  begin_event(t);
  fputs("{\"ph\":\"i\",\"s\":\"p\",\"cat\":\"log\",\"name\":", t->f);
  trace_json_string(t->f, e->message, e->length);
  fprintf(t->f, ",\"pid\":%d,\"tid\":%d", PID, LOG_TID);
  put_us(t->f, "ts", ns_of(e->time));
  fprintf(t->f, ",\"args\":{\"color\":\"#%06x\"}}", e->color);
}

void trace_json_event(trace_json *t, const shk_lens_event *e) {
  switch (e->kind) {
    case SHK_LENS_ZONE: zone_event(t, e); break;
    case SHK_LENS_FRAME: frame_event(t, e); break;
    case SHK_LENS_PLOT: plot_event(t, e); break;
    case SHK_LENS_HEAP: heap_event(t, e); break;
    case SHK_LENS_LOG: log_event(t, e); break;
    default: break;
  }
}

static void name_event(trace_json *t, const char *what, int tid, const char *name) {
  begin_event(t);
  fprintf(t->f, "{\"ph\":\"M\",\"name\":\"%s\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":", what,
          PID, tid);
  put_cstring(t->f, name);
  fputs("}}", t->f);
}

int trace_json_close(trace_json *t) {
  if (!t) return 0;
  name_event(t, "process_name", 0, t->process_name);
  name_event(t, "thread_name", FRAMES_TID, "Frames");
  name_event(t, "thread_name", LOG_TID, "Log");
  for (size_t i = 0; i < t->thread_count; i++) {
    name_event(t, "thread_name", (int)i + FIRST_THREAD_TID,
               t->threads[i].name ? t->threads[i].name : "?");
    free(t->threads[i].name);
  }
  fputs("\n]}\n", t->f);
  int rc = ferror(t->f) ? -1 : 0;
  if (fclose(t->f) != 0) rc = -1;
  free(t->threads);
  free(t->process_name);
  free(t);
  return rc;
}
