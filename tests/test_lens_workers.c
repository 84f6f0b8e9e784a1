/* Worker processes on the pool caller's lens: workers started as new processes (worker hosts;
 * on Windows every process worker) report into it with no SHK_LENS in their environment, and
 * the caller's thread shows the pool's start-up (a zone) and each worker started or replaced
 * (a log line with its pid, and how the one it replaces ended). */
/* ctest: labels=unit;multiprocess;tsan timeout=300 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 120000
#define MAX_SEEN 256
#define MAX_LOGS 32

/* What a reader saw: chunk zones by pid, the pool's marks, the workers' own start lines. */
typedef struct seen {
  uint32_t own_pid;
  unsigned chunks;
  uint32_t chunk_pid[MAX_SEEN];
  unsigned start_zones, start_zones_elsewhere;
  unsigned pool_logs, pool_logs_elsewhere;
  char pool_log[MAX_LOGS][160];
  unsigned worker_starts;        /* "worker N started (process)", from the worker itself */
  uint32_t worker_pid[MAX_LOGS];
} seen;

static bool starts(const char *s, const char *prefix) {
  return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static void count_event(const shk_lens_event *e, void *user) {
  seen *s = user;
  if (e->kind == SHK_LENS_ZONE && starts(e->name, "shk chunk") && s->chunks < MAX_SEEN) {
    s->chunk_pid[s->chunks++] = e->pid;
  } else if (e->kind == SHK_LENS_ZONE && strcmp(e->name, "shk pool start") == 0) {
    s->start_zones++;
    if (e->pid != s->own_pid) s->start_zones_elsewhere++;
  } else if (e->kind == SHK_LENS_LOG && starts(e->message, "pool: ")) {
    if (e->pid != s->own_pid) s->pool_logs_elsewhere++;
    if (s->pool_logs < MAX_LOGS)
      snprintf(s->pool_log[s->pool_logs++], sizeof s->pool_log[0], "%s", e->message);
  } else if (e->kind == SHK_LENS_LOG && starts(e->message, "worker ") &&
             strstr(e->message, "started (process)") && s->worker_starts < MAX_LOGS) {
    s->worker_pid[s->worker_starts++] = e->pid;
  }
}

/* The pid the pool's line gave worker `index` when it was started ("started") or replaced. */
static int pool_pid(const seen *s, const char *how, unsigned index, unsigned nth) {
  for (unsigned i = 0; i < s->pool_logs; i++) {
    unsigned k;
    int pid;
    char word[16];
    if (sscanf(s->pool_log[i], "pool: worker %u %15s (process %d)", &k, word, &pid) == 3 &&
        k == index && strcmp(word, how) == 0 && nth-- == 0)
      return pid;
  }
  return 0;
}

/* Whether pid is one the pool's lines named. */
static bool pool_named(const seen *s, uint32_t pid) {
  for (unsigned i = 0; i < s->pool_logs; i++) {
    int p;
    const char *at = strstr(s->pool_log[i], "(process ");
    if (at && sscanf(at, "(process %d)", &p) == 1 && (uint32_t)p == pid) return true;
  }
  return false;
}

/* Every chunk zone comes from a worker process the pool named, never from the test; every
 * worker's own start line too, from `workers` distinct processes. */
static int check_workers(const seen *s, unsigned chunks, unsigned workers) {
  fprintf(stderr, "chunks %u, pool start zones %u, pool lines %u, worker start lines %u\n",
          s->chunks, s->start_zones, s->pool_logs, s->worker_starts);
  for (unsigned i = 0; i < s->pool_logs; i++) fprintf(stderr, "  %s\n", s->pool_log[i]);
  SHK_CHECK(s->chunks == chunks);
  for (unsigned i = 0; i < s->chunks; i++) {
    SHK_CHECK(s->chunk_pid[i] != s->own_pid);
    SHK_CHECK(pool_named(s, s->chunk_pid[i]));
  }
  unsigned distinct = 0;
  for (unsigned i = 0; i < s->worker_starts; i++) {
    SHK_CHECK(s->worker_pid[i] != s->own_pid && pool_named(s, s->worker_pid[i]));
    bool again = false;
    for (unsigned j = 0; j < i; j++) again |= s->worker_pid[j] == s->worker_pid[i];
    distinct += !again;
  }
  SHK_CHECK(distinct == workers);
  SHK_CHECK(s->start_zones_elsewhere == 0 && s->pool_logs_elsewhere == 0);
  return 0;
}

/* A lens under a fresh name, a reader on it, and instrumentation on: no SHK_LENS anywhere (the
 * workers inherit this environment). */
static int open_lens_and_reader(const char *tag, char name[64], shk_lens **lens,
                                shk_lens_reader **r) {
  shk_test_unique_name(name, 64, tag);
  if (shk_test_setenv("SHK_LENS", NULL) != 0) return -1;
  int rc = shk_lens_open(name, NULL, lens);
  if (rc == SHK_OK) rc = shk_lens_reader_open(name, NULL, r);
  if (rc == SHK_OK) rc = shk_lens_instrument(*lens, SHK_LENS_ALL);
  return rc;
}

/* Closes the lens and reads everything (every producer gone: the workers closed theirs). */
static int close_and_read(shk_lens *lens, shk_lens_reader *r, seen *s) {
  shk_lens_instrument(NULL, 0);
  shk_lens_close(lens);
  memset(s, 0, sizeof *s);
  s->own_pid = shk_test_pid();
  for (int i = 0; i < 30000 && !shk_lens_reader_finished(r); i++) {
    int rc = shk_lens_reader_poll(r, 1000000, count_event, s, NULL);
    if (rc != SHK_OK && rc != SHK_ETIMEDOUT) break;
  }
  bool finished = shk_lens_reader_finished(r);
  shk_lens_reader_close(r);
  return finished ? SHK_OK : SHK_ETIMEDOUT;
}

static unsigned char input[64 * 1024];

#ifndef SHK_TEST_NO_WORKER_HOST
/* A hosted pool (two calls) and a hosted one-call run, instrumented by a call of this program
 * only: every chunk is on the track of the worker host process that ran it. */
SHK_CHILD_TEST(hosted_workers_report_into_the_callers_lens_without_shk_lens, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  char name[64];
  shk_lens *lens = NULL;
  shk_lens_reader *r = NULL;
  SHK_CHECK(open_lens_and_reader("host", name, &lens, &r) == SHK_OK);
  shk_task_pool *pool = NULL;
  SHK_CHECK(shk_task_pool_create_hosted(2, SHK_TEST_PLUGIN, "plugin_sum", &pool) == SHK_OK);
  shk_task_options o = {0};
  o.chunks = 8;
  shk_task_results *res = NULL;
  for (int call = 0; call < 2; call++) {
    SHK_CHECK(shk_task_pool_run(pool, input, sizeof input, NULL, &o, &res) == SHK_OK);
    shk_task_results_free(res);
  }
  shk_task_pool_free(pool);
  o.chunks = 4;
  o.workers = 2;
  o.mode = SHK_TASK_HOSTED;
  o.module_path = SHK_TEST_PLUGIN;
  o.function_name = "plugin_sum";
  SHK_CHECK(shk_task_run(input, sizeof input, NULL, &o, &res) == SHK_OK);
  shk_task_results_free(res);
  seen s;
  SHK_CHECK(close_and_read(lens, r, &s) == SHK_OK);
  int rc = check_workers(&s, 2 * 8 + 4, 4);
  if (rc) return rc;
  /* The pool's start and the one-call run's, each with two workers' lines. */
  SHK_CHECK(s.start_zones == 2 && s.pool_logs == 4);
  for (unsigned k = 0; k < 2; k++)
    SHK_CHECK(pool_pid(&s, "started", k, 0) > 0 && pool_pid(&s, "started", k, 1) > 0);
  return 0;
}
#endif

/* Writes its process id. */
static int pid_fn(const shk_task_chunk *c, shk_task_out *out) {
  (void)c;
  uint64_t pid = shk_test_pid();
  return shk_task_out_write(out, &pid, sizeof pid);
}

/* Runs pid_fn over PID_CHUNKS chunks; writes the pid that ran each. */
#define PID_CHUNKS 4
static int run_pids(shk_task_pool *pool, uint64_t pids[PID_CHUNKS]) {
  shk_task_options o = {0};
  o.chunks = PID_CHUNKS;
  shk_task_results *res = NULL;
  int rc = shk_task_pool_run(pool, input, sizeof input, pid_fn, &o, &res);
  for (size_t i = 0; rc == SHK_OK && i < PID_CHUNKS; i++) {
    const shk_task_result *c = shk_task_results_get(res, i);
    if (c && c->status == SHK_TASK_OK && c->size == sizeof pids[i])
      memcpy(&pids[i], c->data, sizeof pids[i]);
    else rc = SHK_EFORMAT;
  }
  shk_task_results_free(res);
  return rc;
}

/* Whether the chunk zones' pids are exactly the pids the chunks' results gave. */
static bool chunk_pids_are(const seen *s, const uint64_t *pids, size_t n) {
  for (unsigned i = 0; i < s->chunks; i++) {
    bool found = false;
    for (size_t j = 0; j < n; j++) found |= pids[j] == s->chunk_pid[i];
    if (!found) return false;
  }
  for (size_t j = 0; j < n; j++) {
    bool found = false;
    for (unsigned i = 0; i < s->chunks; i++) found |= pids[j] == s->chunk_pid[i];
    if (!found) return false;
  }
  return true;
}

/* An ordinary process pool (forked workers; on Windows new processes, which now join without
 * SHK_LENS): a worker killed while the pool is idle is replaced by the next call, and the
 * caller's thread says which worker, its new pid, and how the killed one ended. */
SHK_CHILD_TEST(a_worker_replaced_after_it_was_killed_is_marked_on_the_callers_thread,
               CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  char name[64];
  shk_lens *lens = NULL;
  shk_lens_reader *r = NULL;
  SHK_CHECK(open_lens_and_reader("repl", name, &lens, &r) == SHK_OK);
  shk_task_pool *pool = NULL;
  SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &pool) == SHK_OK);
  uint64_t pids[2 * PID_CHUNKS] = {0};
  SHK_CHECK(run_pids(pool, pids) == SHK_OK);
  uint64_t victim = pids[0];
  SHK_CHECK(victim != 0 && victim != shk_test_pid());
  SHK_CHECK(shk_test_kill_child(victim));
  SHK_CHECK(run_pids(pool, pids + PID_CHUNKS) == SHK_OK);
  shk_task_pool_free(pool);
  seen s;
  SHK_CHECK(close_and_read(lens, r, &s) == SHK_OK);
  int rc = check_workers(&s, 2 * PID_CHUNKS, 3);
  if (rc) return rc;
  SHK_CHECK(chunk_pids_are(&s, pids, 2 * PID_CHUNKS)); /* each chunk where its result says */
  /* The pool's creation and the replacement: a start zone each; three workers' lines. */
  SHK_CHECK(s.start_zones == 2 && s.pool_logs == 3);
  unsigned k = pool_pid(&s, "started", 0, 0) == (int)victim ? 0u : 1u;
  SHK_CHECK(pool_pid(&s, "started", k, 0) == (int)victim);
  int replacement = pool_pid(&s, "replaced", k, 0);
  SHK_CHECK(replacement > 0 && replacement != (int)victim);
  SHK_CHECK(pool_pid(&s, "replaced", 1 - k, 0) == 0 && pool_pid(&s, "replaced", k, 1) == 0);
  char want[96];
#ifdef _WIN32
  snprintf(want, sizeof want, "pool: worker %u replaced (process %d); the previous one ended with "
                              "exit code 9", k, replacement);
#else
  snprintf(want, sizeof want, "pool: worker %u replaced (process %d); the previous one was "
                              "killed by signal %d", k, replacement, SIGKILL);
#endif
  bool found = false;
  for (unsigned i = 0; i < s.pool_logs; i++) found |= strcmp(s.pool_log[i], want) == 0;
  if (!found) fprintf(stderr, "missing: %s\n", want);
  SHK_CHECK(found);
  return 0;
}

/* One call of a fresh 2-worker pool in `mode`, with `parts` instrumented; *producers: the
 * lens's producer handles while the pool is idle; *s: what the reader saw. */
static int one_call(const char *tag, shk_task_mode mode, unsigned parts,
                    uint64_t pids[PID_CHUNKS], uint32_t *producers, seen *s) {
  char name[64];
  shk_lens *lens = NULL;
  shk_lens_reader *r = NULL;
  SHK_CHECK(open_lens_and_reader(tag, name, &lens, &r) == SHK_OK);
  SHK_CHECK(shk_lens_instrument(lens, parts) == SHK_OK);
  shk_task_pool *pool = NULL;
  SHK_CHECK(shk_task_pool_create(2, mode, &pool) == SHK_OK);
  SHK_CHECK(run_pids(pool, pids) == SHK_OK);
  shk_lens_info info;
  SHK_CHECK(shk_lens_probe(name, &info) == SHK_OK);
  *producers = info.producers;
  shk_task_pool_free(pool);
  SHK_CHECK(close_and_read(lens, r, s) == SHK_OK);
  return 0;
}

/* A thread pool's workers are marked too (no pid of their own, never replaced). */
SHK_CHILD_TEST(thread_workers_are_marked_as_threads, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  uint64_t pids[PID_CHUNKS];
  uint32_t producers;
  seen s;
  int rc = one_call("thr", SHK_TASK_THREADS, SHK_LENS_ALL, pids, &producers, &s);
  if (rc) return rc;
  SHK_CHECK(s.start_zones == 1 && s.pool_logs == 2 && s.chunks == PID_CHUNKS);
  SHK_CHECK(chunk_pids_are(&s, pids, PID_CHUNKS)); /* this process's: threads */
  SHK_CHECK(strcmp(s.pool_log[0], "pool: worker 0 started (thread)") == 0 ||
            strcmp(s.pool_log[1], "pool: worker 0 started (thread)") == 0);
  return 0;
}

/* Tasks off (buffers on): no mark at all, and no lens opened by any worker. */
SHK_CHILD_TEST(off_the_pool_marks_nothing, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  uint64_t pids[PID_CHUNKS];
  uint32_t producers;
  seen s;
  int rc = one_call("poff", SHK_TASK_PROCESSES, SHK_LENS_BUFS, pids, &producers, &s);
  if (rc) return rc;
  SHK_CHECK(producers == 1); /* this program's handle only: no worker opened one */
  SHK_CHECK(s.chunks == 0 && s.start_zones == 0 && s.pool_logs == 0 && s.worker_starts == 0);
  return 0;
}

#ifdef SHK_TEST_NO_WORKER_HOST
#define HOSTED_TEST(x)
#else
#define HOSTED_TEST(x) x,
#endif

static const struct CMUnitTest tests[] = {
    HOSTED_TEST(cmocka_unit_test(hosted_workers_report_into_the_callers_lens_without_shk_lens))
    cmocka_unit_test(a_worker_replaced_after_it_was_killed_is_marked_on_the_callers_thread),
    cmocka_unit_test(thread_workers_are_marked_as_threads),
    cmocka_unit_test(off_the_pool_marks_nothing),
};

static const shk_test_child children[] = {
    HOSTED_TEST(SHK_TEST_CHILD(hosted_workers_report_into_the_callers_lens_without_shk_lens))
    SHK_TEST_CHILD(a_worker_replaced_after_it_was_killed_is_marked_on_the_callers_thread),
    SHK_TEST_CHILD(thread_workers_are_marked_as_threads),
    SHK_TEST_CHILD(off_the_pool_marks_nothing),
};

int main(int argc, char **argv) {
  shk_worker_main(argc, argv); /* worker processes on Windows are this binary again */
  return shk_test_main(argc, argv, __FILE__, tests, sizeof tests / sizeof tests[0], children,
                       sizeof children / sizeof children[0]);
}
