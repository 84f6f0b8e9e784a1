/* The consumer: checks that the installed headers and library agree and that a segment works. */
#include <shmkit.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  if (shk_version() != SHK_VERSION_NUMBER) {
    fprintf(stderr, "header %d, library %d\n", SHK_VERSION_NUMBER, shk_version());
    return 1;
  }
  shk_shm *shm = NULL;
  int rc = shk_shm_create_anonymous(4096, &shm);
  if (rc != SHK_OK) {
    fprintf(stderr, "shk_shm_create_anonymous: %s\n", shk_strerror(rc));
    return 1;
  }
  strcpy(shk_shm_data(shm), "consumer ok");
  printf("%s (shmkit %s)\n", (char *)shk_shm_data(shm), shk_version_string());
  shk_shm_close(shm);
  return 0;
}
