/* main.c -- mantad, the node daemon: parses its options, builds the node
 * (session directory, store, resources, listeners) and runs its loop. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "config.h"
#include "layout.h"
#include "mt.h"
#include "node.h"
#include "priv.h"
#include "sysmem.h"
#include "sock.h"

typedef struct opts {
    const char *session_dir;
    bool head, embedded;
    double num_cpus, num_gpus;
    const char *resources;
    int64_t store_bytes;
    int port;
    const char *host; /* where the TCP listener binds */
    char addr[64];    /* the address other nodes are told: host, unless that is 0.0.0.0 / :: */
    const char *python;
    bool python_no_site;
    int ready_fd;
    const char *join;
} opts;

static void usage(void)
{
    fprintf(stderr,
            "usage: mantad --session-dir DIR [--head] [--embedded] [--num-cpus N]\n"
            "              [--num-gpus N] [--resources JSON] [--object-store-memory BYTES]\n"
            "              [--port P] [--host H] [--python PATH] [--python-no-site]\n"
            "              [--ready-fd FD] [--address HEAD_HOST:PORT]\n"
            "A node joining a cluster (--address) reads the cluster token from\n"
            "MANTA_CLUSTER_TOKEN.\n");
}

static int parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"session-dir", 1, 0, 's'}, {"head", 0, 0, 'H'},        {"embedded", 0, 0, 'e'},
        {"num-cpus", 1, 0, 'c'},    {"num-gpus", 1, 0, 'g'},    {"resources", 1, 0, 'r'},
        {"object-store-memory", 1, 0, 'm'}, {"port", 1, 0, 'p'}, {"host", 1, 0, 'h'},
        {"python", 1, 0, 'P'},      {"ready-fd", 1, 0, 'R'},    {"python-no-site", 0, 0, 'S'},
        {"address", 1, 0, 'a'},     {0, 0, 0, 0}};
    *o = (opts){.num_cpus = -1, .num_gpus = -1, .port = -1, .host = "127.0.0.1", .ready_fd = -1};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 's': o->session_dir = optarg; break;
        case 'H': o->head = true; break;
        case 'e': o->embedded = true; break;
        case 'c': o->num_cpus = atof(optarg); break;
        case 'g': o->num_gpus = atof(optarg); break;
        case 'r': o->resources = optarg; break;
        case 'm': {
            char *end;
            errno = 0;
            o->store_bytes = strtoll(optarg, &end, 10);
            if (errno || end == optarg || *end || o->store_bytes <= 0) {
                fprintf(stderr, "mantad: --object-store-memory must be a positive number of "
                                "bytes, not '%s'\n", optarg);
                return -1;
            }
            break;
        }
        case 'p': o->port = atoi(optarg); break;
        case 'h': o->host = optarg; break;
        case 'P': o->python = optarg; break;
        case 'R': o->ready_fd = atoi(optarg); break;
        case 'S': o->python_no_site = true; break;
        case 'a': o->join = optarg; break;
        default: usage(); return -1;
        }
    }
    if (!o->session_dir) {
        usage();
        return -1;
    }
    if (o->join && (o->head || o->embedded)) {
        fprintf(stderr, "mantad: --address joins a cluster; it cannot go with --head\n");
        return -1;
    }
    /* A node of a cluster listens for the other nodes. */
    if (o->join && o->port < 0) o->port = 0;
    snprintf(o->addr, sizeof o->addr, "%s", o->host);
    if (mt_sock_host_is_any(o->host))
        mt_sock_route_address(strchr(o->host, ':') != NULL, o->addr, sizeof o->addr);
    return 0;
}

static int cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

static int put_amount(mt_res_set *s, const char *name, double v)
{
    int64_t fixed;
    char err[256];
    if (mt_res_from_double(name, v, &fixed, err, sizeof err)) {
        fprintf(stderr, "mantad: %s\n", err);
        return -1;
    }
    mt_res_put(s, name, fixed);
    return 0;
}

/* The node's resources into `total` (initialized by the caller). */
static int setup_resources(mt_res_set *total, const opts *o, uint64_t store)
{
    if (o->resources && o->resources[0]) {
        char err[256];
        if (mt_res_parse_json(o->resources, total, err, sizeof err)) {
            fprintf(stderr, "mantad: --resources: %s\n", err);
            return -1;
        }
    }
    double cpus = o->num_cpus >= 0 ? o->num_cpus : cpu_count();
    double gpus = o->num_gpus >= 0 ? o->num_gpus : 0;
    if (put_amount(total, "CPU", cpus) || put_amount(total, "GPU", gpus)) return -1;
    int64_t mem = mt_mem_total() * 7 / 10 - (int64_t)store;
    if (mem < 0) mem = 0;
    mt_res_put(total, "memory", mem * MT_RES_UNIT);
    mt_res_put(total, "object_store_memory", (int64_t)store * MT_RES_UNIT);
    char node_res[300];
    snprintf(node_res, sizeof node_res, "node:%s", o->addr);
    mt_res_put(total, node_res, MT_RES_UNIT);
    if (o->head || o->embedded) mt_res_put(total, "node:__internal_head__", MT_RES_UNIT);
    return 0;
}

static int setup_listeners(mt_node *n, const opts *o)
{
    int rc = mt_sock_listen_unix(n->sock_path, &n->listen_fd);
    if (rc) {
        fprintf(stderr, "mantad: %s\n", manta_last_error());
        return -1;
    }
    n->tcp_fd = -1;
    n->tcp_host = mt_strdup(o->addr);
    if (o->port >= 0) {
        if (strcmp(o->addr, o->host))
            mt_warn("--host %s listens on every interface of this machine; other nodes and "
                    "clients are told its address %s",
                    o->host, o->addr);
        rc = mt_sock_listen_tcp(o->host, o->port, &n->tcp_fd, &n->tcp_port);
        if (rc) {
            fprintf(stderr, "mantad: %s\n", manta_last_error());
            return -1;
        }
    }
    return 0;
}

/* The daemon's pid is recorded with its start time and program, so that
 * `manta stop` signals this process and never one that reused its pid. */
static void write_info(mt_node *n)
{
    mt_layout_info info = {.port = n->tcp_fd >= 0 ? n->tcp_port : -1, .head = n->is_head,
                           .pid = getpid(), .start = mt_proc_start_time(getpid())};
    mt_hex(n->node_id.b, MT_NODE_ID_LEN, info.node_id);
    snprintf(info.socket, sizeof info.socket, "%s", n->sock_path);
    snprintf(info.host, sizeof info.host, "%s", n->tcp_host);
    ssize_t el = readlink("/proc/self/exe", info.exe, sizeof info.exe - 1);
    info.exe[el > 0 ? el : 0] = '\0';
    if (mt_layout_info_write(n->session_dir, &info))
        mt_warn("cannot record this node in its session: %s", manta_last_error());
}

static char *self_dir(void)
{
    char buf[PATH_MAX];
    ssize_t l = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (l <= 0) return mt_strdup(".");
    buf[l] = '\0';
    return mt_strdup(dirname(buf));
}

static void open_log(mt_node *n)
{
    char path[MT_LAYOUT_PATH_MAX];
    n->log_fd = -1;
    if (!mt_layout_path(n->session_dir, MT_LAYOUT_LOG, path, sizeof path))
        n->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (n->log_fd < 0) n->log_fd = 2;
    mt_log_init("mantad", n->log_fd);
    mt_log_set_level((int)mt_cfg.log_level);
}

int main(int argc, char **argv)
{
    opts o;
    if (parse(argc, argv, &o)) return 2;
    mt_config_load();
    signal(SIGPIPE, SIG_IGN);
    /* A stop request that arrives before the loop watches for it waits
     * (mt_node_run unblocks these once its handlers are in place). */
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    sigprocmask(SIG_BLOCK, &stops, NULL);
    mt_node node = {0};
    mt_node *n = &node;
    n->is_head = o.head || o.embedded;
    n->embedded = o.embedded;
    n->parent_pid = getppid();
    n->python = o.python ? mt_strdup(o.python) : NULL;
    n->python_no_site = o.python_no_site;
    n->bin_dir = self_dir();
    mt_random_bytes(n->node_id.b, sizeof n->node_id.b);
    /* Clean what crashed daemons of this user left behind. */
    char root[4096];
    snprintf(root, sizeof root, "%s", o.session_dir);
    mt_session_reap_stale(dirname(root));
    if (mt_session_create(n, o.session_dir)) {
        fprintf(stderr, "mantad: cannot create session: %s\n", manta_last_error());
        return 1;
    }
    open_log(n);
    if (o.join) {
        const char *tok = getenv("MANTA_CLUSTER_TOKEN");
        uint8_t raw[32];
        if (!tok || strlen(tok) != 64 || mt_unhex(tok, raw, sizeof raw)) {
            fprintf(stderr, "mantad: joining a cluster needs its token (64 hex digits) in "
                            "MANTA_CLUSTER_TOKEN\n");
            mt_session_remove(n);
            return 1;
        }
        mt_session_set_token(n, tok);
        unsetenv("MANTA_CLUSTER_TOKEN"); /* workers learn it from us, over the unix socket */
        n->join = mt_strdup(o.join);
        n->multi_node = true; /* a head and us, at least */
    }
    /* Ray's rules (sysmem.h): by default 30% of the memory available to
     * this node -- its container's, if it runs in one; never more than
     * the node has, or the first large put gets the node OOM-killed. */
    int64_t total = mt_mem_total();
    int64_t store = o.store_bytes > 0 ? o.store_bytes : mt_mem_default_store();
    if (total > 0 && store > total) {
        fprintf(stderr, "mantad: the requested object store memory (%lld bytes) is greater than "
                        "the total available memory (%lld bytes)\n", (long long)store,
                (long long)total);
        mt_session_remove(n);
        return 1;
    }
    if (mt_store_new((uint64_t)store, &n->store)) {
        fprintf(stderr, "mantad: object store: %s\n", manta_last_error());
        mt_session_remove(n);
        return 1;
    }
    mt_res_set res;
    mt_res_init(&res);
    if (setup_resources(&res, &o, mt_store_capacity(n->store)) || setup_listeners(n, &o)) {
        mt_res_free(&res);
        mt_session_remove(n);
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    loop.data = n;
    n->loop = &loop;
    mt_conn_loop_init(&n->cl, &loop);
    mt_pool_init(n);
    n->sched = mt_lease_sched_new(n, &res);
    mt_res_free(&res);
    mt_cluster_init(n);
    if (n->is_head) n->gcs = mt_node_gcs_new(n);
    if (n->join && mt_cluster_join(n)) {
        fprintf(stderr, "mantad: %s\n", manta_last_error());
        mt_error("%s", manta_last_error());
        mt_session_remove(n);
        return 1;
    }
    write_info(n);
    mt_info("node up: session %s, store %ld bytes", n->session_dir, (long)store);
    if (o.ready_fd >= 0) {
        char msg[64];
        int len = snprintf(msg, sizeof msg, "ready %d\n", n->tcp_fd >= 0 ? n->tcp_port : -1);
        if (write(o.ready_fd, msg, (size_t)len) < 0) {
        }
        close(o.ready_fd);
    }
    int code = mt_node_run(n);
    mt_sched_destroy(n->sched);
    mt_xfer_free_all(n);
    mt_cluster_free(n);
    mt_gcs_destroy(n->gcs);
    mt_store_destroy(n->store);
    mt_info("node down");
    return code;
}
