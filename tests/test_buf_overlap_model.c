/* The live-range index's exact semantics through the public API, written to judge a rewrite of
 * src/common/buf_ranges.c: a brute-force model of one arena under random consumes, creates and
 * releases of every size and alignment a block-based index could trip on (answers, live count,
 * the walk that shk_watch_add_buffers makes); the boundary cases of each block size from 64 B
 * to 4 KiB; threads consuming one arena, a byte never held twice, also under SHK_DEBUG=buf. */
/* ctest: labels=unit;multiprocess;tsan timeout=300 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shk_test_thread.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 240000
#define ARENA_SIZE ((size_t)1 << 20)
#define ARENA_ALIGN ((size_t)1 << 16)

/* The block sizes a granule index may use, and the alignments offsets snap to. */
static const size_t blocks[] = {64, 128, 256, 512, 1024, 4096};
#define BLOCK_COUNT (sizeof blocks / sizeof blocks[0])

/* One arena, 64 KiB aligned (so page aligned, and aligned to every block), from malloc: no
 * buffer's memory, and nothing of the library's lies in it. */
static unsigned char *arena;

static void arena_make(void) {
  static unsigned char *raw;
  if (arena) return;
  raw = malloc(ARENA_SIZE + ARENA_ALIGN);
  assert_non_null(raw);
  arena = (unsigned char *)(((uintptr_t)raw + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1));
}

/* A positive number from the environment variable `name`, else `fallback` (how many steps,
 * seeds and rounds: larger runs by hand, e.g. SHK_TEST_MODEL_STEPS=200000). */
static size_t env_count(const char *name, size_t fallback) {
  const char *v = getenv(name);
  if (!v || !*v) return fallback;
  unsigned long long n = strtoull(v, NULL, 10);
  return n ? (size_t)n : fallback;
}

/* splitmix64: every seed gives its own sequence, the same on every system. */
typedef struct rng {
  uint64_t s;
} rng;

static uint64_t next_random(rng *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static size_t below(rng *r, size_t n) { return (size_t)(next_random(r) % n); }

/* A length from the mix, and the alignment its offset may snap to (*exact: whole aligned blocks,
 * which snap without the +-1): 1-16 bytes; a block size +-1; 1-4 whole blocks; 17-216 bytes;
 * 8 KiB to 256 KiB; rarely (one draw in `whole_in`) the whole arena. */
static size_t draw_length(rng *r, size_t *align, bool *exact, size_t whole_in) {
  size_t b = blocks[below(r, BLOCK_COUNT)];
  *align = b;
  *exact = false;
  size_t kind = below(r, 64);
  if (below(r, whole_in) == 0) {
    *align = ARENA_SIZE;
    return ARENA_SIZE;
  }
  if (kind < 24) return 1 + below(r, 16);
  if (kind < 36) return b - 1 + below(r, 3);
  if (kind < 46) {
    *exact = true;
    return b * (1 + below(r, 4));
  }
  if (kind < 55) return 17 + below(r, 200);
  *align = (size_t)1 << (12 + below(r, 5));
  return 8192 + below(r, 256 * 1024 - 8192 + 1);
}

/* An offset for len bytes in [lo, lo + span) of the arena (span >= len): uniform, or snapped to
 * `align` (or a block size) +-1; nearby[0..nearby_count) are offsets next to live ranges (their
 * ends, or their starts less len), taken +-1. Always inside the arena. */
static size_t draw_offset(rng *r, size_t len, size_t align, bool exact, size_t lo, size_t span,
                          const size_t *nearby, size_t nearby_count) {
  size_t room = span - len, off;
  size_t mode = below(r, 8);
  if (mode < 2 || (mode >= 6 && nearby_count == 0)) {
    off = lo + below(r, room + 1);
  } else if (mode < 6) {
    size_t a = mode == 5 ? blocks[below(r, BLOCK_COUNT)] : align;
    off = lo + below(r, room + 1);
    off -= off % a;
    if (!exact || mode == 4) off = off + below(r, 3) - 1; /* may wrap below 0: clamped next */
  } else {
    off = nearby[below(r, nearby_count)] + below(r, 3) - 1;
    if (mode == 7) off -= len;
  }
  if (off > ARENA_SIZE) off = 0; /* wrapped below 0 */
  if (off > ARENA_SIZE - len) off = ARENA_SIZE - len;
  return off;
}

/* ---- the model: who holds each byte of the arena ---- */

#define ENTRIES_MAX 16384
#define OUTSIDE_MAX 16

enum { FREE = 0, LIVE = 1, DEFERRED = 2 };

typedef struct entry {
  shk_buf *buf;
  size_t off, len;
  uint64_t id;
  int state;
  bool delayed; /* its release defers it */
  size_t pos;   /* in model.held */
  bool seen;    /* the walk's check */
} entry;

typedef struct model {
  uint64_t seed;
  size_t step;
  entry e[ENTRIES_MAX];
  size_t held[ENTRIES_MAX]; /* indices of LIVE and DEFERRED entries */
  size_t held_count, deferred_count;
  size_t free_list[ENTRIES_MAX], free_count;
  shk_buf *outside[OUTSIDE_MAX]; /* heap / aligned / pages buffers, elsewhere */
  size_t outside_count;
  size_t base_live;  /* shk_buf_live_count() before the run */
  size_t walk_wrong; /* events the walk's watcher gave for no live buffer */
  size_t puts, refusals, most_held, walks; /* what a run did, printed after it */
  bool few_refusals; /* most puts the model refuses are not tried (SHK_DEBUG=buf reports each) */
} model;

/* owner[i]: 1 + the entry that holds arena byte i, or 0. */
static uint32_t owner[ARENA_SIZE];
static model the_model;

/* A wrong answer: what, the seed and step to run again, and the child fails. */
#define MODEL_FAIL(m, ...)                                                                  \
  do {                                                                                      \
    fprintf(stderr, "%s:%d: seed %llu step %lu: ", __FILE__, __LINE__,                     \
            (unsigned long long)(m)->seed, (unsigned long)(m)->step);                       \
    fprintf(stderr, __VA_ARGS__);                                                           \
    fprintf(stderr, "\n");                                                                  \
    fflush(stderr);                                                                         \
    exit(1);                                                                                \
  } while (0)

static bool model_overlaps(size_t off, size_t len) {
  for (size_t i = off; i < off + len; i++)
    if (owner[i]) return true;
  return false;
}

static void model_reset(model *m, uint64_t seed) {
  memset(m, 0, sizeof *m);
  memset(owner, 0, sizeof owner);
  m->seed = seed;
  for (size_t k = 0; k < ENTRIES_MAX; k++) m->free_list[k] = ENTRIES_MAX - 1 - k;
  m->free_count = ENTRIES_MAX;
  m->base_live = shk_buf_live_count();
}

static void model_hold(model *m, shk_buf *buf, size_t off, size_t len, bool delayed) {
  size_t k = m->free_list[--m->free_count];
  entry *e = &m->e[k];
  *e = (entry){.buf = buf, .off = off, .len = len, .id = shk_buf_id(buf), .state = LIVE,
               .delayed = delayed, .pos = m->held_count};
  m->held[m->held_count++] = k;
  if (m->held_count > m->most_held) m->most_held = m->held_count;
  for (size_t i = off; i < off + len; i++) owner[i] = (uint32_t)k + 1;
}

static void model_forget(model *m, size_t k) {
  entry *e = &m->e[k];
  if (e->state == DEFERRED) m->deferred_count--;
  for (size_t i = e->off; i < e->off + e->len; i++) owner[i] = 0;
  size_t last = m->held[--m->held_count];
  m->held[e->pos] = last;
  m->e[last].pos = e->pos;
  e->state = FREE;
  e->buf = NULL;
  m->free_list[m->free_count++] = k;
}

/* ---- an allocator that hands out the arena where the model says ---- */

static unsigned char *arena_want;
static atomic_int arena_frees;

static int arena_alloc(void *user, const shk_buf_alloc_request *req, shk_buf_block *out) {
  (void)user;
  (void)req;
  out->ptr = arena_want;
  return SHK_OK;
}

static void arena_free(void *user, const shk_buf_block *block, size_t size) {
  (void)user;
  (void)block;
  (void)size;
  atomic_fetch_add(&arena_frees, 1);
}

static void register_arena_allocator(void) {
  if (shk_buf_allocator_exists("model-arena")) return;
  shk_buf_allocator t;
  shk_buf_allocator_init(&t);
  t.alloc = arena_alloc;
  t.free = arena_free;
  assert_int_equal(shk_buf_allocator_register("model-arena", &t), SHK_OK);
}

/* ---- the steps ---- */

/* How a range goes in: consumed (no options, or delayed free, or items of 8 bytes), or created
 * by the arena allocator (immediate or delayed free; *created). */
static int put_range(model *m, rng *r, size_t off, size_t len, bool *delayed, bool *created,
                     shk_buf **out) {
  size_t how = below(r, 16);
  shk_buf_options o;
  shk_buf_options_init(&o);
  *delayed = how == 11 || how == 13;
  *created = how >= 12;
  o.delayed_free = *delayed;
  *out = (shk_buf *)&m->step; /* must come back NULL on failure */
  if (how < 12) {
    bool items = how == 10 && len % 8 == 0;
    return shk_buf_consume(arena + off, items ? len / 8 : len, items ? 8 : 1,
                           how < 10 ? NULL : &o, out);
  }
  o.allocator = "model-arena";
  arena_want = arena + off;
  return shk_buf_create(len, 1, &o, out);
}

/* Puts [off, off + len) in (kept on success) and compares the answer with the model. */
static bool step_put(model *m, rng *r, size_t off, size_t len) {
  bool expected_overlap = model_overlaps(off, len);
  if (expected_overlap && m->few_refusals && below(r, 16) != 0) return false;
  bool delayed, created;
  shk_buf *buf;
  int frees_before = atomic_load(&arena_frees);
  int rc = put_range(m, r, off, len, &delayed, &created, &buf);
  if (rc != (expected_overlap ? SHK_EOVERLAP : SHK_OK))
    MODEL_FAIL(m, "[%lu, +%lu) of the arena: %s, the model says %s", (unsigned long)off,
               (unsigned long)len, shk_error_name(rc), expected_overlap ? "overlap" : "free");
  if (rc != SHK_OK) {
    if (buf != NULL) MODEL_FAIL(m, "a refused range left *out set");
    /* A created range refused is handed back to its allocator once; a consumed one never. */
    if (atomic_load(&arena_frees) - frees_before != (created ? 1 : 0))
      MODEL_FAIL(m, "a refused %s range was freed %d times", created ? "created" : "consumed",
                 atomic_load(&arena_frees) - frees_before);
    m->refusals++;
    return false;
  }
  m->puts++;
  if (shk_buf_data(buf) != arena + off || shk_buf_size(buf) != len)
    MODEL_FAIL(m, "the buffer is not [%lu, +%lu)", (unsigned long)off, (unsigned long)len);
  model_hold(m, buf, off, len, delayed);
  return true;
}

/* Releases held entry k: a delayed one is deferred (its range stays), the others end. With
 * `again`, the same range goes in again at once (a dead entry taken back). */
static void step_release(model *m, rng *r, size_t k, bool again) {
  entry *e = &m->e[k];
  if (e->state == DEFERRED) {
    if (shk_buf_free_deferred(e->id) != SHK_OK) MODEL_FAIL(m, "deferred %llu not found",
                                                          (unsigned long long)e->id);
    model_forget(m, k);
    return;
  }
  shk_buf_release(e->buf);
  if (e->delayed) {
    e->state = DEFERRED;
    m->deferred_count++;
    return;
  }
  size_t off = e->off, len = e->len;
  model_forget(m, k);
  if (again) step_put(m, r, off, len);
}

/* Probes a range at held entry k (nothing kept): inside it, around it, across either end, or
 * touching either end; each answer from the model. */
static void step_probe(model *m, rng *r, size_t k) {
  const entry *e = &m->e[k];
  size_t s = e->off, end = e->off + e->len, extra = 1 + below(r, 64);
  switch (below(r, 6)) {
    case 0: s += below(r, e->len); end = s + 1 + below(r, end - s); break; /* inside */
    case 1: s = s > 0 ? s - 1 : s; end = end + (end < ARENA_SIZE); break;  /* around */
    case 2: s = s > 0 ? s - 1 : s; end = e->off + 1; break;               /* across the start */
    case 3: s = end - 1; end = end + (end < ARENA_SIZE); break;            /* across the end */
    case 4: end = s; s = s > extra ? s - extra : 0; break;                 /* touching the start */
    default: s = end; end = end + extra; break;                            /* touching the end */
  }
  if (end > ARENA_SIZE) end = ARENA_SIZE;
  if (s >= end) return; /* at an end of the arena */
  if (step_put(m, r, s, end - s)) {
    size_t last = m->held[m->held_count - 1];
    step_release(m, r, last, false);
    if (m->e[last].state == DEFERRED) step_release(m, r, last, false);
  }
}

/* Buffers of the built-in allocators, elsewhere in memory: consuming their bytes, inside, across
 * either end or around them, is refused while they live. */
static void step_outside(model *m, rng *r) {
  if (m->outside_count == OUTSIDE_MAX || (m->outside_count > 0 && below(r, 2) == 0)) {
    size_t k = below(r, m->outside_count);
    shk_buf_release(m->outside[k]);
    m->outside[k] = m->outside[--m->outside_count];
    return;
  }
  static const char *const names[] = {"heap", "aligned", "pages"};
  shk_buf_options o;
  shk_buf_options_init(&o);
  o.allocator = names[below(r, 3)];
  size_t size = 1 + below(r, 5000);
  shk_buf *buf = NULL;
  if (shk_buf_create(size, 1, &o, &buf) != SHK_OK) MODEL_FAIL(m, "a %s buffer", o.allocator);
  m->outside[m->outside_count++] = buf;
  for (size_t k = m->few_refusals ? m->outside_count - 1 : 0; k < m->outside_count; k++) {
    unsigned char *p = shk_buf_data(m->outside[k]);
    size_t n = shk_buf_size(m->outside[k]);
    struct {
      unsigned char *at;
      size_t len;
    } tries[] = {{p, n}, {p + n - 1, 1}, {p, 1}, {p - 1, n + 2}, {p - 1, 2}, {p + n / 2, 1}};
    for (size_t t = 0; t < sizeof tries / sizeof tries[0]; t++) {
      shk_buf *b = (shk_buf *)1;
      int rc = shk_buf_consume(tries[t].at, tries[t].len, 1, NULL, &b);
      if (rc != SHK_EOVERLAP || b != NULL)
        MODEL_FAIL(m, "consuming over a live %s buffer (try %lu): %s",
                   shk_buf_allocator_name(m->outside[k]), (unsigned long)t, shk_error_name(rc));
    }
  }
}

static void check_live_count(model *m) {
  size_t want = m->base_live + m->held_count + m->outside_count;
  if (shk_buf_live_count() != want)
    MODEL_FAIL(m, "live count %lu, the model says %lu", (unsigned long)shk_buf_live_count(),
               (unsigned long)want);
}

/* ---- the walk over live buffers, as shk_watch_add_buffers makes it ---- */

static void on_walk_event(const shk_watch_event *ev, void *user) {
  model *m = user;
  const unsigned char *a = ev->region_addr;
  if (a < arena || a >= arena + ARENA_SIZE) return; /* an outside buffer */
  uint32_t k = owner[a - arena];
  entry *e = k ? &m->e[k - 1] : NULL;
  if (!e || e->state != LIVE || e->buf == NULL || shk_buf_data(e->buf) != a ||
      e->len != ev->region_size || e->id != ev->buffer_id)
    m->walk_wrong++;
  else
    e->seen = true;
}

/* A poll watcher follows every buffer: it must watch exactly the live ones (deferred buffers,
 * released by their owner, are not), each as its own range with its id. One byte of every
 * held range is changed; each live one gives its event, nothing else in the arena does. */
static void check_walk(model *m) {
  shk_watch_options o;
  shk_watch_options_init(&o);
  o.backend = SHK_WATCH_POLL;
  o.poll_interval_ms = 1000; /* flush finds the changes */
  o.resolve_symbols = false;
  /* What the worker's callback writes is set before the worker starts. */
  for (size_t h = 0; h < m->held_count; h++) m->e[m->held[h]].seen = false;
  m->walk_wrong = 0;
  shk_watcher *w = NULL;
  if (shk_watch_create(&o, &w) != SHK_OK) MODEL_FAIL(m, "no poll watcher");
  m->walks++;
  if (shk_watch_set_callback(w, on_walk_event, m) != SHK_OK ||
      shk_watch_add_buffers(w, NULL) != SHK_OK)
    MODEL_FAIL(m, "the watcher does not follow buffers");
  shk_watch_stats st;
  if (shk_watch_stats_get(w, &st) != SHK_OK) MODEL_FAIL(m, "no stats");
  size_t want = m->base_live + m->held_count - m->deferred_count + m->outside_count;
  if (st.regions != want)
    MODEL_FAIL(m, "the walk found %lu buffers, the model says %lu live (and %lu deferred)",
               (unsigned long)st.regions, (unsigned long)want, (unsigned long)m->deferred_count);
  for (size_t h = 0; h < m->held_count; h++) {
    const entry *e = &m->e[m->held[h]];
    arena[e->off + below(&(rng){e->id}, e->len)] ^= 0x5A;
  }
  if (shk_watch_flush(w) != SHK_OK) MODEL_FAIL(m, "flush");
  shk_watch_free(w);
  if (m->walk_wrong) MODEL_FAIL(m, "%lu events for no live buffer", (unsigned long)m->walk_wrong);
  for (size_t h = 0; h < m->held_count; h++) {
    const entry *e = &m->e[m->held[h]];
    if (e->seen != (e->state == LIVE))
      MODEL_FAIL(m, "[%lu, +%lu) (%s): %s by the walk", (unsigned long)e->off,
                 (unsigned long)e->len, e->state == LIVE ? "live" : "deferred",
                 e->seen ? "seen" : "not seen");
  }
}

/* ---- the run ---- */

/* Offsets next to held ranges, for draw_offset: up to 64 ends of random held entries. */
static size_t nearby_offsets(model *m, rng *r, size_t *nearby) {
  size_t n = m->held_count < 64 ? m->held_count : 64;
  for (size_t i = 0; i < n; i++) {
    const entry *e = &m->e[m->held[below(r, m->held_count)]];
    nearby[i] = below(r, 2) ? e->off + e->len : e->off;
  }
  return n;
}

static void release_all(model *m, rng *r) {
  while (m->held_count) step_release(m, r, m->held[m->held_count - 1], false);
}

/* One seed: `steps` steps, in phases of 3000. The number of held ranges swings between
 * targets (a few, hundreds, thousands: chunk splits, merges, compaction, an emptied index); a
 * third of the phases draw small ranges only (so that thousands fit); half the ranges fall in a
 * 64 KiB window that moves now and then (dense neighbours); at times everything goes and the
 * whole arena must go in as one range. */
static void run_model(uint64_t seed, size_t steps, bool walks, bool few_refusals) {
  static const size_t targets[] = {8, 400, 3000, 1200, 60, 6000};
  model *m = &the_model;
  model_reset(m, seed);
  m->few_refusals = few_refusals;
  rng r = {seed};
  size_t target = targets[0], window = 0;
  bool small_only = false;
  static size_t nearby[64];
  for (m->step = 0; m->step < steps; m->step++) {
    if (m->step % 3000 == 0) {
      target = targets[below(&r, sizeof targets / sizeof targets[0])];
      small_only = below(&r, 3) == 0;
    }
    if (m->step % 700 == 0) window = below(&r, ARENA_SIZE / 4096 - 16) * 4096;
    size_t what = below(&r, 100);
    if (what < 2) {
      step_outside(m, &r);
    } else if (what < 14 && m->held_count) {
      step_probe(m, &r, m->held[below(&r, m->held_count)]);
    } else if (m->held_count && (m->held_count >= ENTRIES_MAX - 8 ||
                                 below(&r, 8) < (m->held_count > target ? 6u : 1u))) {
      step_release(m, &r, m->held[below(&r, m->held_count)], below(&r, 8) == 0);
    } else {
      size_t align, len;
      bool exact;
      do len = draw_length(&r, &align, &exact, 400);
      while (small_only && len > 4097);
      bool windowed = len <= 16384 && below(&r, 2);
      size_t lo = windowed ? window : 0, span = windowed ? 65536 : ARENA_SIZE;
      size_t n = nearby_offsets(m, &r, nearby);
      step_put(m, &r, draw_offset(&r, len, align, exact, lo, span, nearby, n), len);
    }
    if (m->step % 256 == 0) check_live_count(m);
    if (walks && m->step % 4000 == 2500) check_walk(m);
    if (m->step % 10000 == 9999) {
      release_all(m, &r);
      check_live_count(m);
      step_put(m, &r, 0, ARENA_SIZE);
      release_all(m, &r);
    }
  }
  if (walks) check_walk(m);
  release_all(m, &r);
  while (m->outside_count) shk_buf_release(m->outside[--m->outside_count]);
  check_live_count(m);
  step_put(m, &r, 0, ARENA_SIZE); /* every place free again */
  release_all(m, &r);
  printf("    seed %llu: %lu steps, %lu ranges in, %lu refused, at most %lu held, %lu walks\n",
         (unsigned long long)seed, (unsigned long)steps, (unsigned long)m->puts,
         (unsigned long)m->refusals, (unsigned long)m->most_held, (unsigned long)m->walks);
}

/* argv[0]: the first seed; argv[1]: how many seeds; argv[2]: steps per seed; argv[3]: "walk"
 * to check the walk too, or "debug" to try few of the puts the model refuses. stderr to argv[4]
 * when given (the SHK_DEBUG run). */
static int child_model(int argc, char **argv) {
  if (argc > 4 && !freopen(argv[4], "w", stderr)) return 99;
  arena_make();
  register_arena_allocator();
  uint64_t first = strtoull(argv[0], NULL, 10);
  size_t seeds = (size_t)strtoull(argv[1], NULL, 10), steps = (size_t)strtoull(argv[2], NULL, 10);
  bool walks = strcmp(argv[3], "walk") == 0, few_refusals = strcmp(argv[3], "debug") == 0;
  for (size_t i = 0; i < seeds; i++) run_model(first + i, steps, walks, few_refusals);
  fflush(stderr);
  return 0;
}

static void random_ranges_of_every_size_agree_with_the_model(void **state) {
  (void)state;
  char seeds[24], steps[24];
  snprintf(seeds, sizeof seeds, "%lu", (unsigned long)env_count("SHK_TEST_MODEL_SEEDS", 4));
  snprintf(steps, sizeof steps, "%lu", (unsigned long)env_count("SHK_TEST_MODEL_STEPS", 30000));
  const char *argv[] = {"1", seeds, steps, "walk"};
  shk_test_run_child_ok("model", 4, argv, CHILD_TIMEOUT_MS);
}

/* ---- the boundaries of every block size ---- */

/* Where the boundary cases happen: 64 KiB into the arena, aligned to every block. */
#define AT ((size_t)65536)

static size_t case_block; /* the block size of the case running, for messages */

static void expect_rc(size_t off, size_t len, int want, int line) {
  shk_buf *b = (shk_buf *)1;
  int rc = shk_buf_consume(arena + off, len, 1, NULL, &b);
  if (rc == SHK_OK) shk_buf_release(b);
  else if (b != NULL) fail_msg("line %d: a refused range left *out set", line);
  if (rc != want)
    fail_msg("line %d, block %lu: [AT%+ld, +%lu): %s, expected %s", line,
             (unsigned long)case_block, (long)off - (long)AT, (unsigned long)len,
             shk_error_name(rc), shk_error_name(want));
}

/* A probe of [off, off + len): consumed and released at once, or refused. */
#define FREE_AT(off, len) expect_rc((off), (len), SHK_OK, __LINE__)
#define TAKEN_AT(off, len) expect_rc((off), (len), SHK_EOVERLAP, __LINE__)

static shk_buf *hold_at(size_t off, size_t len, int line) {
  shk_buf *b = NULL;
  int rc = shk_buf_consume(arena + off, len, 1, NULL, &b);
  if (rc != SHK_OK)
    fail_msg("line %d, block %lu: holding [AT%+ld, +%lu): %s", line, (unsigned long)case_block,
             (long)off - (long)AT, (unsigned long)len, shk_error_name(rc));
  return b;
}
#define HOLD(off, len) hold_at((off), (len), __LINE__)

/* Every byte of [off, off + len) is taken (probed at both ends, every block boundary inside it
 * +-1 and a few points between), and the bytes just outside are as `outside_free` says. */
static void expect_taken_range(size_t off, size_t len, bool outside_free, int line) {
  size_t end = off + len, b = case_block;
  expect_rc(off, 1, SHK_EOVERLAP, line);
  expect_rc(end - 1, 1, SHK_EOVERLAP, line);
  expect_rc(off + len / 2, 1, SHK_EOVERLAP, line);
  for (size_t p = off - off % b + b; p < end; p += b) {
    expect_rc(p - 1, 1, SHK_EOVERLAP, line);
    expect_rc(p, 1, SHK_EOVERLAP, line);
    expect_rc(p - 1, 2, SHK_EOVERLAP, line);
    size_t q = p + b / 4; /* a quarter block in, up to a quarter block long */
    if (q < end) expect_rc(q, b / 4 < end - q ? b / 4 : 1, SHK_EOVERLAP, line);
  }
  expect_rc(off - 1, len + 2, SHK_EOVERLAP, line);
  expect_rc(off - off % b, b, SHK_EOVERLAP, line); /* the block of its first byte */
  expect_rc(off - 1, 1, outside_free ? SHK_OK : SHK_EOVERLAP, line);
  expect_rc(end, 1, outside_free ? SHK_OK : SHK_EOVERLAP, line);
}

/* Runs a boundary case for every block size b, on an arena left clean before and after. */
static void for_every_block(void (*run_case)(size_t b)) {
  arena_make();
  size_t live_before = shk_buf_live_count();
  for (size_t k = 0; k < BLOCK_COUNT; k++) {
    case_block = blocks[k];
    FREE_AT(AT - 8192, 65536); /* nothing left from before */
    run_case(blocks[k]);
    FREE_AT(AT - 8192, 65536); /* nothing left behind */
    assert_int_equal(shk_buf_live_count(), live_before);
  }
}

/* A test of the group whose body, `name##_case(size_t b)`, runs for every block size. */
#define BLOCK_TEST(name)                                                  \
  static void name##_case(size_t b);                                      \
  static void name(void **state) {                                        \
    (void)state;                                                          \
    for_every_block(name##_case);                                         \
  }                                                                       \
  static void name##_case(size_t b)

/* A range ending exactly at a block boundary and one starting there both go in, whichever comes
 * first, for lengths from one byte to two blocks on either side; a byte across is refused. */
BLOCK_TEST(ranges_meeting_at_a_block_boundary_both_go_in) {
  size_t bound = AT + 4 * b;
  const size_t lens[] = {1, 7, b / 2, b - 1, b, b + 1, 2 * b};
  for (size_t i = 0; i < 7; i++) {
    for (size_t j = 0; j < 7; j++) {
      size_t before = lens[i], after = lens[j];
      bool ending_first = (i + j) % 2 == 0;
      shk_buf *x = ending_first ? HOLD(bound - before, before) : HOLD(bound, after);
      shk_buf *y = ending_first ? HOLD(bound, after) : HOLD(bound - before, before);
      TAKEN_AT(bound - 1, 2);
      TAKEN_AT(bound - 1, 1);
      TAKEN_AT(bound, 1);
      TAKEN_AT(bound - before, before + after);
      FREE_AT(bound - before - 1, 1);
      FREE_AT(bound + after, 1);
      shk_buf_release(x);
      if (ending_first) FREE_AT(bound - before, before); else FREE_AT(bound, after);
      TAKEN_AT(bound - before, before + after);
      shk_buf_release(y);
      FREE_AT(bound - before, before + after);
    }
  }
}

/* A range over a block that holds small ranges is refused (the block exactly, a range around
 * it, one across into it), and the gaps between the small ones go in. */
BLOCK_TEST(a_range_over_a_block_with_small_ranges_inside_is_refused) {
  size_t blk = AT + b; /* block 1 of the case */
  shk_buf *mid = HOLD(blk + b / 4, 3);
  shk_buf *last = HOLD(blk + b - 1, 1); /* the block's last byte */
  TAKEN_AT(blk, b);
  TAKEN_AT(blk - b, 3 * b);
  TAKEN_AT(AT - 4096, 3 * 4096 + 4 * b);
  TAKEN_AT(blk - b / 2, b);
  TAKEN_AT(blk + b / 2, b);
  TAKEN_AT(blk + b / 4 + 2, 1);
  FREE_AT(blk - b, b);              /* block 0, touching block 1's start */
  FREE_AT(blk + b, b);              /* block 2, touching the last byte's end */
  FREE_AT(blk, b / 4);              /* up to the small one */
  FREE_AT(blk + b / 4 + 3, b - 1 - b / 4 - 3); /* between the two */
  shk_buf *first = HOLD(blk, 1);    /* the block's first byte too */
  FREE_AT(blk - b, b);
  TAKEN_AT(blk - b, b + 1);
  TAKEN_AT(blk - 1, 2);
  shk_buf_release(mid);
  TAKEN_AT(blk, b);                 /* the ends still hold it */
  FREE_AT(blk + 1, b - 2);
  shk_buf_release(first);
  shk_buf_release(last);
  FREE_AT(blk, b);
  FREE_AT(blk - b, 3 * b);
}

/* Small ranges inside a live big one are refused everywhere in it, whether the big one is whole
 * aligned blocks or starts and ends inside blocks. */
BLOCK_TEST(a_small_range_inside_a_big_one_is_refused) {
  const size_t starts[] = {AT + b, AT + b - 3, AT + b + 1, AT + b / 2};
  const size_t lens[] = {2 * b, 2 * b + 8, 3 * b - 2, b};
  for (size_t i = 0; i < 4; i++) {
    shk_buf *big = HOLD(starts[i], lens[i]);
    expect_taken_range(starts[i], lens[i], true, __LINE__);
    for (size_t p = starts[i]; p < starts[i] + lens[i]; p += b / 8)
      TAKEN_AT(p, 1 + (p + 16 <= starts[i] + lens[i] ? 15 : 0));
    shk_buf_release(big);
    FREE_AT(starts[i], lens[i]);
  }
}

/* A big range whose head shares its block with small ranges before it and whose tail shares
 * its block with small ones after it goes in (touching two of them); each small one released
 * and consumed again; the big one released and its place filled by small ones, then taken back
 * once they go. */
BLOCK_TEST(a_big_range_sharing_its_end_blocks_with_small_ones_goes_in) {
  size_t head = AT + b / 2, tail = AT + 3 * b + b / 2; /* the big one: [head, tail) */
  const size_t small_at[] = {AT, head - 8, tail, AT + 4 * b - 8};
  shk_buf *small[4];
  for (size_t i = 0; i < 4; i++) small[i] = HOLD(small_at[i], 8);
  shk_buf *big = HOLD(head, tail - head);
  expect_taken_range(head, tail - head, false, __LINE__);
  TAKEN_AT(AT, 4 * b);
  FREE_AT(AT + 8, b / 2 - 16);   /* between the two before */
  FREE_AT(tail + 8, b / 2 - 16); /* between the two after */
  FREE_AT(AT - b, b);
  FREE_AT(AT + 4 * b, b);
  for (size_t i = 0; i < 4; i++) {
    shk_buf_release(small[i]);
    FREE_AT(small_at[i], 8);
    if (i == 1) TAKEN_AT(small_at[i], 9);                  /* into the big one's head */
    if (i == 2) TAKEN_AT(small_at[i] - 1, 9);              /* into its tail */
    if (i == 1) FREE_AT(AT + 8, head - AT - 8);            /* all of the head block before it */
    if (i == 2) FREE_AT(tail, AT + 4 * b - 8 - tail);      /* all of the tail block after it */
    small[i] = HOLD(small_at[i], 8);
  }
  expect_taken_range(head, tail - head, false, __LINE__);
  shk_buf_release(big);
  FREE_AT(head, tail - head);
  TAKEN_AT(head - 1, tail - head + 1);
  TAKEN_AT(head, tail - head + 1);
  /* Filled by small ones of a quarter block (the last shorter), each touching the next. */
  static shk_buf *fill[64];
  size_t n = 0, piece = b / 4;
  for (size_t at = head; at < tail; at += piece) {
    size_t len = tail - at < piece ? tail - at : piece;
    fill[n++] = HOLD(at, len);
    TAKEN_AT(at, len);
    TAKEN_AT(head, tail - head);
  }
  TAKEN_AT(head + b, b);
  TAKEN_AT(tail - 1, 1);
  shk_buf_release(fill[n / 2]);
  FREE_AT(head + (n / 2) * piece, piece);
  TAKEN_AT(head + (n / 2) * piece - 1, piece + 1);
  fill[n / 2] = HOLD(head + (n / 2) * piece, piece);
  for (size_t i = 0; i < n; i++) shk_buf_release(fill[i]);
  big = HOLD(head, tail - head);
  shk_buf_release(big);
  for (size_t i = 0; i < 4; i++) shk_buf_release(small[i]);
}

/* Ranges spanning two and three blocks (a byte or more of each end block), with neighbours
 * touching both ends: every block they reach is refused, the neighbours' places stay exact. */
BLOCK_TEST(ranges_spanning_two_and_three_blocks_are_exact) {
  size_t blk = AT + 2 * b;
  const size_t starts[] = {blk - 1, blk - b / 2, blk - b + 1, blk - 1, blk - b + 1, blk - b / 2};
  const size_t ends[] = {blk + 1, blk + b / 2, blk + b - 1, blk + b + 1, blk + 2 * b - 1,
                         blk + b + b / 2};
  for (size_t i = 0; i < 6; i++) {
    size_t s = starts[i], len = ends[i] - s;
    shk_buf *r = HOLD(s, len);
    expect_taken_range(s, len, true, __LINE__);
    shk_buf *before = HOLD(s - 5, 5), *after = HOLD(s + len, 5);
    expect_taken_range(s, len, false, __LINE__);
    TAKEN_AT(s - 5, len + 10);
    shk_buf_release(r);
    FREE_AT(s, len);
    TAKEN_AT(s - 1, len + 1);
    TAKEN_AT(s, len + 1);
    r = HOLD(s, len); /* back in its own place */
    shk_buf_release(before);
    shk_buf_release(r);
    FREE_AT(s - 5, len + 5);
    TAKEN_AT(s - 5, len + 6);
    shk_buf_release(after);
    FREE_AT(s - 5, len + 10);
  }
}

/* Hundreds of small ranges (several chunks of a tree, many granules of a block index), a run
 * of them released (dead places, emptied chunks), then one range over the run: every released
 * place and every gap inside it is refused, the live ones beside it stay exact, and released
 * one by one from the middle out the big range keeps hiding what lies inside it. */
static void a_range_over_hundreds_of_released_small_ones_hides_every_place_inside(void **state) {
  (void)state;
  size_t live_before = shk_buf_live_count();
  arena_make();
  case_block = 16;
  enum { N = 600, STEP = 16, LEN = 8 };
  static shk_buf *small[N];
  const size_t from = 150, to = 450; /* the run released */
  for (size_t i = 0; i < N; i++) small[i] = HOLD(AT + i * STEP, LEN);
  for (size_t i = from; i < to; i++) shk_buf_release(small[i]);
  size_t s = AT + from * STEP, end = AT + (to - 1) * STEP + LEN;
  TAKEN_AT(s - STEP, end - s + STEP);
  TAKEN_AT(s, end - s + STEP);
  shk_buf *big = HOLD(s, end - s);
  for (size_t i = from; i < to; i++) {
    TAKEN_AT(AT + i * STEP, 1);
    if (i + 1 == to) break;
    TAKEN_AT(AT + i * STEP + LEN, 1);            /* the gaps too */
    TAKEN_AT(AT + i * STEP + LEN - 1, STEP);
  }
  FREE_AT(s - STEP + LEN, STEP - LEN);           /* the gap before, touching both */
  FREE_AT(end, AT + to * STEP - end);            /* the gap after, touching both */
  TAKEN_AT(s - STEP + LEN, STEP - LEN + 1);
  TAKEN_AT(end - 1, AT + to * STEP - end + 1);
  for (size_t i = 0; i < from; i += 7) TAKEN_AT(AT + i * STEP + 3, 1);
  for (size_t i = to; i < N; i += 7) TAKEN_AT(AT + i * STEP + 3, 1);
  for (size_t k = 0; k < from; k++) { /* the live ones, from the run outwards */
    shk_buf_release(small[from - 1 - k]);
    shk_buf_release(small[to + k]);
    if (k % 16 != 0) continue;
    for (size_t i = from; i < to; i += 5) TAKEN_AT(AT + i * STEP + 1, 2);
    FREE_AT(AT + (from - 1 - k) * STEP, s - AT - (from - 1 - k) * STEP);
    FREE_AT(end, AT + (to + k) * STEP + LEN - end);
  }
  shk_buf_release(big);
  FREE_AT(AT, N * STEP);
  assert_int_equal(shk_buf_live_count(), live_before);
}

/* ---- threads ---- */

#define THREADS 4
#define THREAD_HELD 16

static atomic_int holders[ARENA_SIZE];
static atomic_int thread_overlaps, thread_wins, thread_errors;
static size_t thread_rounds;

typedef struct thread_range {
  shk_buf *buf;
  size_t off, len, until; /* held until round `until` */
} thread_range;

static void thread_let_go(thread_range *h) {
  if (!h->buf) return;
  for (size_t j = h->off; j < h->off + h->len; j++) atomic_fetch_sub(&holders[j], 1);
  shk_buf_release(h->buf);
  h->buf = NULL;
}

/* Consumes ranges of the mix in one arena, keeping each for 1-48 rounds; each byte's holders are
 * counted outside the library, so a range let in over a held one shows as a byte held twice.
 * Half the ranges fall in the arena's first 64 KiB, where they meet often. */
static void thread_churn(void *arg) {
  rng r = {1000 + (uint64_t)(uintptr_t)arg};
  thread_range held[THREAD_HELD] = {{0}};
  for (size_t i = 0; i < thread_rounds; i++) {
    thread_range *h = &held[i % THREAD_HELD];
    if (h->buf && h->until > i) continue;
    thread_let_go(h);
    size_t align, len;
    bool exact;
    len = draw_length(&r, &align, &exact, 2000);
    bool hot = len <= 16384 && below(&r, 2);
    size_t off = draw_offset(&r, len, align, exact, 0, hot ? 65536 : ARENA_SIZE, NULL, 0);
    shk_buf *b = (shk_buf *)1;
    int rc = shk_buf_consume(arena + off, len, 1, NULL, &b);
    if (rc != SHK_OK) {
      if (rc != SHK_EOVERLAP || b != NULL) atomic_fetch_add(&thread_errors, 1);
      continue;
    }
    if (shk_buf_data(b) != arena + off || shk_buf_size(b) != len)
      atomic_fetch_add(&thread_errors, 1);
    atomic_fetch_add(&thread_wins, 1);
    *h = (thread_range){b, off, len, i + 1 + below(&r, 48)};
    for (size_t j = off; j < off + len; j++)
      if (atomic_fetch_add(&holders[j], 1) != 0) atomic_fetch_add(&thread_overlaps, 1);
  }
  for (size_t k = 0; k < THREAD_HELD; k++) thread_let_go(&held[k]);
}

/* argv[0]: rounds per thread; stderr to argv[1] when given (the SHK_DEBUG run). */
static int child_threads(int argc, char **argv) {
  if (argc > 1 && !freopen(argv[1], "w", stderr)) return 99;
  arena_make();
  thread_rounds = (size_t)strtoull(argv[0], NULL, 10);
  size_t live_before = shk_buf_live_count();
  shk_test_thread threads[THREADS];
  for (int t = 0; t < THREADS; t++)
    SHK_CHECK(shk_test_thread_start(&threads[t], thread_churn, (void *)(intptr_t)t) == 0);
  for (int t = 0; t < THREADS; t++) shk_test_thread_join(&threads[t]);
  fprintf(stdout, "    %d ranges held, %d overlaps, %d errors\n", atomic_load(&thread_wins),
          atomic_load(&thread_overlaps), atomic_load(&thread_errors));
  SHK_CHECK(atomic_load(&thread_overlaps) == 0);
  SHK_CHECK(atomic_load(&thread_errors) == 0);
  SHK_CHECK((size_t)atomic_load(&thread_wins) > thread_rounds / 4); /* many got their place */
  SHK_CHECK(shk_buf_live_count() == live_before);
  for (size_t j = 0; j < ARENA_SIZE; j++) SHK_CHECK(atomic_load(&holders[j]) == 0);
  shk_buf *all = NULL; /* every place free again */
  SHK_CHECK(shk_buf_consume(arena, ARENA_SIZE, 1, NULL, &all) == SHK_OK);
  shk_buf_release(all);
  fflush(stderr);
  return 0;
}

static void threads_consuming_one_arena_never_hold_a_byte_twice(void **state) {
  (void)state;
  char rounds[24];
  snprintf(rounds, sizeof rounds, "%lu", (unsigned long)env_count("SHK_TEST_MODEL_ROUNDS", 6000));
  const char *argv[] = {rounds};
  shk_test_run_child_ok("threads", 1, argv, CHILD_TIMEOUT_MS);
}

/* ---- under SHK_DEBUG=buf: the index checks itself after each change ---- */

/* The whole of file `path` as a string (malloc'd), then the file is removed. */
static char *take_file(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  size_t cap = 65536, n = 0, got;
  char *text = malloc(cap + 1);
  assert_non_null(text);
  while ((got = fread(text + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n < cap) continue;
    cap *= 2;
    text = realloc(text, cap + 1);
    assert_non_null(text);
  }
  text[n] = '\0';
  fclose(f);
  remove(path);
  return text;
}

/* Runs child `name` with SHK_DEBUG=buf and its stderr in a file (the last of argv), which must
 * say nothing "inconsistent"; refusals are reported there as errors, which shows the checks were
 * on. On failure the end of what it said is shown. */
static void run_debug_buf(const char *name, int argc, const char **argv) {
  char path[96];
  shk_test_unique_name(path, sizeof path, "model-debug.txt");
  argv[argc - 1] = path;
  assert_int_equal(shk_test_setenv("SHK_DEBUG", "buf"), 0);
  shk_test_proc proc;
  int started = shk_test_spawn(name, argc, argv, &proc);
  shk_test_setenv("SHK_DEBUG", NULL);
  assert_int_equal(started, 0);
  shk_test_exit ex = shk_test_wait(&proc, CHILD_TIMEOUT_MS);
  char *text = take_file(path);
  size_t len = strlen(text);
  const char *end = text + (len > 900 ? len - 900 : 0); /* what fail_msg holds */
  if (ex.timed_out || ex.killed || ex.code != 0)
    fail_msg("child %s under SHK_DEBUG=buf: timed out %d, killed %d, code %d; it said, last:\n%s",
             name, ex.timed_out, ex.killed, ex.code, end);
  const char *bad = strstr(text, "inconsistent");
  if (bad) fail_msg("child %s: the range index says it is inconsistent:\n%.600s", name, bad);
  assert_non_null(strstr(text, "SHK_EOVERLAP")); /* the debug part was on */
  free(text);
}

static void the_index_stays_consistent_under_shk_debug_buf(void **state) {
  (void)state;
  char rounds[24], steps[24];
  /* Fewer refusals: each is reported with its caller, about 8 ms apiece under wine. */
  size_t n_rounds = env_count("SHK_TEST_MODEL_ROUNDS", 6000) / 4;
  size_t n_steps = env_count("SHK_TEST_MODEL_STEPS", 30000) / 3;
  snprintf(rounds, sizeof rounds, "%lu", (unsigned long)n_rounds);
  snprintf(steps, sizeof steps, "%lu", (unsigned long)n_steps);
  const char *threads_argv[] = {rounds, NULL};
  run_debug_buf("threads", 2, threads_argv);
  const char *model_argv[] = {"101", "1", steps, "debug", NULL};
  run_debug_buf("model", 5, model_argv);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(ranges_meeting_at_a_block_boundary_both_go_in),
    cmocka_unit_test(a_range_over_a_block_with_small_ranges_inside_is_refused),
    cmocka_unit_test(a_small_range_inside_a_big_one_is_refused),
    cmocka_unit_test(a_big_range_sharing_its_end_blocks_with_small_ones_goes_in),
    cmocka_unit_test(ranges_spanning_two_and_three_blocks_are_exact),
    cmocka_unit_test(a_range_over_hundreds_of_released_small_ones_hides_every_place_inside),
    cmocka_unit_test(random_ranges_of_every_size_agree_with_the_model),
    cmocka_unit_test(threads_consuming_one_arena_never_hold_a_byte_twice),
    cmocka_unit_test(the_index_stays_consistent_under_shk_debug_buf),
};

static const shk_test_child children[] = {{"model", child_model}, {"threads", child_threads}};

SHK_TEST_MAIN(tests, children)
