/* What the files of the Win32 backend share. */
#ifndef SHMKIT_WIN32_H
#define SHMKIT_WIN32_H

#include <windows.h>

#include "common/internal.h"
#include "os_faults.h"

/* A system call that tests can make fail (src/os_faults.h): `call` itself, or, when the point
 * is armed and due, `fail` with the armed error as GetLastError(). Without
 * SHK_FAULT_INJECTION the condition is the constant false and only `call` is compiled. */
static inline bool win32_fault(shk__fault_point point) {
  int err = SHK__FAULT(point);
  if (err) SetLastError((DWORD)err);
  return err != 0;
}
#define WIN32_FAULTABLE(point, fail, call) (win32_fault(point) ? (fail) : (call))

/* Translates a GetLastError() value into its SHK_E* code and records the raw value: the one
 * place where a Windows error becomes a shmkit error. */
int win32_error(DWORD err);

/* UTF-8 <-> UTF-16 for names and paths; false when the text does not fit. */
bool win32_to_wide(const char *utf8, wchar_t *out, int out_chars);
bool win32_from_wide(const wchar_t *wide, char *out, int out_bytes);

#endif
