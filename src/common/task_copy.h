/* The copy of a call's input into a pool's staging segment, spread over several threads
 * (task_copy.c). */
#ifndef SHMKIT_TASK_COPY_H
#define SHMKIT_TASK_COPY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Each thread copies at least this many bytes: below twice this, one plain memcpy does it all
 * (starting and joining a thread costs 10-60 us, about what copying 1 MiB takes). */
#define SHK__COPY_PIECE_MIN ((size_t)2 << 20)
/* Never more threads than this, however many CPUs there are. */
#define SHK__COPY_THREADS_MAX 64u

/* The number of threads (the caller's own included) that shk__task_copy_in uses to copy size
 * bytes with at most `threads`: 1 (a plain memcpy) below 2 * SHK__COPY_PIECE_MIN, otherwise
 * min(threads, size / SHK__COPY_PIECE_MIN, SHK__COPY_THREADS_MAX). threads 0 counts as 1. */
unsigned shk__task_copy_plan(size_t size, unsigned threads);

/* Copies size bytes from src to dst (which must not overlap), as memcpy does, on up to `threads`
 * threads (shk__task_copy_plan): the calling thread copies the first piece, each other thread
 * the next one, split at multiples of the page size of dst so that each fresh page of a new
 * segment is first written, and so allocated and zeroed, by one thread only. A thread that cannot
 * be started leaves its piece to the calling thread: the copy itself never fails. size 0 touches
 * nothing (src and dst may then be NULL). Returns when every byte is copied. */
void shk__task_copy_in(void *dst, const void *src, size_t size, unsigned threads);

/* As shk__task_copy_in, but in order from the start, in blocks (at least 1 MiB, at most 256 of
 * them) that the threads claim one after the other: each time the blocks from the start up to
 * some point are all copied, *copied is raised to that point (release: a reader that sees it
 * with acquire sees the bytes), so that readers can start on the first bytes while the rest
 * are copied. *copied is set to 0 first, then only grows, and ends at size. Returns when every byte is copied. */
void shk__task_copy_in_order(void *dst, const void *src, size_t size, unsigned threads,
                             _Atomic uint64_t *copied);

#endif
