/*
 * libintegrations — the storage interface.
 *
 * Everything the library persists goes through this vtable: definitions,
 * tenant integrations, mappings, sync logs, webhook endpoints and queued
 * events, sync conflicts, OAuth states, entity links, sync checkpoints, the
 * audit log, the built-in entity store and leases. The built-in SQLite store
 * implements it; a host may implement it too (PostgreSQL, ...) and pass it to
 * integ_ctx_open_with_store(). tests/unit/store_conformance.c drives any
 * implementation through this vtable only.
 *
 * Model
 * -----
 * The store keeps one collection (table) per integ_store_kind. A record is a
 * JSON object (UTF-8 text) plus an optional opaque blob (a webhook body). The
 * store treats the JSON as opaque except for the kind's *indexed fields*
 * listed below, which it extracts from the record's top level on every put
 * and which queries may filter and order by. get and list hand back the
 * exact JSON text that was put (byte for byte) and the blob.
 *
 * Field types: "s" string, "i" 64-bit integer (times are unix milliseconds,
 * named *_ms), "b" boolean (JSON true/false, stored as 0/1). An indexed field
 * that is absent or JSON null is NULL: it never matches an equality filter.
 *
 *  kind                         table                   indexed fields                            unique
 *  INTEG_KIND_DEFINITION        integration_definitions id s, key s, category s                   id; key
 *  INTEG_KIND_INTEGRATION       tenant_integrations     id s, tenant_id s, definition_id s,       id
 *                                                       status s, next_run_at_ms i
 *  INTEG_KIND_MAPPING           integration_mappings    id s, tenant_id s, integration_id s,      id
 *                                                       source_entity s, target_entity s
 *  INTEG_KIND_SYNC_LOG          integration_sync_logs   id s, tenant_id s, integration_id s,      id
 *                                                       entity s, status s, started_at_ms i
 *  INTEG_KIND_WEBHOOK_ENDPOINT  webhook_endpoints       id s, tenant_id s, integration_id s,      id
 *                                                       active b
 *  INTEG_KIND_WEBHOOK_EVENT     webhook_events          id s, tenant_id s, endpoint_id s,         id;
 *                                                       integration_id s, event_id s, status s,   (endpoint_id,
 *                                                       next_attempt_at_ms i, lease_until_ms i     event_id)
 *  INTEG_KIND_CONFLICT          sync_conflicts          id s, tenant_id s, integration_id s,      id
 *                                                       entity s, status s, local_id s,
 *                                                       external_id s
 *  INTEG_KIND_OAUTH_STATE       oauth_states            id s, tenant_id s, expires_at_ms i        id
 *  INTEG_KIND_ENTITY_LINK       entity_links            id s, tenant_id s, integration_id s,      id;
 *                                                       entity s, external_id s, local_id s,      (integration_id,
 *                                                       pending b                                  entity, external_id)
 *  INTEG_KIND_CHECKPOINT        sync_checkpoints        id s, tenant_id s, integration_id s,      id;
 *                                                       entity s                                  (integration_id, entity)
 *  INTEG_KIND_AUDIT             audit_log               id s, tenant_id s, user_id s, action s,   id
 *                                                       object_id s, at_ms i
 *  INTEG_KIND_ENTITY            entities                id s, tenant_id s, entity s, deleted b,   id
 *                                                       updated_at_ms i, version i
 *  INTEG_KIND_LEASE             leases                  id s, holder s, expires_at_ms i           id
 *  INTEG_KIND_SETTING           settings                id s                                      id
 *
 * A uniqueness violation on put is INTEG_EEXISTS. Unique pairs/triples only
 * bind when all their fields are non-NULL.
 *
 * Ids are UUIDv7 (time ordered), so the default order, "id" descending, is
 * newest first.
 *
 * Queries
 * -------
 * list and remove_where take a JSON query object:
 *   {"<indexed field>": VALUE,                  equality (VALUE string/int/bool)
 *    "<indexed field>": null,                   IS NULL
 *    "<indexed field>": {"lt"|"lte"|"gt"|"gte"|"ne": VALUE, ...},  (combinable)
 *    "<indexed field>": {"in": [VALUE, ...]},
 *    "order": "field" | "-field",               default "-id" (newest first)
 *    "limit": N, "offset": N}                   limit 0 or absent: no limit
 * All conditions are ANDed. A field that is not indexed for the kind, or a
 * malformed query, is INTEG_EINVAL naming it. The library always scopes
 * tenant data by passing "tenant_id"; platform-level maintenance (key
 * rotation, the scheduler) queries without it.
 *
 * Transactions and threads
 * ------------------------
 * Every operation runs inside a transaction handle obtained from begin() and
 * released by end(). A write transaction (write = 1) is serializable with
 * respect to other write transactions: what it read cannot change before it
 * commits (SQLite: BEGIN IMMEDIATE; PostgreSQL: SERIALIZABLE, or row locks
 * with SELECT ... FOR UPDATE). A read transaction (write = 0) sees one
 * consistent snapshot. begin/end may be called from many threads at once;
 * one transaction handle is used by one thread at a time. The library never
 * opens a second transaction on a thread that holds one. end(tx, 0) must
 * roll back and always releases tx, even when it fails; end(tx, 1) that
 * fails has rolled back and released tx.
 *
 * Callbacks
 * ---------
 * Rows are delivered to an integ_store_row_cb. The json and blob pointers
 * are lent for the duration of the call only. A non-zero return stops the
 * iteration, and the operation returns that value unchanged.
 *
 * Errors
 * ------
 * Operations return INTEG_OK or a negative INTEG_E* code (INTEG_ENOTFOUND,
 * INTEG_EEXISTS, INTEG_EINVAL, INTEG_ECONFLICT for a busy/serialization
 * failure the caller may retry, INTEG_ESTORE otherwise) and set a message with
 * integ_error_set() naming the table and step.
 */
#ifndef INTEGRATIONS_STORE_H
#define INTEGRATIONS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "integrations/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The vtable layout version this header describes. 2 added put_fields; a
 * store written against version 1 keeps working (the library reads the
 * members a version has and nothing past them).
 */
#define INTEG_STORE_VERSION 2

/** The collections a store keeps. Values are fixed; new kinds are appended. */
typedef enum integ_store_kind {
    INTEG_KIND_DEFINITION = 1,
    INTEG_KIND_INTEGRATION = 2,
    INTEG_KIND_MAPPING = 3,
    INTEG_KIND_SYNC_LOG = 4,
    INTEG_KIND_WEBHOOK_ENDPOINT = 5,
    INTEG_KIND_WEBHOOK_EVENT = 6,
    INTEG_KIND_CONFLICT = 7,
    INTEG_KIND_OAUTH_STATE = 8,
    INTEG_KIND_ENTITY_LINK = 9,
    INTEG_KIND_CHECKPOINT = 10,
    INTEG_KIND_AUDIT = 11,
    INTEG_KIND_ENTITY = 12,
    INTEG_KIND_LEASE = 13,
    INTEG_KIND_SETTING = 14 /* store-wide settings: the master key check, ... */
} integ_store_kind;

/** One past the highest kind value (for loops over all kinds). */
#define INTEG_KIND_END 15

/** How put treats an existing record with the same id. */
typedef enum integ_put_mode {
    INTEG_PUT_INSERT = 1, /* fail with INTEG_EEXISTS if the id exists */
    INTEG_PUT_UPDATE = 2, /* fail with INTEG_ENOTFOUND unless the id exists */
    INTEG_PUT_UPSERT = 3  /* insert or replace */
} integ_put_mode;

/**
 * Receives one row. json is NUL-terminated (json_len excludes the NUL); blob
 * is NULL when the record has none. Return non-zero to stop.
 */
typedef int (*integ_store_row_cb)(void *payload, const char *json, size_t json_len,
                                  const unsigned char *blob, size_t blob_len);

/** The type of one extracted indexed field (integ_store_field.type). */
typedef enum integ_field_type {
    INTEG_FIELD_NULL = 0,      /* absent from the record, or JSON null */
    INTEG_FIELD_STRING = 's',  /* str/str_len */
    INTEG_FIELD_INT = 'i',     /* num */
    INTEG_FIELD_BOOL = 'b'     /* num: 0 or 1 */
} integ_field_type;

/**
 * One indexed field of a record, as the library extracted it for
 * put_fields. str points into memory lent for the call only; it is
 * NUL-terminated and str_len excludes the NUL.
 */
typedef struct integ_store_field {
    integ_field_type type;
    const char *str;
    size_t str_len;
    int64_t num;
} integ_store_field;

/**
 * The storage vtable. Fill every member of the version you declare; the struct must outlive the
 * context. store_data is the implementation's own state.
 */
typedef struct integ_store {
    /** INTEG_STORE_VERSION at the time the implementation was written. */
    int version;
    /** A short name for messages ("sqlite", "postgresql"). */
    const char *name;

    /**
     * Prepare the store for use: create or migrate its schema. Called once
     * by integ_ctx_open_with_store before anything else. Idempotent.
     */
    int (*open)(void *store_data);

    /** Release store_data. Called once, when the context finally closes. */
    void (*close)(void *store_data);

    /** Start a transaction (write: 0 read-only, 1 read-write). */
    int (*begin)(void *store_data, int write, void **out_tx);

    /** Commit (commit = 1) or roll back (0) and release the transaction. */
    int (*end)(void *tx, int commit);

    /**
     * Store a record. json must be a JSON object holding at least "id";
     * blob may be NULL. The indexed fields are taken from json.
     */
    int (*put)(void *tx, integ_store_kind kind, const char *json, const unsigned char *blob,
               size_t blob_len, integ_put_mode mode);

    /**
     * Fetch one record by id. tenant_id NULL matches any tenant; otherwise
     * a record of another tenant is INTEG_ENOTFOUND. The row goes to cb.
     */
    int (*get)(void *tx, integ_store_kind kind, const char *tenant_id, const char *id,
               integ_store_row_cb cb, void *payload);

    /** Stream the records matching query_json (NULL: all) to cb, in order. */
    int (*list)(void *tx, integ_store_kind kind, const char *query_json, integ_store_row_cb cb,
                void *payload);

    /** Count the records matching query_json ("order", "limit" and "offset" are ignored). */
    int (*count)(void *tx, integ_store_kind kind, const char *query_json, int64_t *out_count);

    /**
     * Delete one record by id (tenant_id as for get). The record's bytes
     * must not stay readable in the store's files (SQLite: secure_delete).
     * Missing: INTEG_ENOTFOUND.
     */
    int (*remove)(void *tx, integ_store_kind kind, const char *tenant_id, const char *id);

    /** Delete every record matching query_json; out_count (may be NULL) gets the number. */
    int (*remove_where)(void *tx, integ_store_kind kind, const char *query_json,
                        int64_t *out_count);

    /* ---- version 2 ---- */

    /**
     * Optional (NULL: the library calls put). put, with the record's
     * indexed fields already taken out of json by the library: fields[i]
     * is the i-th indexed field of the kind in the order of the table
     * above (fields[0] is id, a non-empty string), n_fields their number,
     * each already checked against its type. json is the same text put
     * would get (json_len excludes the NUL), so a store need not parse it.
     * The library writes records through this member when present; a
     * store should make it agree with put exactly (the conformance suite
     * checks both). A wrong n_fields for the kind is INTEG_EINVAL.
     */
    int (*put_fields)(void *tx, integ_store_kind kind, const char *json, size_t json_len,
                      const integ_store_field *fields, size_t n_fields,
                      const unsigned char *blob, size_t blob_len, integ_put_mode mode);
} integ_store;

/**
 * Create the built-in SQLite store for `path` (a file name, or ":memory:"
 * for a private in-memory database), for use with
 * integ_ctx_open_with_store() or a conformance test. Free with
 * store->close(store_data) if it is never handed to a context.
 */
INTEG_API int integ_store_sqlite_new(const integ_store **out_store, void **out_store_data,
                                     const char *path);

#ifdef __cplusplus
}
#endif

#endif /* INTEGRATIONS_STORE_H */
