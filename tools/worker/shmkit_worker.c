/* shmkit-worker: the worker host. A pool made with shk_task_pool_create_hosted() starts it with
 * a start-up record naming a plugin and its chunk function; it loads them and serves the pool.
 * Run by hand, it says what it is for and exits with 2. */
#include <stdio.h>

#include "shmkit.h"

int main(int argc, char **argv) {
  shk_worker_main(argc, argv); /* serves and exits when started by a pool */
  fprintf(stderr, "shmkit-worker %s: the worker host of shmkit's chunk tasks; it is started by "
                  "shk_task_pool_create_hosted(), not by hand\n", SHK_VERSION_STRING);
  return 2;
}
