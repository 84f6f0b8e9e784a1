/* What the watcher's tests share: the page size and a millisecond clock read without shmkit,
 * watchers made from a child's backend argument, the list of backends usable here, and a child run
 * on each of them.
 * Header-only (static inline), like shk_test_thread.h. */
#ifndef SHMKIT_SHK_TEST_WATCH_H
#define SHMKIT_SHK_TEST_WATCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <time.h>
#include <unistd.h>
#endif

static inline size_t shk_test_page_size(void) {
#ifdef _WIN32
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  return si.dwPageSize;
#else
  return (size_t)sysconf(_SC_PAGESIZE);
#endif
}

/* A monotonic clock in milliseconds. */
static inline uint64_t shk_test_now_ms(void) {
#ifdef _WIN32
  return GetTickCount64();
#else
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
#endif
}

/* A watcher of backend "<number>" ("<number>s": userfaultfd's sync mode); NULL on failure. */
static inline shk_watcher *shk_test_watcher_from_arg(const char *arg) {
  shk_watch_options o;
  shk_watch_options_init(&o);
  o.backend = (shk_watch_backend)atoi(arg);
  o.userfaultfd_sync = strchr(arg, 's') != NULL;
  shk_watcher *w = NULL;
  return shk_watch_create(&o, &w) == SHK_OK ? w : NULL;
}

/* The backends (and modes) usable here, as child arguments for shk_test_watcher_from_arg(); how
 * many were written to args (at most max). */
static inline size_t shk_test_usable_backends(char args[][8], size_t max) {
  size_t n = 0;
  for (int b = 1; b < SHK_WATCH_BACKEND_COUNT && n < max; b++) {
    if (!shk_watch_backend_available((shk_watch_backend)b)) continue;
    snprintf(args[n++], 8, "%d", b);
    if (b == SHK_WATCH_USERFAULTFD && n < max) snprintf(args[n++], 8, "%ds", b);
  }
  return n;
}

/* Runs child routine `name` once on each backend of shk_test_usable_backends() (as its argument),
 * each within timeout_ms, asserting that it exits with 0. */
static inline void shk_test_run_child_on_every_backend(const char *name, int timeout_ms) {
  char args[8][8];
  size_t n = shk_test_usable_backends(args, 8);
  for (size_t i = 0; i < n; i++) {
    printf("    backend %s\n", args[i]);
    const char *a[] = {args[i]};
    shk_test_run_child_ok(name, 1, a, timeout_ms);
  }
}

#endif
