/* config.c -- loads the tunables table from defaults and the environment. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

mt_config mt_cfg;

static void env_name(const char *field, char *out, size_t cap)
{
    size_t n = snprintf(out, cap, "MANTA_");
    for (const char *p = field; *p && n + 1 < cap; p++) out[n++] = (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

static void load_i64(const char *field, int64_t *dst)
{
    char name[96];
    env_name(field, name, sizeof name);
    const char *v = getenv(name);
    if (!v || !*v) return;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < -1) {
        fprintf(stderr, "manta: ignoring %s=%s: not an integer >= -1\n", name, v);
        return;
    }
    *dst = x;
}

static void load_f64(const char *field, double *dst)
{
    char name[96];
    env_name(field, name, sizeof name);
    const char *v = getenv(name);
    if (!v || !*v) return;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || !isfinite(x) || x < 0) {
        fprintf(stderr, "manta: ignoring %s=%s: not a finite number >= 0\n", name, v);
        return;
    }
    *dst = x;
}

void mt_config_load(void)
{
#define MT_CFG_LOAD_(type, name, def, doc)                                                         \
    mt_cfg.name = (def);                                                                           \
    load_##type(#name, &mt_cfg.name);
    MT_CONFIG_TABLE(MT_CFG_LOAD_)
#undef MT_CFG_LOAD_
}

void mt_config_dump(int fd)
{
    char line[512];
    int n;
#define MT_CFG_DUMP_(type, name, def, doc)                                                         \
    n = snprintf(line, sizeof line, "%-28s %-14g %s\n", #name, (double)mt_cfg.name, doc);         \
    if (n > 0 && write(fd, line, (size_t)n) < 0) return;
    MT_CONFIG_TABLE(MT_CFG_DUMP_)
#undef MT_CFG_DUMP_
}
