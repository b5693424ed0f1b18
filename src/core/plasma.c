/* plasma.c -- the client side of the node's object store: mapping it,
 * create, seal, get (pin and map in place), release and free.  The store is
 * mapped once at connect; a value from the store is a pointer into that
 * mapping, and its pin is released through a queue of its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "checked.h"
#include "config.h"
#include "plasma.h"
#include "mt.h"

int mt_plasma_live_values;

/* ---------------------------------------------------------------- mapping */

int mt_plasma_map(mt_core *c, int shm_fd, uint64_t size)
{
    if (shm_fd < 0) return mt_err(MANTA_ECONN, "the node did not pass its store");
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, shm_fd, 0);
    close(shm_fd);
    if (p == MAP_FAILED) return mt_err_sys("mmap store");
    c->shm = p;
    c->shm_size = size;
    return 0;
}

void mt_plasma_unmap(mt_core *c)
{
    /* Values read from the store may still be alive (a numpy array the user
     * kept): then the mapping stays, so they stay valid. */
    if (c->shm && __atomic_load_n(&mt_plasma_live_values, __ATOMIC_ACQUIRE) == 0)
        munmap(c->shm, c->shm_size);
}

/* ---------------------------------------------------------------- releases */

/* Store pins dropped by mt_value_unref wait here (their own lock: unref may
 * run with or without the runtime lock) until the I/O thread sends them. */
static pthread_mutex_t release_mu = PTHREAD_MUTEX_INITIALIZER;
static mt_oid *release_q;
static size_t release_n, release_cap;
static mt_core *release_core;

static void queue_release(mt_core *c, const mt_oid *id)
{
    __atomic_sub_fetch(&mt_plasma_live_values, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&release_mu);
    if (c == release_core) {
        if (release_n == release_cap) {
            release_cap = release_cap ? release_cap * 2 : 64;
            release_q = mt_realloc(release_q, release_cap * sizeof *release_q);
        }
        release_q[release_n++] = *id;
    }
    pthread_mutex_unlock(&release_mu);
    if (c == release_core) mt_conn_loop_wake(&c->cl);
}

void mt_plasma_start_releases(mt_core *c)
{
    pthread_mutex_lock(&release_mu);
    release_core = c;
    pthread_mutex_unlock(&release_mu);
    mt_value_release_hook = queue_release;
}

void mt_plasma_stop_releases(mt_core *c)
{
    pthread_mutex_lock(&release_mu);
    if (release_core == c) {
        release_core = NULL;
        free(release_q);
        release_q = NULL;
        release_n = release_cap = 0;
    }
    pthread_mutex_unlock(&release_mu);
}

void do_plasma_flush_releases(mt_core *c)
{
    pthread_mutex_lock(&release_mu);
    mt_oid *q = release_q;
    size_t n = release_n;
    release_q = NULL;
    release_n = release_cap = 0;
    pthread_mutex_unlock(&release_mu);
    if (!n) return;
    if (c->daemon) {
        Manta__ObjRelease m = MANTA__OBJ_RELEASE__INIT;
        ProtobufCBinaryData *ids = mt_calloc(n, sizeof *ids);
        for (size_t i = 0; i < n; i++) ids[i] = MT_BIN(q[i].b, MT_OBJECT_ID_LEN);
        m.object_ids = ids;
        m.n_object_ids = n;
        do_loop_send_daemon(c, MANTA__MSG_TYPE__MSG_OBJ_RELEASE, &m.base);
        free(ids);
    }
    free(q);
}

/* ---------------------------------------------------------------- objects */

mt_value *do_plasma_value(mt_core *c, const mt_oid *id, uint64_t offset, uint64_t size)
{
    mt_value *v = mt_calloc(1, sizeof *v);
    v->refs = 1;
    v->kind = MT_VAL_PLASMA;
    v->data = c->shm + offset;
    v->size = size;
    v->core = c;
    v->id = *id;
    __atomic_add_fetch(&mt_plasma_live_values, 1, __ATOMIC_RELAXED);
    return v;
}

static bool in_store(mt_core *c, uint64_t offset, uint64_t size)
{
    return mt_span_ok(offset, size, c->shm_size);
}

int do_plasma_create(mt_core *c, const mt_oid *id, uint64_t size, const mt_wid *owner,
                     const mt_nid *owner_node, const char *owner_ep, uint8_t **data)
{
    Manta__ObjCreate m = MANTA__OBJ_CREATE__INIT;
    Manta__Address a = MANTA__ADDRESS__INIT;
    a.worker_id = MT_BIN(owner->b, MT_WORKER_ID_LEN);
    a.node_id = MT_BIN(owner_node->b, MT_NODE_ID_LEN);
    a.endpoint = (char *)(owner_ep ? owner_ep : "");
    m.object_id = MT_BIN(id->b, MT_OBJECT_ID_LEN);
    m.size = size;
    m.owner = &a;
    double deadline = mt_now_s() + (double)mt_cfg.store_full_wait_ms / 1000.0 + 30;
    Manta__ObjCreateReply *rep;
    int rc = do_loop_rpc_call(c, c->daemon, MANTA__MSG_TYPE__MSG_OBJ_CREATE, &m.base, &m.request_id,
                         deadline, &manta__obj_create_reply__descriptor, &rep);
    if (rc) return rc == MANTA_ETIMEDOUT ? mt_err(rc, "the store did not answer") : rc;
    rc = rep->status;
    uint64_t off = rep->offset;
    manta__obj_create_reply__free_unpacked(rep, NULL);
    if (rc == MANTA_ESTOREFULL)
        return mt_err(rc, "the object store is full: no room for %lu bytes after waiting %ld ms",
                      (unsigned long)size, (long)mt_cfg.store_full_wait_ms);
    if (rc == MANTA_ETOOBIG)
        return mt_err(rc, "an object of %lu bytes does not fit in the object store (%lu bytes)",
                      (unsigned long)size, (unsigned long)c->shm_size);
    if (rc) return mt_err(rc, "the store refused the object: %s", manta_strerror(rc));
    if (!in_store(c, off, size)) return mt_err(MANTA_EPROTO, "store offset out of range");
    *data = c->shm + off;
    return 0;
}

void do_plasma_seal(mt_core *c, const mt_oid *id)
{
    Manta__ObjSeal m = MANTA__OBJ_SEAL__INIT;
    m.object_id = MT_BIN(id->b, MT_OBJECT_ID_LEN);
    do_loop_send_daemon(c, MANTA__MSG_TYPE__MSG_OBJ_SEAL, &m.base);
}

void do_plasma_abort(mt_core *c, const mt_oid *id)
{
    Manta__ObjAbort m = MANTA__OBJ_ABORT__INIT;
    m.object_id = MT_BIN(id->b, MT_OBJECT_ID_LEN);
    do_loop_send_daemon(c, MANTA__MSG_TYPE__MSG_OBJ_ABORT, &m.base);
}

void do_plasma_free(mt_core *c, const mt_oid *id, const mt_nid *loc)
{
    Manta__ObjFree m = MANTA__OBJ_FREE__INIT;
    ProtobufCBinaryData b = MT_BIN(id->b, MT_OBJECT_ID_LEN);
    m.object_ids = &b;
    m.n_object_ids = 1;
    if (loc) m.location = do_loop_node_bin(c, loc); /* its node, through ours */
    do_loop_send_daemon(c, MANTA__MSG_TYPE__MSG_OBJ_FREE, &m.base);
}

int do_plasma_get(mt_core *c, const mt_oid *ids, const mt_nid *locs, size_t n, double deadline,
                  mt_value **out, int *status)
{
    Manta__ObjGet m = MANTA__OBJ_GET__INIT;
    ProtobufCBinaryData *bins = mt_calloc(n, sizeof *bins);
    ProtobufCBinaryData *lbins = mt_calloc(n, sizeof *lbins);
    bool remote = false;
    for (size_t i = 0; i < n; i++) {
        bins[i] = MT_BIN(ids[i].b, MT_OBJECT_ID_LEN);
        if (locs) lbins[i] = do_loop_node_bin(c, &locs[i]);
        remote |= lbins[i].len != 0;
    }
    if (remote) {
        m.locations = lbins;
        m.n_locations = n;
    }
    m.object_ids = bins;
    m.n_object_ids = n;
    m.pin = true;
    m.timeout_ms = deadline < 0 ? -1 : (int64_t)((deadline - mt_now_s()) * 1000);
    if (deadline >= 0 && m.timeout_ms < 1) m.timeout_ms = 1;
    /* The node answers by its own deadline; give it a little slack. */
    Manta__ObjGetReply *rep;
    int rc = do_loop_rpc_call(c, c->daemon, MANTA__MSG_TYPE__MSG_OBJ_GET, &m.base, &m.request_id,
                         deadline < 0 ? -1 : deadline + 5, &manta__obj_get_reply__descriptor,
                         &rep);
    free(bins);
    free(lbins);
    if (rc) return rc;
    for (size_t i = 0; i < rep->n_objects && i < n; i++) {
        Manta__ObjLocation *l = rep->objects[i];
        if (l->status || !in_store(c, l->offset, l->size)) {
            rc = l->status ? l->status : MANTA_EPROTO;
            if (status) status[i] = rc;
            continue;
        }
        out[i] = do_plasma_value(c, &ids[i], l->offset, l->size);
    }
    manta__obj_get_reply__free_unpacked(rep, NULL);
    return rc;
}
