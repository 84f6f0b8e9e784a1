/* Error codes, their names and messages, and the version functions. */
/* ctest: labels=unit timeout=30 */
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

static void every_code_has_a_name_and_a_message(void **state) {
  (void)state;
#define CHECK_CODE_(name, value, text)                      \
  assert_string_equal(shk_error_name(value), #name);        \
  assert_string_equal(shk_strerror(value), text);           \
  assert_true(value <= 0);
  SHK_ERROR_LIST(CHECK_CODE_)
#undef CHECK_CODE_
}

static void unknown_codes_are_named_unknown(void **state) {
  (void)state;
  assert_string_equal(shk_error_name(12345), "SHK_UNKNOWN");
  assert_string_equal(shk_strerror(-9999), "unknown error");
}

static void codes_are_pinned(void **state) {
  (void)state;
  /* The numbers are part of the ABI: they must never change. */
  assert_int_equal(SHK_EINVAL, -1);
  assert_int_equal(SHK_ENOENT, -5);
  assert_int_equal(SHK_ESIZE, -7);
  assert_int_equal(SHK_EOS, -10);
  assert_int_equal(SHK_EFAULT, -23);
  assert_int_equal(SHK_ECHUNK, -24);
  assert_int_equal(SHK_ENOSYM, -25);
}

static void linked_version_matches_the_header(void **state) {
  (void)state;
  assert_int_equal(shk_version(), SHK_VERSION_NUMBER);
  assert_string_equal(shk_version_string(), SHK_VERSION_STRING);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(every_code_has_a_name_and_a_message),
    cmocka_unit_test(unknown_codes_are_named_unknown),
    cmocka_unit_test(codes_are_pinned),
    cmocka_unit_test(linked_version_matches_the_header),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
