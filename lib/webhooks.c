/* Webhooks: endpoints (secrets sealed, rotation with a grace period), the
 * receiving side (verify, de-duplicate, commit durably, then 202), and the
 * queue's processing (leased batches, retries with backoff, dead letters),
 * which applies each event through the sync engine. */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "definitions.h"
#include "engine.h"
#include "error.h"
#include "json.h"
#include "manifest.h"
#include "sync.h"
#include "template.h"
#include "util.h"
#include "webhook_ingest.h"
#include "sha256.h"
#include "webhook_verify.h"

#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_ENDPOINT_CACHE_MS 1000
#define DEFAULT_MAX_ATTEMPTS 8
#define DEFAULT_GRACE_S 86400
#define LEASE_MS 60000
#define MAX_HEADER_STORE 64


static int64_t webhook_opt(integ_ctx *ctx, const char *key, int64_t dflt)
{
    return ig_json_int(ig_json_get(ctx->options, "webhook"), key, dflt);
}

/* ---- endpoints ------------------------------------------------------------ */

static char *new_generated_secret(void)
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    char *b64 = ig_b64_encode(raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    if (!b64)
        return NULL;
    size_t n = strlen(b64) + 7;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "whsec_%s", b64);
    ig_free_secret(b64, strlen(b64));
    return s;
}

static char *random_token(const char *prefix)
{
    unsigned char raw[24];
    char hex[49];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    size_t n = strlen(prefix) + sizeof hex;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s", prefix, hex);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(hex, sizeof hex);
    return s;
}

static json_object *public_endpoint(integ_ctx *ctx, json_object *rec, const char *secret)
{
    json_object *pub = json_object_new_object();
    static const char *const keep[] = {"id", "integration_id", "scheme", "secret_source", "events", "active",
                                       "description", "created_at", "updated_at", "secret_rotated_at", NULL};
    for (const char *const *k = keep; *k; k++)
        json_object_object_add(pub, *k, json_object_get(ig_json_get(rec, *k)));
    const char *base = ig_json_str(ig_json_get(ctx->options, "webhook"), "base_url");
    if (base) {
        char url[1024];
        size_t bl = strlen(base);
        snprintf(url, sizeof url, "%s%s%s", base, bl && base[bl - 1] == '/' ? "" : "/", ig_json_str(rec, "id"));
        json_object_object_add(pub, "url", json_object_new_string(url));
    } else {
        json_object_object_add(pub, "url", NULL);
    }
    json_object_object_add(pub, "has_previous_secret",
                           json_object_new_boolean(ig_json_get(rec, "previous_webhook_secret_sealed") != NULL));
    if (secret)
        json_object_object_add(pub, "secret", json_object_new_string(secret));
    return pub;
}

static int seal_field(integ_ctx *ctx, json_object *rec, const char *field_purpose, const char *secret)
{
    char *sealed = NULL, field[96];
    int rc = ig_ctx_seal(ctx, ig_json_str(rec, "tenant_id"), ig_json_str(rec, "id"), field_purpose, secret,
                         strlen(secret), &sealed);
    if (rc == INTEG_OK) {
        snprintf(field, sizeof field, "%s_sealed", field_purpose);
        json_object_object_add(rec, field, json_object_new_string(sealed));
        free(sealed);
    }
    return rc;
}

/* The client_secret inside the definition's sealed app credentials, in *out
 * (caller frees with ig_free_secret). When there is none, returns INTEG_OK
 * with *missing = 1 (no app credentials) or 2 (no client_secret in them),
 * so each caller words the error for its own situation. */
static int app_client_secret(integ_ctx *ctx, json_object *def, char **out, int *missing)
{
    *out = NULL;
    const char *sealed = ig_json_str(def, "app_credentials_sealed");
    if (!sealed) {
        *missing = 1;
        return INTEG_OK;
    }
    char *plain = NULL;
    size_t len = 0;
    int rc = ig_ctx_open_sealed(ctx, NULL, ig_json_str(def, "id"), "app_credentials", sealed, &plain, &len);
    if (rc)
        return rc;
    json_object *creds = json_tokener_parse(plain);
    ig_free_secret(plain, len);
    const char *cs = ig_json_str(creds, "client_secret");
    if (cs)
        *out = strdup(cs);
    ig_json_wipe_put(creds);
    if (!cs) {
        *missing = 2;
        return INTEG_OK;
    }
    return *out ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
}

/* The secret the provider dictates (or we generate) for a new endpoint (or
 * one changing scheme); errors name `arg`.secret. */
static int choose_secret(integ_ctx *ctx, json_object *def, const char *source, const char *given,
                         const char *arg, char **out)
{
    *out = NULL;
    if (given) {
        *out = strdup(given);
        return *out ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
    }
    if (!source || !strcmp(source, "generated")) {
        *out = new_generated_secret();
    } else if (!strcmp(source, "client_state")) {
        *out = random_token("cs_"); /* we choose clientState when subscribing */
    } else if (!strcmp(source, "basic_auth")) {
        char *pw = random_token("");
        if (pw) {
            size_t n = strlen(pw) + 8;
            *out = malloc(n);
            if (*out)
                snprintf(*out, n, "hook:%s", pw);
            ig_free_secret(pw, strlen(pw));
        }
    } else if (!strcmp(source, "app_secret")) {
        int missing = 0, rc = app_client_secret(ctx, def, out, &missing);
        if (rc || missing == 0)
            return rc;
        if (missing == 1)
            return ig_err(INTEG_EINVAL, "%s.secret: required: %s signs webhooks with the app's client "
                          "secret, and no app credentials are set (integ_definition_set_app_credentials)",
                          arg, ig_json_str(def, "key"));
        return ig_err(INTEG_EINVAL, "%s.secret: required: the app credentials of %s have no client_secret",
                      arg, ig_json_str(def, "key"));
    } else {
        return ig_err(INTEG_EINVAL, "%s.secret: required: the provider dictates this endpoint's secret (%s)",
                      arg, source);
    }
    return *out ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
}

/* The secret source of an endpoint whose request names its scheme and gives
 * no secret. Naming the manifest's own scheme changes nothing: its source
 * says how that provider gets its secret (it signs with the app's client
 * secret, takes the Basic credentials or clientState we choose, ...). Under
 * another scheme that says nothing (HubSpot's app secret is no Standard
 * Webhooks key), so a secret is generated only if the scheme table says the
 * scheme verifies with a generated one (whsec_ + base64); any other (a
 * public key, Basic credentials, a provider's secret) must be given (the
 * error names `arg`.secret). An update that changes the scheme applies the
 * same rule (secret_for_scheme). */
static int override_source(json_object *wh, const char *scheme, const char *arg, const char **out)
{
    const char *own = ig_json_str(wh, "scheme"), *src = ig_json_str(wh, "secret_source");
    if (own && src && !strcmp(own, scheme)) {
        *out = src;
        return INTEG_OK;
    }
    if (ig_manifest_scheme_accepts(scheme, "generated")) {
        *out = "generated";
        return INTEG_OK;
    }
    const char *what = ig_manifest_scheme_accepts(scheme, "public_key")
                           ? "the sender's public key, which only the provider has"
                       : ig_manifest_scheme_accepts(scheme, "basic_auth")
                           ? "the \"user:password\" the sender is configured with"
                       : ig_manifest_scheme_accepts(scheme, "client_state")
                           ? "the clientState of the Graph subscription"
                           : "the secret the provider signs with";
    return ig_err(INTEG_EINVAL, "%s.secret: required for scheme '%s' (it verifies with %s, not a "
                  "generated secret)", arg, scheme, what);
}

static int check_events(json_object *events, const char *what)
{
    if (!events)
        return INTEG_OK;
    if (!json_object_is_type(events, json_type_array))
        return ig_err(INTEG_EINVAL, "%s.events: must be an array of event types", what);
    for (size_t i = 0; i < ig_json_len(events); i++) {
        json_object *e = json_object_array_get_idx(events, i);
        if (!json_object_is_type(e, json_type_string) || json_object_get_string_len(e) == 0 ||
            json_object_get_string_len(e) > 200)
            return ig_err(INTEG_EINVAL, "%s.events[%zu]: must be a non-empty string", what, i);
    }
    return INTEG_OK;
}

static int load_endpoint(integ_session *s, void *tx, const char *id, json_object **out)
{
    int rc = ig_store_get(s->ctx, tx, INTEG_KIND_WEBHOOK_ENDPOINT, s->tenant_id, id, out);
    if (rc == INTEG_ENOTFOUND)
        return ig_err(rc, "webhook endpoint '%s' not found", id);
    return rc;
}

INTEG_API int integ_webhook_endpoint_create(integ_session *s, const char *integration_id, const char *request_json,
                                            char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(integration_id && *integration_id, "integration_id");
    IG_CHECK_ARG(out_json, "out_json");
    json_object *req = NULL;
    if ((rc = ig_json_parse_object(request_json, "request_json", 1, &req)))
        return rc;
    static const char *const known[] = {"scheme", "events", "secret", "active", "description", NULL};
    json_object *integ = NULL, *def = NULL, *rec = NULL;
    char *secret = NULL;
    void *tx = NULL;
    if (rc == INTEG_OK)
        rc = ig_json_check_keys(req, known, "request_json", "field");
    const char *scheme = ig_json_str(req, "scheme");
    if (rc == INTEG_OK && ig_json_get(req, "scheme") && !ig_wh_scheme_known(scheme))
        rc = ig_err(INTEG_EINVAL, "request_json.scheme: unknown webhook scheme");
    if (rc == INTEG_OK)
        rc = check_events(ig_json_get(req, "events"), "request_json");
    json_object *given = ig_json_get(req, "secret");
    if (rc == INTEG_OK && given && (!json_object_is_type(given, json_type_string) || json_object_get_string_len(given) == 0))
        rc = ig_err(INTEG_EINVAL, "request_json.secret: must be a non-empty string");
    json_object *active = ig_json_get(req, "active");
    if (rc == INTEG_OK && active && !json_object_is_type(active, json_type_boolean))
        rc = ig_err(INTEG_EINVAL, "request_json.active: must be a boolean");
    if (rc == INTEG_OK)
        rc = ig_session_require_admin(s);
    if (rc == INTEG_OK && (rc = ig_tx_begin(s->ctx, 1, &tx)) == INTEG_OK) {
        rc = ig_integration_get(s->ctx, tx, s->tenant_id, integration_id, &integ);
        if (rc == INTEG_OK)
            rc = ig_definition_lookup(s->ctx, tx, ig_json_str(integ, "definition_id"), &def);
        json_object *wh = ig_json_get(ig_json_get(def, "manifest"), "webhook");
        const char *source = given ? "given" : ig_json_str(wh, "secret_source");
        if (rc == INTEG_OK && scheme && !given)
            rc = override_source(wh, scheme, "request_json", &source);
        if (rc == INTEG_OK && !scheme)
            scheme = ig_json_str(wh, "scheme");
        if (rc == INTEG_OK && !scheme)
            rc = ig_err(INTEG_EINVAL, "request_json.scheme: %s has no webhook scheme; name one to override",
                        ig_json_str(def, "key"));
        if (rc == INTEG_OK)
            rc = choose_secret(s->ctx, def, source, given ? json_object_get_string(given) : NULL, "request_json",
                               &secret);
        if (rc == INTEG_OK) {
            unsigned char raw[16];
            char id[33], now[32];
            randombytes_buf(raw, sizeof raw); /* 128 random bits: the id is in a public URL */
            sodium_bin2hex(id, sizeof id, raw, sizeof raw);
            ig_rfc3339(now, ig_ctx_now_ms(s->ctx), 0);
            rec = json_object_new_object();
            json_object_object_add(rec, "id", json_object_new_string(id));
            json_object_object_add(rec, "tenant_id", json_object_new_string(s->tenant_id));
            json_object_object_add(rec, "integration_id", json_object_new_string(integration_id));
            json_object_object_add(rec, "scheme", json_object_new_string(scheme));
            /* What receiving needs of the definition, so a delivery costs one
             * read: where the event id and type are. */
            json_object_object_add(rec, "definition_id", json_object_get(ig_json_get(def, "id")));
            json_object *loc = json_object_new_object();
            static const char *const keep[] = {"event_id", "event_type", "object_id", "batched"};
            for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
                if (ig_json_get(wh, keep[i]))
                    json_object_object_add(loc, keep[i], ig_json_copy(ig_json_get(wh, keep[i])));
            json_object_object_add(rec, "locators", loc);
            json_object_object_add(rec, "secret_source", json_object_new_string(given ? "given" : source ? source : "generated"));
            json_object_object_add(rec, "events", ig_json_get(req, "events") ? json_object_get(ig_json_get(req, "events"))
                                                                              : json_object_new_array());
            json_object_object_add(rec, "active", json_object_new_boolean(active ? json_object_get_boolean(active) : 1));
            json_object_object_add(rec, "description", json_object_get(ig_json_get(req, "description")));
            json_object_object_add(rec, "created_at", json_object_new_string(now));
            json_object_object_add(rec, "updated_at", json_object_new_string(now));
            json_object_object_add(rec, "secret_rotated_at", NULL);
            rc = seal_field(s->ctx, rec, "webhook_secret", secret);
        }
        if (rc == INTEG_OK)
            rc = ig_store_put(s->ctx, tx, INTEG_KIND_WEBHOOK_ENDPOINT, rec, INTEG_PUT_INSERT);
        if (rc == INTEG_OK) {
            json_object *d = json_object_new_object();
            json_object_object_add(d, "integration_id", json_object_new_string(integration_id));
            json_object_object_add(d, "scheme", json_object_new_string(scheme));
            rc = ig_audit(s->ctx, tx, s->tenant_id, s->user_id, "webhook_endpoint.create", "webhook_endpoint",
                          ig_json_str(rec, "id"), d);
            json_object_put(d);
        }
        rc = ig_tx_end(s->ctx, tx, 1, rc);
    }
    if (rc == INTEG_OK) {
        /* Shown once — but only a secret made for this endpoint: the app's
         * client secret is the platform's and no tenant reads it. */
        const char *src = ig_json_str(rec, "secret_source");
        int show = src && (!strcmp(src, "generated") || !strcmp(src, "client_state") || !strcmp(src, "basic_auth") ||
                           !strcmp(src, "given"));
        json_object *pub = public_endpoint(s->ctx, rec, show ? secret : NULL);
        rc = ig_json_to_string(pub, out_json);
        ig_json_wipe_put(pub);
    }
    if (secret)
        ig_free_secret(secret, strlen(secret));
    json_object_put(rec);
    json_object_put(def);
    json_object_put(integ);
    ig_json_wipe_put(req);
    return rc;
}

INTEG_API int integ_webhook_endpoints_list(integ_session *s, const char *integration_id, char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(integration_id && *integration_id, "integration_id");
    IG_CHECK_ARG(out_json, "out_json");
    json_object *rows = json_object_new_array();
    rc = ig_integration_records(s->ctx, s->tenant_id, integration_id, INTEG_KIND_WEBHOOK_ENDPOINT, NULL, rows);
    if (rc == INTEG_OK) {
        json_object *out = json_object_new_array();
        for (size_t i = 0; i < ig_json_len(rows); i++)
            json_object_array_add(out, public_endpoint(s->ctx, json_object_array_get_idx(rows, i), NULL));
        rc = ig_json_to_string(out, out_json);
        json_object_put(out);
    }
    json_object_put(rows);
    return rc;
}

/* Move the current secret to "previous" (verifying until the grace period
 * ends) and seal `secret` as the current one. */
static int replace_secret(integ_ctx *ctx, json_object *rec, const char *secret)
{
    char *old = NULL;
    size_t len = 0;
    int rc = ig_ctx_open_sealed(ctx, ig_json_str(rec, "tenant_id"), ig_json_str(rec, "id"), "webhook_secret",
                                ig_json_str(rec, "webhook_secret_sealed"), &old, &len);
    if (rc == INTEG_OK)
        rc = seal_field(ctx, rec, "previous_webhook_secret", old);
    if (old)
        ig_free_secret(old, len);
    if (rc == INTEG_OK) {
        int64_t grace = webhook_opt(ctx, "rotation_grace_s", DEFAULT_GRACE_S);
        json_object_object_add(rec, "previous_expires_at_ms", json_object_new_int64(ig_ctx_now_ms(ctx) + grace * 1000));
        rc = seal_field(ctx, rec, "webhook_secret", secret);
    }
    char now[32];
    ig_rfc3339(now, ig_ctx_now_ms(ctx), 0);
    json_object_object_add(rec, "secret_rotated_at", json_object_new_string(now));
    return rc;
}

/* The definition of the endpoint `rec` (by the id it keeps, else through
 * its integration, for endpoints made before it was kept). */
static int endpoint_definition(integ_ctx *ctx, void *tx, json_object *rec, json_object **def)
{
    if (ig_json_str(rec, "definition_id"))
        return ig_definition_lookup(ctx, tx, ig_json_str(rec, "definition_id"), def);
    json_object *integ = NULL;
    int rc = ig_integration_get(ctx, tx, ig_json_str(rec, "tenant_id"), ig_json_str(rec, "integration_id"), &integ);
    if (rc == INTEG_OK)
        rc = ig_definition_lookup(ctx, tx, ig_json_str(integ, "definition_id"), def);
    json_object_put(integ);
    return rc;
}

/* An update changes the endpoint's scheme to `scheme`: its secret becomes
 * `given`, or, without one, what create would choose for that scheme
 * (override_source) — the current secret is kept when it is already of
 * that source, else a new one is made (*shown, when it may be shown) or the
 * call fails naming patch_json.secret. A replaced secret does not keep
 * verifying: it was the old scheme's sender's (and one the new scheme
 * cannot parse, a HubSpot app secret under standard, would fail every
 * delivery of the grace period). */
static int secret_for_scheme(integ_ctx *ctx, void *tx, json_object *rec, const char *scheme, const char *given,
                             char **shown)
{
    *shown = NULL;
    json_object *def = NULL;
    const char *source = "given";
    char *secret = NULL;
    int rc = INTEG_OK;
    if (!given) {
        rc = endpoint_definition(ctx, tx, rec, &def);
        if (rc == INTEG_OK)
            rc = override_source(ig_json_get(ig_json_get(def, "manifest"), "webhook"), scheme, "patch_json", &source);
        const char *cur = ig_json_str(rec, "secret_source");
        if (rc == INTEG_OK && !strcmp(cur ? cur : "generated", source)) {
            json_object_put(def);
            return INTEG_OK; /* the secret it has is the one it would get */
        }
    }
    if (rc == INTEG_OK)
        rc = choose_secret(ctx, def, source, given, "patch_json", &secret);
    if (rc == INTEG_OK)
        rc = seal_field(ctx, rec, "webhook_secret", secret);
    if (rc == INTEG_OK) {
        char now[32];
        ig_rfc3339(now, ig_ctx_now_ms(ctx), 0);
        json_object_object_del(rec, "previous_webhook_secret_sealed");
        json_object_object_del(rec, "previous_expires_at_ms");
        json_object_object_add(rec, "secret_source", json_object_new_string(source));
        json_object_object_add(rec, "secret_rotated_at", json_object_new_string(now));
        if (!given && strcmp(source, "app_secret")) { /* the app's secret is the platform's: never shown */
            *shown = secret;
            secret = NULL;
        }
    }
    if (secret)
        ig_free_secret(secret, strlen(secret));
    json_object_put(def);
    return rc;
}

INTEG_API int integ_webhook_endpoint_update(integ_session *s, const char *endpoint_id, const char *patch_json,
                                            char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(endpoint_id && *endpoint_id, "endpoint_id");
    json_object *patch = NULL, *rec = NULL;
    if ((rc = ig_json_parse_object(patch_json, "patch_json", 0, &patch)))
        return rc;
    static const char *const known[] = {"scheme", "events", "active", "description", "secret", NULL};
    if (rc == INTEG_OK)
        rc = ig_json_check_keys(patch, known, "patch_json", "field");
    if (rc == INTEG_OK && ig_json_get(patch, "scheme") && !ig_wh_scheme_known(ig_json_str(patch, "scheme")))
        rc = ig_err(INTEG_EINVAL, "patch_json.scheme: unknown webhook scheme");
    if (rc == INTEG_OK)
        rc = check_events(ig_json_get(patch, "events"), "patch_json");
    json_object *active = ig_json_get(patch, "active");
    if (rc == INTEG_OK && active && !json_object_is_type(active, json_type_boolean))
        rc = ig_err(INTEG_EINVAL, "patch_json.active: must be a boolean");
    json_object *secret = ig_json_get(patch, "secret");
    if (rc == INTEG_OK && secret && (!json_object_is_type(secret, json_type_string) || !json_object_get_string_len(secret)))
        rc = ig_err(INTEG_EINVAL, "patch_json.secret: must be a non-empty string");
    if (rc == INTEG_OK)
        rc = ig_session_require_admin(s);
    void *tx = NULL;
    char *shown = NULL; /* a secret made for a new scheme: shown once */
    if (rc == INTEG_OK && (rc = ig_tx_begin(s->ctx, 1, &tx)) == INTEG_OK) {
        rc = load_endpoint(s, tx, endpoint_id, &rec);
        const char *to = ig_json_str(patch, "scheme"), *cur = ig_json_str(rec, "scheme");
        int rescheme = rc == INTEG_OK && to && strcmp(to, cur ? cur : "");
        const char *src = ig_json_str(rec, "secret_source");
        /* Such an endpoint verifies with the app's client secret as it is
         * now (it follows the app credentials): a secret of its own would
         * be ignored. */
        if (rc == INTEG_OK && secret && !rescheme && src && !strcmp(src, "app_secret"))
            rc = ig_err(INTEG_EINVAL, "patch_json.secret: endpoint '%s' verifies with the app's client secret of "
                        "its definition, which it follows: change that with integ_definition_set_app_credentials "
                        "(or give \"scheme\" with the secret)", endpoint_id);
        /* A new scheme needs a secret it verifies with, as at creation. */
        if (rc == INTEG_OK && rescheme)
            rc = secret_for_scheme(s->ctx, tx, rec, to, secret ? json_object_get_string(secret) : NULL, &shown);
        if (rc == INTEG_OK) {
            static const char *const plain[] = {"scheme", "events", "active", "description"};
            for (size_t i = 0; i < 4; i++)
                if (ig_json_get(patch, plain[i]) || (!strcmp(plain[i], "description") && json_object_object_get_ex(patch, "description", NULL)))
                    json_object_object_add(rec, plain[i], json_object_get(ig_json_get(patch, plain[i])));
            /* A provider-dictated secret changed at the provider: keep the
             * old one verifying during the grace period. */
            if (secret && !rescheme)
                rc = replace_secret(s->ctx, rec, json_object_get_string(secret));
            char now[32];
            ig_rfc3339(now, ig_ctx_now_ms(s->ctx), 0);
            json_object_object_add(rec, "updated_at", json_object_new_string(now));
        }
        if (rc == INTEG_OK)
            rc = ig_store_put(s->ctx, tx, INTEG_KIND_WEBHOOK_ENDPOINT, rec, INTEG_PUT_UPDATE);
        if (rc == INTEG_OK)
            rc = ig_audit(s->ctx, tx, s->tenant_id, s->user_id, "webhook_endpoint.update", "webhook_endpoint",
                          endpoint_id, NULL);
        rc = ig_tx_end(s->ctx, tx, 1, rc);
        if (rc == INTEG_OK)
            ig_ep_cache_changed(s->ctx->ep_cache); /* receivers reread it */
    }
    if (rc == INTEG_OK && out_json) {
        json_object *pub = public_endpoint(s->ctx, rec, shown);
        rc = ig_json_to_string(pub, out_json);
        ig_json_wipe_put(pub);
    }
    if (shown)
        ig_free_secret(shown, strlen(shown));
    json_object_put(rec);
    ig_json_wipe_put(patch);
    return rc;
}

INTEG_API int integ_webhook_endpoint_rotate_secret(integ_session *s, const char *endpoint_id, char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(endpoint_id && *endpoint_id, "endpoint_id");
    IG_CHECK_ARG(out_json, "out_json");
    if ((rc = ig_session_require_admin(s)))
        return rc;
    json_object *rec = NULL;
    char *secret = NULL;
    void *tx = NULL;
    if ((rc = ig_tx_begin(s->ctx, 1, &tx)) == INTEG_OK) {
        rc = load_endpoint(s, tx, endpoint_id, &rec);
        const char *src = ig_json_str(rec, "secret_source"), *scheme = ig_json_str(rec, "scheme");
        if (rc == INTEG_OK && src && !strcmp(src, "app_secret"))
            rc = ig_err(INTEG_EINVAL, "endpoint '%s': it verifies with the app's client secret of its definition, "
                        "which it follows: rotate that with integ_definition_set_app_credentials", endpoint_id);
        else if (rc == INTEG_OK && src && strcmp(src, "generated") && strcmp(src, "client_state") && strcmp(src, "basic_auth"))
            rc = ig_err(INTEG_EINVAL, "endpoint '%s': its secret is dictated by the provider (%s); set the new one "
                        "with integ_webhook_endpoint_update {\"secret\"}", endpoint_id, src);
        /* A secret of that source must be one the scheme verifies with (an
         * endpoint whose scheme was changed before updates checked it may
         * hold a generated secret under sendgrid or basic). */
        else if (rc == INTEG_OK && !ig_manifest_scheme_accepts(scheme, src ? src : "generated"))
            rc = ig_err(INTEG_EINVAL, "endpoint '%s': scheme '%s' does not verify with a %s secret; set the one its "
                        "sender uses with integ_webhook_endpoint_update {\"secret\"}", endpoint_id,
                        scheme ? scheme : "(none)", src ? src : "generated");
        if (rc == INTEG_OK)
            rc = choose_secret(s->ctx, NULL, src, NULL, "endpoint", &secret);
        if (rc == INTEG_OK)
            rc = replace_secret(s->ctx, rec, secret);
        if (rc == INTEG_OK)
            rc = ig_store_put(s->ctx, tx, INTEG_KIND_WEBHOOK_ENDPOINT, rec, INTEG_PUT_UPDATE);
        if (rc == INTEG_OK)
            rc = ig_audit(s->ctx, tx, s->tenant_id, s->user_id, "webhook_endpoint.rotate_secret",
                          "webhook_endpoint", endpoint_id, NULL);
        rc = ig_tx_end(s->ctx, tx, 1, rc);
        if (rc == INTEG_OK)
            ig_ep_cache_changed(s->ctx->ep_cache); /* receivers reread it */
    }
    if (rc == INTEG_OK) {
        json_object *pub = public_endpoint(s->ctx, rec, secret);
        rc = ig_json_to_string(pub, out_json);
        ig_json_wipe_put(pub);
    }
    if (secret)
        ig_free_secret(secret, strlen(secret));
    json_object_put(rec);
    return rc;
}

INTEG_API int integ_webhook_endpoint_delete(integ_session *s, const char *endpoint_id)
{
    int rc = ig_session_enter(s, NULL);
    if (rc)
        return rc;
    IG_CHECK_ARG(endpoint_id && *endpoint_id, "endpoint_id");
    if ((rc = ig_session_require_admin(s)))
        return rc;
    json_object *rec = NULL;
    void *tx = NULL;
    if ((rc = ig_tx_begin(s->ctx, 1, &tx)) == INTEG_OK) {
        rc = load_endpoint(s, tx, endpoint_id, &rec);
        if (rc == INTEG_OK) {
            json_object *q = json_object_new_object();
            json_object_object_add(q, "tenant_id", json_object_new_string(s->tenant_id));
            json_object_object_add(q, "endpoint_id", json_object_new_string(endpoint_id));
            rc = s->ctx->store->remove_where(tx, INTEG_KIND_WEBHOOK_EVENT,
                                             json_object_to_json_string_ext(q, JSON_C_TO_STRING_PLAIN), NULL);
            json_object_put(q);
        }
        if (rc == INTEG_OK)
            rc = s->ctx->store->remove(tx, INTEG_KIND_WEBHOOK_ENDPOINT, s->tenant_id, endpoint_id);
        if (rc == INTEG_OK)
            rc = ig_audit(s->ctx, tx, s->tenant_id, s->user_id, "webhook_endpoint.delete", "webhook_endpoint",
                          endpoint_id, NULL);
        rc = ig_tx_end(s->ctx, tx, 1, rc);
        if (rc == INTEG_OK)
            ig_ep_cache_changed(s->ctx->ep_cache); /* receivers reread it */
    }
    json_object_put(rec);
    return rc;
}

/* ---- receiving ---------------------------------------------------------------- */

static int answer(int status, const char *body, int *out_status, char **out_body)
{
    char *b = strdup(body);
    if (!b)
        return ig_err(INTEG_ENOMEM, "out of memory");
    *out_status = status;
    *out_body = b;
    return INTEG_OK;
}

static int answer_json(int status, const char *state, const char *id, int *out_status, char **out_body)
{
    char buf[256];
    if (id)
        snprintf(buf, sizeof buf, "{\"status\":\"%s\",\"id\":\"%s\"}", state, id);
    else
        snprintf(buf, sizeof buf, "{\"status\":\"%s\"}", state);
    return answer(status, buf, out_status, out_body);
}

/* Values at a manifest locator ({"header"} or {"json_path"}), as strings. */
static void locate(json_object *loc, json_object *doc, const char *const *names, const char *const *values, size_t n,
                   json_object *out)
{
    const char *h = ig_json_str(loc, "header");
    if (h) {
        const char *v = ig_wh_header(names, values, n, h);
        if (v)
            json_object_array_add(out, json_object_new_string(v));
        return;
    }
    const char *jp = ig_json_str(loc, "json_path");
    if (!jp || !doc)
        return;
    json_object *vals = json_object_new_array();
    ig_jsonpath_collect(doc, jp, vals);
    for (size_t i = 0; i < ig_json_len(vals); i++) {
        json_object *v = json_object_array_get_idx(vals, i);
        if (json_object_is_type(v, json_type_string))
            json_object_array_add(out, json_object_get(v));
        else if (v)
            json_object_array_add(out, json_object_new_string(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)));
    }
    json_object_put(vals);
}

static void join_values(json_object *arr, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (size_t i = 0; i < ig_json_len(arr); i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%s", i ? "," : "", json_object_get_string(json_object_array_get_idx(arr, i)));
    }
}

/* The delivery's id: the manifest's locator, the scheme's delivery header,
 * the payload's id (Stripe), or the body's hash. */
static void delivery_id(const char *scheme, json_object *wh, json_object *doc, const char *const *names,
                        const char *const *values, size_t n, const unsigned char *body, size_t len, char *out, size_t cap)
{
    json_object *ids = json_object_new_array();
    if (ig_json_get(wh, "event_id"))
        locate(ig_json_get(wh, "event_id"), doc, names, values, n, ids);
    if (!ig_json_len(ids)) {
        /* The header the verifier read (svix-id before webhook-id, ...):
         * an unsigned alias must not mint a new id for the same delivery. */
        char h[256];
        if (ig_wh_delivery_id(scheme, names, values, n, body, len, h, sizeof h))
            json_object_array_add(ids, json_object_new_string(h));
    }
    if (ig_json_len(ids)) {
        size_t total = 0;
        for (size_t i = 0; i < ig_json_len(ids); i++)
            total += (i ? 1 : 0) + strlen(json_object_get_string(json_object_array_get_idx(ids, i)));
        if (total < 200 && total < cap) {
            join_values(ids, out, cap);
        } else {
            /* Every id counts (a HubSpot batch of 100 is over 1 KiB): the
             * hash of the whole comma-joined list, however long. */
            unsigned char d[32];
            char hex[65];
            ig_sha256_ctx h;
            ig_sha256_init(&h);
            for (size_t i = 0; i < ig_json_len(ids); i++) {
                const char *v = json_object_get_string(json_object_array_get_idx(ids, i));
                if (i)
                    ig_sha256_update(&h, ",", 1);
                ig_sha256_update(&h, v, strlen(v));
            }
            ig_sha256_final(&h, d);
            sodium_bin2hex(hex, sizeof hex, d, sizeof d);
            snprintf(out, cap, "ids:%s", hex);
        }
    } else {
        unsigned char d[32];
        char hex[65];
        ig_sha256(body, len, d);
        sodium_bin2hex(hex, sizeof hex, d, sizeof d);
        snprintf(out, cap, "sha256:%s", hex);
    }
    json_object_put(ids);
}

/* Does topic pattern `pat` ("contact.*", exact) match `type`? */
static int topic_match(const char *pat, const char *type)
{
    size_t n = strlen(pat);
    if (n && pat[n - 1] == '*')
        return !strncmp(pat, type, n - 1);
    return !strcmp(pat, type);
}

/* Does the endpoint's `events` filter (empty: everything) take `type`? */
static int type_subscribed(json_object *events, const char *type)
{
    if (!ig_json_len(events))
        return 1;
    for (size_t j = 0; j < ig_json_len(events); j++)
        /* events belongs to a shared endpoint: only strings are read
         * (get_string of anything else would serialise into it) */
        if (json_object_is_type(json_object_array_get_idx(events, j), json_type_string) &&
            topic_match(json_object_get_string(json_object_array_get_idx(events, j)), type))
            return 1;
    return 0;
}

/* A delivery is queued when any of its items is subscribed; processing
 * skips the others (the filter is kept on the event, see receive). */
static int subscribed(json_object *events, json_object *types)
{
    if (!ig_json_len(events) || !ig_json_len(types))
        return 1;
    for (size_t i = 0; i < ig_json_len(types); i++)
        if (type_subscribed(events, json_object_get_string(json_object_array_get_idx(types, i))))
            return 1;
    return 0;
}

/* The app's current client secret (endpoints whose provider signs with it
 * follow its rotation through integ_definition_set_app_credentials). */
static int live_app_secret(integ_ctx *ctx, json_object *def, char **out)
{
    int missing = 0, rc = app_client_secret(ctx, def, out, &missing);
    if (rc || missing == 0)
        return rc;
    if (missing == 1)
        return ig_err(INTEG_EAUTH, "%s: no app credentials to verify with", ig_json_str(def, "key"));
    return ig_err(INTEG_EAUTH, "%s: the app credentials have no client_secret", ig_json_str(def, "key"));
}

/* An endpoint's secrets, opened once per cached snapshot (opening a sealed
 * secret is a key derivation and a decryption: a sixth of a delivery's own
 * work when done per delivery). Wiped when the snapshot goes. */
struct ep_secrets {
    int rc;                  /* not INTEG_OK: no usable secret, for this reason */
    char msg[256];
    char *cur;               /* the secret(s) to verify with */
    size_t cur_len;
    char *both;              /* "current previous", while the previous is honoured */
    size_t both_len;
    int64_t prev_expires_ms;
};

static void ep_secrets_free(void *p)
{
    struct ep_secrets *x = p;
    if (!x)
        return;
    ig_free_secret(x->cur, x->cur_len);
    ig_free_secret(x->both, x->both_len);
    free(x);
}

/* Open the endpoint's secrets into x (x->rc says whether it worked). The
 * previous secret is opened while it has not expired at `now`; whether it
 * is still honoured is decided per delivery. */
static void open_secrets(integ_ctx *ctx, json_object *ep, json_object *def, int64_t now, struct ep_secrets *x)
{
    const char *src = ig_json_str(ep, "secret_source");
    if (src && !strcmp(src, "app_secret")) {
        x->rc = live_app_secret(ctx, def, &x->cur);
        x->cur_len = x->cur ? strlen(x->cur) : 0;
    } else {
        const char *tenant = ig_json_str(ep, "tenant_id"), *id = ig_json_str(ep, "id");
        x->rc = ig_ctx_open_sealed(ctx, tenant, id, "webhook_secret", ig_json_str(ep, "webhook_secret_sealed"), &x->cur,
                                   &x->cur_len);
        x->prev_expires_ms = ig_json_int(ep, "previous_expires_at_ms", 0);
        if (x->rc == INTEG_OK && ig_json_str(ep, "previous_webhook_secret_sealed") && x->prev_expires_ms > now) {
            char *prev = NULL;
            size_t lp = 0;
            x->rc = ig_ctx_open_sealed(ctx, tenant, id, "previous_webhook_secret",
                                       ig_json_str(ep, "previous_webhook_secret_sealed"), &prev, &lp);
            if (x->rc == INTEG_OK) {
                x->both_len = x->cur_len + 1 + lp;
                x->both = malloc(x->both_len + 1);
                if (x->both)
                    snprintf(x->both, x->both_len + 1, "%s %s", x->cur, prev);
                else
                    x->rc = ig_err(INTEG_ENOMEM, "out of memory");
            }
            ig_free_secret(prev, lp);
        }
    }
    if (x->rc)
        snprintf(x->msg, sizeof x->msg, "%s", ig_errmsg());
}

/* The secrets a delivery at `now` is verified with, or NULL with the
 * reason set. */
static const char *secrets_at(const struct ep_secrets *x, int64_t now)
{
    if (!x || x->rc) {
        ig_err(x ? x->rc : INTEG_ENOMEM, "%s", x ? x->msg : "out of memory");
        return NULL;
    }
    return x->both && x->prev_expires_ms > now ? x->both : x->cur;
}

/* ig_ep_loader: the endpoint and, when receiving needs it, its definition,
 * and its opened secrets. */
static int load_for_receive(integ_ctx *ctx, const char *endpoint_id, ig_ep_snap *out)
{
    json_object **ep = &out->ep, **def = &out->def;
    void *tx = NULL;
    int rc = ig_tx_begin(ctx, 0, &tx);
    if (rc == INTEG_OK) {
        rc = ig_store_get(ctx, tx, INTEG_KIND_WEBHOOK_ENDPOINT, NULL, endpoint_id, ep);
        /* The definition is read only for what the endpoint doesn't carry:
         * the app's secret, or locators of an endpoint made before they
         * were kept on it. */
        const char *src = ig_json_str(*ep, "secret_source");
        int need_def = rc == INTEG_OK && (!ig_json_get(*ep, "locators") || (src && !strcmp(src, "app_secret")));
        if (need_def)
            rc = endpoint_definition(ctx, tx, *ep, def);
        rc = ig_tx_end(ctx, tx, 1, rc);
    }
    if (rc == INTEG_OK) {
        struct ep_secrets *x = calloc(1, sizeof *x);
        if (!x)
            return ig_err(INTEG_ENOMEM, "out of memory");
        out->derived = x;
        out->derived_free = ep_secrets_free;
        open_secrets(ctx, *ep, *def, ig_ctx_now_ms(ctx), x);
        ig_err_clear(); /* a secret that cannot be opened is each delivery's 401 */
    }
    return rc;
}

/* Keep header `name` (lower-cased; the first value of a repeated one) on the
 * event, except credentials. */
static void store_header(json_object *hdrs, const char *name, const char *value)
{
    if (!name || !value || !strcasecmp(name, "authorization") || !strcasecmp(name, "cookie"))
        return;
    char lower[128];
    size_t k = 0;
    for (; name[k] && k < sizeof lower - 1; k++)
        lower[k] = (char)tolower((unsigned char)name[k]);
    lower[k] = '\0';
    if (!ig_json_get(hdrs, lower))
        json_object_object_add(hdrs, lower, json_object_new_string(value));
}

/* integ_webhook_receive once its arguments are checked. *preparing is set
 * to 0 when the event has been handed to the ingest queue. */
static int receive_delivery(integ_ctx *ctx, const char *endpoint_id, const char *method, const char *url,
                            const char *const *header_names, const char *const *header_values, size_t n_headers,
                            const unsigned char *body, size_t body_len, int *out_status, char **out_body,
                            int *preparing)
{
    /* Unknown and inactive endpoints answer the same, so ids can't be probed. */
    if (!endpoint_id || !ig_valid_token(endpoint_id, 64)) {
        ig_err(INTEG_ENOTFOUND, "webhook endpoint: malformed id");
        return answer_json(404, "not_found", NULL, out_status, out_body);
    }
    json_object *doc = NULL, *types = NULL;
    /* Shared with other receivers: ep, def and the secrets are only read below. */
    const ig_ep_snap *snap = NULL;
    int rc = ig_ep_cache_get(ctx, ctx->ep_cache, endpoint_id, ig_ctx_now_ms(ctx),
                             webhook_opt(ctx, "endpoint_cache_ms", DEFAULT_ENDPOINT_CACHE_MS), load_for_receive, &snap);
    json_object *ep = snap ? snap->ep : NULL, *def = snap ? snap->def : NULL;
    if (rc == INTEG_ENOTFOUND || (rc == INTEG_OK && !ig_json_bool(ep, "active", 1))) {
        ig_err(INTEG_ENOTFOUND, "webhook endpoint '%s': unknown or inactive", endpoint_id);
        rc = answer_json(404, "not_found", NULL, out_status, out_body);
        goto out;
    }
    if (rc)
        goto out;
    int64_t max_body = webhook_opt(ctx, "max_body_bytes", DEFAULT_MAX_BODY);
    if ((int64_t)body_len > max_body) {
        ig_err(INTEG_EINVAL, "webhook body of %zu bytes is over the %lld byte limit", body_len, (long long)max_body);
        rc = answer_json(413, "too_large", NULL, out_status, out_body);
        goto out;
    }
    const char *scheme = ig_json_str(ep, "scheme");
    json_object *wh = ig_json_get(ep, "locators") ? ig_json_get(ep, "locators")
                                                   : ig_json_get(ig_json_get(def, "manifest"), "webhook");
    /* Handshakes that the provider sends unsigned. */
    int hs = ig_wh_handshake(scheme, method ? method : "POST", url ? url : "", header_names, header_values, n_headers,
                             body, body_len);
    if (hs == IG_WH_HANDSHAKE_MSGRAPH) {
        char *token = NULL;
        rc = ig_wh_query_param(url, "validationToken", &token);
        if (rc == INTEG_OK)
            rc = answer(200, token ? token : "", out_status, out_body); /* echo as text/plain */
        free(token);
        goto out;
    }
    if (hs == IG_WH_HANDSHAKE_WOOCOMMERCE) {
        rc = answer_json(200, "ping", NULL, out_status, out_body);
        goto out;
    }
    const char *secrets = secrets_at(snap->derived, ig_ctx_now_ms(ctx));
    if (!secrets) {
        /* No usable secret: nothing can be verified. */
        rc = answer_json(401, "unauthorized", NULL, out_status, out_body);
        goto out;
    }
    int tol = (int)webhook_opt(ctx, "tolerance_s", 0);
    int64_t now_s = ig_ctx_now_ms(ctx) / 1000;
    int vrc = integ_webhook_verify(scheme, secrets, method ? method : "POST", url ? url : "", header_names,
                                   header_values, n_headers, body, body_len, now_s, tol);
    if (vrc != INTEG_OK) {
        /* Never queued. integ_errmsg() keeps the reason for the host's logs. */
        rc = answer_json(401, "unauthorized", NULL, out_status, out_body);
        goto out;
    }
    /* The body is parsed only when something is read from it (Slack's
     * handshake, a json_path locator): most providers name the event and
     * its id in headers, and the body is stored as received either way. */
    if (!strcmp(scheme, "slack") || ig_json_str(ig_json_get(wh, "event_type"), "json_path") ||
        ig_json_str(ig_json_get(wh, "event_id"), "json_path")) {
        doc = ig_json_parse_len((const char *)body, body_len);
    }
    if (!strcmp(scheme, "slack") && doc && !strcmp(ig_json_str(doc, "type") ? ig_json_str(doc, "type") : "", "url_verification")) {
        rc = answer(200, ig_json_str(doc, "challenge") ? ig_json_str(doc, "challenge") : "", out_status, out_body);
        goto out;
    }
    types = json_object_new_array();
    if (ig_json_get(wh, "event_type"))
        locate(ig_json_get(wh, "event_type"), doc, header_names, header_values, n_headers, types);
    if (!subscribed(ig_json_get(ep, "events"), types)) {
        rc = answer_json(200, "ignored", NULL, out_status, out_body);
        goto out;
    }
    char event_id[256], id[37], at[32], type_text[512];
    delivery_id(scheme, wh, doc, header_names, header_values, n_headers, body, body_len, event_id, sizeof event_id);
    join_values(types, type_text, sizeof type_text);
    int64_t now = ig_ctx_now_ms(ctx);
    ig_ctx_new_id(ctx, id, now);
    ig_rfc3339(at, now, 1);
    json_object *ev = json_object_new_object();
    json_object_object_add(ev, "id", json_object_new_string(id));
    /* Copies: ep is shared (endpoint_cache.h). */
    const char *tenant = ig_json_str(ep, "tenant_id"), *integration = ig_json_str(ep, "integration_id");
    json_object_object_add(ev, "tenant_id", tenant ? json_object_new_string(tenant) : NULL);
    json_object_object_add(ev, "endpoint_id", json_object_new_string(endpoint_id));
    json_object_object_add(ev, "integration_id", integration ? json_object_new_string(integration) : NULL);
    json_object_object_add(ev, "event_id", json_object_new_string(event_id));
    json_object_object_add(ev, "event_type", type_text[0] ? json_object_new_string(type_text) : NULL);
    if (ig_json_len(types) > 1 && ig_json_len(ig_json_get(ep, "events"))) {
        /* A batch is queued when one item is subscribed: processing skips
         * the others by the filter as it was when the delivery came (a
         * copy of its strings: ep is shared). */
        json_object *filter = json_object_new_array(), *events = ig_json_get(ep, "events");
        for (size_t i = 0; i < ig_json_len(events); i++)
            if (json_object_is_type(json_object_array_get_idx(events, i), json_type_string))
                json_object_array_add(filter, json_object_new_string(json_object_get_string(json_object_array_get_idx(events, i))));
        json_object_object_add(ev, "subscribed_events", filter);
    }
    json_object_object_add(ev, "status", json_object_new_string("queued"));
    json_object_object_add(ev, "attempts", json_object_new_int(0));
    json_object_object_add(ev, "next_attempt_at_ms", json_object_new_int64(now));
    json_object_object_add(ev, "lease_until_ms", json_object_new_int64(0));
    json_object_object_add(ev, "received_at", json_object_new_string(at));
    json_object *hdrs = json_object_new_object();
    if (n_headers > MAX_HEADER_STORE) {
        /* Only MAX_HEADER_STORE headers are stored (and processing reads
         * no more): the ones the locators read go first, wherever they are. */
        static const char *const loc_keys[] = {"event_type", "event_id", "object_id"};
        for (size_t k = 0; k < sizeof loc_keys / sizeof *loc_keys; k++) {
            const char *h = ig_json_str(ig_json_get(wh, loc_keys[k]), "header");
            if (h)
                store_header(hdrs, h, ig_wh_header(header_names, header_values, n_headers, h));
        }
    }
    for (size_t i = 0; i < n_headers && json_object_object_length(hdrs) < MAX_HEADER_STORE; i++)
        store_header(hdrs, header_names[i], header_values[i]);
    json_object_object_add(ev, "headers", hdrs);
    /* Committed before the 202: an accepted event survives a crash.
     * Concurrent receivers share one commit (webhook_ingest.c); the
     * duplicate check happens inside it. */
    *preparing = 0;
    rc = ig_wh_ingest_submit(ctx, ev, body, body_len);
    json_object_put(ev);
    if (rc == INTEG_EEXISTS)
        rc = answer_json(200, "duplicate", NULL, out_status, out_body);
    else if (rc == INTEG_OK)
        rc = answer_json(202, "accepted", id, out_status, out_body);
out:
    json_object_put(types);
    json_object_put(doc);
    ig_ep_snap_release(snap);
    return rc;
}

INTEG_API int integ_webhook_receive(integ_ctx *ctx, const char *endpoint_id, const char *method, const char *url,
                                    const char *const *header_names, const char *const *header_values, size_t n_headers,
                                    const unsigned char *body, size_t body_len, int *out_status, char **out_body)
{
    ig_err_clear();
    IG_CHECK_ARG(out_status && out_body, "out_status/out_body");
    *out_status = 0;
    *out_body = NULL;
    IG_CHECK_ARG(ctx, "ctx");
    IG_CHECK_ARG(n_headers == 0 || (header_names && header_values), "header_names/header_values");
    IG_CHECK_ARG(body || body_len == 0, "body");
    /* Until the event is queued (or the answer needs none), a committing
     * receiver may wait a moment for this one to join its batch: every
     * way out of receive_delivery must end the wait, hence the wrapper. */
    int preparing = 1;
    ig_wh_ingest_enter(ctx);
    int rc = receive_delivery(ctx, endpoint_id, method, url, header_names, header_values, n_headers,
                              body ? body : (const unsigned char *)"", body_len, out_status, out_body, &preparing);
    if (preparing)
        ig_wh_ingest_leave(ctx);
    return rc;
}

/* ---- processing ------------------------------------------------------------- */

struct claimed {
    json_object *ev;       /* the event record (owned) */
    unsigned char *body;   /* owned */
    size_t body_len;
    int dead;              /* claim found its last attempt's lease expired */
};

struct collect_ctx {
    struct claimed *items;
    size_t n, cap;
};

static int collect_event(void *payload, const char *json, size_t len, const unsigned char *blob, size_t blob_len)
{
    struct collect_ctx *cc = payload;
    if (cc->n == cc->cap)
        return 0;
    json_object *ev = ig_json_parse_len(json, len);
    if (!ev)
        return INTEG_ESTORE;
    unsigned char *b = malloc(blob_len + 1);
    if (!b) {
        json_object_put(ev);
        return INTEG_ENOMEM;
    }
    if (blob_len)
        memcpy(b, blob, blob_len);
    b[blob_len] = '\0';
    cc->items[cc->n].ev = ev;
    cc->items[cc->n].body = b;
    cc->items[cc->n].body_len = blob_len;
    cc->n++;
    return 0;
}

/* Set an event's status and drop what that status does not carry (the
 * table in doc/webhooks.md, "The event record"): the holder and lease only
 * while processing; processed_at and result only when processed; the last
 * error only while retrying or dead (and while processing a retry). */
static void set_status(json_object *ev, const char *status)
{
    json_object_object_add(ev, "status", json_object_new_string(status));
    if (strcmp(status, "processing") != 0) {
        json_object_object_del(ev, "holder");
        json_object_object_add(ev, "lease_until_ms", json_object_new_int64(0));
    }
    if (strcmp(status, "processed") != 0) {
        json_object_object_del(ev, "processed_at");
        json_object_object_del(ev, "result");
    }
    if (!strcmp(status, "queued") || !strcmp(status, "processed")) {
        json_object_object_del(ev, "last_error");
        json_object_object_del(ev, "last_error_code");
    }
}

/* The event is still this call's: no other worker took it over (a take-over
 * rewrites the holder in a write transaction) and nobody settled it. */
static int held_by(json_object *ev, const char *holder)
{
    const char *h = ig_json_str(ev, "holder"), *st = ig_json_str(ev, "status");
    return h && st && !strcmp(h, holder) && !strcmp(st, "processing");
}

/* The one dead-letter path, for a failed last attempt (settle) and for a
 * last attempt whose lease expired (claim): the record's fields, then,
 * once that is committed, "webhook.dead" to the event callback. */
static void mark_dead(json_object *ev, const char *error, int code)
{
    set_status(ev, "dead");
    json_object_object_add(ev, "last_error", json_object_new_string(error));
    json_object_object_add(ev, "last_error_code", json_object_new_int(code));
}

static void emit_dead(integ_ctx *ctx, json_object *ev)
{
    json_object *f = json_object_new_object();
    json_object_object_add(f, "tenant_id", json_object_get(ig_json_get(ev, "tenant_id")));
    json_object_object_add(f, "integration_id", json_object_get(ig_json_get(ev, "integration_id")));
    json_object_object_add(f, "endpoint_id", json_object_get(ig_json_get(ev, "endpoint_id")));
    json_object_object_add(f, "event_id", json_object_get(ig_json_get(ev, "id")));
    json_object_object_add(f, "delivery_id", json_object_get(ig_json_get(ev, "event_id")));
    json_object_object_add(f, "attempts", json_object_get(ig_json_get(ev, "attempts")));
    json_object_object_add(f, "last_error", json_object_get(ig_json_get(ev, "last_error")));
    ig_emit(ctx, "webhook.dead", f);
    json_object_put(f);
}

/* Lease up to `max` due events: queued or retrying ones whose time has
 * come, and processing ones whose worker's lease ran out (it died). Those
 * whose expired lease was their last attempt (webhook.max_attempts) are
 * not taken again but dead-lettered, as a failed last attempt is: they
 * come back with .dead set, and the caller reports and frees them. */
static int claim(integ_ctx *ctx, const char *holder, int max, struct collect_ctx *cc)
{
    int64_t now = ig_ctx_now_ms(ctx);
    int64_t max_attempts = webhook_opt(ctx, "max_attempts", DEFAULT_MAX_ATTEMPTS);
    void *tx = NULL;
    int rc = ig_tx_begin(ctx, 1, &tx);
    char q[256];
    if (rc == INTEG_OK) {
        snprintf(q, sizeof q,
                 "{\"status\":{\"in\":[\"queued\",\"retry\"]},\"next_attempt_at_ms\":{\"lte\":%lld},"
                 "\"order\":\"next_attempt_at_ms\",\"limit\":%d}",
                 (long long)now, max);
        rc = ctx->store->list(tx, INTEG_KIND_WEBHOOK_EVENT, q, collect_event, cc);
    }
    if (rc == INTEG_OK && (int)cc->n < max) {
        snprintf(q, sizeof q,
                 "{\"status\":\"processing\",\"lease_until_ms\":{\"lt\":%lld},\"order\":\"lease_until_ms\",\"limit\":%d}",
                 (long long)now, max - (int)cc->n);
        rc = ctx->store->list(tx, INTEG_KIND_WEBHOOK_EVENT, q, collect_event, cc);
    }
    for (size_t i = 0; rc == INTEG_OK && i < cc->n; i++) {
        json_object *ev = cc->items[i].ev;
        int64_t attempts = ig_json_int(ev, "attempts", 0);
        const char *st = ig_json_str(ev, "status");
        if (st && !strcmp(st, "processing") && attempts >= max_attempts) {
            char msg[256];
            snprintf(msg, sizeof msg,
                     "attempt %lld of %lld: the lease expired with no outcome recorded (the worker handling the "
                     "event stopped, or overran its lease)",
                     (long long)attempts, (long long)max_attempts);
            mark_dead(ev, msg, INTEG_EINTERNAL);
            cc->items[i].dead = 1;
        } else {
            set_status(ev, "processing");
            json_object_object_add(ev, "lease_until_ms", json_object_new_int64(now + LEASE_MS));
            json_object_object_add(ev, "holder", json_object_new_string(holder));
            json_object_object_add(ev, "attempts", json_object_new_int64(attempts + 1));
        }
        rc = ig_store_put_blob(ctx, tx, INTEG_KIND_WEBHOOK_EVENT, ev, cc->items[i].body, cc->items[i].body_len, INTEG_PUT_UPDATE);
    }
    rc = ig_tx_end(ctx, tx, 1, rc);
    for (size_t i = 0; rc == INTEG_OK && i < cc->n; i++)
        if (cc->items[i].dead)
            emit_dead(ctx, cc->items[i].ev);
    return rc;
}

/* What a worker finds when it looks at an event it claimed. */
enum { LEASE_HELD, LEASE_LOST, LEASE_GONE };

/* This call's hold on the event being handled. */
struct lease {
    integ_ctx *ctx;
    struct claimed *c;
    const char *holder;
    int state;   /* LEASE_* as last seen */
    int stale;   /* time may have passed (a remote call) since the last renewal */
};

/* Before each step whose length the lease must cover — handling the event,
 * each remote fetch, applying the result — check in a short write
 * transaction that the event is still this call's and extend its lease to
 * now + LEASE_MS. Holding is decided by the holder, not the clock: a lease
 * that ran out with nobody taking the event over is still ours, and
 * renewing it is safe, since a take-over rewrites the holder in a write
 * transaction (serializable with this one). So what must fit in one lease
 * is not the whole event but one step; and the local apply, the step whose
 * repetition would matter, always starts under a fresh lease. A step that
 * overran while another worker took the event over is found out at the
 * next renewal, and its work is dropped unapplied. Returns INTEG_OK with
 * lk->state set, or a store error (ownership then unknown: the event is not
 * handled further, and settle records the error as a failed attempt if it
 * still holds the event). Skipped while nothing remote happened since the
 * last renewal. */
static int lease_renew(struct lease *lk)
{
    if (!lk->stale)
        return INTEG_OK;
    integ_ctx *ctx = lk->ctx;
    void *tx = NULL;
    json_object *cur = NULL;
    int rc = ig_tx_begin(ctx, 1, &tx);
    if (rc == INTEG_OK)
        rc = ig_store_get(ctx, tx, INTEG_KIND_WEBHOOK_EVENT, NULL, ig_json_str(lk->c->ev, "id"), &cur);
    if (rc == INTEG_ENOTFOUND) {
        lk->state = LEASE_GONE; /* deleted with its endpoint or integration */
        rc = INTEG_OK;
    } else if (rc == INTEG_OK && !held_by(cur, lk->holder)) {
        lk->state = LEASE_LOST;
    } else if (rc == INTEG_OK) {
        json_object_object_add(cur, "lease_until_ms", json_object_new_int64(ig_ctx_now_ms(ctx) + LEASE_MS));
        rc = ig_store_put_blob(ctx, tx, INTEG_KIND_WEBHOOK_EVENT, cur, lk->c->body, lk->c->body_len, INTEG_PUT_UPDATE);
    }
    rc = ig_tx_end(ctx, tx, 1, rc);
    if (rc == INTEG_OK)
        lk->stale = 0;
    json_object_put(cur);
    return rc;
}

/* lease_renew for a step inside handle_event: not holding the event any
 * more stops the handling (the caller looks at lk->state). */
static int lease_step(struct lease *lk)
{
    int rc = lease_renew(lk);
    if (rc == INTEG_OK && lk->state != LEASE_HELD)
        rc = ig_err(INTEG_ECANCELED, "event %s: %s", ig_json_str(lk->c->ev, "id"),
                    lk->state == LEASE_GONE ? "deleted while being handled"
                                            : "taken over by another worker (the lease ran out)");
    return rc;
}

static json_object *find_topic(json_object *topics, const char *type)
{
    json_object *best = NULL;
    size_t best_len = 0;
    ig_json_foreach(topics, pat, t)
    {
        size_t n = strlen(pat);
        if (!strcmp(pat, type))
            return t;
        if (n && pat[n - 1] == '*' && !strncmp(pat, type, n - 1) && n > best_len) {
            best = t;
            best_len = n;
        }
    }
    return best;
}

struct plan_entity {
    const char *entity;
    json_object *records;
    json_object *deleted;
};

/* Work out what an event asks for, fetch what needs fetching, apply it. */
/* The connection for an event's integration: *conn when it is that one
 * already (claimed events come in runs of one integration), else a new
 * one in its place. Opening reads the integration and its definition and
 * opens the credentials. */
static int conn_for(integ_ctx *ctx, const char *tenant, const char *integration_id, ig_conn **conn)
{
    if (*conn && tenant && integration_id && !strcmp((*conn)->tenant_id, tenant) &&
        !strcmp(ig_json_str((*conn)->integration, "id") ? ig_json_str((*conn)->integration, "id") : "", integration_id))
        return INTEG_OK;
    ig_conn_close(*conn);
    *conn = NULL;
    return ig_conn_open(ctx, tenant, integration_id, conn);
}

static int handle_event(integ_ctx *ctx, struct claimed *c, ig_conn **conn_cache, json_object *summary,
                        struct lease *lk)
{
    json_object *ev = c->ev;
    const char *tenant = ig_json_str(ev, "tenant_id");
    int rc = conn_for(ctx, tenant, ig_json_str(ev, "integration_id"), conn_cache);
    if (rc)
        return rc;
    ig_conn *conn = *conn_cache;
    json_object *wh = ig_json_get(conn->manifest, "webhook");
    json_object *topics = ig_json_get(wh, "topics");
    json_object *doc = json_tokener_parse((const char *)c->body);
    json_object *hdrs = ig_json_get(ev, "headers");
    /* Header locators read the stored (lower-cased) headers. */
    size_t nh = 0;
    const char *hn[MAX_HEADER_STORE], *hv[MAX_HEADER_STORE];
    ig_json_foreach(hdrs, hk, hval)
    {
        if (nh < MAX_HEADER_STORE) {
            hn[nh] = hk;
            hv[nh] = json_object_get_string(hval);
            nh++;
        }
    }
    /* Items: a batched delivery carries several events. */
    json_object *types = json_object_new_array(), *objects = json_object_new_array();
    if (ig_json_get(wh, "event_type"))
        locate(ig_json_get(wh, "event_type"), doc, hn, hv, nh, types);
    if (ig_json_get(wh, "object_id"))
        locate(ig_json_get(wh, "object_id"), doc, hn, hv, nh, objects);
    struct plan_entity plans[8];
    size_t np = 0;
    int64_t ignored = 0;
    size_t items = ig_json_len(types) ? ig_json_len(types) : 1;
    for (size_t i = 0; rc == INTEG_OK && i < items; i++) {
        const char *type = ig_json_len(types) ? json_object_get_string(json_object_array_get_idx(types, i)) : "";
        json_object *topic = find_topic(topics, type);
        /* An item of a batch the endpoint did not subscribe to (its filter
         * when the delivery came) is skipped like an unmapped one. */
        if (!topic || (ig_json_len(types) && !type_subscribed(ig_json_get(ev, "subscribed_events"), type))) {
            ignored++;
            continue;
        }
        const char *entity = ig_json_str(topic, "entity");
        struct plan_entity *pe = NULL;
        for (size_t k = 0; k < np; k++)
            if (!strcmp(plans[k].entity, entity))
                pe = &plans[k];
        if (!pe) {
            if (np == sizeof plans / sizeof *plans) {
                rc = ig_err(INTEG_EUNSUPPORTED, "a delivery touching more than 8 entities");
                break;
            }
            pe = &plans[np++];
            pe->entity = entity;
            pe->records = json_object_new_array();
            pe->deleted = json_object_new_array();
        }
        const char *obj = i < ig_json_len(objects) ? json_object_get_string(json_object_array_get_idx(objects, i)) : NULL;
        const char *action = ig_json_str(topic, "action") ? ig_json_str(topic, "action") : "upsert";
        const char *mode = ig_json_str(topic, "mode") ? ig_json_str(topic, "mode") : "payload";
        if (!strcmp(action, "delete")) {
            if (obj)
                json_object_array_add(pe->deleted, json_object_new_string(obj));
        } else if (!strcmp(mode, "fetch")) {
            if (!obj) {
                rc = ig_err(INTEG_EMAPPING, "event %s: no object id to fetch", ig_json_str(ev, "event_id"));
                break;
            }
            json_object *rec = NULL;
            if ((rc = lease_step(lk)))
                break;
            lk->stale = 1;
            rc = ig_rest_fetch_one(conn, entity, obj, &rec);
            if (rc == INTEG_ENOTFOUND) {
                /* Gone by now: a deletion we learn about late. */
                json_object_array_add(pe->deleted, json_object_new_string(obj));
                rc = INTEG_OK;
            } else if (rc == INTEG_OK) {
                json_object_array_add(pe->records, rec);
            }
        } else {
            json_object *rec = doc ? ig_jsonpath_get(doc, ig_json_str(topic, "record_path") ? ig_json_str(topic, "record_path") : "$")
                                   : NULL;
            if (!json_object_is_type(rec, json_type_object))
                rc = ig_err(INTEG_EMAPPING, "event %s: the payload holds no record at %s", ig_json_str(ev, "event_id"),
                            ig_json_str(topic, "record_path") ? ig_json_str(topic, "record_path") : "$");
            else
                json_object_array_add(pe->records, json_object_get(rec));
        }
    }
    int64_t created = 0, updated = 0, failed = 0;
    if (rc == INTEG_OK && np)
        rc = lease_step(lk); /* the apply starts under a fresh lease */
    for (size_t k = 0; k < np; k++) {
        if (rc == INTEG_OK) {
            json_object *res = NULL;
            rc = ig_sync_apply(conn, tenant, "webhook", plans[k].entity, plans[k].records, plans[k].deleted, "webhook", &res);
            created += ig_json_int(res, "records_created", 0);
            updated += ig_json_int(res, "records_updated", 0);
            failed += ig_json_int(res, "records_failed", 0);
            json_object_put(res);
        }
        json_object_put(plans[k].records);
        json_object_put(plans[k].deleted);
    }
    json_object_object_add(summary, "records_created", json_object_new_int64(created));
    json_object_object_add(summary, "records_updated", json_object_new_int64(updated));
    json_object_object_add(summary, "records_failed", json_object_new_int64(failed));
    json_object_object_add(summary, "items_ignored", json_object_new_int64(ignored));
    json_object_put(types);
    json_object_put(objects);
    json_object_put(doc);
    return rc;
}

/* Record the outcome (error: the handling's message when err), unless the
 * event is no longer this call's: *state is then LEASE_LOST (another worker
 * took it over) or LEASE_GONE (deleted meanwhile with its endpoint or
 * integration: nothing to settle), and nothing is written. Returns a store
 * error when the outcome could not be recorded. */
static int settle(integ_ctx *ctx, struct claimed *c, const char *holder, int err, const char *error,
                  json_object *summary, int *dead, int *state)
{
    *dead = 0;
    *state = LEASE_HELD;
    void *tx = NULL;
    json_object *cur = NULL;
    int rc = ig_tx_begin(ctx, 1, &tx);
    if (rc == INTEG_OK)
        rc = ig_store_get(ctx, tx, INTEG_KIND_WEBHOOK_EVENT, NULL, ig_json_str(c->ev, "id"), &cur);
    if (rc == INTEG_ENOTFOUND || (rc == INTEG_OK && !held_by(cur, holder))) {
        *state = rc == INTEG_ENOTFOUND ? LEASE_GONE : LEASE_LOST;
        rc = ig_tx_end(ctx, tx, 1, INTEG_OK);
        json_object_put(cur);
        return rc;
    }
    int64_t now = ig_ctx_now_ms(ctx);
    char at[32];
    ig_rfc3339(at, now, 0);
    if (rc == INTEG_OK) {
        int64_t attempts = ig_json_int(cur, "attempts", 1);
        int64_t max = webhook_opt(ctx, "max_attempts", DEFAULT_MAX_ATTEMPTS);
        if (err == INTEG_OK) {
            set_status(cur, "processed");
            json_object_object_add(cur, "processed_at", json_object_new_string(at));
            json_object_object_add(cur, "result", json_object_get(summary));
        } else if (attempts >= max) {
            mark_dead(cur, error, err);
            *dead = 1;
        } else {
            /* Exponential backoff with full jitter: 30 s, 60 s, ... capped at 1 h. */
            int64_t cap = 30000LL << (attempts - 1 < 7 ? attempts - 1 : 7);
            if (cap > 3600000)
                cap = 3600000;
            int64_t delay = cap / 2 + (int64_t)(ig_ctx_clock(ctx)->random(ig_ctx_clock(ctx)->payload) % (uint32_t)(cap / 2 + 1));
            set_status(cur, "retry");
            json_object_object_add(cur, "next_attempt_at_ms", json_object_new_int64(now + delay));
            json_object_object_add(cur, "last_error", json_object_new_string(error));
            json_object_object_add(cur, "last_error_code", json_object_new_int(err));
        }
        rc = ig_store_put_blob(ctx, tx, INTEG_KIND_WEBHOOK_EVENT, cur, c->body, c->body_len, INTEG_PUT_UPDATE);
    }
    rc = ig_tx_end(ctx, tx, 1, rc);
    if (rc == INTEG_OK && *dead)
        emit_dead(ctx, cur);
    json_object_put(cur);
    return rc;
}

INTEG_API int integ_webhook_process(integ_ctx *ctx, int max_events, char **out_json)
{
    ig_err_clear();
    if (out_json)
        *out_json = NULL;
    IG_CHECK_ARG(ctx, "ctx");
    IG_CHECK_ARG(max_events > 0 && max_events <= 10000, "max_events (1..10000)");
    char holder[37];
    ig_ctx_new_id(ctx, holder, ig_now_ms());
    struct collect_ctx cc = {calloc((size_t)max_events, sizeof(struct claimed)), 0, (size_t)max_events};
    if (!cc.items)
        return ig_err(INTEG_ENOMEM, "out of memory");
    int rc = claim(ctx, holder, max_events, &cc);
    json_object *list = json_object_new_array();
    int64_t claimed = 0, ok = 0, failed = 0, dead = 0, lost = 0, gone = 0, errors = 0;
    ig_conn *conn = NULL; /* kept while events are of one integration */
    /* Once claimed, events are independent: one that is lost, deleted or
     * cannot be recorded is reported in the output, and the rest of the
     * batch is still handled. */
    for (size_t i = 0; rc == INTEG_OK && i < cc.n; i++) {
        struct claimed *c = &cc.items[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_get(ig_json_get(c->ev, "id")));
        json_object_object_add(o, "endpoint_id", json_object_get(ig_json_get(c->ev, "endpoint_id")));
        json_object_array_add(list, o);
        if (c->dead) {
            /* Dead-lettered by claim: its last attempt's lease expired. */
            json_object_object_add(o, "status", json_object_new_string("dead"));
            json_object_object_add(o, "error", json_object_get(ig_json_get(c->ev, "last_error")));
            dead++;
            continue;
        }
        claimed++;
        json_object *summary = json_object_new_object();
        /* Still ours, with a fresh lease? The events before it may have
         * taken longer than its lease, and another worker taken it over. */
        struct lease lk = {ctx, c, holder, LEASE_HELD, 1};
        int err = lease_renew(&lk);
        if (err == INTEG_OK && lk.state == LEASE_HELD)
            err = handle_event(ctx, c, &conn, summary, &lk);
        ig_err_saved error = {""};
        if (err) {
            ig_err_save(&error);
            /* A failure may have changed the integration (a token
             * refresh refused): the next event opens it afresh. */
            ig_conn_close(conn);
            conn = NULL;
        }
        int is_dead = 0, serr = INTEG_OK;
        if (lk.state == LEASE_HELD)
            serr = settle(ctx, c, holder, err, error.msg, summary, &is_dead, &lk.state);
        const char *status;
        if (lk.state == LEASE_LOST) {
            status = "lost";
            lost++;
        } else if (lk.state == LEASE_GONE) {
            status = "gone";
            gone++;
        } else if (serr) {
            /* Not recorded: the event stays processing under this call's
             * lease and is taken again when that expires, as after a crash. */
            status = "error";
            errors++;
            json_object_object_add(o, "error", json_object_new_string(integ_errmsg()));
            json_object_object_add(o, "code", json_object_new_int(serr));
        } else if (err) {
            status = is_dead ? "dead" : "retry";
            failed++;
            dead += is_dead;
            json_object_object_add(o, "error", json_object_new_string(error.msg));
        } else {
            status = "processed";
            ok++;
            json_object_object_add(o, "result", json_object_get(summary));
        }
        json_object_object_add(o, "status", json_object_new_string(status));
        json_object_put(summary);
    }
    ig_conn_close(conn);
    for (size_t i = 0; i < cc.n; i++) {
        json_object_put(cc.items[i].ev);
        free(cc.items[i].body);
    }
    free(cc.items);
    if (rc == INTEG_OK && out_json) {
        json_object *out = json_object_new_object();
        json_object_object_add(out, "claimed", json_object_new_int64(claimed));
        json_object_object_add(out, "processed", json_object_new_int64(ok));
        json_object_object_add(out, "failed", json_object_new_int64(failed));
        json_object_object_add(out, "dead", json_object_new_int64(dead));
        json_object_object_add(out, "lost", json_object_new_int64(lost));
        json_object_object_add(out, "gone", json_object_new_int64(gone));
        json_object_object_add(out, "errors", json_object_new_int64(errors));
        json_object_object_add(out, "events", json_object_get(list));
        rc = ig_json_to_string(out, out_json);
        json_object_put(out);
    }
    json_object_put(list);
    return rc;
}

/* ---- listing and replay ----------------------------------------------------- */

static json_object *public_event(json_object *ev)
{
    json_object *pub = json_object_new_object();
    static const char *const keep[] = {"id", "endpoint_id", "integration_id", "event_id", "event_type", "status",
                                       "attempts", "received_at", "processed_at", "last_error", "result", NULL};
    for (const char *const *k = keep; *k; k++)
        json_object_object_add(pub, *k, json_object_get(ig_json_get(ev, *k)));
    int64_t next = ig_json_int(ev, "next_attempt_at_ms", -1);
    const char *st = ig_json_str(ev, "status");
    if (next >= 0 && st && (!strcmp(st, "queued") || !strcmp(st, "retry"))) {
        char at[32];
        ig_rfc3339(at, next, 0);
        json_object_object_add(pub, "next_attempt_at", json_object_new_string(at));
    }
    return pub;
}

static int collect_public(void *payload, const char *json, size_t len, const unsigned char *blob, size_t blob_len)
{
    (void)blob;
    (void)blob_len;
    json_object *ev = ig_json_parse_len(json, len);
    if (!ev)
        return INTEG_ESTORE;
    json_object_array_add(payload, public_event(ev));
    json_object_put(ev);
    return 0;
}

INTEG_API int integ_webhook_events_list(integ_session *s, const char *filter_json, char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(out_json, "out_json");
    json_object *filter = NULL;
    if ((rc = ig_json_parse_object(filter_json, "filter_json", 1, &filter)))
        return rc;
    json_object *q = json_object_new_object(), *rows = json_object_new_array();
    static const char *const fields[] = {"endpoint_id", "integration_id", "status", NULL};
    static const char *const statuses[] = {"queued", "processing", "retry", "processed", "dead", NULL};
    rc = ig_json_filter_query(filter, fields, statuses, "must be one of queued, processing, retry, processed, dead", q);
    if (rc == INTEG_OK) {
        json_object_object_add(q, "tenant_id", json_object_new_string(s->tenant_id));
        void *tx = NULL;
        if ((rc = ig_tx_begin(s->ctx, 0, &tx)) == INTEG_OK)
            rc = ig_tx_end(s->ctx, tx, 1,
                           s->ctx->store->list(tx, INTEG_KIND_WEBHOOK_EVENT,
                                               json_object_to_json_string_ext(q, JSON_C_TO_STRING_PLAIN),
                                               collect_public, rows));
    }
    if (rc == INTEG_OK)
        rc = ig_json_to_string(rows, out_json);
    json_object_put(rows);
    json_object_put(q);
    json_object_put(filter);
    return rc;
}

INTEG_API int integ_webhook_event_replay(integ_session *s, const char *event_id)
{
    int rc = ig_session_enter(s, NULL);
    if (rc)
        return rc;
    IG_CHECK_ARG(event_id && *event_id, "event_id");
    if ((rc = ig_session_require_admin(s)))
        return rc;
    void *tx = NULL;
    struct collect_ctx cc = {calloc(1, sizeof(struct claimed)), 0, 1};
    if (!cc.items)
        return ig_err(INTEG_ENOMEM, "out of memory");
    if ((rc = ig_tx_begin(s->ctx, 1, &tx)) == INTEG_OK) {
        rc = s->ctx->store->get(tx, INTEG_KIND_WEBHOOK_EVENT, s->tenant_id, event_id, collect_event, &cc);
        if (rc == INTEG_ENOTFOUND)
            rc = ig_err(rc, "webhook event '%s' not found", event_id);
        const char *st = rc == INTEG_OK ? ig_json_str(cc.items[0].ev, "status") : NULL;
        if (rc == INTEG_OK && st && strcmp(st, "dead") && strcmp(st, "processed"))
            rc = ig_err(INTEG_ECONFLICT, "webhook event '%s' is %s: only dead or processed events are replayed", event_id, st);
        if (rc == INTEG_OK) {
            json_object *ev = cc.items[0].ev;
            /* As received: no outcome of the earlier attempts is kept. */
            set_status(ev, "queued");
            json_object_object_add(ev, "attempts", json_object_new_int(0));
            json_object_object_add(ev, "next_attempt_at_ms", json_object_new_int64(ig_ctx_now_ms(s->ctx)));
            rc = ig_store_put_blob(s->ctx, tx, INTEG_KIND_WEBHOOK_EVENT, ev, cc.items[0].body, cc.items[0].body_len, INTEG_PUT_UPDATE);
        }
        if (rc == INTEG_OK)
            rc = ig_audit(s->ctx, tx, s->tenant_id, s->user_id, "webhook_event.replay", "webhook_event", event_id, NULL);
        rc = ig_tx_end(s->ctx, tx, 1, rc);
    }
    if (cc.n) {
        json_object_put(cc.items[0].ev);
        free(cc.items[0].body);
    }
    free(cc.items);
    return rc;
}
