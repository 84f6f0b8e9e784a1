/* The OS layer's segments: create, open, map, close and unlink; reserved (sparse) segments and
 * their commit; references that tell a segment object from another. */
/* ctest: labels=unit timeout=60 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shk_test.h"
#include "os.h"

static size_t page(void) { return shk__os_caps_get()->page_size; }

static void an_anonymous_segment_is_zeroed_and_writable(void **state) {
  (void)state;
  shk__os_segment seg;
  assert_int_equal(shk__os_segment_create(NULL, 4 * page(), &seg), SHK_OK);
  assert_non_null(seg.addr);
  assert_int_equal(seg.size, 4 * page());
  assert_true(seg.writable);
  unsigned char *p = seg.addr;
  for (size_t i = 0; i < seg.size; i += 997) assert_int_equal(p[i], 0);
  memset(p, 0xab, seg.size);
  shk__os_segment_close(&seg);
  assert_null(seg.addr);
  shk__os_segment_close(&seg); /* a zeroed segment is accepted */
}

static void a_named_segment_is_shared_between_mappings_and_unlinked(void **state) {
  (void)state;
  char portable[64], os_name[SHK__OS_SEGMENT_NAME_SIZE];
  shk__os_segment_name(shk_test_unique_name(portable, sizeof portable, "oseg"), os_name);
  shk__os_segment a, b, dup;
  assert_int_equal(shk__os_segment_create(os_name, page(), &a), SHK_OK);
  assert_int_equal(shk__os_segment_create(os_name, page(), &dup), SHK_EEXIST);
  assert_int_equal(shk__os_segment_open(os_name, false, &b), SHK_OK);
  assert_false(b.writable);
  assert_true(b.size >= page());
  memcpy(a.addr, "hello", 6);
  assert_string_equal((const char *)b.addr, "hello");
  shk__os_segment_close(&b);
  assert_int_equal(shk__os_segment_unlink(os_name), SHK_OK);
  shk__os_segment_close(&a);
  assert_int_equal(shk__os_segment_open(os_name, false, &b), SHK_ENOENT);
  assert_null(b.addr);
}

/* Defect 5: closing a reserved segment (an anonymous mapping on POSIX, no descriptor) closed
 * descriptor -1. */
static void a_reserved_segment_commits_and_closes_without_a_stray_close(void **state) {
  (void)state;
  shk__os_segment seg;
  size_t size = (size_t)64 << 20;
  assert_int_equal(shk__os_segment_reserve(size, &seg), SHK_OK);
  assert_int_equal(seg.size, size);
  assert_int_equal(shk__os_segment_commit(&seg, 0, (size_t)1 << 20), SHK_OK);
  memset(seg.addr, 1, (size_t)1 << 20);
  assert_int_equal(shk__os_segment_commit(&seg, size - page(), page()), SHK_OK);
  ((unsigned char *)seg.addr)[size - 1] = 2;
  errno = 0;
  shk__os_segment_close(&seg);
  assert_int_not_equal(errno, EBADF);
  assert_null(seg.addr);
}

static void a_reference_tells_the_same_segment_from_another(void **state) {
  (void)state;
  shk__os_segment a, b;
  assert_int_equal(shk__os_segment_create(NULL, page(), &a), SHK_OK);
  assert_int_equal(shk__os_segment_create(NULL, page(), &b), SHK_OK);
  shk__os_segment_ref ref;
  int rc = shk__os_segment_ref_take(&a, &ref);
  if (rc == SHK_EUNSUPPORTED) {
    skip();
  } else {
    assert_int_equal(rc, SHK_OK);
    assert_true(shk__os_segment_ref_same(&ref, &a));
    assert_false(shk__os_segment_ref_same(&ref, &b));
    shk__os_segment_ref_drop(&ref);
  }
  shk__os_segment_close(&a);
  shk__os_segment_close(&b);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(an_anonymous_segment_is_zeroed_and_writable),
    cmocka_unit_test(a_named_segment_is_shared_between_mappings_and_unlinked),
    cmocka_unit_test(a_reserved_segment_commits_and_closes_without_a_stray_close),
    cmocka_unit_test(a_reference_tells_the_same_segment_from_another),
};

static const shk_test_child children[] = {{"none", NULL}};

int main(int argc, char **argv) {
  return shk_test_main(argc, argv, __FILE__, tests, sizeof tests / sizeof tests[0], children, 0);
}
