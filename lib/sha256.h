/* Internal: SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104), incremental, on
 * caller-owned contexts, no allocation.
 *
 * Why not mbedTLS: 2.28 has only a portable C compression function, and
 * webhook verification (webhook_verify.c) is one HMAC-SHA256 over the body,
 * so its cost is this function. On x86 CPUs with the SHA extensions
 * (SHA-NI) the compression function here uses them, chosen at run time with
 * CPUID; elsewhere, and on other architectures, a portable C one. The two
 * give identical results (tests/unit/test_sha256.c checks both against
 * mbedTLS).
 *
 * Messages are limited to 2^61 - 1 bytes (the bit length must fit 64 bits);
 * nothing checks it. The _final functions wipe the context: init again to
 * reuse it. */
#ifndef IG_SHA256_H
#define IG_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define IG_SHA256_DIGEST_LEN 32
#define IG_SHA256_BLOCK_LEN 64

/* Compresses `n` 64-byte blocks into `state`. */
typedef void (*ig_sha256_blocks_fn)(uint32_t state[8], const unsigned char *p, size_t n);

typedef struct ig_sha256_ctx {
    uint32_t state[8];
    uint64_t total;                          /* bytes absorbed so far */
    unsigned char buf[IG_SHA256_BLOCK_LEN]; /* a partial block */
    size_t buf_len;
    ig_sha256_blocks_fn blocks; /* chosen at init: one context, one implementation */
} ig_sha256_ctx;

typedef struct ig_hmac_sha256_ctx {
    ig_sha256_ctx inner; /* H(K ^ ipad || message ...) */
    ig_sha256_ctx outer; /* H(K ^ opad || ...), finished by _final */
} ig_hmac_sha256_ctx;

void ig_sha256_init(ig_sha256_ctx *ctx);
/* `data` may be NULL when len is 0. */
void ig_sha256_update(ig_sha256_ctx *ctx, const void *data, size_t len);
void ig_sha256_final(ig_sha256_ctx *ctx, unsigned char out[IG_SHA256_DIGEST_LEN]);
void ig_sha256(const void *data, size_t len, unsigned char out[IG_SHA256_DIGEST_LEN]);

/* A key of any length: longer than a block is hashed first (RFC 2104);
 * `key` may be NULL when key_len is 0. The context holds key-derived state:
 * _final wipes it, and a context abandoned before _final should be wiped by
 * the caller (sodium_memzero). */
void ig_hmac_sha256_init(ig_hmac_sha256_ctx *ctx, const void *key, size_t key_len);
void ig_hmac_sha256_update(ig_hmac_sha256_ctx *ctx, const void *data, size_t len);
void ig_hmac_sha256_final(ig_hmac_sha256_ctx *ctx, unsigned char out[IG_SHA256_DIGEST_LEN]);
void ig_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    unsigned char out[IG_SHA256_DIGEST_LEN]);

/* 1 when contexts initialised now use the SHA extensions, else 0. */
int ig_sha256_accelerated(void);

/* Test-only: non-zero makes contexts initialised afterwards use the portable
 * compression function even where SHA-NI is available, so tests can compare
 * both paths on one machine; 0 restores the CPU's choice. Not meant to be
 * flipped while other threads hash (they would each still get a correct
 * implementation, just not a predictable one). */
void ig_sha256_force_portable(int on);

#endif
