/* webhook_verify: integ_webhook_verify, the stateless check of one webhook
 * delivery under its provider's signing scheme (doc/webhooks.md has the
 * rules, with sources), and the request helpers the receiver shares.
 *
 * How results are chosen, for every scheme:
 *  - INTEG_EINVAL: a bad argument or secret, a header we need that is
 *    absent, empty, longer than IG_WH_MAX_HEADER_BYTES or repeated with
 *    different values, an unparsable timestamp. The message names it.
 *  - INTEG_ESIGNATURE: the signature is there but does not verify, whatever
 *    its shape (the providers' SDKs answer "false" alike).
 *  - INTEG_EREPLAY: the timestamp is outside the tolerance window. Schemes
 *    check it where their reference SDK does: before the signature for
 *    Standard Webhooks, Slack and HubSpot v3, after it for Stripe and
 *    SendGrid. The window is symmetric everywhere (see doc/webhooks.md).
 *  - Comparisons of secret-dependent bytes are constant time
 *    (sodium_memcmp on equal, public lengths); Basic credentials and Graph
 *    clientState are compared as SHA-256 digests so no length leaks. */
#include "webhook_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <sodium.h>

#include "crypto.h"
#include "error.h"
#include "integrations/integrations.h"
#include "json.h"
#include "sha256.h"

/* ------------------------------------------------------------------------
 * Schemes
 * ---------------------------------------------------------------------- */

enum wh_scheme {
    WH_STANDARD,
    WH_STANDARD_ED25519,
    WH_GITHUB,
    WH_GITHUB_SHA1,
    WH_SLACK,
    WH_STRIPE,
    WH_SHOPIFY,
    WH_WOOCOMMERCE,
    WH_HUBSPOT_V1,
    WH_HUBSPOT_V2,
    WH_HUBSPOT_V3,
    WH_SENDGRID,
    WH_TWILIO,
    WH_BASIC,
    WH_MSGRAPH,
    WH_N_SCHEMES
};

static const char *const k_scheme_names[WH_N_SCHEMES] = {
    "standard",   "standard-ed25519", "github",     "github-sha1", "slack",
    "stripe",     "shopify",          "woocommerce", "hubspot-v1", "hubspot-v2",
    "hubspot-v3", "sendgrid",         "twilio",     "basic",       "msgraph",
};

static int scheme_id(const char *scheme)
{
    if (!scheme)
        return -1;
    for (int i = 0; i < WH_N_SCHEMES; i++)
        if (strcmp(scheme, k_scheme_names[i]) == 0)
            return i;
    return -1;
}

int ig_wh_scheme_known(const char *scheme)
{
    return scheme_id(scheme) >= 0;
}

const char *ig_wh_scheme_list(void)
{
    return "standard, standard-ed25519, github, github-sha1, slack, stripe, shopify, "
           "woocommerce, hubspot-v1, hubspot-v2, hubspot-v3, sendgrid, twilio, basic, msgraph";
}

/* ------------------------------------------------------------------------
 * Small helpers: slices, headers, timestamps
 * ---------------------------------------------------------------------- */

typedef struct slice {
    const char *p; /* NULL: absent */
    size_t n;
} slice;

typedef struct part {
    const void *p;
    size_t n;
} part;

static int ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
            return 0;
    return *a == *b;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = ascii_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int slice_eq_str(slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.n == n && memcmp(s.p, lit, n) == 0;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static slice trim(const char *s, size_t n)
{
    while (n && is_ows(*s)) {
        s++;
        n--;
    }
    while (n && is_ows(s[n - 1]))
        n--;
    return (slice){s, n};
}

/* Look a header up: *out is its trimmed value, {NULL, 0} when absent.
 * INTEG_EINVAL when a value is too long or the header is repeated with
 * different values (identical repeats, as some proxies produce, are fine). */
static int find_header(const char *const *names, const char *const *values, size_t n,
                       const char *name, slice *out)
{
    out->p = NULL;
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (!names[i] || !values[i] || !ieq(names[i], name))
            continue;
        size_t len = strnlen(values[i], IG_WH_MAX_HEADER_BYTES + 1);
        if (len > IG_WH_MAX_HEADER_BYTES)
            return ig_err(INTEG_EINVAL, "%s: longer than %d bytes", name, IG_WH_MAX_HEADER_BYTES);
        slice v = trim(values[i], len);
        if (!out->p)
            *out = v;
        else if (v.n != out->n || memcmp(v.p, out->p, v.n) != 0)
            return ig_err(INTEG_EINVAL, "%s: repeated with different values", name);
    }
    return INTEG_OK;
}

const char *ig_wh_header(const char *const *names, const char *const *values, size_t n,
                         const char *name)
{
    if (!names || !values || !name)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (names[i] && values[i] && ieq(names[i], name))
            return values[i];
    return NULL;
}

/* A decimal integer of 1..18 digits, nothing else. */
static int parse_int(slice s, int64_t *out)
{
    *out = 0;
    if (!s.p || s.n == 0 || s.n > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        v = v * 10 + (s.p[i] - '0');
    }
    *out = v;
    return 0;
}

/* Standard base64 (padding optional, non-zero trailing bits ignored, as
 * Node's Buffer and Python's b64decode accept). Returns the decoded length,
 * or -1 when not base64 or longer than cap. */
static long b64_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    size_t pad = 0;
    while (n && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (n % 4 == 1 || (pad && (n + pad) % 4 != 0))
        return -1;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i], v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (long)o;
}

/* Constant-time equality of two byte strings whose lengths are public. */
static int ct_eq(const void *a, size_t an, const void *b, size_t bn)
{
    if (an != bn || an == 0)
        return 0;
    return sodium_memcmp(a, b, an) == 0;
}

/* ------------------------------------------------------------------------
 * Digests (SHA-256 by sha256.c, the rest by mbedTLS; HMAC with keys of any
 * length)
 * ---------------------------------------------------------------------- */

/* HMAC (key != NULL) or plain hash over the concatenated parts. */
static int digest(mbedtls_md_type_t type, const void *key, size_t key_len, const part *parts,
                  size_t n_parts, unsigned char out[MBEDTLS_MD_MAX_SIZE], size_t *out_len)
{
    /* Set on every path: GCC cannot see that ig_err never returns INTEG_OK
     * and, once this is inlined, warns about the callers' lengths. */
    *out_len = 0;
    /* Nearly every scheme signs with HMAC-SHA256 over the whole body, so its
     * speed is the verifier's: sha256.c uses the CPU's SHA extensions where
     * mbedTLS 2.28 has only portable C. Same results (tests/unit/test_sha256.c). */
    if (type == MBEDTLS_MD_SHA256) {
        if (key) {
            ig_hmac_sha256_ctx h;
            ig_hmac_sha256_init(&h, key, key_len);
            for (size_t i = 0; i < n_parts; i++)
                ig_hmac_sha256_update(&h, parts[i].p, parts[i].n);
            ig_hmac_sha256_final(&h, out);
        } else {
            ig_sha256_ctx h;
            ig_sha256_init(&h);
            for (size_t i = 0; i < n_parts; i++)
                ig_sha256_update(&h, parts[i].p, parts[i].n);
            ig_sha256_final(&h, out);
        }
        *out_len = IG_SHA256_DIGEST_LEN;
        return INTEG_OK;
    }
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(type);
    if (!info)
        return ig_err(INTEG_EINTERNAL, "mbedTLS lacks a required digest");
    mbedtls_md_context_t ctx;
    mbedtls_md_init(&ctx);
    int hmac = key != NULL;
    int ret = mbedtls_md_setup(&ctx, info, hmac);
    if (!ret)
        ret = hmac ? mbedtls_md_hmac_starts(&ctx, key, key_len) : mbedtls_md_starts(&ctx);
    for (size_t i = 0; !ret && i < n_parts; i++) {
        if (!parts[i].n)
            continue;
        ret = hmac ? mbedtls_md_hmac_update(&ctx, parts[i].p, parts[i].n)
                   : mbedtls_md_update(&ctx, parts[i].p, parts[i].n);
    }
    if (!ret)
        ret = hmac ? mbedtls_md_hmac_finish(&ctx, out) : mbedtls_md_finish(&ctx, out);
    mbedtls_md_free(&ctx);
    if (ret)
        return ig_err(INTEG_EINTERNAL, "mbedTLS digest failed (-0x%04x)", (unsigned)-ret);
    *out_len = mbedtls_md_get_size(info);
    return INTEG_OK;
}

/* Lowercase hex of a digest into out[2 * MBEDTLS_MD_MAX_SIZE + 1]. */
static size_t to_hex(const unsigned char *d, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * MBEDTLS_MD_MAX_SIZE + 1, d, n);
    return 2 * n;
}

#define B64_DIGEST_CAP (4 * ((MBEDTLS_MD_MAX_SIZE + 2) / 3) + 1)

/* Padded standard base64 of a digest into out[B64_DIGEST_CAP]. */
static size_t to_b64(const unsigned char *d, size_t n, char *out)
{
    sodium_bin2base64(out, B64_DIGEST_CAP, d, n, sodium_base64_VARIANT_ORIGINAL);
    return strlen(out);
}

/* ------------------------------------------------------------------------
 * The request being verified
 * ---------------------------------------------------------------------- */

typedef struct wh_req {
    int scheme;
    const char *method; /* "" when NULL */
    const char *url;    /* "" when NULL */
    const char *const *names;
    const char *const *values;
    size_t n;
    const unsigned char *body;
    size_t body_len;
    int64_t now;       /* unix seconds */
    int64_t tolerance; /* seconds; < 0: skip the timestamp check */
    slice secrets[IG_WH_MAX_SECRETS];
    size_t n_secrets;
} wh_req;

static int hdr(const wh_req *r, const char *name, slice *out)
{
    return find_header(r->names, r->values, r->n, name, out);
}

/* A header the scheme cannot do without: missing or empty is INTEG_EINVAL. */
static int need(const wh_req *r, const char *name, slice *out)
{
    int rc = hdr(r, name, out);
    if (rc)
        return rc;
    if (!out->p)
        return ig_err(INTEG_EINVAL, "%s: missing", name);
    if (!out->n)
        return ig_err(INTEG_EINVAL, "%s: empty", name);
    return INTEG_OK;
}

static int need_ts(const char *name, slice s, int64_t *out)
{
    if (parse_int(s, out))
        return ig_err(INTEG_EINVAL, "%s: not a decimal integer timestamp", name);
    return INTEG_OK;
}

/* The symmetric window: |now - ts| <= tolerance (ts in seconds, or in
 * milliseconds when unit is 1000). */
static int check_window(const wh_req *r, const char *name, int64_t ts, int64_t unit)
{
    if (r->tolerance < 0)
        return INTEG_OK;
    int64_t d = r->now * unit - ts;
    int64_t tol = r->tolerance * unit;
    if (d > tol || d < -tol)
        return ig_err(INTEG_EREPLAY, "%s: timestamp %lld is outside the %lld s tolerance", name,
                      (long long)ts, (long long)r->tolerance);
    return INTEG_OK;
}

static int no_match(const wh_req *r, const char *name, const char *what)
{
    if (r->n_secrets > 1)
        return ig_err(INTEG_ESIGNATURE, "%s: %s (%zu secrets tried)", name, what, r->n_secrets);
    return ig_err(INTEG_ESIGNATURE, "%s: %s", name, what);
}

/* Schemes whose secret is raw text used as is (a key, token, password or
 * clientState): for them a secret that itself contains spaces is also tried
 * whole, after its space-separated parts. */
static int raw_secret_scheme(int scheme)
{
    return scheme != WH_STANDARD && scheme != WH_STANDARD_ED25519 && scheme != WH_SENDGRID;
}

static int split_secrets(wh_req *r, const char *secret)
{
    size_t len = strnlen(secret, 65537);
    if (len > 65536)
        return ig_err(INTEG_EINVAL, "secret: longer than 65536 bytes");
    const char *p = secret, *end = secret + len;
    while (p < end) {
        while (p < end && is_ows(*p))
            p++;
        if (p == end)
            break;
        const char *e = p;
        while (e < end && !is_ows(*e))
            e++;
        if (r->n_secrets == IG_WH_MAX_SECRETS)
            return ig_err(INTEG_EINVAL, "secret: more than %d space-separated secrets",
                          IG_WH_MAX_SECRETS);
        r->secrets[r->n_secrets++] = (slice){p, (size_t)(e - p)};
        p = e;
    }
    if (!r->n_secrets)
        return ig_err(INTEG_EINVAL, "secret: empty");
    if (r->n_secrets > 1 && raw_secret_scheme(r->scheme)) {
        slice whole = trim(secret, len);
        if (r->n_secrets == IG_WH_MAX_SECRETS)
            return ig_err(INTEG_EINVAL, "secret: more than %d space-separated secrets",
                          IG_WH_MAX_SECRETS - 1);
        r->secrets[r->n_secrets++] = whole;
    }
    return INTEG_OK;
}

static int body_not_empty(const wh_req *r, const char *provider)
{
    if (r->body_len == 0)
        return ig_err(INTEG_EINVAL, "body: empty (%s always signs a payload)", provider);
    return INTEG_OK;
}

/* ------------------------------------------------------------------------
 * Standard Webhooks / Svix (HMAC v1 and ed25519 v1a)
 * ---------------------------------------------------------------------- */

/* svix-X when present (the svix SDK prefers it), else webhook-X. */
static int std_header(const wh_req *r, int which, slice *out, const char **used)
{
    static const char *const svix[] = {"svix-id", "svix-timestamp", "svix-signature"};
    static const char *const std[] = {"webhook-id", "webhook-timestamp", "webhook-signature"};
    int rc = hdr(r, svix[which], out);
    if (rc)
        return rc;
    *used = svix[which];
    if (!out->p) {
        *used = std[which];
        if ((rc = hdr(r, std[which], out)))
            return rc;
    }
    if (!out->p)
        return ig_err(INTEG_EINVAL, "%s: missing", *used);
    if (!out->n)
        return ig_err(INTEG_EINVAL, "%s: empty", *used);
    return INTEG_OK;
}

enum { STD_ID, STD_TS, STD_SIG };

/* Iterate the space-separated "version,signature" entries: returns 0 at the
 * end. An entry without a comma yields an absent signature. */
static int next_sig_entry(slice *rest, slice *version, slice *sig)
{
    if (!rest->n)
        return 0;
    const char *p = rest->p, *end = rest->p + rest->n;
    const char *e = memchr(p, ' ', rest->n);
    if (!e)
        e = end;
    rest->p = e < end ? e + 1 : end;
    rest->n = (size_t)(end - rest->p);
    const char *comma = memchr(p, ',', (size_t)(e - p));
    if (!comma) {
        *version = (slice){p, (size_t)(e - p)};
        *sig = (slice){NULL, 0};
        return 1;
    }
    *version = (slice){p, (size_t)(comma - p)};
    const char *s = comma + 1;
    const char *c2 = memchr(s, ',', (size_t)(e - s));
    *sig = (slice){s, (size_t)((c2 ? c2 : e) - s)};
    return 1;
}

#define STD_MAX_KEY 256

static int has_prefix(slice s, const char *pre)
{
    size_t n = strlen(pre);
    return s.n >= n && memcmp(s.p, pre, n) == 0;
}

static int v_standard(const wh_req *r)
{
    unsigned char keys[IG_WH_MAX_SECRETS][STD_MAX_KEY];
    size_t key_lens[IG_WH_MAX_SECRETS];
    int rc = INTEG_OK;

    for (size_t i = 0; i < r->n_secrets; i++) {
        slice s = r->secrets[i];
        if (has_prefix(s, "whpk_") || has_prefix(s, "whsk_")) {
            rc = ig_err(INTEG_EINVAL,
                        "secret: a %.5s key belongs to scheme standard-ed25519 (which needs the "
                        "whpk_ public key)",
                        s.p);
            goto out;
        }
        if (has_prefix(s, "whsec_")) {
            s.p += 6;
            s.n -= 6;
        }
        long n = b64_decode(s.p, s.n, keys[i], STD_MAX_KEY);
        if (n < 0) {
            rc = ig_err(INTEG_EINVAL, "secret: not whsec_ followed by base64 (of at most %d bytes)",
                        STD_MAX_KEY);
            goto out;
        }
        if (n == 0) {
            rc = ig_err(INTEG_EINVAL, "secret: empty key after whsec_");
            goto out;
        }
        key_lens[i] = (size_t)n;
    }

    slice id, ts, sig;
    const char *id_name, *ts_name, *sig_name;
    int64_t t;
    if ((rc = std_header(r, STD_ID, &id, &id_name)) || (rc = std_header(r, STD_TS, &ts, &ts_name)) ||
        (rc = std_header(r, STD_SIG, &sig, &sig_name)) || (rc = need_ts(ts_name, ts, &t)) ||
        (rc = check_window(r, ts_name, t, 1)))
        goto out;

    for (size_t i = 0; i < r->n_secrets; i++) {
        part parts[] = {{id.p, id.n}, {".", 1}, {ts.p, ts.n}, {".", 1}, {r->body, r->body_len}};
        unsigned char mac[MBEDTLS_MD_MAX_SIZE];
        size_t mac_len;
        char want[B64_DIGEST_CAP];
        if ((rc = digest(MBEDTLS_MD_SHA256, keys[i], key_lens[i], parts, 5, mac, &mac_len)))
            goto out;
        size_t want_len = to_b64(mac, mac_len, want);
        slice rest = sig, ver, s;
        while (next_sig_entry(&rest, &ver, &s)) {
            if (!slice_eq_str(ver, "v1") || !s.p)
                continue;
            if (ct_eq(s.p, s.n, want, want_len)) {
                rc = INTEG_OK;
                goto out;
            }
        }
    }
    rc = no_match(r, sig_name, "no v1 signature matches");
out:
    /* Only the rows of the secrets given ever held key bytes. */
    sodium_memzero(keys, r->n_secrets * sizeof keys[0]);
    return rc;
}

#define ED25519_MAX_ENTRIES 8

static int v_standard_ed25519(const wh_req *r)
{
    unsigned char pks[IG_WH_MAX_SECRETS][crypto_sign_PUBLICKEYBYTES];
    for (size_t i = 0; i < r->n_secrets; i++) {
        slice s = r->secrets[i];
        if (has_prefix(s, "whsk_") || has_prefix(s, "whsec_"))
            return ig_err(INTEG_EINVAL, "secret: standard-ed25519 needs the whpk_ public key, not "
                                        "a secret key");
        if (has_prefix(s, "whpk_")) {
            s.p += 5;
            s.n -= 5;
        }
        if (b64_decode(s.p, s.n, pks[i], sizeof pks[i]) != (long)crypto_sign_PUBLICKEYBYTES)
            return ig_err(INTEG_EINVAL, "secret: not whpk_ followed by the base64 of a %d-byte "
                                        "ed25519 public key",
                          (int)crypto_sign_PUBLICKEYBYTES);
    }

    slice id, ts, sig;
    const char *id_name, *ts_name, *sig_name;
    int64_t t;
    int rc;
    if ((rc = std_header(r, STD_ID, &id, &id_name)) || (rc = std_header(r, STD_TS, &ts, &ts_name)) ||
        (rc = std_header(r, STD_SIG, &sig, &sig_name)) || (rc = need_ts(ts_name, ts, &t)) ||
        (rc = check_window(r, ts_name, t, 1)))
        return rc;

    size_t msg_len = id.n + 1 + ts.n + 1 + r->body_len;
    unsigned char *msg = malloc(msg_len ? msg_len : 1);
    if (!msg)
        return ig_err(INTEG_ENOMEM, "out of memory");
    memcpy(msg, id.p, id.n);
    msg[id.n] = '.';
    memcpy(msg + id.n + 1, ts.p, ts.n);
    msg[id.n + 1 + ts.n] = '.';
    if (r->body_len)
        memcpy(msg + id.n + ts.n + 2, r->body, r->body_len);

    /* At most ED25519_MAX_ENTRIES v1a entries are tried (senders send one or
     * two), which bounds the work a hostile header can cause. */
    rc = INTEG_ESIGNATURE;
    slice rest = sig, ver, s;
    int tried = 0;
    while (rc && tried < ED25519_MAX_ENTRIES && next_sig_entry(&rest, &ver, &s)) {
        unsigned char sigbin[crypto_sign_BYTES + 3];
        if (!slice_eq_str(ver, "v1a") || !s.p ||
            b64_decode(s.p, s.n, sigbin, sizeof sigbin) != (long)crypto_sign_BYTES)
            continue;
        tried++;
        for (size_t i = 0; i < r->n_secrets; i++)
            if (crypto_sign_verify_detached(sigbin, msg, msg_len, pks[i]) == 0) {
                rc = INTEG_OK;
                break;
            }
    }
    free(msg);
    return rc ? no_match(r, sig_name, "no v1a signature matches") : INTEG_OK;
}

/* ------------------------------------------------------------------------
 * Hex / base64 HMAC of the body: GitHub, Shopify, WooCommerce
 * ---------------------------------------------------------------------- */

/* Does prefix + encode(HMAC(key, parts)) equal `got` for one of the keys? */
typedef struct mac_check {
    mbedtls_md_type_t md;
    int base64; /* else lowercase hex */
    const char *prefix;
} mac_check;

static int mac_matches(const mac_check *mc, const void *key, size_t key_len, const part *parts,
                       size_t n_parts, slice got, int *match)
{
    unsigned char mac[MBEDTLS_MD_MAX_SIZE];
    size_t mac_len;
    int rc = digest(mc->md, key, key_len, parts, n_parts, mac, &mac_len);
    if (rc)
        return rc;
    char want[16 + 2 * MBEDTLS_MD_MAX_SIZE + 1];
    size_t pre = strlen(mc->prefix);
    memcpy(want, mc->prefix, pre);
    size_t enc = mc->base64 ? to_b64(mac, mac_len, want + pre) : to_hex(mac, mac_len, want + pre);
    *match = ct_eq(got.p, got.n, want, pre + enc);
    sodium_memzero(mac, sizeof mac);
    return INTEG_OK;
}

static int v_github(const wh_req *r, int sha1)
{
    const char *name = sha1 ? "X-Hub-Signature" : "X-Hub-Signature-256";
    mac_check mc = {sha1 ? MBEDTLS_MD_SHA1 : MBEDTLS_MD_SHA256, 0, sha1 ? "sha1=" : "sha256="};
    slice got;
    int rc, match = 0;
    if ((rc = need(r, name, &got)) || (rc = body_not_empty(r, "GitHub")))
        return rc;
    part body = {r->body, r->body_len};
    for (size_t i = 0; i < r->n_secrets && !match; i++)
        if ((rc = mac_matches(&mc, r->secrets[i].p, r->secrets[i].n, &body, 1, got, &match)))
            return rc;
    return match ? INTEG_OK : no_match(r, name, "signature does not match");
}

static int v_shopify(const wh_req *r)
{
    /* The SDK prefers the Events header (shopify-hmac-sha256) when present. */
    const char *name = "Shopify-Hmac-Sha256";
    slice got;
    int rc = hdr(r, name, &got);
    if (rc)
        return rc;
    if (!got.p) {
        name = "X-Shopify-Hmac-Sha256";
        if ((rc = need(r, name, &got)))
            return rc;
    } else if (!got.n) {
        return ig_err(INTEG_EINVAL, "%s: empty", name);
    }
    if ((rc = body_not_empty(r, "Shopify")))
        return rc;
    mac_check mc = {MBEDTLS_MD_SHA256, 1, ""};
    part body = {r->body, r->body_len};
    int match = 0;
    for (size_t i = 0; i < r->n_secrets && !match; i++)
        if ((rc = mac_matches(&mc, r->secrets[i].p, r->secrets[i].n, &body, 1, got, &match)))
            return rc;
    return match ? INTEG_OK : no_match(r, name, "signature does not match");
}

/* WooCommerce's creation ping: body exactly "webhook_id=<digits>". */
static int is_woo_ping(const unsigned char *body, size_t len)
{
    static const char pre[] = "webhook_id=";
    size_t n = sizeof pre - 1;
    if (len <= n || len > n + 20 || memcmp(body, pre, n) != 0)
        return 0;
    for (size_t i = n; i < len; i++)
        if (body[i] < '0' || body[i] > '9')
            return 0;
    return 1;
}

/* wp_specialchars_decode($s, ENT_QUOTES): &amp; &lt; &gt; &quot; and the
 * numeric forms of & < > " ' (decimal with leading zeros, hex any case). */
static size_t wp_entity_decode(const char *s, size_t n, char *out)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}};
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '&') {
            out[o++] = s[i++];
            continue;
        }
        int done = 0;
        for (size_t k = 0; k < sizeof named / sizeof named[0] && !done; k++) {
            size_t l = strlen(named[k].name);
            if (n - i >= l && memcmp(s + i, named[k].name, l) == 0) {
                out[o++] = named[k].c;
                i += l;
                done = 1;
            }
        }
        if (!done && n - i >= 4 && s[i + 1] == '#') {
            size_t j = i + 2;
            int hex = 0;
            if (s[j] == 'x' || s[j] == 'X') {
                hex = 1;
                j++;
            }
            unsigned v = 0;
            size_t digits = 0;
            while (j < n && digits < 12 &&
                   ((s[j] >= '0' && s[j] <= '9') ||
                    (hex && ((s[j] >= 'a' && s[j] <= 'f') || (s[j] >= 'A' && s[j] <= 'F'))))) {
                int d = s[j] <= '9' ? s[j] - '0' : ascii_lower((unsigned char)s[j]) - 'a' + 10;
                v = v * (hex ? 16u : 10u) + (unsigned)d;
                j++;
                digits++;
            }
            if (digits && j < n && s[j] == ';' &&
                (v == '&' || v == '<' || v == '>' || v == '"' || v == '\'')) {
                out[o++] = (char)v;
                i = j + 1;
                done = 1;
            }
        }
        if (!done)
            out[o++] = s[i++];
    }
    return o;
}

static int v_woocommerce(const wh_req *r)
{
    const char *name = "X-WC-Webhook-Signature";
    slice got;
    int rc = hdr(r, name, &got);
    if (rc)
        return rc;
    if (!got.p && is_woo_ping(r->body, r->body_len))
        return INTEG_OK; /* the unsigned creation ping: a handshake */
    if ((rc = need(r, name, &got)))
        return rc;
    mac_check mc = {MBEDTLS_MD_SHA256, 1, ""};
    part body = {r->body, r->body_len};
    int match = 0;
    for (size_t i = 0; i < r->n_secrets && !match; i++) {
        slice s = r->secrets[i];
        if ((rc = mac_matches(&mc, s.p, s.n, &body, 1, got, &match)))
            return rc;
        if (match || !memchr(s.p, '&', s.n))
            continue;
        /* WooCommerce keys the HMAC with the HTML-entity-decoded secret. */
        char *dec = malloc(s.n);
        if (!dec)
            return ig_err(INTEG_ENOMEM, "out of memory");
        size_t dn = wp_entity_decode(s.p, s.n, dec);
        if (dn != s.n)
            rc = mac_matches(&mc, dec, dn, &body, 1, got, &match);
        sodium_memzero(dec, s.n);
        free(dec);
        if (rc)
            return rc;
    }
    return match ? INTEG_OK : no_match(r, name, "signature does not match");
}

/* ------------------------------------------------------------------------
 * Slack, Stripe
 * ---------------------------------------------------------------------- */

static int v_slack(const wh_req *r)
{
    const char *ts_name = "X-Slack-Request-Timestamp", *name = "X-Slack-Signature";
    slice ts, got;
    int64_t t;
    int rc;
    if ((rc = need(r, ts_name, &ts)) || (rc = need(r, name, &got)) || (rc = need_ts(ts_name, ts, &t)) ||
        (rc = check_window(r, ts_name, t, 1)))
        return rc;
    mac_check mc = {MBEDTLS_MD_SHA256, 0, "v0="};
    part parts[] = {{"v0:", 3}, {ts.p, ts.n}, {":", 1}, {r->body, r->body_len}};
    int match = 0;
    for (size_t i = 0; i < r->n_secrets && !match; i++)
        if ((rc = mac_matches(&mc, r->secrets[i].p, r->secrets[i].n, parts, 4, got, &match)))
            return rc;
    return match ? INTEG_OK : no_match(r, name, "signature does not match");
}

/* Iterate the comma-separated key=value items of Stripe-Signature; *rest
 * becomes {NULL, 0} after the last item. As in stripe-node, a value ends at
 * the next '=' (hex has none); an item without '=' has an absent value. */
static int next_stripe_item(slice *rest, slice *key, slice *val)
{
    if (!rest->p)
        return 0;
    const char *p = rest->p, *end = rest->p + rest->n;
    const char *e = memchr(p, ',', rest->n);
    if (e) {
        rest->p = e + 1;
        rest->n = (size_t)(end - rest->p);
    } else {
        e = end;
        rest->p = NULL;
        rest->n = 0;
    }
    const char *eq = memchr(p, '=', (size_t)(e - p));
    if (!eq) {
        *key = (slice){p, (size_t)(e - p)};
        *val = (slice){NULL, 0};
        return 1;
    }
    *key = (slice){p, (size_t)(eq - p)};
    const char *v = eq + 1, *eq2 = memchr(v, '=', (size_t)(e - v));
    *val = (slice){v, (size_t)((eq2 ? eq2 : e) - v)};
    return 1;
}

static int v_stripe(const wh_req *r)
{
    const char *name = "Stripe-Signature";
    slice got;
    int rc;
    if ((rc = need(r, name, &got)))
        return rc;
    slice ts = {NULL, 0}, rest = got, k, v;
    size_t n_v1 = 0;
    while (next_stripe_item(&rest, &k, &v)) {
        if (slice_eq_str(k, "t")) {
            if (ts.p && (!v.p || v.n != ts.n || memcmp(v.p, ts.p, v.n) != 0))
                return ig_err(INTEG_EINVAL, "%s: several different t= timestamps", name);
            ts = v.p ? v : (slice){"", 0};
        } else if (slice_eq_str(k, "v1") && v.p) {
            n_v1++;
        }
    }
    int64_t t;
    if (!ts.p)
        return ig_err(INTEG_EINVAL, "%s: no t= timestamp", name);
    if (parse_int(ts, &t))
        return ig_err(INTEG_EINVAL, "%s: t= is not a decimal integer timestamp", name);
    if (!n_v1)
        return ig_err(INTEG_ESIGNATURE, "%s: no v1 signature (v0 and other schemes are ignored)", name);

    mac_check mc = {MBEDTLS_MD_SHA256, 0, ""};
    part parts[] = {{ts.p, ts.n}, {".", 1}, {r->body, r->body_len}};
    int match = 0;
    for (size_t i = 0; i < r->n_secrets && !match; i++) {
        unsigned char mac[MBEDTLS_MD_MAX_SIZE];
        size_t mac_len;
        char want[2 * MBEDTLS_MD_MAX_SIZE + 1];
        /* The key is the whole secret string, "whsec_" included. */
        if ((rc = digest(mc.md, r->secrets[i].p, r->secrets[i].n, parts, 3, mac, &mac_len)))
            return rc;
        size_t want_len = to_hex(mac, mac_len, want);
        rest = got;
        while (!match && next_stripe_item(&rest, &k, &v))
            if (slice_eq_str(k, "v1") && v.p && ct_eq(v.p, v.n, want, want_len))
                match = 1;
    }
    if (!match)
        return no_match(r, name, "no v1 signature matches");
    return check_window(r, name, t, 1);
}

/* ------------------------------------------------------------------------
 * HubSpot v1, v2 (SHA-256 hex of secret + ...), v3 (HMAC base64)
 * ---------------------------------------------------------------------- */

static int need_method_url(const wh_req *r, const char *scheme)
{
    if (!r->method[0])
        return ig_err(INTEG_EINVAL, "method: missing (%s signs it)", scheme);
    if (!r->url[0])
        return ig_err(INTEG_EINVAL, "url: missing (%s signs the full URL)", scheme);
    return INTEG_OK;
}

static int v_hubspot_v12(const wh_req *r, int v2)
{
    const char *name = "X-HubSpot-Signature";
    slice got;
    int rc;
    if ((rc = need(r, name, &got)) || (v2 && (rc = need_method_url(r, "hubspot-v2"))))
        return rc;
    int match = 0;
    for (size_t i = 0; i < r->n_secrets && !match; i++) {
        part parts[4];
        size_t np = 0;
        parts[np++] = (part){r->secrets[i].p, r->secrets[i].n};
        if (v2) {
            parts[np++] = (part){r->method, strlen(r->method)};
            parts[np++] = (part){r->url, strlen(r->url)};
        }
        parts[np++] = (part){r->body, r->body_len};
        unsigned char d[MBEDTLS_MD_MAX_SIZE];
        size_t dl;
        char want[2 * MBEDTLS_MD_MAX_SIZE + 1];
        if ((rc = digest(MBEDTLS_MD_SHA256, NULL, 0, parts, np, d, &dl)))
            return rc;
        size_t wl = to_hex(d, dl, want);
        match = ct_eq(got.p, got.n, want, wl);
    }
    return match ? INTEG_OK : no_match(r, name, "signature does not match");
}

/* The v3 URI rule: these escapes (hex digits in either case) are decoded
 * before signing. Malloc'd. */
static char *hubspot_decode_uri(const char *url)
{
    static const char decoded[] = ":/?@!$'()*,;";
    size_t n = strlen(url), o = 0;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        if (url[i] == '%' && i + 2 < n) {
            int hi = hexval((unsigned char)url[i + 1]), lo = hexval((unsigned char)url[i + 2]);
            int c = hi >= 0 && lo >= 0 ? hi * 16 + lo : 0;
            if (c && strchr(decoded, c)) {
                out[o++] = (char)c;
                i += 3;
                continue;
            }
        }
        out[o++] = url[i++];
    }
    out[o] = 0;
    return out;
}

static int v_hubspot_v3(const wh_req *r)
{
    const char *name = "X-HubSpot-Signature-v3", *ts_name = "X-HubSpot-Request-Timestamp";
    slice got, ts;
    int64_t t;
    int rc;
    if ((rc = need(r, name, &got)) || (rc = need(r, ts_name, &ts)) ||
        (rc = need_method_url(r, "hubspot-v3")) || (rc = need_ts(ts_name, ts, &t)) ||
        (rc = check_window(r, ts_name, t, 1000)))
        return rc;
    char *decoded = hubspot_decode_uri(r->url);
    if (!decoded)
        return ig_err(INTEG_ENOMEM, "out of memory");
    const char *urls[2] = {r->url, strcmp(decoded, r->url) ? decoded : NULL};
    mac_check mc = {MBEDTLS_MD_SHA256, 1, ""};
    int match = 0;
    for (size_t i = 0; i < r->n_secrets && !match && !rc; i++)
        for (int u = 0; u < 2 && urls[u] && !match && !rc; u++) {
            part parts[] = {{r->method, strlen(r->method)},
                            {urls[u], strlen(urls[u])},
                            {r->body, r->body_len},
                            {ts.p, ts.n}};
            rc = mac_matches(&mc, r->secrets[i].p, r->secrets[i].n, parts, 4, got, &match);
        }
    free(decoded);
    if (rc)
        return rc;
    return match ? INTEG_OK : no_match(r, name, "signature does not match");
}

/* ------------------------------------------------------------------------
 * SendGrid: ECDSA P-256 / SHA-256 over timestamp + body
 * ---------------------------------------------------------------------- */

static int v_sendgrid(const wh_req *r)
{
    const char *name = "X-Twilio-Email-Event-Webhook-Signature";
    const char *ts_name = "X-Twilio-Email-Event-Webhook-Timestamp";
    mbedtls_pk_context pks[IG_WH_MAX_SECRETS];
    size_t n_pk = 0;
    int rc = INTEG_OK;

    for (size_t i = 0; i < r->n_secrets; i++) {
        slice s = r->secrets[i];
        unsigned char der[512];
        long dn = b64_decode(s.p, s.n, der, sizeof der);
        mbedtls_pk_init(&pks[n_pk]);
        n_pk++;
        if (dn <= 0 || mbedtls_pk_parse_public_key(&pks[n_pk - 1], der, (size_t)dn) != 0 ||
            !mbedtls_pk_can_do(&pks[n_pk - 1], MBEDTLS_PK_ECDSA) ||
            mbedtls_pk_ec(pks[n_pk - 1])->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
            rc = ig_err(INTEG_EINVAL, "secret: not the base64 DER of a P-256 public key "
                                      "(SendGrid's verification key)");
            goto out;
        }
    }

    slice got, ts;
    int64_t t;
    if ((rc = need(r, name, &got)) || (rc = need(r, ts_name, &ts)) || (rc = need_ts(ts_name, ts, &t)))
        goto out;

    unsigned char sig[256], hash[MBEDTLS_MD_MAX_SIZE];
    size_t hash_len;
    long sl = b64_decode(got.p, got.n, sig, sizeof sig);
    part parts[] = {{ts.p, ts.n}, {r->body, r->body_len}};
    if ((rc = digest(MBEDTLS_MD_SHA256, NULL, 0, parts, 2, hash, &hash_len)))
        goto out;
    int match = 0;
    for (size_t i = 0; sl > 0 && i < n_pk && !match; i++)
        match = mbedtls_pk_verify(&pks[i], MBEDTLS_MD_SHA256, hash, hash_len, sig, (size_t)sl) == 0;
    if (!match)
        rc = no_match(r, name, sl > 0 ? "signature does not verify" : "not base64");
    else
        rc = check_window(r, ts_name, t, 1);
out:
    for (size_t i = 0; i < n_pk; i++)
        mbedtls_pk_free(&pks[i]);
    return rc;
}

/* ------------------------------------------------------------------------
 * Twilio: base64 HMAC-SHA1 of URL + sorted form parameters
 * ---------------------------------------------------------------------- */

/* application/x-www-form-urlencoded decoding ('+' is a space, %XX a byte,
 * a malformed escape stays as is). out has room for n bytes. */
static size_t form_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
                   (lo = hexval((unsigned char)s[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

int ig_wh_query_param(const char *url, const char *name, char **out)
{
    *out = NULL;
    if (!url || !name)
        return INTEG_OK;
    const char *q = strchr(url, '?');
    if (!q)
        return INTEG_OK;
    q++;
    const char *end = strchr(q, '#');
    if (!end)
        end = q + strlen(q);
    size_t want = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *ke = eq ? eq : pe;
        char *k = malloc((size_t)(ke - q) + 1);
        if (!k)
            return ig_err(INTEG_ENOMEM, "out of memory");
        size_t kn = form_decode(q, (size_t)(ke - q), k);
        int hit = kn == want && memcmp(k, name, kn) == 0;
        free(k);
        if (hit) {
            const char *v = eq ? eq + 1 : pe;
            char *val = malloc((size_t)(pe - v) + 1);
            if (!val)
                return ig_err(INTEG_ENOMEM, "out of memory");
            size_t vn = form_decode(v, (size_t)(pe - v), val);
            val[vn] = 0;
            *out = val;
            return INTEG_OK;
        }
        q = amp ? amp + 1 : end;
    }
    return INTEG_OK;
}

/* UTF-16 code units of a UTF-8 string, one at a time (JavaScript's string
 * order, which the twilio SDK sorts by). bad is set on invalid UTF-8. */
typedef struct u16it {
    const unsigned char *p;
    size_t n, i;
    unsigned pending;
    int bad;
} u16it;

static long u16_next(u16it *it)
{
    if (it->pending) {
        unsigned u = it->pending;
        it->pending = 0;
        return u;
    }
    if (it->i >= it->n)
        return -1;
    unsigned c = it->p[it->i], cp;
    size_t len;
    if (c < 0x80) {
        cp = c;
        len = 1;
    } else if ((c & 0xE0) == 0xC0) {
        cp = c & 0x1F;
        len = 2;
    } else if ((c & 0xF0) == 0xE0) {
        cp = c & 0x0F;
        len = 3;
    } else if ((c & 0xF8) == 0xF0) {
        cp = c & 0x07;
        len = 4;
    } else {
        it->bad = 1;
        it->i++;
        return c;
    }
    if (it->i + len > it->n) {
        it->bad = 1;
        it->i++;
        return c;
    }
    for (size_t k = 1; k < len; k++) {
        unsigned cc = it->p[it->i + k];
        if ((cc & 0xC0) != 0x80) {
            it->bad = 1;
            it->i++;
            return c;
        }
        cp = (cp << 6) | (cc & 0x3F);
    }
    it->i += len;
    if (cp >= 0x10000) {
        cp -= 0x10000;
        it->pending = 0xDC00 | (cp & 0x3FF);
        return 0xD800 | (cp >> 10);
    }
    return cp;
}

static int js_strcmp(const char *a, size_t an, const char *b, size_t bn)
{
    u16it x = {(const unsigned char *)a, an, 0, 0, 0}, y = {(const unsigned char *)b, bn, 0, 0, 0};
    for (;;) {
        long ua = u16_next(&x), ub = u16_next(&y);
        if (x.bad || y.bad)
            break;
        if (ua < 0 || ub < 0 || ua != ub) {
            if (ua == ub)
                return 0;
            return ua < ub ? -1 : 1;
        }
    }
    /* Invalid UTF-8: byte order. */
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an < bn ? -1 : an > bn);
}

typedef struct form_kv {
    char *name, *value;
    size_t nlen, vlen;
} form_kv;

static int kv_cmp(const void *pa, const void *pb)
{
    const form_kv *a = pa, *b = pb;
    int c = js_strcmp(a->name, a->nlen, b->name, b->nlen);
    return c ? c : js_strcmp(a->value, a->vlen, b->value, b->vlen);
}

#define TWILIO_MAX_PARAMS 1000

/* Parse a form body into kv (sorted by name, then value). One allocation
 * holds all decoded text. */
static int parse_form(const unsigned char *body, size_t len, form_kv **out, size_t *n_out,
                      char **store)
{
    *out = NULL;
    *n_out = 0;
    *store = NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += body[i] == '&';
    n++;
    if (n > TWILIO_MAX_PARAMS)
        return ig_err(INTEG_EINVAL, "body: more than %d form parameters", TWILIO_MAX_PARAMS);
    form_kv *kv = calloc(n, sizeof *kv);
    char *text = malloc(len + 1);
    if (!kv || !text) {
        free(kv);
        free(text);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    const char *p = (const char *)body, *end = p + len;
    size_t o = 0, k = 0;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        if (pe > p) { /* empty pieces ("a=1&&b=2") are skipped, as querystring does */
            const char *eq = memchr(p, '=', (size_t)(pe - p));
            const char *ke = eq ? eq : pe;
            kv[k].name = text + o;
            kv[k].nlen = form_decode(p, (size_t)(ke - p), text + o);
            o += kv[k].nlen;
            kv[k].value = text + o;
            kv[k].vlen = eq ? form_decode(eq + 1, (size_t)(pe - eq - 1), text + o) : 0;
            o += kv[k].vlen;
            k++;
        }
        p = amp ? amp + 1 : end;
    }
    qsort(kv, k, sizeof *kv, kv_cmp);
    *out = kv;
    *n_out = k;
    *store = text;
    return INTEG_OK;
}

static char *dup_len(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* The SDK's candidate URLs (twilio-node splitUrl/removePort/addPort): the URL
 * without its port, and the URL with a port: as given when it has one, else
 * with the default (:443 for https, :80 otherwise). A URL without a
 * "scheme://" prefix is its only candidate (*b stays NULL). */
static int twilio_urls(const char *url, char **a, char **b)
{
    *a = *b = NULL;
    size_t n = strlen(url), i = 0;
    /* ^[a-z][a-z0-9+.-]*:// (case-insensitive) */
    int ok = n > 0 && (url[0] | 0x20) >= 'a' && (url[0] | 0x20) <= 'z';
    if (ok) {
        i = 1;
        while (i < n && (((url[i] | 0x20) >= 'a' && (url[i] | 0x20) <= 'z') ||
                         (url[i] >= '0' && url[i] <= '9') || url[i] == '+' || url[i] == '.' ||
                         url[i] == '-'))
            i++;
        ok = n - i >= 3 && memcmp(url + i, "://", 3) == 0;
    }
    if (!ok) {
        *a = dup_len(url, n);
        return *a ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
    }
    size_t scheme_end = i + 3, auth_end = scheme_end;
    while (auth_end < n && url[auth_end] != '/' && url[auth_end] != '?' && url[auth_end] != '#')
        auth_end++;
    size_t host_start = scheme_end; /* after the last '@' of the authority */
    for (size_t k = scheme_end; k < auth_end; k++)
        if (url[k] == '@')
            host_start = k + 1;
    size_t search = host_start; /* a port colon comes after an IPv6 literal's ']' */
    for (size_t k = host_start; k < auth_end; k++)
        if (url[k] == ']')
            search = k + 1;
    size_t port_start = auth_end;
    for (size_t k = search; k < auth_end; k++)
        if (url[k] == ':') {
            port_start = k;
            break;
        }
    size_t la = port_start + (n - auth_end);
    *a = malloc(la + 1);
    if (!*a)
        return ig_err(INTEG_ENOMEM, "out of memory");
    memcpy(*a, url, port_start);
    memcpy(*a + port_start, url + auth_end, n - auth_end);
    (*a)[la] = 0;
    if (port_start != auth_end) {
        *b = dup_len(url, n);
    } else {
        const char *port = strncasecmp(url, "https://", 8) == 0 ? ":443" : ":80";
        size_t pl = strlen(port), lb = n + pl;
        *b = malloc(lb + 1);
        if (*b) {
            memcpy(*b, url, auth_end);
            memcpy(*b + auth_end, port, pl);
            memcpy(*b + auth_end + pl, url + auth_end, n - auth_end);
            (*b)[lb] = 0;
        }
    }
    if (!*b) {
        free(*a);
        *a = NULL;
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    return INTEG_OK;
}

static int is_form_content_type(const wh_req *r)
{
    slice ct;
    if (hdr(r, "Content-Type", &ct) || !ct.p)
        return 0;
    static const char want[] = "application/x-www-form-urlencoded";
    size_t n = sizeof want - 1;
    if (ct.n < n || strncasecmp(ct.p, want, n) != 0)
        return 0;
    return ct.n == n || ct.p[n] == ';' || ct.p[n] == ' ' || ct.p[n] == '\t';
}

static int v_twilio(const wh_req *r)
{
    const char *name = "X-Twilio-Signature";
    slice got;
    int rc;
    if ((rc = need(r, name, &got)))
        return rc;
    if (!r->url[0])
        return ig_err(INTEG_EINVAL, "url: missing (twilio signs the full URL)");

    char *body_sha = NULL;
    if ((rc = ig_wh_query_param(r->url, "bodySHA256", &body_sha)))
        return rc;
    form_kv *kv = NULL;
    size_t n_kv = 0;
    char *store = NULL, *url_a = NULL, *url_b = NULL;
    if (!body_sha && r->body_len) {
        if (!is_form_content_type(r)) {
            rc = ig_err(INTEG_ESIGNATURE, "%s: the body is neither form-encoded nor covered by a "
                                          "bodySHA256 URL parameter, so it is not signed",
                        name);
            goto out;
        }
        if ((rc = parse_form(r->body, r->body_len, &kv, &n_kv, &store)))
            goto out;
    }
    if ((rc = twilio_urls(r->url, &url_a, &url_b)))
        goto out;

    /* parts: url, then name + value for each distinct (name, value) */
    part *parts = malloc((1 + 2 * n_kv) * sizeof *parts);
    if (!parts) {
        rc = ig_err(INTEG_ENOMEM, "out of memory");
        goto out;
    }
    size_t np = 1;
    for (size_t i = 0; i < n_kv; i++) {
        if (i && kv[i].nlen == kv[i - 1].nlen && kv[i].vlen == kv[i - 1].vlen &&
            memcmp(kv[i].name, kv[i - 1].name, kv[i].nlen) == 0 &&
            memcmp(kv[i].value, kv[i - 1].value, kv[i].vlen) == 0)
            continue; /* duplicate values are de-duplicated (Set) */
        parts[np++] = (part){kv[i].name, kv[i].nlen};
        parts[np++] = (part){kv[i].value, kv[i].vlen};
    }
    mac_check mc = {MBEDTLS_MD_SHA1, 1, ""};
    const char *urls[2] = {url_a, url_b};
    int match = 0;
    for (size_t i = 0; i < r->n_secrets && !match && !rc; i++)
        for (int u = 0; u < 2 && urls[u] && !match && !rc; u++) {
            parts[0] = (part){urls[u], strlen(urls[u])};
            rc = mac_matches(&mc, r->secrets[i].p, r->secrets[i].n, parts, np, got, &match);
        }
    free(parts);
    if (rc)
        goto out;
    if (!match) {
        rc = no_match(r, name, "signature does not match");
        goto out;
    }
    if (body_sha) {
        unsigned char d[MBEDTLS_MD_MAX_SIZE];
        size_t dl;
        char want[2 * MBEDTLS_MD_MAX_SIZE + 1];
        part b = {r->body, r->body_len};
        if ((rc = digest(MBEDTLS_MD_SHA256, NULL, 0, &b, 1, d, &dl)))
            goto out;
        size_t wl = to_hex(d, dl, want);
        if (!ct_eq(body_sha, strlen(body_sha), want, wl))
            rc = ig_err(INTEG_ESIGNATURE, "url: bodySHA256 does not match the body");
    }
out:
    free(body_sha);
    free(kv);
    free(store);
    free(url_a);
    free(url_b);
    return rc;
}

/* ------------------------------------------------------------------------
 * Basic authentication, Microsoft Graph clientState
 * ---------------------------------------------------------------------- */

static int sha256_of(const void *p, size_t n, unsigned char out[MBEDTLS_MD_MAX_SIZE])
{
    part pt = {p, n};
    size_t len;
    return digest(MBEDTLS_MD_SHA256, NULL, 0, &pt, 1, out, &len);
}

/* Constant time, length hidden: compare SHA-256 digests of a and each secret. */
static int secret_matches(const wh_req *r, const void *a, size_t an, int *match)
{
    unsigned char da[MBEDTLS_MD_MAX_SIZE], ds[MBEDTLS_MD_MAX_SIZE];
    int rc = sha256_of(a, an, da);
    *match = 0;
    for (size_t i = 0; !rc && i < r->n_secrets; i++) {
        if ((rc = sha256_of(r->secrets[i].p, r->secrets[i].n, ds)))
            break;
        *match |= sodium_memcmp(da, ds, 32) == 0;
    }
    sodium_memzero(da, sizeof da);
    sodium_memzero(ds, sizeof ds);
    return rc;
}

static int v_basic(const wh_req *r)
{
    const char *name = "Authorization";
    int any_colon = 0;
    for (size_t i = 0; i < r->n_secrets; i++)
        any_colon |= memchr(r->secrets[i].p, ':', r->secrets[i].n) != NULL;
    if (!any_colon)
        return ig_err(INTEG_EINVAL, "secret: basic needs \"user:password\"");
    slice got;
    int rc;
    if ((rc = need(r, name, &got)))
        return rc;
    if (got.n < 6 || strncasecmp(got.p, "basic", 5) != 0 || (got.p[5] != ' ' && got.p[5] != '\t'))
        return ig_err(INTEG_ESIGNATURE, "%s: not Basic credentials", name);
    slice tok = trim(got.p + 6, got.n - 6);
    unsigned char cred[IG_WH_MAX_HEADER_BYTES];
    long cn = b64_decode(tok.p, tok.n, cred, sizeof cred);
    if (cn <= 0) {
        sodium_memzero(cred, sizeof cred);
        return ig_err(INTEG_ESIGNATURE, "%s: malformed Basic credentials", name);
    }
    int match;
    rc = secret_matches(r, cred, (size_t)cn, &match);
    sodium_memzero(cred, sizeof cred);
    if (rc)
        return rc;
    return match ? INTEG_OK : no_match(r, name, "credentials do not match");
}

static int is_msgraph_validation(const char *method, const char *url, const char *const *names,
                                 const char *const *values, size_t n, size_t body_len)
{
    if (!method || !ieq(method, "POST"))
        return 0;
    char *token = NULL;
    if (ig_wh_query_param(url, "validationToken", &token) || !token)
        return 0;
    int nonempty = token[0] != 0;
    free(token);
    if (!nonempty)
        return 0;
    if (body_len == 0)
        return 1;
    slice ct;
    if (find_header(names, values, n, "Content-Type", &ct) || !ct.p)
        return 0;
    return ct.n >= 10 && strncasecmp(ct.p, "text/plain", 10) == 0 &&
           (ct.n == 10 || ct.p[10] == ';' || ct.p[10] == ' ');
}

/* A strict RFC 8259 check (json-c accepts NaN, control characters in
 * strings, "1." and more even in strict mode): 0 when `p` is exactly one
 * JSON text in valid UTF-8, nested at most 64 deep. */
typedef struct jscan {
    const unsigned char *p, *end;
    int depth;
} jscan;

static void js_ws(jscan *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int js_lit(jscan *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return -1;
    j->p += n;
    return 0;
}

static int js_utf8(jscan *j)
{
    const unsigned char *p = j->p;
    unsigned c = *p, cp, min;
    size_t len;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if ((size_t)(j->end - p) < len)
        return -1;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    j->p += len;
    return 0;
}

static int js_string(jscan *j)
{
    j->p++; /* the opening quote */
    while (j->p < j->end) {
        unsigned c = *j->p;
        if (c == '"') {
            j->p++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (++j->p >= j->end)
                return -1;
            c = *j->p++;
            if (c == 'u') {
                for (int k = 0; k < 4; k++)
                    if (j->p >= j->end || hexval(*j->p++) < 0)
                        return -1;
            } else if (!strchr("\"\\/bfnrt", (int)c) || !c) {
                return -1;
            }
        } else if (c >= 0x80) {
            if (js_utf8(j))
                return -1;
        } else {
            j->p++;
        }
    }
    return -1;
}

static int js_digits(jscan *j)
{
    const unsigned char *start = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > start ? 0 : -1;
}

static int js_number(jscan *j)
{
    if (*j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (js_digits(j))
        return -1;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (js_digits(j))
            return -1;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (js_digits(j))
            return -1;
    }
    return 0;
}

static int js_value(jscan *j)
{
    js_ws(j);
    if (j->p >= j->end)
        return -1;
    switch (*j->p) {
    case '"':
        return js_string(j);
    case 't':
        return js_lit(j, "true");
    case 'f':
        return js_lit(j, "false");
    case 'n':
        return js_lit(j, "null");
    case '{':
    case '[': {
        int obj = *j->p == '{';
        if (++j->depth > 64)
            return -1;
        j->p++;
        js_ws(j);
        if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
            j->p++;
            j->depth--;
            return 0;
        }
        for (;;) {
            if (obj) {
                js_ws(j);
                if (j->p >= j->end || *j->p != '"' || js_string(j))
                    return -1;
                js_ws(j);
                if (j->p >= j->end || *j->p++ != ':')
                    return -1;
            }
            if (js_value(j))
                return -1;
            js_ws(j);
            if (j->p >= j->end)
                return -1;
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p++ != (obj ? '}' : ']'))
                return -1;
            j->depth--;
            return 0;
        }
    }
    default:
        if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))
            return js_number(j);
        return -1;
    }
}

static int json_strict_ok(const unsigned char *p, size_t n)
{
    jscan j = {p, p + n, 0};
    if (js_value(&j))
        return 0;
    js_ws(&j);
    return j.p == j.end;
}

static int v_msgraph(const wh_req *r)
{
    if (is_msgraph_validation(r->method, r->url, r->names, r->values, r->n, r->body_len))
        return INTEG_OK; /* the handshake: the receiver echoes validationToken */
    if (!r->body_len)
        return ig_err(INTEG_EINVAL, "body: empty (expected a change notification)");
    if (!json_strict_ok(r->body, r->body_len))
        return ig_err(INTEG_EINVAL, "body: not a JSON text (RFC 8259, UTF-8)");
    char *text = malloc(r->body_len + 1);
    if (!text)
        return ig_err(INTEG_ENOMEM, "out of memory");
    memcpy(text, r->body, r->body_len);
    text[r->body_len] = 0;
    json_object *doc = NULL;
    int rc = ig_json_parse_object(text, "body", 0, &doc);
    free(text);
    if (rc)
        return rc;
    json_object *value = ig_json_get(doc, "value");
    size_t n = ig_json_len(value);
    if (!value || !json_object_is_type(value, json_type_array) || n == 0) {
        json_object_put(doc);
        return ig_err(INTEG_EINVAL, "body: \"value\" must be a non-empty array of notifications");
    }
    for (size_t i = 0; i < n && !rc; i++) {
        json_object *item = json_object_array_get_idx(value, i);
        json_object *cs = NULL;
        if (!json_object_is_type(item, json_type_object) ||
            !json_object_object_get_ex(item, "clientState", &cs) ||
            !json_object_is_type(cs, json_type_string)) {
            rc = ig_err(INTEG_ESIGNATURE, "body: value[%zu].clientState: missing", i);
            break;
        }
        int match;
        if ((rc = secret_matches(r, json_object_get_string(cs), (size_t)json_object_get_string_len(cs),
                                 &match)))
            break;
        if (!match) {
            char what[64];
            snprintf(what, sizeof what, "value[%zu].clientState does not match", i);
            rc = no_match(r, "body", what);
        }
    }
    json_object_put(doc);
    return rc;
}

/* ------------------------------------------------------------------------
 * Entry point
 * ---------------------------------------------------------------------- */

INTEG_API int integ_webhook_verify(const char *scheme, const char *secret, const char *method,
                                   const char *url, const char *const *header_names,
                                   const char *const *header_values, size_t n_headers,
                                   const unsigned char *body, size_t body_len, int64_t now_unix,
                                   int tolerance_s)
{
    ig_err_clear();
    IG_CHECK_ARG(scheme, "scheme");
    IG_CHECK_ARG(secret, "secret");
    IG_CHECK_ARG(n_headers == 0 || (header_names && header_values), "header_names");
    IG_CHECK_ARG(body || body_len == 0, "body");
    IG_CHECK_ARG(now_unix >= 0 && now_unix < 100000000000LL, "now_unix");
    int id = scheme_id(scheme);
    if (id < 0)
        return ig_err(INTEG_EINVAL, "scheme: unknown \"%.64s\" (known: %s)", scheme,
                      ig_wh_scheme_list());
    if (n_headers > IG_WH_MAX_HEADERS)
        return ig_err(INTEG_EINVAL, "n_headers: more than %d headers", IG_WH_MAX_HEADERS);
    for (size_t i = 0; i < n_headers; i++) {
        if (!header_names[i])
            return ig_err(INTEG_EINVAL, "header_names[%zu]: NULL", i);
        if (!header_values[i])
            return ig_err(INTEG_EINVAL, "header_values[%zu]: NULL", i);
    }
    if (url && strnlen(url, IG_WH_MAX_URL_BYTES + 1) > IG_WH_MAX_URL_BYTES)
        return ig_err(INTEG_EINVAL, "url: longer than %d bytes", IG_WH_MAX_URL_BYTES);
    if (method && strnlen(method, 33) > 32)
        return ig_err(INTEG_EINVAL, "method: longer than 32 bytes");
    int rc = ig_global_init();
    if (rc)
        return rc;

    wh_req r;
    memset(&r, 0, sizeof r);
    r.scheme = id;
    r.method = method ? method : "";
    r.url = url ? url : "";
    r.names = header_names;
    r.values = header_values;
    r.n = n_headers;
    r.body = body ? body : (const unsigned char *)"";
    r.body_len = body_len;
    r.now = now_unix ? now_unix : (int64_t)time(NULL);
    r.tolerance = tolerance_s == 0 ? IG_WH_DEFAULT_TOLERANCE_S : tolerance_s < 0 ? -1 : tolerance_s;
    if ((rc = split_secrets(&r, secret)))
        return rc;

    switch (id) {
    case WH_STANDARD:
        return v_standard(&r);
    case WH_STANDARD_ED25519:
        return v_standard_ed25519(&r);
    case WH_GITHUB:
        return v_github(&r, 0);
    case WH_GITHUB_SHA1:
        return v_github(&r, 1);
    case WH_SLACK:
        return v_slack(&r);
    case WH_STRIPE:
        return v_stripe(&r);
    case WH_SHOPIFY:
        return v_shopify(&r);
    case WH_WOOCOMMERCE:
        return v_woocommerce(&r);
    case WH_HUBSPOT_V1:
        return v_hubspot_v12(&r, 0);
    case WH_HUBSPOT_V2:
        return v_hubspot_v12(&r, 1);
    case WH_HUBSPOT_V3:
        return v_hubspot_v3(&r);
    case WH_SENDGRID:
        return v_sendgrid(&r);
    case WH_TWILIO:
        return v_twilio(&r);
    case WH_BASIC:
        return v_basic(&r);
    case WH_MSGRAPH:
        return v_msgraph(&r);
    default:
        return ig_err(INTEG_EINTERNAL, "scheme %d has no verifier", id);
    }
}

/* ------------------------------------------------------------------------
 * Helpers for the receiver
 * ---------------------------------------------------------------------- */

static int copy_slice(slice s, char *out, size_t out_size)
{
    if (!s.p || !s.n || s.n >= out_size)
        return 0;
    memcpy(out, s.p, s.n);
    out[s.n] = 0;
    return 1;
}

static int header_id(const char *const *names, const char *const *values, size_t n,
                     const char *name, char *out, size_t out_size)
{
    slice s;
    if (find_header(names, values, n, name, &s))
        return 0;
    return copy_slice(s, out, out_size);
}

static int body_string_field(const unsigned char *body, size_t len, const char *key, char *out,
                             size_t out_size)
{
    if (!body || !len || memchr(body, 0, len))
        return 0;
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return 0;
    json_object *doc = json_tokener_parse_ex(tok, (const char *)body, (int)(len > 0x7fffffff ? 0x7fffffff : len));
    int ok = 0;
    if (doc && json_tokener_get_error(tok) == json_tokener_success &&
        json_object_is_type(doc, json_type_object)) {
        json_object *v = NULL;
        if (json_object_object_get_ex(doc, key, &v) && json_object_is_type(v, json_type_string)) {
            const char *s = json_object_get_string(v);
            ok = copy_slice((slice){s, strlen(s)}, out, out_size);
        }
    }
    json_object_put(doc);
    json_tokener_free(tok);
    return ok;
}

int ig_wh_delivery_id(const char *scheme, const char *const *names, const char *const *values,
                      size_t n, const unsigned char *body, size_t body_len, char *out,
                      size_t out_size)
{
    if (!out || !out_size)
        return 0;
    out[0] = 0;
    switch (scheme_id(scheme)) {
    case WH_STANDARD:
    case WH_STANDARD_ED25519:
        return header_id(names, values, n, "svix-id", out, out_size) ||
               header_id(names, values, n, "webhook-id", out, out_size);
    case WH_GITHUB:
    case WH_GITHUB_SHA1:
        return header_id(names, values, n, "X-GitHub-Delivery", out, out_size);
    case WH_SHOPIFY:
        return header_id(names, values, n, "X-Shopify-Webhook-Id", out, out_size) ||
               header_id(names, values, n, "Shopify-Webhook-Id", out, out_size);
    case WH_WOOCOMMERCE:
        return header_id(names, values, n, "X-WC-Webhook-Delivery-ID", out, out_size);
    case WH_TWILIO:
        return header_id(names, values, n, "I-Twilio-Idempotency-Token", out, out_size);
    case WH_STRIPE:
        return body_string_field(body, body_len, "id", out, out_size);
    case WH_SLACK:
        return body_string_field(body, body_len, "event_id", out, out_size);
    default:
        return 0;
    }
}

int ig_wh_handshake(const char *scheme, const char *method, const char *url,
                    const char *const *names, const char *const *values, size_t n,
                    const unsigned char *body, size_t body_len)
{
    switch (scheme_id(scheme)) {
    case WH_MSGRAPH:
        return is_msgraph_validation(method, url, names, values, n, body_len) ? IG_WH_HANDSHAKE_MSGRAPH
                                                                              : IG_WH_NOT_HANDSHAKE;
    case WH_WOOCOMMERCE:
        if (!ig_wh_header(names, values, n, "X-WC-Webhook-Signature") && body &&
            is_woo_ping(body, body_len))
            return IG_WH_HANDSHAKE_WOOCOMMERCE;
        return IG_WH_NOT_HANDSHAKE;
    default:
        return IG_WH_NOT_HANDSHAKE;
    }
}
