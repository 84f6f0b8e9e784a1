/* Segments at their ends: the size rounded to pages at one byte below, at and above a page; the
 * last byte of a segment written by one mapping and read by another; shk_shm_find() for ranges
 * that end exactly at the last byte, one past it, start one before the first, or wrap around the
 * address space; names of exactly SHK_SHM_NAME_MAX characters and one more, with each character
 * class at its edges. */
/* ctest: labels=unit timeout=60 */
#include <stdint.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

static size_t page_size(void) {
  shk_shm *s = NULL;
  assert_int_equal(shk_shm_create_anonymous(1, &s), SHK_OK);
  size_t page = shk_shm_size(s);
  shk_shm_close(s);
  return page;
}

static void sizes_round_up_to_whole_pages_at_each_edge(void **state) {
  (void)state;
  size_t page = page_size();
  assert_true(page >= 4096 && (page & (page - 1)) == 0);
  const size_t sizes[] = {1, page - 1, page, page + 1, 2 * page};
  const size_t want[] = {page, page, page, 2 * page, 2 * page};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    shk_shm *s = NULL;
    assert_int_equal(shk_shm_create_anonymous(sizes[i], &s), SHK_OK);
    assert_int_equal(shk_shm_size(s), want[i]);
    unsigned char *p = shk_shm_data(s);
    assert_int_equal(p[want[i] - 1], 0); /* zero-filled to the last byte of the last page */
    p[want[i] - 1] = 0x5a;
    shk_shm_close(s);
  }
}

static void the_last_byte_is_shared_between_mappings(void **state) {
  (void)state;
  char name[64];
  shk_test_unique_name(name, sizeof name, "end");
  size_t page = page_size();
  shk_shm *a = NULL, *b = NULL;
  assert_int_equal(shk_shm_create(name, page + 1, &a), SHK_OK);
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_ONLY, &b), SHK_OK);
  assert_int_equal(shk_shm_size(b), shk_shm_size(a));
  unsigned char *pa = shk_shm_data(a);
  const unsigned char *pb = shk_shm_data(b);
  pa[0] = 1;
  pa[page] = 2;
  pa[2 * page - 1] = 3;
  assert_int_equal(pb[0], 1);
  assert_int_equal(pb[page], 2);
  assert_int_equal(pb[2 * page - 1], 3);
  assert_false(shk_shm_writable(b));
  shk_shm_close(b);
  shk_shm_close(a);
  assert_int_equal(shk_shm_unlink(name), SHK_OK);
}

static void find_takes_ranges_up_to_the_last_byte_and_no_further(void **state) {
  (void)state;
  shk_shm *s = NULL;
  assert_int_equal(shk_shm_create_anonymous(1, &s), SHK_OK);
  unsigned char *p = shk_shm_data(s);
  size_t n = shk_shm_size(s);
  shk_shm *found = NULL;
  size_t offset = 1;
  assert_int_equal(shk_shm_find(p, n, &found, &offset), SHK_OK); /* the whole segment */
  assert_ptr_equal(found, s);
  assert_int_equal(offset, 0);
  assert_int_equal(shk_shm_find(p + n - 1, 1, &found, &offset), SHK_OK); /* its last byte */
  assert_int_equal(offset, n - 1);
  assert_int_equal(shk_shm_find(p + n - 2, 2, &found, &offset), SHK_OK);
  assert_int_equal(shk_shm_find(p, n + 1, &found, &offset), SHK_ENOENT); /* one past the end */
  assert_int_equal(shk_shm_find(p + n - 1, 2, &found, &offset), SHK_ENOENT);
  assert_int_equal(shk_shm_find(p + n, 1, &found, &offset), SHK_ENOENT);
  /* an empty range is found where its address lies inside the segment, not one past its end */
  assert_int_equal(shk_shm_find(p, 0, &found, &offset), SHK_OK);
  assert_int_equal(shk_shm_find(p + n - 1, 0, &found, &offset), SHK_OK);
  assert_int_equal(offset, n - 1);
  assert_int_equal(shk_shm_find(p + n, 0, &found, &offset), SHK_ENOENT);
  assert_int_equal(shk_shm_find(p - 1, 1, &found, &offset), SHK_ENOENT); /* one before */
  assert_int_equal(shk_shm_find(p - 1, 2, &found, &offset), SHK_ENOENT);
  /* a range that wraps around the address space */
  assert_int_equal(shk_shm_find(p + 1, SIZE_MAX, &found, &offset), SHK_EINVAL);
  assert_int_equal(shk_shm_find((void *)(UINTPTR_MAX - 1), 1, &found, &offset), SHK_ENOENT);
  assert_int_equal(shk_shm_find((void *)(UINTPTR_MAX - 1), 2, &found, &offset), SHK_EINVAL);
  assert_int_equal(shk_shm_find(p, 1, NULL, &offset), SHK_EINVAL);
  assert_int_equal(shk_shm_find(p, 1, &found, NULL), SHK_EINVAL);
  shk_shm_close(s);
  assert_int_equal(shk_shm_find(p, 1, &found, &offset), SHK_ENOENT); /* closed: gone */
}

static void names_are_checked_at_every_edge(void **state) {
  (void)state;
  char name[SHK_SHM_NAME_MAX + 2];
  memset(name, 'a', sizeof name);
  name[SHK_SHM_NAME_MAX] = '\0';
  assert_int_equal(shk_shm_name_check(name), SHK_OK);
  name[SHK_SHM_NAME_MAX] = 'a';
  name[SHK_SHM_NAME_MAX + 1] = '\0';
  assert_int_equal(shk_shm_name_check(name), SHK_ENAME);
  assert_int_equal(shk_shm_name_check(""), SHK_ENAME);
  assert_int_equal(shk_shm_name_check(NULL), SHK_EINVAL);
  /* the edges of each allowed class, and the characters just outside them */
  const char *good[] = {"A", "Z", "a", "z", "0", "9", "_", "-", "a.", "a.b", "-a", "_a", "9Zz"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    assert_int_equal(shk_shm_name_check(good[i]), SHK_OK);
  const char *bad[] = {".", ".a", "@", "[", "`", "{", "/", ":", "a/b", "a\\b", "a b", "a\x7f",
                       "a\x80", "a\xc3\xa9", "a\n", ",", "+"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (shk_shm_name_check(bad[i]) != SHK_ENAME) {
      print_error("name '%s' was accepted\n", bad[i]);
      fail();
    }
  }
  /* the longest name really works end to end */
  char longest[SHK_SHM_NAME_MAX + 1];
  shk_test_unique_name(longest, sizeof longest, "");
  size_t len = strlen(longest);
  memset(longest + len, 'x', SHK_SHM_NAME_MAX - len);
  longest[SHK_SHM_NAME_MAX] = '\0';
  shk_shm *s = NULL;
  assert_int_equal(shk_shm_create(longest, 1, &s), SHK_OK);
  assert_string_equal(shk_shm_name(s), longest);
  shk_shm_close(s);
  assert_int_equal(shk_shm_unlink(longest), SHK_OK);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(sizes_round_up_to_whole_pages_at_each_edge),
    cmocka_unit_test(the_last_byte_is_shared_between_mappings),
    cmocka_unit_test(find_takes_ranges_up_to_the_last_byte_and_no_further),
    cmocka_unit_test(names_are_checked_at_every_edge),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
