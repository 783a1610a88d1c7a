/* lib/sha256.c: both compression functions (SHA-NI when this CPU has it,
 * and the portable one, forced) against the published vectors (FIPS 180-2,
 * RFC 4231) and against mbedTLS on every length 0..300, random lengths up to
 * 20000, HMAC keys around the block size, unaligned input and random splits
 * across update() calls; then integ_webhook_verify through each path.
 *
 * The random inputs come from a fixed seed, so a failure reproduces. */
#include <stdint.h>

#include <mbedtls/md.h>
#include <sodium.h>

#include "sha256.h"
#include "test.h"

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

#define MAX_LEN 20000

static const size_t k_key_lens[] = {0, 1, 63, 64, 65, 200};
#define N_KEY_LENS (sizeof k_key_lens / sizeof k_key_lens[0])

static unsigned char g_key[256];
static unsigned char g_msg[MAX_LEN + 16]; /* + room for misaligned starts */
static long g_compared;                 /* digests compared against a reference */
static int g_have_shani;

/* splitmix64: a fixed, portable sequence. */
static uint64_t g_rng = 0x5eed5a256c0ffee5ULL;
static uint64_t rnd(void)
{
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}

static void rnd_fill(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)rnd();
}

/* The paths to test: forced portable, and the CPU's choice when that is
 * SHA-NI. Runs fn(path) with the switch set, then restores it. */
static const char *const k_path_names[] = {"portable", "sha-ni"};

static int n_paths(void)
{
    return g_have_shani ? 2 : 1;
}

static void use_path(int path)
{
    ig_sha256_force_portable(path == 0);
}

static void ref_sha256(const void *m, size_t n, unsigned char out[32])
{
    mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), m, n, out);
}

static void ref_hmac(const void *k, size_t kn, const void *m, size_t n, unsigned char out[32])
{
    /* mbedTLS is given a valid pointer even for an empty key or message. */
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), kn ? k : (const void *)"",
                    kn, n ? m : (const void *)"", n, out);
}

/* Reports the first few mismatches with enough to reproduce them. */
static int g_reported;
static int same(const unsigned char *got, const unsigned char *want, size_t n, const char *what,
                int path, size_t len, long key_len)
{
    g_compared++;
    if (memcmp(got, want, n) == 0)
        return 1;
    if (g_reported++ < 10)
        fprintf(stderr, "  mismatch: %s, path %s, message length %zu, key length %ld\n", what,
                k_path_names[path], len, key_len);
    return 0;
}

/* Hash and HMAC (every key length) of msg[0..len) in one call, compared
 * with mbedTLS. */
static void check_message(int path, const unsigned char *msg, size_t len)
{
    unsigned char want[32], got[32];
    ref_sha256(msg, len, want);
    ig_sha256(msg, len, got);
    CHECK(same(got, want, 32, "sha256 one-shot", path, len, -1));
    for (size_t k = 0; k < N_KEY_LENS; k++) {
        ref_hmac(g_key, k_key_lens[k], msg, len, want);
        ig_hmac_sha256(g_key, k_key_lens[k], msg, len, got);
        CHECK(same(got, want, 32, "hmac one-shot", path, len, (long)k_key_lens[k]));
    }
}

/* The next chunk size for a random split: mostly small (around and across
 * block boundaries, 0 often), sometimes large. */
static size_t rnd_chunk(size_t left)
{
    size_t c;
    switch (rnd_below(8)) {
    case 0:
        c = 0;
        break;
    case 1:
        c = 1;
        break;
    case 2:
    case 3:
        c = rnd_below(65);
        break;
    case 4:
    case 5:
        c = rnd_below(200);
        break;
    case 6:
        c = 64 * (1 + rnd_below(4));
        break;
    default:
        c = rnd_below(4096);
        break;
    }
    return c < left ? c : left;
}

static void test_force_portable(void)
{
    ig_sha256_force_portable(1);
    CHECK(ig_sha256_accelerated() == 0);
    ig_sha256_force_portable(0);
    CHECK(ig_sha256_accelerated() == g_have_shani);
}

/* ------------------------------------------------------------------------
 * Published vectors
 * ---------------------------------------------------------------------- */

static void hex_to_bin(const char *hex, unsigned char *out, size_t n)
{
    size_t got = 0;
    sodium_hex2bin(out, n, hex, strlen(hex), NULL, &got, NULL);
    CHECK(got == n);
}

static void test_fips_180_2(void)
{
    static const struct {
        const char *msg;
        size_t repeat; /* msg repeated this many times */
        const char *hex;
    } v[] = {
        {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmn"
         "opqrsmnopqrstnopqrstu",
         1, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
        {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    };
    for (int path = 0; path < n_paths(); path++) {
        use_path(path);
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            unsigned char want[32], got[32];
            hex_to_bin(v[i].hex, want, 32);
            size_t len = strlen(v[i].msg);
            ig_sha256_ctx c;
            ig_sha256_init(&c);
            for (size_t r = 0; r < v[i].repeat; r++)
                ig_sha256_update(&c, v[i].msg, len);
            ig_sha256_final(&c, got);
            CHECK(same(got, want, 32, "FIPS 180-2 vector", path, len * v[i].repeat, -1));
            if (v[i].repeat == 1) {
                /* One byte at a time, with an empty update between each. */
                ig_sha256_init(&c);
                for (size_t b = 0; b < len; b++) {
                    ig_sha256_update(&c, v[i].msg + b, 1);
                    ig_sha256_update(&c, NULL, 0);
                }
                ig_sha256_final(&c, got);
                CHECK(same(got, want, 32, "FIPS 180-2 vector, bytewise", path, len, -1));
                ig_sha256(v[i].msg, len, got);
                CHECK(same(got, want, 32, "FIPS 180-2 vector, one-shot", path, len, -1));
                ref_sha256(v[i].msg, len, got);
                CHECK(same(got, want, 32, "FIPS 180-2 vector, mbedTLS", path, len, -1));
            }
        }
    }
    use_path(1);
}

static void test_rfc_4231(void)
{
    unsigned char k20b[20], kaa20[20], k25[25], k0c[20], kaa131[131], dd50[50], cd50[50];
    memset(k20b, 0x0b, sizeof k20b);
    memset(kaa20, 0xaa, sizeof kaa20);
    for (int i = 0; i < 25; i++)
        k25[i] = (unsigned char)(i + 1);
    memset(k0c, 0x0c, sizeof k0c);
    memset(kaa131, 0xaa, sizeof kaa131);
    memset(dd50, 0xdd, sizeof dd50);
    memset(cd50, 0xcd, sizeof cd50);
    static const char m6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    static const char m7[] = "This is a test using a larger than block-size key and a larger than "
                             "block-size data. The key needs to be hashed before being used by the "
                             "HMAC algorithm.";
    const struct {
        const void *key;
        size_t key_len;
        const void *msg;
        size_t msg_len;
        size_t cmp; /* test case 5 is truncated to 128 bits */
        const char *hex;
    } v[] = {
        {k20b, 20, "Hi There", 8, 32,
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"Jefe", 4, "what do ya want for nothing?", 28, 32,
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {kaa20, 20, dd50, 50, 32, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {k25, 25, cd50, 50, 32, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {k0c, 20, "Test With Truncation", 20, 16, "a3b6167473100ee06e0c796c2955552b"},
        {kaa131, 131, m6, sizeof m6 - 1, 32,
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {kaa131, 131, m7, sizeof m7 - 1, 32,
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    for (int path = 0; path < n_paths(); path++) {
        use_path(path);
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            unsigned char want[32], got[32];
            hex_to_bin(v[i].hex, want, v[i].cmp);
            ig_hmac_sha256(v[i].key, v[i].key_len, v[i].msg, v[i].msg_len, got);
            CHECK(same(got, want, v[i].cmp, "RFC 4231 vector", path, v[i].msg_len,
                       (long)v[i].key_len));
            /* Incremental, one byte at a time. */
            ig_hmac_sha256_ctx h;
            ig_hmac_sha256_init(&h, v[i].key, v[i].key_len);
            for (size_t b = 0; b < v[i].msg_len; b++)
                ig_hmac_sha256_update(&h, (const unsigned char *)v[i].msg + b, 1);
            ig_hmac_sha256_final(&h, got);
            CHECK(same(got, want, v[i].cmp, "RFC 4231 vector, bytewise", path, v[i].msg_len,
                       (long)v[i].key_len));
            ref_hmac(v[i].key, v[i].key_len, v[i].msg, v[i].msg_len, got);
            CHECK(same(got, want, v[i].cmp, "RFC 4231 vector, mbedTLS", path, v[i].msg_len,
                       (long)v[i].key_len));
        }
    }
    use_path(1);
}

/* ------------------------------------------------------------------------
 * Against mbedTLS
 * ---------------------------------------------------------------------- */

static void test_every_length_0_to_300(void)
{
    for (int path = 0; path < n_paths(); path++) {
        use_path(path);
        for (size_t len = 0; len <= 300; len++)
            check_message(path, g_msg, len);
    }
    use_path(1);
}

static void test_random_lengths(void)
{
    for (int path = 0; path < n_paths(); path++) {
        use_path(path);
        for (int i = 0; i < 150; i++) {
            size_t len = rnd_below(MAX_LEN + 1);
            rnd_fill(g_msg, len);
            check_message(path, g_msg, len);
        }
        check_message(path, g_msg, MAX_LEN);
    }
    use_path(1);
}

/* Input at every alignment: SHA-NI loads blocks straight from the caller. */
static void test_unaligned_input(void)
{
    rnd_fill(g_msg, sizeof g_msg);
    for (int path = 0; path < n_paths(); path++) {
        use_path(path);
        for (size_t off = 0; off < 16; off++)
            for (size_t len = 0; len <= 1100; len += 137)
                check_message(path, g_msg + off, len);
    }
    use_path(1);
}

static void test_random_splits(void)
{
    for (int path = 0; path < n_paths(); path++) {
        use_path(path);
        for (int i = 0; i < 300; i++) {
            size_t len = i < 100 ? rnd_below(301) : rnd_below(MAX_LEN + 1);
            size_t off = rnd_below(16);
            const unsigned char *msg = g_msg + off;
            rnd_fill(g_msg, len + off);
            size_t key_len = k_key_lens[rnd_below(N_KEY_LENS)];
            ig_sha256_ctx c;
            ig_hmac_sha256_ctx h;
            ig_sha256_init(&c);
            ig_hmac_sha256_init(&h, key_len ? g_key : NULL, key_len);
            size_t done = 0, calls = 0;
            while (done < len || calls < 3) {
                size_t n = rnd_chunk(len - done);
                ig_sha256_update(&c, n ? msg + done : NULL, n);
                ig_hmac_sha256_update(&h, n ? msg + done : NULL, n);
                done += n;
                calls++;
            }
            unsigned char want[32], got[32];
            ig_sha256_final(&c, got);
            ref_sha256(msg, len, want);
            CHECK(same(got, want, 32, "sha256 split", path, len, -1));
            ig_hmac_sha256_final(&h, got);
            ref_hmac(g_key, key_len, msg, len, want);
            CHECK(same(got, want, 32, "hmac split", path, len, (long)key_len));
        }
    }
    use_path(1);
}

/* A context keeps the implementation it was initialised with. */
static void test_switch_mid_message(void)
{
    if (!g_have_shani)
        return;
    rnd_fill(g_msg, 1000);
    for (int first = 0; first < 2; first++) {
        unsigned char want[32], got[32];
        use_path(first);
        ig_sha256_ctx c;
        ig_sha256_init(&c);
        ig_sha256_update(&c, g_msg, 500);
        use_path(!first);
        ig_sha256_update(&c, g_msg + 500, 500);
        ig_sha256_final(&c, got);
        ref_sha256(g_msg, 1000, want);
        CHECK(same(got, want, 32, "sha256 across a switch", first, 1000, -1));
    }
    use_path(1);
}

/* ------------------------------------------------------------------------
 * Through integ_webhook_verify (its digest() uses this module for SHA-256)
 * ---------------------------------------------------------------------- */

static void test_webhook_verify_each_path(void)
{
    /* standard-webhooks libraries/javascript/src/webhook.test.ts vector. */
    const char *names[] = {"webhook-id", "webhook-timestamp", "webhook-signature"};
    const char *good[] = {"msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
                          "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="};
    const char *bad[] = {"msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
                         "v1,h0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="};
    const char *body = "{\"test\": 2432232314}";
    const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    /* Shopify: base64 HMAC-SHA256 of a 16 KiB body, signed by mbedTLS. */
    size_t big_len = 16384;
    rnd_fill(g_msg, big_len);
    unsigned char d[32];
    ref_hmac("hush", 4, g_msg, big_len, d);
    char sig[64];
    sodium_bin2base64(sig, sizeof sig, d, 32, sodium_base64_VARIANT_ORIGINAL);
    const char *sh_names[] = {"X-Shopify-Hmac-Sha256"};
    const char *sh_values[] = {sig};

    for (int path = 0; path < n_paths(); path++) {
        use_path(path);
        CHECK_OK(integ_webhook_verify("standard", secret, "POST", "https://x", names, good, 3,
                                      (const unsigned char *)body, strlen(body), 1614265330, 0));
        CHECK_RC(integ_webhook_verify("standard", secret, "POST", "https://x", names, bad, 3,
                                      (const unsigned char *)body, strlen(body), 1614265330, 0),
                 INTEG_ESIGNATURE);
        CHECK_OK(integ_webhook_verify("shopify", "hush", "POST", "", sh_names, sh_values, 1, g_msg,
                                      big_len, 0, 0));
        g_msg[big_len / 2] ^= 1;
        CHECK_RC(integ_webhook_verify("shopify", "hush", "POST", "", sh_names, sh_values, 1, g_msg,
                                      big_len, 0, 0),
                 INTEG_ESIGNATURE);
        g_msg[big_len / 2] ^= 1;
        g_compared += 4;
    }
    use_path(1);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    ig_sha256_force_portable(0);
    g_have_shani = ig_sha256_accelerated();
    printf("SHA-NI: %s\n", g_have_shani ? "available, both paths tested"
                                        : "not available, portable path only");
    rnd_fill(g_key, sizeof g_key);
    rnd_fill(g_msg, sizeof g_msg);
    RUN(test_force_portable);
    RUN(test_fips_180_2);
    RUN(test_rfc_4231);
    RUN(test_every_length_0_to_300);
    RUN(test_random_lengths);
    RUN(test_unaligned_input);
    RUN(test_random_splits);
    RUN(test_switch_mid_message);
    RUN(test_webhook_verify_each_path);
    printf("%ld digests compared (%d path%s)\n", g_compared, n_paths(), n_paths() > 1 ? "s" : "");
    TEST_END();
}
