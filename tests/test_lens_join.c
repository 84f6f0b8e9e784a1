/* ctest: labels=unit;multiprocess timeout=120 internal */
/* The record through which a worker process started anew joins its pool caller's lens (a slot
 * of the control segment: shared memory, so untrusted): a valid one opens a handle of the
 * worker's own and instruments the parts it names, closed at the worker's end; a record that is
 * off, or whose name is not NUL-terminated, not a valid segment name, or whose parts are
 * unknown, leaves every part off, and the pool caller's choice replaces SHK_LENS. Each case runs
 * in a child (it changes the process's instrumentation). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lens_hook.h"
#include "shk_test.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 30000

static shk_lens *hook(int part) { return atomic_load(&shk__lens_hooks[part]); }

static bool all_off(void) {
  for (int p = 0; p < SHK__LENS_PARTS; p++)
    if (hook(p) != NULL) return false;
  return true;
}

static uint32_t producers(const char *name) {
  shk_lens_info info;
  return shk_lens_probe(name, &info) == SHK_OK ? info.producers : 0;
}

/* A record as the pool writes it (test names fit: shk_test_unique_name makes lens names). */
static void record(shk__lens_join *rec, const char *name, unsigned parts) {
  memset(rec, 0, sizeof *rec);
  size_t n = strlen(name);
  memcpy(rec->name, name, n < sizeof rec->name ? n + 1 : sizeof rec->name);
  atomic_store(&rec->parts, parts);
}

SHK_CHILD_TEST(a_valid_record_joins_the_named_lens_until_the_worker_ends, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  char name[64];
  shk_test_unique_name(name, sizeof name, "join");
  shk_lens *callers = NULL;
  SHK_CHECK(shk_lens_open(name, NULL, &callers) == SHK_OK);
  shk__lens_join rec;
  record(&rec, name, SHK_LENS_TASKS | SHK_LENS_BUFS);
  shk__lens_hook_join(&rec);
  shk_lens *mine = hook(SHK__LENS_TASKS);
  SHK_CHECK(mine != NULL && mine != callers);
  SHK_CHECK(hook(SHK__LENS_BUFS) == mine && hook(SHK__LENS_WATCH) == NULL);
  SHK_CHECK(producers(name) == 2);
  shk__lens_hook_worker_end(false); /* the worker's end closes its handle */
  SHK_CHECK(all_off() && producers(name) == 1);
  shk_lens_close(callers);
  return 0;
}

/* Each way the record can be wrong: every part off, no segment made or joined. */
SHK_CHILD_TEST(a_record_that_is_off_or_not_valid_leaves_every_part_off, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  char name[64];
  shk_test_unique_name(name, sizeof name, "bad");
  shk_lens *callers = NULL;
  SHK_CHECK(shk_lens_open(name, NULL, &callers) == SHK_OK);
  shk__lens_join rec;
  for (int c = 0; c < 5; c++) {
    record(&rec, name, SHK_LENS_ALL);
    switch (c) {
    case 0: atomic_store(&rec.parts, 0u); break;                      /* off */
    case 1: atomic_store(&rec.parts, SHK_LENS_ALL + 1u); break;       /* unknown parts */
    case 2: memset(rec.name, 'a', sizeof rec.name); break;            /* no NUL in its array */
    case 3: memcpy(rec.name, "bad/name", 9); break;                   /* not a segment name */
    default: rec.name[0] = '\0'; break;                               /* empty */
    }
    SHK_CHECK(shk_lens_instrument(callers, SHK_LENS_ALL) == SHK_OK); /* something to replace */
    shk__lens_hook_join(&rec);
    if (!all_off()) fprintf(stderr, "case %d\n", c);
    SHK_CHECK(all_off());
    SHK_CHECK(producers(name) == 1);
  }
  shk_lens_close(callers);
  return 0;
}

/* As for a forked worker, the pool caller's choice wins over the worker's own SHK_LENS, off or
 * on: the variable's lens is never opened. */
SHK_CHILD_TEST(the_record_replaces_the_workers_shk_lens, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  char env_name[64], name[64];
  shk_test_unique_name(env_name, sizeof env_name, "env");
  shk_test_unique_name(name, sizeof name, "rec");
  SHK_CHECK(shk_test_setenv("SHK_LENS", env_name) == 0);
  shk__lens_join rec;
  record(&rec, name, 0);
  shk__lens_hook_join(&rec);
  SHK_CHECK(all_off());
  shk_lens_info info;
  SHK_CHECK(shk_lens_probe(env_name, &info) == SHK_ENOENT);
  shk_lens *callers = NULL;
  SHK_CHECK(shk_lens_open(name, NULL, &callers) == SHK_OK);
  record(&rec, name, SHK_LENS_TASKS);
  shk__lens_hook_join(&rec);
  SHK_CHECK(hook(SHK__LENS_TASKS) != NULL && producers(name) == 2);
  SHK_CHECK(shk_lens_probe(env_name, &info) == SHK_ENOENT);
  shk__lens_hook_worker_end(false);
  shk_lens_close(callers);
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_valid_record_joins_the_named_lens_until_the_worker_ends),
    cmocka_unit_test(a_record_that_is_off_or_not_valid_leaves_every_part_off),
    cmocka_unit_test(the_record_replaces_the_workers_shk_lens),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(a_valid_record_joins_the_named_lens_until_the_worker_ends),
    SHK_TEST_CHILD(a_record_that_is_off_or_not_valid_leaves_every_part_off),
    SHK_TEST_CHILD(the_record_replaces_the_workers_shk_lens),
};

SHK_TEST_MAIN(tests, children)
