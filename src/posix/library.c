/* Shared libraries through dlopen: symbols resolved at once, kept local to the handle. */
#include <dlfcn.h>
#include <string.h>

#include "posix.h"

/* The handle dlopen gives is the library object: nothing else to keep. */
int shk__os_library_open(const char *name, bool system_only, shk__os_library **out) {
  (void)system_only; /* no separate system directory: the loader's own search order */
  *out = NULL;
  void *handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!handle) return SHK_ENOENT; /* dlerror() has the loader's reason; errno is not set */
  *out = handle;
  return SHK_OK;
}

shk__os_function shk__os_library_function(shk__os_library *lib, const char *name) {
  void *symbol = dlsym(lib, name);
  /* POSIX guarantees a function's address survives the round trip through void *; C does not
   * define the cast, so the bits are copied. */
  shk__os_function fn;
  _Static_assert(sizeof fn == sizeof symbol, "function and object pointers differ in size");
  memcpy(&fn, &symbol, sizeof fn);
  return fn;
}

void shk__os_library_close(shk__os_library *lib) {
  if (lib) dlclose(lib);
}
