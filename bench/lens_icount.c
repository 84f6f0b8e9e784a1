/* Instruction counts of lens's zone begin+end beside the bare ring's loop (two rdtsc, one 32-byte
 * record, one release store), for callgrind; x86-64 only, not built by CMake. From the checkout:
 *   gcc -O2 -std=c11 -Iinclude -Ibuild/gcc/include bench/lens_icount.c -Lbuild/gcc -lshmkit \
 *       -Wl,-rpath,$PWD/build/gcc -o /tmp/lens_icount
 *   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out --collect-atstart=no \
 *       --toggle-collect=run_bare --toggle-collect=run_lens /tmp/lens_icount
 *   callgrind_annotate --inclusive=yes /tmp/cg.out | grep -E 'run_bare|run_lens'
 * Each function runs N zones: instructions per zone = its inclusive count / N. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <x86intrin.h>
#include "shmkit.h"
#define N 20000
#define RING_ENTRIES 8192
typedef struct { uint64_t start, duration, name, thread; } ring_entry;
typedef struct { _Alignas(64) _Atomic uint64_t head; _Alignas(64) _Atomic uint64_t tail; _Alignas(64) ring_entry e[RING_ENTRIES]; } ring;
static ring r;
__attribute__((noinline)) void run_bare(void) {
  uint64_t head = atomic_load(&r.head);
  for (uint64_t i = 0; i < N; i++) {
    while (head - atomic_load_explicit(&r.tail, memory_order_acquire) >= RING_ENTRIES) atomic_store(&r.tail, head);
    uint64_t b = __rdtsc(), e = __rdtsc();
    ring_entry *x = &r.e[head % RING_ENTRIES];
    x->start = b; x->duration = e; x->name = 0x1234; x->thread = i;
    atomic_store_explicit(&r.head, ++head, memory_order_release);
  }
}
__attribute__((noinline)) void run_lens(shk_lens *lens) {
  for (int i = 0; i < N; i++) {
    shk_lens_zone z;
    shk_lens_zone_begin(lens, &z, "zone", 0);
    shk_lens_zone_end(&z);
  }
}
int main(void) {
  shk_lens_options o; shk_lens_options_init(&o);
  o.ring_bytes = 4u << 20; o.full_wait_ns = 0; o.max_threads = 2;
  shk_lens *lens = NULL;
  if (shk_lens_open("lens-icount", &o, &lens) != SHK_OK) return 1;
  shk_lens_zone z; shk_lens_zone_begin(lens, &z, "zone", 0); shk_lens_zone_end(&z); /* claims, names */
  run_bare(); run_lens(lens);
  shk_lens_stats st; shk_lens_stats_get(lens, &st);
  printf("sent %llu\n", (unsigned long long)st.sent[SHK_LENS_ZONE]);
  shk_lens_close(lens);
  return 0;
}
