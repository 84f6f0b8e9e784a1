/* bench_watch: the cost of the first write to a watched page for each backend, beside a bare
 * protect + fault + unprotect cycle measured in this same run; writes to unwatched memory with
 * and without a watcher; and events per second through the fault ring and the worker. */
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
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
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
