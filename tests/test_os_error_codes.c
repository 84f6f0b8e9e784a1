/* ctest: labels=unit;fault timeout=60 internal */
/* The translation of raw OS errors into SHK_E* codes, as a caller sees it: each raw error that
 * a backend names (docs/api.md "Errors from the operating system"), injected under
 * shk_shm_open (the segment's open primitive reports it unchanged), gives its documented code,
 * and shk_last_os_error() keeps the raw number. Any other raw error is SHK_EOS. */
#include <stdio.h>
#include <string.h>

#include "shk_test_faults.h"
#include "shmkit.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <errno.h>
#endif

#define CHILD_TIMEOUT_MS 30000

typedef struct translation {
  int raw;
  int code;
  const char *raw_name;
} translation;

#define T(raw, code) {raw, code, #raw}

#if defined(_WIN32)
static const translation table[] = {
    T(ERROR_INVALID_PARAMETER, SHK_EINVAL),   T(ERROR_INVALID_HANDLE, SHK_EINVAL),
    T(ERROR_NOT_ENOUGH_MEMORY, SHK_ENOMEM),   T(ERROR_OUTOFMEMORY, SHK_ENOMEM),
    T(ERROR_COMMITMENT_LIMIT, SHK_ESIZE),     T(ERROR_FILE_TOO_LARGE, SHK_ESIZE),
    T(ERROR_ALREADY_EXISTS, SHK_EEXIST),      T(ERROR_FILE_EXISTS, SHK_EEXIST),
    T(ERROR_FILE_NOT_FOUND, SHK_ENOENT),      T(ERROR_PATH_NOT_FOUND, SHK_ENOENT),
    T(ERROR_ACCESS_DENIED, SHK_EACCES),       T(ERROR_INVALID_NAME, SHK_ENAME),
    T(ERROR_FILENAME_EXCED_RANGE, SHK_ENAME), T(WAIT_TIMEOUT, SHK_ETIMEDOUT),
    T(ERROR_NOT_SUPPORTED, SHK_EUNSUPPORTED), T(ERROR_CALL_NOT_IMPLEMENTED, SHK_EUNSUPPORTED),
    T(ERROR_TOO_MANY_OPEN_FILES, SHK_ELIMIT), T(ERROR_NOACCESS, SHK_EFAULT),
    T(ERROR_BUSY, SHK_EBUSY),                 T(ERROR_GEN_FAILURE, SHK_EOS),
    T(ERROR_LOCK_VIOLATION, SHK_EOS),
};
#else
static const translation table[] = {
    T(EINVAL, SHK_EINVAL),     T(ENOMEM, SHK_ENOMEM),   T(EEXIST, SHK_EEXIST),
    T(ENOENT, SHK_ENOENT),     T(EACCES, SHK_EACCES),   T(EPERM, SHK_EACCES),
    T(EFBIG, SHK_ESIZE),       T(ETIMEDOUT, SHK_ETIMEDOUT), T(ENAMETOOLONG, SHK_ENAME),
    T(EBUSY, SHK_EBUSY),       T(EAGAIN, SHK_EBUSY),    T(EMFILE, SHK_ELIMIT),
    T(ENFILE, SHK_ELIMIT),     T(EFAULT, SHK_EFAULT),   T(ENOSYS, SHK_EUNSUPPORTED),
    T(EOPNOTSUPP, SHK_EUNSUPPORTED), T(EIO, SHK_EOS),   T(ENOSPC, SHK_EOS),
    T(ELOOP, SHK_EOS),
};
#endif

SHK_CHILD_TEST(each_raw_os_error_gives_its_documented_code_and_is_kept, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  char name[64];
  shk_test_unique_name(name, sizeof name, "errs");
  shk_shm *made = NULL;
  SHK_CHECK(shk_shm_create(name, 4096, &made) == SHK_OK);
  int failures = 0;
  for (size_t i = 0; i < SHK__ARRAY_LEN(table); i++) {
    shk__fault_arm(SHK__FAULT_SEGMENT_OPEN, 1, table[i].raw, false);
    shk_shm *shm = NULL;
    int rc = shk_shm_open(name, SHK_SHM_READ_WRITE, &shm);
    int raw = shk_last_os_error();
    unsigned failed = shk__fault_failures(SHK__FAULT_SEGMENT_OPEN);
    shk__fault_disarm_all();
    if (failed != 1 || rc != table[i].code || raw != table[i].raw || shm != NULL) {
      fprintf(stderr, "%s (%d): %s, raw %d, injected %u time(s); expected %s, raw kept\n",
              table[i].raw_name, table[i].raw, shk_error_name(rc), raw, failed,
              shk_error_name(table[i].code));
      failures++;
    }
    shk_shm_close(shm);
  }
  /* Unharmed: the name opens again once nothing fails. */
  shk_shm *again = NULL;
  SHK_CHECK(shk_shm_open(name, SHK_SHM_READ_WRITE, &again) == SHK_OK);
  shk_shm_close(again);
  shk_shm_close(made);
  (void)shk_shm_unlink(name);
  SHK_CHECK(failures == 0);
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(each_raw_os_error_gives_its_documented_code_and_is_kept),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(each_raw_os_error_gives_its_documented_code_and_is_kept),
};

SHK_TEST_MAIN(tests, children)
