/* Producers grow a lens (2.3): when every ring is taken, one producer at a time (the holder of
 * the main header's ext_creating word) makes the next extension segment and publishes it. */
#include <string.h>

#include "lens_internal.h"

#define GROW_WAIT_NS 2000000000ull /* how long to wait for another producer making one */
#define GROW_NAP_NS 100000u

void (*shk__lens_grow_hook)(uint32_t k);

/* Creates extension k exclusively. A name already there is left over (its creator died before
 * publishing it, or it belongs to an older lens of this name): only the holder of ext_creating
 * creates, so it is removed and made again. */
static int create_segment(const char *name, size_t size, shk_shm **shm) {
  int rc = shk__shm_create(name, size, shm);
  if (rc != SHK_EEXIST) return rc;
  shk__shm_unlink(name); /* POSIX; on Windows the name goes with its last handle */
  return shk__shm_create(name, size, shm);
}

static int create_ext(shk__lens_space *s, uint32_t k, uint64_t identity) {
  shk_lens_wire_header *h = s->part[0].mem;
  uint32_t count = shk__lens_ext_rings(s->part[0].count, k);
  if (count == 0) return SHK_ELIMIT;
  uint64_t bytes = SHK_LENS_EXT_HEADER_SIZE + (uint64_t)count * s->ring_stride;
  if (bytes > (uint64_t)SIZE_MAX) return SHK_ESIZE;
  char name[SHK_SHM_NAME_MAX + 1];
  shk__lens_ext_name(s->name, k, name);
  shk_shm *shm = NULL;
  int rc = create_segment(name, (size_t)bytes, &shm);
  if (rc != SHK_OK) return rc;
  if (shk__lens_grow_hook) shk__lens_grow_hook(k);
  shk_lens_wire_ext_header *e = shk_shm_data(shm);
  e->protocol_version = SHK_LENS_PROTOCOL_VERSION;
  e->header_size = SHK_LENS_EXT_HEADER_SIZE;
  e->index = k;
  e->segment_size = bytes;
  e->ring_offset = SHK_LENS_EXT_HEADER_SIZE;
  e->ring_count = count;
  e->ring_records = s->ring_records;
  e->ring_stride = s->ring_stride;
  e->creation = s->creation;
  e->creator = identity;
  shk__lens_store32(&e->magic, SHK_LENS_EXT_MAGIC); /* whoever sees it sees the whole header */
  uint32_t before = k - 1;
  if (!atomic_compare_exchange_strong(SHK__A32(&h->ext_count), &before, k)) {
    /* Cannot happen while ext_creating is ours; a hostile count is left as it is. */
    shk_shm_close(shm);
    shk__shm_unlink(name);
    return SHK_EFORMAT;
  }
  shk__lens_space_add(s, shm); /* the mapping is ours already: follow() need not open it */
  return SHK_OK;
}

int shk__lens_space_grow(shk__lens_space *s, uint64_t identity) {
  shk_lens_wire_header *h = s->part[0].mem;
  uint32_t have = s->parts - 1;
  if (s->creation == 0 || !s->name[0] || s->stopped || have >= SHK_LENS_EXT_MAX ||
      shk__lens_ext_rings(s->part[0].count, have + 1) == 0)
    return SHK_ELIMIT;
  uint64_t deadline = shk__os_now_ns() + GROW_WAIT_NS;
  for (;;) {
    if (shk__lens_load32(&h->ext_count) > have) return SHK_OK; /* another producer made it */
    uint64_t holder = shk__lens_load64(&h->ext_creating);
    /* Taken from nobody, or from a producer that died while making one. */
    if (holder == 0 || (holder != identity && !shk__lens_identity_alive(holder))) {
      if (atomic_compare_exchange_strong(SHK__A64(&h->ext_creating), &holder, identity)) {
        int rc = shk__lens_load32(&h->ext_count) > have ? SHK_OK : create_ext(s, have + 1, identity);
        uint64_t mine = identity;
        atomic_compare_exchange_strong(SHK__A64(&h->ext_creating), &mine, 0);
        return rc;
      }
      continue;
    }
    if (shk__os_now_ns() >= deadline) return SHK_ETIMEDOUT;
    shk__os_sleep_ns(GROW_NAP_NS);
  }
}
