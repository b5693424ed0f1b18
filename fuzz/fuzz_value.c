/* fuzz_value.c -- the serialized value header (src/core/value.c): values
 * come from other processes inline in messages or in the shared store.
 * Whatever mt_valfmt_parse accepts must describe only bytes inside the
 * value; accepted values written again with mt_valfmt_write must parse to
 * the same sections. */
#include "fuzz.h"
#include "value.h"

/* Re-serializing allocates the sum of the sections; skip absurd ones. */
#define REWRITE_MAX (1u << 20)

static volatile uint8_t sink;

static void touch(const uint8_t *p, uint64_t n)
{
    if (!n) return;
    sink ^= p[0];
    sink ^= p[n - 1];
}

static void rewrite_check(const mt_valview *v)
{
    uint64_t total = v->meta_len;
    uint64_t *lens = mt_calloc(v->nbufs ? v->nbufs : 1, sizeof *lens);
    const uint8_t **bufs = mt_calloc(v->nbufs ? v->nbufs : 1, sizeof *bufs);
    for (uint32_t i = 0; i < v->nbufs; i++) {
        FUZZ_CHECK(mt_valview_buf(v, i, &bufs[i], &lens[i]) == 0);
        total += lens[i] + MT_VAL_ALIGN;
    }
    if (total <= REWRITE_MAX) {
        uint64_t size = mt_valfmt_size(v->meta_len, lens, v->nbufs);
        mt_value *out = mt_value_new(size);
        uint64_t meta_off =
            mt_valfmt_write(out->data, v->fmt, v->code, v->meta_len, lens, v->nbufs);
        if (v->meta_len) memcpy(out->data + meta_off, v->meta, v->meta_len);
        for (uint32_t i = 0; i < v->nbufs; i++) {
            uint64_t off = mt_valfmt_buf_off(out->data, i);
            FUZZ_CHECK(off % MT_VAL_ALIGN == 0 && off + lens[i] <= size);
            if (lens[i]) memcpy(out->data + off, bufs[i], lens[i]);
        }
        mt_valview w;
        FUZZ_CHECK(mt_valfmt_parse(out->data, size, &w) == 0);
        FUZZ_CHECK(w.fmt == v->fmt && w.code == v->code && w.nbufs == v->nbufs);
        FUZZ_CHECK(w.meta_len == v->meta_len && !memcmp(w.meta, v->meta, v->meta_len));
        for (uint32_t i = 0; i < v->nbufs; i++) {
            const uint8_t *p;
            uint64_t len;
            FUZZ_CHECK(mt_valview_buf(&w, i, &p, &len) == 0);
            FUZZ_CHECK(len == lens[i] && !memcmp(p, bufs[i], len));
        }
        mt_value_unref(out);
    }
    free(bufs);
    free(lens);
}

FUZZ_EXPORT int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_valview v;
    int rc = mt_valfmt_parse(data, size, &v);
    if (rc) {
        FUZZ_CHECK(rc == MANTA_EPROTO);
    } else {
        FUZZ_CHECK(v.base == data && v.size == size);
        FUZZ_CHECK(v.fmt >= MT_FMT_RAW && v.fmt <= MT_FMT_C_ERROR);
        FUZZ_CHECK(v.meta >= data && v.meta_len <= (uint64_t)(data + size - v.meta));
        touch(v.meta, v.meta_len);
        for (uint32_t i = 0; i < v.nbufs; i++) {
            const uint8_t *p = NULL;
            uint64_t len = 0;
            FUZZ_CHECK(mt_valview_buf(&v, i, &p, &len) == 0);
            FUZZ_CHECK(p >= data && len <= (uint64_t)(data + size - p));
            touch(p, len);
        }
        const uint8_t *p;
        uint64_t len;
        FUZZ_CHECK(mt_valview_buf(&v, v.nbufs, &p, &len) == MANTA_EINVAL);
        rewrite_check(&v);
    }
    /* The same bytes as a value buffer, as a getter sees them. */
    mt_value *val = mt_value_copy(data, size);
    int code = 1;
    bool is_err = mt_value_is_error(val, &code);
    if (rc) FUZZ_CHECK(is_err && code == MANTA_EPROTO);
    if (!is_err) FUZZ_CHECK(code == 1 && (v.fmt == MT_FMT_RAW || v.fmt == MT_FMT_PICKLE));
    mt_value_unref(val);
    return 0;
}
