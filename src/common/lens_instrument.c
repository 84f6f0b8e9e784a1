/* shmkit's own parts on a lens: which lens each part reports into (shk_lens_instrument(), or
 * SHK_LENS read at the first instrumented call), and the slow paths of the hooks in lens_hook.h
 * that turn task, worker, watch and buffer activity into zones, logs, plots and heap events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lens_hook.h"
#include "lens_internal.h"
#include "debug.h"

/* The address of this object marks "SHK_LENS not read yet": the first instrumented call of each
 * process (a forked child or a started worker too) then takes the slow path once. */
static char unread_mark;
#define UNREAD ((shk_lens *)(void *)&unread_mark)

_Atomic(shk_lens *) shk__lens_hooks[SHK__LENS_PARTS] = {UNREAD, UNREAD, UNREAD};

/* A lens this process opened itself (from SHK_LENS, or a worker process's own handle): closed
 * at the worker's end or at exit. */
static _Atomic(shk_lens *) owned_lens;
static _Atomic uint64_t bufs_live, watch_seen;

#define COLOR_TASK 0x7D9FCFu
#define COLOR_CHUNK_FAILED 0xC43C3Cu
#define COLOR_WORKER 0x55A868u
#define COLOR_WATCH 0xE6C430u
#define COLOR_LOG 0xEEEEEEu

static shk_lens *hook_of(int part) {
  return atomic_load_explicit(&shk__lens_hooks[part], memory_order_acquire);
}

static void set_hooks(shk_lens *lens, unsigned parts) {
  for (int p = 0; p < SHK__LENS_PARTS; p++)
    atomic_store_explicit(&shk__lens_hooks[p], (parts >> p) & 1u ? lens : NULL,
                          memory_order_release);
  shk__buf_lens_changed();
}

static void close_owned(void) {
  shk_lens *lens = atomic_exchange(&owned_lens, NULL);
  if (!lens) return;
  for (int p = 0; p < SHK__LENS_PARTS; p++) {
    shk_lens *expected = lens;
    atomic_compare_exchange_strong(&shk__lens_hooks[p], &expected, NULL);
  }
  shk__buf_lens_changed();
  shk_lens_close(lens);
}

static void close_owned_at_exit(void) { close_owned(); }

/* Reads SHK_LENS (each process, until its parts are resolved): a name opens (or creates) that
 * lens and instruments every part; unset or empty leaves everything off. A lens that cannot be
 * opened leaves it off too (instrumentation never makes a program fail). Threads that race here
 * each read the variable; one lens wins and the others close theirs (a thread whose open failed
 * takes the winner's when it is in place). Nothing waits for another
 * thread, so a fork in the middle leaves the child nothing to wait for. */
static void read_env(void) {
  const char *name = getenv("SHK_LENS");
  bool named = name && *name;
  shk_lens *lens = NULL;
  if (named && shk_lens_open(name, NULL, &lens) == SHK_OK) {
    shk_lens *none = NULL;
    if (atomic_compare_exchange_strong(&owned_lens, &none, lens)) {
      atexit(close_owned_at_exit);
    } else {
      shk_lens_close(lens); /* another thread's is in place */
      lens = none;
    }
  } else if (named) {
    lens = atomic_load(&owned_lens); /* ours failed; another thread's may be in place */
  }
  bool used = false;
  for (int p = 0; p < SHK__LENS_PARTS; p++) {
    shk_lens *mark = UNREAD;
    used |= atomic_compare_exchange_strong(&shk__lens_hooks[p], &mark, lens) && lens;
    used |= hook_of(p) == lens && lens;
  }
  shk__buf_lens_changed();
  /* shk_lens_instrument() chose before us: the variable's lens is not needed. */
  if (lens && !used) close_owned();
}

/* The lens part reports into now, SHK_LENS read first when it has not been; NULL when off. */
static shk_lens *lens_for(int part) {
  shk_lens *lens = hook_of(part);
  if (lens != UNREAD) return lens;
  read_env();
  lens = hook_of(part);
  return lens == UNREAD ? NULL : lens;
}

static int lens_instrument_impl(shk_lens *lens, unsigned parts) {
  if (parts & ~SHK_LENS_ALL) return SHK_EINVAL;
  /* An explicit call wins over SHK_LENS: no part is left unresolved, so the variable is not
   * read afterwards. */
  set_hooks(lens, lens ? parts : 0);
  return SHK_OK;
}

int shk_lens_instrument(shk_lens *lens, unsigned parts) {
  return SHK__DEBUG_RET(SHK__DEBUG_LENS, lens_instrument_impl(lens, parts));
}

void shk__lens_instrument_forget(shk_lens *lens) {
  bool changed = false;
  for (int p = 0; p < SHK__LENS_PARTS; p++) {
    shk_lens *expected = lens;
    changed |= atomic_compare_exchange_strong(&shk__lens_hooks[p], &expected, NULL);
  }
  shk_lens *expected = lens;
  atomic_compare_exchange_strong(&owned_lens, &expected, NULL);
  if (changed) shk__buf_lens_changed();
}

bool shk__lens_bufs_on(void) {
  shk_lens *lens = hook_of(SHK__LENS_BUFS);
  return lens != NULL && lens != UNREAD;
}

/* ---- zones ---- */

void shk__lens_hook_zone(int part, shk_lens_zone *zone, const char *name, uint32_t color) {
  zone->lens = NULL;
  shk_lens *lens = lens_for(part);
  if (lens) shk_lens_zone_begin(lens, zone, name, color);
}

void shk__lens_hook_zone_end(shk_lens_zone *zone) { shk_lens_zone_end(zone); }

/* ---- tasks ---- */

static const char *mode_name(int mode) {
  return mode == SHK_TASK_PROCESSES ? "processes" : mode == SHK_TASK_THREADS ? "threads" : "inline";
}

void shk__lens_hook_task(shk_lens_zone *zone) {
  zone->lens = NULL;
  shk_lens *lens = lens_for(SHK__LENS_TASKS);
  if (lens) shk_lens_zone_begin(lens, zone, "shk task", COLOR_TASK);
}

static shk_lens_arg uint_arg(const char *name, uint64_t value) {
  shk_lens_arg a = {name, SHK_LENS_ARG_UINT, 0, value, NULL};
  return a;
}

static shk_lens_arg text_arg(const char *name, const char *text) {
  shk_lens_arg a = {name, SHK_LENS_ARG_TEXT, 0, 0, text};
  return a;
}

void shk__lens_hook_task_end(shk_lens_zone *zone, uint64_t chunks, unsigned workers, int mode,
                             uint64_t bytes) {
  shk_lens_arg args[] = {uint_arg("chunks", chunks), uint_arg("workers", workers),
                         text_arg("mode", mode_name(mode)), uint_arg("input bytes", bytes)};
  shk_lens_zone_end_args(zone, args, SHK__ARRAY_LEN(args));
}

void shk__lens_hook_chunk_end(shk_lens_zone *zone, uint64_t index, uint64_t offset,
                              uint64_t length, int code) {
  /* Name and colour tell the status: names are sent by address, so they are literals. */
  if (code != SHK_OK) {
    zone->name = "shk chunk failed";
    zone->color = COLOR_CHUNK_FAILED;
  }
  shk_lens_arg args[] = {uint_arg("index", index), uint_arg("offset", offset),
                         uint_arg("length", length),
                         {"code", SHK_LENS_ARG_INT, 0, (uint64_t)(int64_t)code, NULL}};
  shk_lens_zone_end_args(zone, args, SHK__ARRAY_LEN(args));
}

/* The parts that report into lens (SHK_LENS_* bits). */
static unsigned parts_of(const shk_lens *lens) {
  unsigned parts = 0;
  for (int p = 0; p < SHK__LENS_PARTS; p++)
    if (hook_of(p) == lens) parts |= 1u << p;
  return parts;
}

/* A worker's start. A worker process (forked, or started anew and joined through its pool's
 * record, shk__lens_hook_join) reports through a handle of its own, so its chunks appear under
 * its real pid: a handle inherited through fork() belongs to the parent (its pid, its rings)
 * and is never used here. */
void shk__lens_hook_worker(bool same_space, unsigned index) {
  shk_lens *lens = lens_for(SHK__LENS_TASKS);
  if (!lens) return;
  if (!same_space && !shk__lens_is_ours(lens)) {
    shk_lens *mine = NULL;
    unsigned parts = parts_of(lens);
    if (shk__lens_reopen(lens, &mine) != SHK_OK) {
      set_hooks(NULL, 0); /* the parent's handle is not ours to write through */
      return;
    }
    atomic_store(&owned_lens, mine);
    set_hooks(mine, parts);
    lens = mine;
  }
  char name[32];
  snprintf(name, sizeof name, "shk worker %u", index);
  shk_lens_thread_name(lens, name); /* copied */
  shk_lens_log(lens, COLOR_WORKER, "worker %u started (%s)", index,
               same_space ? "thread" : "process");
}

void shk__lens_hook_worker_end(bool same_space) {
  if (!same_space) close_owned(); /* the process ends next: hand its rings to the reader */
}

/* ---- worker processes started anew; the pool's start-up and replacements ---- */

void shk__lens_hook_join_write(shk__lens_join *rec) {
  shk_lens *lens = lens_for(SHK__LENS_TASKS);
  unsigned parts = 0;
  if (lens) {
    shk_lens_options o;
    const char *name = shk__lens_name(lens, &o);
    size_t n = strlen(name);
    if (n < sizeof rec->name) {
      memcpy(rec->name, name, n + 1);
      rec->flags = o.flags;
      rec->full_wait_ns = o.full_wait_ns;
      parts = parts_of(lens);
    }
  }
  atomic_store_explicit(&rec->parts, parts, memory_order_release);
}

void shk__lens_hook_join(const shk__lens_join *rec) {
  /* Shared memory: read each field once, into our own copy, and check it there. */
  unsigned parts = atomic_load_explicit(&rec->parts, memory_order_acquire);
  char name[sizeof rec->name];
  memcpy(name, rec->name, sizeof name);
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.flags = rec->flags & SHK_LENS_KEEP_NAME;
  o.full_wait_ns = rec->full_wait_ns;
  shk_lens *lens = NULL;
  if (parts != 0 && (parts & ~SHK_LENS_ALL) == 0 && memchr(name, '\0', sizeof name) &&
      shk_shm_name_check(name) == SHK_OK && shk_lens_open(name, &o, &lens) != SHK_OK)
    lens = NULL;
  close_owned(); /* a lens this process opened from SHK_LENS gives way */
  if (lens) atomic_store(&owned_lens, lens);
  set_hooks(lens, lens ? parts : 0);
}

void shk__lens_hook_worker_started(unsigned index, int pid, const shk__os_exit *previous) {
  shk_lens *lens = lens_for(SHK__LENS_TASKS);
  if (!lens) return;
  char what[32], before[80] = "";
  if (pid) snprintf(what, sizeof what, "process %d", pid);
  else snprintf(what, sizeof what, "thread");
  /* A signal on POSIX; on Windows an exception ends a process with its code (0xC...). */
  if (previous && previous->kind == SHK__OS_SIGNALED && previous->code > 0 && previous->code < 256)
    snprintf(before, sizeof before, "; the previous one was killed by signal %d", previous->code);
  else if (previous && previous->kind == SHK__OS_SIGNALED)
    snprintf(before, sizeof before, "; the previous one was killed by exception 0x%08x",
             (unsigned)previous->code);
  else if (previous)
    snprintf(before, sizeof before, "; the previous one ended with exit code %d", previous->code);
  shk_lens_arg args[] = {uint_arg("worker", index), uint_arg("pid", (uint64_t)(pid > 0 ? pid : 0)),
                         uint_arg("replaced", previous != NULL)};
  shk_lens_log_args(lens, COLOR_WORKER, args, SHK__ARRAY_LEN(args), "pool: worker %u %s (%s)%s",
                    index, previous ? "replaced" : "started", what, before);
}

/* ---- the watcher ---- */

static void hex_preview(char *out, size_t cap, const void *bytes, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *b = bytes;
  size_t o = 0;
  if (!b) n = 0;
  for (size_t i = 0; i < n && o + 4 < cap; i++) {
    if (i) out[o++] = ' ';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 15];
  }
  out[o] = '\0';
}

/* The lens this thread was named on as a watcher's thread (a name is sent once per lens). */
static SHK__THREAD_LOCAL shk_lens *watcher_named;

void shk__lens_hook_watch(const shk_watch_event *ev) {
  shk_lens *lens = lens_for(SHK__LENS_WATCH);
  if (!lens) return;
  if (watcher_named != lens && shk_lens_thread_name(lens, "shk watcher") == SHK_OK)
    watcher_named = lens;
  size_t n = SHK__MIN(ev->preview_length, (size_t)8);
  char before[32], after[32];
  hex_preview(before, sizeof before, ev->old_preview, n);
  hex_preview(after, sizeof after, ev->new_preview, n);
  /* On the writer's track when the backend knows the thread, else on the watcher's own track
   * (the trace writer puts a log with an unsigned "thread" argument on that thread's track). A
   * resync event stands for writes whose own events were dropped (the fault ring overflowed). */
  bool writer_known = (ev->flags & SHK_WATCH_EVENT_THREAD) != 0;
  shk_lens_arg args[] = {uint_arg("offset", (uint64_t)ev->offset),
                         uint_arg("length", (uint64_t)ev->length),
                         uint_arg("dropped before", (ev->flags & SHK_WATCH_EVENT_RESYNC) ? 1 : 0),
                         uint_arg("writer known", writer_known),
                         uint_arg("thread", writer_known ? ev->thread_id : shk__os_thread_id())};
  shk_lens_log_args(lens, COLOR_WATCH, args, SHK__ARRAY_LEN(args),
                    "watch %s +%llu, %llu bytes: %s -> %s%s",
                    ev->region_name, (unsigned long long)ev->offset,
                    (unsigned long long)ev->length, before, after,
                    ev->flags & SHK_WATCH_EVENT_RESYNC ? " [resync: events were dropped]" : "");
  shk_lens_plot(lens, "shk watch events", (double)(atomic_fetch_add(&watch_seen, 1) + 1),
                COLOR_WATCH);
}

/* ---- buffers ---- */

void shk__lens_hook_buf_ready(void) { (void)lens_for(SHK__LENS_BUFS); }

/* Live bytes per allocator, as counters. Plot names go by address and must stay valid while the
 * lens is open, so they are literals: the built-in allocators by name, the registered ones
 * together. */
static const char *const alloc_names[] = {"heap", "aligned", "pages", "shm"};
static const char *const alloc_plots[] = {"shk buf bytes: heap", "shk buf bytes: aligned",
                                          "shk buf bytes: pages", "shk buf bytes: shm",
                                          "shk buf bytes: registered allocators"};
static _Atomic uint64_t alloc_bytes[SHK__ARRAY_LEN(alloc_plots)];

static size_t alloc_index(const char *allocator) {
  size_t i = 0;
  while (i < SHK__ARRAY_LEN(alloc_names) && (!allocator || strcmp(allocator, alloc_names[i]) != 0))
    i++;
  return i;
}

/* Allocator names as heap-event arguments: strings go by address and must stay valid while the
 * lens is open, and a registered allocator's name goes with it when it is unregistered, so each
 * distinct name is copied once into this table (lock-free: a fork in the middle leaves no lock
 * held; never freed). */
#define INTERNED_MAX 64
static _Atomic(char *) interned[INTERNED_MAX];

static const char *interned_name(const char *name) {
  if (!name) return "?";
  char *copy = NULL;
  for (size_t i = 0; i < INTERNED_MAX; i++) {
    char *at = atomic_load(&interned[i]);
    if (!at) {
      if (!copy) copy = shk__malloc(strlen(name) + 1);
      if (!copy) return "registered allocator";
      strcpy(copy, name);
      if (atomic_compare_exchange_strong(&interned[i], &at, copy)) return copy;
    }
    if (strcmp(at, name) == 0) {
      free(copy);
      return at;
    }
  }
  free(copy);
  return "registered allocator"; /* more names than the table holds */
}

void shk__lens_hook_buf(const shk_buf_info *info, bool allocated) {
  shk_lens *lens = lens_for(SHK__LENS_BUFS);
  if (!lens) return;
  shk_lens_arg arg = text_arg("allocator", interned_name(info->allocator));
  shk_lens_heap_args(lens, (uint64_t)info->address, (uint64_t)info->size, !allocated, &arg, 1);
  uint64_t live = allocated ? atomic_fetch_add(&bufs_live, 1) + 1
                            : atomic_fetch_sub(&bufs_live, 1) - 1;
  shk_lens_plot(lens, "shk buffers live", (double)(int64_t)live, COLOR_LOG);
  size_t a = alloc_index(info->allocator);
  uint64_t size = (uint64_t)info->size;
  uint64_t bytes = allocated ? atomic_fetch_add(&alloc_bytes[a], size) + size
                             : atomic_fetch_sub(&alloc_bytes[a], size) - size;
  /* Buffers made before instrumentation began may end during it: the count can go below 0. */
  shk_lens_plot(lens, alloc_plots[a], (double)(int64_t)bytes, COLOR_LOG);
}
