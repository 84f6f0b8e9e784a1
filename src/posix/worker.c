/* POSIX workers of chunk tasks: processes forked once per pool, a unix socket per worker for
 * wake-ups and for passing segment descriptors (SCM_RIGHTS), and function identity by module. */
#include <dlfcn.h>
#ifndef __APPLE__
#include <link.h> /* dl_iterate_phdr; macOS has neither (dladdr is used there) */
#endif
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "posix.h"

/* Records keep their boundaries where the system offers sequenced packets; elsewhere a stream
 * carries fixed-size records. */
/* macOS defines SOCK_SEQPACKET but its AF_UNIX socketpair refuses it; records are read whole
 * (MSG_WAITALL) and the parent only drains wake-ups, so a stream works as well. */
#if defined(SOCK_SEQPACKET) && !defined(__APPLE__)
#define POSIX_LINK_TYPE SOCK_SEQPACKET
#else
#define POSIX_LINK_TYPE SOCK_STREAM
#endif

#ifndef MSG_CMSG_CLOEXEC
#define MSG_CMSG_CLOEXEC 0
#endif
/* Without MSG_NOSIGNAL (macOS) the link sockets get SO_NOSIGPIPE instead. */
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

enum { RECORD_WAKE = 1, RECORD_SEGMENT = 2 };

typedef struct posix_record {
  uint32_t type;
  uint32_t reserved;
  uint64_t id;
} posix_record;

/* Descriptors that arrived in a worker before it needed them. A worker process is single-
 * threaded, and thread workers never receive segments. */
#define STASH_SIZE 8
static struct {
  uint64_t id;
  int fd;
} stash[STASH_SIZE];

/* Moves a descriptor away from 0..2 so that "0 = closed" holds for link ends. */
static int posix_above_stdio(int fd) {
  if (fd > 2) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return moved;
}

int shk__os_worker_link_open(shk__os_worker *w) {
  memset(w, 0, sizeof *w);
  int sv[2];
#ifdef SOCK_CLOEXEC
  if (socketpair(AF_UNIX, POSIX_LINK_TYPE | SOCK_CLOEXEC, 0, sv) != 0) return posix_error(errno);
#else
  if (socketpair(AF_UNIX, POSIX_LINK_TYPE, 0, sv) != 0) return posix_error(errno);
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
  w->parent_end.a = sv[0];
  w->worker_end.a = sv[1];
  return SHK_OK;
}

static void close_end(shk__os_link *end) {
  if (end->a > 0) close((int)end->a);
  end->a = 0;
}

void shk__os_worker_link_close(shk__os_worker *w) {
  close_end(&w->parent_end);
  close_end(&w->worker_end);
}

/* The forked child: die with the parent, take the default action on faults (a test harness or
 * the program may have handlers that would resume the parent's code), and serve. */
/* Each new worker is a fresh copy of this process: a library function this process has not
 * called yet would be bound lazily again in every worker (a symbol search through the loaded
 * modules' tables, faulting them in: measured at about a third of a one-call run's extra cost).
 * So the pool's process calls, once and harmlessly, what a worker calls first; _exit, which
 * cannot be called ahead, is reached through a pointer the loader fills at start-up. */
static void (*volatile posix_exit_now)(int) = _exit;
static shk__once posix_bind_once;

static void posix_bind_worker_calls(void) {
  int sig = 0;
  struct sigaction old;
  sigset_t set;
#ifdef __linux__
  prctl(PR_GET_PDEATHSIG, &sig);
#endif
  (void)getppid();
  sigaction(SIGSEGV, NULL, &old);
  sigemptyset(&set);
  sigprocmask(SIG_BLOCK, NULL, &set);
  sched_yield();
  (void)sig;
  (void)!strncmp("a", "a", 1);
}

static void posix_worker_child(shk__os_worker *w, pid_t parent, unsigned index,
                               const shk__os_segment *arena, size_t ctl_size, size_t out_offset,
                               size_t out_size, const shk__os_worker *all, unsigned count) {
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
  if (getppid() != parent) posix_exit_now(0);
  static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) sigaction(faults[i], &dfl, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  (void)all;
  (void)count;
  /* The worker holds its link and nothing else of the caller's (segments come over the link):
   * a pipe the caller closes must see its end, whatever pools exist. */
  int keep = (int)w->worker_end.a;
  posix_close_all_but(&keep, 1);
  shk__os_worker_boot boot;
  memset(&boot, 0, sizeof boot);
  /* The arena is mapped at the same address in this fork. */
  boot.ctl = *arena;
  boot.ctl.size = ctl_size;
  boot.out = *arena;
  boot.out.addr = (unsigned char *)arena->addr + out_offset;
  boot.out.size = out_size;
  boot.index = index;
  boot.link = w->worker_end;
  boot.same_space = false;
  shk__task_worker_serve(&boot);
  /* What a chunk function printed (stderr is unbuffered); other streams are the function's to
   * flush: walking every stream would cost a fresh worker several page faults. */
  fflush(stdout);
  posix_exit_now(0);
}

int shk__os_worker_spawn(shk__os_worker *w, unsigned index, const shk__os_segment *arena,
                         size_t ctl_size, size_t out_offset, size_t out_size,
                         const shk__os_worker *all, unsigned count) {
  shk__once_run(&posix_bind_once, posix_bind_worker_calls);
  /* Unflushed output would otherwise be written twice: the worker flushes stdout as it ends. */
  fflush(stdout);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return posix_error(errno);
  if (pid == 0)
    posix_worker_child(w, parent, index, arena, ctl_size, out_offset, out_size, all, count);
  close_end(&w->worker_end);
  w->proc = pid;
  w->pid = (int)pid;
  return SHK_OK;
}

void shk__os_link_notify(const shk__os_link *end) {
  posix_record r = {RECORD_WAKE, 0, 0};
  if (end->a > 0) (void)send((int)end->a, &r, sizeof r, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void stash_put(uint64_t id, int fd) {
  size_t slot = 0;
  for (size_t i = 0; i < STASH_SIZE; i++) {
    if (stash[i].fd <= 0) {
      slot = i;
      break;
    }
    if (stash[i].id < stash[slot].id) slot = i; /* full: the oldest gives way */
  }
  if (stash[slot].fd > 0) close(stash[slot].fd);
  stash[slot].id = id;
  stash[slot].fd = fd;
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

/* Receives one record; a segment's descriptor goes to the stash. 1 record, 0 end of file,
 * -1 error. */
static int receive_record(int sock, posix_record *r) {
  fd_control control;
  struct iovec iov;
  struct msghdr msg;
  record_message(&msg, &iov, r, &control);
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return n == 0 ? 0 : -1;
  int fd = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(c), sizeof fd);
  if ((size_t)n != sizeof *r) {
    if (fd >= 0) close(fd);
    return -1;
  }
  if (r->type == RECORD_SEGMENT && fd > 0) stash_put(r->id, fd);
  else if (fd >= 0) close(fd);
  return 1;
}

static int poll_in(int fd, uint64_t timeout_ns) {
  struct pollfd p = {fd, POLLIN, 0};
  int ms = timeout_ns == UINT64_MAX ? -1 : (int)SHK__MIN(timeout_ns / 1000000u + 1, 86400000u);
  int r;
  do {
    r = poll(&p, 1, ms);
  } while (r < 0 && errno == EINTR);
  return r;
}

int shk__os_link_wait(const shk__os_link *end, uint64_t timeout_ns) {
  int sock = (int)end->a;
  for (;;) {
    int r = poll_in(sock, timeout_ns);
    if (r == 0) return SHK_ETIMEDOUT;
    if (r < 0) return posix_error(errno);
    posix_record rec;
    r = receive_record(sock, &rec);
    if (r <= 0) return SHK_ENOENT;
    if (rec.type == RECORD_WAKE) return SHK_OK;
  }
}

int shk__os_workers_wait(const shk__os_worker *ws, unsigned n, uint64_t timeout_ns, bool *ended) {
  struct pollfd p[SHK_TASK_WORKERS_MAX];
  unsigned who[SHK_TASK_WORKERS_MAX], m = 0;
  for (unsigned i = 0; i < n && m < SHK_TASK_WORKERS_MAX; i++) {
    if (ws[i].parent_end.a <= 0) continue;
    p[m].fd = (int)ws[i].parent_end.a;
    p[m].events = POLLIN;
    p[m].revents = 0;
    who[m++] = i;
  }
  int ms = (int)SHK__MIN(timeout_ns / 1000000u, 86400000u);
  if (ms == 0 && timeout_ns > 0) ms = 1;
  int r;
  do {
    r = poll(p, m, ms);
  } while (r < 0 && errno == EINTR);
  if (r <= 0) return SHK_ETIMEDOUT;
  for (unsigned j = 0; j < m; j++) {
    if (!p[j].revents) continue;
    bool gone = (p[j].revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
    char drain[256];
    for (;;) {
      ssize_t got = recv(p[j].fd, drain, sizeof drain, MSG_DONTWAIT);
      if (got > 0) continue;
      if (got == 0) gone = true;
      break;
    }
    if (gone && ws[who[j]].pid > 0) ended[who[j]] = true;
  }
  return SHK_OK;
}

/* Waits until the worker's link ends (its descriptors close as it exits) or the deadline. */
static bool posix_link_ended(int fd, uint64_t deadline) {
  struct pollfd p = {fd, POLLIN, 0};
  char drain[256];
  for (;;) {
    uint64_t now = shk__os_now_ns();
    if (now >= deadline) return false;
    int r = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return true;
    ssize_t got = recv(fd, drain, sizeof drain, MSG_DONTWAIT);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) return true;
  }
}

/* Reaps a process that is exiting: it becomes waitable microseconds after its descriptors
 * close, so poll waitpid while yielding (a sleep would round up to the timer slack, ~60 us),
 * for at most `ms`. */
static bool posix_reap_soon(shk__os_proc *proc, int64_t ms, shk__os_exit *how) {
  uint64_t deadline = shk__os_now_ns() + (uint64_t)ms * 1000000u;
  for (;;) {
    int status;
    pid_t r = waitpid((pid_t)proc->pid, &status, WNOHANG);
    if (r == (pid_t)proc->pid) {
      posix_decode_status(status, how);
      proc->pid = 0;
      return true;
    }
    if (r < 0 && errno != EINTR) return false;
    if (shk__os_now_ns() >= deadline) return false;
    shk__os_yield();
  }
}

void shk__os_worker_reap(shk__os_worker *w, bool kill, int64_t timeout_ms, shk__os_exit *how) {
  how->kind = SHK__OS_EXITED;
  how->code = 0;
  if (w->pid > 0) {
    shk__os_proc proc = {w->proc, w->pid};
    uint64_t deadline = shk__os_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000u;
    /* A worker that does not end in time is killed; either way it is reaped. */
    if (kill || w->parent_end.a <= 0 || !posix_link_ended((int)w->parent_end.a, deadline))
      shk__os_proc_kill(&proc);
    if (!posix_reap_soon(&proc, 100, how)) {
      shk__os_proc_kill(&proc); /* it closed its link but lives on: no waiting forever */
      shk__os_proc_wait(&proc, -1, how);
    }
  }
  w->proc = 0;
  w->pid = 0;
  shk__os_worker_link_close(w);
}

int shk__os_worker_give_segment(shk__os_worker *w, const shk__os_segment *seg, uint64_t id,
                                uint64_t *token) {
  posix_record r = {RECORD_SEGMENT, 0, id};
  fd_control control;
  struct iovec iov;
  struct msghdr msg;
  record_message(&msg, &iov, &r, &control);
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int fd = (int)seg->handle;
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  do {
    n = sendmsg((int)w->parent_end.a, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != (ssize_t)sizeof r) return n < 0 ? posix_error(errno) : SHK_EOS;
  *token = id;
  return SHK_OK;
}

int shk__os_worker_take_segment(const shk__os_link *end, uint64_t id, uint64_t token, size_t size,
                                uint64_t keep, shk__os_segment *seg) {
  (void)token;
  memset(seg, 0, sizeof *seg);
  int fd = -1;
  uint64_t deadline = shk__os_now_ns() + 5000000000u;
  while (fd < 0) {
    for (size_t i = 0; i < STASH_SIZE; i++) {
      if (stash[i].fd > 0 && stash[i].id == id) {
        fd = stash[i].fd;
        stash[i].fd = 0;
      } else if (stash[i].fd > 0 && stash[i].id < id && stash[i].id != keep) {
        close(stash[i].fd); /* older, and never to be needed */
        stash[i].fd = 0;
      }
    }
    if (fd >= 0) break;
    /* The pool sends the descriptor before it publishes the job, so it is here, perhaps behind
     * stale wake-ups; the deadline only guards against a confused pool. */
    posix_record rec;
    uint64_t now = shk__os_now_ns();
    if (now >= deadline || poll_in((int)end->a, deadline - now) <= 0 ||
        receive_record((int)end->a, &rec) <= 0)
      return SHK_ENOENT;
  }
  void *addr = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) {
    int err = errno;
    close(fd);
    return posix_error(err);
  }
  seg->addr = addr;
  seg->size = size;
  seg->handle = fd;
  seg->writable = false;
  return SHK_OK;
}

/* The loaded module whose segments hold an address: its load address (the lowest segment) and
 * name. dl_iterate_phdr reads only the loader's list, unlike dladdr, which also searches symbol
 * tables: in a freshly forked worker every page it reads is a page fault. */
typedef struct posix_module_query {
  uintptr_t addr;
  uintptr_t base;
  const char *name;
  bool found;
} posix_module_query;

#ifdef __APPLE__
/* No dl_iterate_phdr: dladdr names the image and gives its load address (its Mach-O header). */
static bool posix_find_module(uintptr_t addr, posix_module_query *q) {
  memset(q, 0, sizeof *q);
  q->addr = addr;
  Dl_info info;
  if (dladdr((const void *)addr, &info) == 0 || !info.dli_fbase) return false;
  q->base = (uintptr_t)info.dli_fbase;
  q->name = info.dli_fname;
  q->found = true;
  return true;
}
#else

static int posix_module_of(struct dl_phdr_info *info, size_t size, void *p) {
  (void)size;
  posix_module_query *q = p;
  uintptr_t lowest = UINTPTR_MAX;
  bool inside = false;
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t start = (uintptr_t)info->dlpi_addr + (uintptr_t)ph->p_vaddr;
    if (start < lowest) lowest = start;
    if (q->addr >= start && q->addr - start < (uintptr_t)ph->p_memsz) inside = true;
  }
  if (!inside) return 0;
  q->base = lowest;
  q->name = info->dlpi_name;
  q->found = true;
  return 1;
}

static bool posix_find_module(uintptr_t addr, posix_module_query *q) {
  memset(q, 0, sizeof *q);
  q->addr = addr;
  dl_iterate_phdr(posix_module_of, q);
  return q->found;
}
#endif

int shk__os_fn_locate(shk__os_any_fn fn, shk__os_fn_id *id) {
  memset(id, 0, sizeof *id);
  void *addr;
  _Static_assert(sizeof addr == sizeof fn, "function and data pointers differ in size");
  memcpy(&addr, &fn, sizeof addr);
  posix_module_query q;
  if (!fn || !posix_find_module((uintptr_t)addr, &q)) return SHK_ENOENT;
  id->base = (uint64_t)q.base;
  id->offset = (uint64_t)((uintptr_t)addr - q.base);
  /* The main program's name is "" in the loader's list. */
  snprintf(id->module, sizeof id->module, "%s", q.name && q.name[0] ? q.name : "/proc/self/exe");
  return SHK_OK;
}

int shk__os_fn_resolve(const shk__os_fn_id *id, shk__os_any_fn *fn) {
  /* Workers are forks of the pool's process: the module sits at the same address. Check that
   * the address still lies in a module loaded there (one loaded after the fork would not). */
  uintptr_t addr = (uintptr_t)id->base + (uintptr_t)id->offset;
  posix_module_query q;
  if (id->base == 0 || !posix_find_module(addr, &q) || q.base != (uintptr_t)id->base)
    return SHK_ENOENT;
  void *p = (void *)addr;
  memcpy(fn, &p, sizeof p);
  return SHK_OK;
}

int shk__os_worker_main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return SHK_OK;
}
