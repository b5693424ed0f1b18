/* alloc.c -- a segregated-fit allocator in the spirit of TLSF (Masmano et
 * al., 2004) over the offsets of the store's shared memory.  Free blocks sit
 * in size-class bins found through two bitmaps; every block is linked to its
 * address neighbours so a freed block merges with free ones at once; blocks
 * in use are found by offset through an mt_map. */
#include "alloc.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "map.h"
#include "mt.h"

/* Sizes are binned in units of `align`.  Class 0 holds 1..15 units, one bin
 * per size; class f >= 1 holds [2^(f+3), 2^(f+4)) units split into 16 equal
 * sub-bins, so a bin's sizes differ by at most 1/16.  61 classes cover every
 * 64-bit unit count. */
#define SL_LOG2 4
#define SL_COUNT (1u << SL_LOG2)
#define FL_COUNT (64 - SL_LOG2 + 1)

typedef struct blk {
    uint64_t off;              /* map key: first byte in the region */
    uint64_t size;             /* bytes: a multiple of align, > 0 */
    struct blk *prev, *next;   /* address neighbours; NULL at the ends */
    struct blk *fprev, *fnext; /* bin list, while free */
    bool is_free;
} blk;

struct mt_alloc {
    uint64_t capacity;         /* usable bytes, a multiple of align */
    unsigned shift;            /* log2(align) */
    uint64_t used;             /* bytes in allocated blocks */
    blk *first;                /* block at offset 0 */
    mt_map live;               /* allocated blocks by offset */
    uint64_t fl_map;           /* bit f set: sl_map[f] != 0 */
    uint32_t sl_map[FL_COUNT]; /* bit s set: bins[f][s] != NULL */
    blk *bins[FL_COUNT][SL_COUNT];
};

static inline unsigned msb64(uint64_t x)
{
    return 63u - (unsigned)__builtin_clzll(x);
}
static inline unsigned lsb64(uint64_t x)
{
    return (unsigned)__builtin_ctzll(x);
}

/* ---------------------------------------------------------------- bins */

static void size_class(uint64_t units, unsigned *fl, unsigned *sl)
{
    if (units < SL_COUNT) {
        *fl = 0;
        *sl = (unsigned)units;
        return;
    }
    unsigned m = msb64(units);
    *fl = m - SL_LOG2 + 1;
    *sl = (unsigned)(units >> (m - SL_LOG2)) & (SL_COUNT - 1);
}

static void bin_insert(mt_alloc *a, blk *b)
{
    unsigned fl, sl;
    size_class(b->size >> a->shift, &fl, &sl);
    blk **head = &a->bins[fl][sl];
    b->fprev = NULL;
    b->fnext = *head;
    if (*head) (*head)->fprev = b;
    *head = b;
    a->sl_map[fl] |= 1u << sl;
    a->fl_map |= 1ull << fl;
}

static void bin_remove(mt_alloc *a, blk *b)
{
    unsigned fl, sl;
    size_class(b->size >> a->shift, &fl, &sl);
    if (b->fprev)
        b->fprev->fnext = b->fnext;
    else
        a->bins[fl][sl] = b->fnext;
    if (b->fnext) b->fnext->fprev = b->fprev;
    b->fprev = b->fnext = NULL;
    if (!a->bins[fl][sl]) {
        a->sl_map[fl] &= ~(1u << sl);
        if (!a->sl_map[fl]) a->fl_map &= ~(1ull << fl);
    }
}

/* Head of the first non-empty bin at or above (fl, sl), or NULL. */
static blk *bin_first_from(const mt_alloc *a, unsigned fl, unsigned sl)
{
    uint32_t sm = a->sl_map[fl] & (~0u << sl);
    if (!sm) {
        uint64_t fm = fl + 1 < FL_COUNT ? a->fl_map & (~0ull << (fl + 1)) : 0;
        if (!fm) return NULL;
        fl = lsb64(fm);
        sm = a->sl_map[fl];
    }
    return a->bins[fl][lsb64(sm)];
}

/* A free block of at least `units` units, or NULL if none exists.  First the
 * O(1) TLSF search: round the request up to the next bin boundary, so any
 * block from that bin on fits.  Only when that fails (nothing larger is
 * free) walk the request's own bin, whose blocks may or may not fit; this
 * keeps the promise that ENOMEM means no free range fits. */
static blk *find_free(const mt_alloc *a, uint64_t units)
{
    unsigned fl, sl;
    uint64_t rounded = units;
    if (units >= SL_COUNT) rounded += (1ull << (msb64(units) - SL_LOG2)) - 1;
    size_class(rounded, &fl, &sl);
    blk *b = bin_first_from(a, fl, sl);
    if (b) return b;
    size_class(units, &fl, &sl);
    uint64_t need = units << a->shift;
    for (b = a->bins[fl][sl]; b; b = b->fnext)
        if (b->size >= need) return b;
    return NULL;
}

/* ---------------------------------------------------------------- blocks */

/* Cut free block `b` (already out of its bin) to `size` bytes; the rest
 * becomes a free block right after it.  The rest has no free right
 * neighbour, since `b` had none. */
static void split(mt_alloc *a, blk *b, uint64_t size)
{
    blk *rest = mt_malloc(sizeof *rest);
    rest->off = b->off + size;
    rest->size = b->size - size;
    rest->is_free = true;
    rest->prev = b;
    rest->next = b->next;
    if (b->next) b->next->prev = rest;
    b->next = rest;
    b->size = size;
    bin_insert(a, rest);
}

/* Fold b->next into b and free its metadata.  Neither is in a bin. */
static void merge_next(blk *b)
{
    blk *n = b->next;
    b->size += n->size;
    b->next = n->next;
    if (n->next) n->next->prev = b;
    free(n);
}

/* ---------------------------------------------------------------- API */

int mt_alloc_create(uint64_t capacity, uint64_t align, mt_alloc **out)
{
    if (align < 8 || (align & (align - 1)))
        return mt_err(MANTA_EINVAL, "alloc: align %" PRIu64 " is not a power of two >= 8", align);
    if (capacity < align)
        return mt_err(MANTA_EINVAL, "alloc: capacity %" PRIu64 " is below align %" PRIu64, capacity,
                      align);
    mt_alloc *a = mt_calloc(1, sizeof *a);
    a->shift = lsb64(align);
    a->capacity = capacity & ~(align - 1);
    mt_map_init(&a->live, offsetof(blk, off), sizeof(uint64_t));
    blk *b = mt_calloc(1, sizeof *b);
    b->size = a->capacity;
    b->is_free = true;
    a->first = b;
    bin_insert(a, b);
    *out = a;
    return 0;
}

void mt_alloc_destroy(mt_alloc *a)
{
    if (!a) return;
    for (blk *b = a->first, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    mt_map_free(&a->live);
    free(a);
}

int mt_alloc_get(mt_alloc *a, uint64_t size, uint64_t *offset)
{
    if (size == 0) return MANTA_EINVAL;
    if (size > a->capacity) return MANTA_ENOMEM; /* also keeps the round-up below from wrapping */
    uint64_t need = MT_ALIGN_UP(size, 1ull << a->shift);
    blk *b = find_free(a, need >> a->shift);
    if (!b) return MANTA_ENOMEM;
    bin_remove(a, b);
    if (b->size > need) split(a, b, need);
    b->is_free = false;
    mt_map_put(&a->live, b);
    a->used += b->size;
    *offset = b->off;
    return 0;
}

int mt_alloc_put(mt_alloc *a, uint64_t offset)
{
    blk *b = mt_map_del(&a->live, &offset);
    if (!b) return MANTA_EINVAL;
    a->used -= b->size;
    b->is_free = true;
    blk *n = b->next;
    if (n && n->is_free) {
        bin_remove(a, n);
        merge_next(b);
    }
    blk *p = b->prev;
    if (p && p->is_free) {
        bin_remove(a, p);
        merge_next(p);
        b = p;
    }
    bin_insert(a, b);
    return 0;
}

uint64_t mt_alloc_block_size(const mt_alloc *a, uint64_t offset)
{
    const blk *b = mt_map_get(&a->live, &offset);
    return b ? b->size : 0;
}

uint64_t mt_alloc_used(const mt_alloc *a)
{
    return a->used;
}
uint64_t mt_alloc_capacity(const mt_alloc *a)
{
    return a->capacity;
}
size_t mt_alloc_count(const mt_alloc *a)
{
    return a->live.size;
}

/* The largest free block sits in the highest non-empty bin; sizes within a
 * bin differ, so walk that one bin. */
uint64_t mt_alloc_largest_free(const mt_alloc *a)
{
    if (!a->fl_map) return 0;
    unsigned fl = msb64(a->fl_map);
    unsigned sl = msb64(a->sl_map[fl]);
    uint64_t best = 0;
    for (const blk *b = a->bins[fl][sl]; b; b = b->fnext)
        best = MT_MAX(best, b->size);
    return best;
}

/* Walk only the bins that can hold ranges of min_size or more; the first of
 * them also holds smaller ones, hence the size test. */
void mt_alloc_free_ranges(const mt_alloc *a, uint64_t min_size,
                          void (*cb)(void *ctx, uint64_t off, uint64_t len), void *ctx)
{
    if (min_size > a->capacity) return;
    uint64_t units = min_size ? MT_ALIGN_UP(min_size, 1ull << a->shift) >> a->shift : 1;
    unsigned fl, sl;
    size_class(units, &fl, &sl);
    for (; fl < FL_COUNT; fl++, sl = 0) {
        for (uint32_t sm = a->sl_map[fl] & (~0u << sl); sm; sm &= sm - 1) {
            for (const blk *b = a->bins[fl][lsb64(sm)]; b; b = b->fnext)
                if (b->size >= min_size) cb(ctx, b->off, b->size);
        }
    }
}

/* ---------------------------------------------------------------- checks */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) return mt_err(-1, "alloc check: %s (%s:%d)", #cond, __FILE__, __LINE__);      \
    } while (0)

/* Address list: blocks tile [0, capacity), links agree, no free pair
 * touches, the map holds exactly the allocated blocks, `used` is right. */
static int check_blocks(const mt_alloc *a, uint64_t *nfree)
{
    uint64_t end = 0, used = 0, align = 1ull << a->shift;
    size_t nlive = 0;
    const blk *prev = NULL;
    *nfree = 0;
    for (const blk *b = a->first; b; prev = b, b = b->next) {
        CHECK(b->prev == prev);
        CHECK(b->off == end);
        CHECK(b->size > 0 && b->size % align == 0 && b->size <= a->capacity - end);
        if (b->is_free) {
            CHECK(!prev || !prev->is_free);
            CHECK(mt_map_get(&a->live, &b->off) == NULL);
            (*nfree)++;
        } else {
            CHECK(mt_map_get(&a->live, &b->off) == b);
            used += b->size;
            nlive++;
        }
        end += b->size;
    }
    CHECK(end == a->capacity);
    CHECK(used == a->used);
    CHECK(nlive == a->live.size);
    return 0;
}

/* Bins: bitmaps match, lists are doubly linked, each holds free blocks of
 * its class, and together they hold every free block once. */
static int check_bins(const mt_alloc *a, uint64_t nfree)
{
    uint64_t seen = 0;
    CHECK((a->fl_map >> FL_COUNT) == 0);
    for (unsigned f = 0; f < FL_COUNT; f++) {
        CHECK(((a->fl_map >> f) & 1) == (a->sl_map[f] != 0));
        CHECK((a->sl_map[f] >> SL_COUNT) == 0);
        for (unsigned s = 0; s < SL_COUNT; s++) {
            CHECK(((a->sl_map[f] >> s) & 1) == (a->bins[f][s] != NULL));
            const blk *prev = NULL;
            for (const blk *b = a->bins[f][s]; b; prev = b, b = b->fnext) {
                unsigned fl, sl;
                size_class(b->size >> a->shift, &fl, &sl);
                CHECK(b->fprev == prev && b->is_free && fl == f && sl == s);
                CHECK(++seen <= nfree);
            }
        }
    }
    CHECK(seen == nfree);
    return 0;
}

int mt_alloc_check(const mt_alloc *a)
{
    uint64_t nfree;
    if (check_blocks(a, &nfree) < 0) return -1;
    return check_bins(a, nfree);
}
