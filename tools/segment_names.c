/* The names of the shared-memory segments that exist, where the system can list them: the
 * /dev/shm folder on Linux, the session's BaseNamedObjects directory (its Section objects) on
 * Windows. Elsewhere the tool says it cannot list. */
#include <string.h>
#include <wchar.h>

#include "tool.h"

#if defined(__linux__)
#include <dirent.h>

int tool_segment_names(void (*fn)(const char *name, void *user), void *user) {
  DIR *dir = opendir("/dev/shm");
  if (!dir) return SHK_EUNSUPPORTED;
  struct dirent *entry;
  while ((entry = readdir(dir)) != NULL) {
    if (entry->d_name[0] == '.') continue;
    fn(entry->d_name, user);
  }
  closedir(dir);
  return SHK_OK;
}
#elif defined(_WIN32)
#include <windows.h>
#include <winternl.h>

/* ntdll's object-directory calls have no import library in every toolchain: look them up. */
typedef struct dir_entry {
  UNICODE_STRING name;
  UNICODE_STRING type;
} dir_entry;
typedef NTSTATUS(NTAPI *open_dir_fn)(HANDLE *, ACCESS_MASK, OBJECT_ATTRIBUTES *);
typedef NTSTATUS(NTAPI *query_dir_fn)(HANDLE, void *, ULONG, BOOLEAN, BOOLEAN, ULONG *, ULONG *);

static bool is_section(const UNICODE_STRING *type) {
  static const wchar_t section[] = L"Section";
  return type->Length == sizeof section - sizeof(wchar_t) &&
         memcmp(type->Buffer, section, type->Length) == 0;
}

int tool_segment_names(void (*fn)(const char *name, void *user), void *user) {
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  open_dir_fn open_dir = ntdll ? (open_dir_fn)(void (*)(void))GetProcAddress(ntdll, "NtOpenDirectoryObject") : NULL;
  query_dir_fn query_dir = ntdll ? (query_dir_fn)(void (*)(void))GetProcAddress(ntdll, "NtQueryDirectoryObject") : NULL;
  if (!open_dir || !query_dir) return SHK_EUNSUPPORTED;
  DWORD session = 0;
  ProcessIdToSessionId(GetCurrentProcessId(), &session);
  wchar_t path[64];
  if (session == 0) wcscpy(path, L"\\BaseNamedObjects");
  else swprintf(path, 64, L"\\Sessions\\%lu\\BaseNamedObjects", (unsigned long)session);
  UNICODE_STRING upath = {(USHORT)(wcslen(path) * sizeof(wchar_t)), (USHORT)sizeof path, path};
  OBJECT_ATTRIBUTES oa;
  InitializeObjectAttributes(&oa, &upath, 0, NULL, NULL);
  HANDLE dir;
  if (open_dir(&dir, 0x0001 /* DIRECTORY_QUERY */, &oa) < 0) return SHK_EUNSUPPORTED;
  union {
    dir_entry entry;
    unsigned char bytes[4096];
  } buf;
  ULONG context = 0, length = 0;
  BOOLEAN restart = TRUE;
  while (query_dir(dir, &buf, sizeof buf, TRUE, restart, &context, &length) >= 0) {
    restart = FALSE;
    if (!is_section(&buf.entry.type)) continue;
    char name[256];
    int n = WideCharToMultiByte(CP_UTF8, 0, buf.entry.name.Buffer,
                                buf.entry.name.Length / (int)sizeof(wchar_t), name,
                                (int)sizeof name - 1, NULL, NULL);
    if (n <= 0) continue;
    name[n] = '\0';
    fn(name, user);
  }
  CloseHandle(dir);
  return SHK_OK;
}
#else
int tool_segment_names(void (*fn)(const char *name, void *user), void *user) {
  (void)fn;
  (void)user;
  return SHK_EUNSUPPORTED;
}
#endif
