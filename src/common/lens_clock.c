/* The producer's clock. Two readings per zone make the clock most of a zone's cost: the OS
 * monotonic clock costs about 25 ns here, the CPU's time-stamp counter about 10. So where the
 * counter is invariant (x86-64 that says so in CPUID), it is read directly and scaled to the OS
 * clock's nanoseconds by a calibration made once per process; elsewhere the OS clock is used. */
#include "lens_internal.h"

#if defined(_MSC_VER) && defined(_M_X64)
#include <intrin.h>
#define LENS_HAVE_TSC 1
static uint64_t read_tsc(void) { return __rdtsc(); }
static bool tsc_invariant(void) {
  int r[4];
  __cpuid(r, (int)0x80000000u);
  if ((unsigned)r[0] < 0x80000007u) return false;
  __cpuid(r, (int)0x80000007u);
  return (r[3] & (1 << 8)) != 0;
}
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#define LENS_HAVE_TSC 1
static uint64_t read_tsc(void) { return __rdtsc(); }
static bool tsc_invariant(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u) return false;
  __cpuid(0x80000007u, a, b, c, d);
  return (d & (1u << 8)) != 0;
}
#else
#define LENS_HAVE_TSC 0
static uint64_t read_tsc(void) { return 0; }
static bool tsc_invariant(void) { return false; }
#endif

#define CALIBRATION_NS 10000000u /* 10 ms: a reading error of ~50 ns is then 5 ppm */

static struct {
  bool use_tsc;
  uint64_t tick0, ns0;
  double ns_per_tick;
} lens_clock;
static shk__once lens_clock_once;

/* The OS time between two counter readings: the pair's error is bounded by their distance. */
static void paired_reading(uint64_t *tick, uint64_t *ns) {
  uint64_t before = read_tsc();
  *ns = shk__os_now_ns();
  uint64_t after = read_tsc();
  *tick = before + (after - before) / 2;
}

static void calibrate(void) {
  if (!LENS_HAVE_TSC || !tsc_invariant()) return;
  uint64_t t0, n0, t1, n1;
  paired_reading(&t0, &n0);
  shk__os_sleep_ns(CALIBRATION_NS);
  paired_reading(&t1, &n1);
  if (t1 <= t0 || n1 <= n0) return;
  lens_clock.tick0 = t1;
  lens_clock.ns0 = n1;
  lens_clock.ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
  lens_clock.use_tsc = true;
}

void shk__lens_clock_init(void) { shk__once_run(&lens_clock_once, calibrate); }

uint64_t shk__lens_now_ns(void) {
  if (!lens_clock.use_tsc) return shk__os_now_ns();
  uint64_t tick = read_tsc();
  if (tick < lens_clock.tick0) return lens_clock.ns0;
  return lens_clock.ns0 + (uint64_t)((double)(tick - lens_clock.tick0) * lens_clock.ns_per_tick);
}
