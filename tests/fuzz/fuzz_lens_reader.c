/* libFuzzer target for the lens reader: arbitrary bytes laid over a lens segment (the whole of it,
 * or one payload under a valid header), then attach, drain twice and read every event. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/lens_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where a mode byte puts the input: raw over the whole segment (the header too), or into one
 * region below a valid header, so that short inputs reach the deep checks. */
static size_t region_offset(uint8_t mode) {
  switch (mode % 7) {
    case 1: return offsetof(shk_lens_segment, frame);
    case 2: return offsetof(shk_lens_segment, zone);
    case 3: return offsetof(shk_lens_segment, heap);
    case 4: return offsetof(shk_lens_segment, plot);
    case 5: return offsetof(shk_lens_segment, log_data_lock);
    case 6: return offsetof(shk_lens_segment, frame);
    default: return 0;
  }
}

static void unlock_all(shk_lens_segment *s) {
  /* Locks held by whatever pid the input names would make each run wait for its timeout. */
  s->frame.lock.owner = s->zone.lock.owner = s->heap.lock.owner = s->plot.lock.owner = 0;
  s->log_data_lock.owner = 0;
}

static void touch_event(const shk_lens_event *e, void *user) {
  size_t *sum = user;
  /* Reads every byte the reader hands out, so a bad pointer or length shows under ASan. */
  if (e->name) *sum += strlen(e->name);
  if (e->thread) *sum += strlen(e->thread);
  if (e->message) {
    for (uint32_t i = 0; i <= e->length; i++) *sum += (unsigned char)e->message[i];
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  data++;
  size--;
  size_t offset = region_offset(mode);
  /* In raw mode a short input is also a short segment: the truncation checks get exercised. */
  size_t seg_size = offset == 0 && (mode & 0x80) ? SHK__MIN(size, sizeof(shk_lens_segment))
                                                  : sizeof(shk_lens_segment);
  unsigned char *mem = calloc(1, sizeof(shk_lens_segment));
  if (!mem) return 0;
  shk_lens_segment *seg = (shk_lens_segment *)(void *)mem;
  if (offset != 0) shk__lens_layout_init(seg, 0);
  size_t n = SHK__MIN(size, sizeof(shk_lens_segment) - offset);
  memcpy(mem + offset, data, n);
  if (offset != 0) {
    seg->ext.magic = SHK_LENS_EXT_MAGIC;
    seg->ext.size = sizeof(shk_lens_ext);
  }
  unlock_all(seg);
  shk_lens_reader_options options;
  shk_lens_reader_options_init(&options);
  options.lock_timeout_ns = 0;
  options.max_strings = 64;
  shk_lens_reader *r = NULL;
  if (shk__lens_reader_attach_memory(mem, seg_size, &options, &r) == SHK_OK) {
    size_t sum = 0;
    shk_lens_reader_drain(r, touch_event, &sum, NULL);
    /* A second pass over the same bytes: sizes were reset, so lay the input again. */
    memcpy(mem + offset, data, n);
    unlock_all(seg);
    shk_lens_reader_drain(r, touch_event, &sum, NULL);
    shk_lens_event e;
    while (shk_lens_reader_next(r, &e) == SHK_OK) touch_event(&e, &sum);
    shk_lens_stats st;
    shk_lens_reader_stats(r, &st);
    shk_lens_reader_finished(r);
    shk_lens_reader_close(r);
  }
  free(mem);
  return 0;
}
