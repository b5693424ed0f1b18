/* counter.c -- the seeds' Counter actor and use_actor task in C:
 *
 *   c = Counter.remote()
 *   ref4 = c.inc.remote(); ref5 = c.inc.remote()
 *   ray.get([ref4, ref5])            -> [1, 2]
 *   use_actor.remote(c)              -> a task calls c.inc.remote() itself
 *
 * Workers run this same program; registrations come before manta_init(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manta.h"

typedef struct counter {
    long value;
} counter;

static void *counter_new(const manta_arg_view *args, size_t nargs, char *err, size_t cap)
{
    (void)args, (void)nargs, (void)err, (void)cap;
    return calloc(1, sizeof(counter));
}

static int counter_inc(void *self, const manta_arg_view *args, size_t nargs, manta_result *res)
{
    (void)args, (void)nargs;
    counter *c = self;
    c->value++;
    return manta_result_set(res, 0, &c->value, sizeof c->value);
}

/* A task that receives the actor's handle and calls it. */
static int use_actor(const manta_arg_view *args, size_t nargs, manta_result *res)
{
    manta_actor *c;
    if (nargs != 1 || manta_actor_from_arg(&args[0], &c))
        return manta_result_error(res, "use_actor takes an actor handle");
    manta_ref *r;
    manta_value *v;
    int rc = manta_actor_call(c, "inc", NULL, 0, 1, &r);
    if (!rc) rc = manta_get(r, 30, &v);
    if (rc) return manta_result_error(res, "calling the actor failed: %s", manta_strerror(rc));
    manta_result_set(res, 0, manta_value_data(v), manta_value_size(v));
    manta_value_release(v);
    manta_ref_release(r);
    manta_actor_release(c);
    return 0;
}

static long get_long(manta_ref *r)
{
    manta_value *v;
    int rc = manta_get(r, 30, &v);
    if (rc) {
        fprintf(stderr, "get: %s (%s)\n", manta_strerror(rc), manta_last_error());
        exit(1);
    }
    long x;
    memcpy(&x, manta_value_data(v), sizeof x);
    manta_value_release(v);
    return x;
}

int main(void)
{
    manta_register_actor("Counter", counter_new);
    manta_register_method("Counter", "inc", counter_inc);
    manta_register("use_actor", use_actor);
    if (manta_init(NULL)) {
        fprintf(stderr, "init: %s\n", manta_last_error());
        return 1;
    }
    manta_actor *c;
    if (manta_actor_create("Counter", NULL, 0, NULL, &c)) {
        fprintf(stderr, "create: %s\n", manta_last_error());
        return 1;
    }
    manta_ref *ref4, *ref5, *ref6;
    manta_actor_call(c, "inc", NULL, 0, 1, &ref4);
    manta_actor_call(c, "inc", NULL, 0, 1, &ref5);
    long a = get_long(ref4), b = get_long(ref5);
    manta_arg h = manta_arg_actor(c);
    manta_submit("use_actor", &h, 1, NULL, &ref6);
    long d = get_long(ref6);
    printf("[%ld, %ld], then use_actor saw %ld\n", a, b, d);
    int bad = !(a == 1 && b == 2 && d == 3);
    manta_ref_release(ref4);
    manta_ref_release(ref5);
    manta_ref_release(ref6);
    manta_actor_release(c);
    manta_shutdown();
    return bad;
}
