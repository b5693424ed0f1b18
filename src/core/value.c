/* value.c -- counted value buffers and the serialized value layout. */
#include "value.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "mt.h"

void (*mt_value_release_hook)(struct mt_core *c, const mt_oid *id);

mt_value *mt_value_new(uint64_t size)
{
    mt_value *v = mt_calloc(1, sizeof *v);
    v->refs = 1;
    v->kind = MT_VAL_HEAP;
    v->size = size;
    /* Small values need no cache-line alignment; large ones hold arrays. */
    v->data = size < 4096 ? malloc(size ? size : 1)
                          : aligned_alloc(MT_VAL_ALIGN, MT_ALIGN_UP(size, MT_VAL_ALIGN));
    if (!v->data) mt_assert(!"out of memory");
    return v;
}

mt_value *mt_value_copy(const void *p, uint64_t size)
{
    mt_value *v = mt_value_new(size);
    if (size) memcpy(v->data, p, size);
    return v;
}

void mt_value_ref(mt_value *v) { __atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED); }

void mt_value_unref(mt_value *v)
{
    if (!v || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL)) return;
    if (v->kind == MT_VAL_HEAP)
        free(v->data);
    else if (mt_value_release_hook)
        mt_value_release_hook(v->core, &v->id);
    free(v);
}

static void put64(uint8_t *p, uint64_t x)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(x >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = x << 8 | p[i];
    return x;
}

static void put32(uint8_t *p, uint32_t x)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(x >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t mt_valfmt_size(uint64_t meta_len, const uint64_t *buf_lens, uint32_t nbufs)
{
    uint64_t off = MT_VAL_HDR + 16ULL * nbufs + meta_len;
    for (uint32_t i = 0; i < nbufs; i++) off = MT_ALIGN_UP(off, MT_VAL_ALIGN) + buf_lens[i];
    return off;
}

uint64_t mt_valfmt_write(uint8_t *dst, uint8_t fmt, int32_t code, uint64_t meta_len,
                         const uint64_t *buf_lens, uint32_t nbufs)
{
    put32(dst, MT_VAL_MAGIC);
    dst[4] = fmt;
    dst[5] = 0;
    dst[6] = dst[7] = 0;
    put32(dst + 8, nbufs);
    put32(dst + 12, (uint32_t)code);
    put64(dst + 16, meta_len);
    uint64_t meta_off = MT_VAL_HDR + 16ULL * nbufs;
    uint64_t off = meta_off + meta_len;
    for (uint32_t i = 0; i < nbufs; i++) {
        off = MT_ALIGN_UP(off, MT_VAL_ALIGN);
        put64(dst + MT_VAL_HDR + 16ULL * i, off);
        put64(dst + MT_VAL_HDR + 16ULL * i + 8, buf_lens[i]);
        off += buf_lens[i];
    }
    return meta_off;
}

uint64_t mt_valfmt_buf_off(const uint8_t *dst, uint32_t i) { return get64(dst + MT_VAL_HDR + 16ULL * i); }

int mt_valfmt_parse(const uint8_t *p, uint64_t size, mt_valview *out)
{
    memset(out, 0, sizeof *out);
    if (size < MT_VAL_HDR || get32(p) != MT_VAL_MAGIC)
        return mt_err(MANTA_EPROTO, "not a manta value (%lu bytes)", (unsigned long)size);
    out->fmt = p[4];
    out->nbufs = get32(p + 8);
    out->code = (int32_t)get32(p + 12);
    out->meta_len = get64(p + 16);
    out->base = p;
    out->size = size;
    if (out->fmt < MT_FMT_RAW || out->fmt > MT_FMT_C_ERROR)
        return mt_err(MANTA_EPROTO, "unknown value format %u", out->fmt);
    if (out->nbufs > (size - MT_VAL_HDR) / 16) return mt_err(MANTA_EPROTO, "bad buffer count");
    uint64_t meta_off = MT_VAL_HDR + 16ULL * out->nbufs;
    if (out->meta_len > size - meta_off) return mt_err(MANTA_EPROTO, "bad meta length");
    out->meta = p + meta_off;
    for (uint32_t i = 0; i < out->nbufs; i++) {
        uint64_t off = get64(p + MT_VAL_HDR + 16ULL * i);
        uint64_t len = get64(p + MT_VAL_HDR + 16ULL * i + 8);
        if (!mt_span_ok(off, len, size)) return mt_err(MANTA_EPROTO, "bad buffer %u", i);
    }
    return 0;
}

int mt_valview_buf(const mt_valview *v, uint32_t i, const uint8_t **p, uint64_t *len)
{
    if (i >= v->nbufs) return MANTA_EINVAL;
    /* Read again, and so checked again: a value in the store is shared
     * memory that another process may have rewritten since the parse. */
    uint64_t off = get64(v->base + MT_VAL_HDR + 16ULL * i);
    uint64_t n = get64(v->base + MT_VAL_HDR + 16ULL * i + 8);
    if (!mt_span_ok(off, n, v->size)) return mt_err(MANTA_EPROTO, "bad buffer %u", i);
    *len = n;
    *p = v->base + off;
    return 0;
}

mt_value *mt_value_raw(const void *data, uint64_t len)
{
    mt_value *v = mt_value_new(mt_valfmt_size(len, NULL, 0));
    uint64_t off = mt_valfmt_write(v->data, MT_FMT_RAW, 0, len, NULL, 0);
    if (len) memcpy(v->data + off, data, len);
    return v;
}

mt_value *mt_value_error(int code, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n >= (int)sizeof text) n = sizeof text - 1;
    mt_value *v = mt_value_new(mt_valfmt_size((uint64_t)n, NULL, 0));
    uint64_t off = mt_valfmt_write(v->data, MT_FMT_ERROR, code, (uint64_t)n, NULL, 0);
    memcpy(v->data + off, text, (size_t)n);
    return v;
}

bool mt_value_is_error(const mt_value *v, int *code)
{
    mt_valview vv;
    if (mt_valfmt_parse(v->data, v->size, &vv)) {
        if (code) *code = MANTA_EPROTO;
        return true;
    }
    if (vv.fmt == MT_FMT_RAW || vv.fmt == MT_FMT_PICKLE) return false;
    if (code) *code = vv.fmt == MT_FMT_ERROR ? vv.code : MANTA_ETASK;
    return true;
}
