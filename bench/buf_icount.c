/* Instruction counts of the buf rows that go through the range index, for callgrind (counts do
 * not depend on the machine's load, unlike bench_buf's timings); not built by CMake. Modes:
 *   1  consume+release of a random free gap with 1 000 live ranges (bench_buf's row)
 *   2  the same with 100 000 live ranges
 *   3  mode 1 with bench_buf's "half across" arena (16 bytes past a 4 KiB boundary: every gap
 *      in two bitmap words, one in eight across a 512-byte block)
 *   0  create+release of 64 B in batches of 10 000 live (past recycling)
 * From the checkout:
 *   gcc -O2 -std=c11 -Iinclude -Ibuild/gcc/include bench/buf_icount.c -Lbuild/gcc -lshmkit \
 *       -Wl,-rpath,$PWD/build/gcc -o /tmp/buf_icount
 *   for n in 100000 200000; do valgrind --tool=callgrind --callgrind-out-file=/dev/null \
 *       /tmp/buf_icount MODE $n 2>&1 | grep Collected; done
 * Instructions per operation = (second count - first count) / 100 000 (set-up cancels out). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "shmkit.h"

static shk_buf *batch[10000];

static void create_batches(int ops) {
  for (int r = 0; r < ops / 10000; r++) {
    for (int k = 0; k < 10000; k++)
      if (shk_buf_create(64, 1, NULL, &batch[k]) != SHK_OK) abort();
    for (int k = 0; k < 10000; k++) shk_buf_release(batch[k]);
  }
}

static void consume_gaps(size_t live, int ops, size_t shift) {
  unsigned char *block = malloc(live * 64 + 4096);
  unsigned char *arena = block;
  if (shift) arena = block + ((4096 - (uintptr_t)block % 4096) % 4096) + shift;
  shk_buf **held = malloc(live * sizeof *held);
  if (!block || !held) abort();
  for (size_t k = 0; k < live; k++)
    if (shk_buf_consume(arena + k * 64, 32, 1, NULL, &held[k]) != SHK_OK) abort();
  uint32_t x = 12345;
  for (int i = 0; i < ops; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    shk_buf *buf = NULL;
    if (shk_buf_consume(arena + (x % live) * 64 + 32, 32, 1, NULL, &buf) != SHK_OK) abort();
    shk_buf_release(buf);
  }
  for (size_t k = 0; k < live; k++) shk_buf_release(held[k]);
  free(held);
  free(block);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s 0|1|2|3 operations\n", argv[0]);
    return 2;
  }
  int mode = atoi(argv[1]), ops = atoi(argv[2]);
  if (mode == 0) create_batches(ops);
  else consume_gaps(mode == 2 ? 100000 : 1000, ops, mode == 3 ? 16 : 0);
  return 0;
}
