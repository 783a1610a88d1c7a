/* Shared helpers of the C benchmarks: a monotonic clock, percentiles, the
 * signed webhook fixtures and the 10-field HubSpot contacts mapping.
 * Every benchmark prints machine-readable lines, "key=value ..." per run,
 * which bench/run.py turns into the table. */
#ifndef BENCH_H
#define BENCH_H

#include <mbedtls/md.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline long bench_peak_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* p in [0,1]; sorts v in place. */
static inline double bench_percentile(double *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* A JSON-ish body of exactly `len` bytes (deterministic). */
static inline char *bench_body(size_t len)
{
    char *b = malloc(len + 1);
    static const char head[] = "{\"type\":\"customer.updated\",\"data\":{\"id\":5,\"note\":\"";
    static const char tail[] = "\"}}";
    size_t h = sizeof head - 1, t = sizeof tail - 1;
    memcpy(b, head, h);
    for (size_t i = h; i < len - t; i++)
        b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7) % 36];
    memcpy(b + len - t, tail, t);
    b[len] = '\0';
    return b;
}

static inline void bench_hmac_b64(const unsigned char *key, size_t klen, const unsigned char *msg, size_t len,
                                  char *out, size_t cap)
{
    unsigned char mac[32];
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, klen, msg, len, mac);
    sodium_bin2base64(out, cap, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
}

/* One signed delivery, the way the provider signs it. `signed_bytes` is
 * exactly what the HMAC covers (for the raw baseline). */
struct bench_delivery {
    const char *names[4];
    const char *values[4];
    size_t n;
    char id[64], ts[32], sig[128];
    unsigned char key[64];
    size_t key_len;
    unsigned char *signed_bytes;
    size_t signed_len;
};

#define BENCH_STD_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define BENCH_SHOPIFY_SECRET "shpss_bench_app_secret_0123456789"

/* scheme "standard": webhook-id/-timestamp/-signature over "id.ts.body"
 * with the base64-decoded whsec_ key; "shopify": X-Shopify-Hmac-Sha256
 * over the body with the secret string as key. */
static inline void bench_sign(struct bench_delivery *d, const char *scheme, const char *secret, const char *event_id,
                              const unsigned char *body, size_t len, int64_t ts)
{
    memset(d, 0, sizeof *d);
    snprintf(d->id, sizeof d->id, "%s", event_id);
    snprintf(d->ts, sizeof d->ts, "%lld", (long long)ts);
    if (!strcmp(scheme, "standard")) {
        sodium_base642bin(d->key, sizeof d->key, secret + 6, strlen(secret + 6), NULL, &d->key_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL);
        size_t n = strlen(d->id) + 1 + strlen(d->ts) + 1 + len;
        d->signed_bytes = malloc(n);
        int k = snprintf((char *)d->signed_bytes, n, "%s.%s.", d->id, d->ts);
        memcpy(d->signed_bytes + k, body, len);
        d->signed_len = n;
        char mac[64];
        bench_hmac_b64(d->key, d->key_len, d->signed_bytes, n, mac, sizeof mac);
        snprintf(d->sig, sizeof d->sig, "v1,%s", mac);
        d->names[0] = "webhook-id", d->values[0] = d->id;
        d->names[1] = "webhook-timestamp", d->values[1] = d->ts;
        d->names[2] = "webhook-signature", d->values[2] = d->sig;
        d->names[3] = "content-type", d->values[3] = "application/json";
        d->n = 4;
    } else {
        d->key_len = strlen(secret);
        memcpy(d->key, secret, d->key_len);
        d->signed_bytes = malloc(len);
        memcpy(d->signed_bytes, body, len);
        d->signed_len = len;
        bench_hmac_b64(d->key, d->key_len, body, len, d->sig, sizeof d->sig);
        d->names[0] = "X-Shopify-Hmac-Sha256", d->values[0] = d->sig;
        d->names[1] = "X-Shopify-Topic", d->values[1] = "orders/create";
        d->names[2] = "X-Shopify-Webhook-Id", d->values[2] = d->id;
        d->names[3] = "Content-Type", d->values[3] = "application/json";
        d->n = 4;
    }
}

#endif
