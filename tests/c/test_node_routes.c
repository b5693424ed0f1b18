/* test_node_routes.c -- unit test of the node daemon's dispatch table
 * (src/node/node.c): which messages a client may send after its Hello, by
 * the role it said Hello as.  The expected lists are written out here, role
 * by role, so a change to the table has to change them too. */
#include <check.h>
#include <stdlib.h>

#include "mt.h"
#include "node.h"
#include "wire.h"

#define T(t) MANTA__MSG_TYPE__MSG_##t

/* A driver or a worker of this node: the store, leases, the control store
 * (on the head), status, and a shutdown (obeyed from its owner only). */
static const uint16_t procs[] = {
    T(LEASE_REQUEST), T(LEASE_CANCEL),   T(LEASE_RETURN),   T(WORKER_BLOCKED), T(WORKER_UNBLOCKED),
    T(OBJ_CREATE),    T(OBJ_SEAL),       T(OBJ_ABORT),      T(OBJ_GET),        T(OBJ_RELEASE),
    T(OBJ_FREE),      T(STATUS_REQUEST), T(SHUTDOWN),       T(FN_REGISTER),    T(FN_GET),
    T(KV_PUT),        T(KV_GET),         T(ACTOR_REGISTER), T(ACTOR_UPDATE),   T(ACTOR_LOOKUP),
    T(ACTOR_KILL),
};
static const uint16_t lessee[] = {T(LEASE_REQUEST), T(LEASE_CANCEL), T(LEASE_RETURN),
                                  T(STATUS_REQUEST)};
static const uint16_t cli[] = {T(STATUS_REQUEST), T(SHUTDOWN)};
static const uint16_t node[] = {T(RESOURCE_REPORT), T(EVENT)};
static const uint16_t node_peer[] = {T(OBJ_PULL), T(OBJ_FREE)};
static const uint16_t gcs_client[] = {T(FN_REGISTER),  T(FN_GET),         T(KV_PUT),
                                      T(KV_GET),       T(ACTOR_REGISTER), T(ACTOR_UPDATE),
                                      T(ACTOR_LOOKUP), T(ACTOR_KILL)};

typedef struct role_list {
    int role;
    const uint16_t *types;
    size_t n;
} role_list;

#define LIST(r, a) {MANTA__ROLE__ROLE_##r, a, MT_ARRAY_LEN(a)}

static const role_list lists[] = {
    LIST(DRIVER, procs),
    LIST(WORKER, procs),
    LIST(LESSEE, lessee),
    LIST(CLI, cli),
    LIST(NODE, node),
    LIST(NODE_PEER, node_peer),
    LIST(GCS_CLIENT, gcs_client),
    {MANTA__ROLE__ROLE_NONE, NULL, 0}, /* before Hello: nothing */
    {MANTA__ROLE__ROLE_PEER, NULL, 0}, /* a direct-call peer: never the daemon's client */
};

static bool listed(const role_list *l, uint16_t type)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->types[i] == type) return true;
    return false;
}

/* Every type of the wire and past it, for every role: exactly its list. */
START_TEST(test_each_role_sends_its_list)
{
    for (size_t r = 0; r < MT_ARRAY_LEN(lists); r++) {
        const role_list *l = &lists[r];
        for (uint32_t type = 0; type <= UINT16_MAX; type++) {
            bool want = listed(l, (uint16_t)type);
            if (mt_node_may_send(l->role, (uint16_t)type) != want)
                ck_abort_msg("role %d, %s (%u): want %s", l->role, mt_wire_name((uint16_t)type),
                             type, want ? "allowed" : "refused");
        }
    }
}
END_TEST

/* A Hello is handled before the table, and a second one closes the
 * connection: no role may send it, nor its reply or any reply of ours. */
START_TEST(test_hello_and_replies_are_never_routed)
{
    static const uint16_t never[] = {
        T(HELLO),        T(HELLO_REPLY),  T(LEASE_GRANT),  T(OBJ_CREATE_REPLY), T(OBJ_GET_REPLY),
        T(STATUS_REPLY), T(KV_GET_REPLY), T(FN_GET_REPLY), T(CLUSTER_VIEW),     T(KILL_WORKER),
        T(OBJ_CHUNK),    T(PUSH_TASK),    T(WARNING),      T(LOG_LINES)};
    for (int role = 0; role <= MANTA__ROLE__ROLE_NODE_PEER; role++)
        for (size_t i = 0; i < MT_ARRAY_LEN(never); i++)
            ck_assert_msg(!mt_node_may_send(role, never[i]), "role %d may send %s", role,
                          mt_wire_name(never[i]));
}
END_TEST

/* A role from the wire that no Hello accepts, or out of a mask's range,
 * sends nothing (and the lookup does not shift out of range). */
START_TEST(test_unknown_roles_send_nothing)
{
    static const int roles[] = {-1, 9, 31, 32, 33, 64, 1000, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < MT_ARRAY_LEN(roles); i++)
        for (uint32_t type = 0; type <= UINT16_MAX; type++)
            if (mt_node_may_send(roles[i], (uint16_t)type))
                ck_abort_msg("role %d may send %u", roles[i], type);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("node_routes");
    TCase *tc = tcase_create("roles");
    tcase_add_test(tc, test_each_role_sends_its_list);
    tcase_add_test(tc, test_hello_and_replies_are_never_routed);
    tcase_add_test(tc, test_unknown_roles_send_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
