/* The protection backend: pages read-only, the fault hook opens a page on the first write and
 * records it; the worker closes it again. mprotect + SIGSEGV/SIGBUS on POSIX, VirtualProtect +
 * a vectored exception handler on Windows, through the same src/os.h calls. Pages get back
 * exactly the protection they had (read-write, read-write-execute, copy-on-write); memory that
 * was not writable is refused (SHK_EACCES), so shmkit never makes it writable. */
#include "watch_internal.h"

static bool available(void) { return true; }

/* The protection a watched page has between faults: what it had, less writing. */
static int closed(int prot) { return prot & ~(SHK__OS_PROT_WRITE | SHK__OS_PROT_COPY); }

static int attach(shk_watcher *w, shk__watch_region *r) {
  if (!shk__watch_region_writable(r)) return SHK_EACCES;
  if (!w->hook_held) {
    int rc = shk__watch_hook_acquire();
    if (rc != SHK_OK) return rc;
    w->hook_held = true;
  }
  if (!shk__watch_areas_take()) return SHK_ELIMIT;
  r->holds_area = true;
  size_t size = r->page_end - r->page_start;
  int rc = shk__watch_table_add(w->sink, r->page_start, r->page_end, r->prot);
  if (rc == SHK_OK) {
    /* In the table first: a write racing with the protection is then recognised as ours. */
    rc = shk__os_protect((void *)r->page_start, size, closed(r->prot));
    if (rc != SHK_OK) {
      shk__os_protect((void *)r->page_start, size, r->prot);
      shk__watch_table_remove(w->sink, r->page_start, r->page_end);
      if (rc == SHK_ENOMEM) rc = SHK_ELIMIT; /* the kernel's memory-area limit */
    }
  }
  if (rc != SHK_OK) {
    shk__watch_areas_give();
    r->holds_area = false;
  }
  return rc;
}

/* Tries of the protection change that gives pages back (a transient failure, such as ENOMEM
 * while the kernel is short of memory-area structures, may pass). */
#define DETACH_TRIES 3

static int detach(shk_watcher *w, shk__watch_region *r, uintptr_t es, uintptr_t ee) {
  /* Open the pages before leaving the table, so no write can fault on a page nobody claims. */
  int rc = SHK_OK;
  for (int i = 0; ee > es && i < DETACH_TRIES; i++) {
    rc = shk__os_protect((void *)es, ee - es, r->prot);
    if (rc == SHK_OK) break;
  }
  if (rc == SHK_OK) {
    shk__watch_table_remove(w->sink, r->page_start, r->page_end);
    return SHK_OK;
  }
  /* Still read-only: the span stays known to the fault path, which opens each page on its next
   * write, so the program never crashes on memory it could write before. */
  shk__watch_table_orphan(w->sink, r->page_start, r->page_end);
  return rc;
}

static int rearm(shk_watcher *w, uintptr_t addr, size_t size, int prot) {
  (void)w;
  shk__watch_protection_changed();
  return shk__os_protect((void *)addr, size, closed(prot));
}

const shk__watch_backend_ops shk__watch_backend_mprotect = {
    SHK_WATCH_MPROTECT, available, NULL, attach, detach, NULL, rearm, NULL};
