/* shmkit watch: (being written; see the issue for this part). */
#ifndef SHMKIT_WATCH_H
#define SHMKIT_WATCH_H

#include "shmkit/export.h"

#endif
