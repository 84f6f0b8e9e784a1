/* The table of block records (buf_granules.h): a block's further records, adding, dropping,
 * rebuilding, the walk and the consistency check. Every function runs under the range index's
 * lock. */
#include <stdlib.h>
#include <string.h>

#include "buf_granules.h"

shk__granule *shk__granule_table;
size_t shk__granule_mask;
unsigned shk__granule_shift;
size_t shk__granule_used, shk__granule_empty, shk__granule_room, shk__granule_empty_kept;

/* The block (as allocated) holding the table, which starts at the next 64-byte boundary so that
 * each record is one cache line. */
static void *table_block;

#define TABLE_MIN 64

/* The block and the record number of a key. */
static uintptr_t block_of(uint64_t key) {
  return (uintptr_t)(((key & ~SHK__GRANULE_MORE) - 1) & ((UINT64_C(1) << SHK__GRANULE_NUMBER_SHIFT) - 1));
}
static unsigned number_of(uint64_t key) {
  return (unsigned)(((key & ~SHK__GRANULE_MORE) - 1) >> SHK__GRANULE_NUMBER_SHIFT);
}

/* Piece i of r: its offsets, and whether it is live. */
static unsigned lo_at(const shk__granule *r, unsigned i) { return (unsigned)(r->lo >> 8 * i) & 0xff; }
static unsigned last_at(const shk__granule *r, unsigned i) {
  return (unsigned)(r->last >> 8 * i) & 0xff;
}
static bool live_at(const shk__granule *r, unsigned i) {
  return shk__granule_live(r) >> (8 * i + 7) & 1;
}

/* The record after r (of block g), which r says exists. */
static shk__granule *next_of(const shk__granule *r, uintptr_t g) {
  return shk__granule_find(shk__granule_key(g, number_of(r->key) + 1));
}

/* Puts a copy of record r in table t (shift and mask as in the globals), at its first free slot
 * from home. */
static shk__granule *place(shk__granule *t, unsigned shift, size_t mask, const shk__granule *r) {
  size_t i = shk__granule_home_in(r->key, shift, mask);
  while (t[i].key) i = (i + 1) & mask;
  t[i] = *r;
  return &t[i];
}

static shk__granule *add_key(uint64_t key) {
  shk__granule r;
  memset(&r, 0, sizeof r);
  r.key = key;
  r.lo = SHK__GRANULE_FREE_LO;
  shk__granule_used++;
  shk__granule_empty++;
  shk__granule_room--;
  return place(shk__granule_table, shk__granule_shift, shk__granule_mask, &r);
}

shk__granule *shk__granules_add(uintptr_t g) { return add_key(shk__granule_key(g, 0)); }

bool shk__granule_chain_overlaps(const shk__granule *r, uintptr_t g, unsigned lo, unsigned last) {
  while (shk__granule_more(r)) {
    r = next_of(r, g);
    if (!r) return false; /* a broken chain: reported by the check */
    if (shk__granule_overlaps(r, lo, last)) return true;
  }
  return false;
}

unsigned shk__granule_chain_put(shk__granule *r, uintptr_t g, unsigned lo, unsigned last,
                                shk__buf_range *node) {
  while (shk__granule_first_free(r) == SHK__GRANULE_PIECES) {
    if (!shk__granule_more(r)) {
      /* Adding moves no record, so r stays where it is. */
      shk__granule *next = add_key(shk__granule_key(g, number_of(r->key) + 1));
      r->key |= SHK__GRANULE_MORE;
      r = next;
      break;
    }
    r = next_of(r, g);
  }
  return shk__granule_at(number_of(r->key), shk__granule_put(r, g, lo, last, node));
}

bool shk__granules_block_empty(const shk__granule *r, uintptr_t g) {
  for (; r; r = shk__granule_more(r) ? next_of(r, g) : NULL)
    if (shk__granule_live(r)) return false;
  return true;
}

/* Linear probing's deletion: the records after the gap that may not sit past it (their home is
 * not in the cyclic stretch (gap, slot]) move back into it, so that no search stops early. */
static void drop(shk__granule *r) {
  shk__granule *t = shk__granule_table;
  size_t m = shk__granule_mask, gap = (size_t)(r - t);
  shk__granule_used--;
  shk__granule_empty--;
  shk__granule_room++;
  for (size_t i = (gap + 1) & m; t[i].key; i = (i + 1) & m) {
    size_t home = shk__granule_home(t[i].key);
    bool stays = gap <= i ? (gap < home && home <= i) : (gap < home || home <= i);
    if (stays) continue;
    t[gap] = t[i];
    gap = i;
  }
  t[gap].key = 0;
}

void shk__granules_drop_block(uintptr_t g) {
  for (unsigned k = 0;; k++) {
    shk__granule *r = shk__granule_find(shk__granule_key(g, k));
    if (!r) return;
    bool more = shk__granule_more(r);
    drop(r);
    if (!more) return;
  }
}

/* Whether record r (in the table now) goes to a rebuilt table: its block holds a piece. */
static bool kept(const shk__granule *r) {
  uintptr_t g = block_of(r->key);
  return !shk__granules_block_empty(shk__granule_find(shk__granule_key(g, 0)), g);
}

int shk__granules_rebuild(void (*dropped)(uintptr_t g)) {
  const shk__granule *old = shk__granule_table;
  size_t keep = 0;
  for (size_t i = 0; old && i <= shk__granule_mask; i++) keep += old[i].key && kept(&old[i]);
  /* At most a quarter full after, so that as many records again can come before the next. */
  size_t slots = TABLE_MIN;
  while (slots < 4 * (keep + 1)) slots *= 2;
  void *block = shk__calloc(slots * sizeof(shk__granule) + 63, 1);
  if (!block) return SHK_ENOMEM;
  shk__granule *t = (shk__granule *)(((uintptr_t)block + 63) & ~(uintptr_t)63);
  unsigned sh = 64 - shk__bit_length(slots - 1);
  size_t empty = 0;
  for (size_t i = 0; old && i <= shk__granule_mask; i++) {
    const shk__granule *r = &old[i];
    if (!r->key) continue;
    if (kept(r)) {
      place(t, sh, slots - 1, r);
      empty += !shk__granule_live(r);
    } else if (number_of(r->key) == 0) {
      dropped(block_of(r->key));
    }
  }
  free(table_block);
  table_block = block;
  shk__granule_table = t;
  shk__granule_mask = slots - 1;
  shk__granule_shift = sh;
  shk__granule_used = keep;
  shk__granule_room = slots / 2 - keep;
  shk__granule_empty = shk__granule_empty_kept = empty;
  return SHK_OK;
}

size_t shk__granules_walk(void (*fn)(shk__buf_range *node, void *ctx), void *ctx) {
  size_t n = 0;
  for (size_t i = 0; shk__granule_table && i <= shk__granule_mask; i++) {
    const shk__granule *r = &shk__granule_table[i];
    uintptr_t base = r->key ? block_of(r->key) << SHK__GRANULE_BITS : 0;
    for (unsigned k = 0; r->key && k < SHK__GRANULE_PIECES; k++) {
      if (!live_at(r, k) || r->node[k]->start != base + lo_at(r, k)) continue;
      fn(r->node[k], ctx);
      n++;
    }
  }
  return n;
}

/* What is wrong with live piece i of record r, or NULL. */
static const char *piece_fault(const shk__granule *r, unsigned i) {
  const shk__buf_range *node = r->node[i];
  uintptr_t g = block_of(r->key), base = g << SHK__GRANULE_BITS;
  unsigned at = shk__granule_at(number_of(r->key), i);
  if (!node) return "names no buffer";

  bool head = shk__granule_of(node->start) == g;
  if (!head && shk__granule_of(node->end - 1) != g) return "lies outside its buffer";
  if ((head ? node->head_at : node->tail_at) != at) return "is not where its buffer says";
  uintptr_t lo = node->start > base ? node->start : base;
  uintptr_t end = node->end < base + SHK__GRANULE_SIZE ? node->end : base + SHK__GRANULE_SIZE;
  if (base + lo_at(r, i) != lo || base + last_at(r, i) + 1 != end) return "disagrees with its buffer";
  if (end - lo == SHK__GRANULE_SIZE) return "fills its block (it belongs in the tree)";
  return NULL;
}

/* Whether a live piece of the records of block g before r overlaps piece i of r. */
static bool overlaps_earlier(const shk__granule *r, unsigned i) {
  uintptr_t g = block_of(r->key);
  for (unsigned j = 0; j < i; j++)
    if (live_at(r, j) && lo_at(r, j) <= last_at(r, i) && last_at(r, j) >= lo_at(r, i)) return true;
  for (unsigned k = 0; k < number_of(r->key); k++) {
    const shk__granule *e = shk__granule_find(shk__granule_key(g, k));
    if (e && shk__granule_overlaps(e, lo_at(r, i), last_at(r, i))) return true;
  }
  return false;
}

size_t shk__granules_check(size_t *pieces, size_t *blocks) {
  size_t faults = 0, used = 0, empty = 0;
  *pieces = *blocks = 0;
  for (size_t s = 0; shk__granule_table && s <= shk__granule_mask; s++) {
    const shk__granule *r = &shk__granule_table[s];
    if (!r->key) continue;
    uintptr_t g = block_of(r->key);
    unsigned k = number_of(r->key);
    used++;
    empty += !shk__granule_live(r);
    *blocks += k == 0;
    const char *what = NULL;
    if ((r->lo | r->last) & SHK__GRANULE_TOPS || r->lo >> 40 != 0x7f7f7f || r->last >> 40)
      what = "has offsets out of the block";
    else if (shk__granule_find(r->key & ~SHK__GRANULE_MORE) != r) what = "cannot be found";
    else if (k >= SHK__GRANULE_CHAIN_MAX) what = "is past the most a block needs";
    else if (k > 0 && !shk__granule_find(shk__granule_key(g, k - 1))) what = "follows none";
    else if (shk__granule_more(r) && !next_of(r, g)) what = "says another follows, which is missing";
    if (what) {
      shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: record %u of block 0x%llx %s",
                        k, (unsigned long long)(g << SHK__GRANULE_BITS), what);
      faults++;
      continue;
    }
    for (unsigned i = 0; i < SHK__GRANULE_PIECES; i++) {
      if (!live_at(r, i)) continue;
      (*pieces)++;
      what = piece_fault(r, i);
      if (!what && overlaps_earlier(r, i)) what = "overlaps another piece";
      if (!what) continue;
      shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: block 0x%llx piece %u "
                        "[+%u, +%u] %s", (unsigned long long)(g << SHK__GRANULE_BITS),
                        shk__granule_at(k, i), lo_at(r, i), last_at(r, i),
                        what);
      faults++;
    }
  }
  if (used != shk__granule_used || empty != shk__granule_empty ||
      used + shk__granule_room != (shk__granule_table ? (shk__granule_mask + 1) / 2 : 0)) {
    shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: %lu block records (%lu empty), "
                      "%lu (%lu) counted", (unsigned long)used, (unsigned long)empty,
                      (unsigned long)shk__granule_used, (unsigned long)shk__granule_empty);
    faults++;
  }
  return faults;
}
