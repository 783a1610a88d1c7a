/* Sealing, master keys, ids and time helpers. */
#include <sodium.h>

#include "crypto.h"
#include "test.h"
#include "util.h"

static ig_master_key key_a, key_b;

static void setup(void)
{
    ig_global_init();
    ig_master_key_from_b64(&key_a, TEST_MASTER_KEY, "a");
    char *kb = NULL;
    integ_generate_master_key(&kb);
    ig_master_key_from_b64(&key_b, kb, "b");
    integ_free(kb);
}

static void test_seal_roundtrip(void)
{
    char *sealed = NULL;
    const char *secret = "{\"api_key\":\"pat-na1-secret\"}";
    CHECK_OK(ig_seal(&key_a, "t1", "obj1", "credentials", (const unsigned char *)secret,
                     strlen(secret), &sealed));
    CHECK(sealed && strncmp(sealed, "v1.", 3) == 0);
    CHECK(strstr(sealed, "pat-na1") == NULL);
    CHECK(strncmp(sealed + 3, key_a.key_id, 16) == 0);
    unsigned char *plain = NULL;
    size_t len = 0;
    CHECK_OK(ig_open(&key_a, "t1", "obj1", "credentials", sealed, &plain, &len));
    CHECK(len == strlen(secret) && plain && memcmp(plain, secret, len) == 0 && plain[len] == 0);
    ig_free_secret(plain, len);
    /* Two seals of the same plaintext differ (random nonce). */
    char *again = NULL;
    CHECK_OK(ig_seal(&key_a, "t1", "obj1", "credentials", (const unsigned char *)secret,
                     strlen(secret), &again));
    CHECK(strcmp(sealed, again) != 0);
    free(again);
    free(sealed);
}

static void test_empty_plaintext(void)
{
    char *sealed = NULL;
    CHECK_OK(ig_seal(&key_a, "t1", "o", "p", (const unsigned char *)"", 0, &sealed));
    unsigned char *plain = NULL;
    size_t len = 99;
    CHECK_OK(ig_open(&key_a, "t1", "o", "p", sealed, &plain, &len));
    CHECK(len == 0 && plain && plain[0] == 0);
    ig_free_secret(plain, 1);
    free(sealed);
}

static void test_wrong_key_tamper_move(void)
{
    char *sealed = NULL;
    CHECK_OK(ig_seal(&key_a, "t1", "obj1", "credentials", (const unsigned char *)"s3cret", 6, &sealed));
    unsigned char *plain = NULL;
    size_t len = 0;
    CHECK_RC(ig_open(&key_b, "t1", "obj1", "credentials", sealed, &plain, &len), INTEG_ECRYPTO);
    CHECK_MSG("wrong master key");
    CHECK(plain == NULL);
    /* Moved to another tenant, object or purpose. */
    CHECK_RC(ig_open(&key_a, "t2", "obj1", "credentials", sealed, &plain, &len), INTEG_ECRYPTO);
    CHECK_RC(ig_open(&key_a, "t1", "obj2", "credentials", sealed, &plain, &len), INTEG_ECRYPTO);
    CHECK_RC(ig_open(&key_a, "t1", "obj1", "webhook_secret", sealed, &plain, &len), INTEG_ECRYPTO);
    CHECK_MSG("authentication failed");
    /* Boundary shifting between fields must not verify ("t1","obj1" vs "t1o","bj1"). */
    CHECK_RC(ig_open(&key_a, "t1o", "bj1", "credentials", sealed, &plain, &len), INTEG_ECRYPTO);
    /* Flip each character of the payload in turn: never opens. */
    size_t n = strlen(sealed);
    int opened = 0;
    for (size_t i = 20; i < n; i++) {
        char *t = strdup(sealed);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        if (ig_open(&key_a, "t1", "obj1", "credentials", t, &plain, &len) == INTEG_OK) {
            /* base64 of the last char may carry unused bits: only count real changes */
            opened += memcmp(plain, "s3cret", 6) != 0;
            ig_free_secret(plain, len);
        }
        free(t);
    }
    CHECK(opened == 0);
    CHECK_RC(ig_open(&key_a, "t1", "obj1", "credentials", "v1.short", &plain, &len), INTEG_ECRYPTO);
    CHECK_RC(ig_open(&key_a, "t1", "obj1", "credentials", "garbage", &plain, &len), INTEG_ECRYPTO);
    char trunc[40];
    snprintf(trunc, sizeof trunc, "%.30s", sealed);
    CHECK_RC(ig_open(&key_a, "t1", "obj1", "credentials", trunc, &plain, &len), INTEG_ECRYPTO);
    free(sealed);
}

static void test_master_key_parsing(void)
{
    ig_master_key k;
    CHECK_RC(ig_master_key_from_b64(&k, "", "opt"), INTEG_EINVAL);
    CHECK_RC(ig_master_key_from_b64(&k, "not base64 !!", "opt"), INTEG_EINVAL);
    CHECK_MSG("opt: master key is not valid base64");
    CHECK_RC(ig_master_key_from_b64(&k, "c2hvcnQ=", "opt"), INTEG_EINVAL);
    CHECK_MSG("must be 32 bytes");
    CHECK_OK(ig_master_key_from_b64(&k, TEST_MASTER_KEY "\n", "opt"));
    CHECK_STR(k.key_id, key_a.key_id);
    CHECK(strcmp(key_a.key_id, key_b.key_id) != 0);
    char *g = NULL;
    CHECK_OK(integ_generate_master_key(&g));
    CHECK(g && strlen(g) == 44);
    CHECK_OK(ig_master_key_from_b64(&k, g, "gen"));
    integ_free(g);
    CHECK_RC(integ_generate_master_key(NULL), INTEG_EINVAL);
}

static void test_uuid7(void)
{
    char a[37], b[37];
    ig_uuid7(a, 1700000000000);
    ig_uuid7(b, 1700000000001);
    CHECK(strlen(a) == 36 && a[14] == '7' && a[8] == '-' && a[13] == '-');
    CHECK(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b');
    CHECK(strcmp(a, b) < 0);
    CHECK(strncmp(a, "018bcfe5-6800", 13) == 0); /* 1700000000000 = 0x18bcfe56800 */
    /* Sequenced ids: strictly increasing within one millisecond and across
     * a counter overflow. */
    _Atomic uint64_t st = 0;
    unsigned char key[32] = {1, 2, 3};
    char prev[37] = "", cur[37];
    int ordered = 1;
    for (int i = 0; i < 10000; i++) {
        ig_uuid7_next(&st, key, cur, 1700000000000);
        ordered &= strcmp(prev, cur) < 0;
        memcpy(prev, cur, sizeof cur);
    }
    CHECK(ordered);
    /* A clock going backwards never makes an id sort earlier. */
    ig_uuid7_next(&st, key, cur, 1600000000000);
    CHECK(strcmp(prev, cur) < 0);
    /* The random part differs per id and per key (same time, same counter). */
    _Atomic uint64_t s1 = 0, s2 = 0;
    unsigned char key2[32] = {9};
    char a1[37], a2[37], b1[37];
    ig_uuid7_next(&s1, key, a1, 1700000000000);
    ig_uuid7_next(&s2, key2, a2, 1700000000000);
    ig_uuid7_next(&s1, key, b1, 1700000000000);
    CHECK(strncmp(a1, a2, 18) == 0 && strcmp(a1 + 19, a2 + 19) != 0);
    CHECK(strcmp(a1 + 24, b1 + 24) != 0);
}

static void test_rfc3339(void)
{
    char buf[32];
    ig_rfc3339(buf, 1737626400000, 0);
    CHECK_STR(buf, "2025-01-23T10:00:00Z");
    ig_rfc3339(buf, 1737626400123, 1);
    CHECK_STR(buf, "2025-01-23T10:00:00.123Z");
    int64_t ms = 0;
    CHECK(ig_parse_rfc3339("2025-01-23T10:00:00Z", &ms) == 0 && ms == 1737626400000);
    CHECK(ig_parse_rfc3339("2025-01-23T11:00:00.5+01:00", &ms) == 0 && ms == 1737626400500);
    CHECK(ig_parse_rfc3339("2024-02-29T00:00:00Z", &ms) == 0);
    CHECK(ig_parse_rfc3339("2023-02-29T00:00:00Z", &ms) == -1);
    CHECK(ig_parse_rfc3339("2025-13-01T00:00:00Z", &ms) == -1);
    CHECK(ig_parse_rfc3339("2025-01-23 10:00", &ms) == -1);
    CHECK(ig_parse_rfc3339("2025-01-23T10:00:00", &ms) == -1);
    CHECK(ig_parse_rfc3339(NULL, &ms) == -1);
}

int main(void)
{
    setup();
    RUN(test_seal_roundtrip);
    RUN(test_empty_plaintext);
    RUN(test_wrong_key_tamper_move);
    RUN(test_master_key_parsing);
    RUN(test_uuid7);
    RUN(test_rfc3339);
    TEST_END();
}
