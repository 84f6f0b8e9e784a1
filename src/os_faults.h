/* Fault injection at the OS edge, for tests: the points where a backend calls a system
 * primitive that can fail in ways a test cannot provoke (SQLite's overridable system calls).
 *
 * Contract. Each backend wraps those calls (POSIX_FAULTABLE / WIN32_FAULTABLE) so that, in a
 * build compiled with SHK_FAULT_INJECTION, a call first consults this table: when the point is
 * armed and its call count reaches `nth`, the call is not made and fails the way the real one
 * fails, with the armed raw OS error in errno (POSIX) or GetLastError() (Windows); the backend
 * then translates and records it exactly as it would a real failure. Without
 * SHK_FAULT_INJECTION (every installed library: the option only reaches the internal test
 * library) SHK__FAULT() is the constant 0 and the wrapper is the bare call: no code, no branch.
 *
 * Only the process that armed a point fails (workers forked from it count nothing). Counters
 * and arming are atomic: safe from threads and signal handlers (the watcher protects pages
 * from its fault handler). Points are process-wide: tests arm, call and disarm on one thread.
 */
#ifndef SHMKIT_OS_FAULTS_H
#define SHMKIT_OS_FAULTS_H

#include <stdbool.h>

typedef enum shk__fault_point {
  SHK__FAULT_SEGMENT_CREATE, /* shm_open(O_CREAT|O_EXCL), memfd_create / CreateFileMapping */
  SHK__FAULT_SEGMENT_OPEN,   /* shm_open of an existing name / OpenFileMapping */
  SHK__FAULT_SEGMENT_SIZE,   /* ftruncate / (none: a Windows section gets its size at creation) */
  SHK__FAULT_SEGMENT_MAP,    /* mmap of a segment, reserve / MapViewOfFile */
  SHK__FAULT_SEGMENT_UNMAP,  /* munmap of a segment / UnmapViewOfFile */
  SHK__FAULT_SEGMENT_UNLINK, /* shm_unlink / (none: a Windows name ends with its last handle) */
  SHK__FAULT_PAGES_ALLOC,    /* anonymous private pages: mmap / VirtualAlloc */
  SHK__FAULT_PROTECT,        /* mprotect / VirtualProtect */
  SHK__FAULT_PROTECT_PARTIAL, /* mprotect failing part-way, as it can over several memory areas
                                (ENOMEM at the map limit): the first page changed, then the
                                failure / (none) */
  SHK__FAULT_PROC_START,     /* fork, posix_spawn / CreateProcess */
  SHK__FAULT_CHANNEL_CREATE, /* socketpair / CreateEvent */
  SHK__FAULT_MODULE_LOAD,    /* dlopen / LoadLibraryEx */
  SHK__FAULT_THREAD_START,   /* pthread_create / CreateThread */
  SHK__FAULT_ALLOC,          /* malloc / calloc / realloc of the library (shk__malloc and kin) */
  SHK__FAULT_MAPS_QUERY,     /* the PROCMAP_QUERY ioctl of /proc/self/maps (ENOTTY: a kernel older
                                than 6.11, which makes the query read the text) / (none) */
  SHK__FAULT_MEMFD,          /* memfd_create (ENOSYS: a kernel or system without it, which makes an
                                anonymous segment a shm_open name removed at once) / (none) */
  SHK__FAULT_MEMORY_READ,    /* process_vm_readv (ENOSYS, EPERM: a kernel or sandbox without it, which
                                makes a safe read go through a pipe) / (none: ReadProcessMemory) */
  SHK__FAULT_CLOSE_RANGE,    /* close_range (ENOSYS: a kernel before 5.9, which makes closing every
                                descriptor but some walk /proc/self/fd) / (none) */
  SHK__FAULT_FAULT_HANDLER,  /* sigaction installing the write-fault handler on SIGSEGV or SIGBUS
                                / AddVectoredExceptionHandler */
  SHK__FAULT_CHANNEL_GIVE,   /* passing a handle to a worker: sendmsg with SCM_RIGHTS (EPIPE: the
                                worker is gone) / DuplicateHandle into the worker */
  SHK__FAULT_COUNT
} shk__fault_point;

#ifdef SHK_FAULT_INJECTION

/* Arms `point`: its nth call from now (1 = the next) fails with raw OS error os_error (an
 * errno value or a GetLastError() value), and with `sticky` every call after it too; the
 * point's call and failure counts restart at 0. The arming process only. */
void shk__fault_arm(shk__fault_point point, unsigned nth, int os_error, bool sticky);

/* Disarms every point (counts are kept until the next arm). */
void shk__fault_disarm_all(void);

/* Calls of `point` seen since it was last armed, and how many of them were failed. */
unsigned shk__fault_calls(shk__fault_point point);
unsigned shk__fault_failures(shk__fault_point point);

/* The backends' check, before each wrapped call: the raw OS error to fail it with, or 0 to
 * make the call. Async-signal-safe. */
int shk__fault_take(shk__fault_point point);

#define SHK__FAULT(point) shk__fault_take(point)

#else

#define SHK__FAULT(point) ((void)(point), 0)

#endif

#endif
