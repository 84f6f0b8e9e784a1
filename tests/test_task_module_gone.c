/* A chunk function in a module that the caller loaded after its pool's workers started, whose
 * file is gone when they need it (removed or replaced on disk): the workers cannot load it by its
 * path, so each chunk ends SHK_TASK_FAILED with code SHK_ENOENT (the call SHK_ECHUNK, with
 * results, as task.h says), and the pool runs other functions as before. POSIX: a loaded DLL's
 * file cannot be removed on Windows; there, and in builds without the test plugin, the test says
 * why and skips. */
/* ctest: labels=unit;multiprocess timeout=60 */
#include <stdio.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#if !defined(_WIN32) && defined(SHK_TEST_PLUGIN)
#include <dlfcn.h>
#include <unistd.h>

#define CHILD_TIMEOUT_MS 30000

static int sum_chunk(const shk_task_chunk *chunk, shk_task_out *out) {
  uint64_t sum = 0;
  for (size_t i = 0; i < chunk->size; i++) sum += ((const unsigned char *)chunk->data)[i];
  return shk_task_out_write(out, &sum, sizeof sum);
}

static unsigned char input[4096];

/* Copies the test plugin to a path of this test (absolute: dlopen searches no further). */
static int copy_plugin(char *path, size_t size) {
  char name[96], cwd[400];
  SHK_CHECK(getcwd(cwd, sizeof cwd) != NULL);
  snprintf(path, size, "%s/%s", cwd, shk_test_unique_name(name, sizeof name, "gone.so"));
  FILE *from = fopen(SHK_TEST_PLUGIN, "rb"), *to = fopen(path, "wb");
  SHK_CHECK(from && to);
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, from)) > 0) SHK_CHECK(fwrite(buf, 1, n, to) == n);
  fclose(from);
  SHK_CHECK(fclose(to) == 0);
  return 0;
}

SHK_CHILD_TEST(chunks_fail_with_enoent_when_the_function_module_is_gone, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  memset(input, 1, sizeof input);
  shk_task_pool *pool = NULL;
  SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &pool) == SHK_OK);
  /* Loaded now, after the workers were forked, then removed. */
  char path[512];
  int line = copy_plugin(path, sizeof path);
  if (line) return line;
  void *module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  SHK_CHECK(module != NULL);
  void *sym = dlsym(module, "plugin_sum");
  SHK_CHECK(sym != NULL);
  shk_task_fn fn;
  memcpy(&fn, &sym, sizeof fn);
  SHK_CHECK(remove(path) == 0);
  shk_task_options o;
  shk_task_options_init(&o);
  o.chunks = 4;
  shk_task_results *results = NULL;
  SHK_CHECK(shk_task_pool_run(pool, input, sizeof input, fn, &o, &results) == SHK_ECHUNK);
  SHK_CHECK(results != NULL && shk_task_results_count(results) == 4);
  for (size_t i = 0; i < 4; i++) {
    const shk_task_result *r = shk_task_results_get(results, i);
    SHK_CHECK(r->status == SHK_TASK_FAILED && r->code == SHK_ENOENT && r->size == 0);
  }
  shk_task_results_free(results);
  /* The same pool, a function of the program: every chunk as usual. */
  SHK_CHECK(shk_task_pool_run(pool, input, sizeof input, sum_chunk, &o, &results) == SHK_OK);
  uint64_t total = 0;
  for (size_t i = 0; i < 4; i++) {
    uint64_t sum;
    memcpy(&sum, shk_task_results_get(results, i)->data, sizeof sum);
    total += sum;
  }
  shk_task_results_free(results);
  SHK_CHECK(total == sizeof input);
  shk_task_pool_free(pool);
  dlclose(module);
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(chunks_fail_with_enoent_when_the_function_module_is_gone),
};
static const shk_test_child children[] = {
    SHK_TEST_CHILD(chunks_fail_with_enoent_when_the_function_module_is_gone),
};
#else
static void module_cannot_go_here_skipped(void **state) {
  (void)state;
  print_message("no test plugin in this build, or (Windows) a loaded module's file cannot be "
                "removed: nothing to test\n");
  skip();
}
static const struct CMUnitTest tests[] = {cmocka_unit_test(module_cannot_go_here_skipped)};
static const shk_test_child children[] = {{NULL, NULL}};
#endif

SHK_TEST_MAIN(tests, children)
