/* wire.h -- frames and the protobuf codec shared by every manta connection.
 *
 * A frame is an 8-byte header (u32 payload length LE, u16 MsgType LE, u8
 * version, u8 flags) followed by a protobuf payload (proto/manta.proto).
 * Decoding unpacks into an arena and then validates what protobuf cannot:
 * the fixed lengths of ids and the message type itself. */
#ifndef MT_WIRE_H
#define MT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "manta.pb-c.h"

#define MT_FRAME_HDR 8
#define MT_WIRE_VERSION MANTA__VERSION__PROTOCOL_VERSION

typedef struct mt_frame {
    uint32_t len;
    uint16_t type;
    uint8_t version;
    uint8_t flags;
    const uint8_t *payload;
} mt_frame;

/* Look at the front of a byte stream.  Returns 1 and fills `f` when a whole
 * frame is there (consume MT_FRAME_HDR + f->len bytes), 0 when more bytes
 * are needed, or MANTA_ETOOBIG / MANTA_EVERSION / MANTA_EPROTO when the
 * stream is bad (the connection must be closed). */
int mt_wire_peek(const uint8_t *p, size_t n, size_t max_payload, mt_frame *f);

/* Append a frame holding `msg` packed. */
void mt_wire_append(mt_buf *b, uint16_t type, const ProtobufCMessage *msg);
/* Append a frame with an already encoded payload. */
void mt_wire_append_raw(mt_buf *b, uint16_t type, const void *payload, size_t n);

/* The descriptor of a message type; NULL if `type` is unknown. */
const ProtobufCMessageDescriptor *mt_wire_desc(uint16_t type);
const char *mt_wire_name(uint16_t type);

/* A bump allocator for decoded messages: everything unpacked from one frame
 * is freed at once by mt_arena_reset(). */
typedef struct mt_arena {
    ProtobufCAllocator pa;
    struct mt_arena_chunk *chunks;
    size_t used;
} mt_arena;

void mt_arena_init(mt_arena *a);
void mt_arena_reset(mt_arena *a);
void mt_arena_free(mt_arena *a);

/* Unpack and validate one payload of `type`.  On success returns 0 and sets
 * *out (valid until the arena is reset).  On failure returns MANTA_EPROTO
 * and writes the reason into err. */
int mt_wire_decode(uint16_t type, const uint8_t *p, size_t n, mt_arena *a, ProtobufCMessage **out,
                   char *err, size_t errlen);

/* Validate a decoded message (exposed for tests). */
int mt_wire_validate(const ProtobufCMessage *m, char *err, size_t errlen);
/* The fixed length of an id field by its name (0: not an id field). */
size_t mt_wire_id_len(const char *field);

/* Helpers for bytes fields. */
#define MT_BIN(ptr, n) ((ProtobufCBinaryData){.len = (n), .data = (uint8_t *)(ptr)})

#endif
