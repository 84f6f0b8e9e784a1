/* The benchmarks' clock: monotonic nanoseconds as a double, on POSIX and Windows. */
#ifndef SHMKIT_BENCH_CLOCK_H
#define SHMKIT_BENCH_CLOCK_H

#ifdef _WIN32
#include <windows.h>
static inline double bench_now_ns(void) {
  static LARGE_INTEGER freq; /* constant while the system runs: read once */
  LARGE_INTEGER t;
  if (!freq.QuadPart) QueryPerformanceFrequency(&freq);
  QueryPerformanceCounter(&t);
  return (double)t.QuadPart * 1e9 / (double)freq.QuadPart;
}
#else
#include <time.h>
static inline double bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}
#endif

#endif
