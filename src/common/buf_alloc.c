/* The allocator registry: named, versioned allocator tables, the four built-ins registered on
 * first use, user allocators added and removed at run time. */
#include <stdlib.h>
#include <string.h>

#include "buf_internal.h"

static shk__once registry_once;
static shk__buf_allocator *registry;    /* guarded by SHK__LOCK_BUF_ALLOCATORS */
static shk__buf_allocator builtins[4];  /* static: never freed, never unregistered */

/* Set once the built-ins are (after registry_init): the default's way in buf_internal.h. */
_Atomic(shk__buf_allocator *) shk__buf_heap_entry;

static void builtin_add(shk__buf_allocator *a, const char *name, const shk_buf_allocator *table) {
  strcpy(a->name, name);
  a->table = *table;
  atomic_init(&a->users, 0);
  a->builtin = true;
  a->next = registry;
  registry = a;
}

static void lock_registry(void) { shk__lock(SHK__LOCK_BUF_ALLOCATORS); }
static void unlock_registry(void) { shk__unlock(SHK__LOCK_BUF_ALLOCATORS); }

static void registry_init(void) {
  builtin_add(&builtins[0], "shm", &shk__buf_shm_allocator);
  builtin_add(&builtins[1], "pages", &shk__buf_pages_allocator);
  builtin_add(&builtins[2], "aligned", &shk__buf_aligned_allocator);
  builtin_add(&builtins[3], "heap", &shk__buf_heap_allocator);
  atomic_store_explicit(&shk__buf_heap_entry, &builtins[3], memory_order_release);
}

/* Caller holds the registry lock. */
static shk__buf_allocator **find_slot(const char *name) {
  shk__buf_allocator **p = &registry;
  while (*p && strcmp((*p)->name, name) != 0) p = &(*p)->next;
  return p;
}

int shk__buf_allocator_acquire(const char *name, shk__buf_allocator **out) {
  shk__once_run(&registry_once, registry_init);
  if (!name) {
    /* The default needs no lookup and no count: built-ins can never be unregistered. */
    *out = &builtins[3];
    return SHK_OK;
  }
  /* Built-ins are filled once above, never change and never leave, and their names cannot be
   * registered again: they are found without the lock and need no count. */
  for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
    /* Their first letters differ: one compare of a byte rules most out without a call. */
    if (builtins[i].name[0] == name[0] && strcmp(builtins[i].name, name) == 0) {
      *out = &builtins[i];
      return SHK_OK;
    }
  }
  lock_registry();
  shk__buf_allocator *a = *find_slot(name);
  /* Counted under the lock so that unregister cannot free it between lookup and count. */
  if (a && !a->builtin) atomic_fetch_add_explicit(&a->users, 1, memory_order_relaxed);
  unlock_registry();
  *out = a;
  return a ? SHK_OK : SHK_ENOENT;
}

/* Optional functions NULL. */
static const shk_buf_allocator table_defaults = {.struct_size = sizeof(shk_buf_allocator)};
/* Version 1 (before 0.2.0) is the 0.2.0 layout. */
static const size_t table_legacy[] = {SHK__OPTIONS_END(shk_buf_allocator, user)};
static const shk__options_layout table_layout = {
    sizeof(shk_buf_allocator), SHK__OPTIONS_END(shk_buf_allocator, user),
    SHK__OPTIONS_END(shk_buf_allocator, user), table_legacy, 1, &table_defaults};

void shk_buf_allocator_init_size(shk_buf_allocator *table, size_t size) {
  shk__options_init(&table_layout, table, size);
}

/* Under SHK_DEBUG=buf, after each change (lock held): every name well formed and unique, the
 * built-ins listed, no user count below zero. Reports each fault found. */
static void check_registry_locked(void) {
  if (!shk__debug_on(SHK__DEBUG_BUF)) return;
  size_t builtins_seen = 0;
  for (const shk__buf_allocator *a = registry; a; a = a->next) {
    if (!a->name[0] || memchr(a->name, 0, sizeof a->name) == NULL)
      shk__debug_report(SHK__DEBUG_BUF, "allocator registry inconsistent: an entry has no name");
    for (const shk__buf_allocator *b = a->next; b; b = b->next)
      if (strcmp(a->name, b->name) == 0)
        shk__debug_report(SHK__DEBUG_BUF, "allocator registry inconsistent: \"%s\" twice", a->name);
    if (atomic_load_explicit(&a->users, memory_order_relaxed) > SIZE_MAX / 2)
      shk__debug_report(SHK__DEBUG_BUF,
                        "allocator registry inconsistent: \"%s\" has a negative user count",
                        a->name);
    builtins_seen += a >= builtins && a < builtins + SHK__ARRAY_LEN(builtins);
  }
  if (builtins_seen != SHK__ARRAY_LEN(builtins))
    shk__debug_report(SHK__DEBUG_BUF, "allocator registry inconsistent: %lu of %lu built-ins listed",
                      (unsigned long)builtins_seen, (unsigned long)SHK__ARRAY_LEN(builtins));
}

static int buf_allocator_register_impl(const char *name, const shk_buf_allocator *caller) {
  if (!caller || !name) return SHK_EINVAL;
  int rc = shk_shm_name_check(name);
  if (rc != SHK_OK) return rc;
  shk_buf_allocator table;
  rc = shk__options_read(&table_layout, caller, &table);
  if (rc != SHK_OK) return rc;
  if (!table.alloc || !table.free) return SHK_EINVAL;
  shk__buf_allocator *a = shk__calloc(1, sizeof *a);
  if (!a) return SHK_ENOMEM;
  strcpy(a->name, name);
  a->table = table;
  atomic_init(&a->users, 0);
  shk__once_run(&registry_once, registry_init);
  lock_registry();
  if (*find_slot(name)) {
    rc = SHK_EEXIST;
  } else {
    a->next = registry;
    registry = a;
  }
  check_registry_locked();
  unlock_registry();
  if (rc != SHK_OK) free(a);
  return rc;
}

int shk_buf_allocator_register(const char *name, const shk_buf_allocator *caller) {
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_allocator_register_impl(name, caller));
}

static int buf_allocator_unregister_impl(const char *name) {
  if (!name) return SHK_EINVAL;
  shk__once_run(&registry_once, registry_init);
  lock_registry();
  shk__buf_allocator **slot = find_slot(name);
  shk__buf_allocator *a = *slot;
  int rc = SHK_OK;
  if (!a) {
    rc = SHK_ENOENT;
  } else if (a->builtin) {
    rc = SHK_EACCES;
  } else if (atomic_load_explicit(&a->users, memory_order_acquire) > 0) {
    rc = SHK_EBUSY;
  } else {
    *slot = a->next;
  }
  check_registry_locked();
  unlock_registry();
  if (rc == SHK_OK) free(a);
  return rc;
}

int shk_buf_allocator_unregister(const char *name) {
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_allocator_unregister_impl(name));
}

bool shk_buf_allocator_exists(const char *name) {
  if (!name) return false;
  shk__once_run(&registry_once, registry_init);
  lock_registry();
  bool found = *find_slot(name) != NULL;
  unlock_registry();
  return found;
}
