/* bench_watch: the cost of the first write to a watched page for each backend, beside a bare
 * protect + fault + unprotect cycle measured in this same run; the cost of adding scattered
 * one-page regions, beside the bare system calls an add needs (ask the page's protection, then
 * protect it / register it for write-protect); writes to unwatched memory with and without a
 * watcher; and events per second through the fault ring and the worker. */
#if !defined(_WIN32) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "shmkit.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#endif
#if defined(__linux__) && __has_include(<linux/userfaultfd.h>)
#include <linux/userfaultfd.h>
#include <sys/syscall.h>
#define BENCH_UFFD 1
#endif

#ifdef _WIN32
#define PAGE ((size_t)4096)
#else
static size_t bench_page = 4096; /* the system's page, set first in main (16 KiB on Apple M1+) */
#define PAGE bench_page
#endif
static size_t pages_n = 16384; /* 64 MiB */


/* ---- the bare mechanism: protect, write, fault, unprotect in our own handler ---------------- */

#ifdef _WIN32
static void set_prot(void *p, size_t n, int writable) {
  DWORD old;
  VirtualProtect(p, n, writable ? PAGE_READWRITE : PAGE_READONLY, &old);
}
static LONG CALLBACK bare_handler(EXCEPTION_POINTERS *ep) {
  const EXCEPTION_RECORD *er = ep->ExceptionRecord;
  if (er->ExceptionCode != EXCEPTION_ACCESS_VIOLATION) return EXCEPTION_CONTINUE_SEARCH;
  uintptr_t a = (uintptr_t)er->ExceptionInformation[1] & ~(uintptr_t)(PAGE - 1);
  set_prot((void *)a, PAGE, 1);
  return EXCEPTION_CONTINUE_EXECUTION;
}
static PVOID bare_h;
static void bare_install(void) { bare_h = AddVectoredExceptionHandler(1, bare_handler); }
static void bare_remove(void) { RemoveVectoredExceptionHandler(bare_h); }
#else
static void set_prot(void *p, size_t n, int writable) {
  mprotect(p, n, writable ? PROT_READ | PROT_WRITE : PROT_READ);
}
static void bare_handler(int sig, siginfo_t *info, void *ctx) {
  (void)sig;
  (void)ctx;
  uintptr_t a = (uintptr_t)info->si_addr & ~(uintptr_t)(PAGE - 1);
  set_prot((void *)a, PAGE, 1);
}
static struct sigaction bare_prev, bare_prev_bus;
static void bare_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = bare_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &bare_prev);
  sigaction(SIGBUS, &sa, &bare_prev_bus); /* what macOS raises for a protection fault */
}
static void bare_remove(void) {
  sigaction(SIGSEGV, &bare_prev, NULL);
  sigaction(SIGBUS, &bare_prev_bus, NULL);
}
#endif

static unsigned char *alloc_touched(size_t size) {
  void *p = NULL;
  if (shk_watch_pages_alloc(size, &p) != SHK_OK) {
    fprintf(stderr, "cannot allocate %zu bytes\n", size);
    exit(1);
  }
  memset(p, 1, size);
  return p;
}

static void write_each_page(unsigned char *buf, size_t pages, unsigned char v) {
  for (size_t i = 0; i < pages; i++) ((volatile unsigned char *)buf)[i * PAGE] = v;
}

/* ns per page: bulk protect, then the first write to each page faults once. */
static double bare_bulk(unsigned char *buf) {
  bare_install();
  set_prot(buf, pages_n * PAGE, 0);
  double t0 = bench_now_ns();
  write_each_page(buf, pages_n, 2);
  double t = (bench_now_ns() - t0) / (double)pages_n;
  bare_remove();
  set_prot(buf, pages_n * PAGE, 1);
  return t;
}

/* ns per page: protect one page, write it, fault, unprotect; page after page. */
static double bare_cycle(unsigned char *buf) {
  bare_install();
  double t0 = bench_now_ns();
  for (size_t i = 0; i < pages_n; i++) {
    set_prot(buf + i * PAGE, PAGE, 0);
    ((volatile unsigned char *)buf)[i * PAGE] = 3;
  }
  double t = (bench_now_ns() - t0) / (double)pages_n;
  bare_remove();
  set_prot(buf, pages_n * PAGE, 1);
  return t;
}

/* ---- the bare system calls of an add: what the page allows, then protect or register it ----- */

#ifdef _WIN32
static int bare_query(void *p) {
  MEMORY_BASIC_INFORMATION mbi;
  return VirtualQuery(p, &mbi, sizeof mbi) != 0 && mbi.Protect == PAGE_READWRITE ? 0 : -1;
}
#elif defined(__linux__)
struct bench_procmap_query {
  unsigned long long size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size,
      vma_offset, inode;
  unsigned dev_major, dev_minor, vma_name_size, build_id_size;
  unsigned long long vma_name_addr, build_id_addr;
};
static int maps_fd = -1;
static int bare_query(void *p) {
  if (maps_fd < 0) maps_fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  struct bench_procmap_query q;
  memset(&q, 0, sizeof q);
  q.size = sizeof q;
  q.query_addr = (uintptr_t)p;
  return ioctl(maps_fd, _IOWR('f', 17, struct bench_procmap_query), &q) == 0 && (q.vma_flags & 2) ? 0 : -1;
}
#else
static int bare_query(void *p) {
  (void)p;
  return 0;
}
#endif

/* ns per page: query + protect, every other page of buf (scattered, so each splits areas),
 * then the same pages opened again (not timed). */
static double bare_add_protect(unsigned char *buf, size_t n) {
  double t0 = bench_now_ns();
  for (size_t i = 0; i < n; i++) {
    bare_query(buf + 2 * i * PAGE);
    set_prot(buf + 2 * i * PAGE, PAGE, 0);
  }
  double t = (bench_now_ns() - t0) / (double)n;
  set_prot(buf, 2 * n * PAGE, 1);
  return t;
}

#ifdef BENCH_UFFD
/* ns per page: query + UFFDIO_REGISTER + UFFDIO_WRITEPROTECT (async mode, as shmkit's default). */
static double bare_add_uffd(unsigned char *buf, size_t n) {
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | 1 /* USER_MODE_ONLY */);
  if (fd < 0) return -1;
  struct uffdio_api api;
  memset(&api, 0, sizeof api);
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP | (1u << 13) | (1u << 15); /* UNPOPULATED, ASYNC */
  if (ioctl(fd, UFFDIO_API, &api) != 0) {
    close(fd);
    return -1;
  }
  double t0 = bench_now_ns();
  for (size_t i = 0; i < n; i++) {
    unsigned char *p = buf + 2 * i * PAGE;
    bare_query(p);
    struct uffdio_register reg;
    memset(&reg, 0, sizeof reg);
    reg.range.start = (uintptr_t)p;
    reg.range.len = PAGE;
    reg.mode = UFFDIO_REGISTER_MODE_WP;
    struct uffdio_writeprotect wp;
    memset(&wp, 0, sizeof wp);
    wp.range = reg.range;
    wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
    if (ioctl(fd, UFFDIO_REGISTER, &reg) != 0 || ioctl(fd, UFFDIO_WRITEPROTECT, &wp) != 0) break;
  }
  double t = (bench_now_ns() - t0) / (double)n;
  close(fd); /* unregisters everything */
  return t;
}
#endif

/* ---- shmkit ------------------------------------------------------------------------------ */

/* The variants measured: each backend, and userfaultfd's sync mode apart. */
typedef struct variant {
  shk_watch_backend backend;
  bool sync;
  const char *label;
} variant;

static const variant variants[] = {
    {SHK_WATCH_MPROTECT, false, "mprotect"},       {SHK_WATCH_USERFAULTFD, false, "userfaultfd"},
    {SHK_WATCH_USERFAULTFD, true, "userfaultfd sync"}, {SHK_WATCH_WRITE_WATCH, false, "write-watch"},
    {SHK_WATCH_POLL, false, "poll"}};
#define VARIANTS (sizeof variants / sizeof variants[0])

static bool sync_mode;

static shk_watcher *make(shk_watch_backend b, uint32_t window_ms) {
  shk_watch_options o;
  shk_watch_options_init(&o);
  o.backend = b;
  o.userfaultfd_sync = sync_mode;
  o.coalesce_ms = window_ms;
  o.poll_interval_ms = 1000;
  o.resolve_symbols = false;
  shk_watcher *w = NULL;
  if (shk_watch_create(&o, &w) != SHK_OK) return NULL;
  return w;
}

/* ns per page for the first write to each page of one watched region. */
static double first_write(shk_watch_backend b, unsigned char *buf, double *add_ms) {
  shk_watcher *w = make(b, 1000);
  if (!w) return -1;
  uint32_t id;
  double t0 = bench_now_ns();
  if (shk_watch_add(w, buf, pages_n * PAGE, "bench", &id) != SHK_OK) {
    shk_watch_free(w);
    return -1;
  }
  *add_ms = (bench_now_ns() - t0) / 1e6;
  t0 = bench_now_ns();
  write_each_page(buf, pages_n, 4);
  double t = (bench_now_ns() - t0) / (double)pages_n;
  shk_watch_free(w);
  return t;
}

/* Writes to memory nobody watches, without and with a busy watcher elsewhere: ns per MiB, best
 * of several phases that alternate between no watcher at all and a running one. */
static double memset_best(unsigned char *plain, size_t size, unsigned char *other, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    if (other) write_each_page(other, 64, (unsigned char)r); /* keep the worker busy */
    double t0 = bench_now_ns();
    memset(plain, r, size);
    double t = bench_now_ns() - t0;
    if (t < best) best = t;
  }
  return best / (double)(size >> 20);
}

static void unwatched(double *without, double *with) {
  size_t size = (size_t)64 << 20;
  unsigned char *plain = alloc_touched(size);
  unsigned char *other = alloc_touched(64 * PAGE);
  *without = *with = 1e30;
  for (int phase = 0; phase < 8; phase++) {
    double t = memset_best(plain, size, NULL, 5);
    if (t < *without) *without = t;
    shk_watcher *w = make(SHK_WATCH_AUTO, 5);
    uint32_t id;
    shk_watch_add(w, other, 64 * PAGE, "other", &id);
    t = memset_best(plain, size, other, 5);
    if (t < *with) *with = t;
    shk_watch_free(w);
  }
  shk_watch_pages_free(plain, size);
  shk_watch_pages_free(other, 64 * PAGE);
}

/* ns per region: n one-page regions on every other page of buf; also the time for all of them. */
static double shmkit_add(shk_watch_backend b, unsigned char *buf, size_t n, double *total_ms) {
  shk_watcher *w = make(b, 5);
  if (!w) return -1;
  double t0 = bench_now_ns();
  for (size_t i = 0; i < n; i++) {
    uint32_t id;
    if (shk_watch_add(w, buf + 2 * i * PAGE, 64, NULL, &id) != SHK_OK) {
      shk_watch_free(w);
      return -1;
    }
  }
  double t = bench_now_ns() - t0;
  *total_ms = t / 1e6;
  shk_watch_free(w);
  return t / (double)n;
}

/* Adding `n` scattered regions: shmkit beside the bare calls, best of three, in turns. */
static void adds(size_t n) {
  unsigned char *buf = alloc_touched(2 * n * PAGE);
  double raw_p = 1e30, ours_p = 1e30, ours_auto = 1e30, ms_p = 0, ms_auto = 0, ms;
#ifdef BENCH_UFFD
  double raw_u = 1e30, ours_u = 1e30, ms_u = 0;
#endif
  for (int rep = 0; rep < 3; rep++) {
    double t = bare_add_protect(buf, n);
    if (t < raw_p) raw_p = t;
    t = shmkit_add(SHK_WATCH_MPROTECT, buf, n, &ms);
    if (t >= 0 && t < ours_p) ours_p = t, ms_p = ms;
#ifdef BENCH_UFFD
    t = bare_add_uffd(buf, n);
    if (t >= 0 && t < raw_u) raw_u = t;
    if (shk_watch_backend_available(SHK_WATCH_USERFAULTFD)) {
      t = shmkit_add(SHK_WATCH_USERFAULTFD, buf, n, &ms);
      if (t >= 0 && t < ours_u) ours_u = t, ms_u = ms;
    }
#endif
    t = shmkit_add(SHK_WATCH_AUTO, buf, n, &ms);
    if (t >= 0 && t < ours_auto) ours_auto = t, ms_auto = ms;
  }
  printf("\nadding %zu scattered one-page regions (every other page)\n", n);
  printf("%-44s %10.0f ns/region\n", "bare: ask protection + protect", raw_p);
  if (ours_p < 1e30)
    printf("%-44s %10.0f ns/region  %5.2fx bare  (all: %.0f ms)\n", "shmkit mprotect: shk_watch_add",
           ours_p, ours_p / raw_p, ms_p);
  else /* the bare row then counts refused calls too: use fewer regions */
    printf("%-44s %10s (past the memory-area budget: fewer regions)\n",
           "shmkit mprotect: shk_watch_add", "refused");
#ifdef BENCH_UFFD
  if (raw_u < 1e30 && ours_u < 1e30) {
    printf("%-44s %10.0f ns/region\n", "bare: ask protection + register + protect", raw_u);
    printf("%-44s %10.0f ns/region  %5.2fx bare  (all: %.0f ms)\n", "shmkit userfaultfd: shk_watch_add",
           ours_u, ours_u / raw_u, ms_u);
  }
#endif
  printf("%-44s %10.0f ns/region  (all: %.0f ms)\n", "shmkit auto (the default): shk_watch_add",
         ours_auto, ms_auto);
  shk_watch_pages_free(buf, 2 * n * PAGE);
}

static uint64_t events_seen;
static void count_event(const shk_watch_event *ev, void *user) {
  (void)ev;
  (void)user;
  events_seen++;
}

/* Events per second: 4096 one-page regions, each written every round, flushed every round. */
static double events_per_second(shk_watch_backend b, uint64_t *dropped, uint64_t *events) {
  enum { REGIONS = 4096, ROUNDS = 20 };
  unsigned char *buf = alloc_touched((size_t)REGIONS * PAGE);
  shk_watcher *w = make(b, 5);
  if (!w) return -1;
  shk_watch_set_callback(w, count_event, NULL);
  for (size_t i = 0; i < REGIONS; i++) {
    uint32_t id;
    if (shk_watch_add(w, buf + i * PAGE, 64, "r", &id) != SHK_OK) {
      shk_watch_free(w);
      return -1;
    }
  }
  events_seen = 0;
  double t0 = bench_now_ns();
  for (int r = 0; r < ROUNDS; r++) {
    write_each_page(buf, REGIONS, (unsigned char)(r + 10));
    shk_watch_flush(w);
  }
  double secs = (bench_now_ns() - t0) / 1e9;
  shk_watch_stats st;
  shk_watch_stats_get(w, &st);
  *dropped = st.events_dropped;
  *events = events_seen;
  shk_watch_free(w);
  shk_watch_pages_free(buf, (size_t)REGIONS * PAGE);
  return (double)events_seen / secs;
}

int main(int argc, char **argv) {
#ifndef _WIN32
  long sys_page = sysconf(_SC_PAGESIZE);
  if (sys_page > 0) bench_page = (size_t)sys_page;
#endif
  if (argc > 1) pages_n = (size_t)strtoul(argv[1], NULL, 10);
  if (pages_n < 64) pages_n = 64;
  /* Regions for the add figures: argv[2], default 20,000 (within the memory-area budget). */
  size_t add_n = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 20000;
  if (add_n < 16) add_n = 16;
  unsigned char *buf = alloc_touched(pages_n * PAGE);
  printf("bench_watch: %zu pages of %zu KiB, first write to each page\n\n", pages_n,
         (size_t)PAGE / 1024);
  /* Best of three runs each, alternating, so that machine noise (the machine is shared) hits
   * the bare mechanism and shmkit alike. */
  double bulk = 1e30, cycle = 1e30, best[VARIANTS], add_ms[VARIANTS];
  for (size_t v = 0; v < VARIANTS; v++) best[v] = 1e30;
  for (int rep = 0; rep < 3; rep++) {
    double t = bare_bulk(buf);
    if (t < bulk) bulk = t;
    t = bare_cycle(buf);
    if (t < cycle) cycle = t;
    for (size_t v = 0; v < VARIANTS; v++) {
      if (!shk_watch_backend_available(variants[v].backend)) continue;
      double ms = 0;
      sync_mode = variants[v].sync;
      t = first_write(variants[v].backend, buf, &ms);
      if (t >= 0 && t < best[v]) {
        best[v] = t;
        add_ms[v] = ms;
      }
    }
  }
  sync_mode = false;
  printf("%-44s %10.0f ns/page\n", "bare: bulk protect, fault, unprotect page", bulk);
  printf("%-44s %10.0f ns/page\n", "bare: protect page, write, fault, unprotect", cycle);
  for (size_t v = 0; v < VARIANTS; v++) {
    char label[64];
    snprintf(label, sizeof label, "shmkit %s: first write", variants[v].label);
    if (!shk_watch_backend_available(variants[v].backend)) {
      printf("%-44s %10s\n", label, "n/a here");
      continue;
    }
    if (best[v] >= 1e30) {
      printf("%-44s %10s\n", label, "failed");
      continue;
    }
    printf("%-44s %10.0f ns/page  %5.2fx bare bulk  (watch_add %.1f ms)\n", label, best[v],
           best[v] / bulk, add_ms[v]);
  }
  adds(add_n);
  double without = 0, with = 0;
  unwatched(&without, &with);
  printf("\n%-44s %10.0f ns/MiB\n", "memset of unwatched memory, no watcher", without);
  printf("%-44s %10.0f ns/MiB  %5.2fx\n", "... while a watcher runs", with, with / without);
  printf("\n");
  for (size_t v = 0; v < VARIANTS; v++) {
    if (!shk_watch_backend_available(variants[v].backend)) continue;
    uint64_t dropped = 0, events = 0;
    sync_mode = variants[v].sync;
    double eps = events_per_second(variants[v].backend, &dropped, &events);
    if (eps < 0) continue;
    printf("events through %-17s %10.0f events/s (%llu events, %llu dropped)  bare faults %.0f/s\n",
           variants[v].label, eps, (unsigned long long)events, (unsigned long long)dropped,
           1e9 / bulk);
  }
  shk_watch_pages_free(buf, pages_n * PAGE);
  return 0;
}
