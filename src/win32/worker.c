/* Win32 workers of chunk tasks: this executable started again with a marker argument (served
 * from shk_worker_main()), each in a kill-on-close job object; two events per worker for
 * wake-ups; segments passed by duplicating handles; function identity by module and offset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "win32.h"

#include <psapi.h> /* after windows.h, which it needs */

#define WORKER_MARKER "--shk-worker"

/* Set by shk_worker_main(): only a program that calls the hook may start worker processes, so a
 * program that forgot it can never start a chain of copies of itself. */
static volatile LONG hook_called;

static void close_handle(intptr_t *h) {
  if (*h) CloseHandle((HANDLE)*h);
  *h = 0;
}

int shk__os_worker_link_open(shk__os_worker *w) {
  memset(w, 0, sizeof *w);
  HANDLE wake_worker = CreateEventW(NULL, FALSE, FALSE, NULL);
  HANDLE wake_parent = CreateEventW(NULL, FALSE, FALSE, NULL);
  if (!wake_worker || !wake_parent) {
    int rc = win32_error(GetLastError());
    if (wake_worker) CloseHandle(wake_worker);
    if (wake_parent) CloseHandle(wake_parent);
    return rc;
  }
  w->parent_end.a = (intptr_t)wake_worker;
  w->parent_end.b = (intptr_t)wake_parent;
  /* The worker's end names the same events the other way round; for a thread these handles are
   * used directly, for a process they are inherited under other values. */
  w->worker_end.a = (intptr_t)wake_parent;
  w->worker_end.b = (intptr_t)wake_worker;
  return SHK_OK;
}

void shk__os_worker_link_close(shk__os_worker *w) {
  close_handle(&w->parent_end.a);
  close_handle(&w->parent_end.b);
  /* The worker's end shares the parent's handles (see link_open): nothing more to close. */
  w->worker_end.a = w->worker_end.b = 0;
}

/* An inheritable copy of h for the child; 0 on failure. */
static HANDLE inheritable(intptr_t h) {
  HANDLE dup = NULL;
  if (!DuplicateHandle(GetCurrentProcess(), (HANDLE)h, GetCurrentProcess(), &dup, 0, TRUE,
                       DUPLICATE_SAME_ACCESS))
    return NULL;
  return dup;
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

/* Starts "<exe> --shk-worker index arena ctl_size out_offset out_size wake_parent wake_worker
 * parent_pid" suspended, with exactly its three handles inherited, and lets it run in its job. */
static int start_process(shk__os_worker *w, unsigned index, const shk__os_segment *arena,
                         size_t ctl_size, size_t out_offset, size_t out_size,
                         PROCESS_INFORMATION *pi) {
  HANDLE h[3] = {inheritable(arena->handle), inheritable(w->worker_end.a),
                 inheritable(w->worker_end.b)};
  int rc = SHK_OK;
  LPPROC_THREAD_ATTRIBUTE_LIST attrs = NULL;
  wchar_t path[MAX_PATH * 2], cmd[MAX_PATH * 2 + 256];
  for (int i = 0; i < 3; i++)
    if (!h[i]) rc = win32_error(GetLastError());
  DWORD n = GetModuleFileNameW(NULL, path, (DWORD)(sizeof path / sizeof path[0]));
  if (rc == SHK_OK && (n == 0 || n >= sizeof path / sizeof path[0])) rc = SHK_ERANGE;
  if (rc == SHK_OK) {
    swprintf(cmd, sizeof cmd / sizeof cmd[0], L"\"%ls\" " WORKER_MARKER " %u %llx %llx %llx %llx %llx %llx %lu",
             path, index, (unsigned long long)(uintptr_t)h[0], (unsigned long long)ctl_size,
             (unsigned long long)out_offset, (unsigned long long)out_size,
             (unsigned long long)(uintptr_t)h[1], (unsigned long long)(uintptr_t)h[2],
             (unsigned long)GetCurrentProcessId());
    /* Only these handles are inherited, even if another thread makes inheritable ones now. */
    SIZE_T size = 0;
    InitializeProcThreadAttributeList(NULL, 1, 0, &size);
    attrs = malloc(size);
    if (!attrs || !InitializeProcThreadAttributeList(attrs, 1, 0, &size) ||
        !UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, h, sizeof h, NULL,
                                   NULL)) {
      if (attrs) free(attrs);
      attrs = NULL; /* fall back to plain inheritance */
    }
    STARTUPINFOEXW si;
    memset(&si, 0, sizeof si);
    si.StartupInfo.cb = attrs ? sizeof si : sizeof si.StartupInfo;
    si.lpAttributeList = attrs;
    DWORD flags = CREATE_SUSPENDED | (attrs ? EXTENDED_STARTUPINFO_PRESENT : 0);
    if (!CreateProcessW(path, cmd, NULL, NULL, TRUE, flags, NULL, NULL, &si.StartupInfo, pi))
      rc = win32_error(GetLastError());
  }
  if (attrs) {
    DeleteProcThreadAttributeList(attrs);
    free(attrs);
  }
  for (int i = 0; i < 3; i++)
    if (h[i]) CloseHandle(h[i]);
  return rc;
}

int shk__os_worker_spawn(shk__os_worker *w, unsigned index, const shk__os_segment *arena,
                         size_t ctl_size, size_t out_offset, size_t out_size,
                         const shk__os_worker *all, unsigned count) {
  (void)all;
  (void)count;
  if (!InterlockedCompareExchange(&hook_called, 0, 0)) return SHK_ENOHOOK;
  PROCESS_INFORMATION pi;
  int rc = start_process(w, index, arena, ctl_size, out_offset, out_size, &pi);
  if (rc != SHK_OK) return rc;
  HANDLE job = kill_on_close_job();
  /* Without a job (a parent job that forbids nesting) the worker still leaves when it sees the
   * pool's process end; see shk__os_link_wait. */
  if (job && !AssignProcessToJobObject(job, pi.hProcess)) {
    CloseHandle(job);
    job = NULL;
  }
  ResumeThread(pi.hThread);
  CloseHandle(pi.hThread);
  w->proc = (intptr_t)pi.hProcess;
  w->pid = (int)pi.dwProcessId;
  w->job = (intptr_t)job;
  return SHK_OK;
}

void shk__os_link_notify(const shk__os_link *end) {
  if (end->a) SetEvent((HANDLE)end->a);
}

/* The pool's process as a worker sees it (0 in the pool's own process). */
static HANDLE parent_process;

int shk__os_link_wait(const shk__os_link *end, uint64_t timeout_ns) {
  HANDLE h[2] = {(HANDLE)end->b, parent_process};
  DWORD ms = timeout_ns == UINT64_MAX ? INFINITE
                                      : (DWORD)SHK__MIN(timeout_ns / 1000000u + 1, (uint64_t)INFINITE - 1);
  DWORD r = WaitForMultipleObjects(parent_process ? 2 : 1, h, FALSE, ms);
  if (r == WAIT_OBJECT_0) return SHK_OK;
  if (r == WAIT_TIMEOUT) return SHK_ETIMEDOUT;
  return SHK_ENOENT;
}

int shk__os_workers_wait(const shk__os_worker *ws, unsigned n, uint64_t timeout_ns, bool *ended) {
  HANDLE h[MAXIMUM_WAIT_OBJECTS];
  DWORD m = 0;
  /* Wake-ups first; process ends that do not fit are found by the check below, at the latest
   * when the pool's slice ends. */
  for (unsigned i = 0; i < n && m < MAXIMUM_WAIT_OBJECTS; i++)
    if (ws[i].parent_end.b) h[m++] = (HANDLE)ws[i].parent_end.b;
  for (unsigned i = 0; i < n && m < MAXIMUM_WAIT_OBJECTS; i++)
    if (ws[i].proc) h[m++] = (HANDLE)ws[i].proc;
  DWORD ms = (DWORD)SHK__MIN(timeout_ns / 1000000u, (uint64_t)INFINITE - 1);
  if (ms == 0 && timeout_ns > 0) ms = 1;
  DWORD r = m ? WaitForMultipleObjects(m, h, FALSE, ms) : WAIT_TIMEOUT;
  for (unsigned i = 0; i < n; i++)
    if (ws[i].proc && WaitForSingleObject((HANDLE)ws[i].proc, 0) == WAIT_OBJECT_0) ended[i] = true;
  return r == WAIT_TIMEOUT ? SHK_ETIMEDOUT : SHK_OK;
}

void shk__os_worker_reap(shk__os_worker *w, bool kill, int64_t timeout_ms, shk__os_exit *how) {
  how->kind = SHK__OS_EXITED;
  how->code = 0;
  if (w->proc) {
    shk__os_proc proc = {w->proc, w->pid};
    if (kill) shk__os_proc_kill(&proc);
    if (shk__os_proc_wait(&proc, kill ? -1 : timeout_ms, how) == SHK_ETIMEDOUT) {
      shk__os_proc_kill(&proc);
      shk__os_proc_wait(&proc, -1, how);
    }
  }
  w->proc = 0;
  w->pid = 0;
  close_handle(&w->job);
  shk__os_worker_link_close(w);
}

int shk__os_worker_give_segment(shk__os_worker *w, const shk__os_segment *seg, uint64_t id,
                                uint64_t *token) {
  (void)id;
  HANDLE dup = NULL;
  if (!DuplicateHandle(GetCurrentProcess(), (HANDLE)seg->handle, (HANDLE)w->proc, &dup,
                       FILE_MAP_READ, FALSE, 0))
    return win32_error(GetLastError());
  *token = (uint64_t)(uintptr_t)dup;
  return SHK_OK;
}

int shk__os_worker_take_segment(const shk__os_link *end, uint64_t id, uint64_t token, size_t size,
                                uint64_t keep, shk__os_segment *seg) {
  (void)end;
  (void)id;
  (void)keep;
  memset(seg, 0, sizeof *seg);
  HANDLE h = (HANDLE)(uintptr_t)token;
  void *addr = MapViewOfFile(h, FILE_MAP_READ, 0, 0, size);
  if (!addr) {
    int rc = win32_error(GetLastError());
    CloseHandle(h);
    return rc;
  }
  seg->addr = addr;
  seg->size = size;
  seg->handle = (intptr_t)h;
  seg->writable = false;
  return SHK_OK;
}

int shk__os_fn_locate(shk__os_any_fn fn, shk__os_fn_id *id) {
  memset(id, 0, sizeof *id);
  HMODULE mod = NULL;
  void *addr;
  _Static_assert(sizeof addr == sizeof fn, "function and data pointers differ in size");
  memcpy(&addr, &fn, sizeof addr);
  if (!fn || !GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                                     GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                                 (LPCWSTR)addr, &mod))
    return SHK_ENOENT;
  wchar_t path[MAX_PATH * 2];
  DWORD n = GetModuleFileNameW(mod, path, (DWORD)(sizeof path / sizeof path[0]));
  if (n == 0 || n >= sizeof path / sizeof path[0] ||
      !win32_from_wide(path, id->module, (int)sizeof id->module))
    return SHK_ENOENT;
  id->base = (uint64_t)(uintptr_t)mod;
  id->offset = (uint64_t)((uintptr_t)addr - (uintptr_t)mod);
  return SHK_OK;
}

int shk__os_fn_resolve(const shk__os_fn_id *id, shk__os_any_fn *fn) {
  wchar_t path[MAX_PATH * 2];
  if (!win32_to_wide(id->module, path, (int)(sizeof path / sizeof path[0]))) return SHK_ENOENT;
  HMODULE mod = GetModuleHandleW(path);
  if (!mod) mod = LoadLibraryW(path); /* a module the pool loaded after this worker started */
  MODULEINFO info;
  if (!mod || !GetModuleInformation(GetCurrentProcess(), mod, &info, sizeof info) ||
      id->offset >= info.SizeOfImage)
    return SHK_ENOENT;
  void *addr = (char *)mod + id->offset;
  memcpy(fn, &addr, sizeof addr);
  return SHK_OK;
}

/* A crash in a chunk ends the worker with the exception code, at once: no error dialog, no
 * debugger, and the pool reads the code as the process's exit code. */
static LONG WINAPI worker_crashed(EXCEPTION_POINTERS *info) {
  TerminateProcess(GetCurrentProcess(), info->ExceptionRecord->ExceptionCode);
  return EXCEPTION_EXECUTE_HANDLER;
}

static bool parse_hex(const char *s, unsigned long long *v) {
  char *end;
  *v = strtoull(s, &end, 16);
  return *s && *end == '\0';
}

/* Maps what the command line names and serves; returns only on a malformed command line. */
static void serve_from_command_line(int argc, char **argv) {
  unsigned long long v[6];
  if (argc < 10) return;
  for (int i = 0; i < 6; i++)
    if (!parse_hex(argv[i + 3], &v[i])) return;
  char *end;
  unsigned long index = strtoul(argv[2], &end, 10);
  unsigned long parent_pid = strtoul(argv[9], NULL, 10);
  if (*end || index >= SHK_TASK_WORKERS_MAX) return;
  SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
  SetUnhandledExceptionFilter(worker_crashed);
  parent_process = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)parent_pid);
  shk__os_worker_boot boot;
  memset(&boot, 0, sizeof boot);
  boot.index = (unsigned)index;
  HANDLE arena = (HANDLE)(uintptr_t)v[0];
  void *ctl_addr = MapViewOfFile(arena, FILE_MAP_ALL_ACCESS, 0, 0, (SIZE_T)v[1]);
  void *out_addr = MapViewOfFile(arena, FILE_MAP_ALL_ACCESS, (DWORD)(v[2] >> 32), (DWORD)v[2],
                                 (SIZE_T)v[3]);
  if (!ctl_addr || !out_addr) return;
  boot.ctl.addr = ctl_addr;
  boot.ctl.size = (size_t)v[1];
  boot.ctl.handle = (intptr_t)arena;
  boot.ctl.writable = true;
  boot.out.addr = out_addr;
  boot.out.size = (size_t)v[3];
  boot.out.handle = (intptr_t)arena;
  boot.out.writable = true;
  boot.link.a = (intptr_t)v[4];
  boot.link.b = (intptr_t)v[5];
  boot.same_space = false;
  shk__task_worker_serve(&boot);
}

int shk__os_worker_main(int argc, char **argv) {
  InterlockedExchange(&hook_called, 1);
  if (argc < 2 || !argv || !argv[1] || strcmp(argv[1], WORKER_MARKER) != 0) return SHK_OK;
  serve_from_command_line(argc, argv);
  fflush(NULL);
  ExitProcess(0); /* a malformed command line too: the pool sees a worker that never started */
}
