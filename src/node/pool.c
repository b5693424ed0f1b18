/* pool.c -- worker processes of a node: started ahead of demand, reused
 * across leases of one job, watched until they exit; their stdout and
 * stderr lines go to the driver of the job they serve. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "mt.h"
#include "sysmem.h"
#include "node.h"

extern char **environ;

#define OUT_MAX (64 * 1024)
#define START_FAILURES_MAX 3

typedef struct runtime_health {
    char *runtime;
    int failures;
    char last_err[2048];
    struct runtime_health *next;
} runtime_health;

static runtime_health *health;

static runtime_health *health_of(const char *runtime)
{
    for (runtime_health *h = health; h; h = h->next)
        if (!strcmp(h->runtime, runtime)) return h;
    runtime_health *h = mt_calloc(1, sizeof *h);
    h->runtime = mt_strdup(runtime);
    h->next = health;
    health = h;
    return h;
}

void mt_pool_init(mt_node *n)
{
    n->zyg.fd = -1;
    mt_map_init(&n->workers, offsetof(mt_worker, wid), sizeof(mt_wid));
}

/* ---------------------------------------------------------------- output */

static void forward(mt_node *n, mt_worker *w, int is_err, const char *text, size_t len)
{
    if (is_err && w->state == MT_W_STARTING) {
        runtime_health *h = health_of(w->runtime);
        size_t keep = MT_MIN(len, sizeof h->last_err - 1);
        memcpy(h->last_err, text + len - keep, keep);
        h->last_err[keep] = '\0';
    }
    mt_client *d = w->job_id ? mt_node_driver_of_job(n, w->job_id) : NULL;
    if (!d) {
        char head[64];
        int hl = snprintf(head, sizeof head, "(worker pid=%d) ", (int)w->pid);
        if (write(n->log_fd, head, (size_t)hl) < 0 || write(n->log_fd, text, len) < 0) {
        }
        return;
    }
    Manta__LogLines m = MANTA__LOG_LINES__INIT;
    m.pid = (uint32_t)w->pid;
    m.is_err = is_err;
    m.text = mt_strndup(text, len);
    mt_conn_send_now(d->conn, MANTA__MSG_TYPE__MSG_LOG_LINES, &m.base);
    free(m.text);
}

static void on_handle_closed(uv_handle_t *h);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    mt_worker *w = h->data;
    int s = (uv_pipe_t *)h == &w->err;
    MT_UNUSED(suggested);
    if (!w->outbuf[s]) w->outbuf[s] = mt_malloc(OUT_MAX);
    buf->base = w->outbuf[s] + w->outlen[s];
    buf->len = OUT_MAX - w->outlen[s];
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    mt_worker *w = st->data;
    mt_node *n = w->client ? w->client->node : (mt_node *)st->loop->data;
    int s = (uv_pipe_t *)st == &w->err;
    MT_UNUSED(buf);
    if (nread < 0) {
        if (w->outlen[s]) forward(n, w, s, w->outbuf[s], w->outlen[s]);
        w->outlen[s] = 0;
        uv_read_stop(st);
        if (!uv_is_closing((uv_handle_t *)st)) uv_close((uv_handle_t *)st, on_handle_closed);
        return;
    }
    w->outlen[s] += (size_t)nread;
    /* Forward whole lines; a line longer than the buffer goes as it is. */
    char *last_nl = NULL;
    for (size_t i = w->outlen[s]; i > 0; i--) {
        if (w->outbuf[s][i - 1] == '\n') {
            last_nl = w->outbuf[s] + i;
            break;
        }
    }
    size_t upto = last_nl ? (size_t)(last_nl - w->outbuf[s]) : 0;
    if (!upto && w->outlen[s] == OUT_MAX) upto = OUT_MAX;
    if (!upto) return;
    forward(n, w, s, w->outbuf[s], upto);
    memmove(w->outbuf[s], w->outbuf[s] + upto, w->outlen[s] - upto);
    w->outlen[s] -= upto;
}

/* ---------------------------------------------------------------- lifecycle */

static void worker_free(mt_worker *w)
{
    free(w->outbuf[0]);
    free(w->outbuf[1]);
    free(w->runtime);
    free(w);
}

/* One of w's handles closed (pipes, process; a forked worker's exit
 * counts as its process handle): free w after the last. */
static void handle_done(mt_node *n, mt_worker *w)
{
    if (--w->open_handles) return;
    if (w->died_at) {
        for (mt_worker **pp = &n->dead_list; *pp; pp = &(*pp)->next) {
            if (*pp == w) {
                *pp = w->next;
                break;
            }
        }
    }
    worker_free(w);
}

static void on_handle_closed(uv_handle_t *h) { handle_done(h->loop->data, h->data); }

static void unlink_worker(mt_node *n, mt_worker *w)
{
    mt_map_del(&n->workers, w->wid.b);
    if (w->prev) w->prev->next = w->next;
    else n->worker_list = w->next;
    if (w->next) w->next->prev = w->prev;
}

static void fail_runtime(mt_node *n, mt_worker *w)
{
    runtime_health *h = health_of(w->runtime);
    if (++h->failures < START_FAILURES_MAX) return;
    mt_error("workers for runtime '%s' keep dying at start: %s", w->runtime, h->last_err);
    /* Tell every requester of this runtime instead of retrying forever. */
    for (mt_client *c = n->clients; c; c = c->next) {
        if (c->role == MANTA__ROLE__ROLE_DRIVER || c->role == MANTA__ROLE__ROLE_WORKER)
            mt_node_warn_client(c, "workers for %s fail to start (exit %d): %s",
                                w->runtime[0] ? w->runtime : "python", w->exit_code, h->last_err);
    }
    h->failures = 0;
}

/* The worker's process is gone (exit code, or -signal). */
static void worker_exited(mt_node *n, mt_worker *w, int code)
{
    w->exit_code = code;
    if (n->gcs) mt_gcs_actor_worker_died(n->gcs, &w->wid, w->exit_code);
    int was = w->state;
    mt_sched_worker_gone(n->sched, &w->lease); /* frees its lease */
    w->state = MT_W_DEAD;
    if (was == MT_W_STARTING && !n->stopping) {
        mt_warn("worker pid %d died while starting (exit %d)", (int)w->pid, w->exit_code);
        fail_runtime(n, w);
    } else {
        mt_debug("worker pid %d exited (%d)", (int)w->pid, w->exit_code);
    }
    Manta__Event ev = MANTA__EVENT__INIT;
    ev.kind = MANTA__EVENT_KIND__EVENT_WORKER_DIED;
    ev.id = MT_BIN(w->wid.b, MT_WORKER_ID_LEN);
    ev.code = w->exit_code;
    ev.reason = w->death_reason ? w->death_reason : MANTA__DEATH_REASON__DEATH_EXITED;
    if (!n->stopping) {
        mt_node_broadcast(n, MANTA__MSG_TYPE__MSG_EVENT, &ev.base);
        mt_cluster_worker_died(n, &ev);
    }
    unlink_worker(n, w);
    if (w->client) w->client->worker = NULL;
    w->client = NULL;
    /* Its pipes close at end-of-file (their last lines still go out), or
     * from the tick if something else holds them open. */
    w->died_at = mt_now_s();
    w->next = n->dead_list;
    n->dead_list = w;
    mt_session_write_pids(n);
    if (!n->stopping) {
        mt_pool_prestart(n);
        mt_sched_dispatch(n->sched);
    }
    if (w->forked) handle_done(n, w); /* last: may free w */
    else uv_close((uv_handle_t *)&w->proc, on_handle_closed);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int signal)
{
    worker_exited(p->loop->data, p->data, signal ? -signal : (int)status);
}

static char *env_kv(const char *k, const char *v)
{
    size_t n = strlen(k) + strlen(v) + 2;
    char *s = mt_malloc(n);
    snprintf(s, n, "%s=%s", k, v);
    return s;
}

/* The environment of a worker: ours, plus where to find the node. */
static char **worker_env(mt_node *n, mt_worker *w)
{
    size_t count = 0;
    while (environ[count]) count++;
    char **env = mt_calloc(count + 16, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        if (!strncmp(environ[i], "MANTA_WORKER", 12) || !strncmp(environ[i], "MANTA_NODE", 10))
            continue;
        env[k++] = mt_strdup(environ[i]);
    }
    char hex[2 * MT_WORKER_ID_LEN + 1], nhex[2 * MT_NODE_ID_LEN + 1], pid[16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    env[k++] = env_kv("MANTA_WORKER", "1");
    if (w) env[k++] = env_kv("MANTA_WORKER_ID", mt_hex(w->wid.b, MT_WORKER_ID_LEN, hex));
    env[k++] = env_kv("MANTA_NODE_ID", mt_hex(n->node_id.b, MT_NODE_ID_LEN, nhex));
    env[k++] = env_kv("MANTA_NODE_SOCKET", n->sock_path);
    env[k++] = env_kv("MANTA_NODE_PID", pid);
    env[k++] = env_kv("MANTA_SESSION_DIR", n->session_dir);
    env[k++] = env_kv("PYTHONUNBUFFERED", "1");
    env[k++] = env_kv("MANTA_WORKER_RUNTIME", w ? w->runtime : "");
    return env;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

/* argv for a runtime: python, the driver's binary, or manta-worker + library. */
static char **worker_argv(mt_node *n, const char *runtime)
{
    char **argv = mt_calloc(6, sizeof *argv);
    if (!runtime[0] && !n->python) {
        free(argv);
        return NULL; /* started by a C program: no interpreter known */
    }
    if (!runtime[0]) {
        int k = 0;
        argv[k++] = mt_strdup(n->python ? n->python : "python3");
        /* -S: skip site (its .pth hooks cost ~0.1 s per start); the node's
         * PYTHONPATH carries the starting interpreter's whole sys.path. */
        if (n->python_no_site) argv[k++] = mt_strdup("-S");
        argv[k++] = mt_strdup("-m");
        argv[k++] = mt_strdup("manta._private.worker_main");
    } else if (!strncmp(runtime, "exe:", 4)) {
        argv[0] = mt_strdup(runtime + 4);
    } else if (!strncmp(runtime, "lib:", 4)) {
        size_t len = strlen(n->bin_dir) + 32;
        argv[0] = mt_malloc(len);
        snprintf(argv[0], len, "%s/manta-worker", n->bin_dir);
        argv[1] = mt_strdup("--library");
        argv[2] = mt_strdup(runtime + 4);
    } else {
        free(argv);
        return NULL;
    }
    return argv;
}

/* ---------------------------------------------------------------- zygote
 *
 * Requests go over a SOCK_SEQPACKET pair, one message each:
 *   node -> zygote  "F<worker id hex>" with the stdout and stderr write ends (SCM_RIGHTS)
 *   zygote -> node  "R"                       ready (imports done)
 *                   "P<worker id hex> <pid>"  forked
 *                   "X<pid> <code>"           a child exited (code, or -signal)
 * The zygote dies with the node (PR_SET_PDEATHSIG) and its children with
 * it; if it dies alone, its workers are killed and reported dead, and the
 * next start forks from a new zygote (or spawns, after three quick deaths). */

static void zyg_closed(uv_handle_t *h)
{
    mt_node *n = h->loop->data;
    if (h == (uv_handle_t *)&n->zyg.proc) n->zyg.open = false;
    else n->zyg.poll_open = false;
}

/* The zygote is gone (exit or its socket closed): so are its workers. */
static void zyg_lost(mt_node *n)
{
    mt_zygote *z = &n->zyg;
    if (z->fd >= 0) {
        uv_poll_stop(&z->poll);
        uv_close((uv_handle_t *)&z->poll, zyg_closed);
        close(z->fd);
        z->fd = -1;
    }
    if (z->running) {
        uv_process_kill(&z->proc, SIGKILL);
        if (mt_now_s() - z->started_at < 5.0) z->quick_deaths++;
    }
    for (mt_worker *w = n->worker_list, *next; w; w = next) {
        next = w->next;
        if (!w->forked || w->state == MT_W_DEAD) continue;
        if (w->pid > 0) kill(w->pid, SIGKILL);
        worker_exited(n, w, -SIGKILL);
    }
}

static void zyg_exit_cb(uv_process_t *p, int64_t status, int signal)
{
    mt_node *n = p->loop->data;
    if (!n->stopping)
        mt_warn("the worker fork server (pid %d) exited (%d)", (int)n->zyg.pid,
                signal ? -signal : (int)status);
    zyg_lost(n);
    n->zyg.running = false;
    uv_close((uv_handle_t *)p, zyg_closed);
}

static mt_worker *worker_by_hex(mt_node *n, const char *hex)
{
    mt_wid wid;
    if (mt_unhex(hex, wid.b, MT_WORKER_ID_LEN)) return NULL;
    return mt_map_get(&n->workers, wid.b);
}

static void zyg_message(mt_node *n, char *msg)
{
    if (msg[0] == 'P') {
        char *sp = strchr(msg, ' ');
        if (!sp) return;
        *sp = '\0';
        mt_worker *w = worker_by_hex(n, msg + 1);
        if (!w || !w->forked || w->state == MT_W_DEAD) return;
        w->pid = (pid_t)atoi(sp + 1);
        if (w->kill_sig) kill(w->pid, w->kill_sig);
        mt_session_write_pids(n);
    } else if (msg[0] == 'X') {
        pid_t pid = (pid_t)atoi(msg + 1);
        char *sp = strchr(msg, ' ');
        int code = sp ? atoi(sp + 1) : -SIGKILL;
        for (mt_worker *w = n->worker_list; w; w = w->next) {
            if (w->forked && w->pid == pid && w->state != MT_W_DEAD) {
                worker_exited(n, w, code);
                break;
            }
        }
    }
}

static void zyg_on_read(uv_poll_t *h, int status, int events)
{
    mt_node *n = h->data;
    MT_UNUSED(events);
    for (;;) {
        char msg[128];
        ssize_t r = status < 0 ? 0 : recv(n->zyg.fd, msg, sizeof msg - 1, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (r <= 0) {
            if (!n->stopping) mt_warn("lost the worker fork server");
            zyg_lost(n);
            if (!n->stopping) mt_sched_dispatch(n->sched);
            return;
        }
        msg[r] = '\0';
        zyg_message(n, msg);
    }
}

static bool zyg_start(mt_node *n)
{
    mt_zygote *z = &n->zyg;
    if (z->fd >= 0 && z->running) return true;
    if (!mt_cfg.zygote || !n->python || n->stopping || z->quick_deaths >= 3 || z->open ||
        z->poll_open)
        return false;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) return false;
    char **argv = mt_calloc(6, sizeof *argv);
    int k = 0;
    argv[k++] = mt_strdup(n->python);
    if (n->python_no_site) argv[k++] = mt_strdup("-S");
    argv[k++] = mt_strdup("-m");
    argv[k++] = mt_strdup("manta._private.zygote");
    char **env = worker_env(n, NULL);
    uv_stdio_container_t stdio[4] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = n->log_fd},
        {.flags = UV_INHERIT_FD, .data.fd = n->log_fd},
        {.flags = UV_INHERIT_FD, .data.fd = sv[1]},
    };
    uv_process_options_t o = {.exit_cb = zyg_exit_cb, .file = argv[0], .args = argv, .env = env,
                              .stdio_count = 4, .stdio = stdio};
    z->proc.data = n;
    int rc = uv_spawn(n->loop, &z->proc, &o);
    free_strv(argv);
    free_strv(env);
    close(sv[1]);
    if (rc) {
        mt_warn("cannot start the worker fork server: %s", uv_strerror(rc));
        close(sv[0]);
        z->quick_deaths = 3;
        return false;
    }
    z->open = z->running = true;
    z->pid = z->proc.pid;
    z->start = 0;
    z->started_at = mt_now_s();
    z->fd = sv[0];
    uv_poll_init(n->loop, &z->poll, z->fd);
    z->poll.data = n;
    z->poll_open = true;
    uv_poll_start(&z->poll, UV_READABLE | UV_DISCONNECT, zyg_on_read);
    mt_session_write_pids(n);
    mt_debug("started the worker fork server, pid %d", (int)z->pid);
    return true;
}

/* Ask the zygote for a worker whose output goes to w's pipes. */
static int zyg_fork(mt_node *n, mt_worker *w)
{
    if (!zyg_start(n)) return -1;
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC)) return -1;
    if (pipe2(err, O_CLOEXEC)) {
        close(out[0]), close(out[1]);
        return -1;
    }
    char msg[2 + 2 * MT_WORKER_ID_LEN];
    msg[0] = 'F';
    mt_hex(w->wid.b, MT_WORKER_ID_LEN, msg + 1);
    int fds[2] = {out[1], err[1]};
    char cbuf[CMSG_SPACE(sizeof fds)];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = msg, .iov_len = 1 + 2 * MT_WORKER_ID_LEN};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cm), fds, sizeof fds);
    ssize_t r = sendmsg(n->zyg.fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    close(out[1]);
    close(err[1]);
    if (r < 0) {
        close(out[0]), close(err[0]);
        return -1;
    }
    uv_pipe_init(n->loop, &w->out, 0);
    uv_pipe_init(n->loop, &w->err, 0);
    uv_pipe_open(&w->out, out[0]);
    uv_pipe_open(&w->err, err[0]);
    w->out.data = w->err.data = w;
    w->open_handles = 3; /* the pipes, and the exit the zygote reports */
    w->forked = true;
    return 0;
}

/* Start w's process directly.  Returns 0; -1 (w untouched: free it); -2
 * (w is freed as its pipes close). */
static int spawn(mt_node *n, mt_worker *w)
{
    char **argv = worker_argv(n, w->runtime);
    if (!argv) {
        mt_warn("unknown worker runtime '%s'", w->runtime);
        return -1;
    }
    char **env = worker_env(n, w);
    uv_pipe_init(n->loop, &w->out, 0);
    uv_pipe_init(n->loop, &w->err, 0);
    w->out.data = w->err.data = w->proc.data = w;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&w->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&w->err},
    };
    uv_process_options_t o = {.exit_cb = on_exit_cb, .file = argv[0], .args = argv, .env = env,
                              .stdio_count = 3, .stdio = stdio};
    int rc = uv_spawn(n->loop, &w->proc, &o);
    free_strv(argv);
    free_strv(env);
    w->open_handles = 2;
    if (rc) {
        mt_error("cannot start worker for '%s': %s", w->runtime, uv_strerror(rc));
        uv_close((uv_handle_t *)&w->out, on_handle_closed);
        uv_close((uv_handle_t *)&w->err, on_handle_closed);
        return -2;
    }
    w->open_handles = 3;
    w->pid = w->proc.pid;
    return 0;
}

mt_worker *mt_pool_start(mt_node *n, const char *runtime, int lang)
{
    mt_worker *w = mt_calloc(1, sizeof *w);
    mt_random_bytes(w->wid.b, sizeof w->wid.b);
    w->runtime = mt_strdup(runtime);
    w->lang = lang;
    w->state = MT_W_STARTING;
    w->started_at = mt_now_s();
    bool forked = !runtime[0] && n->python && mt_cfg.zygote && zyg_fork(n, w) == 0;
    if (!forked) {
        int rc = spawn(n, w);
        if (rc == -1) worker_free(w);
        if (rc) return NULL;
    }
    uv_read_start((uv_stream_t *)&w->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&w->err, on_alloc, on_read);
    mt_map_put(&n->workers, w);
    w->next = n->worker_list;
    if (n->worker_list) n->worker_list->prev = w;
    n->worker_list = w;
    mt_session_write_pids(n);
    mt_debug("started worker pid %d for '%s'%s", (int)w->pid, runtime, forked ? " (fork)" : "");
    return w;
}

/* ---------------------------------------------------------------- queries */

mt_worker *mt_pool_take_idle(mt_node *n, const char *runtime, uint32_t job)
{
    mt_worker *unbound = NULL;
    for (mt_worker *w = n->worker_list; w; w = w->next) {
        if (w->state != MT_W_IDLE || strcmp(w->runtime, runtime) || !w->client) continue;
        if (w->job_id == job) return w;
        if (!w->job_id && !unbound) unbound = w;
    }
    return unbound;
}

int mt_pool_count(mt_node *n, const char *runtime, int state)
{
    int k = 0;
    for (mt_worker *w = n->worker_list; w; w = w->next)
        if (w->state == state && !strcmp(w->runtime, runtime)) k++;
    return k;
}

int mt_pool_task_workers(mt_node *n)
{
    int k = 0;
    for (mt_worker *w = n->worker_list; w; w = w->next)
        if (w->state != MT_W_DEAD && !(w->state == MT_W_LEASED && w->lease.for_actor)) k++;
    return k;
}

int mt_pool_total(mt_node *n)
{
    int k = 0;
    for (mt_worker *w = n->worker_list; w; w = w->next)
        if (w->state != MT_W_DEAD) k++;
    return k;
}

void mt_pool_worker_registered(mt_node *n, mt_worker *w, mt_client *c)
{
    w->client = c;
    w->state = MT_W_IDLE;
    w->idle_since = mt_now_s();
    health_of(w->runtime)->failures = 0;
    MT_UNUSED(n);
}

void mt_pool_kill(mt_node *n, mt_worker *w, int sig)
{
    MT_UNUSED(n);
    if (w->state == MT_W_DEAD) return;
    if (w->forked) {
        if (w->pid > 0) kill(w->pid, sig);
        else w->kill_sig = sig; /* sent once the zygote says which pid it is */
        return;
    }
    if (w->pid <= 0) return;
    uv_process_kill(&w->proc, sig);
}

void mt_pool_kill_job(mt_node *n, uint32_t job)
{
    for (mt_worker *w = n->worker_list; w; w = w->next)
        if (w->job_id == job && !w->lease.detached) mt_pool_kill(n, w, SIGKILL);
}

void mt_pool_kill_all(mt_node *n)
{
    for (mt_worker *w = n->worker_list; w; w = w->next) mt_pool_kill(n, w, SIGKILL);
    if (n->zyg.running) uv_process_kill(&n->zyg.proc, SIGKILL);
}

bool mt_pool_all_closed(mt_node *n)
{
    return n->worker_list == NULL && n->dead_list == NULL && !n->zyg.open && !n->zyg.poll_open;
}

static int prestart_target(mt_node *n)
{
    if (!n->python) return 0;
    if (mt_cfg.prestart_workers >= 0) return (int)mt_cfg.prestart_workers;
    return (int)(mt_res_get(mt_sched_total(n->sched), "CPU") / MT_RES_UNIT);
}

void mt_pool_prestart(mt_node *n)
{
    int target = prestart_target(n);
    int have = 0;
    for (mt_worker *w = n->worker_list; w; w = w->next)
        if (!w->runtime[0] && !w->job_id && (w->state == MT_W_STARTING || w->state == MT_W_IDLE))
            have++;
    if (health_of("")->failures) return; /* do not spin on a broken python */
    for (; have < target && mt_pool_total(n) < 16 + target; have++) mt_pool_start(n, "", 1);
}

/* ---------------------------------------------------------------- memory */

/* Under a container's limit, its usage against that limit (sysmem.h). */
static double memory_used_fraction(void)
{
    int64_t total = mt_mem_total(), avail = mt_mem_available();
    if (total <= 0) return 0;
    return 1.0 - (double)avail / (double)total;
}

bool mt_pool_memory_check(mt_node *n)
{
    static double last_kill;
    double now = mt_now_s();
    if (now - last_kill < 1.0) return false; /* let the last kill free its memory */
    double used = memory_used_fraction();
    if (used <= mt_cfg.memory_usage_threshold) return false;
    /* The newest lease of a task (not an actor): the work least far along,
     * and the likeliest to be retried. */
    mt_worker *victim = NULL;
    for (mt_worker *w = n->worker_list; w; w = w->next) {
        if (w->state != MT_W_LEASED || w->lease.for_actor) continue;
        if (!victim || w->leased_at > victim->leased_at) victim = w;
    }
    if (!victim) return false;
    mt_warn("memory use %.1f%% is above the threshold %.1f%%: killing worker pid %d (newest task)",
            used * 100, mt_cfg.memory_usage_threshold * 100, (int)victim->pid);
    victim->death_reason = MANTA__DEATH_REASON__DEATH_OOM;
    mt_pool_kill(n, victim, SIGKILL);
    last_kill = now;
    return true;
}

/* Kill workers stuck starting, and idle workers beyond what we keep warm. */
void mt_pool_tick(mt_node *n)
{
    double now = mt_now_s();
    double start_limit = (double)mt_cfg.worker_start_timeout_ms / 1000.0;
    int keep = prestart_target(n);
    if (!n->zyg.running && n->python) zyg_start(n); /* replace a zygote that died */
    int idle_python = 0;
    for (mt_worker *w = n->worker_list; w; w = w->next)
        if (w->state == MT_W_IDLE && !w->runtime[0]) idle_python++;
    for (mt_worker *w = n->dead_list; w; w = w->next) {
        if (now - w->died_at < 2.0) continue;
        uv_handle_t *pipes[2] = {(uv_handle_t *)&w->out, (uv_handle_t *)&w->err};
        for (int i = 0; i < 2; i++)
            if (!uv_is_closing(pipes[i])) uv_close(pipes[i], on_handle_closed);
    }
    for (mt_worker *w = n->worker_list; w; w = w->next) {
        if (w->state == MT_W_STARTING && now - w->started_at > start_limit) {
            mt_warn("worker pid %d did not register within %.0f s; killing it", (int)w->pid,
                    start_limit);
            mt_pool_kill(n, w, SIGKILL);
        } else if (w->state == MT_W_IDLE && now - w->idle_since > 10.0) {
            bool python = !w->runtime[0];
            if (python && idle_python <= keep) continue;
            if (python) idle_python--;
            mt_pool_kill(n, w, SIGKILL);
            w->state = MT_W_DEAD; /* not leasable while it goes */
        }
    }
}
