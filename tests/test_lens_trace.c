/* The recorder's Chrome Trace JSON writer (tools/trace_json.c, compiled in here): escaping, bytes
 * that are not UTF-8, numbers JSON cannot hold, thread tracks and names. */
/* ctest: labels=unit timeout=60 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "../tools/trace_json.c"

/* Writes events[i] with nargs[i] arguments from args[i] (args may be NULL: none), reads the file
 * back. */
static char *write_and_read_args(const shk_lens_event *events, size_t n,
                                 const shk_lens_arg *const *args, const size_t *nargs) {
  char path[128];
  shk_test_unique_name(path, sizeof path, "trace.json");
  trace_json *t = NULL;
  assert_int_equal(trace_json_open(path, "lens \"x\"", &t), 0);
  for (size_t i = 0; i < n; i++) {
    if (args) trace_json_event_args(t, &events[i], args[i], nargs[i]);
    else trace_json_event(t, &events[i]);
  }
  assert_int_equal(trace_json_threads(t), 2);
  assert_int_equal(trace_json_close(t), 0);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static char text[65536];
  size_t len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  remove(path);
  text[len] = '\0';
  return text;
}

static char *write_and_read(const shk_lens_event *events, size_t n) {
  return write_and_read_args(events, n, NULL, NULL);
}

/* A zone of process 1, thread tid, ending at 2 ms. */
static shk_lens_event zone_at(const char *name, const char *thread, uint64_t tid,
                              uint64_t duration_ns) {
  shk_lens_event e;
  memset(&e, 0, sizeof e);
  e.kind = SHK_LENS_ZONE;
  e.name = name;
  e.thread = thread;
  e.thread_key = tid;
  e.pid = 1;
  e.tid = tid;
  e.time = 0.002;
  e.duration_ns = duration_ns;
  return e;
}

static void strings_are_escaped_and_bad_bytes_replaced(void **state) {
  (void)state;
  shk_lens_event e[4];
  memset(e, 0, sizeof e);
  e[0] = zone_at("quote\" back\\ tab\t caf\xc3\xa9 bad\xff\xc3 end", "main", 3, 1500);
  e[1] = zone_at("other", "worker \xe2\x82\xac", 4, 1500);
  e[2].kind = SHK_LENS_LOG;
  e[2].message = "line\nbreak\0hidden";
  e[2].length = 17;
  e[2].time = 0.001;
  e[2].pid = 1;
  e[3].kind = SHK_LENS_PLOT;
  e[3].name = "p";
  e[3].value = 0.0 / 0.0;
  e[3].time = 1.0 / 0.0;
  e[3].pid = 1;
  const char *text = write_and_read(e, 4);
  assert_non_null(strstr(text, "\"quote\\\" back\\\\ tab\\u0009 caf\xc3\xa9 bad\\ufffd\\ufffd end\""));
  assert_non_null(strstr(text, "\"line\\u000abreak\\u0000hidden\""));
  /* start = end - duration, in microseconds with nanosecond digits */
  assert_non_null(strstr(text, "\"ts\":1998.500,\"dur\":1.500"));
  /* NaN and infinity are not JSON: they become 0 */
  assert_non_null(strstr(text, "\"value\":0}"));
  assert_null(strstr(text, "nan"));
  assert_null(strstr(text, "inf"));
  assert_non_null(strstr(text, "\"name\":\"thread_name\",\"pid\":1,\"tid\":3,\"args\":{\"name\":\"main\"}"));
  assert_non_null(strstr(text, "\"args\":{\"name\":\"worker \xe2\x82\xac\"}"));
  assert_non_null(strstr(text, "\"args\":{\"name\":\"lens \\\"x\\\" (pid 1)\"}"));
}

static void frames_touching_end_to_start_never_overlap(void **state) {
  (void)state;
  shk_lens_event e[3];
  memset(e, 0, sizeof e);
  for (int i = 0; i < 2; i++) {
    e[i].kind = SHK_LENS_FRAME;
    e[i].number = (uint64_t)i + 1;
    e[i].time = 0.001 * (i + 1);
    e[i].duration_ns = 1000000;
    e[i].pid = 1;
  }
  e[2].kind = SHK_LENS_ZONE;
  e[2].name = "z";
  e[2].thread = "t";
  e[2].thread_key = 9;
  e[2].pid = 1;
  e[2].tid = 9;
  e[2].time = 0.0;
  e[2].duration_ns = 5; /* longer than the time since the origin: clamped at 0 */
  shk_lens_event f = e[2];
  f.thread = "u";
  f.thread_key = 10;
  f.tid = 10;
  shk_lens_event all[4] = {e[0], e[1], e[2], f};
  const char *text = write_and_read(all, 4);
  /* frame 1 covers [0, 999.999], frame 2 starts at 1000.000 */
  assert_non_null(strstr(text, "\"name\":\"frame 1\",\"pid\":1,\"tid\":2147483645,\"ts\":0.000,\"dur\":999.999"));
  assert_non_null(strstr(text, "\"name\":\"frame 2\",\"pid\":1,\"tid\":2147483645,\"ts\":1000.000,\"dur\":999.999"));
  assert_non_null(strstr(text, "\"ts\":0.000,\"dur\":0.000"));
}

/* Issue 13, defect 4: lead bytes F5-FF passed through as if they began 3-byte sequences. */
static void bytes_that_never_start_utf8_are_replaced(void **state) {
  (void)state;
  shk_lens_event e[2];
  memset(e, 0, sizeof e);
  e[0].kind = SHK_LENS_ZONE;
  e[0].name = "a\xf5\x80\x80" "b\xf8\x88\x80\x80\x80" "c\xfe\xff";
  e[0].thread = "t";
  e[0].pid = 1;
  e[0].tid = 1;
  e[1] = e[0];
  e[1].tid = 2;
  const char *text = write_and_read(e, 2);
  assert_non_null(strstr(text, "\"a\\ufffd\\ufffd\\ufffdb\\ufffd\\ufffd\\ufffd\\ufffd\\ufffdc\\ufffd\\ufffd\""));
}

/* Issue 13, defect 6: live heap bytes were a signed sum that overflowed (0 after an allocation,
 * undefined behaviour under UBSan). Now unsigned and saturating, per process. */
static void heap_counters_saturate_instead_of_overflowing(void **state) {
  (void)state;
  shk_lens_event e[5];
  memset(e, 0, sizeof e);
  for (int i = 0; i < 5; i++) {
    e[i].kind = SHK_LENS_HEAP;
    e[i].pid = 1;
    e[i].size = UINT64_MAX / 2 + 7;
  }
  e[4].kind = SHK_LENS_ZONE; /* write_and_read wants two threads */
  e[4].name = "z";
  e[4].thread = "t";
  e[4].tid = 1;
  e[3].kind = SHK_LENS_ZONE;
  e[3].name = "z";
  e[3].thread = "t";
  e[3].tid = 2;
  e[2].is_free = false;
  const char *text = write_and_read(e, 5);
  assert_non_null(strstr(text, "\"live bytes\":9223372036854775814}"));
  assert_non_null(strstr(text, "\"live bytes\":18446744073709551615}"));
  assert_null(strstr(text, "\"live bytes\":0}"));
  assert_null(strstr(text, "\"live bytes\":-"));
}

/* ... and at the other end (docs/lens.md: a free subtracts its size, the count saturates): a free
 * of more than is live (a producer that frees what it never reported, or lies) gives 0, not a
 * count wrapped below zero; the next allocation counts from there. */
static void heap_counters_stop_at_zero_on_a_free_of_more_than_is_live(void **state) {
  (void)state;
  shk_lens_event e[5];
  memset(e, 0, sizeof e);
  static const uint64_t sizes[3] = {100, 300, 5};
  for (int i = 0; i < 3; i++) {
    e[i].kind = SHK_LENS_HEAP;
    e[i].pid = 1;
    e[i].size = sizes[i];
    e[i].is_free = i == 1;
  }
  e[3] = zone_at("z", "t", 1, 1000); /* write_and_read wants two threads */
  e[4] = zone_at("z", "u", 2, 1000);
  const char *text = write_and_read(e, 5);
  const char *alloc = strstr(text, "\"live bytes\":100}");
  const char *freed = strstr(text, "\"live bytes\":0}");
  const char *again = strstr(text, "\"live bytes\":5}");
  assert_non_null(alloc);
  assert_non_null(freed);
  assert_non_null(again);
  assert_true(alloc < freed && freed < again);
  assert_null(strstr(text, "\"live bytes\":18446744073709551"));
}

/* speedscope shows `name {args}` for an event with args: a zone's name must be all there is. */
static void zone_names_stay_clean_and_colour_has_a_field_of_its_own(void **state) {
  (void)state;
  shk_lens_event e[2];
  e[0] = zone_at("update", "main", 3, 1000);
  e[0].depth = 1;
  e[0].color = 0x33AA33;
  e[1] = zone_at("plain", "other", 4, 1000);
  const char *text = write_and_read(e, 2);
  assert_non_null(strstr(text, "\"name\":\"update\",\"pid\":1,\"tid\":3,\"ts\":1999.000,\"dur\":1.000,"
                               "\"color\":\"#33aa33\"}"));
  assert_non_null(strstr(text, "\"name\":\"plain\",\"pid\":1,\"tid\":4,\"ts\":1999.000,\"dur\":1.000}"));
  assert_null(strstr(text, "depth"));
}

/* Lens 2.2 arguments: a zone's in its args (and nothing else there); a heap event's on a marker
 * of the Heap track; a log with a "thread" argument on that thread's track. */
static void arguments_go_where_a_viewer_shows_them(void **state) {
  (void)state;
  shk_lens_event e[4];
  e[0] = zone_at("shk chunk", "worker", 3, 1000);
  e[1] = zone_at("plain", "other", 4, 1000);
  memset(&e[2], 0, sizeof e[2]);
  e[2].kind = SHK_LENS_HEAP;
  e[2].pid = 1;
  e[2].addr = 0x1000;
  e[2].size = 64;
  e[2].time = 0.001;
  memset(&e[3], 0, sizeof e[3]);
  e[3].kind = SHK_LENS_LOG;
  e[3].pid = 1;
  e[3].message = "watch";
  e[3].length = 5;
  e[3].time = 0.001;
  const shk_lens_arg chunk[] = {{"index", SHK_LENS_ARG_UINT, 1, 3, NULL},
                                {"code", SHK_LENS_ARG_INT, 1, (uint64_t)(int64_t)-5, NULL},
                                {"mode", SHK_LENS_ARG_TEXT, 1, 0, "thr\"eads"}};
  const shk_lens_arg heap[] = {{"allocator", SHK_LENS_ARG_TEXT, 1, 0, "pages"}};
  const shk_lens_arg log[] = {{"thread", SHK_LENS_ARG_UINT, 1, 4, NULL},
                              {"offset", SHK_LENS_ARG_UINT, 1, 8, NULL}};
  const shk_lens_arg *const args[] = {chunk, NULL, heap, log};
  const size_t nargs[] = {3, 0, 1, 2};
  const char *text = write_and_read_args(e, 4, args, nargs);
  assert_non_null(strstr(text, "\"name\":\"shk chunk\",\"pid\":1,\"tid\":3,\"ts\":1999.000,"
                               "\"dur\":1.000,\"args\":{\"index\":3,\"code\":-5,"
                               "\"mode\":\"thr\\\"eads\"}}"));
  assert_non_null(strstr(text, "\"name\":\"plain\",\"pid\":1,\"tid\":4,\"ts\":1999.000,\"dur\":1.000}"));
  assert_non_null(strstr(text, "\"name\":\"heap\",\"pid\":1,\"ts\":1000.000,\"args\":{\"live bytes\":64}}"));
  assert_non_null(strstr(text, "\"name\":\"alloc 64 B\",\"pid\":1,\"tid\":2147483641,\"ts\":1000.000,"
                               "\"args\":{\"address\":\"0x1000\",\"size\":64,\"allocator\":\"pages\"}}"));
  assert_non_null(strstr(text, "\"args\":{\"name\":\"Heap\"}"));
  assert_non_null(strstr(text, "{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"log\",\"name\":\"watch\",\"pid\":1,"
                               "\"tid\":4,\"ts\":1000.000,\"args\":{\"color\":\"#000000\",\"thread\":4,"
                               "\"offset\":8}}"));
  assert_null(strstr(text, "\"name\":\"Log\"")); /* no log on the process's log track */
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(arguments_go_where_a_viewer_shows_them),
    cmocka_unit_test(zone_names_stay_clean_and_colour_has_a_field_of_its_own),
    cmocka_unit_test(bytes_that_never_start_utf8_are_replaced),
    cmocka_unit_test(heap_counters_saturate_instead_of_overflowing),
    cmocka_unit_test(heap_counters_stop_at_zero_on_a_free_of_more_than_is_live),
    cmocka_unit_test(strings_are_escaped_and_bad_bytes_replaced),
    cmocka_unit_test(frames_touching_end_to_start_never_overlap),
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
