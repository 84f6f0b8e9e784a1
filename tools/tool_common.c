/* Portable helpers of the tool, and attaching a reader with messages a person can act on. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "tool.h"

#ifdef _WIN32
#include <io.h>
#include <windows.h>
double tool_now(void) { return (double)GetTickCount64() / 1e3; }
void tool_sleep_ms(int ms) { Sleep((DWORD)ms); }
bool tool_stdout_is_terminal(void) { return _isatty(_fileno(stdout)) != 0; }
#else
#include <time.h>
#include <unistd.h>
double tool_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
void tool_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}
bool tool_stdout_is_terminal(void) { return isatty(STDOUT_FILENO) != 0; }
#endif

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
  (void)sig;
  interrupted = 1;
}

void tool_catch_interrupt(void) {
  signal(SIGINT, on_interrupt);
#ifdef SIGTERM
  signal(SIGTERM, on_interrupt);
#endif
}

bool tool_interrupted(void) { return interrupted != 0; }

bool tool_parse_seconds(const char *text, double *out) {
  char *end = NULL;
  double v = strtod(text, &end);
  if (!end || end == text || *end != '\0' || !(v >= 0) || v > 1e9) return false;
  *out = v;
  return true;
}

static void explain(const char *name, int rc) {
  shk_lens_info info;
  switch (rc) {
    case SHK_ENOENT:
      fprintf(stderr, "shmkit: no lens segment named '%s' (is the program running? "
                      "use --wait S to wait for it)\n", name);
      break;
    case SHK_ENAME:
      fprintf(stderr, "shmkit: '%s' is not a valid segment name (1-%d characters from "
                      "A-Z a-z 0-9 . _ -)\n", name, SHK_SHM_NAME_MAX);
      break;
    case SHK_EVERSION:
      shk_lens_probe(name, &info);
      fprintf(stderr, "shmkit: '%s' speaks lens protocol %u.%u.%u; this shmkit reads %u.x\n", name,
              info.protocol_version >> 16, (info.protocol_version >> 8) & 0xFF,
              info.protocol_version & 0xFF, SHK_LENS_PROTOCOL_VERSION >> 16);
      break;
    case SHK_EFORMAT:
      shk_lens_probe(name, &info);
      fprintf(stderr, "shmkit: '%s' is not a usable lens segment (magic 0x%08x, pointer size %u, "
                      "%zu bytes)\n", name, info.magic, info.sizeof_usize, info.segment_size);
      break;
    case SHK_EBUSY:
      fprintf(stderr, "shmkit: '%s' already has a reader attached, or its creator never "
                      "finished setting it up\n", name);
      break;
    default:
      fprintf(stderr, "shmkit: cannot attach to '%s': %s\n", name, shk_strerror(rc));
  }
}

int tool_open_reader(const char *name, double wait_s, shk_lens_reader **out) {
  double deadline = tool_now() + wait_s;
  int rc;
  for (;;) {
    rc = shk_lens_reader_open(name, NULL, out);
    /* While waiting, a segment that is being created looks missing (ENOENT), not yet sized
     * (ESIZE) or not yet set up (EBUSY, as when another reader holds it): wait for all three. */
    bool transient = rc == SHK_ENOENT || rc == SHK_ESIZE || rc == SHK_EBUSY;
    if (!transient || tool_now() >= deadline || tool_interrupted()) break;
    tool_sleep_ms(10);
  }
  if (rc != SHK_OK) explain(name, rc);
  return rc;
}
