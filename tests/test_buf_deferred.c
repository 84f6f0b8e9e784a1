/* Delayed free: a released delayed buffer stays alive and deferred until freed (one, all,
 * shutdown) or until the process exits, and its callback runs exactly once then. */
/* ctest: labels=unit;multiprocess timeout=120 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 30000

static int calls;
static uint64_t last_id;

static void on_destroy(const shk_buf_info *info, void *user) {
  (void)user;
  calls++;
  last_id = info->id;
}

static shk_buf *delayed(size_t size) {
  shk_buf *buf = NULL;
  shk_buf_options o = {.delayed_free = true, .on_destroy = on_destroy,
                       .init = SHK_BUF_INIT_BYTE, .init_byte = 0x3C};
  assert_int_equal(shk_buf_create(size, 1, &o, &buf), SHK_OK);
  return buf;
}

/* Makes n delayed buffers and releases them; their ids, oldest first, go to ids. */
static void release_delayed(uint64_t *ids, int n) {
  for (int i = 0; i < n; i++) {
    shk_buf *b = delayed(16);
    ids[i] = shk_buf_id(b);
    shk_buf_release(b);
  }
}

static int setup(void **state) {
  (void)state;
  calls = 0;
  last_id = 0;
  return shk_buf_free_deferred_all(NULL);
}

static void a_released_delayed_buffer_stays_alive_until_freed(void **state) {
  (void)state;
  shk_buf *buf = delayed(64);
  unsigned char *p = shk_buf_data(buf);
  uint64_t id = shk_buf_id(buf);
  size_t live = shk_buf_live_count();
  shk_buf_release(buf);
  assert_int_equal(calls, 0);
  assert_int_equal(p[63], 0x3C);             /* memory still valid */
  assert_int_equal(shk_buf_live_count(), live); /* range still held */
  uint64_t ids[4];
  size_t count = 0;
  assert_int_equal(shk_buf_deferred_list(ids, 4, &count), SHK_OK);
  assert_int_equal(count, 1);
  assert_int_equal(ids[0], id);
  assert_int_equal(shk_buf_free_deferred(id), SHK_OK);
  assert_int_equal(calls, 1);
  assert_int_equal(last_id, id);
  assert_int_equal(shk_buf_live_count(), live - 1);
  assert_int_equal(shk_buf_free_deferred(id), SHK_ENOENT); /* exactly once */
  assert_int_equal(calls, 1);
}

static void deferred_list_is_oldest_first_and_reports_the_total(void **state) {
  (void)state;
  uint64_t want[5];
  release_delayed(want, 5);
  uint64_t ids[3];
  size_t count = 0;
  assert_int_equal(shk_buf_deferred_list(ids, 3, &count), SHK_OK);
  assert_int_equal(count, 5);
  assert_int_equal(ids[0], want[0]);
  assert_int_equal(ids[2], want[2]);
  assert_int_equal(shk_buf_deferred_list(NULL, 0, &count), SHK_OK);
  assert_int_equal(count, 5);
  assert_int_equal(shk_buf_deferred_list(NULL, 1, &count), SHK_EINVAL);
  assert_int_equal(shk_buf_deferred_list(ids, 3, NULL), SHK_EINVAL);
  /* Freeing one from the middle keeps the others in order. */
  assert_int_equal(shk_buf_free_deferred(want[2]), SHK_OK);
  assert_int_equal(shk_buf_deferred_list(ids, 3, &count), SHK_OK);
  assert_int_equal(count, 4);
  assert_int_equal(ids[2], want[3]);
  size_t freed = 0;
  assert_int_equal(shk_buf_free_deferred_all(&freed), SHK_OK);
  assert_int_equal(freed, 4);
  assert_int_equal(calls, 5);
  assert_int_equal(shk_buf_deferred_list(ids, 3, &count), SHK_OK);
  assert_int_equal(count, 0);
}

static void a_buffer_that_is_still_referenced_is_not_deferred(void **state) {
  (void)state;
  shk_buf *buf = delayed(8);
  shk_buf_retain(buf);
  shk_buf_release(buf);
  size_t count = 9;
  assert_int_equal(shk_buf_deferred_list(NULL, 0, &count), SHK_OK);
  assert_int_equal(count, 0);
  assert_int_equal(shk_buf_free_deferred(shk_buf_id(buf)), SHK_ENOENT);
  shk_buf_release(buf);
  assert_int_equal(shk_buf_deferred_list(NULL, 0, &count), SHK_OK);
  assert_int_equal(count, 1);
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  assert_int_equal(calls, 1);
}

static void immediate_buffers_never_become_deferred(void **state) {
  (void)state;
  shk_buf *buf = NULL;
  shk_buf_options o = {.on_destroy = on_destroy};
  assert_int_equal(shk_buf_create(8, 1, &o, &buf), SHK_OK);
  shk_buf_release(buf);
  assert_int_equal(calls, 1);
  size_t count = 9;
  assert_int_equal(shk_buf_deferred_list(NULL, 0, &count), SHK_OK);
  assert_int_equal(count, 0);
}

static void shutdown_frees_deferred_buffers_and_the_library_stays_usable(void **state) {
  (void)state;
  shk_buf_release(delayed(8));
  shk_buf_release(delayed(8));
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  assert_int_equal(calls, 2);
  shk_buf *buf = delayed(8);
  shk_buf_release(buf);
  assert_int_equal(shk_buf_shutdown(), SHK_OK);
  assert_int_equal(calls, 3);
  assert_int_equal(shk_buf_free_deferred_all(NULL), SHK_OK);
}

static void a_delayed_range_is_not_reusable_until_freed(void **state) {
  (void)state;
  static unsigned char arena[256];
  shk_buf *buf = NULL, *again = (shk_buf *)1;
  shk_buf_options o = {.delayed_free = true};
  assert_int_equal(shk_buf_consume(arena, 256, 1, &o, &buf), SHK_OK);
  shk_buf_release(buf);
  assert_int_equal(shk_buf_consume(arena, 256, 1, NULL, &again), SHK_EOVERLAP);
  assert_int_equal(shk_buf_free_deferred_all(NULL), SHK_OK);
  assert_int_equal(shk_buf_consume(arena, 256, 1, NULL, &again), SHK_OK);
  shk_buf_release(again);
}

/* The names before the rename (shk_buf_pending_list, shk_buf_collect, shk_buf_collect_all) stay
 * exported and behave as the new ones, so programs built against them keep working. */
static void the_earlier_names_still_list_and_free_deferred_buffers(void **state) {
  (void)state;
  uint64_t want[3];
  release_delayed(want, 3);
  uint64_t ids[3];
  size_t count = 0;
  assert_int_equal(shk_buf_pending_list(ids, 3, &count), SHK_OK);
  assert_int_equal(count, 3);
  assert_int_equal(ids[0], want[0]);
  assert_int_equal(shk_buf_pending_list(NULL, 1, &count), SHK_EINVAL);
  assert_int_equal(shk_buf_collect(want[1]), SHK_OK);
  assert_int_equal(calls, 1);
  assert_int_equal(last_id, want[1]);
  assert_int_equal(shk_buf_collect(want[1]), SHK_ENOENT);
  size_t collected = 0;
  assert_int_equal(shk_buf_collect_all(&collected), SHK_OK);
  assert_int_equal(collected, 2);
  assert_int_equal(calls, 3);
  assert_int_equal(shk_buf_deferred_list(NULL, 0, &count), SHK_OK);
  assert_int_equal(count, 0);
}

/* ---- at process exit ---- */

static unsigned char *marker;

static void mark_in_shared_memory(const shk_buf_info *info, void *user) {
  (void)info;
  (void)user;
  marker[0]++;
}

static int child_exits_with_deferred_buffers(int argc, char **argv) {
  if (argc < 1) return 10;
  shk_shm *shm = NULL;
  if (shk_shm_open(argv[0], SHK_SHM_READ_WRITE, &shm) != SHK_OK) return 11;
  marker = shk_shm_data(shm);
  shk_buf_options o = {.delayed_free = true, .on_destroy = mark_in_shared_memory};
  for (int i = 0; i < 3; i++) {
    shk_buf *buf = NULL;
    if (shk_buf_create(100, 1, &o, &buf) != SHK_OK) return 12;
    shk_buf_release(buf);
  }
  if (marker[0] != 0) return 13;
  /* Returning from main: exit() frees the deferred buffers; the mapping stays until then. */
  return 0;
}

static void deferred_buffers_are_freed_when_the_process_exits(void **state) {
  (void)state;
  char name[64];
  shk_shm *shm = NULL;
  assert_int_equal(shk_shm_create(shk_test_unique_name(name, sizeof name, "ex"), 4096, &shm),
                   SHK_OK);
  const char *args[] = {name};
  shk_test_run_child_ok("exits_with_deferred_buffers", 1, args, CHILD_TIMEOUT_MS);
  assert_int_equal(((unsigned char *)shk_shm_data(shm))[0], 3);
  shk_shm_close(shm);
  shk_shm_unlink(name);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(a_released_delayed_buffer_stays_alive_until_freed, setup),
    cmocka_unit_test_setup(deferred_list_is_oldest_first_and_reports_the_total, setup),
    cmocka_unit_test_setup(a_buffer_that_is_still_referenced_is_not_deferred, setup),
    cmocka_unit_test_setup(immediate_buffers_never_become_deferred, setup),
    cmocka_unit_test_setup(shutdown_frees_deferred_buffers_and_the_library_stays_usable, setup),
    cmocka_unit_test_setup(a_delayed_range_is_not_reusable_until_freed, setup),
    cmocka_unit_test_setup(the_earlier_names_still_list_and_free_deferred_buffers, setup),
    cmocka_unit_test(deferred_buffers_are_freed_when_the_process_exits),
};

static const shk_test_child children[] = {
    {"exits_with_deferred_buffers", child_exits_with_deferred_buffers},
};

SHK_TEST_MAIN(tests, children)
