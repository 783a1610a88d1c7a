/* Schedules and notifications: integ_run_due with an injected clock runs
 * the syncs that are due (and only those), emits sync.completed and
 * sync.failed, and processes queued webhook events.
 *
 *   test_schedule SANDBOX_BINARY */
#include <curl/curl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx.h"
#include "sandbox_proc.h"
#include "test.h"

#define TOKEN SANDBOX_TOKEN

static const char *sandbox_bin;
static struct sandbox sb;

static int sandbox_start(void)
{
    const char *args[] = {"--records", "hubspot:contacts=120,hubspot:companies=30", "--unlimited", NULL};
    return sandbox_spawn(&sb, sandbox_bin, args);
}

static _Atomic int64_t fake_now = 1750000000000;
static int64_t fk_now(void *p) { (void)p; return fake_now; }
static void fk_sleep(void *p, int64_t ms) { (void)p; fake_now += ms; }
static uint32_t fk_rand(void *p) { (void)p; return 0; } /* earliest in the jitter window */
static const ig_clock fake_clock = {fk_now, fk_sleep, fk_rand, NULL};

static int completed, failed;
static char last_failed[1024];
static void on_event(void *p, const char *json)
{
    (void)p;
    if (strstr(json, "\"type\":\"sync.completed\""))
        completed++;
    if (strstr(json, "\"type\":\"sync.failed\"")) {
        failed++;
        snprintf(last_failed, sizeof last_failed, "%s", json);
    }
}

static char *create(integ_session *s, const char *req)
{
    char *out = NULL;
    if (integ_integration_create(s, req, &out) != INTEG_OK) {
        fprintf(stderr, "  create: %s\n", integ_errmsg());
        return NULL;
    }
    json_object *o = json_tokener_parse(out);
    char *id = strdup(json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    integ_free(out);
    return id;
}

static json_object *run_due(integ_ctx *ctx)
{
    char *out = NULL;
    CHECK_OK(integ_run_due(ctx, 50, &out));
    json_object *o = out ? json_tokener_parse(out) : NULL;
    integ_free(out);
    return o;
}

static size_t n_syncs(json_object *r) { return r ? json_object_array_length(json_object_object_get(r, "syncs")) : 0; }

static void test_schedules(void)
{
    char opts[512];
    snprintf(opts, sizeof opts,
             "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\","
             "\"http\":{\"allow_private_networks\":true,\"max_retries\":0},"
             "\"base_url_overrides\":{\"hubspot-crm\":\"%s/hubspot\"}}",
             sb.url);
    integ_ctx *ctx = NULL;
    integ_session *s = NULL;
    CHECK_OK(integ_ctx_open(&ctx, opts));
    if (!ctx)
        return;
    ig_ctx_set_clock(ctx, &fake_clock);
    integ_ctx_set_event_cb(ctx, on_event, NULL);
    integ_session_open(&s, ctx, "acme", "alice", "[\"admin\"]");
    char *a = create(s, "{\"integration_definition_id\":\"hubspot-crm\",\"name\":\"auto\",\"credentials\":{\"api_key\":\"" TOKEN "\"},"
                        "\"config\":{\"auto_sync\":true,\"sync_interval\":600,\"entities\":[\"contacts\",\"companies\"]}}");
    char *b = create(s, "{\"integration_definition_id\":\"hubspot-crm\",\"name\":\"manual\",\"credentials\":{\"api_key\":\"" TOKEN "\"}}");
    char *c = create(s, "{\"integration_definition_id\":\"hubspot-crm\",\"name\":\"paused\",\"status\":\"paused\","
                        "\"credentials\":{\"api_key\":\"" TOKEN "\"},\"config\":{\"auto_sync\":true}}");
    char *d = create(s, "{\"integration_definition_id\":\"hubspot-crm\",\"name\":\"bad key\",\"credentials\":{\"api_key\":\"wrong\"},"
                        "\"config\":{\"auto_sync\":true,\"entities\":[\"contacts\"]}}");
    if (!a || !b || !c || !d) {
        CHECK(!"create");
        goto out;
    }
    completed = failed = 0;
    /* Due at once: "auto" (two entities) and "bad key"; not "manual" or "paused". */
    json_object *r = run_due(ctx);
    CHECK(n_syncs(r) == 3);
    int ok = 0, err = 0;
    for (size_t i = 0; i < n_syncs(r); i++) {
        json_object *o = json_object_array_get_idx(json_object_object_get(r, "syncs"), i);
        const char *st = json_object_get_string(json_object_object_get(o, "status"));
        const char *iid = json_object_get_string(json_object_object_get(o, "integration_id"));
        CHECK(!strcmp(iid, a) || !strcmp(iid, d));
        ok += !strcmp(st, "success");
        err += !strcmp(st, "error");
    }
    CHECK(ok == 2 && err == 1);
    json_object_put(r);
    CHECK(completed == 2 && failed == 1);
    CHECK(strstr(last_failed, d) && strstr(last_failed, "401"));
    char *out = NULL;
    CHECK_OK(integ_sync_logs(s, a, NULL, &out));
    CHECK(strstr(out, "\"trigger\":\"schedule\"") && strstr(out, "\"user_id\":\"scheduler\""));
    integ_free(out);
    CHECK_OK(integ_entities_list(s, "contacts", "{\"limit\":1000}", &out));
    json_object *l = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(l) == 120);
    json_object_put(l);
    /* Nothing more is due until the interval (minus jitter) has passed. */
    r = run_due(ctx);
    CHECK(n_syncs(r) == 0);
    json_object_put(r);
    fake_now += 500 * 1000;
    r = run_due(ctx);
    CHECK(n_syncs(r) == 0);
    json_object_put(r);
    fake_now += 100 * 1000; /* 600 s since: due (the earliest jitter is -10%) */
    r = run_due(ctx);
    CHECK(n_syncs(r) == 2); /* "bad key" needs re-auth now: not active */
    json_object_put(r);
    /* Turning auto_sync on schedules "manual" at once. */
    CHECK_OK(integ_integration_update(s, b, "{\"config\":{\"auto_sync\":true,\"entities\":[\"companies\"]}}", &out));
    integ_free(out);
    r = run_due(ctx);
    CHECK(n_syncs(r) == 1);
    json_object_put(r);
    /* Resuming "paused" makes it due. */
    CHECK_OK(integ_integration_update(s, c, "{\"status\":\"active\"}", &out));
    integ_free(out);
    r = run_due(ctx);
    CHECK(n_syncs(r) == 3); /* contacts, companies, deals: no entities chosen */
    json_object_put(r);
    CHECK_RC(integ_run_due(ctx, 0, &out), INTEG_EINVAL);
    CHECK_RC(integ_run_due(NULL, 5, &out), INTEG_EINVAL);
out:
    free(a), free(b), free(c), free(d);
    integ_session_close(s);
    integ_ctx_close(ctx);
}

/* The control API of the sandbox: POST json. */
static size_t discard(char *p, size_t sz, size_t n, void *u)
{
    (void)p, (void)u;
    return sz * n;
}

static void sb_faults(const char *faults)
{
    char url[256], body[256];
    snprintf(url, sizeof url, "%s/_sandbox/config", sb.url);
    snprintf(body, sizeof body, "{\"faults\":\"%s\"}", faults);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CHECK(curl_easy_perform(c) == CURLE_OK);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static const char *status_of(integ_session *s, const char *id, char *buf, size_t cap)
{
    char *out = NULL;
    buf[0] = '\0';
    if (integ_integration_get(s, id, &out) == INTEG_OK) {
        json_object *o = json_tokener_parse(out);
        snprintf(buf, cap, "%s", json_object_get_string(json_object_object_get(o, "status")));
        json_object_put(o);
    }
    integ_free(out);
    return buf;
}

static integ_ctx *open_ctx(const integ_store *store, void *store_data)
{
    char opts[512];
    snprintf(opts, sizeof opts,
             "{%s\"master_key\":\"" TEST_MASTER_KEY "\","
             "\"http\":{\"allow_private_networks\":true,\"max_retries\":0},"
             "\"base_url_overrides\":{\"hubspot-crm\":\"%s/hubspot\"}}",
             store ? "" : "\"store\":\"sqlite::memory:\",", sb.url);
    integ_ctx *ctx = NULL;
    CHECK_OK(store ? integ_ctx_open_with_store(&ctx, store, store_data, opts) : integ_ctx_open(&ctx, opts));
    if (ctx)
        ig_ctx_set_clock(ctx, &fake_clock);
    return ctx;
}

/* A sync that failed for a reason other than credentials (a 5xx here) sets
 * the status "error"; the schedule retries it at the next interval, and
 * a success makes it active again. */
static void test_error_status_retried(void)
{
    integ_ctx *ctx = open_ctx(NULL, NULL);
    integ_session *s = NULL;
    if (!ctx)
        return;
    integ_session_open(&s, ctx, "acme", "alice", "[\"admin\"]");
    char *a = create(s, "{\"integration_definition_id\":\"hubspot-crm\",\"credentials\":{\"api_key\":\"" TOKEN "\"},"
                        "\"config\":{\"auto_sync\":true,\"sync_interval\":600,\"entities\":[\"contacts\"]}}");
    char st[32];
    if (a) {
        sb_faults("error_every=1");
        json_object *r = run_due(ctx);
        CHECK(n_syncs(r) == 1);
        json_object_put(r);
        CHECK_STR(status_of(s, a, st, sizeof st), "error");
        sb_faults("");
        r = run_due(ctx);
        CHECK(n_syncs(r) == 0); /* not before the interval */
        json_object_put(r);
        fake_now += 600 * 1000;
        r = run_due(ctx);
        CHECK(n_syncs(r) == 1);
        json_object *o = json_object_array_get_idx(json_object_object_get(r, "syncs"), 0);
        CHECK_STR(json_object_get_string(json_object_object_get(o, "status")), "success");
        json_object_put(r);
        CHECK_STR(status_of(s, a, st, sizeof st), "active");
    }
    free(a);
    integ_session_close(s);
    integ_ctx_close(ctx);
}

/* The SQLite store, whose next read transaction can be made to fail. */
static const integ_store *sqlite_store;
static int fail_next_read;

static int failing_begin(void *data, int write, void **out)
{
    if (!write && fail_next_read) {
        fail_next_read = 0;
        *out = NULL;
        return integ_error_set(INTEG_ESTORE, "test: begin: disk I/O error (injected)");
    }
    return sqlite_store->begin(data, write, out);
}

/* A claimed integration whose definition cannot be read is reported, and
 * due again at once: before, the run synced nothing, said nothing and
 * moved the schedule an interval on. */
static void test_start_failure_reported(void)
{
    void *data = NULL;
    if (integ_store_sqlite_new(&sqlite_store, &data, ":memory:") != INTEG_OK) {
        CHECK(!"sqlite store");
        return;
    }
    integ_store st = *sqlite_store;
    st.begin = failing_begin;
    integ_ctx *ctx = open_ctx(&st, data);
    integ_session *s = NULL;
    if (!ctx)
        return;
    integ_session_open(&s, ctx, "acme", "alice", "[\"admin\"]");
    /* No config.entities: the run needs the definition to know what to sync. */
    char *a = create(s, "{\"integration_definition_id\":\"hubspot-crm\",\"credentials\":{\"api_key\":\"" TOKEN "\"},"
                        "\"config\":{\"auto_sync\":true,\"sync_interval\":600}}");
    if (a) {
        fail_next_read = 1;
        json_object *r = run_due(ctx);
        CHECK(n_syncs(r) == 1);
        json_object *o = json_object_array_get_idx(json_object_object_get(r, "syncs"), 0);
        CHECK_STR(json_object_get_string(json_object_object_get(o, "status")), "error");
        CHECK(json_object_get_int(json_object_object_get(o, "code")) == INTEG_ESTORE);
        CHECK(strstr(json_object_get_string(json_object_object_get(o, "error")), "injected") != NULL);
        json_object_put(r);
        /* Due again at once: the next call runs every listable entity. */
        r = run_due(ctx);
        CHECK(n_syncs(r) == 3);
        json_object_put(r);
    }
    free(a);
    integ_session_close(s);
    integ_ctx_close(ctx);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    sandbox_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    if (sandbox_start())
        return 1;
    RUN(test_schedules);
    RUN(test_error_status_retried);
    RUN(test_start_failure_reported);
    sandbox_stop(&sb);
    TEST_END();
}
