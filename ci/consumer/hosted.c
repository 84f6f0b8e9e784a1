/* Runs the consumer's plugin (argv[1]) on the installed worker host in one call (mode
 * SHK_TASK_HOSTED), as a plugin inside a host program would: no shk_worker_main(). */
#include <shmkit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: hosted <plugin>\n");
    return 2;
  }
  size_t size = (size_t)1 << 20;
  unsigned char *data = malloc(size);
  if (!data) return 1;
  uint64_t want = 0;
  for (size_t i = 0; i < size; i++) want += data[i] = (unsigned char)(i * 7u + 3u);
  shk_task_options o;
  shk_task_options_init(&o);
  o.mode = SHK_TASK_HOSTED;
  o.module_path = argv[1];
  o.function_name = "consumer_sum";
  o.chunks = 8;
  o.workers = 2;
  shk_task_results *r = NULL;
  int rc = shk_task_run(data, size, NULL, &o, &r);
  if (rc != SHK_OK) {
    fprintf(stderr, "hosted shk_task_run: %s\n", shk_strerror(rc));
    return 1;
  }
  uint64_t got = 0;
  for (size_t i = 0; i < shk_task_results_count(r); i++) {
    const shk_task_result *res = shk_task_results_get(r, i);
    uint64_t part;
    if (res->size != sizeof part) return 1;
    memcpy(&part, res->data, sizeof part);
    got += part;
  }
  shk_task_results_free(r);
  free(data);
  printf("hosted %s\n", got == want ? "ok" : "WRONG");
  return got == want ? 0 : 1;
}
