/* floor.h -- the machine's floor: what the hardware and kernel cost for the
 * primitives manta is built on (a Unix-socket round trip, a system call, a
 * futex wake-up, a cache line bouncing between cores, memcpy bandwidth),
 * measured in the same run as a benchmark so its results can be stated as
 * multiples of the floor rather than as absolute numbers.
 *
 * Standalone: depends on libc only, so any benchmark can link `mt_floor`. */
#ifndef MT_FLOOR_H
#define MT_FLOOR_H

#include <stddef.h>
#include <stdio.h>

/* All latencies are round trips in microseconds: the time is split into
 * windows, each gives the median of its (hundreds or more) round trips, and
 * the figure is the lowest of those medians, so an episode of host
 * interference does not become the floor.  A figure that could not be
 * measured (e.g. cross-core ones when we may use a single CPU) is NaN. */
typedef struct mt_floor {
    double sock_rtt_cross_us;  /* 8-byte ping-pong, socketpair(AF_UNIX, SOCK_STREAM), 2 cores */
    double sock_rtt_same_us;   /* the same, both processes pinned to one core */
    double syscall_us;         /* one syscall(SYS_getppid) (not a round trip) */
    double shm_spin_rtt_us;    /* atomic counter in shared memory, spinning, 2 cores */
    double futex_rtt_cross_us; /* the same counter, FUTEX_WAIT/FUTEX_WAKE, 2 cores */
    double memcpy_gbps;        /* 1-thread memcpy of 256 MiB (huge pages), best pass, 1e9 B/s */
    int ncpus;                 /* CPUs this process may run on */
} mt_floor;

/* Measure every figure of `f` in roughly `seconds_budget` of wall time
 * (<= 0 means the default, 2 s; at most 60 s).  Forks short-lived child
 * processes, which are always reaped before it returns, and pins itself to
 * single CPUs while measuring; the caller's CPU affinity is restored on
 * return.  Call it from a process that is otherwise idle.  Returns 0
 * (figures it could not measure are NaN). */
int mt_floor_measure(mt_floor *f, double seconds_budget);

/* Print `f` as a table "metric | value | unit" to `out`. */
void mt_floor_print(const mt_floor *f, FILE *out);

/* Write `f` as one JSON object (keys are the field names, NaN is null) into
 * the caller's `buf` of `cap` bytes, NUL-terminated.  Returns the length
 * written (without the NUL), or -1 if `cap` is too small (buf is then ""). */
int mt_floor_json(const mt_floor *f, char *buf, size_t cap);

#endif /* MT_FLOOR_H */
