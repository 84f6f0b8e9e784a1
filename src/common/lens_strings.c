/* The reader's map from (producer pid, key) to contents: keys are addresses in the producer's own
 * address space, so two processes may use one key for different names. Bounded, since a hostile
 * producer could send endless keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lens_internal.h"

static size_t mix(uint32_t scope, uint64_t key) {
  key ^= (uint64_t)scope * 0x9E3779B97F4A7C15ull;
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdull;
  key ^= key >> 33;
  return (size_t)key;
}

/* ---- reader: key -> text ---- */

static shk__lens_string_entry *find_slot(shk__lens_string_entry *slots, size_t cap,
                                         uint32_t scope, uint64_t key) {
  size_t mask = cap - 1;
  size_t i = mix(scope, key) & mask;
  while (slots[i].used && (slots[i].key != key || slots[i].scope != scope)) i = (i + 1) & mask;
  return &slots[i];
}

static bool grow(shk__lens_string_map *map) {
  size_t cap = map->cap ? map->cap * 2 : 64;
  shk__lens_string_entry *slots = shk__calloc(cap, sizeof *slots);
  if (!slots) return false;
  for (size_t i = 0; i < map->cap; i++)
    if (map->slots[i].used) *find_slot(slots, cap, map->slots[i].scope, map->slots[i].key) = map->slots[i];
  free(map->slots);
  map->slots = slots;
  map->cap = cap;
  return true;
}

/* The slot for key, created when missing and there is room; NULL when the map is full. */
static shk__lens_string_entry *slot_for(shk__lens_string_map *map, uint32_t scope, uint64_t key) {
  if (map->cap) {
    shk__lens_string_entry *e = find_slot(map->slots, map->cap, scope, key);
    if (e->used) return e;
  }
  if (map->count >= map->limit) return NULL;
  if ((map->count + 1) * 2 > map->cap && !grow(map)) return NULL;
  shk__lens_string_entry *e = find_slot(map->slots, map->cap, scope, key);
  e->used = true;
  e->key = key;
  e->scope = scope;
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
    char **list = shk__realloc(map->retired, cap * sizeof *list);
    if (!list) return false;
    map->retired = list;
    map->retired_cap = cap;
  }
  map->retired[map->retired_count++] = text;
  return true;
}

static char *copy_text(const uint8_t *bytes, size_t size) {
  char *text = shk__malloc(size + 1);
  if (!text) return NULL;
  memcpy(text, bytes, size);
  text[size] = '\0';
  return text;
}

const char *shk__lens_strings_put(shk__lens_string_map *map, uint32_t scope, uint64_t key,
                                  const uint8_t *bytes, size_t size) {
  shk__lens_string_entry *e = slot_for(map, scope, key);
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

const char *shk__lens_strings_find(const shk__lens_string_map *map, uint32_t scope, uint64_t key) {
  if (!map->cap) return NULL;
  const shk__lens_string_entry *e = find_slot(map->slots, map->cap, scope, key);
  return e->used && e->known ? e->text : NULL;
}

const char *shk__lens_strings_get(shk__lens_string_map *map, uint32_t scope, uint64_t key,
                                  bool *known) {
  shk__lens_string_entry *e = slot_for(map, scope, key);
  if (known) *known = e && e->known;
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
