/* Win32 processes: start this executable again, wait with a timeout, kill, liveness. */
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "win32.h"

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

int shk__os_proc_spawn_self(const char *const *args, int argc, shk__os_proc *proc) {
  memset(proc, 0, sizeof *proc);
  enum { CMD_CHARS = 32768 };
  wchar_t *cmd = malloc(CMD_CHARS * sizeof *cmd);
  wchar_t *arg = malloc(CMD_CHARS * sizeof *arg);
  wchar_t path[MAX_PATH * 2];
  int rc = SHK_OK;
  if (!cmd || !arg) {
    rc = SHK_ENOMEM;
    goto done;
  }
  DWORD n = GetModuleFileNameW(NULL, path, (DWORD)(sizeof path / sizeof path[0]));
  if (n == 0) {
    rc = win32_error(GetLastError());
    goto done;
  }
  size_t at = append_quoted(cmd, 0, CMD_CHARS, path) ;
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
  STARTUPINFOW si;
  PROCESS_INFORMATION pi;
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  if (!CreateProcessW(path, cmd + 1 /* skip the leading space */, NULL, NULL, FALSE, 0, NULL, NULL,
                      &si, &pi)) {
    rc = win32_error(GetLastError());
    goto done;
  }
  CloseHandle(pi.hThread);
  proc->handle = (intptr_t)pi.hProcess;
  proc->pid = (int)pi.dwProcessId;
done:
  free(cmd);
  free(arg);
  return rc;
}

int shk__os_proc_wait(shk__os_proc *proc, int64_t timeout_ms, shk__os_exit *how) {
  if (!proc->handle) return SHK_EINVAL;
  DWORD ms = timeout_ms < 0 ? INFINITE : (timeout_ms >= (int64_t)INFINITE ? INFINITE - 1 : (DWORD)timeout_ms);
  DWORD w = WaitForSingleObject((HANDLE)proc->handle, ms);
  if (w == WAIT_TIMEOUT) return SHK_ETIMEDOUT;
  if (w != WAIT_OBJECT_0) return win32_error(GetLastError());
  DWORD code = 0;
  GetExitCodeProcess((HANDLE)proc->handle, &code);
  CloseHandle((HANDLE)proc->handle);
  proc->handle = 0;
  proc->pid = 0;
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
