/* A POSIX channel end fed records that are not ours (a peer that is broken or hostile writes
 * the socket directly): a wake-up carrying a descriptor, a handle record without one, an unknown
 * kind, a short record. Each is refused with SHK_EFORMAT, a descriptor that came with it is
 * closed (none is left in this process), and the channel still carries good records after. */
/* ctest: labels=unit timeout=60 */
#include <stdio.h>
#include <string.h>

#include "os.h"
#include "shk_test.h"

#if defined(__linux__)
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

/* The layout of src/posix/channel.c's record, as a peer would write it. */
typedef struct raw_record {
  uint32_t kind;
  uint32_t reserved;
  uint64_t tag;
} raw_record;

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
  closedir(d);
  return n - 1;
}

/* Writes `len` bytes of rec on the socket, with a copy of /dev/null attached when with_fd. */
static void send_raw(int sock, const raw_record *rec, size_t len, bool with_fd) {
  struct iovec iov = {(void *)rec, len};
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  int fd = -1;
  if (with_fd) {
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    memset(&control, 0, sizeof control);
    m.msg_control = control.buf;
    m.msg_controllen = sizeof control.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  assert_int_equal(sendmsg(sock, &m, 0), (ssize_t)len);
  if (fd >= 0) close(fd); /* the receiver holds its own copy now */
}

static void malformed_records_are_refused_and_their_descriptors_closed(void **state) {
  (void)state;
  shk__os_channel a, b;
  assert_int_equal(shk__os_channel_pair(&a, &b), SHK_OK);
  int before = open_fds();
  static const struct {
    raw_record rec;
    size_t len;
    bool with_fd;
  } bad[] = {
      {{SHK__OS_MSG_WAKE, 0, 1}, sizeof(raw_record), true},    /* a wake-up with a descriptor */
      {{SHK__OS_MSG_HANDLE, 0, 2}, sizeof(raw_record), false}, /* a handle without one */
      {{7, 0, 3}, sizeof(raw_record), true},                   /* an unknown kind */
      {{0, 0, 4}, sizeof(raw_record), false},                  /* kind 0 */
      {{SHK__OS_MSG_WAKE, 0, 5}, sizeof(raw_record) - 1, false}, /* a short record */
      {{SHK__OS_MSG_HANDLE, 0, 6}, sizeof(raw_record) - 4, true}, /* short, with a descriptor */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    send_raw((int)a.a, &bad[i].rec, bad[i].len, bad[i].with_fd);
    shk__os_message msg;
    int rc = shk__os_channel_receive(&b, NULL, 5000000000u, &msg);
    if (rc != SHK_EFORMAT) fail_msg("record %zu: %s, not SHK_EFORMAT", i, shk_error_name(rc));
    if (open_fds() != before) fail_msg("record %zu left a descriptor open", i);
  }
  /* Good records pass after: a wake-up, and a handle that arrives as a descriptor. */
  raw_record wake = {SHK__OS_MSG_WAKE, 0, 42};
  send_raw((int)a.a, &wake, sizeof wake, false);
  shk__os_message msg;
  assert_int_equal(shk__os_channel_receive(&b, NULL, 5000000000u, &msg), SHK_OK);
  assert_int_equal(msg.kind, SHK__OS_MSG_WAKE);
  assert_int_equal(msg.tag, 42);
  raw_record handle = {SHK__OS_MSG_HANDLE, 0, 43};
  send_raw((int)a.a, &handle, sizeof handle, true);
  assert_int_equal(shk__os_channel_receive(&b, NULL, 5000000000u, &msg), SHK_OK);
  assert_int_equal(msg.kind, SHK__OS_MSG_HANDLE);
  assert_int_equal(msg.tag, 43);
  assert_true(fcntl((int)msg.handle, F_GETFD) >= 0);
  close((int)msg.handle);
  shk__os_channel_close(&a);
  shk__os_channel_close(&b);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(malformed_records_are_refused_and_their_descriptors_closed),
};

#else

/* Windows channels carry events, not records a peer could forge into this process. */
static void skipped_posix_records_only(void **state) {
  (void)state;
  fprintf(stderr, "SKIPPED: channel records are a POSIX socket format\n");
  skip();
}

static const struct CMUnitTest tests[] = {cmocka_unit_test(skipped_posix_records_only)};

#endif

static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
