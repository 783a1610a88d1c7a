/* The webhook queue's processing when things go wrong around it
 * (lib/webhooks.c, integ_webhook_process): a lease that runs out while its
 * event is being handled and another worker takes the event over (applied
 * exactly once), a lease that runs out with nobody taking over (still
 * processed), an endpoint deleted in the middle of a run and a store that
 * fails to record one outcome (the rest of the batch still processed, the
 * call still succeeds, integ_run_due too), events whose worker keeps dying
 * (dead-lettered once their attempts are used up, with "webhook.dead"), and
 * the fields each status carries.
 *
 * HubSpot deliveries (fetch mode) go through a C adapter whose fetch_one
 * the tests control: it can advance the injected clock, run another worker,
 * fail, or kill its process. The store is the built-in SQLite one behind a
 * thin wrapper that can fail one write. No network. */
#include <json-c/json.h>
#include <mbedtls/md.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx.h"
#include "integrations/adapter.h"
#include "integrations/store.h"
#include "test.h"

#define APP_SECRET "hubspot_process_app_secret"
#define HOOK_URL "https://app.example.com/hooks/process"
#define LEASE_MS 60000 /* lib/webhooks.c */
#define OPTIONS "\"master_key\":\"" TEST_MASTER_KEY "\",\"webhook\":{\"max_attempts\":3}"

/* ---- injected time -------------------------------------------------------------------- */

static _Atomic int64_t fake_now = 1750000000000;
static int64_t fk_now(void *p) { (void)p; return fake_now; }
static void fk_sleep(void *p, int64_t ms) { (void)p; fake_now += ms; }
static uint32_t fk_rand(void *p) { (void)p; return 12345; }
static const ig_clock fake_clock = {fk_now, fk_sleep, fk_rand, NULL};

/* ---- the store, behind a wrapper that can fail recording an outcome -------------------- */

struct wrap {
    const integ_store *in;
    void *data;
};

struct wtx {
    struct wrap *w;
    void *in;
};

static atomic_int fail_settle; /* the next write marking an event processed fails */

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
    struct wtx *t = calloc(1, sizeof *t);
    if (!t)
        return INTEG_ENOMEM;
    int rc = w->in->begin(w->data, write, &t->in);
    if (rc) {
        free(t);
        return rc;
    }
    t->w = w;
    *out = t;
    return INTEG_OK;
}

static int w_end(void *tx, int commit)
{
    struct wtx *t = tx;
    int rc = t->w->in->end(t->in, commit);
    free(t);
    return rc;
}

static int w_put(void *tx, integ_store_kind kind, const char *json, const unsigned char *blob, size_t blob_len,
                 integ_put_mode mode)
{
    struct wtx *t = tx;
    if (kind == INTEG_KIND_WEBHOOK_EVENT && mode == INTEG_PUT_UPDATE && strstr(json, "\"status\":\"processed\"") &&
        atomic_exchange(&fail_settle, 0))
        return integ_error_set(INTEG_ESTORE, "wrap: update webhook_events: disk I/O error (injected)");
    return t->w->in->put(t->in, kind, json, blob, blob_len, mode);
}

static int w_get(void *tx, integ_store_kind kind, const char *tenant_id, const char *id, integ_store_row_cb cb,
                 void *payload)
{
    struct wtx *t = tx;
    return t->w->in->get(t->in, kind, tenant_id, id, cb, payload);
}

static int w_list(void *tx, integ_store_kind kind, const char *q, integ_store_row_cb cb, void *payload)
{
    struct wtx *t = tx;
    return t->w->in->list(t->in, kind, q, cb, payload);
}

static int w_count(void *tx, integ_store_kind kind, const char *q, int64_t *out)
{
    struct wtx *t = tx;
    return t->w->in->count(t->in, kind, q, out);
}

static int w_remove(void *tx, integ_store_kind kind, const char *tenant_id, const char *id)
{
    struct wtx *t = tx;
    return t->w->in->remove(t->in, kind, tenant_id, id);
}

static int w_remove_where(void *tx, integ_store_kind kind, const char *q, int64_t *out)
{
    struct wtx *t = tx;
    return t->w->in->remove_where(t->in, kind, q, out);
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

/* ---- the adapter: HubSpot's fetch_one, controlled by the tests ------------------------- */

static atomic_int fetches;
static int fetch_fails;                       /* fetches fail with INTEG_EREMOTE */
static int fetch_kills;                       /* fetches kill the process (a crashing worker) */
static void (*fetch_hook)(const char *id);    /* runs inside each fetch */

static int a_fetch(void *p, const integ_adapter_call *call, const char *entity, const char *id, integ_reply_cb reply,
                   void *rp)
{
    (void)p, (void)call, (void)entity;
    atomic_fetch_add(&fetches, 1);
    if (fetch_kills)
        raise(SIGKILL);
    if (fetch_hook)
        fetch_hook(id);
    if (fetch_fails)
        return integ_error_set(INTEG_EREMOTE, "test adapter: HTTP 502 from the API");
    char rec[512];
    snprintf(rec, sizeof rec,
             "{\"id\":\"%s\",\"properties\":{\"email\":\"c%s@example.com\",\"firstname\":\"C\",\"lastname\":\"%s\","
             "\"lastmodifieddate\":\"2025-01-01T00:00:00Z\"},\"updatedAt\":\"2025-01-01T00:00:00Z\"}",
             id, id, id);
    return reply(rp, rec, strlen(rec));
}

static const integ_adapter test_adapter = {INTEG_ADAPTER_VERSION, NULL, NULL, a_fetch, NULL, NULL, NULL, NULL, NULL};

/* ---- the event callback ----------------------------------------------------------------- */

static char last_dead[2048];
static int dead_seen;
static integ_session *cb_session;
static char delete_on_apply[64]; /* an endpoint to delete when the next event is applied */
static int delete_rc = 1;

static void on_event(void *p, const char *json)
{
    (void)p;
    if (strstr(json, "\"type\":\"webhook.dead\"")) {
        snprintf(last_dead, sizeof last_dead, "%s", json);
        dead_seen++;
    }
    /* Applying an event emits sync.completed once its records are
     * committed, before the event is settled. */
    if (delete_on_apply[0] && strstr(json, "\"type\":\"sync.completed\"")) {
        char id[64];
        snprintf(id, sizeof id, "%s", delete_on_apply);
        delete_on_apply[0] = '\0';
        delete_rc = integ_webhook_endpoint_delete(cb_session, id);
    }
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static char dbpath[64];

struct env {
    integ_ctx *ctx;
    integ_session *s;
    char hub_id[64];
};

/* A context on the test's database file, behind the wrapper, with the
 * adapter and the clock: each worker has its own. */
static integ_ctx *worker_open(void)
{
    const integ_store *in = NULL;
    struct wrap *w = calloc(1, sizeof *w);
    integ_ctx *ctx = NULL;
    if (!w || integ_store_sqlite_new(&in, &w->data, dbpath) != INTEG_OK) {
        free(w);
        return NULL;
    }
    w->in = in;
    if (integ_ctx_open_with_store(&ctx, &wrap_store, w, "{" OPTIONS "}") != INTEG_OK) {
        fprintf(stderr, "  open: %s\n", integ_errmsg());
        in->close(w->data);
        free(w);
        return NULL;
    }
    ig_ctx_set_clock(ctx, &fake_clock);
    integ_adapter_register(ctx, "hubspot-crm", &test_adapter, NULL);
    return ctx;
}

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
static int is(json_object *o, const char *k, const char *v) { return jstr(o, k) && !strcmp(jstr(o, k), v); }
static int64_t jint(json_object *o, const char *k) { return json_object_get_int64(json_object_object_get(o, k)); }

static int env_open(struct env *e)
{
    memset(e, 0, sizeof *e);
    rm_db();
    fetches = 0;
    fetch_fails = fetch_kills = 0;
    fetch_hook = NULL;
    fail_settle = 0;
    dead_seen = 0;
    last_dead[0] = delete_on_apply[0] = '\0';
    if (!(e->ctx = worker_open()))
        return -1;
    integ_ctx_set_event_cb(e->ctx, on_event, NULL);
    char *out = NULL;
    if (integ_session_open(&e->s, e->ctx, "acme", "alice", "[\"admin\"]") != INTEG_OK ||
        integ_definition_set_app_credentials(e->ctx, "hubspot-crm",
                                             "{\"client_id\":\"c\",\"client_secret\":\"" APP_SECRET "\"}") != INTEG_OK ||
        integ_integration_create(e->s, "{\"integration_definition_id\":\"hubspot-crm\",\"credentials\":{\"api_key\":\"k\"}}",
                                 &out) != INTEG_OK) {
        fprintf(stderr, "  setup: %s\n", integ_errmsg());
        return -1;
    }
    json_object *o = json_tokener_parse(out);
    snprintf(e->hub_id, sizeof e->hub_id, "%s", jstr(o, "id"));
    json_object_put(o);
    integ_free(out);
    cb_session = e->s;
    return 0;
}

static void env_close(struct env *e)
{
    cb_session = NULL;
    integ_session_close(e->s);
    integ_ctx_close(e->ctx);
    rm_db();
}

static void endpoint(struct env *e, char *id, size_t cap)
{
    char *out = NULL;
    id[0] = '\0';
    if (integ_webhook_endpoint_create(e->s, e->hub_id, NULL, &out) != INTEG_OK) {
        fprintf(stderr, "  endpoint: %s\n", integ_errmsg());
        return;
    }
    json_object *o = json_tokener_parse(out);
    snprintf(id, cap, "%s", jstr(o, "id"));
    json_object_put(o);
    integ_free(out);
}

/* Deliver one HubSpot-signed notification for contact `object` (a new
 * event id each time) to endpoint `ep`; the queued event's id in `ev`. The
 * clock moves on a millisecond, so events are claimed in delivery order. */
static void deliver(struct env *e, const char *ep, int object, char *ev, size_t cap)
{
    static int event_id = 1000;
    char body[200], ts[32], sig[64], *msg = NULL;
    snprintf(body, sizeof body, "[{\"eventId\":%d,\"subscriptionType\":\"contact.propertyChange\",\"objectId\":%d}]",
             ++event_id, object);
    snprintf(ts, sizeof ts, "%lld", (long long)fake_now);
    size_t n = strlen("POST") + strlen(HOOK_URL) + strlen(body) + strlen(ts);
    msg = malloc(n + 1);
    snprintf(msg, n + 1, "POST%s%s%s", HOOK_URL, body, ts);
    unsigned char mac[32];
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)APP_SECRET,
                    strlen(APP_SECRET), (const unsigned char *)msg, n, mac);
    free(msg);
    sodium_bin2base64(sig, sizeof sig, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    const char *names[] = {"X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp", "Content-Type"};
    const char *values[] = {sig, ts, "application/json"};
    int status = 0;
    char *ob = NULL;
    CHECK_OK(integ_webhook_receive(e->ctx, ep, "POST", HOOK_URL, names, values, 3, (const unsigned char *)body,
                                   strlen(body), &status, &ob));
    CHECK(status == 202);
    json_object *o = ob ? json_tokener_parse(ob) : NULL;
    snprintf(ev, cap, "%s", o && jstr(o, "id") ? jstr(o, "id") : "");
    json_object_put(o);
    integ_free(ob);
    fake_now += 1;
}

/* One integ_webhook_process round: its output, or NULL with the code in *rc. */
static json_object *process_on(integ_ctx *ctx, int *rc_out)
{
    char *out = NULL;
    int rc = integ_webhook_process(ctx, 100, &out);
    if (rc_out)
        *rc_out = rc;
    json_object *o = out ? json_tokener_parse(out) : NULL;
    integ_free(out);
    return o;
}

/* Applications of webhook events: each writes one sync log entry. */
static int applied(struct env *e)
{
    char *out = NULL;
    if (integ_sync_logs(e->s, e->hub_id, "{\"limit\":1000}", &out) != INTEG_OK)
        return -1;
    json_object *l = json_tokener_parse(out);
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(l); i++)
        n += is(json_object_array_get_idx(l, i), "trigger", "webhook");
    json_object_put(l);
    integ_free(out);
    return n;
}

static int64_t count_events(struct env *e, const char *filter)
{
    char *out = NULL;
    if (integ_webhook_events_list(e->s, filter, &out) != INTEG_OK)
        return -1;
    json_object *l = json_tokener_parse(out);
    int64_t n = (int64_t)json_object_array_length(l);
    json_object_put(l);
    integ_free(out);
    return n;
}

/* The stored record of an event, internal fields included. */
static json_object *raw_event(integ_ctx *ctx, const char *id)
{
    void *tx = NULL;
    json_object *rec = NULL;
    if (ig_tx_begin(ctx, 0, &tx) == INTEG_OK)
        ig_tx_end(ctx, tx, 1, ig_store_get(ctx, tx, INTEG_KIND_WEBHOOK_EVENT, NULL, id, &rec));
    return rec;
}

/* The output's i-th event (NULL-safe, so that a failing check cannot crash the case). */
static json_object *event_at(json_object *r, size_t i)
{
    json_object *l = r ? json_object_object_get(r, "events") : NULL;
    return json_object_is_type(l, json_type_array) && i < json_object_array_length(l) ? json_object_array_get_idx(l, i)
                                                                                      : NULL;
}

static const char *event_status(json_object *r, size_t i)
{
    const char *st = jstr(event_at(r, i), "status");
    return st ? st : "(none)";
}

/* ---- a lease that runs out while its event is handled ------------------------------------ */

static integ_ctx *worker_b;
static json_object *b_result;
static int b_rc = 1;

/* Inside worker A's first fetch: A has been at it longer than the lease,
 * and worker B, finding the leases expired, takes both events over. */
static void slow_then_taken_over(const char *id)
{
    (void)id;
    if (!worker_b)
        return;
    integ_ctx *b = worker_b;
    worker_b = NULL; /* B's own fetches go straight through */
    fake_now += LEASE_MS + 1000;
    b_result = process_on(b, &b_rc);
}

static void test_lease_taken_over_mid_event(void)
{
    struct env e;
    if (env_open(&e)) {
        CHECK(!"env_open");
        return;
    }
    char ep[64], ev1[64], ev2[64];
    endpoint(&e, ep, sizeof ep);
    deliver(&e, ep, 1001, ev1, sizeof ev1);
    deliver(&e, ep, 1002, ev2, sizeof ev2);
    integ_ctx *b = worker_open();
    CHECK(b != NULL);
    worker_b = b;
    b_result = NULL;
    fetch_hook = slow_then_taken_over;
    int rc = 1;
    json_object *a = process_on(e.ctx, &rc);
    fetch_hook = NULL;
    CHECK_OK(rc);
    /* B did the work: both events, each applied once. */
    CHECK_OK(b_rc);
    CHECK(b_result && jint(b_result, "claimed") == 2 && jint(b_result, "processed") == 2);
    /* A dropped its fetch of the first event unapplied, and never started
     * the second: both reported lost, neither processed nor failed. */
    if (!a || jint(a, "lost") != 2)
        fprintf(stderr, "  A: %s\n", a ? json_object_to_json_string(a) : "-");
    CHECK(a && jint(a, "claimed") == 2 && jint(a, "lost") == 2);
    CHECK(a && jint(a, "processed") == 0 && jint(a, "failed") == 0 && jint(a, "errors") == 0);
    CHECK(a && !strcmp(event_status(a, 0), "lost") && !strcmp(event_status(a, 1), "lost"));
    CHECK(applied(&e) == 2);
    CHECK(fetches == 3); /* A: the first; B: both */
    CHECK(count_events(&e, "{\"status\":\"processed\"}") == 2);
    char *out = NULL;
    CHECK_OK(integ_entities_list(e.s, "contacts", NULL, &out));
    json_object *l = json_tokener_parse(out);
    CHECK(json_object_array_length(l) == 2);
    json_object_put(l);
    integ_free(out);
    /* The outcome is B's: processed at attempt 2, no holder left. */
    json_object *r = raw_event(e.ctx, ev1);
    CHECK(r && is(r, "status", "processed") && jint(r, "attempts") == 2);
    CHECK(r && !json_object_object_get(r, "holder") && jint(r, "lease_until_ms") == 0);
    json_object_put(r);
    json_object_put(a);
    json_object_put(b_result);
    integ_ctx_close(b);
    env_close(&e);
}

/* The lease decides when another worker may take an event, not whether the
 * worker that holds it may finish: with nobody taking over, a fetch longer
 * than the lease still ends in the event being processed (once). */
static void slow(const char *id)
{
    (void)id;
    fake_now += LEASE_MS + 1000;
}

static void test_lease_overrun_without_takeover(void)
{
    struct env e;
    if (env_open(&e)) {
        CHECK(!"env_open");
        return;
    }
    char ep[64], ev1[64], ev2[64];
    endpoint(&e, ep, sizeof ep);
    deliver(&e, ep, 1001, ev1, sizeof ev1);
    deliver(&e, ep, 1002, ev2, sizeof ev2);
    fetch_hook = slow;
    json_object *a = process_on(e.ctx, NULL);
    fetch_hook = NULL;
    CHECK(a && jint(a, "claimed") == 2 && jint(a, "processed") == 2 && jint(a, "lost") == 0);
    CHECK(applied(&e) == 2);
    json_object *r = raw_event(e.ctx, ev2);
    CHECK(r && is(r, "status", "processed") && jint(r, "attempts") == 1);
    json_object_put(r);
    json_object_put(a);
    env_close(&e);
}

/* ---- one event's trouble does not end the run -------------------------------------------- */

/* Endpoint X is deleted (with its events) while its first event is being
 * applied: that event and X's next one are gone, Y's is processed, and
 * the call succeeds. The same through integ_run_due. */
static void test_endpoint_deleted_mid_run(void)
{
    struct env e;
    if (env_open(&e)) {
        CHECK(!"env_open");
        return;
    }
    char x[64], y[64], z[64], ev[5][64];
    endpoint(&e, x, sizeof x);
    endpoint(&e, y, sizeof y);
    deliver(&e, x, 1001, ev[0], sizeof ev[0]);
    deliver(&e, x, 1002, ev[1], sizeof ev[1]);
    deliver(&e, y, 1003, ev[2], sizeof ev[2]);
    snprintf(delete_on_apply, sizeof delete_on_apply, "%s", x);
    delete_rc = 1;
    int rc = 1;
    json_object *r = process_on(e.ctx, &rc);
    CHECK_OK(delete_rc);
    CHECK_OK(rc);
    if (!r || jint(r, "gone") != 2)
        fprintf(stderr, "  process: %s\n", r ? json_object_to_json_string(r) : "-");
    CHECK(r && jint(r, "claimed") == 3 && jint(r, "processed") == 1 && jint(r, "gone") == 2);
    CHECK(r && jint(r, "failed") == 0 && jint(r, "lost") == 0 && jint(r, "errors") == 0);
    CHECK(r && !strcmp(event_status(r, 0), "gone") && !strcmp(event_status(r, 1), "gone"));
    CHECK(r && !strcmp(event_status(r, 2), "processed"));
    CHECK(applied(&e) == 2); /* the first event (before its deletion) and Y's */
    CHECK(count_events(&e, NULL) == 1 && count_events(&e, "{\"status\":\"processed\"}") == 1);
    json_object_put(r);

    /* The scheduler's run succeeds too, with the webhook round in it. */
    endpoint(&e, z, sizeof z);
    deliver(&e, z, 1004, ev[3], sizeof ev[3]);
    deliver(&e, y, 1005, ev[4], sizeof ev[4]);
    snprintf(delete_on_apply, sizeof delete_on_apply, "%s", z);
    delete_rc = 1;
    char *out = NULL;
    CHECK_OK(integ_run_due(e.ctx, 10, &out));
    CHECK_OK(delete_rc);
    json_object *due = out ? json_tokener_parse(out) : NULL;
    json_object *wh = json_object_object_get(due, "webhooks");
    CHECK(wh && jint(wh, "processed") == 1 && jint(wh, "gone") == 1);
    json_object_put(due);
    integ_free(out);
    CHECK(count_events(&e, "{\"status\":\"processing\"}") == 0);
    env_close(&e);
}

/* The store fails to record one event's outcome: that event is reported
 * (status "error", with the code), the next one is processed, the call
 * succeeds; the unrecorded event is taken again once its lease expires. */
static void test_settle_store_error_isolated(void)
{
    struct env e;
    if (env_open(&e)) {
        CHECK(!"env_open");
        return;
    }
    char ep[64], ev1[64], ev2[64];
    endpoint(&e, ep, sizeof ep);
    deliver(&e, ep, 1001, ev1, sizeof ev1);
    deliver(&e, ep, 1002, ev2, sizeof ev2);
    fail_settle = 1;
    int rc = 1;
    json_object *r = process_on(e.ctx, &rc);
    CHECK_OK(rc);
    CHECK(r && jint(r, "claimed") == 2 && jint(r, "processed") == 1 && jint(r, "errors") == 1);
    json_object *first = event_at(r, 0);
    CHECK(first && is(first, "id", ev1) && is(first, "status", "error"));
    CHECK(first && jint(first, "code") == INTEG_ESTORE && jstr(first, "error") && strstr(jstr(first, "error"), "injected"));
    CHECK(r && !strcmp(event_status(r, 1), "processed"));
    json_object_put(r);
    CHECK(count_events(&e, "{\"status\":\"processing\"}") == 1);
    /* Like a crash: taken again after the lease. */
    r = process_on(e.ctx, NULL);
    CHECK(r && jint(r, "claimed") == 0);
    json_object_put(r);
    fake_now += LEASE_MS + 1;
    r = process_on(e.ctx, NULL);
    CHECK(r && jint(r, "claimed") == 1 && jint(r, "processed") == 1);
    json_object_put(r);
    CHECK(count_events(&e, "{\"status\":\"processed\"}") == 2);
    env_close(&e);
}

/* ---- a worker that keeps dying ------------------------------------------------------------- */

/* An event whose every attempt kills its worker (in a process of its own,
 * which the fetch kills): after max_attempts (3 here) expired leases, the
 * next claim dead-letters it, with "webhook.dead", instead of a 4th try. */
static void test_dead_after_expired_leases(void)
{
    struct env e;
    if (env_open(&e)) {
        CHECK(!"env_open");
        return;
    }
    char ep[64], ev[64];
    endpoint(&e, ep, sizeof ep);
    deliver(&e, ep, 1001, ev, sizeof ev);
    for (int attempt = 1; attempt <= 3; attempt++) {
        pid_t pid = fork();
        if (pid == 0) {
            /* Its own context: never the parent's SQLite connections. */
            char opts[512];
            integ_ctx *mine = NULL;
            snprintf(opts, sizeof opts, "{\"store\":\"sqlite:%s\"," OPTIONS "}", dbpath);
            if (integ_ctx_open(&mine, opts) != INTEG_OK)
                _exit(4);
            ig_ctx_set_clock(mine, &fake_clock);
            fetch_kills = 1;
            integ_adapter_register(mine, "hubspot-crm", &test_adapter, NULL);
            char *out = NULL;
            integ_webhook_process(mine, 10, &out);
            _exit(3);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status));
        json_object *r = raw_event(e.ctx, ev);
        CHECK(r && is(r, "status", "processing") && jint(r, "attempts") == attempt);
        json_object_put(r);
        fake_now += LEASE_MS + 1;
    }
    /* This worker's fetch would succeed: the event must not be tried again. */
    int rc = 1;
    json_object *r = process_on(e.ctx, &rc);
    CHECK_OK(rc);
    if (!r || jint(r, "dead") != 1)
        fprintf(stderr, "  process: %s\n", r ? json_object_to_json_string(r) : "-");
    CHECK(r && jint(r, "claimed") == 0 && jint(r, "dead") == 1 && jint(r, "processed") == 0);
    CHECK(r && !strcmp(event_status(r, 0), "dead"));
    json_object_put(r);
    CHECK(fetches == 0 && applied(&e) == 0);
    CHECK(dead_seen == 1);
    json_object *d = json_tokener_parse(last_dead);
    CHECK(d && is(d, "event_id", ev) && is(d, "endpoint_id", ep));
    CHECK(d && is(d, "integration_id", e.hub_id) && is(d, "tenant_id", "acme"));
    CHECK(d && jint(d, "attempts") == 3 && jstr(d, "delivery_id") && jstr(d, "last_error") && strstr(jstr(d, "last_error"), "lease expired"));
    json_object_put(d);
    r = raw_event(e.ctx, ev);
    CHECK(r && is(r, "status", "dead") && jint(r, "attempts") == 3);
    CHECK(r && !json_object_object_get(r, "holder") && jint(r, "lease_until_ms") == 0);
    CHECK(r && json_object_object_get(r, "last_error_code") && !json_object_object_get(r, "processed_at"));
    json_object_put(r);
    CHECK(count_events(&e, "{\"status\":\"dead\"}") == 1);
    /* Nothing more happens to it, and a replay brings it back. */
    r = process_on(e.ctx, NULL);
    CHECK(r && jint(r, "claimed") == 0 && jint(r, "dead") == 0);
    json_object_put(r);
    CHECK_OK(integ_webhook_event_replay(e.s, ev));
    r = process_on(e.ctx, NULL);
    CHECK(r && jint(r, "processed") == 1);
    json_object_put(r);
    env_close(&e);
}

/* ---- what each status carries ------------------------------------------------------------- */

static int has(json_object *r, const char *k)
{
    json_object *v = NULL;
    return json_object_object_get_ex(r, k, &v) && v != NULL;
}

static void test_status_fields(void)
{
    struct env e;
    if (env_open(&e)) {
        CHECK(!"env_open");
        return;
    }
    char ep[64], ev[64];
    endpoint(&e, ep, sizeof ep);
    deliver(&e, ep, 1001, ev, sizeof ev);
    json_object *r = raw_event(e.ctx, ev);
    CHECK(r && is(r, "status", "queued") && !has(r, "holder") && !has(r, "last_error"));
    json_object_put(r);
    /* retry: the error, no lease, no outcome. */
    fetch_fails = 1;
    json_object_put(process_on(e.ctx, NULL));
    r = raw_event(e.ctx, ev);
    CHECK(r && is(r, "status", "retry") && has(r, "last_error") && has(r, "last_error_code"));
    CHECK(r && !has(r, "holder") && jint(r, "lease_until_ms") == 0 && !has(r, "processed_at") && !has(r, "result"));
    json_object_put(r);
    /* processed: the outcome, no error (not even its code). */
    fetch_fails = 0;
    fake_now += 3600001;
    json_object_put(process_on(e.ctx, NULL));
    r = raw_event(e.ctx, ev);
    CHECK(r && is(r, "status", "processed") && has(r, "processed_at") && has(r, "result"));
    CHECK(r && !has(r, "last_error") && !has(r, "last_error_code") && !has(r, "holder"));
    json_object_put(r);
    /* replayed: as received. */
    CHECK_OK(integ_webhook_event_replay(e.s, ev));
    r = raw_event(e.ctx, ev);
    CHECK(r && is(r, "status", "queued") && jint(r, "attempts") == 0);
    CHECK(r && !has(r, "processed_at") && !has(r, "result") && !has(r, "holder") && !has(r, "last_error") &&
          !has(r, "last_error_code") && jint(r, "lease_until_ms") == 0);
    json_object_put(r);
    char *out = NULL;
    CHECK_OK(integ_webhook_events_list(e.s, "{\"status\":\"queued\"}", &out));
    json_object *l = json_tokener_parse(out);
    json_object *pub = json_object_array_get_idx(l, 0);
    CHECK(pub && !has(pub, "processed_at") && !has(pub, "result") && !has(pub, "last_error") &&
          has(pub, "next_attempt_at"));
    json_object_put(l);
    integ_free(out);
    /* Failing to the end: dead carries the error, not the old outcome. */
    fetch_fails = 1;
    for (int i = 0; i < 3; i++) {
        json_object_put(process_on(e.ctx, NULL));
        fake_now += 3600001;
    }
    r = raw_event(e.ctx, ev);
    CHECK(r && is(r, "status", "dead") && has(r, "last_error") && has(r, "last_error_code"));
    CHECK(r && !has(r, "processed_at") && !has(r, "result") && !has(r, "holder") && jint(r, "lease_until_ms") == 0);
    json_object_put(r);
    CHECK(dead_seen == 1 && strstr(last_dead, "HTTP 502"));
    env_close(&e);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(dbpath, sizeof dbpath, "/tmp/integ-process-%d.db", (int)getpid());
    RUN(test_lease_taken_over_mid_event);
    RUN(test_lease_overrun_without_takeover);
    RUN(test_endpoint_deleted_mid_run);
    RUN(test_settle_store_error_isolated);
    RUN(test_dead_after_expired_leases);
    RUN(test_status_fields);
    TEST_END();
}
