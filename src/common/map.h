/* map.h -- an open-addressing hash table from fixed-size binary keys (ids)
 * to items.  The key lives inside the item at `key_off`, so the table holds
 * only a hash and a pointer per slot (16 bytes).  Not thread-safe.
 *
 * Why not uthash: manta's tables hold up to millions of entries keyed by
 * 16-20 byte ids on hot paths; an intrusive 56-byte handle per entry would
 * dominate the per-task memory budget. */
#ifndef MT_MAP_H
#define MT_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct mt_map_slot {
    uint64_t hash; /* 0: empty */
    void *item;
} mt_map_slot;

typedef struct mt_map {
    mt_map_slot *slots;
    size_t cap;  /* power of two */
    size_t size;
    size_t key_off;
    size_t key_len;
} mt_map;

void mt_map_init(mt_map *m, size_t key_off, size_t key_len);
void mt_map_free(mt_map *m);
void *mt_map_get(const mt_map *m, const void *key);
/* Insert `item` (its key must not be present). */
void mt_map_put(mt_map *m, void *item);
/* Remove and return the item with `key`, or NULL. */
void *mt_map_del(mt_map *m, const void *key);
/* Iterate: for (size_t i = 0; (item = mt_map_next(m, &i)); ) -- do not
 * insert while iterating; deleting the current item is allowed only via
 * mt_map_del followed by restarting from i - 1 (use mt_map_items instead). */
void *mt_map_next(const mt_map *m, size_t *iter);
/* Snapshot of all items (caller frees the array); count in *n. */
void **mt_map_items(const mt_map *m, size_t *n);

#endif
