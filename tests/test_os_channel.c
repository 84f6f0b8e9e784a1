/* The OS layer's channels and the processes that hold their other end: wake-ups, timeouts, the
 * end of the other side (closed, or its process gone), a handle given to another process, and
 * the raw OS code behind each failure. */
/* ctest: labels=unit;multiprocess timeout=120 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "os.h"

#define MS 1000000ull

static void a_notify_wakes_the_other_end_once(void **state) {
  (void)state;
  shk__os_channel x, y;
  shk__os_message msg;
  assert_int_equal(shk__os_channel_pair(&x, &y), SHK_OK);
  assert_int_equal(shk__os_channel_receive(&y, NULL, 10 * MS, &msg), SHK_ETIMEDOUT);
  shk__os_channel_notify(&x);
  assert_int_equal(shk__os_channel_receive(&y, NULL, 1000 * MS, &msg), SHK_OK);
  assert_int_equal(msg.kind, SHK__OS_MSG_WAKE);
  shk__os_channel_notify(&y);
  bool ended[1] = {false};
  assert_int_equal(shk__os_channel_wait_any(&x, NULL, 1, 1000 * MS, ended), SHK_OK);
  assert_false(ended[0]);
  /* The wake-up was consumed. */
  assert_int_equal(shk__os_channel_wait_any(&x, NULL, 1, 10 * MS, ended), SHK_ETIMEDOUT);
  shk__os_channel_close(&x);
  shk__os_channel_close(&y);
  shk__os_channel_close(&y); /* a closed end is accepted */
}

/* Sleeps holding the channel end it inherited (argv: a, b), until killed. */
static int child_holds_an_end(int argc, char **argv) {
  (void)argc;
  (void)argv;
  shk__os_sleep_ns(60000 * MS);
  return 0;
}

/* Maps the segment it is given over the inherited end (argv: a, b, box name) and writes into
 * the box what it read there. */
static int child_takes_a_segment(int argc, char **argv) {
  if (argc < 3) return 2;
  shk__os_channel end = {(intptr_t)strtoull(argv[0], NULL, 16), (intptr_t)strtoull(argv[1], NULL, 16)};
  shk__os_segment box, seg;
  char box_name[SHK__OS_SEGMENT_NAME_SIZE];
  shk__os_segment_name(argv[2], box_name);
  if (shk__os_segment_open(box_name, true, &box) != SHK_OK) return 3;
  shk__os_message msg;
  if (shk__os_channel_receive(&end, NULL, 30000 * MS, &msg) != SHK_OK) return 4;
  intptr_t handle = msg.kind == SHK__OS_MSG_HANDLE ? msg.handle : 0;
  if (!handle) memcpy(&handle, box.addr, sizeof handle); /* a token, written before the wake */
  if (shk__os_segment_map(handle, 0, 4096, false, &seg) != SHK_OK) return 5;
  memcpy((char *)box.addr + 64, seg.addr, 6);
  shk__os_segment_close(&seg);
  shk__os_channel_notify(&end);
  return 0;
}

/* Starts a child routine with the other end of a new channel (its two handles as arguments). */
static void start_with_end(const char *routine, const char *extra, shk__os_channel *mine,
                           shk__os_proc *proc) {
  shk__os_channel theirs;
  assert_int_equal(shk__os_channel_pair(mine, &theirs), SHK_OK);
  intptr_t h[2] = {0, 0};
  assert_int_equal(shk__os_handle_dup(theirs.a, true, &h[0]), SHK_OK);
  if (theirs.b) assert_int_equal(shk__os_handle_dup(theirs.b, true, &h[1]), SHK_OK);
  char a[32], b[32];
  snprintf(a, sizeof a, "%llx", (unsigned long long)h[0]);
  snprintf(b, sizeof b, "%llx", (unsigned long long)h[1]);
  const char *args[5] = {"--shk-test-child", routine, a, b, extra};
  assert_int_equal(shk__os_proc_start(NULL, args, extra ? 5 : 4, h, 2, true, proc), SHK_OK);
  shk__os_handle_close(h[0]);
  shk__os_handle_close(h[1]);
  shk__os_channel_close(&theirs);
}

static void the_end_of_the_process_holding_the_other_end_ends_the_channel(void **state) {
  (void)state;
  shk__os_channel mine;
  shk__os_proc proc;
  shk__os_exit how;
  shk__os_message msg;
  start_with_end("holds_an_end", NULL, &mine, &proc);
  assert_int_equal(shk__os_channel_receive(&mine, &proc, 20 * MS, &msg), SHK_ETIMEDOUT);
  assert_int_equal(shk__os_proc_kill(&proc), SHK_OK);
  bool ended[1] = {false};
  for (int i = 0; i < 100 && !ended[0]; i++)
    assert_int_not_equal(shk__os_channel_wait_any(&mine, &proc, 1, 100 * MS, ended), SHK_EOS);
  assert_true(ended[0]);
  assert_int_equal(shk__os_channel_receive(&mine, &proc, 1000 * MS, &msg), SHK_ENOENT);
  assert_int_equal(shk__os_proc_wait(&proc, 30000, &how), SHK_OK);
  shk__os_channel_close(&mine);
}

static void a_segment_given_over_a_channel_is_mapped_by_the_other_process(void **state) {
  (void)state;
  char portable[64], box_name[SHK__OS_SEGMENT_NAME_SIZE];
  shk__os_segment_name(shk_test_unique_name(portable, sizeof portable, "box"), box_name);
  shk__os_segment box, seg;
  assert_int_equal(shk__os_segment_create(box_name, 4096, &box), SHK_OK);
  assert_int_equal(shk__os_segment_create(NULL, 4096, &seg), SHK_OK);
  memcpy(seg.addr, "hello", 6);
  shk__os_channel mine;
  shk__os_proc proc;
  shk__os_exit how;
  start_with_end("takes_a_segment", portable, &mine, &proc);
  uint64_t token = 0;
  assert_int_equal(shk__os_channel_give(&mine, &proc, seg.handle, 7, &token), SHK_OK);
  intptr_t as_handle = (intptr_t)token;
  memcpy(box.addr, &as_handle, sizeof as_handle);
  shk__os_channel_notify(&mine);
  assert_int_equal(shk__os_proc_wait(&proc, 30000, &how), SHK_OK);
  assert_int_equal(how.kind, SHK__OS_EXITED);
  assert_int_equal(how.code, 0);
  assert_string_equal((const char *)box.addr + 64, "hello");
  shk__os_channel_close(&mine);
  shk__os_segment_close(&seg);
  shk__os_segment_close(&box);
  shk__os_segment_unlink(box_name);
}

/* Every failure names itself and keeps the system's number (defect 6). */
static void failures_keep_the_raw_os_code(void **state) {
  (void)state;
  /* A missing segment: ENOENT / ERROR_FILE_NOT_FOUND, both 2. */
  char portable[64], os_name[SHK__OS_SEGMENT_NAME_SIZE];
  shk__os_segment_name(shk_test_unique_name(portable, sizeof portable, "none"), os_name);
  shk__os_segment seg;
  assert_int_equal(shk__os_segment_open(os_name, false, &seg), SHK_ENOENT);
  assert_int_equal(shk_last_os_error(), 2);
  /* A handle given to a process that has ended: SHK_ENOENT, not an access error. */
  shk__os_channel mine;
  shk__os_proc proc;
  shk__os_exit how;
  start_with_end("holds_an_end", NULL, &mine, &proc);
  assert_int_equal(shk__os_proc_kill(&proc), SHK_OK);
  shk__os_message msg;
  while (shk__os_channel_receive(&mine, &proc, 30000 * MS, &msg) == SHK_OK) {
  }
  assert_int_equal(shk__os_segment_create(NULL, 4096, &seg), SHK_OK);
  uint64_t token;
  assert_int_equal(shk__os_channel_give(&mine, &proc, seg.handle, 1, &token), SHK_ENOENT);
  assert_int_not_equal(shk_last_os_error(), 0);
  shk__os_segment_close(&seg);
  assert_int_equal(shk__os_proc_wait(&proc, 30000, &how), SHK_OK);
  shk__os_channel_close(&mine);
  /* A wait on a handle that is not one fails as such: neither a timeout nor "gone". */
  shk__os_channel x, y;
  assert_int_equal(shk__os_channel_pair(&x, &y), SHK_OK);
  shk__os_channel bogus = x;
  shk__os_handle_close(x.a);
  shk__os_handle_close(x.b);
  int rc = shk__os_channel_receive(&bogus, NULL, 10 * MS, &msg);
  assert_true(rc != SHK_OK && rc != SHK_ETIMEDOUT && rc != SHK_ENOENT);
  assert_int_not_equal(shk_last_os_error(), 0);
  shk__os_channel_close(&y);
}

static void a_fork_keeps_only_the_descriptors_it_is_told_to(void **state) {
  (void)state;
  if (!shk__os_caps_get()->has_fork) {
    shk__os_proc proc;
    bool child = true;
    assert_int_equal(shk__os_proc_fork(NULL, 0, &proc, &child), SHK_EUNSUPPORTED);
    assert_false(child);
    return;
  }
  shk__os_channel keep, keep_peer, drop, drop_peer;
  assert_int_equal(shk__os_channel_pair(&keep, &keep_peer), SHK_OK);
  assert_int_equal(shk__os_channel_pair(&drop, &drop_peer), SHK_OK);
  /* keep.a stays open in the child; drop.a is closed there, so drop_peer sees the end as soon
   * as this process closes its copy. */
  shk__os_proc proc;
  bool child = false;
  assert_int_equal(shk__os_proc_fork(&keep.a, 1, &proc, &child), SHK_OK);
  if (child) {
    shk__os_channel_notify(&keep);
    shk__os_sleep_ns(60000 * MS);
    shk__os_exit_now(0);
  }
  shk__os_message msg;
  assert_int_equal(shk__os_channel_receive(&keep_peer, NULL, 30000 * MS, &msg), SHK_OK);
  shk__os_channel_close(&drop);
  assert_int_equal(shk__os_channel_receive(&drop_peer, NULL, 5000 * MS, &msg), SHK_ENOENT);
  shk__os_exit how;
  assert_int_equal(shk__os_proc_kill(&proc), SHK_OK);
  assert_int_equal(shk__os_proc_wait(&proc, 30000, &how), SHK_OK);
  assert_int_equal(how.kind, SHK__OS_SIGNALED);
  shk__os_channel_close(&keep);
  shk__os_channel_close(&keep_peer);
  shk__os_channel_close(&drop_peer);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_notify_wakes_the_other_end_once),
    cmocka_unit_test(the_end_of_the_process_holding_the_other_end_ends_the_channel),
    cmocka_unit_test(a_segment_given_over_a_channel_is_mapped_by_the_other_process),
    cmocka_unit_test(failures_keep_the_raw_os_code),
    cmocka_unit_test(a_fork_keeps_only_the_descriptors_it_is_told_to),
};
static const shk_test_child children[] = {
    {"holds_an_end", child_holds_an_end},
    {"takes_a_segment", child_takes_a_segment},
};
SHK_TEST_MAIN(tests, children)
