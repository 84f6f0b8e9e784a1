/* Small shared helpers: rounding. */
#include "internal.h"

size_t shk__round_up(size_t n, size_t unit) {
  if (n > SIZE_MAX - (unit - 1)) return 0;
  return (n + unit - 1) & ~(unit - 1);
}
