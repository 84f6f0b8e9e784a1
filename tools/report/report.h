/* Writing a self-contained HTML report of a Chrome trace: the viewer (tools/report/viewer.*, built
 * into the tool as bytes) with the trace inside. `shmkit lens report` uses it, and so can any
 * other command that has just written a trace (such as a future `shmkit lens record --html`). */
#ifndef SHMKIT_REPORT_H
#define SHMKIT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The largest trace a report takes: a browser holds the embedded trace as one string, and V8's
 * strings end at 2^29 - 24 characters; this leaves room for the escapes. */
#define TOOL_REPORT_MAX_BYTES (480u * 1024u * 1024u)

typedef struct tool_report_options {
  FILE *messages;     /* where errors, warnings and the summary line go; NULL: nowhere */
  const char *title;  /* the page's title; NULL: the trace file's name */
  uint64_t max_bytes; /* refuse larger traces; 0: TOOL_REPORT_MAX_BYTES */
  bool quiet;         /* no summary line and no warnings (errors are still written) */
} tool_report_options;

/* What a report holds, for callers that print their own summary. */
typedef struct tool_report_info {
  uint64_t bytes;    /* size of the trace read */
  uint64_t events;   /* elements of its event array */
  uint64_t replaced; /* byte sequences that were not UTF-8, shown as U+FFFD */
  bool unclosed;     /* the event array had no closing ']' (the format allows it); it was closed */
} tool_report_info;

/* Fills *o with the defaults: messages to stderr, the file's name as title, the default limit. */
void tool_report_options_init(tool_report_options *o);

/* Checks that json_path holds a Chrome trace in JSON (an array of events, or an object with a
 * "traceEvents" array; strict JSON, so that the page's JSON.parse accepts it) and writes
 * html_path: one HTML file that holds the viewer's markup, style and script and the trace, and
 * loads nothing else. Strings of the trace are escaped for HTML ('<', U+2028, U+2029) and byte
 * sequences that are not UTF-8 become U+FFFD; nothing else of the trace changes.
 *   json_path, html_path  must differ; html_path is replaced when it exists.
 *   options  NULL for the defaults (tool_report_options_init).
 *   info     NULL, or filled on success.
 * Returns 0 (SHK_OK), or SHK_EINVAL (a NULL or identical path), SHK_ENOENT (no file at
 * json_path), SHK_EOS (the trace cannot be read or the report cannot be written), SHK_EFORMAT (not
 * JSON, or JSON that is not a Chrome trace; the message says where and why) or SHK_ELIMIT (larger
 * than options->max_bytes). Each failure writes one message to options->messages. When the trace
 * is bad nothing is written; when writing fails midway the partial report is removed.
 * Thread safety: none needed beyond the files'; it keeps no state between calls. */
int tool_report_write(const char *json_path, const char *html_path,
                      const tool_report_options *options, tool_report_info *info);

/* The viewer, cut where the trace goes: generated at build time from tools/report/viewer.html,
 * viewer.css and viewer.js (tools/report/embed.cmake). */
extern const unsigned char tool_report_head[];
extern const size_t tool_report_head_size;
extern const unsigned char tool_report_tail[];
extern const size_t tool_report_tail_size;

#endif
