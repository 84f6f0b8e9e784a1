/* The fault walk shared by tests/test_faults_*.c: fail the Nth call of one OS primitive under a
 * public call, for N = 1, 2, ... until the call no longer reaches it, and check after each
 * failure the code, the raw OS error, that nothing was left behind and that the call works
 * again. Header-only (static functions); for tests linked with the internal library built with
 * SHK_FAULT_INJECTION (src/os_faults.h). Run it in a child process (SHK_CHILD_TEST). */
#ifndef SHMKIT_SHK_TEST_FAULTS_H
#define SHMKIT_SHK_TEST_FAULTS_H

#include <stdio.h>
#include <string.h>

#include "common/internal.h"
#include "os_faults.h"
#include "shk_test.h"
#include "shmkit.h"

#if defined(__linux__)
#include <dirent.h>
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

/* The raw error a walk injects: one no primitive reports for a valid call, translated to
 * SHK_EOS by both backends (EIO; ERROR_GEN_FAILURE). */
#if defined(_WIN32)
#define SHK_FAULT_RAW 31
#else
#define SHK_FAULT_RAW 5
#endif

/* What the process holds that a failed call must not add to (Linux: descriptors, shared
 * mappings (segments), all mappings, segment names of this process, child processes;
 * elsewhere the counts stay 0). Under AddressSanitizer, whose allocator maps memory as it
 * goes, only shared mappings are counted. */
typedef struct shk_fault_world {
  int fds;
  int shared_maps;
  int maps;
  int names;
  int children;
} shk_fault_world;

#if defined(__SANITIZE_ADDRESS__)
#define SHK_FAULT_COUNT_ALL_MAPS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHK_FAULT_COUNT_ALL_MAPS 0
#endif
#endif
#ifndef SHK_FAULT_COUNT_ALL_MAPS
#define SHK_FAULT_COUNT_ALL_MAPS 1
#endif

#if defined(__linux__)
static int shk_fault_count_dir(const char *path) {
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1; /* the descriptor opendir holds */
}

/* Counts the lines of /proc/self/maps, and those of shared mappings (perms "...s"). */
static void shk_fault_count_maps(int *all, int *shared) {
  *all = *shared = 0;
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return;
  char line[512];
  bool at_start = true; /* a long line comes in pieces: only its first is looked at */
  while (fgets(line, sizeof line, f)) {
    if (at_start) {
      const char *perms = strchr(line, ' ');
      ++*all;
      if (perms && strlen(perms) > 4 && perms[4] == 's') ++*shared;
    }
    at_start = strchr(line, '\n') != NULL;
  }
  fclose(f);
  if (!SHK_FAULT_COUNT_ALL_MAPS) *all = 0;
}

static void shk_fault_count_name(const shk_shm_entry *entry, void *user) {
  if (entry->owner_pid == (int)getpid()) ++*(int *)user;
}
#endif

static shk_fault_world shk_fault_world_now(void) {
  shk_fault_world w = {0, 0, 0, 0, 0};
#if defined(__linux__)
  w.fds = shk_fault_count_dir("/proc/self/fd");
  shk_fault_count_maps(&w.maps, &w.shared_maps);
  shk_shm_list(shk_fault_count_name, &w.names);
  siginfo_t info;
  memset(&info, 0, sizeof info);
  /* WNOWAIT: a child that ended is seen, not reaped. */
  w.children = waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0 ? 1 : 0;
#endif
  return w;
}

/* One public call walked through the failures of one primitive. */
typedef struct shk_fault_case {
  const char *what;
  shk__fault_point point;
  int (*call)(void *ctx);  /* the public call; on SHK_OK it releases what it made itself */
  void *ctx;
  const int *codes;        /* the codes a failure may give (documented for the call) */
  size_t ncodes;
  bool raw_kept;           /* shk_last_os_error() must be SHK_FAULT_RAW after each failure */
  bool sticky;             /* fail every call from the Nth on, not only the Nth */
  int (*check)(void *ctx); /* optional: more "nothing left behind" checks; 0 when fine */
} shk_fault_case;

/* Walks c; returns 0, or the line of the first failed check (printed on stderr). *walked:
 * how many failures were injected (0 means the call never reached the primitive). */
static inline int shk_fault_walk(const shk_fault_case *c, unsigned *walked) {
  *walked = 0;
  int rc = c->call(c->ctx); /* warm-up: one-time set-ups are not leaks */
  if (rc != SHK_OK) {
    fprintf(stderr, "%s: the call fails without faults: %s\n", c->what, shk_error_name(rc));
    return __LINE__;
  }
  shk_fault_world before = shk_fault_world_now();
  for (unsigned nth = 1; nth < 256; nth++) {
    shk__fault_arm(c->point, nth, SHK_FAULT_RAW, c->sticky);
    rc = c->call(c->ctx);
    int raw = shk_last_os_error();
    unsigned failed = shk__fault_failures(c->point);
    shk__fault_disarm_all();
    if (failed == 0) {
      if (rc != SHK_OK) {
        fprintf(stderr, "%s: call %u not reached, yet %s\n", c->what, nth, shk_error_name(rc));
        return __LINE__;
      }
      break;
    }
    ++*walked;
    if (rc != SHK_OK) {
      bool documented = false;
      for (size_t i = 0; i < c->ncodes; i++) documented |= rc == c->codes[i];
      if (!documented) {
        fprintf(stderr, "%s: failing call %u gives %s, not a documented code\n", c->what, nth,
                shk_error_name(rc));
        return __LINE__;
      }
      if (c->raw_kept && raw != SHK_FAULT_RAW) {
        fprintf(stderr, "%s: failing call %u: shk_last_os_error() %d, not %d\n", c->what, nth,
                raw, SHK_FAULT_RAW);
        return __LINE__;
      }
    }
    shk_fault_world after = shk_fault_world_now();
    if (memcmp(&before, &after, sizeof before) != 0) {
      fprintf(stderr,
              "%s: failing call %u (%s) left something: fds %d->%d shared maps %d->%d maps "
              "%d->%d names %d->%d children %d->%d\n",
              c->what, nth, shk_error_name(rc), before.fds, after.fds, before.shared_maps,
              after.shared_maps, before.maps, after.maps, before.names, after.names,
              before.children, after.children);
      return __LINE__;
    }
    if (c->check && c->check(c->ctx) != 0) {
      fprintf(stderr, "%s: failing call %u: check failed\n", c->what, nth);
      return __LINE__;
    }
  }
  rc = c->call(c->ctx);
  if (rc != SHK_OK) {
    fprintf(stderr, "%s: the call fails after the walk: %s\n", c->what, shk_error_name(rc));
    return __LINE__;
  }
  return 0;
}

/* In a child routine: walk the case, and fail the child when a check fails or when
 * `reached` and no failure could be injected (the walk would prove nothing). */
#define SHK_FAULT_WALK(c, reached)                                          \
  do {                                                                      \
    unsigned walked_;                                                       \
    int line_ = shk_fault_walk((c), &walked_);                              \
    if (line_ != 0) return line_;                                           \
    fprintf(stderr, "%s: %u failure(s) walked\n", (c)->what, walked_);     \
    SHK_CHECK(!(reached) || walked_ > 0);                                   \
  } while (0)

/* A walk's context for calls on one segment name; with shk_fault_name_is_gone() as the walk's
 * check, a failed call must leave no segment of that name (opening it finds nothing). */
typedef struct shk_fault_named {
  char name[64];
} shk_fault_named;

static inline int shk_fault_name_is_gone(void *ctx) {
  shk_fault_named *c = ctx;
  shk_shm *shm = NULL;
  int rc = shk_shm_open(c->name, SHK_SHM_READ_ONLY, &shm);
  shk_shm_close(shm);
  return rc == SHK_ENOENT ? 0 : 1;
}

#endif
