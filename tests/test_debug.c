/* SHK_DEBUG: each diagnostic of the buf part appears on stderr with SHK_DEBUG naming buf and not
 * without (where the mistake can be made safely without it), in a child process whose stderr
 * goes to a file: guard bytes spoiled, double release, use after release, a range index made
 * inconsistent, errors of public calls; and the parsing of the variable. */
/* ctest: labels=unit;internal;multiprocess timeout=120 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shk_test_debug.h"
#include "os_faults.h"
#include "common/buf_internal.h"
#include "common/watch_internal.h"

/* ---- the children: stderr to the file named by argv[0], then the mistake ---- */

static int make_errors(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  shk_buf *b = NULL;
  SHK_CHECK(shk_buf_create(0, 1, NULL, &b) == SHK_ESIZE);
  shk_buf_options o = {.allocator = "no-such-allocator"};
  SHK_CHECK(shk_buf_create(1, 1, &o, &b) == SHK_ENOENT);
  SHK_CHECK(shk_buf_allocator_unregister("heap") == SHK_EACCES);
  SHK_CHECK(shk_buf_create(8, 8, NULL, &b) == SHK_OK); /* a success says nothing */
  shk_buf_release(b);
  fflush(stderr);
  return 0;
}

static int release_twice(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  shk_buf *b = NULL;
  SHK_CHECK(shk_buf_create(16, 4, NULL, &b) == SHK_OK);
  shk_buf_release(b);
  shk_buf_release(b); /* reported, nothing done */
  fflush(stderr);
  return 0;
}

static int use_after_release(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  shk_buf *b = NULL;
  SHK_CHECK(shk_buf_create(16, 4, NULL, &b) == SHK_OK);
  shk_buf_release(b);
  SHK_CHECK(shk_buf_data(b) == NULL); /* reported; the accessor gives its "no buffer" answer */
  SHK_CHECK(shk_buf_retain(b) == SHK_EINVAL);
  fflush(stderr);
  return 0;
}

/* Writes one byte before and two after the bytes of a 64-byte buffer: inside the guards. */
static int spoil_guards(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  shk_buf *b = NULL;
  SHK_CHECK(shk_buf_create(64, 1, NULL, &b) == SHK_OK);
  unsigned char *p = shk_buf_data(b);
  p[-1] = 0;
  p[64] = 0;
  p[65] = 0;
  shk_buf_release(b);
  fflush(stderr);
  return 0;
}

/* Writes to the guards' place only where there are guards (without them it is out of bounds):
 * a buffer whose guards were left alone ends with nothing said. */
static int keep_guards(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  shk_buf *b = NULL;
  shk_buf_options o = {.allocator = "aligned", .alignment = 128};
  SHK_CHECK(shk_buf_create(100, 1, &o, &b) == SHK_OK);
  memset(shk_buf_data(b), 0xFD ^ 0xFF, 100); /* every byte of its own, and none beyond */
  shk_buf_release(b);
  fflush(stderr);
  return 0;
}

/* Makes the index disagree with a buffer (its recorded end moved back: the piece the index keeps
 * for it then ends after it, wherever the arena lies in its 128-byte blocks), lets the next change
 * of the index find it, then puts it right before the release. */
static int corrupt_index(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  /* In one 512-byte block of the index wherever the linker puts it: a range across a block
   * boundary is noted as two pieces, and the counts below would not be these. */
  static _Alignas(512) unsigned char arena[256];
  shk_buf *a = NULL, *b = NULL;
  SHK_CHECK(shk_buf_consume(arena, 64, 1, NULL, &a) == SHK_OK);
  a->range.end -= 8;
  SHK_CHECK(shk_buf_consume(arena + 128, 64, 1, NULL, &b) == SHK_OK);
  a->range.end += 8;
  shk_buf_release(b);
  shk_buf_release(a);
  fflush(stderr);
  return 0;
}

/* ---- the other parts: one failing call each (and one success, which says nothing) ---- */

static int watch_errors(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  shk_watcher *w = NULL;
  SHK_CHECK(shk_watch_create(NULL, &w) == SHK_OK);
  SHK_CHECK(shk_watch_remove(w, 4242) == SHK_ENOENT);
  shk_watch_free(w);
  fflush(stderr);
  return 0;
}

static int no_chunk(const shk_task_chunk *chunk, shk_task_out *out) {
  (void)chunk, (void)out;
  return 0;
}

static int task_errors(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  shk_task_results *res = NULL;
  SHK_CHECK(shk_task_run(NULL, 16, no_chunk, NULL, &res) == SHK_EINVAL);
  fflush(stderr);
  return 0;
}

static int lens_errors(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  SHK_CHECK(shk_lens_frame(NULL) == SHK_EINVAL);
  shk_lens_event ev;
  SHK_CHECK(shk_lens_reader_next(NULL, &ev) == SHK_EINVAL);
  fflush(stderr);
  return 0;
}

static int shm_errors(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  char name[96];
  shk_test_unique_name(name, sizeof name, "nosuch");
  shk_shm *shm = NULL;
  SHK_CHECK(shk_shm_open(name, SHK_SHM_READ_ONLY, &shm) == SHK_ENOENT);
  SHK_CHECK(shk_shm_create_anonymous(4096, &shm) == SHK_OK);
  shk_shm_close(shm);
  fflush(stderr);
  return 0;
}

/* Closes a segment handle twice: with SHK_DEBUG=shm the second close is reported and ignored
 * (without it, undefined: only run with it). */
static int shm_close_twice(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  shk_shm *shm = NULL;
  SHK_CHECK(shk_shm_create_anonymous(4096, &shm) == SHK_OK);
  shk_shm_close(shm);
  shk_shm_close(shm);
  fflush(stderr);
  return 0;
}

/* Takes a watched region's span out of the fault table behind the watcher's back, lets the next
 * change next to it find that, then puts it back before the free. */
static int corrupt_fault_table(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  size_t ps = shk__os_caps_get()->page_size;
  unsigned char *pages = NULL;
  SHK_CHECK(shk_watch_pages_alloc(3 * ps, (void **)&pages) == SHK_OK);
  shk_watch_options opts;
  shk_watch_options_init(&opts);
  opts.backend = SHK_WATCH_MPROTECT;
  shk_watcher *w = NULL;
  SHK_CHECK(shk_watch_create(&opts, &w) == SHK_OK);
  uint32_t a = 0, b = 0;
  SHK_CHECK(shk_watch_add(w, pages, 64, "a", &a) == SHK_OK);
  uintptr_t start = (uintptr_t)pages, end = start + ps;
  shk__watch_table_remove(w->sink, start, end);
  SHK_CHECK(shk_watch_add(w, pages + 2 * ps, 64, "b", &b) == SHK_OK);
  SHK_CHECK(shk__watch_table_add(w->sink, start, end, SHK__OS_PROT_READ_WRITE) == SHK_OK);
  shk_watch_free(w);
  shk_watch_pages_free(pages, 3 * ps);
  fflush(stderr);
  return 0;
}

/* A raw error both backends translate to SHK_EOS (EIO; ERROR_GEN_FAILURE). */
#ifdef _WIN32
#define INJECTED_OS_ERROR 31
#else
#define INJECTED_OS_ERROR 5
#endif

/* A remove whose pages cannot be given back (fault injection): reported, the program goes on. */
static int unprotect_fails(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  size_t ps = shk__os_caps_get()->page_size;
  unsigned char *pages = NULL;
  SHK_CHECK(shk_watch_pages_alloc(ps, (void **)&pages) == SHK_OK);
  shk_watch_options opts;
  shk_watch_options_init(&opts);
  opts.backend = SHK_WATCH_MPROTECT;
  shk_watcher *w = NULL;
  SHK_CHECK(shk_watch_create(&opts, &w) == SHK_OK);
  uint32_t id = 0;
  SHK_CHECK(shk_watch_add(w, pages, 64, "stuck", &id) == SHK_OK);
  shk__fault_arm(SHK__FAULT_PROTECT, 1, INJECTED_OS_ERROR, true);
  int rc = shk_watch_remove(w, id);
  shk__fault_disarm_all();
  SHK_CHECK(rc == SHK_EOS);
  pages[0] = 1; /* opened by the fault handler */
  shk_watch_free(w);
  fflush(stderr);
  return 0;
}

static const shk_test_child children[] = {
    {"watch_errors", watch_errors},
    {"task_errors", task_errors},
    {"lens_errors", lens_errors},
    {"shm_errors", shm_errors},
    {"shm_close_twice", shm_close_twice},
    {"corrupt_fault_table", corrupt_fault_table},
    {"unprotect_fails", unprotect_fails},
    {"make_errors", make_errors},     {"release_twice", release_twice},
    {"use_after_release", use_after_release}, {"spoil_guards", spoil_guards},
    {"keep_guards", keep_guards},     {"corrupt_index", corrupt_index}};

/* ---- the tests ---- */

static void errors_of_public_calls_are_reported_only_with_shk_debug(void **state) {
  (void)state;
  char *on = run_capturing("make_errors", "buf");
  expect_in(on, "shmkit debug: buf: shk_buf_create returns SHK_ESIZE (");
  expect_in(on, "shk_buf_create returns SHK_ENOENT (");
  expect_in(on, "shk_buf_allocator_unregister returns SHK_EACCES (");
  expect_in(on, "called from test_debug");
#if defined(SHK_TEST_DEBUG_INFO) && !defined(_WIN32)
  /* The call site's line, where the system can read debug information (libdw). */
  if (!strstr(on, " at ")) fprintf(stderr, "note: no file:line in the call sites (no libdw?)\n");
#endif
  size_t lines = 0;
  for (const char *p = on; (p = strstr(p, "shmkit debug:")); p++) lines++;
  assert_int_equal(lines, 3); /* the success said nothing */
  free(on);
  char *all = run_capturing("make_errors", "1");
  expect_in(all, "shk_buf_create returns SHK_ESIZE");
  free(all);
  char *off = run_capturing("make_errors", NULL);
  expect_not_in(off, "shmkit debug");
  free(off);
  char *other = run_capturing("make_errors", "watch,task");
  expect_not_in(other, "shmkit debug");
  free(other);
  char *zero = run_capturing("make_errors", "0");
  expect_not_in(zero, "shmkit debug");
  free(zero);
}

static void an_unknown_part_is_named_and_the_rest_still_applies(void **state) {
  (void)state;
  char *text = run_capturing("make_errors", "bogus, buf");
  expect_in(text, "shmkit debug: SHK_DEBUG: unknown part 'bogus' ignored");
  expect_in(text, "shk_buf_create returns SHK_ESIZE");
  free(text);
}

static void a_double_release_is_reported_with_both_call_sites(void **state) {
  (void)state;
  char *text = run_capturing("release_twice", "buf");
  expect_in(text, "shmkit debug: buf: double release of buffer id ");
  expect_in(text, "in shk_buf_release, called from test_debug");
  expect_in(text, "; it was released from test_debug");
  free(text);
}

static void a_use_after_release_is_reported_and_refused(void **state) {
  (void)state;
  char *text = run_capturing("use_after_release", "buf");
  expect_in(text, "shmkit debug: buf: use after release of buffer id ");
  expect_in(text, "in shk_buf_data, called from test_debug");
  expect_in(text, "in shk_buf_retain");
  expect_in(text, "shk_buf_retain returns SHK_EINVAL");
  free(text);
}

static void spoiled_guard_bytes_are_found_at_the_release(void **state) {
  (void)state;
  char *text = run_capturing("spoil_guards", "buf");
  expect_in(text, "shmkit debug: buf: guard bytes overwritten: 1 of 16 before and 2 of 16 after "
                  "buffer id ");
  expect_in(text, "(64 B, heap, data ");
  expect_in(text, "created from test_debug");
  expect_in(text, "released from test_debug");
  free(text);
  char *clean = run_capturing("keep_guards", "buf");
  expect_not_in(clean, "shmkit debug");
  free(clean);
}

static void an_inconsistent_range_index_is_reported(void **state) {
  (void)state;
  char *on = run_capturing("corrupt_index", "buf");
  /* a's piece was put as [0, 64) and its node then said [0, 56): its noted bits disagree with
   * it, and the records hold 8 bits more than the listed pieces' bytes. */
  expect_in(on, "shmkit debug: buf: range index inconsistent: buffer range [0x");
  expect_in(on, "has a piece whose bits are not set, or noted wrong");
  expect_in(on, "2 pieces of 120 bytes listed, 128 bits set in the records");
  free(on);
  char *off = run_capturing("corrupt_index", NULL);
  expect_not_in(off, "shmkit debug");
  free(off);
}

/* Each part's errors with SHK_DEBUG naming it (or 1), and nothing without or with another. */
static void errors_of_each_part_are_reported_only_with_its_name(void **state) {
  (void)state;
  static const struct {
    const char *child, *part, *first, *second;
  } cases[] = {
      {"watch_errors", "watch", "shmkit debug: watch: shk_watch_remove returns SHK_ENOENT (", NULL},
      {"task_errors", "task", "shmkit debug: task: shk_task_run returns SHK_EINVAL (", NULL},
      {"lens_errors", "lens", "shmkit debug: lens: shk_lens_frame returns SHK_EINVAL (",
       "shmkit debug: lens: shk_lens_reader_next returns SHK_EINVAL ("},
      {"shm_errors", "shm", "shmkit debug: shm: shk_shm_open returns SHK_ENOENT (", NULL},
  };
  for (size_t i = 0; i < SHK__ARRAY_LEN(cases); i++) {
    char *on = run_capturing(cases[i].child, cases[i].part);
    expect_in(on, cases[i].first);
    if (cases[i].second) expect_in(on, cases[i].second);
    expect_in(on, "called from test_debug");
    size_t lines = 0;
    for (const char *p = on; (p = strstr(p, "shmkit debug:")); p++) lines++;
    assert_int_equal(lines, cases[i].second ? 2 : 1); /* successes said nothing */
    free(on);
    char *all = run_capturing(cases[i].child, "1");
    expect_in(all, cases[i].first);
    free(all);
    char *off = run_capturing(cases[i].child, NULL);
    expect_not_in(off, "shmkit debug");
    free(off);
    char *other = run_capturing(cases[i].child, "buf");
    expect_not_in(other, "shmkit debug");
    free(other);
  }
}

static void a_segment_handle_closed_twice_is_reported(void **state) {
  (void)state;
  char *text = run_capturing("shm_close_twice", "shm");
  expect_in(text, "shmkit debug: shm: shk_shm_close of a handle that is not open (");
  expect_in(text, "called from test_debug");
  free(text);
}

static void a_watched_region_missing_from_the_fault_table_is_reported(void **state) {
  (void)state;
  char *on = run_capturing("corrupt_fault_table", "watch");
  expect_in(on, "shmkit debug: watch: fault table inconsistent: region 1 \"a\" (mprotect) at ");
  free(on);
  char *off = run_capturing("corrupt_fault_table", NULL);
  expect_not_in(off, "shmkit debug");
  free(off);
}

static void pages_that_cannot_be_given_back_are_reported(void **state) {
  (void)state;
  char *on = run_capturing("unprotect_fails", "watch");
  expect_in(on, "shmkit debug: watch: region 1 \"stuck\": its pages could not be given back "
                "(SHK_EOS, OS error ");
  expect_in(on, "shmkit debug: watch: shk_watch_remove returns SHK_EOS (");
  free(on);
  char *off = run_capturing("unprotect_fails", NULL);
  expect_not_in(off, "shmkit debug");
  free(off);
}

/* In this process SHK_DEBUG is never set: parsing sets the mask, "" clears it again. */
static void the_variable_names_parts_by_a_comma_list(void **state) {
  (void)state;
  assert_int_equal(shk__debug_parse("1"), SHK__DEBUG_ALL);
  assert_int_equal(shk__debug_parse("all"), SHK__DEBUG_ALL);
  assert_int_equal(shk__debug_parse("buf,shm"), SHK__DEBUG_BUF | SHK__DEBUG_SHM);
  assert_int_equal(shk__debug_parse(" lens , task,"), SHK__DEBUG_LENS | SHK__DEBUG_TASK);
  assert_int_equal(shk__debug_parse("watch"), SHK__DEBUG_WATCH);
  assert_true(shk__debug_on(SHK__DEBUG_WATCH));
  assert_false(shk__debug_on(SHK__DEBUG_BUF));
  assert_int_equal(shk__debug_parse("0"), 0);
  assert_int_equal(shk__debug_parse(""), 0);
  assert_int_equal(shk__debug_parse(NULL), 0);
  assert_false(shk__debug_on(SHK__DEBUG_ALL));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(errors_of_public_calls_are_reported_only_with_shk_debug),
      cmocka_unit_test(an_unknown_part_is_named_and_the_rest_still_applies),
      cmocka_unit_test(a_double_release_is_reported_with_both_call_sites),
      cmocka_unit_test(a_use_after_release_is_reported_and_refused),
      cmocka_unit_test(spoiled_guard_bytes_are_found_at_the_release),
      cmocka_unit_test(an_inconsistent_range_index_is_reported),
      cmocka_unit_test(the_variable_names_parts_by_a_comma_list),
      cmocka_unit_test(errors_of_each_part_are_reported_only_with_its_name),
      cmocka_unit_test(a_segment_handle_closed_twice_is_reported),
      cmocka_unit_test(a_watched_region_missing_from_the_fault_table_is_reported),
      cmocka_unit_test(pages_that_cannot_be_given_back_are_reported),
  };
  return shk_test_main(argc, argv, __FILE__, tests, SHK__ARRAY_LEN(tests), children,
                       SHK__ARRAY_LEN(children));
}
