/* `shmkit lens report`: turn a Chrome trace JSON file into one self-contained HTML report. */
#include <stdio.h>
#include <string.h>

#include "report.h"
#include "tool.h"

static void help(FILE *f) {
  fprintf(f,
          "usage: shmkit lens report TRACE.json -o REPORT.html [--title TEXT] [--quiet]\n"
          "Writes one HTML file that shows the trace in any current browser, from disk, with no\n"
          "network access: frame times, a flame chart per process and thread (wheel zooms, drag\n"
          "pans), counters as line charts, logs and markers. TRACE.json is Chrome Trace Event\n"
          "JSON (what `shmkit lens record` writes, or any other program's).\n"
          "  -o, --output FILE  the report to write\n"
          "  --title TEXT       the page's title (default: the trace file's name)\n"
          "  --quiet            no summary line and no warnings\n"
          "Exit status: 0 written, 1 the trace is missing, not a trace, too large, or the report\n"
          "cannot be written (a message says which), 2 bad usage.\n");
}

int lens_report_main(int argc, char **argv) {
  const char *input = NULL, *output = NULL;
  tool_report_options options;
  tool_report_options_init(&options);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has_value = i + 1 < argc;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      help(stdout);
      return 0;
    } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && has_value) {
      output = argv[++i];
    } else if (strcmp(a, "--title") == 0 && has_value) {
      options.title = argv[++i];
    } else if (strcmp(a, "--quiet") == 0) {
      options.quiet = true;
    } else if (a[0] != '-' && !input) {
      input = a;
    } else {
      help(stderr);
      return 2;
    }
  }
  if (!input || !output) {
    help(stderr);
    return 2;
  }
  return tool_report_write(input, output, &options, NULL) == SHK_OK ? 0 : 1;
}
