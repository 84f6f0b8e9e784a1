/* The lens clock. Two readings per zone make the clock most of a zone's cost: the OS monotonic
 * clock costs about 25 ns here, the CPU's time-stamp counter about 10. So where the counter is
 * invariant (x86-64 that says so in CPUID), producers write raw counter values and the segment's
 * creator records a calibration (ns per tick, measured once per process over 10 ms) that the
 * reader uses to convert; elsewhere records carry OS monotonic nanoseconds. */
#include "lens_internal.h"

#if SHK__LENS_HAVE_TSC && defined(_MSC_VER)
static bool tsc_invariant(void) {
  int r[4];
  __cpuid(r, (int)0x80000000u);
  if ((unsigned)r[0] < 0x80000007u) return false;
  __cpuid(r, (int)0x80000007u);
  return (r[3] & (1 << 8)) != 0;
}
#elif SHK__LENS_HAVE_TSC
#include <cpuid.h>
static bool tsc_invariant(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u) return false;
  __cpuid(0x80000007u, a, b, c, d);
  return (d & (1u << 8)) != 0;
}
#else
static bool tsc_invariant(void) { return false; }
#endif

#define CALIBRATION_NS 10000000u /* 10 ms: a reading error of ~50 ns is then 5 ppm */

static struct {
  bool use_tsc;
  double ns_per_tick;
} lens_clock;
static shk__once lens_clock_once;

/* The OS time between two counter readings: the pair's error is bounded by their distance. */
static void paired_reading(uint64_t *tick, uint64_t *ns) {
  uint64_t before = shk__lens_tsc();
  *ns = shk__os_now_ns();
  uint64_t after = shk__lens_tsc();
  *tick = before + (after - before) / 2;
}

static void calibrate(void) {
  if (!SHK__LENS_HAVE_TSC || !tsc_invariant()) return;
  uint64_t t0, n0, t1, n1;
  paired_reading(&t0, &n0);
  shk__os_sleep_ns(CALIBRATION_NS);
  paired_reading(&t1, &n1);
  if (t1 <= t0 || n1 <= n0) return;
  lens_clock.ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
  lens_clock.use_tsc = true;
}

void shk__lens_clock_choose(uint32_t *kind, uint64_t *origin, double *ns_per_tick) {
  shk__once_run(&lens_clock_once, calibrate);
  *kind = lens_clock.use_tsc ? SHK_LENS_CLOCK_TSC : SHK_LENS_CLOCK_NS;
  *ns_per_tick = lens_clock.use_tsc ? lens_clock.ns_per_tick : 1.0;
  *origin = shk__lens_ticks(lens_clock.use_tsc);
}

bool shk__lens_clock_usable(uint32_t kind) {
  if (kind == SHK_LENS_CLOCK_NS) return true;
  return kind == SHK_LENS_CLOCK_TSC && SHK__LENS_HAVE_TSC && tsc_invariant();
}
