/* Win32 segments: page-file-backed CreateFileMapping + MapViewOfFile, owner-only DACL; reserved
 * (SEC_RESERVE) segments committed in steps; references compared with CompareObjectHandles. */
#include <stdio.h>
#include <string.h>

#include "win32.h"

void shk__os_segment_name(const char *portable, char os_name[SHK__OS_SEGMENT_NAME_SIZE]) {
  snprintf(os_name, SHK__OS_SEGMENT_NAME_SIZE, "Local\\%s", portable);
}

/* A security descriptor whose DACL grants access to the current user only. */
typedef struct win32_owner_only {
  SECURITY_ATTRIBUTES sa;
  SECURITY_DESCRIPTOR sd;
  unsigned char token_user[256];
  unsigned char acl[256];
} win32_owner_only;

static int win32_owner_only_init(win32_owner_only *o) {
  HANDLE token;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) return win32_error(GetLastError());
  DWORD len = 0;
  BOOL ok = GetTokenInformation(token, TokenUser, o->token_user, sizeof o->token_user, &len);
  DWORD err = GetLastError();
  CloseHandle(token);
  if (!ok) return win32_error(err);
  PSID sid = ((TOKEN_USER *)(void *)o->token_user)->User.Sid;
  PACL acl = (PACL)(void *)o->acl;
  if (!InitializeAcl(acl, sizeof o->acl, ACL_REVISION) ||
      !AddAccessAllowedAce(acl, ACL_REVISION, GENERIC_ALL | STANDARD_RIGHTS_ALL | SECTION_ALL_ACCESS, sid) ||
      !InitializeSecurityDescriptor(&o->sd, SECURITY_DESCRIPTOR_REVISION) ||
      !SetSecurityDescriptorDacl(&o->sd, TRUE, acl, FALSE))
    return win32_error(GetLastError());
  o->sa.nLength = sizeof o->sa;
  o->sa.lpSecurityDescriptor = &o->sd;
  o->sa.bInheritHandle = FALSE;
  return SHK_OK;
}

static int map_view(HANDLE h, bool writable, shk__os_segment *seg) {
  void *addr = WIN32_FAULTABLE(SHK__FAULT_SEGMENT_MAP, NULL,
                               MapViewOfFile(h, writable ? FILE_MAP_ALL_ACCESS : FILE_MAP_READ,
                                             0, 0, 0));
  if (!addr) return win32_error(GetLastError());
  MEMORY_BASIC_INFORMATION mbi;
  if (VirtualQuery(addr, &mbi, sizeof mbi) == 0) {
    DWORD err = GetLastError();
    UnmapViewOfFile(addr);
    return win32_error(err);
  }
  seg->addr = addr;
  seg->size = mbi.RegionSize;
  seg->handle = (intptr_t)h;
  seg->writable = writable;
  return SHK_OK;
}

int shk__os_segment_create(const char *os_name, size_t size, shk__os_segment *seg) {
  memset(seg, 0, sizeof *seg);
  wchar_t wname[SHK__OS_SEGMENT_NAME_SIZE];
  if (os_name && !win32_to_wide(os_name, wname, SHK__OS_SEGMENT_NAME_SIZE)) return SHK_ENAME;
  win32_owner_only owner;
  int rc = win32_owner_only_init(&owner);
  if (rc != SHK_OK) return rc;
  unsigned long long size64 = size;
  HANDLE h = WIN32_FAULTABLE(SHK__FAULT_SEGMENT_CREATE, NULL,
                             CreateFileMappingW(INVALID_HANDLE_VALUE, &owner.sa, PAGE_READWRITE,
                                                (DWORD)(size64 >> 32), (DWORD)size64,
                                                os_name ? wname : NULL));
  DWORD err = GetLastError();
  if (!h) {
    rc = win32_error(err);
    return shk__error_as_size(rc);
  }
  if (err == ERROR_ALREADY_EXISTS) {
    CloseHandle(h);
    return win32_error(ERROR_ALREADY_EXISTS);
  }
  rc = map_view(h, true, seg);
  if (rc != SHK_OK) {
    CloseHandle(h);
    return shk__error_as_size(rc);
  }
  return SHK_OK;
}

int shk__os_segment_open(const char *os_name, bool writable, shk__os_segment *seg) {
  memset(seg, 0, sizeof *seg);
  wchar_t wname[SHK__OS_SEGMENT_NAME_SIZE];
  if (!win32_to_wide(os_name, wname, SHK__OS_SEGMENT_NAME_SIZE)) return SHK_ENAME;
  HANDLE h = WIN32_FAULTABLE(
      SHK__FAULT_SEGMENT_OPEN, NULL,
      OpenFileMappingW(writable ? FILE_MAP_ALL_ACCESS : FILE_MAP_READ, FALSE, wname));
  if (!h) return win32_error(GetLastError());
  int rc = map_view(h, writable, seg);
  if (rc != SHK_OK) CloseHandle(h);
  return rc;
}

int shk__os_segment_map(intptr_t handle, size_t offset, size_t size, bool writable,
                        shk__os_segment *seg) {
  memset(seg, 0, sizeof *seg);
  if (!handle || size == 0) return SHK_EINVAL;
  unsigned long long off = offset;
  void *addr = WIN32_FAULTABLE(
      SHK__FAULT_SEGMENT_MAP, NULL,
      MapViewOfFile((HANDLE)handle, writable ? FILE_MAP_ALL_ACCESS : FILE_MAP_READ,
                    (DWORD)(off >> 32), (DWORD)off, size));
  if (!addr) return win32_error(GetLastError());
  seg->addr = addr;
  seg->size = size;
  seg->handle = handle;
  seg->writable = writable;
  return SHK_OK;
}

void shk__os_segment_close(shk__os_segment *seg) {
  if (seg->addr) {
    (void)WIN32_FAULTABLE(SHK__FAULT_SEGMENT_UNMAP, FALSE, UnmapViewOfFile(seg->addr));
    CloseHandle((HANDLE)seg->handle);
  }
  memset(seg, 0, sizeof *seg);
}

/* A Windows name lives exactly as long as its handles: there is nothing to remove. */
int shk__os_segment_unlink(const char *os_name) {
  (void)os_name;
  return SHK_OK;
}

int shk__os_segment_size_now(const shk__os_segment *seg, uint64_t *size) {
  /* A section's size is fixed while a view of it is mapped. */
  *size = seg->size;
  return SHK_OK;
}

typedef BOOL(WINAPI *win32_compare_fn)(HANDLE, HANDLE);

/* CompareObjectHandles exists from Windows 10 on (and in wine); looked up once. */
static win32_compare_fn win32_compare_handles(void) {
  static win32_compare_fn fn;
  static volatile LONG looked;
  if (!InterlockedCompareExchange(&looked, 0, 0)) {
    HMODULE k = GetModuleHandleW(L"kernelbase.dll");
    FARPROC p = k ? GetProcAddress(k, "CompareObjectHandles") : NULL;
    memcpy(&fn, &p, sizeof fn);
    InterlockedExchange(&looked, 1);
  }
  return fn;
}

int shk__os_segment_ref_take(const shk__os_segment *seg, shk__os_segment_ref *ref) {
  memset(ref, 0, sizeof *ref);
  if (!win32_compare_handles()) return SHK_EUNSUPPORTED;
  /* Holding the object keeps it from vanishing, so no other segment can ever be "the same". */
  HANDLE dup = NULL;
  if (!DuplicateHandle(GetCurrentProcess(), (HANDLE)seg->handle, GetCurrentProcess(), &dup, 0,
                       FALSE, DUPLICATE_SAME_ACCESS))
    return win32_error(GetLastError());
  ref->a = (uint64_t)(uintptr_t)dup;
  return SHK_OK;
}

bool shk__os_segment_ref_same(const shk__os_segment_ref *ref, const shk__os_segment *seg) {
  win32_compare_fn same = win32_compare_handles();
  return ref->a && same && same((HANDLE)(uintptr_t)ref->a, (HANDLE)seg->handle);
}

void shk__os_segment_ref_drop(shk__os_segment_ref *ref) {
  if (ref->a) CloseHandle((HANDLE)(uintptr_t)ref->a);
  ref->a = ref->b = 0;
}

int shk__os_segment_reserve(size_t size, shk__os_segment *seg) {
  memset(seg, 0, sizeof *seg);
  unsigned long long size64 = size;
  HANDLE h = WIN32_FAULTABLE(SHK__FAULT_SEGMENT_CREATE, NULL,
                             CreateFileMappingW(INVALID_HANDLE_VALUE, NULL,
                                                PAGE_READWRITE | SEC_RESERVE,
                                                (DWORD)(size64 >> 32), (DWORD)size64, NULL));
  if (!h) return shk__error_as_size(win32_error(GetLastError()));
  void *addr = WIN32_FAULTABLE(SHK__FAULT_SEGMENT_MAP, NULL,
                               MapViewOfFile(h, FILE_MAP_ALL_ACCESS, 0, 0, size));
  if (!addr) {
    int rc = win32_error(GetLastError());
    CloseHandle(h);
    return shk__error_as_size(rc);
  }
  seg->addr = addr;
  seg->size = size;
  seg->handle = (intptr_t)h;
  seg->writable = true;
  return SHK_OK;
}

int shk__os_segment_commit(shk__os_segment *seg, size_t offset, size_t size) {
  if (size == 0) return SHK_OK;
  if (offset > seg->size || size > seg->size - offset) return SHK_ERANGE;
  if (!VirtualAlloc((char *)seg->addr + offset, size, MEM_COMMIT, PAGE_READWRITE))
    return shk__error_record_os(SHK_ENOMEM, (int)GetLastError());
  return SHK_OK;
}

int shk__os_segment_list(shk__os_segment_name_fn fn, void *user) {
  (void)fn;
  (void)user;
  return SHK_EUNSUPPORTED;
}
