/* shmkit buf: (being written; see the issue for this part). */
#ifndef SHMKIT_BUF_H
#define SHMKIT_BUF_H

#include "shmkit/export.h"

#endif
