/* Host C adapters (integrations/adapter.h): the registry, the per-call
 * context, and the sync engine's adapter path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "definitions.h"
#include "engine.h"
#include "error.h"
#include "json.h"
#include "util.h"

/* One registration. ctx->adapters lists the current registration of each
 * key and the replaced ones that connections still hold. `refs` counts the
 * registry's reference (while current) and one per open connection
 * (ig_ctx_adapter); the last release calls the host's destroy. Guarded by
 * ctx->cb_lock. */
struct ig_adapter_entry {
    struct ig_adapter_entry *next;
    const integ_adapter *adapter;
    void *payload;
    int refs;
    int retired; /* replaced by a later registration: no longer found by key */
    char key[];
};

/* Drop one reference (under cb_lock); the entry when it was the last, now
 * unlinked, for the caller to destroy outside the lock. */
static struct ig_adapter_entry *unref_locked(integ_ctx *ctx, struct ig_adapter_entry *e)
{
    if (--e->refs > 0)
        return NULL;
    for (struct ig_adapter_entry **p = &ctx->adapters; *p; p = &(*p)->next) {
        if (*p == e) {
            *p = e->next;
            break;
        }
    }
    return e;
}

static void entry_destroy(struct ig_adapter_entry *e)
{
    if (!e)
        return;
    if (e->adapter->destroy)
        e->adapter->destroy(e->payload);
    free(e);
}

struct integ_adapter_call {
    char *config;
    char *credentials;
    const char *base_url;
    const char *tenant_id;
    const char *integration_id;
};

INTEG_API const char *integ_adapter_call_config(const integ_adapter_call *call) { return call ? call->config : NULL; }
INTEG_API const char *integ_adapter_call_credentials(const integ_adapter_call *call) { return call ? call->credentials : NULL; }
INTEG_API const char *integ_adapter_call_base_url(const integ_adapter_call *call) { return call ? call->base_url : NULL; }
INTEG_API const char *integ_adapter_call_tenant_id(const integ_adapter_call *call) { return call ? call->tenant_id : NULL; }
INTEG_API const char *integ_adapter_call_integration_id(const integ_adapter_call *call)
{
    return call ? call->integration_id : NULL;
}

INTEG_API int integ_adapter_register(integ_ctx *ctx, const char *definition_key, const integ_adapter *adapter,
                                     void *payload)
{
    ig_err_clear();
    IG_CHECK_ARG(ctx, "ctx");
    IG_CHECK_ARG(definition_key && *definition_key, "definition_key");
    IG_CHECK_ARG(adapter, "adapter");
    if (adapter->version < 1)
        return ig_err(INTEG_EINVAL, "adapter: unknown vtable version %d", adapter->version);
    void *tx = NULL;
    json_object *def = NULL;
    int rc = ig_tx_begin(ctx, 0, &tx);
    if (rc == INTEG_OK)
        rc = ig_tx_end(ctx, tx, 1, ig_definition_lookup(ctx, tx, definition_key, &def));
    if (rc)
        return ig_err_prefix(rc, "definition_key");
    const char *key = ig_json_str(def, "key");
    size_t n = strlen(key) + 1;
    struct ig_adapter_entry *e = malloc(sizeof *e + n);
    if (!e) {
        json_object_put(def);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    memcpy(e->key, key, n);
    e->adapter = adapter;
    e->payload = payload;
    e->refs = 1; /* the registry's */
    e->retired = 0;
    json_object_put(def);
    struct ig_adapter_entry *gone = NULL;
    pthread_mutex_lock(&ctx->cb_lock);
    for (struct ig_adapter_entry *p = ctx->adapters; p; p = p->next) {
        if (!p->retired && !strcmp(p->key, e->key)) {
            /* Connections that hold it keep using it; the last one to
             * close destroys it. */
            p->retired = 1;
            gone = unref_locked(ctx, p);
            break;
        }
    }
    e->next = ctx->adapters;
    ctx->adapters = e;
    pthread_mutex_unlock(&ctx->cb_lock);
    entry_destroy(gone);
    return INTEG_OK;
}

const integ_adapter *ig_ctx_adapter(integ_ctx *ctx, const char *key, void **handle)
{
    const integ_adapter *a = NULL;
    *handle = NULL;
    pthread_mutex_lock(&ctx->cb_lock);
    for (struct ig_adapter_entry *e = ctx->adapters; e; e = e->next) {
        if (!e->retired && !strcmp(e->key, key)) {
            e->refs++;
            a = e->adapter;
            *handle = e;
            break;
        }
    }
    pthread_mutex_unlock(&ctx->cb_lock);
    return a;
}

void ig_conn_adapter_release(ig_conn *c)
{
    struct ig_adapter_entry *e = c->adapter_payload;
    c->adapter = NULL;
    c->adapter_payload = NULL;
    if (!e)
        return;
    pthread_mutex_lock(&c->ctx->cb_lock);
    struct ig_adapter_entry *gone = unref_locked(c->ctx, e);
    pthread_mutex_unlock(&c->ctx->cb_lock);
    entry_destroy(gone);
}

void ig_adapters_free(integ_ctx *ctx)
{
    /* Every connection has closed: the current registrations and any
     * replaced one a connection did not release. */
    while (ctx->adapters) {
        struct ig_adapter_entry *e = ctx->adapters;
        ctx->adapters = e->next;
        entry_destroy(e);
    }
}

/* The host's payload of the registration the connection holds. */
static void *payload_of(ig_conn *c)
{
    return ((struct ig_adapter_entry *)c->adapter_payload)->payload;
}

/* The credentials as the adapter sees them, made current first as the REST
 * engine does before a request (ig_auth_prepare: an oauth2 access token is
 * refreshed ahead of expiry; a client-credentials, JWT-bearer or session
 * token is obtained or renewed). Such a runtime token is added as
 * "access_token". */
static int call_credentials(ig_conn *c, char **out)
{
    *out = NULL;
    int rc = ig_auth_prepare(c);
    if (rc)
        return rc;
    json_object *creds = c->credentials, *view = NULL;
    const char *at = ig_json_str(c->token, "access_token");
    const char *cur = ig_json_str(creds, "access_token");
    if (at && (!cur || strcmp(at, cur) != 0)) {
        view = creds ? ig_json_copy(creds) : json_object_new_object();
        if (!view)
            return ig_err(INTEG_ENOMEM, "out of memory");
        json_object_object_add(view, "access_token", json_object_new_string(at));
        creds = view;
    }
    if (creds)
        rc = ig_json_to_secret_string(creds, out);
    else if (!(*out = strdup("{}")))
        rc = ig_err(INTEG_ENOMEM, "out of memory");
    ig_json_wipe_put(view);
    return rc;
}

static int call_make(ig_conn *c, integ_adapter_call *call)
{
    memset(call, 0, sizeof *call);
    call->base_url = c->base_url;
    call->tenant_id = c->tenant_id;
    call->integration_id = ig_json_str(c->integration, "id");
    int rc = ig_json_to_string(c->config ? c->config : NULL, &call->config);
    if (rc == INTEG_OK && !c->config) {
        free(call->config);
        call->config = strdup("{}");
    }
    if (rc == INTEG_OK && !call->config)
        rc = ig_err(INTEG_ENOMEM, "out of memory");
    if (rc == INTEG_OK)
        rc = call_credentials(c, &call->credentials);
    return rc;
}

static void call_free(integ_adapter_call *call)
{
    free(call->config);
    if (call->credentials)
        ig_free_secret(call->credentials, strlen(call->credentials));
}

/* The adapter returned INTEG_EAUTH (`*rc`): the rule of the REST engine
 * after a 401 (ig_req_send). A token method gets one fresh token
 * (ig_auth_after_401: single flight, compare-and-set, needs_reauth on
 * invalid_grant, at most 3 renewals per connection) and the call is made
 * once more with it; this holds for create as well (the remote refused the
 * request, so it did not act). 1: call the adapter again with `call`'s new
 * credentials. 0: give up with *rc, which stays INTEG_EAUTH (the message is
 * the adapter's, or the failed renewal's) unless the fresh credentials
 * could not be handed over. */
static int renewed_after_eauth(ig_conn *c, integ_adapter_call *call, int *rc)
{
    if (*rc != INTEG_EAUTH || ig_auth_after_401(c) != INTEG_OK)
        return 0;
    char *fresh = NULL;
    int crc = call_credentials(c, &fresh);
    if (crc) {
        *rc = crc;
        return 0;
    }
    if (call->credentials)
        ig_free_secret(call->credentials, strlen(call->credentials));
    call->credentials = fresh;
    return 1;
}

/* One adapter operation and its arguments. */
enum op_kind { OP_TEST, OP_LIST, OP_FETCH, OP_CREATE, OP_UPDATE, OP_REMOVE };
struct op {
    enum op_kind kind;
    const char *entity, *id, *json;
};

static int call_once(ig_conn *c, integ_adapter_call *call, const struct op *op, json_object **reply)
{
    const struct integ_adapter *a = c->adapter;
    void *p = payload_of(c);
    switch (op->kind) {
    case OP_TEST:
        return a->test_connection(p, call, ig_json_reply_into, reply);
    case OP_LIST:
        return a->list_page(p, call, op->entity, op->json, ig_json_reply_into, reply);
    case OP_FETCH:
        return a->fetch_one(p, call, op->entity, op->id, ig_json_reply_into, reply);
    case OP_CREATE:
        return a->create(p, call, op->entity, op->json, ig_json_reply_into, reply);
    case OP_UPDATE:
        return a->update(p, call, op->entity, op->id, op->json, ig_json_reply_into, reply);
    case OP_REMOVE: {
        int rc = a->remove(p, call, op->entity, op->id);
        return rc == INTEG_ENOTFOUND ? INTEG_OK : rc; /* already gone */
    }
    }
    return ig_err(INTEG_EINTERNAL, "adapter: unknown operation");
}

/* Call the adapter with fresh credentials and, after INTEG_EAUTH, once more
 * with renewed ones (renewed_after_eauth; for a create too: the remote did
 * not act). *reply (may be NULL for remove) holds the last call's reply. */
static int invoke(ig_conn *c, const struct op *op, json_object **reply)
{
    const char *key = ig_json_str(c->definition, "key");
    integ_adapter_call call;
    int rc = call_make(c, &call);
    if (rc == INTEG_OK) {
        rc = call_once(c, &call, op, reply);
        if (rc)
            ig_err_prefix(rc, key);
        if (renewed_after_eauth(c, &call, &rc)) {
            if (reply) {
                json_object_put(*reply);
                *reply = NULL;
            }
            rc = call_once(c, &call, op, reply);
            if (rc)
                ig_err_prefix(rc, key);
        }
    }
    call_free(&call);
    return rc;
}

int ig_adapter_list_page(ig_conn *c, const char *entity, json_object *state, int64_t since_ms, ig_page *out)
{
    const char *key = ig_json_str(c->definition, "key");
    if (!c->adapter->list_page)
        return ig_err(INTEG_EUNSUPPORTED, "the %s adapter cannot list pages", key);
    json_object *req = json_object_new_object(), *reply = NULL;
    json_object_object_add(req, "cursor", json_object_get(ig_json_get(state, "cursor")));
    if (since_ms >= 0) {
        char at[32];
        ig_rfc3339(at, since_ms, 0);
        json_object_object_add(req, "since", json_object_new_string(at));
    } else {
        json_object_object_add(req, "since", NULL);
    }
    const struct op op = {OP_LIST, entity, NULL, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN)};
    int rc = invoke(c, &op, &reply);
    if (rc == INTEG_OK && !json_object_is_type(ig_json_get(reply, "records"), json_type_array))
        rc = ig_err(INTEG_EREMOTE, "the %s adapter's list_page reply has no \"records\" array", key);
    if (rc == INTEG_OK) {
        out->records = json_object_get(ig_json_get(reply, "records"));
        json_object *next = ig_json_get(reply, "next_cursor");
        if (next) {
            out->next_state = json_object_new_object();
            json_object_object_add(out->next_state, "cursor", json_object_get(next));
        }
        out->status = 200;
        out->attempts = 1;
    }
    json_object_put(reply);
    json_object_put(req);
    return rc;
}

int ig_adapter_test(ig_conn *c)
{
    const char *key = ig_json_str(c->definition, "key");
    if (!c->adapter->test_connection)
        return ig_err(INTEG_EUNSUPPORTED, "the %s adapter has no connection test", key);
    json_object *reply = NULL;
    const struct op op = {OP_TEST, NULL, NULL, NULL};
    int rc = invoke(c, &op, &reply);
    json_object_put(reply);
    return rc;
}

/* A reply that must be a record (fetch_one, create, update). */
static int adapter_record(const char *key, const char *what, int rc, json_object **out)
{
    if (rc == INTEG_OK && !json_object_is_type(*out, json_type_object))
        rc = ig_err(INTEG_EREMOTE, "the %s adapter's %s reply is not a record", key, what);
    if (rc) {
        json_object_put(*out);
        *out = NULL;
    }
    return rc;
}

int ig_adapter_fetch_one(ig_conn *c, const char *entity, const char *external_id, json_object **out)
{
    const char *key = ig_json_str(c->definition, "key");
    *out = NULL;
    if (!c->adapter->fetch_one)
        return ig_err(INTEG_EUNSUPPORTED, "the %s adapter cannot fetch one record", key);
    const struct op op = {OP_FETCH, entity, external_id, NULL};
    return adapter_record(key, "fetch_one", invoke(c, &op, out), out);
}

int ig_adapter_create(ig_conn *c, const char *entity, json_object *record, json_object **out)
{
    const char *key = ig_json_str(c->definition, "key");
    *out = NULL;
    if (!c->adapter->create)
        return ig_err(INTEG_EUNSUPPORTED, "the %s adapter cannot create records", key);
    const struct op op = {OP_CREATE, entity, NULL, json_object_to_json_string_ext(record, JSON_C_TO_STRING_PLAIN)};
    return adapter_record(key, "create", invoke(c, &op, out), out);
}

int ig_adapter_update(ig_conn *c, const char *entity, const char *external_id, json_object *record,
                      json_object **out)
{
    const char *key = ig_json_str(c->definition, "key");
    *out = NULL;
    if (!c->adapter->update)
        return ig_err(INTEG_EUNSUPPORTED, "the %s adapter cannot update records", key);
    const struct op op = {OP_UPDATE, entity, external_id, json_object_to_json_string_ext(record, JSON_C_TO_STRING_PLAIN)};
    int rc = invoke(c, &op, out);
    /* An adapter may reply nothing: the update stands, *out stays NULL. */
    if (rc == INTEG_OK && !*out)
        return INTEG_OK;
    return adapter_record(key, "update", rc, out);
}

int ig_adapter_remove(ig_conn *c, const char *entity, const char *external_id)
{
    const char *key = ig_json_str(c->definition, "key");
    if (!c->adapter->remove)
        return ig_err(INTEG_EUNSUPPORTED, "the %s adapter cannot delete records", key);
    const struct op op = {OP_REMOVE, entity, external_id, NULL};
    return invoke(c, &op, NULL);
}
