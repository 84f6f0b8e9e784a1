/* What stays of the fault hook after the last watcher is freed: a write fault on its way to the
 * handler while the watcher goes is retried, not turned into a crash, and real crashes still
 * reach a handler the program installs afterwards (once, without looping when that handler
 * chains back to ours). Everything that faults runs in a child process with a timeout. */
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
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#define CHILD_TIMEOUT_MS 60000

/* ---- freeing the last watcher while its pages are being written ---------------------------- */

/* The race is rare (a fault raised, then its thread preempted before the handler ran, just as
 * the last watcher goes): the protection backend, whose hook it is, is given the longest run. */
enum { WRITERS = 4, HOOK_RUN_MS = 6000, OTHER_RUN_MS = 1000, FREE_PAGES = 8 };

typedef struct writing {
  volatile unsigned char *base;
  size_t size;
  atomic_int stop;
} writing;

typedef struct writer {
  writing *wr;
  size_t byte; /* each writer its own byte of every 64: no race between the writers */
} writer;

static void write_main(void *p) {
  const writer *me = p;
  writing *wr = me->wr;
  unsigned v = 0;
  while (!atomic_load(&wr->stop))
    for (size_t off = me->byte; off < wr->size; off += 64) wr->base[off] = (unsigned char)++v;
}

/* A write fault may be on its way to the handler when the last watcher is freed (the thread
 * faulted, then was preempted before the handler ran): the handler must still be there to let
 * it retry its write, which the freed watcher no longer stops. */
static int child_free_while_writing(int argc, char **argv) {
  (void)argc;
  writing wr;
  wr.size = FREE_PAGES * shk_test_page_size();
  atomic_init(&wr.stop, 0);
  void *base = NULL;
  SHK_CHECK(shk_watch_pages_alloc(wr.size, &base) == SHK_OK);
  wr.base = base;
  shk_test_thread th[WRITERS];
  writer me[WRITERS];
  for (int i = 0; i < WRITERS; i++) {
    me[i].wr = &wr;
    me[i].byte = (size_t)i;
    SHK_CHECK(shk_test_thread_start(&th[i], write_main, &me[i]) == 0);
  }
  bool hooked = atoi(argv[0]) == SHK_WATCH_MPROTECT;
  uint64_t end = shk_test_now_ms() + (hooked ? HOOK_RUN_MS : OTHER_RUN_MS);
  unsigned rounds = 0;
  while (shk_test_now_ms() < end) {
    shk_watcher *w = shk_test_watcher_from_arg(argv[0]);
    SHK_CHECK(w);
    for (size_t p = 0; p < FREE_PAGES; p++) {
      uint32_t id;
      SHK_CHECK(shk_watch_add(w, (unsigned char *)base + p * shk_test_page_size(), 64, "page", &id) ==
                SHK_OK);
    }
    shk_watch_free(w);
    rounds++;
  }
  atomic_store(&wr.stop, 1);
  for (int i = 0; i < WRITERS; i++) shk_test_thread_join(&th[i]);
  printf("    %u watchers freed while written\n", rounds);
  shk_watch_pages_free(base, wr.size);
  return 0;
}

static void freeing_the_last_watcher_while_its_pages_are_written_never_kills_a_writer(
    void **state) {
  (void)state;
  shk_test_run_child_on_every_backend("free_while_writing", CHILD_TIMEOUT_MS);
}

/* ---- a handler the program installs after the last watcher is freed ------------------------ */

/* The program's handler exits with GOT_IT once whatever it chained to has returned, and with
 * LOOPED when it is entered a second time for the same crash (a chain that came back round). */
enum { GOT_IT = 41, LOOPED = 42 };

#ifdef _WIN32
static LONG CALLBACK program_handler(EXCEPTION_POINTERS *ep) {
  if (ep->ExceptionRecord->ExceptionCode == EXCEPTION_ACCESS_VIOLATION) ExitProcess(GOT_IT);
  return EXCEPTION_CONTINUE_SEARCH;
}

static int install_program_handler(void) {
  return AddVectoredExceptionHandler(1, program_handler) ? 0 : -1;
}

static unsigned char *read_only_page(void) {
  return VirtualAlloc(NULL, shk_test_page_size(), MEM_RESERVE | MEM_COMMIT, PAGE_READONLY);
}
#else
static struct sigaction program_prev;
static volatile sig_atomic_t program_calls;

/* Chains to the handler it replaced, as a handler installed over shmkit's must. */
static void program_handler(int sig, siginfo_t *info, void *ctx) {
  if (++program_calls > 1) _exit(LOOPED);
  if ((program_prev.sa_flags & SA_SIGINFO) && program_prev.sa_sigaction)
    program_prev.sa_sigaction(sig, info, ctx);
  else if (!(program_prev.sa_flags & SA_SIGINFO) && program_prev.sa_handler != SIG_DFL &&
           program_prev.sa_handler != SIG_IGN)
    program_prev.sa_handler(sig);
  _exit(GOT_IT);
}

static int install_program_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = program_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  return sigaction(SIGSEGV, &sa, &program_prev);
}

static unsigned char *read_only_page(void) {
  void *p = mmap(NULL, shk_test_page_size(), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}
#endif

/* Watches a page through a watcher of backend arg, writes it and frees the watcher. */
static int watch_once(const char *arg) {
  unsigned char *p = NULL;
  SHK_CHECK(shk_watch_pages_alloc(shk_test_page_size(), (void **)&p) == SHK_OK);
  shk_watcher *w = shk_test_watcher_from_arg(arg);
  SHK_CHECK(w);
  uint32_t id;
  SHK_CHECK(shk_watch_add(w, p, 64, "page", &id) == SHK_OK);
  ((volatile unsigned char *)p)[8] = 1; /* a watched write: the hook is live */
  shk_watch_free(w);
  shk_watch_pages_free(p, shk_test_page_size());
  return 0;
}

/* argv: the backend ("-1": no watcher at all), then "after" (the program's handler installed
 * after the last watcher was freed) or "again" (and another watcher made and freed after it,
 * which puts shmkit's hook back on top of the program's: a chain that comes back round). */
static int child_program_handler(int argc, char **argv) {
  (void)argc;
  unsigned char *ro = read_only_page();
  SHK_CHECK(ro);
  bool watched = atoi(argv[0]) >= 0;
  if (watched) SHK_CHECK(watch_once(argv[0]) == 0);
  SHK_CHECK(install_program_handler() == 0);
  if (watched && strcmp(argv[1], "again") == 0) SHK_CHECK(watch_once(argv[0]) == 0);
  ((volatile unsigned char *)ro)[0] = 42; /* a real crash */
  return 3;
}

static shk_test_exit run_program_handler(const char *backend, const char *mode) {
  const char *args[] = {backend, mode};
  shk_test_proc proc;
  assert_int_equal(shk_test_spawn("program_handler", 2, args, &proc), 0);
  shk_test_exit e = shk_test_wait(&proc, CHILD_TIMEOUT_MS);
  printf("    backend %s, %s: %s %d\n", backend, mode,
         e.timed_out ? "hung" : e.killed ? "killed by" : "exited with", e.code);
  assert_int_equal(e.timed_out, 0);
  return e;
}

static void a_handler_installed_after_the_last_watcher_was_freed_gets_real_crashes(
    void **state) {
  (void)state;
  /* Without shmkit: the program's handler, then what it chained to (the default action, or a
   * sanitizer's report), decides how the child ends. */
  shk_test_exit plain = run_program_handler("-1", "after");
  char args[8][8];
  size_t n = shk_test_usable_backends(args, 8);
  for (size_t i = 0; i < n; i++) {
    shk_test_exit after = run_program_handler(args[i], "after");
    assert_int_equal(after.killed, plain.killed);
    assert_int_equal(after.code, plain.code);
    /* With the protection backend, our hook is on top again, chaining to the program's
     * handler, which chains back to ours: passed on once, then the default action, which
     * returns to the program's handler. The other backends install no hook. */
    shk_test_exit again = run_program_handler(args[i], "again");
    bool hooked = atoi(args[i]) == SHK_WATCH_MPROTECT;
    assert_int_equal(again.killed, hooked ? 0 : plain.killed);
    assert_int_equal(again.code, hooked ? GOT_IT : plain.code);
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(freeing_the_last_watcher_while_its_pages_are_written_never_kills_a_writer),
    cmocka_unit_test(a_handler_installed_after_the_last_watcher_was_freed_gets_real_crashes),
};

static const shk_test_child children[] = {
    {"free_while_writing", child_free_while_writing},
    {"program_handler", child_program_handler},
};

SHK_TEST_MAIN(tests, children)
