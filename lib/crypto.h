/* Internal: secrets at rest.
 *
 * A sealed value is text: "v1.<key id>.<base64url(nonce || ciphertext)>".
 * The cipher is XChaCha20-Poly1305-IETF under a per-tenant subkey derived
 * from the master key with keyed BLAKE2b; the associated data binds the
 * tenant id, the object id and the purpose ("credentials", "app_credentials",
 * "webhook_secret", ...), so a ciphertext moved to another row, tenant or
 * field fails to open. The key id is the first 8 bytes of BLAKE2b(master,
 * "integ-key-id"), hex: it tells which master key sealed a value. */
#ifndef IG_CRYPTO_H
#define IG_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define IG_KEY_BYTES 32

typedef struct ig_master_key {
    unsigned char key[IG_KEY_BYTES];
    char key_id[17];
} ig_master_key;

/* Initialise libsodium and libcurl once per process (thread-safe). */
int ig_global_init(void);

/* Decode base64 (standard, padding required) master key text into `mk`
 * (sodium_mlock'ed by the caller's choice). Error names `what`. */
int ig_master_key_from_b64(ig_master_key *mk, const char *b64, const char *what);

/* Seal `plain` (len bytes). out is malloc'd text. */
int ig_seal(const ig_master_key *mk, const char *tenant_id, const char *object_id,
            const char *purpose, const unsigned char *plain, size_t len, char **out);

/* Open sealed text. out is malloc'd, NUL-terminated (out_len excludes the
 * NUL); the caller wipes it with ig_free_secret. INTEG_ECRYPTO when the key
 * is wrong, the ciphertext tampered or moved. */
int ig_open(const ig_master_key *mk, const char *tenant_id, const char *object_id,
            const char *purpose, const char *sealed, unsigned char **out, size_t *out_len);

/* Zero then free a secret buffer of `len` bytes (len may be strlen). */
void ig_free_secret(void *p, size_t len);

/* Standard base64 with padding: malloc'd text. */
char *ig_b64_encode(const unsigned char *bin, size_t len);

#endif
