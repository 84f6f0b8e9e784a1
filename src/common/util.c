/* Small shared helpers: run-once and rounding. */
#include "internal.h"

void shk__once_run(shk__once *once, void (*init)(void)) {
  if (atomic_load_explicit(&once->state, memory_order_acquire) == 2) return;
  int expected = 0;
  if (atomic_compare_exchange_strong(&once->state, &expected, 1)) {
    init();
    atomic_store_explicit(&once->state, 2, memory_order_release);
    return;
  }
  while (atomic_load_explicit(&once->state, memory_order_acquire) != 2) shk__os_yield();
}

size_t shk__round_up(size_t n, size_t unit) {
  if (n > SIZE_MAX - (unit - 1)) return 0;
  return (n + unit - 1) & ~(unit - 1);
}
