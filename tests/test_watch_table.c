/* The process-wide span table on its own: thousands of spans (many chunks), added and removed in
 * random order, always found exactly where a plain model says; overlaps between watchers
 * refused. */
/* ctest: labels=unit;internal timeout=120 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "common/watch_internal.h"

#define PAGE 4096u
#define SLOTS 3000u /* page-sized slots; span i covers slot i (and sometimes the next) */

static shk__watch_sink sink_a, sink_b;

typedef struct model {
  bool used[SLOTS];
  unsigned len[SLOTS];
} model;

static uintptr_t base(void) { return (uintptr_t)1 << 32; }

/* Which model span covers slot s: the one starting there, or a two-page one starting before. */
static const shk__watch_sink *expected(const model *m, size_t s) {
  if (m->used[s]) return &sink_a;
  if (s > 0 && m->used[s - 1] && m->len[s - 1] == 2) return &sink_a;
  return NULL;
}

static void check_all(const model *m) {
  for (size_t s = 0; s < SLOTS; s++) {
    const shk__watch_span *sp = shk__watch_table_enter(base() + s * PAGE + 17);
    const shk__watch_sink *got = sp ? sp->sink : NULL;
    shk__watch_table_exit();
    assert_ptr_equal(got, expected(m, s));
  }
}

static void thousands_of_spans_are_found_exactly_through_adds_and_removes(void **state) {
  (void)state;
  model *m = calloc(1, sizeof *m);
  srand(4242);
  /* Spans of one or two pages, never overlapping (a two-page span keeps the next slot free). */
  for (int round = 0; round < 20000; round++) {
    size_t s = (size_t)rand() % (SLOTS - 1);
    uintptr_t start = base() + s * PAGE;
    if (m->used[s]) {
      shk__watch_table_remove(&sink_a, start, start + m->len[s] * PAGE);
      m->used[s] = false;
    } else if (!m->used[s + 1] && !(s > 0 && m->used[s - 1] && m->len[s - 1] == 2)) {
      unsigned len = rand() % 3 == 0 && (s + 2 >= SLOTS || !m->used[s + 2]) ? 2 : 1;
      if (len == 2 && s + 2 < SLOTS && m->used[s + 2]) len = 1;
      assert_int_equal(shk__watch_table_add(&sink_a, start, start + len * PAGE, SHK__OS_PROT_READ_WRITE), SHK_OK);
      m->used[s] = true;
      m->len[s] = len;
    }
    if (round % 2500 == 0) check_all(m);
  }
  check_all(m);
  size_t live = 0;
  for (size_t s = 0; s < SLOTS; s++) live += m->used[s];
  printf("    %zu spans live (chunks hold 128)\n", live);
  assert_true(live > 512);
  /* Another watcher may not take a page that is taken, before, inside or after. */
  for (size_t s = 0; s < SLOTS; s++) {
    if (!expected(m, s)) continue;
    uintptr_t start = base() + s * PAGE;
    assert_int_equal(shk__watch_table_add(&sink_b, start, start + PAGE, SHK__OS_PROT_READ_WRITE), SHK_EOVERLAP);
    if (s > 0) assert_int_equal(shk__watch_table_add(&sink_b, start - PAGE, start + PAGE, SHK__OS_PROT_READ_WRITE), SHK_EOVERLAP);
  }
  /* A span of the same watcher may share a page (regions sharing a page), and goes again. */
  for (size_t s = 0; s < SLOTS; s++) {
    if (!m->used[s]) continue;
    uintptr_t start = base() + s * PAGE;
    assert_int_equal(shk__watch_table_add(&sink_a, start, start + PAGE, SHK__OS_PROT_READ_WRITE), SHK_OK);
    shk__watch_table_remove(&sink_a, start, start + PAGE);
    break;
  }
  check_all(m);
  for (size_t s = 0; s < SLOTS; s++) {
    if (!m->used[s]) continue;
    uintptr_t start = base() + s * PAGE;
    shk__watch_table_remove(&sink_a, start, start + m->len[s] * PAGE);
    m->used[s] = false;
  }
  check_all(m);
  free(m);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(thousands_of_spans_are_found_exactly_through_adds_and_removes),
};

static const shk_test_child children[] = {{"none", NULL}};

SHK_TEST_MAIN(tests, children)
