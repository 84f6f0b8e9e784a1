/* Lens 2.2 arguments: values of every type sent with zones, heap events and logs come back
 * exactly, through the iterator and the callback; arguments and their event are written and
 * dropped together; refused arguments send nothing and leave the zone open. */
/* ctest: labels=unit timeout=60 */
#include <stdint.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

typedef struct pair {
  shk_lens *lens;
  shk_lens_reader *reader;
  char name[64];
} pair;

static void pair_open(pair *p, const char *tag, uint32_t ring_bytes) {
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.full_wait_ns = 0; /* a full ring drops at once */
  o.ring_bytes = ring_bytes;
  assert_int_equal(shk_lens_open(shk_test_unique_name(p->name, sizeof p->name, tag), &o, &p->lens),
                   SHK_OK);
  assert_int_equal(shk_lens_reader_open(p->name, NULL, &p->reader), SHK_OK);
}

static void pair_close(pair *p) {
  shk_lens_reader_close(p->reader);
  shk_lens_close(p->lens);
}

static const shk_lens_arg every_type[] = {
    {"count", SHK_LENS_ARG_UINT, 0, UINT64_MAX, NULL},
    {"delta", SHK_LENS_ARG_INT, 0, (uint64_t)INT64_MIN, NULL},
    {"mode", SHK_LENS_ARG_TEXT, 0, 0, "pages"},
};

static void assert_every_type(const shk_lens_arg *got, size_t n) {
  assert_int_equal(n, 3);
  for (size_t i = 0; i < 3; i++) {
    assert_string_equal(got[i].name, every_type[i].name);
    assert_int_equal(got[i].type, every_type[i].type);
    assert_int_equal(got[i].known, 1);
  }
  assert_true(got[0].value == UINT64_MAX);
  assert_true((int64_t)got[1].value == INT64_MIN);
  assert_string_equal(got[2].text, "pages");
  assert_null(got[0].text);
}

static void every_type_comes_back_through_the_iterator(void **state) {
  (void)state;
  pair p;
  pair_open(&p, "ai", 65536);
  shk_lens_zone z;
  assert_int_equal(shk_lens_zone_begin(p.lens, &z, "zone", 0), SHK_OK);
  assert_int_equal(shk_lens_zone_end_args(&z, every_type, 3), SHK_OK);
  assert_null(z.lens);
  assert_int_equal(shk_lens_heap_args(p.lens, 0x1000, 64, false, every_type, 3), SHK_OK);
  assert_int_equal(shk_lens_log_args(p.lens, 0, every_type, 3, "log %d", 7), SHK_OK);
  assert_int_equal(shk_lens_plot(p.lens, "plain", 1.0, 0), SHK_OK); /* an event without */
  shk_lens_event e;
  shk_lens_arg got[SHK_LENS_ARGS_MAX];
  size_t n = 99;
  assert_int_equal(shk_lens_reader_args(p.reader, got, SHK_LENS_ARGS_MAX, &n), SHK_OK);
  assert_int_equal(n, 0); /* nothing delivered yet */
  const shk_lens_kind kinds[] = {SHK_LENS_ZONE, SHK_LENS_HEAP, SHK_LENS_LOG};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(shk_lens_reader_next(p.reader, &e), SHK_OK);
    assert_int_equal(e.kind, kinds[i]);
    assert_int_equal(shk_lens_reader_args(p.reader, got, SHK_LENS_ARGS_MAX, &n), SHK_OK);
    assert_every_type(got, n);
  }
  assert_string_equal(e.message, "log 7");
  assert_int_equal(shk_lens_reader_next(p.reader, &e), SHK_OK);
  assert_int_equal(e.kind, SHK_LENS_PLOT);
  assert_int_equal(shk_lens_reader_args(p.reader, got, SHK_LENS_ARGS_MAX, &n), SHK_OK);
  assert_int_equal(n, 0);
  /* A short array gets what fits; count says how many there are. */
  assert_int_equal(shk_lens_heap_args(p.lens, 0x1000, 64, true, every_type, 3), SHK_OK);
  assert_int_equal(shk_lens_reader_next(p.reader, &e), SHK_OK);
  memset(got, 0, sizeof got);
  assert_int_equal(shk_lens_reader_args(p.reader, got, 1, &n), SHK_OK);
  assert_int_equal(n, 3);
  assert_string_equal(got[0].name, "count");
  assert_null(got[1].name);
  pair_close(&p);
}

typedef struct collected {
  shk_lens_reader *reader;
  size_t events, with_args;
} collected;

static void collect(const shk_lens_event *e, void *user) {
  collected *c = user;
  shk_lens_arg got[SHK_LENS_ARGS_MAX];
  size_t n = 0;
  assert_int_equal(shk_lens_reader_args(c->reader, got, SHK_LENS_ARGS_MAX, &n), SHK_OK);
  c->events++;
  if (e->kind == SHK_LENS_ZONE && n == 1 && got[0].value == c->events) c->with_args++;
}

/* The callback form: during fn, the arguments are those of the event fn is given (here zone i
 * carries i + 1), over more events than one read pass takes. */
static void the_callback_sees_the_arguments_of_its_event(void **state) {
  (void)state;
  pair p;
  pair_open(&p, "ac", 1u << 20);
  enum { ZONES = 3000 };
  for (uint64_t i = 0; i < ZONES; i++) {
    shk_lens_arg a = {"i", SHK_LENS_ARG_UINT, 0, i + 1, NULL};
    shk_lens_zone z;
    assert_int_equal(shk_lens_zone_begin(p.lens, &z, "zone", 0), SHK_OK);
    assert_int_equal(shk_lens_zone_end_args(&z, &a, 1), SHK_OK);
  }
  collected c = {p.reader, 0, 0};
  size_t n = 0;
  do assert_int_equal(shk_lens_reader_drain(p.reader, collect, &c, &n), SHK_OK);
  while (n > 0);
  assert_int_equal(c.events, ZONES);
  assert_int_equal(c.with_args, ZONES);
  pair_close(&p);
}

static void refused_arguments_send_nothing_and_leave_the_zone_open(void **state) {
  (void)state;
  pair p;
  pair_open(&p, "ar", 65536);
  shk_lens_arg nine[SHK_LENS_ARGS_MAX + 1];
  for (size_t i = 0; i < SHK_LENS_ARGS_MAX + 1; i++) {
    shk_lens_arg a = {"n", SHK_LENS_ARG_UINT, 0, i, NULL};
    nine[i] = a;
  }
  const shk_lens_arg no_name = {NULL, SHK_LENS_ARG_UINT, 0, 1, NULL};
  const shk_lens_arg bad_type = {"t", SHK_LENS_ARG_TEXT + 1, 0, 1, NULL};
  const shk_lens_arg no_text = {"t", SHK_LENS_ARG_TEXT, 0, 0, NULL};
  shk_lens_zone z;
  assert_int_equal(shk_lens_zone_begin(p.lens, &z, "zone", 0), SHK_OK);
  assert_int_equal(shk_lens_zone_end_args(&z, nine, SHK_LENS_ARGS_MAX + 1), SHK_EINVAL);
  assert_int_equal(shk_lens_zone_end_args(&z, NULL, 1), SHK_EINVAL);
  assert_int_equal(shk_lens_zone_end_args(&z, &no_name, 1), SHK_EINVAL);
  assert_int_equal(shk_lens_zone_end_args(&z, &bad_type, 1), SHK_EINVAL);
  assert_int_equal(shk_lens_zone_end_args(&z, &no_text, 1), SHK_EINVAL);
  assert_int_equal(shk_lens_zone_end_args(NULL, NULL, 0), SHK_EINVAL);
  assert_non_null(z.lens); /* still open */
  assert_int_equal(shk_lens_heap_args(p.lens, 1, 1, false, &no_text, 1), SHK_EINVAL);
  assert_int_equal(shk_lens_heap_args(NULL, 1, 1, false, NULL, 0), SHK_EINVAL);
  assert_int_equal(shk_lens_log_args(p.lens, 0, &bad_type, 1, "x"), SHK_EINVAL);
  assert_int_equal(shk_lens_log_args(p.lens, 0, NULL, 0, NULL), SHK_EINVAL);
  shk_lens_event e;
  assert_int_equal(shk_lens_reader_next(p.reader, &e), SHK_ENOENT);
  assert_int_equal(shk_lens_zone_end_args(&z, NULL, 0), SHK_OK); /* none: as zone_end */
  assert_int_equal(shk_lens_zone_end_args(&z, nine, 1), SHK_OK);  /* ended: a no-op */
  assert_int_equal(shk_lens_reader_next(p.reader, &e), SHK_OK);
  size_t n = 99;
  assert_int_equal(shk_lens_reader_args(p.reader, NULL, 0, &n), SHK_OK);
  assert_int_equal(n, 0);
  assert_int_equal(shk_lens_reader_args(NULL, NULL, 0, &n), SHK_EINVAL);
  assert_int_equal(shk_lens_reader_args(p.reader, NULL, 1, &n), SHK_EINVAL);
  assert_int_equal(shk_lens_reader_args(p.reader, NULL, 0, NULL), SHK_EINVAL);
  pair_close(&p);
}

/* A full ring drops the event and its arguments as one: the reader never sees arguments without
 * their event (no malformed record), and the drop is counted once, as a zone. */
static void arguments_and_their_event_are_dropped_together(void **state) {
  (void)state;
  pair p;
  pair_open(&p, "ad", 8192); /* 256 records */
  shk_lens_arg args[SHK_LENS_ARGS_MAX];
  for (size_t i = 0; i < SHK_LENS_ARGS_MAX; i++) {
    shk_lens_arg a = {"n", SHK_LENS_ARG_UINT, 0, i, NULL};
    args[i] = a;
  }
  unsigned written = 0, dropped = 0;
  for (int i = 0; i < 100; i++) {
    shk_lens_zone z;
    assert_int_equal(shk_lens_zone_begin(p.lens, &z, "zone", 0), SHK_OK);
    int rc = shk_lens_zone_end_args(&z, args, SHK_LENS_ARGS_MAX);
    assert_true(rc == SHK_OK || rc == SHK_EBUSY);
    if (rc == SHK_OK) written++;
    else dropped++;
  }
  assert_true(written > 0 && dropped > 0);
  shk_lens_event e;
  unsigned read = 0;
  size_t n = 0;
  while (shk_lens_reader_next(p.reader, &e) == SHK_OK) {
    assert_int_equal(shk_lens_reader_args(p.reader, NULL, 0, &n), SHK_OK);
    assert_int_equal(n, SHK_LENS_ARGS_MAX);
    read++;
  }
  assert_int_equal(read, written);
  shk_lens_stats st;
  assert_int_equal(shk_lens_reader_stats(p.reader, &st), SHK_OK);
  assert_int_equal(st.malformed[SHK_LENS_ZONE], 0);
  assert_int_equal(st.segment[SHK_LENS_ZONE].dropped, dropped);
  pair_close(&p);
}

/* Strings at known places: a producer remembers which strings a ring carried in a small table
 * indexed by address bits, so that two of them can share a slot (here `n` at +512 and `T` at
 * +0: the same bits 3-8 and 11 up), and sending one forgets the other. An event whose argument
 * name evicts its own text argument must still fit the room it reserved. */
static _Alignas(4096) char strings[1024];
#define TEXT_T (strings + 0)
#define ZONE_Z (strings + 8)
#define NAME_T (strings + 16)
#define NAME_N (strings + 512)

static void an_argument_that_evicts_another_from_the_name_cache_stays_in_its_room(void **state) {
  (void)state;
  strcpy(TEXT_T, "T");
  strcpy(ZONE_Z, "z");
  strcpy(NAME_T, "t");
  strcpy(NAME_N, "n");
  pair p;
  pair_open(&p, "ae", 8192); /* 256 records */
  const shk_lens_arg first = {NAME_T, SHK_LENS_ARG_TEXT, 0, 0, TEXT_T};
  shk_lens_zone z;
  assert_int_equal(shk_lens_zone_begin(p.lens, &z, ZONE_Z, 0), SHK_OK);
  assert_int_equal(shk_lens_zone_end_args(&z, &first, 1), SHK_OK); /* "z", "t", "T" carried */
  shk_lens_event e;
  while (shk_lens_reader_next(p.reader, &e) == SHK_OK) {
  }
  /* The ring empty: 251 one-record zones leave room for 5, which the next event needs (the
   * string "n": 2 records, 2 arguments, the zone). */
  for (int i = 0; i < 251; i++) {
    assert_int_equal(shk_lens_zone_begin(p.lens, &z, ZONE_Z, 0), SHK_OK);
    assert_int_equal(shk_lens_zone_end(&z), SHK_OK);
  }
  const shk_lens_arg both[] = {{NAME_N, SHK_LENS_ARG_UINT, 0, 1, NULL}, first};
  assert_int_equal(shk_lens_zone_begin(p.lens, &z, ZONE_Z, 0), SHK_OK);
  assert_int_equal(shk_lens_zone_end_args(&z, both, 2), SHK_OK);
  unsigned read = 0;
  size_t n = 0;
  while (shk_lens_reader_next(p.reader, &e) == SHK_OK) {
    read++;
    assert_int_equal(shk_lens_reader_args(p.reader, NULL, 0, &n), SHK_OK); /* the last: 2 */
  }
  shk_lens_stats st;
  assert_int_equal(shk_lens_reader_stats(p.reader, &st), SHK_OK);
  assert_int_equal(st.malformed[SHK_LENS_ZONE], 0); /* nothing written past the reserved room */
  assert_int_equal(read, 252);
  assert_int_equal(n, 2);
  pair_close(&p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(every_type_comes_back_through_the_iterator),
    cmocka_unit_test(the_callback_sees_the_arguments_of_its_event),
    cmocka_unit_test(refused_arguments_send_nothing_and_leave_the_zone_open),
    cmocka_unit_test(arguments_and_their_event_are_dropped_together),
    cmocka_unit_test(an_argument_that_evicts_another_from_the_name_cache_stays_in_its_room),
};

static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
