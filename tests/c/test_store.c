/* test_store.c -- unit tests of src/store/store.c: the memfd region, the
 * object lifecycle (create, seal, pin, unpin, free, abort), the rule that
 * memory goes back only when the owner let go and no reader pins it, error
 * codes, clients leaving, accounting (also in a randomized run against a
 * model), and trimming. */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mt.h"
#include "store/store.h"

#define KB (1ull << 10)
#define MB (1ull << 20)

/* ---------------------------------------------------------------- helpers */

/* ck_assert() reports every check that passes to the parent process
 * (CK_FORK), a write per check; hot loops use this quiet form. */
#define CK(cond)                                                                                   \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg("check failed: %s", #cond);                                      \
    } while (0)

static mt_oid oid(uint32_t n)
{
    mt_tid t;
    memset(t.b, 0x5c, sizeof t.b);
    t.b[0] = (uint8_t)(n >> 24);
    return mt_oid_for(&t, n);
}

static mt_wid wid(uint8_t n)
{
    mt_wid w;
    memset(w.b, n, sizeof w.b);
    return w;
}

static mt_store *new_store(uint64_t cap)
{
    mt_store *st = NULL;
    ck_assert_int_eq(mt_store_new(cap, &st), 0);
    ck_assert_ptr_nonnull(st);
    return st;
}

static uint64_t create_ok(mt_store *st, uint32_t id, uint64_t size, uint8_t owner, uint32_t creator)
{
    mt_oid o = oid(id);
    mt_wid w = wid(owner);
    uint64_t off = UINT64_MAX;
    ck_assert_int_eq(mt_store_create(st, &o, size, &w, creator, &off), 0);
    ck_assert_uint_eq(off % 64, 0);
    ck_assert_uint_le(off + size, mt_store_capacity(st));
    return off;
}

static int create_rc(mt_store *st, uint32_t id, uint64_t size, uint8_t owner, uint32_t creator)
{
    mt_oid o = oid(id);
    mt_wid w = wid(owner);
    uint64_t off = 777;
    int rc = mt_store_create(st, &o, size, &w, creator, &off);
    if (rc) ck_assert_uint_eq(off, 777); /* untouched on failure */
    return rc;
}

static int seal(mt_store *st, uint32_t id, uint32_t creator)
{
    mt_oid o = oid(id);
    return mt_store_seal(st, &o, creator);
}

static int abort_obj(mt_store *st, uint32_t id, uint32_t creator)
{
    mt_oid o = oid(id);
    return mt_store_abort(st, &o, creator);
}

static mt_store_obj *find(mt_store *st, uint32_t id)
{
    mt_oid o = oid(id);
    return mt_store_find(st, &o);
}

static void pin(mt_store *st, uint32_t id, uint32_t cid)
{
    mt_store_obj *o = find(st, id);
    ck_assert_ptr_nonnull(o);
    mt_store_pin(st, o, cid);
}

static int unpin(mt_store *st, uint32_t id, uint32_t cid)
{
    mt_oid o = oid(id);
    return mt_store_unpin(st, &o, cid);
}

static int free_primary(mt_store *st, uint32_t id)
{
    mt_oid o = oid(id);
    return mt_store_free_primary(st, &o);
}

static uint32_t pins_of(mt_store *st, uint32_t id, uint32_t cid)
{
    mt_store_obj *o = find(st, id);
    if (!o) return 0;
    for (uint32_t i = 0; i < o->npins; i++)
        if (o->pins[i].cid == cid) return o->pins[i].count;
    return 0;
}

/* ---------------------------------------------------------------- region */

START_TEST(test_new)
{
    mt_store *st = NULL;
    ck_assert_int_eq(mt_store_new(0, &st), MANTA_EINVAL);
    ck_assert_int_eq(mt_store_new(4095, &st), MANTA_EINVAL);
    ck_assert_ptr_null(st);
    static const struct {
        uint64_t ask, want;
    } caps[] = {{4096, 4096}, {4097, 8192},        {10000, 12288},
                {MB, MB},     {MB + 1, MB + 4096}, {1ull << 32, 1ull << 32}};
    for (size_t i = 0; i < MT_ARRAY_LEN(caps); i++) {
        st = new_store(caps[i].ask);
        ck_assert_uint_eq(mt_store_capacity(st), caps[i].want);
        ck_assert_uint_eq(mt_store_used(st), 0);
        ck_assert_uint_eq(mt_store_count(st), 0);
        int fd = mt_store_fd(st);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
        struct stat sb;
        ck_assert_int_eq(fstat(fd, &sb), 0);
        ck_assert_int_eq(sb.st_size, (off_t)caps[i].want);
        uint8_t *base = mt_store_base(st);
        ck_assert_ptr_nonnull(base);
        /* Writable at both ends; the fd sees the same bytes. */
        base[0] = 0x11;
        base[caps[i].want - 1] = 0x22;
        uint8_t c = 0;
        ck_assert_int_eq(pread(fd, &c, 1, (off_t)caps[i].want - 1), 1);
        ck_assert_uint_eq(c, 0x22);
        /* The whole capacity can hold one object. */
        uint64_t off = create_ok(st, 1, caps[i].want, 1, 1);
        ck_assert_uint_eq(off, 0);
        ck_assert_uint_eq(mt_store_used(st), caps[i].want);
        mt_store_destroy(st);
    }
    mt_store_destroy(NULL);
}
END_TEST

/* ---------------------------------------------------------------- lifecycle */

START_TEST(test_lifecycle)
{
    mt_store *st = new_store(MB);
    uint64_t off = create_ok(st, 1, 100, 7, 1);
    ck_assert_uint_eq(mt_store_count(st), 1);
    ck_assert_uint_eq(mt_store_used(st), 128);
    mt_store_obj *o = find(st, 1);
    ck_assert_ptr_nonnull(o);
    mt_oid want = oid(1);
    mt_wid w7 = wid(7);
    ck_assert(MT_ID_EQ(o->id, want));
    ck_assert(MT_ID_EQ(o->owner, w7));
    ck_assert_uint_eq(o->offset, off);
    ck_assert_uint_eq(o->size, 100);
    ck_assert_uint_eq(o->creator, 1);
    ck_assert(!o->sealed);
    ck_assert(o->primary);
    ck_assert_uint_eq(o->npins, 0);
    ck_assert_ptr_null(find(st, 2));
    memset(mt_store_base(st) + off, 0xee, 100);

    ck_assert_int_eq(seal(st, 2, 1), MANTA_ENOENT);
    ck_assert_int_eq(seal(st, 1, 2), MANTA_EINVAL); /* only the creator seals */
    ck_assert(!find(st, 1)->sealed);
    ck_assert_int_eq(seal(st, 1, 1), 0);
    ck_assert(find(st, 1)->sealed);
    ck_assert_int_eq(seal(st, 1, 1), MANTA_EINVAL); /* twice */

    pin(st, 1, 2);
    pin(st, 1, 2);
    pin(st, 1, 3);
    ck_assert_uint_eq(find(st, 1)->npins, 2);
    ck_assert_uint_eq(pins_of(st, 1, 2), 2);
    ck_assert_uint_eq(pins_of(st, 1, 3), 1);
    ck_assert_int_eq(unpin(st, 1, 4), MANTA_ENOENT); /* held no pin */

    /* The owner lets go: readers keep it alive. */
    ck_assert_int_eq(free_primary(st, 1), 0);
    ck_assert_ptr_nonnull(find(st, 1));
    ck_assert(!find(st, 1)->primary);
    ck_assert_uint_eq(mt_store_used(st), 128);
    ck_assert_int_eq(unpin(st, 1, 2), 0);
    ck_assert_int_eq(unpin(st, 1, 2), 0);
    ck_assert_ptr_nonnull(find(st, 1));
    ck_assert_int_eq(unpin(st, 1, 2), MANTA_ENOENT);
    ck_assert_uint_eq(mt_store_base(st)[off + 99], 0xee); /* still intact */
    ck_assert_int_eq(unpin(st, 1, 3), 0);                 /* the last pin */
    ck_assert_ptr_null(find(st, 1));
    ck_assert_uint_eq(mt_store_count(st), 0);
    ck_assert_uint_eq(mt_store_used(st), 0);
    ck_assert_int_eq(unpin(st, 1, 3), MANTA_ENOENT);
    ck_assert_int_eq(free_primary(st, 1), MANTA_ENOENT);
    mt_store_destroy(st);
}
END_TEST

START_TEST(test_pins_without_free)
{
    /* Readers come and go; the owner's copy keeps the object. */
    mt_store *st = new_store(MB);
    create_ok(st, 1, 1000, 1, 1);
    ck_assert_int_eq(seal(st, 1, 1), 0);
    for (uint32_t c = 10; c < 20; c++)
        pin(st, 1, c);
    for (uint32_t c = 10; c < 20; c++)
        ck_assert_int_eq(unpin(st, 1, c), 0);
    ck_assert_ptr_nonnull(find(st, 1));
    ck_assert_uint_eq(find(st, 1)->npins, 0);
    ck_assert_int_eq(free_primary(st, 1), 0); /* no pins: freed at once */
    ck_assert_ptr_null(find(st, 1));
    ck_assert_uint_eq(mt_store_used(st), 0);
    mt_store_destroy(st);
}
END_TEST

START_TEST(test_free_while_unsealed)
{
    mt_store *st = new_store(MB);
    create_ok(st, 1, 5000, 1, 1);
    ck_assert_int_eq(free_primary(st, 1), 0);
    ck_assert_ptr_nonnull(find(st, 1)); /* the writer still writes */
    ck_assert_uint_eq(mt_store_count(st), 1);
    ck_assert_int_eq(free_primary(st, 1), 0); /* again: harmless */
    ck_assert_int_eq(seal(st, 1, 1), 0);      /* sealing frees it */
    ck_assert_ptr_null(find(st, 1));
    ck_assert_uint_eq(mt_store_count(st), 0);
    ck_assert_uint_eq(mt_store_used(st), 0);
    /* The id is free for reuse. */
    create_ok(st, 1, 10, 1, 1);
    mt_store_destroy(st);
}
END_TEST

START_TEST(test_abort)
{
    mt_store *st = new_store(MB);
    create_ok(st, 1, 300, 1, 5);
    ck_assert_int_eq(abort_obj(st, 1, 6), MANTA_ENOENT); /* not the creator */
    ck_assert_ptr_nonnull(find(st, 1));
    ck_assert_int_eq(abort_obj(st, 2, 5), MANTA_ENOENT); /* no such object */
    ck_assert_int_eq(abort_obj(st, 1, 5), 0);
    ck_assert_ptr_null(find(st, 1));
    ck_assert_uint_eq(mt_store_used(st), 0);
    ck_assert_int_eq(seal(st, 1, 5), MANTA_ENOENT);
    /* A sealed object cannot be aborted. */
    create_ok(st, 1, 300, 1, 5);
    ck_assert_int_eq(seal(st, 1, 5), 0);
    ck_assert_int_eq(abort_obj(st, 1, 5), MANTA_ENOENT);
    ck_assert_ptr_nonnull(find(st, 1));
    /* Freed primary then aborted: gone as well. */
    create_ok(st, 2, 300, 1, 5);
    ck_assert_int_eq(free_primary(st, 2), 0);
    ck_assert_int_eq(abort_obj(st, 2, 5), 0);
    ck_assert_ptr_null(find(st, 2));
    ck_assert_uint_eq(mt_store_count(st), 1);
    mt_store_destroy(st);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_eexist)
{
    mt_store *st = new_store(MB);
    uint64_t off = create_ok(st, 1, 64, 1, 1);
    ck_assert_int_eq(create_rc(st, 1, 64, 2, 2), MANTA_EEXIST);
    ck_assert_int_eq(seal(st, 1, 1), 0);
    ck_assert_int_eq(create_rc(st, 1, 128, 1, 1), MANTA_EEXIST);
    mt_store_obj *o = find(st, 1);
    ck_assert_uint_eq(o->offset, off);
    ck_assert_uint_eq(o->size, 64);
    ck_assert_uint_eq(mt_store_count(st), 1);
    ck_assert_uint_eq(mt_store_used(st), 64);
    mt_store_destroy(st);
}
END_TEST

START_TEST(test_enomem_then_free)
{
    mt_store *st = new_store(4096);
    for (uint32_t i = 0; i < 64; i++) {
        create_ok(st, i, 64, 1, 1);
        ck_assert_int_eq(seal(st, i, 1), 0);
    }
    ck_assert_uint_eq(mt_store_used(st), 4096);
    ck_assert_int_eq(create_rc(st, 100, 1, 1, 1), MANTA_ENOMEM);
    ck_assert_int_eq(create_rc(st, 100, 0, 1, 1), MANTA_ENOMEM);
    ck_assert_ptr_null(find(st, 100)); /* nothing left behind */
    ck_assert_uint_eq(mt_store_count(st), 64);
    /* A pinned object is not reclaimed by freeing the primary. */
    pin(st, 10, 9);
    ck_assert_int_eq(free_primary(st, 10), 0);
    ck_assert_int_eq(create_rc(st, 100, 64, 1, 1), MANTA_ENOMEM);
    ck_assert_int_eq(unpin(st, 10, 9), 0);
    create_ok(st, 100, 64, 1, 1);
    ck_assert_int_eq(create_rc(st, 101, 64, 1, 1), MANTA_ENOMEM);
    /* Two neighbours freed: room for one object of both sizes. */
    ck_assert_int_eq(free_primary(st, 20), 0);
    ck_assert_int_eq(free_primary(st, 21), 0);
    create_ok(st, 101, 128, 1, 1);
    mt_store_destroy(st);
}
END_TEST

START_TEST(test_etoobig)
{
    mt_store *st = new_store(64 * KB);
    uint64_t cap = mt_store_capacity(st);
    ck_assert_int_eq(create_rc(st, 1, cap + 1, 1, 1), MANTA_ETOOBIG);
    ck_assert_int_eq(create_rc(st, 1, cap + 64, 1, 1), MANTA_ETOOBIG);
    ck_assert_int_eq(create_rc(st, 1, 1ull << 62, 1, 1), MANTA_ETOOBIG);
    ck_assert_int_eq(create_rc(st, 1, UINT64_MAX - 64, 1, 1), MANTA_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "exceeds"));
    ck_assert_uint_eq(mt_store_count(st), 0);
    /* Not too big, only too big for now: ENOMEM. */
    create_ok(st, 2, 64, 1, 1);
    ck_assert_int_eq(create_rc(st, 1, cap, 1, 1), MANTA_ENOMEM);
    ck_assert_int_eq(free_primary(st, 2), 0);
    ck_assert_int_eq(seal(st, 2, 1), 0);
    create_ok(st, 1, cap, 1, 1);
    mt_store_destroy(st);
}
END_TEST

START_TEST(test_zero_size)
{
    mt_store *st = new_store(MB);
    uint64_t a = create_ok(st, 1, 0, 1, 1);
    uint64_t b = create_ok(st, 2, 0, 1, 1);
    ck_assert_uint_ne(a, b); /* each takes a block */
    ck_assert_uint_eq(mt_store_used(st), 128);
    ck_assert_uint_eq(find(st, 1)->size, 0);
    ck_assert_int_eq(seal(st, 1, 1), 0);
    ck_assert_int_eq(free_primary(st, 1), 0);
    ck_assert_uint_eq(mt_store_used(st), 64);
    mt_store_destroy(st);
}
END_TEST

/* ---------------------------------------------------------------- clients */

START_TEST(test_client_gone)
{
    mt_store *st = new_store(MB);
    mt_wid w1 = wid(1);
    /* Client 1 is worker w1, client 2 is worker w2. */
    create_ok(st, 1, 100, 1, 1); /* A: w1's, sealed */
    ck_assert_int_eq(seal(st, 1, 1), 0);
    create_ok(st, 2, 100, 1, 1); /* B: being written by client 1 */
    create_ok(st, 3, 100, 2, 2); /* C: w2's, sealed, read by client 1 */
    ck_assert_int_eq(seal(st, 3, 2), 0);
    create_ok(st, 4, 100, 1, 2); /* D: owned by w1, written by client 2 */
    create_ok(st, 5, 100, 1, 1); /* E: w1's, sealed, nobody reads it */
    ck_assert_int_eq(seal(st, 5, 1), 0);
    pin(st, 3, 1);
    pin(st, 3, 1);
    pin(st, 3, 2);
    pin(st, 1, 3); /* A read by client 3 */
    pin(st, 1, 1);
    ck_assert_uint_eq(mt_store_count(st), 5);

    mt_store_client_gone(st, 1, &w1);
    ck_assert_ptr_nonnull(find(st, 1)); /* A: client 3 still reads it */
    ck_assert(!find(st, 1)->primary);
    ck_assert_uint_eq(pins_of(st, 1, 1), 0);
    ck_assert_uint_eq(pins_of(st, 1, 3), 1);
    ck_assert_ptr_null(find(st, 2));    /* B: aborted */
    ck_assert_ptr_nonnull(find(st, 3)); /* C: w2 still owns it */
    ck_assert_uint_eq(pins_of(st, 3, 1), 0);
    ck_assert_uint_eq(pins_of(st, 3, 2), 1);
    ck_assert(find(st, 3)->primary);
    ck_assert_ptr_nonnull(find(st, 4)); /* D: client 2 still writes it */
    ck_assert(!find(st, 4)->primary);
    ck_assert_ptr_null(find(st, 5)); /* E: freed */
    ck_assert_uint_eq(mt_store_count(st), 3);
    ck_assert_uint_eq(mt_store_used(st), 3 * 128);

    ck_assert_int_eq(seal(st, 4, 2), 0); /* D freed as soon as it is sealed */
    ck_assert_ptr_null(find(st, 4));
    ck_assert_int_eq(unpin(st, 1, 3), 0); /* A's last reader */
    ck_assert_ptr_null(find(st, 1));
    ck_assert_int_eq(unpin(st, 3, 2), 0);
    ck_assert_ptr_nonnull(find(st, 3));
    ck_assert_uint_eq(mt_store_count(st), 1);

    /* A client without a worker id (e.g. the CLI): pins and writes only. */
    create_ok(st, 6, 100, 3, 3);
    pin(st, 3, 3);
    mt_store_client_gone(st, 3, NULL);
    ck_assert_ptr_null(find(st, 6));
    ck_assert_uint_eq(pins_of(st, 3, 3), 0);
    ck_assert_ptr_nonnull(find(st, 3));
    /* A client that had nothing: no change. */
    mt_wid w9 = wid(9);
    mt_store_client_gone(st, 99, &w9);
    ck_assert_uint_eq(mt_store_count(st), 1);
    mt_store_client_gone(st, 2, NULL);
    ck_assert_uint_eq(mt_store_count(st), 1);
    mt_wid w2 = wid(2);
    mt_store_client_gone(st, 2, &w2);
    ck_assert_uint_eq(mt_store_count(st), 0);
    ck_assert_uint_eq(mt_store_used(st), 0);
    mt_store_destroy(st);
}
END_TEST

START_TEST(test_destroy_with_objects)
{
    /* Destroying a store with objects in every state leaks nothing (ASan). */
    mt_store *st = new_store(MB);
    for (uint32_t i = 0; i < 100; i++) {
        create_ok(st, i, 100 + i, (uint8_t)(i % 3), i % 4);
        if (i % 2) ck_assert_int_eq(seal(st, i, i % 4), 0);
        if (i % 6 == 1) pin(st, i, 7);
    }
    mt_store_destroy(st);
}
END_TEST

/* ---------------------------------------------------------------- model */

static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t x = rng_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 2685821657736338717ull;
}

enum { M_IDS = 64, M_CLIENTS = 4 };

typedef struct mobj {
    bool exists, sealed, primary;
    uint64_t size, offset;
    uint8_t owner;
    uint32_t creator;
    uint32_t pins[M_CLIENTS];
} mobj;

static uint64_t rounded(uint64_t size)
{
    return MT_ALIGN_UP(size ? size : 1, 64);
}

static void model_maybe_free(mobj *m)
{
    uint32_t pins = 0;
    for (int c = 0; c < M_CLIENTS; c++)
        pins += m->pins[c];
    if (m->sealed && !m->primary && pins == 0) m->exists = false;
}

static void model_check(mt_store *st, const mobj *model)
{
    uint64_t used = 0;
    uint32_t count = 0;
    for (uint32_t i = 0; i < M_IDS; i++) {
        mt_store_obj *o = find(st, i);
        const mobj *m = &model[i];
        if ((o != NULL) != m->exists)
            ck_abort_msg("object %u exists: store %d model %d", i, o != NULL, m->exists);
        if (!o) continue;
        count++;
        used += rounded(m->size);
        CK(o->size == m->size);
        CK(o->offset == m->offset);
        CK(o->sealed == m->sealed);
        CK(o->primary == m->primary);
        CK(o->creator == m->creator);
        for (uint32_t c = 0; c < M_CLIENTS; c++)
            CK(pins_of(st, i, c) == m->pins[c]);
        /* Our tag at the start of the object is intact: no overlap. */
        if (m->size >= 4) CK(*(uint32_t *)(mt_store_base(st) + o->offset) == i * 977);
    }
    ck_assert_uint_eq(mt_store_count(st), count);
    ck_assert_uint_eq(mt_store_used(st), used);
}

START_TEST(test_model)
{
    mt_store *st = new_store(256 * KB);
    mobj model[M_IDS];
    memset(model, 0, sizeof model);
    rng_state = 0x5EED;
    int nomem = 0;
    for (int op = 0; op < 30000; op++) {
        uint32_t id = (uint32_t)(rng() % M_IDS);
        uint32_t cid = (uint32_t)(rng() % M_CLIENTS);
        mobj *m = &model[id];
        switch (rng() % 8) {
        case 0:
        case 1: { /* create */
            uint64_t size = rng() % 4 == 0 ? rng() % 64 : rng() % (16 * KB);
            uint8_t owner = (uint8_t)(rng() % M_CLIENTS);
            int rc = create_rc(st, id, size, owner, cid);
            if (m->exists) {
                ck_assert_int_eq(rc, MANTA_EEXIST);
                break;
            }
            if (rc == MANTA_ENOMEM) {
                nomem++;
                break;
            }
            ck_assert_int_eq(rc, 0);
            *m = (mobj){.exists = true,
                        .primary = true,
                        .size = size,
                        .owner = owner,
                        .creator = cid,
                        .offset = find(st, id)->offset};
            if (size >= 4) *(uint32_t *)(mt_store_base(st) + m->offset) = id * 977;
            break;
        }
        case 2: { /* seal, usually by the creator */
            uint32_t by = rng() % 4 ? m->creator : cid;
            int rc = seal(st, id, by);
            if (!m->exists)
                ck_assert_int_eq(rc, MANTA_ENOENT);
            else if (m->sealed || by != m->creator)
                ck_assert_int_eq(rc, MANTA_EINVAL);
            else {
                ck_assert_int_eq(rc, 0);
                m->sealed = true;
                model_maybe_free(m);
            }
            break;
        }
        case 3: { /* abort */
            uint32_t by = rng() % 4 ? m->creator : cid;
            int rc = abort_obj(st, id, by);
            if (!m->exists || m->sealed || by != m->creator)
                ck_assert_int_eq(rc, MANTA_ENOENT);
            else {
                ck_assert_int_eq(rc, 0);
                m->exists = false;
            }
            break;
        }
        case 4: /* pin a sealed object */
            if (m->exists && m->sealed) {
                pin(st, id, cid);
                m->pins[cid]++;
            }
            break;
        case 5: { /* unpin */
            int rc = unpin(st, id, cid);
            if (!m->exists || !m->pins[cid])
                ck_assert_int_eq(rc, MANTA_ENOENT);
            else {
                ck_assert_int_eq(rc, 0);
                m->pins[cid]--;
                model_maybe_free(m);
            }
            break;
        }
        case 6: { /* the owner frees */
            int rc = free_primary(st, id);
            ck_assert_int_eq(rc, m->exists ? 0 : MANTA_ENOENT);
            if (m->exists) {
                m->primary = false;
                model_maybe_free(m);
            }
            break;
        }
        case 7: /* now and then a client leaves (client cid is worker wid(cid)) */
            if (rng() % 20 == 0) {
                mt_wid w = wid((uint8_t)cid);
                bool with_wid = rng() % 2;
                mt_store_client_gone(st, cid, with_wid ? &w : NULL);
                for (uint32_t i = 0; i < M_IDS; i++) {
                    mobj *x = &model[i];
                    if (!x->exists) continue;
                    x->pins[cid] = 0;
                    if (!x->sealed && x->creator == cid) {
                        x->exists = false;
                        continue;
                    }
                    if (with_wid && x->owner == cid) x->primary = false;
                    model_maybe_free(x);
                }
            }
            break;
        }
        if (op % 100 == 0) model_check(st, model);
    }
    model_check(st, model);
    ck_assert_int_gt(nomem, 0); /* the run did fill the store */
    mt_store_destroy(st);
}
END_TEST

/* ---------------------------------------------------------------- trim */

static uint64_t allocated_bytes(int fd)
{
    struct stat sb;
    ck_assert_int_eq(fstat(fd, &sb), 0);
    return (uint64_t)sb.st_blocks * 512;
}

START_TEST(test_trim)
{
    mt_store *st = new_store(64 * MB);
    uint8_t *base = mt_store_base(st);
    int fd = mt_store_fd(st);
    ck_assert_uint_lt(allocated_bytes(fd), MB); /* not populated */
    uint64_t off[4];
    for (uint32_t i = 0; i < 4; i++) {
        off[i] = create_ok(st, i, 8 * MB, 1, 1);
        memset(base + off[i], (int)(0x10 + i), 8 * MB);
        ck_assert_int_eq(seal(st, i, 1), 0);
    }
    uint64_t before = allocated_bytes(fd);
    ck_assert_uint_ge(before, 32 * MB);
    mt_store_trim(st, 0); /* nothing freed yet: the tail hole only */
    ck_assert_uint_ge(allocated_bytes(fd), 32 * MB);
    ck_assert_int_eq(free_primary(st, 1), 0);
    ck_assert_int_eq(free_primary(st, 2), 0);
    mt_store_trim(st, MB);
    uint64_t after = allocated_bytes(fd);
    ck_assert_uint_le(after, before - 15 * MB); /* the pages went back */
    /* Survivors are intact. */
    for (uint64_t k = 0; k < 8 * MB; k += 4093) {
        ck_assert_uint_eq(base[off[0] + k], 0x10);
        ck_assert_uint_eq(base[off[3] + k], 0x13);
    }
    ck_assert_uint_eq(base[off[3] + 8 * MB - 1], 0x13);
    /* Later objects in the trimmed range work: zero pages, writable. */
    uint64_t x = create_ok(st, 10, 16 * MB, 1, 1);
    ck_assert_uint_eq(x, off[1]);
    for (uint64_t k = 0; k < 16 * MB; k += 4096)
        ck_assert_uint_eq(base[x + k], 0);
    memset(base + x, 0x77, 16 * MB);
    ck_assert_uint_eq(base[x + 16 * MB - 1], 0x77);
    ck_assert_uint_eq(base[off[3]], 0x13);
    ck_assert_int_eq(seal(st, 10, 1), 0);
    /* Small holes below min_hole are left; trimming a full store is fine. */
    create_ok(st, 11, mt_store_capacity(st) - 32 * MB, 1, 1);
    ck_assert_uint_eq(mt_store_used(st), mt_store_capacity(st));
    mt_store_trim(st, 0);
    mt_store_trim(st, UINT64_MAX);
    ck_assert_uint_eq(base[x], 0x77);
    mt_store_destroy(st);
}
END_TEST

START_TEST(test_trim_unaligned_holes)
{
    /* Holes that do not cover a whole page must not punch the neighbours'. */
    mt_store *st = new_store(MB);
    uint8_t *base = mt_store_base(st);
    uint64_t a = create_ok(st, 1, 64, 1, 1);
    uint64_t b = create_ok(st, 2, 4096 + 64, 1, 1); /* spans pages 0 and 1 */
    uint64_t c = create_ok(st, 3, 64, 1, 1);
    memset(base + a, 1, 64);
    memset(base + c, 3, 64);
    ck_assert_int_eq(seal(st, 2, 1), 0);
    ck_assert_int_eq(free_primary(st, 2), 0);
    ck_assert_uint_eq(b, 64);
    mt_store_trim(st, 0);
    ck_assert_uint_eq(base[a + 63], 1);
    ck_assert_uint_eq(base[c], 3);
    ck_assert_uint_eq(base[c + 63], 3);
    mt_store_destroy(st);
}
END_TEST

/* ---------------------------------------------------------------- main */

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("region");
    tcase_add_test(tc, test_new);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifecycle");
    tcase_add_test(tc, test_lifecycle);
    tcase_add_test(tc, test_pins_without_free);
    tcase_add_test(tc, test_free_while_unsealed);
    tcase_add_test(tc, test_abort);
    tcase_add_test(tc, test_zero_size);
    tcase_add_test(tc, test_destroy_with_objects);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_eexist);
    tcase_add_test(tc, test_enomem_then_free);
    tcase_add_test(tc, test_etoobig);
    suite_add_tcase(s, tc);

    tc = tcase_create("clients");
    tcase_add_test(tc, test_client_gone);
    suite_add_tcase(s, tc);

    tc = tcase_create("model");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_model);
    suite_add_tcase(s, tc);

    tc = tcase_create("trim");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_trim);
    tcase_add_test(tc, test_trim_unaligned_holes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
