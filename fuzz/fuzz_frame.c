/* fuzz_frame.c -- the frame reader of every connection: bytes arrive in
 * pieces of varying size into an input buffer; whole frames are peeked,
 * decoded into an arena and consumed, as mt_conn's reader does, until the
 * stream ends or turns out bad (which closes the connection). */
#include "fuzz.h"

/* Read sizes cycle through these, so frames straddle reads in every way. */
static const size_t pieces[] = {1, 7, 8, 9, 64, 333, 4096, 65536};

FUZZ_EXPORT int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_buf in;
    mt_buf_init(&in);
    mt_arena arena;
    mt_arena_init(&arena);
    size_t pos = 0, k = size ? data[0] : 0;
    int bad = 0;
    while (pos < size && !bad) {
        size_t piece = pieces[k++ % MT_ARRAY_LEN(pieces)];
        size_t n = MT_MIN(size - pos, piece);
        mt_buf_append(&in, data + pos, n);
        pos += n;
        while (mt_buf_avail(&in) >= MT_FRAME_HDR) {
            mt_frame f;
            int rc = mt_wire_peek(mt_buf_head(&in), mt_buf_avail(&in), FUZZ_MAX_FRAME, &f);
            if (rc < 0) {
                FUZZ_CHECK(rc == MANTA_ETOOBIG || rc == MANTA_EVERSION || rc == MANTA_EPROTO);
                FUZZ_CHECK(manta_last_error()[0] != '\0');
                bad = 1;
                break;
            }
            if (rc == 0) {
                /* Waiting for more: the header was fine (when it is all
                 * there), so the frame fits the limit. */
                FUZZ_CHECK(MT_FRAME_HDR + (size_t)f.len > mt_buf_avail(&in));
                FUZZ_CHECK(f.len <= FUZZ_MAX_FRAME);
                break;
            }
            FUZZ_CHECK(f.len <= FUZZ_MAX_FRAME && f.version == MT_WIRE_VERSION);
            FUZZ_CHECK(f.payload == mt_buf_head(&in) + MT_FRAME_HDR);
            ProtobufCMessage *m = NULL;
            char err[256] = "";
            rc = mt_wire_decode(f.type, f.payload, f.len, &arena, &m, err, sizeof err);
            if (rc == 0) {
                FUZZ_CHECK(m && m->descriptor == mt_wire_desc(f.type));
            } else {
                FUZZ_CHECK(rc == MANTA_EPROTO && err[0] != '\0');
            }
            mt_arena_reset(&arena);
            mt_buf_consume(&in, MT_FRAME_HDR + f.len);
        }
    }
    mt_arena_free(&arena);
    mt_buf_free(&in);
    return 0;
}
