/* Webhook ingest: integ_webhook_receive of signed Shopify deliveries (1 KiB
 * body, a new X-Shopify-Webhook-Id each) into the library's durable queue,
 * against a raw SQLite insert-and-commit loop on the same file system (a
 * table of the same rough shape: ids, JSON text and the body as a blob;
 * one transaction per event; WAL and synchronous=NORMAL, the library's own
 * settings). Reps interleave the two. The library has one durability mode
 * (WAL + synchronous=NORMAL: a commit survives a process crash, and an OS
 * crash may lose the last commits but never corrupts).
 *
 *   bench_ingest DIR EVENTS_PER_REP REPS [THREADS]
 * Output: ingest impl=lib|raw rep=R events=N events_per_s=X p50_us=Y p99_us=Z
 *
 * With THREADS, the library's events of each rep are sent by that many
 * threads at once (each its share), as an HTTP server's threads would, so
 * concurrent receivers share commits (lib/webhook_ingest.c); the line is
 * then impl=lib-threadsT and adds batch_mean=B, the mean number of events
 * per commit (read from the context's internal counters: this benchmark
 * links the library's objects, as the unit tests do). The raw baseline
 * stays one thread. */
#include <json-c/json.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <unistd.h>

#include "bench.h"
#include "ctx.h"
#include "integrations/integrations.h"

static void report(const char *impl, int rep, double *lat, size_t n, double secs)
{
    double p50 = bench_percentile(lat, n, 0.50), p99 = bench_percentile(lat, n, 0.99);
    printf("ingest impl=%s rep=%d events=%zu events_per_s=%.0f p50_us=%.1f p99_us=%.1f\n", impl, rep, n,
           (double)n / secs, p50 * 1e6, p99 * 1e6);
    fflush(stdout);
}

/* One sending thread of the concurrent mode. */
struct sender {
    integ_ctx *ctx;
    const char *ep_id, *url, *body;
    size_t body_len;
    const struct bench_delivery *d;
    atomic_long *seq;
    pthread_barrier_t *start;
    double *lat; /* this thread's slice */
    size_t n;
    int failed;
};

static void *send_share(void *arg)
{
    struct sender *w = arg;
    const char *values[4];
    memcpy(values, w->d->values, sizeof values);
    pthread_barrier_wait(w->start);
    for (size_t i = 0; i < w->n; i++) {
        char wid[64];
        snprintf(wid, sizeof wid, "b7e1c3a0-%012ld", atomic_fetch_add(w->seq, 1));
        values[2] = wid;
        int status = 0;
        char *ob = NULL;
        double a = bench_now();
        int rc = integ_webhook_receive(w->ctx, w->ep_id, "POST", w->url, w->d->names, values, w->d->n,
                                       (const unsigned char *)w->body, w->body_len, &status, &ob);
        w->lat[i] = bench_now() - a;
        integ_free(ob);
        if (rc || status != 202) {
            fprintf(stderr, "bench_ingest: receive: rc=%d status=%d %s\n", rc, status, integ_errmsg());
            w->failed = 1;
            return NULL;
        }
    }
    return NULL;
}

/* One rep of the library with `threads` senders; 0 on success. */
static int lib_threads(integ_ctx *ctx, int threads, int rep, size_t n, const char *ep_id, const char *url,
                       const char *body, size_t body_len, const struct bench_delivery *d, atomic_long *seq,
                       double *lat)
{
    struct sender *w = calloc((size_t)threads, sizeof *w);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    uint64_t b0 = 0, e0 = 0, b1 = 0, e1 = 0;
    ig_wh_ingest_stats(&ctx->ingest, &b0, &e0, NULL);
    size_t off = 0;
    for (int t = 0; t < threads; t++) {
        size_t share = n / (size_t)threads + ((size_t)t < n % (size_t)threads);
        w[t] = (struct sender){ctx, ep_id, url, body, body_len, d, seq, &start, lat + off, share, 0};
        off += share;
        pthread_create(&tid[t], NULL, send_share, &w[t]);
    }
    pthread_barrier_wait(&start);
    double t0 = bench_now();
    int failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        failed |= w[t].failed;
    }
    double secs = bench_now() - t0;
    ig_wh_ingest_stats(&ctx->ingest, &b1, &e1, NULL);
    pthread_barrier_destroy(&start);
    free(tid);
    free(w);
    if (failed)
        return 1;
    if (rep >= 0) {
        char impl[32];
        snprintf(impl, sizeof impl, "lib-threads%d", threads);
        double p50 = bench_percentile(lat, n, 0.50), p99 = bench_percentile(lat, n, 0.99);
        printf("ingest impl=%s rep=%d events=%zu events_per_s=%.0f p50_us=%.1f p99_us=%.1f batch_mean=%.2f\n", impl,
               rep, n, (double)n / secs, p50 * 1e6, p99 * 1e6,
               b1 > b0 ? (double)(e1 - e0) / (double)(b1 - b0) : 0.0);
        fflush(stdout);
    }
    return 0;
}

static void rm_db(const char *path)
{
    char p[1100];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static int sql_ok(sqlite3 *db, int rc, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "bench_ingest: raw %s: %s\n", what, sqlite3_errmsg(db));
        return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_ingest DIR EVENTS_PER_REP REPS [THREADS]\n");
        return 2;
    }
    int threads = argc > 4 ? atoi(argv[4]) : 0;
    if (argc > 4 && (threads < 1 || threads > 1024)) {
        fprintf(stderr, "bench_ingest: THREADS must be 1..1024\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    const char *dir = argv[1];
    size_t per = (size_t)atol(argv[2]);
    int reps = atoi(argv[3]);
    char lib_db[1024], raw_db[1024], opts[2048];
    snprintf(lib_db, sizeof lib_db, "%s/bench-ingest-lib-%d.db", dir, (int)getpid());
    snprintf(raw_db, sizeof raw_db, "%s/bench-ingest-raw-%d.db", dir, (int)getpid());
    rm_db(lib_db);
    rm_db(raw_db);

    /* The library: a Shopify integration with an endpoint. */
    char *key = NULL, *out = NULL;
    integ_generate_master_key(&key);
    snprintf(opts, sizeof opts, "{\"store\":\"sqlite:%s\",\"master_key\":\"%s\"}", lib_db, key);
    integ_free(key);
    integ_ctx *ctx = NULL;
    integ_session *s = NULL;
    if (integ_ctx_open(&ctx, opts) || integ_session_open(&s, ctx, "bench", "bench", "[\"admin\"]") ||
        integ_integration_create(s,
                                 "{\"integration_definition_id\":\"shopify-ecommerce\",\"credentials\":{\"api_key\":\"x\"},"
                                 "\"config\":{\"shop\":\"bench.myshopify.com\"}}",
                                 &out)) {
        fprintf(stderr, "bench_ingest: setup: %s\n", integ_errmsg());
        return 1;
    }
    json_object *o = json_tokener_parse(out);
    char integ_id[64], ep_id[128];
    snprintf(integ_id, sizeof integ_id, "%s", json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    integ_free(out);
    if (integ_webhook_endpoint_create(s, integ_id, "{\"secret\":\"" BENCH_SHOPIFY_SECRET "\"}", &out)) {
        fprintf(stderr, "bench_ingest: endpoint: %s\n", integ_errmsg());
        return 1;
    }
    o = json_tokener_parse(out);
    snprintf(ep_id, sizeof ep_id, "%s", json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    integ_free(out);

    size_t body_len = 1024;
    char *body = bench_body(body_len);
    struct bench_delivery d;
    bench_sign(&d, "shopify", BENCH_SHOPIFY_SECRET, "x", (unsigned char *)body, body_len, 0);
    char url[256];
    snprintf(url, sizeof url, "https://app.example.com/hooks/%s", ep_id);

    /* The raw baseline. */
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL, *begin = NULL, *commit = NULL;
    if (!sql_ok(db, sqlite3_open(raw_db, &db), "open") ||
        !sql_ok(db,
                sqlite3_exec(db,
                             "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                             "CREATE TABLE events (id TEXT PRIMARY KEY NOT NULL, endpoint_id TEXT, event_id TEXT,"
                             " status TEXT, next_attempt_at_ms INTEGER, data TEXT NOT NULL, blob BLOB);"
                             "CREATE UNIQUE INDEX ux_events ON events (endpoint_id, event_id);"
                             "CREATE INDEX ix_events_status ON events (status, next_attempt_at_ms);",
                             NULL, NULL, NULL),
                "schema") ||
        !sql_ok(db, sqlite3_prepare_v2(db, "INSERT INTO events VALUES (?,?,?,'queued',?,?,?)", -1, &ins, NULL),
                "prepare") ||
        !sql_ok(db, sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL), "prepare") ||
        !sql_ok(db, sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL), "prepare"))
        return 1;

    double *lat = malloc((per > 200 ? per : 200) * sizeof *lat);
    atomic_long seq = 0;
    /* Warm-up: 200 of each, untimed. */
    for (int rep = -1; rep < reps; rep++) {
        size_t n = rep < 0 ? 200 : per;
        /* library */
        double t0 = bench_now();
        if (threads && lib_threads(ctx, threads, rep, n, ep_id, url, body, body_len, &d, &seq, lat))
            return 1;
        for (size_t i = 0; !threads && i < n; i++) {
            char wid[64];
            snprintf(wid, sizeof wid, "b7e1c3a0-%012ld", seq++);
            d.values[2] = wid;
            int status = 0;
            char *ob = NULL;
            double a = bench_now();
            int rc = integ_webhook_receive(ctx, ep_id, "POST", url, d.names, d.values, d.n, (unsigned char *)body,
                                           body_len, &status, &ob);
            lat[i] = bench_now() - a;
            integ_free(ob);
            if (rc || status != 202) {
                fprintf(stderr, "bench_ingest: receive: rc=%d status=%d %s\n", rc, status, integ_errmsg());
                return 1;
            }
        }
        double secs = bench_now() - t0;
        if (rep >= 0 && !threads)
            report("lib", rep, lat, n, secs);
        /* raw */
        t0 = bench_now();
        for (size_t i = 0; i < n; i++) {
            char id[64], wid[64], meta[512];
            double a = bench_now();
            snprintf(id, sizeof id, "0190a0b0-c0d0-7000-8000-%012ld", seq);
            snprintf(wid, sizeof wid, "b7e1c3a0-%012ld", seq++);
            int ml = snprintf(meta, sizeof meta,
                              "{\"id\":\"%s\",\"tenant_id\":\"bench\",\"endpoint_id\":\"%s\",\"event_id\":\"%s\","
                              "\"event_type\":\"orders/create\",\"status\":\"queued\",\"attempts\":0,"
                              "\"headers\":{\"x-shopify-topic\":\"orders/create\",\"x-shopify-webhook-id\":\"%s\","
                              "\"content-type\":\"application/json\"}}",
                              id, ep_id, wid, wid);
            sqlite3_step(begin);
            sqlite3_reset(begin);
            sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 2, ep_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(ins, 3, wid, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(ins, 4, (sqlite3_int64)seq);
            sqlite3_bind_text(ins, 5, meta, ml, SQLITE_TRANSIENT);
            sqlite3_bind_blob(ins, 6, body, (int)body_len, SQLITE_STATIC);
            int rc = sqlite3_step(ins);
            sqlite3_reset(ins);
            int crc = sqlite3_step(commit);
            sqlite3_reset(commit);
            lat[i] = bench_now() - a;
            if (rc != SQLITE_DONE || crc != SQLITE_DONE) {
                fprintf(stderr, "bench_ingest: raw insert: %s\n", sqlite3_errmsg(db));
                return 1;
            }
        }
        secs = bench_now() - t0;
        if (rep >= 0)
            report("raw", rep, lat, n, secs);
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_close(db);
    integ_session_close(s);
    integ_ctx_close(ctx);
    rm_db(lib_db);
    rm_db(raw_db);
    free(lat);
    free(body);
    free(d.signed_bytes);
    return 0;
}
