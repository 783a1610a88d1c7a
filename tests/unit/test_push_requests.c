/* The write side of the REST engine (lib/adapter_write.c, doc/push.md)
 * against the sandbox (tools/sandbox), through the real manifests of
 * HubSpot, Shopify, Pipedrive and Dynamics: create, update and delete with
 * server-side updated-at; HubSpot batches (chunking, per-item errors, the
 * split of a refused chunk, upsert, archive); lookups; the retry rule for
 * non-idempotent writes; 401 and 429.
 *
 *   test_push_requests SANDBOX_BINARY */
#include <curl/curl.h>
#include <arpa/inet.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx.h"
#include "engine.h"
#include "manifest.h"
#include "template.h"
#include "sandbox_proc.h"
#include "test.h"

#define TOKEN SANDBOX_TOKEN

static const char *sandbox_bin;

/* ---- the sandbox ---------------------------------------------------------------- */

static int sb_start(struct sandbox *sb, const char *records)
{
    const char *args[] = {"--records", records, NULL};
    return sandbox_spawn(sb, sandbox_bin, args);
}

struct buf {
    char *p;
    size_t n;
};

static size_t collect(char *p, size_t s, size_t n, void *u)
{
    struct buf *b = u;
    char *q = realloc(b->p, b->n + s * n + 1);
    if (!q)
        return 0;
    memcpy(q + b->n, p, s * n);
    b->n += s * n;
    q[b->n] = '\0';
    b->p = q;
    return s * n;
}

/* The control API: POST json (or GET when json is NULL); the reply parsed. */
static json_object *sb_control(struct sandbox *sb, const char *path, const char *json)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", sb->url, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    struct buf b = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (json)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    json_object *o = rc == CURLE_OK && status < 300 && b.p ? json_tokener_parse(b.p) : NULL;
    free(b.p);
    return o;
}

static void sb_faults(struct sandbox *sb, const char *faults)
{
    char body[256];
    snprintf(body, sizeof body, "{\"faults\":\"%s\"}", faults);
    json_object *o = sb_control(sb, "/_sandbox/config", body);
    CHECK(o != NULL);
    json_object_put(o);
}

/* Requests the sandbox saw for "METHOD /path" (ids folded into {id}). */
static int64_t sb_count(struct sandbox *sb, const char *route)
{
    json_object *st = sb_control(sb, "/_sandbox/stats", NULL);
    int64_t n = json_object_get_int64(json_object_object_get(json_object_object_get(st, "by_path"), route));
    json_object_put(st);
    return n;
}

/* ---- an injected clock: sleeping advances time ------------------------------------- */

static _Atomic int64_t fake_now = 1750000000000;
static int64_t fk_now(void *p) { (void)p; return fake_now; }
static void fk_sleep(void *p, int64_t ms) { (void)p; fake_now += ms; }
static uint32_t fk_rand(void *p) { (void)p; return 0x40000000u; }
static const ig_clock fake_clock = {fk_now, fk_sleep, fk_rand, NULL};

/* ---- a context with one integration, and its connection ------------------------------- */

struct env {
    integ_ctx *ctx;
    integ_session *s;
    ig_conn *c;
    char id[64];
};

static const char *const TAIL_HUBSPOT = "\"credentials\":{\"api_key\":\"" TOKEN "\"}";
static const char *const TAIL_SHOPIFY =
    "\"credentials\":{\"api_key\":\"" TOKEN "\"},\"config\":{\"shop\":\"acme.myshopify.com\"}";
static const char *const TAIL_PIPEDRIVE = "\"credentials\":{\"api_key\":\"" TOKEN "\"}";
static const char *const TAIL_DYNAMICS =
    "\"auth_type\":\"oauth2\",\"credentials\":{\"access_token\":\"" TOKEN "\"},"
    "\"config\":{\"org_url\":\"https://acme.crm4.dynamics.com\",\"tenant\":\"acme.onmicrosoft.com\"}";

static int env_open_opts(struct env *e, struct sandbox *sb, const char *key, const char *tail, long timeout_ms)
{
    memset(e, 0, sizeof *e);
    char opts[1024];
    snprintf(opts, sizeof opts,
             "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\","
             "\"http\":{\"allow_private_networks\":true,\"max_retries\":4,\"timeout_ms\":%ld},"
             "\"base_url_overrides\":{\"hubspot-crm\":\"%s/hubspot\",\"shopify-ecommerce\":\"%s/shopify/admin/api/2025-01\","
             "\"pipedrive-crm\":\"%s/pipedrive/api/v2\",\"dynamics-erp\":\"%s/dynamics/api/data/v9.2\"}}",
             timeout_ms, sb->url, sb->url, sb->url, sb->url);
    if (integ_ctx_open(&e->ctx, opts) != INTEG_OK)
        return -1;
    ig_ctx_set_clock(e->ctx, &fake_clock);
    integ_session_open(&e->s, e->ctx, "acme", "alice", "[\"admin\"]");
    char req[512], *out = NULL;
    snprintf(req, sizeof req, "{\"integration_definition_id\":\"%s\",%s}", key, tail);
    if (integ_integration_create(e->s, req, &out) != INTEG_OK) {
        fprintf(stderr, "  create %s: %s\n", key, integ_errmsg());
        return -1;
    }
    json_object *o = json_tokener_parse(out);
    snprintf(e->id, sizeof e->id, "%s", json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    integ_free(out);
    if (ig_conn_open(e->ctx, "acme", e->id, &e->c) != INTEG_OK) {
        fprintf(stderr, "  conn %s: %s\n", key, integ_errmsg());
        return -1;
    }
    return 0;
}

static int env_open(struct env *e, struct sandbox *sb, const char *key, const char *tail)
{
    return env_open_opts(e, sb, key, tail, 5000);
}

static void env_close(struct env *e)
{
    ig_conn_close(e->c);
    integ_session_close(e->s);
    integ_ctx_close(e->ctx);
}

static json_object *J(const char *text)
{
    json_object *o = json_tokener_parse(text);
    if (!o)
        fprintf(stderr, "  bad JSON in test: %s\n", text);
    return o;
}

static const char *rec_id(json_object *rec, const char *id_field, char *buf, size_t cap)
{
    return rec && ig_record_id(rec, id_field, buf, cap) == 0 ? buf : NULL;
}

/* A value at a dotted path ("properties.email"). */
static const char *at(json_object *rec, const char *path)
{
    char jp[200];
    snprintf(jp, sizeof jp, "$.%s", path);
    json_object *v = ig_jsonpath_get(rec, jp);
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* ---- create, update, delete on every system -------------------------------------------- */

struct crud_case {
    const char *key, *tail, *entity, *id_field, *updated_field;
    const char *create, *update;     /* remote records */
    const char *field, *want_create, *want_update; /* a field that shows the write */
    const char *route_create;        /* for the request count */
};

static void crud_one(struct sandbox *sb, const struct crud_case *k)
{
    struct env e;
    if (env_open(&e, sb, k->key, k->tail)) {
        CHECK(!"env_open");
        return;
    }
    json_object *rec = J(k->create), *out = NULL, *got = NULL;
    int64_t before = sb_count(sb, k->route_create);
    CHECK_OK(ig_rest_create(e.c, k->entity, rec, &out));
    CHECK(sb_count(sb, k->route_create) == before + 1);
    char id[128];
    const char *rid = rec_id(out, k->id_field, id, sizeof id);
    if (!rid)
        fprintf(stderr, "  %s create: %s\n", k->key, out ? json_object_to_json_string(out) : "(null)");
    CHECK(rid != NULL);
    int64_t t_create = out ? ig_remote_time_ms(json_object_object_get(out, k->updated_field), NULL) : -1;
    CHECK(t_create > 1700000000000); /* server-side updated-at, now */
    json_object_put(out);
    json_object_put(rec);
    if (!rid) {
        env_close(&e);
        return;
    }
    /* The sandbox has it. */
    CHECK_OK(ig_rest_fetch_one(e.c, k->entity, rid, &got));
    CHECK_STR(at(got, k->field), k->want_create);
    int64_t t_got = got ? ig_remote_time_ms(json_object_object_get(got, k->updated_field), NULL) : -2;
    CHECK(t_got == t_create);
    json_object_put(got);
    got = NULL;

    /* Update: changed, and updated-at moves forward. */
    rec = J(k->update);
    out = NULL;
    CHECK_OK(ig_rest_update(e.c, k->entity, rid, rec, &out));
    CHECK(out != NULL); /* every one of the four answers with (or is read back to) the record */
    int64_t t_update = out ? ig_remote_time_ms(json_object_object_get(out, k->updated_field), NULL) : -1;
    CHECK(t_update > t_create);
    json_object_put(out);
    json_object_put(rec);
    CHECK_OK(ig_rest_fetch_one(e.c, k->entity, rid, &got));
    CHECK_STR(at(got, k->field), k->want_update);
    json_object_put(got);
    got = NULL;

    /* Update of an unknown id is ENOTFOUND, not a create. */
    rec = J(k->update);
    out = NULL;
    const char *unknown = !strcmp(k->key, "dynamics-erp") ? "00000000-0000-0000-0000-0000deadbeef" : "999999999999";
    int rc = ig_rest_update(e.c, k->entity, unknown, rec, &out);
    CHECK(rc == INTEG_ENOTFOUND);
    CHECK(out == NULL);
    json_object_put(rec);

    /* Delete: gone; deleting again is fine. */
    CHECK_OK(ig_rest_delete(e.c, k->entity, rid));
    CHECK_RC(ig_rest_fetch_one(e.c, k->entity, rid, &got), INTEG_ENOTFOUND);
    CHECK(got == NULL);
    CHECK_OK(ig_rest_delete(e.c, k->entity, rid));
    env_close(&e);
}

static void test_crud_all_systems(void)
{
    struct sandbox sb;
    if (sb_start(&sb, "all=5")) {
        CHECK(!"sandbox start");
        return;
    }
    static const struct crud_case cases[] = {
        {"hubspot-crm", NULL, "contacts", "id", "updatedAt",
         "{\"properties\":{\"email\":\"ann@push.test\",\"firstname\":\"Ann\",\"lastname\":\"Lee\"}}",
         "{\"properties\":{\"firstname\":\"Anna\"}}", "properties.firstname", "Ann", "Anna",
         "POST /hubspot/crm/v3/objects/contacts"},
        {"shopify-ecommerce", NULL, "customers", "id", "updated_at",
         "{\"email\":\"ann@push.test\",\"first_name\":\"Ann\",\"last_name\":\"Lee\"}",
         "{\"first_name\":\"Anna\"}", "first_name", "Ann", "Anna",
         "POST /shopify/admin/api/2025-01/customers.json"},
        {"pipedrive-crm", NULL, "persons", "id", "update_time",
         "{\"name\":\"Ann Lee\",\"first_name\":\"Ann\",\"last_name\":\"Lee\",\"emails\":[{\"value\":\"ann@push.test\",\"primary\":true,\"label\":\"work\"}]}",
         "{\"name\":\"Anna Lee\"}", "name", "Ann Lee", "Anna Lee", "POST /pipedrive/api/v2/persons"},
        {"dynamics-erp", NULL, "contacts", "contactid", "modifiedon",
         "{\"firstname\":\"Ann\",\"lastname\":\"Lee\",\"emailaddress1\":\"ann@push.test\"}",
         "{\"firstname\":\"Anna\"}", "firstname", "Ann", "Anna",
         "POST /dynamics/api/data/v9.2/contacts"},
    };
    const char *tails[] = {TAIL_HUBSPOT, TAIL_SHOPIFY, TAIL_PIPEDRIVE, TAIL_DYNAMICS};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct crud_case k = cases[i];
        k.tail = tails[i];
        crud_one(&sb, &k);
    }
    sandbox_stop(&sb);
}

/* Dataverse without Prefer: return=representation answers 204 and
 * OData-EntityId; the engine reads the id there and the record back. */
static void test_dynamics_entity_id_header(void)
{
    struct sandbox sb;
    if (sb_start(&sb, "all=5")) {
        CHECK(!"sandbox start");
        return;
    }
    struct env e;
    if (env_open(&e, &sb, "dynamics-erp", TAIL_DYNAMICS)) {
        CHECK(!"env_open");
        sandbox_stop(&sb);
        return;
    }
    /* The connection borrows its manifest: point it at a copy without the
     * Prefer headers for this test. */
    json_object *orig = e.c->manifest, *m = NULL;
    json_object_deep_copy(orig, &m, NULL);
    json_object *acc = json_object_object_get(json_object_object_get(m, "entities"), "accounts");
    json_object_object_del(json_object_object_get(acc, "create"), "headers");
    json_object_object_add(json_object_object_get(acc, "update"), "headers", J("{\"If-Match\":\"*\"}"));
    e.c->manifest = m;
    json_object *rec = J("{\"name\":\"Contoso Push\",\"telephone1\":\"+47 1234\"}"), *out = NULL;
    CHECK_OK(ig_rest_create(e.c, "accounts", rec, &out));
    char id[128];
    const char *rid = rec_id(out, "accountid", id, sizeof id);
    CHECK(rid != NULL);
    CHECK_STR(at(out, "name"), "Contoso Push"); /* read back through get */
    CHECK(sb_count(&sb, "GET /dynamics/api/data/v9.2/accounts({id})") == 1);
    json_object_put(out);
    json_object_put(rec);
    out = NULL;
    rec = J("{\"name\":\"Contoso Pushed\"}");
    if (rid) {
        CHECK_OK(ig_rest_update(e.c, "accounts", rid, rec, &out));
        CHECK_STR(at(out, "name"), "Contoso Pushed"); /* 204: read back */
    }
    json_object_put(out);
    json_object_put(rec);
    e.c->manifest = orig;
    json_object_put(m);
    env_close(&e);
    sandbox_stop(&sb);
}

/* ---- HubSpot batches ----------------------------------------------------------------------- */

static json_object *result_at(json_object *results, size_t i) { return json_object_array_get_idx(results, i); }

static int item_code(json_object *item)
{
    json_object *err = json_object_object_get(item, "error");
    return err ? json_object_get_int(json_object_object_get(err, "code")) : 0;
}

static void test_hubspot_batch(void)
{
    struct sandbox sb;
    if (sb_start(&sb, "hubspot:contacts=10")) {
        CHECK(!"sandbox start");
        return;
    }
    struct env e;
    if (env_open(&e, &sb, "hubspot-crm", TAIL_HUBSPOT)) {
        CHECK(!"env_open");
        sandbox_stop(&sb);
        return;
    }
    /* 250 creates: three requests (100, 100, 50), results aligned. */
    json_object *in = json_object_new_array(), *results = NULL;
    for (int i = 0; i < 250; i++) {
        char t[200];
        snprintf(t, sizeof t, "{\"properties\":{\"email\":\"b%d@push.test\",\"firstname\":\"B%d\"}}", i, i);
        json_object *item = NULL, *rec = J(t);
        CHECK_OK(ig_rest_batch_item(e.c, "contacts", "create", NULL, rec, &item));
        json_object_array_add(in, item);
        json_object_put(rec);
    }
    CHECK_OK(ig_rest_batch(e.c, "contacts", "create", in, &results));
    CHECK(sb_count(&sb, "POST /hubspot/crm/v3/objects/contacts/batch/create") == 3);
    CHECK(json_object_array_length(results) == 250);
    char ids[250][32];
    int aligned = 0;
    for (int i = 0; i < 250; i++) {
        char want[64];
        snprintf(want, sizeof want, "b%d@push.test", i);
        json_object *r = result_at(results, (size_t)i);
        ids[i][0] = '\0';
        if (item_code(r) == 0 && at(r, "properties.email") && !strcmp(at(r, "properties.email"), want) &&
            rec_id(r, "id", ids[i], sizeof ids[i]))
            aligned++;
    }
    CHECK(aligned == 250);
    json_object_put(results);
    json_object_put(in);

    /* 250 updates, one of them an unknown id: 207 in its chunk, a
     * per-item error; the other 249 are updated. Still three requests. */
    in = json_object_new_array();
    for (int i = 0; i < 250; i++) {
        char t[200];
        snprintf(t, sizeof t, "{\"properties\":{\"firstname\":\"C%d\"}}", i);
        json_object *item = NULL, *rec = J(t);
        CHECK_OK(ig_rest_batch_item(e.c, "contacts", "update", i == 137 ? "999999999" : ids[i], rec, &item));
        json_object_array_add(in, item);
        json_object_put(rec);
    }
    results = NULL;
    CHECK_OK(ig_rest_batch(e.c, "contacts", "update", in, &results));
    CHECK(sb_count(&sb, "POST /hubspot/crm/v3/objects/contacts/batch/update") == 3);
    int updated = 0;
    for (int i = 0; i < 250; i++) {
        json_object *r = result_at(results, (size_t)i);
        char want[16], got[32];
        snprintf(want, sizeof want, "C%d", i);
        if (i == 137) {
            CHECK(item_code(r) == INTEG_ENOTFOUND);
            continue;
        }
        if (item_code(r) == 0 && at(r, "properties.firstname") && !strcmp(at(r, "properties.firstname"), want) &&
            rec_id(r, "id", got, sizeof got) && !strcmp(got, ids[i]))
            updated++;
    }
    CHECK(updated == 249);
    json_object_put(results);
    json_object_put(in);
    json_object *one = NULL;
    CHECK_OK(ig_rest_fetch_one(e.c, "contacts", ids[200], &one));
    CHECK_STR(at(one, "properties.firstname"), "C200");
    json_object_put(one);

    /* A chunk refused as a whole (400: one malformed input) is halved until
     * the bad item is alone: it gets the error, the other nine are created. */
    int64_t before = sb_count(&sb, "POST /hubspot/crm/v3/objects/contacts/batch/create");
    in = json_object_new_array();
    for (int i = 0; i < 10; i++) {
        char t[200];
        if (i == 3)
            snprintf(t, sizeof t, "{\"properties\":\"not an object\"}");
        else
            snprintf(t, sizeof t, "{\"properties\":{\"email\":\"v%d@push.test\"}}", i);
        json_object_array_add(in, J(t));
    }
    results = NULL;
    CHECK_OK(ig_rest_batch(e.c, "contacts", "create", in, &results));
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        json_object *r = result_at(results, (size_t)i);
        char want[64];
        snprintf(want, sizeof want, "v%d@push.test", i);
        if (i == 3)
            CHECK(item_code(r) == INTEG_EREMOTE);
        else if (item_code(r) == 0 && at(r, "properties.email") && !strcmp(at(r, "properties.email"), want))
            ok++;
    }
    CHECK(ok == 9);
    int64_t sent = sb_count(&sb, "POST /hubspot/crm/v3/objects/contacts/batch/create") - before;
    CHECK(sent > 1 && sent <= 9); /* 1 + the halvings down to the bad item */
    json_object_put(results);
    json_object_put(in);

    /* Upsert by email: an existing contact is updated, a new one created;
     * never a duplicate. */
    in = json_object_new_array();
    const char *keys[] = {"b5@push.test", "u-new@push.test"};
    for (int i = 0; i < 2; i++) {
        char t[200];
        snprintf(t, sizeof t, "{\"properties\":{\"email\":\"%s\",\"lastname\":\"Upserted\"}}", keys[i]);
        json_object *item = NULL, *rec = J(t);
        CHECK_OK(ig_rest_batch_item(e.c, "contacts", "upsert", keys[i], rec, &item));
        CHECK_STR(json_object_get_string(json_object_object_get(item, "idProperty")), "email");
        json_object_array_add(in, item);
        json_object_put(rec);
    }
    results = NULL;
    CHECK_OK(ig_rest_batch(e.c, "contacts", "upsert", in, &results));
    char uid[32];
    CHECK(item_code(result_at(results, 0)) == 0);
    CHECK_STR(rec_id(result_at(results, 0), "id", uid, sizeof uid), ids[5]);
    CHECK(json_object_get_boolean(json_object_object_get(result_at(results, 0), "new")) == 0);
    CHECK(json_object_get_boolean(json_object_object_get(result_at(results, 1), "new")) == 1);
    json_object_put(results);
    results = NULL;
    CHECK_OK(ig_rest_batch(e.c, "contacts", "upsert", in, &results)); /* again: nothing new */
    CHECK(json_object_get_boolean(json_object_object_get(result_at(results, 1), "new")) == 0);
    json_object_put(results);
    json_object_put(in);

    /* Batch archive (delete): gone. */
    in = json_object_new_array();
    for (int i = 0; i < 3; i++) {
        json_object *item = NULL, *rec = json_object_new_object();
        CHECK_OK(ig_rest_batch_item(e.c, "contacts", "delete", ids[i], rec, &item));
        json_object_array_add(in, item);
        json_object_put(rec);
    }
    results = NULL;
    CHECK_OK(ig_rest_batch(e.c, "contacts", "delete", in, &results));
    for (int i = 0; i < 3; i++) {
        CHECK(item_code(result_at(results, (size_t)i)) == 0);
        one = NULL;
        CHECK_RC(ig_rest_fetch_one(e.c, "contacts", ids[i], &one), INTEG_ENOTFOUND);
    }
    json_object_put(results);
    json_object_put(in);

    /* Arguments; an op the manifest lacks. */
    results = NULL;
    in = J("[{\"name\":\"x\"}]");
    CHECK_RC(ig_rest_batch(e.c, "contacts", "merge", in, &results), INTEG_EINVAL);
    CHECK(results == NULL);
    CHECK_RC(ig_rest_batch(e.c, "deals", "upsert", in, &results), INTEG_EUNSUPPORTED);
    CHECK(results == NULL);
    json_object_put(in);
    in = J("[]");
    CHECK_OK(ig_rest_batch(e.c, "contacts", "create", in, &results));
    CHECK(results && json_object_array_length(results) == 0);
    json_object_put(results);
    json_object_put(in);
    env_close(&e);
    sandbox_stop(&sb);
}

/* ---- lookup ----------------------------------------------------------------------------------- */

static void test_lookup(void)
{
    struct sandbox sb;
    if (sb_start(&sb, "all=5")) {
        CHECK(!"sandbox start");
        return;
    }
    struct env e;
    if (env_open(&e, &sb, "hubspot-crm", TAIL_HUBSPOT)) {
        CHECK(!"env_open");
        sandbox_stop(&sb);
        return;
    }
    json_object *rec = J("{\"properties\":{\"email\":\"Find.Me@push.test\",\"firstname\":\"Fin\"}}"), *out = NULL;
    CHECK_OK(ig_rest_create(e.c, "contacts", rec, &out));
    char id[32], fid[32];
    const char *rid = rec_id(out, "id", id, sizeof id);
    json_object_put(out);
    json_object_put(rec);
    json_object *found = NULL;
    CHECK_OK(ig_rest_find(e.c, "contacts", "email", "Find.Me@push.test", &found));
    CHECK(found != NULL);
    CHECK(rid && rec_id(found, "id", fid, sizeof fid) && !strcmp(fid, rid));
    CHECK_STR(at(found, "properties.firstname"), "Fin");
    json_object_put(found);
    found = NULL;
    /* By the remote field name too. */
    CHECK_OK(ig_rest_find(e.c, "contacts", "properties.email", "Find.Me@push.test", &found));
    CHECK(found != NULL);
    json_object_put(found);
    found = (json_object *)1;
    CHECK_OK(ig_rest_find(e.c, "contacts", "email", "nobody@push.test", &found));
    CHECK(found == NULL);
    /* A generated record is found by its e-mail as well. */
    json_object *g = NULL;
    CHECK_OK(ig_rest_fetch_one(e.c, "contacts", "1003", &g));
    const char *gmail = at(g, "properties.email");
    found = NULL;
    if (gmail) {
        CHECK_OK(ig_rest_find(e.c, "contacts", "email", gmail, &found));
        CHECK(found && rec_id(found, "id", fid, sizeof fid) && !strcmp(fid, "1003"));
    }
    json_object_put(found);
    json_object_put(g);
    /* An id is data, escaped whole: the sandbox decodes the path once and
     * sees the id as it was given. Unescaped, "%41" would arrive as "A"
     * and the '/' would start a new segment on a real server. */
    g = (json_object *)1;
    CHECK_RC(ig_rest_fetch_one(e.c, "contacts", "a%41/b?c#d", &g), INTEG_ENOTFOUND);
    CHECK(g == NULL);
    CHECK(sb_count(&sb, "GET /hubspot/crm/v3/objects/contacts/a%41/b?c#d") == 1);
    /* Values never break out of their place (quotes, slashes, braces). */
    found = (json_object *)1;
    CHECK_OK(ig_rest_find(e.c, "contacts", "email", "a\"b/../{x}'@push.test", &found));
    CHECK(found == NULL);
    /* Not by another field; not on an entity without a lookup. */
    found = NULL;
    CHECK_RC(ig_rest_find(e.c, "contacts", "phone", "123", &found), INTEG_EUNSUPPORTED);
    CHECK_RC(ig_rest_find(e.c, "deals", "name", "x", &found), INTEG_EUNSUPPORTED);
    CHECK(found == NULL);
    env_close(&e);

    /* The other three systems' lookups are requests the sandbox does not
     * emulate (search endpoints, $filter on e-mail). Whatever the remote
     * answers, a failed lookup must be an error, never "not found": a
     * caller would create a duplicate on "not found". */
    struct {
        const char *key, *tail, *entity;
    } others[] = {{"shopify-ecommerce", TAIL_SHOPIFY, "customers"},
                  {"pipedrive-crm", TAIL_PIPEDRIVE, "persons"},
                  {"dynamics-erp", TAIL_DYNAMICS, "contacts"}};
    for (size_t i = 0; i < 3; i++) {
        if (env_open(&e, &sb, others[i].key, others[i].tail)) {
            CHECK(!"env_open");
            continue;
        }
        found = NULL;
        int rc = ig_rest_find(e.c, others[i].entity, "email", "o'brien@push.test", &found);
        if (rc == INTEG_OK)
            fprintf(stderr, "  %s lookup answered OK (%s)\n", others[i].key, found ? "found" : "none");
        CHECK(rc != INTEG_OK && rc != INTEG_ENOTFOUND);
        CHECK(strstr(integ_errmsg(), "lookup: HTTP 4") != NULL);
        CHECK(found == NULL);
        json_object_put(found);
        env_close(&e);
    }
    sandbox_stop(&sb);
}

/* ---- the retry rule ----------------------------------------------------------------------------- */

static int64_t live_contacts(struct env *e)
{
    int64_t n = 0;
    json_object *state = NULL;
    for (;;) {
        ig_page p;
        if (ig_rest_list_page(e->c, "contacts", state, -1, &p) != INTEG_OK) {
            json_object_put(state);
            return -1;
        }
        n += (int64_t)json_object_array_length(p.records);
        json_object_put(state);
        state = json_object_get(p.next_state);
        ig_page_free(&p);
        if (!state)
            return n;
    }
}

static void test_retry_rule(void)
{
    struct sandbox sb;
    if (sb_start(&sb, "hubspot:contacts=0")) {
        CHECK(!"sandbox start");
        return;
    }
    struct env e;
    if (env_open(&e, &sb, "hubspot-crm", TAIL_HUBSPOT)) {
        CHECK(!"env_open");
        sandbox_stop(&sb);
        return;
    }
    const char *route = "POST /hubspot/crm/v3/objects/contacts";
    /* error_every=2: requests 2, 6, 10 get 500; 4, 8 get 503. */
    sb_faults(&sb, "error_every=2");
    json_object *got = NULL;
    CHECK_RC(ig_rest_fetch_one(e.c, "contacts", "424242", &got), INTEG_ENOTFOUND); /* 1 */

    /* 500 on a create: the server may have acted, so no retry. */
    json_object *rec = J("{\"properties\":{\"email\":\"r1@push.test\"}}"), *out = NULL;
    CHECK_RC(ig_rest_create(e.c, "contacts", rec, &out), INTEG_EREMOTE); /* 2: 500 */
    CHECK_MSG("HTTP 500");
    CHECK(out == NULL);
    CHECK(sb_count(&sb, route) == 1);
    json_object_put(rec);

    rec = J("{\"properties\":{\"email\":\"r2@push.test\"}}");
    CHECK_OK(ig_rest_create(e.c, "contacts", rec, &out)); /* 3 */
    char id2[32];
    const char *rid2 = rec_id(out, "id", id2, sizeof id2);
    json_object_put(out);
    json_object_put(rec);
    out = NULL;

    /* 503 on a create: the server did not act; sent again, created once. */
    rec = J("{\"properties\":{\"email\":\"r3@push.test\"}}");
    CHECK_OK(ig_rest_create(e.c, "contacts", rec, &out)); /* 4: 503, 5 */
    CHECK(out != NULL);
    CHECK(sb_count(&sb, route) == 4);
    json_object_put(out);
    json_object_put(rec);
    out = NULL;

    /* 500 on an update: idempotent, retried. */
    rec = J("{\"properties\":{\"firstname\":\"Re\"}}");
    if (rid2)
        CHECK_OK(ig_rest_update(e.c, "contacts", rid2, rec, &out)); /* 6: 500, 7 */
    CHECK(sb_count(&sb, "PATCH /hubspot/crm/v3/objects/contacts/{id}") == 2);
    json_object_put(out);
    json_object_put(rec);
    out = NULL;
    sb_faults(&sb, "");
    /* Exactly the two creates the server acted on; the 500'd one is
     * absent, which a lookup tells before it is created again. */
    CHECK(live_contacts(&e) == 2);
    json_object *found = (json_object *)1;
    CHECK_OK(ig_rest_find(e.c, "contacts", "email", "r1@push.test", &found));
    CHECK(found == NULL);
    found = NULL;
    CHECK_OK(ig_rest_find(e.c, "contacts", "email", "r3@push.test", &found));
    CHECK(found != NULL);
    json_object_put(found);

    /* A batch create meets the same rule: 503 sent again, 500 not. */
    sb_faults(&sb, "error_every=1"); /* 1: 500, 2: 503, 3: 500 ... */
    json_object *in = J("[{\"properties\":{\"email\":\"r4@push.test\"}}]"), *results = NULL;
    int64_t before = sb_count(&sb, "POST /hubspot/crm/v3/objects/contacts/batch/create");
    CHECK_OK(ig_rest_batch(e.c, "contacts", "create", in, &results));
    CHECK(item_code(result_at(results, 0)) == INTEG_EREMOTE);
    CHECK(sb_count(&sb, "POST /hubspot/crm/v3/objects/contacts/batch/create") == before + 1);
    json_object_put(results);
    json_object_put(in);
    sb_faults(&sb, "");
    env_close(&e);

    /* A create that times out may have been applied (here it was: the
     * sandbox answers late): not sent again; the lookup finds it. */
    if (env_open_opts(&e, &sb, "hubspot-crm", TAIL_HUBSPOT, 400)) {
        CHECK(!"env_open");
        sandbox_stop(&sb);
        return;
    }
    ig_ctx_set_clock(e.ctx, NULL);
    sb_faults(&sb, "slow_ms=900");
    before = sb_count(&sb, route);
    rec = J("{\"properties\":{\"email\":\"slow@push.test\"}}");
    CHECK_RC(ig_rest_create(e.c, "contacts", rec, &out), INTEG_ENETWORK);
    CHECK(out == NULL);
    json_object_put(rec);
    sb_faults(&sb, "");
    usleep(1000 * 1000); /* the sandbox finishes the late answer */
    CHECK(sb_count(&sb, route) == before + 1);
    found = NULL;
    CHECK_OK(ig_rest_find(e.c, "contacts", "email", "slow@push.test", &found));
    CHECK(found != NULL);
    json_object_put(found);
    /* An update that times out is sent again (idempotent). */
    if (rid2) {
        sb_faults(&sb, "slow_ms=900");
        rec = J("{\"properties\":{\"firstname\":\"Slow\"}}");
        int64_t pb = sb_count(&sb, "PATCH /hubspot/crm/v3/objects/contacts/{id}");
        CHECK_RC(ig_rest_update(e.c, "contacts", rid2, rec, &out), INTEG_ENETWORK);
        sb_faults(&sb, "");
        usleep(1000 * 1000);
        CHECK(sb_count(&sb, "PATCH /hubspot/crm/v3/objects/contacts/{id}") == pb + 5); /* 1 + max_retries */
        json_object_put(rec);
    }
    env_close(&e);
    sandbox_stop(&sb);
}

/* ---- 401 and 429 ------------------------------------------------------------------------------- */

static void test_auth_and_rate_limit(void)
{
    struct sandbox sb;
    if (sb_start(&sb, "hubspot:contacts=0,pipedrive:persons=0")) {
        CHECK(!"sandbox start");
        return;
    }
    struct env e;
    if (env_open(&e, &sb, "hubspot-crm", TAIL_HUBSPOT)) {
        CHECK(!"env_open");
        sandbox_stop(&sb);
        return;
    }
    const char *route = "POST /hubspot/crm/v3/objects/contacts";
    sb_faults(&sb, "unauthorized=1");
    json_object *rec = J("{\"properties\":{\"email\":\"a1@push.test\"}}"), *out = NULL, *results = NULL;
    CHECK_RC(ig_rest_create(e.c, "contacts", rec, &out), INTEG_EAUTH);
    CHECK(out == NULL);
    CHECK(sb_count(&sb, route) == 1);
    CHECK_RC(ig_rest_update(e.c, "contacts", "1001", rec, &out), INTEG_EAUTH);
    CHECK_RC(ig_rest_delete(e.c, "contacts", "1001"), INTEG_EAUTH);
    /* A batch stops at the first 401: every item carries it, one request. */
    json_object *in = json_object_new_array();
    for (int i = 0; i < 150; i++)
        json_object_array_add(in, json_object_get(rec));
    CHECK_RC(ig_rest_batch(e.c, "contacts", "create", in, &results), INTEG_EAUTH);
    CHECK(results && json_object_array_length(results) == 150);
    CHECK(item_code(result_at(results, 0)) == INTEG_EAUTH && item_code(result_at(results, 149)) == INTEG_EAUTH);
    CHECK(sb_count(&sb, "POST /hubspot/crm/v3/objects/contacts/batch/create") == 1);
    json_object_put(results);
    json_object_put(in);

    /* 429 with Retry-After: honoured (the injected clock moves by it),
     * then the create goes through once. */
    sb_faults(&sb, "rate_limit_every=1,retry_after=3");
    int64_t t0 = fake_now;
    int64_t before = sb_count(&sb, route);
    CHECK_RC(ig_rest_create(e.c, "contacts", rec, &out), INTEG_ERATELIMIT); /* every attempt limited */
    CHECK(sb_count(&sb, route) == before + 5);
    CHECK(fake_now - t0 >= 4 * 3000);
    sb_faults(&sb, "rate_limit_every=2,retry_after=2");
    before = sb_count(&sb, route);
    t0 = fake_now;
    CHECK_OK(ig_rest_create(e.c, "contacts", rec, &out)); /* 1: ok */
    json_object_put(out);
    out = NULL;
    json_object_put(rec);
    rec = J("{\"properties\":{\"email\":\"a2@push.test\"}}");
    CHECK_OK(ig_rest_create(e.c, "contacts", rec, &out)); /* 2: 429, 3: ok */
    CHECK(sb_count(&sb, route) == before + 3);
    CHECK(fake_now - t0 >= 2000);
    json_object_put(out);
    out = NULL;
    sb_faults(&sb, "");
    CHECK(live_contacts(&e) == 2);
    json_object_put(rec);
    env_close(&e);
    sandbox_stop(&sb);
}

/* ---- the manifest rules for lookup and {value} ---------------------------------------------------- */

static json_object *builtin(const char *key)
{
    for (size_t i = 0; i < ig_builtin_manifest_count; i++) {
        json_object *m = json_tokener_parse(ig_builtin_manifests[i]);
        const char *k = json_object_get_string(json_object_object_get(m, "key"));
        if (k && !strcmp(k, key))
            return m;
        json_object_put(m);
    }
    return NULL;
}

static void test_manifest_lookup_rules(void)
{
    const char *keys[] = {"hubspot-crm", "shopify-ecommerce", "pipedrive-crm", "dynamics-erp"};
    for (int i = 0; i < 4; i++) {
        json_object *m = builtin(keys[i]);
        CHECK(m != NULL);
        CHECK_OK(ig_manifest_validate(m));
        json_object_put(m);
    }
    json_object *m = builtin("hubspot-crm");
    json_object *contacts = json_object_object_get(json_object_object_get(m, "entities"), "contacts");
    json_object *lk = json_object_object_get(contacts, "lookup");
    /* {value} must be used by the lookup request. */
    json_object *saved = NULL;
    json_object_deep_copy(lk, &saved, NULL);
    json_object_object_add(lk, "request", J("{\"method\":\"GET\",\"path\":\"/crm/v3/objects/contacts\"}"));
    CHECK_RC(ig_manifest_validate(m), INTEG_EINVAL);
    CHECK_MSG("manifest.entities.contacts.lookup.request: must use {value}");
    /* In the path it is fine there. */
    json_object_object_add(lk, "request", J("{\"method\":\"GET\",\"path\":\"/crm/v3/objects/contacts/{value}\","
                                             "\"query\":{\"idProperty\":\"email\"}}"));
    CHECK_OK(ig_manifest_validate(m));
    /* Not in any other request. */
    json_object_object_add(contacts, "lookup", json_object_get(saved));
    json_object_object_add(contacts, "create", J("{\"method\":\"POST\",\"path\":\"/crm/v3/objects/contacts\","
                                                 "\"body\":{\"email\":\"{value}\"}}"));
    CHECK_RC(ig_manifest_validate(m), INTEG_EINVAL);
    CHECK_MSG("manifest.entities.contacts.create: placeholder {value} is only allowed in lookup requests");
    json_object_object_add(contacts, "create", J("{\"method\":\"POST\",\"path\":\"/crm/v3/objects/{value}\"}"));
    CHECK_RC(ig_manifest_validate(m), INTEG_EINVAL);
    CHECK_MSG("placeholder {value} is not allowed here");
    json_object_object_add(contacts, "create", J("{\"method\":\"POST\",\"path\":\"/crm/v3/objects/contacts\",\"body\":\"{record}\"}"));
    CHECK_OK(ig_manifest_validate(m));
    /* Typos and types. */
    lk = json_object_object_get(contacts, "lookup");
    json_object_object_add(lk, "feild", json_object_new_string("email"));
    CHECK_RC(ig_manifest_validate(m), INTEG_EINVAL);
    CHECK_MSG("manifest.entities.contacts.lookup");
    json_object_object_del(lk, "feild");
    json_object_object_add(lk, "value_escape", json_object_new_string("sql"));
    CHECK_RC(ig_manifest_validate(m), INTEG_EINVAL);
    json_object_object_del(lk, "value_escape");
    json_object_object_del(lk, "field");
    CHECK_RC(ig_manifest_validate(m), INTEG_EINVAL);
    CHECK_MSG("manifest.entities.contacts.lookup.field: required");
    json_object_object_add(lk, "field", json_object_new_string("email"));
    json_object_object_del(lk, "request");
    CHECK_RC(ig_manifest_validate(m), INTEG_EINVAL);
    CHECK_MSG("manifest.entities.contacts.lookup.request: required");
    json_object_put(saved);
    json_object_put(m);
}

/* ---- a host C adapter takes the writes ------------------------------------------------------------ */

static int fa_creates, fa_updates, fa_removes;

static int fa_create(void *p, const integ_adapter_call *call, const char *entity, const char *record_json,
                     integ_reply_cb reply, void *rp)
{
    (void)p;
    (void)call;
    (void)entity;
    fa_creates++;
    json_object *o = json_tokener_parse(record_json);
    json_object_object_add(o, "id", json_object_new_int(77));
    const char *s = json_object_to_json_string(o);
    int rc = reply(rp, s, strlen(s));
    json_object_put(o);
    return rc;
}

static int fa_update(void *p, const integ_adapter_call *call, const char *entity, const char *id,
                     const char *record_json, integ_reply_cb reply, void *rp)
{
    (void)p;
    (void)call;
    (void)entity;
    (void)id;
    (void)record_json;
    (void)reply;
    (void)rp;
    fa_updates++;
    return INTEG_OK; /* no reply: allowed */
}

static int fa_remove(void *p, const integ_adapter_call *call, const char *entity, const char *id)
{
    (void)p;
    (void)call;
    (void)entity;
    fa_removes++;
    return !strcmp(id, "gone") ? integ_error_set(INTEG_ENOTFOUND, "no such record") : INTEG_OK;
}

static void test_c_adapter(void)
{
    static const integ_adapter fake = {.version = INTEG_ADAPTER_VERSION,
                                       .create = fa_create,
                                       .update = fa_update,
                                       .remove = fa_remove};
    struct env e;
    memset(&e, 0, sizeof e);
    char opts[512];
    snprintf(opts, sizeof opts, "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\"}");
    if (integ_ctx_open(&e.ctx, opts) != INTEG_OK) {
        CHECK(!"ctx");
        return;
    }
    CHECK_OK(integ_adapter_register(e.ctx, "pipedrive-crm", &fake, NULL));
    integ_session_open(&e.s, e.ctx, "acme", "alice", "[\"admin\"]");
    char *out = NULL;
    CHECK_OK(integ_integration_create(e.s, "{\"integration_definition_id\":\"pipedrive-crm\","
                                           "\"credentials\":{\"api_key\":\"k\"}}", &out));
    json_object *o = json_tokener_parse(out);
    snprintf(e.id, sizeof e.id, "%s", json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    integ_free(out);
    CHECK_OK(ig_conn_open(e.ctx, "acme", e.id, &e.c));
    if (e.c) {
        json_object *rec = J("{\"name\":\"Ann\"}"), *res = NULL;
        CHECK_OK(ig_rest_create(e.c, "persons", rec, &res));
        CHECK(res && json_object_get_int(json_object_object_get(res, "id")) == 77);
        json_object_put(res);
        res = (json_object *)1;
        CHECK_OK(ig_rest_update(e.c, "persons", "77", rec, &res));
        CHECK(res == NULL);
        CHECK_OK(ig_rest_delete(e.c, "persons", "77"));
        CHECK_OK(ig_rest_delete(e.c, "persons", "gone"));
        json_object *in = J("[{\"name\":\"A\"},{\"name\":\"B\"}]");
        res = NULL;
        CHECK_OK(ig_rest_batch(e.c, "persons", "create", in, &res));
        CHECK(res && json_object_array_length(res) == 2 && item_code(result_at(res, 1)) == 0);
        json_object_put(res);
        json_object_put(in);
        CHECK(fa_creates == 3 && fa_updates == 1 && fa_removes == 2);
        json_object_put(rec);
    }
    env_close(&e);
}

/* ---- replacing a C adapter while a connection holds it ------------------------------------------ */

struct lt_adapter {
    char name[8];
    int *destroyed;
};
static int lt_destroyed[3];

static struct lt_adapter *lt_new(const char *name, int *destroyed)
{
    struct lt_adapter *a = calloc(1, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->destroyed = destroyed;
    return a;
}

static void lt_destroy(void *p)
{
    struct lt_adapter *a = p;
    (*a->destroyed)++;
    memset(a, 0, sizeof *a); /* a late call through it would read this */
    free(a);
}

/* Replies {"id": <the adapter's name>}: which registration served the call. */
static int lt_create(void *p, const integ_adapter_call *call, const char *entity, const char *record_json,
                     integ_reply_cb reply, void *rp)
{
    (void)call;
    (void)entity;
    (void)record_json;
    struct lt_adapter *a = p;
    char body[64];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", a->name);
    return reply(rp, body, strlen(body));
}

static const char *lt_served_by(ig_conn *c, char *buf, size_t cap)
{
    json_object *rec = J("{\"name\":\"Ann\"}"), *res = NULL;
    snprintf(buf, cap, "?");
    if (ig_rest_create(c, "persons", rec, &res) == INTEG_OK)
        snprintf(buf, cap, "%s", json_object_get_string(json_object_object_get(res, "id")));
    json_object_put(res);
    json_object_put(rec);
    return buf;
}

static void test_c_adapter_replaced(void)
{
    static const integ_adapter lt = {.version = INTEG_ADAPTER_VERSION, .create = lt_create, .destroy = lt_destroy};
    memset(lt_destroyed, 0, sizeof lt_destroyed);
    struct env e;
    memset(&e, 0, sizeof e);
    if (integ_ctx_open(&e.ctx, "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\"}") != INTEG_OK) {
        CHECK(!"ctx");
        return;
    }
    CHECK_OK(integ_adapter_register(e.ctx, "pipedrive-crm", &lt, lt_new("a", &lt_destroyed[0])));
    integ_session_open(&e.s, e.ctx, "acme", "alice", "[\"admin\"]");
    char *out = NULL, who[16];
    CHECK_OK(integ_integration_create(e.s, "{\"integration_definition_id\":\"pipedrive-crm\","
                                           "\"credentials\":{\"api_key\":\"k\"}}", &out));
    json_object *o = json_tokener_parse(out);
    snprintf(e.id, sizeof e.id, "%s", json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    integ_free(out);
    ig_conn *held = NULL, *later = NULL;
    CHECK_OK(ig_conn_open(e.ctx, "acme", e.id, &held));
    if (!held) {
        env_close(&e);
        return;
    }
    CHECK_STR(lt_served_by(held, who, sizeof who), "a");
    /* Replaced while `held` (another thread's sync, say) still uses it. */
    CHECK_OK(integ_adapter_register(e.ctx, "pipedrive-crm", &lt, lt_new("b", &lt_destroyed[1])));
    CHECK(lt_destroyed[0] == 0);
    CHECK_STR(lt_served_by(held, who, sizeof who), "a");
    CHECK(lt_destroyed[0] == 0);
    /* Connections opened afterwards get the new one. */
    CHECK_OK(ig_conn_open(e.ctx, "acme", e.id, &later));
    if (later)
        CHECK_STR(lt_served_by(later, who, sizeof who), "b");
    ig_conn_close(later);
    CHECK(lt_destroyed[0] == 0);
    ig_conn_close(held);
    /* Destroyed once the last holder is done, at that close; never twice. */
    CHECK(lt_destroyed[0] == 1 && lt_destroyed[1] == 0);
    integ_session_close(e.s);
    integ_ctx_close(e.ctx);
    CHECK(lt_destroyed[0] == 1 && lt_destroyed[1] == 1);

    /* A registration no connection holds is destroyed when replaced. */
    memset(lt_destroyed, 0, sizeof lt_destroyed);
    CHECK_OK(integ_ctx_open(&e.ctx, "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\"}"));
    CHECK_OK(integ_adapter_register(e.ctx, "pipedrive-crm", &lt, lt_new("a", &lt_destroyed[0])));
    CHECK_OK(integ_adapter_register(e.ctx, "pipedrive-crm", &lt, lt_new("b", &lt_destroyed[1])));
    CHECK(lt_destroyed[0] == 1 && lt_destroyed[1] == 0);
    integ_ctx_close(e.ctx);
    CHECK(lt_destroyed[0] == 1 && lt_destroyed[1] == 1);
}

/* ---- a C adapter gets credentials made current, as a REST request would ----------------------- */

static char *ta_seen; /* the credentials of the last call */

static int ta_test(void *p, const integ_adapter_call *call, integ_reply_cb reply, void *rp)
{
    (void)p;
    (void)reply;
    (void)rp;
    free(ta_seen);
    ta_seen = strdup(integ_adapter_call_credentials(call));
    return INTEG_OK;
}

static long no_redirect_get(const char *url, char *location, size_t cap)
{
    CURL *c = curl_easy_init();
    struct buf b = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    long status = 0;
    char *loc = NULL;
    location[0] = '\0';
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
            snprintf(location, cap, "%s", loc);
    }
    curl_easy_cleanup(c);
    free(b.p);
    return status;
}

static json_object *form_post(const char *url, const char *form)
{
    CURL *c = curl_easy_init();
    struct buf b = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    json_object *o = curl_easy_perform(c) == CURLE_OK && b.p ? json_tokener_parse(b.p) : NULL;
    curl_easy_cleanup(c);
    free(b.p);
    return o;
}

/* A refresh token the sandbox's HubSpot issued (authorization code grant)
 * into rt ("" on failure). */
static void sb_refresh_token(struct sandbox *sb, char *rt, size_t cap)
{
    char url[512], loc[1024], form[1024];
    rt[0] = '\0';
    snprintf(url, sizeof url,
             "%s/hubspot/oauth/authorize?client_id=app&redirect_uri=https%%3A%%2F%%2Fhost.test%%2Fcb"
             "&response_type=code&scope=oauth&state=s1", sb->url);
    CHECK(no_redirect_get(url, loc, sizeof loc) == 302);
    const char *code = strstr(loc, "code=");
    snprintf(form, sizeof form,
             "grant_type=authorization_code&code=%.*s&redirect_uri=https%%3A%%2F%%2Fhost.test%%2Fcb"
             "&client_id=app&client_secret=sec", code ? (int)strcspn(code + 5, "&") : 0, code ? code + 5 : "");
    snprintf(url, sizeof url, "%s/hubspot/oauth/v1/token", sb->url);
    json_object *tok = form_post(url, form);
    const char *r = json_object_get_string(json_object_object_get(tok, "refresh_token"));
    snprintf(rt, cap, "%s", r ? r : "");
    json_object_put(tok);
    CHECK(rt[0] != '\0');
}

static void test_c_adapter_oauth_refresh(void)
{
    struct sandbox sb;
    if (sb_start(&sb, "all=1")) {
        CHECK(!"sandbox start");
        return;
    }
    char rt[128];
    sb_refresh_token(&sb, rt, sizeof rt);

    static const integ_adapter ta = {.version = INTEG_ADAPTER_VERSION, .test_connection = ta_test};
    struct env e;
    memset(&e, 0, sizeof e);
    char opts[1024];
    snprintf(opts, sizeof opts,
             "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\","
             "\"http\":{\"allow_private_networks\":true},"
             "\"base_url_overrides\":{\"hubspot-crm\":{\"api\":\"%s/hubspot\",\"token_url\":\"%s/hubspot/oauth/v1/token\"}}}",
             sb.url, sb.url);
    if (rt[0] && integ_ctx_open(&e.ctx, opts) == INTEG_OK) {
        ig_ctx_set_clock(e.ctx, &fake_clock);
        CHECK_OK(integ_definition_set_app_credentials(e.ctx, "hubspot-crm",
                                                      "{\"client_id\":\"app\",\"client_secret\":\"sec\"}"));
        CHECK_OK(integ_adapter_register(e.ctx, "hubspot-crm", &ta, NULL));
        integ_session_open(&e.s, e.ctx, "acme", "alice", "[\"admin\"]");
        /* An access token that expired before the (injected) now. */
        char req[1024], *out = NULL;
        snprintf(req, sizeof req,
                 "{\"integration_definition_id\":\"hubspot-crm\",\"auth_type\":\"oauth2\",\"credentials\":"
                 "{\"access_token\":\"stale-token\",\"refresh_token\":\"%s\",\"expires_at\":\"2025-01-01T00:00:00Z\"}}",
                 rt);
        CHECK_OK(integ_integration_create(e.s, req, &out));
        json_object *o = out ? json_tokener_parse(out) : NULL;
        snprintf(e.id, sizeof e.id, "%s", o ? json_object_get_string(json_object_object_get(o, "id")) : "-");
        json_object_put(o);
        integ_free(out);
        int64_t before = sb_count(&sb, "POST /hubspot/oauth/v1/token");
        CHECK_OK(ig_conn_open(e.ctx, "acme", e.id, &e.c));
        long status = 0;
        if (e.c) {
            CHECK_OK(ig_rest_test(e.c, &status));
            json_object *seen = ta_seen ? json_tokener_parse(ta_seen) : NULL;
            const char *at = json_object_get_string(json_object_object_get(seen, "access_token"));
            const char *rt2 = json_object_get_string(json_object_object_get(seen, "refresh_token"));
            CHECK_STR(at, TOKEN); /* refreshed before the call */
            CHECK(rt2 && strcmp(rt2, rt) != 0);        /* rotated */
            json_object_put(seen);
            CHECK(sb_count(&sb, "POST /hubspot/oauth/v1/token") == before + 1);
            /* Fresh now: the next call does not refresh again. */
            CHECK_OK(ig_rest_test(e.c, &status));
            CHECK(ta_seen && strstr(ta_seen, TOKEN) && !strstr(ta_seen, "stale-token"));
            CHECK(sb_count(&sb, "POST /hubspot/oauth/v1/token") == before + 1);
        }
        env_close(&e);
    }
    free(ta_seen);
    ta_seen = NULL;
    sandbox_stop(&sb);
}

/* A token endpoint for the client-credentials grant (the sandbox has
 * none): every request gets a new token; `requests` counts them. */
struct token_peer {
    int fd, port;
    atomic_int requests;
    pthread_t th;
};

static void *token_peer_run(void *arg)
{
    struct token_peer *t = arg;
    for (;;) {
        int c = accept(t->fd, NULL, NULL);
        if (c < 0)
            break;
        char req[8192];
        size_t n = 0;
        char *end = NULL;
        while (n < sizeof req - 1 && !end) {
            ssize_t k = read(c, req + n, sizeof req - 1 - n);
            if (k <= 0)
                break;
            n += (size_t)k;
            req[n] = '\0';
            end = strstr(req, "\r\n\r\n");
        }
        const char *cl = end ? strcasestr(req, "content-length:") : NULL;
        size_t want = end ? (size_t)(end + 4 - req) + (cl ? strtoul(cl + 15, NULL, 10) : 0) : 0;
        while (end && n < want && n < sizeof req - 1) {
            ssize_t k = read(c, req + n, sizeof req - 1 - n);
            if (k <= 0)
                break;
            n += (size_t)k;
        }
        int i = ++t->requests;
        char body[128], resp[512];
        snprintf(body, sizeof body, "{\"access_token\":\"cc-token-%d\",\"token_type\":\"bearer\",\"expires_in\":3600}", i);
        int len = snprintf(resp, sizeof resp,
                           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                           "Connection: close\r\n\r\n%s", strlen(body), body);
        if (write(c, resp, (size_t)len) < 0)
            perror("token peer write");
        close(c);
    }
    return NULL;
}

static int token_peer_start(struct token_peer *t)
{
    memset(t, 0, sizeof *t);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    t->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (t->fd < 0 || bind(t->fd, (struct sockaddr *)&a, sizeof a) || listen(t->fd, 8) ||
        getsockname(t->fd, (struct sockaddr *)&a, &al))
        return -1;
    t->port = ntohs(a.sin_port);
    return pthread_create(&t->th, NULL, token_peer_run, t);
}

static void token_peer_stop(struct token_peer *t)
{
    shutdown(t->fd, SHUT_RDWR);
    close(t->fd);
    pthread_join(t->th, NULL);
}

/* A runtime token (client credentials) is obtained before the call and
 * handed over as "access_token", next to the stored credentials. */
static void test_c_adapter_runtime_token(void)
{
    struct token_peer tp;
    if (token_peer_start(&tp)) {
        CHECK(!"token peer");
        return;
    }
    static const integ_adapter ta = {.version = INTEG_ADAPTER_VERSION, .test_connection = ta_test};
    struct env e;
    memset(&e, 0, sizeof e);
    char opts[1024];
    snprintf(opts, sizeof opts,
             "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\","
             "\"http\":{\"allow_private_networks\":true},"
             "\"base_url_overrides\":{\"visma-erp\":{\"api\":\"http://127.0.0.1:%d/api\","
             "\"token_url\":\"http://127.0.0.1:%d/token\"}}}", tp.port, tp.port);
    if (integ_ctx_open(&e.ctx, opts) == INTEG_OK) {
        ig_ctx_set_clock(e.ctx, &fake_clock);
        CHECK_OK(integ_adapter_register(e.ctx, "visma-erp", &ta, NULL));
        integ_session_open(&e.s, e.ctx, "acme", "alice", "[\"admin\"]");
        char *out = NULL;
        CHECK_OK(integ_integration_create(e.s, "{\"integration_definition_id\":\"visma-erp\","
                                               "\"auth_type\":\"oauth2_client_credentials\","
                                               "\"credentials\":{\"client_id\":\"cid\",\"client_secret\":\"cs\"}}", &out));
        json_object *o = out ? json_tokener_parse(out) : NULL;
        snprintf(e.id, sizeof e.id, "%s", o ? json_object_get_string(json_object_object_get(o, "id")) : "-");
        json_object_put(o);
        integ_free(out);
        CHECK_OK(ig_conn_open(e.ctx, "acme", e.id, &e.c));
        long status = 0;
        if (e.c) {
            CHECK_OK(ig_rest_test(e.c, &status));
            json_object *seen = ta_seen ? json_tokener_parse(ta_seen) : NULL;
            CHECK_STR(json_object_get_string(json_object_object_get(seen, "access_token")), "cc-token-1");
            CHECK_STR(json_object_get_string(json_object_object_get(seen, "client_id")), "cid");
            json_object_put(seen);
            CHECK(tp.requests == 1);
            CHECK_OK(ig_rest_test(e.c, &status)); /* still good: not fetched again */
            CHECK(ta_seen && strstr(ta_seen, "\"cc-token-1\""));
            CHECK(tp.requests == 1);
        }
        env_close(&e);
    } else {
        CHECK(!"ctx");
    }
    free(ta_seen);
    ta_seen = NULL;
    token_peer_stop(&tp);
}

/* ---- an adapter's INTEG_EAUTH: one fresh token and one more call, as after a REST 401 ------------ */

/* Rejects an access token "old-token" or "cc-token-1" (or every call with
 * ea_always), and credentials without an access token (api_key): as a
 * remote answering 401 to the adapter's own request. */
static int ea_calls, ea_always;
static char ea_last[128]; /* the access token of the last call */

static int ea_check(const integ_adapter_call *call)
{
    ea_calls++;
    json_object *cr = json_tokener_parse(integ_adapter_call_credentials(call));
    const char *at = json_object_get_string(json_object_object_get(cr, "access_token"));
    snprintf(ea_last, sizeof ea_last, "%s", at ? at : "");
    int rc = INTEG_OK;
    if (ea_always || !at || !strcmp(at, "old-token") || !strcmp(at, "cc-token-1"))
        rc = integ_error_set(INTEG_EAUTH, "HTTP 401: the adapter's token was rejected");
    json_object_put(cr);
    return rc;
}

static int ea_fetch(void *p, const integ_adapter_call *call, const char *entity, const char *id,
                    integ_reply_cb reply, void *rp)
{
    (void)p;
    (void)entity;
    int rc = ea_check(call);
    if (rc)
        return rc;
    char body[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    return reply(rp, body, strlen(body));
}

static int ea_create(void *p, const integ_adapter_call *call, const char *entity, const char *record_json,
                     integ_reply_cb reply, void *rp)
{
    (void)p;
    (void)entity;
    (void)record_json;
    int rc = ea_check(call);
    return rc ? rc : reply(rp, "{\"id\":\"77\"}", 11);
}

/* A rejected call that replied anyway: the retry's (empty) reply counts. */
static int ea_update(void *p, const integ_adapter_call *call, const char *entity, const char *id,
                     const char *record_json, integ_reply_cb reply, void *rp)
{
    (void)p;
    (void)entity;
    (void)id;
    (void)record_json;
    int rc = ea_check(call);
    if (rc)
        reply(rp, "{\"stale\":true}", 14);
    return rc;
}

static const integ_adapter ea_adapter = {.version = INTEG_ADAPTER_VERSION,
                                         .fetch_one = ea_fetch,
                                         .create = ea_create,
                                         .update = ea_update};

/* Create the integration described by `req` and open its connection. */
static int ea_open(struct env *e, const char *req)
{
    char *out = NULL;
    e->c = NULL;
    if (integ_integration_create(e->s, req, &out) != INTEG_OK) {
        fprintf(stderr, "  create: %s\n", integ_errmsg());
        return -1;
    }
    json_object *o = json_tokener_parse(out);
    snprintf(e->id, sizeof e->id, "%s", json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    integ_free(out);
    return ig_conn_open(e->ctx, "acme", e->id, &e->c) == INTEG_OK ? 0 : -1;
}

static int ea_status_is(struct env *e, const char *status)
{
    char *out = NULL, want[64];
    snprintf(want, sizeof want, "\"status\":\"%s\"", status);
    int yes = integ_integration_get(e->s, e->id, &out) == INTEG_OK && out && strstr(out, want);
    integ_free(out);
    return yes;
}

/* oauth2: the adapter rejects the stored access token (no expires_at: used
 * until rejected); one refresh, one more call. Always rejected: exactly one
 * refresh, then INTEG_EAUTH. A refresh token the provider refuses
 * (invalid_grant): no second call, needs_reauth. */
static void test_c_adapter_eauth_oauth2(void)
{
    struct sandbox sb;
    if (sb_start(&sb, "all=1")) {
        CHECK(!"sandbox start");
        return;
    }
    char rt[128];
    sb_refresh_token(&sb, rt, sizeof rt);
    struct env e;
    memset(&e, 0, sizeof e);
    char opts[1024], req[1024];
    snprintf(opts, sizeof opts,
             "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\","
             "\"http\":{\"allow_private_networks\":true},"
             "\"base_url_overrides\":{\"hubspot-crm\":{\"api\":\"%s/hubspot\",\"token_url\":\"%s/hubspot/oauth/v1/token\"}}}",
             sb.url, sb.url);
    if (!rt[0] || integ_ctx_open(&e.ctx, opts) != INTEG_OK) {
        CHECK(!"ctx");
        sandbox_stop(&sb);
        return;
    }
    ig_ctx_set_clock(e.ctx, &fake_clock);
    CHECK_OK(integ_definition_set_app_credentials(e.ctx, "hubspot-crm", "{\"client_id\":\"app\",\"client_secret\":\"sec\"}"));
    CHECK_OK(integ_adapter_register(e.ctx, "hubspot-crm", &ea_adapter, NULL));
    integ_session_open(&e.s, e.ctx, "acme", "alice", "[\"admin\"]");
    snprintf(req, sizeof req,
             "{\"integration_definition_id\":\"hubspot-crm\",\"auth_type\":\"oauth2\",\"credentials\":"
             "{\"access_token\":\"old-token\",\"refresh_token\":\"%s\"}}", rt);
    const char *route = "POST /hubspot/oauth/v1/token";
    int64_t before = sb_count(&sb, route);
    CHECK(ea_open(&e, req) == 0);
    if (e.c) {
        json_object *rec = J("{\"email\":\"ann@example.com\"}"), *res = NULL;
        /* Rejected, refreshed once, called again with the new token: a
         * create too (the remote refused the request: it did not act). */
        ea_calls = ea_always = 0;
        CHECK_OK(ig_rest_create(e.c, "contacts", rec, &res));
        CHECK(res && !strcmp(json_object_get_string(json_object_object_get(res, "id")), "77"));
        json_object_put(res);
        res = NULL;
        CHECK(ea_calls == 2);
        CHECK_STR(ea_last, TOKEN);
        CHECK(sb_count(&sb, route) == before + 1);
        /* The new token stands: no refresh, one call. */
        ea_calls = 0;
        CHECK_OK(ig_rest_fetch_one(e.c, "contacts", "5", &res));
        CHECK(res && !strcmp(json_object_get_string(json_object_object_get(res, "id")), "5"));
        json_object_put(res);
        res = NULL;
        CHECK(ea_calls == 1 && sb_count(&sb, route) == before + 1);
        /* Rejected with the fresh token too: exactly one refresh, two calls,
         * the adapter's INTEG_EAUTH. */
        ea_calls = 0;
        ea_always = 1;
        CHECK_RC(ig_rest_fetch_one(e.c, "contacts", "5", &res), INTEG_EAUTH);
        CHECK_MSG("hubspot-crm: HTTP 401: the adapter's token was rejected");
        CHECK(res == NULL);
        CHECK(ea_calls == 2);
        CHECK(sb_count(&sb, route) == before + 2);
        CHECK(ea_status_is(&e, "active"));
        ea_always = 0;
        json_object_put(rec);
        ig_conn_close(e.c);
        e.c = NULL;
    }
    /* A refresh token the provider refuses: invalid_grant marks the
     * integration needs_reauth, the adapter is not called again. */
    before = sb_count(&sb, route);
    CHECK(ea_open(&e, "{\"integration_definition_id\":\"hubspot-crm\",\"auth_type\":\"oauth2\",\"credentials\":"
                      "{\"access_token\":\"old-token\",\"refresh_token\":\"revoked-rt\"}}") == 0);
    if (e.c) {
        json_object *res = NULL;
        ea_calls = 0;
        CHECK_RC(ig_rest_fetch_one(e.c, "contacts", "5", &res), INTEG_EAUTH);
        CHECK_MSG("invalid_grant");
        CHECK(res == NULL && ea_calls == 1);
        CHECK(sb_count(&sb, route) == before + 1);
        CHECK(ea_status_is(&e, "needs_reauth"));
    }
    env_close(&e);
    sandbox_stop(&sb);
}

/* Client credentials: the first runtime token is rejected, a second is
 * obtained (the token endpoint asked once more) and the call made again;
 * the rejected call's reply is dropped. */
static void test_c_adapter_eauth_runtime_token(void)
{
    struct token_peer tp;
    if (token_peer_start(&tp)) {
        CHECK(!"token peer");
        return;
    }
    struct env e;
    memset(&e, 0, sizeof e);
    char opts[1024];
    snprintf(opts, sizeof opts,
             "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\","
             "\"http\":{\"allow_private_networks\":true},"
             "\"base_url_overrides\":{\"visma-erp\":{\"api\":\"http://127.0.0.1:%d/api\","
             "\"token_url\":\"http://127.0.0.1:%d/token\"}}}", tp.port, tp.port);
    if (integ_ctx_open(&e.ctx, opts) == INTEG_OK) {
        ig_ctx_set_clock(e.ctx, &fake_clock);
        CHECK_OK(integ_adapter_register(e.ctx, "visma-erp", &ea_adapter, NULL));
        integ_session_open(&e.s, e.ctx, "acme", "alice", "[\"admin\"]");
        CHECK(ea_open(&e, "{\"integration_definition_id\":\"visma-erp\",\"auth_type\":\"oauth2_client_credentials\","
                          "\"credentials\":{\"client_id\":\"cid\",\"client_secret\":\"cs\"}}") == 0);
        if (e.c) {
            json_object *rec = J("{\"name\":\"Acme\"}"), *res = (json_object *)1;
            ea_calls = ea_always = 0;
            CHECK_OK(ig_rest_update(e.c, "customers", "9", rec, &res));
            CHECK(res == NULL); /* not the rejected call's {"stale": true} */
            CHECK(ea_calls == 2);
            CHECK_STR(ea_last, "cc-token-2");
            CHECK(tp.requests == 2); /* the first token, and one renewal */
            json_object_put(rec);
        }
        env_close(&e);
    } else {
        CHECK(!"ctx");
    }
    token_peer_stop(&tp);
}

/* api_key: nothing to renew, so the adapter's INTEG_EAUTH stands after one call. */
static void test_c_adapter_eauth_static(void)
{
    struct env e;
    memset(&e, 0, sizeof e);
    if (integ_ctx_open(&e.ctx, "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\"}") != INTEG_OK) {
        CHECK(!"ctx");
        return;
    }
    CHECK_OK(integ_adapter_register(e.ctx, "pipedrive-crm", &ea_adapter, NULL));
    integ_session_open(&e.s, e.ctx, "acme", "alice", "[\"admin\"]");
    CHECK(ea_open(&e, "{\"integration_definition_id\":\"pipedrive-crm\",\"credentials\":{\"api_key\":\"k\"}}") == 0);
    if (e.c) {
        json_object *rec = J("{\"name\":\"Ann\"}"), *res = NULL;
        ea_calls = ea_always = 0;
        CHECK_RC(ig_rest_create(e.c, "persons", rec, &res), INTEG_EAUTH);
        CHECK_MSG("pipedrive-crm: HTTP 401: the adapter's token was rejected");
        CHECK(res == NULL && ea_calls == 1);
        ea_calls = 0;
        CHECK_RC(ig_rest_fetch_one(e.c, "persons", "3", &res), INTEG_EAUTH);
        CHECK(res == NULL && ea_calls == 1);
        json_object_put(rec);
    }
    env_close(&e);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_push_requests SANDBOX_BINARY\n");
        return 2;
    }
    sandbox_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    RUN(test_manifest_lookup_rules);
    RUN(test_crud_all_systems);
    RUN(test_dynamics_entity_id_header);
    RUN(test_hubspot_batch);
    RUN(test_lookup);
    RUN(test_retry_rule);
    RUN(test_auth_and_rate_limit);
    RUN(test_c_adapter);
    RUN(test_c_adapter_replaced);
    RUN(test_c_adapter_oauth_refresh);
    RUN(test_c_adapter_runtime_token);
    RUN(test_c_adapter_eauth_oauth2);
    RUN(test_c_adapter_eauth_runtime_token);
    RUN(test_c_adapter_eauth_static);
    TEST_END();
}
