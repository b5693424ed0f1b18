/* fuzz.h -- what manta's fuzz targets share: the libFuzzer entry point, a
 * check that aborts with a message (so both libFuzzer and the replay driver
 * report it as a crash), and the re-encoding oracle of the wire decoders. */
#ifndef MT_FUZZ_H
#define MT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mt.h"
#include "wire.h"

#define FUZZ_EXPORT __attribute__((visibility("default")))

/* Each target defines this; libFuzzer or replay_main.c calls it. */
FUZZ_EXPORT int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The largest frame the targets accept: small, so the size check is hit. */
#define FUZZ_MAX_FRAME (1u << 20)

/* True if `m` or a message inside it kept an unknown field numbered 0.
 * protobuf-c accepts field number 0 when its tag is written in more than
 * one byte (0x80 0x00), keeps it as an unknown field and packs it back as
 * 0x00, which it then refuses: such a message cannot be forwarded.
 * mt_wire_validate does not refuse it yet (see the fuzzing report), so the
 * repack oracle skips these messages instead of failing on them. */
static inline int fuzz_has_field_zero(const ProtobufCMessage *m, int depth)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0) return 1;
    if (depth > 16) return 0;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        const uint8_t *base = (const uint8_t *)m;
        size_t n = 1;
        ProtobufCMessage *const *subs = (ProtobufCMessage *const *)(base + fd->offset);
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)(base + fd->quantifier_offset);
            subs = *(ProtobufCMessage *const *const *)(base + fd->offset);
        }
        for (size_t k = 0; k < n; k++)
            if (subs[k] && fuzz_has_field_zero(subs[k], depth + 1)) return 1;
    }
    return 0;
}

/* A message that decoded and validated must survive being packed again (as
 * a daemon forwarding it would), decode and validate again, and pack to the
 * same bytes the second time (packing is canonical). */
static inline void fuzz_repack_check(uint16_t type, const ProtobufCMessage *m)
{
    static int strict = -1;
    if (strict < 0) strict = getenv("FUZZ_STRICT_FIELD_ZERO") != NULL;
    if (!strict && fuzz_has_field_zero(m, 0)) return;
    mt_buf b1, b2;
    mt_buf_init(&b1);
    mt_buf_init(&b2);
    mt_wire_append(&b1, type, m);
    mt_frame f;
    FUZZ_CHECK(mt_wire_peek(b1.data, b1.len, SIZE_MAX, &f) == 1);
    FUZZ_CHECK(f.type == type && MT_FRAME_HDR + (size_t)f.len == b1.len);
    mt_arena a;
    mt_arena_init(&a);
    ProtobufCMessage *m2 = NULL;
    char err[256] = "";
    int rc = mt_wire_decode(type, f.payload, f.len, &a, &m2, err, sizeof err);
    if (rc) fprintf(stderr, "re-encoded %s does not decode: %s\n", mt_wire_name(type), err);
    FUZZ_CHECK(rc == 0 && m2 != NULL);
    FUZZ_CHECK(m2->descriptor == m->descriptor);
    mt_wire_append(&b2, type, m2);
    FUZZ_CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    mt_arena_free(&a);
    mt_buf_free(&b1);
    mt_buf_free(&b2);
}

#endif
