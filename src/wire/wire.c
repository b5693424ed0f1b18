/* wire.c -- frame parsing, packing and validated decoding. */
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "mt.h"

/* ---------------------------------------------------------------- types */

typedef struct type_entry {
    uint16_t type;
    const ProtobufCMessageDescriptor *desc;
} type_entry;

#define T(name, desc) {MANTA__MSG_TYPE__MSG_##name, &desc}
static const type_entry types[] = {
    T(HELLO, manta__hello__descriptor),
    T(HELLO_REPLY, manta__hello_reply__descriptor),
    T(LEASE_REQUEST, manta__lease_request__descriptor),
    T(LEASE_GRANT, manta__lease_grant__descriptor),
    T(LEASE_RETURN, manta__lease_return__descriptor),
    T(LEASE_CANCEL, manta__lease_cancel__descriptor),
    T(WORKER_BLOCKED, manta__worker_blocked__descriptor),
    T(WORKER_UNBLOCKED, manta__worker_blocked__descriptor),
    T(OBJ_CREATE, manta__obj_create__descriptor),
    T(OBJ_CREATE_REPLY, manta__obj_create_reply__descriptor),
    T(OBJ_SEAL, manta__obj_seal__descriptor),
    T(OBJ_GET, manta__obj_get__descriptor),
    T(OBJ_GET_REPLY, manta__obj_get_reply__descriptor),
    T(OBJ_RELEASE, manta__obj_release__descriptor),
    T(OBJ_FREE, manta__obj_free__descriptor),
    T(OBJ_ABORT, manta__obj_abort__descriptor),
    T(EVENT, manta__event__descriptor),
    T(LOG_LINES, manta__log_lines__descriptor),
    T(STATUS_REQUEST, manta__status_request__descriptor),
    T(STATUS_REPLY, manta__status_reply__descriptor),
    T(SHUTDOWN, manta__shutdown__descriptor),
    T(WARNING, manta__warning__descriptor),
    T(FN_REGISTER, manta__fn_register__descriptor),
    T(FN_GET, manta__fn_get__descriptor),
    T(FN_GET_REPLY, manta__fn_get_reply__descriptor),
    T(KV_PUT, manta__kv_put__descriptor),
    T(KV_GET, manta__kv_get__descriptor),
    T(KV_GET_REPLY, manta__kv_get_reply__descriptor),
    T(ACTOR_REGISTER, manta__actor_register__descriptor),
    T(ACTOR_REGISTER_REPLY, manta__actor_register_reply__descriptor),
    T(ACTOR_LOOKUP, manta__actor_lookup__descriptor),
    T(ACTOR_LOOKUP_REPLY, manta__actor_lookup_reply__descriptor),
    T(ACTOR_UPDATE, manta__actor_update__descriptor),
    T(ACTOR_KILL, manta__actor_kill__descriptor),
    T(PUSH_TASK, manta__push_task__descriptor),
    T(TASK_REPLY, manta__task_reply__descriptor),
    T(OBJ_WAIT, manta__obj_wait__descriptor),
    T(OBJ_WAIT_REPLY, manta__obj_wait_reply__descriptor),
    T(ADD_BORROWER, manta__add_borrower__descriptor),
    T(ADD_BORROWER_ACK, manta__add_borrower_ack__descriptor),
    T(REMOVE_BORROWER, manta__remove_borrower__descriptor),
    T(CREDIT, manta__credit__descriptor),
    T(CANCEL_TASK, manta__cancel_task__descriptor),
    T(ACTOR_READY, manta__actor_ready__descriptor),
    T(KILL_WORKER, manta__kill_worker__descriptor),
    T(RESOURCE_REPORT, manta__resource_report__descriptor),
    T(CLUSTER_VIEW, manta__cluster_view__descriptor),
    T(OBJ_PULL, manta__obj_pull__descriptor),
    T(OBJ_CHUNK, manta__obj_chunk__descriptor),
};
#undef T

#define MAX_TYPE 128
static const ProtobufCMessageDescriptor *by_type[MAX_TYPE];
static int by_type_ready;

static void index_types(void)
{
    for (size_t i = 0; i < MT_ARRAY_LEN(types); i++) {
        mt_assert(types[i].type < MAX_TYPE);
        by_type[types[i].type] = types[i].desc;
    }
    __atomic_store_n(&by_type_ready, 1, __ATOMIC_RELEASE);
}

const ProtobufCMessageDescriptor *mt_wire_desc(uint16_t type)
{
    if (!__atomic_load_n(&by_type_ready, __ATOMIC_ACQUIRE)) index_types();
    return type < MAX_TYPE ? by_type[type] : NULL;
}

const char *mt_wire_name(uint16_t type)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&manta__msg_type__descriptor, type);
    return v ? v->name : "?";
}

/* ---------------------------------------------------------------- frames */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr_header(uint8_t *h, uint32_t len, uint16_t type)
{
    h[0] = (uint8_t)len;
    h[1] = (uint8_t)(len >> 8);
    h[2] = (uint8_t)(len >> 16);
    h[3] = (uint8_t)(len >> 24);
    h[4] = (uint8_t)type;
    h[5] = (uint8_t)(type >> 8);
    h[6] = MT_WIRE_VERSION;
    h[7] = 0;
}

int mt_wire_peek(const uint8_t *p, size_t n, size_t max_payload, mt_frame *f)
{
    if (n < MT_FRAME_HDR) return 0;
    f->len = rd32(p);
    f->type = (uint16_t)(p[4] | p[5] << 8);
    f->version = p[6];
    f->flags = p[7];
    if (f->version != MT_WIRE_VERSION)
        return mt_err(MANTA_EVERSION, "frame version %u, expected %u", f->version,
                      MT_WIRE_VERSION);
    if (f->len > max_payload)
        return mt_err(MANTA_ETOOBIG, "frame of %u bytes exceeds the limit of %zu", f->len,
                      max_payload);
    if (!mt_wire_desc(f->type)) return mt_err(MANTA_EPROTO, "unknown message type %u", f->type);
    if (n - MT_FRAME_HDR < f->len) return 0;
    f->payload = p + MT_FRAME_HDR;
    return 1;
}

void mt_wire_append(mt_buf *b, uint16_t type, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    mt_assert(n <= UINT32_MAX);
    uint8_t *w = mt_buf_reserve(b, MT_FRAME_HDR + n);
    wr_header(w, (uint32_t)n, type);
    size_t packed = protobuf_c_message_pack(msg, w + MT_FRAME_HDR);
    mt_assert(packed == n);
    b->len += MT_FRAME_HDR + n;
}

void mt_wire_append_raw(mt_buf *b, uint16_t type, const void *payload, size_t n)
{
    mt_assert(n <= UINT32_MAX);
    uint8_t *w = mt_buf_reserve(b, MT_FRAME_HDR + n);
    wr_header(w, (uint32_t)n, type);
    if (n) memcpy(w + MT_FRAME_HDR, payload, n);
    b->len += MT_FRAME_HDR + n;
}

/* ---------------------------------------------------------------- arena */

typedef struct mt_arena_chunk {
    struct mt_arena_chunk *next;
    size_t cap, used;
    _Alignas(16) uint8_t data[];
} mt_arena_chunk;

#define ARENA_CHUNK (16 * 1024)

static void *arena_alloc(void *ctx, size_t n)
{
    mt_arena *a = ctx;
    n = (n + 15) & ~(size_t)15;
    mt_arena_chunk *c = a->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = mt_malloc(sizeof *c + cap);
        c->cap = cap;
        c->used = 0;
        c->next = a->chunks;
        a->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used += n;
    return p;
}

static void arena_free(void *ctx, void *p) { MT_UNUSED(ctx), MT_UNUSED(p); }

void mt_arena_init(mt_arena *a)
{
    memset(a, 0, sizeof *a);
    a->pa.alloc = arena_alloc;
    a->pa.free = arena_free;
    a->pa.allocator_data = a;
}

void mt_arena_reset(mt_arena *a)
{
    /* Keep the newest chunk if it is the standard size: the common case of
     * one small message per reset then allocates nothing. */
    mt_arena_chunk *keep = NULL;
    for (mt_arena_chunk *c = a->chunks, *next; c; c = next) {
        next = c->next;
        if (!keep && c->cap == ARENA_CHUNK) {
            keep = c;
            continue;
        }
        free(c);
    }
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->chunks = keep;
    a->used = 0;
}

void mt_arena_free(mt_arena *a)
{
    for (mt_arena_chunk *c = a->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->chunks = NULL;
}

/* ---------------------------------------------------------------- validate */

/* Fixed lengths of id fields, by field name.  Empty means "not set" and is
 * accepted here; handlers check presence where an id is required. */
size_t mt_wire_id_len(const char *field)
{
    static const struct {
        const char *name;
        size_t len;
    } ids[] = {
        {"worker_id", MT_WORKER_ID_LEN}, {"node_id", MT_NODE_ID_LEN},
        {"task_id", MT_TASK_ID_LEN},     {"object_id", MT_OBJECT_ID_LEN},
        {"object_ids", MT_OBJECT_ID_LEN}, {"actor_id", MT_ACTOR_ID_LEN},
        {"function_id", MT_FN_ID_LEN},   {"caller_id", MT_WORKER_ID_LEN},
        {"borrower_id", MT_WORKER_ID_LEN}, {"spill_node", MT_NODE_ID_LEN},
        {"preferred_node", MT_NODE_ID_LEN}, {"location", MT_NODE_ID_LEN},
        {"locations", MT_NODE_ID_LEN},     {"lost_at", MT_NODE_ID_LEN},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(ids); i++)
        if (!strcmp(field, ids[i].name)) return ids[i].len;
    return 0;
}

static int check_bytes(const ProtobufCFieldDescriptor *fd, const ProtobufCBinaryData *b,
                       char *err, size_t errlen)
{
    size_t want = mt_wire_id_len(fd->name);
    if (want && b->len && b->len != want) {
        snprintf(err, errlen, "field %s has %zu bytes, expected %zu", fd->name, b->len, want);
        return MANTA_EPROTO;
    }
    return 0;
}

static int validate_depth(const ProtobufCMessage *m, int depth, char *err, size_t errlen);

static int check_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd, int depth,
                       char *err, size_t errlen)
{
    const uint8_t *base = (const uint8_t *)m;
    size_t count = 1;
    const void *vals = base + fd->offset;
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
        count = *(const size_t *)(base + fd->quantifier_offset);
        vals = *(void *const *)(base + fd->offset);
    }
    for (size_t i = 0; i < count; i++) {
        int rc = 0;
        if (fd->type == PROTOBUF_C_TYPE_BYTES) {
            rc = check_bytes(fd, (const ProtobufCBinaryData *)vals + i, err, errlen);
        } else if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
            const ProtobufCMessage *sub = ((ProtobufCMessage *const *)vals)[i];
            if (sub) rc = validate_depth(sub, depth + 1, err, errlen);
        }
        if (rc) return rc;
    }
    return 0;
}

/* Counts that size allocations on the receiving side. */
#define MT_MAX_RETURNS 1000000

static int check_limits(const ProtobufCMessage *m, char *err, size_t errlen)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        if (m->unknown_fields[i].tag == 0) {
            snprintf(err, errlen, "field number 0 in %s", m->descriptor->name);
            return MANTA_EPROTO;
        }
    }
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "num_returns");
    if (f && f->type == PROTOBUF_C_TYPE_UINT32) {
        uint32_t v = *(const uint32_t *)((const uint8_t *)m + f->offset);
        if (v > MT_MAX_RETURNS) {
            snprintf(err, errlen, "num_returns %u exceeds %u", v, MT_MAX_RETURNS);
            return MANTA_EPROTO;
        }
    }
    return 0;
}

static int validate_depth(const ProtobufCMessage *m, int depth, char *err, size_t errlen)
{
    if (depth > 8) {
        snprintf(err, errlen, "message nested too deeply");
        return MANTA_EPROTO;
    }
    int rc = check_limits(m, err, errlen);
    if (rc) return rc;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields && !rc; i++)
        rc = check_field(m, &d->fields[i], depth, err, errlen);
    return rc;
}

int mt_wire_validate(const ProtobufCMessage *m, char *err, size_t errlen)
{
    return validate_depth(m, 0, err, errlen);
}

int mt_wire_decode(uint16_t type, const uint8_t *p, size_t n, mt_arena *a, ProtobufCMessage **out,
                   char *err, size_t errlen)
{
    const ProtobufCMessageDescriptor *d = mt_wire_desc(type);
    if (!d) {
        snprintf(err, errlen, "unknown message type %u", type);
        return MANTA_EPROTO;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &a->pa, n, p);
    if (!m) {
        snprintf(err, errlen, "cannot decode %s (%zu bytes)", mt_wire_name(type), n);
        return MANTA_EPROTO;
    }
    int rc = mt_wire_validate(m, err, errlen);
    if (rc) return rc;
    *out = m;
    return 0;
}
