/* The parts of live ranges that do not fill an aligned block ("granule") of SHK__GRANULE_SIZE
 * bytes, kept by block: a hash table of records keyed by block number, each with a bitmap of its
 * block (one bit a byte, set where a live range has the byte). A range that lies in one block is
 * one piece; a longer one has a piece in its first and last block unless they are whole, and its
 * whole blocks in the chunk tree (buf_ranges.c), which also reserves every block that has a
 * record. So finding a small range's place is a hash probe and a test of one or two words,
 * whatever smaller boundary it crosses; a record holds any number of pieces. The bitmap does not
 * name the ranges: the ranges with pieces are on a list of their own (buf_ranges.c) for the walk.
 * buf_ranges.c holds the lock every function below needs. */
#ifndef SHMKIT_BUF_GRANULES_H
#define SHMKIT_BUF_GRANULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf_internal.h"

/* 512-byte blocks: a bitmap is 8 words, one 64-byte line; a 32-byte range crosses a block
 * boundary (two records) at 31 of 512 places. Another size (256 B to 4 KiB) may be given at build
 * time to measure it (docs/buf.md has 256 and 1 024); the tests follow it. */
#ifndef SHK__GRANULE_BITS
#define SHK__GRANULE_BITS 9
#endif
#define SHK__GRANULE_SIZE ((uintptr_t)1 << SHK__GRANULE_BITS)
#define SHK__GRANULE_WORDS (SHK__GRANULE_SIZE / 64)
_Static_assert(SHK__GRANULE_BITS >= 8 && SHK__GRANULE_BITS <= 12, "blocks of 256 B to 4 KiB");
/* A range's note of a piece (shk__buf_range's head_piece, tail_piece): none in that block; one;
 * one in two words at most, which the range notes (its first piece only). A node never
 * inserted, zeroed, has none. */
#define SHK__GRANULE_NONE 0
#define SHK__GRANULE_HAS 1
#define SHK__GRANULE_PAIR 2

/* A record: its key, probed 8 to a line; its bitmap is in an array beside the table (the same
 * slot). */
typedef struct shk__granule {
  /* shk__granule_key(block); 0: a free slot of the table. */
  uint64_t key;
} shk__granule;

/* A record's bitmap: bit b of word w is byte 64 w + b of the block. */
typedef struct shk__granule_map {
  uint64_t word[SHK__GRANULE_WORDS];
} shk__granule_map;

/* The table: a power of two of slots, open addressing with linear probing, at most half full;
 * before the first record, a table of one free slot (mask 0: never NULL, buf_granules.c). */
extern shk__granule *shk__granule_table;
extern shk__granule_map *shk__granule_maps;
extern size_t shk__granule_mask;
extern unsigned shk__granule_shift;
/* Records in use (those emptied are kept for reuse until a rebuild), and how many more fit
 * before the table is half full (0 before the first table). */
extern size_t shk__granule_used, shk__granule_room;

/* The block of an address. */
static inline uintptr_t shk__granule_of(uintptr_t address) { return address >> SHK__GRANULE_BITS; }

/* A record's key: block g + 1 (0 is a free slot). */
static inline uint64_t shk__granule_key(uintptr_t g) { return (uint64_t)g + 1; }

/* Where a key's record is first looked for: Fibonacci hashing of the block number (blocks far
 * apart, or at a stride of a power of two, do not meet). Neighbouring blocks are not placed side
 * by side as 128-byte blocks were (runs of 16): with a few hundred blocks, runs met runs in
 * clusters whose probe lengths varied from block to block, and whose mispredicted ends cost
 * consume+release with 1 000 live 3-5 ns, by where the arena fell (docs/buf.md). */
static inline size_t shk__granule_home_in(uint64_t key, unsigned shift, size_t mask) {
  return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> shift) & mask;
}
static inline size_t shk__granule_home(uint64_t key) {
  return shk__granule_home_in(key, shk__granule_shift, shk__granule_mask);
}

/* No record: the answer of the slot searches. */
#define SHK__GRANULE_NOT_FOUND SIZE_MAX

/* The slot of this key's record, or SHK__GRANULE_NOT_FOUND. The short ways work with slots: the
 * bitmap is at the same slot of shk__granule_maps, with no pointer difference worked out. */
static inline size_t shk__granule_find_slot(uint64_t key) {
  const shk__granule *t = shk__granule_table;
  for (size_t i = shk__granule_home(key);; i = (i + 1) & shk__granule_mask) {
    if (t[i].key == key) return i;
    if (t[i].key == 0) return SHK__GRANULE_NOT_FOUND;
  }
}

/* The record of this key, or NULL. */
static inline shk__granule *shk__granule_find(uint64_t key) {
  size_t i = shk__granule_find_slot(key);
  return i == SHK__GRANULE_NOT_FOUND ? NULL : &shk__granule_table[i];
}

/* A slot that no table has: a hint that is never taken. */
#define SHK__GRANULE_NO_SLOT UINT32_MAX

/* The slot of this key's record, looked for first at `slot` (where it was when the caller last saw
 * it): one load and one compare instead of the hash and the probe. Only a hint: a drop or a
 * rebuild may have moved the record since, or freed the table it was in; a slot outside the
 * table is not read, and a slot that holds another key (keys are unique in the table) sends the
 * search the usual way, so a stale hint never gives another block's record. */
static inline size_t shk__granule_find_slot_at(uint64_t key, size_t slot) {
  const shk__granule *t = shk__granule_table;
  if (slot <= shk__granule_mask && t[slot].key == key) return slot;
  return shk__granule_find_slot(key);
}

static inline shk__granule *shk__granule_find_at(uint64_t key, size_t slot) {
  size_t i = shk__granule_find_slot_at(key, slot);
  return i == SHK__GRANULE_NOT_FOUND ? NULL : &shk__granule_table[i];
}

/* Where r is in the table: its slot. */
static inline uint32_t shk__granule_slot(const shk__granule *r) {
  return (uint32_t)(r - shk__granule_table);
}

/* r's bitmap. */
static inline shk__granule_map *shk__granule_map_of(const shk__granule *r) {
  return &shk__granule_maps[r - shk__granule_table];
}

/* The bits of bytes lo to last (offsets in a block) in word w, which is one of theirs. */
static inline uint64_t shk__granule_word_mask(unsigned w, unsigned lo, unsigned last) {
  uint64_t m = ~UINT64_C(0);
  if (w == lo / 64) m &= ~UINT64_C(0) << (lo % 64);
  if (w == last / 64) m &= ~UINT64_C(0) >> (63 - last % 64);
  return m;
}

/* The short ways' form of bytes in at most two words: word w0 with mask m0 and word w1 with m1,
 * both of one block's bitmap (shk__granule_pair_of), or w0 its last word and w1 the next block's
 * first (shk__granule_pair_across); made, tested and put with no branch. */
typedef struct shk__granule_pair {
  unsigned w0, w1;
  uint64_t m0, m1;
} shk__granule_pair;

static inline shk__granule_pair shk__granule_pair_of(unsigned lo, unsigned last) {
  shk__granule_pair p;
  p.w0 = lo / 64;
  p.w1 = last / 64;
  uint64_t two = (uint64_t)0 - (uint64_t)(p.w1 != p.w0);
  uint64_t top = ~UINT64_C(0) >> (63 - last % 64);
  p.m0 = (~UINT64_C(0) << (lo % 64)) & (top | two);
  p.m1 = top & two;
  return p;
}

/* Bytes lo to last of the last word of a block and the first of the next (last counted from the
 * first block's start: SHK__GRANULE_SIZE to SHK__GRANULE_SIZE + 63). */
static inline shk__granule_pair shk__granule_pair_across(unsigned lo, unsigned last) {
  shk__granule_pair p = {SHK__GRANULE_WORDS - 1, 0, ~UINT64_C(0) << (lo % 64),
                         ~UINT64_C(0) >> (63 - last % 64)};
  return p;
}

/* Whether p meets a piece: word w0 of bitmap a, w1 of bitmap b (a again for a pair_of). */
static inline bool shk__granule_pair_overlaps(const shk__granule_map *a, const shk__granule_map *b,
                                              shk__granule_pair p) {
  return ((a->word[p.w0] & p.m0) | (b->word[p.w1] & p.m1)) != 0;
}

/* Whether r's pieces share a byte with offsets [lo, last]. */
static inline bool shk__granule_overlaps(const shk__granule *r, unsigned lo, unsigned last) {
  const shk__granule_map *m = shk__granule_map_of(r);
  for (unsigned w = lo / 64; w <= last / 64; w++)
    if (m->word[w] & shk__granule_word_mask(w, lo, last)) return true;
  return false;
}

/* Whether r holds a piece. */
static inline bool shk__granule_live(const shk__granule *r) {
  const shk__granule_map *m = shk__granule_map_of(r);
  uint64_t any = 0;
  for (unsigned w = 0; w < SHK__GRANULE_WORDS; w++) any |= m->word[w];
  return any != 0;
}

/* Puts p, which overlaps nothing, in bitmaps a and b as above. */
static inline void shk__granule_pair_put(shk__granule_map *a, shk__granule_map *b,
                                         shk__granule_pair p) {
  a->word[p.w0] |= p.m0;
  b->word[p.w1] |= p.m1;
}

/* Puts [lo, last] in r, where it overlaps nothing. */
static inline void shk__granule_put(shk__granule *r, unsigned lo, unsigned last) {
  shk__granule_map *m = shk__granule_map_of(r);
  for (unsigned w = lo / 64; w <= last / 64; w++) m->word[w] |= shk__granule_word_mask(w, lo, last);
}

/* Removes p from bitmaps a and b as above; false when it is not there whole (nothing changes
 * then). */
static SHK__ALWAYS_INLINE bool shk__granule_pair_take(shk__granule_map *a, shk__granule_map *b,
                                                      shk__granule_pair p) {
  if (((a->word[p.w0] & p.m0) ^ p.m0) | ((b->word[p.w1] & p.m1) ^ p.m1)) return false;
  a->word[p.w0] &= ~p.m0;
  b->word[p.w1] &= ~p.m1;
  return true;
}

/* Removes the pair p of block g (pair_of), its record looked for at `slot` first
 * (shk__granule_find_at); false when it is not there whole (nothing changes then). */
static SHK__ALWAYS_INLINE bool shk__granule_take_pair(uintptr_t g, uint32_t slot,
                                                      shk__granule_pair p) {
  size_t i = shk__granule_find_slot_at(shk__granule_key(g), slot);
  if (i == SHK__GRANULE_NOT_FOUND) return false;
  shk__granule_map *m = &shk__granule_maps[i];
  return shk__granule_pair_take(m, m, p);
}
/* The piece [lo, last] of block g, of any length (buf_granules.c). */
bool shk__granule_take_long(uintptr_t g, uint32_t slot, unsigned lo, unsigned last);

static SHK__ALWAYS_INLINE bool shk__granule_take(uintptr_t g, uint32_t slot, unsigned lo,
                                                 unsigned last) {
  if (SHK__UNLIKELY(last / 64 - lo / 64 > 1)) return shk__granule_take_long(g, slot, lo, last);
  return shk__granule_take_pair(g, slot, shk__granule_pair_of(lo, last));
}

/* Whether n more records fit without shk__granules_rebuild. */
static inline bool shk__granule_has_room(size_t n) {
  return shk__granule_room >= n;
}

/* Whether most records hold no piece (memory given back, an arena freed, whose blocks are not
 * met again): a rebuild drops them. Counted by a scan of the table once per as many new records
 * as half the table holds (at least 1 024), so that a change pays no count; false between. */
bool shk__granules_mostly_empty(void);

/* Adds the empty record of block g (not there yet; room checked). Moves no record. */
shk__granule *shk__granules_add(uintptr_t g);
/* Removes the record of block g, which holds no piece; other records may move (pointers to them
 * are stale after). */
void shk__granules_drop_block(uintptr_t g);
/* Makes room: a new table holding the records of blocks with pieces, sized for them and as many
 * more; `dropped` is called with each block left out. SHK_ENOMEM (nothing changes, nothing is
 * called). */
int shk__granules_rebuild(void (*dropped)(uintptr_t g));
/* Checks every record (SHK_DEBUG=buf): keys findable, free slots clear, the counts right; *bits
 * gets the bits set in all bitmaps, *blocks the blocks with records. How many faults (each
 * reported). */
size_t shk__granules_check(size_t *bits, size_t *blocks);

#endif
