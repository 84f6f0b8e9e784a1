/* The index of live buffer ranges (buf_internal.h). A range is cut at aligned blocks of
 * SHK__GRANULE_SIZE bytes (buf_granules.h): the blocks it fills are one entry of the chunk tree
 * (buf_range_tree.h), and its part of a block it does not fill (its first and last, all of a
 * small range) is a piece in that block's record, its bytes' bits set in the record's bitmap.
 * Every block with a record is reserved in the tree by a marker entry, so that the tree's entries
 * stay disjoint and aligned, and an entry that would take in a block with a record is seen to
 * meet it. The ranges with pieces are on a list, for the walk. One lock guards it all. */
#include "buf_granules.h"
#include "buf_internal.h"
#include "buf_range_tree.h"
#include "buf_ranges_short.h"

/* The node of every entry that reserves a block for its record of small ranges
 * (buf_granules.h): [block start, block end), so that no range of the tree lies in a block that
 * has a record, and a range that would is seen to meet it. One node for all of them: such an
 * entry is known by this node and its start. Its place hints mean nothing. */
static shk__buf_blocks marker;

static inline bool is_marker(const shk__buf_blocks *node) { return node == &marker; }

/* A spin lock rather than an OS mutex: uncontended it costs one atomic exchange and one store
 * (a mutex pair cost about 10 ns of each create+release), and it needs no set-up. Sections are
 * short (two binary searches and a bounded memmove), so a waiter spins a little, then yields
 * its time slice so that a preempted holder can finish. Its values: buf_ranges_short.h. */
atomic_int shk__buf_ranges_lock = SHK__BUF_RANGES_FREE_LONG;
#define SPINS_BEFORE_YIELD 64

/* The contended way of take_lock(), out of line so that the uncontended one inlines. */
static SHK__NOINLINE void wait_for_lock(void) {
  do {
    /* Wait on plain loads so waiters do not bounce the line between cores with writes. */
    for (int spins = 0;
         atomic_load_explicit(&shk__buf_ranges_lock, memory_order_relaxed) == SHK__BUF_RANGES_HELD;
         spins++) {
      if (spins == SPINS_BEFORE_YIELD) {
        shk__os_yield();
        spins = 0;
      }
    }
  } while (atomic_exchange_explicit(&shk__buf_ranges_lock, SHK__BUF_RANGES_HELD,
                                    memory_order_acquire) == SHK__BUF_RANGES_HELD);
}

/* Either free value is taken (an exchange over a held lock changes nothing). */
static inline void take_lock(void) {
  if (SHK__UNLIKELY(atomic_exchange_explicit(&shk__buf_ranges_lock, SHK__BUF_RANGES_HELD,
                                             memory_order_acquire) == SHK__BUF_RANGES_HELD))
    wait_for_lock();
}

/* How a lock of the index goes: 0 not known yet, 1 just the exchange (the process state is
 * ready, SHK_DEBUG=lock is off), 2 followed by SHK_DEBUG=lock. Set before the first take and
 * never changed after (SHK_DEBUG is read once), so a give is followed exactly when its take was;
 * the long ways read it, the short ways see it in the lock's free value. */
static atomic_int lock_mode;

/* The give of any take: the free value that lets the short ways in once the mode is 1. */
static inline void unlock(void) {
  bool plain = atomic_load_explicit(&lock_mode, memory_order_relaxed) == 1;
  atomic_store_explicit(&shk__buf_ranges_lock,
                        plain ? SHK__BUF_RANGES_FREE : SHK__BUF_RANGES_FREE_LONG,
                        memory_order_release);
}

/* Held across fork() too, at its place in the lock order (internal.h, process_state.c): a
 * child's buffers need the index. */
void shk__buf_ranges_hold(void) { take_lock(); }
void shk__buf_ranges_release(void) { unlock(); }

static SHK__NOINLINE void lock_first(const void *site) {
  shk__process_state_ready();
  bool followed = shk__debug_on(SHK__DEBUG_LOCK);
  atomic_store_explicit(&lock_mode, followed ? 2 : 1, memory_order_release);
  if (followed) shk__lock_debug_take(SHK__LOCK_ORDER_RANGES, site);
}

/* The index's own lock and give. site: the caller of the index function, named by
 * SHK_DEBUG=lock. */
static inline void lock_at(const void *site) {
  if (SHK__UNLIKELY(atomic_load_explicit(&lock_mode, memory_order_acquire) != 1))
    lock_first(site);
  take_lock();
}

static inline void unlock_at(const void *site) {
  if (SHK__UNLIKELY(atomic_load_explicit(&lock_mode, memory_order_relaxed) == 2) &&
      !shk__lock_debug_give(SHK__LOCK_ORDER_RANGES, site))
    return;
  unlock();
}

/* Inlined in the index function, the site is its caller. */
static inline void lock(void) { lock_at(SHK__CALLER()); }
static inline void unlock_checked(void) { unlock_at(SHK__CALLER()); }

/* Guarded by the lock. */
static size_t marker_count; /* marker entries in the tree */
size_t shk__buf_ranges_live; /* ranges indexed (buf_ranges_short.h) */
shk__buf_range shk__buf_ranges_pieced = {.prev = &shk__buf_ranges_pieced,
                                         .next = &shk__buf_ranges_pieced};

/* What is wrong with a marker entry [s, e), or NULL. */
static const char *marker_fault(uintptr_t s, uintptr_t e) {
  if (s & (SHK__GRANULE_SIZE - 1) || e - s != SHK__GRANULE_SIZE) return "reserves no whole block";
  if (!shk__granule_find(shk__granule_key(shk__granule_of(s))))
    return "reserves a block with no record";
  return NULL;
}

/* What is wrong with the tree's entry [s, e) of a range's whole blocks, or NULL (below). */
static const char *blocks_fault(const shk__buf_blocks *entry, uintptr_t s, uintptr_t e);
/* The ranges indexed, counted by a walk that checks each range's notes of its parts (below). */
static size_t ranges_walked(size_t *faults);
/* The listed ranges' pieces: how many, their bytes; reports each piece not whole in its record
 * (below). */
static size_t listed_pieces(size_t *bytes, size_t *faults);

/* The tree's check of each live entry: a marker or a range's whole blocks; markers counted. */
static const char *entry_fault(const shk__buf_blocks *entry, uintptr_t s, uintptr_t e,
                               void *ctx) {
  if (!is_marker(entry)) return blocks_fault(entry, s, e);
  ++*(size_t *)ctx;
  return marker_fault(s, e);
}

/* The tree, the block records, and the counts of each. Reports each fault; how many. */
static size_t check_locked(void) {
  size_t markers = 0, blocks = 0, bits = 0, bytes = 0;
  size_t faults = shk__range_tree_check(entry_fault, &markers);
  faults += shk__granules_check(&bits, &blocks);
  size_t ranges = ranges_walked(&faults);
  size_t listed = listed_pieces(&bytes, &faults);
  /* Every listed piece's bits are set (listed_pieces): as many bits as their bytes means they
   * are disjoint and no other bit is set. */
  if (bytes != bits) {
    shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: %lu pieces of %lu bytes listed, "
                      "%lu bits set in the records", (unsigned long)listed, (unsigned long)bytes,
                      (unsigned long)bits);
    faults++;
  }
  if (markers != marker_count || blocks != marker_count || ranges != shk__buf_ranges_live) {
    shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: %lu blocks reserved in the tree, "
                      "%lu with records, %lu ranges; counted %lu reserved, %lu ranges",
                      (unsigned long)markers, (unsigned long)blocks, (unsigned long)ranges,
                      (unsigned long)marker_count, (unsigned long)shk__buf_ranges_live);
    faults++;
  }
  return faults;
}

/* After a change under SHK_DEBUG=buf: the whole index while it is small, else every 1 024th
 * call, so that a debug run with many buffers stays usable. */
void shk__buf_ranges_debug_check(void) {
  static size_t calls; /* guarded by the lock */
  lock();
  if (shk__buf_ranges_live <= 4096 || ++calls % 1024 == 0) check_locked();
  unlock_checked();
}

size_t shk__buf_ranges_check(void) {
  lock();
  size_t faults = check_locked();
  unlock_checked();
  return faults;
}

/* ---- a range's parts: pieces in block records (buf_granules.h), whole blocks in the tree ---- */

/* The blocks of [s, e): first gs and last ge, the whole ones [whole_from, whole_to) (none when
 * not below), and whether the first and the last hold a piece (a block the range does not fill;
 * the last only when it is not the first). In block numbers: the last block's end may be 2^64. */
typedef struct parts {
  uintptr_t gs, ge, whole_from, whole_to;
  bool head, tail;
} parts;

static inline parts parts_of(uintptr_t s, uintptr_t e) {
  parts p;
  p.gs = shk__granule_of(s);
  p.ge = shk__granule_of(e - 1);
  p.whole_from = p.gs + ((s & (SHK__GRANULE_SIZE - 1)) != 0);
  p.whole_to = shk__granule_of(e);
  p.head = p.gs < p.whole_from || p.gs >= p.whole_to;
  p.tail = p.ge != p.gs && p.ge >= p.whole_to;
  return p;
}

/* The piece of node in block g, as offsets there. */
static inline void piece_of(uintptr_t g, const shk__buf_range *node, unsigned *lo,
                            unsigned *last) {
  uintptr_t base = g << SHK__GRANULE_BITS;
  *lo = node->start > base ? (unsigned)(node->start - base) : 0;
  *last = node->end - base >= SHK__GRANULE_SIZE ? (unsigned)SHK__GRANULE_SIZE - 1
                                                : (unsigned)(node->end - base - 1);
}

static void marker_at(uintptr_t g) {
  marker.start = g << SHK__GRANULE_BITS;
  marker.end = marker.start + SHK__GRANULE_SIZE;
}

/* Reserves block g in the tree for its record. SHK_EOVERLAP when another range's whole blocks
 * take it in, SHK_ENOMEM. */
static int marker_insert(uintptr_t g) {
  const shk__buf_blocks *blocker;
  uintptr_t at;
  marker_at(g);
  int rc = shk__range_tree_insert(&marker, &blocker, &at);
  if (rc == SHK_OK) marker_count++;
  return rc;
}

/* Gives up block g's reservation (its record goes, or went: shk__granules_rebuild). */
static void marker_remove(uintptr_t g) {
  marker_at(g);
  if (shk__range_tree_remove(&marker)) marker_count--;
}

/* The record of block g, made (and the block reserved) when missing; the caller made room for
 * it. SHK_EOVERLAP when another range's whole blocks take the block in, SHK_ENOMEM. */
static int record_for(uintptr_t g, shk__granule **out) {
  shk__granule *r = shk__granule_find(shk__granule_key(g));
  if (!r) {
    int rc = marker_insert(g);
    if (rc != SHK_OK) return rc;
    r = shk__granules_add(g);
  }
  *out = r;
  return SHK_OK;
}

/* Puts node's whole blocks in the tree. A reserved block among them meets it only when a piece
 * is there; an empty one gives up its record and reservation. SHK_EOVERLAP, SHK_ENOMEM. */
static int whole_insert(shk__buf_range *node, const parts *p) {
  node->blocks.start = p->whole_from << SHK__GRANULE_BITS;
  node->blocks.end = p->whole_to << SHK__GRANULE_BITS;
  for (;;) {
    const shk__buf_blocks *blocker = NULL;
    uintptr_t at = 0;
    int rc = shk__range_tree_insert(&node->blocks, &blocker, &at);
    if (rc != SHK_EOVERLAP || !is_marker(blocker)) return rc;
    uintptr_t g = shk__granule_of(at);
    const shk__granule *r = shk__granule_find(shk__granule_key(g));
    if (r && shk__granule_live(r)) return SHK_EOVERLAP;
    marker_remove(g);
    shk__granules_drop_block(g);
  }
}

/* A range's pieces: their blocks' records (NULL where there is no such piece) and the offsets
 * there. */
typedef struct pieces {
  shk__granule *head, *tail;
  unsigned head_lo, head_last, tail_lo, tail_last;
} pieces;

/* Whether node's pieces overlap nothing in their records. */
static inline bool pieces_fit(const pieces *q) {
  if (q->head && shk__granule_overlaps(q->head, q->head_lo, q->head_last)) return false;
  return !q->tail || !shk__granule_overlaps(q->tail, q->tail_lo, q->tail_last);
}

/* Whether [start, end) lies in two words at most: never a whole block (four words or more). */
static inline bool in_two_words(uintptr_t start, uintptr_t end) {
  return ((end - 1) >> 6) - (start >> 6) <= 1;
}

/* Puts node's pieces, which fit, in their records, and node on the list when it has one. A range
 * of two words at most is noted as a pair (SHK__GRANULE_PAIR: the short remove takes one in a
 * block, take_pair_across one across). */
static inline void pieces_put(shk__buf_range *node, const pieces *q) {
  if (in_two_words(node->start, node->end)) { /* q->head is set: a piece in the first block */
    shk__granule_map *a = shk__granule_map_of(q->head);
    shk__granule_map *b = q->tail ? shk__granule_map_of(q->tail) : a;
    shk__granule_pair p = q->tail ? shk__granule_pair_across(q->head_lo, q->tail_last +
                                                                         SHK__GRANULE_SIZE)
                                  : shk__granule_pair_of(q->head_lo, q->head_last);
    shk__granule_pair_put(a, b, p);
    shk__buf_ranges_note_pair(node, shk__granule_slot(q->head), q->tail != NULL,
                              q->tail ? shk__granule_slot(q->tail) : 0, p);
    return;
  }
  node->head_piece = node->tail_piece = SHK__GRANULE_NONE;
  if (q->head) {
    shk__granule_put(q->head, q->head_lo, q->head_last);
    node->head_piece = SHK__GRANULE_HAS;
    node->head_slot = shk__granule_slot(q->head);
  }
  if (q->tail) {
    shk__granule_put(q->tail, q->tail_lo, q->tail_last);
    node->tail_piece = SHK__GRANULE_HAS;
    node->tail_slot = shk__granule_slot(q->tail);
  }
  if (q->head || q->tail) shk__buf_ranges_link(node);
}

/* Puts every part of node: first what can refuse it (its pieces' blocks, then its whole blocks),
 * then the pieces, which cannot be refused then. Records made for a refused range stay, empty,
 * for later. */
static int insert_parts(shk__buf_range *node, const parts *p, pieces *q) {
  /* Room for the records of both pieces (and more): none is made, or moved, by a rebuild in
   * between. A table mostly of emptied records (memory used once and given back: an arena freed,
   * its blocks never met again) is rebuilt without them too, before they lengthen every probe:
   * at once when the ranges are too few to hold pieces in half the records (two pieces each at
   * most), else when a scan finds it (shk__granules_mostly_empty). */
  if (!shk__granule_has_room(4) || shk__granule_used > 4 * shk__buf_ranges_live + 1024 ||
      shk__granules_mostly_empty()) {
    int rebuilt = shk__granules_rebuild(marker_remove);
    if (rebuilt != SHK_OK && !shk__granule_has_room(4)) return rebuilt;
  }
  int rc = SHK_OK;
  if (p->head && (rc = record_for(p->gs, &q->head)) != SHK_OK) return rc;
  if (p->tail && (rc = record_for(p->ge, &q->tail)) != SHK_OK) return rc;
  if (!pieces_fit(q)) return SHK_EOVERLAP;
  bool whole = p->whole_from < p->whole_to;
  if (whole) {
    if ((rc = whole_insert(node, p)) != SHK_OK) return rc;
    /* Records dropped on the way moved others. */
    if (p->head) q->head = shk__granule_find(shk__granule_key(p->gs));
    if (p->tail) q->tail = shk__granule_find(shk__granule_key(p->ge));
  }
  node->in_tree = whole;
  pieces_put(node, q);
  return SHK_OK;
}

/* Any range the short way (below) leaves: whole blocks, blocks with no record yet, pieces in
 * more than two words of a bitmap. */
static SHK__NOINLINE int insert_long(shk__buf_range *node) {
  /* The last block's end would be 2^64: its reservation could not be kept. No memory is there.
   * (The short way puts nothing there: the block never has a record.) */
  if (node->end > UINTPTR_MAX - (SHK__GRANULE_SIZE - 1)) return SHK_EOVERFLOW;
  parts p = parts_of(node->start, node->end);
  pieces q = {NULL, NULL, 0, 0, 0, 0};
  if (p.head) piece_of(p.gs, node, &q.head_lo, &q.head_last);
  if (p.tail) piece_of(p.ge, node, &q.tail_lo, &q.tail_last);
  return insert_parts(node, &p, &q);
}

/* insert_one's way for a range in two neighbouring blocks (buf_ranges_short.h), each piece in
 * two words of its bitmap at most. */
static SHK__ALWAYS_INLINE int insert_two(shk__buf_range *node, uintptr_t g, unsigned lo,
                                         unsigned last) {
  unsigned tail_last = last - (unsigned)SHK__GRANULE_SIZE;
  size_t head = shk__granule_find_slot(shk__granule_key(g));
  if (head == SHK__GRANULE_NOT_FOUND) return SHK__BUF_RANGES_NOT_SHORT;
  size_t tail = shk__granule_find_slot(shk__granule_key(g + 1));
  if (tail == SHK__GRANULE_NOT_FOUND) return SHK__BUF_RANGES_NOT_SHORT;
  shk__granule_map *hm = &shk__granule_maps[head], *tm = &shk__granule_maps[tail];
  if (in_two_words(node->start, node->end)) { /* a pair across */
    shk__granule_pair p = shk__granule_pair_across(lo, last);
    if (shk__granule_pair_overlaps(hm, tm, p)) return SHK_EOVERLAP;
    shk__granule_pair_put(hm, tm, p);
    shk__buf_ranges_note_pair(node, (uint32_t)head, true, (uint32_t)tail, p);
    return SHK_OK;
  }
  shk__granule_pair hp = shk__granule_pair_of(lo, SHK__GRANULE_SIZE - 1);
  shk__granule_pair tp = shk__granule_pair_of(0, tail_last);
  if (shk__granule_pair_overlaps(hm, hm, hp) || shk__granule_pair_overlaps(tm, tm, tp))
    return SHK_EOVERLAP;
  shk__granule_pair_put(hm, hm, hp);
  shk__granule_pair_put(tm, tm, tp);
  node->head_piece = node->tail_piece = SHK__GRANULE_HAS;
  node->head_slot = (uint32_t)head;
  node->tail_slot = (uint32_t)tail;
  node->in_tree = false;
  shk__buf_ranges_link(node);
  return SHK_OK;
}

/* The usual small range, inline and with no call: one piece of a block, or two pieces of
 * neighbouring blocks with no whole block between (a small range across a block boundary). */
static SHK__ALWAYS_INLINE int insert_short(shk__buf_range *node, uintptr_t start, uintptr_t end) {
  uintptr_t g, last;
  unsigned lo;
  switch (shk__buf_ranges_short_kind(start, end, &g, &lo, &last)) {
  case 1: return shk__buf_ranges_insert_one(node, g, lo, (unsigned)last);
  case 2: return insert_two(node, g, lo, (unsigned)last);
  default: return SHK__BUF_RANGES_NOT_SHORT;
  }
}

static int insert_range(shk__buf_range *node) {
  int rc = insert_short(node, node->start, node->end);
  return rc == SHK__BUF_RANGES_NOT_SHORT ? insert_long(node) : rc;
}

/* A pair across two blocks (shk__buf_ranges_note_pair): its two words out of both records. */
static bool take_pair_across(shk__buf_range *node) {
  uintptr_t g = shk__granule_of(node->start);
  size_t a = shk__granule_find_slot_at(shk__granule_key(g), node->head_slot);
  size_t b = shk__granule_find_slot_at(shk__granule_key(g + 1), node->tail_slot);
  bool had = a != SHK__GRANULE_NOT_FOUND && b != SHK__GRANULE_NOT_FOUND &&
             shk__granule_pair_take(&shk__granule_maps[a], &shk__granule_maps[b],
                                    shk__buf_ranges_noted_pair(node));
  shk__buf_ranges_forget(node);
  return had;
}

bool shk__buf_ranges_remove_across_done(shk__buf_range *node) {
  return shk__buf_ranges_remove_short_done(take_pair_across(node));
}

/* Takes node's pieces out of their records and node off the list, whatever they are (a pair in
 * a block or across, or pieces of any length); false when it had none there. */
static bool take_pieces(shk__buf_range *node) {
  if (shk__buf_ranges_pair_in_block(node)) return shk__buf_ranges_take_pair(node);
  if (node->head_piece == SHK__GRANULE_PAIR) return take_pair_across(node);
  bool head = node->head_piece != SHK__GRANULE_NONE, tail = node->tail_piece != SHK__GRANULE_NONE;
  if (!head && !tail) return false;
  parts p = parts_of(node->start, node->end);
  unsigned lo, last;
  bool had = false;
  if (head) {
    piece_of(p.gs, node, &lo, &last);
    had = shk__granule_take(p.gs, node->head_slot, lo, last);
  }
  if (tail) {
    piece_of(p.ge, node, &lo, &last);
    had |= shk__granule_take(p.ge, node->tail_slot, lo, last);
  }
  shk__buf_ranges_forget(node);
  return had;
}

/* Takes every part of node out; false when it had none there (removed already). */
static bool remove_range(shk__buf_range *node) {
  bool had = take_pieces(node);
  if (node->in_tree) had |= shk__range_tree_remove(&node->blocks);
  node->in_tree = false;
  return had;
}

static shk__buf_range *range_of(const shk__buf_blocks *entry) {
  return (shk__buf_range *)((unsigned char *)entry - offsetof(shk__buf_range, blocks));
}

static const char *blocks_fault(const shk__buf_blocks *entry, uintptr_t s, uintptr_t e) {
  const shk__buf_range *node = range_of(entry);
  parts p = parts_of(node->start, node->end);
  if (!node->in_tree) return "names a buffer that says it is not in the tree";
  if (s != entry->start || e != entry->end || p.whole_from >= p.whole_to ||
      s != p.whole_from << SHK__GRANULE_BITS || e != p.whole_to << SHK__GRANULE_BITS)
    return "is not its buffer's whole blocks";
  return NULL;
}

/* The walk over the tree: each range with no piece (the others are on their list). */
typedef struct tree_walk {
  void (*fn)(shk__buf_range *node, void *ctx);
  void *ctx;
  size_t n;
} tree_walk;

static void walk_entry(shk__buf_blocks *entry, void *ctx) {
  tree_walk *w = ctx;
  if (is_marker(entry)) return;
  shk__buf_range *node = range_of(entry);
  if (node->head_piece != SHK__GRANULE_NONE || node->tail_piece != SHK__GRANULE_NONE) return;
  w->fn(node, w->ctx);
  w->n++;
}

/* Calls fn for each range once (those with pieces from their list, the others from the tree);
 * how many. fn may not take its node off the list. */
static size_t walk_ranges(void (*fn)(shk__buf_range *node, void *ctx), void *ctx) {
  tree_walk w = {fn, ctx, 0};
  shk__range_tree_each(walk_entry, &w);
  /* No more than the ranges indexed: a list broken by a fault (the check says so) ends. */
  size_t most = shk__buf_ranges_live;
  for (shk__buf_range *n = shk__buf_ranges_pieced.next; n != &shk__buf_ranges_pieced && most--;
       n = n->next) {
    fn(n, ctx);
    w.n++;
  }
  return w.n;
}

/* Whether the piece [lo, last] of block g is set whole in the block's record. */
static bool piece_set(uintptr_t g, unsigned lo, unsigned last) {
  const shk__granule *r = shk__granule_find(shk__granule_key(g));
  if (!r) return false;
  const shk__granule_map *m = shk__granule_map_of(r);
  for (unsigned w = lo / 64; w <= last / 64; w++) {
    uint64_t b = shk__granule_word_mask(w, lo, last);
    if ((m->word[w] & b) != b) return false;
  }
  return true;
}

/* Whether node's note of its words, when it is a pair, names its bytes (in one block, or across
 * two with a tail piece noted). */
static bool pair_noted_right(const shk__buf_range *node) {
  if (node->head_piece != SHK__GRANULE_PAIR) return true;
  if (!in_two_words(node->start, node->end)) return false;
  uintptr_t base = shk__granule_of(node->start) << SHK__GRANULE_BITS;
  unsigned lo = (unsigned)(node->start - base), last = (unsigned)(node->end - 1 - base);
  bool across = last >= SHK__GRANULE_SIZE;
  shk__granule_pair p =
      across ? shk__granule_pair_across(lo, last) : shk__granule_pair_of(lo, last);
  return across == (node->tail_piece != SHK__GRANULE_NONE) && node->head_w0 == p.w0 &&
         node->head_w1 == p.w1 && node->head_m0 == p.m0 && node->head_m1 == p.m1;
}

static size_t listed_pieces(size_t *bytes, size_t *faults) {
  size_t n = 0, most = shk__buf_ranges_live;
  *bytes = 0;
  for (shk__buf_range *node = shk__buf_ranges_pieced.next; node != &shk__buf_ranges_pieced;
       node = node->next) {
    if (most-- == 0) {
      shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: the list of ranges with "
                        "pieces is longer than the ranges indexed (%lu)",
                        (unsigned long)shk__buf_ranges_live);
      ++*faults;
      break;
    }
    parts p = parts_of(node->start, node->end);
    unsigned lo, last;
    bool whole = true;
    if (node->head_piece != SHK__GRANULE_NONE) {
      piece_of(p.gs, node, &lo, &last);
      whole &= piece_set(p.gs, lo, last) && pair_noted_right(node);
      *bytes += last - lo + 1;
      n++;
    }
    if (node->tail_piece != SHK__GRANULE_NONE) {
      piece_of(p.ge, node, &lo, &last);
      whole &= piece_set(p.ge, lo, last);
      *bytes += last - lo + 1;
      n++;
    }
    bool noted = node->head_piece != SHK__GRANULE_NONE || node->tail_piece != SHK__GRANULE_NONE;
    if (noted && whole) continue;
    shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: buffer range [0x%llx, 0x%llx) "
                      "%s", (unsigned long long)node->start, (unsigned long long)node->end,
                      noted ? "has a piece whose bits are not set, or noted wrong"
                            : "is listed with no piece");
    ++*faults;
  }
  return n;
}

/* What is wrong with node's notes of its parts, against the parts its range has, or NULL (each
 * part itself is checked where it is kept). */
static const char *parts_fault(const shk__buf_range *node) {
  parts p = parts_of(node->start, node->end);
  if (p.head != (node->head_piece != SHK__GRANULE_NONE)) return "its first block's piece";
  if (p.tail != (node->tail_piece != SHK__GRANULE_NONE)) return "its last block's piece";
  if ((p.whole_from < p.whole_to) != node->in_tree) return "its whole blocks";
  return NULL;
}

static void check_one(shk__buf_range *node, void *ctx) {
  const char *what = parts_fault(node);
  if (!what) return;
  shk__debug_report(SHK__DEBUG_BUF, "range index inconsistent: buffer range [0x%llx, 0x%llx) "
                    "notes %s wrong", (unsigned long long)node->start,
                    (unsigned long long)node->end, what);
  ++*(size_t *)ctx;
}

static size_t ranges_walked(size_t *faults) { return walk_ranges(check_one, faults); }

/* ---- the index's functions (buf_internal.h); the short ways' long ways (buf_ranges_short.h) */

int shk__buf_ranges_change_done(int rc, const void *site) {
  bool observed = atomic_load_explicit(&shk__buf_observed, memory_order_relaxed);
  unlock_at(site);
  return rc == SHK_OK && observed ? SHK__BUF_RANGES_OBSERVED : rc;
}

/* The long ways' bodies, hot: called only from the cold entries below (SHK__COLD lays the short
 * ways' calls of those out apart), they would be made small, not fast, and so would what only
 * they call: a consume+release of a range of whole blocks went 90 -> 95 ns. */
static SHK__NOINLINE SHK__HOT int insert_general(shk__buf_range *node, bool held,
                                                 const void *site) {
  if (!held) lock_at(site);
  int rc = insert_range(node);
  if (rc == SHK_OK) shk__buf_ranges_live++;
  return shk__buf_ranges_change_done(rc, site);
}
int shk__buf_ranges_insert_general(shk__buf_range *node, bool held, const void *site) {
  return insert_general(node, held, site);
}

/* Out of line and reached by a jump, so that the usual range of one piece needs fewer registers
 * (the two ways together made the index function save six). */
int shk__buf_ranges_insert_two_done(shk__buf_range *node, uintptr_t g, unsigned lo,
                                    unsigned last) {
  return shk__buf_ranges_short_done(node, insert_two(node, g, lo, last));
}

int shk__buf_ranges_insert_seen(shk__buf_range *node) { return shk__buf_ranges_insert_fast(node); }

int shk__buf_ranges_insert(shk__buf_range *node) {
  int rc = shk__buf_ranges_insert_fast(node);
  return rc == SHK__BUF_RANGES_OBSERVED ? SHK_OK : rc;
}

static SHK__NOINLINE SHK__HOT bool remove_general(shk__buf_range *node, bool held,
                                                  const void *site) {
  if (!held) lock_at(site);
  if (remove_range(node)) shk__buf_ranges_live--;
  return shk__buf_ranges_change_done(SHK_OK, site) == SHK__BUF_RANGES_OBSERVED;
}
bool shk__buf_ranges_remove_general(shk__buf_range *node, bool held, const void *site) {
  return remove_general(node, held, site);
}

bool shk__buf_ranges_remove(shk__buf_range *node) { return shk__buf_ranges_remove_fast(node); }

size_t shk__buf_ranges_walk(void (*fn)(shk__buf_range *node, void *ctx), void *ctx) {
  lock();
  size_t n = walk_ranges(fn, ctx);
  unlock_checked();
  return n;
}

size_t shk__buf_ranges_count(void) {
  lock();
  size_t n = shk__buf_ranges_live;
  unlock_checked();
  return n;
}
