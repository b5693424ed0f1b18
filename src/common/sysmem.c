/* sysmem.c -- the memory a node may use, read from /proc/meminfo and the
 * cgroup limits (v1 and v2) of this process, as Ray's get_system_memory
 * and estimate_available_memory do (see sysmem.h). */
#include "sysmem.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t meminfo(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (!f) return 0;
    char line[256];
    int64_t kb = 0;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') kb = atoll(line + kl + 1);
    fclose(f);
    return kb * 1024;
}

/* A number file of the cgroup fs; -1 if missing or "max" (no limit). */
static int64_t read_num(const char *dir, const char *name)
{
    char path[4400], buf[64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    char *got = fgets(buf, sizeof buf, f);
    fclose(f);
    if (!got || !strncmp(buf, "max", 3)) return -1;
    char *end;
    long long v = strtoll(buf, &end, 10);
    return end == buf || v < 0 ? -1 : (int64_t)v;
}

/* `key` of a cgroup's memory.stat; 0 if absent. */
static int64_t read_stat(const char *dir, const char *key)
{
    char path[4400], line[256];
    snprintf(path, sizeof path, "%s/memory.stat", dir);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    int64_t v = 0;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ' ') v = atoll(line + kl + 1);
    fclose(f);
    return v;
}

/* The tightest memory limit on this process: the cgroup directory that
 * sets it (its usage is what counts against it) and the limit. */
typedef struct cg_limit {
    char dir[4400];
    int64_t limit;
    bool v2;
} cg_limit;

/* Look at `rel` and each of its ancestors under `base` for `file`. */
static void walk(const char *base, const char *rel, const char *file, bool v2, cg_limit *best)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", rel);
    for (;;) {
        char dir[4400];
        snprintf(dir, sizeof dir, "%s%s", base, strcmp(path, "/") ? path : "");
        int64_t v = read_num(dir, file);
        if (v >= 0 && (best->limit < 0 || v < best->limit)) {
            best->limit = v;
            best->v2 = v2;
            snprintf(best->dir, sizeof best->dir, "%s", dir);
        }
        char *slash = strrchr(path, '/');
        if (!slash || !strcmp(path, "/")) break;
        if (slash == path) slash[1] = '\0'; /* up to "/" */
        else *slash = '\0';
    }
}

static void cgroup_limit(cg_limit *best)
{
    best->limit = -1;
    const char *root = getenv("MANTA_CGROUP_ROOT");
    if (!root || !root[0]) root = "/sys/fs/cgroup";
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        /* "<id>:<controllers>:<path>": v2 is "0::<path>". */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/') continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *rel = c2 + 1;
        char base[4200];
        if (!ctrls[0]) {
            walk(root, rel, "memory.max", true, best);
            continue;
        }
        for (const char *p = ctrls; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
            if (strncmp(p, "memory", 6) || (p[6] && p[6] != ',')) continue;
            snprintf(base, sizeof base, "%s/memory", root);
            walk(base, rel, "memory.limit_in_bytes", false, best);
        }
    }
    fclose(f);
}

int64_t mt_mem_total(void)
{
    int64_t total = meminfo("MemTotal");
    cg_limit cg;
    cgroup_limit(&cg);
    if (cg.limit > 0 && (total <= 0 || cg.limit < total)) return cg.limit;
    return total;
}

int64_t mt_mem_available(void)
{
    int64_t total = meminfo("MemTotal");
    cg_limit cg;
    cgroup_limit(&cg);
    if (cg.limit <= 0 || (total > 0 && cg.limit >= total)) return meminfo("MemAvailable");
    int64_t used = read_num(cg.dir, cg.v2 ? "memory.current" : "memory.usage_in_bytes");
    if (used < 0) used = 0;
    /* Page cache the kernel can drop is not in use (Ray counts it so too). */
    used -= read_stat(cg.dir, cg.v2 ? "inactive_file" : "total_inactive_file");
    if (used < 0) used = 0;
    return used >= cg.limit ? 0 : cg.limit - used;
}

int64_t mt_mem_default_store(void)
{
    int64_t store = (int64_t)((double)mt_mem_available() * MT_STORE_DEFAULT_SHARE);
    if (store > MT_STORE_MAX_DEFAULT_BYTES) store = MT_STORE_MAX_DEFAULT_BYTES;
    if (store < MT_STORE_MIN_BYTES) store = MT_STORE_MIN_BYTES;
    return store;
}
