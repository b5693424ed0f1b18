/* resources.h -- resource sets of the scheduler (CPU, GPU, memory, custom) as
 * fixed-point amounts, their JSON form, and the node's GPU id pool.  Follows
 * Ray's model: 1 unit = MT_RES_UNIT, fractions down to 1/10000.  Not
 * thread-safe; the daemon uses these from its one loop thread. */
#ifndef MT_RES_H
#define MT_RES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fixed point: an amount of 1.0 is stored as 10000 (Ray's granularity). */
#define MT_RES_UNIT 10000
/* Largest amount a user may ask for or declare, in units.  "memory" and
 * "object_store_memory" count bytes, so 1e9 would cap them at 1 GB; they get
 * MT_RES_MAX_BYTES instead (100 TB; times MT_RES_UNIT still fits int64). */
#define MT_RES_MAX_UNITS 1000000000LL
#define MT_RES_MAX_BYTES 100000000000000LL
/* Longest resource name in bytes, and most names one JSON object may hold
 * (a bound on the work a peer can cause; Ray has none). */
#define MT_RES_NAME_MAX 255
#define MT_RES_JSON_MAX_ENTRIES 1024

/* A set of named amounts: a small vector sorted by name (strcmp order).
 *
 * Zero amounts are never stored: putting 0 removes the entry, and an absent
 * name reads as 0.  So every set has one canonical form and equal/hash/key
 * need no special cases.  Negative amounts are stored: availability may dip
 * below zero for a moment (a worker that lent its CPU while blocked in get()
 * takes it back even if the CPU was granted meanwhile, as in Ray).
 *
 * The set owns its names.  Read the entries through v[0..n) freely; change
 * them only through the functions below. */
typedef struct mt_res_entry {
    char *name;
    int64_t amount;
} mt_res_entry;

typedef struct mt_res_set {
    mt_res_entry *v;
    uint32_t n, cap;
} mt_res_set;

/* ---------------------------------------------------------------- sets */

/* An empty set; needs no allocation. */
void mt_res_init(mt_res_set *s);
/* Free every name and the vector; `s` is empty (and reusable) afterwards. */
void mt_res_free(mt_res_set *s);
/* Make `dst` (an initialized set) a deep copy of `src`; dst's old entries
 * are freed.  dst == src is allowed. */
void mt_res_copy(mt_res_set *dst, const mt_res_set *src);
/* The amount of `name`, 0 if absent. */
int64_t mt_res_get(const mt_res_set *s, const char *name);
/* Set `name` to `amount` (copied name); amount 0 removes the entry. */
void mt_res_put(mt_res_set *s, const char *name, int64_t amount);

/* dst += src, name by name (saturating at the int64 limits).  dst == src
 * is allowed. */
void mt_res_add(mt_res_set *dst, const mt_res_set *src);
/* dst -= src, name by name; results may be negative (see above), results of
 * 0 are removed.  dst == src is allowed and empties dst. */
void mt_res_sub(mt_res_set *dst, const mt_res_set *src);
/* True when every demanded amount is <= the available one.  A name absent
 * from `avail` counts as 0, so it fits only a demand of 0 (never stored). */
bool mt_res_fits(const mt_res_set *avail, const mt_res_set *demand);

/* Same names with the same amounts. */
bool mt_res_equal(const mt_res_set *a, const mt_res_set *b);
/* A total order (<0, 0, >0): entries compared by name, then amount, then
 * the shorter set first.  0 exactly when mt_res_equal(). */
int mt_res_cmp(const mt_res_set *a, const mt_res_set *b);
/* A hash of the contents, independent of the order names were put in
 * (sets are canonical); equal sets hash equal.  For scheduling-class keys. */
uint64_t mt_res_hash(const mt_res_set *s);
/* Canonical text key, e.g. "CPU=10000,GPU=5000" (fixed-point amounts,
 * names in sorted order; "" for the empty set).  ',', '=', '%' and control
 * bytes in names are written as %XX so distinct sets never share a key.
 * The caller frees the result. */
char *mt_res_key(const mt_res_set *s);

/* ---------------------------------------------------------------- amounts */

/* Convert a user's amount of resource `name` to fixed point in *out.
 * Rounds to the nearest 1/10000 (halves up, like Ray).  Returns 0, or
 * MANTA_EINVAL with a message naming the resource in `err` (may be NULL)
 * and in manta_last_error() when the value is NaN, infinite, negative,
 * above the maximum (MT_RES_MAX_UNITS, or MT_RES_MAX_BYTES for "memory" and
 * "object_store_memory"), positive but below 0.00005 (it would round to 0,
 * as newer Ray rejects), or above 1 and not whole after rounding (Ray:
 * "Resource quantities >1 must be whole numbers"; we apply it to every
 * resource, as Ray did before it limited the rule to GPUs).  -0.0 is 0.
 * *out is written only on success. */
int mt_res_from_double(const char *name, double v, int64_t *out, char *err, size_t errlen);
/* mt_res_from_double() without the whole-number rule: an amount above 1
 * may have a fraction.  For Python, whose layer applies Ray's rule (only
 * unit-instance resources such as GPUs must be whole) by name. */
int mt_res_from_double_frac(const char *name, double v, int64_t *out, char *err, size_t errlen);
/* The amount as a double (fixed / 10000). */
double mt_res_to_double(int64_t fixed);
/* Validate a name: 1..MT_RES_NAME_MAX bytes of valid UTF-8 without control
 * characters.  Returns 0 or MANTA_EINVAL with a message in `err`. */
int mt_res_check_name(const char *name, char *err, size_t errlen);
/* Validate a fixed-point demand or total that arrived from elsewhere (e.g.
 * the wire): the name as mt_res_check_name(), the amount by the rules of
 * mt_res_from_double().  Returns 0 or MANTA_EINVAL with a message. */
int mt_res_check(const char *name, int64_t fixed, char *err, size_t errlen);
/* mt_res_check() without the whole-number rule: what a node accepts in a
 * lease request, from a client of either language. */
int mt_res_check_frac(const char *name, int64_t fixed, char *err, size_t errlen);

/* ---------------------------------------------------------------- JSON */

/* Parse a JSON object of name -> number, e.g. {"fpga": 2, "accel": 0.5},
 * into `out` (an initialized set).  Strict RFC 8259 syntax for the object,
 * strings (escapes, surrogate pairs, valid UTF-8) and numbers; names pass
 * mt_res_check_name() and amounts the rules of mt_res_from_double() (the
 * decimal text is converted exactly, independent of the C locale).  Zero
 * amounts are accepted and dropped.  Rejected with MANTA_EINVAL and a
 * message giving the byte offset and the problem: anything else, nested
 * values, duplicate names (also when spelled with different escapes), more
 * than MT_RES_JSON_MAX_ENTRIES names.  On success out's old entries are
 * replaced; on error `out` is unchanged.  Safe on any input. */
int mt_res_parse_json(const char *json, mt_res_set *out, char *err, size_t errlen);
/* The same for `len` bytes that need not end in NUL (a NUL inside is an
 * error). */
int mt_res_parse_json_n(const char *json, size_t len, mt_res_set *out, char *err, size_t errlen);
/* The set as a JSON object, e.g. {"CPU": 1, "GPU": 0.5}: names in sorted
 * order, amounts as decimals with up to 4 fraction digits (exact, no
 * trailing zeros).  Parses back to an equal set when every amount is valid.
 * The caller frees the result. */
char *mt_res_to_json(const mt_res_set *s);

/* ---------------------------------------------------------------- GPU ids */

/* Which GPUs of the node are in use, and how much of each (fixed point). */
typedef struct mt_res_gpu_pool mt_res_gpu_pool;

/* A pool of GPUs 0..ngpus-1, all free.  ngpus >= 0.  Free it with
 * mt_res_gpu_pool_free(). */
mt_res_gpu_pool *mt_res_gpu_pool_new(int ngpus);
void mt_res_gpu_pool_free(mt_res_gpu_pool *g);
/* Number of GPUs in the pool. */
int mt_res_gpu_pool_size(const mt_res_gpu_pool *g);
/* How much of GPU `id` is in use (0..MT_RES_UNIT); 0 for an unknown id. */
int64_t mt_res_gpu_pool_used(const mt_res_gpu_pool *g, int32_t id);

/* Assign GPUs for a demand of `amount` (fixed point) and write their ids to
 * ids[0..*n).  A whole amount k takes k fully free GPUs, lowest ids first;
 * a fraction below 1 takes that share of one GPU: the most used GPU that
 * still has room (packing fractional users together keeps whole GPUs free),
 * the lowest id among equals.  Amount 0 takes nothing (*n = 0).  Returns 0;
 * MANTA_ENOMEM if the GPUs cannot satisfy it now; MANTA_EINVAL for a
 * negative amount, a fraction above 1, or `cap` too small for the ids.  On
 * error nothing changes and *n = 0. */
int mt_res_gpu_acquire(mt_res_gpu_pool *g, int64_t amount, int32_t *ids, size_t cap, size_t *n);
/* Give back what mt_res_gpu_acquire(g, amount, ...) assigned as ids[0..n).
 * Releasing anything else is a bug in the caller and aborts. */
void mt_res_gpu_release(mt_res_gpu_pool *g, int64_t amount, const int32_t *ids, size_t n);

#endif /* MT_RES_H */
