/* Secrets at rest: master key handling, per-tenant subkeys and sealing.
 * Format and rationale in crypto.h. */
#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "error.h"
#include "integrations/integrations.h"

static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;
static int g_init_rc; /* written once under g_init_once, read-only afterwards */

static void global_init_once(void)
{
    /* sodium_init returns 1 when already initialised: success too. */
    if (sodium_init() < 0) {
        g_init_rc = INTEG_EINTERNAL;
        return;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        g_init_rc = INTEG_ENETWORK;
}

int ig_global_init(void)
{
    pthread_once(&g_init_once, global_init_once);
    if (g_init_rc == INTEG_EINTERNAL)
        return ig_err(INTEG_EINTERNAL, "libsodium failed to initialise");
    if (g_init_rc)
        return ig_err(g_init_rc, "libcurl failed to initialise");
    return INTEG_OK;
}

INTEG_API int integ_generate_master_key(char **out_b64)
{
    ig_err_clear();
    IG_CHECK_ARG(out_b64, "out_b64");
    *out_b64 = NULL;
    int rc = ig_global_init();
    if (rc)
        return rc;
    unsigned char key[IG_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    char *b64 = ig_b64_encode(key, sizeof key);
    sodium_memzero(key, sizeof key);
    if (!b64)
        return ig_err(INTEG_ENOMEM, "out of memory");
    *out_b64 = b64;
    return INTEG_OK;
}

char *ig_b64_encode(const unsigned char *bin, size_t len)
{
    size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *out = malloc(n);
    if (!out)
        return NULL;
    sodium_bin2base64(out, n, bin, len, sodium_base64_VARIANT_ORIGINAL);
    return out;
}

static void derive_key_id(ig_master_key *mk)
{
    unsigned char id[8];
    static const char label[] = "integ-key-id";
    crypto_generichash(id, sizeof id, (const unsigned char *)label, sizeof label - 1, mk->key,
                       sizeof mk->key);
    sodium_bin2hex(mk->key_id, sizeof mk->key_id, id, sizeof id);
}

int ig_master_key_from_b64(ig_master_key *mk, const char *b64, const char *what)
{
    size_t len = 0;
    const char *end = NULL;
    unsigned char buf[IG_KEY_BYTES + 8];
    if (!b64 || !*b64)
        return ig_err(INTEG_EINVAL, "%s: empty master key", what);
    /* Tolerate surrounding whitespace (a key file ends with a newline). */
    if (sodium_base642bin(buf, sizeof buf, b64, strlen(b64), " \t\r\n", &len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        (end && *end)) {
        sodium_memzero(buf, sizeof buf);
        return ig_err(INTEG_EINVAL, "%s: master key is not valid base64", what);
    }
    if (len != IG_KEY_BYTES) {
        sodium_memzero(buf, sizeof buf);
        return ig_err(INTEG_EINVAL, "%s: master key must be 32 bytes (base64 of 32 random bytes), got %zu",
                      what, len);
    }
    memcpy(mk->key, buf, IG_KEY_BYTES);
    sodium_memzero(buf, sizeof buf);
    derive_key_id(mk);
    return INTEG_OK;
}

static void tenant_subkey(const ig_master_key *mk, const char *tenant_id,
                          unsigned char sub[crypto_aead_xchacha20poly1305_ietf_KEYBYTES])
{
    crypto_generichash_state st;
    static const char label[] = "integ-tenant-v1";
    crypto_generichash_init(&st, mk->key, IG_KEY_BYTES, crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
    crypto_generichash_update(&st, (const unsigned char *)label, sizeof label); /* with NUL */
    crypto_generichash_update(&st, (const unsigned char *)tenant_id, strlen(tenant_id));
    crypto_generichash_final(&st, sub, crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
    sodium_memzero(&st, sizeof st);
}

/* "integ-v1" NUL tenant NUL object NUL purpose: NUL separators keep
 * ("ab","c") and ("a","bc") apart. */
static unsigned char *make_ad(const char *tenant_id, const char *object_id, const char *purpose,
                              size_t *out_len)
{
    static const char label[] = "integ-v1";
    size_t lt = strlen(tenant_id), lo = strlen(object_id), lp = strlen(purpose);
    size_t n = sizeof label + lt + 1 + lo + 1 + lp;
    unsigned char *ad = malloc(n);
    if (!ad)
        return NULL;
    unsigned char *p = ad;
    memcpy(p, label, sizeof label);
    p += sizeof label;
    memcpy(p, tenant_id, lt + 1);
    p += lt + 1;
    memcpy(p, object_id, lo + 1);
    p += lo + 1;
    memcpy(p, purpose, lp);
    *out_len = n;
    return ad;
}

int ig_seal(const ig_master_key *mk, const char *tenant_id, const char *object_id,
            const char *purpose, const unsigned char *plain, size_t len, char **out)
{
    *out = NULL;
    if (!tenant_id)
        tenant_id = "";
    size_t ad_len = 0;
    unsigned char *ad = make_ad(tenant_id, object_id, purpose, &ad_len);
    size_t box_len = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + len +
                     crypto_aead_xchacha20poly1305_ietf_ABYTES;
    unsigned char *box = malloc(box_len);
    if (!ad || !box) {
        free(ad);
        free(box);
        return ig_err(INTEG_ENOMEM, "out of memory sealing %s", purpose);
    }
    unsigned char sub[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    tenant_subkey(mk, tenant_id, sub);
    randombytes_buf(box, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(box + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                               &clen, plain, len, ad, ad_len, NULL, box, sub);
    sodium_memzero(sub, sizeof sub);
    free(ad);
    size_t b64_len = sodium_base64_ENCODED_LEN(box_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    size_t total = 3 + 16 + 1 + b64_len;
    char *s = malloc(total);
    if (!s) {
        free(box);
        return ig_err(INTEG_ENOMEM, "out of memory sealing %s", purpose);
    }
    memcpy(s, "v1.", 3);
    memcpy(s + 3, mk->key_id, 16);
    s[19] = '.';
    sodium_bin2base64(s + 20, b64_len, box, box_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    free(box);
    *out = s;
    return INTEG_OK;
}

int ig_open(const ig_master_key *mk, const char *tenant_id, const char *object_id,
            const char *purpose, const char *sealed, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (!tenant_id)
        tenant_id = "";
    if (!sealed || strncmp(sealed, "v1.", 3) != 0 || strlen(sealed) < 20 || sealed[19] != '.')
        return ig_err(INTEG_ECRYPTO, "%s: sealed value has an unknown format", purpose);
    if (memcmp(sealed + 3, mk->key_id, 16) != 0)
        return ig_err(INTEG_ECRYPTO,
                      "%s: sealed under master key id %.16s, but this context's key id is %s "
                      "(wrong master key?)",
                      purpose, sealed + 3, mk->key_id);
    const char *b64 = sealed + 20;
    size_t b64_len = strlen(b64);
    size_t max_bin = b64_len / 4 * 3 + 3;
    unsigned char *box = malloc(max_bin);
    if (!box)
        return ig_err(INTEG_ENOMEM, "out of memory opening %s", purpose);
    size_t box_len = 0;
    if (sodium_base642bin(box, max_bin, b64, b64_len, NULL, &box_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        box_len < crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES) {
        free(box);
        return ig_err(INTEG_ECRYPTO, "%s: sealed value is corrupt", purpose);
    }
    size_t ad_len = 0;
    unsigned char *ad = make_ad(tenant_id, object_id, purpose, &ad_len);
    size_t plain_cap = box_len - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES -
                       crypto_aead_xchacha20poly1305_ietf_ABYTES;
    unsigned char *plain = malloc(plain_cap + 1);
    if (!ad || !plain) {
        free(ad);
        free(plain);
        free(box);
        return ig_err(INTEG_ENOMEM, "out of memory opening %s", purpose);
    }
    unsigned char sub[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    tenant_subkey(mk, tenant_id, sub);
    unsigned long long plen = 0;
    int bad = crypto_aead_xchacha20poly1305_ietf_decrypt(
        plain, &plen, NULL, box + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
        box_len - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, ad, ad_len, box, sub);
    sodium_memzero(sub, sizeof sub);
    free(ad);
    free(box);
    if (bad) {
        ig_free_secret(plain, plain_cap + 1);
        return ig_err(INTEG_ECRYPTO,
                      "%s: authentication failed (tampered, or moved from another record or tenant)",
                      purpose);
    }
    plain[plen] = '\0';
    *out = plain;
    *out_len = (size_t)plen;
    return INTEG_OK;
}

void ig_free_secret(void *p, size_t len)
{
    if (!p)
        return;
    sodium_memzero(p, len);
    free(p);
}
