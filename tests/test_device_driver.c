/* How the CUDA backend finds its driver, each case in a child process (the driver is loaded
 * once per process): a missing driver means "no device", and the toolkit's stub driver, whose
 * every call fails with CUDA_ERROR_STUB_LIBRARY, is really loaded, all its functions found and
 * cuInit called: the error it gives back is the stub's own. Skipped (visibly) in builds without
 * the CUDA backend. */
/* ctest: labels=unit;multiprocess timeout=60 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#ifdef SHK_TEST_CUDA_STUB
#define CUDA_ERROR_STUB_LIBRARY 34 /* cuda.h's value; the test does not need the toolkit */

/* argv: the driver to load, then the raw error expected ("any" for whatever the OS says). */
static int count_with_driver(int argc, char **argv) {
  if (argc < 2 || setenv("SHK_CUDA_DRIVER", argv[0], 1) != 0) return 2;
  int n = -1;
  int rc = shk_buf_device_count(&n);
  int raw = shk_last_os_error();
  fprintf(stderr, "driver %s: %s, raw error %d, %d devices\n", argv[0], shk_error_name(rc), raw, n);
  if (rc != SHK_ENODEV || n != 0) return 1;
  return strcmp(argv[1], "any") == 0 || raw == atoi(argv[1]) ? 0 : 1;
}

static void a_missing_driver_means_no_device(void **state) {
  (void)state;
  const char *args[] = {"shk-no-such-driver.so", "any"};
  shk_test_run_child_ok("count_with_driver", 2, args, 30000);
}

static void the_stub_driver_is_loaded_and_called(void **state) {
  (void)state;
  char expected[16];
  snprintf(expected, sizeof expected, "%d", CUDA_ERROR_STUB_LIBRARY);
  const char *args[] = {SHK_TEST_CUDA_STUB, expected};
  shk_test_run_child_ok("count_with_driver", 2, args, 30000);
}

static const shk_test_child children[] = {{"count_with_driver", count_with_driver}};
#else
static void skip_without_cuda(void) {
  print_message("built without the CUDA backend (or without the toolkit's stub driver)\n");
  skip();
}
static void a_missing_driver_means_no_device(void **state) {
  (void)state;
  skip_without_cuda();
}
static void the_stub_driver_is_loaded_and_called(void **state) {
  (void)state;
  skip_without_cuda();
}
static const shk_test_child children[] = {{NULL, NULL}};
#endif

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_missing_driver_means_no_device),
    cmocka_unit_test(the_stub_driver_is_loaded_and_called),
};
SHK_TEST_MAIN(tests, children)
