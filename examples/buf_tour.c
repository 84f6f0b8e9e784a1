/* A tour of buffers: an aligned, zeroed buffer with a destroy callback, a strided typed view
 * that keeps it alive, a region, consume with overlap refusal, and delayed free. */
#include <stdio.h>
#include <string.h>
#include <shmkit.h>

static void on_destroy(const shk_buf_info *info, void *user) {
  printf("%s: buffer %llu (%zu bytes from %s) destroyed\n", (const char *)user,
         (unsigned long long)info->id, info->size, info->allocator);
}

int main(void) {
  /* 1000 doubles, zeroed, 64-byte aligned, with a destroy callback. */
  shk_buf *buf = NULL;
  shk_buf_options o;
  shk_buf_options_init(&o);
  o.allocator = "aligned";
  o.alignment = 64;
  o.init = SHK_BUF_INIT_ZERO;
  o.on_destroy = on_destroy;
  o.on_destroy_user = "demo";
  int rc = shk_buf_create(1000, sizeof(double), &o, &buf);
  if (rc != SHK_OK) { fprintf(stderr, "%s\n", shk_strerror(rc)); return 1; }

  /* A typed, strided view: every 10th double. It keeps the buffer alive. */
  shk_buf_view *tenth = NULL;
  shk_buf_view_spec spec = {.offset = 0, .count = 100, .stride = 10 * sizeof(double),
                            .type = SHK_BUF_F64};
  shk_buf_view_create(buf, &spec, &tenth);
  for (size_t i = 0; i < 100; i++) shk_buf_view_set_f64(tenth, i, (double)i);
  shk_buf_release(buf);                       /* the view still holds it */
  double x = 0;
  shk_buf_view_get_f64(tenth, 42, &x);        /* 42.0 */

  /* Regions: [start, end), end EXCLUSIVE. */
  unsigned char first[16];
  shk_buf_region_copy(shk_buf_view_buffer(tenth), 0, 16, first, sizeof first);
  shk_buf_view_free(tenth);                   /* last reference: "demo: buffer 1 ... destroyed" */

  /* Wrap memory you own; overlapping wraps are refused. */
  static unsigned char arena[4096];
  shk_buf *a = NULL, *b = NULL;
  shk_buf_consume(arena, 1024, 1, NULL, &a);
  rc = shk_buf_consume(arena + 100, 10, 1, NULL, &b);   /* SHK_EOVERLAP: inside a */
  shk_buf_release(a);                                     /* arena is not freed: still yours */

  /* Delayed free: released buffers wait until freed (or shutdown, or exit). */
  shk_buf_options later;
  shk_buf_options_init(&later);
  later.delayed_free = true;
  later.on_destroy = on_destroy;
  later.on_destroy_user = "later";
  shk_buf_create(10, 1, &later, &b);
  shk_buf_release(b);                         /* nothing printed yet */
  size_t deferred = 0;
  shk_buf_deferred_list(NULL, 0, &deferred);  /* 1 */
  shk_buf_shutdown();                         /* "later: buffer ... destroyed" */
  printf("x = %g, deferred was %zu, overlap said %s\n", x, deferred, shk_error_name(rc));
  return 0;
}
