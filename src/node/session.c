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
    chmod(dir, 0700);
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
    int rc = write_file(dir, "token", n->token, 0600);
    if (rc) return rc;
    char pid[32];
    snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    return write_file(dir, "daemon.pid", pid, 0600);
}

void mt_session_set_token(mt_node *n, const char *token)
{
    snprintf(n->token, sizeof n->token, "%s", token);
    write_file(n->session_dir, "token", n->token, 0600);
}

void mt_session_write_pids(mt_node *n)
{
    if (!n->session_dir || n->stopping) return;
    size_t cap = 4096, len = 0;
    char *text = mt_malloc(cap);
    text[0] = '\0';
    /* The workers and the zygote that forks them (pool.c). */
    if (n->zyg.running) len += (size_t)snprintf(text, cap, "%d\n", (int)n->zyg.pid);
    for (mt_worker *w = n->worker_list; w; w = w->next) {
        if (w->state == MT_W_DEAD || w->pid <= 0) continue;
        if (cap - len < 32) text = mt_realloc(text, cap *= 2);
        len += (size_t)snprintf(text + len, cap - len, "%d\n", (int)w->pid);
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

static int read_pid(const char *dir, const char *name)
{
    char p[4200], buf[32];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    int pid = -1;
    if (fgets(buf, sizeof buf, f)) pid = atoi(buf);
    fclose(f);
    return pid;
}

/* Is `pid` a process of session `dir`?  Pids get reused, so a recorded pid
 * is only signalled when its environment names the session. */
static bool pid_in_session(int pid, const char *dir)
{
    char p[64], want[4300];
    snprintf(p, sizeof p, "/proc/%d/environ", pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    size_t cap = 1 << 16, len = 0;
    char *buf = mt_malloc(cap + 1);
    ssize_t r;
    while (len < cap && (r = read(fd, buf + len, cap - len)) > 0) len += (size_t)r;
    close(fd);
    buf[len] = '\0';
    int wl = snprintf(want, sizeof want, "MANTA_SESSION_DIR=%s", dir);
    bool found = false;
    for (size_t i = 0; i < len && !found; i += strlen(buf + i) + 1)
        found = !strncmp(buf + i, want, (size_t)wl) && buf[i + (size_t)wl] == '\0';
    free(buf);
    return found;
}

static void kill_listed(const char *dir, const char *name)
{
    char p[4200], buf[32];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    if (!f) return;
    while (fgets(buf, sizeof buf, f)) {
        int pid = atoi(buf);
        if (pid > 1 && pid_in_session(pid, dir)) kill(pid, SIGKILL);
    }
    fclose(f);
}

/* Sessions whose daemon pid is dead are leftovers of a crash: kill any
 * worker they recorded and remove them. */
void mt_session_reap_stale(const char *root)
{
    DIR *d = opendir(root);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "s-", 2)) continue;
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
        int pid = read_pid(dir, "daemon.pid");
        if (pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)) continue;
        if (pid <= 0) {
            /* No pid file: a session being created right now, or junk. Only
             * remove it once it is old. */
            struct stat st;
            if (stat(dir, &st) < 0 || st.st_mtime > time(NULL) - 60) continue;
        }
        kill_listed(dir, "workers.pid");
        rm_tree(dir);
    }
    closedir(d);
}
