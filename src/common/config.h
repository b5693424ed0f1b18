/* config.h -- every tunable of manta in one table.
 *
 * MT_CONFIG(type, name, default, doc): each entry becomes the global
 * mt_cfg.name, overridable by the environment variable MANTA_<NAME in upper
 * case> (e.g. MANTA_MAX_INLINE_BYTES=4096).  Call mt_config_load() once per
 * process before reading it.  Types: i64 (integer) or f64 (double). */
#ifndef MT_CONFIG_H
#define MT_CONFIG_H

#include <stdint.h>

#define MT_CONFIG_TABLE(X)                                                                         \
    X(i64, max_inline_bytes, 100 * 1024,                                                           \
      "values up to this size travel inside messages; larger ones go to shared memory")           \
    X(i64, max_inline_task_bytes, 10 * 1024 * 1024,                                                \
      "in-line bytes of one task's arguments, or of its returns (at most max_frame_bytes / 2); "   \
      "the values past it go to shared memory")                                                    \
    X(i64, max_frame_bytes, 512 * 1024 * 1024,                                                     \
      "largest frame a peer may send (at most 4 GiB - 1; 0 or less: the default)")                \
    X(i64, hello_frame_bytes, 64 * 1024, "largest frame an accepted peer may send before its Hello") \
    X(i64, hello_timeout_ms, 5000, "an accepted peer that has sent no valid Hello by then is closed") \
    X(i64, max_hello_conns, 64,                                                                    \
      "peers one listener lets wait for their Hello (at least 1); it stops accepting meanwhile")   \
    X(i64, max_reply_backlog_bytes, 64 * 1024 * 1024,                                               \
      "an accepted peer whose unread replies pass this is not read from until they drain")         \
    X(i64, max_tasks_in_flight, 64, "tasks pushed to one leased worker before it replies")         \
    X(i64, pipeline_us, 2000, "work (by its tasks' mean run time) queued at one leased worker")    \
    X(i64, stall_ms, 10, "a leased worker silent this long hands back the tasks it has not started") \
    X(i64, max_pending_leases, 10, "lease requests one scheduling class keeps outstanding")        \
    X(i64, idle_lease_ms, 500, "an idle leased worker is returned to its node after this long")    \
    X(i64, worker_start_timeout_ms, 30000, "a worker that has not registered by then is killed")   \
    X(i64, max_workers_factor, 4, "a node runs at most num_cpus * this many workers (min 16)")     \
    X(i64, max_blocked_workers, -1,                                                                \
      "workers blocked in get()/wait() a node runs beyond that cap, at most its memory / 20 MB "  \
      "(an idle worker); -1: that bound")                                                         \
    X(i64, prestart_workers, -1, "python workers started with the node; -1: num_cpus")             \
    X(i64, node_timeout_ms, 10000, "a node silent this long is declared dead")                     \
    X(i64, report_ms, 100, "how often a node reports its resources to the head (its heartbeat)")   \
    X(i64, connect_timeout_ms, 5000, "a connection to another node not made by then fails")    \
    X(i64, transfer_chunk_bytes, 8 << 20, "objects move between nodes in chunks of this size")      \
    X(i64, transfer_window, 4, "chunk requests of one transfer in flight")                          \
    X(i64, max_starting_workers, 0, "workers starting at once; 0: max(num_cpus, 2)")               \
    X(i64, zygote, 1, "fork python workers from a process that imported manta once (0: spawn each)") \
    X(i64, store_full_wait_ms, 2000, "a put waits this long for room (Ray's oom_grace_period_s)") \
    X(i64, fn_wait_ms, 30000, "how long a worker waits for a function to be registered")          \
    X(i64, spin_us, 100, "how long a waiting thread polls before it sleeps")                       \
    X(i64, spin_yield, 1, "yield the core between polls while spinning (1) or not (0)")            \
    X(i64, loop_handoff_us, 2000,                                                                  \
      "a user thread that left the event loop gets it back without a hand-off this long")       \
    X(i64, default_max_retries, 3, "retries of a task whose worker died")                          \
    X(f64, memory_usage_threshold, 0.95, "fraction of memory above which workers are killed")      \
    X(i64, memory_monitor_ms, 250, "how often memory use is checked; 0 disables")                  \
    X(i64, log_level, 1, "0 debug, 1 info, 2 warn, 3 error")

typedef struct mt_config {
#define MT_CFG_FIELD_(type, name, def, doc) type##_t_ name;
#define i64_t_ int64_t
#define f64_t_ double
    MT_CONFIG_TABLE(MT_CFG_FIELD_)
#undef MT_CFG_FIELD_
} mt_config;

extern mt_config mt_cfg;

/* max_frame_bytes as every sender and receiver uses it: the default when
 * not positive, and no more than a frame's 32-bit length can say. */
static inline uint64_t mt_cfg_max_frame(void)
{
    if (mt_cfg.max_frame_bytes <= 0) return 512u << 20;
    return (uint64_t)mt_cfg.max_frame_bytes < UINT32_MAX ? (uint64_t)mt_cfg.max_frame_bytes
                                                         : UINT32_MAX;
}

/* max_inline_task_bytes, kept to half a frame so that a task's message or
 * reply always fits in one with room for the rest of it. */
static inline uint64_t mt_cfg_inline_task_bytes(void)
{
    uint64_t frame = mt_cfg_max_frame();
    uint64_t want = mt_cfg.max_inline_task_bytes > 0 ? (uint64_t)mt_cfg.max_inline_task_bytes : 0;
    return want < frame / 2 ? want : frame / 2;
}

/* Set every field to its default, then apply MANTA_* environment overrides.
 * A malformed override is reported on stderr and ignored. */
void mt_config_load(void);
/* Print the table with current values (for `manta config` and docs). */
void mt_config_dump(int fd);

#endif
