/* Running the `shmkit` tool from a test as a user would (through the shell), its exit code and
 * output captured: shared by the tool's tests (tests/test_tool_*.c). Header-only; include it
 * where SHK_TEST_TOOL (the tool's path, or its file name next to the test on Windows) is
 * defined. */
#ifndef SHMKIT_SHK_TEST_TOOL_H
#define SHMKIT_SHK_TEST_TOOL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <sys/wait.h>
#endif

#include "shk_test.h"

typedef struct ran {
  int code;
  char out[8192], err[8192];
} ran;

static inline void slurp(const char *path, char *buf, size_t size) {
  buf[0] = '\0';
  FILE *f = fopen(path, "rb");
  if (!f) return;
  size_t n = fread(buf, 1, size - 1, f);
  buf[n] = '\0';
  fclose(f);
  remove(path);
}

/* Runs the tool with `args` (already quoted for the shell), its output in files. */
static inline ran *run_tool(const char *args) {
  static ran r;
  char out[96], err[96], cmd[1024];
  shk_test_unique_name(out, sizeof out, "out.txt");
  shk_test_unique_name(err, sizeof err, "err.txt");
#ifdef _WIN32
  /* SHK_TEST_TOOL is the file name: the tool sits next to this test executable. */
  char tool[MAX_PATH];
  DWORD n = GetModuleFileNameA(NULL, tool, MAX_PATH);
  while (n > 0 && tool[n - 1] != '\\' && tool[n - 1] != '/') n--;
  snprintf(tool + n, sizeof tool - n, "%s", SHK_TEST_TOOL);
#else
  const char *tool = SHK_TEST_TOOL;
#endif
#ifdef _WIN32
  /* cmd.exe drops the first and the last quote of a line that has more than two: wrap it. */
  snprintf(cmd, sizeof cmd, "\"\"%s\" %s >%s 2>%s\"", tool, args, out, err);
#else
  snprintf(cmd, sizeof cmd, "\"%s\" %s >%s 2>%s", tool, args, out, err);
#endif
  int status = system(cmd);
#ifdef _WIN32
  r.code = status;
#else
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
#endif
  slurp(out, r.out, sizeof r.out);
  slurp(err, r.err, sizeof r.err);
  return &r;
}

static inline void expect(const char *args, int code, const char *in_out, const char *in_err) {
  ran *r = run_tool(args);
  bool ok = r->code == code && (!in_out || strstr(r->out, in_out)) && (!in_err || strstr(r->err, in_err));
  if (!ok) {
    print_error("shmkit %s: exit %d (expected %d)\nstdout: %s\nstderr: %s\nexpected in stdout: %s, "
                "in stderr: %s\n", args, r->code, code, r->out, r->err, in_out ? in_out : "-",
                in_err ? in_err : "-");
    fail();
  }
}

#endif
