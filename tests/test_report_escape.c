/* The HTML report's escaper (tools/report/report_json.c) at its boundaries: bytes written as they
 * are and those escaped ('<', U+2028, U+2029), every UTF-8 edge (first and last code point of each
 * length, overlong forms, surrogates, U+10FFFF and 0x110000), sequences split between two feeds
 * or cut by the end; and the page's own strings (its title) with quotes, control characters and
 * bad bytes side by side. */
/* ctest: labels=unit timeout=60 link=shmkit_report */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "report_json.h"
#include "shk_test.h"
#include "shmkit.h"

typedef struct sink_buf {
  char text[1024];
  size_t len;
} sink_buf;

static bool to_buf(const void *bytes, size_t n, void *user) {
  sink_buf *b = user;
  if (b->len + n >= sizeof b->text) return false;
  memcpy(b->text + b->len, bytes, n);
  b->len += n;
  b->text[b->len] = '\0';
  return true;
}

/* Feeds text in pieces of `step` bytes (0: all at once), then finishes. */
static const char *escape_in_steps(const char *text, size_t len, size_t step, uint64_t *replaced) {
  static sink_buf b;
  memset(&b, 0, sizeof b);
  report_escape e;
  report_escape_init(&e);
  size_t at = 0;
  while (at < len) {
    size_t n = step == 0 || len - at < step ? len - at : step;
    assert_true(report_escape_feed(&e, (const unsigned char *)text + at, n, to_buf, &b));
    at += n;
  }
  assert_true(report_escape_finish(&e, to_buf, &b));
  if (replaced) *replaced = e.replaced;
  return b.text;
}

#define FFFD "\xef\xbf\xbd"

/* The same output however the input is cut into feeds. */
static void expect(const char *text, size_t len, const char *want, uint64_t want_replaced) {
  for (size_t step = 0; step <= 3; step++) {
    uint64_t replaced = 0;
    const char *got = escape_in_steps(text, len, step, &replaced);
    if (strcmp(got, want) != 0 || replaced != want_replaced) {
      print_error("steps of %u: got '%s' (%llu replaced), expected '%s' (%llu)\n", (unsigned)step, got,
                  (unsigned long long)replaced, want, (unsigned long long)want_replaced);
      fail();
    }
  }
}
#define EXPECT(literal, want, replaced) expect(literal, sizeof literal - 1, want, replaced)

static void ascii_passes_except_the_less_than_sign(void **state) {
  (void)state;
  EXPECT("a<b", "a\\u003cb", 0);
  EXPECT("\x1f \x7f>", "\x1f \x7f>", 0); /* already-valid JSON text: no other byte changes */
  EXPECT("", "", 0);
}

static void only_u2028_and_u2029_of_their_block_are_escaped(void **state) {
  (void)state;
  EXPECT("\xe2\x80\xa7", "\xe2\x80\xa7", 0); /* U+2027 */
  EXPECT("\xe2\x80\xa8", "\\u2028", 0);
  EXPECT("\xe2\x80\xa9", "\\u2029", 0);
  EXPECT("\xe2\x80\xaa", "\xe2\x80\xaa", 0); /* U+202A */
}

static void utf8_edges_are_kept_or_replaced_exactly(void **state) {
  (void)state;
  EXPECT("\xc2\x80\xdf\xbf", "\xc2\x80\xdf\xbf", 0);                /* U+0080, U+07FF */
  EXPECT("\xc0\x80", FFFD FFFD, 2);                                 /* overlong NUL */
  EXPECT("\xc1\xbf", FFFD FFFD, 2);
  EXPECT("\xe0\x9f\xbf", FFFD FFFD FFFD, 3);                        /* overlong U+07FF */
  EXPECT("\xe0\xa0\x80", "\xe0\xa0\x80", 0);                        /* U+0800 */
  EXPECT("\xed\x9f\xbf", "\xed\x9f\xbf", 0);                        /* U+D7FF */
  EXPECT("\xed\xa0\x80", FFFD FFFD FFFD, 3);                        /* U+D800 */
  EXPECT("\xed\xbf\xbf", FFFD FFFD FFFD, 3);                        /* U+DFFF */
  EXPECT("\xee\x80\x80\xef\xbf\xbf", "\xee\x80\x80\xef\xbf\xbf", 0); /* U+E000, U+FFFF */
  EXPECT("\xf0\x8f\xbf\xbf", FFFD FFFD FFFD FFFD, 4);               /* overlong U+FFFF */
  EXPECT("\xf0\x90\x80\x80", "\xf0\x90\x80\x80", 0);                /* U+10000 */
  EXPECT("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf", 0);                /* U+10FFFF */
  EXPECT("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD, 4);               /* 0x110000 */
  EXPECT("\xf5\x80", FFFD FFFD, 2);
  EXPECT("\x80", FFFD, 1);
}

static void a_cut_sequence_is_one_replacement_and_the_next_byte_starts_afresh(void **state) {
  (void)state;
  EXPECT("\xe2\x82" "A", FFFD "A", 1);
  EXPECT("\xf0\x9f\x98" "<", FFFD "\\u003c", 1);
  EXPECT("\xe2\x82" "\xc3\xa9", FFFD "\xc3\xa9", 1);
  EXPECT("\xf0\x9f\x98", FFFD, 1); /* cut by the end: report_escape_finish */
  EXPECT("\xc3", FFFD, 1);
}

/* The page's title goes through the same escaper plus JSON's own escapes: a quote, a control
 * character or a backslash right after a cut sequence comes after its U+FFFD, in order. */
static void the_title_keeps_its_characters_in_order(void **state) {
  (void)state;
  char in[96], out[96];
  shk_test_unique_name(in, sizeof in, "in.json");
  shk_test_unique_name(out, sizeof out, "out.html");
  FILE *f = fopen(in, "wb");
  assert_non_null(f);
  fputs("[]", f);
  assert_int_equal(fclose(f), 0);
  tool_report_options o;
  tool_report_options_init(&o);
  o.quiet = true;
  o.messages = NULL;
  o.title = "a\xc3\"b\xe2\x82\n\xf0\\<\x01\xe2\x80\xa8z\xc3";
  assert_int_equal(tool_report_write(in, out, &o, NULL), SHK_OK);
  f = fopen(out, "rb");
  assert_non_null(f);
  static char page[1 << 20];
  size_t n = fread(page, 1, sizeof page - 1, f);
  fclose(f);
  page[n] = '\0';
  remove(in);
  remove(out);
  const char *want = "{\"title\":\"a" FFFD "\\\"b" FFFD "\\u000a" FFFD "\\\\\\u003c\\u0001\\u2028z" FFFD
                     "\",";
  if (!strstr(page, want)) {
    const char *at = strstr(page, "{\"title\":");
    print_error("the page's title: %.80s\nexpected: %s\n", at ? at : "(none)", want);
    fail();
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(ascii_passes_except_the_less_than_sign),
    cmocka_unit_test(only_u2028_and_u2029_of_their_block_are_escaped),
    cmocka_unit_test(utf8_edges_are_kept_or_replaced_exactly),
    cmocka_unit_test(a_cut_sequence_is_one_replacement_and_the_next_byte_starts_afresh),
    cmocka_unit_test(the_title_keeps_its_characters_in_order),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
