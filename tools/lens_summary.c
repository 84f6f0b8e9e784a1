/* `shmkit lens summary`: attach, collect zones for a while, print the top zones by total and by
 * mean time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static void help(FILE *f) {
  fprintf(f,
          "usage: shmkit lens summary NAME [--duration S] [--wait S] [--top N]\n"
          "Collects zones from the lens segment NAME and prints the top N (default 15) by total\n"
          "and by mean time. Stops after S seconds (default 5) or when the program closes its lens.\n");
}

typedef struct zone_stat {
  const char *name; /* owned by the reader, valid until it closes */
  uint64_t key;
  uint64_t count, total_ns, max_ns;
} zone_stat;

typedef struct summary {
  zone_stat *zones;
  size_t count, cap;
  uint64_t frames;
} summary;

static void on_event(const shk_lens_event *e, void *user) {
  summary *s = user;
  if (e->kind == SHK_LENS_FRAME) s->frames++;
  if (e->kind != SHK_LENS_ZONE) return;
  zone_stat *z = NULL;
  for (size_t i = 0; i < s->count && !z; i++)
    if (s->zones[i].key == e->name_key && strcmp(s->zones[i].name, e->name) == 0) z = &s->zones[i];
  if (!z) {
    if (s->count == s->cap) {
      size_t cap = s->cap ? s->cap * 2 : 64;
      zone_stat *list = realloc(s->zones, cap * sizeof *list);
      if (!list) return;
      s->zones = list;
      s->cap = cap;
    }
    z = &s->zones[s->count++];
    memset(z, 0, sizeof *z);
    z->name = e->name;
    z->key = e->name_key;
  }
  z->count++;
  z->total_ns += e->duration_ns;
  if (e->duration_ns > z->max_ns) z->max_ns = e->duration_ns;
}

static int by_total(const void *a, const void *b) {
  const zone_stat *x = a, *y = b;
  return x->total_ns < y->total_ns ? 1 : x->total_ns > y->total_ns ? -1 : 0;
}

static int by_mean(const void *a, const void *b) {
  const zone_stat *x = a, *y = b;
  double mx = (double)x->total_ns / (double)x->count, my = (double)y->total_ns / (double)y->count;
  return mx < my ? 1 : mx > my ? -1 : 0;
}

static void table(const char *title, summary *s, int (*order)(const void *, const void *), size_t top) {
  qsort(s->zones, s->count, sizeof *s->zones, order);
  printf("\n%s\n%-32s %10s %12s %12s %12s\n", title, "zone", "count", "total ms", "mean us",
         "max us");
  for (size_t i = 0; i < s->count && i < top; i++) {
    const zone_stat *z = &s->zones[i];
    tool_print_text(stdout, z->name, 32, true);
    printf(" %10llu %12.3f %12.3f %12.3f\n", (unsigned long long)z->count,
           (double)z->total_ns / 1e6, (double)z->total_ns / (double)z->count / 1e3,
           (double)z->max_ns / 1e3);
  }
}

int lens_summary_main(int argc, char **argv) {
  const char *name = NULL;
  double duration = 5, wait = 0;
  long top = 15;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has_value = i + 1 < argc;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      help(stdout);
      return 0;
    } else if (strcmp(a, "--duration") == 0 && has_value) {
      if (!tool_parse_seconds(argv[++i], &duration)) goto bad;
    } else if (strcmp(a, "--wait") == 0 && has_value) {
      if (!tool_parse_seconds(argv[++i], &wait)) goto bad;
    } else if (strcmp(a, "--top") == 0 && has_value) {
      top = strtol(argv[++i], NULL, 10);
      if (top <= 0) goto bad;
    } else if (a[0] != '-' && !name) {
      name = a;
    } else {
      goto bad;
    }
  }
  if (!name) goto bad;
  tool_catch_interrupt();
  shk_lens_reader *r = NULL;
  if (tool_open_reader(name, wait, &r) != SHK_OK) return 1;
  summary s;
  memset(&s, 0, sizeof s);
  double start = tool_now();
  while (!tool_interrupted() && tool_now() - start < duration && !shk_lens_reader_finished(r))
    shk_lens_reader_poll(r, 50000000u, on_event, &s, NULL);
  size_t n;
  do shk_lens_reader_drain(r, on_event, &s, &n); /* a few thousand per call */
  while (n > 0);
  shk_lens_stats st;
  shk_lens_reader_stats(r, &st);
  printf("%s: %llu zones of %zu kinds, %llu frames in %.1f s\n", name,
         (unsigned long long)st.received[SHK_LENS_ZONE], s.count, (unsigned long long)s.frames,
         tool_now() - start);
  tool_print_threads(r);
  if (s.count > 0) {
    table("top zones by total time", &s, by_total, (size_t)top);
    table("top zones by mean time", &s, by_mean, (size_t)top);
  }
  free(s.zones);
  shk_lens_reader_close(r);
  return 0;
bad:
  help(stderr);
  return 2;
}
