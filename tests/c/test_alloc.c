/* test_alloc.c -- unit tests of the store allocator (src/store/alloc.c):
 * fits, splitting, coalescing, errors, free-range walks, a randomized run
 * against a shadow model, and huge regions. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "mt.h"
#include "store/alloc.h"

#define KB (1ull << 10)
#define MB (1ull << 20)
#define GB (1ull << 30)

/* ---------------------------------------------------------------- helpers */

static mt_alloc *new_alloc(uint64_t capacity, uint64_t align)
{
    mt_alloc *a = NULL;
    ck_assert_int_eq(mt_alloc_create(capacity, align, &a), 0);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(mt_alloc_check(a), 0);
    return a;
}

static uint64_t get_ok(mt_alloc *a, uint64_t size)
{
    uint64_t off = UINT64_MAX;
    ck_assert_int_eq(mt_alloc_get(a, size, &off), 0);
    ck_assert_uint_ne(off, UINT64_MAX);
    return off;
}

static void put_ok(mt_alloc *a, uint64_t off)
{
    ck_assert_int_eq(mt_alloc_put(a, off), 0);
    ck_assert_int_eq(mt_alloc_check(a), 0);
}

static void get_fails(mt_alloc *a, uint64_t size, int err)
{
    uint64_t off = 12345;
    ck_assert_int_eq(mt_alloc_get(a, size, &off), err);
    ck_assert_uint_eq(off, 12345); /* untouched on failure */
}

typedef struct range {
    uint64_t off, len;
} range;

typedef struct ranges {
    range r[64];
    size_t n;
    uint64_t total;
} ranges;

static void collect(void *ctx, uint64_t off, uint64_t len)
{
    ranges *rs = ctx;
    if (rs->n < MT_ARRAY_LEN(rs->r)) rs->r[rs->n] = (range){off, len};
    rs->n++;
    rs->total += len;
}

static int range_cmp(const void *x, const void *y)
{
    const range *p = x, *q = y;
    return p->off < q->off ? -1 : p->off > q->off;
}

/* Free ranges of at least min_size, sorted by offset. */
static ranges free_ranges(const mt_alloc *a, uint64_t min_size)
{
    ranges rs = {.n = 0};
    mt_alloc_free_ranges(a, min_size, collect, &rs);
    ck_assert_uint_le(rs.n, MT_ARRAY_LEN(rs.r));
    qsort(rs.r, rs.n, sizeof rs.r[0], range_cmp);
    return rs;
}

static void assert_range(const ranges *rs, size_t i, uint64_t off, uint64_t len)
{
    ck_assert_uint_lt(i, rs->n);
    ck_assert_uint_eq(rs->r[i].off, off);
    ck_assert_uint_eq(rs->r[i].len, len);
}

/* ---------------------------------------------------------------- create */

START_TEST(test_create_args)
{
    mt_alloc *a = NULL;
    ck_assert_int_eq(mt_alloc_create(1024, 0, &a), MANTA_EINVAL);
    ck_assert_int_eq(mt_alloc_create(1024, 4, &a), MANTA_EINVAL);
    ck_assert_int_eq(mt_alloc_create(1024, 12, &a), MANTA_EINVAL);
    ck_assert_int_eq(mt_alloc_create(1024, 63, &a), MANTA_EINVAL);
    ck_assert_int_eq(mt_alloc_create(0, 64, &a), MANTA_EINVAL);
    ck_assert_int_eq(mt_alloc_create(63, 64, &a), MANTA_EINVAL);
    ck_assert_ptr_null(a);
    a = new_alloc(64, 64);
    ck_assert_uint_eq(mt_alloc_capacity(a), 64);
    ck_assert_uint_eq(mt_alloc_used(a), 0);
    ck_assert_uint_eq(mt_alloc_count(a), 0);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 64);
    mt_alloc_destroy(a);
    mt_alloc_destroy(NULL);
}
END_TEST

START_TEST(test_capacity_not_aligned)
{
    mt_alloc *a = new_alloc(1000, 64);
    ck_assert_uint_eq(mt_alloc_capacity(a), 960);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 960);
    get_fails(a, 961, MANTA_ENOMEM);
    get_fails(a, 1000, MANTA_ENOMEM);
    uint64_t off = get_ok(a, 960);
    ck_assert_uint_eq(off, 0);
    ck_assert_int_eq(mt_alloc_check(a), 0);
    put_ok(a, off);
    for (int i = 0; i < 15; i++)
        ck_assert_uint_eq(get_ok(a, 64), (uint64_t)i * 64);
    get_fails(a, 1, MANTA_ENOMEM);
    ck_assert_uint_eq(mt_alloc_used(a), 960);
    ck_assert_int_eq(mt_alloc_check(a), 0);
    mt_alloc_destroy(a);
}
END_TEST

/* ---------------------------------------------------------------- fits */

START_TEST(test_exact_fit)
{
    mt_alloc *a = new_alloc(1024, 64);
    ck_assert_uint_eq(get_ok(a, 1024), 0);
    ck_assert_uint_eq(mt_alloc_used(a), 1024);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 0);
    ck_assert_uint_eq(mt_alloc_count(a), 1);
    get_fails(a, 64, MANTA_ENOMEM);
    put_ok(a, 0);
    ck_assert_uint_eq(get_ok(a, 1024), 0);
    mt_alloc_destroy(a);

    /* A size off a bin boundary (33 units sits in the bin of 32..33) must
     * still find the one block that holds it exactly. */
    a = new_alloc(33 * 64, 64);
    ck_assert_uint_eq(get_ok(a, 33 * 64), 0);
    ck_assert_int_eq(mt_alloc_check(a), 0);
    mt_alloc_destroy(a);
}
END_TEST

START_TEST(test_exact_fit_among_holes)
{
    /* Holes of 32 and 33 units share a bin; a 33-unit request must take the
     * 33-unit hole although only the fallback walk can find it. */
    mt_alloc *a = new_alloc(67 * 64, 64);
    uint64_t h32 = get_ok(a, 32 * 64);
    get_ok(a, 64);
    uint64_t h33 = get_ok(a, 33 * 64);
    get_ok(a, 64);
    get_fails(a, 64, MANTA_ENOMEM);
    put_ok(a, h32);
    put_ok(a, h33);
    get_fails(a, 34 * 64, MANTA_ENOMEM);
    ck_assert_uint_eq(get_ok(a, 33 * 64), h33);
    ck_assert_uint_eq(get_ok(a, 32 * 64), h32);
    ck_assert_int_eq(mt_alloc_check(a), 0);
    mt_alloc_destroy(a);
}
END_TEST

START_TEST(test_good_fit)
{
    /* With a 16-unit and a 100-unit hole, a 16-unit request takes the small
     * hole instead of splitting the big one. */
    mt_alloc *a = new_alloc(118 * 64, 64);
    uint64_t small = get_ok(a, 16 * 64);
    get_ok(a, 64);
    uint64_t big = get_ok(a, 100 * 64);
    get_ok(a, 64);
    put_ok(a, small);
    put_ok(a, big);
    ck_assert_uint_eq(get_ok(a, 16 * 64), small);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 100 * 64);
    mt_alloc_destroy(a);
}
END_TEST

START_TEST(test_split)
{
    mt_alloc *a = new_alloc(1024, 64);
    uint64_t x = get_ok(a, 100);
    ck_assert_uint_eq(x, 0);
    ck_assert_uint_eq(mt_alloc_block_size(a, x), 128);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 896);
    uint64_t y = get_ok(a, 64);
    ck_assert_uint_eq(y, 128);
    ck_assert_uint_eq(mt_alloc_used(a), 192);
    ck_assert_uint_eq(mt_alloc_count(a), 2);
    ranges rs = free_ranges(a, 0);
    ck_assert_uint_eq(rs.n, 1);
    assert_range(&rs, 0, 192, 832);
    ck_assert_int_eq(mt_alloc_check(a), 0);
    mt_alloc_destroy(a);
}
END_TEST

START_TEST(test_alignment)
{
    static const uint64_t aligns[] = {8, 64, 4096, 1 << 20};
    for (size_t i = 0; i < MT_ARRAY_LEN(aligns); i++) {
        uint64_t al = aligns[i];
        mt_alloc *a = new_alloc(al * 100 + al / 2, al);
        ck_assert_uint_eq(mt_alloc_capacity(a), al * 100);
        uint64_t sizes[] = {1, al - 1, al, al + 1, 3 * al - 5, 7};
        for (size_t j = 0; j < MT_ARRAY_LEN(sizes); j++) {
            uint64_t off = get_ok(a, sizes[j]);
            ck_assert_uint_eq(off % al, 0);
            ck_assert_uint_eq(mt_alloc_block_size(a, off), MT_ALIGN_UP(sizes[j], al));
        }
        ck_assert_uint_eq(mt_alloc_used(a), al * (1 + 1 + 1 + 2 + 3 + 1));
        ck_assert_int_eq(mt_alloc_check(a), 0);
        mt_alloc_destroy(a);
    }
}
END_TEST

/* ---------------------------------------------------------------- coalesce */

/* Four 64-byte blocks filling a 256-byte region: 0, 64, 128, 192. */
static mt_alloc *four_blocks(void)
{
    mt_alloc *a = new_alloc(256, 64);
    for (uint64_t i = 0; i < 4; i++)
        ck_assert_uint_eq(get_ok(a, 64), i * 64);
    return a;
}

START_TEST(test_coalesce_right)
{
    mt_alloc *a = four_blocks();
    put_ok(a, 64);
    put_ok(a, 0); /* merges with its free right neighbour */
    ranges rs = free_ranges(a, 0);
    ck_assert_uint_eq(rs.n, 1);
    assert_range(&rs, 0, 0, 128);
    ck_assert_uint_eq(get_ok(a, 128), 0);
    mt_alloc_destroy(a);
}
END_TEST

START_TEST(test_coalesce_left)
{
    mt_alloc *a = four_blocks();
    put_ok(a, 128);
    put_ok(a, 192); /* merges with its free left neighbour */
    ranges rs = free_ranges(a, 0);
    ck_assert_uint_eq(rs.n, 1);
    assert_range(&rs, 0, 128, 128);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 128);
    ck_assert_uint_eq(get_ok(a, 128), 128);
    mt_alloc_destroy(a);
}
END_TEST

START_TEST(test_coalesce_both)
{
    mt_alloc *a = four_blocks();
    put_ok(a, 0);
    put_ok(a, 128);
    ck_assert_uint_eq(free_ranges(a, 0).n, 2);
    put_ok(a, 64); /* joins both neighbours */
    ranges rs = free_ranges(a, 0);
    ck_assert_uint_eq(rs.n, 1);
    assert_range(&rs, 0, 0, 192);
    put_ok(a, 192);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 256);
    ck_assert_uint_eq(mt_alloc_used(a), 0);
    ck_assert_uint_eq(mt_alloc_count(a), 0);
    ck_assert_uint_eq(get_ok(a, 256), 0);
    mt_alloc_destroy(a);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_enomem_then_put)
{
    mt_alloc *a = new_alloc(4096, 64);
    uint64_t offs[64];
    for (int i = 0; i < 64; i++)
        offs[i] = get_ok(a, 64);
    get_fails(a, 1, MANTA_ENOMEM);
    get_fails(a, 8192, MANTA_ENOMEM);
    get_fails(a, UINT64_MAX, MANTA_ENOMEM);
    get_fails(a, 0, MANTA_EINVAL);
    put_ok(a, offs[17]);
    ck_assert_uint_eq(get_ok(a, 64), offs[17]);
    get_fails(a, 1, MANTA_ENOMEM);
    mt_alloc_destroy(a);
}
END_TEST

START_TEST(test_bad_put)
{
    mt_alloc *a = new_alloc(4096, 64);
    ck_assert_int_eq(mt_alloc_put(a, 0), MANTA_EINVAL); /* nothing allocated */
    uint64_t x = get_ok(a, 128);
    uint64_t bad[] = {1, 63, 64, 128, 4096, 1ull << 40, UINT64_MAX};
    for (size_t i = 0; i < MT_ARRAY_LEN(bad); i++) {
        ck_assert_int_eq(mt_alloc_put(a, x + bad[i]), MANTA_EINVAL);
        ck_assert_uint_eq(mt_alloc_block_size(a, x + bad[i]), 0);
    }
    ck_assert_uint_eq(mt_alloc_used(a), 128);
    ck_assert_uint_eq(mt_alloc_count(a), 1);
    ck_assert_int_eq(mt_alloc_check(a), 0);
    mt_alloc_destroy(a);
}
END_TEST

START_TEST(test_double_put)
{
    mt_alloc *a = new_alloc(4096, 64);
    uint64_t x = get_ok(a, 64), y = get_ok(a, 64);
    put_ok(a, y);
    ck_assert_int_eq(mt_alloc_put(a, y), MANTA_EINVAL);
    put_ok(a, x); /* x absorbs y's range; y's metadata is gone */
    ck_assert_int_eq(mt_alloc_put(a, y), MANTA_EINVAL);
    ck_assert_int_eq(mt_alloc_put(a, x), MANTA_EINVAL);
    ck_assert_uint_eq(mt_alloc_block_size(a, x), 0);
    ck_assert_uint_eq(mt_alloc_used(a), 0);
    ck_assert_int_eq(mt_alloc_check(a), 0);
    mt_alloc_destroy(a);
}
END_TEST

START_TEST(test_fragmentation)
{
    mt_alloc *a = new_alloc(1024, 64);
    for (uint64_t i = 0; i < 16; i++)
        get_ok(a, 64);
    for (uint64_t i = 0; i < 16; i += 2)
        put_ok(a, i * 64);
    /* Half the region is free, but in 64-byte holes only. */
    ck_assert_uint_eq(mt_alloc_used(a), 512);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 64);
    ck_assert_uint_eq(free_ranges(a, 0).n, 8);
    get_fails(a, 128, MANTA_ENOMEM);
    put_ok(a, 64); /* joins the holes at 0 and 128 */
    ck_assert_uint_eq(mt_alloc_largest_free(a), 192);
    ck_assert_uint_eq(free_ranges(a, 0).n, 7);
    ck_assert_uint_eq(get_ok(a, 192), 0);
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(get_ok(a, 64) % 128, 0);
    get_fails(a, 64, MANTA_ENOMEM);
    ck_assert_uint_eq(mt_alloc_used(a), 1024);
    mt_alloc_destroy(a);
}
END_TEST

/* ---------------------------------------------------------------- ranges */

START_TEST(test_largest_free)
{
    mt_alloc *a = new_alloc(64 * KB, 64);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 64 * KB);
    uint64_t x = get_ok(a, 10 * KB);
    get_ok(a, 64);
    uint64_t y = get_ok(a, 20 * KB);
    get_ok(a, 64);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 34 * KB - 128);
    uint64_t rest = get_ok(a, 34 * KB - 128);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 0);
    put_ok(a, x);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 10 * KB);
    put_ok(a, y);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 20 * KB);
    put_ok(a, rest);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 34 * KB - 128); /* seps split the holes */
    mt_alloc_destroy(a);
    /* Two holes in one bin (340 and 336 units), the smaller at the head of
     * the bin's list: the larger still counts. */
    a = new_alloc(42 * KB + 256 + 640, 64);
    x = get_ok(a, 21 * KB + 256);
    get_ok(a, 64);
    y = get_ok(a, 21 * KB);
    get_ok(a, 64);
    get_ok(a, KB / 2);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 0);
    put_ok(a, x);
    put_ok(a, y);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 21 * KB + 256);
    mt_alloc_destroy(a);
}
END_TEST

START_TEST(test_free_ranges)
{
    mt_alloc *a = new_alloc(1024, 64);
    for (uint64_t i = 0; i < 16; i++)
        get_ok(a, 64);
    ck_assert_uint_eq(free_ranges(a, 0).n, 0);
    static const int freed[] = {1, 3, 4, 7, 8, 9, 15};
    for (size_t i = 0; i < MT_ARRAY_LEN(freed); i++)
        put_ok(a, (uint64_t)freed[i] * 64);
    ranges rs = free_ranges(a, 0);
    ck_assert_uint_eq(rs.n, 4);
    assert_range(&rs, 0, 64, 64);
    assert_range(&rs, 1, 192, 128);
    assert_range(&rs, 2, 448, 192);
    assert_range(&rs, 3, 960, 64);
    ck_assert_uint_eq(rs.total, 1024 - mt_alloc_used(a));
    ck_assert_uint_eq(free_ranges(a, 64).n, 4);
    rs = free_ranges(a, 65);
    ck_assert_uint_eq(rs.n, 2);
    assert_range(&rs, 0, 192, 128);
    assert_range(&rs, 1, 448, 192);
    ck_assert_uint_eq(free_ranges(a, 128).n, 2);
    rs = free_ranges(a, 129);
    ck_assert_uint_eq(rs.n, 1);
    assert_range(&rs, 0, 448, 192);
    ck_assert_uint_eq(free_ranges(a, 193).n, 0);
    ck_assert_uint_eq(free_ranges(a, 1 << 20).n, 0);
    ck_assert_uint_eq(free_ranges(a, UINT64_MAX).n, 0);
    mt_alloc_destroy(a);
}
END_TEST

START_TEST(test_free_ranges_big_holes)
{
    /* Holes spread over many size classes; only the big ones are visited. */
    mt_alloc *a = new_alloc(64 * MB, 4096);
    uint64_t holes[12];
    for (int i = 0; i < 12; i++) {
        holes[i] = get_ok(a, (4096ull << i) + 4096 * (uint64_t)i);
        get_ok(a, 4096);
    }
    for (int i = 0; i < 12; i++)
        put_ok(a, holes[i]);
    uint64_t min = 4096ull << 8;
    ranges rs = free_ranges(a, min);
    ck_assert_uint_eq(rs.n, 4 + 1); /* holes 8..11 and the tail */
    for (size_t i = 0; i < 4; i++)
        assert_range(&rs, i, holes[8 + i], (4096ull << (8 + i)) + 4096 * (8 + i));
    ck_assert_uint_eq(free_ranges(a, 0).total, mt_alloc_capacity(a) - mt_alloc_used(a));
    mt_alloc_destroy(a);
}
END_TEST

/* ---------------------------------------------------------------- stress */

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

/* Mostly small objects, some medium, a few large ones. */
static uint64_t random_size(void)
{
    uint64_t r = rng() % 100;
    if (r < 20) return 1 + rng() % 256;
    if (r < 70) return 1 + rng() % (4 * KB);
    if (r < 95) return 1 + rng() % (256 * KB);
    return 1 + rng() % (4 * MB);
}

typedef struct shadow {
    uint64_t off, size;
} shadow;

static void check_against(const mt_alloc *a, const shadow *live, size_t n, uint64_t used)
{
    ck_assert_int_eq(mt_alloc_check(a), 0);
    ck_assert_uint_eq(mt_alloc_used(a), used);
    ck_assert_uint_eq(mt_alloc_count(a), n);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(mt_alloc_block_size(a, live[i].off), live[i].size);
    ranges rs = {.n = 0};
    mt_alloc_free_ranges(a, 0, collect, &rs);
    ck_assert_uint_eq(rs.total, mt_alloc_capacity(a) - used);
}

START_TEST(test_stress)
{
    enum { OPS = 200000, CHECK_EVERY = 2000 };
    const uint64_t cap = 64 * MB + 1000, align = 64;
    mt_alloc *a = new_alloc(cap, align);
    shadow *live = mt_malloc(OPS * sizeof *live);
    size_t n = 0, nomem = 0;
    uint64_t used = 0;
    rng_state = 0x9E3779B97F4A7C15ull;
    for (int op = 0; op < OPS; op++) {
        /* Phases of 20k ops alternately fill the region up and drain it. */
        unsigned get_pct = (op / 20000) % 2 ? 30 : 70;
        if (n == 0 || rng() % 100 < get_pct) {
            uint64_t size = random_size(), rounded = MT_ALIGN_UP(size, align), off = 0;
            int rc = mt_alloc_get(a, size, &off);
            if (rc == MANTA_ENOMEM) {
                /* ENOMEM only when no free range fits. */
                ck_assert_uint_lt(mt_alloc_largest_free(a), rounded);
                ranges rs = {.n = 0};
                mt_alloc_free_ranges(a, rounded, collect, &rs);
                ck_assert_uint_eq(rs.n, 0);
                nomem++;
                continue;
            }
            ck_assert_int_eq(rc, 0);
            ck_assert_uint_eq(off % align, 0);
            ck_assert_uint_le(off + rounded, mt_alloc_capacity(a));
            live[n++] = (shadow){off, rounded};
            used += rounded;
        } else {
            size_t i = rng() % n;
            if (rng() % 16 == 0) /* inside a block: never a block start */
                ck_assert_int_eq(mt_alloc_put(a, live[i].off + align / 2), MANTA_EINVAL);
            ck_assert_int_eq(mt_alloc_put(a, live[i].off), 0);
            ck_assert_int_eq(mt_alloc_put(a, live[i].off), MANTA_EINVAL);
            used -= live[i].size;
            live[i] = live[--n];
        }
        if (op % CHECK_EVERY == 0) check_against(a, live, n, used);
    }
    check_against(a, live, n, used);
    ck_assert_uint_gt(nomem, 0); /* the run did reach a full region */
    while (n)
        ck_assert_int_eq(mt_alloc_put(a, live[--n].off), 0);
    ck_assert_uint_eq(mt_alloc_used(a), 0);
    ck_assert_uint_eq(mt_alloc_largest_free(a), mt_alloc_capacity(a));
    ck_assert_uint_eq(free_ranges(a, 0).n, 1);
    ck_assert_int_eq(mt_alloc_check(a), 0);
    free(live);
    mt_alloc_destroy(a);
}
END_TEST

/* ---------------------------------------------------------------- huge */

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

START_TEST(test_huge_capacity)
{
    long rss0 = max_rss_kb();
    mt_alloc *a = new_alloc(1ull << 40, 64);
    ck_assert_uint_eq(mt_alloc_capacity(a), 1ull << 40);
    ck_assert_uint_eq(mt_alloc_largest_free(a), 1ull << 40);
    get_fails(a, (1ull << 40) + 1, MANTA_ENOMEM);
    uint64_t offs[1024];
    for (int i = 0; i < 1024; i++) {
        offs[i] = get_ok(a, GB);
        ck_assert_uint_eq(offs[i], (uint64_t)i * GB);
    }
    get_fails(a, 64, MANTA_ENOMEM);
    ck_assert_uint_eq(mt_alloc_used(a), 1ull << 40);
    ck_assert_int_eq(mt_alloc_check(a), 0);
    for (int i = 0; i < 1024; i++) /* a scattered order: 1024 steps of 389 visit all */
        ck_assert_int_eq(mt_alloc_put(a, offs[(i * 389) % 1024]), 0);
    ck_assert_int_eq(mt_alloc_check(a), 0);
    ck_assert_uint_eq(free_ranges(a, 0).n, 1);
    ck_assert_uint_eq(get_ok(a, 1ull << 39), 0);
    ck_assert_uint_eq(get_ok(a, 1ull << 39), 1ull << 39);
    mt_alloc_destroy(a);
    /* Metadata is per block: far below a MB here, let alone 2^40 / 64. */
    ck_assert_int_lt(max_rss_kb() - rss0, 64 * 1024);
}
END_TEST

START_TEST(test_max_capacity)
{
    mt_alloc *a = new_alloc(UINT64_MAX, 8);
    uint64_t cap = mt_alloc_capacity(a);
    ck_assert_uint_eq(cap, UINT64_MAX & ~7ull);
    get_fails(a, UINT64_MAX, MANTA_ENOMEM);
    uint64_t x = get_ok(a, cap - 100);
    ck_assert_uint_eq(x, 0);
    ck_assert_uint_eq(mt_alloc_block_size(a, x), cap - 96);
    get_fails(a, 97, MANTA_ENOMEM);
    uint64_t y = get_ok(a, 96);
    ck_assert_uint_eq(y, cap - 96);
    put_ok(a, x);
    put_ok(a, y);
    ck_assert_uint_eq(get_ok(a, cap), 0);
    mt_alloc_destroy(a);
}
END_TEST

/* ---------------------------------------------------------------- main */

static Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("create");
    tcase_add_test(tc, test_create_args);
    tcase_add_test(tc, test_capacity_not_aligned);
    suite_add_tcase(s, tc);

    tc = tcase_create("fit");
    tcase_add_test(tc, test_exact_fit);
    tcase_add_test(tc, test_exact_fit_among_holes);
    tcase_add_test(tc, test_good_fit);
    tcase_add_test(tc, test_split);
    tcase_add_test(tc, test_alignment);
    suite_add_tcase(s, tc);

    tc = tcase_create("coalesce");
    tcase_add_test(tc, test_coalesce_right);
    tcase_add_test(tc, test_coalesce_left);
    tcase_add_test(tc, test_coalesce_both);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_enomem_then_put);
    tcase_add_test(tc, test_bad_put);
    tcase_add_test(tc, test_double_put);
    tcase_add_test(tc, test_fragmentation);
    suite_add_tcase(s, tc);

    tc = tcase_create("ranges");
    tcase_add_test(tc, test_largest_free);
    tcase_add_test(tc, test_free_ranges);
    tcase_add_test(tc, test_free_ranges_big_holes);
    suite_add_tcase(s, tc);

    tc = tcase_create("stress");
    tcase_set_timeout(tc, 100);
    tcase_add_test(tc, test_stress);
    suite_add_tcase(s, tc);

    tc = tcase_create("huge");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_huge_capacity);
    tcase_add_test(tc, test_max_capacity);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(alloc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
