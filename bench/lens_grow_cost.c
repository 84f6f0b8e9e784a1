/* What a thread pays for the ring it claims (its first zone), beside the same thread's second
 * zone: from a free ring of the segment, and from a new extension it has to make (lens 2.3).
 * Not built by CMake. From the checkout:
 *   gcc -O2 -std=c11 -Iinclude -Ibuild/gcc/include -Itests/support bench/lens_grow_cost.c \
 *       -Lbuild/gcc -lshmkit -Wl,-rpath,$PWD/build/gcc -lpthread -o /tmp/lens_grow_cost
 *   /tmp/lens_grow_cost [RING_KIB]
 * Prints the median of 9 lenses for each. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "shmkit.h"
#include "shk_test_thread.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

typedef struct shot { shk_lens *lens; double first_us, second_us; } shot;

static void zone(shk_lens *lens) {
  shk_lens_zone z;
  shk_lens_zone_begin(lens, &z, "z", 0);
  shk_lens_zone_end(&z);
}

static void first_zones(void *arg) {
  shot *s = arg;
  double t0 = now_us();
  zone(s->lens);
  double t1 = now_us();
  zone(s->lens);
  s->first_us = t1 - t0;
  s->second_us = now_us() - t1;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* A lens of `rings` rings whose one ring this thread holds when `full`; another thread's first
 * zone then takes a free ring (rings 2) or makes extension 1 (rings 1). */
static void measure(unsigned rings, unsigned kib, double *first, double *second) {
  double f[9], s[9];
  for (int i = 0; i < 9; i++) {
    char name[64];
    snprintf(name, sizeof name, "lens-grow-cost-%d", i);
    shk_lens_options o;
    shk_lens_options_init(&o);
    o.max_threads = rings;
    o.ring_bytes = kib * 1024u;
    shk_lens *lens = NULL;
    if (shk_lens_open(name, &o, &lens) != SHK_OK) exit(1);
    zone(lens); /* this thread holds ring 0 */
    shot sh = {lens, 0, 0};
    shk_test_thread t;
    shk_test_thread_start(&t, first_zones, &sh);
    shk_test_thread_join(&t);
    f[i] = sh.first_us;
    s[i] = sh.second_us;
    shk_lens_close(lens);
  }
  qsort(f, 9, sizeof *f, cmp);
  qsort(s, 9, sizeof *s, cmp);
  *first = f[4];
  *second = s[4];
}

int main(int argc, char **argv) {
  unsigned kib = argc > 1 ? (unsigned)atoi(argv[1]) : 1024;
  double ff, fs, gf, gs;
  measure(2, kib, &ff, &fs);
  measure(1, kib, &gf, &gs);
  printf("ring %u KiB: first zone on a free ring %.1f us (second zone %.2f us); first zone "
         "making extension 1 %.1f us (second %.2f us): %.1fx\n",
         kib, ff, fs, gf, gs, gf / ff);
  return 0;
}
