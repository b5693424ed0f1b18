/* memnode.h -- a node daemon built in memory, for the C unit tests and the
 * fuzz_node target: its store, scheduler, pool, cluster tables and (on the
 * head) control store on a libuv loop, with no listener, no process and no
 * network.  Clients are handed in as one end of a socketpair
 * (mt_node_add_client).
 *
 * Programs that use it link with -Wl,--wrap=uv_spawn -Wl,--wrap=kill:
 * spawning a worker fails, and signalling any process but this one aborts,
 * since nothing a test does makes a process the daemon may signal. */
#ifndef MT_MEMNODE_H
#define MT_MEMNODE_H

#include <stdbool.h>
#include <stdint.h>

#include "node.h"

/* Build node `n` on `loop` (both owned by the caller, `n` zeroed here):
 * the head if `head`, with id bytes all `id_byte`; resources CPU 4, GPU 2,
 * memory, object_store_memory, node:127.0.0.1 and custom 3 (and
 * node:__internal_head__ on the head).  Its session files go to
 * `session_dir` (created).  A node that is not the head joins n->join,
 * which the caller sets first; 0 or the join's error. */
int memnode_new(mt_node *n, uv_loop_t *loop, bool head, uint8_t id_byte, const char *session_dir);
/* Stop and free the node and close its loop.  The caller closes its ends
 * of the node's connections first, and runs the loop once so that the node
 * sees them go. */
void memnode_free(mt_node *n);
/* The node's periodic work, once (what its tick timer runs). */
void memnode_tick(mt_node *n);

#endif
