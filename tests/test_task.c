/* Chunk tasks: results against a serial scan in every mode, every chunk status, limits, the pool
 * reused many times with nothing left behind, and the Windows worker hook. */
/* ctest: labels=unit;multiprocess;tsan timeout=300 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <dirent.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#endif

#define CHILD_TIMEOUT_MS 120000


/* ---- chunk functions ------------------------------------------------------------------- */

static const unsigned char PROLOGUE[4] = {0x55, 0x48, 0x89, 0xE5};

/* Reports every match that starts inside its own chunk, reading into the halo to see matches
 * that cross the end: each match is found exactly once. */
static int scan_fn(const shk_task_chunk *c, shk_task_out *out) {
  const unsigned char *d = c->data;
  for (size_t i = 0; i < c->size; i++) {
    if (i + sizeof PROLOGUE <= c->readable && memcmp(d + i, PROLOGUE, sizeof PROLOGUE) == 0) {
      uint64_t at = (uint64_t)(c->offset + i);
      int rc = shk_task_out_write(out, &at, sizeof at);
      if (rc != SHK_OK) return rc;
    }
  }
  return 0;
}

static size_t serial_scan(const unsigned char *d, size_t size, uint64_t *found, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i + sizeof PROLOGUE <= size; i++)
    if (memcmp(d + i, PROLOGUE, sizeof PROLOGUE) == 0 && n < cap) found[n++] = i;
  return n;
}

/* What behave_fn does, chosen per chunk index through the argument bytes. */
typedef struct behave {
  int32_t fail_at;  /* return 42 + index */
  int32_t crash_at; /* write through a null pointer */
  int32_t hang_at;  /* never return */
  int32_t exit_at;  /* call exit(7) */
  uint32_t out_mib; /* write this many MiB of a per-chunk pattern */
  uint32_t slow_ms; /* sleep this long first */
} behave;

static const behave BEHAVE_NONE = {-1, -1, -1, -1, 0, 0};

static int behave_fn(const shk_task_chunk *c, shk_task_out *out) {
  behave b = BEHAVE_NONE;
  if (c->arg_size == sizeof b) memcpy(&b, c->arg, sizeof b);
  int idx = (int)c->index;
  if (b.slow_ms) shk_test_sleep_ms(b.slow_ms);
  if (idx == b.crash_at) {
    volatile int *volatile nowhere = NULL;
    *nowhere = 1;
  }
  if (idx == b.hang_at)
    for (;;) shk_test_sleep_ms(10);
  if (idx == b.exit_at) exit(7);
  if (idx == b.fail_at) return 42 + idx;
  uint64_t v = c->index;
  int rc = shk_task_out_write(out, &v, sizeof v);
  unsigned char block[4096];
  memset(block, (int)(c->index * 7 + 1), sizeof block);
  for (uint32_t k = 0; rc == SHK_OK && k < b.out_mib * 256u; k++)
    rc = shk_task_out_write(out, block, sizeof block);
  return rc;
}

/* Echoes its argument bytes and its chunk geometry. */
static int echo_fn(const shk_task_chunk *c, shk_task_out *out) {
  uint64_t geo[5] = {c->index, c->count, c->offset, c->size, c->total};
  int rc = shk_task_out_write(out, geo, sizeof geo);
  if (rc == SHK_OK && c->arg_size) rc = shk_task_out_write(out, c->arg, c->arg_size);
  return rc;
}

static int empty_fn(const shk_task_chunk *c, shk_task_out *out) {
  (void)c;
  (void)out;
  return 0;
}

static int pid_fn(const shk_task_chunk *c, shk_task_out *out) {
  (void)c;
#ifdef _WIN32
  uint64_t pid = GetCurrentProcessId();
#else
  uint64_t pid = (uint64_t)getpid();
#endif
  return shk_task_out_write(out, &pid, sizeof pid);
}

/* ---- helpers --------------------------------------------------------------------------- */

static void fill_random(unsigned char *d, size_t n, uint32_t seed) {
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    d[i] = (unsigned char)(x >> 3);
  }
}

/* The start of chunk k when `size` bytes are split in `chunks` (the documented balanced rule). */
static size_t chunk_start(size_t size, size_t chunks, size_t k) {
  size_t q = size / chunks, r = size % chunks;
  return k * q + (k < r ? k : r);
}

/* Concatenates the results of an offsets-reporting function, in chunk order. */
static size_t gather(const shk_task_results *r, uint64_t *found, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < shk_task_results_count(r); i++) {
    const shk_task_result *res = shk_task_results_get(r, i);
    size_t k = res->size / sizeof(uint64_t);
    for (size_t j = 0; j < k && n < cap; j++) memcpy(&found[n++], (const char *)res->data + j * 8, 8);
  }
  return n;
}

typedef struct counts {
  long fds, shm, children;
} counts;

/* What this process holds that a task might leave behind. */
static counts resources(void) {
  counts c = {0, 0, 0};
#ifdef _WIN32
  DWORD h = 0;
  GetProcessHandleCount(GetCurrentProcess(), &h);
  c.fds = (long)h;
#else
  DIR *dir = opendir("/proc/self/fd");
  if (dir) {
    for (struct dirent *e; (e = readdir(dir));) c.fds += e->d_name[0] != '.';
    closedir(dir);
  }
  /* /dev/shm is shared with every other program: count the names that carry this pid, as both
   * shmkit's fallback anonymous names and the tests' names do. */
  char mine[32];
  snprintf(mine, sizeof mine, "-%d-", (int)getpid());
  dir = opendir("/dev/shm");
  if (dir) {
    for (struct dirent *e; (e = readdir(dir));) c.shm += strstr(e->d_name, mine) != NULL;
    closedir(dir);
  }
  /* Children, zombies included: every /proc/<pid>/stat whose parent is this process. */
  dir = opendir("/proc");
  int me = (int)getpid();
  if (dir) {
    for (struct dirent *e; (e = readdir(dir));) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      char path[300], line[512];
      snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
      FILE *f = fopen(path, "r");
      if (!f) continue;
      size_t n = fread(line, 1, sizeof line - 1, f);
      fclose(f);
      line[n] = '\0';
      const char *end = strrchr(line, ')');
      int ppid = 0;
      char st;
      if (end && sscanf(end + 1, " %c %d", &st, &ppid) == 2 && ppid == me) c.children++;
    }
    closedir(dir);
  }
#endif
  return c;
}

static int same_resources(counts a, counts b) {
  if (a.fds != b.fds || a.shm != b.shm || a.children != b.children) {
    fprintf(stderr, "before: %ld fds %ld shm %ld children; after: %ld %ld %ld\n", a.fds, a.shm,
            a.children, b.fds, b.shm, b.children);
    return 0;
  }
  return 1;
}

static const char *const MODE_NAMES[] = {"processes", "threads", "inline"};

/* ---- results against a serial scan ------------------------------------------------------ */

/* Plants the pattern at every chunk start + delta (delta -3 .. +1), at 0 and at the very end,
 * in every mode, with and without a pool; the matches must be exactly the serial scan's. */
static int boundaries_in(shk_task_mode mode, bool pooled) {
  const size_t size = 64 * 1024 + 13, chunks = 16;
  unsigned char *d = malloc(size);
  uint64_t *want = malloc(4096 * sizeof *want), *got = malloc(4096 * sizeof *got);
  SHK_CHECK(d && want && got);
  shk_task_pool *pool = NULL;
  if (pooled) SHK_CHECK(shk_task_pool_create(2, mode, &pool) == SHK_OK);
  for (int delta = -3; delta <= 1; delta++) {
    fill_random(d, size, (uint32_t)(delta + 10));
    for (size_t k = 1; k < chunks; k++)
      memcpy(d + (size_t)((ptrdiff_t)chunk_start(size, chunks, k) + delta), PROLOGUE, 4);
    memcpy(d, PROLOGUE, 4);
    memcpy(d + size - 4, PROLOGUE, 4);
    size_t nwant = serial_scan(d, size, want, 4096);
    SHK_CHECK(nwant >= chunks + 1);
    shk_task_options o = {0};
    o.chunks = chunks;
    o.workers = 2;
    o.mode = mode;
    o.halo = sizeof PROLOGUE - 1;
    shk_task_results *r = NULL;
    int rc = pooled ? shk_task_pool_run(pool, d, size, scan_fn, &o, &r)
                    : shk_task_run(d, size, scan_fn, &o, &r);
    SHK_CHECK(rc == SHK_OK);
    SHK_CHECK(shk_task_results_count(r) == chunks);
    for (size_t i = 0; i < chunks; i++) {
      const shk_task_result *res = shk_task_results_get(r, i);
      SHK_CHECK(res->status == SHK_TASK_OK && res->code == 0);
      SHK_CHECK(res->offset == chunk_start(size, chunks, i));
      SHK_CHECK(res->length == chunk_start(size, chunks, i + 1) - res->offset);
    }
    size_t ngot = gather(r, got, 4096);
    shk_task_results_free(r);
    if (ngot != nwant || memcmp(got, want, nwant * sizeof *want) != 0) {
      fprintf(stderr, "mode %s pooled %d delta %d: %zu matches, want %zu\n", MODE_NAMES[mode],
              pooled, delta, ngot, nwant);
      return __LINE__;
    }
  }
  shk_task_pool_free(pool);
  free(d);
  free(want);
  free(got);
  return 0;
}

SHK_CHILD_TEST(matches_equal_a_serial_scan_in_every_mode, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  for (int mode = 0; mode < 3; mode++) {
    int rc = boundaries_in((shk_task_mode)mode, false);
    if (rc == 0) rc = boundaries_in((shk_task_mode)mode, true);
    if (rc != 0) return rc;
  }
  return 0;
}

/* The same scan over input that lives in a shmkit segment: workers read it in place. */
SHK_CHILD_TEST(input_inside_a_segment_gives_the_same_matches, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  const size_t size = 1 << 20;
  shk_shm *shm;
  SHK_CHECK(shk_shm_create_anonymous(size + 8192, &shm) == SHK_OK);
  unsigned char *d = (unsigned char *)shk_shm_data(shm) + 4096; /* not at the segment's start */
  fill_random(d, size, 99);
  for (size_t i = 1000; i + 4 < size; i += 7919) memcpy(d + i, PROLOGUE, 4);
  uint64_t *want = malloc(1024 * sizeof *want), *got = malloc(1024 * sizeof *got);
  size_t nwant = serial_scan(d, size, want, 1024);
  shk_task_pool *pool;
  SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &pool) == SHK_OK);
  shk_task_options o = {0};
  o.chunks = 8;
  o.halo = 3;
  for (int round = 0; round < 3; round++) {
    shk_task_results *r;
    SHK_CHECK(shk_task_pool_run(pool, d, size, scan_fn, &o, &r) == SHK_OK);
    size_t ngot = gather(r, got, 1024);
    shk_task_results_free(r);
    SHK_CHECK(ngot == nwant && memcmp(got, want, nwant * sizeof *want) == 0);
  }
  shk_task_pool_free(pool);
  shk_shm_close(shm);
  free(want);
  free(got);
  return 0;
}

/* ---- sizes -------------------------------------------------------------------------------- */

static int geometry_is(shk_task_mode mode, size_t size, size_t chunks, size_t item) {
  unsigned char *d = calloc(size ? size : 1, 1);
  shk_task_options o = {0};
  o.chunks = chunks;
  o.mode = mode;
  o.workers = 2;
  o.item_size = item;
  shk_task_results *r;
  SHK_CHECK(shk_task_run(size ? d : NULL, size, echo_fn, &o, &r) == SHK_OK);
  SHK_CHECK(shk_task_results_count(r) == chunks);
  size_t next = 0, unit = item > 1 ? item : 1;
  for (size_t i = 0; i < chunks; i++) {
    const shk_task_result *res = shk_task_results_get(r, i);
    uint64_t geo[5];
    SHK_CHECK(res->status == SHK_TASK_OK && res->size == sizeof geo);
    memcpy(geo, res->data, sizeof geo);
    SHK_CHECK(geo[0] == i && geo[1] == chunks && geo[2] == next && geo[4] == size);
    SHK_CHECK(geo[3] == res->length && res->offset == next);
    SHK_CHECK(geo[3] % unit == 0);
    /* Balanced: every chunk has floor or ceil of items / chunks. */
    size_t items = size / unit;
    SHK_CHECK(geo[3] / unit == items / chunks || geo[3] / unit == items / chunks + 1);
    next += geo[3];
  }
  SHK_CHECK(next == size);
  shk_task_results_free(r);
  free(d);
  return 0;
}

SHK_CHILD_TEST(sizes_that_do_not_divide_and_tiny_inputs_are_split_by_the_rule, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  for (int mode = 0; mode < 3; mode++) {
    shk_task_mode m = (shk_task_mode)mode;
    SHK_CHECK(geometry_is(m, 1000003, 7, 1) == 0); /* not divisible */
    SHK_CHECK(geometry_is(m, 5, 8, 1) == 0); /* shorter than the chunk count: 3 empty chunks */
    SHK_CHECK(geometry_is(m, 0, 4, 1) == 0); /* empty input: only empty chunks */
    SHK_CHECK(geometry_is(m, 12 * 1001, 5, 12) == 0); /* items never split */
  }
  return 0;
}

/* ---- statuses ------------------------------------------------------------------------------ */

SHK_CHILD_TEST(a_failing_chunk_keeps_the_other_results, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  for (int mode = 0; mode < 3; mode++) {
    behave b = BEHAVE_NONE;
    b.fail_at = 2;
    shk_task_options o = {0};
    o.chunks = 5;
    o.workers = 2;
    o.mode = (shk_task_mode)mode;
    o.arg = &b;
    o.arg_size = sizeof b;
    shk_task_results *r;
    SHK_CHECK(shk_task_run("abcdefghij", 10, behave_fn, &o, &r) == SHK_ECHUNK);
    for (size_t i = 0; i < 5; i++) {
      const shk_task_result *res = shk_task_results_get(r, i);
      if (i == 2) {
        SHK_CHECK(res->status == SHK_TASK_FAILED && res->code == 44);
      } else {
        uint64_t v;
        SHK_CHECK(res->status == SHK_TASK_OK && res->size == 8);
        memcpy(&v, res->data, 8);
        SHK_CHECK(v == i);
      }
    }
    shk_task_results_free(r);
  }
  return 0;
}

SHK_CHILD_TEST(a_crashing_chunk_is_reported_and_its_worker_replaced, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  shk_task_pool *pool;
  SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &pool) == SHK_OK);
  behave b = BEHAVE_NONE;
  b.crash_at = 3;
  shk_task_options o = {0};
  o.chunks = 8;
  o.arg = &b;
  o.arg_size = sizeof b;
  char data[64] = {0};
  for (int round = 0; round < 3; round++) {
    shk_task_results *r;
    SHK_CHECK(shk_task_pool_run(pool, data, sizeof data, behave_fn, &o, &r) == SHK_ECRASHED);
    for (size_t i = 0; i < 8; i++) {
      const shk_task_result *res = shk_task_results_get(r, i);
      if (i == 3) {
        SHK_CHECK(res->status == SHK_TASK_CRASHED);
        SHK_CHECK(res->code == shk_test_access_violation_code());
        SHK_CHECK(res->size == 0);
      } else {
        if (res->status != SHK_TASK_OK)
          fprintf(stderr, "round %d chunk %zu: %s %d\n", round, i, shk_task_status_name(res->status), res->code);
        SHK_CHECK(res->status == SHK_TASK_OK && res->size == 8);
      }
    }
    shk_task_results_free(r);
  }
  /* A chunk that calls exit() is reported too, with its exit status. */
  b = BEHAVE_NONE;
  b.exit_at = 1;
  shk_task_results *r;
  SHK_CHECK(shk_task_pool_run(pool, data, sizeof data, behave_fn, &o, &r) == SHK_ECRASHED);
  SHK_CHECK(shk_task_results_get(r, 1)->status == SHK_TASK_CRASHED);
  SHK_CHECK(shk_task_results_get(r, 1)->code == 7);
  shk_task_results_free(r);
  /* The pool still works at full strength. */
  o.arg = NULL;
  o.arg_size = 0;
  SHK_CHECK(shk_task_pool_run(pool, data, sizeof data, pid_fn, &o, &r) == SHK_OK);
  shk_task_results_free(r);
  shk_task_pool_free(pool);
  return 0;
}

SHK_CHILD_TEST(a_hanging_chunk_times_out_and_nothing_is_left_behind, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  counts before = resources();
  behave b = BEHAVE_NONE;
  b.hang_at = 1;
  shk_task_options o = {0};
  o.chunks = 4;
  o.workers = 2;
  o.arg = &b;
  o.arg_size = sizeof b;
  o.timeout_ms = 300;
  char data[16] = {0};
  shk_task_results *r;
  SHK_CHECK(shk_task_run(data, sizeof data, behave_fn, &o, &r) == SHK_ETIMEDOUT);
  SHK_CHECK(shk_task_results_get(r, 1)->status == SHK_TASK_TIMED_OUT);
  for (size_t i = 0; i < 4; i++)
    if (i != 1) SHK_CHECK(shk_task_results_get(r, i)->status != SHK_TASK_CRASHED);
  SHK_CHECK(shk_task_results_get(r, 0)->status == SHK_TASK_OK);
  shk_task_results_free(r);
  SHK_CHECK(same_resources(before, resources()));
  /* A pool survives it too and serves the next call. */
  shk_task_pool *pool;
  SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &pool) == SHK_OK);
  SHK_CHECK(shk_task_pool_run(pool, data, sizeof data, behave_fn, &o, &r) == SHK_ETIMEDOUT);
  SHK_CHECK(shk_task_results_get(r, 1)->status == SHK_TASK_TIMED_OUT);
  shk_task_results_free(r);
  o.arg = NULL;
  o.arg_size = 0;
  SHK_CHECK(shk_task_pool_run(pool, data, sizeof data, behave_fn, &o, &r) == SHK_OK);
  shk_task_results_free(r);
  shk_task_pool_free(pool);
  SHK_CHECK(same_resources(before, resources()));
  return 0;
}

typedef struct progress_log {
  size_t calls, last_done, total, cancel_at;
  int monotonic;
  shk_task_pool *pool; /* when set, the callback tries a nested call on it */
  int nested_rc;
} progress_log;

static bool progress_fn(size_t done, size_t total, void *user) {
  progress_log *log = user;
  if (done < log->last_done) log->monotonic = 0;
  log->calls++;
  log->last_done = done;
  log->total = total;
  if (log->pool) {
    shk_task_results *r = NULL;
    log->nested_rc = shk_task_pool_run(log->pool, "x", 1, empty_fn, NULL, &r);
    shk_task_results_free(r);
  }
  return done < log->cancel_at;
}

SHK_CHILD_TEST(progress_reports_and_cancel_stops_the_remaining_chunks, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  for (int mode = 0; mode < 3; mode++) {
    behave b = BEHAVE_NONE;
    b.slow_ms = 20;
    shk_task_options o = {0};
    o.chunks = 40;
    o.workers = 2;
    o.mode = (shk_task_mode)mode;
    o.arg = &b;
    o.arg_size = sizeof b;
    progress_log log = {0, 0, 0, (size_t)-1, 1, NULL, 0};
    o.progress = progress_fn;
    o.progress_user = &log;
    char data[40] = {0};
    shk_task_results *r;
    SHK_CHECK(shk_task_run(data, sizeof data, behave_fn, &o, &r) == SHK_OK);
    SHK_CHECK(log.calls >= 1 && log.monotonic && log.last_done == 40 && log.total == 40);
    shk_task_results_free(r);

    progress_log cancel = {0, 0, 0, 3, 1, NULL, 0};
    o.progress_user = &cancel;
    SHK_CHECK(shk_task_run(data, sizeof data, behave_fn, &o, &r) == SHK_ECANCELED);
    size_t ok = 0, cancelled = 0;
    for (size_t i = 0; i < 40; i++) {
      const shk_task_result *res = shk_task_results_get(r, i);
      ok += res->status == SHK_TASK_OK;
      cancelled += res->status == SHK_TASK_CANCELLED;
      SHK_CHECK(res->status == SHK_TASK_OK || res->status == SHK_TASK_CANCELLED);
      if (res->status == SHK_TASK_OK) SHK_CHECK(res->size == 8);
    }
    SHK_CHECK(ok >= 3 && cancelled > 0 && ok + cancelled == 40);
    shk_task_results_free(r);
  }
  return 0;
}

SHK_CHILD_TEST(a_pool_refuses_a_second_call_while_one_runs, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  shk_task_pool *pool;
  SHK_CHECK(shk_task_pool_create(1, SHK_TASK_THREADS, &pool) == SHK_OK);
  progress_log log = {0, 0, 0, (size_t)-1, 1, pool, 0};
  shk_task_options o = {0};
  o.chunks = 3;
  o.progress = progress_fn;
  o.progress_user = &log;
  shk_task_results *r;
  SHK_CHECK(shk_task_pool_run(pool, "abc", 3, empty_fn, &o, &r) == SHK_OK);
  SHK_CHECK(log.nested_rc == SHK_EBUSY);
  shk_task_results_free(r);
  shk_task_pool_free(pool);
  return 0;
}

/* ---- data in and out ------------------------------------------------------------------------ */

SHK_CHILD_TEST(chunks_can_write_several_mib_each, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  shk_task_pool *pool;
  SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &pool) == SHK_OK);
  behave b = BEHAVE_NONE;
  b.out_mib = 6;
  shk_task_options o = {0};
  o.chunks = 5;
  o.arg = &b;
  o.arg_size = sizeof b;
  char data[5] = {0};
  for (int round = 0; round < 2; round++) {
    shk_task_results *r;
    SHK_CHECK(shk_task_pool_run(pool, data, sizeof data, behave_fn, &o, &r) == SHK_OK);
    for (size_t i = 0; i < 5; i++) {
      const shk_task_result *res = shk_task_results_get(r, i);
      SHK_CHECK(res->status == SHK_TASK_OK && res->size == 8 + ((size_t)6 << 20));
      const unsigned char *p = (const unsigned char *)res->data + 8;
      unsigned char want = (unsigned char)(i * 7 + 1);
      for (size_t k = 0; k < ((size_t)6 << 20); k += 4093) SHK_CHECK(p[k] == want);
      SHK_CHECK(p[((size_t)6 << 20) - 1] == want);
    }
    shk_task_results_free(r);
  }
  shk_task_pool_free(pool);
  return 0;
}

SHK_CHILD_TEST(argument_bytes_arrive_intact_in_every_mode, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  size_t arg_size = 300 * 1000 + 7;
  unsigned char *arg = malloc(arg_size);
  fill_random(arg, arg_size, 5);
  for (int mode = 0; mode < 3; mode++) {
    shk_task_options o = {0};
    o.chunks = 3;
    o.workers = 2;
    o.mode = (shk_task_mode)mode;
    o.arg = arg;
    o.arg_size = arg_size;
    shk_task_results *r;
    SHK_CHECK(shk_task_run("0123456789", 10, echo_fn, &o, &r) == SHK_OK);
    for (size_t i = 0; i < 3; i++) {
      const shk_task_result *res = shk_task_results_get(r, i);
      SHK_CHECK(res->size == 40 + arg_size);
      SHK_CHECK(memcmp((const char *)res->data + 40, arg, arg_size) == 0);
    }
    shk_task_results_free(r);
  }
  free(arg);
  return 0;
}

SHK_CHILD_TEST(process_workers_are_other_processes_and_threads_are_not, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
#ifdef _WIN32
  uint64_t me = GetCurrentProcessId();
#else
  uint64_t me = (uint64_t)getpid();
#endif
  for (int mode = 0; mode < 3; mode++) {
    shk_task_options o = {0};
    o.chunks = 4;
    o.workers = 2;
    o.mode = (shk_task_mode)mode;
    shk_task_results *r;
    SHK_CHECK(shk_task_run("abcd", 4, pid_fn, &o, &r) == SHK_OK);
    for (size_t i = 0; i < 4; i++) {
      uint64_t pid;
      memcpy(&pid, shk_task_results_get(r, i)->data, 8);
      SHK_CHECK(mode == SHK_TASK_PROCESSES ? pid != me : pid == me);
    }
    shk_task_results_free(r);
  }
  return 0;
}

/* ---- nothing left behind ------------------------------------------------------------------ */

SHK_CHILD_TEST(a_pool_reused_a_thousand_times_leaks_nothing, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  unsigned char data[4096];
  fill_random(data, sizeof data, 3);
  shk_shm *shm;
  SHK_CHECK(shk_shm_create_anonymous(sizeof data, &shm) == SHK_OK);
  memcpy(shk_shm_data(shm), data, sizeof data);
  /* Warm-up: the first calls may allocate what later calls reuse (libc, the staging copy). */
  counts before = resources();
  for (int mode = 0; mode < 3; mode++) {
    shk_task_pool *pool;
    SHK_CHECK(shk_task_pool_create(2, (shk_task_mode)mode, &pool) == SHK_OK);
    shk_task_options o = {0};
    o.chunks = 4;
    o.halo = 3;
    for (int i = 0; i < 1000; i++) {
      shk_task_results *r;
      const void *in = (i & 1) ? data : shk_shm_data(shm); /* copied, then borrowed */
      int rc = shk_task_pool_run(pool, in, sizeof data, scan_fn, &o, &r);
      if (rc != SHK_OK) fprintf(stderr, "mode %d call %d: %s\n", mode, i, shk_error_name(rc));
      for (size_t k = 0; rc != SHK_OK && k < 4; k++)
        fprintf(stderr, "  chunk %zu: %s %d\n", k, shk_task_status_name(shk_task_results_get(r, k)->status), shk_task_results_get(r, k)->code);
      SHK_CHECK(rc == SHK_OK);
      SHK_CHECK(shk_task_results_count(r) == 4);
      shk_task_results_free(r);
    }
    shk_task_pool_free(pool);
    SHK_CHECK(same_resources(before, resources()));
  }
  shk_shm_close(shm);
  return 0;
}

SHK_CHILD_TEST(one_call_runs_leave_nothing_behind_in_any_outcome, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  counts before = resources();
  char data[32] = {0};
  behave kinds[4] = {BEHAVE_NONE, BEHAVE_NONE, BEHAVE_NONE, BEHAVE_NONE};
  kinds[1].fail_at = 0;
  kinds[2].crash_at = 1;
  kinds[3].exit_at = 2;
  for (int i = 0; i < 4; i++) {
    shk_task_options o = {0};
    o.chunks = 4;
    o.workers = 2;
    o.arg = &kinds[i];
    o.arg_size = sizeof kinds[i];
    shk_task_results *r;
    int rc = shk_task_run(data, sizeof data, behave_fn, &o, &r);
    SHK_CHECK(i == 0 ? rc == SHK_OK : rc != SHK_OK);
    shk_task_results_free(r);
    SHK_CHECK(same_resources(before, resources()));
  }
  return 0;
}

/* Whether the process with this id has ended. */
static int process_gone(uint64_t pid) {
#ifdef _WIN32
  HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)pid);
  if (!h) return 1;
  int gone = WaitForSingleObject(h, 0) == WAIT_OBJECT_0;
  CloseHandle(h);
  return gone;
#else
  return kill((pid_t)pid, 0) != 0;
#endif
}

/* Records the worker pids in a named segment, then waits to be killed. */
static int orphan_maker_child(int argc, char **argv) {
  if (argc < 1) return 2;
  shk_shm *shm;
  if (shk_shm_open(argv[0], SHK_SHM_READ_WRITE, &shm) != SHK_OK) return 3;
  shk_task_pool *pool;
  if (shk_task_pool_create(2, SHK_TASK_PROCESSES, &pool) != SHK_OK) return 4;
  shk_task_options o = {0};
  o.chunks = 2;
  behave b = BEHAVE_NONE;
  b.slow_ms = 200; /* both workers take one chunk each */
  o.arg = &b;
  o.arg_size = sizeof b;
  shk_task_results *r;
  if (shk_task_pool_run(pool, "ab", 2, pid_fn, &o, &r) != SHK_OK) return 5;
  uint64_t *pids = shk_shm_data(shm);
  memcpy(&pids[1], shk_task_results_get(r, 0)->data, 8);
  memcpy(&pids[2], shk_task_results_get(r, 1)->data, 8);
  pids[0] = 1; /* ready */
  for (;;) shk_test_sleep_ms(100);
}

static void workers_die_when_the_caller_dies(void **state) {
  (void)state;
  char name[64];
  shk_shm *shm;
  assert_int_equal(shk_shm_create(shk_test_unique_name(name, sizeof name, "orph"), 4096, &shm), SHK_OK);
  volatile uint64_t *pids = shk_shm_data(shm);
  const char *args[1] = {name};
  shk_test_proc proc;
  assert_int_equal(shk_test_spawn("orphan_maker", 1, args, &proc), 0);
  for (int i = 0; i < 3000 && pids[0] == 0; i++) shk_test_sleep_ms(5);
  assert_int_equal(pids[0], 1);
  for (int k = 1; k <= 2; k++) assert_false(process_gone(pids[k]));
#ifdef _WIN32
  TerminateProcess((HANDLE)proc.handle, 9);
#else
  kill((pid_t)proc.pid, SIGKILL);
#endif
  shk_test_exit how = shk_test_wait(&proc, 10000);
  assert_int_equal(how.timed_out, 0);
  /* The workers end at once (death signal / job closed); give the system a moment. */
  for (int k = 1; k <= 2; k++) {
    int gone = 0;
    for (int i = 0; i < 500 && !gone; i++) {
      gone = process_gone(pids[k]);
      if (!gone) shk_test_sleep_ms(10);
    }
    assert_true(gone);
  }
  shk_shm_close(shm);
  shk_shm_unlink(name);
}

/* ---- the Windows hook -------------------------------------------------------------------- */

/* Runs without shk_worker_main() having been called (main skips it for this child). */
static int no_hook_child(int argc, char **argv) {
  (void)argc;
  (void)argv;
  shk_task_results *r = NULL;
  shk_task_pool *pool = NULL;
  int rc = shk_task_run("abcd", 4, empty_fn, NULL, &r);
  int prc = shk_task_pool_create(2, SHK_TASK_PROCESSES, &pool);
#ifdef _WIN32
  SHK_CHECK(rc == SHK_ENOHOOK && r == NULL);
  SHK_CHECK(prc == SHK_ENOHOOK && pool == NULL);
  /* Threads and inline need no hook. */
  shk_task_options o = {0};
  o.mode = SHK_TASK_THREADS;
  SHK_CHECK(shk_task_run("abcd", 4, empty_fn, &o, &r) == SHK_OK);
  shk_task_results_free(r);
#else
  /* Forked workers need no hook: it is a no-op here. */
  SHK_CHECK(rc == SHK_OK && prc == SHK_OK);
  shk_task_results_free(r);
  shk_task_pool_free(pool);
#endif
  return 0;
}

static void a_program_without_the_hook_gets_a_clear_error(void **state) {
  (void)state;
  shk_test_run_child_ok("no_hook", 0, NULL, CHILD_TIMEOUT_MS);
}

static void the_hook_returns_at_once_in_a_normal_run(void **state) {
  (void)state;
  char arg0[] = "prog", arg1[] = "--not-a-marker";
  char *argv[] = {arg0, arg1, NULL};
  assert_int_equal(shk_worker_main(2, argv), SHK_OK);
  assert_int_equal(shk_worker_main(0, NULL), SHK_OK);
}

/* ---- arguments --------------------------------------------------------------------------- */

static void bad_arguments_are_refused(void **state) {
  (void)state;
  shk_task_results *r = (shk_task_results *)1;
  shk_task_options o = {0};
  assert_int_equal(shk_task_run("ab", 2, NULL, NULL, &r), SHK_EINVAL);
  assert_null(r);
  assert_int_equal(shk_task_run("ab", 2, empty_fn, NULL, NULL), SHK_EINVAL);
  assert_int_equal(shk_task_run(NULL, 2, empty_fn, NULL, &r), SHK_EINVAL);
  o.item_size = 4;
  assert_int_equal(shk_task_run("abcdef", 6, empty_fn, &o, &r), SHK_EINVAL);
  o.item_size = 0;
  o.chunks = SHK_TASK_CHUNKS_MAX + 1;
  assert_int_equal(shk_task_run("ab", 2, empty_fn, &o, &r), SHK_ERANGE);
  o.chunks = 0;
  o.arg_size = SHK_TASK_ARG_MAX + 1;
  o.arg = "x";
  assert_int_equal(shk_task_run("ab", 2, empty_fn, &o, &r), SHK_ERANGE);
  o.arg_size = 4;
  o.arg = NULL;
  assert_int_equal(shk_task_run("ab", 2, empty_fn, &o, &r), SHK_EINVAL);
  o.arg_size = 0;
  o.mode = (shk_task_mode)7;
  assert_int_equal(shk_task_run("ab", 2, empty_fn, &o, &r), SHK_EINVAL);
  o.mode = SHK_TASK_INLINE;
  o.workers = SHK_TASK_WORKERS_MAX + 1;
  assert_int_equal(shk_task_run("ab", 2, empty_fn, &o, &r), SHK_ERANGE);
  assert_null(r);

  shk_task_pool *pool = (shk_task_pool *)1;
  assert_int_equal(shk_task_pool_create(1, SHK_TASK_THREADS, NULL), SHK_EINVAL);
  assert_int_equal(shk_task_pool_create(1, (shk_task_mode)9, &pool), SHK_EINVAL);
  assert_null(pool);
  assert_int_equal(shk_task_pool_create(SHK_TASK_WORKERS_MAX + 1, SHK_TASK_THREADS, &pool),
                   SHK_ERANGE);
  assert_int_equal(shk_task_pool_run(NULL, "ab", 2, empty_fn, NULL, &r), SHK_EINVAL);
  assert_int_equal(shk_task_pool_create(2, SHK_TASK_INLINE, &pool), SHK_OK);
  assert_int_equal(shk_task_pool_workers(pool), 1);
  assert_int_equal(shk_task_pool_run(pool, "ab", 2, NULL, NULL, &r), SHK_EINVAL);
  assert_int_equal(shk_task_pool_run(pool, "ab", 2, empty_fn, NULL, NULL), SHK_EINVAL);
  shk_task_pool_free(pool);
}

static int null_out_fn(const shk_task_chunk *c, shk_task_out *out) {
  (void)c;
  if (shk_task_out_write(NULL, "x", 1) != SHK_EINVAL) return 1;
  if (shk_task_out_write(out, NULL, 1) != SHK_EINVAL) return 2;
  if (shk_task_out_write(out, NULL, 0) != SHK_OK) return 3;
  return 0;
}

static void the_output_writer_checks_its_arguments(void **state) {
  (void)state;
  shk_task_options o = {0};
  o.mode = SHK_TASK_INLINE;
  shk_task_results *r;
  assert_int_equal(shk_task_run("ab", 2, null_out_fn, &o, &r), SHK_OK);
  assert_int_equal(shk_task_results_get(r, 0)->size, 0);
  shk_task_results_free(r);
}

static void accessors_accept_null_and_name_every_status(void **state) {
  (void)state;
  assert_int_equal(shk_task_results_count(NULL), 0);
  assert_null(shk_task_results_get(NULL, 0));
  shk_task_results_free(NULL);
  shk_task_pool_free(NULL);
  assert_int_equal(shk_task_pool_workers(NULL), 0);
  assert_string_equal(shk_task_status_name(SHK_TASK_OK), "ok");
  assert_string_equal(shk_task_status_name(SHK_TASK_FAILED), "failed");
  assert_string_equal(shk_task_status_name(SHK_TASK_CRASHED), "crashed");
  assert_string_equal(shk_task_status_name(SHK_TASK_TIMED_OUT), "timed out");
  assert_string_equal(shk_task_status_name(SHK_TASK_CANCELLED), "cancelled");
  assert_string_equal(shk_task_status_name((shk_task_status)99), "unknown");
  shk_task_options o = {0};
  o.mode = SHK_TASK_INLINE;
  o.chunks = 2;
  shk_task_results *r;
  assert_int_equal(shk_task_run("ab", 2, empty_fn, &o, &r), SHK_OK);
  assert_null(shk_task_results_get(r, 2));
  shk_task_results_free(r);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(bad_arguments_are_refused),
    cmocka_unit_test(the_output_writer_checks_its_arguments),
    cmocka_unit_test(accessors_accept_null_and_name_every_status),
    cmocka_unit_test(the_hook_returns_at_once_in_a_normal_run),
    cmocka_unit_test(matches_equal_a_serial_scan_in_every_mode),
    cmocka_unit_test(input_inside_a_segment_gives_the_same_matches),
    cmocka_unit_test(sizes_that_do_not_divide_and_tiny_inputs_are_split_by_the_rule),
    cmocka_unit_test(a_failing_chunk_keeps_the_other_results),
    cmocka_unit_test(a_crashing_chunk_is_reported_and_its_worker_replaced),
    cmocka_unit_test(a_hanging_chunk_times_out_and_nothing_is_left_behind),
    cmocka_unit_test(progress_reports_and_cancel_stops_the_remaining_chunks),
    cmocka_unit_test(a_pool_refuses_a_second_call_while_one_runs),
    cmocka_unit_test(chunks_can_write_several_mib_each),
    cmocka_unit_test(argument_bytes_arrive_intact_in_every_mode),
    cmocka_unit_test(process_workers_are_other_processes_and_threads_are_not),
    cmocka_unit_test(a_pool_reused_a_thousand_times_leaks_nothing),
    cmocka_unit_test(one_call_runs_leave_nothing_behind_in_any_outcome),
    cmocka_unit_test(workers_die_when_the_caller_dies),
    cmocka_unit_test(a_program_without_the_hook_gets_a_clear_error),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(matches_equal_a_serial_scan_in_every_mode),
    SHK_TEST_CHILD(input_inside_a_segment_gives_the_same_matches),
    SHK_TEST_CHILD(sizes_that_do_not_divide_and_tiny_inputs_are_split_by_the_rule),
    SHK_TEST_CHILD(a_failing_chunk_keeps_the_other_results),
    SHK_TEST_CHILD(a_crashing_chunk_is_reported_and_its_worker_replaced),
    SHK_TEST_CHILD(a_hanging_chunk_times_out_and_nothing_is_left_behind),
    SHK_TEST_CHILD(progress_reports_and_cancel_stops_the_remaining_chunks),
    SHK_TEST_CHILD(a_pool_refuses_a_second_call_while_one_runs),
    SHK_TEST_CHILD(chunks_can_write_several_mib_each),
    SHK_TEST_CHILD(argument_bytes_arrive_intact_in_every_mode),
    SHK_TEST_CHILD(process_workers_are_other_processes_and_threads_are_not),
    SHK_TEST_CHILD(a_pool_reused_a_thousand_times_leaks_nothing),
    SHK_TEST_CHILD(one_call_runs_leave_nothing_behind_in_any_outcome),
    {"orphan_maker", orphan_maker_child},
    SHK_TEST_CHILD(no_hook),
};

int main(int argc, char **argv) {
  /* The hook first, as every program must; the no_hook child is the one that forgot it. */
  if (!(argc >= 3 && strcmp(argv[2], "no_hook") == 0)) shk_worker_main(argc, argv);
  return shk_test_main(argc, argv, __FILE__, tests, sizeof tests / sizeof tests[0], children,
                       sizeof children / sizeof children[0]);
}
