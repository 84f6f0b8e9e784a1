/* The range index's short ways (buf_ranges.c), inline where buffers are made and ended (buf.c's
 * consume and release): the usual small range goes in and out with no call into the index, its
 * bounds in registers, and the long ways, cold, laid out apart (consume+release with 1 000 live
 * 16.8 -> 16.2 ns in a loop of their own). One piece of a block, or two of neighbouring blocks,
 * in records that exist, each in two words of its bitmap at most; everything else ends in
 * buf_ranges.c's long ways, out of line, so that the short ways save few registers. The lock,
 * its mode and the count belong to buf_ranges.c; only these ways touch them elsewhere. */
#ifndef SHMKIT_BUF_RANGES_SHORT_H
#define SHMKIT_BUF_RANGES_SHORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf_granules.h"
#include "buf_internal.h"

/* buf_ranges.c's spin lock, whose free value also says whether the short ways may take it: FREE
 * once a take needs just the exchange (SHK_DEBUG=lock off and the process state ready: known
 * before the first take, never changed after), FREE_LONG before that or with SHK_DEBUG=lock
 * (every take then goes the long way, which sets the state up or follows the lock). One locked
 * compare-exchange tests both, with no load of a mode before it. The ranges indexed, guarded by
 * the lock. */
enum { SHK__BUF_RANGES_FREE, SHK__BUF_RANGES_HELD, SHK__BUF_RANGES_FREE_LONG };
extern atomic_int shk__buf_ranges_lock;
extern size_t shk__buf_ranges_live;

/* The long ways (buf_ranges.c), cold entries (their bodies are not): the short ways' calls of
 * them are laid out apart. held: the caller holds the lock plainly (lock_plain) and leaves the rest
 * to them; site: the caller of the index function, named by SHK_DEBUG=lock (NULL when held
 * plainly: the lock is not followed then). */
SHK__COLD int shk__buf_ranges_insert_general(shk__buf_range *node, bool held, const void *site);
SHK__COLD bool shk__buf_ranges_remove_general(shk__buf_range *node, bool held, const void *site);
/* The end of a long way's change under the lock: the observer flag read under the lock
 * (shk__buf_ranges_walk), the give. Returns rc, or SHK__BUF_RANGES_OBSERVED for SHK_OK with an
 * observer set. No change checks the index itself: SHK_DEBUG=buf's check is asked for by buf.c
 * after each creation and end it follows (shk__buf_ranges_debug_check), which keeps a load and
 * a branch per change off the short ways. */
SHK__COLD int shk__buf_ranges_change_done(int rc, const void *site);
/* The two-piece way (g, lo, last as shk__buf_ranges_short_kind gives them), then the end of it. */
int shk__buf_ranges_insert_two_done(shk__buf_range *node, uintptr_t g, unsigned lo,
                                    unsigned last);
/* The remove of a pair across two blocks, then the end of it (as shk__buf_ranges_remove_fast). */
bool shk__buf_ranges_remove_across_done(shk__buf_range *node);

/* The take of the short ways: true when the lock is held plainly; false, and nothing held, when
 * it is followed, not known yet, or held by another thread (the long way then takes it). An
 * exchange, not a compare-exchange (0.4 ns more per consume+release here): a lock found free
 * for the long way only is given back as found. */
static inline bool shk__buf_ranges_lock_plain(void) {
  int was = atomic_exchange_explicit(&shk__buf_ranges_lock, SHK__BUF_RANGES_HELD,
                                     memory_order_acquire);
  if (was == SHK__BUF_RANGES_FREE) return true;
  if (was == SHK__BUF_RANGES_FREE_LONG)
    atomic_store_explicit(&shk__buf_ranges_lock, was, memory_order_release);
  return false;
}

/* The give of a take that was plain. */
static inline void shk__buf_ranges_unlock(void) {
  atomic_store_explicit(&shk__buf_ranges_lock, SHK__BUF_RANGES_FREE, memory_order_release);
}

/* A short way's answer for a range it leaves to the long way (every SHK_* code is <= 0, and
 * SHK__BUF_RANGES_OBSERVED is 1). */
#define SHK__BUF_RANGES_NOT_SHORT 2

/* The ranges with pieces (a note other than SHK__GRANULE_NONE), on a circular list through this
 * node (buf_ranges.c), for the walk: a bitmap does not name its ranges. Linking costs four stores
 * and unlinking two, to the neighbours on the list (the range put in last, usually). */
extern shk__buf_range shk__buf_ranges_pieced;

static SHK__ALWAYS_INLINE void shk__buf_ranges_link(shk__buf_range *node) {
  shk__buf_range *first = shk__buf_ranges_pieced.next;
  node->prev = &shk__buf_ranges_pieced;
  node->next = first;
  first->prev = node;
  shk__buf_ranges_pieced.next = node;
}

static SHK__ALWAYS_INLINE void shk__buf_ranges_unlink(shk__buf_range *node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
}

/* Notes node's bytes, two words at most, as p (SHK__GRANULE_PAIR) in the record at slot_a; or,
 * across, word w0 there and w1 in the next block's record at slot_b (node has a tail piece then,
 * for the long ways and the check). Lists node. */
static SHK__ALWAYS_INLINE void shk__buf_ranges_note_pair(shk__buf_range *node, uint32_t slot_a,
                                                         bool across, uint32_t slot_b,
                                                         shk__granule_pair p) {
  node->head_piece = SHK__GRANULE_PAIR;
  node->tail_piece = across ? SHK__GRANULE_HAS : SHK__GRANULE_NONE;
  node->head_m0 = p.m0;
  node->head_m1 = p.m1;
  node->head_w0 = (uint8_t)p.w0;
  node->head_w1 = (uint8_t)p.w1;
  node->head_slot = slot_a;
  if (across) node->tail_slot = slot_b;
  node->in_tree = false;
  shk__buf_ranges_link(node);
}

/* Which short way takes [start, end): 1 a pair in one block (shk__buf_ranges_insert_one), 2 a
 * range across into the next block (the two-piece way, which puts one of two words as a pair
 * across), 0 none; *g, *lo and *last as they take them (last from block g's start). */
static SHK__ALWAYS_INLINE int shk__buf_ranges_short_kind(uintptr_t start, uintptr_t end,
                                                         uintptr_t *g, unsigned *lo,
                                                         uintptr_t *last) {
  *g = shk__granule_of(start);
  *lo = (unsigned)(start & (SHK__GRANULE_SIZE - 1));
  *last = end - 1 - (*g << SHK__GRANULE_BITS);
  /* One block, in at most two words of its bitmap (never the whole block: a block is four
   * words or more); or two, the first's piece in its last two words, the second's in its first
   * two. One test of the usual case (& not &&). */
  if ((*last < SHK__GRANULE_SIZE) & (*last / 64 - *lo / 64 <= 1)) return 1;
  return *lo >= SHK__GRANULE_SIZE - 128 && *last - SHK__GRANULE_SIZE < 128 ? 2 : 0;
}

/* The short way of a range in one block (offsets lo to last there, in two words at most): the
 * piece in the block's record, which exists (so no record is added: the table's room is not
 * asked). Anything else is SHK__BUF_RANGES_NOT_SHORT, nothing changed. The node's notes of its
 * parts are written only once it is in (a node inserted again while live keeps them, and is
 * refused). */
static SHK__ALWAYS_INLINE int shk__buf_ranges_insert_one(shk__buf_range *node, uintptr_t g,
                                                         unsigned lo, unsigned last) {
  size_t i = shk__granule_find_slot(shk__granule_key(g));
  if (i == SHK__GRANULE_NOT_FOUND) return SHK__BUF_RANGES_NOT_SHORT;
  shk__granule_pair p = shk__granule_pair_of(lo, last);
  shk__granule_map *m = &shk__granule_maps[i];
  if (shk__granule_pair_overlaps(m, m, p)) return SHK_EOVERLAP;
  shk__granule_pair_put(m, m, p);
  shk__buf_ranges_note_pair(node, (uint32_t)i, false, 0, p);
  return SHK_OK;
}

/* The end of an insert's short way, holding the lock plainly: rc is its answer. No call site is
 * named (NULL: the lock is not followed), so no register keeps the caller's address. */
static SHK__ALWAYS_INLINE int shk__buf_ranges_short_done(shk__buf_range *node, int rc) {
  if (SHK__UNLIKELY(rc == SHK__BUF_RANGES_NOT_SHORT))
    return shk__buf_ranges_insert_general(node, true, NULL);
  shk__buf_ranges_live += rc == SHK_OK;
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
  int kind = shk__buf_ranges_short_kind(start, end, &g, &lo, &last);
  if (kind == 1) {
    int rc = shk__buf_ranges_insert_one(node, g, lo, (unsigned)last);
    return shk__buf_ranges_short_done(node, rc);
  }
  if (kind == 2) return shk__buf_ranges_insert_two_done(node, g, lo, (unsigned)last);
  return shk__buf_ranges_insert_general(node, true, NULL);
}

/* Whether node is noted as a pair in one block (shk__buf_ranges_note_pair). */
static SHK__ALWAYS_INLINE bool shk__buf_ranges_pair_in_block(const shk__buf_range *node) {
  return node->head_piece == SHK__GRANULE_PAIR && node->tail_piece == SHK__GRANULE_NONE;
}

/* node's pair as noted (in one block or across). */
static SHK__ALWAYS_INLINE shk__granule_pair shk__buf_ranges_noted_pair(const shk__buf_range *node) {
  shk__granule_pair p = {node->head_w0, node->head_w1, node->head_m0, node->head_m1};
  return p;
}

/* Notes node as having no pieces and takes it off the list (its bits are cleared already). */
static SHK__ALWAYS_INLINE void shk__buf_ranges_forget(shk__buf_range *node) {
  node->head_piece = node->tail_piece = SHK__GRANULE_NONE;
  shk__buf_ranges_unlink(node);
}

/* Takes a pair in one block out of its record, from its notes, and node off the list; false
 * when it was not there whole. */
static SHK__ALWAYS_INLINE bool shk__buf_ranges_take_pair(shk__buf_range *node) {
  bool had = shk__granule_take_pair(shk__granule_of(node->start), node->head_slot,
                                    shk__buf_ranges_noted_pair(node));
  shk__buf_ranges_forget(node);
  return had;
}

/* The end of a remove's short way, holding the lock plainly: had is whether the range was there;
 * returns whether an observer is set, read under the lock (shk__buf_ranges_walk). */
static SHK__ALWAYS_INLINE bool shk__buf_ranges_remove_short_done(bool had) {
  shk__buf_ranges_live -= had;
  bool observed = atomic_load_explicit(&shk__buf_observed, memory_order_relaxed);
  shk__buf_ranges_unlock();
  return observed;
}

/* shk__buf_ranges_remove, inline: a pair in one block is taken here (never in the tree: two
 * words are no whole block, so one test of its notes suffices); anything else the long way. */
static SHK__ALWAYS_INLINE bool shk__buf_ranges_remove_fast(shk__buf_range *node) {
  if (SHK__UNLIKELY(!shk__buf_ranges_lock_plain()))
    return shk__buf_ranges_remove_general(node, false, SHK__CALLER());
  if (SHK__UNLIKELY(!shk__buf_ranges_pair_in_block(node))) {
    /* A pair across blocks by a jump to a way of its own, not through the long way's calls. */
    if (node->head_piece == SHK__GRANULE_PAIR) return shk__buf_ranges_remove_across_done(node);
    return shk__buf_ranges_remove_general(node, true, NULL);
  }
  return shk__buf_ranges_remove_short_done(shk__buf_ranges_take_pair(node));
}

#endif
