/* resources.c -- fixed-point resource sets (sorted vectors by name), their
 * checks and canonical keys, a strict JSON reader and writer for them, and
 * the GPU id pool.  See resources.h for the model and the contracts. */
#include "resources.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"
#include "mt.h"

/* Record an EINVAL message in `err` (if given) and in manta_last_error(). */
static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (err && errlen) snprintf(err, errlen, "%s", msg);
    return mt_err(MANTA_EINVAL, "%s", msg);
}

/* Write fixed-point `v` as an exact decimal without trailing zeros. */
static void fmt_fixed(int64_t v, char *out, size_t cap)
{
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    uint64_t whole = mag / MT_RES_UNIT, frac = mag % MT_RES_UNIT;
    int digits = 4;
    while (frac && frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    if (frac)
        snprintf(out, cap, "%s%" PRIu64 ".%0*" PRIu64, v < 0 ? "-" : "", whole, digits, frac);
    else
        snprintf(out, cap, "%s%" PRIu64, v < 0 ? "-" : "", whole);
}

/* ---------------------------------------------------------------- sets */

/* Binary search: true and *pos = index if present, else *pos = where the
 * name would go. */
static bool res_find(const mt_res_set *s, const char *name, uint32_t *pos)
{
    uint32_t lo = 0, hi = s->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->v[mid].name, name);
        if (c == 0) {
            *pos = mid;
            return true;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return false;
}

/* Insert at the sorted position `pos`, taking ownership of `name`. */
static void res_insert(mt_res_set *s, uint32_t pos, char *name, int64_t amount)
{
    if (s->n == s->cap) {
        mt_assert(s->cap < UINT32_MAX / 2);
        s->cap = s->cap ? s->cap * 2 : 4;
        s->v = mt_realloc(s->v, (size_t)s->cap * sizeof *s->v);
    }
    memmove(s->v + pos + 1, s->v + pos, (size_t)(s->n - pos) * sizeof *s->v);
    s->v[pos].name = name;
    s->v[pos].amount = amount;
    s->n++;
}

static void res_remove(mt_res_set *s, uint32_t pos)
{
    free(s->v[pos].name);
    memmove(s->v + pos, s->v + pos + 1, (size_t)(s->n - pos - 1) * sizeof *s->v);
    s->n--;
}

/* Restore the no-zeros form after a parse that kept zeros to see duplicates. */
static void res_drop_zeros(mt_res_set *s)
{
    uint32_t w = 0;
    for (uint32_t r = 0; r < s->n; r++) {
        if (s->v[r].amount == 0)
            free(s->v[r].name);
        else
            s->v[w++] = s->v[r];
    }
    s->n = w;
}

void mt_res_init(mt_res_set *s)
{
    memset(s, 0, sizeof *s);
}

void mt_res_free(mt_res_set *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        free(s->v[i].name);
    free(s->v);
    mt_res_init(s);
}

void mt_res_copy(mt_res_set *dst, const mt_res_set *src)
{
    if (dst == src) return;
    mt_res_free(dst);
    if (src->n == 0) return;
    dst->v = mt_malloc((size_t)src->n * sizeof *dst->v);
    dst->n = dst->cap = src->n;
    for (uint32_t i = 0; i < src->n; i++) {
        dst->v[i].name = mt_strdup(src->v[i].name);
        dst->v[i].amount = src->v[i].amount;
    }
}

int64_t mt_res_get(const mt_res_set *s, const char *name)
{
    uint32_t pos;
    return res_find(s, name, &pos) ? s->v[pos].amount : 0;
}

void mt_res_put(mt_res_set *s, const char *name, int64_t amount)
{
    uint32_t pos;
    mt_assert(name != NULL);
    if (res_find(s, name, &pos)) {
        if (amount == 0)
            res_remove(s, pos);
        else
            s->v[pos].amount = amount;
    } else if (amount != 0) {
        res_insert(s, pos, mt_strdup(name), amount);
    }
}

/* ---------------------------------------------------------------- arithmetic */

/* dst += sign * src, saturating instead of overflowing. */
static void res_combine(mt_res_set *dst, const mt_res_set *src, int sign)
{
    if (dst == src) {
        /* Updating dst may remove entries of the set being walked. */
        mt_res_set tmp;
        mt_res_init(&tmp);
        mt_res_copy(&tmp, src);
        res_combine(dst, &tmp, sign);
        mt_res_free(&tmp);
        return;
    }
    for (uint32_t i = 0; i < src->n; i++) {
        int64_t cur = mt_res_get(dst, src->v[i].name), amt = src->v[i].amount, r;
        bool ovf =
            sign > 0 ? __builtin_add_overflow(cur, amt, &r) : __builtin_sub_overflow(cur, amt, &r);
        if (ovf) r = (sign > 0) == (amt > 0) ? INT64_MAX : INT64_MIN;
        mt_res_put(dst, src->v[i].name, r);
    }
}

void mt_res_add(mt_res_set *dst, const mt_res_set *src)
{
    res_combine(dst, src, 1);
}

void mt_res_sub(mt_res_set *dst, const mt_res_set *src)
{
    res_combine(dst, src, -1);
}

bool mt_res_fits(const mt_res_set *avail, const mt_res_set *demand)
{
    for (uint32_t i = 0; i < demand->n; i++)
        if (demand->v[i].amount > mt_res_get(avail, demand->v[i].name)) return false;
    return true;
}

/* ---------------------------------------------------------------- identity */

bool mt_res_equal(const mt_res_set *a, const mt_res_set *b)
{
    return mt_res_cmp(a, b) == 0;
}

int mt_res_cmp(const mt_res_set *a, const mt_res_set *b)
{
    for (uint32_t i = 0; i < a->n && i < b->n; i++) {
        int c = strcmp(a->v[i].name, b->v[i].name);
        if (c != 0) return c < 0 ? -1 : 1;
        if (a->v[i].amount != b->v[i].amount) return a->v[i].amount < b->v[i].amount ? -1 : 1;
    }
    return a->n < b->n ? -1 : a->n > b->n;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t mt_res_hash(const mt_res_set *s)
{
    /* Sets are sorted and zero-free, so walking them in order is already
     * independent of the order names were put in. */
    uint64_t h = 1469598103934665603ULL;
    for (uint32_t i = 0; i < s->n; i++) {
        uint8_t le[8];
        for (int k = 0; k < 8; k++)
            le[k] = (uint8_t)((uint64_t)s->v[i].amount >> (8 * k));
        h = fnv(h, s->v[i].name, strlen(s->v[i].name) + 1); /* the NUL ends the name */
        h = fnv(h, le, sizeof le);
    }
    return h ^ (h >> 29);
}

static void buf_str(mt_buf *b, const char *s)
{
    mt_buf_append(b, s, strlen(s));
}

/* NUL-terminate and hand over the bytes (the caller frees them). */
static char *buf_finish(mt_buf *b)
{
    mt_buf_append(b, "", 1);
    return (char *)b->data;
}

char *mt_res_key(const mt_res_set *s)
{
    mt_buf b;
    mt_buf_init(&b);
    for (uint32_t i = 0; i < s->n; i++) {
        char num[32];
        if (i) buf_str(&b, ",");
        for (const unsigned char *p = (const unsigned char *)s->v[i].name; *p; p++) {
            if (*p == ',' || *p == '=' || *p == '%' || *p < 0x20 || *p == 0x7f) {
                char hex[4];
                snprintf(hex, sizeof hex, "%%%02X", *p);
                mt_buf_append(&b, hex, 3);
            } else {
                mt_buf_append(&b, p, 1);
            }
        }
        snprintf(num, sizeof num, "=%" PRId64, s->v[i].amount);
        buf_str(&b, num);
    }
    return buf_finish(&b);
}

/* ---------------------------------------------------------------- amounts */

/* The largest amount of `name`, in units (memory resources count bytes). */
static int64_t res_limit(const char *name)
{
    if (strcmp(name, "memory") == 0 || strcmp(name, "object_store_memory") == 0)
        return MT_RES_MAX_BYTES;
    return MT_RES_MAX_UNITS;
}

/* The range rules shared by doubles, JSON text and wire values.  `nonzero`
 * says whether the value before rounding was nonzero. */
static int check_range(const char *name, int64_t fixed, bool nonzero, char *err, size_t errlen)
{
    char txt[32];
    int64_t max = res_limit(name);
    fmt_fixed(fixed, txt, sizeof txt);
    if (fixed < 0)
        return fail(err, errlen, "amount of resource '%.64s' is negative (%s)", name, txt);
    if (fixed > max * MT_RES_UNIT)
        return fail(err, errlen, "amount of resource '%.64s' is above the maximum of %" PRId64,
                    name, max);
    if (fixed == 0 && nonzero)
        return fail(err, errlen,
                    "amount of resource '%.64s' is below the granularity of 0.0001 and would "
                    "round to 0",
                    name);
    return 0;
}

/* The C rule: an amount above 1 is whole. */
static int check_whole(const char *name, int64_t fixed, char *err, size_t errlen)
{
    if (fixed <= MT_RES_UNIT || fixed % MT_RES_UNIT == 0) return 0;
    char txt[32];
    fmt_fixed(fixed, txt, sizeof txt);
    return fail(err, errlen, "amount of resource '%.64s' is %s: amounts above 1 must be whole numbers",
                name, txt);
}

static int check_amount(const char *name, int64_t fixed, bool nonzero, char *err, size_t errlen)
{
    int rc = check_range(name, fixed, nonzero, err, errlen);
    return rc ? rc : check_whole(name, fixed, err, errlen);
}

int mt_res_from_double_frac(const char *name, double v, int64_t *out, char *err, size_t errlen)
{
    mt_assert(name != NULL);
    if (isnan(v)) return fail(err, errlen, "amount of resource '%.64s' is not a number", name);
    if (isinf(v)) return fail(err, errlen, "amount of resource '%.64s' is infinite", name);
    if (v < 0) return fail(err, errlen, "amount of resource '%.64s' is negative (%g)", name, v);
    if (v > (double)res_limit(name))
        return fail(err, errlen, "amount of resource '%.64s' (%g) is above the maximum of %" PRId64,
                    name, v, res_limit(name));
    /* Whole numbers convert exactly even where v * 10000 would not. */
    int64_t fixed = v == floor(v) ? (int64_t)v * MT_RES_UNIT : (int64_t)(v * MT_RES_UNIT + 0.5);
    int rc = check_range(name, fixed, v > 0, err, errlen);
    if (rc == 0) *out = fixed;
    return rc;
}

int mt_res_from_double(const char *name, double v, int64_t *out, char *err, size_t errlen)
{
    int64_t fixed;
    int rc = mt_res_from_double_frac(name, v, &fixed, err, errlen);
    if (rc == 0) rc = check_whole(name, fixed, err, errlen);
    if (rc == 0) *out = fixed;
    return rc;
}

double mt_res_to_double(int64_t fixed)
{
    return (double)fixed / MT_RES_UNIT;
}

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            len = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            len = 3, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

int mt_res_check_name(const char *name, char *err, size_t errlen)
{
    if (!name || !*name) return fail(err, errlen, "empty resource name");
    size_t len = strlen(name);
    if (len > MT_RES_NAME_MAX)
        return fail(err, errlen, "resource name of %zu bytes is longer than the limit of %d", len,
                    MT_RES_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return fail(err, errlen, "resource name has a control character at byte %zu", i);
    }
    if (!utf8_valid((const unsigned char *)name, len))
        return fail(err, errlen, "resource name is not valid UTF-8");
    return 0;
}

int mt_res_check(const char *name, int64_t fixed, char *err, size_t errlen)
{
    int rc = mt_res_check_name(name, err, errlen);
    return rc ? rc : check_amount(name, fixed, fixed != 0, err, errlen);
}

int mt_res_check_frac(const char *name, int64_t fixed, char *err, size_t errlen)
{
    int rc = mt_res_check_name(name, err, errlen);
    return rc ? rc : check_range(name, fixed, fixed != 0, err, errlen);
}

/* ---------------------------------------------------------------- JSON reader */

typedef struct jp {
    const char *start, *p, *end;
    char *err;
    size_t errlen;
} jp;

/* A number's text: integer and fraction digits, and the decimal exponent. */
typedef struct jnum {
    const char *ip, *fp;
    size_t ilen, flen;
    int64_t exp;
    bool neg;
} jnum;

static int jp_fail(jp *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int jp_fail(jp *j, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(j->err, j->errlen, "resources JSON at byte %zu: %s", (size_t)(j->p - j->start),
                msg);
}

/* What sits at the cursor, for messages. */
static const char *jp_what(const jp *j, char *buf, size_t cap)
{
    if (j->p >= j->end) return "end of input";
    unsigned char c = (unsigned char)*j->p;
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, cap, "'%c'", c);
    else
        snprintf(buf, cap, "byte 0x%02x", c);
    return buf;
}

static void jp_ws(jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static bool jp_peek(const jp *j, char c)
{
    return j->p < j->end && *j->p == c;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Four hex digits at p (before q) into *cp; -1 if not there. */
static int hex4(const char *p, const char *q, uint32_t *cp)
{
    if (q - p < 4) return -1;
    *cp = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = is_digit(c)            ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        *cp = *cp << 4 | (uint32_t)d;
    }
    return 0;
}

static size_t utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decode the \u escape at *rp (string ends at q), surrogate pairs included,
 * appending UTF-8 to out at *n: at most as many bytes as the escape's text. */
static int jp_unicode(jp *j, const char **rp, const char *q, char *out, size_t *n)
{
    const char *r = *rp;
    uint32_t cp, lo;
    j->p = r;
    if (hex4(r + 2, q, &cp)) return jp_fail(j, "bad \\u escape: expected 4 hex digits");
    r += 6;
    if (cp >= 0xdc00 && cp <= 0xdfff) return jp_fail(j, "unpaired UTF-16 surrogate in \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (q - r < 6 || r[0] != '\\' || r[1] != 'u' || hex4(r + 2, q, &lo) || lo < 0xdc00 ||
            lo > 0xdfff)
            return jp_fail(j, "unpaired UTF-16 surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        r += 6;
    }
    if (cp == 0) return jp_fail(j, "\\u0000 is not allowed in a resource name");
    *n += utf8_put(out + *n, cp);
    *rp = r;
    return 0;
}

/* Decode the string body [r, q) into out (room for q - r + 1 bytes). */
static int jp_unescape(jp *j, const char *r, const char *q, char *out)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    size_t n = 0;
    while (r < q) {
        unsigned char c = (unsigned char)*r;
        const char *hit;
        if (c < 0x20) {
            j->p = r;
            return jp_fail(j, "raw control character (byte 0x%02x) in a string", c);
        }
        if (c != '\\') {
            out[n++] = (char)c;
            r++;
        } else if (r[1] != '\0' && (hit = strchr(from, r[1])) != NULL) {
            out[n++] = to[hit - from];
            r += 2;
        } else if (r[1] == 'u') {
            int rc = jp_unicode(j, &r, q, out, &n);
            if (rc) return rc;
        } else {
            j->p = r;
            return jp_fail(j, "bad escape in a string");
        }
    }
    out[n] = '\0';
    return 0;
}

/* A resource name at the cursor (a '"'); *out gets a checked, owned copy. */
static int jp_name(jp *j, char **out)
{
    const char *open = j->p, *q = j->p + 1;
    char msg[256];
    /* A backslash always has a next byte before the closing quote, so the
     * decoder below may read r[1] without bounds checks. */
    while (q < j->end && *q != '"')
        q += *q == '\\' ? 2 : 1;
    if (q >= j->end) return jp_fail(j, "unterminated string");
    if ((size_t)(q - open - 1) > 6 * (size_t)MT_RES_NAME_MAX)
        return jp_fail(j, "resource name longer than %d bytes", MT_RES_NAME_MAX);
    char *s = mt_malloc((size_t)(q - open));
    int rc = jp_unescape(j, open + 1, q, s);
    if (rc == 0 && mt_res_check_name(s, msg, sizeof msg) != 0) {
        j->p = open;
        rc = jp_fail(j, "%s", msg);
    }
    if (rc) {
        free(s);
        return rc;
    }
    j->p = q + 1;
    *out = s;
    return 0;
}

/* Check RFC 8259 number syntax at the cursor and record its parts. */
static int jp_number_scan(jp *j, jnum *m)
{
    const char *p = j->p, *e = j->end;
    memset(m, 0, sizeof *m);
    if (p < e && *p == '-') m->neg = true, p++;
    m->ip = p;
    if (p < e && *p == '0')
        p++;
    else if (p < e && is_digit(*p))
        while (p < e && is_digit(*p))
            p++;
    else
        return jp_fail(j, "bad number: expected a digit");
    m->ilen = (size_t)(p - m->ip);
    if (p < e && *p == '.') {
        m->fp = ++p;
        while (p < e && is_digit(*p))
            p++;
        m->flen = (size_t)(p - m->fp);
        if (m->flen == 0) return jp_fail(j, "bad number: no digits after '.'");
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        bool eneg = false;
        p++;
        if (p < e && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (!(p < e && is_digit(*p))) return jp_fail(j, "bad number: no digits in the exponent");
        for (; p < e && is_digit(*p); p++)
            if (m->exp < 1000000000) m->exp = m->exp * 10 + (*p - '0');
        if (eneg) m->exp = -m->exp;
    }
    j->p = p;
    return 0;
}

static int jnum_digit(const jnum *m, size_t i)
{
    return (i < m->ilen ? m->ip[i] : m->fp[i - m->ilen]) - '0';
}

/* The number times MT_RES_UNIT rounded half up, computed exactly from its
 * decimal digits.  False when that exceeds `limit`. */
static bool jnum_fixed(const jnum *m, uint64_t limit, uint64_t *out, bool *nonzero)
{
    size_t len = m->ilen + m->flen, lead = 0;
    while (lead < len && jnum_digit(m, lead) == 0)
        lead++;
    *out = 0;
    *nonzero = lead < len;
    if (!*nonzero) return true;
    /* value * UNIT = D * 10^k for the significant digits D; `keep` of them
     * stand before the decimal point of the scaled value. */
    int64_t nd = (int64_t)(len - lead), k = m->exp - (int64_t)m->flen + 4, keep = nd + k;
    if (keep > 19) return false; /* >= 1e19, beyond any limit */
    uint64_t v = 0;
    for (int64_t i = 0; i < keep; i++)
        v = v * 10 + (uint64_t)(i < nd ? jnum_digit(m, lead + i) : 0);
    if (keep >= 0 && keep < nd && jnum_digit(m, lead + keep) >= 5) v++;
    *out = v;
    return v <= limit;
}

static int jp_amount(jp *j, const char *name, int64_t *fixed)
{
    const char *at = j->p;
    char msg[256];
    uint64_t v;
    bool nonzero, fits;
    jnum m;
    int rc = jp_number_scan(j, &m);
    if (rc) return rc;
    fits = jnum_fixed(&m, (uint64_t)res_limit(name) * MT_RES_UNIT, &v, &nonzero);
    const char *after = j->p;
    j->p = at;
    if (m.neg && nonzero) return jp_fail(j, "amount of resource '%.64s' is negative", name);
    if (!fits)
        return jp_fail(j, "amount of resource '%.64s' is above the maximum of %" PRId64, name,
                       res_limit(name));
    if (check_amount(name, (int64_t)v, nonzero, msg, sizeof msg)) return jp_fail(j, "%s", msg);
    j->p = after;
    *fixed = (int64_t)v;
    return 0;
}

static int jp_value(jp *j, const char *name, int64_t *fixed)
{
    char what[16];
    if (j->p < j->end && (*j->p == '-' || is_digit(*j->p))) return jp_amount(j, name, fixed);
    if (jp_peek(j, '{') || jp_peek(j, '['))
        return jp_fail(j, "nested %s for resource '%.64s': amounts must be numbers",
                       *j->p == '{' ? "object" : "array", name);
    if (jp_peek(j, '"'))
        return jp_fail(j, "string for resource '%.64s': amounts must be numbers", name);
    return jp_fail(j, "expected a number for resource '%.64s', got %s", name,
                   jp_what(j, what, sizeof what));
}

/* "name": number, added to s (zeros included, so duplicates are seen). */
static int jp_member(jp *j, mt_res_set *s)
{
    const char *at = j->p;
    char what[16], *name = NULL;
    uint32_t pos;
    int64_t fixed = 0;
    int rc;
    if (!jp_peek(j, '"'))
        return jp_fail(j, "expected a resource name in quotes, got %s",
                       jp_what(j, what, sizeof what));
    if ((rc = jp_name(j, &name)) != 0) return rc;
    if (res_find(s, name, &pos)) {
        j->p = at;
        rc = jp_fail(j, "duplicate resource '%.64s'", name);
    } else if (s->n >= MT_RES_JSON_MAX_ENTRIES) {
        j->p = at;
        rc = jp_fail(j, "more than %d resources", MT_RES_JSON_MAX_ENTRIES);
    } else {
        jp_ws(j);
        if (!jp_peek(j, ':'))
            rc = jp_fail(j, "expected ':' after resource name, got %s",
                         jp_what(j, what, sizeof what));
    }
    if (rc == 0) {
        j->p++;
        jp_ws(j);
        rc = jp_value(j, name, &fixed);
    }
    if (rc) {
        free(name);
        return rc;
    }
    res_insert(s, pos, name, fixed);
    return 0;
}

static int jp_object(jp *j, mt_res_set *s)
{
    char what[16];
    jp_ws(j);
    if (!jp_peek(j, '{'))
        return jp_fail(j, "expected '{' to start an object, got %s", jp_what(j, what, sizeof what));
    j->p++;
    jp_ws(j);
    if (jp_peek(j, '}')) {
        j->p++;
        return 0;
    }
    for (;;) {
        int rc = jp_member(j, s);
        if (rc) return rc;
        jp_ws(j);
        if (jp_peek(j, '}')) {
            j->p++;
            return 0;
        }
        if (!jp_peek(j, ','))
            return jp_fail(j, "expected ',' or '}', got %s", jp_what(j, what, sizeof what));
        j->p++;
        jp_ws(j);
    }
}

int mt_res_parse_json_n(const char *json, size_t len, mt_res_set *out, char *err, size_t errlen)
{
    char what[16];
    if (!json) return fail(err, errlen, "resources JSON is missing");
    jp j = {json, json, json + len, err, errlen};
    mt_res_set tmp;
    mt_res_init(&tmp);
    int rc = jp_object(&j, &tmp);
    if (rc == 0) {
        jp_ws(&j);
        if (j.p != j.end)
            rc = jp_fail(&j, "unexpected %s after the object", jp_what(&j, what, sizeof what));
    }
    if (rc) {
        mt_res_free(&tmp);
        return rc;
    }
    res_drop_zeros(&tmp);
    mt_res_free(out);
    *out = tmp;
    return 0;
}

int mt_res_parse_json(const char *json, mt_res_set *out, char *err, size_t errlen)
{
    return mt_res_parse_json_n(json, json ? strlen(json) : 0, out, err, errlen);
}

/* ---------------------------------------------------------------- JSON writer */

static void json_name(mt_buf *b, const char *name)
{
    buf_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        char e[8];
        if (*p == '"' || *p == '\\') {
            e[0] = '\\';
            e[1] = (char)*p;
            mt_buf_append(b, e, 2);
        } else if (*p < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", *p);
            mt_buf_append(b, e, 6);
        } else {
            mt_buf_append(b, p, 1);
        }
    }
    buf_str(b, "\"");
}

char *mt_res_to_json(const mt_res_set *s)
{
    mt_buf b;
    mt_buf_init(&b);
    buf_str(&b, "{");
    for (uint32_t i = 0; i < s->n; i++) {
        char num[32];
        if (i) buf_str(&b, ", ");
        json_name(&b, s->v[i].name);
        fmt_fixed(s->v[i].amount, num, sizeof num);
        buf_str(&b, ": ");
        buf_str(&b, num);
    }
    buf_str(&b, "}");
    return buf_finish(&b);
}

/* ---------------------------------------------------------------- GPU ids */

struct mt_res_gpu_pool {
    int n;
    int64_t *used; /* per GPU, 0..MT_RES_UNIT */
};

mt_res_gpu_pool *mt_res_gpu_pool_new(int ngpus)
{
    mt_assert(ngpus >= 0);
    mt_res_gpu_pool *g = mt_malloc(sizeof *g);
    g->n = ngpus;
    g->used = mt_calloc((size_t)ngpus, sizeof *g->used);
    return g;
}

void mt_res_gpu_pool_free(mt_res_gpu_pool *g)
{
    if (!g) return;
    free(g->used);
    free(g);
}

int mt_res_gpu_pool_size(const mt_res_gpu_pool *g)
{
    return g->n;
}

int64_t mt_res_gpu_pool_used(const mt_res_gpu_pool *g, int32_t id)
{
    return id >= 0 && id < g->n ? g->used[id] : 0;
}

static int gpu_take_whole(mt_res_gpu_pool *g, int64_t count, int32_t *ids, size_t *n)
{
    int64_t nfree = 0;
    for (int i = 0; i < g->n; i++)
        nfree += g->used[i] == 0;
    if (nfree < count)
        return mt_err(MANTA_ENOMEM, "%" PRId64 " whole GPUs wanted, %" PRId64 " free", count,
                      nfree);
    for (int i = 0; i < g->n && (int64_t)*n < count; i++) {
        if (g->used[i] != 0) continue;
        g->used[i] = MT_RES_UNIT;
        ids[(*n)++] = i;
    }
    return 0;
}

/* Pack fractional users: the fullest GPU that still has room. */
static int gpu_take_share(mt_res_gpu_pool *g, int64_t amount, int32_t *ids, size_t *n)
{
    int best = -1;
    for (int i = 0; i < g->n; i++)
        if (g->used[i] + amount <= MT_RES_UNIT && (best < 0 || g->used[i] > g->used[best]))
            best = i;
    if (best < 0) {
        char txt[32];
        fmt_fixed(amount, txt, sizeof txt);
        return mt_err(MANTA_ENOMEM, "no GPU has %s of its capacity free", txt);
    }
    g->used[best] += amount;
    ids[0] = best;
    *n = 1;
    return 0;
}

int mt_res_gpu_acquire(mt_res_gpu_pool *g, int64_t amount, int32_t *ids, size_t cap, size_t *n)
{
    *n = 0;
    if (amount == 0) return 0;
    if (amount < 0) return mt_err(MANTA_EINVAL, "negative GPU amount");
    if (amount > MT_RES_UNIT && amount % MT_RES_UNIT != 0)
        return mt_err(MANTA_EINVAL, "GPU amounts above 1 must be whole numbers");
    int64_t count = amount >= MT_RES_UNIT ? amount / MT_RES_UNIT : 1;
    if ((uint64_t)count > cap)
        return mt_err(MANTA_EINVAL, "room for %zu GPU ids, %" PRId64 " needed", cap, count);
    if (amount < MT_RES_UNIT) return gpu_take_share(g, amount, ids, n);
    return gpu_take_whole(g, count, ids, n);
}

void mt_res_gpu_release(mt_res_gpu_pool *g, int64_t amount, const int32_t *ids, size_t n)
{
    mt_assert(amount >= 0);
    if (amount == 0) {
        mt_assert(n == 0);
        return;
    }
    int64_t share = amount < MT_RES_UNIT ? amount : MT_RES_UNIT;
    if (amount < MT_RES_UNIT)
        mt_assert(n == 1);
    else
        mt_assert(amount % MT_RES_UNIT == 0 && (uint64_t)(amount / MT_RES_UNIT) == n);
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        mt_assert(id >= 0 && id < g->n && g->used[id] >= share);
        g->used[id] -= share;
    }
}
