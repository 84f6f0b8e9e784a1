/* Watching every live buffer (shk_watch_add_buffers): buffers made before and after the call,
 * released ones removed before their memory goes (no event, no fault), the allocator filter,
 * other allocators on poll and auto but refused or skipped by protection, and threads creating
 * and releasing buffers while they write. Everything that may fault or hang runs in a child. */
/* ctest: labels=unit;fault;multiprocess;tsan timeout=300 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shk_test_thread.h"
#include "shk_test_watch.h"
#include "shmkit.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#include <time.h>
#endif

#define CHILD_TIMEOUT_MS 120000

/* ---- what the callback saw ---- */

#define SEEN_MAX 4096

typedef struct seen {
  atomic_size_t n;
  uint64_t ids[SEEN_MAX];
  char allocators[SEEN_MAX][16];
} seen;

static void on_event(const shk_watch_event *ev, void *user) {
  seen *s = user;
  size_t i = atomic_load(&s->n);
  if (i >= SEEN_MAX) return;
  s->ids[i] = ev->buffer_id;
  snprintf(s->allocators[i], sizeof s->allocators[i], "%s",
           ev->buffer_allocator ? ev->buffer_allocator : "(none)");
  atomic_store(&s->n, i + 1);
}

/* Whether an event of this buffer with this allocator was seen. */
static bool saw(const seen *s, uint64_t id, const char *allocator) {
  size_t n = atomic_load(&((seen *)s)->n);
  for (size_t i = 0; i < n; i++)
    if (s->ids[i] == id && strcmp(s->allocators[i], allocator) == 0) return true;
  return false;
}

static shk_watcher *make(shk_watch_backend b, bool sync, seen *s) {
  shk_watch_options o;
  shk_watch_options_init(&o);
  o.backend = b;
  o.userfaultfd_sync = sync;
  o.coalesce_ms = 1;
  o.poll_interval_ms = 1;
  shk_watcher *w = NULL;
  if (shk_watch_create(&o, &w) != SHK_OK) return NULL;
  if (s) shk_watch_set_callback(w, on_event, s);
  return w;
}

/* Backend argument of a child: "<number>" or "<number>s" for userfaultfd's sync mode. */
static shk_watcher *make_from_arg(const char *arg, seen *s) {
  return make((shk_watch_backend)atoi(arg), strchr(arg, 's') != NULL, s);
}

/* The backends (and modes) usable here, auto included, as child arguments. */
static size_t usable_backends(char args[][8], size_t max) {
  size_t n = 0;
  for (int b = 0; b < SHK_WATCH_BACKEND_COUNT && n < max; b++) {
    if (!shk_watch_backend_available((shk_watch_backend)b)) continue;
    snprintf(args[n++], 8, "%d", b);
    if (b == SHK_WATCH_USERFAULTFD && n < max) snprintf(args[n++], 8, "%ds", b);
  }
  return n;
}

static void run_on_every_backend(const char *child) {
  char args[8][8];
  size_t n = usable_backends(args, 8);
  for (size_t i = 0; i < n; i++) {
    printf("    backend %s\n", args[i]);
    const char *a[] = {args[i]};
    shk_test_run_child_ok(child, 1, a, CHILD_TIMEOUT_MS);
  }
}

static shk_buf *make_buf(const char *allocator, size_t size) {
  shk_buf_options o = {0};
  o.allocator = allocator;
  o.init = SHK_BUF_INIT_ZERO;
  shk_buf *b = NULL;
  return shk_buf_create(size, 1, &o, &b) == SHK_OK ? b : NULL;
}

static size_t regions(shk_watcher *w) {
  shk_watch_stats st;
  return shk_watch_stats_get(w, &st) == SHK_OK ? st.regions : SIZE_MAX;
}

/* ---- buffers before and after, released ones ---- */

static int child_before_and_after(int argc, char **argv) {
  (void)argc;
  static seen s;
  shk_buf *before = make_buf("pages", 100);
  SHK_CHECK(before);
  shk_watcher *w = make_from_arg(argv[0], &s);
  SHK_CHECK(w);
  SHK_CHECK(shk_watch_add_buffers(w, NULL) == SHK_OK);
  SHK_CHECK(shk_watch_add_buffers(w, NULL) == SHK_EEXIST);
  shk_buf *after = make_buf("pages", 5000);
  SHK_CHECK(after);
  SHK_CHECK(regions(w) == 2);
  ((volatile unsigned char *)shk_buf_data(before))[7] = 1;
  ((volatile unsigned char *)shk_buf_data(after))[4999] = 2;
  SHK_CHECK(shk_watch_flush(w) == SHK_OK);
  SHK_CHECK(saw(&s, shk_buf_id(before), "pages"));
  SHK_CHECK(saw(&s, shk_buf_id(after), "pages"));

  /* Released: the region goes before the memory does; its pages may be mapped again by anyone,
   * written without shmkit's protection, and give no event. */
  uint64_t gone = shk_buf_id(after);
  shk_buf_release(after);
  SHK_CHECK(regions(w) == 1);
  for (int i = 0; i < 20; i++) { /* the same pages again and again: never a stale region */
    shk_buf *again = make_buf("pages", 5000);
    SHK_CHECK(again);
    ((volatile unsigned char *)shk_buf_data(again))[0] = (unsigned char)(i + 1);
    shk_buf_release(again);
  }
  SHK_CHECK(regions(w) == 1);
  size_t events = atomic_load(&s.n);
  SHK_CHECK(shk_watch_flush(w) == SHK_OK);
  for (size_t i = events; i < atomic_load(&s.n); i++) SHK_CHECK(s.ids[i] != gone);

  SHK_CHECK(shk_watch_remove_buffers(w) == SHK_OK);
  SHK_CHECK(shk_watch_remove_buffers(w) == SHK_ENOENT);
  SHK_CHECK(regions(w) == 0);
  shk_buf *unfollowed = make_buf("pages", 64);
  SHK_CHECK(regions(w) == 0);
  shk_buf_release(unfollowed);

  /* Following again, then freeing the watcher while following: buffers outlive it. */
  SHK_CHECK(shk_watch_add_buffers(w, NULL) == SHK_OK);
  SHK_CHECK(regions(w) == 1);
  shk_watch_free(w);
  ((volatile unsigned char *)shk_buf_data(before))[8] = 3;
  shk_buf_release(before);
  shk_buf *later = make_buf("pages", 64);
  SHK_CHECK(later);
  shk_buf_release(later);
  return 0;
}

static void buffers_made_before_and_after_the_call_are_watched_and_released_ones_removed(
    void **state) {
  (void)state;
  run_on_every_backend("before_and_after");
}

/* ---- other allocators ---- */

static int child_other_allocators(int argc, char **argv) {
  (void)argc;
  static seen s;
  shk_watch_backend b = (shk_watch_backend)atoi(argv[0]);
  bool on_poll = b == SHK_WATCH_POLL || b == SHK_WATCH_AUTO;
  shk_buf *heap = make_buf(NULL, 48);
  shk_buf *aligned = make_buf("aligned", 48);
  shk_buf *pages = make_buf("pages", 48);
  SHK_CHECK(heap && aligned && pages);
  shk_watcher *w = make_from_arg(argv[0], &s);
  SHK_CHECK(w);

  const char *heap_only[] = {"heap"};
  shk_watch_buffers_options o;
  shk_watch_buffers_options_init(&o);
  o.allocators = heap_only;
  o.allocator_count = 1;
  if (!on_poll) { /* protection would share the heap's pages: refused, clearly */
    SHK_CHECK(shk_watch_add_buffers(w, &o) == SHK_EUNSUPPORTED);
    SHK_CHECK(regions(w) == 0);
    SHK_CHECK(shk_watch_add_buffers(w, NULL) == SHK_OK); /* all: the others are skipped */
    SHK_CHECK(regions(w) == 1);
    shk_buf *more = make_buf(NULL, 48);
    SHK_CHECK(regions(w) == 1);
    shk_buf_release(more);
  } else {
    SHK_CHECK(shk_watch_add_buffers(w, NULL) == SHK_OK);
    SHK_CHECK(regions(w) == 3);
    if (b == SHK_WATCH_AUTO) {
      shk_watch_stats st;
      SHK_CHECK(shk_watch_stats_get(w, &st) == SHK_OK);
      SHK_CHECK(st.regions_by_backend[SHK_WATCH_POLL] >= 2);
    }
    ((volatile unsigned char *)shk_buf_data(heap))[1] = 1;
    ((volatile unsigned char *)shk_buf_data(aligned))[2] = 2;
    ((volatile unsigned char *)shk_buf_data(pages))[3] = 3;
    SHK_CHECK(shk_watch_flush(w) == SHK_OK);
    SHK_CHECK(saw(&s, shk_buf_id(heap), "heap"));
    SHK_CHECK(saw(&s, shk_buf_id(aligned), "aligned"));
    SHK_CHECK(saw(&s, shk_buf_id(pages), "pages"));
    shk_buf *more = make_buf(NULL, 48);
    SHK_CHECK(regions(w) == 4);
    shk_buf_release(more);
    SHK_CHECK(regions(w) == 3);
  }
  shk_watch_free(w);
  shk_buf_release(heap);
  shk_buf_release(aligned);
  shk_buf_release(pages);
  return 0;
}

static void other_allocators_are_polled_and_refused_or_skipped_by_protection(void **state) {
  (void)state;
  run_on_every_backend("other_allocators");
}

static int child_filter(int argc, char **argv) {
  (void)argc;
  (void)argv;
  static seen s;
  shk_watcher *w = make(SHK_WATCH_POLL, false, &s);
  SHK_CHECK(w);
  shk_buf *heap = make_buf(NULL, 32);
  const char *names[] = {"aligned", "pages"};
  shk_watch_buffers_options o;
  shk_watch_buffers_options_init(&o);
  o.allocators = names;
  o.allocator_count = 2;
  SHK_CHECK(shk_watch_add_buffers(w, &o) == SHK_OK);
  SHK_CHECK(regions(w) == 0);
  shk_buf *aligned = make_buf("aligned", 32);
  shk_buf *heap2 = make_buf(NULL, 32);
  SHK_CHECK(regions(w) == 1);
  ((volatile unsigned char *)shk_buf_data(heap))[0] = 1;
  ((volatile unsigned char *)shk_buf_data(heap2))[0] = 1;
  ((volatile unsigned char *)shk_buf_data(aligned))[0] = 1;
  SHK_CHECK(shk_watch_flush(w) == SHK_OK);
  SHK_CHECK(saw(&s, shk_buf_id(aligned), "aligned"));
  SHK_CHECK(!saw(&s, shk_buf_id(heap), "heap"));
  SHK_CHECK(!saw(&s, shk_buf_id(heap2), "heap"));
  shk_watch_free(w);
  shk_buf_release(heap);
  shk_buf_release(heap2);
  shk_buf_release(aligned);
  return 0;
}

static void the_allocator_filter_picks_which_buffers(void **state) {
  (void)state;
  shk_test_run_child_ok("filter", 0, NULL, CHILD_TIMEOUT_MS);
}

static void bad_arguments_are_refused(void **state) {
  (void)state;
  assert_int_equal(shk_watch_add_buffers(NULL, NULL), SHK_EINVAL);
  assert_int_equal(shk_watch_remove_buffers(NULL), SHK_EINVAL);
  shk_watch_buffers_options_init(NULL);
  shk_watcher *w = make(SHK_WATCH_POLL, false, NULL);
  assert_non_null(w);
  shk_watch_buffers_options o;
  shk_watch_buffers_options_init(&o);
  o.struct_size = 7; /* below the first published layout, and not a version of 0.1.x */
  assert_int_equal(shk_watch_add_buffers(w, &o), SHK_EINVAL);
  shk_watch_buffers_options_init(&o);
  o.allocator_count = 1; /* names missing */
  assert_int_equal(shk_watch_add_buffers(w, &o), SHK_EINVAL);
  const char *names[] = {NULL};
  o.allocators = names;
  assert_int_equal(shk_watch_add_buffers(w, &o), SHK_EINVAL);
  assert_int_equal(shk_watch_remove_buffers(w), SHK_ENOENT);
  shk_watch_free(w);
}

/* ---- threads creating and releasing while writing ---- */

enum { MAKERS = 3, RUN_MS = 1500 };

typedef struct churn {
  atomic_int stop;
  atomic_int failures;
  bool heap_too;
} churn;

static void churn_body(churn *c) {
  unsigned n = 0;
  while (!atomic_load(&c->stop)) {
    const char *allocator = c->heap_too && n % 2 ? NULL : "pages";
    size_t size = 64 + (n % 5) * 1000;
    shk_buf *b = make_buf(allocator, size);
    if (!b) {
      atomic_fetch_add(&c->failures, 1);
      continue;
    }
    volatile unsigned char *p = shk_buf_data(b);
    for (size_t i = 0; i < size; i += 97) p[i] = (unsigned char)(n + i);
    shk_buf_release(b);
    n++;
  }
}

static void churn_main(void *p) { churn_body(p); }

static int child_threads(int argc, char **argv) {
  (void)argc;
  static seen s;
  shk_watch_backend b = (shk_watch_backend)atoi(argv[0]);
  churn c;
  atomic_init(&c.stop, 0);
  atomic_init(&c.failures, 0);
  c.heap_too = b == SHK_WATCH_POLL || b == SHK_WATCH_AUTO;
  /* Some buffers live throughout, written by this thread. */
  shk_buf *held[4];
  bool held_seen[4] = {false, false, false, false};
  for (int i = 0; i < 4; i++) SHK_CHECK(held[i] = make_buf("pages", 256));
  shk_test_thread th[MAKERS];
  for (int i = 0; i < MAKERS; i++)
    SHK_CHECK(shk_test_thread_start(&th[i], churn_main, &c) == 0);
  /* The calls race with the makers: following starts, stops and starts again. (The watcher is
   * freed only once the makers stop: freeing the last watcher removes the fault handler, and a
   * write fault already on its way to the handler then kills its thread, with or without
   * buffers: a defect of the handler's removal, not of following buffers.) */
  shk_watcher *w = make_from_arg(argv[0], &s);
  SHK_CHECK(w);
  uint64_t end = shk_test_now_ms() + RUN_MS;
  unsigned v = 0, round = 0;
  while (shk_test_now_ms() < end) {
    SHK_CHECK(shk_watch_add_buffers(w, NULL) == SHK_OK);
    for (int k = 0; k < 50; k++)
      for (int i = 0; i < 4; i++) ((volatile unsigned char *)shk_buf_data(held[i]))[k] = (unsigned char)++v;
    SHK_CHECK(shk_watch_flush(w) == SHK_OK);
    for (int i = 0; i < 4; i++) held_seen[i] |= saw(&s, shk_buf_id(held[i]), "pages");
    atomic_store(&s.n, 0); /* room for the next round's events */
    SHK_CHECK(shk_watch_remove_buffers(w) == SHK_OK);
    round++;
  }
  atomic_store(&c.stop, 1);
  for (int i = 0; i < MAKERS; i++) shk_test_thread_join(&th[i]);
  SHK_CHECK(regions(w) == 0);
  shk_watch_free(w);
  for (int i = 0; i < 4; i++) {
    SHK_CHECK(held_seen[i]);
    shk_buf_release(held[i]);
  }
  printf("    %u rounds\n", round);
  return atomic_load(&c.failures) ? 5 : 0;
}

static void threads_creating_and_releasing_buffers_while_writing_never_crash(void **state) {
  (void)state;
  run_on_every_backend("threads");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(buffers_made_before_and_after_the_call_are_watched_and_released_ones_removed),
    cmocka_unit_test(other_allocators_are_polled_and_refused_or_skipped_by_protection),
    cmocka_unit_test(the_allocator_filter_picks_which_buffers),
    cmocka_unit_test(bad_arguments_are_refused),
    cmocka_unit_test(threads_creating_and_releasing_buffers_while_writing_never_crash),
};

static const shk_test_child children[] = {
    {"before_and_after", child_before_and_after},
    {"other_allocators", child_other_allocators},
    {"filter", child_filter},
    {"threads", child_threads},
};

SHK_TEST_MAIN(tests, children)
