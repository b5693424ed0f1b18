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
            fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The largest frame the targets accept: small, so the size check is hit. */
#define FUZZ_MAX_FRAME (1u << 20)

/* A message that decoded and validated must survive being packed again (as
 * a daemon forwarding it would), decode and validate again, and pack to the
 * same bytes the second time (packing is canonical). */
static inline void fuzz_repack_check(uint16_t type, const ProtobufCMessage *m)
{
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
