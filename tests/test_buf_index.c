/* The live-range index against a brute-force model: thousands of random inserts and removes
 * (pieces in block records, whole blocks and block reservations in the chunk tree, chunk splits,
 * merges, an emptied index) must give the same overlap answers. The tests of the tree's own ways
 * (spreading, compaction, hints) use whole blocks (U bytes), which only the tree keeps. */
/* ctest: labels=unit;internal timeout=120 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "os_faults.h"
#include "common/buf_granules.h"
#include "common/buf_internal.h"
#include "common/buf_ranges_short.h"

#define SLOTS 6000
#define BASE ((uintptr_t)1 << 40) /* far from any real buffer of this process */
#define U SHK__GRANULE_SIZE          /* one block */
/* Block n * 64 of the tests of block records, far from the other tests' ranges. Their nodes are
 * static, so that a failed test leaves none on a dead stack frame, kept by the index, for the
 * tests after it. */
#define FAR_BLOCK(n) (BASE + ((uintptr_t)1 << 31) + (uintptr_t)(n) * 64 * U)

/* Whether [s, e) can go in (taken out again at once), as the index answers: a node on the stack
 * is never left in the index, also when the answer is wrong (a list of ranges through a dead
 * frame would send the tests after into garbage). */
static int try_insert(uintptr_t s, uintptr_t e);

typedef struct model {
  shk__buf_range node;
  bool live;
} model;

static model ranges[SLOTS];
static uint32_t rng = 2463534242u;

static uint32_t next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

static bool model_overlaps(uintptr_t s, uintptr_t e) {
  for (size_t i = 0; i < SLOTS; i++)
    if (ranges[i].live && ranges[i].node.start < e && s < ranges[i].node.end) return true;
  return false;
}

/* Random inserts and removes checked against the model. With `follow`, half the inserts start
 * at or just past the end of the previous insert (the index's way without a search), with
 * lengths that often reach into the range after it. */
static void run_model(bool follow) {
  size_t base_count = shk__buf_ranges_count();
  size_t live = 0;
  uintptr_t last_end = BASE;
  for (int step = 0; step < 40000; step++) {
    uint32_t r = next_random();
    size_t i = r % SLOTS;
    if (ranges[i].live && (r & 0x30000) != 0) {
      shk__buf_ranges_remove(&ranges[i].node);
      ranges[i].live = false;
      live--;
    } else if (!ranges[i].live) {
      /* Random start and length on a grid small enough to collide often. */
      uintptr_t s = BASE + (uintptr_t)(next_random() % (SLOTS * 8)) * 16;
      if (follow && (r & 0x40000) && last_end < BASE + SLOTS * 8 * 16) s = last_end + (r >> 24) % 3;
      uintptr_t e = s + 1 + next_random() % 200;
      bool expected = model_overlaps(s, e);
      /* The index keeps the node itself (not a copy) while it is live. */
      ranges[i].node.start = s;
      ranges[i].node.end = e;
      int rc = shk__buf_ranges_insert(&ranges[i].node);
      if (rc == SHK_OK) { /* noted before the answer is judged: a node in is never reused */
        ranges[i].live = true;
        live++;
        last_end = e;
      }
      assert_int_equal(rc, expected ? SHK_EOVERLAP : SHK_OK);
    }
    if (step % 4000 == 0) {
      assert_int_equal(shk__buf_ranges_count(), base_count + live);
      assert_int_equal(shk__buf_ranges_check(), 0); /* sorted, counted, dead entries right */
    }
  }
  assert_true(live > 500); /* the index really held many ranges at once */
  for (size_t i = 0; i < SLOTS; i++) {
    if (!ranges[i].live) continue;
    assert_int_equal(try_insert(ranges[i].node.start, ranges[i].node.start + 1), SHK_EOVERLAP);
    shk__buf_ranges_remove(&ranges[i].node);
    ranges[i].live = false;
  }
  assert_int_equal(shk__buf_ranges_count(), base_count);
  /* Empty again: anything goes in, once. */
  shk__buf_range all = {.start = BASE, .end = BASE + (uintptr_t)SLOTS * 8 * 16 + 256};
  assert_int_equal(shk__buf_ranges_insert(&all), SHK_OK);
  assert_int_equal(shk__buf_ranges_insert(&all), SHK_EOVERLAP);
  shk__buf_ranges_remove(&all);
  assert_int_equal(shk__buf_ranges_count(), base_count);
}

static void random_ranges_agree_with_the_model(void **state) {
  (void)state;
  run_model(false);
}

static void ranges_that_follow_the_last_insert_agree_with_the_model(void **state) {
  (void)state;
  run_model(true);
}

static void ascending_and_descending_fills_split_and_merge_cleanly(void **state) {
  (void)state;
  static shk__buf_range seq[3000];
  for (size_t i = 0; i < 3000; i++) {
    seq[i].start = BASE + i * 10;
    seq[i].end = seq[i].start + 10; /* touching neighbours */
    assert_int_equal(shk__buf_ranges_insert(&seq[i]), SHK_OK);
  }
  for (size_t i = 0; i < 3000; i += 7) {
    assert_int_equal(try_insert(seq[i].start + 5, seq[i].start + 6), SHK_EOVERLAP);
  }
  for (size_t i = 3000; i-- > 0;) shk__buf_ranges_remove(&seq[i]);
  for (size_t i = 3000; i-- > 0;) assert_int_equal(shk__buf_ranges_insert(&seq[i]), SHK_OK);
  for (size_t i = 0; i < 3000; i += 2) shk__buf_ranges_remove(&seq[i]);
  for (size_t i = 0; i < 3000; i += 2) assert_int_equal(shk__buf_ranges_insert(&seq[i]), SHK_OK);
  for (size_t i = 0; i < 3000; i++) shk__buf_ranges_remove(&seq[i]);
  shk__buf_range all = {.start = BASE, .end = BASE + 30000};
  assert_int_equal(shk__buf_ranges_insert(&all), SHK_OK);
  shk__buf_ranges_remove(&all);
}

/* A removed range leaves a dead entry in place: a range inserted over it takes it over, and a
 * range that contains dead entries still hides every point inside it from later inserts. */
static void removed_places_neither_hide_nor_invent_overlaps(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  shk__buf_range a = {.start = BASE + 10, .end = BASE + 20};
  shk__buf_range b = {.start = BASE + 30, .end = BASE + 40};
  shk__buf_range c = {.start = BASE + 50, .end = BASE + 60};
  assert_int_equal(shk__buf_ranges_insert(&a), SHK_OK);
  assert_int_equal(shk__buf_ranges_insert(&b), SHK_OK);
  assert_int_equal(shk__buf_ranges_insert(&c), SHK_OK);
  shk__buf_ranges_remove(&a);
  shk__buf_ranges_remove(&b); /* two dead entries, at 10 and 30 */
  shk__buf_range wide = {.start = BASE + 5, .end = BASE + 45}; /* around both dead places */
  assert_int_equal(shk__buf_ranges_insert(&wide), SHK_OK);
  shk__buf_range in_dead = {.start = BASE + 31, .end = BASE + 32};
  shk__buf_range after = {.start = BASE + 45, .end = BASE + 50};
  assert_int_equal(shk__buf_ranges_insert(&in_dead), SHK_EOVERLAP); /* behind the dead 30 */
  assert_int_equal(shk__buf_ranges_insert(&after), SHK_OK);         /* touching both sides */
  shk__buf_range across = {.start = BASE + 44, .end = BASE + 46};
  assert_int_equal(shk__buf_ranges_insert(&across), SHK_EOVERLAP);
  assert_int_equal(shk__buf_ranges_count(), base_count + 3);
  assert_int_equal(shk__buf_ranges_check(), 0);
  /* Renewed in place many times: one entry, no growth. */
  for (int k = 0; k < 1000; k++) {
    shk__buf_ranges_remove(&after);
    assert_int_equal(shk__buf_ranges_insert(&after), SHK_OK);
  }
  assert_int_equal(shk__buf_ranges_count(), base_count + 3);
  shk__buf_ranges_remove(&after);
  shk__buf_ranges_remove(&wide);
  shk__buf_ranges_remove(&c);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
  shk__buf_range all = {.start = BASE, .end = BASE + 100};
  assert_int_equal(shk__buf_ranges_insert(&all), SHK_OK);
  shk__buf_ranges_remove(&all);
}

/* A remove goes first where the insert left the range (its hint). A hint made stale (the slot
 * now holds another range, the range moved by a split, compaction or merge, or it was removed
 * already) must neither remove another range nor miss its own. */
static void stale_places_remove_nothing_else(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  shk__buf_range a = {.start = BASE + 100 * U, .end = BASE + 110 * U};
  shk__buf_range b = {.start = BASE + 100 * U, .end = BASE + 105 * U}; /* a's place, once a is gone */
  assert_int_equal(shk__buf_ranges_insert(&a), SHK_OK);
  shk__buf_ranges_remove(&a);
  assert_int_equal(shk__buf_ranges_insert(&b), SHK_OK); /* takes over a's dead entry */
  shk__buf_ranges_remove(&a);                           /* a's hint names b's slot */
  assert_int_equal(shk__buf_ranges_count(), base_count + 1);
  shk__buf_range inside_b = {.start = BASE + 101 * U, .end = BASE + 102 * U};
  assert_int_equal(shk__buf_ranges_insert(&inside_b), SHK_EOVERLAP);
  shk__buf_ranges_remove(&b);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  /* Rising ranges take the way without a search (each above every live one); the chunks split
   * behind them, then removes in the same order compact, merge and drop chunks, so that most
   * hints are stale by the time their range goes. */
  static shk__buf_range up[2000];
  for (size_t i = 0; i < 2000; i++) {
    up[i].start = BASE + (1000 + i * 8) * U;
    up[i].end = up[i].start + 8 * U;
    assert_int_equal(shk__buf_ranges_insert(&up[i]), SHK_OK);
    assert_int_equal(try_insert(up[i].end - U, up[i].end + U), SHK_EOVERLAP); /* the last one */
  }
  assert_int_equal(shk__buf_ranges_check(), 0);
  for (size_t i = 0; i < 2000; i += 3) shk__buf_ranges_remove(&up[i]);
  for (size_t i = 0; i < 2000; i += 3) shk__buf_ranges_remove(&up[i]); /* removed already */
  for (size_t i = 0; i < 2000; i++) {
    shk__buf_range probe = {.start = up[i].start + 2 * U, .end = up[i].start + 3 * U};
    int rc = shk__buf_ranges_insert(&probe);
    assert_int_equal(rc, i % 3 == 0 ? SHK_OK : SHK_EOVERLAP);
    if (rc == SHK_OK) shk__buf_ranges_remove(&probe);
  }
  assert_int_equal(shk__buf_ranges_check(), 0);
  for (size_t i = 0; i < 2000; i++) shk__buf_ranges_remove(&up[i]);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

static int try_insert(uintptr_t s, uintptr_t e) {
  shk__buf_range probe = {.start = s, .end = e};
  int rc = shk__buf_ranges_insert(&probe);
  if (rc == SHK_OK) shk__buf_ranges_remove(&probe);
  return rc;
}

/* The search inside a chunk counts in blocks (the last start of each block, then the starts of
 * one block) over all its slots, the unused ones marked: every entry of a chunk filled to each
 * size from 1 to past full (a split) is found, at each place relative to the blocks, for a
 * point inside it, a range containing it, a range across it and the next, and the gaps beside
 * it, with the dead entries the gap probes leave behind. */
static void every_place_in_a_chunk_is_found_at_every_fill(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  static shk__buf_range r[140];
  for (size_t n = 0; n < 140; n++) {
    r[n].start = BASE + (16 * n + 4) * U;
    r[n].end = r[n].start + 8 * U;
    assert_int_equal(shk__buf_ranges_insert(&r[n]), SHK_OK);
    for (size_t k = 0; k <= n; k++) {
      uintptr_t s = r[k].start, e = r[k].end;
      assert_int_equal(try_insert(s + U, s + 2 * U), SHK_EOVERLAP);
      assert_int_equal(try_insert(s + 1, s + 2), SHK_EOVERLAP); /* a piece in a taken block */
      assert_int_equal(try_insert(s - 2 * U, e + 2 * U), SHK_EOVERLAP);
      if (k < n) assert_int_equal(try_insert(s + U, r[k + 1].start + U), SHK_EOVERLAP);
      assert_int_equal(try_insert(s - 4 * U, s), SHK_OK);
      assert_int_equal(try_insert(e, e + 4 * U), SHK_OK);
      assert_int_equal(try_insert(e, e + 1), SHK_OK);
    }
    if (n % 16 == 15 || n >= 126) assert_int_equal(shk__buf_ranges_check(), 0);
  }
  for (size_t n = 0; n < 140; n++) shk__buf_ranges_remove(&r[n]);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* A chunk is compacted once more than 3/4 of its entries are dead. Ranges ended one by one
 * from the middle of one chunk, across that point and on to one left, with everything still
 * live found, everything ended free again, and the index consistent at every step. */
static void ending_most_of_a_chunk_compacts_it_and_keeps_answers(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  static shk__buf_range r[100];
  static bool live[100];
  for (size_t k = 0; k < 100; k++) {
    r[k].start = BASE + (32 * k + 8) * U;
    r[k].end = r[k].start + 16 * U;
    assert_int_equal(shk__buf_ranges_insert(&r[k]), SHK_OK); /* one chunk: no split below 128 */
    live[k] = true;
  }
  for (size_t n = 0; n < 99; n++) {
    size_t k = (n * 37 + 11) % 100; /* every index but one, in a scattered order */
    if (!live[k]) k = (k + 1) % 100;
    while (!live[k]) k = (k + 1) % 100;
    shk__buf_ranges_remove(&r[k]);
    live[k] = false;
    assert_int_equal(shk__buf_ranges_check(), 0);
    assert_int_equal(shk__buf_ranges_count(), base_count + 99 - n);
    if (n % 8 != 0 && n < 70) continue; /* all answers: often, and at every step past 3/4 */
    for (size_t j = 0; j < 100; j++) {
      int rc = try_insert(r[j].start + 3 * U, r[j].start + 4 * U);
      assert_int_equal(rc, live[j] ? SHK_EOVERLAP : SHK_OK);
      assert_int_equal(try_insert(r[j].start + 3, r[j].start + 4), live[j] ? SHK_EOVERLAP : SHK_OK);
      assert_int_equal(try_insert(r[j].start - 8 * U, r[j].end + 8 * U),
                       live[j] ? SHK_EOVERLAP : SHK_OK);
    }
  }
  for (size_t k = 0; k < 100; k++)
    if (live[k]) shk__buf_ranges_remove(&r[k]);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* A range put between two entries of a packed chunk spreads it (a dead entry after each live
 * one, its start the live one's end): touching neighbours then share a start with a dead
 * entry before them, and must still be found, removed (by their hint and by a search after a
 * stale one), refused inside and beside, and taken back in place. */
static void a_range_between_packed_ones_spreads_the_chunk_and_neighbours_stay_exact(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  shk__buf_range a = {.start = BASE + 100 * U, .end = BASE + 110 * U};
  shk__buf_range b = {.start = BASE + 110 * U, .end = BASE + 120 * U}; /* touches a */
  shk__buf_range c = {.start = BASE + 130 * U, .end = BASE + 140 * U};
  shk__buf_range d = {.start = BASE + 120 * U, .end = BASE + 130 * U}; /* between b and c, touching both */
  assert_int_equal(shk__buf_ranges_insert(&a), SHK_OK);
  assert_int_equal(shk__buf_ranges_insert(&b), SHK_OK);
  assert_int_equal(shk__buf_ranges_insert(&c), SHK_OK);
  assert_int_equal(shk__buf_ranges_insert(&d), SHK_OK);
  assert_int_equal(shk__buf_ranges_check(), 0);
  assert_int_equal(shk__buf_ranges_count(), base_count + 4);
  const shk__buf_range *all[] = {&a, &b, &d, &c};
  for (size_t k = 0; k < 4; k++) {
    assert_int_equal(try_insert(all[k]->start, all[k]->start + U), SHK_EOVERLAP);
    assert_int_equal(try_insert(all[k]->start, all[k]->start + 1), SHK_EOVERLAP);
    assert_int_equal(try_insert(all[k]->end - U, all[k]->end), SHK_EOVERLAP);
    assert_int_equal(try_insert(all[k]->end - 1, all[k]->end), SHK_EOVERLAP);
    assert_int_equal(try_insert(all[k]->start - U, all[k]->end + U), SHK_EOVERLAP);
    assert_int_equal(try_insert(all[k]->start - 1, all[k]->end + 1), SHK_EOVERLAP);
  }
  assert_int_equal(try_insert(BASE + 99 * U, BASE + 100 * U), SHK_OK);
  assert_int_equal(try_insert(BASE + 140 * U, BASE + 141 * U), SHK_OK);
  /* b goes by its hint; b's place is free, its neighbours are not. */
  shk__buf_ranges_remove(&b);
  assert_int_equal(try_insert(BASE + 110 * U, BASE + 120 * U), SHK_OK);
  assert_int_equal(try_insert(BASE + 109 * U, BASE + 120 * U), SHK_EOVERLAP);
  assert_int_equal(try_insert(BASE + 110 * U, BASE + 121 * U), SHK_EOVERLAP);
  assert_int_equal(shk__buf_ranges_insert(&b), SHK_OK);
  /* b and d go after their hints were made stale: each found by its start, among the dead
   * entries beside it. */
  b.blocks.at_slot = 0;
  shk__buf_ranges_remove(&b);
  assert_int_equal(shk__buf_ranges_count(), base_count + 3);
  assert_int_equal(shk__buf_ranges_insert(&b), SHK_OK);
  d.blocks.at_slot = 0;
  shk__buf_ranges_remove(&d);
  assert_int_equal(shk__buf_ranges_count(), base_count + 3);
  assert_int_equal(try_insert(BASE + 120 * U, BASE + 130 * U), SHK_OK);
  assert_int_equal(shk__buf_ranges_check(), 0);
  shk__buf_ranges_remove(&a);
  shk__buf_ranges_remove(&b);
  shk__buf_ranges_remove(&c);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}


/* A packed chunk is spread when a range goes between two of its entries. Its last live range
 * may take in dead entries that begin the next chunk (their ranges ended, then a wider one took
 * the place): a dead entry after it, starting at its end, would lie past the next chunk's first
 * start, and the chunks would be out of order. */
static void spreading_a_chunk_keeps_it_before_the_next(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  static shk__buf_range r[300];
  uintptr_t at = BASE + ((uintptr_t)1 << 32); /* above every other test's ranges */
  for (size_t k = 0; k < 300; k++) { /* rising: full chunks split in halves of 64 */
    r[k].start = at + 4 * k * U;
    r[k].end = r[k].start + 2 * U;
    assert_int_equal(shk__buf_ranges_insert(&r[k]), SHK_OK);
  }
  /* Where the chunks end, by the ranges' place hints (a split sets those of the moved half):
   * the second end among them closes a chunk of 64 of these ranges, none dead. */
  size_t ends = 0, kb = 0;
  for (size_t k = 0; k + 3 < 300 && ends < 2; k++)
    if (r[k].blocks.at_chunk != r[k + 1].blocks.at_chunk && ++ends == 2) kb = k;
  assert_int_equal(ends, 2);
  shk__buf_ranges_remove(&r[kb]);
  shk__buf_ranges_remove(&r[kb + 1]); /* the next chunk begins with dead entries */
  shk__buf_ranges_remove(&r[kb + 2]);
  static shk__buf_range wide;
  wide = (shk__buf_range){.start = r[kb].start, .end = r[kb + 2].end}; /* over them, last of its chunk */
  assert_int_equal(shk__buf_ranges_insert(&wide), SHK_OK);
  assert_int_equal(shk__buf_ranges_check(), 0);
  static shk__buf_range between;
  between = (shk__buf_range){.start = r[kb - 10].end, .end = r[kb - 10].end + U}; /* spreads it */
  assert_int_equal(shk__buf_ranges_insert(&between), SHK_OK);
  assert_int_equal(shk__buf_ranges_check(), 0);
  assert_int_equal(try_insert(r[kb + 1].start, r[kb + 1].start + 1), SHK_EOVERLAP);
  assert_int_equal(try_insert(wide.end, wide.end + 1), SHK_OK);
  assert_int_equal(try_insert(r[kb + 3].start - 1, r[kb + 3].start + 1), SHK_EOVERLAP);
  assert_int_equal(try_insert(between.end, between.end + U), SHK_OK);
  shk__buf_ranges_remove(&between);
  shk__buf_ranges_remove(&wide);
  for (size_t k = 0; k < 300; k++) shk__buf_ranges_remove(&r[k]);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* ---- block records (buf_granules.h): a bitmap of each block ---- */

/* A block holds U one-byte ranges in its one record: every byte refused while live, across
 * blocks at its edges too, the whole block refused while one lives, and the bitmap still right
 * after every other range goes and wider ones fill the gaps. */
static void a_block_full_of_one_byte_ranges_sits_in_one_record(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  uintptr_t b = BASE + 7 * U;
  static shk__buf_range one[U];
  size_t records = shk__granule_used;
  for (size_t i = 0; i < U; i++) {
    one[i].start = b + i;
    one[i].end = b + i + 1;
    assert_int_equal(shk__buf_ranges_insert(&one[i]), SHK_OK);
  }
  assert_true(shk__granule_used <= records + 1); /* one record, or one more after a rebuild */
  assert_int_equal(shk__buf_ranges_check(), 0);
  assert_int_equal(shk__buf_ranges_count(), base_count + U);
  for (size_t i = 0; i < U; i++) {
    assert_int_equal(try_insert(b + i, b + i + 1), SHK_EOVERLAP);
    assert_int_equal(try_insert(b + i - 1, b + i + 2), SHK_EOVERLAP); /* across blocks at 0 */
  }
  assert_int_equal(try_insert(b, b + U), SHK_EOVERLAP);         /* the whole block */
  assert_int_equal(try_insert(b - U, b + 2 * U), SHK_EOVERLAP); /* around it */
  assert_int_equal(try_insert(b - U, b), SHK_OK);
  assert_int_equal(try_insert(b + U, b + 2 * U), SHK_OK);
  for (size_t i = 1; i < U; i += 2) shk__buf_ranges_remove(&one[i]);
  assert_int_equal(shk__buf_ranges_check(), 0);
  for (size_t i = 1; i < U; i += 2) {
    assert_int_equal(try_insert(b + i - 1, b + i + 1), SHK_EOVERLAP);
    assert_int_equal(try_insert(b + i, b + i + 1), SHK_OK);
  }
  for (size_t i = 0; i < U; i += 2) shk__buf_ranges_remove(&one[i]);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  /* Empty: the whole block, and more, goes in again (its record gives way). */
  assert_int_equal(try_insert(b, b + U), SHK_OK);
  assert_int_equal(try_insert(b - 3, b + 2 * U + 5), SHK_OK);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* Two ranges of a block, one live, the other tried at every offset and length that stays in the
 * block (lengths 1 to 140: one word of the bitmap, two, three): refused exactly when a byte is
 * shared (containment either way), taken when they only touch, whatever 64- or 128-byte boundary
 * either crosses; and the live one's bits are whole after each try. */
static void small_ranges_in_a_block_meet_at_every_offset_exactly(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  uintptr_t b = BASE + 11 * U;
  static shk__buf_range held;
  static const struct {
    unsigned lo, len;
  } live[] = {{120, 16}, {60, 8}, {0, 1}, {U - 1, 1}, {100, 130}, {200, 64}};
  for (size_t k = 0; k < SHK__ARRAY_LEN(live); k++) {
    held = (shk__buf_range){.start = b + live[k].lo, .end = b + live[k].lo + live[k].len};
    assert_int_equal(shk__buf_ranges_insert(&held), SHK_OK);
    for (uintptr_t lo = 0; lo < U; lo += (lo % 64 < 2 || lo % 64 > 61) ? 1 : 5) {
      for (uintptr_t len = 1; len <= 140 && lo + len <= U; len += len < 4 ? 1 : 7) {
        bool shares = lo < held.end - b && held.start - b < lo + len;
        assert_int_equal(try_insert(b + lo, b + lo + len), shares ? SHK_EOVERLAP : SHK_OK);
      }
    }
    assert_int_equal(shk__buf_ranges_check(), 0);
    shk__buf_ranges_remove(&held);
    assert_int_equal(try_insert(held.start, held.end), SHK_OK);
  }
  assert_int_equal(shk__buf_ranges_count(), base_count);
}

/* A range of two words across a block boundary is one pair, noted with both records (the last
 * word of one block, the first of the next): put the long way (records new) and the short way
 * (records kept), exact against every small range near the boundary, taken whole, and its notes
 * checked. A three-word range across stays two pieces. */
static void a_pair_across_a_block_boundary_is_exact_both_ways(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  uintptr_t edge = FAR_BLOCK(64) + U; /* the boundary of the block pair */
  static shk__buf_range pair;
  for (int round = 0; round < 2; round++) { /* the first puts new records, the second reuses them */
    pair = (shk__buf_range){.start = edge - 20, .end = edge + 10};
    assert_int_equal(shk__buf_ranges_insert(&pair), SHK_OK);
    assert_int_equal(pair.head_piece, SHK__GRANULE_PAIR);
    assert_int_equal(pair.tail_piece, SHK__GRANULE_HAS);
    assert_int_equal(shk__buf_ranges_check(), 0);
    for (uintptr_t lo = edge - 70; lo < edge + 40; lo++)
      for (uintptr_t len = 1; len <= 80; len += len < 4 ? 1 : 5) {
        bool shares = lo < pair.end && pair.start < lo + len;
        assert_int_equal(try_insert(lo, lo + len), shares ? SHK_EOVERLAP : SHK_OK);
      }
    assert_int_equal(shk__buf_ranges_check(), 0);
    shk__buf_ranges_remove(&pair);
    assert_int_equal(pair.head_piece, SHK__GRANULE_NONE);
    assert_int_equal(pair.tail_piece, SHK__GRANULE_NONE);
    assert_int_equal(try_insert(edge - 20, edge + 10), SHK_OK);
  }
  /* A stale note is found by the check. */
  assert_int_equal(shk__buf_ranges_insert(&pair), SHK_OK);
  pair.head_m1 ^= 2;
  size_t wrong = shk__buf_ranges_check();
  pair.head_m1 ^= 2;
  assert_true(wrong > 0);
  assert_int_equal(shk__buf_ranges_check(), 0);
  shk__buf_ranges_remove(&pair);
  /* Three words across: two pieces, as before. */
  static shk__buf_range wider;
  wider = (shk__buf_range){.start = edge - 100, .end = edge + 10};
  assert_int_equal(shk__buf_ranges_insert(&wider), SHK_OK);
  assert_int_equal(wider.head_piece, SHK__GRANULE_HAS);
  assert_int_equal(wider.tail_piece, SHK__GRANULE_HAS);
  assert_int_equal(try_insert(edge + 9, edge + 11), SHK_EOVERLAP);
  assert_int_equal(try_insert(edge - 101, edge - 100), SHK_OK);
  shk__buf_ranges_remove(&wider);
  assert_int_equal(try_insert(edge - 100, edge + 10), SHK_OK);
  assert_int_equal(shk__buf_ranges_check(), 0);
  assert_int_equal(shk__buf_ranges_count(), base_count);
}

/* A piece in more than two words of its bitmap (the long way, both to put and to take), beside
 * small ones in the same words: exact at both ends, taken whole, and nothing else taken. */
static void a_long_piece_and_small_ones_share_words_exactly(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  uintptr_t b = BASE + 13 * U;
  static shk__buf_range lead, longer, tail;
  lead = (shk__buf_range){.start = b + 3, .end = b + 9};
  longer = (shk__buf_range){.start = b + 9, .end = b + U - 70};
  tail = (shk__buf_range){.start = b + U - 70, .end = b + U - 60};
  assert_int_equal(shk__buf_ranges_insert(&lead), SHK_OK);
  assert_int_equal(shk__buf_ranges_insert(&longer), SHK_OK);
  assert_int_equal(shk__buf_ranges_insert(&tail), SHK_OK);
  assert_int_equal(longer.head_piece, SHK__GRANULE_HAS);
  assert_int_equal(lead.head_piece, SHK__GRANULE_PAIR);
  assert_int_equal(try_insert(b + 8, b + 10), SHK_EOVERLAP);
  assert_int_equal(try_insert(b + U - 71, b + U - 70), SHK_EOVERLAP);
  assert_int_equal(try_insert(b + U / 2, b + U / 2 + 1), SHK_EOVERLAP);
  assert_int_equal(try_insert(b, b + 3), SHK_OK);
  assert_int_equal(try_insert(b + U - 60, b + U), SHK_OK);
  assert_int_equal(shk__buf_ranges_check(), 0);
  shk__buf_ranges_remove(&longer);
  assert_int_equal(try_insert(b + 9, b + U - 70), SHK_OK);
  assert_int_equal(try_insert(b + 8, b + 9), SHK_EOVERLAP);
  assert_int_equal(try_insert(b + U - 70, b + U - 69), SHK_EOVERLAP);
  shk__buf_ranges_remove(&lead);
  shk__buf_ranges_remove(&tail);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* A node already in is refused (and keeps its place); a node removed twice, or never put in,
 * takes nothing: not the bytes of a range put in since at the same place. */
static void a_node_counts_once_in_and_once_out(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  uintptr_t b = BASE + 15 * U;
  static shk__buf_range first, again, never;
  first = (shk__buf_range){.start = b + 40, .end = b + 72};
  assert_int_equal(shk__buf_ranges_insert(&first), SHK_OK);
  assert_int_equal(shk__buf_ranges_insert(&first), SHK_EOVERLAP);
  assert_int_equal(shk__buf_ranges_count(), base_count + 1);
  assert_int_equal(shk__buf_ranges_check(), 0);
  shk__buf_ranges_remove(&first);
  again = (shk__buf_range){.start = b + 40, .end = b + 72};
  assert_int_equal(shk__buf_ranges_insert(&again), SHK_OK);
  shk__buf_ranges_remove(&first); /* removed already */
  never = (shk__buf_range){.start = b + 40, .end = b + 72};
  shk__buf_ranges_remove(&never); /* never in */
  assert_int_equal(shk__buf_ranges_count(), base_count + 1);
  assert_int_equal(try_insert(b + 50, b + 51), SHK_EOVERLAP);
  assert_int_equal(shk__buf_ranges_check(), 0);
  shk__buf_ranges_remove(&again);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* The walk (lens, shk_watch_add_buffers, the check) calls each range once, whatever its parts:
 * one piece, two, a piece and whole blocks on either side or both, whole blocks only; those with
 * pieces from their list, the others from the tree. Each removal takes it off. */
static shk__buf_range *walked[16];
static size_t walked_n;

static void note_walked(shk__buf_range *node, void *ctx) {
  (void)ctx;
  if (node->start >= FAR_BLOCK(60) && walked_n < SHK__ARRAY_LEN(walked)) walked[walked_n++] = node;
}

static void the_walk_names_each_range_once_whatever_its_parts(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  uintptr_t b = FAR_BLOCK(60);
  static shk__buf_range r[7];
  r[0] = (shk__buf_range){.start = b + 5, .end = b + 9};                       /* one piece */
  r[1] = (shk__buf_range){.start = b + 2 * U - 4, .end = b + 2 * U + 4};       /* two */
  r[2] = (shk__buf_range){.start = b + 4 * U + 7, .end = b + 7 * U};           /* piece, whole */
  r[3] = (shk__buf_range){.start = b + 8 * U, .end = b + 10 * U + 9};          /* whole, piece */
  r[4] = (shk__buf_range){.start = b + 12 * U + 1, .end = b + 15 * U + 1};     /* both */
  r[5] = (shk__buf_range){.start = b + 16 * U, .end = b + 18 * U};             /* whole only */
  r[6] = (shk__buf_range){.start = b + 20 * U + 60, .end = b + 20 * U + 400};  /* long piece */
  for (size_t i = 0; i < 7; i++) assert_int_equal(shk__buf_ranges_insert(&r[i]), SHK_OK);
  assert_int_equal(shk__buf_ranges_check(), 0);
  for (size_t gone = 0; gone <= 7; gone++) {
    walked_n = 0;
    size_t n = shk__buf_ranges_walk(note_walked, NULL);
    assert_int_equal(n, shk__buf_ranges_count());
    assert_int_equal(walked_n, 7 - gone);
    for (size_t i = gone; i < 7; i++) {
      size_t seen = 0;
      for (size_t k = 0; k < walked_n; k++) seen += walked[k] == &r[i];
      assert_int_equal(seen, 1);
    }
    if (gone < 7) shk__buf_ranges_remove(&r[gone]);
  }
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* A long range: a piece in its first block, whole blocks, a piece in its last. Small ranges
 * beside its pieces in those blocks go in; inside any of its blocks they do not; a range that
 * would take in a block with a live piece is refused, one whose blocks were emptied goes in. */
static void whole_blocks_and_pieces_meet_exactly(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  uintptr_t b = BASE + 64 * U;
  static shk__buf_range before, big, after, small[4];
  before = (shk__buf_range){.start = b + 10, .end = b + 60};
  big = (shk__buf_range){.start = b + 60, .end = b + 9 * U + 20};
  after = (shk__buf_range){.start = b + 9 * U + 20, .end = b + 9 * U + 100};
  assert_int_equal(shk__buf_ranges_insert(&before), SHK_OK);
  assert_int_equal(shk__buf_ranges_insert(&after), SHK_OK);
  assert_int_equal(shk__buf_ranges_insert(&big), SHK_OK); /* touches both */
  assert_int_equal(shk__buf_ranges_check(), 0);
  for (uintptr_t at = b + 60; at < b + 9 * U + 20; at += 37)
    assert_int_equal(try_insert(at, at + 1), SHK_EOVERLAP);
  assert_int_equal(try_insert(b + 59, b + 61), SHK_EOVERLAP);
  assert_int_equal(try_insert(b + 9 * U + 19, b + 9 * U + 21), SHK_EOVERLAP);
  assert_int_equal(try_insert(b + 2 * U, b + 3 * U), SHK_EOVERLAP); /* one whole block */
  assert_int_equal(try_insert(b, b + 10), SHK_OK);
  assert_int_equal(try_insert(b + 9 * U + 100, b + 10 * U), SHK_OK);
  shk__buf_ranges_remove(&big);
  assert_int_equal(shk__buf_ranges_check(), 0);
  /* Blocks 1 to 8 hold nothing now: a range over them all goes in, then the blocks of before
   * and after (live pieces) refuse a range taking them in whole. */
  assert_int_equal(try_insert(b + U, b + 9 * U), SHK_OK);
  assert_int_equal(try_insert(b, b + 9 * U), SHK_EOVERLAP);
  assert_int_equal(try_insert(b + U, b + 10 * U), SHK_EOVERLAP);
  /* Small ones put in a block, then ended: a range over that block takes the emptied record's
   * place. */
  for (size_t i = 0; i < 4; i++) {
    small[i].start = b + 4 * U + 20 * i;
    small[i].end = small[i].start + 10;
    assert_int_equal(shk__buf_ranges_insert(&small[i]), SHK_OK);
  }
  assert_int_equal(try_insert(b + 3 * U, b + 6 * U), SHK_EOVERLAP);
  for (size_t i = 0; i < 4; i++) shk__buf_ranges_remove(&small[i]);
  assert_int_equal(try_insert(b + 3 * U, b + 6 * U), SHK_OK);
  shk__buf_ranges_remove(&before);
  shk__buf_ranges_remove(&after);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* Records of blocks whose ranges ended stay for reuse, until the table needs room: then they go
 * with their reservations. Small ranges made and ended one at a time over many blocks must not
 * grow the index without bound. */
static void emptied_records_go_when_the_table_needs_room(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  size_t most = 0;
  for (size_t i = 0; i < 200000; i++) {
    uintptr_t at = BASE + 1000 * U + i * U + i % 100;
    assert_int_equal(try_insert(at, at + 8), SHK_OK);
    if (shk__granule_used > most) most = shk__granule_used;
  }
  assert_true(most < 20000); /* rebuilt many times, never near one record per block used */
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* The last block of the address space could not be reserved (its end is 2^64): a range there is
 * refused with SHK_EOVERFLOW, whichever way it would take (one piece, two pieces from the block
 * before, whole blocks), one ending right before it is kept. */
static void the_last_block_of_the_address_space_is_refused(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  uintptr_t top = UINTPTR_MAX - (U - 1); /* the last block starts here */
  static shk__buf_range below;
  below = (shk__buf_range){.start = top - 100, .end = top - 90}; /* the block before has a record */
  assert_int_equal(shk__buf_ranges_insert(&below), SHK_OK);
  assert_int_equal(try_insert(top, top + 10), SHK_EOVERFLOW);
  assert_int_equal(try_insert(top - 5, top + 1), SHK_EOVERFLOW); /* two pieces */
  assert_int_equal(try_insert(top - 2 * U, UINTPTR_MAX), SHK_EOVERFLOW);
  assert_int_equal(try_insert(UINTPTR_MAX - 1, UINTPTR_MAX), SHK_EOVERFLOW);
  assert_int_equal(try_insert(top + U / 2, UINTPTR_MAX), SHK_EOVERFLOW);
  assert_int_equal(try_insert(top - 3 * U - 7, top - 100), SHK_OK);
  assert_int_equal(try_insert(top - 90, top), SHK_OK);
  assert_int_equal(try_insert(top - 95, top), SHK_EOVERLAP);
  assert_int_equal(try_insert(top - 7, top), SHK_OK);
  shk__buf_ranges_remove(&below);
  assert_int_equal(try_insert(top - 3 * U, top), SHK_OK);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* Found by test_buf_overlap_model's threads: a range put over the start of a removed entry that
 * begins the next chunk (whole blocks over a block reservation given up, say), then its chunk
 * spread, left a dead entry at the chunk's end starting past that next one: starts out of order.
 * Built here step by step in a fresh index (a child): one chunk split in two, the second's first
 * entry removed, a range over its start put last in the first, the first compacted, then a range
 * put between two of its entries spreads it. */
SHK_CHILD_TEST(a_spread_chunk_keeps_its_starts_below_the_next_chunks, 30000) {
  (void)argc, (void)argv;
  static shk__buf_range r[129];
  for (size_t k = 0; k < 129; k++) { /* the 129th splits the chunk: 64 and 65 */
    r[k].start = BASE + 4 * k * U;
    r[k].end = r[k].start + U;
    if (shk__buf_ranges_insert(&r[k]) != SHK_OK) return 1;
  }
  shk__buf_ranges_remove(&r[64]); /* the second chunk's first entry, dead */
  shk__buf_range over = {.start = BASE + 254 * U, .end = BASE + 258 * U}; /* over its start */
  if (shk__buf_ranges_insert(&over) != SHK_OK) return 2;
  for (size_t k = 1; k <= 34; k++) shk__buf_ranges_remove(&r[k]); /* compacts the first */
  if (shk__buf_ranges_check() != 0) return 3;
  shk__buf_range between = {.start = BASE + 2 * U, .end = BASE + 3 * U};
  if (shk__buf_ranges_insert(&between) != SHK_OK) return 4;
  if (shk__buf_ranges_check() != 0) return 5;
  if (try_insert(BASE + 256 * U, BASE + 257 * U) != SHK_EOVERLAP) return 6;
  if (try_insert(BASE + 258 * U, BASE + 260 * U) != SHK_OK) return 7;
  return 0;
}

/* Every allocation an insert makes (the records' table rebuilt, a chunk or the chunk table of the
 * tree for a block's reservation or whole blocks) fails in turn: the insert says SHK_ENOMEM, the
 * index is as it was (counts, answers, its own check), and the same range goes in after. */
static void allocation_failures_leave_the_index_as_it_was(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  static shk__buf_range r[3000];
  size_t refused = 0;
  for (size_t i = 0; i < 3000; i++) {
    r[i].start = BASE + 9000 * U + i * 4 * U + (i % 7) * 19; /* fresh blocks, some crossed */
    r[i].end = r[i].start + 30 + (i % 5) * 90;                /* some with whole blocks */
    shk__fault_arm(SHK__FAULT_ALLOC, 1 + (unsigned)(i % 3), ENOMEM, false);
    int rc = shk__buf_ranges_insert(&r[i]);
    shk__fault_disarm_all();
    if (rc == SHK_ENOMEM) {
      refused++;
      assert_int_equal(shk__buf_ranges_count(), base_count + i);
      assert_int_equal(shk__buf_ranges_check(), 0);
      rc = shk__buf_ranges_insert(&r[i]);
    }
    assert_int_equal(rc, SHK_OK);
    assert_int_equal(try_insert(r[i].end - 1, r[i].end), SHK_EOVERLAP);
  }
  assert_true(refused > 10); /* rebuilds and chunk splits were met */
  assert_int_equal(shk__buf_ranges_check(), 0);
  for (size_t i = 0; i < 3000; i++) shk__buf_ranges_remove(&r[i]);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}


/* Adds one-byte ranges in blocks of their own until the table of records is made anew; each
 * goes into r (room for `most`); how many. */
static size_t until_rebuilt(shk__buf_range *r, size_t most, uintptr_t from) {
  const shk__granule *table = shk__granule_table;
  size_t mask = shk__granule_mask, n = 0;
  while (shk__granule_table == table && shk__granule_mask == mask) {
    assert_true(n < most);
    r[n].start = from + n * U;
    r[n].end = r[n].start + 1;
    assert_int_equal(shk__buf_ranges_insert(&r[n]), SHK_OK);
    n++;
  }
  return n;
}

/* A rebuild keeps the record of every block with a piece, bits and all, and drops the emptied
 * ones with their reservations: a range over an emptied block whole goes in after. */
static void a_rebuild_keeps_every_live_bit_and_drops_emptied_records(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  uintptr_t b = FAR_BLOCK(2);
  static shk__buf_range r[40];
  for (size_t i = 0; i < 40; i++) {
    r[i].start = b + (i / 10) * U + (U / 10) * (i % 10);
    r[i].end = r[i].start + 1 + (7 * i) % (U / 10 - 1); /* apart, whatever the block size */
    assert_int_equal(shk__buf_ranges_insert(&r[i]), SHK_OK);
  }
  for (size_t i = 10; i < 20; i++) shk__buf_ranges_remove(&r[i]); /* block 1 emptied */
  static shk__buf_range filler[1 << 17];
  size_t n = until_rebuilt(filler, 1 << 17, FAR_BLOCK(4));
  assert_int_equal(shk__buf_ranges_check(), 0);
  assert_null(shk__granule_find(shk__granule_key(shk__granule_of(b + U))));
  for (size_t i = 0; i < 40; i++) {
    bool ended = i >= 10 && i < 20;
    assert_int_equal(try_insert(r[i].start, r[i].end), ended ? SHK_OK : SHK_EOVERLAP);
    assert_int_equal(try_insert(r[i].end - 1, r[i].end), ended ? SHK_OK : SHK_EOVERLAP);
  }
  assert_int_equal(try_insert(b + U, b + 2 * U), SHK_OK);
  assert_int_equal(try_insert(b, b + 2 * U), SHK_EOVERLAP);
  for (size_t i = 0; i < 40; i++)
    if (i < 10 || i >= 20) shk__buf_ranges_remove(&r[i]);
  for (size_t i = 0; i < n; i++) shk__buf_ranges_remove(&filler[i]);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* The bits of [lo, last] of the record of the block at b flipped. */
static void flip_bits(uintptr_t b, unsigned lo, unsigned last) {
  shk__granule *r = shk__granule_find(shk__granule_key(shk__granule_of(b)));
  assert_non_null(r);
  shk__granule_map *m = shk__granule_map_of(r);
  for (unsigned w = lo / 64; w <= last / 64; w++) m->word[w] ^= shk__granule_word_mask(w, lo, last);
}

/* The check (SHK_DEBUG=buf) finds each fault put in on purpose, and none once it is undone
 * (each is undone before it is judged, so that a miss leaves the index whole for the tests
 * after): a stray bit that no range has, a range's bit cleared, a range whose noted words are
 * not its bytes', bits in a free slot, a wrong count of records, a range with pieces missing
 * from the list. */
static void the_check_reports_faults_put_in_on_purpose(void **state) {
  (void)state;
  uintptr_t b = FAR_BLOCK(3);
  static shk__buf_range r[3];
  for (size_t i = 0; i < 3; i++) {
    r[i] = (shk__buf_range){.start = b + 100 * i + 10, .end = b + 100 * i + 40};
    assert_int_equal(shk__buf_ranges_insert(&r[i]), SHK_OK);
  }
  assert_int_equal(shk__buf_ranges_check(), 0);
  flip_bits(b, 50, 50); /* a stray bit between r[0] and r[1] */
  size_t stray = shk__buf_ranges_check();
  flip_bits(b, 50, 50);
  assert_true(stray > 0);
  assert_int_equal(shk__buf_ranges_check(), 0);
  flip_bits(b, 125, 125); /* one of r[1]'s bits gone */
  size_t missing = shk__buf_ranges_check();
  flip_bits(b, 125, 125);
  assert_true(missing > 0);
  assert_int_equal(shk__buf_ranges_check(), 0);
  /* r[1] noted as other words (the bits themselves right). */
  assert_int_equal(r[1].head_piece, SHK__GRANULE_PAIR);
  r[1].head_m0 ^= 1;
  size_t noted = shk__buf_ranges_check();
  r[1].head_m0 ^= 1;
  assert_true(noted > 0);
  assert_int_equal(shk__buf_ranges_check(), 0);
  /* Bits in a free slot of the table. */
  size_t free_slot = 0;
  while (shk__granule_table[free_slot].key) free_slot++;
  shk__granule_maps[free_slot].word[0] ^= 4;
  size_t in_free = shk__buf_ranges_check();
  shk__granule_maps[free_slot].word[0] ^= 4;
  assert_true(in_free > 0);
  assert_int_equal(shk__buf_ranges_check(), 0);
  /* The count of records. */
  shk__granule_used++;
  shk__granule_room--;
  size_t counted = shk__buf_ranges_check();
  shk__granule_used--;
  shk__granule_room++;
  assert_true(counted > 0);
  assert_int_equal(shk__buf_ranges_check(), 0);
  /* r[2] off the list (its bits unlisted, the ranges one short). */
  r[2].prev->next = r[2].next;
  r[2].next->prev = r[2].prev;
  size_t unlisted = shk__buf_ranges_check();
  r[2].next->prev = &r[2];
  r[2].prev->next = &r[2];
  assert_true(unlisted > 0);
  assert_int_equal(shk__buf_ranges_check(), 0);
  for (size_t i = 0; i < 3; i++) shk__buf_ranges_remove(&r[i]);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* A block (as a number) after hd whose record has the same home in the table as hd's, so that a
 * record of it, made first, pushes hd's past its home. */
static uintptr_t block_sharing_a_home(uintptr_t hd) {
  size_t home = shk__granule_home(shk__granule_key(hd));
  for (uintptr_t j = 1; j < ((uintptr_t)1 << 26); j++)
    if (shk__granule_home(shk__granule_key(hd + j)) == home) return hd + j;
  fail_msg("no block after 0x%llx shares its home", (unsigned long long)hd);
  return 0;
}

/* Whole blocks put in the tree drop the emptied records in their way, which moves records that
 * were pushed past their home: the record of the range's first block, found before, must be
 * found again, or its piece goes into a slot that no longer holds it. */
static void a_record_moved_by_a_drop_on_the_way_gets_its_piece(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  static shk__buf_range at_zero;
  uintptr_t hd = 0, d = 0;
  bool laid_out = false;
  for (size_t attempt = 0; attempt < 32 && !laid_out; attempt++) {
    hd = shk__granule_of(FAR_BLOCK(8)) + (uintptr_t)attempt * 4096 + 3;
    if (shk__granule_mask == 0) assert_int_equal(try_insert(hd * U, hd * U + 1), SHK_OK);
    d = block_sharing_a_home(hd);
    assert_int_equal(try_insert(d * U, d * U + 1), SHK_OK); /* leaves d's record, empty */
    at_zero.start = hd * U;
    at_zero.end = hd * U + 1;
    assert_int_equal(shk__buf_ranges_insert(&at_zero), SHK_OK);
    size_t home = shk__granule_home(shk__granule_key(hd));
    laid_out = shk__granule_find(shk__granule_key(d)) == &shk__granule_table[home] &&
               shk__granule_find(shk__granule_key(hd)) != &shk__granule_table[home] &&
               shk__granule_has_room(4); /* no rebuild in between */
    if (!laid_out) shk__buf_ranges_remove(&at_zero);
  }
  assert_true(laid_out);
  /* A piece in hd, then whole blocks over d: d's record goes, hd's moves back to its home. */
  static shk__buf_range big;
  big = (shk__buf_range){.start = hd * U + 64, .end = (d + 1) * U};
  assert_int_equal(shk__buf_ranges_insert(&big), SHK_OK);
  assert_int_equal(shk__buf_ranges_check(), 0);
  assert_int_equal(try_insert(hd * U + 64, hd * U + 65), SHK_EOVERLAP);
  assert_int_equal(try_insert(hd * U + U - 1, hd * U + U + 1), SHK_EOVERLAP);
  assert_int_equal(try_insert(hd * U + 1, hd * U + 64), SHK_OK);
  assert_int_equal(try_insert(d * U, d * U + 1), SHK_EOVERLAP);
  shk__buf_ranges_remove(&big);
  assert_int_equal(try_insert(hd * U + 64, hd * U + 65), SHK_OK);
  shk__buf_ranges_remove(&at_zero);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* ---- slot hints: a remove looks first in the slot where its piece was put ---- */

/* A range of one piece and one of two (across a block boundary), then a rebuild: a new table,
 * of another size, where every record has moved and the ranges' hints name slots that now hold
 * other records or none. Each remove still takes its own pieces, and nothing else. */
static void a_remove_after_a_rebuild_finds_its_pieces_where_they_moved(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  uintptr_t b = FAR_BLOCK(40);
  static shk__buf_range one, two, beside;
  one = (shk__buf_range){.start = b + 3, .end = b + 9};
  two = (shk__buf_range){.start = b + 2 * U - 5, .end = b + 2 * U + 7};
  beside = (shk__buf_range){.start = b + 9, .end = b + 12};
  assert_int_equal(shk__buf_ranges_insert(&one), SHK_OK);
  assert_int_equal(shk__buf_ranges_insert(&two), SHK_OK);
  assert_int_equal(shk__buf_ranges_insert(&beside), SHK_OK);
  assert_int_not_equal(two.tail_piece, SHK__GRANULE_NONE);
  static shk__buf_range filler[1 << 17];
  size_t n = until_rebuilt(filler, 1 << 17, FAR_BLOCK(48));
  shk__buf_ranges_remove(&one);
  shk__buf_ranges_remove(&two);
  assert_int_equal(shk__buf_ranges_check(), 0);
  assert_int_equal(try_insert(one.start, one.end), SHK_OK);
  assert_int_equal(try_insert(two.start, two.end), SHK_OK);
  assert_int_equal(try_insert(beside.start, beside.end), SHK_EOVERLAP);
  shk__buf_ranges_remove(&beside);
  for (size_t i = 0; i < n; i++) shk__buf_ranges_remove(&filler[i]);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* A hint that names another block's record holding a piece at the same bytes (the slot that
 * record took after a move), a slot past the table's end, or no slot: the remove takes its own
 * piece and never the other's. Past the end is not read at all (AddressSanitizer would say). */
static void a_stale_hint_never_takes_another_ranges_piece(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  uintptr_t a = FAR_BLOCK(44), c = FAR_BLOCK(45);
  static shk__buf_range at_a, at_c;
  at_a = (shk__buf_range){.start = a + 4, .end = a + 8};
  at_c = (shk__buf_range){.start = c + 4, .end = c + 8};
  assert_int_equal(shk__buf_ranges_insert(&at_a), SHK_OK);
  assert_int_equal(shk__buf_ranges_insert(&at_c), SHK_OK);
  assert_int_equal(at_a.head_piece, at_c.head_piece);
  uint32_t stale[] = {at_c.head_slot, (uint32_t)shk__granule_mask + 1, SHK__GRANULE_NO_SLOT};
  for (size_t k = 0; k < SHK__ARRAY_LEN(stale); k++) {
    at_a.head_slot = stale[k];
    shk__buf_ranges_remove(&at_a);
    assert_int_equal(shk__buf_ranges_count(), base_count + 1);
    assert_int_equal(try_insert(at_a.start, at_a.end), SHK_OK);
    assert_int_equal(try_insert(at_c.start, at_c.end), SHK_EOVERLAP);
    assert_int_equal(shk__buf_ranges_check(), 0);
    assert_int_equal(shk__buf_ranges_insert(&at_a), SHK_OK);
  }
  shk__buf_ranges_remove(&at_a);
  shk__buf_ranges_remove(&at_c);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* A small range across a block boundary (the short way of two pieces), with the second block's
 * record at its home or pushed past it by another block's record: both pieces found and put,
 * overlaps exact on each side, both taken by the remove. And one across a 128-byte (and a word)
 * boundary inside a block, which is one piece. */
static void a_range_across_a_block_boundary_finds_the_second_record_wherever_it_is(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  uintptr_t from = shk__granule_of(FAR_BLOCK(52));
  static shk__buf_range marks[2], across, pusher, inside;
  for (int way = 0; way < 2; way++) {
    uintptr_t g = from + (uintptr_t)way * 8 + 3;
    bool pushed = way == 1;
    if (pushed) { /* a record at g + 1's home first: g + 1's goes past it */
      if (shk__granule_mask == 0) assert_int_equal(try_insert(g * U + 1, g * U + 2), SHK_OK);
      uintptr_t d = block_sharing_a_home(g + 1);
      pusher = (shk__buf_range){.start = d * U + 1, .end = d * U + 2};
      assert_int_equal(shk__buf_ranges_insert(&pusher), SHK_OK);
    }
    marks[0] = (shk__buf_range){.start = g * U + 1, .end = g * U + 2};
    marks[1] = (shk__buf_range){.start = (g + 1) * U + 100, .end = (g + 1) * U + 101};
    assert_int_equal(shk__buf_ranges_insert(&marks[0]), SHK_OK);
    assert_int_equal(shk__buf_ranges_insert(&marks[1]), SHK_OK);
    if (pushed)
      assert_ptr_not_equal(shk__granule_find(shk__granule_key(g + 1)),
                           &shk__granule_table[shk__granule_home(shk__granule_key(g + 1))]);
    across = (shk__buf_range){.start = (g + 1) * U - 8, .end = (g + 1) * U + 10};
    assert_int_equal(shk__buf_ranges_insert(&across), SHK_OK);
    assert_int_not_equal(across.head_piece, SHK__GRANULE_NONE);
    assert_int_not_equal(across.tail_piece, SHK__GRANULE_NONE);
    assert_int_equal(try_insert((g + 1) * U - 1, (g + 1) * U), SHK_EOVERLAP);
    assert_int_equal(try_insert((g + 1) * U + 9, (g + 1) * U + 10), SHK_EOVERLAP);
    assert_int_equal(try_insert((g + 1) * U - 9, (g + 1) * U - 8), SHK_OK);
    assert_int_equal(try_insert((g + 1) * U + 10, (g + 1) * U + 11), SHK_OK);
    assert_int_equal(try_insert((g + 1) * U - 30, (g + 1) * U + 50), SHK_EOVERLAP);
    assert_int_equal(try_insert((g + 1) * U - 3, (g + 1) * U + 3), SHK_EOVERLAP); /* inside */
    /* 128-byte and word boundaries inside the block: one piece. */
    inside = (shk__buf_range){.start = g * U + 120, .end = g * U + 136};
    assert_int_equal(shk__buf_ranges_insert(&inside), SHK_OK);
    assert_int_equal(inside.tail_piece, SHK__GRANULE_NONE);
    assert_int_equal(try_insert(g * U + 127, g * U + 129), SHK_EOVERLAP);
    assert_int_equal(try_insert(g * U + 135, g * U + 136), SHK_EOVERLAP);
    assert_int_equal(try_insert(g * U + 110, g * U + 120), SHK_OK);
    assert_int_equal(try_insert(g * U + 136, g * U + 150), SHK_OK);
    assert_int_equal(shk__buf_ranges_check(), 0);
    shk__buf_ranges_remove(&across);
    shk__buf_ranges_remove(&inside);
    assert_int_equal(try_insert(across.start, across.end), SHK_OK);
    assert_int_equal(try_insert(inside.start, inside.end), SHK_OK);
    shk__buf_ranges_remove(&marks[0]);
    shk__buf_ranges_remove(&marks[1]);
    if (pushed) shk__buf_ranges_remove(&pusher);
    assert_int_equal(shk__buf_ranges_count(), base_count);
  }
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* The table of records is at most half full after every insert (linear probing stays short, and
 * a search for a missing key ends): one-byte ranges in block after block, each first one making
 * a record (the long way, which checks the room; the short way adds no record). */
static void the_table_of_records_stays_at_most_half_full(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  static shk__buf_range r[64 * 64];
  for (size_t k = 0; k < 64 * 64; k++) {
    r[k].start = FAR_BLOCK(16) + (k / 4) * U + 2 * (k % 4);
    r[k].end = r[k].start + 1;
    assert_int_equal(shk__buf_ranges_insert(&r[k]), SHK_OK);
    assert_true(shk__granule_used * 2 <= shk__granule_mask + 1);
  }
  assert_int_equal(shk__buf_ranges_check(), 0);
  for (size_t k = 0; k < 64 * 64; k++) shk__buf_ranges_remove(&r[k]);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* A block (as a number) from `from` on whose record's home is `home`. */
static uintptr_t block_at_home(uintptr_t from, size_t home) {
  for (uintptr_t a = from; a - from < ((uintptr_t)1 << 26); a++)
    if (shk__granule_home(shk__granule_key(a)) == home) return a;
  fail_msg("no block has home %lu", (unsigned long)home);
  return 0;
}

/* Linear probing's deletion across the table's end: block a's record in the last slot, block
 * c's in slot 0 (both at home). When a's record goes (whole blocks put over a), c's stays where
 * a search from its home finds it; moved into the gap, it would be lost. */
static void a_record_at_home_past_the_end_of_the_table_stays_when_the_last_slot_empties(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  static shk__buf_range at_c;
  uintptr_t a = 0, c = 0;
  bool laid_out = false;
  uintptr_t from = shk__granule_of(FAR_BLOCK(32));
  for (size_t attempt = 0; attempt < 32 && !laid_out; attempt++) {
    if (shk__granule_mask == 0) assert_int_equal(try_insert(from * U, from * U + 1), SHK_OK);
    a = block_at_home(from, shk__granule_mask);
    c = block_at_home(a + 2, 0);
    assert_int_equal(try_insert(a * U + 5, a * U + 6), SHK_OK); /* leaves a's record, empty */
    at_c.start = c * U + 5;
    at_c.end = at_c.start + 1;
    assert_int_equal(shk__buf_ranges_insert(&at_c), SHK_OK);
    laid_out = shk__granule_find(shk__granule_key(a)) == &shk__granule_table[shk__granule_mask] &&
               shk__granule_find(shk__granule_key(c)) == &shk__granule_table[0] &&
               shk__granule_has_room(4); /* no rebuild in between */
    if (!laid_out) shk__buf_ranges_remove(&at_c);
    from = c + 1;
  }
  assert_true(laid_out);
  assert_int_equal(try_insert(a * U, (a + 1) * U), SHK_OK); /* a's record goes */
  assert_int_equal(shk__buf_ranges_check(), 0);
  assert_ptr_equal(shk__granule_find(shk__granule_key(c)), &shk__granule_table[0]);
  assert_int_equal(try_insert(at_c.start, at_c.end), SHK_EOVERLAP);
  shk__buf_ranges_remove(&at_c);
  assert_int_equal(shk__buf_ranges_count(), base_count);
  assert_int_equal(shk__buf_ranges_check(), 0);
}

/* 4000 ranges of 10 bytes in blocks of their own, put in and all ended: their records stay,
 * empty (an arena freed: its blocks are not met again). */
static shk__buf_range emptied[4000];
static void records_left_empty(uintptr_t from) {
  for (size_t i = 0; i < 4000; i++) {
    emptied[i].start = from + i * U + 3;
    emptied[i].end = emptied[i].start + 10;
    assert_int_equal(shk__buf_ranges_insert(&emptied[i]), SHK_OK);
  }
  for (size_t i = 0; i < 4000; i++) shk__buf_ranges_remove(&emptied[i]);
}

/* Records left empty go once they are most of the table, not only when the table is full
 * (meanwhile they lengthen the probes). With many ranges live elsewhere (2048 one-byte ranges in
 * 8 blocks: they could hold pieces in that many records) a scan finds them, within half a
 * table of new records, so that no insert or remove counts them (fails with the rebuild for room
 * only). */
static void a_table_mostly_of_emptied_records_is_rebuilt_soon(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  static shk__buf_range dense[2048];
  for (size_t i = 0; i < 2048; i++) {
    dense[i].start = BASE + 20000 * U + 2 * i;
    dense[i].end = dense[i].start + 1;
    assert_int_equal(shk__buf_ranges_insert(&dense[i]), SHK_OK);
  }
  records_left_empty(BASE + 30000 * U);
  size_t before = shk__granule_used, most = before / 2 > 1024 ? before / 2 : 1024;
  size_t mask = shk__granule_mask, n = 0;
  static shk__buf_range fresh[4000];
  while (shk__granule_used >= before - 3000) {
    assert_true(n <= most);
    /* Not the rebuild for room (which drops them too): the table is not near full. This test
     * runs first, on a table laid out the same in every run. */
    assert_true(shk__granule_has_room(4));
    assert_int_equal(shk__granule_mask, mask);
    fresh[n] = (shk__buf_range){.start = BASE + 40000 * U + n * U + 3,
                                .end = BASE + 40000 * U + n * U + 9}; /* a new block */
    assert_int_equal(shk__buf_ranges_insert(&fresh[n]), SHK_OK);
    n++;
  }
  assert_true(n > 1); /* the scan's doing, not the count of ranges' */
  assert_int_equal(shk__buf_ranges_check(), 0);
  for (size_t i = 0; i < n; i++) shk__buf_ranges_remove(&fresh[i]);
  for (size_t i = 0; i < 2048; i++) shk__buf_ranges_remove(&dense[i]);
  assert_int_equal(shk__buf_ranges_count(), base_count);
}

/* With few ranges live (fewer than a quarter of the records, less 1024: they cannot hold pieces
 * in half of them), the records left empty go at the next new record (bench_buf's rows after one
 * of 100 000 live ranges measured a table of 12 500 emptied records otherwise). */
static void emptied_records_go_at_the_next_new_record_when_few_ranges_are_live(void **state) {
  (void)state;
  size_t base_count = shk__buf_ranges_count();
  records_left_empty(BASE + 50000 * U);
  size_t before = shk__granule_used;
  assert_true(before > 4 * base_count + 1024 && before >= 4000);
  uintptr_t fresh = BASE + 60000 * U + 3; /* in a new block */
  assert_int_equal(try_insert(fresh, fresh + 6), SHK_OK);
  assert_true(shk__granule_used < before - 3000);
  assert_int_equal(shk__buf_ranges_check(), 0);
  assert_int_equal(shk__buf_ranges_count(), base_count);
}

/* After each test: the index's lock is free. A test that crashed inside the index (cmocka goes on
 * to the next test) would leave it held, and every test after would wait for it until the
 * time limit: they fail at once instead. */
static int the_index_is_unlocked(void **state) {
  (void)state;
  if (atomic_load(&shk__buf_ranges_lock) != SHK__BUF_RANGES_HELD) return 0;
  shk__buf_ranges_release();
  print_error("the range index's lock was left held\n");
  return -1;
}
#define UNLOCKED(test) cmocka_unit_test_teardown(test, the_index_is_unlocked)

static const struct CMUnitTest tests[] = {
    UNLOCKED(a_table_mostly_of_emptied_records_is_rebuilt_soon),
    UNLOCKED(emptied_records_go_at_the_next_new_record_when_few_ranges_are_live),
    UNLOCKED(allocation_failures_leave_the_index_as_it_was),
    UNLOCKED(a_spread_chunk_keeps_its_starts_below_the_next_chunks),
    UNLOCKED(a_block_full_of_one_byte_ranges_sits_in_one_record),
    UNLOCKED(small_ranges_in_a_block_meet_at_every_offset_exactly),
    UNLOCKED(a_pair_across_a_block_boundary_is_exact_both_ways),
    UNLOCKED(a_long_piece_and_small_ones_share_words_exactly),
    UNLOCKED(a_node_counts_once_in_and_once_out),
    UNLOCKED(the_walk_names_each_range_once_whatever_its_parts),
    UNLOCKED(whole_blocks_and_pieces_meet_exactly),
    UNLOCKED(emptied_records_go_when_the_table_needs_room),
    UNLOCKED(the_last_block_of_the_address_space_is_refused),
    UNLOCKED(a_rebuild_keeps_every_live_bit_and_drops_emptied_records),
    UNLOCKED(the_check_reports_faults_put_in_on_purpose),
    UNLOCKED(a_record_moved_by_a_drop_on_the_way_gets_its_piece),
    UNLOCKED(a_remove_after_a_rebuild_finds_its_pieces_where_they_moved),
    UNLOCKED(a_stale_hint_never_takes_another_ranges_piece),
    UNLOCKED(a_range_across_a_block_boundary_finds_the_second_record_wherever_it_is),
    UNLOCKED(the_table_of_records_stays_at_most_half_full),
    UNLOCKED(a_record_at_home_past_the_end_of_the_table_stays_when_the_last_slot_empties),
    UNLOCKED(a_range_between_packed_ones_spreads_the_chunk_and_neighbours_stay_exact),
    UNLOCKED(spreading_a_chunk_keeps_it_before_the_next),
    UNLOCKED(ending_most_of_a_chunk_compacts_it_and_keeps_answers),
    UNLOCKED(every_place_in_a_chunk_is_found_at_every_fill),
    UNLOCKED(stale_places_remove_nothing_else),
    UNLOCKED(removed_places_neither_hide_nor_invent_overlaps),
    UNLOCKED(random_ranges_agree_with_the_model),
    UNLOCKED(ranges_that_follow_the_last_insert_agree_with_the_model),
    UNLOCKED(ascending_and_descending_fills_split_and_merge_cleanly),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(a_spread_chunk_keeps_its_starts_below_the_next_chunks), {NULL, NULL}};

SHK_TEST_MAIN(tests, children)
