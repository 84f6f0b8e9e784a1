/* Names the library generates for segments, and the removal of those a killed process left
 * behind: every generated name carries its owner's pid ("<prefix><pid>-..."). */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "shmkit/lens_wire.h" /* SHK_LENS_MAGIC: a lens segment of another version is still a lens */
#include "debug.h"

typedef struct generated_kind {
  const char *prefix;
  shk_shm_kind kind;
  const char *name;
} generated_kind;

/* "shk-a-" is made by src/posix/segment.c (anonymous segments without memfd). */
static const generated_kind kinds[] = {
    {"shkb-", SHK_SHM_KIND_BUFFER, "buffer"},
    {"shk-a-", SHK_SHM_KIND_ANONYMOUS, "anonymous"},
};

/* The kind and owner of a generated name; NULL when the name is not one. */
static const generated_kind *parse(const char *name, int *pid) {
  for (size_t k = 0; k < SHK__ARRAY_LEN(kinds); k++) {
    size_t n = strlen(kinds[k].prefix);
    if (strncmp(name, kinds[k].prefix, n) != 0) continue;
    const char *p = name + n;
    long v = 0;
    for (; *p >= '0' && *p <= '9' && v <= 0x7fffffffL; p++) v = v * 10 + (*p - '0');
    if (p == name + n || *p != '-' || v <= 0 || v > 0x7fffffffL) return NULL;
    *pid = (int)v;
    return &kinds[k];
  }
  return NULL;
}

/* A process that started this long after a name last changed cannot have made it: its pid was
 * reused. The margin is wide because the two times come from different clocks: a name's time
 * is the wall clock when it changed, a start time is "so long ago" measured now; a wall clock
 * stepped forward after the name was made (a VM's clock fixed by NTP after boot) shifts one
 * against the other by the step. A name is never removed while it could be its live owner's. */
#define REUSE_MARGIN_S 3600

/* Whether the process that made a name with this pid, last changed at `modified` (0: unknown),
 * is gone: no process has the pid, or the one that has it started well after the name. */
static bool owner_gone(int pid, int64_t modified) {
  if (pid == shk__os_pid()) return false;
  if (!shk__os_pid_alive(pid)) return true;
  int64_t started = shk__os_pid_started(pid);
  return started > 0 && modified > 0 && started > modified + REUSE_MARGIN_S;
}

typedef struct listing {
  shk_shm_entry_fn fn;
  void *user;
  bool generated_only; /* the sweep: no lens probe */
} listing;

static void each_name(const char *name, size_t size, int64_t modified, void *user) {
  listing *l = user;
  if (shk_shm_name_check(name) != SHK_OK) return;
  shk_shm_entry e = {name, 0, NULL, 0, false, false, size, modified};
  const generated_kind *k = parse(name, &e.owner_pid);
  if (k) {
    e.kind = k->kind;
    e.kind_name = k->name;
    e.owner_alive = !owner_gone(e.owner_pid, modified);
    e.stale = !e.owner_alive;
  } else {
    if (l->generated_only) return;
    shk_lens_info info;
    int rc = shk_lens_probe(name, &info);
    if (rc != SHK_OK && !(rc == SHK_EVERSION || (rc == SHK_EFORMAT && info.magic == SHK_LENS_MAGIC)))
      return;
    e.kind = SHK_SHM_KIND_LENS;
    e.kind_name = "lens";
    e.owner_pid = (int)info.producer_pid;
    e.owner_alive = info.producer_alive;
  }
  l->fn(&e, l->user);
}

static int shm_list_impl(shk_shm_entry_fn fn, void *user) {
  if (!fn) return SHK_EINVAL;
  listing l = {fn, user, false};
  return shk__os_segment_list(each_name, &l);
}

int shk_shm_list(shk_shm_entry_fn fn, void *user) {
  return SHK__DEBUG_RET(SHK__DEBUG_SHM, shm_list_impl(fn, user));
}

static void remove_stale(const shk_shm_entry *e, void *user) {
  size_t *removed = user;
  if (!e->stale) return;
  /* Looked at again just before: the list was read a moment ago. */
  int pid = 0;
  if (!parse(e->name, &pid) || !owner_gone(pid, e->modified)) return;
  if (shk__shm_unlink(e->name) == SHK_OK) (*removed)++;
}

static int shm_clean_impl(size_t *removed) {
  size_t n = 0;
  listing l = {remove_stale, &n, true};
  int rc = shk__os_segment_list(each_name, &l);
  if (removed) *removed = n;
  return rc;
}

int shk_shm_clean(size_t *removed) {
  return SHK__DEBUG_RET(SHK__DEBUG_SHM, shm_clean_impl(removed));
}

static atomic_bool swept;
static atomic_uint next_serial;

void shk__shm_generate_name(const char *prefix, char out[SHK_SHM_NAME_MAX + 1]) {
  /* Once per process, at its first generated name: what killed processes left goes now. */
  if (!atomic_exchange(&swept, true)) (void)shk_shm_clean(NULL);
  unsigned n = atomic_fetch_add(&next_serial, 1) + 1;
  snprintf(out, SHK_SHM_NAME_MAX + 1, "%s%d-%u", prefix, shk__os_pid(), n);
}
