/* The one evolution rule of every options and table struct (shmkit/options.h, docs/api.md
 * "Options and tables"): a caller's struct is read only as far as its struct_size says, over the
 * defaults. */
#include <string.h>

#include "internal.h"

static uint32_t first_field(const void *caller) {
  uint32_t field;
  memcpy(&field, caller, sizeof field);
  return field;
}

/* The size a caller's first field stands for, or 0 when that value is refused. */
static size_t caller_size(const shk__options_layout *l, uint32_t field) {
  if (field == 0) return l->zero_size;
  if (field <= l->legacy_count) return l->legacy_sizes[field - 1];
  if (field < l->min_size || field > SHK_OPTIONS_SIZE_MAX) return 0;
  return field;
}

int shk__options_read(const shk__options_layout *l, const void *caller, void *local) {
  memcpy(local, l->defaults, l->size);
  if (!caller) return SHK_OK;
  size_t size = caller_size(l, first_field(caller));
  if (size == 0) return SHK_EINVAL;
  /* Fields this library does not know must be zero: a newer caller asked for something. */
  const unsigned char *bytes = caller;
  for (size_t i = l->size; i < size; i++)
    if (bytes[i]) return SHK_EINVAL;
  memcpy(local, caller, SHK__MIN(size, l->size));
  uint32_t own = (uint32_t)l->size;
  memcpy(local, &own, sizeof own);
  return SHK_OK;
}

int shk__options_use(const shk__options_layout *l, const void *caller, void *local,
                     const void **out) {
  /* The common cases need no copy: no options, or a struct of exactly this library's layout. */
  if (!caller || first_field(caller) == l->size) {
    *out = caller ? caller : l->defaults;
    return SHK_OK;
  }
  *out = local;
  return shk__options_read(l, caller, local);
}

void shk__options_init(const shk__options_layout *l, void *dst, size_t size) {
  if (!dst || size < sizeof(uint32_t)) return;
  /* The caller's struct is `size` bytes: fields newer than this library stay zero. */
  memset(dst, 0, size);
  memcpy(dst, l->defaults, SHK__MIN(size, l->size));
  uint32_t own = (uint32_t)SHK__MIN(size, SHK_OPTIONS_SIZE_MAX);
  memcpy(dst, &own, sizeof own);
}
