/* timeline_demo: chunk tasks, a watched buffer and buffers made and freed, together with the
 * program's own zones, all on one lens timeline.
 *   shmkit lens record demo -o trace.json --wait 30 &  ./timeline_demo demo --wait-reader 30
 * or, with no lens of its own (the library alone reports, no code change needed):
 *   SHK_LENS=demo ./timeline_demo
 * Open trace.json in Perfetto or speedscope, or `shmkit lens report trace.json -o report.html`:
 * the "shk chunk" zones sit on each worker process's track, the watch events and the task calls
 * on the Log track, buffers as heap events and a "shk buffers live" counter, beside the program's
 * "frame" / "prepare" / "compute" / "publish" zones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmkit.h"

#define FRAMES 3
#define CHUNKS 8
#define BYTES (256u * 1024u)

/* Sums its chunk. Chunk 5 of the second frame fails on purpose: the trace shows it in red. */
static int sum_chunk(const shk_task_chunk *chunk, shk_task_out *out) {
  int frame = 0;
  if (chunk->arg_size == sizeof frame) memcpy(&frame, chunk->arg, sizeof frame);
  if (frame == 1 && chunk->index == 5) return 7;
  const unsigned char *p = chunk->data;
  uint64_t sum = 0;
  for (size_t i = 0; i < chunk->size; i++) sum += p[i];
  return shk_task_out_write(out, &sum, sizeof sum);
}

static unsigned watch_events;
static void on_change(const shk_watch_event *ev, void *user) {
  (void)ev;
  (void)user;
  watch_events++;
}

static int fail(const char *what, int rc) {
  fprintf(stderr, "timeline_demo: %s: %s\n", what, shk_strerror(rc));
  return 1;
}

/* One frame: prepare the input (scratch buffers come and go), compute on worker processes,
 * publish a header (a watched write). */
static int frame(shk_lens *lens, int n, unsigned char *data, shk_task_mode mode, size_t *failed) {
  shk_lens_zone z, step;
  shk_lens_zone_begin(lens, &z, "frame", 0x3366CC); /* a NULL lens: the zone is a no-op */
  shk_lens_zone_begin(lens, &step, "prepare", 0x6699FF);
  for (int k = 0; k < 4; k++) {
    shk_buf *scratch = NULL;
    int rc = shk_buf_create(4096u << k, 1, NULL, &scratch);
    if (rc != SHK_OK) return fail("shk_buf_create", rc);
    memset(shk_buf_data(scratch), n + k, shk_buf_size(scratch));
    data[8192 + (size_t)k * 4096 + (size_t)n] = ((unsigned char *)shk_buf_data(scratch))[0];
    shk_buf_release(scratch);
  }
  shk_lens_zone_end(&step);

  shk_lens_zone_begin(lens, &step, "compute", 0x22AA66);
  shk_task_options opts = {0};
  opts.chunks = CHUNKS;
  opts.workers = 2;
  opts.mode = mode;
  opts.arg = &n;
  opts.arg_size = sizeof n;
  shk_task_results *results = NULL;
  int rc = shk_task_run(data, BYTES, sum_chunk, &opts, &results);
  if (rc != SHK_OK && rc != SHK_ECHUNK) return fail("shk_task_run", rc); /* ECHUNK: chunk 5 */
  for (size_t i = 0; i < shk_task_results_count(results); i++)
    if (shk_task_results_get(results, i)->status != SHK_TASK_OK) (*failed)++;
  shk_task_results_free(results);
  shk_lens_zone_end(&step);

  shk_lens_zone_begin(lens, &step, "publish", 0xCC8833);
  memcpy(data, "frame ", 6);
  data[6] = (unsigned char)('0' + n);
  shk_lens_zone_end(&step);
  shk_lens_zone_end(&z);
  if (lens) shk_lens_frame(lens);
  return 0;
}

int main(int argc, char **argv) {
  shk_worker_main(argc, argv); /* first thing: on Windows, workers are this program again */
  const char *name = NULL;
  unsigned wait_s = 0;
  shk_task_mode mode = SHK_TASK_PROCESSES;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--wait-reader") == 0 && i + 1 < argc) wait_s = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--threads") == 0) mode = SHK_TASK_THREADS;
    else if (argv[i][0] != '-') name = argv[i];
    else {
      fprintf(stderr, "usage: timeline_demo [LENS] [--wait-reader SECONDS] [--threads]\n");
      return 2;
    }
  }
  shk_lens *lens = NULL;
  if (name) {
    shk_lens_options lo;
    shk_lens_options_init(&lo);
    lo.full_wait_ns = 50000000; /* wait up to 50 ms for the recorder rather than drop */
    int rc = shk_lens_open(name, &lo, &lens);
    if (rc != SHK_OK) return fail("shk_lens_open", rc);
    if (wait_s) shk_lens_wait_reader(lens, (uint64_t)wait_s * 1000000000u);
    shk_lens_thread_name(lens, "main");
    /* One call puts tasks, the watcher and buffers on the same timeline as our zones. */
    rc = shk_lens_instrument(lens, SHK_LENS_ALL);
    if (rc != SHK_OK) return fail("shk_lens_instrument", rc);
  }

  /* The input lives in a "pages" buffer, so that watching its header sees no neighbour. */
  shk_buf_options bo;
  memset(&bo, 0, sizeof bo);
  bo.allocator = "pages";
  bo.init = SHK_BUF_INIT_ZERO;
  shk_buf *input = NULL;
  int rc = shk_buf_create(BYTES, 1, &bo, &input);
  if (rc != SHK_OK) return fail("shk_buf_create", rc);
  unsigned char *data = shk_buf_data(input);

  shk_watch_options wo;
  shk_watch_options_init(&wo);
  wo.coalesce_ms = 1;
  shk_watcher *w = NULL;
  rc = shk_watch_create(&wo, &w);
  if (rc != SHK_OK) return fail("shk_watch_create", rc);
  shk_watch_set_callback(w, on_change, NULL);
  uint32_t region = 0;
  rc = shk_watch_add(w, data, 64, "header", &region);
  if (rc != SHK_OK) return fail("shk_watch_add", rc);

  size_t failed = 0;
  for (int n = 0; n < FRAMES && rc == 0; n++) {
    rc = frame(lens, n, data, mode, &failed);
    shk_watch_flush(w); /* the header's change is delivered now, inside the frame's time */
  }
  shk_watch_free(w);
  shk_buf_release(input);
  printf("timeline_demo: %d frames of %d chunks (%u failed on purpose), %u watch events%s\n",
         FRAMES, CHUNKS, (unsigned)failed, watch_events, lens ? ", recorded" : "");
  if (lens) {
    shk_lens_instrument(NULL, 0);
    shk_lens_close(lens);
  }
  return rc != 0 || failed != 1 || watch_events < FRAMES ? 1 : 0;
}
