/* layout.c -- the session directory's layout: its paths, and the info, pid
 * and token files read and written in one place (see layout.h). */
#include "layout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checked.h"
#include "mt.h"

#define INFO_MAX (64 << 10)
#define PIDS_MAX (16 << 20)

static const char *const names[] = {
#define MT_LAYOUT_NAME(id, path, key) path,
    MT_LAYOUT_FILES(MT_LAYOUT_NAME)
#undef MT_LAYOUT_NAME
};

static const char *const keys[] = {
#define MT_LAYOUT_KEY(id, path, key) key,
    MT_LAYOUT_FILES(MT_LAYOUT_KEY)
#undef MT_LAYOUT_KEY
};

/* ---------------------------------------------------------------- paths */

/* snprintf that says so when the result does not fit. */
static int fit(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fit(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= cap)
        return mt_err(MANTA_EINVAL, "session path too long (over %zu bytes)", cap);
    return 0;
}

const char *mt_layout_name(mt_layout_file f)
{
    return (unsigned)f < MT_LAYOUT_NFILES ? names[f] : NULL;
}

const char *mt_layout_key(mt_layout_file f)
{
    return (unsigned)f < MT_LAYOUT_NFILES ? keys[f] : NULL;
}

int mt_layout_path(const char *session, mt_layout_file f, char *out, size_t cap)
{
    const char *name = mt_layout_name(f);
    if (!name) return mt_err(MANTA_EINVAL, "no session file %d", (int)f);
    return fit(out, cap, "%s/%s", session, name);
}

int mt_layout_worker_socket(const char *session, const char *worker_hex, char *out, size_t cap)
{
    return fit(out, cap, "%s/%s/%s", session, names[MT_LAYOUT_WORKERS_DIR], worker_hex);
}

int mt_layout_session_of(const char *socket, char *out, size_t cap)
{
    const char *slash = strrchr(socket, '/');
    if (!slash || strcmp(slash + 1, names[MT_LAYOUT_SOCKET]))
        return mt_err(MANTA_EINVAL, "%s is not a node's socket (<session>/%s)", socket,
                      names[MT_LAYOUT_SOCKET]);
    if (slash == socket) return fit(out, cap, "/");
    return fit(out, cap, "%.*s", (int)(slash - socket), socket);
}

int mt_layout_new_session(const char *root, char *out, size_t cap)
{
    static unsigned counter;
    unsigned n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    return fit(out, cap, "%s/" MT_LAYOUT_SESSION_PREFIX "%04d%02d%02d-%02d%02d%02d-%d-%u", root,
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
               (int)getpid(), n);
}

int mt_layout_start_output(const char *root, char *out, size_t cap)
{
    return fit(out, cap, "%s/start-%d.out", root, (int)getpid());
}

bool mt_layout_is_session(const char *name)
{
    size_t pl = strlen(MT_LAYOUT_SESSION_PREFIX);
    return !strncmp(name, MT_LAYOUT_SESSION_PREFIX, pl) && name[pl] && !strchr(name, '/') &&
           strcmp(name, ".") && strcmp(name, "..");
}

int mt_layout_each_session(const char *root, int (*fn)(const char *dir, void *arg), void *arg)
{
    DIR *d = opendir(root);
    if (!d) return 0;
    struct dirent *e;
    int rc = 0;
    char dir[MT_LAYOUT_PATH_MAX];
    while (!rc && (e = readdir(d))) {
        if (!mt_layout_is_session(e->d_name)) continue;
        if (fit(dir, sizeof dir, "%s/%s", root, e->d_name)) continue;
        rc = fn(dir, arg);
    }
    closedir(d);
    return rc;
}

int mt_layout_latest_path(const char *root, char *out, size_t cap)
{
    return fit(out, cap, "%s/" MT_LAYOUT_LATEST, root);
}

int mt_layout_latest_set(const char *root, const char *session)
{
    char link[MT_LAYOUT_PATH_MAX], tmp[MT_LAYOUT_PATH_MAX];
    int rc = mt_layout_latest_path(root, link, sizeof link);
    if (!rc) rc = fit(tmp, sizeof tmp, "%s.%d", link, (int)getpid());
    if (rc) return rc;
    unlink(tmp);
    if (symlink(session, tmp) < 0) return mt_err_sys(tmp);
    if (rename(tmp, link) < 0) {
        rc = mt_err_sys(link);
        unlink(tmp);
    }
    return rc;
}

void mt_layout_latest_drop(const char *root, const char *session)
{
    char link[MT_LAYOUT_PATH_MAX], target[MT_LAYOUT_PATH_MAX];
    if (mt_layout_latest_path(root, link, sizeof link)) return;
    ssize_t l = readlink(link, target, sizeof target - 1);
    if (l <= 0) return;
    target[l] = '\0';
    struct stat st;
    if (session == NULL) {
        if (stat(link, &st) < 0 && errno == ENOENT) unlink(link);
        return;
    }
    const char *slash = strrchr(session, '/');
    if (!strcmp(target, session) || (slash && !strcmp(target, slash + 1))) unlink(link);
}

/* ---------------------------------------------------------------- files */

int mt_layout_write(const char *session, mt_layout_file f, const char *text, size_t len,
                    mode_t mode)
{
    char path[MT_LAYOUT_PATH_MAX], tmp[MT_LAYOUT_PATH_MAX];
    int rc = mt_layout_path(session, f, path, sizeof path);
    if (!rc) rc = fit(tmp, sizeof tmp, "%s.tmp", path);
    if (rc) return rc;
    unlink(tmp); /* a leftover keeps its mode through O_CREAT: start anew */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return mt_err_sys(tmp);
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    close(fd);
    if (done != len || rename(tmp, path) < 0) {
        rc = mt_err_sys(path);
        unlink(tmp);
    }
    return rc;
}

/* The whole of a small file (at most `limit` bytes) into a malloc'ed,
 * NUL-terminated buffer.  MANTA_ENOENT if it does not exist. */
static int read_all(const char *path, size_t limit, char **text, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? mt_err(MANTA_ENOENT, "%s does not exist", path)
                                       : mt_err_sys(path);
    size_t cap = 4096, n = 0;
    char *buf = mt_malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap > limit) break;
            buf = mt_realloc(buf, (cap *= 2) + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (n > limit) {
        free(buf);
        return mt_err(MANTA_EINVAL, "%s is larger than %zu bytes: not a file manta wrote", path,
                      limit);
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

/* The line of `text` at *at (its length, without the newline, in *ll),
 * moving *at past it; NULL at the end.  A last line needs no newline. */
static const char *next_line(const char *text, size_t len, size_t *at, size_t *ll)
{
    if (*at >= len) return NULL;
    const char *line = text + *at;
    const char *nl = memchr(line, '\n', len - *at);
    *ll = nl ? (size_t)(nl - line) : len - *at;
    *at += *ll + 1;
    return line;
}

/* A decimal integer filling all of [s, s+len), within [lo, hi]. */
static bool parse_int(const char *s, size_t len, long long lo, long long hi, long long *out)
{
    char tmp[32];
    if (len == 0 || len >= sizeof tmp) return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (tmp[0] != '-' && (tmp[0] < '0' || tmp[0] > '9')) return false;
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

enum { K_STR, K_HEX, K_INT, K_BOOL, K_PID, K_I64 };

static const struct info_key {
    const char *name;
    int kind;
    size_t off, cap;   /* strings: where, how big */
    long long lo, hi;  /* numbers: the range */
} info_keys[] = {
#define STR(k, kind) {#k, kind, offsetof(mt_layout_info, k), sizeof(((mt_layout_info *)0)->k), 0, 0}
#define NUM(k, kind, lo, hi) {#k, kind, offsetof(mt_layout_info, k), 0, lo, hi}
    STR(node_id, K_HEX),          STR(socket, K_STR),
    STR(host, K_STR),             NUM(port, K_INT, -1, 65535),
    NUM(head, K_BOOL, 0, 1),      NUM(pid, K_PID, 2, INT32_MAX),
    NUM(start, K_I64, 0, INT64_MAX), STR(exe, K_STR),
#undef STR
#undef NUM
};

static int info_set(const struct info_key *k, const char *v, size_t vl, mt_layout_info *out)
{
    char *base = (char *)out;
    if (k->kind == K_STR || k->kind == K_HEX) {
        if (vl >= k->cap)
            return mt_err(MANTA_EINVAL, "info: %s is %zu bytes long, at most %zu allowed", k->name,
                          vl, k->cap - 1);
        for (size_t i = 0; k->kind == K_HEX && i < vl; i++)
            if (!strchr("0123456789abcdefABCDEF", v[i]) || !v[i])
                return mt_err(MANTA_EINVAL, "info: %s must be hex digits", k->name);
        memcpy(base + k->off, v, vl);
        base[k->off + vl] = '\0';
        return 0;
    }
    long long x;
    if (!parse_int(v, vl, k->lo, k->hi, &x))
        return mt_err(MANTA_EINVAL, "info: %s=%.*s is not a number from %lld to %lld", k->name,
                      (int)(vl > 32 ? 32 : vl), v, k->lo, k->hi);
    void *at = base + k->off;
    switch (k->kind) {
    case K_INT: *(int *)at = (int)x; break;
    case K_BOOL: *(bool *)at = x == 1; break;
    case K_PID: *(pid_t *)at = (pid_t)x; break;
    default: *(int64_t *)at = (int64_t)x; break;
    }
    return 0;
}

int mt_layout_info_parse(const char *text, size_t len, mt_layout_info *out)
{
    memset(out, 0, sizeof *out);
    if (memchr(text, '\0', len)) return mt_err(MANTA_EINVAL, "info holds a NUL byte");
    unsigned seen = 0;
    size_t lineno = 0;
    size_t at = 0, ll;
    for (const char *line; (line = next_line(text, len, &at, &ll));) {
        lineno++;
        const char *eq = memchr(line, '=', ll);
        if (!eq) return mt_err(MANTA_EINVAL, "info: line %zu is not key=value", lineno);
        size_t kl = (size_t)(eq - line);
        for (size_t i = 0; i < MT_ARRAY_LEN(info_keys); i++) {
            const struct info_key *k = &info_keys[i];
            if (strlen(k->name) != kl || memcmp(k->name, line, kl)) continue;
            if (seen & (1u << i)) return mt_err(MANTA_EINVAL, "info: %s given twice", k->name);
            seen |= 1u << i;
            int rc = info_set(k, eq + 1, ll - kl - 1, out);
            if (rc) return rc;
        }
    }
    for (size_t i = 0; i < MT_ARRAY_LEN(info_keys); i++)
        if (!(seen & (1u << i))) return mt_err(MANTA_EINVAL, "info has no %s", info_keys[i].name);
    return 0;
}

int mt_layout_info_read(const char *session, mt_layout_info *out)
{
    char path[MT_LAYOUT_PATH_MAX], *text;
    size_t len;
    int rc = mt_layout_path(session, MT_LAYOUT_INFO, path, sizeof path);
    if (!rc) rc = read_all(path, INFO_MAX, &text, &len);
    if (rc) return rc;
    rc = mt_layout_info_parse(text, len, out);
    free(text);
    return rc;
}

int mt_layout_info_write(const char *session, const mt_layout_info *i)
{
    char text[3 * MT_LAYOUT_PATH_MAX];
    int len = snprintf(text, sizeof text,
                       "node_id=%s\nsocket=%s\nhost=%s\nport=%d\nhead=%d\npid=%d\nstart=%" PRId64
                       "\nexe=%s\n",
                       i->node_id, i->socket, i->host, i->port, i->head ? 1 : 0, (int)i->pid,
                       i->start, i->exe);
    if (len < 0 || (size_t)len >= sizeof text) return mt_err(MANTA_EINVAL, "info too long");
    return mt_layout_write(session, MT_LAYOUT_INFO, text, (size_t)len, 0600);
}

int mt_layout_pids_write(const char *session, mt_layout_file f, const mt_layout_pid *pids,
                         size_t n)
{
    enum { LINE = 32 }; /* "<int32> <int64>\n" */
    size_t cap;
    if (!mt_mul_size(n, LINE, &cap) || !mt_add_size(cap, 1, &cap))
        return mt_err(MANTA_EINVAL, "too many pids");
    char *text = mt_malloc(cap);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "%d %" PRId64 "\n", (int)pids[i].pid,
                                pids[i].start);
    int rc = mt_layout_write(session, f, text, len, 0600);
    free(text);
    return rc;
}

/* One "<pid> <start>" line; false if it is anything else. */
static bool pid_line(const char *s, size_t len, mt_layout_pid *out)
{
    const char *sp = memchr(s, ' ', len);
    long long pid, start;
    if (!sp || !parse_int(s, (size_t)(sp - s), 2, INT32_MAX, &pid) ||
        !parse_int(sp + 1, len - (size_t)(sp - s) - 1, 0, INT64_MAX, &start))
        return false;
    out->pid = (pid_t)pid;
    out->start = (int64_t)start;
    return true;
}

void mt_layout_pids_parse(const char *text, size_t len, mt_layout_pid **out, size_t *n)
{
    size_t cap = 8;
    *n = 0;
    *out = mt_malloc(cap * sizeof **out);
    size_t at = 0, ll;
    for (const char *line; (line = next_line(text, len, &at, &ll));) {
        mt_layout_pid p;
        if (!pid_line(line, ll, &p)) continue;
        if (*n == cap) *out = mt_realloc(*out, (cap *= 2) * sizeof **out);
        (*out)[(*n)++] = p;
    }
}

int mt_layout_pids_read(const char *path, mt_layout_pid **out, size_t *n)
{
    char *text;
    size_t len;
    int rc = read_all(path, PIDS_MAX, &text, &len);
    if (rc) return rc;
    mt_layout_pids_parse(text, len, out, n);
    free(text);
    return 0;
}

static bool is_token(const char *s, size_t len)
{
    if (len != 64) return false;
    for (size_t i = 0; i < len; i++)
        if (!s[i] || !strchr("0123456789abcdefABCDEF", s[i])) return false;
    return true;
}

int mt_layout_token_write(const char *session, const char *token)
{
    if (!is_token(token, strlen(token)))
        return mt_err(MANTA_EINVAL, "a cluster token is 64 hex digits");
    return mt_layout_write(session, MT_LAYOUT_TOKEN, token, 64, 0600);
}

int mt_layout_token_read(const char *session, char out[65])
{
    char path[MT_LAYOUT_PATH_MAX], *text;
    size_t len;
    int rc = mt_layout_path(session, MT_LAYOUT_TOKEN, path, sizeof path);
    if (!rc) rc = read_all(path, 256, &text, &len);
    if (rc) return rc;
    if (len && text[len - 1] == '\n') len--;
    if (is_token(text, len)) {
        memcpy(out, text, 64);
        out[64] = '\0';
    } else {
        rc = mt_err(MANTA_EINVAL, "%s does not hold a cluster token (64 hex digits)", path);
    }
    free(text);
    return rc;
}
