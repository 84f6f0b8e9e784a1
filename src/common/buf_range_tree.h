/* The chunk tree of the live-range index (buf_range_tree.c): disjoint entries [start, end), each
 * a node the caller keeps until it is removed. buf_ranges.c puts there the whole aligned blocks
 * of ranges and its block reservations; every function runs under the index's lock (there). */
#ifndef SHMKIT_BUF_RANGE_TREE_H
#define SHMKIT_BUF_RANGE_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf_internal.h"

/* Puts node [node->start, node->end) in the tree unless it overlaps a live entry: SHK_EOVERLAP
 * with one such entry (*blocker, which starts at *blocker_start: for a node shared by several
 * entries), nothing changed; SHK_ENOMEM. O(log n). */
int shk__range_tree_insert(shk__buf_blocks *node, const shk__buf_blocks **blocker,
                           uintptr_t *blocker_start);
/* Removes the live entry of node that starts at node->start; false when there is none. */
bool shk__range_tree_remove(const shk__buf_blocks *node);
/* Calls fn for each live entry, in address order (fn changes nothing of the tree). */
void shk__range_tree_each(void (*fn)(shk__buf_blocks *entry, void *ctx), void *ctx);
/* Checks the tree (SHK_DEBUG=buf), fault(entry, start, end, ctx) saying what else is wrong with
 * a live entry kept as [start, end) (or NULL); reports each fault, returns how many. */
size_t shk__range_tree_check(const char *(*fault)(const shk__buf_blocks *entry, uintptr_t start,
                                                  uintptr_t end, void *ctx),
                             void *ctx);

#endif
