/* The table of block records (buf_granules.h): adding, dropping, rebuilding and the consistency
 * check. Every function runs under the range index's lock. */
#include <stdlib.h>
#include <string.h>

#include "buf_granules.h"

/* Before the first table is made, a table of one free slot: a search meets its free slot at once,
 * so that no search tests for no table (two branches fewer per consume+release). It has no room,
 * so the first record makes a real table. */
static shk__granule no_table[1];
static shk__granule_map no_maps[1];
shk__granule *shk__granule_table = no_table;
shk__granule_map *shk__granule_maps = no_maps;
size_t shk__granule_mask;
unsigned shk__granule_shift = 63;
size_t shk__granule_used, shk__granule_room;
/* Records added since the table was last scanned for emptied ones (shk__granules_mostly_empty). */
static size_t added_since_scan;

/* The blocks (as allocated) holding the records and the bitmaps, each starting at the next
 * 64-byte boundary so that a bitmap is whole lines. */
static void *table_block, *maps_block;

#define TABLE_MIN 64

static uintptr_t block_of(uint64_t key) { return (uintptr_t)(key - 1); }

/* Puts a copy of record r and its bitmap in table t (shift and mask as in the globals), at its
 * first free slot from home. */
static shk__granule *place(shk__granule *t, shk__granule_map *maps, unsigned shift, size_t mask,
                           const shk__granule *r, const shk__granule_map *map) {
  size_t i = shk__granule_home_in(r->key, shift, mask);
  while (t[i].key) i = (i + 1) & mask;
  t[i] = *r;
  maps[i] = *map;
  return &t[i];
}

shk__granule *shk__granules_add(uintptr_t g) {
  shk__granule r = {shk__granule_key(g)};
  shk__granule_map none;
  memset(&none, 0, sizeof none);
  shk__granule_used++;
  shk__granule_room--;
  added_since_scan++;
  return place(shk__granule_table, shk__granule_maps, shk__granule_shift, shk__granule_mask, &r,
               &none);
}

/* Linear probing's deletion: the records after the gap that may not sit past it (their home is
 * not in the cyclic stretch (gap, slot]) move back into it, so that no search stops early. */
static void drop(shk__granule *r) {
  shk__granule *t = shk__granule_table;
  shk__granule_map *maps = shk__granule_maps;
  size_t m = shk__granule_mask, gap = (size_t)(r - t);
  shk__granule_used--;
  shk__granule_room++;
  for (size_t i = (gap + 1) & m; t[i].key; i = (i + 1) & m) {
    size_t home = shk__granule_home(t[i].key);
    bool stays = gap <= i ? (gap < home && home <= i) : (gap < home || home <= i);
    if (stays) continue;
    t[gap] = t[i];
    maps[gap] = maps[i];
    gap = i;
  }
  t[gap].key = 0;
  memset(&maps[gap], 0, sizeof maps[gap]);
}

void shk__granules_drop_block(uintptr_t g) {
  shk__granule *r = shk__granule_find(shk__granule_key(g));
  if (r) drop(r);
}

/* A block of n items of `size` bytes from its first 64-byte boundary on, zeroed; *block gets
 * what to free. */
static void *aligned_zeroed(size_t n, size_t size, void **block) {
  *block = shk__calloc(n * size + 63, 1);
  return *block ? (void *)(((uintptr_t)*block + 63) & ~(uintptr_t)63) : NULL;
}

int shk__granules_rebuild(void (*dropped)(uintptr_t g)) {
  const shk__granule *old = shk__granule_table;
  const shk__granule_map *old_maps = shk__granule_maps;
  size_t keep = 0;
  for (size_t i = 0; i <= shk__granule_mask; i++)
    keep += old[i].key && shk__granule_live(&old[i]);
  /* At most a quarter full after, so that as many records again can come before the next. */
  size_t slots = TABLE_MIN;
  while (slots < 4 * (keep + 1)) slots *= 2;
  void *block, *mblock;
  shk__granule *t = aligned_zeroed(slots, sizeof(shk__granule), &block);
  if (!t) return SHK_ENOMEM;
  shk__granule_map *maps = aligned_zeroed(slots, sizeof(shk__granule_map), &mblock);
  if (!maps) {
    free(block);
    return SHK_ENOMEM;
  }
  unsigned sh = 64 - shk__bit_length(slots - 1);
  for (size_t i = 0; i <= shk__granule_mask; i++) {
    const shk__granule *r = &old[i];
    if (!r->key) continue;
    if (shk__granule_live(r)) place(t, maps, sh, slots - 1, r, &old_maps[i]);
    else dropped(block_of(r->key));
  }
  free(table_block);
  free(maps_block);
  table_block = block;
  maps_block = mblock;
  shk__granule_table = t;
  shk__granule_maps = maps;
  shk__granule_mask = slots - 1;
  shk__granule_shift = sh;
  shk__granule_used = keep;
  shk__granule_room = slots / 2 - keep;
  added_since_scan = 0;
  return SHK_OK;
}

bool shk__granule_take_long(uintptr_t g, uint32_t slot, unsigned lo, unsigned last) {
  shk__granule *r = shk__granule_find_at(shk__granule_key(g), slot);
  if (!r) return false;
  shk__granule_map *m = shk__granule_map_of(r);
  for (unsigned w = lo / 64; w <= last / 64; w++) {
    uint64_t b = shk__granule_word_mask(w, lo, last);
    if ((m->word[w] & b) != b) return false;
  }
  for (unsigned w = lo / 64; w <= last / 64; w++)
    m->word[w] &= ~shk__granule_word_mask(w, lo, last);
  return true;
}

bool shk__granules_mostly_empty(void) {
  size_t due = shk__granule_used / 2 > 1024 ? shk__granule_used / 2 : 1024;
  if (added_since_scan < due) return false;
  added_since_scan = 0;
  size_t empty = 0;
  for (size_t i = 0; i <= shk__granule_mask; i++)
    empty += shk__granule_table[i].key && !shk__granule_live(&shk__granule_table[i]);
  return empty >= 1024 && empty * 2 > shk__granule_used;
}

static size_t bits_in(uint64_t w) {
  size_t n = 0;
  for (; w; w &= w - 1) n++;
  return n;
}

size_t shk__granules_check(size_t *bits, size_t *blocks) {
  size_t faults = 0, used = 0;
  *bits = *blocks = 0;
  for (size_t s = 0; s <= shk__granule_mask; s++) {
    const shk__granule *r = &shk__granule_table[s];
    const shk__granule_map *m = &shk__granule_maps[s];
    size_t set = 0;
    for (unsigned w = 0; w < SHK__GRANULE_WORDS; w++) set += bits_in(m->word[w]);
    const char *what = NULL;
    if (!r->key) {
      if (set) what = "is a free slot with bits set";
    } else {
      used++;
      (*blocks)++;
      *bits += set;
      if (shk__granule_find(r->key) != r) what = "cannot be found";
    }
    if (!what) continue;
    shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: slot %lu of the block records "
                      "(block 0x%llx) %s", (unsigned long)s,
                      (unsigned long long)(r->key ? block_of(r->key) << SHK__GRANULE_BITS : 0),
                      what);
    faults++;
  }
  if (used != shk__granule_used ||
      used + shk__granule_room != (shk__granule_mask + 1) / 2) {
    shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: %lu block records, %lu counted",
                      (unsigned long)used, (unsigned long)shk__granule_used);
    faults++;
  }
  return faults;
}
