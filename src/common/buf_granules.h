/* The parts of live ranges that do not fill an aligned block ("granule") of SHK__GRANULE_SIZE
 * bytes, kept by block: a hash table of records keyed by block number, each holding up to
 * SHK__GRANULE_PIECES pieces as byte offsets in the block, and continued by further records of
 * the same block when a block holds more. A range that lies in one block is one piece; a longer
 * one has a piece in its first and last block unless they are whole, and its whole blocks in the
 * chunk tree (buf_ranges.c), which also reserves every block that has a record. So finding a
 * small range's place is a hash probe and a few compares that do not wait for each other, where
 * the tree needs two searches; with many ranges live it is one cache line instead of several.
 * buf_ranges.c holds the lock every function below needs. */
#ifndef SHMKIT_BUF_GRANULES_H
#define SHMKIT_BUF_GRANULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf_internal.h"

/* 128 B blocks, 5 pieces a record: a record is one 64-byte line (offsets fit in a byte), and
 * ranges of 25 bytes or more on average need no second record. */
#define SHK__GRANULE_BITS 7
#define SHK__GRANULE_SIZE ((uintptr_t)1 << SHK__GRANULE_BITS)
#define SHK__GRANULE_PIECES 5
/* A block holds at most SHK__GRANULE_SIZE pieces (disjoint, none empty): 26 records of 5. */
#define SHK__GRANULE_CHAIN_BITS 5
#define SHK__GRANULE_CHAIN_MAX \
  ((SHK__GRANULE_SIZE + SHK__GRANULE_PIECES - 1) / SHK__GRANULE_PIECES)
/* A range's note of a piece it has not. */
#define SHK__GRANULE_NONE UINT8_MAX

typedef struct shk__granule {
  uintptr_t key;  /* shk__granule_key(block, k) of the block's k-th record; 0: a free slot */
  uint8_t live;   /* bit i: piece i is a live range's */
  bool more;      /* the block's record k + 1 exists */
  uint8_t lo[SHK__GRANULE_PIECES];   /* offset of each piece's first byte in the block */
  uint8_t last[SHK__GRANULE_PIECES]; /* and of its last byte */
  shk__buf_range *node[SHK__GRANULE_PIECES];
} shk__granule;

/* The table: a power of two of slots, open addressing with linear probing, at most half full. */
extern shk__granule *shk__granule_table;
extern size_t shk__granule_mask;
extern unsigned shk__granule_shift;
/* Records in use, and how many of them hold no piece (kept for reuse until the table is full). */
extern size_t shk__granule_used, shk__granule_empty;

/* The block of an address. */
static inline uintptr_t shk__granule_of(uintptr_t address) { return address >> SHK__GRANULE_BITS; }

static inline uintptr_t shk__granule_key(uintptr_t g, unsigned k) {
  return (g << SHK__GRANULE_CHAIN_BITS | k) + 1;
}

/* Where a key's record is first looked for (Fibonacci hashing: neighbouring blocks land far
 * apart). */
static inline size_t shk__granule_home(uintptr_t key) {
  return (size_t)(((uint64_t)key * UINT64_C(0x9E3779B97F4A7C15)) >> shk__granule_shift);
}

/* The record of this key, or NULL. */
static inline shk__granule *shk__granule_find(uintptr_t key) {
  shk__granule *t = shk__granule_table;
  if (!t) return NULL;
  for (size_t i = shk__granule_home(key);; i = (i + 1) & shk__granule_mask) {
    if (t[i].key == key) return &t[i];
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

/* The same over the whole block, from its first record r (found for block g). */
bool shk__granule_chain_overlaps(const shk__granule *r, uintptr_t g, unsigned lo, unsigned last);
static inline bool shk__granule_block_overlaps(const shk__granule *r, uintptr_t g, unsigned lo,
                                               unsigned last) {
  if (shk__granule_overlaps(r, lo, last)) return true;
  return r->more && shk__granule_chain_overlaps(r, g, lo, last);
}

/* The first free piece of each live mask, SHK__GRANULE_PIECES when none is. */
extern const uint8_t shk__granule_first_free[1u << SHK__GRANULE_PIECES];

/* Puts [lo, last] of node in a free piece of block g, whose first record is r (the caller
 * checked it overlaps nothing there, and that the table has room for one more record); the
 * piece's number in the block. */
unsigned shk__granule_chain_put(shk__granule *r, uintptr_t g, unsigned lo, unsigned last,
                                shk__buf_range *node);
static inline unsigned shk__granule_put(shk__granule *r, uintptr_t g, unsigned lo,
                                        unsigned last, shk__buf_range *node) {
  unsigned i = shk__granule_first_free[r->live];
  if (i == SHK__GRANULE_PIECES) return shk__granule_chain_put(r, g, lo, last, node);
  if (r->live == 0) shk__granule_empty--;
  r->lo[i] = (uint8_t)lo;
  r->last[i] = (uint8_t)last;
  r->node[i] = node;
  r->live = (uint8_t)(r->live | 1u << i);
  return i;
}

/* Removes node's piece number `at` of block g; false when it is not there. */
static inline bool shk__granule_take(uintptr_t g, unsigned at, const shk__buf_range *node) {
  unsigned k = at / SHK__GRANULE_PIECES, i = at % SHK__GRANULE_PIECES;
  shk__granule *r = shk__granule_find(shk__granule_key(g, k));
  if (!r || !(r->live >> i & 1) || r->node[i] != node) return false;
  r->live = (uint8_t)(r->live & ~(1u << i));
  if (r->live == 0) shk__granule_empty++;
  return true;
}

/* Whether n more records fit without shk__granules_rebuild. */
static inline bool shk__granule_has_room(size_t n) {
  return shk__granule_table && (shk__granule_used + n) * 2 <= shk__granule_mask + 1;
}

/* Adds the empty first record of block g (not there yet; room checked). Moves no record. */
shk__granule *shk__granules_add(uintptr_t g);
/* Whether no record of block g (r its first) holds a piece. */
bool shk__granules_block_empty(const shk__granule *r, uintptr_t g);
/* Removes every record of block g, none holding a piece; other records may move (pointers to
 * them are stale after). */
void shk__granules_drop_block(uintptr_t g);
/* Makes room: a new table holding the records of blocks with pieces, sized for them and as many
 * more; `dropped` is called with each block left out. SHK_ENOMEM (nothing changes, nothing is
 * called). */
int shk__granules_rebuild(void (*dropped)(uintptr_t g));
/* Calls fn for each live piece that holds its range's first byte; how many. */
size_t shk__granules_walk(void (*fn)(shk__buf_range *node, void *ctx), void *ctx);
/* Checks every record (SHK_DEBUG=buf): pieces inside their block and disjoint there, each
 * naming a range that notes it and agrees with it, chains whole, the counts right; reports each
 * fault. *pieces gets the live pieces, *blocks the blocks with records. How many faults. */
size_t shk__granules_check(size_t *pieces, size_t *blocks);

#endif
