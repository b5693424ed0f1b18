/* gen_corpus.c -- writes the seed corpus of every fuzz target, run at build
 * time so the seeds follow the current schema:
 *
 *   gen_corpus OUT_DIR   ->  OUT_DIR/<target>/seed-NNN
 *
 * Wire seeds are made from the message descriptors themselves: for each
 * message type one message with every field set (ids at their fixed
 * lengths, two elements per repeated field, nested messages filled in) and
 * one empty message.  Value seeds cover every format with 0..5 buffers;
 * resource seeds are typical and tricky JSON objects.  Handler seeds
 * (fuzz_node) are scripts (fuzz_script.h) of what a daemon's peers really
 * say, one conversation each, and fuzz_core's mix calls of the runtime's
 * API with what its node and peers answer; they are kept in the repository:
 *
 *   gen_corpus fuzz/corpus fuzz_node   ->  only that target's seeds */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "ids.h"
#include "mt.h"
#include "value.h"
#include "wire.h"
#include "fuzz_script.h"

static const char *out_dir;
static const char *only; /* write only this target's seeds */

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) && errno != EEXIST) {
        fprintf(stderr, "gen_corpus: mkdir %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void write_seed(const char *target, int n, const void *data, size_t size)
{
    if (only && strcmp(only, target)) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    make_dir(path);
    snprintf(path, sizeof path, "%s/%s/seed-%03d", out_dir, target, n);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        fprintf(stderr, "gen_corpus: cannot write %s\n", path);
        exit(1);
    }
}

/* ---------------------------------------------------------------- messages */

/* Same table as the validator's: ids have fixed lengths. */
static size_t id_len(const char *field)
{
    if (!strcmp(field, "id")) return MT_WORKER_ID_LEN; /* Event: a worker or node id */
    return mt_wire_id_len(field);
}

static uint8_t counter = 1;

static void fill_message(ProtobufCMessage *m, mt_arena *a, int depth);

static void *arena_alloc(mt_arena *a, size_t n)
{
    return a->pa.alloc(a->pa.allocator_data, n);
}

/* One element of field `fd` at `dst`. */
static void fill_value(const ProtobufCFieldDescriptor *fd, void *dst, mt_arena *a, int depth)
{
    uint8_t c = counter++;
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)dst = c % 2 ? -(int32_t)c : c;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)dst = 1000u * c;
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)dst = c % 2 ? -10000LL * c : 10000LL * c;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)dst = (uint64_t)c << 33 | c;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)dst = 0.5f * c;
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)dst = 0.25 * c;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)dst = 1;
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = fd->descriptor;
        *(int *)dst = ed->values[ed->n_values > 1 ? 1 + c % (ed->n_values - 1) : 0].value;
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        char *s = arena_alloc(a, 32);
        snprintf(s, 32, "%s-%u", fd->name, c);
        *(char **)dst = s;
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        size_t n = id_len(fd->name);
        if (!n) n = 8 + c % 24;
        uint8_t *b = arena_alloc(a, n);
        for (size_t i = 0; i < n; i++)
            b[i] = (uint8_t)(c + i * 7);
        *(ProtobufCBinaryData *)dst = MT_BIN(b, n);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *d = fd->descriptor;
        ProtobufCMessage *sub = arena_alloc(a, d->sizeof_message);
        protobuf_c_message_init(d, sub);
        fill_message(sub, a, depth + 1);
        *(ProtobufCMessage **)dst = sub;
        break;
    }
    }
}

static size_t elem_size(const ProtobufCFieldDescriptor *fd)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

static void fill_message(ProtobufCMessage *m, mt_arena *a, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    uint8_t *base = (uint8_t *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) continue;
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE && depth >= 4) continue;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = 2;
            uint8_t *arr = arena_alloc(a, n * elem_size(fd));
            for (size_t k = 0; k < n; k++)
                fill_value(fd, arr + k * elem_size(fd), a, depth);
            *(size_t *)(base + fd->quantifier_offset) = n;
            *(void **)(base + fd->offset) = arr;
        } else {
            fill_value(fd, base + fd->offset, a, depth);
            if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->quantifier_offset &&
                fd->type != PROTOBUF_C_TYPE_MESSAGE && fd->type != PROTOBUF_C_TYPE_STRING)
                *(protobuf_c_boolean *)(base + fd->quantifier_offset) = 1;
        }
    }
}

static int wire_seeds(void)
{
    const ProtobufCEnumDescriptor *ed = &manta__msg_type__descriptor;
    mt_arena a;
    mt_arena_init(&a);
    mt_buf all, pairs;
    mt_buf_init(&all);
    mt_buf_init(&pairs);
    int nf = 0, nd = 0;
    for (unsigned i = 0; i < ed->n_values; i++) {
        uint16_t type = (uint16_t)ed->values[i].value;
        const ProtobufCMessageDescriptor *d = mt_wire_desc(type);
        if (!d) continue;
        for (int full = 0; full < 2; full++) {
            ProtobufCMessage *m = arena_alloc(&a, d->sizeof_message);
            protobuf_c_message_init(d, m);
            if (full) fill_message(m, &a, 0);
            char err[256];
            if (mt_wire_validate(m, err, sizeof err)) {
                fprintf(stderr, "gen_corpus: %s seed invalid: %s\n", mt_wire_name(type), err);
                return 1;
            }
            mt_buf b;
            mt_buf_init(&b);
            mt_wire_append(&b, type, m);
            write_seed("fuzz_frame", nf++, b.data, b.len);
            if (full) mt_buf_append(&all, b.data, b.len);
            if (full && i % 5 == 0) mt_buf_append(&pairs, b.data, b.len);
            /* fuzz_decode: u16 type, then the payload. */
            b.data[MT_FRAME_HDR - 2] = (uint8_t)type;
            b.data[MT_FRAME_HDR - 1] = (uint8_t)(type >> 8);
            write_seed("fuzz_decode", nd++, b.data + MT_FRAME_HDR - 2, b.len - MT_FRAME_HDR + 2);
            mt_buf_free(&b);
        }
        mt_arena_reset(&a);
    }
    write_seed("fuzz_frame", nf++, all.data, all.len);     /* every type in one stream */
    write_seed("fuzz_frame", nf++, pairs.data, pairs.len); /* a few */
    mt_buf_free(&all);
    mt_buf_free(&pairs);
    mt_arena_free(&a);
    return 0;
}

/* ---------------------------------------------------------------- values */

static int value_seeds(void)
{
    int n = 0;
    static const uint64_t lens[5] = {1, 64, 0, 100, 7};
    for (uint32_t nbufs = 0; nbufs <= 5; nbufs++) {
        for (uint8_t fmt = MT_FMT_RAW; fmt <= MT_FMT_C_ERROR; fmt++) {
            uint64_t meta_len = 5 + nbufs * 3;
            uint64_t size = mt_valfmt_size(meta_len, lens, nbufs);
            mt_value *v = mt_value_new(size);
            memset(v->data, 0, size);
            uint64_t meta = mt_valfmt_write(v->data, fmt, fmt == MT_FMT_ERROR ? MANTA_ETIMEDOUT : 0,
                                            meta_len, lens, nbufs);
            for (uint64_t i = 0; i < meta_len; i++)
                v->data[meta + i] = (uint8_t)('a' + i);
            for (uint32_t b = 0; b < nbufs; b++)
                memset(v->data + mt_valfmt_buf_off(v->data, b), 0x30 + (int)b, lens[b]);
            write_seed("fuzz_value", n++, v->data, v->size);
            mt_value_unref(v);
        }
    }
    mt_value *v = mt_value_raw("hello", 5);
    write_seed("fuzz_value", n++, v->data, v->size);
    mt_value_unref(v);
    v = mt_value_raw(NULL, 0);
    write_seed("fuzz_value", n++, v->data, v->size);
    mt_value_unref(v);
    v = mt_value_error(MANTA_EWORKERDIED, "worker %d died", 1234);
    write_seed("fuzz_value", n++, v->data, v->size);
    mt_value_unref(v);
    return 0;
}

/* ---------------------------------------------------------------- JSON */

static int resource_seeds(void)
{
    static const char *docs[] = {
        "{}",
        "{\"CPU\": 1}",
        "{\"CPU\": 4, \"GPU\": 0.5, \"memory\": 17179869184}",
        "{\"fpga\": 2, \"accel\": 0.0001, \"zero\": 0}",
        " {\n\t\"object_store_memory\" : 1e9 ,\"x\":1E+2 } ",
        "{\"caf\\u00e9\": 3, \"\\ud83d\\ude00\": 1, \"tab\\tname\": 1}",
        "{\"esc\\\"\\\\\\/\\b\\f\\n\\r\": 0.25}",
        "{\"neg\": -1}",
        "{\"a\": 1, \"a\": 2}",
        "{\"nested\": {\"x\": 1}}",
        "{\"big\": 1000000000, \"frac\": 1.5, \"tiny\": 0.00004}",
        "{\"\xc3\xa9t\xc3\xa9\": 2.0000}",
        "[1, 2]",
        "{\"u\": 123456789012345678901234567890}",
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(docs); i++)
        write_seed("fuzz_resources", (int)i, docs[i], strlen(docs[i]));
    return 0;
}

/* ---------------------------------------------------------------- handler scripts */

static uint16_t types[256];
static size_t ntypes;

static void s_byte(mt_buf *s, uint8_t b) { mt_buf_append(s, &b, 1); }

static void s_connect(mt_buf *s, int role, uint8_t arg)
{
    size_t i = 0;
    while (fuzz_roles[i] != role) i++;
    s_byte(s, FUZZ_STEP_CONNECT);
    s_byte(s, (uint8_t)i);
    s_byte(s, arg);
}

static void s_frame(mt_buf *s, uint8_t slot, uint16_t type, const ProtobufCMessage *m)
{
    size_t i = 0;
    while (i < ntypes && types[i] != type) i++;
    if (i == ntypes) {
        fprintf(stderr, "gen_corpus: no message type %u\n", type);
        exit(1);
    }
    mt_buf b;
    mt_buf_init(&b);
    mt_wire_append(&b, type, m);
    size_t len = b.len - MT_FRAME_HDR;
    if (len > 0xffff) exit(1);
    s_byte(s, FUZZ_STEP_FRAME);
    s_byte(s, slot);
    s_byte(s, (uint8_t)i);
    s_byte(s, (uint8_t)len);
    s_byte(s, (uint8_t)(len >> 8));
    mt_buf_append(s, b.data + MT_FRAME_HDR, len);
    mt_buf_free(&b);
}

static void s_begin(mt_buf *s, uint8_t node)
{
    mt_buf_init(s);
    s_byte(s, node); /* even: a head; odd: a node that joined one */
}

static void s_end(mt_buf *s, int *n)
{
    write_seed("fuzz_node", (*n)++, s->data, s->len);
    mt_buf_free(s);
}

/* The periodic work, the script's end of `slot` closing, the work again. */
static void s_leave(mt_buf *s, uint8_t slot)
{
    s_byte(s, FUZZ_STEP_TICK);
    s_byte(s, FUZZ_STEP_HANGUP);
    s_byte(s, slot);
    s_byte(s, FUZZ_STEP_TICK);
}

#define S_FRAME(s, slot, T, msg) s_frame(s, slot, MANTA__MSG_TYPE__MSG_##T, &(msg).base)

static uint8_t wid_of[16][MT_WORKER_ID_LEN], nid_of[16][MT_NODE_ID_LEN];
static uint8_t oids[4][MT_OBJECT_ID_LEN];
static uint8_t aid[MT_ACTOR_ID_LEN], fid[MT_FN_ID_LEN];

static Manta__Resource cpu1 = {PROTOBUF_C_MESSAGE_INIT(&manta__resource__descriptor), "CPU", 10000};
static Manta__Resource cpu8 = {PROTOBUF_C_MESSAGE_INIT(&manta__resource__descriptor), "CPU", 80000};
static Manta__Resource gpu1 = {PROTOBUF_C_MESSAGE_INIT(&manta__resource__descriptor), "GPU", 10000};
static Manta__Resource cust = {PROTOBUF_C_MESSAGE_INIT(&manta__resource__descriptor), "custom", 30000};

static void lease(mt_buf *s, uint8_t slot, uint64_t req, Manta__Resource **demand, size_t nd,
                  const char *runtime, bool actor)
{
    Manta__LeaseRequest m = MANTA__LEASE_REQUEST__INIT;
    m.request_id = req;
    m.demand = demand;
    m.n_demand = nd;
    m.language = runtime[0] ? MANTA__LANGUAGE__LANG_C : MANTA__LANGUAGE__LANG_PYTHON;
    m.runtime = (char *)runtime;
    m.name = "f";
    if (actor) {
        m.for_actor = true;
        m.actor_id = MT_BIN(aid, sizeof aid);
        m.placement = demand;
        m.n_placement = nd;
    }
    S_FRAME(s, slot, LEASE_REQUEST, m);
}

static void put_object(mt_buf *s, uint8_t slot, int k, uint8_t client, uint64_t size)
{
    Manta__Address owner = MANTA__ADDRESS__INIT;
    owner.worker_id = MT_BIN(wid_of[client], MT_WORKER_ID_LEN);
    Manta__ObjCreate c = MANTA__OBJ_CREATE__INIT;
    c.request_id = 10 + (uint64_t)k;
    c.object_id = MT_BIN(oids[k], MT_OBJECT_ID_LEN);
    c.size = size;
    c.owner = &owner;
    S_FRAME(s, slot, OBJ_CREATE, c);
    Manta__ObjSeal seal = MANTA__OBJ_SEAL__INIT;
    seal.object_id = c.object_id;
    S_FRAME(s, slot, OBJ_SEAL, seal);
}

static void get_object(mt_buf *s, uint8_t slot, int k, int64_t timeout, const uint8_t *loc)
{
    ProtobufCBinaryData id = MT_BIN(oids[k], MT_OBJECT_ID_LEN), where;
    Manta__ObjGet g = MANTA__OBJ_GET__INIT;
    g.request_id = 20 + (uint64_t)k;
    g.n_object_ids = 1;
    g.object_ids = &id;
    g.timeout_ms = timeout;
    g.pin = true;
    if (loc) {
        where = MT_BIN(loc, MT_NODE_ID_LEN);
        g.n_locations = 1;
        g.locations = &where;
    }
    S_FRAME(s, slot, OBJ_GET, g);
}

static void status(Manta__NodeStatus *ns, const uint8_t *nid, const char *ep,
                   Manta__Resource **res, size_t nres)
{
    manta__node_status__init(ns);
    ns->node_id = MT_BIN(nid, MT_NODE_ID_LEN);
    ns->endpoint = (char *)ep;
    ns->alive = true;
    ns->total = ns->available = res;
    ns->n_total = ns->n_available = nres;
    ns->store_capacity = 1u << 20;
}

static int node_seeds(void)
{
    ntypes = fuzz_msg_types(types, MT_ARRAY_LEN(types));
    for (int k = 0; k < 16; k++) {
        memset(wid_of[k], FUZZ_CLIENT_WID(k), MT_WORKER_ID_LEN);
        memset(nid_of[k], FUZZ_NODE_NID(k), MT_NODE_ID_LEN);
    }
    for (int k = 0; k < 4; k++) memset(oids[k], 0x60 + k, MT_OBJECT_ID_LEN);
    memset(aid, 0x77, sizeof aid);
    memset(fid, 0x66, sizeof fid);
    uint8_t head[MT_NODE_ID_LEN], worker0[MT_WORKER_ID_LEN];
    memset(head, FUZZ_HEAD_NID, sizeof head);
    memset(worker0, FUZZ_WORKER_WID(0), sizeof worker0);
    Manta__Resource *c1[] = {&cpu1}, *c8[] = {&cpu8}, *g1[] = {&cpu1, &gpu1}, *cu[] = {&cust};
    int n = 0;
    mt_buf s;

    /* A driver leases a python worker, which registers; the lease comes
     * back, the worker blocks and unblocks, the driver leaves. */
    s_begin(&s, 0);
    s_connect(&s, MANTA__ROLE__ROLE_DRIVER, 0);
    lease(&s, 0, 1, g1, 2, "", false);
    s_connect(&s, MANTA__ROLE__ROLE_WORKER, 0);
    Manta__LeaseReturn ret = MANTA__LEASE_RETURN__INIT;
    ret.worker_id = MT_BIN(worker0, sizeof worker0);
    Manta__WorkerBlocked wb = MANTA__WORKER_BLOCKED__INIT;
    wb.blocked = true;
    S_FRAME(&s, 1, WORKER_BLOCKED, wb);
    S_FRAME(&s, 1, WORKER_UNBLOCKED, wb);
    S_FRAME(&s, 0, LEASE_RETURN, ret);
    lease(&s, 0, 2, c1, 1, "exe:/fuzz/driver", true);
    Manta__LeaseCancel lc = MANTA__LEASE_CANCEL__INIT;
    lc.request_id = 2;
    S_FRAME(&s, 0, LEASE_CANCEL, lc);
    s_leave(&s, 0);
    s_end(&s, &n);

    /* Objects: create, seal, get, release, free; a get that waits. */
    s_begin(&s, 0);
    s_connect(&s, MANTA__ROLE__ROLE_DRIVER, 0);
    s_connect(&s, MANTA__ROLE__ROLE_DRIVER, 1);
    get_object(&s, 1, 0, -1, NULL);
    put_object(&s, 0, 0, 0, 100);
    put_object(&s, 0, 1, 0, 900000);
    put_object(&s, 1, 2, 1, 300000);
    get_object(&s, 1, 1, 1000, NULL);
    ProtobufCBinaryData ids[2] = {MT_BIN(oids[0], MT_OBJECT_ID_LEN), MT_BIN(oids[1], MT_OBJECT_ID_LEN)};
    Manta__ObjRelease rel = MANTA__OBJ_RELEASE__INIT;
    rel.n_object_ids = 2;
    rel.object_ids = ids;
    S_FRAME(&s, 1, OBJ_RELEASE, rel);
    Manta__ObjFree fr = MANTA__OBJ_FREE__INIT;
    fr.n_object_ids = 2;
    fr.object_ids = ids;
    S_FRAME(&s, 0, OBJ_FREE, fr);
    Manta__ObjSeal ab = MANTA__OBJ_SEAL__INIT;
    ab.object_id = MT_BIN(oids[2], MT_OBJECT_ID_LEN);
    S_FRAME(&s, 1, OBJ_ABORT, ab);
    s_byte(&s, FUZZ_STEP_TICK);
    s_end(&s, &n);

    /* The control store: functions, keys, actors. */
    s_begin(&s, 0);
    s_connect(&s, MANTA__ROLE__ROLE_DRIVER, 0);
    s_connect(&s, MANTA__ROLE__ROLE_GCS_CLIENT, 1);
    Manta__FnGet fg = MANTA__FN_GET__INIT;
    fg.request_id = 3;
    fg.function_id = MT_BIN(fid, sizeof fid);
    fg.wait_ms = 1000;
    S_FRAME(&s, 1, FN_GET, fg);
    Manta__FnRegister fn = MANTA__FN_REGISTER__INIT;
    fn.function_id = fg.function_id;
    fn.body = MT_BIN((const uint8_t *)"body", 4);
    fn.name = "f";
    S_FRAME(&s, 0, FN_REGISTER, fn);
    Manta__KvGet kg = MANTA__KV_GET__INIT;
    kg.request_id = 4;
    kg.ns = "ns";
    kg.key = MT_BIN((const uint8_t *)"k", 1);
    kg.wait_ms = 1000;
    S_FRAME(&s, 0, KV_GET, kg);
    Manta__KvPut kp = MANTA__KV_PUT__INIT;
    kp.ns = "ns";
    kp.key = kg.key;
    kp.value = MT_BIN((const uint8_t *)"v", 1);
    kp.overwrite = true;
    S_FRAME(&s, 1, KV_PUT, kp);
    Manta__Address aaddr = MANTA__ADDRESS__INIT, aowner = MANTA__ADDRESS__INIT;
    aaddr.worker_id = MT_BIN(worker0, sizeof worker0);
    aaddr.endpoint = "unix:/nonexistent/w/a";
    aowner.worker_id = MT_BIN(wid_of[0], MT_WORKER_ID_LEN);
    Manta__ActorInfo ai = MANTA__ACTOR_INFO__INIT;
    ai.actor_id = MT_BIN(aid, sizeof aid);
    ai.name = "a";
    ai.ns = "ns";
    ai.state = MANTA__ACTOR_STATE__ACTOR_PENDING;
    ai.owner = &aowner;
    ai.class_name = "A";
    ai.max_restarts = 1;
    ai.job_id = 1;
    Manta__ActorRegister ar = MANTA__ACTOR_REGISTER__INIT;
    ar.request_id = 5;
    ar.info = &ai;
    S_FRAME(&s, 0, ACTOR_REGISTER, ar);
    Manta__ActorLookup al = MANTA__ACTOR_LOOKUP__INIT;
    al.request_id = 6;
    al.name = "a";
    al.ns = "ns";
    al.wait_alive = true;
    S_FRAME(&s, 1, ACTOR_LOOKUP, al);
    ai.state = MANTA__ACTOR_STATE__ACTOR_ALIVE;
    ai.address = &aaddr;
    Manta__ActorUpdate au = MANTA__ACTOR_UPDATE__INIT;
    au.info = &ai;
    S_FRAME(&s, 0, ACTOR_UPDATE, au);
    al.list_all = true;
    S_FRAME(&s, 1, ACTOR_LOOKUP, al);
    Manta__ActorKill ak = MANTA__ACTOR_KILL__INIT;
    ak.actor_id = ai.actor_id;
    S_FRAME(&s, 1, ACTOR_KILL, ak);
    s_byte(&s, FUZZ_STEP_TICK);
    s_end(&s, &n);

    /* Another node joins the head, reports, takes a spilled lease, holds
     * an object a driver here wants (a pull over a link: slot 2), and asks
     * for one of ours as a node peer; then dies. */
    s_begin(&s, 0);
    s_connect(&s, MANTA__ROLE__ROLE_NODE, 0x70);
    s_connect(&s, MANTA__ROLE__ROLE_DRIVER, 0);
    Manta__NodeStatus ns;
    status(&ns, nid_of[0], "tcp:127.0.0.1:1000", c8, 1);
    Manta__ResourceReport rr = MANTA__RESOURCE_REPORT__INIT;
    rr.node = &ns;
    S_FRAME(&s, 0, RESOURCE_REPORT, rr);
    lease(&s, 1, 7, c8, 1, "", false);
    get_object(&s, 1, 3, -1, nid_of[0]);
    Manta__ObjChunk ch = MANTA__OBJ_CHUNK__INIT;
    ch.object_id = MT_BIN(oids[3], MT_OBJECT_ID_LEN);
    ch.total_size = 8;
    ch.data = MT_BIN((const uint8_t *)"abcdefgh", 8);
    ch.owner = &aowner;
    S_FRAME(&s, 2, OBJ_CHUNK, ch);
    put_object(&s, 1, 0, 0, 64);
    s_connect(&s, MANTA__ROLE__ROLE_NODE_PEER, 0);
    Manta__ObjPull pl = MANTA__OBJ_PULL__INIT;
    pl.object_id = MT_BIN(oids[0], MT_OBJECT_ID_LEN);
    pl.length = 64;
    S_FRAME(&s, 3, OBJ_PULL, pl);
    fr.n_object_ids = 1;
    fr.location = MT_BIN(nid_of[0], MT_NODE_ID_LEN);
    S_FRAME(&s, 1, OBJ_FREE, fr);
    Manta__Event ev = MANTA__EVENT__INIT;
    ev.kind = MANTA__EVENT_KIND__EVENT_WORKER_DIED;
    ev.id = MT_BIN(wid_of[5], MT_WORKER_ID_LEN);
    S_FRAME(&s, 0, EVENT, ev);
    s_leave(&s, 0);
    s_end(&s, &n);

    /* A remote lessee, and a command that asks for the status and stops
     * the node. */
    s_begin(&s, 0);
    s_connect(&s, MANTA__ROLE__ROLE_LESSEE, 2);
    lease(&s, 0, 8, cu, 1, "", false);
    lease(&s, 0, 9, c8, 1, "lib:/fuzz/lib.so", false);
    lc.request_id = 9;
    S_FRAME(&s, 0, LEASE_CANCEL, lc);
    s_connect(&s, MANTA__ROLE__ROLE_CLI, 0);
    Manta__StatusRequest sr = MANTA__STATUS_REQUEST__INIT;
    sr.request_id = 10;
    S_FRAME(&s, 1, STATUS_REQUEST, sr);
    Manta__Shutdown sd = MANTA__SHUTDOWN__INIT;
    S_FRAME(&s, 1, SHUTDOWN, sd);
    s_end(&s, &n);

    /* A node that joined the head: the head (slot 0) sends its view, an
     * event and a kill; a worker of ours registers, a lease of a local
     * client is spilled to another node. */
    s_begin(&s, 1);
    s_connect(&s, MANTA__ROLE__ROLE_WORKER, 0);
    s_connect(&s, MANTA__ROLE__ROLE_WORKER, 1);
    Manta__NodeStatus hs, os;
    status(&hs, head, "tcp:127.0.0.1:7", c1, 1);
    hs.is_head = true;
    status(&os, nid_of[1], "tcp:127.0.0.1:1001", c8, 1);
    Manta__NodeStatus *view[] = {&hs, &os};
    Manta__ClusterView cv = MANTA__CLUSTER_VIEW__INIT;
    cv.n_nodes = 2;
    cv.nodes = view;
    S_FRAME(&s, 0, CLUSTER_VIEW, cv);
    lease(&s, 1, 11, c8, 1, "", false);
    Manta__KillWorker kw = MANTA__KILL_WORKER__INIT;
    kw.worker_id = MT_BIN(worker0, sizeof worker0);
    kw.reason = MANTA__DEATH_REASON__DEATH_KILLED;
    S_FRAME(&s, 0, KILL_WORKER, kw);
    ev.kind = MANTA__EVENT_KIND__EVENT_JOB_ENDED;
    ev.code = 1;
    S_FRAME(&s, 0, EVENT, ev);
    s_byte(&s, FUZZ_STEP_TICK);
    s_end(&s, &n);

    /* A client that says its own Hello (raw), and a second Hello. */
    s_begin(&s, 0);
    s_byte(&s, FUZZ_STEP_RAW);
    Manta__Hello h = MANTA__HELLO__INIT;
    h.version = MT_WIRE_VERSION;
    h.role = MANTA__ROLE__ROLE_DRIVER;
    h.worker_id = MT_BIN(wid_of[3], MT_WORKER_ID_LEN);
    S_FRAME(&s, 0, HELLO, h);
    S_FRAME(&s, 0, HELLO, h);
    s_end(&s, &n);
    return 0;
}

/* fuzz_core: a call of the runtime's API, or an answer from a slot. */
static void s_call(mt_buf *s, uint8_t kind, uint8_t arg)
{
    s_byte(s, kind);
    s_byte(s, arg);
}

static void s_answer(mt_buf *s, uint8_t slot, uint8_t arg)
{
    s_byte(s, FUZZ_CORE_ANSWER);
    s_byte(s, slot);
    s_byte(s, arg);
}

static void s_end_core(mt_buf *s, int *n)
{
    write_seed("fuzz_core", (*n)++, s->data, s->len);
    mt_buf_free(s);
}

static int core_seeds(void)
{
    int n = 0;
    mt_buf s;
    uint8_t worker0[MT_WORKER_ID_LEN];
    memset(worker0, FUZZ_WORKER_WID(0), sizeof worker0);

    /* A driver's task: leased, pushed, answered, its value read; the idle
     * lease goes back at a tick. */
    s_begin(&s, 0);
    s_call(&s, FUZZ_CORE_SUBMIT, 0);
    s_answer(&s, 0, 0);
    s_answer(&s, 1, 0);
    s_call(&s, FUZZ_CORE_GET, 0);
    s_byte(&s, FUZZ_STEP_TICK);
    s_call(&s, FUZZ_CORE_DROP, 0);
    s_byte(&s, FUZZ_STEP_TICK);
    s_end_core(&s, &n);

    /* A task with a ref argument spilled to another node (slot 1), which
     * grants a worker there (slot 2), whose reply is an error; another
     * task's lease refused. */
    s_begin(&s, 0);
    s_call(&s, FUZZ_CORE_PUT, 10);
    s_call(&s, FUZZ_CORE_SUBMIT, 0x09);
    s_answer(&s, 0, 2);
    s_answer(&s, 1, 0);
    s_answer(&s, 2, 1);
    s_call(&s, FUZZ_CORE_SUBMIT, 0x06);
    s_answer(&s, 0, 3);
    s_call(&s, FUZZ_CORE_CANCEL, 1);
    s_end_core(&s, &n);

    /* An actor: registered, leased, created; a method call answered; the
     * worker dies (an Event from the node). */
    s_begin(&s, 0);
    s_call(&s, FUZZ_CORE_ACTOR, 0);
    s_answer(&s, 0, 0);
    s_answer(&s, 1, 0);
    s_call(&s, FUZZ_CORE_CALL, 0);
    s_answer(&s, 1, 0);
    Manta__Event ev = MANTA__EVENT__INIT;
    ev.kind = MANTA__EVENT_KIND__EVENT_WORKER_DIED;
    ev.id = MT_BIN(worker0, sizeof worker0);
    ev.reason = MANTA__DEATH_REASON__DEATH_KILLED;
    S_FRAME(&s, 0, EVENT, ev);
    s_byte(&s, FUZZ_STEP_TICK);
    s_end_core(&s, &n);

    /* A driver whose control store is on another node (slot 1). */
    s_begin(&s, 2);
    s_call(&s, FUZZ_CORE_ACTOR, 5);
    s_answer(&s, 1, 0);
    s_answer(&s, 0, 4);
    s_call(&s, FUZZ_CORE_CALL, 1);
    s_byte(&s, FUZZ_STEP_HANGUP);
    s_byte(&s, 1);
    s_end_core(&s, &n);

    /* A worker: a peer pushes it two tasks, it runs them (one fails), one
     * more is cancelled. */
    s_begin(&s, 1);
    s_call(&s, FUZZ_STEP_CONNECT, 3);
    uint8_t tid[3][MT_TASK_ID_LEN];
    memset(fid, 0x66, sizeof fid);
    Manta__TaskSpec ts[3], *tsp[3];
    Manta__TaskArg arg = MANTA__TASK_ARG__INIT, *argp[1] = {&arg};
    uint8_t val[64];
    uint64_t off = mt_valfmt_write(val, MT_FMT_RAW, 0, 3, NULL, 0);
    memcpy(val + off, "arg", 3);
    arg.kind = MANTA__ARG_KIND__ARG_INLINE;
    arg.data = MT_BIN(val, off + 3);
    for (int i = 0; i < 3; i++) {
        memset(tid[i], 0x90 + i, MT_TASK_ID_LEN);
        manta__task_spec__init(&ts[i]);
        ts[i].task_id = MT_BIN(tid[i], MT_TASK_ID_LEN);
        ts[i].job_id = 1;
        ts[i].function_id = MT_BIN(fid, sizeof fid);
        ts[i].name = "f";
        ts[i].n_args = 1;
        ts[i].args = argp;
        ts[i].num_returns = 1;
        tsp[i] = &ts[i];
    }
    Manta__PushTask pt = MANTA__PUSH_TASK__INIT;
    pt.n_tasks = 3;
    pt.tasks = tsp;
    S_FRAME(&s, 1, PUSH_TASK, pt);
    s_call(&s, FUZZ_CORE_EXEC, 0);
    s_call(&s, FUZZ_CORE_EXEC, 1);
    Manta__CancelTask ct = MANTA__CANCEL_TASK__INIT;
    ct.task_id = ts[2].task_id;
    S_FRAME(&s, 1, CANCEL_TASK, ct);
    s_call(&s, FUZZ_CORE_EXEC, 2);
    s_byte(&s, FUZZ_STEP_TICK);
    s_end_core(&s, &n);
    return 0;
}

/* ---------------------------------------------------------------- session files */

static int layout_seeds(void)
{
    static const char *docs[] = {
        ("node_id=00ff\nsocket=/tmp/m/s-1/daemon.sock\nhost=127.0.0.1\nport=6379\nhead=1\n"
         "pid=4242\nstart=123456\nexe=/opt/manta/_bin/mantad\n"),
        "exe=/x\nstart=0\npid=2\nhead=0\nport=-1\nhost=\nsocket=\nnode_id=\nzone=b",
        "node_id=00\nsocket=s\nhost=h\nport=65536\nhead=2\npid=1\nstart=-1\nexe=e\npid=3\n",
        "12 34\n56 78\n9\n1 2\n2147483648 0\n3 9223372036854775807\n4 5 6",
        "",
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(docs); i++)
        write_seed("fuzz_layout", (int)i, docs[i], strlen(docs[i]));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: gen_corpus OUT_DIR [TARGET]\n");
        return 2;
    }
    out_dir = argv[1];
    only = argc == 3 ? argv[2] : NULL;
    make_dir(out_dir);
    if (wire_seeds() || value_seeds() || resource_seeds() || node_seeds() || core_seeds() ||
        layout_seeds())
        return 1;
    return 0;
}
