/* Chunk tasks at their documented limits, in every mode: the last accepted and the first refused
 * value of chunks (SHK_TASK_CHUNKS_MAX), workers (SHK_TASK_WORKERS_MAX), argument bytes
 * (SHK_TASK_ARG_MAX), item size and output bytes (SHK_TASK_OUT_MAX), and what each chunk sees at
 * its ends: its first and last byte, its halo clipped exactly at the input's end. */
/* ctest: labels=unit;multiprocess timeout=300 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

static const shk_task_mode modes[] = {SHK_TASK_INLINE, SHK_TASK_THREADS, SHK_TASK_PROCESSES};

/* What a chunk saw, sent back as its result. */
typedef struct seen {
  uint64_t index, count, offset, size, readable, total;
  int first, last_own, last_readable; /* bytes at data[0], data[size-1], data[readable-1]; -1: none */
} seen;

static int report_fn(const shk_task_chunk *c, shk_task_out *out) {
  seen s;
  memset(&s, 0, sizeof s);
  s.index = c->index;
  s.count = c->count;
  s.offset = c->offset;
  s.size = c->size;
  s.readable = c->readable;
  s.total = c->total;
  const unsigned char *d = c->data;
  s.first = c->readable ? d[0] : -1;
  s.last_own = c->size ? d[c->size - 1] : -1;
  s.last_readable = c->readable ? d[c->readable - 1] : -1;
  if (!c->readable && c->data) return 99; /* documented: NULL when size and readable are 0 */
  return shk_task_out_write(out, &s, sizeof s);
}

/* Runs report_fn over input[0..size) and checks every chunk against the documented split. */
static int check_split(shk_task_mode mode, const unsigned char *input, size_t size, size_t chunks,
                       size_t item, size_t halo) {
  shk_task_options o = {0};
  o.mode = mode;
  o.chunks = chunks;
  o.item_size = item;
  o.halo = halo;
  o.workers = 2;
  shk_task_results *r = NULL;
  SHK_CHECK(shk_task_run(input, size, report_fn, &o, &r) == SHK_OK);
  SHK_CHECK(shk_task_results_count(r) == chunks);
  SHK_CHECK(shk_task_results_get(r, chunks - 1) != NULL);
  SHK_CHECK(shk_task_results_get(r, chunks) == NULL);
  size_t unit = item > 1 ? item : 1, items = size / unit, next = 0;
  for (size_t i = 0; i < chunks; i++) {
    const shk_task_result *res = shk_task_results_get(r, i);
    SHK_CHECK(res->status == SHK_TASK_OK && res->size == sizeof(seen));
    seen s;
    memcpy(&s, res->data, sizeof s);
    size_t want_items = items / chunks + (i < items % chunks ? 1 : 0);
    size_t want_size = want_items * unit;
    size_t left = size - next - want_size;
    size_t want_readable = want_size + (halo < left ? halo : left);
    if (s.index != i || s.count != chunks || s.total != size || s.offset != next ||
        s.size != want_size || s.readable != want_readable || res->offset != next ||
        res->length != want_size) {
      fprintf(stderr, "mode %d, %llu bytes, %llu chunks, item %llu, halo %llu: chunk %llu saw offset "
              "%llu size %llu readable %llu, expected %llu %llu %llu\n", (int)mode,
              (unsigned long long)size, (unsigned long long)chunks, (unsigned long long)item,
              (unsigned long long)halo, (unsigned long long)i, (unsigned long long)s.offset,
              (unsigned long long)s.size, (unsigned long long)s.readable, (unsigned long long)next,
              (unsigned long long)want_size, (unsigned long long)want_readable);
      return __LINE__;
    }
    SHK_CHECK(s.first == (want_readable ? input[next] : -1));
    SHK_CHECK(s.last_own == (want_size ? input[next + want_size - 1] : -1));
    SHK_CHECK(s.last_readable == (want_readable ? input[next + want_readable - 1] : -1));
    next += want_size;
  }
  SHK_CHECK(next == size);
  shk_task_results_free(r);
  return 0;
}

/* Halos: 0, one short of the rest of the input, exactly the rest, one more, and SIZE_MAX (no
 * overflow), with chunk sizes that differ (10 bytes in 3 chunks: 4, 3, 3). */
SHK_CHILD_TEST(halos_are_clipped_exactly_at_the_input_end, 120000) {
  (void)argc;
  (void)argv;
  unsigned char input[10];
  for (int i = 0; i < 10; i++) input[i] = (unsigned char)(0xA0 + i);
  const size_t halos[] = {0, 1, 2, 3, 5, 6, 7, SIZE_MAX - 1, SIZE_MAX};
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++)
    for (size_t h = 0; h < sizeof halos / sizeof halos[0]; h++) {
      int rc = check_split(modes[m], input, sizeof input, 3, 1, halos[h]);
      if (rc) return rc;
    }
  return 0;
}

/* Item sizes: a chunk boundary never splits an item; the input one item long in more chunks than
 * items; a size one byte off a multiple is refused; item size 0 and 1 mean any byte. */
SHK_CHILD_TEST(chunk_ends_fall_on_item_boundaries_at_every_size, 120000) {
  (void)argc;
  (void)argv;
  unsigned char input[24];
  for (int i = 0; i < 24; i++) input[i] = (unsigned char)i;
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    SHK_CHECK(check_split(modes[m], input, 24, 5, 8, 3) == 0);   /* 3 items in 5 chunks */
    SHK_CHECK(check_split(modes[m], input, 24, 3, 24, 100) == 0); /* one item: chunk 0 has it */
    SHK_CHECK(check_split(modes[m], input, 24, 2, 0, 1) == 0);
    SHK_CHECK(check_split(modes[m], input, 23, 4, 1, 2) == 0);
    SHK_CHECK(check_split(modes[m], input, 0, 3, 8, 5) == 0);   /* empty input: all empty */
    SHK_CHECK(check_split(modes[m], input, 1, 1, 1, 0) == 0);
  }
  shk_task_results *r = NULL;
  shk_task_options o = {0};
  o.mode = SHK_TASK_INLINE;
  o.item_size = 8;
  SHK_CHECK(shk_task_run(input, 23, report_fn, &o, &r) == SHK_EINVAL && r == NULL);
  o.item_size = 25; /* larger than the input, which is then not a multiple of it */
  SHK_CHECK(shk_task_run(input, 24, report_fn, &o, &r) == SHK_EINVAL && r == NULL);
  return 0;
}

static int count_fn(const shk_task_chunk *c, shk_task_out *out) {
  (void)out;
  return c->count == SHK_TASK_CHUNKS_MAX && c->index < c->count ? 0 : 1;
}

/* SHK_TASK_CHUNKS_MAX chunks run, every one of them, in every mode (the workers check the count
 * they read from shared memory against the same limit); one more is refused. */
SHK_CHILD_TEST(the_most_chunks_run_and_one_more_is_refused, 240000) {
  (void)argc;
  (void)argv;
  static unsigned char input[4096];
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    shk_task_options o = {0};
    o.mode = modes[m];
    o.workers = 2;
    o.chunks = SHK_TASK_CHUNKS_MAX;
    o.timeout_ms = 60000; /* a worker that stops short would otherwise hang the call */
    shk_task_results *r = NULL;
    SHK_CHECK(shk_task_run(input, sizeof input, count_fn, &o, &r) == SHK_OK);
    SHK_CHECK(shk_task_results_count(r) == SHK_TASK_CHUNKS_MAX);
    const shk_task_result *last = shk_task_results_get(r, SHK_TASK_CHUNKS_MAX - 1);
    SHK_CHECK(last && last->status == SHK_TASK_OK && last->offset + last->length == sizeof input);
    SHK_CHECK(shk_task_results_get(r, SHK_TASK_CHUNKS_MAX) == NULL);
    shk_task_results_free(r);
    o.chunks = SHK_TASK_CHUNKS_MAX + 1;
    SHK_CHECK(shk_task_run(input, sizeof input, count_fn, &o, &r) == SHK_ERANGE && r == NULL);
  }
  return 0;
}

static int arg_fn(const shk_task_chunk *c, shk_task_out *out) {
  (void)out;
  const unsigned char *a = c->arg;
  if (c->arg_size != SHK_TASK_ARG_MAX || !a) return 1;
  for (size_t i = 0; i < c->arg_size; i += 4093)
    if (a[i] != (unsigned char)(i * 7 + 1)) return 2;
  return a[c->arg_size - 1] == (unsigned char)((c->arg_size - 1) * 7 + 1) ? 0 : 3;
}

/* An argument of SHK_TASK_ARG_MAX bytes arrives intact to its last byte in every mode and in a
 * pool; one byte more is refused. */
SHK_CHILD_TEST(the_largest_argument_arrives_to_its_last_byte, 120000) {
  (void)argc;
  (void)argv;
  unsigned char *arg = malloc(SHK_TASK_ARG_MAX + 1);
  SHK_CHECK(arg != NULL);
  for (size_t i = 0; i <= SHK_TASK_ARG_MAX; i++) arg[i] = (unsigned char)(i * 7 + 1);
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    shk_task_options o = {0};
    o.mode = modes[m];
    o.workers = 2;
    o.chunks = 3;
    o.arg = arg;
    o.arg_size = SHK_TASK_ARG_MAX;
    shk_task_results *r = NULL;
    SHK_CHECK(shk_task_run("abc", 3, arg_fn, &o, &r) == SHK_OK);
    shk_task_results_free(r);
    shk_task_pool *pool = NULL;
    SHK_CHECK(shk_task_pool_create(2, modes[m], &pool) == SHK_OK);
    SHK_CHECK(shk_task_pool_run(pool, "abc", 3, arg_fn, &o, &r) == SHK_OK);
    shk_task_results_free(r);
    o.arg_size = SHK_TASK_ARG_MAX + 1;
    SHK_CHECK(shk_task_pool_run(pool, "abc", 3, arg_fn, &o, &r) == SHK_ERANGE && r == NULL);
    SHK_CHECK(shk_task_run("abc", 3, arg_fn, &o, &r) == SHK_ERANGE && r == NULL);
    shk_task_pool_free(pool);
  }
  free(arg);
  return 0;
}

static int index_fn(const shk_task_chunk *c, shk_task_out *out) {
  uint64_t i = c->index;
  return shk_task_out_write(out, &i, sizeof i);
}

/* A pool of SHK_TASK_WORKERS_MAX workers starts and runs in each mode (inline has one); one more
 * is refused; shk_task_run takes the same numbers. */
SHK_CHILD_TEST(the_most_workers_start_and_one_more_is_refused, 120000) {
  (void)argc;
  (void)argv;
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    shk_task_pool *pool = NULL;
    SHK_CHECK(shk_task_pool_create(SHK_TASK_WORKERS_MAX, modes[m], &pool) == SHK_OK);
    SHK_CHECK(shk_task_pool_workers(pool) ==
              (modes[m] == SHK_TASK_INLINE ? 1u : SHK_TASK_WORKERS_MAX));
    shk_task_options o = {0};
    o.chunks = 2 * SHK_TASK_WORKERS_MAX;
    shk_task_results *r = NULL;
    SHK_CHECK(shk_task_pool_run(pool, "x", 1, index_fn, &o, &r) == SHK_OK);
    for (size_t i = 0; i < o.chunks; i++) {
      const shk_task_result *res = shk_task_results_get(r, i);
      uint64_t v;
      SHK_CHECK(res && res->size == sizeof v);
      memcpy(&v, res->data, sizeof v);
      SHK_CHECK(v == i);
    }
    shk_task_results_free(r);
    shk_task_pool_free(pool);
    SHK_CHECK(shk_task_pool_create(SHK_TASK_WORKERS_MAX + 1, modes[m], &pool) == SHK_ERANGE);
    SHK_CHECK(pool == NULL);
    o.mode = modes[m];
    o.workers = SHK_TASK_WORKERS_MAX;
    SHK_CHECK(shk_task_run("x", 1, index_fn, &o, &r) == SHK_OK);
    shk_task_results_free(r);
  }
  return 0;
}

/* One write of one byte more than SHK_TASK_OUT_MAX is refused before a byte is read (the source
 * here is a single byte: the limit is checked first); the chunk can still write afterwards. */
static int too_much_fn(const shk_task_chunk *c, shk_task_out *out) {
  (void)c;
  static const unsigned char one = 1;
  if (shk_task_out_write(out, &one, SHK_TASK_OUT_MAX + 1) != SHK_ELIMIT) return 1;
  if (shk_task_out_write(out, &one, SIZE_MAX / 2) != SHK_ELIMIT) return 2;
  return shk_task_out_write(out, &one, 1) == SHK_OK ? 0 : 3;
}

SHK_CHILD_TEST(an_output_above_the_limit_is_refused, 60000) {
  (void)argc;
  (void)argv;
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    shk_task_options o = {0};
    o.mode = modes[m];
    o.workers = 1;
    o.chunks = 1;
    shk_task_results *r = NULL;
    SHK_CHECK(shk_task_run("x", 1, too_much_fn, &o, &r) == SHK_OK);
    const shk_task_result *res = shk_task_results_get(r, 0);
    SHK_CHECK(res->status == SHK_TASK_OK && res->size == 1);
    shk_task_results_free(r);
  }
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(halos_are_clipped_exactly_at_the_input_end),
    cmocka_unit_test(chunk_ends_fall_on_item_boundaries_at_every_size),
    cmocka_unit_test(the_most_chunks_run_and_one_more_is_refused),
    cmocka_unit_test(the_largest_argument_arrives_to_its_last_byte),
    cmocka_unit_test(the_most_workers_start_and_one_more_is_refused),
    cmocka_unit_test(an_output_above_the_limit_is_refused),
};
static const shk_test_child children[] = {
    SHK_TEST_CHILD(halos_are_clipped_exactly_at_the_input_end),
    SHK_TEST_CHILD(chunk_ends_fall_on_item_boundaries_at_every_size),
    SHK_TEST_CHILD(the_most_chunks_run_and_one_more_is_refused),
    SHK_TEST_CHILD(the_largest_argument_arrives_to_its_last_byte),
    SHK_TEST_CHILD(the_most_workers_start_and_one_more_is_refused),
    SHK_TEST_CHILD(an_output_above_the_limit_is_refused),
};

int main(int argc, char **argv) {
  shk_worker_main(argc, argv);
  return shk_test_main(argc, argv, __FILE__, tests, sizeof tests / sizeof tests[0], children,
                       sizeof children / sizeof children[0]);
}
