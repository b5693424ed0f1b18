/* start.c -- locating clusters by their session directories, and starting
 * an embedded node for a C driver. */
#include "start.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mt.h"
#include "priv.h"

extern char **environ;

static int info_field(const char *dir, const char *key, char *out, size_t cap)
{
    char path[4200], line[4200];
    snprintf(path, sizeof path, "%s/info", dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int rc = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) || line[kl] != '=') continue;
        line[strcspn(line, "\n")] = '\0';
        snprintf(out, cap, "%s", line + kl + 1);
        rc = 0;
        break;
    }
    fclose(f);
    return rc;
}

/* Whether the daemon recorded in `dir`/info runs: the same process (pid,
 * start time and program), not one that reused its pid. */
static bool daemon_alive(const char *dir)
{
    char pid[32], start[32], exe[4200];
    if (info_field(dir, "pid", pid, sizeof pid) || info_field(dir, "start", start, sizeof start) ||
        info_field(dir, "exe", exe, sizeof exe))
        return false;
    return mt_proc_is((pid_t)atoi(pid), atoll(start), exe, NULL);
}

int mt_start_find(const char *address, char *sock, size_t cap)
{
    char root[4096];
    int rc = mt_priv_root(root, sizeof root);
    if (rc) return rc;
    if (!strcmp(address, "auto")) {
        char full[8400];
        rc = mt_priv_latest(root, full, sizeof full);
        if (rc == MANTA_ENOENT)
            return mt_err(MANTA_ECONN, "no running cluster found (start one with `manta start --head`)");
        if (rc) return mt_err(MANTA_ECONN, "refusing the latest cluster: %s", manta_last_error());
        if (!daemon_alive(full) || info_field(full, "socket", sock, cap))
            return mt_err(MANTA_ECONN, "the latest cluster (%s) is not running", full);
        return 0;
    }
    const char *colon = strrchr(address, ':');
    if (!colon) return mt_err(MANTA_EINVAL, "address must be \"auto\" or \"host:port\", not %s", address);
    DIR *d = opendir(root);
    if (!d) return mt_err_sys(root);
    struct dirent *e;
    rc = mt_err(MANTA_ECONN, "no cluster of this user on this machine listens on %s", address);
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "s-", 2)) continue;
        char dir[4400], port[32];
        snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
        if (mt_priv_check_dir(dir)) continue;
        if (info_field(dir, "port", port, sizeof port) || strcmp(port, colon + 1)) continue;
        if (!daemon_alive(dir) || info_field(dir, "socket", sock, cap)) continue;
        rc = 0;
        break;
    }
    closedir(d);
    return rc;
}

int mt_start_local(const char *mantad, double num_cpus, double num_gpus, const char *resources,
                   long long store_bytes, char *sock, size_t cap, pid_t *pid)
{
    char root[4096], dir[4400];
    int rc = mt_priv_root(root, sizeof root);
    if (rc) return rc;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    snprintf(dir, sizeof dir, "%s/s-%04d%02d%02d-%02d%02d%02d-%d", root, tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)getpid());
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) return mt_err_sys("pipe");
    char cpus[32], gpus[32], store[32], rfd[16];
    snprintf(rfd, sizeof rfd, "%d", pfd[1]);
    char *argv[24];
    int k = 0;
    argv[k++] = (char *)mantad;
    argv[k++] = "--session-dir";
    argv[k++] = dir;
    argv[k++] = "--embedded";
    argv[k++] = "--ready-fd";
    argv[k++] = rfd;
    if (num_cpus >= 0) {
        snprintf(cpus, sizeof cpus, "%g", num_cpus);
        argv[k++] = "--num-cpus";
        argv[k++] = cpus;
    }
    if (num_gpus >= 0) {
        snprintf(gpus, sizeof gpus, "%g", num_gpus);
        argv[k++] = "--num-gpus";
        argv[k++] = gpus;
    }
    if (resources && resources[0]) {
        argv[k++] = "--resources";
        argv[k++] = (char *)resources;
    }
    if (store_bytes > 0) {
        snprintf(store, sizeof store, "%lld", store_bytes);
        argv[k++] = "--object-store-memory";
        argv[k++] = store;
    }
    argv[k] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    /* The write end must survive exec: dup it onto itself without CLOEXEC. */
    posix_spawn_file_actions_adddup2(&fa, pfd[1], pfd[1]);
    rc = posix_spawn(pid, mantad, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc) {
        close(pfd[0]);
        return mt_err(MANTA_ESYS, "cannot start %s: %s", mantad, strerror(rc));
    }
    char buf[64] = {0};
    struct pollfd p = {.fd = pfd[0], .events = POLLIN};
    ssize_t n = 0;
    if (poll(&p, 1, 30000) > 0) n = read(pfd[0], buf, sizeof buf - 1);
    close(pfd[0]);
    if (n <= 0 || strncmp(buf, "ready", 5)) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        return mt_err(MANTA_ECONN, "the node daemon did not start (see its messages above)");
    }
    snprintf(sock, cap, "%s/daemon.sock", dir);
    return 0;
}
