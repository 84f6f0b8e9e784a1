/* The evolution rule of options and table structs (shmkit/options.h), on the one helper that
 * every struct goes through (src/common/options.c), with a made-up struct in three releases. */
/* ctest: labels=unit timeout=30 internal */
#include <string.h>

#include "common/internal.h"
#include "shk_test.h"

/* Release A had one field; release B (this "library") adds two; release C (a newer header)
 * adds one more. Each caller's struct is its own type, as a program compiled then has it. */
typedef struct made_v0 { /* a version-numbered layout, before struct_size */
  uint32_t version;
  uint32_t a;
} made_v0;
typedef struct made_a {
  uint32_t struct_size;
  uint32_t a;
} made_a;
typedef struct made_b {
  uint32_t struct_size;
  uint32_t a;
  uint64_t b;
  const char *c;
} made_b;
typedef struct made_c {
  uint32_t struct_size;
  uint32_t a;
  uint64_t b;
  const char *c;
  uint64_t d;
} made_c;

static const made_b defaults_b = {sizeof(made_b), 7, 8, "default"};
static const size_t legacy_b[] = {SHK__OPTIONS_END(made_v0, a)};
/* First published layout: A; struct_size 0 stands for B. */
static const shk__options_layout layout_b = {sizeof(made_b), SHK__OPTIONS_END(made_a, a),
                                             SHK__OPTIONS_END(made_b, c), legacy_b, 1,
                                             &defaults_b};

static void an_older_smaller_struct_is_read_up_to_its_size(void **state) {
  (void)state;
  made_a old = {sizeof old, 42};
  made_b got;
  assert_int_equal(shk__options_read(&layout_b, &old, &got), SHK_OK);
  assert_int_equal(got.struct_size, sizeof got);
  assert_int_equal(got.a, 42);
  assert_int_equal(got.b, 8); /* not in the caller's struct: the default */
  assert_string_equal(got.c, "default");
}

static void a_version_number_of_the_old_scheme_is_read_as_its_layout(void **state) {
  (void)state;
  made_v0 old = {1, 43};
  made_b got;
  assert_int_equal(shk__options_read(&layout_b, &old, &got), SHK_OK);
  assert_int_equal(got.a, 43);
  assert_int_equal(got.b, 8);
}

static void a_newer_struct_with_its_new_fields_zero_is_accepted(void **state) {
  (void)state;
  made_c newer = {sizeof newer, 1, 2, "mine", 0};
  made_b got;
  assert_int_equal(shk__options_read(&layout_b, &newer, &got), SHK_OK);
  assert_int_equal(got.struct_size, sizeof got);
  assert_int_equal(got.a, 1);
  assert_int_equal(got.b, 2);
  assert_string_equal(got.c, "mine");
}

static void a_newer_struct_asking_for_a_new_field_is_refused(void **state) {
  (void)state;
  made_c newer = {sizeof newer, 1, 2, "mine", 5};
  made_b got;
  assert_int_equal(shk__options_read(&layout_b, &newer, &got), SHK_EINVAL);
  /* Any non-zero byte past what the library knows, padding included. */
  unsigned char bytes[sizeof(made_b) + 3];
  memset(bytes, 0, sizeof bytes);
  uint32_t size = sizeof bytes;
  memcpy(bytes, &size, sizeof size);
  assert_int_equal(shk__options_read(&layout_b, bytes, &got), SHK_OK);
  bytes[sizeof bytes - 1] = 1;
  assert_int_equal(shk__options_read(&layout_b, bytes, &got), SHK_EINVAL);
}

static void sizes_below_the_first_layout_or_above_the_maximum_are_refused(void **state) {
  (void)state;
  made_b got;
  made_b caller = defaults_b;
  caller.struct_size = 2; /* neither a version of the old scheme nor a published size */
  assert_int_equal(shk__options_read(&layout_b, &caller, &got), SHK_EINVAL);
  caller.struct_size = (uint32_t)SHK__OPTIONS_END(made_a, a) - 1;
  assert_int_equal(shk__options_read(&layout_b, &caller, &got), SHK_EINVAL);
  /* Refused without being read: the struct is not that large. */
  caller.struct_size = SHK_OPTIONS_SIZE_MAX + 1;
  assert_int_equal(shk__options_read(&layout_b, &caller, &got), SHK_EINVAL);
  caller.struct_size = 0xFFFFFFFFu;
  assert_int_equal(shk__options_read(&layout_b, &caller, &got), SHK_EINVAL);
}

static void a_zero_initialised_struct_is_read_as_the_zero_layout(void **state) {
  (void)state;
  made_b caller = {.a = 9, .c = "set by name"};
  made_b got;
  assert_int_equal(shk__options_read(&layout_b, &caller, &got), SHK_OK);
  assert_int_equal(got.a, 9);
  assert_int_equal(got.b, 0); /* as written */
  assert_string_equal(got.c, "set by name");
}

static void null_means_the_defaults(void **state) {
  (void)state;
  made_b got;
  memset(&got, 0xAB, sizeof got);
  assert_int_equal(shk__options_read(&layout_b, NULL, &got), SHK_OK);
  assert_memory_equal(&got, &defaults_b, sizeof got);
  const void *use = NULL;
  made_b local;
  assert_int_equal(shk__options_use(&layout_b, NULL, &local, &use), SHK_OK);
  assert_ptr_equal(use, &defaults_b);
}

static void use_takes_a_struct_of_this_layout_in_place_and_copies_others(void **state) {
  (void)state;
  made_b mine = defaults_b;
  made_b local;
  const void *use = NULL;
  assert_int_equal(shk__options_use(&layout_b, &mine, &local, &use), SHK_OK);
  assert_ptr_equal(use, &mine);
  made_a old = {sizeof old, 5};
  assert_int_equal(shk__options_use(&layout_b, &old, &local, &use), SHK_OK);
  assert_ptr_equal(use, &local);
  assert_int_equal(local.a, 5);
  made_c bad = {sizeof bad, 1, 2, NULL, 3};
  assert_int_equal(shk__options_use(&layout_b, &bad, &local, &use), SHK_EINVAL);
}

/* Init writes exactly the caller's size: an older program's struct is never overrun, and a
 * newer program's new fields are zeroed. */
static void init_writes_exactly_the_callers_size(void **state) {
  (void)state;
  struct {
    made_a old;
    unsigned char canary[32];
  } small;
  memset(&small, 0x5A, sizeof small);
  shk__options_init(&layout_b, &small.old, sizeof small.old);
  assert_int_equal(small.old.struct_size, sizeof small.old);
  assert_int_equal(small.old.a, 7);
  for (size_t i = 0; i < sizeof small.canary; i++) assert_int_equal(small.canary[i], 0x5A);

  made_c newer;
  memset(&newer, 0x5A, sizeof newer);
  shk__options_init(&layout_b, &newer, sizeof newer);
  assert_int_equal(newer.struct_size, sizeof newer);
  assert_int_equal(newer.b, 8);
  assert_int_equal(newer.d, 0);
  made_b got;
  assert_int_equal(shk__options_read(&layout_b, &newer, &got), SHK_OK);

  shk__options_init(&layout_b, NULL, sizeof newer); /* nothing */
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(an_older_smaller_struct_is_read_up_to_its_size),
    cmocka_unit_test(a_version_number_of_the_old_scheme_is_read_as_its_layout),
    cmocka_unit_test(a_newer_struct_with_its_new_fields_zero_is_accepted),
    cmocka_unit_test(a_newer_struct_asking_for_a_new_field_is_refused),
    cmocka_unit_test(sizes_below_the_first_layout_or_above_the_maximum_are_refused),
    cmocka_unit_test(a_zero_initialised_struct_is_read_as_the_zero_layout),
    cmocka_unit_test(null_means_the_defaults),
    cmocka_unit_test(use_takes_a_struct_of_this_layout_in_place_and_copies_others),
    cmocka_unit_test(init_writes_exactly_the_callers_size),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
