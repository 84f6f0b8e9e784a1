/* Win32 write-fault hook: a vectored exception handler, first in the chain, that claims write
 * access violations on pages the watcher protected and returns EXCEPTION_CONTINUE_SEARCH for
 * every other exception, so real crashes reach the next handler or end the process as they
 * would without shmkit. Also module lookup for instruction addresses. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "win32.h"

static PVOID handler;
static _Atomic(shk__os_fault_fn) hook;

static LONG CALLBACK on_exception(EXCEPTION_POINTERS *ep) {
  const EXCEPTION_RECORD *er = ep->ExceptionRecord;
  if (er->ExceptionCode != EXCEPTION_ACCESS_VIOLATION || er->NumberParameters < 2)
    return EXCEPTION_CONTINUE_SEARCH;
  if (er->ExceptionInformation[0] != 1) return EXCEPTION_CONTINUE_SEARCH; /* 1: a write */
  shk__os_fault_fn fn = atomic_load(&hook);
  if (!fn) return EXCEPTION_CONTINUE_SEARCH;
  shk__os_fault f = {(uintptr_t)er->ExceptionInformation[1], (uintptr_t)er->ExceptionAddress,
                     true, true};
  return fn(&f) ? EXCEPTION_CONTINUE_EXECUTION : EXCEPTION_CONTINUE_SEARCH;
}

int shk__os_fault_install(shk__os_fault_fn fn) {
  atomic_store(&hook, fn);
  if (handler) return SHK_OK;
  handler = WIN32_FAULTABLE(SHK__FAULT_FAULT_HANDLER, NULL,
                            AddVectoredExceptionHandler(1, on_exception));
  if (!handler) {
    atomic_store(&hook, NULL);
    return win32_error(GetLastError());
  }
  return SHK_OK;
}

/* Vectored handlers are a list: one added later goes in front of ours but cannot take ours out,
 * so a registered hook is always still there. */
int shk__os_fault_refresh(void) { return SHK_OK; }


int shk__os_symbolize(uintptr_t ip, char *module, size_t module_size, char *symbol,
                      size_t symbol_size) {
  if (module_size) module[0] = '\0';
  if (symbol_size) symbol[0] = '\0';
  HMODULE mod = NULL;
  if (!ip || !GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                                     GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                                 (LPCSTR)ip, &mod))
    return SHK_ENOENT;
  char path[MAX_PATH];
  DWORD n = GetModuleFileNameA(mod, path, MAX_PATH);
  if (n == 0 || n >= MAX_PATH) return SHK_ENOENT;
  if (module_size) snprintf(module, module_size, "%s", path);
  /* Without debug information the nearest name is the module itself plus an offset, which
   * a debugger or addr2line turns into a line. */
  const char *base = strrchr(path, '\\');
  base = base ? base + 1 : path;
  if (symbol_size)
    snprintf(symbol, symbol_size, "%s+0x%llx", base,
             (unsigned long long)(ip - (uintptr_t)mod));
  return SHK_OK;
}

size_t shk__os_map_areas_left(void) { return SIZE_MAX; }
