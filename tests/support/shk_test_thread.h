/* Starting and joining a thread the same way on POSIX (pthreads) and Windows (CreateThread), for
 * tests and benchmarks. Header-only, so that bench/ uses it without the CMocka support library. */
#ifndef SHMKIT_SHK_TEST_THREAD_H
#define SHMKIT_SHK_TEST_THREAD_H

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#endif

typedef void (*shk_test_thread_fn)(void *arg);

/* A started thread: its storage must stay put until shk_test_thread_join(). */
typedef struct shk_test_thread {
#ifdef _WIN32
  HANDLE handle;
#else
  pthread_t handle;
#endif
  shk_test_thread_fn fn;
  void *arg;
} shk_test_thread;

#ifdef _WIN32
static DWORD WINAPI shk_test_thread_entry_(LPVOID p) {
  shk_test_thread *t = p;
  t->fn(t->arg);
  return 0;
}
#else
static void *shk_test_thread_entry_(void *p) {
  shk_test_thread *t = p;
  t->fn(t->arg);
  return NULL;
}
#endif

/* Starts fn(arg) on a new thread. Returns 0, or -1 when no thread could be started. */
static inline int shk_test_thread_start(shk_test_thread *t, shk_test_thread_fn fn, void *arg) {
  t->fn = fn;
  t->arg = arg;
#ifdef _WIN32
  t->handle = CreateThread(NULL, 0, shk_test_thread_entry_, t, 0, NULL);
  return t->handle ? 0 : -1;
#else
  return pthread_create(&t->handle, NULL, shk_test_thread_entry_, t) == 0 ? 0 : -1;
#endif
}

/* Waits for the thread to end and releases it. */
static inline void shk_test_thread_join(shk_test_thread *t) {
#ifdef _WIN32
  WaitForSingleObject(t->handle, INFINITE);
  CloseHandle(t->handle);
#else
  pthread_join(t->handle, NULL);
#endif
}

#endif
