/* What the files of the POSIX backend share. */
#ifndef SHMKIT_POSIX_H
#define SHMKIT_POSIX_H

#include <errno.h>

#include "common/internal.h"

/* Translates an errno value into its SHK_E* code and records the raw value: the one place where
 * errno becomes a shmkit error. */
int posix_error(int err);

/* Turns a waitpid() status into how the process ended (proc.c). */
void posix_decode_status(int status, shk__os_exit *how);

/* Closes every descriptor above 2 except keep[0..n) (ascending). Async-signal-safe: for a
 * freshly forked child (proc.c). */
void posix_close_all_but(const int *keep, size_t n);

#endif
