/* Schedules and notifications: integ_run_due with an injected clock runs
 * the syncs that are due (and only those), emits sync.completed and
 * sync.failed, and processes queued webhook events.
 *
 *   test_schedule SANDBOX_BINARY */
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

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    sandbox_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    if (sandbox_start())
        return 1;
    RUN(test_schedules);
    sandbox_stop(&sb);
    TEST_END();
}
