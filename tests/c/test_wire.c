/* test_wire.c -- unit tests of src/wire/wire.c: frames appended and peeked
 * back, incomplete and bad frames (size, version, type), validated decoding
 * (garbage, id lengths at every nesting level) and the decode arena. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ids.h"
#include "mt.h"
#include "wire.h"

#define MAXP (64u << 20)

/* ---------------------------------------------------------------- helpers */

/* ck_assert() reports every check that passes to the parent process
 * (CK_FORK), a write per check; hot loops use this quiet form. */
#define CK(cond)                                                                                   \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg("check failed: %s", #cond);                                      \
    } while (0)

static uint8_t idbuf[8][64];

/* A byte id of `n` bytes whose content depends on `seed` (n <= 64). */
static ProtobufCBinaryData id_of(int slot, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        idbuf[slot][i] = (uint8_t)(seed + i * 13);
    return MT_BIN(idbuf[slot], n);
}

/* Pack `msg` and decode it as `type`; returns the decode status and leaves
 * the reason in err. */
static int roundtrip(uint16_t type, const ProtobufCMessage *msg, mt_arena *a,
                     ProtobufCMessage **out, char *err, size_t errlen)
{
    mt_buf b;
    mt_buf_init(&b);
    mt_wire_append(&b, type, msg);
    mt_frame f;
    ck_assert_int_eq(mt_wire_peek(mt_buf_head(&b), mt_buf_avail(&b), MAXP, &f), 1);
    ck_assert_uint_eq(f.type, type);
    ck_assert_uint_eq(MT_FRAME_HDR + f.len, mt_buf_avail(&b));
    err[0] = '\0';
    ProtobufCMessage *m = NULL;
    int rc = mt_wire_decode(f.type, f.payload, f.len, a, &m, err, errlen);
    mt_buf_free(&b);
    if (out) *out = m;
    return rc;
}

static void expect_rejected(uint16_t type, const ProtobufCMessage *msg, const char *field,
                            size_t bad_len)
{
    mt_arena a;
    mt_arena_init(&a);
    char err[256];
    char want[96];
    snprintf(want, sizeof want, "field %s has %zu bytes", field, bad_len);
    int rc = roundtrip(type, msg, &a, NULL, err, sizeof err);
    ck_assert_msg(rc == MANTA_EPROTO, "%s of %zu bytes accepted", field, bad_len);
    ck_assert_msg(strstr(err, want) != NULL, "reason '%s' lacks '%s'", err, want);
    ck_assert_int_eq(mt_wire_validate(msg, err, sizeof err), MANTA_EPROTO);
    mt_arena_free(&a);
}

static void expect_accepted(uint16_t type, const ProtobufCMessage *msg)
{
    mt_arena a;
    mt_arena_init(&a);
    char err[256];
    int rc = roundtrip(type, msg, &a, NULL, err, sizeof err);
    ck_assert_msg(rc == 0, "rejected: %s", err);
    ck_assert_int_eq(mt_wire_validate(msg, err, sizeof err), 0);
    mt_arena_free(&a);
}

/* ---------------------------------------------------------------- frames */

START_TEST(test_roundtrip_many)
{
    mt_buf b;
    mt_buf_init(&b);

    Manta__Address addr = MANTA__ADDRESS__INIT;
    addr.worker_id = id_of(0, MT_WORKER_ID_LEN, 1);
    addr.node_id = id_of(1, MT_NODE_ID_LEN, 2);
    addr.endpoint = "unix:/tmp/manta/w/abc";
    Manta__Hello hello = MANTA__HELLO__INIT;
    hello.version = MT_WIRE_VERSION;
    hello.role = MANTA__ROLE__ROLE_WORKER;
    hello.worker_id = id_of(2, MT_WORKER_ID_LEN, 3);
    hello.pid = 4242;
    hello.address = &addr;
    hello.runtime = "exe:/bin/true";
    mt_wire_append(&b, MANTA__MSG_TYPE__MSG_HELLO, &hello.base);

    ProtobufCBinaryData oids[3] = {id_of(3, 20, 10), id_of(4, 20, 11), id_of(5, 20, 12)};
    Manta__ObjGet get = MANTA__OBJ_GET__INIT;
    get.request_id = 77;
    get.n_object_ids = 3;
    get.object_ids = oids;
    get.timeout_ms = -1;
    get.pin = 1;
    mt_wire_append(&b, MANTA__MSG_TYPE__MSG_OBJ_GET, &get.base);

    Manta__Shutdown shut = MANTA__SHUTDOWN__INIT; /* empty payload */
    mt_wire_append(&b, MANTA__MSG_TYPE__MSG_SHUTDOWN, &shut.base);

    static uint8_t big[100000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 31);
    Manta__KvPut kv = MANTA__KV_PUT__INIT;
    kv.ns = "fn";
    kv.key = MT_BIN("k", 1);
    kv.value = MT_BIN(big, sizeof big);
    kv.overwrite = 1;
    mt_wire_append(&b, MANTA__MSG_TYPE__MSG_KV_PUT, &kv.base);

    Manta__RefInfo ref = MANTA__REF_INFO__INIT;
    ref.object_id = id_of(6, 20, 20);
    ref.owner = &addr;
    Manta__RefInfo *refs[1] = {&ref};
    Manta__ReturnObject ret = MANTA__RETURN_OBJECT__INIT;
    ret.kind = MANTA__RETURN_KIND__RET_INLINE;
    ret.data = MT_BIN("result", 6);
    ret.n_contained = 1;
    ret.contained = refs;
    Manta__ReturnObject *rets[1] = {&ret};
    Manta__TaskReply reply = MANTA__TASK_REPLY__INIT;
    reply.task_id = id_of(7, 16, 30);
    reply.status = MANTA__TASK_STATUS__TASK_OK;
    reply.n_returns = 1;
    reply.returns = rets;
    reply.exec_ns = 123456789;
    mt_wire_append(&b, MANTA__MSG_TYPE__MSG_TASK_REPLY, &reply.base);

    mt_wire_append_raw(&b, MANTA__MSG_TYPE__MSG_WARNING, "\x0a\x02hi", 4);

    mt_arena a;
    mt_arena_init(&a);
    char err[256];
    static const uint16_t want[] = {MANTA__MSG_TYPE__MSG_HELLO,      MANTA__MSG_TYPE__MSG_OBJ_GET,
                                    MANTA__MSG_TYPE__MSG_SHUTDOWN,   MANTA__MSG_TYPE__MSG_KV_PUT,
                                    MANTA__MSG_TYPE__MSG_TASK_REPLY, MANTA__MSG_TYPE__MSG_WARNING};
    for (size_t k = 0; k < MT_ARRAY_LEN(want); k++) {
        mt_frame f;
        ck_assert_int_eq(mt_wire_peek(mt_buf_head(&b), mt_buf_avail(&b), MAXP, &f), 1);
        ck_assert_uint_eq(f.type, want[k]);
        ck_assert_uint_eq(f.version, MT_WIRE_VERSION);
        ck_assert_uint_eq(f.flags, 0);
        ck_assert_ptr_eq(f.payload, mt_buf_head(&b) + MT_FRAME_HDR);
        ProtobufCMessage *m = NULL;
        ck_assert_int_eq(mt_wire_decode(f.type, f.payload, f.len, &a, &m, err, sizeof err), 0);
        ck_assert_ptr_eq(m->descriptor, mt_wire_desc(f.type));
        switch (f.type) {
        case MANTA__MSG_TYPE__MSG_HELLO: {
            Manta__Hello *h = (Manta__Hello *)m;
            ck_assert_uint_eq(h->version, MT_WIRE_VERSION);
            ck_assert_int_eq(h->role, MANTA__ROLE__ROLE_WORKER);
            ck_assert_uint_eq(h->pid, 4242);
            ck_assert_mem_eq(h->worker_id.data, hello.worker_id.data, MT_WORKER_ID_LEN);
            ck_assert_ptr_nonnull(h->address);
            ck_assert_str_eq(h->address->endpoint, addr.endpoint);
            ck_assert_mem_eq(h->address->node_id.data, addr.node_id.data, MT_NODE_ID_LEN);
            ck_assert_str_eq(h->runtime, "exe:/bin/true");
            ck_assert_uint_eq(f.len, protobuf_c_message_get_packed_size(&hello.base));
            break;
        }
        case MANTA__MSG_TYPE__MSG_OBJ_GET: {
            Manta__ObjGet *g = (Manta__ObjGet *)m;
            ck_assert_uint_eq(g->request_id, 77);
            ck_assert_uint_eq(g->n_object_ids, 3);
            for (int i = 0; i < 3; i++) {
                ck_assert_uint_eq(g->object_ids[i].len, 20);
                ck_assert_mem_eq(g->object_ids[i].data, oids[i].data, 20);
            }
            ck_assert_int_eq(g->timeout_ms, -1);
            ck_assert(g->pin);
            break;
        }
        case MANTA__MSG_TYPE__MSG_SHUTDOWN:
            ck_assert_uint_eq(f.len, 0);
            ck_assert(!((Manta__Shutdown *)m)->force);
            break;
        case MANTA__MSG_TYPE__MSG_KV_PUT: {
            Manta__KvPut *p = (Manta__KvPut *)m;
            ck_assert_str_eq(p->ns, "fn");
            ck_assert_uint_eq(p->value.len, sizeof big);
            ck_assert_mem_eq(p->value.data, big, sizeof big);
            ck_assert(p->overwrite);
            break;
        }
        case MANTA__MSG_TYPE__MSG_TASK_REPLY: {
            Manta__TaskReply *r = (Manta__TaskReply *)m;
            ck_assert_uint_eq(r->exec_ns, 123456789);
            ck_assert_uint_eq(r->n_returns, 1);
            ck_assert_mem_eq(r->returns[0]->data.data, "result", 6);
            ck_assert_uint_eq(r->returns[0]->n_contained, 1);
            ck_assert_mem_eq(r->returns[0]->contained[0]->object_id.data, ref.object_id.data, 20);
            ck_assert_str_eq(r->returns[0]->contained[0]->owner->endpoint, addr.endpoint);
            break;
        }
        case MANTA__MSG_TYPE__MSG_WARNING:
            ck_assert_str_eq(((Manta__Warning *)m)->text, "hi");
            break;
        }
        mt_buf_consume(&b, MT_FRAME_HDR + f.len);
        mt_arena_reset(&a);
    }
    ck_assert_uint_eq(mt_buf_avail(&b), 0);
    mt_frame f;
    ck_assert_int_eq(mt_wire_peek(mt_buf_head(&b), 0, MAXP, &f), 0);
    mt_arena_free(&a);
    mt_buf_free(&b);
}
END_TEST

START_TEST(test_header_layout)
{
    mt_buf b;
    mt_buf_init(&b);
    mt_wire_append_raw(&b, MANTA__MSG_TYPE__MSG_CREDIT, "\x08\x01", 2);
    const uint8_t *h = mt_buf_head(&b);
    ck_assert_uint_eq(mt_buf_avail(&b), MT_FRAME_HDR + 2);
    ck_assert_uint_eq(h[0], 2);
    ck_assert_uint_eq(h[1] | h[2] | h[3], 0);
    ck_assert_uint_eq(h[4] | h[5] << 8, MANTA__MSG_TYPE__MSG_CREDIT);
    ck_assert_uint_eq(h[6], 1);
    ck_assert_uint_eq(h[7], 0);
    mt_buf_free(&b);
    /* A zero-length raw payload is a valid frame too. */
    mt_buf_init(&b);
    mt_wire_append_raw(&b, MANTA__MSG_TYPE__MSG_SHUTDOWN, NULL, 0);
    mt_frame f;
    ck_assert_int_eq(mt_wire_peek(b.data, b.len, 0, &f), 1); /* fits a limit of 0 */
    ck_assert_uint_eq(f.len, 0);
    mt_buf_free(&b);
}
END_TEST

START_TEST(test_incomplete)
{
    Manta__Address addr = MANTA__ADDRESS__INIT;
    addr.endpoint = "tcp:10.0.0.1:6379";
    Manta__LeaseGrant g = MANTA__LEASE_GRANT__INIT;
    g.request_id = 9;
    g.worker = &addr;
    g.worker_pid = 100;
    int32_t gpus[2] = {0, 3};
    g.n_gpu_ids = 2;
    g.gpu_ids = gpus;
    mt_buf b;
    mt_buf_init(&b);
    mt_wire_append(&b, MANTA__MSG_TYPE__MSG_LEASE_GRANT, &g.base);
    size_t total = b.len;
    ck_assert_uint_gt(total, MT_FRAME_HDR + 10);
    mt_frame f;
    for (size_t k = 0; k < total; k++) {
        /* Every proper prefix asks for more bytes, copied so ASan would see
         * a read past it. */
        uint8_t *copy = mt_malloc(k ? k : 1);
        memcpy(copy, b.data, k);
        ck_assert_msg(mt_wire_peek(copy, k, MAXP, &f) == 0, "prefix %zu", k);
        free(copy);
    }
    ck_assert_int_eq(mt_wire_peek(b.data, total, MAXP, &f), 1);
    ck_assert_uint_eq(f.len, total - MT_FRAME_HDR);
    /* Bytes of the next frame after it do not matter. */
    mt_buf_append(&b, "\x01\x02\x03", 3);
    ck_assert_int_eq(mt_wire_peek(b.data, b.len, MAXP, &f), 1);
    ck_assert_uint_eq(f.len, total - MT_FRAME_HDR);
    /* A stream split at every point gives the frame once, whole. */
    for (size_t cut = 0; cut <= total; cut++) {
        mt_buf s;
        mt_buf_init(&s);
        int got = 0;
        mt_buf_append(&s, b.data, cut);
        while (mt_wire_peek(mt_buf_head(&s), mt_buf_avail(&s), MAXP, &f) == 1) {
            got++;
            mt_buf_consume(&s, MT_FRAME_HDR + f.len);
        }
        mt_buf_append(&s, b.data + cut, total - cut);
        while (mt_wire_peek(mt_buf_head(&s), mt_buf_avail(&s), MAXP, &f) == 1) {
            got++;
            mt_buf_consume(&s, MT_FRAME_HDR + f.len);
        }
        ck_assert_int_eq(got, 1);
        ck_assert_uint_eq(mt_buf_avail(&s), 0);
        mt_buf_free(&s);
    }
    mt_buf_free(&b);
}
END_TEST

static void header(uint8_t *h, uint32_t len, uint16_t type, uint8_t version)
{
    h[0] = (uint8_t)len;
    h[1] = (uint8_t)(len >> 8);
    h[2] = (uint8_t)(len >> 16);
    h[3] = (uint8_t)(len >> 24);
    h[4] = (uint8_t)type;
    h[5] = (uint8_t)(type >> 8);
    h[6] = version;
    h[7] = 0;
}

START_TEST(test_too_big)
{
    uint8_t h[MT_FRAME_HDR];
    mt_frame f;
    /* Refused from the header alone, before the payload arrives. */
    header(h, 1001, MANTA__MSG_TYPE__MSG_KV_PUT, MT_WIRE_VERSION);
    mt_err_clear();
    ck_assert_int_eq(mt_wire_peek(h, sizeof h, 1000, &f), MANTA_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "1001"));
    ck_assert_int_eq(mt_wire_peek(h, sizeof h, 1001, &f), 0); /* at the limit: wait */
    header(h, UINT32_MAX, MANTA__MSG_TYPE__MSG_KV_PUT, MT_WIRE_VERSION);
    ck_assert_int_eq(mt_wire_peek(h, sizeof h, MAXP, &f), MANTA_ETOOBIG);
    ck_assert_int_eq(mt_wire_peek(h, sizeof h, (size_t)UINT32_MAX, &f), 0);
    header(h, 1, MANTA__MSG_TYPE__MSG_KV_PUT, MT_WIRE_VERSION);
    ck_assert_int_eq(mt_wire_peek(h, sizeof h, 0, &f), MANTA_ETOOBIG);
    /* The configured default limit. */
    header(h, 512u * 1024 * 1024 + 1, MANTA__MSG_TYPE__MSG_PUSH_TASK, MT_WIRE_VERSION);
    ck_assert_int_eq(mt_wire_peek(h, sizeof h, 512u * 1024 * 1024, &f), MANTA_ETOOBIG);
}
END_TEST

START_TEST(test_bad_version)
{
    uint8_t frame[MT_FRAME_HDR + 2];
    mt_frame f;
    static const uint8_t versions[] = {0, 2, 3, 0x81, 255};
    for (size_t i = 0; i < MT_ARRAY_LEN(versions); i++) {
        header(frame, 2, MANTA__MSG_TYPE__MSG_CREDIT, versions[i]);
        frame[8] = 0x08;
        frame[9] = 0x01;
        mt_err_clear();
        ck_assert_int_eq(mt_wire_peek(frame, sizeof frame, MAXP, &f), MANTA_EVERSION);
        ck_assert_ptr_nonnull(strstr(manta_last_error(), "version"));
        /* Also from the header alone. */
        ck_assert_int_eq(mt_wire_peek(frame, MT_FRAME_HDR, MAXP, &f), MANTA_EVERSION);
    }
    header(frame, 2, MANTA__MSG_TYPE__MSG_CREDIT, MT_WIRE_VERSION);
    frame[7] = 0xff; /* flags are passed through */
    ck_assert_int_eq(mt_wire_peek(frame, sizeof frame, MAXP, &f), 1);
    ck_assert_uint_eq(f.flags, 0xff);
}
END_TEST

START_TEST(test_unknown_type)
{
    /* Exactly the MsgType values other than MSG_NONE are known, and each has
     * a descriptor. */
    const ProtobufCEnumDescriptor *ed = &manta__msg_type__descriptor;
    unsigned known = 0;
    mt_arena a;
    mt_arena_init(&a);
    uint8_t h[MT_FRAME_HDR];
    mt_frame f;
    for (uint32_t t = 0; t <= UINT16_MAX; t++) {
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(ed, (int)t);
        bool want = v != NULL && t != MANTA__MSG_TYPE__MSG_NONE;
        header(h, 0, (uint16_t)t, MT_WIRE_VERSION);
        int rc = mt_wire_peek(h, sizeof h, MAXP, &f);
        if (want) {
            known++;
            if (rc != 1) ck_abort_msg("type %u (%s) refused", t, v->name);
            CK(mt_wire_desc((uint16_t)t) != NULL);
            CK(strcmp(mt_wire_name((uint16_t)t), v->name) == 0);
        } else {
            if (rc != MANTA_EPROTO) ck_abort_msg("type %u accepted", t);
            CK(mt_wire_desc((uint16_t)t) == NULL);
            char err[128] = "";
            ProtobufCMessage *m = NULL;
            CK(mt_wire_decode((uint16_t)t, h, 0, &a, &m, err, sizeof err) == MANTA_EPROTO);
            CK(strstr(err, "unknown message type") != NULL);
            CK(m == NULL);
        }
    }
    mt_arena_free(&a);
    ck_assert_uint_eq(known, ed->n_values - 1);
    ck_assert_str_eq(mt_wire_name(MANTA__MSG_TYPE__MSG_HELLO), "MSG_HELLO");
    ck_assert_str_eq(mt_wire_name(9999), "?");
    /* WorkerUnblocked reuses WorkerBlocked's message. */
    ck_assert_ptr_eq(mt_wire_desc(MANTA__MSG_TYPE__MSG_WORKER_UNBLOCKED),
                     &manta__worker_blocked__descriptor);
}
END_TEST

/* ---------------------------------------------------------------- decode */

START_TEST(test_decode_garbage)
{
    static const struct {
        const char *bytes;
        size_t n;
    } bad[] = {
        {"\xff", 1},                                              /* wire type 7 */
        {"\x08", 1},                                              /* tag without its varint */
        {"\x08\x80", 2},                                          /* varint cut short */
        {"\x12\x05\x61", 3},                                      /* length beyond the payload */
        {"\x12\xff\xff\xff\xff\x0f", 6},                          /* 4 GB length */
        {"\x00\x01", 2},                                          /* field number 0 */
        {"\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12}, /* 11-byte varint */
    };
    mt_arena a;
    mt_arena_init(&a);
    for (size_t i = 0; i < MT_ARRAY_LEN(bad); i++) {
        char err[256] = "";
        ProtobufCMessage *m = (ProtobufCMessage *)&a; /* must stay untouched */
        int rc = mt_wire_decode(MANTA__MSG_TYPE__MSG_OBJ_GET, (const uint8_t *)bad[i].bytes,
                                bad[i].n, &a, &m, err, sizeof err);
        ck_assert_msg(rc == MANTA_EPROTO, "garbage %zu decoded", i);
        ck_assert_ptr_eq(m, (ProtobufCMessage *)&a);
        ck_assert_msg(strstr(err, "cannot decode MSG_OBJ_GET") != NULL, "reason: %s", err);
        mt_arena_reset(&a);
    }
    /* Random bytes: decoded or refused with a reason, never a crash. */
    uint64_t x = 88172645463325252ull;
    uint8_t buf[256];
    for (int round = 0; round < 20000; round++) {
        size_t n = 0;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        n = x % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (uint8_t)x;
        }
        uint16_t type = (uint16_t)(x >> 32) % 70;
        char err[256] = "";
        ProtobufCMessage *m = NULL;
        int rc = mt_wire_decode(type, buf, n, &a, &m, err, sizeof err);
        if (rc == 0)
            CK(m != NULL);
        else
            CK(rc == MANTA_EPROTO && err[0] != '\0');
        mt_arena_reset(&a);
    }
    mt_arena_free(&a);
}
END_TEST

START_TEST(test_unknown_fields_kept_compatible)
{
    /* A newer peer's extra field (number 15, varint) does not break decoding. */
    static const uint8_t payload[] = {0x08, 0x2a, 0x78, 0x05};
    mt_arena a;
    mt_arena_init(&a);
    char err[128];
    ProtobufCMessage *m = NULL;
    ck_assert_int_eq(mt_wire_decode(MANTA__MSG_TYPE__MSG_LEASE_CANCEL, payload, sizeof payload, &a,
                                    &m, err, sizeof err),
                     0);
    ck_assert_uint_eq(((Manta__LeaseCancel *)m)->request_id, 42);
    mt_arena_free(&a);
}
END_TEST

START_TEST(test_id_lengths_flat)
{
    ProtobufCBinaryData oids[3];
    Manta__ObjGet get = MANTA__OBJ_GET__INIT;
    get.n_object_ids = 1;
    get.object_ids = oids;
    oids[0] = id_of(0, 19, 1);
    expect_rejected(MANTA__MSG_TYPE__MSG_OBJ_GET, &get.base, "object_ids", 19);
    oids[0] = id_of(0, 21, 1);
    expect_rejected(MANTA__MSG_TYPE__MSG_OBJ_GET, &get.base, "object_ids", 21);
    oids[0] = id_of(0, 1, 1);
    expect_rejected(MANTA__MSG_TYPE__MSG_OBJ_GET, &get.base, "object_ids", 1);
    oids[0] = id_of(0, 20, 1);
    expect_accepted(MANTA__MSG_TYPE__MSG_OBJ_GET, &get.base);
    oids[0] = MT_BIN(NULL, 0); /* empty means unset: the handler decides */
    expect_accepted(MANTA__MSG_TYPE__MSG_OBJ_GET, &get.base);
    /* One bad id among good ones. */
    get.n_object_ids = 3;
    oids[0] = id_of(0, 20, 1);
    oids[1] = id_of(1, 20, 2);
    oids[2] = id_of(2, 16, 3);
    expect_rejected(MANTA__MSG_TYPE__MSG_OBJ_GET, &get.base, "object_ids", 16);
    oids[2] = id_of(2, 20, 3);
    expect_accepted(MANTA__MSG_TYPE__MSG_OBJ_GET, &get.base);

    Manta__ObjSeal seal = MANTA__OBJ_SEAL__INIT;
    seal.object_id = id_of(0, 16, 0);
    expect_rejected(MANTA__MSG_TYPE__MSG_OBJ_SEAL, &seal.base, "object_id", 16);
    seal.object_id = id_of(0, 20, 0);
    expect_accepted(MANTA__MSG_TYPE__MSG_OBJ_SEAL, &seal.base);
    expect_accepted(MANTA__MSG_TYPE__MSG_OBJ_ABORT, &seal.base); /* same layout */

    Manta__Hello hello = MANTA__HELLO__INIT;
    hello.worker_id = id_of(0, 15, 0);
    expect_rejected(MANTA__MSG_TYPE__MSG_HELLO, &hello.base, "worker_id", 15);
    hello.worker_id = id_of(0, 20, 0);
    expect_rejected(MANTA__MSG_TYPE__MSG_HELLO, &hello.base, "worker_id", 20);
    hello.worker_id = id_of(0, 16, 0);
    hello.token = id_of(1, 33, 0); /* not an id: any length */
    expect_accepted(MANTA__MSG_TYPE__MSG_HELLO, &hello.base);

    Manta__RemoveBorrower rb = MANTA__REMOVE_BORROWER__INIT;
    rb.object_id = id_of(0, 20, 0);
    rb.borrower_id = id_of(1, 20, 0);
    expect_rejected(MANTA__MSG_TYPE__MSG_REMOVE_BORROWER, &rb.base, "borrower_id", 20);
    rb.borrower_id = id_of(1, 16, 0);
    expect_accepted(MANTA__MSG_TYPE__MSG_REMOVE_BORROWER, &rb.base);

    Manta__FnGet fg = MANTA__FN_GET__INIT;
    fg.function_id = id_of(0, 32, 0);
    expect_rejected(MANTA__MSG_TYPE__MSG_FN_GET, &fg.base, "function_id", 32);
    fg.function_id = id_of(0, MT_FN_ID_LEN, 0);
    expect_accepted(MANTA__MSG_TYPE__MSG_FN_GET, &fg.base);

    Manta__ActorKill ak = MANTA__ACTOR_KILL__INIT;
    ak.actor_id = id_of(0, 17, 0);
    expect_rejected(MANTA__MSG_TYPE__MSG_ACTOR_KILL, &ak.base, "actor_id", 17);

    Manta__CancelTask ct = MANTA__CANCEL_TASK__INIT;
    ct.task_id = id_of(0, 20, 0);
    expect_rejected(MANTA__MSG_TYPE__MSG_CANCEL_TASK, &ct.base, "task_id", 20);
    ct.task_id = id_of(0, 16, 0);
    expect_accepted(MANTA__MSG_TYPE__MSG_CANCEL_TASK, &ct.base);

    Manta__LeaseReturn lr = MANTA__LEASE_RETURN__INIT;
    lr.worker_id = id_of(0, 1, 0);
    expect_rejected(MANTA__MSG_TYPE__MSG_LEASE_RETURN, &lr.base, "worker_id", 1);

    Manta__HelloReply hr = MANTA__HELLO_REPLY__INIT;
    hr.node_id = id_of(0, 20, 0);
    expect_rejected(MANTA__MSG_TYPE__MSG_HELLO_REPLY, &hr.base, "node_id", 20);
}
END_TEST

/* PushTask -> TaskSpec -> TaskArg -> RefInfo -> Address: every level's ids
 * are checked. */
START_TEST(test_id_lengths_nested)
{
    Manta__Address owner = MANTA__ADDRESS__INIT;
    owner.worker_id = id_of(0, 16, 1);
    owner.node_id = id_of(1, 16, 2);
    owner.endpoint = "unix:/x";
    Manta__RefInfo ref = MANTA__REF_INFO__INIT;
    ref.object_id = id_of(2, 20, 3);
    ref.owner = &owner;
    Manta__RefInfo ok_ref = MANTA__REF_INFO__INIT;
    ok_ref.object_id = id_of(3, 20, 4);
    Manta__RefInfo *refs[2] = {&ok_ref, &ref};
    Manta__TaskArg arg0 = MANTA__TASK_ARG__INIT;
    arg0.kind = MANTA__ARG_KIND__ARG_INLINE;
    arg0.data = MT_BIN("payload", 7);
    Manta__TaskArg arg = MANTA__TASK_ARG__INIT;
    arg.kind = MANTA__ARG_KIND__ARG_PLASMA;
    arg.object_id = id_of(4, 20, 5);
    arg.n_contained = 2;
    arg.contained = refs;
    Manta__TaskArg *args[2] = {&arg0, &arg};
    Manta__TaskSpec spec0 = MANTA__TASK_SPEC__INIT;
    spec0.task_id = id_of(5, 16, 6);
    Manta__TaskSpec spec = MANTA__TASK_SPEC__INIT;
    spec.task_id = id_of(6, 16, 7);
    spec.function_id = id_of(7, 16, 8);
    spec.n_args = 2;
    spec.args = args;
    spec.name = "f";
    Manta__TaskSpec *specs[2] = {&spec0, &spec};
    Manta__PushTask push = MANTA__PUSH_TASK__INIT;
    push.n_tasks = 2;
    push.tasks = specs;
    const uint16_t T = MANTA__MSG_TYPE__MSG_PUSH_TASK;
    expect_accepted(T, &push.base);

    owner.worker_id = id_of(0, 15, 1);
    expect_rejected(T, &push.base, "worker_id", 15);
    owner.worker_id = id_of(0, 16, 1);
    owner.node_id = id_of(1, 17, 2);
    expect_rejected(T, &push.base, "node_id", 17);
    owner.node_id = id_of(1, 16, 2);
    ref.object_id = id_of(2, 19, 3);
    expect_rejected(T, &push.base, "object_id", 19);
    ref.object_id = id_of(2, 20, 3);
    arg.object_id = id_of(4, 21, 5);
    expect_rejected(T, &push.base, "object_id", 21);
    arg.object_id = id_of(4, 20, 5);
    arg.owner = &owner; /* the same address at another place */
    owner.worker_id = id_of(0, 3, 1);
    expect_rejected(T, &push.base, "worker_id", 3);
    owner.worker_id = id_of(0, 16, 1);
    spec.caller_id = id_of(5, 8, 9);
    expect_rejected(T, &push.base, "caller_id", 8);
    spec.caller_id = MT_BIN(NULL, 0);
    spec.actor_id = id_of(5, 20, 9);
    expect_rejected(T, &push.base, "actor_id", 20);
    spec.actor_id = MT_BIN(NULL, 0);
    spec0.task_id = id_of(5, 20, 6);
    expect_rejected(T, &push.base, "task_id", 20);
    spec0.task_id = id_of(5, 16, 6);
    expect_accepted(T, &push.base);

    /* TaskReply -> ReturnObject -> RefInfo, and TaskReply -> borrowed. */
    Manta__ReturnObject ret = MANTA__RETURN_OBJECT__INIT;
    ret.n_contained = 2;
    ret.contained = refs;
    Manta__ReturnObject *rets[1] = {&ret};
    Manta__TaskReply reply = MANTA__TASK_REPLY__INIT;
    reply.task_id = id_of(5, 16, 1);
    reply.n_returns = 1;
    reply.returns = rets;
    expect_accepted(MANTA__MSG_TYPE__MSG_TASK_REPLY, &reply.base);
    ok_ref.object_id = id_of(3, 40, 4);
    expect_rejected(MANTA__MSG_TYPE__MSG_TASK_REPLY, &reply.base, "object_id", 40);
    reply.n_returns = 0;
    reply.n_borrowed = 2;
    reply.borrowed = refs;
    expect_rejected(MANTA__MSG_TYPE__MSG_TASK_REPLY, &reply.base, "object_id", 40);
    ok_ref.object_id = id_of(3, 20, 4);
    expect_accepted(MANTA__MSG_TYPE__MSG_TASK_REPLY, &reply.base);

    /* ActorRegister -> ActorInfo -> Address. */
    Manta__ActorInfo info = MANTA__ACTOR_INFO__INIT;
    info.actor_id = id_of(0, 16, 1);
    info.owner = &owner;
    info.handle = id_of(1, 50, 0); /* not an id */
    Manta__ActorRegister reg = MANTA__ACTOR_REGISTER__INIT;
    reg.info = &info;
    expect_accepted(MANTA__MSG_TYPE__MSG_ACTOR_REGISTER, &reg.base);
    owner.node_id = id_of(2, 5, 0);
    expect_rejected(MANTA__MSG_TYPE__MSG_ACTOR_REGISTER, &reg.base, "node_id", 5);
    owner.node_id = id_of(2, 16, 0);
    info.actor_id = id_of(0, 12, 1);
    expect_rejected(MANTA__MSG_TYPE__MSG_ACTOR_REGISTER, &reg.base, "actor_id", 12);
    Manta__ActorInfo *infos[1] = {&info};
    Manta__ActorLookupReply alr = MANTA__ACTOR_LOOKUP_REPLY__INIT;
    alr.n_actors = 1;
    alr.actors = infos;
    expect_rejected(MANTA__MSG_TYPE__MSG_ACTOR_LOOKUP_REPLY, &alr.base, "actor_id", 12);

    /* ObjGetReply -> ObjLocation, StatusReply -> NodeStatus, ObjWaitReply. */
    Manta__ObjLocation loc = MANTA__OBJ_LOCATION__INIT;
    loc.object_id = id_of(0, 10, 0);
    Manta__ObjLocation *locs[1] = {&loc};
    Manta__ObjGetReply gr = MANTA__OBJ_GET_REPLY__INIT;
    gr.n_objects = 1;
    gr.objects = locs;
    expect_rejected(MANTA__MSG_TYPE__MSG_OBJ_GET_REPLY, &gr.base, "object_id", 10);
    Manta__NodeStatus ns = MANTA__NODE_STATUS__INIT;
    ns.node_id = id_of(0, 4, 0);
    Manta__NodeStatus *nss[1] = {&ns};
    Manta__StatusReply sr = MANTA__STATUS_REPLY__INIT;
    sr.n_nodes = 1;
    sr.nodes = nss;
    expect_rejected(MANTA__MSG_TYPE__MSG_STATUS_REPLY, &sr.base, "node_id", 4);
    Manta__ObjWaitReply wr = MANTA__OBJ_WAIT_REPLY__INIT;
    wr.object_id = id_of(0, 20, 0);
    wr.value = &ret;
    ok_ref.object_id = id_of(3, 2, 4);
    expect_rejected(MANTA__MSG_TYPE__MSG_OBJ_WAIT_REPLY, &wr.base, "object_id", 2);
    ok_ref.object_id = id_of(3, 20, 4);
    wr.location = &owner;
    owner.worker_id = id_of(0, 32, 0);
    expect_rejected(MANTA__MSG_TYPE__MSG_OBJ_WAIT_REPLY, &wr.base, "worker_id", 32);
}
END_TEST

/* ---------------------------------------------------------------- arena */

START_TEST(test_arena)
{
    /* One frame holding many tasks, decoded again and again. */
    enum { NT = 200 };
    Manta__TaskSpec specs[NT];
    Manta__TaskSpec *ptrs[NT];
    static uint8_t tids[NT][16];
    Manta__TaskArg arg = MANTA__TASK_ARG__INIT;
    arg.data = MT_BIN("0123456789abcdef0123456789abcdef", 32);
    Manta__TaskArg *args[4] = {&arg, &arg, &arg, &arg};
    for (int i = 0; i < NT; i++) {
        specs[i] = (Manta__TaskSpec)MANTA__TASK_SPEC__INIT;
        memset(tids[i], i, 16);
        specs[i].task_id = MT_BIN(tids[i], 16);
        specs[i].seq = (uint64_t)i;
        specs[i].name = "task";
        specs[i].n_args = 4;
        specs[i].args = args;
        ptrs[i] = &specs[i];
    }
    Manta__PushTask push = MANTA__PUSH_TASK__INIT;
    push.n_tasks = NT;
    push.tasks = ptrs;
    mt_buf b;
    mt_buf_init(&b);
    mt_wire_append(&b, MANTA__MSG_TYPE__MSG_PUSH_TASK, &push.base);
    const uint8_t *payload = b.data + MT_FRAME_HDR;
    size_t n = b.len - MT_FRAME_HDR;
    ck_assert_uint_gt(n, 16 * 1024); /* spans several arena chunks */
    mt_arena a;
    mt_arena_init(&a);
    char err[128];
    for (int round = 0; round < 2000; round++) {
        ProtobufCMessage *m = NULL;
        ck_assert_int_eq(
            mt_wire_decode(MANTA__MSG_TYPE__MSG_PUSH_TASK, payload, n, &a, &m, err, sizeof err), 0);
        Manta__PushTask *p = (Manta__PushTask *)m;
        ck_assert_uint_eq(p->n_tasks, NT);
        ck_assert_uint_eq(p->tasks[NT - 1]->seq, NT - 1);
        ck_assert_mem_eq(p->tasks[NT - 1]->args[3]->data.data, arg.data.data, 32);
        ck_assert_uint_gt(a.used, 0);
        mt_arena_reset(&a);
        ck_assert_uint_eq(a.used, 0);
    }
    /* Many messages kept at once stay valid until the reset. */
    enum { KEEP = 300 };
    Manta__PushTask *kept[KEEP];
    for (int i = 0; i < KEEP; i++) {
        ProtobufCMessage *m = NULL;
        ck_assert_int_eq(
            mt_wire_decode(MANTA__MSG_TYPE__MSG_PUSH_TASK, payload, n, &a, &m, err, sizeof err), 0);
        kept[i] = (Manta__PushTask *)m;
    }
    for (int i = 0; i < KEEP; i++) {
        ck_assert_uint_eq(kept[i]->n_tasks, NT);
        for (int t = 0; t < NT; t += 37) {
            ck_assert_uint_eq(kept[i]->tasks[t]->seq, (uint64_t)t);
            ck_assert_str_eq(kept[i]->tasks[t]->name, "task");
            ck_assert_uint_eq(kept[i]->tasks[t]->task_id.data[0], (uint8_t)t);
        }
    }
    size_t used = a.used;
    ck_assert_uint_ge(used, KEEP * n / 2);
    mt_arena_reset(&a);
    ck_assert_uint_eq(a.used, 0);
    /* Small messages after a reset reuse the kept chunk. */
    Manta__Credit cr = MANTA__CREDIT__INIT;
    cr.object_id = id_of(1, 20, 0);
    cr.delta = -3;
    for (int i = 0; i < 10000; i++) {
        ProtobufCMessage *m = NULL;
        ck_assert_int_eq(roundtrip(MANTA__MSG_TYPE__MSG_CREDIT, &cr.base, &a, &m, err, sizeof err),
                         0);
        ck_assert_int_eq(((Manta__Credit *)m)->delta, -3);
        mt_arena_reset(&a);
    }
    mt_arena_free(&a);
    mt_arena_free(&a); /* idempotent */
    mt_buf_free(&b);
}
END_TEST

START_TEST(test_arena_big_alloc)
{
    /* A bytes field larger than a chunk gets a chunk of its own. */
    static uint8_t body[200000];
    memset(body, 0xab, sizeof body);
    Manta__FnRegister fr = MANTA__FN_REGISTER__INIT;
    fr.function_id = id_of(0, 16, 0);
    fr.body = MT_BIN(body, sizeof body);
    fr.name = "big";
    mt_arena a;
    mt_arena_init(&a);
    char err[128];
    for (int i = 0; i < 50; i++) {
        ProtobufCMessage *m = NULL;
        ck_assert_int_eq(
            roundtrip(MANTA__MSG_TYPE__MSG_FN_REGISTER, &fr.base, &a, &m, err, sizeof err), 0);
        Manta__FnRegister *got = (Manta__FnRegister *)m;
        ck_assert_uint_eq(got->body.len, sizeof body);
        ck_assert_uint_eq(got->body.data[sizeof body - 1], 0xab);
        ck_assert_uint_eq((uintptr_t)got % 8, 0);
        ck_assert_uint_ge(a.used, sizeof body);
        if (i % 2) mt_arena_reset(&a);
    }
    mt_arena_free(&a);
}
END_TEST

/* ---------------------------------------------------------------- main */

static Suite *wire_suite(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("frames");
    tcase_add_test(tc, test_roundtrip_many);
    tcase_add_test(tc, test_header_layout);
    tcase_add_test(tc, test_incomplete);
    tcase_add_test(tc, test_too_big);
    tcase_add_test(tc, test_bad_version);
    tcase_add_test(tc, test_unknown_type);
    suite_add_tcase(s, tc);

    tc = tcase_create("decode");
    tcase_add_test(tc, test_decode_garbage);
    tcase_add_test(tc, test_unknown_fields_kept_compatible);
    tcase_add_test(tc, test_id_lengths_flat);
    tcase_add_test(tc, test_id_lengths_nested);
    suite_add_tcase(s, tc);

    tc = tcase_create("arena");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_arena);
    tcase_add_test(tc, test_arena_big_alloc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(wire_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
