/* gate.c -- listeners, and the limits on peers that have not sent a valid
 * Hello yet (see gate.h for the rules and why). */
#include "gate.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "mt.h"
#include "sock.h"

/* ---------------------------------------------------------------- log */

void mt_gate_log_drop(mt_conn_loop *l, const char *desc, const char *why)
{
    double now = mt_now_s();
    if (now < l->drop_quiet_until) {
        l->drops_quiet++;
        return;
    }
    if (l->drops_quiet)
        mt_warn("dropping %s: %s (and %u more peers dropped before their Hello in the last 10 s)",
                desc, why, l->drops_quiet);
    else
        mt_warn("dropping %s: %s", desc, why);
    l->drops_quiet = 0;
    l->drop_quiet_until = now + 10;
}

/* ---------------------------------------------------------------- deadlines */

static void on_deadline(uv_timer_t *t);

/* The timer fires at the oldest waiting peer's deadline (they all wait the
 * same time, so the list is in deadline order). */
static void arm(mt_conn_loop *l)
{
    if (!l->gate_head) {
        uv_timer_stop(&l->gate_timer);
        return;
    }
    double left = l->gate_head->gate_deadline - mt_now_s();
    uv_timer_start(&l->gate_timer, on_deadline, left > 0 ? (uint64_t)(left * 1000) + 1 : 0, 0);
}

/* Close every waiting peer whose deadline passed (they sit oldest first). */
static void on_deadline(uv_timer_t *t)
{
    mt_conn_loop *l = t->data;
    if (l->guard) pthread_mutex_lock(l->guard);
    double now = mt_now_s();
    char why[64];
    snprintf(why, sizeof why, "no Hello within %lld ms", (long long)mt_cfg.hello_timeout_ms);
    while (l->gate_head && l->gate_head->gate_deadline <= now) {
        mt_conn *c = l->gate_head;
        mt_gate_log_drop(l, c->desc, why);
        mt_conn_close(c, MANTA_ETIMEDOUT); /* leaves the gate */
    }
    arm(l);
    if (l->guard) pthread_mutex_unlock(l->guard);
}

int mt_gate_loop_init(mt_conn_loop *l)
{
    l->gate_timer.data = l;
    int rc = uv_timer_init(l->loop, &l->gate_timer);
    if (rc) return mt_err(MANTA_ESYS, "uv_timer_init: %s", uv_strerror(rc));
    l->gate_timer_open = true;
    /* Spent to take a peer off the backlog when we are out of descriptors. */
    l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return 0;
}

void mt_gate_loop_close(mt_conn_loop *l)
{
    if (l->gate_timer_open && !uv_is_closing((uv_handle_t *)&l->gate_timer))
        uv_close((uv_handle_t *)&l->gate_timer, NULL);
    if (l->reserve_fd >= 0) close(l->reserve_fd);
    l->reserve_fd = -1;
}

/* ---------------------------------------------------------------- waiting peers */

/* Peers one listener lets wait at once (at least one, or none would ever
 * get in). */
static size_t cap(void) { return mt_cfg.max_hello_conns > 0 ? (size_t)mt_cfg.max_hello_conns : 1; }

static void on_listen(uv_poll_t *h, int status, int events);

static void watch(mt_gate *g, bool on)
{
    if (!g->open) return;
    g->paused = !on;
    if (on) uv_poll_start(&g->poll, UV_READABLE, on_listen);
    else uv_poll_stop(&g->poll);
    if (on) uv_timer_stop(&g->resume);
}

static void on_resume(uv_timer_t *t)
{
    mt_gate *g = t->data;
    mt_conn_loop *l = g->cl;
    if (l->guard) pthread_mutex_lock(l->guard);
    if (l->reserve_fd < 0) l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (g->paused) watch(g, true);
    if (l->guard) pthread_mutex_unlock(l->guard);
}

/* A peer that has waited this long without a Hello may be dropped to let a
 * new one in when the listener is full.  Our own clients send their Hello
 * as they connect; a peer holding its place silently would otherwise keep
 * the listener shut to everyone (the backlog is FIFO: one peer that keeps
 * it full locks all others out for good). */
#define GATE_GRACE_S 0.1

/* At the cap: this listener's oldest waiting peer if it has had its grace
 * (to drop once a new peer is taken), or NULL having stopped accepting
 * until it has (or someone leaves). */
static mt_conn *give_way(mt_gate *g)
{
    mt_conn *old = g->cl->gate_head;
    while (old && old->gate != g) old = old->gate_next;
    if (!old) return NULL;
    double waited = mt_now_s() - (old->gate_deadline - (double)mt_cfg.hello_timeout_ms / 1000.0);
    if (waited >= GATE_GRACE_S) return old;
    watch(g, false);
    uv_timer_start(&g->resume, on_resume, (uint64_t)((GATE_GRACE_S - waited) * 1000) + 1, 0);
    return NULL;
}

void mt_gate_leave(mt_conn *c)
{
    mt_gate *g = c->gate;
    if (!g) return;
    mt_conn_loop *l = c->cl;
    if (c->gate_prev) c->gate_prev->gate_next = c->gate_next;
    else l->gate_head = c->gate_next;
    if (c->gate_next) c->gate_next->gate_prev = c->gate_prev;
    else l->gate_tail = c->gate_prev;
    c->gate = NULL;
    c->gate_next = c->gate_prev = NULL;
    g->waiting--;
    /* The timer may fire for a peer that left; it then re-arms itself. */
    if (g->paused && g->waiting < cap()) watch(g, true);
}

void mt_gate_pass(mt_conn *c)
{
    mt_gate_leave(c);
    c->max_frame = (size_t)mt_cfg_max_frame();
}

static void enter(mt_gate *g, mt_conn *c)
{
    mt_conn_loop *l = g->cl;
    c->gate = g;
    c->accepted = true;
    c->max_frame = mt_cfg.hello_frame_bytes > 0 ? (size_t)mt_cfg.hello_frame_bytes : 0;
    c->gate_deadline = mt_now_s() + (double)mt_cfg.hello_timeout_ms / 1000.0;
    c->gate_prev = l->gate_tail;
    c->gate_next = NULL;
    if (l->gate_tail) l->gate_tail->gate_next = c;
    else l->gate_head = c;
    l->gate_tail = c;
    if (l->gate_head == c) arm(l);
    g->waiting++;
}

/* ---------------------------------------------------------------- accepting */

/* Out of descriptors, a waiting peer would stay in the backlog and the
 * listener readable: the loop would spin.  Take it with the reserve
 * descriptor and hang up on it.  Whether one was taken. */
static bool refuse_one(mt_gate *g)
{
    mt_conn_loop *l = g->cl;
    if (l->reserve_fd < 0) return false;
    close(l->reserve_fd);
    int fd = mt_sock_accept(g->fd);
    int err = errno;
    if (fd >= 0) close(fd);
    /* The number just freed is the lowest, so it comes back to us (the
     * daemon has one thread; a client's other threads rarely race it, and
     * if one does, the listener backs off and takes one again later). */
    l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errno = err;
        return false;
    }
    mt_gate_log_drop(l, "a connecting peer", "this process is out of descriptors");
    return true;
}

/* Accept one waiting peer: its fd, or minus the errno of accept() (EAGAIN
 * when none waits). */
static int take(mt_gate *g)
{
    for (;;) {
        int fd = mt_sock_accept(g->fd);
        if (fd >= 0) return fd;
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if ((errno == EMFILE || errno == ENFILE) && refuse_one(g)) continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

/* accept() failed in a way that accepting again at once will not fix (out
 * of descriptors with no reserve to refuse with -- another thread of a
 * client took its number --, out of memory): the listener stays readable,
 * so stop watching it for a while rather than spin on it. */
static void back_off(mt_gate *g, int err)
{
    mt_debug("accept on fd %d: %s; pausing the listener", g->fd, strerror(err));
    watch(g, false);
    uv_timer_start(&g->resume, on_resume, (uint64_t)(GATE_GRACE_S * 1000), 0);
}

static void on_listen(uv_poll_t *h, int status, int events)
{
    mt_gate *g = h->data;
    mt_conn_loop *l = g->cl;
    MT_UNUSED(status), MT_UNUSED(events);
    if (l->guard) pthread_mutex_lock(l->guard);
    /* At most half the cap per wake: a peer accepted now is then still
     * waiting (not dropped for room) when its Hello is read next wake. */
    for (size_t n = 0; g->open && !g->paused && n < (cap() + 1) / 2; n++) {
        mt_conn *old = NULL;
        if (g->waiting >= cap() && !(old = give_way(g))) break;
        int fd = take(g);
        if (fd < 0) {
            if (fd != -EAGAIN) back_off(g, -fd);
            break;
        }
        if (old) {
            mt_gate_log_drop(l, old->desc, "no Hello yet, and a new peer waits at a full listener");
            mt_conn_close(old, MANTA_ETIMEDOUT); /* leaves the gate */
        }
        mt_conn *c = g->on_accept(g, fd, g->ud);
        if (!c) continue;
        enter(g, c);
        if (mt_conn_start(c)) mt_conn_close(c, MANTA_ESYS);
    }
    if (l->guard) pthread_mutex_unlock(l->guard);
}

int mt_gate_start(mt_gate *g, mt_conn_loop *cl, int fd, mt_gate_accept_cb on_accept, void *ud)
{
    memset(g, 0, sizeof *g);
    g->cl = cl;
    g->fd = fd;
    g->on_accept = on_accept;
    g->ud = ud;
    g->poll.data = g;
    g->resume.data = g;
    int rc = uv_timer_init(cl->loop, &g->resume);
    if (rc) return mt_err(MANTA_ESYS, "uv_timer_init: %s", uv_strerror(rc));
    rc = uv_poll_init(cl->loop, &g->poll, fd);
    if (rc) return mt_err(MANTA_ESYS, "uv_poll_init: %s", uv_strerror(rc));
    g->open = true;
    watch(g, true);
    return 0;
}

void mt_gate_stop(mt_gate *g)
{
    if (!g->open) return;
    g->open = false;
    uv_poll_stop(&g->poll);
    uv_timer_stop(&g->resume);
}
