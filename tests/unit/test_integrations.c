/* Tenant integrations: the seed's examples, validation, tenancy, deletes. */
#include <json-c/json.h>

#include "ctx.h"
#include "test.h"

#define MEM_OPTS "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\"}"
#define HUBSPOT_SEED                                                                              \
    "{\"integration_definition_id\": \"hubspot-crm\", \"name\": \"HubSpot Production\", "         \
    "\"credentials\": {\"api_key\": \"pat-na1-SEEDSECRET\"}, \"config\": {\"sync_interval\": 3600, " \
    "\"entities\": [\"contacts\", \"companies\", \"deals\"], \"auto_sync\": true}}"
#define VISMA_SEED                                                                               \
    "{\"integration_definition_id\": \"visma-erp\", \"credentials\": {\"client_id\": \"vid\", "   \
    "\"client_secret\": \"VISMASECRET\"}, \"config\": {\"sync_interval\": 3600}}"

static integ_ctx *ctx;
static integ_session *admin1, *admin2, *viewer1;

static void setup(void)
{
    CHECK_OK(integ_ctx_open(&ctx, MEM_OPTS));
    CHECK_OK(integ_session_open(&admin1, ctx, "tenant-1", "alice", "[\"admin\"]"));
    CHECK_OK(integ_session_open(&admin2, ctx, "tenant-2", "mallory", "[\"admin\"]"));
    CHECK_OK(integ_session_open(&viewer1, ctx, "tenant-1", "victor", NULL));
}

static void teardown(void)
{
    integ_session_close(admin1);
    integ_session_close(admin2);
    integ_session_close(viewer1);
    integ_ctx_close(ctx);
}

static json_object *create(integ_session *s, const char *req)
{
    char *out = NULL;
    CHECK_OK(integ_integration_create(s, req, &out));
    json_object *o = out ? json_tokener_parse(out) : NULL;
    integ_free(out);
    return o;
}

static const char *jstr(json_object *o, const char *k)
{
    return json_object_get_string(json_object_object_get(o, k));
}

static void test_seed_examples(void)
{
    json_object *h = create(admin1, HUBSPOT_SEED);
    CHECK(h != NULL);
    if (!h)
        return;
    CHECK_STR(jstr(h, "name"), "HubSpot Production");
    CHECK_STR(jstr(h, "tenant_id"), "tenant-1");
    CHECK_STR(jstr(h, "integration_definition_key"), "hubspot-crm");
    CHECK(strlen(jstr(h, "integration_definition_id")) == 36);
    CHECK_STR(jstr(h, "category"), "crm");
    CHECK_STR(jstr(h, "status"), "active");
    CHECK_STR(jstr(h, "auth_type"), "api_key");
    CHECK(json_object_get_boolean(json_object_object_get(h, "has_credentials")));
    CHECK(json_object_object_get(h, "last_sync_at") == NULL);
    CHECK(json_object_object_get_ex(h, "last_sync_at", NULL));
    CHECK(strlen(jstr(h, "created_at")) == 20 && jstr(h, "created_at")[19] == 'Z');
    json_object *cfg = json_object_object_get(h, "config");
    CHECK(json_object_get_int(json_object_object_get(cfg, "sync_interval")) == 3600);
    CHECK(json_object_get_boolean(json_object_object_get(cfg, "auto_sync")));
    CHECK(json_object_array_length(json_object_object_get(cfg, "entities")) == 3);
    const char *s = json_object_to_json_string(h);
    CHECK(strstr(s, "SEEDSECRET") == NULL && strstr(s, "\"credentials\"") == NULL);

    json_object *v = create(admin1, VISMA_SEED);
    CHECK(v != NULL);
    if (v) {
        CHECK_STR(jstr(v, "auth_type"), "oauth2_client_credentials");
        /* Without a name the integration takes the definition's. */
        char *def = NULL;
        CHECK_OK(integ_definition_get(ctx, "visma-erp", &def));
        json_object *d = json_tokener_parse(def);
        CHECK_STR(jstr(v, "name"), jstr(d, "name"));
        json_object_put(d);
        integ_free(def);
        /* Defaults applied. */
        json_object *vc = json_object_object_get(v, "config");
        CHECK(json_object_object_get_ex(vc, "auto_sync", NULL));
        CHECK(!json_object_get_boolean(json_object_object_get(vc, "auto_sync")));
        CHECK(strstr(json_object_to_json_string(v), "VISMASECRET") == NULL);
    }
    /* Reads never show secrets either. */
    char *out = NULL;
    CHECK_OK(integ_integration_get(viewer1, jstr(h, "id"), &out));
    CHECK(strstr(out, "SEEDSECRET") == NULL && strstr(out, "sealed") == NULL);
    integ_free(out);
    CHECK_OK(integ_integrations_list(viewer1, NULL, &out));
    CHECK(strstr(out, "SEEDSECRET") == NULL && strstr(out, "VISMASECRET") == NULL);
    integ_free(out);
    CHECK_OK(integ_audit_list(admin1, NULL, &out));
    CHECK(strstr(out, "SEEDSECRET") == NULL && strstr(out, "VISMASECRET") == NULL);
    integ_free(out);
    json_object_put(h);
    json_object_put(v);
}

static void expect_create_fails(const char *req, int code, const char *needle)
{
    char *out = (char *)0x1;
    CHECK_RC(integ_integration_create(admin1, req, &out), code);
    CHECK(out == NULL);
    CHECK_MSG(needle);
}

static void test_bad_requests(void)
{
    expect_create_fails("{\"integration_definition_id\": \"hubspot-crm\",", INTEG_EINVAL,
                        "request_json: malformed JSON");
    expect_create_fails("[1]", INTEG_EINVAL, "request_json: must be a JSON object");
    expect_create_fails("{}", INTEG_EINVAL, "request_json.integration_definition_id: required");
    expect_create_fails("{\"integration_definition_id\": \"nosuch-crm\"}", INTEG_ENOTFOUND,
                        "nosuch-crm");
    expect_create_fails("{\"integration_definition_id\": \"hubspot-crm\", \"nmae\": \"x\"}", INTEG_EINVAL,
                        "request_json.nmae: unknown field");
    expect_create_fails("{\"integration_definition_id\": \"hubspot-crm\", \"name\": \"\"}", INTEG_EINVAL,
                        "request_json.name");
    expect_create_fails("{\"integration_definition_id\": \"hubspot-crm\", \"name\": 5}", INTEG_EINVAL,
                        "request_json.name");
    expect_create_fails("{\"integration_definition_id\": \"hubspot-crm\", \"config\": []}", INTEG_EINVAL,
                        "request_json.config: must be an object");
    expect_create_fails("{\"integration_definition_id\": \"hubspot-crm\", \"credentials\": \"k\"}",
                        INTEG_EINVAL, "request_json.credentials: must be an object");
    expect_create_fails("{\"integration_definition_id\": \"hubspot-crm\", \"status\": \"error\"}",
                        INTEG_EINVAL, "request_json.status");
    expect_create_fails("{\"integration_definition_id\": \"hubspot-crm\", \"auth_type\": \"basic\"}",
                        INTEG_EINVAL, "request_json.auth_type: 'basic' is not an auth type");
    expect_create_fails(NULL, INTEG_EINVAL, "request_json");
    CHECK_RC(integ_integration_create(NULL, "{}", NULL), INTEG_EINVAL);
    /* Nothing was written by any failed create. */
    char *out = NULL;
    CHECK_OK(integ_integrations_list(admin1, NULL, &out));
    CHECK_STR(out, "[]");
    integ_free(out);
}

/* Each kind of schema violation, with the JSON path in the message. */
static void test_schema_violations(void)
{
#define HS(cfg) "{\"integration_definition_id\": \"hubspot-crm\", \"credentials\": {\"api_key\": \"k\"}, \"config\": " cfg "}"
    expect_create_fails(HS("{\"sync_interval\": \"hourly\"}"), INTEG_EINVAL, "config.sync_interval");
    expect_create_fails(HS("{\"sync_interval\": 1}"), INTEG_EINVAL, "config.sync_interval");
    expect_create_fails(HS("{\"sync_interval\": 99999999}"), INTEG_EINVAL, "config.sync_interval");
    expect_create_fails(HS("{\"sync_interval\": 3600.5}"), INTEG_EINVAL, "config.sync_interval");
    expect_create_fails(HS("{\"entities\": [\"contacts\", \"tickets-x\"]}"), INTEG_EINVAL, "config.entities[1]");
    expect_create_fails(HS("{\"entities\": \"contacts\"}"), INTEG_EINVAL, "config.entities");
    expect_create_fails(HS("{\"auto_sync\": \"yes\"}"), INTEG_EINVAL, "config.auto_sync");
    expect_create_fails(HS("{\"sync_intervall\": 3600}"), INTEG_EINVAL, "config.sync_intervall");
#undef HS
#define SH(cfg) "{\"integration_definition_id\": \"shopify-ecommerce\", \"credentials\": {\"access_token\": \"shpat_x\"}, \"config\": " cfg "}"
    expect_create_fails(SH("{}"), INTEG_EINVAL, "shop");
    expect_create_fails(SH("{\"shop\": \"evil.example.com\"}"), INTEG_EINVAL, "config.shop");
    expect_create_fails(SH("{\"shop\": \"a.myshopify.com/../../x\"}"), INTEG_EINVAL, "config.shop");
    json_object *ok = create(admin1, SH("{\"shop\": \"acme-store.myshopify.com\"}"));
    CHECK(ok != NULL);
    json_object_put(ok);
#undef SH
#define WC(cfg) "{\"integration_definition_id\": \"woocommerce-ecommerce\", \"credentials\": {\"consumer_key\": \"ck_x\", \"consumer_secret\": \"cs_x\"}, \"config\": " cfg "}"
    expect_create_fails(WC("{\"site_url\": \"not a url\"}"), INTEG_EINVAL, "config.site_url");
    expect_create_fails(WC("{\"site_url\": \"http://shop.example.com\"}"), INTEG_EINVAL, "config.site_url");
#undef WC
    /* Credentials are validated too. */
    expect_create_fails("{\"integration_definition_id\": \"hubspot-crm\", \"credentials\": {\"apikey\": \"k\"}}",
                        INTEG_EINVAL, "credentials");
    expect_create_fails("{\"integration_definition_id\": \"hubspot-crm\", \"auth_type\": \"api_key\", \"credentials\": {\"api_key\": 5}}",
                        INTEG_EINVAL, "credentials.api_key");
}

static void test_no_credentials_needs_reauth(void)
{
    json_object *o = create(admin1, "{\"integration_definition_id\": \"hubspot-crm\", \"name\": \"Connect later\"}");
    CHECK(o != NULL);
    if (!o)
        return;
    CHECK_STR(jstr(o, "status"), "needs_reauth");
    CHECK_STR(jstr(o, "auth_type"), "oauth2");
    CHECK(!json_object_get_boolean(json_object_object_get(o, "has_credentials")));
    CHECK_OK(integ_integration_set_credentials(admin1, jstr(o, "id"), "{\"api_key\": \"pat-later\"}"));
    char *out = NULL;
    CHECK_OK(integ_integration_get(admin1, jstr(o, "id"), &out));
    json_object *g = json_tokener_parse(out);
    integ_free(out);
    CHECK_STR(jstr(g, "status"), "active");
    CHECK_STR(jstr(g, "auth_type"), "api_key");
    CHECK(json_object_get_boolean(json_object_object_get(g, "has_credentials")));
    CHECK_RC(integ_integration_set_credentials(admin1, jstr(o, "id"), "{\"nothing\": 1}"), INTEG_EINVAL);
    CHECK_RC(integ_integration_set_credentials(admin1, jstr(o, "id"), "{"), INTEG_EINVAL);
    CHECK_MSG("creds_json");
    json_object_put(g);
    json_object_put(o);
}

/* Another tenant's id behaves exactly like a missing one. */
static void test_tenant_isolation(void)
{
    json_object *mine = create(admin1, HUBSPOT_SEED);
    if (!mine)
        return;
    const char *id = jstr(mine, "id");
    const char *missing = "01900000-0000-7000-8000-000000000000";
    char *out = NULL, want[256], msg_other[1024];
    int rc_other, rc_missing;

    rc_other = integ_integration_get(admin2, id, &out);
    snprintf(msg_other, sizeof msg_other, "%s", integ_errmsg());
    CHECK(rc_other == INTEG_ENOTFOUND && out == NULL);
    snprintf(want, sizeof want, "integration '%s' not found", id);
    CHECK_STR(msg_other, want);
    rc_missing = integ_integration_get(admin2, missing, &out);
    snprintf(want, sizeof want, "integration '%s' not found", missing);
    CHECK(rc_missing == INTEG_ENOTFOUND);
    CHECK_STR(integ_errmsg(), want);

    CHECK_RC(integ_integration_update(admin2, id, "{\"name\": \"pwned\"}", &out), INTEG_ENOTFOUND);
    CHECK(out == NULL);
    CHECK_RC(integ_integration_set_credentials(admin2, id, "{\"api_key\": \"evil\"}"), INTEG_ENOTFOUND);
    CHECK_RC(integ_integration_delete(admin2, id), INTEG_ENOTFOUND);
    snprintf(want, sizeof want, "integration '%s' not found", id);
    CHECK_STR(integ_errmsg(), want);
    CHECK_OK(integ_integrations_list(admin2, NULL, &out));
    CHECK_STR(out, "[]");
    integ_free(out);
    CHECK_OK(integ_audit_list(admin2, NULL, &out));
    CHECK_STR(out, "[]");
    integ_free(out);
    /* Untouched. */
    CHECK_OK(integ_integration_get(admin1, id, &out));
    CHECK(strstr(out, "pwned") == NULL);
    integ_free(out);
    json_object_put(mine);
}

static void test_update(void)
{
    json_object *o = create(admin1, HUBSPOT_SEED);
    if (!o)
        return;
    const char *id = jstr(o, "id");
    char *out = NULL;
    CHECK_OK(integ_integration_update(admin1, id, "{\"name\": \"Renamed\", \"config\": {\"sync_interval\": 600, \"auto_sync\": null}, \"status\": \"paused\"}", &out));
    json_object *u = json_tokener_parse(out);
    integ_free(out);
    CHECK_STR(jstr(u, "name"), "Renamed");
    CHECK_STR(jstr(u, "status"), "paused");
    json_object *cfg = json_object_object_get(u, "config");
    CHECK(json_object_get_int(json_object_object_get(cfg, "sync_interval")) == 600);
    /* Removed key falls back to its default; other keys kept. */
    CHECK(json_object_get_boolean(json_object_object_get(cfg, "auto_sync")) == 0);
    CHECK(json_object_array_length(json_object_object_get(cfg, "entities")) == 3);
    CHECK(strcmp(jstr(u, "created_at"), jstr(o, "created_at")) == 0);
    json_object_put(u);
    /* A failed update changes nothing. */
    CHECK_RC(integ_integration_update(admin1, id, "{\"name\": \"X\", \"config\": {\"sync_interval\": 5}}", &out), INTEG_EINVAL);
    CHECK_MSG("config.sync_interval");
    CHECK_RC(integ_integration_update(admin1, id, "{\"status\": \"needs_reauth\"}", &out), INTEG_EINVAL);
    CHECK_MSG("patch_json.status");
    CHECK_RC(integ_integration_update(admin1, id, "{\"tenant_id\": \"tenant-2\"}", &out), INTEG_EINVAL);
    CHECK_MSG("patch_json.tenant_id: unknown field");
    CHECK_RC(integ_integration_update(admin1, id, "{\"name\": \"x\"", &out), INTEG_EINVAL);
    CHECK_OK(integ_integration_get(admin1, id, &out));
    u = json_tokener_parse(out);
    integ_free(out);
    CHECK_STR(jstr(u, "name"), "Renamed");
    json_object_put(u);
    json_object_put(o);
}

static void test_list_filters(void)
{
    json_object *a = create(admin1, HUBSPOT_SEED);
    json_object *b = create(admin1, VISMA_SEED);
    json_object *c = create(admin1, "{\"integration_definition_id\": \"pipedrive-crm\", \"status\": \"paused\"}");
    char *out = NULL;
    CHECK_OK(integ_integrations_list(admin1, NULL, &out));
    json_object *l = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(l) == 3);
    /* Newest first. */
    CHECK_STR(jstr(json_object_array_get_idx(l, 0), "id"), jstr(c, "id"));
    CHECK_STR(jstr(json_object_array_get_idx(l, 2), "id"), jstr(a, "id"));
    json_object_put(l);
    CHECK_OK(integ_integrations_list(admin1, "{\"category\": \"crm\"}", &out));
    l = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(l) == 2);
    json_object_put(l);
    CHECK_OK(integ_integrations_list(admin1, "{\"category\": \"crm\", \"status\": \"paused\"}", &out));
    l = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(l) == 1);
    json_object_put(l);
    CHECK_OK(integ_integrations_list(admin1, "{\"integration_definition_id\": \"visma-erp\"}", &out));
    l = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(l) == 1);
    json_object_put(l);
    CHECK_OK(integ_integrations_list(admin1, "{\"integration_definition_id\": \"visma-erp\", \"category\": \"crm\"}", &out));
    CHECK_STR(out, "[]");
    integ_free(out);
    CHECK_OK(integ_integrations_list(admin1, "{\"limit\": 1, \"offset\": 1}", &out));
    l = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(l) == 1);
    CHECK_STR(jstr(json_object_array_get_idx(l, 0), "id"), jstr(b, "id"));
    json_object_put(l);
    CHECK_RC(integ_integrations_list(admin1, "{\"status\": \"broken\"}", &out), INTEG_EINVAL);
    CHECK_MSG("filter_json.status");
    CHECK_RC(integ_integrations_list(admin1, "{\"colour\": 1}", &out), INTEG_EINVAL);
    CHECK_MSG("filter_json.colour");
    CHECK_RC(integ_integrations_list(admin1, "{\"integration_definition_id\": \"nope-crm\"}", &out), INTEG_ENOTFOUND);
    json_object_put(a);
    json_object_put(b);
    json_object_put(c);
}

static int64_t count_kind(integ_store_kind kind, const char *integration_id)
{
    void *tx = NULL;
    int64_t n = -1;
    char q[160];
    snprintf(q, sizeof q, "{\"integration_id\":\"%s\"}", integration_id);
    if (ctx->store->begin(ctx->store_data, 0, &tx) == INTEG_OK) {
        ctx->store->count(tx, kind, q, &n);
        ctx->store->end(tx, 1);
    }
    return n;
}

static void put_child(integ_store_kind kind, const char *tenant, const char *integration_id, const char *id)
{
    void *tx = NULL;
    char rec[400];
    snprintf(rec, sizeof rec,
             "{\"id\":\"%s\",\"tenant_id\":\"%s\",\"integration_id\":\"%s\",\"entity\":\"contacts\","
             "\"external_id\":\"%s\",\"endpoint_id\":\"ep-%s\",\"event_id\":\"%s\",\"status\":\"open\"}",
             id, tenant, integration_id, id, id, id);
    CHECK_OK(ctx->store->begin(ctx->store_data, 1, &tx));
    CHECK_OK(ctx->store->put(tx, kind, rec, NULL, 0, INTEG_PUT_INSERT));
    CHECK_OK(ctx->store->end(tx, 1));
}

static void test_delete_cascades(void)
{
    json_object *a = create(admin1, HUBSPOT_SEED);
    json_object *b = create(admin1, HUBSPOT_SEED);
    if (!a || !b)
        return;
    const char *ida = jstr(a, "id"), *idb = jstr(b, "id");
    integ_store_kind kinds[] = {INTEG_KIND_MAPPING, INTEG_KIND_SYNC_LOG, INTEG_KIND_WEBHOOK_ENDPOINT,
                                INTEG_KIND_WEBHOOK_EVENT, INTEG_KIND_CONFLICT, INTEG_KIND_ENTITY_LINK,
                                INTEG_KIND_CHECKPOINT};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        char id[64];
        snprintf(id, sizeof id, "child-a-%zu", i);
        put_child(kinds[i], "tenant-1", ida, id);
        snprintf(id, sizeof id, "child-b-%zu", i);
        put_child(kinds[i], "tenant-1", idb, id);
    }
    CHECK_OK(integ_integration_delete(admin1, ida));
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        CHECK(count_kind(kinds[i], ida) == 0);
        CHECK(count_kind(kinds[i], idb) == 1);
    }
    char *out = NULL;
    CHECK_RC(integ_integration_get(admin1, ida, &out), INTEG_ENOTFOUND);
    CHECK_RC(integ_integration_delete(admin1, ida), INTEG_ENOTFOUND);
    CHECK_OK(integ_integration_get(admin1, idb, &out));
    integ_free(out);
    CHECK_RC(integ_integration_delete(admin1, NULL), INTEG_EINVAL);
    json_object_put(a);
    json_object_put(b);
}

static void test_audit_trail(void)
{
    json_object *o = create(admin1, HUBSPOT_SEED);
    if (!o)
        return;
    const char *id = jstr(o, "id");
    char *out = NULL;
    CHECK_OK(integ_integration_update(admin1, id, "{\"name\": \"N2\"}", &out));
    integ_free(out);
    CHECK_OK(integ_integration_set_credentials(admin1, id, "{\"api_key\": \"ROTATED-SECRET\"}"));
    CHECK_OK(integ_integration_delete(admin1, id));
    char filter[128];
    snprintf(filter, sizeof filter, "{\"object_id\": \"%s\"}", id);
    CHECK_OK(integ_audit_list(viewer1, filter, &out));
    json_object *l = json_tokener_parse(out);
    CHECK(strstr(out, "ROTATED-SECRET") == NULL && strstr(out, "SEEDSECRET") == NULL);
    integ_free(out);
    CHECK(json_object_array_length(l) == 4);
    const char *want[] = {"integration.delete", "integration.set_credentials", "integration.update",
                          "integration.create"};
    for (size_t i = 0; i < 4 && i < json_object_array_length(l); i++) {
        json_object *e = json_object_array_get_idx(l, i);
        CHECK_STR(jstr(e, "action"), want[i]);
        CHECK_STR(jstr(e, "user_id"), "alice");
        CHECK_STR(jstr(e, "tenant_id"), "tenant-1");
        CHECK_STR(jstr(e, "object_type"), "integration");
        CHECK(jstr(e, "at") != NULL && json_object_object_get(e, "details") != NULL);
    }
    json_object_put(l);
    CHECK_OK(integ_audit_list(viewer1, "{\"action\": \"integration.update\", \"limit\": 1}", &out));
    l = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(l) == 1);
    json_object_put(l);
    CHECK_RC(integ_audit_list(viewer1, "{\"actor\": \"x\"}", &out), INTEG_EINVAL);
    CHECK_MSG("filter_json.actor");
    CHECK_RC(integ_audit_list(viewer1, "{\"action\": 5}", &out), INTEG_EINVAL);
    json_object_put(o);
}

int main(void)
{
    setup();
    RUN(test_bad_requests);
    RUN(test_seed_examples);
    teardown();
    setup();
    RUN(test_schema_violations);
    RUN(test_no_credentials_needs_reauth);
    RUN(test_tenant_isolation);
    RUN(test_update);
    teardown();
    setup();
    RUN(test_list_filters);
    RUN(test_delete_cascades);
    RUN(test_audit_trail);
    teardown();
    TEST_END();
}
