/* capi_lib.c -- C task functions in a shared library, for library mode:
 * workers (manta-worker) find them by name with dlsym(). */
#include <string.h>

#include "manta.h"

MANTA_EXPORT int lib_reverse(const manta_arg_view *args, size_t nargs, manta_result *res)
{
    if (nargs != 1) return manta_result_error(res, "lib_reverse takes one argument");
    char *out = manta_result_alloc(res, 0, args[0].size);
    const char *in = args[0].data;
    for (size_t i = 0; i < args[0].size; i++) out[i] = in[args[0].size - 1 - i];
    return 0;
}
