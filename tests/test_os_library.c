/* The OS layer's shared-library loader: a system library and one of its functions, clear
 * failures for what is missing, and the shared shmkit itself loaded at run time, as language
 * bindings and plugin hosts load it (a library with too much static TLS fails exactly there). */
/* ctest: labels=unit timeout=60 */
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "os.h"
#include "shmkit.h"

#ifdef _WIN32
#include <process.h>
#define SYSTEM_LIBRARY "kernel32.dll"
#define SYSTEM_FUNCTION "GetCurrentProcessId"
typedef unsigned long(__stdcall *system_fn)(void);
static int system_fn_works(system_fn fn) { return fn() == (unsigned long)_getpid(); }
#else
#define SYSTEM_LIBRARY "libm.so.6"
#define SYSTEM_FUNCTION "cos"
typedef double (*system_fn)(double);
static int system_fn_works(system_fn fn) { return fn(0.0) == 1.0; }
#endif

static void a_system_library_gives_a_working_function(void **state) {
  (void)state;
  shk__os_library *lib = NULL;
  assert_int_equal(shk__os_library_open(SYSTEM_LIBRARY, true, &lib), SHK_OK);
  assert_non_null(lib);
  shk__os_function fn = shk__os_library_function(lib, SYSTEM_FUNCTION);
  assert_non_null(fn);
  assert_true(system_fn_works((system_fn)fn));
  shk__os_library_close(lib);
}

static void what_is_missing_is_reported(void **state) {
  (void)state;
  shk__os_library *lib = (shk__os_library *)1;
  assert_int_equal(shk__os_library_open("shk-no-such-library-here", false, &lib), SHK_ENOENT);
  assert_null(lib);
  assert_int_equal(shk__os_library_open(SYSTEM_LIBRARY, true, &lib), SHK_OK);
  assert_null(shk__os_library_function(lib, "shk_no_such_function"));
  shk__os_library_close(lib);
  shk__os_library_close(NULL); /* accepted */
  /* A name past any path limit: the UTF-16 conversion refuses it on Windows, the loader on
   * POSIX; either way nothing is loaded. */
  static char long_name[5000];
  memset(long_name, 'a', sizeof long_name - 1);
  lib = (shk__os_library *)1;
#ifdef _WIN32
  assert_int_equal(shk__os_library_open(long_name, false, &lib), SHK_ENAME);
#else
  assert_int_equal(shk__os_library_open(long_name, false, &lib), SHK_ENOENT);
#endif
  assert_null(lib);
}

typedef const char *(*version_fn)(void);
typedef int (*create_fn)(size_t, size_t, const shk_buf_options *, shk_buf **);
typedef void (*release_fn)(shk_buf *);

static void the_shared_shmkit_loads_at_run_time(void **state) {
  (void)state;
#ifndef SHK_TEST_SHARED_LIBRARY
  print_message("a static build: there is no shared shmkit to load\n");
  skip();
#else
#ifdef _WIN32
  /* Beside the test, not in System32: a system-only search must not take it (asked before it
   * is loaded, as a loaded module is found by name whatever the search). */
  shk__os_library *planted = (shk__os_library *)1;
  assert_int_equal(shk__os_library_open(SHK_TEST_SHARED_LIBRARY, true, &planted), SHK_ENOENT);
  assert_null(planted);
#endif
  shk__os_library *lib = NULL;
  int rc = shk__os_library_open(SHK_TEST_SHARED_LIBRARY, false, &lib);
  if (rc != SHK_OK) print_message("cannot load %s\n", SHK_TEST_SHARED_LIBRARY);
  assert_int_equal(rc, SHK_OK);
  version_fn version = (version_fn)shk__os_library_function(lib, "shk_version_string");
  assert_non_null(version);
  assert_string_equal(version(), SHK_VERSION_STRING);
  /* Its thread-local state works in the loaded copy too: a buffer made and parked there. */
  create_fn create = (create_fn)shk__os_library_function(lib, "shk_buf_create");
  release_fn release = (release_fn)shk__os_library_function(lib, "shk_buf_release");
  assert_non_null(create);
  assert_non_null(release);
  shk_buf *buf = NULL;
  assert_int_equal(create(64, 1, NULL, &buf), SHK_OK);
  release(buf);
  /* Not closed: the library pins itself once a thread has state in it (see os.h). */
#endif
}

static int local_function(void) { return 42; }

static void the_module_of_an_address_is_found_and_code_made_at_run_time_is_in_none(void **state) {
  (void)state;
  /* This program's own function lies in the main program. */
  int (*fn)(void) = local_function;
  void *addr;
  memcpy(&addr, &fn, sizeof addr);
  shk__os_module mod;
  assert_int_equal(shk__os_module_of(addr, &mod), SHK_OK);
  assert_true(mod.base != 0 && mod.base <= (uintptr_t)addr);
  assert_true((uintptr_t)addr - mod.base < mod.size);
  assert_true(mod.path[0] != '\0');
  /* A system library's function lies in that library, which its handle names too. */
  shk__os_library *lib = NULL;
  assert_int_equal(shk__os_library_open(SYSTEM_LIBRARY, true, &lib), SHK_OK);
  shk__os_function sys = shk__os_library_function(lib, SYSTEM_FUNCTION);
  memcpy(&addr, &sys, sizeof addr);
  shk__os_module of_fn, of_lib;
  assert_int_equal(shk__os_module_of(addr, &of_fn), SHK_OK);
  assert_int_equal(shk__os_library_module(lib, &of_lib), SHK_OK);
  assert_true(of_fn.base == of_lib.base);
  assert_string_equal(of_fn.path, of_lib.path);
  assert_true((uintptr_t)addr - of_lib.base < of_lib.size);
  shk__os_library_close(lib);
  /* Heap memory (as a JIT's or a closure's code) is in no module. */
  void *heap = malloc(64);
  assert_int_equal(shk__os_module_of(heap, &mod), SHK_ENOENT);
  assert_int_equal(shk__os_module_of(NULL, &mod), SHK_ENOENT);
  free(heap);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(the_module_of_an_address_is_found_and_code_made_at_run_time_is_in_none),
    cmocka_unit_test(a_system_library_gives_a_working_function),
    cmocka_unit_test(what_is_missing_is_reported),
    cmocka_unit_test(the_shared_shmkit_loads_at_run_time),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
