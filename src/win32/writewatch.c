/* Win32 GetWriteWatch: the pages written in MEM_WRITE_WATCH memory since the last reset. It
 * does not work on mapped views (shared segments): those are watched by protection or polling. */
#include <stdlib.h>

#include "win32.h"

bool shk__os_write_watch_covers(void *addr, size_t size) {
  if (!shk__os_has(SHK__OS_WRITE_WATCH)) return false;
  PVOID one[1];
  ULONG_PTR count = 1;
  DWORD granularity = 0;
  return GetWriteWatch(0, addr, size, one, &count, &granularity) == 0;
}

int shk__os_write_watch_scan(void *addr, size_t size, shk__os_dirty_fn fn, void *ctx) {
  size_t ps = shk__os_caps_get()->page_size;
  ULONG_PTR cap = (ULONG_PTR)((size + ps - 1) / ps);
  PVOID *pages = malloc(cap * sizeof *pages);
  if (!pages) return SHK_ENOMEM;
  ULONG_PTR count = cap;
  DWORD granularity = 0;
  /* One call reports every written page and resets them together. */
  if (GetWriteWatch(WRITE_WATCH_FLAG_RESET, addr, size, pages, &count, &granularity) != 0) {
    free(pages);
    return win32_error(GetLastError());
  }
  for (ULONG_PTR i = 0; i < count && fn; i++) fn((uintptr_t)pages[i], 1, ctx);
  free(pages);
  return SHK_OK;
}
