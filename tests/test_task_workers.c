/* Pool workers as processes: a worker that died while its pool was idle is replaced by the next
 * call whatever that call hands the workers (a new input, a larger copy), a pool outlives the
 * thread that created it, workers hold only their link and their segments, a task call starts
 * with no OS error recorded, and functions made at run time run where workers can reach them. */
/* ctest: labels=unit;multiprocess timeout=300 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#define CHILD_TIMEOUT_MS 120000


/* Writes its process id and the sum of its chunk's bytes. */
static int pid_sum_fn(const shk_task_chunk *c, shk_task_out *out) {
#ifdef _WIN32
  uint64_t v[2] = {GetCurrentProcessId(), 0};
#else
  uint64_t v[2] = {(uint64_t)getpid(), 0};
#endif
  const unsigned char *d = c->data;
  for (size_t i = 0; i < c->size; i++) v[1] += d[i];
  return shk_task_out_write(out, v, sizeof v);
}

/* Runs pid_sum_fn over data on the pool (NULL: one call on two fresh workers) and checks every
 * chunk's sum; writes the worker pids seen. */
static int run_and_check(shk_task_pool *pool, const unsigned char *data, size_t size,
                         size_t chunks, uint64_t *pids) {
  shk_task_options o = {0};
  o.chunks = chunks;
  o.workers = 2; /* the one-call form (NULL pool) */
  shk_task_results *r = NULL;
  int rc = pool ? shk_task_pool_run(pool, data, size, pid_sum_fn, &o, &r)
                : shk_task_run(data, size, pid_sum_fn, &o, &r);
  if (rc != SHK_OK) {
    fprintf(stderr, "pool run: %s\n", shk_error_name(rc));
    shk_task_results_free(r);
    return 0;
  }
  for (size_t i = 0; i < chunks; i++) {
    const shk_task_result *res = shk_task_results_get(r, i);
    uint64_t v[2], want = 0;
    if (res->status != SHK_TASK_OK || res->size != sizeof v) {
      shk_task_results_free(r);
      return 0;
    }
    memcpy(v, res->data, sizeof v);
    for (size_t k = 0; k < res->length; k++) want += data[res->offset + k];
    if (v[1] != want) {
      shk_task_results_free(r);
      return 0;
    }
    if (pids) pids[i] = v[0];
  }
  shk_task_results_free(r);
  return 1;
}

static void fill(unsigned char *d, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) d[i] = (unsigned char)(i * 31u + seed);
}

/* Defect 1: a worker killed while the pool is idle, then calls that hand the workers a new
 * segment: a larger copy (the staging segment grows), a caller's segment, the same again. */
SHK_CHILD_TEST(a_worker_killed_while_idle_is_replaced_when_the_input_changes, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  shk_task_pool *pool;
  SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &pool) == SHK_OK);
  size_t big = (size_t)4 << 20;
  unsigned char *data = malloc(big);
  SHK_CHECK(data);
  fill(data, big, 1);
  uint64_t pids[4];
  SHK_CHECK(run_and_check(pool, data, 4096, 4, pids));
  for (int round = 0; round < 3; round++) {
    /* Kill the worker that ran chunk 0; the next input does not fit the staging copy. */
    SHK_CHECK(shk_test_kill_child(pids[0]));
    size_t size = (size_t)(64 * 1024) << (round * 2);
    fill(data, size, (unsigned)round + 2);
    SHK_CHECK(run_and_check(pool, data, size, 4, pids));
    /* And again with the same copy size (the staging segment already grown). */
    SHK_CHECK(shk_test_kill_child(pids[1]));
    SHK_CHECK(run_and_check(pool, data, size, 4, pids));
  }
  /* A caller's segment, new to the workers. */
  shk_shm *shm;
  SHK_CHECK(shk_shm_create_anonymous(big, &shm) == SHK_OK);
  fill(shk_shm_data(shm), big, 9);
  SHK_CHECK(shk_test_kill_child(pids[0]));
  SHK_CHECK(run_and_check(pool, shk_shm_data(shm), big, 4, pids));
  SHK_CHECK(shk_test_kill_child(pids[2]));
  SHK_CHECK(run_and_check(pool, shk_shm_data(shm), big, 4, pids));
  /* Both workers gone at once. */
  SHK_CHECK(shk_test_kill_child(pids[0]));
  if (pids[1] != pids[0]) SHK_CHECK(shk_test_kill_child(pids[1]));
  else SHK_CHECK(shk_test_kill_child(pids[3]));
  SHK_CHECK(run_and_check(pool, data, big, 4, pids));
  shk_shm_close(shm);
  shk_task_pool_free(pool);
  free(data);
  return 0;
}

#ifdef _WIN32
static DWORD WINAPI create_pool_thread(void *p) {
  return shk_task_pool_create(2, SHK_TASK_PROCESSES, p) == SHK_OK ? 0 : 1;
}
#else
static void *create_pool_thread(void *p) {
  return shk_task_pool_create(2, SHK_TASK_PROCESSES, p) == SHK_OK ? NULL : p;
}
#endif

/* Creates a pool on a thread that then ends (on Linux its workers die with that thread). */
static int pool_from_ended_thread(shk_task_pool **pool) {
#ifdef _WIN32
  HANDLE t = CreateThread(NULL, 0, create_pool_thread, pool, 0, NULL);
  if (!t) return 0;
  DWORD code = 1;
  WaitForSingleObject(t, INFINITE);
  GetExitCodeThread(t, &code);
  CloseHandle(t);
  return code == 0;
#else
  pthread_t t;
  void *ret = pool;
  if (pthread_create(&t, NULL, create_pool_thread, pool) != 0) return 0;
  pthread_join(t, &ret);
  return ret == NULL;
#endif
}

SHK_CHILD_TEST(a_pool_created_by_a_thread_that_ended_still_serves, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  unsigned char data[8192];
  fill(data, sizeof data, 3);
  for (int kind = 0; kind < 2; kind++) {
    shk_task_pool *pool = NULL;
    SHK_CHECK(pool_from_ended_thread(&pool));
    shk_shm *shm = NULL;
    const unsigned char *in = data;
    if (kind == 1) {
      SHK_CHECK(shk_shm_create_anonymous(sizeof data, &shm) == SHK_OK);
      memcpy(shk_shm_data(shm), data, sizeof data);
      in = shk_shm_data(shm);
    }
    for (int call = 0; call < 3; call++) SHK_CHECK(run_and_check(pool, in, sizeof data, 4, NULL));
    shk_task_pool_free(pool);
    shk_shm_close(shm);
  }
  return 0;
}

/* A descriptor of the caller's and the object it names (the number alone could be reused in
 * the worker, by valgrind for one). */
typedef struct held_fd {
  int64_t fd;
  uint64_t dev, ino;
} held_fd;

/* Writes 1 for each of the caller's descriptors (argument bytes) that is open in the worker. */
static int holds_fn(const shk_task_chunk *c, shk_task_out *out) {
  uint64_t held = 0;
#ifndef _WIN32
  for (size_t i = 0; i + sizeof(held_fd) <= c->arg_size; i += sizeof(held_fd)) {
    held_fd h;
    struct stat st;
    memcpy(&h, (const char *)c->arg + i, sizeof h);
    held += fstat((int)h.fd, &st) == 0 && (uint64_t)st.st_dev == h.dev && (uint64_t)st.st_ino == h.ino;
  }
#else
  (void)c;
#endif
  return shk_task_out_write(out, &held, sizeof held);
}

/* Whether the read end reports end of file within 10 s (it never does while a worker holds the
 * write end). */
static int sees_end_of_file(intptr_t read_end) {
#ifdef _WIN32
  for (int i = 0; i < 1000; i++) {
    DWORD avail = 0;
    if (!PeekNamedPipe((HANDLE)read_end, NULL, 0, NULL, &avail, NULL))
      return GetLastError() == ERROR_BROKEN_PIPE;
    Sleep(10);
  }
  return 0;
#else
  struct pollfd p = {(int)read_end, POLLIN, 0};
  char c;
  return poll(&p, 1, 10000) == 1 && read((int)read_end, &c, 1) == 0;
#endif
}

static void close_end(intptr_t end) {
#ifdef _WIN32
  CloseHandle((HANDLE)end);
#else
  close((int)end);
#endif
}

/* Defect 3: a pipe whose write end the caller closes sees end of file while a pool exists. */
SHK_CHILD_TEST(workers_hold_none_of_the_callers_descriptors, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  for (int shape = 0; shape < 2; shape++) {
    intptr_t ends[2];
#ifdef _WIN32
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE}; /* inheritable, the worst case */
    HANDLE r, w;
    SHK_CHECK(CreatePipe(&r, &w, &sa, 0));
    ends[0] = (intptr_t)r;
    ends[1] = (intptr_t)w;
#else
    int fds[2];
    SHK_CHECK(pipe(fds) == 0); /* no close-on-exec, the worst case */
    ends[0] = fds[0];
    ends[1] = fds[1];
#endif
    shk_task_pool *pool;
    SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &pool) == SHK_OK);
    shk_task_options o = {0};
    o.chunks = 2;
    held_fd pass[2];
    memset(pass, 0, sizeof pass);
    for (int k = 0; k < 2; k++) {
      pass[k].fd = ends[k];
#ifndef _WIN32
      struct stat st;
      SHK_CHECK(fstat((int)ends[k], &st) == 0);
      pass[k].dev = (uint64_t)st.st_dev;
      pass[k].ino = (uint64_t)st.st_ino;
#endif
    }
    o.arg = pass;
    o.arg_size = sizeof pass;
    shk_task_results *res;
    if (shape == 1) { /* the one-call form's workers too, while they run */
      SHK_CHECK(shk_task_run("ab", 2, holds_fn, &o, &res) == SHK_OK);
    } else {
      SHK_CHECK(shk_task_pool_run(pool, "ab", 2, holds_fn, &o, &res) == SHK_OK);
    }
    for (size_t i = 0; i < 2; i++) {
      uint64_t held;
      memcpy(&held, shk_task_results_get(res, i)->data, sizeof held);
      SHK_CHECK(held == 0);
    }
    shk_task_results_free(res);
    close_end(ends[1]);
    SHK_CHECK(sees_end_of_file(ends[0]));
    shk_task_pool_free(pool);
    close_end(ends[0]);
  }
  return 0;
}

/* Defect 6: shk_last_os_error() never describes a failure older than the task call. */
SHK_CHILD_TEST(a_task_call_starts_with_no_os_error_recorded, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  char name[64];
  shk_shm *shm;
  SHK_CHECK(shk_shm_open(shk_test_unique_name(name, sizeof name, "none"), SHK_SHM_READ_ONLY,
                         &shm) == SHK_ENOENT);
  SHK_CHECK(shk_last_os_error() != 0);
  shk_task_pool *pool;
  SHK_CHECK(shk_task_pool_create(1, SHK_TASK_THREADS, &pool) == SHK_OK);
  SHK_CHECK(shk_last_os_error() == 0);
  SHK_CHECK(shk_shm_open(name, SHK_SHM_READ_ONLY, &shm) == SHK_ENOENT);
  SHK_CHECK(run_and_check(pool, (const unsigned char *)"abcd", 4, 2, NULL));
  SHK_CHECK(shk_last_os_error() == 0);
  SHK_CHECK(shk_shm_open(name, SHK_SHM_READ_ONLY, &shm) == SHK_ENOENT);
  shk_task_results *r;
  SHK_CHECK(shk_task_run("abcd", 4, pid_sum_fn, NULL, &r) == SHK_OK);
  SHK_CHECK(shk_last_os_error() == 0);
  shk_task_results_free(r);
  shk_task_pool_free(pool);
  return 0;
}

/* ---- functions made at run time ------------------------------------------------------ */

#define JIT_CODE 1234

/* Machine code of a chunk function that returns JIT_CODE, in a fresh executable page (as a
 * libffi closure or a JIT makes): lies in no module. NULL where the architecture is not known
 * here or the system refuses executable pages. */
static shk_task_fn make_jit_fn(void **page_out) {
#if defined(__x86_64__) || defined(_M_X64)
  static const unsigned char code[] = {0xB8, JIT_CODE & 0xFF, JIT_CODE >> 8, 0, 0, 0xC3}; /* mov eax, imm; ret */
#elif defined(__aarch64__)
  static const unsigned char code[] = {0x40, 0x9A, 0x80, 0x52, 0xC0, 0x03, 0x5F, 0xD6}; /* mov w0, #1234; ret */
#else
  static const unsigned char code[1] = {0};
  (void)code;
  *page_out = NULL;
  return NULL;
#endif
#if defined(__x86_64__) || defined(_M_X64) || defined(__aarch64__)
  void *page;
#ifdef _WIN32
  page = VirtualAlloc(NULL, 4096, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
  if (!page) return NULL;
  memcpy(page, code, sizeof code);
  DWORD old;
  if (!VirtualProtect(page, 4096, PAGE_EXECUTE_READ, &old)) return NULL;
  FlushInstructionCache(GetCurrentProcess(), page, sizeof code);
#else
  page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return NULL;
  memcpy(page, code, sizeof code);
  if (mprotect(page, 4096, PROT_READ | PROT_EXEC) != 0) return NULL;
  __builtin___clear_cache((char *)page, (char *)page + sizeof code);
#endif
  *page_out = page;
  shk_task_fn fn;
  memcpy(&fn, &page, sizeof fn);
  return fn;
#endif
}

static void free_jit_fn(void *page) {
#ifdef _WIN32
  VirtualFree(page, 0, MEM_RELEASE);
#else
  munmap(page, 4096);
#endif
}

/* Every chunk ran the function (it returns JIT_CODE, so each "failed" with that code). */
static int ran_everywhere(int rc, shk_task_results *r, size_t chunks) {
  if (rc != SHK_ECHUNK || shk_task_results_count(r) != chunks) return 0;
  for (size_t i = 0; i < chunks; i++) {
    const shk_task_result *res = shk_task_results_get(r, i);
    if (res->status != SHK_TASK_FAILED || res->code != JIT_CODE) return 0;
  }
  return 1;
}

/* Item 8 of issue 11: a function in no module runs where workers can reach it (POSIX: workers
 * forked after it existed: a fresh call, a pool created after it) and is refused with
 * SHK_EUNSUPPORTED where they cannot (an older pool's chunks; Windows, before any chunk). */
SHK_CHILD_TEST(a_function_made_at_run_time_runs_where_workers_can_reach_it, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  shk_task_pool *older;
  SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &older) == SHK_OK);
  void *page = NULL;
  shk_task_fn fn = make_jit_fn(&page);
  if (!fn) {
    fprintf(stderr, "no executable page here: skipped\n");
    shk_task_pool_free(older);
    return 0;
  }
  shk_task_options o = {0};
  o.chunks = 4;
  o.workers = 2;
  shk_task_results *r = NULL;
  int rc;
  /* Threads always reach it. */
  o.mode = SHK_TASK_THREADS;
  rc = shk_task_run("abcd", 4, fn, &o, &r);
  SHK_CHECK(ran_everywhere(rc, r, 4));
  shk_task_results_free(r);
  o.mode = SHK_TASK_PROCESSES;
  rc = shk_task_run("abcd", 4, fn, &o, &r);
#ifdef _WIN32
  SHK_CHECK(rc == SHK_EUNSUPPORTED && r == NULL);
  shk_task_pool *newer;
  SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &newer) == SHK_OK);
  SHK_CHECK(shk_task_pool_run(newer, "abcd", 4, fn, &o, &r) == SHK_EUNSUPPORTED && r == NULL);
  shk_task_pool_free(newer);
#else
  SHK_CHECK(ran_everywhere(rc, r, 4));
  shk_task_results_free(r);
  shk_task_pool *newer;
  SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &newer) == SHK_OK);
  for (int call = 0; call < 3; call++) {
    rc = shk_task_pool_run(newer, "abcd", 4, fn, &o, &r);
    SHK_CHECK(ran_everywhere(rc, r, 4));
    shk_task_results_free(r);
  }
  shk_task_pool_free(newer);
  /* The older pool's workers were forked before the page existed. */
  SHK_CHECK(shk_task_pool_run(older, "abcd", 4, fn, &o, &r) == SHK_ECHUNK);
  for (size_t i = 0; i < 4; i++) {
    const shk_task_result *res = shk_task_results_get(r, i);
    SHK_CHECK(res->status == SHK_TASK_FAILED && res->code == SHK_EUNSUPPORTED);
  }
  shk_task_results_free(r);
#endif
  /* The older pool still serves functions it can reach. */
  SHK_CHECK(run_and_check(older, (const unsigned char *)"abcd", 4, 4, NULL));
  shk_task_pool_free(older);
  free_jit_fn(page);
  return 0;
}

/* Crashes on chunk 1; writes 3 MiB on chunk 2 when the argument says so; waits long on chunk 3
 * when the argument says so; else as pid_sum_fn. */
static int awkward_fn(const shk_task_chunk *c, shk_task_out *out) {
  char mode = c->arg_size ? *(const char *)c->arg : 'n';
  if (mode == 'c' && c->index == 1) abort();
  if (mode == 'b' && c->index == 2) {
    static unsigned char big[(size_t)3 << 20];
    memset(big, 0xA5, sizeof big);
    return shk_task_out_write(out, big, sizeof big);
  }
  if (mode == 't' && c->index == 3) {
#ifdef _WIN32
    Sleep(60000);
#else
    sleep(60);
#endif
  }
  return pid_sum_fn(c, out);
}

static int awkward_run(const unsigned char *data, size_t size, char mode, unsigned workers) {
  shk_task_options o = {0};
  o.chunks = 4;
  o.workers = workers;
  o.arg = &mode;
  o.arg_size = 1;
  o.timeout_ms = mode == 't' ? 300 : 0;
  shk_task_results *r = NULL;
  int rc = shk_task_run(data, size, awkward_fn, &o, &r);
  shk_task_results_free(r);
  return rc;
}

/* The one-call form keeps its arena for the next call: whatever the previous call left there (a
 * crash, a worker killed at the deadline, a large output, fewer workers), the next one's results
 * are exact. */
SHK_CHILD_TEST(one_calls_after_crashes_timeouts_and_large_outputs_give_exact_results,
               CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  size_t size = (size_t)1 << 20;
  unsigned char *data = malloc(size);
  SHK_CHECK(data);
  fill(data, size, 5);
  SHK_CHECK(run_and_check(NULL, data, size, 8, NULL));
  SHK_CHECK(awkward_run(data, size, 'c', 2) == SHK_ECRASHED);
  SHK_CHECK(run_and_check(NULL, data, size, 8, NULL));
  SHK_CHECK(awkward_run(data, size, 't', 4) == SHK_ETIMEDOUT);
  SHK_CHECK(run_and_check(NULL, data, size, 8, NULL));
  SHK_CHECK(awkward_run(data, size, 'b', 2) == SHK_OK);
  SHK_CHECK(run_and_check(NULL, data, size, 8, NULL));
  SHK_CHECK(awkward_run(data, size, 'n', 1) == SHK_OK);
  SHK_CHECK(run_and_check(NULL, data, size, 3, NULL));
  SHK_CHECK(awkward_run(data, size, 'n', 4) == SHK_OK);
  SHK_CHECK(run_and_check(NULL, data, size, 8, NULL));
  free(data);
  return 0;
}

#ifndef _WIN32
/* A process forked after a one-call run has its parent's kept arena mapped (shared with the
 * parent): it must not use it. Both run one-call tasks at the same time. */
SHK_CHILD_TEST(a_forked_child_runs_one_calls_beside_its_parent, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  size_t size = (size_t)1 << 20;
  unsigned char *data = malloc(size);
  SHK_CHECK(data);
  fill(data, size, 9);
  SHK_CHECK(run_and_check(NULL, data, size, 8, NULL)); /* an arena is kept now */
  pid_t child = fork();
  SHK_CHECK(child >= 0);
  if (child == 0) {
    fill(data, size, 77);
    for (int i = 0; i < 100; i++)
      if (!run_and_check(NULL, data, size, 5, NULL)) _exit(1);
    _exit(0);
  }
  int ok = 1;
  for (int i = 0; i < 100; i++) ok &= run_and_check(NULL, data, size, 8, NULL);
  int status;
  SHK_CHECK(waitpid(child, &status, 0) == child);
  SHK_CHECK(ok);
  SHK_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  free(data);
  return 0;
}
#endif

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_function_made_at_run_time_runs_where_workers_can_reach_it),
    cmocka_unit_test(a_task_call_starts_with_no_os_error_recorded),
    cmocka_unit_test(workers_hold_none_of_the_callers_descriptors),
    cmocka_unit_test(a_worker_killed_while_idle_is_replaced_when_the_input_changes),
    cmocka_unit_test(a_pool_created_by_a_thread_that_ended_still_serves),
    cmocka_unit_test(one_calls_after_crashes_timeouts_and_large_outputs_give_exact_results),
#ifndef _WIN32
    cmocka_unit_test(a_forked_child_runs_one_calls_beside_its_parent),
#endif
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(a_function_made_at_run_time_runs_where_workers_can_reach_it),
    SHK_TEST_CHILD(a_task_call_starts_with_no_os_error_recorded),
    SHK_TEST_CHILD(workers_hold_none_of_the_callers_descriptors),
    SHK_TEST_CHILD(a_worker_killed_while_idle_is_replaced_when_the_input_changes),
    SHK_TEST_CHILD(a_pool_created_by_a_thread_that_ended_still_serves),
    SHK_TEST_CHILD(one_calls_after_crashes_timeouts_and_large_outputs_give_exact_results),
#ifndef _WIN32
    SHK_TEST_CHILD(a_forked_child_runs_one_calls_beside_its_parent),
#endif
};

int main(int argc, char **argv) {
  shk_worker_main(argc, argv);
  return shk_test_main(argc, argv, __FILE__, tests, sizeof tests / sizeof tests[0], children,
                       sizeof children / sizeof children[0]);
}
