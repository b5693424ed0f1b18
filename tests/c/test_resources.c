/* test_resources.c -- unit tests of src/sched/resources.c: fixed-point
 * conversion, set arithmetic, keys, the JSON reader and writer (including a
 * seeded random-input loop), and GPU id assignment. */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt.h"
#include "sched/resources.h"

#define U MT_RES_UNIT

static int64_t fx(const char *name, double v)
{
    int64_t out = -777;
    char err[256] = "";
    int rc = mt_res_from_double(name, v, &out, err, sizeof err);
    ck_assert_msg(rc == 0, "%s=%g rejected: %s", name, v, err);
    return out;
}

static void expect_bad_double(const char *name, double v, const char *what)
{
    int64_t out = 777;
    char err[256] = "";
    ck_assert_int_eq(mt_res_from_double(name, v, &out, err, sizeof err), MANTA_EINVAL);
    ck_assert_int_eq(out, 777);
    ck_assert_msg(strstr(err, name) != NULL, "message for %g lacks the name: %s", v, err);
    ck_assert_msg(strstr(err, what) != NULL, "message for %g lacks '%s': %s", v, what, err);
    ck_assert_str_eq(manta_last_error(), err);
}

/* ---------------------------------------------------------------- amounts */

START_TEST(test_fixed_convert)
{
    ck_assert_int_eq(fx("CPU", 1.0), U);
    ck_assert_int_eq(fx("CPU", 0.5), 5000);
    ck_assert_int_eq(fx("CPU", 0.0001), 1);
    ck_assert_int_eq(fx("CPU", 0.00005), 1); /* halves round up */
    ck_assert_int_eq(fx("CPU", 0.33333), 3333);
    ck_assert_int_eq(fx("CPU", 0.66666), 6667);
    ck_assert_int_eq(fx("CPU", 0.0), 0);
    ck_assert_int_eq(fx("CPU", -0.0), 0);
    ck_assert_int_eq(fx("GPU", 2.0), 2 * U);
    ck_assert_int_eq(fx("fpga", 1e9), 1000000000LL * U);
    ck_assert_int_eq(fx("CPU", 0.1 * 30), 3 * U); /* 3.0000000000000004 rounds to 3 */
    ck_assert_int_eq(fx("memory", 17179869184.0), 17179869184LL * U);
    ck_assert_int_eq(fx("object_store_memory", 1e14), 100000000000000LL * U);
    ck_assert(mt_res_to_double(5000) == 0.5);
    ck_assert(mt_res_to_double(-2500) == -0.25);
    ck_assert(mt_res_to_double(3 * U) == 3.0);
}
END_TEST

START_TEST(test_fixed_reject)
{
    expect_bad_double("fpga", NAN, "not a number");
    expect_bad_double("fpga", INFINITY, "infinite");
    expect_bad_double("fpga", -INFINITY, "infinite");
    expect_bad_double("fpga", -1.0, "negative");
    expect_bad_double("fpga", -0.5, "negative");
    expect_bad_double("GPU", 1.5, "whole");
    expect_bad_double("CPU", 2.5, "whole");
    expect_bad_double("CPU", 1.0001, "whole");
    expect_bad_double("fpga", 1e9 + 1, "maximum");
    expect_bad_double("fpga", 1e300, "maximum");
    expect_bad_double("CPU", 0.00004, "granularity");
    expect_bad_double("CPU", 1e-300, "granularity");
    expect_bad_double("memory", 1e15, "maximum");
    expect_bad_double("memory", 1.5, "whole");
    /* A tiny error buffer truncates but stays a string. */
    char small[8];
    int64_t out;
    ck_assert_int_eq(mt_res_from_double("CPU", -1, &out, small, sizeof small), MANTA_EINVAL);
    ck_assert_int_eq(strlen(small), sizeof small - 1);
    ck_assert_int_eq(mt_res_from_double("CPU", -1, &out, NULL, 0), MANTA_EINVAL);
}
END_TEST

START_TEST(test_frac_variants)
{
    /* The same range rules, without the whole-number rule above 1. */
    char err[256];
    int64_t out = 777;
    ck_assert_int_eq(mt_res_from_double_frac("CPU", 2.5, &out, err, sizeof err), 0);
    ck_assert_int_eq(out, 25000);
    ck_assert_int_eq(mt_res_from_double_frac("x", 1e9, &out, err, sizeof err), 0);
    ck_assert_int_eq(out, 1000000000LL * U);
    double bad[] = {NAN, INFINITY, -1.0, 1e9 + 1, 1e15, 0.00004};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out = 777;
        ck_assert_int_eq(mt_res_from_double_frac("x", bad[i], &out, err, sizeof err), MANTA_EINVAL);
        ck_assert_int_eq(out, 777);
        ck_assert_msg(strstr(err, "'x'") != NULL, "%s", err);
    }
    ck_assert_int_eq(mt_res_check_frac("CPU", U + 1, err, sizeof err), 0);
    ck_assert_int_eq(mt_res_check_frac("CPU", -1, err, sizeof err), MANTA_EINVAL);
    ck_assert_int_eq(mt_res_check_frac("x", 1000000000LL * U + 1, err, sizeof err), MANTA_EINVAL);
    ck_assert_int_eq(mt_res_check_frac("x", INT64_MAX, err, sizeof err), MANTA_EINVAL);
    ck_assert_int_eq(mt_res_check_frac("", U, err, sizeof err), MANTA_EINVAL);
    ck_assert_int_eq(mt_res_check_frac(NULL, U, err, sizeof err), MANTA_EINVAL);
}
END_TEST

START_TEST(test_check)
{
    char err[256], name[MT_RES_NAME_MAX + 2];
    ck_assert_int_eq(mt_res_check("CPU", 5000, err, sizeof err), 0);
    ck_assert_int_eq(mt_res_check("CPU", 0, err, sizeof err), 0);
    ck_assert_int_eq(mt_res_check("GPU", 3 * U, err, sizeof err), 0);
    ck_assert_int_eq(mt_res_check("CPU", -1, err, sizeof err), MANTA_EINVAL);
    ck_assert_int_eq(mt_res_check("CPU", U + 1, err, sizeof err), MANTA_EINVAL);
    ck_assert_int_eq(mt_res_check("x", 1000000000LL * U + U, err, sizeof err), MANTA_EINVAL);
    ck_assert_int_eq(mt_res_check("memory", 100000000000000LL * U, err, sizeof err), 0);
    ck_assert_int_eq(mt_res_check("memory", 100000000000000LL * U + U, err, sizeof err),
                     MANTA_EINVAL);
    ck_assert_int_eq(mt_res_check("", 1, err, sizeof err), MANTA_EINVAL);
    ck_assert_int_eq(mt_res_check("a\x01", 1, err, sizeof err), MANTA_EINVAL);
    ck_assert_int_eq(mt_res_check("a\x7f", 1, err, sizeof err), MANTA_EINVAL);
    ck_assert_int_eq(mt_res_check("\xff", 1, err, sizeof err), MANTA_EINVAL);
    ck_assert_int_eq(mt_res_check("\xc3\xa9t\xc3\xa9", 1, err, sizeof err), 0);
    ck_assert_int_eq(mt_res_check_name(NULL, err, sizeof err), MANTA_EINVAL);
    memset(name, 'a', sizeof name);
    name[MT_RES_NAME_MAX] = '\0';
    ck_assert_int_eq(mt_res_check_name(name, err, sizeof err), 0);
    name[MT_RES_NAME_MAX] = 'a';
    name[MT_RES_NAME_MAX + 1] = '\0';
    ck_assert_int_eq(mt_res_check_name(name, err, sizeof err), MANTA_EINVAL);
    ck_assert(strstr(err, "longer") != NULL);
}
END_TEST

/* ---------------------------------------------------------------- sets */

static void assert_canonical(const mt_res_set *s)
{
    for (uint32_t i = 0; i < s->n; i++) {
        ck_assert(s->v[i].amount != 0);
        if (i) ck_assert(strcmp(s->v[i - 1].name, s->v[i].name) < 0);
    }
}

START_TEST(test_set_basic)
{
    mt_res_set s, c;
    mt_res_init(&s);
    mt_res_init(&c);
    ck_assert_int_eq(mt_res_get(&s, "CPU"), 0);
    mt_res_put(&s, "fpga", 2 * U);
    mt_res_put(&s, "CPU", 4 * U);
    mt_res_put(&s, "GPU", U);
    mt_res_put(&s, "accel", 5000);
    mt_res_put(&s, "none", 0); /* zero: not stored */
    ck_assert_int_eq(s.n, 4);
    assert_canonical(&s);
    ck_assert_str_eq(s.v[0].name, "CPU");
    ck_assert_str_eq(s.v[3].name, "fpga");
    ck_assert_int_eq(mt_res_get(&s, "accel"), 5000);
    ck_assert_int_eq(mt_res_get(&s, "none"), 0);
    mt_res_put(&s, "CPU", 3 * U);
    ck_assert_int_eq(mt_res_get(&s, "CPU"), 3 * U);
    mt_res_copy(&c, &s);
    mt_res_put(&s, "GPU", 0); /* removes */
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(mt_res_get(&s, "GPU"), 0);
    ck_assert_int_eq(c.n, 4); /* the copy is deep */
    ck_assert_int_eq(mt_res_get(&c, "GPU"), U);
    mt_res_copy(&c, &c);
    ck_assert_int_eq(c.n, 4);
    mt_res_copy(&c, &s); /* replaces old contents */
    ck_assert(mt_res_equal(&c, &s));
    mt_res_free(&s);
    ck_assert_int_eq(s.n, 0);
    mt_res_put(&s, "x", 1); /* reusable after free */
    ck_assert_int_eq(mt_res_get(&s, "x"), 1);
    mt_res_free(&s);
    mt_res_free(&c);
}
END_TEST

START_TEST(test_add_sub_fits)
{
    mt_res_set avail, d;
    mt_res_init(&avail);
    mt_res_init(&d);
    mt_res_put(&avail, "CPU", 4 * U);
    mt_res_put(&avail, "GPU", U);
    ck_assert(mt_res_fits(&avail, &d)); /* empty demand fits anything */
    mt_res_put(&d, "CPU", U);
    mt_res_put(&d, "GPU", 5000);
    ck_assert(mt_res_fits(&avail, &d));
    mt_res_sub(&avail, &d);
    ck_assert_int_eq(mt_res_get(&avail, "CPU"), 3 * U);
    ck_assert_int_eq(mt_res_get(&avail, "GPU"), 5000);
    mt_res_sub(&avail, &d); /* GPU reaches 0: removed */
    ck_assert_int_eq(avail.n, 1);
    ck_assert(!mt_res_fits(&avail, &d));
    mt_res_free(&d);

    mt_res_put(&d, "fpga", 1); /* absent in avail: does not fit */
    ck_assert(!mt_res_fits(&avail, &d));
    mt_res_put(&d, "fpga", 0); /* a zero demand is no demand */
    ck_assert(mt_res_fits(&avail, &d));
    mt_res_set empty;
    mt_res_init(&empty);
    ck_assert(mt_res_fits(&empty, &d));

    /* Oversubscription: availability may go negative and come back. */
    mt_res_put(&d, "CPU", 2 * U);
    mt_res_sub(&avail, &d);
    ck_assert_int_eq(avail.n, 0);
    mt_res_sub(&avail, &d);
    ck_assert_int_eq(mt_res_get(&avail, "CPU"), -2 * U);
    mt_res_put(&d, "CPU", 1);
    ck_assert(!mt_res_fits(&avail, &d));
    mt_res_put(&d, "CPU", 2 * U);
    mt_res_add(&avail, &d);
    ck_assert_int_eq(avail.n, 0);
    mt_res_put(&d, "new", 7);
    mt_res_add(&avail, &d); /* add brings in new names */
    ck_assert_int_eq(mt_res_get(&avail, "new"), 7);
    assert_canonical(&avail);
    mt_res_free(&avail);
    mt_res_free(&d);
}
END_TEST

START_TEST(test_alias_saturate)
{
    mt_res_set avail, d;
    mt_res_init(&avail);
    mt_res_init(&d);
    mt_res_put(&avail, "new", 7);
    mt_res_put(&avail, "CPU", 2 * U);
    mt_res_add(&avail, &avail);
    ck_assert_int_eq(mt_res_get(&avail, "new"), 14);
    ck_assert_int_eq(mt_res_get(&avail, "CPU"), 4 * U);
    mt_res_sub(&avail, &avail);
    ck_assert_int_eq(avail.n, 0);
    mt_res_put(&avail, "x", INT64_MAX);
    mt_res_put(&avail, "y", INT64_MIN + 1);
    mt_res_free(&d);
    mt_res_put(&d, "x", 5);
    mt_res_put(&d, "y", 5);
    mt_res_add(&avail, &d);
    ck_assert_int_eq(mt_res_get(&avail, "x"), INT64_MAX);
    mt_res_sub(&avail, &d);
    mt_res_sub(&avail, &d);
    ck_assert_int_eq(mt_res_get(&avail, "y"), INT64_MIN);
    mt_res_free(&avail);
    mt_res_free(&d);
}
END_TEST

START_TEST(test_key_hash)
{
    mt_res_set a, b, c, e;
    mt_res_init(&a);
    mt_res_init(&b);
    mt_res_init(&c);
    mt_res_init(&e);
    mt_res_put(&a, "CPU", U);
    mt_res_put(&a, "GPU", 5000);
    mt_res_put(&a, "fpga", 2 * U);
    mt_res_put(&b, "fpga", 2 * U);
    mt_res_put(&b, "tmp", 3);
    mt_res_put(&b, "GPU", 5000);
    mt_res_put(&b, "CPU", U);
    mt_res_put(&b, "tmp", 0);
    ck_assert(mt_res_equal(&a, &b));
    ck_assert_int_eq(mt_res_cmp(&a, &b), 0);
    ck_assert_uint_eq(mt_res_hash(&a), mt_res_hash(&b));
    char *ka = mt_res_key(&a), *kb = mt_res_key(&b);
    ck_assert_str_eq(ka, "CPU=10000,GPU=5000,fpga=20000");
    ck_assert_str_eq(ka, kb);
    free(ka);
    free(kb);

    mt_res_copy(&c, &a);
    mt_res_put(&c, "GPU", 2500);
    ck_assert(!mt_res_equal(&a, &c));
    ck_assert(mt_res_hash(&a) != mt_res_hash(&c));
    ck_assert_int_eq(mt_res_cmp(&a, &c), -mt_res_cmp(&c, &a));
    ck_assert(mt_res_cmp(&a, &c) != 0);
    ck_assert(mt_res_cmp(&e, &a) < 0);
    char *ke = mt_res_key(&e);
    ck_assert_str_eq(ke, "");
    free(ke);

    /* Names with separators cannot make two sets share a key. */
    mt_res_free(&b);
    mt_res_free(&c);
    mt_res_put(&b, "a", 1);
    mt_res_put(&b, "b", 20000);
    mt_res_put(&c, "a=1,b", 20000);
    char *k1 = mt_res_key(&b), *k2 = mt_res_key(&c);
    ck_assert_str_eq(k1, "a=1,b=20000");
    ck_assert_str_eq(k2, "a%3D1%2Cb=20000");
    free(k1);
    free(k2);
    ck_assert(mt_res_hash(&b) != mt_res_hash(&c));
    mt_res_free(&a);
    mt_res_free(&b);
    mt_res_free(&c);
}
END_TEST

/* ---------------------------------------------------------------- JSON */

static void parse_ok(const char *json, mt_res_set *s)
{
    char err[256] = "";
    int rc = mt_res_parse_json(json, s, err, sizeof err);
    ck_assert_msg(rc == 0, "rejected %s: %s", json, err);
    assert_canonical(s);
}

/* Parse `len` bytes that must fail with a message containing `what`; the
 * output set must be left as it was. */
static void bad_n(const char *json, size_t len, const char *what)
{
    mt_res_set s;
    char err[512] = "";
    char *copy = json ? malloc(len ? len : 1) : NULL; /* exact size: ASan sees overreads */
    if (copy) memcpy(copy, json, len);
    mt_res_init(&s);
    mt_res_put(&s, "keep", 7);
    int rc = mt_res_parse_json_n(copy, len, &s, err, sizeof err);
    ck_assert_msg(rc == MANTA_EINVAL, "accepted %.*s", (int)len, json ? json : "");
    ck_assert_msg(strstr(err, what) != NULL, "for %.*s: wanted '%s' in: %s", (int)len,
                  json ? json : "", what, err);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(mt_res_get(&s, "keep"), 7);
    mt_res_free(&s);
    free(copy);
}

static void bad(const char *json, const char *what)
{
    bad_n(json, strlen(json), what);
}

START_TEST(test_json_valid)
{
    mt_res_set s;
    mt_res_init(&s);
    parse_ok("{\"fpga\": 2, \"accel\": 0.5}", &s);
    ck_assert_int_eq(s.n, 2);
    ck_assert_int_eq(mt_res_get(&s, "fpga"), 2 * U);
    ck_assert_int_eq(mt_res_get(&s, "accel"), 5000);

    parse_ok(" \r\n{\n\t\"CPU\" : 1e0 , \"x\":2.5e-1,\"y\":0.00005,\"z\":0, \"w\": 1E+2,"
             " \"v\": -0, \"u\": 0.12345, \"t\": 0.5e1, \"r\": 100e-2, \"q\": 2.00004,"
             " \"p\": 0.0}\t ",
             &s);
    ck_assert_int_eq(s.n, 8); /* zeros dropped, old contents replaced */
    ck_assert_int_eq(mt_res_get(&s, "fpga"), 0);
    ck_assert_int_eq(mt_res_get(&s, "CPU"), U);
    ck_assert_int_eq(mt_res_get(&s, "x"), 2500);
    ck_assert_int_eq(mt_res_get(&s, "y"), 1);
    ck_assert_int_eq(mt_res_get(&s, "w"), 100 * U);
    ck_assert_int_eq(mt_res_get(&s, "u"), 1235); /* exact decimal, half up */
    ck_assert_int_eq(mt_res_get(&s, "t"), 5 * U);
    ck_assert_int_eq(mt_res_get(&s, "r"), U);
    ck_assert_int_eq(mt_res_get(&s, "q"), 2 * U);

    parse_ok("{\"\\u00e9t\\u00E9\": 1, \"a\\\"b\\\\c\\/\": 0.25, \"\\ud83d\\ude00\": 3,"
             " \"\xe6\x97\xa5\": 1, \"memory\": 17179869184, \"big\": 1000000000}",
             &s);
    ck_assert_int_eq(s.n, 6);
    ck_assert_int_eq(mt_res_get(&s, "\xc3\xa9t\xc3\xa9"), U);
    ck_assert_int_eq(mt_res_get(&s, "a\"b\\c/"), 2500);
    ck_assert_int_eq(mt_res_get(&s, "\xf0\x9f\x98\x80"), 3 * U);
    ck_assert_int_eq(mt_res_get(&s, "\xe6\x97\xa5"), U);
    ck_assert_int_eq(mt_res_get(&s, "memory"), 17179869184LL * U);
    ck_assert_int_eq(mt_res_get(&s, "big"), 1000000000LL * U);

    parse_ok("{}", &s);
    ck_assert_int_eq(s.n, 0);
    parse_ok(" { } ", &s);
    ck_assert_int_eq(s.n, 0);

    char err[128];
    const char *tail = "{\"a\":1}XYZ"; /* only the first 7 bytes */
    ck_assert_int_eq(mt_res_parse_json_n(tail, 7, &s, err, sizeof err), 0);
    ck_assert_int_eq(mt_res_get(&s, "a"), U);
    mt_res_free(&s);
}
END_TEST

START_TEST(test_json_errors)
{
    bad("{\"a\": {\"b\": 1}}", "nested object");
    bad("{\"a\": [1]}", "nested array");
    bad("{\"a\": \"1\"}", "string for resource 'a'");
    bad("{\"a\": true}", "expected a number for resource 'a'");
    bad("{\"a\": null}", "expected a number");
    bad("{\"a\": NaN}", "expected a number");
    bad("{\"a\": Infinity}", "expected a number");
    bad("{\"a\": 01}", "expected ',' or '}'");
    bad("{\"a\": 1.}", "no digits after '.'");
    bad("{\"a\": .5}", "expected a number");
    bad("{\"a\": +1}", "expected a number");
    bad("{\"a\": -}", "expected a digit");
    bad("{\"a\": 1e}", "exponent");
    bad("{\"a\": 1e+}", "exponent");
    bad("{\"a\": 0x10}", "expected ',' or '}'");
    bad("{\"a\": -1}", "negative");
    bad("{\"a\": -1e999}", "negative");
    bad("{\"a\": 1.5}", "whole");
    bad("{\"a\": 1e10}", "maximum");
    bad("{\"a\": 1e400}", "maximum");
    bad("{\"a\": 123456789012345678901234567890}", "maximum");
    bad("{\"memory\": 1e15}", "maximum");
    bad("{\"a\": 1e-400}", "granularity");
    bad("{\"a\": 0.00004}", "granularity");
    bad("{\"a\": 1, \"a\": 2}", "duplicate resource 'a'");
    bad("{\"a\": 0, \"a\": 0}", "duplicate");
    bad("{\"a\": 1, \"\\u0061\": 2}", "duplicate");
    bad("{\"\": 1}", "empty resource name");
    bad("{\"a\": 1,}", "expected a resource name");
    bad("{,}", "expected a resource name");
    bad("{a: 1}", "expected a resource name");
    bad("{'a': 1}", "expected a resource name");
    bad("{\"a\" 1}", "expected ':'");
    bad("{\"a\": 1 \"b\": 2}", "expected ',' or '}'");
    bad("{\"a\": 1}}", "after the object");
    bad("{\"a\": 1} x", "after the object");
    bad("{\"a\": 1}{}", "after the object");
    bad("[1]", "expected '{'");
    bad("1", "expected '{'");
    bad("", "end of input");
    bad("   ", "end of input");
    bad("{", "end of input");
    bad("{\"a\":", "end of input");
    bad("{\"a\\u0000b\": 1}", "\\u0000");
    bad("{\"\\ud800\": 1}", "surrogate");
    bad("{\"\\udc00x\": 1}", "surrogate");
    bad("{\"\\ud800\\u0041\": 1}", "surrogate");
    bad("{\"\\ud800\\n\": 1}", "surrogate");
    bad("{\"\\u12\": 1}", "hex");
    bad("{\"\\u12g4\": 1}", "hex");
    bad("{\"\\x\": 1}", "bad escape");
    bad("{\"\\\": 1}", "unterminated");
    bad("{\"a\nb\": 1}", "control character");
    bad("{\"a\\nb\": 1}", "control character");
    bad("{\"a\x7f\": 1}", "control character");
    bad("{\"\xff\": 1}", "UTF-8");
    bad("{\"\xc0\xaf\": 1}", "UTF-8");
    bad("{\"\xed\xa0\x80\": 1}", "UTF-8");
    bad("{\"\xf4\x90\x80\x80\": 1}", "UTF-8");
    bad("{\"\xe6\x97\": 1}", "UTF-8");
    bad("{\"abc", "unterminated");
    bad("{\"abc\\", "unterminated");
    bad_n("{\"a\":1}\0", 8, "byte 0x00");
    bad_n("{\"a\0\":1}", 8, "control character");
    bad_n(NULL, 0, "missing");
}
END_TEST

START_TEST(test_json_limits)
{
    /* Names up to MT_RES_NAME_MAX bytes; offsets in messages. */
    char json[2048], err[256];
    mt_res_set s;
    mt_res_init(&s);
    snprintf(json, sizeof json, "{\"%0*d\": 1}", MT_RES_NAME_MAX, 0);
    ck_assert_int_eq(mt_res_parse_json(json, &s, err, sizeof err), 0);
    snprintf(json, sizeof json, "{\"%0*d\": 1}", MT_RES_NAME_MAX + 1, 0);
    bad(json, "longer than");
    snprintf(json, sizeof json, "{\"%0*d\": 1}", 6 * MT_RES_NAME_MAX + 1, 0);
    bad(json, "longer than");
    bad("{\"a\": 1, \"b\": x}", "at byte 14:");

    /* At most MT_RES_JSON_MAX_ENTRIES names. */
    size_t cap = (MT_RES_JSON_MAX_ENTRIES + 1) * 16 + 4, len = 0;
    char *big = malloc(cap);
    for (int n = MT_RES_JSON_MAX_ENTRIES; n <= MT_RES_JSON_MAX_ENTRIES + 1; n++) {
        len = (size_t)snprintf(big, cap, "{");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(big + len, cap - len, "%s\"r%d\": 1", i ? "," : "", i);
        snprintf(big + len, cap - len, "}");
        if (n == MT_RES_JSON_MAX_ENTRIES) {
            ck_assert_int_eq(mt_res_parse_json(big, &s, err, sizeof err), 0);
            ck_assert_int_eq(s.n, MT_RES_JSON_MAX_ENTRIES);
        } else {
            bad(big, "more than");
        }
    }
    free(big);

    /* Every proper prefix of a valid document is an error. */
    const char *doc =
        "{\"CPU\": 2.5e-1, \"a\\u00e9\\\"\": 0.25, \"m\": 100, \"\\ud83d\\ude00\": 0}";
    ck_assert_int_eq(mt_res_parse_json(doc, &s, err, sizeof err), 0);
    for (size_t i = 0; i < strlen(doc); i++) {
        mt_res_set t;
        mt_res_init(&t);
        char *cut = strndup(doc, i);
        ck_assert_msg(mt_res_parse_json(cut, &t, err, sizeof err) == MANTA_EINVAL,
                      "prefix %zu accepted", i);
        ck_assert(mt_res_parse_json_n(doc, i, &t, err, sizeof err) == MANTA_EINVAL);
        ck_assert_int_eq(t.n, 0);
        free(cut);
    }
    mt_res_free(&s);
}
END_TEST

START_TEST(test_json_roundtrip)
{
    mt_res_set s, t;
    mt_res_init(&s);
    mt_res_init(&t);
    char *j = mt_res_to_json(&s);
    ck_assert_str_eq(j, "{}");
    free(j);
    mt_res_put(&s, "GPU", 5000);
    mt_res_put(&s, "CPU", U);
    j = mt_res_to_json(&s);
    ck_assert_str_eq(j, "{\"CPU\": 1, \"GPU\": 0.5}");
    free(j);
    mt_res_put(&s, "fpga", 20 * U);
    mt_res_put(&s, "tiny", 1);
    mt_res_put(&s, "mid", 2345);
    mt_res_put(&s, "hundredth", 100);
    mt_res_put(&s, "a\"q\\b/", 3 * U);
    mt_res_put(&s, "\xc3\xa9\xf0\x9f\x98\x80", 2500);
    mt_res_put(&s, "memory", 17179869184LL * U);
    j = mt_res_to_json(&s);
    ck_assert(strstr(j, "\"tiny\": 0.0001") != NULL);
    ck_assert(strstr(j, "\"mid\": 0.2345") != NULL);
    ck_assert(strstr(j, "\"hundredth\": 0.01") != NULL);
    ck_assert(strstr(j, "\"a\\\"q\\\\b/\": 3") != NULL);
    parse_ok(j, &t);
    ck_assert(mt_res_equal(&s, &t));
    free(j);

    /* Negative availability prints, but is not a valid demand. */
    mt_res_put(&s, "CPU", -2500);
    j = mt_res_to_json(&s);
    ck_assert(strstr(j, "\"CPU\": -0.25") != NULL);
    bad(j, "negative");
    free(j);
    /* Control bytes (not valid names) still give valid JSON text. */
    mt_res_free(&t);
    mt_res_put(&t, "a\x01", 1);
    j = mt_res_to_json(&t);
    ck_assert_str_eq(j, "{\"a\\u0001\": 0.0001}");
    free(j);
    mt_res_free(&s);
    mt_res_free(&t);
}
END_TEST

/* xorshift64*: the same sequence on every libc. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static const char *const seeds[] = {
    "{\"CPU\": 1, \"GPU\": 0.5}",
    "{\"fpga\": 2, \"accel\": 0.5, \"memory\": 1073741824}",
    "{\"a\\u00e9\\\"\\n\": 2.5e-1, \"\\ud83d\\ude00\": 1e2, \"x\": 0}",
    "{ \"custom_resource\" : 0.0001 , \"y\":-0 }",
    "{}",
};
static const char alphabet[] = "{}[]\":,.-+eE0123456789 \\uabcdfnrtD8\t\n\xc3\xa9\xff";

static size_t fuzz_input(int mode, char *buf, size_t cap)
{
    size_t len;
    if (mode == 0) { /* raw bytes */
        len = rng() % 48;
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)rng();
        return len;
    }
    if (mode == 1) { /* JSON-ish tokens */
        len = rng() % 48;
        for (size_t i = 0; i < len; i++)
            buf[i] = alphabet[rng() % (sizeof alphabet - 1)];
        return len;
    }
    const char *seed = seeds[rng() % MT_ARRAY_LEN(seeds)]; /* mutate a valid document */
    len = strlen(seed);
    memcpy(buf, seed, len);
    for (int m = (int)(rng() % 4); m >= 0; m--) {
        size_t at = len ? rng() % len : 0;
        char c = rng() % 2 ? alphabet[rng() % (sizeof alphabet - 1)] : (char)rng();
        unsigned op = (unsigned)(rng() % 4);
        if (op == 0 && len) { /* replace */
            buf[at] = c;
        } else if (op == 1 && len) { /* delete */
            memmove(buf + at, buf + at + 1, len - at - 1);
            len--;
        } else if (op == 2 && len < cap) { /* insert */
            memmove(buf + at + 1, buf + at, len - at);
            buf[at] = c;
            len++;
        } else if (op == 3) { /* truncate */
            len = at;
        }
    }
    return len;
}

/* A parsed set must be canonical, valid, and survive a JSON round trip. */
static void check_parsed(const mt_res_set *s)
{
    char err[256];
    mt_res_set t;
    mt_res_init(&t);
    assert_canonical(s);
    for (uint32_t i = 0; i < s->n; i++)
        ck_assert_msg(mt_res_check(s->v[i].name, s->v[i].amount, err, sizeof err) == 0, "%s", err);
    char *j = mt_res_to_json(s);
    ck_assert_msg(mt_res_parse_json(j, &t, err, sizeof err) == 0, "%s: %s", j, err);
    ck_assert(mt_res_equal(s, &t));
    free(j);
    mt_res_free(&t);
}

START_TEST(test_json_fuzz)
{
    char buf[128], err[256];
    int accepted[3] = {0, 0, 0};
    mt_res_set s;
    mt_res_init(&s);
    for (int i = 0; i < 100000; i++) {
        int mode = i % 3;
        size_t len = fuzz_input(mode, buf, sizeof buf - 1);
        char *exact = malloc(len ? len : 1); /* no slack for an overread to hide in */
        memcpy(exact, buf, len);
        err[0] = '\0';
        int rc = mt_res_parse_json_n(exact, len, &s, err, sizeof err);
        free(exact);
        if (rc == 0) {
            accepted[mode]++;
            check_parsed(&s);
        } else {
            ck_assert_int_eq(rc, MANTA_EINVAL);
            ck_assert(err[0] != '\0');
        }
        buf[len] = '\0'; /* the NUL-terminated entry point too */
        mt_res_parse_json(buf, &s, err, sizeof err);
    }
    mt_res_free(&s);
    /* The mutated documents must reach the accepting paths. */
    ck_assert_msg(accepted[2] > 1000, "only %d mutants accepted", accepted[2]);
}
END_TEST

/* ---------------------------------------------------------------- GPUs */

static void assert_used(const mt_res_gpu_pool *g, const int64_t *want)
{
    for (int i = 0; i < mt_res_gpu_pool_size(g); i++)
        ck_assert_msg(mt_res_gpu_pool_used(g, i) == want[i], "GPU %d used %lld, want %lld", i,
                      (long long)mt_res_gpu_pool_used(g, i), (long long)want[i]);
}

START_TEST(test_gpu_whole)
{
    mt_res_gpu_pool *g = mt_res_gpu_pool_new(4);
    int32_t ids[8];
    size_t n = 99;
    ck_assert_int_eq(mt_res_gpu_pool_size(g), 4);
    ck_assert_int_eq(mt_res_gpu_acquire(g, 0, ids, 8, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(mt_res_gpu_acquire(g, 2 * U, ids, 8, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], 0);
    ck_assert_int_eq(ids[1], 1);
    ck_assert_int_eq(mt_res_gpu_acquire(g, U, ids + 2, 6, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ids[2], 2);
    int64_t want[4] = {U, U, U, 0};
    assert_used(g, want);

    /* Not enough whole GPUs: nothing changes. */
    ck_assert_int_eq(mt_res_gpu_acquire(g, 2 * U, ids + 3, 5, &n), MANTA_ENOMEM);
    ck_assert_uint_eq(n, 0);
    assert_used(g, want);
    ck_assert_int_eq(mt_res_gpu_acquire(g, 5 * U, ids, 8, &n), MANTA_ENOMEM);
    assert_used(g, want);

    mt_res_gpu_release(g, 2 * U, ids, 2);
    int64_t want2[4] = {0, 0, U, 0};
    assert_used(g, want2);
    ck_assert_int_eq(mt_res_gpu_acquire(g, 3 * U, ids, 8, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert(ids[0] == 0 && ids[1] == 1 && ids[2] == 3);

    /* Bad requests. */
    ck_assert_int_eq(mt_res_gpu_acquire(g, 15000, ids, 8, &n), MANTA_EINVAL);
    ck_assert_int_eq(mt_res_gpu_acquire(g, -1, ids, 8, &n), MANTA_EINVAL);
    mt_res_gpu_release(g, 3 * U, ids, 3);
    ck_assert_int_eq(mt_res_gpu_acquire(g, 2 * U, ids, 1, &n), MANTA_EINVAL);
    ck_assert_int_eq(mt_res_gpu_acquire(g, 5000, ids, 0, &n), MANTA_EINVAL);
    ck_assert_uint_eq(n, 0);
    assert_used(g, (int64_t[4]){0, 0, U, 0});
    mt_res_gpu_release(g, 0, NULL, 0);
    mt_res_gpu_pool_free(g);

    g = mt_res_gpu_pool_new(0);
    ck_assert_int_eq(mt_res_gpu_acquire(g, U, ids, 8, &n), MANTA_ENOMEM);
    ck_assert_int_eq(mt_res_gpu_acquire(g, 1, ids, 8, &n), MANTA_ENOMEM);
    ck_assert_int_eq(mt_res_gpu_pool_used(g, 0), 0);
    mt_res_gpu_pool_free(g);
    mt_res_gpu_pool_free(NULL);
}
END_TEST

START_TEST(test_gpu_fraction)
{
    mt_res_gpu_pool *g = mt_res_gpu_pool_new(3);
    int32_t id, ids[4];
    size_t n;
    ck_assert_int_eq(mt_res_gpu_acquire(g, 5000, &id, 1, &n), 0);
    ck_assert(n == 1 && id == 0);
    ck_assert_int_eq(mt_res_gpu_acquire(g, 2500, &id, 1, &n), 0); /* packs onto GPU 0 */
    ck_assert_int_eq(id, 0);
    ck_assert_int_eq(mt_res_gpu_acquire(g, 5000, &id, 1, &n), 0); /* GPU 0 has 0.25 left */
    ck_assert_int_eq(id, 1);
    ck_assert_int_eq(mt_res_gpu_acquire(g, 2500, &id, 1, &n), 0); /* the fullest that fits */
    ck_assert_int_eq(id, 0);
    assert_used(g, (int64_t[3]){U, 5000, 0});
    ck_assert_int_eq(mt_res_gpu_acquire(g, U, ids, 4, &n), 0); /* only GPU 2 is whole */
    ck_assert(n == 1 && ids[0] == 2);
    ck_assert_int_eq(mt_res_gpu_acquire(g, U, ids, 4, &n), MANTA_ENOMEM);
    ck_assert_int_eq(mt_res_gpu_acquire(g, 5001, &id, 1, &n), MANTA_ENOMEM);
    ck_assert_uint_eq(n, 0);
    assert_used(g, (int64_t[3]){U, 5000, U});
    ck_assert_int_eq(mt_res_gpu_acquire(g, 5000, &id, 1, &n), 0);
    ck_assert_int_eq(id, 1);
    ck_assert_int_eq(mt_res_gpu_acquire(g, 1, &id, 1, &n), MANTA_ENOMEM);
    assert_used(g, (int64_t[3]){U, U, U});

    id = 0;
    mt_res_gpu_release(g, 2500, &id, 1);
    ck_assert_int_eq(mt_res_gpu_acquire(g, 2000, &id, 1, &n), 0);
    ck_assert_int_eq(id, 0);
    assert_used(g, (int64_t[3]){9500, U, U});
    ids[0] = 2;
    mt_res_gpu_release(g, U, ids, 1);
    ck_assert_int_eq(mt_res_gpu_acquire(g, 500, &id, 1, &n), 0); /* fills GPU 0, not GPU 2 */
    ck_assert_int_eq(id, 0);
    assert_used(g, (int64_t[3]){U, U, 0});
    mt_res_gpu_pool_free(g);
}
END_TEST

/* Releasing what was never acquired is a scheduler bug: mt_assert aborts
 * (its "assertion failed" line on stderr is expected). */
START_TEST(test_gpu_release_bug_aborts)
{
    mt_res_gpu_pool *g = mt_res_gpu_pool_new(2);
    int32_t id = 1;
    mt_res_gpu_release(g, 5000, &id, 1); /* never acquired */
    mt_res_gpu_pool_free(g);
}
END_TEST

/* ---------------------------------------------------------------- main */

int main(void)
{
    Suite *s = suite_create("resources");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_fixed_convert);
    tcase_add_test(tc, test_fixed_reject);
    tcase_add_test(tc, test_check);
    tcase_add_test(tc, test_frac_variants);
    tcase_add_test(tc, test_set_basic);
    tcase_add_test(tc, test_add_sub_fits);
    tcase_add_test(tc, test_alias_saturate);
    tcase_add_test(tc, test_key_hash);
    tcase_add_test(tc, test_json_valid);
    tcase_add_test(tc, test_json_errors);
    tcase_add_test(tc, test_json_limits);
    tcase_add_test(tc, test_json_roundtrip);
    tcase_add_test(tc, test_gpu_whole);
    tcase_add_test(tc, test_gpu_fraction);
    suite_add_tcase(s, tc);

    TCase *fz = tcase_create("fuzz");
    tcase_set_timeout(fz, 120);
    tcase_add_test(fz, test_json_fuzz);
    suite_add_tcase(s, fz);

    SRunner *sr = srunner_create(s);
    if (srunner_fork_status(sr) != CK_NOFORK) {
        /* Only a forked test may abort without taking the runner along. */
        TCase *ab = tcase_create("abort");
        tcase_add_test_raise_signal(ab, test_gpu_release_bug_aborts, SIGABRT);
        suite_add_tcase(s, ab);
    }
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
