/* test_gcs.c -- unit tests of the control store (src/gcs) without a node:
 * fake callbacks (mt_gcs_env) record what the store sends and which
 * workers it kills, say which processes are connected and set the clock.
 * Covered: job ids, the function table, the key-value table (namespaces,
 * overwrite, empty keys, reads that wait), and the actor table (the state
 * machine with restarts, names per namespace, lookups that wait for an
 * actor to settle, owners and nodes that die, stale worker reports). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "gcs/gcs.h"
#include "mt.h"

/* ---------------------------------------------------------------- fake node */

typedef struct sent {
    void *client;
    uint16_t type;
    uint8_t *buf;
    size_t len;
} sent;

typedef struct killed {
    mt_nid nid;
    mt_wid wid;
    int reason;
} killed;

static struct {
    sent msgs[64];
    size_t nmsgs, taken;
    killed kills[16];
    size_t nkills;
    mt_wid connected[8];
    size_t nconnected;
    double now;
} F;

static int C1, C2, C3; /* client handles: only their addresses matter */

static void fake_send(void *ud, void *client, uint16_t type, const ProtobufCMessage *msg)
{
    ck_assert_ptr_eq(ud, &F);
    ck_assert_uint_lt(F.nmsgs, 64);
    sent *s = &F.msgs[F.nmsgs++];
    s->client = client;
    s->type = type;
    s->len = protobuf_c_message_get_packed_size(msg);
    s->buf = malloc(s->len + 1);
    protobuf_c_message_pack(msg, s->buf);
}

static void fake_kill(void *ud, const mt_nid *nid, const mt_wid *wid, int reason)
{
    ck_assert_uint_lt(F.nkills, 16);
    F.kills[F.nkills++] = (killed){*nid, *wid, reason};
}

static bool fake_connected(void *ud, const mt_wid *wid)
{
    for (size_t i = 0; i < F.nconnected; i++)
        if (MT_ID_EQ(F.connected[i], *wid)) return true;
    return false;
}

static double fake_now(void *ud) { return F.now; }

static mt_gcs *G;

static void setup(void)
{
    for (size_t i = 0; i < F.nmsgs; i++) free(F.msgs[i].buf);
    memset(&F, 0, sizeof F);
    F.now = 100.0;
    mt_cfg.fn_wait_ms = 5000; /* the cap on any read's wait */
    mt_gcs_env env = {.ud = &F, .send = fake_send, .kill_worker = fake_kill,
                      .connected = fake_connected, .now = fake_now};
    G = mt_gcs_new(&env);
}

static void teardown(void)
{
    mt_gcs_destroy(G);
    G = NULL;
    for (size_t i = 0; i < F.nmsgs; i++) free(F.msgs[i].buf);
    F.nmsgs = 0;
}

/* Messages sent since the last take. */
static size_t pending(void) { return F.nmsgs - F.taken; }

/* The next message sent: it must go to `client` and be of `type`. */
static const sent *take(void *client, uint16_t type)
{
    ck_assert_msg(F.taken < F.nmsgs, "nothing sent (wanted type %u)", type);
    const sent *s = &F.msgs[F.taken++];
    ck_assert_ptr_eq(s->client, client);
    ck_assert_uint_eq(s->type, type);
    return s;
}

static mt_wid wid(uint8_t n)
{
    mt_wid w;
    memset(w.b, n, sizeof w.b);
    return w;
}

static mt_nid nid(uint8_t n)
{
    mt_nid x;
    memset(x.b, 0x80 | n, sizeof x.b);
    return x;
}

static mt_aid aid(uint8_t n)
{
    mt_aid a;
    memset(a.b, 0x40 | n, sizeof a.b);
    return a;
}

static void connect_process(mt_wid w) { F.connected[F.nconnected++] = w; }

#define BIN(p, n) ((ProtobufCBinaryData){.len = (n), .data = (uint8_t *)(p)})
#define STR(s) BIN(s, strlen(s))

/* ---------------------------------------------------------------- kv helpers */

static void kv_put(const char *ns, const char *key, const char *val, bool overwrite)
{
    Manta__KvPut m = MANTA__KV_PUT__INIT;
    m.ns = (char *)ns;
    m.key = STR(key);
    m.value = STR(val);
    m.overwrite = overwrite;
    ck_assert_int_eq(mt_gcs_handle(G, &C1, MANTA__MSG_TYPE__MSG_KV_PUT, &m.base), 0);
}

static void kv_get(void *client, uint64_t req, const char *ns, const char *key, int64_t wait_ms)
{
    Manta__KvGet m = MANTA__KV_GET__INIT;
    m.request_id = req;
    m.ns = (char *)ns;
    m.key = STR(key);
    m.wait_ms = wait_ms;
    ck_assert_int_eq(mt_gcs_handle(G, client, MANTA__MSG_TYPE__MSG_KV_GET, &m.base), 0);
}

/* A reply (request id, status, value) answers `req`: with status 0 and
 * `want`, or MANTA_ENOENT when want is NULL. */
static void check_value(uint64_t got_req, int status, ProtobufCBinaryData v, uint64_t req,
                        const char *want)
{
    ck_assert_uint_eq(got_req, req);
    ck_assert_int_eq(status, want ? 0 : MANTA_ENOENT);
    if (!want) return;
    ck_assert_uint_eq(v.len, strlen(want));
    ck_assert(!v.len || !memcmp(v.data, want, v.len));
}

/* The next message to `client` is the KvGetReply check_value expects. */
static void expect_kv(void *client, uint64_t req, const char *want)
{
    const sent *s = take(client, MANTA__MSG_TYPE__MSG_KV_GET_REPLY);
    Manta__KvGetReply *r = manta__kv_get_reply__unpack(NULL, s->len, s->buf);
    ck_assert_ptr_nonnull(r);
    check_value(r->request_id, r->status, r->value, req, want);
    manta__kv_get_reply__free_unpacked(r, NULL);
}

/* ---------------------------------------------------------------- jobs, kv, functions */

START_TEST(test_job_ids)
{
    ck_assert_uint_eq(mt_gcs_new_job(G), 1);
    ck_assert_uint_eq(mt_gcs_new_job(G), 2);
    ck_assert_uint_eq(mt_gcs_new_job(G), 3);
    ck_assert_uint_eq(pending(), 0);
}
END_TEST

START_TEST(test_kv)
{
    kv_get(&C1, 1, "ns", "k", 0);
    expect_kv(&C1, 1, NULL);
    kv_put("ns", "k", "v1", false);
    kv_get(&C2, 2, "ns", "k", 0);
    expect_kv(&C2, 2, "v1");
    /* Without overwrite the first value stays; with it, the new one wins. */
    kv_put("ns", "k", "v2", false);
    kv_get(&C1, 3, "ns", "k", 0);
    expect_kv(&C1, 3, "v1");
    kv_put("ns", "k", "v3", true);
    kv_get(&C1, 4, "ns", "k", 0);
    expect_kv(&C1, 4, "v3");
    /* Namespaces are apart: the same key elsewhere, and "" (no namespace). */
    kv_get(&C1, 5, "other", "k", 0);
    expect_kv(&C1, 5, NULL);
    kv_put("", "k", "plain", false);
    kv_get(&C1, 6, "", "k", 0);
    expect_kv(&C1, 6, "plain");
    kv_get(&C1, 7, "ns", "k", 0);
    expect_kv(&C1, 7, "v3");
    /* A key is not a prefix of a longer one, nor ns+key of another split. */
    kv_put("n", "sk", "split", false);
    kv_get(&C1, 8, "n", "sk", 0);
    expect_kv(&C1, 8, "split");
    kv_get(&C1, 9, "ns", "k", 0);
    expect_kv(&C1, 9, "v3");
    kv_get(&C1, 10, "ns", "kk", 0);
    expect_kv(&C1, 10, NULL);
    /* The empty key and the empty value are values like any other. */
    kv_get(&C1, 11, "ns", "", 0);
    expect_kv(&C1, 11, NULL);
    kv_put("ns", "", "empty key", false);
    kv_put("ns", "e", "", false);
    kv_get(&C1, 12, "ns", "", 0);
    expect_kv(&C1, 12, "empty key");
    kv_get(&C1, 13, "ns", "e", 0);
    expect_kv(&C1, 13, "");
    /* A KvGet/KvPut without a namespace is namespace "". */
    Manta__KvGet m = MANTA__KV_GET__INIT;
    m.request_id = 14;
    m.key = STR("k");
    ck_assert_int_eq(mt_gcs_handle(G, &C1, MANTA__MSG_TYPE__MSG_KV_GET, &m.base), 0);
    expect_kv(&C1, 14, "plain");
    ck_assert_uint_eq(pending(), 0);
}
END_TEST

START_TEST(test_kv_wait)
{
    /* A read of a missing key waits for the write... */
    kv_get(&C1, 1, "ns", "later", 1000);
    kv_get(&C2, 2, "ns", "later", 1000);
    kv_get(&C3, 3, "ns", "never", 1000);
    ck_assert_uint_eq(pending(), 0);
    mt_gcs_tick(G);
    ck_assert_uint_eq(pending(), 0);
    kv_put("ns", "later", "here", false);
    expect_kv(&C2, 2, "here");
    expect_kv(&C1, 1, "here");
    ck_assert_uint_eq(pending(), 0);
    /* ... or until its time runs out (tick), not sooner. */
    F.now += 0.999;
    mt_gcs_tick(G);
    ck_assert_uint_eq(pending(), 0);
    F.now += 0.002;
    mt_gcs_tick(G);
    expect_kv(&C3, 3, NULL);
    mt_gcs_tick(G);
    ck_assert_uint_eq(pending(), 0);
    /* No read waits longer than fn_wait_ms, whatever it asks. */
    kv_get(&C1, 4, "ns", "never", 3600 * 1000);
    F.now += 5.001;
    mt_gcs_tick(G);
    expect_kv(&C1, 4, NULL);
    /* A reader that left is owed nothing. */
    kv_get(&C1, 5, "ns", "gone", 1000);
    kv_get(&C2, 6, "ns", "gone", 1000);
    mt_gcs_client_gone(G, &C1, NULL);
    kv_put("ns", "gone", "x", false);
    expect_kv(&C2, 6, "x");
    ck_assert_uint_eq(pending(), 0);
    /* Destroying the store drops the reads still waiting. */
    kv_get(&C2, 7, "ns", "still", 1000);
}
END_TEST

static void fn_register(const uint8_t id[16], const char *body)
{
    Manta__FnRegister m = MANTA__FN_REGISTER__INIT;
    m.function_id = BIN(id, 16);
    m.body = STR(body);
    ck_assert_int_eq(mt_gcs_handle(G, &C1, MANTA__MSG_TYPE__MSG_FN_REGISTER, &m.base), 0);
}

static void fn_get(void *client, uint64_t req, const uint8_t id[16], int64_t wait_ms)
{
    Manta__FnGet m = MANTA__FN_GET__INIT;
    m.request_id = req;
    m.function_id = BIN(id, 16);
    m.wait_ms = wait_ms;
    ck_assert_int_eq(mt_gcs_handle(G, client, MANTA__MSG_TYPE__MSG_FN_GET, &m.base), 0);
}

static void expect_fn(void *client, uint64_t req, const char *want)
{
    const sent *s = take(client, MANTA__MSG_TYPE__MSG_FN_GET_REPLY);
    Manta__FnGetReply *r = manta__fn_get_reply__unpack(NULL, s->len, s->buf);
    ck_assert_ptr_nonnull(r);
    check_value(r->request_id, r->status, r->body, req, want);
    manta__fn_get_reply__free_unpacked(r, NULL);
}

START_TEST(test_functions)
{
    uint8_t f1[16], f2[16];
    memset(f1, 1, 16);
    memset(f2, 2, 16);
    fn_get(&C1, 1, f1, 0);
    expect_fn(&C1, 1, NULL);
    fn_register(f1, "body one");
    fn_get(&C1, 2, f1, 0);
    expect_fn(&C1, 2, "body one");
    /* A function id names its content: a second registration changes nothing. */
    fn_register(f1, "another body");
    fn_get(&C1, 3, f1, 0);
    expect_fn(&C1, 3, "body one");
    /* A worker may ask before the registration arrives. */
    fn_get(&C2, 4, f2, 1000);
    ck_assert_uint_eq(pending(), 0);
    fn_register(f2, "body two");
    expect_fn(&C2, 4, "body two");
    /* Never longer than fn_wait_ms. */
    uint8_t f3[16];
    memset(f3, 3, 16);
    fn_get(&C2, 6, f3, 3600 * 1000);
    F.now += 4.999;
    mt_gcs_tick(G);
    ck_assert_uint_eq(pending(), 0);
    F.now += 0.002;
    mt_gcs_tick(G);
    expect_fn(&C2, 6, NULL);
    /* Functions are not keys of the key-value table's other namespaces. */
    Manta__KvGet m = MANTA__KV_GET__INIT;
    m.request_id = 5;
    m.key = BIN(f1, 16);
    ck_assert_int_eq(mt_gcs_handle(G, &C1, MANTA__MSG_TYPE__MSG_KV_GET, &m.base), 0);
    expect_kv(&C1, 5, NULL);
    /* A registration without a 16-byte id is ignored with a warning to its
     * sender, who keeps its connection. */
    Manta__FnRegister bad = MANTA__FN_REGISTER__INIT;
    bad.function_id = BIN(f1, 15);
    bad.body = STR("x");
    ck_assert_int_eq(mt_gcs_handle(G, &C1, MANTA__MSG_TYPE__MSG_FN_REGISTER, &bad.base), 0);
    take(&C1, MANTA__MSG_TYPE__MSG_WARNING);
    ck_assert_uint_eq(pending(), 0);
}
END_TEST

/* The node hands the store only its own types; another is a protocol
 * error that names it, and nothing is sent. */
START_TEST(test_not_ours)
{
    Manta__StatusRequest m = MANTA__STATUS_REQUEST__INIT;
    ck_assert_int_eq(mt_gcs_handle(G, &C1, MANTA__MSG_TYPE__MSG_STATUS_REQUEST, &m.base),
                     MANTA_EPROTO);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "MSG_STATUS_REQUEST"));
    ck_assert_uint_eq(pending(), 0);
}
END_TEST

/* ---------------------------------------------------------------- actor helpers */

typedef struct actor_spec {
    uint8_t id;
    const char *name, *ns;
    uint8_t owner, owner_node; /* 0: none */
    bool detached;
    int32_t max_restarts;
} actor_spec;

/* Register; returns the reply's status, or 1 if no reply was sent
 * (request_id 0 asks for none). */
static int actor_register(void *client, uint64_t req, actor_spec sp)
{
    mt_aid a = aid(sp.id);
    mt_wid ow = wid(sp.owner);
    mt_nid on = nid(sp.owner_node);
    Manta__Address owner = MANTA__ADDRESS__INIT;
    if (sp.owner) owner.worker_id = BIN(ow.b, MT_WORKER_ID_LEN);
    if (sp.owner_node) owner.node_id = BIN(on.b, MT_NODE_ID_LEN);
    Manta__ActorInfo info = MANTA__ACTOR_INFO__INIT;
    info.actor_id = BIN(a.b, MT_ACTOR_ID_LEN);
    info.name = (char *)(sp.name ? sp.name : "");
    info.ns = (char *)(sp.ns ? sp.ns : "");
    info.state = MANTA__ACTOR_STATE__ACTOR_PENDING;
    info.owner = &owner;
    info.detached = sp.detached;
    info.max_restarts = sp.max_restarts;
    info.class_name = "Counter";
    Manta__ActorRegister m = MANTA__ACTOR_REGISTER__INIT;
    m.request_id = req;
    m.info = &info;
    size_t before = F.nmsgs;
    ck_assert_int_eq(mt_gcs_handle(G, client, MANTA__MSG_TYPE__MSG_ACTOR_REGISTER, &m.base), 0);
    if (F.nmsgs == before) return 1;
    const sent *s = take(client, MANTA__MSG_TYPE__MSG_ACTOR_REGISTER_REPLY);
    Manta__ActorRegisterReply *r = manta__actor_register_reply__unpack(NULL, s->len, s->buf);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->request_id, req);
    int status = r->status;
    manta__actor_register_reply__free_unpacked(r, NULL);
    return status;
}

/* An ActorUpdate: from the actor's worker (worker != 0: it carries the
 * worker's address) or from its owner (no address). */
static void actor_update(uint8_t id, int state, uint8_t worker, uint8_t node, uint32_t restarts,
                         const char *cause)
{
    mt_aid a = aid(id);
    mt_wid w = wid(worker);
    mt_nid nd = nid(node);
    Manta__Address addr = MANTA__ADDRESS__INIT;
    addr.worker_id = BIN(w.b, MT_WORKER_ID_LEN);
    addr.node_id = BIN(nd.b, MT_NODE_ID_LEN);
    addr.endpoint = "unix:/w";
    Manta__ActorInfo info = MANTA__ACTOR_INFO__INIT;
    info.actor_id = BIN(a.b, MT_ACTOR_ID_LEN);
    info.state = state;
    if (worker) info.address = &addr;
    info.pid = worker ? 1000u + worker : 0;
    info.num_restarts = restarts;
    info.death_cause = (char *)(cause ? cause : "");
    Manta__ActorUpdate m = MANTA__ACTOR_UPDATE__INIT;
    m.info = &info;
    ck_assert_int_eq(mt_gcs_handle(G, &C3, MANTA__MSG_TYPE__MSG_ACTOR_UPDATE, &m.base), 0);
}

static void alive_on(uint8_t id, uint8_t worker, uint8_t node, uint32_t restarts)
{
    actor_update(id, MANTA__ACTOR_STATE__ACTOR_ALIVE, worker, node, restarts, NULL);
}

static void lookup(void *client, uint64_t req, uint8_t id, const char *name, const char *ns,
                   bool wait_alive)
{
    mt_aid a = aid(id);
    Manta__ActorLookup m = MANTA__ACTOR_LOOKUP__INIT;
    m.request_id = req;
    if (id) m.actor_id = BIN(a.b, MT_ACTOR_ID_LEN);
    m.name = (char *)(name ? name : "");
    m.ns = (char *)(ns ? ns : "");
    m.wait_alive = wait_alive;
    ck_assert_int_eq(mt_gcs_handle(G, client, MANTA__MSG_TYPE__MSG_ACTOR_LOOKUP, &m.base), 0);
}

/* The next reply to `client`, for `req` (free with
 * manta__actor_lookup_reply__free_unpacked). */
static Manta__ActorLookupReply *lookup_reply(void *client, uint64_t req)
{
    const sent *s = take(client, MANTA__MSG_TYPE__MSG_ACTOR_LOOKUP_REPLY);
    Manta__ActorLookupReply *r = manta__actor_lookup_reply__unpack(NULL, s->len, s->buf);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->request_id, req);
    return r;
}

/* The next reply to `client` is one actor, `id`, in `state`. */
static void expect_actor(void *client, uint64_t req, uint8_t id, int state)
{
    Manta__ActorLookupReply *r = lookup_reply(client, req);
    ck_assert_int_eq(r->status, 0);
    ck_assert_uint_eq(r->n_actors, 1);
    mt_aid a = aid(id);
    ck_assert(r->actors[0]->actor_id.len == MT_ACTOR_ID_LEN &&
              !memcmp(r->actors[0]->actor_id.data, a.b, MT_ACTOR_ID_LEN));
    ck_assert_int_eq(r->actors[0]->state, state);
    manta__actor_lookup_reply__free_unpacked(r, NULL);
}

/* The actor's record now (a lookup that does not wait; the caller frees). */
static Manta__ActorInfo *actor_now(uint8_t id)
{
    lookup(&C3, 99, id, NULL, NULL, false);
    Manta__ActorLookupReply *r = lookup_reply(&C3, 99);
    ck_assert_int_eq(r->status, 0);
    ck_assert_uint_eq(r->n_actors, 1);
    Manta__ActorInfo *info = r->actors[0];
    r->actors[0] = NULL;
    r->n_actors = 0;
    manta__actor_lookup_reply__free_unpacked(r, NULL);
    return info;
}

static int state_of(uint8_t id)
{
    Manta__ActorInfo *info = actor_now(id);
    int state = info->state;
    manta__actor_info__free_unpacked(info, NULL);
    return state;
}

/* The worker the record names (0: none). */
static uint8_t worker_of(uint8_t id)
{
    Manta__ActorInfo *info = actor_now(id);
    uint8_t w = info->address && info->address->worker_id.len == MT_WORKER_ID_LEN
                    ? info->address->worker_id.data[0]
                    : 0;
    manta__actor_info__free_unpacked(info, NULL);
    return w;
}

static void expect_cause(uint8_t id, const char *part)
{
    Manta__ActorInfo *info = actor_now(id);
    ck_assert_int_eq(info->state, MANTA__ACTOR_STATE__ACTOR_DEAD);
    ck_assert_msg(info->death_cause && strstr(info->death_cause, part),
                  "death cause \"%s\" does not say \"%s\"", info->death_cause, part);
    manta__actor_info__free_unpacked(info, NULL);
}

static void expect_kill(size_t i, uint8_t worker, uint8_t node)
{
    ck_assert_uint_gt(F.nkills, i);
    mt_wid w = wid(worker);
    mt_nid nd = nid(node);
    ck_assert(MT_ID_EQ(F.kills[i].wid, w));
    ck_assert(MT_ID_EQ(F.kills[i].nid, nd));
    ck_assert_int_eq(F.kills[i].reason, MANTA__DEATH_REASON__DEATH_KILLED);
}

#define PENDING MANTA__ACTOR_STATE__ACTOR_PENDING
#define ALIVE MANTA__ACTOR_STATE__ACTOR_ALIVE
#define RESTARTING MANTA__ACTOR_STATE__ACTOR_RESTARTING
#define DEAD MANTA__ACTOR_STATE__ACTOR_DEAD

/* ---------------------------------------------------------------- actors */

START_TEST(test_actor_restarts)
{
    connect_process(wid(9)); /* the owner */
    ck_assert_int_eq(actor_register(&C1, 1, (actor_spec){.id = 1, .owner = 9, .owner_node = 1,
                                                          .max_restarts = 1}),
                     0);
    ck_assert_int_eq(state_of(1), PENDING);
    /* The constructor reaches worker 20, then returns. */
    actor_update(1, PENDING, 20, 1, 0, NULL);
    ck_assert_int_eq(state_of(1), PENDING);
    ck_assert_uint_eq(worker_of(1), 20);
    alive_on(1, 20, 1, 0);
    ck_assert_int_eq(state_of(1), ALIVE);
    /* Its worker dies; the owner is there and a restart is left. */
    mt_wid other = wid(30);
    mt_gcs_actor_worker_died(G, &other, 0); /* another worker: nothing */
    ck_assert_int_eq(state_of(1), ALIVE);
    mt_wid w20 = wid(20);
    mt_gcs_actor_worker_died(G, &w20, -9);
    ck_assert_int_eq(state_of(1), RESTARTING);
    ck_assert_uint_eq(worker_of(1), 0);
    /* The owner says so too (no address), then the new worker reports. */
    actor_update(1, RESTARTING, 0, 0, 1, NULL);
    ck_assert_int_eq(state_of(1), RESTARTING);
    alive_on(1, 21, 2, 1);
    ck_assert_int_eq(state_of(1), ALIVE);
    ck_assert_uint_eq(worker_of(1), 21);
    Manta__ActorInfo *info = actor_now(1);
    ck_assert_uint_eq(info->num_restarts, 1);
    ck_assert_uint_eq(info->pid, 1021);
    ck_assert_str_eq(info->class_name, "Counter"); /* kept from the registration */
    manta__actor_info__free_unpacked(info, NULL);
    /* No restart left: the next death is final. */
    ck_assert_uint_eq(F.nkills, 0);
    mt_wid w21 = wid(21);
    mt_gcs_actor_worker_died(G, &w21, 3);
    expect_cause(1, "worker process died (exit 3)");
    info = actor_now(1);
    ck_assert(!info->intentional);
    manta__actor_info__free_unpacked(info, NULL);
    /* Dead is final: a later ALIVE from a worker is refused, and that
     * worker is killed. */
    size_t kills = F.nkills;
    alive_on(1, 22, 2, 1);
    ck_assert_int_eq(state_of(1), DEAD);
    ck_assert_uint_eq(F.nkills, kills + 1);
    expect_kill(kills, 22, 2);
    ck_assert_uint_eq(pending(), 0);
}
END_TEST

START_TEST(test_actor_restart_needs_owner)
{
    /* The owner runs restarts: without it, a worker's death is final. */
    actor_register(&C1, 0, (actor_spec){.id = 1, .owner = 9, .owner_node = 1, .max_restarts = -1});
    alive_on(1, 20, 1, 0);
    mt_wid w20 = wid(20);
    mt_gcs_actor_worker_died(G, &w20, 1);
    expect_cause(1, "worker process died");
    /* With it, -1 restarts for ever. */
    size_t kills = F.nkills;
    connect_process(wid(8));
    actor_register(&C1, 0, (actor_spec){.id = 2, .owner = 8, .owner_node = 1, .max_restarts = -1});
    for (uint32_t i = 0; i < 5; i++) {
        alive_on(2, (uint8_t)(30 + i), 1, i);
        ck_assert_int_eq(state_of(2), ALIVE);
        mt_wid w = wid((uint8_t)(30 + i));
        mt_gcs_actor_worker_died(G, &w, 1);
        ck_assert_int_eq(state_of(2), RESTARTING);
        actor_update(2, RESTARTING, 0, 0, i + 1, NULL);
    }
    ck_assert_uint_eq(F.nkills, kills);
}
END_TEST

START_TEST(test_actor_stale_reports)
{
    connect_process(wid(9));
    actor_register(&C1, 0, (actor_spec){.id = 1, .owner = 9, .owner_node = 1, .max_restarts = 3});
    alive_on(1, 20, 1, 0);
    mt_wid w20 = wid(20);
    mt_gcs_actor_worker_died(G, &w20, -9);
    /* The dead worker's ALIVE, read after its death, is not believed. */
    alive_on(1, 20, 1, 0);
    ck_assert_int_eq(state_of(1), RESTARTING);
    ck_assert_uint_eq(worker_of(1), 0);
    actor_update(1, RESTARTING, 0, 0, 1, NULL);
    /* Nor a report from a run older than the latest restart. */
    alive_on(1, 23, 1, 0);
    ck_assert_int_eq(state_of(1), RESTARTING);
    alive_on(1, 21, 1, 1);
    ck_assert_int_eq(state_of(1), ALIVE);
    ck_assert_uint_eq(worker_of(1), 21);
    /* The owner's RESTARTING drops the old address: the old worker's death,
     * heard late, is not a second one. */
    actor_update(1, RESTARTING, 0, 0, 2, NULL);
    ck_assert_uint_eq(worker_of(1), 0);
    mt_wid w21 = wid(21);
    mt_gcs_actor_worker_died(G, &w21, -9);
    ck_assert_int_eq(state_of(1), RESTARTING);
    alive_on(1, 22, 1, 2);
    ck_assert_int_eq(state_of(1), ALIVE);
    ck_assert_uint_eq(F.nkills, 0);
    /* An update for an actor never registered is ignored. */
    actor_update(7, ALIVE, 22, 1, 0, NULL);
    lookup(&C2, 5, 7, NULL, NULL, false);
    Manta__ActorLookupReply *r = lookup_reply(&C2, 5);
    ck_assert_int_eq(r->status, MANTA_ENOENT);
    manta__actor_lookup_reply__free_unpacked(r, NULL);
}
END_TEST

START_TEST(test_actor_names)
{
    actor_spec a = {.id = 1, .name = "counter", .ns = "app", .owner = 9, .owner_node = 1};
    ck_assert_int_eq(actor_register(&C1, 1, a), 0);
    /* The name is taken in "app" (get_if_exists is the caller's business:
     * the reply carries the existing actor), free in another namespace. */
    actor_spec b = {.id = 2, .name = "counter", .ns = "app", .owner = 8, .owner_node = 1};
    Manta__ActorInfo info = MANTA__ACTOR_INFO__INIT;
    mt_aid id2 = aid(2);
    info.actor_id = BIN(id2.b, MT_ACTOR_ID_LEN);
    info.name = "counter";
    info.ns = "app";
    Manta__ActorRegister m = MANTA__ACTOR_REGISTER__INIT;
    m.request_id = 2;
    m.info = &info;
    m.get_if_exists = true;
    ck_assert_int_eq(mt_gcs_handle(G, &C2, MANTA__MSG_TYPE__MSG_ACTOR_REGISTER, &m.base), 0);
    const sent *s = take(&C2, MANTA__MSG_TYPE__MSG_ACTOR_REGISTER_REPLY);
    Manta__ActorRegisterReply *r = manta__actor_register_reply__unpack(NULL, s->len, s->buf);
    ck_assert_int_eq(r->status, MANTA_EEXIST);
    mt_aid id1 = aid(1);
    ck_assert_ptr_nonnull(r->info);
    ck_assert(!memcmp(r->info->actor_id.data, id1.b, MT_ACTOR_ID_LEN));
    ck_assert_str_eq(r->info->class_name, "Counter");
    manta__actor_register_reply__free_unpacked(r, NULL);
    ck_assert_int_eq(actor_register(&C2, 3, b), MANTA_EEXIST);
    b.ns = "other";
    ck_assert_int_eq(actor_register(&C2, 4, b), 0);
    /* The refused registration left no actor behind. */
    actor_spec c = {.id = 3, .name = "counter", .ns = "app"};
    ck_assert_int_eq(actor_register(&C2, 5, c), MANTA_EEXIST);
    lookup(&C2, 6, 3, NULL, NULL, false);
    Manta__ActorLookupReply *lr = lookup_reply(&C2, 6);
    ck_assert_int_eq(lr->status, MANTA_ENOENT);
    manta__actor_lookup_reply__free_unpacked(lr, NULL);
    /* Lookups by name see their namespace only. */
    lookup(&C2, 7, 0, "counter", "app", false);
    expect_actor(&C2, 7, 1, PENDING);
    lookup(&C2, 8, 0, "counter", "other", false);
    expect_actor(&C2, 8, 2, PENDING);
    lookup(&C2, 9, 0, "counter", "", false);
    lr = lookup_reply(&C2, 9);
    ck_assert_int_eq(lr->status, MANTA_ENOENT);
    ck_assert_uint_eq(lr->n_actors, 0);
    manta__actor_lookup_reply__free_unpacked(lr, NULL);
    /* ray.kill(): dead, intentional, its worker killed, its name free. */
    alive_on(1, 20, 1, 0);
    mt_aid k1 = aid(1);
    Manta__ActorKill k = MANTA__ACTOR_KILL__INIT;
    k.actor_id = BIN(k1.b, MT_ACTOR_ID_LEN);
    k.no_restart = true;
    ck_assert_int_eq(mt_gcs_handle(G, &C2, MANTA__MSG_TYPE__MSG_ACTOR_KILL, &k.base), 0);
    expect_cause(1, "ray.kill()");
    Manta__ActorInfo *now = actor_now(1);
    ck_assert(now->intentional);
    manta__actor_info__free_unpacked(now, NULL);
    ck_assert_uint_eq(F.nkills, 1);
    expect_kill(0, 20, 1);
    lookup(&C2, 10, 0, "counter", "app", false);
    lr = lookup_reply(&C2, 10);
    ck_assert_int_eq(lr->status, MANTA_ENOENT);
    manta__actor_lookup_reply__free_unpacked(lr, NULL);
    c.id = 4;
    ck_assert_int_eq(actor_register(&C2, 11, c), 0);
    lookup(&C2, 12, 0, "counter", "app", false);
    expect_actor(&C2, 12, 4, PENDING);
    /* The dead actor is still known by id. */
    lookup(&C2, 13, 1, NULL, NULL, false);
    expect_actor(&C2, 13, 1, DEAD);
    ck_assert_uint_eq(pending(), 0);
}
END_TEST

START_TEST(test_actor_constructor_failed)
{
    /* The owner reports DEAD (the constructor raised): the cause is kept,
     * the name is free, waiters are answered. */
    connect_process(wid(9));
    actor_register(&C1, 0, (actor_spec){.id = 1, .name = "a", .ns = "x", .owner = 9,
                                        .owner_node = 1, .max_restarts = 5});
    actor_update(1, PENDING, 20, 1, 0, NULL);
    lookup(&C2, 1, 0, "a", "x", true);
    actor_update(1, DEAD, 0, 0, 0, "ValueError: bad argument");
    expect_actor(&C2, 1, 1, DEAD);
    expect_cause(1, "ValueError: bad argument");
    ck_assert_int_eq(actor_register(&C1, 2, (actor_spec){.id = 2, .name = "a", .ns = "x"}), 0);
    /* Its worker's death, heard later, changes nothing. */
    mt_wid w20 = wid(20);
    mt_gcs_actor_worker_died(G, &w20, 1);
    expect_cause(1, "ValueError: bad argument");
}
END_TEST

START_TEST(test_actor_kill_restart)
{
    /* kill(no_restart=False): the worker dies and the death decides. */
    connect_process(wid(9));
    actor_register(&C1, 0, (actor_spec){.id = 1, .owner = 9, .owner_node = 1, .max_restarts = 1});
    alive_on(1, 20, 3, 0);
    mt_aid a = aid(1);
    Manta__ActorKill k = MANTA__ACTOR_KILL__INIT;
    k.actor_id = BIN(a.b, MT_ACTOR_ID_LEN);
    ck_assert_int_eq(mt_gcs_handle(G, &C2, MANTA__MSG_TYPE__MSG_ACTOR_KILL, &k.base), 0);
    ck_assert_uint_eq(F.nkills, 1);
    expect_kill(0, 20, 3);
    ck_assert_int_eq(state_of(1), ALIVE);
    mt_wid w20 = wid(20);
    mt_gcs_actor_worker_died(G, &w20, -9);
    ck_assert_int_eq(state_of(1), RESTARTING);
    /* A kill of an actor with no worker, or of no actor, kills nothing. */
    ck_assert_int_eq(mt_gcs_handle(G, &C2, MANTA__MSG_TYPE__MSG_ACTOR_KILL, &k.base), 0);
    Manta__ActorKill none = MANTA__ACTOR_KILL__INIT;
    ck_assert_int_eq(mt_gcs_handle(G, &C2, MANTA__MSG_TYPE__MSG_ACTOR_KILL, &none.base), 0);
    ck_assert_uint_eq(F.nkills, 1);
}
END_TEST

START_TEST(test_actor_wait_alive)
{
    actor_register(&C1, 0, (actor_spec){.id = 1, .name = "a", .owner = 9, .owner_node = 1});
    actor_register(&C1, 0, (actor_spec){.id = 2, .owner = 9, .owner_node = 1});
    /* Lookups that wait are answered when the actor settles... */
    lookup(&C1, 1, 1, NULL, NULL, true);
    lookup(&C2, 2, 0, "a", "", true);
    lookup(&C3, 3, 1, NULL, NULL, true);
    lookup(&C2, 4, 2, NULL, NULL, true);
    ck_assert_uint_eq(pending(), 0);
    actor_update(1, PENDING, 20, 1, 0, NULL); /* not yet */
    ck_assert_uint_eq(pending(), 0);
    mt_gcs_client_gone(G, &C3, NULL); /* owed nothing any more */
    alive_on(1, 20, 1, 0);
    ck_assert_uint_eq(pending(), 2);
    void *first = F.msgs[F.taken].client;
    expect_actor(first, first == &C1 ? 1 : 2, 1, ALIVE);
    void *second = first == &C1 ? (void *)&C2 : (void *)&C1;
    expect_actor(second, second == &C1 ? 1 : 2, 1, ALIVE);
    ck_assert_uint_eq(pending(), 0);
    /* ... alive now: no wait; dead: answered too. */
    lookup(&C1, 5, 1, NULL, NULL, true);
    expect_actor(&C1, 5, 1, ALIVE);
    mt_aid a2 = aid(2);
    Manta__ActorKill k = MANTA__ACTOR_KILL__INIT;
    k.actor_id = BIN(a2.b, MT_ACTOR_ID_LEN);
    k.no_restart = true;
    ck_assert_int_eq(mt_gcs_handle(G, &C1, MANTA__MSG_TYPE__MSG_ACTOR_KILL, &k.base), 0);
    expect_actor(&C2, 4, 2, DEAD);
    lookup(&C2, 6, 2, NULL, NULL, true);
    expect_actor(&C2, 6, 2, DEAD);
    /* A wait for no such actor is answered at once. */
    lookup(&C2, 7, 0, "nobody", "", true);
    Manta__ActorLookupReply *r = lookup_reply(&C2, 7);
    ck_assert_int_eq(r->status, MANTA_ENOENT);
    manta__actor_lookup_reply__free_unpacked(r, NULL);
    /* Destroying the store drops the lookups still waiting. */
    actor_register(&C1, 0, (actor_spec){.id = 3, .owner = 9, .owner_node = 1});
    lookup(&C2, 8, 3, NULL, NULL, true);
    ck_assert_uint_eq(pending(), 0);
}
END_TEST

START_TEST(test_actor_owner_leaves)
{
    mt_wid owner = wid(9);
    /* 1: owned, not detached; 2: detached, alive on a worker; 3: detached,
     * its constructor on a worker (PENDING with an address); 4: detached,
     * never reached a worker; 5: another owner's. */
    actor_register(&C1, 0, (actor_spec){.id = 1, .name = "one", .owner = 9, .owner_node = 1});
    actor_register(&C1, 0, (actor_spec){.id = 2, .owner = 9, .owner_node = 1, .detached = true});
    actor_register(&C1, 0, (actor_spec){.id = 3, .owner = 9, .owner_node = 1, .detached = true});
    actor_register(&C1, 0, (actor_spec){.id = 4, .owner = 9, .owner_node = 1, .detached = true});
    actor_register(&C2, 0, (actor_spec){.id = 5, .owner = 8, .owner_node = 1});
    alive_on(1, 21, 1, 0);
    alive_on(2, 22, 1, 0);
    actor_update(3, PENDING, 23, 1, 0, NULL);
    /* A client without a process id owns nothing. */
    mt_gcs_client_gone(G, &C1, NULL);
    ck_assert_int_eq(state_of(1), ALIVE);
    mt_gcs_client_gone(G, &C1, &owner);
    expect_cause(1, "owner (the process that created it) has died");
    ck_assert_int_eq(state_of(2), ALIVE);
    ck_assert_int_eq(state_of(3), PENDING);
    expect_cause(4, "creator died before the actor's constructor reached a worker");
    ck_assert_int_eq(state_of(5), PENDING);
    /* Only the actor that had a worker had one to kill; its name is free. */
    ck_assert_uint_eq(F.nkills, 1);
    expect_kill(0, 21, 1);
    ck_assert_int_eq(actor_register(&C2, 1, (actor_spec){.id = 6, .name = "one", .owner = 8}), 0);
    /* The detached actor whose constructor was running comes up. */
    alive_on(3, 23, 1, 0);
    ck_assert_int_eq(state_of(3), ALIVE);
}
END_TEST

START_TEST(test_actor_node_dies)
{
    connect_process(wid(8)); /* owner of node 2, still there */
    /* Owners on node 1: 1 not detached; 2 detached on node 2's worker;
     * 3 detached without a worker.  Owner 8 on node 2: 4 on node 1 (one
     * restart left), 5 on node 3. */
    actor_register(&C1, 0, (actor_spec){.id = 1, .owner = 9, .owner_node = 1});
    actor_register(&C1, 0, (actor_spec){.id = 2, .owner = 9, .owner_node = 1, .detached = true});
    actor_register(&C1, 0, (actor_spec){.id = 3, .owner = 9, .owner_node = 1, .detached = true});
    actor_register(&C2, 0, (actor_spec){.id = 4, .owner = 8, .owner_node = 2, .max_restarts = 1});
    actor_register(&C2, 0, (actor_spec){.id = 5, .owner = 8, .owner_node = 2});
    alive_on(1, 21, 2, 0);
    alive_on(2, 22, 2, 0);
    alive_on(4, 24, 1, 0);
    alive_on(5, 25, 3, 0);
    mt_nid n1 = nid(1);
    mt_gcs_node_died(G, &n1);
    expect_cause(1, "its node died");
    ck_assert_int_eq(state_of(2), ALIVE);
    expect_cause(3, "creator died (its node died)");
    ck_assert_int_eq(state_of(4), RESTARTING);
    ck_assert_int_eq(state_of(5), ALIVE);
    /* The dead owner's actor on a live node has its worker killed. */
    ck_assert_uint_eq(F.nkills, 1);
    expect_kill(0, 21, 2);
    /* A node whose actors lost their workers and have no restart left. */
    alive_on(4, 26, 3, 1);
    mt_nid n3 = nid(3);
    mt_gcs_node_died(G, &n3);
    expect_cause(4, "its node died");
    expect_cause(5, "its node died");
    ck_assert_int_eq(state_of(2), ALIVE);
}
END_TEST

START_TEST(test_actor_list_and_bad)
{
    /* list_all: every actor, dead ones too. */
    actor_register(&C1, 0, (actor_spec){.id = 1, .owner = 9, .owner_node = 1});
    actor_register(&C1, 0, (actor_spec){.id = 2, .owner = 9, .owner_node = 1});
    mt_wid owner = wid(9);
    mt_gcs_client_gone(G, &C1, &owner);
    actor_register(&C2, 0, (actor_spec){.id = 3, .owner = 8, .owner_node = 1});
    Manta__ActorLookup l = MANTA__ACTOR_LOOKUP__INIT;
    l.request_id = 1;
    l.list_all = true;
    ck_assert_int_eq(mt_gcs_handle(G, &C2, MANTA__MSG_TYPE__MSG_ACTOR_LOOKUP, &l.base), 0);
    Manta__ActorLookupReply *r = lookup_reply(&C2, 1);
    ck_assert_int_eq(r->status, 0);
    ck_assert_uint_eq(r->n_actors, 3);
    int dead = 0;
    for (size_t i = 0; i < r->n_actors; i++) dead += r->actors[i]->state == DEAD;
    ck_assert_int_eq(dead, 2);
    manta__actor_lookup_reply__free_unpacked(r, NULL);
    /* Registrations without an actor id get an error reply, updates without
     * one a warning; the sender keeps its connection either way. */
    Manta__ActorRegister reg = MANTA__ACTOR_REGISTER__INIT;
    reg.request_id = 2;
    ck_assert_int_eq(mt_gcs_handle(G, &C2, MANTA__MSG_TYPE__MSG_ACTOR_REGISTER, &reg.base), 0);
    Manta__ActorInfo info = MANTA__ACTOR_INFO__INIT;
    info.actor_id = BIN("short", 5);
    reg.info = &info;
    ck_assert_int_eq(mt_gcs_handle(G, &C2, MANTA__MSG_TYPE__MSG_ACTOR_REGISTER, &reg.base), 0);
    for (int i = 0; i < 2; i++) {
        const sent *s = take(&C2, MANTA__MSG_TYPE__MSG_ACTOR_REGISTER_REPLY);
        Manta__ActorRegisterReply *rr = manta__actor_register_reply__unpack(NULL, s->len, s->buf);
        ck_assert_ptr_nonnull(rr);
        ck_assert_uint_eq(rr->request_id, 2);
        ck_assert_int_eq(rr->status, MANTA_EINVAL);
        manta__actor_register_reply__free_unpacked(rr, NULL);
    }
    Manta__ActorUpdate u = MANTA__ACTOR_UPDATE__INIT;
    ck_assert_int_eq(mt_gcs_handle(G, &C2, MANTA__MSG_TYPE__MSG_ACTOR_UPDATE, &u.base), 0);
    take(&C2, MANTA__MSG_TYPE__MSG_WARNING);
    /* A lookup by an id of the wrong size and no name finds nothing. */
    Manta__ActorLookup bad = MANTA__ACTOR_LOOKUP__INIT;
    bad.request_id = 3;
    bad.actor_id = BIN("short", 5);
    ck_assert_int_eq(mt_gcs_handle(G, &C2, MANTA__MSG_TYPE__MSG_ACTOR_LOOKUP, &bad.base), 0);
    r = lookup_reply(&C2, 3);
    ck_assert_int_eq(r->status, MANTA_ENOENT);
    manta__actor_lookup_reply__free_unpacked(r, NULL);
    ck_assert_uint_eq(pending(), 0);
}
END_TEST

static Suite *gcs_suite(void)
{
    Suite *s = suite_create("gcs");
    TCase *tc = tcase_create("tables");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_job_ids);
    tcase_add_test(tc, test_kv);
    tcase_add_test(tc, test_kv_wait);
    tcase_add_test(tc, test_functions);
    tcase_add_test(tc, test_not_ours);
    suite_add_tcase(s, tc);
    tc = tcase_create("actors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_actor_restarts);
    tcase_add_test(tc, test_actor_restart_needs_owner);
    tcase_add_test(tc, test_actor_stale_reports);
    tcase_add_test(tc, test_actor_names);
    tcase_add_test(tc, test_actor_constructor_failed);
    tcase_add_test(tc, test_actor_kill_restart);
    tcase_add_test(tc, test_actor_wait_alive);
    tcase_add_test(tc, test_actor_owner_leaves);
    tcase_add_test(tc, test_actor_node_dies);
    tcase_add_test(tc, test_actor_list_and_bad);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gcs_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
