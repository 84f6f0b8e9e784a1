/* A Chrome Trace Event JSON writer for lens events: zones as complete events per thread, frames on
 * their own track, plots and live heap bytes as counters, logs as instant events. */
#ifndef SHMKIT_TRACE_JSON_H
#define SHMKIT_TRACE_JSON_H

#include <stdio.h>

#include "shmkit.h"

typedef struct trace_json trace_json;

/* Opens `path` for writing; process_name names the single process of the trace.
 * Returns 0, or -1 with errno set. */
int trace_json_open(const char *path, const char *process_name, trace_json **out);

/* Writes one event. */
void trace_json_event(trace_json *t, const shk_lens_event *e);

/* Writes one event with its arguments (shk_lens_reader_args()): a zone's go into its args (after
 * "depth"); a heap event with arguments is also a marker on the process's "Heap" track; a log with
 * an unsigned "thread" argument is a marker on that thread's track. */
void trace_json_event_args(trace_json *t, const shk_lens_event *e, const shk_lens_arg *args,
                           size_t nargs);

/* Writes the thread and track names, closes the array and the file, frees t.
 * Returns 0, or -1 when a write failed. */
int trace_json_close(trace_json *t);

/* Distinct threads seen so far. */
size_t trace_json_threads(const trace_json *t);

/* Writes s as a JSON string with quotes: escapes, and U+FFFD for bytes that are not UTF-8. */
void trace_json_string(FILE *f, const char *s, size_t len);

#endif
