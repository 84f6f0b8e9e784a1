/* Win32 channels: two auto-reset events per channel, each end owning its own handles (a = the
 * event it sets, b = the one it waits on); handles are given by duplicating them into the peer. */
#include <string.h>

#include "win32.h"

static void close_handle(intptr_t *h) {
  if (*h) CloseHandle((HANDLE)*h);
  *h = 0;
}

static HANDLE dup_here(HANDLE h) {
  HANDLE dup = NULL;
  if (!DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &dup, 0, FALSE,
                       DUPLICATE_SAME_ACCESS))
    return NULL;
  return dup;
}

int shk__os_channel_pair(shk__os_channel *one, shk__os_channel *other) {
  memset(one, 0, sizeof *one);
  memset(other, 0, sizeof *other);
  /* Each step runs only when the ones before succeeded, so GetLastError() is the failed call's:
   * once, a later successful call reset it and the pair "succeeded" with no handles. */
  HANDLE to_other = WIN32_FAULTABLE(SHK__FAULT_CHANNEL_CREATE, NULL,
                                    CreateEventW(NULL, FALSE, FALSE, NULL));
  HANDLE to_one = to_other ? WIN32_FAULTABLE(SHK__FAULT_CHANNEL_CREATE, NULL,
                                             CreateEventW(NULL, FALSE, FALSE, NULL))
                           : NULL;
  HANDLE a = to_one ? dup_here(to_other) : NULL;
  HANDLE b = a ? dup_here(to_one) : NULL;
  if (!b) {
    DWORD err = GetLastError();
    int rc = win32_error(err == ERROR_SUCCESS ? ERROR_GEN_FAILURE : err);
    HANDLE all[4] = {to_other, to_one, a, b};
    for (int i = 0; i < 4; i++)
      if (all[i]) CloseHandle(all[i]);
    return rc;
  }
  one->a = (intptr_t)to_other;
  one->b = (intptr_t)to_one;
  other->a = (intptr_t)b; /* sets to_one */
  other->b = (intptr_t)a; /* waits on to_other */
  return SHK_OK;
}

void shk__os_channel_close(shk__os_channel *end) {
  close_handle(&end->a);
  close_handle(&end->b);
}

void shk__os_channel_notify(const shk__os_channel *end) {
  if (end->a) SetEvent((HANDLE)end->a);
}

int shk__os_channel_receive(const shk__os_channel *end, const shk__os_proc *peer,
                            uint64_t timeout_ns, shk__os_message *msg) {
  memset(msg, 0, sizeof *msg);
  HANDLE h[2] = {(HANDLE)end->b, peer ? (HANDLE)peer->handle : NULL};
  DWORD count = h[1] ? 2 : 1;
  DWORD r = WaitForMultipleObjects(count, h, FALSE, shk__ms_from_ns(timeout_ns, INFINITE - 1));
  if (r == WAIT_OBJECT_0) {
    msg->kind = SHK__OS_MSG_WAKE;
    return SHK_OK;
  }
  if (r == WAIT_OBJECT_0 + 1) return SHK_ENOENT;
  if (r == WAIT_TIMEOUT) return SHK_ETIMEDOUT;
  return win32_error(GetLastError()); /* WAIT_FAILED: SHK_EOS or what the code says */
}

int shk__os_channel_wait_any(const shk__os_channel *ends, const shk__os_proc *procs, unsigned n,
                             uint64_t timeout_ns, bool *ended) {
  HANDLE h[MAXIMUM_WAIT_OBJECTS];
  DWORD m = 0;
  /* Wake-ups first; process ends that do not fit are found by the check below, at the latest
   * when the caller's slice ends. */
  for (unsigned i = 0; i < n && m < MAXIMUM_WAIT_OBJECTS; i++)
    if (ends[i].b) h[m++] = (HANDLE)ends[i].b;
  for (unsigned i = 0; procs && i < n && m < MAXIMUM_WAIT_OBJECTS; i++)
    if (procs[i].handle) h[m++] = (HANDLE)procs[i].handle;
  DWORD ms = shk__ms_from_ns(timeout_ns, INFINITE - 1);
  DWORD r = m ? WaitForMultipleObjects(m, h, FALSE, ms) : (Sleep(ms), WAIT_TIMEOUT);
  if (r == WAIT_FAILED) return win32_error(GetLastError());
  for (unsigned i = 0; procs && i < n; i++)
    if (procs[i].handle && WaitForSingleObject((HANDLE)procs[i].handle, 0) == WAIT_OBJECT_0)
      ended[i] = true;
  return r == WAIT_TIMEOUT ? SHK_ETIMEDOUT : SHK_OK;
}

int shk__os_channel_give(const shk__os_channel *end, const shk__os_proc *peer, intptr_t handle,
                         uint64_t tag, uint64_t *token) {
  (void)end;
  (void)tag;
  HANDLE dup = NULL;
  if (!peer || !peer->handle) return SHK_EINVAL;
  if (!WIN32_FAULTABLE(SHK__FAULT_CHANNEL_GIVE, FALSE,
                       DuplicateHandle(GetCurrentProcess(), (HANDLE)handle, (HANDLE)peer->handle,
                                       &dup, FILE_MAP_READ, FALSE, 0))) {
    DWORD err = GetLastError();
    /* Duplicating into a process that has ended is refused with "access denied". */
    if (WaitForSingleObject((HANDLE)peer->handle, 0) == WAIT_OBJECT_0)
      return shk__error_record_os(SHK_ENOENT, (int)err);
    return win32_error(err);
  }
  *token = (uint64_t)(uintptr_t)dup;
  return SHK_OK;
}
