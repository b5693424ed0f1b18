/* conn.c -- framed connections over libuv poll handles.
 *
 * We poll raw fds instead of using uv_stream_t because writes must be
 * possible from threads other than the loop's (a client's calling thread
 * writes a task straight to the worker's socket), which uv_write forbids. */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "gate.h"
#include "mt.h"
#include "sock.h"

/* ---------------------------------------------------------------- loop */

static void update_watch(mt_conn *c);

static void on_async(uv_async_t *h)
{
    mt_conn_loop *l = h->data;
    if (l->guard) pthread_mutex_lock(l->guard);
    pthread_mutex_lock(&l->mu);
    mt_conn **list = l->pending;
    size_t n = l->npending;
    l->pending = NULL;
    l->npending = l->cap = 0;
    pthread_mutex_unlock(&l->mu);
    for (size_t i = 0; i < n; i++) {
        list[i]->watch_queued = false;
        update_watch(list[i]);
        mt_conn_unref(list[i]);
    }
    free(list);
    if (l->on_wake) l->on_wake(l);
    if (l->guard) pthread_mutex_unlock(l->guard);
}

int mt_conn_loop_init(mt_conn_loop *l, uv_loop_t *loop)
{
    memset(l, 0, sizeof *l);
    l->loop = loop;
    l->thread = pthread_self();
    pthread_mutex_init(&l->mu, NULL);
    l->async.data = l;
    l->reserve_fd = -1;
    int rc = uv_async_init(loop, &l->async, on_async);
    if (rc) return mt_err(MANTA_ESYS, "uv_async_init: %s", uv_strerror(rc));
    return mt_gate_loop_init(l);
}

void mt_conn_loop_close(mt_conn_loop *l)
{
    if (!uv_is_closing((uv_handle_t *)&l->async)) uv_close((uv_handle_t *)&l->async, NULL);
    mt_gate_loop_close(l);
    for (size_t i = 0; i < l->npending; i++) mt_conn_unref(l->pending[i]);
    free(l->pending);
    l->pending = NULL;
    l->npending = 0;
}

bool mt_conn_loop_is_mine(const mt_conn_loop *l) { return pthread_equal(pthread_self(), l->thread); }

void mt_conn_loop_wake(mt_conn_loop *l) { uv_async_send(&l->async); }

/* ---------------------------------------------------------------- conn */

static void on_poll(uv_poll_t *h, int status, int events);

mt_conn *mt_conn_new(mt_conn_loop *cl, int fd, mt_conn_frame_cb on_frame,
                     mt_conn_close_cb on_close, void *ud)
{
    mt_conn *c = mt_calloc(1, sizeof *c);
    c->fd = fd;
    c->cl = cl;
    c->on_frame = on_frame;
    c->on_close = on_close;
    c->ud = ud;
    c->refs = 1;
    c->max_frame = (size_t)mt_cfg_max_frame();
    mt_buf_init(&c->in);
    mt_buf_init(&c->out);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    c->is_unix = getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_UNIX;
    snprintf(c->desc, sizeof c->desc, "fd %d", fd);
    return c;
}

int mt_conn_connect(mt_conn_loop *cl, const char *endpoint, mt_conn_frame_cb on_frame,
                    mt_conn_close_cb on_close, void *ud, mt_conn **out)
{
    int fd;
    int rc = mt_sock_connect_start(endpoint, mt_cfg.connect_timeout_ms, &fd);
    if (rc) return rc;
    mt_conn *c = mt_conn_new(cl, fd, on_frame, on_close, ud);
    c->connecting = !c->is_unix;
    *out = c;
    return 0;
}

int mt_conn_start(mt_conn *c)
{
    c->poll.data = c;
    int rc = uv_poll_init(c->cl->loop, &c->poll, c->fd);
    if (rc) return mt_err(MANTA_ESYS, "uv_poll_init: %s", uv_strerror(rc));
    mt_conn_ref(c); /* held by the poll handle until it is closed */
    update_watch(c);
    return 0;
}

void mt_conn_ref(mt_conn *c) { __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED); }

void mt_conn_unref(mt_conn *c)
{
    if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL)) return;
    mt_buf_free(&c->in);
    mt_buf_free(&c->out);
    if (c->fd >= 0) close(c->fd);
    free(c);
}

/* Whether to stop reading c: a peer we accepted that sends requests and
 * never reads the replies would have us queue them without bound.  Only
 * the accepting end holds back, and the connecting end always reads, so
 * two processes never wait for each other to read. */
static bool should_hold(const mt_conn *c)
{
    return c->accepted && mt_cfg.max_reply_backlog_bytes > 0 &&
           mt_buf_avail(&c->out) > (uint64_t)mt_cfg.max_reply_backlog_bytes;
}

static void update_watch(mt_conn *c)
{
    if (c->closing || !c->poll.data) return;
    c->holding = should_hold(c);
    int ev = UV_DISCONNECT | (c->holding ? 0 : UV_READABLE);
    c->watching_out = mt_buf_avail(&c->out) > 0;
    if (c->watching_out) ev |= UV_WRITABLE;
    uv_poll_start(&c->poll, ev, on_poll);
}

void mt_conn_send(mt_conn *c, uint16_t type, const ProtobufCMessage *msg)
{
    mt_wire_append(&c->out, type, msg);
    c->frames_out++;
}

void mt_conn_send_raw(mt_conn *c, uint16_t type, const void *payload, size_t n)
{
    mt_wire_append_raw(&c->out, type, payload, n);
    c->frames_out++;
}

static void request_watch(mt_conn *c)
{
    if (mt_conn_loop_is_mine(c->cl)) {
        if (!c->watching_out) update_watch(c);
        return;
    }
    if (c->watch_queued) return;
    mt_conn_loop *l = c->cl;
    c->watch_queued = true;
    mt_conn_ref(c);
    pthread_mutex_lock(&l->mu);
    if (l->npending == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->pending = mt_realloc(l->pending, l->cap * sizeof *l->pending);
    }
    l->pending[l->npending++] = c;
    pthread_mutex_unlock(&l->mu);
    uv_async_send(&l->async);
}

int mt_conn_flush(mt_conn *c)
{
    if (c->closing) return MANTA_ECONN;
    while (mt_buf_avail(&c->out) > 0) {
        ssize_t w = send(c->fd, mt_buf_head(&c->out), mt_buf_avail(&c->out), MSG_NOSIGNAL);
        if (w > 0) {
            if (MT_UNLIKELY(c->connecting)) {
                c->connecting = false;
                mt_sock_connected(c->fd);
            }
            mt_buf_consume(&c->out, (size_t)w);
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) {
            request_watch(c);
            return 0;
        }
        /* Broken: let the loop notice (it gets POLLERR/HUP) and close. */
        request_watch(c);
        return MANTA_ECONN;
    }
    if (c->watching_out && mt_conn_loop_is_mine(c->cl)) update_watch(c);
    if (c->out.cap > (1u << 20)) mt_buf_reset(&c->out, 1u << 20);
    return 0;
}

static void on_poll_closed(uv_handle_t *h)
{
    mt_conn *c = h->data;
    mt_conn_unref(c);
}

void mt_conn_close(mt_conn *c, int reason)
{
    if (c->closing) return;
    if (reason == 0) mt_conn_flush(c);
    c->closing = true;
    mt_gate_leave(c);
    if (c->poll.data) {
        uv_poll_stop(&c->poll);
        uv_close((uv_handle_t *)&c->poll, on_poll_closed);
    }
    shutdown(c->fd, SHUT_RDWR);
    if (c->on_close) c->on_close(c, reason, c->ud);
}

/* Parse and dispatch every whole frame in the input buffer. */
static int dispatch(mt_conn *c)
{
    c->in_dispatch = true;
    int rc = 0;
    while (!c->closing && mt_buf_avail(&c->in) >= MT_FRAME_HDR) {
        mt_frame f;
        rc = mt_wire_peek(mt_buf_head(&c->in), mt_buf_avail(&c->in), c->max_frame, &f);
        if (rc <= 0) break;
        c->frames_in++;
        rc = c->on_frame(c, &f, c->ud);
        if (c->closing) break;
        mt_buf_consume(&c->in, MT_FRAME_HDR + f.len);
        if (rc) break;
    }
    c->in_dispatch = false;
    return rc < 0 ? rc : 0;
}

static int read_some(mt_conn *c)
{
    /* Fairness: at most 4 MiB per wake, then let other connections run.  A
     * peer at the gate gets one Hello's worth until its Hello is checked. */
    size_t budget = mt_gate_waiting(c) ? c->max_frame + MT_FRAME_HDR : 4u << 20;
    while (budget > 0) {
        size_t want = budget < 64 * 1024 ? budget : 64 * 1024;
        mt_frame f;
        if (mt_buf_avail(&c->in) >= MT_FRAME_HDR) {
            int prc = mt_wire_peek(mt_buf_head(&c->in), mt_buf_avail(&c->in), c->max_frame, &f);
            if (prc < 0) return 0; /* a bad header: dispatch reports it, read no more */
            if (prc == 0 && MT_FRAME_HDR + f.len - mt_buf_avail(&c->in) > want)
                want = MT_FRAME_HDR + f.len - mt_buf_avail(&c->in); /* a large frame in one go */
        }
        uint8_t *w = mt_buf_reserve(&c->in, want);
        ssize_t r = read(c->fd, w, want);
        if (r > 0) {
            c->in.len += (size_t)r;
            budget = (size_t)r >= budget ? 0 : budget - (size_t)r;
            if ((size_t)r < want) return 0;
            continue;
        }
        if (r == 0) return mt_err(MANTA_ECONN, "peer closed the connection");
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return 0;
        return mt_err(MANTA_ECONN, "read: %s", strerror(errno));
    }
    return 0;
}

static void on_poll_locked(mt_conn *c, int status, int events);

static void on_poll(uv_poll_t *h, int status, int events)
{
    mt_conn *c = h->data;
    pthread_mutex_t *guard = c->cl->guard;
    if (guard) pthread_mutex_lock(guard);
    if (!c->closing) on_poll_locked(c, status, events);
    if (guard) pthread_mutex_unlock(guard);
}

static void on_poll_locked(mt_conn *c, int status, int events)
{
    mt_conn_ref(c);
    int rc = 0;
    if (status < 0 && c->connecting) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        rc = mt_err(MANTA_ECONN, "cannot connect: %s", strerror(soerr ? soerr : ECONNREFUSED));
    } else if (status < 0) {
        rc = mt_err(MANTA_ECONN, "poll: %s", uv_strerror(status));
    }
    if (!rc && (events & UV_WRITABLE)) rc = mt_conn_flush(c);
    /* Held, it is still read when it hangs up (to see the end, not spin). */
    if (!rc && ((events & UV_DISCONNECT) || (!c->holding && (events & UV_READABLE)))) {
        int rrc = read_some(c);
        rc = dispatch(c);
        if (!rc) rc = rrc;
    }
    if (!rc && !c->closing && mt_buf_avail(&c->in) >= MT_FRAME_HDR) {
        mt_frame f;
        rc = mt_wire_peek(mt_buf_head(&c->in), mt_buf_avail(&c->in), c->max_frame, &f);
        if (rc > 0) rc = 0;
    }
    if (rc && !c->closing) {
        if (rc != MANTA_ECONN && mt_gate_waiting(c))
            mt_gate_log_drop(c->cl, c->desc, manta_last_error());
        else if (rc != MANTA_ECONN)
            mt_warn("closing %s: %s (%s)", c->desc, manta_strerror(rc), manta_last_error());
        else
            mt_debug("closing %s: %s", c->desc, manta_last_error());
        mt_conn_close(c, rc);
    } else if (!c->closing && (c->watching_out != (mt_buf_avail(&c->out) > 0) ||
                               c->holding != should_hold(c))) {
        update_watch(c);
    }
    if (c->in.cap > (4u << 20) && mt_buf_avail(&c->in) == 0) mt_buf_reset(&c->in, 0);
    mt_conn_unref(c);
}
