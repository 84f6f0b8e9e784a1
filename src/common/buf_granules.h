/* Small live ranges kept by the aligned block ("granule") of SHK__GRANULE_SIZE bytes they lie
 * in: one record per block in a hash table keyed by block number, each holding up to
 * SHK__GRANULE_PIECES ranges as byte offsets. Finding a small range's place is a hash probe and
 * a few compares that do not depend on each other, where the chunk tree (buf_ranges.c) needs two
 * searches; with many ranges live it is one cache line instead of several. buf_ranges.c decides
 * which ranges come here, keeps each record's block reserved in its tree (so that a range there
 * can never overlap a record's block unseen), and holds the lock every function below needs. */
#ifndef SHMKIT_BUF_GRANULES_H
#define SHMKIT_BUF_GRANULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf_internal.h"

/* 128 B blocks of 5 ranges: a record is one 64-byte line (offsets fit in a byte), and ranges of
 * 25 bytes or more on average fit their block's record. A block that needs more goes to the tree
 * with its ranges (buf_ranges.c). */
#define SHK__GRANULE_BITS 7
#define SHK__GRANULE_SIZE ((uintptr_t)1 << SHK__GRANULE_BITS)
#define SHK__GRANULE_PIECES 5
#define SHK__GRANULE_ALL ((1u << SHK__GRANULE_PIECES) - 1)

typedef struct shk__granule {
  uintptr_t key;  /* block number + 1; 0 marks a free slot of the table */
  uint8_t live;   /* bit i: piece i is a live range */
  uint8_t lo[SHK__GRANULE_PIECES];   /* offset of each piece's first byte in the block */
  uint8_t last[SHK__GRANULE_PIECES]; /* and of its last byte */
  shk__buf_range *node[SHK__GRANULE_PIECES];
} shk__granule;

/* The table: a power of two of slots, open addressing with linear probing, at most half full. */
extern shk__granule *shk__granule_table;
extern size_t shk__granule_mask;
extern unsigned shk__granule_shift;
/* Records in use, and how many of them hold no range (kept for reuse until the table is full). */
extern size_t shk__granule_used, shk__granule_empty;

/* The block of an address, and whether [s, e) lies in one block. */
static inline uintptr_t shk__granule_of(uintptr_t address) { return address >> SHK__GRANULE_BITS; }
static inline bool shk__granule_holds(uintptr_t s, uintptr_t e) {
  return shk__granule_of(s) == shk__granule_of(e - 1);
}

/* Where a block's record would be first looked for (Fibonacci hashing: neighbouring blocks land
 * far apart). */
static inline size_t shk__granule_home(uintptr_t g) {
  return (size_t)(((uint64_t)g * UINT64_C(0x9E3779B97F4A7C15)) >> shk__granule_shift);
}

/* The record of block g, or NULL. */
static inline shk__granule *shk__granule_find(uintptr_t g) {
  shk__granule *t = shk__granule_table;
  if (!t) return NULL;
  for (size_t i = shk__granule_home(g);; i = (i + 1) & shk__granule_mask) {
    if (t[i].key == g + 1) return &t[i];
    if (t[i].key == 0) return NULL;
  }
}

/* Whether a live piece of r shares a byte with offsets [lo, last]: every piece compared, with no
 * branch between them. */
static inline bool shk__granule_overlaps(const shk__granule *r, unsigned lo, unsigned last) {
  unsigned hit = 0;
  for (unsigned i = 0; i < SHK__GRANULE_PIECES; i++)
    hit |= (unsigned)(r->lo[i] <= last && r->last[i] >= lo) << i;
  return (hit & r->live) != 0;
}

/* The first free piece of each live mask, SHK__GRANULE_PIECES when none is. */
extern const uint8_t shk__granule_first_free[1u << SHK__GRANULE_PIECES];

/* Puts [lo, last] of node in a free piece of r; its number, or SHK__GRANULE_PIECES when r is
 * full. The caller checked it overlaps nothing there. */
static inline unsigned shk__granule_put(shk__granule *r, unsigned lo, unsigned last,
                                        shk__buf_range *node) {
  unsigned i = shk__granule_first_free[r->live];
  if (i == SHK__GRANULE_PIECES) return i;
  if (r->live == 0) shk__granule_empty--;
  r->lo[i] = (uint8_t)lo;
  r->last[i] = (uint8_t)last;
  r->node[i] = node;
  r->live = (uint8_t)(r->live | 1u << i);
  return i;
}

/* Removes node's piece from r (piece `at`, node's own note of it, checked); false when r does not
 * hold node. */
static inline bool shk__granule_take(shk__granule *r, const shk__buf_range *node, unsigned at) {
  if (at >= SHK__GRANULE_PIECES || !(r->live >> at & 1) || r->node[at] != node) return false;
  r->live = (uint8_t)(r->live & ~(1u << at));
  if (r->live == 0) shk__granule_empty++;
  return true;
}

/* Whether one more record fits without shk__granules_rebuild. */
static inline bool shk__granule_has_room(void) {
  return shk__granule_table && (shk__granule_used + 1) * 2 <= shk__granule_mask + 1;
}

/* Adds an empty record for block g (not there yet; room checked). Moves no other record. */
shk__granule *shk__granules_add(uintptr_t g);
/* Removes the empty record r; other records may move (pointers to them are stale after). */
void shk__granules_drop(shk__granule *r);
/* Makes room: a new table holding the records with ranges, sized for them and as many more;
 * `dropped` is called with the block of each empty record left out. SHK_ENOMEM (nothing changes,
 * nothing is called). */
int shk__granules_rebuild(void (*dropped)(uintptr_t g));
/* Calls fn for each live range held; how many. */
size_t shk__granules_walk(void (*fn)(shk__buf_range *node, void *ctx), void *ctx);
/* Checks every record (SHK_DEBUG=buf): pieces inside their block and disjoint, each naming a
 * range that says it is there and agrees with it, the counts right; reports each fault.
 * *ranges gets the live ranges counted. How many faults. */
size_t shk__granules_check(size_t *ranges);

#endif
