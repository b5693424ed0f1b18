/* alloc.h -- the object store's allocator: hands out aligned byte ranges
 * (offsets) of one big shared-memory region.  Its metadata lives only in the
 * daemon's heap, never in the region, so clients mapping the region cannot
 * corrupt it.  Not thread-safe: the daemon's loop thread alone calls it. */
#ifndef MT_ALLOC_H
#define MT_ALLOC_H

#include <stddef.h>
#include <stdint.h>

typedef struct mt_alloc mt_alloc;

/* Create an allocator for offsets [0, capacity).  `align` is a power of two
 * >= 8 (manta uses 64); every offset handed out is a multiple of it and every
 * size is rounded up to it.  A capacity that is not a multiple of `align` is
 * rounded down; the tail is never handed out.  Metadata costs O(blocks), not
 * O(capacity).  Returns 0 and the allocator in *out (the caller frees it with
 * mt_alloc_destroy), or MANTA_EINVAL (bad align, capacity < align). */
int mt_alloc_create(uint64_t capacity, uint64_t align, mt_alloc **out);

/* Free the allocator and all its metadata.  Blocks still allocated are
 * forgotten (the region itself belongs to the caller).  NULL is a no-op. */
void mt_alloc_destroy(mt_alloc *a);

/* Allocate `size` bytes (rounded up to align).  Returns 0 with the block's
 * offset in *offset, MANTA_EINVAL for size 0, or MANTA_ENOMEM when no free
 * range is large enough (*offset untouched).  Fails only if no single free
 * range fits: it never reports ENOMEM while a fitting range exists. */
int mt_alloc_get(mt_alloc *a, uint64_t size, uint64_t *offset);

/* Free the block that starts at `offset`, merging it with free address
 * neighbours.  Returns 0, or MANTA_EINVAL if no allocated block starts there
 * (a wrong, unaligned, out-of-range or already freed offset); never aborts on
 * a bad offset. */
int mt_alloc_put(mt_alloc *a, uint64_t offset);

/* Size in bytes (after rounding) of the allocated block at `offset`, 0 if no
 * allocated block starts there. */
uint64_t mt_alloc_block_size(const mt_alloc *a, uint64_t offset);

/* Bytes in allocated blocks (rounded sizes). */
uint64_t mt_alloc_used(const mt_alloc *a);
/* Usable bytes: the capacity given to create, rounded down to align. */
uint64_t mt_alloc_capacity(const mt_alloc *a);
/* Size of the largest free range, 0 when full: the largest get that can
 * succeed right now. */
uint64_t mt_alloc_largest_free(const mt_alloc *a);
/* Number of allocated blocks. */
size_t mt_alloc_count(const mt_alloc *a);

/* Call cb(ctx, offset, length) for every free range of at least `min_size`
 * bytes, in no particular order (used to return the pages of big holes to
 * the OS).  Ranges are maximal: two free ranges never touch.  cb must not
 * call mt_alloc_get or mt_alloc_put on `a`. */
void mt_alloc_free_ranges(const mt_alloc *a, uint64_t min_size,
                          void (*cb)(void *ctx, uint64_t off, uint64_t len), void *ctx);

/* Verify every invariant: blocks tile [0, capacity) in address order, no two
 * adjacent free blocks, each free block in the right bin exactly once, bin
 * bitmaps match the bins, allocated blocks are the ones in the offset map,
 * the used counter is right.  Returns 0 if all hold, else -1 (with the first
 * broken invariant as the error detail).  O(blocks); for tests. */
int mt_alloc_check(const mt_alloc *a);

#endif /* MT_ALLOC_H */
