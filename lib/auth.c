/* Token flows for the REST engine (auth.h, doc/oauth.md).
 *
 *  - oauth2: the stored access token; refreshed when it expires within
 *    IG_TOKEN_SKEW_MS, or once after a 401. A rotated refresh token is
 *    saved; invalid_grant marks the integration needs_reauth.
 *  - oauth2_client_credentials, jwt_bearer, session_token: a token obtained
 *    at runtime, cached sealed in the integration record ("token_sealed")
 *    so every connection, thread and process reuses it until it expires.
 *
 * Getting a new token is single-flight per integration: an in-process
 * mutex per integration id serialises the threads of this process, a lease
 * in the store ("refresh:<integration id>") the processes sharing the
 * store, kept by a keeper thread while the provider answers. Whoever gets
 * both re-reads the record first: when someone else has renewed the token
 * meanwhile, that token is used as it is.
 *
 * A renewal writes its result only when the record's credentials are still
 * those it started from (compare-and-set in the write transaction).
 * integ_integration_set_credentials and integ_oauth_complete take no
 * lease: when they replaced the credentials meanwhile, the renewal adopts
 * those instead of overwriting them or marking them needs_reauth. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "error.h"
#include "json.h"
#include "jwt.h"
#include "manifest.h"
#include "oauth.h"
#include "rest_request.h"
#include "schema.h"
#include "template.h"
#include "util.h"

#define LEASE_TTL_MS 60000
#define LEASE_POLL_MS 100
#define LEASE_MAX_POLLS 900
#define KEEP_POLL_MS 250 /* the keeper looks this often (real time) */
#define MAX_CREDS_CHANGES 3
#define MAX_RENEWALS_AFTER_401 3
#define JWT_LIFETIME_S 3600

static const char *type_of(ig_conn *c) { return c->auth_type ? c->auth_type : "none"; }

static int is_token_type(const char *t)
{
    return !strcmp(t, "oauth2_client_credentials") || !strcmp(t, "jwt_bearer") || !strcmp(t, "session_token");
}

static const char *key_of(ig_conn *c) { return ig_json_str(c->definition, "key"); }
static const char *id_of(ig_conn *c) { return ig_json_str(c->integration, "id"); }

/* ---- in-process single flight ------------------------------------------------ */

struct flight {
    char id[64];
    pthread_mutex_t mu;
    int refs;
    struct flight *next;
};

static pthread_mutex_t flights_lock = PTHREAD_MUTEX_INITIALIZER;
static struct flight *flights;

static struct flight *flight_get(const char *id)
{
    pthread_mutex_lock(&flights_lock);
    struct flight *f = flights;
    while (f && strcmp(f->id, id))
        f = f->next;
    if (!f && (f = calloc(1, sizeof *f))) {
        snprintf(f->id, sizeof f->id, "%s", id);
        pthread_mutex_init(&f->mu, NULL);
        f->next = flights;
        flights = f;
    }
    if (f)
        f->refs++;
    pthread_mutex_unlock(&flights_lock);
    return f;
}

static void flight_put(struct flight *f)
{
    pthread_mutex_lock(&flights_lock);
    if (--f->refs == 0) {
        struct flight **p = &flights;
        while (*p != f)
            p = &(*p)->next;
        *p = f->next;
        pthread_mutex_destroy(&f->mu);
        free(f);
    }
    pthread_mutex_unlock(&flights_lock);
}

/* ---- the store lease (across processes) ---------------------------------------- */

static int lease_take(integ_ctx *ctx, const char *lease_id, const char *holder, const char *integration_id,
                      int64_t *until)
{
    const ig_clock *k = ig_ctx_clock(ctx);
    for (int i = 0;; i++) {
        int64_t now = k->now_ms(k->payload);
        void *tx = NULL;
        json_object *cur = NULL;
        int busy = 0;
        int rc = ig_tx_begin(ctx, 1, &tx);
        if (rc == INTEG_OK) {
            rc = ig_store_get(ctx, tx, INTEG_KIND_LEASE, NULL, lease_id, &cur);
            if (rc == INTEG_ENOTFOUND)
                rc = INTEG_OK;
            if (rc == INTEG_OK && cur && strcmp(ig_json_str(cur, "holder") ? ig_json_str(cur, "holder") : "", holder) &&
                ig_json_int(cur, "expires_at_ms", 0) > now)
                busy = 1;
            if (rc == INTEG_OK && !busy) {
                json_object *l = json_object_new_object();
                json_object_object_add(l, "id", json_object_new_string(lease_id));
                json_object_object_add(l, "holder", json_object_new_string(holder));
                json_object_object_add(l, "expires_at_ms", json_object_new_int64(now + LEASE_TTL_MS));
                rc = ig_store_put(ctx, tx, INTEG_KIND_LEASE, l, INTEG_PUT_UPSERT);
                json_object_put(l);
            }
            rc = ig_tx_end(ctx, tx, 1, rc);
        }
        json_object_put(cur);
        if (rc == INTEG_ECONFLICT) { /* the store was busy: try again */
            busy = 1;
            rc = INTEG_OK;
        }
        if (rc)
            return rc;
        if (!busy) {
            *until = now + LEASE_TTL_MS;
            return INTEG_OK;
        }
        if (i >= LEASE_MAX_POLLS)
            return ig_err(INTEG_ECONFLICT, "token refresh of integration %s: another process holds the refresh lease",
                          integration_id);
        k->sleep_ms(k->payload, LEASE_POLL_MS);
    }
}

static void lease_release(integ_ctx *ctx, const char *lease_id, const char *holder)
{
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", ig_errmsg());
    void *tx = NULL;
    if (ig_tx_begin(ctx, 1, &tx) == INTEG_OK) {
        json_object *cur = NULL;
        int rc = ig_store_get(ctx, tx, INTEG_KIND_LEASE, NULL, lease_id, &cur);
        if (rc == INTEG_OK && !strcmp(ig_json_str(cur, "holder") ? ig_json_str(cur, "holder") : "", holder))
            rc = ctx->store->remove(tx, INTEG_KIND_LEASE, NULL, lease_id);
        json_object_put(cur);
        ig_tx_end(ctx, tx, 1, rc == INTEG_ENOTFOUND ? INTEG_OK : rc);
    }
    integ_error_set(0, saved);
}

/* ---- keeping the lease while the provider answers ------------------------------------ */

/* A token request can outlast the lease: each attempt may run to the
 * transport's timeout, and a 429 or 503 is waited out (Retry-After,
 * backoff) before it is sent again. So while a renewal runs, a keeper
 * thread looks every KEEP_POLL_MS (real time) and, once a third of the TTL
 * has gone on the context clock, moves the expiry on by the TTL, as long as
 * the lease is still this holder's. A holder that dies stops extending it:
 * the others take it over LEASE_TTL_MS later at most. */
struct keeper {
    integ_ctx *ctx;
    const char *lease_id, *holder;
    int64_t until;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, started;
    pthread_t th;
};

static int lease_extend(integ_ctx *ctx, const char *lease_id, const char *holder, int64_t *until)
{
    int64_t now = ig_ctx_now_ms(ctx);
    void *tx = NULL;
    json_object *cur = NULL;
    int rc = ig_tx_begin(ctx, 1, &tx);
    if (rc == INTEG_OK) {
        rc = ig_store_get(ctx, tx, INTEG_KIND_LEASE, NULL, lease_id, &cur);
        if (rc == INTEG_OK && strcmp(ig_json_str(cur, "holder") ? ig_json_str(cur, "holder") : "", holder))
            rc = INTEG_ENOTFOUND; /* taken over: not ours to keep */
        if (rc == INTEG_OK) {
            json_object_object_add(cur, "expires_at_ms", json_object_new_int64(now + LEASE_TTL_MS));
            rc = ig_store_put(ctx, tx, INTEG_KIND_LEASE, cur, INTEG_PUT_UPDATE);
        }
        rc = ig_tx_end(ctx, tx, 1, rc);
    }
    json_object_put(cur);
    if (rc == INTEG_OK)
        *until = now + LEASE_TTL_MS;
    return rc;
}

static void *keeper_main(void *p)
{
    struct keeper *k = p;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        struct timespec ts;
        ig_deadline_after_us(&ts, KEEP_POLL_MS * 1000LL);
        pthread_cond_timedwait(&k->cv, &k->mu, &ts);
        if (k->stop || ig_ctx_now_ms(k->ctx) < k->until - LEASE_TTL_MS * 2 / 3)
            continue;
        pthread_mutex_unlock(&k->mu);
        int rc = lease_extend(k->ctx, k->lease_id, k->holder, &k->until);
        pthread_mutex_lock(&k->mu);
        if (rc == INTEG_ENOTFOUND)
            break; /* gone or taken over: the compare-and-set guards the writes */
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* Without a thread (pthread_create failed) the renewal runs all the same:
 * the lease may then expire under a slow provider, and the writes'
 * compare-and-set keeps a second renewal from overwriting the first. */
static void keeper_start(struct keeper *k, integ_ctx *ctx, const char *lease_id, const char *holder, int64_t until)
{
    memset(k, 0, sizeof *k);
    k->ctx = ctx;
    k->lease_id = lease_id;
    k->holder = holder;
    k->until = until;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, &ca);
    pthread_condattr_destroy(&ca);
    k->started = pthread_create(&k->th, NULL, keeper_main, k) == 0;
}

static void keeper_stop(struct keeper *k)
{
    if (k->started) {
        pthread_mutex_lock(&k->mu);
        k->stop = 1;
        pthread_cond_signal(&k->cv);
        pthread_mutex_unlock(&k->mu);
        pthread_join(k->th, NULL);
    }
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
}

/* ---- token state ------------------------------------------------------------------- */

static int64_t time_of(json_object *v)
{
    if (!json_object_is_type(v, json_type_string))
        return -1;
    int64_t ms = -1;
    const char *s = json_object_get_string(v);
    if (strlen(s) == 10) {
        char buf[32];
        snprintf(buf, sizeof buf, "%sT00:00:00Z", s);
        return ig_parse_rfc3339(buf, &ms) == 0 ? ms : -1;
    }
    if (ig_parse_rfc3339(s, &ms) == 0)
        return ms;
    char buf[48];
    snprintf(buf, sizeof buf, "%.40sZ", s); /* ISO local time: UTC */
    if (strlen(buf) > 10 && buf[10] == ' ')
        buf[10] = 'T';
    return ig_parse_rfc3339(buf, &ms) == 0 ? ms : -1;
}

/* oauth2 credentials due for a refresh? (No expiry known: only after a 401.) */
static int oauth2_expiring(json_object *creds, int64_t now)
{
    int64_t exp = time_of(ig_json_get(creds, "expires_at"));
    return exp > 0 && now >= exp - IG_TOKEN_SKEW_MS;
}

/* A runtime token due for renewal? */
static int token_expiring(json_object *tok, int64_t now)
{
    int64_t exp = ig_json_int(tok, "expires_at_ms", 0);
    if (exp <= 0)
        return 0;
    int64_t skew = ig_json_int(tok, "renew_before_ms", IG_TOKEN_SKEW_MS);
    int64_t got = ig_json_int(tok, "obtained_at_ms", 0);
    if (got > 0 && exp > got && skew > (exp - got) / 2 && !ig_json_get(tok, "renew_before_ms"))
        skew = (exp - got) / 2; /* short-lived tokens: renew at half-life, not on every request */
    return now >= exp - skew;
}

/* The {token.*} view of oauth2 credentials: the access token and extras. */
static json_object *oauth2_view(ig_conn *c, json_object *creds)
{
    json_object *t = json_object_new_object();
    json_object_object_add(t, "access_token", json_object_new_string(ig_json_str(creds, "access_token")));
    json_object *extras = ig_json_get(c->method, "token_extras");
    for (size_t i = 0; i < ig_json_len(extras); i++) {
        const char *k = json_object_get_string(json_object_array_get_idx(extras, i));
        if (k && ig_json_get(creds, k))
            json_object_object_add(t, k, ig_json_copy(ig_json_get(creds, k)));
    }
    return t;
}

static void keep_renewals(json_object *from, json_object *to)
{
    int64_t n = ig_json_int(from, "_renewals", 0);
    if (n)
        json_object_object_add(to, "_renewals", json_object_new_int64(n));
}

static void adopt_creds(ig_conn *c, json_object *creds)
{
    json_object *view = oauth2_view(c, creds);
    keep_renewals(c->token, view);
    ig_json_wipe_put(c->token);
    ig_json_wipe_put(c->credentials);
    c->credentials = creds;
    c->token = view;
}

static void adopt_token(ig_conn *c, json_object *tok)
{
    keep_renewals(c->token, tok);
    ig_json_wipe_put(c->token);
    c->token = tok;
}

/* The {config.x} placeholders in the strings of a manifest value (walked,
 * never printed: the definition may be shared), with c's values. */
static void config_used(ig_conn *c, json_object *v, json_object *used)
{
    if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, k, m)
        {
            (void)k;
            config_used(c, m, used);
        }
    } else if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < ig_json_len(v); i++)
            config_used(c, json_object_array_get_idx(v, i), used);
    } else if (json_object_is_type(v, json_type_string)) {
        for (const char *p = json_object_get_string(v); (p = strstr(p, "{config.")); p++) {
            const char *n = p + 8, *e = strchr(n, '}');
            char name[128];
            if (!e || e == n || (size_t)(e - n) >= sizeof name || memchr(n, '{', (size_t)(e - n)))
                continue;
            memcpy(name, n, (size_t)(e - n));
            name[e - n] = '\0';
            json_object *cv = ig_json_get(c->config, name);
            json_object_object_add(used, name, cv ? ig_json_copy(cv) : NULL);
        }
    }
}

/* The fingerprint a runtime token is cached under: the sealed credentials
 * it was obtained with and the config values its request used, every
 * {config.x} of the auth method (token_url, token_params, scopes, login,
 * ...) and of the base URL (where a session login goes). A token for
 * another tenant in the token URL (Microsoft {config.tenant}) or another
 * org (Dynamics {config.org_url}) is another token. Without such values it
 * is the fingerprint of the sealed credentials alone. */
static void token_fp(ig_conn *c, const char *creds_sealed, char out[33])
{
    json_object *used = json_object_new_object();
    config_used(c, c->method, used);
    json_object *base = ig_json_get(c->manifest, "base_url");
    config_used(c, base, used);
    ig_oauth_fingerprint2(creds_sealed,
                          json_object_object_length(used) ? json_object_to_json_string_ext(used, JSON_C_TO_STRING_PLAIN)
                                                          : NULL,
                          out);
    json_object_put(used);
}

/* A runtime token as it is cached: the token, when it was obtained and
 * when it expires (0: unknown). */
static json_object *runtime_token(const char *access_token, int64_t now, int64_t expires_at_ms)
{
    json_object *t = json_object_new_object();
    json_object_object_add(t, "access_token", json_object_new_string(access_token));
    json_object_object_add(t, "obtained_at_ms", json_object_new_int64(now));
    if (expires_at_ms > 0)
        json_object_object_add(t, "expires_at_ms", json_object_new_int64(expires_at_ms));
    return t;
}

/* A token endpoint response (client credentials, JWT bearer) as the runtime
 * token: read as every token response is (ig_oauth_token_creds), then kept
 * as {access_token, token_type, times, <token_extras>}. */
static int token_object(ig_conn *c, const char *what, json_object *resp, json_object **out)
{
    *out = NULL;
    int64_t now = ig_ctx_now_ms(c->ctx), exp = 0;
    json_object *creds = NULL;
    int rc = ig_oauth_token_creds(what, c->method, resp, NULL, now, &creds, &exp);
    if (rc)
        return rc;
    json_object *t = runtime_token(ig_json_str(creds, "access_token"), now, exp);
    if (ig_json_str(creds, "token_type"))
        json_object_object_add(t, "token_type", json_object_new_string(ig_json_str(creds, "token_type")));
    json_object *extras = ig_json_get(c->method, "token_extras");
    for (size_t i = 0; i < ig_json_len(extras); i++) {
        const char *k = json_object_get_string(json_object_array_get_idx(extras, i));
        if (k && ig_json_get(creds, k))
            json_object_object_add(t, k, ig_json_copy(ig_json_get(creds, k)));
    }
    ig_json_wipe_put(creds);
    *out = t;
    return INTEG_OK;
}

/* ---- obtaining tokens ---------------------------------------------------------------- */

/* The runtime flows take the credentials to use (the record's as re-read,
 * not necessarily the connection's yet). */
static int fetch_client_credentials(ig_conn *c, json_object *creds, json_object **out)
{
    json_object *m = c->method;
    ig_auth_vars vars = {c->config, creds, NULL};
    char *url = NULL, *cid = NULL, *secret = NULL, *scope = NULL, what[160];
    json_object *headers = NULL, *resp = NULL;
    ig_form form = {0};
    snprintf(what, sizeof what, "%s token request (client_credentials)", key_of(c));
    int rc = ig_oauth_endpoint(c->ctx, c->definition, m, "token_url", &vars, &url);
    if (rc == INTEG_OK)
        rc = ig_auth_render(ig_json_str(m, "client_id") ? ig_json_str(m, "client_id") : "{credentials.client_id}",
                            &vars, &cid);
    if (rc == INTEG_OK && !cid)
        rc = ig_err(INTEG_EAUTH, "%s: no client id in the credentials", what);
    if (rc == INTEG_OK)
        rc = ig_auth_render(ig_json_str(m, "client_secret") ? ig_json_str(m, "client_secret")
                                                            : "{credentials.client_secret}",
                            &vars, &secret);
    if (rc == INTEG_OK)
        rc = ig_oauth_scope(m, NULL, &vars, &scope);
    if (rc == INTEG_OK)
        rc = ig_auth_render_map(ig_json_get(m, "token_headers"), &vars, &headers);
    if (rc == INTEG_OK) {
        ig_form_add(&form, "grant_type", "client_credentials");
        if (scope)
            ig_form_add(&form, "scope", scope);
        rc = ig_form_add_rendered(&form, ig_json_get(m, "token_params"), &vars);
    }
    if (rc == INTEG_OK) {
        ig_token_call call = {what, url, ig_json_str(m, "client_auth"), cid, secret,
                              ig_json_str(creds, "private_key"), ig_json_str(creds, "key_id"), headers};
        rc = ig_oauth_token_post(c->ctx, &call, &form, &resp, NULL);
    }
    if (rc == INTEG_OK)
        rc = token_object(c, what, resp, out);
    ig_form_free(&form);
    ig_json_wipe_put(resp);
    ig_json_wipe_put(headers);
    free(url);
    free(scope);
    if (cid)
        ig_free_secret(cid, strlen(cid));
    if (secret)
        ig_free_secret(secret, strlen(secret));
    return rc;
}

static int fetch_jwt_bearer(ig_conn *c, json_object *creds, json_object **out)
{
    json_object *m = c->method;
    ig_auth_vars vars = {c->config, creds, NULL};
    char *url = NULL, *aud = NULL, *scope = NULL, *jwt = NULL, what[160];
    json_object *claims = json_object_new_object(), *extra = NULL, *resp = NULL;
    ig_form form = {0};
    snprintf(what, sizeof what, "%s token request (jwt-bearer)", key_of(c));
    int rc = ig_oauth_endpoint(c->ctx, c->definition, m, "token_url", &vars, &url);
    if (rc == INTEG_OK && ig_json_str(m, "audience")) {
        rc = ig_auth_render(ig_json_str(m, "audience"), &vars, &aud);
        if (rc == INTEG_OK && !aud)
            rc = ig_err(INTEG_EINVAL, "%s: the audience needs a value that is not set", what);
    }
    if (rc == INTEG_OK)
        rc = ig_oauth_scope(m, NULL, &vars, &scope);
    if (rc == INTEG_OK && ig_json_get(m, "claims"))
        rc = ig_tmpl_render_json(ig_json_get(m, "claims"), ig_auth_lookup, &vars, &extra);
    if (rc == INTEG_OK) {
        unsigned char jti[16];
        randombytes_buf(jti, sizeof jti);
        char *jti64 = ig_b64url(jti, sizeof jti);
        int64_t now_s = ig_ctx_now_ms(c->ctx) / 1000;
        json_object_object_add(claims, "aud", json_object_new_string(aud ? aud : url));
        if (scope)
            json_object_object_add(claims, "scope", json_object_new_string(scope));
        json_object_object_add(claims, "iat", json_object_new_int64(now_s));
        json_object_object_add(claims, "exp", json_object_new_int64(now_s + JWT_LIFETIME_S));
        json_object_object_add(claims, "jti", json_object_new_string(jti64 ? jti64 : ""));
        free(jti64);
        if (json_object_is_type(extra, json_type_object)) {
            json_object_object_foreach(extra, k, v) json_object_object_add(claims, k, json_object_get(v));
        }
        const char *kid = ig_json_str(creds, "private_key_id") ? ig_json_str(creds, "private_key_id")
                                                               : ig_json_str(creds, "key_id");
        rc = ig_jwt_sign(ig_json_str(m, "alg"), ig_json_str(creds, "private_key"), kid, claims, &jwt);
        if (rc)
            ig_err_prefix(rc, what);
    }
    if (rc == INTEG_OK) {
        ig_form_add(&form, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
        ig_form_add(&form, "assertion", jwt);
        ig_token_call call = {what, url, "none", NULL, NULL, NULL, NULL, NULL};
        rc = ig_oauth_token_post(c->ctx, &call, &form, &resp, NULL);
    }
    if (rc == INTEG_OK)
        rc = token_object(c, what, resp, out);
    ig_form_free(&form);
    if (jwt)
        ig_free_secret(jwt, strlen(jwt));
    ig_json_wipe_put(resp);
    json_object_put(extra);
    json_object_put(claims);
    free(url);
    free(aud);
    free(scope);
    return rc;
}

/* The login request is a manifest request like the engine's (rest_request.c:
 * base URL and path, static and login headers, query, the manifest's
 * rate-limit signals), its templates over config, credentials and
 * {session.expiration_date}; the token is at token_path in the response. */
/* A manifest's seconds as milliseconds, within 0..10 years: the validator
 * bounds them (IG_MAX_SESSION_S), but a definition stored before
 * that bound existed is not validated again, and * 1000 must not overflow. */
static int64_t manifest_s_to_ms(json_object *m, const char *key)
{
    int64_t s = ig_json_int(m, key, 0);
    if (s < 0)
        s = 0;
    if (s > IG_MAX_SESSION_S)
        s = IG_MAX_SESSION_S;
    return s * 1000;
}

static int fetch_session(ig_conn *c, json_object *creds, json_object **out)
{
    json_object *m = c->method, *login = ig_json_get(m, "login");
    integ_ctx *ctx = c->ctx;
    int64_t now = ig_ctx_now_ms(ctx);
    int64_t lifetime_ms = manifest_s_to_ms(m, "lifetime_s");
    char date[32], what[160];
    ig_rfc3339(date, now + (lifetime_ms > 0 ? lifetime_ms : 86400000), 0);
    date[10] = '\0';
    json_object *session = json_object_new_object();
    json_object_object_add(session, "expiration_date", json_object_new_string(date));
    ig_auth_vars vars = {c->config, creds, session};
    snprintf(what, sizeof what, "%s session login", key_of(c));
    json_object *doc = NULL;
    ig_form form = {0};
    ig_req r;
    ig_http_response resp = {0};
    int rc = ig_req_begin(&r, c, ig_json_str(login, "method") ? ig_json_str(login, "method") : "POST",
                          ig_json_str(login, "path"), ig_auth_lookup, &vars, what);
    if (rc == INTEG_OK)
        rc = ig_req_query(&r, ig_json_get(login, "query"), ig_auth_lookup, &vars);
    if (rc == INTEG_OK)
        rc = ig_req_headers(&r, ig_json_get(login, "headers"), ig_auth_lookup, &vars);
    if (rc == INTEG_OK && ig_json_get(login, "body")) {
        /* Rendering shares the connection's config and credential values
         * (and the manifest's literals) by reference; ig_req_json_body
         * caches no text in them, and its body text is wiped with r. */
        json_object *shared = NULL;
        rc = ig_tmpl_render_json(ig_json_get(login, "body"), ig_auth_lookup, &vars, &shared);
        if (rc == INTEG_OK)
            rc = ig_req_json_body(&r, shared);
        json_object_put(shared);
    } else if (rc == INTEG_OK && ig_json_get(login, "form")) {
        static const char form_type[] = "application/x-www-form-urlencoded";
        rc = ig_form_add_rendered(&form, ig_json_get(login, "form"), &vars);
        if (rc == INTEG_OK) /* an empty form: no body (a GET stays a GET) */
            rc = form.len ? ig_req_body(&r, form.buf, form.len, form_type) : ig_req_header(&r, "Content-Type", form_type);
    }
    if (rc == INTEG_OK) /* a login is a token request too: not re-sent once it may have arrived */
        rc = ig_req_send_once(c, &r, what, IG_HTTP_NON_IDEMPOTENT, &resp);
    if (rc == INTEG_OK && resp.status >= 300)
        rc = ig_err(INTEG_EREMOTE, "%s: unexpected HTTP %ld", what, resp.status);
    if (rc == INTEG_OK) {
        doc = ig_json_parse_secret(resp.body ? resp.body : "", resp.body_len);
        if (!doc)
            rc = ig_err(INTEG_EREMOTE, "%s: HTTP %ld: the response is not JSON", what, resp.status);
    }
    if (rc == INTEG_OK) {
        const char *tp = ig_json_str(m, "token_path") ? ig_json_str(m, "token_path") : "$";
        json_object *tv = ig_jsonpath_get(doc, tp);
        if (!json_object_is_type(tv, json_type_string) || json_object_get_string_len(tv) == 0) {
            rc = ig_err(INTEG_EREMOTE, "%s: no token at %s in the response", what, tp);
        } else {
            int64_t exp = -1;
            if (ig_json_str(m, "expires_path"))
                exp = time_of(ig_jsonpath_get(doc, ig_json_str(m, "expires_path")));
            if (exp <= 0 && lifetime_ms > 0)
                exp = now + lifetime_ms;
            json_object *t = runtime_token(json_object_get_string(tv), now, exp);
            if (ig_json_get(m, "renew_before_s"))
                json_object_object_add(t, "renew_before_ms",
                                       json_object_new_int64(manifest_s_to_ms(m, "renew_before_s")));
            *out = t;
        }
    }
    if (resp.body)
        sodium_memzero(resp.body, resp.body_len);
    ig_http_response_free(&resp);
    ig_json_wipe_put(doc);
    ig_form_free(&form);
    ig_req_free(&r);
    json_object_put(session);
    return rc;
}

/* ---- refresh of oauth2 tokens ------------------------------------------------------------ */

/* Seal `value` into the record's `field`, compare-and-set: only while the
 * record's credentials are still those the renewal started from (`seen`).
 * Otherwise nothing is written and IG_CREDS_CHANGED is returned. */
static int save_record_field(ig_conn *c, const char *field, json_object *value, int reactivate,
                             const ig_creds_seen *seen)
{
    integ_ctx *ctx = c->ctx;
    void *tx = NULL;
    json_object *rec = NULL;
    int changed = 0;
    int rc = ig_tx_begin(ctx, 1, &tx);
    if (rc == INTEG_OK)
        rc = ig_store_get(ctx, tx, INTEG_KIND_INTEGRATION, c->tenant_id, id_of(c), &rec);
    if (rc == INTEG_OK && !ig_oauth_creds_unchanged(ctx, rec, seen))
        changed = 1;
    if (rc == INTEG_OK && !changed)
        rc = ig_oauth_seal_into(ctx, rec, field, value);
    if (rc == INTEG_OK && !changed && reactivate) {
        const char *st = ig_json_str(rec, "status");
        if (st && !strcmp(st, "needs_reauth")) {
            json_object_object_add(rec, "status", json_object_new_string("active"));
            json_object_object_del(rec, "last_error");
        }
        json_object_object_del(rec, "rejected_refresh_fp");
    }
    if (rc == INTEG_OK && !changed)
        rc = ig_store_put(ctx, tx, INTEG_KIND_INTEGRATION, rec, INTEG_PUT_UPDATE);
    rc = ig_tx_end(ctx, tx, 1, rc);
    json_object_put(rec);
    return rc == INTEG_OK && changed ? IG_CREDS_CHANGED : rc;
}

/* Refresh `creds` (the record's, as re-read: `seen`). IG_CREDS_CHANGED when
 * the record's credentials changed while the provider answered: the
 * answer (new tokens of the old grant, or invalid_grant for the old
 * refresh token) is then dropped. */
static int oauth2_refresh(ig_conn *c, json_object *creds, const ig_creds_seen *seen)
{
    integ_ctx *ctx = c->ctx;
    json_object *m = c->method, *app = NULL, *resp = NULL, *newc = NULL, *check = NULL;
    ig_auth_vars vars = {c->config, creds, NULL};
    char *url = NULL, what[160], oerr[64] = "";
    ig_form form = {0};
    snprintf(what, sizeof what, "%s token refresh", key_of(c));
    const char *rt = ig_json_str(creds, "refresh_token");
    int rc = ig_oauth_app_credentials(ctx, c->definition, &app);
    if (rc == INTEG_OK)
        rc = ig_oauth_endpoint(ctx, c->definition, m, "token_url", &vars, &url);
    if (rc == INTEG_OK) {
        ig_form_add(&form, "grant_type", "refresh_token");
        ig_form_add(&form, "refresh_token", rt);
        rc = ig_form_add_rendered(&form, ig_json_get(m, "token_params"), &vars);
    }
    if (rc == INTEG_OK) {
        ig_token_call call = {what, url, ig_json_str(m, "client_auth"), ig_json_str(app, "client_id"),
                              ig_json_str(app, "client_secret"), ig_json_str(app, "private_key"),
                              ig_json_str(app, "key_id"), NULL};
        rc = ig_oauth_token_post(ctx, &call, &form, &resp, oerr);
    }
    if (rc == INTEG_EAUTH && !strcmp(oerr, "invalid_grant")) {
        char reason[1200], fp[33];
        snprintf(reason, sizeof reason, "%s (the refresh token was rejected: re-authorise with integ_oauth_begin)",
                 ig_errmsg());
        ig_oauth_fingerprint(rt, fp);
        rc = ig_oauth_needs_reauth(ctx, c->tenant_id, id_of(c), INTEG_EAUTH, reason, fp, seen);
    }
    if (rc == INTEG_OK)
        rc = ig_oauth_token_creds(what, m, resp, creds, ig_ctx_now_ms(ctx), &newc, NULL);
    if (rc == INTEG_OK) {
        check = ig_json_copy(newc);
        if (ig_schema_validate(ig_json_get(m, "credentials_schema"), check, 0, "token response"))
            rc = ig_err_prefix(INTEG_EREMOTE, what);
    }
    if (rc == INTEG_OK)
        rc = save_record_field(c, "credentials_sealed", newc, 1, seen);
    if (rc == INTEG_OK) {
        adopt_creds(c, newc);
        newc = NULL;
    }
    ig_form_free(&form);
    ig_json_wipe_put(newc);
    ig_json_wipe_put(check);
    ig_json_wipe_put(resp);
    ig_json_wipe_put(app);
    free(url);
    return rc;
}

/* ---- the single flight --------------------------------------------------------------------- */

/* A runtime token and the credentials it was obtained with become the
 * connection's together (so c->credentials is the record's as opened
 * whenever c->token is NULL, which ig_auth_prepare relies on). */
static void adopt_runtime(ig_conn *c, json_object **creds, json_object *tok)
{
    ig_json_wipe_put(c->credentials);
    c->credentials = *creds;
    *creds = NULL;
    adopt_token(c, tok);
}

/* With the flight and the lease held: re-read, then renew only if still
 * needed. `failed` is the access token a 401 rejected (NULL: ahead of
 * expiry); `force` renews regardless. IG_CREDS_CHANGED when the record's
 * credentials changed before the result could be written. */
static int renew_once(ig_conn *c, const char *failed, int force)
{
    integ_ctx *ctx = c->ctx;
    json_object *rec = NULL, *creds = NULL, *tok = NULL;
    int64_t now = ig_ctx_now_ms(ctx);
    void *tx = NULL;
    int rc = ig_tx_begin(ctx, 0, &tx);
    if (rc == INTEG_OK)
        rc = ig_tx_end(ctx, tx, 1, ig_store_get(ctx, tx, INTEG_KIND_INTEGRATION, c->tenant_id, id_of(c), &rec));
    if (rc)
        return rc;
    const char *t = type_of(c);
    if (strcmp(ig_json_str(rec, "auth_type") ? ig_json_str(rec, "auth_type") : "none", t)) {
        /* Credentials of another method were set meanwhile: this connection
         * cannot use them. */
        rc = ig_err(INTEG_ECONFLICT, "integration %s: its auth type changed to %s meanwhile: try again", id_of(c),
                    ig_json_str(rec, "auth_type") ? ig_json_str(rec, "auth_type") : "none");
        goto out;
    }
    /* The credentials as they are now: a renewal uses these (set meanwhile?
     * the new ones, not those the connection opened with), and writes its
     * result only while they still are (compare-and-set). */
    if ((rc = ig_oauth_open_from(ctx, rec, "credentials_sealed", &creds)))
        goto out;
    ig_creds_seen seen = {ig_json_str(rec, "credentials_sealed"), creds};
    if (!strcmp(t, "oauth2")) {
        const char *at = ig_json_str(creds, "access_token");
        if (!at) {
            rc = ig_err(INTEG_EAUTH, "integration %s has no access token: connect it (integ_oauth_begin)", id_of(c));
            goto out;
        }
        if (!force && (failed ? strcmp(at, failed) != 0 : !oauth2_expiring(creds, now))) {
            adopt_creds(c, creds); /* someone else refreshed meanwhile */
            creds = NULL;
            goto out;
        }
        const char *rt = ig_json_str(creds, "refresh_token");
        if (!rt) {
            rc = ig_err(INTEG_EAUTH, "integration %s: the access token cannot be refreshed (no refresh token): "
                        "re-authorise with integ_oauth_begin", id_of(c));
            goto out;
        }
        char fp[33];
        ig_oauth_fingerprint(rt, fp);
        const char *rej = ig_json_str(rec, "rejected_refresh_fp");
        if (!force && rej && !strcmp(rej, fp)) {
            rc = ig_err(INTEG_EAUTH, "integration %s needs re-authorisation: its refresh token was rejected",
                        id_of(c));
            goto out;
        }
        rc = oauth2_refresh(c, creds, &seen);
        goto out;
    }
    /* Runtime tokens: cached under the credentials and config they were
     * obtained with (token_fp). */
    char fp[33];
    token_fp(c, seen.sealed, fp);
    if ((rc = ig_oauth_open_from(ctx, rec, "token_sealed", &tok)))
        goto out;
    if (tok && !force && !strcmp(ig_json_str(tok, "creds_fp") ? ig_json_str(tok, "creds_fp") : "", fp) &&
        (failed ? strcmp(ig_json_str(tok, "access_token") ? ig_json_str(tok, "access_token") : "", failed) != 0
                : !token_expiring(tok, now))) {
        adopt_runtime(c, &creds, tok);
        tok = NULL;
        goto out;
    }
    ig_json_wipe_put(tok);
    tok = NULL;
    if (!strcmp(t, "oauth2_client_credentials"))
        rc = fetch_client_credentials(c, creds, &tok);
    else if (!strcmp(t, "jwt_bearer"))
        rc = fetch_jwt_bearer(c, creds, &tok);
    else
        rc = fetch_session(c, creds, &tok);
    if (rc == INTEG_EAUTH) {
        char reason[1200];
        snprintf(reason, sizeof reason, "%s", ig_errmsg());
        rc = ig_oauth_needs_reauth(ctx, c->tenant_id, id_of(c), rc, reason, NULL, &seen);
        goto out;
    }
    if (rc)
        goto out;
    json_object_object_add(tok, "creds_fp", json_object_new_string(fp));
    if ((rc = save_record_field(c, "token_sealed", tok, 1, &seen)))
        goto out;
    adopt_runtime(c, &creds, tok);
    tok = NULL;
out:
    ig_json_wipe_put(tok);
    ig_json_wipe_put(creds);
    json_object_put(rec);
    return rc;
}

/* renew_once until its result is written: when the credentials changed
 * under it (set or re-authorised meanwhile), again with those, as they are
 * (no longer forced: new credentials are used until they are due). */
static int renew_locked(ig_conn *c, const char *failed, int force)
{
    for (int i = 0; i < MAX_CREDS_CHANGES; i++) {
        int rc = renew_once(c, failed, force);
        if (rc != IG_CREDS_CHANGED)
            return rc;
        force = 0;
    }
    return ig_err(INTEG_ECONFLICT, "integration %s: its credentials changed during each of %d token renewals: try again",
                  id_of(c), MAX_CREDS_CHANGES);
}

static int renew(ig_conn *c, const char *failed, int force)
{
    const char *iid = id_of(c);
    struct flight *f = flight_get(iid);
    if (!f)
        return ig_err(INTEG_ENOMEM, "out of memory");
    pthread_mutex_lock(&f->mu);
    char lease_id[96], holder[37];
    snprintf(lease_id, sizeof lease_id, "refresh:%s", iid);
    ig_ctx_new_id(c->ctx, holder, ig_now_ms());
    int64_t until = 0;
    int rc = lease_take(c->ctx, lease_id, holder, iid, &until);
    if (rc == INTEG_OK) {
        struct keeper k;
        keeper_start(&k, c->ctx, lease_id, holder, until);
        rc = renew_locked(c, failed, force);
        keeper_stop(&k);
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", ig_errmsg());
        lease_release(c->ctx, lease_id, holder);
        integ_error_set(rc, saved);
    }
    pthread_mutex_unlock(&f->mu);
    flight_put(f);
    return rc;
}

/* ---- the hooks ------------------------------------------------------------------------------- */

int ig_auth_prepare(ig_conn *c)
{
    const char *t = type_of(c);
    int64_t now = ig_ctx_now_ms(c->ctx);
    if (!strcmp(t, "oauth2")) {
        if (!ig_json_str(c->credentials, "access_token"))
            return ig_err(INTEG_EAUTH, "integration %s has no access token: connect it (integ_oauth_begin)", id_of(c));
        if (!c->token)
            c->token = oauth2_view(c, c->credentials);
        if (ig_json_str(c->credentials, "refresh_token") && oauth2_expiring(c->credentials, now))
            return renew(c, NULL, 0);
        return INTEG_OK;
    }
    if (!is_token_type(t))
        return INTEG_OK;
    if (c->token && !token_expiring(c->token, now))
        return INTEG_OK;
    if (!c->token) {
        /* The record read when the connection opened may hold a token
         * another connection obtained: use it while it is good. */
        json_object *tok = NULL;
        char fp[33];
        token_fp(c, ig_json_str(c->integration, "credentials_sealed"), fp);
        if (ig_oauth_open_from(c->ctx, c->integration, "token_sealed", &tok) == INTEG_OK && tok &&
            !strcmp(ig_json_str(tok, "creds_fp") ? ig_json_str(tok, "creds_fp") : "", fp) && !token_expiring(tok, now)) {
            c->token = tok;
            return INTEG_OK;
        }
        ig_json_wipe_put(tok);
        ig_err_clear();
    }
    return renew(c, NULL, 0);
}

int ig_auth_after_401(ig_conn *c)
{
    const char *t = type_of(c);
    int64_t n = ig_json_int(c->token, "_renewals", 0);
    if (n >= MAX_RENEWALS_AFTER_401)
        return INTEG_EAUTH; /* keep the 401's own message */
    const char *cur = NULL;
    if (!strcmp(t, "oauth2")) {
        if (!ig_json_str(c->credentials, "refresh_token"))
            return INTEG_EAUTH;
        cur = ig_json_str(c->credentials, "access_token");
    } else if (is_token_type(t)) {
        cur = ig_json_str(c->token, "access_token");
    } else {
        return INTEG_EAUTH;
    }
    char *failed = cur ? strdup(cur) : NULL;
    int rc = renew(c, failed ? failed : "", 0);
    if (failed)
        ig_free_secret(failed, strlen(failed));
    if (rc == INTEG_OK && c->token)
        json_object_object_add(c->token, "_renewals", json_object_new_int64(n + 1));
    return rc;
}

int ig_auth_force(ig_conn *c)
{
    const char *t = type_of(c);
    if (strcmp(t, "oauth2") && !is_token_type(t))
        return ig_err(INTEG_EUNSUPPORTED, "integration %s uses %s: there is no token to refresh", id_of(c), t);
    return renew(c, NULL, 1);
}
