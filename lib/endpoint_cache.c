/* The webhook endpoint cache; see endpoint_cache.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint_cache.h"
#include "error.h"

#define SLOTS 64 /* direct-mapped by a hash of the id: a miss only costs a load */

struct snap {
    ig_ep_snap pub;     /* first: the public view is the snapshot */
    atomic_int refs;
    uint64_t gen;
    int64_t loaded_ms;
    char id[65];
};

struct ig_ep_cache {
    pthread_mutex_t mu;
    struct snap *slot[SLOTS];
    _Atomic uint64_t gen; /* bumped by ig_ep_cache_changed */
};

int ig_ep_cache_new(ig_ep_cache **out)
{
    *out = NULL;
    ig_ep_cache *c = calloc(1, sizeof *c);
    if (!c)
        return ig_err(INTEG_ENOMEM, "out of memory");
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return ig_err(INTEG_ENOMEM, "out of resources creating the endpoint cache");
    }
    atomic_init(&c->gen, 1);
    *out = c;
    return INTEG_OK;
}

static void snap_clear(ig_ep_snap *p)
{
    json_object_put(p->ep);
    json_object_put(p->def);
    if (p->derived_free)
        p->derived_free(p->derived);
}

void ig_ep_snap_release(const ig_ep_snap *p)
{
    struct snap *s = (struct snap *)p;
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    snap_clear(&s->pub);
    free(s);
}

void ig_ep_cache_free(ig_ep_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < SLOTS; i++)
        ig_ep_snap_release(c->slot[i] ? &c->slot[i]->pub : NULL);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void ig_ep_cache_changed(ig_ep_cache *c)
{
    if (c)
        atomic_fetch_add(&c->gen, 1);
}

static unsigned slot_of(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h % SLOTS;
}

int ig_ep_cache_get(integ_ctx *ctx, ig_ep_cache *c, const char *endpoint_id, int64_t now_ms, int64_t ttl_ms,
                    ig_ep_loader load, const ig_ep_snap **out)
{
    *out = NULL;
    unsigned k = slot_of(endpoint_id);
    /* The generation is read before the store: a change committed after
     * this point bumps it, so what we load now is never kept past it. */
    uint64_t gen = atomic_load(&c->gen);
    if (ttl_ms > 0) {
        pthread_mutex_lock(&c->mu);
        struct snap *s = c->slot[k];
        if (s && s->gen == gen && now_ms - s->loaded_ms < ttl_ms && now_ms >= s->loaded_ms &&
            !strcmp(s->id, endpoint_id)) {
            atomic_fetch_add(&s->refs, 1);
            pthread_mutex_unlock(&c->mu);
            *out = &s->pub;
            return INTEG_OK;
        }
        pthread_mutex_unlock(&c->mu);
    }
    struct snap *s = calloc(1, sizeof *s);
    if (!s)
        return ig_err(INTEG_ENOMEM, "out of memory");
    int rc = load(ctx, endpoint_id, &s->pub);
    if (rc) {
        snap_clear(&s->pub);
        free(s);
        return rc;
    }
    snprintf(s->id, sizeof s->id, "%s", endpoint_id);
    s->gen = gen;
    s->loaded_ms = now_ms;
    atomic_init(&s->refs, 1); /* the caller's */
    if (ttl_ms > 0 && strlen(endpoint_id) < sizeof s->id) {
        atomic_fetch_add(&s->refs, 1); /* the cache's */
        pthread_mutex_lock(&c->mu);
        struct snap *old = c->slot[k];
        c->slot[k] = s;
        pthread_mutex_unlock(&c->mu);
        ig_ep_snap_release(old ? &old->pub : NULL);
    }
    *out = &s->pub;
    return INTEG_OK;
}
