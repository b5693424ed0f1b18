/* test_value.c -- unit tests of src/core/value.c: the serialized value
 * layout (size, write, parse) with 0..5 out-of-band buffers and their
 * 64-byte alignment, rejection of truncated and corrupted headers (also
 * when rewritten after the parse, as shared memory can be), error
 * values, raw values, and the counted value buffers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt.h"
#include "value.h"

/* ---------------------------------------------------------------- helpers */

/* ck_assert() reports every check that passes to the parent process
 * (CK_FORK), a write per check; hot loops use this quiet form. */
#define CK(cond)                                                                                   \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg("check failed: %s", #cond);                                      \
    } while (0)

static void put64(uint8_t *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

static void put32(uint8_t *p, uint32_t x)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

/* A serialized value with `meta_len` bytes of meta and the given buffers,
 * filled with patterns; its size in *size.  64-aligned like store memory. */
static uint8_t *make_value(uint8_t fmt, int32_t code, uint64_t meta_len, const uint64_t *lens,
                           uint32_t nbufs, uint64_t *size)
{
    *size = mt_valfmt_size(meta_len, lens, nbufs);
    uint8_t *p = aligned_alloc(64, MT_ALIGN_UP(*size ? *size : 1, 64));
    memset(p, 0xcc, *size);
    uint64_t meta_off = mt_valfmt_write(p, fmt, code, meta_len, lens, nbufs);
    ck_assert_uint_eq(meta_off, MT_VAL_HDR + 16ull * nbufs);
    for (uint64_t i = 0; i < meta_len; i++)
        p[meta_off + i] = (uint8_t)(i * 3 + 1);
    for (uint32_t b = 0; b < nbufs; b++) {
        uint64_t off = mt_valfmt_buf_off(p, b);
        for (uint64_t i = 0; i < lens[b]; i++)
            p[off + i] = (uint8_t)(b * 41 + i);
    }
    return p;
}

static void parse_ok(const uint8_t *p, uint64_t size, mt_valview *v)
{
    int rc = mt_valfmt_parse(p, size, v);
    ck_assert_msg(rc == 0, "parse failed: %s", manta_last_error());
}

static void parse_bad(const uint8_t *p, uint64_t size, const char *why)
{
    mt_valview v;
    mt_err_clear();
    ck_assert_int_eq(mt_valfmt_parse(p, size, &v), MANTA_EPROTO);
    ck_assert_msg(strstr(manta_last_error(), why) != NULL, "detail '%s' lacks '%s'",
                  manta_last_error(), why);
}

/* ---------------------------------------------------------------- layout */

START_TEST(test_roundtrip)
{
    static const uint64_t metas[] = {0, 1, 7, 40, 63, 64, 65, 1000};
    static const uint64_t lens_pool[] = {0, 1, 63, 64, 65, 100, 4096, 12345};
    uint64_t seed = 1;
    for (uint32_t nbufs = 0; nbufs <= 5; nbufs++) {
        for (size_t mi = 0; mi < MT_ARRAY_LEN(metas); mi++) {
            for (int variant = 0; variant < 6; variant++) {
                uint64_t lens[5];
                for (uint32_t b = 0; b < nbufs; b++) {
                    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                    lens[b] = lens_pool[(seed >> 33) % MT_ARRAY_LEN(lens_pool)];
                }
                uint64_t size;
                uint8_t fmt = nbufs ? MT_FMT_PICKLE : MT_FMT_RAW;
                uint8_t *p = make_value(fmt, -(int32_t)variant, metas[mi], lens, nbufs, &size);
                mt_valview v;
                parse_ok(p, size, &v);
                ck_assert_uint_eq(v.fmt, fmt);
                ck_assert_int_eq(v.code, -variant);
                ck_assert_uint_eq(v.nbufs, nbufs);
                ck_assert_uint_eq(v.meta_len, metas[mi]);
                ck_assert_ptr_eq(v.meta, p + MT_VAL_HDR + 16 * nbufs);
                ck_assert_ptr_eq(v.base, p);
                ck_assert_uint_eq(v.size, size);
                for (uint64_t i = 0; i < metas[mi]; i++)
                    CK(v.meta[i] == (uint8_t)(i * 3 + 1));
                uint64_t end = MT_VAL_HDR + 16ull * nbufs + metas[mi];
                for (uint32_t b = 0; b < nbufs; b++) {
                    const uint8_t *bp = NULL;
                    uint64_t len = 0;
                    ck_assert_int_eq(mt_valview_buf(&v, b, &bp, &len), 0);
                    ck_assert_uint_eq(len, lens[b]);
                    uint64_t off = (uint64_t)(bp - p);
                    ck_assert_uint_eq(off, mt_valfmt_buf_off(p, b));
                    ck_assert_uint_eq(off % MT_VAL_ALIGN, 0);   /* aligned in the value */
                    ck_assert_uint_eq((uintptr_t)bp % 64, 0);   /* and in memory */
                    ck_assert_uint_ge(off, end);                /* no overlap, in order */
                    ck_assert_uint_lt(off - end, MT_VAL_ALIGN); /* no waste */
                    for (uint64_t i = 0; i < len; i++)
                        CK(bp[i] == (uint8_t)(b * 41 + i));
                    end = off + len;
                }
                ck_assert_uint_eq(end, size); /* nothing after the last section */
                const uint8_t *bp;
                uint64_t len;
                ck_assert_int_eq(mt_valview_buf(&v, nbufs, &bp, &len), MANTA_EINVAL);
                ck_assert_int_eq(mt_valview_buf(&v, UINT32_MAX, &bp, &len), MANTA_EINVAL);
                free(p);
            }
        }
    }
}
END_TEST

START_TEST(test_sizes)
{
    ck_assert_uint_eq(mt_valfmt_size(0, NULL, 0), MT_VAL_HDR);
    ck_assert_uint_eq(mt_valfmt_size(10, NULL, 0), MT_VAL_HDR + 10);
    uint64_t one = 1;
    /* header 24 + table 16 + meta 0 = 40 -> buffer at 64 */
    ck_assert_uint_eq(mt_valfmt_size(0, &one, 1), 65);
    ck_assert_uint_eq(mt_valfmt_size(24, &one, 1), 65);
    ck_assert_uint_eq(mt_valfmt_size(25, &one, 1), 129);
    uint64_t two[2] = {64, 0};
    ck_assert_uint_eq(mt_valfmt_size(0, two, 2), 128);
    two[1] = 1;
    ck_assert_uint_eq(mt_valfmt_size(0, two, 2), 129);
    /* Header fields are little endian at fixed places. */
    uint8_t h[MT_VAL_HDR];
    mt_valfmt_write(h, MT_FMT_ERROR, -3, 0x0102030405060708ull, NULL, 0);
    static const uint8_t want[MT_VAL_HDR] = {'M',  'T',  'V',  '1',  4, 0, 0, 0, 0, 0, 0, 0,
                                             0xfd, 0xff, 0xff, 0xff, 8, 7, 6, 5, 4, 3, 2, 1};
    ck_assert_mem_eq(h, want, MT_VAL_HDR);
}
END_TEST

START_TEST(test_every_format)
{
    for (int fmt = 0; fmt < 256; fmt++) {
        uint8_t p[MT_VAL_HDR];
        mt_valfmt_write(p, (uint8_t)fmt, 0, 0, NULL, 0);
        mt_valview v;
        int rc = mt_valfmt_parse(p, sizeof p, &v);
        if (fmt >= MT_FMT_RAW && fmt <= MT_FMT_C_ERROR) {
            ck_assert_int_eq(rc, 0);
            ck_assert_uint_eq(v.fmt, fmt);
            ck_assert_uint_eq(v.meta_len, 0);
        } else {
            ck_assert_int_eq(rc, MANTA_EPROTO);
            ck_assert_ptr_nonnull(strstr(manta_last_error(), "format"));
        }
    }
}
END_TEST

/* ---------------------------------------------------------------- rejects */

START_TEST(test_truncated)
{
    uint64_t lens[3] = {100, 0, 70};
    uint64_t size;
    uint8_t *p = make_value(MT_FMT_PICKLE, 0, 30, lens, 3, &size);
    parse_ok(p, size, &(mt_valview){0});
    /* Every shorter prefix is refused: the header, the table, the meta or
     * the last buffer is cut (the empty buffer ends where the 70-byte one
     * starts, so no prefix passes). */
    for (uint64_t n = 0; n < size; n++) {
        uint8_t *copy = mt_malloc(n ? n : 1);
        memcpy(copy, p, n);
        mt_valview v;
        if (mt_valfmt_parse(copy, n, &v) != MANTA_EPROTO)
            ck_abort_msg("prefix %lu accepted", (unsigned long)n);
        free(copy);
    }
    parse_bad(p, MT_VAL_HDR - 1, "not a manta value");
    parse_bad(p, 0, "not a manta value");
    free(p);
}
END_TEST

START_TEST(test_corrupted)
{
    uint64_t lens[2] = {200, 10};
    uint64_t size;
    uint8_t *p = make_value(MT_FMT_PICKLE, 0, 50, lens, 2, &size);
    uint8_t *q = mt_malloc(size);
    mt_valview v;

    /* magic */
    for (int i = 0; i < 4; i++) {
        memcpy(q, p, size);
        q[i] ^= 0x20;
        parse_bad(q, size, "not a manta value");
    }
    /* nbufs too large for the bytes there are */
    static const uint32_t nbufs[] = {3, 100, 0x10000000u, UINT32_MAX};
    for (size_t i = 0; i < MT_ARRAY_LEN(nbufs); i++) {
        memcpy(q, p, size);
        put32(q + 8, nbufs[i]);
        ck_assert_int_eq(mt_valfmt_parse(q, size, &v), MANTA_EPROTO);
    }
    memcpy(q, p, size);
    put32(q + 8, UINT32_MAX);
    parse_bad(q, size, "buffer count");
    /* A table that fits but whose meta then does not. */
    memcpy(q, p, size);
    put32(q + 8, (uint32_t)((size - MT_VAL_HDR) / 16));
    parse_bad(q, size, "meta length");
    /* meta_len beyond the size */
    static const uint64_t metas[] = {51 + 200 + 10 + 200, 1ull << 40, UINT64_MAX,
                                     UINT64_MAX - MT_VAL_HDR};
    for (size_t i = 0; i < MT_ARRAY_LEN(metas); i++) {
        memcpy(q, p, size);
        put64(q + 16, metas[i]);
        parse_bad(q, size, "meta length");
    }
    memcpy(q, p, size);
    put64(q + 16, size - (MT_VAL_HDR + 32)); /* exactly to the end: fine */
    parse_ok(q, size, &v);
    put64(q + 16, size - (MT_VAL_HDR + 32) + 1);
    parse_bad(q, size, "meta length");
    /* buffer offsets and lengths beyond the size */
    const struct {
        int which;
        uint64_t off, len;
        bool ok;
    } bufs[] = {
        {0, 0, 0, true},         /* may point anywhere inside */
        {1, size, 0, true},      /* empty at the very end */
        {1, size - 1, 1, true},  /* last byte */
        {1, size + 1, 0, false}, /* past the end */
        {1, size, 1, false},
        {0, 64, size, false},
        {0, UINT64_MAX, 0, false},
        {0, UINT64_MAX - 10, 20, false}, /* off + len wraps */
        {1, 0, UINT64_MAX, false},
        {1, 8, UINT64_MAX - 7, false}, /* wraps to 0 */
        {0, 1ull << 63, 1ull << 63, false},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(bufs); i++) {
        memcpy(q, p, size);
        put64(q + MT_VAL_HDR + 16 * bufs[i].which, bufs[i].off);
        put64(q + MT_VAL_HDR + 16 * bufs[i].which + 8, bufs[i].len);
        int rc = mt_valfmt_parse(q, size, &v);
        ck_assert_msg(rc == (bufs[i].ok ? 0 : MANTA_EPROTO), "buffer case %zu: %d", i, rc);
        if (!bufs[i].ok) ck_assert_ptr_nonnull(strstr(manta_last_error(), "bad buffer"));
        if (bufs[i].ok) {
            const uint8_t *bp;
            uint64_t len;
            ck_assert_int_eq(mt_valview_buf(&v, (uint32_t)bufs[i].which, &bp, &len), 0);
            ck_assert_ptr_eq(bp, q + bufs[i].off);
            ck_assert_uint_eq(len, bufs[i].len);
        }
    }
    /* Random corruption never passes a buffer that escapes the value. */
    uint64_t x = 0x1234567;
    for (int round = 0; round < 100000; round++) {
        memcpy(q, p, size);
        int flips = 1 + round % 4;
        for (int k = 0; k < flips; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint64_t at = x % (MT_VAL_HDR + 32);
            q[at] ^= (uint8_t)(1u << ((x >> 40) % 8));
        }
        if (mt_valfmt_parse(q, size, &v) != 0) continue;
        CK(v.meta_len <= size - (uint64_t)(v.meta - q));
        for (uint32_t b = 0; b < v.nbufs; b++) {
            const uint8_t *bp;
            uint64_t len;
            CK(mt_valview_buf(&v, b, &bp, &len) == 0);
            CK(bp >= q && bp <= q + size);
            CK(len <= (uint64_t)(q + size - bp));
        }
    }
    free(q);
    free(p);
}
END_TEST

/* A value in the store is shared memory: its buffer table can change
 * between the parse and the read of a buffer, which must see the change
 * and refuse it rather than hand out a range outside the value. */
START_TEST(test_buffer_rewritten_after_parse)
{
    uint64_t lens[2] = {200, 10};
    uint64_t size;
    uint8_t *p = make_value(MT_FMT_PICKLE, 0, 50, lens, 2, &size);
    mt_valview v;
    parse_ok(p, size, &v);
    const uint8_t *bp;
    uint64_t len;
    ck_assert_int_eq(mt_valview_buf(&v, 1, &bp, &len), 0);
    put64(p + MT_VAL_HDR + 16, UINT64_MAX - 10); /* offset + len wraps */
    put64(p + MT_VAL_HDR + 24, 20);
    mt_err_clear();
    ck_assert_int_eq(mt_valview_buf(&v, 1, &bp, &len), MANTA_EPROTO);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "bad buffer 1"));
    put64(p + MT_VAL_HDR + 16, 64);
    put64(p + MT_VAL_HDR + 24, size); /* past the end */
    ck_assert_int_eq(mt_valview_buf(&v, 1, &bp, &len), MANTA_EPROTO);
    free(p);
}
END_TEST

/* ---------------------------------------------------------------- values */

START_TEST(test_raw)
{
    const char *text = "hello, manta";
    mt_value *v = mt_value_raw(text, strlen(text));
    ck_assert_int_eq(v->refs, 1);
    ck_assert_int_eq(v->kind, MT_VAL_HEAP);
    ck_assert_uint_eq(v->size, MT_VAL_HDR + strlen(text));
    mt_valview vv;
    parse_ok(v->data, v->size, &vv);
    ck_assert_uint_eq(vv.fmt, MT_FMT_RAW);
    ck_assert_uint_eq(vv.nbufs, 0);
    ck_assert_uint_eq(vv.meta_len, strlen(text));
    ck_assert_mem_eq(vv.meta, text, strlen(text));
    int code = 12345;
    ck_assert(!mt_value_is_error(v, &code));
    ck_assert_int_eq(code, 12345); /* untouched */
    ck_assert(!mt_value_is_error(v, NULL));
    mt_value_unref(v);
    v = mt_value_raw(NULL, 0); /* empty */
    parse_ok(v->data, v->size, &vv);
    ck_assert_uint_eq(vv.meta_len, 0);
    mt_value_unref(v);
}
END_TEST

START_TEST(test_error_values)
{
    mt_value *v = mt_value_error(MANTA_ETIMEDOUT, "waited %d s for %s", 5, "x");
    int code = 0;
    ck_assert(mt_value_is_error(v, &code));
    ck_assert_int_eq(code, MANTA_ETIMEDOUT);
    ck_assert(mt_value_is_error(v, NULL));
    mt_valview vv;
    parse_ok(v->data, v->size, &vv);
    ck_assert_uint_eq(vv.fmt, MT_FMT_ERROR);
    ck_assert_int_eq(vv.code, MANTA_ETIMEDOUT);
    ck_assert_uint_eq(vv.meta_len, strlen("waited 5 s for x"));
    ck_assert_mem_eq(vv.meta, "waited 5 s for x", vv.meta_len);
    mt_value_unref(v);
    /* Long text is cut at 2047 bytes. */
    char big[5000];
    memset(big, 'e', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    v = mt_value_error(MANTA_EWORKERDIED, "%s", big);
    parse_ok(v->data, v->size, &vv);
    ck_assert_uint_eq(vv.meta_len, 2047);
    ck_assert(mt_value_is_error(v, &code));
    ck_assert_int_eq(code, MANTA_EWORKERDIED);
    mt_value_unref(v);
    v = mt_value_error(MANTA_EOBJLOST, "%s", "");
    ck_assert(mt_value_is_error(v, &code));
    ck_assert_int_eq(code, MANTA_EOBJLOST);
    mt_value_unref(v);
    /* Task errors of either language map to MANTA_ETASK; pickles are data. */
    static const struct {
        uint8_t fmt;
        bool is_err;
        int code;
    } kinds[] = {{MT_FMT_RAW, false, 0},
                 {MT_FMT_PICKLE, false, 0},
                 {MT_FMT_PY_ERROR, true, MANTA_ETASK},
                 {MT_FMT_C_ERROR, true, MANTA_ETASK},
                 {MT_FMT_ERROR, true, MANTA_ECANCELLED}};
    for (size_t i = 0; i < MT_ARRAY_LEN(kinds); i++) {
        uint64_t len = 4;
        v = mt_value_new(mt_valfmt_size(3, &len, 1));
        mt_valfmt_write(v->data, kinds[i].fmt, MANTA_ECANCELLED, 3, &len, 1);
        code = 777;
        ck_assert_int_eq(mt_value_is_error(v, &code), kinds[i].is_err);
        ck_assert_int_eq(code, kinds[i].is_err ? kinds[i].code : 777);
        mt_value_unref(v);
    }
    /* A value that is not one at all reads as a protocol error. */
    v = mt_value_copy("garbage that is long enough to hold a header", 44);
    ck_assert(mt_value_is_error(v, &code));
    ck_assert_int_eq(code, MANTA_EPROTO);
    mt_value_unref(v);
    v = mt_value_new(0);
    ck_assert(mt_value_is_error(v, &code));
    ck_assert_int_eq(code, MANTA_EPROTO);
    mt_value_unref(v);
}
END_TEST

static int hook_calls;
static mt_oid hook_id;
static struct mt_core *hook_core;

static void release_hook(struct mt_core *c, const mt_oid *id)
{
    hook_calls++;
    hook_id = *id;
    hook_core = c;
}

START_TEST(test_refcount)
{
    mt_value *v = mt_value_copy("abc", 3);
    ck_assert_mem_eq(v->data, "abc", 3);
    ck_assert_uint_eq(v->size, 3);
    mt_value_ref(v);
    mt_value_ref(v);
    ck_assert_int_eq(v->refs, 3);
    mt_value_unref(v);
    mt_value_unref(v);
    ck_assert_int_eq(v->refs, 1);
    mt_value_unref(v); /* freed (ASan would see a leak otherwise) */
    mt_value_unref(NULL);
    /* Small values are plain allocations; from 4 KiB on (where arrays
     * live) they are 64-byte aligned and padded to whole lines. */
    for (uint64_t n = 0; n < 300; n += 37) {
        v = mt_value_new(n);
        ck_assert_uint_eq(v->size, n);
        memset(v->data, 1, n ? n : 1);
        mt_value_unref(v);
    }
    for (uint64_t n = 4096; n < 4096 + 300; n += 37) {
        v = mt_value_new(n);
        ck_assert_uint_eq((uintptr_t)v->data % MT_VAL_ALIGN, 0);
        ck_assert_uint_eq(v->size, n);
        memset(v->data, 1, MT_ALIGN_UP(n, 64)); /* the whole line is ours */
        mt_value_unref(v);
    }
    /* A store value hands its pin back through the hook, once. */
    static uint8_t shm[64];
    mt_value *pv = mt_calloc(1, sizeof *pv);
    pv->refs = 2;
    pv->kind = MT_VAL_PLASMA;
    pv->data = shm;
    pv->size = sizeof shm;
    pv->core = (struct mt_core *)&hook_calls;
    memset(pv->id.b, 0x42, sizeof pv->id.b);
    mt_value_release_hook = release_hook;
    mt_value_unref(pv);
    ck_assert_int_eq(hook_calls, 0);
    mt_value_unref(pv);
    ck_assert_int_eq(hook_calls, 1);
    ck_assert_uint_eq(hook_id.b[19], 0x42);
    ck_assert_ptr_eq(hook_core, (struct mt_core *)&hook_calls);
    /* Without a hook a store value is still freed. */
    mt_value_release_hook = NULL;
    pv = mt_calloc(1, sizeof *pv);
    pv->refs = 1;
    pv->kind = MT_VAL_PLASMA;
    pv->data = shm;
    mt_value_unref(pv);
    ck_assert_int_eq(hook_calls, 1);
}
END_TEST

/* ---------------------------------------------------------------- main */

static Suite *value_suite(void)
{
    Suite *s = suite_create("value");
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_sizes);
    tcase_add_test(tc, test_every_format);
    suite_add_tcase(s, tc);

    tc = tcase_create("rejects");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_corrupted);
    tcase_add_test(tc, test_buffer_rewritten_after_parse);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_test(tc, test_raw);
    tcase_add_test(tc, test_error_values);
    tcase_add_test(tc, test_refcount);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(value_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
