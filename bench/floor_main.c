/* floor_main.c -- manta-floor: measure and print this machine's floor (see
 * floor.h), as a table or, with --json, as one JSON object. */
#include "floor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: manta-floor [--json] [--budget SECONDS]\n"
                 "  Measure socket, syscall, futex and shared-memory round trips and memcpy\n"
                 "  bandwidth in about SECONDS of wall time (default 2).\n");
}

int main(int argc, char **argv)
{
    int json = 0;
    double budget = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--budget") == 0 && i + 1 < argc) {
            char *end;
            budget = strtod(argv[++i], &end);
            if (*end != '\0' || !(budget > 0)) {
                fprintf(stderr, "manta-floor: bad --budget '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    mt_floor f;
    mt_floor_measure(&f, budget);
    if (json) {
        char buf[512];
        if (mt_floor_json(&f, buf, sizeof buf) < 0) return 1;
        printf("%s\n", buf);
    } else {
        mt_floor_print(&f, stdout);
    }
    return 0;
}
