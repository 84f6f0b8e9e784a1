/* `shmkit lens record`: attach to a lens segment, drain it until the producer ends (or a duration
 * passes, or Ctrl-C), and write a Chrome Trace Event JSON file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"
#include "trace_json.h"

static void help(FILE *f) {
  fprintf(f,
          "usage: shmkit lens record NAME -o TRACE.json [--duration S] [--wait S] [--quiet]\n"
          "Attaches to the lens segment NAME and writes what the program sends as Chrome Trace\n"
          "Event JSON (open it in Perfetto, chrome://tracing or speedscope).\n"
          "  -o, --output FILE  the trace file to write\n"
          "  --duration S       stop after S seconds (default: when the program closes its lens)\n"
          "  --wait S           wait up to S seconds for NAME to appear (default 0)\n"
          "  --quiet            no progress line and no closing summary\n"
          "Ctrl-C stops the recording and still writes a complete file.\n");
}

typedef struct record {
  trace_json *trace;
  uint64_t events[SHK_LENS_KIND_COUNT];
} record;

static void on_event(const shk_lens_event *e, void *user) {
  record *rec = user;
  trace_json_event(rec->trace, e);
  rec->events[e->kind]++;
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
  printf("%s%llu events (%llu zones, %llu frames, %llu plots, %llu heap, %llu logs), %llu strings, "
         "%llu dropped, %llu malformed%s",
         final ? "" : "\r", (unsigned long long)sum(rec->events),
         (unsigned long long)rec->events[SHK_LENS_ZONE], (unsigned long long)rec->events[SHK_LENS_FRAME],
         (unsigned long long)rec->events[SHK_LENS_PLOT], (unsigned long long)rec->events[SHK_LENS_HEAP],
         (unsigned long long)rec->events[SHK_LENS_LOG], (unsigned long long)st.strings,
         (unsigned long long)dropped, (unsigned long long)malformed, final ? "\n" : "   ");
  fflush(stdout);
}

int lens_record_main(int argc, char **argv) {
  const char *name = NULL, *output = NULL;
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
  char process[64];
  snprintf(process, sizeof process, "lens %s", name);
  if (trace_json_open(output, process, &rec.trace) != 0) {
    perror(output);
    shk_lens_reader_close(r);
    return 1;
  }
  bool live = !quiet && tool_stdout_is_terminal();
  double start = tool_now(), shown = 0;
  for (;;) {
    shk_lens_reader_poll(r, 50000000u, on_event, &rec, NULL);
    double now = tool_now();
    if (live && now - shown >= 0.2) {
      progress(r, &rec, false);
      shown = now;
    }
    if (tool_interrupted() || (duration > 0 && now - start >= duration)) break;
    if (shk_lens_reader_finished(r)) break;
  }
  shk_lens_reader_drain(r, on_event, &rec, NULL);
  if (live) printf("\n");
  if (!quiet) progress(r, &rec, true);
  shk_lens_reader_close(r);
  if (trace_json_close(rec.trace) != 0) {
    fprintf(stderr, "shmkit: writing %s failed\n", output);
    return 1;
  }
  if (!quiet) printf("trace written to %s\n", output);
  return 0;
bad:
  help(stderr);
  return 2;
}
