/* `shmkit lens list`: every shared-memory segment of the system that is a lens segment. */
#include <stdio.h>
#include <string.h>

#include "tool.h"

static void help(FILE *f) {
  fprintf(f, "usage: shmkit lens list\n"
             "Lists the lens segments that exist: name, protocol version, producer and reader\n"
             "processes, and events written and dropped.\n");
}

typedef struct listing {
  int found;
} listing;

static void show(const char *name, void *user) {
  listing *l = user;
  if (shk_shm_name_check(name) != SHK_OK) return;
  shk_lens_info info;
  int rc = shk_lens_probe(name, &info);
  if (rc != SHK_OK && !(rc == SHK_EVERSION || (rc == SHK_EFORMAT && info.magic == 0x1DC45EF1u)))
    return;
  if (l->found++ == 0)
    printf("%-30s %-8s %-16s %-16s %12s %10s\n", "NAME", "VERSION", "PRODUCERS", "READER",
           "WRITTEN", "DROPPED");
  char producer[32], reader[32], version[16];
  snprintf(version, sizeof version, "%u.%u.%u", info.protocol_version >> 16,
           (info.protocol_version >> 8) & 0xFF, info.protocol_version & 0xFF);
  snprintf(producer, sizeof producer, "%u live, %u gone", info.producers, info.dead_producers);
  snprintf(reader, sizeof reader, "%d%s", info.reader_pid,
           info.reader_pid == 0 ? "" : info.reader_alive ? " (alive)" : " (gone)");
  uint64_t written = 0, dropped = 0;
  for (int k = 0; k < SHK_LENS_KIND_COUNT; k++) {
    written += info.counters[k].written;
    dropped += info.counters[k].dropped;
  }
  tool_print_text(stdout, name, 30, true);
  printf(" %-8s %-16s %-16s %12llu %10llu", version, producer, reader,
         (unsigned long long)written, (unsigned long long)dropped);
  if (rc != SHK_OK) {
    printf("  (");
    tool_print_text(stdout, info.reason, 0, false);
    printf(")");
  }
  printf("\n");
}

int lens_list_main(int argc, char **argv) {
  if (argc > 1) {
    bool asked = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;
    help(asked ? stdout : stderr);
    return asked ? 0 : 2;
  }
  listing l = {0};
  int rc = tool_segment_names(show, &l);
  if (rc != SHK_OK) {
    fprintf(stderr, "shmkit: this system offers no list of shared-memory names (%s)\n",
            shk_strerror(rc));
    return 1;
  }
  if (l.found == 0) printf("no lens segments\n");
  return 0;
}
