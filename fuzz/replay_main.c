/* replay_main.c -- the driver of a fuzz target when it is not built with
 * libFuzzer: runs LLVMFuzzerTestOneInput over a corpus, then over inputs
 * made by mutating the corpus (bit flips, interesting values, truncation,
 * insertion, deletion, splicing, corrupted length fields and varints) and
 * over random bytes, all from a fixed seed so a failure repeats.
 *
 *   fuzz_x [CORPUS_DIR_OR_FILE [ITERATIONS]]
 *
 * ITERATIONS (else $FUZZ_ITERATIONS, else 20000) mutated inputs are tried
 * within $FUZZ_MAX_SECONDS (default 15); $FUZZ_SEED changes the sequence.
 * A file argument replays just that file (a saved crash).  The driver
 * exits 0 when nothing crashed; a crash (a failed check, ASan, UBSan, a
 * signal) ends the process, after the input is written to
 * $FUZZ_CRASH_DIR (default .)/crash-<target>-<n>. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FUZZ_MAX_INPUT (64 * 1024)
#define MAX_SEED_FILE (1024 * 1024)
#define MIN_SIZE(a, b) ((a) < (b) ? (a) : (b))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Sanitizer runtimes call this before they end the process. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

/* ---------------------------------------------------------------- crashes */

static const char *target_name = "fuzz";
static const uint8_t *cur_data;
static size_t cur_size;
static long cur_index = -1;
static volatile sig_atomic_t saving;

static void put_str(int fd, const char *s)
{
    if (write(fd, s, strlen(s)) < 0) {
    }
}

/* Async-signal-safe: write the current input where a human can replay it. */
static void save_current(void)
{
    if (saving++ || cur_index < 0) return;
    char path[512], num[24];
    const char *dir = getenv("FUZZ_CRASH_DIR");
    size_t n = 0;
    path[0] = '\0';
    if (!dir || !*dir) dir = ".";
    int k = 0;
    long v = cur_index;
    do
        num[k++] = (char)('0' + v % 10);
    while ((v /= 10) && k < 20);
    const char *parts[] = {dir, "/crash-", target_name, "-"};
    for (size_t i = 0; i < 4; i++)
        for (const char *p = parts[i]; *p && n < sizeof path - 24; p++)
            path[n++] = *p;
    while (k)
        path[n++] = num[--k];
    path[n] = '\0';
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        size_t off = 0;
        while (off < cur_size) {
            ssize_t w = write(fd, cur_data + off, cur_size - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
        close(fd);
        put_str(2, "fuzz: crashing input saved to ");
        put_str(2, path);
        put_str(2, "\n");
    }
}

static void on_signal(int sig)
{
    save_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_crash_handlers(void)
{
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(save_current);
    /* Leave SEGV and friends to a sanitizer that handles them. */
    int sigs_plain[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
    if (!__sanitizer_set_death_callback)
        for (size_t i = 0; i < sizeof sigs_plain / sizeof sigs_plain[0]; i++)
            signal(sigs_plain[i], on_signal);
    signal(SIGABRT, on_signal); /* failed checks and asserts */
}

/* Run one input from an exact-size heap copy, so reading one byte past the
 * end is an ASan error, as under libFuzzer. */
static void run_one(const uint8_t *data, size_t size, long index)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) abort();
    if (size) memcpy(copy, data, size);
    cur_data = copy;
    cur_size = size;
    cur_index = index;
    LLVMFuzzerTestOneInput(copy, size);
    cur_index = -1;
    free(copy);
}

/* ---------------------------------------------------------------- corpus */

typedef struct seed {
    uint8_t *data;
    size_t size;
} seed;

static seed *seeds;
static size_t nseeds;

static int read_file(const char *path, seed *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    uint8_t *buf = malloc(MAX_SEED_FILE);
    if (!buf) abort();
    size_t n = fread(buf, 1, MAX_SEED_FILE, f);
    fclose(f);
    out->data = buf;
    out->size = n;
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_corpus(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz: cannot open corpus %s: %s\n", dir, strerror(errno));
        exit(2);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof *names);
            if (!names) abort();
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp); /* readdir order is not stable */
    seeds = calloc(n ? n : 1, sizeof *seeds);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && read_file(path, &seeds[nseeds]) == 0)
            nseeds++;
        free(names[i]);
    }
    free(names);
}

/* ---------------------------------------------------------------- mutation */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 2685821657736338717ull;
}

static size_t below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

static const uint64_t interesting[] = {
    0,
    1,
    2,
    7,
    8,
    15,
    16,
    19,
    20,
    21,
    24,
    63,
    64,
    65,
    127,
    128,
    255,
    256,
    4095,
    4096,
    0x7fff,
    0x8000,
    0xffff,
    0x10000,
    0x7fffffff,
    0x80000000u,
    0xffffffffu,
    0x100000000ull,
    0x7fffffffffffffffull,
    0x8000000000000000ull,
    0xffffffffffffffffull,
    (1u << 20),
    (1u << 20) + 1,
};

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* One mutation of buf[0..*n) in place (capacity FUZZ_MAX_INPUT). */
static void mutate_once(uint8_t *buf, size_t *n)
{
    size_t len = *n;
    switch (rnd() % 12) {
    case 0: /* flip a bit */
        if (len) buf[below(len)] ^= (uint8_t)(1u << below(8));
        break;
    case 1: /* a random byte */
        if (len) buf[below(len)] = (uint8_t)rnd();
        break;
    case 2: /* an interesting byte */
        if (len) buf[below(len)] = (uint8_t)interesting[below(sizeof interesting / 8)];
        break;
    case 3: /* truncate */
        *n = below(len + 1);
        break;
    case 4: { /* insert random bytes */
        size_t k = 1 + below(rnd() % 4 ? 8 : 256), at = below(len + 1);
        if (len + k > FUZZ_MAX_INPUT) break;
        memmove(buf + at + k, buf + at, len - at);
        for (size_t i = 0; i < k; i++)
            buf[at + i] = (uint8_t)rnd();
        *n = len + k;
        break;
    }
    case 5: { /* delete a range */
        if (!len) break;
        size_t at = below(len), k = 1 + below(MIN_SIZE(len - at, 64));
        memmove(buf + at, buf + at + k, len - at - k);
        *n = len - k;
        break;
    }
    case 6: { /* duplicate a range */
        if (!len) break;
        size_t at = below(len), k = 1 + below(len - at), to = below(len + 1);
        if (len + k > FUZZ_MAX_INPUT) break;
        static uint8_t tmp[FUZZ_MAX_INPUT];
        memcpy(tmp, buf + at, k);
        memmove(buf + to + k, buf + to, len - to);
        memcpy(buf + to, tmp, k);
        *n = len + k;
        break;
    }
    case 7: { /* splice: our front, another seed's back */
        if (!nseeds) break;
        const seed *s = &seeds[below(nseeds)];
        size_t keep = below(len + 1), from = below(s->size + 1);
        size_t k = MIN_SIZE(s->size - from, FUZZ_MAX_INPUT - keep);
        memcpy(buf + keep, s->data + from, k);
        *n = keep + k;
        break;
    }
    case 8:
    case 9: { /* a length field: an interesting or nearby 16/32/64-bit value */
        static const int widths[] = {2, 4, 8};
        int w = widths[below(3)];
        if (len < (size_t)w) break;
        size_t at = below(len - (size_t)w + 1);
        if (rnd() % 2) at &= ~(size_t)(w - 1); /* aligned, like header fields */
        uint64_t v = interesting[below(sizeof interesting / 8)];
        if (rnd() % 3 == 0) { /* near the current value */
            uint64_t cur = 0;
            for (int i = w - 1; i >= 0; i--)
                cur = cur << 8 | buf[at + (size_t)i];
            v = cur + (uint64_t)(int64_t)(below(33) - 16);
        }
        put_le(buf + at, v, w);
        break;
    }
    case 10: { /* a protobuf varint: lengthen it or make it huge */
        if (!len) break;
        size_t at = below(len);
        if (rnd() % 2) {
            buf[at] |= 0x80; /* continues into the next byte */
        } else if (len + 5 <= FUZZ_MAX_INPUT) {
            memmove(buf + at + 5, buf + at, len - at);
            memcpy(buf + at, "\xff\xff\xff\xff\x0f", 5);
            *n = len + 5;
        }
        break;
    }
    default: { /* overwrite a range with a copy from elsewhere */
        if (len < 2) break;
        size_t from = below(len), to = below(len), k = 1 + below(MIN_SIZE(len - from, len - to));
        memmove(buf + to, buf + from, k);
        break;
    }
    }
}

/* ---------------------------------------------------------------- main */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    long x = strtol(v, &end, 0);
    return *end ? def : x;
}

int main(int argc, char **argv)
{
    const char *slash = strrchr(argv[0], '/');
    target_name = slash ? slash + 1 : argv[0];
    install_crash_handlers();
    long iterations = env_long("FUZZ_ITERATIONS", 20000);
    if (argc > 2) iterations = strtol(argv[2], NULL, 0);
    double budget = (double)env_long("FUZZ_MAX_SECONDS", 15);
    rng_state = (uint64_t)env_long("FUZZ_SEED", 0x6d616e7461) | 1;

    if (argc > 1 && *argv[1]) {
        struct stat sb;
        if (stat(argv[1], &sb) == 0 && S_ISREG(sb.st_mode)) {
            seed s;
            if (read_file(argv[1], &s)) return 2;
            run_one(s.data, s.size, 0);
            printf("%s: replayed %s (%zu bytes)\n", target_name, argv[1], s.size);
            free(s.data);
            return 0;
        }
        load_corpus(argv[1]);
    }
    double t0 = now_s();
    for (size_t i = 0; i < nseeds; i++)
        run_one(seeds[i].data, seeds[i].size, (long)i);

    static uint8_t buf[FUZZ_MAX_INPUT];
    long done = 0;
    for (; done < iterations; done++) {
        if ((done & 63) == 0 && now_s() - t0 > budget) break;
        size_t n = 0;
        if (!nseeds || rnd() % 10 == 0) { /* random bytes, short mostly */
            n = below(rnd() % 4 ? 64 : 2048);
            for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)rnd();
        } else {
            const seed *s = &seeds[below(nseeds)];
            n = s->size < FUZZ_MAX_INPUT ? s->size : FUZZ_MAX_INPUT;
            memcpy(buf, s->data, n);
            int rounds = 1 + (int)below(rnd() % 4 ? 3 : 16);
            for (int r = 0; r < rounds; r++)
                mutate_once(buf, &n);
        }
        run_one(buf, n, (long)nseeds + done);
    }
    double dt = now_s() - t0;
    printf("%s: %zu corpus inputs, %ld of %ld mutated inputs in %.2f s%s\n", target_name, nseeds,
           done, iterations, dt, done < iterations ? " (time budget reached)" : "");
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i].data);
    free(seeds);
    return 0;
}
