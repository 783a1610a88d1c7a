/*
 * libintegrations — where synced records land locally.
 *
 * By default records go to the built-in entity store: the "entities" table
 * of the library's own store, written in the same transaction as the sync's
 * entity links and checkpoint. A host that keeps its own tables implements
 * this vtable and installs it with integ_ctx_set_entity_store(); the
 * integ_entity_* calls and every sync then go to the host's store.
 *
 * Records are JSON: {"id": LOCAL_ID, "entity": NAME, "data": {...},
 * "updated_at": RFC3339, "deleted": false, "version": N}. The library chooses
 * the local ids of records a sync creates and records each one in a
 * pending entity link before calling put, so replaying a page after a
 * crash writes the same ids again: put must be an idempotent upsert by id.
 *
 * Every function returns INTEG_OK or a negative INTEG_E* code and may set a
 * message with integ_error_set(). Calls come from any thread; the store
 * must be thread-safe. Records are delivered through `reply` (the JSON is
 * lent for the call).
 */
#ifndef INTEGRATIONS_ENTITY_STORE_H
#define INTEGRATIONS_ENTITY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "integrations/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The vtable layout version this header describes. */
#define INTEG_ENTITY_STORE_VERSION 1

/** Receives one record (JSON, lent for the call). Non-zero stops an iteration. */
typedef int (*integ_reply_cb)(void *reply_payload, const char *json, size_t json_len);

typedef struct integ_entity_store {
    /** INTEG_ENTITY_STORE_VERSION when the implementation was written. */
    int version;

    /** One record; INTEG_ENOTFOUND when the tenant has no such id. */
    int (*get)(void *payload, const char *tenant_id, const char *entity, const char *local_id,
               integ_reply_cb reply, void *reply_payload);

    /**
     * Insert or replace a record. record_json is {"id", "data", "deleted",
     * "origin": "sync" (written by a sync) | "local" (a local change, to be
     * pushed)}; the store sets updated_at and increments version, and
     * replies with the stored record.
     */
    int (*put)(void *payload, const char *tenant_id, const char *entity, const char *record_json,
               integ_reply_cb reply, void *reply_payload);

    /** Mark a record deleted (soft delete); INTEG_ENOTFOUND when absent. */
    int (*remove)(void *payload, const char *tenant_id, const char *entity, const char *local_id);

    /**
     * Records of an entity, newest first. filter_json: {"updated_since":
     * RFC3339, "include_deleted": false, "limit", "offset"}.
     */
    int (*list)(void *payload, const char *tenant_id, const char *entity, const char *filter_json,
                integ_reply_cb reply, void *reply_payload);
} integ_entity_store;

#ifdef __cplusplus
}
#endif

#endif /* INTEGRATIONS_ENTITY_STORE_H */
