/* gcs.c -- the control store of the head node: job ids, the function table
 * (pickled functions by content hash), a namespaced key-value table.  Reads
 * may wait a bounded time for a write that is on its way, because a worker
 * can learn of a function id before the registration reaches us. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "mt.h"
#include "node.h"

typedef struct kv_entry {
    uint8_t hkey[16]; /* hash of ns + key: the map key */
    char *ns;
    uint8_t *key, *value;
    size_t klen, vlen;
} kv_entry;

typedef struct waiter {
    mt_client *client;
    uint64_t request_id;
    bool is_fn;
    uint8_t hkey[16];
    double deadline;
    struct waiter *next;
} waiter;

struct mt_gcs {
    mt_node *node;
    uint32_t next_job;
    mt_map kv; /* functions live here too, in namespace "fn" */
    waiter *waiters;
};

mt_gcs *mt_gcs_new(mt_node *n)
{
    mt_gcs *g = mt_calloc(1, sizeof *g);
    g->node = n;
    g->next_job = 1;
    mt_map_init(&g->kv, offsetof(kv_entry, hkey), 16);
    return g;
}

static void kv_free(kv_entry *e)
{
    free(e->ns);
    free(e->key);
    free(e->value);
    free(e);
}

void mt_gcs_free(mt_gcs *g)
{
    if (!g) return;
    size_t n;
    void **items = mt_map_items(&g->kv, &n);
    for (size_t i = 0; i < n; i++) kv_free(items[i]);
    free(items);
    mt_map_free(&g->kv);
    for (waiter *w = g->waiters, *next; w; w = next) {
        next = w->next;
        free(w);
    }
    free(g);
}

uint32_t mt_gcs_new_job(mt_gcs *g) { return g->next_job++; }

static void hash_key(const char *ns, const uint8_t *key, size_t klen, uint8_t out[16])
{
    size_t nl = strlen(ns);
    uint8_t *tmp = mt_malloc(nl + 1 + klen);
    memcpy(tmp, ns, nl);
    tmp[nl] = 0;
    if (klen) memcpy(tmp + nl + 1, key, klen);
    uint64_t h1 = mt_hash_bytes(tmp, nl + 1 + klen);
    tmp[nl] = 1; /* a second, independent hash: 128 bits against collisions */
    uint64_t h2 = mt_hash_bytes(tmp, nl + 1 + klen) * 0x9E3779B97F4A7C15ULL;
    memcpy(out, &h1, 8);
    memcpy(out + 8, &h2, 8);
    free(tmp);
}

static kv_entry *kv_find(mt_gcs *g, const char *ns, const uint8_t *key, size_t klen)
{
    uint8_t h[16];
    hash_key(ns, key, klen, h);
    kv_entry *e = mt_map_get(&g->kv, h);
    if (e && (strcmp(e->ns, ns) || e->klen != klen || memcmp(e->key, key, klen))) return NULL;
    return e;
}

static void reply(mt_client *c, bool is_fn, uint64_t req, const kv_entry *e)
{
    if (is_fn) {
        Manta__FnGetReply r = MANTA__FN_GET_REPLY__INIT;
        r.request_id = req;
        r.status = e ? 0 : MANTA_ENOENT;
        if (e) r.body = MT_BIN(e->value, e->vlen);
        mt_conn_send_now(c->conn, MANTA__MSG_TYPE__MSG_FN_GET_REPLY, &r.base);
    } else {
        Manta__KvGetReply r = MANTA__KV_GET_REPLY__INIT;
        r.request_id = req;
        r.status = e ? 0 : MANTA_ENOENT;
        if (e) r.value = MT_BIN(e->value, e->vlen);
        mt_conn_send_now(c->conn, MANTA__MSG_TYPE__MSG_KV_GET_REPLY, &r.base);
    }
}

static void kv_put(mt_gcs *g, const char *ns, const uint8_t *key, size_t klen,
                   const uint8_t *val, size_t vlen, bool overwrite)
{
    kv_entry *e = kv_find(g, ns, key, klen);
    if (e && !overwrite) return;
    if (!e) {
        e = mt_calloc(1, sizeof *e);
        hash_key(ns, key, klen, e->hkey);
        e->ns = mt_strdup(ns);
        e->key = mt_memdup(key, klen);
        e->klen = klen;
        mt_map_put(&g->kv, e);
    }
    free(e->value);
    e->value = mt_memdup(val, vlen);
    e->vlen = vlen;
    /* Answer whoever waited for this key. */
    for (waiter **pp = &g->waiters; *pp;) {
        waiter *w = *pp;
        if (memcmp(w->hkey, e->hkey, 16)) {
            pp = &w->next;
            continue;
        }
        reply(w->client, w->is_fn, w->request_id, e);
        *pp = w->next;
        free(w);
    }
}

static void kv_get(mt_gcs *g, mt_client *c, bool is_fn, uint64_t req, const char *ns,
                   const uint8_t *key, size_t klen, int64_t wait_ms)
{
    kv_entry *e = kv_find(g, ns, key, klen);
    if (e || wait_ms <= 0) {
        reply(c, is_fn, req, e);
        return;
    }
    waiter *w = mt_calloc(1, sizeof *w);
    w->client = c;
    w->request_id = req;
    w->is_fn = is_fn;
    hash_key(ns, key, klen, w->hkey);
    w->deadline = mt_now_s() + (double)wait_ms / 1000.0;
    w->next = g->waiters;
    g->waiters = w;
}

void mt_gcs_tick(mt_gcs *g)
{
    double now = mt_now_s();
    for (waiter **pp = &g->waiters; *pp;) {
        waiter *w = *pp;
        if (now < w->deadline) {
            pp = &w->next;
            continue;
        }
        reply(w->client, w->is_fn, w->request_id, NULL);
        *pp = w->next;
        free(w);
    }
}

void mt_gcs_client_gone(mt_gcs *g, mt_client *c)
{
    for (waiter **pp = &g->waiters; *pp;) {
        waiter *w = *pp;
        if (w->client == c) {
            *pp = w->next;
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

int mt_gcs_handle(mt_gcs *g, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    switch (type) {
    case MANTA__MSG_TYPE__MSG_FN_REGISTER: {
        const Manta__FnRegister *r = (const Manta__FnRegister *)m;
        if (r->function_id.len != MT_FN_ID_LEN) return mt_err(MANTA_EPROTO, "bad function id");
        kv_put(g, "fn", r->function_id.data, r->function_id.len, r->body.data, r->body.len,
               false);
        return 0;
    }
    case MANTA__MSG_TYPE__MSG_FN_GET: {
        const Manta__FnGet *r = (const Manta__FnGet *)m;
        kv_get(g, c, true, r->request_id, "fn", r->function_id.data, r->function_id.len,
               MT_MIN(r->wait_ms, mt_cfg.fn_wait_ms));
        return 0;
    }
    case MANTA__MSG_TYPE__MSG_KV_PUT: {
        const Manta__KvPut *r = (const Manta__KvPut *)m;
        kv_put(g, r->ns ? r->ns : "", r->key.data, r->key.len, r->value.data, r->value.len,
               r->overwrite);
        return 0;
    }
    case MANTA__MSG_TYPE__MSG_KV_GET: {
        const Manta__KvGet *r = (const Manta__KvGet *)m;
        kv_get(g, c, false, r->request_id, r->ns ? r->ns : "", r->key.data, r->key.len,
               MT_MIN(r->wait_ms, mt_cfg.fn_wait_ms));
        return 0;
    }
    }
    return 1;
}
