/* layout.h -- the session directory's layout, in one place: the name of
 * every file in it, how session directories are named and found, and the
 * reading and writing of its info, pid and token files.  The daemon, the C
 * API and the Python package (through _manta) all use it; nothing else
 * builds a session path or parses these files. */
#ifndef MT_LAYOUT_H
#define MT_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ids.h"

/* The paths inside a session directory: X(id, path, key), `key` being the
 * name _manta.session_paths() gives it in Python. */
#define MT_LAYOUT_FILES(X)                                                                         \
    X(MT_LAYOUT_SOCKET, "daemon.sock", "socket")           /* the daemon's unix socket */          \
    X(MT_LAYOUT_WORKERS_DIR, "w", "workers_dir")           /* w/<worker id>: workers' sockets */   \
    X(MT_LAYOUT_DAEMON_PID, "daemon.pid", "daemon_pid")    /* pid file: the daemon */              \
    X(MT_LAYOUT_WORKERS_PID, "workers.pid", "workers_pid") /* pid file: zygote, live workers */    \
    X(MT_LAYOUT_ZYGOTE_PID, "zygote.pid", "zygote_pid")    /* "<pid>\n" of the zygote, 0: none */  \
    X(MT_LAYOUT_TOKEN, "token", "token")                   /* the cluster token, 64 hex digits */  \
    X(MT_LAYOUT_INFO, "info", "info")                      /* key=value lines: mt_layout_info */   \
    X(MT_LAYOUT_LOGS, "logs", "logs")                      /* the log folder */                    \
    X(MT_LAYOUT_LOG, "logs/mantad.log", "log")             /* the daemon's log */                  \
    X(MT_LAYOUT_OUT, "logs/mantad.out", "out")             /* a detached daemon's stdout/stderr */

typedef enum mt_layout_file {
#define MT_LAYOUT_ENUM(id, path, key) id,
    MT_LAYOUT_FILES(MT_LAYOUT_ENUM)
#undef MT_LAYOUT_ENUM
    MT_LAYOUT_NFILES
} mt_layout_file;

/* The longest path the layout builds (PATH_MAX). */
#define MT_LAYOUT_PATH_MAX 4096

/* Every session directory's name starts with this, directly inside the
 * session root; the root's `latest` link names the newest. */
#define MT_LAYOUT_SESSION_PREFIX "s-"
#define MT_LAYOUT_LATEST "latest"

/* ---------------------------------------------------------------- paths
 * Each returns 0, or MANTA_EINVAL (reason in manta_last_error()) if the
 * path does not fit in `cap`. */

/* `f`'s path relative to a session directory ("daemon.sock"), and its
 * Python key ("socket"); NULL for an `f` out of range. */
const char *mt_layout_name(mt_layout_file f);
const char *mt_layout_key(mt_layout_file f);

/* `session`/<f's name>. */
int mt_layout_path(const char *session, mt_layout_file f, char *out, size_t cap);

/* `session`/w/<worker id in hex>: where a driver or worker listens. */
int mt_layout_worker_socket(const char *session, const char *worker_hex, char *out, size_t cap);

/* The session directory a daemon socket (`session`/daemon.sock) sits in. */
int mt_layout_session_of(const char *socket, char *out, size_t cap);

/* A new session directory's path under `root` (not created):
 * `root`/s-<local time>-<pid>-<n>, n counting this process's sessions. */
int mt_layout_new_session(const char *root, char *out, size_t cap);

/* `root`/start-<pid>.out: where `manta start` keeps what a daemon says
 * while it starts, before its session's logs take it (MT_LAYOUT_OUT). */
int mt_layout_start_output(const char *root, char *out, size_t cap);

/* Whether `name` (a directory entry of the root) names a session. */
bool mt_layout_is_session(const char *name);

/* Call `fn`(session directory path, arg) for every entry of `root` named
 * like a session (not checked further: see priv.h), stopping at the first
 * nonzero return, which is returned.  0 if `root` cannot be read. */
int mt_layout_each_session(const char *root, int (*fn)(const char *dir, void *arg), void *arg);

/* `root`/latest. */
int mt_layout_latest_path(const char *root, char *out, size_t cap);

/* Point `root`/latest at `session`, replacing any old link atomically. */
int mt_layout_latest_set(const char *root, const char *session);

/* Remove `root`/latest if it names `session` (absolute, or its name alone),
 * or, with `session` NULL, if it names nothing that exists. */
void mt_layout_latest_drop(const char *root, const char *session);

/* ---------------------------------------------------------------- files */

/* Write `len` bytes to `session`/<f> with `mode`, atomically (a temporary
 * file renamed over it): a reader sees the old or the new file, whole. */
int mt_layout_write(const char *session, mt_layout_file f, const char *text, size_t len,
                    mode_t mode);

/* What a daemon records about itself in `session`/info once it is up.
 * Readers decide from it whether the daemon still runs (its pid, start
 * time and program: priv.h) and how to reach it. */
typedef struct mt_layout_info {
    char node_id[2 * MT_NODE_ID_LEN + 1]; /* hex, at most 32 digits */
    char socket[MT_LAYOUT_PATH_MAX];      /* its unix socket */
    char host[256];                       /* the host it listens on / tells others */
    int port;                             /* its TCP port; -1: none */
    bool head;                            /* whether it is a cluster's head */
    pid_t pid;                            /* the daemon's pid (> 1) ... */
    int64_t start;                        /* ... its start time (priv.h) ... */
    char exe[MT_LAYOUT_PATH_MAX];         /* ... and its program */
} mt_layout_info;

/* `session`/info, written atomically, mode 0600. */
int mt_layout_info_write(const char *session, const mt_layout_info *info);

/* Parse an info file's text: "key=value" lines, every key of
 * mt_layout_info present once, each value in range (a number in its
 * type's range, a string that fits), unknown keys ignored.  MANTA_EINVAL
 * naming the key or line that is wrong. */
int mt_layout_info_parse(const char *text, size_t len, mt_layout_info *out);

/* Read and parse `session`/info: MANTA_ENOENT if there is none, else as
 * mt_layout_info_parse (an info file over 64 KiB is refused). */
int mt_layout_info_read(const char *session, mt_layout_info *out);

/* One line of a pid file: a process named by its pid and start time. */
typedef struct mt_layout_pid {
    pid_t pid;
    int64_t start;
} mt_layout_pid;

/* Write `n` "<pid> <start>\n" lines to `session`/<f>, atomically, 0600. */
int mt_layout_pids_write(const char *session, mt_layout_file f, const mt_layout_pid *pids,
                         size_t n);

/* The entries of a pid file's text, in order, into a malloc'ed array
 * (*out, *n; free it).  A line that is not exactly "<pid> <start>" with
 * 1 < pid <= INT32_MAX and 0 <= start < 2^63 is skipped: a process cannot
 * be told ours without its start time.  Never fails. */
void mt_layout_pids_parse(const char *text, size_t len, mt_layout_pid **out, size_t *n);

/* Read and parse the pid file `path`: MANTA_ENOENT if there is none;
 * MANTA_EINVAL if it is over 16 MiB. */
int mt_layout_pids_read(const char *path, mt_layout_pid **out, size_t *n);

/* `session`/token: 64 hex digits, 0600. */
int mt_layout_token_write(const char *session, const char *token);
/* The token into `out` (65 bytes): MANTA_ENOENT if there is none,
 * MANTA_EINVAL if it is not 64 hex digits (a final newline allowed). */
int mt_layout_token_read(const char *session, char out[65]);

#endif
