/* store.h -- the node's object store: one memfd region, the allocator that
 * carves it, and the table of objects with their states and read pins.
 * Pure bookkeeping: the daemon (node.c) does the messaging and waiting. */
#ifndef MT_STORE_H
#define MT_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "ids.h"

typedef struct mt_store mt_store;

typedef struct mt_store_pin {
    uint32_t cid;   /* client id (node-local) */
    uint32_t count;
} mt_store_pinent;

typedef struct mt_store_obj {
    mt_oid id; /* key */
    uint64_t offset, size;
    mt_wid owner;
    uint32_t creator;      /* client that writes it until sealed */
    bool sealed;
    bool primary;          /* the owner still holds it */
    uint32_t npins;
    mt_store_pinent *pins;
} mt_store_obj;

/* Make a store of `capacity` bytes backed by a fresh memfd (not populated:
 * pages are allocated as objects are written). */
int mt_store_new(uint64_t capacity, mt_store **out);
void mt_store_destroy(mt_store *st);
int mt_store_fd(const mt_store *st);
uint8_t *mt_store_base(const mt_store *st);
uint64_t mt_store_capacity(const mt_store *st);
uint64_t mt_store_used(const mt_store *st);
uint32_t mt_store_count(const mt_store *st);

/* Reserve `size` bytes for a new object owned by `owner`, written by client
 * `creator`.  Returns 0 with *offset, MANTA_EEXIST (id taken), MANTA_ENOMEM
 * (no room now), MANTA_ETOOBIG (larger than the store). */
int mt_store_create(mt_store *st, const mt_oid *id, uint64_t size, const mt_wid *owner,
                    uint32_t creator, uint64_t *offset);
/* Seal (only the creator may).  0, MANTA_ENOENT, MANTA_EINVAL. */
int mt_store_seal(mt_store *st, const mt_oid *id, uint32_t creator);
/* The creator gives up an unsealed object.  0 or MANTA_ENOENT. */
int mt_store_abort(mt_store *st, const mt_oid *id, uint32_t creator);
mt_store_obj *mt_store_find(mt_store *st, const mt_oid *id);
/* Pin a sealed object for a reader / drop one pin.  unpin returns
 * MANTA_ENOENT if the client held no pin (a confused client; ignored). */
void mt_store_pin(mt_store *st, mt_store_obj *o, uint32_t cid);
int mt_store_unpin(mt_store *st, const mt_oid *id, uint32_t cid);
/* The owner no longer needs the object: freed now or when the last pin goes. */
int mt_store_free_primary(mt_store *st, const mt_oid *id);
/* A client left: drop its pins, abort what it was writing, and free the
 * primary copies owned by `wid` (may be NULL). */
void mt_store_client_gone(mt_store *st, uint32_t cid, const mt_wid *wid);
/* The owner `wid` (of another node) is gone: drop what it owned here. */
void mt_store_owner_gone(mt_store *st, const mt_wid *wid);
/* Return the pages of large free holes to the OS. */
void mt_store_trim(mt_store *st, uint64_t min_hole);

#endif
