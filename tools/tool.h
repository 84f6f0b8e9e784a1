/* What the files of the shmkit command-line tool share: the subcommands, and small portable
 * helpers (clock, sleep, terminal check, Ctrl-C) kept out of the library on purpose. */
#ifndef SHMKIT_TOOL_H
#define SHMKIT_TOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "shmkit.h"

int lens_record_main(int argc, char **argv);
int lens_summary_main(int argc, char **argv);
int lens_list_main(int argc, char **argv);
int shm_names_main(int argc, char **argv);

/* Seconds on a monotonic clock. */
double tool_now(void);
void tool_sleep_ms(int ms);
bool tool_stdout_is_terminal(void);
/* Installs a Ctrl-C handler that sets the flag tool_interrupted() reads. */
void tool_catch_interrupt(void);
bool tool_interrupted(void);

/* Attaches a reader to `name`, waiting up to wait_s seconds for the segment to appear, and
 * prints a clear message to stderr on failure. Returns a shmkit code. */
int tool_open_reader(const char *name, double wait_s, shk_lens_reader **out);

/* Parses a non-negative number of seconds; false when it is not one. */
bool tool_parse_seconds(const char *text, double *out);

/* Calls fn(name, user) for every shared-memory name in the system. Returns SHK_OK or
 * SHK_EUNSUPPORTED where the system offers no list. */
int tool_segment_names(void (*fn)(const char *name, void *user), void *user);

#endif
