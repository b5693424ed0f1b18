/* gate.h -- accepting connections, and what a peer may do before its Hello
 * is accepted: frames up to hello_frame_bytes, hello_timeout_ms to send
 * it, and at most max_hello_conns such peers per listener.
 *
 * A listener (mt_gate) watches a listening socket on a connection loop and
 * hands each accepted descriptor to its owner, which wraps it in a
 * connection; that connection then waits "at the gate" until the owner
 * calls mt_gate_pass() on a valid Hello.  While as many peers wait as the
 * cap allows, a new peer takes the place of the oldest one if that one has
 * waited 100 ms (an honest peer sends its Hello as it connects); if none
 * has, the listener stops accepting (the kernel's backlog holds the rest)
 * until one passes, is closed or has waited that long.  So peers that
 * connect and say nothing cost a bounded number of descriptors and bytes,
 * for a bounded time, and can neither keep a listener shut (TCP peers that
 * hold every place and fill the backlog) nor one listener's idle peers
 * (TCP) lock out another's (the node's own processes on its unix socket).
 * Everything here runs on the loop thread, with the loop's guard held
 * around the callbacks. */
#ifndef MT_GATE_H
#define MT_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "conn.h"

typedef struct mt_gate mt_gate;

/* Wrap an accepted descriptor (non-blocking, close-on-exec; ownership
 * passes) in a connection that is not started yet, or close it and return
 * NULL to refuse the peer. */
typedef mt_conn *(*mt_gate_accept_cb)(mt_gate *g, int fd, void *ud);

struct mt_gate {
    mt_conn_loop *cl;
    int fd;                /* the listening socket (owned by the caller) */
    uv_poll_t poll;
    uv_timer_t resume;     /* paused: when the oldest waiting peer may be dropped */
    bool open;             /* poll initialized, not stopped for good */
    bool paused;           /* at the cap, all waiting peers young: not watching fd */
    size_t waiting;        /* accepted here, still at the gate */
    mt_gate_accept_cb on_accept;
    void *ud;
};

/* Watch listening socket `fd` on loop `cl`.  0 or MANTA_ESYS. */
int mt_gate_start(mt_gate *g, mt_conn_loop *cl, int fd, mt_gate_accept_cb on_accept, void *ud);
/* Stop accepting for good.  The descriptor stays the caller's to close, and
 * the poll and timer handles are left to the uv_walk that closes the loop's
 * handles. */
void mt_gate_stop(mt_gate *g);
/* c's Hello was accepted: from now on it may send frames up to
 * max_frame_bytes (checked from the frame after the Hello on) and stay
 * silent as long as it likes. */
void mt_gate_pass(mt_conn *c);
/* Whether c still waits for its Hello. */
static inline bool mt_gate_waiting(const mt_conn *c) { return c->gate != NULL; }

/* For conn.c: the loop's deadline timer and reserve descriptor; c is
 * closing (it leaves the gate); why a waiting peer was dropped (logged at
 * most once per 10 s with a count of the rest: a flood of bad peers must
 * not flood the log or, through a worker's stderr, the user's console). */
int mt_gate_loop_init(mt_conn_loop *l);
void mt_gate_loop_close(mt_conn_loop *l);
void mt_gate_leave(mt_conn *c);
void mt_gate_log_drop(mt_conn_loop *l, const char *desc, const char *why);

#endif
