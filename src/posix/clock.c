/* POSIX time: the monotonic clock, sleeping and yielding. */
#include <sched.h>
#include <time.h>

#include "posix.h"

uint64_t shk__os_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void shk__os_sleep_ns(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void shk__os_yield(void) { sched_yield(); }
