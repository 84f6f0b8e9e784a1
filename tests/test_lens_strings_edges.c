/* ctest: labels=unit timeout=60 internal */
/* The lens reader's string map (lens_strings.c) at its limits: a map holds exactly `limit` keys
 * and answers the placeholder for the next; once `limit` texts were replaced, a key keeps the
 * text it has; the same key in two scopes is two strings; an unknown key gets one
 * placeholder of its own; the map grows past its first table with every key still found. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lens_internal.h"
#include "shk_test.h"
#include "shmkit.h"

static const char *put(shk__lens_string_map *m, uint32_t scope, uint64_t key, const char *text) {
  return shk__lens_strings_put(m, scope, key, (const uint8_t *)text, strlen(text));
}

static void a_map_holds_exactly_its_limit_of_keys(void **state) {
  (void)state;
  shk__lens_string_map m;
  memset(&m, 0, sizeof m);
  assert_null(shk__lens_strings_find(&m, 1, 1)); /* empty: no table yet */
  m.limit = 3;
  assert_string_equal(put(&m, 1, 10, "a"), "a");
  assert_string_equal(put(&m, 1, 11, "b"), "b");
  assert_string_equal(put(&m, 1, 12, "c"), "c"); /* the last that fits */
  assert_string_equal(put(&m, 1, 13, "d"), SHK__LENS_UNKNOWN_STRING);
  bool known = true;
  assert_string_equal(shk__lens_strings_get(&m, 1, 14, &known), SHK__LENS_UNKNOWN_STRING);
  assert_false(known);
  assert_null(shk__lens_strings_find(&m, 1, 13));
  /* Keys already there are still answered. */
  assert_string_equal(shk__lens_strings_get(&m, 1, 12, &known), "c");
  assert_true(known);
  assert_string_equal(shk__lens_strings_find(&m, 1, 10), "a");
  assert_int_equal(m.count, 3);
  assert_int_equal(m.known_count, 3);
  shk__lens_strings_free(&m);
  assert_int_equal(m.cap, 0);
}

static void replaced_texts_stop_at_the_limit(void **state) {
  (void)state;
  shk__lens_string_map m;
  memset(&m, 0, sizeof m);
  m.limit = 2;
  const char *first = put(&m, 1, 7, "v0");
  assert_string_equal(first, "v0");
  assert_ptr_equal(put(&m, 1, 7, "v0"), first); /* the same text: kept as it is */
  assert_string_equal(put(&m, 1, 7, "v1"), "v1"); /* replaced: v0 retired (1) */
  assert_string_equal(put(&m, 1, 7, "v2"), "v2"); /* retired 2: the limit */
  assert_string_equal(put(&m, 1, 7, "v3"), "v2"); /* past it: the last text stays */
  assert_string_equal(first, "v0");               /* a retired text is still readable */
  assert_int_equal(m.retired_count, 2);
  assert_string_equal(shk__lens_strings_find(&m, 1, 7), "v2");
  shk__lens_strings_free(&m);
}

static void scopes_and_placeholders(void **state) {
  (void)state;
  shk__lens_string_map m;
  memset(&m, 0, sizeof m);
  m.limit = 1000;
  assert_string_equal(put(&m, 1, 5, "one"), "one");
  assert_null(shk__lens_strings_find(&m, 2, 5)); /* same key, other process */
  bool known = true;
  const char *p = shk__lens_strings_get(&m, 2, 5, &known);
  assert_false(known);
  assert_string_equal(p, "<unknown string 0000000000000005>");
  assert_ptr_equal(shk__lens_strings_get(&m, 2, 5, NULL), p); /* one placeholder per key */
  assert_int_equal(m.unknown_count, 1);
  /* The real text arrives later: it replaces the placeholder. */
  assert_string_equal(put(&m, 2, 5, "two"), "two");
  assert_string_equal(shk__lens_strings_get(&m, 2, 5, &known), "two");
  assert_true(known);
  assert_string_equal(shk__lens_strings_find(&m, 1, 5), "one");
  /* Growth: many keys, all found afterwards in their scope. */
  char text[32];
  for (uint64_t k = 0; k < 500; k++) {
    snprintf(text, sizeof text, "k%llu", (unsigned long long)k);
    assert_string_equal(put(&m, 3, k * 64, text), text);
  }
  assert_true(m.cap >= 1000);
  for (uint64_t k = 0; k < 500; k++) {
    snprintf(text, sizeof text, "k%llu", (unsigned long long)k);
    assert_string_equal(shk__lens_strings_find(&m, 3, k * 64), text);
  }
  shk__lens_strings_free(&m);
}

/* The same key in two scopes (two processes that use one address for different names) stays two
 * strings wherever the two land in the table: the second scope's key may start its probe at the
 * first's slot, or pass over it, and must never take it (a look-up that compared the key alone
 * would). Tried for enough scopes that every start position occurs. */
static void one_key_in_two_scopes_never_shares_a_slot(void **state) {
  (void)state;
  for (uint32_t scope = 2; scope < 2000; scope++) {
    shk__lens_string_map m;
    memset(&m, 0, sizeof m);
    m.limit = 1000;
    assert_string_equal(put(&m, 1, 0x55e5b70c0180ull, "first"), "first");
    assert_string_equal(put(&m, scope, 0x55e5b70c0180ull, "second"), "second");
    assert_int_equal(m.count, 2);
    assert_string_equal(shk__lens_strings_find(&m, 1, 0x55e5b70c0180ull), "first");
    assert_string_equal(shk__lens_strings_find(&m, scope, 0x55e5b70c0180ull), "second");
    shk__lens_strings_free(&m);
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_map_holds_exactly_its_limit_of_keys),
    cmocka_unit_test(replaced_texts_stop_at_the_limit),
    cmocka_unit_test(scopes_and_placeholders),
    cmocka_unit_test(one_key_in_two_scopes_never_shares_a_slot),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
