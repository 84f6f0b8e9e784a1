/* ctest: labels=unit;fault timeout=180 internal */
/* Fault walks (src/os_faults.h) under the segment calls: shk_shm_create / create_anonymous /
 * open / unlink, shk_buf_create with "shm" and "pages", shk_lens_open and
 * shk_lens_reader_open. Each failure of a segment primitive gives a documented code with the
 * raw OS error kept, and leaves no name, mapping or descriptor behind. */
#include <stdio.h>
#include <string.h>

#include "shk_test_faults.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 120000

static const int segment_codes[] = {SHK_EOS, SHK_ESIZE};
static const int open_codes[] = {SHK_EOS};
static const int lens_codes[] = {SHK_EOS, SHK_ESIZE}; /* the segment's codes pass through */

static int create_named(void *ctx) {
  shk_fault_named *c = ctx;
  shk_shm *shm = NULL;
  int rc = shk_shm_create(c->name, 3 * 4096 + 1, &shm);
  if (rc != SHK_OK) return shm == NULL ? rc : -9999;
  memset(shk_shm_data(shm), 1, shk_shm_size(shm));
  shk_shm_close(shm);
  return shk_shm_unlink(c->name);
}

static int walk_create(shk__fault_point point, bool reached) {
  shk_fault_named c;
  shk_test_unique_name(c.name, sizeof c.name, "fc");
  shk_fault_case fc = {"shk_shm_create", point, create_named, &c, segment_codes,
                       SHK__ARRAY_LEN(segment_codes), true, false, shk_fault_name_is_gone};
  SHK_FAULT_WALK(&fc, reached);
  fc.sticky = true;
  SHK_FAULT_WALK(&fc, reached);
  return 0;
}

SHK_CHILD_TEST(shm_create_fails_cleanly_when_the_segment_cannot_be_made, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return walk_create(SHK__FAULT_SEGMENT_CREATE, true);
}

SHK_CHILD_TEST(shm_create_fails_cleanly_when_the_segment_cannot_be_sized, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  /* Windows sizes a section as it creates it: no separate call to fail there. */
  return walk_create(SHK__FAULT_SEGMENT_SIZE, shk__os_caps_get()->has_fork);
}

SHK_CHILD_TEST(shm_create_fails_cleanly_when_the_segment_cannot_be_mapped, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return walk_create(SHK__FAULT_SEGMENT_MAP, true);
}

static int create_anonymous(void *ctx) {
  (void)ctx;
  shk_shm *shm = NULL;
  int rc = shk_shm_create_anonymous(65536, &shm);
  if (rc != SHK_OK) return shm == NULL ? rc : -9999;
  shk_shm_close(shm);
  return SHK_OK;
}

SHK_CHILD_TEST(shm_create_anonymous_fails_cleanly_at_each_primitive, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  static const shk__fault_point points[] = {SHK__FAULT_SEGMENT_CREATE, SHK__FAULT_SEGMENT_SIZE,
                                            SHK__FAULT_SEGMENT_MAP};
  for (size_t i = 0; i < SHK__ARRAY_LEN(points); i++) {
    shk_fault_case fc = {"shk_shm_create_anonymous", points[i], create_anonymous, NULL,
                         segment_codes, SHK__ARRAY_LEN(segment_codes), true, false, NULL};
    SHK_FAULT_WALK(&fc, points[i] != SHK__FAULT_SEGMENT_SIZE || shk__os_caps_get()->has_fork);
  }
  return 0;
}

static int open_named(void *ctx) {
  shk_fault_named *c = ctx;
  shk_shm *shm = NULL;
  int rc = shk_shm_open(c->name, SHK_SHM_READ_WRITE, &shm);
  if (rc != SHK_OK) return shm == NULL ? rc : -9999;
  shk_shm_close(shm);
  return SHK_OK;
}

SHK_CHILD_TEST(shm_open_fails_cleanly_at_each_primitive, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  shk_fault_named c;
  shk_test_unique_name(c.name, sizeof c.name, "fo");
  shk_shm *held = NULL;
  SHK_CHECK(shk_shm_create(c.name, 8192, &held) == SHK_OK);
  static const shk__fault_point points[] = {SHK__FAULT_SEGMENT_OPEN, SHK__FAULT_SEGMENT_MAP};
  for (size_t i = 0; i < SHK__ARRAY_LEN(points); i++) {
    shk_fault_case fc = {"shk_shm_open", points[i], open_named, &c, open_codes,
                         SHK__ARRAY_LEN(open_codes), true, false, NULL};
    SHK_FAULT_WALK(&fc, true);
  }
  shk_shm_close(held);
  SHK_CHECK(shk_shm_unlink(c.name) == SHK_OK);
  return 0;
}

SHK_CHILD_TEST(shm_unlink_that_fails_keeps_the_name_and_the_raw_error, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  if (!shk__os_caps_get()->has_fork) return 0; /* Windows: a name ends with its last handle */
  shk_fault_named c;
  shk_test_unique_name(c.name, sizeof c.name, "fu");
  shk_shm *shm = NULL;
  SHK_CHECK(shk_shm_create(c.name, 4096, &shm) == SHK_OK);
  shk_shm_close(shm);
  shk__fault_arm(SHK__FAULT_SEGMENT_UNLINK, 1, SHK_FAULT_RAW, false);
  int rc = shk_shm_unlink(c.name);
  shk__fault_disarm_all();
  SHK_CHECK(rc == SHK_EOS);
  SHK_CHECK(shk_last_os_error() == SHK_FAULT_RAW);
  SHK_CHECK(shk_fault_name_is_gone(&c) != 0); /* still there */
  SHK_CHECK(shk_shm_unlink(c.name) == SHK_OK);
  SHK_CHECK(shk_fault_name_is_gone(&c) == 0);
  return 0;
}

static int buf_create(void *ctx) {
  shk_buf_options opts;
  memset(&opts, 0, sizeof opts);
  opts.allocator = ctx;
  shk_buf *buf = NULL;
  int rc = shk_buf_create(1000, 24, &opts, &buf);
  if (rc != SHK_OK) return buf == NULL ? rc : -9999;
  shk_buf_release(buf);
  return SHK_OK;
}

SHK_CHILD_TEST(buf_create_fails_cleanly_when_the_os_refuses_shm_or_pages, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  static const int pages_codes[] = {SHK_ENOMEM, SHK_EOS};
  static const shk__fault_point points[] = {SHK__FAULT_SEGMENT_CREATE, SHK__FAULT_SEGMENT_SIZE,
                                            SHK__FAULT_SEGMENT_MAP};
  for (size_t i = 0; i < SHK__ARRAY_LEN(points); i++) {
    shk_fault_case fc = {"shk_buf_create shm", points[i], buf_create, "shm", segment_codes,
                         SHK__ARRAY_LEN(segment_codes), true, false, NULL};
    SHK_FAULT_WALK(&fc, points[i] != SHK__FAULT_SEGMENT_SIZE || shk__os_caps_get()->has_fork);
  }
  shk_fault_case fc = {"shk_buf_create pages", SHK__FAULT_PAGES_ALLOC, buf_create, "pages",
                       pages_codes, SHK__ARRAY_LEN(pages_codes), true, false, NULL};
  SHK_FAULT_WALK(&fc, true);
  return 0;
}

static int lens_open(void *ctx) {
  shk_fault_named *c = ctx;
  shk_lens_options opts;
  shk_lens_options_init(&opts);
  opts.ring_bytes = 8192;
  opts.max_threads = 2;
  shk_lens *lens = NULL;
  int rc = shk_lens_open(c->name, &opts, &lens);
  if (rc != SHK_OK) return lens == NULL ? rc : -9999;
  shk_lens_close(lens); /* the last producer: the name goes */
  return SHK_OK;
}

SHK_CHILD_TEST(lens_open_fails_cleanly_at_each_segment_primitive, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  shk_fault_named c;
  shk_test_unique_name(c.name, sizeof c.name, "fl");
  static const shk__fault_point points[] = {SHK__FAULT_SEGMENT_CREATE, SHK__FAULT_SEGMENT_SIZE,
                                            SHK__FAULT_SEGMENT_MAP};
  for (size_t i = 0; i < SHK__ARRAY_LEN(points); i++) {
    shk_fault_case fc = {"shk_lens_open", points[i], lens_open, &c, lens_codes,
                         SHK__ARRAY_LEN(lens_codes), true, false, shk_fault_name_is_gone};
    SHK_FAULT_WALK(&fc, points[i] != SHK__FAULT_SEGMENT_SIZE || shk__os_caps_get()->has_fork);
  }
  /* A second producer opens the segment the first one made; its failure leaves the first
   * one's segment as it was. */
  shk_lens *first = NULL;
  SHK_CHECK(shk_lens_open(c.name, NULL, &first) == SHK_OK);
  static const shk__fault_point second[] = {SHK__FAULT_SEGMENT_OPEN, SHK__FAULT_SEGMENT_MAP};
  for (size_t i = 0; i < SHK__ARRAY_LEN(second); i++) {
    shk_fault_case fc = {"shk_lens_open (second producer)", second[i], lens_open, &c, lens_codes,
                         SHK__ARRAY_LEN(lens_codes), true, false, NULL};
    SHK_FAULT_WALK(&fc, true);
  }
  SHK_CHECK(shk_lens_frame(first) == SHK_OK);
  shk_lens_close(first);
  SHK_CHECK(shk_fault_name_is_gone(&c) == 0);
  return 0;
}

typedef struct reader_call {
  shk_fault_named seg;
} reader_call;

static int reader_open(void *ctx) {
  reader_call *c = ctx;
  shk_lens_reader *reader = NULL;
  int rc = shk_lens_reader_open(c->seg.name, NULL, &reader);
  if (rc != SHK_OK) return reader == NULL ? rc : -9999;
  shk_lens_reader_close(reader);
  return SHK_OK;
}

SHK_CHILD_TEST(lens_reader_open_fails_cleanly_at_each_segment_primitive, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  reader_call c;
  shk_test_unique_name(c.seg.name, sizeof c.seg.name, "fr");
  shk_lens *lens = NULL;
  SHK_CHECK(shk_lens_open(c.seg.name, NULL, &lens) == SHK_OK);
  static const shk__fault_point points[] = {SHK__FAULT_SEGMENT_OPEN, SHK__FAULT_SEGMENT_MAP};
  for (size_t i = 0; i < SHK__ARRAY_LEN(points); i++) {
    shk_fault_case fc = {"shk_lens_reader_open", points[i], reader_open, &c, open_codes,
                         SHK__ARRAY_LEN(open_codes), true, false, NULL};
    SHK_FAULT_WALK(&fc, true);
  }
  shk_lens_close(lens);
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(shm_create_fails_cleanly_when_the_segment_cannot_be_made),
    cmocka_unit_test(shm_create_fails_cleanly_when_the_segment_cannot_be_sized),
    cmocka_unit_test(shm_create_fails_cleanly_when_the_segment_cannot_be_mapped),
    cmocka_unit_test(shm_create_anonymous_fails_cleanly_at_each_primitive),
    cmocka_unit_test(shm_open_fails_cleanly_at_each_primitive),
    cmocka_unit_test(shm_unlink_that_fails_keeps_the_name_and_the_raw_error),
    cmocka_unit_test(buf_create_fails_cleanly_when_the_os_refuses_shm_or_pages),
    cmocka_unit_test(lens_open_fails_cleanly_at_each_segment_primitive),
    cmocka_unit_test(lens_reader_open_fails_cleanly_at_each_segment_primitive),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(shm_create_fails_cleanly_when_the_segment_cannot_be_made),
    SHK_TEST_CHILD(shm_create_fails_cleanly_when_the_segment_cannot_be_sized),
    SHK_TEST_CHILD(shm_create_fails_cleanly_when_the_segment_cannot_be_mapped),
    SHK_TEST_CHILD(shm_create_anonymous_fails_cleanly_at_each_primitive),
    SHK_TEST_CHILD(shm_open_fails_cleanly_at_each_primitive),
    SHK_TEST_CHILD(shm_unlink_that_fails_keeps_the_name_and_the_raw_error),
    SHK_TEST_CHILD(buf_create_fails_cleanly_when_the_os_refuses_shm_or_pages),
    SHK_TEST_CHILD(lens_open_fails_cleanly_at_each_segment_primitive),
    SHK_TEST_CHILD(lens_reader_open_fails_cleanly_at_each_segment_primitive),
};

SHK_TEST_MAIN(tests, children)
