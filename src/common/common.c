/* common.c -- the small helpers every component uses: allocation, logging,
 * per-thread error detail, time, ids in hex, randomness. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- memory */

static _Noreturn void oom(size_t n)
{
    char msg[96];
    int len = snprintf(msg, sizeof msg, "manta: out of memory allocating %zu bytes\n", n);
    if (len > 0 && write(2, msg, (size_t)len) < 0) {
    }
    abort();
}

void *mt_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *mt_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *mt_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *mt_strdup(const char *s) { return mt_memdup(s, strlen(s) + 1); }

char *mt_strndup(const char *s, size_t n)
{
    char *r = mt_malloc(n + 1);
    memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

void *mt_memdup(const void *p, size_t n)
{
    void *r = mt_malloc(n);
    if (n) memcpy(r, p, n);
    return r;
}

void mt_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "manta: assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}

/* ---------------------------------------------------------------- logging */

static int log_fd = 2;
static int log_level = MT_LOG_INFO;
static char log_component[32] = "manta";

void mt_log_init(const char *component, int fd)
{
    snprintf(log_component, sizeof log_component, "%s", component);
    log_fd = fd;
}

void mt_log_set_level(int level) { log_level = level; }
int mt_log_level(void) { return log_level; }

void mt_log_at(int level, const char *file, int line, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char buf[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int n = snprintf(buf, sizeof buf, "[%02d:%02d:%02d.%03ld %s %d %s %s:%d] ", tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_component, (int)getpid(),
                     names[level < 0 ? 0 : level > 3 ? 3 : level], base, line);
    va_list ap;
    va_start(ap, fmt);
    if (n < (int)sizeof buf) n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof buf - 1) n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    if (write(log_fd, buf, (size_t)n) < 0) {
    }
}

/* ---------------------------------------------------------------- errors */

static _Thread_local char last_error[512];

int mt_err(int err, const char *fmt, ...)
{
    /* Format aside first: callers wrap the previous error, passing
     * manta_last_error() itself as an argument. */
    char text[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(last_error, text, sizeof last_error);
    return err;
}

void mt_err_clear(void) { last_error[0] = '\0'; }

int mt_err_sys(const char *what)
{
    int e = errno;
    return mt_err(MANTA_ESYS, "%s: %s", what, strerror(e));
}

const char *manta_last_error(void) { return last_error; }

const char *manta_strerror(int err)
{
    switch (err) {
    case 0: return "success";
#define MT_ERR_TEXT_(name, val, text)                                                              \
    case val: return text;
        MANTA_ERRNO_MAP(MT_ERR_TEXT_)
#undef MT_ERR_TEXT_
    }
    return "unknown error";
}

const char *manta_err_name(int err)
{
    switch (err) {
    case 0: return "MANTA_OK";
#define MT_ERR_NAME_(name, val, text)                                                              \
    case val: return "MANTA_" #name;
        MANTA_ERRNO_MAP(MT_ERR_NAME_)
#undef MT_ERR_NAME_
    }
    return "MANTA_EUNKNOWN";
}

/* ---------------------------------------------------------------- time */

uint64_t mt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

double mt_now_s(void) { return (double)mt_now_ns() / 1e9; }

double mt_now_coarse(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double mt_wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- misc */

bool mt_token_eq(const char *token, const uint8_t *data, size_t len)
{
    size_t want = strlen(token);
    if (len != want) return false;
    unsigned diff = 0;
    for (size_t i = 0; i < want; i++) diff |= (unsigned)(data[i] ^ (uint8_t)token[i]);
    return diff == 0;
}

void mt_random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            /* getrandom cannot fail on Linux >= 3.17 once the pool is ready. */
            mt_assert(!"getrandom failed");
        }
        p += r;
        n -= (size_t)r;
    }
}

char *mt_hex(const void *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = bytes;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int mt_unhex(const char *hex, void *out, size_t n)
{
    uint8_t *o = out;
    if (strlen(hex) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        o[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
