/* Webhook verification: integ_webhook_verify ("standard" and "shopify") on
 * 1 KiB and 16 KiB bodies against raw mbedTLS HMAC-SHA256 over exactly the
 * bytes the scheme signs, in this process, interleaved rep by rep.
 *
 *   bench_verify REPS                  one line per (scheme, size, rep)
 *   bench_verify --fixtures DIR        write the signed inputs for the Node
 *                                      baselines (bench/verify_node.mjs)
 *
 * Output: verify scheme=S size=N rep=R lib_ops=X raw_ops=Y [openssl_ops=Z]
 * openssl_ops (when built with OpenSSL's libcrypto, for information only):
 * the same raw HMAC with OpenSSL, whose SHA-256 uses the CPU's SHA
 * extensions where mbedTLS 2.28 has only portable C. */
#include <sys/stat.h>
#include <time.h>

#include "bench.h"
#include "integrations/integrations.h"

#ifdef BENCH_HAVE_OPENSSL
#include <openssl/evp.h>
#include <openssl/hmac.h>
#endif

static const char *secret_of(const char *scheme)
{
    return !strcmp(scheme, "standard") ? BENCH_STD_SECRET : BENCH_SHOPIFY_SECRET;
}

static int lib_once(const char *scheme, const struct bench_delivery *d, const unsigned char *body, size_t len)
{
    return integ_webhook_verify(scheme, secret_of(scheme), "POST", "https://app.example.com/hooks/x", d->names,
                                d->values, d->n, body, len, 0, 0);
}

static volatile int sink;

static double lib_rate(const char *scheme, const struct bench_delivery *d, const unsigned char *body, size_t len,
                       long iters)
{
    double t0 = bench_now();
    for (long i = 0; i < iters; i++)
        sink += lib_once(scheme, d, body, len);
    return (double)iters / (bench_now() - t0);
}

/* The limit: one HMAC-SHA256 over the signed bytes (key already decoded,
 * signed bytes already concatenated) and a constant-time compare. */
static double raw_rate(const struct bench_delivery *d, const unsigned char *want, long iters)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    unsigned char mac[32];
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        mbedtls_md_hmac(md, d->key, d->key_len, d->signed_bytes, d->signed_len, mac);
        sink += sodium_memcmp(mac, want, 32);
    }
    return (double)iters / (bench_now() - t0);
}

#ifdef BENCH_HAVE_OPENSSL
static double openssl_rate(const struct bench_delivery *d, const unsigned char *want, long iters)
{
    unsigned char mac[32];
    unsigned int len = 0;
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        HMAC(EVP_sha256(), d->key, (int)d->key_len, d->signed_bytes, d->signed_len, mac, &len);
        sink += sodium_memcmp(mac, want, 32);
    }
    return (double)iters / (bench_now() - t0);
}
#endif

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fwrite(p, 1, n, f);
    return fclose(f);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    const char *schemes[] = {"standard", "shopify"};
    const size_t sizes[] = {1024, 16384};
    int64_t now = (int64_t)time(NULL);
    if (argc == 3 && !strcmp(argv[1], "--fixtures")) {
        mkdir(argv[2], 0700);
        for (int s = 0; s < 2; s++)
            for (int z = 0; z < 2; z++) {
                char *body = bench_body(sizes[z]);
                struct bench_delivery d;
                bench_sign(&d, schemes[s], secret_of(schemes[s]), "msg_2bench0000000000000000001", (unsigned char *)body,
                           sizes[z], now);
                if (lib_once(schemes[s], &d, (unsigned char *)body, sizes[z])) {
                    fprintf(stderr, "bench_verify: fixture does not verify: %s\n", integ_errmsg());
                    return 1;
                }
                char path[512], json[2048];
                snprintf(path, sizeof path, "%s/%s-%zu.body", argv[2], schemes[s], sizes[z]);
                write_file(path, body, sizes[z]);
                int n = snprintf(json, sizeof json, "{\"scheme\":\"%s\",\"secret\":\"%s\",\"headers\":{", schemes[s],
                                 secret_of(schemes[s]));
                for (size_t h = 0; h < d.n; h++)
                    n += snprintf(json + n, sizeof json - (size_t)n, "%s\"%s\":\"%s\"", h ? "," : "", d.names[h],
                                  d.values[h]);
                n += snprintf(json + n, sizeof json - (size_t)n, "}}\n");
                snprintf(path, sizeof path, "%s/%s-%zu.json", argv[2], schemes[s], sizes[z]);
                write_file(path, json, (size_t)n);
                free(d.signed_bytes);
                free(body);
            }
        return 0;
    }
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    for (int s = 0; s < 2; s++)
        for (int z = 0; z < 2; z++) {
            char *body = bench_body(sizes[z]);
            struct bench_delivery d;
            bench_sign(&d, schemes[s], secret_of(schemes[s]), "msg_2bench0000000000000000001", (unsigned char *)body,
                       sizes[z], now);
            unsigned char want[32];
            mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), d.key, d.key_len, d.signed_bytes,
                            d.signed_len, want);
            if (lib_once(schemes[s], &d, (unsigned char *)body, sizes[z])) {
                fprintf(stderr, "bench_verify: %s does not verify: %s\n", schemes[s], integ_errmsg());
                return 1;
            }
            /* About 0.25 s per timed loop. */
            long iters = 200;
            double r = lib_rate(schemes[s], &d, (unsigned char *)body, sizes[z], iters);
            iters = (long)(r * 0.25) + 1;
            for (int rep = 0; rep < reps; rep++) {
                double lib = lib_rate(schemes[s], &d, (unsigned char *)body, sizes[z], iters);
                double raw = raw_rate(&d, want, iters);
                printf("verify scheme=%s size=%zu rep=%d lib_ops=%.0f raw_ops=%.0f", schemes[s], sizes[z], rep, lib, raw);
#ifdef BENCH_HAVE_OPENSSL
                printf(" openssl_ops=%.0f", openssl_rate(&d, want, iters));
#endif
                printf("\n");
                fflush(stdout);
            }
            free(d.signed_bytes);
            free(body);
        }
    return 0;
}
