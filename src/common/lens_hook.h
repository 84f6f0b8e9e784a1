/* The hooks through which tasks, the watcher and buffers report into a lens (lens_instrument.c):
 * while instrumentation is off, each costs one relaxed load of a global pointer and a branch. */
#ifndef SHMKIT_LENS_HOOK_H
#define SHMKIT_LENS_HOOK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmkit.h"

/* The parts, as indexes of shk__lens_hooks (bit i of shk_lens_instrument()'s parts). */
enum { SHK__LENS_TASKS = 0, SHK__LENS_WATCH = 1, SHK__LENS_BUFS = 2, SHK__LENS_PARTS = 3 };

/* Per part: the lens it reports into; NULL when off; a private mark until SHK_LENS has been
 * read (the first instrumented call of a process reads it). */
extern _Atomic(shk_lens *) shk__lens_hooks[SHK__LENS_PARTS];

#if defined(__GNUC__) || defined(__clang__)
#define SHK__LENS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define SHK__LENS_UNLIKELY(x) (x)
#endif

/* Whether part reports now: the one load the off path pays. A build with SHK_NO_LENS_HOOKS
 * (CMake -DSHK_LENS_HOOKS=OFF) compiles every hook away: the benchmarks' reference. */
#ifdef SHK_NO_LENS_HOOKS
#define SHK__LENS_ON(part) 0
#else
#define SHK__LENS_ON(part)                                                                         \
  SHK__LENS_UNLIKELY(atomic_load_explicit(&shk__lens_hooks[part], memory_order_relaxed) != NULL)
#endif

/* The slow paths (lens_instrument.c), called only when SHK__LENS_ON said yes. */
void shk__lens_hook_zone(int part, shk_lens_zone *zone, const char *name, uint32_t color);
void shk__lens_hook_zone_end(shk_lens_zone *zone);
void shk__lens_hook_task(shk_lens_zone *zone);
void shk__lens_hook_task_end(shk_lens_zone *zone, uint64_t chunks, unsigned workers, int mode,
                             uint64_t bytes);
void shk__lens_hook_chunk_end(shk_lens_zone *zone, uint64_t index, uint64_t offset,
                              uint64_t length, int code);
void shk__lens_hook_worker(bool same_space, unsigned index);
void shk__lens_hook_worker_end(bool same_space);
void shk__lens_hook_watch(const shk_watch_event *ev);
void shk__lens_hook_buf(const shk_buf_info *info, bool allocated);
void shk__lens_hook_buf_ready(void);
/* Whether buffers report (buf.c folds it into its own fast-path flag, so that buffers pay
 * nothing more when off); lens_instrument.c tells buf when it changes. */
bool shk__lens_bufs_on(void);
void shk__buf_lens_changed(void);

/* Colours of the library's zones (0x00RRGGBB). */
#define SHK__LENS_COLOR_COPY 0xD2E08Cu
#define SHK__LENS_COLOR_RESULTS 0x9E9E9Eu
#define SHK__LENS_COLOR_CHUNK 0x4B9E4Bu

/* A library zone on the calling thread: begin sets zone->lens (NULL when off); end is a no-op
 * then. */
#define SHK__LENS_ZONE(part, zone, name, color)                                                    \
  do {                                                                                             \
    (zone)->lens = NULL;                                                                           \
    if (SHK__LENS_ON(part)) shk__lens_hook_zone((part), (zone), (name), (color));                  \
  } while (0)
#define SHK__LENS_ZONE_END(zone)                                                                   \
  do {                                                                                             \
    if ((zone)->lens) shk__lens_hook_zone_end(zone);                                               \
  } while (0)
/* A zone inside `outer` on the same lens, begun only when outer was: no load of its own. */
#define SHK__LENS_ZONE_IN(outer, zone, name, color)                                                \
  do {                                                                                             \
    (zone)->lens = NULL;                                                                           \
    if ((outer)->lens) shk_lens_zone_begin((outer)->lens, (zone), (name), (color));                \
  } while (0)
/* A task call: its zone, whose end carries the call's shape as arguments. */
#define SHK__LENS_TASK(zone)                                                                       \
  do {                                                                                             \
    (zone)->lens = NULL;                                                                           \
    if (SHK__LENS_ON(SHK__LENS_TASKS)) shk__lens_hook_task(zone);                                  \
  } while (0)
#define SHK__LENS_TASK_END(zone, chunks, workers, mode, bytes)                                     \
  do {                                                                                             \
    if ((zone)->lens)                                                                              \
      shk__lens_hook_task_end((zone), (chunks), (workers), (int)(mode), (bytes));                  \
  } while (0)
/* A chunk's end: the zone's name and colour tell its status; its arguments say which chunk
 * (index, offset, length) and its code. */
#define SHK__LENS_CHUNK_END(zone, index, offset, length, code)                                     \
  do {                                                                                             \
    if ((zone)->lens) shk__lens_hook_chunk_end((zone), (index), (offset), (length), (code));       \
  } while (0)
/* A worker starts / ends serving (in its own process or thread). */
#define SHK__LENS_WORKER(same_space, index)                                                        \
  do {                                                                                             \
    if (SHK__LENS_ON(SHK__LENS_TASKS)) shk__lens_hook_worker((same_space), (index));               \
  } while (0)
#define SHK__LENS_WORKER_END(same_space)                                                           \
  do {                                                                                             \
    if (SHK__LENS_ON(SHK__LENS_TASKS)) shk__lens_hook_worker_end(same_space);                      \
  } while (0)
/* ---- worker processes started anew, and the pool's own marks (lens_instrument.c) ---- */

/* What a worker started as a new process needs to report into its pool caller's lens: written
 * by the pool into the worker's slot of the control segment before it starts the worker, read
 * once by the worker. Shared memory: the worker checks every field before use. */
typedef struct shk__lens_join {
  atomic_uint parts;     /* SHK_LENS_* bits reporting into the lens, 0: the worker stays off */
  uint32_t flags;        /* the lens's options (shk_lens_options.flags, full_wait_ns) */
  uint64_t full_wait_ns;
  char name[SHK_SHM_NAME_MAX + 1]; /* the lens's segment name, NUL-terminated */
} shk__lens_join;

/* Pool side: fills *rec from the lens the tasks part reports into now (parts 0 when off). */
void shk__lens_hook_join_write(shk__lens_join *rec);
/* Worker side, in a process started anew: opens the lens *rec names (a handle of its own,
 * closed by SHK__LENS_WORKER_END) and instruments its parts; a record that is off or not valid
 * (name not NUL-terminated in its array, not a valid segment name, unknown parts) turns every
 * part off. Either way the pool caller's choice replaces SHK_LENS, as for a forked worker. */
void shk__lens_hook_join(const shk__lens_join *rec);
/* On the pool caller's thread: worker `index` started (pid 0: a thread), replacing one that
 * ended as *previous (NULL: its first start). */
struct shk__os_exit;
void shk__lens_hook_worker_started(unsigned index, int pid, const struct shk__os_exit *previous);

#define SHK__LENS_COLOR_POOL 0x8C6BB1u

#define SHK__LENS_JOIN_WRITE(rec)                                                                  \
  do {                                                                                             \
    if (SHK__LENS_ON(SHK__LENS_TASKS)) shk__lens_hook_join_write(rec);                             \
    else atomic_store_explicit(&(rec)->parts, 0u, memory_order_release);                           \
  } while (0)
/* Not behind SHK__LENS_ON: the pool caller's choice applies whatever this process resolved
 * before (once per worker process, never on a hot path). */
#ifdef SHK_NO_LENS_HOOKS
#define SHK__LENS_JOIN(rec) ((void)(rec))
#else
#define SHK__LENS_JOIN(rec) shk__lens_hook_join(rec)
#endif
#define SHK__LENS_WORKER_STARTED(index, pid, previous)                                             \
  do {                                                                                             \
    if (SHK__LENS_ON(SHK__LENS_TASKS)) shk__lens_hook_worker_started((index), (pid), (previous));  \
  } while (0)

/* Before a buffer is made the slow way (every thread's first ones): SHK_LENS is read there. */
#define SHK__LENS_BUF_READY()                                                                      \
  do {                                                                                             \
    if (SHK__LENS_ON(SHK__LENS_BUFS)) shk__lens_hook_buf_ready();                                  \
  } while (0)
/* A watch event delivered (the watcher's thread). */
#define SHK__LENS_WATCH_EVENT(ev)                                                                  \
  do {                                                                                             \
    if (SHK__LENS_ON(SHK__LENS_WATCH)) shk__lens_hook_watch(ev);                                   \
  } while (0)

#endif
