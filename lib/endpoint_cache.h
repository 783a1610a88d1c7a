/* Internal: the context's cache of webhook endpoints for receiving.
 *
 * integ_webhook_receive needs the endpoint record (and for some endpoints
 * the definition) on every delivery; reading and parsing it was a quarter
 * of a delivery's own work. A snapshot is loaded once and shared by the
 * receivers of every thread until it is older than the context option
 * webhook.endpoint_cache_ms (default 1000; 0: no cache) or until the
 * context changes an endpoint, a definition's app credentials, deletes an
 * integration or rotates the master key (ig_ep_cache_changed, called after
 * the change committed). Changes made by another context or process take
 * effect within the cache time.
 *
 * json-c's reference counts are not atomic: a snapshot's objects are only
 * ever read while shared (no get/put, nothing serialised); the snapshot
 * itself is reference counted with an atomic counter. */
#ifndef IG_ENDPOINT_CACHE_H
#define IG_ENDPOINT_CACHE_H

#include <json-c/json.h>
#include <stdint.h>

#include "integrations/common.h"

typedef struct ig_ep_cache ig_ep_cache;

/* An endpoint as receiving sees it. ep and def (may be NULL) are read-only;
 * so is `derived`, what the loader worked out once for every delivery
 * (the opened secrets), released with the snapshot by derived_free. */
typedef struct ig_ep_snap {
    json_object *ep;
    json_object *def;
    void *derived;
    void (*derived_free)(void *derived);
} ig_ep_snap;

/* Loads the endpoint (and, when needed, its definition) from the store
 * into out (zeroed; whatever it set is released on failure too);
 * INTEG_ENOTFOUND when there is none (never cached). */
typedef int (*ig_ep_loader)(integ_ctx *ctx, const char *endpoint_id, ig_ep_snap *out);

int ig_ep_cache_new(ig_ep_cache **out);
void ig_ep_cache_free(ig_ep_cache *c);

/* The snapshot of endpoint_id: cached, or loaded with `load` (and cached
 * when ttl_ms > 0). Release it with ig_ep_snap_release. */
int ig_ep_cache_get(integ_ctx *ctx, ig_ep_cache *c, const char *endpoint_id, int64_t now_ms, int64_t ttl_ms,
                    ig_ep_loader load, const ig_ep_snap **out);

void ig_ep_snap_release(const ig_ep_snap *s);

/* Something receiving reads has changed (and committed): drop every snapshot. */
void ig_ep_cache_changed(ig_ep_cache *c);

#endif /* IG_ENDPOINT_CACHE_H */
