/* fuzz_peers.c -- what the handler targets share: reading the script, and
 * the far ends ("slots") of the connections of the code under test, which
 * the script writes frames to and which are drained of what it answers. */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "fuzz_script.h"

int fuzz_slots[FUZZ_MAX_SLOTS];
size_t fuzz_nslots;
bool fuzz_logging;
fuzz_said fuzz_last[FUZZ_MAX_SLOTS];
bool (*fuzz_keep_type)(uint16_t type);

/* mt_random_bytes, wrapped: the same bytes in every run of an input, so a
 * crash repeats and the script can name the ids the code makes. */
static uint64_t rng_state;

void fuzz_random_reset(void) { rng_state = 0x6d616e7461; }

void __wrap_mt_random_bytes(void *buf, size_t n);
void __wrap_mt_random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        p[i] = (uint8_t)(z ^ (z >> 31));
    }
}

uint8_t fuzz_take8(fuzz_input *in)
{
    if (!in->n) return 0;
    in->n--;
    return *in->p++;
}

static size_t take_bytes(fuzz_input *in, size_t want, const uint8_t **out)
{
    size_t k = MT_MIN(want, in->n);
    *out = in->p;
    in->p += k;
    in->n -= k;
    return k;
}

/* Both handler targets wrap mt_sock_connect (each answers as its script's
 * peer); connections started from the loop, to other nodes and processes,
 * take the same path, so no connect ever leaves this process. */
int __wrap_mt_sock_connect(const char *endpoint, double timeout_s, int *fd);
int __wrap_mt_sock_connect_start(const char *endpoint, int64_t timeout_ms, int *fd);
int __wrap_mt_sock_connect_start(const char *endpoint, int64_t timeout_ms, int *fd)
{
    return __wrap_mt_sock_connect(endpoint, (double)timeout_ms / 1000.0, fd);
}

int fuzz_pair(int *near, int *far)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv)) return -1;
    *near = sv[0];
    *far = sv[1];
    return 0;
}

void fuzz_add_slot(int fd)
{
    if (fuzz_nslots < FUZZ_MAX_SLOTS) {
        fuzz_slots[fuzz_nslots++] = fd;
        return;
    }
    close(fd);
}

void fuzz_close_slots(void)
{
    for (size_t i = 0; i < fuzz_nslots; i++) {
        if (fuzz_slots[i] >= 0) close(fuzz_slots[i]);
        mt_buf_free(&fuzz_last[i].payload);
        fuzz_last[i].type = 0;
    }
    fuzz_nslots = 0;
}

/* The whole frames of what slot i received: logged (FUZZ_LOG=1), and the
 * last one worth answering kept. */
static void saw_frames(size_t slot, const uint8_t *p, size_t n)
{
    mt_frame f;
    while (n >= MT_FRAME_HDR && mt_wire_peek(p, n, SIZE_MAX, &f) == 1) {
        if (fuzz_logging) fprintf(stderr, "fuzz: slot %zu <- %s\n", slot, mt_wire_name(f.type));
        if (fuzz_keep_type && fuzz_keep_type(f.type)) {
            fuzz_said *l = &fuzz_last[slot];
            l->type = f.type;
            mt_buf_consume(&l->payload, mt_buf_avail(&l->payload));
            mt_buf_append(&l->payload, f.payload, f.len);
        }
        p += MT_FRAME_HDR + f.len;
        n -= MT_FRAME_HDR + f.len;
    }
}

void fuzz_drain(void)
{
    static uint8_t buf[1 << 20];
    for (size_t i = 0; i < fuzz_nslots; i++) {
        if (fuzz_slots[i] < 0) continue;
        for (;;) {
            ssize_t r = recv(fuzz_slots[i], buf, sizeof buf, MSG_DONTWAIT);
            if (r > 0) saw_frames(i, buf, (size_t)r);
            if (r > 0) continue;
            if (r < 0 && errno == EINTR) continue;
            if (r == 0) { /* the other side hung up */
                close(fuzz_slots[i]);
                fuzz_slots[i] = -1;
            }
            break;
        }
    }
}

static void send_buf(int fd, mt_buf *b)
{
    /* The socket buffer holds a whole step (inputs are small). */
    ssize_t w = send(fd, b->data, b->len, MSG_DONTWAIT | MSG_NOSIGNAL);
    MT_UNUSED(w);
    mt_buf_free(b);
}

void fuzz_write_msg(int fd, uint16_t type, const ProtobufCMessage *m)
{
    mt_buf b;
    mt_buf_init(&b);
    mt_wire_append(&b, type, m);
    send_buf(fd, &b);
}

void fuzz_step_frame(fuzz_input *in, const uint16_t *types, size_t ntypes)
{
    uint8_t slot = fuzz_take8(in), ti = fuzz_take8(in);
    size_t len = fuzz_take8(in);
    len |= (size_t)fuzz_take8(in) << 8;
    const uint8_t *payload;
    len = take_bytes(in, len, &payload);
    if (!fuzz_nslots || fuzz_slots[slot % fuzz_nslots] < 0) return;
    mt_buf b;
    mt_buf_init(&b);
    mt_wire_append_raw(&b, types[ti % ntypes], payload, len);
    send_buf(fuzz_slots[slot % fuzz_nslots], &b);
}

void fuzz_step_hangup(fuzz_input *in, size_t first)
{
    uint8_t s = fuzz_take8(in);
    if (fuzz_nslots <= first) return;
    size_t i = first + s % (fuzz_nslots - first);
    if (fuzz_slots[i] < 0) return;
    close(fuzz_slots[i]);
    fuzz_slots[i] = -1;
}
