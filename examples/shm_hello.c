/* shm_hello: the parent creates a named segment, starts a child process (this program again)
 * that opens it by name and fills it, then prints what the child wrote. */
#include <shmkit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int run_child(const char *name) {
  shk_shm *shm = NULL;
  int rc = shk_shm_open(name, SHK_SHM_READ_WRITE, &shm);
  if (rc != SHK_OK) {
    fprintf(stderr, "child: cannot open %s: %s\n", name, shk_strerror(rc));
    return 1;
  }
  char *text = shk_shm_data(shm);
  for (int i = 0; i < 5; i++) {
    size_t used = strlen(text);
    snprintf(text + used, shk_shm_size(shm) - used, "line %d written by the child\n", i + 1);
  }
  shk_shm_close(shm);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "child") == 0) return run_child(argv[2]);

  char name[SHK_SHM_NAME_MAX + 1];
  srand((unsigned)time(NULL) ^ (unsigned)clock());
  snprintf(name, sizeof name, "shm-hello-%d", rand() % 100000);
  shk_shm *shm = NULL;
  int rc = shk_shm_create(name, 4096, &shm);
  if (rc != SHK_OK) {
    fprintf(stderr, "cannot create %s: %s\n", name, shk_strerror(rc));
    return 1;
  }
  printf("created segment '%s' of %zu bytes\n", shk_shm_name(shm), shk_shm_size(shm));

  /* The child is this program again; system() runs it the same way on Linux and Windows. */
  char command[1024];
  snprintf(command, sizeof command, "\"%s\" child %s", argv[0], name);
  int status = system(command);

  printf("the child exited with status %d; the parent reads:\n%s", status, (char *)shk_shm_data(shm));
  shk_shm_close(shm);
  shk_shm_unlink(name);
  return status == 0 ? 0 : 1;
}
