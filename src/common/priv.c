/* priv.c -- private directories and process identity: what keeps another
 * local user from planting a session root or a `latest` link, and keeps a
 * reused pid from being signalled (see priv.h). */
#include "priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "layout.h"
#include "mt.h"

/* ---------------------------------------------------------------- directories */

static int check_stat(const char *dir, const struct stat *st)
{
    if (S_ISLNK(st->st_mode))
        return mt_err(MANTA_EINVAL, "%s is a symbolic link; manta's session directories must "
                                    "be real directories (remove it)", dir);
    if (!S_ISDIR(st->st_mode)) return mt_err(MANTA_EINVAL, "%s is not a directory", dir);
    if (st->st_uid != geteuid())
        return mt_err(MANTA_EINVAL, "%s is owned by uid %u, not by this user (uid %u): another "
                                    "user may have created it to capture manta's sockets; "
                                    "remove it or set MANTA_TEMP_DIR", dir,
                      (unsigned)st->st_uid, (unsigned)geteuid());
    return 0;
}

int mt_priv_check_dir(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) < 0) {
        if (errno == ENOENT) return mt_err(MANTA_ENOENT, "%s does not exist", dir);
        return mt_err_sys(dir);
    }
    int rc = check_stat(dir, &st);
    if (rc) return rc;
    if (st.st_mode & 077)
        return mt_err(MANTA_EINVAL, "%s has mode %04o: a session directory must be private to "
                                    "its user (0700)", dir, (unsigned)(st.st_mode & 07777));
    return 0;
}

int mt_priv_root(char *out, size_t cap)
{
    const char *base = getenv("MANTA_TEMP_DIR");
    char cwd[4096] = "";
    if (base && base[0] && base[0] != '/' && !getcwd(cwd, sizeof cwd)) return mt_err_sys("getcwd");
    int len = base && base[0] ? snprintf(out, cap, "%s%s%s", cwd, cwd[0] ? "/" : "", base)
                              : snprintf(out, cap, "/tmp/manta-%d", (int)getuid());
    if (len < 0 || (size_t)len >= cap) return mt_err(MANTA_EINVAL, "session root path too long");
    while (len > 1 && out[len - 1] == '/') out[--len] = '\0'; /* one spelling: "latest" names it */
    if (mkdir(out, 0700) < 0 && errno != EEXIST) return mt_err_sys(out);
    struct stat st;
    if (lstat(out, &st) < 0) return mt_err_sys(out);
    int rc = check_stat(out, &st);
    if (rc) return rc;
    /* Ours but open to others (made by hand, say): close it.  What others
     * may have put in it meanwhile is refused entry by entry below. */
    if ((st.st_mode & 077) && chmod(out, 0700) < 0) return mt_err_sys(out);
    return 0;
}

int mt_priv_latest(const char *root, char *out, size_t cap)
{
    char link[MT_LAYOUT_PATH_MAX], target[MT_LAYOUT_PATH_MAX];
    int rc = mt_layout_latest_path(root, link, sizeof link);
    if (rc) return rc;
    ssize_t l = readlink(link, target, sizeof target - 1);
    if (l < 0) {
        if (errno == ENOENT) return mt_err(MANTA_ENOENT, "%s does not exist", link);
        if (errno == EINVAL) return mt_err(MANTA_EINVAL, "%s is not a symbolic link", link);
        return mt_err_sys(link);
    }
    target[l] = '\0';
    /* Only a session directly inside the root: never a path that leads
     * elsewhere (another user's directory, "..", a chain of links). */
    const char *name = target;
    size_t rl = strlen(root);
    if (target[0] == '/') {
        if (strncmp(target, root, rl) || target[rl] != '/')
            return mt_err(MANTA_EINVAL, "%s points outside %s (to %s)", link, root, target);
        name = target + rl + 1;
    }
    if (!mt_layout_is_session(name))
        return mt_err(MANTA_EINVAL, "%s must name a session directory of %s, not %s", link,
                      root, target);
    int len = snprintf(out, cap, "%s/%s", root, name);
    if (len < 0 || (size_t)len >= cap) return mt_err(MANTA_EINVAL, "session path too long");
    return mt_priv_check_dir(out);
}

/* ---------------------------------------------------------------- processes */

int64_t mt_proc_start_time(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    /* The name (field 2) may hold spaces and parentheses: count from the
     * last ')'.  After it come field 3 (state) ... field 22 (starttime). */
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    p++;
    for (int field = 3; field <= 22; field++) {
        while (*p == ' ') p++;
        if (!*p) return -1;
        if (field == 3 && *p == 'Z') return -1; /* a zombie is gone */
        if (field == 22) return strtoll(p, NULL, 10);
        while (*p && *p != ' ') p++;
    }
    return -1;
}

static bool exe_is(pid_t pid, const char *exe)
{
    char path[64], buf[4200];
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    ssize_t l = readlink(path, buf, sizeof buf - 1);
    if (l <= 0) return false;
    buf[l] = '\0';
    size_t el = strlen(exe);
    /* A program rebuilt while it runs reads "<path> (deleted)". */
    return !strncmp(buf, exe, el) && (buf[el] == '\0' || !strcmp(buf + el, " (deleted)"));
}

static bool env_names_session(pid_t pid, const char *session)
{
    char path[64], want[4300];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    size_t cap = 1 << 16, len = 0;
    char *buf = mt_malloc(cap + 1);
    ssize_t r;
    while (len < cap && (r = read(fd, buf + len, cap - len)) > 0) len += (size_t)r;
    close(fd);
    buf[len] = '\0';
    int wl = snprintf(want, sizeof want, "MANTA_SESSION_DIR=%s", session);
    bool found = false;
    for (size_t i = 0; i < len && !found; i += strlen(buf + i) + 1)
        found = !strncmp(buf + i, want, (size_t)wl) && buf[i + (size_t)wl] == '\0';
    free(buf);
    return found;
}

bool mt_proc_is(pid_t pid, int64_t start, const char *exe, const char *session)
{
    if (pid <= 1 || start < 0 || mt_proc_start_time(pid) != start) return false;
    if (exe && !exe_is(pid, exe)) return false;
    if (session && !env_names_session(pid, session)) return false;
    return true;
}

int mt_proc_signal(pid_t pid, int64_t start, const char *exe, const char *session, int sig)
{
    if (pid <= 1) return mt_err(MANTA_ENOENT, "pid %d is not a process manta recorded", (int)pid);
    int pfd = (int)syscall(SYS_pidfd_open, (int)pid, 0);
    if (pfd < 0 && errno == ESRCH) return mt_err(MANTA_ENOENT, "pid %d is gone", (int)pid);
    int rc = 0;
    if (!mt_proc_is(pid, start, exe, session)) {
        rc = mt_err(MANTA_ENOENT, "pid %d is not the process recorded (start time %" PRId64
                                  "): left alone", (int)pid, start);
    } else if (pfd >= 0) {
        if (syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) < 0)
            rc = errno == ESRCH ? mt_err(MANTA_ENOENT, "pid %d is gone", (int)pid)
                                : mt_err_sys("pidfd_send_signal");
    } else if (kill(pid, sig) < 0) { /* no pidfd (old kernel): the start time check must do */
        rc = errno == ESRCH ? mt_err(MANTA_ENOENT, "pid %d is gone", (int)pid) : mt_err_sys("kill");
    }
    if (pfd >= 0) close(pfd);
    return rc;
}

int mt_proc_signal_listed(const char *path, const char *exe, const char *session, int sig)
{
    mt_layout_pid *pids;
    size_t n;
    if (mt_layout_pids_read(path, &pids, &n)) return 0;
    int signalled = 0;
    for (size_t i = 0; i < n; i++)
        if (mt_proc_signal(pids[i].pid, pids[i].start, exe, session, sig) == 0) signalled++;
    free(pids);
    return signalled;
}
