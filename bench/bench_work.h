/* The work the task benchmarks time, shared by bench_task and bench_mpi: a prologue count
 * (memory-bound), a per-byte hash with dependent multiply rounds (compute-bound), and chunk
 * functions running them. */
#ifndef SHMKIT_BENCH_WORK_H
#define SHMKIT_BENCH_WORK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shmkit.h"

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

/* The chunk functions over them: nothing, a prologue count, a hash (one result each). */
static inline int empty_chunk(const shk_task_chunk *c, shk_task_out *out) {
  (void)c;
  (void)out;
  return 0;
}

static inline int prologue_chunk(const shk_task_chunk *c, shk_task_out *out) {
  uint64_t n = count_prologues(c->data, 0, c->size, c->readable);
  return shk_task_out_write(out, &n, sizeof n);
}

static inline int mix_chunk(const shk_task_chunk *c, shk_task_out *out) {
  uint64_t h = mix_bytes(c->data, 0, c->size);
  return shk_task_out_write(out, &h, sizeof h);
}

#endif
