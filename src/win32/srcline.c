/* Source file, function and line of a code address through DbgHelp (loaded at run time from
 * System32, its calls serialised: DbgHelp is single-threaded). Wine's DbgHelp reads the DWARF of
 * mingw builds; Microsoft's reads PDBs. Without it: SHK_EUNSUPPORTED. */
#include <stdio.h>
#include <string.h>

#include "win32.h"

typedef struct line64 { /* IMAGEHLP_LINE64 */
  DWORD SizeOfStruct;
  PVOID Key;
  DWORD LineNumber;
  PCHAR FileName;
  DWORD64 Address;
} line64;

typedef struct symbol_info { /* SYMBOL_INFO, with room for the name after it */
  ULONG SizeOfStruct, TypeIndex;
  ULONG64 Reserved[2];
  ULONG Index, Size;
  ULONG64 ModBase;
  ULONG Flags;
  ULONG64 Value, Address;
  ULONG Register, Scope, Tag, NameLen, MaxNameLen;
  CHAR Name[1];
} symbol_info;

static INIT_ONCE once = INIT_ONCE_STATIC_INIT;
static SRWLOCK lock = SRWLOCK_INIT;
typedef BOOL(WINAPI *initialize_fn)(HANDLE, PCSTR, BOOL);
typedef BOOL(WINAPI *from_addr_fn)(HANDLE, DWORD64, PDWORD64, symbol_info *);
typedef BOOL(WINAPI *line_fn)(HANDLE, DWORD64, PDWORD, line64 *);
typedef BOOL(WINAPI *refresh_fn)(HANDLE);
typedef DWORD64(WINAPI *load_fn)(HANDLE, HANDLE, PCSTR, PCSTR, DWORD64, DWORD, PVOID, DWORD);
typedef DWORD(WINAPI *options_fn)(DWORD);
typedef void (*any_fn)(void);
static initialize_fn sym_initialize;
static from_addr_fn sym_from_addr;
static line_fn sym_line;
static refresh_fn sym_refresh;
static load_fn sym_load;
static bool ready;

static BOOL CALLBACK load(PINIT_ONCE o, PVOID p, PVOID *c) {
  (void)o, (void)p, (void)c;
  HMODULE h = LoadLibraryExA("dbghelp.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32);
  if (!h) return TRUE;
  /* Through a plain function type: FARPROC to the real one is what GetProcAddress means. */
  sym_initialize = (initialize_fn)(any_fn)GetProcAddress(h, "SymInitialize");
  sym_from_addr = (from_addr_fn)(any_fn)GetProcAddress(h, "SymFromAddr");
  sym_line = (line_fn)(any_fn)GetProcAddress(h, "SymGetLineFromAddr64");
  sym_refresh = (refresh_fn)(any_fn)GetProcAddress(h, "SymRefreshModuleList");
  sym_load = (load_fn)(any_fn)GetProcAddress(h, "SymLoadModuleEx");
  options_fn sym_options = (options_fn)(any_fn)GetProcAddress(h, "SymSetOptions");
  /* SYMOPT_UNDNAME | SYMOPT_DEFERRED_LOADS | SYMOPT_LOAD_LINES */
  if (sym_options) sym_options(0x2 | 0x4 | 0x10);
  ready = sym_initialize && sym_from_addr && sym_line &&
          sym_initialize(GetCurrentProcess(), NULL, TRUE);
  return TRUE;
}

int shk__os_source_line(uintptr_t ip, char *file, size_t file_size, char *function,
                        size_t function_size, unsigned *line) {
  if (file_size) file[0] = '\0';
  if (function_size) function[0] = '\0';
  *line = 0;
  InitOnceExecuteOnce(&once, load, NULL, NULL);
  if (!ready) return SHK_EUNSUPPORTED;
  AcquireSRWLockExclusive(&lock);
  HANDLE self = GetCurrentProcess();
  union {
    symbol_info info;
    char room[sizeof(symbol_info) + 256];
  } sym;
  memset(&sym, 0, sizeof sym);
  sym.info.SizeOfStruct = sizeof(symbol_info);
  sym.info.MaxNameLen = 255;
  DWORD64 off = 0;
  BOOL named = sym_from_addr(self, ip, &off, &sym.info);
  if (!named) { /* a module DbgHelp has not loaded yet: load the one holding ip */
    HMODULE mod = NULL;
    char path[MAX_PATH];
    if (sym_load &&
        GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                               GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                           (LPCSTR)ip, &mod) &&
        GetModuleFileNameA(mod, path, MAX_PATH) > 0 &&
        sym_load(self, NULL, path, NULL, (DWORD64)(uintptr_t)mod, 0, NULL, 0) != 0)
      named = sym_from_addr(self, ip, &off, &sym.info);
  }
  if (named && function_size) snprintf(function, function_size, "%s", sym.info.Name);
  line64 l;
  memset(&l, 0, sizeof l);
  l.SizeOfStruct = sizeof l;
  DWORD disp = 0;
  int rc = SHK_ENOENT;
  if (sym_line(self, ip, &disp, &l) && l.FileName) {
    if (file_size) snprintf(file, file_size, "%s", l.FileName);
    *line = l.LineNumber;
    rc = SHK_OK;
  }
  ReleaseSRWLockExclusive(&lock);
  return rc;
}
