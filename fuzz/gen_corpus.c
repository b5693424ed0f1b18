/* gen_corpus.c -- writes the seed corpus of every fuzz target, run at build
 * time so the seeds follow the current schema:
 *
 *   gen_corpus OUT_DIR   ->  OUT_DIR/<target>/seed-NNN
 *
 * Wire seeds are made from the message descriptors themselves: for each
 * message type one message with every field set (ids at their fixed
 * lengths, two elements per repeated field, nested messages filled in) and
 * one empty message.  Value seeds cover every format with 0..5 buffers;
 * resource seeds are typical and tricky JSON objects. */
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

static const char *out_dir;

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) && errno != EEXIST) {
        fprintf(stderr, "gen_corpus: mkdir %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void write_seed(const char *target, int n, const void *data, size_t size)
{
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

/* ---------------------------------------------------------------- session files */

static int layout_seeds(void)
{
    static const char *docs[] = {
        "node_id=00ff\nsocket=/tmp/m/s-1/daemon.sock\nhost=127.0.0.1\nport=6379\nhead=1\n"
        "pid=4242\nstart=123456\nexe=/opt/manta/_bin/mantad\n",
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
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus OUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    make_dir(out_dir);
    if (wire_seeds() || value_seeds() || resource_seeds() || layout_seeds()) return 1;
    return 0;
}
