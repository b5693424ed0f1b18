/* checked.h -- overflow-safe arithmetic for lengths, offsets and counts that
 * come from another process (the wire, a serialized value, shared memory).
 *
 * `off + len > size` wraps when a peer sends an offset near 2^64 and then
 * passes; every such check goes through these helpers instead.  Each
 * returns true when the result is valid (no overflow, inside the bound). */
#ifndef MT_CHECKED_H
#define MT_CHECKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* *out = a + b; false (and *out unspecified) if it does not fit. */
static inline bool mt_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline bool mt_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

static inline bool mt_add_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline bool mt_mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* Whether the range [off, off + len) lies inside [0, size). */
static inline bool mt_span_ok(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

/* *out = x rounded up to a multiple of `align` (a power of two); false if
 * that does not fit in 64 bits. */
static inline bool mt_align_up_u64(uint64_t x, uint64_t align, uint64_t *out)
{
    uint64_t t;
    if (__builtin_add_overflow(x, align - 1, &t)) return false;
    *out = t & ~(align - 1);
    return true;
}

#endif /* MT_CHECKED_H */
