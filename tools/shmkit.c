/* The shmkit command-line tool: `shmkit lens record|summary|list|report`, `shmkit shm list|clean`. */
#include <stdio.h>
#include <string.h>

#include "tool.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: shmkit lens record NAME -o TRACE.json [--duration S] [--wait S]\n"
          "       shmkit lens summary NAME [--duration S] [--wait S] [--top N]\n"
          "       shmkit lens list\n"
          "       shmkit lens report TRACE.json -o REPORT.html\n"
          "       shmkit shm list|clean\n"
          "       shmkit --version\n"
          "Each command takes --help.\n");
}

static int lens_main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "record") == 0) return lens_record_main(argc - 1, argv + 1);
  if (strcmp(argv[1], "summary") == 0) return lens_summary_main(argc - 1, argv + 1);
  if (strcmp(argv[1], "list") == 0) return lens_list_main(argc - 1, argv + 1);
  if (strcmp(argv[1], "report") == 0) return lens_report_main(argc - 1, argv + 1);
  fprintf(stderr, "shmkit lens: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "lens") == 0) return lens_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "shm") == 0) return shm_names_main(argc - 1, argv + 1);
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
    printf("shmkit %s (lens protocol %u.%u.%u)\n", shk_version_string(),
           SHK_LENS_VERSION >> 16, (SHK_LENS_VERSION >> 8) & 0xFF,
           SHK_LENS_VERSION & 0xFF);
    return 0;
  }
  if (argc >= 2) fprintf(stderr, "shmkit: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
