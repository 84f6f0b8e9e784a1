/* POSIX write-fault hook: SIGSEGV and SIGBUS handlers that ask the watcher whether a fault is
 * its own and otherwise pass it on unchanged to the handler found at install time, or to the
 * default action, so a real crash still ends the process with the same signal. Also dladdr
 * symbolisation and the kernel's memory-area budget. */
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __APPLE__
#include <sys/ucontext.h> /* <ucontext.h> is an #error there without _XOPEN_SOURCE */
#else
#include <ucontext.h>
#endif
#include <unistd.h>

#include "posix.h"

static struct sigaction prev_segv, prev_bus;
static _Atomic(shk__os_fault_fn) hook;
static bool in_chain; /* our handlers are installed (perhaps under someone else's) */

static uintptr_t fault_ip(const void *ctx) {
  const ucontext_t *uc = ctx;
  if (!uc) return 0;
#if defined(__linux__) && defined(__x86_64__)
  return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__linux__) && defined(__aarch64__)
  return (uintptr_t)uc->uc_mcontext.pc;
#elif defined(__linux__) && defined(__i386__)
  return (uintptr_t)uc->uc_mcontext.gregs[REG_EIP];
#elif defined(__APPLE__) && defined(__x86_64__)
  return (uintptr_t)uc->uc_mcontext->__ss.__rip;
#elif defined(__APPLE__) && defined(__aarch64__)
  return (uintptr_t)uc->uc_mcontext->__ss.__pc;
#else
  return 0;
#endif
}

/* Whether the access was a write; *known false when the OS does not say (then "maybe"). */
static bool fault_is_write(const void *ctx, bool *known) {
#if defined(__linux__) && defined(__x86_64__)
  const ucontext_t *uc = ctx;
  *known = uc != NULL;
  /* The page-fault error code: W (bit 1) is set for writes, I (bit 4) for instruction fetches. */
  return !uc || (uc->uc_mcontext.gregs[REG_ERR] & 0x12) == 0x2;
#else
  (void)ctx;
  *known = false;
  return true; /* unknown: the watcher only ever protects against writes */
#endif
}

/* Whether the fault can be a protection fault on a mapped page, the only kind the watcher
 * causes. On Linux that is SIGSEGV with SEGV_ACCERR; SEGV_MAPERR (unmapped), protection keys and
 * SIGBUS (a file mapping past its end) never are. Elsewhere (macOS raises SIGBUS for protection
 * faults) any fault raised by an instruction. */
static bool maybe_protection_fault(int sig, const siginfo_t *info) {
  if (!info || info->si_code <= 0) return false; /* sent by kill(): no instruction */
#ifdef __linux__
  return sig == SIGSEGV && info->si_code == SEGV_ACCERR;
#else
  (void)sig;
  return true;
#endif
}

/* Hands the signal to whoever had it before. For the default action (or "ignore", which the
 * kernel overrides for faults) the disposition is reset and the handler returns: the faulting
 * instruction runs again and the process dies of the same signal, with the same core dump, as
 * it would without shmkit. */
static void pass_on(int sig, siginfo_t *info, void *ctx) {
  const struct sigaction *prev = sig == SIGSEGV ? &prev_segv : &prev_bus;
  if ((prev->sa_flags & SA_SIGINFO) && prev->sa_sigaction) {
    prev->sa_sigaction(sig, info, ctx);
    return;
  }
  if (!(prev->sa_flags & SA_SIGINFO) && prev->sa_handler != SIG_DFL &&
      prev->sa_handler != SIG_IGN) {
    prev->sa_handler(sig);
    return;
  }
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL);
  if (!info || info->si_code <= 0) raise(sig); /* sent by kill(): no instruction to repeat */
}

static void on_fault_signal(int sig, siginfo_t *info, void *ctx) {
  int saved = errno;
  shk__os_fault_fn fn = atomic_load(&hook);
  if (fn && maybe_protection_fault(sig, info)) {
    shk__os_fault f = {(uintptr_t)info->si_addr, fault_ip(ctx), false, false};
    f.write = fault_is_write(ctx, &f.write_known);
    if (fn(&f)) {
      errno = saved;
      return;
    }
  }
  errno = saved;
  pass_on(sig, info, ctx);
}

int shk__os_fault_install(shk__os_fault_fn fn) {
  atomic_store(&hook, fn);
  if (in_chain) return SHK_OK; /* still below another handler that chains to us */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, &prev_segv) != 0) return posix_error(errno);
  if (sigaction(SIGBUS, &sa, &prev_bus) != 0) {
    int err = errno;
    sigaction(SIGSEGV, &prev_segv, NULL);
    return posix_error(err);
  }
  in_chain = true;
  return SHK_OK;
}

static bool restore_if_ours(int sig, const struct sigaction *prev) {
  struct sigaction cur;
  if (sigaction(sig, NULL, &cur) != 0) return false;
  if (!(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != on_fault_signal) return false;
  return sigaction(sig, prev, NULL) == 0;
}

void shk__os_fault_remove(void) {
  atomic_store(&hook, NULL);
  if (!in_chain) return;
  /* A handler installed after ours may chain to us: then we stay, passing everything on. */
  bool segv = restore_if_ours(SIGSEGV, &prev_segv);
  bool bus = restore_if_ours(SIGBUS, &prev_bus);
  if (segv && bus) in_chain = false;
}

int shk__os_symbolize(uintptr_t ip, char *module, size_t module_size, char *symbol,
                      size_t symbol_size) {
  if (module_size) module[0] = '\0';
  if (symbol_size) symbol[0] = '\0';
  Dl_info info;
  if (!ip || dladdr((void *)ip, &info) == 0) return SHK_ENOENT;
  if (info.dli_fname && module_size) snprintf(module, module_size, "%s", info.dli_fname);
  if (!symbol_size) return SHK_OK;
  if (info.dli_sname && info.dli_saddr) {
    snprintf(symbol, symbol_size, "%s+0x%lx", info.dli_sname,
             (unsigned long)(ip - (uintptr_t)info.dli_saddr));
  } else if (info.dli_fname && info.dli_fbase) {
    /* Not exported (static functions, executables without -rdynamic): module + offset, which
     * addr2line -e <module> turns into a line. */
    const char *base = strrchr(info.dli_fname, '/');
    snprintf(symbol, symbol_size, "%s+0x%lx", base ? base + 1 : info.dli_fname,
             (unsigned long)(ip - (uintptr_t)info.dli_fbase));
  }
  return SHK_OK;
}

#ifdef __linux__
/* Reads a small text file into buf (NUL-terminated); the number of bytes, or -1. */
static long read_small(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n < 0) return -1;
  buf[n] = '\0';
  return (long)n;
}

size_t shk__os_map_areas_left(void) {
  char buf[4096];
  if (read_small("/proc/sys/vm/max_map_count", buf, sizeof buf) <= 0) return SIZE_MAX;
  long max = atol(buf);
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || max <= 0) {
    if (fd >= 0) close(fd);
    return SIZE_MAX;
  }
  long lines = 0;
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; i++) lines += buf[i] == '\n';
  close(fd);
  return max > lines ? (size_t)(max - lines) : 0;
}
#else
/* No such budget to read elsewhere (nor /proc). */
size_t shk__os_map_areas_left(void) { return SIZE_MAX; }
#endif
