/* What the files of the write watcher share: the fault ring, the process-wide table of
 * protected spans read by the fault path, the value store, regions and the backend table. */
#ifndef SHMKIT_WATCH_INTERNAL_H
#define SHMKIT_WATCH_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "internal.h"

/* ---- the ring (watch_ring.c): many producers in the fault path, one consumer ------------- */

typedef struct shk__watch_record {
  uintptr_t addr;   /* faulting address (or page address for sources that know no more) */
  uintptr_t ip;     /* 0 when unknown */
  uint64_t tid;     /* 0 when unknown */
  uint64_t time_ns;
} shk__watch_record;

typedef struct shk__watch_slot {
  atomic_size_t seq;
  shk__watch_record rec;
} shk__watch_slot;

typedef struct shk__watch_ring {
  shk__watch_slot *slots;
  size_t mask;
  size_t limit;       /* records held at most: the capacity asked for, rounded up to a power of
                         two (1 stays 1); the slots are at least 2, which the algorithm needs */
  char pad0[64];
  atomic_size_t tail; /* next position a producer claims */
  char pad1[64];
  size_t head;        /* next position the consumer reads (consumer only) */
  atomic_size_t released; /* head as producers see it, for the limit */
  char pad2[64];
} shk__watch_ring;

/* capacity (at least 1) is rounded up to a power of two and then held exactly. SHK_ENOMEM,
 * SHK_EINVAL. */
int shk__watch_ring_init(shk__watch_ring *ring, size_t capacity);
void shk__watch_ring_destroy(shk__watch_ring *ring);
size_t shk__watch_ring_capacity(const shk__watch_ring *ring);
/* Async-signal-safe, lock-free, no allocation. false when full. */
bool shk__watch_ring_push(shk__watch_ring *ring, const shk__watch_record *rec);
/* Consumer only. false when empty (or the oldest slot is still being written). */
bool shk__watch_ring_pop(shk__watch_ring *ring, shk__watch_record *rec);

/* ---- the fault sink and the span table (watch_table.c) ----------------------------------- */

/* The part of a watcher the fault path touches. Lives until the watcher's spans are gone from
 * the table and no fault handler can still see it. */
typedef struct shk__watch_sink {
  shk__watch_ring ring;
  atomic_uint_least64_t faults;
  atomic_uint_least64_t dropped;
  atomic_int overflow;   /* set when a record was dropped or a whole span had to be opened */
  atomic_uint_least64_t overflow_ns; /* when the first of them happened (0: none) */
  size_t page_size;
} shk__watch_sink;

/* One protected span of the process-wide table (watch_table.c). */
typedef struct shk__watch_span {
  uintptr_t start, end;  /* whole pages */
  shk__watch_sink *sink;
  int prot;              /* what the pages allowed before: the fault path opens them to it */
} shk__watch_span;

/* Publishes [start, end) (whole pages) as protected by `sink`; `prot` is what the pages allowed
 * before (the fault path opens a page to exactly that). SHK_ENOMEM, SHK_EOVERLAP when another
 * sink holds one of the pages. */
int shk__watch_table_add(shk__watch_sink *sink, uintptr_t start, uintptr_t end, int prot);
/* Withdraws one span added with the same arguments, and waits until no fault handler can still
 * be reading it. The caller has already made the pages writable. */
void shk__watch_table_remove(shk__watch_sink *sink, uintptr_t start, uintptr_t end);
/* Hands sink's span (start, end) over to a sink that lives as long as the process: for pages a
 * detach could not open, so that the fault path still opens them to `prot` on their next write
 * (the program never crashes on them) after the watcher is gone. Counted; never fails. */
void shk__watch_table_orphan(shk__watch_sink *sink, uintptr_t start, uintptr_t end);
/* Spans handed over so far in this process (for tests and SHK_DEBUG). */
size_t shk__watch_table_orphans(void);
/* The fault path's look-up (async-signal-safe): the span holding addr, or NULL. The span and its
 * sink stay valid until shk__watch_table_exit(), which must follow every enter. */
const shk__watch_span *shk__watch_table_enter(uintptr_t addr);
void shk__watch_table_exit(void);
/* The common fault routine given to shk__os_fault_install() (watch_fault.c). Async-signal-safe. It returns true
 * only for a write it resolved: on a page in the table (opened now), or on a page that is
 * writable by now (a region removed while the fault was on its way); and never twice for the same
 * thread, address and instruction while no protection changed in between (a fault that opening
 * did not cure, such as an instruction fetch where the access type is unknown). */
bool shk__watch_on_fault(const shk__os_fault *fault);
/* Called before pages are protected again: tells the fault routine that a fault it resolved may
 * legitimately come back. */
void shk__watch_protection_changed(void);
/* Installs the OS fault hook the first time a watcher needs it; it then stays for the life of
 * the process (src/os.h says why). */
int shk__watch_hook_acquire(void);
/* Budget of protected spans against the kernel's memory-area limit (shared by every backend
 * that splits areas). take: false when the budget is used up. */
bool shk__watch_areas_take(void);
void shk__watch_areas_give(void);

/* ---- the value store (watch_store.c) ------------------------------------------------------ */

typedef struct shk__watch_stored {
  uint64_t key;
  size_t length;
  unsigned char *bytes; /* NULL once dropped */
} shk__watch_stored;

typedef struct shk__watch_store {
  shk__os_mutex lock;
  shk__watch_stored *items; /* a ring of entries in key order */
  size_t first, count, cap;
  uint64_t next_key;
  size_t bytes, limit;
} shk__watch_store;

void shk__watch_store_init(shk__watch_store *s, size_t limit);
void shk__watch_store_destroy(shk__watch_store *s);
/* Copies len bytes; returns the key, or 0 when out of memory. Evicts the oldest beyond limit. */
uint64_t shk__watch_store_put(shk__watch_store *s, const void *data, size_t len);
int shk__watch_store_fetch(shk__watch_store *s, uint64_t key, void *buf, size_t size,
                           size_t *length);
int shk__watch_store_drop(shk__watch_store *s, uint64_t key);
size_t shk__watch_store_bytes(shk__watch_store *s, size_t *overhead);

/* ---- regions, the watcher and the backend table ------------------------------------------ */

struct shk__watch_backend_ops;

typedef struct shk__watch_region {
  uint32_t id;
  char *name;
  uintptr_t addr;
  size_t size;
  uintptr_t page_start, page_end;            /* the pages the region touches */
  int prot;                                  /* what its pages allowed before (SHK__OS_PROT_*) */
  bool prot_uniform;                         /* ... the same on every page */
  shk_watch_backend backend;                 /* as reported */
  const struct shk__watch_backend_ops *ops;  /* how it is watched */
  bool holds_area;                           /* took one unit of the area budget */
  unsigned char *shadow;                     /* the last value delivered, aligned like addr
                                                modulo 8 (inside shadow_block) */
  unsigned char *shadow_block;
  unsigned char *dirty;                      /* one bit per page, pages to compare */
  size_t dirty_count;
  uint64_t first_ns;                         /* first write not yet delivered; 0 when none */
  bool resync;
  bool due;                                  /* compared in the current pass */
  bool has_fault;                            /* writer details of the burst's first fault */
  uintptr_t fault_addr, ip;
  uint64_t tid;
  uint32_t fault_count;
  void *custom_state;                        /* what a user backend's attach gave back */
  uint64_t buffer_id;                        /* a followed buffer's id (watch_buffers.c); 0 */
  char *buffer_allocator;                    /* ... its allocator's name; NULL for others */
  bool poll_only;                            /* auto: this region goes to poll */
} shk__watch_region;

/* One event waiting to be delivered, its bytes in the batch arena (offsets until delivery). */
typedef struct shk__watch_batch_entry {
  shk_watch_event ev;
  size_t name_off, old_off, new_off, oldp_off, newp_off, module_off, symbol_off, file_off,
      function_off, allocator_off;
} shk__watch_batch_entry;

struct shk_watcher {
  shk_watch_options opts;
  size_t page_size;
  shk__os_mutex lock;          /* everything below except what says otherwise */
  shk__os_cond wake;           /* worker sleeps here; flushers wait on `flushed` */
  shk__os_cond flushed;
  shk__os_mutex deliver_lock;  /* held by the worker while callbacks run */
  shk__os_thread *thread;
  atomic_uint_least64_t worker_tid;
  bool stop;
  uint64_t flush_req, flush_done;

  shk__watch_region **regions; /* sorted by addr, disjoint */
  size_t count, cap;
  uint32_t next_id;

  shk__watch_sink *sink;
  const struct shk__watch_backend_ops *custom_ops; /* a user backend chosen by name, or NULL */
  bool hook_held; /* this watcher has made sure the fault hook is installed */
  struct shk__watch_follower *follower; /* following buffers; guarded by SHK__LOCK_WATCH_BUFFERS */
  shk__os_uffd *uffd;
  bool uffd_sync;              /* uffd opened in sync mode, with a reader thread */
  shk__os_thread *uffd_reader;
  atomic_bool uffd_stop;
  uint64_t uffd_scan_due_ns;   /* async mode: no scan before this (see shk__watch_scan_start) */
  uint64_t ww_scan_due_ns;     /* write-watch: the same */
  shk__watch_store store;

  shk_watch_fn fn;
  void *user;
  uint64_t seq;
  uint64_t last_poll_ns;

  /* counters */
  uint64_t delivered, unobserved, resyncs;
  size_t moved_to_poll;

  /* worker scratch: the batch being built */
  shk__watch_batch_entry *batch;
  size_t batch_count, batch_cap;
  unsigned char *arena;
  size_t arena_len, arena_cap;
};

typedef struct shk__watch_backend_ops {
  shk_watch_backend kind;
  /* Whether the backend works on this system at all. */
  bool (*available)(void);
  /* Whether it can watch this region's memory. NULL: any. */
  bool (*accepts)(shk_watcher *w, const shk__watch_region *r);
  /* Starts tracking the region (the common code copies the shadow afterwards).
   * SHK_ELIMIT when a system limit would be passed. NULL: nothing to start. */
  int (*attach)(shk_watcher *w, shk__watch_region *r);
  /* Stops tracking; [excl_start, excl_end) are the pages no other region still needs.
   * NULL: nothing to stop. An error means the pages could not all be given back (their
   * protection, their registration); the region goes all the same, and the backend has left
   * nothing that can break the program (a protected page stays openable by the fault path). */
  int (*detach)(shk_watcher *w, shk__watch_region *r, uintptr_t excl_start, uintptr_t excl_end);
  /* Marks written pages dirty (scanning backends; NULL for fault backends). */
  void (*scan)(shk_watcher *w, uint64_t now, bool force);
  /* Protects pages again before they are compared (fault backends; NULL otherwise); `prot` is
   * what they allowed before watching. A failure keeps the pages dirty, so they are compared
   * again on every pass until it succeeds. */
  int (*rearm)(shk_watcher *w, uintptr_t addr, size_t size, int prot);
  /* A backend registered by a user (watch_backend_custom.c): its table; NULL for built-ins. */
  const shk_watch_backend_table *custom;
} shk__watch_backend_ops;

extern const shk__watch_backend_ops shk__watch_backend_mprotect;
extern const shk__watch_backend_ops shk__watch_backend_userfaultfd;
extern const shk__watch_backend_ops shk__watch_backend_userfaultfd_sync;
/* Stops the sync-mode reader thread and closes the descriptor (after the regions are gone). */
void shk__watch_uffd_shutdown(shk_watcher *w);
extern const shk__watch_backend_ops shk__watch_backend_write_watch;
extern const shk__watch_backend_ops shk__watch_backend_poll;

/* Whether a region's memory was writable, the same on every page, before watching: what every
 * backend that write-protects needs (they refuse other memory with SHK_EACCES). */
bool shk__watch_region_writable(const shk__watch_region *r);
/* Records a ring overflow (a dropped record, a span opened whole) at time `now`. Async-signal-safe. */
void shk__watch_sink_overflow(shk__watch_sink *sink, uint64_t now);

/* The backend registry (watch_registry.c): the ops registered under a name, counted as used
 * until shk__watch_registry_release(). SHK_ENOENT, SHK_EUNSUPPORTED (not available here). */
int shk__watch_registry_acquire(const char *name, const shk__watch_backend_ops **ops);
void shk__watch_registry_release(const shk__watch_backend_ops *ops);
/* Ops that call a user's table (watch_backend_custom.c); `ops->custom` set by the caller. */
void shk__watch_custom_ops_init(shk__watch_backend_ops *ops, const shk_watch_backend_table *t);

/* The ops for a backend kind (never NULL for the four real kinds). */
const shk__watch_backend_ops *shk__watch_backend_ops_of(shk_watch_backend kind);

/* The budget of a scanning backend whose scan grows with the number of regions: a scan is skipped
 * until nine times the length of the last one has gone by (scans take at most a tenth of the
 * time; the coalescing window stretches accordingly), never on a flush. start: whether to scan
 * now; done: records the scan's length (t0 = what start gave through *t0). */
bool shk__watch_scan_start(uint64_t due_ns, uint64_t now, bool force, uint64_t *t0);
void shk__watch_scan_done(uint64_t *due_ns, uint64_t t0);

/* Marks `pages` pages from `page` dirty in every region they touch (the watcher lock held). */
void shk__watch_mark_pages(shk_watcher *w, uintptr_t page, size_t pages, uint64_t now);
/* The dirty-page callback shape for the OS scanners: ctx is the watcher. */
void shk__watch_mark_pages_cb(uintptr_t page, size_t pages, void *ctx);
/* The index of the first region whose end is past addr (lock held). */
size_t shk__watch_first_region(shk_watcher *w, uintptr_t addr);

/* ---- followed buffers (watch_buffers.c over watch.c) ---- */

/* A buffer's region: added unless the same buffer is watched already; a stale region of another
 * buffer at the same address is replaced. poll_only: with auto, on poll. The shk_watch_add codes. */
int shk__watch_buffer_add(shk_watcher *w, const shk_buf_info *info, bool poll_only);
/* Removes the buffer region at addr, if there is one. */
void shk__watch_buffer_remove(shk_watcher *w, uintptr_t addr);
/* Removes every buffer region. */
void shk__watch_buffer_remove_all(shk_watcher *w);
/* Stops following buffers, as shk_watch_free begins. */
void shk__watch_buffers_forget(shk_watcher *w);

/* Reads of watched memory race with the program's writers by design (the comparison decides
 * what changed): SHK__RACY_READ (internal.h) tells ThreadSanitizer so. */
/* memcpy from watched memory. */
void shk__watch_copy_in(void *dst, const void *watched, size_t n);

/* The worker (watch_worker.c). */
void shk__watch_worker_main(void *arg);
/* Runs one pass with the lock held; builds the batch. force ignores the window. */
void shk__watch_worker_pass(shk_watcher *w, bool force);

#endif
