/* session.c -- the session directory of a node: sockets, pid files, the
 * cluster token, logs; and cleanup of sessions whose daemon is gone. */
#include <dirent.h>
#include <stdbool.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "mt.h"
#include "node.h"
#include "priv.h"

/* mkdir `session`/<f>, mode 0700, if it is not there yet. */
static int make_dir(const char *session, mt_layout_file f)
{
    char path[MT_LAYOUT_PATH_MAX];
    int rc = mt_layout_path(session, f, path, sizeof path);
    if (rc) return rc;
    if (mkdir(path, 0700) < 0 && errno != EEXIST) return mt_err_sys(path);
    return 0;
}

int mt_session_create(mt_node *n, const char *dir)
{
    char sock[MT_LAYOUT_PATH_MAX];
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) return mt_err_sys(dir);
    /* A directory already there is used only if it is ours (never chmod
     * another user's), and then only once private. */
    struct stat st;
    if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid()) chmod(dir, 0700);
    int rc = mt_priv_check_dir(dir);
    if (!rc) rc = make_dir(dir, MT_LAYOUT_WORKERS_DIR);
    if (!rc) rc = make_dir(dir, MT_LAYOUT_LOGS);
    if (!rc) rc = mt_layout_path(dir, MT_LAYOUT_SOCKET, sock, sizeof sock);
    if (rc) return rc;
    n->session_dir = mt_strdup(dir);
    n->sock_path = mt_strdup(sock);
    /* The cluster token: 32 random bytes in hex, readable by the user only. */
    uint8_t raw[32];
    mt_random_bytes(raw, sizeof raw);
    mt_hex(raw, sizeof raw, n->token);
    rc = mt_layout_token_write(dir, n->token);
    if (rc) return rc;
    mt_layout_pid self = {getpid(), mt_proc_start_time(getpid())};
    return mt_layout_pids_write(dir, MT_LAYOUT_DAEMON_PID, &self, 1);
}

void mt_session_set_token(mt_node *n, const char *token)
{
    snprintf(n->token, sizeof n->token, "%s", token);
    mt_layout_token_write(n->session_dir, n->token);
}

/* A worker's start time, read once: with its pid it names the process for
 * good, so a cleanup never signals a pid reused by someone else. */
static int64_t start_of(pid_t pid, int64_t *cached)
{
    if (*cached <= 0) *cached = mt_proc_start_time(pid);
    return *cached;
}

void mt_session_write_pids(mt_node *n)
{
    if (!n->session_dir || n->stopping) return;
    size_t cap = 16, len = 0;
    mt_layout_pid *pids = mt_malloc(cap * sizeof *pids);
    /* The workers and the zygote that forks them (pool.c). */
    if (n->zyg.running) pids[len++] = (mt_layout_pid){n->zyg.pid, start_of(n->zyg.pid, &n->zyg.start)};
    for (mt_worker *w = n->worker_list; w; w = w->next) {
        if (w->state == MT_W_DEAD || w->pid <= 0) continue;
        if (len == cap) pids = mt_realloc(pids, (cap *= 2) * sizeof *pids);
        pids[len++] = (mt_layout_pid){w->pid, start_of(w->pid, &w->start)};
    }
    mt_layout_pids_write(n->session_dir, MT_LAYOUT_WORKERS_PID, pids, len);
    free(pids);
    char zp[32];
    int zl = snprintf(zp, sizeof zp, "%d\n", n->zyg.running ? (int)n->zyg.pid : 0);
    mt_layout_write(n->session_dir, MT_LAYOUT_ZYGOTE_PID, zp, (size_t)zl, 0600);
}

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(sub);
        else
            unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

/* The session root `session` sits in. */
static void root_of(const char *session, char *out, size_t cap)
{
    snprintf(out, cap, "%s", session);
    char *slash = strrchr(out, '/');
    if (slash && slash != out) *slash = '\0';
}

/* Remove the session, or only its sockets and pid files when the logs are
 * to be kept (MANTA_KEEP_SESSION=1). */
void mt_session_remove(mt_node *n)
{
    if (!n->session_dir) return;
    const char *keep = getenv("MANTA_KEEP_SESSION");
    if (keep && !strcmp(keep, "1")) {
        char p[MT_LAYOUT_PATH_MAX];
        const mt_layout_file files[] = {MT_LAYOUT_SOCKET, MT_LAYOUT_DAEMON_PID,
                                        MT_LAYOUT_WORKERS_PID, MT_LAYOUT_TOKEN};
        for (size_t i = 0; i < MT_ARRAY_LEN(files); i++)
            if (!mt_layout_path(n->session_dir, files[i], p, sizeof p)) unlink(p);
        if (!mt_layout_path(n->session_dir, MT_LAYOUT_WORKERS_DIR, p, sizeof p)) rm_tree(p);
    } else {
        rm_tree(n->session_dir);
    }
    /* Drop the "latest" link if it points at us. */
    char root[MT_LAYOUT_PATH_MAX];
    root_of(n->session_dir, root, sizeof root);
    mt_layout_latest_drop(root, n->session_dir);
}

/* Whether the daemon recorded in `dir`/daemon.pid still runs. */
static bool daemon_running(const char *dir)
{
    char p[MT_LAYOUT_PATH_MAX];
    mt_layout_pid *pids;
    size_t n;
    if (mt_layout_path(dir, MT_LAYOUT_DAEMON_PID, p, sizeof p) || mt_layout_pids_read(p, &pids, &n))
        return false;
    bool runs = n > 0 && mt_proc_is(pids[0].pid, pids[0].start, NULL, NULL);
    free(pids);
    return runs;
}

/* A session whose daemon is dead is a leftover of a crash: kill any worker
 * it recorded (only if still that process, in that session) and remove
 * it.  Only directories private to this user are touched. */
static int reap_if_stale(const char *dir, void *unused)
{
    char p[MT_LAYOUT_PATH_MAX];
    if (mt_priv_check_dir(dir) || mt_layout_path(dir, MT_LAYOUT_DAEMON_PID, p, sizeof p)) return 0;
    if (access(p, F_OK) == 0) {
        if (daemon_running(dir)) return 0;
    } else {
        /* No pid file: a session being created right now, or junk. Only
         * remove it once it is old. */
        struct stat st;
        if (stat(dir, &st) < 0 || st.st_mtime > time(NULL) - 60) return 0;
    }
    if (!mt_layout_path(dir, MT_LAYOUT_WORKERS_PID, p, sizeof p))
        mt_proc_signal_listed(p, NULL, dir, SIGKILL);
    rm_tree(dir);
    return 0;
}

void mt_session_reap_stale(const char *root)
{
    mt_layout_each_session(root, reap_if_stale, NULL);
}
