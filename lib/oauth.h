/* Internal: the OAuth 2.0 token endpoint and what the flows share
 * (doc/oauth.md). oauth.c runs the authorization-code flow
 * (integ_oauth_begin/complete/refresh); auth.c keeps tokens current for
 * the REST engine (refresh, client credentials, JWT bearer, sessions). */
#ifndef IG_OAUTH_H
#define IG_OAUTH_H

#include <json-c/json.h>

#include "ctx.h"
#include "engine.h"

/* Refresh a token this long before it expires. */
#define IG_TOKEN_SKEW_MS (5 * 60 * 1000)

/* An application/x-www-form-urlencoded body being built. It holds secrets:
 * ig_form_free wipes it. */
typedef struct ig_form {
    char *buf;
    size_t len, cap;
    int oom;
} ig_form;

void ig_form_add(ig_form *f, const char *name, const char *value);
void ig_form_free(ig_form *f);

/* Template values for auth templates: {config.x}, {credentials.x},
 * {session.expiration_date}. Any member may be NULL. */
typedef struct ig_auth_vars {
    json_object *config;
    json_object *credentials;
    json_object *session;
} ig_auth_vars;

json_object *ig_auth_lookup(void *payload, const char *ns, const char *name);

/* Render a template; *out NULL (and INTEG_OK) when a placeholder is unset. */
int ig_auth_render(const char *tmpl, const ig_auth_vars *vars, char **out);

/* Render an object of string templates (token_params, token_headers, a
 * login form) into *out, a new object (owned, also on error: wipe it),
 * leaving out members whose placeholders are unset and non-strings. */
int ig_auth_render_map(json_object *map, const ig_auth_vars *vars, json_object **out);

/* Add the rendered members of such an object to a form. */
int ig_form_add_rendered(ig_form *f, json_object *map, const ig_auth_vars *vars);

/* The definition method's endpoint `field` ("authorize_url", "token_url"):
 * the context's base_url_overrides.<key>.<field> when set, else the
 * manifest's template rendered over vars. malloc'd. */
int ig_oauth_endpoint(integ_ctx *ctx, json_object *definition, json_object *method, const char *field,
                      const ig_auth_vars *vars, char **out);

/* The manifest's scopes (plus `extra`, may be NULL) rendered and joined
 * with the method's scope_separator; NULL when there are none. */
int ig_oauth_scope(json_object *method, json_object *extra, const ig_auth_vars *vars, char **out);

/* The platform app credentials of a definition ({client_id,
 * client_secret, ...}), opened; INTEG_EINVAL when none are set. */
int ig_oauth_app_credentials(integ_ctx *ctx, json_object *definition, json_object **out);

/* One token-endpoint call. */
typedef struct ig_token_call {
    const char *what;          /* "hubspot-crm token request": prefixes messages */
    const char *url;           /* the token endpoint */
    const char *client_auth;   /* client_secret_post, client_secret_basic, private_key_jwt,
                                  none; NULL: private_key_jwt when there is a
                                  private_key and no client_secret, else
                                  client_secret_post */
    const char *client_id;
    const char *client_secret;
    const char *private_key;   /* PEM, for private_key_jwt */
    const char *key_id;        /* kid for private_key_jwt (may be NULL) */
    json_object *headers;      /* extra request headers, rendered (may be NULL) */
} ig_token_call;

/* POST `form` (the grant's fields) to the token endpoint with the client
 * authentication of `call`. INTEG_OK with the parsed JSON object in *out
 * (owned; wipe with ig_json_wipe_put). An OAuth error response is
 * INTEG_EAUTH (4xx) naming the error and its description, and its error
 * code is copied to oauth_error (e.g. "invalid_grant"); another 5xx
 * INTEG_EREMOTE; no response INTEG_ENETWORK.
 * Sent as IG_HTTP_NON_IDEMPOTENT: a token request can consume what it
 * carries (a rotating refresh token, a one-time code, a JWT's jti), so it
 * is sent again only when it cannot have reached the server (refused
 * connection, nothing written, 429, 503); after a timeout, a reset or
 * another 5xx the error is returned at once and the grant is not re-sent. */
int ig_oauth_token_post(integ_ctx *ctx, const ig_token_call *call, ig_form *form, json_object **out,
                        char oauth_error[64]);

/* A token endpoint response read into credentials, for every flow that
 * gets one (authorization code, refresh, client credentials, JWT bearer):
 * access_token, refresh_token (kept from `prev` when the response has
 * none: no rotation), expires_at (RFC 3339, now_ms + expires_in; dropped
 * when the response has no expiry), token_type and scope (kept from prev
 * when absent) and the method's token_extras (kept from prev when absent).
 * `prev` may be NULL. *expires_at_ms (may be NULL) gets the expiry in ms,
 * 0 when none. INTEG_EREMOTE naming `what` when the response has no
 * access_token. */
int ig_oauth_token_creds(const char *what, json_object *method, json_object *resp, json_object *prev, int64_t now_ms,
                         json_object **out, int64_t *expires_at_ms);


/* Seal a JSON object into rec[field] ("credentials_sealed", "token_sealed")
 * under the purpose that field names. */
int ig_oauth_seal_into(integ_ctx *ctx, json_object *rec, const char *field, json_object *value);

/* Open rec[field] (NULL when absent). */
int ig_oauth_open_from(integ_ctx *ctx, json_object *rec, const char *field, json_object **out);

/* The credentials a token renewal started from: the record's
 * credentials_sealed as it was read and those credentials opened (either
 * may be NULL when the record had none). */
typedef struct ig_creds_seen {
    const char *sealed;
    json_object *creds;
} ig_creds_seen;

/* Returned (a positive value, never by a public call) by the writes that
 * compare-and-set on the credentials (ig_oauth_needs_reauth, auth.c's
 * saves) when the record's credentials are no longer those `seen`: someone
 * set or re-authorised them meanwhile. Nothing was written; the caller
 * re-reads the record and adopts its credentials. */
#define IG_CREDS_CHANGED 1

/* 1 when rec's credentials are still `seen`: the same sealed text, or
 * (re-sealed by a master-key rotation) the same credentials once opened. */
int ig_oauth_creds_unchanged(integ_ctx *ctx, json_object *rec, const ig_creds_seen *seen);

/* Mark an integration needs_reauth (status, last_error, audit) and emit
 * "integration.needs_reauth". An integration a person paused stays
 * "paused" (last_error, the audit entry and the event are written all the
 * same). `rejected_fp` (may be NULL) is the fingerprint of the refresh
 * token the provider rejected: until the integration is re-authorised no
 * other thread or process tries it again. `seen` (may be NULL: no check)
 * are the credentials that were rejected: when the record's are others
 * now (set or re-authorised meanwhile) nothing is written, no event is
 * emitted and IG_CREDS_CHANGED is returned. Otherwise returns `code` with
 * `reason` as the message. */
int ig_oauth_needs_reauth(integ_ctx *ctx, const char *tenant_id, const char *integration_id, int code,
                          const char *reason, const char *rejected_fp, const ig_creds_seen *seen);

/* A short fingerprint (hex) of a secret, to recognise it without keeping it. */
void ig_oauth_fingerprint(const char *secret, char out[33]);

/* The fingerprint of secret + "\n" + more (more NULL: as above). */
void ig_oauth_fingerprint2(const char *secret, const char *more, char out[33]);

/* Force a new token for an open connection (integ_oauth_refresh). */
int ig_auth_force(ig_conn *c);

#endif
