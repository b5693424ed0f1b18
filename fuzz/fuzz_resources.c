/* fuzz_resources.c -- the resources JSON reader (mt_res_parse_json_n): it
 * reads what users and peers send ("resources" of tasks, actors and nodes).
 * Accepted sets must print as JSON that parses back to an equal set; any
 * input is answered with 0 or MANTA_EINVAL and a message. */
#include "fuzz.h"
#include "resources.h"

FUZZ_EXPORT int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_res_set s;
    mt_res_init(&s);
    mt_res_put(&s, "sentinel", 7); /* left alone on error */
    char err[256];
    memset(err, 0x55, sizeof err);
    int rc = mt_res_parse_json_n((const char *)data, size, &s, err, sizeof err);
    if (rc) {
        FUZZ_CHECK(rc == MANTA_EINVAL);
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL && err[0] != '\0');
        FUZZ_CHECK(s.n == 1 && mt_res_get(&s, "sentinel") == 7);
    } else {
        FUZZ_CHECK(s.n <= MT_RES_JSON_MAX_ENTRIES);
        for (uint32_t i = 0; i < s.n; i++) {
            FUZZ_CHECK(s.v[i].amount != 0);
            FUZZ_CHECK(mt_res_check(s.v[i].name, s.v[i].amount, err, sizeof err) == 0);
            if (i) FUZZ_CHECK(strcmp(s.v[i - 1].name, s.v[i].name) < 0);
        }
        char *json = mt_res_to_json(&s);
        mt_res_set back;
        mt_res_init(&back);
        int rc2 = mt_res_parse_json(json, &back, err, sizeof err);
        if (rc2) fprintf(stderr, "printed set does not parse: %s: %s\n", json, err);
        FUZZ_CHECK(rc2 == 0);
        FUZZ_CHECK(mt_res_equal(&s, &back));
        FUZZ_CHECK(mt_res_hash(&s) == mt_res_hash(&back));
        char *k1 = mt_res_key(&s), *k2 = mt_res_key(&back);
        FUZZ_CHECK(strcmp(k1, k2) == 0);
        free(k1);
        free(k2);
        free(json);
        mt_res_free(&back);
    }
    /* Without a NUL inside, the NUL-terminated entry point agrees. */
    if (!memchr(data, '\0', size)) {
        char *z = mt_strndup((const char *)data, size);
        mt_res_set t;
        mt_res_init(&t);
        int rc3 = mt_res_parse_json(z, &t, err, sizeof err);
        FUZZ_CHECK(rc3 == rc);
        if (!rc) FUZZ_CHECK(mt_res_equal(&s, &t));
        mt_res_free(&t);
        free(z);
    }
    mt_res_free(&s);
    return 0;
}
