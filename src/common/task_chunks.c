/* Chunk boundaries: `count` pieces whose sizes differ by at most one item, each with the halo
 * it may read past its end. */
#include "task_internal.h"

int shk__task_check_split(size_t size, size_t item_size, size_t count) {
  if (count == 0 || count > SHK_TASK_CHUNKS_MAX) return SHK_ERANGE;
  if (item_size > 1 && size % item_size != 0) return SHK_EINVAL;
  return SHK_OK;
}

shk__task_bounds shk__task_chunk_bounds(size_t size, size_t item_size, size_t halo, size_t count,
                                        size_t i) {
  size_t unit = item_size > 1 ? item_size : 1;
  size_t items = size / unit;
  /* start(i) = i*q + min(i, r): balanced, and free of the overflow of i*items/count. */
  size_t q = items / count, r = items % count;
  size_t first = i * q + SHK__MIN(i, r);
  size_t n = q + (i < r ? 1 : 0);
  shk__task_bounds b;
  b.offset = first * unit;
  b.size = n * unit;
  size_t left = size - b.offset - b.size;
  b.readable = b.size + SHK__MIN(halo, left);
  return b;
}
