/* Win32 pages: VirtualAlloc (with MEM_WRITE_WATCH when asked), VirtualProtect, and what pages
 * allow now through VirtualQuery. */
#include "win32.h"

int shk__os_pages_alloc(size_t size, bool write_watch, void **out) {
  *out = NULL;
  if (size == 0 || size > (size_t)PTRDIFF_MAX) return SHK_ESIZE;
  DWORD type = MEM_RESERVE | MEM_COMMIT;
  if (write_watch && shk__os_has(SHK__OS_WRITE_WATCH)) type |= MEM_WRITE_WATCH;
  void *p = WIN32_FAULTABLE(SHK__FAULT_PAGES_ALLOC, NULL,
                            VirtualAlloc(NULL, size, type, PAGE_READWRITE));
  if (!p) return win32_error(GetLastError());
  *out = p;
  return SHK_OK;
}

void shk__os_pages_free(void *addr, size_t size) {
  (void)size;
  if (addr) VirtualFree(addr, 0, MEM_RELEASE);
}

static DWORD to_win32(int prot) {
  bool r = prot & SHK__OS_PROT_READ, w = prot & SHK__OS_PROT_WRITE, x = prot & SHK__OS_PROT_EXEC;
  bool copy = prot & SHK__OS_PROT_COPY;
  if (x) return w ? (copy ? PAGE_EXECUTE_WRITECOPY : PAGE_EXECUTE_READWRITE)
                  : r ? PAGE_EXECUTE_READ : PAGE_EXECUTE;
  if (w) return copy ? PAGE_WRITECOPY : PAGE_READWRITE;
  return r ? PAGE_READONLY : PAGE_NOACCESS;
}

/* Our flags for a page protection; -1 for guard pages, which no flag describes. */
static int from_win32(DWORD p) {
  if (p & PAGE_GUARD) return -1;
  switch (p & 0xFF) {
    case PAGE_READONLY: return SHK__OS_PROT_READ;
    case PAGE_READWRITE: return SHK__OS_PROT_READ_WRITE;
    case PAGE_WRITECOPY: return SHK__OS_PROT_READ_WRITE | SHK__OS_PROT_COPY;
    case PAGE_EXECUTE: return SHK__OS_PROT_EXEC;
    case PAGE_EXECUTE_READ: return SHK__OS_PROT_READ | SHK__OS_PROT_EXEC;
    case PAGE_EXECUTE_READWRITE: return SHK__OS_PROT_READ_WRITE | SHK__OS_PROT_EXEC;
    case PAGE_EXECUTE_WRITECOPY:
      return SHK__OS_PROT_READ_WRITE | SHK__OS_PROT_EXEC | SHK__OS_PROT_COPY;
    default: return SHK__OS_PROT_NONE;
  }
}

int shk__os_protect(void *addr, size_t size, int prot) {
  /* VirtualProtect rounds an unaligned address down; mprotect refuses it. Refuse it on both. */
  if ((uintptr_t)addr % shk__os_caps_get()->page_size != 0) return SHK_EINVAL;
  DWORD old;
  if (!WIN32_FAULTABLE(SHK__FAULT_PROTECT, FALSE,
                       VirtualProtect(addr, size, to_win32(prot), &old))) {
    DWORD err = GetLastError();
    /* An address that is not mapped is the caller's mistake, as mprotect's ENOMEM/EINVAL. */
    return err == ERROR_INVALID_ADDRESS ? shk__error_record_os(SHK_EINVAL, (int)err)
                                        : win32_error(err);
  }
  return SHK_OK;
}

int shk__os_memory_peek(const void *addr, void *buf, size_t n) {
  if (n == 0) return SHK_OK;
  /* The pages' protection first: wine's ReadProcessMemory of the calling process reads
   * PAGE_NOACCESS pages (measured); Windows refuses them with ERROR_PARTIAL_COPY. */
  size_t ps = shk__os_caps_get()->page_size;
  uintptr_t at = (uintptr_t)addr, first = at / ps * ps;
  if (at + n < at) return shk__error_record_os(SHK_EFAULT, ERROR_INVALID_ADDRESS);
  int prot = SHK__OS_PROT_NONE;
  bool uniform = true;
  int rc = shk__os_prot_query((void *)first, at + n - first, &prot, &uniform);
  if (rc == SHK_EFAULT || (rc == SHK_OK && !(prot & SHK__OS_PROT_READ)))
    return shk__error_record_os(SHK_EFAULT, ERROR_NOACCESS);
  SIZE_T got = 0;
  if (ReadProcessMemory(GetCurrentProcess(), addr, buf, n, &got) && got == n) return SHK_OK;
  DWORD err = GetLastError();
  if (err == ERROR_PARTIAL_COPY || err == ERROR_NOACCESS || err == ERROR_INVALID_ADDRESS)
    return shk__error_record_os(SHK_EFAULT, (int)err);
  return win32_error(err);
}

int shk__os_prot_query(void *addr, size_t size, int *prot, bool *uniform) {
  *prot = SHK__OS_PROT_NONE;
  *uniform = true;
  uintptr_t at = (uintptr_t)addr, end = at + size;
  if (size == 0 || end < at) return SHK_EINVAL;
  bool first = true;
  while (at < end) {
    MEMORY_BASIC_INFORMATION mbi;
    if (VirtualQuery((void *)at, &mbi, sizeof mbi) == 0) return SHK_EFAULT;
    if (mbi.State != MEM_COMMIT) return SHK_EFAULT;
    int flags = from_win32(mbi.Protect);
    if (flags < 0) {
      flags = SHK__OS_PROT_NONE;
      *uniform = false; /* a guard page: never to be changed by us */
    }
    if (first) {
      *prot = flags;
      first = false;
    } else {
      if (flags != *prot) *uniform = false;
      *prot &= flags;
    }
    at = (uintptr_t)mbi.BaseAddress + mbi.RegionSize;
  }
  return SHK_OK;
}
