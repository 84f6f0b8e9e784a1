/* The work the task benchmarks time, shared by bench_task and bench_mpi: a prologue count
 * (memory-bound) and a per-byte hash with dependent multiply rounds (compute-bound). */
#ifndef SHMKIT_BENCH_WORK_H
#define SHMKIT_BENCH_WORK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Counts 55 48 89 E5 starting in [from, to) of d, reading at most to `end`. Memory-bound. */
static inline uint64_t count_prologues(const unsigned char *d, size_t from, size_t to, size_t end) {
  uint64_t n = 0;
  const unsigned char *p = d + from, *stop = d + to;
  while (p < stop) {
    p = memchr(p, 0x55, (size_t)(stop - p));
    if (!p) break;
    size_t at = (size_t)(p - d);
    if (at + 4 <= end && p[1] == 0x48 && p[2] == 0x89 && p[3] == 0xE5) n++;
    p++;
  }
  return n;
}

/* A per-byte hash with several dependent multiply rounds. Compute-bound. */
static inline uint64_t mix_bytes(const unsigned char *d, size_t from, size_t to) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = from; i < to; i++) {
    h = (h ^ d[i]) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
  }
  return h;
}

#endif
