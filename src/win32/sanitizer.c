/* An address sanitizer in the process (os.h): not looked for on Windows (weak references do not
 * resolve across DLLs there), so slabs have no poisoned edges; the program's own checks still
 * cover every buffer the library mallocs. */
#include "win32.h"

bool shk__os_sanitizer_present(void) { return false; }

void shk__os_sanitizer_poison(const void *p, size_t n, bool poison) {
  (void)p;
  (void)n;
  (void)poison;
}
