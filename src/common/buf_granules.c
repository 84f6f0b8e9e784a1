/* The table of block records for small ranges (buf_granules.h): adding, dropping, rebuilding,
 * the walk and the consistency check. Every function runs under the range index's lock. */
#include <stdlib.h>
#include <string.h>

#include "buf_granules.h"

shk__granule *shk__granule_table;
size_t shk__granule_mask;
unsigned shk__granule_shift;
size_t shk__granule_used, shk__granule_empty;

/* The block (as allocated) holding the table, which starts at the next 64-byte boundary so that
 * each record is one cache line. */
static void *table_block;

#define TABLE_MIN 64

/* first_free[mask]: the lowest clear bit of a live mask of SHK__GRANULE_PIECES bits. */
#define LOWEST_CLEAR(m) \
  ((m) & 1 ? ((m) & 2 ? ((m) & 4 ? ((m) & 8 ? ((m) & 16 ? 5 : 4) : 3) : 2) : 1) : 0)
#define FOUR_FROM(m) LOWEST_CLEAR(m), LOWEST_CLEAR((m) + 1), LOWEST_CLEAR((m) + 2), LOWEST_CLEAR((m) + 3)
#define SIXTEEN_FROM(m) FOUR_FROM(m), FOUR_FROM((m) + 4), FOUR_FROM((m) + 8), FOUR_FROM((m) + 12)
const uint8_t shk__granule_first_free[1u << SHK__GRANULE_PIECES] = {SIXTEEN_FROM(0), SIXTEEN_FROM(16)};

/* Puts a copy of record r in table t (mask m, shift sh), at its first free slot from home. */
static shk__granule *place(shk__granule *t, size_t m, unsigned sh, const shk__granule *r) {
  uintptr_t g = r->key - 1;
  size_t i = (size_t)(((uint64_t)g * UINT64_C(0x9E3779B97F4A7C15)) >> sh);
  while (t[i].key) i = (i + 1) & m;
  t[i] = *r;
  return &t[i];
}

shk__granule *shk__granules_add(uintptr_t g) {
  shk__granule r;
  memset(&r, 0, sizeof r);
  r.key = g + 1;
  shk__granule_used++;
  shk__granule_empty++;
  return place(shk__granule_table, shk__granule_mask, shk__granule_shift, &r);
}

/* Linear probing's deletion: the records after the gap that may not sit past it (their home is
 * not in the cyclic stretch (gap, slot]) move back into it, so that no search stops early. */
void shk__granules_drop(shk__granule *r) {
  shk__granule *t = shk__granule_table;
  size_t m = shk__granule_mask, gap = (size_t)(r - t);
  shk__granule_used--;
  shk__granule_empty--;
  for (size_t i = (gap + 1) & m; t[i].key; i = (i + 1) & m) {
    size_t home = shk__granule_home(t[i].key - 1);
    bool stays = gap <= i ? (gap < home && home <= i) : (gap < home || home <= i);
    if (stays) continue;
    t[gap] = t[i];
    gap = i;
  }
  t[gap].key = 0;
}

int shk__granules_rebuild(void (*dropped)(uintptr_t g)) {
  size_t keep = shk__granule_used - shk__granule_empty;
  /* At most a quarter full after, so that as many records again can come before the next. */
  size_t slots = TABLE_MIN;
  while (slots < 4 * (keep + 1)) slots *= 2;
  void *block = shk__calloc(slots * sizeof(shk__granule) + 63, 1);
  if (!block) return SHK_ENOMEM;
  shk__granule *t = (shk__granule *)(((uintptr_t)block + 63) & ~(uintptr_t)63);
  unsigned sh = 64 - shk__bit_length(slots - 1);
  for (size_t i = 0; shk__granule_table && i <= shk__granule_mask; i++) {
    const shk__granule *r = &shk__granule_table[i];
    if (!r->key) continue;
    if (r->live) place(t, slots - 1, sh, r);
    else dropped(r->key - 1);
  }
  free(table_block);
  table_block = block;
  shk__granule_table = t;
  shk__granule_mask = slots - 1;
  shk__granule_shift = sh;
  shk__granule_used = keep;
  shk__granule_empty = 0;
  return SHK_OK;
}

size_t shk__granules_walk(void (*fn)(shk__buf_range *node, void *ctx), void *ctx) {
  size_t n = 0;
  for (size_t i = 0; shk__granule_table && i <= shk__granule_mask; i++) {
    const shk__granule *r = &shk__granule_table[i];
    for (unsigned k = 0; r->key && k < SHK__GRANULE_PIECES; k++) {
      if (!(r->live >> k & 1)) continue;
      fn(r->node[k], ctx);
      n++;
    }
  }
  return n;
}

/* What is wrong with live piece k of record r, or NULL. */
static const char *piece_fault(const shk__granule *r, unsigned k) {
  const shk__buf_range *node = r->node[k];
  uintptr_t base = (r->key - 1) << SHK__GRANULE_BITS;
  if (!node) return "names no buffer";
  if (!node->in_granule || node->at_slot != k) return "is not where its buffer says";
  if (node->start != base + r->lo[k] || node->end != base + r->last[k] + 1)
    return "disagrees with its buffer";
  if (r->lo[k] > r->last[k]) return "is empty or reversed";
  for (unsigned j = 0; j < k; j++)
    if (r->live >> j & 1 && r->lo[j] <= r->last[k] && r->last[j] >= r->lo[k])
      return "overlaps another piece";
  return NULL;
}

size_t shk__granules_check(size_t *ranges) {
  size_t faults = 0, used = 0, empty = 0;
  *ranges = 0;
  for (size_t i = 0; shk__granule_table && i <= shk__granule_mask; i++) {
    const shk__granule *r = &shk__granule_table[i];
    if (!r->key) continue;
    used++;
    empty += r->live == 0;
    if (r->live & ~SHK__GRANULE_ALL || shk__granule_find(r->key - 1) != r) {
      shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: block record %lu cannot be "
                        "found or has a bad mask 0x%x", (unsigned long)i, (unsigned)r->live);
      faults++;
      continue;
    }
    for (unsigned k = 0; k < SHK__GRANULE_PIECES; k++) {
      if (!(r->live >> k & 1)) continue;
      (*ranges)++;
      const char *what = piece_fault(r, k);
      if (!what) continue;
      shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: block 0x%llx piece %u "
                        "[+%u, +%u] %s", (unsigned long long)((r->key - 1) << SHK__GRANULE_BITS),
                        k, (unsigned)r->lo[k], (unsigned)r->last[k], what);
      faults++;
    }
  }
  if (used != shk__granule_used || empty != shk__granule_empty) {
    shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: %lu block records (%lu empty), "
                      "%lu (%lu) counted", (unsigned long)used, (unsigned long)empty,
                      (unsigned long)shk__granule_used, (unsigned long)shk__granule_empty);
    faults++;
  }
  return faults;
}
