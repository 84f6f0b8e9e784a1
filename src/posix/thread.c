/* POSIX threads, mutexes and condition variables (the condition waits on the monotonic clock). */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

#include "posix.h"

_Static_assert(sizeof(pthread_mutex_t) <= sizeof(shk__os_mutex), "shk__os_mutex too small");
_Static_assert(sizeof(pthread_cond_t) <= sizeof(shk__os_cond), "shk__os_cond too small");

struct shk__os_thread {
  pthread_t id;
  shk__os_thread_fn fn;
  void *arg;
};

static void *thread_trampoline(void *p) {
  shk__os_thread *t = p;
  t->fn(t->arg);
  return NULL;
}

int shk__os_thread_start(shk__os_thread **thread, shk__os_thread_fn fn, void *arg) {
  shk__os_thread *t = malloc(sizeof *t);
  if (!t) return SHK_ENOMEM;
  t->fn = fn;
  t->arg = arg;
  int err = POSIX_FAULTABLE(SHK__FAULT_THREAD_START, errno,
                            pthread_create(&t->id, NULL, thread_trampoline, t));
  if (err != 0) {
    free(t);
    return posix_error(err);
  }
  *thread = t;
  return SHK_OK;
}

void shk__os_thread_join(shk__os_thread *thread) {
  if (!thread) return;
  pthread_join(thread->id, NULL);
  free(thread);
}

#define MUTEX(m) ((pthread_mutex_t *)(void *)(m)->opaque)
#define COND(c) ((pthread_cond_t *)(void *)(c)->opaque)

void shk__os_mutex_init(shk__os_mutex *m) { pthread_mutex_init(MUTEX(m), NULL); }
void shk__os_mutex_destroy(shk__os_mutex *m) { pthread_mutex_destroy(MUTEX(m)); }
void shk__os_mutex_lock(shk__os_mutex *m) { pthread_mutex_lock(MUTEX(m)); }
void shk__os_mutex_unlock(shk__os_mutex *m) { pthread_mutex_unlock(MUTEX(m)); }

void shk__os_cond_init(shk__os_cond *c) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
#ifndef __APPLE__
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
  pthread_cond_init(COND(c), &attr);
  pthread_condattr_destroy(&attr);
}

void shk__os_cond_destroy(shk__os_cond *c) { pthread_cond_destroy(COND(c)); }
void shk__os_cond_wait(shk__os_cond *c, shk__os_mutex *m) { pthread_cond_wait(COND(c), MUTEX(m)); }
void shk__os_cond_signal(shk__os_cond *c) { pthread_cond_signal(COND(c)); }
void shk__os_cond_broadcast(shk__os_cond *c) { pthread_cond_broadcast(COND(c)); }

int shk__os_cond_timedwait(shk__os_cond *c, shk__os_mutex *m, uint64_t timeout_ns) {
  struct timespec ts;
#ifdef __APPLE__
  ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
  ts.tv_nsec = (long)(timeout_ns % 1000000000u);
  int err = pthread_cond_timedwait_relative_np(COND(c), MUTEX(m), &ts);
#else
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t nsec = (uint64_t)ts.tv_nsec + timeout_ns % 1000000000u;
  ts.tv_sec += (time_t)(timeout_ns / 1000000000u + nsec / 1000000000u);
  ts.tv_nsec = (long)(nsec % 1000000000u);
  int err = pthread_cond_timedwait(COND(c), MUTEX(m), &ts);
#endif
  if (err == 0) return SHK_OK;
  return err == ETIMEDOUT ? SHK_ETIMEDOUT : posix_error(err); /* a failed wait is no wake-up */
}

_Static_assert(sizeof(pthread_key_t) <= sizeof(uintptr_t), "pthread_key_t too large");

/* Loading the module again with RTLD_NODELETE makes every later dlclose of it a no-op. */
static void pin_module_of(const void *code) {
  Dl_info info;
  if (dladdr(code, &info) && info.dli_fname) {
    void *self = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    (void)self; /* deliberately never closed; NULL when the code is in the main program */
  }
}

int shk__os_thread_key_create(shk__os_thread_key *key, shk__os_thread_exit_fn on_exit) {
  pthread_key_t k;
  int err = pthread_key_create(&k, on_exit);
  if (err != 0) return posix_error(err);
  pin_module_of((const void *)(uintptr_t)on_exit);
  key->opaque = (uintptr_t)k;
  return SHK_OK;
}

int shk__os_thread_key_set(const shk__os_thread_key *key, void *value) {
  int err = pthread_setspecific((pthread_key_t)key->opaque, value);
  return err == 0 ? SHK_OK : posix_error(err);
}

int shk__os_at_fork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
  int err = pthread_atfork(prepare, parent, child);
  return err == 0 ? SHK_OK : posix_error(err);
}

uint64_t shk__os_thread_id(void) {
#ifdef __linux__
  return (uint64_t)syscall(SYS_gettid);
#else
  uint64_t id = 0;
  pthread_threadid_np(NULL, &id);
  return id;
#endif
}
