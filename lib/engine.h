/* Internal: the built-in REST engine — runs an adapter manifest's requests
 * for one tenant integration: URL and auth from templates, list pages with
 * every pagination style, incremental filters, the connection test.
 *
 * An ig_conn is one integration's live connection for the length of one
 * operation (a sync, a test): its record, definition, config and opened
 * credentials (wiped on close), the resolved base URL and the shared HTTP
 * transport and rate budget. */
#ifndef IG_ENGINE_H
#define IG_ENGINE_H

#include <json-c/json.h>

#include "ctx.h"
#include "http.h"

typedef struct ig_conn {
    integ_ctx *ctx;
    char *tenant_id;
    json_object *integration; /* stored record (owned) */
    json_object *definition;  /* stored record (owned) */
    json_object *manifest;    /* borrowed from definition */
    json_object *config;      /* borrowed from integration */
    json_object *credentials; /* opened, owned; wiped on close; NULL when none */
    json_object *token;       /* {access_token, ...} from a token flow (auth.c); owned, wiped */
    json_object *method;      /* the auth method object (borrowed) */
    const char *auth_type;
    char *base_url;           /* resolved (override or template) */
    ig_bucket *bucket;        /* the integration's budget (owned by the context) */
    const struct integ_adapter *adapter; /* a host's C adapter for this key, or NULL */
    void *adapter_payload;    /* the registration held (adapter.c): ig_conn_adapter_release */
} ig_conn;

/* Load the integration (scoped to the tenant), its definition and
 * credentials. INTEG_ENOTFOUND for another tenant's id. */
int ig_conn_open(integ_ctx *ctx, const char *tenant_id, const char *integration_id, ig_conn **out);
void ig_conn_close(ig_conn *c);

/* One page of an entity's list. `state` is the pagination state returned
 * with the previous page (NULL for the first page); `since` the incremental
 * watermark as unix ms (-1 for a full read). On success: `records` is a new
 * array (owned) of the page's records, `next_state` the state for the next
 * page (owned) or NULL when this was the last page. A malformed or
 * truncated body is INTEG_EREMOTE and yields no records. */
typedef struct ig_page {
    json_object *records;
    json_object *next_state;
    long status;
    int attempts;
    size_t bytes;
    void *prep;                  /* what a prefetch prep made of the page (owned), or NULL */
    void (*prep_free)(void *prep);
} ig_page;

int ig_rest_list_page(ig_conn *c, const char *entity, json_object *state, int64_t since_ms,
                      ig_page *out);
void ig_page_free(ig_page *p);

/* One page of the entity's "deletes" request (records deleted or archived
 * remotely: HubSpot archived=true, Salesforce IsDeleted). */
int ig_rest_list_deleted_page(ig_conn *c, const char *entity, json_object *state, ig_page *out);

/* The entity's manifest description, or NULL (INTEG_EINVAL set) naming
 * the entity and the integration's definition. */
json_object *ig_conn_entity(ig_conn *c, const char *entity);

/* One record by remote id through the entity's get request (or the C
 * adapter's fetch_one). *out is the record (owned). */
int ig_rest_fetch_one(ig_conn *c, const char *entity, const char *external_id, json_object **out);

/* The cheap authenticated call of the manifest (test_request). Returns
 * INTEG_OK when it succeeded; otherwise the error with the remote reason. */
int ig_rest_test(ig_conn *c, long *out_status);

/* The C adapter path (adapter.c): used by the two calls above when
 * c->adapter is set. */
int ig_adapter_list_page(ig_conn *c, const char *entity, json_object *state, int64_t since_ms, ig_page *out);
int ig_adapter_test(ig_conn *c);
int ig_adapter_fetch_one(ig_conn *c, const char *entity, const char *external_id, json_object **out);

/* Find the adapter registered for a definition key (NULL when none) and
 * hold its registration: *handle (c->adapter_payload) keeps it alive, with
 * its host payload, until ig_conn_adapter_release, even when
 * integ_adapter_register replaces it meanwhile (the last holder destroys
 * it). The adapter calls above use the held registration. */
const struct integ_adapter *ig_ctx_adapter(integ_ctx *ctx, const char *key, void **handle);

/* Release the registration c holds (ig_conn_close does it); clears
 * c->adapter. No-op without one. */
void ig_conn_adapter_release(ig_conn *c);

/* Release every registration (at context close), replaced ones that a
 * connection still held included. */
void ig_adapters_free(integ_ctx *ctx);

/* An entity record's remote id as text ("512"), NULL if absent. */
int ig_record_id(json_object *record, const char *id_field, char *buf, size_t cap);

/* A remote timestamp in the manifest's format (rfc3339 default) to unix ms;
 * -1 when absent or unparseable. */
int64_t ig_remote_time_ms(json_object *value, const char *format);

/* ---- the write side (adapter_write.c, doc/push.md) -------------------------
 *
 * Records are remote-shaped (already reverse-mapped). Every call uses the
 * host's C adapter instead when c->adapter is set. The retry rule: creates
 * are sent with IG_HTTP_NON_IDEMPOTENT (repeated only after 429, 503, a
 * refused connection or a transport error before anything was written);
 * updates, upserts, deletes and lookups are idempotent and keep the
 * transport's retries. After any create error other than a 4xx the record
 * may exist remotely: reconcile with ig_rest_find before creating again. */

/* The entity's create request, body "{record}" -> record. *out (owned) is
 * the created record (the request's records_path, default "$"), which
 * holds the remote id (id_field). A 204 with OData-EntityId or a Location
 * is read back with the get request (or *out is {id_field: id} alone). */
int ig_rest_create(ig_conn *c, const char *entity, json_object *record, json_object **out);

/* The update request ({id} = external_id). *out is the updated record when
 * the response has one; with an empty response it is read back through the
 * get request when there is one; NULL otherwise (or when the read-back
 * failed; the update itself succeeded). */
int ig_rest_update(ig_conn *c, const char *entity, const char *external_id, json_object *record,
                   json_object **out);

/* The delete request (HubSpot archives). 404 and 410 are success. */
int ig_rest_delete(ig_conn *c, const char *entity, const char *external_id);

/* The entity's batch request for op "create", "update", "upsert" or
 * "delete", one request per batch.max_items records (each item already in
 * the provider's input shape: see ig_rest_batch_item). *out_results is an
 * array aligned with `records`: the remote record, or
 * {"error": {"code": INTEG_E..., "message"}} for an item that failed. A
 * chunk refused as a whole with 400/404/409/422 is halved until the bad
 * item is alone (a bounded number of extra requests). Returns INTEG_OK
 * when every chunk was answered (items may still have errors); INTEG_EAUTH,
 * INTEG_ERATELIMIT or INTEG_ENETWORK when the batch stopped: *out_results
 * is still set, and the items not done carry that error. Argument errors
 * (INTEG_EINVAL, INTEG_EUNSUPPORTED) leave *out_results NULL. */
int ig_rest_batch(ig_conn *c, const char *entity, const char *op, json_object *records,
                  json_object **out_results);

/* One batch input for op: a copy of record with the id set (update and
 * delete: id_field = key; upsert: "id" = key and "idProperty" = the
 * lookup's id_property, HubSpot's shape); create: a plain copy. */
int ig_rest_batch_item(ig_conn *c, const char *entity, const char *op, const char *key, json_object *record,
                       json_object **out);

/* Look a record up by the entity's unique field (manifest "lookup"; `field`
 * is its local or remote name, or NULL). *out is the record (owned), or
 * NULL when none matches. INTEG_EUNSUPPORTED when the entity has no lookup. */
int ig_rest_find(ig_conn *c, const char *entity, const char *field, const char *value, json_object **out);

/* The C adapter path of the writes (adapter.c). */
int ig_adapter_create(ig_conn *c, const char *entity, json_object *record, json_object **out);
int ig_adapter_update(ig_conn *c, const char *entity, const char *external_id, json_object *record,
                      json_object **out);
int ig_adapter_remove(ig_conn *c, const char *entity, const char *external_id);

#endif
