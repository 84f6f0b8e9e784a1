/* A chunk function's identity across processes: its module's path and load address, and its
 * offset inside the module, found and resolved over the OS layer's module primitives. */
#include <string.h>

#include "task_internal.h"

int shk__task_fn_locate(shk_task_fn fn, shk__task_fn_id *id) {
  memset(id, 0, sizeof *id);
  void *addr;
  _Static_assert(sizeof addr == sizeof fn, "function and data pointers differ in size");
  memcpy(&addr, &fn, sizeof addr);
  shk__os_module mod;
  if (!fn || shk__os_module_of(addr, &mod) != SHK_OK) return SHK_ENOENT;
  _Static_assert(sizeof id->module == sizeof mod.path, "module paths differ in size");
  id->base = (uint64_t)mod.base;
  id->offset = (uint64_t)((uintptr_t)addr - mod.base);
  memcpy(id->module, mod.path, sizeof id->module);
  return SHK_OK;
}

static shk_task_fn fn_at(uintptr_t base, uint64_t offset) {
  void *addr = (void *)(base + (uintptr_t)offset);
  shk_task_fn fn;
  memcpy(&fn, &addr, sizeof fn);
  return fn;
}

int shk__task_fn_resolve(const shk__task_fn_id *id, shk__os_library **loaded, shk_task_fn *fn) {
  *fn = NULL;
  if (id->base == 0 || id->base + id->offset < id->base) return SHK_ENOENT;
  /* The same module at the same place (a fork, or the same image base): nothing to load. */
  shk__os_module mod;
  if (shk__os_module_of((const void *)(uintptr_t)(id->base + id->offset), &mod) == SHK_OK &&
      mod.base == (uintptr_t)id->base && strncmp(mod.path, id->module, sizeof mod.path) == 0) {
    *fn = fn_at(mod.base, id->offset);
    return SHK_OK;
  }
  /* Elsewhere, or a module loaded after this worker started: by path. */
  shk__os_library *lib = NULL;
  if (shk__os_library_open(id->module, false, &lib) != SHK_OK) return SHK_ENOENT;
  if (shk__os_library_module(lib, &mod) != SHK_OK || id->offset >= mod.size) {
    shk__os_library_close(lib);
    return SHK_ENOENT;
  }
  shk__os_library_close(*loaded); /* the previous function's, if any */
  *loaded = lib;
  *fn = fn_at(mod.base, id->offset);
  return SHK_OK;
}
