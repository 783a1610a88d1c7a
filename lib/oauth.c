/* OAuth 2.0: the authorization-code flow with state and PKCE
 * (integ_oauth_begin / integ_oauth_complete), the token endpoint shared by
 * every token flow, and integ_oauth_refresh. doc/oauth.md is the guide. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "definitions.h"
#include "error.h"
#include "json.h"
#include "jwt.h"
#include "oauth.h"
#include "schema.h"
#include "template.h"
#include "util.h"

#define STATE_TTL_MS (10 * 60 * 1000)
/* Expired states are kept a day (so a late callback hears "expired", not
 * "unknown"), then swept by the next begin. */
#define STATE_KEEP_MS (24LL * 3600 * 1000)
#define NAME_MAX_LEN 200

/* ---- small helpers --------------------------------------------------------- */

/* A token response's expires_in in seconds (a number, or a numeric
 * string), or -1 when it has none. */
static double expires_in(json_object *resp)
{
    json_object *ei = ig_json_get(resp, "expires_in");
    if (json_object_is_type(ei, json_type_int) || json_object_is_type(ei, json_type_double))
        return json_object_get_double(ei);
    if (json_object_is_type(ei, json_type_string)) /* some servers send "3600" */
        return strtod(json_object_get_string(ei), NULL);
    return -1;
}

static void form_put(ig_form *f, const char *s, size_t n)
{
    if (f->oom)
        return;
    if (f->len + n + 1 > f->cap) {
        size_t cap = (f->cap ? f->cap : 256);
        while (cap < f->len + n + 1)
            cap *= 2;
        char *nb = malloc(cap);
        if (!nb) {
            f->oom = 1;
            return;
        }
        if (f->buf) {
            memcpy(nb, f->buf, f->len);
            ig_free_secret(f->buf, f->cap);
        }
        f->buf = nb;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, s, n);
    f->len += n;
    f->buf[f->len] = '\0';
}

static void form_escape(ig_form *f, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (ig_url_unreserved(*p)) {
            form_put(f, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            form_put(f, e, 3);
        }
    }
}

void ig_form_add(ig_form *f, const char *name, const char *value)
{
    if (!value)
        return;
    if (f->len)
        form_put(f, "&", 1);
    form_escape(f, name);
    form_put(f, "=", 1);
    form_escape(f, value);
}

void ig_form_free(ig_form *f)
{
    if (f->buf)
        ig_free_secret(f->buf, f->cap);
    memset(f, 0, sizeof *f);
}

json_object *ig_auth_lookup(void *payload, const char *ns, const char *name)
{
    const ig_auth_vars *v = payload;
    if (!name)
        return NULL;
    if (!strcmp(ns, "config"))
        return ig_json_get(v->config, name);
    if (!strcmp(ns, "credentials"))
        return ig_json_get(v->credentials, name);
    if (!strcmp(ns, "session"))
        return ig_json_get(v->session, name);
    return NULL;
}

int ig_auth_render(const char *tmpl, const ig_auth_vars *vars, char **out)
{
    *out = NULL;
    char *s = NULL;
    int missing = 0;
    int rc = ig_tmpl_render(tmpl, ig_auth_lookup, (void *)vars, &s, &missing);
    if (rc)
        return rc;
    if (missing) {
        ig_free_secret(s, strlen(s));
        return INTEG_OK;
    }
    *out = s;
    return INTEG_OK;
}

int ig_auth_render_map(json_object *map, const ig_auth_vars *vars, json_object **out)
{
    *out = json_object_new_object();
    if (!*out)
        return ig_err(INTEG_ENOMEM, "out of memory");
    if (!json_object_is_type(map, json_type_object))
        return INTEG_OK;
    json_object_object_foreach(map, k, v)
    {
        char *s = NULL;
        if (!json_object_is_type(v, json_type_string))
            continue;
        int rc = ig_auth_render(json_object_get_string(v), vars, &s);
        if (rc)
            return rc;
        if (s) {
            json_object_object_add(*out, k, json_object_new_string(s));
            ig_free_secret(s, strlen(s));
        }
    }
    return INTEG_OK;
}

int ig_form_add_rendered(ig_form *f, json_object *map, const ig_auth_vars *vars)
{
    /* Each member rendered straight into the form, in order, as
     * ig_auth_render_map keeps them (strings whose placeholders are all
     * set); each rendered value is wiped once added. */
    ig_json_foreach(map, k, v)
    {
        if (!json_object_is_type(v, json_type_string))
            continue;
        char *s = NULL;
        int rc = ig_auth_render(json_object_get_string(v), vars, &s);
        if (rc)
            return rc;
        if (s) {
            ig_form_add(f, k, s);
            ig_free_secret(s, strlen(s));
        }
    }
    return f->oom ? ig_err(INTEG_ENOMEM, "out of memory") : INTEG_OK;
}

int ig_oauth_endpoint(integ_ctx *ctx, json_object *definition, json_object *method, const char *field,
                      const ig_auth_vars *vars, char **out)
{
    *out = NULL;
    const char *key = ig_json_str(definition, "key");
    json_object *ovr = ig_json_get(ig_json_get(ctx->options, "base_url_overrides"), key ? key : "");
    const char *o = json_object_is_type(ovr, json_type_object) ? ig_json_str(ovr, field) : NULL;
    if (o) {
        *out = strdup(o);
        return *out ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
    }
    const char *tmpl = ig_json_str(method, field);
    if (!tmpl)
        return ig_err(INTEG_EINVAL, "%s: the auth method declares no %s", key, field);
    int rc = ig_auth_render(tmpl, vars, out);
    if (rc == INTEG_OK && !*out)
        rc = ig_err(INTEG_EINVAL, "%s: %s '%s' needs a config value that is not set", key, field, tmpl);
    return rc;
}

int ig_oauth_scope(json_object *method, json_object *extra, const ig_auth_vars *vars, char **out)
{
    *out = NULL;
    const char *sep = ig_json_str(method, "scope_separator") ? ig_json_str(method, "scope_separator") : " ";
    json_object *seen = json_object_new_array();
    ig_form buf = {0};
    json_object *lists[2] = {ig_json_get(method, "scopes"), extra};
    int rc = INTEG_OK;
    for (int l = 0; l < 2 && rc == INTEG_OK; l++) {
        for (size_t i = 0; i < ig_json_len(lists[l]) && rc == INTEG_OK; i++) {
            const char *t = json_object_get_string(json_object_array_get_idx(lists[l], i));
            char *s = NULL;
            if (!t || (rc = ig_auth_render(t, vars, &s)) || !s)
                continue;
            int dup = 0;
            for (size_t k = 0; k < ig_json_len(seen); k++)
                dup |= !strcmp(json_object_get_string(json_object_array_get_idx(seen, k)), s);
            if (!dup && *s) {
                if (buf.len)
                    form_put(&buf, sep, strlen(sep));
                form_put(&buf, s, strlen(s));
                json_object_array_add(seen, json_object_new_string(s));
            }
            free(s);
        }
    }
    json_object_put(seen);
    if (rc == INTEG_OK && buf.oom)
        rc = ig_err(INTEG_ENOMEM, "out of memory");
    if (rc == INTEG_OK && buf.len) {
        *out = strdup(buf.buf);
        if (!*out)
            rc = ig_err(INTEG_ENOMEM, "out of memory");
    }
    ig_form_free(&buf);
    return rc;
}

int ig_oauth_app_credentials(integ_ctx *ctx, json_object *definition, json_object **out)
{
    *out = NULL;
    const char *sealed = ig_json_str(definition, "app_credentials_sealed");
    if (!sealed)
        return ig_err(INTEG_EINVAL,
                      "%s: no OAuth app credentials are set (integ_definition_set_app_credentials)",
                      ig_json_str(definition, "key"));
    char *plain = NULL;
    size_t len = 0;
    int rc = ig_ctx_open_sealed(ctx, NULL, ig_json_str(definition, "id"), "app_credentials", sealed, &plain, &len);
    if (rc)
        return ig_err_prefix(rc, "app credentials");
    json_object *o = ig_json_parse_secret(plain, len);
    ig_free_secret(plain, len);
    if (!json_object_is_type(o, json_type_object)) {
        ig_json_wipe_put(o);
        return ig_err(INTEG_ECRYPTO, "app credentials of %s are not a JSON object", ig_json_str(definition, "key"));
    }
    if (!ig_json_str(o, "client_id") || !*ig_json_str(o, "client_id")) {
        ig_json_wipe_put(o);
        return ig_err(INTEG_EINVAL, "%s: the app credentials have no client_id", ig_json_str(definition, "key"));
    }
    *out = o;
    return INTEG_OK;
}

int ig_oauth_seal_into(integ_ctx *ctx, json_object *rec, const char *field, json_object *value)
{
    char purpose[64];
    size_t n = strlen(field);
    if (n <= 7 || n - 7 >= sizeof purpose || strcmp(field + n - 7, "_sealed"))
        return ig_err(INTEG_EINTERNAL, "seal: bad field name %s", field);
    memcpy(purpose, field, n - 7);
    purpose[n - 7] = '\0';
    size_t len = 0;
    const char *plain = json_object_to_json_string_length(value, JSON_C_TO_STRING_PLAIN, &len);
    char *sealed = NULL;
    int rc = ig_ctx_seal(ctx, ig_json_str(rec, "tenant_id"), ig_json_str(rec, "id"), purpose, plain, len, &sealed);
    if (rc == INTEG_OK) {
        json_object_object_add(rec, field, json_object_new_string(sealed));
        free(sealed);
    }
    return rc;
}

int ig_oauth_open_from(integ_ctx *ctx, json_object *rec, const char *field, json_object **out)
{
    *out = NULL;
    const char *sealed = ig_json_str(rec, field);
    if (!sealed)
        return INTEG_OK;
    char purpose[64];
    size_t n = strlen(field);
    if (n <= 7 || n - 7 >= sizeof purpose)
        return ig_err(INTEG_EINTERNAL, "open: bad field name %s", field);
    memcpy(purpose, field, n - 7);
    purpose[n - 7] = '\0';
    char *plain = NULL;
    size_t len = 0;
    int rc = ig_ctx_open_sealed(ctx, ig_json_str(rec, "tenant_id"), ig_json_str(rec, "id"), purpose, sealed, &plain, &len);
    if (rc)
        return rc;
    json_object *o = ig_json_parse_secret(plain, len);
    ig_free_secret(plain, len);
    if (!json_object_is_type(o, json_type_object)) {
        ig_json_wipe_put(o);
        return ig_err(INTEG_ECRYPTO, "%s of %s is not a JSON object", field, ig_json_str(rec, "id"));
    }
    *out = o;
    return INTEG_OK;
}

/* ---- the token endpoint ------------------------------------------------------ */

/* Basic credentials per RFC 6749 2.3.1: each part form-urlencoded first. */
static char *basic_header(const char *id, const char *secret)
{
    ig_form f = {0};
    form_escape(&f, id);
    form_put(&f, ":", 1);
    form_escape(&f, secret ? secret : "");
    char *b64 = f.oom ? NULL : ig_b64_encode((const unsigned char *)f.buf, f.len);
    ig_form_free(&f);
    if (!b64)
        return NULL;
    size_t n = strlen(b64) + 7;
    char *h = malloc(n);
    if (h)
        snprintf(h, n, "Basic %s", b64);
    ig_free_secret(b64, strlen(b64));
    return h;
}

/* A printable, bounded copy of a provider's text for messages. */
static void clean_text(const char *in, char *out, size_t cap)
{
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p && j + 1 < cap; p++)
        out[j++] = (*p < 0x20 || *p == 0x7f) ? ' ' : (char)*p;
    out[j] = '\0';
}

static int client_assertion(integ_ctx *ctx, const ig_token_call *call, char **out)
{
    unsigned char jti[16];
    randombytes_buf(jti, sizeof jti);
    char *jti64 = ig_b64url(jti, sizeof jti);
    int64_t now_s = ig_ctx_now_ms(ctx) / 1000;
    json_object *claims = json_object_new_object();
    json_object_object_add(claims, "iss", json_object_new_string(call->client_id));
    json_object_object_add(claims, "sub", json_object_new_string(call->client_id));
    json_object_object_add(claims, "aud", json_object_new_string(call->url));
    json_object_object_add(claims, "jti", json_object_new_string(jti64 ? jti64 : ""));
    json_object_object_add(claims, "iat", json_object_new_int64(now_s));
    json_object_object_add(claims, "exp", json_object_new_int64(now_s + 300));
    free(jti64);
    int rc = ig_jwt_sign("RS256", call->private_key, call->key_id, claims, out);
    json_object_put(claims);
    return rc ? ig_err_prefix(rc, "private_key_jwt client assertion") : INTEG_OK;
}

int ig_oauth_token_post(integ_ctx *ctx, const ig_token_call *call, ig_form *form, json_object **out,
                        char oauth_error[64])
{
    *out = NULL;
    if (oauth_error)
        oauth_error[0] = '\0';
    const char *what = call->what ? call->what : "token request";
    const char *auth = call->client_auth                              ? call->client_auth
                       : call->private_key && !call->client_secret ? "private_key_jwt"
                                                                      : "client_secret_post";
    char *basic = NULL;
    int rc = INTEG_OK;
    if (!strcmp(auth, "client_secret_basic")) {
        if (!call->client_id)
            return ig_err(INTEG_EINVAL, "%s: no client_id", what);
        if (!(basic = basic_header(call->client_id, call->client_secret)))
            return ig_err(INTEG_ENOMEM, "out of memory");
    } else if (!strcmp(auth, "private_key_jwt")) {
        if (!call->client_id || !call->private_key)
            return ig_err(INTEG_EINVAL, "%s: private_key_jwt needs a client_id and a private_key", what);
        char *jwt = NULL;
        if ((rc = client_assertion(ctx, call, &jwt)))
            return rc;
        ig_form_add(form, "client_id", call->client_id);
        ig_form_add(form, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        ig_form_add(form, "client_assertion", jwt);
        ig_free_secret(jwt, strlen(jwt));
    } else if (!strcmp(auth, "none")) {
        if (call->client_id)
            ig_form_add(form, "client_id", call->client_id);
    } else if (!strcmp(auth, "client_secret_post")) {
        if (!call->client_id)
            return ig_err(INTEG_EINVAL, "%s: no client_id", what);
        ig_form_add(form, "client_id", call->client_id);
        ig_form_add(form, "client_secret", call->client_secret ? call->client_secret : "");
    } else {
        return ig_err(INTEG_EINVAL, "%s: unknown client_auth '%s'", what, auth);
    }
    if (form->oom) {
        free(basic);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    ig_http_header hs[24];
    size_t n = 0;
    hs[n++] = (ig_http_header){"Content-Type", "application/x-www-form-urlencoded"};
    hs[n++] = (ig_http_header){"Accept", "application/json"};
    if (basic)
        hs[n++] = (ig_http_header){"Authorization", basic};
    if (json_object_is_type(call->headers, json_type_object)) {
        json_object_object_foreach(call->headers, k, v)
        {
            if (n < sizeof hs / sizeof *hs && json_object_is_type(v, json_type_string))
                hs[n++] = (ig_http_header){k, json_object_get_string(v)};
        }
    }
    ig_http *http = NULL;
    ig_http_response resp = {0};
    if ((rc = ig_ctx_http(ctx, &http)) == INTEG_OK) {
        ig_http_request req = {"POST", call->url, hs, n, form->buf ? form->buf : "", form->len};
        /* Never re-sent once it may have reached the server (oauth.h). */
        rc = ig_http_send_ex(http, &req, IG_HTTP_NON_IDEMPOTENT, NULL, NULL, NULL, &resp);
        if (rc)
            ig_err_prefix(rc, what);
    }
    if (basic)
        ig_free_secret(basic, strlen(basic));
    if (rc) {
        ig_http_response_free(&resp);
        return rc;
    }
    json_object *doc = NULL;
    if (resp.body && resp.body_len)
        doc = ig_json_parse_secret(resp.body, resp.body_len);
    if (resp.status >= 200 && resp.status < 300) {
        if (!json_object_is_type(doc, json_type_object)) {
            rc = ig_err(INTEG_EREMOTE, "%s: HTTP %ld: the response is not a JSON object", what, resp.status);
            ig_json_wipe_put(doc);
        } else {
            *out = doc;
        }
    } else {
        const char *err = ig_json_str(doc, "error");
        const char *desc = ig_json_str(doc, "error_description");
        /* HubSpot's v1 token endpoint names a dead code or refresh token in
         * "status" ("BAD_AUTH_CODE", "BAD_REFRESH_TOKEN") with "message"
         * instead of RFC 6749's fields: the same thing as invalid_grant. */
        const char *hs = ig_json_str(doc, "status");
        if (!err && hs && (!strcmp(hs, "BAD_AUTH_CODE") || !strcmp(hs, "BAD_REFRESH_TOKEN"))) {
            err = "invalid_grant";
            desc = ig_json_str(doc, "message");
        }
        if (resp.status >= 400 && resp.status < 500 && err) {
            char e[64], d[320];
            clean_text(err, e, sizeof e);
            clean_text(desc, d, sizeof d);
            if (oauth_error)
                snprintf(oauth_error, 64, "%s", e);
            rc = ig_err(INTEG_EAUTH, "%s: HTTP %ld %s%s%s", what, resp.status, e, d[0] ? ": " : "", d);
        } else {
            rc = ig_http_status_error(&resp, what);
            if (rc == INTEG_OK)
                rc = ig_err(INTEG_EREMOTE, "%s: unexpected HTTP %ld", what, resp.status);
        }
        ig_json_wipe_put(doc);
    }
    if (resp.body)
        sodium_memzero(resp.body, resp.body_len);
    ig_http_response_free(&resp);
    return rc;
}

int ig_oauth_token_creds(const char *what, json_object *method, json_object *resp, json_object *prev, int64_t now_ms,
                         json_object **out, int64_t *expires_at_ms)
{
    *out = NULL;
    if (expires_at_ms)
        *expires_at_ms = 0;
    const char *at = ig_json_str(resp, "access_token");
    if (!at || !*at)
        return ig_err(INTEG_EREMOTE, "%s: token response: no access_token", what ? what : "token request");
    json_object *c = json_object_new_object();
    json_object_object_add(c, "access_token", json_object_new_string(at));
    const char *rt = ig_json_str(resp, "refresh_token");
    if (!rt || !*rt)
        rt = ig_json_str(prev, "refresh_token");
    if (rt && *rt)
        json_object_object_add(c, "refresh_token", json_object_new_string(rt));
    const char *tt = ig_json_str(resp, "token_type") ? ig_json_str(resp, "token_type") : ig_json_str(prev, "token_type");
    if (tt)
        json_object_object_add(c, "token_type", json_object_new_string(tt));
    double secs = expires_in(resp);
    if (secs > 0) {
        int64_t exp = now_ms + (int64_t)(secs * 1000.0);
        char at_s[32];
        ig_rfc3339(at_s, exp, 0);
        json_object_object_add(c, "expires_at", json_object_new_string(at_s));
        if (expires_at_ms)
            *expires_at_ms = exp;
    }
    const char *sc = ig_json_str(resp, "scope") ? ig_json_str(resp, "scope") : ig_json_str(prev, "scope");
    if (sc)
        json_object_object_add(c, "scope", json_object_new_string(sc));
    json_object *extras = ig_json_get(method, "token_extras");
    for (size_t i = 0; i < ig_json_len(extras); i++) {
        const char *k = json_object_get_string(json_object_array_get_idx(extras, i));
        json_object *v = k ? ig_json_get(resp, k) : NULL;
        if (k && !v)
            v = ig_json_get(prev, k);
        if (v)
            json_object_object_add(c, k, ig_json_copy(v));
    }
    *out = c;
    return INTEG_OK;
}

void ig_oauth_fingerprint2(const char *secret, const char *more, char out[33])
{
    /* BLAKE2b of secret, then "\n" + more when given: the digest of the
     * joined text, without joining it. */
    unsigned char h[16];
    crypto_generichash_state st;
    crypto_generichash_init(&st, (const unsigned char *)"integ-token-fp-1", 16, sizeof h);
    if (secret)
        crypto_generichash_update(&st, (const unsigned char *)secret, strlen(secret));
    if (more) {
        crypto_generichash_update(&st, (const unsigned char *)"\n", 1);
        crypto_generichash_update(&st, (const unsigned char *)more, strlen(more));
    }
    crypto_generichash_final(&st, h, sizeof h);
    sodium_memzero(&st, sizeof st);
    sodium_bin2hex(out, 33, h, sizeof h);
}

void ig_oauth_fingerprint(const char *secret, char out[33]) { ig_oauth_fingerprint2(secret, NULL, out); }

int ig_oauth_creds_unchanged(integ_ctx *ctx, json_object *rec, const ig_creds_seen *seen)
{
    const char *cur = ig_json_str(rec, "credentials_sealed");
    if (!cur || !seen->sealed)
        return !cur && !seen->sealed;
    if (!strcmp(cur, seen->sealed))
        return 1;
    /* Another sealing: a master-key rotation re-seals the same credentials. */
    json_object *now = NULL;
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", ig_errmsg());
    int same = ig_oauth_open_from(ctx, rec, "credentials_sealed", &now) == INTEG_OK && now && seen->creds &&
               json_object_equal(now, seen->creds);
    ig_json_wipe_put(now);
    integ_error_set(0, saved);
    return same;
}

int ig_oauth_needs_reauth(integ_ctx *ctx, const char *tenant_id, const char *integration_id, int code,
                          const char *reason, const char *rejected_fp, const ig_creds_seen *seen)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", reason ? reason : "");
    void *tx = NULL;
    json_object *rec = NULL;
    int changed = 0;
    int rc = ig_tx_begin(ctx, 1, &tx);
    if (rc == INTEG_OK)
        rc = ig_store_get(ctx, tx, INTEG_KIND_INTEGRATION, tenant_id, integration_id, &rec);
    if (rc == INTEG_OK && seen && !ig_oauth_creds_unchanged(ctx, rec, seen))
        changed = 1; /* set or re-authorised meanwhile: the rejection is about credentials gone */
    if (rc == INTEG_OK && !changed) {
        char now[32];
        ig_rfc3339(now, ig_now_ms(), 0);
        /* A person paused it: it stays paused (as a failed sync leaves it). */
        const char *st = ig_json_str(rec, "status");
        if (!st || strcmp(st, "paused"))
            json_object_object_add(rec, "status", json_object_new_string("needs_reauth"));
        json_object_object_add(rec, "last_error", json_object_new_string(msg));
        json_object_object_add(rec, "updated_at", json_object_new_string(now));
        if (rejected_fp)
            json_object_object_add(rec, "rejected_refresh_fp", json_object_new_string(rejected_fp));
        rc = ig_store_put(ctx, tx, INTEG_KIND_INTEGRATION, rec, INTEG_PUT_UPDATE);
    }
    if (rc == INTEG_OK && !changed) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "reason", json_object_new_string(msg));
        rc = ig_audit(ctx, tx, tenant_id, NULL, "integration.needs_reauth", "integration", integration_id, d);
        json_object_put(d);
    }
    ig_tx_end(ctx, tx, 1, rc);
    json_object_put(rec);
    if (changed) {
        ig_err_clear();
        return IG_CREDS_CHANGED;
    }
    json_object *f = json_object_new_object();
    json_object_object_add(f, "tenant_id", json_object_new_string(tenant_id));
    json_object_object_add(f, "integration_id", json_object_new_string(integration_id));
    json_object_object_add(f, "reason", json_object_new_string(msg));
    ig_emit(ctx, "integration.needs_reauth", f);
    json_object_put(f);
    return integ_error_set(code, msg);
}

/* ---- begin ------------------------------------------------------------------- */

static void state_id(const char *state, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)state, strlen(state));
    sodium_bin2hex(out, 65, h, sizeof h);
}

static json_object *oauth2_method(json_object *definition)
{
    return ig_json_get(ig_json_get(ig_json_get(ig_json_get(definition, "manifest"), "auth"), "methods"), "oauth2");
}

static int check_redirect_uri(const char *uri)
{
    if (!uri || !*uri || strlen(uri) > 2000)
        return ig_err(INTEG_EINVAL, "request_json.redirect_uri: required, an absolute http(s) URL");
    if (strncmp(uri, "https://", 8) && strncmp(uri, "http://", 7))
        return ig_err(INTEG_EINVAL, "request_json.redirect_uri: must be an absolute http(s) URL");
    if (strchr(uri, '#'))
        return ig_err(INTEG_EINVAL, "request_json.redirect_uri: must not have a fragment");
    ig_url *u = NULL;
    int rc = ig_url_parse(uri, &u);
    ig_url_free(u);
    return rc ? ig_err_prefix(rc, "request_json.redirect_uri") : INTEG_OK;
}

INTEG_API int integ_oauth_begin(integ_session *s, const char *request_json, char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(out_json, "out_json");
    json_object *req = NULL;
    if ((rc = ig_json_parse_object(request_json, "request_json", 0, &req)))
        return rc;
    static const char *const known[] = {"integration_definition_id", "redirect_uri", "name", "config",
                                        "scopes", "integration_id", NULL};
    json_object *def = NULL, *app = NULL, *config = NULL, *existing = NULL, *rec = NULL, *verifier = NULL;
    char *authorize = NULL, *scope = NULL, *url = NULL;
    ig_url *u = NULL;
    void *tx = NULL;
    const char *def_id = ig_json_str(req, "integration_definition_id");
    const char *redirect = ig_json_str(req, "redirect_uri");
    const char *integration_id = ig_json_str(req, "integration_id");
    json_object *name = ig_json_get(req, "name"), *cfg_in = ig_json_get(req, "config"),
                *scopes = ig_json_get(req, "scopes");
    if ((rc = ig_session_require_admin(s)) || (rc = ig_json_check_keys(req, known, "request_json", "field")))
        goto out;
    if (!def_id || !*def_id) {
        rc = ig_err(INTEG_EINVAL, "request_json.integration_definition_id: required (a definition key or id)");
        goto out;
    }
    if ((rc = check_redirect_uri(redirect)))
        goto out;
    if (name && (!json_object_is_type(name, json_type_string) || json_object_get_string_len(name) == 0 ||
                 json_object_get_string_len(name) > NAME_MAX_LEN)) {
        rc = ig_err(INTEG_EINVAL, "request_json.name: must be a string of 1 to %d bytes", NAME_MAX_LEN);
        goto out;
    }
    if (cfg_in && !json_object_is_type(cfg_in, json_type_object)) {
        rc = ig_err(INTEG_EINVAL, "request_json.config: must be an object");
        goto out;
    }
    if (ig_json_get(req, "integration_id") && (!integration_id || !*integration_id)) {
        rc = ig_err(INTEG_EINVAL, "request_json.integration_id: must be an integration id");
        goto out;
    }
    if (scopes) {
        if (!json_object_is_type(scopes, json_type_array) || ig_json_len(scopes) > 64) {
            rc = ig_err(INTEG_EINVAL, "request_json.scopes: must be an array of at most 64 strings");
            goto out;
        }
        for (size_t i = 0; i < ig_json_len(scopes); i++) {
            json_object *v = json_object_array_get_idx(scopes, i);
            const char *sv = json_object_get_string(v);
            if (!json_object_is_type(v, json_type_string) || !*sv || strlen(sv) > 256 || strchr(sv, ' ') ||
                strchr(sv, '{')) {
                rc = ig_err(INTEG_EINVAL, "request_json.scopes[%zu]: must be a non-empty scope without spaces", i);
                goto out;
            }
        }
    }

    /* The definition, its oauth2 method and the app credentials. */
    if ((rc = ig_tx_begin(s->ctx, 0, &tx)))
        goto out;
    rc = ig_definition_lookup(s->ctx, tx, def_id, &def);
    if (rc)
        ig_err_prefix(rc, "request_json.integration_definition_id");
    if (rc == INTEG_OK && integration_id) {
        rc = ig_store_get(s->ctx, tx, INTEG_KIND_INTEGRATION, s->tenant_id, integration_id, &existing);
        if (rc == INTEG_ENOTFOUND)
            rc = ig_err(rc, "request_json.integration_id: integration '%s' not found", integration_id);
        else if (rc == INTEG_OK && strcmp(ig_json_str(existing, "definition_id"), ig_json_str(def, "id")))
            rc = ig_err(INTEG_EINVAL, "request_json.integration_id: integration '%s' is a %s integration, not %s",
                        integration_id, ig_json_str(existing, "definition_key"), ig_json_str(def, "key"));
    }
    rc = ig_tx_end(s->ctx, tx, 1, rc);
    tx = NULL;
    if (rc)
        goto out;
    json_object *method = oauth2_method(def);
    if (!method) {
        rc = ig_err(INTEG_EINVAL, "oauth begin: %s has no oauth2 auth method", ig_json_str(def, "key"));
        goto out;
    }
    if ((rc = ig_oauth_app_credentials(s->ctx, def, &app))) {
        ig_err_prefix(rc, "oauth begin");
        goto out;
    }
    if (cfg_in || !existing) {
        config = cfg_in ? ig_json_copy(cfg_in) : json_object_new_object();
        if ((rc = ig_schema_validate(ig_json_get(ig_json_get(def, "manifest"), "config_schema"), config, 1, "config")))
            goto out;
    } else {
        config = ig_json_copy(ig_json_get(existing, "config"));
    }

    /* state and PKCE */
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    char *state = ig_b64url(raw, sizeof raw);
    char *code_verifier = NULL, *challenge = NULL;
    int pkce = ig_json_bool(method, "pkce", 1);
    if (pkce) {
        randombytes_buf(raw, sizeof raw);
        code_verifier = ig_b64url(raw, sizeof raw); /* 43 characters */
        unsigned char h[crypto_hash_sha256_BYTES];
        if (code_verifier) {
            crypto_hash_sha256(h, (const unsigned char *)code_verifier, strlen(code_verifier));
            challenge = ig_b64url(h, sizeof h);
        }
    }
    sodium_memzero(raw, sizeof raw);
    if (!state || (pkce && (!code_verifier || !challenge))) {
        rc = ig_err(INTEG_ENOMEM, "out of memory");
        goto state_out;
    }

    /* The authorize URL, through libcurl's URL API. */
    ig_auth_vars vars = {config, NULL, NULL};
    if ((rc = ig_oauth_endpoint(s->ctx, def, method, "authorize_url", &vars, &authorize)) ||
        (rc = ig_url_parse(authorize, &u)) || (rc = ig_oauth_scope(method, scopes, &vars, &scope)) ||
        (rc = ig_url_set_query(u, "response_type", "code")) ||
        (rc = ig_url_set_query(u, "client_id", ig_json_str(app, "client_id"))) ||
        (rc = ig_url_set_query(u, "redirect_uri", redirect)) ||
        (scope && (rc = ig_url_set_query(u, "scope", scope))) || (rc = ig_url_set_query(u, "state", state)) ||
        (pkce && ((rc = ig_url_set_query(u, "code_challenge", challenge)) ||
                  (rc = ig_url_set_query(u, "code_challenge_method", "S256")))))
        goto state_out;
    json_object *aparams = ig_json_get(method, "authorize_params");
    if (json_object_is_type(aparams, json_type_object)) {
    json_object_object_foreach(aparams, pk, pv)
    {
        char *val = NULL;
        if (!json_object_is_type(pv, json_type_string))
            continue;
        if ((rc = ig_auth_render(json_object_get_string(pv), &vars, &val)))
            goto state_out;
        if (val)
            rc = ig_url_set_query(u, pk, val);
        free(val);
        if (rc)
            goto state_out;
    }
    }
    if ((rc = ig_url_get(u, &url)))
        goto state_out;

    /* The state record: its id is a hash of the state, never the state. */
    int64_t now = ig_ctx_now_ms(s->ctx);
    char sid[65], at[32], exp[32];
    state_id(state, sid);
    ig_rfc3339(at, now, 0);
    ig_rfc3339(exp, now + STATE_TTL_MS, 0);
    rec = json_object_new_object();
    json_object_object_add(rec, "id", json_object_new_string(sid));
    json_object_object_add(rec, "tenant_id", json_object_new_string(s->tenant_id));
    json_object_object_add(rec, "user_id", json_object_new_string(s->user_id));
    json_object_object_add(rec, "definition_id", json_object_get(ig_json_get(def, "id")));
    json_object_object_add(rec, "definition_key", json_object_get(ig_json_get(def, "key")));
    json_object_object_add(rec, "redirect_uri", json_object_new_string(redirect));
    json_object_object_add(rec, "config", json_object_get(config));
    json_object_object_add(rec, "config_given", json_object_new_boolean(cfg_in != NULL));
    if (name)
        json_object_object_add(rec, "name", json_object_get(name));
    if (integration_id)
        json_object_object_add(rec, "integration_id", json_object_new_string(integration_id));
    if (scopes)
        json_object_object_add(rec, "scopes", ig_json_copy(scopes));
    json_object_object_add(rec, "expires_at_ms", json_object_new_int64(now + STATE_TTL_MS));
    json_object_object_add(rec, "created_at", json_object_new_string(at));
    if (pkce) {
        verifier = json_object_new_object();
        json_object_object_add(verifier, "code_verifier", json_object_new_string(code_verifier));
        if ((rc = ig_oauth_seal_into(s->ctx, rec, "verifier_sealed", verifier)))
            goto state_out;
    }
    if ((rc = ig_tx_begin(s->ctx, 1, &tx)))
        goto state_out;
    char q[96];
    snprintf(q, sizeof q, "{\"expires_at_ms\":{\"lt\":%lld}}", (long long)(now - STATE_KEEP_MS));
    int64_t swept = 0;
    rc = s->ctx->store->remove_where(tx, INTEG_KIND_OAUTH_STATE, q, &swept);
    if (rc == INTEG_OK)
        rc = ig_store_put(s->ctx, tx, INTEG_KIND_OAUTH_STATE, rec, INTEG_PUT_INSERT);
    if (rc == INTEG_OK) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "definition", json_object_get(ig_json_get(def, "key")));
        json_object_object_add(d, "redirect_uri", json_object_new_string(redirect));
        if (integration_id)
            json_object_object_add(d, "integration_id", json_object_new_string(integration_id));
        json_object_object_add(d, "pkce", json_object_new_boolean(pkce));
        json_object_object_add(d, "expires_at", json_object_new_string(exp));
        rc = ig_audit(s->ctx, tx, s->tenant_id, s->user_id, "oauth.begin", "integration_definition",
                      ig_json_str(def, "key"), d);
        json_object_put(d);
    }
    rc = ig_tx_end(s->ctx, tx, 1, rc);
    tx = NULL;
    if (rc == INTEG_OK) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "authorize_url", json_object_new_string(url));
        json_object_object_add(o, "state", json_object_new_string(state));
        json_object_object_add(o, "expires_at", json_object_new_string(exp));
        rc = ig_json_to_string(o, out_json);
        json_object_put(o);
    }
state_out:
    if (state)
        ig_free_secret(state, strlen(state));
    if (code_verifier)
        ig_free_secret(code_verifier, strlen(code_verifier));
    free(challenge);
out:
    ig_tx_end(s->ctx, tx, 0, rc);
    ig_url_free(u);
    free(url);
    free(scope);
    free(authorize);
    json_object_put(rec);
    ig_json_wipe_put(verifier);
    ig_json_wipe_put(app);
    json_object_put(config);
    json_object_put(existing);
    json_object_put(def);
    json_object_put(req);
    return rc;
}

/* ---- complete ------------------------------------------------------------------ */

/* An audit entry for a callback that did not connect anything. */
static void audit_failure(integ_ctx *ctx, json_object *st, const char *reason)
{
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", ig_errmsg());
    void *tx = NULL;
    if (ig_tx_begin(ctx, 1, &tx) == INTEG_OK) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "definition", json_object_get(ig_json_get(st, "definition_key")));
        json_object_object_add(d, "reason", json_object_new_string(reason));
        if (ig_json_get(st, "integration_id"))
            json_object_object_add(d, "integration_id", json_object_get(ig_json_get(st, "integration_id")));
        int rc = ig_audit(ctx, tx, ig_json_str(st, "tenant_id"), ig_json_str(st, "user_id"), "oauth.failed",
                          "integration_definition", ig_json_str(st, "definition_key"), d);
        json_object_put(d);
        ig_tx_end(ctx, tx, 1, rc);
    }
    integ_error_set(0, saved); /* the failure's message, whatever the audit write set */
}

/* Take the state: read and remove it in one write transaction, before any
 * network call, so a second callback with it fails even while the first
 * is still exchanging the code. */
static int take_state(integ_ctx *ctx, const char *state, json_object **out)
{
    char sid[65];
    state_id(state, sid);
    void *tx = NULL;
    int rc = ig_tx_begin(ctx, 1, &tx);
    if (rc)
        return rc;
    rc = ig_store_get(ctx, tx, INTEG_KIND_OAUTH_STATE, NULL, sid, out);
    if (rc == INTEG_ENOTFOUND)
        rc = ig_err(INTEG_ENOTFOUND, "oauth callback: unknown or used state");
    if (rc == INTEG_OK)
        rc = ctx->store->remove(tx, INTEG_KIND_OAUTH_STATE, NULL, sid);
    rc = ig_tx_end(ctx, tx, 1, rc);
    if (rc) {
        json_object_put(*out);
        *out = NULL;
    }
    return rc;
}

/* Create the integration, or replace the credentials of the one being
 * re-authorised, in one transaction with its audit entries. */
static int store_integration(integ_ctx *ctx, json_object *st, json_object *def, json_object *creds,
                             char id_out[64])
{
    void *tx = NULL;
    json_object *rec = NULL;
    const char *tenant = ig_json_str(st, "tenant_id"), *user = ig_json_str(st, "user_id");
    const char *reauth = ig_json_str(st, "integration_id");
    char now_s[32];
    ig_rfc3339(now_s, ig_now_ms(), 0);
    int rc = ig_tx_begin(ctx, 1, &tx);
    if (rc)
        return rc;
    if (reauth) {
        rc = ig_store_get(ctx, tx, INTEG_KIND_INTEGRATION, tenant, reauth, &rec);
        if (rc == INTEG_ENOTFOUND)
            rc = ig_err(rc, "oauth callback: integration '%s' was deleted meanwhile", reauth);
        if (rc == INTEG_OK) {
            json_object_object_add(rec, "auth_type", json_object_new_string("oauth2"));
            /* Working credentials again; a person's pause stays. */
            const char *cur = ig_json_str(rec, "status");
            if (!cur || strcmp(cur, "paused"))
                json_object_object_add(rec, "status", json_object_new_string("active"));
            if (ig_json_bool(st, "config_given", 0))
                json_object_object_add(rec, "config", json_object_get(ig_json_get(st, "config")));
            /* As an update would: auto_sync on and unscheduled runs now
             * (also an integration connected before its record was
             * scheduled), off unschedules. */
            ig_integration_schedule(ctx, rec);
            if (ig_json_get(st, "name"))
                json_object_object_add(rec, "name", json_object_get(ig_json_get(st, "name")));
            json_object_object_del(rec, "last_error");
            json_object_object_del(rec, "token_sealed");
            json_object_object_del(rec, "rejected_refresh_fp");
            json_object_object_add(rec, "updated_at", json_object_new_string(now_s));
            rc = ig_oauth_seal_into(ctx, rec, "credentials_sealed", creds);
        }
        if (rc == INTEG_OK)
            rc = ig_store_put(ctx, tx, INTEG_KIND_INTEGRATION, rec, INTEG_PUT_UPDATE);
    } else {
        /* The record integ_integration_create would make with these
         * credentials (config validated again: the definition may have
         * changed since begin). */
        rc = ig_integration_record_new(ctx, tenant, def, ig_json_get(st, "name"), "oauth2", ig_json_get(st, "config"),
                                       NULL, creds, &rec);
        if (rc != INTEG_OK)
            ig_err_prefix(rc, "oauth callback");
        if (rc == INTEG_OK)
            rc = ig_store_put(ctx, tx, INTEG_KIND_INTEGRATION, rec, INTEG_PUT_INSERT);
        if (rc == INTEG_OK) {
            json_object *d = json_object_new_object();
            json_object_object_add(d, "definition", json_object_get(ig_json_get(def, "key")));
            json_object_object_add(d, "name", json_object_get(ig_json_get(rec, "name")));
            json_object_object_add(d, "auth_type", json_object_new_string("oauth2"));
            json_object_object_add(d, "has_credentials", json_object_new_boolean(1));
            rc = ig_audit(ctx, tx, tenant, user, "integration.create", "integration", ig_json_str(rec, "id"), d);
            json_object_put(d);
        }
    }
    if (rc == INTEG_OK) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "definition", json_object_get(ig_json_get(def, "key")));
        json_object_object_add(d, "reauthorized", json_object_new_boolean(reauth != NULL));
        if (ig_json_str(creds, "scope"))
            json_object_object_add(d, "scope", json_object_new_string(ig_json_str(creds, "scope")));
        json_object_object_add(d, "refresh_token", json_object_new_boolean(ig_json_get(creds, "refresh_token") != NULL));
        rc = ig_audit(ctx, tx, tenant, user, "oauth.complete", "integration", ig_json_str(rec, "id"), d);
        json_object_put(d);
    }
    if (rc == INTEG_OK)
        snprintf(id_out, 64, "%s", ig_json_str(rec, "id"));
    rc = ig_tx_end(ctx, tx, 1, rc);
    json_object_put(rec);
    return rc;
}

INTEG_API int integ_oauth_complete(integ_ctx *ctx, const char *callback_json, char **out_json)
{
    ig_err_clear();
    if (out_json)
        *out_json = NULL;
    IG_CHECK_ARG(ctx, "ctx");
    IG_CHECK_ARG(out_json, "out_json");
    if (ctx->closed)
        return ig_err(INTEG_EINVAL, "the context is closed");
    json_object *cb = NULL;
    int rc = ig_json_parse_object(callback_json, "callback_json", 0, &cb);
    if (rc)
        return rc;
    json_object *st = NULL, *def = NULL, *app = NULL, *ver = NULL, *resp = NULL, *creds = NULL, *check = NULL;
    char *token_url = NULL;
    ig_form form = {0};
    const char *state = ig_json_str(cb, "state");
    const char *code = ig_json_str(cb, "code");
    const char *error = ig_json_str(cb, "error");
    if (!state || !*state || strlen(state) > 1024) {
        rc = ig_err(INTEG_EINVAL, "callback_json.state: required (the state the provider sent back)");
        goto out;
    }
    if ((rc = take_state(ctx, state, &st)))
        goto out;
    if (ig_json_int(st, "expires_at_ms", 0) <= ig_ctx_now_ms(ctx)) {
        char exp[32];
        ig_rfc3339(exp, ig_json_int(st, "expires_at_ms", 0), 0);
        rc = ig_err(INTEG_EAUTH, "oauth callback: the state expired at %s (it lives 10 minutes): start again", exp);
        audit_failure(ctx, st, "state expired");
        goto out;
    }
    if (error) {
        char e[64], d[320];
        clean_text(error, e, sizeof e);
        clean_text(ig_json_str(cb, "error_description"), d, sizeof d);
        rc = ig_err(INTEG_EAUTH, "oauth callback: the provider returned %s%s%s", e, d[0] ? ": " : "", d);
        char reason[128];
        snprintf(reason, sizeof reason, "provider error: %s", e);
        audit_failure(ctx, st, reason);
        goto out;
    }
    if (!code || !*code) {
        rc = ig_err(INTEG_EINVAL, "callback_json.code: required when there is no error");
        audit_failure(ctx, st, "no code");
        goto out;
    }

    void *tx = NULL;
    if ((rc = ig_tx_begin(ctx, 0, &tx)) == INTEG_OK)
        rc = ig_tx_end(ctx, tx, 1, ig_definition_lookup(ctx, tx, ig_json_str(st, "definition_id"), &def));
    if (rc)
        goto fail;
    json_object *method = oauth2_method(def);
    if (!method) {
        rc = ig_err(INTEG_EINVAL, "oauth callback: %s has no oauth2 auth method", ig_json_str(def, "key"));
        goto fail;
    }
    if ((rc = ig_oauth_app_credentials(ctx, def, &app)) || (rc = ig_oauth_open_from(ctx, st, "verifier_sealed", &ver)))
        goto fail;
    ig_auth_vars vars = {ig_json_get(st, "config"), NULL, NULL};
    if ((rc = ig_oauth_endpoint(ctx, def, method, "token_url", &vars, &token_url)))
        goto fail;
    ig_form_add(&form, "grant_type", "authorization_code");
    ig_form_add(&form, "code", code);
    ig_form_add(&form, "redirect_uri", ig_json_str(st, "redirect_uri"));
    if (ver)
        ig_form_add(&form, "code_verifier", ig_json_str(ver, "code_verifier"));
    if ((rc = ig_form_add_rendered(&form, ig_json_get(method, "token_params"), &vars)))
        goto fail;
    char what[160];
    snprintf(what, sizeof what, "%s token request (authorization_code)", ig_json_str(def, "key"));
    ig_token_call call = {what, token_url, ig_json_str(method, "client_auth"), ig_json_str(app, "client_id"),
                          ig_json_str(app, "client_secret"), ig_json_str(app, "private_key"),
                          ig_json_str(app, "key_id"), NULL};
    char oerr[64];
    if ((rc = ig_oauth_token_post(ctx, &call, &form, &resp, oerr)))
        goto fail;
    if ((rc = ig_oauth_token_creds(what, method, resp, NULL, ig_ctx_now_ms(ctx), &creds, NULL)))
        goto fail;
    /* Token extras become API origins (instance_url, api_domain): the
     * method's credentials_schema constrains them. */
    check = ig_json_copy(creds);
    if ((rc = ig_schema_validate(ig_json_get(method, "credentials_schema"), check, 0, "token response"))) {
        rc = ig_err_prefix(INTEG_EREMOTE, "oauth callback");
        goto fail;
    }
    char id[64];
    if ((rc = store_integration(ctx, st, def, creds, id)))
        goto fail;
    /* Reply as integ_integration_get shows it. */
    integ_session *s = NULL;
    if ((rc = integ_session_open(&s, ctx, ig_json_str(st, "tenant_id"), ig_json_str(st, "user_id"), NULL)) == INTEG_OK) {
        rc = integ_integration_get(s, id, out_json);
        integ_session_close(s);
    }
    goto out;
fail : {
    char reason[128];
    snprintf(reason, sizeof reason, "token exchange failed (%s)", integ_strerror(rc));
    audit_failure(ctx, st, reason);
}
out:
    ig_form_free(&form);
    free(token_url);
    ig_json_wipe_put(check);
    ig_json_wipe_put(creds);
    ig_json_wipe_put(resp);
    ig_json_wipe_put(ver);
    ig_json_wipe_put(app);
    json_object_put(def);
    json_object_put(st);
    ig_json_wipe_put(cb);
    return rc;
}

/* ---- refresh --------------------------------------------------------------------- */

INTEG_API int integ_oauth_refresh(integ_session *s, const char *integration_id)
{
    int rc = ig_session_enter(s, NULL);
    if (rc)
        return rc;
    IG_CHECK_ARG(integration_id && *integration_id, "integration_id");
    if ((rc = ig_session_require_admin(s)))
        return rc;
    ig_conn *c = NULL;
    if ((rc = ig_conn_open(s->ctx, s->tenant_id, integration_id, &c)))
        return rc;
    rc = ig_auth_force(c);
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", ig_errmsg());
    void *tx = NULL;
    if (ig_tx_begin(s->ctx, 1, &tx) == INTEG_OK) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "auth_type", json_object_new_string(c->auth_type ? c->auth_type : "none"));
        json_object_object_add(d, "outcome", json_object_new_string(rc == INTEG_OK ? "ok" : integ_strerror(rc)));
        int arc = ig_audit(s->ctx, tx, s->tenant_id, s->user_id, "oauth.refresh", "integration", integration_id, d);
        json_object_put(d);
        ig_tx_end(s->ctx, tx, 1, arc);
    }
    integ_error_set(rc, saved);
    ig_conn_close(c);
    return rc;
}
