/* The worker host: a pool whose workers are shmkit-worker processes running a plugin's exported
 * function, in a program that never calls shk_worker_main() (as a plugin inside a host program
 * would be), and one-call runs in mode SHK_TASK_HOSTED: results, crash isolation, and a clear code
 * for each way the plugin can be wrong. */
/* ctest: labels=unit;multiprocess timeout=300 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

/* Descriptors or handles this process holds, and whether it has a child left (POSIX). */
static long held(void) {
#ifdef _WIN32
  DWORD h = 0;
  GetProcessHandleCount(GetCurrentProcess(), &h);
  return (long)h;
#else
  long n = 0;
  DIR *dir = opendir("/proc/self/fd");
  if (dir) {
    for (struct dirent *e; (e = readdir(dir));) n += e->d_name[0] != '.';
    closedir(dir);
  }
  int status;
  if (waitpid(-1, &status, WNOHANG) != -1) n += 1000; /* a child, reaped or not, is left */
  return n;
#endif
}

#define CHILD_TIMEOUT_MS 120000
#define CHECK(cond) SHK_CHECK(cond)
#define CHILD_TEST(name) SHK_CHILD_TEST(name, CHILD_TIMEOUT_MS)

static void fill(unsigned char *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = (unsigned char)(i * 7u + 3u);
}

/* Every chunk's result is the sum of its bytes (except `crashed`, which crashed). */
static int sums_match(const shk_task_results *r, const unsigned char *d, size_t chunks,
                      size_t crashed) {
  if (shk_task_results_count(r) != chunks) return 0;
  for (size_t i = 0; i < chunks; i++) {
    const shk_task_result *res = shk_task_results_get(r, i);
    if (i == crashed) {
      if (res->status != SHK_TASK_CRASHED) return 0;
      continue;
    }
    uint64_t got, want = 0;
    if (res->status != SHK_TASK_OK || res->size != sizeof got) return 0;
    memcpy(&got, res->data, sizeof got);
    for (size_t k = 0; k < res->length; k++) want += d[res->offset + k];
    if (got != want) return 0;
  }
  return 1;
}

static int local_fn(const shk_task_chunk *c, shk_task_out *out) {
  (void)c;
  (void)out;
  return 0;
}

CHILD_TEST(a_hosted_pool_runs_the_plugin_function_without_the_hook) {
  (void)argc;
  (void)argv;
  size_t size = (size_t)1 << 20;
  unsigned char *data = malloc(size);
  CHECK(data);
  fill(data, size);
  shk_task_pool *pool;
  int rc = shk_task_pool_create_hosted(2, SHK_TEST_PLUGIN, "plugin_sum", &pool);
  if (rc != SHK_OK) fprintf(stderr, "create_hosted: %s\n", shk_error_name(rc));
  CHECK(rc == SHK_OK);
  CHECK(shk_task_pool_workers(pool) == 2);
  shk_task_options o = {0};
  o.chunks = 8;
  shk_task_results *r;
  for (int call = 0; call < 3; call++) {
    CHECK(shk_task_pool_run(pool, data, size, NULL, &o, &r) == SHK_OK);
    CHECK(sums_match(r, data, 8, (size_t)-1));
    shk_task_results_free(r);
  }
  /* Input that lies in a segment is read in place. */
  shk_shm *shm;
  CHECK(shk_shm_create_anonymous(size, &shm) == SHK_OK);
  memcpy(shk_shm_data(shm), data, size);
  CHECK(shk_task_pool_run(pool, shk_shm_data(shm), size, NULL, &o, &r) == SHK_OK);
  CHECK(sums_match(r, data, 8, (size_t)-1));
  shk_task_results_free(r);
  /* A hosted pool runs its plugin's function only. */
  CHECK(shk_task_pool_run(pool, data, size, local_fn, &o, &r) == SHK_EINVAL);
  shk_shm_close(shm);
  shk_task_pool_free(pool);
#ifdef _WIN32
  /* The program never called the hook: its own process pools are refused, hosted ones are not. */
  CHECK(shk_task_pool_create(1, SHK_TASK_PROCESSES, &pool) == SHK_ENOHOOK);
#endif
  free(data);
  return 0;
}

CHILD_TEST(a_crashing_plugin_chunk_is_reported_and_its_worker_replaced) {
  (void)argc;
  (void)argv;
  unsigned char data[4096];
  fill(data, sizeof data);
  shk_task_pool *pool;
  CHECK(shk_task_pool_create_hosted(2, SHK_TEST_PLUGIN, "plugin_crash_on_1", &pool) == SHK_OK);
  shk_task_options o = {0};
  o.chunks = 4;
  for (int call = 0; call < 2; call++) {
    shk_task_results *r;
    CHECK(shk_task_pool_run(pool, data, sizeof data, NULL, &o, &r) == SHK_ECRASHED);
    CHECK(sums_match(r, data, 4, 1));
    CHECK(shk_task_results_get(r, 1)->code == shk_test_access_violation_code());
    shk_task_results_free(r);
  }
  shk_task_pool_free(pool);
  return 0;
}

CHILD_TEST(each_wrong_plugin_gets_its_own_code_before_any_chunk_runs) {
  (void)argc;
  (void)argv;
  shk_task_pool *pool = (shk_task_pool *)1;
  long before = held();
  CHECK(shk_task_pool_create_hosted(2, "shk-no-such-plugin-here", "plugin_sum", &pool) ==
        SHK_ENOENT);
  CHECK(pool == NULL);
  CHECK(shk_task_pool_create_hosted(2, SHK_TEST_PLUGIN, "no_such_function", &pool) == SHK_ENOSYM);
  CHECK(shk_task_pool_create_hosted(2, SHK_TEST_PLUGIN_OTHER_MAJOR, "plugin_sum", &pool) ==
        SHK_EVERSION);
  CHECK(held() == before); /* nothing left behind */
  CHECK(shk_task_pool_create_hosted(2, NULL, "plugin_sum", &pool) == SHK_EINVAL);
  CHECK(shk_task_pool_create_hosted(2, SHK_TEST_PLUGIN, NULL, &pool) == SHK_EINVAL);
  CHECK(shk_task_pool_create_hosted(SHK_TASK_WORKERS_MAX + 1, SHK_TEST_PLUGIN, "plugin_sum", &pool) ==
        SHK_ERANGE);
  /* No worker host where it is looked for. */
#ifdef _WIN32
  _putenv_s("SHK_WORKER_HOST", "C:\\no\\such\\shmkit-worker.exe");
#else
  setenv("SHK_WORKER_HOST", "/no/such/shmkit-worker", 1);
#endif
  CHECK(shk_task_pool_create_hosted(2, SHK_TEST_PLUGIN, "plugin_sum", &pool) == SHK_EUNSUPPORTED);
  CHECK(pool == NULL);
  return 0;
}

/* The one-call form asks for the worker host through its options. */
static shk_task_options hosted(const char *module, const char *function, size_t chunks) {
  shk_task_options o = {0};
  o.mode = SHK_TASK_HOSTED;
  o.module_path = module;
  o.function_name = function;
  o.chunks = chunks;
  o.workers = 2;
  return o;
}

CHILD_TEST(a_hosted_call_runs_the_plugin_function_without_the_hook) {
  (void)argc;
  (void)argv;
  size_t size = (size_t)1 << 20;
  unsigned char *data = malloc(size);
  CHECK(data);
  fill(data, size);
  long before = held();
  shk_task_options o = hosted(SHK_TEST_PLUGIN, "plugin_sum", 8);
  shk_task_results *r;
  for (int call = 0; call < 2; call++) {
    int rc = shk_task_run(data, size, NULL, &o, &r);
    if (rc != SHK_OK) fprintf(stderr, "hosted run: %s\n", shk_error_name(rc));
    CHECK(rc == SHK_OK);
    CHECK(sums_match(r, data, 8, (size_t)-1));
    shk_task_results_free(r);
  }
  /* Input that lies in a segment is read in place; more chunks than workers, and the default. */
  shk_shm *shm;
  CHECK(shk_shm_create_anonymous(size, &shm) == SHK_OK);
  memcpy(shk_shm_data(shm), data, size);
  o.chunks = 13;
  CHECK(shk_task_run(shk_shm_data(shm), size, NULL, &o, &r) == SHK_OK);
  CHECK(sums_match(r, data, 13, (size_t)-1));
  shk_task_results_free(r);
  o.chunks = 0;
  o.workers = 0;
  CHECK(shk_task_run(shk_shm_data(shm), size, NULL, &o, &r) == SHK_OK);
  CHECK(shk_task_results_count(r) >= 1);
  CHECK(sums_match(r, data, shk_task_results_count(r), (size_t)-1));
  shk_task_results_free(r);
  shk_shm_close(shm);
  /* An empty input gives empty chunks, each run by the plugin. */
  o = hosted(SHK_TEST_PLUGIN, "plugin_sum", 3);
  CHECK(shk_task_run(NULL, 0, NULL, &o, &r) == SHK_OK);
  CHECK(sums_match(r, data, 3, (size_t)-1));
  shk_task_results_free(r);
  CHECK(held() == before); /* no process, descriptor or handle left */
  free(data);
  return 0;
}

CHILD_TEST(a_crashing_chunk_of_a_hosted_call_is_reported) {
  (void)argc;
  (void)argv;
  unsigned char data[4096];
  fill(data, sizeof data);
  shk_task_options o = hosted(SHK_TEST_PLUGIN, "plugin_crash_on_1", 4);
  shk_task_results *r;
  CHECK(shk_task_run(data, sizeof data, NULL, &o, &r) == SHK_ECRASHED);
  CHECK(sums_match(r, data, 4, 1));
  CHECK(shk_task_results_get(r, 1)->code == shk_test_access_violation_code());
  shk_task_results_free(r);
  return 0;
}

CHILD_TEST(each_wrong_plugin_of_a_hosted_call_gets_its_own_code_before_any_chunk_runs) {
  (void)argc;
  (void)argv;
  unsigned char data[4096];
  fill(data, sizeof data);
  shk_task_results *r = (shk_task_results *)1;
  long before = held();
  shk_task_options o = hosted("shk-no-such-plugin-here", "plugin_sum", 4);
  CHECK(shk_task_run(data, sizeof data, NULL, &o, &r) == SHK_ENOENT);
  CHECK(r == NULL);
  o = hosted(SHK_TEST_PLUGIN, "no_such_function", 4);
  CHECK(shk_task_run(data, sizeof data, NULL, &o, &r) == SHK_ENOSYM);
  o = hosted(SHK_TEST_PLUGIN_OTHER_MAJOR, "plugin_sum", 4);
  CHECK(shk_task_run(data, sizeof data, NULL, &o, &r) == SHK_EVERSION);
  CHECK(held() == before); /* nothing left behind */
  o = hosted(NULL, "plugin_sum", 4);
  CHECK(shk_task_run(data, sizeof data, NULL, &o, &r) == SHK_EINVAL);
  o = hosted(SHK_TEST_PLUGIN, "", 4);
  CHECK(shk_task_run(data, sizeof data, NULL, &o, &r) == SHK_EINVAL);
  /* The plugin's function, and only that. */
  o = hosted(SHK_TEST_PLUGIN, "plugin_sum", 4);
  CHECK(shk_task_run(data, sizeof data, local_fn, &o, &r) == SHK_EINVAL);
  CHECK(shk_task_run(data, sizeof data, NULL, &o, NULL) == SHK_EINVAL);
  o.workers = SHK_TASK_WORKERS_MAX + 1;
  CHECK(shk_task_run(data, sizeof data, NULL, &o, &r) == SHK_ERANGE);
  /* A pool's plugin is chosen when it is created. */
  shk_task_pool *pool;
  CHECK(shk_task_pool_create(1, SHK_TASK_HOSTED, &pool) == SHK_EINVAL);
  CHECK(shk_task_pool_create(1, SHK_TASK_THREADS, &pool) == SHK_OK);
  o = hosted(SHK_TEST_PLUGIN, "plugin_sum", 4);
  CHECK(shk_task_pool_run(pool, data, sizeof data, local_fn, &o, &r) == SHK_EINVAL);
  shk_task_pool_free(pool);
  /* No worker host where it is looked for. */
#ifdef _WIN32
  _putenv_s("SHK_WORKER_HOST", "C:\\no\\such\\shmkit-worker.exe");
#else
  setenv("SHK_WORKER_HOST", "/no/such/shmkit-worker", 1);
#endif
  CHECK(shk_task_run(data, sizeof data, NULL, &o, &r) == SHK_EUNSUPPORTED);
  CHECK(r == NULL);
  return 0;
}

/* A worker host that refuses its plugin may end before the call hands it the input: the call
 * still reports the plugin's code, not the failed hand-over (it gave SHK_ENOENT about one time
 * in four on 2 cores). Repeated, since the race depends on timing. */
CHILD_TEST(a_refused_plugin_is_reported_however_soon_its_workers_end) {
  (void)argc;
  (void)argv;
  unsigned char data[4096];
  fill(data, sizeof data);
  shk_task_results *r = NULL;
  shk_task_options o = hosted(SHK_TEST_PLUGIN, "no_such_function", 4);
  for (int i = 0; i < 40; i++) CHECK(shk_task_run(data, sizeof data, NULL, &o, &r) == SHK_ENOSYM);
  o = hosted(SHK_TEST_PLUGIN_OTHER_MAJOR, "plugin_sum", 4);
  for (int i = 0; i < 40; i++) CHECK(shk_task_run(data, sizeof data, NULL, &o, &r) == SHK_EVERSION);
  return 0;
}

#ifdef SHK_TEST_NO_WORKER_HOST
/* Built without the tools (SHK_BUILD_TOOLS=OFF): there is no worker host to find. */
static void without_a_worker_host_hosted_pools_are_unsupported(void **state) {
  (void)state;
  shk_task_pool *pool;
  assert_int_equal(shk_task_pool_create_hosted(1, SHK_TEST_PLUGIN, "plugin_sum", &pool),
                   SHK_EUNSUPPORTED);
  shk_task_options o = {0};
  o.mode = SHK_TASK_HOSTED;
  o.module_path = SHK_TEST_PLUGIN;
  o.function_name = "plugin_sum";
  shk_task_results *r;
  assert_int_equal(shk_task_run(NULL, 0, NULL, &o, &r), SHK_EUNSUPPORTED);
}
static const struct CMUnitTest tests[] = {
    cmocka_unit_test(without_a_worker_host_hosted_pools_are_unsupported),
};
#else
static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_hosted_pool_runs_the_plugin_function_without_the_hook),
    cmocka_unit_test(a_crashing_plugin_chunk_is_reported_and_its_worker_replaced),
    cmocka_unit_test(each_wrong_plugin_gets_its_own_code_before_any_chunk_runs),
    cmocka_unit_test(a_hosted_call_runs_the_plugin_function_without_the_hook),
    cmocka_unit_test(a_crashing_chunk_of_a_hosted_call_is_reported),
    cmocka_unit_test(each_wrong_plugin_of_a_hosted_call_gets_its_own_code_before_any_chunk_runs),
    cmocka_unit_test(a_refused_plugin_is_reported_however_soon_its_workers_end),
};
#endif

static const shk_test_child children[] = {
    SHK_TEST_CHILD(a_hosted_pool_runs_the_plugin_function_without_the_hook),
    SHK_TEST_CHILD(a_crashing_plugin_chunk_is_reported_and_its_worker_replaced),
    SHK_TEST_CHILD(each_wrong_plugin_gets_its_own_code_before_any_chunk_runs),
    SHK_TEST_CHILD(a_hosted_call_runs_the_plugin_function_without_the_hook),
    SHK_TEST_CHILD(a_crashing_chunk_of_a_hosted_call_is_reported),
    SHK_TEST_CHILD(each_wrong_plugin_of_a_hosted_call_gets_its_own_code_before_any_chunk_runs),
    SHK_TEST_CHILD(a_refused_plugin_is_reported_however_soon_its_workers_end),
};

/* Never calls shk_worker_main(): the host program of a plugin does not. */
SHK_TEST_MAIN(tests, children)
