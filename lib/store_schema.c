/*
 * The store contract's schema; see store_schema.h.
 */
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "store_schema.h"

#define S(n) {n, 's', 0}
#define I(n) {n, 'i', 0}
#define B(n) {n, 'b', 0}
#define IX(c) {c, 0, 0, 0}
#define UX(c) {c, 1, 0, 0}
#define IX_SINCE(c, v) {c, 0, v, 0}
#define IX_UNTIL(c, v) {c, 0, 0, v}

/* The table of store.h, plus the indexes the library's queries need. A
 * UNIQUE index over nullable columns lets any number of rows hold a NULL in
 * it, which is the contract's "only bind when all fields are non-NULL". */
const table_spec ig_tables[INTEG_KIND_END] = {
    [INTEG_KIND_DEFINITION] = {"integration_definitions", 0,
        {S("id"), S("key"), S("category")},
        {UX("key"), IX("category")}},
    [INTEG_KIND_INTEGRATION] = {"tenant_integrations", 0,
        {S("id"), S("tenant_id"), S("definition_id"), S("status"), I("next_run_at_ms")},
        {IX("tenant_id"), IX("definition_id"), IX("status,next_run_at_ms")}},
    [INTEG_KIND_MAPPING] = {"integration_mappings", 0,
        {S("id"), S("tenant_id"), S("integration_id"), S("source_entity"), S("target_entity")},
        {IX("tenant_id"), IX("integration_id")}},
    [INTEG_KIND_SYNC_LOG] = {"integration_sync_logs", 0,
        {S("id"), S("tenant_id"), S("integration_id"), S("entity"), S("status"),
         I("started_at_ms")},
        {IX("tenant_id"), IX("integration_id,started_at_ms"), IX("status")}},
    [INTEG_KIND_WEBHOOK_ENDPOINT] = {"webhook_endpoints", 0,
        {S("id"), S("tenant_id"), S("integration_id"), B("active")},
        {IX("tenant_id"), IX("integration_id")}},
    [INTEG_KIND_WEBHOOK_EVENT] = {"webhook_events", 0,
        {S("id"), S("tenant_id"), S("endpoint_id"), S("integration_id"), S("event_id"),
         S("status"), I("next_attempt_at_ms"), I("lease_until_ms")},
        /* Version 2: every B-tree here is written by each received event's
         * commit, so three single-column indexes became one: tenant and
         * integration queries use its prefix, the few leased events are
         * found through (status, ...) (issue 8). */
        {UX("endpoint_id,event_id"), IX_UNTIL("tenant_id", 2), IX_UNTIL("integration_id", 2),
         IX("status,next_attempt_at_ms"), IX_UNTIL("lease_until_ms", 2), IX_SINCE("tenant_id,integration_id", 2)}},
    [INTEG_KIND_CONFLICT] = {"sync_conflicts", 0,
        {S("id"), S("tenant_id"), S("integration_id"), S("entity"), S("status"), S("local_id"),
         S("external_id")},
        {IX("tenant_id"), IX("integration_id,status"), IX("integration_id,entity,local_id")}},
    [INTEG_KIND_OAUTH_STATE] = {"oauth_states", 0,
        {S("id"), S("tenant_id"), I("expires_at_ms")},
        {IX("tenant_id"), IX("expires_at_ms")}},
    [INTEG_KIND_ENTITY_LINK] = {"entity_links", 0,
        {S("id"), S("tenant_id"), S("integration_id"), S("entity"), S("external_id"),
         S("local_id"), B("pending")},
        /* Version 3: a pull writes a link per record, and each of its
         * B-trees. The library's link queries are by remote id (the unique
         * index), by integration (its prefix) and by local id; none by
         * tenant alone or by pending, and a local id is a UUID, so
         * (integration_id, entity, local_id) became (local_id) (issue 8). */
        {UX("integration_id,entity,external_id"), IX_UNTIL("tenant_id", 3),
         IX_UNTIL("integration_id,entity,local_id", 3), IX_UNTIL("integration_id,pending", 3),
         IX_SINCE("local_id", 3)}},
    [INTEG_KIND_CHECKPOINT] = {"sync_checkpoints", 0,
        {S("id"), S("tenant_id"), S("integration_id"), S("entity")},
        {UX("integration_id,entity"), IX("tenant_id")}},
    [INTEG_KIND_AUDIT] = {"audit_log", 0,
        {S("id"), S("tenant_id"), S("user_id"), S("action"), S("object_id"), I("at_ms")},
        {IX("tenant_id,at_ms"), IX("object_id"), IX("at_ms")}},
    [INTEG_KIND_ENTITY] = {"entities", 0,
        {S("id"), S("tenant_id"), S("entity"), B("deleted"), I("updated_at_ms"), I("version")},
        {IX("tenant_id,entity,updated_at_ms")}},
    [INTEG_KIND_LEASE] = {"leases", 0,
        {S("id"), S("holder"), I("expires_at_ms")},
        {IX("expires_at_ms")}},
    [INTEG_KIND_SETTING] = {"settings", 0, {S("id")}, {{0}}},
};

#undef S
#undef I
#undef B
#undef IX
#undef UX
#undef IX_SINCE
#undef IX_UNTIL

const table_spec *ig_store_spec(integ_store_kind kind)
{
    int k = (int)kind;
    if (k < 1 || k >= INTEG_KIND_END || !ig_tables[k].table)
        return NULL;
    return &ig_tables[k];
}

int ig_store_field_index(const table_spec *t, const char *name)
{
    for (int i = 0; i < MAX_COLS && t->cols[i].name; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return i;
    return -1;
}

void ig_store_field_set(const table_spec *t, integ_store_field *f, const char *col, integ_field_type type,
                        const char *str, int64_t num)
{
    int c = ig_store_field_index(t, col);
    if (c < 0)
        return;
    f[c].type = type;
    f[c].str = str;
    f[c].str_len = str ? strlen(str) : 0;
    f[c].num = num;
}

int ig_store_field_count(const table_spec *t)
{
    int n = 0;
    while (n < MAX_COLS && t->cols[n].name)
        n++;
    return n;
}

const char *ig_store_type_words(char type)
{
    return type == 's' ? "a string" : type == 'i' ? "an integer" : "a boolean";
}

int ig_store_value_fits(json_object *v, char type)
{
    switch (type) {
    case 's':
        return json_object_is_type(v, json_type_string);
    case 'b':
        return json_object_is_type(v, json_type_boolean);
    default:
        if (!json_object_is_type(v, json_type_int))
            return 0;
        /* json-c keeps integers above INT64_MAX as uint64 and clamps get_int64 */
        return json_object_get_int64(v) != INT64_MAX || json_object_get_uint64(v) <= INT64_MAX;
    }
}

int ig_store_fields_from(const table_spec *t, json_object *obj, integ_store_field *out,
                         size_t *n_out)
{
    *n_out = 0;
    int n = ig_store_field_count(t);
    for (int i = 0; i < n; i++) {
        json_object *v = ig_json_get(obj, t->cols[i].name);
        integ_store_field *f = &out[i];
        memset(f, 0, sizeof *f);
        if (i == 0 && (!v || !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0))
            return ig_err(INTEG_EINVAL, "%s.id: %s", t->table, v ? "must be a non-empty string" : "missing");
        if (!v || json_object_is_type(v, json_type_null))
            continue;
        char type = t->cols[i].type;
        if (!ig_store_value_fits(v, type))
            return ig_err(INTEG_EINVAL, "%s.%s: must be %s or null", t->table, t->cols[i].name,
                          ig_store_type_words(type));
        f->type = (integ_field_type)type;
        if (type == 's') {
            f->str = json_object_get_string(v);
            f->str_len = (size_t)json_object_get_string_len(v);
        } else {
            f->num = type == 'b' ? json_object_get_boolean(v) != 0 : json_object_get_int64(v);
        }
    }
    *n_out = (size_t)n;
    return INTEG_OK;
}
