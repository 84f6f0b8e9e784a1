/* `shmkit lens record` when another process shrinks the lens segment under it (POSIX ftruncate):
 * the tool says so on stderr, exits 1 and still writes a complete trace with what it read before,
 * whether the library noticed at the start of a read pass (the recorder idle) or the recorder's
 * SIGBUS guard caught the fault of a read under way (the recorder busy with a flooding
 * producer: its reads of the ring heads go on without a size check). It never dies of the
 * signal. Windows cannot shrink a mapped section, and builds without the tool have nothing to
 * run: both skip, saying so. */
/* ctest: labels=unit;multiprocess;fault timeout=120 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#if defined(SHK_TEST_TOOL) && !defined(_WIN32)
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shk_test_tool.h"

#define CHILD_TIMEOUT_MS 90000

/* Starts `shmkit lens record NAME -o OUT --quiet` with stderr into ERR; its pid, or -1. */
static pid_t start_recorder(const char *name, const char *out, const char *err) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int null = open("/dev/null", O_WRONLY);
  if (fd < 0 || null < 0) _exit(126);
  dup2(fd, 2);
  dup2(null, 1);
  execl(SHK_TEST_TOOL, "shmkit", "lens", "record", name, "-o", out, "--quiet", (char *)NULL);
  _exit(127);
}

/* Waits up to ms for pid; kills it when it runs longer. Its waitpid status, or -1 (timed out). */
static int wait_for(pid_t pid, unsigned ms) {
  for (unsigned waited = 0;; waited += 10) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    if (waited >= ms) break;
    shk_test_sleep_ms(10);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

/* Zones the reader has taken from the segment so far (the producer's view of its counters). */
static uint64_t drained_zones(shk_lens *lens) {
  shk_lens_stats st;
  if (shk_lens_stats_get(lens, &st) != SHK_OK) return 0;
  return st.segment[SHK_LENS_ZONE].drained;
}

/* Waits up to ms until the reader has taken at least n zones. */
static bool await_drained(shk_lens *lens, uint64_t n, unsigned ms) {
  for (unsigned waited = 0; waited < ms; waited += 5) {
    if (drained_zones(lens) >= n) return true;
    shk_test_sleep_ms(5);
  }
  return false;
}

static void send_zones(shk_lens *lens, const char *name, int n) {
  for (int i = 0; i < n; i++) {
    shk_lens_zone z;
    shk_lens_zone_begin(lens, &z, name, 0x336699);
    shk_lens_zone_end(&z);
  }
}

/* Another producer process on the lens that sends bursts of zones, each enough to keep the
 * reader busy (a ring more than 1/8 full), until it is killed or faults on the shrunk segment. */
static pid_t start_flood(const char *name) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  shk_lens *lens = NULL;
  if (shk_lens_open(name, NULL, &lens) != SHK_OK) _exit(3);
  for (int round = 0; round < 100000; round++) {
    send_zones(lens, "flood", 64);
    usleep(500);
  }
  _exit(0);
}

static int shrink(const char *name, off_t size) {
  char os_name[96];
  snprintf(os_name, sizeof os_name, "/%s", name);
  int fd = shm_open(os_name, O_RDWR, 0);
  if (fd < 0) return -1;
  int rc = ftruncate(fd, size);
  close(fd);
  return rc;
}

/* What the recorder must have done once the segment shrank: exit 1 (not a signal), say why, and
 * leave a complete trace holding the zones it read before. Returns 0 or a line number. */
static int check_recorder_ended(int status, const char *out, const char *err) {
  char text[4096], trace[1 << 16];
  slurp(err, text, sizeof text);
  FILE *f = fopen(out, "rb");
  size_t n = 0;
  if (f) {
    /* The start (the zones read before) and the end (the closing of the event list). */
    n = fread(trace, 1, sizeof trace - 1, f);
    trace[n] = '\0';
    bool before = strstr(trace, "\"before-shrink\"") != NULL;
    char end[8] = "";
    if (fseek(f, -4, SEEK_END) == 0 && fread(end, 1, 4, f) == 4) end[4] = '\0';
    fclose(f);
    remove(out);
    if (!before) return __LINE__;
    if (strcmp(end, "\n]}\n") != 0) return __LINE__;
  } else {
    return __LINE__;
  }
  if (status == -1) return __LINE__; /* hung */
  if (WIFSIGNALED(status)) {
    fprintf(stderr, "the recorder died of signal %d\n", WTERMSIG(status));
    return __LINE__;
  }
  if (WEXITSTATUS(status) != 1) {
    fprintf(stderr, "the recorder exited %d; stderr: %s\n", WEXITSTATUS(status), text);
    return __LINE__;
  }
  if (!strstr(text, "shrank under the recorder")) {
    fprintf(stderr, "stderr: %s\n", text);
    return __LINE__;
  }
  return 0;
}

/* The recorder is idle (it has read everything and naps): its next read pass begins with the
 * size check, which finds the segment shrunk. */
SHK_CHILD_TEST(record_reports_a_segment_shrunk_while_it_waits, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  char name[64], out[96], err[96];
  shk_test_unique_name(name, sizeof name, "shr");
  shk_test_unique_name(out, sizeof out, "shr.json");
  shk_test_unique_name(err, sizeof err, "shr.err");
  shk_lens *lens = NULL;
  SHK_CHECK(shk_lens_open(name, NULL, &lens) == SHK_OK);
  send_zones(lens, "before-shrink", 4);
  pid_t rec = start_recorder(name, out, err);
  SHK_CHECK(rec > 0);
  SHK_CHECK(shk_lens_wait_reader(lens, 20000000000ull) == SHK_OK);
  SHK_CHECK(await_drained(lens, 4, 20000));
  shk_test_sleep_ms(100); /* nothing more comes: the recorder naps between looks */
  SHK_CHECK(shrink(name, 0) == 0);
  int status = wait_for(rec, 30000);
  shk_shm_unlink(name);
  int line = check_recorder_ended(status, out, err);
  if (line) fprintf(stderr, "check at line %d failed\n", line);
  _exit(line); /* the lens handle is left: closing it would touch the shrunk segment */
}

/* The recorder is busy (a producer floods it): it keeps reading the rings between passes, so the
 * shrink meets a read under way, which faults (SIGBUS) and is caught by the tool's guard; in the
 * rare case the shrink falls just before a pass, the size check finds it. Same outcome. */
SHK_CHILD_TEST(record_survives_a_segment_shrunk_while_it_reads, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  char name[64], out[96], err[96];
  shk_test_unique_name(name, sizeof name, "shb");
  shk_test_unique_name(out, sizeof out, "shb.json");
  shk_test_unique_name(err, sizeof err, "shb.err");
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.ring_bytes = 8192; /* the smallest rings: a burst of 64 zones keeps the reader busy */
  shk_lens *lens = NULL;
  SHK_CHECK(shk_lens_open(name, &o, &lens) == SHK_OK);
  send_zones(lens, "before-shrink", 4);
  pid_t rec = start_recorder(name, out, err);
  SHK_CHECK(rec > 0);
  SHK_CHECK(shk_lens_wait_reader(lens, 20000000000ull) == SHK_OK);
  SHK_CHECK(await_drained(lens, 4, 20000));
  pid_t flood = start_flood(name);
  SHK_CHECK(flood > 0);
  SHK_CHECK(await_drained(lens, 4 + 20 * 64, 20000)); /* flowing */
  SHK_CHECK(shrink(name, 0) == 0);
  int status = wait_for(rec, 30000);
  kill(flood, SIGKILL); /* it may have faulted already, writing to the shrunk segment */
  waitpid(flood, NULL, 0);
  shk_shm_unlink(name);
  int line = check_recorder_ended(status, out, err);
  if (line) fprintf(stderr, "check at line %d failed\n", line);
  _exit(line);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(record_reports_a_segment_shrunk_while_it_waits),
    cmocka_unit_test(record_survives_a_segment_shrunk_while_it_reads),
};
static const shk_test_child children[] = {
    SHK_TEST_CHILD(record_reports_a_segment_shrunk_while_it_waits),
    SHK_TEST_CHILD(record_survives_a_segment_shrunk_while_it_reads),
};
#else
static void nothing_to_shrink_here_skipped(void **state) {
  (void)state;
#ifdef _WIN32
  print_message("a mapped section cannot be shrunk on Windows: nothing to test\n");
#else
  print_message("built without the shmkit tool (SHK_BUILD_TOOLS=OFF): nothing to test\n");
#endif
  skip();
}
static const struct CMUnitTest tests[] = {cmocka_unit_test(nothing_to_shrink_here_skipped)};
static const shk_test_child children[] = {{NULL, NULL}};
#endif

SHK_TEST_MAIN(tests, children)
