/* The audit log: who did what to which object, when; never a secret. */
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "error.h"
#include "json.h"
#include "util.h"

int ig_audit(integ_ctx *ctx, void *tx, const char *tenant_id, const char *user_id,
             const char *action, const char *object_type, const char *object_id,
             json_object *details)
{
    char id[37], at[32];
    int64_t now = ig_now_ms();
    ig_ctx_new_id(ctx, id, now);
    ig_rfc3339(at, now, 0);
    json_object *rec = json_object_new_object();
    json_object_object_add(rec, "id", json_object_new_string(id));
    json_object_object_add(rec, "tenant_id", tenant_id ? json_object_new_string(tenant_id) : NULL);
    json_object_object_add(rec, "user_id", user_id ? json_object_new_string(user_id) : NULL);
    json_object_object_add(rec, "action", json_object_new_string(action));
    json_object_object_add(rec, "object_type", json_object_new_string(object_type));
    json_object_object_add(rec, "object_id", object_id ? json_object_new_string(object_id) : NULL);
    json_object_object_add(rec, "at", json_object_new_string(at));
    json_object_object_add(rec, "at_ms", json_object_new_int64(now));
    json_object_object_add(rec, "details", details ? ig_json_copy(details) : json_object_new_object());
    int rc = ig_store_put(ctx, tx, INTEG_KIND_AUDIT, rec, INTEG_PUT_INSERT);
    json_object_put(rec);
    return rc ? ig_err_prefix(rc, "audit") : INTEG_OK;
}

INTEG_API int integ_audit_list(integ_session *s, const char *filter_json, char **out_json)
{
    ig_err_clear();
    IG_CHECK_ARG(out_json, "out_json");
    *out_json = NULL;
    int rc = ig_session_check(s);
    if (rc)
        return rc;
    json_object *filter = NULL;
    if ((rc = ig_json_parse_object(filter_json, "filter_json", 1, &filter)))
        return rc;
    int64_t limit, offset;
    json_object *q = json_object_new_object();
    json_object *rows = json_object_new_array();
    rc = ig_json_limit_offset(filter, "filter_json", &limit, &offset);
    static const char *const fields[] = {"action", "object_id", "user_id", NULL};
    ig_json_foreach(filter, k, v)
    {
        if (rc)
            break;
        if (!strcmp(k, "limit") || !strcmp(k, "offset"))
            continue;
        if (!ig_in_list(k, fields))
            rc = ig_err(INTEG_EINVAL, "filter_json.%s: unknown filter (use action, object_id, user_id)", k);
        else if (!json_object_is_type(v, json_type_string))
            rc = ig_err(INTEG_EINVAL, "filter_json.%s: must be a string", k);
        else
            json_object_object_add(q, k, json_object_get(v));
    }
    if (rc == INTEG_OK) {
        json_object_object_add(q, "tenant_id", json_object_new_string(s->tenant_id));
        json_object_object_add(q, "limit", json_object_new_int64(limit));
        json_object_object_add(q, "offset", json_object_new_int64(offset));
        void *tx = NULL;
        rc = ig_tx_begin(s->ctx, 0, &tx);
        if (rc == INTEG_OK)
            rc = ig_tx_end(s->ctx, tx, 1, ig_store_list(s->ctx, tx, INTEG_KIND_AUDIT, q, rows));
    }
    if (rc == INTEG_OK) {
        /* at_ms is an index column, not part of the public shape. */
        for (size_t i = 0; i < ig_json_len(rows); i++)
            json_object_object_del(json_object_array_get_idx(rows, i), "at_ms");
        rc = ig_json_to_string(rows, out_json);
    }
    json_object_put(rows);
    json_object_put(q);
    json_object_put(filter);
    return rc;
}
