/* fuzz_script.h -- the input format of the handler targets (fuzz_node,
 * fuzz_core): a script of steps, shared by the targets that run it and by
 * gen_corpus, which writes seed scripts from real messages. */
#ifndef MT_FUZZ_SCRIPT_H
#define MT_FUZZ_SCRIPT_H

#include <stdbool.h>

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

/* fuzz_core adds calls of the runtime's API (one argument byte each). */
enum {
    FUZZ_CORE_SUBMIT = FUZZ_STEP_KINDS, /* a task (arg: returns, resources, ref argument) */
    FUZZ_CORE_PUT,                      /* a small value (arg: size) */
    FUZZ_CORE_GET,                      /* a held ref, without waiting */
    FUZZ_CORE_ACTOR,                    /* create an actor */
    FUZZ_CORE_CALL,                     /* call a method of the last actor */
    FUZZ_CORE_CANCEL,                   /* cancel the task of a held ref */
    FUZZ_CORE_DROP,                     /* let go of a held ref */
    FUZZ_CORE_EXEC,                     /* run a queued task (arg: how it ends) */
    FUZZ_CORE_ANSWER,                   /* slot, arg: answer the last request it got */
    FUZZ_CORE_KINDS
};

/* Role indices of FUZZ_STEP_CONNECT (fuzz_node; fuzz_core's peers say
 * Hello as ROLE_PEER). */
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

/* ---------------------------------------------------------------- fuzz_peers.c */

typedef struct fuzz_input {
    const uint8_t *p;
    size_t n;
} fuzz_input;

#define FUZZ_MAX_SLOTS 16
/* The script's ends of the connections, in the order they were made
 * (-1: closed). */
extern int fuzz_slots[FUZZ_MAX_SLOTS];
extern size_t fuzz_nslots;
extern bool fuzz_logging; /* FUZZ_LOG set: print what each slot receives */

/* The last frame a slot received of a type the target answers. */
typedef struct fuzz_said {
    uint16_t type; /* 0: none */
    mt_buf payload;
} fuzz_said;
extern fuzz_said fuzz_last[FUZZ_MAX_SLOTS];
extern bool (*fuzz_keep_type)(uint16_t type); /* which types to keep (NULL: none) */

/* Restart the wrapped mt_random_bytes (-Wl,--wrap=mt_random_bytes). */
void fuzz_random_reset(void);
uint8_t fuzz_take8(fuzz_input *in); /* 0 once the input is used up */
int fuzz_pair(int *near, int *far);  /* a non-blocking socketpair */
void fuzz_add_slot(int fd);          /* closes fd when the slots are full */
void fuzz_close_slots(void);
/* Read (and drop) what the code under test wrote; a slot whose other end
 * closed is closed. */
void fuzz_drain(void);
void fuzz_write_msg(int fd, uint16_t type, const ProtobufCMessage *m);
/* FUZZ_STEP_FRAME's arguments, and the frame written to its slot. */
void fuzz_step_frame(fuzz_input *in, const uint16_t *types, size_t ntypes);
/* FUZZ_STEP_HANGUP: closes a slot numbered `first` or above. */
void fuzz_step_hangup(fuzz_input *in, size_t first);

#endif
