/* memnode.c -- a node daemon built in memory (see memnode.h). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memnode.h"
#include "mt.h"

/* ---------------------------------------------------------------- wraps */

int __wrap_uv_spawn(uv_loop_t *loop, uv_process_t *p, const uv_process_options_t *o);
int __wrap_uv_spawn(uv_loop_t *loop, uv_process_t *p, const uv_process_options_t *o)
{
    MT_UNUSED(loop), MT_UNUSED(p), MT_UNUSED(o);
    return UV_EPERM;
}

int __real_kill(pid_t pid, int sig);
int __wrap_kill(pid_t pid, int sig);
int __wrap_kill(pid_t pid, int sig)
{
    if (pid == getpid()) return __real_kill(pid, sig);
    fprintf(stderr, "memnode: the daemon signalled pid %d (signal %d)\n", (int)pid, sig);
    abort();
}

/* ---------------------------------------------------------------- the node */

/* The listener's place: a pipe nobody writes to (its gate is never
 * started; clients come in through mt_node_add_client). */
static int listen_pipe[2] = {-1, -1};

static void put_res(mt_res_set *s, const char *name, int64_t units)
{
    mt_res_put(s, name, units * MT_RES_UNIT);
}

int memnode_new(mt_node *n, uv_loop_t *loop, bool head, uint8_t id_byte, const char *session_dir)
{
    char *join = n->join;
    memset(n, 0, sizeof *n);
    uv_loop_init(loop);
    loop->data = n;
    n->loop = loop;
    n->is_head = head;
    memset(n->node_id.b, id_byte, sizeof n->node_id.b);
    mkdir(session_dir, 0700);
    n->session_dir = mt_strdup(session_dir);
    n->tcp_fd = n->listen_fd = -1;
    n->tcp_host = mt_strdup("127.0.0.1");
    n->sock_path = mt_strdup("/nonexistent/daemon.sock");
    n->bin_dir = mt_strdup("/nonexistent");
    n->python = mt_strdup("/nonexistent/python3");
    n->log_fd = 2;
    mt_session_set_token(n, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    if (mt_store_new(1u << 20, &n->store)) abort();
    mt_res_set total;
    mt_res_init(&total);
    put_res(&total, "CPU", 4);
    put_res(&total, "GPU", 2);
    put_res(&total, "memory", 1 << 20);
    put_res(&total, "object_store_memory", 1 << 20);
    put_res(&total, "node:127.0.0.1", 1);
    put_res(&total, "custom", 3);
    if (head) put_res(&total, "node:__internal_head__", 1);
    mt_conn_loop_init(&n->cl, loop);
    mt_pool_init(n);
    n->sched = mt_lease_sched_new(n, &total);
    mt_res_free(&total);
    mt_cluster_init(n);
    if (head) n->gcs = mt_node_gcs_new(n);
    mt_node_conns_init(n);
    uv_timer_init(loop, &n->tick);
    n->tick.data = n;
    if (pipe2(listen_pipe, O_CLOEXEC | O_NONBLOCK)) abort();
    n->listen_fd = listen_pipe[0];
    if (head) return 0;
    n->join = join;
    return mt_cluster_join(n);
}

void memnode_tick(mt_node *n)
{
    if (n->stopping) return;
    mt_sched_dispatch(n->sched);
    if (n->gcs) mt_gcs_tick(n->gcs);
    mt_cluster_tick(n);
    mt_xfer_tick(n);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    MT_UNUSED(arg);
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

void memnode_free(mt_node *n)
{
    mt_node_stop(n, 0);
    uv_run(n->loop, UV_RUN_NOWAIT);
    /* Workers made as if started (spawning fails, so there are no others). */
    for (mt_worker *w = n->worker_list, *next; w; w = next) {
        next = w->next;
        mt_map_del(&n->workers, w->wid.b);
        free(w->runtime);
        free(w->outbuf[0]);
        free(w->outbuf[1]);
        mt_res_free(&w->lease.held);
        free(w);
    }
    n->worker_list = NULL;
    if (n->dead_list) abort(); /* a worker with handles: none was started */
    uv_walk(n->loop, close_walk, NULL);
    uv_run(n->loop, UV_RUN_DEFAULT);
    mt_conn_loop_close(&n->cl);
    uv_run(n->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(n->loop)) abort();
    close(listen_pipe[0]);
    close(listen_pipe[1]);
    listen_pipe[0] = listen_pipe[1] = -1;
    mt_node_conns_free(n);
    mt_sched_destroy(n->sched);
    mt_xfer_free_all(n);
    mt_cluster_free(n);
    mt_gcs_destroy(n->gcs);
    mt_store_destroy(n->store);
    mt_map_free(&n->workers);
    free(n->session_dir);
    free(n->tcp_host);
    free(n->sock_path);
    free(n->bin_dir);
    free(n->python);
    free(n->join);
}
