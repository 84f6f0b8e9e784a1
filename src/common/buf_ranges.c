/* The index of live buffer ranges: sorted chunks of starts and ends (a two-level B+-tree), so a
 * lookup is two binary searches over contiguous memory. Live ranges never overlap, so [s, e)
 * overlaps one iff the range with the largest start below e ends after s: containment included,
 * O(log n). Inserts and removes add a bounded memmove (one chunk, and rarely the chunk table). */
#include <stdlib.h>
#include <string.h>

#include "buf_internal.h"

#define CHUNK_MAX 128

typedef struct chunk {
  size_t n;
  uintptr_t start[CHUNK_MAX]; /* sorted */
  uintptr_t end[CHUNK_MAX];
  /* Whose range it is, for the walk over live buffers. A third array to move on insert and
   * remove (about +6% instructions per indexed create+release), kept apart from the ends: read
   * through the node instead, the end of the overlap check cost a second dependent cache miss
   * (consume+release with 100 000 live went from 175 to 320-350 ns). */
  shk__buf_range *node[CHUNK_MAX];
} chunk;

/* A spin lock rather than an OS mutex: uncontended it costs one atomic exchange and one store
 * (a mutex pair cost about 10 ns of each create+release), and it needs no set-up. Sections are
 * short (two binary searches and a bounded memmove), so a waiter spins a little, then yields
 * its time slice so that a preempted holder can finish. Zero is unlocked. */
static atomic_int ranges_lock;
#define SPINS_BEFORE_YIELD 64

static void take_lock(void) {
  while (atomic_exchange_explicit(&ranges_lock, 1, memory_order_acquire) != 0) {
    /* Wait on plain loads so waiters do not bounce the line between cores with writes. */
    for (int spins = 0; atomic_load_explicit(&ranges_lock, memory_order_relaxed) != 0; spins++) {
      if (spins == SPINS_BEFORE_YIELD) {
        shk__os_yield();
        spins = 0;
      }
    }
  }
}

static void unlock(void) { atomic_store_explicit(&ranges_lock, 0, memory_order_release); }

/* Held across fork() too, at its place in the lock order (internal.h, process_state.c): a
 * child's buffers need the index. */
void shk__buf_ranges_hold(void) { take_lock(); }
void shk__buf_ranges_release(void) { unlock(); }

static void lock(void) {
  shk__process_state_ready();
  take_lock();
}

/* All guarded by ranges_lock. firsts[i] == chunks[i]->start[0], kept apart so that the table
 * search touches one small array rather than every chunk. */
static chunk **chunks;
static uintptr_t *firsts;
static size_t chunk_count, chunk_capacity;
static size_t range_count;

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

/* Loads a chunk's live starts in parallel: a binary search over a cold chunk would otherwise
 * wait for one cache miss after another (with 100 000 live ranges the chunks are far out of
 * cache, and this is most of the difference to 1 000). The one end read after it is left to
 * demand: prefetching all the ends measured no faster. */
static const chunk *prefetched(const chunk *ch) {
  for (size_t i = 0; i < ch->n; i += 64 / sizeof(uintptr_t)) SHK__PREFETCH(&ch->start[i]);
  return ch;
}

/* The chunk that holds (or would hold) start s: the last whose first start <= s, else 0. */
static size_t chunk_for(uintptr_t s) {
  size_t c = count_le(firsts, chunk_count, s);
  return c > 0 ? c - 1 : 0;
}

/* Where [s, e) would go: *c the chunk, *i the slot in it. When nothing overlaps, no live start
 * lies in [s, e), so the slot found for e - 1 is also the slot for s: one search serves both the
 * overlap check and the insertion. */
static bool overlaps_locked(uintptr_t s, uintptr_t e, size_t *at_chunk, size_t *at_slot) {
  /* The range with the largest start < e, i.e. start <= e - 1 (e > s >= 0, so e >= 1). */
  size_t c = count_le(firsts, chunk_count, e - 1);
  *at_chunk = 0;
  *at_slot = 0;
  if (c == 0) return false;
  const chunk *ch = prefetched(chunks[c - 1]);
  size_t i = count_le(ch->start, ch->n, e - 1);
  *at_chunk = c - 1;
  *at_slot = i;
  return i > 0 && ch->end[i - 1] > s;
}

/* Shifts a[i..n) by one either way; no call for the empty tail of an append or a last remove. */
static void shift_up(uintptr_t *a, size_t i, size_t n) {
  if (n > i) memmove(a + i + 1, a + i, (n - i) * sizeof *a);
}

static void shift_down(uintptr_t *a, size_t i, size_t n) {
  if (n > i + 1) memmove(a + i, a + i + 1, (n - i - 1) * sizeof *a);
}

static void shift_up_nodes(shk__buf_range **a, size_t i, size_t n) {
  if (n > i) memmove(a + i + 1, a + i, (n - i) * sizeof *a);
}

static void shift_down_nodes(shk__buf_range **a, size_t i, size_t n) {
  if (n > i + 1) memmove(a + i, a + i + 1, (n - i - 1) * sizeof *a);
}

/* Makes room for a chunk at table index at. SHK_ENOMEM. */
static int table_insert(size_t at, chunk *ch) {
  if (chunk_count == chunk_capacity) {
    size_t cap = chunk_capacity ? chunk_capacity * 2 : 16;
    chunk **nc = realloc(chunks, cap * sizeof *nc);
    if (!nc) return SHK_ENOMEM;
    chunks = nc;
    uintptr_t *nf = realloc(firsts, cap * sizeof *nf);
    if (!nf) return SHK_ENOMEM;
    firsts = nf;
    chunk_capacity = cap;
  }
  memmove(chunks + at + 1, chunks + at, (chunk_count - at) * sizeof *chunks);
  memmove(firsts + at + 1, firsts + at, (chunk_count - at) * sizeof *firsts);
  chunks[at] = ch;
  firsts[at] = ch->start[0];
  chunk_count++;
  return SHK_OK;
}

static void table_remove(size_t at) {
  free(chunks[at]);
  memmove(chunks + at, chunks + at + 1, (chunk_count - at - 1) * sizeof *chunks);
  memmove(firsts + at, firsts + at + 1, (chunk_count - at - 1) * sizeof *firsts);
  chunk_count--;
}

/* Splits a full chunk in two halves. SHK_ENOMEM. */
static int split_chunk(size_t c) {
  chunk *ch = chunks[c];
  chunk *right = malloc(sizeof *right);
  if (!right) return SHK_ENOMEM;
  size_t keep = ch->n / 2;
  right->n = ch->n - keep;
  memcpy(right->start, ch->start + keep, right->n * sizeof(uintptr_t));
  memcpy(right->end, ch->end + keep, right->n * sizeof(uintptr_t));
  memcpy(right->node, ch->node + keep, right->n * sizeof(shk__buf_range *));
  ch->n = keep;
  int rc = table_insert(c + 1, right);
  if (rc != SHK_OK) {
    ch->n += right->n; /* the halves are still in place: undo by length */
    free(right);
  }
  return rc;
}

/* Puts [s, e) at slot i of chunk c, which has room. */
static void place(size_t c, size_t i, shk__buf_range *node) {
  chunk *ch = chunks[c];
  shift_up(ch->start, i, ch->n);
  shift_up(ch->end, i, ch->n);
  shift_up_nodes(ch->node, i, ch->n);
  ch->start[i] = node->start;
  ch->end[i] = node->end;
  ch->node[i] = node;
  ch->n++;
  firsts[c] = ch->start[0];
}

/* The general insert: creates the first chunk, splits a full one. */
static int insert_locked(shk__buf_range *node) {
  uintptr_t s = node->start;
  if (chunk_count == 0) {
    chunk *ch = malloc(sizeof *ch);
    if (!ch) return SHK_ENOMEM;
    ch->n = 1;
    ch->start[0] = s;
    ch->end[0] = node->end;
    ch->node[0] = node;
    int rc = table_insert(0, ch);
    if (rc != SHK_OK) free(ch);
    return rc;
  }
  size_t c = chunk_for(s);
  if (chunks[c]->n == CHUNK_MAX) {
    int rc = split_chunk(c);
    if (rc != SHK_OK) return rc;
    if (s >= firsts[c + 1]) c++;
  }
  chunk *ch = chunks[c];
  size_t i = count_le(ch->start, ch->n, s);
  place(c, i, node);
  return SHK_OK;
}

static void remove_locked(uintptr_t s) {
  if (chunk_count == 0) return;
  size_t c = chunk_for(s);
  chunk *ch = chunks[c];
  size_t i = count_le(ch->start, ch->n, s);
  if (i == 0 || ch->start[i - 1] != s) return;
  i--;
  shift_down(ch->start, i, ch->n);
  shift_down(ch->end, i, ch->n);
  shift_down_nodes(ch->node, i, ch->n);
  ch->n--;
  range_count--;
  if (ch->n == 0) {
    /* The last chunk stays, empty, so that one buffer created and released in a loop does not
     * allocate a chunk each time. Its stale firsts[] entry is harmless: it has no ranges. */
    if (chunk_count > 1) table_remove(c);
    return;
  }
  firsts[c] = ch->start[0];
  /* Merge thin neighbours so the table does not fill with nearly empty chunks. */
  if (c + 1 < chunk_count && ch->n + chunks[c + 1]->n <= CHUNK_MAX / 2) {
    chunk *next = chunks[c + 1];
    memcpy(ch->start + ch->n, next->start, next->n * sizeof(uintptr_t));
    memcpy(ch->end + ch->n, next->end, next->n * sizeof(uintptr_t));
    memcpy(ch->node + ch->n, next->node, next->n * sizeof(shk__buf_range *));
    ch->n += next->n;
    table_remove(c + 1);
  }
}

/* ---- consistency (SHK_DEBUG=buf) ---- */

/* Each chunk sorted, non-empty but for a lone last one, each range non-empty and ending at or
 * before the next start (also across chunks), firsts[] agreeing, each node holding the range
 * indexed for it, and the count right. Reports each fault; how many. */
static size_t check_locked(void) {
  size_t faults = 0, total = 0;
  uintptr_t prev_end = 0;
  for (size_t c = 0; c < chunk_count; c++) {
    const chunk *ch = chunks[c];
    if (ch->n > CHUNK_MAX || (ch->n == 0 && chunk_count > 1)) {
      shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: chunk %lu holds %lu",
                        (unsigned long)c, (unsigned long)ch->n);
      faults++;
      continue;
    }
    if (ch->n && firsts[c] != ch->start[0]) {
      shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: chunk %lu starts at 0x%llx, "
                        "its table entry says 0x%llx", (unsigned long)c, (unsigned long long)ch->start[0],
                        (unsigned long long)firsts[c]);
      faults++;
    }
    for (size_t i = 0; i < ch->n; i++) {
      const shk__buf_range *node = ch->node[i];
      const char *what = NULL;
      if (ch->end[i] <= ch->start[i]) what = "empty or reversed";
      else if (ch->start[i] < prev_end) what = "overlaps or is out of order with the one before";
      else if (node->start != ch->start[i] || node->end != ch->end[i]) what = "disagrees with its buffer";
      if (what) {
        shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: chunk %lu slot %lu "
                          "[0x%llx, 0x%llx) %s (buffer's own [0x%llx, 0x%llx))",
                          (unsigned long)c, (unsigned long)i,
                          (unsigned long long)ch->start[i], (unsigned long long)ch->end[i], what,
                          (unsigned long long)node->start, (unsigned long long)node->end);
        faults++;
      }
      prev_end = ch->end[i];
    }
    total += ch->n;
  }
  if (total != range_count) {
    shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: %lu ranges held, %lu counted",
                      (unsigned long)total, (unsigned long)range_count);
    faults++;
  }
  return faults;
}

/* After a change under SHK_DEBUG=buf: the whole index while it is small, else every 1 024th
 * change, so that a debug run with many buffers stays usable. */
static void debug_check_locked(void) {
  static size_t changes;
  if (SHK__UNLIKELY(shk__debug_on(SHK__DEBUG_BUF)) && (range_count <= 4096 || ++changes % 1024 == 0))
    check_locked();
}

size_t shk__buf_ranges_check(void) {
  lock();
  size_t faults = check_locked();
  unlock();
  return faults;
}

int shk__buf_ranges_insert_seen(shk__buf_range *node, bool *observed) {
  lock();
  int rc = SHK_EOVERLAP;
  size_t c, i;
  if (!overlaps_locked(node->start, node->end, &c, &i)) {
    if (chunk_count > 0 && chunks[c]->n < CHUNK_MAX) {
      place(c, i, node);
      rc = SHK_OK;
    } else {
      rc = insert_locked(node);
    }
    if (rc == SHK_OK) range_count++;
    debug_check_locked();
  }
  /* Read under the lock: see shk__buf_ranges_walk. */
  *observed = atomic_load_explicit(&shk__buf_observed, memory_order_relaxed);
  unlock();
  return rc;
}

int shk__buf_ranges_insert(shk__buf_range *node) {
  bool observed;
  return shk__buf_ranges_insert_seen(node, &observed);
}

bool shk__buf_ranges_remove(shk__buf_range *node) {
  lock();
  remove_locked(node->start);
  debug_check_locked();
  bool observed = atomic_load_explicit(&shk__buf_observed, memory_order_relaxed);
  unlock();
  return observed;
}

size_t shk__buf_ranges_walk(void (*fn)(shk__buf_range *node, void *ctx), void *ctx) {
  lock();
  size_t n = 0;
  for (size_t c = 0; c < chunk_count; c++) {
    const chunk *ch = chunks[c];
    for (size_t i = 0; i < ch->n; i++, n++) fn(ch->node[i], ctx);
  }
  unlock();
  return n;
}

size_t shk__buf_ranges_count(void) {
  lock();
  size_t n = range_count;
  unlock();
  return n;
}
