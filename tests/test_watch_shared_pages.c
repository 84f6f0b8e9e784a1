/* Regions of one watcher that share pages with both neighbours: a region whose first page is
 * its left neighbour's last and whose last page is its right neighbour's first (with pages of
 * its own between), under the protection backend and under auto, where a region sharing a page
 * must take its neighbour's backend. Every write to each region is reported for that region
 * only, and removing them in any order gives every page its protection back. Each test runs in
 * a child process (page faults). */
/* ctest: labels=unit;fault timeout=120 internal */
#include <stdio.h>
#include <string.h>

#include "os.h"
#include "shk_test.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 60000

typedef struct seen {
  unsigned count[4]; /* events per region, by index */
  uint32_t ids[4];
  size_t first[4], end[4]; /* the changed span seen per region: [first, end) */
} seen;

static void on_event(const shk_watch_event *e, void *user) {
  seen *s = user;
  for (int i = 0; i < 4; i++) {
    if (s->ids[i] != e->region_id) continue;
    if (s->count[i] == 0 || e->offset < s->first[i]) s->first[i] = e->offset;
    if (e->offset + e->length > s->end[i]) s->end[i] = e->offset + e->length;
    s->count[i]++;
  }
}

/* pages: 4 pages; regions A (ends in page 1), C (starts in page 3), then B between them
 * (pages 1-3, sharing page 1 with A and page 3 with C), then D inside page 0 before A. */
static int three_neighbours(shk_watch_backend backend) {
  size_t ps = shk__os_caps_get()->page_size;
  unsigned char *p = NULL;
  SHK_CHECK(shk_watch_pages_alloc(4 * ps, (void **)&p) == SHK_OK);
  shk_watch_options opts;
  shk_watch_options_init(&opts);
  opts.backend = backend;
  shk_watcher *w = NULL;
  SHK_CHECK(shk_watch_create(&opts, &w) == SHK_OK);
  seen s;
  memset(&s, 0, sizeof s);
  SHK_CHECK(shk_watch_set_callback(w, on_event, &s) == SHK_OK);
  unsigned char *a = p + 100, *b = p + ps + 200, *c = p + 3 * ps + 10, *d = p + 10;
  size_t a_size = ps, b_size = 2 * ps - 195, c_size = 64, d_size = 50; /* B ends in page 3 */
  SHK_CHECK(b + b_size <= c && a + a_size <= b && d + d_size <= a);
  SHK_CHECK(shk_watch_add(w, a, a_size, "A", &s.ids[0]) == SHK_OK);
  SHK_CHECK(shk_watch_add(w, c, c_size, "C", &s.ids[2]) == SHK_OK);
  SHK_CHECK(shk_watch_add(w, b, b_size, "B", &s.ids[1]) == SHK_OK);
  SHK_CHECK(shk_watch_add(w, d, d_size, "D", &s.ids[3]) == SHK_OK);
  /* Sharing a page, a region has its neighbour's backend. */
  shk_watch_backend of[4];
  for (int i = 0; i < 4; i++) SHK_CHECK(shk_watch_region_backend(w, s.ids[i], &of[i]) == SHK_OK);
  SHK_CHECK(of[1] == of[0] && of[2] == of[0] && of[3] == of[0]);
  if (backend != SHK_WATCH_AUTO) SHK_CHECK(of[0] == backend);

  /* One write in each region, one outside all of them on a shared page. */
  b[ps] = 1;              /* B's own middle page */
  b[0] = 2;               /* page 1, shared with A */
  b[b_size - 1] = 3;      /* page 3, shared with C */
  a[0] = 4;
  c[c_size - 1] = 5;
  d[0] = 6;
  p[ps + 150] = 7;        /* page 1, between A and B: no region */
  SHK_CHECK(shk_watch_flush(w) == SHK_OK);
  fprintf(stderr, "events per region: A %u B %u C %u D %u\n", s.count[0], s.count[1],
          s.count[2], s.count[3]);
  for (int i = 0; i < 4; i++) SHK_CHECK(s.count[i] >= 1);
  /* Exactly the bytes written, in each region's own offsets. */
  SHK_CHECK(s.first[1] == 0 && s.end[1] == b_size);
  SHK_CHECK(s.first[0] == 0 && s.end[0] == 1);
  SHK_CHECK(s.first[2] == c_size - 1 && s.end[2] == c_size);
  SHK_CHECK(s.first[3] == 0 && s.end[3] == 1);

  /* Removed in another order than added: every page read-write and writable again. */
  SHK_CHECK(shk_watch_remove(w, s.ids[1]) == SHK_OK);
  SHK_CHECK(shk_watch_remove(w, s.ids[3]) == SHK_OK);
  SHK_CHECK(shk_watch_remove(w, s.ids[0]) == SHK_OK);
  SHK_CHECK(shk_watch_remove(w, s.ids[2]) == SHK_OK);
  int prot = 0;
  bool uniform = false;
  int rc = shk__os_prot_query(p, 4 * ps, &prot, &uniform);
  SHK_CHECK(rc == SHK_EUNSUPPORTED ||
            (rc == SHK_OK && uniform &&
             (prot & SHK__OS_PROT_READ_WRITE) == SHK__OS_PROT_READ_WRITE));
  for (size_t off = 0; off < 4 * ps; off += 512) p[off] ^= 1;
  shk_watch_free(w);
  shk_watch_pages_free(p, 4 * ps);
  return 0;
}

SHK_CHILD_TEST(a_region_sharing_pages_with_both_neighbours_is_watched_mprotect,
               CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return three_neighbours(SHK_WATCH_MPROTECT);
}

SHK_CHILD_TEST(a_region_sharing_pages_with_both_neighbours_is_watched_auto, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return three_neighbours(SHK_WATCH_AUTO);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_region_sharing_pages_with_both_neighbours_is_watched_mprotect),
    cmocka_unit_test(a_region_sharing_pages_with_both_neighbours_is_watched_auto),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(a_region_sharing_pages_with_both_neighbours_is_watched_mprotect),
    SHK_TEST_CHILD(a_region_sharing_pages_with_both_neighbours_is_watched_auto),
};

SHK_TEST_MAIN(tests, children)
