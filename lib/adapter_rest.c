/* The built-in REST engine: runs a manifest's requests (doc/manifest.md)
 * for one tenant integration. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "definitions.h"
#include "auth.h"
#include "engine.h"
#include "rest_request.h"
#include "error.h"
#include "json.h"
#include "template.h"
#include "util.h"


/* ---- connection ---------------------------------------------------------- */

struct lookup_ctx {
    ig_conn *c;
    json_object *since; /* rendered watermark */
    json_object *id;
};

static json_object *conn_lookup(void *payload, const char *ns, const char *name)
{
    struct lookup_ctx *l = payload;
    if (!strcmp(ns, "config"))
        return name ? ig_json_get(l->c->config, name) : NULL;
    if (!strcmp(ns, "credentials"))
        return name ? ig_json_get(l->c->credentials, name) : NULL;
    if (!strcmp(ns, "since"))
        return l->since;
    if (!strcmp(ns, "id"))
        return l->id;
    if (!strcmp(ns, "token"))
        return name ? ig_json_get(l->c->token, name) : NULL;
    return NULL;
}

static int resolve_base_url(ig_conn *c)
{
    const char *key = ig_json_str(c->definition, "key");
    json_object *ovr = ig_json_get(ig_json_get(c->ctx->options, "base_url_overrides"), key);
    if (json_object_is_type(ovr, json_type_string)) {
        c->base_url = strdup(json_object_get_string(ovr));
        return c->base_url ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
    }
    if (ig_json_str(ovr, "api")) {
        c->base_url = strdup(ig_json_str(ovr, "api"));
        return c->base_url ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
    }
    const char *tmpl = ig_json_str(c->method, "base_url");
    if (!tmpl)
        tmpl = ig_json_str(c->manifest, "base_url");
    struct lookup_ctx l = {c, NULL, NULL};
    int missing = 0;
    int rc = ig_tmpl_render(tmpl, conn_lookup, &l, &c->base_url, &missing);
    if (rc == INTEG_OK && missing)
        return ig_err(INTEG_EINVAL, "integration %s: base URL '%s' needs a config value or "
                      "credential that is not set", ig_json_str(c->integration, "id"), tmpl);
    return rc;
}

int ig_conn_open(integ_ctx *ctx, const char *tenant_id, const char *integration_id, ig_conn **out)
{
    *out = NULL;
    ig_conn *c = calloc(1, sizeof *c);
    if (!c || !(c->tenant_id = strdup(tenant_id))) {
        free(c);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    c->ctx = ctx;
    void *tx = NULL;
    int rc = ig_tx_begin(ctx, 0, &tx);
    if (rc == INTEG_OK) {
        rc = ig_integration_get(ctx, tx, tenant_id, integration_id, &c->integration);
        if (rc == INTEG_OK)
            rc = ig_definition_lookup(ctx, tx, ig_json_str(c->integration, "definition_id"), &c->definition);
        rc = ig_tx_end(ctx, tx, 1, rc);
    }
    if (rc) {
        ig_conn_close(c);
        return rc;
    }
    c->manifest = ig_json_get(c->definition, "manifest");
    c->config = ig_json_get(c->integration, "config");
    c->auth_type = ig_json_str(c->integration, "auth_type");
    c->method = ig_json_get(ig_json_get(ig_json_get(c->manifest, "auth"), "methods"),
                            c->auth_type ? c->auth_type : "");
    const char *sealed = ig_json_str(c->integration, "credentials_sealed");
    if (sealed) {
        char *plain = NULL;
        size_t len = 0;
        rc = ig_ctx_open_sealed(ctx, tenant_id, integration_id, "credentials", sealed, &plain, &len);
        if (rc == INTEG_OK) {
            c->credentials = ig_json_parse_secret(plain, len);
            ig_free_secret(plain, len);
            if (!c->credentials)
                rc = ig_err(INTEG_ECRYPTO, "credentials of integration '%s' are not valid JSON", integration_id);
        }
    }
    if (rc == INTEG_OK)
        rc = resolve_base_url(c);
    if (rc == INTEG_OK)
        rc = ig_ctx_bucket(ctx, integration_id, ig_json_get(c->manifest, "rate_limit"), &c->bucket);
    if (rc == INTEG_OK)
        c->adapter = ig_ctx_adapter(ctx, ig_json_str(c->definition, "key"), &c->adapter_payload);
    if (rc) {
        ig_conn_close(c);
        return rc;
    }
    *out = c;
    return INTEG_OK;
}

void ig_conn_close(ig_conn *c)
{
    if (!c)
        return;
    ig_conn_adapter_release(c); /* a replaced adapter's destroy may run now */
    ig_json_wipe_put(c->token);
    ig_json_wipe_put(c->credentials);
    json_object_put(c->integration);
    json_object_put(c->definition);
    free(c->base_url);
    free(c->tenant_id);
    free(c);
}

json_object *ig_conn_entity(ig_conn *c, const char *entity)
{
    json_object *e = ig_json_get(ig_json_get(c->manifest, "entities"), entity);
    if (!e)
        ig_err(INTEG_EINVAL, "entity '%s' is not an entity of %s", entity,
               ig_json_str(c->definition, "key"));
    return e;
}

/* ---- time ---------------------------------------------------------------- */

int64_t ig_remote_time_ms(json_object *v, const char *format)
{
    if (!v)
        return -1;
    if (!format)
        format = "rfc3339";
    if (!strcmp(format, "epoch_s") || !strcmp(format, "epoch_ms")) {
        double d;
        if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
            d = json_object_get_double(v);
        else if (json_object_is_type(v, json_type_string))
            d = strtod(json_object_get_string(v), NULL);
        else
            return -1;
        return (int64_t)(!strcmp(format, "epoch_s") ? d * 1000.0 : d);
    }
    if (!json_object_is_type(v, json_type_string))
        return -1;
    const char *s = json_object_get_string(v);
    int64_t ms = -1;
    if (!strcmp(format, "odata_v2_date")) {
        const char *p = strstr(s, "/Date(");
        return p ? strtoll(p + 6, NULL, 10) : -1;
    }
    char buf[64];
    if (!strcmp(format, "date")) {
        snprintf(buf, sizeof buf, "%.10sT00:00:00Z", s);
    } else if (!strcmp(format, "iso_local") || !strcmp(format, "sql_datetime")) {
        snprintf(buf, sizeof buf, "%.40sZ", s);
        if (strlen(buf) > 10 && buf[10] == ' ')
            buf[10] = 'T';
    } else {
        snprintf(buf, sizeof buf, "%.60s", s);
    }
    if (ig_parse_rfc3339(buf, &ms) != 0)
        return -1;
    return ms;
}

/* The watermark rendered as the manifest's format wants it. */
static json_object *render_since(int64_t ms, const char *format)
{
    char buf[40];
    if (!format)
        format = "rfc3339";
    if (!strcmp(format, "epoch_s"))
        return json_object_new_int64(ms / 1000);
    if (!strcmp(format, "epoch_ms"))
        return json_object_new_int64(ms);
    ig_rfc3339(buf, ms, 0);
    if (!strcmp(format, "date"))
        buf[10] = '\0';
    else if (!strcmp(format, "iso_local"))
        buf[19] = '\0';
    else if (!strcmp(format, "sql_datetime")) {
        buf[10] = ' ';
        buf[19] = '\0';
    } else if (!strcmp(format, "odata_v2_date")) {
        snprintf(buf, sizeof buf, "/Date(%lld)/", (long long)ms);
    }
    return json_object_new_string(buf);
}

int ig_record_id(json_object *record, const char *id_field, char *buf, size_t cap)
{
    json_object *v = ig_json_get(record, id_field ? id_field : "id");
    if (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0) {
        if ((size_t)json_object_get_string_len(v) >= cap)
            return -1;
        memcpy(buf, json_object_get_string(v), (size_t)json_object_get_string_len(v) + 1);
        return 0;
    }
    if (json_object_is_type(v, json_type_int)) {
        snprintf(buf, cap, "%lld", (long long)json_object_get_int64(v));
        return 0;
    }
    return -1;
}

/* ---- list pages ------------------------------------------------------------ */

static const char *link_next(const char *link, char *buf, size_t cap)
{
    /* Link: <https://...>; rel="next", <...>; rel="previous" */
    const char *p = link;
    while (p && *p) {
        const char *lt = strchr(p, '<');
        if (!lt)
            return NULL;
        const char *gt = strchr(lt, '>');
        if (!gt)
            return NULL;
        const char *end = strchr(gt, ',');
        size_t seg = end ? (size_t)(end - gt) : strlen(gt);
        char params[256];
        snprintf(params, sizeof params, "%.*s", (int)(seg < sizeof params ? seg : sizeof params - 1), gt);
        if (strstr(params, "rel=\"next\"") || strstr(params, "rel=next")) {
            size_t n = (size_t)(gt - lt - 1);
            if (n >= cap)
                return NULL;
            memcpy(buf, lt + 1, n);
            buf[n] = '\0';
            return buf;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

static int set_body_path(json_object *body, const char *dotted, json_object *value)
{
    char path[256];
    snprintf(path, sizeof path, "%s", dotted);
    json_object *node = body;
    char *save = NULL;
    char *tok = strtok_r(path, ".", &save);
    while (tok) {
        char *next = strtok_r(NULL, ".", &save);
        if (!next) {
            json_object_object_add(node, tok, value);
            return INTEG_OK;
        }
        json_object *child = ig_json_get(node, tok);
        if (!json_object_is_type(child, json_type_object)) {
            child = json_object_new_object();
            json_object_object_add(node, tok, child);
        }
        node = child;
        tok = next;
    }
    json_object_put(value);
    return ig_err(INTEG_EINVAL, "empty body path");
}

static int list_page(ig_conn *c, const char *entity_name, json_object *state, int64_t since_ms, int deletes,
                     ig_page *out);

int ig_rest_list_page(ig_conn *c, const char *entity_name, json_object *state, int64_t since_ms,
                      ig_page *out)
{
    return list_page(c, entity_name, state, since_ms, 0, out);
}

int ig_rest_list_deleted_page(ig_conn *c, const char *entity_name, json_object *state, ig_page *out)
{
    return list_page(c, entity_name, state, -1, 1, out);
}

static int list_page(ig_conn *c, const char *entity_name, json_object *state, int64_t since_ms, int deletes,
                     ig_page *out)
{
    memset(out, 0, sizeof *out);
    json_object *e = ig_conn_entity(c, entity_name);
    if (!e)
        return INTEG_EINVAL;
    if (c->adapter && !deletes)
        return ig_adapter_list_page(c, entity_name, state, since_ms, out);
    json_object *inc = deletes ? NULL : ig_json_get(e, "incremental");
    json_object *list = deletes ? ig_json_get(e, "deletes") : ig_json_get(e, "list");
    if (deletes && !list)
        return ig_err(INTEG_EUNSUPPORTED, "entity '%s' of %s has no deletes request", entity_name,
                      ig_json_str(c->definition, "key"));
    if (json_object_is_type(list, json_type_boolean))
        return ig_err(INTEG_EUNSUPPORTED, "entity '%s' of %s cannot be listed", entity_name,
                      ig_json_str(c->definition, "key"));
    /* Re-anchoring (result caps) moves the watermark forward inside a run. */
    int64_t anchor = ig_json_int(state, "anchor_ms", -1);
    if (anchor >= 0)
        since_ms = anchor;
    int incremental = since_ms >= 0 && inc != NULL;
    json_object *reqdef = list;
    const char *records_path = ig_json_str(e, "records_path");
    json_object *pag = ig_json_get(e, "pagination");
    if (deletes) {
        /* The deleted-records request carries its own shape. */
        if (ig_json_str(list, "records_path"))
            records_path = ig_json_str(list, "records_path");
        if (ig_json_get(list, "pagination"))
            pag = ig_json_get(list, "pagination");
    }
    if (incremental && !strcmp(ig_json_str(inc, "in") ? ig_json_str(inc, "in") : "", "request")) {
        reqdef = ig_json_get(inc, "request");
        if (ig_json_str(reqdef, "records_path"))
            records_path = ig_json_str(reqdef, "records_path");
        if (ig_json_get(reqdef, "pagination"))
            pag = ig_json_get(reqdef, "pagination");
    }
    const char *ptype = ig_json_str(pag, "type") ? ig_json_str(pag, "type") : "none";
    json_object *since_v = incremental ? render_since(since_ms, ig_json_str(inc, "format")) : NULL;
    struct lookup_ctx l = {c, since_v, NULL};
    ig_req r;
    ig_http_response resp = {0};
    json_object *doc = NULL, *body = NULL;
    char what[160];
    snprintf(what, sizeof what, "%s %s list", ig_json_str(c->definition, "key"), entity_name);
    const char *follow = ig_json_str(state, "url");
    int rc = follow ? ig_req_begin_url(&r, c, ig_json_str(reqdef, "method"), follow, conn_lookup, &l)
                    : ig_req_begin(&r, c, ig_json_str(reqdef, "method"),
                                   ig_json_str(reqdef, "path") ? ig_json_str(reqdef, "path") : ig_json_str(e, "path"),
                                   conn_lookup, &l, what);
    if (rc == INTEG_OK)
        rc = ig_req_headers(&r, ig_json_get(e, "headers"), conn_lookup, &l);
    if (rc == INTEG_OK)
        rc = ig_req_headers(&r, ig_json_get(reqdef, "headers"), conn_lookup, &l);
    if (rc == INTEG_OK && !follow) {
        rc = ig_req_query(&r, ig_json_get(reqdef, "query"), conn_lookup, &l);
        if (rc == INTEG_OK && ig_json_get(reqdef, "body"))
            rc = ig_tmpl_render_json(ig_json_get(reqdef, "body"), conn_lookup, &l, &body);
        const char *in = ig_json_str(inc, "in");
        if (rc == INTEG_OK && incremental && in) {
            const char *param = ig_json_str(inc, "param");
            const char *tmpl = ig_json_str(inc, "template") ? ig_json_str(inc, "template") : "{since}";
            char *val = NULL;
            int missing = 0;
            if (!strcmp(in, "query") || !strcmp(in, "filter") || !strcmp(in, "body"))
                rc = ig_tmpl_render(tmpl, conn_lookup, &l, &val, &missing);
            if (rc == INTEG_OK && !strcmp(in, "query")) {
                if (param)
                    rc = ig_url_set_query(r.url, param, val);
                if (rc == INTEG_OK)
                    rc = ig_req_query(&r, ig_json_get(inc, "query"), conn_lookup, &l);
            } else if (rc == INTEG_OK && !strcmp(in, "filter") && param) {
                char existing[1024];
                const char *cur = ig_url_get_query_param(r.url, param, existing, sizeof existing);
                if (cur && *cur) {
                    size_t n = strlen(cur) + strlen(val) + 8;
                    char *both = malloc(n);
                    if (both) {
                        snprintf(both, n, "%s and %s", cur, val);
                        rc = ig_url_set_query(r.url, param, both);
                        free(both);
                    } else {
                        rc = ig_err(INTEG_ENOMEM, "out of memory");
                    }
                } else {
                    rc = ig_url_set_query(r.url, param, val);
                }
                if (rc == INTEG_OK)
                    rc = ig_req_query(&r, ig_json_get(inc, "query"), conn_lookup, &l);
            } else if (rc == INTEG_OK && !strcmp(in, "body") && param) {
                if (!body)
                    body = json_object_new_object();
                rc = set_body_path(body, param, !strcmp(tmpl, "{since}") ? json_object_get(since_v)
                                                                         : json_object_new_string(val));
            }
            free(val);
        }
        /* The cursor of the previous page. */
        json_object *cursor = ig_json_get(state, "cursor");
        if (rc == INTEG_OK && cursor) {
            if (!strcmp(ptype, "cursor")) {
                const char *param = ig_json_str(pag, "param");
                if (!strcmp(ig_json_str(pag, "in") ? ig_json_str(pag, "in") : "query", "body")) {
                    if (!body)
                        body = json_object_new_object();
                    rc = set_body_path(body, param, json_object_get(cursor));
                } else {
                    rc = ig_url_set_query(r.url, param,
                                          json_object_is_type(cursor, json_type_string)
                                              ? json_object_get_string(cursor)
                                              : json_object_to_json_string_ext(cursor, JSON_C_TO_STRING_PLAIN));
                }
            } else if (!strcmp(ptype, "graphql_cursor")) {
                if (!body)
                    body = json_object_new_object();
                char path[160];
                snprintf(path, sizeof path, "variables.%s", ig_json_str(pag, "cursor_variable"));
                rc = set_body_path(body, path, json_object_get(cursor));
            }
        }
        if (rc == INTEG_OK && (!strcmp(ptype, "page") || !strcmp(ptype, "offset"))) {
            char num[32];
            if (!strcmp(ptype, "page")) {
                snprintf(num, sizeof num, "%lld", (long long)ig_json_int(state, "page", ig_json_int(pag, "start", 1)));
                rc = ig_url_set_query(r.url, ig_json_str(pag, "param"), num);
                if (rc == INTEG_OK && ig_json_str(pag, "size_param")) {
                    snprintf(num, sizeof num, "%lld", (long long)ig_json_int(pag, "size", 100));
                    rc = ig_url_set_query(r.url, ig_json_str(pag, "size_param"), num);
                }
            } else {
                snprintf(num, sizeof num, "%lld", (long long)ig_json_int(state, "offset", 0));
                rc = ig_url_set_query(r.url, ig_json_str(pag, "offset_param"), num);
                if (rc == INTEG_OK) {
                    snprintf(num, sizeof num, "%lld", (long long)ig_json_int(pag, "limit", 100));
                    rc = ig_url_set_query(r.url, ig_json_str(pag, "limit_param"), num);
                }
            }
        }
        if (rc == INTEG_OK)
            rc = ig_req_json_body(&r, body);
    }
    if (rc == INTEG_OK)
        rc = ig_req_auth(&r, c, conn_lookup, &l);
    if (rc == INTEG_OK)
        rc = ig_req_send(c, &r, conn_lookup, &l, what, 0, &resp);
    if (rc == INTEG_OK) {
        out->status = resp.status;
        out->attempts = resp.attempts;
        out->bytes = resp.body_len;
        json_tokener *tok = json_tokener_new_ex(128);
        doc = tok ? json_tokener_parse_ex(tok, resp.body ? resp.body : "", (int)resp.body_len) : NULL;
        enum json_tokener_error jerr = tok ? json_tokener_get_error(tok) : json_tokener_error_parse_unexpected;
        size_t end = tok ? json_tokener_get_parse_end(tok) : 0;
        json_tokener_free(tok);
        if (!doc || jerr != json_tokener_success || end != resp.body_len) {
            json_object_put(doc);
            doc = NULL;
            rc = ig_err(INTEG_EREMOTE, "%s: malformed JSON in the response (%zu bytes, %s)", what,
                        resp.body_len,
                        jerr == json_tokener_continue ? "truncated" : json_tokener_error_desc(jerr));
        }
    }
    if (rc == INTEG_OK) {
        out->records = json_object_new_array();
        rc = ig_jsonpath_collect(doc, records_path ? records_path : "$", out->records);
        /* records_path names the array itself unless it uses [*]. */
        if (rc == INTEG_OK && !strstr(records_path ? records_path : "$", "[*]") &&
            ig_json_len(out->records) == 1 &&
            json_object_is_type(json_object_array_get_idx(out->records, 0), json_type_array)) {
            json_object *inner = json_object_get(json_object_array_get_idx(out->records, 0));
            json_object_put(out->records);
            out->records = inner;
        } else if (rc == INTEG_OK && !strstr(records_path ? records_path : "$", "[*]") &&
                   ig_json_len(out->records) == 1) {
            rc = ig_err(INTEG_EREMOTE, "%s: %s is not an array", what, records_path);
        }
    }
    if (rc == INTEG_OK) {
        /* Where does the next page start? */
        size_t n = ig_json_len(out->records);
        json_object *next = NULL;
        if (!strcmp(ptype, "cursor")) {
            json_object *cur = ig_jsonpath_get(doc, ig_json_str(pag, "cursor_path"));
            if (cur && !(json_object_is_type(cur, json_type_string) && json_object_get_string_len(cur) == 0)) {
                next = json_object_new_object();
                json_object_object_add(next, "cursor", json_object_get(cur));
            }
        } else if (!strcmp(ptype, "next_url")) {
            json_object *u = ig_jsonpath_get(doc, ig_json_str(pag, "next_path"));
            json_object *done = ig_json_str(pag, "done_path") ? ig_jsonpath_get(doc, ig_json_str(pag, "done_path")) : NULL;
            if (json_object_is_type(u, json_type_string) && json_object_get_string_len(u) > 0 &&
                !(done && json_object_get_boolean(done))) {
                ig_url *nu = NULL;
                char *abs = NULL;
                if (ig_url_parse(resp.effective_url ? resp.effective_url : c->base_url, &nu) == INTEG_OK &&
                    ig_url_resolve(nu, json_object_get_string(u)) == INTEG_OK && ig_url_get(nu, &abs) == INTEG_OK) {
                    next = json_object_new_object();
                    json_object_object_add(next, "url", json_object_new_string(abs));
                }
                free(abs);
                ig_url_free(nu);
            }
        } else if (!strcmp(ptype, "link_header")) {
            const char *link = ig_http_response_header(&resp, "Link");
            char buf[4096];
            const char *u = link ? link_next(link, buf, sizeof buf) : NULL;
            if (u) {
                next = json_object_new_object();
                json_object_object_add(next, "url", json_object_new_string(u));
            }
        } else if (!strcmp(ptype, "page")) {
            int64_t page = ig_json_int(state, "page", ig_json_int(pag, "start", 1));
            int64_t total = -1;
            const char *th = ig_json_str(pag, "total_pages_header");
            if (th && ig_http_response_header(&resp, th))
                total = strtoll(ig_http_response_header(&resp, th), NULL, 10);
            if (ig_json_str(pag, "total_pages_path") &&
                ig_jsonpath_get(doc, ig_json_str(pag, "total_pages_path")))
                total = json_object_get_int64(ig_jsonpath_get(doc, ig_json_str(pag, "total_pages_path")));
            int64_t start = ig_json_int(pag, "start", 1);
            int more = n > 0 && (size_t)n >= (size_t)ig_json_int(pag, "size", (int64_t)n);
            if (total >= 0)
                more = n > 0 && page - start + 1 < total;
            if (ig_json_str(pag, "total_path")) {
                int64_t tr = json_object_get_int64(ig_jsonpath_get(doc, ig_json_str(pag, "total_path")));
                more = n > 0 && (page - start + 1) * ig_json_int(pag, "size", (int64_t)n) < tr;
            }
            if (more) {
                next = json_object_new_object();
                json_object_object_add(next, "page", json_object_new_int64(page + 1));
            }
        } else if (!strcmp(ptype, "offset")) {
            int64_t limit = ig_json_int(pag, "limit", 100);
            json_object *u = ig_json_str(pag, "next_path") ? ig_jsonpath_get(doc, ig_json_str(pag, "next_path")) : NULL;
            if (json_object_is_type(u, json_type_string) && json_object_get_string_len(u) > 0) {
                next = json_object_new_object();
                json_object_object_add(next, "url", json_object_get(u));
            } else if ((int64_t)n >= limit && n > 0) {
                int64_t off = ig_json_int(state, "offset", 0) + (int64_t)n;
                int64_t total = ig_json_str(pag, "total_path")
                                    ? json_object_get_int64(ig_jsonpath_get(doc, ig_json_str(pag, "total_path")))
                                    : -1;
                if (total < 0 || off < total) {
                    next = json_object_new_object();
                    json_object_object_add(next, "offset", json_object_new_int64(off));
                }
            }
        } else if (!strcmp(ptype, "graphql_cursor")) {
            json_object *pi = ig_jsonpath_get(doc, ig_json_str(pag, "page_info_path"));
            if (ig_json_bool(pi, "hasNextPage", 0)) {
                json_object *cur = ig_json_get(pi, "endCursor");
                if (!strcmp(ig_json_str(pag, "end_cursor") ? ig_json_str(pag, "end_cursor") : "", "last_edge")) {
                    json_object *edges = ig_jsonpath_get(doc, ig_json_str(pag, "edges_path"));
                    size_t en = ig_json_len(edges);
                    cur = en ? ig_json_get(json_object_array_get_idx(edges, en - 1), "cursor") : NULL;
                }
                if (cur) {
                    next = json_object_new_object();
                    json_object_object_add(next, "cursor", json_object_get(cur));
                }
            }
        }
        /* Result caps: before the server refuses to page further, restart
         * the query from the newest timestamp seen (duplicates are skipped
         * by their payload hash). */
        int64_t cap = ig_json_int(inc, "result_cap", ig_json_int(e, "result_cap", 0));
        int64_t count = ig_json_int(state, "count", 0) + (int64_t)n;
        if (next && incremental && cap > 0) {
            if (count + (int64_t)n > cap) {
                int64_t newest = since_ms;
                for (size_t i = 0; i < n; i++) {
                    int64_t t = ig_remote_time_ms(ig_json_get(json_object_array_get_idx(out->records, i),
                                                              ig_json_str(e, "updated_field")),
                                                  ig_json_str(e, "updated_format"));
                    if (t > newest)
                        newest = t;
                }
                json_object_put(next);
                next = json_object_new_object();
                json_object_object_add(next, "anchor_ms", json_object_new_int64(newest));
                json_object_object_add(next, "count", json_object_new_int64(0));
            } else {
                json_object_object_add(next, "count", json_object_new_int64(count));
                if (anchor >= 0)
                    json_object_object_add(next, "anchor_ms", json_object_new_int64(anchor));
            }
        }
        out->next_state = next;
    }
    /* fetch_each: the list gives stubs (Gmail: {id, threadId}), so each
     * record is read with the entity's get request before it is mapped.
     * One that is gone by now (404) is left out, as if not listed. */
    if (rc == INTEG_OK && !deletes && ig_json_bool(e, "fetch_each", 0)) {
        json_object *full = json_object_new_array();
        const char *idf = ig_json_str(e, "id_field") ? ig_json_str(e, "id_field") : "id";
        for (size_t i = 0; rc == INTEG_OK && i < ig_json_len(out->records); i++) {
            json_object *idv = ig_json_get(json_object_array_get_idx(out->records, i), idf), *rec = NULL;
            if (!idv || json_object_is_type(idv, json_type_null)) {
                rc = ig_err(INTEG_EREMOTE, "%s: listed record %zu has no %s", what, i, idf);
                break;
            }
            rc = ig_rest_fetch_one(c, entity_name,
                                   json_object_is_type(idv, json_type_string)
                                       ? json_object_get_string(idv)
                                       : json_object_to_json_string_ext(idv, JSON_C_TO_STRING_PLAIN),
                                   &rec);
            if (rc == INTEG_OK)
                json_object_array_add(full, rec);
            else if (rc == INTEG_ENOTFOUND)
                rc = INTEG_OK;
        }
        json_object_put(rc == INTEG_OK ? out->records : full);
        if (rc == INTEG_OK)
            out->records = full;
    }
    if (rc)
        ig_page_free(out);
    json_object_put(doc);
    json_object_put(body);
    json_object_put(since_v);
    ig_http_response_free(&resp);
    ig_req_free(&r);
    return rc;
}

void ig_page_free(ig_page *p)
{
    json_object_put(p->records);
    json_object_put(p->next_state);
    if (p->prep && p->prep_free)
        p->prep_free(p->prep);
    p->records = NULL;
    p->next_state = NULL;
    p->prep = NULL;
}

int ig_rest_test(ig_conn *c, long *out_status)
{
    *out_status = 0;
    if (c->adapter)
        return ig_adapter_test(c);
    json_object *t = ig_json_get(c->manifest, "test_request");
    if (!t)
        return ig_err(INTEG_EUNSUPPORTED, "%s declares no test_request", ig_json_str(c->definition, "key"));
    struct lookup_ctx l = {c, NULL, NULL};
    ig_req r;
    ig_http_response resp = {0};
    char what[128];
    snprintf(what, sizeof what, "%s connection test", ig_json_str(c->definition, "key"));
    int rc = ig_req_begin(&r, c, ig_json_str(t, "method"), ig_json_str(t, "path"), conn_lookup, &l, what);
    if (rc == INTEG_OK)
        rc = ig_req_headers(&r, ig_json_get(t, "headers"), conn_lookup, &l);
    if (rc == INTEG_OK)
        rc = ig_req_query(&r, ig_json_get(t, "query"), conn_lookup, &l);
    if (rc == INTEG_OK && ig_json_get(t, "body")) {
        json_object *body = NULL;
        rc = ig_tmpl_render_json(ig_json_get(t, "body"), conn_lookup, &l, &body);
        if (rc == INTEG_OK)
            rc = ig_req_json_body(&r, body);
        json_object_put(body);
    }
    if (rc == INTEG_OK)
        rc = ig_req_auth(&r, c, conn_lookup, &l);
    if (rc == INTEG_OK) {
        rc = ig_req_send(c, &r, conn_lookup, &l, what, 0, &resp);
        *out_status = resp.status;
    }
    ig_http_response_free(&resp);
    ig_req_free(&r);
    return rc;
}

int ig_rest_fetch_one(ig_conn *c, const char *entity_name, const char *external_id, json_object **out)
{
    *out = NULL;
    json_object *e = ig_conn_entity(c, entity_name);
    if (!e)
        return INTEG_EINVAL;
    if (c->adapter)
        return ig_adapter_fetch_one(c, entity_name, external_id, out);
    json_object *get = ig_json_get(e, "get");
    if (!get)
        return ig_err(INTEG_EUNSUPPORTED, "entity '%s' of %s has no get request", entity_name,
                      ig_json_str(c->definition, "key"));
    /* In the path the id is percent-encoded, as in the write requests, so
     * "a/b?c" stays one segment; headers and the query take it as is (the
     * query encoder escapes it there). */
    char *enc = ig_pct_encode(external_id);
    json_object *idv = json_object_new_string(external_id), *idp = enc ? json_object_new_string(enc) : NULL;
    free(enc);
    struct lookup_ctx l = {c, NULL, idp};
    ig_req r = {0};
    ig_http_response resp = {0};
    char what[160];
    snprintf(what, sizeof what, "%s %s get", ig_json_str(c->definition, "key"), entity_name);
    int rc = idv && idp ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
    if (rc == INTEG_OK)
        rc = ig_req_begin(&r, c, ig_json_str(get, "method"), ig_json_str(get, "path"), conn_lookup, &l, what);
    l.id = idv;
    if (rc == INTEG_OK)
        rc = ig_req_headers(&r, ig_json_get(e, "headers"), conn_lookup, &l);
    if (rc == INTEG_OK)
        rc = ig_req_headers(&r, ig_json_get(get, "headers"), conn_lookup, &l);
    if (rc == INTEG_OK)
        rc = ig_req_query(&r, ig_json_get(get, "query"), conn_lookup, &l);
    if (rc == INTEG_OK)
        rc = ig_req_auth(&r, c, conn_lookup, &l);
    if (rc == INTEG_OK)
        rc = ig_req_send(c, &r, conn_lookup, &l, what, 0, &resp);
    if (rc == INTEG_OK) {
        json_object *doc = json_tokener_parse(resp.body ? resp.body : "");
        json_object *rec = doc ? ig_jsonpath_get(doc, ig_json_str(get, "records_path") ? ig_json_str(get, "records_path") : "$")
                               : NULL;
        if (!json_object_is_type(rec, json_type_object))
            rc = ig_err(INTEG_EREMOTE, "%s: the response holds no record", what);
        else
            *out = json_object_get(rec);
        json_object_put(doc);
    }
    ig_http_response_free(&resp);
    ig_req_free(&r);
    json_object_put(idv);
    json_object_put(idp);
    return rc;
}
