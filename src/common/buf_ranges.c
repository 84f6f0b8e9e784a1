/* The index of live buffer ranges: a treap keyed by start address, nodes embedded in buffers.
 * Live ranges never overlap, so [s, e) overlaps one iff the range with the largest start below e
 * ends after s: one O(log n) descent, containment included. */
#include "buf_internal.h"

static shk__once ranges_once;
static shk__os_mutex ranges_lock;
static shk__buf_range *root;  /* guarded by ranges_lock */
static size_t range_count;    /* guarded by ranges_lock */
static uint32_t prio_state = 0x9e3779b9u;

static void ranges_init(void) { shk__os_mutex_init(&ranges_lock); }

/* xorshift32: random heap priorities keep the expected depth logarithmic. */
static uint32_t next_priority(void) {
  uint32_t x = prio_state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  prio_state = x;
  return x;
}

/* The node with the largest start < end, or NULL. */
static shk__buf_range *predecessor_of(uintptr_t end) {
  shk__buf_range *best = NULL;
  for (shk__buf_range *n = root; n;) {
    if (n->start < end) {
      best = n;
      n = n->right;
    } else {
      n = n->left;
    }
  }
  return best;
}

/* Splits t into keys < key (*l) and keys >= key (*r). */
static void split(shk__buf_range *t, uintptr_t key, shk__buf_range **l, shk__buf_range **r) {
  while (t) {
    if (t->start < key) {
      *l = t;
      l = &t->right;
      t = t->right;
    } else {
      *r = t;
      r = &t->left;
      t = t->left;
    }
  }
  *l = NULL;
  *r = NULL;
}

/* Joins two treaps whose keys are all ordered (every key of a < every key of b). */
static shk__buf_range *merge(shk__buf_range *a, shk__buf_range *b) {
  shk__buf_range *result = NULL;
  shk__buf_range **out = &result;
  while (a && b) {
    if (a->priority > b->priority) {
      *out = a;
      out = &a->right;
      a = a->right;
    } else {
      *out = b;
      out = &b->left;
      b = b->left;
    }
  }
  *out = a ? a : b;
  return result;
}

int shk__buf_ranges_insert(shk__buf_range *node) {
  shk__once_run(&ranges_once, ranges_init);
  shk__os_mutex_lock(&ranges_lock);
  shk__buf_range *pred = predecessor_of(node->end);
  if (pred && pred->end > node->start) {
    shk__os_mutex_unlock(&ranges_lock);
    return SHK_EOVERLAP;
  }
  node->priority = next_priority();
  node->left = node->right = NULL;
  /* Descend while the existing nodes outrank the new one, then split the rest under it. */
  shk__buf_range **slot = &root;
  while (*slot && (*slot)->priority >= node->priority)
    slot = node->start < (*slot)->start ? &(*slot)->left : &(*slot)->right;
  split(*slot, node->start, &node->left, &node->right);
  *slot = node;
  range_count++;
  shk__os_mutex_unlock(&ranges_lock);
  return SHK_OK;
}

void shk__buf_ranges_remove(shk__buf_range *node) {
  shk__once_run(&ranges_once, ranges_init);
  shk__os_mutex_lock(&ranges_lock);
  shk__buf_range **slot = &root;
  while (*slot && *slot != node)
    slot = node->start < (*slot)->start ? &(*slot)->left : &(*slot)->right;
  if (*slot) {
    *slot = merge(node->left, node->right);
    range_count--;
  }
  shk__os_mutex_unlock(&ranges_lock);
  node->left = node->right = NULL;
}

size_t shk__buf_ranges_count(void) {
  shk__once_run(&ranges_once, ranges_init);
  shk__os_mutex_lock(&ranges_lock);
  size_t n = range_count;
  shk__os_mutex_unlock(&ranges_lock);
  return n;
}
