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

/* The numbers are part of the ABI: a program compiled against any earlier header compares
 * against them. This table is frozen: a value here never changes; a new code gets a new row with
 * the next free number (and every_code_is_in_the_frozen_table makes sure it does). */
static const struct {
  int value;
  int expected;
  const char *name;
} frozen[] = {
    {SHK_OK, 0, "SHK_OK"},
    {SHK_EINVAL, -1, "SHK_EINVAL"},
    {SHK_ENOMEM, -2, "SHK_ENOMEM"},
    {SHK_ENAME, -3, "SHK_ENAME"},
    {SHK_EEXIST, -4, "SHK_EEXIST"},
    {SHK_ENOENT, -5, "SHK_ENOENT"},
    {SHK_EACCES, -6, "SHK_EACCES"},
    {SHK_ESIZE, -7, "SHK_ESIZE"},
    {SHK_ETIMEDOUT, -8, "SHK_ETIMEDOUT"},
    {SHK_ECANCELED, -9, "SHK_ECANCELED"},
    {SHK_EOS, -10, "SHK_EOS"},
    {SHK_EOVERFLOW, -11, "SHK_EOVERFLOW"},
    {SHK_EOVERLAP, -12, "SHK_EOVERLAP"},
    {SHK_ENODEV, -13, "SHK_ENODEV"},
    {SHK_EUNSUPPORTED, -14, "SHK_EUNSUPPORTED"},
    {SHK_EBUSY, -15, "SHK_EBUSY"},
    {SHK_ELIMIT, -16, "SHK_ELIMIT"},
    {SHK_EVERSION, -17, "SHK_EVERSION"},
    {SHK_EFORMAT, -18, "SHK_EFORMAT"},
    {SHK_ECRASHED, -19, "SHK_ECRASHED"},
    {SHK_ESTATE, -20, "SHK_ESTATE"},
    {SHK_ENOHOOK, -21, "SHK_ENOHOOK"},
    {SHK_ERANGE, -22, "SHK_ERANGE"},
    {SHK_EFAULT, -23, "SHK_EFAULT"},
    {SHK_ECHUNK, -24, "SHK_ECHUNK"},
    {SHK_ENOSYM, -25, "SHK_ENOSYM"},
};
#define FROZEN_COUNT (sizeof frozen / sizeof frozen[0])

static void codes_are_pinned(void **state) {
  (void)state;
  for (size_t i = 0; i < FROZEN_COUNT; i++) {
    if (frozen[i].value != frozen[i].expected)
      print_error("%s is %d; it was released as %d and must never change\n", frozen[i].name,
                  frozen[i].value, frozen[i].expected);
    assert_int_equal(frozen[i].value, frozen[i].expected);
    assert_string_equal(shk_error_name(frozen[i].value), frozen[i].name);
  }
}

/* A code added to SHK_ERROR_LIST without a row above would not be pinned. */
static void every_code_is_in_the_frozen_table(void **state) {
  (void)state;
  size_t listed = 0;
#define COUNT_CODE_(name, value, text) listed++;
  SHK_ERROR_LIST(COUNT_CODE_)
#undef COUNT_CODE_
  if (listed != FROZEN_COUNT)
    print_error("SHK_ERROR_LIST has %u codes, the frozen table %u: add the new code's row\n",
                (unsigned)listed, (unsigned)FROZEN_COUNT);
  assert_int_equal(listed, FROZEN_COUNT);
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
    cmocka_unit_test(every_code_is_in_the_frozen_table),
    cmocka_unit_test(linked_version_matches_the_header),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
