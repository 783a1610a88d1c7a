/*
 * libintegrations — connect a host application's tenants to the business
 * systems they already use (ERP, CRM, accounting, e-commerce, email).
 *
 * This is the umbrella header: it declares the whole core API and includes
 * the extension-point headers. Conventions that hold for every function:
 *
 *  - Fallible calls return int: INTEG_OK (0) or a negative INTEG_E* code.
 *    integ_errmsg() then returns the calling thread's one-line message,
 *    naming the field, header or step that failed.
 *  - Out-parameters come first in constructors (integ_ctx_open(&ctx, ...)),
 *    the handle first elsewhere. They are written only on success and set to
 *    NULL on failure.
 *  - Structured values cross as UTF-8 JSON text. Every char ** result is
 *    owned by the caller and released with integ_free().
 *  - Timestamps in JSON are RFC 3339 UTC ("2025-01-23T10:00:00Z"); ids are
 *    UUIDv7 strings; list calls return arrays, newest first, and accept
 *    {"limit": N, "offset": N} in their filter.
 *  - An integ_ctx may be used from many threads at once; an integ_session
 *    belongs to one thread at a time.
 *  - Secrets (credentials, tokens, webhook secrets) never come out of a read
 *    call and are stored sealed.
 *
 * See doc/conventions.md for the long form.
 */
#ifndef INTEGRATIONS_H
#define INTEGRATIONS_H

#include <stddef.h>
#include <stdint.h>

#include "integrations/adapter.h"
#include "integrations/common.h"
#include "integrations/entity_store.h"
#include "integrations/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Library
 * ---------------------------------------------------------------------- */

/*
 * The version of these headers (compile time); integ_version() is the
 * version of the library actually loaded (run time). MAJOR.MINOR names the
 * newest symbol version node (INTEGRATIONS_0.4 -> 0.4): a host that needs a
 * function added in INTEGRATIONS_0.N can check
 *   #if INTEG_VERSION_MAJOR > 0 || INTEG_VERSION_MINOR >= N
 * Kept equal to the project version in meson.build by test_version.
 */
#define INTEG_VERSION_MAJOR 0
#define INTEG_VERSION_MINOR 4
#define INTEG_VERSION_PATCH 0
#define INTEG_VERSION_STRING "0.4.0"

/** The library version, "MAJOR.MINOR.PATCH". Static storage; never free. */
INTEG_API const char *integ_version(void);

/** A fixed English text for an INTEG_E* code. Static storage; never free. */
INTEG_API const char *integ_strerror(int code);

/**
 * The calling thread's message for its last failed call: one line, naming
 * the field, header or step. Valid until the thread's next library call.
 * Returns "" when no call has failed on this thread.
 */
INTEG_API const char *integ_errmsg(void);

/** Release memory returned by the library (any char ** result). NULL is fine. */
INTEG_API void integ_free(void *p);

/**
 * Make a new master key: 32 random bytes, standard base64 (44 chars).
 * Store it where the host keeps secrets and pass it as the "master_key"
 * option or the INTEG_MASTER_KEY environment variable.
 * @param out_b64  receives the key; free with integ_free().
 */
INTEG_API int integ_generate_master_key(char **out_b64);

/* ------------------------------------------------------------------------
 * Context: one per store
 * ---------------------------------------------------------------------- */

/**
 * Open a context on the built-in SQLite store.
 *
 * @param out           receives the context; close with integ_ctx_close().
 * @param options_json  NULL or a JSON object, all keys optional:
 *   "store":           "sqlite:PATH" (default "sqlite:./integrations.db") or
 *                      "sqlite::memory:" (private to this context)
 *   "durability":      "normal" (default): a committed write (a webhook's
 *                      202, a synced page) survives a crash of the process,
 *                      and an OS crash or power loss may lose the last
 *                      commits, never corrupt (SQLite WAL, synchronous=
 *                      NORMAL; a file store appends received webhook
 *                      events to PATH-inbox, with the same guarantee, and
 *                      moves them into the queue in batches: every
 *                      transaction sees them); "full": it survives those
 *                      too (every commit syncs the WAL: slower per commit,
 *                      which concurrent webhook receivers share)
 *   "master_key":      base64 of 32 bytes (see integ_generate_master_key)
 *   "master_key_file": path of a file holding that base64 text
 *   "adapters_dir":    a directory of extra *.json manifests (override the
 *                      built-in ones with the same key)
 *   "http":            {"timeout_ms", "connect_timeout_ms", "max_retries",
 *                      "ca_file", "proxy", "user_agent",
 *                      "allow_private_networks": false}
 *   "base_url_overrides": {"<definition key>": URL or {"api", "authorize_url",
 *                      "token_url"}} (host-level, trusted)
 *   "webhook":         {"base_url", "tolerance_s": 300, "max_body_bytes": 1048576,
 *                      "max_attempts": 8, "rotation_grace_s": 86400,
 *                      "endpoint_cache_ms": 1000 (changes made through another
 *                      context or process reach receiving within this time)}
 * Without "master_key"/"master_key_file" the key comes from the environment
 * variable INTEG_MASTER_KEY. With none at all opening fails with INTEG_EINVAL:
 * there is never a built-in key.
 */
INTEG_API int integ_ctx_open(integ_ctx **out, const char *options_json);

/**
 * Open a context on a host-supplied store (see integrations/store.h). The
 * vtable must stay valid until the store's close member has been called;
 * store_data is passed to it unchanged. On success the context owns
 * store_data and calls store->close(store_data) when it is finally closed;
 * on failure the caller still owns it. "store" in options_json is ignored;
 * "durability" applies to the built-in SQLite store (integ_store_sqlite_new)
 * only, and is INTEG_EINVAL with any other store, which decides its own.
 */
INTEG_API int integ_ctx_open_with_store(integ_ctx **out, const integ_store *store,
                                        void *store_data, const char *options_json);

/**
 * Close a context. Safe while sessions are still open (as garbage-collected
 * bindings finalise in any order): the context is then only marked closed,
 * new sessions are refused, and the real close happens when the last
 * session is closed. NULL is fine.
 */
INTEG_API void integ_ctx_close(integ_ctx *ctx);

/**
 * The host's permission check: return 1 to allow `action` on `resource`
 * ("integration", "admin" for every write) for this tenant and user.
 * When set it replaces the session's roles entirely.
 */
typedef int (*integ_permission_cb)(void *payload, const char *tenant_id, const char *user_id,
                                   const char *resource, const char *action);

/** Set or clear (cb = NULL) the permission callback. */
INTEG_API int integ_ctx_set_permission_cb(integ_ctx *ctx, integ_permission_cb cb, void *payload);

/**
 * Notifications: called with one JSON event {"type", "at", "tenant_id",
 * "integration_id", ...} on the thread where it happened. Types:
 * "sync.completed" / "sync.failed" after every sync that was not canceled
 * (manual, scheduled, webhook-applied), "conflict.detected",
 * "integration.needs_reauth" {reason}, "webhook.dead" {event_id,
 * endpoint_id, attempts, last_error} — doc/sync.md lists the fields. The
 * callback must not call back into the library with the same session.
 */
typedef void (*integ_event_cb)(void *payload, const char *event_json);

/** Set or clear (cb = NULL) the event callback. */
INTEG_API int integ_ctx_set_event_cb(integ_ctx *ctx, integ_event_cb cb, void *payload);

/**
 * Re-seal every stored secret (credentials, app credentials, tokens,
 * webhook secrets) under a new master key, in one store transaction; on
 * success the context uses the new key. On any failure nothing changes.
 */
INTEG_API int integ_ctx_rotate_master_key(integ_ctx *ctx, const char *new_key_b64);

/* ------------------------------------------------------------------------
 * Sessions: who is acting
 * ---------------------------------------------------------------------- */

/**
 * Open a session for one user of one tenant.
 * @param roles_json  NULL or a JSON array of role strings. "admin" (or the
 *                    permission string "integration:admin") may write;
 *                    anyone may read their own tenant's objects. A
 *                    permission callback, when set, overrides the roles.
 * Tenant and user ids are 1..128 bytes of printable ASCII without spaces.
 * A session keeps its context alive; close it with integ_session_close().
 */
INTEG_API int integ_session_open(integ_session **out, integ_ctx *ctx, const char *tenant_id,
                                 const char *user_id, const char *roles_json);

/** Close a session (NULL is fine). The last session of a closed context closes it. */
INTEG_API void integ_session_close(integ_session *s);

/* ------------------------------------------------------------------------
 * Definitions: the catalog of external systems (platform level)
 * ---------------------------------------------------------------------- */

/**
 * List definitions, sorted by category then key.
 * @param filter_json  NULL or {"category": "crm", "limit", "offset"}
 * @param out_json     a JSON array of definitions
 *                     {id, key, name, category, auth_type, auth_types,
 *                      config_schema, capabilities, entities, base_url,
 *                      rate_limit, webhook, has_app_credentials, ...}
 */
INTEG_API int integ_definitions_list(integ_ctx *ctx, const char *filter_json, char **out_json);

/**
 * One definition by key ("hubspot-crm") or id. Unknown: INTEG_ENOTFOUND.
 * Both calls are cheap to repeat: the context keeps each definition's
 * output by the digest of its stored record, so a definition read again
 * is not parsed and printed again, and a change (through any context) is
 * seen at once.
 */
INTEG_API int integ_definition_get(integ_ctx *ctx, const char *key, char **out_json);

/**
 * Add or replace a definition from a manifest (doc/manifest.md). A bad
 * manifest is INTEG_EINVAL with the JSON path of the offending field.
 * Replacing keeps the definition's id. A registered definition stays in
 * the store across context opens: the built-in with the same key does not
 * replace it; an adapters_dir file with the same key does, at each open
 * (precedence: doc/manifest.md).
 * @param out_json  NULL or receives the stored definition.
 */
INTEG_API int integ_definition_register(integ_ctx *ctx, const char *manifest_json, char **out_json);

/**
 * Set the platform's OAuth app credentials for a definition:
 * {"client_id": "...", "client_secret": "..."} (plus provider extras). Stored
 * sealed; reads show only "has_app_credentials".
 */
INTEG_API int integ_definition_set_app_credentials(integ_ctx *ctx, const char *key,
                                                   const char *creds_json);

/* ------------------------------------------------------------------------
 * Tenant integrations: one tenant's connection to one system
 * ---------------------------------------------------------------------- */

/**
 * Create an integration (needs integration:admin).
 * @param request_json  {"integration_definition_id": KEY or ID, "name",
 *                       "auth_type" (optional: inferred from credentials),
 *                       "credentials": {...}, "config": {...},
 *                       "status": "active"|"paused" (default "active")}
 *   config is validated against the definition's config_schema, with
 *   defaults applied; credentials against the auth method's schema.
 * @param out_json  the integration: {id, tenant_id, integration_definition_id,
 *   integration_definition_key, name, category, auth_type, config, status,
 *   last_sync_at, created_at, updated_at, has_credentials}
 */
INTEG_API int integ_integration_create(integ_session *s, const char *request_json, char **out_json);

/** One integration of the session's tenant; another tenant's id is INTEG_ENOTFOUND. */
INTEG_API int integ_integration_get(integ_session *s, const char *id, char **out_json);

/**
 * The session tenant's integrations, newest first.
 * @param filter_json  NULL or {"status", "category", "integration_definition_id",
 *                      "limit", "offset"}
 */
INTEG_API int integ_integrations_list(integ_session *s, const char *filter_json, char **out_json);

/**
 * Change name, config (merged onto the current config, then validated) or
 * status ("active"|"paused"). Needs integration:admin.
 */
INTEG_API int integ_integration_update(integ_session *s, const char *id, const char *patch_json,
                                       char **out_json);

/** Replace the credentials (validated, then sealed). Needs integration:admin. */
INTEG_API int integ_integration_set_credentials(integ_session *s, const char *id,
                                                const char *creds_json);

/**
 * Delete an integration with its mappings, webhook endpoints and events,
 * sync logs, conflicts, entity links and checkpoints, in one transaction;
 * its sealed secrets are wiped. Needs integration:admin.
 */
INTEG_API int integ_integration_delete(integ_session *s, const char *id);

/* ------------------------------------------------------------------------
 * Audit
 * ---------------------------------------------------------------------- */

/**
 * The session tenant's audit trail, newest first: [{id, tenant_id, user_id,
 * action, object_type, object_id, at, details}]. No secret is ever in it.
 * @param filter_json  NULL or {"action", "object_id", "user_id", "limit", "offset"}
 */
INTEG_API int integ_audit_list(integ_session *s, const char *filter_json, char **out_json);


/* ------------------------------------------------------------------------
 * Webhooks (doc/webhooks.md)
 * ---------------------------------------------------------------------- */

/**
 * Create an endpoint for an integration (needs integration:admin).
 * @param request_json  NULL or {"scheme" (override the definition's),
 *   "events": [types or "prefix*" patterns to queue; empty = all],
 *   "secret" (when the provider dictates it: Shopify app secret, SendGrid
 *   public key, ...), "active": true, "description"}
 * @param out_json  {id, integration_id, url (webhook.base_url/<id>), scheme,
 *   events, active, secret, ...}. The id carries 128 random bits. The secret
 *   ("whsec_..." when generated) is shown here and by rotate_secret only;
 *   it is stored sealed.
 * Without "secret", the definition's manifest says where it comes from
 * (webhook.secret_source), also when "scheme" names the manifest's own
 * scheme. Another "scheme" gets a generated secret only if it verifies with
 * one (standard, github, github-sha1, slack, stripe, shopify, woocommerce,
 * twilio); for the others (standard-ed25519, sendgrid, basic, hubspot-v1..3,
 * msgraph) it is INTEG_EINVAL "request_json.secret: required for scheme
 * '...' (...)". See doc/webhooks.md.
 */
INTEG_API int integ_webhook_endpoint_create(integ_session *s, const char *integration_id, const char *request_json,
                                            char **out_json);

/** The integration's endpoints (never their secrets). */
INTEG_API int integ_webhook_endpoints_list(integ_session *s, const char *integration_id, char **out_json);

/**
 * Change {"events", "active", "description", "scheme"}, or set a
 * provider-dictated {"secret"} (the old one keeps verifying for the grace
 * period, option webhook.rotation_grace_s, default 24 h). Needs integration:admin.
 * An endpoint whose secret_source is "app_secret" verifies with the app's
 * client secret as it is now: {"secret"} alone is INTEG_EINVAL
 * "patch_json.secret: ..." (change it with
 * integ_definition_set_app_credentials).
 * A new "scheme" applies create's rule to the secret: with "secret", that
 * one (source "given"); without, the current secret is kept when it is of
 * the source create would give that scheme, else a scheme that verifies
 * with a generated secret gets one, shown once in out_json ("secret"), and
 * any other is INTEG_EINVAL "patch_json.secret: required for scheme '...'"
 * with nothing changed. A secret replaced by a scheme change does not keep
 * verifying (has_previous_secret false). Events already queued keep the
 * "events" filter they were received under (doc/webhooks.md).
 */
INTEG_API int integ_webhook_endpoint_update(integ_session *s, const char *endpoint_id, const char *patch_json,
                                            char **out_json);

/**
 * A new secret of the endpoint's source (generated, client_state or
 * basic_auth), shown once in out_json; the old one verifies for the grace
 * period. Needs integration:admin. INTEG_EINVAL for an "app_secret"
 * endpoint (rotate the app's secret with
 * integ_definition_set_app_credentials: the endpoint follows it), a
 * "given" one (set the provider's new secret with
 * integ_webhook_endpoint_update {"secret"}), and one whose scheme does not
 * verify with a secret of its source (a generated secret under sendgrid).
 */
INTEG_API int integ_webhook_endpoint_rotate_secret(integ_session *s, const char *endpoint_id, char **out_json);

/** Delete an endpoint and its queued events. Needs integration:admin. */
INTEG_API int integ_webhook_endpoint_delete(integ_session *s, const char *endpoint_id);

/**
 * Handle one HTTP delivery to endpoint `endpoint_id` (the last path segment
 * of its URL). Returns INTEG_OK with the status and body the host sends:
 *   202 accepted — verified and durably queued before this returns
 *       (committed; or, on a SQLite file with durability "normal",
 *       appended to its inbox, which every later transaction moves into
 *       the queue first: see the "durability" option); body
 *       {"status":"accepted","id"};
 *   200 duplicate (already queued), ignored (unsubscribed event type) or a
 *       handshake (Graph validationToken echoed as text/plain, WooCommerce
 *       ping, Slack url_verification challenge);
 *   401 failed verification (never queued); 404 unknown or inactive
 *       endpoint (the same answer for both); 413 body over
 *       webhook.max_body_bytes (default 1 MiB).
 * After a 4xx answer integ_errmsg() says why, for the host's logs only.
 * An error code is returned only when no answer could be made (store down).
 *
 * Thread-safe, and meant to be called from many HTTP server threads at
 * once: concurrent calls share commits (group commit). One of them commits
 * every event queued by the others in one transaction while they wait
 * (when the calls outnumber the CPUs, it first waits up to 0.2 ms for the
 * ones it expects); each call still returns its own answer, and a 202 still means that the transaction
 * holding its event has committed. If a shared commit fails, each event is
 * committed alone, so only the call whose event fails returns the error
 * (its message in this thread's integ_errmsg()). A single caller commits
 * alone, as without concurrency. With the inbox each call appends its own
 * event (under the inbox's lock; nothing to share), with the same answers.
 */
INTEG_API int integ_webhook_receive(integ_ctx *ctx, const char *endpoint_id, const char *method, const char *url,
                                    const char *const *header_names, const char *const *header_values, size_t n_headers,
                                    const unsigned char *body, size_t body_len, int *out_status, char **out_body);

/**
 * Process up to max_events due events (any tenant): each is leased (two
 * workers never take the same one; a dead worker's lease expires after
 * 60 s), applied through the integration's mapping into the local entity
 * store (or the changed record is fetched from the API, per the manifest's
 * webhook topics), and marked processed with a sync log entry (trigger
 * "webhook"). A failure retries with exponential backoff; after
 * webhook.max_attempts (default 8) the event is dead and "webhook.dead" is
 * emitted. An event whose lease expired on its last attempt (its worker
 * kept dying) is dead-lettered the same way instead of being taken again.
 *
 * The lease is renewed (checked to be still this call's, and extended by
 * 60 s) before an event is handled, before each record it fetches and
 * before its records are applied, so an event another worker took over
 * after this call's lease ran out is dropped unapplied and reported "lost":
 * each event's records are applied once. See doc/webhooks.md, "Leases".
 *
 * Events are independent once claimed: one that is lost, deleted meanwhile
 * ("gone": its endpoint or integration was deleted) or whose outcome the
 * store fails to record ("error", taken again when its lease expires) is
 * reported and the others are still handled. Returns INTEG_OK whenever the
 * claim succeeded; an error only when the claim failed (nothing changed)
 * or out of memory.
 *
 * out_json: {claimed (events leased by this call), processed, failed
 * (recorded retry or dead), dead (dead-lettered by this call, including
 * expired last leases, which are not in claimed), lost, gone, errors,
 * events: [{id, endpoint_id, status (processed | retry | dead | lost |
 * gone | error), result (processed) | error (retry, dead, error), code
 * (error)}]}.
 */
INTEG_API int integ_webhook_process(integ_ctx *ctx, int max_events, char **out_json);

/**
 * The session tenant's webhook events, newest first: [{id, endpoint_id,
 * integration_id, event_id, event_type, status (queued | processing | retry
 * | processed | dead), attempts, received_at, processed_at, last_error,
 * next_attempt_at}].
 * @param filter_json  NULL or {"endpoint_id", "integration_id", "status", "limit", "offset"}
 */
INTEG_API int integ_webhook_events_list(integ_session *s, const char *filter_json, char **out_json);

/** Queue a dead (or processed) event again. Needs integration:admin. */
INTEG_API int integ_webhook_event_replay(integ_session *s, const char *event_id);

/**
 * Verify one delivery's signature, statelessly (usable without a context).
 * @param scheme   "standard", "standard-ed25519", "github", "github-sha1",
 *                 "slack", "stripe", "shopify", "woocommerce", "hubspot-v1",
 *                 "hubspot-v2", "hubspot-v3", "sendgrid", "twilio", "basic",
 *                 "msgraph" (doc/webhooks.md has each provider's rule)
 * @param secret   the endpoint's secret; several separated by one space
 *                 (during a rotation any one verifies)
 * @param method, url  the request line as received (some schemes sign them)
 * @param header_names, header_values, n_headers  the request headers (names
 *                 match case-insensitively)
 * @param body, body_len  the raw body, byte for byte
 * @param now_unix  0: the current time
 * @param tolerance_s  0: the scheme's default (300 s); negative: skip the
 *                 timestamp check (replaying recorded deliveries)
 * @return INTEG_OK, INTEG_ESIGNATURE, INTEG_EREPLAY (stale timestamp) or
 *         INTEG_EINVAL (malformed or missing header, named in the message).
 *         Comparisons are constant time.
 */
INTEG_API int integ_webhook_verify(const char *scheme, const char *secret, const char *method, const char *url,
                                   const char *const *header_names, const char *const *header_values,
                                   size_t n_headers, const unsigned char *body, size_t body_len, int64_t now_unix,
                                   int tolerance_s);

/* ------------------------------------------------------------------------
 * OAuth 2.0 (doc/oauth.md)
 * ---------------------------------------------------------------------- */

/**
 * Start an authorization-code flow ("Connect"). Needs integration:admin.
 * @param request_json  {"integration_definition_id": KEY, "redirect_uri",
 *   "name"?, "config"?, "scopes"? (extra to the manifest's), "integration_id"?
 *   (re-authorise an existing integration)}
 * @param out_json  {"authorize_url", "state", "expires_at"}: send the user to
 *   authorize_url; the provider redirects to redirect_uri with code and state.
 */
INTEG_API int integ_oauth_begin(integ_session *s, const char *request_json, char **out_json);

/**
 * Finish the flow from the callback's query: {"state", "code"} or
 * {"state", "error", "error_description"}. The state must exist, be
 * unexpired and is consumed (single use). The code is exchanged (with the
 * PKCE verifier), the tokens are sealed, and the integration is created
 * (or its credentials replaced) with status "active".
 * @param out_json  the integration, as integ_integration_get shows it.
 */
INTEG_API int integ_oauth_complete(integ_ctx *ctx, const char *callback_json, char **out_json);

/** Force a token refresh now (single-flight across threads and processes). */
INTEG_API int integ_oauth_refresh(integ_session *s, const char *integration_id);

/* ------------------------------------------------------------------------
 * Mappings: local entity <-> remote entity (doc/mapping.md)
 * ---------------------------------------------------------------------- */

/**
 * Create or replace the integration's mapping for a remote entity (one
 * mapping per source_entity; putting another replaces it, keeping its id).
 * Needs integration:admin.
 * @param mapping_json  {"source_entity": "contacts" (an entity of the
 *   definition), "target_entity": "contacts" (a local entity), "field_map":
 *   {"<local path>": "<remote path>"}, "transform_rules": [...],
 *   "required": [...], "reverse": {...}}. Validated when saved: an unknown
 *   rule or bad path is INTEG_EINVAL naming it.
 * @param out_json  NULL or the stored mapping {id, integration_id, ...}.
 */
INTEG_API int integ_mapping_put(integ_session *s, const char *integration_id, const char *mapping_json,
                                char **out_json);

/** The integration's mappings (a JSON array). */
INTEG_API int integ_mappings_list(integ_session *s, const char *integration_id, char **out_json);

/** Delete a mapping (the manifest's default mapping applies again). Needs integration:admin. */
INTEG_API int integ_mapping_delete(integ_session *s, const char *mapping_id);

/**
 * Preview a mapping on one record without writing anything.
 * @param direction  "pull" (remote record -> local data) or "push".
 * @param out_json   the mapped record; a record that fails mapping is
 *                   INTEG_EMAPPING naming the field.
 */
INTEG_API int integ_mapping_apply(integ_session *s, const char *mapping_id, const char *direction,
                                  const char *record_json, char **out_json);

/* ------------------------------------------------------------------------
 * Sync
 * ---------------------------------------------------------------------- */

/**
 * Progress of a running sync, once per committed page: {integration_id,
 * entity, pages, records_processed, records_created, records_updated,
 * records_skipped, records_failed, elapsed_ms, records_per_second}.
 * Return non-zero to cancel: the sync stops after that page with status
 * "canceled" (what was committed stays; the next run resumes from it).
 */
typedef int (*integ_progress_cb)(void *payload, const char *progress_json);

/**
 * Run a sync of one entity now, on the calling thread (it blocks on the
 * network; the built-in engine fetches up to two pages ahead on a helper
 * thread it joins before returning). Needs integration:admin.
 * @param request_json {"entity": "contacts", "direction": "pull",
 *   "filter": {"modified_since": RFC3339}, "full": false, "dry_run": false}.
 *   Incremental by default from the last completed run's high-water mark;
 *   "full" re-reads everything (unchanged records are still skipped by
 *   their payload hash). An interrupted run resumes from its checkpoint.
 *   Only one sync per integration runs at a time: a second one is
 *   INTEG_ECONFLICT.
 * @param cb, payload  progress callback (may be NULL).
 * @param out_json     the result, as its sync log entry: {sync_log_id,
 *   integration_id, entity, sync_type, trigger, status (success | partial |
 *   error | canceled), records_processed, records_created, records_updated,
 *   records_skipped, records_failed, conflicts, errors: [{record, code,
 *   message}], started_at, completed_at, user_id}. Written on success and
 *   on cancel (with INTEG_ECANCELED); on other failures the log has it.
 */
INTEG_API int integ_sync(integ_session *s, const char *integration_id, const char *request_json,
                         integ_progress_cb cb, void *payload, char **out_json);

/**
 * The integration's sync conflicts, newest first: [{id, integration_id,
 * entity, local_entity, local_id, external_id, local, remote, base, fields,
 * strategy, status (open | resolved), resolution, resolved_by, created_at,
 * resolved_at}]. Conflicts resolved by a strategy are kept too, with
 * resolved_by "strategy".
 * @param filter_json  NULL or {"status", "entity", "limit", "offset"}
 */
INTEG_API int integ_conflicts_list(integ_session *s, const char *integration_id, const char *filter_json,
                                   char **out_json);

/**
 * Resolve an open conflict (strategy "manual"): {"choose": "local"} (the
 * local record as it is now), {"choose": "remote"} (the remote version seen
 * when the conflict was found) or {"data": {...}} (merged by hand). The
 * choice is written to both sides and the record syncs normally again.
 * The mapping's field policies hold as in a sync: the remote (unless
 * "remote" was chosen) gets exactly what a push would send, through the
 * entity's update request, so "always_remote" and "dont_sync" fields never
 * reach it; locally an "always_remote" field keeps the remote value, and
 * choosing "remote" keeps the local value of "always_local" and "dont_sync"
 * fields (and of "prefer_remote_unless_blank" ones the remote has blank).
 * A refused remote write changes nothing: the conflict stays open. Needs
 * integration:admin. See doc/sync.md.
 */
INTEG_API int integ_conflict_resolve(integ_session *s, const char *conflict_id, const char *resolution_json);

/**
 * Run what is due, from a worker loop or a timer: the scheduled syncs of
 * active integrations, and of those in "error" (the last sync failed for
 * another reason than credentials: retried each interval, active again on
 * success), with config auto_sync (every config sync_interval
 * seconds, +-10% jitter, persisted as the integration's next run; a run
 * already going is skipped), each entity of config.entities (else every
 * listable entity) pulled with trigger "schedule"; then up to the
 * remaining budget of queued webhook events (integ_webhook_process).
 * Safe to call from several processes: a due integration is claimed in a
 * transaction. out_json: {"syncs": [{tenant_id, integration_id, entity,
 * status, sync_log_id | code, error}], "webhooks": {...}}. A claimed
 * integration whose run cannot start (its definition or the store cannot
 * be read) is one entry without entity, status "error" with code and
 * error, and is due again at once.
 * @param max_jobs  at most this many integrations are synced (1..10000)
 */
INTEG_API int integ_run_due(integ_ctx *ctx, int max_jobs, char **out_json);

/**
 * The integration's sync log entries, newest first.
 * @param filter_json  NULL or {"entity", "status", "limit", "offset"}
 */
INTEG_API int integ_sync_logs(integ_session *s, const char *integration_id, const char *filter_json,
                              char **out_json);

/**
 * Make the definition's cheap authenticated call with the integration's
 * credentials. Returns INTEG_OK with {"success": bool, "message": the real
 * reason on failure, "code", "http_status"}; an error code only when the
 * call could not be attempted (unknown id, ...).
 */
INTEG_API int integ_integration_test(integ_session *s, const char *id, char **out_json);

/* ------------------------------------------------------------------------
 * Local entities (the built-in entity store, or the host's: entity_store.h)
 * ---------------------------------------------------------------------- */

/**
 * Install a host entity store (NULL restores the built-in one). The vtable
 * must outlive the context.
 */
INTEG_API int integ_ctx_set_entity_store(integ_ctx *ctx, const integ_entity_store *es, void *payload);

/**
 * Records of a local entity ("contacts", ...), most recently updated first.
 * @param filter_json  NULL or {"updated_since": RFC3339, "include_deleted":
 *                     false, "limit", "offset"}
 * A record reads {id, entity, data, updated_at, deleted, version}.
 */
INTEG_API int integ_entities_list(integ_session *s, const char *entity, const char *filter_json,
                                  char **out_json);

/** One record with its links: [{integration_id, external_id, remote_updated_at}]. */
INTEG_API int integ_entity_get(integ_session *s, const char *entity, const char *local_id, char **out_json);

/**
 * Create ({"data": {...}}) or replace ({"id": LOCAL_ID, "data": {...}}) a
 * record; it is marked changed for the next push. Needs integration:admin.
 */
INTEG_API int integ_entity_put(integ_session *s, const char *entity, const char *record_json, char **out_json);

/** Soft-delete a record (it reads back with "deleted": true). Needs integration:admin. */
INTEG_API int integ_entity_delete(integ_session *s, const char *entity, const char *local_id);

#ifdef __cplusplus
}
#endif

#endif /* INTEGRATIONS_H */
