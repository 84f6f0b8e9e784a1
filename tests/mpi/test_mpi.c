/* The MPI component, run by ctest under mpiexec with 1, 2 and 4 ranks: every test is
 * collective. Matches planted across every chunk and rank boundary are found exactly once
 * (positions equal a serial scan) for many chunk counts, with the input on the root or in a
 * file, gathered or left distributed; a real binary's prologue count; a chunk that crashes,
 * fails or times out on one rank; arguments that differ between ranks; transfers split into
 * many messages; a sparse file above 2 GiB; each rank's kept worker processes (the same in
 * every call; the halo read from the receive buffer, the root's copy or the root's own
 * segment; a function in a module loaded after they started). */
#include <dlfcn.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "shmkit.h"
#include "shmkit/mpi.h"

static int rank, ranks;

static const unsigned char PROLOGUE[4] = {0x55, 0x48, 0x89, 0xE5};

/* What scan_fn does besides scanning, chosen per global chunk index by the argument bytes. */
typedef struct behave {
  int64_t crash_at, hang_at, fail_at;
} behave;

/* Writes the absolute offset of every match that starts in its own chunk (reading into the
 * halo for matches that cross its end). memchr first: fast over the zeros of a sparse file. */
static int scan_fn(const shk_task_chunk *c, shk_task_out *out) {
  behave b = {-1, -1, -1};
  if (c->arg_size == sizeof b) memcpy(&b, c->arg, sizeof b);
  if ((int64_t)c->index == b.crash_at) *(volatile int *)NULL = 1;
  if ((int64_t)c->index == b.hang_at) sleep(60);
  if ((int64_t)c->index == b.fail_at) return 42;
  const unsigned char *d = c->data;
  size_t i = 0;
  while (i < c->size) {
    const unsigned char *p = memchr(d + i, PROLOGUE[0], c->size - i);
    if (!p) break;
    i = (size_t)(p - d);
    if (i + sizeof PROLOGUE <= c->readable && memcmp(p, PROLOGUE, sizeof PROLOGUE) == 0) {
      uint64_t at = (uint64_t)(c->offset + i);
      int rc = shk_task_out_write(out, &at, sizeof at);
      if (rc != SHK_OK) return rc;
    }
    i++;
  }
  return 0;
}

static size_t serial_scan(const unsigned char *d, size_t size, uint64_t *found, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i + sizeof PROLOGUE <= size; i++)
    if (memcmp(d + i, PROLOGUE, sizeof PROLOGUE) == 0 && n < cap) found[n++] = i;
  return n;
}

/* Random bytes (no accidental prologue) with a prologue planted so that one crosses, or
 * starts at, every boundary of every chunk count in `counts` (every rank boundary is one). */
static unsigned char *make_input(size_t size, const size_t *counts, size_t ncounts) {
  unsigned char *d = malloc(size ? size : 1);
  uint64_t x = 88172645463325252u;
  for (size_t i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    d[i] = (unsigned char)(x % 0x50); /* never 0x55: only planted prologues */
  }
  for (size_t k = 0; k < ncounts; k++) {
    for (size_t c = 1; c < counts[k]; c++) {
      size_t b = c * (size / counts[k]) + (c < size % counts[k] ? c : size % counts[k]);
      size_t back = 1 + (c + k) % 4; /* starts 1..4 bytes before the boundary */
      if (b >= back && b - back + sizeof PROLOGUE <= size)
        memcpy(d + b - back, PROLOGUE, sizeof PROLOGUE);
    }
  }
  if (size >= 4) memcpy(d + size - 4, PROLOGUE, 4); /* at the very end */
  return d;
}

/* The files rank 0 made, removed at exit also when an assertion ended a test early. */
static char made[16][128];
static int nmade;
static pid_t made_by; /* a forked worker that ran exit handlers must not remove them */

static void remove_made(void) {
  if (getpid() != made_by) return;
  for (int i = 0; i < nmade; i++) unlink(made[i]);
}

/* A file name every rank agrees on (the root's pid). */
static void shared_name(char *name, size_t size, const char *tag) {
  int pid = (int)getpid();
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  snprintf(name, size, "/tmp/shk-mpi-test-%d-%s", pid, tag);
  if (rank == 0 && nmade < 16) snprintf(made[nmade++], sizeof made[0], "%s", name);
}

static void write_file(const char *path, const unsigned char *d, size_t size) {
  if (rank == 0) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

/* Checks gathered results against the serial positions: global order, contiguous chunks,
 * every chunk's rank as the split says, every match exactly once. */
static void check_gathered(const shk_mpi_results *res, size_t chunks, size_t size,
                           const uint64_t *want, size_t nwant) {
  assert_int_equal(shk_mpi_results_count(res), chunks);
  size_t at = 0, found = 0;
  for (size_t i = 0; i < chunks; i++) {
    const shk_mpi_result *r = shk_mpi_results_get(res, i);
    assert_non_null(r);
    assert_int_equal(r->status, SHK_TASK_OK);
    assert_int_equal(r->index, i);
    assert_int_equal(r->offset, at);
    /* chunk i belongs to the rank r with first(r) <= i < first(r+1) */
    size_t first = (size_t)((uint64_t)r->rank * chunks / (uint64_t)ranks);
    size_t next = (size_t)((uint64_t)(r->rank + 1) * chunks / (uint64_t)ranks);
    assert_true(first <= i && i < next);
    assert_non_null(r->host);
    assert_true(r->host[0] != '\0');
    at += r->length;
    assert_int_equal(r->size % 8, 0);
    for (size_t k = 0; k < r->size / 8; k++) {
      uint64_t pos;
      memcpy(&pos, (const unsigned char *)r->data + 8 * k, 8);
      assert_true(found < nwant);
      assert_int_equal(pos, want[found]);
      found++;
    }
  }
  assert_int_equal(at, size);
  assert_int_equal(found, nwant);
}

/* Counts the matches of distributed results on every rank and sums them over all ranks. */
static size_t distributed_total(const shk_mpi_results *res) {
  unsigned long long mine = 0, all = 0;
  for (size_t i = 0; i < shk_mpi_results_count(res); i++) {
    const shk_mpi_result *r = shk_mpi_results_get(res, i);
    assert_int_equal(r->rank, rank);
    mine += r->size / 8;
  }
  MPI_Allreduce(&mine, &all, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  return (size_t)all;
}

static void run_both_kinds(const unsigned char *d, size_t size, const char *path, size_t chunks,
                           size_t halo, shk_task_mode mode) {
  uint64_t *want = malloc(sizeof *want * (size / 4 + 1));
  size_t nwant = serial_scan(d, size, want, size / 4 + 1);
  shk_task_options o = {0};
  o.chunks = chunks;
  o.halo = halo;
  o.mode = mode;
  /* The root moves with the chunk count: the last rank's neighbours need their halo too. */
  int root = (int)(chunks % (size_t)ranks);
  for (int kind = 0; kind < 2; kind++) {
    for (unsigned flags = 0; flags <= SHK_MPI_DISTRIBUTED; flags += SHK_MPI_DISTRIBUTED) {
      shk_mpi_results *res = NULL;
      int rc = kind == 0 ? shk_mpi_task_run(MPI_COMM_WORLD, root, rank == root ? d : NULL,
                                            rank == root ? size : 0, scan_fn, &o, flags, &res)
                         : shk_mpi_task_run_file(MPI_COMM_WORLD, root, path, scan_fn, &o, flags,
                                                 &res);
      if (rc != SHK_OK) fprintf(stderr, "rank %d chunks %zu kind %d: %s\n", rank, chunks, kind, shk_strerror(rc));
      assert_int_equal(rc, SHK_OK);
      if (flags) {
        assert_int_equal(distributed_total(res), nwant);
      } else if (rank == root) {
        check_gathered(res, chunks, size, want, nwant);
      } else {
        assert_null(res);
      }
      shk_mpi_results_free(res);
    }
  }
  free(want);
}

static void matches_across_every_chunk_and_rank_boundary_are_found_once(void **state) {
  (void)state;
  size_t counts[] = {1, 2, 3, 4, 5, 7, 8, 13, 16, 64, 100};
  size_t size = (1u << 20) + 17;
  unsigned char *d = make_input(size, counts, sizeof counts / sizeof counts[0]);
  char path[128];
  shared_name(path, sizeof path, "planted");
  write_file(path, d, size);
  for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++)
    run_both_kinds(d, size, path, counts[k], sizeof PROLOGUE - 1, SHK_TASK_PROCESSES);
  run_both_kinds(d, size, path, 9, sizeof PROLOGUE - 1, SHK_TASK_THREADS);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) unlink(path);
  free(d);
}

/* A halo longer than whole runs of later ranks, empty chunks and an empty input. */
static void halos_longer_than_a_rank_and_empty_chunks_work(void **state) {
  (void)state;
  size_t counts[] = {16, 40};
  size_t size = 37;
  unsigned char *d = make_input(size, counts, 2);
  char path[128];
  shared_name(path, sizeof path, "small");
  write_file(path, d, size);
  run_both_kinds(d, size, path, 16, 20, SHK_TASK_PROCESSES);
  run_both_kinds(d, size, path, 40, 3, SHK_TASK_INLINE);
  write_file(path, d, 0);
  run_both_kinds(d, 0, path, 8, 3, SHK_TASK_THREADS);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) unlink(path);
  free(d);
}

/* Many small messages instead of one per run: the same answers. */
static void transfers_split_into_many_messages_give_the_same_answer(void **state) {
  (void)state;
  size_t counts[] = {6, 12};
  size_t size = 200000;
  unsigned char *d = make_input(size, counts, 2);
  char path[128];
  shared_name(path, sizeof path, "split");
  write_file(path, d, size);
  setenv("SHK_MPI_MESSAGE_MAX", "4093", 1);
  run_both_kinds(d, size, path, 12, 3, SHK_TASK_PROCESSES);
  unsetenv("SHK_MPI_MESSAGE_MAX");
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) unlink(path);
  free(d);
}

/* A real binary nobody here wrote: the distributed count equals the serial count. */
static void a_real_binary_gives_the_serial_prologue_count(void **state) {
  (void)state;
  const char *candidates[] = {"/usr/lib/x86_64-linux-gnu/libc.so.6", "/bin/bash", "/bin/sh"};
  const char *path = NULL;
  for (size_t i = 0; i < 3 && !path; i++)
    if (access(candidates[i], R_OK) == 0) path = candidates[i];
  if (!path) skip();
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  size_t size = (size_t)ftell(f);
  rewind(f);
  unsigned char *d = malloc(size);
  assert_int_equal(fread(d, 1, size, f), size);
  fclose(f);
  for (size_t chunks = 5; chunks <= 64; chunks += 59)
    run_both_kinds(d, size, path, chunks, 3, SHK_TASK_PROCESSES);
  free(d);
}

/* Writes the worker's process id. */
static int pid_fn(const shk_task_chunk *c, shk_task_out *out) {
  (void)c;
  uint64_t pid = (uint64_t)getpid();
  return shk_task_out_write(out, &pid, sizeof pid);
}

/* Each rank keeps its worker processes between calls (no fork per call): over calls of either
 * input kind and a growing input, a rank's chunks ran in at most as many processes as it has
 * workers (at most 2 here), none of them the rank itself. */
static void a_rank_runs_every_call_on_the_same_worker_processes(void **state) {
  (void)state;
  size_t counts[] = {8};
  size_t sizes[] = {1000, 300000, 300000, 5000};
  unsigned char *d = make_input(300000, counts, 1);
  char path[128];
  shared_name(path, sizeof path, "pids");
  write_file(path, d, 300000);
  uint64_t seen[8];
  size_t nseen = 0;
  for (size_t call = 0; call < 4; call++) {
    shk_task_options o = {0};
    o.workers = 2;
    o.chunks = 4 * (size_t)ranks;
    shk_mpi_results *res = NULL;
    int rc = call < 3 ? shk_mpi_task_run(MPI_COMM_WORLD, 0, rank == 0 ? d : NULL,
                                         rank == 0 ? sizes[call] : 0, pid_fn, &o,
                                         SHK_MPI_DISTRIBUTED, &res)
                      : shk_mpi_task_run_file(MPI_COMM_WORLD, 0, path, pid_fn, &o,
                                              SHK_MPI_DISTRIBUTED, &res);
    assert_int_equal(rc, SHK_OK);
    assert_int_equal(shk_mpi_results_count(res), 4);
    for (size_t i = 0; i < 4; i++) {
      const shk_mpi_result *r = shk_mpi_results_get(res, i);
      assert_int_equal(r->size, 8);
      uint64_t pid;
      memcpy(&pid, r->data, 8);
      assert_true(pid != (uint64_t)getpid());
      size_t k = 0;
      while (k < nseen && seen[k] != pid) k++;
      if (k == nseen) {
        assert_true(nseen < 2); /* a third process: workers were started again */
        seen[nseen++] = pid;
      }
    }
    shk_mpi_results_free(res);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) unlink(path);
  free(d);
}

/* shk_mpi_release() stops and reaps the kept workers (none of them is left, not even as a
 * zombie); the next call starts new ones. */
static void releasing_ends_the_kept_workers_and_the_next_call_starts_new_ones(void **state) {
  (void)state;
  unsigned char d[4096] = {0};
  shk_task_options o = {0};
  o.chunks = 2 * (size_t)ranks;
  uint64_t before[2] = {0, 0};
  for (int round = 0; round < 2; round++) {
    shk_mpi_results *res = NULL;
    assert_int_equal(shk_mpi_task_run(MPI_COMM_WORLD, 0, rank == 0 ? d : NULL,
                                      rank == 0 ? sizeof d : 0, pid_fn, &o, SHK_MPI_DISTRIBUTED,
                                      &res),
                     SHK_OK);
    assert_int_equal(shk_mpi_results_count(res), 2);
    for (size_t i = 0; i < 2; i++) {
      uint64_t pid;
      memcpy(&pid, shk_mpi_results_get(res, i)->data, 8);
      if (round == 0) before[i] = pid;
      else assert_true(pid != before[0] && pid != before[1]);
    }
    shk_mpi_results_free(res);
    if (round == 0) {
      shk_mpi_release();
      for (size_t i = 0; i < 2; i++) assert_int_equal(kill((pid_t)before[i], 0), -1);
    }
  }
  shk_mpi_release();
  shk_mpi_release(); /* nothing kept: nothing to do */
}

/* The kept workers read each chunk's halo wherever the rank's bytes are: the receive buffer as
 * it grows (a new segment), the root's own run (copied into shared memory: the workers started
 * before it existed), the root's input inside a shmkit segment (read in place), and a file. */
static void kept_workers_read_every_halo_of_a_growing_input(void **state) {
  (void)state;
  size_t counts[] = {3, 5, 8};
  size_t sizes[] = {999, 65536 + 7, (3u << 20) + 5};
  for (size_t k = 0; k < 3; k++) {
    unsigned char *d = make_input(sizes[k], counts, 3);
    char path[128];
    shared_name(path, sizeof path, "grow");
    write_file(path, d, sizes[k]);
    shk_shm *seg = NULL;
    assert_int_equal(shk_shm_create_anonymous(sizes[k], &seg), SHK_OK);
    memcpy(shk_shm_data(seg), d, sizes[k]);
    for (size_t c = 0; c < 3; c++) {
      run_both_kinds(d, sizes[k], path, counts[c], sizeof PROLOGUE - 1, SHK_TASK_PROCESSES);
      run_both_kinds(shk_shm_data(seg), sizes[k], path, counts[c], sizeof PROLOGUE - 1,
                     SHK_TASK_PROCESSES);
    }
    shk_shm_close(seg);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) unlink(path);
    free(d);
  }
}

/* A chunk function in a module loaded after the rank's workers started is run correctly (by
 * workers that have the module), before and after it is loaded a second time. */
static void a_function_of_a_module_loaded_after_the_workers_started_runs(void **state) {
  (void)state;
  size_t size = 100003;
  unsigned char *d = malloc(size);
  uint64_t want = 0;
  for (size_t i = 0; i < size; i++) want += (d[i] = (unsigned char)(i * 7 % 256)) == 0x55;
  shk_task_options o = {0};
  o.chunks = 3 * (size_t)ranks;
  shk_mpi_results *res = NULL;
  /* The workers start (or are already there) before the module is loaded. */
  assert_int_equal(shk_mpi_task_run(MPI_COMM_WORLD, 0, rank == 0 ? d : NULL, rank == 0 ? size : 0,
                                    pid_fn, &o, 0, &res),
                   SHK_OK);
  shk_mpi_results_free(res);
  void *lib = dlopen(SHK_TEST_LATE_MODULE, RTLD_NOW | RTLD_LOCAL);
  assert_non_null(lib);
  shk_task_fn fn;
  void *sym = dlsym(lib, "late_count");
  assert_non_null(sym);
  memcpy(&fn, &sym, sizeof fn);
  for (int round = 0; round < 2; round++) {
    int rc = shk_mpi_task_run(MPI_COMM_WORLD, 0, rank == 0 ? d : NULL, rank == 0 ? size : 0, fn,
                              &o, 0, &res);
    assert_int_equal(rc, SHK_OK);
    if (rank == 0) {
      uint64_t got = 0;
      for (size_t i = 0; i < shk_mpi_results_count(res); i++) {
        const shk_mpi_result *r = shk_mpi_results_get(res, i);
        uint64_t n;
        assert_int_equal(r->size, 8);
        memcpy(&n, r->data, 8);
        got += n;
      }
      assert_int_equal(got, want);
    }
    shk_mpi_results_free(res);
  }
  /* Not unloaded: the kept workers may hold it until MPI_Finalize. */
  free(d);
}

/* One chunk on the last rank crashes, fails or hangs: a per-chunk status, the same code on
 * every rank, every other chunk ok. */
static void a_bad_chunk_on_one_rank_is_a_status_everywhere(void **state) {
  (void)state;
  size_t size = 65536, chunks = 8;
  unsigned char *d = make_input(size, &chunks, 1);
  static const struct { int which; int code; shk_task_status status; } cases[] = {
      {0, SHK_ECRASHED, SHK_TASK_CRASHED},
      {1, SHK_ETIMEDOUT, SHK_TASK_TIMED_OUT},
      {2, SHK_ECHUNK, SHK_TASK_FAILED}};
  for (size_t k = 0; k < 3; k++) {
    behave b = {-1, -1, -1};
    int64_t bad = (int64_t)chunks - 1; /* on the last rank */
    if (cases[k].which == 0) b.crash_at = bad;
    if (cases[k].which == 1) b.hang_at = bad;
    if (cases[k].which == 2) b.fail_at = bad;
    shk_task_options o = {0};
    o.chunks = chunks;
    o.halo = 3;
    o.arg = &b;
    o.arg_size = sizeof b;
    o.timeout_ms = cases[k].which == 1 ? 1500 : 0;
    shk_mpi_results *res = NULL;
    int rc = shk_mpi_task_run(MPI_COMM_WORLD, 0, rank == 0 ? d : NULL, rank == 0 ? size : 0,
                              scan_fn, &o, 0, &res);
    assert_int_equal(rc, cases[k].code);
    if (rank == 0) {
      assert_int_equal(shk_mpi_results_count(res), chunks);
      for (size_t i = 0; i < chunks; i++) {
        const shk_mpi_result *r = shk_mpi_results_get(res, i);
        if ((int64_t)i == bad) {
          assert_int_equal(r->status, cases[k].status);
          assert_int_equal(r->rank, ranks - 1);
        } else if (cases[k].which != 1) {
          assert_int_equal(r->status, SHK_TASK_OK); /* a deadline may also stop a slow one */
        }
      }
      const shk_mpi_result *r = shk_mpi_results_get(res, (size_t)bad);
      if (cases[k].which == 2) assert_int_equal(r->code, 42);
    } else {
      assert_null(res);
    }
    shk_mpi_results_free(res);
  }
  free(d);
}

/* Arguments that differ between ranks, or that one rank gets wrong: the same clear code on
 * every rank, never a hang. */
static void mismatched_arguments_give_the_same_error_on_every_rank(void **state) {
  (void)state;
  size_t size = 4096;
  unsigned char *d = make_input(size, NULL, 0);
  shk_mpi_results *res = (shk_mpi_results *)d; /* must be reset to NULL */
  shk_task_options o = {0};
  o.chunks = 8;
  const void *data = rank == 0 ? d : NULL;
  size_t sz = rank == 0 ? size : 0;

  shk_task_options bad = o;
  bad.chunks = rank == ranks - 1 ? 9 : 8; /* differs only with several ranks */
  assert_int_equal(shk_mpi_task_run(MPI_COMM_WORLD, 0, data, sz, scan_fn, &bad, 0, &res),
                   ranks > 1 ? SHK_EINVAL : SHK_OK);
  shk_mpi_results_free(res);
  bad = o;
  bad.item_size = rank == ranks - 1 ? 8 : 4;
  assert_int_equal(shk_mpi_task_run(MPI_COMM_WORLD, 0, data, sz, scan_fn, &bad, 0, &res),
                   ranks > 1 ? SHK_EINVAL : SHK_OK);
  shk_mpi_results_free(res);
  bad = o;
  bad.halo = rank == ranks - 1 ? 3 : 0;
  assert_int_equal(shk_mpi_task_run(MPI_COMM_WORLD, 0, data, sz, scan_fn, &bad, 0, &res),
                   ranks > 1 ? SHK_EINVAL : SHK_OK);
  shk_mpi_results_free(res);
  res = (shk_mpi_results *)d;
  assert_int_equal(shk_mpi_task_run(MPI_COMM_WORLD, rank == ranks - 1 ? 0 : ranks - 1, data,
                                    sz, scan_fn, &o, 0, &res), ranks > 1 ? SHK_EINVAL : SHK_OK);
  shk_mpi_results_free(res);
  res = (shk_mpi_results *)d;
  /* one rank alone wrong: NULL data with a size on the root, a NULL function, a bad root */
  assert_int_equal(shk_mpi_task_run(MPI_COMM_WORLD, 0, NULL, sz, scan_fn, &o, 0, &res),
                   SHK_EINVAL);
  assert_null(res);
  assert_int_equal(shk_mpi_task_run(MPI_COMM_WORLD, 0, data, sz, rank == ranks - 1 ? NULL : scan_fn,
                                    &o, 0, &res), SHK_EINVAL);
  assert_int_equal(shk_mpi_task_run(MPI_COMM_WORLD, ranks, data, sz, scan_fn, &o, 0, &res),
                   SHK_EINVAL);
  assert_int_equal(shk_mpi_task_run(MPI_COMM_WORLD, 0, data, sz, scan_fn, &o, 8u, &res),
                   SHK_EINVAL);
  shk_task_options hosted = o;
  hosted.mode = SHK_TASK_HOSTED;
  assert_int_equal(shk_mpi_task_run(MPI_COMM_WORLD, 0, data, sz, scan_fn, &hosted, 0, &res),
                   SHK_EUNSUPPORTED);
  o.item_size = 3; /* 4096 is no multiple of 3: known on every rank after the check */
  assert_int_equal(shk_mpi_task_run(MPI_COMM_WORLD, 0, data, sz, scan_fn, &o, 0, &res),
                   SHK_EINVAL);
  o.item_size = 0;
  /* the message size differs: the splits of a transfer would not match */
  if (rank == ranks - 1) setenv("SHK_MPI_MESSAGE_MAX", "1000", 1);
  assert_int_equal(shk_mpi_task_run(MPI_COMM_WORLD, 0, data, sz, scan_fn, &o, 0, &res),
                   ranks > 1 ? SHK_EINVAL : SHK_OK);
  shk_mpi_results_free(res);
  unsetenv("SHK_MPI_MESSAGE_MAX");
  /* a file one rank cannot see, a file of another size on one rank */
  char path[128], other[160];
  shared_name(path, sizeof path, "mismatch");
  write_file(path, d, size);
  snprintf(other, sizeof other, "%s-other-%d", path, rank);
  FILE *f = fopen(other, "wb");
  assert_non_null(f);
  fwrite(d, 1, rank == ranks - 1 ? size / 2 : size, f);
  fclose(f);
  res = (shk_mpi_results *)d;
  assert_int_equal(shk_mpi_task_run_file(MPI_COMM_WORLD, 0, rank == ranks - 1 ? "/nonexistent/x" : path,
                                         scan_fn, &o, 0, &res), SHK_ENOENT);
  assert_null(res);
  assert_int_equal(shk_mpi_task_run_file(MPI_COMM_WORLD, 0, other, scan_fn, &o, 0, &res),
                   ranks > 1 ? SHK_EINVAL : SHK_OK);
  shk_mpi_results_free(res);
  assert_int_equal(shk_mpi_task_run_file(MPI_COMM_WORLD, 0, path, scan_fn, &o, 0, NULL),
                   SHK_EINVAL);
  /* and afterwards a good call still works: nothing was left half-done */
  res = NULL;
  assert_int_equal(shk_mpi_task_run_file(MPI_COMM_WORLD, 0, path, scan_fn, &o, 0, &res), SHK_OK);
  shk_mpi_results_free(res);
  MPI_Barrier(MPI_COMM_WORLD);
  unlink(other);
  if (rank == 0) unlink(path);
  free(d);
}

/* A sparse file above 2 GiB: offsets, ranges and maps past the int range; prologues planted
 * near the start, at 2 GiB, across every rank boundary and at the end. */
static void a_sparse_file_above_2_gib_is_scanned_exactly(void **state) {
  (void)state;
  size_t size = ((size_t)2 << 30) + 12345, chunks = 8;
  char path[128];
  shared_name(path, sizeof path, "sparse");
  uint64_t want[64];
  size_t nwant = 0;
  size_t spots[] = {100, ((size_t)1 << 31) - 2, size - 4};
  for (size_t i = 0; i < 3; i++) want[nwant++] = spots[i];
  /* a match crossing each chunk boundary (every rank boundary is one) */
  for (size_t c = 1; c < chunks; c++) {
    size_t b = c * (size / chunks) + (c < size % chunks ? c : size % chunks);
    want[nwant++] = b - 2;
  }
  for (size_t i = 0; i < nwant; i++)
    for (size_t j = i + 1; j < nwant; j++)
      if (want[j] < want[i]) { uint64_t t = want[i]; want[i] = want[j]; want[j] = t; }
  if (rank == 0) {
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    for (size_t i = 0; i < nwant; i++)
      assert_int_equal(pwrite(fd, PROLOGUE, 4, (off_t)want[i]), 4);
    close(fd);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  shk_task_options o = {0};
  o.chunks = chunks;
  o.halo = 3;
  shk_mpi_results *res = NULL;
  int rc = shk_mpi_task_run_file(MPI_COMM_WORLD, 0, path, scan_fn, &o, 0, &res);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) unlink(path);
  assert_int_equal(rc, SHK_OK);
  if (rank == 0) check_gathered(res, chunks, size, want, nwant);
  shk_mpi_results_free(res);
}

int main(int argc, char **argv) {
  shk_worker_main(argc, argv);
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(matches_across_every_chunk_and_rank_boundary_are_found_once),
      cmocka_unit_test(halos_longer_than_a_rank_and_empty_chunks_work),
      cmocka_unit_test(transfers_split_into_many_messages_give_the_same_answer),
      cmocka_unit_test(a_real_binary_gives_the_serial_prologue_count),
      cmocka_unit_test(a_bad_chunk_on_one_rank_is_a_status_everywhere),
      cmocka_unit_test(mismatched_arguments_give_the_same_error_on_every_rank),
      cmocka_unit_test(a_sparse_file_above_2_gib_is_scanned_exactly),
      cmocka_unit_test(a_rank_runs_every_call_on_the_same_worker_processes),
      cmocka_unit_test(kept_workers_read_every_halo_of_a_growing_input),
      cmocka_unit_test(releasing_ends_the_kept_workers_and_the_next_call_starts_new_ones),
      cmocka_unit_test(a_function_of_a_module_loaded_after_the_workers_started_runs),
  };
  made_by = getpid();
  atexit(remove_made);
  int failed = cmocka_run_group_tests_name("mpi", tests, NULL, NULL);
  MPI_Finalize();
  return failed;
}
