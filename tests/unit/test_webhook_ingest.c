/* Group commit of received webhooks (lib/webhook_ingest.c): many threads
 * receiving at once share commits, and every caller still gets its own
 * answer: exactly one 202 per delivery id (the others 200 duplicate, within
 * a batch or against the store), a 202 only for a committed row, and a
 * failing event's error (with its message) only for its own caller while
 * the rest of its batch is committed.
 *
 * The store is the built-in SQLite one behind a wrapping vtable that can
 * hold a batch open until others have queued (so batch contents are
 * exact), fail one event's insert, a commit or a begin, slow commits down,
 * and that behaves like PostgreSQL after a failed statement: the
 * transaction is aborted, every later statement and the commit fail. */
#include <json-c/json.h>
#include <mbedtls/md.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "integrations/store.h"
#include "test.h"
#include "webhook_ingest.h"

#define SECRET "shpss_ingest_test_secret"
#define BODY "{\"id\":42,\"note\":\"group commit\"}"

/* ---- the wrapping store ----------------------------------------------------------- */

struct wrap {
    const integ_store *in;
    void *data;
};

struct wtx {
    struct wrap *w;
    void *in;
    int write;
    int aborted; /* a statement failed: PostgreSQL refuses everything after */
    int puts;
};

/* Test knobs and counters, shared by the store callbacks and the tests. */
static integ_ctx *g_ctx;
static atomic_int gate_target;        /* >0: the next event insert waits for this many queued */
static atomic_int fail_commit_once;   /* the next commit of a multi-event tx fails */
static atomic_int fail_write_begin;   /* the next write begin fails */
static atomic_int commit_delay_us;    /* sleep before committing a tx that inserted */
static atomic_int write_begins, event_lists;

static int w_aborted(void)
{
    return integ_error_set(INTEG_ESTORE, "wrap: current transaction is aborted, commands ignored until end of "
                                         "transaction block");
}

static int w_open(void *d) { return ((struct wrap *)d)->in->open(((struct wrap *)d)->data); }

static void w_close(void *d)
{
    struct wrap *w = d;
    w->in->close(w->data);
    free(w);
}

static int w_begin(void *d, int write, void **out)
{
    struct wrap *w = d;
    *out = NULL;
    if (write) {
        atomic_fetch_add(&write_begins, 1);
        if (atomic_exchange(&fail_write_begin, 0))
            return integ_error_set(INTEG_ECONFLICT, "wrap: begin: database is busy (injected)");
    }
    struct wtx *t = calloc(1, sizeof *t);
    if (!t)
        return INTEG_ENOMEM;
    int rc = w->in->begin(w->data, write, &t->in);
    if (rc) {
        free(t);
        return rc;
    }
    t->w = w;
    t->write = write;
    *out = t;
    return INTEG_OK;
}

static int w_end(void *tx, int commit)
{
    struct wtx *t = tx;
    int rc;
    if (commit && t->aborted) {
        t->w->in->end(t->in, 0);
        rc = w_aborted();
    } else if (commit && t->puts > 1 && atomic_exchange(&fail_commit_once, 0)) {
        t->w->in->end(t->in, 0);
        rc = integ_error_set(INTEG_ESTORE, "wrap: commit: disk I/O error (injected)");
    } else {
        if (commit && t->puts && atomic_load(&commit_delay_us))
            usleep((useconds_t)atomic_load(&commit_delay_us));
        rc = t->w->in->end(t->in, commit);
    }
    free(t);
    return rc;
}

/* Hold the first event insert until `gate_target` others have queued. */
static void gate_wait(void)
{
    int want = atomic_exchange(&gate_target, 0);
    if (want <= 0)
        return;
    for (int i = 0; i < 10000; i++) {
        size_t pending = 0;
        ig_wh_ingest_stats(&g_ctx->ingest, NULL, NULL, &pending);
        if ((int)pending >= want)
            return;
        usleep(1000);
    }
    fprintf(stderr, "  gate: timed out waiting for %d queued events\n", want);
}

static int w_put(void *tx, integ_store_kind kind, const char *json, const unsigned char *blob, size_t blob_len,
                 integ_put_mode mode)
{
    struct wtx *t = tx;
    if (t->aborted)
        return w_aborted();
    if (kind == INTEG_KIND_WEBHOOK_EVENT && mode == INTEG_PUT_INSERT) {
        gate_wait();
        t->puts++;
        if (strstr(json, "\"event_id\":\"fail-")) {
            t->aborted = 1;
            return integ_error_set(INTEG_ESTORE, "wrap: insert: injected failure for this event");
        }
    }
    int rc = t->w->in->put(t->in, kind, json, blob, blob_len, mode);
    if (rc)
        t->aborted = 1;
    return rc;
}

static int w_get(void *tx, integ_store_kind kind, const char *tenant_id, const char *id, integ_store_row_cb cb,
                 void *payload)
{
    struct wtx *t = tx;
    if (t->aborted)
        return w_aborted();
    int rc = t->w->in->get(t->in, kind, tenant_id, id, cb, payload);
    if (rc && rc != INTEG_ENOTFOUND)
        t->aborted = 1;
    return rc;
}

static int w_list(void *tx, integ_store_kind kind, const char *q, integ_store_row_cb cb, void *payload)
{
    struct wtx *t = tx;
    if (t->aborted)
        return w_aborted();
    if (kind == INTEG_KIND_WEBHOOK_EVENT && t->write)
        atomic_fetch_add(&event_lists, 1);
    int rc = t->w->in->list(t->in, kind, q, cb, payload);
    if (rc)
        t->aborted = 1;
    return rc;
}

static int w_count(void *tx, integ_store_kind kind, const char *q, int64_t *out)
{
    struct wtx *t = tx;
    return t->aborted ? w_aborted() : t->w->in->count(t->in, kind, q, out);
}

static int w_remove(void *tx, integ_store_kind kind, const char *tenant_id, const char *id)
{
    struct wtx *t = tx;
    return t->aborted ? w_aborted() : t->w->in->remove(t->in, kind, tenant_id, id);
}

static int w_remove_where(void *tx, integ_store_kind kind, const char *q, int64_t *out)
{
    struct wtx *t = tx;
    return t->aborted ? w_aborted() : t->w->in->remove_where(t->in, kind, q, out);
}

static const integ_store wrap_store = {
    .version = 1,
    .name = "wrap",
    .open = w_open,
    .close = w_close,
    .begin = w_begin,
    .end = w_end,
    .put = w_put,
    .get = w_get,
    .list = w_list,
    .count = w_count,
    .remove = w_remove,
    .remove_where = w_remove_where,
};

/* ---- fixtures -------------------------------------------------------------------------- */

static char dbpath[64];
static char ep_id[128];

static void rm_db(void)
{
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
        char p[96];
        snprintf(p, sizeof p, "%s%s", dbpath, sfx[i]);
        unlink(p);
    }
}

static const char *jstr(json_object *o, const char *k) { return json_object_get_string(json_object_object_get(o, k)); }

/* A context on a fresh file behind the wrapper, with a Shopify endpoint. */
static integ_ctx *env_open(integ_session **s)
{
    snprintf(dbpath, sizeof dbpath, "integ-ingest-XXXXXX");
    int fd = mkstemp(dbpath);
    if (fd < 0)
        return NULL;
    close(fd);
    const integ_store *in = NULL;
    struct wrap *w = calloc(1, sizeof *w);
    integ_ctx *ctx = NULL;
    if (!w || integ_store_sqlite_new(&in, &w->data, dbpath) != INTEG_OK) {
        free(w);
        return NULL;
    }
    w->in = in;
    if (integ_ctx_open_with_store(&ctx, &wrap_store, w, "{\"master_key\":\"" TEST_MASTER_KEY "\"}") != INTEG_OK) {
        fprintf(stderr, "  open: %s\n", integ_errmsg());
        in->close(w->data);
        free(w);
        return NULL;
    }
    char *out = NULL;
    if (integ_session_open(s, ctx, "acme", "alice", "[\"admin\"]") != INTEG_OK ||
        integ_integration_create(*s,
                                 "{\"integration_definition_id\":\"shopify-ecommerce\",\"credentials\":{\"api_key\":\"x\"},"
                                 "\"config\":{\"shop\":\"acme.myshopify.com\"}}",
                                 &out) != INTEG_OK) {
        fprintf(stderr, "  setup: %s\n", integ_errmsg());
        integ_ctx_close(ctx);
        return NULL;
    }
    json_object *o = json_tokener_parse(out);
    char integ_id[64];
    snprintf(integ_id, sizeof integ_id, "%s", jstr(o, "id"));
    json_object_put(o);
    integ_free(out);
    if (integ_webhook_endpoint_create(*s, integ_id, "{\"secret\":\"" SECRET "\"}", &out) != INTEG_OK) {
        fprintf(stderr, "  endpoint: %s\n", integ_errmsg());
        integ_ctx_close(ctx);
        return NULL;
    }
    o = json_tokener_parse(out);
    snprintf(ep_id, sizeof ep_id, "%s", jstr(o, "id"));
    json_object_put(o);
    integ_free(out);
    g_ctx = ctx;
    return ctx;
}

static void env_close(integ_ctx *ctx, integ_session *s)
{
    integ_session_close(s);
    integ_ctx_close(ctx);
    g_ctx = NULL;
    rm_db();
}

/* One signed Shopify delivery with X-Shopify-Webhook-Id `wid`. */
struct answer {
    int rc, status;
    char body[256];
    char msg[256];
};

static void receive(integ_ctx *ctx, const char *wid, struct answer *a)
{
    unsigned char mac[32];
    char sig[64];
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)SECRET, strlen(SECRET),
                    (const unsigned char *)BODY, strlen(BODY), mac);
    sodium_bin2base64(sig, sizeof sig, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    const char *names[] = {"X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "X-Shopify-Webhook-Id", "Content-Type"};
    const char *values[] = {sig, "orders/create", wid, "application/json"};
    char *ob = NULL;
    a->status = 0;
    a->rc = integ_webhook_receive(ctx, ep_id, "POST", "https://app.example.com/hooks/x", names, values, 4,
                                  (const unsigned char *)BODY, strlen(BODY), &a->status, &ob);
    snprintf(a->body, sizeof a->body, "%s", ob ? ob : "");
    snprintf(a->msg, sizeof a->msg, "%s", integ_errmsg());
    integ_free(ob);
}

/* The "id" of a 202's body, or "". */
static void accepted_id(const struct answer *a, char *out, size_t cap)
{
    out[0] = '\0';
    json_object *o = json_tokener_parse(a->body);
    if (o && jstr(o, "id"))
        snprintf(out, cap, "%s", jstr(o, "id"));
    json_object_put(o);
}

/* Every queued event of the endpoint (parsed records). */
static json_object *stored_events(integ_ctx *ctx)
{
    json_object *arr = json_object_new_array(), *q = json_object_new_object();
    json_object_object_add(q, "endpoint_id", json_object_new_string(ep_id));
    void *tx = NULL;
    int rc = ig_tx_begin(ctx, 0, &tx);
    if (rc == INTEG_OK)
        rc = ig_tx_end(ctx, tx, 1, ig_store_list(ctx, tx, INTEG_KIND_WEBHOOK_EVENT, q, arr));
    CHECK_OK(rc);
    json_object_put(q);
    return arr;
}

/* How many stored events have field `k` equal to `v`. */
static int stored_with(json_object *rows, const char *k, const char *v)
{
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(rows); i++) {
        const char *x = jstr(json_object_array_get_idx(rows, i), k);
        if (x && !strcmp(x, v))
            n++;
    }
    return n;
}

/* ---- a batch with known contents ------------------------------------------------------ */

struct sender {
    integ_ctx *ctx;
    const char *wid;
    struct answer a;
};

static void *send_one(void *arg)
{
    struct sender *s = arg;
    receive(s->ctx, s->wid, &s->a);
    return NULL;
}

/* Send `gate_wid` first and hold its insert until the others (n of them)
 * have queued behind it: they then form exactly one batch. */
static void gated_batch(integ_ctx *ctx, const char *gate_wid, struct sender *s, int n)
{
    pthread_t gate_tid, tid[16];
    struct sender gate = {ctx, gate_wid, {0}};
    atomic_store(&gate_target, n);
    pthread_create(&gate_tid, NULL, send_one, &gate);
    /* The gate thread is inside its insert once the queue is empty again. */
    for (int i = 0; i < 5000 && atomic_load(&gate_target); i++)
        usleep(1000);
    for (int i = 0; i < n; i++) {
        s[i].ctx = ctx;
        pthread_create(&tid[i], NULL, send_one, &s[i]);
    }
    pthread_join(gate_tid, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(tid[i], NULL);
    CHECK(gate.a.rc == INTEG_OK && gate.a.status == 202);
}

static void test_batch_duplicates(void)
{
    integ_session *s = NULL;
    integ_ctx *ctx = env_open(&s);
    if (!ctx) {
        CHECK(!"env_open");
        return;
    }
    struct answer a;
    receive(ctx, "old-1", &a);
    CHECK(a.rc == INTEG_OK && a.status == 202);
    uint64_t b0, e0, b1, e1;
    ig_wh_ingest_stats(&ctx->ingest, &b0, &e0, NULL);
    atomic_store(&write_begins, 0);
    atomic_store(&event_lists, 0);
    /* x-2 twice at once, and old-1 again: one batch of five. */
    struct sender v[5] = {{.wid = "x-1"}, {.wid = "x-2"}, {.wid = "x-2"}, {.wid = "old-1"}, {.wid = "x-3"}};
    gated_batch(ctx, "gate-1", v, 5);
    ig_wh_ingest_stats(&ctx->ingest, &b1, &e1, NULL);
    CHECK(b1 - b0 == 2 && e1 - e0 == 6);    /* the gate alone, then the five together */
    /* The five are inserted at once; old-1's insert fails on the unique
     * index, so they are rolled back and inserted again after one
     * duplicate query (none for the gate alone). */
    CHECK(atomic_load(&write_begins) == 1 + 2);
    CHECK(atomic_load(&event_lists) == 1);
    CHECK(v[0].a.rc == INTEG_OK && v[0].a.status == 202);
    CHECK(v[4].a.rc == INTEG_OK && v[4].a.status == 202);
    CHECK(v[1].a.rc == INTEG_OK && v[2].a.rc == INTEG_OK);
    CHECK((v[1].a.status == 202) + (v[2].a.status == 202) == 1);
    CHECK((v[1].a.status == 200) + (v[2].a.status == 200) == 1);
    CHECK_STR(v[1].a.status == 200 ? v[1].a.body : v[2].a.body, "{\"status\":\"duplicate\"}");
    CHECK(v[3].a.rc == INTEG_OK && v[3].a.status == 200);
    CHECK_STR(v[3].a.body, "{\"status\":\"duplicate\"}");
    json_object *rows = stored_events(ctx);
    CHECK(json_object_array_length(rows) == 5);
    const char *once[] = {"old-1", "gate-1", "x-1", "x-2", "x-3"};
    for (size_t i = 0; i < 5; i++)
        CHECK(stored_with(rows, "event_id", once[i]) == 1);
    for (int i = 0; i < 5; i++) {
        char id[64];
        accepted_id(&v[i].a, id, sizeof id);
        if (v[i].a.status == 202)
            CHECK(id[0] && stored_with(rows, "id", id) == 1);
    }
    json_object_put(rows);

    /* Nothing of the batch stored yet (a repeat within it only): one
     * transaction and no duplicate query. */
    atomic_store(&write_begins, 0);
    atomic_store(&event_lists, 0);
    struct sender w[3] = {{.wid = "y-1"}, {.wid = "y-2"}, {.wid = "y-2"}};
    gated_batch(ctx, "gate-2", w, 3);
    CHECK(atomic_load(&write_begins) == 1 + 1);
    CHECK(atomic_load(&event_lists) == 0);
    CHECK(w[0].a.rc == INTEG_OK && w[0].a.status == 202);
    CHECK((w[1].a.status == 202) + (w[2].a.status == 202) == 1);
    CHECK((w[1].a.status == 200) + (w[2].a.status == 200) == 1);
    rows = stored_events(ctx);
    CHECK(json_object_array_length(rows) == 8);
    CHECK(stored_with(rows, "event_id", "y-2") == 1);
    json_object_put(rows);
    env_close(ctx, s);
}

static void test_batch_failure_isolated(void)
{
    integ_session *s = NULL;
    integ_ctx *ctx = env_open(&s);
    if (!ctx) {
        CHECK(!"env_open");
        return;
    }
    /* One insert fails mid-batch (and, as on PostgreSQL, aborts the
     * transaction): the batch is rolled back and each event retried alone. */
    atomic_store(&write_begins, 0);
    struct sender v[5] = {{.wid = "a-1"}, {.wid = "a-2"}, {.wid = "fail-1"}, {.wid = "a-3"}, {.wid = "a-3"}};
    gated_batch(ctx, "gate-1", v, 5);
    CHECK(atomic_load(&write_begins) == 1 + 1 + 5);
    for (int i = 0; i < 5; i++) {
        if (i == 2)
            continue;
        CHECK(v[i].a.rc == INTEG_OK);
    }
    CHECK(v[0].a.status == 202 && v[1].a.status == 202);
    CHECK((v[3].a.status == 202) + (v[4].a.status == 202) == 1);
    CHECK((v[3].a.status == 200) + (v[4].a.status == 200) == 1);
    /* Only the culprit's caller sees the error, with the store's message. */
    CHECK(v[2].a.rc == INTEG_ESTORE && v[2].a.status == 0 && !v[2].a.body[0]);
    CHECK(strstr(v[2].a.msg, "injected failure for this event") != NULL);
    for (int i = 0; i < 5; i++)
        if (i != 2)
            CHECK(!v[i].a.msg[0]);
    json_object *rows = stored_events(ctx);
    CHECK(json_object_array_length(rows) == 4);
    CHECK(stored_with(rows, "event_id", "fail-1") == 0);
    const char *once[] = {"gate-1", "a-1", "a-2", "a-3"};
    for (size_t i = 0; i < 4; i++)
        CHECK(stored_with(rows, "event_id", once[i]) == 1);
    json_object_put(rows);

    /* A failed commit: every event of the batch is committed alone. */
    atomic_store(&write_begins, 0);
    atomic_store(&fail_commit_once, 1);
    struct sender c[3] = {{.wid = "c-1"}, {.wid = "c-2"}, {.wid = "a-1"}};
    gated_batch(ctx, "gate-2", c, 3);
    CHECK(atomic_load(&fail_commit_once) == 0);
    /* the gate; the batch inserted (a-1's insert fails: stored), then
     * checked, its commit failing; then each alone */
    CHECK(atomic_load(&write_begins) == 1 + 2 + 3);
    CHECK(c[0].a.rc == INTEG_OK && c[0].a.status == 202);
    CHECK(c[1].a.rc == INTEG_OK && c[1].a.status == 202);
    CHECK(c[2].a.rc == INTEG_OK && c[2].a.status == 200);
    rows = stored_events(ctx);
    CHECK(json_object_array_length(rows) == 7);
    CHECK(stored_with(rows, "event_id", "c-1") == 1 && stored_with(rows, "event_id", "c-2") == 1);
    json_object_put(rows);

    /* A batch that cannot even begin: each caller gets the error and its
     * message, in its own thread. */
    struct sender b[3] = {{.wid = "b-1"}, {.wid = "b-2"}, {.wid = "b-3"}};
    pthread_t gate_tid, tid[3];
    struct sender gate = {ctx, "gate-3", {0}};
    atomic_store(&gate_target, 3);
    pthread_create(&gate_tid, NULL, send_one, &gate);
    for (int i = 0; i < 5000 && atomic_load(&gate_target); i++)
        usleep(1000);
    /* Armed after the gate's own begin: the queued three's begin fails. */
    atomic_store(&fail_write_begin, 1);
    for (int i = 0; i < 3; i++) {
        b[i].ctx = ctx;
        pthread_create(&tid[i], NULL, send_one, &b[i]);
    }
    pthread_join(gate_tid, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(tid[i], NULL);
    CHECK(gate.a.rc == INTEG_OK && gate.a.status == 202);
    for (int i = 0; i < 3; i++) {
        CHECK(b[i].a.rc == INTEG_ECONFLICT && b[i].a.status == 0);
        CHECK(strstr(b[i].a.msg, "database is busy (injected)") != NULL);
    }
    /* A later delivery of the same ids goes through. */
    struct answer a;
    receive(ctx, "b-1", &a);
    CHECK(a.rc == INTEG_OK && a.status == 202);
    env_close(ctx, s);
}

/* One caller: every batch is one event, with no duplicate query. */
static void test_single_caller(void)
{
    integ_session *s = NULL;
    integ_ctx *ctx = env_open(&s);
    if (!ctx) {
        CHECK(!"env_open");
        return;
    }
    uint64_t b0, e0, b1, e1;
    ig_wh_ingest_stats(&ctx->ingest, &b0, &e0, NULL);
    atomic_store(&event_lists, 0);
    struct answer a;
    for (int i = 0; i < 20; i++) {
        char wid[32];
        snprintf(wid, sizeof wid, "s-%d", i % 10);
        receive(ctx, wid, &a);
        CHECK(a.rc == INTEG_OK && a.status == (i < 10 ? 202 : 200));
    }
    ig_wh_ingest_stats(&ctx->ingest, &b1, &e1, NULL);
    CHECK(b1 - b0 == 20 && e1 - e0 == 20);
    CHECK(atomic_load(&event_lists) == 0);
    size_t pending = 1;
    ig_wh_ingest_stats(&ctx->ingest, NULL, NULL, &pending);
    CHECK(pending == 0);
    /* Answers that queue nothing end the "preparing" mark too, or every
     * later leader would linger for nobody. */
    char *ob = NULL;
    int status = 0;
    CHECK_OK(integ_webhook_receive(ctx, "no-such-endpoint", "POST", "/h", NULL, NULL, 0, (const unsigned char *)"x",
                                   1, &status, &ob));
    CHECK(status == 404);
    integ_free(ob);
    CHECK_OK(integ_webhook_receive(ctx, "bad/id", "POST", "/h", NULL, NULL, 0, NULL, 0, &status, &ob));
    CHECK(status == 404);
    integ_free(ob);
    CHECK_OK(integ_webhook_receive(ctx, ep_id, "POST", "/h", NULL, NULL, 0, (const unsigned char *)BODY,
                                   strlen(BODY), &status, &ob));
    CHECK(status == 401);
    integ_free(ob);
    CHECK_RC(integ_webhook_receive(ctx, ep_id, "POST", "/h", NULL, NULL, 1, NULL, 0, &status, &ob), INTEG_EINVAL);
    CHECK(atomic_load(&ctx->ingest.preparing) == 0);
    env_close(ctx, s);
}

/* A receiver that entered and never queues (stuck elsewhere) delays a
 * commit by the linger bound, and no more. */
static void test_linger_bounded(void)
{
    integ_session *s = NULL;
    integ_ctx *ctx = env_open(&s);
    if (!ctx) {
        CHECK(!"env_open");
        return;
    }
    /* One CPU: two receivers in flight outnumber it, so the leader lingers. */
    ctx->ingest.cpus = 1;
    ig_wh_ingest_enter(ctx);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct answer a;
    receive(ctx, "l-1", &a);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(a.rc == INTEG_OK && a.status == 202);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK(ms >= IG_WH_INGEST_LINGER_US / 1000.0);
    CHECK(ms < 250); /* 0.2 ms plus the commit; generous for sanitizers and loaded machines */
    ig_wh_ingest_leave(ctx);
    CHECK(atomic_load(&ctx->ingest.preparing) == 0);
    env_close(ctx, s);
}

/* ---- many threads, shared ids ---------------------------------------------------------- */

#define THREADS 8
#define PER_THREAD 60

struct worker {
    integ_ctx *ctx;
    int t;
    pthread_barrier_t *pair; /* shared with the partner thread (t ^ 1) */
    char wid[PER_THREAD][48];
    struct answer a[PER_THREAD];
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        if (i % 3 == 0) {
            /* Sent by both partners at the same moment. */
            snprintf(w->wid[i], sizeof w->wid[i], "dup-%d-%d", w->t / 2, i);
            pthread_barrier_wait(w->pair);
        } else {
            snprintf(w->wid[i], sizeof w->wid[i], "t%d-%d", w->t, i);
        }
        receive(w->ctx, w->wid[i], &w->a[i]);
    }
    return NULL;
}

static void test_many_threads(void)
{
    integ_session *s = NULL;
    integ_ctx *ctx = env_open(&s);
    if (!ctx) {
        CHECK(!"env_open");
        return;
    }
    /* A slow disk: commits take long enough for the others to queue. */
    atomic_store(&commit_delay_us, 2000);
    uint64_t b0, e0, b1, e1;
    ig_wh_ingest_stats(&ctx->ingest, &b0, &e0, NULL);
    static struct worker w[THREADS];
    pthread_barrier_t pairs[THREADS / 2];
    pthread_t tid[THREADS];
    for (int p = 0; p < THREADS / 2; p++)
        pthread_barrier_init(&pairs[p], NULL, 2);
    for (int t = 0; t < THREADS; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].ctx = ctx;
        w[t].t = t;
        w[t].pair = &pairs[t / 2];
        pthread_create(&tid[t], NULL, work, &w[t]);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(tid[t], NULL);
    for (int p = 0; p < THREADS / 2; p++)
        pthread_barrier_destroy(&pairs[p]);
    atomic_store(&commit_delay_us, 0);
    ig_wh_ingest_stats(&ctx->ingest, &b1, &e1, NULL);
    CHECK(e1 - e0 == THREADS * PER_THREAD);
    /* Commits were shared (8 threads, 2 ms commits: far fewer than one each). */
    CHECK(b1 - b0 < (e1 - e0) / 2);
    printf("     %d events in %llu commits\n", THREADS * PER_THREAD, (unsigned long long)(b1 - b0));

    json_object *rows = stored_events(ctx);
    int accepted = 0;
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            struct answer *a = &w[t].a[i];
            CHECK_RC(a->rc, INTEG_OK);
            if (a->rc)
                fprintf(stderr, "  %s: %s\n", w[t].wid[i], a->msg);
            if (i % 3 == 0) {
                /* Exactly one of the two partners got the 202. */
                struct answer *b = &w[t ^ 1].a[i];
                CHECK((a->status == 202) + (b->status == 202) == 1);
                CHECK(a->status == 202 || (a->status == 200 && !strcmp(a->body, "{\"status\":\"duplicate\"}")));
            } else {
                CHECK(a->status == 202);
            }
            if (a->status == 202) {
                char id[64];
                accepted_id(a, id, sizeof id);
                CHECK(id[0] && stored_with(rows, "id", id) == 1);
                CHECK(stored_with(rows, "event_id", w[t].wid[i]) == 1);
                accepted++;
            }
        }
    }
    /* Unique ids: each thread's own two thirds, plus one per shared pair. */
    CHECK(accepted == THREADS * (PER_THREAD - PER_THREAD / 3) + THREADS / 2 * (PER_THREAD / 3));
    CHECK((int)json_object_array_length(rows) == accepted);
    json_object_put(rows);
    env_close(ctx, s);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    RUN(test_single_caller);
    RUN(test_linger_bounded);
    RUN(test_batch_duplicates);
    RUN(test_batch_failure_isolated);
    RUN(test_many_threads);
    TEST_END();
}
