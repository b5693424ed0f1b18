/* gcs.c -- the control store of the head node: job ids, the function table
 * (pickled functions by content hash), a namespaced key-value table, the
 * actor table.  Reads may wait a bounded time for a write that is on its
 * way, because a worker can learn of a function id before the registration
 * reaches us.  It reaches the node only through mt_gcs_env (gcs.h). */
#include "gcs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "map.h"
#include "mt.h"
#include "wire.h"

typedef struct kv_entry {
    uint8_t hkey[16]; /* hash of ns + key: the map key */
    char *ns;
    uint8_t *key, *value;
    size_t klen, vlen;
} kv_entry;

typedef struct waiter {
    void *client;
    uint64_t request_id;
    bool is_fn;
    uint8_t hkey[16];
    double deadline;
    struct waiter *next;
} waiter;

/* An actor of the cluster: the packed ActorInfo is the record; the fields
 * next to it are what the table needs to look at. */
typedef struct actor_ent {
    mt_aid id; /* key */
    uint8_t *info;
    size_t info_len;
    uint8_t name_key[16];
    bool named;
    int state;
    mt_wid owner, worker;
    mt_nid owner_node, worker_node;
    bool has_worker, detached;
    struct actor_waiter *waiters;
} actor_ent;

typedef struct actor_name {
    uint8_t key[16]; /* hash of namespace + name */
    actor_ent *actor;
} actor_name;

typedef struct actor_waiter {
    void *client;
    uint64_t request_id;
    struct actor_waiter *next;
} actor_waiter;

struct mt_gcs {
    mt_gcs_env env;
    uint32_t next_job;
    mt_map kv; /* functions live here too, in namespace "fn" */
    waiter *waiters;
    mt_map actors; /* aid -> actor_ent */
    mt_map names;  /* name key -> actor_name */
    /* Workers that died lately: an actor's worker reports it alive itself,
     * and that report may be read after the worker's death. */
    mt_wid dead_workers[64];
    unsigned dead_next;
};

mt_gcs *mt_gcs_new(const mt_gcs_env *env)
{
    mt_gcs *g = mt_calloc(1, sizeof *g);
    g->env = *env;
    g->next_job = 1;
    mt_map_init(&g->kv, offsetof(kv_entry, hkey), 16);
    mt_map_init(&g->actors, offsetof(actor_ent, id), sizeof(mt_aid));
    mt_map_init(&g->names, offsetof(actor_name, key), 16);
    return g;
}

static void kv_free(kv_entry *e)
{
    free(e->ns);
    free(e->key);
    free(e->value);
    free(e);
}

void mt_gcs_destroy(mt_gcs *g)
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
    items = mt_map_items(&g->actors, &n);
    for (size_t i = 0; i < n; i++) {
        actor_ent *a = items[i];
        for (actor_waiter *w = a->waiters, *next; w; w = next) {
            next = w->next;
            free(w);
        }
        free(a->info);
        free(a);
    }
    free(items);
    items = mt_map_items(&g->names, &n);
    for (size_t i = 0; i < n; i++) free(items[i]);
    free(items);
    mt_map_free(&g->actors);
    mt_map_free(&g->names);
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
    /* An empty key arrives as NULL: memcmp must not see it. */
    if (e && (strcmp(e->ns, ns) || e->klen != klen || (klen && memcmp(e->key, key, klen))))
        return NULL;
    return e;
}

static void send_to(mt_gcs *g, void *client, uint16_t type, const ProtobufCMessage *m)
{
    g->env.send(g->env.ud, client, type, m);
}

static double now_s(mt_gcs *g) { return g->env.now(g->env.ud); }

/* A request that cannot be done and has no reply of its own: the sender is
 * told and keeps its connection (and its other work). */
static void warn_client(mt_gcs *g, void *client, const char *text)
{
    Manta__Warning w = MANTA__WARNING__INIT;
    w.text = (char *)text;
    send_to(g, client, MANTA__MSG_TYPE__MSG_WARNING, &w.base);
}

static void reply(mt_gcs *g, void *c, bool is_fn, uint64_t req, const kv_entry *e)
{
    if (is_fn) {
        Manta__FnGetReply r = MANTA__FN_GET_REPLY__INIT;
        r.request_id = req;
        r.status = e ? 0 : MANTA_ENOENT;
        if (e) r.body = MT_BIN(e->value, e->vlen);
        send_to(g, c, MANTA__MSG_TYPE__MSG_FN_GET_REPLY, &r.base);
    } else {
        Manta__KvGetReply r = MANTA__KV_GET_REPLY__INIT;
        r.request_id = req;
        r.status = e ? 0 : MANTA_ENOENT;
        if (e) r.value = MT_BIN(e->value, e->vlen);
        send_to(g, c, MANTA__MSG_TYPE__MSG_KV_GET_REPLY, &r.base);
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
        reply(g, w->client, w->is_fn, w->request_id, e);
        *pp = w->next;
        free(w);
    }
}

static void kv_get(mt_gcs *g, void *c, bool is_fn, uint64_t req, const char *ns,
                   const uint8_t *key, size_t klen, int64_t wait_ms)
{
    kv_entry *e = kv_find(g, ns, key, klen);
    if (e || wait_ms <= 0) {
        reply(g, c, is_fn, req, e);
        return;
    }
    waiter *w = mt_calloc(1, sizeof *w);
    w->client = c;
    w->request_id = req;
    w->is_fn = is_fn;
    hash_key(ns, key, klen, w->hkey);
    w->deadline = now_s(g) + (double)wait_ms / 1000.0;
    w->next = g->waiters;
    g->waiters = w;
}

void mt_gcs_tick(mt_gcs *g)
{
    double now = now_s(g);
    for (waiter **pp = &g->waiters; *pp;) {
        waiter *w = *pp;
        if (now < w->deadline) {
            pp = &w->next;
            continue;
        }
        reply(g, w->client, w->is_fn, w->request_id, NULL);
        *pp = w->next;
        free(w);
    }
}

/* ---------------------------------------------------------------- actors */

static Manta__ActorInfo *actor_info(const actor_ent *a)
{
    return manta__actor_info__unpack(NULL, a->info_len, a->info);
}

static void actor_store(actor_ent *a, const Manta__ActorInfo *info)
{
    free(a->info);
    a->info_len = manta__actor_info__get_packed_size(info);
    a->info = mt_malloc(a->info_len + 1);
    manta__actor_info__pack(info, a->info);
    a->state = info->state;
    a->has_worker = info->address && info->address->worker_id.len == MT_WORKER_ID_LEN;
    if (a->has_worker) memcpy(a->worker.b, info->address->worker_id.data, MT_WORKER_ID_LEN);
    if (a->has_worker && info->address->node_id.len == MT_NODE_ID_LEN)
        memcpy(a->worker_node.b, info->address->node_id.data, MT_NODE_ID_LEN);
}

/* Kill the actor's worker process, on this node or another. */
static void kill_actor_worker(mt_gcs *g, actor_ent *a)
{
    if (!a->has_worker) return;
    g->env.kill_worker(g->env.ud, &a->worker_node, &a->worker, MANTA__DEATH_REASON__DEATH_KILLED);
}

static void send_lookup_reply(mt_gcs *g, void *c, uint64_t req, int status, actor_ent **as,
                              size_t n)
{
    Manta__ActorLookupReply rep = MANTA__ACTOR_LOOKUP_REPLY__INIT;
    Manta__ActorInfo **infos = mt_calloc(n + 1, sizeof *infos);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if ((infos[k] = actor_info(as[i]))) k++;
    rep.request_id = req;
    rep.status = status;
    rep.actors = infos;
    rep.n_actors = k;
    send_to(g, c, MANTA__MSG_TYPE__MSG_ACTOR_LOOKUP_REPLY, &rep.base);
    for (size_t i = 0; i < k; i++) manta__actor_info__free_unpacked(infos[i], NULL);
    free(infos);
}

/* The actor settled (alive or dead): answer those who waited for that. */
static void actor_wake(mt_gcs *g, actor_ent *a)
{
    if (a->state != MANTA__ACTOR_STATE__ACTOR_ALIVE && a->state != MANTA__ACTOR_STATE__ACTOR_DEAD)
        return;
    for (actor_waiter *w = a->waiters, *next; w; w = next) {
        next = w->next;
        send_lookup_reply(g, w->client, w->request_id, 0, &a, 1);
        free(w);
    }
    a->waiters = NULL;
}

static void actor_unname(mt_gcs *g, actor_ent *a)
{
    if (!a->named) return;
    actor_name *nm = mt_map_get(&g->names, a->name_key);
    if (nm && nm->actor == a) free(mt_map_del(&g->names, a->name_key));
    a->named = false;
}

/* Mark dead, free its name, stop its worker. */
static void actor_kill(mt_gcs *g, actor_ent *a, const char *cause, bool intentional)
{
    Manta__ActorInfo *info = actor_info(a);
    if (!info) return;
    if (info->state != MANTA__ACTOR_STATE__ACTOR_DEAD) {
        char *old = info->death_cause;
        info->state = MANTA__ACTOR_STATE__ACTOR_DEAD;
        info->death_cause = (char *)cause;
        info->intentional = intentional;
        actor_store(a, info);
        info->death_cause = old; /* freed with the message */
    }
    manta__actor_info__free_unpacked(info, NULL);
    actor_unname(g, a);
    kill_actor_worker(g, a);
    actor_wake(g, a);
}

static void name_key(const char *ns, const char *name, uint8_t out[16])
{
    hash_key(ns ? ns : "", (const uint8_t *)(name ? name : ""), name ? strlen(name) : 0, out);
}

static int handle_actor_register(mt_gcs *g, void *c, const Manta__ActorRegister *r)
{
    Manta__ActorRegisterReply rep = MANTA__ACTOR_REGISTER_REPLY__INIT;
    rep.request_id = r->request_id;
    if (!r->info || r->info->actor_id.len != MT_ACTOR_ID_LEN) {
        rep.status = MANTA_EINVAL;
        rep.error = "ActorRegister without an actor id";
        send_to(g, c, MANTA__MSG_TYPE__MSG_ACTOR_REGISTER_REPLY, &rep.base);
        return 0;
    }
    const Manta__ActorInfo *in = r->info;
    bool named = in->name && in->name[0];
    uint8_t key[16];
    if (named) {
        name_key(in->ns, in->name, key);
        actor_name *nm = mt_map_get(&g->names, key);
        if (nm) {
            Manta__ActorInfo *old = actor_info(nm->actor);
            rep.status = MANTA_EEXIST;
            rep.info = old;
            send_to(g, c, MANTA__MSG_TYPE__MSG_ACTOR_REGISTER_REPLY, &rep.base);
            if (old) manta__actor_info__free_unpacked(old, NULL);
            return 0;
        }
    }
    actor_ent *a = mt_map_get(&g->actors, in->actor_id.data);
    if (!a) {
        a = mt_calloc(1, sizeof *a);
        memcpy(a->id.b, in->actor_id.data, MT_ACTOR_ID_LEN);
        mt_map_put(&g->actors, a);
    }
    actor_store(a, in);
    a->detached = in->detached;
    if (in->owner && in->owner->worker_id.len == MT_WORKER_ID_LEN)
        memcpy(a->owner.b, in->owner->worker_id.data, MT_WORKER_ID_LEN);
    if (in->owner && in->owner->node_id.len == MT_NODE_ID_LEN)
        memcpy(a->owner_node.b, in->owner->node_id.data, MT_NODE_ID_LEN);
    if (named) {
        actor_name *nm = mt_calloc(1, sizeof *nm);
        memcpy(nm->key, key, 16);
        nm->actor = a;
        mt_map_put(&g->names, nm);
        memcpy(a->name_key, key, 16);
        a->named = true;
    }
    if (r->request_id) send_to(g, c, MANTA__MSG_TYPE__MSG_ACTOR_REGISTER_REPLY, &rep.base);
    return 0;
}

/* A report of the actor's worker (it carries its address) from a worker
 * that has died since, or from an earlier run of the constructor than the
 * owner's latest restart. */
static bool stale_report(const mt_gcs *g, const Manta__ActorInfo *cur, const Manta__ActorInfo *in)
{
    if (in->num_restarts < cur->num_restarts) return true;
    if (!in->address || in->address->worker_id.len != MT_WORKER_ID_LEN) return false;
    for (size_t i = 0; i < MT_ARRAY_LEN(g->dead_workers); i++)
        if (!memcmp(g->dead_workers[i].b, in->address->worker_id.data, MT_WORKER_ID_LEN)) return true;
    return false;
}

static void kill_reporting_worker(mt_gcs *g, const Manta__Address *addr)
{
    if (addr->worker_id.len != MT_WORKER_ID_LEN || addr->node_id.len != MT_NODE_ID_LEN) return;
    mt_wid wid;
    mt_nid nid;
    memcpy(wid.b, addr->worker_id.data, MT_WORKER_ID_LEN);
    memcpy(nid.b, addr->node_id.data, MT_NODE_ID_LEN);
    g->env.kill_worker(g->env.ud, &nid, &wid, MANTA__DEATH_REASON__DEATH_KILLED);
}

static int handle_actor_update(mt_gcs *g, void *c, const Manta__ActorUpdate *u)
{
    if (!u->info || u->info->actor_id.len != MT_ACTOR_ID_LEN) {
        warn_client(g, c, "ignored an ActorUpdate without an actor id");
        return 0; /* the sender keeps its connection */
    }
    actor_ent *a = mt_map_get(&g->actors, u->info->actor_id.data);
    if (!a) return 0;
    Manta__ActorInfo *info = actor_info(a);
    if (!info) return 0;
    if (info->state == MANTA__ACTOR_STATE__ACTOR_DEAD) {
        manta__actor_info__free_unpacked(info, NULL);
        /* Dead is final; a worker that reports it started anyway (its
         * creator died before we heard from it) is of no use. */
        if (u->info->address) kill_reporting_worker(g, u->info->address);
        return 0;
    }
    if (u->info->address && stale_report(g, info, u->info)) {
        manta__actor_info__free_unpacked(info, NULL);
        return 0;
    }
    /* Take over what the update carries; keep the rest. */
    Manta__ActorInfo merged = *info;
    merged.state = u->info->state;
    if (u->info->address) {
        merged.address = u->info->address;
    } else if (merged.state == MANTA__ACTOR_STATE__ACTOR_RESTARTING) {
        /* The owner restarts it: its old worker is gone, even if we have
         * not heard so yet (that death must not count as another one). */
        merged.address = NULL;
        merged.pid = 0;
    }
    if (u->info->pid) merged.pid = u->info->pid;
    if (u->info->death_cause && u->info->death_cause[0]) merged.death_cause = u->info->death_cause;
    merged.num_restarts = u->info->num_restarts;
    merged.intentional = u->info->intentional;
    actor_store(a, &merged);
    manta__actor_info__free_unpacked(info, NULL);
    if (a->state == MANTA__ACTOR_STATE__ACTOR_DEAD) actor_unname(g, a);
    actor_wake(g, a);
    return 0;
}

static int handle_actor_lookup(mt_gcs *g, void *c, const Manta__ActorLookup *l)
{
    if (l->list_all) {
        size_t n;
        void **items = mt_map_items(&g->actors, &n);
        send_lookup_reply(g, c, l->request_id, 0, (actor_ent **)items, n);
        free(items);
        return 0;
    }
    actor_ent *a = NULL;
    if (l->actor_id.len == MT_ACTOR_ID_LEN) {
        a = mt_map_get(&g->actors, l->actor_id.data);
    } else if (l->name && l->name[0]) {
        uint8_t key[16];
        name_key(l->ns, l->name, key);
        actor_name *nm = mt_map_get(&g->names, key);
        a = nm ? nm->actor : NULL;
    }
    if (!a) {
        send_lookup_reply(g, c, l->request_id, MANTA_ENOENT, NULL, 0);
        return 0;
    }
    if (l->wait_alive && a->state != MANTA__ACTOR_STATE__ACTOR_ALIVE &&
        a->state != MANTA__ACTOR_STATE__ACTOR_DEAD) {
        actor_waiter *w = mt_calloc(1, sizeof *w);
        w->client = c;
        w->request_id = l->request_id;
        w->next = a->waiters;
        a->waiters = w;
        return 0;
    }
    send_lookup_reply(g, c, l->request_id, 0, &a, 1);
    return 0;
}

/* Its owner restarts it (max_restarts) if the owner is still around. */
static bool will_restart(mt_gcs *g, const actor_ent *a, Manta__ActorInfo *info)
{
    bool more = info->max_restarts < 0 || info->num_restarts < (uint32_t)info->max_restarts;
    return more && g->env.connected(g->env.ud, &a->owner);
}

/* The actor's worker is gone: its owner restarts it, or it is dead. */
static void actor_lost_worker(mt_gcs *g, actor_ent *a, const char *cause)
{
    Manta__ActorInfo *info = actor_info(a);
    if (info && will_restart(g, a, info)) {
        info->state = MANTA__ACTOR_STATE__ACTOR_RESTARTING;
        Manta__Address *keep = info->address;
        info->address = NULL; /* the old worker is gone */
        actor_store(a, info);
        info->address = keep;
        manta__actor_info__free_unpacked(info, NULL);
        return;
    }
    if (info) manta__actor_info__free_unpacked(info, NULL);
    actor_kill(g, a, cause, false);
}

void mt_gcs_actor_worker_died(mt_gcs *g, const mt_wid *wid, int code)
{
    g->dead_workers[g->dead_next++ % MT_ARRAY_LEN(g->dead_workers)] = *wid;
    size_t n;
    void **items = mt_map_items(&g->actors, &n);
    for (size_t i = 0; i < n; i++) {
        actor_ent *a = items[i];
        if (!a->has_worker || !MT_ID_EQ(a->worker, *wid) ||
            a->state == MANTA__ACTOR_STATE__ACTOR_DEAD)
            continue;
        char cause[160];
        snprintf(cause, sizeof cause, "The actor's worker process died (exit %d).", code);
        actor_lost_worker(g, a, cause);
    }
    free(items);
}

void mt_gcs_node_died(mt_gcs *g, const mt_nid *nid)
{
    size_t n;
    void **items = mt_map_items(&g->actors, &n);
    for (size_t i = 0; i < n; i++) {
        actor_ent *a = items[i];
        if (a->state == MANTA__ACTOR_STATE__ACTOR_DEAD) continue;
        if (!a->detached && MT_ID_EQ(a->owner_node, *nid)) {
            actor_kill(g, a, "The actor's owner (the process that created it) has died: its node died.",
                       false);
        } else if (MT_ID_EQ(a->owner_node, *nid) && a->state != MANTA__ACTOR_STATE__ACTOR_ALIVE &&
                   !a->has_worker) {
            actor_kill(g, a, "The actor's creator died (its node died) before the actor's "
                             "constructor reached a worker.", false);
        } else if (a->has_worker && MT_ID_EQ(a->worker_node, *nid)) {
            actor_lost_worker(g, a, "The actor died because its node died.");
        }
    }
    free(items);
}

void mt_gcs_client_gone(mt_gcs *g, void *c, const mt_wid *wid)
{
    size_t n;
    void **items = mt_map_items(&g->actors, &n);
    for (size_t i = 0; i < n; i++) {
        actor_ent *a = items[i];
        for (actor_waiter **pp = &a->waiters; *pp;) {
            actor_waiter *w = *pp;
            if (w->client == c) {
                *pp = w->next;
                free(w);
            } else {
                pp = &w->next;
            }
        }
        if (!wid || a->state == MANTA__ACTOR_STATE__ACTOR_DEAD || !MT_ID_EQ(a->owner, *wid))
            continue;
        /* Actors whose owner left die with it, unless detached; a detached
         * one lives on if its constructor reached a worker (which reports
         * it alive), else nothing will ever start it. */
        if (!a->detached)
            actor_kill(g, a, "The actor's owner (the process that created it) has died.", false);
        else if (a->state != MANTA__ACTOR_STATE__ACTOR_ALIVE && !a->has_worker)
            actor_kill(g, a,
                       "The actor's creator died before the actor's constructor reached a worker.",
                       false);
    }
    free(items);
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

int mt_gcs_handle(mt_gcs *g, void *c, uint16_t type, const ProtobufCMessage *m)
{
    switch (type) {
    case MANTA__MSG_TYPE__MSG_FN_REGISTER: {
        const Manta__FnRegister *r = (const Manta__FnRegister *)m;
        if (r->function_id.len != MT_FN_ID_LEN) {
            warn_client(g, c, "ignored a FnRegister without a function id");
            return 0;
        }
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
    case MANTA__MSG_TYPE__MSG_ACTOR_REGISTER:
        return handle_actor_register(g, c, (const Manta__ActorRegister *)m);
    case MANTA__MSG_TYPE__MSG_ACTOR_UPDATE:
        return handle_actor_update(g, c, (const Manta__ActorUpdate *)m);
    case MANTA__MSG_TYPE__MSG_ACTOR_LOOKUP:
        return handle_actor_lookup(g, c, (const Manta__ActorLookup *)m);
    case MANTA__MSG_TYPE__MSG_ACTOR_KILL: {
        const Manta__ActorKill *k = (const Manta__ActorKill *)m;
        actor_ent *a = k->actor_id.len == MT_ACTOR_ID_LEN ? mt_map_get(&g->actors, k->actor_id.data)
                                                            : NULL;
        if (!a) return 0;
        if (k->no_restart) {
            actor_kill(g, a, "The actor was killed by ray.kill().", true);
        } else {
            /* Its worker dies; mt_gcs_actor_worker_died decides: restart or dead. */
            kill_actor_worker(g, a);
        }
        return 0;
    }
    }
    return mt_err(MANTA_EPROTO, "%s is not a control-store message", mt_wire_name(type));
}
