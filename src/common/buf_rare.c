/* The fields few buffers use (destroy callback, debug call sites, deferred links, device
 * mapping), in one block made only for a buffer that needs it: the usual header stays small. */
#include <stdlib.h>

#include "buf_internal.h"

shk__buf_rare *shk__buf_rare_new(const shk_buf_options *opts) {
  shk__buf_rare *rare = shk__malloc(sizeof *rare);
  if (!rare) return NULL;
  *rare = (shk__buf_rare){0};
  if (opts) {
    rare->on_destroy = opts->on_destroy;
    rare->on_destroy_user = opts->on_destroy_user;
  }
  return rare;
}

shk__buf_rare *shk__buf_rare_get(shk_buf *buf) {
  if (buf->rare) return buf->rare;
  buf->rare = shk__buf_rare_new(NULL);
  /* The short ways of release know nothing of the block: its buffer ends the general way. */
  if (buf->rare) buf->end_way = SHK__BUF_END_GENERAL;
  return buf->rare;
}

void shk__buf_rare_drop(shk_buf *buf) {
  free(buf->rare);
  buf->rare = NULL;
}

void shk__buf_rare_trim(shk_buf *buf) {
  const shk__buf_rare *r = buf->rare;
  /* A delayed buffer needs its block for the deferred list, however empty now. */
  if (r && !buf->delayed && !r->on_destroy && !r->on_destroy_user && !r->created_at &&
      !r->released_at && !r->deferred_prev && !r->deferred_next && r->device.mode == 0)
    shk__buf_rare_drop(buf);
}

const void *shk__buf_created_at(const shk_buf *buf) {
  return buf->rare ? buf->rare->created_at : NULL;
}

const void *shk__buf_released_at(const shk_buf *buf) {
  return buf->rare ? buf->rare->released_at : NULL;
}
