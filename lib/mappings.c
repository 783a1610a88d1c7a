/* The public mapping calls: an integration's field maps per remote entity,
 * validated by compiling them (mapping.c) before they are stored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "definitions.h"
#include "entities.h"
#include "error.h"
#include "json.h"
#include "mapping.h"
#include "util.h"

static json_object *public_mapping(json_object *rec)
{
    json_object *pub = ig_json_copy(rec);
    json_object_object_del(pub, "tenant_id");
    return pub;
}

INTEG_API int integ_mapping_put(integ_session *s, const char *integration_id, const char *mapping_json,
                                char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(integration_id && *integration_id, "integration_id");
    json_object *spec = NULL;
    if ((rc = ig_json_parse_object(mapping_json, "mapping_json", 0, &spec)))
        return rc;
    static const char *const known[] = {"source_entity", "target_entity", "field_map", "transform_rules",
                                        "required", "reverse", "field_policies", NULL};
    json_object *integ = NULL, *def = NULL, *rec = NULL, *rows = json_object_new_array();
    ig_mapping *compiled = NULL;
    void *tx = NULL;
    rc = ig_json_check_keys(spec, known, "mapping", "field");
    const char *source = ig_json_str(spec, "source_entity");
    const char *target = ig_json_str(spec, "target_entity");
    if (rc == INTEG_OK && (!source || !*source))
        rc = ig_err(INTEG_EINVAL, "mapping.source_entity: required (an entity of the integration's definition)");
    if (rc == INTEG_OK && !ig_entity_name_ok(target))
        rc = ig_err(INTEG_EINVAL, "mapping.target_entity: required, a local entity name like \"contacts\"");
    if (rc == INTEG_OK && !ig_json_get(spec, "field_map"))
        rc = ig_err(INTEG_EINVAL, "mapping.field_map: required");
    json_object *fp = ig_json_get(spec, "field_policies");
    if (rc == INTEG_OK && fp) {
        static const char *const policies[] = {"prefer_remote_unless_blank", "always_remote", "always_local",
                                               "two_way", "dont_sync", NULL};
        if (!json_object_is_type(fp, json_type_object))
            rc = ig_err(INTEG_EINVAL, "mapping.field_policies: must be an object of field -> policy");
        ig_json_foreach(fp, f, pv)
        {
            if (rc)
                break;
            if (!json_object_is_type(pv, json_type_string) || !ig_in_list(json_object_get_string(pv), policies))
                rc = ig_err(INTEG_EINVAL, "mapping.field_policies.%s: must be one of prefer_remote_unless_blank, "
                            "always_remote, always_local, two_way, dont_sync", f);
        }
    }
    if (rc == INTEG_OK)
        rc = ig_mapping_compile(spec, "mapping", &compiled);
    if (rc == INTEG_OK)
        rc = ig_session_require_admin(s);
    if (rc == INTEG_OK && (rc = ig_tx_begin(s->ctx, 1, &tx)) == INTEG_OK) {
        rc = ig_integration_get(s->ctx, tx, s->tenant_id, integration_id, &integ);
        if (rc == INTEG_OK)
            rc = ig_definition_lookup(s->ctx, tx, ig_json_str(integ, "definition_id"), &def);
        if (rc == INTEG_OK && !ig_json_get(ig_json_get(ig_json_get(def, "manifest"), "entities"), source))
            rc = ig_err(INTEG_EINVAL, "mapping.source_entity: '%s' is not an entity of %s", source,
                        ig_json_str(def, "key"));
        json_object *q = json_object_new_object();
        json_object_object_add(q, "tenant_id", json_object_new_string(s->tenant_id));
        json_object_object_add(q, "integration_id", json_object_new_string(integration_id));
        json_object_object_add(q, "source_entity", json_object_new_string(source ? source : ""));
        if (rc == INTEG_OK)
            rc = ig_store_list(s->ctx, tx, INTEG_KIND_MAPPING, q, rows);
        json_object_put(q);
        if (rc == INTEG_OK) {
            json_object *old = ig_json_len(rows) ? json_object_array_get_idx(rows, 0) : NULL;
            char id[37], now[32];
            int64_t ms = ig_now_ms();
            ig_rfc3339(now, ms, 0);
            rec = ig_json_copy(spec);
            if (old) {
                json_object_object_add(rec, "id", json_object_get(ig_json_get(old, "id")));
                json_object_object_add(rec, "created_at", json_object_get(ig_json_get(old, "created_at")));
            } else {
                ig_ctx_new_id(s->ctx, id, ms);
                json_object_object_add(rec, "id", json_object_new_string(id));
                json_object_object_add(rec, "created_at", json_object_new_string(now));
            }
            json_object_object_add(rec, "tenant_id", json_object_new_string(s->tenant_id));
            json_object_object_add(rec, "integration_id", json_object_new_string(integration_id));
            json_object_object_add(rec, "updated_at", json_object_new_string(now));
            rc = ig_store_put(s->ctx, tx, INTEG_KIND_MAPPING, rec, old ? INTEG_PUT_UPDATE : INTEG_PUT_INSERT);
            if (rc == INTEG_OK) {
                json_object *d = json_object_new_object();
                json_object_object_add(d, "integration_id", json_object_new_string(integration_id));
                json_object_object_add(d, "source_entity", json_object_new_string(source));
                json_object_object_add(d, "target_entity", json_object_new_string(target));
                rc = ig_audit(s->ctx, tx, s->tenant_id, s->user_id, "mapping.put", "mapping",
                              ig_json_str(rec, "id"), d);
                json_object_put(d);
            }
        }
        rc = ig_tx_end(s->ctx, tx, 1, rc);
    }
    if (rc == INTEG_OK && out_json) {
        json_object *pub = public_mapping(rec);
        rc = ig_json_to_string(pub, out_json);
        json_object_put(pub);
    }
    ig_mapping_free(compiled);
    json_object_put(rows);
    json_object_put(rec);
    json_object_put(def);
    json_object_put(integ);
    json_object_put(spec);
    return rc;
}

INTEG_API int integ_mappings_list(integ_session *s, const char *integration_id, char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(integration_id && *integration_id, "integration_id");
    IG_CHECK_ARG(out_json, "out_json");
    json_object *rows = json_object_new_array();
    rc = ig_integration_records(s->ctx, s->tenant_id, integration_id, INTEG_KIND_MAPPING, NULL, rows);
    if (rc == INTEG_OK)
        rc = ig_json_public_list(rows, public_mapping, out_json);
    json_object_put(rows);
    return rc;
}

static int load_mapping(integ_session *s, void *tx, const char *id, json_object **out)
{
    int rc = ig_store_get(s->ctx, tx, INTEG_KIND_MAPPING, s->tenant_id, id, out);
    if (rc == INTEG_ENOTFOUND)
        return ig_err(rc, "mapping '%s' not found", id);
    return rc;
}

INTEG_API int integ_mapping_delete(integ_session *s, const char *mapping_id)
{
    int rc = ig_session_enter(s, NULL);
    if (rc)
        return rc;
    IG_CHECK_ARG(mapping_id && *mapping_id, "mapping_id");
    if ((rc = ig_session_require_admin(s)))
        return rc;
    void *tx = NULL;
    json_object *rec = NULL;
    if ((rc = ig_tx_begin(s->ctx, 1, &tx)) == INTEG_OK) {
        rc = load_mapping(s, tx, mapping_id, &rec);
        if (rc == INTEG_OK)
            rc = s->ctx->store->remove(tx, INTEG_KIND_MAPPING, s->tenant_id, mapping_id);
        if (rc == INTEG_OK) {
            json_object *d = json_object_new_object();
            json_object_object_add(d, "integration_id", json_object_get(ig_json_get(rec, "integration_id")));
            json_object_object_add(d, "source_entity", json_object_get(ig_json_get(rec, "source_entity")));
            rc = ig_audit(s->ctx, tx, s->tenant_id, s->user_id, "mapping.delete", "mapping", mapping_id, d);
            json_object_put(d);
        }
        rc = ig_tx_end(s->ctx, tx, 1, rc);
    }
    json_object_put(rec);
    return rc;
}

INTEG_API int integ_mapping_apply(integ_session *s, const char *mapping_id, const char *direction,
                                  const char *record_json, char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(mapping_id && *mapping_id, "mapping_id");
    IG_CHECK_ARG(out_json, "out_json");
    ig_direction dir;
    if (direction && !strcmp(direction, "pull"))
        dir = IG_PULL;
    else if (direction && !strcmp(direction, "push"))
        dir = IG_PUSH;
    else
        return ig_err(INTEG_EINVAL, "direction: must be \"pull\" or \"push\"");
    json_object *record = NULL, *rec = NULL, *mapped = NULL;
    if ((rc = ig_json_parse_object(record_json, "record_json", 0, &record)))
        return rc;
    void *tx = NULL;
    ig_mapping *m = NULL;
    if ((rc = ig_tx_begin(s->ctx, 0, &tx)) == INTEG_OK)
        rc = ig_tx_end(s->ctx, tx, 1, load_mapping(s, tx, mapping_id, &rec));
    if (rc == INTEG_OK)
        rc = ig_mapping_compile(rec, "mapping", &m);
    if (rc == INTEG_OK)
        rc = ig_mapping_apply(m, dir, record, &mapped);
    if (rc == INTEG_OK)
        rc = ig_json_to_string(mapped, out_json);
    json_object_put(mapped);
    ig_mapping_free(m);
    json_object_put(rec);
    json_object_put(record);
    return rc;
}
