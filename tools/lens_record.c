/* `shmkit lens record`: attach to a lens segment, drain it until the producer ends (or a duration
 * passes, or Ctrl-C), and write a Chrome Trace Event JSON file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "tool.h"
#include "trace_json.h"

static void help(FILE *f) {
  fprintf(f,
          "usage: shmkit lens record NAME -o TRACE.json [--html REPORT.html] [--duration S] [--wait S]\n"
          "                          [--quiet]\n"
          "Attaches to the lens segment NAME and writes what the program sends as Chrome Trace\n"
          "Event JSON (open it in Perfetto, chrome://tracing or speedscope).\n"
          "  -o, --output FILE  the trace file to write\n"
          "  --html FILE        also write FILE: the trace as one self-contained HTML page\n"
          "                     (as `shmkit lens report`)\n"
          "  --duration S       stop after S seconds (default: when the program closes its lens)\n"
          "  --wait S           wait up to S seconds for NAME to appear (default 0)\n"
          "  --quiet            no progress line and no closing summary\n"
          "Ctrl-C stops the recording and still writes a complete file.\n");
}

/* An event kept for later, with its arguments. */
typedef struct deferred_event {
  shk_lens_event event;
  shk_lens_arg args[SHK_LENS_ARGS_MAX];
  size_t nargs;
} deferred_event;

typedef struct record {
  trace_json *trace;
  shk_lens_reader *reader;
  uint64_t events[SHK_LENS_KIND_COUNT];
  /* Zones and plots whose name had not arrived yet (a reader that attached late sees records
   * sent before the producers learnt of it): written at the end, when the names are known. */
  deferred_event *deferred;
  size_t deferred_count, deferred_cap;
} record;

static bool defer(record *rec, const shk_lens_event *e, const shk_lens_arg *args, size_t nargs) {
  if (rec->deferred_count == rec->deferred_cap) {
    size_t cap = rec->deferred_cap ? rec->deferred_cap * 2 : 64;
    deferred_event *list = realloc(rec->deferred, cap * sizeof *list);
    if (!list) return false;
    rec->deferred = list;
    rec->deferred_cap = cap;
  }
  deferred_event *d = &rec->deferred[rec->deferred_count++];
  d->event = *e;
  d->nargs = nargs;
  memcpy(d->args, args, nargs * sizeof *args);
  return true;
}

static void on_event(const shk_lens_event *e, void *user) {
  record *rec = user;
  rec->events[e->kind]++;
  shk_lens_arg args[SHK_LENS_ARGS_MAX];
  size_t nargs = 0;
  shk_lens_reader_args(rec->reader, args, SHK_LENS_ARGS_MAX, &nargs);
  if (nargs > SHK_LENS_ARGS_MAX) nargs = SHK_LENS_ARGS_MAX;
  bool named = e->kind == SHK_LENS_ZONE || e->kind == SHK_LENS_PLOT;
  if (named && !e->name_known && defer(rec, e, args, nargs)) return;
  trace_json_event_args(rec->trace, e, args, nargs);
}

static void write_deferred(shk_lens_reader *r, record *rec) {
  for (size_t i = 0; i < rec->deferred_count; i++) {
    deferred_event *d = &rec->deferred[i];
    const char *name = shk_lens_reader_string(r, d->event.pid, d->event.name_key);
    if (name) d->event.name = name;
    trace_json_event_args(rec->trace, &d->event, d->args, d->nargs);
  }
  free(rec->deferred);
  rec->deferred = NULL;
  rec->deferred_count = rec->deferred_cap = 0;
}

static uint64_t sum(const uint64_t *v) {
  uint64_t s = 0;
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) s += v[k];
  return s;
}

static void progress(shk_lens_reader *r, const record *rec, bool final) {
  shk_lens_stats st;
  shk_lens_reader_stats(r, &st);
  uint64_t dropped = 0, malformed = 0;
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
    dropped += st.segment[k].dropped;
    malformed += st.malformed[k];
  }
  if (dropped >= (1ull << 62)) dropped = 0; /* shown per thread below, marked */
  printf("%s%llu events (%llu zones, %llu frames, %llu plots, %llu heap, %llu logs), %llu strings, "
         "%llu dropped, %llu malformed%s",
         final ? "" : "\r", (unsigned long long)sum(rec->events),
         (unsigned long long)rec->events[SHK_LENS_ZONE], (unsigned long long)rec->events[SHK_LENS_FRAME],
         (unsigned long long)rec->events[SHK_LENS_PLOT], (unsigned long long)rec->events[SHK_LENS_HEAP],
         (unsigned long long)rec->events[SHK_LENS_LOG], (unsigned long long)st.strings,
         (unsigned long long)dropped, (unsigned long long)malformed, final ? "\n" : "   ");
  fflush(stdout);
}

typedef struct session {
  shk_lens_reader *r;
  record *rec;
  bool live, quiet;
  double duration;
  bool shrunk; /* the library found the segment shrunk and stopped reading it */
} session;

static void record_loop(void *arg) {
  session *s = arg;
  double start = tool_now(), shown = 0;
  for (;;) {
    if (shk_lens_reader_poll(s->r, 50000000u, on_event, s->rec, NULL) == SHK_EFORMAT) {
      s->shrunk = true;
      break;
    }
    double now = tool_now();
    if (s->live && now - shown >= 0.2) {
      progress(s->r, s->rec, false);
      shown = now;
    }
    if (tool_interrupted() || (s->duration > 0 && now - start >= s->duration)) break;
    if (shk_lens_reader_finished(s->r)) break;
  }
}

static void record_end(void *arg) {
  session *s = arg;
  size_t n;
  do shk_lens_reader_drain(s->r, on_event, s->rec, &n); /* a few thousand per call */
  while (n > 0);
  write_deferred(s->r, s->rec);
  if (s->live) printf("\n");
  /* Rings of extensions it could not read (lens 2.3): what is wrong with them, always said. */
  const char *problem = shk_lens_reader_problem(s->r);
  if (problem) fprintf(stderr, "shmkit: warning: %s\n", problem);
  if (!s->quiet) {
    progress(s->r, s->rec, true);
    tool_print_threads(s->r);
  }
}

int lens_record_main(int argc, char **argv) {
  const char *name = NULL, *output = NULL, *html = NULL;
  double duration = 0, wait = 0;
  bool quiet = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has_value = i + 1 < argc;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      help(stdout);
      return 0;
    } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && has_value) {
      output = argv[++i];
    } else if (strcmp(a, "--html") == 0 && has_value) {
      html = argv[++i];
    } else if (strcmp(a, "--duration") == 0 && has_value) {
      if (!tool_parse_seconds(argv[++i], &duration)) goto bad;
    } else if (strcmp(a, "--wait") == 0 && has_value) {
      if (!tool_parse_seconds(argv[++i], &wait)) goto bad;
    } else if (strcmp(a, "--quiet") == 0) {
      quiet = true;
    } else if (a[0] != '-' && !name) {
      name = a;
    } else {
      goto bad;
    }
  }
  if (!name || !output) goto bad;

  tool_catch_interrupt();
  shk_lens_reader *r = NULL;
  if (tool_open_reader(name, wait, &r) != SHK_OK) return 1;
  record rec;
  memset(&rec, 0, sizeof rec);
  rec.reader = r;
  char process[64];
  snprintf(process, sizeof process, "lens %s", name);
  if (trace_json_open(output, process, &rec.trace) != 0) {
    perror(output);
    shk_lens_reader_close(r);
    return 1;
  }
  session ses = {r, &rec, !quiet && tool_stdout_is_terminal(), quiet, duration, false};
  /* A segment shrunk under the reader (a hostile or broken process truncated it): the library
   * notices at its next read pass and stops reading; shrunk during a pass, the next read faults
   * (SIGBUS), caught here. Either way the recording stops and the trace keeps what was read. */
  bool faulted = !(tool_guard_bus(record_loop, &ses) && tool_guard_bus(record_end, &ses));
  bool intact = !faulted && !ses.shrunk;
  if (!intact)
    fprintf(stderr, "shmkit: the segment '%s' shrank under the recorder (truncated by another "
                    "process); stopped, the trace keeps what was read before\n", name);
  if (faulted)
    write_deferred(r, &rec); /* the reader is left as it is: closing it would touch the segment */
  else
    shk_lens_reader_close(r);
  if (trace_json_close(rec.trace) != 0) {
    fprintf(stderr, "shmkit: writing %s failed\n", output);
    return 1;
  }
  if (!quiet) printf("trace written to %s\n", output);
  if (html) {
    tool_report_options options;
    tool_report_options_init(&options);
    options.quiet = quiet;
    if (tool_report_write(output, html, &options, NULL) != SHK_OK) return 1;
  }
  return intact ? 0 : 1;
bad:
  help(stderr);
  return 2;
}
