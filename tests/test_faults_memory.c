/* ctest: labels=unit;fault timeout=60 internal */
/* The POSIX memory backend's fallbacks, each checked against the same memory as its first
 * choice. shk__os_prot_query on Linux reads what pages allow by the PROCMAP_QUERY ioctl (Linux
 * 6.11+) or, on older kernels, from the text of /proc/self/maps in a fixed buffer: the
 * injection point SHK__FAULT_MAPS_QUERY makes the ioctl fail with ENOTTY (an older kernel), and
 * every answer must be the expected one either way, at the edges of mappings, over holes, past
 * the last mapping, and for a mapping whose line in /proc/self/maps is longer than the
 * reader's buffer. shk__os_memory_peek reads with process_vm_readv, or through a pipe where
 * that is missing or forbidden (SHK__FAULT_MEMORY_READ fails it with ENOSYS / EPERM): the same
 * bytes, and SHK_EFAULT for any unreadable byte, either way. */
#include <stdio.h>
#include <string.h>

#include "os.h"
#include "os_faults.h"
#include "shk_test.h"

#if defined(__linux__)
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t ps(void) { return shk__os_caps_get()->page_size; }

typedef struct answer {
  int rc;
  int prot;
  bool uniform;
} answer;

/* The answer for [addr, addr+size), read by ioctl (text = false; the text where the kernel has
 * no ioctl) or from the text (text = true: every ioctl fails with ENOTTY). */
static answer query(void *addr, size_t size, bool text) {
  answer a = {0, -1, false};
  if (text) shk__fault_arm(SHK__FAULT_MAPS_QUERY, 1, ENOTTY, true);
  a.rc = shk__os_prot_query(addr, size, &a.prot, &a.uniform);
  unsigned failed = shk__fault_failures(SHK__FAULT_MAPS_QUERY);
  shk__fault_disarm_all();
  if (text && failed == 0) a.rc = -12345; /* the ioctl was not even tried: not the text read */
  return a;
}

/* Both ways give `rc` (and on SHK_OK, `prot` and `uniform`). */
static void expect(void *addr, size_t size, int rc, int prot, bool uniform) {
  for (int text = 0; text <= 1; text++) {
    answer a = query(addr, size, text != 0);
    if (a.rc != rc || (rc == SHK_OK && (a.prot != prot || a.uniform != uniform)))
      fprintf(stderr, "%s query of [%p, +%zu): %s prot %d uniform %d; expected %s %d %d\n",
              text ? "text" : "ioctl", addr, size, shk_error_name(a.rc), a.prot, a.uniform,
              shk_error_name(rc), prot, uniform);
    assert_int_equal(a.rc, rc);
    if (rc == SHK_OK) {
      assert_int_equal(a.prot, prot);
      assert_int_equal(a.uniform, uniform);
    }
  }
}

static unsigned char *map_pages(size_t n, int prot) {
  void *p = mmap(NULL, n * ps(), prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(p != MAP_FAILED);
  return p;
}

static void prot_of_one_mapping_and_its_pages_either_way(void **state) {
  (void)state;
  unsigned char *p = map_pages(4, PROT_READ | PROT_WRITE);
  expect(p, 4 * ps(), SHK_OK, SHK__OS_PROT_READ_WRITE, true);
  expect(p, ps(), SHK_OK, SHK__OS_PROT_READ_WRITE, true);            /* first page */
  expect(p + 3 * ps(), ps(), SHK_OK, SHK__OS_PROT_READ_WRITE, true); /* last page */
  expect(p + 5, 1, SHK_OK, SHK__OS_PROT_READ_WRITE, true);           /* within a page */
  munmap(p, 4 * ps());
}

static void mixed_protection_gives_the_intersection_and_not_uniform_either_way(void **state) {
  (void)state;
  unsigned char *p = map_pages(4, PROT_READ | PROT_WRITE);
  assert_int_equal(mprotect(p + ps(), ps(), PROT_READ), 0);
  assert_int_equal(mprotect(p + 2 * ps(), ps(), PROT_READ | PROT_EXEC), 0);
  expect(p, 4 * ps(), SHK_OK, SHK__OS_PROT_READ, false);
  expect(p + ps(), ps(), SHK_OK, SHK__OS_PROT_READ, true);
  expect(p + 2 * ps(), ps(), SHK_OK, SHK__OS_PROT_READ | SHK__OS_PROT_EXEC, true);
  expect(p + ps(), 2 * ps(), SHK_OK, SHK__OS_PROT_READ, false);
  expect(p + 3 * ps(), ps(), SHK_OK, SHK__OS_PROT_READ_WRITE, true);
  assert_int_equal(mprotect(p, ps(), PROT_NONE), 0);
  expect(p, ps(), SHK_OK, SHK__OS_PROT_NONE, true);
  expect(p, 2 * ps(), SHK_OK, SHK__OS_PROT_NONE, false);
  munmap(p, 4 * ps());
}

/* The last page of a mapping followed by a hole, the first page of the hole, a range that
 * starts in a hole and runs into a mapping, and one with a hole in its middle. */
static void holes_are_efault_at_their_exact_edges_either_way(void **state) {
  (void)state;
  unsigned char *p = map_pages(5, PROT_READ | PROT_WRITE);
  assert_int_equal(munmap(p + 2 * ps(), ps()), 0); /* [p, 2) mapped, hole, [3, 5) mapped */
  expect(p, 2 * ps(), SHK_OK, SHK__OS_PROT_READ_WRITE, true);
  expect(p + ps(), ps(), SHK_OK, SHK__OS_PROT_READ_WRITE, true);
  expect(p + ps(), ps() + 1, SHK_EFAULT, 0, false); /* one byte into the hole */
  expect(p + 2 * ps(), ps(), SHK_EFAULT, 0, false);
  expect(p + 2 * ps(), 2 * ps(), SHK_EFAULT, 0, false);
  expect(p, 5 * ps(), SHK_EFAULT, 0, false);
  expect(p + 3 * ps(), 2 * ps(), SHK_OK, SHK__OS_PROT_READ_WRITE, true);
  munmap(p, 2 * ps());
  munmap(p + 3 * ps(), 2 * ps());
}

/* Past every mapping of the process (the top of the address space): the text ends before the
 * range does. Argument errors come first, either way. */
static void a_range_past_the_last_mapping_is_efault_either_way(void **state) {
  (void)state;
  uintptr_t top = (UINTPTR_MAX - 2 * ps() + 1) & ~(uintptr_t)(ps() - 1);
  expect((void *)top, ps(), SHK_EFAULT, 0, false);
  int prot = 0;
  bool uniform = false;
  assert_int_equal(shk__os_prot_query((void *)top, 0, &prot, &uniform), SHK_EINVAL);
  assert_int_equal(shk__os_prot_query((void *)top, 4 * ps(), &prot, &uniform), SHK_EINVAL);
}

/* A file mapped from a path so long that its line in /proc/self/maps is longer than the text
 * reader's 4 KiB buffer, between two anonymous pages: its own pages, and the pages after it
 * (the rest of its line must be skipped, not read as lines). */
#define DIR_PART 200
static void a_mapping_whose_maps_line_is_longer_than_the_buffer_is_read_either_way(void **state) {
  (void)state;
  char path[4096];
  int n = snprintf(path, sizeof path, "/tmp/shkt-maps-%d", (int)getpid());
  int depth = 0;
  assert_int_equal(mkdir(path, 0700), 0);
  while (n + 1 + DIR_PART + 1 + 255 < 4096) {
    path[n++] = '/';
    memset(path + n, 'd', DIR_PART);
    n += DIR_PART;
    path[n] = '\0';
    assert_int_equal(mkdir(path, 0700), 0);
    depth++;
  }
  /* The file's name fills the path up to the longest one open() takes (PATH_MAX - 1): with the
   * address, permissions, offset, device and inode before it, the line passes 4096 bytes. */
  path[n++] = '/';
  size_t name_len = sizeof path - 1 - (size_t)n;
  if (name_len > 255) name_len = 255;
  memset(path + n, 'f', name_len);
  n += (int)name_len;
  path[n] = '\0';
  assert_true(n > 4096 - 40);
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, (off_t)ps()), 0);

  unsigned char *p = map_pages(3, PROT_READ | PROT_WRITE);
  void *f = mmap(p + ps(), ps(), PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
  close(fd);
  /* The names go now (the mapping stays): nothing is left behind if a check fails. */
  unlink(path);
  for (int i = 0; i <= depth; i++) {
    *strrchr(path, '/') = '\0';
    rmdir(path);
  }
  assert_true(f == p + ps());

  expect(p + ps(), ps(), SHK_OK, SHK__OS_PROT_READ, true);
  expect(p + 2 * ps(), ps(), SHK_OK, SHK__OS_PROT_READ_WRITE, true);
  expect(p, 3 * ps(), SHK_OK, SHK__OS_PROT_READ, false);
  expect(p + ps(), 2 * ps(), SHK_OK, SHK__OS_PROT_READ, false);
  munmap(p, 3 * ps());
}

/* shk__os_memory_peek, by process_vm_readv (0) or through the pipe (ENOSYS, EPERM). */
static int peek(const void *addr, void *buf, size_t n, int way) {
  if (way) shk__fault_arm(SHK__FAULT_MEMORY_READ, 1, way, true);
  int rc = shk__os_memory_peek(addr, buf, n);
  unsigned failed = shk__fault_failures(SHK__FAULT_MEMORY_READ);
  shk__fault_disarm_all();
  if (way && failed == 0) return -12345; /* the pipe was not the way taken */
  return rc;
}

static void peek_reads_the_same_bytes_and_refuses_unreadable_ones_either_way(void **state) {
  (void)state;
  static const int ways[] = {0, ENOSYS, EPERM};
  unsigned char *p = map_pages(3, PROT_READ | PROT_WRITE);
  for (size_t i = 0; i < 2 * ps(); i++) p[i] = (unsigned char)(i * 7 + 1);
  assert_int_equal(mprotect(p + ps(), ps(), PROT_READ), 0); /* readable, not writable */
  assert_int_equal(mprotect(p + 2 * ps(), ps(), PROT_NONE), 0);
  static unsigned char got[8192 + 16];
  for (size_t w = 0; w < sizeof ways / sizeof ways[0]; w++) {
    memset(got, 0, sizeof got);
    /* Both pages, more than the pipe's 512-byte steps, from an odd address. */
    assert_int_equal(peek(p + 3, got, 2 * ps() - 3, ways[w]), SHK_OK);
    assert_memory_equal(got, p + 3, 2 * ps() - 3);
    assert_int_equal(peek(p, got, 1, ways[w]), SHK_OK);
    assert_int_equal(got[0], p[0]);
    assert_int_equal(shk__os_memory_peek(p, got, 0), SHK_OK); /* nothing to read */
    /* The last readable byte, then one more. */
    assert_int_equal(peek(p + 2 * ps() - 1, got, 1, ways[w]), SHK_OK);
    assert_int_equal(peek(p + 2 * ps() - 1, got, 2, ways[w]), SHK_EFAULT);
    assert_int_equal(peek(p + 2 * ps(), got, 16, ways[w]), SHK_EFAULT);
    assert_int_equal(peek(p + ps() + 100, got, ps(), ways[w]), SHK_EFAULT);
  }
  munmap(p, 3 * ps());
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(prot_of_one_mapping_and_its_pages_either_way),
    cmocka_unit_test(peek_reads_the_same_bytes_and_refuses_unreadable_ones_either_way),
    cmocka_unit_test(mixed_protection_gives_the_intersection_and_not_uniform_either_way),
    cmocka_unit_test(holes_are_efault_at_their_exact_edges_either_way),
    cmocka_unit_test(a_range_past_the_last_mapping_is_efault_either_way),
    cmocka_unit_test(a_mapping_whose_maps_line_is_longer_than_the_buffer_is_read_either_way),
};

#else

/* Elsewhere there are no such fallbacks to compare (Windows: VirtualQuery, ReadProcessMemory). */
static void skipped_no_proc_self_maps_here(void **state) {
  (void)state;
  fprintf(stderr, "SKIPPED: /proc/self/maps, PROCMAP_QUERY and process_vm_readv are Linux only\n");
  skip();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(skipped_no_proc_self_maps_here),
};

#endif

static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
