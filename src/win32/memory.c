/* Win32 pages: VirtualAlloc (with MEM_WRITE_WATCH when asked) and VirtualProtect. */
#include "win32.h"

int shk__os_pages_alloc(size_t size, bool write_watch, void **out) {
  *out = NULL;
  if (size == 0 || size > (size_t)PTRDIFF_MAX) return SHK_ESIZE;
  DWORD type = MEM_RESERVE | MEM_COMMIT;
  if (write_watch && shk__os_caps_get()->has_write_watch) type |= MEM_WRITE_WATCH;
  void *p = VirtualAlloc(NULL, size, type, PAGE_READWRITE);
  if (!p) return win32_error(GetLastError());
  *out = p;
  return SHK_OK;
}

void shk__os_pages_free(void *addr, size_t size) {
  (void)size;
  if (addr) VirtualFree(addr, 0, MEM_RELEASE);
}

int shk__os_protect(void *addr, size_t size, shk__os_prot prot) {
  DWORD p = prot == SHK__OS_PROT_NONE ? PAGE_NOACCESS
            : prot == SHK__OS_PROT_READ ? PAGE_READONLY
                                        : PAGE_READWRITE;
  /* VirtualProtect rounds an unaligned address down; mprotect refuses it. Refuse it on both. */
  if ((uintptr_t)addr % shk__os_caps_get()->page_size != 0) return SHK_EINVAL;
  DWORD old;
  if (!VirtualProtect(addr, size, p, &old)) {
    DWORD err = GetLastError();
    return err == ERROR_NOT_ENOUGH_MEMORY ? SHK_ENOMEM : SHK_EINVAL;
  }
  return SHK_OK;
}

int shk__os_memory_peek(const void *addr, void *buf, size_t n) {
  if (n == 0) return SHK_OK;
  SIZE_T got = 0;
  if (ReadProcessMemory(GetCurrentProcess(), addr, buf, n, &got) && got == n) return SHK_OK;
  DWORD err = GetLastError();
  if (err == ERROR_PARTIAL_COPY || err == ERROR_NOACCESS || err == ERROR_INVALID_ADDRESS)
    return shk__error_record_os(SHK_EFAULT, (int)err);
  return win32_error(err);
}
