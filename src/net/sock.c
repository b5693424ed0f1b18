/* sock.c -- thin, checked wrappers over the socket calls manta needs. */
#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mt.h"

int mt_sock_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return mt_err_sys("fcntl");
    fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
    if (fcntl(fd, F_SETFL, fl) < 0) return mt_err_sys("fcntl");
    return 0;
}

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa->sun_path)
        return mt_err(MANTA_EINVAL, "socket path too long: %s", path);
    strcpy(sa->sun_path, path);
    return 0;
}

int mt_sock_listen_unix(const char *path, int *out)
{
    struct sockaddr_un sa;
    int rc = unix_addr(path, &sa);
    if (rc) return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return mt_err_sys("socket");
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || chmod(path, 0600) < 0 ||
        listen(fd, 1024) < 0) {
        rc = mt_err_sys(path);
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    char pbuf[16];
    snprintf(pbuf, sizeof pbuf, "%d", port);
    int rc = getaddrinfo(host, pbuf, &hints, &res);
    if (rc) return mt_err(MANTA_EINVAL, "cannot resolve %s: %s", host, gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int mt_sock_bind_tcp(const char *host, int port, int *out, int *bound)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = resolve(host, port, &ss, &len);
    if (rc) return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return mt_err_sys("socket");
    /* A fixed port is taken again at once after a restart.  Not a port the
     * kernel picks: two such sockets could share it while neither listens. */
    int one = 1;
    if (port) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        rc = mt_err(MANTA_ECONN, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        close(fd);
        return rc;
    }
    len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    if (bound)
        *bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                               : ((struct sockaddr_in6 *)&ss)->sin6_port);
    *out = fd;
    return 0;
}

int mt_sock_listen_bound(int fd)
{
    if (listen(fd, 1024) < 0) return mt_err(MANTA_ECONN, "cannot listen: %s", strerror(errno));
    return 0;
}

int mt_sock_listen_tcp(const char *host, int port, int *out, int *bound)
{
    int rc = mt_sock_bind_tcp(host, port, out, bound);
    if (rc) return rc;
    rc = mt_sock_listen_bound(*out);
    if (rc) {
        close(*out);
        *out = -1;
    }
    return rc;
}

static int wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - mt_now_s();
        if (left <= 0) return MANTA_ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r > 0) return 0;
        if (r < 0 && errno != EINTR) return mt_err_sys("poll");
    }
}

static int connect_addr(const struct sockaddr *sa, socklen_t len, double timeout_s, int *out,
                        const char *what)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return mt_err_sys("socket");
    int rc = connect(fd, sa, len);
    if (rc < 0 && (errno == EINPROGRESS || errno == EAGAIN)) {
        if (wait_fd(fd, POLLOUT, mt_now_s() + timeout_s)) {
            close(fd);
            return mt_err(MANTA_ECONN, "connecting to %s timed out", what);
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        errno = soerr;
        rc = soerr ? -1 : 0;
    }
    if (rc < 0) {
        rc = mt_err(MANTA_ECONN, "cannot connect to %s: %s", what, strerror(errno));
        close(fd);
        return rc;
    }
    if (sa->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    *out = fd;
    return 0;
}

/* The address an endpoint string names ("unix:/path" or "tcp:host:port"). */
static int endpoint_addr(const char *ep, struct sockaddr_storage *ss, socklen_t *len)
{
    if (!strncmp(ep, "unix:", 5)) {
        struct sockaddr_un sa;
        int rc = unix_addr(ep + 5, &sa);
        if (rc) return rc;
        memset(ss, 0, sizeof *ss);
        memcpy(ss, &sa, sizeof sa);
        *len = sizeof sa;
        return 0;
    }
    if (!strncmp(ep, "tcp:", 4)) {
        const char *hp = ep + 4;
        const char *colon = strrchr(hp, ':');
        if (!colon || colon == hp) return mt_err(MANTA_EINVAL, "bad endpoint %s", ep);
        char host[256];
        size_t hl = (size_t)(colon - hp);
        if (hl >= sizeof host) return mt_err(MANTA_EINVAL, "bad endpoint %s", ep);
        memcpy(host, hp, hl);
        host[hl] = '\0';
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port <= 0 || port > 65535) return mt_err(MANTA_EINVAL, "bad port in %s", ep);
        return resolve(host, (int)port, ss, len);
    }
    return mt_err(MANTA_EINVAL, "bad endpoint %s (want unix:/path or tcp:host:port)", ep);
}

int mt_sock_connect(const char *ep, double timeout_s, int *out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = endpoint_addr(ep, &ss, &len);
    if (rc) return rc;
    return connect_addr((struct sockaddr *)&ss, len, timeout_s, out, ep);
}

int mt_sock_connect_start(const char *ep, int64_t timeout_ms, int *out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = endpoint_addr(ep, &ss, &len);
    if (rc) return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return mt_err_sys("socket");
    if (ss.ss_family != AF_UNIX) {
        int one = 1;
        unsigned ms = (unsigned)MT_MIN(MT_MAX(timeout_ms, 1), (int64_t)UINT32_MAX);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* Unanswered SYNs (a host that drops them, a full backlog) fail the
         * connection after `ms` instead of the kernel's two minutes. */
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
    }
    /* A unix connect never waits: EAGAIN there means a full backlog, not a
     * connection on its way. */
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 &&
        (errno != EINPROGRESS || ss.ss_family == AF_UNIX)) {
        rc = mt_err(MANTA_ECONN, "cannot connect to %s: %s", ep, strerror(errno));
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

void mt_sock_connected(int fd)
{
    unsigned zero = 0; /* back to the kernel's default for an open connection */
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &zero, sizeof zero);
}

int mt_sock_accept(int lfd) { return accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

int mt_sock_send_fd(int sock, const void *buf, size_t len, int fd)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u); /* the padding after the descriptor goes out too */
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        mh.msg_control = u.b;
        mh.msg_controllen = sizeof u.b;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    }
    size_t sent = 0;
    double deadline = mt_now_s() + 5;
    while (sent < len) {
        ssize_t r = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN && !wait_fd(sock, POLLOUT, deadline)) continue;
            return mt_err_sys("sendmsg");
        }
        sent += (size_t)r;
        iov.iov_base = (char *)buf + sent;
        iov.iov_len = len - sent;
        mh.msg_control = NULL; /* the fd went with the first byte */
        mh.msg_controllen = 0;
    }
    return 0;
}

ssize_t mt_sock_recv_fd(int sock, void *buf, size_t cap, int *fd)
{
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    union {
        char b[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                        .msg_controllen = sizeof u.b};
    *fd = -1;
    ssize_t r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    if (r < 0) return r;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
        size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int fds[4];
        memcpy(fds, CMSG_DATA(cm), nfd * sizeof(int));
        for (size_t i = 0; i < nfd; i++) {
            if (*fd < 0)
                *fd = fds[i];
            else
                close(fds[i]); /* more than we asked for: never leak them */
        }
    }
    return r;
}

int mt_sock_peer_uid(int fd, uid_t *uid, pid_t *pid)
{
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) return -1;
    if (uid) *uid = cr.uid;
    if (pid) *pid = cr.pid;
    return 0;
}

int mt_sock_write_all(int fd, const void *buf, size_t n, double timeout_s)
{
    const char *p = buf;
    double deadline = mt_now_s() + timeout_s;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                int rc = wait_fd(fd, POLLOUT, deadline);
                if (rc) return rc;
                continue;
            }
            return mt_err(MANTA_ECONN, "write: %s", strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int mt_sock_read_all(int fd, void *buf, size_t n, double timeout_s)
{
    char *p = buf;
    double deadline = mt_now_s() + timeout_s;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r == 0) return mt_err(MANTA_ECONN, "connection closed");
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                int rc = wait_fd(fd, POLLIN, deadline);
                if (rc) return mt_err(rc, "no answer within %.1f s", timeout_s);
                continue;
            }
            return mt_err(MANTA_ECONN, "read: %s", strerror(errno));
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

bool mt_sock_host_is_any(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1) return a4.s_addr == htonl(INADDR_ANY);
    if (inet_pton(AF_INET6, host, &a6) == 1) return IN6_IS_ADDR_UNSPECIFIED(&a6);
    return false;
}

int mt_sock_route_address(bool v6, char *out, size_t cap)
{
    /* Connecting a UDP socket only picks a route and a source address: no
     * packet leaves.  The destination is a documentation address (RFC 5737,
     * RFC 3849), so it follows the default route like any remote host. */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(9);
        inet_pton(AF_INET6, "2001:db8::1", &a->sin6_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(9);
        inet_pton(AF_INET, "198.51.100.1", &a->sin_addr);
        len = sizeof *a;
    }
    const char *fallback = v6 ? "::1" : "127.0.0.1";
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&ss, len) == 0;
    len = sizeof ss;
    ok = ok && getsockname(fd, (struct sockaddr *)&ss, &len) == 0;
    if (fd >= 0) close(fd);
    const void *addr = v6 ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                          : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
    if (!ok || !inet_ntop(ss.ss_family, addr, out, (socklen_t)cap)) {
        snprintf(out, cap, "%s", fallback);
        return 1;
    }
    return 0;
}
