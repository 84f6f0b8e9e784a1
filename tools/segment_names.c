/* The names of the shared-memory segments that exist, where the system can list them: the
 * /dev/shm folder on Linux. Elsewhere the tool says it cannot list. */
#include <string.h>

#include "tool.h"

#if defined(__linux__)
#include <dirent.h>

int tool_segment_names(void (*fn)(const char *name, void *user), void *user) {
  DIR *dir = opendir("/dev/shm");
  if (!dir) return SHK_EUNSUPPORTED;
  struct dirent *entry;
  while ((entry = readdir(dir)) != NULL) {
    if (entry->d_name[0] == '.') continue;
    fn(entry->d_name, user);
  }
  closedir(dir);
  return SHK_OK;
}
#else
int tool_segment_names(void (*fn)(const char *name, void *user), void *user) {
  (void)fn;
  (void)user;
  return SHK_EUNSUPPORTED;
}
#endif
