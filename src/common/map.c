/* map.c -- open addressing with linear probing and backward-shift delete. */
#include "map.h"

#include <stdlib.h>
#include <string.h>

#include "mt.h"

static uint64_t key_hash(const mt_map *m, const void *key)
{
    uint64_t h = mt_hash_bytes(key, m->key_len);
    return h ? h : 1;
}

static const void *item_key(const mt_map *m, const void *item)
{
    return (const uint8_t *)item + m->key_off;
}

void mt_map_init(mt_map *m, size_t key_off, size_t key_len)
{
    memset(m, 0, sizeof *m);
    m->key_off = key_off;
    m->key_len = key_len;
}

void mt_map_free(mt_map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->size = 0;
}

static void grow(mt_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    mt_map_slot *old = m->slots;
    size_t ocap = m->cap;
    m->slots = mt_calloc(ncap, sizeof *m->slots);
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].hash) continue;
        size_t j = old[i].hash & (ncap - 1);
        while (m->slots[j].hash) j = (j + 1) & (ncap - 1);
        m->slots[j] = old[i];
    }
    free(old);
}

void *mt_map_get(const mt_map *m, const void *key)
{
    if (!m->size) return NULL;
    uint64_t h = key_hash(m, key);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const mt_map_slot *s = &m->slots[i];
        if (!s->hash) return NULL;
        if (s->hash == h && !memcmp(item_key(m, s->item), key, m->key_len)) return s->item;
    }
}

void mt_map_put(mt_map *m, void *item)
{
    if ((m->size + 1) * 4 > m->cap * 3) grow(m);
    uint64_t h = key_hash(m, item_key(m, item));
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].hash) i = (i + 1) & mask;
    m->slots[i].hash = h;
    m->slots[i].item = item;
    m->size++;
}

void *mt_map_del(mt_map *m, const void *key)
{
    if (!m->size) return NULL;
    uint64_t h = key_hash(m, key);
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    for (;; i = (i + 1) & mask) {
        mt_map_slot *s = &m->slots[i];
        if (!s->hash) return NULL;
        if (s->hash == h && !memcmp(item_key(m, s->item), key, m->key_len)) break;
    }
    void *item = m->slots[i].item;
    /* Backward-shift: pull later entries of the probe run into the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j].hash; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        /* Move j into the hole if its home is not within (hole, j]. */
        int between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].hash = 0;
    m->slots[hole].item = NULL;
    m->size--;
    return item;
}

void *mt_map_next(const mt_map *m, size_t *iter)
{
    while (*iter < m->cap) {
        const mt_map_slot *s = &m->slots[(*iter)++];
        if (s->hash) return s->item;
    }
    return NULL;
}

void **mt_map_items(const mt_map *m, size_t *n)
{
    void **out = mt_malloc((m->size ? m->size : 1) * sizeof *out);
    size_t k = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].hash) out[k++] = m->slots[i].item;
    *n = k;
    return out;
}
