/* bench_lens: what a lens zone costs the instrumented program, beside the raw mechanism measured
 * in the same run (a bare per-thread single-producer ring in shared memory, one 32-byte record
 * per zone stamped twice with the same clock, drained by another process); one and four producing
 * threads; the loss at 1 M zones/s per thread with a recorder (poll + Chrome JSON writer, as
 * `shmkit lens record`) as the reader and the producer never waiting; 10 M zones/s in total with
 * waiting allowed; the recorder's CPU per event beside a reader that only drains. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "shmkit.h"
#include "../tools/trace_json.c"
#include "../tests/support/shk_test_thread.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <x86intrin.h>
static inline uint64_t stamp(void) { return __rdtsc(); }
#define STAMP_NAME "rdtsc"
#else
static inline uint64_t stamp(void) { return (uint64_t)bench_now_ns(); }
#define STAMP_NAME "OS monotonic clock"
#endif

#ifdef _WIN32
#include <windows.h>
static double cpu_ns(void) {
  FILETIME c, e, k, u;
  GetProcessTimes(GetCurrentProcess(), &c, &e, &k, &u);
  ULARGE_INTEGER a, b;
  a.LowPart = k.dwLowDateTime;
  a.HighPart = k.dwHighDateTime;
  b.LowPart = u.dwLowDateTime;
  b.HighPart = u.dwHighDateTime;
  return (double)(a.QuadPart + b.QuadPart) * 100.0;
}
static const char *temp_trace(void) { return "bench_lens_trace.json"; }
typedef HANDLE child_proc;
static int spawn_self(const char *self, const char *const *args, child_proc *out) {
  char cmd[2048];
  int n = snprintf(cmd, sizeof cmd, "\"%s\"", self);
  for (int i = 0; args[i]; i++) n += snprintf(cmd + n, sizeof cmd - (size_t)n, " \"%s\"", args[i]);
  STARTUPINFOA si;
  PROCESS_INFORMATION pi;
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  if (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) return -1;
  CloseHandle(pi.hThread);
  *out = pi.hProcess;
  return 0;
}
static void wait_child(child_proc p) {
  WaitForSingleObject(p, INFINITE);
  CloseHandle(p);
}
static void nap_us(int us) { Sleep((DWORD)(us / 1000)); }
#else
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
extern char **environ;
static double cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}
static const char *temp_trace(void) { return "/tmp/bench_lens_trace.json"; }
typedef pid_t child_proc;
static int spawn_self(const char *self, const char *const *args, child_proc *out) {
  const char *argv[16];
  int n = 0;
  argv[n++] = self;
  for (int i = 0; args[i] && n < 15; i++) argv[n++] = args[i];
  argv[n] = NULL;
#ifdef __linux__
  const char *exe = "/proc/self/exe";
#else
  const char *exe = self; /* no /proc (macOS) */
#endif
  return posix_spawn(out, exe, NULL, NULL, (char *const *)argv, environ) == 0 ? 0 : -1;
}
static void wait_child(child_proc p) { waitpid(p, NULL, 0); }
static void nap_us(int us) {
  struct timespec ts = {0, (long)us * 1000L};
  nanosleep(&ts, NULL);
}
#endif

static long ZONES = 2000000; /* argv[1] may lower it for a quick run */
#define RING_ENTRIES 8192 /* as a lens thread ring of the default 256 KiB */

/* ---- the bare rings: one producer per ring, one consumer for all, one 32-byte record per zone stamped at begin
 * and end with the same clock as lens, nothing else ---- */

typedef struct ring_entry {
  uint64_t start, duration, name, thread;
} ring_entry;

typedef struct ring {
  _Alignas(64) _Atomic uint64_t head; /* written by the producer */
  _Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
  _Alignas(64) _Atomic int done;
  _Alignas(64) ring_entry entries[RING_ENTRIES];
} ring;

#define MAX_RINGS 4

/* Drains `count` rings round robin until each producer has said it is done. */
static int ring_consumer(const char *name, int count) {
  shk_shm *shm = NULL;
  while (shk_shm_open(name, SHK_SHM_READ_WRITE, &shm) != SHK_OK) nap_us(100);
  ring *rings = shk_shm_data(shm);
  uint64_t sum = 0;
  for (int done = 0; done < count;) {
    done = 0;
    for (int k = 0; k < count; k++) {
      ring *r = &rings[k];
      uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
      uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
      if (tail == head) {
        done += atomic_load(&r->done);
        continue;
      }
      for (; tail != head; tail++) sum += r->entries[tail % RING_ENTRIES].duration;
      atomic_store_explicit(&r->tail, tail, memory_order_release);
    }
  }
  shk_shm_close(shm);
  return sum == 0xFFFFFFFFFFFFFFFFull; /* keeps the reads */
}

typedef struct ring_producer {
  ring *r;
  long zones;
  double ns_per_zone;
  _Atomic int *go;
} ring_producer;

static void fill_ring(void *arg) {
  ring_producer *p = arg;
  ring *r = p->r;
  /* Let the consumer attach and start polling. */
  atomic_store(&r->head, 1);
  while (atomic_load(&r->tail) != 1 || !atomic_load(p->go)) {
  }
  uint64_t head = 1;
  double t0 = bench_now_ns();
  for (uint64_t i = 0; i < (uint64_t)p->zones; i++) {
    while (head - atomic_load_explicit(&r->tail, memory_order_acquire) >= RING_ENTRIES) {
    }
    uint64_t begin = stamp();
    uint64_t end = stamp();
    ring_entry *e = &r->entries[head % RING_ENTRIES];
    e->start = begin;
    e->duration = end;
    e->name = 0x1234;
    e->thread = i;
    atomic_store_explicit(&r->head, ++head, memory_order_release);
  }
  p->ns_per_zone = (bench_now_ns() - t0) / (double)p->zones;
  atomic_store(&r->done, 1);
}

/* `threads` producing threads, each with a ring of its own in one segment, one consumer process
 * draining them all: ns per zone per thread. */
static double ring_producers_ns(const char *self, int threads, long zones) {
  char name[64], count[8];
  snprintf(name, sizeof name, "bench-ring-%u", (unsigned)((bench_now_ns() / 1e9) * 1000) % 100000u);
  snprintf(count, sizeof count, "%d", threads);
  shk_shm *shm = NULL;
  if (shk_shm_create(name, MAX_RINGS * sizeof(ring), &shm) != SHK_OK) return -1;
  ring *rings = shk_shm_data(shm);
  const char *args[] = {"--ring-consumer", name, count, NULL};
  child_proc child;
  if (spawn_self(self, args, &child) != 0) return -1;
  _Atomic int go = 0;
  ring_producer p[MAX_RINGS];
  shk_test_thread t[MAX_RINGS];
  for (int i = 0; i < threads; i++) {
    p[i] = (ring_producer){&rings[i], zones, 0, &go};
    if (shk_test_thread_start(&t[i], fill_ring, &p[i]) != 0) {
      fprintf(stderr, "bench_lens: cannot start a thread\n");
      exit(1);
    }
  }
  atomic_store(&go, 1);
  double ns = 0;
  for (int i = 0; i < threads; i++) {
    shk_test_thread_join(&t[i]);
    ns += p[i].ns_per_zone / threads;
  }
  wait_child(child);
  shk_shm_close(shm);
  shk_shm_unlink(name);
  return ns;
}

/* The same 32-entry bursts in one thread, the draining not timed: what the instructions cost
 * without another CPU pulling the cache lines away. */
static double ring_intrinsic_ns(void) {
  static ring r;
  uint64_t head = 0, sum = 0;
  double timed = 0;
  for (long burst = 0; burst < ZONES / 32; burst++) {
    double t0 = (bench_now_ns() / 1e9);
    for (int i = 0; i < 32; i++) {
      uint64_t begin = stamp();
      uint64_t end = stamp();
      ring_entry *e = &r.entries[head % RING_ENTRIES];
      e->start = begin;
      e->duration = end;
      e->name = 0x1234;
      e->thread = 1;
      atomic_store_explicit(&r.head, ++head, memory_order_release);
    }
    timed += (bench_now_ns() / 1e9) - t0;
    uint64_t tail = atomic_load(&r.tail);
    for (; tail != head; tail++) sum += r.entries[tail % RING_ENTRIES].duration;
    atomic_store(&r.tail, tail);
  }
  if (sum == 1) printf(" ");
  return timed * 1e9 / (double)(ZONES / 32 * 32);
}

static void ignore_event(const shk_lens_event *e, void *user) {
  (void)e;
  (void)user;
}

static double lens_intrinsic_ns(void) {
  char name[64];
  snprintf(name, sizeof name, "bench-lensi-%u", (unsigned)((bench_now_ns() / 1e9) * 1000) % 100000u);
  shk_lens *lens = NULL;
  shk_lens_reader *r = NULL;
  if (shk_lens_open(name, NULL, &lens) != SHK_OK) return -1;
  if (shk_lens_reader_open(name, NULL, &r) != SHK_OK) return -1;
  double timed = 0;
  for (long burst = 0; burst < ZONES / 32; burst++) {
    double t0 = (bench_now_ns() / 1e9);
    for (int i = 0; i < 32; i++) {
      shk_lens_zone z;
      shk_lens_zone_begin(lens, &z, "bench zone", 0x336699);
      shk_lens_zone_end(&z);
    }
    timed += (bench_now_ns() / 1e9) - t0;
    shk_lens_reader_drain(r, ignore_event, NULL, NULL);
  }
  shk_lens_reader_close(r);
  shk_lens_close(lens);
  return timed * 1e9 / (double)(ZONES / 32 * 32);
}

/* ---- lens ---- */

static void count_event(const shk_lens_event *e, void *user) {
  (void)e;
  ++*(uint64_t *)user;
}

/* The reader process. "drain": polls continuously and counts only. "count": counts only, with
 * the default idle policy (the minimal reader). "record": what `shmkit lens record` does (the
 * default idle policy, every event into the Chrome JSON writer). Prints its CPU per event at the
 * end when BENCH_LENS_CPU is set. */
static int lens_reader_child(const char *name, const char *mode) {
  bool record = strcmp(mode, "record") == 0;
  shk_lens_reader_options o;
  shk_lens_reader_options_init(&o);
  if (strcmp(mode, "drain") == 0) o.idle_spin_ns = 60000000000ull; /* polls continuously */
  shk_lens_reader *r = NULL;
  double give_up = (bench_now_ns() / 1e9) + 10;
  while (shk_lens_reader_open(name, &o, &r) != SHK_OK) {
    if ((bench_now_ns() / 1e9) > give_up) return 1;
    nap_us(100);
  }
  trace_json *trace = NULL;
  if (record && trace_json_open(temp_trace(), "bench", &trace) != 0) return 1;
  uint64_t events = 0;
  double cpu0 = cpu_ns();
  for (;;) {
    size_t got = 0;
    if (record) shk_lens_reader_poll(r, 50000000u, (shk_lens_event_fn)trace_json_event, trace, &got);
    else shk_lens_reader_poll(r, 10000000u, count_event, &events, &got);
    if (record) events += got;
    if (got == 0 && shk_lens_reader_finished(r)) break;
  }
  double cpu = cpu_ns() - cpu0;
  if (record) trace_json_close(trace);
  shk_lens_reader_close(r);
  if (events > 0 && getenv("BENCH_LENS_CPU"))
    printf("    (%s reader: %.0f ns of CPU per event over %llu events)\n", mode,
           cpu / (double)events, (unsigned long long)events);
  return 0;
}

typedef struct lens_run {
  double ns_per_zone; /* per thread */
  uint64_t written, dropped;
} lens_run;

typedef struct producer {
  shk_lens *lens;
  long zones;
  double rate; /* per thread; 0: as fast as possible */
  double ns_per_zone;
  _Atomic int *go;
} producer;

static void produce(void *arg) {
  producer *p = arg;
  shk_lens_thread_name(p->lens, "bench");
  while (!atomic_load(p->go)) {
  }
  double t0 = bench_now_ns();
  for (long i = 0; i < p->zones; i++) {
    if (p->rate > 0) {
      double due = t0 + (double)i * 1e9 / p->rate;
      while (bench_now_ns() < due) {
      }
    }
    shk_lens_zone z;
    shk_lens_zone_begin(p->lens, &z, "bench zone", 0x336699);
    shk_lens_zone_end(&z);
  }
  p->ns_per_zone = (bench_now_ns() - t0) / (double)p->zones;
}


/* Opens a lens, starts a reader process (mode "drain" or "record"), sends `zones` zones from each
 * of `threads` threads paced at `rate` zones per second per thread (0: as fast as possible),
 * closes, and reports. */
static lens_run lens_zones(const char *self, const char *mode, int threads, uint64_t full_wait_ns,
                           long zones, double rate) {
  lens_run out = {-1, 0, 0};
  char name[64];
  snprintf(name, sizeof name, "bench-lens-%u", (unsigned)((bench_now_ns() / 1e9) * 1000) % 100000u);
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.full_wait_ns = full_wait_ns;
  if (getenv("BENCH_LENS_RING_KIB")) o.ring_bytes = (uint32_t)atoi(getenv("BENCH_LENS_RING_KIB")) * 1024u;
  shk_lens *lens = NULL;
  if (shk_lens_open(name, &o, &lens) != SHK_OK) return out;
  const char *args[] = {"--lens-reader", name, mode, NULL};
  child_proc child;
  if (spawn_self(self, args, &child) != 0) return out;
  shk_lens_wait_reader(lens, 10000000000ull);
  _Atomic int go = 0;
  producer p[8];
  shk_test_thread t[8];
  for (int i = 0; i < threads; i++) {
    p[i] = (producer){lens, zones, rate, 0, &go};
    if (shk_test_thread_start(&t[i], produce, &p[i]) != 0) {
      fprintf(stderr, "bench_lens: cannot start a thread\n");
      exit(1);
    }
  }
  atomic_store(&go, 1);
  out.ns_per_zone = 0;
  for (int i = 0; i < threads; i++) {
    shk_test_thread_join(&t[i]);
    out.ns_per_zone += p[i].ns_per_zone / threads;
  }
  shk_lens_stats st;
  shk_lens_stats_get(lens, &st);
  shk_lens_close(lens);
  wait_child(child);
  out.written = st.segment[SHK_LENS_ZONE].written;
  out.dropped = st.segment[SHK_LENS_ZONE].dropped;
  return out;
}

static double clock_cost_ns(bool lens_stamp) {
  enum { N = 1000000 };
  uint64_t sum = 0;
  double t0 = bench_now_ns();
  for (int i = 0; i < N; i++) sum += lens_stamp ? stamp() : (uint64_t)bench_now_ns();
  double t1 = bench_now_ns();
  if (sum == 1) printf(" ");
  return (t1 - t0) / N;
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "--ring-consumer") == 0) return ring_consumer(argv[2], atoi(argv[3]));
  if (argc >= 4 && strcmp(argv[1], "--lens-reader") == 0) return lens_reader_child(argv[2], argv[3]);
  if (argc >= 2) ZONES = atol(argv[1]) > 0 ? atol(argv[1]) : ZONES;
  setvbuf(stdout, NULL, _IONBF, 0);
  const char *self = argv[0];
#ifdef _WIN32
  static char path[MAX_PATH];
  if (GetModuleFileNameA(NULL, path, MAX_PATH) > 0) self = path;
#endif
  printf("bench_lens: %ld zones per run, producer and reader in separate processes\n\n", ZONES);
  printf("%-62s %8.1f ns\n", "one clock read (" STAMP_NAME ")", clock_cost_ns(true));
  printf("%-62s %8.1f ns\n", "one OS monotonic clock read", clock_cost_ns(false));

  double ring_i = ring_intrinsic_ns(), lens_i = lens_intrinsic_ns();
  printf("%-62s %8.1f ns/zone\n", "bare ring, one thread, 32-record bursts (drain not timed)", ring_i);
  printf("%-62s %8.1f ns/zone  (%.2fx the ring)\n",
         "lens zone begin+end, one thread, drained between bursts", lens_i, lens_i / ring_i);
  double ring_ns = ring_producers_ns(self, 1, ZONES);
  printf("%-62s %8.1f ns/zone\n", "bare SPSC ring in shared memory, reader polling (other process)",
         ring_ns);
  lens_run one = lens_zones(self, "drain", 1, 1000000000u, ZONES, 0);
  printf("%-62s %8.1f ns/zone  (%.2fx the ring; %llu written, %llu dropped)\n",
         "lens zone begin+end, 1 thread, reader polling (other process)", one.ns_per_zone,
         one.ns_per_zone / ring_ns, (unsigned long long)one.written,
         (unsigned long long)one.dropped);
  double ring4_ns = ring_producers_ns(self, 4, ZONES / 4);
  printf("%-62s %8.1f ns/zone\n", "bare SPSC rings, 4 threads, per thread, one reader process",
         ring4_ns);
  lens_run four = lens_zones(self, "drain", 4, 1000000000u, ZONES / 4, 0);
  printf("%-62s %8.1f ns/zone  (%.2fx the 4 rings; %llu written, %llu dropped)\n",
         "lens zone begin+end, 4 threads, per thread", four.ns_per_zone,
         four.ns_per_zone / ring4_ns, (unsigned long long)four.written,
         (unsigned long long)four.dropped);

  /* The recorder as reader, the producer never waiting: is anything lost at 1 M zones/s? */
  long paced = ZONES < 1000000 ? ZONES : 1000000; /* one second at 1 M/s */
  lens_run rec1 = lens_zones(self, "record", 1, 0, paced, 1e6);
  printf("%-62s %llu of %ld lost (%.1f ns/zone)\n", "1 M zones/s, 1 thread, recorder, never waiting",
         (unsigned long long)rec1.dropped, paced, rec1.ns_per_zone);
  lens_run rec4 = lens_zones(self, "record", 4, 0, paced / 4, 1e6);
  printf("%-62s %llu of %ld lost\n", "1 M zones/s per thread, 4 threads, recorder, never waiting",
         (unsigned long long)rec4.dropped, paced / 4 * 4);
  lens_run fast = lens_zones(self, "record", 4, 1000000000u, ZONES / 4, 2.5e6);
  printf("%-62s %llu of %ld lost (%.2f M zones/s reached)\n",
         "10 M zones/s in total (4 x 2.5 M), recorder, waiting allowed",
         (unsigned long long)fast.dropped, ZONES / 4 * 4, 4e3 / fast.ns_per_zone);
  printf("\nreader CPU per event (the recorder, then a minimal reader that only counts; both with the "
         "default idle policy):\n");
#ifdef _WIN32
  _putenv("BENCH_LENS_CPU=1");
#else
  setenv("BENCH_LENS_CPU", "1", 1);
#endif
  lens_zones(self, "record", 1, 1000000000u, ZONES, 0);
  lens_zones(self, "count", 1, 1000000000u, ZONES, 0);
  shk_lens_options dflt;
  shk_lens_options_init(&dflt);
  uint32_t ring_bytes = getenv("BENCH_LENS_RING_KIB") ? (uint32_t)atoi(getenv("BENCH_LENS_RING_KIB")) * 1024u
                                                      : dflt.ring_bytes;
  printf("\nmemory: %u KiB per thread ring in this run (%u records, 32 bytes per zone); at 1 M "
         "zones/s a reader may pause %.1f ms without loss\n",
         ring_bytes / 1024u, ring_bytes / 32u, ring_bytes / 32.0 / 1e6 * 1e3);
  printf("target: zone <= 1.3x the bare ring; this run: 1 thread %.2fx (%s), 4 threads %.2fx (%s)\n",
         one.ns_per_zone / ring_ns, one.ns_per_zone <= 1.3 * ring_ns ? "met" : "NOT met",
         four.ns_per_zone / ring4_ns, four.ns_per_zone <= 1.3 * ring4_ns ? "met" : "NOT met");
  return 0;
}
