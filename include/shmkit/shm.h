/** @file
 * Shared-memory segments: named (other processes open them by name) or anonymous (shared with
 * worker processes that shmkit starts).
 * Every function may be called from any thread (see shk_shm for sharing one handle). */
#ifndef SHMKIT_SHM_H
#define SHMKIT_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmkit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An open, mapped segment. Created by shk_shm_create*() or shk_shm_open(), freed by
 * shk_shm_close(). One handle may be used from several threads for reading its properties;
 * closing it while another thread uses it is the caller's race. */
typedef struct shk_shm shk_shm;

/** The longest portable segment name, in characters. A portable name has 1 to SHK_SHM_NAME_MAX
 * characters from [A-Za-z0-9._-] and does not start with '.'. It becomes "/name" on POSIX and
 * "Local\name" on Windows; 30 characters keeps it inside macOS's 31-byte limit. */
#define SHK_SHM_NAME_MAX 30

/** How shk_shm_open() maps a segment. */
typedef enum shk_shm_access {
  SHK_SHM_READ_ONLY = 1,
  SHK_SHM_READ_WRITE = 2
} shk_shm_access;

/** Checks a portable name. Returns SHK_OK, SHK_EINVAL for NULL or SHK_ENAME. */
SHK_API int shk_shm_name_check(const char *name);

/** Creates a named segment of at least `size` bytes, zero-filled, readable and writable, owner-only
 * (mode 0600 on POSIX; a DACL granting only the current user on Windows), and maps it. The size
 * is rounded up to a whole number of pages; shk_shm_size() tells the rounded size.
 * The name is exclusive: SHK_EEXIST when a segment of that name exists. The name stays in the
 * system after close until shk_shm_unlink() (on Windows, until the last handle closes).
 * Returns SHK_OK, SHK_EINVAL (NULL name or out), SHK_ENAME, SHK_ESIZE (0, or more than the
 * system can map), SHK_EEXIST, SHK_EACCES, SHK_ELIMIT (the process or the system has no
 * descriptor or handle left: POSIX EMFILE, ENFILE), SHK_ENOMEM or SHK_EOS. On failure *out is
 * NULL and nothing is left behind. */
SHK_API int shk_shm_create(const char *name, size_t size, shk_shm **out);

/** Creates a segment with no name, zero-filled, of at least `size` bytes (rounded up to pages).
 * Only this process and the worker processes that shmkit starts can reach it; it disappears when
 * the last of them closes it. Returns as shk_shm_create() without the name errors. */
SHK_API int shk_shm_create_anonymous(size_t size, shk_shm **out);

/** Opens and maps an existing named segment. `access` is SHK_SHM_READ_ONLY or SHK_SHM_READ_WRITE;
 * a read-only mapping faults on write. Returns SHK_OK, SHK_EINVAL (NULL out or a bad access
 * value), SHK_ENAME, SHK_ENOENT (no such segment), SHK_EACCES (the segment's permissions deny
 * this access), SHK_ESIZE (the segment is empty: its creator has not sized it yet), SHK_ELIMIT
 * (no descriptor or handle left, as for shk_shm_create), SHK_ENOMEM or SHK_EOS. */
SHK_API int shk_shm_open(const char *name, shk_shm_access access, shk_shm **out);

/** The first byte of the mapping (page-aligned); NULL for a NULL handle. */
SHK_API void *shk_shm_data(const shk_shm *shm);

/** The mapped size in bytes, a whole number of pages; 0 for a NULL handle. */
SHK_API size_t shk_shm_size(const shk_shm *shm);

/** The portable name, or NULL for an anonymous segment or a NULL handle. Owned by the handle. */
SHK_API const char *shk_shm_name(const shk_shm *shm);

/** Whether the mapping may be written; false for a NULL handle. */
SHK_API bool shk_shm_writable(const shk_shm *shm);

/** Finds the open segment of this process whose mapping contains [ptr, ptr+len). On success
 * writes the segment to *out (still owned by whoever opened it) and the offset of ptr inside it
 * to *offset. Returns SHK_OK, SHK_EINVAL (NULL ptr, out or offset, or ptr + len overflows) or
 * SHK_ENOENT (no open segment holds the whole range). Thread-safe. */
SHK_API int shk_shm_find(const void *ptr, size_t len, shk_shm **out, size_t *offset);

/** Unmaps and closes the handle. Accepts NULL. Does not remove the name (see shk_shm_unlink). */
SHK_API void shk_shm_close(shk_shm *shm);

/** Removes a name from the system; mappings that are open stay valid. Returns SHK_OK, SHK_EINVAL
 * (NULL), SHK_ENAME, SHK_ENOENT (POSIX: no such name) or SHK_EOS.
 * On Windows a name vanishes by itself with its last handle and cannot be removed earlier: this
 * call only checks the name and returns SHK_OK. Portable programs therefore call it once they
 * are done with a segment they created, and do not rely on a closed segment's name surviving. */
SHK_API int shk_shm_unlink(const char *name);

/* ---- names left behind ------------------------------------------------------------------ */

/** What made a segment that shk_shm_list() reports. */
typedef enum shk_shm_kind {
  SHK_SHM_KIND_BUFFER = 1,    /**< the "shm" buffer allocator's generated "shkb-<pid>-<n>" */
  SHK_SHM_KIND_ANONYMOUS = 2, /**< POSIX without memfd: "shk-a-<pid>-..." (removed at once) */
  SHK_SHM_KIND_LENS = 3       /**< a lens segment (any name; its owner is the producer) */
} shk_shm_kind;

/** One segment reported by shk_shm_list(). Valid during the callback only. */
typedef struct shk_shm_entry {
  const char *name;      /**< the portable name */
  shk_shm_kind kind;     /**< what made it */
  const char *kind_name; /**< "buffer", "anonymous" or "lens" */
  int owner_pid;         /**< the process the name belongs to; 0 when unknown */
  bool owner_alive;      /**< whether that process exists now (a zombie counts as gone; a
                              process that took the pid over after the name was made, too) */
  bool stale;            /**< a generated name whose owner is gone: shk_shm_clean() removes it */
  size_t size;           /**< bytes */
  int64_t modified;      /**< last change of size or contents, seconds since 1970; 0 unknown */
} shk_shm_entry;

/** Called by shk_shm_list() once per segment; `user` is the pointer given to shk_shm_list(). */
typedef void (*shk_shm_entry_fn)(const shk_shm_entry *entry, void *user);

/** Calls fn for each shmkit segment of this user that exists now: generated names (the owner
 * pid is part of the name) and lens segments (found by their header; the owner is the
 * producer). Other segments are not reported. Where the system keeps no list of names,
 * SHK_EUNSUPPORTED: Windows, where a name vanishes with its last handle so nothing can be left
 * behind, and POSIX systems without a /dev/shm folder. Returns SHK_OK, SHK_EINVAL (NULL fn),
 * SHK_EUNSUPPORTED or SHK_EOS. Thread-safe. */
SHK_API int shk_shm_list(shk_shm_entry_fn fn, void *user);

/** Removes the stale generated names of this user: those whose owner process no longer exists.
 * The rule, also applied by the library itself the first time a process generates a name (so
 * the next run cleans up after a process killed with SIGKILL):
 *  - only names this user owns, only shmkit's generated kinds (lens segments are never removed
 *    here; their names are chosen by people);
 *  - a name whose pid is a live process is kept, unless that process started more than an hour
 *    after the name last changed (Linux: its pid was reused; the margin covers wall-clock steps
 *    of up to an hour): a name is never removed while it could belong to a running process.
 *    Otherwise a reused pid keeps the name until the process with that pid ends;
 *  - processes that share /dev/shm but not the pid namespace (containers) must not both generate
 *    names there: their owners look gone to each other.
 * A process that still maps a removed segment keeps its mapping. *removed (may be NULL) gets
 * the count. Returns SHK_OK, SHK_EUNSUPPORTED (as shk_shm_list) or SHK_EOS. Thread-safe. */
SHK_API int shk_shm_clean(size_t *removed);

#ifdef __cplusplus
}
#endif

#endif
