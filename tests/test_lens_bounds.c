/* lens at its documented limits: ring_bytes (a power of two from 8 KiB to 64 MiB) and
 * max_threads (1 to 4096) at the last accepted and the first refused value, struct_size at its
 * smallest and largest and one byte past each; a log message of SHK_LENS_LOG_MAX - 1, SHK_LENS_LOG_MAX and one more
 * bytes, and thread names of 127, 128 and 129 bytes, as the reader sees them (cut exactly at the
 * limit, their last kept byte intact). */
/* ctest: labels=unit timeout=60 */
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"
#include "shmkit/lens_wire.h"

static int open_with(uint32_t ring_bytes, uint32_t max_threads) {
  char name[64];
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.ring_bytes = ring_bytes;
  o.max_threads = max_threads;
  shk_lens *lens = (shk_lens *)1;
  int rc = shk_lens_open(shk_test_unique_name(name, sizeof name, "lb"), &o, &lens);
  if (rc == SHK_OK) {
    assert_non_null(lens);
    assert_int_equal(shk_lens_frame(lens), SHK_OK); /* the ring really works */
    shk_lens_close(lens);
  } else {
    assert_null(lens);
    shk_shm *left = NULL; /* nothing left behind */
    assert_int_equal(shk_shm_open(name, SHK_SHM_READ_ONLY, &left), SHK_ENOENT);
  }
  return rc;
}

static void ring_bytes_and_max_threads_are_taken_exactly_within_their_ranges(void **state) {
  (void)state;
  assert_int_equal(open_with(8u << 10, 1), SHK_OK);           /* the smallest ring, one ring */
  assert_int_equal(open_with(4u << 10, 1), SHK_EINVAL);       /* the power of two below */
  assert_int_equal(open_with((8u << 10) - 1, 1), SHK_EINVAL);
  assert_int_equal(open_with((8u << 10) + 32, 1), SHK_EINVAL); /* not a power of two */
  assert_int_equal(open_with(12u << 10, 1), SHK_EINVAL);
  assert_int_equal(open_with(64u << 20, 1), SHK_OK);          /* the largest ring */
  assert_int_equal(open_with(128u << 20, 1), SHK_EINVAL);
  assert_int_equal(open_with(0, 1), SHK_EINVAL);
  assert_int_equal(open_with(8u << 10, 0), SHK_EINVAL);
  assert_int_equal(open_with(8u << 10, 4096), SHK_OK);         /* the most rings */
  assert_int_equal(open_with(8u << 10, 4097), SHK_EINVAL);
  assert_int_equal(open_with(8u << 10, UINT32_MAX), SHK_EINVAL);

  char name[64];
  shk_lens_options o;
  shk_lens_options_init(&o);
  shk_lens *lens = NULL;
  /* struct_size (shmkit/options.h): an older caller's smaller struct is read as far as it goes
   * (the first two fields at least); a newer caller's larger one is taken when every byte this
   * library does not know is zero, refused from the first non-zero one. */
  o.struct_size = 2 * sizeof(uint32_t) - 1;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "ss"), &o, &lens), SHK_EINVAL);
  assert_null(lens);
  struct {
    shk_lens_options known;
    unsigned char newer[8];
  } bigger;
  memset(&bigger, 0, sizeof bigger);
  shk_lens_options_init(&bigger.known);
  bigger.known.struct_size = (uint32_t)sizeof bigger;
  assert_int_equal(shk_lens_open(name, &bigger.known, &lens), SHK_OK);
  shk_lens_close(lens);
  lens = NULL;
  bigger.newer[7] = 1; /* the last unknown byte asks for something */
  assert_int_equal(shk_lens_open(name, &bigger.known, &lens), SHK_EINVAL);
  assert_null(lens);
  o.struct_size = SHK_OPTIONS_SIZE_MAX + 1;
  assert_int_equal(shk_lens_open(name, &o, &lens), SHK_EINVAL);
  assert_null(lens);
  o.ring_bytes = 4096; /* outside the range, but not read: the struct ends before it */
  o.struct_size = 2 * sizeof(uint32_t);
  assert_int_equal(shk_lens_open(name, &o, &lens), SHK_OK);
  shk_lens_close(lens);
  lens = NULL;
  o.struct_size = sizeof o;
  assert_int_equal(shk_lens_open(name, &o, &lens), SHK_EINVAL);
  assert_null(lens);
}

/* Sends one log of n bytes ('a'... ending in 'z') and a zone from a thread named with `tlen`
 * bytes; returns what the reader saw. */
typedef struct got {
  size_t log_length;
  char log_last;
  size_t thread_length;
  char thread_last;
} got;

static got send_and_read(size_t n, size_t tlen) {
  char name[64];
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "lg"), NULL, &lens), SHK_OK);
  char *msg = malloc(n + 1);
  assert_non_null(msg);
  memset(msg, 'a', n);
  msg[n - 1] = 'z';
  msg[n] = '\0';
  char thread[200];
  memset(thread, 't', tlen);
  thread[tlen - 1] = 'T';
  thread[tlen] = '\0';
  assert_int_equal(shk_lens_thread_name(lens, thread), SHK_OK);
  assert_int_equal(shk_lens_log(lens, 0, "%s", msg), SHK_OK);
  free(msg);
  shk_lens_zone z;
  assert_int_equal(shk_lens_zone_begin(lens, &z, "zone", 0), SHK_OK);
  assert_int_equal(shk_lens_zone_end(&z), SHK_OK);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  got g = {0, 0, 0, 0};
  shk_lens_event e;
  int seen = 0;
  while (shk_lens_reader_next(r, &e) == SHK_OK) {
    if (e.kind == SHK_LENS_LOG) {
      g.log_length = e.length;
      assert_int_equal(strlen(e.message), e.length);
      g.log_last = e.message[e.length - 1];
      seen++;
    } else if (e.kind == SHK_LENS_ZONE) {
      g.thread_length = strlen(e.thread);
      g.thread_last = e.thread[g.thread_length - 1];
      seen++;
    }
  }
  assert_int_equal(seen, 2);
  shk_lens_reader_close(r);
  shk_lens_close(lens);
  return g;
}

static void logs_and_thread_names_are_cut_exactly_at_their_limits(void **state) {
  (void)state;
  got g = send_and_read(SHK_LENS_LOG_MAX - 1, SHK_LENS_STRING_MAX - 1);
  assert_int_equal(g.log_length, SHK_LENS_LOG_MAX - 1);
  assert_int_equal(g.log_last, 'z');
  assert_int_equal(g.thread_length, SHK_LENS_STRING_MAX - 1);
  assert_int_equal(g.thread_last, 'T');
  g = send_and_read(SHK_LENS_LOG_MAX, SHK_LENS_STRING_MAX);
  assert_int_equal(g.log_length, SHK_LENS_LOG_MAX);
  assert_int_equal(g.log_last, 'z');
  assert_int_equal(g.thread_length, SHK_LENS_STRING_MAX);
  assert_int_equal(g.thread_last, 'T');
  g = send_and_read(SHK_LENS_LOG_MAX + 1, SHK_LENS_STRING_MAX + 1);
  assert_int_equal(g.log_length, SHK_LENS_LOG_MAX);
  assert_int_equal(g.log_last, 'a'); /* the 'z' was the byte cut off */
  assert_int_equal(g.thread_length, SHK_LENS_STRING_MAX);
  assert_int_equal(g.thread_last, 't');
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(ring_bytes_and_max_threads_are_taken_exactly_within_their_ranges),
    cmocka_unit_test(logs_and_thread_names_are_cut_exactly_at_their_limits),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
