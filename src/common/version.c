/* The version of the linked library. */
#include "internal.h"

int shk_version(void) { return SHK_VERSION_NUMBER; }

const char *shk_version_string(void) { return SHK_VERSION_STRING; }
