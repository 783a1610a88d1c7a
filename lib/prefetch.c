/* Page prefetching for pulls; see prefetch.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "prefetch.h"

#define MAX_DEPTH 4

struct slot {
    ig_page page;
    int rc;
    char msg[512];
};

struct ig_prefetch {
    ig_conn *c;            /* the fetch thread's own connection */
    char *entity;
    json_object *state;    /* the fetch thread's copy */
    int64_t since_ms;
    int depth;
    ig_page_prep_fn prep;
    const void *prep_arg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct slot q[MAX_DEPTH]; /* ring: head, count */
    int head, count;
    int stop;
    ig_page done[MAX_DEPTH + 2]; /* given back, to free here */
    int n_done;
};

/* Free the pages given back (under mu: taken out first, freed outside). */
static void free_done(ig_prefetch *p)
{
    ig_page done[MAX_DEPTH + 2];
    pthread_mutex_lock(&p->mu);
    int n = p->n_done;
    memcpy(done, p->done, (size_t)n * sizeof done[0]);
    p->n_done = 0;
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < n; i++)
        ig_page_free(&done[i]);
}

static void *fetch_main(void *arg)
{
    ig_prefetch *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->count == p->depth && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        int stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        free_done(p);
        struct slot s;
        memset(&s, 0, sizeof s);
        s.rc = ig_rest_list_page(p->c, p->entity, p->state, p->since_ms, &s.page);
        if (s.rc == INTEG_OK && p->prep && (s.rc = p->prep(p->prep_arg, &s.page)) != INTEG_OK)
            ig_page_free(&s.page);
        if (s.rc)
            snprintf(s.msg, sizeof s.msg, "%s", ig_errmsg());
        /* The page goes to the caller whole; the next request is built from
         * this thread's own copy of its state. */
        json_object_put(p->state);
        p->state = s.rc == INTEG_OK && s.page.next_state ? ig_json_copy(s.page.next_state) : NULL;
        if (s.rc == INTEG_OK && s.page.next_state && !p->state) {
            ig_page_free(&s.page);
            s.rc = INTEG_ENOMEM;
            snprintf(s.msg, sizeof s.msg, "out of memory");
        }
        int last = s.rc != INTEG_OK || !p->state;
        pthread_mutex_lock(&p->mu);
        p->q[(p->head + p->count) % MAX_DEPTH] = s;
        p->count++;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (last)
            break;
    }
    return NULL;
}

/* Release what start made (the thread is not running). */
static void prefetch_free(ig_prefetch *p, int sync_objects)
{
    if (sync_objects) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    json_object_put(p->state);
    ig_conn_close(p->c);
    free(p->entity);
    free(p);
}

int ig_prefetch_start(ig_prefetch **out, integ_ctx *ctx, const char *tenant_id, const char *integration_id,
                      const char *entity, json_object *state, int64_t since_ms, int depth, ig_page_prep_fn prep,
                      const void *prep_arg)
{
    *out = NULL;
    ig_prefetch *p = calloc(1, sizeof *p);
    if (!p || !(p->entity = strdup(entity))) {
        free(p);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    int rc = ig_conn_open(ctx, tenant_id, integration_id, &p->c);
    if (rc) {
        prefetch_free(p, 0);
        return rc;
    }
    p->state = state ? ig_json_copy(state) : NULL;
    p->since_ms = since_ms;
    p->prep = prep;
    p->prep_arg = prep_arg;
    p->depth = depth < 1 ? 1 : depth > MAX_DEPTH ? MAX_DEPTH : depth;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, fetch_main, p) != 0) {
        prefetch_free(p, 1);
        return ig_err(INTEG_EINTERNAL, "could not start the page fetch thread");
    }
    *out = p;
    return INTEG_OK;
}

int ig_prefetch_next(ig_prefetch *p, ig_page *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&p->mu);
    while (p->count == 0)
        pthread_cond_wait(&p->cv, &p->mu);
    struct slot s = p->q[p->head];
    p->head = (p->head + 1) % MAX_DEPTH;
    p->count--;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (s.rc)
        return ig_err(s.rc, "%s", s.msg);
    *out = s.page;
    return INTEG_OK;
}

void ig_prefetch_release(ig_prefetch *p, ig_page *page)
{
    if (!page->records && !page->next_state && !page->prep)
        return; /* handed on whole, or empty */
    pthread_mutex_lock(&p->mu);
    /* The thread frees them before each request and stops after the last
     * page; a full list (it has ended) is freed here. */
    int here = p->n_done == (int)(sizeof p->done / sizeof p->done[0]);
    if (!here)
        p->done[p->n_done++] = *page;
    pthread_mutex_unlock(&p->mu);
    if (here)
        ig_page_free(page);
    memset(page, 0, sizeof *page);
}

void ig_prefetch_stop(ig_prefetch *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    free_done(p);
    for (; p->count > 0; p->count--) {
        ig_page_free(&p->q[p->head].page);
        p->head = (p->head + 1) % MAX_DEPTH;
    }
    prefetch_free(p, 1);
}
