/* fuzz_decode.c -- mt_wire_decode of one payload.  The first two bytes
 * (little endian) name the message type; a value that is no type is tried
 * as such (it must be refused) and then picks a real type by index, so
 * every input exercises a decoder.  The rest is the payload.  A message
 * that decodes must re-encode to one that decodes (fuzz_repack_check). */
#include "fuzz.h"

static uint16_t known[256];
static size_t nknown;

static void list_types(void)
{
    const ProtobufCEnumDescriptor *ed = &manta__msg_type__descriptor;
    for (unsigned i = 0; i < ed->n_values && nknown < MT_ARRAY_LEN(known); i++) {
        uint16_t t = (uint16_t)ed->values[i].value;
        if (mt_wire_desc(t)) known[nknown++] = t;
    }
    FUZZ_CHECK(nknown > 0);
}

FUZZ_EXPORT int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!nknown) list_types();
    if (size < 2) return 0;
    uint16_t type = (uint16_t)(data[0] | data[1] << 8);
    const uint8_t *p = data + 2;
    size_t n = size - 2;
    mt_arena arena;
    mt_arena_init(&arena);
    char err[256] = "";
    ProtobufCMessage *m = NULL;
    if (!mt_wire_desc(type)) {
        FUZZ_CHECK(mt_wire_decode(type, p, n, &arena, &m, err, sizeof err) == MANTA_EPROTO);
        FUZZ_CHECK(m == NULL && strstr(err, "unknown message type") != NULL);
        type = known[type % nknown];
    }
    int rc = mt_wire_decode(type, p, n, &arena, &m, err, sizeof err);
    if (rc == 0) {
        FUZZ_CHECK(m != NULL && m->descriptor == mt_wire_desc(type));
        FUZZ_CHECK(mt_wire_validate(m, err, sizeof err) == 0);
        fuzz_repack_check(type, m);
    } else {
        FUZZ_CHECK(rc == MANTA_EPROTO && err[0] != '\0');
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
    }
    mt_arena_free(&arena);
    return 0;
}
