/* Source file, function and line of a code address: elfutils' libdw, loaded at run time where
 * it is installed (no build dependency), over one session for the process that is reported again
 * when an address falls in a module loaded since. Elsewhere, or without libdw: SHK_EUNSUPPORTED. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "posix.h"

#ifdef __linux__

/* The few libdw declarations used (elfutils' libdwfl.h, a stable ABI since 0.130). */
typedef struct Dwfl Dwfl;
typedef struct Dwfl_Module Dwfl_Module;
typedef struct Dwfl_Line Dwfl_Line;
typedef void (*any_fn)(void);
typedef struct {
  any_fn find_elf, find_debuginfo, section_address;
  char **debuginfo_path;
} dwfl_callbacks;

static struct {
  Dwfl *(*begin)(const dwfl_callbacks *);
  void (*report_begin)(Dwfl *);
  int (*proc_report)(Dwfl *, pid_t);
  int (*report_end)(Dwfl *, int (*)(Dwfl_Module *, void *, const char *, uint64_t, void *), void *);
  Dwfl_Module *(*addrmodule)(Dwfl *, uint64_t);
  Dwfl_Line *(*getsrc)(Dwfl_Module *, uint64_t);
  const char *(*lineinfo)(Dwfl_Line *, uint64_t *, int *, int *, uint64_t *, uint64_t *);
  const char *(*addrname)(Dwfl_Module *, uint64_t);
} dw;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static dwfl_callbacks callbacks;
static Dwfl *session; /* lock held */
static int session_pid;

static void take(void) { pthread_mutex_lock(&lock); }
static void give(void) { pthread_mutex_unlock(&lock); }
static void child(void) {
  pthread_mutex_unlock(&lock);
  session = NULL; /* the parent's describes the parent: leaked, never used */
}

static void load(void) {
  void *h = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) return;
#define SYM(field, name) *(void **)&dw.field = dlsym(h, name)
  SYM(begin, "dwfl_begin");
  SYM(report_begin, "dwfl_report_begin");
  SYM(proc_report, "dwfl_linux_proc_report");
  SYM(report_end, "dwfl_report_end");
  SYM(addrmodule, "dwfl_addrmodule");
  SYM(getsrc, "dwfl_module_getsrc");
  SYM(lineinfo, "dwfl_lineinfo");
  SYM(addrname, "dwfl_module_addrname");
#undef SYM
  *(void **)&callbacks.find_elf = dlsym(h, "dwfl_linux_proc_find_elf");
  *(void **)&callbacks.find_debuginfo = dlsym(h, "dwfl_standard_find_debuginfo");
  if (!dw.begin || !dw.report_begin || !dw.proc_report || !dw.report_end || !dw.addrmodule ||
      !dw.getsrc || !dw.lineinfo || !dw.addrname || !callbacks.find_elf || !callbacks.find_debuginfo)
    dw.begin = NULL;
  else
    pthread_atfork(take, give, child);
}

/* Reports the process's modules again (lock held). */
static bool report(void) {
  if (!session || session_pid != (int)getpid()) {
    session = dw.begin(&callbacks);
    session_pid = (int)getpid();
  }
  if (!session) return false;
  dw.report_begin(session);
  int rc = dw.proc_report(session, getpid());
  return dw.report_end(session, NULL, NULL) == 0 && rc == 0;
}

int shk__os_source_line(uintptr_t ip, char *file, size_t file_size, char *function,
                        size_t function_size, unsigned *line) {
  if (file_size) file[0] = '\0';
  if (function_size) function[0] = '\0';
  *line = 0;
  pthread_once(&once, load);
  if (!dw.begin) return SHK_EUNSUPPORTED;
  take();
  Dwfl_Module *mod = NULL;
  if ((session && session_pid == (int)getpid()) || report()) mod = dw.addrmodule(session, ip);
  if (!mod && report()) mod = dw.addrmodule(session, ip); /* loaded since the last report */
  int rc = SHK_ENOENT;
  if (mod) {
    const char *name = dw.addrname(mod, ip);
    if (name && function_size) snprintf(function, function_size, "%s", name);
    Dwfl_Line *l = dw.getsrc(mod, ip);
    int ln = 0;
    const char *src = l ? dw.lineinfo(l, NULL, &ln, NULL, NULL, NULL) : NULL;
    if (src && file_size) snprintf(file, file_size, "%s", src);
    if (src && ln > 0) {
      *line = (unsigned)ln;
      rc = SHK_OK;
    }
  }
  give();
  return rc;
}

#else

int shk__os_source_line(uintptr_t ip, char *file, size_t file_size, char *function,
                        size_t function_size, unsigned *line) {
  (void)ip;
  if (file_size) file[0] = '\0';
  if (function_size) function[0] = '\0';
  *line = 0;
  return SHK_EUNSUPPORTED;
}

#endif
