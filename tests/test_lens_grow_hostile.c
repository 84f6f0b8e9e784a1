/* lens extensions (2.3) as hostile input: an extension with a wrong magic, version, index,
 * geometry, size or creation identity, a count past the limit, an extension that is missing or
 * shrinks under the reader: each is refused with a message that says what is wrong
 * (shk_lens_reader_problem), its rings are not read, and the main segment's still are. */
/* ctest: labels=unit;internal;fault timeout=60 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lens_internal.h"
#include "shk_test.h"
#include "shmkit.h"

#include "shk_test_thread.h"

#ifndef _WIN32
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

typedef struct fixture {
  char name[64], ext[SHK_SHM_NAME_MAX + 1];
  shk_lens *lens;
  shk_shm *main_shm, *ext_shm;
  shk_lens_wire_header *h;
  shk_lens_wire_ext_header *e;
} fixture;

static void one_zone(shk_lens *lens, const char *name) {
  shk_lens_zone z;
  shk_lens_zone_begin(lens, &z, name, 0);
  shk_lens_zone_end(&z);
}

static void zone_in_extension(void *arg) { one_zone(arg, "ext"); }

/* A lens of one ring, taken by this thread; a second thread's zone went into extension 1. */
static void setup(fixture *f) {
  memset(f, 0, sizeof *f);
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.max_threads = 1;
  o.ring_bytes = 8 * 1024;
  o.full_wait_ns = 0;
  assert_int_equal(shk_lens_open(shk_test_unique_name(f->name, sizeof f->name, "gh"), &o, &f->lens),
                   SHK_OK);
  one_zone(f->lens, "main");
  shk_test_thread t;
  assert_int_equal(shk_test_thread_start(&t, zone_in_extension, f->lens), 0);
  shk_test_thread_join(&t);
  assert_int_equal(shk_shm_open(f->name, SHK_SHM_READ_WRITE, &f->main_shm), SHK_OK);
  f->h = shk_shm_data(f->main_shm);
  assert_int_equal(f->h->ext_count, 1);
  shk__lens_ext_name(f->name, 1, f->ext);
  assert_int_equal(shk_shm_open(f->ext, SHK_SHM_READ_WRITE, &f->ext_shm), SHK_OK);
  f->e = shk_shm_data(f->ext_shm);
}

static void teardown(fixture *f) {
  shk_shm_close(f->ext_shm);
  shk_shm_close(f->main_shm);
  shk_lens_close(f->lens); /* removes the names */
}

typedef struct seen {
  int main, ext;
} seen;

static void on_event(const shk_lens_event *e, void *user) {
  seen *s = user;
  if (e->kind != SHK_LENS_ZONE) return;
  if (strcmp(e->name, "main") == 0) s->main++;
  if (strcmp(e->name, "ext") == 0) s->ext++;
}

/* A fresh reader: what it says is wrong, and what it read. */
static seen read_with_problem(fixture *f, const char *want) {
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(f->name, NULL, &r), SHK_OK);
  seen s = {0, 0};
  size_t n;
  do shk_lens_reader_drain(r, on_event, &s, &n);
  while (n > 0);
  const char *problem = shk_lens_reader_problem(r);
  /* A reader that refused an extension maps nothing more: it tells producers not to wait for it
   * when they close (else every close would wait its full second). */
  if (want && problem) assert_int_equal(f->h->reader_extensions, SHK_LENS_EXT_MAX);
  if (!want) {
    if (problem) fail_msg("unexpected problem: %s", problem);
  } else if (!problem || !strstr(problem, want)) {
    fail_msg("problem '%s' lacks '%s'", problem ? problem : "(none)", want);
  }
  shk_lens_reader_close(r);
  return s;
}

static void check_refused(fixture *f, const char *want) {
  one_zone(f->lens, "main"); /* a new one: the last reader took the ones before */
  seen s = read_with_problem(f, want);
  assert_int_equal(s.main, 1); /* the main segment's ring is still read */
  assert_int_equal(s.ext, 0);
}

static void a_whole_extension_is_read(void **state) {
  (void)state;
  fixture f;
  setup(&f);
  seen s = read_with_problem(&f, NULL);
  assert_int_equal(s.main, 1);
  assert_int_equal(s.ext, 1);
  /* Given an extension's name instead of the lens's, a reader says what it is. */
  shk_lens_info info;
  assert_int_equal(shk_lens_probe(f.ext, &info), SHK_EFORMAT);
  assert_non_null(strstr(info.reason, "an extension segment of a lens"));
  teardown(&f);
}

static void each_wrong_extension_header_field_is_named(void **state) {
  (void)state;
  fixture f;
  setup(&f);
  shk_lens_wire_ext_header saved = *f.e;
  read_with_problem(&f, NULL); /* takes the zones of the set-up */
  f.e->magic = 0x12345678u;
  check_refused(&f, "extension 1 is not a lens extension: first word 0x12345678");
  f.e->magic = 0;
  check_refused(&f, "extension 1 is not set up (magic 0)");
  *f.e = saved;
  f.e->protocol_version = 0x00030000u;
  check_refused(&f, "extension 1 has lens protocol 3.0.0; this reader speaks major 2");
  *f.e = saved;
  f.e->index = 5;
  check_refused(&f, "extension 1 says it is extension 5");
  *f.e = saved;
  f.e->creation ^= 1;
  check_refused(&f, "extension 1 belongs to another lens of this name");
  *f.e = saved;
  f.e->ring_count = 2;
  check_refused(&f, "extension 1 geometry does not match the lens (header 256, offset 256, 2 rings");
  *f.e = saved;
  f.e->ring_records = 128;
  check_refused(&f, "extension 1 geometry does not match the lens");
  *f.e = saved;
  read_with_problem(&f, NULL);
  teardown(&f);
}

static void wrong_counts_in_the_main_header_are_named(void **state) {
  (void)state;
  fixture f;
  setup(&f);
  f.h->ext_count = 2;
  seen s = read_with_problem(&f, "extension 2 ('");
  assert_int_equal(s.ext, 1); /* extension 1 is whole */
  read_with_problem(&f, "is published but cannot be opened: does not exist (its name was removed)");
  f.h->ext_count = 17;
  read_with_problem(&f, "the header publishes 17 extensions, past the limit of 16");
  f.h->ext_count = 1;
  read_with_problem(&f, NULL);
  uint64_t creation = f.h->creation;
  f.h->creation = 0;
  check_refused(&f, "the header publishes 1 extensions but has no creation identity (0)");
  f.h->creation = creation;
  teardown(&f);
}

/* A lens of one ring has room for 16 extensions (1, 1, 2, ... 32768 rings: 65,536 in all); a
 * lens of 4096 rings for 4 (4096, 8192, 16384, 32768). */
static void the_ring_rule_stops_at_the_limit(void **state) {
  (void)state;
  uint64_t total = 1;
  for (uint32_t k = 1; k <= SHK_LENS_EXT_MAX; k++) total += shk__lens_ext_rings(1, k);
  assert_int_equal(total, SHK_LENS_RINGS_MAX);
  assert_int_equal(shk__lens_ext_rings(1, 1), 1);
  assert_int_equal(shk__lens_ext_rings(2, 3), 8);
  assert_int_equal(shk__lens_ext_rings(4096, 4), 32768);
  assert_int_equal(shk__lens_ext_rings(4096, 5), 0);
  assert_int_equal(shk__lens_ext_rings(3, 15), 65536 - 3 * 16384);
  assert_int_equal(shk__lens_ext_rings(1, 17), 0);
  assert_int_equal(shk__lens_ext_rings(0, 1), 0);
  char out[SHK_SHM_NAME_MAX + 1];
  shk__lens_ext_name("abc", 7, out);
  assert_string_equal(out, "abc.x07");
  shk__lens_ext_name("abcdefghijklmnopqrstuvwxyz", 16, out); /* 26 + 4 = 30 characters */
  assert_string_equal(out, "abcdefghijklmnopqrstuvwxyz.x16");
  shk__lens_ext_name("abcdefghijklmnopqrstuvwxyz0", 16, out); /* too long: hashed */
  assert_int_equal(strlen(out), SHK_SHM_NAME_MAX);
  assert_int_equal(strncmp(out, "abcdefghijklmnopq.", 18), 0);
  assert_string_equal(out + 26, ".x16");
  assert_int_equal(shk_shm_name_check(out), SHK_OK);
  char other[SHK_SHM_NAME_MAX + 1];
  shk__lens_ext_name("abcdefghijklmnopqrstuvwxyz1", 16, other);
  assert_string_not_equal(out, other);
}

#ifndef _WIN32
static int shm_fd(const char *name) {
  char os_name[80];
  snprintf(os_name, sizeof os_name, "/%s", name);
  return shm_open(os_name, O_RDWR, 0);
}

/* An extension replaced by a segment too small for its rings (same header). */
static void an_extension_too_small_for_its_rings_is_named(void **state) {
  (void)state;
  fixture f;
  setup(&f);
  shk_lens_wire_ext_header saved = *f.e;
  assert_int_equal(shk_shm_unlink(f.ext), SHK_OK);
  shk_shm *small = NULL;
  assert_int_equal(shk_shm_create(f.ext, SHK_LENS_EXT_HEADER_SIZE, &small), SHK_OK);
  memcpy(shk_shm_data(small), &saved, sizeof saved);
  read_with_problem(&f, "extension 1: 1 rings need 8704 bytes; the segment has 4096");
  shk_shm_close(small);
  teardown(&f);
}

/* Shrunk under the reader (ftruncate): its rings are read no more, the main segment's are. */
static void an_extension_that_shrinks_under_the_reader_is_named(void **state) {
  (void)state;
  fixture f;
  setup(&f);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(f.name, NULL, &r), SHK_OK);
  seen s = {0, 0};
  size_t n;
  do shk_lens_reader_drain(r, on_event, &s, &n);
  while (n > 0);
  assert_int_equal(s.ext, 1);
  assert_null(shk_lens_reader_problem(r));
  int fd = shm_fd(f.ext);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, 4096), 0);
  close(fd);
  one_zone(f.lens, "main");
  do shk_lens_reader_drain(r, on_event, &s, &n);
  while (n > 0);
  assert_int_equal(s.main, 2);
  const char *problem = shk_lens_reader_problem(r);
  assert_non_null(problem);
  assert_non_null(strstr(problem, "extension 1 shrank under the reader (4096 of 12288 bytes left)"));
  shk_lens_stats st;
  assert_int_equal(shk_lens_reader_stats(r, &st), SHK_OK);
  assert_int_equal(st.rings, 1);
  shk_lens_reader_close(r);
  teardown(&f); /* the thread whose ring is in it has ended: nothing writes there */
}
#endif

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_whole_extension_is_read),
    cmocka_unit_test(each_wrong_extension_header_field_is_named),
    cmocka_unit_test(wrong_counts_in_the_main_header_are_named),
    cmocka_unit_test(the_ring_rule_stops_at_the_limit),
#ifndef _WIN32
    cmocka_unit_test(an_extension_too_small_for_its_rings_is_named),
    cmocka_unit_test(an_extension_that_shrinks_under_the_reader_is_named),
#endif
};

static const shk_test_child children[] = {{NULL, NULL}};

SHK_TEST_MAIN(tests, children)
