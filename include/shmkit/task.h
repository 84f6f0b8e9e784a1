/* shmkit task: (being written; see the issue for this part). */
#ifndef SHMKIT_TASK_H
#define SHMKIT_TASK_H

#include "shmkit/export.h"

#endif
