/* The lens segment header: writing a fresh one, checking one found in shared memory (untrusted),
 * and probing a named segment without attaching to it. */
#include <limits.h>
#include <string.h>

#include "lens_internal.h"

#define SEG_AT(mem, field) ((const unsigned char *)(mem) + offsetof(shk_lens_segment, field))

bool shk__lens_pid_alive(uint32_t pid) {
  if (pid == 0 || pid > (uint32_t)INT_MAX) return false;
  return shk__os_pid_alive((int)pid);
}

void shk__lens_layout_init(shk_lens_segment *seg, uint32_t creator_pid) {
  seg->protocol_version = SHK_LENS_PROTOCOL_VERSION;
  seg->sizeof_usize = (uint32_t)sizeof(void *);
  seg->ext.magic = SHK_LENS_EXT_MAGIC;
  seg->ext.size = (uint32_t)sizeof(shk_lens_ext);
  seg->ext.origin_ns = shk__os_now_ns();
  /* The creator counts as a producer before anyone can see the segment: a reader that attaches
   * right after the magic appears must not take it for a segment whose producers have gone. */
  seg->ext.producers = creator_pid != 0 ? 1 : 0;
  seg->ext.producer_pid = creator_pid;
  /* Magic last, with release order: whoever sees it sees a complete header. */
  shk__lens_store32(&seg->magic, SHK_LENS_MAGIC);
}

int shk__lens_layout_check(const void *mem, size_t size) {
  if (!mem || size < offsetof(shk_lens_segment, frame)) return SHK_EFORMAT;
  uint32_t magic = shk__lens_load32((const uint32_t *)SEG_AT(mem, magic));
  if (magic == 0) return SHK_EBUSY;
  if (magic != SHK_LENS_MAGIC) return SHK_EFORMAT;
  uint32_t version = shk__lens_load32((const uint32_t *)SEG_AT(mem, protocol_version));
  if ((version >> 16) != (SHK_LENS_PROTOCOL_VERSION >> 16)) return SHK_EVERSION;
  uint32_t usize = shk__lens_load32((const uint32_t *)SEG_AT(mem, sizeof_usize));
  if (usize != 4 && usize != 8) return SHK_EFORMAT;
  if (size < sizeof(shk_lens_segment)) return SHK_EFORMAT;
  const unsigned char *ext = SEG_AT(mem, ext);
  uint32_t ext_magic = shk__lens_load32((const uint32_t *)(ext + offsetof(shk_lens_ext, magic)));
  uint32_t ext_size = shk__lens_load32((const uint32_t *)(ext + offsetof(shk_lens_ext, size)));
  /* A later minor version may grow the extension; it must still fit in the mapping. */
  if (ext_magic != SHK_LENS_EXT_MAGIC || ext_size < sizeof(shk_lens_ext) ||
      ext_size > size - offsetof(shk_lens_segment, ext))
    return SHK_EFORMAT;
  return SHK_OK;
}

static void read_info(const void *mem, size_t size, shk_lens_info *info) {
  info->segment_size = size;
  if (size < offsetof(shk_lens_segment, frame)) return;
  info->magic = shk__lens_load32((const uint32_t *)SEG_AT(mem, magic));
  info->protocol_version = shk__lens_load32((const uint32_t *)SEG_AT(mem, protocol_version));
  info->sizeof_usize = shk__lens_load32((const uint32_t *)SEG_AT(mem, sizeof_usize));
  if (size < sizeof(shk_lens_segment)) return;
  const shk_lens_ext *ext = (const shk_lens_ext *)(const void *)SEG_AT(mem, ext);
  uint32_t producer = shk__lens_load32(&ext->producer_pid);
  uint32_t reader = shk__lens_load32(&ext->reader_pid);
  info->producer_pid = producer <= (uint32_t)INT_MAX ? (int)producer : 0;
  info->producer_alive = shk__lens_pid_alive(producer);
  info->producers = shk__lens_load32(&ext->producers);
  info->reader_pid = reader <= (uint32_t)INT_MAX ? (int)reader : 0;
  info->reader_alive = shk__lens_pid_alive(reader);
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
    info->counters[k].written = shk__lens_load64(&ext->counters[k].written);
    info->counters[k].dropped = shk__lens_load64(&ext->counters[k].dropped);
    info->counters[k].drained = shk__lens_load64(&ext->counters[k].drained);
  }
}

int shk_lens_probe(const char *name, shk_lens_info *info) {
  if (!info) return SHK_EINVAL;
  memset(info, 0, sizeof *info);
  shk_shm *shm = NULL;
  int rc = shk_shm_open(name, SHK_SHM_READ_ONLY, &shm);
  if (rc != SHK_OK) return rc;
  const void *mem = shk_shm_data(shm);
  size_t size = shk_shm_size(shm);
  read_info(mem, size, info);
  rc = shk__lens_layout_check(mem, size);
  shk_shm_close(shm);
  return rc;
}

const char *shk_lens_kind_name(int kind) {
  static const char *const names[SHK_LENS_KIND_COUNT] = {"frame", "zone", "heap", "plot", "log"};
  return kind >= 0 && kind < SHK_LENS_KIND_COUNT ? names[kind] : "?";
}

void shk__lens_segment_stats(const shk_lens_segment *s, shk_lens_stats *out) {
  memset(out, 0, sizeof *out);
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
    out->segment[k].written = shk__lens_load64(&s->ext.counters[k].written);
    out->segment[k].dropped = shk__lens_load64(&s->ext.counters[k].dropped);
    out->segment[k].drained = shk__lens_load64(&s->ext.counters[k].drained);
  }
  out->lock_recoveries = (uint64_t)shk__lens_load32(&s->frame.lock.recoveries) +
                         shk__lens_load32(&s->zone.lock.recoveries) +
                         shk__lens_load32(&s->heap.lock.recoveries) +
                         shk__lens_load32(&s->plot.lock.recoveries) +
                         shk__lens_load32(&s->log_data_lock.recoveries);
}
