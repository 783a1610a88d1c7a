/* Pull sync through the REST engine against a scripted loopback server:
 * every pagination style, incremental runs, faults (429, 5xx, 401,
 * truncated JSON), resume after a failure and after SIGKILL, the
 * one-sync-at-a-time lease, cancel, per-record mapping errors, dry runs,
 * mappings and local entities. Time is injected: nothing really waits. */
#include <json-c/json.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx.h"
#include "test.h"
#include "util.h"

#define TOTAL 35
#define PAGE 10

/* ---- the scripted server ------------------------------------------------- */

static struct {
    atomic_int requests;
    atomic_int rate_limit_every;  /* every Nth request: 429 Retry-After: 2 */
    atomic_int error_every;       /* every Nth request: 503 */
    atomic_int unauthorized;      /* all requests: 401 */
    atomic_int truncate_at;       /* the Nth request gets a truncated body */
    atomic_int missing_email_id;  /* record with this id has no email */
    atomic_int bump;              /* records >= bump get a newer timestamp */
    atomic_int last_since_seen;   /* 1 when a since filter came in */
    atomic_int overlap;           /* cursor pages after the first repeat this many records */
    atomic_int gone_id;           /* /stubs/one/<this id> answers 404 (deleted after listing) */
    atomic_int gets;              /* requests to /stubs/one/<id> */
    atomic_int credits_out;       /* every list answers 200 with an INSUFFICIENT_CREDITS error */
    int total;
    char base[64];
} srv;

static long rec_updated_s(int i)
{
    long t = 1704067200L + i * 60L; /* 2024-01-01 + i minutes */
    if (srv.bump && i >= srv.bump)
        t += 86400L * 30;
    return t;
}

static void rec_time(int i, char out[32])
{
    time_t t = (time_t)rec_updated_s(i);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Records newer than `since` (unix s, -1 none), in id order. */
static int select_ids(long since, int *ids)
{
    int n = 0;
    for (int i = 1; i <= srv.total; i++)
        if (since < 0 || rec_updated_s(i) >= since)
            ids[n++] = i;
    return n;
}

static json_object *make_record(int i)
{
    char t[32], email[64], name[32];
    rec_time(i, t);
    snprintf(email, sizeof email, "  Person%d@Example.COM ", i);
    snprintf(name, sizeof name, "Person %d", i);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "id", json_object_new_int(i));
    json_object_object_add(r, "name", json_object_new_string(name));
    if (i != srv.missing_email_id)
        json_object_object_add(r, "email", json_object_new_string(email));
    json_object_object_add(r, "updated", json_object_new_string(t));
    return r;
}

static enum MHD_Result reply(struct MHD_Connection *conn, int status, const char *body, const char *link,
                             const char *extra_name, const char *extra_value)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (link)
        MHD_add_response_header(resp, "Link", link);
    if (extra_name)
        MHD_add_response_header(resp, extra_name, extra_value);
    enum MHD_Result r = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}

static long since_param(struct MHD_Connection *conn)
{
    const char *s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
    const char *f = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "$filter");
    int64_t ms;
    if (s && ig_parse_rfc3339(s, &ms) == 0) {
        srv.last_since_seen = 1;
        return (long)(ms / 1000);
    }
    if (f && strstr(f, "updated ge ") && ig_parse_rfc3339(strstr(f, "updated ge ") + 11, &ms) == 0) {
        srv.last_since_seen = 1;
        return (long)(ms / 1000);
    }
    return -1;
}

struct body_buf {
    char data[4096];
    size_t len;
};

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    (void)method;
    if (!*con_cls) {
        *con_cls = calloc(1, sizeof(struct body_buf));
        return MHD_YES;
    }
    struct body_buf *bb = *con_cls;
    if (*upload_size) {
        size_t n = *upload_size < sizeof bb->data - bb->len - 1 ? *upload_size : sizeof bb->data - bb->len - 1;
        memcpy(bb->data + bb->len, upload, n);
        bb->len += n;
        *upload_size = 0;
        return MHD_YES;
    }
    int nreq = ++srv.requests;
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (srv.unauthorized || !auth || strcmp(auth, "Bearer test-token") != 0)
        return reply(conn, 401, "{\"message\":\"Authentication credentials not found\"}", NULL, NULL, NULL);
    if (srv.rate_limit_every && nreq % srv.rate_limit_every == 0)
        return reply(conn, 429, "{\"message\":\"slow down\"}", NULL, "Retry-After", "2");
    if (srv.error_every && nreq % srv.error_every == 0)
        return reply(conn, 503, "{\"message\":\"try later\"}", NULL, NULL, NULL);
    if (!strcmp(url, "/ping"))
        return reply(conn, 200, "{\"ok\":true}", NULL, NULL, NULL);
    if (srv.credits_out) /* Xledger-style: an exhausted budget is an HTTP 200 */
        return reply(conn, 200, "{\"data\":null,\"error\":{\"code\":\"INSUFFICIENT_CREDITS\"}}", NULL, NULL,
                     NULL);
    if (!strncmp(url, "/stubs/one/", 11)) { /* the get request of fetch_each */
        int id = atoi(url + 11);
        srv.gets++;
        if (id < 1 || id > srv.total || id == srv.gone_id)
            return reply(conn, 404, "{\"message\":\"no such record\"}", NULL, NULL, NULL);
        json_object *rec = make_record(id);
        enum MHD_Result r = reply(conn, 200, json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN), NULL,
                                  NULL, NULL);
        json_object_put(rec);
        return r;
    }

    int ids[1000];
    long since = since_param(conn);
    int n = select_ids(since, ids);
    int start = 0, count = PAGE;
    json_object *doc = json_object_new_object(), *arr = json_object_new_array();
    char link[512] = "", extra_v[32] = "";
    const char *extra_n = NULL;
    const char *style = url + 1; /* "/cursor/items" -> "cursor/items" */

    int stubs = !strncmp(style, "stubs", 5); /* a cursor list of {id, thread} stubs (Gmail) */
    if (!strncmp(style, "cursor", 6) || stubs) {
        const char *after = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "after");
        start = after ? atoi(after) : 0;
        if (start > 0)
            start -= srv.overlap; /* a re-anchored query: the previous page's tail again */
    } else if (!strncmp(style, "nexturl", 7) || !strncmp(style, "link", 4)) {
        const char *p = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "skip");
        start = p ? atoi(p) : 0;
    } else if (!strncmp(style, "page", 4)) {
        const char *p = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "page");
        const char *sz = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "per_page");
        count = sz ? atoi(sz) : PAGE;
        start = ((p ? atoi(p) : 1) - 1) * count;
        snprintf(extra_v, sizeof extra_v, "%d", (n + count - 1) / count);
        extra_n = !strncmp(style, "pagetotal", 9) ? "X-Total-Pages" : NULL;
    } else if (!strncmp(style, "offset", 6)) {
        const char *o = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "offset");
        const char *l = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
        start = o ? atoi(o) : 0;
        count = l ? atoi(l) : PAGE;
    } else if (!strncmp(style, "graphql", 7)) {
        json_object *req = json_tokener_parse(bb->data);
        json_object *vars = NULL, *after = NULL;
        json_object_object_get_ex(req, "variables", &vars);
        if (json_object_object_get_ex(vars, "after", &after) && after)
            start = atoi(json_object_get_string(after));
        json_object_put(req);
    } else {
        json_object_put(doc);
        json_object_put(arr);
        return reply(conn, 404, "{\"message\":\"no such path\"}", NULL, NULL, NULL);
    }
    if (start < 0)
        start = 0;
    int end = start + count < n ? start + count : n;
    for (int k = start; k < end; k++) {
        json_object *rec = make_record(ids[k]);
        if (stubs) {
            json_object *stub = json_object_new_object();
            json_object_object_add(stub, "id", json_object_get(json_object_object_get(rec, "id")));
            json_object_object_add(stub, "thread", json_object_new_string("t1"));
            json_object_put(rec);
            rec = stub;
        }
        json_object_array_add(arr, rec);
    }
    int more = end < n;
    char num[32];
    snprintf(num, sizeof num, "%d", end);
    if (!strncmp(style, "cursor", 6) || stubs) {
        json_object_object_add(doc, "results", arr);
        if (more) {
            json_object *paging = json_object_new_object(), *next = json_object_new_object();
            json_object_object_add(next, "after", json_object_new_string(num));
            json_object_object_add(paging, "next", next);
            json_object_object_add(doc, "paging", paging);
        }
    } else if (!strncmp(style, "nexturl", 7)) {
        json_object_object_add(doc, "value", arr);
        if (more) {
            char next[256];
            /* Alternate relative and absolute links, as OData servers may. */
            if (end % 20 == 0)
                snprintf(next, sizeof next, "%s/nexturl/items?skip=%d", srv.base, end);
            else
                snprintf(next, sizeof next, "/nexturl/items?skip=%d", end);
            json_object_object_add(doc, "@odata.nextLink", json_object_new_string(next));
        }
    } else if (!strncmp(style, "link", 4)) {
        json_object_object_add(doc, "items", arr);
        if (more)
            snprintf(link, sizeof link, "<%s/link/items?skip=%d>; rel=\"next\", <%s/link/items?skip=0>; rel=\"previous\"",
                     srv.base, end, srv.base);
    } else if (!strncmp(style, "graphql", 7)) {
        json_object *data = json_object_new_object(), *items = json_object_new_object(),
                    *edges = json_object_new_array(), *pi = json_object_new_object();
        for (size_t k = 0; k < json_object_array_length(arr); k++) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "node", json_object_get(json_object_array_get_idx(arr, k)));
            json_object_array_add(edges, e);
        }
        json_object_put(arr);
        json_object_object_add(pi, "hasNextPage", json_object_new_boolean(more));
        json_object_object_add(pi, "endCursor", json_object_new_string(num));
        json_object_object_add(items, "edges", edges);
        json_object_object_add(items, "pageInfo", pi);
        json_object_object_add(data, "items", items);
        json_object_object_add(doc, "data", data);
    } else {
        json_object_object_add(doc, "items", arr);
    }
    const char *body = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
    char *copy = strdup(body);
    if (srv.truncate_at && nreq == srv.truncate_at)
        copy[strlen(copy) / 2] = '\0';
    enum MHD_Result r = reply(conn, 200, copy, link[0] ? link : NULL, extra_n, extra_v);
    free(copy);
    json_object_put(doc);
    return r;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)c;
    (void)t;
    free(*con_cls);
    *con_cls = NULL;
}

static struct MHD_Daemon *server_start(void)
{
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                                            handler, NULL, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                                            MHD_OPTION_END);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(srv.base, sizeof srv.base, "http://127.0.0.1:%u", (unsigned)info->port);
    return d;
}

static void server_reset(void)
{
    srv.requests = 0;
    srv.rate_limit_every = srv.error_every = srv.unauthorized = srv.truncate_at = 0;
    srv.missing_email_id = srv.bump = srv.last_since_seen = srv.overlap = 0;
    srv.gone_id = srv.gets = srv.credits_out = 0;
    srv.total = TOTAL;
}

/* ---- an injected clock: sleeping advances time ------------------------------ */

static _Atomic int64_t fake_now = 1750000000000;
static _Atomic int64_t slept_ms;
static int64_t fk_now(void *p) { (void)p; return fake_now; }
static void fk_sleep(void *p, int64_t ms) { (void)p; fake_now += ms; slept_ms += ms; }
static uint32_t fk_rand(void *p) { (void)p; return 0x80000000u; }
static const ig_clock fake_clock = {fk_now, fk_sleep, fk_rand, NULL};

/* ---- fixtures ---------------------------------------------------------------- */

/* The manifest's rate_limit section, when a test sets one. */
static const char *g_rate_limit;

/* A test definition per pagination style, pointed at the server. */
static const char *manifest_for(const char *style, char *buf, size_t cap)
{
    char entity[1400], rate_limit[512] = "";
    const char *pag, *records = "$.items", *list = "{\"method\":\"GET\"}", *path = "/%s/items", *more = "";
    const char *inc = ",\"incremental\":{\"in\":\"query\",\"param\":\"since\",\"format\":\"rfc3339\"}";
    if (!strcmp(style, "cursor") || !strcmp(style, "stubs")) {
        pag = "{\"type\":\"cursor\",\"cursor_path\":\"$.paging.next.after\",\"param\":\"after\"}";
        records = "$.results";
        if (!strcmp(style, "stubs"))
            more = ",\"fetch_each\":true,\"get\":{\"method\":\"GET\",\"path\":\"/stubs/one/{id}\"}";
    } else if (!strcmp(style, "nexturl")) {
        pag = "{\"type\":\"next_url\",\"next_path\":\"$['@odata.nextLink']\"}";
        records = "$.value";
        inc = ",\"incremental\":{\"in\":\"filter\",\"param\":\"$filter\",\"template\":\"updated ge {since}\",\"format\":\"rfc3339\"}";
    } else if (!strcmp(style, "link")) {
        pag = "{\"type\":\"link_header\",\"rel\":\"next\"}";
    } else if (!strcmp(style, "pagetotal")) {
        pag = "{\"type\":\"page\",\"param\":\"page\",\"size_param\":\"per_page\",\"size\":10,\"total_pages_header\":\"X-Total-Pages\"}";
    } else if (!strcmp(style, "pageshort")) {
        pag = "{\"type\":\"page\",\"param\":\"page\",\"size_param\":\"per_page\",\"size\":10}";
    } else if (!strcmp(style, "offset")) {
        pag = "{\"type\":\"offset\",\"offset_param\":\"offset\",\"limit_param\":\"limit\",\"limit\":10}";
    } else {
        pag = "{\"type\":\"graphql_cursor\",\"page_info_path\":\"$.data.items.pageInfo\",\"cursor_variable\":\"after\"}";
        records = "$.data.items.edges[*].node";
        list = "{\"method\":\"POST\",\"body\":{\"query\":\"query($after: String) { items(after: $after) { edges { node { id } } } }\",\"variables\":{}}}";
        inc = "";
    }
    char p[64];
    snprintf(p, sizeof p, path, style);
    snprintf(entity, sizeof entity,
             "{\"local_entity\":\"contacts\",\"path\":\"%s\",\"list\":%s,\"records_path\":\"%s\",\"id_field\":\"id\","
             "\"updated_field\":\"updated\",\"pagination\":%s%s%s,"
             "\"default_mapping\":{\"field_map\":{\"email\":\"email\",\"first_name\":\"name\",\"external_updated_at\":\"updated\"},"
             "\"transform_rules\":[{\"target\":\"email\",\"op\":\"trim\"},{\"target\":\"email\",\"op\":\"lowercase\"}],"
             "\"required\":[\"email\"]}}",
             p, list, records, pag, inc, more);
    if (g_rate_limit)
        snprintf(rate_limit, sizeof rate_limit, "\"rate_limit\":%s,", g_rate_limit);
    snprintf(buf, cap,
             "{\"manifest_version\":1,\"key\":\"t%s-crm\",\"name\":\"Test %s\",\"category\":\"crm\","
             "\"base_url\":\"https://api.example.com\","
             "\"auth\":{\"default\":\"api_key\",\"methods\":{\"api_key\":{\"apply\":{\"in\":\"header\",\"name\":\"Authorization\","
             "\"prefix\":\"Bearer \",\"value\":\"{credentials.api_key}\"},\"credentials_schema\":{\"type\":\"object\","
             "\"properties\":{\"api_key\":{\"type\":\"string\"}},\"required\":[\"api_key\"]}}}},"
             "\"config_schema\":{\"type\":\"object\",\"properties\":{\"sync_interval\":{\"type\":\"integer\",\"minimum\":60,"
             "\"maximum\":604800,\"default\":3600},\"auto_sync\":{\"type\":\"boolean\",\"default\":false},"
             "\"entities\":{\"type\":\"array\",\"uniqueItems\":true,\"items\":{\"type\":\"string\",\"enum\":[\"items\"]}}},"
             "\"additionalProperties\":false},"
             "\"capabilities\":[\"pull\"%s],%s\"entities\":{\"items\":%s},"
             "\"test_request\":{\"method\":\"GET\",\"path\":\"/ping\"}}",
             style, style, inc[0] ? ",\"incremental\"" : "", rate_limit, entity);
    return buf;
}

struct env {
    integ_ctx *ctx;
    integ_session *s;
    char id[64];
    char path[64];
};

static int env_open(struct env *e, const char *style, int file)
{
    memset(e, 0, sizeof *e);
    char opts[1024];
    if (file)
        snprintf(e->path, sizeof e->path, "/tmp/integ-sync-%d.db", (int)getpid());
    snprintf(opts, sizeof opts,
             "{\"store\":\"sqlite:%s\",\"master_key\":\"" TEST_MASTER_KEY "\",\"http\":{\"allow_private_networks\":true,"
             "\"max_retries\":3},\"base_url_overrides\":{\"t%s-crm\":\"%s\"}}",
             file ? e->path : ":memory:", style, srv.base);
    if (integ_ctx_open(&e->ctx, opts) != INTEG_OK) {
        fprintf(stderr, "  open: %s\n", integ_errmsg());
        return -1;
    }
    ig_ctx_set_clock(e->ctx, &fake_clock);
    char m[4096], *out = NULL;
    if (integ_definition_register(e->ctx, manifest_for(style, m, sizeof m), NULL) != INTEG_OK) {
        fprintf(stderr, "  register: %s\n", integ_errmsg());
        return -1;
    }
    integ_session_open(&e->s, e->ctx, "acme", "alice", "[\"admin\"]");
    char req[256];
    snprintf(req, sizeof req, "{\"integration_definition_id\":\"t%s-crm\",\"credentials\":{\"api_key\":\"test-token\"}}", style);
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

static int env_reopen(struct env *e, const char *style)
{
    char opts[1024];
    snprintf(opts, sizeof opts,
             "{\"store\":\"sqlite:%s\",\"master_key\":\"" TEST_MASTER_KEY "\",\"http\":{\"allow_private_networks\":true,"
             "\"max_retries\":3},\"base_url_overrides\":{\"t%s-crm\":\"%s\"}}",
             e->path, style, srv.base);
    if (integ_ctx_open(&e->ctx, opts) != INTEG_OK)
        return -1;
    ig_ctx_set_clock(e->ctx, &fake_clock);
    return integ_session_open(&e->s, e->ctx, "acme", "alice", "[\"admin\"]");
}

static void env_close(struct env *e)
{
    integ_session_close(e->s);
    integ_ctx_close(e->ctx);
    if (e->path[0]) {
        char p[80];
        unlink(e->path);
        snprintf(p, sizeof p, "%s-wal", e->path);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", e->path);
        unlink(p);
    }
}

static json_object *run_sync(struct env *e, const char *req, int want_rc)
{
    char *out = NULL;
    int rc = integ_sync(e->s, e->id, req, NULL, NULL, &out);
    if (rc != want_rc)
        fprintf(stderr, "  sync %s returned %d (%s), want %d\n", req, rc, integ_errmsg(), want_rc);
    CHECK(rc == want_rc);
    json_object *o = out ? json_tokener_parse(out) : NULL;
    integ_free(out);
    return o;
}

static int64_t jint(json_object *o, const char *k) { return json_object_get_int64(json_object_object_get(o, k)); }
static const char *jstr(json_object *o, const char *k) { return json_object_get_string(json_object_object_get(o, k)); }

/* Every local contact exactly once, mapped. */
static void check_local_set(struct env *e, int want)
{
    char *out = NULL;
    CHECK_OK(integ_entities_list(e->s, "contacts", "{\"limit\":1000}", &out));
    json_object *l = json_tokener_parse(out);
    integ_free(out);
    CHECK((int)json_object_array_length(l) == want);
    int seen[1001] = {0}, dupes = 0;
    for (size_t i = 0; i < json_object_array_length(l); i++) {
        json_object *data = json_object_object_get(json_object_array_get_idx(l, i), "data");
        const char *email = jstr(data, "email");
        int n = 0;
        if (!email || sscanf(email, "person%d@example.com", &n) != 1 || n < 1 || n > 1000) {
            CHECK(!"a record was not mapped (trim + lowercase)");
            continue;
        }
        dupes += seen[n]++;
    }
    CHECK(dupes == 0);
    json_object_put(l);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_every_pagination_style(void)
{
    const char *styles[] = {"cursor", "nexturl", "link", "pagetotal", "pageshort", "offset", "graphql"};
    for (size_t i = 0; i < sizeof styles / sizeof *styles; i++) {
        server_reset();
        struct env e;
        if (env_open(&e, styles[i], 0)) {
            CHECK(!"env");
            continue;
        }
        json_object *r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
        if (!r || jint(r, "records_created") != TOTAL)
            fprintf(stderr, "  style %s: %s\n", styles[i], r ? json_object_to_json_string(r) : "(none)");
        CHECK(r && jint(r, "records_created") == TOTAL && jint(r, "records_processed") == TOTAL);
        CHECK(r && jint(r, "pages") == (TOTAL + PAGE - 1) / PAGE + (!strcmp(styles[i], "pageshort") ? 0 : 0));
        CHECK(r && !strcmp(jstr(r, "status"), "success"));
        check_local_set(&e, TOTAL);
        json_object_put(r);
        /* The second run reads incrementally (where the style has a
         * watermark) and skips what it already has. */
        int before = srv.requests;
        r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
        CHECK(r && jint(r, "records_created") == 0 && jint(r, "records_updated") == 0);
        if (strcmp(styles[i], "graphql") != 0) {
            CHECK(srv.last_since_seen == 1);
            CHECK(r && !strcmp(jstr(r, "sync_type"), "incremental"));
            CHECK(srv.requests - before == 1); /* only the newest record comes back */
        }
        json_object_put(r);
        check_local_set(&e, TOTAL);
        env_close(&e);
    }
}

static void test_incremental_picks_up_changes(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK));
    srv.bump = 30; /* records 30..35 change remotely */
    json_object *r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    CHECK(r && jint(r, "records_updated") == 6 && jint(r, "records_created") == 0);
    json_object_put(r);
    /* full re-reads everything but writes nothing new. */
    r = run_sync(&e, "{\"entity\":\"items\",\"full\":true}", INTEG_OK);
    CHECK(r && jint(r, "records_processed") == TOTAL && jint(r, "records_skipped") == TOTAL);
    CHECK(r && !strcmp(jstr(r, "sync_type"), "full"));
    json_object_put(r);
    /* filter.modified_since wins over the watermark. */
    r = run_sync(&e, "{\"entity\":\"items\",\"filter\":{\"modified_since\":\"2024-01-01T00:20:00Z\"}}", INTEG_OK);
    CHECK(r && jint(r, "records_processed") == TOTAL - 19);
    json_object_put(r);
    env_close(&e);
}

/* A full read tells what disappeared remotely: the local records of the
 * missing ones are soft-deleted. */
static void test_full_read_detects_deletes(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK));
    srv.total = 30; /* records 31..35 are gone */
    /* An incremental run can't know. */
    json_object *r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    CHECK(r && jint(r, "records_deleted") == 0);
    json_object_put(r);
    r = run_sync(&e, "{\"entity\":\"items\",\"full\":true}", INTEG_OK);
    CHECK(r && jint(r, "records_deleted") == 5 && jint(r, "records_updated") == 0);
    json_object_put(r);
    check_local_set(&e, 30);
    char *out = NULL;
    CHECK_OK(integ_entities_list(e.s, "contacts", "{\"include_deleted\":true,\"limit\":100}", &out));
    json_object *l = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(l) == 35);
    json_object_put(l);
    /* Deleted once: the next full read finds nothing more to delete. */
    r = run_sync(&e, "{\"entity\":\"items\",\"full\":true}", INTEG_OK);
    CHECK(r && jint(r, "records_deleted") == 0);
    json_object_put(r);
    env_close(&e);
}

/* Local records, deleted ones included: how many, and how many deleted. */
static int local_count(struct env *e, int *deleted)
{
    char *out = NULL;
    CHECK_OK(integ_entities_list(e->s, "contacts", "{\"include_deleted\":true,\"limit\":1000}", &out));
    json_object *l = json_tokener_parse(out);
    integ_free(out);
    int n = (int)json_object_array_length(l);
    *deleted = 0;
    for (int i = 0; i < n; i++)
        *deleted += json_object_get_boolean(json_object_object_get(json_object_array_get_idx(l, (size_t)i), "deleted"));
    json_object_put(l);
    return n;
}

/* A full read sees every record the remote lists, also one that fails its
 * mapping or is held by a manual conflict: neither is a remote deletion. */
static void test_full_read_keeps_failed_and_held(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK));
    /* Record 5 is still there, but now fails the mapping (no email). */
    srv.missing_email_id = 5;
    json_object *r = run_sync(&e, "{\"entity\":\"items\",\"full\":true}", INTEG_OK);
    CHECK(r && !strcmp(jstr(r, "status"), "partial"));
    CHECK(r && jint(r, "records_failed") == 1 && jint(r, "records_deleted") == 0);
    json_object_put(r);
    check_local_set(&e, TOTAL); /* record 5 keeps its last good version */
    int deleted = 0;
    CHECK(local_count(&e, &deleted) == TOTAL && deleted == 0);
    srv.missing_email_id = 0;

    /* A record edited locally and remotely, held for a person. */
    char *out = NULL;
    CHECK_OK(integ_entities_list(e.s, "contacts", "{\"limit\":1}", &out));
    json_object *l = json_tokener_parse(out);
    integ_free(out);
    char lid[64], put[256];
    snprintf(lid, sizeof lid, "%s", jstr(json_object_array_get_idx(l, 0), "id"));
    json_object_put(l);
    snprintf(put, sizeof put, "{\"id\":\"%s\",\"data\":{\"email\":\"local@example.com\",\"first_name\":\"L\"}}", lid);
    CHECK_OK(integ_entity_put(e.s, "contacts", put, &out));
    json_object *mine = json_tokener_parse(out);
    integ_free(out);
    int64_t version = jint(mine, "version");
    json_object_put(mine);
    srv.bump = 1; /* every record changes remotely */
    r = run_sync(&e, "{\"entity\":\"items\",\"full\":true,\"conflict_strategy\":\"manual\"}", INTEG_OK);
    CHECK(r && jint(r, "conflicts") == 1 && jint(r, "records_deleted") == 0);
    CHECK(r && jint(r, "records_updated") == TOTAL - 1);
    json_object_put(r);
    CHECK_OK(integ_entity_get(e.s, "contacts", lid, &out));
    json_object *rec = json_tokener_parse(out);
    integ_free(out);
    CHECK(!json_object_get_boolean(json_object_object_get(rec, "deleted")));
    CHECK_STR(jstr(json_object_object_get(rec, "data"), "email"), "local@example.com");
    CHECK(jint(rec, "version") == version); /* untouched: the local edit waits for a person */
    json_object_put(rec);
    CHECK(local_count(&e, &deleted) == TOTAL && deleted == 0);
    /* Real removals are still found. */
    srv.total = 30;
    r = run_sync(&e, "{\"entity\":\"items\",\"full\":true,\"conflict_strategy\":\"manual\"}", INTEG_OK);
    CHECK(r && jint(r, "records_deleted") == 5);
    json_object_put(r);
    env_close(&e);
}

/* A record that comes back after a full read found it gone is undeleted,
 * unchanged or not, by a full or an incremental read (the writer's plan
 * meets its link), and a later removal is found again. */
static void test_reappearing_record_undeleted(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK));
    int deleted = 0;
    for (int round = 0; round < 3; round++) {
        srv.total = 30; /* records 31..35 are gone */
        json_object *r = run_sync(&e, "{\"entity\":\"items\",\"full\":true}", INTEG_OK);
        CHECK(r && jint(r, "records_deleted") == 5);
        json_object_put(r);
        CHECK(local_count(&e, &deleted) == TOTAL && deleted == 5);
        /* Back: unchanged the first time, changed the second, unchanged
         * and read incrementally the third. */
        srv.total = TOTAL;
        srv.bump = round ? 31 : 0;
        r = run_sync(&e, round < 2 ? "{\"entity\":\"items\",\"full\":true}"
                                   : "{\"entity\":\"items\",\"filter\":{\"modified_since\":\"2024-01-01T00:00:00Z\"}}",
                     INTEG_OK);
        CHECK(r && jint(r, "records_updated") == 5 && jint(r, "records_created") == 0 &&
              jint(r, "records_deleted") == 0 && jint(r, "records_skipped") == TOTAL - 5);
        json_object_put(r);
        CHECK(local_count(&e, &deleted) == TOTAL && deleted == 0);
        check_local_set(&e, TOTAL);
        /* Seen again: skipped as unchanged from now on. */
        r = run_sync(&e, "{\"entity\":\"items\",\"full\":true}", INTEG_OK);
        CHECK(r && jint(r, "records_skipped") == TOTAL && jint(r, "records_updated") == 0);
        json_object_put(r);
    }
    env_close(&e);
}

/* A dry run of a full read reports the deletions the real run makes. */
static void test_dry_full_read_deletes_as_real(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    json_object_put(run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK));
    json_object *r = run_sync(&e, "{\"entity\":\"items\",\"full\":true,\"dry_run\":true}", INTEG_OK);
    CHECK(r && jint(r, "records_deleted") == 0 && jint(r, "records_skipped") == TOTAL);
    json_object_put(r);
    srv.total = 30;       /* records 31..35 are gone */
    srv.bump = 28;        /* 28..30 changed */
    srv.missing_email_id = 2; /* and 2 fails its mapping */
    r = run_sync(&e, "{\"entity\":\"items\",\"full\":true,\"dry_run\":true}", INTEG_OK);
    int64_t dry_deleted = r ? jint(r, "records_deleted") : -1;
    CHECK(r && jint(r, "records_updated") == 3 && jint(r, "records_failed") == 1);
    json_object_put(r);
    int deleted = 0;
    CHECK(local_count(&e, &deleted) == TOTAL && deleted == 0); /* nothing written */
    r = run_sync(&e, "{\"entity\":\"items\",\"full\":true}", INTEG_OK);
    CHECK(r && jint(r, "records_deleted") == 5);
    CHECK(r && jint(r, "records_deleted") == dry_deleted);
    json_object_put(r);
    CHECK(local_count(&e, &deleted) == TOTAL && deleted == 5);
    env_close(&e);
}

static void test_rate_limits_and_5xx(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    srv.rate_limit_every = 3;
    slept_ms = 0;
    json_object *r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    CHECK(r && jint(r, "records_created") == TOTAL);
    CHECK(slept_ms >= 2000); /* Retry-After honoured, on the injected clock */
    json_object_put(r);
    check_local_set(&e, TOTAL);
    env_close(&e);

    server_reset();
    if (env_open(&e, "link", 0)) {
        CHECK(!"env_open");
        return;
    }
    srv.error_every = 2;
    r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    CHECK(r && jint(r, "records_created") == TOTAL);
    json_object_put(r);
    check_local_set(&e, TOTAL);
    /* Always 429: retries run out. */
    srv.error_every = 0;
    srv.rate_limit_every = 1;
    r = run_sync(&e, "{\"entity\":\"items\",\"full\":true}", INTEG_ERATELIMIT);
    json_object_put(r);
    env_close(&e);
}

/* A retry: false signal with json_path/equals (Xledger INSUFFICIENT_CREDITS
 * on HTTP 200) fails the sync only when the body matches: an ordinary 200
 * is not an exhausted budget. */
static void test_exhausted_signal_json_path(void)
{
    server_reset();
    g_rate_limit = "{\"signals\":[{\"status\":200,\"json_path\":\"$.error.code\",\"equals\":\"INSUFFICIENT_CREDITS\","
                   "\"retry\":false}]}";
    struct env e;
    int open_rc = env_open(&e, "cursor", 0);
    g_rate_limit = NULL;
    if (open_rc) {
        CHECK(!"env_open");
        return;
    }
    json_object *r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    CHECK(r && jint(r, "records_created") == TOTAL);
    json_object_put(r);
    check_local_set(&e, TOTAL);
    srv.credits_out = 1;
    int before = srv.requests;
    r = run_sync(&e, "{\"entity\":\"items\",\"full\":true}", INTEG_ERATELIMIT);
    CHECK_MSG("budget is exhausted");
    CHECK(srv.requests - before == 1); /* not retried */
    json_object_put(r);
    env_close(&e);
}

/* fetch_each: the list gives {id, thread} stubs and every record is read
 * with the get request before mapping; one deleted in between (404) is
 * left out. */
static void test_fetch_each(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "stubs", 0)) {
        CHECK(!"env_open");
        return;
    }
    json_object *r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    CHECK(r && jint(r, "records_created") == TOTAL && jint(r, "records_failed") == 0);
    CHECK(r && !strcmp(jstr(r, "status"), "success"));
    CHECK(srv.gets == TOTAL);
    json_object_put(r);
    check_local_set(&e, TOTAL);
    env_close(&e);

    server_reset();
    srv.gone_id = 7;
    if (env_open(&e, "stubs", 0)) {
        CHECK(!"env_open");
        return;
    }
    r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    CHECK(r && jint(r, "records_created") == TOTAL - 1 && jint(r, "records_failed") == 0);
    json_object_put(r);
    check_local_set(&e, TOTAL - 1);
    env_close(&e);
}

static void test_unauthorized(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    srv.unauthorized = 1;
    json_object *r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_EAUTH);
    CHECK(r == NULL);
    CHECK_MSG("Authentication credentials not found");
    CHECK(strstr(integ_errmsg(), "test-token") == NULL);
    char *out = NULL;
    CHECK_OK(integ_integration_get(e.s, e.id, &out));
    CHECK(strstr(out, "\"status\":\"needs_reauth\"") != NULL);
    integ_free(out);
    CHECK_OK(integ_sync_logs(e.s, e.id, NULL, &out));
    json_object *logs = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(logs) == 1);
    json_object *l0 = json_object_array_get_idx(logs, 0);
    CHECK_STR(jstr(l0, "status"), "error");
    CHECK(strstr(json_object_to_json_string(json_object_object_get(l0, "errors")), "401") != NULL);
    json_object_put(logs);
    /* The connection test reports the real reason. */
    CHECK_OK(integ_integration_test(e.s, e.id, &out));
    CHECK(strstr(out, "\"success\":false") && strstr(out, "401"));
    integ_free(out);
    srv.unauthorized = 0;
    CHECK_OK(integ_integration_test(e.s, e.id, &out));
    CHECK(strstr(out, "\"success\":true") != NULL);
    integ_free(out);
    r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    json_object_put(r);
    CHECK_OK(integ_integration_get(e.s, e.id, &out));
    CHECK(strstr(out, "\"status\":\"active\"") && !strstr(out, "\"last_sync_at\":null"));
    integ_free(out);
    env_close(&e);
}

/* Another run's 401 marks the integration needs_reauth while this run is
 * still going (its own requests came earlier): this run's success must not
 * clear that. Only a needs_reauth the run started with is cleared. */
static int mark_needs_reauth(void *p, const char *progress)
{
    struct env *e = p;
    if (!strstr(progress, "\"pages\":1,"))
        return 0;
    void *tx = NULL;
    json_object *rec = NULL;
    CHECK_OK(ig_tx_begin(e->ctx, 1, &tx));
    CHECK_OK(ig_store_get(e->ctx, tx, INTEG_KIND_INTEGRATION, "acme", e->id, &rec));
    json_object_object_add(rec, "status", json_object_new_string("needs_reauth"));
    CHECK_OK(ig_tx_end(e->ctx, tx, 1, ig_store_put(e->ctx, tx, INTEG_KIND_INTEGRATION, rec, INTEG_PUT_UPDATE)));
    json_object_put(rec);
    return 0;
}

static void test_needs_reauth_during_run_kept(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    char *out = NULL;
    CHECK_OK(integ_sync(e.s, e.id, "{\"entity\":\"items\"}", mark_needs_reauth, &e, &out));
    CHECK(strstr(out, "\"status\":\"success\""));
    integ_free(out);
    CHECK_OK(integ_integration_get(e.s, e.id, &out));
    CHECK(strstr(out, "\"status\":\"needs_reauth\"") != NULL);
    integ_free(out);
    /* A run that starts with it, and succeeds, clears it. */
    json_object_put(run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK));
    CHECK_OK(integ_integration_get(e.s, e.id, &out));
    CHECK(strstr(out, "\"status\":\"active\"") != NULL);
    integ_free(out);
    env_close(&e);
}

static void test_truncated_page_then_resume(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    srv.truncate_at = 3;
    json_object *r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_EREMOTE);
    json_object_put(r);
    CHECK_MSG("malformed JSON");
    /* Pages 1 and 2 were committed, nothing of page 3. */
    check_local_set(&e, 20);
    srv.truncate_at = 0;
    int before = srv.requests;
    r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    CHECK(r && jint(r, "records_created") == TOTAL - 20);
    CHECK(srv.requests - before == 2); /* resumed at page 3 */
    json_object_put(r);
    check_local_set(&e, TOTAL);
    env_close(&e);
}

static int kill_after_two(void *p, const char *progress)
{
    (void)p;
    if (strstr(progress, "\"pages\":2,"))
        raise(SIGKILL);
    return 0;
}

static void test_resume_after_sigkill(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "offset", 1)) {
        CHECK(!"env_open");
        return;
    }
    integ_session_close(e.s);
    integ_ctx_close(e.ctx);
    pid_t pid = fork();
    if (pid == 0) {
        struct env c = e;
        if (env_reopen(&c, "offset"))
            _exit(3);
        char *out = NULL;
        integ_sync(c.s, c.id, "{\"entity\":\"items\"}", kill_after_two, NULL, &out);
        _exit(4); /* not reached: killed after page 2 */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(env_reopen(&e, "offset") == 0);
    check_local_set(&e, 20);
    /* The dead process still holds the lease: a sync is refused until it expires. */
    char *out = NULL;
    CHECK_RC(integ_sync(e.s, e.id, "{\"entity\":\"items\"}", NULL, NULL, &out), INTEG_ECONFLICT);
    CHECK_MSG("already running");
    fake_now += 121000;
    json_object *r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    CHECK(r && jint(r, "records_created") == TOTAL - 20);
    json_object_put(r);
    check_local_set(&e, TOTAL);
    env_close(&e);
}

struct nested {
    struct env *e;
    int inner_rc;
    int pages;
};

static int start_another(void *p, const char *progress)
{
    (void)progress;
    struct nested *n = p;
    n->pages++;
    if (n->pages == 1) {
        integ_session *other = NULL;
        char *out = NULL;
        integ_session_open(&other, n->e->ctx, "acme", "bob", "[\"admin\"]");
        n->inner_rc = integ_sync(other, n->e->id, "{\"entity\":\"items\"}", NULL, NULL, &out);
        integ_free(out);
        integ_session_close(other);
    }
    return 0;
}

static void test_concurrent_sync_refused(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    struct nested n = {&e, 0, 0};
    char *out = NULL;
    CHECK_OK(integ_sync(e.s, e.id, "{\"entity\":\"items\"}", start_another, &n, &out));
    integ_free(out);
    CHECK(n.inner_rc == INTEG_ECONFLICT);
    /* Released at the end: the next one runs. */
    json_object_put(run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK));
    env_close(&e);
}

static int cancel_after_one(void *p, const char *progress)
{
    (void)progress;
    return ++*(int *)p >= 1;
}

static void test_cancel(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    int calls = 0;
    char *out = NULL;
    CHECK_RC(integ_sync(e.s, e.id, "{\"entity\":\"items\"}", cancel_after_one, &calls, &out), INTEG_ECANCELED);
    CHECK(out && strstr(out, "\"status\":\"canceled\""));
    integ_free(out);
    check_local_set(&e, PAGE);
    json_object *r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    CHECK(r && jint(r, "records_created") == TOTAL - PAGE);
    json_object_put(r);
    env_close(&e);
}


/* Pages that repeat the previous page's tail (a re-anchored query): the
 * fetch thread hands them over a page or two ahead, and the run must find
 * the links the previous page made and create each record once. */
static void test_overlapping_pages(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    srv.overlap = 3;
    json_object *r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    CHECK(r && !strcmp(jstr(r, "status"), "success"));
    CHECK(r && jint(r, "records_created") == TOTAL);
    CHECK(r && jint(r, "records_failed") == 0);
    CHECK(r && jint(r, "records_processed") > TOTAL); /* the repeats were seen, and skipped */
    json_object_put(r);
    check_local_set(&e, TOTAL); /* each record once, mapped */
    /* a second full run changes nothing */
    r = run_sync(&e, "{\"entity\":\"items\",\"full\":true}", INTEG_OK);
    CHECK(r && jint(r, "records_created") == 0 && jint(r, "records_updated") == 0);
    json_object_put(r);
    env_close(&e);
}

static void test_mapping_errors_partial(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    srv.missing_email_id = 7;
    json_object *r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    CHECK(r && !strcmp(jstr(r, "status"), "partial"));
    CHECK(r && jint(r, "records_failed") == 1 && jint(r, "records_created") == TOTAL - 1);
    json_object *errs = json_object_object_get(r, "errors");
    CHECK(json_object_array_length(errs) == 1);
    json_object *e0 = json_object_array_get_idx(errs, 0);
    CHECK_STR(jstr(e0, "record"), "7");
    CHECK(jint(e0, "code") == INTEG_EMAPPING);
    CHECK(strstr(jstr(e0, "message"), "email") != NULL);
    json_object_put(r);
    env_close(&e);
}

static void test_dry_run_and_bad_requests(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    json_object *r = run_sync(&e, "{\"entity\":\"items\",\"dry_run\":true}", INTEG_OK);
    CHECK(r && jint(r, "records_created") == TOTAL);
    json_object_put(r);
    check_local_set(&e, 0);
    char *out = NULL;
    CHECK_OK(integ_sync_logs(e.s, e.id, NULL, &out));
    CHECK_STR(out, "[]");
    integ_free(out);
    CHECK_RC(integ_sync(e.s, e.id, "{\"entity\":\"nope\"}", NULL, NULL, &out), INTEG_EINVAL);
    CHECK_MSG("nope");
    CHECK_RC(integ_sync(e.s, e.id, "{}", NULL, NULL, &out), INTEG_EINVAL);
    CHECK_MSG("request_json.entity");
    CHECK_RC(integ_sync(e.s, e.id, "{\"entity\":\"items\",\"directon\":\"pull\"}", NULL, NULL, &out), INTEG_EINVAL);
    CHECK_RC(integ_sync(e.s, e.id, "{\"entity\":\"items\",\"filter\":{\"modified_since\":\"yesterday\"}}", NULL, NULL, &out), INTEG_EINVAL);
    CHECK_MSG("modified_since");
    CHECK_RC(integ_sync(e.s, e.id, "{\"entity\":\"items\"", NULL, NULL, &out), INTEG_EINVAL);
    CHECK_RC(integ_sync(e.s, "01900000-0000-7000-8000-000000000000", "{\"entity\":\"items\"}", NULL, NULL, &out), INTEG_ENOTFOUND);
    integ_session *other = NULL, *viewer = NULL;
    integ_session_open(&other, e.ctx, "other-tenant", "mallory", "[\"admin\"]");
    CHECK_RC(integ_sync(other, e.id, "{\"entity\":\"items\"}", NULL, NULL, &out), INTEG_ENOTFOUND);
    CHECK_RC(integ_sync_logs(other, e.id, NULL, &out), INTEG_ENOTFOUND);
    CHECK_RC(integ_integration_test(other, e.id, &out), INTEG_ENOTFOUND);
    integ_session_open(&viewer, e.ctx, "acme", "victor", NULL);
    CHECK_RC(integ_sync(viewer, e.id, "{\"entity\":\"items\"}", NULL, NULL, &out), INTEG_EPERM);
    integ_session_close(other);
    integ_session_close(viewer);
    env_close(&e);
}

static void test_mappings_and_entities(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    char *out = NULL;
    CHECK_RC(integ_mapping_put(e.s, e.id, "{\"source_entity\":\"items\",\"target_entity\":\"people\",\"field_map\":{\"x\":\"a..b\"}}", &out), INTEG_EINVAL);
    CHECK_MSG("mapping.field_map");
    CHECK_RC(integ_mapping_put(e.s, e.id, "{\"source_entity\":\"items\",\"target_entity\":\"people\",\"field_map\":{\"x\":\"y\"},\"transform_rules\":[{\"target\":\"x\",\"op\":\"lower\"}]}", &out), INTEG_EINVAL);
    CHECK_MSG("lower");
    CHECK_RC(integ_mapping_put(e.s, e.id, "{\"source_entity\":\"nope\",\"target_entity\":\"people\",\"field_map\":{}}", &out), INTEG_EINVAL);
    CHECK_MSG("nope");
    CHECK_OK(integ_mapping_put(e.s, e.id,
                               "{\"source_entity\":\"items\",\"target_entity\":\"people\",\"field_map\":{\"full_name\":\"name\",\"mail\":\"email\"},"
                               "\"transform_rules\":[{\"target\":\"mail\",\"op\":\"trim\"},{\"target\":\"mail\",\"op\":\"uppercase\"}]}",
                               &out));
    json_object *m = json_tokener_parse(out);
    integ_free(out);
    char mid[64];
    snprintf(mid, sizeof mid, "%s", jstr(m, "id"));
    json_object_put(m);
    CHECK_OK(integ_mapping_apply(e.s, mid, "pull", "{\"name\":\"Ann\",\"email\":\" ann@x.io \"}", &out));
    CHECK_STR(out, "{\"full_name\":\"Ann\",\"mail\":\"ANN@X.IO\"}");
    integ_free(out);
    CHECK_RC(integ_mapping_apply(e.s, mid, "sideways", "{}", &out), INTEG_EINVAL);
    CHECK_OK(integ_mappings_list(e.s, e.id, &out));
    m = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(m) == 1);
    json_object_put(m);
    json_object *r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    json_object_put(r);
    CHECK_OK(integ_entities_list(e.s, "people", "{\"limit\":5}", &out));
    json_object *l = json_tokener_parse(out);
    integ_free(out);
    CHECK(json_object_array_length(l) == 5);
    json_object *first = json_object_array_get_idx(l, 0);
    const char *mail = jstr(json_object_object_get(first, "data"), "mail");
    CHECK(mail && strstr(mail, "@EXAMPLE.COM"));
    /* get shows the link to the remote record. */
    CHECK_OK(integ_entity_get(e.s, "people", jstr(first, "id"), &out));
    CHECK(strstr(out, e.id) && strstr(out, "external_id"));
    integ_free(out);
    /* Local writes. */
    CHECK_OK(integ_entity_put(e.s, "people", "{\"data\":{\"full_name\":\"Local Only\"}}", &out));
    json_object *loc = json_tokener_parse(out);
    integ_free(out);
    CHECK(jint(loc, "version") == 1);
    char put[256];
    snprintf(put, sizeof put, "{\"id\":\"%s\",\"data\":{\"full_name\":\"Renamed\"}}", jstr(loc, "id"));
    CHECK_OK(integ_entity_put(e.s, "people", put, &out));
    CHECK(strstr(out, "\"version\":2") && strstr(out, "Renamed"));
    integ_free(out);
    CHECK_OK(integ_entity_delete(e.s, "people", jstr(loc, "id")));
    CHECK_OK(integ_entity_get(e.s, "people", jstr(loc, "id"), &out));
    CHECK(strstr(out, "\"deleted\":true") != NULL);
    integ_free(out);
    CHECK_RC(integ_entity_put(e.s, "People!", "{\"data\":{}}", &out), INTEG_EINVAL);
    CHECK_RC(integ_entity_put(e.s, "people", "{\"data\":5}", &out), INTEG_EINVAL);
    CHECK_MSG("record_json.data");
    /* Other tenants see none of it. */
    integ_session *other = NULL;
    integ_session_open(&other, e.ctx, "other-tenant", "mallory", "[\"admin\"]");
    CHECK_RC(integ_entity_get(other, "people", jstr(loc, "id"), &out), INTEG_ENOTFOUND);
    CHECK_RC(integ_entity_put(other, "people", put, &out), INTEG_ENOTFOUND);
    CHECK_RC(integ_entity_delete(other, "people", jstr(loc, "id")), INTEG_ENOTFOUND);
    CHECK_RC(integ_mapping_delete(other, mid), INTEG_ENOTFOUND);
    CHECK_OK(integ_entities_list(other, "people", NULL, &out));
    CHECK_STR(out, "[]");
    integ_free(out);
    integ_session_close(other);
    CHECK_OK(integ_mapping_delete(e.s, mid));
    CHECK_RC(integ_mapping_delete(e.s, mid), INTEG_ENOTFOUND);
    json_object_put(loc);
    json_object_put(l);
    env_close(&e);
}

/* ---- a host C adapter ------------------------------------------------------- */

struct fake_adapter {
    int pages_served;
    int fail_auth;
    char seen_credentials[128];
};

static int fa_list(void *payload, const integ_adapter_call *call, const char *entity, const char *request_json,
                   integ_reply_cb reply, void *rp)
{
    struct fake_adapter *fa = payload;
    snprintf(fa->seen_credentials, sizeof fa->seen_credentials, "%s", integ_adapter_call_credentials(call));
    if (fa->fail_auth)
        return integ_error_set(INTEG_EAUTH, "fake: token rejected");
    if (strcmp(entity, "items") != 0)
        return integ_error_set(INTEG_EINVAL, "fake: unknown entity");
    json_object *req = json_tokener_parse(request_json);
    json_object *cur = json_object_object_get(req, "cursor");
    int start = cur ? json_object_get_int(cur) : 0;
    json_object *page = json_object_new_object(), *recs = json_object_new_array();
    for (int i = start; i < start + 10 && i < 25; i++)
        json_object_array_add(recs, make_record(i + 1));
    json_object_object_add(page, "records", recs);
    json_object_object_add(page, "next_cursor", start + 10 < 25 ? json_object_new_int(start + 10) : NULL);
    fa->pages_served++;
    const char *text = json_object_to_json_string(page);
    int rc = reply(rp, text, strlen(text));
    json_object_put(page);
    json_object_put(req);
    return rc;
}

static int fa_test(void *payload, const integ_adapter_call *call, integ_reply_cb reply, void *rp)
{
    struct fake_adapter *fa = payload;
    (void)call;
    if (fa->fail_auth)
        return integ_error_set(INTEG_EAUTH, "fake: token rejected");
    const char *msg = "{\"message\":\"ok\"}";
    return reply(rp, msg, strlen(msg));
}

static const integ_adapter fake_vtable = {INTEG_ADAPTER_VERSION, fa_test, fa_list, NULL, NULL, NULL, NULL, NULL, NULL};

static void test_c_adapter(void)
{
    server_reset();
    struct env e;
    if (env_open(&e, "cursor", 0)) {
        CHECK(!"env_open");
        return;
    }
    struct fake_adapter fa = {0};
    CHECK_RC(integ_adapter_register(e.ctx, "nope-crm", &fake_vtable, &fa), INTEG_ENOTFOUND);
    CHECK_RC(integ_adapter_register(e.ctx, "tcursor-crm", NULL, &fa), INTEG_EINVAL);
    CHECK_OK(integ_adapter_register(e.ctx, "tcursor-crm", &fake_vtable, &fa));
    json_object *r = run_sync(&e, "{\"entity\":\"items\"}", INTEG_OK);
    CHECK(r && jint(r, "records_created") == 25 && jint(r, "pages") == 3);
    json_object_put(r);
    CHECK(fa.pages_served == 3);
    CHECK(srv.requests == 0); /* the REST engine was not used */
    CHECK(strstr(fa.seen_credentials, "test-token") != NULL);
    check_local_set(&e, 25);
    char *out = NULL;
    CHECK_OK(integ_integration_test(e.s, e.id, &out));
    CHECK(strstr(out, "\"success\":true") != NULL);
    integ_free(out);
    fa.fail_auth = 1;
    CHECK_OK(integ_integration_test(e.s, e.id, &out));
    CHECK(strstr(out, "\"success\":false") && strstr(out, "token rejected"));
    integ_free(out);
    json_object_put(run_sync(&e, "{\"entity\":\"items\",\"full\":true}", INTEG_EAUTH));
    CHECK_MSG("token rejected");
    env_close(&e);
}

int main(void)
{
    struct MHD_Daemon *d = server_start();
    RUN(test_every_pagination_style);
    RUN(test_incremental_picks_up_changes);
    RUN(test_full_read_detects_deletes);
    RUN(test_full_read_keeps_failed_and_held);
    RUN(test_reappearing_record_undeleted);
    RUN(test_dry_full_read_deletes_as_real);
    RUN(test_rate_limits_and_5xx);
    RUN(test_exhausted_signal_json_path);
    RUN(test_fetch_each);
    RUN(test_unauthorized);
    RUN(test_needs_reauth_during_run_kept);
    RUN(test_truncated_page_then_resume);
    RUN(test_resume_after_sigkill);
    RUN(test_concurrent_sync_refused);
    RUN(test_cancel);
    RUN(test_mapping_errors_partial);
    RUN(test_overlapping_pages);
    RUN(test_dry_run_and_bad_requests);
    RUN(test_mappings_and_entities);
    RUN(test_c_adapter);
    MHD_stop_daemon(d);
    TEST_END();
}
