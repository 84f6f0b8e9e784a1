/* The range index's short ways (buf_ranges.c), inline where buffers are made and ended (buf.c's
 * consume and release): the usual small range goes in and out with no call into the index, its
 * bounds in registers, and the long ways, cold, laid out apart (consume+release with 1 000 live
 * 16.8 -> 16.2 ns in a loop of their own). One piece of a block, or two of neighbouring blocks,
 * in records that exist; everything else ends in buf_ranges.c's long ways, out of line, so that
 * the short ways save few registers. The lock, its mode and the count belong to buf_ranges.c;
 * only these ways touch them elsewhere. */
#ifndef SHMKIT_BUF_RANGES_SHORT_H
#define SHMKIT_BUF_RANGES_SHORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf_granules.h"
#include "buf_internal.h"

/* buf_ranges.c's spin lock (0: free); how a take goes (1: the exchange alone, SHK_DEBUG=lock off
 * and the process state ready; set before the first take, never changed after); the ranges
 * indexed, guarded by the lock. */
extern atomic_int shk__buf_ranges_lock, shk__buf_ranges_mode;
extern size_t shk__buf_ranges_live;

/* The long ways (buf_ranges.c), cold entries (their bodies are not): the short ways' calls of
 * them are laid out apart. held: the caller holds the lock plainly (mode 1) and leaves the rest
 * to them; site: the caller of the index function, named by SHK_DEBUG=lock (NULL when held
 * plainly: the lock is not followed then). */
SHK__COLD int shk__buf_ranges_insert_general(shk__buf_range *node, bool held, const void *site);
SHK__COLD bool shk__buf_ranges_remove_general(shk__buf_range *node, bool held, const void *site);
/* The end of a change under the lock: SHK_DEBUG=buf's check, the observer flag read under the
 * lock (shk__buf_ranges_walk), the give. Returns rc, or SHK__BUF_RANGES_OBSERVED for SHK_OK with
 * an observer set; the remove's form returns whether one is set. */
SHK__COLD int shk__buf_ranges_change_done(int rc, const void *site);
SHK__COLD bool shk__buf_ranges_remove_done(const void *site);
/* The take of the short ways: true when the lock is held plainly; false, and nothing held, when
 * it is followed, not known yet, or held by another thread (the long way then takes it). */
static inline bool shk__buf_ranges_lock_plain(void) {
  return atomic_load_explicit(&shk__buf_ranges_mode, memory_order_acquire) == 1 &&
         atomic_exchange_explicit(&shk__buf_ranges_lock, 1, memory_order_acquire) == 0;
}

static inline void shk__buf_ranges_unlock(void) {
  atomic_store_explicit(&shk__buf_ranges_lock, 0, memory_order_release);
}

/* A short way's answer for a range it leaves to the long way (every SHK_* code is <= 0, and
 * SHK__BUF_RANGES_OBSERVED is 1). */
#define SHK__BUF_RANGES_NOT_SHORT 2

/* Whether a short way takes [start, end): one block not filled, or two, the first not from its
 * start, the second not to its end; *g, *lo and *last as it takes them (last >= 128: two).
 * One branch on the whole test, in the caller (& and |, not && and ||): ranges in the same
 * blocks that end at a block's end or not, at random, cost a mispredicted branch each when the
 * compiler split it (3.5 ns of consume+release, two gaps of a block taken at random), and so
 * did one piece or two with ranges across a block boundary at random. */
static SHK__ALWAYS_INLINE bool shk__buf_ranges_short_kind(uintptr_t start, uintptr_t end,
                                                          uintptr_t *g, unsigned *lo,
                                                          uintptr_t *last) {
  *g = shk__granule_of(start);
  *lo = (unsigned)(start & (SHK__GRANULE_SIZE - 1));
  *last = end - 1 - (*g << SHK__GRANULE_BITS);
  bool one = (*last < SHK__GRANULE_SIZE) & ((*lo | (*last ^ (SHK__GRANULE_SIZE - 1))) != 0);
  bool two = (*lo != 0) & (*last - SHK__GRANULE_SIZE < SHK__GRANULE_SIZE - 1);
  return one | two;
}

/* p when pick, else q: a mask, not a branch (a ?: here was made a branch, and the path split in
 * two by it). */
static SHK__ALWAYS_INLINE shk__granule *shk__granule_pick(bool pick, shk__granule *p,
                                                         shk__granule *q) {
  uintptr_t m = (uintptr_t)0 - pick;
  return (shk__granule *)(((uintptr_t)p & m) | ((uintptr_t)q & ~m));
}

/* The short way of a range in one block (two false: offsets lo to last there) or in two
 * neighbouring blocks (two: lo to the end of block g, then the start of block g + 1 to last -
 * SHK__GRANULE_SIZE): the pieces in the blocks' first records, which exist, have no further
 * record and have a free piece (so no record is added: the table's room is not asked). Anything
 * else is SHK__BUF_RANGES_NOT_SHORT, nothing changed. One piece and two take one path: a
 * one-piece range's second piece goes to shk__granule_scratch, chosen by selects, and scratch
 * is reset after (ranges that cross a block boundary at random made "one or two" a mispredicted
 * branch in the insert). The second block's record is looked for first in the slot after the
 * first's (neighbouring blocks have neighbouring homes, SHK__GRANULE_RUN); that slot is read
 * for one piece too, but not searched. The node's notes of its parts are written only once it
 * is in (a node inserted again while live keeps them, and is refused). */
static SHK__ALWAYS_INLINE int shk__buf_ranges_insert_short(shk__buf_range *node, uintptr_t g,
                                                           unsigned lo, unsigned last) {
  shk__granule *head = shk__granule_find_last(shk__granule_key(g, 0));
  if (!head) return SHK__BUF_RANGES_NOT_SHORT;
  bool two = last >= SHK__GRANULE_SIZE;
  unsigned m = 0u - two;
  uint64_t tail_key = shk__granule_key(g + 1, 0);
  shk__granule *next = &shk__granule_table[(shk__granule_slot(head) + 1) & shk__granule_mask];
  shk__granule *tail = shk__granule_pick(two, next, &shk__granule_scratch);
  if (SHK__UNLIKELY(two & (next->key != tail_key))) {
    tail = shk__granule_find_last(tail_key);
    if (!tail) return SHK__BUF_RANGES_NOT_SHORT;
  }
  /* Scratch overlaps nothing and has every piece free. */
  unsigned head_last = ((SHK__GRANULE_SIZE - 1) & m) | (last & ~m);
  unsigned tail_last = (last - (unsigned)SHK__GRANULE_SIZE) & m;
  if (shk__granule_overlaps(head, lo, head_last) | shk__granule_overlaps(tail, 0, tail_last))
    return SHK_EOVERLAP;
  unsigned hi = shk__granule_first_free(head), ti = shk__granule_first_free(tail);
  if ((hi == SHK__GRANULE_PIECES) | (ti == SHK__GRANULE_PIECES)) return SHK__BUF_RANGES_NOT_SHORT;
  shk__granule_empty -= (size_t)(shk__granule_live(head) == 0) +
                        (size_t)(two & (shk__granule_live(tail) == 0));
  shk__granule_set_piece(head, hi, lo, head_last, node);
  shk__granule_set_piece(tail, ti, 0, tail_last, node);
  shk__granule_scratch.lo = SHK__GRANULE_FREE_LO;
  shk__granule_scratch.last = 0;
  node->head_at = (uint8_t)hi;
  node->tail_at = (uint8_t)(ti | (SHK__GRANULE_NONE & ~m));
  node->head_slot = shk__granule_slot(head);
  /* A one-piece range's is any value (its take masks it into the table, and aims at scratch):
   * scratch's address, as a number, less the table's. */
  node->tail_slot =
      (uint32_t)(((uintptr_t)tail - (uintptr_t)shk__granule_table) / sizeof(shk__granule));
  node->in_tree = false;
  return SHK_OK;
}

/* The end of an insert's short way, holding the lock plainly: rc is its answer. No call site is
 * named (NULL: the lock is not followed), so no register keeps the caller's address. */
static SHK__ALWAYS_INLINE int shk__buf_ranges_short_done(shk__buf_range *node, int rc) {
  if (SHK__UNLIKELY(rc == SHK__BUF_RANGES_NOT_SHORT))
    return shk__buf_ranges_insert_general(node, true, NULL);
  shk__buf_ranges_live += rc == SHK_OK;
  if (SHK__UNLIKELY(atomic_load_explicit(&shk__debug_mask, memory_order_relaxed) & SHK__DEBUG_BUF))
    return shk__buf_ranges_change_done(rc, NULL);
  /* Read under the lock: see shk__buf_ranges_walk. */
  bool observed = atomic_load_explicit(&shk__buf_observed, memory_order_relaxed);
  shk__buf_ranges_unlock();
  return rc == SHK_OK && observed ? SHK__BUF_RANGES_OBSERVED : rc;
}

/* shk__buf_ranges_insert_seen, inline. */
static SHK__ALWAYS_INLINE int shk__buf_ranges_insert_fast(shk__buf_range *node) {
  /* Read before the lock (the node is the caller's until it is in): the exchange does not wait
   * for these loads, and the block's hash does not wait for the exchange. */
  uintptr_t start = node->start, end = node->end;
  if (SHK__UNLIKELY(!shk__buf_ranges_lock_plain()))
    return shk__buf_ranges_insert_general(node, false, SHK__CALLER());
  uintptr_t g, last;
  unsigned lo;
  if (SHK__UNLIKELY(!shk__buf_ranges_short_kind(start, end, &g, &lo, &last)))
    return shk__buf_ranges_insert_general(node, true, NULL);
  int rc = shk__buf_ranges_insert_short(node, g, lo, (unsigned)last);
  return shk__buf_ranges_short_done(node, rc);
}

/* Takes node's pieces out of their records (each looked for first at its slot hint); false
 * when it had none there. The last block's piece is taken on the path of the first's: with no
 * such piece the take is aimed at shk__granule_scratch, whose piece 0 is free, so that it finds
 * nothing and changes nothing there (one piece or two is no branch: see
 * shk__buf_ranges_insert_short). */
static SHK__ALWAYS_INLINE bool shk__buf_ranges_take_pieces(shk__buf_range *node) {
  /* No table: no range has a piece. */
  if (SHK__UNLIKELY(!shk__granule_table)) return false;
  bool had = node->head_at != SHK__GRANULE_NONE &&
             shk__granule_take(shk__granule_of(node->start), node->head_at, node->head_slot, node);
  bool two = node->tail_at != SHK__GRANULE_NONE;
  unsigned at = node->tail_at & (0u - two), i = at & 7;
  uint64_t key = shk__granule_key(shk__granule_of(node->end - 1), at >> 3);
  /* The hint masked into the table, which exists while node has a piece in it. */
  shk__granule *hinted = &shk__granule_table[node->tail_slot & shk__granule_mask];
  shk__granule *r = shk__granule_pick(two, hinted, &shk__granule_scratch);
  if (SHK__UNLIKELY(two & ((hinted->key & ~SHK__GRANULE_MORE) != key))) {
    r = shk__granule_find(key);
    if (!r) r = &shk__granule_scratch;
  }
  bool live = (shk__granule_live(r) >> (8 * i + 7) & 1) != 0;
  bool mine = live & (r->node[i] == node);
  uint64_t byte = (UINT64_C(0xff) << 8 * i) & -(uint64_t)mine;
  r->lo |= byte & SHK__GRANULE_FREE_LO;
  r->last &= ~byte;
  shk__granule_empty += (size_t)(mine & (shk__granule_live(r) == 0));
  node->head_at = node->tail_at = SHK__GRANULE_NONE;
  return had | mine;
}

/* shk__buf_ranges_remove, inline: a range with no whole blocks is taken here. */
static SHK__ALWAYS_INLINE bool shk__buf_ranges_remove_fast(shk__buf_range *node) {
  if (SHK__UNLIKELY(!shk__buf_ranges_lock_plain()))
    return shk__buf_ranges_remove_general(node, false, SHK__CALLER());
  if (SHK__UNLIKELY(node->in_tree)) return shk__buf_ranges_remove_general(node, true, NULL);
  shk__buf_ranges_live -= shk__buf_ranges_take_pieces(node);
  if (SHK__UNLIKELY(atomic_load_explicit(&shk__debug_mask, memory_order_relaxed) & SHK__DEBUG_BUF))
    return shk__buf_ranges_remove_done(NULL);
  bool observed = atomic_load_explicit(&shk__buf_observed, memory_order_relaxed);
  shk__buf_ranges_unlock();
  return observed;
}

#endif
