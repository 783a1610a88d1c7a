/* Tenant integrations: one tenant's connection to one external system. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "definitions.h"
#include "error.h"
#include "json.h"
#include "oauth.h"
#include "manifest.h"
#include "schema.h"
#include "util.h"

#define NAME_MAX_LEN 200

static const char *const STATUSES[] = {"active", "paused", "error", "needs_reauth", NULL};

/* The public shape of a stored integration record. */
static json_object *public_integration(json_object *rec)
{
    static const char *const copy[] = {"id", "tenant_id", "name", "category", "auth_type",
                                       "config", "status", "last_sync_at", "created_at",
                                       "updated_at", NULL};
    json_object *pub = json_object_new_object();
    for (const char *const *k = copy; *k; k++) {
        json_object *v = ig_json_get(rec, *k);
        json_object_object_add(pub, *k, v ? json_object_get(v) : NULL);
        if (!strcmp(*k, "tenant_id")) {
            json_object_object_add(pub, "integration_definition_id",
                                   json_object_get(ig_json_get(rec, "definition_id")));
            json_object_object_add(pub, "integration_definition_key",
                                   json_object_get(ig_json_get(rec, "definition_key")));
        }
    }
    json_object_object_add(pub, "has_credentials",
                           json_object_new_boolean(ig_json_get(rec, "credentials_sealed") != NULL));
    return pub;
}

static int reply(json_object *rec, char **out_json)
{
    if (!out_json)
        return INTEG_OK;
    json_object *pub = public_integration(rec);
    int rc = ig_json_to_string(pub, out_json);
    json_object_put(pub);
    return rc;
}

static int check_name(json_object *v, const char *what)
{
    if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0 ||
        json_object_get_string_len(v) > NAME_MAX_LEN)
        return ig_err(INTEG_EINVAL, "%s: must be a string of 1 to %d bytes", what, NAME_MAX_LEN);
    return INTEG_OK;
}

static json_object *auth_method(json_object *manifest, const char *type)
{
    return ig_json_get(ig_json_get(ig_json_get(manifest, "auth"), "methods"), type);
}

/* The method's key as stored in the manifest (stable while it lives). */
static const char *method_key(json_object *manifest, const char *type)
{
    ig_json_foreach(ig_json_get(ig_json_get(manifest, "auth"), "methods"), k, v)
    {
        (void)v;
        if (!strcmp(k, type))
            return k;
    }
    return NULL;
}

/* Decide the auth type and validate the credentials for it. `requested`
 * may be NULL: then the type is inferred from the credentials, or is the
 * manifest's default when there are none. */
static int resolve_auth(json_object *manifest, const char *requested, json_object *creds,
                        const char *what, const char **out_type)
{
    *out_type = NULL;
    const char *type = NULL;
    if (requested) {
        type = method_key(manifest, requested);
        if (!type)
            return ig_err(INTEG_EINVAL, "%s.auth_type: '%s' is not an auth type of %s", what,
                          requested, ig_json_str(manifest, "key"));
    } else if (!creds) {
        type = method_key(manifest, ig_json_str(ig_json_get(manifest, "auth"), "default"));
    } else {
        type = ig_manifest_infer_auth_type(manifest, creds);
        if (!type) {
            /* Report the violation against the default method's schema: the
             * most likely intent. */
            const char *dflt = ig_json_str(ig_json_get(manifest, "auth"), "default");
            json_object *schema = ig_json_get(auth_method(manifest, dflt), "credentials_schema");
            json_object *copy = ig_json_copy(creds);
            int rc = schema ? ig_schema_validate(schema, copy, 0, "credentials") : INTEG_OK;
            ig_json_wipe_put(copy);
            if (rc == INTEG_OK)
                rc = ig_err(INTEG_EINVAL, "credentials: match no auth method of %s",
                            ig_json_str(manifest, "key"));
            return ig_err_prefix(rc, "credentials do not fit any auth method");
        }
    }
    if (creds) {
        json_object *schema = ig_json_get(auth_method(manifest, type), "credentials_schema");
        if (schema) {
            int rc = ig_schema_validate(schema, creds, 1, "credentials");
            if (rc)
                return rc;
        }
    }
    *out_type = type;
    return INTEG_OK;
}

static void touch(json_object *rec, const char *field)
{
    char now[32];
    ig_rfc3339(now, ig_now_ms(), 0);
    json_object_object_add(rec, field, json_object_new_string(now));
}

void ig_integration_schedule(integ_ctx *ctx, json_object *rec)
{
    if (!ig_json_bool(ig_json_get(rec, "config"), "auto_sync", 0))
        json_object_object_add(rec, "next_run_at_ms", NULL);
    else if (!ig_json_get(rec, "next_run_at_ms"))
        json_object_object_add(rec, "next_run_at_ms", json_object_new_int64(ig_ctx_now_ms(ctx)));
}

/* The one builder of a new integration record (see ctx.h): create and the
 * OAuth callback both insert what this makes, so they cannot drift. */
int ig_integration_record_new(integ_ctx *ctx, const char *tenant_id, json_object *def, json_object *name,
                              const char *auth_type, json_object *config, const char *status,
                              json_object *creds, json_object **out)
{
    *out = NULL;
    json_object *manifest = ig_json_get(def, "manifest");
    json_object *cfg = config ? ig_json_copy(config) : json_object_new_object();
    int rc = ig_schema_validate(ig_json_get(manifest, "config_schema"), cfg, 1, "config");
    if (rc) {
        json_object_put(cfg);
        return rc;
    }
    char id[37];
    ig_ctx_new_id(ctx, id, ig_now_ms());
    json_object *rec = json_object_new_object();
    json_object_object_add(rec, "id", json_object_new_string(id));
    json_object_object_add(rec, "tenant_id", json_object_new_string(tenant_id));
    json_object_object_add(rec, "definition_id", json_object_get(ig_json_get(def, "id")));
    json_object_object_add(rec, "definition_key", json_object_get(ig_json_get(def, "key")));
    json_object_object_add(rec, "name", json_object_get(name ? name : ig_json_get(manifest, "name")));
    json_object_object_add(rec, "category", json_object_get(ig_json_get(def, "category")));
    json_object_object_add(rec, "auth_type", json_object_new_string(auth_type));
    json_object_object_add(rec, "config", cfg);
    /* Without credentials (an OAuth connection not yet authorised) the
     * integration cannot run until someone authorises it. */
    const char *st = status ? status : (!creds && strcmp(auth_type, "none") != 0) ? "needs_reauth" : "active";
    json_object_object_add(rec, "status", json_object_new_string(st));
    json_object_object_add(rec, "last_sync_at", NULL);
    /* auto_sync: due at once (integ_run_due), then every sync_interval. */
    ig_integration_schedule(ctx, rec);
    touch(rec, "created_at");
    touch(rec, "updated_at");
    if (creds && (rc = ig_oauth_seal_into(ctx, rec, "credentials_sealed", creds))) {
        json_object_put(rec);
        return rc;
    }
    *out = rec;
    return INTEG_OK;
}

INTEG_API int integ_integration_create(integ_session *s, const char *request_json, char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(out_json, "out_json");
    json_object *req = NULL;
    if ((rc = ig_json_parse_object(request_json, "request_json", 0, &req)))
        return rc;
    static const char *const known[] = {"integration_definition_id", "name", "auth_type",
                                        "credentials", "config", "status", NULL};
    json_object *def = NULL, *rec = NULL;
    json_object *creds = ig_json_get(req, "credentials");
    const char *def_id = ig_json_str(req, "integration_definition_id");
    const char *auth_type = NULL;
    void *tx = NULL;
    if ((rc = ig_session_require_admin(s)) || (rc = ig_json_check_keys(req, known, "request_json", "field")))
        goto out;
    if (!def_id || !*def_id) {
        rc = ig_err(INTEG_EINVAL, "request_json.integration_definition_id: required (a definition key or id)");
        goto out;
    }
    if (ig_json_get(req, "name") && (rc = check_name(ig_json_get(req, "name"), "request_json.name")))
        goto out;
    if (creds && !json_object_is_type(creds, json_type_object)) {
        rc = ig_err(INTEG_EINVAL, "request_json.credentials: must be an object");
        goto out;
    }
    json_object *cfg_in = ig_json_get(req, "config");
    if (cfg_in && !json_object_is_type(cfg_in, json_type_object)) {
        rc = ig_err(INTEG_EINVAL, "request_json.config: must be an object");
        goto out;
    }
    const char *status = ig_json_str(req, "status");
    if (ig_json_get(req, "status") && (!status || (strcmp(status, "active") && strcmp(status, "paused")))) {
        rc = ig_err(INTEG_EINVAL, "request_json.status: must be \"active\" or \"paused\"");
        goto out;
    }
    json_object *at = ig_json_get(req, "auth_type");
    if (at && !json_object_is_type(at, json_type_string)) {
        rc = ig_err(INTEG_EINVAL, "request_json.auth_type: must be a string");
        goto out;
    }
    if ((rc = ig_tx_begin(s->ctx, 1, &tx)))
        goto out;
    if ((rc = ig_definition_lookup(s->ctx, tx, def_id, &def))) {
        ig_err_prefix(rc, "request_json.integration_definition_id");
        goto out;
    }
    if ((rc = resolve_auth(ig_json_get(def, "manifest"), at ? json_object_get_string(at) : NULL, creds,
                           "request_json", &auth_type)))
        goto out;
    if ((rc = ig_integration_record_new(s->ctx, s->tenant_id, def, ig_json_get(req, "name"), auth_type, cfg_in,
                                        status, creds, &rec)))
        goto out;
    const char *id = ig_json_str(rec, "id");
    if ((rc = ig_store_put(s->ctx, tx, INTEG_KIND_INTEGRATION, rec, INTEG_PUT_INSERT)))
        goto out;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "definition", json_object_get(ig_json_get(def, "key")));
    json_object_object_add(d, "name", json_object_get(ig_json_get(rec, "name")));
    json_object_object_add(d, "auth_type", json_object_new_string(auth_type));
    json_object_object_add(d, "has_credentials", json_object_new_boolean(creds != NULL));
    rc = ig_audit(s->ctx, tx, s->tenant_id, s->user_id, "integration.create", "integration", id, d);
    json_object_put(d);
out:
    rc = ig_tx_end(s->ctx, tx, 1, rc);
    if (rc == INTEG_OK)
        rc = reply(rec, out_json);
    json_object_put(rec);
    json_object_put(def);
    ig_json_wipe_put(req);
    return rc;
}

INTEG_API int integ_integration_get(integ_session *s, const char *id, char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(out_json, "out_json");
    IG_CHECK_ARG(id && *id, "id");
    void *tx = NULL;
    json_object *rec = NULL;
    if ((rc = ig_tx_begin(s->ctx, 0, &tx)) == INTEG_OK)
        rc = ig_tx_end(s->ctx, tx, 1, ig_integration_get(s->ctx, tx, s->tenant_id, id, &rec));
    if (rc == INTEG_OK)
        rc = reply(rec, out_json);
    json_object_put(rec);
    return rc;
}

INTEG_API int integ_integrations_list(integ_session *s, const char *filter_json, char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(out_json, "out_json");
    json_object *filter = NULL;
    if ((rc = ig_json_parse_object(filter_json, "filter_json", 1, &filter)))
        return rc;
    static const char *const known[] = {"status", "category", "integration_definition_id", "limit",
                                        "offset", NULL};
    int64_t limit = 0, offset = 0;
    json_object *q = json_object_new_object();
    json_object *rows = json_object_new_array();
    void *tx = NULL;
    if ((rc = ig_json_check_keys(filter, known, "filter_json", "field")) ||
        (rc = ig_json_limit_offset(filter, "filter_json", &limit, &offset)))
        goto out;
    json_object_object_add(q, "tenant_id", json_object_new_string(s->tenant_id));
    json_object *st = ig_json_get(filter, "status");
    if (st) {
        if (!ig_in_list(json_object_get_string(st), STATUSES) || !json_object_is_type(st, json_type_string)) {
            rc = ig_err(INTEG_EINVAL, "filter_json.status: must be one of active, paused, error, needs_reauth");
            goto out;
        }
        json_object_object_add(q, "status", json_object_get(st));
    }
    if ((rc = ig_tx_begin(s->ctx, 0, &tx)))
        goto out;
    json_object *dv = ig_json_get(filter, "integration_definition_id");
    if (dv) {
        json_object *def = NULL;
        if (!json_object_is_type(dv, json_type_string)) {
            rc = ig_err(INTEG_EINVAL, "filter_json.integration_definition_id: must be a string");
            goto out;
        }
        rc = ig_definition_lookup(s->ctx, tx, json_object_get_string(dv), &def);
        if (rc) {
            ig_err_prefix(rc, "filter_json.integration_definition_id");
            goto out;
        }
        json_object_object_add(q, "definition_id", json_object_get(ig_json_get(def, "id")));
        json_object_put(def);
    }
    json_object *cat = ig_json_get(filter, "category");
    if (cat) {
        /* category is not an indexed field: select the category's definitions. */
        if (!json_object_is_type(cat, json_type_string)) {
            rc = ig_err(INTEG_EINVAL, "filter_json.category: must be a string");
            goto out;
        }
        json_object *dq = json_object_new_object(), *defs = json_object_new_array();
        json_object_object_add(dq, "category", json_object_get(cat));
        rc = ig_store_list(s->ctx, tx, INTEG_KIND_DEFINITION, dq, defs);
        json_object *ids = json_object_new_array();
        for (size_t i = 0; i < ig_json_len(defs); i++)
            json_object_array_add(ids, json_object_get(ig_json_get(json_object_array_get_idx(defs, i), "id")));
        json_object *in = json_object_new_object();
        json_object_object_add(in, "in", ids);
        json_object *existing = ig_json_get(q, "definition_id");
        if (existing)
            json_object_array_add(ids, json_object_new_string("")); /* keep AND semantics below */
        if (!existing)
            json_object_object_add(q, "definition_id", in);
        else {
            /* both filters: the definition must also be in the category */
            int found = 0;
            for (size_t i = 0; i < ig_json_len(defs); i++)
                found |= json_object_equal(existing, ig_json_get(json_object_array_get_idx(defs, i), "id"));
            if (!found)
                json_object_object_add(q, "definition_id", json_object_new_string(""));
            json_object_put(in);
        }
        json_object_put(dq);
        json_object_put(defs);
        if (rc)
            goto out;
    }
    json_object_object_add(q, "limit", json_object_new_int64(limit));
    json_object_object_add(q, "offset", json_object_new_int64(offset));
    rc = ig_store_list(s->ctx, tx, INTEG_KIND_INTEGRATION, q, rows);
out:
    rc = ig_tx_end(s->ctx, tx, 1, rc);
    if (rc == INTEG_OK)
        rc = ig_json_public_list(rows, public_integration, out_json);
    json_object_put(rows);
    json_object_put(q);
    json_object_put(filter);
    return rc;
}

INTEG_API int integ_integration_update(integ_session *s, const char *id, const char *patch_json,
                                       char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(id && *id, "id");
    json_object *patch = NULL;
    if ((rc = ig_json_parse_object(patch_json, "patch_json", 0, &patch)))
        return rc;
    static const char *const known[] = {"name", "config", "status", NULL};
    json_object *rec = NULL, *def = NULL, *config = NULL;
    void *tx = NULL;
    if ((rc = ig_session_require_admin(s)) || (rc = ig_json_check_keys(patch, known, "patch_json", "field")))
        goto out;
    json_object *name = ig_json_get(patch, "name");
    if (name && (rc = check_name(name, "patch_json.name")))
        goto out;
    json_object *st = ig_json_get(patch, "status");
    if (st && (!json_object_is_type(st, json_type_string) ||
               (strcmp(json_object_get_string(st), "active") && strcmp(json_object_get_string(st), "paused")))) {
        rc = ig_err(INTEG_EINVAL, "patch_json.status: must be \"active\" or \"paused\"");
        goto out;
    }
    json_object *cfg = ig_json_get(patch, "config");
    if (cfg && !json_object_is_type(cfg, json_type_object)) {
        rc = ig_err(INTEG_EINVAL, "patch_json.config: must be an object");
        goto out;
    }
    if ((rc = ig_tx_begin(s->ctx, 1, &tx)) || (rc = ig_integration_get(s->ctx, tx, s->tenant_id, id, &rec)))
        goto out;
    json_object *changed = json_object_new_array();
    if (cfg) {
        if ((rc = ig_definition_lookup(s->ctx, tx, ig_json_str(rec, "definition_id"), &def))) {
            json_object_put(changed);
            goto out;
        }
        /* Merge-patch one level deep: a key set to null is removed. */
        config = ig_json_copy(ig_json_get(rec, "config"));
        if (!config)
            config = json_object_new_object();
        ig_json_foreach(cfg, k, v)
        {
            if (v)
                json_object_object_add(config, k, json_object_get(v));
            else
                json_object_object_del(config, k);
        }
        rc = ig_schema_validate(ig_json_get(ig_json_get(def, "manifest"), "config_schema"), config, 1,
                                "config");
        if (rc) {
            json_object_put(changed);
            goto out;
        }
        json_object_object_add(rec, "config", json_object_get(config));
        json_object_array_add(changed, json_object_new_string("config"));
        /* Turning auto_sync on schedules a run now; off unschedules. */
        ig_integration_schedule(s->ctx, rec);
    }
    if (name) {
        json_object_object_add(rec, "name", json_object_get(name));
        json_object_array_add(changed, json_object_new_string("name"));
    }
    if (st) {
        json_object_object_add(rec, "status", json_object_get(st));
        json_object_array_add(changed, json_object_new_string("status"));
    }
    touch(rec, "updated_at");
    rc = ig_store_put(s->ctx, tx, INTEG_KIND_INTEGRATION, rec, INTEG_PUT_UPDATE);
    if (rc == INTEG_OK) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "changed", json_object_get(changed));
        if (st)
            json_object_object_add(d, "status", json_object_get(st));
        rc = ig_audit(s->ctx, tx, s->tenant_id, s->user_id, "integration.update", "integration", id, d);
        json_object_put(d);
    }
    json_object_put(changed);
out:
    rc = ig_tx_end(s->ctx, tx, 1, rc);
    if (rc == INTEG_OK)
        rc = reply(rec, out_json);
    json_object_put(rec);
    json_object_put(def);
    json_object_put(config);
    json_object_put(patch);
    return rc;
}

INTEG_API int integ_integration_set_credentials(integ_session *s, const char *id,
                                                const char *creds_json)
{
    int rc = ig_session_enter(s, NULL);
    if (rc)
        return rc;
    IG_CHECK_ARG(id && *id, "id");
    json_object *creds = NULL;
    if ((rc = ig_json_parse_object(creds_json, "creds_json", 0, &creds)))
        return rc;
    json_object *rec = NULL, *def = NULL;
    void *tx = NULL;
    if ((rc = ig_session_require_admin(s)) || (rc = ig_tx_begin(s->ctx, 1, &tx)) ||
        (rc = ig_integration_get(s->ctx, tx, s->tenant_id, id, &rec)) ||
        (rc = ig_definition_lookup(s->ctx, tx, ig_json_str(rec, "definition_id"), &def)))
        goto out;
    json_object *manifest = ig_json_get(def, "manifest");
    const char *type = NULL;
    /* Keep the current auth type when the credentials fit it; otherwise
     * accept them for whichever method they fit (e.g. switching from an API
     * key to OAuth tokens). */
    json_object *copy = ig_json_copy(creds);
    rc = resolve_auth(manifest, ig_json_str(rec, "auth_type"), copy, "creds_json", &type);
    ig_json_wipe_put(copy);
    if (rc) {
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", integ_errmsg());
        if (resolve_auth(manifest, NULL, creds, "creds_json", &type) != INTEG_OK) {
            rc = integ_error_set(rc, saved);
            goto out;
        }
        rc = INTEG_OK;
    } else {
        rc = resolve_auth(manifest, type, creds, "creds_json", &type);
        if (rc)
            goto out;
    }
    json_object_object_add(rec, "auth_type", json_object_new_string(type));
    if ((rc = ig_oauth_seal_into(s->ctx, rec, "credentials_sealed", creds)))
        goto out;
    if (!strcmp(ig_json_str(rec, "status"), "needs_reauth"))
        json_object_object_add(rec, "status", json_object_new_string("active"));
    touch(rec, "updated_at");
    if ((rc = ig_store_put(s->ctx, tx, INTEG_KIND_INTEGRATION, rec, INTEG_PUT_UPDATE)))
        goto out;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "auth_type", json_object_new_string(type));
    rc = ig_audit(s->ctx, tx, s->tenant_id, s->user_id, "integration.set_credentials", "integration",
                  id, d);
    json_object_put(d);
out:
    rc = ig_tx_end(s->ctx, tx, 1, rc);
    json_object_put(rec);
    json_object_put(def);
    ig_json_wipe_put(creds);
    return rc;
}

INTEG_API int integ_integration_delete(integ_session *s, const char *id)
{
    int rc = ig_session_enter(s, NULL);
    if (rc)
        return rc;
    IG_CHECK_ARG(id && *id, "id");
    if ((rc = ig_session_require_admin(s)))
        return rc;
    /* Everything that hangs off an integration, removed in the same
     * transaction as the integration itself. */
    static const integ_store_kind dependents[] = {
        INTEG_KIND_MAPPING,  INTEG_KIND_SYNC_LOG,    INTEG_KIND_WEBHOOK_EVENT, INTEG_KIND_WEBHOOK_ENDPOINT,
        INTEG_KIND_CONFLICT, INTEG_KIND_ENTITY_LINK, INTEG_KIND_CHECKPOINT};
    void *tx = NULL;
    json_object *rec = NULL;
    json_object *d = json_object_new_object();
    if ((rc = ig_tx_begin(s->ctx, 1, &tx)) || (rc = ig_integration_get(s->ctx, tx, s->tenant_id, id, &rec)))
        goto out;
    json_object *q = json_object_new_object();
    json_object_object_add(q, "tenant_id", json_object_new_string(s->tenant_id));
    json_object_object_add(q, "integration_id", json_object_new_string(id));
    const char *qs = json_object_to_json_string_ext(q, JSON_C_TO_STRING_PLAIN);
    for (size_t i = 0; rc == INTEG_OK && i < sizeof dependents / sizeof *dependents; i++) {
        int64_t n = 0;
        rc = s->ctx->store->remove_where(tx, dependents[i], qs, &n);
        if (rc)
            ig_err_prefix(rc, "delete dependents");
    }
    json_object_put(q);
    if (rc == INTEG_OK)
        rc = s->ctx->store->remove(tx, INTEG_KIND_INTEGRATION, s->tenant_id, id);
    if (rc == INTEG_OK) {
        json_object_object_add(d, "name", json_object_get(ig_json_get(rec, "name")));
        json_object_object_add(d, "definition", json_object_get(ig_json_get(rec, "definition_key")));
        rc = ig_audit(s->ctx, tx, s->tenant_id, s->user_id, "integration.delete", "integration", id, d);
    }
out:
    rc = ig_tx_end(s->ctx, tx, 1, rc);
    if (rc == INTEG_OK)
        ig_ep_cache_changed(s->ctx->ep_cache); /* receivers reread it */
    json_object_put(d);
    json_object_put(rec);
    return rc;
}
