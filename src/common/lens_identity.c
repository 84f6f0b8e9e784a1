/* Who holds a producer slot or a ring: a pid and the process's start stamp, so that a pid the OS
 * has given to a new process does not make a dead producer look alive (protocol 2.1). */
#include "lens_internal.h"

uint32_t shk__lens_stamp_of(uint32_t pid) {
  uint64_t start = 0;
  if (pid == 0 || pid > (uint32_t)INT32_MAX || shk__os_proc_start_time((int)pid, &start) != SHK_OK)
    return 0;
  uint32_t stamp = (uint32_t)(start ^ (start >> 32));
  return stamp ? stamp : 1u; /* 0 means "unknown" on the wire */
}

bool shk__lens_identity_alive(uint64_t identity) {
  uint32_t pid = shk__lens_identity_pid(identity), stamp = shk__lens_identity_stamp(identity);
  if (pid == 0 || pid > (uint32_t)INT32_MAX) return false;
  if (stamp == 0) return shk__os_pid_alive((int)pid); /* a 2.0 producer: the pid alone */
  uint64_t start = 0;
  int rc = shk__os_proc_start_time((int)pid, &start);
  if (rc == SHK_ENOENT) return false;
  if (rc != SHK_OK) return shk__os_pid_alive((int)pid); /* the OS does not say: trust the pid */
  uint32_t now = (uint32_t)(start ^ (start >> 32));
  return (now ? now : 1u) == stamp;
}
