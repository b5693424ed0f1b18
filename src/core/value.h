/* value.h -- values: counted byte buffers (in process memory or a pinned
 * view of the node's store) and the layout of a serialized value.
 *
 * Layout (all integers little endian, offsets from the value's start):
 *   header (24 bytes): magic "MTV1", u8 format, u8 flags, u16 0, u32 nbufs,
 *                      i32 code, u64 meta_len
 *   nbufs x (u64 offset, u64 length)   out-of-band buffers
 *   meta_len bytes                     raw bytes (C) or the pickle stream
 *   buffers, each starting at a multiple of 64
 * A value in the store starts 64-aligned, so its buffers are too: numpy
 * arrays read from the store are aligned views of shared memory. */
#ifndef MT_VALUE_H
#define MT_VALUE_H

#include <stdbool.h>
#include <stdint.h>

#include "ids.h"

struct mt_core;

enum { MT_VAL_HEAP = 0, MT_VAL_PLASMA = 1 };

typedef struct mt_value {
    int refs;
    uint8_t kind;
    uint8_t *data;
    uint64_t size;
    struct mt_core *core; /* PLASMA: whose pin to drop */
    mt_oid id;
} mt_value;

/* A heap value of `size` bytes, contents undefined; refs = 1.  From 4 KiB
 * on it is 64-byte aligned and padded to whole lines (arrays live there). */
mt_value *mt_value_new(uint64_t size);
mt_value *mt_value_copy(const void *p, uint64_t size);
void mt_value_ref(mt_value *v);
/* Drop a reference.  Never takes the runtime lock (store pins are released
 * through a queue), so it may be called from any context. */
void mt_value_unref(mt_value *v);

#define MT_VAL_MAGIC 0x3156544dU /* "MTV1" */
#define MT_VAL_HDR 24
#define MT_VAL_ALIGN 64

enum {
    MT_FMT_RAW = 1,      /* bytes from C */
    MT_FMT_PICKLE = 2,   /* pickle protocol 5 + out-of-band buffers */
    MT_FMT_PY_ERROR = 3, /* a pickled exception raised by a Python task */
    MT_FMT_ERROR = 4,    /* a system error: code + text in meta */
    MT_FMT_C_ERROR = 5,  /* a C task failed: text in meta */
};

typedef struct mt_valview {
    uint8_t fmt;
    int32_t code;
    const uint8_t *meta;
    uint64_t meta_len;
    uint32_t nbufs;
    const uint8_t *base;
    uint64_t size;
} mt_valview;

/* Bytes needed for a value with these sections. */
uint64_t mt_valfmt_size(uint64_t meta_len, const uint64_t *buf_lens, uint32_t nbufs);
/* Write header and buffer table into dst (which has mt_valfmt_size bytes);
 * returns the offset where meta goes.  Buffer i goes at mt_valfmt_buf_off. */
uint64_t mt_valfmt_write(uint8_t *dst, uint8_t fmt, int32_t code, uint64_t meta_len,
                         const uint64_t *buf_lens, uint32_t nbufs);
uint64_t mt_valfmt_buf_off(const uint8_t *dst, uint32_t i);
/* Check and describe a serialized value; MANTA_EPROTO if malformed. */
int mt_valfmt_parse(const uint8_t *p, uint64_t size, mt_valview *out);
int mt_valview_buf(const mt_valview *v, uint32_t i, const uint8_t **p, uint64_t *len);
/* A value holding `data` as raw bytes / an error. */
mt_value *mt_value_raw(const void *data, uint64_t len);
mt_value *mt_value_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool mt_value_is_error(const mt_value *v, int *code);

/* Hook the runtime installs to learn of released store pins. */
extern void (*mt_value_release_hook)(struct mt_core *c, const mt_oid *id);

#endif
