/* SHK_DEBUG=lock: each misuse of the process-wide locks (internal.h's order) is reported, in a
 * child process whose stderr goes to a file: a lock taken twice by one thread (then abort), one
 * taken out of order (the range index and the set-up gate included), one given back by a thread
 * that does not hold it, fork() while the forking thread holds one (then abort); a buffer slot
 * (one thread at a time) assigned by two threads at once; and nothing is said for correct use by
 * several threads, with or without the part on. */
/* ctest: labels=unit;internal;multiprocess timeout=120 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shk_test_debug.h"
#include "common/buf_internal.h"

#ifndef _WIN32
#include <sys/wait.h>
#include <unistd.h>
#endif

/* The child must end by abort(): SIGABRT on POSIX, exit code 3 from the C runtime on Windows. */
static char *run_aborting(const char *name, const char *debug) {
  shk_test_exit ex;
  char *text = run_debug_child(name, debug, &ex);
  if (!ex.killed && ex.code != 3) fprintf(stderr, "child %s said:\n%s\n", name, text);
  assert_true(ex.killed || ex.code == 3);
  return text;
}

/* ---- the children: stderr to the file named by argv[0], then the mistake ---- */

static int lock_twice(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  shk__lock(SHK__LOCK_BUF_DEFERRED);
  shk__lock(SHK__LOCK_BUF_DEFERRED); /* without SHK_DEBUG=lock: waits for itself forever */
  return 0;
}

/* One pair in the declared order (said nothing of), then one against it. */
static int take_out_of_order(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  shk__lock(SHK__LOCK_WATCH_BUFFERS);
  shk__lock(SHK__LOCK_WATCH_TABLE);
  shk__unlock(SHK__LOCK_WATCH_TABLE);
  shk__unlock(SHK__LOCK_WATCH_BUFFERS);
  shk__lock(SHK__LOCK_BUF_THREADS);
  shk__lock(SHK__LOCK_SHM_REGISTRY);
  shk__unlock(SHK__LOCK_SHM_REGISTRY);
  shk__unlock(SHK__LOCK_BUF_THREADS);
  fflush(stderr);
  return 0;
}

typedef struct giver {
  atomic_int done;
} giver;

static void give_what_another_holds(void *arg) {
  giver *g = arg;
  shk__unlock(SHK__LOCK_BUF_HOOK); /* the main thread holds it: reported, not done */
  atomic_store(&g->done, 1);
}

static void take_and_give_hook(void *arg) {
  giver *g = arg;
  shk__lock(SHK__LOCK_BUF_HOOK); /* waits for the main thread's give */
  shk__unlock(SHK__LOCK_BUF_HOOK);
  atomic_store(&g->done, 1);
}

static int give_from_another_thread(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  shk__lock(SHK__LOCK_BUF_HOOK);
  giver bad = {0}, waiter = {0};
  shk__os_thread *t = NULL, *w = NULL;
  SHK_CHECK(shk__os_thread_start(&t, give_what_another_holds, &bad) == SHK_OK);
  shk__os_thread_join(t);
  SHK_CHECK(atomic_load(&bad.done) == 1);
  /* The lock is still the main thread's: a thread that takes it waits for the real give. */
  SHK_CHECK(shk__os_thread_start(&w, take_and_give_hook, &waiter) == SHK_OK);
  shk_test_sleep_ms(50);
  SHK_CHECK(atomic_load(&waiter.done) == 0);
  shk__unlock(SHK__LOCK_BUF_HOOK);
  shk__os_thread_join(w);
  SHK_CHECK(atomic_load(&waiter.done) == 1);
  fflush(stderr);
  return 0;
}

/* Called for each indexed range, under the index's lock. */
static void count_again(shk__buf_range *node, void *ctx) {
  (void)node, (void)ctx;
  (void)shk__buf_ranges_count(); /* takes the index's lock again */
}

static void take_hook_inside(shk__buf_range *node, void *ctx) {
  (void)node, (void)ctx;
  shk__lock(SHK__LOCK_BUF_HOOK); /* a mutex before the index in the order */
  shk__unlock(SHK__LOCK_BUF_HOOK);
}

static int walk_with(void (*fn)(shk__buf_range *, void *)) {
  static unsigned char bytes[64];
  shk_buf *b = NULL;
  SHK_CHECK(shk_buf_consume(bytes, sizeof bytes, 1, NULL, &b) == SHK_OK);
  SHK_CHECK(shk__buf_ranges_walk(fn, NULL) >= 1);
  shk_buf_release(b);
  fflush(stderr);
  return 0;
}

static int range_index_twice(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  return walk_with(count_again);
}

static int range_index_then_mutex(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  return walk_with(take_hook_inside);
}

static void nothing(void) {}

static int setup_while_holding(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  static shk__once fresh;
  shk__lock(SHK__LOCK_BUF_THREADS);
  shk__once_run(&fresh, nothing); /* a first set-up takes the gate, first in the order */
  shk__unlock(SHK__LOCK_BUF_THREADS);
  fflush(stderr);
  return 0;
}

#ifndef _WIN32
static int fork_while_holding(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  shk__lock(SHK__LOCK_BUF_ALLOCATORS);
  pid_t pid = fork(); /* without SHK_DEBUG=lock: the fork handler waits for this thread */
  if (pid == 0) _exit(0);
  if (pid > 0) waitpid(pid, NULL, 0);
  return 0;
}
#endif

/* Two threads in shk_buf_assign on one slot at once: the first one's release of the old buffer
 * waits in its destroy callback until the second has assigned. */
typedef struct slot_race {
  shk_buf *slot;
  atomic_int in_callback, go;
} slot_race;

static void wait_in_destroy(const shk_buf_info *info, void *user) {
  (void)info;
  slot_race *r = user;
  atomic_store(&r->in_callback, 1);
  while (!atomic_load(&r->go)) shk__os_yield();
}

static void clear_slot(void *arg) {
  slot_race *r = arg;
  /* Ends the old buffer, which waits in its callback; not a tail call, so that the report
   * names this function as the site. */
  if (shk_buf_assign(&r->slot, NULL) != SHK_OK) abort();
}

static int assign_from_two_threads(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  static slot_race race;
  shk_buf_options o = {.on_destroy = wait_in_destroy, .on_destroy_user = &race};
  SHK_CHECK(shk_buf_create(16, 1, &o, &race.slot) == SHK_OK);
  shk__os_thread *t = NULL;
  SHK_CHECK(shk__os_thread_start(&t, clear_slot, &race) == SHK_OK);
  while (!atomic_load(&race.in_callback)) shk__os_yield();
  shk_buf *b = NULL;
  SHK_CHECK(shk_buf_create(16, 1, NULL, &b) == SHK_OK);
  SHK_CHECK(shk_buf_assign(&race.slot, b) == SHK_OK); /* while the other thread is inside */
  atomic_store(&race.go, 1);
  shk__os_thread_join(t);
  SHK_CHECK(shk_buf_assign(&race.slot, NULL) == SHK_OK); /* alone now: nothing to say */
  fflush(stderr);
  return 0;
}

/* Two threads in one lens reader at once: the first waits inside its drain's callback until the
 * second has called next(). */
typedef struct reader_race {
  shk_lens_reader *reader;
  atomic_int in_callback, go;
} reader_race;

static void wait_in_callback(const shk_lens_event *e, void *user) {
  (void)e;
  reader_race *r = user;
  atomic_store(&r->in_callback, 1);
  while (!atomic_load(&r->go)) shk__os_yield();
}

static void drain_and_wait(void *arg) {
  reader_race *r = arg;
  size_t n = 0;
  if (shk_lens_reader_drain(r->reader, wait_in_callback, r, &n) != SHK_OK) abort();
}

static int reader_from_two_threads(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  static reader_race race;
  char name[64];
  shk_lens *lens = NULL;
  SHK_CHECK(shk_lens_open(shk_test_unique_name(name, sizeof name, "rr"), NULL, &lens) == SHK_OK);
  SHK_CHECK(shk_lens_reader_open(name, NULL, &race.reader) == SHK_OK);
  shk_lens_zone z;
  SHK_CHECK(shk_lens_zone_begin(lens, &z, "zone", 0) == SHK_OK);
  SHK_CHECK(shk_lens_zone_end(&z) == SHK_OK);
  shk__os_thread *t = NULL;
  SHK_CHECK(shk__os_thread_start(&t, drain_and_wait, &race) == SHK_OK);
  while (!atomic_load(&race.in_callback)) shk__os_yield();
  shk_lens_event e;
  (void)shk_lens_reader_next(race.reader, &e); /* while the other thread is inside */
  atomic_store(&race.go, 1);
  shk__os_thread_join(t);
  (void)shk_lens_reader_next(race.reader, &e); /* alone now: nothing to say */
  shk_lens_reader_close(race.reader);
  shk_lens_close(lens);
  fflush(stderr);
  return 0;
}

/* Correct use from several threads: buffers made and ended (recycled, and past recycling through
 * the index), consumed memory, the allocator registry, deferred buffers, the live count, named
 * segments; and, on POSIX, a fork amid it all. */
enum { THREADS = 4, ROUNDS = 30, BATCH = 1500 };

static int refuse_alloc(void *user, const shk_buf_alloc_request *req, shk_buf_block *out) {
  (void)user, (void)req;
  out->ptr = NULL;
  return SHK_ENOMEM;
}

static void free_nothing(void *user, const shk_buf_block *block, size_t size) {
  (void)user, (void)block, (void)size;
}

static void churn(void *arg) {
  atomic_int *failed = arg;
  shk_buf **held = malloc(BATCH * sizeof *held);
  unsigned char *arena = malloc(BATCH * 64);
  if (!arena || !held) {
    atomic_fetch_add(failed, 1);
    free(held);
    free(arena);
    return;
  }
  for (int r = 0; r < ROUNDS; r++) {
    for (int k = 0; k < BATCH; k++)
      if (shk_buf_create(64, 1, NULL, &held[k]) != SHK_OK) atomic_fetch_add(failed, 1);
    for (int k = 0; k < BATCH; k++) shk_buf_release(held[k]);
    for (int k = 0; k < 100; k++) {
      shk_buf *b = NULL;
      if (shk_buf_consume(arena + k * 64, 32, 1, NULL, &b) != SHK_OK) atomic_fetch_add(failed, 1);
      shk_buf_release(b);
    }
    shk_buf_options o = {.delayed_free = true};
    shk_buf *d = NULL;
    if (shk_buf_create(16, 1, &o, &d) != SHK_OK) atomic_fetch_add(failed, 1);
    uint64_t id = shk_buf_id(d);
    shk_buf_release(d);
    if (shk_buf_free_deferred(id) != SHK_OK) atomic_fetch_add(failed, 1);
    (void)shk_buf_live_count();
    (void)shk_buf_allocator_exists("heap");
    shk_buf *mine = NULL; /* a slot of this thread's own */
    if (shk_buf_create(8, 1, NULL, &d) != SHK_OK) atomic_fetch_add(failed, 1);
    if (shk_buf_assign(&mine, d) != SHK_OK) atomic_fetch_add(failed, 1);
    if (shk_buf_assign(&mine, NULL) != SHK_OK) atomic_fetch_add(failed, 1);
    shk_shm *s = NULL;
    if (shk_shm_create_anonymous(4096, &s) != SHK_OK) atomic_fetch_add(failed, 1);
    shk_shm_close(s);
  }
  free(arena);
  free(held);
}

static int correct_use(int argc, char **argv) {
  (void)argc;
  SHK_CHECK(to_file(argv) == 0);
  atomic_int failed = 0;
  shk__os_thread *t[THREADS];
  for (int i = 0; i < THREADS; i++)
    SHK_CHECK(shk__os_thread_start(&t[i], churn, &failed) == SHK_OK);
  shk_buf_allocator table = {SHK_BUF_ALLOCATOR_VERSION, refuse_alloc, free_nothing, NULL, NULL,
                             NULL};
  for (int r = 0; r < 20; r++) {
    SHK_CHECK(shk_buf_allocator_register("lockcheck", &table) == SHK_OK);
    shk_buf *b = NULL;
    shk_buf_options o = {.allocator = "lockcheck"};
    SHK_CHECK(shk_buf_create(1, 1, &o, &b) == SHK_ENOMEM);
    SHK_CHECK(shk_buf_allocator_unregister("lockcheck") == SHK_OK);
  }
#ifndef _WIN32
  pid_t pid = fork();
  if (pid == 0) {
    shk_buf *b = NULL;
    _exit(shk_buf_create(64, 1, NULL, &b) == SHK_OK ? 0 : 1);
  }
  int status = 0;
  SHK_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  SHK_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#endif
  for (int i = 0; i < THREADS; i++) shk__os_thread_join(t[i]);
  SHK_CHECK(atomic_load(&failed) == 0);
  fflush(stderr);
  return 0;
}

/* ---- the tests ---- */

static void a_lock_taken_twice_by_its_holder_is_reported_before_the_abort(void **state) {
  (void)state;
  char *text = run_aborting("lock_twice", "lock");
  expect_in(text, "shmkit debug: lock: buf deferred list taken again by the thread that holds it");
  expect_in(text, "at test_debug_lock");
  expect_in(text, "it would wait for itself forever, aborting");
  free(text);
}

static void a_lock_taken_out_of_order_is_reported_and_in_order_is_not(void **state) {
  (void)state;
  char *text = run_capturing("take_out_of_order", "lock");
  expect_in(text, "shmkit debug: lock: lock order: shm registry (number 1) taken at test_debug_lock");
  expect_in(text, "while this thread holds buf thread list (number 7, taken at test_debug_lock");
  expect_not_in(text, "watch table");
  free(text);
  char *off = run_capturing("take_out_of_order", NULL);
  expect_not_in(off, "shmkit debug");
  free(off);
  char *other = run_capturing("take_out_of_order", "buf,watch,shm");
  expect_not_in(other, "shmkit debug");
  free(other);
  char *all = run_capturing("take_out_of_order", "1");
  expect_in(all, "shmkit debug: lock: lock order: shm registry");
  free(all);
}

static void a_give_by_a_thread_that_does_not_hold_the_lock_is_reported_and_ignored(void **state) {
  (void)state;
  char *text = run_capturing("give_from_another_thread", "lock");
  expect_in(text, "shmkit debug: lock: buf heap hook given back at ");
  expect_in(text, "by a thread that does not hold it (thread ");
  expect_in(text, "); ignored");
  /* One report: the waiter's and the holder's own gives were right. */
  assert_null(strstr(strstr(text, "given back") + 1, "given back"));
  free(text);
}

static void the_range_index_taken_twice_is_reported_before_the_abort(void **state) {
  (void)state;
  char *text = run_aborting("range_index_twice", "lock");
  expect_in(text, "shmkit debug: lock: buf range index taken again by the thread that holds it");
  free(text);
}

static void a_mutex_taken_under_the_range_index_is_out_of_order(void **state) {
  (void)state;
  char *text = run_capturing("range_index_then_mutex", "lock");
  expect_in(text, "lock order: buf heap hook (number 5) taken at ");
  expect_in(text, "while this thread holds buf range index (number 9, taken at ");
  free(text);
  char *off = run_capturing("range_index_then_mutex", NULL);
  expect_not_in(off, "shmkit debug");
  free(off);
}

static void a_set_up_started_under_a_lock_is_out_of_order(void **state) {
  (void)state;
  char *text = run_capturing("setup_while_holding", "lock");
  expect_in(text, "lock order: one-time set-up gate (number 0) taken at test_debug_lock");
  expect_in(text, "while this thread holds buf thread list (number 7");
  free(text);
  char *off = run_capturing("setup_while_holding", NULL);
  expect_not_in(off, "shmkit debug");
  free(off);
}

static void a_fork_while_holding_a_lock_is_reported_before_the_abort(void **state) {
  (void)state;
#ifdef _WIN32
  skip(); /* no fork */
#else
  char *text = run_aborting("fork_while_holding", "lock");
  expect_in(text, "shmkit debug: lock: fork() while the forking thread (thread ");
  expect_in(text, "holds buf allocator registry, taken at test_debug_lock");
  free(text);
#endif
}

static void a_reader_used_by_two_threads_at_once_is_reported(void **state) {
  (void)state;
  char *text = run_capturing("reader_from_two_threads", "lock");
  expect_in(text, "shmkit debug: lock: lens reader ");
  expect_in(text, " used by two threads at once: shk_lens_reader_next in thread ");
  expect_in(text, " is in shk_lens_reader_drain, called from test_debug_lock");
  assert_null(strstr(strstr(text, "two threads") + 1, "two threads")); /* once */
  free(text);
  char *off = run_capturing("reader_from_two_threads", NULL);
  expect_not_in(off, "shmkit debug");
  free(off);
}

static void a_slot_assigned_by_two_threads_at_once_is_reported(void **state) {
  (void)state;
  char *text = run_capturing("assign_from_two_threads", "lock");
  expect_in(text, "shmkit debug: lock: buffer slot "); /* %p: 0x... or a bare number */
  expect_in(text, " used by two threads at once: shk_buf_assign in thread ");
  expect_in(text, "called from test_debug_lock");
  expect_in(text, "while thread ");
  expect_in(text, " is in shk_buf_assign, called from test_debug_lock");
  /* Once: the last assign was alone. */
  assert_null(strstr(strstr(text, "two threads") + 1, "two threads"));
  free(text);
  char *off = run_capturing("assign_from_two_threads", NULL);
  expect_not_in(off, "shmkit debug");
  free(off);
}

static void correct_use_from_several_threads_says_nothing(void **state) {
  (void)state;
  char *text = run_capturing("correct_use", "lock");
  expect_not_in(text, "shmkit debug");
  free(text);
  char *off = run_capturing("correct_use", NULL);
  expect_not_in(off, "shmkit debug");
  free(off);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_lock_taken_twice_by_its_holder_is_reported_before_the_abort),
    cmocka_unit_test(a_lock_taken_out_of_order_is_reported_and_in_order_is_not),
    cmocka_unit_test(a_give_by_a_thread_that_does_not_hold_the_lock_is_reported_and_ignored),
    cmocka_unit_test(the_range_index_taken_twice_is_reported_before_the_abort),
    cmocka_unit_test(a_mutex_taken_under_the_range_index_is_out_of_order),
    cmocka_unit_test(a_set_up_started_under_a_lock_is_out_of_order),
    cmocka_unit_test(a_fork_while_holding_a_lock_is_reported_before_the_abort),
    cmocka_unit_test(a_slot_assigned_by_two_threads_at_once_is_reported),
    cmocka_unit_test(a_reader_used_by_two_threads_at_once_is_reported),
    cmocka_unit_test(correct_use_from_several_threads_says_nothing),
};

static const shk_test_child children[] = {
    {"lock_twice", lock_twice},
    {"take_out_of_order", take_out_of_order},
    {"give_from_another_thread", give_from_another_thread},
    {"range_index_twice", range_index_twice},
    {"range_index_then_mutex", range_index_then_mutex},
    {"setup_while_holding", setup_while_holding},
#ifndef _WIN32
    {"fork_while_holding", fork_while_holding},
#endif
    {"assign_from_two_threads", assign_from_two_threads},
    {"reader_from_two_threads", reader_from_two_threads},
    {"correct_use", correct_use},
};

SHK_TEST_MAIN(tests, children)
