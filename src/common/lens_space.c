/* The ring space of a lens (2.3): the main segment's rings and those of its extension segments,
 * numbered globally; mapping extensions as they are published, each checked as untrusted input,
 * and their names. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lens_internal.h"

#define EXT32(mem, field) SHK__LENS_FIELD32(shk_lens_wire_ext_header, mem, field)
#define EXT64(mem, field) SHK__LENS_FIELD64(shk_lens_wire_ext_header, mem, field)

uint32_t shk__lens_ext_rings(uint32_t main_count, uint32_t k) {
  if (k == 0 || k > SHK_LENS_EXT_MAX || main_count == 0 || main_count >= SHK_LENS_RINGS_MAX) return 0;
  /* Each part holds as many rings as all before it: main << (k-1) of them before extension k,
   * and as many in it, up to the limit in all. */
  uint64_t before = (uint64_t)main_count << (k - 1);
  if (before >= SHK_LENS_RINGS_MAX) return 0;
  return (uint32_t)SHK__MIN(before, SHK_LENS_RINGS_MAX - before);
}

/* FNV-1a, 32 bits: what tells two long lens names with the same first characters apart. */
static uint32_t fnv1a(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

void shk__lens_ext_name(const char *name, uint32_t k, char out[SHK_SHM_NAME_MAX + 1]) {
  size_t len = strlen(name);
  /* NAME.xKK while that fits the 30 portable characters; else the first 17 characters, '.',
   * 8 hex digits of the whole name's hash, .xKK */
  if (len + 4 <= SHK_SHM_NAME_MAX)
    snprintf(out, SHK_SHM_NAME_MAX + 1, "%s.x%02u", name, (unsigned)(k % 100));
  else
    snprintf(out, SHK_SHM_NAME_MAX + 1, "%.17s.%08x.x%02u", name, (unsigned)fnv1a(name),
             (unsigned)(k % 100));
}

void shk__lens_space_init(shk__lens_space *s, void *mem, size_t size, const shk__lens_geometry *g,
                          const char *name, bool writable) {
  memset(s, 0, sizeof *s);
  shk_lens_wire_header *h = mem;
  shk__lens_part *p = &s->part[0];
  p->mem = mem;
  p->size = size;
  p->ring_offset = g->ring_offset;
  p->count = g->ring_count;
  p->used = &h->rings_used;
  s->parts = 1;
  s->total = g->ring_count;
  s->ring_records = g->ring_records;
  s->ring_stride = g->ring_stride;
  s->creation = shk__lens_load64(&h->creation);
  s->writable = writable;
  if (name) snprintf(s->name, sizeof s->name, "%s", name);
}

/* The first thing found wrong is kept: later ones often follow from it. */
static void problem(shk__lens_space *s, const char *format, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void problem(shk__lens_space *s, const char *format, ...) {
  if (s->problem[0]) return;
  va_list ap;
  va_start(ap, format);
  vsnprintf(s->problem, sizeof s->problem, format, ap);
  va_end(ap);
}

#define REFUSE SHK__LENS_REFUSE

int shk__lens_ext_check(const shk__lens_space *s, uint32_t k, const void *mem, size_t size,
                        char *reason, size_t reason_size) {
  if (reason && reason_size) reason[0] = '\0';
  if (size < SHK_LENS_EXT_HEADER_SIZE)
    REFUSE(SHK_EFORMAT, "extension %u is %zu bytes, shorter than its %u-byte header", k, size,
           SHK_LENS_EXT_HEADER_SIZE);
  uint32_t magic = EXT32(mem, magic);
  if (magic == 0) REFUSE(SHK_EBUSY, "extension %u is not set up (magic 0)", k);
  if (magic != SHK_LENS_EXT_MAGIC)
    REFUSE(SHK_EFORMAT, "extension %u is not a lens extension: first word 0x%08x, where extensions "
                        "have 0x%08x", k, magic, SHK_LENS_EXT_MAGIC);
  uint32_t version = EXT32(mem, protocol_version);
  if ((version >> 16) != (SHK_LENS_PROTOCOL_VERSION >> 16))
    REFUSE(SHK_EFORMAT, "extension %u has lens protocol %u.%u.%u; this reader speaks major %u", k,
           version >> 16, (version >> 8) & 0xFF, version & 0xFF, SHK_LENS_PROTOCOL_VERSION >> 16);
  uint32_t index = EXT32(mem, index);
  if (index != k) REFUSE(SHK_EFORMAT, "extension %u says it is extension %u", k, index);
  uint64_t creation = EXT64(mem, creation);
  if (creation != s->creation)
    REFUSE(SHK_EFORMAT,
           "extension %u belongs to another lens of this name (creation %016llx, this lens "
           "%016llx): left over from an older one",
           k, (unsigned long long)creation, (unsigned long long)s->creation);
  uint32_t header_size = EXT32(mem, header_size), count = EXT32(mem, ring_count);
  uint32_t records = EXT32(mem, ring_records), stride = EXT32(mem, ring_stride);
  uint64_t offset = EXT64(mem, ring_offset);
  uint32_t want = shk__lens_ext_rings(s->part[0].count, k);
  if (header_size != SHK_LENS_EXT_HEADER_SIZE || offset != SHK_LENS_EXT_HEADER_SIZE ||
      count != want || records != s->ring_records || stride != s->ring_stride)
    REFUSE(SHK_EFORMAT,
           "extension %u geometry does not match the lens (header %u, offset %llu, %u rings of %u "
           "records, stride %u; the lens wants %u rings of %u records, stride %u, at offset %u)",
           k, header_size, (unsigned long long)offset, count, records, stride, want,
           s->ring_records, s->ring_stride, SHK_LENS_EXT_HEADER_SIZE);
  uint64_t need = SHK_LENS_EXT_HEADER_SIZE + (uint64_t)count * stride;
  if (size < need)
    REFUSE(SHK_EFORMAT, "extension %u: %u rings need %llu bytes; the segment has %zu", k, count,
           (unsigned long long)need, size);
  return SHK_OK;
}

bool shk__lens_space_behind(const shk__lens_space *s) {
  if (s->stopped || !s->name[0]) return false;
  const shk_lens_wire_header *h = s->part[0].mem;
  return shk__lens_load32(&h->ext_count) > s->parts - 1;
}

void shk__lens_space_add(shk__lens_space *s, shk_shm *shm) {
  shk__lens_part *p = &s->part[s->parts];
  shk_lens_wire_ext_header *e = shk_shm_data(shm);
  p->mem = e;
  p->shm = shm;
  p->size = shk_shm_size(shm);
  p->ring_offset = SHK_LENS_EXT_HEADER_SIZE;
  p->count = shk__lens_ext_rings(s->part[0].count, s->parts);
  p->first = s->total;
  p->used = &e->rings_used;
  s->total += p->count;
  s->parts++;
}

/* Maps extension k (the next one) and checks it; sets problem on refusal. */
static bool map_next(shk__lens_space *s) {
  uint32_t k = s->parts;
  char name[SHK_SHM_NAME_MAX + 1];
  shk__lens_ext_name(s->name, k, name);
  shk_shm *shm = NULL;
  int rc = shk__shm_open(name, s->writable ? SHK_SHM_READ_WRITE : SHK_SHM_READ_ONLY, &shm);
  if (rc != SHK_OK) {
    problem(s,
             "extension %u ('%s') is published but cannot be opened: %s%s", k, name,
             shk_strerror(rc), rc == SHK_ENOENT ? " (its name was removed)" : "");
    return false;
  }
  char reason[200];
  if (shk__lens_ext_check(s, k, shk_shm_data(shm), shk_shm_size(shm), reason, sizeof reason) !=
      SHK_OK) {
    problem(s, "%s ('%s'); its rings are not read", reason, name);
    shk_shm_close(shm);
    return false;
  }
  shk__lens_space_add(s, shm);
  return true;
}

uint32_t shk__lens_space_follow(shk__lens_space *s) {
  if (!shk__lens_space_behind(s)) return 0;
  const shk_lens_wire_header *h = s->part[0].mem;
  uint32_t published = shk__lens_load32(&h->ext_count); /* only grows: still past what we map */
  if (s->creation == 0) {
    problem(s,
             "the header publishes %u extensions but has no creation identity (0): refused",
             published);
    s->stopped = true;
    return 0;
  }
  if (published > SHK_LENS_EXT_MAX) {
    problem(s,
             "the header publishes %u extensions, past the limit of %u: the first %u are read",
             published, SHK_LENS_EXT_MAX, SHK_LENS_EXT_MAX);
    published = SHK_LENS_EXT_MAX;
  }
  uint32_t added = 0;
  while (s->parts - 1 < published && shk__lens_ext_rings(s->part[0].count, s->parts) > 0) {
    if (!map_next(s)) {
      s->stopped = true;
      break;
    }
    added++;
  }
  if (s->parts - 1 < published && !s->stopped) {
    problem(s,
             "the header publishes %u extensions; a lens of %u rings has room for %u", published,
             s->part[0].count, s->parts - 1);
    s->stopped = true;
  }
  return added;
}

void shk__lens_space_close(shk__lens_space *s) {
  for (uint32_t p = 1; p < s->parts; p++) {
    shk_shm_close(s->part[p].shm);
    s->part[p].shm = NULL;
  }
  s->parts = 1;
  s->total = s->part[0].count;
}

void shk__lens_space_check_sizes(shk__lens_space *s) {
  for (uint32_t p = 1; p < s->parts; p++) {
    shk__lens_part *part = &s->part[p];
    uint64_t size = 0;
    if (part->shrunk ||
        shk__os_segment_size_now(shk__shm_os_segment(part->shm), &size) != SHK_OK ||
        size >= part->size)
      continue;
    part->shrunk = true;
    problem(s,
             "extension %u shrank under the reader (%llu of %llu bytes left): its rings are read no "
             "more", p, (unsigned long long)size, (unsigned long long)part->size);
  }
}

static uint32_t used_of(const shk__lens_part *p) {
  uint32_t used = shk__lens_load32(p->used);
  return used > p->count ? p->count : used;
}

uint32_t shk__lens_space_span(const shk__lens_space *s) {
  for (uint32_t p = s->parts; p-- > 0;) {
    uint32_t used = used_of(&s->part[p]);
    if (used > 0) return s->part[p].first + used;
  }
  return 0;
}

shk_lens_wire_ring *shk__lens_space_slot(const shk__lens_space *s, uint32_t i,
                                         const shk__lens_part **part) {
  if (i >= s->total) return NULL;
  uint32_t p = s->parts;
  while (p-- > 1 && i < s->part[p].first) {
  }
  const shk__lens_part *pp = &s->part[p];
  uint32_t j = i - pp->first;
  if (j >= pp->count || pp->shrunk) return NULL;
  if (part) *part = pp;
  return (shk_lens_wire_ring *)(void *)((unsigned char *)pp->mem + pp->ring_offset +
                                        (uint64_t)j * s->ring_stride);
}

shk_lens_wire_ring *shk__lens_space_ring(const shk__lens_space *s, uint32_t i,
                                         const shk__lens_part **part) {
  const shk__lens_part *pp;
  shk_lens_wire_ring *r = shk__lens_space_slot(s, i, &pp);
  if (!r || i - pp->first >= used_of(pp)) return NULL;
  if (part) *part = pp;
  return r;
}

void shk__lens_space_stats(const shk__lens_space *s, shk_lens_stats *out) {
  memset(out, 0, sizeof *out);
  const shk_lens_wire_header *h = s->part[0].mem;
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++)
    out->segment[k].dropped = shk__lens_load64(&h->no_ring_dropped[k]);
  uint32_t span = shk__lens_space_span(s);
  for (uint32_t i = 0; i < span; i++) {
    shk_lens_wire_ring *r = shk__lens_space_ring(s, i, NULL);
    if (!r) continue;
    out->rings++;
    for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
      out->segment[k].written += shk__lens_load64(&r->written[k]);
      out->segment[k].dropped += shk__lens_load64(&r->dropped[k]);
      out->segment[k].drained += shk__lens_load64(&r->drained[k]);
    }
  }
}

void shk__lens_space_unlink(const char *name, uint32_t ext_count) {
  shk__shm_unlink(name);
  uint32_t last = ext_count < SHK_LENS_EXT_MAX ? ext_count + 1 : SHK_LENS_EXT_MAX;
  char ext[SHK_SHM_NAME_MAX + 1];
  for (uint32_t k = 1; k <= last; k++) {
    shk__lens_ext_name(name, k, ext);
    shk__shm_unlink(ext);
  }
}
