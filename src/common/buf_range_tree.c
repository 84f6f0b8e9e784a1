/* The chunk tree of the live-range index (buf_range_tree.h): sorted chunks of starts and ends
 * (a two-level B+-tree), so a lookup is two searches over contiguous memory. Live entries never
 * overlap, so [s, e) overlaps one iff the live entry with the largest start below e ends after
 * s: containment included, O(log n). A removed entry leaves a dead one (end 0) where it was,
 * which the next insert at that place takes over: an entry renewed in place moves nothing. A
 * chunk is compacted when more than 3/4 of its entries are dead (DEAD_MOST), or when it is full
 * and an insert needs room; a chunk with no live entry goes, so that the walk from a dead entry
 * to the live one before it stays within a chunk and the next; other inserts add a bounded
 * memmove (one chunk, and rarely the chunk table). */
#include <stdlib.h>
#include <string.h>

#include "buf_range_tree.h"

#define CHUNK_MAX 128
/* The start of no range (a range starting there would be empty or wrap), kept in a chunk's
 * unused slots. */
#define NO_START UINTPTR_MAX

typedef struct chunk {
  uint32_t id; /* its number in by_id[], kept for its whole life */
  size_t n;    /* entries, dead ones included */
  size_t dead; /* entries with end 0 and node NULL: removed ranges, starts kept in order */
  /* Sorted; the slots from n on hold NO_START, so that a search runs over all CHUNK_MAX of
   * them in a fixed number of steps (chunk_count_le). */
  uintptr_t start[CHUNK_MAX];
  uintptr_t end[CHUNK_MAX];
  /* Whose range it is, for the walk over live buffers. A third array to move on insert and
   * remove (about +6% instructions per indexed create+release), kept apart from the ends: read
   * through the node instead, the end of the overlap check cost a second dependent cache miss
   * (consume+release with 100 000 live went from 175 to 320-350 ns). */
  shk__buf_blocks *node[CHUNK_MAX];
} chunk;

/* All guarded by the index's lock. firsts[i] == chunks[i]->start[0], kept apart so that the
 * table search touches one small array rather than every chunk. */
static chunk **chunks;
static uintptr_t *firsts;
static size_t chunk_count, chunk_capacity;
static size_t tree_count; /* live entries */

/* Each chunk's number for its whole life, so that a range's hint (shk__buf_blocks.at_chunk)
 * still names its chunk after the table has moved (a chunk added or dropped before it): by_id[]
 * is NULL for a number not in use, and freed numbers are used again first. */
static chunk **by_id;
static uint32_t *free_ids;
static size_t id_count, id_capacity, free_id_count;

/* Doubles two arrays that grow together (items of a_size and b_size bytes, *cap each; 16 at
 * first); *a and *b get the blocks as they are now. False when memory ran out: a block already
 * grown is kept (the caller stores it), *cap unchanged. */
static bool grow_pair(void **a, size_t a_size, void **b, size_t b_size, size_t *cap) {
  size_t n = *cap ? *cap * 2 : 16;
  void *na = shk__realloc(*a, n * a_size);
  if (!na) return false;
  *a = na;
  void *nb = shk__realloc(*b, n * b_size);
  if (!nb) return false;
  *b = nb;
  *cap = n;
  return true;
}

/* Makes room for one more chunk number. */
static bool id_room(void) {
  if (free_id_count > 0 || id_count < id_capacity) return true;
  void *ids = by_id, *frees = free_ids;
  bool grown = grow_pair(&ids, sizeof *by_id, &frees, sizeof *free_ids, &id_capacity);
  by_id = ids;
  free_ids = frees;
  return grown;
}

static chunk *chunk_new(void) {
  if (!id_room()) return NULL;
  chunk *ch = shk__malloc(sizeof *ch);
  if (!ch) return NULL;
  for (size_t i = 0; i < CHUNK_MAX; i++) ch->start[i] = NO_START;
  ch->id = free_id_count ? free_ids[--free_id_count] : (uint32_t)id_count++;
  by_id[ch->id] = ch;
  return ch;
}

static void chunk_free(chunk *ch) {
  by_id[ch->id] = NULL;
  free_ids[free_id_count++] = ch->id;
  free(ch);
}

/* How many of a chunk's starts are <= key (key < NO_START), counted in two rounds of
 * compares that do not wait for each other: the last start of each block of STRIDE picks the
 * block, then the block's own starts are counted. Unused slots are NO_START, so neither round
 * needs the count. A binary search was seven loads each waiting for the one before:
 * consume+release with 1 000 live took 74 ns with it, 66 ns this way (task-clock, min of 5),
 * though it runs about 60 more instructions. */
#define STRIDE 16
static inline size_t chunk_count_le_ahead(const chunk *ch, uintptr_t key, bool ahead) {
  const uintptr_t *a = ch->start;
  size_t b = 0;
  for (size_t j = STRIDE - 1; j < CHUNK_MAX; j += STRIDE) b += a[j] <= key;
  if (b == CHUNK_MAX / STRIDE) return CHUNK_MAX;
  if (ahead) {
    /* The block is known: its ends and nodes, which the caller reads and writes next, are
     * asked for while its starts are counted (a large index, whose chunks are out of cache). */
    size_t at = b * STRIDE;
    SHK__PREFETCH(&ch->end[at]);
    SHK__PREFETCH(&ch->end[at + STRIDE - 1]);
    SHK__PREFETCH(&ch->node[at]);
    SHK__PREFETCH(&ch->node[at + STRIDE - 1]);
  }
  a += b * STRIDE;
  size_t i = 0;
  for (size_t j = 0; j < STRIDE - 1; j++) i += a[j] <= key;
  return b * STRIDE + i;
}

static inline size_t chunk_count_le(const chunk *ch, uintptr_t key) {
  return chunk_count_le_ahead(ch, key, false);
}

/* Marks slots [from, to) of ch unused. */
static void clear_tail(chunk *ch, size_t from, size_t to) {
  for (size_t i = from; i < to; i++) ch->start[i] = NO_START;
}

/* Loads a chunk's starts in parallel: a binary search over a cold chunk would otherwise wait
 * for one cache miss after another (with 100 000 live ranges the chunks are far out of cache,
 * and this is most of the difference to 1 000). All CHUNK_MAX of them, not ch->n: reading the
 * count first waited for the chunk's first line before the other prefetches went out. The one
 * end read after the search is left to demand: prefetching all the ends measured no faster. */
/* A small index (up to PREFETCH_FROM chunks, about 64 KiB of starts) stays in cache between
 * calls: there the 16 prefetches were a tenth of consume+release with 1 000 live, for nothing. */
#define PREFETCH_FROM 32
static const chunk *prefetched(const chunk *ch) {
  if (chunk_count <= PREFETCH_FROM) return ch;
  for (size_t i = 0; i < CHUNK_MAX; i += 64 / sizeof(uintptr_t)) SHK__PREFETCH(&ch->start[i]);
  return ch;
}

/* How many of the sorted a[0..n) are <= key. Branch-free halving: random keys cost no
 * mispredictions. */
static size_t count_le(const uintptr_t *a, size_t n, uintptr_t key) {
  if (n == 0) return 0;
  const uintptr_t *base = a;
  while (n > 1) {
    size_t half = n / 2;
    base = base[half] <= key ? base + half : base;
    n -= half;
  }
  return (size_t)(base - a) + (*base <= key);
}

/* How many chunks begin at or before key (key < NO_START). A small table (up to FAN_FROM
 * chunks, in cache) by binary search; a larger one, padded with NO_START up to its capacity (a
 * power of two), in rounds of FAN compares that do not wait for each other, each narrowing to
 * one of FAN blocks: three rounds for 2 048 chunks where a binary search takes eleven dependent
 * steps (consume+release with 100 000 live: about 133 -> 124 ns; with 1 000 live, 16 chunks,
 * the rounds cost 6-10 ns more than the binary search). */
#define FAN 16
#define FAN_FROM 64
static size_t firsts_count_le(uintptr_t key) {
  if (chunk_count <= FAN_FROM) return count_le(firsts, chunk_count, key);
  /* The padding reaches the capacity, which never shrinks: the rounds go only over the
   * smallest power of two that holds the chunks in use. */
  const uintptr_t *a = firsts;
  size_t len = (size_t)1 << shk__bit_length(chunk_count - 1);
  while (len > FAN) {
    size_t step = len / FAN, k = 0;
    for (size_t j = 1; j <= FAN; j++) k += a[j * step - 1] <= key;
    if (k == FAN) return (size_t)(a - firsts) + len;
    a += k * step;
    len = step;
  }
  size_t k = 0;
  for (size_t j = 0; j < len; j++) k += a[j] <= key;
  return (size_t)(a - firsts) + k;
}

/* The chunk that holds (or would hold) start s: the last whose first start <= s, else 0. */
static size_t chunk_for(uintptr_t s) {
  size_t c = firsts_count_le(s);
  return c > 0 ? c - 1 : 0;
}

/* Whether an entry is a removed range's place holder. */
static inline bool dead_at(const chunk *ch, size_t i) { return ch->end[i] == 0; }

/* Where [s, e) would go: *c the chunk, *i the slot after the last entry whose start <= e - 1.
 * When nothing overlaps, no live start lies in [s, e) (dead ones may, see the insert). The
 * answer is the end of the nearest live entry at or before that slot, looked for leftwards
 * across dead entries (and into earlier chunks, each of which holds a live entry). */
static bool overlaps_locked(uintptr_t s, uintptr_t e, size_t *at_chunk, size_t *at_slot,
                            const shk__buf_blocks **blocker, uintptr_t *blocker_start) {
  /* The range with the largest start < e, i.e. start <= e - 1 (e > s >= 0, so e >= 1). */
  size_t c = firsts_count_le(e - 1);
  *at_chunk = 0;
  *at_slot = 0;
  if (c == 0) return false;
  const chunk *ch = prefetched(chunks[--c]);
  size_t i = chunk_count_le_ahead(ch, e - 1, chunk_count > PREFETCH_FROM);
  *at_chunk = c;
  *at_slot = i;
  for (;;) {
    while (i > 0 && dead_at(ch, i - 1)) i--;
    if (i > 0) {
      *blocker = ch->node[i - 1];
      *blocker_start = ch->start[i - 1];
      return ch->end[i - 1] > s;
    }
    if (c == 0) return false;
    ch = chunks[--c];
    i = ch->n;
  }
}

/* Shifts items i..n of array a (items of `size` bytes) up by one; no call for the empty tail of an
 * append. */
static inline void shift_up(void *a, size_t size, size_t i, size_t n) {
  unsigned char *b = a;
  if (n > i) memmove(b + (i + 1) * size, b + i * size, (n - i) * size);
}

/* Makes room for a chunk at table index at. SHK_ENOMEM. */
/* Makes the table hold one more chunk. SHK_ENOMEM. */
static int table_room(void) {
  if (chunk_count < chunk_capacity) return SHK_OK;
  void *table = chunks, *starts = firsts;
  size_t old_capacity = chunk_capacity;
  bool grown = grow_pair(&table, sizeof *chunks, &starts, sizeof *firsts, &chunk_capacity);
  chunks = table;
  firsts = starts;
  if (!grown) return SHK_ENOMEM;
  for (size_t i = old_capacity; i < chunk_capacity; i++) firsts[i] = NO_START;
  return SHK_OK;
}

static int table_insert(size_t at, chunk *ch) {
  if (table_room() != SHK_OK) return SHK_ENOMEM;
  memmove(chunks + at + 1, chunks + at, (chunk_count - at) * sizeof *chunks);
  memmove(firsts + at + 1, firsts + at, (chunk_count - at) * sizeof *firsts);
  chunks[at] = ch;
  firsts[at] = ch->start[0];
  chunk_count++;
  return SHK_OK;
}

static void table_remove(size_t at) {
  chunk_free(chunks[at]);
  memmove(chunks + at, chunks + at + 1, (chunk_count - at - 1) * sizeof *chunks);
  memmove(firsts + at, firsts + at + 1, (chunk_count - at - 1) * sizeof *firsts);
  firsts[--chunk_count] = NO_START;
}

/* Spreads the n entries of chunk ch, none dead, to every other slot, a dead entry after each
 * (2n <= CHUNK_MAX). Done when a range is put between two entries of such a chunk (put): it and
 * later ones there take over the dead entry beside them (revive) instead of shifting entries
 * towards a dead one further away or to the end, a loop and a misprediction or two. A chunk
 * that is only appended to through the append fast path is never spread. consume+release with 1 000 live:
 * 60 -> 51 ns (task-clock, min of 3), with 100 000 live about 124 -> 106-118 ns (bench_buf).
 * A dead entry's start is its live neighbour's end, which keeps the starts in order (ranges do
 * not overlap) and a live range the only entry with its start but for a touching neighbour's
 * dead one, which comes before it; the last one's is at most the next chunk's first start
 * (`next`), which may be a dead entry's inside the last range (a range put over the start of one
 * removed before it: a block reservation given up for whole blocks over it, say). The nodes' hints are left as they are (their chunk is still
 * right; a remove then finds its slot by a search of the chunk): writing them reached 64 buffer
 * objects out of cache, several microseconds per spread where an index of 100 000 ranges has
 * each chunk met only a few times (bench_buf --quick: 190-210 ns before spreading, 260-280
 * with the hints written). */
static void spread(chunk *ch, uintptr_t next) {
  for (size_t k = ch->n; k-- > 0;) {
    ch->start[2 * k] = ch->start[k];
    ch->end[2 * k] = ch->end[k];
    ch->node[2 * k] = ch->node[k];
    ch->start[2 * k + 1] = ch->end[k];
    ch->end[2 * k + 1] = 0;
    ch->node[2 * k + 1] = NULL;
  }
  if (ch->n && ch->start[2 * ch->n - 1] > next) ch->start[2 * ch->n - 1] = next;
  ch->dead = ch->n;
  ch->n *= 2;
}

/* Splits a full chunk in two halves. SHK_ENOMEM. */
static int split_chunk(size_t c) {
  chunk *ch = chunks[c];
  chunk *right = chunk_new();
  if (!right) return SHK_ENOMEM;
  size_t keep = ch->n / 2;
  right->n = ch->n - keep;
  memcpy(right->start, ch->start + keep, right->n * sizeof(uintptr_t));
  memcpy(right->end, ch->end + keep, right->n * sizeof(uintptr_t));
  memcpy(right->node, ch->node + keep, right->n * sizeof(shk__buf_blocks *));
  right->dead = 0;
  for (size_t i = 0; i < right->n; i++) right->dead += dead_at(right, i);
  size_t n = ch->n;
  ch->n = keep;
  int rc = table_insert(c + 1, right);
  if (rc != SHK_OK) {
    ch->n = n; /* the halves are still in place: undo by length */
    chunk_free(right);
  } else {
    clear_tail(ch, keep, n);
    ch->dead -= right->dead;
    /* The moved ranges were mostly just inserted (a chunk fills at its end) and are likely in
     * cache: their hints are set right rather than left to a search at their remove. */
    for (size_t i = 0; i < right->n; i++) {
      if (!right->node[i]) continue;
      right->node[i]->at_chunk = right->id;
      right->node[i]->at_slot = (uint32_t)i;
    }
  }
  return rc;
}

/* Where the last insert put its range (chunk number, slot): a range made just above it (malloc
 * handing out rising addresses, a consumer walking its memory) goes right after it with no
 * search (insert_at_finger). A hint like a range's own, checked before use. */
static uint32_t finger_chunk = UINT32_MAX, finger_slot;

static void note_place(chunk *ch, size_t i, shk__buf_blocks *node) {
  node->at_chunk = finger_chunk = ch->id;
  node->at_slot = finger_slot = (uint32_t)i;
}

/* Puts [s, e) at slot i of chunk ch, which has room; the caller sets firsts[] if i is 0. */
static void place_in(chunk *ch, size_t i, shk__buf_blocks *node) {
  shift_up(ch->start, sizeof *ch->start, i, ch->n);
  shift_up(ch->end, sizeof *ch->end, i, ch->n);
  shift_up(ch->node, sizeof *ch->node, i, ch->n);
  ch->start[i] = node->start;
  ch->end[i] = node->end;
  ch->node[i] = node;
  ch->n++;
  note_place(ch, i, node);
}

/* Puts [s, e) at slot i of chunk c, which has room. */
static void place(size_t c, size_t i, shk__buf_blocks *node) {
  chunk *ch = chunks[c];
  place_in(ch, i, node);
  firsts[c] = ch->start[0];
}

/* Takes over dead slot i of chunk c for node, whose start keeps the order there. */
static void revive(size_t c, size_t i, shk__buf_blocks *node) {
  chunk *ch = chunks[c];
  ch->start[i] = node->start;
  ch->end[i] = node->end;
  ch->node[i] = node;
  ch->dead--;
  if (i == 0) firsts[c] = node->start;
  note_place(ch, i, node);
}

/* Moves the entries [from, from + count) of ch one slot up (up) or down, all three arrays in
 * one loop: at most NEAR_DEAD + 1 entries, where three calls of memmove, each choosing its way
 * by a size that differs every time, cost more than the moves. */
static void move_by_one(chunk *ch, size_t from, size_t count, bool up) {
  if (up) {
    for (size_t k = from + count; k-- > from;) {
      ch->start[k + 1] = ch->start[k];
      ch->end[k + 1] = ch->end[k];
      ch->node[k + 1] = ch->node[k];
    }
  } else {
    for (size_t k = from; k < from + count; k++) {
      ch->start[k - 1] = ch->start[k];
      ch->end[k - 1] = ch->end[k];
      ch->node[k - 1] = ch->node[k];
    }
  }
}

/* How far from slot i a dead entry is looked for to take up a shift: two lines of ends. */
#define NEAR_DEAD 16

/* Puts node at slot i of chunk c (neither i - 1 nor i dead) by shifting the entries between it
 * and a dead entry at most NEAR_DEAD away, which the shift takes over: a few entries move
 * instead of the chunk's whole tail, whose stores (into lines of a large index that are out of
 * cache) the next locked instruction would wait for. False when there is none so near. */
static bool shift_into_dead(size_t c, size_t i, shk__buf_blocks *node) {
  chunk *ch = chunks[c];
  size_t n = ch->n, at;
  size_t j = i + 1;
  while (j < n && j <= i + NEAR_DEAD && !dead_at(ch, j)) j++;
  if (j < n && j <= i + NEAR_DEAD) {
    move_by_one(ch, i, j - i, true); /* [i, j) up by one, over dead j */
    at = i;
  } else {
    if (i < 2) return false;
    j = i - 2;
    while (j > 0 && j + NEAR_DEAD + 1 > i && !dead_at(ch, j)) j--;
    if (!dead_at(ch, j) || j + NEAR_DEAD + 1 < i) return false;
    move_by_one(ch, j + 1, i - 1 - j, false); /* (j, i) down by one, over dead j */
    at = i - 1;
  }
  revive(c, at, node);
  firsts[c] = ch->start[0]; /* a move down may have put a new entry at slot 0 */
  return true;
}

/* Puts node at slot i of chunk c, where start[i-1] <= its start < start[i]: over a dead
 * neighbour when there is one (nothing moves), else shifted in towards a near dead entry or the
 * end; false when the chunk is full. */
static bool put(size_t c, size_t i, shk__buf_blocks *node) {
  chunk *ch = chunks[c];
  if (i > 0 && dead_at(ch, i - 1)) revive(c, i - 1, node);
  else if (i < ch->n && dead_at(ch, i)) revive(c, i, node);
  else if (ch->dead && shift_into_dead(c, i, node)) return true;
  else if (i > 0 && 2 * ch->n <= CHUNK_MAX && ch->dead == 0) {
    spread(ch, c + 1 < chunk_count ? firsts[c + 1] : NO_START); /* i - 1 is now 2i - 2 */
    revive(c, 2 * i - 1, node);
  }
  else if (ch->n < CHUNK_MAX) place(c, i, node);
  else return false;
  return true;
}

/* Drops chunk c's dead entries. */
static void compact(size_t c) {
  chunk *ch = chunks[c];
  size_t k = 0;
  for (size_t i = 0; i < ch->n; i++) {
    if (dead_at(ch, i)) continue;
    ch->start[k] = ch->start[i];
    ch->end[k] = ch->end[i];
    ch->node[k] = ch->node[i];
    k++;
  }
  clear_tail(ch, k, ch->n);
  ch->n = k;
  ch->dead = 0;
  if (k) firsts[c] = ch->start[0];
}

/* The general insert: creates the first chunk, compacts or splits a full one. */
static int insert_locked(shk__buf_blocks *node) {
  uintptr_t s = node->start;
  if (chunk_count == 0) {
    chunk *ch = chunk_new();
    if (!ch) return SHK_ENOMEM;
    ch->n = ch->dead = 0;
    place_in(ch, 0, node);
    int rc = table_insert(0, ch);
    if (rc != SHK_OK) chunk_free(ch);
    return rc;
  }
  size_t c = chunk_for(s);
  size_t i = chunk_count_le(chunks[c], s);
  if (put(c, i, node)) return SHK_OK;
  if (chunks[c]->dead) {
    compact(c); /* a full chunk with dead entries, which are none of i's neighbours */
  } else {
    int rc = split_chunk(c);
    if (rc != SHK_OK) return rc;
    if (s >= firsts[c + 1]) c++;
  }
  chunk *ch = chunks[c];
  place(c, chunk_count_le(ch, s), node);
  return SHK_OK;
}

/* Finds node's entry: *ch and *i. First where its hint says (a node is indexed at most once, so
 * finding it there is proof; the start is compared too, for the one node of all markers), then by
 * its start in the hinted chunk (an insert before it or a compaction moved it within the chunk),
 * then by the two searches (a split or merge moved it). */
static bool find_entry(const shk__buf_blocks *node, chunk **out, size_t *slot) {
  chunk *ch = node->at_chunk < id_count ? by_id[node->at_chunk] : NULL;
  if (ch) {
    size_t i = node->at_slot;
    if (i < ch->n && ch->node[i] == node && ch->start[i] == node->start) {
      *out = ch;
      *slot = i;
      return true;
    }
  }
  for (int tries = 0; tries < 2; tries++) {
    if (tries == 1 || !ch) ch = chunks[chunk_for(node->start)];
    size_t i = chunk_count_le(ch, node->start);
    if (i > 0 && ch->node[i - 1] == node && ch->start[i - 1] == node->start) {
      *out = ch;
      *slot = i - 1;
      return true;
    }
  }
  return false;
}

/* The table index of chunk ch, which holds an entry starting at s: chunk_for(s) or, where the
 * chunks after ch begin at s too (dead entries keep their starts), one of those before it. */
static size_t table_index_of(const chunk *ch, uintptr_t s) {
  size_t c = chunk_for(s);
  while (c > 0 && chunks[c] != ch) c--;
  return c;
}

/* The share of dead entries past which a remove compacts a chunk. At half (before), a chunk
 * whose ranges all end, one after another (a batch of buffers released in order), was
 * compacted and merged on its way to empty: 3/4 cut create+release of 64 B with 10 000 live by
 * 43 instructions (1 187 -> 1 144) and about 8 ns. A dead run, walked by the overlap check, is
 * still at most 3/4 of a chunk. */
#define DEAD_MOST_NUM 3
#define DEAD_MOST_DEN 4

/* Marks node's entry dead; a chunk left with only dead entries goes (the last one stays, empty,
 * so that one buffer made and ended in a loop does not allocate a chunk each time), one with too
 * many is compacted and merged with a thin neighbour. */
bool shk__range_tree_remove(const shk__buf_blocks *node) {
  chunk *ch;
  size_t i;
  if (chunk_count == 0 || !find_entry(node, &ch, &i)) return false;
  ch->end[i] = 0;
  ch->node[i] = NULL;
  ch->dead++;
  tree_count--;
  if (ch->dead * DEAD_MOST_DEN <= ch->n * DEAD_MOST_NUM) return true;
  size_t c = table_index_of(ch, node->start);
  if (ch->dead == ch->n) {
    if (chunk_count > 1) table_remove(c);
    else {
      clear_tail(ch, 0, ch->n);
      ch->n = ch->dead = 0;
    }
    return true;
  }
  compact(c);
  /* Merge thin neighbours so the table does not fill with nearly empty chunks. */
  if (c + 1 < chunk_count && ch->n + chunks[c + 1]->n <= CHUNK_MAX / 2) {
    chunk *next = chunks[c + 1];
    memcpy(ch->start + ch->n, next->start, next->n * sizeof(uintptr_t));
    memcpy(ch->end + ch->n, next->end, next->n * sizeof(uintptr_t));
    memcpy(ch->node + ch->n, next->node, next->n * sizeof(shk__buf_blocks *));
    ch->n += next->n;
    ch->dead += next->dead;
    table_remove(c + 1);
  }
  return true;
}

/* A new range usually lies just above the last one inserted (malloc handing out rising
 * addresses, a consumer walking its memory). If the live entry at the finger (slot j) ends at
 * or before its start and the next entry (dead or live) starts at or after its end, nothing
 * overlaps it (live ranges are disjoint, so their ends rise with their starts: those before j
 * end by j's start, those after start at or after the next) and it goes at slot j + 1 with no
 * search. At the end of a chunk the next entry is the next chunk's: only the last chunk passes.
 * False (nothing done) when it does not fit there or the chunk is full. Nothing else is read:
 * in a large index any other chunk (the last one, say) would be a cache miss or two. */
static bool insert_at_finger(shk__buf_blocks *node) {
  chunk *ch = finger_chunk < id_count ? by_id[finger_chunk] : NULL;
  if (!ch) return false;
  size_t j = finger_slot, n = ch->n;
  if (j >= n || n == CHUNK_MAX || dead_at(ch, j) || ch->end[j] > node->start) return false;
  if (j + 1 < n ? ch->start[j + 1] < node->end : ch != chunks[chunk_count - 1]) return false;
  place_in(ch, j + 1, node);
  return true;
}


int shk__range_tree_insert(shk__buf_blocks *node, const shk__buf_blocks **blocker,
                           uintptr_t *blocker_start) {
  node->at_chunk = UINT32_MAX; /* no place until one is found */
  size_t c, i;
  int rc = SHK_OK;
  if (insert_at_finger(node)) rc = SHK_OK;
  else if (overlaps_locked(node->start, node->end, &c, &i, blocker, blocker_start))
    return SHK_EOVERLAP;
  /* The slot found for e - 1 is the slot for s unless dead starts lie in (s, e): then the
   * general way looks again. */
  else if (!(chunk_count > 0 && (i == 0 || chunks[c]->start[i - 1] <= node->start) &&
             put(c, i, node)))
    rc = insert_locked(node);
  if (rc == SHK_OK) tree_count++;
  return rc;
}

/* ---- consistency (SHK_DEBUG=buf) ---- */

/* Starts sorted in each chunk and across chunks (dead entries included), each live entry
 * non-empty and ending at or before the next live start, firsts[]
 * agreeing, dead counts right, no chunk without a live entry but a lone last one, and the count
 * right. Reports each fault; how many. */
size_t shk__range_tree_check(const char *(*fault)(const shk__buf_blocks *entry, uintptr_t start,
                                                  uintptr_t end, void *ctx),
                             void *ctx) {
  size_t faults = 0, total = 0;
  uintptr_t prev_start = 0, prev_end = 0;
  for (size_t c = 0; c < chunk_count; c++) {
    const chunk *ch = chunks[c];
    size_t dead = 0;
    for (size_t i = 0; i < ch->n && i < CHUNK_MAX; i++) dead += dead_at(ch, i);
    if (ch->n > CHUNK_MAX || dead != ch->dead || (ch->n == dead && chunk_count > 1)) {
      shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: chunk %lu holds %lu, %lu "
                        "dead (%lu counted)", (unsigned long)c, (unsigned long)ch->n,
                        (unsigned long)dead, (unsigned long)ch->dead);
      faults++;
      continue;
    }
    for (size_t i = ch->n; i < CHUNK_MAX; i++) {
      if (ch->start[i] == NO_START) continue;
      shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: chunk %lu slot %lu, past its "
                        "%lu entries, is not marked unused", (unsigned long)c, (unsigned long)i,
                        (unsigned long)ch->n);
      faults++;
      break;
    }
    if (ch->n && firsts[c] != ch->start[0]) {
      shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: chunk %lu starts at 0x%llx, "
                        "its table entry says 0x%llx", (unsigned long)c,
                        (unsigned long long)ch->start[0], (unsigned long long)firsts[c]);
      faults++;
    }
    for (size_t i = 0; i < ch->n; i++) {
      const shk__buf_blocks *node = ch->node[i];
      const char *what = NULL;
      if (ch->start[i] < prev_start) what = "is out of order";
      else if (dead_at(ch, i) && node) what = "is dead but names a buffer";
      else if (dead_at(ch, i)) what = NULL;
      else if (!node) what = "is live but names no buffer";
      else if (ch->end[i] <= ch->start[i]) what = "is empty or reversed";
      else if (ch->start[i] < prev_end) what = "overlaps the live one before";
      else what = fault(node, ch->start[i], ch->end[i], ctx);
      if (what) {
        shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: chunk %lu slot %lu "
                          "[0x%llx, 0x%llx) %s (buffer's own [0x%llx, 0x%llx))",
                          (unsigned long)c, (unsigned long)i, (unsigned long long)ch->start[i],
                          (unsigned long long)ch->end[i], what,
                          (unsigned long long)(node ? node->start : 0),
                          (unsigned long long)(node ? node->end : 0));
        faults++;
      }
      prev_start = ch->start[i];
      if (!dead_at(ch, i)) prev_end = ch->end[i];
    }
    total += ch->n - ch->dead;
  }
  for (size_t c = chunk_count; c < chunk_capacity; c++) {
    if (firsts[c] == NO_START) continue;
    shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: table slot %lu, past its %lu "
                      "chunks, is not marked unused", (unsigned long)c, (unsigned long)chunk_count);
    faults++;
    break;
  }
  if (total != tree_count) {
    shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: %lu entries in the tree, %lu "
                      "counted", (unsigned long)total, (unsigned long)tree_count);
    faults++;
  }
  return faults;
}

void shk__range_tree_each(void (*fn)(shk__buf_blocks *entry, void *ctx), void *ctx) {
  for (size_t c = 0; c < chunk_count; c++) {
    const chunk *ch = chunks[c];
    for (size_t i = 0; i < ch->n; i++)
      if (!dead_at(ch, i)) fn(ch->node[i], ctx);
  }
}
