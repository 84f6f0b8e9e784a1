/* Shared libraries through dlopen (symbols resolved at once, kept local to the handle), and the
 * loaded module that holds an address (dl_iterate_phdr; dladdr on macOS). */
#include <dlfcn.h>
#ifndef __APPLE__
#include <link.h> /* dl_iterate_phdr; macOS has neither (dladdr is used there) */
#endif
#include <stdio.h>
#include <string.h>

#include "posix.h"

/* The handle dlopen gives is the library object: nothing else to keep. */
int shk__os_library_open(const char *name, bool system_only, shk__os_library **out) {
  (void)system_only; /* no separate system directory: the loader's own search order */
  *out = NULL;
  void *handle =
      POSIX_FAULTABLE(SHK__FAULT_MODULE_LOAD, NULL, dlopen(name, RTLD_NOW | RTLD_LOCAL));
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

/* The loaded module whose segments hold an address: its load address (the lowest segment) and
 * name. dl_iterate_phdr reads only the loader's list, unlike dladdr, which also searches symbol
 * tables: in a freshly forked worker every page it reads is a page fault. */
typedef struct posix_module_query {
  uintptr_t addr;
  uintptr_t base;
  uintptr_t end;
  const char *name;
  bool found;
} posix_module_query;

#ifdef __APPLE__
/* No dl_iterate_phdr: dladdr names the image and gives its load address (its Mach-O header). */
static bool posix_find_module(uintptr_t addr, posix_module_query *q) {
  memset(q, 0, sizeof *q);
  q->addr = addr;
  Dl_info info;
  if (dladdr((const void *)addr, &info) == 0 || !info.dli_fbase) return false;
  q->base = (uintptr_t)info.dli_fbase;
  q->end = addr + 1; /* dladdr gives no extent */
  q->name = info.dli_fname;
  q->found = true;
  return true;
}
#else

static int posix_module_of(struct dl_phdr_info *info, size_t size, void *p) {
  (void)size;
  posix_module_query *q = p;
  uintptr_t lowest = UINTPTR_MAX, highest = 0;
  bool inside = false;
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t start = (uintptr_t)info->dlpi_addr + (uintptr_t)ph->p_vaddr;
    if (start < lowest) lowest = start;
    if (start + (uintptr_t)ph->p_memsz > highest) highest = start + (uintptr_t)ph->p_memsz;
    if (q->addr >= start && q->addr - start < (uintptr_t)ph->p_memsz) inside = true;
  }
  if (!inside) return 0;
  q->base = lowest;
  q->end = highest;
  q->name = info->dlpi_name;
  q->found = true;
  return 1;
}

static bool posix_find_module(uintptr_t addr, posix_module_query *q) {
  memset(q, 0, sizeof *q);
  q->addr = addr;
  dl_iterate_phdr(posix_module_of, q);
  return q->found;
}
#endif

static int posix_module_fill(const posix_module_query *q, shk__os_module *mod) {
  mod->base = q->base;
  mod->size = (size_t)(q->end - q->base);
  /* The main program's name is "" in the loader's list. */
  snprintf(mod->path, sizeof mod->path, "%s", q->name && q->name[0] ? q->name : "/proc/self/exe");
  return SHK_OK;
}

int shk__os_module_of(const void *addr, shk__os_module *mod) {
  memset(mod, 0, sizeof *mod);
  posix_module_query q;
  if (!addr || !posix_find_module((uintptr_t)addr, &q)) return SHK_ENOENT;
  return posix_module_fill(&q, mod);
}

int shk__os_library_module(shk__os_library *lib, shk__os_module *mod) {
  memset(mod, 0, sizeof *mod);
  /* Any symbol-free way to an address inside the library: its link map names the load bias and
   * the dynamic section, which lies inside the image. */
#ifdef __APPLE__
  (void)lib;
  return SHK_ENOENT;
#else
  struct link_map *map = NULL;
  if (!lib || dlinfo(lib, RTLD_DI_LINKMAP, &map) != 0 || !map || !map->l_ld) return SHK_ENOENT;
  posix_module_query q;
  if (!posix_find_module((uintptr_t)map->l_ld, &q)) return SHK_ENOENT;
  return posix_module_fill(&q, mod);
#endif
}
