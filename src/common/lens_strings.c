/* Shared strings: the producer's set of keys already sent with contents, and the reader's map from
 * key to contents (bounded, since a hostile producer could send endless keys). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lens_internal.h"

static size_t mix(uint64_t key) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdull;
  key ^= key >> 33;
  return (size_t)key;
}

/* ---- producer: keys already sent (key 0 is never sent by the producer, so 0 marks a free slot) */

bool shk__lens_sent_has(const shk__lens_sent_set *set, uint64_t key) {
  if (set->cap == 0) return false;
  size_t mask = set->cap - 1;
  for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
    if (set->keys[i] == key) return true;
    if (set->keys[i] == 0) return false;
  }
}

static void sent_insert(uint64_t *keys, size_t cap, uint64_t key) {
  size_t mask = cap - 1;
  size_t i = mix(key) & mask;
  while (keys[i] != 0 && keys[i] != key) i = (i + 1) & mask;
  keys[i] = key;
}

bool shk__lens_sent_add(shk__lens_sent_set *set, uint64_t key) {
  if (key == 0) return true;
  if ((set->count + 1) * 2 > set->cap) {
    size_t cap = set->cap ? set->cap * 2 : 64;
    uint64_t *keys = calloc(cap, sizeof *keys);
    if (!keys) return false;
    for (size_t i = 0; i < set->cap; i++)
      if (set->keys[i]) sent_insert(keys, cap, set->keys[i]);
    free(set->keys);
    set->keys = keys;
    set->cap = cap;
  }
  if (!shk__lens_sent_has(set, key)) {
    sent_insert(set->keys, set->cap, key);
    set->count++;
  }
  return true;
}

void shk__lens_sent_clear(shk__lens_sent_set *set) {
  if (set->keys) memset(set->keys, 0, set->cap * sizeof *set->keys);
  set->count = 0;
}

void shk__lens_sent_free(shk__lens_sent_set *set) {
  free(set->keys);
  memset(set, 0, sizeof *set);
}

/* ---- reader: key -> text ---- */

static shk__lens_string_entry *find_slot(shk__lens_string_entry *slots, size_t cap, uint64_t key) {
  size_t mask = cap - 1;
  size_t i = mix(key) & mask;
  while (slots[i].used && slots[i].key != key) i = (i + 1) & mask;
  return &slots[i];
}

static bool grow(shk__lens_string_map *map) {
  size_t cap = map->cap ? map->cap * 2 : 64;
  shk__lens_string_entry *slots = calloc(cap, sizeof *slots);
  if (!slots) return false;
  for (size_t i = 0; i < map->cap; i++)
    if (map->slots[i].used) *find_slot(slots, cap, map->slots[i].key) = map->slots[i];
  free(map->slots);
  map->slots = slots;
  map->cap = cap;
  return true;
}

/* The slot for key, created when missing and there is room; NULL when the map is full. */
static shk__lens_string_entry *slot_for(shk__lens_string_map *map, uint64_t key) {
  if (map->cap) {
    shk__lens_string_entry *e = find_slot(map->slots, map->cap, key);
    if (e->used) return e;
  }
  if (map->count >= map->limit) return NULL;
  if ((map->count + 1) * 2 > map->cap && !grow(map)) return NULL;
  shk__lens_string_entry *e = find_slot(map->slots, map->cap, key);
  e->used = true;
  e->key = key;
  e->text = NULL;
  e->known = false;
  map->count++;
  return e;
}

/* Keeps a replaced text alive until close: events already handed out may point at it. */
static bool retire(shk__lens_string_map *map, char *text) {
  if (!text) return true;
  if (map->retired_count == map->retired_cap) {
    size_t cap = map->retired_cap ? map->retired_cap * 2 : 16;
    char **list = realloc(map->retired, cap * sizeof *list);
    if (!list) return false;
    map->retired = list;
    map->retired_cap = cap;
  }
  map->retired[map->retired_count++] = text;
  return true;
}

static char *copy_text(const uint8_t *bytes, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return NULL;
  memcpy(text, bytes, size);
  text[size] = '\0';
  return text;
}

const char *shk__lens_strings_put(shk__lens_string_map *map, uint64_t key, const uint8_t *bytes,
                                  size_t size) {
  shk__lens_string_entry *e = slot_for(map, key);
  if (!e) return SHK__LENS_UNKNOWN_STRING;
  if (e->known && strlen(e->text) == size && memcmp(e->text, bytes, size) == 0) return e->text;
  /* Texts that change again and again would pile up: past the limit the first one stays. */
  if (e->known && map->retired_count >= map->limit) return e->text;
  char *text = copy_text(bytes, size);
  if (!text || !retire(map, e->text)) {
    free(text);
    return e->text ? e->text : SHK__LENS_UNKNOWN_STRING;
  }
  if (!e->known) map->known_count++;
  e->text = text;
  e->known = true;
  return text;
}

const char *shk__lens_strings_get(shk__lens_string_map *map, uint64_t key) {
  shk__lens_string_entry *e = slot_for(map, key);
  if (!e) return SHK__LENS_UNKNOWN_STRING;
  if (!e->text) {
    /* One placeholder per key, so that two unknown threads stay two tracks. */
    char buf[64];
    int n = snprintf(buf, sizeof buf, "<unknown string %016llx>", (unsigned long long)key);
    e->text = copy_text((const uint8_t *)buf, (size_t)n);
    map->unknown_count++;
    if (!e->text) return SHK__LENS_UNKNOWN_STRING;
  }
  return e->text;
}

void shk__lens_strings_free(shk__lens_string_map *map) {
  for (size_t i = 0; i < map->cap; i++) free(map->slots[i].text);
  for (size_t i = 0; i < map->retired_count; i++) free(map->retired[i]);
  free(map->slots);
  free(map->retired);
  memset(map, 0, sizeof *map);
}
