/* Chunk-task costs beside the raw mechanism in the same run: (a) fixed overhead per call (empty
 * function, 8 MiB, 8 chunks) for a pool, fresh workers and threads vs fork+wait and thread
 * create+join; (b) a 256 MiB prologue scan (memory-bound) and a compute-bound pass with 2
 * workers vs one thread and two bare threads; (c) copy-in vs memcpy into touched memory.
 * Usage: bench_task [--quick] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "shmkit.h"

#ifdef _WIN32
#include <windows.h>
typedef HANDLE bare_thread;
typedef struct bare_job bare_job;
static DWORD WINAPI bare_entry(LPVOID p);
static void bare_start(bare_thread *t, bare_job *job) { *t = CreateThread(NULL, 0, bare_entry, job, 0, NULL); }
static void bare_join(bare_thread t) {
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
}
static char self_path[MAX_PATH];
/* The raw process mechanism on Windows: start this program again, and wait for it. */
static void raw_process_start_wait(int n) {
  PROCESS_INFORMATION pi[64];
  for (int i = 0; i < n; i++) {
    char cmd[MAX_PATH + 32];
    snprintf(cmd, sizeof cmd, "\"%s\" --bench-exit", self_path);
    STARTUPINFOA si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi[i])) abort();
  }
  for (int i = 0; i < n; i++) {
    WaitForSingleObject(pi[i].hProcess, INFINITE);
    CloseHandle(pi[i].hProcess);
    CloseHandle(pi[i].hThread);
  }
}
#define RAW_PROCESS_NAME "CreateProcess+wait"
#else
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
typedef pthread_t bare_thread;
typedef struct bare_job bare_job;
static void *bare_entry(void *p);
static void bare_start(bare_thread *t, bare_job *job) {
  if (pthread_create(t, NULL, bare_entry, job) != 0) abort();
}
static void bare_join(bare_thread t) { pthread_join(t, NULL); }
static void raw_process_start_wait(int n) {
  pid_t pids[64];
  for (int i = 0; i < n; i++) {
    pids[i] = fork();
    if (pids[i] == 0) _exit(0);
    if (pids[i] < 0) abort();
  }
  for (int i = 0; i < n; i++) waitpid(pids[i], NULL, 0);
}
#define RAW_PROCESS_NAME "fork+wait"
#endif

#define MIB ((size_t)1 << 20)
#define SHK_MIN(a, b) ((a) < (b) ? (a) : (b))

static void check(int rc, const char *what) {
  if (rc != SHK_OK) {
    fprintf(stderr, "%s: %s\n", what, shk_strerror(rc));
    exit(1);
  }
}

/* ---- the work -------------------------------------------------------------------------- */

/* Counts 55 48 89 E5 starting in [from, to) of d, reading at most to `end`. Memory-bound. */
static uint64_t count_prologues(const unsigned char *d, size_t from, size_t to, size_t end) {
  uint64_t n = 0;
  const unsigned char *p = d + from, *stop = d + to;
  while (p < stop) {
    p = memchr(p, 0x55, (size_t)(stop - p));
    if (!p) break;
    size_t at = (size_t)(p - d);
    if (at + 4 <= end && p[1] == 0x48 && p[2] == 0x89 && p[3] == 0xE5) n++;
    p++;
  }
  return n;
}

/* A per-byte hash with several dependent multiply rounds. Compute-bound. */
static uint64_t mix_bytes(const unsigned char *d, size_t from, size_t to) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = from; i < to; i++) {
    h = (h ^ d[i]) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
  }
  return h;
}

/* Called through volatile pointers so that the compiler cannot move the work across the clock
 * reads around it. */
static uint64_t (*volatile prologues_fn)(const unsigned char *, size_t, size_t, size_t) = count_prologues;
static uint64_t (*volatile mix_fn)(const unsigned char *, size_t, size_t) = mix_bytes;

static int empty_chunk(const shk_task_chunk *c, shk_task_out *out) {
  (void)c;
  (void)out;
  return 0;
}

static int prologue_chunk(const shk_task_chunk *c, shk_task_out *out) {
  uint64_t n = count_prologues(c->data, 0, c->size, c->readable);
  return shk_task_out_write(out, &n, sizeof n);
}

static int mix_chunk(const shk_task_chunk *c, shk_task_out *out) {
  uint64_t h = mix_bytes(c->data, 0, c->size);
  return shk_task_out_write(out, &h, sizeof h);
}

struct bare_job {
  const unsigned char *d;
  size_t from, to, end;
  int kind; /* 0 prologues, 1 mix */
  uint64_t result;
};

#ifdef _WIN32
static DWORD WINAPI bare_entry(LPVOID p) {
#else
static void *bare_entry(void *p) {
#endif
  bare_job *j = p;
  j->result = j->kind == 0 ? prologues_fn(j->d, j->from, j->to, j->end) : mix_fn(j->d, j->from, j->to);
#ifdef _WIN32
  return 0;
#else
  return NULL;
#endif
}

/* ---- measuring --------------------------------------------------------------------------- */

typedef struct call_ctx {
  shk_task_pool *pool;
  const void *data;
  size_t size;
  shk_task_fn fn;
  shk_task_options opts;
} call_ctx;

static double time_call(call_ctx *c) {
  shk_task_results *r;
  double t0 = bench_now_ns();
  int rc = c->pool ? shk_task_pool_run(c->pool, c->data, c->size, c->fn, &c->opts, &r)
                   : shk_task_run(c->data, c->size, c->fn, &c->opts, &r);
  double t = bench_now_ns() - t0;
  check(rc, "task");
  shk_task_results_free(r);
  return t;
}

/* The median of n calls (after one warm-up), in microseconds. */
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median_us(call_ctx *c, int n) {
  double *t = malloc((size_t)n * sizeof *t);
  time_call(c);
  for (int i = 0; i < n; i++) t[i] = time_call(c);
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  double m = t[n / 2] / 1000.0;
  free(t);
  return m;
}

static double raw_threads_us(int workers, int n) {
  double *t = malloc((size_t)n * sizeof *t);
  bare_job jobs[64];
  bare_thread th[64];
  memset(jobs, 0, sizeof jobs);
  for (int i = 0; i < n; i++) {
    double t0 = bench_now_ns();
    for (int k = 0; k < workers; k++) {
      jobs[k].d = (const unsigned char *)"";
      jobs[k].kind = 1;
      bare_start(&th[k], &jobs[k]);
    }
    for (int k = 0; k < workers; k++) bare_join(th[k]);
    t[i] = bench_now_ns() - t0;
  }
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  double m = t[n / 2] / 1000.0;
  free(t);
  return m;
}

static void fill(unsigned char *d, size_t n) {
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    d[i] = (unsigned char)x;
  }
  for (size_t i = 4096; i + 4 < n; i += 4093) memcpy(d + i, "\x55\x48\x89\xE5", 4);
}

/* ---- the three parts ----------------------------------------------------------------------- */

static void part_overhead(int workers, int n) {
  const size_t size = 8 * MIB;
  shk_shm *shm;
  check(shk_shm_create_anonymous(size, &shm), "segment");
  fill(shk_shm_data(shm), size);
  call_ctx c;
  memset(&c, 0, sizeof c);
  c.data = shk_shm_data(shm);
  c.size = size;
  c.fn = empty_chunk;
  c.opts.chunks = 8;
  c.opts.workers = (unsigned)workers;

  printf("(a) fixed overhead per call: empty function, 8 MiB, 8 chunks, %d workers (median; fresh and raw alternate)\n", workers);
  /* Fresh workers and the raw mechanism alternate, so that both meet the same machine load. */
  int pairs = n / 4 + 3;
  double *fresh_t = malloc((size_t)pairs * sizeof *fresh_t), *fork_t = malloc((size_t)pairs * sizeof *fork_t);
  time_call(&c);
  for (int i = 0; i < pairs; i++) {
    fresh_t[i] = time_call(&c);
    double t0 = bench_now_ns();
    raw_process_start_wait(workers);
    fork_t[i] = bench_now_ns() - t0;
  }
  qsort(fresh_t, (size_t)pairs, sizeof *fresh_t, cmp_double);
  qsort(fork_t, (size_t)pairs, sizeof *fork_t, cmp_double);
  double fresh_us = fresh_t[pairs / 2] / 1000.0, fork_us = fork_t[pairs / 2] / 1000.0;
  free(fresh_t);
  free(fork_t);
  double thread_us = raw_threads_us(workers, n);
  check(shk_task_pool_create((unsigned)workers, SHK_TASK_PROCESSES, &c.pool), "pool");
  double pool_us = median_us(&c, n);
  shk_task_pool_free(c.pool);
  c.pool = NULL;
  check(shk_task_pool_create((unsigned)workers, SHK_TASK_THREADS, &c.pool), "pool");
  double tpool_us = median_us(&c, n);
  shk_task_pool_free(c.pool);
  c.pool = NULL;
  c.opts.mode = SHK_TASK_THREADS;
  double tfresh_us = median_us(&c, n);
  printf("  %-42s %9.1f us   (target <= 100 us)\n", "process pool, input in a segment", pool_us);
  printf("  %-42s %9.1f us   raw %s of %d: %8.1f us   ratio %.2fx (target <= 1.5x)\n",
         "fresh worker processes (shk_task_run)", fresh_us, RAW_PROCESS_NAME, workers, fork_us,
         fresh_us / fork_us);
  printf("  %-42s %9.1f us\n", "thread pool", tpool_us);
  printf("  %-42s %9.1f us   raw thread create+join of %d: %8.1f us   ratio %.2fx\n",
         "fresh threads (shk_task_run, threads)", tfresh_us, workers, thread_us, tfresh_us / thread_us);
  shk_shm_close(shm);
}

typedef struct scan_ctx {
  const unsigned char *d;
  size_t size;
  int kind;
  int threads;
  call_ctx *call;
  uint64_t result;
} scan_ctx;

static double scan_single(void *p) {
  scan_ctx *s = p;
  double t0 = bench_now_ns();
  s->result = s->kind == 0 ? prologues_fn(s->d, 0, s->size, s->size) : mix_fn(s->d, 0, s->size);
  return bench_now_ns() - t0;
}

static double scan_bare(void *p) {
  scan_ctx *s = p;
  bare_job jobs[2];
  bare_thread th[2];
  double t0 = bench_now_ns();
  for (int k = 0; k < 2; k++) {
    jobs[k].d = s->d;
    jobs[k].from = k * (s->size / 2);
    jobs[k].to = k == 0 ? s->size / 2 : s->size;
    jobs[k].end = s->size;
    jobs[k].kind = s->kind;
    bare_start(&th[k], &jobs[k]);
  }
  for (int k = 0; k < 2; k++) bare_join(th[k]);
  s->result = s->kind == 0 ? jobs[0].result + jobs[1].result : jobs[0].result ^ jobs[1].result;
  return bench_now_ns() - t0;
}

static double scan_task(void *p) {
  scan_ctx *s = p;
  return time_call(s->call);
}

static void part_scan(int workers, size_t size, int reps) {
  shk_shm *shm;
  check(shk_shm_create_anonymous(size, &shm), "segment");
  unsigned char *d = shk_shm_data(shm);
  fill(d, size);
  printf("(b) %zu MiB, %d workers, best of %d (alternating): time and speedup over one thread\n", size / MIB,
         workers, reps);
  shk_task_pool *pool;
  check(shk_task_pool_create((unsigned)workers, SHK_TASK_PROCESSES, &pool), "pool");
  for (int kind = 0; kind < 2; kind++) {
    call_ctx c;
    memset(&c, 0, sizeof c);
    c.pool = pool;
    c.data = d;
    c.size = size;
    c.fn = kind == 0 ? prologue_chunk : mix_chunk;
    c.opts.chunks = 16;
    c.opts.halo = 3;
    scan_ctx s = {d, size, kind, 2, &c, 0};
    /* A reused pool. Each worker process has its own page tables: it faults in the pages of the
     * chunks it happens to take, so the first few calls pay for that (threads share the
     * caller's, already filled); warm up until each worker has met every page. */
    double first = time_call(&c);
    for (int w = 0; w < 6; w++) time_call(&c);
    /* The three alternate, so that all meet the same machine load; best of each. */
    double one = 1e300, bare = 1e300, pooled = 1e300;
    for (int r = 0; r < reps; r++) {
      one = SHK_MIN(one, scan_single(&s));
      bare = SHK_MIN(bare, scan_bare(&s));
      pooled = SHK_MIN(pooled, scan_task(&s));
    }
    const char *name = kind == 0 ? "prologue scan (memory-bound)" : "byte hash (compute-bound)";
    printf("  %-30s one thread %7.1f ms | two bare threads %7.1f ms = %.2fx | pool %7.1f ms = "
           "%.2fx, %.2f of bare (target >= 0.9) | pool's first call %.1f ms\n",
           name, one / 1e6, bare / 1e6, one / bare, pooled / 1e6, one / pooled, bare / pooled,
           first / 1e6);
  }
  shk_task_pool_free(pool);
  shk_shm_close(shm);
}

static double time_memcpy(void *p) {
  scan_ctx *s = p;
  unsigned char *dst = (unsigned char *)(uintptr_t)s->call->data;
  double t0 = bench_now_ns();
  memcpy(dst, s->d, s->size);
  return bench_now_ns() - t0;
}

static void part_copy(int workers, size_t size, int reps) {
  unsigned char *src = malloc(size), *dst = malloc(size);
  if (!src || !dst) abort();
  fill(src, size);
  memset(dst, 1, size);
  shk_shm *shm;
  check(shk_shm_create_anonymous(size, &shm), "segment");
  memcpy(shk_shm_data(shm), src, size);
  shk_task_pool *pool;
  check(shk_task_pool_create((unsigned)workers, SHK_TASK_PROCESSES, &pool), "pool");
  call_ctx copied = {pool, src, size, empty_chunk, {0}};
  call_ctx in_place = {pool, shk_shm_data(shm), size, empty_chunk, {0}};
  copied.opts.chunks = in_place.opts.chunks = 8;
  call_ctx raw = {NULL, dst, size, NULL, {0}};
  scan_ctx s = {src, size, 0, 0, &raw, 0};
  time_call(&copied); /* the first call grows the staging segment: a one-time cost */
  scan_ctx sc = {src, size, 0, 0, &copied, 0}, sp = {src, size, 0, 0, &in_place, 0};
  double mc = 1e300, with_copy = 1e300, without = 1e300;
  for (int r = 0; r < reps; r++) {
    mc = SHK_MIN(mc, time_memcpy(&s));
    with_copy = SHK_MIN(with_copy, scan_task(&sc));
    without = SHK_MIN(without, scan_task(&sp));
  }
  double copy_in = with_copy - without;
  printf("(c) copy-in of %zu MiB on repeated pool calls (call with copy - call in place), best of %d\n",
         size / MIB, reps);
  printf("  copy-in %8.1f us (%.1f GB/s)   memcpy into touched memory %8.1f us (%.1f GB/s)   ratio "
         "%.2fx (target <= 1.15x)\n",
         copy_in / 1e3, (double)size / copy_in, mc / 1e3, (double)size / mc, copy_in / mc);
  shk_task_pool_free(pool);
  shk_shm_close(shm);
  free(src);
  free(dst);
}

int main(int argc, char **argv) {
  shk_worker_main(argc, argv);
  if (argc > 1 && strcmp(argv[1], "--bench-exit") == 0) return 0;
  bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
#ifdef _WIN32
  GetModuleFileNameA(NULL, self_path, MAX_PATH);
#endif
  int workers = 2;
  printf("bench_task: shmkit %s, %d workers%s\n", shk_version_string(), workers,
         quick ? " (quick)" : "");
  part_overhead(workers, quick ? 20 : 400);
  part_scan(workers, quick ? 16 * MIB : 256 * MIB, quick ? 2 : 5);
  part_copy(workers, quick ? 8 * MIB : 64 * MIB, quick ? 2 : 10);
  return 0;
}
