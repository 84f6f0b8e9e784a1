/* What tests/test_debug*.c share: a child run with SHK_DEBUG set (or unset) whose stderr goes
 * to a file the parent then reads, and checks on that text. Header-only (static functions). */
#ifndef SHMKIT_SHK_TEST_DEBUG_H
#define SHMKIT_SHK_TEST_DEBUG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"

static inline void set_debug_env(const char *value) {
#ifdef _WIN32
  _putenv_s("SHK_DEBUG", value ? value : "");
#else
  if (value) setenv("SHK_DEBUG", value, 1);
  else unsetenv("SHK_DEBUG");
#endif
}

/* Runs child `name` with SHK_DEBUG = debug (NULL: unset), its stderr file named by its argv[0];
 * returns what it wrote there (malloc'd) and how it ended in *ex. It must end within a minute. */
static inline char *run_debug_child(const char *name, const char *debug, shk_test_exit *ex) {
  char path[96];
  shk_test_unique_name(path, sizeof path, "debug.txt");
  const char *argv[] = {path};
  set_debug_env(debug);
  shk_test_proc proc;
  int started = shk_test_spawn(name, 1, argv, &proc);
  set_debug_env(NULL);
  assert_int_equal(started, 0);
  *ex = shk_test_wait(&proc, 60000);
  FILE *f = fopen(path, "rb");
  char *text = calloc(1, 65536);
  assert_non_null(text);
  if (f) {
    size_t n = fread(text, 1, 65535, f);
    text[n] = '\0';
    fclose(f);
  }
  remove(path);
  if (ex->timed_out) fprintf(stderr, "child %s did not end; it said:\n%s\n", name, text);
  assert_false(ex->timed_out);
  return text;
}

/* The same for a child that must exit with 0. */
static inline char *run_capturing(const char *name, const char *debug) {
  shk_test_exit ex;
  char *text = run_debug_child(name, debug, &ex);
  if (ex.killed || ex.code != 0) fprintf(stderr, "child %s said:\n%s\n", name, text);
  assert_false(ex.killed);
  assert_int_equal(ex.code, 0);
  return text;
}

static inline void expect_in(const char *text, const char *what) {
  if (!strstr(text, what)) fail_msg("expected \"%s\" in:\n%s", what, text);
}

static inline void expect_not_in(const char *text, const char *what) {
  if (strstr(text, what)) fail_msg("did not expect \"%s\" in:\n%s", what, text);
}

/* In a child: its stderr to the file named by argv[0]. 0, or 99 when it cannot. */
static inline int to_file(char **argv) { return freopen(argv[0], "w", stderr) ? 0 : 99; }

#endif
