/* A streaming check that bytes are a Chrome trace in JSON (an array of event objects, or an object
 * with a "traceEvents" array), strict enough that a browser's JSON.parse accepts what it accepts,
 * and the escaping that lets such a trace sit inside an HTML <script> element. */
#ifndef SHMKIT_REPORT_JSON_H
#define SHMKIT_REPORT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Containers nested deeper than this are refused (a browser's JSON.parse has a limit too, and
 * the check must not depend on a deep stack). */
#define REPORT_JSON_MAX_DEPTH 512

/* The checker's state and, once finished, what it learnt. Fill with report_check_init; the fields
 * above `events` are private. */
typedef struct report_check {
  int state;
  int number_state;
  const char *literal;        /* the rest of "true", "false" or "null" being matched */
  int hex_left;               /* hex digits left in a \uXXXX escape */
  bool in_key;                /* the string being read is an object key */
  bool key_is_events;         /* the key just read, at the top level, is "traceEvents" */
  bool found_events;          /* an object form's "traceEvents" array was seen */
  size_t key_len;             /* bytes of a top-level key read so far (up to 12 compared) */
  char key[12];
  size_t depth;
  char stack[REPORT_JSON_MAX_DEPTH]; /* '[' array, '{' object, 'E' the array of events */
  uint64_t offset;            /* bytes fed so far */
  uint64_t comma_at;          /* offset of the last ',' read directly in the events array */

  uint64_t events;            /* elements of the events array */
  bool top_is_array;          /* the JSON Array Format (else the JSON Object Format) */
  bool unclosed;              /* an array form whose closing ']' is missing (the format allows it) */
  uint64_t cut_at;            /* when unclosed: offset of a trailing ',' to leave out, or UINT64_MAX */
  uint64_t line, column;      /* where the error is (1-based), or where the input ended */
  char error[160];            /* what is wrong, empty while nothing is */
} report_check;

void report_check_init(report_check *c);

/* Feeds the next n bytes. Returns false once the input is known to be bad (c->error says why,
 * c->line and c->column where); later calls then do nothing and return false. */
bool report_check_feed(report_check *c, const unsigned char *p, size_t n);

/* Ends the input. Returns false when it ended too early or holds no trace (c->error says why). */
bool report_check_finish(report_check *c);

/* Copies checked JSON into an HTML <script type="application/json"> element, changing only the
 * inside of strings: '<' becomes \u003c (so neither "</script" nor "<!--" can appear), U+2028
 * and U+2029 become \u2028 and \u2029, and each byte sequence that is not UTF-8 becomes U+FFFD.
 * Feed it the same bytes that passed report_check. */
typedef struct report_escape {
  unsigned char pending[4];
  size_t have, need;
  uint64_t replaced;          /* U+FFFD written so far */
} report_escape;

/* Where escaped bytes go: fn(bytes, n, user) returns false when writing failed. */
typedef bool (*report_sink_fn)(const void *bytes, size_t n, void *user);

void report_escape_init(report_escape *e);
bool report_escape_feed(report_escape *e, const unsigned char *p, size_t n, report_sink_fn sink,
                        void *user);
/* Flushes a sequence cut off by the end of the input (as U+FFFD). */
bool report_escape_finish(report_escape *e, report_sink_fn sink, void *user);

#endif
