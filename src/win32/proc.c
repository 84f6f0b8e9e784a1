/* Win32 processes: start an executable with exactly the handles it should inherit (in a
 * kill-on-close job when asked), wait with a timeout, kill, liveness; handles. */
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "win32.h"

/* Coverage builds (ci/stages/46-coverage-wine.sh defines SHK_COVERAGE_DUMP): a process that ends
 * with TerminateProcess runs no exit handler, so gcov's counters of this module are written
 * first. Nothing in any other build. */
#ifdef SHK_COVERAGE_DUMP
void __gcov_dump(void);
#define COVERAGE_DUMP() __gcov_dump()
#else
#define COVERAGE_DUMP() ((void)0)
#endif

int shk__os_self_path(char *buf, size_t size) {
  wchar_t wide[MAX_PATH * 2];
  DWORD n = GetModuleFileNameW(NULL, wide, (DWORD)(sizeof wide / sizeof wide[0]));
  if (n == 0 || n >= sizeof wide / sizeof wide[0]) return win32_error(GetLastError());
  if (!win32_from_wide(wide, buf, (int)(size > INT32_MAX ? INT32_MAX : size))) return SHK_ERANGE;
  return SHK_OK;
}

/* Appends one argument quoted so that CommandLineToArgvW gives it back unchanged. */
static size_t append_quoted(wchar_t *cmd, size_t at, size_t cap, const wchar_t *arg) {
  if (at + 1 < cap) cmd[at++] = L' ';
  if (at + 1 < cap) cmd[at++] = L'"';
  for (const wchar_t *p = arg;; p++) {
    size_t slashes = 0;
    while (*p == L'\\') {
      p++;
      slashes++;
    }
    /* Backslashes double before a quote or the closing quote; the quote itself is escaped. */
    size_t copies = (*p == L'"' || *p == L'\0') ? slashes * 2 : slashes;
    for (size_t i = 0; i < copies && at + 1 < cap; i++) cmd[at++] = L'\\';
    if (*p == L'\0') break;
    if (*p == L'"' && at + 1 < cap) cmd[at++] = L'\\';
    if (at + 1 < cap) cmd[at++] = *p;
  }
  if (at + 1 < cap) cmd[at++] = L'"';
  cmd[at] = L'\0';
  return at;
}

int shk__os_proc_wait(shk__os_proc *proc, int64_t timeout_ms, shk__os_exit *how) {
  if (!proc->handle) return SHK_EINVAL;
  DWORD ms = timeout_ms < 0 ? INFINITE
                            : shk__ms_from_ns((uint64_t)SHK__MIN(timeout_ms, (int64_t)INFINITE) * 1000000u,
                                              INFINITE - 1);
  DWORD w = WaitForSingleObject((HANDLE)proc->handle, ms);
  if (w == WAIT_TIMEOUT) return SHK_ETIMEDOUT;
  if (w != WAIT_OBJECT_0) return win32_error(GetLastError());
  DWORD code = 0;
  GetExitCodeProcess((HANDLE)proc->handle, &code);
  CloseHandle((HANDLE)proc->handle);
  if (proc->job) CloseHandle((HANDLE)proc->job);
  proc->handle = 0;
  proc->pid = 0;
  proc->job = 0;
  /* An unhandled exception ends a process with the exception (NTSTATUS error) as exit code. */
  how->kind = (code & 0xC0000000u) == 0xC0000000u ? SHK__OS_SIGNALED : SHK__OS_EXITED;
  how->code = (int)code;
  return SHK_OK;
}

int shk__os_proc_kill(shk__os_proc *proc) {
  if (!proc->handle) return SHK_EINVAL;
  if (!TerminateProcess((HANDLE)proc->handle, 137)) return win32_error(GetLastError());
  return SHK_OK;
}

int shk__os_pid(void) { return (int)GetCurrentProcessId(); }

int64_t shk__os_pid_started(int pid) {
  (void)pid; /* only asked for names in a list Windows does not keep */
  return 0;
}

bool shk__os_pid_alive(int pid) {
  if (pid <= 0) return false;
  HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
  if (!h) return GetLastError() == ERROR_ACCESS_DENIED; /* exists, but is not ours to inspect */
  DWORD code = 0;
  BOOL ok = GetExitCodeProcess(h, &code);
  CloseHandle(h);
  return ok && code == STILL_ACTIVE;
}

int shk__os_proc_start_time(int pid, uint64_t *start) {
  if (pid <= 0 || !start) return SHK_EINVAL;
  HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
  if (!h) {
    DWORD err = GetLastError();
    if (err == ERROR_INVALID_PARAMETER) return SHK_ENOENT; /* no process has this id */
    return err == ERROR_ACCESS_DENIED ? SHK_EUNSUPPORTED : win32_error(err);
  }
  FILETIME created, exited, kernel, user;
  DWORD code = 0;
  BOOL ok = GetProcessTimes(h, &created, &exited, &kernel, &user) && GetExitCodeProcess(h, &code);
  DWORD err = ok ? 0 : GetLastError();
  CloseHandle(h);
  if (!ok) return win32_error(err);
  if (code != STILL_ACTIVE) return SHK_ENOENT;
  *start = ((uint64_t)created.dwHighDateTime << 32) | created.dwLowDateTime;
  return SHK_OK;
}

int shk__os_proc_fork(const intptr_t *keep, size_t nkeep, shk__os_proc *proc, bool *in_child) {
  (void)keep;
  (void)nkeep;
  memset(proc, 0, sizeof *proc);
  *in_child = false;
  return SHK_EUNSUPPORTED;
}

static HANDLE kill_on_close_job(void) {
  HANDLE job = CreateJobObjectW(NULL, NULL);
  if (!job) return NULL;
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION info;
  memset(&info, 0, sizeof info);
  info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation, &info, sizeof info)) {
    CloseHandle(job);
    return NULL;
  }
  return job;
}

int shk__os_proc_start(const char *path, const char *const *args, int argc, const intptr_t *inherit,
                       size_t n, bool kill_on_close, shk__os_proc *proc) {
  memset(proc, 0, sizeof *proc);
  enum { CMD_CHARS = 32768 };
  wchar_t *cmd = malloc(CMD_CHARS * sizeof *cmd);
  wchar_t *arg = malloc(CMD_CHARS * sizeof *arg);
  wchar_t wpath[MAX_PATH * 2];
  LPPROC_THREAD_ATTRIBUTE_LIST attrs = NULL;
  HANDLE list[16];
  size_t nlist = 0;
  int rc = SHK_OK;
  if (!cmd || !arg) {
    rc = SHK_ENOMEM;
    goto done;
  }
  if (path ? !win32_to_wide(path, wpath, (int)(sizeof wpath / sizeof wpath[0]))
           : (GetModuleFileNameW(NULL, wpath, (DWORD)(sizeof wpath / sizeof wpath[0])) == 0)) {
    rc = path ? SHK_ENAME : win32_error(GetLastError());
    goto done;
  }
  size_t at = append_quoted(cmd, 0, CMD_CHARS, wpath);
  for (int i = 0; i < argc; i++) {
    if (!win32_to_wide(args[i], arg, CMD_CHARS)) {
      rc = SHK_EINVAL;
      goto done;
    }
    at = append_quoted(cmd, at, CMD_CHARS, arg);
  }
  if (at + 2 >= CMD_CHARS) {
    rc = SHK_ERANGE;
    goto done;
  }
  for (size_t i = 0; i < n && nlist < sizeof list / sizeof list[0]; i++)
    if (inherit[i]) list[nlist++] = (HANDLE)inherit[i];
  /* Only these handles are inherited, even if another thread makes inheritable ones now. */
  if (nlist > 0) {
    SIZE_T size = 0;
    InitializeProcThreadAttributeList(NULL, 1, 0, &size);
    attrs = malloc(size);
    if (!attrs || !InitializeProcThreadAttributeList(attrs, 1, 0, &size) ||
        !UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, list,
                                   nlist * sizeof list[0], NULL, NULL)) {
      free(attrs);
      attrs = NULL; /* fall back to plain inheritance */
    }
  }
  STARTUPINFOEXW si;
  memset(&si, 0, sizeof si);
  si.StartupInfo.cb = attrs ? sizeof si : sizeof si.StartupInfo;
  si.lpAttributeList = attrs;
  DWORD flags = CREATE_SUSPENDED | (attrs ? EXTENDED_STARTUPINFO_PRESENT : 0);
  PROCESS_INFORMATION pi;
  if (!WIN32_FAULTABLE(SHK__FAULT_PROC_START, FALSE,
                       CreateProcessW(wpath, cmd + 1 /* skip the leading space */, NULL, NULL,
                                      nlist > 0, flags, NULL, NULL, &si.StartupInfo, &pi))) {
    rc = win32_error(GetLastError());
    goto done;
  }
  HANDLE job = kill_on_close ? kill_on_close_job() : NULL;
  /* Without a job (a parent job that forbids nesting) the child still leaves when it sees this
   * process end (a channel's peer). */
  if (job && !AssignProcessToJobObject(job, pi.hProcess)) {
    CloseHandle(job);
    job = NULL;
  }
  ResumeThread(pi.hThread);
  CloseHandle(pi.hThread);
  proc->handle = (intptr_t)pi.hProcess;
  proc->pid = (int)pi.dwProcessId;
  proc->job = (intptr_t)job;
done:
  if (attrs) {
    DeleteProcThreadAttributeList(attrs);
    free(attrs);
  }
  free(cmd);
  free(arg);
  return rc;
}

void shk__os_proc_bind_to_starter(int starter) {
  (void)starter; /* the kill-on-close job object that shk__os_proc_start made already does it */
}

int shk__os_proc_open(int pid, shk__os_proc *proc) {
  memset(proc, 0, sizeof *proc);
  HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)pid);
  if (!h) {
    int rc = win32_error(GetLastError());
    return rc == SHK_EINVAL ? SHK_ENOENT : rc;
  }
  proc->handle = (intptr_t)h;
  proc->pid = pid;
  return SHK_OK;
}

/* A crash ends the process with the exception code, at once: no error dialog, no debugger. */
static LONG WINAPI win32_crashed(EXCEPTION_POINTERS *info) {
  COVERAGE_DUMP();
  TerminateProcess(GetCurrentProcess(), info->ExceptionRecord->ExceptionCode);
  return EXCEPTION_EXECUTE_HANDLER;
}

void shk__os_crash_ends_process(void) {
  SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
  SetUnhandledExceptionFilter(win32_crashed);
}

_Noreturn void shk__os_exit_now(int code) {
  COVERAGE_DUMP();
  TerminateProcess(GetCurrentProcess(), (UINT)code);
  ExitProcess((UINT)code); /* not reached */
}

int shk__os_handle_dup(intptr_t handle, bool inheritable, intptr_t *out) {
  HANDLE dup = NULL;
  if (!DuplicateHandle(GetCurrentProcess(), (HANDLE)handle, GetCurrentProcess(), &dup, 0,
                       inheritable, DUPLICATE_SAME_ACCESS))
    return win32_error(GetLastError());
  *out = (intptr_t)dup;
  return SHK_OK;
}

void shk__os_handle_close(intptr_t handle) {
  if (handle > 0) CloseHandle((HANDLE)handle);
}

bool shk__os_file_is_executable(const char *path) {
  wchar_t wide[MAX_PATH * 2];
  if (!path || !win32_to_wide(path, wide, (int)(sizeof wide / sizeof wide[0]))) return false;
  DWORD attrs = GetFileAttributesW(wide);
  return attrs != INVALID_FILE_ATTRIBUTES && !(attrs & FILE_ATTRIBUTE_DIRECTORY);
}
