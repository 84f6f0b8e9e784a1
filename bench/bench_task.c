/* Chunk-task costs beside the raw mechanism in the same run, for N workers: N = 1, 2, 4, 8, 16
 * as far as this machine has cores, or the N given.
 *   (a) fixed overhead per call (empty function, 8 MiB, max(8, N) chunks): a process pool, fresh
 *       worker processes and threads, vs fork+wait (CreateProcess+wait) and thread create+join;
 *       and where the worker host is built: a hosted pool and fresh hosted workers (mode
 *       SHK_TASK_HOSTED, an empty plugin function), vs posix_spawn+wait (CreateProcess+wait) of
 *       the worker host executable itself;
 *   (b) a prologue scan (memory-bound) and a byte hash (compute-bound): one thread, N bare
 *       threads, a process pool whose input lies in a segment, a process pool that copies its
 *       input in, a thread pool; time, speedup over one thread, and the fraction of bare threads;
 *   (c) copy-in vs memcpy, into touched memory (repeated calls) and into fresh pages (the first
 *       call of a pool, whose staging segment is new).
 * Usage: bench_task [--quick] [--workers N] [--mib MiB] [--hash-mib MiB] [--reps R] [--parts abc]
 *   defaults: 256 MiB scan, 64 MiB hash, best of 5; --quick: 16 MiB, 4 MiB, best of 2. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "shmkit.h"

#define MIB ((size_t)1 << 20)
#define SHK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SHK_MAX(a, b) ((a) > (b) ? (a) : (b))
#define WORKERS_MAX 64 /* bare threads and raw processes of one measurement */

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
/* Starts `cmd` n times and waits for all: the raw mechanism under fresh workers. quiet: no
 * standard handles (the worker host's message goes nowhere). */
static void start_wait(const char *cmd, bool quiet, int n) {
  PROCESS_INFORMATION pi[WORKERS_MAX];
  for (int i = 0; i < n; i++) {
    char line[2 * MAX_PATH + 64]; /* CreateProcessA may write into its command line */
    snprintf(line, sizeof line, "%s", cmd);
    STARTUPINFOA si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (quiet) si.dwFlags = STARTF_USESTDHANDLES;
    if (!CreateProcessA(NULL, line, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi[i])) abort();
  }
  for (int i = 0; i < n; i++) {
    WaitForSingleObject(pi[i].hProcess, INFINITE);
    CloseHandle(pi[i].hProcess);
    CloseHandle(pi[i].hThread);
  }
}
/* The raw process mechanism on Windows: start this program again, and wait for it. */
static void raw_process_start_wait(int n) {
  char cmd[MAX_PATH + 32];
  snprintf(cmd, sizeof cmd, "\"%s\" --bench-exit", self_path);
  start_wait(cmd, false, n);
}
#define RAW_PROCESS_NAME "CreateProcess+wait"
#ifdef BENCH_WORKER_HOST
/* The raw mechanism beside worker-host workers: start the worker host itself n times, wait. */
static void raw_host_start_wait(int n) { start_wait("\"" BENCH_WORKER_HOST "\"", true, n); }
#define RAW_HOST_NAME "CreateProcess+wait"
#endif
static int cpu_count(void) {
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  return si.dwNumberOfProcessors > 0 ? (int)si.dwNumberOfProcessors : 1;
}
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
  pid_t pids[WORKERS_MAX];
  for (int i = 0; i < n; i++) {
    pids[i] = fork();
    if (pids[i] == 0) _exit(0);
    if (pids[i] < 0) abort();
  }
  for (int i = 0; i < n; i++) waitpid(pids[i], NULL, 0);
}
#define RAW_PROCESS_NAME "fork+wait"
#ifdef BENCH_WORKER_HOST
#include <spawn.h>
extern char **environ;
/* The raw mechanism beside worker-host workers: posix_spawn the worker host itself n times (its
 * message to stderr goes to /dev/null), wait. */
static void raw_host_start_wait(int n) {
  pid_t pids[WORKERS_MAX];
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1 /* O_WRONLY */, 0);
  char *args[] = {(char *)BENCH_WORKER_HOST, NULL};
  for (int i = 0; i < n; i++)
    if (posix_spawn(&pids[i], BENCH_WORKER_HOST, &fa, NULL, args, environ) != 0) abort();
  for (int i = 0; i < n; i++) waitpid(pids[i], NULL, 0);
  posix_spawn_file_actions_destroy(&fa);
}
#define RAW_HOST_NAME "posix_spawn+wait"
#endif
static int cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}
#endif

static void check(int rc, const char *what) {
  if (rc != SHK_OK) {
    fprintf(stderr, "%s: %s\n", what, shk_strerror(rc));
    exit(1);
  }
}

/* ---- the work -------------------------------------------------------------------------- */

#include "bench_work.h"

/* Called through volatile pointers so that the compiler cannot move the work across the clock
 * reads around it. */
static uint64_t (*volatile prologues_fn)(const unsigned char *, size_t, size_t, size_t) = count_prologues;
static uint64_t (*volatile mix_fn)(const unsigned char *, size_t, size_t) = mix_bytes;

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

/* Sorts t[0..n) and returns its median, in microseconds (t in nanoseconds); frees t. */
static double median_us_of(double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  double m = t[n / 2] / 1000.0;
  free(t);
  return m;
}

static double *times(int n) {
  double *t = malloc((size_t)n * sizeof *t);
  if (!t) abort();
  return t;
}

static double median_us(call_ctx *c, int n) {
  double *t = times(n);
  time_call(c);
  for (int i = 0; i < n; i++) t[i] = time_call(c);
  return median_us_of(t, n);
}

static double raw_threads_us(int workers, int n) {
  double *t = times(n);
  bare_job jobs[WORKERS_MAX];
  bare_thread th[WORKERS_MAX];
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
  return median_us_of(t, n);
}

/* Pseudo-random bytes (8 at a time: 1 GiB in well under a second) with a prologue every 4093. */
static void fill(unsigned char *d, size_t n) {
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    memcpy(d + i, &x, SHK_MIN((size_t)8, n - i));
  }
  for (size_t i = 4096; i + 4 < n; i += 4093) memcpy(d + i, "\x55\x48\x89\xE5", 4);
}


/* Medians of fresh-worker calls and of the raw mechanism `raw`, alternating, so that both meet
 * the same machine load (n / 4 + 3 of each, after one warm-up call). */
static void alternate(call_ctx *c, void (*raw)(int), int workers, int n, double *fresh_us,
                      double *raw_us) {
  int pairs = n / 4 + 3;
  double *fresh_t = times(pairs), *raw_t = times(pairs);
  time_call(c);
  for (int i = 0; i < pairs; i++) {
    fresh_t[i] = time_call(c);
    double t0 = bench_now_ns();
    raw(workers);
    raw_t[i] = bench_now_ns() - t0;
  }
  *fresh_us = median_us_of(fresh_t, pairs);
  *raw_us = median_us_of(raw_t, pairs);
}

/* ---- (a) fixed overhead per call ----------------------------------------------------------- */

static void part_overhead_header(int n) {
  printf("(a) fixed overhead per call: empty function, 8 MiB input in a segment, max(8, N) chunks; "
         "median of %d (fresh processes and raw %s alternate)\n",
         n, RAW_PROCESS_NAME);
  printf("  %3s %13s %12s | %15s %17s %7s | %13s %17s %7s\n", "N", "process pool", "thread pool",
         "fresh processes", "raw " RAW_PROCESS_NAME, "ratio", "fresh threads", "raw create+join", "ratio");
}

static void part_overhead(int workers, int n) {
  const size_t size = 8 * MIB;
  shk_shm *shm;
  check(shk_shm_create_anonymous(size, &shm), "segment");
  fill(shk_shm_data(shm), size);
  call_ctx c;
  memset(&c, 0, sizeof c);
  shk_task_options_init(&c.opts);
  c.data = shk_shm_data(shm);
  c.size = size;
  c.fn = empty_chunk;
  c.opts.chunks = (size_t)SHK_MAX(8, workers); /* a fresh call starts one worker per chunk at most */
  c.opts.workers = (unsigned)workers;

  double fresh_us, raw_us;
  alternate(&c, raw_process_start_wait, workers, n, &fresh_us, &raw_us);
  double thread_us = raw_threads_us(workers, n);
  check(shk_task_pool_create((unsigned)workers, SHK_TASK_PROCESSES, &c.pool), "pool");
  double pool_us = median_us(&c, n);
  shk_task_pool_free(c.pool);
  check(shk_task_pool_create((unsigned)workers, SHK_TASK_THREADS, &c.pool), "pool");
  double tpool_us = median_us(&c, n);
  shk_task_pool_free(c.pool);
  c.pool = NULL;
  c.opts.mode = SHK_TASK_THREADS;
  double tfresh_us = median_us(&c, n);
  printf("  %3d %10.1f us %9.1f us | %12.1f us %14.1f us %6.2fx | %10.1f us %14.1f us %6.2fx\n", workers,
         pool_us, tpool_us, fresh_us, raw_us, fresh_us / raw_us, tfresh_us, thread_us,
         tfresh_us / thread_us);
  shk_shm_close(shm);
}

#ifdef BENCH_WORKER_HOST
/* Worker-host workers (the plugin's empty function) beside a raw start+wait of the worker host
 * executable, alternating as above. */
static void part_hosted_header(int n) {
  printf("(a, worker host) the same call on shmkit-worker processes (bench/plugin, empty function); "
         "median of %d (fresh hosted workers and raw %s of shmkit-worker alternate)\n",
         n, RAW_HOST_NAME);
  printf("  %3s %13s | %15s %23s %7s\n", "N", "hosted pool", "fresh hosted", "raw " RAW_HOST_NAME,
         "ratio");
}

static void part_hosted(int workers, int n) {
  const size_t size = 8 * MIB;
  shk_shm *shm;
  check(shk_shm_create_anonymous(size, &shm), "segment");
  fill(shk_shm_data(shm), size);
  call_ctx c;
  memset(&c, 0, sizeof c);
  shk_task_options_init(&c.opts);
  c.data = shk_shm_data(shm);
  c.size = size;
  c.opts.chunks = (size_t)SHK_MAX(8, workers);
  c.opts.workers = (unsigned)workers;
  c.opts.mode = SHK_TASK_HOSTED;
  c.opts.module_path = BENCH_PLUGIN;
  c.opts.function_name = "bench_empty";
  double fresh_us, raw_us;
  alternate(&c, raw_host_start_wait, workers, n, &fresh_us, &raw_us);
  c.opts.mode = SHK_TASK_PROCESSES;
  check(shk_task_pool_create_hosted((unsigned)workers, BENCH_PLUGIN, "bench_empty", &c.pool),
        "hosted pool");
  double pool_us = median_us(&c, n);
  shk_task_pool_free(c.pool);
  printf("  %3d %10.1f us | %12.1f us %20.1f us %6.2fx\n", workers, pool_us, fresh_us, raw_us,
         fresh_us / raw_us);
  shk_shm_close(shm);
}
#endif

/* ---- (b) scan and hash: N workers vs N bare threads ------------------------------------------- */

typedef struct work {
  const char *name;
  int kind; /* 0 prologue scan, 1 byte hash */
  size_t size;
  shk_task_fn fn;
} work;

static double time_single(const unsigned char *d, const work *w) {
  double t0 = bench_now_ns();
  uint64_t r = w->kind == 0 ? prologues_fn(d, 0, w->size, w->size) : mix_fn(d, 0, w->size);
  (void)r;
  return bench_now_ns() - t0;
}

static double time_bare(const unsigned char *d, const work *w, int n) {
  bare_job jobs[WORKERS_MAX];
  bare_thread th[WORKERS_MAX];
  double t0 = bench_now_ns();
  for (int k = 0; k < n; k++) {
    jobs[k].d = d;
    jobs[k].from = w->size / (size_t)n * (size_t)k;
    jobs[k].to = k + 1 == n ? w->size : w->size / (size_t)n * (size_t)(k + 1);
    jobs[k].end = w->size;
    jobs[k].kind = w->kind;
    bare_start(&th[k], &jobs[k]);
  }
  for (int k = 0; k < n; k++) bare_join(th[k]);
  return bench_now_ns() - t0;
}

/* The three ways a chunk task can run the work, each with its own pool of n workers. */
enum { IN_SEGMENT, COPY_IN, THREAD_POOL, WAYS };
static const char *const way_names[WAYS] = {"process pool, in segment", "process pool, copy-in",
                                            "thread pool"};

static void part_scan_header(int reps) {
  printf("(b) best of %d, one thread / N bare threads / pools alternating; x = speedup over one "
         "thread, of bare = N bare threads' time / this (targets: >= 0.9; copy-in >= 0.7, and >= "
         "1.0x at N = 1); the copy-in runs on up to one thread per CPU, whatever N\n",
         reps);
  printf("  %3s %-22s %10s | %-18s |", "N", "work", "one thread", "N bare threads");
  for (int w = 0; w < WAYS; w++) printf(" %-30s |", way_names[w]);
  printf(" copy-in pool's 1st call\n");
}

/* One row: the work w on n workers. seg is the input in a segment, plain the same bytes in
 * ordinary memory (which a process pool must copy in). */
static void part_scan_row(const unsigned char *seg, const unsigned char *plain, const work *w,
                          int n, int reps) {
  shk_task_pool *pools[WAYS];
  call_ctx calls[WAYS];
  for (int k = 0; k < WAYS; k++) {
    check(shk_task_pool_create((unsigned)n, k == THREAD_POOL ? SHK_TASK_THREADS : SHK_TASK_PROCESSES,
                               &pools[k]),
          "pool");
    memset(&calls[k], 0, sizeof calls[k]);
    calls[k].pool = pools[k];
    calls[k].data = k == COPY_IN ? plain : seg;
    calls[k].size = w->size;
    calls[k].fn = w->fn;
    calls[k].opts.chunks = (size_t)SHK_MAX(16, 4 * n);
    calls[k].opts.halo = 3;
  }
  /* The copy-in pool's first call makes its staging segment: fresh pages, written first by the
   * copy. Worker processes then fault in the pages of the chunks they happen to take (threads
   * share the caller's page tables, already filled): a few calls warm them up. */
  double first = time_call(&calls[COPY_IN]);
  for (int k = 0; k < WAYS; k++)
    for (int r = 0; r < 3; r++) time_call(&calls[k]);
  double one = 1e300, bare = 1e300, best[WAYS] = {1e300, 1e300, 1e300};
  for (int r = 0; r < reps; r++) {
    one = SHK_MIN(one, time_single(seg, w));
    bare = SHK_MIN(bare, time_bare(seg, w, n));
    for (int k = 0; k < WAYS; k++) best[k] = SHK_MIN(best[k], time_call(&calls[k]));
  }
  char what[40];
  snprintf(what, sizeof what, "%s %zu MiB", w->name, w->size / MIB);
  printf("  %3d %-22s %7.1f ms | %8.1f ms %6.2fx |", n, what, one / 1e6, bare / 1e6, one / bare);
  for (int k = 0; k < WAYS; k++)
    printf(" %8.1f ms %6.2fx %4.2f of bare |", best[k] / 1e6, one / best[k], bare / best[k]);
  printf(" %8.1f ms\n", first / 1e6);
  fflush(stdout);
  for (int k = 0; k < WAYS; k++) shk_task_pool_free(pools[k]);
}

/* ---- (c) copy-in vs memcpy ------------------------------------------------------------------ */

static double time_memcpy(unsigned char *dst, const unsigned char *src, size_t size) {
  double t0 = bench_now_ns();
  memcpy(dst, src, size);
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
  call_ctx copied = {NULL, src, size, empty_chunk, {0}};
  call_ctx in_place = {NULL, shk_shm_data(shm), size, empty_chunk, {0}};
  copied.opts.chunks = in_place.opts.chunks = 8;

  /* Fresh pages: a new pool's first call makes its staging segment, whose every page is first
   * written by the copy; beside memcpy into a new segment. How much a first write costs depends
   * on where the system finds the page (pages freed just before can be cheap to hand out
   * again), so the two alternate in both orders; best of each. */
  double fresh_copy = 1e300, fresh_mc = 1e300;
  for (int r = 0; r < 4; r++) {
    for (int order = 0; order < 2; order++) {
      if ((r + order) % 2 == 0) {
        check(shk_task_pool_create((unsigned)workers, SHK_TASK_PROCESSES, &copied.pool), "pool");
        in_place.pool = copied.pool;
        time_call(&in_place); /* the workers' first call, without a copy */
        double with_copy = time_call(&copied);
        fresh_copy = SHK_MIN(fresh_copy, with_copy - time_call(&in_place));
        shk_task_pool_free(copied.pool);
      } else {
        shk_shm *fresh;
        check(shk_shm_create_anonymous(size, &fresh), "segment");
        fresh_mc = SHK_MIN(fresh_mc, time_memcpy(shk_shm_data(fresh), src, size));
        shk_shm_close(fresh);
      }
    }
  }

  /* Touched memory: repeated calls of one pool (the staging segment is kept). */
  check(shk_task_pool_create((unsigned)workers, SHK_TASK_PROCESSES, &copied.pool), "pool");
  in_place.pool = copied.pool;
  time_call(&copied);
  double mc = 1e300, with_copy = 1e300, without = 1e300;
  for (int r = 0; r < reps; r++) {
    mc = SHK_MIN(mc, time_memcpy(dst, src, size));
    with_copy = SHK_MIN(with_copy, time_call(&copied));
    without = SHK_MIN(without, time_call(&in_place));
  }
  shk_task_pool_free(copied.pool);
  double copy_in = with_copy - without;
  printf("(c) copy-in of %zu MiB (a pool call with copy - the same call in place), %d workers, best of %d\n",
         size / MIB, workers, reps);
  printf("  repeated calls: copy-in %8.1f us (%5.1f GB/s)   memcpy into touched memory %8.1f us (%5.1f GB/s)   "
         "ratio %.2fx (target <= 1.15x)\n",
         copy_in / 1e3, (double)size / copy_in, mc / 1e3, (double)size / mc, copy_in / mc);
  printf("  fresh pages:    copy-in %8.1f us (%5.1f GB/s)   memcpy into a new segment  %8.1f us (%5.1f GB/s)   "
         "ratio %.2fx\n",
         fresh_copy / 1e3, (double)size / fresh_copy, fresh_mc / 1e3, (double)size / fresh_mc,
         fresh_copy / fresh_mc);
  shk_shm_close(shm);
  free(src);
  free(dst);
}

/* ---- main ------------------------------------------------------------------------------------ */

typedef struct settings {
  bool quick;
  int workers;   /* 0: 1, 2, 4, 8, 16 as far as the cores go */
  size_t mib, hash_mib;
  int reps;
  const char *parts;
} settings;

static void usage(void) {
  fprintf(stderr, "usage: bench_task [--quick] [--workers N] [--mib MiB] [--hash-mib MiB] "
                  "[--reps R] [--parts abc]\n");
  exit(2);
}

static settings parse(int argc, char **argv) {
  settings s = {false, 0, 0, 0, 0, "abc"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--quick") == 0) {
      s.quick = true;
      continue;
    }
    if (!v) usage();
    i++;
    if (strcmp(a, "--workers") == 0) s.workers = atoi(v);
    else if (strcmp(a, "--mib") == 0) s.mib = (size_t)atol(v);
    else if (strcmp(a, "--hash-mib") == 0) s.hash_mib = (size_t)atol(v);
    else if (strcmp(a, "--reps") == 0) s.reps = atoi(v);
    else if (strcmp(a, "--parts") == 0) s.parts = v;
    else usage();
  }
  if (s.workers < 0 || s.workers > WORKERS_MAX) usage();
  if (!s.mib) s.mib = s.quick ? 16 : 256;
  if (!s.hash_mib) s.hash_mib = s.quick ? 4 : SHK_MAX((size_t)1, s.mib / 4);
  if (s.hash_mib > s.mib) s.hash_mib = s.mib;
  if (s.reps <= 0) s.reps = s.quick ? 2 : 5;
  return s;
}

int main(int argc, char **argv) {
  shk_worker_main(argc, argv);
  if (argc > 1 && strcmp(argv[1], "--bench-exit") == 0) return 0;
#ifdef _WIN32
  GetModuleFileNameA(NULL, self_path, MAX_PATH);
#endif
  settings s = parse(argc, argv);
  int cpus = cpu_count();
  int ns[WORKERS_MAX], count = 0;
  if (s.workers) ns[count++] = s.workers;
  else
    for (int n = 1; n <= 16 && n <= cpus; n *= 2) ns[count++] = n;
  printf("bench_task: shmkit %s, %d CPUs, N =", shk_version_string(), cpus);
  for (int i = 0; i < count; i++) printf(" %d", ns[i]);
  printf("%s\n", s.quick ? " (quick)" : "");
  fflush(stdout);

  if (strchr(s.parts, 'a')) {
    int n = s.quick ? 20 : 400;
    part_overhead_header(n);
    for (int i = 0; i < count; i++) part_overhead(ns[i], n);
    printf("  targets: process pool <= 20 us; fresh processes <= 1.5x raw\n");
    fflush(stdout);
#ifdef BENCH_WORKER_HOST
    part_hosted_header(n);
    for (int i = 0; i < count; i++) part_hosted(ns[i], n);
    printf("  target: fresh hosted workers <= 1.5x raw start+wait of the worker host\n");
    fflush(stdout);
#endif
  }
  if (strchr(s.parts, 'b')) {
    size_t size = s.mib * MIB;
    shk_shm *shm;
    check(shk_shm_create_anonymous(size, &shm), "segment");
    unsigned char *seg = shk_shm_data(shm), *plain = malloc(size);
    if (!plain) abort();
    fill(seg, size);
    memcpy(plain, seg, size);
    const work works[2] = {{"prologue scan", 0, size, prologue_chunk},
                           {"byte hash", 1, s.hash_mib * MIB, mix_chunk}};
    part_scan_header(s.reps);
    for (int i = 0; i < count; i++)
      for (int k = 0; k < 2; k++) part_scan_row(seg, plain, &works[k], ns[i], s.reps);
    free(plain);
    shk_shm_close(shm);
  }
  if (strchr(s.parts, 'c'))
    part_copy(ns[count - 1], (s.quick ? 8 : 64) * MIB, s.quick ? 2 : 10);
  return 0;
}
