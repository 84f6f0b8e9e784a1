/* ctest: labels=unit;fault timeout=180 internal */
/* Fault injection (src/os_faults.h, SHK__FAULT_FAULT_HANDLER) at the installation of the
 * watcher's write-fault handler: sigaction on SIGSEGV and SIGBUS (POSIX), a vectored exception
 * handler (Windows). A watcher that cannot install it, or put it back in front after the
 * program took it out, fails with SHK_EOS and the raw OS code, leaves the program's own
 * handlers exactly as they were (a half-done installation is undone) and nothing else behind,
 * and works once the system lets it. Every test runs in a child process: the handlers are
 * process-wide and stay installed once installed. */
#include <stdio.h>
#include <string.h>

#include "common/watch_internal.h"
#include "shk_test_faults.h"
#include "shmkit.h"

#ifndef _WIN32
#include <signal.h>
#endif

#define CHILD_TIMEOUT_MS 120000

#ifndef _WIN32
/* The program's own handlers, installed before any watcher: what must be kept. They are never
 * called here (no fault reaches them). */
static void program_segv(int sig, siginfo_t *info, void *ctx) { (void)sig, (void)info, (void)ctx; }
static void program_bus(int sig) { (void)sig; }

static void set_handler(int sig, bool siginfo) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  if (siginfo) {
    sa.sa_flags = SA_SIGINFO;
    sa.sa_sigaction = program_segv;
  } else {
    sa.sa_handler = program_bus;
  }
  sigaction(sig, &sa, NULL);
}

static void install_program_handlers(void) {
  set_handler(SIGSEGV, true);
  set_handler(SIGBUS, false);
}

/* Whether sig's installed handler is the program's (as install_program_handlers() left it). */
static bool is_program_handler(int sig) {
  struct sigaction cur;
  if (sigaction(sig, NULL, &cur) != 0) return false;
  if (sig == SIGSEGV) return (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == program_segv;
  return !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == program_bus;
}

/* The program's handlers on both signals; neither (ours in front of both). */
static bool program_handlers_in_place(void) {
  return is_program_handler(SIGSEGV) && is_program_handler(SIGBUS);
}
static bool ours_in_place(void) {
  return !is_program_handler(SIGSEGV) && !is_program_handler(SIGBUS);
}
#else
/* Windows: the program's exception handling is not changed by a vectored handler that was
 * never added; there is nothing of the program's to compare. */
static void install_program_handlers(void) {}
static bool program_handlers_in_place(void) { return true; }
static bool ours_in_place(void) { return true; }
#endif

/* Pages for one watched region; what a failed add must leave as it found. */
typedef struct pages {
  unsigned char *p;
  size_t size;
} pages;

/* Read-write (and writable in fact). */
static int pages_open(const pages *pg) {
  int prot = 0;
  bool uniform = false;
  int rc = shk__os_prot_query(pg->p, pg->size, &prot, &uniform);
  if (rc != SHK_EUNSUPPORTED &&
      (rc != SHK_OK || !uniform || (prot & SHK__OS_PROT_READ_WRITE) != SHK__OS_PROT_READ_WRITE))
    return 1;
  pg->p[pg->size - 1] = 1;
  return 0;
}

static shk_watcher *mprotect_watcher(void) {
  shk_watch_options opts;
  shk_watch_options_init(&opts);
  opts.backend = SHK_WATCH_MPROTECT;
  shk_watcher *w = NULL;
  return shk_watch_create(&opts, &w) == SHK_OK ? w : NULL;
}

/* A write to the watched region is seen: the watcher works. */
static int write_is_seen(shk_watcher *w, unsigned char *at) {
  shk_watch_stats before, after;
  SHK_CHECK(shk_watch_stats_get(w, &before) == SHK_OK);
  *at ^= 0x5a;
  SHK_CHECK(shk_watch_flush(w) == SHK_OK);
  SHK_CHECK(shk_watch_stats_get(w, &after) == SHK_OK);
  SHK_CHECK(after.faults > before.faults);
  SHK_CHECK(after.events_unobserved + after.events_delivered >
            before.events_unobserved + before.events_delivered);
  return 0;
}

/* The first shk_watch_add of the process installs the handler: fail the nth installation call
 * (POSIX: 1 = SIGSEGV, 2 = SIGBUS, after SIGSEGV was installed) alone or from the nth on, until
 * the add no longer reaches the point. After each failure: SHK_EOS, the raw code, id 0, the
 * program's handlers in place, the pages untouched, no descriptor, mapping or child added. */
static int walk_first_install(shk_watcher *w, const pages *pg, bool sticky, unsigned *walked) {
  *walked = 0;
  /* The descriptor of /proc/self/maps that protection queries keep for the process (src/posix/
   * memory.c) is opened before counting: it is not left behind by a failure. */
  SHK_CHECK(pages_open(pg) == 0);
  shk_fault_world before = shk_fault_world_now();
  for (unsigned nth = 1; nth < 16; nth++) {
    uint32_t id = 0;
    shk__fault_arm(SHK__FAULT_FAULT_HANDLER, nth, SHK_FAULT_RAW, sticky);
    int rc = shk_watch_add(w, pg->p + 100, pg->size - 200, "signal", &id);
    int raw = shk_last_os_error();
    unsigned failed = shk__fault_failures(SHK__FAULT_FAULT_HANDLER);
    shk__fault_disarm_all();
    if (failed == 0) {
      SHK_CHECK(rc == SHK_OK); /* installed now: the walk ends (once per process) */
      SHK_CHECK(shk_watch_remove(w, id) == SHK_OK);
      return 0;
    }
    ++*walked;
    fprintf(stderr, "install call %u failing (%s): %s\n", nth, sticky ? "sticky" : "alone",
            shk_error_name(rc));
    SHK_CHECK(rc == SHK_EOS);
    SHK_CHECK(raw == SHK_FAULT_RAW);
    SHK_CHECK(id == 0);
    SHK_CHECK(program_handlers_in_place()); /* nth 2: SIGSEGV's was replaced, then undone */
    SHK_CHECK(pages_open(pg) == 0);
    shk_watch_stats st;
    SHK_CHECK(shk_watch_stats_get(w, &st) == SHK_OK && st.regions == 0);
    shk_fault_world after = shk_fault_world_now();
    if (memcmp(&before, &after, sizeof before) != 0)
      fprintf(stderr, "fds %d->%d shared maps %d->%d maps %d->%d names %d->%d children %d->%d\n",
              before.fds, after.fds, before.shared_maps, after.shared_maps, before.maps,
              after.maps, before.names, after.names, before.children, after.children);
    SHK_CHECK(memcmp(&before, &after, sizeof before) == 0);
  }
  SHK_CHECK(!"the add kept reaching the installation");
  return 0;
}

/* The first add of the process, with the nth installation call failing alone (sticky false)
 * or with every call from the nth on (a fresh process each: the handler is installed once per
 * process). Then, installed once, later adds never try again, also with every installation
 * failing, and writes are seen. */
static int first_install(bool sticky) {
  install_program_handlers();
  pages pg = {NULL, 3 * shk__os_caps_get()->page_size};
  SHK_CHECK(shk_watch_pages_alloc(pg.size, (void **)&pg.p) == SHK_OK);
  shk_watcher *w = mprotect_watcher(); /* nothing installed yet: create does not try */
  SHK_CHECK(w != NULL);
  SHK_CHECK(shk__fault_calls(SHK__FAULT_FAULT_HANDLER) == 0);

  unsigned walked = 0;
  int line = walk_first_install(w, &pg, sticky, &walked);
  if (line) return line;
  fprintf(stderr, "%u failure(s) walked (%s)\n", walked, sticky ? "sticky" : "alone");
#ifndef _WIN32
  SHK_CHECK(walked == 2); /* SIGSEGV, then SIGBUS */
#else
  SHK_CHECK(walked == 1); /* one vectored handler */
#endif
  SHK_CHECK(ours_in_place());

  uint32_t id = 0;
  shk__fault_arm(SHK__FAULT_FAULT_HANDLER, 1, SHK_FAULT_RAW, true);
  int rc = shk_watch_add(w, pg.p + 100, pg.size - 200, "signal", &id);
  unsigned calls = shk__fault_calls(SHK__FAULT_FAULT_HANDLER);
  shk__fault_disarm_all();
  SHK_CHECK(rc == SHK_OK && id != 0);
  SHK_CHECK(calls == 0);
  line = write_is_seen(w, pg.p + 150);
  if (line) return line;
  SHK_CHECK(shk_watch_remove(w, id) == SHK_OK);
  shk_watch_free(w);
  SHK_CHECK(pages_open(&pg) == 0);
  shk_watch_pages_free(pg.p, pg.size);
  return 0;
}

SHK_CHILD_TEST(watch_add_fails_cleanly_when_its_fault_handler_cannot_be_installed,
               CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return first_install(false);
}

SHK_CHILD_TEST(watch_add_fails_cleanly_when_every_fault_handler_installation_fails,
               CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return first_install(true);
}

/* Once installed, each shk_watch_create puts the handler back in front when the program took
 * it out (POSIX; Windows: a vectored handler cannot be taken out, nothing to put back). When
 * that fails: SHK_EOS, the raw code, no watcher, and the program's handlers as they were (the
 * SIGSEGV handler put back in front before SIGBUS failed is undone); the existing watcher is
 * untouched, and the next creation the system allows puts the handler back. */
SHK_CHILD_TEST(watch_create_fails_cleanly_when_its_fault_handler_cannot_be_put_back,
               CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  pages pg = {NULL, 3 * shk__os_caps_get()->page_size};
  SHK_CHECK(shk_watch_pages_alloc(pg.size, (void **)&pg.p) == SHK_OK);
  shk_watcher *w = mprotect_watcher();
  SHK_CHECK(w != NULL);
  uint32_t id = 0;
  SHK_CHECK(shk_watch_add(w, pg.p + 100, pg.size - 200, "first", &id) == SHK_OK);

  unsigned walked = 0;
  for (unsigned nth = 1; nth < 16; nth++) {
    install_program_handlers(); /* over ours: the hook is out of the chain */
    shk_fault_world before = shk_fault_world_now();
    shk__fault_arm(SHK__FAULT_FAULT_HANDLER, nth, SHK_FAULT_RAW, false);
    shk_watcher *second = NULL;
    int rc = shk_watch_create(NULL, &second);
    int raw = shk_last_os_error();
    unsigned failed = shk__fault_failures(SHK__FAULT_FAULT_HANDLER);
    shk__fault_disarm_all();
    if (failed == 0) {
      SHK_CHECK(rc == SHK_OK && second != NULL);
      shk_watch_free(second);
      break;
    }
    ++walked;
    fprintf(stderr, "put-back call %u failing: %s\n", nth, shk_error_name(rc));
    SHK_CHECK(rc == SHK_EOS);
    SHK_CHECK(raw == SHK_FAULT_RAW);
    SHK_CHECK(second == NULL);
    SHK_CHECK(program_handlers_in_place());
    shk_fault_world after = shk_fault_world_now();
    SHK_CHECK(memcmp(&before, &after, sizeof before) == 0);
  }
#ifndef _WIN32
  SHK_CHECK(walked == 2);
  SHK_CHECK(ours_in_place());
#else
  SHK_CHECK(walked == 0);
#endif
  /* The first watcher works again: its region's write faults reach the hook. */
  int line = write_is_seen(w, pg.p + 150);
  if (line) return line;
  SHK_CHECK(shk_watch_remove(w, id) == SHK_OK);
  shk_watch_free(w);
  SHK_CHECK(pages_open(&pg) == 0);
  shk_watch_pages_free(pg.p, pg.size);
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(watch_add_fails_cleanly_when_its_fault_handler_cannot_be_installed),
    cmocka_unit_test(watch_add_fails_cleanly_when_every_fault_handler_installation_fails),
    cmocka_unit_test(watch_create_fails_cleanly_when_its_fault_handler_cannot_be_put_back),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(watch_add_fails_cleanly_when_its_fault_handler_cannot_be_installed),
    SHK_TEST_CHILD(watch_add_fails_cleanly_when_every_fault_handler_installation_fails),
    SHK_TEST_CHILD(watch_create_fails_cleanly_when_its_fault_handler_cannot_be_put_back),
};

SHK_TEST_MAIN(tests, children)
