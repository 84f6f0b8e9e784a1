/* A chunk-task plugin built against the installed shmkit: the sum of each chunk's bytes. */
#include <shmkit.h>
#include <stdint.h>

SHK_TASK_PLUGIN;

SHK_TASK_PLUGIN_EXPORT int consumer_sum(const shk_task_chunk *c, shk_task_out *out);

int consumer_sum(const shk_task_chunk *c, shk_task_out *out) {
  uint64_t sum = 0;
  const unsigned char *d = c->data;
  for (size_t i = 0; i < c->size; i++) sum += d[i];
  return shk_task_out_write(out, &sum, sizeof sum);
}
