/* What the files of the POSIX backend share. */
#ifndef SHMKIT_POSIX_H
#define SHMKIT_POSIX_H

#include <errno.h>

#include "common/internal.h"
#include "os_faults.h"

/* A system call that tests can make fail (src/os_faults.h): `call` itself, or, when the point
 * is armed and due, `fail` with errno set to the armed error. Without SHK_FAULT_INJECTION the
 * condition is the constant false and only `call` is compiled. */
static inline bool posix_fault(shk__fault_point point) {
  int err = SHK__FAULT(point);
  if (err) errno = err;
  return err != 0;
}
#define POSIX_FAULTABLE(point, fail, call) (posix_fault(point) ? (fail) : (call))

/* Translates an errno value into its SHK_E* code and records the raw value: the one place where
 * errno becomes a shmkit error. */
int posix_error(int err);

/* Turns a waitpid() status into how the process ended (proc.c). */
void posix_decode_status(int status, shk__os_exit *how);

/* Closes every descriptor above 2 except keep[0..n) (ascending). Async-signal-safe: for a
 * freshly forked child (proc.c). */
void posix_close_all_but(const int *keep, size_t n);

#endif
