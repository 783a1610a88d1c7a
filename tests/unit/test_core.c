/* The core: options, errors, sessions, lifetime, permissions, the catalog. */
#include <json-c/json.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "definitions.h"
#include "json.h"
#include "store_sqlite.h"
#include "test.h"

#define MEM_OPTS "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\"}"

static integ_ctx *open_mem(void)
{
    integ_ctx *ctx = NULL;
    CHECK_OK(integ_ctx_open(&ctx, MEM_OPTS));
    return ctx;
}

static void test_version_and_strerror(void)
{
    CHECK(integ_version() && strchr(integ_version(), '.'));
    int codes[] = {0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16, -17, -99};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        CHECK(strcmp(integ_strerror(codes[i]), "unknown error code") != 0);
    CHECK_STR(integ_strerror(-55), "unknown error code");
    CHECK_STR(integ_strerror(INTEG_ENOTFOUND), "not found");
    integ_free(NULL);
}

static void test_open_requires_key(void)
{
    unsetenv("INTEG_MASTER_KEY");
    integ_ctx *ctx = (integ_ctx *)0x1;
    CHECK_RC(integ_ctx_open(&ctx, "{\"store\":\"sqlite::memory:\"}"), INTEG_EINVAL);
    CHECK(ctx == NULL);
    CHECK_MSG("no master key");
    CHECK_MSG("integ_generate_master_key");
    /* From the environment. */
    setenv("INTEG_MASTER_KEY", TEST_MASTER_KEY, 1);
    CHECK_OK(integ_ctx_open(&ctx, "{\"store\":\"sqlite::memory:\"}"));
    integ_ctx_close(ctx);
    setenv("INTEG_MASTER_KEY", "bad", 1);
    CHECK_RC(integ_ctx_open(&ctx, "{\"store\":\"sqlite::memory:\"}"), INTEG_EINVAL);
    CHECK_MSG("INTEG_MASTER_KEY");
    unsetenv("INTEG_MASTER_KEY");
    /* From a file (with a trailing newline). */
    char path[] = "/tmp/integ-key-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, TEST_MASTER_KEY "\n", strlen(TEST_MASTER_KEY) + 1) > 0);
    close(fd);
    char opts[256];
    snprintf(opts, sizeof opts, "{\"store\":\"sqlite::memory:\",\"master_key_file\":\"%s\"}", path);
    CHECK_OK(integ_ctx_open(&ctx, opts));
    integ_ctx_close(ctx);
    unlink(path);
    CHECK_RC(integ_ctx_open(&ctx, opts), INTEG_EINVAL);
    CHECK_MSG("options.master_key_file: cannot open");
}

/* The master key's text does not outlive ctx_open: the options the context
 * keeps no longer hold it, and the key still seals and opens. */
static void test_master_key_text_dropped(void)
{
    integ_ctx *ctx = NULL;
    CHECK_OK(integ_ctx_open(&ctx, "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\"}"));
    if (!ctx)
        return;
    CHECK(ig_json_get(ctx->options, "master_key") == NULL);
    CHECK(ig_json_get(ctx->options, "store") != NULL);
    integ_session *s = NULL;
    char *out = NULL;
    CHECK_OK(integ_session_open(&s, ctx, "acme", "alice", "[\"admin\"]"));
    CHECK_OK(integ_integration_create(s, "{\"integration_definition_id\":\"hubspot-crm\",\"credentials\":{\"api_key\":\"k\"}}",
                                      &out));
    integ_free(out);
    integ_session_close(s);
    integ_ctx_close(ctx);
    /* Secret-bearing text parses to exactly one value, or nothing. */
    const char *ok = "{\"api_key\":\"s3cret\"}";
    json_object *o = ig_json_parse_secret(ok, strlen(ok));
    CHECK(o && !strcmp(json_object_get_string(json_object_object_get(o, "api_key")), "s3cret"));
    json_object_put(o);
    CHECK(ig_json_parse_secret("{\"a\":1} x", 9) == NULL);
    CHECK(ig_json_parse_secret("{\"a\":", 5) == NULL);
}

/* PRAGMA synchronous of a connection of the context's store. */
static int synchronous_of(integ_ctx *ctx)
{
    void *tx = NULL;
    int v = -1;
    if (ig_tx_begin(ctx, 0, &tx) != INTEG_OK)
        return -1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ig_sqlite_tx_db(tx), "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    ig_tx_end(ctx, tx, 0, INTEG_OK);
    return v;
}

static int wrapped_open_calls;
static const integ_store *inner_store;
static int wrapped_open(void *d)
{
    wrapped_open_calls++;
    return inner_store->open(d);
}

/* options.durability: "normal" (synchronous=NORMAL, 1) or "full" (FULL, 2)
 * on the built-in store; anything else, or a host store, is refused. */
static void test_durability_option(void)
{
    integ_ctx *ctx = NULL;
    CHECK_OK(integ_ctx_open(&ctx, "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\"}"));
    CHECK(ctx && synchronous_of(ctx) == 1);
    integ_ctx_close(ctx);
    ctx = NULL;
    CHECK_OK(integ_ctx_open(&ctx, "{\"store\":\"sqlite::memory:\",\"durability\":\"full\",\"master_key\":\"" TEST_MASTER_KEY "\"}"));
    CHECK(ctx && synchronous_of(ctx) == 2);
    integ_ctx_close(ctx);
    ctx = NULL;
    CHECK_RC(integ_ctx_open(&ctx, "{\"store\":\"sqlite::memory:\",\"durability\":\"paranoid\",\"master_key\":\"" TEST_MASTER_KEY "\"}"),
             INTEG_EINVAL);
    CHECK_MSG("options.durability: must be \"normal\" or \"full\"");
    CHECK_RC(integ_ctx_open(&ctx, "{\"store\":\"sqlite::memory:\",\"durability\":2,\"master_key\":\"" TEST_MASTER_KEY "\"}"),
             INTEG_EINVAL);
    CHECK_MSG("options.durability");
    /* The built-in store handed over by the host takes it... */
    const integ_store *st = NULL;
    void *data = NULL;
    CHECK_OK(integ_store_sqlite_new(&st, &data, ":memory:"));
    CHECK_OK(integ_ctx_open_with_store(&ctx, st, data, "{\"durability\":\"full\",\"master_key\":\"" TEST_MASTER_KEY "\"}"));
    CHECK(ctx && synchronous_of(ctx) == 2);
    integ_ctx_close(ctx);
    ctx = NULL;
    /* ...but not once it is open with the other setting... */
    CHECK_OK(integ_store_sqlite_new(&st, &data, ":memory:"));
    CHECK_OK(st->open(data));
    CHECK_RC(integ_ctx_open_with_store(&ctx, st, data, "{\"durability\":\"full\",\"master_key\":\"" TEST_MASTER_KEY "\"}"),
             INTEG_EINVAL);
    CHECK_MSG("already open with durability \"normal\"");
    st->close(data);
    /* ...and a host's store decides its own: the option is refused, the
     * store never opened. */
    CHECK_OK(integ_store_sqlite_new(&inner_store, &data, ":memory:"));
    integ_store host = *inner_store;
    host.open = wrapped_open;
    CHECK_RC(integ_ctx_open_with_store(&ctx, &host, data, "{\"durability\":\"normal\",\"master_key\":\"" TEST_MASTER_KEY "\"}"),
             INTEG_EINVAL);
    CHECK_MSG("options.durability: applies to the built-in SQLite store only");
    CHECK(wrapped_open_calls == 0);
    CHECK_OK(integ_ctx_open_with_store(&ctx, &host, data, "{\"master_key\":\"" TEST_MASTER_KEY "\"}"));
    CHECK(wrapped_open_calls == 1);
    integ_ctx_close(ctx);
}

static void test_bad_options(void)
{
    integ_ctx *ctx = NULL;
    struct {
        const char *opts, *msg;
    } cases[] = {
        {"{", "options_json: malformed JSON"},
        {"[]", "options_json: must be a JSON object"},
        {"{\"master_key\":\"" TEST_MASTER_KEY "\",\"stroe\":\"x\"}", "options.stroe: unknown option"},
        {"{\"master_key\":\"" TEST_MASTER_KEY "\",\"store\":5}", "options.store: must be a string"},
        {"{\"master_key\":\"" TEST_MASTER_KEY "\",\"store\":\"postgres:x\"}", "options.store: unsupported store"},
        {"{\"master_key\":\"" TEST_MASTER_KEY "\",\"http\":{\"timeout_ms\":-1}}", "options.http.timeout_ms"},
        {"{\"master_key\":\"" TEST_MASTER_KEY "\",\"http\":{\"proxi\":\"x\"}}", "options.http.proxi: unknown option"},
        {"{\"master_key\":\"" TEST_MASTER_KEY "\",\"http\":{\"allow_private_networks\":1}}", "allow_private_networks: must be a boolean"},
        {"{\"master_key\":\"" TEST_MASTER_KEY "\",\"webhook\":{\"base_url\":\"ftp://x\"}}", "options.webhook.base_url"},
        {"{\"master_key\":\"" TEST_MASTER_KEY "\",\"base_url_overrides\":{\"hubspot-crm\":{\"apii\":\"x\"}}}", "options.base_url_overrides.hubspot-crm.apii"},
        {"{\"master_key\":\"" TEST_MASTER_KEY "\",\"store\":\"sqlite::memory:\",\"adapters_dir\":\"/nonexistent-dir\"}", "options.adapters_dir: cannot open"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ctx = (integ_ctx *)0x1;
        CHECK_RC(integ_ctx_open(&ctx, cases[i].opts), INTEG_EINVAL);
        CHECK(ctx == NULL);
        CHECK_MSG(cases[i].msg);
    }
    CHECK_RC(integ_ctx_open(NULL, MEM_OPTS), INTEG_EINVAL);
    CHECK_RC(integ_ctx_open_with_store(&ctx, NULL, NULL, MEM_OPTS), INTEG_EINVAL);
    CHECK_MSG("store");
}

static void *fail_other_way(void *arg)
{
    (void)arg;
    char *out = NULL;
    integ_definitions_list(NULL, NULL, &out); /* "invalid argument: ctx" on that thread */
    return strstr(integ_errmsg(), "ctx") ? (void *)1 : NULL;
}

static void test_errmsg_thread_local(void)
{
    integ_ctx *ctx = NULL;
    CHECK_RC(integ_ctx_open(&ctx, "{"), INTEG_EINVAL);
    const char *mine = integ_errmsg();
    CHECK(strstr(mine, "malformed") != NULL);
    /* Another thread's failure doesn't change this thread's message. */
    pthread_t t;
    void *theirs = NULL;
    pthread_create(&t, NULL, fail_other_way, NULL);
    pthread_join(t, &theirs);
    CHECK(theirs == (void *)1);
    CHECK(strstr(integ_errmsg(), "malformed") != NULL);
}

static void test_sessions(void)
{
    integ_ctx *ctx = open_mem();
    integ_session *s = (integ_session *)0x1;
    CHECK_RC(integ_session_open(&s, ctx, "", "u", NULL), INTEG_EINVAL);
    CHECK(s == NULL);
    CHECK_MSG("tenant_id");
    CHECK_RC(integ_session_open(&s, ctx, "t 1", "u", NULL), INTEG_EINVAL);
    CHECK_RC(integ_session_open(&s, ctx, "t1", NULL, NULL), INTEG_EINVAL);
    CHECK_MSG("user_id");
    CHECK_RC(integ_session_open(&s, ctx, "t1", "u1", "{\"admin\":1}"), INTEG_EINVAL);
    CHECK_MSG("roles_json");
    CHECK_RC(integ_session_open(&s, ctx, "t1", "u1", "[1]"), INTEG_EINVAL);
    CHECK_MSG("roles_json[0]");
    CHECK_RC(integ_session_open(&s, ctx, "t1", "u1", "[\"admin\""), INTEG_EINVAL);
    CHECK_RC(integ_session_open(&s, NULL, "t1", "u1", NULL), INTEG_EINVAL);
    char big[200];
    memset(big, 'a', sizeof big - 1);
    big[199] = 0;
    CHECK_RC(integ_session_open(&s, ctx, big, "u1", NULL), INTEG_EINVAL);
    CHECK_OK(integ_session_open(&s, ctx, "t1", "u1", "[\"admin\"]"));
    integ_session_close(s);
    integ_session_close(NULL);
    integ_ctx_close(ctx);
    integ_ctx_close(NULL);
}

/* Bindings finalise in any order: closing the context first must leave its
 * sessions usable until they are closed (ASan checks the lifetime). */
static void test_ctx_closed_before_sessions(void)
{
    integ_ctx *ctx = open_mem();
    integ_session *a = NULL, *b = NULL;
    CHECK_OK(integ_session_open(&a, ctx, "t1", "u1", "[\"admin\"]"));
    CHECK_OK(integ_session_open(&b, ctx, "t2", "u2", NULL));
    integ_ctx_close(ctx);
    integ_ctx_close(ctx); /* a second close is harmless while sessions hold it */
    char *out = NULL;
    CHECK_OK(integ_integration_create(a, "{\"integration_definition_id\":\"hubspot-crm\",\"credentials\":{\"api_key\":\"k\"}}", &out));
    integ_free(out);
    integ_session *c = (integ_session *)0x1;
    CHECK_RC(integ_session_open(&c, ctx, "t1", "u1", NULL), INTEG_EINVAL);
    CHECK_MSG("closed");
    integ_session_close(a);
    CHECK_OK(integ_integrations_list(b, NULL, &out));
    CHECK_STR(out, "[]");
    integ_free(out);
    integ_session_close(b); /* the real close happens here */
}

static int deny_all(void *p, const char *t, const char *u, const char *r, const char *a)
{
    (void)t;
    (void)u;
    CHECK_STR(r, "integration");
    CHECK_STR(a, "admin");
    (*(int *)p)++;
    return 0;
}

static int allow_bob(void *p, const char *t, const char *u, const char *r, const char *a)
{
    (void)p;
    (void)r;
    (void)a;
    return strcmp(t, "t1") == 0 && strcmp(u, "bob") == 0;
}

static void test_permissions(void)
{
    integ_ctx *ctx = open_mem();
    integ_session *viewer = NULL, *admin = NULL, *bob = NULL, *perm = NULL;
    const char *req = "{\"integration_definition_id\":\"hubspot-crm\",\"credentials\":{\"api_key\":\"k\"}}";
    char *out = NULL;
    CHECK_OK(integ_session_open(&viewer, ctx, "t1", "v", "[\"viewer\"]"));
    CHECK_OK(integ_session_open(&admin, ctx, "t1", "a", "[\"admin\"]"));
    CHECK_OK(integ_session_open(&perm, ctx, "t1", "p", "[\"integration:admin\"]"));
    CHECK_OK(integ_session_open(&bob, ctx, "t1", "bob", NULL));
    CHECK_RC(integ_integration_create(viewer, req, &out), INTEG_EPERM);
    CHECK(out == NULL);
    CHECK_MSG("lacks integration:admin");
    CHECK_OK(integ_integration_create(perm, req, &out));
    integ_free(out);
    CHECK_OK(integ_integration_create(admin, req, &out));
    json_object *o = json_tokener_parse(out);
    char id[64];
    snprintf(id, sizeof id, "%s", json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    integ_free(out);
    /* Reads need no permission. */
    CHECK_OK(integ_integration_get(viewer, id, &out));
    integ_free(out);
    CHECK_RC(integ_integration_update(viewer, id, "{\"name\":\"x\"}", &out), INTEG_EPERM);
    CHECK_RC(integ_integration_set_credentials(viewer, id, "{\"api_key\":\"x\"}"), INTEG_EPERM);
    CHECK_RC(integ_integration_delete(viewer, id), INTEG_EPERM);
    /* The callback overrides roles entirely, both ways. */
    int calls = 0;
    CHECK_OK(integ_ctx_set_permission_cb(ctx, deny_all, &calls));
    CHECK_RC(integ_integration_update(admin, id, "{\"name\":\"x\"}", &out), INTEG_EPERM);
    CHECK(calls == 1);
    CHECK_OK(integ_ctx_set_permission_cb(ctx, allow_bob, NULL));
    CHECK_OK(integ_integration_update(bob, id, "{\"name\":\"by bob\"}", &out));
    integ_free(out);
    CHECK_RC(integ_integration_delete(admin, id), INTEG_EPERM);
    CHECK_OK(integ_ctx_set_permission_cb(ctx, NULL, NULL));
    CHECK_OK(integ_integration_delete(admin, id));
    CHECK_RC(integ_ctx_set_permission_cb(NULL, NULL, NULL), INTEG_EINVAL);
    integ_session_close(viewer);
    integ_session_close(admin);
    integ_session_close(perm);
    integ_session_close(bob);
    integ_ctx_close(ctx);
}

static void test_catalog(void)
{
    integ_ctx *ctx = open_mem();
    char *out = NULL;
    CHECK_OK(integ_definitions_list(ctx, NULL, &out));
    json_object *arr = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(arr) == 15);
    const char *keys[] = {"hubspot-crm", "salesforce-crm", "pipedrive-crm", "visma-erp", "sap-erp",
                          "dynamics-erp", "xledger-accounting", "tripletex-accounting",
                          "poweroffice-accounting", "shopify-ecommerce", "woocommerce-ecommerce",
                          "magento-ecommerce", "gmail-email", "outlook-email", "sendgrid-email"};
    for (size_t k = 0; k < 15; k++) {
        int found = 0;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *d = json_object_array_get_idx(arr, i);
            if (!strcmp(json_object_get_string(json_object_object_get(d, "key")), keys[k])) {
                found++;
                CHECK(json_object_object_get(d, "id") != NULL);
                CHECK(json_object_object_get(d, "auth_type") != NULL);
                CHECK(json_object_object_get(d, "config_schema") != NULL);
                CHECK(json_object_object_get(d, "capabilities") != NULL);
                CHECK(json_object_get_boolean(json_object_object_get(d, "has_app_credentials")) == 0);
            }
        }
        CHECK(found == 1);
    }
    /* Sorted by category, then key. */
    for (size_t i = 1; i < json_object_array_length(arr); i++) {
        json_object *a = json_object_array_get_idx(arr, i - 1), *b = json_object_array_get_idx(arr, i);
        int c = strcmp(json_object_get_string(json_object_object_get(a, "category")),
                       json_object_get_string(json_object_object_get(b, "category")));
        CHECK(c < 0 || (c == 0 && strcmp(json_object_get_string(json_object_object_get(a, "key")),
                                         json_object_get_string(json_object_object_get(b, "key"))) < 0));
    }
    json_object_put(arr);
    CHECK_OK(integ_definitions_list(ctx, "{\"category\":\"crm\"}", &out));
    arr = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(arr) == 3);
    json_object_put(arr);
    CHECK_OK(integ_definitions_list(ctx, "{\"category\":\"storage\"}", &out));
    CHECK_STR(out, "[]");
    integ_free(out);
    CHECK_OK(integ_definitions_list(ctx, "{\"limit\":2,\"offset\":1}", &out));
    arr = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(arr) == 2);
    json_object_put(arr);
    out = (char *)0x1;
    CHECK_RC(integ_definitions_list(ctx, "{\"category\":\"crms\"}", &out), INTEG_EINVAL);
    CHECK(out == NULL);
    CHECK_MSG("filter_json.category");
    CHECK_RC(integ_definitions_list(ctx, "{\"kategory\":\"crm\"}", &out), INTEG_EINVAL);
    CHECK_MSG("filter_json.kategory");
    CHECK_RC(integ_definitions_list(ctx, "{\"limit\":-1}", &out), INTEG_EINVAL);
    CHECK_MSG("filter_json.limit");
    CHECK_RC(integ_definitions_list(ctx, "[", &out), INTEG_EINVAL);
    /* By key and by id. */
    CHECK_OK(integ_definition_get(ctx, "shopify-ecommerce", &out));
    json_object *d = json_tokener_parse(out);
    integ_free(out);
    CHECK_STR(json_object_get_string(json_object_object_get(d, "category")), "ecommerce");
    char *by_id = NULL;
    CHECK_OK(integ_definition_get(ctx, json_object_get_string(json_object_object_get(d, "id")), &by_id));
    json_object *d2 = json_tokener_parse(by_id);
    CHECK(json_object_equal(d, d2));
    integ_free(by_id);
    json_object_put(d2);
    json_object_put(d);
    CHECK_RC(integ_definition_get(ctx, "nope-crm", &out), INTEG_ENOTFOUND);
    CHECK_MSG("nope-crm");
    CHECK_RC(integ_definition_get(ctx, "01890000-0000-7000-8000-000000000000", &out), INTEG_ENOTFOUND);
    CHECK_RC(integ_definition_get(ctx, NULL, &out), INTEG_EINVAL);
    integ_ctx_close(ctx);
}

/* A manifest as the catalog shows it, minus the fields the library adds. */
static json_object *manifest_of(integ_ctx *ctx, const char *key)
{
    char *out = NULL;
    CHECK_OK(integ_definition_get(ctx, key, &out));
    json_object *m = json_tokener_parse(out);
    integ_free(out);
    const char *added[] = {"id", "auth_type", "auth_types", "has_app_credentials", "created_at", "updated_at"};
    for (size_t i = 0; i < sizeof added / sizeof *added; i++)
        json_object_object_del(m, added[i]);
    return m;
}

static void test_register(void)
{
    integ_ctx *ctx = open_mem();
    json_object *m = manifest_of(ctx, "hubspot-crm");
    json_object_object_add(m, "key", json_object_new_string("acme-crm"));
    json_object_object_add(m, "name", json_object_new_string("Acme CRM"));
    char *out = NULL;
    CHECK_OK(integ_definition_register(ctx, json_object_to_json_string(m), &out));
    json_object *d = json_tokener_parse(out);
    integ_free(out);
    char id[64];
    snprintf(id, sizeof id, "%s", json_object_get_string(json_object_object_get(d, "id")));
    json_object_put(d);
    /* Replacing keeps the id. */
    json_object_object_add(m, "name", json_object_new_string("Acme CRM 2"));
    CHECK_OK(integ_definition_register(ctx, json_object_to_json_string(m), NULL));
    CHECK_OK(integ_definition_get(ctx, "acme-crm", &out));
    d = json_tokener_parse(out);
    integ_free(out);
    CHECK_STR(json_object_get_string(json_object_object_get(d, "id")), id);
    CHECK_STR(json_object_get_string(json_object_object_get(d, "name")), "Acme CRM 2");
    json_object_put(d);
    CHECK_OK(integ_definitions_list(ctx, "{\"category\":\"crm\"}", &out));
    d = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(d) == 4);
    json_object_put(d);
    /* A bad manifest names the offending field. */
    json_object_object_add(m, "category", json_object_new_string("crmx"));
    CHECK_RC(integ_definition_register(ctx, json_object_to_json_string(m), &out), INTEG_EINVAL);
    CHECK(out == NULL);
    CHECK_MSG("manifest.");
    CHECK_MSG("category");
    CHECK_RC(integ_definition_register(ctx, "{\"key\":", &out), INTEG_EINVAL);
    CHECK_MSG("manifest_json: malformed JSON");
    CHECK_RC(integ_definition_register(ctx, "{}", &out), INTEG_EINVAL);
    CHECK_RC(integ_definition_register(ctx, NULL, &out), INTEG_EINVAL);
    json_object_put(m);
    integ_ctx_close(ctx);
}

static void test_app_credentials(void)
{
    integ_ctx *ctx = open_mem();
    CHECK_OK(integ_definition_set_app_credentials(ctx, "hubspot-crm",
                                                  "{\"client_id\":\"cid-1\",\"client_secret\":\"APPSECRET-xyz\"}"));
    char *out = NULL;
    CHECK_OK(integ_definition_get(ctx, "hubspot-crm", &out));
    CHECK(strstr(out, "\"has_app_credentials\":true") != NULL);
    CHECK(strstr(out, "APPSECRET") == NULL && strstr(out, "sealed") == NULL);
    integ_free(out);
    CHECK_OK(integ_definitions_list(ctx, NULL, &out));
    CHECK(strstr(out, "APPSECRET") == NULL);
    integ_free(out);
    CHECK_RC(integ_definition_set_app_credentials(ctx, "hubspot-crm", "{\"client_secret\":\"x\"}"), INTEG_EINVAL);
    CHECK_MSG("creds_json.client_id");
    CHECK_RC(integ_definition_set_app_credentials(ctx, "hubspot-crm", "{\"client_id\":\"x\",\"n\":1}"), INTEG_EINVAL);
    CHECK_MSG("creds_json.n");
    CHECK_RC(integ_definition_set_app_credentials(ctx, "nope-crm", "{\"client_id\":\"x\"}"), INTEG_ENOTFOUND);
    CHECK_RC(integ_definition_set_app_credentials(ctx, "hubspot-crm", "nope"), INTEG_EINVAL);
    integ_ctx_close(ctx);
}

/* integ_definition_get and integ_definitions_list keep each definition's
 * public form by the digest of its stored text: a change made through
 * another context on the same file shows at once, and so does one made
 * here; more definitions than the cache holds all come out right. */
static char *def_name(integ_ctx *ctx, const char *key)
{
    char *out = NULL;
    CHECK_OK(integ_definition_get(ctx, key, &out));
    json_object *d = json_tokener_parse(out);
    char *name = strdup(json_object_get_string(json_object_object_get(d, "name")));
    json_object_put(d);
    integ_free(out);
    return name;
}

static void test_definition_cache(void)
{
    char path[] = "integ-defcache-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    char opts[256];
    snprintf(opts, sizeof opts, "{\"store\":\"sqlite:%s\",\"master_key\":\"" TEST_MASTER_KEY "\"}", path);
    integ_ctx *a = NULL, *b = NULL;
    CHECK_OK(integ_ctx_open(&a, opts));
    CHECK_OK(integ_ctx_open(&b, opts));
    char *first = NULL, *again = NULL;
    CHECK_OK(integ_definition_get(a, "hubspot-crm", &first));
    CHECK_OK(integ_definition_get(a, "hubspot-crm", &again));
    CHECK_STR(again, first); /* the cached form is the made one */
    CHECK(strstr(first, "\"has_app_credentials\":false") != NULL);
    integ_free(again);
    /* Another context changes the record: this one sees it. */
    CHECK_OK(integ_definition_set_app_credentials(b, "hubspot-crm", "{\"client_id\":\"c\",\"client_secret\":\"s\"}"));
    CHECK_OK(integ_definition_get(a, "hubspot-crm", &again));
    CHECK(strstr(again, "\"has_app_credentials\":true") != NULL);
    integ_free(again);
    json_object *m = manifest_of(a, "hubspot-crm");
    json_object_object_add(m, "key", json_object_new_string("acme-crm"));
    json_object_object_add(m, "name", json_object_new_string("Acme 1"));
    CHECK_OK(integ_definition_register(b, json_object_to_json_string(m), NULL));
    char *name = def_name(a, "acme-crm");
    CHECK_STR(name, "Acme 1");
    free(name);
    json_object_object_add(m, "name", json_object_new_string("Acme 2"));
    CHECK_OK(integ_definition_register(b, json_object_to_json_string(m), NULL));
    name = def_name(a, "acme-crm");
    CHECK_STR(name, "Acme 2");
    free(name);
    /* More definitions than the cache holds. */
    int extra = IG_DEF_CACHE_MAX + 6;
    for (int i = 0; i < extra; i++) {
        char key[32], nm[32];
        snprintf(key, sizeof key, "many%02d-crm", i);
        snprintf(nm, sizeof nm, "Many %d", i);
        json_object_object_add(m, "key", json_object_new_string(key));
        json_object_object_add(m, "name", json_object_new_string(nm));
        CHECK_OK(integ_definition_register(a, json_object_to_json_string(m), NULL));
    }
    char *list1 = NULL, *list2 = NULL;
    CHECK_OK(integ_definitions_list(a, "{\"limit\":1000}", &list1));
    CHECK_OK(integ_definitions_list(a, "{\"limit\":1000}", &list2));
    CHECK_STR(list2, list1);
    json_object *arr = json_tokener_parse(list1);
    CHECK(arr && json_object_array_length(arr) == (size_t)(15 + 1 + extra));
    int seen = 0;
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *d = json_object_array_get_idx(arr, i);
        const char *k = json_object_get_string(json_object_object_get(d, "key"));
        int n = -1;
        if (sscanf(k, "many%d-crm", &n) == 1) {
            char nm[32];
            snprintf(nm, sizeof nm, "Many %d", n);
            CHECK_STR(json_object_get_string(json_object_object_get(d, "name")), nm);
            seen++;
        }
    }
    CHECK(seen == extra);
    json_object_put(arr);
    for (int i = 0; i < extra; i += 7) {
        char key[32], nm[32];
        snprintf(key, sizeof key, "many%02d-crm", i);
        snprintf(nm, sizeof nm, "Many %d", i);
        name = def_name(b, key);
        CHECK_STR(name, nm);
        free(name);
    }
    integ_free(list1);
    integ_free(list2);
    integ_free(first);
    json_object_put(m);
    integ_ctx_close(b);
    integ_ctx_close(a);
    unlink(path);
}

static void test_adapters_dir(void)
{
    integ_ctx *ctx = open_mem();
    json_object *m = manifest_of(ctx, "pipedrive-crm");
    integ_ctx_close(ctx);
    char dir[] = "/tmp/integ-adapters-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[512];
    json_object_object_add(m, "name", json_object_new_string("Pipedrive (custom)"));
    snprintf(path, sizeof path, "%s/pipedrive-crm.json", dir);
    CHECK(json_object_to_file(path, m) == 0);
    char opts[512];
    snprintf(opts, sizeof opts,
             "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\",\"adapters_dir\":\"%s\"}", dir);
    CHECK_OK(integ_ctx_open(&ctx, opts));
    char *out = NULL;
    CHECK_OK(integ_definition_get(ctx, "pipedrive-crm", &out));
    CHECK(strstr(out, "Pipedrive (custom)") != NULL);
    integ_free(out);
    integ_ctx_close(ctx);
    /* A broken file fails the open and names the file. */
    snprintf(path, sizeof path, "%s/zz-broken.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"key\": ", f);
    fclose(f);
    CHECK_RC(integ_ctx_open(&ctx, opts), INTEG_EINVAL);
    CHECK_MSG("zz-broken.json");
    unlink(path);
    json_object_object_add(m, "capabilities", json_object_new_string("pull"));
    snprintf(path, sizeof path, "%s/pipedrive-crm.json", dir);
    json_object_to_file(path, m);
    CHECK_RC(integ_ctx_open(&ctx, opts), INTEG_EINVAL);
    CHECK_MSG("pipedrive-crm.json");
    CHECK_MSG("capabilities");
    unlink(path);
    rmdir(dir);
    json_object_put(m);
}

static char *name_of(integ_ctx *ctx, const char *key)
{
    char *out = NULL, *name = NULL;
    if (integ_definition_get(ctx, key, &out) != INTEG_OK)
        return strdup("?");
    json_object *d = json_tokener_parse(out);
    integ_free(out);
    name = strdup(json_object_get_string(json_object_object_get(d, "name")));
    json_object_put(d);
    return name;
}

#define CHECK_NAME(ctx, key, want)             \
    do {                                       \
        char *n_ = name_of(ctx, key);          \
        CHECK_STR(n_, want);                   \
        free(n_);                              \
    } while (0)

/* Precedence across opens of one file-backed store (doc/manifest.md): a
 * registration survives every open without adapters_dir; an adapters_dir
 * file wins at the open that has it and stays after the option is dropped;
 * a stored built-in is still replaced by the library's own. */
static void test_catalog_precedence(void)
{
    char dir[] = "/tmp/integ-prec-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char db[600], opts[1400], opts_dir[1400], path[600];
    snprintf(db, sizeof db, "%s/store.db", dir);
    snprintf(opts, sizeof opts, "{\"store\":\"sqlite:%s\",\"master_key\":\"" TEST_MASTER_KEY "\"}", db);
    snprintf(opts_dir, sizeof opts_dir,
             "{\"store\":\"sqlite:%s\",\"master_key\":\"" TEST_MASTER_KEY "\",\"adapters_dir\":\"%s/adapters\"}",
             db, dir);
    integ_ctx *ctx = NULL;
    CHECK_OK(integ_ctx_open(&ctx, opts));
    if (!ctx)
        return;
    json_object *hub = manifest_of(ctx, "hubspot-crm");
    json_object *pipe = manifest_of(ctx, "pipedrive-crm");
    char *pipe_builtin = name_of(ctx, "pipedrive-crm");
    json_object_object_add(hub, "name", json_object_new_string("HubSpot (registered)"));
    CHECK_OK(integ_definition_register(ctx, json_object_to_json_string(hub), NULL));
    CHECK_OK(integ_definition_set_app_credentials(ctx, "hubspot-crm", "{\"client_id\":\"cid\",\"client_secret\":\"s\"}"));
    char *out = NULL;
    CHECK_OK(integ_definition_get(ctx, "hubspot-crm", &out));
    json_object *d = json_tokener_parse(out);
    integ_free(out);
    char id[64];
    snprintf(id, sizeof id, "%s", json_object_get_string(json_object_object_get(d, "id")));
    json_object_put(d);
    integ_ctx_close(ctx);

    /* Reopened (as another process would): the registration stands. */
    CHECK_OK(integ_ctx_open(&ctx, opts));
    CHECK_NAME(ctx, "hubspot-crm", "HubSpot (registered)");
    CHECK_NAME(ctx, "pipedrive-crm", pipe_builtin);
    CHECK_OK(integ_definition_get(ctx, "hubspot-crm", &out));
    CHECK(out && strstr(out, id) && strstr(out, "\"has_app_credentials\":true"));
    integ_free(out);
    integ_ctx_close(ctx);

    /* An adapters_dir file replaces a registration and a built-in... */
    snprintf(path, sizeof path, "%s/adapters", dir);
    CHECK(mkdir(path, 0700) == 0);
    json_object_object_add(hub, "name", json_object_new_string("HubSpot (dir)"));
    json_object_object_add(pipe, "name", json_object_new_string("Pipedrive (dir)"));
    snprintf(path, sizeof path, "%s/adapters/hubspot-crm.json", dir);
    CHECK(json_object_to_file(path, hub) == 0);
    snprintf(path, sizeof path, "%s/adapters/pipedrive-crm.json", dir);
    CHECK(json_object_to_file(path, pipe) == 0);
    CHECK_OK(integ_ctx_open(&ctx, opts_dir));
    CHECK_NAME(ctx, "hubspot-crm", "HubSpot (dir)");
    CHECK_NAME(ctx, "pipedrive-crm", "Pipedrive (dir)");
    integ_ctx_close(ctx);
    /* ... and stays when the store is opened without the option. */
    CHECK_OK(integ_ctx_open(&ctx, opts));
    CHECK_NAME(ctx, "hubspot-crm", "HubSpot (dir)");
    CHECK_NAME(ctx, "pipedrive-crm", "Pipedrive (dir)");
    /* A registration replaces an adapters_dir definition until the next
     * open with the directory. */
    json_object_object_add(hub, "name", json_object_new_string("HubSpot (registered 2)"));
    CHECK_OK(integ_definition_register(ctx, json_object_to_json_string(hub), NULL));
    integ_ctx_close(ctx);
    CHECK_OK(integ_ctx_open(&ctx, opts));
    CHECK_NAME(ctx, "hubspot-crm", "HubSpot (registered 2)");
    integ_ctx_close(ctx);
    CHECK_OK(integ_ctx_open(&ctx, opts_dir));
    CHECK_NAME(ctx, "hubspot-crm", "HubSpot (dir)");
    CHECK_OK(integ_definition_get(ctx, "hubspot-crm", &out));
    CHECK(out && strstr(out, id) && strstr(out, "\"has_app_credentials\":true"));
    integ_free(out);
    integ_ctx_close(ctx);

    /* A stored built-in that differs from the library's (an older library
     * wrote it; a record without "source" predates sources) is updated at
     * open, keeping its id. */
    sqlite3 *sdb = NULL;
    CHECK(sqlite3_open(db, &sdb) == SQLITE_OK);
    CHECK(sqlite3_exec(sdb,
                       "UPDATE integration_definitions SET data = json_set(data, '$.manifest.name', 'Old Shopify') "
                       "WHERE key = 'shopify-ecommerce';"
                       "UPDATE integration_definitions SET data = json_remove(json_set(data, "
                       "'$.manifest.name', 'Old Xledger'), '$.source') WHERE key = 'xledger-accounting';",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(sdb);
    CHECK_OK(integ_ctx_open(&ctx, opts));
    CHECK_NAME(ctx, "shopify-ecommerce", "Shopify");
    CHECK_NAME(ctx, "xledger-accounting", "Xledger");
    CHECK_NAME(ctx, "hubspot-crm", "HubSpot (dir)");
    integ_ctx_close(ctx);
    unlink(path);
    snprintf(path, sizeof path, "%s/adapters/hubspot-crm.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/adapters", dir);
    rmdir(path);
    free(pipe_builtin);
    json_object_put(hub);
    json_object_put(pipe);
    char wal[640];
    snprintf(wal, sizeof wal, "%s-wal", db);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", db);
    unlink(wal);
    unlink(db);
    rmdir(dir);
}

int main(void)
{
    RUN(test_version_and_strerror);
    RUN(test_open_requires_key);
    RUN(test_master_key_text_dropped);
    RUN(test_durability_option);
    RUN(test_bad_options);
    RUN(test_errmsg_thread_local);
    RUN(test_sessions);
    RUN(test_ctx_closed_before_sessions);
    RUN(test_permissions);
    RUN(test_catalog);
    RUN(test_register);
    RUN(test_app_credentials);
    RUN(test_definition_cache);
    RUN(test_adapters_dir);
    RUN(test_catalog_precedence);
    TEST_END();
}
