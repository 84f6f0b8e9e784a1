/* An address sanitizer in the process (os.h): ASan's runtime, linked into the program or the
 * library, defines these; weak references find it at load time and are NULL without it. */
#include "posix.h"

extern void __asan_poison_memory_region(void const volatile *addr, size_t size)
    __attribute__((weak));
extern void __asan_unpoison_memory_region(void const volatile *addr, size_t size)
    __attribute__((weak));

bool shk__os_sanitizer_present(void) {
  return __asan_poison_memory_region && __asan_unpoison_memory_region;
}

void shk__os_sanitizer_poison(const void *p, size_t n, bool poison) {
  if (!shk__os_sanitizer_present()) return;
  if (poison)
    __asan_poison_memory_region(p, n);
  else
    __asan_unpoison_memory_region(p, n);
}
