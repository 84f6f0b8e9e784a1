/** @file
 * The one evolution rule of every options and table struct: shk_task_options, shk_buf_options,
 * shk_buf_allocator, shk_watch_options, shk_watch_buffers_options, shk_watch_backend_table,
 * shk_lens_options and shk_lens_reader_options. It lets a field be added in a later release
 * without breaking a program compiled against an older header, and lets a program compiled
 * against a newer header run with an older library as long as it does not use the new fields.
 *
 *  1. The first field is `uint32_t struct_size`: the size of the struct where the caller's
 *     program was compiled. Each struct has an init macro (shk_task_options_init(&o), ...) that
 *     passes that size to the library's `*_init_size()` function, which fills exactly that many
 *     bytes: zeros, then the defaults of every field it knows, and struct_size. Then set fields
 *     by name.
 *  2. The library reads min(struct_size, the size it knows) bytes over its own defaults: fields
 *     that an older caller's struct does not have keep their defaults.
 *  3. A struct_size above what the library knows (a program built against a newer header) is
 *     accepted when every byte past the library's size is zero (the newer fields left at their
 *     defaults, as the init macro leaves them), and refused with SHK_EINVAL otherwise: the
 *     program asked for something this library cannot do.
 *  4. struct_size 0, a zero-initialised struct (`= {0}`, designated initialisers): read as the
 *     layout of release 0.2.0, every field as written. Where every field's zero is its default
 *     (task and buf options, the tables' optional functions) such a struct is the defaults plus
 *     what the caller set, as in 0.1.x; the watch and lens options have defaults that are not
 *     zero: fill them with their init macro. A field added after 0.2.0 is read only from a
 *     struct whose struct_size covers it.
 *  5. Refused with SHK_EINVAL: a struct_size smaller than the struct's first published layout
 *     (each struct's comment says which) or above SHK_OPTIONS_SIZE_MAX.
 *  6. Before 0.2.0, shk_watch_options, shk_watch_buffers_options, shk_buf_allocator and
 *     shk_watch_backend_table began with a version number, in the place of struct_size (the field was called `version`).
 *     Values below the first published size are those versions and are read as the layout
 *     they named, so programs built against 0.1.x keep working.
 *  7. A NULL options pointer means every default. The library never writes into a caller's
 *     struct except through the init function; tables are copied when registered.
 *
 * For maintainers: a field is only ever added at the end, starting at or after the previous
 * layout's sizeof (never in its tail padding), and its zero value means what the library did
 * before the field existed. Fields are never removed, moved or retyped. */
#ifndef SHMKIT_OPTIONS_H
#define SHMKIT_OPTIONS_H

/** The largest struct_size accepted (bytes); larger values are refused without being read. */
#define SHK_OPTIONS_SIZE_MAX 4096u

#endif
