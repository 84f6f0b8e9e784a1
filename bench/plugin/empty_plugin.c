/* The worker-host benchmark's plugin: an empty chunk function, loaded by shmkit-worker. */
#include "shmkit.h"

SHK_TASK_PLUGIN;

SHK_TASK_PLUGIN_EXPORT int bench_empty(const shk_task_chunk *c, shk_task_out *out);

int bench_empty(const shk_task_chunk *c, shk_task_out *out) {
  (void)c;
  (void)out;
  return 0;
}
