/* Shared libraries through LoadLibraryExW (UTF-8 names and paths). */
#include "win32.h"

int shk__os_library_open(const char *name, bool system_only, shk__os_library **out) {
  *out = NULL;
  wchar_t wide[MAX_PATH];
  if (!win32_to_wide(name, wide, MAX_PATH)) return SHK_ENAME;
  /* Otherwise the standard search: the caller chose this name or path itself. */
  DWORD flags = system_only ? LOAD_LIBRARY_SEARCH_SYSTEM32 : 0;
  /* No "cannot find the DLL" dialog box for a library that is merely absent (this thread only). */
  DWORD old_mode = 0;
  SetThreadErrorMode(SEM_FAILCRITICALERRORS | SEM_NOOPENFILEERRORBOX, &old_mode);
  HMODULE module = LoadLibraryExW(wide, NULL, flags);
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
