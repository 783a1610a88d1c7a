/* integ_webhook_verify: every scheme against the published vectors of the
 * providers' own SDK test suites and documentation, plus signatures computed
 * here, tampering, replay windows, rotation, header quirks and random
 * hostile input. The SDK oracle comparison is tests/oracles/webhook_vs_sdks.mjs. */
#include <stdint.h>

#include <mbedtls/md.h>
#include <sodium.h>

#include "test.h"
#include "webhook_verify.h"

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

#define MAXH 64

/* Headers are a NULL-terminated list of name, value pairs. */
static int vf(const char *scheme, const char *secret, const char *method, const char *url,
              const char *const *pairs, const void *body, size_t body_len, int64_t now, int tol)
{
    const char *names[MAXH], *values[MAXH];
    size_t n = 0;
    for (size_t i = 0; pairs && pairs[i] && n < MAXH; i += 2) {
        names[n] = pairs[i];
        values[n] = pairs[i + 1];
        n++;
    }
    return integ_webhook_verify(scheme, secret, method, url, names, values, n,
                                (const unsigned char *)body, body_len, now, tol);
}

#define HDRS(...) ((const char *const[]){__VA_ARGS__, NULL})
/* VF(scheme, secret, method, url, body, now, tolerance, "Name", "value", ...) */
#define VF(sch, sec, m, u, b, now, tol, ...) vf(sch, sec, m, u, HDRS(__VA_ARGS__), b, strlen(b), now, tol)

/* prefix + hex or base64 of HMAC(key, msg) into out. */
static void mac(mbedtls_md_type_t t, const char *key, const void *msg, size_t len, int b64,
                const char *prefix, char *out, size_t out_size)
{
    unsigned char d[MBEDTLS_MD_MAX_SIZE];
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(t);
    mbedtls_md_hmac(info, (const unsigned char *)key, strlen(key), msg, len, d);
    size_t n = mbedtls_md_get_size(info), pl = strlen(prefix);
    snprintf(out, out_size, "%s", prefix);
    if (b64)
        sodium_bin2base64(out + pl, out_size - pl, d, n, sodium_base64_VARIANT_ORIGINAL);
    else
        sodium_bin2hex(out + pl, out_size - pl, d, n);
}

static void sha256_hex(const void *msg, size_t len, char *out)
{
    unsigned char d[32];
    mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), msg, len, d);
    sodium_bin2hex(out, 65, d, 32);
}

/* Concatenate NUL-terminated strings into buf (static, test-only). */
static const char *cat(char *buf, size_t size, const char *a, const char *b, const char *c,
                       const char *d)
{
    snprintf(buf, size, "%s%s%s%s", a ? a : "", b ? b : "", c ? c : "", d ? d : "");
    return buf;
}

static const char *const k_all_schemes[] = {
    "standard",   "standard-ed25519", "github",     "github-sha1", "slack",
    "stripe",     "shopify",          "woocommerce", "hubspot-v1", "hubspot-v2",
    "hubspot-v3", "sendgrid",         "twilio",     "basic",       "msgraph",
};
#define N_SCHEMES (sizeof k_all_schemes / sizeof k_all_schemes[0])

/* ------------------------------------------------------------------------
 * Standard Webhooks / Svix
 * ---------------------------------------------------------------------- */

/* standard-webhooks libraries/javascript/src/webhook.test.ts "sign function works" */
#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS "1614265330"
#define SW_BODY "{\"test\": 2432232314}"
#define SW_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define SW_NOW 1614265330

static void test_standard_published_vector(void)
{
    CHECK_OK(VF("standard", SW_SECRET, "POST", "https://x", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG));
    /* "verification works with and without signature prefix" */
    CHECK_OK(VF("standard", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "POST", "https://x", SW_BODY, SW_NOW,
                0, "webhook-id", SW_ID, "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG));
    /* svix-* headers are aliases */
    CHECK_OK(VF("standard", SW_SECRET, "POST", "https://x", SW_BODY, SW_NOW, 0, "svix-id", SW_ID,
                "svix-timestamp", SW_TS, "svix-signature", SW_SIG));
    /* "multi sig payload is valid": v1 bad, v2, valid, v1 bad */
    CHECK_OK(VF("standard", SW_SECRET, "POST", "https://x", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature",
                "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/"
                "WavXrAFQ/9tdO6mc= " SW_SIG " v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="));
    /* the spec's example header shape: a v1 and a v1a entry */
    CHECK_OK(VF("standard", SW_SECRET, "POST", "https://x", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature",
                SW_SIG " v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg=="));
}

static void test_standard_failures(void)
{
    /* "invalid signature throws error" */
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", "v1,dawfeoifkpqwoekfpqoekf"),
             INTEG_ESIGNATURE);
    CHECK_MSG("webhook-signature: no v1 signature matches");
    /* "partial signature throws error" */
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", "v1,g0hM9S"),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", "v1,"),
             INTEG_ESIGNATURE);
    /* only other versions, no comma, garbage */
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature",
                "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= g0hM9SsE ,,, v1"),
             INTEG_ESIGNATURE);
    /* tampered body, id, wrong secret */
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", "{\"test\": 2432232315}", SW_NOW, 0, "webhook-id",
                SW_ID, "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID "x",
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("standard", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "POST", "", SW_BODY, SW_NOW, 0,
                "webhook-id", SW_ID, "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG),
             INTEG_ESIGNATURE);
    /* missing pieces */
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "webhook-timestamp", SW_TS,
                "webhook-signature", SW_SIG),
             INTEG_EINVAL);
    CHECK_MSG("webhook-id: missing");
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-signature", SW_SIG),
             INTEG_EINVAL);
    CHECK_MSG("webhook-timestamp: missing");
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS),
             INTEG_EINVAL);
    CHECK_MSG("webhook-signature: missing");
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", "   "),
             INTEG_EINVAL);
    CHECK_MSG("webhook-signature: empty");
    /* "invalid timestamp throws error", and the PHP library's rejects */
    const char *bad_ts[] = {"hello", "161426533.0", "-161426533", "1614265330x", "+1614265330",
                            "1 614265330", "9999999999999999999"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++) {
        CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                    "webhook-timestamp", bad_ts[i], "webhook-signature", SW_SIG),
                 INTEG_EINVAL);
        CHECK_MSG("webhook-timestamp: not a decimal integer");
    }
    /* bad secrets */
    CHECK_RC(VF("standard", "", "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG),
             INTEG_EINVAL);
    CHECK_MSG("secret: empty");
    CHECK_RC(VF("standard", "whsec_", "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG),
             INTEG_EINVAL);
    CHECK_RC(VF("standard", "whsec_not*base64!", "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG),
             INTEG_EINVAL);
    CHECK_MSG("secret: not whsec_");
    CHECK_RC(VF("standard", "whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "POST", "", SW_BODY, SW_NOW, 0,
                "webhook-id", SW_ID, "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG),
             INTEG_EINVAL);
    CHECK_MSG("standard-ed25519");
}

static void test_standard_timestamps(void)
{
    /* too old / too new by one second past the 300 s default; edges pass */
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW + 301, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG),
             INTEG_EREPLAY);
    CHECK_MSG("webhook-timestamp: timestamp 1614265330 is outside the 300 s tolerance");
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW - 301, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG),
             INTEG_EREPLAY);
    CHECK_OK(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW + 300, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG));
    CHECK_OK(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW - 300, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG));
    /* a custom tolerance, and a negative one skips the check */
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW + 11, 10, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG),
             INTEG_EREPLAY);
    CHECK_MSG("outside the 10 s tolerance");
    CHECK_OK(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW + 86400 * 365, -1, "webhook-id",
                SW_ID, "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG));
    /* now_unix 0 is the current time: the 2021 vector is stale */
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, 0, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG),
             INTEG_EREPLAY);
    /* the timestamp is checked before the signature (as the SDKs do) */
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", "tampered", SW_NOW + 1000, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG),
             INTEG_EREPLAY);
}

static void test_standard_rotation_and_headers(void)
{
    /* several secrets: any one verifies, in any position */
    CHECK_OK(VF("standard", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA " SW_SECRET, "POST", "", SW_BODY,
                SW_NOW, 0, "webhook-id", SW_ID, "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG));
    CHECK_OK(VF("standard", SW_SECRET "  whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "POST", "", SW_BODY,
                SW_NOW, 0, "webhook-id", SW_ID, "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG));
    CHECK_RC(VF("standard", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA whsec_BBBBBBBBBBBBBBBBBBBBBBBB",
                "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID, "webhook-timestamp", SW_TS,
                "webhook-signature", SW_SIG),
             INTEG_ESIGNATURE);
    CHECK_MSG("(2 secrets tried)");
    /* header names are case-insensitive; values are trimmed */
    CHECK_OK(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "WEBHOOK-ID", SW_ID,
                "Webhook-Timestamp", " " SW_TS "\t", "webHook-signaTure", SW_SIG "\r\n"));
    /* a repeated header: identical repeats are fine, different ones are not */
    CHECK_OK(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG, "Webhook-Signature", SW_SIG));
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG, "webhook-signature",
                "v1,AAAA"),
             INTEG_EINVAL);
    CHECK_MSG("webhook-signature: repeated with different values");
    /* svix-* wins over webhook-* (as the svix SDK) */
    CHECK_OK(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "svix-id", SW_ID,
                "webhook-id", "other", "webhook-timestamp", SW_TS, "svix-signature", SW_SIG));
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "svix-id", "other",
                "webhook-id", SW_ID, "webhook-timestamp", SW_TS, "svix-signature", SW_SIG),
             INTEG_ESIGNATURE);
    /* a header longer than 8 KiB */
    char *long_value = malloc(9001);
    memset(long_value, 'A', 9000);
    long_value[9000] = 0;
    CHECK_RC(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", long_value),
             INTEG_EINVAL);
    CHECK_MSG("webhook-signature: longer than 8192 bytes");
    /* an unrelated long header does not matter */
    CHECK_OK(VF("standard", SW_SECRET, "POST", "", SW_BODY, SW_NOW, 0, "webhook-id", SW_ID,
                "webhook-timestamp", SW_TS, "webhook-signature", SW_SIG, "X-Long", long_value));
    free(long_value);
}

/* Secrets needing 0, 1 or 2 padding characters, written with and without
 * the padding (standard-webhooks python tests cover the unpadded forms). */
static void test_standard_secret_padding(void)
{
    for (size_t key_len = 30; key_len <= 32; key_len++) {
        unsigned char key[32];
        for (size_t i = 0; i < key_len && i < sizeof key; i++)
            key[i] = (unsigned char)(i * 7 + key_len);
        char b64[64], secret[80], unpadded[80];
        sodium_bin2base64(b64, sizeof b64, key, key_len, sodium_base64_VARIANT_ORIGINAL);
        snprintf(secret, sizeof secret, "whsec_%s", b64);
        snprintf(unpadded, sizeof unpadded, "whsec_%s", b64);
        unpadded[strcspn(unpadded, "=")] = '\0';
        const char *msg = "id1.1700000000.{}";
        unsigned char d[32];
        mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, key_len,
                        (const unsigned char *)msg, strlen(msg), d);
        char sig[80] = "v1,";
        sodium_bin2base64(sig + 3, sizeof sig - 3, d, 32, sodium_base64_VARIANT_ORIGINAL);
        CHECK_OK(VF("standard", secret, "POST", "", "{}", 1700000000, 0, "webhook-id", "id1",
                    "webhook-timestamp", "1700000000", "webhook-signature", sig));
        CHECK_OK(VF("standard", unpadded, "POST", "", "{}", 1700000000, 0, "webhook-id", "id1",
                    "webhook-timestamp", "1700000000", "webhook-signature", sig));
    }
}

static void test_standard_ed25519(void)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char pk2[crypto_sign_PUBLICKEYBYTES], sk2[crypto_sign_SECRETKEYBYTES];
    CHECK(sodium_init() >= 0);
    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(pk2, sk2);
    char pkb[64], pk2b[64], secret[80], secret2[80], both[200];
    sodium_bin2base64(pkb, sizeof pkb, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(pk2b, sizeof pk2b, pk2, sizeof pk2, sodium_base64_VARIANT_ORIGINAL);
    snprintf(secret, sizeof secret, "whpk_%s", pkb);
    snprintf(secret2, sizeof secret2, "whpk_%s", pk2b);
    snprintf(both, sizeof both, "%s %s", secret2, secret);

    const char *msg = "msg_1.1700000000.{\"a\":1}";
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const unsigned char *)msg, strlen(msg), sk);
    char hv[200] = "v1a,";
    sodium_bin2base64(hv + 4, sizeof hv - 4, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
    char multi[400];
    snprintf(multi, sizeof multi, "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= %s", hv);

    CHECK_OK(VF("standard-ed25519", secret, "POST", "", "{\"a\":1}", 1700000000, 0, "webhook-id",
                "msg_1", "webhook-timestamp", "1700000000", "webhook-signature", hv));
    CHECK_OK(VF("standard-ed25519", secret, "POST", "", "{\"a\":1}", 1700000000, 0, "svix-id",
                "msg_1", "svix-timestamp", "1700000000", "svix-signature", multi));
    CHECK_OK(VF("standard-ed25519", both, "POST", "", "{\"a\":1}", 1700000000, 0, "webhook-id",
                "msg_1", "webhook-timestamp", "1700000000", "webhook-signature", hv));
    CHECK_OK(VF("standard-ed25519", pkb, "POST", "", "{\"a\":1}", 1700000000, 0, "webhook-id",
                "msg_1", "webhook-timestamp", "1700000000", "webhook-signature", hv));
    CHECK_RC(VF("standard-ed25519", secret2, "POST", "", "{\"a\":1}", 1700000000, 0, "webhook-id",
                "msg_1", "webhook-timestamp", "1700000000", "webhook-signature", hv),
             INTEG_ESIGNATURE);
    CHECK_MSG("no v1a signature matches");
    CHECK_RC(VF("standard-ed25519", secret, "POST", "", "{\"a\":2}", 1700000000, 0, "webhook-id",
                "msg_1", "webhook-timestamp", "1700000000", "webhook-signature", hv),
             INTEG_ESIGNATURE);
    /* a v1 label on an ed25519 signature is not accepted */
    char relabeled[200];
    snprintf(relabeled, sizeof relabeled, "v1,%s", hv + 4);
    CHECK_RC(VF("standard-ed25519", secret, "POST", "", "{\"a\":1}", 1700000000, 0, "webhook-id",
                "msg_1", "webhook-timestamp", "1700000000", "webhook-signature", relabeled),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("standard-ed25519", secret, "POST", "", "{\"a\":1}", 1700000000, 0, "webhook-id",
                "msg_1", "webhook-timestamp", "1700000000", "webhook-signature", "v1a,AAAA"),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("standard-ed25519", secret, "POST", "", "{\"a\":1}", 1700000400, 0, "webhook-id",
                "msg_1", "webhook-timestamp", "1700000000", "webhook-signature", hv),
             INTEG_EREPLAY);
    CHECK_OK(VF("standard-ed25519", secret, "POST", "", "{\"a\":1}", 1800000000, -1, "webhook-id",
                "msg_1", "webhook-timestamp", "1700000000", "webhook-signature", hv));
    /* bad keys */
    CHECK_RC(VF("standard-ed25519", "whpk_AAAA", "POST", "", "{\"a\":1}", 1700000000, 0,
                "webhook-id", "msg_1", "webhook-timestamp", "1700000000", "webhook-signature", hv),
             INTEG_EINVAL);
    CHECK_MSG("32-byte ed25519 public key");
    CHECK_RC(VF("standard-ed25519", SW_SECRET, "POST", "", "{\"a\":1}", 1700000000, 0, "webhook-id",
                "msg_1", "webhook-timestamp", "1700000000", "webhook-signature", hv),
             INTEG_EINVAL);
}

/* ------------------------------------------------------------------------
 * GitHub
 * ---------------------------------------------------------------------- */

static void test_github(void)
{
    /* octokit/webhooks-methods.js test/sign.test.ts */
    CHECK_OK(VF("github", "mysecret", "POST", "", "{\"foo\":\"bar\"}", 0, 0, "X-Hub-Signature-256",
                "sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3"));
    /* GitHub docs, validating-webhook-deliveries "Testing the webhook payload validation" */
    CHECK_OK(VF("github", "It's a Secret to Everybody", "POST", "", "Hello, World!", 0, 0,
                "x-hub-signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"));
    /* uppercase hex, another prefix, truncated, tampered: all ESIGNATURE */
    const char *bad[] = {"sha256=4864D2759938A15468B5DF9ADE20BF161DA9B4F737EA61794142F3484236BDA3",
                         "sha1=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3",
                         "4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3",
                         "sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda",
                         "sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda4",
                         "sha256=", "garbage \x01\x7f\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_RC(VF("github", "mysecret", "POST", "", "{\"foo\":\"bar\"}", 0, 0,
                    "X-Hub-Signature-256", bad[i]),
                 INTEG_ESIGNATURE);
    }
    CHECK_MSG("X-Hub-Signature-256: signature does not match");
    CHECK_RC(VF("github", "mysecret", "POST", "", "{\"foo\":\"baz\"}", 0, 0, "X-Hub-Signature-256",
                "sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3"),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("github", "mysecreT", "POST", "", "{\"foo\":\"bar\"}", 0, 0, "X-Hub-Signature-256",
                "sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3"),
             INTEG_ESIGNATURE);
    /* rotation */
    CHECK_OK(VF("github", "old-secret mysecret", "POST", "", "{\"foo\":\"bar\"}", 0, 0,
                "X-Hub-Signature-256",
                "sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3"));
    /* missing: the legacy header alone is not enough for "github" */
    char sha1[80];
    mac(MBEDTLS_MD_SHA1, "mysecret", "{\"foo\":\"bar\"}", 13, 0, "sha1=", sha1, sizeof sha1);
    CHECK_RC(VF("github", "mysecret", "POST", "", "{\"foo\":\"bar\"}", 0, 0, "X-Hub-Signature", sha1),
             INTEG_EINVAL);
    CHECK_MSG("X-Hub-Signature-256: missing");
    CHECK_OK(VF("github-sha1", "mysecret", "POST", "", "{\"foo\":\"bar\"}", 0, 0, "X-Hub-Signature",
                sha1));
    CHECK_RC(VF("github-sha1", "mysecret", "POST", "", "{\"foo\":\"bar\"}", 0, 0,
                "X-Hub-Signature-256",
                "sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3"),
             INTEG_EINVAL);
    CHECK_MSG("X-Hub-Signature: missing");
    /* an empty body is refused, as octokit does */
    CHECK_RC(VF("github", "mysecret", "POST", "", "", 0, 0, "X-Hub-Signature-256", "sha256=00"),
             INTEG_EINVAL);
    CHECK_MSG("body: empty");
    /* the body is raw bytes: a NUL inside is signed like any byte */
    const unsigned char bin[] = {'a', 0, 'b', 0xff};
    char s[100];
    mac(MBEDTLS_MD_SHA256, "k", bin, sizeof bin, 0, "sha256=", s, sizeof s);
    CHECK_OK(vf("github", "k", "POST", "", HDRS("X-Hub-Signature-256", s), bin, sizeof bin, 0, 0));
    CHECK_RC(vf("github", "k", "POST", "", HDRS("X-Hub-Signature-256", s), bin, 3, 0, 0),
             INTEG_ESIGNATURE);
}

/* ------------------------------------------------------------------------
 * Slack
 * ---------------------------------------------------------------------- */

/* slackapi/python-slack-sdk tests/slack_sdk/signature/test_signature_verifier.py */
#define SL_SECRET "8f742231b10e8888abcd99yyyzzz85a5"
#define SL_BODY                                                                                     \
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="          \
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"     \
    "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%"             \
    "2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."               \
    "803a0bc887a14d10d2c447fce8b6703c"
#define SL_TS "1531420618"
#define SL_SIG "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

static void test_slack(void)
{
    CHECK_OK(VF("slack", SL_SECRET, "POST", "", SL_BODY, 1531420618, 0, "X-Slack-Request-Timestamp",
                SL_TS, "X-Slack-Signature", SL_SIG));
    CHECK_OK(VF("slack", "wrong " SL_SECRET, "POST", "", SL_BODY, 1531420618, 0,
                "x-slack-request-timestamp", SL_TS, "x-slack-signature", SL_SIG));
    CHECK_RC(VF("slack", SL_SECRET, "POST", "", SL_BODY "------", 1531420618, 0,
                "X-Slack-Request-Timestamp", SL_TS, "X-Slack-Signature", SL_SIG),
             INTEG_ESIGNATURE);
    CHECK_MSG("X-Slack-Signature: signature does not match");
    CHECK_RC(VF("slack", SL_SECRET "x", "POST", "", SL_BODY, 1531420618, 0,
                "X-Slack-Request-Timestamp", SL_TS, "X-Slack-Signature", SL_SIG),
             INTEG_ESIGNATURE);
    /* "test_is_valid_request_expiration": the real clock */
    CHECK_RC(VF("slack", SL_SECRET, "POST", "", SL_BODY, 0, 0, "X-Slack-Request-Timestamp", SL_TS,
                "X-Slack-Signature", SL_SIG),
             INTEG_EREPLAY);
    CHECK_MSG("X-Slack-Request-Timestamp: timestamp 1531420618 is outside the 300 s tolerance");
    CHECK_RC(VF("slack", SL_SECRET, "POST", "", SL_BODY, 1531420618 - 301, 0,
                "X-Slack-Request-Timestamp", SL_TS, "X-Slack-Signature", SL_SIG),
             INTEG_EREPLAY);
    CHECK_OK(VF("slack", SL_SECRET, "POST", "", SL_BODY, 0, -1, "X-Slack-Request-Timestamp", SL_TS,
                "X-Slack-Signature", SL_SIG));
    CHECK_RC(VF("slack", SL_SECRET, "POST", "", SL_BODY, 1531420618, 0, "X-Slack-Signature", SL_SIG),
             INTEG_EINVAL);
    CHECK_MSG("X-Slack-Request-Timestamp: missing");
    CHECK_RC(VF("slack", SL_SECRET, "POST", "", SL_BODY, 1531420618, 0,
                "X-Slack-Request-Timestamp", SL_TS),
             INTEG_EINVAL);
    CHECK_RC(VF("slack", SL_SECRET, "POST", "", SL_BODY, 1531420618, 0,
                "X-Slack-Request-Timestamp", "1531420618.5", "X-Slack-Signature", SL_SIG),
             INTEG_EINVAL);
    CHECK_RC(VF("slack", SL_SECRET, "POST", "", SL_BODY, 1531420618, 0,
                "X-Slack-Request-Timestamp", SL_TS, "X-Slack-Signature",
                "v0=A2114D57B48EAC39B9AD189DD8316235A7B4A8D21A10BD27519666489C69B503"),
             INTEG_ESIGNATURE);
    /* the timestamp is signed */
    CHECK_RC(VF("slack", SL_SECRET, "POST", "", SL_BODY, 1531420618, 0,
                "X-Slack-Request-Timestamp", "1531420619", "X-Slack-Signature", SL_SIG),
             INTEG_ESIGNATURE);
}

/* ------------------------------------------------------------------------
 * Stripe
 * ---------------------------------------------------------------------- */

/* stripe-dotnet src/StripeTests/Resources/event_test_signature.json (LF line ends) */
#define ST_BODY                                                                                     \
    "{\n  \"id\": \"evt_123\",\n  \"object\": \"event\",\n  \"account\": \"acct_123\",\n  "         \
    "\"api_version\": \"2017-05-25\",\n  \"created\": 1533204620,\n  \"data\": {\n    "             \
    "\"object\": {\n      \"id\": \"cus_123\",\n      \"object\": \"customer\",\n      "            \
    "\"created\": 123456789,\n      \"email\": \"test@stripe.com\",\n      \"livemode\": false,\n " \
    "     \"metadata\": {}\n    }\n  },\n  \"livemode\": false,\n  \"pending_webhooks\": 1,\n  "   \
    "\"request\": {\n    \"id\": \"req_123\",\n    \"idempotency_key\": "                          \
    "\"idempotency-key-123\"\n  },\n  \"type\": \"customer.created\"\n}\n"
#define ST_HEADER                                                                                   \
    "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0="          \
    "63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef"

static void test_stripe(void)
{
    /* EventUtilityTest.ConstructEvent: now = t + 100, tolerance 300 */
    CHECK_OK(VF("stripe", "webhook_secret", "POST", "", ST_BODY, 1533204720, 300, "Stripe-Signature",
                ST_HEADER));
    /* RejectOutdatedTimestamp: now = t + 400 */
    CHECK_RC(VF("stripe", "webhook_secret", "POST", "", ST_BODY, 1533204620 + 400, 300,
                "stripe-signature", ST_HEADER),
             INTEG_EREPLAY);
    CHECK_MSG("Stripe-Signature: timestamp 1533204620 is outside the 300 s tolerance");
    CHECK_OK(VF("stripe", "webhook_secret", "POST", "", ST_BODY, 1533204620 + 400, -1,
                "stripe-signature", ST_HEADER));
    /* RejectIncorrectSignature */
    CHECK_RC(VF("stripe", "webhook_secret", "POST", "", ST_BODY "this_changes_the_json", 1533204720,
                0, "Stripe-Signature", ST_HEADER),
             INTEG_ESIGNATURE);
    CHECK_MSG("Stripe-Signature: no v1 signature matches");
    /* ValidateSignatureHandlesIncorrectHeaderValues: all rejected */
    const char *bad[] = {"t=,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0="
                         "63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef",
                         "t,v1=,v0=", "t,v1=,v0", "t,v1=,", "t,,", ",,", "t"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = VF("stripe", "webhook_secret", "POST", "", "{}", 1533204720, 0, "Stripe-Signature",
                    bad[i]);
        CHECK(rc == INTEG_EINVAL || rc == INTEG_ESIGNATURE);
    }
    /* an extra bad v1 still verifies; v0 alone does not */
    char t[32], msg[64], sig[100], header[300];
    snprintf(t, sizeof t, "%d", 1700000000);
    snprintf(msg, sizeof msg, "%s.{}", t);
    mac(MBEDTLS_MD_SHA256, "whsec_test_secret", msg, strlen(msg), 0, "", sig, sizeof sig);
    snprintf(header, sizeof header, "t=%s,v1=%s,v1=bad_signature", t, sig);
    CHECK_OK(VF("stripe", "whsec_test_secret", "POST", "", "{}", 1700000000, 0, "Stripe-Signature",
                header));
    snprintf(header, sizeof header, "t=%s,v1=deadbeef,v1=%s", t, sig);
    CHECK_OK(VF("stripe", "whsec_test_secret", "POST", "", "{}", 1700000000, 0, "Stripe-Signature",
                header));
    snprintf(header, sizeof header, "t=%s,v0=%s", t, sig);
    CHECK_RC(VF("stripe", "whsec_test_secret", "POST", "", "{}", 1700000000, 0, "Stripe-Signature",
                header),
             INTEG_ESIGNATURE);
    CHECK_MSG("no v1 signature");
    /* the key is the whole "whsec_..." string, not its base64 decoding */
    CHECK_RC(VF("stripe", "test_secret", "POST", "", "{}", 1700000000, 0, "Stripe-Signature", header),
             INTEG_ESIGNATURE);
    snprintf(header, sizeof header, "t=%s,v1=%s", t, sig);
    CHECK_RC(VF("stripe", "whsec_other whsec_test_secretx", "POST", "", "{}", 1700000000, 0,
                "Stripe-Signature", header),
             INTEG_ESIGNATURE);
    CHECK_OK(VF("stripe", "whsec_other whsec_test_secret", "POST", "", "{}", 1700000000, 0,
                "Stripe-Signature", header));
    /* too new is refused too (the window is symmetric) */
    CHECK_RC(VF("stripe", "whsec_test_secret", "POST", "", "{}", 1700000000 - 301, 0,
                "Stripe-Signature", header),
             INTEG_EREPLAY);
    /* the signature is checked before the timestamp (stripe-node's order) */
    CHECK_RC(VF("stripe", "whsec_test_secret", "POST", "", "{} ", 1700000000 + 1000, 0,
                "Stripe-Signature", header),
             INTEG_ESIGNATURE);
    /* no t=, several different t=, missing header, empty body */
    snprintf(header, sizeof header, "v1=%s", sig);
    CHECK_RC(VF("stripe", "whsec_test_secret", "POST", "", "{}", 1700000000, 0, "Stripe-Signature",
                header),
             INTEG_EINVAL);
    CHECK_MSG("Stripe-Signature: no t= timestamp");
    snprintf(header, sizeof header, "t=%s,t=1,v1=%s", t, sig);
    CHECK_RC(VF("stripe", "whsec_test_secret", "POST", "", "{}", 1700000000, 0, "Stripe-Signature",
                header),
             INTEG_EINVAL);
    CHECK_RC(VF("stripe", "whsec_test_secret", "POST", "", "{}", 1700000000, 0, "X-Other", "1"),
             INTEG_EINVAL);
    CHECK_MSG("Stripe-Signature: missing");
    /* an empty body signs like any other (stripe-node accepts an empty Buffer) */
    snprintf(msg, sizeof msg, "%s.", t);
    mac(MBEDTLS_MD_SHA256, "whsec_test_secret", msg, strlen(msg), 0, "", sig, sizeof sig);
    snprintf(header, sizeof header, "t=%s,v1=%s", t, sig);
    CHECK_OK(VF("stripe", "whsec_test_secret", "POST", "", "", 1700000000, 0, "Stripe-Signature",
                header));
}

/* ------------------------------------------------------------------------
 * Shopify, WooCommerce
 * ---------------------------------------------------------------------- */

static void test_shopify(void)
{
    char sig[100], sig_nl[110];
    const char *body = "{\"id\":820982911946154508,\"email\":\"jon@example.com\"}";
    mac(MBEDTLS_MD_SHA256, "hush", body, strlen(body), 1, "", sig, sizeof sig);
    snprintf(sig_nl, sizeof sig_nl, "%s\n", sig); /* Ruby's Base64.encode64 adds "\n" */
    CHECK_OK(VF("shopify", "hush", "POST", "", body, 0, 0, "X-Shopify-Hmac-Sha256", sig));
    CHECK_OK(VF("shopify", "hush", "POST", "", body, 0, 0, "X-Shopify-Hmac-SHA256", sig_nl));
    CHECK_OK(VF("shopify", "hush", "POST", "", body, 0, 0, "shopify-hmac-sha256", sig));
    CHECK_OK(VF("shopify", "new hush", "POST", "", body, 0, 0, "X-Shopify-Hmac-Sha256", sig));
    CHECK_RC(VF("shopify", "Hush", "POST", "", body, 0, 0, "X-Shopify-Hmac-Sha256", sig),
             INTEG_ESIGNATURE);
    CHECK_MSG("X-Shopify-Hmac-Sha256: signature does not match");
    CHECK_RC(VF("shopify", "hush", "POST", "", "{}", 0, 0, "X-Shopify-Hmac-Sha256", sig),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("shopify", "hush", "POST", "", body, 0, 0, "X-Shopify-Hmac-Sha256", "not base64!"),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("shopify", "hush", "POST", "", body, 0, 0, "X-Shopify-Topic", "orders/create"),
             INTEG_EINVAL);
    CHECK_MSG("X-Shopify-Hmac-Sha256: missing");
    CHECK_RC(VF("shopify", "hush", "POST", "", "", 0, 0, "X-Shopify-Hmac-Sha256", sig), INTEG_EINVAL);
    /* hex instead of base64 is not accepted */
    char hex[100];
    mac(MBEDTLS_MD_SHA256, "hush", body, strlen(body), 0, "", hex, sizeof hex);
    CHECK_RC(VF("shopify", "hush", "POST", "", body, 0, 0, "X-Shopify-Hmac-Sha256", hex),
             INTEG_ESIGNATURE);
}

static void test_woocommerce(void)
{
    char sig[100];
    const char *body = "{\"id\":1,\"status\":\"processing\"}";
    mac(MBEDTLS_MD_SHA256, "wc secret", body, strlen(body), 1, "", sig, sizeof sig);
    /* a secret with a space: tried as its parts, then whole */
    CHECK_OK(VF("woocommerce", "wc secret", "POST", "", body, 0, 0, "X-WC-Webhook-Signature", sig));
    mac(MBEDTLS_MD_SHA256, "wc_secret", body, strlen(body), 1, "", sig, sizeof sig);
    CHECK_OK(VF("woocommerce", "wc_secret", "POST", "", body, 0, 0, "X-WC-Webhook-Signature", sig));
    CHECK_OK(VF("woocommerce", "wc_secret", "POST", "", body, 0, 0, "x-wc-webhook-signature", sig));
    CHECK_RC(VF("woocommerce", "wc_secreT", "POST", "", body, 0, 0, "X-WC-Webhook-Signature", sig),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("woocommerce", "wc_secret", "POST", "", body, 0, 0, "X-WC-Webhook-Topic", "order.updated"),
             INTEG_EINVAL);
    CHECK_MSG("X-WC-Webhook-Signature: missing");
    /* the creation ping is unsigned: a handshake */
    CHECK_OK(VF("woocommerce", "wc_secret", "POST", "", "webhook_id=15", 0, 0, "Content-Type",
                "application/x-www-form-urlencoded"));
    CHECK_RC(VF("woocommerce", "wc_secret", "POST", "", "webhook_id=15&x=1", 0, 0, "Content-Type",
                "application/x-www-form-urlencoded"),
             INTEG_EINVAL);
    /* a ping that carries a wrong signature is not a ping */
    CHECK_RC(VF("woocommerce", "wc_secret", "POST", "", "webhook_id=15", 0, 0,
                "X-WC-Webhook-Signature", sig),
             INTEG_ESIGNATURE);
    /* WooCommerce keys the HMAC with the HTML-entity-decoded secret */
    mac(MBEDTLS_MD_SHA256, "a&b<c>'\"", body, strlen(body), 1, "", sig, sizeof sig);
    CHECK_OK(VF("woocommerce", "a&amp;b&lt;c&gt;&#039;&quot;", "POST", "", body, 0, 0,
                "X-WC-Webhook-Signature", sig));
    CHECK_OK(VF("woocommerce", "a&#x26;b&#60;c&#x3E;&#39;&#x22;", "POST", "", body, 0, 0,
                "X-WC-Webhook-Signature", sig));
    CHECK_OK(VF("woocommerce", "a&b<c>'\"", "POST", "", body, 0, 0, "X-WC-Webhook-Signature", sig));
}

/* ------------------------------------------------------------------------
 * HubSpot
 * ---------------------------------------------------------------------- */

/* HubSpot/hubspot-api-python tests/spec/utils/test_signature.py */
#define HS_SECRET "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
#define HS_BODY "{'example_field':'example_value'}"
#define HS_URL "https://www.example.com/webhook_uri"

static void test_hubspot_v1_v2(void)
{
    CHECK_OK(VF("hubspot-v1", HS_SECRET, "POST", HS_URL, HS_BODY, 0, 0, "X-HubSpot-Signature",
                "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750",
                "X-HubSpot-Signature-Version", "v1"));
    /* the v1 docs example */
    const char *docs_body =
        "[{\"eventId\":1,\"subscriptionId\":12345,\"portalId\":62515,\"occurredAt\":1564113600000,"
        "\"subscriptionType\":\"contact.creation\",\"attemptNumber\":0,\"objectId\":123,"
        "\"changeSource\":\"CRM\",\"changeFlag\":\"NEW\",\"appId\":54321}]";
    CHECK_OK(VF("hubspot-v1", HS_SECRET, "POST", HS_URL, docs_body, 0, 0, "x-hubspot-signature",
                "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"));
    CHECK_OK(VF("hubspot-v2", HS_SECRET, "POST", HS_URL, HS_BODY, 0, 0, "X-HubSpot-Signature",
                "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"));
    /* test_is_valid__v2_get_method, also the v2 docs example */
    CHECK_OK(VF("hubspot-v2", HS_SECRET, "GET", HS_URL, "", 0, 0, "X-HubSpot-Signature",
                "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"));
    /* tampering: body, method, URL, secret, scheme version */
    CHECK_RC(VF("hubspot-v1", HS_SECRET, "POST", HS_URL, HS_BODY " ", 0, 0, "X-HubSpot-Signature",
                "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"),
             INTEG_ESIGNATURE);
    CHECK_MSG("X-HubSpot-Signature: signature does not match");
    CHECK_RC(VF("hubspot-v2", HS_SECRET, "PUT", HS_URL, HS_BODY, 0, 0, "X-HubSpot-Signature",
                "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("hubspot-v2", HS_SECRET, "POST", HS_URL "?x=1", HS_BODY, 0, 0, "X-HubSpot-Signature",
                "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("hubspot-v1", "zzz", "POST", HS_URL, HS_BODY, 0, 0, "X-HubSpot-Signature",
                "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("hubspot-v2", HS_SECRET, "POST", HS_URL, HS_BODY, 0, 0, "X-HubSpot-Signature",
                "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"),
             INTEG_ESIGNATURE);
    CHECK_OK(VF("hubspot-v1", "zzz " HS_SECRET, "POST", HS_URL, HS_BODY, 0, 0, "X-HubSpot-Signature",
                "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"));
    CHECK_RC(VF("hubspot-v2", HS_SECRET, "POST", NULL, HS_BODY, 0, 0, "X-HubSpot-Signature",
                "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"),
             INTEG_EINVAL);
    CHECK_MSG("url: missing");
    CHECK_RC(VF("hubspot-v1", HS_SECRET, "POST", HS_URL, HS_BODY, 0, 0, "X-HubSpot-Signature-v3", "x"),
             INTEG_EINVAL);
    CHECK_MSG("X-HubSpot-Signature: missing");
}

static void test_hubspot_v3(void)
{
    /* test_get_signature__v3: timestamp 15000000 ms */
    const char *sig = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=";
    CHECK_OK(VF("hubspot-v3", HS_SECRET, "POST", HS_URL, HS_BODY, 15000, 0, "X-HubSpot-Signature-v3",
                sig, "X-HubSpot-Request-Timestamp", "15000000"));
    CHECK_OK(VF("hubspot-v3", HS_SECRET, "POST", HS_URL, HS_BODY, 15300, 0, "X-HubSpot-Signature-V3",
                sig, "x-hubspot-request-timestamp", "15000000"));
    CHECK_RC(VF("hubspot-v3", HS_SECRET, "POST", HS_URL, HS_BODY, 15301, 0, "X-HubSpot-Signature-v3",
                sig, "X-HubSpot-Request-Timestamp", "15000000"),
             INTEG_EREPLAY);
    CHECK_MSG("X-HubSpot-Request-Timestamp: timestamp 15000000 is outside the 300 s tolerance");
    CHECK_RC(VF("hubspot-v3", HS_SECRET, "POST", HS_URL, HS_BODY, 14699, 0, "X-HubSpot-Signature-v3",
                sig, "X-HubSpot-Request-Timestamp", "15000000"),
             INTEG_EREPLAY);
    CHECK_OK(VF("hubspot-v3", HS_SECRET, "POST", HS_URL, HS_BODY, 0, -1, "X-HubSpot-Signature-v3",
                sig, "X-HubSpot-Request-Timestamp", "15000000"));
    /* the timestamp is signed; milliseconds are the unit */
    CHECK_RC(VF("hubspot-v3", HS_SECRET, "POST", HS_URL, HS_BODY, 15000, 0, "X-HubSpot-Signature-v3",
                sig, "X-HubSpot-Request-Timestamp", "15000001"),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("hubspot-v3", HS_SECRET, "POST", HS_URL, HS_BODY, 15000, 0, "X-HubSpot-Signature-v3",
                sig, "X-HubSpot-Request-Timestamp", "15000"),
             INTEG_EREPLAY);
    CHECK_RC(VF("hubspot-v3", HS_SECRET, "GET", HS_URL, HS_BODY, 15000, 0, "X-HubSpot-Signature-v3",
                sig, "X-HubSpot-Request-Timestamp", "15000000"),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("hubspot-v3", HS_SECRET, "POST", HS_URL, HS_BODY, 15000, 0, "X-HubSpot-Signature-v3",
                sig),
             INTEG_EINVAL);
    CHECK_MSG("X-HubSpot-Request-Timestamp: missing");
    CHECK_RC(VF("hubspot-v3", HS_SECRET, "POST", HS_URL, HS_BODY, 15000, 0, "X-HubSpot-Signature-v3",
                sig, "X-HubSpot-Request-Timestamp", "15000000.0"),
             INTEG_EINVAL);
    /* the URI rule: %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B are decoded before signing */
    const char *enc_url = "https://example.com/hook?email=a%40b.com&path=%2Fx%3Ay&q=%20";
    const char *dec_url = "https://example.com/hook?email=a@b.com&path=/x:y&q=%20";
    char msg[300], s3[100];
    cat(msg, sizeof msg, "POST", dec_url, "{}", "1700000000000");
    mac(MBEDTLS_MD_SHA256, "app-secret", msg, strlen(msg), 1, "", s3, sizeof s3);
    CHECK_OK(VF("hubspot-v3", "app-secret", "POST", enc_url, "{}", 1700000000, 0,
                "X-HubSpot-Signature-v3", s3, "X-HubSpot-Request-Timestamp", "1700000000000"));
    CHECK_OK(VF("hubspot-v3", "app-secret", "POST", dec_url, "{}", 1700000000, 0,
                "X-HubSpot-Signature-v3", s3, "X-HubSpot-Request-Timestamp", "1700000000000"));
    cat(msg, sizeof msg, "POST", enc_url, "{}", "1700000000000");
    mac(MBEDTLS_MD_SHA256, "app-secret", msg, strlen(msg), 1, "", s3, sizeof s3);
    CHECK_OK(VF("hubspot-v3", "other app-secret", "POST", enc_url, "{}", 1700000000, 0,
                "X-HubSpot-Signature-v3", s3, "X-HubSpot-Request-Timestamp", "1700000000000"));
}

/* ------------------------------------------------------------------------
 * SendGrid
 * ---------------------------------------------------------------------- */

/* sendgrid-nodejs packages/eventwebhook/src/eventwebhook.spec.js */
#define SG_KEY                                                                                      \
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+" \
    "2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
#define SG_SIG                                                                                      \
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
#define SG_TS "1600112502"
#define SG_BODY                                                                                     \
    "[{\"email\":\"hello@world.com\",\"event\":\"dropped\",\"reason\":\"Bounced Address\","         \
    "\"sg_event_id\":\"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA\",\"sg_message_id\":"   \
    "\"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0\",\"smtp-id\":"  \
    "\"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>\",\"timestamp\":1600112492}]\r\n"
#define SG_KEY_MULTI                                                                                \
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQ4LIFtWztlsF7skFqOncjD1lun4H5w8XOhyOArHW9RcIx/FfEzx6cikC/" \
    "yPfUvwaX/JScE7Fc9CJD2afQ9Ok3Q=="
#define SG_SIG_MULTI                                                                                \
    "MEYCIQC/I4o6vCgqRYrTljjoVWB/GRWNtxeePlLMHr3x9ETeRQIhAIpV+03nREPTTHWSW0wIOA0EoMPdcNgXa70yCaqDJlu5"
#define SG_BODY_MULTI                                                                               \
    "[{\"email\":\"invalid@gmail.com\",\"event\":\"processed\",\"send_at\":0,\"sg_event_id\":"     \
    "\"cHJvY2Vzc2VkLTE5OTQyMTEyLXFOd0JMZ1BRUWpXNkRKdktRd1NBYnctMA\",\"sg_message_id\":"            \
    "\"qNwBLgPQQjW6DJvKQwSAbw.filterdrecv-canary-547b64655b-cw6zx-1-6089EA4A-56.0\",\"smtp-id\":"  \
    "\"<qNwBLgPQQjW6DJvKQwSAbw@ismtpd0178p1mdw1.sendgrid.net>\",\"timestamp\":1619651146},\r\n{"   \
    "\"email\":\"invalid@gmail.com\",\"event\":\"bounce\",\"ip\":\"167.89.101.76\",\"reason\":"    \
    "\"552 5.2.2 The email account that you tried to reach is over quota and inactive. Please "    \
    "direct the recipient to https://support.google.com/mail/?p=OverQuotaPerm "                    \
    "c17si1130468pgv.34 - gsmtp\",\"sg_event_id\":"                                               \
    "\"Ym91bmNlLTAtMTk5NDIxMTItcU53QkxnUFFRalc2REp2S1F3U0Fidy0w\",\"sg_message_id\":"              \
    "\"qNwBLgPQQjW6DJvKQwSAbw.filterdrecv-canary-547b64655b-cw6zx-1-6089EA4A-56.0\",\"smtp-id\":"  \
    "\"<qNwBLgPQQjW6DJvKQwSAbw@ismtpd0178p1mdw1.sendgrid.net>\",\"status\":\"5.2.2\","             \
    "\"timestamp\":1619651147,\"tls\":1,\"type\":\"blocked\"}]\r\n"

#define SG_SIG_H "X-Twilio-Email-Event-Webhook-Signature"
#define SG_TS_H "X-Twilio-Email-Event-Webhook-Timestamp"

static void test_sendgrid(void)
{
    CHECK_OK(VF("sendgrid", SG_KEY, "POST", "", SG_BODY, 1600112502, 0, SG_SIG_H, SG_SIG, SG_TS_H,
                SG_TS));
    CHECK_OK(VF("sendgrid", SG_KEY_MULTI, "POST", "", SG_BODY_MULTI, 0, -1, SG_SIG_H, SG_SIG_MULTI,
                SG_TS_H, "1619651159"));
    /* "should reject for invalid key" */
    CHECK_RC(VF("sendgrid",
                "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw"
                "8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==",
                "POST", "", SG_BODY, 1600112502, 0, SG_SIG_H, SG_SIG, SG_TS_H, SG_TS),
             INTEG_ESIGNATURE);
    CHECK_MSG(SG_SIG_H ": signature does not verify");
    /* rotation with the other published key */
    CHECK_OK(VF("sendgrid", SG_KEY_MULTI " " SG_KEY, "POST", "", SG_BODY, 1600112502, 0, SG_SIG_H,
                SG_SIG, SG_TS_H, SG_TS));
    /* "should reject for bad payload / signature / timestamp" */
    CHECK_RC(VF("sendgrid", SG_KEY, "POST", "", "payload", 1600112502, 0, SG_SIG_H, SG_SIG, SG_TS_H,
                SG_TS),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("sendgrid", SG_KEY, "POST", "", SG_BODY, 1600112502, 0, SG_SIG_H, SG_SIG_MULTI,
                SG_TS_H, SG_TS),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("sendgrid", SG_KEY, "POST", "", SG_BODY, 1600112502, 0, SG_SIG_H, SG_SIG, SG_TS_H,
                "1600112503"),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("sendgrid", SG_KEY, "POST", "", SG_BODY, 1600112502, 0, SG_SIG_H, "MEUCIGHQ!!", SG_TS_H,
                SG_TS),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("sendgrid", SG_KEY, "POST", "", SG_BODY, 1600112502, 0, SG_SIG_H, "AAAA", SG_TS_H,
                SG_TS),
             INTEG_ESIGNATURE);
    /* stale: checked after the signature */
    CHECK_RC(VF("sendgrid", SG_KEY, "POST", "", SG_BODY, 1600112502 + 301, 0, SG_SIG_H, SG_SIG,
                SG_TS_H, SG_TS),
             INTEG_EREPLAY);
    CHECK_RC(VF("sendgrid", SG_KEY, "POST", "", SG_BODY, 0, 0, SG_SIG_H, SG_SIG, SG_TS_H, SG_TS),
             INTEG_EREPLAY);
    /* bad key material, missing headers */
    CHECK_RC(VF("sendgrid", "not-a-key", "POST", "", SG_BODY, 1600112502, 0, SG_SIG_H, SG_SIG,
                SG_TS_H, SG_TS),
             INTEG_EINVAL);
    CHECK_MSG("P-256 public key");
    CHECK_RC(VF("sendgrid", "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O", "POST", "", SG_BODY,
                1600112502, 0, SG_SIG_H, SG_SIG, SG_TS_H, SG_TS),
             INTEG_EINVAL);
    CHECK_RC(VF("sendgrid", SG_KEY, "POST", "", SG_BODY, 1600112502, 0, SG_TS_H, SG_TS), INTEG_EINVAL);
    CHECK_MSG(SG_SIG_H ": missing");
    CHECK_RC(VF("sendgrid", SG_KEY, "POST", "", SG_BODY, 1600112502, 0, SG_SIG_H, SG_SIG), INTEG_EINVAL);
    CHECK_MSG(SG_TS_H ": missing");
}

/* ------------------------------------------------------------------------
 * Twilio
 * ---------------------------------------------------------------------- */

/* twilio-python tests/unit/test_request_validator.py */
#define TW_URL "https://mycompany.com/myapp.php?foo=1&bar=2"
#define TW_FORM                                                                                     \
    "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To="          \
    "%2B18005551212"
#define TW_FORM_SHUFFLED                                                                            \
    "To=%2B18005551212&From=%2B14158675309&Digits=1234&Caller=%2B14158675309&CallSid="             \
    "CA1234567890ABCDE"
#define FORM_CT "Content-Type", "application/x-www-form-urlencoded"

static void test_twilio(void)
{
    CHECK_OK(VF("twilio", "12345", "POST", TW_URL, TW_FORM, 0, 0, "X-Twilio-Signature",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=", FORM_CT));
    CHECK_OK(VF("twilio", "12345", "POST", TW_URL, TW_FORM_SHUFFLED, 0, 0, "x-twilio-signature",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "content-type",
                "application/x-www-form-urlencoded; charset=utf-8"));
    /* duplicate parameters: sorted values */
    CHECK_OK(VF("twilio", "12345", "POST", TW_URL, "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234",
                0, 0, "X-Twilio-Signature", "IK+Dwps556ElfBT0I3Rgjkr1wJU=", FORM_CT));
    /* ports: removed on https and http, added (443, 80) when absent */
    CHECK_OK(VF("twilio", "12345", "POST", "https://mycompany.com:1234/myapp.php?foo=1&bar=2", TW_FORM,
                0, 0, "X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=", FORM_CT));
    CHECK_OK(VF("twilio", "12345", "POST", "http://mycompany.com:1234/myapp.php?foo=1&bar=2", TW_FORM,
                0, 0, "X-Twilio-Signature", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=", FORM_CT));
    CHECK_OK(VF("twilio", "12345", "POST", TW_URL, TW_FORM, 0, 0, "X-Twilio-Signature",
                "kvajT1Ptam85bY51eRf/AJRuM3w=", FORM_CT));
    CHECK_OK(VF("twilio", "12345", "POST", "http://mycompany.com/myapp.php?foo=1&bar=2", TW_FORM, 0, 0,
                "X-Twilio-Signature", "0ZXoZLH/DfblKGATFgpif+LLRf4=", FORM_CT));
    /* JSON body: bodySHA256 in the URL */
    const char *json = "{\"property\": \"value\", \"boolean\": true}";
    const char *url_body = TW_URL "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    CHECK_OK(VF("twilio", "12345", "POST", url_body, json, 0, 0, "X-Twilio-Signature",
                "a9nBmqA0ju/hNViExpshrM61xv4=", "Content-Type", "application/json"));
    CHECK_RC(VF("twilio", "12345", "POST", url_body, "{\"property\": \"value\", \"boolean\": false}",
                0, 0, "X-Twilio-Signature", "a9nBmqA0ju/hNViExpshrM61xv4=", "Content-Type",
                "application/json"),
             INTEG_ESIGNATURE);
    CHECK_MSG("url: bodySHA256 does not match the body");
    /* a JSON body without bodySHA256 is not signed */
    CHECK_RC(VF("twilio", "12345", "POST", TW_URL, json, 0, 0, "X-Twilio-Signature",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "Content-Type", "application/json"),
             INTEG_ESIGNATURE);
    CHECK_MSG("not signed");
    /* tampering */
    CHECK_RC(VF("twilio", "12345", "POST", TW_URL, TW_FORM "&Extra=1", 0, 0, "X-Twilio-Signature",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=", FORM_CT),
             INTEG_ESIGNATURE);
    CHECK_MSG("X-Twilio-Signature: signature does not match");
    CHECK_RC(VF("twilio", "12345", "POST", "https://mycompany.com/myapp.php?foo=1&bar=3", TW_FORM, 0, 0,
                "X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=", FORM_CT),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("twilio", "54321", "POST", TW_URL, TW_FORM, 0, 0, "X-Twilio-Signature",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=", FORM_CT),
             INTEG_ESIGNATURE);
    CHECK_OK(VF("twilio", "54321 12345", "POST", TW_URL, TW_FORM, 0, 0, "X-Twilio-Signature",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=", FORM_CT));
    /* a GET: the URL only */
    char sig[64];
    mac(MBEDTLS_MD_SHA1, "tok", TW_URL, strlen(TW_URL), 1, "", sig, sizeof sig);
    CHECK_OK(VF("twilio", "tok", "GET", TW_URL, "", 0, 0, "X-Twilio-Signature", sig));
    CHECK_RC(VF("twilio", "tok", "GET", NULL, "", 0, 0, "X-Twilio-Signature", sig), INTEG_EINVAL);
    CHECK_MSG("url: missing");
    CHECK_RC(VF("twilio", "tok", "GET", TW_URL, "", 0, 0, "X-Other", sig), INTEG_EINVAL);
    CHECK_MSG("X-Twilio-Signature: missing");
    /* '+' and %XX in form values decode before signing; malformed escapes stay */
    const char *url2 = "https://a.example/x";
    const char *s2 = "https://a.example/xBodya+b%zzName\xc3\xa9t\xc3\xa9";
    mac(MBEDTLS_MD_SHA1, "tok", s2, strlen(s2), 1, "", sig, sizeof sig);
    CHECK_OK(VF("twilio", "tok", "POST", url2, "Name=%C3%A9t%C3%A9&Body=a%2Bb%zz", 0, 0,
                "X-Twilio-Signature", sig, FORM_CT));
    /* repeated identical values are de-duplicated, as twilio-node's Set */
    const char *s3 = "https://a.example/xa1a2";
    mac(MBEDTLS_MD_SHA1, "tok", s3, strlen(s3), 1, "", sig, sizeof sig);
    CHECK_OK(VF("twilio", "tok", "POST", url2, "a=2&a=1&a=2", 0, 0, "X-Twilio-Signature", sig, FORM_CT));
    /* names sort in JavaScript (UTF-16) order: U+FF21 after U+1F600's surrogates */
    const char *s4 = "https://a.example/x\xf0\x9f\x98\x80" "1\xef\xbc\xa1" "2";
    mac(MBEDTLS_MD_SHA1, "tok", s4, strlen(s4), 1, "", sig, sizeof sig);
    CHECK_OK(VF("twilio", "tok", "POST", url2, "%EF%BC%A1=2&%F0%9F%98%80=1", 0, 0,
                "X-Twilio-Signature", sig, FORM_CT));
}

/* ------------------------------------------------------------------------
 * Basic, Microsoft Graph
 * ---------------------------------------------------------------------- */

static void test_basic(void)
{
    char auth[128], b64[100];
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)"hook:s3cr3t", 11,
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(auth, sizeof auth, "Basic %s", b64);
    CHECK_OK(VF("basic", "hook:s3cr3t", "POST", "", "{}", 0, 0, "Authorization", auth));
    snprintf(auth, sizeof auth, "basic   %s", b64);
    CHECK_OK(VF("basic", "old:pw hook:s3cr3t", "POST", "", "{}", 0, 0, "authorization", auth));
    CHECK_RC(VF("basic", "hook:s3cr3T", "POST", "", "{}", 0, 0, "Authorization", auth),
             INTEG_ESIGNATURE);
    CHECK_MSG("Authorization: credentials do not match");
    CHECK_RC(VF("basic", "hook:s3cr3", "POST", "", "{}", 0, 0, "Authorization", auth), INTEG_ESIGNATURE);
    snprintf(auth, sizeof auth, "Bearer %s", b64);
    CHECK_RC(VF("basic", "hook:s3cr3t", "POST", "", "{}", 0, 0, "Authorization", auth),
             INTEG_ESIGNATURE);
    CHECK_MSG("not Basic");
    CHECK_RC(VF("basic", "hook:s3cr3t", "POST", "", "{}", 0, 0, "Authorization", "Basic !!!!"),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("basic", "hook:s3cr3t", "POST", "", "{}", 0, 0, "Authorization", "Basic"),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("basic", "hook:s3cr3t", "POST", "", "{}", 0, 0, "X-Other", "1"), INTEG_EINVAL);
    CHECK_MSG("Authorization: missing");
    CHECK_RC(VF("basic", "nocolon", "POST", "", "{}", 0, 0, "Authorization", auth), INTEG_EINVAL);
    CHECK_MSG("user:password");
    /* a password with a space: the whole secret string is tried too */
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)"hook:pass word", 14,
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(auth, sizeof auth, "Basic %s", b64);
    CHECK_OK(VF("basic", "hook:pass word", "POST", "", "{}", 0, 0, "Authorization", auth));
    CHECK_RC(VF("basic", "hook:pass", "POST", "", "{}", 0, 0, "Authorization", auth), INTEG_ESIGNATURE);
}

static void test_msgraph(void)
{
    const char *ok_body = "{\"value\":[{\"subscriptionId\":\"s1\",\"clientState\":\"secretClientValue\","
                          "\"changeType\":\"created\"},{\"subscriptionId\":\"s1\",\"clientState\":"
                          "\"secretClientValue\"}]}";
    CHECK_OK(VF("msgraph", "secretClientValue", "POST", "https://h/notify", ok_body, 0, 0,
                "Content-Type", "application/json"));
    CHECK_OK(VF("msgraph", "old secretClientValue", "POST", "https://h/notify", ok_body, 0, 0,
                "Content-Type", "application/json"));
    CHECK_RC(VF("msgraph", "secretClientValuX", "POST", "https://h/notify", ok_body, 0, 0,
                "Content-Type", "application/json"),
             INTEG_ESIGNATURE);
    CHECK_MSG("body: value[0].clientState does not match");
    const char *one_bad = "{\"value\":[{\"clientState\":\"secretClientValue\"},{\"clientState\":\"x\"}]}";
    CHECK_RC(VF("msgraph", "secretClientValue", "POST", "https://h/notify", one_bad, 0, 0,
                "Content-Type", "application/json"),
             INTEG_ESIGNATURE);
    CHECK_MSG("value[1].clientState");
    CHECK_RC(VF("msgraph", "secretClientValue", "POST", "https://h/notify",
                "{\"value\":[{\"subscriptionId\":\"s1\"}]}", 0, 0, "Content-Type", "application/json"),
             INTEG_ESIGNATURE);
    CHECK_MSG("value[0].clientState: missing");
    CHECK_RC(VF("msgraph", "secretClientValue", "POST", "https://h/notify",
                "{\"value\":[{\"clientState\":1}]}", 0, 0, "Content-Type", "application/json"),
             INTEG_ESIGNATURE);
    CHECK_RC(VF("msgraph", "secretClientValue", "POST", "https://h/notify", "{\"value\":[]}", 0, 0,
                "Content-Type", "application/json"),
             INTEG_EINVAL);
    CHECK_RC(VF("msgraph", "secretClientValue", "POST", "https://h/notify", "{\"value\":", 0, 0,
                "Content-Type", "application/json"),
             INTEG_EINVAL);
    CHECK_MSG("body:");
    CHECK_RC(VF("msgraph", "secretClientValue", "POST", "https://h/notify", "[1]", 0, 0,
                "Content-Type", "application/json"),
             INTEG_EINVAL);
    CHECK_RC(VF("msgraph", "secretClientValue", "POST", "https://h/notify", "", 0, 0, "Content-Type",
                "application/json"),
             INTEG_EINVAL);
    /* the validation handshake */
    CHECK_OK(VF("msgraph", "secretClientValue", "POST",
                "https://h/notify?validationToken=Validation%3a+Testing+client+application", "", 0, 0,
                "Content-Type", "text/plain; charset=utf-8"));
    CHECK_OK(VF("msgraph", "secretClientValue", "POST",
                "https://h/notify?a=1&validationToken=abc", "x", 0, 0, "Content-Type",
                "text/plain; charset=utf-8"));
    /* not a handshake: GET, an empty token, or a JSON body */
    CHECK_RC(VF("msgraph", "secretClientValue", "GET", "https://h/notify?validationToken=abc", "", 0,
                0, "Content-Type", "text/plain"),
             INTEG_EINVAL);
    CHECK_RC(VF("msgraph", "secretClientValue", "POST", "https://h/notify?validationToken=", "", 0, 0,
                "Content-Type", "text/plain"),
             INTEG_EINVAL);
    CHECK_RC(VF("msgraph", "secretClientValue", "POST", "https://h/notify?validationToken=abc",
                "{\"value\":[{\"clientState\":\"x\"}]}", 0, 0, "Content-Type", "application/json"),
             INTEG_ESIGNATURE);
    /* a NUL inside the body */
    CHECK_RC(vf("msgraph", "s", "POST", "https://h/", HDRS("Content-Type", "application/json"),
                "{\"value\":[]}\0x", 14, 0, 0),
             INTEG_EINVAL);
}

/* ------------------------------------------------------------------------
 * Arguments, helpers, hostile input
 * ---------------------------------------------------------------------- */

static void test_arguments(void)
{
    CHECK_RC(VF("nope", "s", "POST", "", "{}", 0, 0, "A", "b"), INTEG_EINVAL);
    CHECK_MSG("scheme: unknown \"nope\"");
    CHECK_RC(VF("GitHub", "s", "POST", "", "{}", 0, 0, "A", "b"), INTEG_EINVAL);
    CHECK_RC(VF(NULL, "s", "POST", "", "{}", 0, 0, "A", "b"), INTEG_EINVAL);
    CHECK_MSG("scheme");
    CHECK_RC(VF("github", NULL, "POST", "", "{}", 0, 0, "A", "b"), INTEG_EINVAL);
    CHECK_MSG("secret");
    CHECK_RC(VF("github", "   ", "POST", "", "{}", 0, 0, "A", "b"), INTEG_EINVAL);
    CHECK_RC(integ_webhook_verify("github", "s", "POST", "", NULL, NULL, 2,
                                  (const unsigned char *)"{}", 2, 0, 0),
             INTEG_EINVAL);
    CHECK_RC(integ_webhook_verify("github", "s", "POST", "", NULL, NULL, 0, NULL, 5, 0, 0),
             INTEG_EINVAL);
    CHECK_RC(integ_webhook_verify("github", "s", "POST", "", NULL, NULL, 0, NULL, 0, -5, 0),
             INTEG_EINVAL);
    const char *names[] = {"A", NULL}, *values[] = {"1", "2"};
    CHECK_RC(integ_webhook_verify("github", "s", "POST", "", names, values, 2,
                                  (const unsigned char *)"{}", 2, 0, 0),
             INTEG_EINVAL);
    CHECK_MSG("header_names[1]: NULL");
    /* too many headers, too many secrets, too long a URL */
    static const char *many_n[IG_WH_MAX_HEADERS + 1], *many_v[IG_WH_MAX_HEADERS + 1];
    for (size_t i = 0; i <= IG_WH_MAX_HEADERS; i++) {
        many_n[i] = "X-A";
        many_v[i] = "1";
    }
    CHECK_RC(integ_webhook_verify("github", "s", "POST", "", many_n, many_v, IG_WH_MAX_HEADERS + 1,
                                  (const unsigned char *)"{}", 2, 0, 0),
             INTEG_EINVAL);
    char secrets[200] = "";
    for (int i = 0; i < 17; i++)
        strcat(secrets, "ab ");
    CHECK_RC(VF("github", secrets, "POST", "", "{}", 0, 0, "X-Hub-Signature-256", "sha256=00"),
             INTEG_EINVAL);
    CHECK_MSG("more than 16");
    char *url = malloc(IG_WH_MAX_URL_BYTES + 2);
    memset(url, 'u', IG_WH_MAX_URL_BYTES + 1);
    url[IG_WH_MAX_URL_BYTES + 1] = 0;
    CHECK_RC(VF("twilio", "s", "POST", url, "", 0, 0, "X-Twilio-Signature", "x"), INTEG_EINVAL);
    free(url);
    /* every scheme answers a request without headers with EINVAL (or a handshake) */
    for (size_t i = 0; i < N_SCHEMES; i++) {
        const char *secret = strcmp(k_all_schemes[i], "sendgrid") == 0 ? SG_KEY : "a:b";
        int rc = integ_webhook_verify(k_all_schemes[i], secret, "POST", "https://h/", NULL, NULL, 0,
                                      (const unsigned char *)"{}", 2, 1700000000, 0);
        CHECK_RC(rc, INTEG_EINVAL); /* msgraph: "value" missing */
        CHECK(integ_errmsg()[0] != 0);
    }
}

static void test_helpers(void)
{
    const char *names[] = {"Content-Type", "X-GitHub-Delivery", "svix-id", "Webhook-Id",
                           "stripe-signature", "X-HubSpot-Request-Timestamp", "x-github-delivery"};
    const char *values[] = {"application/json", " 72d3162e-cc78-11e3-81ab-4c9367dc0958 ", "msg_1",
                            "msg_2", "t=1700000000,v1=ab", "1700000000123", "other"};
    size_t n = sizeof names / sizeof names[0];
    CHECK_STR(ig_wh_header(names, values, n, "content-type"), "application/json");
    CHECK(ig_wh_header(names, values, n, "Content-Length") == NULL);
    CHECK(ig_wh_scheme_known("hubspot-v3") && !ig_wh_scheme_known("hubspot"));

    char id[64];
    /* the repeated X-GitHub-Delivery with different values: no id */
    CHECK(!ig_wh_delivery_id("github", names, values, n, NULL, 0, id, sizeof id));
    CHECK(ig_wh_delivery_id("github", names, values, 2, NULL, 0, id, sizeof id));
    CHECK_STR(id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    CHECK(ig_wh_delivery_id("standard", names, values, n, NULL, 0, id, sizeof id));
    CHECK_STR(id, "msg_1");
    CHECK(ig_wh_delivery_id("standard", names + 3, values + 3, 1, NULL, 0, id, sizeof id));
    CHECK_STR(id, "msg_2");
    CHECK(!ig_wh_delivery_id("github", names, values, 2, NULL, 0, id, 10)); /* too small */
    const char *evt = "{\"id\":\"evt_123\",\"object\":\"event\"}";
    CHECK(ig_wh_delivery_id("stripe", names, values, n, (const unsigned char *)evt, strlen(evt), id,
                            sizeof id));
    CHECK_STR(id, "evt_123");
    CHECK(!ig_wh_delivery_id("stripe", names, values, n, (const unsigned char *)"{", 1, id, sizeof id));
    const char *sl = "{\"type\":\"event_callback\",\"event_id\":\"Ev123\"}";
    CHECK(ig_wh_delivery_id("slack", names, values, n, (const unsigned char *)sl, strlen(sl), id,
                            sizeof id));
    CHECK_STR(id, "Ev123");
    CHECK(!ig_wh_delivery_id("basic", names, values, n, NULL, 0, id, sizeof id));

    CHECK(ig_wh_handshake("msgraph", "POST", "https://h/?validationToken=a%20b", NULL, NULL, 0, NULL,
                          0) == IG_WH_HANDSHAKE_MSGRAPH);
    CHECK(ig_wh_handshake("msgraph", "POST", "https://h/", NULL, NULL, 0, NULL, 0) == IG_WH_NOT_HANDSHAKE);
    CHECK(ig_wh_handshake("woocommerce", "POST", "https://h/", NULL, NULL, 0,
                          (const unsigned char *)"webhook_id=7", 12) == IG_WH_HANDSHAKE_WOOCOMMERCE);
    CHECK(ig_wh_handshake("github", "POST", "https://h/?validationToken=x", NULL, NULL, 0, NULL, 0) ==
          IG_WH_NOT_HANDSHAKE);

    char *tok = NULL;
    CHECK_OK(ig_wh_query_param("https://h/?x=1&validationToken=Validation%3A+Testing%20client#frag",
                               "validationToken", &tok));
    CHECK_STR(tok, "Validation: Testing client");
    free(tok);
    CHECK_OK(ig_wh_query_param("https://h/?x=1", "validationToken", &tok));
    CHECK(tok == NULL);
    CHECK_OK(ig_wh_query_param("https://h/?flag&x=%zz", "x", &tok));
    CHECK_STR(tok, "%zz");
    free(tok);
    CHECK_OK(ig_wh_query_param("https://h/?flag&x=%zz", "flag", &tok));
    CHECK_STR(tok, "");
    free(tok);
}

/* xorshift: reproducible random input. */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void rnd_text(char *out, size_t max_len, int printable)
{
    size_t n = rnd() % (max_len + 1);
    static const char pieces[] = "v1,v1a,sha256=v0=t=,= &%+:/?#.0123456789abcdefABCDEF+/=whsec_whpk_";
    for (size_t i = 0; i < n; i++) {
        unsigned c;
        switch (rnd() % 4) {
        case 0:
            c = (unsigned)pieces[rnd() % (sizeof pieces - 1)];
            break;
        case 1:
            c = (unsigned)('0' + rnd() % 10);
            break;
        default:
            c = printable ? (unsigned)(33 + rnd() % 94) : (unsigned)(1 + rnd() % 255);
        }
        out[i] = (char)c;
    }
    out[n] = 0;
}

/* Random headers of the right names with hostile values: never a crash,
 * only the four documented results, and a message whenever it fails. */
static void test_random_hostile_input(void)
{
    static const char *const hnames[] = {
        "webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp",
        "svix-signature", "X-Hub-Signature-256", "X-Hub-Signature", "X-Slack-Request-Timestamp",
        "X-Slack-Signature", "Stripe-Signature", "X-Shopify-Hmac-Sha256", "X-WC-Webhook-Signature",
        "X-HubSpot-Signature", "X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp",
        SG_SIG_H, SG_TS_H, "X-Twilio-Signature", "Authorization", "Content-Type"};
    static char vbuf[24][9000];
    static char body[20000], secret[300], url[600];
    const char *names[24], *values[24];
    size_t bad = 0;
    for (int iter = 0; iter < 6000; iter++) {
        const char *scheme = k_all_schemes[rnd() % N_SCHEMES];
        size_t n = rnd() % 24;
        for (size_t i = 0; i < n; i++) {
            names[i] = hnames[rnd() % (sizeof hnames / sizeof hnames[0])];
            size_t max = rnd() % 50 == 0 ? 8999 : 200;
            rnd_text(vbuf[i], max, 0);
            if (rnd() % 5 == 0 && strstr(names[i], "imestamp"))
                snprintf(vbuf[i], sizeof vbuf[i], "%llu",
                         (unsigned long long)(1700000000 + rnd() % 1000));
            if (rnd() % 8 == 0 && strcmp(names[i], "Content-Type") == 0)
                strcpy(vbuf[i], "application/x-www-form-urlencoded");
            values[i] = vbuf[i];
        }
        size_t blen = rnd() % 3 == 0 ? rnd() % sizeof body : rnd() % 64;
        for (size_t i = 0; i < blen; i++)
            body[i] = (char)(rnd() % 4 ? 32 + rnd() % 95 : rnd() % 256);
        if (rnd() % 4 == 0 && blen > 20)
            memcpy(body, "{\"value\":[{\"clientState\":\"", 26 < blen ? 26 : blen);
        switch (rnd() % 4) {
        case 0:
            strcpy(secret, strcmp(scheme, "sendgrid") == 0 ? SG_KEY : "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
            break;
        case 1:
            strcpy(secret, "user:pw whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYq=");
            break;
        default:
            rnd_text(secret, 250, 1);
        }
        rnd_text(url, 500, 1);
        if (rnd() % 2)
            memcpy(url, "https://", 8);
        int rc = integ_webhook_verify(scheme, secret, rnd() % 2 ? "POST" : "", url, names, values, n,
                                      (const unsigned char *)body, blen, 1700000000,
                                      (int)(rnd() % 3) - 1);
        if (rc != INTEG_OK && rc != INTEG_EINVAL && rc != INTEG_ESIGNATURE && rc != INTEG_EREPLAY) {
            fprintf(stderr, "  scheme %s returned %d: %s\n", scheme, rc, integ_errmsg());
            bad++;
        }
        if (rc != INTEG_OK && !integ_errmsg()[0])
            bad++;
        /* nothing random may verify, except the documented handshakes */
        if (rc == INTEG_OK && strcmp(scheme, "msgraph") != 0 && strcmp(scheme, "woocommerce") != 0) {
            fprintf(stderr, "  scheme %s accepted random input\n", scheme);
            bad++;
        }
    }
    CHECK(bad == 0);
}

/* One-byte tamperings of a valid delivery never verify. */
static void test_every_byte_tampered(void)
{
    const char *body = "{\"event\":\"x\",\"n\":12345}";
    char sig[100], msg[200];
    cat(msg, sizeof msg, "1700000000.", body, NULL, NULL);
    mac(MBEDTLS_MD_SHA256, "whsec_k", msg, strlen(msg), 0, "", sig, sizeof sig);
    char header[200];
    snprintf(header, sizeof header, "t=1700000000,v1=%s", sig);
    CHECK_OK(VF("stripe", "whsec_k", "POST", "", body, 1700000000, 0, "Stripe-Signature", header));
    char b[64];
    size_t bl = strlen(body);
    for (size_t i = 0; i < bl; i++) {
        memcpy(b, body, bl + 1);
        b[i] ^= 0x01;
        CHECK_RC(VF("stripe", "whsec_k", "POST", "", b, 1700000000, 0, "Stripe-Signature", header),
                 INTEG_ESIGNATURE);
    }
    size_t hl = strlen(header);
    for (size_t i = 0; i < hl; i++) {
        char h[200];
        memcpy(h, header, hl + 1);
        h[i] = h[i] == '0' ? '1' : (h[i] == 'a' ? 'b' : '0');
        int rc = VF("stripe", "whsec_k", "POST", "", body, 1700000000, 0, "Stripe-Signature", h);
        CHECK(rc == INTEG_ESIGNATURE || rc == INTEG_EINVAL || rc == INTEG_EREPLAY);
    }
    /* the body's sha256 check for twilio JSON covers every byte too */
    char hex[65], url[200];
    sha256_hex(body, bl, hex);
    snprintf(url, sizeof url, "https://h/x?bodySHA256=%s", hex);
    mac(MBEDTLS_MD_SHA1, "tok", url, strlen(url), 1, "", sig, sizeof sig);
    CHECK_OK(VF("twilio", "tok", "POST", url, body, 0, 0, "X-Twilio-Signature", sig));
    for (size_t i = 0; i < bl; i++) {
        memcpy(b, body, bl + 1);
        b[i] ^= 0x20;
        CHECK_RC(VF("twilio", "tok", "POST", url, b, 0, 0, "X-Twilio-Signature", sig),
                 INTEG_ESIGNATURE);
    }
}

int main(void)
{
    RUN(test_standard_published_vector);
    RUN(test_standard_failures);
    RUN(test_standard_timestamps);
    RUN(test_standard_rotation_and_headers);
    RUN(test_standard_secret_padding);
    RUN(test_standard_ed25519);
    RUN(test_github);
    RUN(test_slack);
    RUN(test_stripe);
    RUN(test_shopify);
    RUN(test_woocommerce);
    RUN(test_hubspot_v1_v2);
    RUN(test_hubspot_v3);
    RUN(test_sendgrid);
    RUN(test_twilio);
    RUN(test_basic);
    RUN(test_msgraph);
    RUN(test_arguments);
    RUN(test_helpers);
    RUN(test_random_hostile_input);
    RUN(test_every_byte_tampered);
    TEST_END();
}
