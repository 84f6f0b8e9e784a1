/* shmkit's own parts on a lens: shk_lens_instrument() and SHK_LENS put chunk tasks (on the
 * workers' own tracks), watch events and buffers beside the program's zones, read back by a
 * reader; off means no event; closing the lens turns its parts off. */
/* ctest: labels=unit;multiprocess;tsan timeout=240 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shk_test_thread.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 120000
#define CHUNKS 4

/* What a reader saw of the library's parts and of the program's own zones. */
typedef struct seen {
  shk_lens_reader *reader; /* for the arguments of each event */
  uint32_t own_pid; /* the test's process: chunk zones from other pids are worker processes' */
  unsigned user_zones, task_zones, copy_zones, result_zones, chunk_zones, failed_chunks;
  unsigned chunks_elsewhere;       /* chunk zones from another process (worker processes) */
  unsigned heap_allocs, heap_frees, buffer_plots, heap_byte_plots, watch_logs, watch_plots, task_logs, other_shk;
  unsigned chunk_args_ok, heap_allocator_ok, watch_args_ok; /* events whose arguments are right */
} seen;

static bool starts(const char *s, const char *prefix) {
  return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The argument `name` of the event being delivered, or NULL. */
static const shk_lens_arg *arg_of(const seen *s, const char *name, shk_lens_arg *args) {
  size_t n = 0;
  if (shk_lens_reader_args(s->reader, args, SHK_LENS_ARGS_MAX, &n) != SHK_OK) return NULL;
  for (size_t i = 0; i < n && i < SHK_LENS_ARGS_MAX; i++)
    if (strcmp(args[i].name, name) == 0) return &args[i];
  return NULL;
}

static bool arg_is(const seen *s, const char *name, uint64_t value) {
  shk_lens_arg args[SHK_LENS_ARGS_MAX];
  const shk_lens_arg *a = arg_of(s, name, args);
  return a && a->type != SHK_LENS_ARG_TEXT && a->known && a->value == value;
}

static bool text_arg_is(const seen *s, const char *name, const char *text) {
  shk_lens_arg args[SHK_LENS_ARGS_MAX];
  const shk_lens_arg *a = arg_of(s, name, args);
  return a && a->type == SHK_LENS_ARG_TEXT && a->known && strcmp(a->text, text) == 0;
}

/* A chunk zone's arguments: which chunk (1024 bytes each) and its code (chunk 1 fails with 5). */
static bool chunk_args_right(const seen *s) {
  shk_lens_arg args[SHK_LENS_ARGS_MAX];
  const shk_lens_arg *index = arg_of(s, "index", args);
  if (!index || index->value >= CHUNKS) return false;
  uint64_t i = index->value;
  shk_lens_arg code[SHK_LENS_ARGS_MAX];
  const shk_lens_arg *c = arg_of(s, "code", code);
  return arg_is(s, "offset", i * 1024) && arg_is(s, "length", 1024) && c &&
         c->type == SHK_LENS_ARG_INT && (int64_t)c->value == (i == 1 ? 5 : 0);
}

static void count_event(const shk_lens_event *e, void *user) {
  seen *s = user;
  if (e->kind == SHK_LENS_ZONE) {
    if (strcmp(e->name, "user") == 0) s->user_zones++;
    else if (strcmp(e->name, "shk task") == 0) {
      s->task_zones++;
      /* the call's shape: 4 chunks, 2 workers, 4096 bytes in */
      if (arg_is(s, "chunks", CHUNKS) && arg_is(s, "workers", 2) &&
          arg_is(s, "input bytes", CHUNKS * 1024) &&
          (text_arg_is(s, "mode", "threads") || text_arg_is(s, "mode", "processes")))
        s->task_logs++;
    }
    else if (strcmp(e->name, "shk copy-in") == 0) s->copy_zones++;
    else if (strcmp(e->name, "shk results") == 0) s->result_zones++;
    else if (starts(e->name, "shk chunk")) {
      s->chunk_zones++;
      if (strcmp(e->name, "shk chunk failed") == 0) s->failed_chunks++;
      if (e->pid != s->own_pid) s->chunks_elsewhere++;
      if (chunk_args_right(s)) s->chunk_args_ok++;
    } else if (starts(e->name, "shk")) s->other_shk++;
  } else if (e->kind == SHK_LENS_HEAP) {
    if (e->is_free) s->heap_frees++;
    else s->heap_allocs++;
    if (text_arg_is(s, "allocator", "heap")) s->heap_allocator_ok++;
  } else if (e->kind == SHK_LENS_PLOT) {
    if (strcmp(e->name, "shk buffers live") == 0) s->buffer_plots++;
    else if (strcmp(e->name, "shk buf bytes: heap") == 0) s->heap_byte_plots++;
    else if (strcmp(e->name, "shk watch events") == 0) s->watch_plots++;
  } else if (e->kind == SHK_LENS_LOG) {
    if (starts(e->message, "watch header")) {
      s->watch_logs++;
      if (arg_is(s, "offset", 3) && arg_is(s, "dropped before", 0)) s->watch_args_ok++;
    }
  }
}

/* Chunk 1 fails, the others succeed. */
static int chunk_fn(const shk_task_chunk *chunk, shk_task_out *out) {
  (void)out;
  return chunk->index == 1 ? 5 : 0;
}

static int run_task(shk_task_mode mode) {
  static unsigned char input[CHUNKS * 1024];
  shk_task_options o = {0};
  o.chunks = CHUNKS;
  o.workers = 2;
  o.mode = mode;
  shk_task_results *r = NULL;
  int rc = shk_task_run(input, sizeof input, chunk_fn, &o, &r);
  if (rc != SHK_ECHUNK) { /* say what came back, so that a rare failure can be told apart */
    fprintf(stderr, "run_task(mode %d): %s (%s), os error %d\n", (int)mode, shk_strerror(rc),
            shk_error_name(rc), shk_last_os_error());
    for (size_t i = 0; i < shk_task_results_count(r); i++)
      fprintf(stderr, "  chunk %zu: %s code %d\n", i,
              shk_task_status_name(shk_task_results_get(r, i)->status),
              shk_task_results_get(r, i)->code);
  }
  shk_task_results_free(r);
  return rc == SHK_ECHUNK ? SHK_OK : rc == SHK_OK ? -1 : rc;
}

static int make_buffers(unsigned n) {
  for (unsigned i = 0; i < n; i++) {
    shk_buf *b = NULL;
    int rc = shk_buf_create(1000 + i, 1, NULL, &b);
    if (rc != SHK_OK) return rc;
    shk_buf_release(b);
  }
  return SHK_OK;
}

/* One watched write, delivered before the call returns. */
static int watched_write(void) {
  shk_watcher *w = NULL;
  int rc = shk_watch_create(NULL, &w);
  if (rc != SHK_OK) return rc;
  static unsigned char header[64];
  uint32_t id = 0;
  rc = shk_watch_add(w, header, sizeof header, "header", &id);
  if (rc == SHK_OK) {
    header[3] = 0x5A;
    rc = shk_watch_flush(w);
  }
  shk_watch_free(w);
  return rc;
}

/* Drains until every producer is gone (or 30 s). */
static int drain_all(shk_lens_reader *r, seen *s) {
  for (int i = 0; i < 30000 && !shk_lens_reader_finished(r); i++) {
    int rc = shk_lens_reader_poll(r, 1000000, count_event, s, NULL);
    if (rc != SHK_OK && rc != SHK_ETIMEDOUT) return rc;
  }
  return shk_lens_reader_finished(r) ? SHK_OK : SHK_ETIMEDOUT;
}

/* A lens and a reader on it, under a fresh name. */
static int open_lens_and_reader(const char *tag, shk_lens **lens, shk_lens_reader **r) {
  char name[64];
  shk_test_unique_name(name, sizeof name, tag);
  int rc = shk_lens_open(name, NULL, lens);
  return rc != SHK_OK ? rc : shk_lens_reader_open(name, NULL, r);
}

/* Closes the lens, reads everything into *s and closes the reader. */
static int close_and_read(shk_lens *lens, shk_lens_reader *r, seen *s) {
  shk_lens_close(lens);
  memset(s, 0, sizeof *s);
  s->own_pid = shk_test_pid();
  s->reader = r;
  int rc = drain_all(r, s);
  shk_lens_reader_close(r);
  return rc;
}

static int exercise_every_part(shk_lens *lens) {
  shk_lens_zone z;
  SHK_CHECK(shk_lens_zone_begin(lens, &z, "user", 0x123456) == SHK_OK);
  SHK_CHECK(run_task(SHK_TASK_THREADS) == SHK_OK);
  SHK_CHECK(run_task(SHK_TASK_PROCESSES) == SHK_OK);
  SHK_CHECK(make_buffers(3) == SHK_OK);
  SHK_CHECK(watched_write() == SHK_OK);
  SHK_CHECK(shk_lens_zone_end(&z) == SHK_OK);
  return 0;
}

static void unknown_parts_are_refused(void **state) {
  (void)state;
  assert_int_equal(shk_lens_instrument(NULL, SHK_LENS_ALL + 1), SHK_EINVAL);
  assert_int_equal(shk_lens_instrument(NULL, 0x80000000u), SHK_EINVAL);
  assert_int_equal(shk_lens_instrument(NULL, SHK_LENS_ALL), SHK_OK); /* NULL lens: off */
  assert_int_equal(shk_lens_instrument(NULL, 0), SHK_OK);
}

SHK_CHILD_TEST(tasks_watch_and_buffers_share_the_programs_timeline, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  shk_lens *lens = NULL;
  shk_lens_reader *r = NULL;
  SHK_CHECK(open_lens_and_reader("ins", &lens, &r) == SHK_OK);
  SHK_CHECK(shk_lens_instrument(lens, SHK_LENS_ALL) == SHK_OK);
  int rc = exercise_every_part(lens);
  if (rc) return rc;
  SHK_CHECK(shk_lens_instrument(NULL, 0) == SHK_OK);
  seen s;
  SHK_CHECK(close_and_read(lens, r, &s) == SHK_OK);
  fprintf(stderr, "user %u task %u copy %u results %u chunks %u (failed %u, elsewhere %u) heap "
                  "%u/%u plots %u watch %u/%u logs %u\n",
          s.user_zones, s.task_zones, s.copy_zones, s.result_zones, s.chunk_zones,
          s.failed_chunks, s.chunks_elsewhere, s.heap_allocs, s.heap_frees, s.buffer_plots,
          s.watch_logs, s.watch_plots, s.task_logs);
  SHK_CHECK(s.user_zones == 1);
  SHK_CHECK(s.task_zones == 2 && s.task_logs == 2 && s.result_zones == 2); /* task_logs: args */
  SHK_CHECK(s.chunk_args_ok == s.chunk_zones);        /* every chunk says which it is */
  SHK_CHECK(s.heap_allocator_ok == s.heap_allocs + s.heap_frees);
  SHK_CHECK(s.copy_zones >= 1); /* processes copy the input in; threads read it in place */
  SHK_CHECK(s.chunk_zones == 2 * CHUNKS && s.failed_chunks == 2);
  /* On the worker processes' own tracks (their pids): forked, or on Windows started anew and
   * joined through the pool's record, with no SHK_LENS in their environment. */
  SHK_CHECK(s.chunks_elsewhere == CHUNKS);
  SHK_CHECK(s.heap_allocs >= 3 && s.heap_frees >= 3 && s.buffer_plots >= 6);
  SHK_CHECK(s.heap_byte_plots >= 6); /* the heap allocator's live bytes */
  SHK_CHECK(s.watch_logs == 1 && s.watch_plots == 1 && s.watch_args_ok == 1);
  return 0;
}

SHK_CHILD_TEST(off_means_no_library_event, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  shk_lens *lens = NULL;
  shk_lens_reader *r = NULL;
  SHK_CHECK(open_lens_and_reader("off", &lens, &r) == SHK_OK);
  SHK_CHECK(shk_lens_instrument(lens, SHK_LENS_ALL) == SHK_OK);
  SHK_CHECK(shk_lens_instrument(lens, 0) == SHK_OK);
  int rc = exercise_every_part(lens);
  if (rc) return rc;
  /* One part alone: buffers only. */
  SHK_CHECK(shk_lens_instrument(lens, SHK_LENS_BUFS) == SHK_OK);
  SHK_CHECK(run_task(SHK_TASK_THREADS) == SHK_OK);
  SHK_CHECK(make_buffers(2) == SHK_OK);
  seen s;
  SHK_CHECK(close_and_read(lens, r, &s) == SHK_OK);
  SHK_CHECK(s.user_zones == 1);
  SHK_CHECK(s.task_zones == 0 && s.chunk_zones == 0 && s.copy_zones == 0 && s.other_shk == 0);
  SHK_CHECK(s.watch_logs == 0 && s.task_logs == 0);
  SHK_CHECK(s.heap_allocs >= 2 && s.heap_frees >= 2);
  return 0;
}

SHK_CHILD_TEST(closing_the_lens_turns_its_parts_off, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  char name[64];
  shk_test_unique_name(name, sizeof name, "close");
  shk_lens *lens = NULL;
  SHK_CHECK(shk_lens_open(name, NULL, &lens) == SHK_OK);
  SHK_CHECK(shk_lens_instrument(lens, SHK_LENS_ALL) == SHK_OK);
  shk_lens_close(lens);
  /* Nothing may reach the freed handle (AddressSanitizer would say so). */
  SHK_CHECK(run_task(SHK_TASK_THREADS) == SHK_OK);
  SHK_CHECK(make_buffers(2) == SHK_OK);
  SHK_CHECK(watched_write() == SHK_OK);
  return 0;
}

/* SHK_LENS=name: the first instrumented call opens the lens and instruments every part, with no
 * call of the program's; worker processes (forked, or started anew with the variable in their
 * environment) report through handles of their own. */
SHK_CHILD_TEST(the_shk_lens_variable_instruments_a_program_unchanged, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  char name[64];
  shk_test_unique_name(name, sizeof name, "env");
  SHK_CHECK(shk_test_setenv("SHK_LENS", name) == 0);
  SHK_CHECK(make_buffers(1) == SHK_OK); /* the first use: the lens appears */
  shk_lens_reader *r = NULL;
  SHK_CHECK(shk_lens_reader_open(name, NULL, &r) == SHK_OK);
  SHK_CHECK(run_task(SHK_TASK_PROCESSES) == SHK_OK);
  SHK_CHECK(make_buffers(2) == SHK_OK);
  seen s;
  memset(&s, 0, sizeof s);
  s.own_pid = shk_test_pid();
  /* The lens stays open until exit: read until the expected events are in (30 s at most). */
  for (int i = 0; i < 300 && (s.chunk_zones < CHUNKS || s.heap_frees < 3); i++)
    shk_lens_reader_poll(r, 100000000, count_event, &s, NULL);
  shk_lens_reader_close(r);
  SHK_CHECK(s.task_zones == 1 && s.chunk_zones == CHUNKS && s.failed_chunks == 1);
  SHK_CHECK(s.chunks_elsewhere == CHUNKS);
  SHK_CHECK(s.heap_allocs == 3 && s.heap_frees == 3);
  return 0;
}

static void first_use(void *arg) {
  atomic_int *go = arg;
  while (!atomic_load(go)) {
  }
  make_buffers(1);
}

/* Threads whose first instrumented calls race each read SHK_LENS; one lens handle is kept. */
SHK_CHILD_TEST(racing_first_uses_keep_one_lens, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  char name[64];
  shk_test_unique_name(name, sizeof name, "race");
  SHK_CHECK(shk_test_setenv("SHK_LENS", name) == 0);
  static atomic_int go;
  shk_test_thread threads[4];
  for (int i = 0; i < 4; i++) SHK_CHECK(shk_test_thread_start(&threads[i], first_use, &go) == 0);
  atomic_store(&go, 1);
  for (int i = 0; i < 4; i++) shk_test_thread_join(&threads[i]);
  shk_lens_info info;
  SHK_CHECK(shk_lens_probe(name, &info) == SHK_OK);
  SHK_CHECK(info.producers == 1);
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(unknown_parts_are_refused),
    cmocka_unit_test(tasks_watch_and_buffers_share_the_programs_timeline),
    cmocka_unit_test(off_means_no_library_event),
    cmocka_unit_test(closing_the_lens_turns_its_parts_off),
    cmocka_unit_test(the_shk_lens_variable_instruments_a_program_unchanged),
    cmocka_unit_test(racing_first_uses_keep_one_lens),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(tasks_watch_and_buffers_share_the_programs_timeline),
    SHK_TEST_CHILD(off_means_no_library_event),
    SHK_TEST_CHILD(closing_the_lens_turns_its_parts_off),
    SHK_TEST_CHILD(the_shk_lens_variable_instruments_a_program_unchanged),
    SHK_TEST_CHILD(racing_first_uses_keep_one_lens),
};

int main(int argc, char **argv) {
  shk_worker_main(argc, argv); /* worker processes on Windows are this binary again */
  return shk_test_main(argc, argv, __FILE__, tests, sizeof tests / sizeof tests[0], children,
                       sizeof children / sizeof children[0]);
}
