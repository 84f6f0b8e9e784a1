/* The HTML report's trace check (tools/report/report_json.c) at the edges of JSON's grammar, as a
 * browser's JSON.parse draws them: every whitespace byte, \u escapes with upper- and lower-case
 * hex digits and one digit short, each number form accepted and each one refused (leading zero,
 * a dot or exponent with no digits after, a lone minus), literals cut short, and an array form
 * that ends early: after an event or a comma (a recording that stopped: accepted), or in a
 * number or literal (refused: every element must be an event object). Each input is fed whole
 * and byte by byte, with the same verdict. */
/* ctest: labels=unit timeout=60 link=shmkit_report */
#include <stdio.h>
#include <string.h>

#include "report_json.h"
#include "shk_test.h"

typedef struct json_case {
  const char *text;
  bool ok;
  uint64_t events; /* when ok */
  bool unclosed;   /* when ok */
} json_case;

static const json_case cases[] = {
    /* whitespace: space, tab, CR, LF around every token */
    {" \t\r\n[ \t\r\n{ \"a\" \t:\r\n1 } \n,\t{}\r] \n", true, 2, false},
    {"\v[]", false, 0, false}, /* vertical tab is not JSON whitespace */
    /* \u escapes */
    {"[{\"s\":\"\\u00aF\\u0a0B\\uFFFF\"}]", true, 1, false},
    {"[{\"s\":\"\\u00g0\"}]", false, 0, false},
    {"[{\"s\":\"\\u00a\"}]", false, 0, false},
    {"[{\"s\":\"\\x41\"}]", false, 0, false},
    {"[{\"s\":\"\\/\\b\\f\\n\\r\\t\\\\\\\"\"}]", true, 1, false},
    /* numbers accepted */
    {"[{\"n\":0},{\"n\":-0},{\"n\":10},{\"n\":1.5},{\"n\":1e5},{\"n\":1E+5},{\"n\":-2.5e-3},"
     "{\"n\":0.0}]", true, 8, false},
    /* numbers refused */
    {"[{\"n\":01}]", false, 0, false},
    {"[{\"n\":1.}]", false, 0, false},
    {"[{\"n\":1.e3}]", false, 0, false},
    {"[{\"n\":1e}]", false, 0, false},
    {"[{\"n\":1e+}]", false, 0, false},
    {"[{\"n\":-}]", false, 0, false},
    {"[{\"n\":+1}]", false, 0, false},
    {"[{\"n\":.5}]", false, 0, false},
    /* literals */
    {"[{\"t\":true,\"f\":false,\"z\":null}]", true, 1, false},
    {"[{\"t\":tru}]", false, 0, false},
    {"[{\"t\":nul", false, 0, false},
    /* the array form ending early (the format allows a missing ']') */
    {"[{\"a\":1},", true, 1, true},
    {"[{\"a\":1}", true, 1, true},
    {"[{\"a\":1},7", false, 0, false},        /* a complete number, but not an event object */
    {"[{\"a\":1},-0.5e1", false, 0, false},
    {"[{\"a\":1},1e", false, 0, false},
    {"[{\"a\":1},tr", false, 0, false},
    {"[{\"a\":1},true", false, 0, false},
    /* the object form */
    {"{\"traceEvents\":[{}],\"x\":1}", true, 1, false},
    {"{\"traceEvents\":[{}],\"x\":1", false, 0, false},
    {"{\"other\":[{}]}", false, 0, false},
    {"{\"traceEvents\":[{}]}x", false, 0, false},
};

/* The verdict for text fed in steps of `step` bytes (0: at once). */
static bool check(const char *text, size_t step, report_check *c) {
  report_check_init(c);
  size_t len = strlen(text), at = 0;
  bool ok = true;
  while (ok && at < len) {
    size_t n = step == 0 || len - at < step ? len - at : step;
    ok = report_check_feed(c, (const unsigned char *)text + at, n);
    at += n;
  }
  return ok && report_check_finish(c);
}

static void each_input_gets_the_verdict_json_parse_would_give(void **state) {
  (void)state;
  static report_check c;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const json_case *k = &cases[i];
    for (size_t step = 0; step <= 1; step++) {
      bool ok = check(k->text, step, &c);
      if (ok != k->ok || (ok && (c.events != k->events || c.unclosed != k->unclosed)))
        fail_msg("case %zu (step %zu) %s: ok %d (expected %d), events %llu (%llu), unclosed %d "
                 "(%d), error: %s", i, step, k->text, ok, k->ok, (unsigned long long)c.events,
                 (unsigned long long)k->events, c.unclosed, k->unclosed, c.error);
      if (!ok) assert_true(c.error[0] != '\0');
    }
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(each_input_gets_the_verdict_json_parse_would_give),
};

static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
