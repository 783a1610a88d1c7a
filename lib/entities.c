/* Local entities: the built-in entity store and the host's. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entities.h"
#include "store_schema.h"
#include "error.h"
#include "json.h"
#include "util.h"

int ig_entity_name_ok(const char *e)
{
    if (!e || !islower((unsigned char)e[0]))
        return 0;
    size_t n = 0;
    for (; e[n]; n++)
        if (n >= 64 || !(islower((unsigned char)e[n]) || isdigit((unsigned char)e[n]) || e[n] == '_'))
            return 0;
    return 1;
}

int ig_entities_external(integ_ctx *ctx)
{
    pthread_mutex_lock(&ctx->cb_lock);
    int ext = ctx->entity_store != NULL;
    pthread_mutex_unlock(&ctx->cb_lock);
    return ext;
}

static void host_store(integ_ctx *ctx, const integ_entity_store **es, void **payload)
{
    pthread_mutex_lock(&ctx->cb_lock);
    *es = ctx->entity_store;
    *payload = ctx->entity_store_payload;
    pthread_mutex_unlock(&ctx->cb_lock);
}

static int reply_append(void *payload, const char *json, size_t len)
{
    json_object *one = NULL;
    int rc = ig_json_reply_into(&one, json, len);
    if (rc == 0)
        json_object_array_add(payload, one);
    return rc;
}

/* The public shape: the stored record without index-only fields. */
static json_object *public_entity(json_object *rec)
{
    json_object *pub = json_object_new_object();
    static const char *const keep[] = {"id", "entity", "data", "updated_at", "deleted", "version", NULL};
    for (const char *const *k = keep; *k; k++)
        json_object_object_add(pub, *k, json_object_get(ig_json_get(rec, *k)));
    return pub;
}

int ig_entity_load(integ_ctx *ctx, void *tx, const char *tenant_id, const char *entity,
                   const char *local_id, json_object **out)
{
    *out = NULL;
    const integ_entity_store *es;
    void *payload;
    host_store(ctx, &es, &payload);
    int rc;
    if (es) {
        rc = es->get(payload, tenant_id, entity, local_id, ig_json_reply_into, out);
        if (rc && rc != INTEG_ENOTFOUND)
            ig_err_prefix(rc, "entity store: get");
    } else {
        rc = ig_store_get(ctx, tx, INTEG_KIND_ENTITY, tenant_id, local_id, out);
        if (rc == INTEG_OK && strcmp(ig_json_str(*out, "entity") ? ig_json_str(*out, "entity") : "", entity)) {
            json_object_put(*out);
            *out = NULL;
            rc = INTEG_ENOTFOUND;
        }
    }
    if (rc == INTEG_ENOTFOUND)
        return ig_err(rc, "%s '%s' not found", entity, local_id);
    return rc;
}

json_object *ig_entity_row(const char *tenant_id, const char *entity, const char *local_id, json_object *data,
                           int deleted, const char *origin, int64_t version, int64_t now)
{
    char at[32];
    ig_rfc3339(at, now, 1);
    json_object *rec = json_object_new_object();
    json_object_object_add(rec, "id", json_object_new_string(local_id));
    json_object_object_add(rec, "tenant_id", json_object_new_string(tenant_id));
    json_object_object_add(rec, "entity", json_object_new_string(entity));
    json_object_object_add(rec, "data", json_object_get(data));
    json_object_object_add(rec, "updated_at", json_object_new_string(at));
    json_object_object_add(rec, "updated_at_ms", json_object_new_int64(now));
    json_object_object_add(rec, "deleted", json_object_new_boolean(deleted));
    json_object_object_add(rec, "version", json_object_new_int64(version));
    /* A local change is remembered for the next push; a synced write is
     * not (it is what the remote already has). */
    json_object_object_add(rec, "origin", json_object_new_string(origin));
    return rec;
}

int ig_entity_row_text(ig_jbuf *b, const char *tenant_id, const char *entity, const char *local_id,
                       json_object *data, int deleted, const char *origin, int64_t version, int64_t now,
                       integ_store_field f[MAX_COLS], size_t *n_fields)
{
    char at[32], num[48];
    ig_rfc3339(at, now, 1);
    /* ig_entity_row's keys in its order, written as ig_json_write would */
    int e = ig_jbuf_put(b, "{\"id\":", 6) || ig_json_write_string(b, local_id, strlen(local_id)) ||
            ig_jbuf_put(b, ",\"tenant_id\":", 13) || ig_json_write_string(b, tenant_id, strlen(tenant_id)) ||
            ig_jbuf_put(b, ",\"entity\":", 10) || ig_json_write_string(b, entity, strlen(entity)) ||
            ig_jbuf_put(b, ",\"data\":", 8) || ig_json_write(data, b) ||
            ig_jbuf_put(b, ",\"updated_at\":", 14) || ig_json_write_string(b, at, strlen(at));
    int k = snprintf(num, sizeof num, ",\"updated_at_ms\":%lld", (long long)now);
    e = e || ig_jbuf_put(b, num, (size_t)k) ||
        ig_jbuf_put(b, deleted ? ",\"deleted\":true" : ",\"deleted\":false", deleted ? 15 : 16);
    k = snprintf(num, sizeof num, ",\"version\":%lld", (long long)version);
    e = e || ig_jbuf_put(b, num, (size_t)k) || ig_jbuf_put(b, ",\"origin\":", 10) ||
        ig_json_write_string(b, origin, strlen(origin)) || ig_jbuf_put(b, "}", 1);
    if (e)
        return ig_err(INTEG_ENOMEM, "out of memory");
    /* the indexed fields, by column */
    const table_spec *t = ig_store_spec(INTEG_KIND_ENTITY);
    size_t n = (size_t)ig_store_field_count(t);
    memset(f, 0, n * sizeof *f);
    ig_store_field_set(t, f, "id", INTEG_FIELD_STRING, local_id, 0);
    ig_store_field_set(t, f, "tenant_id", INTEG_FIELD_STRING, tenant_id, 0);
    ig_store_field_set(t, f, "entity", INTEG_FIELD_STRING, entity, 0);
    ig_store_field_set(t, f, "deleted", INTEG_FIELD_BOOL, NULL, deleted != 0);
    ig_store_field_set(t, f, "updated_at_ms", INTEG_FIELD_INT, NULL, now);
    ig_store_field_set(t, f, "version", INTEG_FIELD_INT, NULL, version);
    *n_fields = n;
    return INTEG_OK;
}

/* Into the built-in store. version: the record's current version when the
 * caller read it in this transaction (0: a new id, inserted), or -1 to
 * read it here. */
static int builtin_put(integ_ctx *ctx, void *tx, const char *tenant_id, const char *entity, const char *local_id,
                       json_object *data, int deleted, const char *origin, int64_t version, json_object **out)
{
    json_object *old = NULL;
    int rc = version >= 0 ? INTEG_OK : ig_store_get(ctx, tx, INTEG_KIND_ENTITY, tenant_id, local_id, &old);
    if (rc && rc != INTEG_ENOTFOUND)
        return rc;
    if (old && strcmp(ig_json_str(old, "entity") ? ig_json_str(old, "entity") : "", entity) != 0) {
        json_object_put(old);
        return ig_err(INTEG_EEXISTS, "id '%s' belongs to another entity", local_id);
    }
    if (version < 0)
        version = ig_json_int(old, "version", 0);
    json_object_put(old);
    json_object *rec = ig_entity_row(tenant_id, entity, local_id, data, deleted, origin, version + 1, ig_now_ms());
    rc = ig_store_put(ctx, tx, INTEG_KIND_ENTITY, rec, version == 0 ? INTEG_PUT_INSERT : INTEG_PUT_UPSERT);
    if (rc == INTEG_OK && out)
        *out = rec;
    else
        json_object_put(rec);
    return rc;
}

static int entity_put(integ_ctx *ctx, void *tx, const char *tenant_id, const char *entity, const char *local_id,
                      json_object *data, int deleted, const char *origin, int64_t version, json_object **out)
{
    if (out)
        *out = NULL;
    const integ_entity_store *es;
    void *payload;
    host_store(ctx, &es, &payload);
    if (es) {
        json_object *req = json_object_new_object();
        json_object_object_add(req, "id", json_object_new_string(local_id));
        json_object_object_add(req, "data", json_object_get(data));
        json_object_object_add(req, "deleted", json_object_new_boolean(deleted));
        json_object_object_add(req, "origin", json_object_new_string(origin));
        json_object *stored = NULL;
        int rc = es->put(payload, tenant_id, entity, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN),
                         ig_json_reply_into, &stored);
        json_object_put(req);
        if (rc)
            return ig_err_prefix(rc, "entity store: put");
        if (out)
            *out = stored;
        else
            json_object_put(stored);
        return INTEG_OK;
    }
    return builtin_put(ctx, tx, tenant_id, entity, local_id, data, deleted, origin, version, out);
}

int ig_entity_store_put(integ_ctx *ctx, void *tx, const char *tenant_id, const char *entity,
                        const char *local_id, json_object *data, int deleted, const char *origin,
                        json_object **out)
{
    return entity_put(ctx, tx, tenant_id, entity, local_id, data, deleted, origin, -1, out);
}

int ig_entity_store_replace(integ_ctx *ctx, void *tx, const char *tenant_id, const char *entity,
                            const char *local_id, json_object *data, int deleted, const char *origin,
                            int64_t version, json_object **out)
{
    return entity_put(ctx, tx, tenant_id, entity, local_id, data, deleted, origin, version, out);
}

int ig_entity_store_create(integ_ctx *ctx, void *tx, const char *tenant_id, const char *entity,
                           const char *local_id, json_object *data, const char *origin, json_object **out)
{
    return entity_put(ctx, tx, tenant_id, entity, local_id, data, 0, origin, 0, out);
}

/* ---- public API ------------------------------------------------------------ */

INTEG_API int integ_ctx_set_entity_store(integ_ctx *ctx, const integ_entity_store *es, void *payload)
{
    ig_err_clear();
    IG_CHECK_ARG(ctx, "ctx");
    if (es && (es->version < 1 || !es->get || !es->put || !es->remove || !es->list))
        return ig_err(INTEG_EINVAL, "entity_store: vtable is incomplete or of an unknown version");
    pthread_mutex_lock(&ctx->cb_lock);
    ctx->entity_store = es;
    ctx->entity_store_payload = es ? payload : NULL;
    pthread_mutex_unlock(&ctx->cb_lock);
    return INTEG_OK;
}

static int check_entity_arg(const char *entity)
{
    if (!ig_entity_name_ok(entity))
        return ig_err(INTEG_EINVAL, "entity: must match ^[a-z][a-z0-9_]{0,63}$ (e.g. \"contacts\")");
    return INTEG_OK;
}

static int links_of(integ_ctx *ctx, void *tx, const char *tenant_id, const char *local_id, json_object *pub)
{
    json_object *q = json_object_new_object(), *rows = json_object_new_array();
    json_object_object_add(q, "tenant_id", json_object_new_string(tenant_id));
    json_object_object_add(q, "local_id", json_object_new_string(local_id));
    int rc = ig_store_list(ctx, tx, INTEG_KIND_ENTITY_LINK, q, rows);
    json_object *links = json_object_new_array();
    for (size_t i = 0; rc == INTEG_OK && i < ig_json_len(rows); i++) {
        json_object *l = json_object_array_get_idx(rows, i), *o = json_object_new_object();
        json_object_object_add(o, "integration_id", json_object_get(ig_json_get(l, "integration_id")));
        json_object_object_add(o, "external_id", json_object_get(ig_json_get(l, "external_id")));
        json_object_object_add(o, "remote_updated_at", json_object_get(ig_json_get(l, "remote_updated_at")));
        json_object_array_add(links, o);
    }
    json_object_object_add(pub, "links", links);
    json_object_put(q);
    json_object_put(rows);
    return rc;
}

INTEG_API int integ_entity_get(integ_session *s, const char *entity, const char *local_id, char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc || (rc = check_entity_arg(entity)))
        return rc;
    IG_CHECK_ARG(local_id && *local_id, "local_id");
    IG_CHECK_ARG(out_json, "out_json");
    void *tx = NULL;
    json_object *rec = NULL, *pub = NULL;
    if ((rc = ig_tx_begin(s->ctx, 0, &tx)) == INTEG_OK) {
        rc = ig_entity_load(s->ctx, tx, s->tenant_id, entity, local_id, &rec);
        if (rc == INTEG_OK) {
            pub = public_entity(rec);
            rc = links_of(s->ctx, tx, s->tenant_id, local_id, pub);
        }
        rc = ig_tx_end(s->ctx, tx, 1, rc);
    }
    if (rc == INTEG_OK)
        rc = ig_json_to_string(pub, out_json);
    json_object_put(pub);
    json_object_put(rec);
    return rc;
}

INTEG_API int integ_entity_put(integ_session *s, const char *entity, const char *record_json, char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc || (rc = check_entity_arg(entity)))
        return rc;
    json_object *req = NULL;
    if ((rc = ig_json_parse_object(record_json, "record_json", 0, &req)))
        return rc;
    json_object *data = ig_json_get(req, "data");
    const char *id = ig_json_str(req, "id");
    char newid[37];
    void *tx = NULL;
    json_object *stored = NULL;
    static const char *const known[] = {"id", "data", NULL};
    rc = ig_json_check_keys(req, known, "record_json", "field (use id, data)");
    if (rc == INTEG_OK && !json_object_is_type(data, json_type_object))
        rc = ig_err(INTEG_EINVAL, "record_json.data: required (an object)");
    if (rc == INTEG_OK && ig_json_get(req, "id") && (!id || !ig_valid_token(id, 128)))
        rc = ig_err(INTEG_EINVAL, "record_json.id: must be 1-128 printable characters without spaces");
    if (rc == INTEG_OK)
        rc = ig_session_require_admin(s);
    if (rc == INTEG_OK && (rc = ig_tx_begin(s->ctx, 1, &tx)) == INTEG_OK) {
        json_object *old = NULL;
        if (id) {
            /* Updating needs the record to be this tenant's. */
            rc = ig_entity_load(s->ctx, tx, s->tenant_id, entity, id, &old);
            int64_t version = ig_json_int(old, "version", 0);
            json_object_put(old);
            if (rc == INTEG_OK && version > 0)
                rc = ig_entity_store_replace(s->ctx, tx, s->tenant_id, entity, id, data, 0, "local", version,
                                             &stored);
            else if (rc == INTEG_OK)
                rc = ig_entity_store_put(s->ctx, tx, s->tenant_id, entity, id, data, 0, "local", &stored);
        } else {
            /* A new id: nothing to read first. */
            ig_ctx_new_id(s->ctx, newid, ig_now_ms());
            rc = ig_entity_store_create(s->ctx, tx, s->tenant_id, entity, newid, data, "local", &stored);
        }
        rc = ig_tx_end(s->ctx, tx, 1, rc);
    }
    if (rc == INTEG_OK && out_json) {
        json_object *pub = public_entity(stored);
        json_object_object_add(pub, "links", json_object_new_array());
        rc = ig_json_to_string(pub, out_json);
        json_object_put(pub);
    }
    json_object_put(stored);
    json_object_put(req);
    return rc;
}

INTEG_API int integ_entity_delete(integ_session *s, const char *entity, const char *local_id)
{
    int rc = ig_session_enter(s, NULL);
    if (rc || (rc = check_entity_arg(entity)))
        return rc;
    IG_CHECK_ARG(local_id && *local_id, "local_id");
    if ((rc = ig_session_require_admin(s)))
        return rc;
    const integ_entity_store *es;
    void *payload;
    host_store(s->ctx, &es, &payload);
    if (es) {
        rc = es->remove(payload, s->tenant_id, entity, local_id);
        return rc ? ig_err_prefix(rc, "entity store: remove") : INTEG_OK;
    }
    void *tx = NULL;
    json_object *old = NULL;
    if ((rc = ig_tx_begin(s->ctx, 1, &tx)) == INTEG_OK) {
        rc = ig_entity_load(s->ctx, tx, s->tenant_id, entity, local_id, &old);
        int64_t version = ig_json_int(old, "version", 0);
        if (rc == INTEG_OK && version > 0)
            rc = ig_entity_store_replace(s->ctx, tx, s->tenant_id, entity, local_id, ig_json_get(old, "data"), 1,
                                         "local", version, NULL);
        else if (rc == INTEG_OK)
            rc = ig_entity_store_put(s->ctx, tx, s->tenant_id, entity, local_id, ig_json_get(old, "data"), 1,
                                     "local", NULL);
        rc = ig_tx_end(s->ctx, tx, 1, rc);
    }
    json_object_put(old);
    return rc;
}

INTEG_API int integ_entities_list(integ_session *s, const char *entity, const char *filter_json, char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc || (rc = check_entity_arg(entity)))
        return rc;
    IG_CHECK_ARG(out_json, "out_json");
    json_object *filter = NULL;
    if ((rc = ig_json_parse_object(filter_json, "filter_json", 1, &filter)))
        return rc;
    int64_t limit, offset;
    json_object *rows = json_object_new_array(), *q = json_object_new_object();
    rc = ig_json_limit_offset(filter, "filter_json", &limit, &offset);
    int64_t since = -1;
    ig_json_foreach(filter, k, v)
    {
        if (rc)
            break;
        if (!strcmp(k, "limit") || !strcmp(k, "offset"))
            continue;
        if (!strcmp(k, "updated_since")) {
            if (!json_object_is_type(v, json_type_string) || ig_parse_rfc3339(json_object_get_string(v), &since))
                rc = ig_err(INTEG_EINVAL, "filter_json.updated_since: must be an RFC 3339 timestamp");
        } else if (!strcmp(k, "include_deleted")) {
            if (!json_object_is_type(v, json_type_boolean))
                rc = ig_err(INTEG_EINVAL, "filter_json.include_deleted: must be a boolean");
        } else {
            rc = ig_err(INTEG_EINVAL, "filter_json.%s: unknown filter (use updated_since, include_deleted, limit, offset)", k);
        }
    }
    const integ_entity_store *es;
    void *payload;
    host_store(s->ctx, &es, &payload);
    if (rc == INTEG_OK && es) {
        rc = es->list(payload, s->tenant_id, entity, filter_json ? filter_json : "{}", reply_append, rows);
        if (rc)
            ig_err_prefix(rc, "entity store: list");
    } else if (rc == INTEG_OK) {
        json_object_object_add(q, "tenant_id", json_object_new_string(s->tenant_id));
        json_object_object_add(q, "entity", json_object_new_string(entity));
        if (!ig_json_bool(filter, "include_deleted", 0))
            json_object_object_add(q, "deleted", json_object_new_boolean(0));
        if (since >= 0) {
            json_object *r = json_object_new_object();
            json_object_object_add(r, "gte", json_object_new_int64(since));
            json_object_object_add(q, "updated_at_ms", r);
        }
        json_object_object_add(q, "order", json_object_new_string("-updated_at_ms"));
        json_object_object_add(q, "limit", json_object_new_int64(limit));
        json_object_object_add(q, "offset", json_object_new_int64(offset));
        void *tx = NULL;
        if ((rc = ig_tx_begin(s->ctx, 0, &tx)) == INTEG_OK)
            rc = ig_tx_end(s->ctx, tx, 1, ig_store_list(s->ctx, tx, INTEG_KIND_ENTITY, q, rows));
    }
    if (rc == INTEG_OK)
        rc = ig_json_public_list(rows, public_entity, out_json);
    json_object_put(rows);
    json_object_put(q);
    json_object_put(filter);
    return rc;
}
