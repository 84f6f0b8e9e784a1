/* Error names and messages, generated from SHK_ERROR_LIST, and the per-thread raw OS error. */
#include "internal.h"

/* Initial-exec on ELF (SHK__THREAD_LOCAL): recording is a plain store, safe in a signal handler
 * (shk__os_protect records from the watcher's fault handler). */
static SHK__THREAD_LOCAL int last_os_error;

const char *shk_strerror(int code) {
  switch (code) {
#define SHK_ERROR_TEXT_(name, value, text) \
  case value:                              \
    return text;
    SHK_ERROR_LIST(SHK_ERROR_TEXT_)
#undef SHK_ERROR_TEXT_
  }
  return "unknown error";
}

const char *shk_error_name(int code) {
  switch (code) {
#define SHK_ERROR_NAME_(name, value, text) \
  case value:                              \
    return #name;
    SHK_ERROR_LIST(SHK_ERROR_NAME_)
#undef SHK_ERROR_NAME_
  }
  return "SHK_UNKNOWN";
}

int shk_last_os_error(void) { return last_os_error; }

void shk__error_clear_os(void) { last_os_error = 0; }

int shk__error_record_os(int code, int raw) {
  last_os_error = raw;
  return code;
}
