/* Pull sync through the real manifests of HubSpot, Shopify, Pipedrive and
 * Dynamics against the sandbox (tools/sandbox): every entity of each, the
 * default mappings, incremental runs after a remote change, and every
 * fault the sandbox injects — the run completes with the exact record set,
 * or fails with the right code and resumes to it.
 *
 *   test_sandbox_sync SANDBOX_BINARY */
#include <curl/curl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx.h"
#include "sandbox_proc.h"
#include "sync.h"
#include "test.h"
#include "util.h"

#define TOKEN SANDBOX_TOKEN

static const char *sandbox_bin;

static int sb_start(struct sandbox *sb, const char *records, const char *faults)
{
    const char *args[] = {"--records", records, "--faults", faults && *faults ? faults : "", NULL};
    return sandbox_spawn(sb, sandbox_bin, args);
}

static size_t sink(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

/* POST to the control API. */
static int sb_control(struct sandbox *sb, const char *path, const char *json)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", sb->url, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc == CURLE_OK && status < 300 ? 0 : -1;
}

/* ---- an injected clock: sleeping advances time ------------------------------ */

static _Atomic int64_t fake_now = 1750000000000;
static int64_t fk_now(void *p) { (void)p; return fake_now; }
static void fk_sleep(void *p, int64_t ms) { (void)p; fake_now += ms; }
static uint32_t fk_rand(void *p) { (void)p; return 0x40000000u; }
static const ig_clock fake_clock = {fk_now, fk_sleep, fk_rand, NULL};

struct env {
    integ_ctx *ctx;
    integ_session *s;
    char id[64];
};

static int env_open(struct env *e, struct sandbox *sb, const char *key, const char *request_tail)
{
    memset(e, 0, sizeof *e);
    char opts[1024];
    snprintf(opts, sizeof opts,
             "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\","
             "\"http\":{\"allow_private_networks\":true,\"max_retries\":4,\"timeout_ms\":5000},"
             "\"base_url_overrides\":{\"hubspot-crm\":\"%s/hubspot\",\"shopify-ecommerce\":\"%s/shopify/admin/api/2025-01\","
             "\"pipedrive-crm\":\"%s/pipedrive/api/v2\",\"dynamics-erp\":\"%s/dynamics/api/data/v9.2\"}}",
             sb->url, sb->url, sb->url, sb->url);
    if (integ_ctx_open(&e->ctx, opts) != INTEG_OK)
        return -1;
    ig_ctx_set_clock(e->ctx, &fake_clock);
    integ_session_open(&e->s, e->ctx, "acme", "alice", "[\"admin\"]");
    char req[512], *out = NULL;
    snprintf(req, sizeof req, "{\"integration_definition_id\":\"%s\",%s}", key, request_tail);
    if (integ_integration_create(e->s, req, &out) != INTEG_OK) {
        fprintf(stderr, "  create %s: %s\n", key, integ_errmsg());
        return -1;
    }
    json_object *o = json_tokener_parse(out);
    snprintf(e->id, sizeof e->id, "%s", json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    integ_free(out);
    return 0;
}

static void env_close(struct env *e)
{
    integ_session_close(e->s);
    integ_ctx_close(e->ctx);
}

static json_object *sync_entity(struct env *e, const char *entity, const char *extra, int want)
{
    char req[256], *out = NULL;
    snprintf(req, sizeof req, "{\"entity\":\"%s\"%s}", entity, extra ? extra : "");
    int rc = integ_sync(e->s, e->id, req, NULL, NULL, &out);
    if (rc != want)
        fprintf(stderr, "  sync %s: %d (%s), want %d\n", req, rc, integ_errmsg(), want);
    CHECK(rc == want);
    json_object *o = out ? json_tokener_parse(out) : NULL;
    integ_free(out);
    return o;
}

static int64_t jint(json_object *o, const char *k) { return json_object_get_int64(json_object_object_get(o, k)); }
static const char *jstr(json_object *o, const char *k) { return json_object_get_string(json_object_object_get(o, k)); }

static int64_t local_count(struct env *e, const char *entity)
{
    char *out = NULL;
    if (integ_entities_list(e->s, entity, "{\"limit\":10000}", &out) != INTEG_OK)
        return -1;
    json_object *l = json_tokener_parse(out);
    int64_t n = (int64_t)json_object_array_length(l);
    json_object_put(l);
    integ_free(out);
    return n;
}

/* The first local record's data has every named field, non-empty. */
static void check_fields(struct env *e, const char *entity, const char *const *fields)
{
    char *out = NULL;
    CHECK_OK(integ_entities_list(e->s, entity, "{\"limit\":1}", &out));
    json_object *l = json_tokener_parse(out);
    json_object *data = json_object_object_get(json_object_array_get_idx(l, 0), "data");
    for (const char *const *f = fields; *f; f++) {
        json_object *v = json_object_object_get(data, *f);
        if (!v || (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) == 0)) {
            fprintf(stderr, "  %s: field '%s' missing in %s\n", entity, *f, json_object_to_json_string(data));
            CHECK(!"mapped field missing");
        }
    }
    json_object_put(l);
    integ_free(out);
}

/* ---- every system, every entity ---------------------------------------------- */

struct system_case {
    const char *key;
    const char *request_tail;
    const char *entities[4];
    const char *local[4];
};

static void test_all_systems(void)
{
    struct sandbox sb;
    if (sb_start(&sb, "all=250", "")) {
        CHECK(!"sandbox start");
        return;
    }
    struct system_case cases[] = {
        {"hubspot-crm", "\"credentials\":{\"api_key\":\"" TOKEN "\"}", {"contacts", "companies", "deals"}, {"contacts", "companies", "deals"}},
        {"shopify-ecommerce", "\"credentials\":{\"api_key\":\"" TOKEN "\"},\"config\":{\"shop\":\"acme.myshopify.com\"}",
         {"customers", "products", "orders"}, {"contacts", "products", "orders"}},
        {"pipedrive-crm", "\"credentials\":{\"api_key\":\"" TOKEN "\"}", {"persons", "organizations"}, {"contacts", "companies"}},
        {"dynamics-erp", "\"auth_type\":\"oauth2\",\"credentials\":{\"access_token\":\"" TOKEN "\"},\"config\":{\"org_url\":\"https://acme.crm4.dynamics.com\",\"tenant\":\"acme.onmicrosoft.com\"}",
         {"accounts", "contacts"}, {"companies", "contacts"}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        struct env e;
        if (env_open(&e, &sb, cases[c].key, cases[c].request_tail)) {
            CHECK(!"env_open");
            continue;
        }
        char *out = NULL;
        CHECK_OK(integ_integration_test(e.s, e.id, &out));
        if (!strstr(out, "\"success\":true"))
            fprintf(stderr, "  %s test: %s\n", cases[c].key, out);
        CHECK(strstr(out, "\"success\":true") != NULL);
        integ_free(out);
        for (int k = 0; k < 4 && cases[c].entities[k]; k++) {
            json_object *r = sync_entity(&e, cases[c].entities[k], NULL, INTEG_OK);
            if (!r || jint(r, "records_created") != 250)
                fprintf(stderr, "  %s %s: %s\n", cases[c].key, cases[c].entities[k], r ? json_object_to_json_string(r) : "-");
            CHECK(r && jint(r, "records_created") == 250 && jint(r, "records_failed") == 0);
            json_object_put(r);
            /* Unchanged on a second run. */
            r = sync_entity(&e, cases[c].entities[k], NULL, INTEG_OK);
            CHECK(r && jint(r, "records_created") == 0 && jint(r, "records_updated") == 0);
            json_object_put(r);
        }
        for (int k = 0; k < 4 && cases[c].entities[k]; k++) {
            int64_t want = 0;
            for (int j = 0; j < 4 && cases[c].entities[j]; j++)
                want += !strcmp(cases[c].local[j], cases[c].local[k]) ? 250 : 0;
            CHECK(local_count(&e, cases[c].local[k]) == want);
        }
        env_close(&e);
    }
    /* The default mappings fill the canonical fields. */
    struct env e;
    if (env_open(&e, &sb, "hubspot-crm", "\"credentials\":{\"api_key\":\"" TOKEN "\"}") == 0) {
        json_object_put(sync_entity(&e, "contacts", NULL, INTEG_OK));
        static const char *const contact_fields[] = {"email", "first_name", "last_name", "external_updated_at", NULL};
        check_fields(&e, "contacts", contact_fields);
        env_close(&e);
    }
    if (env_open(&e, &sb, "shopify-ecommerce", "\"credentials\":{\"api_key\":\"" TOKEN "\"},\"config\":{\"shop\":\"acme.myshopify.com\"}") == 0) {
        json_object_put(sync_entity(&e, "orders", NULL, INTEG_OK));
        static const char *const order_fields[] = {"number", "total", "currency", NULL};
        check_fields(&e, "orders", order_fields);
        env_close(&e);
    }
    sandbox_stop(&sb);
}

/* ---- incremental after a remote change ------------------------------------------- */

static void test_incremental_touch(void)
{
    struct sandbox sb;
    if (sb_start(&sb, "all=300", "")) {
        CHECK(!"sandbox start");
        return;
    }
    const char *keys[] = {"hubspot-crm", "pipedrive-crm", "shopify-ecommerce", "dynamics-erp"};
    const char *tails[] = {"\"credentials\":{\"api_key\":\"" TOKEN "\"}", "\"credentials\":{\"api_key\":\"" TOKEN "\"}",
                           "\"credentials\":{\"api_key\":\"" TOKEN "\"},\"config\":{\"shop\":\"acme.myshopify.com\"}",
                           "\"auth_type\":\"oauth2\",\"credentials\":{\"access_token\":\"" TOKEN "\"},\"config\":{\"org_url\":\"https://acme.crm4.dynamics.com\",\"tenant\":\"acme.onmicrosoft.com\"}"};
    const char *entity[] = {"contacts", "persons", "customers", "accounts"};
    const char *system[] = {"hubspot", "pipedrive", "shopify", "dynamics"};
    for (int i = 0; i < 4; i++) {
        struct env e;
        if (env_open(&e, &sb, keys[i], tails[i])) {
            CHECK(!"env_open");
            continue;
        }
        json_object_put(sync_entity(&e, entity[i], NULL, INTEG_OK));
        char touch[256];
        snprintf(touch, sizeof touch, "{\"system\":\"%s\",\"entity\":\"%s\",\"index\":17}", system[i], entity[i]);
        CHECK(sb_control(&sb, "/_sandbox/touch", touch) == 0);
        json_object *r = sync_entity(&e, entity[i], NULL, INTEG_OK);
        if (!r || jint(r, "records_updated") != 1)
            fprintf(stderr, "  %s incremental: %s\n", keys[i], r ? json_object_to_json_string(r) : "-");
        CHECK(r && jint(r, "records_updated") == 1 && jint(r, "records_created") == 0);
        CHECK(r && jint(r, "records_processed") < 50); /* incremental, not a re-read */
        json_object_put(r);
        env_close(&e);
    }
    sandbox_stop(&sb);
}

/* ---- faults ------------------------------------------------------------------------ */

/* A sandbox with 1,200 HubSpot contacts (and `faults`) and a HubSpot
 * integration on it; -1 (a failed check) when either fails. */
static int hubspot_1200(struct sandbox *sb, struct env *e, const char *faults)
{
    if (sb_start(sb, "hubspot:contacts=1200", faults)) {
        CHECK(!"sandbox start");
        return -1;
    }
    if (env_open(e, sb, "hubspot-crm", "\"credentials\":{\"api_key\":\"" TOKEN "\"}")) {
        CHECK(!"env_open");
        sandbox_stop(sb);
        return -1;
    }
    return 0;
}

static void fault_run(const char *faults, int first_rc, const char *reset_faults, const char *first_msg, int real_clock)
{
    struct sandbox sb;
    struct env e;
    if (hubspot_1200(&sb, &e, faults))
        return;
    if (real_clock)
        ig_ctx_set_clock(e.ctx, NULL);
    json_object *r = sync_entity(&e, "contacts", NULL, first_rc);
    json_object_put(r);
    if (first_msg)
        CHECK_MSG(first_msg);
    if (first_rc != INTEG_OK) {
        CHECK(sb_control(&sb, "/_sandbox/config", reset_faults) == 0);
        r = sync_entity(&e, "contacts", NULL, INTEG_OK);
        CHECK(r && !strcmp(json_object_get_string(json_object_object_get(r, "status")), "success"));
        json_object_put(r);
    }
    CHECK(local_count(&e, "contacts") == 1200);
    char *out = NULL;
    CHECK_OK(integ_sync_logs(e.s, e.id, NULL, &out));
    json_object *logs = json_tokener_parse(out);
    integ_free(out);
    int64_t created = 0;
    for (size_t i = 0; i < json_object_array_length(logs); i++)
        created += jint(json_object_array_get_idx(logs, i), "records_created");
    CHECK(created == 1200); /* nothing created twice across the runs */
    json_object_put(logs);
    env_close(&e);
    sandbox_stop(&sb);
}

static void test_fault_rate_limited(void) { fault_run("rate_limit_every=3,retry_after=2", INTEG_OK, NULL, NULL, 0); }
static void test_fault_server_errors(void) { fault_run("error_every=4", INTEG_OK, NULL, NULL, 0); }
static void test_fault_truncated_json(void)
{
    fault_run("truncate_every=5", INTEG_EREMOTE, "{\"faults\":{}}", "malformed JSON", 0);
}
static void test_fault_outage_then_resume(void)
{
    fault_run("fail_after=4", INTEG_EREMOTE, "{\"faults\":{}}", "HTTP 503", 0);
}
static void test_fault_unauthorized(void)
{
    fault_run("unauthorized=1", INTEG_EAUTH, "{\"faults\":{}}", "401", 0);
}
/* The sandbox's real rate windows (HubSpot 10/s): only the real clock can
 * wait them out, so this one takes a few seconds. */
static void test_fault_enforced_limits(void) { fault_run("enforce_limits=1", INTEG_OK, NULL, NULL, 1); }


/* ---- pages fetched ahead --------------------------------------------------------- */

static size_t grow(char *p, size_t s, size_t n, void *u)
{
    struct { char b[8192]; size_t n; } *buf = u;
    size_t k = s * n;
    if (buf->n + k < sizeof buf->b) {
        memcpy(buf->b + buf->n, p, k);
        buf->n += k;
        buf->b[buf->n] = '\0';
    }
    return k;
}

/* GET /_sandbox/stats: how many list pages the sandbox has served. */
static int64_t pages_served(struct sandbox *sb)
{
    char url[256];
    snprintf(url, sizeof url, "%s/_sandbox/stats", sb->url);
    struct { char b[8192]; size_t n; } buf = {{0}, 0};
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, grow);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    json_object *o = rc == CURLE_OK ? json_tokener_parse(buf.b) : NULL;
    int64_t n = o ? jint(o, "pages_served") : -1;
    json_object_put(o);
    return n;
}

static int cancel_after_two(void *payload, const char *progress_json)
{
    (void)progress_json;
    return ++*(int *)payload >= 2;
}

/* The run fetches pages ahead on a second thread and commits pages on a
 * third while it plans the next: a cancel after page 2 leaves exactly two
 * pages applied (page 3, planned meanwhile, is dropped), the fetch thread
 * at most PREFETCH depth (2) pages past page 3, and the next run resumes to
 * the exact set. */
static void test_prefetch_cancel_and_resume(void)
{
    struct sandbox sb;
    struct env e;
    if (hubspot_1200(&sb, &e, ""))
        return;
    CHECK(sb_control(&sb, "/_sandbox/reset", "{}") == 0);
    int calls = 0;
    char *out = NULL;
    CHECK_RC(integ_sync(e.s, e.id, "{\"entity\":\"contacts\"}", cancel_after_two, &calls, &out), INTEG_ECANCELED);
    integ_free(out);
    CHECK(calls == 2);
    CHECK(local_count(&e, "contacts") == 200);
    int64_t served = pages_served(&sb);
    if (served < 2 || served > 5)
        fprintf(stderr, "  pages served after the cancel: %lld\n", (long long)served);
    CHECK(served >= 2 && served <= 5);
    json_object *r = sync_entity(&e, "contacts", NULL, INTEG_OK);
    CHECK(r && jint(r, "records_created") == 1000);
    json_object_put(r);
    CHECK(local_count(&e, "contacts") == 1200);
    env_close(&e);
    sandbox_stop(&sb);
}

/* A growing response body. */
struct body {
    char *p;
    size_t n;
};

static size_t body_add(char *p, size_t s, size_t n, void *u)
{
    struct body *b = u;
    char *q = realloc(b->p, b->n + s * n + 1);
    if (!q)
        return 0;
    memcpy(q + b->n, p, s * n);
    b->p = q;
    b->n += s * n;
    b->p[b->n] = '\0';
    return s * n;
}

/* The remote id of the index-th contact in list order (pages of 100, as the
 * manifest asks), read from the sandbox's list endpoint. */
static int remote_id_at(struct sandbox *sb, int index, char *out, size_t cap)
{
    char after[64] = "", url[512];
    int rc = -1;
    for (int page = 0; page <= index / 100; page++) {
        snprintf(url, sizeof url, "%s/hubspot/crm/v3/objects/contacts?limit=100%s%s", sb->url,
                 after[0] ? "&after=" : "", after);
        struct body b = {NULL, 0};
        CURL *c = curl_easy_init();
        struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_add);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        CURLcode cc = curl_easy_perform(c);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        json_object *o = cc == CURLE_OK && b.p ? json_tokener_parse(b.p) : NULL;
        free(b.p);
        json_object *results = NULL, *v = NULL;
        if (!o || !json_object_object_get_ex(o, "results", &results)) {
            json_object_put(o);
            return -1;
        }
        if (page == index / 100) {
            json_object *rec = json_object_array_get_idx(results, (size_t)(index % 100));
            if (rec && json_object_object_get_ex(rec, "id", &v)) {
                snprintf(out, cap, "%s", json_object_get_string(v));
                rc = 0;
            }
        } else if (json_object_object_get_ex(o, "paging", &v) && json_object_object_get_ex(v, "next", &v) &&
                   json_object_object_get_ex(v, "after", &v)) {
            snprintf(after, sizeof after, "%s", json_object_get_string(v));
        }
        json_object_put(o);
    }
    return rc;
}

/* integ_store_row_cb: keep the first row's text. */
static int collect_first(void *payload, const char *json, size_t len, const unsigned char *blob, size_t blob_len)
{
    (void)blob;
    (void)blob_len;
    struct body *b = payload;
    if (!b->p)
        body_add((char *)json, 1, len, b);
    return 0;
}

/* A local record linked to remote record `ext`, as a webhook delivery or
 * another run would leave it; its id in local_id. */
static int make_linked(struct env *e, const char *ext, char local_id[64])
{
    char *out = NULL;
    if (integ_entity_put(e->s, "contacts", "{\"data\":{\"email\":\"mine@example.com\"}}", &out) != INTEG_OK)
        return -1;
    json_object *rec = json_tokener_parse(out);
    integ_free(out);
    snprintf(local_id, 64, "%s", jstr(rec, "id"));
    json_object_put(rec);
    char link[1024], id[37];
    ig_ctx_new_id(e->ctx, id, 1750000000000);
    snprintf(link, sizeof link,
             "{\"id\":\"%s\",\"tenant_id\":\"acme\",\"integration_id\":\"%s\",\"entity\":\"contacts\","
             "\"local_entity\":\"contacts\",\"external_id\":\"%s\",\"local_id\":\"%s\",\"hash\":\"stale\","
             "\"pending\":false,\"local_version\":1,\"base\":{\"email\":\"mine@example.com\"}}",
             id, e->id, ext, local_id);
    void *tx = NULL;
    int rc = e->ctx->store->begin(e->ctx->store_data, 1, &tx);
    if (rc == INTEG_OK)
        rc = e->ctx->store->put(tx, INTEG_KIND_ENTITY_LINK, link, NULL, 0, INTEG_PUT_INSERT);
    if (tx)
        rc = e->ctx->store->end(tx, rc == INTEG_OK);
    return rc == INTEG_OK ? 0 : -1;
}

struct race {
    struct env *e;
    const char *ext;
    char local_id[64];
    int calls, made;
};

/* After page 1 has landed, page 2 is already planned: link one of its
 * records behind the run's back. */
static int link_during_run(void *payload, const char *progress_json)
{
    (void)progress_json;
    struct race *rc = payload;
    if (++rc->calls == 1)
        rc->made = make_linked(rc->e, rc->ext, rc->local_id) == 0;
    return 0;
}

/* Pages go to a writer thread, planned while the page before is written:
 * without reading links when the run found none (an initial load), else
 * with a read that cannot see what is made meanwhile. A link made between
 * the plan and the write (here by the progress callback; in life by a
 * webhook delivery) fails the write's insert; the page is then applied
 * again inside its own transaction, and the record is updated, not
 * created twice. */
static void test_writer_meets_new_link(int links_at_start)
{
    struct sandbox sb;
    struct env e;
    if (hubspot_1200(&sb, &e, ""))
        return;
    char ext[64] = "", stray[64] = "";
    CHECK(remote_id_at(&sb, 150, ext, sizeof ext) == 0); /* on page 2 */
    if (links_at_start)
        CHECK(make_linked(&e, "no-such-remote-record", stray) == 0);
    uint64_t pages0, retries0, pages1, retries1;
    ig_sync_writer_stats(e.ctx, &pages0, &retries0);
    struct race race = {&e, ext, "", 0, 0};
    char *out = NULL;
    CHECK_OK(integ_sync(e.s, e.id, "{\"entity\":\"contacts\"}", link_during_run, &race, &out));
    json_object *r = out ? json_tokener_parse(out) : NULL;
    integ_free(out);
    CHECK(race.made);
    ig_sync_writer_stats(e.ctx, &pages1, &retries1);
    if (retries1 - retries0 != 1 || pages1 - pages0 < 5)
        fprintf(stderr, "  writer pages %llu, retries %llu\n", (unsigned long long)(pages1 - pages0),
                (unsigned long long)(retries1 - retries0));
    CHECK(retries1 - retries0 == 1);
    CHECK(pages1 - pages0 >= 5);
    CHECK(r && jint(r, "records_created") == 1199);
    CHECK(r && jint(r, "records_created") + jint(r, "records_updated") + jint(r, "conflicts") == 1200);
    json_object_put(r);
    CHECK(local_count(&e, "contacts") == 1200 + links_at_start);
    /* the remote record has one local record: the one linked meanwhile */
    char *got = NULL;
    CHECK_OK(integ_entity_get(e.s, "contacts", race.local_id, &got));
    json_object *g = got ? json_tokener_parse(got) : NULL;
    integ_free(got);
    json_object *links = g ? json_object_object_get(g, "links") : NULL;
    CHECK(links && json_object_array_length(links) == 1);
    CHECK_STR(jstr(json_object_array_get_idx(links, 0), "external_id"), ext);
    json_object_put(g);
    /* and a second run finds everything in place */
    r = sync_entity(&e, "contacts", NULL, INTEG_OK);
    CHECK(r && jint(r, "records_created") == 0);
    json_object_put(r);
    CHECK(local_count(&e, "contacts") == 1200 + links_at_start);
    env_close(&e);
    sandbox_stop(&sb);
}

/* The link of remote record `ext`, as stored, with what differs from run
 * to run (ids, times of the run) taken out; its integration id is checked
 * against the env's. NULL if there is none. */
static json_object *stored_link(struct env *e, const char *ext)
{
    char q[300];
    snprintf(q, sizeof q, "{\"integration_id\":\"%s\",\"external_id\":\"%s\"}", e->id, ext);
    struct body b = {NULL, 0};
    void *tx = NULL;
    json_object *link = NULL;
    if (e->ctx->store->begin(e->ctx->store_data, 0, &tx) == INTEG_OK) {
        if (e->ctx->store->list(tx, INTEG_KIND_ENTITY_LINK, q, collect_first, &b) == INTEG_OK && b.p)
            link = json_tokener_parse(b.p);
        e->ctx->store->end(tx, 0);
    }
    free(b.p);
    if (link) {
        CHECK_STR(jstr(link, "integration_id"), e->id);
        static const char *const varying[] = {"id", "local_id", "integration_id", "synced_at", "seen_run"};
        for (size_t i = 0; i < sizeof varying / sizeof varying[0]; i++)
            json_object_object_del(link, varying[i]);
    }
    return link;
}

/* Links made on the writer thread (written as text) and links made in a
 * page's own transaction (built as objects) are the same records: an
 * initial load goes through the writer; the same load with one record of
 * every page already linked goes page by page through the transaction. */
static void test_writer_links_as_built(void)
{
    struct sandbox sb;
    struct env a, b;
    if (hubspot_1200(&sb, &a, ""))
        return;
    if (env_open(&b, &sb, "hubspot-crm", "\"credentials\":{\"api_key\":\"" TOKEN "\"}")) {
        CHECK(!"env_open");
        env_close(&a);
        sandbox_stop(&sb);
        return;
    }
    char ext[64], local_id[64];
    for (int page = 0; page < 12; page++) {
        CHECK(remote_id_at(&sb, page * 100, ext, sizeof ext) == 0);
        CHECK(make_linked(&b, ext, local_id) == 0);
    }
    uint64_t pa0, ra0, pb0, rb0, pa1, ra1, pb1, rb1;
    ig_sync_writer_stats(a.ctx, &pa0, &ra0);
    ig_sync_writer_stats(b.ctx, &pb0, &rb0);
    json_object *r = sync_entity(&a, "contacts", NULL, INTEG_OK);
    CHECK(r && jint(r, "records_created") == 1200);
    json_object_put(r);
    r = sync_entity(&b, "contacts", NULL, INTEG_OK);
    CHECK(r && jint(r, "records_created") == 1188);
    json_object_put(r);
    ig_sync_writer_stats(a.ctx, &pa1, &ra1);
    ig_sync_writer_stats(b.ctx, &pb1, &rb1);
    CHECK(pa1 - pa0 == 12 && ra1 == ra0); /* every page through the writer */
    CHECK(pb1 == pb0 && rb1 == rb0);      /* none */
    static const int at[] = {1, 50, 99, 150, 777, 1199};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        CHECK(remote_id_at(&sb, at[i], ext, sizeof ext) == 0);
        json_object *la = stored_link(&a, ext), *lb = stored_link(&b, ext);
        CHECK(la && lb);
        const char *ta = la ? json_object_to_json_string_ext(la, JSON_C_TO_STRING_PLAIN) : "",
                   *tb = lb ? json_object_to_json_string_ext(lb, JSON_C_TO_STRING_PLAIN) : "";
        if (strcmp(ta, tb) != 0)
            fprintf(stderr, "  record %d:\n    writer %s\n    in tx  %s\n", at[i], ta, tb);
        CHECK(strcmp(ta, tb) == 0);
        CHECK(la && json_object_object_get(la, "base") && jint(la, "local_version") == 1 && jstr(la, "hash") &&
              jstr(la, "remote_updated_at"));
        json_object_put(la);
        json_object_put(lb);
    }
    env_close(&b);
    env_close(&a);
    sandbox_stop(&sb);
}

static void test_writer_assumed_plan_meets_link(void) { test_writer_meets_new_link(0); }
static void test_writer_read_plan_meets_link(void) { test_writer_meets_new_link(1); }

/* ---- what a failed or interrupted run leaves ------------------------------------- */

/* The integration's status (and last_error, when out_error), as stored. */
static void integration_status(struct env *e, char status[32], char out_error[256])
{
    status[0] = '\0';
    if (out_error)
        out_error[0] = '\0';
    struct body b = {NULL, 0};
    void *tx = NULL;
    if (e->ctx->store->begin(e->ctx->store_data, 0, &tx) == INTEG_OK) {
        CHECK_OK(e->ctx->store->get(tx, INTEG_KIND_INTEGRATION, "acme", e->id, collect_first, &b));
        e->ctx->store->end(tx, 0);
    }
    json_object *o = b.p ? json_tokener_parse(b.p) : NULL;
    free(b.p);
    snprintf(status, 32, "%s", o && jstr(o, "status") ? jstr(o, "status") : "");
    if (out_error)
        snprintf(out_error, 256, "%s", o && jstr(o, "last_error") ? jstr(o, "last_error") : "");
    json_object_put(o);
}

/* Is the integration among the syncs integ_run_due starts now? */
static int run_due_syncs(struct env *e)
{
    char *out = NULL;
    CHECK_OK(integ_run_due(e->ctx, 10, &out));
    int found = out && strstr(out, e->id) != NULL;
    integ_free(out);
    return found;
}

/* A failed run records its error without undoing what a person decided: a
 * paused integration stays paused (the scheduler claims "error" ones), and
 * one that needs re-authorisation keeps needing it when something else
 * fails (a 500 before the credentials were replaced). */
static void test_failure_keeps_paused_and_needs_reauth(void)
{
    struct sandbox sb;
    if (sb_start(&sb, "hubspot:contacts=300", "")) {
        CHECK(!"sandbox start");
        return;
    }
    struct env e;
    if (env_open(&e, &sb, "hubspot-crm", "\"credentials\":{\"api_key\":\"" TOKEN "\"},\"config\":{\"auto_sync\":true}")) {
        CHECK(!"env_open");
        sandbox_stop(&sb);
        return;
    }
    char status[32], err[256], *out = NULL;
    CHECK_OK(integ_integration_update(e.s, e.id, "{\"status\":\"paused\"}", &out));
    integ_free(out);
    CHECK(sb_control(&sb, "/_sandbox/config", "{\"faults\":\"error_every=1\"}") == 0);
    json_object_put(sync_entity(&e, "contacts", NULL, INTEG_EREMOTE));
    integration_status(&e, status, err);
    CHECK_STR(status, "paused");
    CHECK(strstr(err, "HTTP 500") != NULL); /* the reason is kept */
    CHECK(sb_control(&sb, "/_sandbox/config", "{\"faults\":{}}") == 0);
    fake_now += 2 * 3600 * 1000LL; /* past the next scheduled run */
    CHECK(!run_due_syncs(&e));
    integration_status(&e, status, NULL);
    CHECK_STR(status, "paused");

    /* Active again; a 401 makes it needs_reauth; a 500 after that keeps it. */
    CHECK_OK(integ_integration_update(e.s, e.id, "{\"status\":\"active\"}", &out));
    integ_free(out);
    CHECK(sb_control(&sb, "/_sandbox/config", "{\"faults\":\"unauthorized=1\"}") == 0);
    json_object_put(sync_entity(&e, "contacts", NULL, INTEG_EAUTH));
    integration_status(&e, status, NULL);
    CHECK_STR(status, "needs_reauth");
    CHECK(sb_control(&sb, "/_sandbox/config", "{\"faults\":\"error_every=1\"}") == 0);
    json_object_put(sync_entity(&e, "contacts", NULL, INTEG_EREMOTE));
    integration_status(&e, status, err);
    CHECK_STR(status, "needs_reauth");
    CHECK(strstr(err, "HTTP 500") != NULL);
    CHECK(sb_control(&sb, "/_sandbox/config", "{\"faults\":{}}") == 0);
    fake_now += 2 * 3600 * 1000LL;
    CHECK(!run_due_syncs(&e));
    /* A success (after new credentials, here the fault gone) makes it active. */
    json_object_put(sync_entity(&e, "contacts", NULL, INTEG_OK));
    integration_status(&e, status, NULL);
    CHECK_STR(status, "active");
    env_close(&e);
    sandbox_stop(&sb);
}

/* The integration's stored record (NULL: none). */
static json_object *integration_record(struct env *e)
{
    struct body b = {NULL, 0};
    void *tx = NULL;
    json_object *o = NULL;
    if (e->ctx->store->begin(e->ctx->store_data, 0, &tx) == INTEG_OK) {
        if (e->ctx->store->get(tx, INTEG_KIND_INTEGRATION, "acme", e->id, collect_first, &b) == INTEG_OK && b.p)
            o = json_tokener_parse(b.p);
        e->ctx->store->end(tx, 0);
    }
    free(b.p);
    return o;
}

struct new_creds {
    struct sandbox *sb;
    struct env *e;
    int calls, set_rc;
    char sealed[4096]; /* credentials_sealed right after they were set */
};

/* After page 1: a person sets new credentials (another session), and the
 * provider starts refusing the old ones the run is using. */
static int set_creds_during_run(void *payload, const char *progress_json)
{
    (void)progress_json;
    struct new_creds *n = payload;
    if (++n->calls != 1)
        return 0;
    integ_session *other = NULL;
    integ_session_open(&other, n->e->ctx, "acme", "bob", "[\"admin\"]");
    n->set_rc = integ_integration_set_credentials(other, n->e->id, "{\"api_key\":\"a-new-key\"}");
    integ_session_close(other);
    json_object *rec = integration_record(n->e);
    snprintf(n->sealed, sizeof n->sealed, "%s", rec && jstr(rec, "credentials_sealed") ? jstr(rec, "credentials_sealed") : "");
    json_object_put(rec);
    if (sb_control(n->sb, "/_sandbox/config", "{\"faults\":\"unauthorized=1\"}"))
        n->set_rc = -1;
    return 0;
}

/* A run whose credentials were replaced while it ran, and which the
 * provider then refuses (a 401 for the old credentials), does not mark the
 * new ones needs_reauth: they have not been tried. The failure is in the
 * sync log; the status, last_error and the new credentials stay. A 401
 * for the credentials the integration has (the next run) still marks it. */
static void test_unauthorized_after_new_credentials(void)
{
    struct sandbox sb;
    struct env e;
    if (hubspot_1200(&sb, &e, ""))
        return;
    struct new_creds n = {&sb, &e, 0, -1, ""};
    char *out = NULL, status[32], err[256];
    int rc = integ_sync(e.s, e.id, "{\"entity\":\"contacts\"}", set_creds_during_run, &n, &out);
    integ_free(out);
    CHECK(rc == INTEG_EAUTH);
    CHECK(n.calls >= 1 && n.set_rc == INTEG_OK && n.sealed[0]);
    integration_status(&e, status, err);
    if (strcmp(status, "active") != 0)
        fprintf(stderr, "  status %s (%s)\n", status, err);
    CHECK_STR(status, "active");
    CHECK(strstr(err, "401") == NULL);
    json_object *rec = integration_record(&e);
    CHECK(rec && jstr(rec, "credentials_sealed") && !strcmp(jstr(rec, "credentials_sealed"), n.sealed));
    json_object_put(rec);
    /* The run's failure is recorded all the same. */
    CHECK_OK(integ_sync_logs(e.s, e.id, NULL, &out));
    json_object *logs = out ? json_tokener_parse(out) : NULL;
    integ_free(out);
    int errors = 0;
    for (size_t i = 0; i < json_object_array_length(logs); i++)
        errors += !strcmp(jstr(json_object_array_get_idx(logs, i), "status"), "error");
    CHECK(errors == 1);
    json_object_put(logs);

    /* The next run is refused with the credentials the integration has:
     * needs_reauth. */
    json_object_put(sync_entity(&e, "contacts", NULL, INTEG_EAUTH));
    integration_status(&e, status, err);
    CHECK_STR(status, "needs_reauth");
    CHECK(strstr(err, "401") != NULL);
    env_close(&e);
    sandbox_stop(&sb);
}

/* The stored checkpoint of an entity (NULL: none). */
static json_object *checkpoint_of(struct env *e, const char *entity)
{
    char id[200];
    snprintf(id, sizeof id, "%s:%s", e->id, entity);
    struct body b = {NULL, 0};
    void *tx = NULL;
    json_object *ck = NULL;
    if (e->ctx->store->begin(e->ctx->store_data, 0, &tx) == INTEG_OK) {
        if (e->ctx->store->get(tx, INTEG_KIND_CHECKPOINT, "acme", id, collect_first, &b) == INTEG_OK && b.p)
            ck = json_tokener_parse(b.p);
        e->ctx->store->end(tx, 0);
    }
    free(b.p);
    return ck;
}

/* The stored link of remote record `ext`, whole (NULL: none). */
static json_object *link_of(struct env *e, const char *ext)
{
    char q[300];
    snprintf(q, sizeof q, "{\"integration_id\":\"%s\",\"external_id\":\"%s\"}", e->id, ext);
    struct body b = {NULL, 0};
    void *tx = NULL;
    json_object *link = NULL;
    if (e->ctx->store->begin(e->ctx->store_data, 0, &tx) == INTEG_OK) {
        if (e->ctx->store->list(tx, INTEG_KIND_ENTITY_LINK, q, collect_first, &b) == INTEG_OK && b.p)
            link = json_tokener_parse(b.p);
        e->ctx->store->end(tx, 0);
    }
    free(b.p);
    return link;
}

#define MAPPING_FIELDS                                                                              \
    "\"source_entity\":\"contacts\",\"target_entity\":\"contacts\",\"field_map\":{\"email\":"       \
    "\"properties.email\",\"first_name\":\"properties.firstname\",\"external_updated_at\":\"updatedAt\"}"

/* A record that fails mapping in a run that otherwise completes (partial)
 * holds the high-water mark below its remote update time: the next
 * incremental run reads it again, and applies it once the mapping is
 * fixed. */
static void test_failed_record_retried_incrementally(void)
{
    struct sandbox sb;
    struct env e;
    if (hubspot_1200(&sb, &e, ""))
        return;
    char *out = NULL;
    CHECK_OK(integ_mapping_put(e.s, e.id, "{" MAPPING_FIELDS ",\"required\":[\"email\"]}", &out));
    integ_free(out);
    json_object *r = sync_entity(&e, "contacts", NULL, INTEG_OK);
    CHECK(r && jint(r, "records_created") == 1200 && jint(r, "records_failed") == 0);
    json_object_put(r);
    int64_t t1, t2;
    CHECK(ig_parse_rfc3339("2031-01-01T00:00:00Z", &t1) == 0 && ig_parse_rfc3339("2031-01-01T00:10:00Z", &t2) == 0);
    json_object *ck = checkpoint_of(&e, "contacts");
    CHECK(ck && jint(ck, "hwm_ms") > 0 && jint(ck, "hwm_ms") < t1);
    json_object_put(ck);
    /* Remote changes: record 17 loses its e-mail (which the mapping
     * requires), record 18 changes after it. */
    CHECK(sb_control(&sb, "/_sandbox/touch",
                     "{\"system\":\"hubspot\",\"entity\":\"contacts\",\"index\":17,\"updated_at\":\"2031-01-01T00:00:00Z\","
                     "\"fields\":{\"email\":null}}") == 0);
    CHECK(sb_control(&sb, "/_sandbox/touch",
                     "{\"system\":\"hubspot\",\"entity\":\"contacts\",\"index\":18,\"updated_at\":\"2031-01-01T00:10:00Z\"}") == 0);
    r = sync_entity(&e, "contacts", NULL, INTEG_OK);
    CHECK(r && !strcmp(jstr(r, "status"), "partial") && jint(r, "records_failed") == 1 && jint(r, "records_updated") == 1);
    CHECK(r && jint(r, "records_processed") <= 3); /* incremental (from the mark: the newest record again) */
    json_object_put(r);
    ck = checkpoint_of(&e, "contacts");
    if (!ck || jint(ck, "hwm_ms") >= t1)
        fprintf(stderr, "  watermark after the partial run: %lld (failed record at %lld)\n",
                ck ? (long long)jint(ck, "hwm_ms") : -1LL, (long long)t1);
    CHECK(ck && jint(ck, "hwm_ms") < t1 && jint(ck, "hwm_ms") >= t1 - 1000);
    json_object_put(ck);
    /* The mapping is fixed: the next incremental run reads record 17 again
     * and applies it. */
    CHECK_OK(integ_mapping_put(e.s, e.id, "{" MAPPING_FIELDS "}", &out));
    integ_free(out);
    r = sync_entity(&e, "contacts", NULL, INTEG_OK);
    CHECK(r && !strcmp(jstr(r, "status"), "success") && jint(r, "records_failed") == 0);
    CHECK(r && jint(r, "records_updated") == 2 && jint(r, "records_processed") <= 3);
    json_object_put(r);
    /* which remote record is 17 now: the one whose link says 2031-01-01T00:00:00Z */
    char *list = NULL;
    int found = 0;
    CHECK_OK(integ_entities_list(e.s, "contacts", "{\"limit\":10000}", &list));
    json_object *all = list ? json_tokener_parse(list) : NULL;
    integ_free(list);
    for (size_t i = 0; all && i < json_object_array_length(all); i++) {
        json_object *data = json_object_object_get(json_object_array_get_idx(all, i), "data");
        const char *at = jstr(data, "external_updated_at");
        if (at && !strncmp(at, "2031-01-01T00:00:00", 19)) {
            found++;
            CHECK(!jstr(data, "email")); /* the remote's change, applied */
        }
    }
    json_object_put(all);
    if (found != 1)
        fprintf(stderr, "  records with record 17's change: %d\n", found);
    CHECK(found == 1);
    ck = checkpoint_of(&e, "contacts");
    CHECK(ck && jint(ck, "hwm_ms") == t2); /* nothing failed: the mark moves on */
    json_object_put(ck);
    env_close(&e);
    sandbox_stop(&sb);
}

/* ---- the lease lost during a page ------------------------------------------------ */

struct takeover {
    struct env *e;
    int calls;
    int inner_rc;
    json_object *ck;   /* the checkpoint the other run left */
};

static int cancel_at_once(void *payload, const char *progress_json)
{
    (void)payload;
    (void)progress_json;
    return 1;
}

/* Called when page 2 has landed, with page 3 planned and about to be
 * written: the fetch of page 3 outlasted the lease (the clock moves past
 * it), and another run (a second session: another holder) took the lease
 * over, read a page from the start and stopped. */
static int take_over_lease(void *payload, const char *progress_json)
{
    (void)progress_json;
    struct takeover *t = payload;
    if (++t->calls != 2)
        return 0;
    fake_now += 121000;
    integ_session *other = NULL;
    char *out = NULL;
    integ_session_open(&other, t->e->ctx, "acme", "bob", "[\"admin\"]");
    t->inner_rc = integ_sync(other, t->e->id, "{\"entity\":\"contacts\",\"full\":true}", cancel_at_once, NULL, &out);
    integ_free(out);
    integ_session_close(other);
    t->ck = checkpoint_of(t->e, "contacts");
    return 0;
}

/* A run whose lease was taken over between its lease renewal and a page's
 * write stops with INTEG_ECONFLICT and writes nothing more: the lease is
 * checked inside the page's write transaction, on the writer thread
 * (via_writer: an initial load, every page there) and in apply_page (a page
 * with a record already linked goes the usual way). The checkpoint stays
 * the other run's, and the next run completes the exact set. */
static void lease_lost_mid_run(int via_writer)
{
    struct sandbox sb;
    struct env e;
    if (hubspot_1200(&sb, &e, ""))
        return;
    char ext[64] = "", local_id[64] = "";
    if (!via_writer) {
        CHECK(remote_id_at(&sb, 250, ext, sizeof ext) == 0); /* on page 3 */
        CHECK(make_linked(&e, ext, local_id) == 0);
    }
    struct takeover t = {&e, 0, 0, NULL};
    char *out = NULL;
    CHECK_RC(integ_sync(e.s, e.id, "{\"entity\":\"contacts\"}", take_over_lease, &t, &out), INTEG_ECONFLICT);
    CHECK_MSG("sync lease lost to another run");
    integ_free(out);
    CHECK(t.calls == 2);
    CHECK(t.inner_rc == INTEG_ECANCELED); /* it got the lease */
    /* page 3 was not written, and the checkpoint is the other run's */
    int64_t n = local_count(&e, "contacts");
    if (n != 200 + !via_writer)
        fprintf(stderr, "  local records after the lost lease: %lld\n", (long long)n);
    CHECK(n == 200 + !via_writer);
    json_object *ck = checkpoint_of(&e, "contacts");
    json_object *state = ck ? json_object_object_get(ck, "state") : NULL;
    json_object *other = t.ck ? json_object_object_get(t.ck, "state") : NULL;
    if (!state || !other || !json_object_equal(state, other))
        fprintf(stderr, "  checkpoint %s\n  the other run's %s\n", state ? json_object_to_json_string(state) : "-",
                other ? json_object_to_json_string(other) : "-");
    CHECK(state && other && json_object_equal(state, other));
    json_object_put(ck);
    json_object_put(t.ck);
    /* The integration's status is the other run's business. */
    char status[32];
    integration_status(&e, status, NULL);
    CHECK_STR(status, "active");
    /* The next run resumes from there to the exact set. */
    json_object *r = sync_entity(&e, "contacts", NULL, INTEG_OK);
    CHECK(r && jint(r, "records_failed") == 0);
    json_object_put(r);
    CHECK(local_count(&e, "contacts") == 1200);
    env_close(&e);
    sandbox_stop(&sb);
}

static void test_lease_lost_writer_page(void) { lease_lost_mid_run(1); }
static void test_lease_lost_tx_page(void) { lease_lost_mid_run(0); }

/* ---- conflicts of a page that rolled back ---------------------------------------- */

/* The context's store with checkpoint writes failing while fail_checkpoints
 * is set: the page's write transaction rolls back at its very end. */
static const integ_store *real_store;
static integ_store failing_store;
static atomic_int fail_checkpoints;

static int fs_put(void *tx, integ_store_kind kind, const char *json, const unsigned char *blob, size_t blob_len,
                  integ_put_mode mode)
{
    if (kind == INTEG_KIND_CHECKPOINT && atomic_load(&fail_checkpoints))
        return INTEG_ESTORE;
    return real_store->put(tx, kind, json, blob, blob_len, mode);
}

static int fs_put_fields(void *tx, integ_store_kind kind, const char *json, size_t json_len,
                         const integ_store_field *fields, size_t n_fields, const unsigned char *blob, size_t blob_len,
                         integ_put_mode mode)
{
    if (kind == INTEG_KIND_CHECKPOINT && atomic_load(&fail_checkpoints))
        return INTEG_ESTORE;
    return real_store->put_fields(tx, kind, json, json_len, fields, n_fields, blob, blob_len, mode);
}

static atomic_int conflict_events;

static void count_conflicts(void *payload, const char *event_json)
{
    (void)payload;
    if (strstr(event_json, "\"conflict.detected\""))
        atomic_fetch_add(&conflict_events, 1);
}

/* A conflict found on a page whose transaction then rolls back was never
 * recorded: no conflict.detected, not counted. The next run finds it again
 * and reports it once. */
static void test_conflict_of_rolled_back_page(void)
{
    struct sandbox sb;
    if (sb_start(&sb, "hubspot:contacts=300", "")) {
        CHECK(!"sandbox start");
        return;
    }
    struct env e;
    if (env_open(&e, &sb, "hubspot-crm", "\"credentials\":{\"api_key\":\"" TOKEN "\"}")) {
        CHECK(!"env_open");
        sandbox_stop(&sb);
        return;
    }
    integ_ctx_set_event_cb(e.ctx, count_conflicts, NULL);
    json_object_put(sync_entity(&e, "contacts", NULL, INTEG_OK));
    /* Record 5 changes on both sides. */
    char ext[64] = "", put[256], *out = NULL;
    CHECK(remote_id_at(&sb, 5, ext, sizeof ext) == 0);
    json_object *link = link_of(&e, ext);
    CHECK(link != NULL);
    snprintf(put, sizeof put, "{\"id\":\"%s\",\"data\":{\"email\":\"mine@example.com\"}}",
             link ? jstr(link, "local_id") : "");
    json_object_put(link);
    CHECK_OK(integ_entity_put(e.s, "contacts", put, &out));
    integ_free(out);
    CHECK(sb_control(&sb, "/_sandbox/touch",
                     "{\"system\":\"hubspot\",\"entity\":\"contacts\",\"index\":5,\"fields\":{\"firstname\":\"Remote\"}}") == 0);
    /* The page's transaction fails at its end (the checkpoint write). */
    real_store = e.ctx->store;
    failing_store = *real_store;
    failing_store.put = fs_put;
    if (real_store->put_fields)
        failing_store.put_fields = fs_put_fields;
    e.ctx->store = &failing_store;
    atomic_store(&fail_checkpoints, 1);
    atomic_store(&conflict_events, 0);
    json_object_put(sync_entity(&e, "contacts", NULL, INTEG_ESTORE));
    atomic_store(&fail_checkpoints, 0);
    CHECK(atomic_load(&conflict_events) == 0);
    CHECK_OK(integ_sync_logs(e.s, e.id, "{\"status\":\"error\"}", &out));
    json_object *logs = out ? json_tokener_parse(out) : NULL;
    integ_free(out);
    CHECK(logs && json_object_array_length(logs) == 1 &&
          jint(json_object_array_get_idx(logs, 0), "conflicts") == 0);
    json_object_put(logs);
    CHECK_OK(integ_conflicts_list(e.s, e.id, NULL, &out));
    CHECK(out && !strcmp(out, "[]"));
    integ_free(out);
    /* Found again, reported once. */
    json_object *r = sync_entity(&e, "contacts", NULL, INTEG_OK);
    CHECK(r && jint(r, "conflicts") == 1);
    json_object_put(r);
    CHECK(atomic_load(&conflict_events) == 1);
    e.ctx->store = real_store;
    integ_ctx_set_event_cb(e.ctx, NULL, NULL);
    env_close(&e);
    sandbox_stop(&sb);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_sandbox_sync SANDBOX_BINARY\n");
        return 2;
    }
    sandbox_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    RUN(test_all_systems);
    RUN(test_incremental_touch);
    RUN(test_fault_rate_limited);
    RUN(test_fault_server_errors);
    RUN(test_fault_truncated_json);
    RUN(test_fault_outage_then_resume);
    RUN(test_fault_unauthorized);
    RUN(test_fault_enforced_limits);
    RUN(test_prefetch_cancel_and_resume);
    RUN(test_writer_assumed_plan_meets_link);
    RUN(test_writer_read_plan_meets_link);
    RUN(test_writer_links_as_built);
    RUN(test_failure_keeps_paused_and_needs_reauth);
    RUN(test_unauthorized_after_new_credentials);
    RUN(test_failed_record_retried_incrementally);
    RUN(test_lease_lost_writer_page);
    RUN(test_lease_lost_tx_page);
    RUN(test_conflict_of_rolled_back_page);
    TEST_END();
}
