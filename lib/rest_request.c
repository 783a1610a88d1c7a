/* Manifest requests: URL, headers, query, body and auth rendered from
 * templates, sending with the manifest's rate-limit signals and the retry
 * after a 401. Shared by the read side (adapter_rest.c), the write side
 * (adapter_write.c) and session logins (auth.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "crypto.h"
#include "error.h"
#include "json.h"
#include "rest_request.h"
#include "template.h"

/* A request being built: owned strings for headers, URL, body. */

void ig_req_free(ig_req *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->names[i]);
        if (r->values[i])
            ig_free_secret(r->values[i], strlen(r->values[i]));
    }
    ig_url_free(r->url);
    if (r->body)
        ig_free_secret(r->body, r->body_len);
    memset(r, 0, sizeof *r);
}

int ig_req_begin(ig_req *r, ig_conn *c, const char *method, const char *path, ig_tmpl_lookup lookup,
                 void *payload, const char *what)
{
    memset(r, 0, sizeof *r);
    r->method = method ? method : "GET";
    char *p = NULL;
    int missing = 0;
    int rc = ig_tmpl_render(path ? path : "", lookup, payload, &p, &missing);
    if (rc == INTEG_OK && missing)
        rc = ig_err(INTEG_EINVAL, "%s: request path '%s' needs a value that is not set", what, path);
    if (rc == INTEG_OK) {
        if (!strncmp(p, "https://", 8) || !strncmp(p, "http://", 7)) {
            rc = ig_url_parse(p, &r->url);
        } else {
            rc = ig_url_parse(c->base_url, &r->url);
            if (rc == INTEG_OK && *p)
                rc = ig_url_append_path(r->url, p);
        }
    }
    free(p);
    if (rc == INTEG_OK)
        rc = ig_req_header(r, "Accept", "application/json");
    if (rc == INTEG_OK)
        rc = ig_req_headers(r, ig_json_get(c->manifest, "headers"), lookup, payload);
    return rc;
}

int ig_req_begin_url(ig_req *r, ig_conn *c, const char *method, const char *url, ig_tmpl_lookup lookup,
                     void *payload)
{
    memset(r, 0, sizeof *r);
    r->method = method ? method : "GET";
    int rc = ig_url_parse(c->base_url, &r->url);
    if (rc == INTEG_OK)
        rc = ig_url_resolve(r->url, url);
    if (rc == INTEG_OK)
        rc = ig_req_header(r, "Accept", "application/json");
    if (rc == INTEG_OK)
        rc = ig_req_headers(r, ig_json_get(c->manifest, "headers"), lookup, payload);
    return rc;
}

int ig_req_body(ig_req *r, const void *body, size_t len, const char *content_type)
{
    if (r->body)
        ig_free_secret(r->body, r->body_len);
    r->body = malloc(len + 1);
    r->body_len = 0;
    if (!r->body)
        return ig_err(INTEG_ENOMEM, "out of memory");
    if (len)
        memcpy(r->body, body, len);
    r->body[len] = '\0';
    r->body_len = len;
    return ig_req_header(r, "Content-Type", content_type);
}

int ig_req_json_body(ig_req *r, json_object *body)
{
    if (!body) {
        if (r->body)
            ig_free_secret(r->body, r->body_len);
        r->body = NULL;
        r->body_len = 0;
        return INTEG_OK;
    }
    /* Written once, straight into the body (the bytes of json-c's PLAIN |
     * NOSLASHESCAPE), caching no text in `body`'s objects; the buffer is
     * one that holds secrets (a login's password): zeroed as it grows and
     * when freed or replaced. */
    char *text = NULL;
    int rc = ig_json_to_secret_string(body, &text);
    if (rc)
        return rc;
    if (r->body)
        ig_free_secret(r->body, r->body_len);
    r->body = text;
    r->body_len = strlen(text);
    return ig_req_header(r, "Content-Type", "application/json");
}

int ig_req_header(ig_req *r, const char *name, const char *value)
{
    for (size_t i = 0; i < r->n; i++) {
        if (!strcasecmp(r->names[i], name)) {
            ig_free_secret(r->values[i], strlen(r->values[i]));
            r->values[i] = strdup(value);
            return r->values[i] ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
        }
    }
    if (r->n == IG_REQ_MAX_HEADERS)
        return ig_err(INTEG_EINVAL, "too many request headers");
    r->names[r->n] = strdup(name);
    r->values[r->n] = strdup(value);
    r->n++;
    return r->names[r->n - 1] && r->values[r->n - 1] ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
}

int ig_req_headers(ig_req *r, json_object *headers, ig_tmpl_lookup lookup, void *l)
{
    if (!json_object_is_type(headers, json_type_object))
        return INTEG_OK;
    ig_json_foreach(headers, k, v)
    {
        if (!json_object_is_type(v, json_type_string))
            continue;
        char *val = NULL;
        int missing = 0;
        int rc = ig_tmpl_render(json_object_get_string(v), lookup, l, &val, &missing);
        if (rc)
            return rc;
        if (!missing)
            rc = ig_req_header(r, k, val);
        ig_free_secret(val, strlen(val));
        if (rc)
            return rc;
    }
    return INTEG_OK;
}

int ig_req_query(ig_req *r, json_object *query, ig_tmpl_lookup lookup, void *l)
{
    if (!json_object_is_type(query, json_type_object))
        return INTEG_OK;
    ig_json_foreach(query, k, v)
    {
        char *val = NULL;
        int missing = 0, rc;
        if (json_object_is_type(v, json_type_string))
            rc = ig_tmpl_render(json_object_get_string(v), lookup, l, &val, &missing);
        else
            rc = (val = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)))
                     ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
        if (rc)
            return rc;
        if (!missing)
            rc = ig_url_set_query(r->url, k, val);
        ig_free_secret(val, strlen(val));
        if (rc)
            return rc;
    }
    return INTEG_OK;
}

static int apply_one_auth(ig_req *r, json_object *a, ig_tmpl_lookup lookup, void *l)
{
    const char *in = ig_json_str(a, "in");
    int missing = 0, rc;
    char *val = NULL;
    if (!in || !strcmp(in, "basic")) {
        char *user = NULL, *pass = NULL;
        int m1 = 0, m2 = 0;
        rc = ig_tmpl_render(ig_json_str(a, "username") ? ig_json_str(a, "username") : "", lookup, l, &user, &m1);
        if (rc == INTEG_OK)
            rc = ig_tmpl_render(ig_json_str(a, "password") ? ig_json_str(a, "password") : "", lookup, l, &pass, &m2);
        if (rc == INTEG_OK && !m1) {
            size_t n = strlen(user) + 1 + strlen(pass);
            char *joined = malloc(n + 1);
            if (!joined) {
                rc = ig_err(INTEG_ENOMEM, "out of memory");
            } else {
                snprintf(joined, n + 1, "%s:%s", user, pass);
                char *b64 = ig_b64_encode((unsigned char *)joined, n);
                ig_free_secret(joined, n);
                size_t hl = strlen(b64 ? b64 : "") + 7;
                char *hv = b64 ? malloc(hl) : NULL;
                if (hv) {
                    snprintf(hv, hl, "Basic %s", b64);
                    rc = ig_req_header(r, "Authorization", hv);
                    ig_free_secret(hv, strlen(hv));
                } else {
                    rc = ig_err(INTEG_ENOMEM, "out of memory");
                }
                if (b64)
                    ig_free_secret(b64, strlen(b64));
            }
        }
        if (user)
            ig_free_secret(user, strlen(user));
        if (pass)
            ig_free_secret(pass, strlen(pass));
        return rc;
    }
    rc = ig_tmpl_render(ig_json_str(a, "value") ? ig_json_str(a, "value") : "", lookup, l, &val, &missing);
    if (rc)
        return rc;
    if (missing) {
        ig_free_secret(val, strlen(val));
        return INTEG_OK; /* no credential: the request goes without, the remote says 401 */
    }
    const char *prefix = ig_json_str(a, "prefix") ? ig_json_str(a, "prefix") : "";
    const char *name = ig_json_str(a, "name") ? ig_json_str(a, "name") : "Authorization";
    size_t n = strlen(prefix) + strlen(val) + 1;
    char *full = malloc(n);
    if (!full) {
        ig_free_secret(val, strlen(val));
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    snprintf(full, n, "%s%s", prefix, val);
    if (!strcmp(in, "header")) {
        rc = ig_req_header(r, name, full);
    } else if (!strcmp(in, "query")) {
        rc = ig_url_set_query(r->url, name, full);
    } else if (!strcmp(in, "cookie")) {
        size_t cn = strlen(name) + 1 + strlen(full) + 1;
        char *cookie = malloc(cn);
        if (cookie) {
            snprintf(cookie, cn, "%s=%s", name, full);
            rc = ig_req_header(r, "Cookie", cookie);
            ig_free_secret(cookie, strlen(cookie));
        } else {
            rc = ig_err(INTEG_ENOMEM, "out of memory");
        }
    } else {
        rc = ig_err(INTEG_EINVAL, "auth apply: unknown location '%s'", in);
    }
    ig_free_secret(full, strlen(full));
    ig_free_secret(val, strlen(val));
    return rc;
}

int ig_req_auth(ig_req *r, ig_conn *c, ig_tmpl_lookup lookup, void *l)
{
    json_object *apply = ig_json_get(c->method, "apply");
    if (!apply)
        return INTEG_OK;
    /* Token flows (refresh, client credentials, JWT, sessions) make sure
     * c->token is current before it is applied. */
    int prc = ig_auth_prepare(c);
    if (prc)
        return prc;
    if (json_object_is_type(apply, json_type_array)) {
        for (size_t i = 0; i < ig_json_len(apply); i++) {
            int rc = apply_one_auth(r, json_object_array_get_idx(apply, i), lookup, l);
            if (rc)
                return rc;
        }
        return INTEG_OK;
    }
    return apply_one_auth(r, apply, lookup, l);
}

/* Does the response carry this rate-limit signal ({status,
 * body_contains?, json_path? + equals?})? */
static int signal_matches(json_object *s, const ig_http_response *resp)
{
    if (ig_json_int(s, "status", 0) != resp->status)
        return 0;
    const char *contains = ig_json_str(s, "body_contains");
    const char *jp = ig_json_str(s, "json_path");
    int match = 1;
    if (contains)
        match = resp->body && strstr(resp->body, contains) != NULL;
    if (match && jp) {
        json_object *doc = resp->body ? json_tokener_parse(resp->body) : NULL;
        json_object *vals = json_object_new_array();
        ig_jsonpath_collect(doc, jp, vals);
        match = 0;
        const char *eq = ig_json_str(s, "equals");
        for (size_t k = 0; k < ig_json_len(vals); k++) {
            json_object *v = json_object_array_get_idx(vals, k);
            if (!eq || (json_object_is_type(v, json_type_string) && !strcmp(json_object_get_string(v), eq)))
                match = 1;
        }
        json_object_put(vals);
        json_object_put(doc);
    }
    return match;
}

/* classify()'s payload: the manifest's signals, and the one that matched
 * the last response classified (the one ig_http_send_ex returns). */
struct signals {
    json_object *list;
    json_object *matched;
};

static ig_http_class classify(void *payload, const ig_http_response *resp)
{
    struct signals *sg = payload;
    sg->matched = NULL;
    for (size_t i = 0; i < ig_json_len(sg->list); i++) {
        json_object *s = json_object_array_get_idx(sg->list, i);
        if (signal_matches(s, resp)) {
            sg->matched = s;
            return ig_json_bool(s, "retry", 1) ? IG_HTTP_RATE_LIMITED : IG_HTTP_OK;
        }
    }
    if (resp->status == 429)
        return IG_HTTP_RATE_LIMITED;
    if (resp->status >= 500 && resp->status != 501)
        return IG_HTTP_RETRY;
    return IG_HTTP_OK;
}

int ig_req_send_once(ig_conn *c, ig_req *r, const char *what, unsigned flags, ig_http_response *resp)
{
    ig_http *http = NULL;
    int rc = ig_ctx_http(c->ctx, &http);
    if (rc)
        return rc;
    char *url = NULL;
    if ((rc = ig_url_get(r->url, &url)))
        return rc;
    ig_http_header hs[IG_REQ_MAX_HEADERS];
    for (size_t i = 0; i < r->n; i++) {
        hs[i].name = r->names[i];
        hs[i].value = r->values[i];
    }
    ig_http_request hr = {r->method, url, hs, r->n, r->body, r->body ? r->body_len : 0};
    struct signals sg = {ig_json_get(ig_json_get(c->manifest, "rate_limit"), "signals"), NULL};
    rc = ig_http_send_ex(http, &hr, flags, c->bucket, classify, &sg, resp);
    free(url);
    if (rc)
        return ig_err_prefix(rc, what);
    /* The first signal that matched the response decides, as in
     * classify(): a budget that is exhausted (retry: false) is an error
     * even on HTTP 200. */
    if (sg.matched && !ig_json_bool(sg.matched, "retry", 1)) {
        char msg[1100];
        ig_http_status_error(resp, what);
        snprintf(msg, sizeof msg, "%s", ig_errmsg());
        return ig_err(INTEG_ERATELIMIT, "%s (the provider's budget is exhausted)", msg);
    }
    if (resp->status >= 300)
        return ig_http_status_error(resp, what);
    return INTEG_OK;
}

int ig_req_send(ig_conn *c, ig_req *r, ig_tmpl_lookup lookup, void *payload, const char *what, unsigned flags,
                ig_http_response *resp)
{
    int rc = ig_req_send_once(c, r, what, flags, resp);
    if (rc == INTEG_EAUTH && resp->status == 401 && ig_auth_after_401(c) == INTEG_OK) {
        ig_http_response_free(resp);
        memset(resp, 0, sizeof *resp);
        rc = ig_req_auth(r, c, lookup, payload);
        if (rc == INTEG_OK)
            rc = ig_req_send_once(c, r, what, flags, resp);
    }
    return rc;
}
