/* Portable helpers of the tool, and attaching a reader with messages a person can act on. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#ifdef _WIN32
bool tool_guard_bus(void (*fn)(void *arg), void *arg) {
  fn(arg); /* a view of a section keeps its size: nothing can shrink under it */
  return true;
}
#else
#include <setjmp.h>
static sigjmp_buf bus_jump;
static volatile sig_atomic_t bus_armed;

static void on_bus(int sig) {
  if (bus_armed) {
    bus_armed = 0;
    siglongjmp(bus_jump, 1);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

bool tool_guard_bus(void (*fn)(void *arg), void *arg) {
  static bool installed;
  if (!installed) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_bus;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
    installed = true;
  }
  if (sigsetjmp(bus_jump, 1) != 0) return false;
  bus_armed = 1;
  fn(arg);
  bus_armed = 0;
  return true;
}
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
    case SHK_EFORMAT:
      shk_lens_probe(name, &info);
      fprintf(stderr, "shmkit: '%s' cannot be read: %s\n", name,
              info.reason[0] ? info.reason : shk_strerror(rc));
      break;
    case SHK_EBUSY:
      if (shk_lens_probe(name, &info) == SHK_EBUSY)
        fprintf(stderr, "shmkit: '%s' is still being set up by its creator (magic 0); if that "
                        "lasts, the creator died: remove the name\n", name);
      else
        fprintf(stderr, "shmkit: '%s' already has a reader attached (process %d%s)\n", name,
                info.reader_pid, info.reader_alive ? "" : ", gone");
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

static size_t utf8_length(const unsigned char *s) {
  unsigned char c = s[0];
  size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  return n;
}

void tool_print_text(FILE *f, const char *text, size_t width, bool pad) {
  const unsigned char *s = (const unsigned char *)text;
  size_t shown = 0;
  while (*s && (width == 0 || shown < width)) {
    size_t n = *s >= 0x80 ? utf8_length(s) : 1;
    if (*s < 0x20 || *s == 0x7F || n == 0) {
      if (width && shown + 4 > width) break;
      fprintf(f, "\\x%02x", *s);
      shown += 4;
      s++;
      continue;
    }
    fwrite(s, 1, n, f);
    s += n;
    shown++;
  }
  for (; pad && shown < width; shown++) fputc(' ', f);
}

void tool_print_threads(shk_lens_reader *r) {
  size_t count = 0;
  shk_lens_reader_threads(r, NULL, 0, &count);
  if (count == 0) return;
  shk_lens_thread_info *list = calloc(count, sizeof *list);
  if (!list) return;
  shk_lens_reader_threads(r, list, count, &count);
  printf("%-8s %-10s %-24s %12s %10s %12s\n", "PID", "TID", "THREAD", "WRITTEN", "DROPPED",
         "RECEIVED");
  for (size_t i = 0; i < count; i++) {
    const shk_lens_thread_info *t = &list[i];
    uint64_t w = 0, d = 0, n = 0;
    for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
      w += t->counters[k].written;
      d += t->counters[k].dropped;
      n += t->counters[k].drained;
    }
    printf("%-8u %-10llu ", t->pid, (unsigned long long)t->tid);
    tool_print_text(stdout, t->name ? t->name : "?", 24, true);
    printf(" %12llu %10llu %12llu%s%s\n", (unsigned long long)w, (unsigned long long)d,
           (unsigned long long)n, t->alive ? "" : "  (ended)",
           t->implausible ? "  (implausible counts: the segment may be damaged)" : "");
  }
  free(list);
}
