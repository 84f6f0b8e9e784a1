/* A chunk function in a module that test_mpi loads only after its rank's worker pool started:
 * writes the number of 0x55 bytes that start in its chunk. */
#include <stdint.h>
#include <string.h>

#include "shmkit.h"

SHK_TASK_PLUGIN_EXPORT int late_count(const shk_task_chunk *c, shk_task_out *out);

SHK_TASK_PLUGIN_EXPORT int late_count(const shk_task_chunk *c, shk_task_out *out) {
  uint64_t n = 0;
  const unsigned char *d = c->data;
  for (size_t i = 0; i < c->size; i++) n += d[i] == 0x55;
  return shk_task_out_write(out, &n, sizeof n);
}
