/** @file
 * Error codes of shmkit: fixed negative numbers, the same on every OS. */
#ifndef SHMKIT_ERROR_H
#define SHMKIT_ERROR_H

#include "shmkit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The one list of codes: X(NAME, value, description). It generates the enum below and, inside
 * the library, shk_strerror() and shk_error_name(). The rule: a value, once released, never
 * changes and is never reused; a new code gets the next free number. Every value is pinned by a
 * frozen table in tests/test_error.c. */
#define SHK_ERROR_LIST(X)                                                                  \
  X(SHK_OK, 0, "success")                                                                  \
  X(SHK_EINVAL, -1, "invalid argument")                                                    \
  X(SHK_ENOMEM, -2, "out of memory")                                                       \
  X(SHK_ENAME, -3, "invalid name (empty, too long, or a character outside [A-Za-z0-9._-])") \
  X(SHK_EEXIST, -4, "already exists")                                                      \
  X(SHK_ENOENT, -5, "does not exist")                                                      \
  X(SHK_EACCES, -6, "permission denied")                                                   \
  X(SHK_ESIZE, -7, "size is zero or too large to map")                                     \
  X(SHK_ETIMEDOUT, -8, "timed out")                                                        \
  X(SHK_ECANCELED, -9, "cancelled")                                                        \
  X(SHK_EOS, -10, "operating system error (see shk_last_os_error)")                        \
  X(SHK_EOVERFLOW, -11, "arithmetic overflow in a size or count")                          \
  X(SHK_EOVERLAP, -12, "memory range overlaps a live range")                               \
  X(SHK_ENODEV, -13, "no device available")                                                \
  X(SHK_EUNSUPPORTED, -14, "not supported on this system or build")                        \
  X(SHK_EBUSY, -15, "resource busy")                                                       \
  X(SHK_ELIMIT, -16, "a system or configured limit was reached")                           \
  X(SHK_EVERSION, -17, "incompatible version")                                             \
  X(SHK_EFORMAT, -18, "malformed data")                                                    \
  X(SHK_ECRASHED, -19, "a worker crashed")                                                 \
  X(SHK_ESTATE, -20, "object is in the wrong state for this call")                         \
  X(SHK_ENOHOOK, -21, "shk_worker_main() was not called at the top of main()")             \
  X(SHK_ERANGE, -22, "index or range out of bounds")                                       \
  X(SHK_EFAULT, -23, "bad address")                                                 \
  X(SHK_ECHUNK, -24, "a chunk function returned an error")                                \
  X(SHK_ENOSYM, -25, "the module exports no such symbol")

/** The codes of SHK_ERROR_LIST as an enum: SHK_OK (0) and the negative SHK_E* values, each
 * described in the list above. Functions return them as int. */
typedef enum shk_error {
#define SHK_ERROR_ENUM_(name, value, text) name = value,
  SHK_ERROR_LIST(SHK_ERROR_ENUM_)
#undef SHK_ERROR_ENUM_
} shk_error;

/** A sentence describing `code` (a static string, never NULL; "unknown error" for codes not in
 * the list). Thread-safe. */
SHK_API const char *shk_strerror(int code);

/** The symbolic name of `code`, such as "SHK_ENOENT" (static, never NULL; "SHK_UNKNOWN" for codes
 * not in the list). Thread-safe. */
SHK_API const char *shk_error_name(int code);

/** The raw OS error (errno on POSIX, GetLastError() or an NTSTATUS on Windows) behind an SHK_E*
 * code that this thread just got from an operating-system failure. When it is meaningful:
 * - right after a call on this thread returned SHK_EOS: every SHK_EOS records its raw code, so
 *   the value then describes that very failure, never an older one;
 * - right after another code that the function documents as a system failure (SHK_ENOMEM,
 *   SHK_EACCES, SHK_ELIMIT, SHK_ESIZE, SHK_ENOENT from a segment, process or library call),
 *   when the system gave one; otherwise 0;
 * - the chunk-task calls (shk_task_run, shk_task_pool_create, shk_task_pool_run) set it to 0
 *   as they start, so after one of them it is 0 unless that call met a system failure.
 * After SHK_OK, and after codes about the arguments (SHK_EINVAL, SHK_ERANGE, ...), its value is
 * unspecified (it may describe an earlier failure). 0 in a thread that never met one.
 * For diagnostics only: the value differs between systems. Thread-safe (per thread). */
SHK_API int shk_last_os_error(void);

#ifdef __cplusplus
}
#endif

#endif
