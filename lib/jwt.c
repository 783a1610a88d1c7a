/* Signed JWTs with mbedTLS (2.28 API) and libsodium's CSPRNG. */
#include <mbedtls/asn1.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "error.h"
#include "jwt.h"

char *ig_b64url(const unsigned char *bin, size_t len)
{
    size_t cap = sodium_base64_encoded_len(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    if (out)
        sodium_bin2base64(out, cap, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* mbedTLS's RNG callback: libsodium's randombytes (a CSPRNG). RSA
 * PKCS#1 v1.5 uses it for blinding, ECDSA for its nonce. */
static int rng(void *p, unsigned char *out, size_t len)
{
    (void)p;
    randombytes_buf(out, len);
    return 0;
}

/* DER ECDSA-Sig-Value {r, s} -> the fixed-width r || s JWS wants. */
static int ecdsa_der_to_raw(const unsigned char *der, size_t der_len, unsigned char *raw, size_t half)
{
    unsigned char *p = (unsigned char *)der;
    const unsigned char *end = der + der_len;
    size_t len = 0;
    mbedtls_mpi r, s;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    int ok = mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) == 0 &&
             mbedtls_asn1_get_mpi(&p, end, &r) == 0 && mbedtls_asn1_get_mpi(&p, end, &s) == 0 &&
             mbedtls_mpi_write_binary(&r, raw, half) == 0 && mbedtls_mpi_write_binary(&s, raw + half, half) == 0;
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return ok ? 0 : -1;
}

static char *b64url_json(json_object *o)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    return ig_b64url((const unsigned char *)s, len);
}

int ig_jwt_sign(const char *alg, const char *pem, const char *kid, json_object *claims, char **out)
{
    *out = NULL;
    if (!alg)
        alg = "RS256";
    mbedtls_md_type_t md;
    int want_ec = 0;
    if (!strcmp(alg, "RS256"))
        md = MBEDTLS_MD_SHA256;
    else if (!strcmp(alg, "RS384"))
        md = MBEDTLS_MD_SHA384;
    else if (!strcmp(alg, "RS512"))
        md = MBEDTLS_MD_SHA512;
    else if (!strcmp(alg, "ES256")) {
        md = MBEDTLS_MD_SHA256;
        want_ec = 1;
    } else
        return ig_err(INTEG_EINVAL, "JWT: unsupported algorithm '%s'", alg);
    if (!pem || !*pem)
        return ig_err(INTEG_EINVAL, "JWT: no private key");

    json_object *hdr = json_object_new_object();
    json_object_object_add(hdr, "alg", json_object_new_string(alg));
    json_object_object_add(hdr, "typ", json_object_new_string("JWT"));
    if (kid && *kid)
        json_object_object_add(hdr, "kid", json_object_new_string(kid));
    char *h64 = b64url_json(hdr);
    char *c64 = b64url_json(claims);
    json_object_put(hdr);
    char *signing = NULL, *sig64 = NULL;
    unsigned char hash[64], sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE], raw[132];
    size_t sig_len = 0;
    int rc = INTEG_OK;
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    if (!h64 || !c64) {
        rc = ig_err(INTEG_ENOMEM, "out of memory");
        goto out;
    }
    size_t slen = strlen(h64) + 1 + strlen(c64);
    if (!(signing = malloc(slen + 1))) {
        rc = ig_err(INTEG_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(signing, h64, strlen(h64));
    signing[strlen(h64)] = '.';
    memcpy(signing + strlen(h64) + 1, c64, strlen(c64) + 1);

    /* mbedtls_pk_parse_key wants the PEM's terminating NUL counted. */
    int mrc = mbedtls_pk_parse_key(&pk, (const unsigned char *)pem, strlen(pem) + 1, NULL, 0);
    if (mrc != 0) {
        rc = ig_err(INTEG_EINVAL, "JWT: the private key is not a PEM private key mbedTLS can read (-0x%04x)",
                    (unsigned)-mrc);
        goto out;
    }
    mbedtls_pk_type_t kt = mbedtls_pk_get_type(&pk);
    if (want_ec ? kt != MBEDTLS_PK_ECKEY : kt != MBEDTLS_PK_RSA) {
        rc = ig_err(INTEG_EINVAL, "JWT: %s needs %s key", alg, want_ec ? "an EC P-256" : "an RSA");
        goto out;
    }
    if (want_ec && mbedtls_pk_ec(pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
        rc = ig_err(INTEG_EINVAL, "JWT: ES256 needs a P-256 key");
        goto out;
    }
    const mbedtls_md_info_t *mi = mbedtls_md_info_from_type(md);
    if (!mi || mbedtls_md(mi, (const unsigned char *)signing, slen, hash) != 0) {
        rc = ig_err(INTEG_EINTERNAL, "JWT: hashing failed");
        goto out;
    }
    mrc = mbedtls_pk_sign(&pk, md, hash, mbedtls_md_get_size(mi), sig, &sig_len, rng, NULL);
    if (mrc != 0) {
        rc = ig_err(INTEG_ECRYPTO, "JWT: signing failed (-0x%04x)", (unsigned)-mrc);
        goto out;
    }
    const unsigned char *final_sig = sig;
    size_t final_len = sig_len;
    if (want_ec) {
        if (ecdsa_der_to_raw(sig, sig_len, raw, 32) != 0) {
            rc = ig_err(INTEG_ECRYPTO, "JWT: malformed ECDSA signature");
            goto out;
        }
        final_sig = raw;
        final_len = 64;
    }
    if (!(sig64 = ig_b64url(final_sig, final_len))) {
        rc = ig_err(INTEG_ENOMEM, "out of memory");
        goto out;
    }
    size_t total = slen + 1 + strlen(sig64);
    char *jwt = malloc(total + 1);
    if (!jwt) {
        rc = ig_err(INTEG_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(jwt, signing, slen);
    jwt[slen] = '.';
    memcpy(jwt + slen + 1, sig64, strlen(sig64) + 1);
    *out = jwt;
out:
    mbedtls_pk_free(&pk);
    sodium_memzero(hash, sizeof hash);
    free(h64);
    if (c64)
        ig_free_secret(c64, strlen(c64));
    if (signing)
        ig_free_secret(signing, strlen(signing));
    free(sig64);
    return rc;
}
