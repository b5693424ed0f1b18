/* conn.h -- a framed, non-blocking connection driven by a libuv loop.
 *
 * The loop thread reads: every whole frame is handed to on_frame with its
 * payload pointing into the input buffer (valid during the call).  Any
 * thread may queue frames with mt_conn_send() and push them out with
 * mt_conn_flush(), provided the caller serialises access to the connection
 * (the daemon is single-threaded; a client runtime holds its mutex).  A
 * flush that cannot finish asks the loop thread to watch for writability
 * through the loop's mt_conn_loop (wake hook). */
#ifndef MT_CONN_H
#define MT_CONN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "wire.h"

typedef struct mt_conn mt_conn;
typedef struct mt_conn_loop mt_conn_loop;
struct mt_gate;

/* Handlers run on the loop thread.  on_frame returns 0, or an error to close
 * the connection (the reason is logged).  on_close runs exactly once, after
 * which the connection must not be used; it is freed when the handler
 * returns (unless held with mt_conn_ref). */
typedef int (*mt_conn_frame_cb)(mt_conn *c, const mt_frame *f, void *ud);
typedef void (*mt_conn_close_cb)(mt_conn *c, int reason, void *ud);

/* Per-loop context: lets other threads ask the loop to watch a connection
 * for writability.  Create it on the loop thread. */
struct mt_conn_loop {
    uv_loop_t *loop;
    pthread_t thread;
    uv_async_t async;
    pthread_mutex_t mu;
    mt_conn **pending; /* connections waiting for a write watch */
    size_t npending, cap;
    void (*on_wake)(mt_conn_loop *l); /* optional: extra work when woken */
    void *data;
    /* Optional: held around every callback on the loop thread, so that
     * other threads holding it may use connections safely. */
    pthread_mutex_t *guard;
    /* Accepted peers waiting for their Hello, oldest first, and what the
     * gate needs besides (gate.c). */
    mt_conn *gate_head, *gate_tail;
    uv_timer_t gate_timer;
    bool gate_timer_open;
    int reserve_fd;        /* spent to refuse a peer when out of descriptors */
    double drop_quiet_until;
    unsigned drops_quiet;  /* dropped peers not logged since the last line */
};

int mt_conn_loop_init(mt_conn_loop *l, uv_loop_t *loop);
void mt_conn_loop_close(mt_conn_loop *l);
bool mt_conn_loop_is_mine(const mt_conn_loop *l);
/* Wake the loop thread (runs on_wake there). */
void mt_conn_loop_wake(mt_conn_loop *l);

struct mt_conn {
    int fd;
    uv_poll_t poll;
    mt_conn_loop *cl;
    mt_buf in, out;
    size_t max_frame;
    mt_conn_frame_cb on_frame;
    mt_conn_close_cb on_close;
    void *ud;
    int refs;
    bool closing;      /* mt_conn_close called */
    bool watching_out; /* POLLOUT requested */
    bool accepted;     /* came through a listener: a server's end */
    bool holding;      /* accepted, its replies back up: not reading it */
    bool watch_queued; /* sits in cl->pending */
    bool in_dispatch;
    bool is_unix;
    bool connecting;   /* made by mt_conn_connect, nothing written yet */
    char desc[64];     /* for logs: "driver 1234" */
    void *tag;         /* the owner's per-connection data */
    uint64_t frames_in, frames_out;
    struct mt_gate *gate;  /* the listener it waits at for its Hello, or NULL */
    double gate_deadline;
    mt_conn *gate_next, *gate_prev;
};

/* Wrap a connected non-blocking fd (ownership passes to the connection). */
mt_conn *mt_conn_new(mt_conn_loop *cl, int fd, mt_conn_frame_cb on_frame,
                     mt_conn_close_cb on_close, void *ud);
/* Connect to an endpoint without blocking the loop (mt_sock_connect_start,
 * giving up after connect_timeout_ms) and wrap the socket: frames may be
 * queued at once and leave when the connection is up; a connection that
 * cannot be made closes like a broken one.  Errors known at once are
 * returned and no connection is made. */
int mt_conn_connect(mt_conn_loop *cl, const char *endpoint, mt_conn_frame_cb on_frame,
                    mt_conn_close_cb on_close, void *ud, mt_conn **out);
/* Start reading.  Must run on the loop thread. */
int mt_conn_start(mt_conn *c);
/* Queue a frame (not yet written). */
void mt_conn_send(mt_conn *c, uint16_t type, const ProtobufCMessage *msg);
void mt_conn_send_raw(mt_conn *c, uint16_t type, const void *payload, size_t n);
/* Write queued bytes now as far as the socket takes them.  Returns 0, or an
 * error when the connection is broken (it will be closed by the loop). */
int mt_conn_flush(mt_conn *c);
static inline void mt_conn_send_now(mt_conn *c, uint16_t type, const ProtobufCMessage *msg)
{
    mt_conn_send(c, type, msg);
    mt_conn_flush(c);
}
/* Close: stop reading, drop unsent bytes (after a final best-effort flush),
 * call on_close.  Safe from handlers; must run on the loop thread. */
void mt_conn_close(mt_conn *c, int reason);
void mt_conn_ref(mt_conn *c);
void mt_conn_unref(mt_conn *c);
/* Bytes queued but not written. */
static inline size_t mt_conn_pending(const mt_conn *c) { return mt_buf_avail(&c->out); }

#endif
