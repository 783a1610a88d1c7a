/* Binding overhead, the C side: calls per second of a cheap call
 * (integ_definition_get "hubspot-crm" on an in-memory context) and of
 * integ_webhook_verify ("standard", 1 KiB body). bench/binding.py and
 * bench/binding_node.cjs make the same calls through the Python and Node
 * bindings; C is their baseline.
 *
 *   bench_binding REPS
 * Output: binding lang=c call=definition_get|webhook_verify rep=R calls_per_s=X */
#include <time.h>

#include "bench.h"
#include "integrations/integrations.h"

static volatile size_t sink;

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (sodium_init() < 0)
        return 1;
    char *key = NULL, opts[256];
    integ_generate_master_key(&key);
    snprintf(opts, sizeof opts, "{\"store\":\"sqlite::memory:\",\"master_key\":\"%s\"}", key);
    integ_free(key);
    integ_ctx *ctx = NULL;
    if (integ_ctx_open(&ctx, opts)) {
        fprintf(stderr, "bench_binding: %s\n", integ_errmsg());
        return 1;
    }
    char *body = bench_body(1024);
    struct bench_delivery d;
    bench_sign(&d, "standard", BENCH_STD_SECRET, "msg_2bench0000000000000000001", (unsigned char *)body, 1024,
               (int64_t)time(NULL));
    for (int call = 0; call < 2; call++) {
        const char *name = call ? "webhook_verify" : "definition_get";
        long iters = 0;
        for (int rep = -1; rep < reps; rep++) {
            long n = rep < 0 ? 300 : iters;
            double t0 = bench_now();
            for (long i = 0; i < n; i++) {
                if (call == 0) {
                    char *out = NULL;
                    if (integ_definition_get(ctx, "hubspot-crm", &out))
                        return 1;
                    sink += strlen(out);
                    integ_free(out);
                } else if (integ_webhook_verify("standard", BENCH_STD_SECRET, "POST", "", d.names, d.values, d.n,
                                                (unsigned char *)body, 1024, 0, 0)) {
                    fprintf(stderr, "bench_binding: verify: %s\n", integ_errmsg());
                    return 1;
                }
            }
            double r = (double)n / (bench_now() - t0);
            if (rep < 0)
                iters = (long)(r * 0.25) + 1; /* about 0.25 s per rep */
            else
                printf("binding lang=c call=%s rep=%d calls_per_s=%.0f\n", name, rep, r);
        }
    }
    fflush(stdout);
    integ_ctx_close(ctx);
    free(body);
    free(d.signed_bytes);
    return 0;
}
