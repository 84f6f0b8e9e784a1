/* Every options and table struct follows the rule of shmkit/options.h: frozen copies of older
 * layouts (0.1.x version numbers, the first struct_size layouts) still work, a newer caller's
 * struct is accepted when its unknown fields are zero and refused otherwise, a zero-initialised
 * struct works as its header says, NULL means the defaults, init fills exactly the caller's
 * size. Plus the const handles that were written through. */
/* ctest: labels=unit timeout=60 */
#include <stdlib.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

/* A caller built against a newer header: the struct of this one plus a field this library does
 * not know. */
/* Any caller's struct, as the library's pointer type. */
#define AS(type, p) ((const type *)(const void *)(p))

#define NEWER(type) \
  struct {          \
    type base;      \
    uint64_t future; \
  }

/* ---- shk_task_options ------------------------------------------------------------------ */

/* The 0.2.0 layout, frozen: the first with struct_size. */
typedef struct task_options_0_2 {
  uint32_t struct_size;
  size_t chunks;
  unsigned workers;
  shk_task_mode mode;
  size_t halo;
  size_t item_size;
  const void *arg;
  size_t arg_size;
  uint32_t timeout_ms;
  shk_task_progress_fn progress;
  void *progress_user;
  const char *module_path;
  const char *function_name;
} task_options_0_2;

static int nothing(const shk_task_chunk *chunk, shk_task_out *out) {
  (void)chunk;
  (void)out;
  return 0;
}

/* The number of chunks a call made with these options ran (inline), or the error. */
static int chunks_run(const void *opts) {
  static const char data[64];
  shk_task_results *r = NULL;
  int rc = shk_task_run(data, sizeof data, nothing, opts, &r);
  if (rc != SHK_OK) return rc;
  int n = (int)shk_task_results_count(r);
  shk_task_results_free(r);
  return n;
}

static void task_options_follow_the_rule(void **state) {
  (void)state;
  shk_task_options o;
  memset(&o, 0x77, sizeof o);
  shk_task_options_init(&o);
  assert_int_equal(o.struct_size, sizeof o);
  assert_int_equal(o.chunks, 0);
  assert_null(o.module_path);
  shk_task_options_init(NULL);

  o.mode = SHK_TASK_INLINE;
  o.chunks = 3;
  assert_int_equal(chunks_run(&o), 3);

  task_options_0_2 frozen = {sizeof frozen, 5, 0, SHK_TASK_INLINE, 0, 0, NULL, 0, 0, NULL, NULL,
                             NULL, NULL};
  assert_int_equal(chunks_run(&frozen), 5);

  shk_task_options zero = {.mode = SHK_TASK_INLINE, .chunks = 4}; /* struct_size 0 */
  assert_int_equal(chunks_run(&zero), 4);

  NEWER(shk_task_options) newer;
  memset(&newer, 0, sizeof newer);
  shk_task_options_init_size(&newer.base, sizeof newer);
  assert_int_equal(newer.base.struct_size, sizeof newer);
  newer.base.mode = SHK_TASK_INLINE;
  newer.base.chunks = 6;
  assert_int_equal(chunks_run(&newer), 6);
  newer.future = 1;
  assert_int_equal(chunks_run(&newer), SHK_EINVAL);

  o.struct_size = 3;
  assert_int_equal(chunks_run(&o), SHK_EINVAL);
  /* With a pool too. */
  shk_task_pool *pool = NULL;
  assert_int_equal(shk_task_pool_create(1, SHK_TASK_INLINE, &pool), SHK_OK);
  shk_task_results *r = NULL;
  static const char data[8];
  assert_int_equal(shk_task_pool_run(pool, data, sizeof data, nothing, &o, &r), SHK_EINVAL);
  assert_int_equal(shk_task_pool_run(pool, data, sizeof data, nothing, AS(shk_task_options, &newer), &r), SHK_EINVAL);
  newer.future = 0;
  assert_int_equal(shk_task_pool_run(pool, data, sizeof data, nothing, AS(shk_task_options, &newer), &r), SHK_OK);
  assert_int_equal(shk_task_results_count(r), 6);
  shk_task_results_free(r);
  shk_task_pool_free(pool);
}

static void task_options_null_means_the_defaults(void **state) {
  (void)state;
  shk_task_pool *pool = NULL;
  assert_int_equal(shk_task_pool_create(2, SHK_TASK_THREADS, &pool), SHK_OK);
  static const char data[8];
  shk_task_results *r = NULL;
  assert_int_equal(shk_task_pool_run(pool, data, sizeof data, nothing, NULL, &r), SHK_OK);
  assert_int_equal(shk_task_results_count(r), 2); /* one chunk per worker */
  shk_task_results_free(r);
  shk_task_pool_free(pool);
}

/* ---- shk_buf_options and shk_buf_allocator ------------------------------------------- */

typedef struct buf_options_0_2 {
  uint32_t struct_size;
  const char *allocator;
  shk_buf_init init;
  unsigned char init_byte;
  size_t alignment;
  const char *name;
  shk_buf_destroy_fn on_destroy;
  void *on_destroy_user;
  bool delayed_free;
  bool take_ownership;
} buf_options_0_2;

/* The first byte of a 4-byte buffer made with these options, or the error. */
static int first_byte(const void *opts) {
  shk_buf *b = NULL;
  int rc = shk_buf_create(4, 1, opts, &b);
  if (rc != SHK_OK) return rc;
  int byte = ((unsigned char *)shk_buf_data(b))[0];
  shk_buf_release(b);
  return byte;
}

static void buf_options_follow_the_rule(void **state) {
  (void)state;
  shk_buf_options o;
  memset(&o, 0x77, sizeof o);
  shk_buf_options_init(&o);
  assert_int_equal(o.struct_size, sizeof o);
  assert_null(o.allocator);
  assert_int_equal(o.init, SHK_BUF_INIT_NONE);
  shk_buf_options_init(NULL);
  o.init = SHK_BUF_INIT_BYTE;
  o.init_byte = 'A';
  assert_int_equal(first_byte(&o), 'A');

  buf_options_0_2 frozen = {sizeof frozen, "aligned", SHK_BUF_INIT_BYTE, 'B', 0, NULL,
                            NULL, NULL, false, false};
  assert_int_equal(first_byte(&frozen), 'B');

  shk_buf_options zero = {.init = SHK_BUF_INIT_BYTE, .init_byte = 'C'};
  assert_int_equal(first_byte(&zero), 'C');

  NEWER(shk_buf_options) newer;
  shk_buf_options_init_size(&newer.base, sizeof newer);
  newer.base.init = SHK_BUF_INIT_BYTE;
  newer.base.init_byte = 'D';
  assert_int_equal(first_byte(&newer), 'D');
  newer.future = 1;
  assert_int_equal(first_byte(&newer), SHK_EINVAL);
  char mem[16];
  shk_buf *b = NULL;
  assert_int_equal(shk_buf_consume(mem, sizeof mem, 1, AS(shk_buf_options, &newer), &b), SHK_EINVAL);
  assert_null(b);
  assert_int_equal(shk_buf_create(4, 1, NULL, &b), SHK_OK);
  shk_buf *copy = NULL;
  assert_int_equal(shk_buf_region_new(b, 0, 2, AS(shk_buf_options, &newer), &copy), SHK_EINVAL);
  newer.future = 0;
  assert_int_equal(shk_buf_region_new(b, 0, 2, AS(shk_buf_options, &newer), &copy), SHK_OK);
  shk_buf_release(copy);
  shk_buf_release(b);
  newer.base.init = SHK_BUF_INIT_NONE; /* consume takes no init */
  assert_int_equal(shk_buf_consume(mem, sizeof mem, 1, AS(shk_buf_options, &newer), &b), SHK_OK);
  shk_buf_release(b);

  o.struct_size = 5;
  assert_int_equal(first_byte(&o), SHK_EINVAL);
  assert_int_equal(shk_buf_consume(mem, sizeof mem, 1, &o, &b), SHK_EINVAL);
}

static int allocs;
static int count_alloc(void *user, const shk_buf_alloc_request *req, shk_buf_block *out) {
  (void)user;
  allocs++;
  out->ptr = malloc(req->size);
  out->state = NULL;
  out->zeroed = false;
  return out->ptr ? SHK_OK : SHK_ENOMEM;
}
static void count_free(void *user, const shk_buf_block *block, size_t size) {
  (void)user;
  (void)size;
  free(block->ptr);
}

/* The table as 0.1.x had it: an int version first. */
typedef struct allocator_0_1 {
  int version;
  int (*alloc)(void *user, const shk_buf_alloc_request *req, shk_buf_block *out);
  void (*free)(void *user, const shk_buf_block *block, size_t size);
  int (*consume)(void *user, void *ptr, size_t size, bool owned, shk_buf_block *out);
  uintptr_t (*address)(void *user, const shk_buf_block *block);
  void *user;
} allocator_0_1;

#define NOT_FROM_TABLE (-1000)

/* Registers the table as `name`, makes and frees one buffer with it: the register code, or
 * NOT_FROM_TABLE when the buffer did not come from the table's alloc. */
static int use_allocator(const char *name, const void *table) {
  int rc = shk_buf_allocator_register(name, table);
  if (rc != SHK_OK) return rc;
  int before = allocs;
  shk_buf_options o;
  shk_buf_options_init(&o);
  o.allocator = name;
  shk_buf *b = NULL;
  rc = shk_buf_create(8, 1, &o, &b);
  shk_buf_release(b);
  if (rc == SHK_OK && allocs != before + 1) rc = NOT_FROM_TABLE;
  assert_int_equal(shk_buf_allocator_unregister(name), SHK_OK);
  return rc;
}

static void allocator_tables_follow_the_rule(void **state) {
  (void)state;
  shk_buf_allocator t;
  memset(&t, 0x77, sizeof t);
  shk_buf_allocator_init(&t);
  assert_int_equal(t.struct_size, sizeof t);
  assert_null(t.alloc);
  assert_null(t.consume);
  assert_null(t.user);
  t.alloc = count_alloc;
  t.free = count_free;
  assert_int_equal(use_allocator("opt-init", &t), SHK_OK);

  allocator_0_1 old = {SHK_BUF_ALLOCATOR_VERSION, count_alloc, count_free, NULL, NULL, NULL};
  assert_int_equal(use_allocator("opt-0-1", &old), SHK_OK);

  shk_buf_allocator zero = {.alloc = count_alloc, .free = count_free};
  assert_int_equal(use_allocator("opt-zero", &zero), SHK_OK);

  NEWER(shk_buf_allocator) newer;
  shk_buf_allocator_init_size(&newer.base, sizeof newer);
  newer.base.alloc = count_alloc;
  newer.base.free = count_free;
  assert_int_equal(use_allocator("opt-newer", &newer), SHK_OK);
  newer.future = 1;
  assert_int_equal(shk_buf_allocator_register("opt-newer", AS(shk_buf_allocator, &newer)), SHK_EINVAL);
  assert_false(shk_buf_allocator_exists("opt-newer"));
}

/* ---- shk_watch_options, shk_watch_buffers_options, shk_watch_backend_table ------------- */

/* The options as 0.1.x had them: version 2, and version 1 without backend_name. */
typedef struct watch_options_0_1 {
  uint32_t version;
  shk_watch_backend backend;
  uint32_t coalesce_ms;
  uint32_t ring_capacity;
  size_t inline_threshold;
  size_t preview_size;
  uint32_t poll_interval_ms;
  size_t store_limit;
  bool resolve_symbols;
  bool userfaultfd_sync;
  const char *backend_name;
} watch_options_0_1;

/* The backend a watcher made with these options resolves to, or the error. */
static int watcher_backend(const void *opts) {
  shk_watcher *w = NULL;
  int rc = shk_watch_create(opts, &w);
  if (rc != SHK_OK) return rc;
  shk_watch_stats st;
  assert_int_equal(shk_watch_stats_get(w, &st), SHK_OK);
  shk_watch_free(w);
  return (int)st.backend;
}

static void watch_options_follow_the_rule(void **state) {
  (void)state;
  shk_watch_options o;
  memset(&o, 0x77, sizeof o);
  shk_watch_options_init(&o);
  assert_int_equal(o.struct_size, sizeof o);
  assert_int_equal(o.ring_capacity, 65536);
  assert_true(o.resolve_symbols);
  assert_null(o.backend_name);
  o.backend = SHK_WATCH_POLL;
  assert_int_equal(watcher_backend(&o), SHK_WATCH_POLL);

  /* A program built against 0.1.x fills its struct with the exported init (version 2). */
  watch_options_0_1 old;
  memset(&old, 0x77, sizeof old);
  (shk_watch_options_init)((shk_watch_options *)(void *)&old);
  assert_int_equal(old.version, SHK_WATCH_OPTIONS_VERSION);
  assert_int_equal(old.ring_capacity, 65536);
  old.backend = SHK_WATCH_POLL;
  assert_int_equal(watcher_backend(&old), SHK_WATCH_POLL);
  old.backend_name = "poll";
  old.backend = SHK_WATCH_MPROTECT;
  assert_int_equal(watcher_backend(&old), SHK_WATCH_POLL); /* version 2 reads backend_name */
  old.version = 1; /* ends before backend_name: the name is not read */
  old.backend = SHK_WATCH_POLL;
  old.backend_name = "no such backend";
  assert_int_equal(watcher_backend(&old), SHK_WATCH_POLL);

  /* Zero-initialised: read as written, and a ring of 0 is refused (the header says to init). */
  shk_watch_options zero = {.backend = SHK_WATCH_POLL};
  assert_int_equal(watcher_backend(&zero), SHK_EINVAL);

  NEWER(shk_watch_options) newer;
  shk_watch_options_init_size(&newer.base, sizeof newer);
  assert_int_equal(newer.future, 0);
  newer.base.backend = SHK_WATCH_POLL;
  assert_int_equal(watcher_backend(&newer), SHK_WATCH_POLL);
  newer.future = 1;
  assert_int_equal(watcher_backend(&newer), SHK_EINVAL);

  assert_int_equal(watcher_backend(NULL), SHK_WATCH_AUTO); /* defaults; no region yet */
}

typedef struct watch_buffers_options_0_1 {
  uint32_t version;
  const char *const *allocators;
  size_t allocator_count;
} watch_buffers_options_0_1;

static void watch_buffers_options_follow_the_rule(void **state) {
  (void)state;
  shk_watch_options wo;
  shk_watch_options_init(&wo);
  wo.backend = SHK_WATCH_POLL;
  shk_watcher *w = NULL;
  assert_int_equal(shk_watch_create(&wo, &w), SHK_OK);

  shk_watch_buffers_options o;
  shk_watch_buffers_options_init(&o);
  assert_int_equal(o.struct_size, sizeof o);
  assert_null(o.allocators);
  assert_int_equal(shk_watch_add_buffers(w, &o), SHK_OK);
  assert_int_equal(shk_watch_remove_buffers(w), SHK_OK);

  watch_buffers_options_0_1 old = {SHK_WATCH_BUFFERS_OPTIONS_VERSION, NULL, 0};
  assert_int_equal(shk_watch_add_buffers(w, AS(shk_watch_buffers_options, &old)), SHK_OK);
  assert_int_equal(shk_watch_remove_buffers(w), SHK_OK);
  old.allocator_count = 1; /* read: names missing */
  assert_int_equal(shk_watch_add_buffers(w, AS(shk_watch_buffers_options, &old)), SHK_EINVAL);

  shk_watch_buffers_options zero = {0};
  assert_int_equal(shk_watch_add_buffers(w, &zero), SHK_OK);
  assert_int_equal(shk_watch_remove_buffers(w), SHK_OK);

  NEWER(shk_watch_buffers_options) newer;
  shk_watch_buffers_options_init_size(&newer.base, sizeof newer);
  newer.future = 1;
  assert_int_equal(shk_watch_add_buffers(w, AS(shk_watch_buffers_options, &newer)), SHK_EINVAL);
  newer.future = 0;
  assert_int_equal(shk_watch_add_buffers(w, AS(shk_watch_buffers_options, &newer)), SHK_OK);
  assert_int_equal(shk_watch_remove_buffers(w), SHK_OK);

  assert_int_equal(shk_watch_add_buffers(w, NULL), SHK_OK);
  assert_int_equal(shk_watch_remove_buffers(w), SHK_OK);
  shk_watch_free(w);
}

static int fake_attach(void *user, shk_watcher *w, void *addr, size_t size, void **state) {
  (void)user;
  (void)w;
  (void)addr;
  (void)size;
  *state = NULL;
  return SHK_OK;
}

typedef struct backend_table_0_1 {
  int version;
  bool (*available)(void *user);
  int (*attach)(void *user, shk_watcher *w, void *addr, size_t size, void **state);
  void (*detach)(void *user, void *state);
  void (*scan)(void *user, void *state, void *addr, size_t size, bool force,
               shk_watch_written_fn written, void *ctx);
  int (*rearm)(void *user, void *addr, size_t size);
  void *user;
} backend_table_0_1;

static int register_backend(const char *name, const void *table) {
  int rc = shk_watch_backend_register(name, table);
  if (rc == SHK_OK) {
    assert_true(shk_watch_backend_exists(name));
    assert_int_equal(shk_watch_backend_unregister(name), SHK_OK);
  }
  return rc;
}

static void watch_backend_tables_follow_the_rule(void **state) {
  (void)state;
  shk_watch_backend_table t;
  memset(&t, 0x77, sizeof t);
  shk_watch_backend_table_init(&t);
  assert_int_equal(t.struct_size, sizeof t);
  assert_null(t.available);
  assert_null(t.attach);
  assert_null(t.user);
  assert_int_equal(register_backend("opt-init", &t), SHK_EINVAL); /* attach is required */
  t.attach = fake_attach;
  assert_int_equal(register_backend("opt-init", &t), SHK_OK);

  backend_table_0_1 old = {SHK_WATCH_BACKEND_VERSION, NULL, fake_attach, NULL, NULL, NULL, NULL};
  assert_int_equal(register_backend("opt-0-1", &old), SHK_OK);

  shk_watch_backend_table zero = {.attach = fake_attach};
  assert_int_equal(register_backend("opt-zero", &zero), SHK_OK);

  NEWER(shk_watch_backend_table) newer;
  shk_watch_backend_table_init_size(&newer.base, sizeof newer);
  newer.base.attach = fake_attach;
  assert_int_equal(register_backend("opt-newer", &newer), SHK_OK);
  newer.future = 1;
  assert_int_equal(register_backend("opt-newer", &newer), SHK_EINVAL);
}

/* ---- shk_lens_options, shk_lens_reader_options ---------------------------------------- */

/* The first published layouts: struct_size and one field. */
typedef struct lens_options_first {
  uint32_t struct_size;
  uint32_t flags;
} lens_options_first;
typedef struct lens_reader_options_first {
  uint32_t struct_size;
  uint32_t max_strings;
} lens_reader_options_first;

static void lens_name(char *name, size_t size) { shk_test_unique_name(name, size, "opt"); }

static int open_lens(const void *opts) {
  char name[64];
  lens_name(name, sizeof name);
  shk_lens *l = NULL;
  int rc = shk_lens_open(name, opts, &l);
  shk_lens_close(l);
  return rc;
}

static void lens_options_follow_the_rule(void **state) {
  (void)state;
  shk_lens_options o;
  memset(&o, 0x77, sizeof o);
  shk_lens_options_init(&o);
  assert_int_equal(o.struct_size, sizeof o);
  assert_int_equal(o.max_threads, 64);
  o.max_threads = 2;
  assert_int_equal(open_lens(&o), SHK_OK);

  lens_options_first first = {sizeof first, 0};
  assert_int_equal(open_lens(&first), SHK_OK);
  first.struct_size = 4; /* below the first layout */
  assert_int_equal(open_lens(&first), SHK_EINVAL);

  shk_lens_options zero = {0}; /* ring_bytes 0 as written: refused, the header says to init */
  assert_int_equal(open_lens(&zero), SHK_EINVAL);

  NEWER(shk_lens_options) newer;
  shk_lens_options_init_size(&newer.base, sizeof newer);
  newer.base.max_threads = 2;
  assert_int_equal(open_lens(&newer), SHK_OK);
  newer.future = 1;
  assert_int_equal(open_lens(&newer), SHK_EINVAL);
  assert_int_equal(open_lens(NULL), SHK_OK);

  /* The exported init of programs built before the macro: the 0.2.0 layout. */
  shk_lens_options legacy;
  (shk_lens_options_init)(&legacy);
  assert_int_equal(legacy.ring_bytes, 1024u * 1024u);
  assert_int_equal(open_lens(&legacy), SHK_OK);
}

static void lens_reader_options_follow_the_rule(void **state) {
  (void)state;
  char name[64];
  lens_name(name, sizeof name);
  shk_lens_options lo;
  shk_lens_options_init(&lo);
  lo.max_threads = 2;
  shk_lens *l = NULL;
  assert_int_equal(shk_lens_open(name, &lo, &l), SHK_OK);

  shk_lens_reader *r = NULL;
  shk_lens_reader_options o;
  shk_lens_reader_options_init(&o);
  assert_int_equal(o.struct_size, sizeof o);
  assert_int_equal(o.max_strings, 65536);
  assert_int_equal(shk_lens_reader_open(name, &o, &r), SHK_OK);
  shk_lens_reader_close(r);

  lens_reader_options_first first = {sizeof first, 100};
  assert_int_equal(shk_lens_reader_open(name, AS(shk_lens_reader_options, &first), &r), SHK_OK);
  shk_lens_reader_close(r);

  shk_lens_reader_options zero = {.max_strings = 10};
  assert_int_equal(shk_lens_reader_open(name, &zero, &r), SHK_OK);
  shk_lens_reader_close(r);

  NEWER(shk_lens_reader_options) newer;
  shk_lens_reader_options_init_size(&newer.base, sizeof newer);
  newer.future = 1;
  assert_int_equal(shk_lens_reader_open(name, AS(shk_lens_reader_options, &newer), &r), SHK_EINVAL);
  assert_null(r);
  newer.future = 0;
  assert_int_equal(shk_lens_reader_open(name, AS(shk_lens_reader_options, &newer), &r), SHK_OK);
  shk_lens_reader_close(r);
  shk_lens_close(l);
}

/* ---- public structs that carry library state --------------------------------------------- */

/* These did not compile with -Werror while the handles were const (the functions wrote
 * through them). */
static int (*const stats_get)(shk_lens *, shk_lens_stats *) = shk_lens_stats_get;
static int (*const reader_threads)(shk_lens_reader *, shk_lens_thread_info *, size_t,
                                   size_t *) = shk_lens_reader_threads;

/* A zone has room for later releases beyond the fields begin and end use. */
_Static_assert(sizeof(shk_lens_zone) >= 2 * sizeof(void *) + 16 + 16, "shk_lens_zone has room");

static void written_handles_are_not_const_and_zones_have_room(void **state) {
  (void)state;
  char name[64];
  lens_name(name, sizeof name);
  shk_lens *l = NULL;
  shk_lens_options o;
  shk_lens_options_init(&o);
  o.max_threads = 2;
  assert_int_equal(shk_lens_open(name, &o, &l), SHK_OK);
  shk_lens_zone z;
  assert_int_equal(shk_lens_zone_begin(l, &z, "zone", 0), SHK_OK);
  assert_ptr_equal(z.lens, l);
  assert_int_equal(shk_lens_zone_end(&z), SHK_OK);
  assert_null(z.lens);
  shk_lens_stats st;
  assert_int_equal(stats_get(l, &st), SHK_OK);
  assert_int_equal(st.sent[SHK_LENS_ZONE], 1);
  shk_lens_reader *r = NULL;
  assert_int_equal(shk_lens_reader_open(name, NULL, &r), SHK_OK);
  size_t count = 0;
  assert_int_equal(reader_threads(r, NULL, 0, &count), SHK_OK);
  shk_lens_reader_close(r);
  shk_lens_close(l);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(task_options_follow_the_rule),
    cmocka_unit_test(task_options_null_means_the_defaults),
    cmocka_unit_test(buf_options_follow_the_rule),
    cmocka_unit_test(allocator_tables_follow_the_rule),
    cmocka_unit_test(watch_options_follow_the_rule),
    cmocka_unit_test(watch_buffers_options_follow_the_rule),
    cmocka_unit_test(watch_backend_tables_follow_the_rule),
    cmocka_unit_test(lens_options_follow_the_rule),
    cmocka_unit_test(lens_reader_options_follow_the_rule),
    cmocka_unit_test(written_handles_are_not_const_and_zones_have_room),
};
static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
