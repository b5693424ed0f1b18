/* mt.h -- shared base of every manta component: asserts, logging, time,
 * errors and small helpers.  Internal; users include <manta.h> only. */
#ifndef MT_H
#define MT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

#include "manta.h"

#define MT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MT_MAX(a, b) ((a) > (b) ? (a) : (b))
#define MT_ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((uint64_t)(a)-1))
#define MT_UNUSED(x) ((void)(x))
#define MT_LIKELY(x) __builtin_expect(!!(x), 1)
#define MT_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* A broken invariant: a bug in manta, never something a peer can cause. */
#define mt_assert(cond)                                                                            \
    do {                                                                                           \
        if (MT_UNLIKELY(!(cond))) mt_assert_fail(#cond, __FILE__, __LINE__);                       \
    } while (0)
_Noreturn void mt_assert_fail(const char *expr, const char *file, int line);

/* Allocation that cannot fail: out of memory aborts with a message.  manta
 * treats a failed small malloc like Redis does: the process cannot go on. */
void *mt_malloc(size_t n);
void *mt_calloc(size_t n, size_t size);
void *mt_realloc(void *p, size_t n);
char *mt_strdup(const char *s);
char *mt_strndup(const char *s, size_t n);
void *mt_memdup(const void *p, size_t n);

/* ---------------------------------------------------------------- logging */
enum { MT_LOG_DEBUG = 0, MT_LOG_INFO = 1, MT_LOG_WARN = 2, MT_LOG_ERROR = 3 };
void mt_log_init(const char *component, int fd);
void mt_log_set_level(int level);
int mt_log_level(void);
void mt_log_at(int level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define mt_log(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) >= mt_log_level()) mt_log_at((level), __FILE__, __LINE__, __VA_ARGS__);        \
    } while (0)
#define mt_debug(...) mt_log(MT_LOG_DEBUG, __VA_ARGS__)
#define mt_info(...) mt_log(MT_LOG_INFO, __VA_ARGS__)
#define mt_warn(...) mt_log(MT_LOG_WARN, __VA_ARGS__)
#define mt_error(...) mt_log(MT_LOG_ERROR, __VA_ARGS__)

/* ---------------------------------------------------------------- errors */
/* Record the detail of an error for manta_last_error() on this thread and
 * return `err` so callers can write `return mt_err(MANTA_EINVAL, "...")`. */
int mt_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mt_err_clear(void);
/* errno -> MANTA_ESYS with strerror detail. */
int mt_err_sys(const char *what);

/* ---------------------------------------------------------------- time */
uint64_t mt_now_ns(void);  /* monotonic */
double mt_now_s(void);     /* monotonic seconds */
double mt_now_coarse(void); /* monotonic seconds, ~4 ms resolution, cheaper */
double mt_wall_s(void);    /* wall clock seconds since the epoch */

/* ---------------------------------------------------------------- misc */
/* memcpy for large copies into shared memory (see copy.c). */
void mt_copy(void *dst, const void *src, size_t n);
void mt_random_bytes(void *buf, size_t n);
/* Whether `len` bytes at `data` (from a peer) are the cluster token `token`,
 * compared in time that does not depend on where they differ. */
bool mt_token_eq(const char *token, const uint8_t *data, size_t len);
/* Hex encode n bytes into out (2n+1 bytes). Returns out. */
char *mt_hex(const void *bytes, size_t n, char *out);
/* Hex decode; returns 0 or -1 on bad input. */
int mt_unhex(const char *hex, void *out, size_t n);
/* FNV-1a-ish 64-bit hash for binary keys. */
static inline uint64_t mt_hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = (const uint8_t *)p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

#endif /* MT_H */
