/* Regions (bounds-checked copies of [start, end), end exclusive) and views (zero-copy typed
 * windows with offset, count and stride that hold a reference to their buffer). */
#include <stdlib.h>
#include <string.h>

#include "buf_internal.h"

/* ---- regions ---- */

static int region_check(const shk_buf *buf, size_t start, size_t end) {
  if (!buf) return SHK_EINVAL;
  if (start > end || end > buf->size) return SHK_ERANGE;
  return SHK_OK;
}

static int buf_region_copy_impl(const shk_buf *buf, size_t start, size_t end, void *dst, size_t dst_size) {
  int rc = region_check(buf, start, end);
  if (rc != SHK_OK) return rc;
  size_t n = end - start;
  if (n == 0) return SHK_OK;
  if (!dst || shk__range_wraps(dst, dst_size)) return SHK_EINVAL;
  if (dst_size < n) return SHK_ESIZE;
  memcpy(dst, (const unsigned char *)buf->data + start, n);
  return SHK_OK;
}

int shk_buf_region_copy(const shk_buf *buf, size_t start, size_t end, void *dst, size_t dst_size) {
  SHK__BUF_CHECK(buf, SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL));
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_region_copy_impl(buf, start, end, dst, dst_size));
}

static int buf_region_new_impl(const shk_buf *buf, size_t start, size_t end, const shk_buf_options *opts, shk_buf **out) {
  if (!out) return SHK_EINVAL;
  *out = NULL;
  int rc = region_check(buf, start, end);
  if (rc != SHK_OK) return rc;
  if (start == end) return SHK_ESIZE;
  shk_buf_options o;
  rc = shk__buf_options_read(opts, &o);
  if (rc != SHK_OK) return rc;
  o.init = SHK_BUF_INIT_NONE;
  shk_buf *copy = NULL;
  rc = shk_buf_create(end - start, 1, &o, &copy);
  if (rc != SHK_OK) return rc;
  memcpy(copy->data, (const unsigned char *)buf->data + start, end - start);
  *out = copy;
  return SHK_OK;
}

int shk_buf_region_new(const shk_buf *buf, size_t start, size_t end, const shk_buf_options *opts,
                       shk_buf **out) {
  SHK__BUF_CHECK(buf, SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL));
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, buf_region_new_impl(buf, start, end, opts, out));
}

/* ---- views ---- */

struct shk_buf_view {
  shk_buf *buf; /* one reference */
  unsigned char *base;
  size_t count, stride, elem_size;
  shk_buf_type type;
};

size_t shk_buf_type_size(shk_buf_type type) {
  switch (type) {
    case SHK_BUF_U8: case SHK_BUF_I8: return 1;
    case SHK_BUF_U16: case SHK_BUF_I16: return 2;
    case SHK_BUF_U32: case SHK_BUF_I32: case SHK_BUF_F32: return 4;
    case SHK_BUF_U64: case SHK_BUF_I64: case SHK_BUF_F64: return 8;
    case SHK_BUF_BYTES: break;
  }
  return 0;
}

static int spec_elem_size(const shk_buf_view_spec *spec, size_t *elem) {
  if (spec->type == SHK_BUF_BYTES) {
    *elem = spec->elem_size;
    return spec->elem_size ? SHK_OK : SHK_ESIZE;
  }
  size_t typed = shk_buf_type_size(spec->type);
  if (typed == 0) return SHK_EINVAL;
  if (spec->elem_size != 0 && spec->elem_size != typed) return SHK_EINVAL;
  *elem = typed;
  return SHK_OK;
}

static int view_create_impl(shk_buf *buf, const shk_buf_view_spec *spec, shk_buf_view **out) {
  if (!out) return SHK_EINVAL;
  *out = NULL;
  if (!buf || !spec) return SHK_EINVAL;
  size_t elem = 0;
  int rc = spec_elem_size(spec, &elem);
  if (rc != SHK_OK) return rc;
  if (spec->count == 0) return SHK_ESIZE;
  size_t stride = spec->stride ? spec->stride : elem;
  if (stride < elem) return SHK_EINVAL;
  /* The last element ends at offset + (count - 1) * stride + elem; every step checked. */
  size_t last;
  if (shk__mul_overflows(spec->count - 1, stride, &last)) return SHK_EOVERFLOW;
  if (last > SIZE_MAX - elem || last + elem > SIZE_MAX - spec->offset) return SHK_EOVERFLOW;
  if (spec->offset + last + elem > buf->size) return SHK_ERANGE;
  shk_buf_view *v = shk__malloc(sizeof *v);
  if (!v) return SHK_ENOMEM;
  shk_buf_retain(buf);
  v->buf = buf;
  v->base = (unsigned char *)buf->data + spec->offset;
  v->count = spec->count;
  v->stride = stride;
  v->elem_size = elem;
  v->type = spec->type;
  *out = v;
  return SHK_OK;
}

int shk_buf_view_create(shk_buf *buf, const shk_buf_view_spec *spec, shk_buf_view **out) {
  SHK__BUF_CHECK(buf, SHK__DEBUG_RET(SHK__DEBUG_BUF, SHK_EINVAL));
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, view_create_impl(buf, spec, out));
}

void shk_buf_view_free(shk_buf_view *view) {
  if (!view) return;
  shk_buf_release(view->buf);
  free(view);
}

void *shk_buf_view_at(const shk_buf_view *view, size_t i) {
  if (!view || i >= view->count) return NULL;
  return view->base + i * view->stride;
}

static int view_get_impl(const shk_buf_view *view, size_t i, void *dst) {
  if (!view || !dst) return SHK_EINVAL;
  if (i >= view->count) return SHK_ERANGE;
  memcpy(dst, view->base + i * view->stride, view->elem_size);
  return SHK_OK;
}

int shk_buf_view_get(const shk_buf_view *view, size_t i, void *dst) {
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, view_get_impl(view, i, dst));
}

static int view_set_impl(shk_buf_view *view, size_t i, const void *src) {
  if (!view || !src) return SHK_EINVAL;
  if (i >= view->count) return SHK_ERANGE;
  memcpy(view->base + i * view->stride, src, view->elem_size);
  return SHK_OK;
}

int shk_buf_view_set(shk_buf_view *view, size_t i, const void *src) {
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, view_set_impl(view, i, src));
}

/* One scalar of any numeric type; memcpy keeps unaligned strides legal. */
typedef union scalar {
  uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
  uint64_t u64; int64_t i64; float f32; double f64;
} scalar;

static int view_get_f64_impl(const shk_buf_view *view, size_t i, double *out) {
  if (!view || !out || view->type == SHK_BUF_BYTES) return SHK_EINVAL;
  scalar s;
  int rc = shk_buf_view_get(view, i, &s);
  if (rc != SHK_OK) return rc;
  switch (view->type) {
    case SHK_BUF_U8: *out = s.u8; break;
    case SHK_BUF_I8: *out = s.i8; break;
    case SHK_BUF_U16: *out = s.u16; break;
    case SHK_BUF_I16: *out = s.i16; break;
    case SHK_BUF_U32: *out = s.u32; break;
    case SHK_BUF_I32: *out = s.i32; break;
    case SHK_BUF_U64: *out = (double)s.u64; break;
    case SHK_BUF_I64: *out = (double)s.i64; break;
    case SHK_BUF_F32: *out = s.f32; break;
    case SHK_BUF_F64: case SHK_BUF_BYTES: *out = s.f64; break;
  }
  return SHK_OK;
}

int shk_buf_view_get_f64(const shk_buf_view *view, size_t i, double *out) {
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, view_get_f64_impl(view, i, out));
}

/* Whether value converts to the type without undefined behaviour (float types take anything). */
static bool fits(shk_buf_type type, double v) {
  switch (type) {
    case SHK_BUF_U8: return v > -1.0 && v < 256.0;
    case SHK_BUF_I8: return v > -129.0 && v < 128.0;
    case SHK_BUF_U16: return v > -1.0 && v < 65536.0;
    case SHK_BUF_I16: return v > -32769.0 && v < 32768.0;
    case SHK_BUF_U32: return v > -1.0 && v < 4294967296.0;
    case SHK_BUF_I32: return v > -2147483649.0 && v < 2147483648.0;
    case SHK_BUF_U64: return v > -1.0 && v < 18446744073709551616.0;
    case SHK_BUF_I64: return v >= -9223372036854775808.0 && v < 9223372036854775808.0;
    default: return true;
  }
}

static int view_set_f64_impl(shk_buf_view *view, size_t i, double value) {
  if (!view || view->type == SHK_BUF_BYTES) return SHK_EINVAL;
  if (!fits(view->type, value)) return SHK_ERANGE;
  scalar s;
  switch (view->type) {
    case SHK_BUF_U8: s.u8 = (uint8_t)value; break;
    case SHK_BUF_I8: s.i8 = (int8_t)value; break;
    case SHK_BUF_U16: s.u16 = (uint16_t)value; break;
    case SHK_BUF_I16: s.i16 = (int16_t)value; break;
    case SHK_BUF_U32: s.u32 = (uint32_t)value; break;
    case SHK_BUF_I32: s.i32 = (int32_t)value; break;
    case SHK_BUF_U64: s.u64 = (uint64_t)value; break;
    case SHK_BUF_I64: s.i64 = (int64_t)value; break;
    case SHK_BUF_F32: s.f32 = (float)value; break;
    case SHK_BUF_F64: case SHK_BUF_BYTES: s.f64 = value; break;
  }
  return shk_buf_view_set(view, i, &s);
}

int shk_buf_view_set_f64(shk_buf_view *view, size_t i, double value) {
  return SHK__DEBUG_RET(SHK__DEBUG_BUF, view_set_f64_impl(view, i, value));
}

size_t shk_buf_view_count(const shk_buf_view *view) { return view ? view->count : 0; }
size_t shk_buf_view_stride(const shk_buf_view *view) { return view ? view->stride : 0; }
size_t shk_buf_view_elem_size(const shk_buf_view *view) { return view ? view->elem_size : 0; }
shk_buf_type shk_buf_view_type(const shk_buf_view *view) { return view ? view->type : SHK_BUF_BYTES; }
shk_buf *shk_buf_view_buffer(const shk_buf_view *view) { return view ? view->buf : NULL; }
