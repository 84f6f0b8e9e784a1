/* The backend registry: backends by name, the built-ins registered through the same table as
 * users' own; a backend in use by a watcher cannot be removed. */
#include <stdlib.h>
#include <string.h>

#include "watch_internal.h"
#include "debug.h"

#define SLOTS 32

typedef struct entry {
  char name[SHK_WATCH_BACKEND_NAME_MAX + 1]; /* "" when free */
  const shk__watch_backend_ops *ops;
  shk__watch_backend_ops own;      /* user backends: ops calling `table` */
  shk_watch_backend_table table;   /* user backends: the caller's table, copied */
  int users;                       /* watchers using it */
  bool builtin;
} entry;

static shk__once registry_once;
static shk__os_mutex registry_lock;
static entry entries[SLOTS];

static void lock_registry(void) { shk__os_mutex_lock(&registry_lock); }
static void unlock_registry(void) { shk__os_mutex_unlock(&registry_lock); }

/* The slot of a name, or NULL (lock held). */
static entry *find(const char *name) {
  for (size_t i = 0; i < SLOTS; i++)
    if (entries[i].name[0] && strcmp(entries[i].name, name) == 0) return &entries[i];
  return NULL;
}


/* The one way in, for built-ins and users alike (lock held). */
static int add(const char *name, const shk__watch_backend_ops *builtin,
               const shk_watch_backend_table *table) {
  /* The rules of segment and allocator names. */
  if (shk_shm_name_check(name) != SHK_OK) return SHK_ENAME;
  if (find(name)) return SHK_EEXIST;
  entry *e = NULL;
  for (size_t i = 0; i < SLOTS && !e; i++)
    if (!entries[i].name[0]) e = &entries[i];
  if (!e) return SHK_ELIMIT;
  memset(e, 0, sizeof *e);
  strcpy(e->name, name);
  e->builtin = builtin != NULL;
  if (builtin) {
    e->ops = builtin;
  } else {
    e->table = *table;
    shk__watch_custom_ops_init(&e->own, &e->table);
    e->ops = &e->own;
  }
  return SHK_OK;
}

static void registry_init(void) {
  shk__os_mutex_init(&registry_lock);
  shk__fork_guard(lock_registry, unlock_registry);
  for (int b = SHK_WATCH_MPROTECT; b < SHK_WATCH_BACKEND_COUNT; b++)
    add(shk_watch_backend_name((shk_watch_backend)b), shk__watch_backend_ops_of((shk_watch_backend)b),
        NULL);
}

static void enter(void) {
  shk__once_run(&registry_once, registry_init);
  lock_registry();
}

/* Optional functions NULL. */
static const shk_watch_backend_table table_defaults = {
    .struct_size = sizeof(shk_watch_backend_table)};
/* Version 1 is the 0.2.0 layout. */
static const size_t table_legacy[] = {SHK__OPTIONS_END(shk_watch_backend_table, user)};
static const shk__options_layout table_layout = {
    sizeof(shk_watch_backend_table), SHK__OPTIONS_END(shk_watch_backend_table, user),
    SHK__OPTIONS_END(shk_watch_backend_table, user), table_legacy, 1, &table_defaults};

void shk_watch_backend_table_init_size(shk_watch_backend_table *table, size_t size) {
  shk__options_init(&table_layout, table, size);
}

static int watch_backend_register_impl(const char *name, const shk_watch_backend_table *caller) {
  if (!name || !caller) return SHK_EINVAL;
  shk_watch_backend_table table;
  if (shk__options_read(&table_layout, caller, &table) != SHK_OK) return SHK_EINVAL;
  if (!table.attach) return SHK_EINVAL;
  enter();
  int rc = add(name, NULL, &table);
  unlock_registry();
  return rc;
}

int shk_watch_backend_register(const char *name, const shk_watch_backend_table *caller) {
  return SHK__DEBUG_RET(SHK__DEBUG_WATCH, watch_backend_register_impl(name, caller));
}

static int watch_backend_unregister_impl(const char *name) {
  if (!name) return SHK_EINVAL;
  enter();
  entry *e = find(name);
  int rc = !e ? SHK_ENOENT : e->builtin ? SHK_EACCES : e->users > 0 ? SHK_EBUSY : SHK_OK;
  if (rc == SHK_OK) e->name[0] = '\0';
  unlock_registry();
  return rc;
}

int shk_watch_backend_unregister(const char *name) {
  return SHK__DEBUG_RET(SHK__DEBUG_WATCH, watch_backend_unregister_impl(name));
}

bool shk_watch_backend_exists(const char *name) {
  if (!name) return false;
  enter();
  bool found = find(name) != NULL;
  unlock_registry();
  return found;
}

int shk__watch_registry_acquire(const char *name, const shk__watch_backend_ops **ops) {
  enter();
  entry *e = find(name);
  int rc = SHK_ENOENT;
  if (e) {
    bool here = e->builtin ? e->ops->available()
                           : !e->table.available || e->table.available(e->table.user);
    rc = here ? SHK_OK : SHK_EUNSUPPORTED;
  }
  if (rc == SHK_OK) {
    e->users++;
    *ops = e->ops;
  }
  unlock_registry();
  return rc;
}

void shk__watch_registry_release(const shk__watch_backend_ops *ops) {
  enter();
  for (size_t i = 0; i < SLOTS; i++)
    if (entries[i].name[0] && entries[i].ops == ops && entries[i].users > 0) entries[i].users--;
  unlock_registry();
}
