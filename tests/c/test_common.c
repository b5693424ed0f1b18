/* test_common.c -- unit tests of src/common: the byte buffer (mt_buf), the
 * id hash table (mt_map, including backward-shift deletion under forced
 * collisions and a randomized run against an array model), hex helpers, the
 * tunables table with environment overrides, the error table, and the
 * overflow-safe arithmetic used on lengths from other processes. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "checked.h"
#include "config.h"
#include "ids.h"
#include "map.h"
#include "mt.h"

/* ---------------------------------------------------------------- helpers */

/* ck_assert() reports every check that passes to the parent process
 * (CK_FORK), a write per check; hot loops use this quiet form. */
#define CK(cond)                                                                                   \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg("check failed: %s", #cond);                                      \
    } while (0)

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

/* Run `fn` with stderr redirected to a file; returns what it wrote (caller
 * frees). */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/mt-test-stderr-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(fd, 2), 2);
    fn();
    fflush(stderr);
    ck_assert_int_eq(dup2(saved, 2), 2);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    ck_assert_int_ge(n, 0);
    char *out = mt_malloc((size_t)n + 1);
    ck_assert_int_eq(pread(fd, out, (size_t)n, 0), n);
    out[n] = '\0';
    close(fd);
    return out;
}

/* ---------------------------------------------------------------- buf */

START_TEST(test_buf_basic)
{
    mt_buf b;
    mt_buf_init(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(mt_buf_avail(&b), 0);
    mt_buf_append(&b, "hello", 5);
    ck_assert_uint_eq(mt_buf_avail(&b), 5);
    ck_assert_uint_ge(b.cap, 5);
    ck_assert_mem_eq(mt_buf_head(&b), "hello", 5);
    mt_buf_append(&b, NULL, 0); /* empty append is fine */
    ck_assert_uint_eq(mt_buf_avail(&b), 5);
    mt_buf_consume(&b, 2);
    ck_assert_uint_eq(mt_buf_avail(&b), 3);
    ck_assert_mem_eq(mt_buf_head(&b), "llo", 3);
    mt_buf_consume(&b, 3); /* empty: cursor resets */
    ck_assert_uint_eq(b.off, 0);
    ck_assert_uint_eq(b.len, 0);
    mt_buf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.cap, 0);
    mt_buf_free(&b); /* twice is harmless */
}
END_TEST

START_TEST(test_buf_reserve)
{
    mt_buf b;
    mt_buf_init(&b);
    uint8_t *w = mt_buf_reserve(&b, 10);
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_eq(w, b.data);
    ck_assert_uint_ge(b.cap, 10);
    ck_assert_uint_eq(b.len, 0); /* reserve does not write */
    memcpy(w, "0123456789", 10);
    b.len += 10;
    /* Reserving what fits returns the write position without moving. */
    uint8_t *data = b.data;
    w = mt_buf_reserve(&b, b.cap - b.len);
    ck_assert_ptr_eq(b.data, data);
    ck_assert_ptr_eq(w, b.data + 10);
    /* Growing keeps the bytes and gives at least what was asked. */
    w = mt_buf_reserve(&b, 100000);
    ck_assert_uint_ge(b.cap - b.len, 100000);
    ck_assert_ptr_eq(w, b.data + b.len);
    ck_assert_mem_eq(b.data, "0123456789", 10);
    ck_assert_uint_eq(b.cap & (b.cap - 1), 0); /* doubling from 256 */
    mt_buf_free(&b);
}
END_TEST

START_TEST(test_buf_compaction)
{
    mt_buf b;
    mt_buf_init(&b);
    uint8_t chunk[100];
    for (int i = 0; i < 100; i++)
        chunk[i] = (uint8_t)i;
    mt_buf_append(&b, chunk, 100);
    mt_buf_append(&b, chunk, 100);
    size_t cap = b.cap;
    ck_assert_uint_eq(cap, 256);
    mt_buf_consume(&b, 150); /* off >= len / 2: the next growth slides */
    uint8_t *w = mt_buf_reserve(&b, 150);
    ck_assert_uint_eq(b.cap, cap); /* made room without growing */
    ck_assert_uint_eq(b.off, 0);
    ck_assert_uint_eq(b.len, 50);
    ck_assert_ptr_eq(w, b.data + 50);
    ck_assert_mem_eq(b.data, chunk + 50, 50);
    /* Mostly unread: growth reallocates instead of sliding. */
    mt_buf_append(&b, chunk, 100); /* len 150 */
    mt_buf_consume(&b, 10);
    mt_buf_reserve(&b, 200);
    ck_assert_uint_eq(b.off, 10);
    ck_assert_uint_gt(b.cap, cap);
    ck_assert_uint_eq(mt_buf_avail(&b), 140);
    ck_assert_mem_eq(mt_buf_head(&b), chunk + 60, 40);
    ck_assert_mem_eq(mt_buf_head(&b) + 40, chunk, 100);
    mt_buf_free(&b);
}
END_TEST

START_TEST(test_buf_stream)
{
    /* A byte stream pushed and pulled in random pieces stays in order. */
    mt_buf b;
    mt_buf_init(&b);
    rng_state = 12345;
    uint64_t wr = 0, rd = 0;
    uint8_t tmp[5000];
    for (int round = 0; round < 20000; round++) {
        if (rng() % 2) {
            size_t n = rng() % sizeof tmp;
            for (size_t i = 0; i < n; i++)
                tmp[i] = (uint8_t)((wr + i) * 7);
            mt_buf_append(&b, tmp, n);
            wr += n;
        } else {
            size_t avail = mt_buf_avail(&b);
            size_t n = avail ? rng() % (avail + 1) : 0;
            for (size_t i = 0; i < n; i++)
                CK(mt_buf_head(&b)[i] == (uint8_t)((rd + i) * 7));
            mt_buf_consume(&b, n);
            rd += n;
        }
        CK(mt_buf_avail(&b) == wr - rd);
        CK(b.off <= b.len && b.len <= b.cap);
    }
    mt_buf_free(&b);
}
END_TEST

START_TEST(test_buf_reset)
{
    mt_buf b;
    mt_buf_init(&b);
    mt_buf_append(&b, "abc", 3);
    size_t cap = b.cap;
    mt_buf_reset(&b, cap); /* within keep: storage stays */
    ck_assert_uint_eq(mt_buf_avail(&b), 0);
    ck_assert_uint_eq(b.cap, cap);
    ck_assert_ptr_nonnull(b.data);
    mt_buf_append(&b, "abc", 3);
    mt_buf_consume(&b, 1);
    mt_buf_reset(&b, cap - 1); /* above keep: storage freed */
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.cap, 0);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.off, 0);
    mt_buf_append(&b, "xyz", 3); /* usable again */
    ck_assert_mem_eq(mt_buf_head(&b), "xyz", 3);
    mt_buf_free(&b);
}
END_TEST

START_TEST(test_buf_overconsume_aborts)
{
    mt_buf b;
    mt_buf_init(&b);
    mt_buf_append(&b, "ab", 2);
    mt_buf_consume(&b, 3); /* a bug in the caller: asserts */
}
END_TEST

/* ---------------------------------------------------------------- map */

typedef struct item {
    uint32_t tag;
    uint8_t key[20];
    int value;
} item;

static mt_map new_map(void)
{
    mt_map m;
    mt_map_init(&m, offsetof(item, key), sizeof(((item *)0)->key));
    return m;
}

static uint64_t item_hash(const uint8_t key[20])
{
    uint64_t h = mt_hash_bytes(key, 20);
    return h ? h : 1;
}

static void key_from(uint8_t key[20], uint64_t n)
{
    memset(key, 0, 20);
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t)(n >> (8 * i));
    key[19] = 0xa5;
}

/* The probing invariant: every item sits in its home slot or after it with
 * no empty slot in between, and the size matches. */
static void check_map(const mt_map *m)
{
    size_t used = 0;
    for (size_t i = 0; i < m->cap; i++) {
        const mt_map_slot *s = &m->slots[i];
        if (!s->hash) {
            CK(s->item == NULL);
            continue;
        }
        used++;
        const item *it = s->item;
        CK(s->hash == item_hash(it->key));
        for (size_t j = s->hash & (m->cap - 1); j != i; j = (j + 1) & (m->cap - 1))
            if (!m->slots[j].hash) ck_abort_msg("hole between home and slot %zu", i);
        CK(mt_map_get(m, it->key) == it);
    }
    ck_assert_uint_eq(used, m->size);
    if (m->cap) ck_assert_uint_le(m->size * 4, m->cap * 3);
}

START_TEST(test_map_basic)
{
    mt_map m = new_map();
    uint8_t k[20];
    key_from(k, 1);
    ck_assert_ptr_null(mt_map_get(&m, k)); /* empty, no storage */
    ck_assert_ptr_null(mt_map_del(&m, k));
    size_t it = 0;
    ck_assert_ptr_null(mt_map_next(&m, &it));
    item items[100];
    for (int i = 0; i < 100; i++) {
        key_from(items[i].key, (uint64_t)i);
        items[i].value = i;
        mt_map_put(&m, &items[i]);
        ck_assert_uint_eq(m.size, (size_t)i + 1);
    }
    check_map(&m);
    for (int i = 0; i < 100; i++) {
        key_from(k, (uint64_t)i);
        item *got = mt_map_get(&m, k);
        ck_assert_ptr_eq(got, &items[i]);
    }
    key_from(k, 100);
    ck_assert_ptr_null(mt_map_get(&m, k));
    ck_assert_ptr_null(mt_map_del(&m, k));
    for (int i = 0; i < 100; i += 2) {
        key_from(k, (uint64_t)i);
        ck_assert_ptr_eq(mt_map_del(&m, k), &items[i]);
        ck_assert_ptr_null(mt_map_del(&m, k));
        ck_assert_ptr_null(mt_map_get(&m, k));
    }
    ck_assert_uint_eq(m.size, 50);
    check_map(&m);
    for (int i = 1; i < 100; i += 2) {
        key_from(k, (uint64_t)i);
        ck_assert_ptr_eq(mt_map_get(&m, k), &items[i]);
    }
    mt_map_free(&m);
    ck_assert_uint_eq(m.size, 0);
    ck_assert_ptr_null(mt_map_get(&m, k));
    mt_map_free(&m);
}
END_TEST

/* Keys whose hashes agree in the low `bits` bits (and so share a home slot
 * in every table of up to 2^bits slots), found by brute force. */
static void colliding_keys(uint8_t (*keys)[20], size_t n, unsigned bits, uint64_t want,
                           uint64_t *counter)
{
    uint64_t mask = (1ull << bits) - 1;
    for (size_t found = 0; found < n;) {
        key_from(keys[found], (*counter)++);
        if ((item_hash(keys[found]) & mask) == want) found++;
    }
}

START_TEST(test_map_collisions)
{
    enum { N = 40 };
    static uint8_t keys[N][20];
    uint64_t counter = 0;
    colliding_keys(keys, N, 12, 77, &counter);
    rng_state = 99;
    for (int round = 0; round < 50; round++) {
        mt_map m = new_map();
        item items[N];
        for (int i = 0; i < N; i++) {
            memcpy(items[i].key, keys[i], 20);
            items[i].value = i;
            mt_map_put(&m, &items[i]);
        }
        check_map(&m);
        /* Delete in a random order, checking the probe runs every time. */
        int order[N];
        for (int i = 0; i < N; i++)
            order[i] = i;
        for (int i = N - 1; i > 0; i--) {
            int j = (int)(rng() % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int i = 0; i < N; i++) {
            ck_assert_ptr_eq(mt_map_del(&m, keys[order[i]]), &items[order[i]]);
            check_map(&m);
            for (int j = i + 1; j < N; j++)
                CK(mt_map_get(&m, keys[order[j]]) == &items[order[j]]);
        }
        ck_assert_uint_eq(m.size, 0);
        mt_map_free(&m);
    }
}
END_TEST

START_TEST(test_map_wraparound)
{
    /* A 64-slot table holds up to 48 items.  Keys homed at slots 61..63 and
     * 0..1 build probe runs that wrap past the end, and deletes must pull
     * wrapped entries back across the boundary (and leave alone those whose
     * home is after the hole). */
    enum { PER_HOME = 6, NHOMES = 5, N = PER_HOME * NHOMES };
    static const uint64_t homes[NHOMES] = {61, 62, 63, 0, 1};
    static uint8_t keys[N][20];
    uint64_t counter = 1000;
    for (int h = 0; h < NHOMES; h++)
        colliding_keys(keys + h * PER_HOME, PER_HOME, 6, homes[h], &counter);
    rng_state = 7;
    for (int round = 0; round < 200; round++) {
        mt_map m = new_map();
        item items[N];
        int perm[N];
        for (int i = 0; i < N; i++)
            perm[i] = i;
        for (int i = N - 1; i > 0; i--) {
            int j = (int)(rng() % (uint64_t)(i + 1)), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (int i = 0; i < N; i++) { /* insert in a random order */
            memcpy(items[perm[i]].key, keys[perm[i]], 20);
            mt_map_put(&m, &items[perm[i]]);
        }
        ck_assert_uint_eq(m.cap, 64);
        check_map(&m);
        bool gone[N] = {false};
        for (int i = 0; i < N; i++) {
            int victim = (int)(rng() % N);
            void *got = mt_map_del(&m, keys[victim]);
            CK(got == (gone[victim] ? NULL : (void *)&items[victim]));
            gone[victim] = true;
            check_map(&m);
            for (int j = 0; j < N; j++)
                CK(mt_map_get(&m, keys[j]) == (gone[j] ? NULL : &items[j]));
        }
        mt_map_free(&m);
    }
}
END_TEST

START_TEST(test_map_iterate)
{
    mt_map m = new_map();
    size_t n = 12345;
    void **snap = mt_map_items(&m, &n); /* empty map: an array, n = 0 */
    ck_assert_ptr_nonnull(snap);
    ck_assert_uint_eq(n, 0);
    free(snap);
    enum { N = 1000 };
    item *items = mt_calloc(N, sizeof *items);
    for (int i = 0; i < N; i++) {
        key_from(items[i].key, (uint64_t)i * 31);
        items[i].value = i;
        mt_map_put(&m, &items[i]);
    }
    int seen[N] = {0};
    size_t count = 0;
    item *it;
    for (size_t i = 0; (it = mt_map_next(&m, &i));) {
        ck_assert(it >= items && it < items + N);
        seen[it->value]++;
        count++;
    }
    ck_assert_uint_eq(count, N);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(seen[i], 1);
    snap = mt_map_items(&m, &n);
    ck_assert_uint_eq(n, N);
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < n; i++)
        seen[((item *)snap[i])->value]++;
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(seen[i], 1);
    /* The snapshot allows deleting everything while walking it. */
    for (size_t i = 0; i < n; i++)
        ck_assert_ptr_eq(mt_map_del(&m, ((item *)snap[i])->key), snap[i]);
    ck_assert_uint_eq(m.size, 0);
    size_t iter = 0;
    ck_assert_ptr_null(mt_map_next(&m, &iter));
    free(snap);
    mt_map_free(&m);
    free(items);
}
END_TEST

/* 100k random puts, gets and deletes against an array model; keys are
 * drawn from a small universe so every operation hits both cases, and half
 * the universe shares one home slot so probe runs get long. */
START_TEST(test_map_model)
{
    enum { UNIVERSE = 3000, OPS = 100000, COLLIDING = 200 };
    item *items = mt_calloc(UNIVERSE, sizeof *items);
    bool *present = mt_calloc(UNIVERSE, sizeof *present);
    uint8_t(*keys)[20] = mt_malloc(UNIVERSE * sizeof *keys);
    uint64_t counter = 1u << 20;
    colliding_keys(keys, COLLIDING, 10, 3, &counter);
    for (int i = COLLIDING; i < UNIVERSE; i++)
        key_from(keys[i], (uint64_t)i * 2654435761u);
    for (int i = 0; i < UNIVERSE; i++) {
        memcpy(items[i].key, keys[i], 20);
        items[i].value = i;
    }
    mt_map m = new_map();
    size_t size = 0;
    rng_state = 0xC0FFEE;
    for (int op = 0; op < OPS; op++) {
        /* Early on bias toward growth, later toward shrinking. */
        unsigned put_pct = op < OPS / 2 ? 60 : 35;
        int k = (int)(rng() % UNIVERSE);
        if (rng() % 2 == 0 && k >= COLLIDING) k = (int)(rng() % COLLIDING);
        unsigned r = (unsigned)(rng() % 100);
        if (r < put_pct) {
            if (!present[k]) {
                mt_map_put(&m, &items[k]);
                present[k] = true;
                size++;
            }
        } else if (r < put_pct + 25) {
            CK(mt_map_del(&m, keys[k]) == (present[k] ? &items[k] : NULL));
            if (present[k]) size--;
            present[k] = false;
        } else {
            CK(mt_map_get(&m, keys[k]) == (present[k] ? &items[k] : NULL));
        }
        CK(m.size == size);
        if (op % 5000 == 0) {
            check_map(&m);
            for (int i = 0; i < UNIVERSE; i++)
                CK(mt_map_get(&m, keys[i]) == (present[i] ? &items[i] : NULL));
        }
    }
    check_map(&m);
    size_t n;
    void **snap = mt_map_items(&m, &n);
    ck_assert_uint_eq(n, size);
    for (size_t i = 0; i < n; i++)
        ck_assert(present[((item *)snap[i])->value]);
    free(snap);
    mt_map_free(&m);
    free(keys);
    free(present);
    free(items);
}
END_TEST

/* ---------------------------------------------------------------- hex, ids */

START_TEST(test_hex)
{
    uint8_t bytes[256], back[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (uint8_t)i;
    char hex[513];
    ck_assert_ptr_eq(mt_hex(bytes, 256, hex), hex);
    ck_assert_uint_eq(strlen(hex), 512);
    ck_assert(strncmp(hex, "000102030405060708090a0b0c0d0e0f10", 34) == 0);
    ck_assert_str_eq(hex + 500, "fafbfcfdfeff");
    ck_assert_int_eq(mt_unhex(hex, back, 256), 0);
    ck_assert_mem_eq(back, bytes, 256);
    ck_assert_str_eq(mt_hex(bytes, 0, hex), "");
    ck_assert_int_eq(mt_unhex("", back, 0), 0);
    uint8_t two[2] = {0};
    ck_assert_int_eq(mt_unhex("AbCd", two, 2), 0); /* either case */
    ck_assert_uint_eq(two[0], 0xab);
    ck_assert_uint_eq(two[1], 0xcd);
    static const char *bad[] = {"abc",  "abcde", "",     "abcg", "0x12",
                                " 123", "12 3",  "zz00", "ab\n1"};
    for (size_t i = 0; i < MT_ARRAY_LEN(bad); i++) {
        two[0] = 0x11;
        int rc = mt_unhex(bad[i], two, 2);
        ck_assert_msg(rc == -1, "'%s' accepted", bad[i]);
    }
}
END_TEST

START_TEST(test_ids)
{
    mt_tid t;
    for (int i = 0; i < MT_TASK_ID_LEN; i++)
        t.b[i] = (uint8_t)(i + 1);
    mt_oid o = mt_oid_for(&t, 0x01020304);
    ck_assert_uint_eq(mt_oid_index(&o), 0x01020304);
    ck_assert_uint_eq(o.b[16], 4);
    ck_assert_uint_eq(o.b[19], 1);
    mt_tid back = mt_oid_task(&o);
    ck_assert(MT_ID_EQ(back, t));
    mt_oid max = mt_oid_for(&t, UINT32_MAX);
    ck_assert_uint_eq(mt_oid_index(&max), UINT32_MAX);
    mt_oid nil;
    memset(&nil, 0, sizeof nil);
    ck_assert(MT_ID_IS_NIL(nil));
    ck_assert(!MT_ID_IS_NIL(o));
    nil.b[19] = 1;
    ck_assert(!MT_ID_IS_NIL(nil));
    mt_wid a, b;
    mt_random_bytes(a.b, sizeof a.b);
    mt_random_bytes(b.b, sizeof b.b);
    ck_assert(!MT_ID_EQ(a, b)); /* 2^-128 */
    ck_assert_uint_eq(mt_hash_bytes("abc", 3), mt_hash_bytes("abc", 3));
    ck_assert_uint_ne(mt_hash_bytes("abc", 3), mt_hash_bytes("abd", 3));
}
END_TEST

/* ---------------------------------------------------------------- config */

static void clear_env(void)
{
#define MT_CFG_UNSET_(type, name, def, doc)                                                        \
    {                                                                                              \
        char env[96] = "MANTA_";                                                                   \
        const char *p = #name;                                                                     \
        size_t k = 6;                                                                              \
        for (; *p; p++)                                                                            \
            env[k++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);                              \
        env[k] = '\0';                                                                             \
        unsetenv(env);                                                                             \
    }
    MT_CONFIG_TABLE(MT_CFG_UNSET_)
#undef MT_CFG_UNSET_
}

static void check_defaults(void)
{
#define MT_CFG_CHECK_(type, name, def, doc)                                                        \
    ck_assert_msg(mt_cfg.name == (def), #name " is not its default");
    MT_CONFIG_TABLE(MT_CFG_CHECK_)
#undef MT_CFG_CHECK_
}

START_TEST(test_config_defaults)
{
    clear_env();
    memset(&mt_cfg, 0x5a, sizeof mt_cfg);
    mt_config_load();
    check_defaults();
    ck_assert_int_eq(mt_cfg.max_inline_bytes, 100 * 1024);
    ck_assert_int_eq(mt_cfg.max_frame_bytes, 512 * 1024 * 1024);
    ck_assert(mt_cfg.memory_usage_threshold == 0.95);
}
END_TEST

START_TEST(test_config_env)
{
    clear_env();
    setenv("MANTA_MAX_INLINE_BYTES", "4096", 1);
    setenv("MANTA_PRESTART_WORKERS", "-1", 1);
    setenv("MANTA_IDLE_LEASE_MS", "+25", 1);
    setenv("MANTA_SPIN_US", " 7", 1); /* strtoll skips leading blanks */
    setenv("MANTA_MAX_FRAME_BYTES", "9223372036854775807", 1);
    setenv("MANTA_MEMORY_USAGE_THRESHOLD", "0.5", 1);
    setenv("MANTA_LOG_LEVEL", "", 1); /* empty: the default */
    mt_config_load();
    ck_assert_int_eq(mt_cfg.max_inline_bytes, 4096);
    ck_assert_int_eq(mt_cfg.prestart_workers, -1);
    ck_assert_int_eq(mt_cfg.idle_lease_ms, 25);
    ck_assert_int_eq(mt_cfg.spin_us, 7);
    ck_assert_int_eq(mt_cfg.max_frame_bytes, INT64_MAX);
    ck_assert(mt_cfg.memory_usage_threshold == 0.5);
    ck_assert_int_eq(mt_cfg.log_level, 1);
    ck_assert_int_eq(mt_cfg.report_ms, 100); /* untouched */
    setenv("MANTA_MEMORY_USAGE_THRESHOLD", "1e-1", 1);
    mt_config_load();
    ck_assert(mt_cfg.memory_usage_threshold == 0.1);
    /* Loading again after the environment is gone restores the defaults. */
    clear_env();
    mt_config_load();
    check_defaults();
}
END_TEST

static void load_quietly(void)
{
    mt_config_load();
}

START_TEST(test_config_malformed)
{
    static const struct {
        const char *env, *value;
    } bad[] = {
        {"MANTA_MAX_INLINE_BYTES", "12abc"},
        {"MANTA_MAX_INLINE_BYTES", "abc"},
        {"MANTA_MAX_INLINE_BYTES", "4096 "},
        {"MANTA_MAX_INLINE_BYTES", "1.5"},
        {"MANTA_MAX_INLINE_BYTES", "0x10"},
        {"MANTA_MAX_INLINE_BYTES", "99999999999999999999"},  /* ERANGE */
        {"MANTA_MAX_INLINE_BYTES", "-99999999999999999999"}, /* ERANGE */
        {"MANTA_MAX_INLINE_BYTES", "-"},
        {"MANTA_MEMORY_USAGE_THRESHOLD", "half"},
        {"MANTA_MEMORY_USAGE_THRESHOLD", "0.5x"},
        {"MANTA_MEMORY_USAGE_THRESHOLD", "1e400"}, /* ERANGE */
        {"MANTA_MEMORY_USAGE_THRESHOLD", "."},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(bad); i++) {
        clear_env();
        setenv(bad[i].env, bad[i].value, 1);
        char *err = capture_stderr(load_quietly);
        check_defaults(); /* ignored */
        char want[128];
        snprintf(want, sizeof want, "ignoring %s=%s", bad[i].env, bad[i].value);
        ck_assert_msg(strstr(err, want) != NULL, "no warning for %s=%s: '%s'", bad[i].env,
                      bad[i].value, err);
        free(err);
    }
    /* A malformed value does not spoil its neighbours. */
    clear_env();
    setenv("MANTA_MAX_INLINE_BYTES", "x", 1);
    setenv("MANTA_SPIN_US", "3", 1);
    free(capture_stderr(load_quietly));
    ck_assert_int_eq(mt_cfg.max_inline_bytes, 100 * 1024);
    ck_assert_int_eq(mt_cfg.spin_us, 3);
    clear_env();
}
END_TEST

START_TEST(test_config_dump)
{
    clear_env();
    setenv("MANTA_FN_WAIT_MS", "1234", 1);
    mt_config_load();
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    mt_config_dump(fds[1]);
    close(fds[1]);
    char out[16384];
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)r;
    close(fds[0]);
    out[n] = '\0';
#define MT_CFG_NAME_(type, name, def, doc)                                                         \
    ck_assert_msg(strstr(out, #name) != NULL, #name " missing from the dump");                     \
    ck_assert_msg(strstr(out, doc) != NULL, #name "'s doc missing from the dump");
    MT_CONFIG_TABLE(MT_CFG_NAME_)
#undef MT_CFG_NAME_
    const char *line = strstr(out, "fn_wait_ms");
    ck_assert_ptr_nonnull(line);
    ck_assert_ptr_nonnull(strstr(line, "1234"));
    clear_env();
}
END_TEST

/* ---------------------------------------------------------------- errors */

typedef struct err_row {
    int code;
    const char *name, *text;
} err_row;

static const err_row err_rows[] = {
#define MT_ERR_ROW_(name, val, text) {val, "MANTA_" #name, text},
    MANTA_ERRNO_MAP(MT_ERR_ROW_)
#undef MT_ERR_ROW_
};

START_TEST(test_err_table)
{
    ck_assert_str_eq(manta_strerror(0), "success");
    ck_assert_str_eq(manta_err_name(0), "MANTA_OK");
    ck_assert_uint_ge(MT_ARRAY_LEN(err_rows), 24);
    for (size_t i = 0; i < MT_ARRAY_LEN(err_rows); i++) {
        const err_row *r = &err_rows[i];
        ck_assert_int_eq(r->code, -(int)(i + 1)); /* dense, no gaps */
        ck_assert_str_eq(manta_strerror(r->code), r->text);
        ck_assert_str_eq(manta_err_name(r->code), r->name);
        ck_assert_str_ne(r->text, "unknown error");
        for (size_t j = 0; j < i; j++) {
            ck_assert_str_ne(err_rows[j].name, r->name);
            ck_assert_str_ne(err_rows[j].text, r->text);
        }
    }
    ck_assert_str_eq(manta_err_name(MANTA_ETIMEDOUT), "MANTA_ETIMEDOUT");
    ck_assert_str_eq(manta_strerror(MANTA_EPROTO), "malformed or unexpected message");
    static const int unknown[] = {1, 2, 100, -27, -100, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < MT_ARRAY_LEN(unknown); i++) {
        ck_assert_str_eq(manta_strerror(unknown[i]), "unknown error");
        ck_assert_str_eq(manta_err_name(unknown[i]), "MANTA_EUNKNOWN");
    }
}
END_TEST

static void *other_thread(void *arg)
{
    /* Each thread has its own detail. */
    const char **seen = arg;
    seen[0] = mt_strdup(manta_last_error());
    mt_err(MANTA_ECONN, "thread detail");
    seen[1] = mt_strdup(manta_last_error());
    return NULL;
}

START_TEST(test_err_detail)
{
    mt_err_clear();
    ck_assert_str_eq(manta_last_error(), "");
    for (size_t i = 0; i < MT_ARRAY_LEN(err_rows); i++) {
        int code = err_rows[i].code;
        ck_assert_int_eq(mt_err(code, "detail %d of %s", (int)i, err_rows[i].name), code);
        char want[128];
        snprintf(want, sizeof want, "detail %d of %s", (int)i, err_rows[i].name);
        ck_assert_str_eq(manta_last_error(), want);
    }
    /* An error that wraps the previous one reads it whole. */
    mt_err(MANTA_EINVAL, "cannot resolve host h.invalid");
    mt_err(MANTA_ECONN, "cannot connect to %s: %s", "h.invalid:1", manta_last_error());
    ck_assert_str_eq(manta_last_error(), "cannot connect to h.invalid:1: cannot resolve host h.invalid");
    mt_err_clear();
    ck_assert_str_eq(manta_last_error(), "");
    /* Long details are cut, not overflowed. */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(mt_err(MANTA_EINVAL, "%s", big), MANTA_EINVAL);
    ck_assert_uint_eq(strlen(manta_last_error()), 511);
    /* errno detail */
    errno = ENOENT;
    ck_assert_int_eq(mt_err_sys("open /nope"), MANTA_ESYS);
    ck_assert_str_eq(manta_last_error(), "open /nope: No such file or directory");
    /* Thread-local */
    mt_err(MANTA_EINVAL, "main detail");
    const char *seen[2] = {NULL, NULL};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, other_thread, seen), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_str_eq(seen[0], "");
    ck_assert_str_eq(seen[1], "thread detail");
    ck_assert_str_eq(manta_last_error(), "main detail");
    free((void *)seen[0]);
    free((void *)seen[1]);
}
END_TEST

START_TEST(test_alloc_helpers)
{
    char *s = mt_strdup("manta");
    ck_assert_str_eq(s, "manta");
    free(s);
    s = mt_strndup("manta ray", 5);
    ck_assert_str_eq(s, "manta");
    free(s);
    void *p = mt_memdup("abc", 3);
    ck_assert_mem_eq(p, "abc", 3);
    free(p);
    p = mt_memdup(NULL, 0); /* zero bytes: a valid pointer */
    ck_assert_ptr_nonnull(p);
    free(p);
    p = mt_malloc(0);
    ck_assert_ptr_nonnull(p);
    p = mt_realloc(p, 100);
    ck_assert_ptr_nonnull(p);
    free(p);
    int *z = mt_calloc(10, sizeof *z);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(z[i], 0);
    free(z);
    uint64_t t0 = mt_now_ns();
    ck_assert_uint_ge(mt_now_ns(), t0);
    ck_assert(mt_wall_s() > 1.6e9);
}
END_TEST

START_TEST(test_assert_aborts)
{
    int x = 0;
    mt_assert(x == 1);
}
END_TEST

/* ---------------------------------------------------------------- checked */

START_TEST(test_checked_arith)
{
    uint64_t r64;
    size_t rs;
    ck_assert(mt_add_u64(1, 2, &r64) && r64 == 3);
    ck_assert(mt_add_u64(UINT64_MAX - 1, 1, &r64) && r64 == UINT64_MAX);
    ck_assert(!mt_add_u64(UINT64_MAX, 1, &r64));
    ck_assert(!mt_add_u64(UINT64_MAX - 255, 512, &r64)); /* the wrapping chunk offset */
    ck_assert(mt_mul_u64(1ull << 31, 1ull << 32, &r64) && r64 == 1ull << 63);
    ck_assert(!mt_mul_u64(1ull << 32, 1ull << 32, &r64));
    ck_assert(mt_add_size(SIZE_MAX - 1, 1, &rs) && rs == SIZE_MAX);
    ck_assert(!mt_add_size(SIZE_MAX, 1, &rs));
    ck_assert(mt_mul_size(16, 4, &rs) && rs == 64);
    ck_assert(!mt_mul_size(SIZE_MAX / 2 + 1, 2, &rs));
    ck_assert(mt_align_up_u64(65, 64, &r64) && r64 == 128);
    ck_assert(mt_align_up_u64(128, 64, &r64) && r64 == 128);
    ck_assert(mt_align_up_u64(0, 64, &r64) && r64 == 0);
    ck_assert(!mt_align_up_u64(UINT64_MAX - 10, 64, &r64));
}
END_TEST

START_TEST(test_checked_span)
{
    ck_assert(mt_span_ok(0, 0, 0));
    ck_assert(mt_span_ok(0, 100, 100));
    ck_assert(mt_span_ok(100, 0, 100));
    ck_assert(mt_span_ok(40, 60, 100));
    ck_assert(!mt_span_ok(40, 61, 100));
    ck_assert(!mt_span_ok(101, 0, 100));
    /* offset + len wraps to 256, which a naive check lets through */
    ck_assert(!mt_span_ok(UINT64_MAX - 255, 512, 4096));
    ck_assert(!mt_span_ok(0, UINT64_MAX, 4096));
    ck_assert(!mt_span_ok(UINT64_MAX, UINT64_MAX, UINT64_MAX - 1));
}
END_TEST

/* ---------------------------------------------------------------- main */

START_TEST(test_token_eq)
{
    const char *tok = "0123456789abcdef";
    ck_assert(mt_token_eq(tok, (const uint8_t *)"0123456789abcdef", 16));
    ck_assert(!mt_token_eq(tok, (const uint8_t *)"0123456789abcdee", 16)); /* last byte */
    ck_assert(!mt_token_eq(tok, (const uint8_t *)"1123456789abcdef", 16)); /* first byte */
    ck_assert(!mt_token_eq(tok, (const uint8_t *)"0123456789abcde", 15));  /* a prefix */
    ck_assert(!mt_token_eq(tok, (const uint8_t *)"0123456789abcdef0", 17));
    ck_assert(!mt_token_eq(tok, (const uint8_t *)"", 0));
}
END_TEST

static Suite *common_suite(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("buf");
    tcase_add_test(tc, test_buf_basic);
    tcase_add_test(tc, test_buf_reserve);
    tcase_add_test(tc, test_buf_compaction);
    tcase_add_test(tc, test_buf_stream);
    tcase_add_test(tc, test_buf_reset);
    tcase_add_test_raise_signal(tc, test_buf_overconsume_aborts, SIGABRT);
    suite_add_tcase(s, tc);

    tc = tcase_create("map");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_map_basic);
    tcase_add_test(tc, test_map_collisions);
    tcase_add_test(tc, test_map_wraparound);
    tcase_add_test(tc, test_map_iterate);
    tcase_add_test(tc, test_map_model);
    suite_add_tcase(s, tc);

    tc = tcase_create("misc");
    tcase_add_test(tc, test_hex);
    tcase_add_test(tc, test_ids);
    tcase_add_test(tc, test_alloc_helpers);
    tcase_add_test(tc, test_token_eq);
    tcase_add_test_raise_signal(tc, test_assert_aborts, SIGABRT);
    suite_add_tcase(s, tc);

    tc = tcase_create("checked");
    tcase_add_test(tc, test_checked_arith);
    tcase_add_test(tc, test_checked_span);
    suite_add_tcase(s, tc);

    tc = tcase_create("config");
    tcase_add_test(tc, test_config_defaults);
    tcase_add_test(tc, test_config_env);
    tcase_add_test(tc, test_config_malformed);
    tcase_add_test(tc, test_config_dump);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_err_table);
    tcase_add_test(tc, test_err_detail);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(common_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
