/* Names are keyed by address in their producer's own address space: two producer processes that
 * send different names from the same address (forked from one parent, a buffer each filled
 * differently) keep their own, in the events and in shk_lens_reader_string(pid, key). POSIX
 * (fork gives the same address in both); elsewhere the test says why and skips. */
/* ctest: labels=unit;multiprocess timeout=60 */
#include <stdio.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#ifndef _WIN32
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_TIMEOUT_MS 30000

static char zone_name[64]; /* one address in every process forked from here */

/* A producer process: its own text at zone_name's address, `zones` zones named with it. */
static pid_t producer(const char *lens_name, const char *text, int zones) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  snprintf(zone_name, sizeof zone_name, "%s", text);
  shk_lens *lens = NULL;
  if (shk_lens_open(lens_name, NULL, &lens) != SHK_OK) _exit(3);
  for (int i = 0; i < zones; i++) {
    shk_lens_zone z;
    if (shk_lens_zone_begin(lens, &z, zone_name, 0) != SHK_OK) _exit(4);
    if (shk_lens_zone_end(&z) != SHK_OK) _exit(5);
  }
  shk_lens_close(lens);
  _exit(0);
}

static bool ended_well(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

typedef struct seen {
  int zones;
  uint64_t key;
} seen;

/* Takes the zones of process pid (expected name `want`) until `zones` are seen. 0 or a line. */
static int take_zones(shk_lens_reader *r, pid_t pid, const char *want, int zones, seen *s) {
  for (int round = 0; round < 400 && s->zones < zones; round++) {
    size_t n = 0;
    SHK_CHECK(shk_lens_reader_drain(r, NULL, NULL, &n) == SHK_OK);
    shk_lens_event e;
    while (shk_lens_reader_next(r, &e) == SHK_OK) {
      if (e.kind != SHK_LENS_ZONE) continue;
      SHK_CHECK(e.pid == (uint32_t)pid);
      if (strcmp(e.name, want) != 0) {
        fprintf(stderr, "process %u's zone named '%s', not '%s'\n", e.pid, e.name, want);
        return __LINE__;
      }
      s->zones++;
      s->key = e.name_key;
    }
    shk_test_sleep_ms(5);
  }
  SHK_CHECK(s->zones == zones);
  return 0;
}

SHK_CHILD_TEST(two_processes_keep_their_own_names_under_one_address, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  char name[64];
  shk_test_unique_name(name, sizeof name, "kp");
  shk_lens *lens = NULL;
  SHK_CHECK(shk_lens_open(name, NULL, &lens) == SHK_OK);
  shk_lens_reader *r = NULL;
  SHK_CHECK(shk_lens_reader_open(name, NULL, &r) == SHK_OK);
  /* One after the other, each read before the next: the second sends its name while the
   * reader knows the first's under the same key. */
  seen sa = {0, 0}, sb = {0, 0};
  pid_t a = producer(name, "alpha-of-the-first", 3);
  SHK_CHECK(a > 0 && ended_well(a));
  int line = take_zones(r, a, "alpha-of-the-first", 3, &sa);
  if (line) return line;
  pid_t b = producer(name, "beta-of-the-second", 2);
  SHK_CHECK(b > 0 && ended_well(b));
  line = take_zones(r, b, "beta-of-the-second", 2, &sb);
  if (line) return line;
  SHK_CHECK(sa.key == sb.key); /* the case this tests: one key, two processes */
  /* Looked up again afterwards (what a recorder does for names that came late). */
  const char *ta = shk_lens_reader_string(r, (uint32_t)a, sa.key);
  const char *tb = shk_lens_reader_string(r, (uint32_t)b, sb.key);
  SHK_CHECK(ta && strcmp(ta, "alpha-of-the-first") == 0);
  SHK_CHECK(tb && strcmp(tb, "beta-of-the-second") == 0);
  shk_lens_reader_close(r);
  shk_lens_close(lens);
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(two_processes_keep_their_own_names_under_one_address),
};
static const shk_test_child children[] = {
    SHK_TEST_CHILD(two_processes_keep_their_own_names_under_one_address),
};
#else
static void no_fork_here_skipped(void **state) {
  (void)state;
  print_message("Windows has no fork: two processes cannot share a name's address on purpose; "
                "nothing to test\n");
  skip();
}
static const struct CMUnitTest tests[] = {cmocka_unit_test(no_fork_here_skipped)};
static const shk_test_child children[] = {{NULL, NULL}};
#endif

SHK_TEST_MAIN(tests, children)
