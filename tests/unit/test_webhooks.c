/* Webhook endpoints, receiving and the queue, end to end: deliveries are
 * signed here the way the providers sign them (HMAC-SHA256 with mbedTLS),
 * received, de-duplicated, processed into local entities (payload and
 * fetch modes, the latter against the sandbox's HubSpot), retried with
 * backoff, dead-lettered, replayed, and taken over after a worker dies.
 *
 *   test_webhooks SANDBOX_BINARY */
#include <json-c/json.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx.h"
#include "manifest.h"
#include "util.h"
#include "sandbox_proc.h"
#include "test.h"
#include "webhook_verify.h"

#define APP_SECRET "shpss_test_app_secret_123"
#define TOKEN SANDBOX_TOKEN

static const char *sandbox_bin;
static struct sandbox sb;

static int sandbox_start(void)
{
    const char *args[] = {"--records", "hubspot:contacts=50", "--unlimited", NULL};
    return sandbox_spawn(&sb, sandbox_bin, args);
}

/* ---- injected time ------------------------------------------------------------ */

static _Atomic int64_t fake_now = 1750000000000;
static int64_t fk_now(void *p) { (void)p; return fake_now; }
static void fk_sleep(void *p, int64_t ms) { (void)p; fake_now += ms; }
static uint32_t fk_rand(void *p) { (void)p; return 12345; }
static const ig_clock fake_clock = {fk_now, fk_sleep, fk_rand, NULL};

/* ---- events seen by the callback ------------------------------------------------ */

static char last_event[2048];
static int events_seen;
static void on_event(void *p, const char *json)
{
    (void)p;
    snprintf(last_event, sizeof last_event, "%s", json);
    events_seen++;
}

/* ---- fixtures ------------------------------------------------------------------- */

struct env {
    integ_ctx *ctx;
    integ_session *s;
    char shopify_id[64], hubspot_id[64], woo_id[64], outlook_id[64];
};

static char *create_integration(struct env *e, const char *req)
{
    char *out = NULL;
    if (integ_integration_create(e->s, req, &out) != INTEG_OK) {
        fprintf(stderr, "  create: %s\n", integ_errmsg());
        return NULL;
    }
    json_object *o = json_tokener_parse(out);
    char *id = strdup(json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    integ_free(out);
    return id;
}

static int env_open(struct env *e, const char *path, const char *hubspot_base)
{
    memset(e, 0, sizeof *e);
    char opts[1024];
    snprintf(opts, sizeof opts,
             "{\"store\":\"sqlite:%s\",\"master_key\":\"" TEST_MASTER_KEY "\","
             "\"http\":{\"allow_private_networks\":true,\"max_retries\":0,\"connect_timeout_ms\":2000},"
             "\"webhook\":{\"base_url\":\"https://app.example.com/hooks\",\"max_body_bytes\":65536},"
             "\"base_url_overrides\":{\"hubspot-crm\":\"%s\"}}",
             path, hubspot_base);
    if (integ_ctx_open(&e->ctx, opts) != INTEG_OK) {
        fprintf(stderr, "  open: %s\n", integ_errmsg());
        return -1;
    }
    ig_ctx_set_clock(e->ctx, &fake_clock);
    integ_ctx_set_event_cb(e->ctx, on_event, NULL);
    integ_session_open(&e->s, e->ctx, "acme", "alice", "[\"admin\"]");
    integ_definition_set_app_credentials(e->ctx, "hubspot-crm", "{\"client_id\":\"c\",\"client_secret\":\"" APP_SECRET "\"}");
    char *a = create_integration(e, "{\"integration_definition_id\":\"shopify-ecommerce\",\"credentials\":{\"api_key\":\"x\"},\"config\":{\"shop\":\"acme.myshopify.com\"}}");
    char *b = create_integration(e, "{\"integration_definition_id\":\"hubspot-crm\",\"credentials\":{\"api_key\":\"" TOKEN "\"}}");
    char *c = create_integration(e, "{\"integration_definition_id\":\"woocommerce-ecommerce\",\"credentials\":{\"consumer_key\":\"ck_x\",\"consumer_secret\":\"cs_x\"},\"config\":{\"site_url\":\"https://shop.example.com\"}}");
    char *d = create_integration(e, "{\"integration_definition_id\":\"outlook-email\",\"auth_type\":\"oauth2\",\"credentials\":{\"access_token\":\"t\"},\"config\":{\"tenant\":\"acme.onmicrosoft.com\",\"mailbox\":\"me\"}}");
    if (!a || !b || !c) {
        free(a), free(b), free(c), free(d);
        return -1;
    }
    snprintf(e->shopify_id, sizeof e->shopify_id, "%s", a);
    snprintf(e->hubspot_id, sizeof e->hubspot_id, "%s", b);
    snprintf(e->woo_id, sizeof e->woo_id, "%s", c);
    snprintf(e->outlook_id, sizeof e->outlook_id, "%s", d ? d : "");
    free(a), free(b), free(c), free(d);
    return 0;
}

static void env_close(struct env *e, const char *path)
{
    integ_session_close(e->s);
    integ_ctx_close(e->ctx);
    char p[128];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static json_object *make_endpoint(struct env *e, const char *integration_id, const char *req)
{
    char *out = NULL;
    if (integ_webhook_endpoint_create(e->s, integration_id, req, &out) != INTEG_OK) {
        fprintf(stderr, "  endpoint: %s\n", integ_errmsg());
        return NULL;
    }
    json_object *o = json_tokener_parse(out);
    integ_free(out);
    return o;
}

static const char *jstr(json_object *o, const char *k) { return json_object_get_string(json_object_object_get(o, k)); }

/* ---- signing the providers' way ---------------------------------------------------- */

static void hmac_b64(const char *key, const unsigned char *msg, size_t len, char *out, size_t cap)
{
    unsigned char mac[32];
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)key, strlen(key), msg, len, mac);
    sodium_bin2base64(out, cap, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
}

struct delivery {
    const char *names[8];
    const char *values[8];
    size_t n;
    char sig[128], ts[32];
};

static int receive(struct env *e, const char *endpoint, const char *url, struct delivery *d, const char *body,
                   char **out_body)
{
    int status = 0;
    char *ob = NULL;
    int rc = integ_webhook_receive(e->ctx, endpoint, "POST", url, d->names, d->values, d->n,
                                   (const unsigned char *)body, strlen(body), &status, &ob);
    CHECK_OK(rc);
    if (out_body)
        *out_body = ob;
    else
        integ_free(ob);
    return status;
}

static void shopify_delivery(struct delivery *d, const char *secret, const char *body, const char *topic, const char *id)
{
    memset(d, 0, sizeof *d);
    hmac_b64(secret, (const unsigned char *)body, strlen(body), d->sig, sizeof d->sig);
    d->names[0] = "X-Shopify-Hmac-Sha256";
    d->values[0] = d->sig;
    d->names[1] = "x-shopify-topic";
    d->values[1] = topic;
    d->names[2] = "X-Shopify-Webhook-Id";
    d->values[2] = id;
    d->names[3] = "Content-Type";
    d->values[3] = "application/json";
    d->n = 4;
}

static void hubspot_delivery(struct delivery *d, const char *url, const char *body)
{
    memset(d, 0, sizeof *d);
    snprintf(d->ts, sizeof d->ts, "%lld", (long long)fake_now);
    size_t n = strlen("POST") + strlen(url) + strlen(body) + strlen(d->ts);
    char *msg = malloc(n + 1);
    snprintf(msg, n + 1, "POST%s%s%s", url, body, d->ts);
    hmac_b64(APP_SECRET, (unsigned char *)msg, n, d->sig, sizeof d->sig);
    free(msg);
    d->names[0] = "X-HubSpot-Signature-v3";
    d->values[0] = d->sig;
    d->names[1] = "X-HubSpot-Request-Timestamp";
    d->values[1] = d->ts;
    d->names[2] = "Content-Type";
    d->values[2] = "application/json";
    d->n = 3;
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

static json_object *process(struct env *e)
{
    char *out = NULL;
    CHECK_OK(integ_webhook_process(e->ctx, 100, &out));
    json_object *o = out ? json_tokener_parse(out) : NULL;
    integ_free(out);
    return o;
}

static int64_t jint(json_object *o, const char *k) { return json_object_get_int64(json_object_object_get(o, k)); }

/* ---- tests ---------------------------------------------------------------------- */

static char dbpath[64];

static void test_endpoints(void)
{
    struct env e;
    if (env_open(&e, dbpath, "http://127.0.0.1:9")) {
        CHECK(!"env_open");
        return;
    }
    char *out = NULL;
    /* Shopify dictates the secret (the app's): none given and no app credentials. */
    CHECK_RC(integ_webhook_endpoint_create(e.s, e.shopify_id, NULL, &out), INTEG_EINVAL);
    CHECK_MSG("request_json.secret");
    json_object *ep = make_endpoint(&e, e.shopify_id, "{\"secret\":\"" APP_SECRET "\",\"events\":[\"customers/*\"]}");
    CHECK(ep && strlen(jstr(ep, "id")) == 32);
    CHECK(ep && !strncmp(jstr(ep, "url"), "https://app.example.com/hooks/", 30));
    CHECK_STR(jstr(ep, "scheme"), "shopify");
    /* WooCommerce: we generate it, shown once. */
    json_object *woo = make_endpoint(&e, e.woo_id, NULL);
    CHECK(woo && !strncmp(jstr(woo, "secret"), "whsec_", 6));
    CHECK_OK(integ_webhook_endpoints_list(e.s, e.woo_id, &out));
    CHECK(!strstr(out, "whsec_") && !strstr(out, "sealed") && strstr(out, jstr(woo, "id")));
    integ_free(out);
    /* Bad input. */
    CHECK_RC(integ_webhook_endpoint_create(e.s, e.woo_id, "{\"scheme\":\"hmac\"}", &out), INTEG_EINVAL);
    CHECK_MSG("request_json.scheme");
    CHECK_RC(integ_webhook_endpoint_create(e.s, e.woo_id, "{\"events\":\"all\"}", &out), INTEG_EINVAL);
    CHECK_MSG("request_json.events");
    CHECK_RC(integ_webhook_endpoint_create(e.s, e.woo_id, "{\"colour\":1}", &out), INTEG_EINVAL);
    CHECK_RC(integ_webhook_endpoint_create(e.s, e.woo_id, "{", &out), INTEG_EINVAL);
    /* Tenancy and permissions. */
    integ_session *other = NULL, *viewer = NULL;
    integ_session_open(&other, e.ctx, "other", "mallory", "[\"admin\"]");
    integ_session_open(&viewer, e.ctx, "acme", "victor", NULL);
    CHECK_RC(integ_webhook_endpoint_create(other, e.woo_id, NULL, &out), INTEG_ENOTFOUND);
    CHECK_RC(integ_webhook_endpoints_list(other, e.woo_id, &out), INTEG_ENOTFOUND);
    CHECK_RC(integ_webhook_endpoint_update(other, jstr(woo, "id"), "{\"active\":false}", &out), INTEG_ENOTFOUND);
    CHECK_RC(integ_webhook_endpoint_rotate_secret(other, jstr(woo, "id"), &out), INTEG_ENOTFOUND);
    CHECK_RC(integ_webhook_endpoint_delete(other, jstr(woo, "id")), INTEG_ENOTFOUND);
    CHECK_RC(integ_webhook_endpoint_create(viewer, e.woo_id, NULL, &out), INTEG_EPERM);
    CHECK_RC(integ_webhook_endpoint_rotate_secret(viewer, jstr(woo, "id"), &out), INTEG_EPERM);
    CHECK_OK(integ_webhook_events_list(other, NULL, &out));
    CHECK_STR(out, "[]");
    integ_free(out);
    integ_session_close(other);
    integ_session_close(viewer);
    /* Shopify's secret is dictated: rotation goes through update. */
    CHECK_RC(integ_webhook_endpoint_rotate_secret(e.s, jstr(ep, "id"), &out), INTEG_EINVAL);
    CHECK_MSG("dictated");
    CHECK_OK(integ_webhook_endpoint_update(e.s, jstr(ep, "id"), "{\"events\":[\"orders/*\"],\"description\":\"orders only\"}", &out));
    CHECK(strstr(out, "orders only") != NULL);
    integ_free(out);
    CHECK_OK(integ_webhook_endpoint_delete(e.s, jstr(woo, "id")));
    CHECK_RC(integ_webhook_endpoint_delete(e.s, jstr(woo, "id")), INTEG_ENOTFOUND);
    json_object_put(ep);
    json_object_put(woo);
    env_close(&e, dbpath);
}

static void test_receive(void)
{
    struct env e;
    if (env_open(&e, dbpath, "http://127.0.0.1:9")) {
        CHECK(!"env_open");
        return;
    }
    json_object *ep = make_endpoint(&e, e.shopify_id, "{\"secret\":\"" APP_SECRET "\",\"events\":[\"customers/*\"]}");
    if (!ep)
        return;
    const char *id = jstr(ep, "id");
    const char *body = "{\"id\":7001,\"email\":\" Ann@Example.com \",\"first_name\":\"Ann\",\"last_name\":\"Lee\","
                       "\"updated_at\":\"2024-05-02T08:11:00-04:00\"}";
    struct delivery d;
    char *ob = NULL;
    /* Unknown and inactive endpoints: the same 404. */
    shopify_delivery(&d, APP_SECRET, body, "customers/update", "wh-1");
    CHECK(receive(&e, "00000000000000000000000000000000", "/hooks/x", &d, body, &ob) == 404);
    char unknown_body[128];
    snprintf(unknown_body, sizeof unknown_body, "%s", ob);
    integ_free(ob);
    CHECK(receive(&e, "../etc/passwd", "/hooks/x", &d, body, NULL) == 404);
    /* Too big. */
    char *big = malloc(70000);
    memset(big, 'a', 69999);
    big[69999] = 0;
    CHECK(receive(&e, id, "/hooks/x", &d, big, NULL) == 413);
    free(big);
    /* Bad signatures never queue. */
    shopify_delivery(&d, "wrong-secret", body, "customers/update", "wh-1");
    CHECK(receive(&e, id, "/hooks/x", &d, body, NULL) == 401);
    CHECK_MSG("X-Shopify-Hmac-Sha256");
    shopify_delivery(&d, APP_SECRET, body, "customers/update", "wh-1");
    d.n = 1; /* topic header kept, signature header first: drop the rest */
    d.names[0] = "X-Other";
    CHECK(receive(&e, id, "/hooks/x", &d, body, NULL) == 401);
    CHECK(count_events(&e, NULL) == 0);
    /* The real one, ten times: queued once. */
    shopify_delivery(&d, APP_SECRET, body, "customers/update", "wh-1");
    CHECK(receive(&e, id, "/hooks/x", &d, body, &ob) == 202);
    CHECK(ob && strstr(ob, "accepted"));
    integ_free(ob);
    for (int i = 0; i < 9; i++)
        CHECK(receive(&e, id, "/hooks/x", &d, body, NULL) == 200);
    CHECK(count_events(&e, NULL) == 1);
    /* Unsubscribed event types are acknowledged and dropped. */
    shopify_delivery(&d, APP_SECRET, body, "orders/create", "wh-2");
    CHECK(receive(&e, id, "/hooks/x", &d, body, &ob) == 200);
    CHECK(ob && strstr(ob, "ignored"));
    integ_free(ob);
    CHECK(count_events(&e, NULL) == 1);
    /* Inactive: 404, the same body as unknown. */
    char *out = NULL;
    CHECK_OK(integ_webhook_endpoint_update(e.s, id, "{\"active\":false}", &out));
    integ_free(out);
    shopify_delivery(&d, APP_SECRET, body, "customers/update", "wh-3");
    CHECK(receive(&e, id, "/hooks/x", &d, body, &ob) == 404);
    CHECK_STR(ob, unknown_body);
    integ_free(ob);
    /* Handshakes. */
    json_object *woo = make_endpoint(&e, e.woo_id, NULL);
    struct delivery none = {0};
    CHECK(receive(&e, jstr(woo, "id"), "/hooks/w", &none, "webhook_id=42", &ob) == 200);
    integ_free(ob);
    CHECK(receive(&e, jstr(woo, "id"), "/hooks/w", &none, "webhook_id=42x", NULL) == 401);
    if (e.outlook_id[0]) {
        json_object *g = make_endpoint(&e, e.outlook_id, NULL);
        CHECK(g != NULL);
        if (g) {
            CHECK(receive(&e, jstr(g, "id"), "https://app.example.com/hooks/g?validationToken=Validation%3A%20Testing%20client%20application", &none, "", &ob) == 200);
            CHECK_STR(ob, "Validation: Testing client application");
            integ_free(ob);
            /* A notification must carry our clientState. */
            CHECK(receive(&e, jstr(g, "id"), "/hooks/g", &none, "{\"value\":[{\"clientState\":\"nope\",\"changeType\":\"created\"}]}", NULL) == 401);
            json_object_put(g);
        }
    }
    json_object_put(woo);
    json_object_put(ep);
    env_close(&e, dbpath);
}

static void test_process_payload_and_delete(void)
{
    struct env e;
    if (env_open(&e, dbpath, "http://127.0.0.1:9")) {
        CHECK(!"env_open");
        return;
    }
    json_object *ep = make_endpoint(&e, e.shopify_id, "{\"secret\":\"" APP_SECRET "\"}");
    if (!ep)
        return;
    const char *id = jstr(ep, "id");
    const char *body = "{\"id\":7001,\"email\":\" Ann@Example.com \",\"first_name\":\"Ann\",\"last_name\":\"Lee\","
                       "\"updated_at\":\"2024-05-02T08:11:00-04:00\"}";
    struct delivery d;
    shopify_delivery(&d, APP_SECRET, body, "customers/update", "wh-10");
    CHECK(receive(&e, id, "/hooks/x", &d, body, NULL) == 202);
    json_object *r = process(&e);
    CHECK(r && jint(r, "processed") == 1 && jint(r, "failed") == 0);
    json_object_put(r);
    char *out = NULL;
    CHECK_OK(integ_entities_list(e.s, "contacts", NULL, &out));
    json_object *l = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(l) == 1);
    json_object *c0 = json_object_array_get_idx(l, 0);
    CHECK(strstr(json_object_to_json_string(c0), "Ann") != NULL);
    char local_id[64];
    snprintf(local_id, sizeof local_id, "%s", jstr(c0, "id"));
    json_object_put(l);
    CHECK(count_events(&e, "{\"status\":\"processed\"}") == 1);
    /* Nothing left to do. */
    r = process(&e);
    CHECK(r && jint(r, "claimed") == 0);
    json_object_put(r);
    /* The sync log records the webhook. */
    CHECK_OK(integ_sync_logs(e.s, e.shopify_id, NULL, &out));
    CHECK(strstr(out, "\"trigger\":\"webhook\"") != NULL);
    integ_free(out);
    /* A remote deletion soft-deletes the linked local record. */
    const char *del = "{\"id\":7001}";
    shopify_delivery(&d, APP_SECRET, del, "customers/delete", "wh-11");
    CHECK(receive(&e, id, "/hooks/x", &d, del, NULL) == 202);
    json_object_put(process(&e));
    CHECK_OK(integ_entity_get(e.s, "contacts", local_id, &out));
    CHECK(strstr(out, "\"deleted\":true") != NULL);
    integ_free(out);
    json_object_put(ep);
    env_close(&e, dbpath);
}

static void test_process_fetch_mode(void)
{
    char base[200];
    snprintf(base, sizeof base, "%s/hubspot", sb.url);
    struct env e;
    if (env_open(&e, dbpath, base)) {
        CHECK(!"env_open");
        return;
    }
    json_object *ep = make_endpoint(&e, e.hubspot_id, NULL); /* the app secret from the app credentials */
    if (!ep)
        return;
    char url[256];
    snprintf(url, sizeof url, "https://app.example.com/hooks/%s", jstr(ep, "id"));
    /* HubSpot batches: two events for contacts that exist in the sandbox. */
    char *out = NULL;
    const char *body = "[{\"eventId\":101,\"subscriptionType\":\"contact.propertyChange\",\"objectId\":1001},"
                       "{\"eventId\":102,\"subscriptionType\":\"contact.creation\",\"objectId\":1002}]";
    struct delivery d;
    hubspot_delivery(&d, url, body);
    CHECK(receive(&e, jstr(ep, "id"), url, &d, body, NULL) == 202);
    /* Stale timestamp: a replay outside the window. */
    fake_now += 600000;
    CHECK(receive(&e, jstr(ep, "id"), url, &d, body, NULL) == 401);
    CHECK_MSG("Timestamp");
    json_object *r = process(&e);
    if (!r || jint(r, "processed") != 1)
        fprintf(stderr, "  process: %s\n", r ? json_object_to_json_string(r) : "-");
    CHECK(r && jint(r, "processed") == 1);
    json_object_put(r);
    CHECK_OK(integ_entities_list(e.s, "contacts", NULL, &out));
    json_object *l = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(l) == 2);
    json_object_put(l);
    /* The app's secret rotates: endpoints follow the app credentials. */
    CHECK_OK(integ_definition_set_app_credentials(e.ctx, "hubspot-crm", "{\"client_id\":\"c\",\"client_secret\":\"rotated-app-secret\"}"));
    const char *b2 = "[{\"eventId\":103,\"subscriptionType\":\"contact.propertyChange\",\"objectId\":1001}]";
    hubspot_delivery(&d, url, b2); /* signed with the old APP_SECRET */
    CHECK(receive(&e, jstr(ep, "id"), url, &d, b2, NULL) == 401);
    json_object_put(ep);
    env_close(&e, dbpath);
}

/* Standard Webhooks: the svix-* headers are what is verified, so an added
 * unsigned webhook-id cannot make the same delivery new. */
static void test_standard_dedup(void)
{
    struct env e;
    if (env_open(&e, dbpath, "http://127.0.0.1:9")) {
        CHECK(!"env_open");
        return;
    }
    json_object *ep = make_endpoint(&e, e.woo_id, "{\"scheme\":\"standard\"}");
    if (!ep)
        return;
    const char *secret = jstr(ep, "secret");
    unsigned char key[64];
    size_t klen = 0;
    CHECK(sodium_base642bin(key, sizeof key, secret + 6, strlen(secret + 6), NULL, &klen, NULL,
                            sodium_base64_VARIANT_ORIGINAL) == 0);
    const char *body = "{\"type\":\"customer.updated\",\"data\":{\"id\":5}}";
    char ts[32], msg[512], sig[160], mac_b64[64];
    unsigned char mac[32];
    snprintf(ts, sizeof ts, "%lld", (long long)(fake_now / 1000));
    int n = snprintf(msg, sizeof msg, "msg_1.%s.%s", ts, body);
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, klen, (unsigned char *)msg, (size_t)n, mac);
    sodium_bin2base64(mac_b64, sizeof mac_b64, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    snprintf(sig, sizeof sig, "v1,%s", mac_b64);
    struct delivery d = {{"svix-id", "svix-timestamp", "svix-signature", "webhook-id"}, {"msg_1", ts, sig, "forged-1"}, 3, "", ""};
    CHECK(receive(&e, jstr(ep, "id"), "/h", &d, body, NULL) == 202);
    d.n = 4;
    CHECK(receive(&e, jstr(ep, "id"), "/h", &d, body, NULL) == 200);
    d.values[3] = "forged-2";
    CHECK(receive(&e, jstr(ep, "id"), "/h", &d, body, NULL) == 200);
    CHECK(count_events(&e, NULL) == 1);
    json_object_put(ep);
    env_close(&e, dbpath);
}

static void test_retry_dead_replay(void)
{
    struct env e;
    if (env_open(&e, dbpath, "http://127.0.0.1:9")) { /* the fetch can never succeed */
        CHECK(!"env_open");
        return;
    }
    json_object *ep = make_endpoint(&e, e.hubspot_id, NULL);
    if (!ep)
        return;
    char url[256];
    snprintf(url, sizeof url, "https://app.example.com/hooks/%s", jstr(ep, "id"));
    const char *body = "[{\"eventId\":201,\"subscriptionType\":\"contact.propertyChange\",\"objectId\":9}]";
    struct delivery d;
    hubspot_delivery(&d, url, body);
    CHECK(receive(&e, jstr(ep, "id"), url, &d, body, NULL) == 202);
    events_seen = 0;
    int dead = 0;
    for (int attempt = 1; attempt <= 8; attempt++) {
        json_object *r = process(&e);
        CHECK(r && jint(r, "claimed") == 1 && jint(r, "failed") == 1);
        dead = r ? (int)jint(r, "dead") : 0;
        json_object_put(r);
        /* Not due again before its backoff has passed. */
        r = process(&e);
        CHECK(r && jint(r, "claimed") == 0);
        json_object_put(r);
        fake_now += 3600001;
    }
    CHECK(dead == 1);
    CHECK(count_events(&e, "{\"status\":\"dead\"}") == 1);
    CHECK(events_seen == 1 && strstr(last_event, "\"type\":\"webhook.dead\""));
    CHECK(strstr(last_event, "127.0.0.1") != NULL); /* the last error says why */
    char *out = NULL;
    CHECK_OK(integ_webhook_events_list(e.s, "{\"status\":\"dead\"}", &out));
    json_object *l = json_tokener_parse(out);
    integ_free(out);
    char evid[64];
    snprintf(evid, sizeof evid, "%s", jstr(json_object_array_get_idx(l, 0), "id"));
    CHECK(json_object_get_int(json_object_object_get(json_object_array_get_idx(l, 0), "attempts")) == 8);
    json_object_put(l);
    integ_session *viewer = NULL;
    integ_session_open(&viewer, e.ctx, "acme", "victor", NULL);
    CHECK_RC(integ_webhook_event_replay(viewer, evid), INTEG_EPERM);
    integ_session_close(viewer);
    CHECK_OK(integ_webhook_event_replay(e.s, evid));
    CHECK(count_events(&e, "{\"status\":\"queued\"}") == 1);
    CHECK_RC(integ_webhook_event_replay(e.s, evid), INTEG_ECONFLICT);
    CHECK_RC(integ_webhook_event_replay(e.s, "nope"), INTEG_ENOTFOUND);
    CHECK_RC(integ_webhook_events_list(e.s, "{\"status\":\"lost\"}", &out), INTEG_EINVAL);
    json_object_put(ep);
    env_close(&e, dbpath);
}

/* A worker dies mid-batch: its leased events are processed by another once
 * the lease expires, exactly once. */
static int die_in_fetch(void *p, const integ_adapter_call *call, const char *entity, const char *id,
                        integ_reply_cb reply, void *rp)
{
    (void)p, (void)call, (void)entity, (void)id, (void)reply, (void)rp;
    raise(SIGKILL);
    return 0;
}

static const integ_adapter killer = {INTEG_ADAPTER_VERSION, NULL, NULL, die_in_fetch, NULL, NULL, NULL, NULL, NULL};

static void test_worker_dies(void)
{
    char base[200];
    snprintf(base, sizeof base, "%s/hubspot", sb.url);
    struct env e;
    if (env_open(&e, dbpath, base)) {
        CHECK(!"env_open");
        return;
    }
    json_object *ep = make_endpoint(&e, e.hubspot_id, NULL);
    if (!ep)
        return;
    char url[256];
    snprintf(url, sizeof url, "https://app.example.com/hooks/%s", jstr(ep, "id"));
    for (int i = 0; i < 3; i++) {
        char body[160];
        snprintf(body, sizeof body, "[{\"eventId\":%d,\"subscriptionType\":\"contact.propertyChange\",\"objectId\":%d}]", 300 + i, 1003 + i);
        struct delivery d;
        hubspot_delivery(&d, url, body);
        CHECK(receive(&e, jstr(ep, "id"), url, &d, body, NULL) == 202);
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* A process of its own: never use the parent's SQLite connections. */
        char opts[512];
        integ_ctx *mine = NULL;
        snprintf(opts, sizeof opts, "{\"store\":\"sqlite:%s\",\"master_key\":\"" TEST_MASTER_KEY "\"}", dbpath);
        if (integ_ctx_open(&mine, opts) != INTEG_OK)
            _exit(4);
        ig_ctx_set_clock(mine, &fake_clock);
        integ_adapter_register(mine, "hubspot-crm", &killer, NULL);
        char *out = NULL;
        integ_webhook_process(mine, 10, &out);
        _exit(3);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    CHECK(count_events(&e, "{\"status\":\"processing\"}") == 3);
    json_object *r = process(&e);
    CHECK(r && jint(r, "claimed") == 0); /* still leased */
    json_object_put(r);
    fake_now += 61000;
    r = process(&e);
    CHECK(r && jint(r, "claimed") == 3 && jint(r, "processed") == 3);
    json_object_put(r);
    CHECK(count_events(&e, "{\"status\":\"processed\"}") == 3);
    char *out = NULL;
    CHECK_OK(integ_entities_list(e.s, "contacts", NULL, &out));
    json_object *l = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(l) == 3);
    json_object_put(l);
    json_object_put(ep);
    env_close(&e, dbpath);
}

static void test_rotation_grace(void)
{
    struct env e;
    if (env_open(&e, dbpath, "http://127.0.0.1:9")) {
        CHECK(!"env_open");
        return;
    }
    json_object *ep = make_endpoint(&e, e.shopify_id, "{\"secret\":\"old-secret\",\"scheme\":\"shopify\"}");
    if (!ep)
        return;
    const char *id = jstr(ep, "id");
    char *out = NULL;
    CHECK_OK(integ_webhook_endpoint_update(e.s, id, "{\"secret\":\"new-secret\"}", &out));
    CHECK(strstr(out, "\"has_previous_secret\":true") && !strstr(out, "new-secret"));
    integ_free(out);
    const char *body = "{\"id\":1}";
    struct delivery d;
    shopify_delivery(&d, "old-secret", body, "customers/update", "r-1");
    CHECK(receive(&e, id, "/h", &d, body, NULL) == 202);
    shopify_delivery(&d, "new-secret", body, "customers/update", "r-2");
    CHECK(receive(&e, id, "/h", &d, body, NULL) == 202);
    fake_now += 86400001;
    shopify_delivery(&d, "old-secret", body, "customers/update", "r-3");
    CHECK(receive(&e, id, "/h", &d, body, NULL) == 401);
    shopify_delivery(&d, "new-secret", body, "customers/update", "r-4");
    CHECK(receive(&e, id, "/h", &d, body, NULL) == 202);
    json_object_put(ep);
    env_close(&e, dbpath);
}

/* ---- endpoints without a secret: only one the sender can sign with ------------------ */

/* A delivery signed the way a scheme's sender signs it. */
struct signed_req {
    const char *names[6];
    const char *values[6];
    size_t n;
    char url[256], body[512], h[3][512];
};

static void add_header(struct signed_req *r, const char *name, const char *value)
{
    r->names[r->n] = name;
    r->values[r->n++] = value;
}

static void mac_of(mbedtls_md_type_t t, const void *key, size_t klen, const char *msg, unsigned char *mac)
{
    mbedtls_md_hmac(mbedtls_md_info_from_type(t), key, klen, (const unsigned char *)msg, strlen(msg), mac);
}

static void hash_of(const char *msg, unsigned char *out)
{
    mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)msg, strlen(msg), out);
}

/* Sign r->body (posted to r->url) for `scheme` with the shared `secret`, as
 * the provider does. -1 for the schemes whose sender signs with a private
 * key (standard-ed25519, sendgrid): no secret a receiver holds signs those. */
static int sign_as_provider(const char *scheme, const char *secret, struct signed_req *r)
{
    unsigned char mac[64];
    char hexs[129], b64[256], msg[2048], ts[32];
    snprintf(ts, sizeof ts, "%lld", (long long)(fake_now / 1000));
    r->n = 0;
    if (!strcmp(scheme, "standard")) {
        const char *k = strncmp(secret, "whsec_", 6) ? secret : secret + 6;
        unsigned char key[256];
        size_t klen = 0;
        if (sodium_base642bin(key, sizeof key, k, strlen(k), NULL, &klen, NULL, sodium_base64_VARIANT_ORIGINAL))
            return -1;
        snprintf(msg, sizeof msg, "msg_rt.%s.%s", ts, r->body);
        mac_of(MBEDTLS_MD_SHA256, key, klen, msg, mac);
        sodium_bin2base64(b64, sizeof b64, mac, 32, sodium_base64_VARIANT_ORIGINAL);
        snprintf(r->h[0], sizeof r->h[0], "%s", ts);
        snprintf(r->h[1], sizeof r->h[1], "v1,%s", b64);
        add_header(r, "webhook-id", "msg_rt");
        add_header(r, "webhook-timestamp", r->h[0]);
        add_header(r, "webhook-signature", r->h[1]);
    } else if (!strcmp(scheme, "github") || !strcmp(scheme, "github-sha1")) {
        int sha1 = !strcmp(scheme, "github-sha1");
        mac_of(sha1 ? MBEDTLS_MD_SHA1 : MBEDTLS_MD_SHA256, secret, strlen(secret), r->body, mac);
        sodium_bin2hex(hexs, sizeof hexs, mac, sha1 ? 20 : 32);
        snprintf(r->h[0], sizeof r->h[0], "%s=%s", sha1 ? "sha1" : "sha256", hexs);
        add_header(r, sha1 ? "X-Hub-Signature" : "X-Hub-Signature-256", r->h[0]);
    } else if (!strcmp(scheme, "slack")) {
        snprintf(msg, sizeof msg, "v0:%s:%s", ts, r->body);
        mac_of(MBEDTLS_MD_SHA256, secret, strlen(secret), msg, mac);
        sodium_bin2hex(hexs, sizeof hexs, mac, 32);
        snprintf(r->h[0], sizeof r->h[0], "%s", ts);
        snprintf(r->h[1], sizeof r->h[1], "v0=%s", hexs);
        add_header(r, "X-Slack-Request-Timestamp", r->h[0]);
        add_header(r, "X-Slack-Signature", r->h[1]);
    } else if (!strcmp(scheme, "stripe")) {
        snprintf(msg, sizeof msg, "%s.%s", ts, r->body);
        mac_of(MBEDTLS_MD_SHA256, secret, strlen(secret), msg, mac);
        sodium_bin2hex(hexs, sizeof hexs, mac, 32);
        snprintf(r->h[0], sizeof r->h[0], "t=%s,v1=%s", ts, hexs);
        add_header(r, "Stripe-Signature", r->h[0]);
    } else if (!strcmp(scheme, "shopify") || !strcmp(scheme, "woocommerce")) {
        mac_of(MBEDTLS_MD_SHA256, secret, strlen(secret), r->body, mac);
        sodium_bin2base64(r->h[0], sizeof r->h[0], mac, 32, sodium_base64_VARIANT_ORIGINAL);
        add_header(r, !strcmp(scheme, "shopify") ? "X-Shopify-Hmac-Sha256" : "X-WC-Webhook-Signature", r->h[0]);
    } else if (!strcmp(scheme, "hubspot-v1") || !strcmp(scheme, "hubspot-v2")) {
        snprintf(msg, sizeof msg, "%s%s%s%s", secret, !strcmp(scheme, "hubspot-v2") ? "POST" : "",
                 !strcmp(scheme, "hubspot-v2") ? r->url : "", r->body);
        hash_of(msg, mac);
        sodium_bin2hex(r->h[0], sizeof r->h[0], mac, 32);
        add_header(r, "X-HubSpot-Signature", r->h[0]);
    } else if (!strcmp(scheme, "hubspot-v3")) {
        snprintf(r->h[0], sizeof r->h[0], "%lld", (long long)fake_now);
        snprintf(msg, sizeof msg, "POST%s%s%s", r->url, r->body, r->h[0]);
        mac_of(MBEDTLS_MD_SHA256, secret, strlen(secret), msg, mac);
        sodium_bin2base64(r->h[1], sizeof r->h[1], mac, 32, sodium_base64_VARIANT_ORIGINAL);
        add_header(r, "X-HubSpot-Request-Timestamp", r->h[0]);
        add_header(r, "X-HubSpot-Signature-v3", r->h[1]);
    } else if (!strcmp(scheme, "twilio")) {
        snprintf(r->body, sizeof r->body, "From=%%2B15550001&Body=hello");
        snprintf(msg, sizeof msg, "%sBodyhelloFrom+15550001", r->url); /* names sorted, values decoded */
        mac_of(MBEDTLS_MD_SHA1, secret, strlen(secret), msg, mac);
        sodium_bin2base64(r->h[0], sizeof r->h[0], mac, 20, sodium_base64_VARIANT_ORIGINAL);
        add_header(r, "X-Twilio-Signature", r->h[0]);
        add_header(r, "Content-Type", "application/x-www-form-urlencoded");
    } else if (!strcmp(scheme, "basic")) {
        sodium_bin2base64(b64, sizeof b64, (const unsigned char *)secret, strlen(secret), sodium_base64_VARIANT_ORIGINAL);
        snprintf(r->h[0], sizeof r->h[0], "Basic %s", b64);
        add_header(r, "Authorization", r->h[0]);
    } else if (!strcmp(scheme, "msgraph")) {
        snprintf(r->body, sizeof r->body,
                 "{\"value\":[{\"clientState\":\"%s\",\"changeType\":\"updated\",\"resourceData\":{\"id\":\"m1\"}}]}",
                 secret);
        add_header(r, "Content-Type", "application/json");
    } else {
        return -1;
    }
    return 0;
}

/* Every scheme of the table, named without a secret on integrations of each
 * secret source: either the endpoint gets a secret from a source the scheme
 * verifies with, and a delivery its sender signs with that secret is
 * accepted, or the call is INTEG_EINVAL naming request_json.secret. Naming
 * the manifest's own scheme keeps the manifest's source (the app's secret,
 * Basic credentials, a clientState); another scheme gets a generated secret
 * where the table says it verifies with one, and is refused otherwise. */
static void test_no_secret_every_scheme(void)
{
    struct env e;
    if (env_open(&e, dbpath, "http://127.0.0.1:9")) {
        CHECK(!"env_open");
        return;
    }
    char *pd = create_integration(&e, "{\"integration_definition_id\":\"pipedrive-crm\",\"credentials\":{\"api_key\":\"x\"}}");
    CHECK(pd != NULL);
    struct {
        const char *id, *scheme, *source, *app_secret; /* the manifest's; the app's secret, if set */
    } integ[] = {{e.woo_id, "woocommerce", "generated", NULL},
                 {e.shopify_id, "shopify", "app_secret", NULL},
                 {e.hubspot_id, "hubspot-v3", "app_secret", APP_SECRET},
                 {e.outlook_id, "msgraph", "client_state", NULL},
                 {pd ? pd : "", "basic", "basic_auth", NULL}};
    char schemes[512];
    snprintf(schemes, sizeof schemes, "%s", ig_wh_scheme_list());
    int n_schemes = 0, n_refused = 0, n_verified = 0;
    for (char *save = NULL, *scheme = strtok_r(schemes, ", ", &save); scheme; scheme = strtok_r(NULL, ", ", &save)) {
        n_schemes++;
        /* The verifier's schemes and the manifest's scheme table agree. */
        CHECK(ig_manifest_scheme_accepts(scheme, "generated") || ig_manifest_scheme_accepts(scheme, "app_secret") ||
              ig_manifest_scheme_accepts(scheme, "public_key") || ig_manifest_scheme_accepts(scheme, "basic_auth") ||
              ig_manifest_scheme_accepts(scheme, "client_state"));
        for (size_t i = 0; i < sizeof integ / sizeof *integ; i++) {
            char req[128], *out = NULL;
            snprintf(req, sizeof req, "{\"scheme\":\"%s\"}", scheme);
            int rc = integ_webhook_endpoint_create(e.s, integ[i].id, req, &out);
            if (rc != INTEG_OK) {
                if (rc != INTEG_EINVAL || !strstr(integ_errmsg(), "request_json.secret"))
                    fprintf(stderr, "  %s on %s: rc %d: %s\n", scheme, integ[i].scheme, rc, integ_errmsg());
                CHECK_RC(rc, INTEG_EINVAL);
                CHECK_MSG("request_json.secret");
                CHECK(out == NULL);
                /* Refused only where another scheme takes no generated secret,
                 * or the manifest's own has none to give (no app credentials). */
                int own = !strcmp(scheme, integ[i].scheme);
                CHECK(own ? !strcmp(integ[i].source, "app_secret") && !integ[i].app_secret
                          : !ig_manifest_scheme_accepts(scheme, "generated"));
                n_refused++;
                continue;
            }
            json_object *ep = json_tokener_parse(out);
            integ_free(out);
            const char *src = jstr(ep, "secret_source"), *secret = jstr(ep, "secret");
            int ok = 1;
            /* The manifest's own scheme keeps its source; another gets a generated secret. */
            const char *want = !strcmp(scheme, integ[i].scheme) ? integ[i].source : "generated";
            if (!src || !ig_manifest_scheme_accepts(scheme, src) || strcmp(src, want)) {
                fprintf(stderr, "  %s on %s: secret_source %s\n", scheme, integ[i].scheme, src ? src : "(none)");
                ok = 0;
            }
            if (src && !strcmp(src, "app_secret")) {
                CHECK(secret == NULL); /* the platform's secret is never shown */
                secret = integ[i].app_secret;
            }
            struct signed_req r;
            memset(&r, 0, sizeof r);
            snprintf(r.url, sizeof r.url, "%s", jstr(ep, "url"));
            snprintf(r.body, sizeof r.body, "[{\"eventId\":%d,\"subscriptionType\":\"contact.creation\",\"objectId\":%d}]",
                     n_schemes * 10 + (int)i, n_schemes * 10 + (int)i);
            if (!secret || sign_as_provider(scheme, secret, &r)) {
                fprintf(stderr, "  %s on %s: no sender can sign with secret '%.12s...'\n", scheme, integ[i].scheme,
                        secret ? secret : "(none)");
                ok = 0;
            } else {
                int status = 0;
                char *ob = NULL;
                CHECK_OK(integ_webhook_receive(e.ctx, jstr(ep, "id"), "POST", r.url, r.names, r.values, r.n,
                                               (const unsigned char *)r.body, strlen(r.body), &status, &ob));
                if (status != 202) {
                    fprintf(stderr, "  %s on %s: a delivery signed with its secret: %d (%s)\n", scheme,
                            integ[i].scheme, status, integ_errmsg());
                    ok = 0;
                }
                integ_free(ob);
            }
            CHECK(ok);
            n_verified += ok;
            json_object_put(ep);
        }
    }
    CHECK(n_schemes == 15);
    CHECK(n_refused > 0 && n_verified > 0 && n_refused + n_verified == n_schemes * 5);
    free(pd);
    env_close(&e, dbpath);
}

static int rng(void *p, unsigned char *out, size_t n)
{
    (void)p;
    randombytes_buf(out, n);
    return 0;
}

/* basic, standard-ed25519 and sendgrid verify with what the sender holds
 * (its Basic credentials, its public keys): an endpoint naming them needs
 * the secret, and with it receives what the sender signs. */
static void test_no_secret_provider_keys(void)
{
    struct env e;
    if (env_open(&e, dbpath, "http://127.0.0.1:9")) {
        CHECK(!"env_open");
        return;
    }
    char *out = NULL;
    static const char *const need[] = {"basic", "standard-ed25519", "sendgrid"};
    for (size_t i = 0; i < 3; i++) {
        char req[128], msg[160];
        snprintf(req, sizeof req, "{\"scheme\":\"%s\",\"description\":\"no secret\"}", need[i]);
        CHECK_RC(integ_webhook_endpoint_create(e.s, e.woo_id, req, &out), INTEG_EINVAL);
        CHECK(out == NULL);
        integ_free(out);
        out = NULL;
        snprintf(msg, sizeof msg, "request_json.secret: required for scheme '%s'", need[i]);
        CHECK_MSG(msg);
    }
    CHECK(count_events(&e, NULL) == 0);
    char list_out[8];
    CHECK_OK(integ_webhook_endpoints_list(e.s, e.woo_id, &out)); /* nothing half made */
    snprintf(list_out, sizeof list_out, "%s", out);
    CHECK_STR(list_out, "[]");
    integ_free(out);

    const char *body = "{\"id\":42,\"event\":\"delivered\"}";
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", (long long)(fake_now / 1000));

    /* basic: the credentials the sender is configured with. */
    json_object *ep = make_endpoint(&e, e.woo_id, "{\"scheme\":\"basic\",\"secret\":\"sender:pa ss:word\"}");
    CHECK(ep != NULL);
    if (ep) {
        CHECK_STR(jstr(ep, "secret_source"), "given");
        struct signed_req r;
        memset(&r, 0, sizeof r);
        snprintf(r.body, sizeof r.body, "%s", body);
        CHECK(sign_as_provider("basic", "sender:pa ss:word", &r) == 0);
        int status = 0;
        char *ob = NULL;
        CHECK_OK(integ_webhook_receive(e.ctx, jstr(ep, "id"), "POST", "/h", r.names, r.values, r.n,
                                       (const unsigned char *)body, strlen(body), &status, &ob));
        CHECK(status == 202);
        integ_free(ob);
        CHECK(sign_as_provider("basic", "sender:wrong", &r) == 0);
        CHECK_OK(integ_webhook_receive(e.ctx, jstr(ep, "id"), "POST", "/h", r.names, r.values, r.n,
                                       (const unsigned char *)body, strlen(body), &status, &ob));
        CHECK(status == 401);
        integ_free(ob);
        json_object_put(ep);
    }

    /* standard-ed25519: the sender's public key (whpk_). */
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], sig[crypto_sign_BYTES];
    crypto_sign_keypair(pk, sk);
    char pk_b64[64], req[512], signed_msg[256], sig_b64[128], sig_hdr[160];
    sodium_bin2base64(pk_b64, sizeof pk_b64, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
    snprintf(req, sizeof req, "{\"scheme\":\"standard-ed25519\",\"secret\":\"whpk_%s\"}", pk_b64);
    ep = make_endpoint(&e, e.woo_id, req);
    CHECK(ep != NULL);
    if (ep) {
        snprintf(signed_msg, sizeof signed_msg, "msg_ed1.%s.%s", ts, body);
        crypto_sign_detached(sig, NULL, (const unsigned char *)signed_msg, strlen(signed_msg), sk);
        sodium_bin2base64(sig_b64, sizeof sig_b64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
        snprintf(sig_hdr, sizeof sig_hdr, "v1a,%s", sig_b64);
        struct delivery d = {{"webhook-id", "webhook-timestamp", "webhook-signature"}, {"msg_ed1", ts, sig_hdr}, 3, "", ""};
        CHECK(receive(&e, jstr(ep, "id"), "/h", &d, body, NULL) == 202);
        d.values[0] = "msg_ed2"; /* the signature covers the id */
        CHECK(receive(&e, jstr(ep, "id"), "/h", &d, body, NULL) == 401);
        json_object_put(ep);
    }
    sodium_memzero(sk, sizeof sk);

    /* sendgrid: the verification key, base64 DER of the sender's P-256 public key. */
    mbedtls_pk_context key;
    mbedtls_pk_init(&key);
    unsigned char der[256], hash[32], esig[MBEDTLS_ECDSA_MAX_LEN];
    size_t esig_len = 0;
    int ok = mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) == 0 &&
             mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key), rng, NULL) == 0;
    int der_len = ok ? mbedtls_pk_write_pubkey_der(&key, der, sizeof der) : -1;
    char key_b64[256], esig_b64[256];
    CHECK(der_len > 0);
    if (der_len > 0) {
        sodium_bin2base64(key_b64, sizeof key_b64, der + sizeof der - der_len, (size_t)der_len,
                          sodium_base64_VARIANT_ORIGINAL);
        snprintf(req, sizeof req, "{\"scheme\":\"sendgrid\",\"secret\":\"%s\"}", key_b64);
        ep = make_endpoint(&e, e.woo_id, req);
        CHECK(ep != NULL);
        snprintf(signed_msg, sizeof signed_msg, "%s%s", ts, body);
        hash_of(signed_msg, hash);
#if MBEDTLS_VERSION_MAJOR >= 3
        CHECK(mbedtls_pk_sign(&key, MBEDTLS_MD_SHA256, hash, sizeof hash, esig, sizeof esig, &esig_len, rng, NULL) == 0);
#else
        CHECK(mbedtls_pk_sign(&key, MBEDTLS_MD_SHA256, hash, sizeof hash, esig, &esig_len, rng, NULL) == 0);
#endif
        sodium_bin2base64(esig_b64, sizeof esig_b64, esig, esig_len, sodium_base64_VARIANT_ORIGINAL);
        struct delivery d = {{"X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp"},
                             {esig_b64, ts},
                             2,
                             "",
                             ""};
        if (ep) {
            CHECK(receive(&e, jstr(ep, "id"), "/h", &d, body, NULL) == 202);
            CHECK(receive(&e, jstr(ep, "id"), "/h", &d, "{\"id\":43,\"event\":\"delivered\"}", NULL) == 401);
            json_object_put(ep);
        }
    }
    mbedtls_pk_free(&key);
    CHECK(count_events(&e, NULL) == 3);
    env_close(&e, dbpath);
}

/* ---- endpoint updates, batches, ids, headers -------------------------------------------- */

static json_object *update_endpoint(struct env *e, const char *id, const char *patch, int want)
{
    char *out = NULL;
    int rc = integ_webhook_endpoint_update(e->s, id, patch, &out);
    if (rc != want)
        fprintf(stderr, "  update %s: rc %d: %s\n", patch, rc, rc ? integ_errmsg() : out);
    CHECK_RC(rc, want);
    json_object *o = out ? json_tokener_parse(out) : NULL;
    integ_free(out);
    return o;
}

static int jbool(json_object *o, const char *k) { return json_object_get_boolean(json_object_object_get(o, k)); }

/* A batch is queued when one of its items is subscribed; processing applies
 * only the subscribed items, by the endpoint's filter as it was when the
 * delivery came. */
static void test_batch_item_filter(void)
{
    char base[200];
    snprintf(base, sizeof base, "%s/hubspot", sb.url);
    struct env e;
    if (env_open(&e, dbpath, base)) {
        CHECK(!"env_open");
        return;
    }
    json_object *ep = make_endpoint(&e, e.hubspot_id, "{\"events\":[\"contact.*\"]}");
    if (!ep)
        return;
    char url[256];
    snprintf(url, sizeof url, "https://app.example.com/hooks/%s", jstr(ep, "id"));
    struct delivery d;
    char *ob = NULL;
    const char *mixed = "[{\"eventId\":2001,\"subscriptionType\":\"contact.creation\",\"objectId\":1003},"
                        "{\"eventId\":3001,\"subscriptionType\":\"company.creation\",\"objectId\":3001}]";
    hubspot_delivery(&d, url, mixed);
    CHECK(receive(&e, jstr(ep, "id"), url, &d, mixed, NULL) == 202);
    const char *companies = "[{\"eventId\":3002,\"subscriptionType\":\"company.creation\",\"objectId\":3002}]";
    hubspot_delivery(&d, url, companies);
    CHECK(receive(&e, jstr(ep, "id"), url, &d, companies, &ob) == 200);
    CHECK(ob && strstr(ob, "ignored"));
    integ_free(ob);
    const char *mixed2 = "[{\"eventId\":3003,\"subscriptionType\":\"company.propertyChange\",\"objectId\":3003},"
                         "{\"eventId\":2002,\"subscriptionType\":\"contact.propertyChange\",\"objectId\":1004}]";
    hubspot_delivery(&d, url, mixed2);
    CHECK(receive(&e, jstr(ep, "id"), url, &d, mixed2, NULL) == 202);
    /* A later filter does not change what was received under the old one. */
    json_object_put(update_endpoint(&e, jstr(ep, "id"), "{\"events\":[\"company.*\"]}", INTEG_OK));
    json_object *r = process(&e);
    CHECK(r && jint(r, "processed") == 2 && jint(r, "failed") == 0);
    json_object *evs = r ? json_object_object_get(r, "events") : NULL;
    for (size_t i = 0; i < 2 && evs && i < json_object_array_length(evs); i++) {
        json_object *res = json_object_object_get(json_object_array_get_idx(evs, i), "result");
        if (jint(res, "items_ignored") != 1 || jint(res, "records_created") != 1)
            fprintf(stderr, "  event %zu: %s\n", i, json_object_to_json_string(res));
        CHECK(jint(res, "items_ignored") == 1 && jint(res, "records_created") == 1);
    }
    json_object_put(r);
    char *out = NULL;
    CHECK_OK(integ_entities_list(e.s, "contacts", NULL, &out));
    json_object *l = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(l) == 2);
    json_object_put(l);
    json_object_put(ep);
    env_close(&e, dbpath);
}

/* An endpoint that verifies with the app's client secret follows the app
 * credentials: a secret of its own is refused, by update and rotation alike,
 * and the refusal names the call that changes it. */
static void test_update_app_secret_endpoint(void)
{
    struct env e;
    if (env_open(&e, dbpath, "http://127.0.0.1:9")) {
        CHECK(!"env_open");
        return;
    }
    json_object *ep = make_endpoint(&e, e.hubspot_id, NULL);
    if (!ep)
        return;
    CHECK_STR(jstr(ep, "secret_source"), "app_secret");
    const char *id = jstr(ep, "id");
    char *out = NULL;
    CHECK_RC(integ_webhook_endpoint_update(e.s, id, "{\"secret\":\"my-own-secret\"}", &out), INTEG_EINVAL);
    CHECK(out == NULL);
    CHECK_MSG("patch_json.secret");
    CHECK_MSG("integ_definition_set_app_credentials");
    CHECK_RC(integ_webhook_endpoint_rotate_secret(e.s, id, &out), INTEG_EINVAL);
    CHECK_MSG("integ_definition_set_app_credentials");
    CHECK(!strstr(integ_errmsg(), "integ_webhook_endpoint_update"));
    CHECK_OK(integ_webhook_endpoints_list(e.s, e.hubspot_id, &out));
    CHECK(strstr(out, "\"has_previous_secret\":false") && !strstr(out, "secret_rotated_at\":\"")); /* nothing changed */
    integ_free(out);
    /* Still the app's secret, and a sender using "my-own-secret" is refused. */
    char url[256];
    snprintf(url, sizeof url, "https://app.example.com/hooks/%s", id);
    const char *body = "[{\"eventId\":401,\"subscriptionType\":\"contact.creation\",\"objectId\":1}]";
    struct delivery d;
    hubspot_delivery(&d, url, body);
    CHECK(receive(&e, id, url, &d, body, NULL) == 202);
    /* The app's secret changes where it lives; the endpoint follows. */
    CHECK_OK(integ_definition_set_app_credentials(e.ctx, "hubspot-crm", "{\"client_id\":\"c\",\"client_secret\":\"next-app-secret\"}"));
    const char *body2 = "[{\"eventId\":402,\"subscriptionType\":\"contact.creation\",\"objectId\":1}]";
    hubspot_delivery(&d, url, body2); /* signed with APP_SECRET */
    CHECK(receive(&e, id, url, &d, body2, NULL) == 401);
    json_object_put(ep);
    env_close(&e, dbpath);
}

/* Deliver r (signed for the endpoint's scheme) and return the status. */
static int deliver_signed(struct env *e, json_object *ep, const char *scheme, const char *secret, const char *body)
{
    struct signed_req r;
    memset(&r, 0, sizeof r);
    snprintf(r.url, sizeof r.url, "%s", jstr(ep, "url"));
    snprintf(r.body, sizeof r.body, "%s", body);
    if (sign_as_provider(scheme, secret, &r))
        return -1;
    int status = 0;
    char *ob = NULL;
    CHECK_OK(integ_webhook_receive(e->ctx, jstr(ep, "id"), "POST", r.url, r.names, r.values, r.n,
                                   (const unsigned char *)r.body, strlen(r.body), &status, &ob));
    integ_free(ob);
    return status;
}

/* Changing the scheme applies create's rule to the secret: kept when it is
 * what create would give that scheme, generated (and shown once) when the
 * scheme takes a generated one, else refused naming patch_json.secret. */
static void test_update_scheme_secret(void)
{
    struct env e;
    if (env_open(&e, dbpath, "http://127.0.0.1:9")) {
        CHECK(!"env_open");
        return;
    }
    json_object *woo = make_endpoint(&e, e.woo_id, NULL);
    if (!woo)
        return;
    const char *id = jstr(woo, "id");
    char *out = NULL;
    static const char *const refused[] = {"sendgrid", "basic", "standard-ed25519"};
    for (size_t i = 0; i < 3; i++) {
        char patch[96], msg[128];
        snprintf(patch, sizeof patch, "{\"scheme\":\"%s\",\"description\":\"x\"}", refused[i]);
        CHECK_RC(integ_webhook_endpoint_update(e.s, id, patch, &out), INTEG_EINVAL);
        CHECK(out == NULL);
        snprintf(msg, sizeof msg, "patch_json.secret: required for scheme '%s'", refused[i]);
        CHECK_MSG(msg);
    }
    CHECK_OK(integ_webhook_endpoints_list(e.s, e.woo_id, &out));
    CHECK(strstr(out, "\"scheme\":\"woocommerce\"") && !strstr(out, "\"description\":\"x\"")); /* unchanged */
    integ_free(out);
    /* standard verifies with the generated secret it has: kept, not shown. */
    json_object *up = update_endpoint(&e, id, "{\"scheme\":\"standard\"}", INTEG_OK);
    CHECK(up && !json_object_object_get(up, "secret") && !jbool(up, "has_previous_secret"));
    CHECK_STR(jstr(up, "secret_source"), "generated");
    json_object_put(up);
    CHECK(deliver_signed(&e, woo, "standard", jstr(woo, "secret"), "{\"id\":1}") == 202);
    CHECK_OK(integ_webhook_endpoint_rotate_secret(e.s, id, &out));
    CHECK(strstr(out, "\"secret\":\"whsec_") != NULL);
    integ_free(out);

    /* HubSpot's app secret is no Standard Webhooks key: a generated one,
     * shown once, and nothing of the old secret verifies any more. */
    json_object *hs = make_endpoint(&e, e.hubspot_id, NULL);
    CHECK(hs != NULL);
    up = hs ? update_endpoint(&e, jstr(hs, "id"), "{\"scheme\":\"standard\"}", INTEG_OK) : NULL;
    CHECK(up && jstr(up, "secret") && !strncmp(jstr(up, "secret"), "whsec_", 6));
    CHECK(up && !jbool(up, "has_previous_secret") && jstr(up, "secret_rotated_at"));
    CHECK_STR(jstr(up, "secret_source"), "generated");
    if (up && hs && jstr(up, "secret"))
        CHECK(deliver_signed(&e, hs, "standard", jstr(up, "secret"), "{\"id\":2}") == 202);
    json_object_put(up);
    CHECK_OK(integ_webhook_endpoints_list(e.s, e.hubspot_id, &out)); /* shown once only */
    CHECK(!strstr(out, "whsec_"));
    integ_free(out);
    if (hs) {
        CHECK_OK(integ_webhook_endpoint_rotate_secret(e.s, jstr(hs, "id"), &out));
        integ_free(out);
        /* Back to HubSpot's own scheme: the app's secret again, never shown. */
        up = update_endpoint(&e, jstr(hs, "id"), "{\"scheme\":\"hubspot-v3\"}", INTEG_OK);
        CHECK(up && !json_object_object_get(up, "secret"));
        CHECK_STR(jstr(up, "secret_source"), "app_secret");
        json_object_put(up);
        char url[256];
        snprintf(url, sizeof url, "%s", jstr(hs, "url"));
        const char *body = "[{\"eventId\":501,\"subscriptionType\":\"contact.creation\",\"objectId\":1}]";
        struct delivery d;
        hubspot_delivery(&d, url, body);
        CHECK(receive(&e, jstr(hs, "id"), url, &d, body, NULL) == 202);
    }
    /* A new scheme with its secret: given, and rotation is not ours. */
    up = update_endpoint(&e, id, "{\"scheme\":\"basic\",\"secret\":\"sender:pw\"}", INTEG_OK);
    CHECK(up && !json_object_object_get(up, "secret") && !jbool(up, "has_previous_secret"));
    CHECK_STR(jstr(up, "secret_source"), "given");
    json_object_put(up);
    CHECK(deliver_signed(&e, woo, "basic", "sender:pw", "{\"id\":3}") == 202);
    CHECK_RC(integ_webhook_endpoint_rotate_secret(e.s, id, &out), INTEG_EINVAL);
    CHECK_MSG("dictated");

    /* An endpoint left with a generated secret under sendgrid (its scheme
     * changed before updates checked): rotation does not mint another. */
    json_object *old = make_endpoint(&e, e.woo_id, NULL);
    CHECK(old != NULL);
    if (old) {
        void *tx = NULL;
        json_object *rec = NULL;
        CHECK_OK(ig_tx_begin(e.ctx, 1, &tx));
        CHECK_OK(ig_store_get(e.ctx, tx, INTEG_KIND_WEBHOOK_ENDPOINT, "acme", jstr(old, "id"), &rec));
        json_object_object_add(rec, "scheme", json_object_new_string("sendgrid"));
        CHECK_OK(ig_tx_end(e.ctx, tx, 1, ig_store_put(e.ctx, tx, INTEG_KIND_WEBHOOK_ENDPOINT, rec, INTEG_PUT_UPDATE)));
        json_object_put(rec);
        CHECK_RC(integ_webhook_endpoint_rotate_secret(e.s, jstr(old, "id"), &out), INTEG_EINVAL);
        CHECK(out == NULL);
        CHECK_MSG("scheme 'sendgrid' does not verify with a generated secret");
        json_object_put(old);
    }
    json_object_put(hs);
    json_object_put(woo);
    env_close(&e, dbpath);
}

/* Two HubSpot batches of 100 ten-digit event ids (over 1 KiB joined) that
 * differ only in their last id are two deliveries. */
static void test_long_batch_ids(void)
{
    struct env e;
    if (env_open(&e, dbpath, "http://127.0.0.1:9")) {
        CHECK(!"env_open");
        return;
    }
    json_object *ep = make_endpoint(&e, e.hubspot_id, NULL);
    if (!ep)
        return;
    char url[256];
    snprintf(url, sizeof url, "https://app.example.com/hooks/%s", jstr(ep, "id"));
    char *body[2];
    for (int b = 0; b < 2; b++) {
        size_t cap = 100 * 96 + 8, len = 0;
        body[b] = malloc(cap);
        len += (size_t)snprintf(body[b] + len, cap - len, "[");
        for (int i = 0; i < 100; i++) {
            long long eid = 4000000000LL + i + (i == 99 && b == 1 ? 500 : 0);
            len += (size_t)snprintf(body[b] + len, cap - len,
                                    "%s{\"eventId\":%lld,\"subscriptionType\":\"contact.propertyChange\",\"objectId\":%d}",
                                    i ? "," : "", eid, 1000 + i);
        }
        snprintf(body[b] + len, cap - len, "]");
    }
    struct delivery d;
    char *ob = NULL;
    hubspot_delivery(&d, url, body[0]);
    CHECK(receive(&e, jstr(ep, "id"), url, &d, body[0], NULL) == 202);
    hubspot_delivery(&d, url, body[1]);
    CHECK(receive(&e, jstr(ep, "id"), url, &d, body[1], &ob) == 202);
    CHECK(ob && strstr(ob, "accepted"));
    integ_free(ob);
    hubspot_delivery(&d, url, body[0]); /* a real duplicate still is one */
    CHECK(receive(&e, jstr(ep, "id"), url, &d, body[0], &ob) == 200);
    CHECK(ob && strstr(ob, "duplicate"));
    integ_free(ob);
    CHECK(count_events(&e, NULL) == 2);
    free(body[0]);
    free(body[1]);
    json_object_put(ep);
    env_close(&e, dbpath);
}

/* The endpoint's times come from the context's clock; and the headers a
 * locator reads are stored even after the first 64, so processing sees the
 * event type that receiving saw. */
static void test_endpoint_clock_and_late_headers(void)
{
    struct env e;
    if (env_open(&e, dbpath, "http://127.0.0.1:9")) {
        CHECK(!"env_open");
        return;
    }
    char want[32];
    ig_rfc3339(want, fake_now, 0);
    json_object *ep = make_endpoint(&e, e.shopify_id, "{\"secret\":\"" APP_SECRET "\"}");
    if (!ep)
        return;
    CHECK_STR(jstr(ep, "created_at"), want);
    CHECK_STR(jstr(ep, "updated_at"), want);
    fake_now += 5000;
    char later[32];
    ig_rfc3339(later, fake_now, 0);
    json_object *up = update_endpoint(&e, jstr(ep, "id"), "{\"secret\":\"" APP_SECRET "\"}", INTEG_OK);
    CHECK_STR(jstr(up, "created_at"), want);
    CHECK_STR(jstr(up, "updated_at"), later);
    CHECK_STR(jstr(up, "secret_rotated_at"), later);
    json_object_put(up);

    const char *body = "{\"id\":7101,\"email\":\"late@example.com\",\"first_name\":\"Late\",\"last_name\":\"Header\"}";
    enum { N = 70 };
    const char *names[N], *values[N];
    char fill[N][24], sig[128];
    hmac_b64(APP_SECRET, (const unsigned char *)body, strlen(body), sig, sizeof sig);
    size_t n = 0;
    names[n] = "X-Shopify-Hmac-Sha256", values[n++] = sig;
    while (n < N - 2) {
        snprintf(fill[n], sizeof fill[n], "X-Proxy-Hop-%zu", n);
        names[n] = fill[n], values[n++] = "via";
    }
    names[n] = "X-Shopify-Topic", values[n++] = "customers/create";
    names[n] = "X-Shopify-Webhook-Id", values[n++] = "late-1";
    int status = 0;
    char *ob = NULL;
    CHECK_OK(integ_webhook_receive(e.ctx, jstr(ep, "id"), "POST", "/h", names, values, n, (const unsigned char *)body,
                                   strlen(body), &status, &ob));
    CHECK(status == 202);
    integ_free(ob);
    json_object *r = process(&e);
    json_object *res = r ? json_object_object_get(json_object_array_get_idx(json_object_object_get(r, "events"), 0), "result") : NULL;
    if (jint(res, "records_created") != 1)
        fprintf(stderr, "  process: %s\n", r ? json_object_to_json_string(r) : "-");
    CHECK(r && jint(r, "processed") == 1 && jint(res, "records_created") == 1 && jint(res, "items_ignored") == 0);
    json_object_put(r);
    json_object_put(ep);
    env_close(&e, dbpath);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_webhooks SANDBOX_BINARY\n");
        return 2;
    }
    sandbox_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    snprintf(dbpath, sizeof dbpath, "/tmp/integ-webhooks-%d.db", (int)getpid());
    if (sandbox_start()) {
        fprintf(stderr, "sandbox did not start\n");
        return 1;
    }
    RUN(test_endpoints);
    RUN(test_receive);
    RUN(test_process_payload_and_delete);
    RUN(test_process_fetch_mode);
    RUN(test_retry_dead_replay);
    RUN(test_worker_dies);
    RUN(test_rotation_grace);
    RUN(test_standard_dedup);
    RUN(test_no_secret_every_scheme);
    RUN(test_no_secret_provider_keys);
    RUN(test_batch_item_filter);
    RUN(test_update_app_secret_endpoint);
    RUN(test_update_scheme_secret);
    RUN(test_long_batch_ids);
    RUN(test_endpoint_clock_and_late_headers);
    sandbox_stop(&sb);
    TEST_END();
}
