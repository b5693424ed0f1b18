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

#include "mt.h"
#include "node.h"
#include "priv.h"

static int write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return mt_err_sys(tmp);
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    close(fd);
    if (w != (ssize_t)len || rename(tmp, path) < 0) return mt_err_sys(path);
    return 0;
}

int mt_session_create(mt_node *n, const char *dir)
{
    char sub[4200];
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) return mt_err_sys(dir);
    /* A directory already there is used only if it is ours (never chmod
     * another user's), and then only once private. */
    struct stat st;
    if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid()) chmod(dir, 0700);
    int rc = mt_priv_check_dir(dir);
    if (rc) return rc;
    snprintf(sub, sizeof sub, "%s/w", dir);
    if (mkdir(sub, 0700) < 0 && errno != EEXIST) return mt_err_sys(sub);
    snprintf(sub, sizeof sub, "%s/logs", dir);
    if (mkdir(sub, 0700) < 0 && errno != EEXIST) return mt_err_sys(sub);
    n->session_dir = mt_strdup(dir);
    snprintf(sub, sizeof sub, "%s/daemon.sock", dir);
    n->sock_path = mt_strdup(sub);
    /* The cluster token: 32 random bytes in hex, readable by the user only. */
    uint8_t raw[32];
    mt_random_bytes(raw, sizeof raw);
    mt_hex(raw, sizeof raw, n->token);
    rc = write_file(dir, "token", n->token, 0600);
    if (rc) return rc;
    char pid[64];
    mt_proc_line(getpid(), mt_proc_start_time(getpid()), pid, sizeof pid);
    return write_file(dir, "daemon.pid", pid, 0600);
}

void mt_session_set_token(mt_node *n, const char *token)
{
    snprintf(n->token, sizeof n->token, "%s", token);
    write_file(n->session_dir, "token", n->token, 0600);
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
    size_t cap = 4096, len = 0;
    char *text = mt_malloc(cap);
    text[0] = '\0';
    /* The workers and the zygote that forks them (pool.c). */
    if (n->zyg.running)
        len += (size_t)mt_proc_line(n->zyg.pid, start_of(n->zyg.pid, &n->zyg.start), text, cap);
    for (mt_worker *w = n->worker_list; w; w = w->next) {
        if (w->state == MT_W_DEAD || w->pid <= 0) continue;
        if (cap - len < 64) text = mt_realloc(text, cap *= 2);
        len += (size_t)mt_proc_line(w->pid, start_of(w->pid, &w->start), text + len, cap - len);
    }
    write_file(n->session_dir, "workers.pid", text, 0600);
    char zp[32];
    snprintf(zp, sizeof zp, "%d\n", n->zyg.running ? (int)n->zyg.pid : 0);
    write_file(n->session_dir, "zygote.pid", zp, 0600);
    free(text);
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

/* Remove the session, or only its sockets and pid files when the logs are
 * to be kept (MANTA_KEEP_SESSION=1). */
void mt_session_remove(mt_node *n)
{
    if (!n->session_dir) return;
    const char *keep = getenv("MANTA_KEEP_SESSION");
    if (keep && !strcmp(keep, "1")) {
        char p[4200];
        const char *files[] = {"daemon.sock", "daemon.pid", "workers.pid", "token"};
        for (size_t i = 0; i < MT_ARRAY_LEN(files); i++) {
            snprintf(p, sizeof p, "%s/%s", n->session_dir, files[i]);
            unlink(p);
        }
        snprintf(p, sizeof p, "%s/w", n->session_dir);
        rm_tree(p);
    } else {
        rm_tree(n->session_dir);
    }
    /* Drop the "latest" link if it points at us. */
    char link[4200], target[4200];
    const char *slash = strrchr(n->session_dir, '/');
    if (slash) {
        snprintf(link, sizeof link, "%.*s/latest", (int)(slash - n->session_dir), n->session_dir);
        ssize_t l = readlink(link, target, sizeof target - 1);
        if (l > 0) {
            target[l] = '\0';
            if (!strcmp(target, n->session_dir) || !strcmp(target, slash + 1)) unlink(link);
        }
    }
}

/* Whether the daemon recorded in `dir`/daemon.pid still runs. */
static bool daemon_running(const char *dir)
{
    char p[4200], line[128];
    snprintf(p, sizeof p, "%s/daemon.pid", dir);
    FILE *f = fopen(p, "re");
    if (!f) return false;
    long pid = 0;
    long long start = -1;
    int got = fgets(line, sizeof line, f) ? sscanf(line, "%ld %lld", &pid, &start) : 0;
    fclose(f);
    if (got < 1 || pid <= 1 || pid > INT32_MAX) return false;
    if (got == 2) return mt_proc_is((pid_t)pid, start, NULL, NULL);
    return kill((pid_t)pid, 0) == 0 || errno == EPERM; /* no start time: assume it may run */
}

/* Sessions whose daemon is dead are leftovers of a crash: kill any worker
 * they recorded (only if still that process, in that session) and remove
 * them.  Only directories private to this user are touched. */
void mt_session_reap_stale(const char *root)
{
    DIR *d = opendir(root);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "s-", 2)) continue;
        char dir[4200], p[4300];
        snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
        if (mt_priv_check_dir(dir)) continue;
        snprintf(p, sizeof p, "%s/daemon.pid", dir);
        if (access(p, F_OK) == 0) {
            if (daemon_running(dir)) continue;
        } else {
            /* No pid file: a session being created right now, or junk. Only
             * remove it once it is old. */
            struct stat st;
            if (stat(dir, &st) < 0 || st.st_mtime > time(NULL) - 60) continue;
        }
        snprintf(p, sizeof p, "%s/workers.pid", dir);
        mt_proc_signal_listed(p, NULL, dir, SIGKILL);
        rm_tree(dir);
    }
    closedir(d);
}
