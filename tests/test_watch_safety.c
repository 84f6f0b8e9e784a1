/* The watcher must never break the program it watches: faults racing with add/remove are
 * retried, faults it cannot resolve (an instruction fetch) crash as without shmkit, read-only
 * memory stays read-only, unmapped memory is refused with SHK_EFAULT and nothing changes.
 * Everything that may fault or hang runs in a child process with a timeout. */
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
#include <sys/mman.h>
#include <unistd.h>
#endif

#define CHILD_TIMEOUT_MS 60000

/* Plain OS memory with a given access, made without shmkit. */
static void *os_map(size_t size, bool writable) {
#ifdef _WIN32
  return VirtualAlloc(NULL, size, MEM_RESERVE | MEM_COMMIT, writable ? PAGE_READWRITE : PAGE_READONLY);
#else
  void *p = mmap(NULL, size, writable ? PROT_READ | PROT_WRITE : PROT_READ,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
#endif
}

static void os_unmap(void *p, size_t size) {
#ifdef _WIN32
  (void)size;
  VirtualFree(p, 0, MEM_RELEASE);
#else
  munmap(p, size);
#endif
}

/* Address space with no memory behind it: on Windows reserved and never committed (so nothing
 * else can be placed there meanwhile); on POSIX mapped, then given back. */
static void *os_hole(size_t size) {
#ifdef _WIN32
  return VirtualAlloc(NULL, size, MEM_RESERVE, PAGE_NOACCESS);
#else
  void *p = os_map(size, true);
  if (p) os_unmap(p, size);
  return p;
#endif
}

/* Whether the page at p has memory behind it now (an allocator, ASan's for one, may have mapped
 * into a POSIX hole after it was made: an add that succeeds there is then right). */
static bool os_mapped(void *p) {
#ifdef _WIN32
  MEMORY_BASIC_INFORMATION info;
  return VirtualQuery(p, &info, sizeof info) == sizeof info && info.State == MEM_COMMIT;
#else
  size_t ps = shk_test_page_size();
  unsigned char in_core;
  return mincore((void *)((uintptr_t)p & ~(uintptr_t)(ps - 1)), ps, &in_core) == 0;
#endif
}

/* Two pages: the first read-write, the second without memory. */
static unsigned char *os_half(size_t ps) {
#ifdef _WIN32
  unsigned char *p = VirtualAlloc(NULL, 2 * ps, MEM_RESERVE, PAGE_NOACCESS);
  if (p && !VirtualAlloc(p, ps, MEM_COMMIT, PAGE_READWRITE)) return NULL;
  return p;
#else
  unsigned char *p = os_map(2 * ps, true);
  if (p) os_unmap(p + ps, ps);
  return p;
#endif
}

static shk_watcher *make(shk_watch_backend b, bool sync) {
  shk_watch_options o;
  shk_watch_options_init(&o);
  o.backend = b;
  o.userfaultfd_sync = sync;
  shk_watcher *w = NULL;
  return shk_watch_create(&o, &w) == SHK_OK ? w : NULL;
}

/* A crash in a child, compared with the same crash in a child without any watcher: under a
 * sanitizer that catches SIGSEGV the "crash" is its report and exit code, the same in both. */
static void crashes_as_without_shmkit(const char *child, const char *backend) {
  const char *plain_args[] = {"-1"}, *args[] = {backend};
  shk_test_proc proc;
  assert_int_equal(shk_test_spawn(child, 1, plain_args, &proc), 0);
  shk_test_exit plain = shk_test_wait(&proc, CHILD_TIMEOUT_MS);
  assert_int_equal(shk_test_spawn(child, 1, args, &proc), 0);
  shk_test_exit watched = shk_test_wait(&proc, CHILD_TIMEOUT_MS);
  printf("    backend %s: %s %d (without shmkit: %s %d)\n", backend,
         watched.timed_out ? "hung" : watched.killed ? "killed by" : "exited with", watched.code,
         plain.killed ? "killed by" : "exited with", plain.code);
  assert_int_equal(plain.timed_out, 0);
  assert_int_equal(watched.timed_out, 0); /* no fault loop */
  assert_int_equal(watched.killed, plain.killed);
  assert_int_equal(watched.code, plain.code);
  if (plain.killed) assert_int_equal(watched.code, shk_test_access_violation_code());
}

/* ---- defect 1: adding and removing while another thread writes ----------------------------- */

enum { CHURNERS = 3, PAGES_EACH = 4, RUN_MS = 3000 };

typedef struct churn {
  shk_watcher *w;
  unsigned char *base; /* CHURNERS * PAGES_EACH pages */
  size_t page;
  atomic_int stop;
  atomic_int failures;
} churn;

typedef struct churner {
  churn *c;
  int index;
} churner;

static void churn_body(churner *t) {
  churn *c = t->c;
  unsigned char *mine = c->base + (size_t)t->index * PAGES_EACH * c->page;
  unsigned n = 0;
  while (!atomic_load(&c->stop)) {
    uint32_t id;
    unsigned char *at = mine + (n % PAGES_EACH) * c->page + (n % 7) * 64;
    if (shk_watch_add(c->w, at, 64, "churn", &id) != SHK_OK ||
        shk_watch_remove(c->w, id) != SHK_OK)
      atomic_fetch_add(&c->failures, 1);
    n++;
  }
}

static void churn_main(void *p) { churn_body(p); }

static int child_churn(int argc, char **argv) {
  (void)argc;
  churn c;
  memset(&c, 0, sizeof c);
  atomic_init(&c.stop, 0);
  atomic_init(&c.failures, 0);
  c.page = shk_test_page_size();
  c.w = shk_test_watcher_from_arg(argv[0]);
  if (!c.w) return 2;
  size_t size = CHURNERS * PAGES_EACH * c.page;
  if (shk_watch_pages_alloc(size, (void **)&c.base) != SHK_OK) return 3;
  churner t[CHURNERS];
  shk_test_thread th[CHURNERS];
  for (int i = 0; i < CHURNERS; i++) {
    t[i].c = &c;
    t[i].index = i;
    if (shk_test_thread_start(&th[i], churn_main, &t[i]) != 0) return 4;
  }
  /* The writer: every 64-byte slot of every page, over and over. */
  uint64_t end = shk_test_now_ms() + RUN_MS;
  unsigned v = 0;
  while (shk_test_now_ms() < end)
    for (size_t off = 0; off < size; off += 64) ((volatile unsigned char *)c.base)[off] = (unsigned char)++v;
  atomic_store(&c.stop, 1);
  for (int i = 0; i < CHURNERS; i++) shk_test_thread_join(&th[i]);
  shk_watch_free(c.w);
  shk_watch_pages_free(c.base, size);
  return atomic_load(&c.failures) ? 5 : 0;
}

static void adding_and_removing_while_another_thread_writes_never_crashes_it(void **state) {
  (void)state;
  shk_test_run_child_on_every_backend("churn", CHILD_TIMEOUT_MS);
}

/* ---- defect 2: an instruction fetch from a watched page ------------------------------------ */

static int child_jump(int argc, char **argv) {
  (void)argc;
  size_t ps = shk_test_page_size();
  unsigned char *p = NULL;
  if (shk_watch_pages_alloc(ps, (void **)&p) != SHK_OK) return 2;
  memset(p, 0xC3, ps); /* "ret" on x86: harmless if the page ever were executable */
  shk_watcher *w = NULL;
  if (atoi(argv[0]) >= 0) {
    w = shk_test_watcher_from_arg(argv[0]);
    uint32_t id;
    if (!w || shk_watch_add(w, p, 64, "code", &id) != SHK_OK) return 3;
    p[1] = 0xC3; /* a watched write first: the hook is live */
  }
  void (*fn)(void);
  memcpy(&fn, &p, sizeof fn);
  fn(); /* data pages are not executable: this faults, and nobody can resolve it */
  return 0;
}

static void a_jump_into_a_watched_page_crashes_as_without_shmkit(void **state) {
  (void)state;
  char args[8][8];
  size_t n = shk_test_usable_backends(args, 8);
  for (size_t i = 0; i < n; i++) crashes_as_without_shmkit("jump", args[i]);
}

/* ---- defect 3: read-only memory stays read-only ------------------------------------------- */

static const unsigned char const_table[64 * 1024] = {1, 2, 3};

/* The read-only memory of a child: "const" (a static const array) or "pages" (read-only pages
 * mapped by the test). */
static unsigned char *read_only(const char *which) {
  if (strcmp(which, "const") == 0) return (unsigned char *)(uintptr_t)const_table + 8192;
  return os_map(shk_test_page_size(), false);
}

static int child_read_only(int argc, char **argv) {
  (void)argc;
  unsigned char *p = read_only(argv[1]);
  if (!p) return 2;
  if (atoi(argv[0]) >= 0) {
    shk_watcher *w = shk_test_watcher_from_arg(argv[0]);
    if (!w) return 3;
    uint32_t id;
    int rc = shk_watch_add(w, p, 16, "ro", &id);
    if (rc == SHK_OK) shk_watch_remove(w, id);
    else if (rc != SHK_EACCES) return 4;
    shk_watch_free(w);
  }
  ((volatile unsigned char *)p)[0] = 42; /* must fault as it would without shmkit */
  return 0;
}

static void read_only_memory_stays_read_only(void **state) {
  (void)state;
  char args[8][8];
  size_t n = shk_test_usable_backends(args, 7);
  snprintf(args[n++], 8, "%d", SHK_WATCH_AUTO);
  static const char *const kinds[] = {"const", "pages"};
  for (size_t k = 0; k < 2; k++) {
    for (size_t i = 0; i < n; i++) {
      printf("    %s memory,", kinds[k]);
      const char *plain[] = {"-1", kinds[k]}, *a[] = {args[i], kinds[k]};
      shk_test_proc proc;
      assert_int_equal(shk_test_spawn("read_only", 2, plain, &proc), 0);
      shk_test_exit ref = shk_test_wait(&proc, CHILD_TIMEOUT_MS);
      assert_int_equal(shk_test_spawn("read_only", 2, a, &proc), 0);
      shk_test_exit got = shk_test_wait(&proc, CHILD_TIMEOUT_MS);
      printf(" backend %s: %s %d (without shmkit %d)\n", args[i], got.killed ? "killed by" : "exit",
             got.code, ref.code);
      assert_int_equal(got.timed_out, 0);
      assert_int_equal(got.killed, ref.killed);
      assert_int_equal(got.code, ref.code);
    }
  }
}

/* Protection backends refuse read-only memory with SHK_EACCES; poll watches it (it changes no
 * protection), and so does auto, by putting it on poll. */
static void read_only_memory_is_refused_by_protection_and_polled_by_auto(void **state) {
  (void)state;
  unsigned char *ro = os_map(shk_test_page_size(), false);
  assert_non_null(ro);
  unsigned char *cst = (unsigned char *)(uintptr_t)const_table + 4096;
  for (int b = 0; b < SHK_WATCH_BACKEND_COUNT; b++) {
    if (!shk_watch_backend_available((shk_watch_backend)b)) continue;
    shk_watcher *w = make((shk_watch_backend)b, false);
    assert_non_null(w);
    unsigned char *mem[] = {ro, cst};
    for (int m = 0; m < 2; m++) {
      uint32_t id = 0;
      int rc = shk_watch_add(w, mem[m], 32, "ro", &id);
      printf("    %s, %s memory: %s\n", shk_watch_backend_name((shk_watch_backend)b),
             m ? "const" : "read-only", shk_error_name(rc));
      if (b == SHK_WATCH_POLL || b == SHK_WATCH_AUTO) {
        assert_int_equal(rc, SHK_OK);
        shk_watch_backend used;
        assert_int_equal(shk_watch_region_backend(w, id, &used), SHK_OK);
        assert_int_equal(used, SHK_WATCH_POLL);
        assert_int_equal(shk_watch_remove(w, id), SHK_OK);
      } else {
        assert_int_equal(rc, SHK_EACCES);
        assert_int_equal(id, 0);
      }
    }
    shk_watch_stats st;
    assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
    assert_int_equal(st.regions, 0);
    shk_watch_free(w);
  }
  os_unmap(ro, shk_test_page_size());
}

/* ---- defect 4: unmapped memory -------------------------------------------------------------- */

/* In a child: before the fix an add of unmapped memory crashed inside shk_watch_add. Exit codes:
 * 0 all refused with SHK_EFAULT and nothing changed, 10+backend otherwise. */
static int child_unmapped(int argc, char **argv) {
  (void)argc;
  (void)argv;
  size_t ps = shk_test_page_size();
  for (int b = 0; b < SHK_WATCH_BACKEND_COUNT; b++) {
    if (!shk_watch_backend_available((shk_watch_backend)b)) continue;
    for (int sync = 0; sync < (b == SHK_WATCH_USERFAULTFD ? 2 : 1); sync++) {
      shk_watcher *w = make((shk_watch_backend)b, sync);
      if (!w) return 3;
      /* Made after the watcher's own allocations, which might otherwise land in the hole; an
       * allocation inside the add can still fill it: then the hole is made again. */
      unsigned char *hole = NULL;
      int rc1 = SHK_OK;
      uint32_t id = 7;
      for (int attempt = 0; attempt < 5; attempt++) {
        hole = os_hole(4 * ps);
        if (!hole) return 2;
        id = 7;
        rc1 = shk_watch_add(w, hole + 100, 64, "hole", &id);
        if (rc1 != SHK_OK || !os_mapped(hole + 100)) break;
        printf("    (the hole was mapped by someone else during the add: again)\n");
        shk_watch_remove(w, id);
      }
      uint32_t id1 = id;
      /* A region whose first page is mapped and whose second is not. */
      unsigned char *half = os_half(ps);
      if (!half) return 2;
      int rc2 = shk_watch_add(w, half + ps - 32, 64, "half", &id);
      printf("    %s%s: %s, %s\n", shk_watch_backend_name((shk_watch_backend)b),
             sync ? " sync" : "", shk_error_name(rc1), shk_error_name(rc2));
      fflush(stdout);
      shk_watch_stats st;
      if (rc1 != SHK_EFAULT || rc2 != SHK_EFAULT || id1 != 0 || id != 0 ||
          shk_watch_stats_get(w, &st) != SHK_OK || st.regions != 0)
        return 10 + b;
      shk_watch_free(w);
      /* Nothing changed: the mapped half is still plain writable memory. */
      half[0] = 1;
      half[ps - 1] = 2;
      os_unmap(half, ps);
#ifdef _WIN32
      os_unmap(hole, 4 * ps);
#endif
    }
  }
  return 0;
}

static void unmapped_memory_is_refused_with_efault_on_every_backend(void **state) {
  (void)state;
  shk_test_run_child_ok("unmapped", 0, NULL, CHILD_TIMEOUT_MS);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(adding_and_removing_while_another_thread_writes_never_crashes_it),
    cmocka_unit_test(a_jump_into_a_watched_page_crashes_as_without_shmkit),
    cmocka_unit_test(read_only_memory_stays_read_only),
    cmocka_unit_test(read_only_memory_is_refused_by_protection_and_polled_by_auto),
    cmocka_unit_test(unmapped_memory_is_refused_with_efault_on_every_backend),
};

static const shk_test_child children[] = {
    {"churn", child_churn},
    {"jump", child_jump},
    {"read_only", child_read_only},
    {"unmapped", child_unmapped},
};

SHK_TEST_MAIN(tests, children)
