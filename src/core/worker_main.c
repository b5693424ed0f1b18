/* worker_main.c -- manta-worker: the generic C worker.  It loads the shared
 * library a C driver named in manta_config.library and serves tasks by
 * looking each function up by name in it. */
#include <stdio.h>
#include <string.h>

#include "manta.h"

int main(int argc, char **argv)
{
    manta_config cfg;
    manta_config_init(&cfg);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--library") && i + 1 < argc) cfg.library = argv[++i];
    }
    if (!cfg.library) {
        fprintf(stderr, "usage: manta-worker --library PATH (started by the node daemon)\n");
        return 2;
    }
    int rc = manta_init(&cfg); /* serves tasks and exits in a worker */
    fprintf(stderr, "manta-worker: %s: %s\n", manta_strerror(rc), manta_last_error());
    return 1;
}
