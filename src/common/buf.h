/* buf.h -- a growable byte buffer with a read cursor, used for connection
 * input/output and for building messages. */
#ifndef MT_BUF_H
#define MT_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct mt_buf {
    uint8_t *data;
    size_t len; /* bytes written */
    size_t off; /* bytes consumed from the front */
    size_t cap;
} mt_buf;

void mt_buf_init(mt_buf *b);
void mt_buf_free(mt_buf *b);
/* Make room for `n` more bytes; returns the write position. */
uint8_t *mt_buf_reserve(mt_buf *b, size_t n);
void mt_buf_append(mt_buf *b, const void *p, size_t n);
/* Unread bytes. */
static inline size_t mt_buf_avail(const mt_buf *b) { return b->len - b->off; }
static inline uint8_t *mt_buf_head(const mt_buf *b) { return b->data + b->off; }
/* Mark `n` bytes read; resets when empty and compacts when mostly read. */
void mt_buf_consume(mt_buf *b, size_t n);
/* Drop everything and shrink storage above `keep` bytes. */
void mt_buf_reset(mt_buf *b, size_t keep);

#endif
