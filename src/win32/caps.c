/* Win32: capabilities filled once, error translation and text conversion. */
#include "win32.h"

int win32_error(DWORD err) {
  int code;
  switch (err) {
    case ERROR_SUCCESS: code = SHK_OK; break;
    case ERROR_INVALID_PARAMETER:
    case ERROR_INVALID_HANDLE: code = SHK_EINVAL; break;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: code = SHK_ENOMEM; break;
    case ERROR_COMMITMENT_LIMIT:
    case ERROR_FILE_TOO_LARGE: code = SHK_ESIZE; break;
    case ERROR_ALREADY_EXISTS:
    case ERROR_FILE_EXISTS: code = SHK_EEXIST; break;
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND: code = SHK_ENOENT; break;
    case ERROR_ACCESS_DENIED: code = SHK_EACCES; break;
    case ERROR_INVALID_NAME:
    case ERROR_FILENAME_EXCED_RANGE: code = SHK_ENAME; break;
    case WAIT_TIMEOUT: code = SHK_ETIMEDOUT; break;
    case ERROR_NOT_SUPPORTED:
    case ERROR_CALL_NOT_IMPLEMENTED: code = SHK_EUNSUPPORTED; break;
    case ERROR_TOO_MANY_OPEN_FILES: code = SHK_ELIMIT; break;
    case ERROR_NOACCESS: code = SHK_EFAULT; break;
    case ERROR_BUSY: code = SHK_EBUSY; break;
    default: code = SHK_EOS; break;
  }
  return shk__error_record_os(code, (int)err);
}

bool win32_to_wide(const char *utf8, wchar_t *out, int out_chars) {
  return MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8, -1, out, out_chars) > 0;
}

bool win32_from_wide(const wchar_t *wide, char *out, int out_bytes) {
  return WideCharToMultiByte(CP_UTF8, 0, wide, -1, out, out_bytes, NULL, NULL) > 0;
}

static shk__os_caps caps;
static shk__once caps_once;

static bool probe_write_watch(void) {
  void *p = VirtualAlloc(NULL, 4096, MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH, PAGE_READWRITE);
  if (!p) return false;
  VirtualFree(p, 0, MEM_RELEASE);
  return true;
}

static void fill_caps(void) {
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  caps.page_size = si.dwPageSize;
  caps.alloc_granularity = si.dwAllocationGranularity;
  caps.has_fork = false;
  caps.exe_suffix = ".exe";
  caps.handles_by_token = true; /* a handle is duplicated into the peer */
}

const shk__os_caps *shk__os_caps_get(void) {
  shk__once_run(&caps_once, fill_caps);
  return &caps;
}

bool shk__os_feature_probe(shk__os_feature f) {
  return f == SHK__OS_WRITE_WATCH && probe_write_watch();
}

unsigned shk__os_cpu_count_probe(void) {
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  return si.dwNumberOfProcessors > 0 ? si.dwNumberOfProcessors : 1;
}
