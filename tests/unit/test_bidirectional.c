/* Push and bidirectional sync against the sandbox's HubSpot: local changes
 * go out (creates, updates, batches), remote changes come in, conflicts
 * are resolved by each strategy and by field policies, manual conflicts
 * are resolved both ways (by the field policies too), a dry run writes
 * nothing on either side, a create whose result was lost is adopted
 * instead of duplicated, and a batch writes its links in one transaction.
 *
 *   test_bidirectional SANDBOX_BINARY */
#include <curl/curl.h>
#include <json-c/json.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx.h"
#include "engine.h"
#include "sandbox_proc.h"
#include "test.h"

#define TOKEN SANDBOX_TOKEN

static const char *sandbox_bin;
static struct sandbox sb;

static int sandbox_start(void)
{
    const char *args[] = {"--records", "hubspot:contacts=30", "--unlimited", NULL};
    return sandbox_spawn(&sb, sandbox_bin, args);
}

static size_t collect(char *p, size_t s, size_t n, void *u)
{
    size_t len = strlen(u), add = s * n;
    if (len + add < 65536) {
        memcpy((char *)u + len, p, add);
        ((char *)u)[len + add] = 0;
    }
    return s * n;
}

static json_object *control(const char *path, const char *json)
{
    char full[256];
    static char buf[65536];
    buf[0] = 0;
    snprintf(full, sizeof full, "%s%s", sb.url, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, full);
    if (json)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, buf);
    curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return json_tokener_parse(buf);
}

/* The sandbox's own view of a contact (bypassing the library). */
static json_object *remote_contact(const char *id)
{
    char full[256];
    static char buf[65536];
    buf[0] = 0;
    snprintf(full, sizeof full, "%s/hubspot/crm/v3/objects/contacts/%s?properties=email,firstname,lastname", sb.url, id);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, buf);
    curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return json_tokener_parse(buf);
}

static const char *remote_prop(json_object *rc, const char *p)
{
    return json_object_get_string(json_object_object_get(json_object_object_get(rc, "properties"), p));
}

struct env {
    integ_ctx *ctx;
    integ_session *s;
    char id[64];
};

/* With a host store (store_data is then the context's) or, store NULL, the
 * built-in in-memory SQLite. */
static int env_open_store(struct env *e, const char *config, const integ_store *store, void *store_data)
{
    memset(e, 0, sizeof *e);
    char opts[512], req[512], *out = NULL;
    snprintf(opts, sizeof opts,
             "{%s\"master_key\":\"" TEST_MASTER_KEY "\","
             "\"http\":{\"allow_private_networks\":true,\"max_retries\":1},"
             "\"base_url_overrides\":{\"hubspot-crm\":\"%s/hubspot\"}}",
             store ? "" : "\"store\":\"sqlite::memory:\",", sb.url);
    if ((store ? integ_ctx_open_with_store(&e->ctx, store, store_data, opts) : integ_ctx_open(&e->ctx, opts)) != INTEG_OK)
        return -1;
    integ_session_open(&e->s, e->ctx, "acme", "alice", "[\"admin\"]");
    snprintf(req, sizeof req, "{\"integration_definition_id\":\"hubspot-crm\",\"credentials\":{\"api_key\":\"" TOKEN "\"},\"config\":%s}",
             config ? config : "{}");
    if (integ_integration_create(e->s, req, &out) != INTEG_OK) {
        fprintf(stderr, "  create: %s\n", integ_errmsg());
        return -1;
    }
    json_object *o = json_tokener_parse(out);
    snprintf(e->id, sizeof e->id, "%s", json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    integ_free(out);
    return 0;
}

static int env_open(struct env *e, const char *config) { return env_open_store(e, config, NULL, NULL); }

static void env_close(struct env *e)
{
    integ_session_close(e->s);
    integ_ctx_close(e->ctx);
}

static json_object *run_sync(struct env *e, const char *req, int want)
{
    char *out = NULL;
    int rc = integ_sync(e->s, e->id, req, NULL, NULL, &out);
    if (rc != want)
        fprintf(stderr, "  sync %s: %d %s\n", req, rc, integ_errmsg());
    CHECK(rc == want);
    json_object *o = out ? json_tokener_parse(out) : NULL;
    integ_free(out);
    return o;
}

static int64_t jint(json_object *o, const char *k) { return json_object_get_int64(json_object_object_get(o, k)); }
static const char *jstr(json_object *o, const char *k) { return json_object_get_string(json_object_object_get(o, k)); }

/* The local record linked to a remote id, or NULL. */
static json_object *local_of(struct env *e, const char *external_id)
{
    char *out = NULL;
    if (integ_entities_list(e->s, "contacts", "{\"limit\":1000,\"include_deleted\":true}", &out) != INTEG_OK)
        return NULL;
    json_object *l = json_tokener_parse(out), *found = NULL;
    integ_free(out);
    for (size_t i = 0; !found && i < json_object_array_length(l); i++) {
        json_object *rec = json_object_array_get_idx(l, i);
        char *g = NULL;
        if (integ_entity_get(e->s, "contacts", jstr(rec, "id"), &g) == INTEG_OK) {
            json_object *full = json_tokener_parse(g);
            json_object *links = json_object_object_get(full, "links");
            for (size_t k = 0; k < json_object_array_length(links); k++)
                if (!strcmp(jstr(json_object_array_get_idx(links, k), "external_id") ? jstr(json_object_array_get_idx(links, k), "external_id") : "", external_id))
                    found = json_object_get(full);
            json_object_put(full);
            integ_free(g);
        }
    }
    json_object_put(l);
    return found;
}

static void local_edit(struct env *e, json_object *rec, const char *field, const char *value)
{
    json_object *data = json_object_object_get(rec, "data");
    json_object_object_add(data, field, json_object_new_string(value));
    json_object *put = json_object_new_object();
    json_object_object_add(put, "id", json_object_get(json_object_object_get(rec, "id")));
    json_object_object_add(put, "data", json_object_get(data));
    char *out = NULL;
    CHECK_OK(integ_entity_put(e->s, "contacts", json_object_to_json_string(put), &out));
    integ_free(out);
    json_object_put(put);
}

static void remote_touch(const char *id, const char *prop, const char *value, const char *updated_at)
{
    char body[400];
    snprintf(body, sizeof body, "{\"system\":\"hubspot\",\"entity\":\"contacts\",\"id\":\"%s\",\"fields\":{\"%s\":\"%s\"}%s%s%s}", id,
             prop, value, updated_at ? ",\"updated_at\":\"" : "", updated_at ? updated_at : "", updated_at ? "\"" : "");
    json_object_put(control("/_sandbox/touch", body));
}

/* ---- tests --------------------------------------------------------------------- */

static void test_push_updates_and_creates(void)
{
    struct env e;
    if (env_open(&e, NULL)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK));
    json_object *a = local_of(&e, "1001");
    CHECK(a != NULL);
    if (!a) {
        env_close(&e);
        return;
    }
    local_edit(&e, a, "first_name", "Edited Locally");
    /* A pull alone leaves local changes alone (nothing changed remotely). */
    json_object *r = run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK);
    CHECK(r && jint(r, "conflicts") == 0);
    json_object_put(r);
    r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_OK);
    CHECK(r && jint(r, "records_pushed") == 1);
    json_object_put(r);
    json_object *rc = remote_contact("1001");
    CHECK_STR(remote_prop(rc, "firstname"), "Edited Locally");
    json_object_put(rc);
    /* Pushed once: the next push has nothing to do. */
    r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_OK);
    CHECK(r && jint(r, "records_pushed") == 0);
    json_object_put(r);
    /* Local creates: three new contacts go out (batched), and a pull brings
     * no duplicates back. */
    for (int i = 0; i < 3; i++) {
        char put[256], *out = NULL;
        snprintf(put, sizeof put, "{\"data\":{\"email\":\"new%d@example.com\",\"first_name\":\"New\",\"last_name\":\"Person %d\"}}", i, i);
        CHECK_OK(integ_entity_put(e.s, "contacts", put, &out));
        integ_free(out);
    }
    r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"bidirectional\"}", INTEG_OK);
    json_object *p = json_object_object_get(r, "push");
    CHECK(p && jint(p, "created") == 3);
    json_object_put(r);
    r = run_sync(&e, "{\"entity\":\"contacts\",\"full\":true}", INTEG_OK);
    CHECK(r && jint(r, "records_processed") == 33 && jint(r, "records_created") == 0);
    json_object_put(r);
    char *out = NULL;
    CHECK_OK(integ_entities_list(e.s, "contacts", "{\"limit\":1000}", &out));
    json_object *l = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(l) == 33);
    json_object_put(l);
    json_object_put(a);
    env_close(&e);
}

/* Both sides change contact 1002 between syncs; each strategy decides. */
static void conflict_case(const char *strategy, const char *remote_time, const char *want_local,
                          const char *want_remote, int want_open)
{
    struct env e;
    if (env_open(&e, NULL)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(control("/_sandbox/reset", "{}"));
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK));
    json_object *rec = local_of(&e, "1002");
    if (!rec) {
        CHECK(!"local 1002");
        env_close(&e);
        return;
    }
    local_edit(&e, rec, "first_name", "LocalName");
    remote_touch("1002", "firstname", "RemoteName", remote_time);
    char req[200];
    snprintf(req, sizeof req, "{\"entity\":\"contacts\",\"direction\":\"bidirectional\",\"conflict_strategy\":\"%s\"}", strategy);
    json_object *r = run_sync(&e, req, INTEG_OK);
    CHECK(r && jint(r, "conflicts") == 1);
    json_object_put(r);
    json_object *after = local_of(&e, "1002");
    const char *lf = jstr(json_object_object_get(after, "data"), "first_name");
    if (!lf || strcmp(lf, want_local))
        fprintf(stderr, "  %s: local first_name %s, want %s\n", strategy, lf ? lf : "-", want_local);
    CHECK(lf && !strcmp(lf, want_local));
    json_object *rc = remote_contact("1002");
    if (!remote_prop(rc, "firstname") || strcmp(remote_prop(rc, "firstname"), want_remote))
        fprintf(stderr, "  %s: remote firstname %s, want %s\n", strategy, remote_prop(rc, "firstname"), want_remote);
    CHECK_STR(remote_prop(rc, "firstname"), want_remote);
    json_object_put(rc);
    char *out = NULL;
    CHECK_OK(integ_conflicts_list(e.s, e.id, want_open ? "{\"status\":\"open\"}" : "{\"status\":\"resolved\"}", &out));
    json_object *cl = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(cl) == 1);
    json_object *c0 = json_object_array_get_idx(cl, 0);
    CHECK_STR(jstr(c0, "strategy"), strategy);
    CHECK(json_object_object_get(c0, "local") && json_object_object_get(c0, "remote") && json_object_object_get(c0, "base"));
    json_object_put(cl);
    json_object_put(after);
    json_object_put(rec);
    env_close(&e);
}

static void test_strategies(void)
{
    conflict_case("remote_wins", NULL, "RemoteName", "RemoteName", 0);
    conflict_case("local_wins", NULL, "LocalName", "LocalName", 0);
    conflict_case("last_write_wins", "2030-01-01T00:00:00Z", "RemoteName", "RemoteName", 0); /* remote newer */
    conflict_case("last_write_wins", "2025-06-01T00:00:00Z", "LocalName", "LocalName", 0);   /* local newer */
    conflict_case("manual", NULL, "LocalName", "RemoteName", 1);                             /* held */
}

static void test_merge_fields_and_policies(void)
{
    struct env e;
    if (env_open(&e, NULL)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(control("/_sandbox/reset", "{}"));
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK));
    json_object *rec = local_of(&e, "1003");
    if (!rec) {
        CHECK(!"local 1003");
        env_close(&e);
        return;
    }
    /* Different fields on each side: both survive. */
    local_edit(&e, rec, "last_name", "LocalLast");
    remote_touch("1003", "firstname", "RemoteFirst", NULL);
    json_object *r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"bidirectional\",\"conflict_strategy\":\"merge_fields\"}", INTEG_OK);
    json_object_put(r);
    json_object *after = local_of(&e, "1003");
    CHECK_STR(jstr(json_object_object_get(after, "data"), "first_name"), "RemoteFirst");
    CHECK_STR(jstr(json_object_object_get(after, "data"), "last_name"), "LocalLast");
    json_object *rc = remote_contact("1003");
    CHECK_STR(remote_prop(rc, "firstname"), "RemoteFirst");
    CHECK_STR(remote_prop(rc, "lastname"), "LocalLast");
    json_object_put(rc);
    json_object_put(after);
    json_object_put(rec);
    /* A field policy: always_remote fields are never pushed. */
    char *out = NULL;
    CHECK_OK(integ_mapping_put(e.s, e.id,
                               "{\"source_entity\":\"contacts\",\"target_entity\":\"contacts\","
                               "\"field_map\":{\"email\":\"properties.email\",\"first_name\":\"properties.firstname\",\"last_name\":\"properties.lastname\"},"
                               "\"field_policies\":{\"first_name\":\"always_remote\"}}",
                               &out));
    integ_free(out);
    CHECK_RC(integ_mapping_put(e.s, e.id, "{\"source_entity\":\"contacts\",\"target_entity\":\"contacts\",\"field_map\":{},\"field_policies\":{\"x\":\"sometimes\"}}", &out), INTEG_EINVAL);
    CHECK_MSG("field_policies.x");
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\",\"full\":true}", INTEG_OK)); /* mapping changed: re-applied */
    rec = local_of(&e, "1004");
    if (rec) {
        local_edit(&e, rec, "first_name", "NotForRemote");
        local_edit(&e, rec, "last_name", "ForRemote");
        json_object_put(run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_OK));
        rc = remote_contact("1004");
        CHECK(strcmp(remote_prop(rc, "firstname"), "NotForRemote") != 0);
        CHECK_STR(remote_prop(rc, "lastname"), "ForRemote");
        json_object_put(rc);
        json_object_put(rec);
    }
    /* Pull-side policies: always_local fields never take the remote value;
     * prefer_remote_unless_blank keeps the local one when the remote is blank. */
    CHECK_OK(integ_mapping_put(e.s, e.id,
                               "{\"source_entity\":\"contacts\",\"target_entity\":\"contacts\","
                               "\"field_map\":{\"email\":\"properties.email\",\"first_name\":\"properties.firstname\",\"last_name\":\"properties.lastname\"},"
                               "\"field_policies\":{\"last_name\":\"always_local\",\"first_name\":\"prefer_remote_unless_blank\"}}",
                               &out));
    integ_free(out);
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\",\"full\":true}", INTEG_OK));
    json_object *before = local_of(&e, "1011");
    remote_touch("1011", "lastname", "RemoteLast", NULL);
    remote_touch("1011", "firstname", "", NULL);
    remote_touch("1011", "email", "moved1011@example.com", NULL); /* two_way: this one comes in */
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK));
    json_object *after2 = local_of(&e, "1011");
    if (before && after2) {
        CHECK_STR(jstr(json_object_object_get(after2, "data"), "email"), "moved1011@example.com");
        CHECK_STR(jstr(json_object_object_get(after2, "data"), "last_name"), jstr(json_object_object_get(before, "data"), "last_name"));
        CHECK_STR(jstr(json_object_object_get(after2, "data"), "first_name"), jstr(json_object_object_get(before, "data"), "first_name"));
    } else {
        CHECK(!"local 1011");
    }
    json_object_put(before);
    json_object_put(after2);
    env_close(&e);
}

static void test_manual_resolution(void)
{
    struct env e;
    if (env_open(&e, NULL)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(control("/_sandbox/reset", "{}"));
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK));
    const char *ids[] = {"1005", "1006", "1007"};
    for (int i = 0; i < 3; i++) {
        json_object *rec = local_of(&e, ids[i]);
        if (!rec)
            continue;
        local_edit(&e, rec, "first_name", "L");
        remote_touch(ids[i], "firstname", "R", NULL);
        json_object_put(rec);
    }
    json_object *r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"bidirectional\",\"conflict_strategy\":\"manual\"}", INTEG_OK);
    CHECK(r && jint(r, "conflicts") == 3);
    json_object_put(r);
    /* Held: another run changes nothing and opens nothing new. */
    r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"bidirectional\",\"conflict_strategy\":\"manual\"}", INTEG_OK);
    json_object_put(r);
    char *out = NULL;
    CHECK_OK(integ_conflicts_list(e.s, e.id, "{\"status\":\"open\"}", &out));
    json_object *cl = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(cl) == 3);
    const char *choices[] = {"{\"choose\":\"local\"}", "{\"choose\":\"remote\"}", "{\"data\":{\"first_name\":\"Merged\",\"last_name\":\"ByHand\",\"email\":\"m@example.com\"}}"};
    const char *want[] = {"L", "R", "Merged"};
    for (size_t i = 0; i < json_object_array_length(cl) && i < 3; i++) {
        json_object *c = json_object_array_get_idx(cl, i);
        const char *ext = jstr(c, "external_id");
        CHECK_OK(integ_conflict_resolve(e.s, jstr(c, "id"), choices[i]));
        json_object *loc = local_of(&e, ext);
        json_object *rc = remote_contact(ext);
        CHECK_STR(jstr(json_object_object_get(loc, "data"), "first_name"), want[i]);
        CHECK_STR(remote_prop(rc, "firstname"), want[i]);
        json_object_put(loc);
        json_object_put(rc);
        CHECK_RC(integ_conflict_resolve(e.s, jstr(c, "id"), "{\"choose\":\"local\"}"), INTEG_ECONFLICT);
    }
    CHECK_RC(integ_conflict_resolve(e.s, "nope", "{\"choose\":\"local\"}"), INTEG_ENOTFOUND);
    if (json_object_array_length(cl)) {
        const char *cid = jstr(json_object_array_get_idx(cl, 0), "id");
        CHECK_RC(integ_conflict_resolve(e.s, cid, "{\"choose\":\"both\"}"), INTEG_EINVAL);
        CHECK_RC(integ_conflict_resolve(e.s, cid, "{}"), INTEG_EINVAL);
        integ_session *other = NULL;
        integ_session_open(&other, e.ctx, "other", "m", "[\"admin\"]");
        CHECK_RC(integ_conflict_resolve(other, cid, "{\"choose\":\"local\"}"), INTEG_ENOTFOUND);
        CHECK_RC(integ_conflicts_list(other, e.id, NULL, &out), INTEG_ENOTFOUND);
        integ_session_close(other);
    }
    json_object_put(cl);
    CHECK_OK(integ_conflicts_list(e.s, e.id, "{\"status\":\"open\"}", &out));
    CHECK_STR(out, "[]");
    integ_free(out);
    env_close(&e);
}

/* The conflict whose id is for this remote record, open (NULL if none). */
static json_object *open_conflict_of(struct env *e, const char *external_id)
{
    char *out = NULL;
    if (integ_conflicts_list(e->s, e->id, "{\"status\":\"open\"}", &out) != INTEG_OK)
        return NULL;
    json_object *l = json_tokener_parse(out), *found = NULL;
    integ_free(out);
    for (size_t i = 0; !found && i < json_object_array_length(l); i++)
        if (!strcmp(jstr(json_object_array_get_idx(l, i), "external_id"), external_id))
            found = json_object_get(json_object_array_get_idx(l, i));
    json_object_put(l);
    return found;
}

/* A resolution sends the remote exactly what a push would: a dont_sync or
 * always_remote field never reaches it, whatever is chosen. Locally the
 * policies hold as on a pull: always_remote fields take the remote value,
 * and choosing the remote keeps the local dont_sync value as it is now. */
static void test_resolution_respects_field_policies(void)
{
    struct env e;
    if (env_open(&e, NULL)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(control("/_sandbox/reset", "{}"));
    char *out = NULL;
    CHECK_OK(integ_mapping_put(e.s, e.id,
                               "{\"source_entity\":\"contacts\",\"target_entity\":\"contacts\","
                               "\"field_map\":{\"email\":\"properties.email\",\"first_name\":\"properties.firstname\",\"last_name\":\"properties.lastname\"},"
                               "\"field_policies\":{\"first_name\":\"dont_sync\",\"last_name\":\"always_remote\"}}",
                               &out));
    integ_free(out);
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK));
    const char *ids[] = {"1013", "1014", "1015"};
    char first0[3][128] = {{0}};
    for (int i = 0; i < 3; i++) {
        json_object *rec = local_of(&e, ids[i]);
        if (!rec) {
            CHECK(!"local record");
            env_close(&e);
            return;
        }
        snprintf(first0[i], sizeof first0[i], "%s", jstr(json_object_object_get(rec, "data"), "first_name"));
        char email[64];
        snprintf(email, sizeof email, "local%s@example.com", ids[i]);
        local_edit(&e, rec, "first_name", "LocalOnlyFirst");
        local_edit(&e, rec, "last_name", "LocalLast");
        local_edit(&e, rec, "email", email);
        remote_touch(ids[i], "lastname", "RemoteLast", NULL);
        json_object_put(rec);
    }
    json_object *r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"bidirectional\",\"conflict_strategy\":\"manual\"}", INTEG_OK);
    CHECK(r && jint(r, "conflicts") == 3);
    json_object_put(r);
    /* Edited again while the conflict is open: that is the local value now. */
    json_object *rec = local_of(&e, "1014");
    if (rec) {
        local_edit(&e, rec, "first_name", "LocalOnlyFirst2");
        json_object_put(rec);
    }
    const char *choices[] = {"{\"choose\":\"local\"}", "{\"choose\":\"remote\"}",
                             "{\"data\":{\"email\":\"data1015@example.com\",\"first_name\":\"DataFirst\",\"last_name\":\"DataLast\"}}"};
    /* What each side holds after: the remote's email, first and last name,
     * then the local ones (NULL: the remote's first name as it was). */
    const char *want[3][6] = {
        {"local1013@example.com", NULL, "RemoteLast", "local1013@example.com", "LocalOnlyFirst", "RemoteLast"},
        {NULL, NULL, "RemoteLast", NULL, "LocalOnlyFirst2", "RemoteLast"},
        {"data1015@example.com", NULL, "RemoteLast", "data1015@example.com", "DataFirst", "RemoteLast"},
    };
    for (int i = 0; i < 3; i++) {
        json_object *c = open_conflict_of(&e, ids[i]);
        CHECK(c != NULL);
        if (!c)
            continue;
        json_object *rc0 = remote_contact(ids[i]);
        char email0[128];
        snprintf(email0, sizeof email0, "%s", remote_prop(rc0, "email") ? remote_prop(rc0, "email") : "");
        json_object_put(rc0);
        CHECK_OK(integ_conflict_resolve(e.s, jstr(c, "id"), choices[i]));
        json_object *rc = remote_contact(ids[i]);
        json_object *loc = local_of(&e, ids[i]);
        json_object *ld = json_object_object_get(loc, "data");
        const char *got[6] = {remote_prop(rc, "email"), remote_prop(rc, "firstname"), remote_prop(rc, "lastname"),
                              jstr(ld, "email"), jstr(ld, "first_name"), jstr(ld, "last_name")};
        const char *exp[6];
        for (int k = 0; k < 6; k++)
            exp[k] = want[i][k] ? want[i][k] : k == 1 ? first0[i] : email0;
        static const char *const what[] = {"remote email", "remote firstname", "remote lastname",
                                           "local email", "local first_name", "local last_name"};
        for (int k = 0; k < 6; k++) {
            if (!got[k] || strcmp(got[k], exp[k]))
                fprintf(stderr, "  %s: %s %s, want %s\n", choices[i], what[k], got[k] ? got[k] : "-", exp[k]);
            CHECK(got[k] && !strcmp(got[k], exp[k]));
        }
        json_object_put(loc);
        json_object_put(rc);
        json_object_put(c);
    }
    /* Settled: the next run has nothing to push and finds no conflict. */
    r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"bidirectional\",\"conflict_strategy\":\"manual\"}", INTEG_OK);
    CHECK(r && jint(r, "conflicts") == 0 && jint(r, "records_pushed") == 0);
    json_object_put(r);
    env_close(&e);
}

/* The SQLite store with one knob: counting open conflicts can fail. */
static const integ_store *sqlite_store;
static int fail_conflict_count;

static int failing_count(void *tx, integ_store_kind kind, const char *q, int64_t *out)
{
    if (kind == INTEG_KIND_CONFLICT && fail_conflict_count)
        return integ_error_set(INTEG_ESTORE, "test: count: disk I/O error (injected)");
    return sqlite_store->count(tx, kind, q, out);
}

/* A store that cannot say whether a record has an open conflict must stop
 * the push: reading the error as "no conflict" would overwrite the remote
 * side of a conflict nobody has resolved. */
static void test_conflict_check_error_stops_push(void)
{
    void *data = NULL;
    if (integ_store_sqlite_new(&sqlite_store, &data, ":memory:") != INTEG_OK) {
        CHECK(!"sqlite store");
        return;
    }
    integ_store st = *sqlite_store;
    st.count = failing_count;
    struct env e;
    if (env_open_store(&e, NULL, &st, data)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(control("/_sandbox/reset", "{}"));
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK));
    json_object *rec = local_of(&e, "1005");
    CHECK(rec != NULL);
    if (rec) {
        local_edit(&e, rec, "first_name", "L");
        remote_touch("1005", "firstname", "R", NULL);
        json_object *r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"bidirectional\",\"conflict_strategy\":\"manual\"}", INTEG_OK);
        CHECK(r && jint(r, "conflicts") == 1);
        json_object_put(r);
        json_object_put(rec);
    }
    /* Edited again locally while the conflict is open: the push holds it. */
    rec = local_of(&e, "1005");
    if (rec) {
        local_edit(&e, rec, "first_name", "L2");
        json_object_put(rec);
    }
    fail_conflict_count = 1;
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_ESTORE));
    CHECK(strstr(integ_errmsg(), "injected") != NULL);
    fail_conflict_count = 0;
    json_object *rc = remote_contact("1005");
    CHECK_STR(remote_prop(rc, "firstname"), "R");
    json_object_put(rc);
    /* And when the store answers, the conflict still holds it. */
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_OK));
    rc = remote_contact("1005");
    CHECK_STR(remote_prop(rc, "firstname"), "R");
    json_object_put(rc);
    env_close(&e);
}

/* A local change whose time is not after the push watermark (written in
 * the millisecond of the newest record the last push saw, or committed
 * after that push listed) is still pushed; records already pushed are
 * not sent again. */
static void test_push_watermark_overlap(void)
{
    struct env e;
    if (env_open(&e, NULL)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(control("/_sandbox/reset", "{}"));
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK));
    char *out = NULL;
    CHECK_OK(integ_entity_put(e.s, "contacts",
                              "{\"data\":{\"email\":\"same-ms@example.com\",\"first_name\":\"Same\",\"last_name\":\"Ms\"}}", &out));
    json_object *rec = out ? json_tokener_parse(out) : NULL, *row = NULL;
    integ_free(out);
    void *tx = NULL;
    CHECK_OK(ig_tx_begin(e.ctx, 0, &tx));
    CHECK_OK(ig_tx_end(e.ctx, tx, 1, ig_store_get(e.ctx, tx, INTEG_KIND_ENTITY, "acme", jstr(rec, "id"), &row)));
    int64_t t = jint(row, "updated_at_ms");
    CHECK(t > 0);
    json_object_put(row);
    json_object_put(rec);
    /* The last push ended at this very millisecond. */
    char ck[512];
    snprintf(ck, sizeof ck, "{\"id\":\"%s:contacts:push\",\"tenant_id\":\"acme\",\"integration_id\":\"%s\",\"entity\":\"contacts:push\",\"hwm_ms\":%lld}",
             e.id, e.id, (long long)t);
    json_object *cko = json_tokener_parse(ck);
    CHECK_OK(ig_tx_begin(e.ctx, 1, &tx));
    CHECK_OK(ig_tx_end(e.ctx, tx, 1, ig_store_put(e.ctx, tx, INTEG_KIND_CHECKPOINT, cko, INTEG_PUT_UPSERT)));
    json_object_put(cko);
    json_object *r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_OK);
    json_object *p = json_object_object_get(r, "push");
    CHECK(p && jint(p, "created") == 1);
    json_object_put(r);
    /* Read again in the overlap, but not sent again. */
    r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_OK);
    CHECK(r && jint(r, "records_pushed") == 0);
    json_object_put(r);
    env_close(&e);
}

static void test_dry_run_writes_nothing(void)
{
    struct env e;
    if (env_open(&e, NULL)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(control("/_sandbox/reset", "{}"));
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK));
    json_object *rec = local_of(&e, "1008");
    if (rec) {
        local_edit(&e, rec, "first_name", "DryLocal");
        json_object_put(rec);
    }
    remote_touch("1009", "firstname", "DryRemote", NULL);
    char *out = NULL, *before = NULL;
    CHECK_OK(integ_entities_list(e.s, "contacts", "{\"limit\":1000}", &before));
    json_object *stats0 = control("/_sandbox/stats", NULL);
    json_object *r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"bidirectional\",\"dry_run\":true}", INTEG_OK);
    CHECK(r && jint(r, "records_updated") == 1 && jint(r, "records_pushed") == 1);
    json_object_put(r);
    json_object *stats1 = control("/_sandbox/stats", NULL);
    /* No write reached the sandbox; the store is unchanged. */
    json_object *w0 = json_object_object_get(json_object_object_get(stats0, "by_path"), "PATCH /hubspot/crm/v3/objects/contacts/{id}");
    json_object *w1 = json_object_object_get(json_object_object_get(stats1, "by_path"), "PATCH /hubspot/crm/v3/objects/contacts/{id}");
    CHECK(json_object_get_int(w0) == json_object_get_int(w1));
    CHECK_OK(integ_entities_list(e.s, "contacts", "{\"limit\":1000}", &out));
    CHECK_STR(out, before);
    integ_free(out);
    integ_free(before);
    json_object *rc = remote_contact("1008");
    CHECK(strcmp(remote_prop(rc, "firstname"), "DryLocal") != 0);
    json_object_put(rc);
    json_object_put(stats0);
    json_object_put(stats1);
    env_close(&e);
}

/* HubSpot archives: its deleted-records request (archived=true) finds them. */
static void test_remote_archive(void)
{
    struct env e;
    if (env_open(&e, NULL)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(control("/_sandbox/reset", "{}"));
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK));
    json_object_put(control("/_sandbox/touch", "{\"system\":\"hubspot\",\"entity\":\"contacts\",\"id\":\"1010\",\"archived\":true}"));
    json_object *r = run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK);
    CHECK(r && jint(r, "records_deleted") == 1);
    json_object_put(r);
    json_object *loc = local_of(&e, "1010");
    CHECK(loc && json_object_get_boolean(json_object_object_get(loc, "deleted")));
    json_object_put(loc);
    env_close(&e);
}

/* Local deletions go out only when the integration's config says so. */
static void test_local_delete(void)
{
    for (int on = 0; on <= 1; on++) {
        struct env e;
        if (env_open(&e, on ? "{\"delete_remote\":true}" : NULL)) {
            CHECK(!"env_open");
            return;
        }
        json_object_put(control("/_sandbox/reset", "{}"));
        json_object_put(run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK));
        json_object *loc = local_of(&e, "1012");
        if (!loc) {
            CHECK(!"local 1012");
            env_close(&e);
            return;
        }
        CHECK_OK(integ_entity_delete(e.s, "contacts", jstr(loc, "id")));
        json_object *r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_OK);
        json_object *p = json_object_object_get(r, "push");
        CHECK(p && jint(p, "deleted") == on);
        json_object_put(r);
        json_object *rc = remote_contact("1012");
        /* Archived in HubSpot: the object read answers 404. */
        CHECK(on ? json_object_object_get(rc, "properties") == NULL : json_object_object_get(rc, "properties") != NULL);
        json_object_put(rc);
        json_object_put(loc);
        env_close(&e);
    }
}

/* How many remote contacts carry this email (the sandbox's own view). */
static int remote_count_email(const char *email)
{
    char full[256];
    static char buf[65536];
    buf[0] = 0;
    snprintf(full, sizeof full, "%s/hubspot/crm/v3/objects/contacts?limit=100&properties=email", sb.url);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, buf);
    curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    int n = 0;
    for (const char *p = buf; (p = strstr(p, email)); p++)
        n++;
    return n;
}

/* The SQLite store counting the commits that write entity links, and able
 * to refuse a settled (not pending) link: a process that dies after a
 * batch's remote call, before its links are saved. */
static int fail_settled_link, tx_has_link;
static int link_commits;

/* A link written (*failed: refused, as injected). */
static int link_put(const char *json, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *l = json_tokener_parse_ex(tok, json, (int)len);
    json_tokener_free(tok);
    int settled = !json_object_get_boolean(json_object_object_get(l, "pending"));
    json_object_put(l);
    if (fail_settled_link && settled)
        return integ_error_set(INTEG_ESTORE, "test: put: disk I/O error (injected)");
    tx_has_link = 1;
    return INTEG_OK;
}

static int counting_put(void *tx, integ_store_kind kind, const char *json, const unsigned char *blob, size_t blob_len,
                        integ_put_mode mode)
{
    int rc = kind == INTEG_KIND_ENTITY_LINK ? link_put(json, strlen(json)) : INTEG_OK;
    return rc ? rc : sqlite_store->put(tx, kind, json, blob, blob_len, mode);
}

static int counting_put_fields(void *tx, integ_store_kind kind, const char *json, size_t json_len,
                               const integ_store_field *fields, size_t n_fields, const unsigned char *blob,
                               size_t blob_len, integ_put_mode mode)
{
    int rc = kind == INTEG_KIND_ENTITY_LINK ? link_put(json, json_len) : INTEG_OK;
    return rc ? rc : sqlite_store->put_fields(tx, kind, json, json_len, fields, n_fields, blob, blob_len, mode);
}

static int counting_end(void *tx, int commit)
{
    if (commit && tx_has_link)
        link_commits++;
    tx_has_link = 0;
    return sqlite_store->end(tx, commit);
}

/* A batch writes its links in one transaction (its creates' pending
 * markers in one more, before the remote call), and a failure after the
 * remote call loses no create: the markers are there, and the next push
 * adopts the records instead of creating them again. */
static void test_batch_links_one_transaction(void)
{
    void *data = NULL;
    if (integ_store_sqlite_new(&sqlite_store, &data, ":memory:") != INTEG_OK) {
        CHECK(!"sqlite store");
        return;
    }
    integ_store st = *sqlite_store;
    st.put = counting_put;
    st.put_fields = counting_put_fields;
    st.end = counting_end;
    struct env e;
    if (env_open_store(&e, NULL, &st, data)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(control("/_sandbox/reset", "{}"));
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK));
    /* Three updates: one batch, one commit of links. */
    const char *ids[] = {"1016", "1017", "1018"};
    for (int i = 0; i < 3; i++) {
        json_object *rec = local_of(&e, ids[i]);
        if (rec)
            local_edit(&e, rec, "first_name", "Batched");
        json_object_put(rec);
    }
    link_commits = 0;
    json_object *r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_OK);
    json_object *p = json_object_object_get(r, "push");
    CHECK(p && jint(p, "updated") == 3);
    CHECK(link_commits == 1);
    json_object_put(r);
    for (int i = 0; i < 3; i++) {
        json_object *rc = remote_contact(ids[i]);
        CHECK_STR(remote_prop(rc, "firstname"), "Batched");
        json_object_put(rc);
    }
    /* Three creates: the markers, then the batch's links. */
    for (int i = 0; i < 3; i++) {
        char put[256], *out = NULL;
        snprintf(put, sizeof put, "{\"data\":{\"email\":\"batch%d@example.com\",\"first_name\":\"Batch\",\"last_name\":\"B%d\"}}", i, i);
        CHECK_OK(integ_entity_put(e.s, "contacts", put, &out));
        integ_free(out);
    }
    link_commits = 0;
    r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_OK);
    p = json_object_object_get(r, "push");
    CHECK(p && jint(p, "created") == 3);
    CHECK(link_commits == 2);
    json_object_put(r);
    /* Three more, and the links of the batch cannot be saved. */
    for (int i = 3; i < 6; i++) {
        char put[256], *out = NULL;
        snprintf(put, sizeof put, "{\"data\":{\"email\":\"batch%d@example.com\",\"first_name\":\"Batch\",\"last_name\":\"B%d\"}}", i, i);
        CHECK_OK(integ_entity_put(e.s, "contacts", put, &out));
        integ_free(out);
    }
    fail_settled_link = 1;
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_ESTORE));
    CHECK(strstr(integ_errmsg(), "injected") != NULL);
    fail_settled_link = 0;
    for (int i = 3; i < 6; i++) {
        char email[64];
        snprintf(email, sizeof email, "batch%d@example.com", i);
        CHECK(remote_count_email(email) == 1);
    }
    r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_OK);
    p = json_object_object_get(r, "push");
    CHECK(p && jint(p, "adopted") == 3 && jint(p, "created") == 0);
    json_object_put(r);
    for (int i = 0; i < 6; i++) {
        char email[64];
        snprintf(email, sizeof email, "batch%d@example.com", i);
        CHECK(remote_count_email(email) == 1);
    }
    r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_OK);
    CHECK(r && jint(r, "records_pushed") == 0);
    json_object_put(r);
    env_close(&e);
}

/* What a process killed inside a push leaves behind: a pending link (the
 * marker written before the remote create), with or without the remote
 * record. The next push neither loses nor duplicates it. */
static void test_crash_during_push(void)
{
    struct env e;
    if (env_open(&e, NULL)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(control("/_sandbox/reset", "{}"));
    json_object_put(run_sync(&e, "{\"entity\":\"contacts\"}", INTEG_OK));
    const char *emails[] = {"crash-before@example.com", "crash-after@example.com"};
    for (int step = 0; step < 2; step++) {
        char put[256], *out = NULL;
        snprintf(put, sizeof put, "{\"data\":{\"email\":\"%s\",\"first_name\":\"Crash\",\"last_name\":\"Step %d\"}}", emails[step], step);
        CHECK_OK(integ_entity_put(e.s, "contacts", put, &out));
        json_object *rec = json_tokener_parse(out);
        integ_free(out);
        if (step == 1) {
            /* The remote create happened; the process died before saving the link. */
            char body[256];
            snprintf(body, sizeof body, "{\"properties\":{\"email\":\"%s\",\"firstname\":\"Crash\"}}", emails[step]);
            char full[256];
            static char sink_buf[65536];
            sink_buf[0] = 0;
            snprintf(full, sizeof full, "%s/hubspot/crm/v3/objects/contacts", sb.url);
            CURL *c = curl_easy_init();
            struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
            h = curl_slist_append(h, "Content-Type: application/json");
            curl_easy_setopt(c, CURLOPT_URL, full);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
            curl_easy_setopt(c, CURLOPT_WRITEDATA, sink_buf);
            curl_easy_perform(c);
            curl_slist_free_all(h);
            curl_easy_cleanup(c);
            CHECK(remote_count_email(emails[step]) == 1);
        }
        char link[512];
        snprintf(link, sizeof link,
                 "{\"id\":\"pending-%d\",\"tenant_id\":\"acme\",\"integration_id\":\"%s\",\"entity\":\"contacts\","
                 "\"local_entity\":\"contacts\",\"local_id\":\"%s\",\"external_id\":null,\"pending\":true}",
                 step, e.id, jstr(rec, "id"));
        void *tx = NULL;
        CHECK_OK(e.ctx->store->begin(e.ctx->store_data, 1, &tx));
        CHECK_OK(e.ctx->store->put(tx, INTEG_KIND_ENTITY_LINK, link, NULL, 0, INTEG_PUT_INSERT));
        CHECK_OK(e.ctx->store->end(tx, 1));
        json_object *r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_OK);
        json_object *p = json_object_object_get(r, "push");
        if (step == 0)
            CHECK(p && jint(p, "created") == 1 && jint(p, "adopted") == 0);
        else
            CHECK(p && jint(p, "adopted") == 1 && jint(p, "created") == 0);
        json_object_put(r);
        CHECK(remote_count_email(emails[step]) == 1);
        /* And settled: the next push has nothing to do for it. */
        r = run_sync(&e, "{\"entity\":\"contacts\",\"direction\":\"push\"}", INTEG_OK);
        CHECK(r && jint(r, "records_pushed") == 0);
        json_object_put(r);
        json_object_put(rec);
    }
    env_close(&e);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    sandbox_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    if (sandbox_start())
        return 1;
    RUN(test_push_updates_and_creates);
    RUN(test_strategies);
    RUN(test_merge_fields_and_policies);
    RUN(test_manual_resolution);
    RUN(test_resolution_respects_field_policies);
    RUN(test_conflict_check_error_stops_push);
    RUN(test_push_watermark_overlap);
    RUN(test_dry_run_writes_nothing);
    RUN(test_remote_archive);
    RUN(test_local_delete);
    RUN(test_crash_during_push);
    RUN(test_batch_links_one_transaction);
    sandbox_stop(&sb);
    TEST_END();
}
