/* Win32 segments: page-file-backed CreateFileMapping + MapViewOfFile, owner-only DACL. */
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
  void *addr = MapViewOfFile(h, writable ? FILE_MAP_ALL_ACCESS : FILE_MAP_READ, 0, 0, 0);
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
  HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, &owner.sa, PAGE_READWRITE,
                                (DWORD)(size64 >> 32), (DWORD)size64, os_name ? wname : NULL);
  DWORD err = GetLastError();
  if (!h) {
    rc = win32_error(err);
    return rc == SHK_ENOMEM || rc == SHK_EINVAL || rc == SHK_EOS ? SHK_ESIZE : rc;
  }
  if (err == ERROR_ALREADY_EXISTS) {
    CloseHandle(h);
    return win32_error(ERROR_ALREADY_EXISTS);
  }
  rc = map_view(h, true, seg);
  if (rc != SHK_OK) {
    CloseHandle(h);
    return rc == SHK_ENOMEM || rc == SHK_EINVAL || rc == SHK_EOS ? SHK_ESIZE : rc;
  }
  return SHK_OK;
}

int shk__os_segment_open(const char *os_name, bool writable, shk__os_segment *seg) {
  memset(seg, 0, sizeof *seg);
  wchar_t wname[SHK__OS_SEGMENT_NAME_SIZE];
  if (!win32_to_wide(os_name, wname, SHK__OS_SEGMENT_NAME_SIZE)) return SHK_ENAME;
  HANDLE h = OpenFileMappingW(writable ? FILE_MAP_ALL_ACCESS : FILE_MAP_READ, FALSE, wname);
  if (!h) return win32_error(GetLastError());
  int rc = map_view(h, writable, seg);
  if (rc != SHK_OK) CloseHandle(h);
  return rc;
}

void shk__os_segment_close(shk__os_segment *seg) {
  if (seg->addr) {
    UnmapViewOfFile(seg->addr);
    CloseHandle((HANDLE)seg->handle);
  }
  memset(seg, 0, sizeof *seg);
}

/* A Windows name lives exactly as long as its handles: there is nothing to remove. */
int shk__os_segment_unlink(const char *os_name) {
  (void)os_name;
  return SHK_OK;
}

int shk__os_segment_list(shk__os_segment_name_fn fn, void *user) {
  (void)fn;
  (void)user;
  return SHK_EUNSUPPORTED;
}
