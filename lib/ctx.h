/* Internal: the context and session structures, transactions, permissions
 * and secret sealing bound to the context's master key. */
#ifndef IG_CTX_H
#define IG_CTX_H

#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>

#include "crypto.h"
#include "http.h"
#include "json.h"
#include "ratelimit.h"
#include "endpoint_cache.h"
#include "webhook_ingest.h"
#include "integrations/adapter.h"
#include "integrations/integrations.h"

struct integ_ctx {
    const integ_store *store;
    void *store_data;

    /* The master key lives in sodium_malloc'd (guarded, locked) memory. The
     * rwlock lets integ_ctx_rotate_master_key swap it while no seal/open is
     * in flight. */
    ig_master_key *mk;
    pthread_rwlock_t key_lock;

    /* Parsed options; read-only after open. */
    json_object *options;

    pthread_mutex_t cb_lock; /* guards the callback pointers */
    integ_permission_cb perm_cb;
    void *perm_payload;
    const integ_entity_store *entity_store; /* NULL: the built-in one */
    void *entity_store_payload;
    struct ig_adapter_entry *adapters;       /* host C adapters by definition key */
    integ_event_cb event_cb;
    void *event_payload;

    /* One reference for the ctx handle plus one per open session: the real
     * close happens when the count drops to zero. */
    atomic_int refs;
    atomic_int closed;

    /* The HTTP transport, made on first use (so tests can set the clock
     * first), and one rate budget per integration. */
    pthread_mutex_t http_lock;
    ig_http *http;
    const ig_clock *clock;
    struct ig_bucket_entry *buckets;

    /* UUIDv7 generator state: ids made through one context are strictly
     * increasing, so "newest first" holds within a millisecond too. */
    _Atomic uint64_t id_state;
    unsigned char id_key[32]; /* random, for ig_uuid7_next */

    /* Received webhook events waiting for a shared commit (webhook_ingest.c). */
    ig_wh_ingest ingest;
    /* Endpoint snapshots for receiving (endpoint_cache.c). */
    struct ig_ep_cache *ep_cache;
    /* The public form of definition records, by their text (definitions.c). */
    struct ig_def_cache *def_cache;
    /* Pull pages committed by the writer thread, and those of them that
     * met a link made meanwhile and were applied again (sync.c; read by
     * tests through ig_sync_writer_stats). */
    _Atomic uint64_t writer_pages, writer_retries;
};

struct integ_session {
    integ_ctx *ctx;
    char *tenant_id;
    char *user_id;
    json_object *roles; /* array of strings, never NULL */
};

/* A new time-ordered id for a record made at `now_ms`. */
void ig_ctx_new_id(integ_ctx *ctx, char out[37], int64_t now_ms);

/* The context's HTTP transport (created on first use). */
int ig_ctx_http(integ_ctx *ctx, ig_http **out);

/* The rate budget of one integration, created from the manifest's
 * rate_limit on first use; owned by the context. */
int ig_ctx_bucket(integ_ctx *ctx, const char *integration_id, json_object *rate_limit, ig_bucket **out);

/* The clock for time-dependent behaviour (tests inject one before first use). */
const ig_clock *ig_ctx_clock(integ_ctx *ctx);
void ig_ctx_set_clock(integ_ctx *ctx, const ig_clock *clock);

/* That clock's now, in unix ms. */
int64_t ig_ctx_now_ms(integ_ctx *ctx);

/* Emit a notification {"type", "at", ...fields of `fields` (borrowed)}. */
void ig_emit(integ_ctx *ctx, const char *type, json_object *fields);

/* Drop one reference; the last one destroys the context. */
void ig_ctx_unref(integ_ctx *ctx);

/* Start / finish a store transaction (commit = 0 rolls back). end always
 * releases the handle; when commit fails its error is returned. */
int ig_tx_begin(integ_ctx *ctx, int write, void **tx);
int ig_tx_end(integ_ctx *ctx, void *tx, int commit, int rc);

/* Fetch one record as a parsed object (owned by the caller). */
int ig_store_get(integ_ctx *ctx, void *tx, integ_store_kind kind, const char *tenant_id,
                 const char *id, json_object **out);

/* The tenant's integration record `id`; INTEG_ENOTFOUND names it (another
 * tenant's id reads as not found, never as forbidden). */
int ig_integration_get(integ_ctx *ctx, void *tx, const char *tenant_id, const char *id,
                       json_object **out);

/* A new tenant integration record, built the one way both
 * integ_integration_create and the OAuth callback (integ_oauth_complete)
 * insert one (integrations.c): id, tenant_id, the definition's id, key and
 * category, name (`name`, else the manifest's), auth_type, config (`config`,
 * NULL for {}, copied and validated against the definition's config_schema
 * with defaults applied: errors name "config.<path>"), status (`status`,
 * else "active" with credentials or auth type "none", else "needs_reauth"),
 * last_sync_at null, next_run_at_ms (ig_integration_schedule), created_at
 * and updated_at, and credentials_sealed when `creds` is given. *out is
 * owned by the caller; the caller stores it and writes the audit entry. */
int ig_integration_record_new(integ_ctx *ctx, const char *tenant_id, json_object *def, json_object *name,
                              const char *auth_type, json_object *config, const char *status,
                              json_object *creds, json_object **out);

/* Keep an integration record's next_run_at_ms in step with its config:
 * auto_sync on and nothing scheduled is due now (integ_run_due, then every
 * sync_interval); auto_sync off unschedules (null). */
void ig_integration_schedule(integ_ctx *ctx, json_object *rec);

/* Append to `rows` the records of `kind` hanging off the tenant's
 * integration `integration_id` that match q (may be NULL; tenant_id and
 * integration_id are added to it), in one read transaction that first
 * checks the integration is the tenant's (INTEG_ENOTFOUND names it). */
int ig_integration_records(integ_ctx *ctx, const char *tenant_id, const char *integration_id,
                           integ_store_kind kind, json_object *q, json_object *rows);

/* Append every matching record (parsed) to the array `arr`. */
int ig_store_list(integ_ctx *ctx, void *tx, integ_store_kind kind, json_object *query,
                  json_object *arr);

/* Put a parsed record. */
int ig_store_put(integ_ctx *ctx, void *tx, integ_store_kind kind, json_object *rec,
                 integ_put_mode mode);

/* Put a parsed record with its blob (NULL, 0: none). */
int ig_store_put_blob(integ_ctx *ctx, void *tx, integ_store_kind kind, json_object *rec,
                      const unsigned char *blob, size_t blob_len, integ_put_mode mode);

/* Puts made ready on one thread and run on another (a pull's writer):
 * each record's text and indexed fields are copied into one buffer, so
 * the running thread reads plain bytes and no json-c object. Reset and
 * refill a batch to reuse its memory. */
typedef struct ig_put_batch ig_put_batch;

ig_put_batch *ig_put_batch_new(void);
void ig_put_batch_reset(ig_put_batch *b);
void ig_put_batch_free(ig_put_batch *b);

/* Append a put of rec (read now, not kept). INTEG_EINVAL as ig_store_put
 * would say it, INTEG_ENOMEM. */
int ig_put_batch_add(integ_ctx *ctx, ig_put_batch *b, integ_store_kind kind, json_object *rec, integ_put_mode mode);

/* For a record the caller writes itself: append its compact JSON to the
 * batch's buffer (ig_put_batch_text; *start is where it begins), then add
 * the put with its indexed fields as ig_store_fields_from gives them (one
 * per column of the kind's table; their strings are copied). */
ig_jbuf *ig_put_batch_text(ig_put_batch *b, size_t *start);
int ig_put_batch_add_written(integ_ctx *ctx, ig_put_batch *b, integ_store_kind kind, size_t start,
                             const integ_store_field *f, size_t n, integ_put_mode mode);

/* Run the batch's puts in order in tx; the first failure stops it. */
int ig_put_batch_run(integ_ctx *ctx, void *tx, const ig_put_batch *b);

/* Seal / open under the context's current master key (see crypto.h). */
int ig_ctx_seal(integ_ctx *ctx, const char *tenant_id, const char *object_id, const char *purpose,
                const char *plain, size_t len, char **out);
int ig_ctx_open_sealed(integ_ctx *ctx, const char *tenant_id, const char *object_id,
                       const char *purpose, const char *sealed, char **out, size_t *out_len);

/* INTEG_OK when the session may write integrations, else INTEG_EPERM with
 * a message naming the user, tenant and permission. */
int ig_session_require_admin(integ_session *s);

/* Common entry check for session calls: non-NULL session whose context is open. */
int ig_session_check(integ_session *s);

/* The start of a public session call: clear the thread's message, set
 * *out_json (when out_json is given) to NULL so it is NULL on every
 * failure, then ig_session_check. */
int ig_session_enter(integ_session *s, char **out_json);

#endif
