/* `shmkit lens report`'s C side (tools/report): the HTML page holds the viewer and the trace, the
 * trace's strings cannot end the <script> element or break JavaScript, bytes that are not UTF-8
 * become U+FFFD, and bad input (missing, empty, not JSON, JSON that is no trace, too deep, too
 * large) fails with a clear code and message and leaves nothing half-written. */
/* ctest: labels=unit timeout=120 link=shmkit_report */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "report_json.h"
#include "shk_test.h"
#include "shmkit.h"

typedef struct page {
  char *text;
  size_t len;
} page;

static void temp_path(char *buf, size_t size, const char *tag) {
  char name[96];
  shk_test_unique_name(name, sizeof name, tag);
  snprintf(buf, size, "%s", name);
}

static void write_file(const char *path, const void *bytes, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(bytes, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static page read_file(const char *path) {
  page p = {NULL, 0};
  FILE *f = fopen(path, "rb");
  if (!f) return p;
  size_t cap = 1 << 16;
  p.text = malloc(cap + 1);
  assert_non_null(p.text);
  size_t n;
  while ((n = fread(p.text + p.len, 1, cap - p.len, f)) > 0) {
    p.len += n;
    if (p.len == cap) {
      cap *= 2;
      p.text = realloc(p.text, cap + 1);
      assert_non_null(p.text);
    }
  }
  fclose(f);
  p.text[p.len] = '\0';
  return p;
}

static bool exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f) fclose(f);
  return f != NULL;
}

static size_t count(const page *p, const char *needle) {
  size_t n = 0, k = strlen(needle);
  for (size_t i = 0; i + k <= p->len; i++)
    if (memcmp(p->text + i, needle, k) == 0) n++;
  return n;
}

static bool has(const page *p, const void *needle, size_t k) {
  for (size_t i = 0; i + k <= p->len; i++)
    if (memcmp(p->text + i, needle, k) == 0) return true;
  return false;
}

/* The trace as the page holds it: between the trace element's start tag and its end tag. */
static char *trace_part(const page *p) {
  const char *start = strstr(p->text, "id=\"shk-trace\">");
  assert_non_null(start);
  start += strlen("id=\"shk-trace\">");
  const char *end = strstr(start, "</script>");
  assert_non_null(end);
  size_t n = (size_t)(end - start);
  char *s = malloc(n + 1);
  assert_non_null(s);
  memcpy(s, start, n);
  s[n] = '\0';
  return s;
}

/* Writes `json` to a file, makes a report of it with messages into a file; returns the code. */
typedef struct run {
  int rc;
  page html, messages;
  tool_report_info info;
} run;

static run report_of(const void *json, size_t n, uint64_t max_bytes) {
  char in[128], out[128], msg[128];
  temp_path(in, sizeof in, "in.json");
  temp_path(out, sizeof out, "out.html");
  temp_path(msg, sizeof msg, "messages.txt");
  write_file(in, json, n);
  FILE *m = fopen(msg, "wb");
  assert_non_null(m);
  tool_report_options o;
  tool_report_options_init(&o);
  o.messages = m;
  o.max_bytes = max_bytes;
  run r;
  memset(&r, 0, sizeof r);
  r.rc = tool_report_write(in, out, &o, &r.info);
  fclose(m);
  r.html = read_file(out);
  r.messages = read_file(msg);
  remove(in);
  remove(out);
  remove(msg);
  return r;
}

static void run_free(run *r) {
  free(r->html.text);
  free(r->messages.text);
}

static void report_holds_the_viewer_and_the_trace(void **state) {
  (void)state;
  const char *json = "{\"traceEvents\":[{\"ph\":\"X\",\"name\":\"a\",\"pid\":1,\"tid\":2,\"ts\":1,\"dur\":2},"
                     "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":2,\"args\":{\"name\":\"main\"}}]}";
  run r = report_of(json, strlen(json), 0);
  assert_int_equal(r.rc, SHK_OK);
  assert_int_equal(r.info.events, 2);
  assert_int_equal(r.info.bytes, strlen(json));
  assert_int_equal(r.info.replaced, 0);
  assert_non_null(r.html.text);
  assert_int_equal(memcmp(r.html.text, "<!doctype html>", 15), 0);
  assert_true(r.html.len > 20000); /* the viewer is inside */
  assert_true(has(&r.html, "</html>", 7));
  char *trace = trace_part(&r.html);
  assert_string_equal(trace, json);
  free(trace);
  /* Everything is inside: no address to load anything from. */
  assert_int_equal(count(&r.html, "http://") + count(&r.html, "https://") + count(&r.html, "src="), 0);
  /* The page's three scripts (page data, trace, viewer) and nothing else end a script. */
  assert_int_equal(count(&r.html, "</script"), 3);
  assert_true(has(&r.messages, "report written to", 17));
  run_free(&r);
}

static void a_missing_trace_is_enoent_and_writes_nothing(void **state) {
  (void)state;
  char in[128], out[128], msg[128];
  temp_path(in, sizeof in, "missing.json");
  temp_path(out, sizeof out, "missing.html");
  temp_path(msg, sizeof msg, "missing.txt");
  FILE *m = fopen(msg, "wb");
  tool_report_options o;
  tool_report_options_init(&o);
  o.messages = m;
  assert_int_equal(tool_report_write(in, out, &o, NULL), SHK_ENOENT);
  fclose(m);
  assert_false(exists(out));
  page p = read_file(msg);
  assert_non_null(strstr(p.text, "cannot open"));
  assert_non_null(strstr(p.text, in));
  free(p.text);
  remove(msg);
  assert_int_equal(tool_report_write(NULL, out, &o, NULL), SHK_EINVAL);
  assert_int_equal(tool_report_write(in, NULL, &o, NULL), SHK_EINVAL);
  o.messages = NULL;
  assert_int_equal(tool_report_write(in, in, &o, NULL), SHK_EINVAL); /* would overwrite itself */
}

/* Each is refused with SHK_EFORMAT and a message that says where. */
static const struct bad_input {
  const char *json;
  const char *says;
} bad_inputs[] = {
    {"", "empty"},
    {"   ", "only white space"},
    {"hello", "not a Chrome trace"},
    {"\"a string\"", "not a Chrome trace"},
    {"{\"a\":1}", "no \"traceEvents\""},
    {"{\"traceEvents\":{}}", "not an array"},
    {"{\"traceevents\":[]}", "no \"traceEvents\""},
    {"[1,2,3]", "not an object"},
    {"[{\"a\":01}]", "malformed number"},
    {"[{\"a\":1.}]", "malformed number"},
    {"[{\"a\":-}]", "malformed number"},
    {"[{\"a\":1e}]", "malformed number"},
    {"[{\"a\":tru}]", "true, false or null"},
    {"[{\"a\":\"\x01\"}]", "control character"},
    {"[{\"a\":\"\\x\"}]", "unknown escape"},
    {"[{\"a\":\"\\u12g4\"}]", "four hex digits"},
    {"[{\"a\" 1}]", "expected ':'"},
    {"[{\"a\":1,}]", "expected a key"},
    {"[{\"a\":1]", "expected ',' or '}'"},
    {"[{} {}]", "expected ',' or ']'"},
    {"[{}] x", "after the end"},
    {"{\"traceEvents\":[]} {}", "after the end"},
    {"[{\"a\":\"unterminated", "ends before"},
    {"{\"traceEvents\":[{}", "ends before"},
    {"[{\"a\":[1,2}]", "expected ',' or ']'"},
    {"\xef\xbb\xbf[]", "not a Chrome trace"}, /* a byte order mark is not JSON */
};

static void bad_input_is_eformat_with_place_and_reason(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_inputs / sizeof bad_inputs[0]; i++) {
    run r = report_of(bad_inputs[i].json, strlen(bad_inputs[i].json), 0);
    if (r.rc != SHK_EFORMAT || !r.messages.text || !strstr(r.messages.text, bad_inputs[i].says))
      fail_msg("input %zu '%s': rc %d, message '%s'", i, bad_inputs[i].json, r.rc,
               r.messages.text ? r.messages.text : "(none)");
    assert_null(r.html.text); /* nothing written */
    assert_non_null(strstr(r.messages.text, ":1:")); /* line 1, and a column */
    run_free(&r);
  }
}

static void bad_input_leaves_an_existing_report_alone(void **state) {
  (void)state;
  char in[128], out[128];
  temp_path(in, sizeof in, "garbage.json");
  temp_path(out, sizeof out, "kept.html");
  write_file(in, "[{\"a\":1}, garbage", 17);
  write_file(out, "kept", 4);
  tool_report_options o;
  tool_report_options_init(&o);
  o.messages = NULL;
  assert_int_equal(tool_report_write(in, out, &o, NULL), SHK_EFORMAT);
  page p = read_file(out);
  assert_string_equal(p.text, "kept");
  free(p.text);
  remove(in);
  remove(out);
}

static void errors_name_the_line_and_column(void **state) {
  (void)state;
  const char *json = "[\n  {\"ph\":\"X\"},\n  {\"ph\": %}\n]";
  run r = report_of(json, strlen(json), 0);
  assert_int_equal(r.rc, SHK_EFORMAT);
  assert_non_null(strstr(r.messages.text, ":3:10: expected a value"));
  run_free(&r);
}

static void random_bytes_never_crash(void **state) {
  (void)state;
  unsigned char bytes[4096];
  uint32_t x = 12345;
  for (int round = 0; round < 200; round++) {
    size_t n = 1 + (size_t)(x % sizeof bytes);
    for (size_t i = 0; i < n; i++) {
      x = x * 1664525u + 1013904223u;
      /* Mostly JSON's own characters, so that the checker gets deep before it fails. */
      static const char alphabet[] = "[]{}\",:0123456789.eE+-truefalsn \\u\n\xff\xc3\x80";
      bytes[i] = round % 4 == 0 ? (unsigned char)(x >> 24) : (unsigned char)alphabet[(x >> 24) % (sizeof alphabet - 1)];
    }
    bytes[0] = '[';
    report_check c;
    report_check_init(&c);
    bool ok = report_check_feed(&c, bytes, n) && report_check_finish(&c);
    if (!ok) assert_true(c.error[0] != '\0');
  }
}

static void nesting_deeper_than_the_limit_is_refused_without_recursion(void **state) {
  (void)state;
  size_t n = 200000;
  char *json = malloc(n + 16);
  assert_non_null(json);
  memcpy(json, "[{\"a\":", 6);
  memset(json + 6, '[', n);
  run r = report_of(json, n + 6, 0);
  assert_int_equal(r.rc, SHK_EFORMAT);
  assert_non_null(strstr(r.messages.text, "nested deeper than 512"));
  run_free(&r);
  free(json);
}

static void script_ends_and_line_separators_in_names_are_escaped(void **state) {
  (void)state;
  const char *json = "[{\"ph\":\"X\",\"name\":\"</script><script>alert(1)</script>\",\"ts\":0},"
                     "{\"ph\":\"i\",\"name\":\"<!-- x </SCRIPT \xe2\x80\xa8 \xe2\x80\xa9 \",\"ts\":1}]";
  run r = report_of(json, strlen(json), 0);
  assert_int_equal(r.rc, SHK_OK);
  char *trace = trace_part(&r.html);
  assert_string_equal(trace,
                      "[{\"ph\":\"X\",\"name\":\"\\u003c/script>\\u003cscript>alert(1)\\u003c/script>\",\"ts\":0},"
                      "{\"ph\":\"i\",\"name\":\"\\u003c!-- x \\u003c/SCRIPT \\u2028 \\u2029 \",\"ts\":1}]");
  free(trace);
  assert_int_equal(count(&r.html, "</script"), 3);
  assert_int_equal(count(&r.html, "</SCRIPT"), 0);
  assert_false(has(&r.html, "\xe2\x80\xa8", 3));
  assert_false(has(&r.html, "\xe2\x80\xa9", 3));
  run_free(&r);
}

static void bytes_that_are_not_utf8_become_replacement_characters(void **state) {
  (void)state;
  /* lone continuation, cut-off 2-byte, overlong '/', surrogate, beyond U+10FFFF, a byte that never
   * starts a sequence, then valid 2-, 3- and 4-byte characters. */
  const char *json = "[{\"name\":\"a\x80" "b\xc3" "c\xc0\xaf" "d\xed\xa0\x80" "e\xf4\x90\x80\x80" "f\xff"
                     "g \xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80\"}]";
  run r = report_of(json, strlen(json), 0);
  assert_int_equal(r.rc, SHK_OK);
  char *trace = trace_part(&r.html);
  const char *R = "\xef\xbf\xbd";
  char expected[256];
  snprintf(expected, sizeof expected,
           "[{\"name\":\"a%sb%sc%s%sd%s%s%se%s%s%s%sf%sg \xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80\"}]", R, R, R, R,
           R, R, R, R, R, R, R, R);
  assert_string_equal(trace, expected);
  assert_int_equal(r.info.replaced, 12);
  free(trace);
  /* The messages say so. */
  assert_non_null(strstr(r.messages.text, "12 byte sequences"));
  run_free(&r);
}

static void characters_cut_by_a_read_boundary_stay_whole(void **state) {
  (void)state;
  /* "é" and "😀" placed across the 64 KiB chunks the writer reads. */
  size_t n = 3 * 65536;
  char *json = malloc(n + 64);
  assert_non_null(json);
  size_t at = 0;
  at += (size_t)sprintf(json, "[{\"name\":\"");
  while (at < n) {
    if (at == 65535) { memcpy(json + at, "\xc3\xa9", 2); at += 2; continue; }
    if (at == 2 * 65536 - 2) { memcpy(json + at, "\xf0\x9f\x98\x80", 4); at += 4; continue; }
    json[at++] = 'x';
  }
  at += (size_t)sprintf(json + at, "\"}]");
  run r = report_of(json, at, 0);
  assert_int_equal(r.rc, SHK_OK);
  assert_int_equal(r.info.replaced, 0);
  char *trace = trace_part(&r.html);
  assert_int_equal(strlen(trace), at);
  assert_int_equal(memcmp(trace, json, at), 0);
  free(trace);
  run_free(&r);
  free(json);
}

static void huge_names_pass_through_whole(void **state) {
  (void)state;
  size_t name = 8u << 20; /* 8 MiB in one string */
  char *json = malloc(name + 64);
  assert_non_null(json);
  size_t at = (size_t)sprintf(json, "[{\"ph\":\"X\",\"name\":\"");
  memset(json + at, 'n', name);
  at += name;
  at += (size_t)sprintf(json + at, "\",\"ts\":0,\"dur\":1}]");
  run r = report_of(json, at, 0);
  assert_int_equal(r.rc, SHK_OK);
  char *trace = trace_part(&r.html);
  assert_int_equal(strlen(trace), at);
  free(trace);
  run_free(&r);
  free(json);
}

static void an_array_without_its_end_is_closed(void **state) {
  (void)state;
  const char *cases[][2] = {
      {"[{\"ph\":\"X\",\"ts\":1},\n{\"ph\":\"X\",\"ts\":2},\n", "[{\"ph\":\"X\",\"ts\":1},\n{\"ph\":\"X\",\"ts\":2}\n]"},
      {"[{\"ph\":\"X\",\"ts\":1}", "[{\"ph\":\"X\",\"ts\":1}]"},
      {"[", "[]"},
      {"[ ]", "[ ]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    run r = report_of(cases[i][0], strlen(cases[i][0]), 0);
    assert_int_equal(r.rc, SHK_OK);
    assert_int_equal(r.info.unclosed, i < 3);
    char *trace = trace_part(&r.html);
    assert_string_equal(trace, cases[i][1]);
    free(trace);
    run_free(&r);
  }
}

static void a_trace_larger_than_the_limit_is_elimit(void **state) {
  (void)state;
  const char *json = "[{\"ph\":\"X\",\"name\":\"a long enough name for the limit below\",\"ts\":0}]";
  run r = report_of(json, strlen(json), 16);
  assert_int_equal(r.rc, SHK_ELIMIT);
  assert_null(r.html.text);
  assert_non_null(strstr(r.messages.text, "larger than"));
  run_free(&r);
}

static void the_checker_gives_the_same_answer_in_any_chunking(void **state) {
  (void)state;
  const char *docs[] = {
      "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[{\"ph\":\"C\",\"args\":{\"v\":-1.5e+3}},{\"a\":[true,false,null,\"\\u00e9\\n\"]}],\"x\":{}}",
      "[{\"ts\":0.000,\"dur\":1E-2,\"name\":\"q\\\"\\\\\"}]",
      "{\"traceEvents\":[{}],\"traceEvents2\":1}",
      "{\"trace\\u0045vents\":[]}", /* valid JSON, but the key is escaped: not taken for the events */
  };
  const bool ok_expected[] = {true, true, true, false};
  for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
    const unsigned char *p = (const unsigned char *)docs[d];
    size_t n = strlen(docs[d]);
    report_check whole, bytewise;
    report_check_init(&whole);
    bool a = report_check_feed(&whole, p, n) && report_check_finish(&whole);
    report_check_init(&bytewise);
    bool b = true;
    for (size_t i = 0; i < n && b; i++) b = report_check_feed(&bytewise, p + i, 1);
    b = b && report_check_finish(&bytewise);
    assert_int_equal(a, ok_expected[d]);
    assert_int_equal(b, ok_expected[d]);
    assert_int_equal(whole.events, bytewise.events);
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(report_holds_the_viewer_and_the_trace),
    cmocka_unit_test(a_missing_trace_is_enoent_and_writes_nothing),
    cmocka_unit_test(bad_input_is_eformat_with_place_and_reason),
    cmocka_unit_test(bad_input_leaves_an_existing_report_alone),
    cmocka_unit_test(errors_name_the_line_and_column),
    cmocka_unit_test(random_bytes_never_crash),
    cmocka_unit_test(nesting_deeper_than_the_limit_is_refused_without_recursion),
    cmocka_unit_test(script_ends_and_line_separators_in_names_are_escaped),
    cmocka_unit_test(bytes_that_are_not_utf8_become_replacement_characters),
    cmocka_unit_test(characters_cut_by_a_read_boundary_stay_whole),
    cmocka_unit_test(huge_names_pass_through_whole),
    cmocka_unit_test(an_array_without_its_end_is_closed),
    cmocka_unit_test(a_trace_larger_than_the_limit_is_elimit),
    cmocka_unit_test(the_checker_gives_the_same_answer_in_any_chunking),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
