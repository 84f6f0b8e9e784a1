/* Shared libraries through LoadLibraryExW (UTF-8 names and paths), and the module that holds
 * an address (GetModuleHandleExW, GetModuleInformation). */
#include "win32.h"

#include <psapi.h> /* after windows.h, which it needs */

int shk__os_library_open(const char *name, bool system_only, shk__os_library **out) {
  *out = NULL;
  wchar_t wide[MAX_PATH];
  if (!win32_to_wide(name, wide, MAX_PATH)) return SHK_ENAME;
  /* Otherwise the standard search: the caller chose this name or path itself. */
  DWORD flags = system_only ? LOAD_LIBRARY_SEARCH_SYSTEM32 : 0;
  /* No "cannot find the DLL" dialog box for a library that is merely absent (this thread only). */
  DWORD old_mode = 0;
  SetThreadErrorMode(SEM_FAILCRITICALERRORS | SEM_NOOPENFILEERRORBOX, &old_mode);
  HMODULE module =
      WIN32_FAULTABLE(SHK__FAULT_MODULE_LOAD, NULL, LoadLibraryExW(wide, NULL, flags));
  DWORD err = module ? ERROR_SUCCESS : GetLastError();
  SetThreadErrorMode(old_mode, NULL);
  if (!module) {
    int rc = win32_error(err); /* records the raw code for shk_last_os_error() */
    return rc == SHK_ENOMEM ? rc : SHK_ENOENT;
  }
  *out = (shk__os_library *)module;
  return SHK_OK;
}

shk__os_function shk__os_library_function(shk__os_library *lib, const char *name) {
  /* FARPROC and our function type are both plain function pointers. */
  return (shk__os_function)(void (*)(void))GetProcAddress((HMODULE)lib, name);
}

void shk__os_library_close(shk__os_library *lib) {
  if (lib) FreeLibrary((HMODULE)lib);
}

static int win32_module_fill(HMODULE mod, shk__os_module *out) {
  wchar_t path[MAX_PATH * 2];
  MODULEINFO info;
  DWORD n = GetModuleFileNameW(mod, path, (DWORD)(sizeof path / sizeof path[0]));
  if (n == 0 || n >= sizeof path / sizeof path[0] ||
      !win32_from_wide(path, out->path, (int)sizeof out->path) ||
      !GetModuleInformation(GetCurrentProcess(), mod, &info, sizeof info))
    return SHK_ENOENT;
  out->base = (uintptr_t)mod;
  out->size = info.SizeOfImage;
  return SHK_OK;
}

int shk__os_module_of(const void *addr, shk__os_module *mod) {
  memset(mod, 0, sizeof *mod);
  HMODULE h = NULL;
  if (!addr || !GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                                       GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                                   (LPCWSTR)addr, &h))
    return SHK_ENOENT;
  return win32_module_fill(h, mod);
}

int shk__os_library_module(shk__os_library *lib, shk__os_module *mod) {
  memset(mod, 0, sizeof *mod);
  if (!lib) return SHK_ENOENT;
  return win32_module_fill((HMODULE)lib, mod);
}
