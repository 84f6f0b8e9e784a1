/** @file
 * shmkit: shared memory, chunk tasks, buffers, a write watcher and a profiling protocol.
 * This umbrella header is what programs include.
 * Thread safety is stated per header and per function; no shmkit function is
 * async-signal-safe, so none may be called from a signal handler.
 * Every options and table struct (shk_task_options, shk_buf_options, shk_buf_allocator,
 * shk_watch_options, shk_watch_buffers_options, shk_watch_backend_table, shk_lens_options,
 * shk_lens_reader_options) evolves by one rule, written in shmkit/options.h: a struct_size
 * first field set by the struct's init macro (shk_task_options_init(&o), ...); the library
 * reads only what the caller's struct holds, the rest keeps its defaults. */
#ifndef SHMKIT_H
#define SHMKIT_H

#define SHK_VERSION_MAJOR 0 /**< major version of these headers: changes break compatibility */
#define SHK_VERSION_MINOR 2 /**< minor version of these headers: compatible additions */
#define SHK_VERSION_PATCH 0 /**< patch version of these headers: fixes only */
/** One number that grows with every release: major * 10000 + minor * 100 + patch. */
#define SHK_VERSION_NUMBER (SHK_VERSION_MAJOR * 10000 + SHK_VERSION_MINOR * 100 + SHK_VERSION_PATCH)
#define SHK_STRINGIFY2_(x) #x
#define SHK_STRINGIFY_(x) SHK_STRINGIFY2_(x)
/** "major.minor.patch" */
#define SHK_VERSION_STRING SHK_STRINGIFY_(SHK_VERSION_MAJOR) "." SHK_STRINGIFY_(SHK_VERSION_MINOR) "." SHK_STRINGIFY_(SHK_VERSION_PATCH)

#include "shmkit/export.h"
#include "shmkit/error.h"
#include "shmkit/options.h"
#include "shmkit/shm.h"
#include "shmkit/task.h"
#include "shmkit/buf.h"
#include "shmkit/watch.h"
#include "shmkit/lens.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The version of the library that is linked, as SHK_VERSION_NUMBER; compare it with the header's
 * to detect a mismatched DLL or .so. */
SHK_API int shk_version(void);

/** The same as a string, "major.minor.patch" (static). Both version functions are
 * thread-safe. */
SHK_API const char *shk_version_string(void);

#ifdef __cplusplus
}
#endif

#endif
