/* router.h -- the top of the client runtime (router.c): connecting with the
 * router's hooks.  The C API and the Python extension include this header,
 * which brings every module's. */
#ifndef MT_ROUTER_H
#define MT_ROUTER_H

#include "exec.h"

/* Connect to the node: mt_loop_open with the router's hooks. */
int mt_core_connect(const mt_core_opts *o, mt_core **out);

#endif
