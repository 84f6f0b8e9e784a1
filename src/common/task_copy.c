/* A pool's copy-in on several threads: one thread fills memory several times slower than a
 * machine's cores scan it (1 GiB on 16 cores: the one-threaded copy made a copying pool 0.34 of
 * bare threads), and the first write to each page of a fresh segment (about 2.8 us per 4 KiB
 * page for allocation and zeroing) is spread over the threads too. */
#include <string.h>

#include "internal.h"
#include "task_copy.h"

typedef struct copy_piece {
  unsigned char *dst;
  const unsigned char *src;
  size_t size;
} copy_piece;

static void copy_piece_run(void *arg) {
  const copy_piece *p = arg;
  memcpy(p->dst, p->src, p->size);
}

unsigned shk__task_copy_plan(size_t size, unsigned threads) {
  size_t most = size / SHK__COPY_PIECE_MIN;
  if (threads == 0 || most < 2) return 1;
  return (unsigned)SHK__MIN(SHK__MIN((size_t)threads, most), (size_t)SHK__COPY_THREADS_MAX);
}

/* Piece i of n: equal runs of whole pages of dst; the first also takes the bytes before dst's
 * first page boundary, the last what the rounding down left over. */
static copy_piece piece_of(void *dst, const void *src, size_t size, size_t lead, size_t step,
                           unsigned i, unsigned n) {
  size_t from = i == 0 ? 0 : lead + (size_t)i * step;
  size_t to = i + 1 == n ? size : lead + (size_t)(i + 1) * step;
  copy_piece p = {(unsigned char *)dst + from, (const unsigned char *)src + from, to - from};
  return p;
}

void shk__task_copy_in(void *dst, const void *src, size_t size, unsigned threads) {
  if (size == 0) return;
  unsigned n = shk__task_copy_plan(size, threads);
  size_t page = shk__os_caps_get()->page_size;
  size_t lead = (page - (uintptr_t)dst % page) % page;
  size_t step = n > 1 && lead < size ? (size - lead) / n / page * page : 0;
  if (step == 0) { /* one thread, or pages larger than a piece */
    memcpy(dst, src, size);
    return;
  }
  copy_piece pieces[SHK__COPY_THREADS_MAX];
  shk__os_thread *started[SHK__COPY_THREADS_MAX];
  for (unsigned i = 0; i < n; i++) pieces[i] = piece_of(dst, src, size, lead, step, i, n);
  for (unsigned i = 1; i < n; i++)
    if (shk__os_thread_start(&started[i], copy_piece_run, &pieces[i]) != SHK_OK) started[i] = NULL;
  copy_piece_run(&pieces[0]);
  for (unsigned i = 1; i < n; i++) {
    if (started[i]) shk__os_thread_join(started[i]);
    else copy_piece_run(&pieces[i]);
  }
}

/* ---- in chunk order, beside the work ------------------------------------------------------ */

/* The ordered copy is cut into at most this many blocks: each finished run of blocks from the
 * start moves the front that workers wait for. */
#define ORDER_BLOCKS_MAX 256u
/* ... of at least this size (a block's end is where the front can move). */
#define ORDER_BLOCK_MIN ((size_t)1 << 20)

typedef struct order_copy {
  unsigned char *dst;
  const unsigned char *src;
  size_t size, block, blocks;
  atomic_size_t next;  /* the next block to claim */
  atomic_size_t front; /* blocks [0, front) are copied */
  atomic_uchar done[ORDER_BLOCKS_MAX];
  _Atomic uint64_t *copied;
} order_copy;

/* Moves the front over every finished block after it; whoever moves it past a block publishes
 * that block's end (the largest end wins, whatever the order of the stores). */
static void order_advance(order_copy *o) {
  size_t f = atomic_load(&o->front);
  while (f < o->blocks && atomic_load(&o->done[f])) {
    if (!atomic_compare_exchange_weak(&o->front, &f, f + 1)) continue;
    uint64_t end = (uint64_t)SHK__MIN(o->size, (f + 1) * o->block);
    uint64_t cur = atomic_load(o->copied);
    while (cur < end && !atomic_compare_exchange_weak(o->copied, &cur, end)) {
    }
    f++;
  }
}

static void order_run(void *arg) {
  order_copy *o = arg;
  for (;;) {
    size_t b = atomic_fetch_add(&o->next, 1);
    if (b >= o->blocks) return;
    size_t from = b * o->block, to = SHK__MIN(o->size, from + o->block);
    memcpy(o->dst + from, o->src + from, to - from);
    atomic_store(&o->done[b], 1);
    order_advance(o);
  }
}

void shk__task_copy_in_order(void *dst, const void *src, size_t size, unsigned threads,
                             _Atomic uint64_t *copied) {
  atomic_store(copied, 0);
  if (size == 0) return;
  static order_copy zero;
  order_copy o = zero;
  size_t page = shk__os_caps_get()->page_size;
  size_t block = SHK__MAX(ORDER_BLOCK_MIN, size / ORDER_BLOCKS_MAX + 1);
  o.block = shk__round_up(block, page);
  o.blocks = (size + o.block - 1) / o.block;
  o.dst = dst;
  o.src = src;
  o.size = size;
  o.copied = copied;
  unsigned n = shk__task_copy_plan(size, threads);
  shk__os_thread *started[SHK__COPY_THREADS_MAX];
  for (unsigned i = 1; i < n; i++)
    if (shk__os_thread_start(&started[i], order_run, &o) != SHK_OK) started[i] = NULL;
  order_run(&o);
  for (unsigned i = 1; i < n; i++)
    if (started[i]) shk__os_thread_join(started[i]);
}
