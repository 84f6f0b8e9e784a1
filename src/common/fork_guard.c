/* The locks held across fork() (see internal.h): one pthread_atfork registration for all. */
#include "internal.h"

typedef struct guarded_lock {
  void (*lock)(void);
  void (*unlock)(void);
} guarded_lock;

static shk__once guard_once;
/* Guards the list, and is itself held across a fork, so the list the handlers walk before the
 * fork is the one they walk after it. */
static shk__os_mutex guard_lock;
static guarded_lock guarded[SHK__FORK_GUARD_MAX];
static size_t guarded_count;

static void before_fork(void) {
  shk__os_mutex_lock(&guard_lock);
  for (size_t i = 0; i < guarded_count; i++) guarded[i].lock();
}

static void after_fork(void) {
  for (size_t i = guarded_count; i-- > 0;) guarded[i].unlock();
  shk__os_mutex_unlock(&guard_lock);
}

static void guard_init(void) {
  shk__os_mutex_init(&guard_lock);
  shk__os_at_fork(before_fork, after_fork, after_fork);
}

bool shk__fork_guard(void (*lock)(void), void (*unlock)(void)) {
  shk__once_run(&guard_once, guard_init);
  shk__os_mutex_lock(&guard_lock);
  bool added = guarded_count < SHK__FORK_GUARD_MAX;
  if (added) {
    guarded[guarded_count].lock = lock;
    guarded[guarded_count].unlock = unlock;
    guarded_count++;
  }
  shk__os_mutex_unlock(&guard_lock);
  return added;
}
