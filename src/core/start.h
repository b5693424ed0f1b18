/* start.h -- finding a cluster on this machine and starting a local one:
 * the session directories under /tmp/manta-<uid> (see architecture.md). */
#ifndef MT_START_H
#define MT_START_H

#include <stddef.h>
#include <sys/types.h>

/* The daemon socket of the cluster at `address` ("auto" or "host:port"). */
int mt_start_find(const char *address, char *sock, size_t cap);
/* Whether a TCP listener on `listen_host` is reached at `host` (1) or not
 * (0); `listen_host` NULL: whether `host` is an address of this machine.
 * MANTA_ECONN if `host` does not resolve (the reason in manta_last_error). */
int mt_start_same_host(const char *listen_host, const char *host);
/* Start an embedded node owned by this process; returns its socket path
 * and pid.  `mantad`: path of the daemon program. */
int mt_start_local(const char *mantad, double num_cpus, double num_gpus, const char *resources,
                   long long store_bytes, char *sock, size_t cap, pid_t *pid);

#endif
