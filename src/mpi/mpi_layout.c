/* Which global chunks each rank runs: contiguous runs, split exactly as shk_task_run() splits
 * (the splitter of src/common/task_chunks.c is compiled into this library too). */
#include "../common/task_internal.h"
#include "mpi_internal.h"

void shk__mpi_chunk_bounds(size_t total, size_t item_size, size_t halo, size_t count, size_t i,
                           size_t *offset, size_t *size, size_t *readable) {
  shk__task_bounds b = shk__task_chunk_bounds(total, item_size, halo, count, i);
  *offset = b.offset;
  *size = b.size;
  *readable = b.readable;
}

shk__mpi_run shk__mpi_run_of(const shk__mpi_call *call, int r) {
  /* chunks <= SHK_TASK_CHUNKS_MAX and ranks < 2^31: the products fit in 64 bits. */
  uint64_t ranks = (uint64_t)call->ranks;
  shk__mpi_run run;
  run.first = (size_t)((uint64_t)r * call->chunks / ranks);
  run.count = (size_t)((uint64_t)(r + 1) * call->chunks / ranks) - run.first;
  if (run.count == 0) {
    run.lo = run.hi = run.end = 0;
    return run;
  }
  shk__task_bounds a = shk__task_chunk_bounds(call->total, call->item_size, call->halo,
                                              call->chunks, run.first);
  shk__task_bounds z = shk__task_chunk_bounds(call->total, call->item_size, call->halo,
                                              call->chunks, run.first + run.count - 1);
  run.lo = a.offset;
  run.hi = z.offset + z.size;
  /* A chunk's halo ends no later than the last chunk's: the run reads [lo, end). */
  run.end = z.offset + z.readable;
  return run;
}
