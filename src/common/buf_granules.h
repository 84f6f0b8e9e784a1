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

/* 128 B blocks, 5 pieces a record: a record is one 64-byte line, and ranges of 25 bytes or more
 * on average need no second record. Offsets below 128 leave each byte's top bit free, so that
 * all pieces are compared at once in one word (shk__granule_overlaps). */
#define SHK__GRANULE_BITS 7
#define SHK__GRANULE_SIZE ((uintptr_t)1 << SHK__GRANULE_BITS)
#define SHK__GRANULE_PIECES 5
/* A block holds at most SHK__GRANULE_SIZE pieces (disjoint, none empty): 26 records of 5. */
#define SHK__GRANULE_CHAIN_MAX \
  ((SHK__GRANULE_SIZE + SHK__GRANULE_PIECES - 1) / SHK__GRANULE_PIECES)
/* A piece's number in its block: record k, piece i there (in a byte: k < 26). */
static inline unsigned shk__granule_at(unsigned k, unsigned i) { return k << 3 | i; }
/* A range's note of a piece it has not. */
#define SHK__GRANULE_NONE UINT8_MAX

typedef struct shk__granule {
  /* shk__granule_key(block, k) of the block's k-th record, with SHK__GRANULE_MORE when record
   * k + 1 exists; 0: a free slot of the table. */
  uint64_t key;
  /* Byte i: the offsets in the block of piece i's first and last byte. A free piece (and bytes
   * 5 to 7) hold 127 and 0, which overlap no piece: a piece never fills its block. */
  uint64_t lo, last;
  shk__buf_range *node[SHK__GRANULE_PIECES];
} shk__granule;

#define SHK__GRANULE_MORE (UINT64_C(1) << 63)
#define SHK__GRANULE_BYTES UINT64_C(0x0101010101010101)
#define SHK__GRANULE_TOPS UINT64_C(0x8080808080808080)
#define SHK__GRANULE_FREE_LO (UINT64_C(0x7f) * SHK__GRANULE_BYTES)
/* The top bits of the bytes that are pieces. */
#define SHK__GRANULE_PIECE_TOPS UINT64_C(0x0000008080808080)

/* The table: a power of two of slots, open addressing with linear probing, at most half full. */
extern shk__granule *shk__granule_table;
extern size_t shk__granule_mask;
extern unsigned shk__granule_shift;
/* Records in use, how many of them hold no piece (kept for reuse until the table is full), and
 * how many more fit before the table is half full (0 with no table). */
extern size_t shk__granule_used, shk__granule_empty, shk__granule_room;

/* The block of an address. */
static inline uintptr_t shk__granule_of(uintptr_t address) { return address >> SHK__GRANULE_BITS; }

/* A record's key: block g (below 2^57) in the low bits, its number k in the block above. */
#define SHK__GRANULE_NUMBER_SHIFT 58
static inline uint64_t shk__granule_key(uintptr_t g, unsigned k) {
  return ((uint64_t)k << SHK__GRANULE_NUMBER_SHIFT | g) + 1;
}

/* Neighbouring blocks, in runs of this many, have neighbouring homes. */
#define SHK__GRANULE_RUN 16

/* Where a key's record is first looked for: runs of SHK__GRANULE_RUN neighbouring blocks side
 * by side (memory used in order, by a batch of buffers say, reads the table in order), each run
 * (and each record number) placed by Fibonacci hashing (runs far apart in memory, or at a stride
 * of a power of two, do not meet). */
static inline size_t shk__granule_home_in(uint64_t key, unsigned shift, size_t mask) {
  uint64_t k = (key & ~SHK__GRANULE_MORE) - 1;
  uint64_t run = (k / SHK__GRANULE_RUN) * UINT64_C(0x9E3779B97F4A7C15);
  return (size_t)((run >> shift) + k % SHK__GRANULE_RUN) & mask;
}
static inline size_t shk__granule_home(uint64_t key) {
  return shk__granule_home_in(key, shk__granule_shift, shk__granule_mask);
}

/* The record whose key, with `bits` kept, is key; or NULL. */
static inline shk__granule *shk__granule_find_as(uint64_t key, uint64_t bits) {
  shk__granule *t = shk__granule_table;
  if (!t) return NULL;
  for (size_t i = shk__granule_home(key);; i = (i + 1) & shk__granule_mask) {
    if ((t[i].key & bits) == key) return &t[i];
    if (t[i].key == 0) return NULL;
  }
}

/* The record of this key, or NULL. */
static inline shk__granule *shk__granule_find(uint64_t key) {
  return shk__granule_find_as(key, ~SHK__GRANULE_MORE);
}

/* The record of this key when no further record follows it, else NULL: the short ways', which
 * take no further records, and compare the whole key (no mask). */
static inline shk__granule *shk__granule_find_last(uint64_t key) {
  return shk__granule_find_as(key, UINT64_MAX);
}

/* A slot that no table has: a hint that is never taken. */
#define SHK__GRANULE_NO_SLOT UINT32_MAX

/* The record whose key, with `bits` kept, is key, looked for first at `slot` (where it was when
 * the caller last saw it): one load and one compare instead of the hash and the probe. Only a
 * hint: a drop or a rebuild may have moved the record since, or freed the table it was in; a
 * slot outside the table is not read, and a slot that holds another key (keys are unique in the
 * table) sends the search the usual way, so a stale hint never gives another block's record. */
static inline shk__granule *shk__granule_find_as_at(uint64_t key, uint64_t bits, size_t slot) {
  shk__granule *t = shk__granule_table;
  if (t && slot <= shk__granule_mask && (t[slot].key & bits) == key) return &t[slot];
  return shk__granule_find_as(key, bits);
}
static inline shk__granule *shk__granule_find_at(uint64_t key, size_t slot) {
  return shk__granule_find_as_at(key, ~SHK__GRANULE_MORE, slot);
}

/* Where r is in the table: its slot. */
static inline uint32_t shk__granule_slot(const shk__granule *r) {
  return (uint32_t)(r - shk__granule_table);
}

static inline bool shk__granule_more(const shk__granule *r) {
  return (r->key & SHK__GRANULE_MORE) != 0;
}

/* Byte by byte, the top bit set where a <= b (bytes below 128): (128 + b) - a never borrows. */
static inline uint64_t shk__granule_le(uint64_t a, uint64_t b) {
  return ((b | SHK__GRANULE_TOPS) - a) & SHK__GRANULE_TOPS;
}

/* The top bits of r's live pieces (first <= last). */
static inline uint64_t shk__granule_live(const shk__granule *r) {
  return shk__granule_le(r->lo, r->last) & SHK__GRANULE_PIECE_TOPS;
}

/* Whether a live piece of r shares a byte with offsets [lo, last] (not the whole block): all
 * pieces compared at once, with no branch. */
static inline bool shk__granule_overlaps(const shk__granule *r, unsigned lo, unsigned last) {
  return (shk__granule_le(r->lo, last * SHK__GRANULE_BYTES) &
          shk__granule_le(lo * SHK__GRANULE_BYTES, r->last)) != 0;
}

/* The same over the whole block, from its first record r (found for block g). */
bool shk__granule_chain_overlaps(const shk__granule *r, uintptr_t g, unsigned lo, unsigned last);
static inline bool shk__granule_block_overlaps(const shk__granule *r, uintptr_t g, unsigned lo,
                                               unsigned last) {
  if (shk__granule_overlaps(r, lo, last)) return true;
  return shk__granule_more(r) && shk__granule_chain_overlaps(r, g, lo, last);
}

/* The first free piece of r, SHK__GRANULE_PIECES when none is: with no branch, as the lowest
 * top bit of the free pieces' bytes and of byte SHK__GRANULE_PIECES's. */
static inline unsigned shk__granule_first_free(const shk__granule *r) {
  uint64_t free_tops = (~shk__granule_live(r) & SHK__GRANULE_PIECE_TOPS) |
                       UINT64_C(0x80) << 8 * SHK__GRANULE_PIECES;
  return shk__trailing_zeros(free_tops) / 8;
}

/* Puts [lo, last] of node in a free piece of block g, whose first record is r (the caller
 * checked it overlaps nothing there, and that the table has room for one more record); the
 * piece's number in the block. */
unsigned shk__granule_chain_put(shk__granule *r, uintptr_t g, unsigned lo, unsigned last,
                                shk__buf_range *node);
/* Puts [lo, last] of node in piece i of r, which is free. */
static inline void shk__granule_set(shk__granule *r, unsigned i, unsigned lo, unsigned last,
                                    shk__buf_range *node) {
  if (!shk__granule_live(r)) shk__granule_empty--;
  uint64_t byte = UINT64_C(0xff) << 8 * i;
  r->lo = (r->lo & ~byte) | (uint64_t)lo << 8 * i;
  r->last = (r->last & ~byte) | (uint64_t)last << 8 * i;
  r->node[i] = node;
}
static inline unsigned shk__granule_put(shk__granule *r, uintptr_t g, unsigned lo,
                                        unsigned last, shk__buf_range *node) {
  unsigned i = shk__granule_first_free(r);
  if (i == SHK__GRANULE_PIECES) return shk__granule_chain_put(r, g, lo, last, node);
  shk__granule_set(r, i, lo, last, node);
  return i;
}

/* Removes node's piece number `at` of block g, its record looked for at `slot` first
 * (shk__granule_find_at); false when it is not there. */
static inline bool shk__granule_take(uintptr_t g, unsigned at, uint32_t slot,
                                     const shk__buf_range *node) {
  unsigned k = at >> 3, i = at & 7;
  shk__granule *r = shk__granule_find_at(shk__granule_key(g, k), slot);
  if (!r || !(shk__granule_live(r) >> (8 * i + 7) & 1) || r->node[i] != node) return false;
  uint64_t byte = UINT64_C(0xff) << 8 * i;
  r->lo |= byte & SHK__GRANULE_FREE_LO;
  r->last &= ~byte;
  if (!shk__granule_live(r)) shk__granule_empty++;
  return true;
}

/* Whether n more records fit without shk__granules_rebuild. */
static inline bool shk__granule_has_room(size_t n) {
  return shk__granule_room >= n;
}

/* The emptied records the last rebuild kept (in chains of blocks that still hold a piece). */
extern size_t shk__granule_empty_kept;

/* Whether most records hold no piece, and enough more than the last rebuild had to keep that
 * another pays (a table whose emptied records all sit in live chains is not rebuilt again and
 * again). */
static inline bool shk__granules_mostly_empty(void) {
  return shk__granule_empty >= 1024 + 2 * shk__granule_empty_kept &&
         shk__granule_empty * 2 > shk__granule_used;
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
