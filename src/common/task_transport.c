/* The chunk-task worker transport, written once over the OS layer's primitives: a worker's link
 * (a channel), starting a worker (a fork where the system has one, else this executable again
 * with a start-up record on its command line, served from shk_worker_main), the reap and
 * timeout policy, and segments handed to a worker (with the handles that arrive before the
 * worker needs them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task_internal.h"

/* The first argument of a worker process started as an executable. */
#define WORKER_MARKER "--shk-worker"
/* How long a worker waits for a segment the pool said it sent: it is sent before the job is
 * published, so this only guards against a confused pool. */
#define TAKE_TIMEOUT_NS 5000000000ull
/* How long an ending worker may take to become waitable once its link closed. */
#define REAP_GRACE_MS 100

/* Set by shk_worker_main(): only a program that calls the hook may start worker processes as
 * executables, so a program that forgot it can never start a chain of copies of itself. */
static atomic_int hook_called;

int shk__task_link_open(shk__task_worker *w) {
  memset(w, 0, sizeof *w);
  return shk__os_channel_pair(&w->pool_end, &w->worker_end);
}

void shk__task_link_close(shk__task_worker *w) {
  shk__os_channel_close(&w->pool_end);
  shk__os_channel_close(&w->worker_end);
}

/* ---- starting a worker ------------------------------------------------------------------ */

/* The forked child: the arena is mapped at the same address, the link is its own. */
static _Noreturn void serve_forked(const shk__task_worker *w, unsigned index,
                                   const shk__os_segment *arena, size_t ctl_size,
                                   size_t out_offset, size_t out_size) {
  shk__os_crash_ends_process();
  shk__task_boot boot;
  memset(&boot, 0, sizeof boot);
  boot.ctl = *arena;
  boot.ctl.size = ctl_size;
  boot.out = *arena;
  boot.out.addr = (unsigned char *)arena->addr + out_offset;
  boot.out.size = out_size;
  boot.index = index;
  boot.link = w->worker_end;
  shk__task_worker_serve(&boot);
  /* What a chunk function printed; other streams are the function's to flush: walking every
   * stream would cost a fresh worker several page faults. */
  fflush(stdout);
  shk__os_exit_now(0);
}

/* The start-up record: "--shk-worker index arena ctl_size out_offset out_size link_a link_b
 * parent_pid module function", numbers in hex but the index and the pid; module and function
 * "-" but for a worker host. */
enum { RECORD_ARGS = 11 };

static int start_executable(shk__task_worker *w, unsigned index, const shk__os_segment *arena,
                            size_t ctl_size, size_t out_offset, size_t out_size,
                            const shk__task_host *host) {
  /* This program again only when it called the hook; a worker host always does. */
  if (!host && !atomic_load(&hook_called)) return SHK_ENOHOOK;
  intptr_t h[3] = {0, 0, 0};
  const intptr_t from[3] = {arena->handle, w->worker_end.a, w->worker_end.b};
  int rc = SHK_OK;
  for (int i = 0; i < 3 && rc == SHK_OK; i++) rc = shk__os_handle_dup(from[i], true, &h[i]);
  if (rc == SHK_OK) {
    char text[RECORD_ARGS - 3][24];
    snprintf(text[0], sizeof text[0], "%u", index);
    snprintf(text[1], sizeof text[1], "%llx", (unsigned long long)(uintptr_t)h[0]);
    snprintf(text[2], sizeof text[2], "%llx", (unsigned long long)ctl_size);
    snprintf(text[3], sizeof text[3], "%llx", (unsigned long long)out_offset);
    snprintf(text[4], sizeof text[4], "%llx", (unsigned long long)out_size);
    snprintf(text[5], sizeof text[5], "%llx", (unsigned long long)(uintptr_t)h[1]);
    snprintf(text[6], sizeof text[6], "%llx", (unsigned long long)(uintptr_t)h[2]);
    snprintf(text[7], sizeof text[7], "%d", shk__os_pid());
    const char *args[RECORD_ARGS] = {WORKER_MARKER};
    for (int i = 1; i < RECORD_ARGS - 2; i++) args[i] = text[i - 1];
    args[RECORD_ARGS - 2] = host ? host->module : "-";
    args[RECORD_ARGS - 1] = host ? host->function : "-";
    rc = shk__os_proc_start(host ? host->exe : NULL, args, RECORD_ARGS, h, 3, true, &w->proc);
  }
  for (int i = 0; i < 3; i++) shk__os_handle_close(h[i]);
  return rc;
}

int shk__task_spawn(shk__task_worker *w, unsigned index, const shk__os_segment *arena,
                    size_t ctl_size, size_t out_offset, size_t out_size,
                    const shk__task_host *host) {
  int rc;
  if (!host && shk__os_caps_get()->has_fork) {
    bool child = false;
    rc = shk__os_proc_fork(&w->worker_end.a, 1, &w->proc, &child);
    if (rc == SHK_OK && child) serve_forked(w, index, arena, ctl_size, out_offset, out_size);
  } else {
    rc = start_executable(w, index, arena, ctl_size, out_offset, out_size, host);
  }
  if (rc == SHK_OK) shk__os_channel_close(&w->worker_end);
  return rc;
}

static bool parse_hex(const char *s, uint64_t *v) {
  char *end;
  unsigned long long x = strtoull(s, &end, 16);
  *v = (uint64_t)x;
  return *s && *end == '\0';
}

/* A worker host's plugin function: the module loaded by path, marked as a plugin of this major
 * version, exporting the function. SHK_ENOENT, SHK_EVERSION, SHK_ENOSYM. */
static int load_plugin(const char *module, const char *function, shk_task_fn *fn) {
  shk__os_library *lib = NULL;
  if (shk__os_library_open(module, false, &lib) != SHK_OK) return SHK_ENOENT;
  shk__os_function major = shk__os_library_function(lib, "shk_task_plugin_major");
  unsigned value = 0;
  if (major) memcpy(&value, (const void *)(uintptr_t)major, sizeof value); /* data, not code */
  if (!major || value != SHK_VERSION_MAJOR) return SHK_EVERSION;
  shk__os_function found = shk__os_library_function(lib, function);
  if (!found) return SHK_ENOSYM;
  memcpy(fn, &found, sizeof *fn);
  return SHK_OK; /* the library stays loaded for the worker's life */
}

/* Maps what the start-up record names and serves; returns on a malformed record. */
static void serve_from_record(int argc, char **argv) {
  uint64_t v[6];
  if (argc < RECORD_ARGS + 1) return;
  for (int i = 0; i < 6; i++)
    if (!parse_hex(argv[i + 3], &v[i])) return;
  char *end;
  unsigned long index = strtoul(argv[2], &end, 10);
  long parent_pid = strtol(argv[9], NULL, 10);
  if (*end || index >= SHK_TASK_WORKERS_MAX || parent_pid <= 0 || parent_pid > INT32_MAX) return;
  shk__os_proc_bind_to_starter((int)parent_pid); /* the pool started it with kill_on_close */
  shk__os_crash_ends_process();
  shk__task_boot boot;
  memset(&boot, 0, sizeof boot);
  boot.index = (unsigned)index;
  intptr_t arena = (intptr_t)v[0];
  if (shk__os_segment_map(arena, 0, (size_t)v[1], true, &boot.ctl) != SHK_OK ||
      shk__os_segment_map(arena, (size_t)v[2], (size_t)v[3], true, &boot.out) != SHK_OK)
    return;
  boot.link.a = (intptr_t)v[4];
  boot.link.b = (intptr_t)v[5];
  if (shk__os_proc_open((int)parent_pid, &boot.parent) != SHK_OK) return;
  const char *module = argv[10], *function = argv[11];
  if (strcmp(module, "-") != 0) {
    int rc = load_plugin(module, function, &boot.fixed_fn);
    if (rc != SHK_OK) {
      shk__task_worker_refuse(&boot, rc);
      return;
    }
  }
  shk__task_worker_serve(&boot);
}

int shk_worker_main(int argc, char **argv) {
  atomic_store(&hook_called, 1);
  if (argc < 2 || !argv || !argv[1] || strcmp(argv[1], WORKER_MARKER) != 0) return SHK_OK;
  serve_from_record(argc, argv);
  fflush(stdout);
  fflush(stderr);
  shk__os_exit_now(0); /* a malformed record too: the pool sees a worker that never started */
}

/* The directory part of path, in place ("" when there is none). */
static void cut_to_directory(char *path) {
  char *slash = NULL;
  for (char *c = path; *c; c++)
    if (*c == '/' || *c == '\\') slash = c;
  if (slash) *slash = '\0';
  else path[0] = '\0';
}

int shk__task_host_find(char *exe, size_t size) {
  const char *env = getenv("SHK_WORKER_HOST");
  if (env && *env) {
    if (strlen(env) >= size || !shk__os_file_is_executable(env)) return SHK_EUNSUPPORTED;
    memcpy(exe, env, strlen(env) + 1);
    return SHK_OK;
  }
  /* Next to the library: this very function lies in it (or in the program, statically). */
  shk__os_module mod;
  char dir[1024];
  int (*self)(char *, size_t) = shk__task_host_find;
  void *addr;
  memcpy(&addr, &self, sizeof addr);
  if (shk__os_module_of(addr, &mod) != SHK_OK) return SHK_EUNSUPPORTED;
  if (strcmp(mod.path, "/proc/self/exe") == 0 && shk__os_self_path(mod.path, sizeof mod.path) != SHK_OK)
    return SHK_EUNSUPPORTED;
  memcpy(dir, mod.path, sizeof dir);
  cut_to_directory(dir);
  /* The last two: a vcpkg install tree, whose programs live in tools/<port>/ (a debug library
   * lies in debug/lib or debug/bin, one level deeper; the port installs release programs only). */
  static const char *const places[] = {"%s/shmkit-worker%s", "%s/bin/shmkit-worker%s",
                                       "%s/../bin/shmkit-worker%s",
                                       "%s/../tools/shmkit/shmkit-worker%s",
                                       "%s/../../tools/shmkit/shmkit-worker%s"};
  for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
    int n = snprintf(exe, size, places[i], dir[0] ? dir : ".", shk__os_caps_get()->exe_suffix);
    if (n > 0 && (size_t)n < size && shk__os_file_is_executable(exe)) return SHK_OK;
  }
  return SHK_EUNSUPPORTED;
}

/* ---- waiting and reaping --------------------------------------------------------------- */

int shk__task_wait_workers(const shk__task_worker *ws, unsigned n, uint64_t timeout_ns,
                           bool *ended) {
  shk__os_channel ends[SHK_TASK_WORKERS_MAX] = {{0, 0}};
  shk__os_proc procs[SHK_TASK_WORKERS_MAX] = {{0, 0, 0}};
  bool gone[SHK_TASK_WORKERS_MAX] = {false};
  if (n > SHK_TASK_WORKERS_MAX) n = SHK_TASK_WORKERS_MAX;
  for (unsigned i = 0; i < n; i++) {
    ends[i] = ws[i].pool_end;
    procs[i] = ws[i].proc;
  }
  int rc = shk__os_channel_wait_any(ends, procs, n, timeout_ns, gone);
  /* A thread worker's link never ends while the pool holds it. */
  for (unsigned i = 0; i < n; i++)
    if (gone[i] && ws[i].proc.handle) ended[i] = true;
  return rc;
}

/* Waits until the worker's link ends (its handles close as it exits) or the deadline. */
static bool link_ended(shk__task_worker *w, uint64_t deadline) {
  for (;;) {
    uint64_t now = shk__os_now_ns();
    if (now >= deadline) return false;
    shk__os_message msg;
    int rc = shk__os_channel_receive(&w->pool_end, &w->proc, deadline - now, &msg);
    if (rc == SHK_ENOENT) return true;
    if (rc != SHK_OK) return false;
    if (msg.kind == SHK__OS_MSG_HANDLE) shk__os_handle_close(msg.handle);
  }
}

void shk__task_reap(shk__task_worker *w, bool kill, int64_t timeout_ms, shk__os_exit *how) {
  how->kind = SHK__OS_EXITED;
  how->code = 0;
  if (w->proc.handle) {
    uint64_t deadline = shk__os_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000u;
    /* A worker that does not end in time is killed; either way it is reaped. */
    if (kill || !w->pool_end.a || !link_ended(w, deadline)) shk__os_proc_kill(&w->proc);
    if (shk__os_proc_wait(&w->proc, REAP_GRACE_MS, how) != SHK_OK) {
      shk__os_proc_kill(&w->proc); /* it closed its link but lives on: no waiting forever */
      shk__os_proc_wait(&w->proc, -1, how);
    }
  }
  memset(&w->proc, 0, sizeof w->proc);
  shk__task_link_close(w);
}

/* ---- segments handed to a worker ------------------------------------------------------- */

int shk__task_give_segment(shk__task_worker *w, const shk__os_segment *seg, uint64_t id,
                           uint64_t *token) {
  int rc = shk__os_channel_give(&w->pool_end, &w->proc, seg->handle, id, token);
  /* The channel says SHK_ENOENT for a worker that has gone (EPIPE; a process that ended). The
   * pool replaces it and tries again; should that fail too, the call's callers get a system
   * failure (the raw code kept), not "no such module", which is what SHK_ENOENT means to them. */
  return rc == SHK_ENOENT ? SHK_EOS : rc;
}

/* Handles that arrived in a worker before it needed them. A worker process is single-threaded,
 * and thread workers never receive segments. */
#define STASH_SIZE 8
static struct {
  uint64_t id;
  intptr_t handle;
} stash[STASH_SIZE];

static void stash_put(uint64_t id, intptr_t handle) {
  size_t slot = 0;
  for (size_t i = 0; i < STASH_SIZE; i++) {
    if (stash[i].handle <= 0) {
      slot = i;
      break;
    }
    if (stash[i].id < stash[slot].id) slot = i; /* full: the oldest gives way */
  }
  shk__os_handle_close(stash[slot].handle);
  stash[slot].id = id;
  stash[slot].handle = handle;
}

/* Takes the handle tagged id from the stash, dropping older ones never to be needed (all but
 * `keep`); 0 when it is not there. */
static intptr_t stash_take(uint64_t id, uint64_t keep) {
  intptr_t found = 0;
  for (size_t i = 0; i < STASH_SIZE; i++) {
    if (stash[i].handle > 0 && stash[i].id == id) {
      found = stash[i].handle;
      stash[i].handle = 0;
    } else if (stash[i].handle > 0 && stash[i].id < id && stash[i].id != keep) {
      shk__os_handle_close(stash[i].handle);
      stash[i].handle = 0;
    }
  }
  return found;
}

int shk__task_link_wait(const shk__task_boot *boot, uint64_t timeout_ns) {
  for (;;) {
    shk__os_message msg;
    int rc = shk__os_channel_receive(&boot->link, boot->parent.handle ? &boot->parent : NULL,
                                     timeout_ns, &msg);
    if (rc == SHK_ETIMEDOUT) return rc;
    if (rc != SHK_OK) return SHK_ENOENT; /* the pool is gone, or its link is unusable */
    if (msg.kind == SHK__OS_MSG_WAKE) return SHK_OK;
    stash_put(msg.tag, msg.handle);
  }
}

int shk__task_take_segment(const shk__task_boot *boot, uint64_t id, uint64_t token, size_t size,
                           uint64_t keep, shk__os_segment *seg) {
  memset(seg, 0, sizeof *seg);
  intptr_t handle = 0;
  if (shk__os_caps_get()->handles_by_token) {
    handle = (intptr_t)token;
  } else {
    uint64_t deadline = shk__os_now_ns() + TAKE_TIMEOUT_NS;
    while (!(handle = stash_take(id, keep))) {
      /* Sent before the job was published: here, perhaps behind stale wake-ups. */
      shk__os_message msg;
      uint64_t now = shk__os_now_ns();
      if (now >= deadline ||
          shk__os_channel_receive(&boot->link, NULL, deadline - now, &msg) != SHK_OK)
        return SHK_ENOENT;
      if (msg.kind == SHK__OS_MSG_HANDLE) stash_put(msg.tag, msg.handle);
    }
  }
  int rc = shk__os_segment_map(handle, 0, size, false, seg);
  if (rc != SHK_OK) shk__os_handle_close(handle);
  return rc;
}
