/* The internal OS interface: the only door from src/common/ to the operating system.
 *
 * Contract. Every function here is implemented once in src/posix/ and once in src/win32/, by area
 * (segment, proc, thread, clock, memory, fault, ...). Fallible functions return SHK_OK or a
 * negative SHK_E* code, never -1 with errno; each backend translates errno / GetLastError() at its
 * edge, in one function per backend (posix_error / win32_error), and records the raw number with
 * shk__error_record_os() (src/common/internal.h) so shk_last_os_error() can show it. Nothing here prints, aborts or
 * allocates unless its comment says so. Types are plain C: OS handles travel as intptr_t.
 * Features that may be missing at run time are fields of shk__os_caps, filled once; common code
 * branches on those fields, never on #ifdef.
 */
#ifndef SHMKIT_OS_H
#define SHMKIT_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmkit/error.h"

/* ---- capabilities ---------------------------------------------------------------------- */

typedef struct shk__os_caps {
  size_t page_size;          /* the unit of protection */
  size_t alloc_granularity;  /* the unit of address-space reservation (64 KiB on Windows) */
  unsigned cpu_count;        /* online CPUs, at least 1 */
  bool has_fork;             /* workers can be forked (POSIX) */
  bool has_memfd;            /* anonymous segments use memfd_create */
  bool has_write_watch;      /* GetWriteWatch on MEM_WRITE_WATCH memory (Windows) */
  bool has_userfaultfd_wp;   /* userfaultfd write-protect (Linux) */
  bool has_uffd_wp_async;    /* ... in async mode, with PAGEMAP_SCAN */
} shk__os_caps;

/* The capabilities of this system, filled on first call (thread-safe), never NULL. */
const shk__os_caps *shk__os_caps_get(void);


/* ---- segments (segment.c) ---------------------------------------------------------------- */

typedef struct shk__os_segment {
  void *addr;      /* mapping */
  size_t size;     /* mapped size, a whole number of pages */
  intptr_t handle; /* fd (POSIX) or HANDLE (Windows) of the segment object */
  bool writable;
} shk__os_segment;

/* Longest OS name that shk__os_segment_name() writes, with its terminator. */
#define SHK__OS_SEGMENT_NAME_SIZE 64

/* Turns a checked portable name into the OS name ("/name" or "Local\name"). */
void shk__os_segment_name(const char *portable, char os_name[SHK__OS_SEGMENT_NAME_SIZE]);

/* Creates (exclusively) and maps a zero-filled read-write segment of `size` bytes, a whole number
 * of pages, owner-only. os_name NULL: anonymous. SHK_EEXIST, SHK_ESIZE, SHK_EACCES, SHK_ENOMEM,
 * SHK_EOS. Leaves nothing behind on failure. */
int shk__os_segment_create(const char *os_name, size_t size, shk__os_segment *seg);

/* Opens and maps an existing named segment, its whole size. SHK_ENOENT, SHK_EACCES, SHK_EOS. */
int shk__os_segment_open(const char *os_name, bool writable, shk__os_segment *seg);

/* Unmaps and closes. Accepts a zeroed segment. */
void shk__os_segment_close(shk__os_segment *seg);

/* Removes the name. SHK_ENOENT when there is none. */
int shk__os_segment_unlink(const char *os_name);

/* Calls fn(portable, size, modified, user) for every named segment that exists now and belongs
 * to this user (the effective user on POSIX), with its portable name (no "/"), size in bytes and
 * last change of size or contents in seconds since 1970 (0 when unknown), where the system
 * keeps such a list: POSIX systems with a /dev/shm folder (regular files only).
 * SHK_EUNSUPPORTED elsewhere: on Windows a name vanishes with the last handle, so nothing can
 * be left behind to list; systems without /dev/shm keep no list one can read. */
typedef void (*shk__os_segment_name_fn)(const char *portable, size_t size, int64_t modified,
                                        void *user);
int shk__os_segment_list(shk__os_segment_name_fn fn, void *user);

/* ---- processes (proc.c) ------------------------------------------------------------------ */

typedef struct shk__os_proc {
  intptr_t handle; /* pid (POSIX) or process HANDLE (Windows); 0 when none */
  int pid;
} shk__os_proc;

typedef enum shk__os_exit_kind {
  SHK__OS_EXITED = 1,   /* code = exit status */
  SHK__OS_SIGNALED = 2  /* code = signal number (POSIX) or exception code (Windows) */
} shk__os_exit_kind;

typedef struct shk__os_exit {
  shk__os_exit_kind kind;
  int code;
} shk__os_exit;

/* Starts this same executable again with argv[1..argc] = args. The child inherits stdout and
 * stderr. SHK_ENOMEM, SHK_EOS. */
int shk__os_proc_spawn_self(const char *const *args, int argc, shk__os_proc *proc);

/* Waits up to timeout_ms (negative: forever) for the process to end and reaps it; fills *how.
 * SHK_ETIMEDOUT leaves it running and waitable. */
int shk__os_proc_wait(shk__os_proc *proc, int64_t timeout_ms, shk__os_exit *how);

/* Kills the process at once (SIGKILL / TerminateProcess); it must still be waited for. */
int shk__os_proc_kill(shk__os_proc *proc);

/* This process's id. */
int shk__os_pid(void);

/* Whether a process with this id exists now (a zombie counts as gone). */
bool shk__os_pid_alive(int pid);

/* When the process with this id started, in seconds since 1970 (whole seconds, from the
 * system's boot time and the process's start tick on Linux); 0 when unknown (no such process,
 * or a system that does not say). For telling a reused pid from the process that had it. */
int64_t shk__os_pid_started(int pid);

/* The path of the running executable, written into buf (NUL-terminated). SHK_ERANGE if short. */
int shk__os_self_path(char *buf, size_t size);

/* ---- threads and locks (thread.c) -------------------------------------------------------- */

typedef struct shk__os_thread shk__os_thread;
typedef void (*shk__os_thread_fn)(void *arg);

/* Starts a thread running fn(arg); allocates the handle. SHK_ENOMEM, SHK_EOS. */
int shk__os_thread_start(shk__os_thread **thread, shk__os_thread_fn fn, void *arg);

/* Waits for the thread to end and frees the handle. */
void shk__os_thread_join(shk__os_thread *thread);

/* A non-recursive mutex and a condition variable, stored inline; room for the largest OS type. */
typedef struct shk__os_mutex {
  _Alignas(8) unsigned char opaque[64];
} shk__os_mutex;

typedef struct shk__os_cond {
  _Alignas(8) unsigned char opaque[64];
} shk__os_cond;

void shk__os_mutex_init(shk__os_mutex *m);
void shk__os_mutex_destroy(shk__os_mutex *m);
void shk__os_mutex_lock(shk__os_mutex *m);
void shk__os_mutex_unlock(shk__os_mutex *m);

void shk__os_cond_init(shk__os_cond *c);
void shk__os_cond_destroy(shk__os_cond *c);
void shk__os_cond_wait(shk__os_cond *c, shk__os_mutex *m);
/* Waits at most timeout_ns (monotonic). Returns SHK_OK when woken, SHK_ETIMEDOUT otherwise. */
int shk__os_cond_timedwait(shk__os_cond *c, shk__os_mutex *m, uint64_t timeout_ns);
void shk__os_cond_signal(shk__os_cond *c);
void shk__os_cond_broadcast(shk__os_cond *c);

/* A function run on a thread as it ends, with that thread's value of a key. */
typedef void (*shk__os_thread_exit_fn)(void *value);

/* A per-thread slot whose value, when not NULL, is handed to on_exit on that thread as it ends:
 * a pthread key destructor; on Windows a TLS slot and a TLS callback of the image (per thread,
 * where fiber-local storage would follow fibers from thread to thread). Nothing is handed over
 * for threads ended by the process's exit, which may have died holding locks: not the main
 * thread's value, nor on Windows those of threads still running at ExitProcess. Keys are made
 * once and never deleted; making one pins the module holding on_exit in memory (RTLD_NODELETE,
 * a pinned DLL), so no thread can end into unloaded code. SHK_EOS when no key is left. */
typedef struct shk__os_thread_key {
  uintptr_t opaque;
} shk__os_thread_key;
int shk__os_thread_key_create(shk__os_thread_key *key, shk__os_thread_exit_fn on_exit);
/* Sets the calling thread's value. SHK_ENOMEM, SHK_EOS. */
int shk__os_thread_key_set(const shk__os_thread_key *key, void *value);

/* Runs prepare in the forking thread just before a fork(), and parent / child in each process
 * just after it (pthread_atfork). SHK_OK and nothing at all where there is no fork (Windows).
 * SHK_ENOMEM. */
int shk__os_at_fork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

/* An id of the calling thread, unique among the live threads of the system (gettid / GetCurrentThreadId). */
uint64_t shk__os_thread_id(void);

/* ---- shared libraries (library.c) ------------------------------------------------------- */

typedef struct shk__os_library shk__os_library;
/* Any function, as a symbol is found; cast to its real type before calling. */
typedef void (*shk__os_function)(void);

/* Loads a shared library by file name (searched as the system loader does) or path, resolving
 * its symbols now and keeping them out of the global namespace. With system_only, a bare file
 * name is looked for only in the system's own directory where there is one (System32 on
 * Windows: no DLL planted next to the program or in the working directory is taken; POSIX
 * loaders search as usual). SHK_ENOENT when it cannot be loaded (missing, wrong architecture,
 * unresolved dependencies), SHK_ENAME (a name the system cannot take), SHK_ENOMEM. */
int shk__os_library_open(const char *name, bool system_only, shk__os_library **out);
/* The function the library exports under this name, or NULL. */
shk__os_function shk__os_library_function(shk__os_library *lib, const char *name);
/* Unloads (the system may keep it loaded while others use it). Accepts NULL. */
void shk__os_library_close(shk__os_library *lib);

/* ---- time (clock.c) ---------------------------------------------------------------------- */

/* Monotonic time in nanoseconds since an arbitrary start. Async-signal-safe. */
uint64_t shk__os_now_ns(void);
void shk__os_sleep_ns(uint64_t ns);
/* Gives the CPU to another ready thread. */
void shk__os_yield(void);

/* ---- memory (memory.c) ------------------------------------------------------------------- */

typedef enum shk__os_prot {
  SHK__OS_PROT_NONE = 0,
  SHK__OS_PROT_READ = 1,
  SHK__OS_PROT_READ_WRITE = 3
} shk__os_prot;

/* Allocates whole, zeroed pages (mmap / VirtualAlloc). write_watch asks Windows to track writes
 * (MEM_WRITE_WATCH); ignored where caps->has_write_watch is false. SHK_ENOMEM, SHK_ESIZE. */
int shk__os_pages_alloc(size_t size, bool write_watch, void **out);
void shk__os_pages_free(void *addr, size_t size);

/* Changes the protection of whole pages; addr must be page-aligned. Async-signal-safe on POSIX. SHK_ENOMEM when the kernel
 * cannot split more memory areas, SHK_EINVAL, SHK_EOS. */
int shk__os_protect(void *addr, size_t size, shk__os_prot prot);

/* ---- write faults and dirty-page sources (fault.c, uffd.c, writewatch.c) ----------------- */

/* What the OS tells about a memory fault. */
typedef struct shk__os_fault {
  uintptr_t addr; /* the faulting data address */
  uintptr_t ip;   /* the faulting instruction, 0 when unknown */
  bool write;     /* true when the access was (or may have been) a write */
} shk__os_fault;

/* Called from the fault handler (a signal handler on POSIX, a vectored exception handler on
 * Windows) on the faulting thread. Must be async-signal-safe. Returns true when the fault was on
 * a page the watcher protected and the page is writable again (the instruction is retried);
 * false sends the fault on to the previous handler or the default action. */
typedef bool (*shk__os_fault_fn)(const shk__os_fault *fault);

/* Installs the process-wide write-fault hook calling fn, chained in front of whatever handlers
 * are installed now. Not reference counted: the caller installs once and removes once. When
 * another handler was installed on top meanwhile, remove leaves the hook in place, passing
 * every fault on. SHK_EOS. */
int shk__os_fault_install(shk__os_fault_fn fn);
void shk__os_fault_remove(void);

/* The module file and nearest symbol of a code address, for event reports. Not for the fault
 * path. Empty strings when unknown; returns SHK_OK or SHK_ENOENT. */
int shk__os_symbolize(uintptr_t ip, char *module, size_t module_size, char *symbol,
                      size_t symbol_size);

/* How many more memory areas page protection may split off before the kernel refuses (Linux
 * vm.max_map_count minus the areas in use); SIZE_MAX where there is no such limit. */
size_t shk__os_map_areas_left(void);

/* Linux userfaultfd write-protect (uffd.c). One tracker per watcher. Elsewhere every call
 * returns SHK_EUNSUPPORTED. In async mode the kernel resolves write faults itself and marks the
 * pages written; shk__os_uffd_scan() reports and re-protects them. In sync mode a writer waits
 * in the kernel until a reader takes the fault (shk__os_uffd_next) and resolves it
 * (shk__os_uffd_protect off). */
typedef struct shk__os_uffd shk__os_uffd;
/* Whether write-protect works here, and *async whether the async mode and PAGEMAP_SCAN do too.
 * For the capability probe: must not call shk__os_caps_get(). */
bool shk__os_uffd_probe(bool *async);
int shk__os_uffd_open(bool sync, shk__os_uffd **out);
void shk__os_uffd_close(shk__os_uffd *u);
/* Registers whole pages for write-protect and protects them. */
int shk__os_uffd_add(shk__os_uffd *u, void *addr, size_t size);
/* Unprotects and unregisters whole pages. */
void shk__os_uffd_remove(shk__os_uffd *u, void *addr, size_t size);
/* Calls fn(page_addr, page_count, ctx) for each run of pages written since they were last
 * protected inside [addr, addr+size), protecting them again first. */
typedef void (*shk__os_dirty_fn)(uintptr_t addr, size_t pages, void *ctx);
int shk__os_uffd_scan(shk__os_uffd *u, void *addr, size_t size, shk__os_dirty_fn fn, void *ctx);
/* Sync mode: waits up to timeout_ms for a write fault. SHK_OK with its address and the writing
 * thread (0 when the kernel does not say), SHK_ETIMEDOUT, or an error. */
int shk__os_uffd_next(shk__os_uffd *u, int timeout_ms, uintptr_t *addr, uint64_t *tid);
/* Write-protects (on) or opens (off, waking writers waiting there) whole registered pages. */
int shk__os_uffd_protect(shk__os_uffd *u, void *addr, size_t size, bool on);

/* Windows GetWriteWatch (writewatch.c): whether [addr, addr+size) is write-watch memory, and
 * the pages written there since the last call (reset atomically). Elsewhere: false and
 * SHK_EUNSUPPORTED. */
bool shk__os_write_watch_covers(void *addr, size_t size);
int shk__os_write_watch_scan(void *addr, size_t size, shk__os_dirty_fn fn, void *ctx);

/* ---- workers of chunk tasks (worker.c) --------------------------------------------------- */

/* One end of the channel between a pool and one of its workers. POSIX: a unix stream socket
 * (a = the socket) that carries wake-ups both ways and segment descriptors to the worker.
 * Windows: a = the event this end sets to wake the other side, b = the event it waits on. */
typedef struct shk__os_link {
  intptr_t a;
  intptr_t b;
} shk__os_link;

/* The pool's record of one worker. proc/pid are 0 for a thread worker or a worker not running. */
typedef struct shk__os_worker {
  shk__os_link parent_end; /* kept by the pool */
  shk__os_link worker_end; /* given to the worker; the pool closes its copy once a process has it */
  intptr_t proc;           /* pid (POSIX) or process HANDLE (Windows) */
  int pid;
  intptr_t job;            /* Windows: the worker's kill-on-close job object */
} shk__os_worker;

/* What a worker serves with, built in the worker (by the backend for a process, by common code
 * for a thread). ctl and out are mapped in the worker's address space. */
typedef struct shk__os_worker_boot {
  shk__os_segment ctl; /* the pool's control segment */
  shk__os_segment out; /* this worker's output segment (reserved, see shk__os_segment_reserve) */
  unsigned index;
  shk__os_link link;   /* the worker's end */
  bool same_space;     /* a thread of the pool's process (false in every worker process) */
} shk__os_worker_boot;

/* The worker's loop, in src/common/task_pool.c: the backend calls it in a worker process. It
 * returns when the pool tells it to quit or the pool is gone. */
void shk__task_worker_serve(const shk__os_worker_boot *boot);

/* Creates both ends of w's link. SHK_ELIMIT, SHK_ENOMEM, SHK_EOS. */
int shk__os_worker_link_open(shk__os_worker *w);

/* Closes whatever of both ends is still open (never the process). */
void shk__os_worker_link_close(shk__os_worker *w);

/* Starts a worker process for w (whose link is open) as worker `index`, serving the pool's
 * arena: the control part is [0, ctl_size), the worker's output [out_offset, +out_size) (both
 * offsets multiples of 64 KiB). POSIX: fork; the child dies with the parent (PR_SET_PDEATHSIG
 * on Linux, end of file on the link elsewhere), closes the pool ends of `all` (count workers),
 * and calls shk__task_worker_serve(). Windows: this executable again with a marker argument, in
 * a kill-on-close job object; the child maps both views in shk_worker_main(). On success the
 * pool's copy of w->worker_end is closed. SHK_ENOHOOK (Windows: the hook was not called in this
 * process), SHK_ENOMEM, SHK_ELIMIT, SHK_EOS. */
int shk__os_worker_spawn(shk__os_worker *w, unsigned index, const shk__os_segment *arena,
                         size_t ctl_size, size_t out_offset, size_t out_size,
                         const shk__os_worker *all, unsigned count);

/* Wakes the other side of `end`. Never blocks; a wake-up already pending is enough. */
void shk__os_link_notify(const shk__os_link *end);

/* Worker side: blocks until the pool wakes this end, at most timeout_ns (UINT64_MAX: forever).
 * SHK_OK, SHK_ETIMEDOUT, or SHK_ENOENT when the pool is gone. */
int shk__os_link_wait(const shk__os_link *end, uint64_t timeout_ns);

/* Pool side: waits at most timeout_ns for a wake-up from any of the n workers or the end of any
 * worker process, and consumes the wake-ups. Sets ended[i] for each worker process that ended
 * (to be reaped with shk__os_worker_reap). SHK_OK or SHK_ETIMEDOUT. */
int shk__os_workers_wait(const shk__os_worker *ws, unsigned n, uint64_t timeout_ns, bool *ended);

/* Kills the worker process when `kill`, waits for it to end (at most timeout_ms when not
 * killed; then it is killed anyway), reaps it, fills *how, closes its process handle and link.
 * Always leaves nothing behind. */
void shk__os_worker_reap(shk__os_worker *w, bool kill, int64_t timeout_ms, shk__os_exit *how);

/* Gives worker w (a process) access to segment seg, read-only, under pool-wide id `id`; writes
 * what the worker passes to shk__os_worker_take_segment() to *token. POSIX: the descriptor goes
 * over the link; Windows: the handle is duplicated into the worker. SHK_EOS. */
int shk__os_worker_give_segment(shk__os_worker *w, const shk__os_segment *seg, uint64_t id,
                                uint64_t *token);

/* Worker side: maps, read-only, the segment given as (id, token), `size` bytes. Close it with
 * shk__os_segment_close(). Segments given with a smaller id and never taken are dropped, except
 * `keep` (the pool's staging segment, which the worker may still need). SHK_ENOENT, SHK_EOS. */
int shk__os_worker_take_segment(const shk__os_link *end, uint64_t id, uint64_t token, size_t size,
                                uint64_t keep, shk__os_segment *seg);

/* A reference to a caller's segment object that lets a pool tell, on a later call, whether a
 * segment is that same object, so its workers may keep it mapped from call to call. POSIX: the
 * device and inode (the workers' mappings keep the object, hence its inode, alive); Windows: a
 * duplicated handle compared with CompareObjectHandles (Windows 10 and later). take returns
 * SHK_EUNSUPPORTED where objects cannot be told apart: the workers then map per call. */
typedef struct shk__os_segment_ref {
  uint64_t a;
  uint64_t b;
} shk__os_segment_ref;
int shk__os_segment_ref_take(const shk__os_segment *seg, shk__os_segment_ref *ref);
bool shk__os_segment_ref_same(const shk__os_segment_ref *ref, const shk__os_segment *seg);
void shk__os_segment_ref_drop(shk__os_segment_ref *ref);

/* Creates an anonymous segment of `size` bytes that uses memory only for the part made usable
 * with shk__os_segment_commit() (POSIX: untouched pages cost nothing, commit is free; Windows:
 * SEC_RESERVE). It reaches worker processes started after it: on POSIX only forked ones (it has
 * no descriptor, handle -1); on Windows through its handle, and a worker commits in its own
 * mapping. Close with shk__os_segment_close(). SHK_ESIZE. */
int shk__os_segment_reserve(size_t size, shk__os_segment *seg);
int shk__os_segment_commit(shk__os_segment *seg, size_t offset, size_t size);

/* A function's identity that another process running the same executable can resolve: its
 * module's path and load address, and its offset inside the module. */
typedef struct shk__os_fn_id {
  uint64_t base;
  uint64_t offset;
  char module[1024];
} shk__os_fn_id;

typedef void (*shk__os_any_fn)(void);

/* Finds the module that holds fn. SHK_ENOENT when fn is in no module. */
int shk__os_fn_locate(shk__os_any_fn fn, shk__os_fn_id *id);

/* Finds the function in this process (loading the module when it is not loaded yet).
 * SHK_ENOENT. */
int shk__os_fn_resolve(const shk__os_fn_id *id, shk__os_any_fn *fn);

/* The backend of shk_worker_main(): POSIX returns SHK_OK; Windows serves and exits when argv
 * carries the worker marker, and otherwise records that the hook ran and returns SHK_OK. */
int shk__os_worker_main(int argc, char **argv);

#endif
