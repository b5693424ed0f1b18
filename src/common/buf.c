/* buf.c -- growable byte buffer. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

#include "mt.h"

void mt_buf_init(mt_buf *b) { memset(b, 0, sizeof *b); }

void mt_buf_free(mt_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

uint8_t *mt_buf_reserve(mt_buf *b, size_t n)
{
    if (b->cap - b->len >= n) return b->data + b->len;
    if (b->off > 0 && b->off >= b->len / 2) {
        /* Mostly consumed: slide the unread bytes to the front first. */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= n) return b->data + b->len;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) cap *= 2;
    b->data = mt_realloc(b->data, cap);
    b->cap = cap;
    return b->data + b->len;
}

void mt_buf_append(mt_buf *b, const void *p, size_t n)
{
    uint8_t *w = mt_buf_reserve(b, n);
    if (n) memcpy(w, p, n);
    b->len += n;
}

void mt_buf_consume(mt_buf *b, size_t n)
{
    mt_assert(n <= b->len - b->off);
    b->off += n;
    if (b->off == b->len) b->off = b->len = 0;
}

void mt_buf_reset(mt_buf *b, size_t keep)
{
    b->off = b->len = 0;
    if (b->cap > keep) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
}
