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

/* The handler each of our handlers replaced, per signal (0: SIGSEGV, 1: SIGBUS), in two slots:
 * installing again writes the slot not in use, then publishes it, so a handler running on
 * another thread meanwhile reads a whole record. */
static struct sigaction prevs[2][2];
static atomic_int prev_slot[2];
static _Atomic(shk__os_fault_fn) hook;
static atomic_bool installed_once;

/* The fault this thread is passing on now (and whether it is), so that a chain that comes back
 * round to our handler ends at the default action instead of going round again. Thread-local
 * storage of the initial-exec model is reserved when the library loads: reading it in a signal
 * handler allocates nothing. */
#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define SHK_TLS_IE __attribute__((tls_model("initial-exec")))
#else
#define SHK_TLS_IE
#endif
static _Thread_local SHK_TLS_IE struct {
  bool active;
  int sig;
  void *addr;
} passing;

static int sig_index(int sig) { return sig == SIGSEGV ? 0 : 1; }

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

/* The default action: the disposition is reset and the handler returns, so the faulting
 * instruction runs again and the process dies of the same signal, with the same core dump, as it
 * would without shmkit ("ignore" too: the kernel overrides it for faults). */
static void to_default(int sig, const siginfo_t *info) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL);
  if (!info || info->si_code <= 0) raise(sig); /* sent by kill(): no instruction to repeat */
}

/* Hands the signal to whoever had it before, or to the default action. */
static void pass_on(int sig, siginfo_t *info, void *ctx) {
  int i = sig_index(sig);
  const struct sigaction *prev = &prevs[i][atomic_load(&prev_slot[i])];
  if ((prev->sa_flags & SA_SIGINFO) && prev->sa_sigaction) {
    prev->sa_sigaction(sig, info, ctx);
    return;
  }
  if (!(prev->sa_flags & SA_SIGINFO) && prev->sa_handler != SIG_DFL &&
      prev->sa_handler != SIG_IGN) {
    prev->sa_handler(sig);
    return;
  }
  to_default(sig, info);
}

static void on_fault_signal(int sig, siginfo_t *info, void *ctx) {
  int saved = errno;
  void *addr = info ? info->si_addr : NULL;
  if (passing.active && passing.sig == sig && passing.addr == addr) {
    /* Back here while passing this very fault on: the handler we chain to chains to us (it was
     * installed over ours, and ours over it again). Going round again would never end. */
    to_default(sig, info);
    errno = saved;
    return;
  }
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
  passing.sig = sig;
  passing.addr = addr;
  passing.active = true;
  pass_on(sig, info, ctx);
  passing.active = false; /* not reached when the handler passed to jumps away (see os.h) */
}

static bool is_ours(const struct sigaction *sa) {
  return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_fault_signal;
}

/* Puts our handler on sig unless it is the installed one now, chaining to what is there;
 * *changed says whether it did (so that a failure later in the same installation can put the
 * handler found back: undo()). */
static int ensure_on(int sig, bool *changed) {
  int i = sig_index(sig);
  struct sigaction cur;
  *changed = false;
  if (sigaction(sig, NULL, &cur) != 0) return posix_error(errno);
  if (is_ours(&cur)) return SHK_OK;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  int spare = !atomic_load(&prev_slot[i]);
  /* The record is written before our handler can read it: published first, then installed. The
   * handler that sigaction() replaces is cur unless another thread of the program changed it in
   * between, which would be its own race with ours. */
  prevs[i][spare] = cur;
  atomic_store(&prev_slot[i], spare);
  if (POSIX_FAULTABLE(SHK__FAULT_FAULT_HANDLER, -1, sigaction(sig, &sa, NULL)) != 0)
    return posix_error(errno);
  *changed = true;
  return SHK_OK;
}

/* Gives sig back the handler ensure_on() found there (the failure that calls this is already
 * recorded: errno is kept for it). */
static void undo(int sig) {
  int saved = errno;
  int i = sig_index(sig);
  sigaction(sig, &prevs[i][atomic_load(&prev_slot[i])], NULL);
  errno = saved;
}

/* Our handler on SIGSEGV and SIGBUS, or, when the second cannot be installed, neither changed:
 * a failed installation leaves the program's handlers as they were. */
static int ensure_both(void) {
  bool segv_changed = false, bus_changed = false;
  int rc = ensure_on(SIGSEGV, &segv_changed);
  if (rc == SHK_OK) rc = ensure_on(SIGBUS, &bus_changed);
  if (rc != SHK_OK && segv_changed) undo(SIGSEGV);
  return rc;
}

int shk__os_fault_install(shk__os_fault_fn fn) {
  shk__os_fault_fn before = atomic_exchange(&hook, fn);
  int rc = ensure_both();
  if (rc == SHK_OK)
    atomic_store(&installed_once, true);
  else
    atomic_store(&hook, before);
  return rc;
}

int shk__os_fault_refresh(void) {
  if (!atomic_load(&installed_once)) return SHK_OK;
  return ensure_both();
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
