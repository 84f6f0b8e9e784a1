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
 *
 * Primitives only. This header describes the operating system (segments, processes, handles,
 * channels, modules, threads, clocks, memory, faults) and nothing built on it: no function here
 * takes a task-pool parameter or calls back up into src/common/. Protocols over these
 * primitives (the chunk-task worker transport: start-up record, handshake, serve loop, reap
 * and timeout policy, handles that arrive early) are written once, in src/common/
 * (task_transport.c, task_fn.c).
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
  bool has_fork;             /* workers can be forked (POSIX) */
  const char *exe_suffix;    /* what an executable's file name ends with: "" or ".exe" */
  bool handles_by_token;     /* a handle given over a channel is its token (Windows), not a message */
} shk__os_caps;

/* The capabilities of this system that cost nothing to learn, filled on first call
 * (thread-safe), never NULL. */
const shk__os_caps *shk__os_caps_get(void);

/* Facts that cost system calls or file reads to learn (about 20-40 us each in a fresh process,
 * which every worker host start is): each is learned on its first use, not at start-up. */
typedef enum shk__os_feature {
  SHK__OS_MEMFD,         /* anonymous segments use memfd_create */
  SHK__OS_WRITE_WATCH,   /* GetWriteWatch on MEM_WRITE_WATCH memory (Windows) */
  SHK__OS_UFFD_WP,       /* userfaultfd write-protect (Linux) */
  SHK__OS_UFFD_WP_ASYNC, /* ... in async mode, with PAGEMAP_SCAN */
  SHK__OS_FEATURES
} shk__os_feature;

/* Whether this system has feature f (os_features.c: asked once, remembered; lock-free, so a
 * fork in the middle of a first ask leaves nothing half-done: the child asks again). */
bool shk__os_has(shk__os_feature f);
/* Online CPUs, at least 1 (learned on first use, as above). */
unsigned shk__os_cpu_count(void);
/* Per OS: asks the system whether it has feature f, and how many CPUs are online (>= 1).
 * Called by the two functions above only; must not call them. */
bool shk__os_feature_probe(shk__os_feature f);
unsigned shk__os_cpu_count_probe(void);


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

/* Maps [offset, offset+size) of the segment object `handle` (offset a multiple of 64 KiB).
 * seg->handle records handle; shk__os_segment_close() then closes it too, so set seg->handle
 * to 0 first when the handle has other owners. SHK_EINVAL, SHK_ENOMEM, SHK_EOS. */
int shk__os_segment_map(intptr_t handle, size_t offset, size_t size, bool writable,
                        shk__os_segment *seg);

/* Unmaps and closes. Accepts a zeroed segment. */
void shk__os_segment_close(shk__os_segment *seg);

/* Removes the name. SHK_ENOENT when there is none. */
int shk__os_segment_unlink(const char *os_name);

/* -- segment size now (lens reader): appended as its own block -- */
/* The size the segment object has now, which another process with write access may have changed
 * since it was mapped (POSIX: ftruncate, after which touching the mapping past the new end raises
 * SIGBUS; a Windows section cannot shrink while mapped: its mapped size). SHK_EOS. */
int shk__os_segment_size_now(const shk__os_segment *seg, uint64_t *size);

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
 * mapping. Close with shk__os_segment_close(). SHK_ESIZE (the raw code recorded). */
int shk__os_segment_reserve(size_t size, shk__os_segment *seg);
int shk__os_segment_commit(shk__os_segment *seg, size_t offset, size_t size);

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
  intptr_t job;    /* Windows: the kill-on-close job of a process started with kill_on_close */
} shk__os_proc;

typedef enum shk__os_exit_kind {
  SHK__OS_EXITED = 1,   /* code = exit status */
  SHK__OS_SIGNALED = 2  /* code = signal number (POSIX) or exception code (Windows) */
} shk__os_exit_kind;

typedef struct shk__os_exit {
  shk__os_exit_kind kind;
  int code;
} shk__os_exit;

/* Waits up to timeout_ms (negative: forever) for the process to end and reaps it; fills *how.
 * SHK_ETIMEDOUT leaves it running and waitable. */
int shk__os_proc_wait(shk__os_proc *proc, int64_t timeout_ms, shk__os_exit *how);

/* Kills the process at once (SIGKILL / TerminateProcess); it must still be waited for. */
int shk__os_proc_kill(shk__os_proc *proc);

/* Forks this process (only where caps->has_fork; SHK_EUNSUPPORTED elsewhere). Returns in both
 * processes; *in_child tells which. stdout is flushed first (nothing is written twice). The
 * child holds no descriptor but stdin, stdout, stderr and keep[0..nkeep) (ascending), and on
 * Linux is killed when the thread that forked it ends (PR_SET_PDEATHSIG), or ends at once when
 * the parent is already gone. The parent waits for it with shk__os_proc_wait().
 * SHK_ENOMEM, SHK_ELIMIT, SHK_EOS. */
int shk__os_proc_fork(const intptr_t *keep, size_t nkeep, shk__os_proc *proc, bool *in_child);

/* Starts an executable (path NULL: this one) with argv[1..argc] = args. It inherits stdin,
 * stdout, stderr and exactly the handles inherit[0..n), under the same values (make them with
 * shk__os_handle_dup(..., true, ...)); no other handle of this process, also none another
 * thread makes inheritable meanwhile. Signals (POSIX): the calling thread's mask and the ignored
 * signals carry over, every other signal has its default action (as across fork and exec).
 * kill_on_close: it is killed when this process ends. Windows: a kill-on-close job object,
 * released by shk__os_proc_wait. POSIX: the started program must call
 * shk__os_proc_bind_to_starter(id of this process) first (the id travels in its arguments):
 * posix_spawn cannot bind it (Linux: PR_SET_PDEATHSIG, so it also ends with the thread that
 * started it); until it does, nothing ties it to this process. Linux with glibc 2.34+ uses
 * posix_spawn (no copy of this process's page tables); other POSIX systems fork and exec.
 * SHK_ENOENT, SHK_EACCES (the executable is missing or may not be run: reported here on Windows
 * and with posix_spawn; after a fork, or where a tool such as valgrind turns posix_spawn's
 * clone into one, SHK_OK and the process exits with code 127), SHK_ENOMEM, SHK_ERANGE
 * (command line too long), SHK_EOS (raw code recorded). */
int shk__os_proc_start(const char *path, const char *const *args, int argc, const intptr_t *inherit,
                       size_t n, bool kill_on_close, shk__os_proc *proc);

/* Called first by a program started with kill_on_close, with the id of the process that
 * started it (`starter`): from now on it is killed when the starter ends (Linux:
 * PR_SET_PDEATHSIG, which follows the starting thread), and it ends at once (code 0) when the
 * starter is already gone (its parent is no longer `starter`). Windows: nothing (the job object
 * started with it already does this). Other POSIX systems: only the check for an ended starter. */
void shk__os_proc_bind_to_starter(int starter);

/* A process this one may wait on (shk__os_channel_receive's peer), by id. Windows: a SYNCHRONIZE
 * handle (close it with shk__os_handle_close); POSIX: the id only. SHK_ENOENT, SHK_EOS. */
int shk__os_proc_open(int pid, shk__os_proc *proc);

/* From now on a crash (fault, abort) ends this process at once, its signal (POSIX) or exception
 * code (Windows) as its status: the default actions, no handler of the program's, no dialog. */
void shk__os_crash_ends_process(void);

/* Ends this process at once with `code`: no atexit handlers, no stream flushing. */
_Noreturn void shk__os_exit_now(int code);

/* -- process identity (lens): appended as its own block; pid reuse must not revive the dead -- */
/* When process `pid` started, in units the OS chooses (Linux: clock ticks since boot, field 22
 * of /proc/<pid>/stat; Windows: its creation FILETIME), written to *start. The value means
 * nothing across machines or boots; it only tells two processes that had the same id apart.
 * SHK_ENOENT when no such process exists (or it is a zombie), SHK_EUNSUPPORTED where the OS
 * does not say (then only the pid identifies a process), SHK_EOS otherwise. Thread-safe. */
int shk__os_proc_start_time(int pid, uint64_t *start);

/* ---- handles (proc.c) -------------------------------------------------------------------- */

/* A copy of a descriptor / HANDLE; inheritable: one that survives into a process started with
 * shk__os_proc_start (close-on-exec cleared / inheritable). Above 2 on POSIX. SHK_EOS. */
int shk__os_handle_dup(intptr_t handle, bool inheritable, intptr_t *out);

/* Closes a handle; accepts "none" (0 or negative). */
void shk__os_handle_close(intptr_t handle);

/* ---- channels (channel.c) ---------------------------------------------------------------- */

/* One end of a channel between two processes or threads: wake-ups both ways and, where
 * caps->handles_by_token is false (POSIX), handles passed along with a tag. POSIX: a unix socket
 * (a; b unused); Windows: a = the event this end sets to wake the other, b = the one it waits on.
 * An end is closed when a is 0. */
typedef struct shk__os_channel {
  intptr_t a;
  intptr_t b;
} shk__os_channel;

typedef enum shk__os_message_kind {
  SHK__OS_MSG_WAKE = 1,
  SHK__OS_MSG_HANDLE = 2 /* POSIX only: handle received, now owned by the receiver */
} shk__os_message_kind;

typedef struct shk__os_message {
  shk__os_message_kind kind;
  uint64_t tag;
  intptr_t handle;
} shk__os_message;

/* Makes both ends of a new channel, each owning its own handles; one end may go to another
 * process (inherited, or kept across a fork) and be closed here. SHK_ELIMIT, SHK_ENOMEM,
 * SHK_EOS. */
int shk__os_channel_pair(shk__os_channel *one, shk__os_channel *other);

/* Closes an end; accepts a closed one. */
void shk__os_channel_close(shk__os_channel *end);

/* Wakes the other end. Never blocks; a wake-up already pending is enough. */
void shk__os_channel_notify(const shk__os_channel *end);

/* Waits at most timeout_ns (UINT64_MAX: forever) for one message on this end. peer, when not
 * NULL, is the process holding the other end: its end counts as the channel's (Windows; on
 * POSIX the channel itself ends as its descriptors close). SHK_OK and *msg, SHK_ETIMEDOUT,
 * SHK_ENOENT when the other end is gone, SHK_EOS (raw code recorded). */
int shk__os_channel_receive(const shk__os_channel *end, const shk__os_proc *peer,
                            uint64_t timeout_ns, shk__os_message *msg);

/* Waits at most timeout_ns for a wake-up on any of the n ends, or the end of the other side of
 * any of them or of procs[i] (procs may be NULL; entries with handle 0 are skipped), and
 * consumes the wake-ups. Sets ended[i] for each end whose other side or process is gone.
 * Closed ends are skipped. SHK_OK, SHK_ETIMEDOUT, SHK_EOS (the wait failed; raw code recorded;
 * nothing is set). */
int shk__os_channel_wait_any(const shk__os_channel *ends, const shk__os_proc *procs, unsigned n,
                             uint64_t timeout_ns, bool *ended);

/* Gives the process at the other end (peer) a handle, read-only where the system sets access
 * per handle. POSIX: a copy of the descriptor travels over the channel as a message tagged
 * `tag`, and *token = tag; Windows (caps->handles_by_token): the handle is duplicated into
 * peer and *token is its value there. SHK_ENOENT when the other side is gone, SHK_EOS. */
int shk__os_channel_give(const shk__os_channel *end, const shk__os_proc *peer, intptr_t handle,
                         uint64_t tag, uint64_t *token);

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
/* Waits at most timeout_ns (monotonic). SHK_OK when woken (or spuriously), SHK_ETIMEDOUT, or
 * SHK_EOS when the wait itself failed (raw code recorded). */
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

/* ---- modules (library.c) ----------------------------------------------------------------- */

/* A loaded module (executable or shared library): where it lies and its file. */
typedef struct shk__os_module {
  uintptr_t base; /* load address (lowest mapped byte) */
  size_t size;    /* extent from base */
  char path[1024]; /* the main program's is "/proc/self/exe" on Linux */
} shk__os_module;

/* The loaded module whose image holds addr. SHK_ENOENT when none does (code made at run time). */
int shk__os_module_of(const void *addr, shk__os_module *mod);

/* The module a library handle (shk__os_library_open) refers to. SHK_ENOENT. */
int shk__os_library_module(shk__os_library *lib, shk__os_module *mod);

/* This process's id. */
int shk__os_pid(void);

/* Whether a process with this id exists now (a zombie counts as gone). */
bool shk__os_pid_alive(int pid);

/* When the process with this id started, in seconds since 1970 (whole seconds, from the
 * system's boot time and the process's start tick on Linux); 0 when unknown (no such process,
 * or a system that does not say). For telling a reused pid from the process that had it. */
int64_t shk__os_pid_started(int pid);

/* Whether path names an executable file this process may start. */
bool shk__os_file_is_executable(const char *path);

/* The path of the running executable, written into buf (NUL-terminated). SHK_ERANGE if short. */
int shk__os_self_path(char *buf, size_t size);

/* ---- time (clock.c) ---------------------------------------------------------------------- */

/* Monotonic time in nanoseconds since an arbitrary start. Async-signal-safe. */
uint64_t shk__os_now_ns(void);
void shk__os_sleep_ns(uint64_t ns);
/* Gives the CPU to another ready thread. */
void shk__os_yield(void);

/* ---- an address sanitizer in the process (sanitizer.c) ------------------------------------ */

/* Whether an address sanitizer's runtime is in the process (ASan's, found at run time: neither
 * the library nor the program need be built with it for the program's own checks to run). */
bool shk__os_sanitizer_present(void);
/* Marks [p, p + n) unusable (poison) or usable again for that sanitizer, so that its reports
 * cover memory the library hands out from blocks of its own (buffer slabs) as they cover
 * malloc's; nothing without one. Thread-safe. */
void shk__os_sanitizer_poison(const void *p, size_t n, bool poison);

/* ---- memory (memory.c) ------------------------------------------------------------------- */

/* Page access, as flags. SHK__OS_PROT_COPY marks Windows copy-on-write pages (PAGE_WRITECOPY,
 * PAGE_EXECUTE_WRITECOPY), which are writable; POSIX never reports it and ignores it. */
typedef enum shk__os_prot {
  SHK__OS_PROT_NONE = 0,
  SHK__OS_PROT_READ = 1,
  SHK__OS_PROT_WRITE = 2,
  SHK__OS_PROT_READ_WRITE = 3,
  SHK__OS_PROT_EXEC = 4,
  SHK__OS_PROT_COPY = 8
} shk__os_prot;

/* Allocates whole, zeroed pages (mmap / VirtualAlloc). write_watch asks Windows to track writes
 * (MEM_WRITE_WATCH); ignored without SHK__OS_WRITE_WATCH. SHK_ENOMEM, SHK_ESIZE. */
int shk__os_pages_alloc(size_t size, bool write_watch, void **out);
void shk__os_pages_free(void *addr, size_t size);

/* Copies n bytes at addr in this process into buf, or fails with SHK_EFAULT where any of them is
 * not readable, without faulting (process_vm_readv / a pipe on POSIX, ReadProcessMemory on
 * Windows). For code that must tell whether an address is usable here. SHK_EOS. */
int shk__os_memory_peek(const void *addr, void *buf, size_t n);

/* Changes the protection of whole pages to `prot` (a combination of the flags above, as
 * shk__os_prot_query() reports them); addr must be page-aligned. Async-signal-safe on POSIX
 * (errno is kept; the raw code is recorded by a thread-local store). SHK_ENOMEM when the
 * kernel cannot split more memory areas, SHK_EINVAL (unaligned or unmapped), SHK_EACCES,
 * SHK_EOS (raw code recorded). */
int shk__os_protect(void *addr, size_t size, int prot);

/* What the pages of [addr, addr+size) (whole pages, addr page-aligned) allow now: *prot
 * receives the flags every page has (their intersection), *uniform whether all pages have the
 * same. SHK_EFAULT when part of the range is not mapped (reserved-only counts as not mapped on
 * Windows); SHK_EUNSUPPORTED where the system cannot tell (then the range is assumed mapped
 * read-write by callers that must go on). Async-signal-safe on POSIX (open/ioctl/read only;
 * Linux: PROCMAP_QUERY, or /proc/self/maps read in fixed buffers); Windows: VirtualQuery. Not
 * cached: the answer is the kernel's at the time of the call. */
int shk__os_prot_query(void *addr, size_t size, int *prot, bool *uniform);

/* ---- write faults and dirty-page sources (fault.c, uffd.c, writewatch.c) ----------------- */

/* What the OS tells about a memory fault. */
typedef struct shk__os_fault {
  uintptr_t addr;  /* the faulting data address */
  uintptr_t ip;    /* the faulting instruction, 0 when unknown */
  bool write;      /* true when the access was (or may have been) a write; false: surely not
                      (a read, an instruction fetch) */
  bool write_known; /* the OS said which access it was (x86-64 Linux error code, Windows
                      exception information); false: `write` is only a guess */
} shk__os_fault;

/* Called from the fault handler (a signal handler on POSIX, a vectored exception handler on
 * Windows) on the faulting thread, only for faults that can be protection faults (POSIX: SIGSEGV
 * with SEGV_ACCERR on Linux; never an unmapped address). Must be async-signal-safe. Returns true
 * only when retrying the instruction will not fault the same way again: the page is one the
 * watcher protected and is writable now; false sends the fault on to the previous handler or the
 * default action. */
typedef bool (*shk__os_fault_fn)(const shk__os_fault *fault);

/* The process-wide write-fault hook. Install makes fn the function the hook calls and puts the
 * hook in front of whatever handlers are installed now, unless it is already the one installed
 * (POSIX: our handler is the installed disposition of SIGSEGV and SIGBUS; Windows: a vectored
 * handler, first, registered once). Once installed, the hook stays for the life of the process
 * and keeps calling fn, also with nothing watched: a write fault can be on its way to it (raised, not yet
 * handled) while the last page is unprotected, and without the hook it would meet the default
 * action although retrying it would succeed; fn decides, with nothing watched, as always: there
 * is no remove. Refresh, for a hook
 * installed before, checks that it is still the installed handler and installs it again, in
 * front of what is there now, if not: a handler the program installed after ours and restored
 * to something else (CMocka restores the one it saved around each test) took it out of the
 * chain; does nothing if install never ran. Install and refresh are serialised by the caller.
 * A fault passed on that comes back to the hook on the same thread (a handler chaining to ours,
 * ours installed again in front of it) goes to the default action instead of round again; when
 * a handler passed to jumps away (siglongjmp) instead of returning, that thread's next fault at
 * the same address also goes to the default action. SHK_EOS. */
int shk__os_fault_install(shk__os_fault_fn fn);
int shk__os_fault_refresh(void);

/* The module file and nearest symbol of a code address, for event reports. Not for the fault
 * path. Empty strings when unknown; returns SHK_OK or SHK_ENOENT. */
int shk__os_symbolize(uintptr_t ip, char *module, size_t module_size, char *symbol,
                      size_t symbol_size);

/* The source file, function and line of a code address from debug information, where the system
 * can tell: Linux through elfutils' libdw when it is installed (loaded at run time), Windows
 * through DbgHelp. Not for the fault path. Empty strings and 0 when unknown; SHK_OK (file and
 * line found), SHK_ENOENT (no line information for it), SHK_EUNSUPPORTED (no such facility). */
int shk__os_source_line(uintptr_t ip, char *file, size_t file_size, char *function,
                        size_t function_size, unsigned *line);

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
 * For the feature probe: must not call shk__os_has(). */
bool shk__os_uffd_probe(bool *async);
int shk__os_uffd_open(bool sync, shk__os_uffd **out);
void shk__os_uffd_close(shk__os_uffd *u);
/* Registers whole pages for write-protect and protects them. */
int shk__os_uffd_add(shk__os_uffd *u, void *addr, size_t size);
/* Unprotects and unregisters whole pages. */
void shk__os_uffd_remove(shk__os_uffd *u, void *addr, size_t size);
/* Calls fn(page_addr, page_count, ctx) for each run of pages written since they were last
 * protected inside [addr, addr+size), protecting them again first. With `skip_others`, areas
 * in the range not registered for async write-protect are passed over (one call can then cover
 * many scattered regions; any async registration in the range is scanned, whoever made it);
 * without, such an area fails the call. */
typedef void (*shk__os_dirty_fn)(uintptr_t addr, size_t pages, void *ctx);
int shk__os_uffd_scan(shk__os_uffd *u, void *addr, size_t size, bool skip_others,
                      shk__os_dirty_fn fn, void *ctx);
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

#endif
