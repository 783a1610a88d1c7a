/*
 * libintegrations — adapters: how the library talks to one external system.
 *
 * Every definition runs on the built-in REST engine, driven by its JSON
 * manifest (doc/manifest.md). When a system needs something a manifest
 * cannot express, a C host registers an adapter for that definition key;
 * the sync engine then calls the adapter instead of the REST engine, and
 * keeps doing everything else (leases, checkpoints, mapping, entity links,
 * logs, audit) itself. The manifest still describes the entities (local
 * entity, id and updated-at fields, default mapping).
 *
 * Each function receives the adapter's payload and an integ_adapter_call:
 * the integration's config, opened credentials and base URL for the length
 * of the call. Results go back through `reply` as JSON (copied by the
 * library before it returns). Return INTEG_OK or a negative INTEG_E* code
 * with a message set by integ_error_set(): INTEG_EAUTH for rejected
 * credentials, INTEG_ERATELIMIT, INTEG_ENETWORK, INTEG_EREMOTE, ... as the
 * REST engine does. A member may be NULL when the adapter cannot do it
 * (INTEG_EUNSUPPORTED is then reported). Calls come from any thread.
 *
 * INTEG_EAUTH means the remote refused the credentials (its 401) and is
 * treated as a 401 on the REST path: when the auth method has a token to
 * renew (oauth2 with a refresh token, client credentials, JWT bearer,
 * session login), the library gets one fresh token and calls the same
 * function once more with the new credentials; any reply of the refused
 * call is dropped. This holds for test_connection, list_page, fetch_one,
 * create, update and remove, create included (a refused request was not
 * acted on), so return INTEG_EAUTH only when the remote did not act; a
 * refusal a new token cannot fix (a 403, say) costs one renewal. A second
 * INTEG_EAUTH is final, as is the first for api_key, basic and none; a
 * renewal the provider refuses (invalid_grant) marks the integration
 * needs_reauth (doc/sync.md, "Host C adapters").
 */
#ifndef INTEGRATIONS_ADAPTER_H
#define INTEGRATIONS_ADAPTER_H

#include <stddef.h>

#include "integrations/common.h"
#include "integrations/entity_store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The vtable layout version this header describes. */
#define INTEG_ADAPTER_VERSION 1

/** One call's context, lent for the call. */
typedef struct integ_adapter_call integ_adapter_call;

/** The integration's config (JSON object). */
INTEG_API const char *integ_adapter_call_config(const integ_adapter_call *call);
/**
 * The integration's credentials (JSON object, "{}" when none), made current
 * before the call as for a REST request: an oauth2 access token is
 * refreshed ahead of expiry; a client-credentials, JWT-bearer or session
 * token is obtained or renewed and given as "access_token". After the call
 * returned INTEG_EAUTH, the call made again gets renewed ones. A secret:
 * never log it.
 */
INTEG_API const char *integ_adapter_call_credentials(const integ_adapter_call *call);
/** The resolved base URL (the manifest's, or the host's base_url_overrides). */
INTEG_API const char *integ_adapter_call_base_url(const integ_adapter_call *call);
/** The tenant and integration the call is for. */
INTEG_API const char *integ_adapter_call_tenant_id(const integ_adapter_call *call);
INTEG_API const char *integ_adapter_call_integration_id(const integ_adapter_call *call);

typedef struct integ_adapter {
    /** INTEG_ADAPTER_VERSION when the adapter was written. */
    int version;

    /** A cheap authenticated call. Reply (optional): {"message": "..."}. */
    int (*test_connection)(void *payload, const integ_adapter_call *call, integ_reply_cb reply,
                           void *reply_payload);

    /**
     * One page of an entity. request_json: {"cursor": <the previous reply's
     * next_cursor, any JSON> | null, "since": RFC3339 | null}. Reply:
     * {"records": [...], "next_cursor": <JSON> | null} (null: last page).
     */
    int (*list_page)(void *payload, const integ_adapter_call *call, const char *entity,
                     const char *request_json, integ_reply_cb reply, void *reply_payload);

    /** One record by remote id. Reply: the record. */
    int (*fetch_one)(void *payload, const integ_adapter_call *call, const char *entity,
                     const char *external_id, integ_reply_cb reply, void *reply_payload);

    /** Create a record (remote shape). Reply: the created record, with its id. */
    int (*create)(void *payload, const integ_adapter_call *call, const char *entity,
                  const char *record_json, integ_reply_cb reply, void *reply_payload);

    /** Update a record. Reply: the updated record. */
    int (*update)(void *payload, const integ_adapter_call *call, const char *entity,
                  const char *external_id, const char *record_json, integ_reply_cb reply,
                  void *reply_payload);

    /** Delete (or archive) a record. */
    int (*remove)(void *payload, const integ_adapter_call *call, const char *entity,
                  const char *external_id);

    /**
     * Parse a verified webhook delivery into events. headers_json is an
     * object of header name -> value. Reply: [{"event_type", "entity",
     * "external_id", "record"?}].
     */
    int (*parse_webhook)(void *payload, const integ_adapter_call *call, const char *headers_json,
                         const unsigned char *body, size_t body_len, integ_reply_cb reply,
                         void *reply_payload);

    /**
     * Release the payload (may be NULL); called once: when the context
     * closes, or after a replacing registration (see integ_adapter_register).
     */
    void (*destroy)(void *payload);
} integ_adapter;

/**
 * Use `adapter` for every integration of the definition `definition_key`
 * (which must exist). Replaces an earlier registration for that key:
 * operations that started after this call use the new adapter; those
 * already running (a sync, on this thread or another) finish with the
 * earlier one, whose destroy is called once the last of them has ended (at
 * the latest when the context closes), never while one of its functions
 * may still be called. The vtable must outlive the context.
 */
INTEG_API int integ_adapter_register(integ_ctx *ctx, const char *definition_key,
                                     const integ_adapter *adapter, void *payload);

#ifdef __cplusplus
}
#endif

#endif /* INTEGRATIONS_ADAPTER_H */
