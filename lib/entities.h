/* Internal: local entities — the built-in entity store (the "entities"
 * kind of the library's store) or the host's integ_entity_store. */
#ifndef IG_ENTITIES_H
#define IG_ENTITIES_H

#include <json-c/json.h>

#include "ctx.h"
#include "json.h"
#include "store_schema.h"

/* 1 when a host entity store is installed (writes then leave the store
 * transaction: see sync.c for the ordering that keeps replays idempotent). */
int ig_entities_external(integ_ctx *ctx);

/* Read one record ({id, entity, data, updated_at, deleted, version});
 * INTEG_ENOTFOUND when absent. `tx` is used by the built-in store only. */
int ig_entity_load(integ_ctx *ctx, void *tx, const char *tenant_id, const char *entity,
                   const char *local_id, json_object **out);

/* Insert or replace `data` as record `local_id` (never NULL here),
 * bumping its version; `origin` is "local" (marks it changed for the next
 * push) or "sync". *out (may be NULL) gets the stored record. */
int ig_entity_store_put(integ_ctx *ctx, void *tx, const char *tenant_id, const char *entity,
                        const char *local_id, json_object *data, int deleted, const char *origin,
                        json_object **out);

/* The same for a record the caller read in this transaction (with
 * ig_entity_load) at `version` (> 0): the built-in store writes version + 1
 * without reading it again. */
int ig_entity_store_replace(integ_ctx *ctx, void *tx, const char *tenant_id, const char *entity,
                            const char *local_id, json_object *data, int deleted, const char *origin,
                            int64_t version, json_object **out);

/* The same for a local_id just made (ig_ctx_new_id) and never stored: no
 * read of an old version; the built-in store inserts version 1. */
int ig_entity_store_create(integ_ctx *ctx, void *tx, const char *tenant_id, const char *entity,
                           const char *local_id, json_object *data, const char *origin, json_object **out);

/* The built-in store's record of a local entity (data is referenced,
 * not copied), as a put made at `now` writes it. */
json_object *ig_entity_row(const char *tenant_id, const char *entity, const char *local_id, json_object *data,
                           int deleted, const char *origin, int64_t version, int64_t now);

/* The same record's text appended to b without building it (the bytes
 * ig_json_write writes for ig_entity_row's object), and its indexed fields
 * (strings lent from the arguments): what a pull's writer batch takes. */
int ig_entity_row_text(ig_jbuf *b, const char *tenant_id, const char *entity, const char *local_id,
                       json_object *data, int deleted, const char *origin, int64_t version, int64_t now,
                       integ_store_field f[MAX_COLS], size_t *n_fields);

/* A valid local entity name: ^[a-z][a-z0-9_]{0,63}$. */
int ig_entity_name_ok(const char *entity);

#endif
