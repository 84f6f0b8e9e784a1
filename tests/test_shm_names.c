/* Nothing left behind after a kill: the generated segment names of a process killed with
 * SIGKILL are removed by the next process that generates a name, or by shk_shm_clean() (what
 * `shmkit shm clean` runs); shk_shm_list() reports kind, owner, liveness and size. Where the
 * system keeps no list of names (Windows) the calls say so and the tests skip. */
/* ctest: labels=unit;multiprocess timeout=120 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#endif

#define WAIT_MS 30000

/* What the list shows of one owner. */
typedef struct owned {
  int pid;
  int names, stale, alive, buffers, anonymous, lens;
  size_t smallest;
  const char *lens_name; /* counted as lens only under this name */
} owned;

static void count_owned(const shk_shm_entry *e, void *user) {
  owned *o = user;
  if (e->owner_pid != o->pid) return;
  if (e->kind == SHK_SHM_KIND_LENS && (!o->lens_name || strcmp(e->name, o->lens_name) != 0))
    return;
  o->names++;
  o->stale += e->stale;
  o->alive += e->owner_alive;
  o->buffers += e->kind == SHK_SHM_KIND_BUFFER;
  o->anonymous += e->kind == SHK_SHM_KIND_ANONYMOUS;
  o->lens += e->kind == SHK_SHM_KIND_LENS;
  if (o->smallest == 0 || e->size < o->smallest) o->smallest = e->size;
}

static owned names_of(int pid, const char *lens_name) {
  owned o = {pid, 0, 0, 0, 0, 0, 0, 0, lens_name};
  assert_int_equal(shk_shm_list(count_owned, &o), SHK_OK);
  return o;
}

static bool can_list(void) {
  owned o = {-1, 0, 0, 0, 0, 0, 0, 0, NULL};
  int rc = shk_shm_list(count_owned, &o);
  if (rc == SHK_EUNSUPPORTED) {
    print_message("this system keeps no list of segment names (nothing can be left behind)\n");
    assert_int_equal(shk_shm_clean(NULL), SHK_EUNSUPPORTED);
    return false;
  }
  assert_int_equal(rc, SHK_OK);
  return true;
}

static int my_pid(void) {
#ifdef _WIN32
  return (int)GetCurrentProcessId();
#else
  return (int)getpid();
#endif
}

/* The child killed: two generated buffer names, and one of the kind the POSIX anonymous
 * fallback leaves if killed between shm_open and shm_unlink (made here by name). Then it waits
 * to be killed. */
static int holder_child(int argc, char **argv) {
  (void)argc, (void)argv;
  shk_buf_options o = {0};
  o.allocator = "shm";
  shk_buf *a = NULL, *b = NULL;
  if (shk_buf_create(4096, 1, &o, &a) != SHK_OK) return 1;
  if (shk_buf_create(8192, 1, &o, &b) != SHK_OK) return 2;
  char name[SHK_SHM_NAME_MAX + 1];
  snprintf(name, sizeof name, "shk-a-%d-0-0", my_pid());
  shk_shm *anon = NULL;
  if (shk_shm_create(name, 4096, &anon) != SHK_OK) return 3;
  for (;;) shk_test_sleep_ms(1000); /* killed */
}

/* The next run: one generated name, made and removed. */
static int next_run_child(int argc, char **argv) {
  (void)argc, (void)argv;
  shk_buf_options o = {0};
  o.allocator = "shm";
  shk_buf *a = NULL;
  if (shk_buf_create(4096, 1, &o, &a) != SHK_OK) return 1;
  shk_buf_release(a);
  return 0;
}

/* Starts the holder, waits until its three names are listed, kills it (SIGKILL) and checks
 * they are left behind, stale. Returns its pid. */
static int kill_a_holder(void) {
  shk_test_proc p;
  assert_int_equal(shk_test_spawn("holder", 0, NULL, &p), 0);
  owned o = {0};
  for (int waited = 0; waited < WAIT_MS; waited += 10) {
    o = names_of(p.pid, NULL);
    if (o.buffers == 2 && o.anonymous == 1) break;
    shk_test_sleep_ms(10);
  }
  assert_int_equal(o.buffers, 2);
  assert_int_equal(o.anonymous, 1);
  shk_test_exit how = shk_test_wait(&p, 0);
  assert_true(how.timed_out); /* it was killed */
  o = names_of(p.pid, NULL);
  assert_int_equal(o.names, 3);
  assert_int_equal(o.stale, 3);
  assert_int_equal(o.alive, 0);
  return p.pid;
}

static void the_next_run_removes_what_a_killed_process_left(void **state) {
  (void)state;
  if (!can_list()) skip();
  int killed = kill_a_holder();
  shk_test_proc p;
  assert_int_equal(shk_test_spawn("next_run", 0, NULL, &p), 0);
  shk_test_exit how = shk_test_wait(&p, WAIT_MS);
  assert_false(how.timed_out);
  assert_int_equal(how.code, 0);
  assert_int_equal(names_of(killed, NULL).names, 0);
  assert_int_equal(names_of(p.pid, NULL).names, 0);
}

static void clean_removes_what_a_killed_process_left(void **state) {
  (void)state;
  if (!can_list()) skip();
  int killed = kill_a_holder();
  size_t removed = 0;
  assert_int_equal(shk_shm_clean(&removed), SHK_OK);
  assert_true(removed >= 3); /* others' stale names may go too */
  assert_int_equal(names_of(killed, NULL).names, 0);
}

static void the_list_shows_live_names_and_lens_segments_and_clean_keeps_them(void **state) {
  (void)state;
  if (!can_list()) skip();
  shk_buf_options o = {0};
  o.allocator = "shm";
  shk_buf *a = NULL;
  assert_int_equal(shk_buf_create(100, 1, &o, &a), SHK_OK);
  char lens_name[64];
  shk_test_unique_name(lens_name, sizeof lens_name, "ln");
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(lens_name, NULL, &lens), SHK_OK);
  owned mine = names_of(my_pid(), lens_name);
  assert_int_equal(mine.buffers, 1);
  assert_int_equal(mine.lens, 1);
  assert_int_equal(mine.stale, 0);
  assert_int_equal(mine.alive, mine.names);
  assert_true(mine.smallest >= 100);
  size_t removed = 0;
  assert_int_equal(shk_shm_clean(&removed), SHK_OK);
  mine = names_of(my_pid(), lens_name);
  assert_int_equal(mine.buffers, 1);
  assert_int_equal(mine.lens, 1);
  shk_lens_close(lens);
  shk_buf_release(a);
  assert_int_equal(names_of(my_pid(), lens_name).names, 0);
}

static int sleeper_child(int argc, char **argv) {
  (void)argc, (void)argv;
  for (int i = 0; i < 600; i++) shk_test_sleep_ms(1000); /* killed long before */
  return 0;
}

#ifdef __linux__
/* A generated name whose pid now belongs to a process that started well after the name last
 * changed (3 hours, past the one-hour margin): the pid was reused, the owner is gone. One
 * changed just now stays (it could be that process's). */
static void a_name_whose_pid_was_reused_is_stale(void **state) {
  (void)state;
  if (!can_list()) skip();
  shk_test_proc p;
  assert_int_equal(shk_test_spawn("sleeper", 0, NULL, &p), 0);
  char old_name[SHK_SHM_NAME_MAX + 1], new_name[SHK_SHM_NAME_MAX + 1], path[64];
  snprintf(old_name, sizeof old_name, "shkb-%d-900001", p.pid);
  snprintf(new_name, sizeof new_name, "shkb-%d-900002", p.pid);
  shk_shm *a = NULL, *b = NULL;
  assert_int_equal(shk_shm_create(old_name, 4096, &a), SHK_OK);
  assert_int_equal(shk_shm_create(new_name, 4096, &b), SHK_OK);
  snprintf(path, sizeof path, "/dev/shm/%s", old_name);
  struct timespec long_ago[2] = {{time(NULL) - 3 * 3600, 0}, {time(NULL) - 3 * 3600, 0}};
  assert_int_equal(utimensat(AT_FDCWD, path, long_ago, 0), 0);
  owned o = names_of(p.pid, NULL);
  assert_int_equal(o.names, 2);
  assert_int_equal(o.stale, 1);
  assert_int_equal(o.alive, 1);
  size_t removed = 0;
  assert_int_equal(shk_shm_clean(&removed), SHK_OK);
  o = names_of(p.pid, NULL);
  assert_int_equal(o.names, 1);
  assert_int_equal(o.stale, 0);
  assert_int_equal(shk_shm_unlink(old_name), SHK_ENOENT);
  shk_shm_close(a);
  shk_shm_close(b);
  assert_int_equal(shk_shm_unlink(new_name), SHK_OK);
  shk_test_wait(&p, 0);
}
#else
static void a_name_whose_pid_was_reused_is_stale(void **state) {
  (void)state;
  print_message("process start times are read on Linux only\n");
  skip();
}
#endif

static void the_calls_check_their_arguments(void **state) {
  (void)state;
  int rc = shk_shm_list(NULL, NULL);
  assert_true(rc == SHK_EINVAL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(the_calls_check_their_arguments),
    cmocka_unit_test(the_list_shows_live_names_and_lens_segments_and_clean_keeps_them),
    cmocka_unit_test(the_next_run_removes_what_a_killed_process_left),
    cmocka_unit_test(clean_removes_what_a_killed_process_left),
    cmocka_unit_test(a_name_whose_pid_was_reused_is_stale),
};

static const shk_test_child children[] = {SHK_TEST_CHILD(holder), SHK_TEST_CHILD(next_run),
                                          SHK_TEST_CHILD(sleeper)};
SHK_TEST_MAIN(tests, children)
