/* lens producer and reader: every public function, strings by key, late readers, and exact
 * accounting between a producer process and a reader process. */
/* ctest: labels=unit;multiprocess timeout=180 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"
#include "shmkit/lens_wire.h"

#include "shk_test_thread.h"

#define CHILD_TIMEOUT_MS 60000
#define SECOND 1000000000ull
#define PER_KIND 3000

/* A raw view of a lens segment, to look at what travels or to corrupt it. */
static shk_lens_wire_header *raw_open(const char *name, shk_shm **shm) {
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_WRITE, shm), SHK_OK);
  return shk_shm_data(*shm);
}

static shk_lens_wire_ring *raw_ring(shk_lens_wire_header *h, uint32_t i) {
  return (shk_lens_wire_ring *)(void *)((unsigned char *)h + h->ring_offset +
                                        (uint64_t)i * h->ring_stride);
}

static shk_lens_wire_record *raw_record(shk_lens_wire_header *h, uint32_t ring, uint64_t at) {
  shk_lens_wire_record *recs =
      (shk_lens_wire_record *)(void *)((unsigned char *)raw_ring(h, ring) + SHK_LENS_RING_HEADER_SIZE);
  return &recs[at & (h->ring_records - 1)];
}

/* The positions of the header records of `type` in ring 0, from `from` to its head. */
static size_t find_records(shk_lens_wire_header *h, uint64_t from, uint8_t type, uint64_t *at,
                           size_t max) {
  size_t n = 0;
  shk_lens_wire_ring *ring = raw_ring(h, 0);
  for (uint64_t i = from; i < ring->head;) {
    shk_lens_wire_record *r = raw_record(h, 0, i);
    if (r->type == type && n < max) at[n++] = i;
    bool data = r->type == SHK_LENS_REC_STRING || r->type == SHK_LENS_REC_THREAD ||
                r->type == SHK_LENS_REC_LOG;
    i += 1 + (data ? (r->len + 31) / 32 : 0);
  }
  return n;
}

static shk_lens *open_keep(const char *name, uint64_t full_wait_ns) {
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.full_wait_ns = full_wait_ns;
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(name, &o, &lens), SHK_OK);
  return lens;
}

/* Collects events into a list for checking. */
typedef struct collected {
  shk_lens_event ev[4096];
  char text[4096][160];
  size_t n;
} collected;

static void collect_fn(const shk_lens_event *e, void *user) {
  collected *c = user;
  if (c->n >= 4096) return;
  c->ev[c->n] = *e;
  if (e->kind == SHK_LENS_LOG) {
    snprintf(c->text[c->n], sizeof c->text[0], "%s", e->message);
    c->ev[c->n].message = c->text[c->n];
  }
  c->n++;
}

static size_t count_kind(const collected *c, shk_lens_kind kind) {
  size_t n = 0;
  for (size_t i = 0; i < c->n; i++) n += c->ev[i].kind == kind;
  return n;
}

static const shk_lens_event *find_zone(const collected *c, const char *name) {
  for (size_t i = 0; i < c->n; i++)
    if (c->ev[i].kind == SHK_LENS_ZONE && strcmp(c->ev[i].name, name) == 0) return &c->ev[i];
  return NULL;
}

/* ---- opening, probing, closing ---- */

static void open_refuses_bad_arguments(void **state) {
  (void)state;
  shk_lens *lens = (shk_lens *)1;
  assert_int_equal(shk_lens_open("x", NULL, NULL), SHK_EINVAL);
  assert_int_equal(shk_lens_open(NULL, NULL, &lens), SHK_EINVAL);
  assert_null(lens);
  assert_int_equal(shk_lens_open("bad/name", NULL, &lens), SHK_ENAME);
  /* A caller built against a newer header asking for a field this library does not know. */
  struct {
    shk_lens_options base;
    uint64_t future;
  } o;
  shk_lens_options_init_size(&o.base, sizeof o);
  o.future = 1;
  char name[64];
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "lo"), &o.base, &lens),
                   SHK_EINVAL);
  shk_lens_reader *r = (shk_lens_reader *)1;
  assert_int_equal(shk_lens_reader_open(name, NULL, NULL), SHK_EINVAL);
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_ENOENT);
  assert_null(r);
  assert_int_equal(shk_lens_probe(name, NULL), SHK_EINVAL);
  shk_lens_info info;
  assert_int_equal(shk_lens_probe(name, &info), SHK_ENOENT);
  shk_lens_close(NULL);
  shk_lens_reader_close(NULL);
  assert_int_equal(shk_lens_frame(NULL), SHK_EINVAL);
  assert_int_equal(shk_lens_plot(NULL, "p", 1.0, 0), SHK_EINVAL);
  assert_int_equal(shk_lens_heap(NULL, 1, 1, false), SHK_EINVAL);
  assert_int_equal(shk_lens_log(NULL, 0, "x"), SHK_EINVAL);
  assert_int_equal(shk_lens_thread_name(NULL, "t"), SHK_EINVAL);
  assert_int_equal(shk_lens_wait_reader(NULL, 0), SHK_EINVAL);
  assert_int_equal(shk_lens_stats_get(NULL, NULL), SHK_EINVAL);
  assert_int_equal(shk_lens_reader_stats(NULL, NULL), SHK_EINVAL);
  assert_int_equal(shk_lens_reader_drain(NULL, NULL, NULL, NULL), SHK_EINVAL);
  assert_int_equal(shk_lens_reader_poll(NULL, 0, NULL, NULL, NULL), SHK_EINVAL);
  assert_int_equal(shk_lens_reader_next(NULL, NULL), SHK_EINVAL);
  assert_int_equal(shk_lens_zone_end(NULL), SHK_EINVAL);
  assert_int_equal(shk_lens_flush(NULL), SHK_EINVAL);
  shk_lens_zone z;
  assert_int_equal(shk_lens_zone_begin(NULL, &z, "z", 0), SHK_EINVAL);
  assert_null(z.lens);
  assert_int_equal(shk_lens_zone_end(&z), SHK_OK); /* a failed begin ends as a no-op */
  assert_string_equal(shk_lens_kind_name(SHK_LENS_ZONE), "zone");
  assert_string_equal(shk_lens_kind_name(99), "?");
}

static void open_creates_a_valid_segment_that_close_removes(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "oc"), NULL, &lens), SHK_OK);
  shk_lens_info info;
  assert_int_equal(shk_lens_probe(name, &info), SHK_OK);
  assert_int_equal(info.magic, SHK_LENS_MAGIC);
  assert_int_equal(info.protocol_version, SHK_LENS_VERSION);
  assert_int_equal(info.protocol_version, SHK_LENS_PROTOCOL_VERSION);
  assert_true(info.segment_size >= SHK_LENS_HEADER_SIZE + 64u * (256u + 256u * 1024u));
  assert_int_equal(info.producers, 1);
  assert_true(info.producer_alive);
  assert_int_equal(info.reader_pid, 0);
  /* A second producer handle shares the segment; the name goes with the last one. */
  shk_lens *second = NULL;
  assert_int_equal(shk_lens_open(name, NULL, &second), SHK_OK);
  assert_int_equal(shk_lens_probe(name, &info), SHK_OK);
  assert_int_equal(info.producers, 2);
  shk_lens_close(lens);
  assert_int_equal(shk_lens_probe(name, &info), SHK_OK);
  shk_lens_close(second);
  assert_int_equal(shk_lens_probe(name, &info), SHK_ENOENT);
}

static void keep_name_leaves_the_segment_for_a_late_reader(void **state) {
  (void)state;
  char name[64];
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.flags = SHK_LENS_KEEP_NAME;
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "kn"), &o, &lens), SHK_OK);
  /* On Windows a segment lives only while some handle is open: this one stands in for the
   * name that KEEP_NAME keeps on POSIX. */
  shk_shm *keep = NULL;
  assert_int_equal(shk_shm_open(name, SHK_SHM_READ_ONLY, &keep), SHK_OK);
  assert_int_equal(shk_lens_frame(lens), SHK_OK);
  shk_lens_close(lens);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  shk_lens_event e;
  assert_int_equal(shk_lens_reader_next(r, &e), SHK_OK);
  assert_int_equal(e.kind, SHK_LENS_FRAME);
  assert_int_equal(e.number, 1);
  assert_int_equal(shk_lens_reader_next(r, &e), SHK_ENOENT);
  assert_true(shk_lens_reader_finished(r));
  shk_lens_reader_close(r);
  assert_int_equal(shk_shm_unlink(name), SHK_OK);
  shk_shm_close(keep);
}

/* ---- what travels ---- */

static void events_of_every_kind_arrive_intact(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_keep(shk_test_unique_name(name, sizeof name, "ev"), 0);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  assert_int_equal(shk_lens_wait_reader(lens, SECOND), SHK_OK);
  assert_int_equal(shk_lens_thread_name(lens, "main thread"), SHK_OK);
  shk_lens_zone outer, inner;
  assert_int_equal(shk_lens_zone_begin(lens, &outer, "outer", 0x112233), SHK_OK);
  assert_int_equal(shk_lens_zone_begin(lens, &inner, "inner", 0xFF000000u | 0x445566), SHK_OK);
  assert_int_equal(shk_lens_zone_end(&inner), SHK_OK);
  assert_int_equal(shk_lens_zone_end(&outer), SHK_OK);
  assert_int_equal(shk_lens_frame(lens), SHK_OK);
  assert_int_equal(shk_lens_plot(lens, "fps", 59.5, 0x00FF00), SHK_OK);
  assert_int_equal(shk_lens_plot(lens, "nan", 0.0 / 0.0, 0), SHK_EINVAL);
  assert_int_equal(shk_lens_heap(lens, 0x1000, 64, false), SHK_OK);
  assert_int_equal(shk_lens_heap(lens, 0x1000, 64, true), SHK_OK);
  assert_int_equal(shk_lens_log(lens, 0xABCDEF, "hello %d", 42), SHK_OK);

  static collected c;
  memset(&c, 0, sizeof c);
  size_t n = 0;
  assert_int_equal(shk_lens_reader_drain(r, collect_fn, &c, &n), SHK_OK);
  assert_int_equal(n, 7);
  assert_int_equal(c.n, 7);
  const shk_lens_event *in = find_zone(&c, "inner"), *out = find_zone(&c, "outer");
  assert_non_null(in);
  assert_non_null(out);
  assert_int_equal(out->depth, 0);
  assert_int_equal(in->depth, 1);
  assert_int_equal(out->color, 0x112233);
  assert_int_equal(in->color, 0x445566); /* the unused top byte is cleared */
  assert_string_equal(in->thread, "main thread");
  assert_int_equal(in->thread_key, out->thread_key);
  assert_true(out->duration_ns >= in->duration_ns);
  assert_true(out->time >= in->time);
  /* Nesting: the inner zone starts no earlier and ends no later than the outer one. */
  assert_true(out->time - out->duration_ns / 1e9 <= in->time - in->duration_ns / 1e9 + 1e-9);
  assert_int_equal(count_kind(&c, SHK_LENS_FRAME), 1);
  assert_int_equal(count_kind(&c, SHK_LENS_HEAP), 2);
  for (size_t i = 0; i < c.n; i++) {
    const shk_lens_event *e = &c.ev[i];
    if (e->kind == SHK_LENS_PLOT) {
      assert_string_equal(e->name, "fps");
      assert_true(e->value == 59.5);
      assert_int_equal(e->color, 0x00FF00);
    } else if (e->kind == SHK_LENS_LOG) {
      assert_string_equal(e->message, "hello 42");
      assert_int_equal(e->length, 8);
      assert_int_equal(e->color, 0xABCDEF);
    } else if (e->kind == SHK_LENS_HEAP) {
      assert_int_equal(e->addr, 0x1000);
      assert_int_equal(e->size, 64);
    } else if (e->kind == SHK_LENS_FRAME) {
      assert_int_equal(e->number, 1);
    }
  }
  shk_lens_stats st;
  assert_int_equal(shk_lens_reader_stats(r, &st), SHK_OK);
  assert_int_equal(st.received[SHK_LENS_ZONE], 2);
  assert_int_equal(st.segment[SHK_LENS_ZONE].written, 2);
  assert_int_equal(st.segment[SHK_LENS_ZONE].drained, 2);
  assert_true(st.strings >= 4); /* outer, inner, fps, the thread's names */
  assert_int_equal(shk_lens_stats_get(lens, &st), SHK_OK);
  assert_int_equal(st.sent[SHK_LENS_HEAP], 2);
  assert_int_equal(st.segment[SHK_LENS_LOG].written, 1);
  assert_false(shk_lens_reader_finished(r)); /* a producer is still open */
  shk_lens_close(lens);
  assert_true(shk_lens_reader_finished(r));
  shk_lens_reader_close(r);
}

static void scope_macro_ends_the_zone_with_the_block(void **state) {
  (void)state;
#if defined(__GNUC__) || defined(__clang__)
  char name[64];
  shk_lens *lens = open_keep(shk_test_unique_name(name, sizeof name, "sc"), 0);
  {
    SHK_LENS_ZONE(lens, "scoped", 0x123456);
    shk_lens_stats st;
    assert_int_equal(shk_lens_stats_get(lens, &st), SHK_OK);
    assert_int_equal(st.sent[SHK_LENS_ZONE], 0);
  }
  shk_lens_stats st;
  assert_int_equal(shk_lens_stats_get(lens, &st), SHK_OK);
  assert_int_equal(st.sent[SHK_LENS_ZONE], 1);
  shk_lens_close(lens);
#else
  skip();
#endif
}

static void strings_are_sent_once_then_by_key(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_keep(shk_test_unique_name(name, sizeof name, "sk"), 0);
  static const char zone_name[] = "repeated";
  for (int i = 0; i < 3; i++) {
    shk_lens_zone z;
    assert_int_equal(shk_lens_zone_begin(lens, &z, zone_name, 0), SHK_OK);
    assert_int_equal(shk_lens_zone_end(&z), SHK_OK);
  }
  shk_shm *shm;
  shk_lens_wire_header *h = raw_open(name, &shm);
  uint64_t at[8];
  assert_int_equal(find_records(h, 0, SHK_LENS_REC_THREAD, at, 8), 1);
  assert_int_equal(find_records(h, 0, SHK_LENS_REC_STRING, at, 8), 1);
  shk_lens_wire_record *str = raw_record(h, 0, at[0]);
  assert_int_equal(str->len, strlen(zone_name));
  assert_true(str->a == (uint64_t)(uintptr_t)zone_name);
  assert_memory_equal(raw_record(h, 0, at[0] + 1), zone_name, strlen(zone_name));
  assert_int_equal(find_records(h, 0, SHK_LENS_REC_ZONE, at, 8), 3);
  for (int i = 0; i < 3; i++) assert_true(raw_record(h, 0, at[i])->c == (uint64_t)(uintptr_t)zone_name);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  static collected c;
  memset(&c, 0, sizeof c);
  assert_int_equal(shk_lens_reader_drain(r, collect_fn, &c, NULL), SHK_OK);
  assert_int_equal(c.n, 3);
  for (size_t i = 0; i < 3; i++) assert_string_equal(c.ev[i].name, "repeated");
  shk_lens_reader_close(r);

  /* A new reader never saw the contents: the producer sends them (and its thread name) again. */
  uint64_t head = raw_ring(h, 0)->head;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  shk_lens_zone z;
  assert_int_equal(shk_lens_zone_begin(lens, &z, zone_name, 0), SHK_OK);
  assert_int_equal(shk_lens_zone_end(&z), SHK_OK);
  assert_int_equal(find_records(h, head, SHK_LENS_REC_STRING, at, 8), 1);
  assert_int_equal(find_records(h, head, SHK_LENS_REC_THREAD, at, 8), 1);
  shk_lens_event e;
  assert_int_equal(shk_lens_reader_next(r, &e), SHK_OK);
  assert_string_equal(e.name, "repeated");
  assert_true(e.name_known);
  shk_lens_stats st;
  assert_int_equal(shk_lens_reader_stats(r, &st), SHK_OK);
  assert_int_equal(st.unknown_strings, 0);
  shk_lens_reader_close(r);
  shk_shm_close(shm);
  shk_lens_close(lens);
}

static void a_key_never_sent_becomes_a_placeholder(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_keep(shk_test_unique_name(name, sizeof name, "ph"), 0);
  shk_lens_zone z;
  assert_int_equal(shk_lens_zone_begin(lens, &z, "named", 0), SHK_OK);
  assert_int_equal(shk_lens_zone_end(&z), SHK_OK);
  shk_shm *shm;
  shk_lens_wire_header *h = raw_open(name, &shm);
  uint64_t at[2];
  assert_int_equal(find_records(h, 0, SHK_LENS_REC_STRING, at, 2), 1);
  raw_record(h, 0, at[0])->a ^= 0x10; /* the contents went out under another key */
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  shk_lens_event e;
  assert_int_equal(shk_lens_reader_next(r, &e), SHK_OK);
  assert_non_null(strstr(e.name, "<unknown string"));
  assert_false(e.name_known);
  shk_lens_stats st;
  assert_int_equal(shk_lens_reader_stats(r, &st), SHK_OK);
  assert_int_equal(st.unknown_strings, 1);
  assert_int_equal(st.malformed[SHK_LENS_ZONE], 0);
  shk_lens_reader_close(r);
  shk_shm_close(shm);
  shk_lens_close(lens);
}

static void a_full_ring_drops_at_once_when_the_wait_is_zero(void **state) {
  (void)state;
  char name[64];
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.full_wait_ns = 0;
  o.ring_bytes = 8192; /* 256 records */
  shk_lens *lens = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "fu"), &o, &lens), SHK_OK);
  shk_lens_thread_name(lens, "short"); /* 2 records: the name and its data */
  int dropped = 0;
  for (int i = 0; i < 300; i++) {
    int rc = shk_lens_frame(lens);
    assert_true(rc == SHK_OK || rc == SHK_EBUSY);
    dropped += rc == SHK_EBUSY;
  }
  assert_int_equal(dropped, 300 - 254);
  /* A log takes a header and its data records: 100 bytes are 1 + 4. */
  assert_int_equal(shk_lens_log(lens, 0, "%0100d", 7), SHK_EBUSY);
  shk_lens_stats st;
  assert_int_equal(shk_lens_stats_get(lens, &st), SHK_OK);
  assert_int_equal(st.sent[SHK_LENS_FRAME], 300);
  assert_int_equal(st.segment[SHK_LENS_FRAME].written, 254);
  assert_int_equal(st.segment[SHK_LENS_FRAME].dropped, 46);
  assert_int_equal(st.segment[SHK_LENS_LOG].dropped, 1);
  /* Once the reader made room, the same thread writes again. */
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  size_t n = 0;
  assert_int_equal(shk_lens_reader_drain(r, NULL, NULL, &n), SHK_OK);
  assert_int_equal(n, 254);
  shk_lens_event e;
  while (shk_lens_reader_next(r, &e) == SHK_OK) {
  }
  assert_int_equal(shk_lens_log(lens, 0, "%0100d", 7), SHK_OK);
  shk_lens_reader_close(r);
  shk_lens_close(lens);
}

static void a_long_log_message_is_cut_to_the_limit(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_keep(shk_test_unique_name(name, sizeof name, "ll"), 0);
  char *big = malloc(20000);
  memset(big, 'x', 19999);
  big[19999] = '\0';
  assert_int_equal(shk_lens_log(lens, 0, "%s", big), SHK_OK);
  free(big);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  shk_lens_event e;
  assert_int_equal(shk_lens_reader_next(r, &e), SHK_OK);
  assert_int_equal(e.kind, SHK_LENS_LOG);
  assert_int_equal(e.length, SHK_LENS_LOG_MAX);
  assert_int_equal(strlen(e.message), SHK_LENS_LOG_MAX);
  shk_lens_reader_close(r);
  shk_lens_close(lens);
}

static void a_second_live_reader_is_refused(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_keep(shk_test_unique_name(name, sizeof name, "2r"), 0);
  shk_lens_reader *a = NULL, *b = (shk_lens_reader *)1;
  assert_int_equal(shk_lens_reader_open(name, NULL, &a), SHK_OK);
  assert_int_equal(shk_lens_reader_open(name, NULL, &b), SHK_EBUSY);
  assert_null(b);
  shk_lens_info info;
  assert_int_equal(shk_lens_probe(name, &info), SHK_OK);
  assert_true(info.reader_alive);
  shk_lens_reader_close(a);
  assert_int_equal(shk_lens_probe(name, &info), SHK_OK);
  assert_int_equal(info.reader_pid, 0);
  assert_int_equal(shk_lens_reader_open(name, NULL, &b), SHK_OK);
  shk_lens_reader_close(b);
  shk_lens_close(lens);
}

static int child_second_reader(int argc, char **argv) {
  if (argc < 1) return 2;
  shk_lens_reader *r = NULL;
  int rc = shk_lens_reader_open(argv[0], NULL, &r);
  shk_lens_reader_close(r);
  return rc == SHK_EBUSY ? 0 : 1;
}

static void a_reader_in_another_process_is_refused_while_one_is_attached(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_keep(shk_test_unique_name(name, sizeof name, "rx"), 0);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  const char *args[] = {name};
  shk_test_run_child_ok("second_reader", 1, args, CHILD_TIMEOUT_MS);
  shk_lens_reader_close(r);
  shk_lens_close(lens);
}

static void poll_times_out_when_nothing_comes(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_keep(shk_test_unique_name(name, sizeof name, "po"), 0);
  shk_lens_reader_options o;
  shk_lens_reader_options_init(&o);
  o.idle_spin_ns = 0;
  o.idle_sleep_ns = 1000000;
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, &o, &r), SHK_OK);
  size_t n = 1;
  assert_int_equal(shk_lens_reader_poll(r, 5000000, NULL, NULL, &n), SHK_ETIMEDOUT);
  assert_int_equal(n, 0);
  assert_int_equal(shk_lens_heap(lens, 1, 2, false), SHK_OK);
  assert_int_equal(shk_lens_reader_poll(r, SECOND, NULL, NULL, &n), SHK_OK);
  assert_int_equal(n, 1);
  /* drain without a callback leaves the buffered event for the iterator. */
  assert_int_equal(shk_lens_reader_drain(r, NULL, NULL, &n), SHK_OK);
  assert_int_equal(n, 1);
  shk_lens_event e;
  assert_int_equal(shk_lens_reader_next(r, &e), SHK_OK);
  assert_int_equal(e.kind, SHK_LENS_HEAP);
  assert_int_equal(shk_lens_reader_next(r, &e), SHK_ENOENT);
  shk_lens_reader_close(r);
  shk_lens_close(lens);
}

static void end_one(shk_lens *lens, const char *zone_name) {
  shk_lens_zone z;
  assert_int_equal(shk_lens_zone_begin(lens, &z, zone_name, 0), SHK_OK);
  assert_int_equal(shk_lens_zone_end(&z), SHK_OK);
}

/* Every event is published as it is sent: a reader sees a zone the moment it ends. */
static void an_ended_zone_is_visible_at_once(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_keep(shk_test_unique_name(name, sizeof name, "sg"), 0);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  shk_lens_zone z;
  assert_int_equal(shk_lens_zone_begin(lens, &z, "now", 0), SHK_OK);
  shk_lens_event e;
  assert_int_equal(shk_lens_reader_next(r, &e), SHK_ENOENT);
  assert_int_equal(shk_lens_zone_end(&z), SHK_OK);
  assert_int_equal(shk_lens_reader_next(r, &e), SHK_OK);
  assert_string_equal(e.name, "now");
  assert_int_equal(shk_lens_flush(lens), SHK_OK); /* kept from 1.x: nothing to do */
  shk_lens_reader_close(r);
  shk_lens_close(lens);
}

/* ---- threads ---- */

static void thread_names_and_depths_are_per_thread(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_keep(shk_test_unique_name(name, sizeof name, "th"), 0);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  assert_int_equal(shk_lens_thread_name(lens, "first name"), SHK_OK);
  shk_lens_zone a;
  assert_int_equal(shk_lens_zone_begin(lens, &a, "a", 0), SHK_OK);
  assert_int_equal(shk_lens_zone_end(&a), SHK_OK);
  assert_int_equal(shk_lens_thread_name(lens, "second name"), SHK_OK);
  assert_int_equal(shk_lens_zone_begin(lens, &a, "b", 0), SHK_OK);
  assert_int_equal(shk_lens_zone_end(&a), SHK_OK);
  assert_int_equal(shk_lens_flush(lens), SHK_OK);
  static collected c;
  memset(&c, 0, sizeof c);
  assert_int_equal(shk_lens_reader_drain(r, collect_fn, &c, NULL), SHK_OK);
  assert_string_equal(find_zone(&c, "a")->thread, "first name");
  assert_string_equal(find_zone(&c, "b")->thread, "second name");
  assert_int_equal(find_zone(&c, "b")->depth, 0);
  shk_lens_reader_close(r);
  shk_lens_close(lens);
}

/* ---- two processes ---- */

/* Sends PER_KIND events of every kind as fast as it can, with the given full wait (ns). */
static int child_fast_producer(int argc, char **argv) {
  if (argc < 2) return 2;
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.full_wait_ns = strtoull(argv[1], NULL, 10);
  shk_lens *lens = NULL;
  if (shk_lens_open(argv[0], &o, &lens) != SHK_OK) return 3;
  shk_lens_thread_name(lens, "fast producer");
  for (int i = 0; i < PER_KIND; i++) {
    shk_lens_zone z;
    shk_lens_zone_begin(lens, &z, (i & 1) ? "odd" : "even", 0);
    shk_lens_zone_end(&z);
    shk_lens_frame(lens);
    shk_lens_plot(lens, "i", (double)i, 0);
    shk_lens_heap(lens, (uint64_t)i * 16, 16, (i & 1) != 0);
    shk_lens_log(lens, 0, "message %d", i);
  }
  shk_lens_stats st;
  shk_lens_stats_get(lens, &st);
  int bad = 0;
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) bad |= st.sent[k] != PER_KIND;
  shk_lens_close(lens);
  return bad ? 4 : 0;
}

static void check_exact_accounting(const char *full_wait) {
  char name[64];
  /* The parent's own handle keeps the segment alive until the reader has seen everything. */
  shk_lens *holder = open_keep(shk_test_unique_name(name, sizeof name, "xa"), 0);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  const char *args[] = {name, full_wait};
  shk_test_proc proc;
  assert_int_equal(shk_test_spawn("fast_producer", 2, args, &proc), 0);
  uint64_t received[SHK_LENS_KIND_COUNT] = {0};
  /* Every event the child sends is written or dropped, and counted in its ring at once: read
   * until every kind adds up (or the child is long overdue). */
  uint64_t deadline = (uint64_t)CHILD_TIMEOUT_MS * 1000000ull, waited = 0;
  for (;;) {
    shk_lens_event e;
    size_t got = 0;
    while (shk_lens_reader_next(r, &e) == SHK_OK) {
      got++;
      received[e.kind]++;
      if (e.kind == SHK_LENS_ZONE) {
        assert_true(strcmp(e.name, "odd") == 0 || strcmp(e.name, "even") == 0);
        assert_string_equal(e.thread, "fast producer");
      }
    }
    shk_lens_stats st;
    assert_int_equal(shk_lens_reader_stats(r, &st), SHK_OK);
    bool complete = true;
    for (int k = 0; k < SHK_LENS_KIND_COUNT; k++)
      complete &= received[k] + st.segment[k].dropped == PER_KIND;
    if (complete) break;
    assert_true(waited < deadline);
    if (got == 0) {
      shk_lens_reader_poll(r, 1000000, NULL, NULL, NULL);
      waited += 1000000;
    }
  }
  shk_test_exit how = shk_test_wait(&proc, CHILD_TIMEOUT_MS);
  assert_int_equal(how.timed_out, 0);
  assert_int_equal(how.code, 0);
  shk_lens_event e;
  while (shk_lens_reader_next(r, &e) == SHK_OK) received[e.kind]++;
  shk_lens_stats st;
  assert_int_equal(shk_lens_reader_stats(r, &st), SHK_OK);
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
    print_message("%s: sent %d received %llu dropped %llu\n", shk_lens_kind_name(k), PER_KIND,
                  (unsigned long long)received[k], (unsigned long long)st.segment[k].dropped);
    assert_int_equal(received[k] + st.segment[k].dropped, PER_KIND);
    assert_int_equal(st.segment[k].written, received[k]);
    assert_int_equal(st.segment[k].drained, received[k]);
    assert_int_equal(st.received[k], received[k]);
    assert_int_equal(st.malformed[k], 0);
  }
  assert_int_equal(st.unknown_strings, 0);
  shk_lens_reader_close(r);
  shk_lens_close(holder);
}

static void a_producer_process_and_a_reader_process_account_for_every_event(void **state) {
  (void)state;
  check_exact_accounting("1000000"); /* waits up to 1 ms when full */
}

static void accounting_is_exact_when_the_producer_never_waits(void **state) {
  (void)state;
  check_exact_accounting("0");
}

/* Sends 10 zones with no reader attached, then waits for a reader, then 10 more. */
static int child_early_producer(int argc, char **argv) {
  if (argc < 1) return 2;
  shk_lens *lens = NULL;
  if (shk_lens_open(argv[0], NULL, &lens) != SHK_OK) return 3;
  for (int i = 0; i < 10; i++) {
    shk_lens_zone z;
    shk_lens_zone_begin(lens, &z, "early", 0);
    shk_lens_zone_end(&z);
  }
  /* Tell the parent by a heap event that the first part is done, then wait for its reader. */
  shk_lens_heap(lens, 0xD0E, 0, false);
  if (shk_lens_wait_reader(lens, 30 * SECOND) != SHK_OK) return 4;
  for (int i = 0; i < 10; i++) {
    shk_lens_zone z;
    shk_lens_zone_begin(lens, &z, "late", 0);
    shk_lens_zone_end(&z);
  }
  shk_lens_heap(lens, 0xD0E, 1, false);
  /* Closing removes the name, but the attached reader keeps its mapping and drains the rest. */
  shk_lens_close(lens);
  return 0;
}

static void a_late_reader_gets_what_waited_and_resolves_every_name(void **state) {
  (void)state;
  char name[64];
  shk_test_unique_name(name, sizeof name, "lr");
  const char *args[] = {name};
  shk_test_proc proc;
  assert_int_equal(shk_test_spawn("early_producer", 1, args, &proc), 0);
  /* Wait until the producer has sent its first part into nobody's hands. */
  shk_lens_info info;
  for (;;) {
    if (shk_lens_probe(name, &info) == SHK_OK && info.counters[SHK_LENS_HEAP].written == 1) break;
  }
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  size_t early = 0, late = 0, marks = 0;
  bool child_done = false;
  for (;;) {
    shk_lens_event e;
    if (shk_lens_reader_next(r, &e) != SHK_OK) {
      /* Payloads are drained one after the other, so the last mark may overtake late zones:
       * once the producer has ended, one more drain takes whatever is left. */
      if (child_done) break;
      if (marks == 2) {
        shk_test_exit how = shk_test_wait(&proc, CHILD_TIMEOUT_MS);
        assert_int_equal(how.timed_out, 0);
        assert_int_equal(how.code, 0);
        child_done = true;
      }
      continue;
    }
    if (e.kind == SHK_LENS_HEAP) marks++;
    if (e.kind != SHK_LENS_ZONE) continue;
    if (strcmp(e.name, "early") == 0) early++;
    else if (strcmp(e.name, "late") == 0) late++;
    else fail_msg("unexpected name %s", e.name);
  }
  assert_int_equal(early, 10);
  assert_int_equal(late, 10);
  shk_lens_reader_close(r);
}

/* Defect 3: zones that waited in the ring for a second reader carry a key whose contents the
 * first reader took; the second learns the name later, and can look the early events' names up. */
static void a_name_learnt_late_resolves_the_events_that_came_before_it(void **state) {
  (void)state;
  char name[64];
  shk_lens *lens = open_keep(shk_test_unique_name(name, sizeof name, "ln"), 0);
  static const char zone_name[] = "learnt late";
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  end_one(lens, zone_name);
  shk_lens_event e;
  assert_int_equal(shk_lens_reader_next(r, &e), SHK_OK);
  shk_lens_reader_close(r);
  end_one(lens, zone_name); /* no reader: waits in the ring, by key only */
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  assert_int_equal(shk_lens_reader_next(r, &e), SHK_OK);
  assert_false(e.name_known);
  assert_null(shk_lens_reader_string(r, e.pid, e.name_key));
  end_one(lens, zone_name); /* the new reader generation: contents again */
  shk_lens_event later;
  assert_int_equal(shk_lens_reader_next(r, &later), SHK_OK);
  assert_true(later.name_known);
  assert_string_equal(later.name, zone_name);
  assert_string_equal(shk_lens_reader_string(r, e.pid, e.name_key), zone_name);
  assert_string_equal(e.thread, later.thread); /* the thread's name is sent again too */
  shk_lens_reader_close(r);
  shk_lens_close(lens);
}

/* ---- many producer processes x many threads ---- */

#define MP_PROCS 4
#define MP_THREADS 4
#define MP_ZONES 20000

typedef struct mp_thread {
  shk_lens *lens;
  int index;
} mp_thread;

static void mp_produce(void *arg) {
  mp_thread *t = arg;
  char label[32];
  snprintf(label, sizeof label, "mp thread %d", t->index);
  shk_lens_thread_name(t->lens, label);
  for (int i = 0; i < MP_ZONES; i++) {
    shk_lens_zone z;
    shk_lens_zone_begin(t->lens, &z, "mp zone", 0);
    shk_lens_zone_end(&z);
  }
}


/* MP_THREADS threads each send MP_ZONES zones; argv[1] is the full wait (0: never waits). */
static int child_threaded_producer(int argc, char **argv) {
  if (argc < 2) return 2;
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.full_wait_ns = strtoull(argv[1], NULL, 10);
  shk_lens *lens = NULL;
  if (shk_lens_open(argv[0], &o, &lens) != SHK_OK) return 3;
  if (shk_lens_wait_reader(lens, 30 * SECOND) != SHK_OK) return 4;
  mp_thread args[MP_THREADS];
  shk_test_thread threads[MP_THREADS];
  for (int i = 0; i < MP_THREADS; i++) {
    args[i] = (mp_thread){lens, i};
    if (shk_test_thread_start(&threads[i], mp_produce, &args[i]) != 0) return 5;
  }
  for (int i = 0; i < MP_THREADS; i++) shk_test_thread_join(&threads[i]);
  shk_lens_close(lens);
  return 0;
}

typedef struct mp_count {
  uint64_t key[MP_PROCS * MP_THREADS];
  uint64_t zones[MP_PROCS * MP_THREADS];
  size_t n;
} mp_count;

static void mp_on_event(const shk_lens_event *e, void *user) {
  mp_count *c = user;
  if (e->kind != SHK_LENS_ZONE) return;
  size_t i = 0;
  while (i < c->n && c->key[i] != e->thread_key) i++;
  if (i == c->n) {
    assert_true(c->n < MP_PROCS * MP_THREADS);
    c->key[c->n++] = e->thread_key;
  }
  c->zones[i]++;
}

static void check_many_processes(const char *full_wait) {
  char name[64];
  shk_lens *holder = open_keep(shk_test_unique_name(name, sizeof name, "mp"), 0);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  const char *args[] = {name, full_wait};
  shk_test_proc procs[MP_PROCS];
  for (int i = 0; i < MP_PROCS; i++) assert_int_equal(shk_test_spawn("threaded_producer", 2, args, &procs[i]), 0);
  /* Our holder keeps the name, and the reader going, while the children start. */
  static mp_count c;
  memset(&c, 0, sizeof c);
  /* Until every producing thread has been seen: a child that starts late (CreateProcess under
   * wine takes tens of ms) would otherwise find the others gone and the reader finished. */
  for (int i = 0;; i++) {
    size_t seen = 0;
    assert_int_equal(shk_lens_reader_threads(r, NULL, 0, &seen), SHK_OK);
    if (seen == MP_PROCS * MP_THREADS) break;
    assert_true(i < 60000);
    shk_lens_reader_poll(r, 1000000, mp_on_event, &c, NULL);
  }
  shk_lens_close(holder);
  int polls = 0;
  while (!shk_lens_reader_finished(r)) {
    shk_lens_reader_poll(r, 10000000u, mp_on_event, &c, NULL);
    assert_true(++polls < 12000);
  }
  shk_lens_reader_drain(r, mp_on_event, &c, NULL);
  for (int i = 0; i < MP_PROCS; i++) {
    shk_test_exit how = shk_test_wait(&procs[i], CHILD_TIMEOUT_MS);
    if (how.code != 0 || how.killed) fail_msg("producer %d ended with %d (killed %d)", i, how.code, how.killed);
  }
  shk_lens_thread_info info[MP_PROCS * MP_THREADS + 1];
  size_t count = 0;
  assert_int_equal(shk_lens_reader_threads(r, info, MP_PROCS * MP_THREADS + 1, &count), SHK_OK);
  assert_int_equal(count, MP_PROCS * MP_THREADS);
  uint64_t dropped = 0;
  for (size_t i = 0; i < count; i++) {
    const shk_lens_counters *z = &info[i].counters[SHK_LENS_ZONE];
    if (z->written + z->dropped != MP_ZONES)
      print_message("thread %u pid %u tid %llu: written %llu dropped %llu drained %llu\n", (unsigned)i, info[i].pid,
                    (unsigned long long)info[i].tid, (unsigned long long)z->written,
                    (unsigned long long)z->dropped, (unsigned long long)z->drained);
    assert_int_equal(z->written + z->dropped, MP_ZONES); /* exact, per thread */
    assert_int_equal(z->drained, z->written);
    assert_false(info[i].alive);
    assert_false(info[i].implausible);
    uint64_t key = (uint64_t)info[i].pid << 32 | (info[i].tid & 0xFFFFFFFFu);
    size_t k = 0;
    while (k < c.n && c.key[k] != key) k++;
    assert_true(k < c.n || z->written == 0);
    if (k < c.n) assert_int_equal(c.zones[k], z->written);
    dropped += z->dropped;
  }
  print_message("%d processes x %d threads x %d zones (full wait %s ns): %llu dropped\n", MP_PROCS,
                MP_THREADS, MP_ZONES, full_wait, (unsigned long long)dropped);
  shk_lens_reader_close(r);
}

static void many_processes_and_threads_are_counted_exactly_per_thread(void **state) {
  (void)state;
  check_many_processes("2000000");
  check_many_processes("0");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(many_processes_and_threads_are_counted_exactly_per_thread),
    cmocka_unit_test(a_name_learnt_late_resolves_the_events_that_came_before_it),
    cmocka_unit_test(open_refuses_bad_arguments),
    cmocka_unit_test(open_creates_a_valid_segment_that_close_removes),
    cmocka_unit_test(keep_name_leaves_the_segment_for_a_late_reader),
    cmocka_unit_test(events_of_every_kind_arrive_intact),
    cmocka_unit_test(scope_macro_ends_the_zone_with_the_block),
    cmocka_unit_test(an_ended_zone_is_visible_at_once),
    cmocka_unit_test(strings_are_sent_once_then_by_key),
    cmocka_unit_test(a_key_never_sent_becomes_a_placeholder),
    cmocka_unit_test(a_full_ring_drops_at_once_when_the_wait_is_zero),
    cmocka_unit_test(a_long_log_message_is_cut_to_the_limit),
    cmocka_unit_test(a_second_live_reader_is_refused),
    cmocka_unit_test(a_reader_in_another_process_is_refused_while_one_is_attached),
    cmocka_unit_test(poll_times_out_when_nothing_comes),
    cmocka_unit_test(thread_names_and_depths_are_per_thread),
    cmocka_unit_test(a_producer_process_and_a_reader_process_account_for_every_event),
    cmocka_unit_test(accounting_is_exact_when_the_producer_never_waits),
    cmocka_unit_test(a_late_reader_gets_what_waited_and_resolves_every_name),
};

static const shk_test_child children[] = {
    {"second_reader", child_second_reader},
    {"fast_producer", child_fast_producer},
    {"early_producer", child_early_producer},
    {"threaded_producer", child_threaded_producer},
};

SHK_TEST_MAIN(tests, children)
