/* A pool's copy-in on several threads (src/common/task_copy.c): every byte lands where memcpy
 * would put it and none outside, for odd sizes, unaligned ends, sizes around the threshold and
 * any thread count; the ordered copy's front covers only copied bytes; and a process pool that
 * copies an input in (beside the work) gets every match, each chunk its bytes and halo. */
/* ctest: labels=unit;multiprocess;tsan;internal timeout=120 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"
#include "common/task_copy.h"
#include "os.h"

#define GUARD 64
#define CHILD_TIMEOUT_MS 60000

static void fill_pattern(unsigned char *d, size_t n, uint32_t seed) {
  uint32_t x = seed | 1u;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    d[i] = (unsigned char)x;
  }
}

/* The source bytes of every copy: one pattern, made once (the tests also run under valgrind). */
#define SOURCE_MAX (3 * SHK__COPY_PIECE_MIN + 16384)
static unsigned char *source(void) {
  static unsigned char *src;
  if (!src) {
    src = malloc(SOURCE_MAX);
    assert_non_null(src);
    fill_pattern(src, SOURCE_MAX, 7);
  }
  return src;
}

/* Copies size bytes from the source at src_skew to dst_skew bytes past a guard, with `threads`,
 * and checks the copy and the guard bytes on either side of it. */
static void check_copy(size_t size, size_t src_skew, size_t dst_skew, unsigned threads) {
  assert_true(size + src_skew <= SOURCE_MAX);
  const unsigned char *src = source() + src_skew;
  unsigned char *dst = malloc(size + dst_skew + 2 * GUARD);
  assert_non_null(dst);
  memset(dst, 0xA5, size + dst_skew + 2 * GUARD);
  unsigned char *to = dst + GUARD + dst_skew;
  shk__task_copy_in(to, src, size, threads);
  assert_int_equal(memcmp(to, src, size), 0);
  for (size_t i = 0; i < GUARD + dst_skew; i++) assert_int_equal(dst[i], 0xA5);
  for (size_t i = 0; i < GUARD; i++) assert_int_equal(to[size + i], 0xA5);
  free(dst);
}

static void zero_bytes_touch_nothing(void **state) {
  (void)state;
  unsigned char d[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  shk__task_copy_in(NULL, NULL, 0, 8);
  shk__task_copy_in(d, "abcdefgh", 0, 8);
  for (int i = 0; i < 8; i++) assert_int_equal(d[i], i + 1);
  assert_int_equal(shk__task_copy_plan(0, 8), 1);
}

static void the_plan_uses_one_thread_below_the_threshold_and_caps_the_rest(void **state) {
  (void)state;
  const size_t piece = SHK__COPY_PIECE_MIN;
  assert_int_equal(shk__task_copy_plan(2 * piece - 1, 64), 1);
  assert_int_equal(shk__task_copy_plan(2 * piece, 64), 2);
  assert_int_equal(shk__task_copy_plan(2 * piece, 0), 1);
  assert_int_equal(shk__task_copy_plan(2 * piece, 1), 1);
  assert_int_equal(shk__task_copy_plan(7 * piece + 5, 3), 3);
  assert_int_equal(shk__task_copy_plan(7 * piece + 5, 100), 7);
  assert_int_equal(shk__task_copy_plan(SIZE_MAX, 100000), SHK__COPY_THREADS_MAX);
}

static void sizes_around_the_threshold_copy_exactly(void **state) {
  (void)state;
  const size_t piece = SHK__COPY_PIECE_MIN;
  const size_t sizes[] = {1, 7, 4096, 4097, 2 * piece - 1, 2 * piece, 2 * piece + 1, 3 * piece - 4095,
                          3 * piece + 4097};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    check_copy(sizes[s], 0, 0, 2);
    check_copy(sizes[s], 0, 0, 4);
  }
}

static void unaligned_ends_and_odd_sizes_copy_exactly_with_any_thread_count(void **state) {
  (void)state;
  const size_t piece = SHK__COPY_PIECE_MIN;
  const size_t size = 3 * piece + 4321;
  const unsigned threads[] = {1, 2, 3, 64, 1000};
  const size_t skews[][2] = {{0, 0}, {1, 0}, {0, 1}, {3, 7}, {4095, 1}, {17, 4093}};
  for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++)
    for (size_t k = 0; k < sizeof skews / sizeof skews[0]; k++)
      check_copy(size, skews[k][0], skews[k][1], threads[t]);
}

/* ---- in order, beside readers ------------------------------------------------------------ */

typedef struct front_reader {
  const unsigned char *src, *dst;
  size_t size;
  _Atomic uint64_t *copied;
  int bad; /* 1: the front went back, 2: bytes below the front differ */
} front_reader;

/* Follows the front while the copy runs: it only grows, and every byte below it is in place. */
static void follow_front(void *arg) {
  front_reader *r = arg;
  uint64_t last = 0;
  while (last < r->size) {
    uint64_t now = atomic_load_explicit(r->copied, memory_order_acquire);
    if (now == UINT64_MAX - 1) continue; /* not started */
    if (now < last || now > r->size) r->bad = 1;
    else if (memcmp(r->dst + last, r->src + last, (size_t)(now - last)) != 0) r->bad = 2;
    if (r->bad) return;
    last = now;
  }
}

static void an_ordered_copy_moves_its_front_only_over_copied_bytes(void **state) {
  (void)state;
  const size_t sizes[] = {0, 100, 3 * SHK__COPY_PIECE_MIN + 4097, 3 * SHK__COPY_PIECE_MIN + 16384};
  const unsigned threads[] = {1, 2, 5};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
      size_t size = sizes[s];
      unsigned char *dst = calloc(1, size + 1);
      assert_non_null(dst);
      _Atomic uint64_t copied = UINT64_MAX - 1;
      front_reader r = {source(), dst, size, &copied, 0};
      shk__os_thread *reader;
      assert_int_equal(shk__os_thread_start(&reader, follow_front, &r), SHK_OK);
      shk__task_copy_in_order(dst, source(), size, threads[t], &copied);
      shk__os_thread_join(reader);
      assert_int_equal(r.bad, 0);
      assert_true(atomic_load(&copied) == size);
      assert_memory_equal(dst, source(), size);
      free(dst);
    }
  }
}

/* ---- through a pool ----------------------------------------------------------------------- */

/* Sums the chunk's bytes: a wrong or missing byte anywhere changes some chunk's sum. */
static int sum_fn(const shk_task_chunk *c, shk_task_out *out) {
  const unsigned char *d = c->data;
  uint64_t sum = 0;
  for (size_t i = 0; i < c->size; i++) sum += (uint64_t)d[i] * (c->offset + i + 1);
  return shk_task_out_write(out, &sum, sizeof sum);
}


/* A process pool whose input is copied in (plain memory, not a segment): an unaligned input
 * above the threshold, then a larger one (the staging segment grows: fresh pages), then a
 * smaller one (the kept segment), each summed exactly. */
static int copied_inputs_reach_the_workers_intact_child(int argc, char **argv) {
  (void)argc;
  (void)argv;
  const size_t piece = SHK__COPY_PIECE_MIN;
  const size_t sizes[] = {3 * piece + 3, 6 * piece + 4097, 2 * piece + 1, 100};
  unsigned char *mem = malloc(6 * piece + 4097 + 1);
  SHK_CHECK(mem != NULL);
  unsigned char *input = mem + 1;
  fill_pattern(mem, 6 * piece + 4097 + 1, 99);
  shk_task_pool *pool = NULL;
  SHK_CHECK(shk_task_pool_create(3, SHK_TASK_PROCESSES, &pool) == SHK_OK);
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t size = sizes[s];
    shk_task_options opts = {0};
    opts.chunks = 13;
    shk_task_results *results = NULL;
    SHK_CHECK(shk_task_pool_run(pool, input, size, sum_fn, &opts, &results) == SHK_OK);
    uint64_t got = 0, want = 0;
    for (size_t i = 0; i < shk_task_results_count(results); i++) {
      const shk_task_result *r = shk_task_results_get(results, i);
      SHK_CHECK(r->status == SHK_TASK_OK && r->size == sizeof got);
      uint64_t v;
      memcpy(&v, r->data, sizeof v);
      got += v;
    }
    for (size_t i = 0; i < size; i++) want += (uint64_t)input[i] * (i + 1);
    shk_task_results_free(results);
    SHK_CHECK(got == want);
  }
  shk_task_pool_free(pool);
  free(mem);
  return 0;
}

/* Sums every readable byte (the chunk's and its halo), weighted by its absolute offset. */
static int halo_sum_fn(const shk_task_chunk *c, shk_task_out *out) {
  const unsigned char *d = c->data;
  uint64_t sum = 0;
  for (size_t i = 0; i < c->readable; i++) sum += (uint64_t)d[i] * (c->offset + i + 1);
  return shk_task_out_write(out, &sum, sizeof sum);
}

/* The copy-in runs beside the work, in chunk order: each chunk must see exactly its bytes and
 * its halo, also where the halo lies past the copy front when the chunk is claimed. The same
 * buffer is refilled between calls, so a chunk that read before its bytes were copied would
 * see the previous call's bytes in the kept staging segment. */
static int chunks_see_their_bytes_and_halos_across_the_copy_front_child(int argc, char **argv) {
  (void)argc;
  (void)argv;
  const size_t size = 12 * SHK__COPY_PIECE_MIN + 12345;
  const size_t halo = 70000;
  unsigned char *input = malloc(size);
  SHK_CHECK(input != NULL);
  shk_task_pool *pool = NULL;
  SHK_CHECK(shk_task_pool_create(2, SHK_TASK_PROCESSES, &pool) == SHK_OK);
  for (uint32_t call = 0; call < 4; call++) {
    fill_pattern(input, size, 1000 + call);
    shk_task_options opts = {0};
    opts.chunks = call % 2 ? 97 : 300;
    opts.halo = halo;
    shk_task_results *results = NULL;
    SHK_CHECK(shk_task_pool_run(pool, input, size, halo_sum_fn, &opts, &results) == SHK_OK);
    for (size_t i = 0; i < shk_task_results_count(results); i++) {
      const shk_task_result *r = shk_task_results_get(results, i);
      SHK_CHECK(r->status == SHK_TASK_OK && r->size == sizeof(uint64_t));
      uint64_t got, want = 0;
      memcpy(&got, r->data, sizeof got);
      size_t end = r->offset + r->length + halo < size ? r->offset + r->length + halo : size;
      for (size_t k = r->offset; k < end; k++) want += (uint64_t)input[k] * (k + 1);
      SHK_CHECK(got == want);
    }
    shk_task_results_free(results);
  }
  shk_task_pool_free(pool);
  free(input);
  return 0;
}

static void chunks_see_their_bytes_and_halos_across_the_copy_front(void **state) {
  (void)state;
  shk_test_run_child_ok("chunks_see_their_bytes_and_halos_across_the_copy_front", 0, NULL,
                        CHILD_TIMEOUT_MS);
}

static void copied_inputs_reach_the_workers_intact(void **state) {
  (void)state;
  shk_test_run_child_ok("copied_inputs_reach_the_workers_intact", 0, NULL, CHILD_TIMEOUT_MS);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(zero_bytes_touch_nothing),
    cmocka_unit_test(the_plan_uses_one_thread_below_the_threshold_and_caps_the_rest),
    cmocka_unit_test(sizes_around_the_threshold_copy_exactly),
    cmocka_unit_test(unaligned_ends_and_odd_sizes_copy_exactly_with_any_thread_count),
    cmocka_unit_test(copied_inputs_reach_the_workers_intact),
    cmocka_unit_test(an_ordered_copy_moves_its_front_only_over_copied_bytes),
    cmocka_unit_test(chunks_see_their_bytes_and_halos_across_the_copy_front),
};

static const shk_test_child children[] = {
    {"copied_inputs_reach_the_workers_intact", copied_inputs_reach_the_workers_intact_child},
    {"chunks_see_their_bytes_and_halos_across_the_copy_front",
     chunks_see_their_bytes_and_halos_across_the_copy_front_child},
};

int main(int argc, char **argv) {
  shk_worker_main(argc, argv);
  return shk_test_main(argc, argv, __FILE__, tests, sizeof tests / sizeof tests[0], children,
                       sizeof children / sizeof children[0]);
}
