/* sha256: SHA-256 and HMAC-SHA256 with a run-time choice of compression
 * function (SHA-NI or portable C). Why it exists: sha256.h. */
#include "sha256.h"

#include <stdatomic.h>
#include <string.h>

#include <sodium.h>

#if defined(__x86_64__) || defined(__i386__)
#define IG_SHA256_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t k_round[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t k_initial[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/* ------------------------------------------------------------------------
 * Portable compression function
 * ---------------------------------------------------------------------- */

static inline uint32_t ror(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static inline uint32_t load_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void store_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void blocks_portable(uint32_t state[8], const unsigned char *p, size_t n)
{
    uint32_t w[64];
    for (; n; n--, p += IG_SHA256_BLOCK_LEN) {
        for (int t = 0; t < 16; t++)
            w[t] = load_be32(p + 4 * t);
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = ror(w[t - 15], 7) ^ ror(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ror(w[t - 2], 17) ^ ror(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) +
                          k_round[t] + w[t];
            uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
        state[4] += e;
        state[5] += f;
        state[6] += g;
        state[7] += h;
    }
    /* The schedule holds the message, which for HMAC is the padded key. */
    sodium_memzero(w, sizeof w);
}

/* ------------------------------------------------------------------------
 * SHA-NI compression function (x86)
 *
 * Compiled for the SHA extensions with a function attribute rather than
 * build flags, so the rest of the library keeps the baseline ISA and this
 * code only runs after CPUID said it may.
 * ---------------------------------------------------------------------- */

#ifdef IG_SHA256_X86

/* Four rounds: group g (W[4g..4g+3] in m0), and, for the first twelve
 * groups, the schedule for group g + 4 into m0 (from m0..m3, i.e.
 * W[4g..4g+15]): sha256msg1 adds sigma0(W[t-15]) to W[t-16], the alignr
 * supplies W[t-7], sha256msg2 adds sigma1(W[t-2]). The caller rotates the
 * names so m0 is always the oldest vector. */
#define IG_SHA_QROUND(g, m0, m1, m2, m3)                                                  \
    do {                                                                                  \
        __m128i wk_ =                                                                     \
            _mm_add_epi32((m0), _mm_loadu_si128((const __m128i *)(const void *)&k_round[4 * (g)])); \
        s1 = _mm_sha256rnds2_epu32(s1, s0, wk_);                                          \
        if ((g) < 12)                                                                     \
            (m0) = _mm_sha256msg2_epu32(                                                  \
                _mm_add_epi32(_mm_sha256msg1_epu32((m0), (m1)), _mm_alignr_epi8((m3), (m2), 4)), \
                (m3));                                                                    \
        s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(wk_, 0x0E));                 \
    } while (0)

__attribute__((target("sha,sse4.1,ssse3"))) static void
blocks_shani(uint32_t state[8], const unsigned char *p, size_t n)
{
    /* Byte-swaps each 32-bit lane: the message words are big-endian. */
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    /* sha256rnds2 keeps the state as (A,B,E,F) and (C,D,G,H). */
    __m128i dcba = _mm_loadu_si128((const __m128i *)(const void *)&state[0]);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)(const void *)&state[4]);
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    __m128i s0 = _mm_alignr_epi8(cdab, efgh, 8);    /* ABEF */
    __m128i s1 = _mm_blend_epi16(efgh, cdab, 0xF0); /* CDGH */

    for (; n; n--, p += IG_SHA256_BLOCK_LEN) {
        __m128i save0 = s0, save1 = s1;
        __m128i m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 0)), bswap);
        __m128i m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 16)), bswap);
        __m128i m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 32)), bswap);
        __m128i m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 48)), bswap);
        IG_SHA_QROUND(0, m0, m1, m2, m3);
        IG_SHA_QROUND(1, m1, m2, m3, m0);
        IG_SHA_QROUND(2, m2, m3, m0, m1);
        IG_SHA_QROUND(3, m3, m0, m1, m2);
        IG_SHA_QROUND(4, m0, m1, m2, m3);
        IG_SHA_QROUND(5, m1, m2, m3, m0);
        IG_SHA_QROUND(6, m2, m3, m0, m1);
        IG_SHA_QROUND(7, m3, m0, m1, m2);
        IG_SHA_QROUND(8, m0, m1, m2, m3);
        IG_SHA_QROUND(9, m1, m2, m3, m0);
        IG_SHA_QROUND(10, m2, m3, m0, m1);
        IG_SHA_QROUND(11, m3, m0, m1, m2);
        IG_SHA_QROUND(12, m0, m1, m2, m3);
        IG_SHA_QROUND(13, m1, m2, m3, m0);
        IG_SHA_QROUND(14, m2, m3, m0, m1);
        IG_SHA_QROUND(15, m3, m0, m1, m2);
        s0 = _mm_add_epi32(s0, save0);
        s1 = _mm_add_epi32(s1, save1);
    }

    __m128i feba = _mm_shuffle_epi32(s0, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(s1, 0xB1);
    _mm_storeu_si128((__m128i *)(void *)&state[0], _mm_blend_epi16(feba, dchg, 0xF0)); /* DCBA */
    _mm_storeu_si128((__m128i *)(void *)&state[4], _mm_alignr_epi8(dchg, feba, 8));    /* HGFE */
}

#undef IG_SHA_QROUND

static int cpu_has_shani(void)
{
    unsigned a, b, c, d;
    /* SSSE3 (leaf 1 ECX bit 9) and SSE4.1 (bit 19) come with every SHA-NI
     * CPU, but the code uses them, so ask rather than assume. */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 9)) || !(c & (1u << 19)))
        return 0;
    /* Returns 0 when leaf 7 is beyond the CPU's maximum. */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    return (b >> 29) & 1; /* SHA */
}

#else

static int cpu_has_shani(void)
{
    return 0;
}

#endif

/* ------------------------------------------------------------------------
 * Dispatch
 *
 * The only process-wide state in this module. g_have_shani caches the
 * answer to "does this CPU have SHA-NI?": an immutable fact about the
 * machine, so threads racing to fill it all store the same value and no
 * caller can observe a difference; atomics keep the race defined.
 * g_force_portable is the test-only switch (ig_sha256_force_portable).
 * ---------------------------------------------------------------------- */

static atomic_int g_have_shani = -1; /* -1: not asked yet */
static atomic_int g_force_portable;

static int have_shani(void)
{
    int v = atomic_load_explicit(&g_have_shani, memory_order_relaxed);
    if (v < 0) {
        v = cpu_has_shani();
        atomic_store_explicit(&g_have_shani, v, memory_order_relaxed);
    }
    return v;
}

static ig_sha256_blocks_fn choose_blocks(void)
{
    if (atomic_load_explicit(&g_force_portable, memory_order_relaxed) || !have_shani())
        return blocks_portable;
#ifdef IG_SHA256_X86
    return blocks_shani;
#else
    return blocks_portable; /* not reached: have_shani() is 0 */
#endif
}

int ig_sha256_accelerated(void)
{
    return choose_blocks() != blocks_portable;
}

void ig_sha256_force_portable(int on)
{
    atomic_store_explicit(&g_force_portable, on != 0, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * SHA-256
 * ---------------------------------------------------------------------- */

void ig_sha256_init(ig_sha256_ctx *ctx)
{
    memcpy(ctx->state, k_initial, sizeof ctx->state);
    ctx->total = 0;
    ctx->buf_len = 0;
    ctx->blocks = choose_blocks();
}

void ig_sha256_update(ig_sha256_ctx *ctx, const void *data, size_t len)
{
    if (!len)
        return; /* data may be NULL */
    const unsigned char *p = data;
    ctx->total += len;
    if (ctx->buf_len) {
        size_t take = IG_SHA256_BLOCK_LEN - ctx->buf_len;
        if (take > len)
            take = len;
        memcpy(ctx->buf + ctx->buf_len, p, take);
        ctx->buf_len += take;
        p += take;
        len -= take;
        if (ctx->buf_len < IG_SHA256_BLOCK_LEN)
            return;
        ctx->blocks(ctx->state, ctx->buf, 1);
        ctx->buf_len = 0;
    }
    /* Whole blocks straight from the caller's buffer: no copy. */
    size_t whole = len / IG_SHA256_BLOCK_LEN;
    if (whole) {
        ctx->blocks(ctx->state, p, whole);
        p += whole * IG_SHA256_BLOCK_LEN;
        len -= whole * IG_SHA256_BLOCK_LEN;
    }
    if (len) {
        memcpy(ctx->buf, p, len);
        ctx->buf_len = len;
    }
}

void ig_sha256_final(ig_sha256_ctx *ctx, unsigned char out[IG_SHA256_DIGEST_LEN])
{
    uint64_t bits = ctx->total << 3;
    size_t n = ctx->buf_len;
    ctx->buf[n++] = 0x80;
    if (n > IG_SHA256_BLOCK_LEN - 8) {
        memset(ctx->buf + n, 0, IG_SHA256_BLOCK_LEN - n);
        ctx->blocks(ctx->state, ctx->buf, 1);
        n = 0;
    }
    memset(ctx->buf + n, 0, IG_SHA256_BLOCK_LEN - 8 - n);
    store_be32(ctx->buf + 56, (uint32_t)(bits >> 32));
    store_be32(ctx->buf + 60, (uint32_t)bits);
    ctx->blocks(ctx->state, ctx->buf, 1);
    for (int i = 0; i < 8; i++)
        store_be32(out + 4 * i, ctx->state[i]);
    /* The state and buffer may hold key-derived bytes (HMAC). */
    sodium_memzero(ctx, sizeof *ctx);
}

void ig_sha256(const void *data, size_t len, unsigned char out[IG_SHA256_DIGEST_LEN])
{
    ig_sha256_ctx ctx;
    ig_sha256_init(&ctx);
    ig_sha256_update(&ctx, data, len);
    ig_sha256_final(&ctx, out);
}

/* ------------------------------------------------------------------------
 * HMAC-SHA256 (RFC 2104)
 * ---------------------------------------------------------------------- */

void ig_hmac_sha256_init(ig_hmac_sha256_ctx *ctx, const void *key, size_t key_len)
{
    unsigned char k[IG_SHA256_BLOCK_LEN] = {0};
    unsigned char pad[IG_SHA256_BLOCK_LEN];
    if (key_len > IG_SHA256_BLOCK_LEN)
        ig_sha256(key, key_len, k);
    else if (key_len)
        memcpy(k, key, key_len);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x36;
    ig_sha256_init(&ctx->inner);
    ig_sha256_update(&ctx->inner, pad, sizeof pad);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x5c;
    ig_sha256_init(&ctx->outer);
    ig_sha256_update(&ctx->outer, pad, sizeof pad);
    sodium_memzero(k, sizeof k);
    sodium_memzero(pad, sizeof pad);
}

void ig_hmac_sha256_update(ig_hmac_sha256_ctx *ctx, const void *data, size_t len)
{
    ig_sha256_update(&ctx->inner, data, len);
}

void ig_hmac_sha256_final(ig_hmac_sha256_ctx *ctx, unsigned char out[IG_SHA256_DIGEST_LEN])
{
    unsigned char ih[IG_SHA256_DIGEST_LEN];
    ig_sha256_final(&ctx->inner, ih);
    ig_sha256_update(&ctx->outer, ih, sizeof ih);
    ig_sha256_final(&ctx->outer, out);
    sodium_memzero(ih, sizeof ih);
}

void ig_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    unsigned char out[IG_SHA256_DIGEST_LEN])
{
    ig_hmac_sha256_ctx ctx;
    ig_hmac_sha256_init(&ctx, key, key_len);
    ig_hmac_sha256_update(&ctx, data, len);
    ig_hmac_sha256_final(&ctx, out);
}
