/* The lens segment header: writing a fresh one, checking one found in shared memory (untrusted,
 * with a reason in words for every refusal), and probing a named segment without attaching. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "lens_internal.h"

#define HDR_AT(mem, field) SHK__LENS_FIELD_AT(shk_lens_wire_header, mem, field)
#define HDR32(mem, field) SHK__LENS_FIELD32(shk_lens_wire_header, mem, field)
#define HDR64(mem, field) SHK__LENS_FIELD64(shk_lens_wire_header, mem, field)

bool shk__lens_pid_alive(uint32_t pid) {
  if (pid == 0 || pid > (uint32_t)INT_MAX) return false;
  return shk__os_pid_alive((int)pid);
}

size_t shk__lens_layout_size(uint32_t ring_records, uint32_t ring_count) {
  return SHK_LENS_HEADER_SIZE +
         (size_t)ring_count * (SHK_LENS_RING_HEADER_SIZE + (size_t)ring_records * SHK_LENS_RECORD_SIZE);
}

void shk__lens_layout_init(void *mem, size_t size, uint32_t ring_records, uint32_t ring_count,
                           uint64_t creator) {
  shk_lens_wire_header *h = mem;
  h->protocol_version = SHK_LENS_PROTOCOL_VERSION;
  h->header_size = SHK_LENS_HEADER_SIZE;
  h->record_size = SHK_LENS_RECORD_SIZE;
  h->segment_size = size;
  h->ring_offset = SHK_LENS_HEADER_SIZE;
  h->ring_count = ring_count;
  h->ring_records = ring_records;
  h->ring_stride = SHK_LENS_RING_HEADER_SIZE + ring_records * SHK_LENS_RECORD_SIZE;
  h->process_slots = SHK_LENS_PROCESS_SLOTS;
  shk__lens_clock_choose(&h->clock_kind, &h->clock_origin, &h->ns_per_tick);
  h->origin_ns = shk__os_now_ns();
  /* 2.3: what this creation's extensions carry (never 0: 0 marks a segment that cannot grow). */
  h->creation = (creator ^ (uint64_t)(uintptr_t)mem) * 0x9E3779B97F4A7C15ull ^ h->origin_ns;
  if (h->creation == 0) h->creation = 1;
  /* The creator counts as a producer before anyone can see the segment: a reader that attaches
   * right after the magic appears must not take it for a segment whose producers have gone. */
  h->processes[0].pid = shk__lens_identity_pid(creator);
  h->processes[0].start = shk__lens_identity_stamp(creator);
  /* Magic last, with release order: whoever sees it sees a complete header. */
  shk__lens_store32(&h->magic, SHK_LENS_MAGIC);
}

#define REFUSE SHK__LENS_REFUSE

int shk__lens_layout_check(const void *mem, size_t size, char *reason, size_t reason_size) {
  if (reason && reason_size) reason[0] = '\0';
  if (!mem || size < 8)
    REFUSE(SHK_EFORMAT, "the segment is %zu bytes, too small for any lens header", size);
  uint32_t magic = HDR32(mem, magic);
  uint32_t version = HDR32(mem, protocol_version);
  if (magic == 0) REFUSE(SHK_EBUSY, "the segment is still being set up (magic 0)");
  if (magic == SHK_LENS_EXT_MAGIC)
    REFUSE(SHK_EFORMAT, "an extension segment of a lens (more rings, lens 2.3), not a lens: read the "
                        "lens whose name this one extends (without its .xNN part)");
  if (magic != SHK_LENS_MAGIC) {
    /* temporal-lens 0.1.5 has no magic: it starts with its own 32-entry frame payload. */
    REFUSE(SHK_EFORMAT,
           "not a lens segment: first word 0x%08x, where lens segments have 0x%08x", magic,
           SHK_LENS_MAGIC);
  }
  if (version == SHK_LENS_PROTOCOL_015 || (version >> 16) == 0)
    REFUSE(SHK_EVERSION,
           "a temporal-lens 0.1.5-style segment (protocol %u.%u.%u, lock payloads of 32 entries); "
           "this reader speaks lens %u.%u.%u (per-thread rings) only",
           version >> 16, (version >> 8) & 0xFF, version & 0xFF, SHK_LENS_PROTOCOL_VERSION >> 16,
           (SHK_LENS_PROTOCOL_VERSION >> 8) & 0xFF, SHK_LENS_PROTOCOL_VERSION & 0xFF);
  if ((version >> 16) != (SHK_LENS_PROTOCOL_VERSION >> 16))
    REFUSE(SHK_EVERSION, "lens protocol %u.%u.%u found; this reader speaks major %u (%u.%u.%u)",
           version >> 16, (version >> 8) & 0xFF, version & 0xFF, SHK_LENS_PROTOCOL_VERSION >> 16,
           SHK_LENS_PROTOCOL_VERSION >> 16, (SHK_LENS_PROTOCOL_VERSION >> 8) & 0xFF,
           SHK_LENS_PROTOCOL_VERSION & 0xFF);
  if (size < SHK_LENS_HEADER_SIZE)
    REFUSE(SHK_EFORMAT, "the segment is %zu bytes, shorter than the %u-byte header", size,
           SHK_LENS_HEADER_SIZE);
  uint32_t header_size = HDR32(mem, header_size), record_size = HDR32(mem, record_size);
  if (header_size != SHK_LENS_HEADER_SIZE || record_size != SHK_LENS_RECORD_SIZE)
    REFUSE(SHK_EFORMAT, "header size %u or record size %u is not %u / %u", header_size,
           record_size, SHK_LENS_HEADER_SIZE, SHK_LENS_RECORD_SIZE);
  uint64_t ring_offset = HDR64(mem, ring_offset);
  uint32_t count = HDR32(mem, ring_count), records = HDR32(mem, ring_records);
  uint32_t stride = HDR32(mem, ring_stride), slots = HDR32(mem, process_slots);
  if (ring_offset != SHK_LENS_HEADER_SIZE || count == 0 || count > 65536 || records < 64 ||
      records > (1u << 21) || (records & (records - 1)) != 0 ||
      stride != SHK_LENS_RING_HEADER_SIZE + records * SHK_LENS_RECORD_SIZE ||
      slots != SHK_LENS_PROCESS_SLOTS)
    REFUSE(SHK_EFORMAT,
           "ring geometry does not hold together (offset %llu, %u rings of %u records, stride "
           "%u, %u process slots)",
           (unsigned long long)ring_offset, count, records, stride, slots);
  size_t need = shk__lens_layout_size(records, count);
  if (size < need)
    REFUSE(SHK_EFORMAT, "%u rings of %u records need %zu bytes; the segment has %zu", count,
           records, need, size);
  uint32_t kind = HDR32(mem, clock_kind);
  if (!shk__lens_clock_usable(kind))
    REFUSE(SHK_EFORMAT, "clock kind %u is not one this machine can read", kind);
  double ns_per_tick;
  memcpy(&ns_per_tick, HDR_AT(mem, ns_per_tick), sizeof ns_per_tick);
  if (!(ns_per_tick > 1e-6 && ns_per_tick < 1e6))
    REFUSE(SHK_EFORMAT, "clock calibration %g ns per tick is implausible", ns_per_tick);
  return SHK_OK;
}

void shk__lens_layout_geometry(const void *mem, shk__lens_geometry *g) {
  g->ring_count = HDR32(mem, ring_count);
  g->ring_records = HDR32(mem, ring_records);
  g->ring_stride = HDR32(mem, ring_stride);
  g->ring_offset = HDR64(mem, ring_offset);
  g->tsc = HDR32(mem, clock_kind) == SHK_LENS_CLOCK_TSC;
  g->clock_origin = HDR64(mem, clock_origin);
  memcpy(&g->ns_per_tick, HDR_AT(mem, ns_per_tick), sizeof g->ns_per_tick);
}

void shk__lens_count_producers(const shk_lens_wire_header *h, uint32_t *live, uint32_t *dead,
                               uint32_t *some_pid) {
  *live = *dead = 0;
  *some_pid = 0;
  uint64_t last_id = 0;
  bool last_alive = false;
  for (uint32_t i = 0; i < SHK_LENS_PROCESS_SLOTS; i++) {
    uint64_t id = atomic_load(SHK__LENS_SLOT((shk_lens_wire_header *)h, i));
    uint32_t pid = shk__lens_identity_pid(id);
    if (pid == 0) continue;
    /* Handles of one process usually sit together: one liveness question per run of them. */
    if (id != last_id) {
      last_alive = shk__lens_identity_alive(id);
      last_id = id;
    }
    if (last_alive) {
      (*live)++;
      if (*some_pid == 0) *some_pid = pid;
    } else {
      (*dead)++;
    }
  }
}

static void read_info(void *mem, size_t size, shk_lens_info *info) {
  info->segment_size = size;
  if (size < 8) return;
  info->magic = HDR32(mem, magic);
  info->protocol_version = HDR32(mem, protocol_version);
}

static void read_live_info(void *mem, size_t size, const char *name, shk_lens_info *info) {
  const shk_lens_wire_header *h = mem;
  uint32_t some = 0;
  shk__lens_count_producers(h, &info->producers, &info->dead_producers, &some);
  info->producer_pid = (int)some;
  info->producer_alive = some != 0;
  uint32_t reader = shk__lens_load32(&h->reader_pid);
  info->reader_pid = reader <= (uint32_t)INT_MAX ? (int)reader : 0;
  info->reader_alive = shk__lens_pid_alive(reader);
  shk__lens_geometry g;
  shk__lens_layout_geometry(mem, &g);
  shk__lens_space space; /* extensions too, mapped read-only for the counts */
  shk__lens_space_init(&space, mem, size, &g, name, false);
  shk__lens_space_follow(&space);
  shk_lens_stats st;
  shk__lens_space_stats(&space, &st);
  shk__lens_space_close(&space);
  info->rings = (uint32_t)st.rings;
  memcpy(info->counters, st.segment, sizeof info->counters);
}

int shk_lens_probe(const char *name, shk_lens_info *info) {
  if (!info) return SHK_EINVAL;
  memset(info, 0, sizeof *info);
  shk_shm *shm = NULL;
  int rc = shk__shm_open(name, SHK_SHM_READ_ONLY, &shm);
  if (rc != SHK_OK) return rc;
  void *mem = shk_shm_data(shm);
  size_t size = shk_shm_size(shm);
  read_info(mem, size, info);
  rc = shk__lens_layout_check(mem, size, info->reason, sizeof info->reason);
  if (rc == SHK_OK) read_live_info(mem, size, name, info);
  shk_shm_close(shm);
  return rc;
}

const char *shk_lens_kind_name(int kind) {
  static const char *const names[SHK_LENS_KIND_COUNT] = {"frame", "zone", "heap", "plot", "log"};
  return kind >= 0 && kind < SHK_LENS_KIND_COUNT ? names[kind] : "?";
}
