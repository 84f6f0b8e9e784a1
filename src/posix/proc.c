/* POSIX processes: start this executable again, wait with a timeout, kill, liveness. */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __APPLE__
#include <crt_externs.h>
#include <mach-o/dyld.h>
#endif

#include "posix.h"

#ifdef __APPLE__
/* A dylib has no direct access to environ there (environ(7)): ask for the current one. */
#define environ (*_NSGetEnviron())
#else
extern char **environ;
#endif

int shk__os_self_path(char *buf, size_t size) {
#ifdef __APPLE__
  uint32_t n = (uint32_t)size;
  if (_NSGetExecutablePath(buf, &n) != 0) return SHK_ERANGE;
  return SHK_OK;
#else
  ssize_t n = readlink("/proc/self/exe", buf, size);
  if (n < 0) return posix_error(errno);
  if ((size_t)n >= size) return SHK_ERANGE;
  buf[n] = '\0';
  return SHK_OK;
#endif
}

int shk__os_proc_spawn_self(const char *const *args, int argc, shk__os_proc *proc) {
  memset(proc, 0, sizeof *proc);
  char path[4096];
  int rc = shk__os_self_path(path, sizeof path);
  if (rc != SHK_OK) return rc;
  char **argv = calloc((size_t)argc + 2, sizeof *argv);
  if (!argv) return SHK_ENOMEM;
  argv[0] = path;
  for (int i = 0; i < argc; i++) argv[i + 1] = (char *)args[i];
  pid_t pid;
  int err = posix_spawn(&pid, path, NULL, NULL, argv, environ);
  free(argv);
  if (err != 0) return posix_error(err);
  proc->handle = pid;
  proc->pid = (int)pid;
  return SHK_OK;
}

void posix_decode_status(int status, shk__os_exit *how) {
  if (WIFSIGNALED(status)) {
    how->kind = SHK__OS_SIGNALED;
    how->code = WTERMSIG(status);
  } else {
    how->kind = SHK__OS_EXITED;
    how->code = WEXITSTATUS(status);
  }
}

int shk__os_proc_wait(shk__os_proc *proc, int64_t timeout_ms, shk__os_exit *how) {
  if (proc->pid <= 0) return SHK_EINVAL;
  uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : shk__os_now_ns() + (uint64_t)timeout_ms * 1000000u;
  uint64_t nap_ns = 20000; /* back off from 20 us to 5 ms: cheap for short children */
  for (;;) {
    int status;
    pid_t r = waitpid((pid_t)proc->pid, &status, timeout_ms < 0 ? 0 : WNOHANG);
    if (r == (pid_t)proc->pid) {
      posix_decode_status(status, how);
      proc->pid = 0;
      proc->handle = 0;
      return SHK_OK;
    }
    if (r < 0 && errno != EINTR) return posix_error(errno);
    if (r == 0) {
      if (shk__os_now_ns() >= deadline) return SHK_ETIMEDOUT;
      shk__os_sleep_ns(nap_ns);
      if (nap_ns < 5000000) nap_ns *= 2;
    }
  }
}

int shk__os_proc_kill(shk__os_proc *proc) {
  if (proc->pid <= 0) return SHK_EINVAL;
  if (kill((pid_t)proc->pid, SIGKILL) != 0) return posix_error(errno);
  return SHK_OK;
}

int shk__os_pid(void) { return (int)getpid(); }

#ifdef __linux__
/* The boot time in seconds since 1970 ("btime" of /proc/stat); 0 when unknown. */
static int64_t boot_time(void) {
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return 0;
  char line[4096]; /* longer lines (intr) come in pieces that start with digits */
  long long t = 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "btime ", 6) == 0 && sscanf(line + 6, "%lld", &t) == 1) break;
  fclose(f);
  return (int64_t)t;
}
#endif

int64_t shk__os_pid_started(int pid) {
#ifdef __linux__
  if (pid <= 0) return 0;
  char path[64], line[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(line, 1, sizeof line - 1, f);
  fclose(f);
  line[n] = '\0';
  const char *p = strrchr(line, ')'); /* the name may hold spaces and parentheses */
  if (!p) return 0;
  /* Field 3 (state) starts at p + 2; the start tick is field 22. */
  p += 2;
  for (int field = 3; field < 22 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  unsigned long long ticks = 0;
  long hz = sysconf(_SC_CLK_TCK);
  int64_t boot = boot_time();
  if (!p || sscanf(p, "%llu", &ticks) != 1 || hz <= 0 || boot <= 0) return 0;
  return boot + (int64_t)(ticks / (unsigned long long)hz);
#else
  (void)pid;
  return 0;
#endif
}

bool shk__os_pid_alive(int pid) {
  if (pid <= 0) return false;
  if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) return false;
#ifdef __linux__
  /* kill() succeeds on a zombie; /proc tells a zombie apart. */
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  size_t n = fread(line, 1, sizeof line - 1, f);
  fclose(f);
  line[n] = '\0';
  const char *end_of_name = strrchr(line, ')'); /* the name may hold spaces and parentheses */
  if (end_of_name && (end_of_name[2] == 'Z' || end_of_name[2] == 'X')) return false;
#endif
  return true;
}
