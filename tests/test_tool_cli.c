/* The `shmkit` command-line tool as a user runs it: every command's --help (exit 0, usage on
 * stdout), bad usage (exit 2, usage on stderr), unknown commands, --version, `shm list` and
 * `shm clean` (a stale generated name is removed, a live one kept), `lens list` with a live lens
 * segment, `lens report` on a trace and on a missing file. Skipped, saying so, in builds without
 * the tool. */
/* ctest: labels=unit timeout=120 */
#include <stdio.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#ifdef SHK_TEST_TOOL
#include "shk_test_tool.h"

static void every_command_has_help_and_refuses_bad_usage(void **state) {
  (void)state;
  expect("--help", 0, "usage: shmkit lens record", NULL);
  expect("-h", 0, "shmkit shm list|clean", NULL);
  expect("", 2, NULL, "usage: shmkit");
  expect("bogus", 2, NULL, "unknown command 'bogus'");
  expect("--version", 0, shk_version_string(), NULL);
  expect("--version", 0, "lens protocol", NULL);
  expect("lens", 2, NULL, "usage: shmkit");
  expect("lens --help", 0, "usage: shmkit lens", NULL);
  expect("lens bogus", 2, NULL, "unknown command 'bogus'");
  expect("lens record --help", 0, "usage: shmkit lens record", NULL);
  expect("lens summary --help", 0, "usage: shmkit lens summary", NULL);
  expect("lens list --help", 0, "usage: shmkit lens list", NULL);
  expect("lens list extra", 2, NULL, "usage: shmkit lens list");
  expect("lens report --help", 0, "usage: shmkit lens report", NULL);
  expect("lens report", 2, NULL, "usage: shmkit lens report");
  expect("lens report a.json", 2, NULL, "usage: shmkit lens report");
  expect("lens report a.json -o", 2, NULL, "usage: shmkit lens report");
  expect("lens report a.json b.json -o c.html", 2, NULL, "usage");
  expect("lens report --bogus a.json -o c.html", 2, NULL, "usage");
  expect("shm", 2, NULL, "usage: shmkit shm list");
  expect("shm --help", 0, "usage: shmkit shm list", NULL);
  expect("shm list extra", 2, NULL, "usage: shmkit shm list");
  expect("shm bogus", 2, NULL, "unknown command 'bogus'");
}

static void lens_report_writes_a_page_or_says_why_not(void **state) {
  (void)state;
  char in[96], html[96], args[400];
  shk_test_unique_name(in, sizeof in, "t.json");
  shk_test_unique_name(html, sizeof html, "t.html");
  FILE *f = fopen(in, "wb");
  assert_non_null(f);
  fputs("[{\"ph\":\"X\",\"name\":\"a\",\"pid\":1,\"tid\":1,\"ts\":0,\"dur\":1}]", f);
  assert_int_equal(fclose(f), 0);
  snprintf(args, sizeof args, "lens report %s -o %s --title \"my title\"", in, html);
  expect(args, 0, NULL, NULL);
  char page[65536];
  slurp(html, page, sizeof page); /* removes it */
  assert_non_null(strstr(page, "\"title\":\"my title\""));
  snprintf(args, sizeof args, "lens report %s --output %s --quiet", in, html);
  expect(args, 0, NULL, NULL);
  assert_string_equal(run_tool(args)->err, "");
  remove(html);
  remove(in);
  snprintf(args, sizeof args, "lens report %s -o %s", in, html); /* the trace is gone now */
  ran *r = run_tool(args);
  assert_int_equal(r->code, 1);
  assert_true(strlen(r->err) > 0);
  FILE *none = fopen(html, "rb");
  assert_null(none);
}

static void shm_list_and_clean_see_this_users_segments(void **state) {
  (void)state;
  ran *r = run_tool("shm list");
  assert_int_equal(r->code, 0);
  if (strstr(r->out, "this system keeps no list")) { /* Windows: names vanish with their handles */
    expect("shm clean", 0, "this system keeps no list", NULL);
    return;
  }
  expect("shm clean", 0, "removed", NULL);
  /* a buffer of the "shm" allocator has a generated name with this process as its owner */
  shk_buf *buf = NULL;
  shk_buf_options o = {.allocator = "shm"};
  assert_int_equal(shk_buf_create(4096, 1, &o, &buf), SHK_OK);
  const char *name = shk_buf_segment_name(buf);
  assert_non_null(name);
  r = run_tool("shm list");
  assert_int_equal(r->code, 0);
  assert_non_null(strstr(r->out, name));
  assert_non_null(strstr(r->out, "alive"));
  /* The owner is alive: the name stays (the count may include other tests' stale names,
   * removed while this one runs beside them under ctest -j). */
  expect("shm clean", 0, "stale segment names", NULL);
  r = run_tool("shm list");
  assert_non_null(strstr(r->out, name));
  shk_buf_release(buf);
}

static void lens_list_shows_a_live_lens(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "cli"), NULL, &lens), SHK_OK);
  assert_int_equal(shk_lens_frame(lens), SHK_OK);
  ran *r = run_tool("lens list");
  if (r->code == 1 && strstr(r->err, "no list of shared-memory names")) {
    shk_lens_close(lens);
    return; /* Windows */
  }
  assert_int_equal(r->code, 0);
  if (!strstr(r->out, name)) {
    print_error("lens list: %s\n", r->out);
    fail();
  }
  shk_lens_close(lens);
  r = run_tool("lens list");
  assert_int_equal(r->code, 0);
  assert_null(strstr(r->out, name));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(every_command_has_help_and_refuses_bad_usage),
    cmocka_unit_test(lens_report_writes_a_page_or_says_why_not),
    cmocka_unit_test(shm_list_and_clean_see_this_users_segments),
    cmocka_unit_test(lens_list_shows_a_live_lens),
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
