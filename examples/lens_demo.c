/* lens_demo: an instrumented program. A frame loop with nested zones on two threads, a plot, heap
 * events and logs, sent to the lens segment NAME for `shmkit lens record NAME -o trace.json`. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* nanosleep in strict C11 mode */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmkit.h"

#ifdef _WIN32
#include <windows.h>
static void nap_ms(int ms) { Sleep((DWORD)ms); }
typedef HANDLE demo_thread;
static DWORD WINAPI worker_entry(LPVOID arg);
static int start_thread(demo_thread *t, void *arg) {
  *t = CreateThread(NULL, 0, worker_entry, arg, 0, NULL);
  return *t ? 0 : -1;
}
static void join_thread(demo_thread t) {
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
}
#else
#include <pthread.h>
#include <time.h>
static void nap_ms(int ms) {
  struct timespec ts = {0, (long)ms * 1000000L};
  nanosleep(&ts, NULL);
}
typedef pthread_t demo_thread;
static void *worker_entry(void *arg);
static int start_thread(demo_thread *t, void *arg) { return pthread_create(t, NULL, worker_entry, arg); }
static void join_thread(demo_thread t) { pthread_join(t, NULL); }
#endif

typedef struct demo {
  shk_lens *lens;
  int frames;
} demo;

/* Some work worth measuring. */
static double busy(int n) {
  volatile double x = 0;
  for (int i = 0; i < n; i++) x += (double)i * 0.5;
  return x;
}

static void worker(demo *d) {
  shk_lens_thread_name(d->lens, "worker");
  for (int i = 0; i < d->frames; i++) {
    shk_lens_zone job, decode;
    shk_lens_zone_begin(d->lens, &job, "job", 0x3366CC);
    shk_lens_zone_begin(d->lens, &decode, "decode", 0x6699FF);
    busy(20000);
    shk_lens_zone_end(&decode);
    busy(5000);
    shk_lens_zone_end(&job);
    nap_ms(1);
  }
}

#ifdef _WIN32
static DWORD WINAPI worker_entry(LPVOID arg) {
  worker(arg);
  return 0;
}
#else
static void *worker_entry(void *arg) {
  worker(arg);
  return NULL;
}
#endif

static void frame(demo *d, int i) {
  shk_lens_zone frame_zone, update, physics, render;
  shk_lens_zone_begin(d->lens, &frame_zone, "frame", 0x999999);
  shk_lens_zone_begin(d->lens, &update, "update", 0x33AA33);
  shk_lens_zone_begin(d->lens, &physics, "physics", 0x22CC88);
  busy(30000);
  shk_lens_zone_end(&physics);
  busy(10000);
  shk_lens_zone_end(&update);

  /* Heap events: what an allocator hook would send. */
  size_t size = 1024u * (size_t)(1 + i % 8);
  void *scratch = malloc(size);
  shk_lens_heap(d->lens, (uint64_t)(uintptr_t)scratch, size, false);

  shk_lens_zone_begin(d->lens, &render, "render", 0xCC3333);
  if (scratch) memset(scratch, i, size);
  busy(20000);
  shk_lens_zone_end(&render);

  shk_lens_heap(d->lens, (uint64_t)(uintptr_t)scratch, size, true);
  free(scratch);
  shk_lens_plot(d->lens, "entities", 100.0 + 50.0 * (double)(i % 10), 0xFFAA00);
  if (i % 10 == 0) shk_lens_log(d->lens, 0xFFFFFF, "frame %d: %d entities", i, 100 + 50 * (i % 10));
  shk_lens_zone_end(&frame_zone);
  shk_lens_frame(d->lens);
}

int main(int argc, char **argv) {
  const char *name = "lens-demo";
  double wait_s = 0;
  demo d = {NULL, 60};
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc) d.frames = atoi(argv[++i]);
    else if (strcmp(argv[i], "--wait-reader") == 0 && i + 1 < argc) wait_s = atof(argv[++i]);
    else if (argv[i][0] != '-') name = argv[i];
    else {
      fprintf(stderr, "usage: lens_demo [NAME] [--frames N] [--wait-reader SECONDS]\n");
      return 2;
    }
  }
  /* A generous wait when a payload is full: with a recorder attached, nothing is dropped. */
  shk_lens_options options;
  shk_lens_options_init(&options);
  options.full_wait_ns = 200000000u;
  int rc = shk_lens_open(name, &options, &d.lens);
  if (rc != SHK_OK) {
    fprintf(stderr, "lens_demo: cannot open lens '%s': %s\n", name, shk_strerror(rc));
    return 1;
  }
  if (wait_s > 0 && shk_lens_wait_reader(d.lens, (uint64_t)(wait_s * 1e9)) != SHK_OK)
    fprintf(stderr, "lens_demo: no reader after %.1f s, sending anyway\n", wait_s);
  shk_lens_thread_name(d.lens, "main");
  shk_lens_log(d.lens, 0x00FF00, "lens_demo starts: %d frames", d.frames);

  demo_thread t;
  bool threaded = start_thread(&t, &d) == 0;
  for (int i = 0; i < d.frames; i++) {
    frame(&d, i);
    nap_ms(1);
  }
  if (threaded) join_thread(t);

  shk_lens_stats st;
  shk_lens_stats_get(d.lens, &st);
  printf("lens_demo: sent %llu zones, %llu frames, %llu plots, %llu heap events, %llu logs; "
         "dropped %llu zones\n",
         (unsigned long long)st.sent[SHK_LENS_ZONE], (unsigned long long)st.sent[SHK_LENS_FRAME],
         (unsigned long long)st.sent[SHK_LENS_PLOT], (unsigned long long)st.sent[SHK_LENS_HEAP],
         (unsigned long long)st.sent[SHK_LENS_LOG],
         (unsigned long long)st.segment[SHK_LENS_ZONE].dropped);
  shk_lens_close(d.lens);
  return 0;
}
