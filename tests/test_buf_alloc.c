/* The allocator registry and the built-in allocators: user allocators registered at run time,
 * every registry error, aligned/pages/shm properties, and a shm buffer opened by name in a
 * child process. */
/* ctest: labels=unit;multiprocess timeout=120 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 30000

/* A user allocator that counts its calls and reports a shifted address. */
typedef struct counting {
  int allocs, frees, consumes;
  size_t last_alignment;
  const char *last_name;
} counting;

static int counting_alloc(void *user, const shk_buf_alloc_request *req, shk_buf_block *out) {
  counting *c = user;
  c->allocs++;
  c->last_alignment = req->alignment;
  c->last_name = req->name;
  out->ptr = malloc(req->size);
  out->state = c;
  return out->ptr ? SHK_OK : SHK_ENOMEM;
}

static void counting_free(void *user, const shk_buf_block *block, size_t size) {
  (void)size;
  counting *c = user;
  assert_ptr_equal(block->state, c);
  c->frees++;
  free(block->ptr);
}

static int counting_consume(void *user, void *ptr, size_t size, bool owned, shk_buf_block *out) {
  (void)ptr;
  (void)owned;
  counting *c = user;
  c->consumes++;
  out->state = c;
  return size == 13 ? SHK_EACCES : SHK_OK; /* refuses one size, to test refusal */
}

static uintptr_t counting_address(void *user, const shk_buf_block *block) {
  (void)user;
  return (uintptr_t)block->ptr + 1;
}

static int failing_alloc(void *user, const shk_buf_alloc_request *req, shk_buf_block *out) {
  (void)user;
  (void)req;
  (void)out;
  return SHK_ENOMEM;
}

static int null_alloc(void *user, const shk_buf_alloc_request *req, shk_buf_block *out) {
  (void)user;
  (void)req;
  out->ptr = NULL;
  return SHK_OK;
}

static shk_buf_allocator counting_table(counting *c) {
  shk_buf_allocator t = {SHK_BUF_ALLOCATOR_VERSION, counting_alloc, counting_free, counting_consume,
                         counting_address, c};
  return t;
}

static void a_registered_allocator_makes_and_frees_buffers(void **state) {
  (void)state;
  counting c = {0};
  shk_buf_allocator t = counting_table(&c);
  assert_int_equal(shk_buf_allocator_register("counting", &t), SHK_OK);
  assert_true(shk_buf_allocator_exists("counting"));
  shk_buf *buf = NULL;
  shk_buf_options o = {.allocator = "counting", .alignment = 32, .name = "label"};
  assert_int_equal(shk_buf_create(4, 4, &o, &buf), SHK_OK);
  assert_int_equal(c.allocs, 1);
  assert_int_equal(c.last_alignment, 32);
  assert_string_equal(c.last_name, "label");
  assert_string_equal(shk_buf_allocator_name(buf), "counting");
  assert_int_equal(shk_buf_address(buf), (uintptr_t)shk_buf_data(buf) + 1);
  /* Live buffers pin their allocator. */
  assert_int_equal(shk_buf_allocator_unregister("counting"), SHK_EBUSY);
  shk_buf_release(buf);
  assert_int_equal(c.frees, 1);
  assert_int_equal(shk_buf_allocator_unregister("counting"), SHK_OK);
  assert_false(shk_buf_allocator_exists("counting"));
  assert_int_equal(shk_buf_create(4, 4, &o, &buf), SHK_ENOENT);
}

static void register_refuses_bad_tables_and_names(void **state) {
  (void)state;
  counting c = {0};
  shk_buf_allocator t = counting_table(&c);
  assert_int_equal(shk_buf_allocator_register("x", NULL), SHK_EINVAL);
  assert_int_equal(shk_buf_allocator_register(NULL, &t), SHK_EINVAL);
  assert_int_equal(shk_buf_allocator_register("", &t), SHK_ENAME);
  assert_int_equal(shk_buf_allocator_register("bad name", &t), SHK_ENAME);
  shk_buf_allocator v = t;
  v.struct_size = 7; /* below the first published layout, and not a version of 0.1.x */
  assert_int_equal(shk_buf_allocator_register("v7", &v), SHK_EINVAL);
  shk_buf_allocator no_free = t;
  no_free.free = NULL;
  assert_int_equal(shk_buf_allocator_register("nofree", &no_free), SHK_EINVAL);
  shk_buf_allocator no_alloc = t;
  no_alloc.alloc = NULL;
  assert_int_equal(shk_buf_allocator_register("noalloc", &no_alloc), SHK_EINVAL);
  assert_int_equal(shk_buf_allocator_register("heap", &t), SHK_EEXIST);
  assert_int_equal(shk_buf_allocator_register("twice", &t), SHK_OK);
  assert_int_equal(shk_buf_allocator_register("twice", &t), SHK_EEXIST);
  assert_int_equal(shk_buf_allocator_unregister("twice"), SHK_OK);
  assert_false(shk_buf_allocator_exists("v99"));
  assert_false(shk_buf_allocator_exists(NULL));
}

static void unregister_refuses_builtins_and_unknown_names(void **state) {
  (void)state;
  const char *builtins[] = {"heap", "aligned", "pages", "shm"};
  for (int i = 0; i < 4; i++) {
    assert_true(shk_buf_allocator_exists(builtins[i]));
    assert_int_equal(shk_buf_allocator_unregister(builtins[i]), SHK_EACCES);
  }
  assert_int_equal(shk_buf_allocator_unregister("never-registered"), SHK_ENOENT);
  assert_int_equal(shk_buf_allocator_unregister(NULL), SHK_EINVAL);
}

static void allocator_failures_reach_the_caller_and_leave_nothing(void **state) {
  (void)state;
  shk_buf_allocator fail = {SHK_BUF_ALLOCATOR_VERSION, failing_alloc, counting_free, NULL, NULL,
                            NULL};
  shk_buf_allocator none = {SHK_BUF_ALLOCATOR_VERSION, null_alloc, counting_free, NULL, NULL, NULL};
  assert_int_equal(shk_buf_allocator_register("failing", &fail), SHK_OK);
  assert_int_equal(shk_buf_allocator_register("null", &none), SHK_OK);
  size_t live = shk_buf_live_count();
  shk_buf *buf = (shk_buf *)1;
  shk_buf_options o = {.allocator = "failing"};
  assert_int_equal(shk_buf_create(1, 1, &o, &buf), SHK_ENOMEM);
  assert_null(buf);
  o.allocator = "null";
  assert_int_equal(shk_buf_create(1, 1, &o, &buf), SHK_ENOMEM);
  assert_int_equal(shk_buf_live_count(), live);
  /* The failed creations did not pin the allocators. */
  assert_int_equal(shk_buf_allocator_unregister("failing"), SHK_OK);
  assert_int_equal(shk_buf_allocator_unregister("null"), SHK_OK);
}

static void consume_asks_the_allocator_and_honours_a_refusal(void **state) {
  (void)state;
  counting c = {0};
  shk_buf_allocator t = counting_table(&c);
  assert_int_equal(shk_buf_allocator_register("counting2", &t), SHK_OK);
  unsigned char *mem = malloc(64);
  shk_buf *buf = (shk_buf *)1;
  shk_buf_options o = {.allocator = "counting2"};
  assert_int_equal(shk_buf_consume(mem, 13, 1, &o, &buf), SHK_EACCES);
  assert_null(buf);
  assert_int_equal(shk_buf_consume(mem, 64, 1, &o, &buf), SHK_OK);
  assert_int_equal(c.consumes, 2);
  shk_buf_release(buf);
  assert_int_equal(c.frees, 0); /* not handed over: the caller still owns mem */
  o.take_ownership = true;
  assert_int_equal(shk_buf_consume(mem, 64, 1, &o, &buf), SHK_OK);
  shk_buf_release(buf);
  assert_int_equal(c.frees, 1); /* handed over: freed once, by the allocator */
  assert_int_equal(shk_buf_allocator_unregister("counting2"), SHK_OK);
}

static void aligned_buffers_honour_the_alignment(void **state) {
  (void)state;
  size_t aligns[] = {0, 16, 64, 256, 4096};
  for (size_t i = 0; i < 5; i++) {
    shk_buf *buf = NULL;
    shk_buf_options o = {.allocator = "aligned", .alignment = aligns[i]};
    assert_int_equal(shk_buf_create(3, 7, &o, &buf), SHK_OK);
    size_t want = aligns[i] ? aligns[i] : 64;
    assert_int_equal(shk_buf_address(buf) % want, 0);
    memset(shk_buf_data(buf), 1, shk_buf_size(buf));
    shk_buf_release(buf);
  }
}

static void pages_buffers_are_whole_pages(void **state) {
  (void)state;
  shk_buf *buf = NULL;
  shk_buf_options o = {.allocator = "pages", .init = SHK_BUF_INIT_ZERO};
  assert_int_equal(shk_buf_create(100, 1, &o, &buf), SHK_OK);
  assert_int_equal(shk_buf_address(buf) % 4096, 0);
  assert_int_equal(shk_buf_size(buf), 100);
  /* The rest of the page belongs to the buffer too: no neighbour shares it. */
  unsigned char *p = shk_buf_data(buf);
  for (size_t i = 0; i < 4096; i++) assert_int_equal(p[i], 0);
  memset(p, 0xAA, 4096);
  shk_buf_release(buf);
}

static void pages_consume_accepts_only_page_aligned_memory(void **state) {
  (void)state;
  unsigned char *mem = malloc(3 * 4096);
  assert_non_null(mem);
  unsigned char *page = mem + (4096 - (uintptr_t)mem % 4096) % 4096;
  shk_buf *buf = NULL;
  shk_buf_options o = {.allocator = "pages"};
  assert_int_equal(shk_buf_consume(page + 1, 8, 1, &o, &buf), SHK_EINVAL);
  assert_null(buf);
  assert_int_equal(shk_buf_consume(page, 4096, 1, &o, &buf), SHK_OK);
  shk_buf_release(buf);
  free(mem);
}

static void shm_buffers_have_a_segment_name(void **state) {
  (void)state;
  shk_buf *buf = NULL;
  shk_buf_options o = {.allocator = "shm"};
  assert_int_equal(shk_buf_create(10, 10, &o, &buf), SHK_OK);
  const char *name = shk_buf_segment_name(buf);
  assert_non_null(name);
  assert_int_equal(shk_shm_name_check(name), SHK_OK);
  char copy[64];
  snprintf(copy, sizeof copy, "%s", name);
  shk_buf_release(buf);
  /* The creator removes the name with the buffer. */
  shk_shm *shm = (shk_shm *)1;
  assert_int_equal(shk_shm_open(copy, SHK_SHM_READ_ONLY, &shm), SHK_ENOENT);
}

static void shm_buffers_use_a_chosen_name_once(void **state) {
  (void)state;
  char name[64];
  shk_test_unique_name(name, sizeof name, "bn");
  shk_buf *a = NULL, *b = (shk_buf *)1;
  shk_buf_options o = {.allocator = "shm", .name = name};
  assert_int_equal(shk_buf_create(1, 64, &o, &a), SHK_OK);
  assert_string_equal(shk_buf_segment_name(a), name);
  assert_int_equal(shk_buf_create(1, 64, &o, &b), SHK_EEXIST);
  assert_null(b);
  shk_buf_options bad = {.allocator = "shm", .name = "bad/name"};
  assert_int_equal(shk_buf_create(1, 64, &bad, &b), SHK_ENAME);
  shk_buf_release(a);
}

static void shm_consume_wraps_part_of_a_segment_without_owning_it(void **state) {
  (void)state;
  shk_shm *shm = NULL;
  assert_int_equal(shk_shm_create_anonymous(8192, &shm), SHK_OK);
  unsigned char *p = shk_shm_data(shm);
  shk_buf *buf = NULL;
  shk_buf_options o = {.allocator = "shm"};
  assert_int_equal(shk_buf_consume(p + 4096, 100, 1, &o, &buf), SHK_OK);
  assert_true(shk_buf_consumed(buf));
  assert_null(shk_buf_segment_name(buf));
  shk_buf_release(buf);
  o.take_ownership = true;
  assert_int_equal(shk_buf_consume(p, 100, 1, &o, &buf), SHK_EUNSUPPORTED);
  unsigned char local[16];
  o.take_ownership = false;
  assert_int_equal(shk_buf_consume(local, sizeof local, 1, &o, &buf), SHK_EINVAL);
  shk_shm_close(shm);
}

/* ---- across processes ---- */

static int child_checks_and_answers(int argc, char **argv) {
  if (argc < 1) return 10;
  shk_shm *shm = NULL;
  if (shk_shm_open(argv[0], SHK_SHM_READ_WRITE, &shm) != SHK_OK) return 11;
  unsigned char *p = shk_shm_data(shm);
  for (int i = 0; i < 1000; i++)
    if (p[i] != (unsigned char)(i * 7)) return 12;
  strcpy((char *)p + 1000, "seen by the child");
  shk_shm_close(shm);
  return 0;
}

static void a_child_process_opens_a_shm_buffer_by_name(void **state) {
  (void)state;
  shk_buf *buf = NULL;
  shk_buf_options o = {.allocator = "shm"};
  assert_int_equal(shk_buf_create(2000, 1, &o, &buf), SHK_OK);
  unsigned char *p = shk_buf_data(buf);
  for (int i = 0; i < 1000; i++) p[i] = (unsigned char)(i * 7);
  const char *args[] = {shk_buf_segment_name(buf)};
  shk_test_run_child_ok("checks_and_answers", 1, args, CHILD_TIMEOUT_MS);
  assert_string_equal((char *)p + 1000, "seen by the child");
  shk_buf_release(buf);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_registered_allocator_makes_and_frees_buffers),
    cmocka_unit_test(register_refuses_bad_tables_and_names),
    cmocka_unit_test(unregister_refuses_builtins_and_unknown_names),
    cmocka_unit_test(allocator_failures_reach_the_caller_and_leave_nothing),
    cmocka_unit_test(consume_asks_the_allocator_and_honours_a_refusal),
    cmocka_unit_test(aligned_buffers_honour_the_alignment),
    cmocka_unit_test(pages_buffers_are_whole_pages),
    cmocka_unit_test(pages_consume_accepts_only_page_aligned_memory),
    cmocka_unit_test(shm_buffers_have_a_segment_name),
    cmocka_unit_test(shm_buffers_use_a_chosen_name_once),
    cmocka_unit_test(shm_consume_wraps_part_of_a_segment_without_owning_it),
    cmocka_unit_test(a_child_process_opens_a_shm_buffer_by_name),
};

static const shk_test_child children[] = {
    {"checks_and_answers", child_checks_and_answers},
};

SHK_TEST_MAIN(tests, children)
