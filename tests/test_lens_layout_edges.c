/* ctest: labels=unit timeout=60 internal */
/* The lens header check (shk__lens_layout_check) at every edge of what it accepts from shared
 * memory: each field at its last valid value and its first invalid one, the segment size at the
 * header's end and at the rings' end, the clock calibration at both ends of its plausible range;
 * every refusal with its code and the reason that names the field. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lens_internal.h"
#include "shk_test.h"
#include "shmkit.h"

#define RECORDS 64u
#define RINGS 2u

static _Alignas(64) unsigned char mem[SHK_LENS_HEADER_SIZE +
                                      RINGS * (SHK_LENS_RING_HEADER_SIZE + RECORDS * SHK_LENS_RECORD_SIZE)];
static char reason[256];

static shk_lens_wire_header *fresh(void) {
  memset(mem, 0, sizeof mem);
  shk__lens_layout_init(mem, sizeof mem, RECORDS, RINGS, 0);
  return (shk_lens_wire_header *)(void *)mem;
}

/* The code of a check of `size` bytes; the reason must contain `words` (NULL: accepted). */
static void expect(size_t size, int code, const char *words) {
  int rc = shk__lens_layout_check(mem, size, reason, sizeof reason);
  if (rc != code || (words && !strstr(reason, words)))
    fprintf(stderr, "got %s \"%s\", expected %s \"%s\"\n", shk_error_name(rc), reason,
            shk_error_name(code), words ? words : "");
  assert_int_equal(rc, code);
  if (words) assert_non_null(strstr(reason, words));
  else assert_string_equal(reason, "");
  /* No reason wanted: the same code. */
  assert_int_equal(shk__lens_layout_check(mem, size, NULL, 0), code);
}

static void sizes_at_the_header_and_the_rings_ends(void **state) {
  (void)state;
  fresh();
  assert_int_equal(shk__lens_layout_size(RECORDS, RINGS), sizeof mem);
  expect(sizeof mem, SHK_OK, NULL);
  expect(sizeof mem - 1, SHK_EFORMAT, "need");
  expect(SHK_LENS_HEADER_SIZE, SHK_EFORMAT, "need");
  expect(SHK_LENS_HEADER_SIZE - 1, SHK_EFORMAT, "shorter than");
  expect(8, SHK_EFORMAT, "shorter than");
  expect(7, SHK_EFORMAT, "too small");
  assert_int_equal(shk__lens_layout_check(NULL, sizeof mem, reason, sizeof reason), SHK_EFORMAT);
}

static void magic_and_versions(void **state) {
  (void)state;
  shk_lens_wire_header *h = fresh();
  h->magic = 0;
  expect(sizeof mem, SHK_EBUSY, "set up");
  h->magic = SHK_LENS_MAGIC + 1; /* SHK_LENS_EXT_MAGIC (2.3) */
  expect(sizeof mem, SHK_EFORMAT, "an extension segment of a lens");
  h->magic = SHK_LENS_MAGIC + 2;
  expect(sizeof mem, SHK_EFORMAT, "not a lens segment");
  h = fresh();
  h->protocol_version = SHK_LENS_PROTOCOL_015;
  expect(sizeof mem, SHK_EVERSION, "0.1.5");
  h->protocol_version = 0x0000FFFFu; /* major 0: the 0.1.5 family */
  expect(sizeof mem, SHK_EVERSION, "0.1.5");
  h->protocol_version = SHK_LENS_PROTOCOL_VERSION + 0x10000u; /* the next major */
  expect(sizeof mem, SHK_EVERSION, "major");
  h->protocol_version = SHK_LENS_PROTOCOL_VERSION - 0x10000u; /* the one before */
  expect(sizeof mem, SHK_EVERSION, "major");
  h->protocol_version = SHK_LENS_PROTOCOL_VERSION | 0xFFFFu; /* same major, any minor: read */
  expect(sizeof mem, SHK_OK, NULL);
  h = fresh();
  h->header_size++;
  expect(sizeof mem, SHK_EFORMAT, "header size");
  h = fresh();
  h->record_size--;
  expect(sizeof mem, SHK_EFORMAT, "record size");
}

/* Ring geometry that holds together except for one field. */
static void set_records(shk_lens_wire_header *h, uint32_t records) {
  h->ring_records = records;
  h->ring_stride = SHK_LENS_RING_HEADER_SIZE + records * SHK_LENS_RECORD_SIZE;
}

static void ring_geometry_at_each_limit(void **state) {
  (void)state;
  shk_lens_wire_header *h = fresh();
  h->ring_offset += 8;
  expect(sizeof mem, SHK_EFORMAT, "geometry");
  h = fresh();
  h->ring_count = 0;
  expect(sizeof mem, SHK_EFORMAT, "geometry");
  h->ring_count = 65536; /* the most: the geometry holds, the segment is too small */
  expect(sizeof mem, SHK_EFORMAT, "need");
  h->ring_count = 65537;
  expect(sizeof mem, SHK_EFORMAT, "geometry");
  h = fresh();
  set_records(h, 32); /* a power of two below the least (64) */
  expect(sizeof mem, SHK_EFORMAT, "geometry");
  set_records(h, 96); /* not a power of two */
  expect(sizeof mem, SHK_EFORMAT, "geometry");
  set_records(h, 1u << 21); /* the most: holds, too big for this segment */
  expect(sizeof mem, SHK_EFORMAT, "need");
  set_records(h, 1u << 22);
  expect(sizeof mem, SHK_EFORMAT, "geometry");
  h = fresh();
  h->ring_stride++;
  expect(sizeof mem, SHK_EFORMAT, "geometry");
  h = fresh();
  h->process_slots--;
  expect(sizeof mem, SHK_EFORMAT, "geometry");
}

static void clock_fields_at_each_limit(void **state) {
  (void)state;
  shk_lens_wire_header *h = fresh();
  h->clock_kind = 99;
  expect(sizeof mem, SHK_EFORMAT, "clock kind");
  h = fresh();
  const double refused[] = {1e-6, 1e6, 0.0, -1.0, NAN, INFINITY};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    h->ns_per_tick = refused[i];
    expect(sizeof mem, SHK_EFORMAT, "calibration");
  }
  const double accepted[] = {nextafter(1e-6, 1.0), nextafter(1e6, 0.0), 1.0};
  for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
    h->ns_per_tick = accepted[i];
    expect(sizeof mem, SHK_OK, NULL);
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(sizes_at_the_header_and_the_rings_ends),
    cmocka_unit_test(magic_and_versions),
    cmocka_unit_test(ring_geometry_at_each_limit),
    cmocka_unit_test(clock_fields_at_each_limit),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
