/* libFuzzer target for the lens reader: arbitrary bytes laid over a lens segment (the whole of it,
 * or one ring, its header and records, under a valid segment header), then attach, drain twice
 * (the second time after the input is laid again over what the reader changed) and read every
 * event; with mode bit 6, the input is also checked as an extension header (2.3). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/lens_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RECORDS 64u
#define RINGS 2u

static void touch_event(const shk_lens_event *e, void *user) {
  size_t *sum = user;
  /* Reads every byte the reader hands out, so a bad pointer or length shows under ASan. */
  if (e->name) *sum += strlen(e->name);
  if (e->thread) *sum += strlen(e->thread);
  if (e->message) {
    for (uint32_t i = 0; i <= e->length; i++) *sum += (unsigned char)e->message[i];
  }
}

/* Where a mode byte puts the input: raw over the whole segment (the header too), or over ring
 * 0 or 1 (header and records) below a valid header, so that short inputs reach the deep checks. */
static size_t region_offset(uint8_t mode) {
  size_t stride = SHK_LENS_RING_HEADER_SIZE + RECORDS * SHK_LENS_RECORD_SIZE;
  switch (mode % 4) {
    case 1: return SHK_LENS_HEADER_SIZE;
    case 2: return SHK_LENS_HEADER_SIZE + stride;
    case 3: return SHK_LENS_HEADER_SIZE + SHK_LENS_RING_HEADER_SIZE; /* records of ring 0 */
    default: return 0;
  }
}

static void lay(unsigned char *mem, size_t seg_size, size_t offset, const uint8_t *data, size_t n) {
  memcpy(mem + offset, data, n);
  if (offset != 0) {
    shk_lens_wire_header *h = (shk_lens_wire_header *)(void *)mem;
    h->rings_used = RINGS;
    /* Ring states the reader follows, whatever the input says, half the time. */
    if (n > 0 && (data[0] & 1)) {
      for (uint32_t i = 0; i < RINGS; i++) {
        shk_lens_wire_ring *r = (shk_lens_wire_ring *)(void *)(mem + SHK_LENS_HEADER_SIZE +
                                                              i * (seg_size - SHK_LENS_HEADER_SIZE) / RINGS);
        if (r->state > SHK_LENS_RING_CLOSED) r->state = SHK_LENS_RING_LIVE;
      }
    }
  }
}

/* 2.3: the same bytes as extension k's header (k from the first byte), checked as a reader checks
 * one against this segment, whose rings are then walked as every reader walk does. */
static void check_as_extension(unsigned char *mem, size_t seg_size, const uint8_t *data, size_t n) {
  shk__lens_geometry g;
  shk__lens_layout_geometry(mem, &g);
  shk__lens_space s;
  shk__lens_space_init(&s, mem, seg_size, &g, NULL, false);
  size_t ext_size = SHK_LENS_EXT_HEADER_SIZE + (size_t)RINGS * g.ring_stride;
  unsigned char *ext = calloc(1, ext_size);
  if (!ext) return;
  size_t m = SHK__MIN(n, ext_size);
  memcpy(ext, data, m);
  char reason[200];
  uint32_t k = n > 0 ? data[0] % (SHK_LENS_EXT_MAX + 2) : 1;
  shk__lens_ext_check(&s, k, ext, m, reason, sizeof reason);
  uint32_t span = shk__lens_space_span(&s);
  for (uint32_t i = 0; i <= span; i++) {
    shk_lens_wire_ring *r = shk__lens_space_ring(&s, i, NULL);
    if (r) (void)shk__lens_load64(&r->head);
  }
  free(ext);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  data++;
  size--;
  size_t full = shk__lens_layout_size(RECORDS, RINGS);
  size_t offset = region_offset(mode);
  /* In raw mode a short input is also a short segment: the truncation checks get exercised. */
  size_t seg_size = offset == 0 && (mode & 0x80) ? SHK__MIN(size, full) : full;
  unsigned char *mem = calloc(1, full);
  if (!mem) return 0;
  if (offset != 0) shk__lens_layout_init(mem, full, RECORDS, RINGS, 0);
  size_t n = SHK__MIN(size, full - offset);
  lay(mem, full, offset, data, n);
  shk_lens_reader_options options;
  shk_lens_reader_options_init(&options);
  options.max_strings = 64;
  shk_lens_reader *r = NULL;
  if (shk__lens_reader_attach_memory(mem, seg_size, &options, &r) == SHK_OK) {
    size_t sum = 0;
    shk_lens_reader_drain(r, touch_event, &sum, NULL);
    lay(mem, full, offset, data, n);
    shk_lens_reader_drain(r, touch_event, &sum, NULL);
    shk_lens_event e;
    while (shk_lens_reader_next(r, &e) == SHK_OK) touch_event(&e, &sum);
    shk_lens_stats st;
    shk_lens_reader_stats(r, &st);
    size_t threads = 0;
    shk_lens_reader_threads(r, NULL, 0, &threads);
    shk_lens_reader_finished(r);
    shk_lens_reader_close(r);
    if ((mode & 0x40) && offset != 0) check_as_extension(mem, seg_size, data, n); /* a valid header */
  }
  free(mem);
  return 0;
}
