/* sysmem.h -- how much memory this machine (or the container it runs in)
 * gives us, and the object store size that follows from it: Ray's rules,
 * in one place for the daemon, the C API and Python (through _manta). */
#ifndef MT_SYSMEM_H
#define MT_SYSMEM_H

#include <stdint.h>

/* The smallest store a node accepts (Ray's OBJECT_STORE_MINIMUM_MEMORY_BYTES). */
#define MT_STORE_MIN_BYTES (75ll * 1024 * 1024)
/* The largest default store (Ray's DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES). */
#define MT_STORE_MAX_DEFAULT_BYTES (200ll * 1000 * 1000 * 1000)
/* The share of available memory the default store takes (Ray's 0.3). */
#define MT_STORE_DEFAULT_SHARE 0.3

/* The memory this process may use, in bytes: the machine's (MemTotal), or
 * the memory limit of its cgroup if lower (v2 memory.max, v1
 * memory.limit_in_bytes, of its cgroup or any ancestor).  The cgroup file
 * system is read at $MANTA_CGROUP_ROOT if set (tests), else /sys/fs/cgroup.
 * 0 if unknown. */
int64_t mt_mem_total(void);

/* The part of mt_mem_total() not in use: under a cgroup limit, the limit
 * minus the cgroup's usage (less its inactive file cache); otherwise
 * MemAvailable. */
int64_t mt_mem_available(void);

/* The default object store size: 30% of the available memory, at most
 * 200 GB and at least MT_STORE_MIN_BYTES. */
int64_t mt_mem_default_store(void);

#endif
