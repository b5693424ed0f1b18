/* fuzz_script.h -- the input format of the handler targets (fuzz_node): a
 * script of steps, shared by the target that runs it and by gen_corpus,
 * which writes seed scripts from real messages. */
#ifndef MT_FUZZ_SCRIPT_H
#define MT_FUZZ_SCRIPT_H

#include "wire.h"

/* One byte of kind (modulo FUZZ_STEP_KINDS), then the step's arguments. */
enum {
    FUZZ_STEP_CONNECT, /* role index, arg: a client of that role says Hello */
    FUZZ_STEP_RAW,     /* a client that sends its own first frame */
    FUZZ_STEP_FRAME,   /* slot, type index, len (u16 LE), payload */
    FUZZ_STEP_FRAME2,  /* (the same: frames are most steps) */
    FUZZ_STEP_FRAME3,
    FUZZ_STEP_HANGUP,  /* slot: the script's end of that connection closes */
    FUZZ_STEP_TICK,    /* the daemon's periodic work, once */
    FUZZ_STEP_KINDS
};

/* Role indices of FUZZ_STEP_CONNECT. */
static const int fuzz_roles[] = {
    MANTA__ROLE__ROLE_DRIVER,    MANTA__ROLE__ROLE_WORKER, MANTA__ROLE__ROLE_CLI,
    MANTA__ROLE__ROLE_NODE,      MANTA__ROLE__ROLE_LESSEE, MANTA__ROLE__ROLE_GCS_CLIENT,
    MANTA__ROLE__ROLE_NODE_PEER, MANTA__ROLE__ROLE_PEER};

/* Frame types are named by index into the message types that have a
 * message (in the order of the MsgType enum), so that every index is one. */
static inline size_t fuzz_msg_types(uint16_t *out, size_t cap)
{
    const ProtobufCEnumDescriptor *ed = &manta__msg_type__descriptor;
    size_t n = 0;
    for (unsigned i = 0; i < ed->n_values && n < cap; i++) {
        uint16_t t = (uint16_t)ed->values[i].value;
        if (mt_wire_desc(t)) out[n++] = t;
    }
    return n;
}

/* Ids the steps give what they make, so a frame can name them: client k
 * (arg & 15) has worker id 0x10+k, a node 0x30+k and endpoint
 * tcp:127.0.0.1:(1000+k); a worker the pool started 0xA0+k. */
#define FUZZ_CLIENT_WID(k) (0x10 + ((k) & 15))
#define FUZZ_NODE_NID(k) (0x30 + ((k) & 15))
#define FUZZ_WORKER_WID(k) (0xA0 + ((k) & 15))
#define FUZZ_HEAD_NID 0x48
#define FUZZ_SELF_NID 0x4e /* a node that joined */

#endif
