/* The test harness: child routines, spawning the test binary again, waiting with a timeout. */
#include "shk_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
extern char **environ;
#endif

static const char *self_path;

#ifdef _WIN32
int shk_test_spawn(const char *name, int argc, const char *const *argv, shk_test_proc *proc) {
  char cmd[4096];
  int n = snprintf(cmd, sizeof cmd, "\"%s\" --shk-test-child %s", self_path, name);
  for (int i = 0; i < argc && n > 0 && (size_t)n < sizeof cmd; i++)
    n += snprintf(cmd + n, sizeof cmd - (size_t)n, " \"%s\"", argv[i]);
  STARTUPINFOA si;
  PROCESS_INFORMATION pi;
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  if (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) return -1;
  CloseHandle(pi.hThread);
  proc->handle = (intptr_t)pi.hProcess;
  proc->pid = (int)pi.dwProcessId;
  return 0;
}

shk_test_exit shk_test_wait(shk_test_proc *proc, int timeout_ms) {
  shk_test_exit how = {0, 0, 0};
  HANDLE h = (HANDLE)proc->handle;
  if (WaitForSingleObject(h, (DWORD)timeout_ms) != WAIT_OBJECT_0) {
    how.timed_out = 1;
    TerminateProcess(h, 255);
    WaitForSingleObject(h, INFINITE);
  }
  DWORD code = 0;
  GetExitCodeProcess(h, &code);
  CloseHandle(h);
  /* An unhandled exception ends a process with the exception code as its exit code. */
  how.killed = (code & 0xC0000000u) == 0xC0000000u;
  how.code = (int)code;
  return how;
}

int shk_test_access_violation_code(void) { return (int)0xC0000005u; }

bool shk_test_under_valgrind(void) { return false; }

void shk_test_sleep_ms(unsigned ms) { Sleep(ms); }
#else
int shk_test_spawn(const char *name, int argc, const char *const *argv, shk_test_proc *proc) {
  const char *args[12];
  int n = 0;
  args[n++] = self_path;
  args[n++] = "--shk-test-child";
  args[n++] = name;
  for (int i = 0; i < argc && i < 8; i++) args[n++] = argv[i];
  args[n] = NULL;
  pid_t pid;
  const char *exe = self_path; /* no /proc (macOS): ctest starts tests by their full path */
#ifdef __linux__
  /* The link's target, not the link: under valgrind /proc/self/exe is valgrind's own tool, and
   * only readlink() of it is redirected to the program being checked. */
  static char linked[4096];
  ssize_t len = readlink("/proc/self/exe", linked, sizeof linked - 1);
  if (len > 0) {
    linked[len] = '\0';
    exe = linked;
  }
#endif
  if (posix_spawn(&pid, exe, NULL, NULL, (char *const *)args, environ) != 0) return -1;
  proc->handle = pid;
  proc->pid = (int)pid;
  return 0;
}

shk_test_exit shk_test_wait(shk_test_proc *proc, int timeout_ms) {
  shk_test_exit how = {0, 0, 0};
  int status = 0;
  for (int waited_ms = 0;; waited_ms++) {
    pid_t r = waitpid((pid_t)proc->pid, &status, WNOHANG);
    if (r == (pid_t)proc->pid) break;
    if (waited_ms >= timeout_ms) {
      how.timed_out = 1;
      kill((pid_t)proc->pid, SIGKILL);
      waitpid((pid_t)proc->pid, &status, 0);
      break;
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  how.killed = WIFSIGNALED(status);
  how.code = how.killed ? WTERMSIG(status) : WEXITSTATUS(status);
  return how;
}

int shk_test_access_violation_code(void) { return SIGSEGV; }

bool shk_test_under_valgrind(void) {
  const char *preload = getenv("LD_PRELOAD");
  return preload && strstr(preload, "vgpreload") != NULL;
}

void shk_test_sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}
#endif

void shk_test_run_child_ok(const char *name, int argc, const char *const *argv, int timeout_ms) {
  shk_test_proc proc;
  assert_int_equal(shk_test_spawn(name, argc, argv, &proc), 0);
  shk_test_exit how = shk_test_wait(&proc, timeout_ms);
  assert_int_equal(how.timed_out, 0);
  assert_int_equal(how.killed, 0);
  assert_int_equal(how.code, 0);
}

const char *shk_test_unique_name(char *buf, size_t size, const char *tag) {
  static int counter;
#ifdef _WIN32
  int pid = (int)GetCurrentProcessId();
#else
  int pid = (int)getpid();
#endif
  snprintf(buf, size, "shkt-%d-%d-%s", pid, ++counter, tag);
  return buf;
}

void shk_test_setenv(const char *name, const char *value) {
#ifdef _WIN32
  _putenv_s(name, value ? value : "");
#else
  if (value) setenv(name, value, 1);
  else unsetenv(name);
#endif
}

#ifdef _WIN32
static void sweep_dead_test_names(void) {} /* a Windows name ends with its last handle */
#else
/* Names that test runs made with shk_test_unique_name() and left when they ended without their
 * cleanup (a failed assertion skips it, kill -9 skips everything): "shkt-<pid>-..." whose process
 * is gone and that nobody changed for ten minutes (a test may still use a name its ended child
 * made). Names of live processes stay, whoever they are. Without /dev/shm nothing is done. */
static void sweep_dead_test_names(void) {
  DIR *dir = opendir("/dev/shm");
  if (!dir) return;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    if (strncmp(e->d_name, "shkt-", 5) != 0) continue;
    char *end = NULL;
    long pid = strtol(e->d_name + 5, &end, 10);
    if (end == e->d_name + 5 || *end != '-' || pid <= 0) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    char file[sizeof e->d_name + 16];
    struct stat st;
    snprintf(file, sizeof file, "/dev/shm/%s", e->d_name);
    time_t changed = stat(file, &st) == 0 ? (st.st_mtime > st.st_ctime ? st.st_mtime : st.st_ctime) : 0;
    if (changed == 0 || time(NULL) - changed < 600) continue;
    char path[sizeof e->d_name + 1];
    snprintf(path, sizeof path, "/%s", e->d_name);
    shm_unlink(path);
  }
  closedir(dir);
}
#endif

static size_t skipped_tests;

void shk_test_skip(const char *file, int line) {
  skipped_tests++;
  _skip(file, line);
}

int shk_test_main(int argc, char **argv, const char *group, const struct CMUnitTest *tests,
                  size_t count, const shk_test_child *children, size_t child_count) {
  self_path = argv[0];
#ifdef _WIN32
  static char path[MAX_PATH];
  if (GetModuleFileNameA(NULL, path, MAX_PATH) > 0) self_path = path;
  /* No error dialogs: a crashing child must just end with its exception code. */
  SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
#endif
  if (argc >= 3 && strcmp(argv[1], "--shk-test-child") == 0) {
    for (size_t i = 0; i < child_count; i++) {
      if (children[i].name && strcmp(children[i].name, argv[2]) == 0)
        return children[i].run(argc - 3, argv + 3);
    }
    fprintf(stderr, "unknown child routine %s\n", argv[2]);
    return 127;
  }
  sweep_dead_test_names();
  const char *slash = strrchr(group, '/');
  const char *bslash = strrchr(group, '\\');
  if (bslash > slash) slash = bslash;
  int failed = _cmocka_run_group_tests(slash ? slash + 1 : group, tests, count, NULL, NULL);
  if (failed == 0 && count > 0 && skipped_tests == count) {
    fprintf(stderr, "SKIPPED: all %u tests of %s skipped: nothing was exercised\n", (unsigned)count,
            slash ? slash + 1 : group);
    return SHK_TEST_SKIPPED;
  }
  return failed;
}
