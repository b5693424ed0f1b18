/* start.c -- locating clusters by their session directories, and starting
 * an embedded node for a C driver. */
#include "start.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
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
#include <unistd.h>

#include "layout.h"
#include "mt.h"
#include "priv.h"

extern char **environ;

/* The info of the daemon of `dir` if that daemon runs: the same process
 * (pid, start time and program), not one that reused its pid. */
static bool daemon_alive(const char *dir, mt_layout_info *info)
{
    return mt_layout_info_read(dir, info) == 0 &&
           mt_proc_is(info->pid, info->start, info->exe, NULL);
}

/* The addresses `host` resolves to (at most `cap`).  Brackets around an
 * IPv6 literal are dropped.  Names under "invalid" never resolve (RFC 6761
 * asks resolvers to answer at once, without a query). */
static int host_addrs(const char *host, struct sockaddr_storage *out, int cap, int *n)
{
    char name[256];
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') host++, hl -= 2;
    if (hl == 0 || hl >= sizeof name) return mt_err(MANTA_ECONN, "bad host name \"%s\"", host);
    memcpy(name, host, hl);
    name[hl] = '\0';
    if (!strcasecmp(name, "invalid") || (hl > 8 && !strcasecmp(name + hl - 8, ".invalid")))
        return mt_err(MANTA_ECONN, "cannot resolve host %s (names under .invalid never resolve)",
                      name);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc) return mt_err(MANTA_ECONN, "cannot resolve host %s: %s", name, gai_strerror(rc));
    *n = 0;
    for (struct addrinfo *a = res; a && *n < cap; a = a->ai_next)
        if (a->ai_family == AF_INET || a->ai_family == AF_INET6)
            memcpy(&out[(*n)++], a->ai_addr, a->ai_addrlen);
    freeaddrinfo(res);
    return *n ? 0 : mt_err(MANTA_ECONN, "host %s has no IPv4 or IPv6 address", name);
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                   &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
}

static bool is_wildcard(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
    return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &in6addr_any, sizeof in6addr_any);
}

/* Whether `a` is an address of this machine: one a socket can bind. */
static bool is_local(const struct sockaddr_storage *a)
{
    int fd = socket(a->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    struct sockaddr_storage b = *a;
    if (b.ss_family == AF_INET) ((struct sockaddr_in *)&b)->sin_port = 0;
    else ((struct sockaddr_in6 *)&b)->sin6_port = 0;
    socklen_t len = b.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    bool ok = bind(fd, (struct sockaddr *)&b, len) == 0;
    close(fd);
    return ok;
}

int mt_start_same_host(const char *listen_host, const char *host)
{
    struct sockaddr_storage want[16], have[16];
    int nw, nh;
    int rc = host_addrs(host, want, 16, &nw);
    if (rc) return rc;
    if (listen_host == NULL) { /* any address of this machine */
        for (int i = 0; i < nw; i++)
            if (is_local(&want[i])) return 1;
        return 0;
    }
    if (host_addrs(listen_host, have, 16, &nh)) return 0;
    for (int i = 0; i < nh; i++)
        for (int j = 0; j < nw; j++)
            if (same_addr(&have[i], &want[j]) || (is_wildcard(&have[i]) && is_local(&want[j])))
                return 1;
    return 0;
}

/* What mt_start_find looks for among the sessions of this user. */
typedef struct wanted {
    const char *host; /* as the caller wrote it */
    int port;
    char *sock;
    size_t cap;
} wanted;

static int listens_at(const char *dir, void *arg)
{
    wanted *w = arg;
    mt_layout_info info;
    if (mt_priv_check_dir(dir) || mt_layout_info_read(dir, &info) || info.port != w->port ||
        mt_start_same_host(info.host, w->host) != 1 || !daemon_alive(dir, &info))
        return 0;
    return snprintf(w->sock, w->cap, "%s", info.socket) < (int)w->cap;
}

int mt_start_find(const char *address, char *sock, size_t cap)
{
    char root[MT_LAYOUT_PATH_MAX];
    int rc = mt_priv_root(root, sizeof root);
    if (rc) return rc;
    if (!strcmp(address, "auto")) {
        char full[MT_LAYOUT_PATH_MAX];
        mt_layout_info info;
        rc = mt_priv_latest(root, full, sizeof full);
        if (rc == MANTA_ENOENT)
            return mt_err(MANTA_ECONN, "no running cluster found (start one with `manta start --head`)");
        if (rc) return mt_err(MANTA_ECONN, "refusing the latest cluster: %s", manta_last_error());
        if (!daemon_alive(full, &info) || snprintf(sock, cap, "%s", info.socket) >= (int)cap)
            return mt_err(MANTA_ECONN, "the latest cluster (%s) is not running", full);
        return 0;
    }
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address)
        return mt_err(MANTA_EINVAL, "address must be \"auto\" or \"host:port\", not %s", address);
    char host[256], *end;
    snprintf(host, sizeof host, "%.*s", (int)(colon - address), address);
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 0 || port > 65535) port = -2; /* matches no node */
    rc = mt_start_same_host(NULL, host);
    if (rc < 0) return mt_err(MANTA_ECONN, "cannot connect to %s: %s", address, manta_last_error());
    if (rc == 0)
        return mt_err(MANTA_ECONN, "cannot connect to %s: %s is not an address of this machine, and "
                                   "a driver connects to a head node on its own machine", address, host);
    wanted w = {host, (int)port, sock, cap};
    if (mt_layout_each_session(root, listens_at, &w) != 1)
        return mt_err(MANTA_ECONN, "no cluster of this user on this machine listens on %s", address);
    return 0;
}

int mt_start_local(const char *mantad, double num_cpus, double num_gpus, const char *resources,
                   long long store_bytes, char *sock, size_t cap, pid_t *pid)
{
    char root[MT_LAYOUT_PATH_MAX], dir[MT_LAYOUT_PATH_MAX];
    int rc = mt_priv_root(root, sizeof root);
    if (!rc) rc = mt_layout_new_session(root, dir, sizeof dir);
    if (rc) return rc;
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
    return mt_layout_path(dir, MT_LAYOUT_SOCKET, sock, cap);
}
