/* `shmkit lens record` and `shmkit lens summary` as a user runs them against a live lens of this
 * test process: what they write (the trace with a thread's latest name, its HTML report, the
 * thread table with names that need escaping, the top zones by total and by mean time) and the message for each segment they
 * cannot read (missing, a bad name, not a lens, still being set up, a reader already attached),
 * plus their option errors; on POSIX, record's live progress line on a terminal (script(1)); on
 * Linux, record and report writing to a full disk (/dev/full). Skipped, saying so, in builds
 * without the tool. */
/* ctest: labels=unit timeout=120 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/wait.h>
#include <unistd.h>
#endif

#include "shk_test.h"
#include "shk_test_thread.h"
#include "shmkit.h"

#ifdef SHK_TEST_TOOL
#include "shk_test_tool.h"

/* A file's first bytes (it is removed afterwards); false when there is no such file. */
static bool read_and_remove(const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  fclose(f);
  slurp(path, buf, size);
  return true;
}

static volatile unsigned spin_sink; /* keeps the busy loop below (unsigned: it wraps) */

/* Sends zones from this thread: `n` of `name`, each lasting about `spin` loop turns. */
static void zones(shk_lens *lens, const char *name, int n, int spin) {
  for (int i = 0; i < n; i++) {
    shk_lens_zone z;
    assert_int_equal(shk_lens_zone_begin(lens, &z, name, 0x336699), SHK_OK);
    for (int k = 0; k < spin; k++) spin_sink += (unsigned)k;
    assert_int_equal(shk_lens_zone_end(&z), SHK_OK);
  }
}

static void record_writes_the_trace_and_the_report_with_the_latest_thread_name(void **state) {
  (void)state;
  char name[64], out[96], html[96], args[512];
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "rec"), NULL, &lens),
                   SHK_OK);
  /* Named, then renamed while its events wait for the recorder: the latest name wins. */
  assert_int_equal(shk_lens_thread_name(lens, "first-name"), SHK_OK);
  zones(lens, "alpha", 3, 1000);
  zones(lens, "beta", 1, 100000);
  assert_int_equal(shk_lens_thread_name(lens, "second-name"), SHK_OK);
  zones(lens, "delta", 2, 10);
  assert_int_equal(shk_lens_frame(lens), SHK_OK);
  shk_test_unique_name(out, sizeof out, "rec.json");
  shk_test_unique_name(html, sizeof html, "rec.html");
  snprintf(args, sizeof args, "lens record %s -o %s --duration 0.3 --html %s", name, out, html);
  ran *r = run_tool(args);
  if (r->code != 0) print_error("stdout: %s\nstderr: %s\n", r->out, r->err);
  assert_int_equal(r->code, 0);
  assert_non_null(strstr(r->out, "trace written to"));
  assert_non_null(strstr(r->out, "second-name"));
  char trace[8192], page[256];
  assert_true(read_and_remove(out, trace, sizeof trace));
  assert_non_null(strstr(trace, "\"alpha\""));
  assert_non_null(strstr(trace, "\"beta\""));
  assert_non_null(strstr(trace, "\"delta\""));
  assert_non_null(strstr(trace, "\"second-name\""));
  assert_true(read_and_remove(html, page, sizeof page));
  assert_non_null(strstr(page, "<!doctype html>"));

  /* --quiet: nothing on stdout, the trace still written. */
  zones(lens, "gamma", 2, 10);
  snprintf(args, sizeof args, "lens record %s -o %s --duration 0.2 --quiet", name, out);
  r = run_tool(args);
  assert_int_equal(r->code, 0);
  assert_string_equal(r->out, "");
  assert_true(read_and_remove(out, trace, sizeof trace));
  assert_non_null(strstr(trace, "\"gamma\""));
  shk_lens_close(lens);
}

static const char late_name[] = "late name"; /* one address: names go by address */

/* Waits for the recorder, then sends one zone named late_name from a thread of its own: its ring
 * carries the name's contents to the new reader. */
static void zone_once_a_reader_is_there(void *arg) {
  shk_lens *lens = arg;
  if (shk_lens_wait_reader(lens, 20000000000ull) != SHK_OK) return;
  shk_lens_zone z;
  shk_lens_zone_begin(lens, &z, late_name, 0);
  shk_lens_zone_end(&z);
}

/* A zone whose name the producer sent to an earlier reader reaches a new recorder without it
 * (the producer resends names only at its next event): the recorder keeps it aside and writes
 * it at the end under its name, learnt from another thread's ring meanwhile. */
static void record_names_zones_whose_name_went_to_an_earlier_reader(void **state) {
  (void)state;
  char name[64], out[96], args[512];
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "late"), NULL, &lens),
                   SHK_OK);
  shk_lens_reader *first = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &first), SHK_OK);
  zones(lens, late_name, 1, 10); /* its name goes to the first reader */
  size_t n = 0;
  assert_int_equal(shk_lens_reader_drain(first, NULL, NULL, &n), SHK_OK);
  assert_int_equal(n, 1);
  shk_lens_reader_close(first);
  zones(lens, late_name, 1, 10); /* the name is not sent again: no new reader yet */
  shk_test_thread t;
  assert_int_equal(shk_test_thread_start(&t, zone_once_a_reader_is_there, lens), 0);
  shk_test_unique_name(out, sizeof out, "late.json");
  snprintf(args, sizeof args, "lens record %s -o %s --duration 1 --quiet", name, out);
  ran *r = run_tool(args);
  shk_test_thread_join(&t);
  if (r->code != 0) print_error("stdout: %s\nstderr: %s\n", r->out, r->err);
  assert_int_equal(r->code, 0);
  char trace[8192];
  assert_true(read_and_remove(out, trace, sizeof trace));
  const char *first_zone = strstr(trace, "\"name\":\"late name\"");
  assert_non_null(first_zone);
  assert_non_null(strstr(first_zone + 1, "\"name\":\"late name\"")); /* both zones */
  assert_null(strstr(trace, "unknown string"));
  shk_lens_close(lens);
}

/* ---- lens 2.3: rings in extension segments ---- */

#define GROW_THREADS 4
static const char *const grow_zone_names[GROW_THREADS] = {"in-ring-0", "in-ext-1", "in-ext-2a",
                                                          "in-ext-2b"};

typedef struct grow_thread {
  shk_lens *lens;
  int index;
  atomic_int *started;
} grow_thread;

/* Sends its zones, then holds its ring until every thread has one: four rings at once. */
static void grow_produce(void *arg) {
  grow_thread *g = arg;
  char thread[16];
  snprintf(thread, sizeof thread, "grower-%d", g->index);
  shk_lens_thread_name(g->lens, thread);
  zones(g->lens, grow_zone_names[g->index], 3, 10);
  atomic_fetch_add(g->started, 1);
  while (atomic_load(g->started) < GROW_THREADS) shk_test_sleep_ms(1);
}

/* A lens made for one ring, four threads at once: extensions 1 and 2 hold three of the rings. The
 * recorder maps them and writes every thread's zones. */
static void record_writes_the_zones_of_rings_in_extensions(void **state) {
  (void)state;
  char name[64], out[96], args[512];
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.max_threads = 1;
  o.ring_bytes = 8 * 1024;
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "grow"), &o, &lens), SHK_OK);
  atomic_int started = 0;
  grow_thread g[GROW_THREADS];
  shk_test_thread t[GROW_THREADS];
  for (int i = 0; i < GROW_THREADS; i++) {
    g[i] = (grow_thread){lens, i, &started};
    assert_int_equal(shk_test_thread_start(&t[i], grow_produce, &g[i]), 0);
  }
  for (int i = 0; i < GROW_THREADS; i++) shk_test_thread_join(&t[i]);
  shk_lens_info info;
  assert_int_equal(shk_lens_probe(name, &info), SHK_OK);
  assert_int_equal(info.rings, GROW_THREADS);
  shk_test_unique_name(out, sizeof out, "grow.json");
  snprintf(args, sizeof args, "lens record %s -o %s --duration 0.3", name, out);
  ran *r = run_tool(args);
  if (r->code != 0) print_error("stdout: %s\nstderr: %s\n", r->out, r->err);
  assert_int_equal(r->code, 0);
  assert_null(strstr(r->err, "extension"));
  assert_non_null(strstr(r->out, "12 events (12 zones"));
  char trace[16384];
  assert_true(read_and_remove(out, trace, sizeof trace));
  for (int i = 0; i < GROW_THREADS; i++) {
    char quoted[64], thread[32];
    snprintf(quoted, sizeof quoted, "\"name\":\"%s\"", grow_zone_names[i]);
    const char *at = strstr(trace, quoted);
    assert_non_null(at);
    assert_non_null(strstr(at + 1, quoted));
    snprintf(thread, sizeof thread, "\"grower-%d\"", i);
    assert_non_null(strstr(trace, thread));
  }
  shk_lens_close(lens);
}

/* The rows of the table titled `title` in the summary's output: up to `max` of (count, total
 * ms, mean us); the number of rows. */
typedef struct row {
  char name[33];
  unsigned long long count;
  double total_ms, mean_us;
} row;

static size_t table_rows(const char *out, const char *title, row *rows, size_t max) {
  const char *p = strstr(out, title);
  if (!p) return 0;
  p = strchr(p, '\n'); /* the title */
  if (p) p = strchr(p + 1, '\n'); /* the column heads */
  size_t n = 0;
  while (p && p[1] && p[1] != '\n' && n < max) {
    p++;
    double max_us = 0;
    memcpy(rows[n].name, p, 32);
    rows[n].name[32] = '\0';
    if (sscanf(p + 32, "%llu %lf %lf %lf", &rows[n].count, &rows[n].total_ms, &rows[n].mean_us,
               &max_us) != 4)
      break;
    n++;
    p = strchr(p, '\n');
  }
  return n;
}

static unsigned long long count_of(const row *rows, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strncmp(rows[i].name, name, strlen(name)) == 0 && rows[i].name[strlen(name)] == ' ')
      return rows[i].count;
  return 0;
}

/* Each table is in its own order (whatever the zones' times turned out to be: nothing here
 * depends on timing), with every zone and its count; --top N shows N rows. */
static void summary_ranks_zones_and_escapes_thread_names(void **state) {
  (void)state;
  char name[64], args[256];
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "sum"), NULL, &lens),
                   SHK_OK);
  /* A control character, a valid two-byte form, a stray continuation byte, and more than the
   * thread table's 24 columns. */
  assert_int_equal(shk_lens_thread_name(lens, "t\x1fx \xc3\xa9 \xff-and-a-long-tail-past-24"),
                   SHK_OK);
  zones(lens, "many", 200, 20000);
  zones(lens, "long", 1, 2000000);
  zones(lens, "small", 1, 10);
  snprintf(args, sizeof args, "lens summary %s --duration 0.2 --top 3", name);
  ran *r = run_tool(args);
  if (r->code != 0) print_error("stdout: %s\nstderr: %s\n", r->out, r->err);
  assert_int_equal(r->code, 0);
  assert_non_null(strstr(r->out, "202 zones of 3 kinds"));
  assert_non_null(strstr(r->out, "t\\x1fx \xc3\xa9 \\xff-and-a-")); /* escaped, cut at 24 */
  assert_null(strstr(r->out, "long-tail"));
  row total[4], mean[4];
  assert_int_equal(table_rows(r->out, "top zones by total time", total, 4), 3);
  assert_int_equal(table_rows(r->out, "top zones by mean time", mean, 4), 3);
  for (size_t i = 0; i + 1 < 3; i++) {
    assert_true(total[i].total_ms >= total[i + 1].total_ms);
    assert_true(mean[i].mean_us >= mean[i + 1].mean_us);
  }
  assert_int_equal(count_of(total, 3, "many"), 200);
  assert_int_equal(count_of(mean, 3, "long"), 1);
  assert_int_equal(count_of(mean, 3, "small"), 1);

  zones(lens, "again", 3, 10);
  zones(lens, "other", 1, 10);
  snprintf(args, sizeof args, "lens summary %s --duration 0.2 --top 1", name);
  r = run_tool(args);
  assert_int_equal(r->code, 0);
  assert_int_equal(table_rows(r->out, "top zones by total time", total, 4), 1);
  assert_int_equal(table_rows(r->out, "top zones by mean time", mean, 4), 1);
  shk_lens_close(lens);
}

static void record_and_summary_refuse_bad_options(void **state) {
  (void)state;
  expect("lens record x -o t.json --duration soon", 2, NULL, "usage: shmkit lens record");
  expect("lens record x -o t.json --duration -1", 2, NULL, "usage: shmkit lens record");
  expect("lens record x -o t.json --wait 2e9", 2, NULL, "usage: shmkit lens record");
  expect("lens record -o t.json", 2, NULL, "usage: shmkit lens record");
  expect("lens record x", 2, NULL, "usage: shmkit lens record");
  expect("lens summary x --top 0", 2, NULL, "usage: shmkit lens summary");
  expect("lens summary x --top", 2, NULL, "usage: shmkit lens summary");
  expect("lens summary x --wait 1x", 2, NULL, "usage: shmkit lens summary");
  expect("lens summary", 2, NULL, "usage: shmkit lens summary");
}

/* The message for each segment the tool cannot attach to; exit 1 and no trace. */
static void record_says_why_it_cannot_attach(void **state) {
  (void)state;
  char name[64], args[512], out[96];
  shk_test_unique_name(out, sizeof out, "none.json");
  shk_test_unique_name(name, sizeof name, "missing");
  snprintf(args, sizeof args, "lens record %s -o %s", name, out);
  expect(args, 1, NULL, "no lens segment named");
  snprintf(args, sizeof args, "lens record %s -o %s --wait 0.2", name, out); /* waits, then says */
  expect(args, 1, NULL, "no lens segment named");
  expect("lens summary bad/name", 1, NULL, "is not a valid segment name");

  /* A segment that is not a lens: zeros (a creator that never finished) and garbage. */
  shk_shm *shm = NULL;
  assert_int_equal(shk_shm_create(shk_test_unique_name(name, sizeof name, "notlens"), 65536, &shm),
                   SHK_OK);
  snprintf(args, sizeof args, "lens record %s -o %s", name, out);
  expect(args, 1, NULL, "still being set up by its creator");
  memset(shk_shm_data(shm), 0xA5, shk_shm_size(shm));
  expect(args, 1, NULL, "cannot be read");
  shk_shm_close(shm);
  shk_shm_unlink(name);

  /* A lens with a reader already attached (this process). */
  shk_lens *lens = NULL;
  shk_lens_reader *reader = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "taken"), NULL, &lens),
                   SHK_OK);
  assert_int_equal(shk_lens_reader_open(name, NULL, &reader), SHK_OK);
  snprintf(args, sizeof args, "lens record %s -o %s", name, out);
  expect(args, 1, NULL, "already has a reader attached");
  shk_lens_reader_close(reader);
  shk_lens_close(lens);
  FILE *none = fopen(out, "rb");
  assert_null(none);
}

#ifndef _WIN32
/* On a terminal (script(1) gives the tool one), record shows a progress line, redrawn in place
 * ("\r") while it runs, then the final counts on their own line. */
static void record_shows_a_live_progress_line_on_a_terminal(void **state) {
  (void)state;
  if (system("command -v script >/dev/null 2>&1") != 0) {
    print_message("script(1) not found: the terminal progress line is not checked here\n");
    skip();
    return;
  }
  char name[64], out[96], log[96], cmd[1024];
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "tty"), NULL, &lens),
                   SHK_OK);
  zones(lens, "shown", 5, 10);
  shk_test_unique_name(out, sizeof out, "tty.json");
  shk_test_unique_name(log, sizeof log, "tty.txt");
  snprintf(cmd, sizeof cmd, "script -qec '\"%s\" lens record %s -o %s --duration 0.5' /dev/null >%s",
           SHK_TEST_TOOL, name, out, log);
  int status = system(cmd);
  char text[8192], trace[4096];
  slurp(log, text, sizeof text);
  assert_true(read_and_remove(out, trace, sizeof trace));
  if (status != 0) print_error("%s\n%s\n", cmd, text);
  assert_int_equal(status, 0);
  /* A live line (however many events it had seen by then), then the final one with all. */
  const char *live = strstr(text, "\r");
  assert_non_null(live);
  assert_true(live[1] >= '0' && live[1] <= '9');
  assert_non_null(strstr(live, " events ("));
  assert_non_null(strstr(live + 1, "\n5 events (5 zones"));
  shk_lens_close(lens);
}
#endif

#ifdef __linux__
/* A name for /dev/full (a symbolic link, so that removing a failed output removes the link). */
static void full_device_link(char *path, size_t size, const char *tag) {
  shk_test_unique_name(path, size, tag);
  assert_int_equal(symlink("/dev/full", path), 0);
}

/* When the disk is full, record and report say so, exit 1, and report leaves no partial page. */
static void record_and_report_say_when_their_output_cannot_be_written(void **state) {
  (void)state;
  char name[64], full[96], in[96], args[512];
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "full"), NULL, &lens),
                   SHK_OK);
  zones(lens, "lost", 3, 10);
  full_device_link(full, sizeof full, "full.json");
  snprintf(args, sizeof args, "lens record %s -o %s --duration 0.2", name, full);
  expect(args, 1, NULL, "failed");
  remove(full);
  shk_lens_close(lens);

  shk_test_unique_name(in, sizeof in, "in.json");
  FILE *f = fopen(in, "wb");
  assert_non_null(f);
  fputs("[{\"ph\":\"X\",\"name\":\"a\",\"pid\":1,\"tid\":1,\"ts\":0,\"dur\":1}]", f);
  assert_int_equal(fclose(f), 0);
  full_device_link(full, sizeof full, "full.html");
  snprintf(args, sizeof args, "lens report %s -o %s", in, full);
  expect(args, 1, NULL, "No space left on device");
  FILE *left = fopen(full, "rb");
  assert_null(left); /* the link (the partial output) is gone */
  remove(full);
  remove(in);
}
#endif

#ifndef _WIN32
/* Ctrl-C (SIGINT) ends a recording that has no --duration: the trace is written, exit 0. */
static void record_stops_on_interrupt_and_keeps_what_it_read(void **state) {
  (void)state;
  char name[64], out[96], cmd[1024];
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "int"), NULL, &lens),
                   SHK_OK);
  zones(lens, "before-ctrl-c", 4, 10);
  shk_test_unique_name(out, sizeof out, "int.json");
  /* The tool is started in the background and interrupted once it is recording (its trace file
   * exists); the shell waits for it and passes its exit code on. */
  snprintf(cmd, sizeof cmd,
           "\"%s\" lens record %s -o %s --quiet & pid=$!; "
           "i=0; while [ ! -s %s ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; "
           "sleep 0.2; kill -INT $pid; wait $pid",
           SHK_TEST_TOOL, name, out, out);
  int status = system(cmd);
  char trace[4096];
  assert_true(read_and_remove(out, trace, sizeof trace));
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_non_null(strstr(trace, "\"before-ctrl-c\""));
  shk_lens_close(lens);
}
#endif

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(record_writes_the_zones_of_rings_in_extensions),
    cmocka_unit_test(record_writes_the_trace_and_the_report_with_the_latest_thread_name),
    cmocka_unit_test(record_names_zones_whose_name_went_to_an_earlier_reader),
#ifndef _WIN32
    cmocka_unit_test(record_shows_a_live_progress_line_on_a_terminal),
    cmocka_unit_test(record_stops_on_interrupt_and_keeps_what_it_read),
#endif
#ifdef __linux__
    cmocka_unit_test(record_and_report_say_when_their_output_cannot_be_written),
#endif
    cmocka_unit_test(summary_ranks_zones_and_escapes_thread_names),
    cmocka_unit_test(record_and_summary_refuse_bad_options),
    cmocka_unit_test(record_says_why_it_cannot_attach),
};
#else
static void tool_not_built_skipped(void **state) {
  (void)state;
  print_message("built without the shmkit tool (SHK_BUILD_TOOLS=OFF): nothing to test\n");
  skip();
}
static const struct CMUnitTest tests[] = {cmocka_unit_test(tool_not_built_skipped)};
#endif
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
