/* What the files of the shmkit command-line tool share: the subcommands, and small portable
 * helpers (clock, sleep, terminal check, Ctrl-C) kept out of the library on purpose. */
#ifndef SHMKIT_TOOL_H
#define SHMKIT_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "shmkit.h"

int lens_record_main(int argc, char **argv);
int lens_summary_main(int argc, char **argv);
int lens_list_main(int argc, char **argv);
int lens_report_main(int argc, char **argv);
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

/* Prints, per producing thread, its process, name and counts; implausible counts are marked, and
 * names are escaped (tool_print_text). */
void tool_print_threads(shk_lens_reader *r);

/* Prints text with control characters, DEL and bytes that are not UTF-8 escaped (\xHH), so that
 * names from another process cannot drive the terminal. At most `width` characters (0: all),
 * padded to width when pad. */
void tool_print_text(FILE *f, const char *text, size_t width, bool pad);

/* Runs fn(arg); a SIGBUS during it (a mapped segment truncated by another process) ends fn
 * instead of the process. Returns false when that happened: the memory fn was reading must not be
 * touched again. Where mappings cannot shrink (Windows), just runs fn. */
bool tool_guard_bus(void (*fn)(void *arg), void *arg);

/* Parses a non-negative number of seconds; false when it is not one. */
bool tool_parse_seconds(const char *text, double *out);

/* Calls fn(name, user) for every shared-memory name in the system. Returns SHK_OK or
 * SHK_EUNSUPPORTED where the system offers no list. */
int tool_segment_names(void (*fn)(const char *name, void *user), void *user);

#endif
