/* SHK_DEBUG: the environment read once into a cached mask, and the diagnostic lines (one write
 * each, to stderr) with call sites resolved to module, symbol and line where the OS layer can. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "internal.h"

/* Every part bit set until read, so that the inline check's one branch also catches the first. */
atomic_uint shk__debug_mask = SHK__DEBUG_UNREAD | SHK__DEBUG_ALL;

static const struct {
  const char *name;
  unsigned bit;
} parts[] = {{"buf", SHK__DEBUG_BUF},   {"watch", SHK__DEBUG_WATCH}, {"task", SHK__DEBUG_TASK},
             {"lens", SHK__DEBUG_LENS}, {"shm", SHK__DEBUG_SHM}, {"lock", SHK__DEBUG_LOCK}};

static const char *part_name(unsigned part) {
  for (size_t i = 0; i < SHK__ARRAY_LEN(parts); i++)
    if (parts[i].bit == part) return parts[i].name;
  return part == 0 ? "SHK_DEBUG" : "all";
}

/* One comma-separated word (length n) of SHK_DEBUG: its bits, or 0 with a warning. */
static unsigned word_bits(const char *w, size_t n) {
  if ((n == 1 && w[0] == '1') || (n == 3 && memcmp(w, "all", 3) == 0)) return SHK__DEBUG_ALL;
  if (n == 0 || (n == 1 && w[0] == '0')) return 0;
  for (size_t i = 0; i < SHK__ARRAY_LEN(parts); i++)
    if (strlen(parts[i].name) == n && memcmp(parts[i].name, w, n) == 0) return parts[i].bit;
  shk__debug_report(0, "unknown part '%.*s' ignored (known: 1, all, buf, "
                                    "watch, task, lens, shm, lock)", (int)n, w);
  return 0;
}

unsigned shk__debug_parse(const char *value) {
  unsigned mask = 0;
  for (const char *p = value; p && *p;) {
    size_t n = strcspn(p, ", ");
    mask |= word_bits(p, n);
    p += n;
    p += strspn(p, ", ");
  }
  atomic_store_explicit(&shk__debug_mask, mask, memory_order_relaxed);
  return mask;
}

/* Two threads may both read the environment at first: they store the same answer. */
bool shk__debug_on_slow(unsigned part) {
  unsigned mask = atomic_load_explicit(&shk__debug_mask, memory_order_relaxed);
  if (mask & SHK__DEBUG_UNREAD) mask = shk__debug_parse(getenv("SHK_DEBUG"));
  return (mask & part) != 0;
}

void shk__debug_report(unsigned part, const char *fmt, ...) {
  char line[1024];
  int n = snprintf(line, sizeof line, "shmkit debug: %s: ", part_name(part));
  if (n < 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  /* One write per line, so that lines of several threads do not interleave. */
  size_t len = strlen(line);
  line[len] = '\n';
  fwrite(line, 1, len + 1, stderr);
  fflush(stderr);
}

void shk__debug_site(const void *ip, char *out, size_t size) {
  if (!ip) {
    snprintf(out, size, "unknown");
    return;
  }
  char module[512], symbol[256], file[512], function[256];
  unsigned line = 0;
  if (shk__os_symbolize((uintptr_t)ip, module, sizeof module, symbol, sizeof symbol) != SHK_OK ||
      !module[0]) {
    snprintf(out, size, "%p", ip);
    return;
  }
  const char *base = module;
  for (const char *p = module; *p; p++)
    if (*p == '/' || *p == '\\') base = p + 1;
  /* A symbol that is only "<module>+0xN" (nothing exported there) is written once. */
  size_t blen = strlen(base);
  char where[800];
  if (!symbol[0]) snprintf(where, sizeof where, "%s", base);
  else if (strncmp(symbol, base, blen) == 0 && symbol[blen] == '+')
    snprintf(where, sizeof where, "%s", symbol);
  else
    snprintf(where, sizeof where, "%s!%s", base, symbol);
  /* The return address is just past the call: the line of the call is that of ip - 1. */
  if (shk__os_source_line((uintptr_t)ip - 1, file, sizeof file, function, sizeof function,
                          &line) == SHK_OK && file[0])
    snprintf(out, size, "%s (%s at %s:%u)", where, function[0] ? function : "?", file, line);
  else
    snprintf(out, size, "%s", where);
}

void shk__debug_error(unsigned part, const char *fn, int rc, const void *caller) {
  char site[1024];
  shk__debug_site(caller, site, sizeof site);
  shk__debug_report(part, "%s returns %s (%s), called from %s", fn, shk_error_name(rc),
                    shk_strerror(rc), site);
}
