/* The trace writer's JSON strings (tools/trace_json.c, compiled in here) at every boundary of its
 * escaping and of its UTF-8 repair: the last byte escaped and the first written as it is, the
 * first and last code point of each sequence length, overlong forms, surrogates, U+FFFF,
 * U+10FFFF and the first value above it, sequences cut by the end of the text, and the size of
 * the writer's stack buffer. Every invalid byte becomes one U+FFFD; valid text is copied. */
/* ctest: labels=unit timeout=60 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "../tools/trace_json.c"

/* json_escape of len bytes of text, as a NUL-terminated string (static: one at a time). */
static const char *escaped(const char *text, size_t len) {
  static char out[6 * 64 + 3];
  assert_true(len <= 64);
  size_t n = json_escape(out, text, len);
  assert_true(n <= 6 * len + 2);
  out[n] = '\0';
  return out;
}

static void expect(const char *text, size_t len, const char *json) {
  const char *got = escaped(text, len);
  if (strcmp(got, json) != 0) {
    print_error("escaping %u bytes: got %s, expected %s\n", (unsigned)len, got, json);
    fail();
  }
}
#define EXPECT(literal, json) expect(literal, sizeof literal - 1, json)

static void control_characters_are_escaped_up_to_0x1f_and_no_further(void **state) {
  (void)state;
  for (unsigned c = 0; c < 0x20; c++) {
    char in[1] = {(char)c};
    char want[16];
    snprintf(want, sizeof want, "\"\\u%04x\"", c);
    expect(in, 1, want);
  }
  EXPECT(" ", "\" \"");   /* 0x20: the first byte written as it is */
  EXPECT("~", "\"~\"");
  EXPECT("\x7f", "\"\x7f\""); /* DEL is not a control character for JSON (RFC 8259, 7) */
  EXPECT("/", "\"/\"");
  EXPECT("\"", "\"\\\"\"");
  EXPECT("\\", "\"\\\\\"");
  EXPECT("", "\"\"");
  /* NUL inside the text is a character, not its end */
  EXPECT("a\0b", "\"a\\u0000b\"");
}

static void two_byte_sequences_start_at_u0080(void **state) {
  (void)state;
  EXPECT("\xc2\x80", "\"\xc2\x80\"");   /* U+0080, the first */
  EXPECT("\xdf\xbf", "\"\xdf\xbf\"");   /* U+07FF, the last */
  EXPECT("\xc0\x80", "\"\\ufffd\\ufffd\""); /* overlong NUL */
  EXPECT("\xc1\xbf", "\"\\ufffd\\ufffd\""); /* overlong U+007F */
  EXPECT("\x80", "\"\\ufffd\"");         /* a continuation byte alone */
  EXPECT("\xbf", "\"\\ufffd\"");
  EXPECT("\xc2\x7f", "\"\\ufffd\x7f\""); /* the byte after the lead is no continuation */
  EXPECT("\xc2\xc0", "\"\\ufffd\\ufffd\"");
}

static void three_byte_sequences_exclude_overlong_forms_and_surrogates(void **state) {
  (void)state;
  EXPECT("\xe0\x9f\xbf", "\"\\ufffd\\ufffd\\ufffd\""); /* overlong U+07FF */
  EXPECT("\xe0\xa0\x80", "\"\xe0\xa0\x80\"");          /* U+0800, the first */
  EXPECT("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");          /* U+D7FF, the last before surrogates */
  EXPECT("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* U+D800, the first surrogate */
  EXPECT("\xed\xbf\xbf", "\"\\ufffd\\ufffd\\ufffd\""); /* U+DFFF, the last */
  EXPECT("\xee\x80\x80", "\"\xee\x80\x80\"");          /* U+E000, the first after them */
  EXPECT("\xef\xbf\xbf", "\"\xef\xbf\xbf\"");          /* U+FFFF: a noncharacter, still UTF-8 */
  EXPECT("\xef\xbf\xbd", "\"\xef\xbf\xbd\"");          /* U+FFFD itself */
  /* a surrogate pair written as two 3-byte forms (CESU-8) */
  EXPECT("\xed\xa0\xbd\xed\xb8\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
  EXPECT("\xe2\x82\x41", "\"\\ufffd\\ufffdA\"");       /* the third byte is no continuation */
}

static void four_byte_sequences_end_at_u10ffff(void **state) {
  (void)state;
  EXPECT("\xf0\x8f\xbf\xbf", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* overlong U+FFFF */
  EXPECT("\xf0\x90\x80\x80", "\"\xf0\x90\x80\x80\"");             /* U+10000, the first */
  EXPECT("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");             /* an emoji */
  EXPECT("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");             /* U+10FFFF, the last */
  EXPECT("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* 0x110000 */
  EXPECT("\xf5\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
  EXPECT("\xf0\x90\x80\x7f", "\"\\ufffd\\ufffd\\ufffd\x7f\"");
}

/* The text ends inside a sequence although the bytes after it in memory would complete it:
 * nothing past `len` is read, and each byte of the cut sequence becomes U+FFFD. */
static void sequences_cut_by_the_end_of_the_text_are_replaced(void **state) {
  (void)state;
  const char *emoji = "x\xf0\x9f\x98\x80";
  expect(emoji, 5, "\"x\xf0\x9f\x98\x80\""); /* ends exactly at the end: kept */
  expect(emoji, 4, "\"x\\ufffd\\ufffd\\ufffd\"");
  expect(emoji, 3, "\"x\\ufffd\\ufffd\"");
  expect(emoji, 2, "\"x\\ufffd\"");
  const char *euro = "\xe2\x82\xac";
  expect(euro, 3, "\"\xe2\x82\xac\"");
  expect(euro, 2, "\"\\ufffd\\ufffd\"");
  const char *e_acute = "\xc3\xa9";
  expect(e_acute, 2, "\"\xc3\xa9\"");
  expect(e_acute, 1, "\"\\ufffd\"");
}

/* trace_json_string uses a stack buffer up to 170 bytes of text (6 * 170 + 2 = 1022 < 1024) and
 * the heap above: the worst case (every byte a \u escape) just below, at and above the edge. */
static void the_longest_escapes_fit_on_both_sides_of_the_stack_buffer(void **state) {
  (void)state;
  char path[128];
  shk_test_unique_name(path, sizeof path, "escape.json");
  for (size_t len = 169; len <= 172; len++) {
    char *text = malloc(len);
    assert_non_null(text);
    memset(text, 0x01, len);
    text[len - 1] = (char)0xf4; /* a cut 4-byte lead at the very end */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    trace_json_string(f, text, len);
    assert_int_equal(fclose(f), 0);
    free(text);
    f = fopen(path, "rb");
    assert_non_null(f);
    char *json = malloc(6 * len + 3);
    assert_non_null(json);
    size_t n = fread(json, 1, 6 * len + 3, f);
    fclose(f);
    assert_int_equal(n, 6 * len + 2);
    assert_int_equal(json[0], '"');
    assert_int_equal(json[n - 1], '"');
    for (size_t i = 0; i + 1 < len; i++) assert_memory_equal(json + 1 + 6 * i, "\\u0001", 6);
    assert_memory_equal(json + 1 + 6 * (len - 1), "\\ufffd", 6);
    free(json);
  }
  remove(path);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(control_characters_are_escaped_up_to_0x1f_and_no_further),
    cmocka_unit_test(two_byte_sequences_start_at_u0080),
    cmocka_unit_test(three_byte_sequences_exclude_overlong_forms_and_surrogates),
    cmocka_unit_test(four_byte_sequences_end_at_u10ffff),
    cmocka_unit_test(sequences_cut_by_the_end_of_the_text_are_replaced),
    cmocka_unit_test(the_longest_escapes_fit_on_both_sides_of_the_stack_buffer),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
