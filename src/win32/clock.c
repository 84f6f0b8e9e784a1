/* Win32 time: QueryPerformanceCounter, sleeping and yielding. */
#include "win32.h"

uint64_t shk__os_now_ns(void) {
  static LARGE_INTEGER frequency; /* set once; QueryPerformanceFrequency never changes */
  if (frequency.QuadPart == 0) QueryPerformanceFrequency(&frequency);
  LARGE_INTEGER now;
  QueryPerformanceCounter(&now);
  uint64_t f = (uint64_t)frequency.QuadPart, t = (uint64_t)now.QuadPart;
  return t / f * 1000000000u + t % f * 1000000000u / f;
}

void shk__os_sleep_ns(uint64_t ns) {
  Sleep(shk__ms_from_ns(ns == UINT64_MAX ? ns - 1 : ns, INFINITE - 1));
}

void shk__os_yield(void) { SwitchToThread(); }
