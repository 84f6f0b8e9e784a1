/* Each options initialiser exists twice: a macro that passes sizeof the struct as the caller
 * compiled it (what programs built now call), and an exported function of the same name, kept
 * for programs built before the macro, which fills the 0.2.0 layout. The function form must
 * give what those programs were built with: a struct_size no larger than the struct (the rule
 * of shmkit/options.h reads only that much), the same defaults in every field the old layout
 * has, and options that the call they are for accepts. NULL is accepted by both. */
/* ctest: labels=unit timeout=30 */
#include <stddef.h>
#include <string.h>

#include "shk_test.h"
#include "shmkit.h"

/* Fills both with a pattern, then each form; the old layout is every byte after struct_size up
 * to the size the function form wrote (or, for a version number, the end of `last`). */
#define FORMS(type, init, by_macro, by_function)     type by_macro, by_function;                        memset(&by_macro, 0xA5, sizeof by_macro);          memset(&by_function, 0xA5, sizeof by_function);    init(&by_macro);                                   (init)(&by_function);                              (init)(NULL);                                      init(NULL)

/* The fields [after struct_size, end) agree. */
static void same_fields(const void *a, const void *b, size_t end) {
  size_t from = sizeof(uint32_t);
  assert_true(end > from);
  assert_memory_equal((const char *)a + from, (const char *)b + from, end - from);
}

static void lens_initialisers_agree_and_their_options_open_a_lens(void **state) {
  (void)state;
  FORMS(shk_lens_options, shk_lens_options_init, lm, lf);
  assert_int_equal(lm.struct_size, sizeof lm);
  assert_true(lf.struct_size > 0 && lf.struct_size <= sizeof lf);
  same_fields(&lm, &lf, lf.struct_size);
  FORMS(shk_lens_reader_options, shk_lens_reader_options_init, rm, rf);
  assert_int_equal(rm.struct_size, sizeof rm);
  assert_true(rf.struct_size > 0 && rf.struct_size <= sizeof rf);
  same_fields(&rm, &rf, rf.struct_size);

  char name[64];
  shk_lens *lens = NULL;
  shk_lens_reader *reader = NULL;
  assert_int_equal(shk_lens_open(shk_test_unique_name(name, sizeof name, "opt"), &lf, &lens), SHK_OK);
  assert_int_equal(shk_lens_reader_open(name, &rf, &reader), SHK_OK);
  shk_lens_reader_close(reader);
  shk_lens_close(lens);
}

static void watch_initialisers_agree_and_their_options_make_a_watcher(void **state) {
  (void)state;
  FORMS(shk_watch_options, shk_watch_options_init, wm, wf);
  assert_int_equal(wm.struct_size, sizeof wm);
  assert_true(wf.struct_size > 0 && wf.struct_size < sizeof wf); /* a version number */
  same_fields(&wm, &wf, offsetof(shk_watch_options, backend_name));
  FORMS(shk_watch_buffers_options, shk_watch_buffers_options_init, bm, bf);
  assert_int_equal(bm.struct_size, sizeof bm);
  assert_true(bf.struct_size > 0 && bf.struct_size < sizeof bf);
  same_fields(&bm, &bf, sizeof bf);

  shk_watcher *w = NULL;
  assert_int_equal(shk_watch_create(&wf, &w), SHK_OK);
  assert_int_equal(shk_watch_add_buffers(w, &bf), SHK_OK);
  shk_watch_free(w);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(lens_initialisers_agree_and_their_options_open_a_lens),
    cmocka_unit_test(watch_initialisers_agree_and_their_options_make_a_watcher),
};

static const shk_test_child children[] = {{NULL, NULL}};
SHK_TEST_MAIN(tests, children)
