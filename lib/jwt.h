/* Internal: signed JSON Web Tokens (RFC 7515/7519) with mbedTLS, for the
 * JWT bearer grant (RFC 7523 section 2.1: Google service accounts,
 * Salesforce) and private_key_jwt client authentication (RFC 7523 section
 * 2.2, OpenID Connect Core 9). */
#ifndef IG_JWT_H
#define IG_JWT_H

#include <json-c/json.h>

/* Sign `claims` (borrowed) as a compact JWS with `alg` ("RS256" default,
 * "RS384", "RS512", "ES256") under the PEM private key `pem` (PKCS#1,
 * PKCS#8 or SEC1). `kid` (may be NULL) goes into the header. *out is
 * malloc'd; the caller frees it with ig_free_secret (it is a bearer
 * credential). A key that does not parse, or does not fit the algorithm,
 * is INTEG_EINVAL naming the step, never the key. */
int ig_jwt_sign(const char *alg, const char *pem, const char *kid, json_object *claims, char **out);

/* base64url without padding of `len` bytes: malloc'd text. */
char *ig_b64url(const unsigned char *bin, size_t len);

#endif
