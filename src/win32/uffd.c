/* Windows has no userfaultfd: the calls of src/os.h say so. */
#include "win32.h"

#include "uffd_none.inc"
