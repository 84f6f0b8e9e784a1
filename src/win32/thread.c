/* Win32 threads (through the CRT's _beginthreadex), SRW locks, condition variables and thread-exit
 * keys. */
#include <process.h>
#include <stdlib.h>

#include "win32.h"

_Static_assert(sizeof(SRWLOCK) <= sizeof(shk__os_mutex), "shk__os_mutex too small");
_Static_assert(sizeof(CONDITION_VARIABLE) <= sizeof(shk__os_cond), "shk__os_cond too small");

struct shk__os_thread {
  HANDLE handle;
  shk__os_thread_fn fn;
  void *arg;
};

static unsigned __stdcall thread_trampoline(void *p) {
  shk__os_thread *t = p;
  t->fn(t->arg);
  return 0;
}

int shk__os_thread_start(shk__os_thread **thread, shk__os_thread_fn fn, void *arg) {
  shk__os_thread *t = malloc(sizeof *t);
  if (!t) return SHK_ENOMEM;
  t->fn = fn;
  t->arg = arg;
  uintptr_t h = WIN32_FAULTABLE(SHK__FAULT_THREAD_START, 0,
                                _beginthreadex(NULL, 0, thread_trampoline, t, 0, NULL));
  if (h == 0) {
    int rc = win32_error(GetLastError());
    free(t);
    return rc == SHK_OK ? SHK_EOS : rc;
  }
  t->handle = (HANDLE)h;
  *thread = t;
  return SHK_OK;
}

void shk__os_thread_join(shk__os_thread *thread) {
  if (!thread) return;
  WaitForSingleObject(thread->handle, INFINITE);
  CloseHandle(thread->handle);
  free(thread);
}

#define SRW(m) ((SRWLOCK *)(void *)(m)->opaque)
#define CV(c) ((CONDITION_VARIABLE *)(void *)(c)->opaque)

void shk__os_mutex_init(shk__os_mutex *m) { InitializeSRWLock(SRW(m)); }
void shk__os_mutex_destroy(shk__os_mutex *m) { (void)m; }
void shk__os_mutex_lock(shk__os_mutex *m) { AcquireSRWLockExclusive(SRW(m)); }
void shk__os_mutex_unlock(shk__os_mutex *m) { ReleaseSRWLockExclusive(SRW(m)); }

void shk__os_cond_init(shk__os_cond *c) { InitializeConditionVariable(CV(c)); }
void shk__os_cond_destroy(shk__os_cond *c) { (void)c; }
void shk__os_cond_wait(shk__os_cond *c, shk__os_mutex *m) { SleepConditionVariableSRW(CV(c), SRW(m), INFINITE, 0); }
void shk__os_cond_signal(shk__os_cond *c) { WakeConditionVariable(CV(c)); }
void shk__os_cond_broadcast(shk__os_cond *c) { WakeAllConditionVariable(CV(c)); }

int shk__os_cond_timedwait(shk__os_cond *c, shk__os_mutex *m, uint64_t timeout_ns) {
  DWORD wait = shk__ms_from_ns(timeout_ns == UINT64_MAX ? timeout_ns - 1 : timeout_ns, INFINITE - 1);
  if (SleepConditionVariableSRW(CV(c), SRW(m), wait, 0)) return SHK_OK;
  DWORD err = GetLastError();
  return err == ERROR_TIMEOUT ? SHK_ETIMEDOUT : win32_error(err); /* a failed wait is no wake-up */
}

/* ---- thread-exit keys: a TLS slot each and one TLS callback of this image ---- */

/* Keys are few (one per part that keeps state per thread). */
#define MAX_EXIT_KEYS 8

typedef struct exit_key {
  DWORD slot;
  shk__os_thread_exit_fn on_exit;
} exit_key;

static exit_key exit_keys[MAX_EXIT_KEYS];
static volatile LONG exit_key_count; /* raised only after the entry is filled */
static SRWLOCK exit_keys_lock = SRWLOCK_INIT;

/* The loader calls this as each thread of the process starts and ends. DLL_THREAD_DETACH comes
 * only for a thread ending by itself: ExitProcess ends the others without it, and the exiting
 * thread gets DLL_PROCESS_DETACH, so nothing here runs while a dead thread may hold a lock. */
static void NTAPI on_thread_event(PVOID module, DWORD reason, PVOID reserved) {
  (void)module;
  (void)reserved;
  if (reason != DLL_THREAD_DETACH) return;
  LONG n = InterlockedCompareExchange(&exit_key_count, 0, 0); /* a full barrier: entries seen */
  for (LONG i = 0; i < n; i++) {
    void *value = TlsGetValue(exit_keys[i].slot);
    if (!value) continue;
    TlsSetValue(exit_keys[i].slot, NULL);
    exit_keys[i].on_exit(value);
  }
}

/* The callback enters the image's TLS directory through the .CRT$XL* sections, which the C
 * runtime (MSVC's or mingw-w64's) gathers between its own entries; B sorts before the runtime's
 * own thread-local destructors, so emulated TLS is still there when the callback runs. */
#ifdef _MSC_VER
#pragma comment(linker, "/INCLUDE:_tls_used")
#pragma comment(linker, "/INCLUDE:shk__win32_thread_callback")
#pragma const_seg(".CRT$XLB")
extern const PIMAGE_TLS_CALLBACK shk__win32_thread_callback;
const PIMAGE_TLS_CALLBACK shk__win32_thread_callback = on_thread_event;
#pragma const_seg()
#else
extern const PIMAGE_TLS_CALLBACK shk__win32_thread_callback;
const PIMAGE_TLS_CALLBACK shk__win32_thread_callback
    __attribute__((section(".CRT$XLB"), used)) = on_thread_event;
#endif

/* The slot is kept plus one, so that a zeroed key is never a valid one. */
int shk__os_thread_key_create(shk__os_thread_key *key, shk__os_thread_exit_fn on_exit) {
  AcquireSRWLockExclusive(&exit_keys_lock);
  LONG n = exit_key_count;
  DWORD slot = n < MAX_EXIT_KEYS ? TlsAlloc() : TLS_OUT_OF_INDEXES;
  if (slot != TLS_OUT_OF_INDEXES) {
    exit_keys[n].slot = slot;
    exit_keys[n].on_exit = on_exit;
    InterlockedExchange(&exit_key_count, n + 1);
  }
  ReleaseSRWLockExclusive(&exit_keys_lock);
  if (slot == TLS_OUT_OF_INDEXES) return shk__error_record_os(SHK_EOS, ERROR_NO_MORE_ITEMS);
  /* A pinned DLL stays mapped after FreeLibrary: no thread's state is lost with it. */
  HMODULE module;
  GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                     (LPCWSTR)(uintptr_t)on_exit, &module);
  key->opaque = (uintptr_t)slot + 1;
  return SHK_OK;
}

int shk__os_thread_key_set(const shk__os_thread_key *key, void *value) {
  if (TlsSetValue((DWORD)(key->opaque - 1), value)) return SHK_OK;
  int rc = win32_error(GetLastError());
  return rc == SHK_OK ? SHK_EOS : rc;
}

int shk__os_at_fork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
  (void)prepare; /* no fork: a worker is a new process, it inherits no lock */
  (void)parent;
  (void)child;
  return SHK_OK;
}

uint64_t shk__os_thread_id(void) { return GetCurrentThreadId(); }
