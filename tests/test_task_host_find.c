/* Where a hosted pool finds its worker host (shk__task_host_find): SHK_WORKER_HOST when set,
 * refused unless it names an executable file that fits the caller's buffer (the last length
 * that fits and the first that does not); otherwise the shmkit-worker next to the library, or
 * nothing. */
/* ctest: labels=unit timeout=60 internal */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/task_internal.h"
#include "os.h"
#include "shk_test.h"

static void set_host(const char *value) { shk_test_setenv("SHK_WORKER_HOST", value); }

static void the_variable_names_the_host_when_it_is_an_executable_that_fits(void **state) {
  (void)state;
  char self[1024], exe[1024];
  assert_int_equal(shk__os_self_path(self, sizeof self), SHK_OK);
  size_t len = strlen(self);
  set_host(self);
  memset(exe, 0, sizeof exe);
  assert_int_equal(shk__task_host_find(exe, len + 1), SHK_OK); /* exactly fits */
  assert_string_equal(exe, self);
  assert_int_equal(shk__task_host_find(exe, len), SHK_EUNSUPPORTED); /* one byte short */
  set_host(NULL);
}

static void the_variable_is_refused_when_it_names_no_executable(void **state) {
  (void)state;
  char path[96], exe[1024];
  shk_test_unique_name(path, sizeof path, "host.txt");
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs("not a program", f);
  fclose(f);
  set_host(path);
  int plain_file = shk__task_host_find(exe, sizeof exe);
  remove(path);
  set_host(path); /* gone now */
  int missing = shk__task_host_find(exe, sizeof exe);
  set_host(NULL);
#ifndef _WIN32
  assert_int_equal(plain_file, SHK_EUNSUPPORTED); /* no execute permission */
#else
  (void)plain_file; /* Windows: any existing file counts as executable by name */
#endif
  assert_int_equal(missing, SHK_EUNSUPPORTED);
}

/* Unset (or empty): the worker host next to the module holding the library (here the test
 * program, linked with the internal library: the build's bin/ folder holds shmkit-worker when
 * the tools are built). */
static void without_the_variable_the_host_next_to_the_library_is_found(void **state) {
  (void)state;
  char exe[1024];
  set_host("");
  int rc = shk__task_host_find(exe, sizeof exe);
  set_host(NULL);
  if (rc == SHK_EUNSUPPORTED) {
    print_message("no shmkit-worker next to this test (tools not built): not found, as it should\n");
    return;
  }
  assert_int_equal(rc, SHK_OK);
  const char *suffix = shk__os_caps_get()->exe_suffix;
  size_t n = strlen(exe), s = strlen(suffix), w = strlen("shmkit-worker");
  assert_true(n > w + s);
  assert_memory_equal(exe + n - s - w, "shmkit-worker", w);
  assert_true(shk__os_file_is_executable(exe));
  /* A buffer too small for the path found is never overrun: nothing is found. */
  char small[8];
  assert_int_equal(shk__task_host_find(small, sizeof small), SHK_EUNSUPPORTED);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(the_variable_names_the_host_when_it_is_an_executable_that_fits),
    cmocka_unit_test(the_variable_is_refused_when_it_names_no_executable),
    cmocka_unit_test(without_the_variable_the_host_next_to_the_library_is_found),
};

static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
