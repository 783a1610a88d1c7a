/* The write side of the REST engine (doc/push.md): create, update, delete,
 * batch and lookup requests of a manifest's entities, for the push
 * direction of a sync.
 *
 * Requests are built with the shared builder of adapter_rest.c's reads
 * (rest_request.c: base URL and path template, static, entity and request
 * headers, query templates, the auth method's `apply`, one retry with a
 * fresh token after a 401); what is the write side's own is the lookup of
 * the write placeholders ({record}, {records}, {value}, percent-encoded
 * {id} and {value} in paths) and the idempotency flag.
 *
 * The retry rule: a create (single or batch) is not idempotent, so it goes
 * out with IG_HTTP_NON_IDEMPOTENT: the transport repeats it only when the
 * server cannot have acted (429, 503, a refused connection, nothing
 * written). Updates (PUT/PATCH with whole values), upserts by key, deletes
 * and lookups are idempotent and keep the transport's full retries. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "crypto.h"
#include "engine.h"
#include "rest_request.h"
#include "error.h"
#include "json.h"
#include "template.h"


/* ---- placeholders ----------------------------------------------------------- */

struct wl {
    ig_conn *c;
    json_object *id;         /* {id} */
    json_object *id_path;    /* {id}, percent-encoded, for paths */
    json_object *value;      /* {value} (escaped per lookup.value_escape) */
    json_object *value_path; /* {value}, percent-encoded, for paths */
    json_object *record;     /* {record} (borrowed) */
    json_object *records;    /* {records} (borrowed) */
    int in_path;
};

static json_object *w_lookup(void *payload, const char *ns, const char *name)
{
    struct wl *l = payload;
    if (!strcmp(ns, "config"))
        return name ? ig_json_get(l->c->config, name) : NULL;
    if (!strcmp(ns, "credentials"))
        return name ? ig_json_get(l->c->credentials, name) : NULL;
    if (!strcmp(ns, "token"))
        return name ? ig_json_get(l->c->token, name) : NULL;
    if (name)
        return NULL;
    if (!strcmp(ns, "id"))
        return l->in_path ? l->id_path : l->id;
    if (!strcmp(ns, "value"))
        return l->in_path ? l->value_path : l->value;
    if (!strcmp(ns, "record"))
        return l->record;
    if (!strcmp(ns, "records"))
        return l->records;
    return NULL;
}

/* RFC 3986 unreserved characters stay; everything else is %XX, so a value
 * cannot add path segments, a query or a fragment. */
static json_object *pct_encode(const char *s)
{
    char *buf = ig_pct_encode(s);
    json_object *o = buf ? json_object_new_string(buf) : NULL;
    free(buf);
    return o;
}

/* An OData string literal doubles its quotes: o'brien -> o''brien. */
static json_object *odata_escape(const char *s)
{
    size_t n = strlen(s), q = 0;
    for (size_t i = 0; i < n; i++)
        q += s[i] == '\'';
    char *buf = malloc(n + q + 1);
    if (!buf)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        buf[k++] = s[i];
        if (s[i] == '\'')
            buf[k++] = '\'';
    }
    buf[k] = '\0';
    json_object *o = json_object_new_string(buf);
    free(buf);
    return o;
}

static int wl_set_id(struct wl *l, const char *id)
{
    l->id = json_object_new_string(id);
    l->id_path = pct_encode(id);
    return l->id && l->id_path ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
}

static void wl_free(struct wl *l)
{
    json_object_put(l->id);
    json_object_put(l->id_path);
    json_object_put(l->value);
    json_object_put(l->value_path);
}

/* Build and send one manifest request. `e` gives the entity's headers
 * (NULL: none); the body is `reqdef.body` rendered with l. After a 401 a
 * token-based method gets one fresh token and the request goes again (a
 * 401 means the server did not act, so this is safe for creates too). */
static int w_call(ig_conn *c, json_object *e, json_object *reqdef, struct wl *l, const char *what,
                  unsigned flags, ig_http_response *resp)
{
    ig_req r;
    memset(resp, 0, sizeof *resp);
    const char *path = ig_json_str(reqdef, "path") ? ig_json_str(reqdef, "path") : ig_json_str(e, "path");
    l->in_path = 1;
    int rc = ig_req_begin(&r, c, ig_json_str(reqdef, "method"), path, w_lookup, l, what);
    l->in_path = 0;
    if (rc == INTEG_OK)
        rc = ig_req_headers(&r, ig_json_get(e, "headers"), w_lookup, l);
    if (rc == INTEG_OK)
        rc = ig_req_headers(&r, ig_json_get(reqdef, "headers"), w_lookup, l);
    if (rc == INTEG_OK)
        rc = ig_req_query(&r, ig_json_get(reqdef, "query"), w_lookup, l);
    if (rc == INTEG_OK && ig_json_get(reqdef, "body")) {
        json_object *body = NULL;
        rc = ig_tmpl_render_json(ig_json_get(reqdef, "body"), w_lookup, l, &body);
        if (rc == INTEG_OK)
            rc = ig_req_json_body(&r, body);
        json_object_put(body);
    }
    if (rc == INTEG_OK)
        rc = ig_req_auth(&r, c, w_lookup, l);
    if (rc == INTEG_OK)
        rc = ig_req_send(c, &r, w_lookup, l, what, flags, resp);
    ig_req_free(&r);
    return rc;
}

/* The response body as JSON: NULL for an empty body; malformed JSON is
 * INTEG_EREMOTE. */
static int w_doc(const ig_http_response *resp, const char *what, json_object **out)
{
    *out = NULL;
    size_t n = resp->body_len;
    const char *b = resp->body ? resp->body : "";
    while (n && isspace((unsigned char)b[n - 1]))
        n--;
    if (!n)
        return INTEG_OK;
    json_tokener *tok = json_tokener_new_ex(128);
    json_object *doc = tok ? json_tokener_parse_ex(tok, b, (int)resp->body_len) : NULL;
    enum json_tokener_error jerr = tok ? json_tokener_get_error(tok) : json_tokener_error_parse_unexpected;
    json_tokener_free(tok);
    if (!doc || jerr != json_tokener_success) {
        json_object_put(doc);
        return ig_err(INTEG_EREMOTE, "%s: malformed JSON in the response (%zu bytes)", what, resp->body_len);
    }
    *out = doc;
    return INTEG_OK;
}

static const char *def_key(ig_conn *c) { return ig_json_str(c->definition, "key"); }

/* The record in a write response at records_path (default "$"). */
static json_object *response_record(json_object *doc, json_object *reqdef)
{
    const char *rp = ig_json_str(reqdef, "records_path");
    json_object *rec = doc ? ig_jsonpath_get(doc, rp ? rp : "$") : NULL;
    return json_object_is_type(rec, json_type_object) ? rec : NULL;
}

/* A created record's id from OData-EntityId (".../accounts(<guid>)") or
 * Location (the last path segment), for APIs that answer 204/201 without
 * a body. */
static int header_id(const ig_http_response *resp, char *buf, size_t cap)
{
    const char *h = ig_http_response_header(resp, "OData-EntityId");
    if (h) {
        const char *open = strrchr(h, '(');
        const char *close = open ? strchr(open, ')') : NULL;
        if (open && close && close > open + 1 && (size_t)(close - open - 1) < cap) {
            memcpy(buf, open + 1, (size_t)(close - open - 1));
            buf[close - open - 1] = '\0';
            return 0;
        }
    }
    h = ig_http_response_header(resp, "Location");
    if (h) {
        size_t end = strcspn(h, "?#");
        while (end && h[end - 1] == '/')
            end--;
        size_t start = end;
        while (start && h[start - 1] != '/')
            start--;
        if (end > start && end - start < cap) {
            memcpy(buf, h + start, end - start);
            buf[end - start] = '\0';
            return 0;
        }
    }
    return -1;
}

/* ---- create / update / delete ---------------------------------------------------- */

int ig_rest_create(ig_conn *c, const char *entity, json_object *record, json_object **out)
{
    *out = NULL;
    json_object *e = ig_conn_entity(c, entity);
    if (!e)
        return INTEG_EINVAL;
    if (!json_object_is_type(record, json_type_object))
        return ig_err(INTEG_EINVAL, "invalid argument: record (an object)");
    if (c->adapter)
        return ig_adapter_create(c, entity, record, out);
    json_object *req = ig_json_get(e, "create");
    if (!req)
        return ig_err(INTEG_EUNSUPPORTED, "entity '%s' of %s has no create request", entity, def_key(c));
    char what[160];
    snprintf(what, sizeof what, "%s %s create", def_key(c), entity);
    struct wl l = {.c = c, .record = record};
    ig_http_response resp = {0};
    json_object *doc = NULL;
    const char *id_field = ig_json_str(e, "id_field") ? ig_json_str(e, "id_field") : "id";
    int rc = w_call(c, e, req, &l, what, IG_HTTP_NON_IDEMPOTENT, &resp);
    if (rc == INTEG_OK)
        rc = w_doc(&resp, what, &doc);
    if (rc == INTEG_OK) {
        char id[256];
        json_object *rec = response_record(doc, req);
        if (rec && ig_record_id(rec, id_field, id, sizeof id) == 0) {
            *out = json_object_get(rec);
        } else if (header_id(&resp, id, sizeof id) == 0) {
            /* 204 + OData-EntityId: read the record back for its
             * server-side fields; if that fails, the id is what counts. */
            if (!ig_json_get(e, "get") || ig_rest_fetch_one(c, entity, id, out) != INTEG_OK) {
                json_object_put(*out);
                *out = json_object_new_object();
                json_object_object_add(*out, id_field, json_object_new_string(id));
                ig_err_clear();
            }
        } else {
            rc = ig_err(INTEG_EREMOTE, "%s: HTTP %ld, but the response names no id (%s); the record may "
                        "exist remotely: reconcile it by lookup", what, resp.status, id_field);
        }
    }
    json_object_put(doc);
    ig_http_response_free(&resp);
    wl_free(&l);
    return rc;
}

int ig_rest_update(ig_conn *c, const char *entity, const char *external_id, json_object *record,
                   json_object **out)
{
    *out = NULL;
    json_object *e = ig_conn_entity(c, entity);
    if (!e)
        return INTEG_EINVAL;
    if (!external_id || !*external_id)
        return ig_err(INTEG_EINVAL, "invalid argument: external_id");
    if (!json_object_is_type(record, json_type_object))
        return ig_err(INTEG_EINVAL, "invalid argument: record (an object)");
    if (c->adapter)
        return ig_adapter_update(c, entity, external_id, record, out);
    json_object *req = ig_json_get(e, "update");
    if (!req)
        return ig_err(INTEG_EUNSUPPORTED, "entity '%s' of %s has no update request", entity, def_key(c));
    char what[160];
    snprintf(what, sizeof what, "%s %s update", def_key(c), entity);
    struct wl l = {.c = c, .record = record};
    int rc = wl_set_id(&l, external_id);
    ig_http_response resp = {0};
    json_object *doc = NULL;
    if (rc == INTEG_OK)
        rc = w_call(c, e, req, &l, what, 0, &resp);
    if (rc == INTEG_OK)
        rc = w_doc(&resp, what, &doc);
    if (rc == INTEG_OK) {
        json_object *rec = response_record(doc, req);
        if (rec) {
            *out = json_object_get(rec);
        } else if (ig_json_get(e, "get") && ig_rest_fetch_one(c, entity, external_id, out) != INTEG_OK) {
            /* Updated; the read-back is a convenience. */
            json_object_put(*out);
            *out = NULL;
            ig_err_clear();
        }
    }
    json_object_put(doc);
    ig_http_response_free(&resp);
    wl_free(&l);
    return rc;
}

int ig_rest_delete(ig_conn *c, const char *entity, const char *external_id)
{
    json_object *e = ig_conn_entity(c, entity);
    if (!e)
        return INTEG_EINVAL;
    if (!external_id || !*external_id)
        return ig_err(INTEG_EINVAL, "invalid argument: external_id");
    if (c->adapter)
        return ig_adapter_remove(c, entity, external_id);
    json_object *req = ig_json_get(e, "delete");
    if (!req)
        return ig_err(INTEG_EUNSUPPORTED, "entity '%s' of %s has no delete request", entity, def_key(c));
    char what[160];
    snprintf(what, sizeof what, "%s %s delete", def_key(c), entity);
    struct wl l = {.c = c};
    int rc = wl_set_id(&l, external_id);
    ig_http_response resp = {0};
    if (rc == INTEG_OK)
        rc = w_call(c, e, req, &l, what, 0, &resp);
    /* Already gone is what a delete wants. */
    if ((rc == INTEG_ENOTFOUND || rc == INTEG_EREMOTE) && (resp.status == 404 || resp.status == 410)) {
        rc = INTEG_OK;
        ig_err_clear();
    }
    ig_http_response_free(&resp);
    wl_free(&l);
    return rc;
}

/* ---- lookup ------------------------------------------------------------------------- */

/* Does the value at a record's lookup field equal `want`? Strings compare
 * case-insensitively (e-mail addresses); arrays match when an element does
 * (Pipedrive "emails": ["a@b"] or [{"value": "a@b"}]). */
static int field_matches(json_object *v, const char *want, int depth)
{
    if (!v || depth > 4)
        return 0;
    if (json_object_is_type(v, json_type_string))
        return !strcasecmp(json_object_get_string(v), want);
    if (json_object_is_type(v, json_type_int)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)json_object_get_int64(v));
        return !strcmp(buf, want);
    }
    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < ig_json_len(v); i++)
            if (field_matches(json_object_array_get_idx(v, i), want, depth + 1))
                return 1;
        return 0;
    }
    if (json_object_is_type(v, json_type_object))
        return field_matches(ig_json_get(v, "value"), want, depth + 1);
    return 0;
}

/* The value at a dotted remote path ("properties.email", "emails[0].value"). */
static json_object *remote_path_get(json_object *rec, const char *path)
{
    if (!path)
        return NULL;
    char jp[300];
    snprintf(jp, sizeof jp, "$.%s", path);
    return ig_jsonpath_get(rec, jp);
}

int ig_rest_find(ig_conn *c, const char *entity, const char *field, const char *value, json_object **out)
{
    *out = NULL;
    json_object *e = ig_conn_entity(c, entity);
    if (!e)
        return INTEG_EINVAL;
    if (!value || !*value)
        return ig_err(INTEG_EINVAL, "invalid argument: value");
    json_object *lk = ig_json_get(e, "lookup");
    if (c->adapter || !lk)
        return ig_err(INTEG_EUNSUPPORTED, "entity '%s' of %s has no lookup", entity, def_key(c));
    const char *lfield = ig_json_str(lk, "field");
    const char *rfield = ig_json_str(lk, "remote_field");
    if (field && *field && strcmp(field, lfield ? lfield : "") && strcmp(field, rfield ? rfield : ""))
        return ig_err(INTEG_EUNSUPPORTED, "entity '%s' of %s looks records up by '%s', not '%s'", entity,
                      def_key(c), lfield ? lfield : "?", field);
    json_object *req = ig_json_get(lk, "request");
    char what[160];
    snprintf(what, sizeof what, "%s %s lookup", def_key(c), entity);
    struct wl l = {.c = c};
    const char *esc = ig_json_str(lk, "value_escape");
    l.value = esc && !strcmp(esc, "odata") ? odata_escape(value) : json_object_new_string(value);
    l.value_path = l.value ? pct_encode(json_object_get_string(l.value)) : NULL;
    int rc = l.value && l.value_path ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
    ig_http_response resp = {0};
    json_object *doc = NULL, *found = json_object_new_array();
    if (rc == INTEG_OK)
        rc = w_call(c, e, req, &l, what, 0, &resp);
    if (rc == INTEG_ENOTFOUND) {
        /* A search answers "no results", not 404: a 404 is a broken lookup,
         * never "not found" (that would make the caller create again). */
        char msg[1100];
        snprintf(msg, sizeof msg, "%s", ig_errmsg());
        rc = ig_err(INTEG_EREMOTE, "%s", msg);
    }
    if (rc == INTEG_OK)
        rc = w_doc(&resp, what, &doc);
    if (rc == INTEG_OK && doc) {
        const char *rp = ig_json_str(lk, "records_path");
        if (!rp)
            rp = ig_json_str(req, "records_path");
        if (!rp)
            rp = "$";
        rc = ig_jsonpath_collect(doc, rp, found);
        if (rc == INTEG_OK && ig_json_len(found) == 1 &&
            json_object_is_type(json_object_array_get_idx(found, 0), json_type_array)) {
            json_object *inner = json_object_get(json_object_array_get_idx(found, 0));
            json_object_put(found);
            found = inner;
        }
    }
    json_object *hit = NULL;
    for (size_t i = 0; rc == INTEG_OK && i < ig_json_len(found) && !hit; i++) {
        json_object *rec = json_object_array_get_idx(found, i);
        if (!json_object_is_type(rec, json_type_object))
            continue;
        /* A search may be fuzzy: the field must really hold the value. */
        if (rfield && !field_matches(remote_path_get(rec, rfield), value, 0))
            continue;
        hit = rec;
    }
    if (hit) {
        char id[256];
        const char *id_field = ig_json_str(e, "id_field") ? ig_json_str(e, "id_field") : "id";
        if (ig_record_id(hit, id_field, id, sizeof id) != 0)
            rc = ig_err(INTEG_EREMOTE, "%s: the record found has no id (%s)", what, id_field);
        else if (ig_json_bool(lk, "fetch", 0))
            rc = ig_rest_fetch_one(c, entity, id, out);
        else
            *out = json_object_get(hit);
    }
    json_object_put(found);
    json_object_put(doc);
    ig_http_response_free(&resp);
    wl_free(&l);
    return rc;
}

/* ---- batch ------------------------------------------------------------------------------ */

struct bctx {
    ig_conn *c;
    json_object *e;
    const char *entity;
    const char *op;
    json_object *reqdef;
    json_object *records; /* input (borrowed) */
    json_object *results; /* output, aligned */
    const char *id_field;
    const char *match_path; /* create: the lookup's remote_field */
    int create, upsert, del;
    int splits_left;      /* budget of extra requests for isolating bad items */
    char what[160];
};

static json_object *item_error(int code, const char *message)
{
    json_object *o = json_object_new_object(), *err = json_object_new_object();
    json_object_object_add(err, "code", json_object_new_int(code));
    json_object_object_add(err, "message", json_object_new_string(message ? message : ""));
    json_object_object_add(o, "error", err);
    return o;
}

static void set_result(struct bctx *b, size_t i, json_object *v)
{
    json_object_array_put_idx(b->results, i, v);
}

/* A key as text: strings as they are, integers in decimal. */
static int key_text(json_object *v, char *buf, size_t cap)
{
    if (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0 &&
        (size_t)json_object_get_string_len(v) < cap) {
        memcpy(buf, json_object_get_string(v), (size_t)json_object_get_string_len(v) + 1);
        return 0;
    }
    if (json_object_is_type(v, json_type_int)) {
        snprintf(buf, cap, "%lld", (long long)json_object_get_int64(v));
        return 0;
    }
    return -1;
}

/* What identifies an input item, and the same thing in a result. */
static json_object *input_key(struct bctx *b, json_object *in)
{
    if (b->create)
        return remote_path_get(in, b->match_path);
    return ig_json_get(in, b->upsert ? "id" : b->id_field);
}

static json_object *result_key(struct bctx *b, json_object *in_example, json_object *res)
{
    if (b->create)
        return remote_path_get(res, b->match_path);
    if (b->upsert) {
        const char *ip = ig_json_str(in_example, "idProperty");
        if (ip && strcmp(ip, "hs_object_id") && strcmp(ip, b->id_field)) {
            json_object *v = ig_json_get(ig_json_get(res, "properties"), ip);
            return v ? v : ig_json_get(res, ip);
        }
    }
    return ig_json_get(res, b->id_field);
}

static int error_code_of(json_object *err)
{
    const char *cat = ig_json_str(err, "category");
    long st = (long)ig_json_int(err, "status", 0);
    if (!st && ig_json_str(err, "status"))
        st = strtol(ig_json_str(err, "status"), NULL, 10);
    if ((cat && !strcmp(cat, "OBJECT_NOT_FOUND")) || st == 404)
        return INTEG_ENOTFOUND;
    if ((cat && (!strcmp(cat, "CONFLICT") || !strcmp(cat, "OBJECT_ALREADY_EXISTS"))) || st == 409)
        return INTEG_ECONFLICT;
    if (cat && !strcmp(cat, "RATE_LIMITS"))
        return INTEG_ERATELIMIT;
    return INTEG_EREMOTE;
}

/* Does `err` (a HubSpot-style error entry) name this key in its context? */
static int error_names(json_object *err, const char *key)
{
    json_object *ctx = ig_json_get(err, "context");
    if (!json_object_is_type(ctx, json_type_object))
        return 0;
    json_object_object_foreach(ctx, k, arr)
    {
        (void)k;
        for (size_t i = 0; i < ig_json_len(arr); i++) {
            char t[512];
            if (key_text(json_object_array_get_idx(arr, i), t, sizeof t) == 0 && !strcasecmp(t, key))
                return 1;
        }
    }
    return 0;
}

/* Spread one chunk's response over its items: results matched by key (the
 * remote id; the upsert property; for creates the lookup field), else by
 * position when the counts agree; errors by the ids in their context. */
static void align(struct bctx *b, const size_t *idx, size_t n, json_object *doc, long status)
{
    json_object *res = json_object_new_array();
    const char *rp = ig_json_str(b->reqdef, "records_path");
    if (!rp)
        rp = json_object_is_type(ig_json_get(doc, "results"), json_type_array) ? "$.results" : "$";
    if (doc)
        ig_jsonpath_collect(doc, rp, res);
    if (ig_json_len(res) == 1 && json_object_is_type(json_object_array_get_idx(res, 0), json_type_array)) {
        json_object *inner = json_object_get(json_object_array_get_idx(res, 0));
        json_object_put(res);
        res = inner;
    }
    json_object *errors = ig_json_get(doc, "errors");
    size_t nres = ig_json_len(res);
    char *done = calloc(n + 1, 1), *used = calloc(nres + 1, 1);
    if (!done || !used) {
        free(done);
        free(used);
        json_object_put(res);
        for (size_t i = 0; i < n; i++)
            set_result(b, idx[i], item_error(INTEG_ENOMEM, "out of memory"));
        return;
    }
    if (b->del && !nres) {
        /* Archive answers 204: every item is gone. */
        for (size_t i = 0; i < n; i++) {
            set_result(b, idx[i], json_object_get(json_object_array_get_idx(b->records, idx[i])));
            done[i] = 1;
        }
    }
    /* By key. */
    for (size_t i = 0; i < n; i++) {
        json_object *in = json_object_array_get_idx(b->records, idx[i]);
        char k[512], rk[512];
        if (done[i] || key_text(input_key(b, in), k, sizeof k) != 0)
            continue;
        for (size_t j = 0; j < nres; j++) {
            json_object *r = json_object_array_get_idx(res, j);
            if (used[j] || key_text(result_key(b, in, r), rk, sizeof rk) != 0 || strcasecmp(k, rk))
                continue;
            set_result(b, idx[i], json_object_get(r));
            done[i] = used[j] = 1;
            break;
        }
        if (done[i])
            continue;
        for (size_t j = 0; j < ig_json_len(errors); j++) {
            json_object *err = json_object_array_get_idx(errors, j);
            if (!error_names(err, k))
                continue;
            char msg[600];
            snprintf(msg, sizeof msg, "%s: %s", b->what,
                     ig_json_str(err, "message") ? ig_json_str(err, "message") : "error");
            set_result(b, idx[i], item_error(error_code_of(err), msg));
            done[i] = 1;
            break;
        }
    }
    /* By position, when what is left lines up. */
    size_t left_in = 0, left_res = 0;
    for (size_t i = 0; i < n; i++)
        left_in += !done[i];
    for (size_t j = 0; j < nres; j++)
        left_res += !used[j];
    if (left_in && left_in == left_res) {
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            if (done[i])
                continue;
            while (used[j])
                j++;
            set_result(b, idx[i], json_object_get(json_object_array_get_idx(res, j)));
            done[i] = used[j] = 1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (done[i])
            continue;
        char msg[400];
        snprintf(msg, sizeof msg, "%s: HTTP %ld: the response has no result for this item%s", b->what, status,
                 b->create ? " (it may have been created: reconcile it by lookup)" : "");
        set_result(b, idx[i], item_error(INTEG_EREMOTE, msg));
    }
    free(done);
    free(used);
    json_object_put(res);
}

/* A whole-request failure that a record can cause (validation, an unknown
 * id): worth splitting the chunk to find the record. */
static int item_caused(long status)
{
    return status == 400 || status == 404 || status == 409 || status == 422;
}

/* Send the items idx[0..n) as one request. Returns INTEG_OK, or the error
 * that stops the whole batch (credentials, budget, network). */
static int batch_send(struct bctx *b, const size_t *idx, size_t n)
{
    json_object *chunk = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(chunk, json_object_get(json_object_array_get_idx(b->records, idx[i])));
    struct wl l = {.c = b->c, .records = chunk};
    ig_http_response resp = {0};
    json_object *doc = NULL;
    int rc = w_call(b->c, b->e, b->reqdef, &l, b->what, b->create ? IG_HTTP_NON_IDEMPOTENT : 0, &resp);
    if (rc == INTEG_OK)
        rc = w_doc(&resp, b->what, &doc);
    int stop = INTEG_OK;
    if (rc == INTEG_OK) {
        align(b, idx, n, doc, resp.status);
    } else if (item_caused(resp.status) && n > 1 && b->splits_left >= 2) {
        /* All or nothing was refused (HubSpot validates a whole batch):
         * halve until the refused record is alone. */
        b->splits_left -= 2;
        json_object_put(doc);
        ig_http_response_free(&resp);
        json_object_put(chunk);
        int s1 = batch_send(b, idx, n / 2);
        int s2 = s1 ? s1 : batch_send(b, idx + n / 2, n - n / 2);
        if (s1)
            for (size_t i = n / 2; i < n; i++)
                set_result(b, idx[i], item_error(s1, "not sent: an earlier request of the batch failed"));
        return s1 ? s1 : s2;
    } else {
        char msg[1200];
        int unknown = b->create && (rc == INTEG_ENETWORK || resp.status >= 500 ||
                                    (resp.status >= 200 && resp.status < 300));
        snprintf(msg, sizeof msg, "%s%s", ig_errmsg(),
                 unknown ? " (the records may have been created: reconcile them by lookup)" : "");
        for (size_t i = 0; i < n; i++)
            set_result(b, idx[i], item_error(rc, msg));
        if (rc == INTEG_EAUTH || rc == INTEG_ERATELIMIT || rc == INTEG_ENETWORK || rc == INTEG_ENOMEM)
            stop = rc;
    }
    json_object_put(doc);
    ig_http_response_free(&resp);
    json_object_put(chunk);
    return stop;
}

/* The C adapter path: one call per record. */
static int batch_adapter(ig_conn *c, const char *entity, const char *op, json_object *records,
                         json_object *results)
{
    json_object *e = ig_conn_entity(c, entity);
    const char *id_field = ig_json_str(e, "id_field") ? ig_json_str(e, "id_field") : "id";
    for (size_t i = 0; i < ig_json_len(records); i++) {
        json_object *in = json_object_array_get_idx(records, i), *out = NULL;
        char id[256];
        int rc;
        if (!strcmp(op, "create")) {
            rc = ig_adapter_create(c, entity, in, &out);
        } else if (ig_record_id(in, id_field, id, sizeof id) != 0) {
            rc = ig_err(INTEG_EINVAL, "batch %s: item %zu has no %s", op, i, id_field);
        } else if (!strcmp(op, "update")) {
            rc = ig_adapter_update(c, entity, id, in, &out);
        } else if (!strcmp(op, "delete")) {
            rc = ig_adapter_remove(c, entity, id);
            out = rc ? NULL : json_object_get(in);
        } else {
            rc = ig_err(INTEG_EUNSUPPORTED, "the %s adapter cannot %s", ig_json_str(c->definition, "key"), op);
        }
        json_object_array_put_idx(results, i, rc ? item_error(rc, ig_errmsg()) : out);
        if (rc == INTEG_EAUTH)
            return rc;
    }
    return INTEG_OK;
}

int ig_rest_batch(ig_conn *c, const char *entity, const char *op, json_object *records, json_object **out_results)
{
    *out_results = NULL;
    json_object *e = ig_conn_entity(c, entity);
    if (!e)
        return INTEG_EINVAL;
    if (!op || (strcmp(op, "create") && strcmp(op, "update") && strcmp(op, "upsert") && strcmp(op, "delete")))
        return ig_err(INTEG_EINVAL, "invalid argument: op (create, update, upsert or delete)");
    if (!json_object_is_type(records, json_type_array))
        return ig_err(INTEG_EINVAL, "invalid argument: records (an array)");
    size_t n = ig_json_len(records);
    for (size_t i = 0; i < n; i++)
        if (!json_object_is_type(json_object_array_get_idx(records, i), json_type_object))
            return ig_err(INTEG_EINVAL, "invalid argument: records[%zu] is not an object", i);
    json_object *results = json_object_new_array();
    if (!results)
        return ig_err(INTEG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        json_object_array_add(results, NULL);
    *out_results = results;
    if (c->adapter)
        return batch_adapter(c, entity, op, records, results);
    json_object *batch = ig_json_get(e, "batch");
    json_object *reqdef = ig_json_get(batch, op);
    if (!reqdef) {
        json_object_put(results);
        *out_results = NULL;
        return ig_err(INTEG_EUNSUPPORTED, "entity '%s' of %s has no batch %s request", entity, def_key(c), op);
    }
    struct bctx b = {.c = c, .e = e, .entity = entity, .op = op, .reqdef = reqdef, .records = records,
                     .results = results};
    b.id_field = ig_json_str(e, "id_field") ? ig_json_str(e, "id_field") : "id";
    b.match_path = ig_json_str(ig_json_get(e, "lookup"), "remote_field");
    b.create = !strcmp(op, "create");
    b.upsert = !strcmp(op, "upsert");
    b.del = !strcmp(op, "delete");
    snprintf(b.what, sizeof b.what, "%s %s batch %s", def_key(c), entity, op);
    size_t max = (size_t)ig_json_int(batch, "max_items", 100);
    if (max < 1)
        max = 1;
    size_t chunks = (n + max - 1) / max;
    b.splits_left = (int)(2 * chunks + 16);
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx)
        return ig_err(INTEG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    int rc = INTEG_OK;
    char stopmsg[1100] = "";
    for (size_t at = 0; at < n; at += max) {
        size_t m = n - at < max ? n - at : max;
        if (rc) {
            for (size_t i = at; i < at + m; i++)
                set_result(&b, i, item_error(rc, stopmsg));
            continue;
        }
        rc = batch_send(&b, idx + at, m);
        if (rc)
            snprintf(stopmsg, sizeof stopmsg, "not sent: %s", ig_errmsg());
    }
    free(idx);
    if (rc) {
        char msg[1100];
        snprintf(msg, sizeof msg, "%s", stopmsg + strlen("not sent: "));
        ig_err(rc, "%s", msg);
    }
    return rc;
}

int ig_rest_batch_item(ig_conn *c, const char *entity, const char *op, const char *key, json_object *record,
                       json_object **out)
{
    *out = NULL;
    json_object *e = ig_conn_entity(c, entity);
    if (!e)
        return INTEG_EINVAL;
    if (!json_object_is_type(record, json_type_object))
        return ig_err(INTEG_EINVAL, "invalid argument: record (an object)");
    json_object *item = ig_json_copy(record);
    if (!item)
        return ig_err(INTEG_ENOMEM, "out of memory");
    if (op && strcmp(op, "create") != 0) {
        if (!key || !*key) {
            json_object_put(item);
            return ig_err(INTEG_EINVAL, "invalid argument: key (needed for batch %s)", op);
        }
        const char *id_field = ig_json_str(e, "id_field") ? ig_json_str(e, "id_field") : "id";
        if (!strcmp(op, "upsert")) {
            const char *ip = ig_json_str(ig_json_get(e, "lookup"), "id_property");
            json_object_object_add(item, "id", json_object_new_string(key));
            if (ip)
                json_object_object_add(item, "idProperty", json_object_new_string(ip));
        } else {
            json_object_object_add(item, id_field, json_object_new_string(key));
        }
    }
    *out = item;
    return INTEG_OK;
}
