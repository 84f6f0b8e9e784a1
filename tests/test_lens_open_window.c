/* The moment between a lens creator making the name and sizing it: a producer that opens the
 * name then finds it empty (on POSIX a name is made, then sized). It waits for the creator
 * rather than failing at once; a name its creator gave up on is created afresh, and one that
 * stays empty is refused with SHK_ESIZE after the wait. SHK_LENS read at a first use in that
 * moment still opens the lens, and so do processes whose threads all race to open it. (A Windows section is made with its size: the moment does not
 * exist there, and these tests skip.) */
/* ctest: labels=unit timeout=60 */
#include <stdio.h>
#include <string.h>

#include "shk_test.h"
#include "shk_test_thread.h"
#include "shmkit.h"

#ifndef _WIN32
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHILD_TIMEOUT_MS 30000

/* Stands in for a creator that made the name and then gave up before sizing it. */
typedef struct {
  char name[64];
  int fd;
} empty_name;

static void make_empty(empty_name *e, const char *tag) {
  shk_test_unique_name(e->name, sizeof e->name, tag);
  char os_name[80];
  snprintf(os_name, sizeof os_name, "/%s", e->name); /* the POSIX name of a portable one */
  e->fd = shm_open(os_name, O_RDWR | O_CREAT | O_EXCL, 0600);
  assert_true(e->fd >= 0);
}

static void give_up_later(void *arg) {
  empty_name *e = arg;
  shk_test_sleep_ms(100);
  shk_shm_unlink(e->name);
}

static void an_empty_name_whose_creator_gives_up_is_created_afresh(void **state) {
  (void)state;
  empty_name e;
  make_empty(&e, "window");
  shk_test_thread t;
  assert_int_equal(shk_test_thread_start(&t, give_up_later, &e), 0);
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(e.name, NULL, &lens), SHK_OK);
  shk_test_thread_join(&t);
  close(e.fd);
  shk_lens_info info;
  assert_int_equal(shk_lens_probe(e.name, &info), SHK_OK);
  assert_int_equal(info.producers, 1);
  shk_lens_close(lens);
  assert_int_equal(shk_lens_probe(e.name, &info), SHK_ENOENT);
}

static void a_name_that_stays_empty_is_refused_after_the_wait(void **state) {
  (void)state;
  empty_name e;
  make_empty(&e, "stays");
  shk_lens *lens = (shk_lens *)&lens;
  assert_int_equal(shk_lens_open(e.name, NULL, &lens), SHK_ESIZE);
  assert_null(lens);
  close(e.fd);
  assert_int_equal(shk_shm_unlink(e.name), SHK_OK);
}

/* SHK_LENS read while the name is in that moment: the first use still opens the lens. */
SHK_CHILD_TEST(shk_lens_read_in_the_window_still_opens_the_lens, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  empty_name e;
  make_empty(&e, "envwin");
  SHK_CHECK(shk_test_setenv("SHK_LENS", e.name) == 0);
  shk_test_thread t;
  SHK_CHECK(shk_test_thread_start(&t, give_up_later, &e) == 0);
  shk_buf *b = NULL;
  SHK_CHECK(shk_buf_create(1, 64, NULL, &b) == SHK_OK); /* the first instrumented call */
  shk_test_thread_join(&t);
  close(e.fd);
  shk_lens_info info;
  SHK_CHECK(shk_lens_probe(e.name, &info) == SHK_OK);
  SHK_CHECK(info.producers == 1);
  shk_buf_release(b);
  return 0;
}

static void first_use(void *arg) {
  atomic_int *go = arg;
  while (!atomic_load(go)) {
  }
  shk_buf *b = NULL;
  if (shk_buf_create(100, 1, NULL, &b) == SHK_OK) shk_buf_release(b);
}

/* One process of the next test: four threads whose first instrumented calls race; the lens must
 * be there afterwards. Exits 0 when it is. */
static int racing_process(void) {
  static atomic_int go;
  shk_test_thread threads[4];
  for (int i = 0; i < 4; i++)
    if (shk_test_thread_start(&threads[i], first_use, &go) != 0) return 2;
  atomic_store(&go, 1);
  for (int i = 0; i < 4; i++) shk_test_thread_join(&threads[i]);
  shk_lens_info info;
  return shk_lens_probe(getenv("SHK_LENS"), &info) == SHK_OK ? 0 : 3;
}

/* Several processes, each with racing threads, all named by SHK_LENS and started at once: the
 * creator's window is met across processes too. Every process finds the lens; once all have
 * exited (closing their handles at exit), the name is gone. */
SHK_CHILD_TEST(processes_racing_on_one_shk_lens_all_report_into_it, CHILD_TIMEOUT_MS) {
  (void)argc;
  (void)argv;
  char name[64];
  shk_test_unique_name(name, sizeof name, "procs");
  SHK_CHECK(shk_test_setenv("SHK_LENS", name) == 0);
  enum { PROCESSES = 6 };
  pid_t pids[PROCESSES];
  for (int p = 0; p < PROCESSES; p++) {
    pids[p] = fork();
    SHK_CHECK(pids[p] >= 0);
    if (pids[p] == 0) exit(racing_process());
  }
  int failed = 0;
  for (int p = 0; p < PROCESSES; p++) {
    int status = 0;
    SHK_CHECK(waitpid(pids[p], &status, 0) == pids[p]);
    failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  }
  SHK_CHECK(failed == 0);
  shk_lens_info info;
  SHK_CHECK(shk_lens_probe(name, &info) == SHK_ENOENT);
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(an_empty_name_whose_creator_gives_up_is_created_afresh),
    cmocka_unit_test(a_name_that_stays_empty_is_refused_after_the_wait),
    cmocka_unit_test(shk_lens_read_in_the_window_still_opens_the_lens),
    cmocka_unit_test(processes_racing_on_one_shk_lens_all_report_into_it),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(shk_lens_read_in_the_window_still_opens_the_lens),
    SHK_TEST_CHILD(processes_racing_on_one_shk_lens_all_report_into_it),
};
#else
static void the_window_does_not_exist_on_windows(void **state) {
  (void)state;
  printf("SKIPPED: a Windows section is made with its size; no producer sees it empty\n");
  skip();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(the_window_does_not_exist_on_windows),
};

static const shk_test_child children[] = {{NULL, NULL}};
#endif

SHK_TEST_MAIN(tests, children)
