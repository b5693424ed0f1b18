/* floor.c -- measures the machine's floor (see floor.h): each latency comes
 * from many timed round trips between this process and a forked child, both
 * pinned to chosen CPUs (the lowest median of several time windows; see
 * fl_measure); memcpy bandwidth is the best of several passes.
 *
 * Everything is bounded in time: sockets have receive timeouts, spins and
 * futex waits give up after a deadline, and children die with their parent
 * (PR_SET_PDEATHSIG) and are killed if they do not exit when told to. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#endif

#include "floor.h"

#include <errno.h>
#include <linux/futex.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FL_DEFAULT_BUDGET_S 2.0
#define FL_MAX_BUDGET_S 60.0
#define FL_MAX_SAMPLES (1u << 16) /* per window; enough for a stable median */
#define FL_WARMUP_FRACTION 0.1    /* of each figure's time, not recorded */
#define FL_WINDOWS 8              /* each figure is the best of this many medians */
#define FL_STALL_S 0.25           /* a round trip this long means the peer is gone */
#define FL_CHILD_SLACK_S 2.0      /* a child outlives its figure's time by at most this */
#define FL_REAP_WAIT_S 1.0        /* then it is killed */
#define FL_MEMCPY_BYTES ((size_t)256 << 20)
#define FL_MEMCPY_MIN_BYTES ((size_t)16 << 20)
#define FL_MEMCPY_MIN_PASSES 5
#define FL_MEMCPY_MAX_PASSES 10

/* Round trips per timed sample: enough that reading the clock is noise. */
#define FL_BATCH_SYSCALL 256
#define FL_BATCH_SPIN 64
#define FL_BATCH_BLOCKING 1

/* ---------------------------------------------------------------- helpers */

static double fl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fl_sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static int fl_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v); NaN when n == 0. */
static double fl_median(double *v, size_t n)
{
    if (n == 0) return NAN;
    qsort(v, n, sizeof *v, fl_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int fl_pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

/* The first `max` CPUs of `allowed` into cpus[]; returns how many. */
static int fl_pick_cpus(const cpu_set_t *allowed, int *cpus, int max)
{
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < max; c++)
        if (CPU_ISSET(c, allowed)) cpus[n++] = c;
    return n;
}

/* Wait for `pid` to exit; kill it if it has not within FL_REAP_WAIT_S. */
static void fl_reap(pid_t pid)
{
    double end = fl_now() + FL_REAP_WAIT_S;
    for (;;) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) return; /* ECHILD: SIGCHLD ignored */
        if (fl_now() > end) break;
        fl_sleep_s(0.001);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

/* Fork a child pinned to `cpu` that runs body(arg) and exits.  The child
 * dies with the calling thread and only makes async-signal-safe calls, so
 * the caller may be multi-threaded.  Returns the pid or -1. */
static pid_t fl_spawn(int cpu, void (*body)(void *), void *arg)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) _exit(1);
    if (fl_pin(cpu) < 0) _exit(1);
    body(arg);
    _exit(0);
}

/* One measurement method: `rt` performs `n` round trips (or operations)
 * with `ctx`; returns 0, or -1 when the peer failed or stalled. */
typedef int (*fl_rt_fn)(void *ctx, int n);

/* Time batches of `batch` round trips until `end` or until v[] is full;
 * each sample is the time of one round trip in microseconds.  Returns the
 * number of samples, or -1 if a round trip failed. */
static long fl_window(fl_rt_fn rt, void *ctx, int batch, double end, double *v, size_t cap)
{
    size_t n = 0;
    for (double t = fl_now(); t < end && n < cap;) {
        double t0 = t;
        if (rt(ctx, batch) != 0) return -1;
        t = fl_now();
        v[n++] = (t - t0) * 1e6 / batch;
    }
    return (long)n;
}

/* Run `rt` for `seconds`: a warm-up, then FL_WINDOWS windows; returns the
 * lowest of the windows' median round trip times in microseconds, or NaN.
 * Why not one median over everything: on this VM the host deschedules vCPUs
 * in episodes ~100 ms long during which every cross-core wake-up takes ~4 ms
 * (a host tick); a single median then flips between 25 us and 4 ms from run
 * to run.  The floor is what the machine does when left alone, and each
 * window is still the median of hundreds of round trips or more.  A failed
 * round trip (peer gone or stalled) ends the run; the windows completed
 * before it still count. */
static double fl_measure(fl_rt_fn rt, void *ctx, int batch, double seconds)
{
    double *v = malloc(FL_MAX_SAMPLES * sizeof *v);
    if (!v) return NAN;
    double start = fl_now(), warm = seconds * FL_WARMUP_FRACTION;
    double win = (seconds - warm) / FL_WINDOWS, best = NAN;
    long n = fl_window(rt, ctx, batch, start + warm, v, FL_MAX_SAMPLES);
    for (int w = 0; n >= 0 && w < FL_WINDOWS; w++) {
        n = fl_window(rt, ctx, batch, start + warm + win * (w + 1), v, FL_MAX_SAMPLES);
        double med = n > 0 ? fl_median(v, (size_t)n) : NAN;
        if (!isnan(med) && !(med >= best)) best = med; /* also when best is NaN */
    }
    free(v);
    return best;
}

/* ---------------------------------------------------------------- syscall */

static int fl_syscall_rt(void *ctx, int n)
{
    (void)ctx;
    for (int i = 0; i < n; i++)
        syscall(SYS_getppid);
    return 0;
}

/* ---------------------------------------------------------------- unix socket */

static int fl_read_full(int fd, void *p, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || errno != EINTR)
            return -1; /* EOF, timeout or error */
    }
    return 0;
}

static int fl_write_full(int fd, const void *p, size_t n)
{
    for (size_t put = 0; put < n;) {
        ssize_t r = send(fd, (const char *)p + put, n - put, MSG_NOSIGNAL);
        if (r > 0)
            put += (size_t)r;
        else if (r == 0 || errno != EINTR)
            return -1;
    }
    return 0;
}

static int fl_set_rcvtimeo(int fd, double s)
{
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

struct fl_sock {
    int fd[2]; /* [0] the parent's end, [1] the child's */
};

/* Child: echo 8-byte messages until EOF or the receive timeout. */
static void fl_sock_child(void *arg)
{
    struct fl_sock *s = arg;
    uint64_t msg;
    close(s->fd[0]);
    while (fl_read_full(s->fd[1], &msg, sizeof msg) == 0 &&
           fl_write_full(s->fd[1], &msg, sizeof msg) == 0) {
    }
}

static int fl_sock_rt(void *ctx, int n)
{
    int fd = *(int *)ctx;
    for (int i = 0; i < n; i++) {
        uint64_t msg = (uint64_t)i, back;
        if (fl_write_full(fd, &msg, sizeof msg) < 0 || fl_read_full(fd, &back, sizeof back) < 0 ||
            back != msg)
            return -1;
    }
    return 0;
}

/* Ping-pong between this process on `cpu_self` and a child on `cpu_child`. */
static double fl_sock_rtt(int cpu_self, int cpu_child, double seconds)
{
    struct fl_sock s;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s.fd) < 0) return NAN;
    double med = NAN;
    if (fl_set_rcvtimeo(s.fd[0], FL_STALL_S) < 0 ||
        fl_set_rcvtimeo(s.fd[1], seconds + FL_CHILD_SLACK_S) < 0)
        goto out;
    pid_t pid = fl_spawn(cpu_child, fl_sock_child, &s);
    if (pid < 0) goto out;
    close(s.fd[1]);
    s.fd[1] = -1;
    if (fl_pin(cpu_self) == 0) med = fl_measure(fl_sock_rt, &s.fd[0], FL_BATCH_BLOCKING, seconds);
    close(s.fd[0]); /* the child reads EOF and exits */
    s.fd[0] = -1;
    fl_reap(pid);
out:
    if (s.fd[0] >= 0) close(s.fd[0]);
    if (s.fd[1] >= 0) close(s.fd[1]);
    return med;
}

/* ---------------------------------------------------------------- shared page */

/* One page shared with the child.  `seq` is the ball: the parent makes it
 * odd (2k+1), the child answers with the next even number (2k+2).  To stop,
 * the parent sets `stop` and then `seq` to 0, which the child never waits
 * for, so a child asleep in FUTEX_WAIT wakes at once. */
struct fl_shm {
    _Alignas(64) _Atomic uint32_t seq;
    _Alignas(64) _Atomic uint32_t stop;
    _Atomic uint32_t ready;
    double deadline; /* monotonic seconds; the child gives up after it */
    uint32_t next;   /* parent only: the next odd value to send */
};

static long fl_futex(_Atomic uint32_t *word, int op, uint32_t val, double timeout_s)
{
    struct timespec ts = {(time_t)timeout_s, (long)((timeout_s - (double)(time_t)timeout_s) * 1e9)};
    /* Not FUTEX_PRIVATE_FLAG: the word is shared between processes. */
    return syscall(SYS_futex, (uint32_t *)word, op, val, op == FUTEX_WAIT ? &ts : NULL, NULL, 0);
}

/* Spin until `seq == want`; -1 if `stop` is set or `deadline` passes.  The
 * clock and stop flag are read only every 4096 spins to keep the loop hot. */
static int fl_spin_until(struct fl_shm *m, uint32_t want, double deadline)
{
    for (unsigned spins = 1;; spins++) {
        if (atomic_load_explicit(&m->seq, memory_order_acquire) == want) return 0;
        if ((spins & 0xfff) == 0 &&
            (atomic_load_explicit(&m->stop, memory_order_relaxed) || fl_now() > deadline))
            return -1;
    }
}

/* Sleep in FUTEX_WAIT until `seq == want`; -1 if stopped or past `deadline`. */
static int fl_futex_until(struct fl_shm *m, uint32_t want, double deadline)
{
    for (;;) {
        uint32_t v = atomic_load_explicit(&m->seq, memory_order_acquire);
        if (v == want) return 0;
        if (atomic_load_explicit(&m->stop, memory_order_relaxed) || fl_now() > deadline) return -1;
        fl_futex(&m->seq, FUTEX_WAIT, v, 0.1); /* EAGAIN if seq moved meanwhile */
    }
}

static void fl_spin_child(void *arg)
{
    struct fl_shm *m = arg;
    atomic_store_explicit(&m->ready, 1, memory_order_release);
    for (uint32_t want = 1; fl_spin_until(m, want, m->deadline) == 0; want += 2)
        atomic_store_explicit(&m->seq, want + 1, memory_order_release);
}

static void fl_futex_child(void *arg)
{
    struct fl_shm *m = arg;
    atomic_store_explicit(&m->ready, 1, memory_order_release);
    for (uint32_t want = 1; fl_futex_until(m, want, m->deadline) == 0; want += 2) {
        atomic_store_explicit(&m->seq, want + 1, memory_order_release);
        fl_futex(&m->seq, FUTEX_WAKE, 1, 0);
    }
}

static int fl_spin_rt(void *ctx, int n)
{
    struct fl_shm *m = ctx;
    double stall = 0; /* computed only if a round trip is slow to come back */
    for (int i = 0; i < n; i++, m->next += 2) {
        atomic_store_explicit(&m->seq, m->next, memory_order_release);
        for (unsigned spins = 1; atomic_load_explicit(&m->seq, memory_order_acquire) != m->next + 1;
             spins++) {
            if ((spins & 0xffff) != 0) continue;
            if (stall == 0)
                stall = fl_now() + FL_STALL_S;
            else if (fl_now() > stall)
                return -1;
        }
    }
    return 0;
}

static int fl_futex_rt(void *ctx, int n)
{
    struct fl_shm *m = ctx;
    for (int i = 0; i < n; i++, m->next += 2) {
        atomic_store_explicit(&m->seq, m->next, memory_order_release);
        fl_futex(&m->seq, FUTEX_WAKE, 1, 0);
        if (fl_futex_until(m, m->next + 1, fl_now() + FL_STALL_S) < 0) return -1;
    }
    return 0;
}

/* Ping-pong over a shared page with a child: spinning when `futex` is 0,
 * sleeping in the kernel otherwise. */
static double fl_shm_rtt(int cpu_self, int cpu_child, int futex, double seconds)
{
    struct fl_shm *m =
        mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NAN;
    m->deadline = fl_now() + seconds + FL_CHILD_SLACK_S;
    m->next = 1;
    double med = NAN;
    pid_t pid = fl_spawn(cpu_child, futex ? fl_futex_child : fl_spin_child, m);
    if (pid < 0) goto out;
    if (fl_pin(cpu_self) == 0) {
        double give_up = fl_now() + FL_STALL_S;
        while (!atomic_load_explicit(&m->ready, memory_order_acquire) && fl_now() < give_up)
            sched_yield();
        if (atomic_load_explicit(&m->ready, memory_order_acquire))
            med = fl_measure(futex ? fl_futex_rt : fl_spin_rt, m,
                             futex ? FL_BATCH_BLOCKING : FL_BATCH_SPIN, seconds);
    }
    atomic_store_explicit(&m->stop, 1, memory_order_relaxed);
    atomic_store_explicit(&m->seq, 0, memory_order_release);
    fl_futex(&m->seq, FUTEX_WAKE, 1, 0);
    fl_reap(pid);
out:
    munmap(m, sizeof *m);
    return med;
}

/* ---------------------------------------------------------------- memcpy */

/* Best single-thread memcpy bandwidth in GB/s over pre-faulted buffers,
 * passes until `end` (at least FL_MEMCPY_MIN_PASSES); NaN without memory. */
static double fl_memcpy_gbps(double end)
{
    size_t n = FL_MEMCPY_BYTES;
    char *a = MAP_FAILED, *b = MAP_FAILED;
    for (; n >= FL_MEMCPY_MIN_BYTES; n /= 2) { /* a smaller copy if memory is short */
        a = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        b = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (a != MAP_FAILED && b != MAP_FAILED) break;
        if (a != MAP_FAILED) munmap(a, n);
        if (b != MAP_FAILED) munmap(b, n);
        a = b = MAP_FAILED;
    }
    if (a == MAP_FAILED) return NAN;
    /* Huge pages where the kernel allows (best effort): faulting 512 MiB in
     * 4 KiB pages takes 0.5-0.9 s on this VM, and with 4 KiB pages the
     * nested (guest + EPT) TLB walks make the passes slower and noisier:
     * 6.5-11.8 GB/s against a steady 11.5-13.5 GB/s. */
    madvise(a, n, MADV_HUGEPAGE);
    madvise(b, n, MADV_HUGEPAGE);
    memset(a, 1, n); /* fault every page in, so passes time copying only */
    memset(b, 2, n);
    __asm__ volatile("" : : "r"(a), "r"(b) : "memory"); /* else memset(b) is dead code */
    double best = 0;
    for (int pass = 0; pass < FL_MEMCPY_MAX_PASSES; pass++) {
        if (pass >= FL_MEMCPY_MIN_PASSES && fl_now() > end) break;
        double t0 = fl_now();
        memcpy(b, a, n);
        __asm__ volatile("" : : "r"(b) : "memory"); /* the copy must happen */
        double dt = fl_now() - t0;
        if (dt > 0 && (double)n / dt / 1e9 > best) best = (double)n / dt / 1e9;
    }
    munmap(a, n);
    munmap(b, n);
    return best;
}

/* ---------------------------------------------------------------- public */

int mt_floor_measure(mt_floor *f, double seconds_budget)
{
    double budget = seconds_budget > 0 ? seconds_budget : FL_DEFAULT_BUDGET_S; /* NaN too */
    if (budget > FL_MAX_BUDGET_S) budget = FL_MAX_BUDGET_S;
    double end = fl_now() + budget;
    *f = (mt_floor){NAN, NAN, NAN, NAN, NAN, NAN, 0};

    cpu_set_t saved;
    int cpus[2], ncpu = 0;
    if (sched_getaffinity(0, sizeof saved, &saved) == 0) {
        f->ncpus = CPU_COUNT(&saved);
        ncpu = fl_pick_cpus(&saved, cpus, 2);
    } else {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        f->ncpus = n > 0 ? (int)n : 1; /* and no pinning: we could not restore it */
    }

    /* Shares of the budget; memcpy gets what is left, ~40%: pre-faulting its
     * 512 MiB alone takes 0.15 s here (1 s on the first run after boot).
     * Latencies first: forking is cheaper before the big buffers exist. */
    f->syscall_us = fl_measure(fl_syscall_rt, NULL, FL_BATCH_SYSCALL, budget * 0.05);
    if (ncpu >= 1) f->sock_rtt_same_us = fl_sock_rtt(cpus[0], cpus[0], budget * 0.15);
    if (ncpu >= 2) {
        f->sock_rtt_cross_us = fl_sock_rtt(cpus[0], cpus[1], budget * 0.15);
        f->shm_spin_rtt_us = fl_shm_rtt(cpus[0], cpus[1], 0, budget * 0.1);
        f->futex_rtt_cross_us = fl_shm_rtt(cpus[0], cpus[1], 1, budget * 0.15);
    }
    if (ncpu >= 1) sched_setaffinity(0, sizeof saved, &saved);
    f->memcpy_gbps = fl_memcpy_gbps(end);
    return 0;
}

static void fl_print_row(FILE *out, const char *metric, double v, int decimals, const char *unit)
{
    if (isnan(v))
        fprintf(out, "%-30s | %10s | %s\n", metric, "n/a", unit);
    else
        fprintf(out, "%-30s | %10.*f | %s\n", metric, decimals, v, unit);
}

void mt_floor_print(const mt_floor *f, FILE *out)
{
    fprintf(out, "%-30s | %10s | %s\n", "metric", "value", "unit");
    fprintf(out, "-------------------------------+------------+-----\n");
    fl_print_row(out, "unix socket rtt, cross-core", f->sock_rtt_cross_us, 2, "us");
    fl_print_row(out, "unix socket rtt, same core", f->sock_rtt_same_us, 2, "us");
    fl_print_row(out, "syscall (getppid)", f->syscall_us, 3, "us");
    fl_print_row(out, "shm spin rtt, cross-core", f->shm_spin_rtt_us, 3, "us");
    fl_print_row(out, "futex rtt, cross-core", f->futex_rtt_cross_us, 2, "us");
    fl_print_row(out, "memcpy bandwidth, 1 thread", f->memcpy_gbps, 2, "GB/s");
    fl_print_row(out, "cpus", (double)f->ncpus, 0, "");
}

/* Appends `"key":value,` (null for NaN) at buf+*len; -1 if it does not fit. */
static int fl_json_field(char *buf, size_t cap, size_t *len, const char *key, double v)
{
    int r = isnan(v) ? snprintf(buf + *len, cap - *len, "\"%s\":null,", key)
                     : snprintf(buf + *len, cap - *len, "\"%s\":%.4f,", key, v);
    if (r < 0 || (size_t)r >= cap - *len) return -1;
    *len += (size_t)r;
    return 0;
}

int mt_floor_json(const mt_floor *f, char *buf, size_t cap)
{
    size_t len = 1;
    if (cap < 2) goto too_small;
    buf[0] = '{';
    if (fl_json_field(buf, cap, &len, "sock_rtt_cross_us", f->sock_rtt_cross_us) ||
        fl_json_field(buf, cap, &len, "sock_rtt_same_us", f->sock_rtt_same_us) ||
        fl_json_field(buf, cap, &len, "syscall_us", f->syscall_us) ||
        fl_json_field(buf, cap, &len, "shm_spin_rtt_us", f->shm_spin_rtt_us) ||
        fl_json_field(buf, cap, &len, "futex_rtt_cross_us", f->futex_rtt_cross_us) ||
        fl_json_field(buf, cap, &len, "memcpy_gbps", f->memcpy_gbps))
        goto too_small;
    int r = snprintf(buf + len, cap - len, "\"ncpus\":%d}", f->ncpus);
    if (r < 0 || (size_t)r >= cap - len) goto too_small;
    return (int)(len + (size_t)r);
too_small:
    if (cap > 0) buf[0] = '\0';
    return -1;
}
