/* A chunk-task plugin for the worker host tests: loaded by shmkit-worker, never by the test.
 * Built twice: as a plugin of this shmkit, and with TASK_PLUGIN_MAJOR as one of another major. */
#include <stdint.h>
#include <string.h>

#include "shmkit.h"

#ifdef TASK_PLUGIN_MAJOR
SHK_TASK_PLUGIN_EXPORT extern const unsigned shk_task_plugin_major;
SHK_TASK_PLUGIN_EXPORT const unsigned shk_task_plugin_major = TASK_PLUGIN_MAJOR;
#else
SHK_TASK_PLUGIN;
#endif

SHK_TASK_PLUGIN_EXPORT int plugin_sum(const shk_task_chunk *c, shk_task_out *out);
SHK_TASK_PLUGIN_EXPORT int plugin_crash_on_1(const shk_task_chunk *c, shk_task_out *out);

/* The sum of the chunk's bytes. */
int plugin_sum(const shk_task_chunk *c, shk_task_out *out) {
  uint64_t sum = 0;
  const unsigned char *d = c->data;
  for (size_t i = 0; i < c->size; i++) sum += d[i];
  return shk_task_out_write(out, &sum, sizeof sum);
}

/* Crashes on chunk 1, sums elsewhere. */
int plugin_crash_on_1(const shk_task_chunk *c, shk_task_out *out) {
  if (c->index == 1) {
    volatile int *volatile nowhere = NULL;
    *nowhere = 1;
  }
  return plugin_sum(c, out);
}
