/* ctest: labels=unit;fault timeout=180 internal */
/* Fault walks (src/os_faults.h) of the library's own heap allocations (SHK__FAULT_ALLOC): every
 * malloc, calloc or realloc under a public call that runs on the calling thread alone (no worker
 * or watcher thread, whose allocations would take the failure instead) fails in turn. Each
 * failure gives SHK_ENOMEM, leaves no name, mapping or descriptor behind (and no memory: the
 * sanitizer and valgrind runs of this test see leaks), and the call works again after. */
#include <stdio.h>
#include <string.h>

#include "shk_test_faults.h"
#include "shmkit.h"

#define CHILD_TIMEOUT_MS 120000

static const int enomem[] = {SHK_ENOMEM};

/* Walks `call` through each allocation it makes, failing only that one and then all from it on. */
static int walk(const char *what, int (*call)(void *), void *ctx, int (*check)(void *)) {
  shk_fault_case fc = {what, SHK__FAULT_ALLOC, call, ctx, enomem, SHK__ARRAY_LEN(enomem),
                       false, false, check};
  SHK_FAULT_WALK(&fc, true);
  fc.sticky = true;
  SHK_FAULT_WALK(&fc, true);
  return 0;
}

static int shm_create_and_open(void *ctx) {
  shk_fault_named *c = ctx;
  shk_shm *shm = NULL, *again = NULL;
  int rc = shk_shm_create(c->name, 4096, &shm);
  if (rc != SHK_OK) return shm == NULL ? rc : -9999;
  rc = shk_shm_open(c->name, SHK_SHM_READ_WRITE, &again);
  if (rc == SHK_OK && !again) rc = -9999;
  shk_shm_close(again);
  shk_shm_close(shm);
  int unlinked = shk_shm_unlink(c->name);
  return rc != SHK_OK ? rc : unlinked;
}

SHK_CHILD_TEST(shm_create_and_open_fail_cleanly_without_memory, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  shk_fault_named c;
  shk_test_unique_name(c.name, sizeof c.name, "fa");
  return walk("shk_shm_create + shk_shm_open", shm_create_and_open, &c, shk_fault_name_is_gone);
}

/* Buffers of each built-in allocator, a view, a region and a consumed range. */
static int buffers(void *ctx) {
  (void)ctx;
  static unsigned char outside[256];
  static const char *const allocators[] = {NULL, "aligned", "pages", "shm"};
  for (size_t i = 0; i < SHK__ARRAY_LEN(allocators); i++) {
    shk_buf_options o;
    shk_buf_options_init(&o);
    o.allocator = allocators[i];
    o.alignment = allocators[i] && strcmp(allocators[i], "aligned") == 0 ? 64 : 0;
    shk_buf *buf = NULL;
    int rc = shk_buf_create(100, sizeof(double), &o, &buf);
    if (rc != SHK_OK) return buf == NULL ? rc : -9999;
    shk_buf_view_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.count = 10;
    spec.stride = 80;
    spec.type = SHK_BUF_F64;
    shk_buf_view *view = NULL;
    rc = shk_buf_view_create(buf, &spec, &view);
    shk_buf_view_free(view);
    shk_buf_release(buf);
    if (rc != SHK_OK) return rc;
  }
  shk_buf *consumed = NULL;
  int rc = shk_buf_consume(outside, sizeof outside, 1, NULL, &consumed);
  if (rc != SHK_OK) return consumed == NULL ? rc : -9999;
  shk_buf_release(consumed);
  return SHK_OK;
}

SHK_CHILD_TEST(buffers_and_views_fail_cleanly_without_memory, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return walk("shk_buf_create / view / consume", buffers, NULL, NULL);
}

static void count_destroy(const shk_buf_info *info, void *user) {
  (void)info;
  ++*(int *)user;
}

/* Buffers with a destroy callback or a delay (whose fields are a block of their own) on each
 * way of creation: a parked object taken back, a new one of each kind of allocator, a consume.
 * Each buffer made has its callback run once, a failed one none. */
static int buffers_with_callbacks(void *ctx) {
  (void)ctx;
  static unsigned char outside[256];
  int calls = 0, made = 0;
  shk_buf *plain = NULL;
  int rc = shk_buf_create(64, 1, NULL, &plain); /* parked by its release, for the next create */
  if (rc != SHK_OK) return plain == NULL ? rc : -9999;
  shk_buf_release(plain);
  static const char *const allocators[] = {NULL, NULL, "aligned", "pages", NULL};
  for (size_t i = 0; i < SHK__ARRAY_LEN(allocators) && rc == SHK_OK; i++) {
    shk_buf_options o;
    shk_buf_options_init(&o);
    o.allocator = allocators[i];
    o.on_destroy = count_destroy;
    o.on_destroy_user = &calls;
    o.delayed_free = i == 1;
    shk_buf *buf = NULL;
    rc = i + 1 < SHK__ARRAY_LEN(allocators) ? shk_buf_create(64, 1, &o, &buf)
                                            : shk_buf_consume(outside, sizeof outside, 1, &o, &buf);
    if (rc != SHK_OK && buf) return -9999;
    made += rc == SHK_OK;
    shk_buf_release(buf);
  }
  shk_buf_free_deferred_all(NULL);
  return calls != made ? -9998 : rc;
}

/* Nothing of a failed walk step is live or deferred. */
static int no_buffer_left(void *ctx) {
  (void)ctx;
  size_t deferred = 0;
  shk_buf_deferred_list(NULL, 0, &deferred);
  return shk_buf_live_count() == 0 && deferred == 0 ? 0 : 1;
}

SHK_CHILD_TEST(buffers_with_callbacks_and_delays_fail_cleanly_without_memory, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return walk("shk_buf_create / consume with a callback or delay", buffers_with_callbacks, NULL,
              no_buffer_left);
}

/* A lens, a reader, a zone and a drain. */
static int lens_round(void *ctx) {
  shk_fault_named *c = ctx;
  shk_lens *lens = NULL;
  int rc = shk_lens_open(c->name, NULL, &lens);
  if (rc != SHK_OK) return lens == NULL ? rc : -9999;
  shk_lens_reader *reader = NULL;
  rc = shk_lens_reader_open(c->name, NULL, &reader);
  if (rc == SHK_OK) {
    shk_lens_zone z;
    shk_lens_zone_begin(lens, &z, "zone", 0);
    shk_lens_zone_end(&z);
    shk_lens_event e;
    while (shk_lens_reader_next(reader, &e) == SHK_OK) {
    }
  } else if (reader) {
    rc = -9999;
  }
  shk_lens_reader_close(reader);
  shk_lens_close(lens);
  return rc;
}

SHK_CHILD_TEST(lens_and_reader_open_fail_cleanly_without_memory, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  shk_fault_named c;
  shk_test_unique_name(c.name, sizeof c.name, "fl");
  return walk("shk_lens_open + shk_lens_reader_open", lens_round, &c, shk_fault_name_is_gone);
}

static int count_chunk(const shk_task_chunk *chunk, shk_task_out *out) {
  uint64_t n = chunk->size;
  return shk_task_out_write(out, &n, sizeof n);
}

/* An inline task run: the chunks run on the calling thread. */
static int inline_task(void *ctx) {
  (void)ctx;
  static unsigned char input[4096];
  shk_task_options o;
  shk_task_options_init(&o);
  o.chunks = 4;
  o.mode = SHK_TASK_INLINE;
  shk_task_results *res = NULL;
  int rc = shk_task_run(input, sizeof input, count_chunk, &o, &res);
  if (rc == SHK_OK && shk_task_results_count(res) != 4) rc = -9999;
  if (rc != SHK_OK && rc != -9999 && res) rc = -9998; /* no results without success */
  shk_task_results_free(res);
  return rc;
}

SHK_CHILD_TEST(inline_task_runs_fail_cleanly_without_memory, CHILD_TIMEOUT_MS) {
  (void)argc, (void)argv;
  return walk("shk_task_run (inline)", inline_task, NULL, NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(shm_create_and_open_fail_cleanly_without_memory),
    cmocka_unit_test(buffers_and_views_fail_cleanly_without_memory),
    cmocka_unit_test(buffers_with_callbacks_and_delays_fail_cleanly_without_memory),
    cmocka_unit_test(lens_and_reader_open_fail_cleanly_without_memory),
    cmocka_unit_test(inline_task_runs_fail_cleanly_without_memory),
};

static const shk_test_child children[] = {
    SHK_TEST_CHILD(shm_create_and_open_fail_cleanly_without_memory),
    SHK_TEST_CHILD(buffers_and_views_fail_cleanly_without_memory),
    SHK_TEST_CHILD(buffers_with_callbacks_and_delays_fail_cleanly_without_memory),
    SHK_TEST_CHILD(lens_and_reader_open_fail_cleanly_without_memory),
    SHK_TEST_CHILD(inline_task_runs_fail_cleanly_without_memory),
};

SHK_TEST_MAIN(tests, children)
