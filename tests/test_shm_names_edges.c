/* Generated names at their edges, as shk_shm_list() and shk_shm_clean() read them: the owner
 * pid of "shkb-<pid>-..." and "shk-a-<pid>-..." at its largest (2147483647, a process that cannot
 * exist: the name is stale and cleaned), one past it, 0, missing, or not followed by '-' (none
 * is a generated name: listed only if it is a lens, never removed); a name of this process and
 * one of a live process (pid 1) that started before the name are kept. Where the system keeps no list
 * of names (Windows) the test skips, saying so. */
/* ctest: labels=unit timeout=60 */
#include <stdio.h>
#include <string.h>

#ifdef _WIN32
#include <process.h>
#define getpid _getpid
#else
#include <unistd.h>
#endif

#include "shk_test.h"
#include "shmkit.h"

#define NAMES 8

typedef struct seen {
  char names[NAMES][48];
  shk_shm_entry entries[NAMES];
  bool found[NAMES];
} seen;

static void collect(const shk_shm_entry *e, void *user) {
  seen *s = user;
  for (int i = 0; i < NAMES; i++) {
    if (strcmp(e->name, s->names[i]) == 0) {
      s->found[i] = true;
      s->entries[i] = *e;
      s->entries[i].name = s->names[i];
    }
  }
}

static void list(seen *s) {
  memset(s->found, 0, sizeof s->found);
  assert_int_equal(shk_shm_list(collect, s), SHK_OK);
}

/* The names a run made: removed by the teardown whatever happened (a failed assertion skips the
 * test's own unlinks, and these forms are not generated names that a clean would remove). */
static seen *made;

static int remove_names(void **state) {
  (void)state;
  for (int i = 0; made && i < NAMES; i++)
    if (made->names[i][0]) shk_shm_unlink(made->names[i]);
  made = NULL;
  return 0;
}

static void owner_pids_are_read_exactly_up_to_their_limit(void **state) {
  (void)state;
  size_t removed = 0;
  if (shk_shm_clean(&removed) == SHK_EUNSUPPORTED) {
    printf("SKIPPED: this system keeps no list of segment names\n");
    skip();
  }
  char tag[12]; /* after the pid: anything; this process's id keeps parallel runs apart */
  snprintf(tag, sizeof tag, "%xe", (unsigned)getpid() & 0xffffffu);
  static seen s; /* static: the teardown reads its names after the test */
  memset(&s, 0, sizeof s);
  made = &s;
  /* The live pid: the test's parent chain always has pid 1 alive, started before any name. */
  const char *forms[NAMES] = {"shkb-2147483647-%s", "shk-a-2147483647-%s", "shkb-2147483648-%s",
                              "shkb-0-%s",          "shkb--%s",            "shkb-12x-%s",
                              "shkb-1-%s",          NULL /* below */};
  for (int i = 0; i < NAMES - 1; i++) snprintf(s.names[i], sizeof s.names[i], forms[i], tag);
  snprintf(s.names[7], sizeof s.names[7], "shkb-%d-%s", (int)getpid(), tag);
  for (int i = 0; i < NAMES; i++) assert_true(strlen(s.names[i]) <= SHK_SHM_NAME_MAX); /* this process */
  shk_shm *segs[NAMES] = {0};
  for (int i = 0; i < NAMES; i++)
    assert_int_equal(shk_shm_create(s.names[i], 4096, &segs[i]), SHK_OK);
  list(&s);
  /* The largest pid: generated, its owner gone. */
  for (int i = 0; i < 2; i++) {
    assert_true(s.found[i]);
    assert_int_equal(s.entries[i].owner_pid, 2147483647);
    assert_false(s.entries[i].owner_alive);
    assert_true(s.entries[i].stale);
  }
  assert_int_equal(s.entries[0].kind, SHK_SHM_KIND_BUFFER);
  assert_int_equal(s.entries[1].kind, SHK_SHM_KIND_ANONYMOUS);
  /* Not generated names, and not lens segments: not listed. */
  for (int i = 2; i < 6; i++) assert_false(s.found[i]);
  /* pid 1 is alive and started long before the name. */
  assert_true(s.found[6]);
  assert_int_equal(s.entries[6].owner_pid, 1);
  assert_true(s.entries[6].owner_alive);
  assert_false(s.entries[6].stale);
  assert_true(s.found[7]);
  assert_true(s.entries[7].owner_alive);
  assert_false(s.entries[7].stale);

  /* The count is not checked: a test running beside this one (ctest -j) may clean them first. */
  assert_int_equal(shk_shm_clean(&removed), SHK_OK);
  for (int i = 0; i < NAMES; i++) {
    shk_shm *again = NULL;
    int rc = shk_shm_open(s.names[i], SHK_SHM_READ_ONLY, &again);
    /* Only the two stale generated names are gone. */
    assert_int_equal(rc, i < 2 ? SHK_ENOENT : SHK_OK);
    shk_shm_close(again);
    shk_shm_close(segs[i]);
    if (i >= 2) assert_int_equal(shk_shm_unlink(s.names[i]), SHK_OK);
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown(owner_pids_are_read_exactly_up_to_their_limit, remove_names),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
