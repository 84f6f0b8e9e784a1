/* watch_demo: watch a small struct and a 1 MiB "pages" buffer, change them from two threads and
 * print every change event (old -> new for the struct; store keys and previews for the buffer)
 * and the watcher's stats. Usage: watch_demo [auto|mprotect|userfaultfd|write-watch|poll] */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#endif
#include <stdio.h>
#include <string.h>

#include "shmkit.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#include <time.h>
#endif

typedef struct sensor {
  int id;
  int reading;
  char status[16];
} sensor;

static sensor *the_sensor;
static unsigned char *samples; /* 1 MiB */

static void print_hex(const char *label, const void *bytes, size_t n) {
  const unsigned char *b = bytes;
  printf("      %s", label);
  for (size_t i = 0; i < n && i < 16; i++) printf(" %02x", b[i]);
  printf(n > 16 ? " ...\n" : "\n");
}

static void on_change(const shk_watch_event *ev, void *user) {
  shk_watcher *w = user;
  printf("  #%llu %-8s bytes [%zu, %zu) of %zu, %s backend", (unsigned long long)ev->seq,
         ev->region_name, ev->offset, ev->offset + ev->length, ev->region_size,
         shk_watch_backend_name(ev->backend));
  if (ev->flags & SHK_WATCH_EVENT_THREAD)
    printf(", thread %llu, %u fault(s)", (unsigned long long)ev->thread_id, ev->fault_count);
  printf("\n");
  if (ev->flags & SHK_WATCH_EVENT_IP)
    printf("      written by %s in %s\n", ev->symbol ? ev->symbol : "?", ev->module ? ev->module : "?");
  if (ev->flags & SHK_WATCH_EVENT_SOURCE) /* where debug information exists */
    printf("      at %s:%u in %s()\n", ev->file, (unsigned)ev->line, ev->function ? ev->function : "?");
  if (ev->flags & SHK_WATCH_EVENT_INLINE) {
    const sensor *old = ev->old_value, *now = ev->new_value;
    printf("      reading %d -> %d, status \"%s\" -> \"%s\"\n", old->reading, now->reading,
           old->status, now->status);
  } else {
    print_hex("old preview:", ev->old_preview, ev->preview_length);
    print_hex("new preview:", ev->new_preview, ev->preview_length);
    size_t len = 0;
    shk_watch_fetch(w, ev->new_key, NULL, 0, &len);
    printf("      stored: old key %llu, new key %llu, %zu bytes each\n",
           (unsigned long long)ev->old_key, (unsigned long long)ev->new_key, len);
    shk_watch_drop(w, ev->old_key);
    shk_watch_drop(w, ev->new_key);
  }
}

static void change_sensor(void) {
  for (int i = 1; i <= 3; i++) {
    the_sensor->reading = 20 + i;
    snprintf(the_sensor->status, sizeof the_sensor->status, "step %d", i);
#ifdef _WIN32
    Sleep(30);
#else
    struct timespec ts = {0, 30000000};
    nanosleep(&ts, NULL);
#endif
  }
}

static void change_samples(void) {
  memset(samples + 4096, 0xAB, 100);
  samples[512 * 1024] = 0x42;
}

#ifdef _WIN32
static DWORD WINAPI sensor_thread(LPVOID p) { (void)p; change_sensor(); return 0; }
static DWORD WINAPI samples_thread(LPVOID p) { (void)p; change_samples(); return 0; }
#else
static void *sensor_thread(void *p) { (void)p; change_sensor(); return NULL; }
static void *samples_thread(void *p) { (void)p; change_samples(); return NULL; }
#endif

static int check(int rc, const char *what) {
  if (rc != SHK_OK) fprintf(stderr, "%s: %s\n", what, shk_strerror(rc));
  return rc;
}

int main(int argc, char **argv) {
  shk_watch_options opts;
  shk_watch_options_init(&opts);
  for (int b = 0; argc > 1 && b < SHK_WATCH_BACKEND_COUNT; b++)
    if (strcmp(argv[1], shk_watch_backend_name((shk_watch_backend)b)) == 0)
      opts.backend = (shk_watch_backend)b;
  if (!shk_watch_backend_available(opts.backend)) {
    printf("backend %s is not available here\n", shk_watch_backend_name(opts.backend));
    return 0;
  }
  opts.coalesce_ms = 10; /* writes to a region within 10 ms make one event */
  shk_watcher *w = NULL;
  if (check(shk_watch_create(&opts, &w), "shk_watch_create")) return 1;

  /* The struct gets a page of its own so that nothing else on its page is watched. */
  shk_buf_options bo;
  shk_buf_options_init(&bo);
  bo.allocator = "pages";
  bo.init = SHK_BUF_INIT_ZERO;
  shk_buf *small = NULL, *large = NULL;
  if (check(shk_buf_create(1, sizeof(sensor), &bo, &small), "shk_buf_create") ||
      check(shk_buf_create(1 << 20, 1, &bo, &large), "shk_buf_create"))
    return 1;
  the_sensor = shk_buf_data(small);
  samples = shk_buf_data(large);
  the_sensor->id = 7;
  the_sensor->reading = 20;
  strcpy(the_sensor->status, "idle");

  uint32_t sensor_id, samples_id;
  if (check(shk_watch_add(w, the_sensor, sizeof *the_sensor, "sensor", &sensor_id), "add") ||
      check(shk_watch_add(w, samples, 1 << 20, "samples", &samples_id), "add"))
    return 1;
  shk_watch_set_callback(w, on_change, w);
  printf("watching \"sensor\" (%zu bytes) and \"samples\" (1 MiB); changing them from two threads\n",
         sizeof(sensor));

#ifdef _WIN32
  HANDLE t1 = CreateThread(NULL, 0, sensor_thread, NULL, 0, NULL);
  HANDLE t2 = CreateThread(NULL, 0, samples_thread, NULL, 0, NULL);
  WaitForSingleObject(t1, INFINITE);
  WaitForSingleObject(t2, INFINITE);
  CloseHandle(t1);
  CloseHandle(t2);
#else
  pthread_t t1, t2;
  pthread_create(&t1, NULL, sensor_thread, NULL);
  pthread_create(&t2, NULL, samples_thread, NULL);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
#endif
  shk_watch_flush(w); /* everything written so far is delivered before this returns */

  shk_watch_stats st;
  shk_watch_stats_get(w, &st);
  printf("stats: %zu regions, backend %s, %llu faults, %llu events delivered, %llu dropped, "
         "%zu bytes of native memory, %zu bytes stored\n",
         st.regions, shk_watch_backend_name(st.backend), (unsigned long long)st.faults,
         (unsigned long long)st.events_delivered, (unsigned long long)st.events_dropped,
         st.memory_bytes, st.stored_bytes);
  shk_watch_free(w);
  shk_buf_release(small);
  shk_buf_release(large);
  return 0;
}
