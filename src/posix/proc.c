/* POSIX processes: fork, start an executable with chosen descriptors, wait with a timeout, kill,
 * liveness; descriptors (dup, close, close all but some). */
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
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
  if (timeout_ms > 0 && deadline < (uint64_t)timeout_ms) deadline = UINT64_MAX; /* overflow */
  uint64_t start = shk__os_now_ns();
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
      uint64_t now = shk__os_now_ns();
      if (now >= deadline) return SHK_ETIMEDOUT;
      /* A process whose descriptors just closed becomes waitable microseconds later: yield
       * first (a sleep rounds up to the timer slack, ~60 us), then back off. */
      if (now - start < 100000u) {
        shk__os_yield();
        continue;
      }
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
  uint64_t ticks = 0;
  long hz = sysconf(_SC_CLK_TCK);
  int64_t boot = boot_time();
  if (shk__os_proc_start_time(pid, &ticks) != SHK_OK || hz <= 0 || boot <= 0) return 0;
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

int shk__os_proc_start_time(int pid, uint64_t *start) {
  if (pid <= 0 || !start) return SHK_EINVAL;
#ifdef __linux__
  char path[64], line[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return errno == ENOENT || errno == ESRCH ? SHK_ENOENT : posix_error(errno);
  size_t n = fread(line, 1, sizeof line - 1, f);
  fclose(f);
  line[n] = '\0';
  /* Fields after the name (which may hold spaces and parentheses): state is field 3, the start
   * time (clock ticks since boot) field 22. */
  const char *p = strrchr(line, ')');
  if (!p) return SHK_EOS;
  p++;
  if (p[0] == ' ' && (p[1] == 'Z' || p[1] == 'X')) return SHK_ENOENT;
  for (int field = 2; field < 22; field++) {
    p = strchr(p, ' ');
    if (!p) return SHK_EOS;
    p++;
  }
  char *end = NULL;
  unsigned long long ticks = strtoull(p, &end, 10);
  if (end == p) return SHK_EOS;
  *start = ticks;
  return SHK_OK;
#else
  if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) return SHK_ENOENT;
  return SHK_EUNSUPPORTED;
#endif
}

/* Closes [lo, hi] (hi >= lo). close_range where the kernel has it (Linux 5.9+, FreeBSD 13+). */
static void posix_close_span(int lo, int hi) {
  if (hi < lo) return;
#ifdef SYS_close_range
  if (POSIX_FAULTABLE(SHK__FAULT_CLOSE_RANGE, -1,
                      syscall(SYS_close_range, (unsigned)lo, (unsigned)hi, 0u)) == 0)
    return;
#endif
  /* Without close_range: the descriptors that exist (getdents64 on /proc/self/fd: no malloc, so
   * safe in a fork of a threaded process), else every number up to the descriptor limit. */
#if defined(__linux__) && defined(SYS_getdents64)
  int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    char buf[4096];
    long n;
    int found[256];
    size_t count = 0;
    /* Collected first: closing while reading the directory could skip entries. */
    while (count < sizeof found / sizeof found[0] &&
           (n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
      for (long off = 0; off < n;) {
        unsigned short reclen;
        memcpy(&reclen, buf + off + 16, sizeof reclen);
        const char *name = buf + off + 19;
        int fd = 0;
        bool number = *name != '\0';
        for (const char *c = name; *c; c++) {
          if (*c < '0' || *c > '9') number = false;
          else fd = fd * 10 + (*c - '0');
        }
        if (number && fd >= lo && fd <= hi && fd != dir && count < sizeof found / sizeof found[0])
          found[count++] = fd;
        off += reclen;
      }
    }
    close(dir);
    if (count < sizeof found / sizeof found[0]) {
      for (size_t i = 0; i < count; i++) close(found[i]);
      return;
    }
  }
#endif
  struct rlimit rl;
  int top = hi;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < (rlim_t)top + 1)
    top = (int)rl.rlim_cur - 1;
  if (top > 65535) top = 65535;
  for (int fd = lo; fd <= top; fd++) close(fd);
}

void posix_close_all_but(const int *keep, size_t n) {
  /* keep sorted ascending, each above 2 */
  int lo = 3;
  for (size_t i = 0; i < n; i++) {
    if (keep[i] < lo) continue;
    posix_close_span(lo, keep[i] - 1);
    lo = keep[i] + 1;
  }
  posix_close_span(lo, INT32_MAX);
}

/* Each new fork is a fresh copy of this process: a library function this process has not
 * called yet would be bound lazily again in every child (a symbol search through the loaded
 * modules' tables, faulting them in: measured at about a third of a one-call run's extra cost).
 * So the parent calls, once and harmlessly, what a child calls first; _exit, which cannot be
 * called ahead, is reached through a pointer the loader fills at start-up. */
static void (*volatile posix_exit_fn)(int) = _exit;
static shk__once posix_bind_once;

static void posix_bind_child_calls(void) {
  int sig = 0;
  struct sigaction old;
  sigset_t set;
#ifdef __linux__
  prctl(PR_GET_PDEATHSIG, &sig);
#endif
  (void)getppid();
  sigaction(SIGSEGV, NULL, &old);
  sigemptyset(&set);
  sigprocmask(SIG_BLOCK, NULL, &set);
  sched_yield();
  (void)sig;
}

_Noreturn void shk__os_exit_now(int code) {
  posix_exit_fn(code);
  _exit(code); /* not reached */
}

int shk__os_proc_fork(const intptr_t *keep, size_t nkeep, shk__os_proc *proc, bool *in_child) {
  memset(proc, 0, sizeof *proc);
  *in_child = false;
  if (!shk__os_caps_get()->has_fork) return SHK_EUNSUPPORTED;
  shk__once_run(&posix_bind_once, posix_bind_child_calls);
  /* Unflushed output would otherwise be written twice. */
  fflush(stdout);
  pid_t parent = getpid();
  pid_t pid = POSIX_FAULTABLE(SHK__FAULT_PROC_START, -1, fork());
  if (pid < 0) return posix_error(errno);
  if (pid > 0) {
    proc->handle = pid;
    proc->pid = (int)pid;
    return SHK_OK;
  }
  shk__os_proc_bind_to_starter((int)parent);
  int fds[16];
  size_t n = 0;
  for (size_t i = 0; i < nkeep && n < sizeof fds / sizeof fds[0]; i++)
    if (keep[i] > 2) fds[n++] = (int)keep[i];
  posix_close_all_but(fds, n);
  *in_child = true;
  return SHK_OK;
}

void shk__os_crash_ends_process(void) {
  /* A test harness or the program may have handlers that would resume the parent's code. */
  static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) sigaction(faults[i], &dfl, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Where posix_spawn can close every descriptor but the listed ones (glibc 2.34+:
 * posix_spawn_file_actions_addclosefrom_np), it starts the program without copying this
 * process's page tables (glibc: clone(CLONE_VM|CLONE_VFORK)) and reports a failed exec through
 * its return value. Elsewhere: fork, close, exec. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define POSIX_SPAWN_CLOSES_ALL_BUT 1
#endif

#ifdef POSIX_SPAWN_CLOSES_ALL_BUT
/* posix_spawn with file actions that close every descriptor above 2 but keep[0..nkeep)
 * (ascending): each number between the kept ones (a close of a number that is not open is no
 * error there), then all from the last kept one up. Every number, not only those open now: a
 * descriptor another thread opens meanwhile must not leak either. Returns an errno value. */
static int posix_spawn_keeping(const char *path, char **argv, const int *keep, size_t nkeep,
                               pid_t *pid) {
  posix_spawn_file_actions_t actions;
  int err = posix_spawn_file_actions_init(&actions);
  if (err) return err;
  int lo = 3;
  for (size_t i = 0; i < nkeep && !err; i++) {
    for (int fd = lo; fd < keep[i] && !err; fd++)
      err = posix_spawn_file_actions_addclose(&actions, fd);
    lo = keep[i] + 1;
  }
  if (!err) err = posix_spawn_file_actions_addclosefrom_np(&actions, lo);
  if (!err)
    err = POSIX_FAULTABLE(SHK__FAULT_PROC_START, errno,
                          posix_spawn(pid, path, &actions, NULL, argv, environ));
  posix_spawn_file_actions_destroy(&actions);
  return err;
}
#else
/* fork, then in the child: bind to this process when asked, close, exec. Returns an errno
 * value; a failed exec shows as exit code 127. */
static int posix_spawn_keeping_by_fork(const char *path, char **argv, const int *keep,
                                       size_t nkeep, bool kill_on_close, pid_t *pid) {
  pid_t parent = getpid();
  pid_t child = POSIX_FAULTABLE(SHK__FAULT_PROC_START, -1, fork());
  if (child < 0) return errno;
  if (child == 0) {
    if (kill_on_close) shk__os_proc_bind_to_starter((int)parent);
    posix_close_all_but(keep, nkeep);
    execve(path, argv, environ);
    _exit(127);
  }
  *pid = child;
  return 0;
}
#endif

int shk__os_proc_start(const char *path, const char *const *args, int argc, const intptr_t *inherit,
                       size_t n, bool kill_on_close, shk__os_proc *proc) {
  memset(proc, 0, sizeof *proc);
  char self[4096];
  if (!path) {
    int rc = shk__os_self_path(self, sizeof self);
    if (rc != SHK_OK) return rc;
    path = self;
  }
  char **argv = calloc((size_t)argc + 2, sizeof *argv);
  if (!argv) return SHK_ENOMEM;
  argv[0] = (char *)path;
  for (int i = 0; i < argc; i++) argv[i + 1] = (char *)args[i];
  int keep[16];
  size_t nkeep = 0;
  for (size_t i = 0; i < n && nkeep < sizeof keep / sizeof keep[0]; i++)
    if (inherit[i] > 2) keep[nkeep++] = (int)inherit[i];
  /* Ascending, as posix_close_all_but and posix_spawn_keeping want them. */
  for (size_t i = 1; i < nkeep; i++)
    for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
      int t = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = t;
    }
  fflush(stdout); /* what this process printed comes before what the program prints */
  pid_t pid = 0;
#ifdef POSIX_SPAWN_CLOSES_ALL_BUT
  /* kill_on_close: posix_spawn cannot set PR_SET_PDEATHSIG; the program binds itself (os.h). */
  (void)kill_on_close;
  int err = posix_spawn_keeping(path, argv, keep, nkeep, &pid);
#else
  int err = posix_spawn_keeping_by_fork(path, argv, keep, nkeep, kill_on_close, &pid);
#endif
  free(argv);
  if (err) return posix_error(err);
  proc->handle = pid;
  proc->pid = (int)pid;
  return SHK_OK;
}

void shk__os_proc_bind_to_starter(int starter) {
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
  /* The starter may have ended before the line above: then this process has another parent. */
  if (getppid() != (pid_t)starter) shk__os_exit_now(0);
}

int shk__os_proc_open(int pid, shk__os_proc *proc) {
  memset(proc, 0, sizeof *proc);
  if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) return SHK_ENOENT;
  proc->handle = pid;
  proc->pid = pid;
  return SHK_OK;
}

int shk__os_handle_dup(intptr_t handle, bool inheritable, intptr_t *out) {
  int fd = fcntl((int)handle, inheritable ? F_DUPFD : F_DUPFD_CLOEXEC, 3);
  if (fd < 0) return posix_error(errno);
  *out = fd;
  return SHK_OK;
}

void shk__os_handle_close(intptr_t handle) {
  if (handle > 0) close((int)handle);
}

bool shk__os_file_is_executable(const char *path) {
  struct stat st;
  return path && stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}
