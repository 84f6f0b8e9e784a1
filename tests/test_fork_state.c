/* A process forked while another thread holds any of the library's process-wide locks (each in
 * turn, as listed by process_state.c), or while threads run the public calls that take them,
 * must find every part usable in the child: a buffer (heap and "shm"), a named segment, a
 * watcher and a lens. POSIX only: Windows has no fork (its workers are new processes). */
/* ctest: labels=unit;internal;multiprocess timeout=300 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"
#include "common/internal.h"

#define CHILD_TIMEOUT_MS 240000

/* AddressSanitizer's own allocator (clang 14 here) is not held across fork(): a child forked
 * while another thread is inside malloc waits on its lock for good (seen: 1 in 40 forks amid
 * traffic). That is the sanitizer's, not shmkit's; the traffic test skips under it. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#ifndef _WIN32
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "os.h"

enum { LIMIT_MS = 10000, TRAFFIC_FORKS = 40, HOLD_MS = 100 };

/* What a forked child does: every part once, and each process-wide lock at least once (the
 * allocator registry, the heap hook, the deferred list, the thread list through the live count).
 * 0 when all worked, else the step that failed. */
static int use_every_part(void) {
  size_t deferred = 0;
  if (shk_buf_allocator_exists("no-such-allocator")) return 10;
  if (shk_buf_set_heap_hook(NULL, NULL) != SHK_OK) return 11;
  if (shk_buf_deferred_list(NULL, 0, &deferred) != SHK_OK) return 12;
  (void)shk_buf_live_count();
  shk_buf *b = NULL;
  if (shk_buf_create(64, 1, NULL, &b) != SHK_OK) return 1;
  shk_buf_release(b);
  shk_buf_options o = {0};
  o.allocator = "shm";
  if (shk_buf_create(4096, 1, &o, &b) != SHK_OK) return 2;
  shk_buf_release(b);
  char name[64];
  snprintf(name, sizeof name, "shkt-fork-%d", (int)getpid());
  shk_shm *s = NULL;
  if (shk_shm_create(name, 4096, &s) != SHK_OK) return 3;
  shk_shm *found = NULL;
  size_t off = 0;
  int rc = shk_shm_find(shk_shm_data(s), 16, &found, &off);
  shk_shm_close(s);
  shk_shm_unlink(name);
  if (rc != SHK_OK || found != s) return 4;
  shk_watcher *w = NULL;
  if (shk_watch_create(NULL, &w) != SHK_OK) return 5;
  void *pages = NULL;
  size_t page = shk__os_caps_get()->page_size;
  if (shk_watch_pages_alloc(page, &pages) != SHK_OK) return 6;
  uint32_t id = 0;
  rc = shk_watch_add(w, pages, page, "p", &id);
  if (rc == SHK_OK) rc = shk_watch_remove(w, id);
  shk_watch_free(w);
  shk_watch_pages_free(pages, page);
  if (rc != SHK_OK) return 7;
  snprintf(name, sizeof name, "shkt-fork-lens-%d", (int)getpid());
  shk_lens *lens = NULL;
  if (shk_lens_open(name, NULL, &lens) != SHK_OK) return 8;
  rc = shk_lens_frame(lens);
  shk_lens_close(lens);
  return rc == SHK_OK ? 0 : 9;
}

static void nothing(void) {}

/* Forks; the child uses every part and exits. 0 when it exited 0 within LIMIT_MS; otherwise it
 * is killed and its exit code (or -1 for a hang) returned. */
static int fork_and_use(void) {
  static shk__once fresh; /* a set-up first run in the child: it needs the gate */
  pid_t pid = fork();
  if (pid == 0) {
    shk__once_run(&fresh, nothing);
    _exit(use_every_part());
  }
  if (pid < 0) return -2;
  for (int waited = 0; waited < LIMIT_MS; waited++) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    shk_test_sleep_ms(1);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

typedef struct holder {
  size_t lock;
  atomic_int held; /* 1 while the lock is held, 2 once it was given back */
} holder;

static void hold_then_give_back(void *arg) {
  holder *h = arg;
  shk__lock_hold(h->lock);
  atomic_store(&h->held, 1);
  shk_test_sleep_ms(HOLD_MS);
  shk__lock_release(h->lock);
  atomic_store(&h->held, 2);
}

static int each_lock_held_child(int argc, char **argv) {
  (void)argc, (void)argv;
  if (use_every_part() != 0) return 100; /* the set-ups done first */
  int failed = 0;
  size_t n = shk__lock_count();
  for (size_t i = 0; i < n; i++) {
    holder h = {i, 0};
    shk__os_thread *t = NULL;
    if (shk__os_thread_start(&t, hold_then_give_back, &h) != SHK_OK) return 101;
    while (atomic_load(&h.held) == 0) shk__os_yield();
    int rc = fork_and_use(); /* the fork waits for the lock; the child must find it free */
    shk__os_thread_join(t);
    if (rc != 0) {
      fprintf(stderr, "lock %zu (%s) held at the fork: child %s (%d)\n", i, shk__lock_name(i),
              rc == -1 ? "hung" : "failed", rc);
      failed++;
    }
  }
  fprintf(stderr, "%zu locks held in turn, %d children failed\n", n, failed);
  return failed ? 1 : 0;
}

static atomic_bool stop;

/* The shm registry: shk_shm_find over a few open segments. */
static void find_loop(void *arg) {
  shk_shm *s = arg;
  while (!atomic_load(&stop)) {
    shk_shm *found = NULL;
    size_t off = 0;
    (void)shk_shm_find(shk_shm_data(s), 1, &found, &off);
  }
}

/* The watch table: regions added and removed. */
static void watch_loop(void *arg) {
  (void)arg;
  size_t page = shk__os_caps_get()->page_size;
  void *pages = NULL;
  shk_watcher *w = NULL;
  if (shk_watch_pages_alloc(page, &pages) != SHK_OK) return;
  if (shk_watch_create(NULL, &w) != SHK_OK) return;
  while (!atomic_load(&stop)) {
    uint32_t id = 0;
    if (shk_watch_add(w, pages, page, "t", &id) == SHK_OK) shk_watch_remove(w, id);
  }
  shk_watch_free(w);
  shk_watch_pages_free(pages, page);
}

/* Every allocator registry, hook, deferred list and range index: "shm" buffers made and freed,
 * some through the deferred list. */
static void buf_loop(void *arg) {
  (void)arg;
  shk_buf_options o = {0};
  o.allocator = "shm";
  o.delayed_free = true;
  while (!atomic_load(&stop)) {
    shk_buf *b = NULL;
    if (shk_buf_create(4096, 1, &o, &b) == SHK_OK) shk_buf_release(b);
    shk_buf_free_deferred_all(NULL);
  }
}

static int traffic_child(int argc, char **argv) {
  (void)argc, (void)argv;
  shk_shm *s = NULL;
  if (shk_shm_create_anonymous(4096, &s) != SHK_OK) return 100;
  shk__os_thread *t[3];
  if (shk__os_thread_start(&t[0], find_loop, s) != SHK_OK) return 101;
  if (shk__os_thread_start(&t[1], watch_loop, NULL) != SHK_OK) return 101;
  if (shk__os_thread_start(&t[2], buf_loop, NULL) != SHK_OK) return 101;
  int failed = 0;
  for (int i = 0; i < TRAFFIC_FORKS; i++) failed += fork_and_use() != 0;
  atomic_store(&stop, true);
  for (int i = 0; i < 3; i++) shk__os_thread_join(t[i]);
  shk_shm_close(s);
  fprintf(stderr, "%d of %d children forked amid traffic failed or hung\n", failed,
          TRAFFIC_FORKS);
  return failed ? 1 : 0;
}

static void a_child_forked_while_each_lock_is_held_can_use_every_part(void **state) {
  (void)state;
  shk_test_run_child_ok("each_lock_held", 0, NULL, CHILD_TIMEOUT_MS);
}

static void a_child_forked_amid_find_watch_and_buffer_traffic_can_use_every_part(void **state) {
  (void)state;
#ifdef UNDER_ASAN
  print_message("AddressSanitizer's allocator is not fork-safe amid malloc traffic: skipped\n");
  skip();
#endif
  shk_test_run_child_ok("traffic", 0, NULL, CHILD_TIMEOUT_MS);
}

static const shk_test_child children[] = {{"each_lock_held", each_lock_held_child},
                                          {"traffic", traffic_child}};
#else
static void a_child_forked_while_each_lock_is_held_can_use_every_part(void **state) {
  (void)state;
  print_message("no fork on Windows: workers are new processes and inherit no lock\n");
  skip();
}

static void a_child_forked_amid_find_watch_and_buffer_traffic_can_use_every_part(void **state) {
  a_child_forked_while_each_lock_is_held_can_use_every_part(state);
}

static int unused_child(int argc, char **argv) {
  (void)argc, (void)argv;
  return 0;
}
static const shk_test_child children[] = {{"unused", unused_child}};
#endif

/* The order names every lock it holds, the gate first. */
static void the_lock_order_names_every_lock(void **state) {
  (void)state;
  size_t n = shk__lock_count();
  assert_true(n >= 1u + SHK__LOCK_MUTEX_COUNT + 1u);
  assert_string_equal(shk__lock_name(0), "one-time set-up gate");
  for (size_t i = 0; i < n; i++) assert_non_null(shk__lock_name(i));
  assert_null(shk__lock_name(n));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(the_lock_order_names_every_lock),
    cmocka_unit_test(a_child_forked_while_each_lock_is_held_can_use_every_part),
    cmocka_unit_test(a_child_forked_amid_find_watch_and_buffer_traffic_can_use_every_part),
};
SHK_TEST_MAIN(tests, children)
