/* store.c -- object table and memory of the node's shared-memory store. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "map.h"
#include "mt.h"

struct mt_store {
    int fd;
    uint8_t *base;
    uint64_t capacity;
    mt_alloc *alloc;
    mt_map objs;
};

int mt_store_new(uint64_t capacity, mt_store **out)
{
    if (capacity < 4096) return mt_err(MANTA_EINVAL, "object store of %lu bytes is too small",
                                       (unsigned long)capacity);
    capacity = MT_ALIGN_UP(capacity, 4096);
    int fd = memfd_create("manta-store", MFD_CLOEXEC);
    if (fd < 0) return mt_err_sys("memfd_create");
    if (ftruncate(fd, (off_t)capacity) < 0) {
        int rc = mt_err_sys("ftruncate store");
        close(fd);
        return rc;
    }
    void *base = mmap(NULL, capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (base == MAP_FAILED) {
        int rc = mt_err_sys("mmap store");
        close(fd);
        return rc;
    }
    mt_store *st = mt_calloc(1, sizeof *st);
    st->fd = fd;
    st->base = base;
    st->capacity = capacity;
    int rc = mt_alloc_create(capacity, 64, &st->alloc);
    mt_assert(rc == 0);
    mt_map_init(&st->objs, offsetof(mt_store_obj, id), sizeof(mt_oid));
    *out = st;
    return 0;
}

static void obj_free(mt_store *st, mt_store_obj *o)
{
    mt_map_del(&st->objs, &o->id);
    mt_alloc_put(st->alloc, o->offset);
    free(o->pins);
    free(o);
}

void mt_store_destroy(mt_store *st)
{
    if (!st) return;
    size_t n;
    void **items = mt_map_items(&st->objs, &n);
    for (size_t i = 0; i < n; i++) obj_free(st, items[i]);
    free(items);
    mt_map_free(&st->objs);
    mt_alloc_destroy(st->alloc);
    munmap(st->base, st->capacity);
    close(st->fd);
    free(st);
}

int mt_store_fd(const mt_store *st) { return st->fd; }
uint8_t *mt_store_base(const mt_store *st) { return st->base; }
uint64_t mt_store_capacity(const mt_store *st) { return st->capacity; }
uint64_t mt_store_used(const mt_store *st) { return mt_alloc_used(st->alloc); }
uint32_t mt_store_count(const mt_store *st) { return (uint32_t)st->objs.size; }

int mt_store_create(mt_store *st, const mt_oid *id, uint64_t size, const mt_wid *owner,
                    uint32_t creator, uint64_t *offset)
{
    if (mt_map_get(&st->objs, id)) return MANTA_EEXIST;
    uint64_t alloc_size = size ? size : 1;
    if (size > st->capacity || MT_ALIGN_UP(alloc_size, 64) > st->capacity)
        return mt_err(MANTA_ETOOBIG, "object of %lu bytes exceeds the store capacity %lu",
                      (unsigned long)size, (unsigned long)st->capacity);
    uint64_t off;
    if (mt_alloc_get(st->alloc, alloc_size, &off)) return MANTA_ENOMEM;
    mt_store_obj *o = mt_calloc(1, sizeof *o);
    o->id = *id;
    o->offset = off;
    o->size = size;
    o->owner = *owner;
    o->creator = creator;
    o->primary = true;
    mt_map_put(&st->objs, o);
    *offset = off;
    return 0;
}

static bool obj_dead(const mt_store_obj *o) { return !o->primary && o->npins == 0 && o->sealed; }

int mt_store_seal(mt_store *st, const mt_oid *id, uint32_t creator)
{
    mt_store_obj *o = mt_map_get(&st->objs, id);
    if (!o) return MANTA_ENOENT;
    if (o->sealed || o->creator != creator) return MANTA_EINVAL;
    o->sealed = true;
    if (obj_dead(o)) obj_free(st, o); /* the owner let go while it was written */
    return 0;
}

int mt_store_abort(mt_store *st, const mt_oid *id, uint32_t creator)
{
    mt_store_obj *o = mt_map_get(&st->objs, id);
    if (!o || o->sealed || o->creator != creator) return MANTA_ENOENT;
    obj_free(st, o);
    return 0;
}

mt_store_obj *mt_store_find(mt_store *st, const mt_oid *id) { return mt_map_get(&st->objs, id); }

void mt_store_pin(mt_store *st, mt_store_obj *o, uint32_t cid)
{
    MT_UNUSED(st);
    for (uint32_t i = 0; i < o->npins; i++) {
        if (o->pins[i].cid == cid) {
            o->pins[i].count++;
            return;
        }
    }
    o->pins = mt_realloc(o->pins, (o->npins + 1) * sizeof *o->pins);
    o->pins[o->npins++] = (mt_store_pinent){.cid = cid, .count = 1};
}

static void drop_pin_slot(mt_store_obj *o, uint32_t i)
{
    o->pins[i] = o->pins[--o->npins];
}

int mt_store_unpin(mt_store *st, const mt_oid *id, uint32_t cid)
{
    mt_store_obj *o = mt_map_get(&st->objs, id);
    if (!o) return MANTA_ENOENT;
    for (uint32_t i = 0; i < o->npins; i++) {
        if (o->pins[i].cid != cid) continue;
        if (--o->pins[i].count == 0) drop_pin_slot(o, i);
        if (obj_dead(o)) obj_free(st, o);
        return 0;
    }
    return MANTA_ENOENT;
}

int mt_store_free_primary(mt_store *st, const mt_oid *id)
{
    mt_store_obj *o = mt_map_get(&st->objs, id);
    if (!o) return MANTA_ENOENT;
    o->primary = false;
    if (obj_dead(o)) obj_free(st, o);
    return 0;
}

void mt_store_client_gone(mt_store *st, uint32_t cid, const mt_wid *wid)
{
    size_t n;
    void **items = mt_map_items(&st->objs, &n);
    for (size_t i = 0; i < n; i++) {
        mt_store_obj *o = items[i];
        for (uint32_t j = 0; j < o->npins;) {
            if (o->pins[j].cid == cid)
                drop_pin_slot(o, j);
            else
                j++;
        }
        if (!o->sealed && o->creator == cid) {
            obj_free(st, o);
            continue;
        }
        if (wid && MT_ID_EQ(o->owner, *wid)) o->primary = false;
        if (obj_dead(o)) obj_free(st, o);
    }
    free(items);
}

void mt_store_owner_gone(mt_store *st, const mt_wid *wid)
{
    size_t n;
    void **items = mt_map_items(&st->objs, &n);
    for (size_t i = 0; i < n; i++) {
        mt_store_obj *o = items[i];
        if (!MT_ID_EQ(o->owner, *wid)) continue;
        o->primary = false;
        if (obj_dead(o)) obj_free(st, o);
    }
    free(items);
}

typedef struct trim_ctx {
    mt_store *st;
} trim_ctx;

static void trim_range(void *ctx, uint64_t off, uint64_t len)
{
    trim_ctx *t = ctx;
    uint64_t start = MT_ALIGN_UP(off, 4096);
    uint64_t end = (off + len) & ~(uint64_t)4095;
    if (end > start)
        fallocate(t->st->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start,
                  (off_t)(end - start));
}

void mt_store_trim(mt_store *st, uint64_t min_hole)
{
    trim_ctx t = {.st = st};
    mt_alloc_free_ranges(st->alloc, min_hole, trim_range, &t);
}
