/* `shmkit shm list|clean`: the shmkit segments of this user (generated names with their owner
 * pid, lens segments), and removal of the generated names whose owner is gone. */
#include <stdio.h>
#include <string.h>

#include "tool.h"

static void help(FILE *f) {
  fprintf(f, "usage: shmkit shm list\n"
             "       shmkit shm clean\n"
             "list:  the shmkit segments of this user: name, kind (buffer, anonymous, lens), owner\n"
             "       pid, whether the owner is alive (stale: a generated name whose owner is gone),\n"
             "       and size.\n"
             "clean: removes the stale generated names (never a lens segment, never a name whose\n"
             "       owner pid is a running process).\n");
}

typedef struct listing {
  int found;
} listing;

static void show(const shk_shm_entry *e, void *user) {
  listing *l = user;
  if (l->found++ == 0)
    printf("%-30s %-10s %8s %-6s %12s\n", "NAME", "KIND", "OWNER", "STATE", "SIZE");
  printf("%-30s %-10s %8d %-6s %12zu\n", e->name, e->kind_name, e->owner_pid,
         e->stale ? "stale" : e->owner_pid == 0 ? "-" : e->owner_alive ? "alive" : "gone", e->size);
}

static int unsupported(int rc) {
  if (rc == SHK_EUNSUPPORTED) {
    printf("this system keeps no list of shared-memory names (on Windows a name vanishes with its\n"
           "last handle: nothing can be left behind)\n");
    return 0;
  }
  fprintf(stderr, "shmkit shm: %s\n", shk_strerror(rc));
  return 1;
}

int shm_names_main(int argc, char **argv) {
  if (argc != 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    bool asked = argc == 2;
    help(asked ? stdout : stderr);
    return asked ? 0 : 2;
  }
  if (strcmp(argv[1], "list") == 0) {
    listing l = {0};
    int rc = shk_shm_list(show, &l);
    if (rc != SHK_OK) return unsupported(rc);
    if (l.found == 0) printf("no shmkit segments\n");
    return 0;
  }
  if (strcmp(argv[1], "clean") == 0) {
    size_t removed = 0;
    int rc = shk_shm_clean(&removed);
    if (rc != SHK_OK) return unsupported(rc);
    printf("removed %zu stale segment name%s\n", removed, removed == 1 ? "" : "s");
    return 0;
  }
  fprintf(stderr, "shmkit shm: unknown command '%s'\n", argv[1]);
  help(stderr);
  return 2;
}
