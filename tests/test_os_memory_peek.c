/* The OS layer's look at this process's own memory without faulting (shk__os_memory_peek:
 * process_vm_readv or a pipe on POSIX, ReadProcessMemory on Windows): readable bytes come back,
 * any unreadable byte is SHK_EFAULT with the raw code kept, and nothing faults. The POSIX
 * fallbacks are walked by test_faults_memory; this test runs on both systems. */
/* ctest: labels=unit timeout=60 */
#include <string.h>

#include "shk_test.h"
#include "os.h"

static size_t page(void) { return shk__os_caps_get()->page_size; }

static void readable_bytes_come_back(void **state) {
  (void)state;
  static const char text[] = "bytes to look at";
  char got[sizeof text];
  memset(got, 0, sizeof got);
  assert_int_equal(shk__os_memory_peek(text, got, sizeof text), SHK_OK);
  assert_memory_equal(got, text, sizeof text);
  assert_int_equal(shk__os_memory_peek(NULL, got, 0), SHK_OK); /* nothing to read */
}

/* Two pages: the first readable, the second with no access. */
static void an_unreadable_byte_is_a_fault_reported_not_taken(void **state) {
  (void)state;
  size_t ps = page();
  unsigned char *p = NULL;
  assert_int_equal(shk__os_pages_alloc(2 * ps, false, (void **)&p), SHK_OK);
  memset(p, 0x5A, 2 * ps);
  assert_int_equal(shk__os_protect(p + ps, ps, SHK__OS_PROT_NONE), SHK_OK);
  unsigned char got[16];
  assert_int_equal(shk__os_memory_peek(p + ps - 8, got, 8), SHK_OK); /* the last readable bytes */
  assert_int_equal(got[7], 0x5A);
  assert_int_equal(shk__os_memory_peek(p + ps, got, 1), SHK_EFAULT);   /* the first not */
  assert_int_not_equal(shk_last_os_error(), 0);                         /* the raw code kept */
  assert_int_equal(shk__os_memory_peek(p + ps - 8, got, 16), SHK_EFAULT); /* across the edge */
  assert_int_equal(shk__os_protect(p + ps, ps, SHK__OS_PROT_READ_WRITE), SHK_OK);
  assert_int_equal(shk__os_memory_peek(p + ps - 8, got, 16), SHK_OK);
  shk__os_pages_free(p, 2 * ps);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(readable_bytes_come_back),
    cmocka_unit_test(an_unreadable_byte_is_a_fault_reported_not_taken),
};

static const shk_test_child children[] = {{"none", NULL}};

int main(int argc, char **argv) {
  return shk_test_main(argc, argv, __FILE__, tests, sizeof tests / sizeof tests[0], children, 0);
}
