/* POSIX channels: a unix socket pair of fixed-size records (wake-ups, and descriptors passed with
 * SCM_RIGHTS under a tag). */
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "posix.h"

/* Records keep their boundaries where the system offers sequenced packets; elsewhere a stream
 * carries fixed-size records, read whole (MSG_WAITALL). macOS defines SOCK_SEQPACKET but its
 * AF_UNIX socketpair refuses it. */
#if defined(SOCK_SEQPACKET) && !defined(__APPLE__)
#define POSIX_CHANNEL_TYPE SOCK_SEQPACKET
#else
#define POSIX_CHANNEL_TYPE SOCK_STREAM
#endif

#ifndef MSG_CMSG_CLOEXEC
#define MSG_CMSG_CLOEXEC 0
#endif
/* Without MSG_NOSIGNAL (macOS) the sockets get SO_NOSIGPIPE instead. */
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

typedef struct posix_record {
  uint32_t kind; /* shk__os_message_kind */
  uint32_t reserved;
  uint64_t tag;
} posix_record;

/* Moves a descriptor away from 0..2 so that "0 = closed" holds for channel ends. */
static int posix_above_stdio(int fd) {
  if (fd > 2) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return moved;
}

int shk__os_channel_pair(shk__os_channel *one, shk__os_channel *other) {
  memset(one, 0, sizeof *one);
  memset(other, 0, sizeof *other);
  int sv[2];
#ifdef SOCK_CLOEXEC
  if (POSIX_FAULTABLE(SHK__FAULT_CHANNEL_CREATE, -1,
                      socketpair(AF_UNIX, POSIX_CHANNEL_TYPE | SOCK_CLOEXEC, 0, sv)) != 0)
    return posix_error(errno);
#else
  if (POSIX_FAULTABLE(SHK__FAULT_CHANNEL_CREATE, -1,
                      socketpair(AF_UNIX, POSIX_CHANNEL_TYPE, 0, sv)) != 0)
    return posix_error(errno);
  fcntl(sv[0], F_SETFD, FD_CLOEXEC);
  fcntl(sv[1], F_SETFD, FD_CLOEXEC);
#endif
  sv[0] = posix_above_stdio(sv[0]);
  sv[1] = posix_above_stdio(sv[1]);
  if (sv[0] < 0 || sv[1] < 0) {
    int err = errno;
    if (sv[0] >= 0) close(sv[0]);
    if (sv[1] >= 0) close(sv[1]);
    return posix_error(err);
  }
#ifdef SO_NOSIGPIPE
  int on = 1;
  setsockopt(sv[0], SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof on);
  setsockopt(sv[1], SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof on);
#endif
  one->a = sv[0];
  other->a = sv[1];
  return SHK_OK;
}

void shk__os_channel_close(shk__os_channel *end) {
  if (end->a > 0) close((int)end->a);
  end->a = end->b = 0;
}

void shk__os_channel_notify(const shk__os_channel *end) {
  posix_record r = {SHK__OS_MSG_WAKE, 0, 0};
  if (end->a > 0) (void)send((int)end->a, &r, sizeof r, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Room for one passed descriptor, aligned for its header. */
typedef union fd_control {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(int))];
} fd_control;

/* A message of one record with room for one descriptor, for sendmsg or recvmsg. */
static void record_message(struct msghdr *msg, struct iovec *iov, posix_record *r,
                           fd_control *control) {
  memset(control, 0, sizeof *control);
  iov->iov_base = r;
  iov->iov_len = sizeof *r;
  memset(msg, 0, sizeof *msg);
  msg->msg_iov = iov;
  msg->msg_iovlen = 1;
  msg->msg_control = control->buf;
  msg->msg_controllen = sizeof control->buf;
}

/* Milliseconds for poll(): -1 for forever, at most a day. */
static int poll_ms(uint64_t timeout_ns) {
  return (int)shk__ms_from_ns_capped(timeout_ns, 86400000u, UINT32_MAX);
}

int shk__os_channel_receive(const shk__os_channel *end, const shk__os_proc *peer,
                            uint64_t timeout_ns, shk__os_message *msg) {
  (void)peer; /* the socket ends as the peer's descriptors close */
  memset(msg, 0, sizeof *msg);
  int sock = (int)end->a;
  struct pollfd p = {sock, POLLIN, 0};
  int r;
  do {
    r = poll(&p, 1, poll_ms(timeout_ns));
  } while (r < 0 && errno == EINTR);
  if (r == 0) return SHK_ETIMEDOUT;
  if (r < 0) return posix_error(errno);
  posix_record rec;
  fd_control control;
  struct iovec iov;
  struct msghdr m;
  record_message(&m, &iov, &rec, &control);
  ssize_t n;
  do {
    n = recvmsg(sock, &m, MSG_WAITALL | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return SHK_ENOENT;
  if (n < 0) return errno == ECONNRESET || errno == EPIPE ? SHK_ENOENT : posix_error(errno);
  int fd = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(c), sizeof fd);
  if ((size_t)n != sizeof rec || (rec.kind != SHK__OS_MSG_WAKE && rec.kind != SHK__OS_MSG_HANDLE) ||
      (rec.kind == SHK__OS_MSG_HANDLE) != (fd >= 0)) {
    if (fd >= 0) close(fd);
    return shk__error_record_os(SHK_EFORMAT, 0); /* not a record of ours */
  }
  msg->kind = (shk__os_message_kind)rec.kind;
  msg->tag = rec.tag;
  msg->handle = fd >= 0 ? fd : 0;
  return SHK_OK;
}

int shk__os_channel_wait_any(const shk__os_channel *ends, const shk__os_proc *procs, unsigned n,
                             uint64_t timeout_ns, bool *ended) {
  (void)procs; /* a process's end closes its channel */
  enum { MAX_ENDS = 256 };
  struct pollfd p[MAX_ENDS];
  unsigned who[MAX_ENDS], m = 0;
  for (unsigned i = 0; i < n && m < MAX_ENDS; i++) {
    if (ends[i].a <= 0) continue;
    p[m].fd = (int)ends[i].a;
    p[m].events = POLLIN;
    p[m].revents = 0;
    who[m++] = i;
  }
  int r;
  do {
    r = poll(p, m, poll_ms(timeout_ns));
  } while (r < 0 && errno == EINTR);
  if (r < 0) return posix_error(errno);
  if (r == 0) return SHK_ETIMEDOUT;
  for (unsigned j = 0; j < m; j++) {
    if (!p[j].revents) continue;
    bool gone = (p[j].revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
    char drain[256];
    for (;;) {
      ssize_t got = recv(p[j].fd, drain, sizeof drain, MSG_DONTWAIT);
      if (got > 0) continue;
      if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) gone = true;
      break;
    }
    if (gone) ended[who[j]] = true;
  }
  return SHK_OK;
}

int shk__os_channel_give(const shk__os_channel *end, const shk__os_proc *peer, intptr_t handle,
                         uint64_t tag, uint64_t *token) {
  (void)peer;
  posix_record r = {SHK__OS_MSG_HANDLE, 0, tag};
  fd_control control;
  struct iovec iov;
  struct msghdr msg;
  record_message(&msg, &iov, &r, &control);
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int fd = (int)handle;
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  do {
    n = POSIX_FAULTABLE(SHK__FAULT_CHANNEL_GIVE, -1, sendmsg((int)end->a, &msg, MSG_NOSIGNAL));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EPIPE || errno == ECONNRESET ? shk__error_record_os(SHK_ENOENT, errno)
                                                          : posix_error(errno);
  if (n != (ssize_t)sizeof r) return shk__error_record_os(SHK_EOS, EMSGSIZE);
  *token = tag;
  return SHK_OK;
}
