/* sock.h -- sockets: unix and TCP listeners and connections, endpoints as
 * strings ("unix:/path", "tcp:host:port"), fd passing, peer credentials. */
#ifndef MT_SOCK_H
#define MT_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Listen on a unix socket at `path` (replacing a stale socket file), mode
 * 0600.  Returns 0 and the listening fd (non-blocking, close-on-exec). */
int mt_sock_listen_unix(const char *path, int *fd);
/* Listen on host:port (port 0 picks one); *bound gets the port. */
int mt_sock_listen_tcp(const char *host, int port, int *fd, int *bound);
/* The same in two steps: bind (the port is ours, yet connections to it are
 * refused and no listener shows), then listen. */
int mt_sock_bind_tcp(const char *host, int port, int *fd, int *bound);
int mt_sock_listen_bound(int fd);
/* Connect (blocking, with a timeout) to an endpoint string; the returned fd
 * is non-blocking and close-on-exec.  Errors: MANTA_ECONN, MANTA_EINVAL. */
int mt_sock_connect(const char *endpoint, double timeout_s, int *fd);
/* Start connecting without waiting (for event loops): the returned fd is
 * non-blocking and close-on-exec and may still be connecting; bytes written
 * before the connection is up wait (EAGAIN), and a failure shows later as
 * an error on the fd.  A TCP connection that gets no answer within
 * timeout_ms fails (TCP_USER_TIMEOUT); mt_sock_connected() lifts that limit
 * once the connection is up.  Errors known at once (a bad endpoint, a unix
 * socket that refuses): MANTA_EINVAL, MANTA_ECONN. */
int mt_sock_connect_start(const char *endpoint, int64_t timeout_ms, int *fd);
void mt_sock_connected(int fd);
int mt_sock_nonblock(int fd, int on);
/* Accept one connection (non-blocking fd) or return -1 with errno. */
int mt_sock_accept(int lfd);
/* Send `len` bytes with one fd attached (SCM_RIGHTS); blocking. */
int mt_sock_send_fd(int sock, const void *buf, size_t len, int fd);
/* Receive up to `cap` bytes; *fd gets an attached descriptor or -1. */
ssize_t mt_sock_recv_fd(int sock, void *buf, size_t cap, int *fd);
/* uid of the process at the other end of a unix socket, or -1. */
int mt_sock_peer_uid(int fd, uid_t *uid, pid_t *pid);
/* Whether host is the wildcard address (0.0.0.0 or ::): every interface. */
bool mt_sock_host_is_any(const char *host);
/* A real address of this machine for others to reach it by: the source
 * address of the default route (IPv6 if v6).  Without a route it writes
 * the loopback address and returns 1; else 0. */
int mt_sock_route_address(bool v6, char *out, size_t cap);
/* Write all of buf (blocking fd) / read exactly n bytes, with a deadline. */
int mt_sock_write_all(int fd, const void *buf, size_t n, double timeout_s);
int mt_sock_read_all(int fd, void *buf, size_t n, double timeout_s);

#endif
