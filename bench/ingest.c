/* Webhook ingest: integ_webhook_receive of signed Shopify deliveries (1 KiB
 * body, a new X-Shopify-Webhook-Id each) into the library's durable queue,
 * against a raw SQLite insert-and-commit loop on the same file system (a
 * table of the same rough shape: ids, JSON text and the body as a blob;
 * one transaction per event; WAL and synchronous=NORMAL, the library's own
 * settings). Reps interleave the two. In the default durability mode
 * (normal: an accepted event survives a process crash, an OS crash may
 * lose the last ones) the library appends each event to the store's inbox
 * (lib/store_inbox.h) and moves batches of them into its queue table; a
 * rep's time includes moving what its events left in the inbox (a
 * transaction begun and ended at its end), and after the last rep the
 * queue table must hold every event sent, or the benchmark fails.
 *
 *   bench_ingest DIR EVENTS_PER_REP REPS [THREADS [normal|full]]
 * Output: ingest impl=lib|raw|raw-shape|raw-floor|raw-floor-nockpt rep=R events=N events_per_s=X
 *         p50_us=Y p99_us=Z
 * The raw variants (raw_variants below) bound what one commit per event
 * can do on this file system: the library's own table shape, and the
 * least any deduplicating queue writes (a row and its unique index), with
 * and without checkpoints.
 *
 * With THREADS, the library's events of each rep are sent by that many
 * threads at once (each its share), as an HTTP server's threads would, so
 * concurrent receivers share commits (lib/webhook_ingest.c); the line is
 * then impl=lib-threadsT and adds batch_mean=B, the mean number of events
 * per commit (read from the context's internal counters: this benchmark
 * links the library's objects, as the unit tests do). The raw baseline
 * stays one thread, and only "raw" runs. THREADS 0 is one caller.
 *
 * The durability mode (default normal) is the context option
 * "durability"; the raw baseline then runs with the same PRAGMA
 * synchronous (FULL: every commit syncs the WAL), and only "raw". */
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
    double max = bench_percentile(lat, n, 1.0);
    printf("ingest impl=%s rep=%d events=%zu events_per_s=%.0f p50_us=%.1f p99_us=%.1f max_us=%.0f\n", impl, rep,
           n, (double)n / secs, p50 * 1e6, p99 * 1e6, max * 1e6);
    fflush(stdout);
}

/* The webhook id of delivery k: a random-looking UUID, as Shopify's
 * X-Shopify-Webhook-Id is, so the duplicate index takes each insert at a
 * random place (sequential ids would only ever append). Reproducible:
 * splitmix64 of k. */
static void webhook_id(char out[40], long k)
{
    uint64_t h[2];
    for (int i = 0; i < 2; i++) {
        uint64_t z = (uint64_t)k * 2 + (uint64_t)i + 0x9e3779b97f4a7c15ULL;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        h[i] = z ^ (z >> 31);
    }
    snprintf(out, 40, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(h[0] >> 32), (unsigned)(h[0] >> 16) & 0xffff,
             (unsigned)h[0] & 0xfff, (unsigned)(0x8000 | ((h[1] >> 48) & 0x3fff)),
             (unsigned long long)(h[1] & 0xffffffffffffULL));
}

/* Move what a rep left in the inbox into the queue table, on the rep's
 * clock: a transaction's begin moves it. 0 on success. */
static int move_inbox(integ_ctx *ctx)
{
    void *tx = NULL;
    return ig_tx_begin(ctx, 0, &tx) || ig_tx_end(ctx, tx, 0, INTEG_OK);
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
        char wid[40];
        webhook_id(wid, atomic_fetch_add(w->seq, 1));
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
    if (move_inbox(ctx))
        failed = 1;
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
    snprintf(p, sizeof p, "%s-inbox", path);
    unlink(p);
}

/* Rows in the library's queue table (after its context closed). */
static long queued_rows(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM webhook_events", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int sql_ok(sqlite3 *db, int rc, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "bench_ingest: raw %s: %s\n", what, sqlite3_errmsg(db));
        return 0;
    }
    return 1;
}

/* The raw baselines: each its own file, schema and prepared statements. */
struct raw_variant {
    const char *impl, *ddl; /* ddl NULL: the library's own table (lib_queue_ddl) */
    int autocheckpoint; /* 0: none during a rep; a TRUNCATE checkpoint after it, untimed */
    char path[1024];
    sqlite3 *db;
    sqlite3_stmt *ins, *begin, *commit;
};

#define QUEUE_COLUMNS                                                                                                  \
    " tenant_id TEXT, endpoint_id TEXT, integration_id TEXT, event_id TEXT, status TEXT,"                              \
    " next_attempt_at_ms INTEGER, lease_until_ms INTEGER, data TEXT NOT NULL, blob BLOB);"

static struct raw_variant raw_variants[] = {
    /* The baseline of earlier runs: the same unique and status indexes. */
    {.impl = "raw",
     .ddl = "CREATE TABLE events (id TEXT PRIMARY KEY NOT NULL," QUEUE_COLUMNS
     "CREATE UNIQUE INDEX ux_events ON events (endpoint_id, event_id);"
     "CREATE INDEX ix_events_status ON events (status, next_attempt_at_ms);",
     .autocheckpoint = 1000},
    /* The library's own webhook_events table and indexes, as its store
     * created them (ddl NULL: read from the library's file, lib_queue_ddl):
     * what the library's inserts cost in SQLite alone. */
    {.impl = "raw-shape", .ddl = NULL, .autocheckpoint = 1000},
    /* The least a durable, deduplicating queue writes per event: the row
     * (rowid only) and its (endpoint, event id) unique index. */
    {.impl = "raw-floor",
     .ddl = "CREATE TABLE events (id TEXT NOT NULL," QUEUE_COLUMNS
                  "CREATE UNIQUE INDEX ux_events ON events (endpoint_id, event_id);",
     .autocheckpoint = 1000},
    /* The same without any checkpoint during the rep (the WAL only grows):
     * one commit per event with nothing else paid. */
    {.impl = "raw-floor-nockpt",
     .ddl = "CREATE TABLE events (id TEXT NOT NULL," QUEUE_COLUMNS
                         "CREATE UNIQUE INDEX ux_events ON events (endpoint_id, event_id);",
     .autocheckpoint = 0},
};
#define N_RAW (sizeof raw_variants / sizeof raw_variants[0])

/* The library's queue table (webhook_events and its indexes) as its store
 * created them in the file at `path`, renamed to events, into out: so the
 * "raw-shape" variant cannot drift from the library's schema. 1 on success. */
static int lib_queue_ddl(const char *path, char *out, size_t size)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    size_t len = 0;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "SELECT replace(sql, 'webhook_events', 'events') FROM sqlite_master"
                                " WHERE tbl_name = 'webhook_events' AND sql IS NOT NULL"
                                " ORDER BY type <> 'table', rowid",
                                -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int n = snprintf(out + len, size - len, "%s;", (const char *)sqlite3_column_text(st, 0));
        if (n < 0 || (size_t)n >= size - len) {
            rc = SQLITE_TOOBIG;
            break;
        }
        len += (size_t)n;
        rc = SQLITE_OK;
    }
    int ok = rc == SQLITE_DONE && len > 0;
    if (!ok)
        fprintf(stderr, "bench_ingest: raw-shape: the library's webhook_events DDL from %s: %s\n", path,
                rc == SQLITE_TOOBIG ? "too long"
                : rc == SQLITE_DONE ? "no such table"
                                    : sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok;
}

/* Open a raw variant; lib_db is the library's file (the "raw-shape" DDL). */
static int raw_open(struct raw_variant *v, const char *dir, int full, const char *lib_db)
{
    char sql[4096], shape[2048];
    const char *ddl = v->ddl;
    if (!ddl) {
        if (!lib_queue_ddl(lib_db, shape, sizeof shape))
            return 0;
        ddl = shape;
    }
    snprintf(v->path, sizeof v->path, "%s/bench-ingest-%s-%d.db", dir, v->impl, (int)getpid());
    rm_db(v->path);
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA wal_autocheckpoint=%d; %s",
             full ? "FULL" : "NORMAL", v->autocheckpoint, ddl);
    return sql_ok(v->db, sqlite3_open(v->path, &v->db), "open") &&
           sql_ok(v->db, sqlite3_exec(v->db, sql, NULL, NULL, NULL), "schema") &&
           sql_ok(v->db,
                  sqlite3_prepare_v2(v->db,
                                     "INSERT INTO events (id, tenant_id, endpoint_id, integration_id, event_id, status,"
                                     " next_attempt_at_ms, lease_until_ms, data, blob)"
                                     " VALUES (?1, 'bench', ?2, 'integration', ?3, 'queued', ?4, 0, ?5, ?6)",
                                     -1, &v->ins, NULL),
                  "prepare") &&
           sql_ok(v->db, sqlite3_prepare_v2(v->db, "BEGIN IMMEDIATE", -1, &v->begin, NULL), "prepare") &&
           sql_ok(v->db, sqlite3_prepare_v2(v->db, "COMMIT", -1, &v->commit, NULL), "prepare");
}

static void raw_close(struct raw_variant *v)
{
    sqlite3_finalize(v->ins);
    sqlite3_finalize(v->begin);
    sqlite3_finalize(v->commit);
    sqlite3_close(v->db);
    rm_db(v->path);
}

/* One rep of a raw variant: n events, each its own BEGIN IMMEDIATE/COMMIT. */
static int raw_rep(struct raw_variant *v, int rep, size_t n, const char *ep_id, const char *body, size_t body_len,
                   atomic_long *seq, double *lat)
{
    double t0 = bench_now();
    for (size_t i = 0; i < n; i++) {
        char id[64], wid[40], meta[512];
        long k = atomic_fetch_add(seq, 1);
        double a = bench_now();
        snprintf(id, sizeof id, "0190a0b0-c0d0-7000-8000-%012ld", k);
        webhook_id(wid, k);
        int ml = snprintf(meta, sizeof meta,
                          "{\"id\":\"%s\",\"tenant_id\":\"bench\",\"endpoint_id\":\"%s\",\"event_id\":\"%s\","
                          "\"event_type\":\"orders/create\",\"status\":\"queued\",\"attempts\":0,"
                          "\"headers\":{\"x-shopify-topic\":\"orders/create\",\"x-shopify-webhook-id\":\"%s\","
                          "\"content-type\":\"application/json\"}}",
                          id, ep_id, wid, wid);
        sqlite3_step(v->begin);
        sqlite3_reset(v->begin);
        sqlite3_bind_text(v->ins, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(v->ins, 2, ep_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(v->ins, 3, wid, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(v->ins, 4, (sqlite3_int64)k);
        sqlite3_bind_text(v->ins, 5, meta, ml, SQLITE_TRANSIENT);
        sqlite3_bind_blob(v->ins, 6, body, (int)body_len, SQLITE_STATIC);
        int rc = sqlite3_step(v->ins);
        sqlite3_reset(v->ins);
        int crc = sqlite3_step(v->commit);
        sqlite3_reset(v->commit);
        lat[i] = bench_now() - a;
        if (rc != SQLITE_DONE || crc != SQLITE_DONE) {
            fprintf(stderr, "bench_ingest: %s insert: %s\n", v->impl, sqlite3_errmsg(v->db));
            return 1;
        }
    }
    double secs = bench_now() - t0;
    if (!v->autocheckpoint)
        sqlite3_wal_checkpoint_v2(v->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    if (rep >= 0)
        report(v->impl, rep, lat, n, secs);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_ingest DIR EVENTS_PER_REP REPS [THREADS [normal|full]]\n");
        return 2;
    }
    int threads = argc > 4 ? atoi(argv[4]) : 0;
    if (argc > 4 && (threads < 0 || threads > 1024)) {
        fprintf(stderr, "bench_ingest: THREADS must be 0 (one caller) or 1..1024\n");
        return 2;
    }
    const char *durability = argc > 5 ? argv[5] : "normal";
    int full = strcmp(durability, "full") == 0;
    if (!full && strcmp(durability, "normal") != 0) {
        fprintf(stderr, "bench_ingest: durability must be normal or full\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    const char *dir = argv[1];
    size_t per = (size_t)atol(argv[2]);
    int reps = atoi(argv[3]);
    char lib_db[1024], opts[2048];
    snprintf(lib_db, sizeof lib_db, "%s/bench-ingest-lib-%d.db", dir, (int)getpid());
    rm_db(lib_db);

    /* The library: a Shopify integration with an endpoint. */
    char *key = NULL, *out = NULL;
    integ_generate_master_key(&key);
    snprintf(opts, sizeof opts, "{\"store\":\"sqlite:%s\",\"durability\":\"%s\",\"master_key\":\"%s\"}", lib_db,
             durability, key);
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

    /* The raw baselines (with THREADS or in full mode, only the first: the
     * reference), in the same durability mode. */
    size_t n_raw = threads || full ? 1 : N_RAW;
    for (size_t v = 0; v < n_raw; v++)
        if (!raw_open(&raw_variants[v], dir, full, lib_db))
            return 1;

    double *lat = malloc((per > 200 ? per : 200) * sizeof *lat);
    atomic_long seq = 0;
    long sent = 0;
    /* Warm-up: 200 of each, untimed. */
    for (int rep = -1; rep < reps; rep++) {
        size_t n = rep < 0 ? 200 : per;
        /* library */
        double t0 = bench_now();
        if (threads && lib_threads(ctx, threads, rep, n, ep_id, url, body, body_len, &d, &seq, lat))
            return 1;
        for (size_t i = 0; !threads && i < n; i++) {
            char wid[40];
            webhook_id(wid, seq++);
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
        /* What the rep left in the inbox goes into the table on its clock. */
        if (!threads && move_inbox(ctx)) {
            fprintf(stderr, "bench_ingest: move: %s\n", integ_errmsg());
            return 1;
        }
        double secs = bench_now() - t0;
        sent += (long)n;
        if (rep >= 0 && !threads)
            report("lib", rep, lat, n, secs);
        for (size_t v = 0; v < n_raw; v++)
            if (raw_rep(&raw_variants[v], rep, n, ep_id, body, body_len, &seq, lat))
                return 1;
    }
    for (size_t v = 0; v < n_raw; v++)
        raw_close(&raw_variants[v]);
    integ_session_close(s);
    integ_ctx_close(ctx);
    long rows = queued_rows(lib_db);
    if (rows != sent) {
        fprintf(stderr, "bench_ingest: %ld events accepted, %ld in the queue table\n", sent, rows);
        return 1;
    }
    rm_db(lib_db);
    free(lat);
    free(body);
    free(d.signed_bytes);
    return 0;
}
