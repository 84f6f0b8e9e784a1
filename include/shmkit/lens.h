/* shmkit lens: (being written; see the issue for this part). */
#ifndef SHMKIT_LENS_H
#define SHMKIT_LENS_H

#include "shmkit/export.h"

#endif
