/* The six worked examples of Task::MemManager's documentation, ported to C, each checking what
 * the Perl example prints. */
/* ctest: labels=unit timeout=60 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

/* What the Perl death stubs print, collected instead. */
static char log_text[1024];

static void say(const char *fmt, uint64_t a, size_t b) {
  size_t n = strlen(log_text);
  snprintf(log_text + n, sizeof log_text - n, fmt, (unsigned long long)a, (unsigned long long)b);
}

static void death_stub(const shk_buf_info *info, void *user) {
  (void)user;
  say("destroyed %llu (%llu bytes);", info->id, info->size);
}

static shk_buf *make(size_t count, size_t item, const char *allocator, bool delayed) {
  shk_buf *buf = NULL;
  shk_buf_options o = {.allocator = allocator, .init = SHK_BUF_INIT_BYTE, .init_byte = 'A',
                       .on_destroy = death_stub, .delayed_free = delayed};
  assert_int_equal(shk_buf_create(count, item, &o, &buf), SHK_OK);
  return buf;
}

static int setup(void **state) {
  (void)state;
  log_text[0] = '\0';
  return 0;
}

/* 1. Allocate buffers with two allocators and destroy them; each death stub reports. */
static void example_allocate_and_destroy_with_destroy_callbacks(void **state) {
  (void)state;
  shk_buf *a = make(10, 1, "heap", false);
  shk_buf *b = make(20, 1, "aligned", false);
  uint64_t ida = shk_buf_id(a), idb = shk_buf_id(b);
  shk_buf_release(b);
  shk_buf_release(a);
  char want[256];
  snprintf(want, sizeof want, "destroyed %llu (20 bytes);destroyed %llu (10 bytes);",
           (unsigned long long)idb, (unsigned long long)ida);
  assert_string_equal(log_text, want);
}

/* 2. Extract a region and print it as hex. */
static void example_extract_a_region_and_print_it_as_hex(void **state) {
  (void)state;
  shk_buf *buf = make(16, 1, NULL, false);
  memcpy(shk_buf_data(buf), "Hello, shmkit!!!", 16);
  unsigned char region[5];
  assert_int_equal(shk_buf_region_copy(buf, 7, 12, region, sizeof region), SHK_OK);
  char hex[11];
  for (int i = 0; i < 5; i++) snprintf(hex + 2 * i, 3, "%02x", region[i]);
  assert_string_equal(hex, "73686d6b69"); /* "shmki" */
  shk_buf_release(buf);
}

/* 3. A second reference keeps the buffer alive after the first is released. */
static void example_a_second_reference_keeps_the_buffer_alive(void **state) {
  (void)state;
  shk_buf *first = make(8, 1, NULL, false);
  shk_buf *second = first;
  shk_buf_retain(second);
  shk_buf_release(first);
  assert_string_equal(log_text, "");
  assert_int_equal(((unsigned char *)shk_buf_data(second))[7], 'A');
  shk_buf_release(second);
  assert_non_null(strstr(log_text, "(8 bytes)"));
}

/* 4. Replacing a buffer destroys the old one at once. */
static void example_replacing_a_buffer_destroys_the_old_one_at_once(void **state) {
  (void)state;
  shk_buf *buffer = make(4, 1, NULL, false);
  uint64_t old_id = shk_buf_id(buffer);
  shk_buf_assign(&buffer, make(6, 1, NULL, false));
  char want[64];
  snprintf(want, sizeof want, "destroyed %llu (4 bytes);", (unsigned long long)old_id);
  assert_string_equal(log_text, want);
  shk_buf_assign(&buffer, NULL);
  assert_non_null(strstr(log_text, "(6 bytes)"));
}

/* 5. Delayed free: still alive after release; the stub runs when it is freed (or at shutdown). */
static void example_delayed_free_runs_callbacks_when_freed(void **state) {
  (void)state;
  shk_buf *kept = make(3, 1, NULL, true);
  shk_buf *later = make(5, 1, NULL, true);
  unsigned char *p = shk_buf_data(kept);
  shk_buf_release(kept);
  shk_buf_release(later);
  assert_string_equal(log_text, "");
  assert_int_equal(p[2], 'A');
  size_t count = 0;
  uint64_t ids[2];
  assert_int_equal(shk_buf_deferred_list(ids, 2, &count), SHK_OK);
  assert_int_equal(count, 2);
  assert_int_equal(shk_buf_free_deferred(ids[0]), SHK_OK);
  assert_non_null(strstr(log_text, "(3 bytes)"));
  assert_null(strstr(log_text, "(5 bytes)"));
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  assert_non_null(strstr(log_text, "(5 bytes)"));
}

/* 6. Consume external memory; overlapping ranges (containment included) are refused; nothing is
 * freed twice. */
static void example_consume_and_refuse_overlaps_without_double_free(void **state) {
  (void)state;
  unsigned char *external = malloc(100);
  memset(external, 'E', 100);
  shk_buf *whole = NULL, *inner = (shk_buf *)1, *outer = (shk_buf *)1;
  shk_buf_options o = {.on_destroy = death_stub};
  assert_int_equal(shk_buf_consume(external + 10, 10, 1, &o, &whole), SHK_OK);
  assert_int_equal(shk_buf_consume(external + 12, 2, 1, &o, &inner), SHK_EOVERLAP);
  assert_int_equal(shk_buf_consume(external, 100, 1, &o, &outer), SHK_EOVERLAP);
  assert_null(inner);
  assert_null(outer);
  assert_int_equal(((unsigned char *)shk_buf_data(whole))[0], 'E');
  shk_buf_release(whole);
  assert_non_null(strstr(log_text, "(10 bytes)"));
  free(external); /* the caller still owned it: freed exactly once, here */
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(example_allocate_and_destroy_with_destroy_callbacks, setup),
    cmocka_unit_test_setup(example_extract_a_region_and_print_it_as_hex, setup),
    cmocka_unit_test_setup(example_a_second_reference_keeps_the_buffer_alive, setup),
    cmocka_unit_test_setup(example_replacing_a_buffer_destroys_the_old_one_at_once, setup),
    cmocka_unit_test_setup(example_delayed_free_runs_callbacks_when_freed, setup),
    cmocka_unit_test_setup(example_consume_and_refuse_overlaps_without_double_free, setup),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
