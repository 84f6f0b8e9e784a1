/* Checking that bytes are a Chrome trace in strict JSON, one byte at a time (so that the input
 * streams in chunks of any size), and escaping it for an HTML <script> element. */
#include "report_json.h"

#include <string.h>

enum {
  S_VALUE,          /* a value must come */
  S_VALUE_OR_CLOSE, /* just after '[' */
  S_KEY_OR_CLOSE,   /* just after '{' */
  S_KEY,            /* after ',' in an object */
  S_COLON,
  S_AFTER,          /* a value ended */
  S_STRING,
  S_ESCAPE,
  S_HEX,
  S_NUMBER,
  S_LITERAL,
  S_FAILED
};

enum { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_EXP, N_EXP_SIGN, N_EXP_DIGITS };

static const char EVENTS_KEY[] = "traceEvents";

void report_check_init(report_check *c) {
  memset(c, 0, sizeof *c);
  c->state = S_VALUE;
  c->line = 1;
  c->column = 0;
  c->comma_at = UINT64_MAX;
  c->cut_at = UINT64_MAX;
}

static bool is_space(unsigned char b) { return b == ' ' || b == '\t' || b == '\n' || b == '\r'; }
static bool is_digit(unsigned char b) { return b >= '0' && b <= '9'; }
static bool is_hex(unsigned char b) {
  return is_digit(b) || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
}

static bool fail(report_check *c, const char *what) {
  /* The first error wins: it is where the input went wrong. */
  if (c->state != S_FAILED) {
    strncpy(c->error, what, sizeof c->error - 1);
    c->error[sizeof c->error - 1] = '\0';
    c->state = S_FAILED;
  }
  return false;
}

static char top(const report_check *c) { return c->depth ? c->stack[c->depth - 1] : 0; }

static bool push(report_check *c, char kind) {
  if (c->depth == REPORT_JSON_MAX_DEPTH) return fail(c, "nested deeper than 512 arrays and objects");
  c->stack[c->depth++] = kind;
  return true;
}

static void value_done(report_check *c) { c->state = S_AFTER; }

/* The first byte of a value. */
static bool start_value(report_check *c, unsigned char b) {
  if (c->depth == 0) {
    /* The whole document: an array of events, or an object that holds one. */
    if (b == '[') {
      c->top_is_array = true;
      c->state = S_VALUE_OR_CLOSE;
      return push(c, 'E');
    }
    if (b == '{') {
      c->state = S_KEY_OR_CLOSE;
      return push(c, '{');
    }
    return fail(c, "not a Chrome trace: expected '[' (an array of events) or '{' (an object "
                   "with \"traceEvents\")");
  }
  if (top(c) == 'E') {
    c->events++;
    if (b != '{') return fail(c, "an element of the event array is not an object");
  }
  if (c->key_is_events) {
    c->key_is_events = false;
    if (b != '[') return fail(c, "\"traceEvents\" is not an array");
    c->found_events = true;
    c->state = S_VALUE_OR_CLOSE;
    return push(c, 'E');
  }
  switch (b) {
    case '{': c->state = S_KEY_OR_CLOSE; return push(c, '{');
    case '[': c->state = S_VALUE_OR_CLOSE; return push(c, '[');
    case '"': c->in_key = false; c->state = S_STRING; return true;
    case 't': c->literal = "rue"; c->state = S_LITERAL; return true;
    case 'f': c->literal = "alse"; c->state = S_LITERAL; return true;
    case 'n': c->literal = "ull"; c->state = S_LITERAL; return true;
    case '-': c->number_state = N_MINUS; c->state = S_NUMBER; return true;
    default:
      if (is_digit(b)) {
        c->number_state = b == '0' ? N_ZERO : N_INT;
        c->state = S_NUMBER;
        return true;
      }
      return fail(c, "expected a value");
  }
}

static bool close_container(report_check *c, unsigned char b) {
  char t = top(c);
  bool array = t == '[' || t == 'E';
  if ((b == ']' && !array) || (b == '}' && array))
    return fail(c, array ? "expected ',' or ']'" : "expected ',' or '}'");
  c->depth--;
  value_done(c);
  return true;
}

static void start_key(report_check *c) {
  c->in_key = true;
  c->key_len = 0;
  c->state = S_STRING;
}

static bool after_value(report_check *c, unsigned char b) {
  if (c->depth == 0) return fail(c, "more data after the end of the trace");
  if (b == ']' || b == '}') return close_container(c, b);
  if (b != ',') return fail(c, top(c) == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
  if (top(c) == '{') {
    c->state = S_KEY;
  } else {
    if (top(c) == 'E') c->comma_at = c->offset;
    c->state = S_VALUE;
  }
  return true;
}

static void end_string(report_check *c) {
  if (c->in_key) {
    /* Only the document's own keys matter: "traceEvents" one level down. */
    c->key_is_events = c->depth == 1 && c->key_len == sizeof EVENTS_KEY - 1 &&
                       memcmp(c->key, EVENTS_KEY, sizeof EVENTS_KEY - 1) == 0;
    c->state = S_COLON;
  } else {
    value_done(c);
  }
}

static bool string_byte(report_check *c, unsigned char b) {
  if (b == '"') {
    end_string(c);
    return true;
  }
  if (b == '\\') {
    c->state = S_ESCAPE;
    return true;
  }
  if (b < 0x20) return fail(c, "a control character inside a string (JSON wants it escaped)");
  if (c->in_key && c->depth == 1) {
    if (c->key_len < sizeof c->key) c->key[c->key_len] = (char)b;
    if (c->key_len != SIZE_MAX) c->key_len++;
  }
  return true;
}

static bool escape_byte(report_check *c, unsigned char b) {
  /* A top-level key written with escapes is not taken for "traceEvents". */
  if (c->in_key && c->depth == 1) c->key_len = SIZE_MAX;
  if (b == 'u') {
    c->hex_left = 4;
    c->state = S_HEX;
    return true;
  }
  if (!strchr("\"\\/bfnrt", b) || b == 0) return fail(c, "an unknown escape inside a string");
  c->state = S_STRING;
  return true;
}

/* Returns 1 when b belongs to the number, 0 when the number ended before b, -1 on error. */
static int number_byte(report_check *c, unsigned char b) {
  int *n = &c->number_state;
  switch (*n) {
    case N_MINUS:
      if (!is_digit(b)) return -1;
      *n = b == '0' ? N_ZERO : N_INT;
      return 1;
    case N_ZERO:
    case N_INT:
      if (is_digit(b) && *n == N_INT) return 1;
      if (b == '.') { *n = N_DOT; return 1; }
      if (b == 'e' || b == 'E') { *n = N_EXP; return 1; }
      return is_digit(b) ? -1 : 0; /* a leading zero followed by digits */
    case N_DOT:
      if (!is_digit(b)) return -1;
      *n = N_FRAC;
      return 1;
    case N_FRAC:
      if (is_digit(b)) return 1;
      if (b == 'e' || b == 'E') { *n = N_EXP; return 1; }
      return 0;
    case N_EXP:
      if (b == '+' || b == '-') { *n = N_EXP_SIGN; return 1; }
      if (!is_digit(b)) return -1;
      *n = N_EXP_DIGITS;
      return 1;
    case N_EXP_SIGN:
      if (!is_digit(b)) return -1;
      *n = N_EXP_DIGITS;
      return 1;
    default:
      return is_digit(b) ? 1 : 0;
  }
}

static bool number_complete(const report_check *c) {
  int n = c->number_state;
  return n == N_ZERO || n == N_INT || n == N_FRAC || n == N_EXP_DIGITS;
}

static bool feed_byte(report_check *c, unsigned char b) {
  switch (c->state) {
    case S_STRING: return string_byte(c, b);
    case S_ESCAPE: return escape_byte(c, b);
    case S_HEX:
      if (!is_hex(b)) return fail(c, "a \\u escape needs four hex digits");
      if (--c->hex_left == 0) c->state = S_STRING;
      return true;
    case S_LITERAL:
      if (b != (unsigned char)*c->literal) return fail(c, "expected true, false or null");
      if (*++c->literal == '\0') value_done(c);
      return true;
    case S_NUMBER: {
      int r = number_byte(c, b);
      if (r < 0) return fail(c, "a malformed number");
      if (r > 0) return true;
      value_done(c);
      return feed_byte(c, b); /* the byte after the number, once: S_AFTER does not come here */
    }
    default: break;
  }
  if (is_space(b)) return true;
  switch (c->state) {
    case S_VALUE: return start_value(c, b);
    case S_VALUE_OR_CLOSE:
      if (b == ']') return close_container(c, b);
      return start_value(c, b);
    case S_KEY_OR_CLOSE:
      if (b == '}') return close_container(c, b);
      if (b != '"') return fail(c, "expected a key (a string) or '}'");
      start_key(c);
      return true;
    case S_KEY:
      if (b != '"') return fail(c, "expected a key (a string)");
      start_key(c);
      return true;
    case S_COLON:
      if (b != ':') return fail(c, "expected ':' after a key");
      c->state = S_VALUE;
      return true;
    case S_AFTER: return after_value(c, b);
    default: return false;
  }
}

/* Bytes inside a string that need no look: most of a trace. */
static bool plain_string_byte(unsigned char b) { return b >= 0x20 && b != '"' && b != '\\'; }

bool report_check_feed(report_check *c, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (c->state == S_FAILED) return false;
    if (c->state == S_STRING && !(c->in_key && c->depth == 1)) {
      size_t run = i;
      while (run < n && plain_string_byte(p[run])) {
        if ((p[run] & 0xC0) != 0x80) c->column++;
        run++;
      }
      c->offset += run - i;
      i = run;
      if (i == n) break;
    }
    unsigned char b = p[i];
    if (b == '\n') {
      c->line++;
      c->column = 0;
    } else if ((b & 0xC0) != 0x80) {
      c->column++; /* columns count characters, not the continuation bytes of UTF-8 */
    }
    if (!feed_byte(c, b)) return false;
    c->offset++;
  }
  return c->state != S_FAILED;
}

bool report_check_finish(report_check *c) {
  if (c->state == S_FAILED) return false;
  if (c->state == S_NUMBER && number_complete(c)) value_done(c);
  if (c->depth == 0) {
    if (c->state == S_AFTER) {
      if (c->top_is_array) return true;
      /* An object form that never named its events is some other JSON document. */
      return c->found_events ? true : fail(c, "not a Chrome trace: no \"traceEvents\" array");
    }
    return fail(c, c->offset == 0 ? "the file is empty" : "the file holds only white space");
  }
  /* The JSON Array Format may end without its ']' (a program that stopped while writing it). */
  bool inside_array = c->depth == 1 && c->stack[0] == 'E';
  if (inside_array && (c->state == S_AFTER || c->state == S_VALUE_OR_CLOSE)) {
    c->unclosed = true;
    return true;
  }
  if (inside_array && c->state == S_VALUE && c->comma_at != UINT64_MAX) {
    c->unclosed = true;
    c->cut_at = c->comma_at;
    return true;
  }
  return fail(c, "the file ends before the trace does (a string, array or object is not closed)");
}

/* ---- escaping for HTML ------------------------------------------------------------------- */

void report_escape_init(report_escape *e) { memset(e, 0, sizeof *e); }

static const unsigned char REPLACEMENT[3] = {0xEF, 0xBF, 0xBD};

static size_t sequence_length(unsigned char lead) {
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

/* Whether b may follow the bytes already pending (excludes overlong forms and surrogates). */
static bool continues(const report_escape *e, unsigned char b) {
  if ((b & 0xC0) != 0x80) return false;
  if (e->have != 1) return true;
  switch (e->pending[0]) {
    case 0xE0: return b >= 0xA0;
    case 0xED: return b <= 0x9F;
    case 0xF0: return b >= 0x90;
    case 0xF4: return b <= 0x8F;
    default: return true;
  }
}

static bool put_replacement(report_escape *e, report_sink_fn sink, void *user) {
  e->replaced++;
  e->have = e->need = 0;
  return sink(REPLACEMENT, sizeof REPLACEMENT, user);
}

static bool put_sequence(report_escape *e, report_sink_fn sink, void *user) {
  const unsigned char *s = e->pending;
  size_t n = e->have;
  e->have = e->need = 0;
  /* U+2028 and U+2029 end a line in JavaScript source: write them as escapes. */
  if (n == 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9))
    return sink(s[2] == 0xA8 ? "\\u2028" : "\\u2029", 6, user);
  return sink(s, n, user);
}

bool report_escape_feed(report_escape *e, const unsigned char *p, size_t n, report_sink_fn sink,
                        void *user) {
  size_t plain = 0; /* start of a run of bytes copied as they are */
  for (size_t i = 0; i < n; i++) {
    unsigned char b = p[i];
    if (e->need == 0 && b >= 0x20 && b < 0x80 && b != '<') continue;
    if (i > plain && !sink(p + plain, i - plain, user)) return false;
    plain = i + 1;
    if (e->need > 0) {
      if (continues(e, b)) {
        e->pending[e->have++] = b;
        if (--e->need == 0 && !put_sequence(e, sink, user)) return false;
        continue;
      }
      /* A cut-off sequence: one U+FFFD for it, then b starts afresh. */
      if (!put_replacement(e, sink, user)) return false;
    }
    if (b < 0x80) {
      bool ok = b == '<' ? sink("\\u003c", 6, user) : sink(&b, 1, user);
      if (!ok) return false;
      continue;
    }
    size_t len = sequence_length(b);
    if (len == 0) {
      if (!put_replacement(e, sink, user)) return false;
      continue;
    }
    e->pending[0] = b;
    e->have = 1;
    e->need = len - 1;
  }
  return plain < n ? sink(p + plain, n - plain, user) : true;
}

bool report_escape_finish(report_escape *e, report_sink_fn sink, void *user) {
  return e->need > 0 ? put_replacement(e, sink, user) : true;
}
