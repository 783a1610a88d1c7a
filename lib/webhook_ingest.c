/* Group commit of received webhook events (flat combining).
 *
 * Most of an insert-and-commit's cost is the COMMIT (WAL frames, fsync
 * policy, checkpoints), not the row: with receivers on many HTTP threads,
 * one commit for everything that arrived while the previous one ran costs
 * about as much as a commit for one. A 202 still means "committed": every
 * submitter waits until the transaction holding its event has returned OK.
 *
 * A batch is inserted first and checked only if that fails: a delivery the
 * store already holds (a provider's retry) fails its insert on the unique
 * (endpoint_id, event_id); the batch is then rolled back (on PostgreSQL a
 * failed statement aborts the whole transaction anyway) and inserted again
 * after one query that decides its duplicates. When anything else in a
 * batch fails, it is rolled back and every item is committed alone (the
 * pre-batch path), so one bad event fails only its own caller.
 *
 * On the built-in SQLite store's file, every insert goes through its inbox
 * (store_inbox.h), whose lock keeps duplicates exact between contexts.
 * With durability "normal" there is no commit per event to share: each
 * submitter appends its own event (inbox_submit); with "full" the leader
 * commits the batch through it (inbox_commit). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "error.h"
#include "json.h"
#include "store_sqlite.h"
#include "util.h"
#include "webhook_ingest.h"


struct ig_wh_ingest_item {
    ig_wh_ingest_item *next;
    json_object *ev; /* borrowed from the submitter */
    const char *endpoint_id, *event_id;
    const unsigned char *body;
    size_t body_len;
    size_t pos;    /* position in the batch: the first of equal deliveries wins */
    int duplicate; /* decided within the batch transaction */
    /* Written by the leader before `done`, read by the submitter after it
     * (both under mu). */
    int done;
    int rc;
    char msg[IG_ERRMSG_MAX]; /* never shorter than the original */
};

int ig_wh_ingest_init(ig_wh_ingest *q)
{
    memset(q, 0, sizeof *q);
    atomic_init(&q->preparing, 0);
    pthread_condattr_t ca;
    if (pthread_mutex_init(&q->mu, NULL) != 0)
        return ig_err(INTEG_ENOMEM, "webhook ingest: cannot create a mutex");
    if (pthread_condattr_init(&ca) != 0) {
        pthread_mutex_destroy(&q->mu);
        return ig_err(INTEG_ENOMEM, "webhook ingest: cannot create a condition variable");
    }
    /* The linger deadline must not move with the wall clock. */
    int ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(&q->lead_cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (ok && pthread_cond_init(&q->cv, NULL) != 0) {
        pthread_cond_destroy(&q->lead_cv);
        ok = 0;
    }
    if (!ok) {
        pthread_mutex_destroy(&q->mu);
        return ig_err(INTEG_ENOMEM, "webhook ingest: cannot create a condition variable");
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    q->cpus = cpus > 0 ? cpus : 1;
    q->ready = 1;
    return INTEG_OK;
}

void ig_wh_ingest_destroy(ig_wh_ingest *q)
{
    if (!q->ready)
        return;
    pthread_cond_destroy(&q->cv);
    pthread_cond_destroy(&q->lead_cv);
    pthread_mutex_destroy(&q->mu);
    q->ready = 0;
}

/* The inbox under durability "normal": each submitter appends its own
 * event, there is no leader to wait for anyone, and nothing is counted. */
static ig_inbox *appending(integ_ctx *ctx)
{
    int commit = 0;
    ig_inbox *inbox = ig_sqlite_inbox(ctx->store, ctx->store_data, &commit);
    return commit ? NULL : inbox;
}

void ig_wh_ingest_enter(integ_ctx *ctx)
{
    if (!appending(ctx))
        atomic_fetch_add(&ctx->ingest.preparing, 1);
}

void ig_wh_ingest_leave(integ_ctx *ctx)
{
    if (appending(ctx))
        return;
    ig_wh_ingest *q = &ctx->ingest;
    pthread_mutex_lock(&q->mu);
    atomic_fetch_sub(&q->preparing, 1);
    if (q->lingering)
        pthread_cond_signal(&q->lead_cv);
    pthread_mutex_unlock(&q->mu);
}

void ig_wh_ingest_stats(ig_wh_ingest *q, uint64_t *batches, uint64_t *events, size_t *pending)
{
    pthread_mutex_lock(&q->mu);
    if (batches)
        *batches = q->batches;
    if (events)
        *events = q->events;
    if (pending)
        *pending = q->pending;
    pthread_mutex_unlock(&q->mu);
}

/* ---- committing (the leader, outside mu) ---------------------------------- */

static void settle(ig_wh_ingest_item *it, int rc)
{
    it->rc = rc;
    it->msg[0] = '\0';
    if (rc != INTEG_OK && rc != INTEG_EEXISTS)
        snprintf(it->msg, sizeof it->msg, "%s", ig_errmsg());
}

/* The pre-batch path: one event, one transaction; the unique
 * (endpoint_id, event_id) index tells a duplicate. */
static void commit_alone(integ_ctx *ctx, ig_wh_ingest_item *it)
{
    void *tx = NULL;
    int rc = ig_tx_begin(ctx, 1, &tx);
    if (rc == INTEG_OK)
        rc = ig_tx_end(ctx, tx, 1,
                       ig_store_put_blob(ctx, tx, INTEG_KIND_WEBHOOK_EVENT, it->ev, it->body, it->body_len,
                                         INTEG_PUT_INSERT));
    settle(it, rc);
}

static int key_cmp(const ig_wh_ingest_item *a, const ig_wh_ingest_item *b)
{
    /* An item without a key sorts first and never equals another. */
    if (!a->endpoint_id || !a->event_id || !b->endpoint_id || !b->event_id)
        return (a->endpoint_id && a->event_id) - (b->endpoint_id && b->event_id);
    int c = strcmp(a->endpoint_id, b->endpoint_id);
    return c ? c : strcmp(a->event_id, b->event_id);
}

static int has_key(const ig_wh_ingest_item *it) { return it->endpoint_id && it->event_id; }

static int sort_cmp(const void *x, const void *y)
{
    const ig_wh_ingest_item *a = *(ig_wh_ingest_item *const *)x, *b = *(ig_wh_ingest_item *const *)y;
    int c = key_cmp(a, b);
    return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

/* Mark the items of s[0..n) (sorted, one endpoint, no two equal) whose
 * delivery the store already holds: one query for the whole group. */
static int mark_stored(integ_ctx *ctx, void *tx, ig_wh_ingest_item **s, size_t n)
{
    json_object *q = json_object_new_object(), *ops = json_object_new_object(), *in = json_object_new_array();
    json_object *rows = json_object_new_array();
    int rc = INTEG_OK;
    if (!q || !ops || !in || !rows) {
        /* A NULL query would list every event: never run it. */
        json_object_put(in);
        json_object_put(ops);
        rc = ig_err(INTEG_ENOMEM, "webhook ingest: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        json_object_array_add(in, json_object_new_string(s[i]->event_id));
    json_object_object_add(ops, "in", in);
    json_object_object_add(q, "endpoint_id", json_object_new_string(s[0]->endpoint_id));
    json_object_object_add(q, "event_id", ops);
    if (!ig_json_get(q, "endpoint_id") || !ig_json_get(q, "event_id")) {
        rc = ig_err(INTEG_ENOMEM, "webhook ingest: out of memory");
        goto out;
    }
    rc = ig_store_list(ctx, tx, INTEG_KIND_WEBHOOK_EVENT, q, rows);
    /* Rows are rare (a provider's retry): a linear scan per row is enough. */
    for (size_t r = 0; rc == INTEG_OK && r < ig_json_len(rows); r++) {
        const char *eid = ig_json_str(json_object_array_get_idx(rows, r), "event_id");
        for (size_t i = 0; eid && i < n; i++)
            if (!strcmp(s[i]->event_id, eid))
                s[i]->duplicate = 1;
    }
out:
    json_object_put(rows);
    json_object_put(q);
    return rc;
}

/* Mark the repeats within v[0..n) (duplicate = 1 on all but the first
 * submitted of equal deliveries); s receives v sorted by key. */
static void mark_repeats(ig_wh_ingest_item **v, size_t n, ig_wh_ingest_item **s)
{
    for (size_t i = 0; i < n; i++) {
        v[i]->pos = i;
        v[i]->duplicate = 0;
        s[i] = v[i];
    }
    qsort(s, n, sizeof *s, sort_cmp);
    /* Equal deliveries are now adjacent, the first submitted first. */
    for (size_t i = 1; i < n; i++)
        if (has_key(s[i]) && key_cmp(s[i - 1], s[i]) == 0)
            s[i]->duplicate = 1;
}

/* Decide the batch's duplicates (within it, then, when `check`, against
 * the store) and insert the rest, all in transaction tx. Unchecked, a
 * delivery the store already holds fails its insert with INTEG_EEXISTS
 * and the transaction must be rolled back. */
static int insert_batch(integ_ctx *ctx, void *tx, ig_wh_ingest_item **v, size_t n, int check)
{
    ig_wh_ingest_item *s[IG_WH_INGEST_MAX_BATCH];
    mark_repeats(v, n, s);
    int rc = INTEG_OK;
    for (size_t i = 0; check && rc == INTEG_OK && i < n;) {
        if (!has_key(s[i])) {
            i++;
            continue;
        }
        /* One endpoint's candidates: s[i..j) minus the in-batch repeats. */
        ig_wh_ingest_item *group[IG_WH_INGEST_MAX_BATCH];
        size_t j = i, k = 0;
        for (; j < n && !strcmp(s[j]->endpoint_id, s[i]->endpoint_id); j++)
            if (!s[j]->duplicate)
                group[k++] = s[j];
        rc = mark_stored(ctx, tx, group, k);
        i = j;
    }
    /* In submission order, as the pre-batch path would have inserted them. */
    for (size_t i = 0; rc == INTEG_OK && i < n; i++)
        if (!v[i]->duplicate)
            rc = ig_store_put_blob(ctx, tx, INTEG_KIND_WEBHOOK_EVENT, v[i]->ev, v[i]->body, v[i]->body_len,
                                   INTEG_PUT_INSERT);
    return rc;
}

/* The built-in SQLite store on a file: the event goes to its inbox
 * (store_inbox.h), one write under the inbox's own lock, duplicates
 * decided there. Group commit has nothing to share then: an append costs
 * less than handing a batch between threads (8 receivers on 2 cores:
 * 19.0-23.7k events/s through the leader, 22.0-29.9k appending directly). */
static int inbox_submit(ig_inbox *inbox, json_object *ev, const unsigned char *body, size_t body_len)
{
    char stack[4096];
    ig_jbuf text = {stack, 0, sizeof stack, 0, 0};
    if (ig_json_write(ev, &text)) {
        ig_jbuf_free(&text);
        return ig_err(INTEG_ENOMEM, "webhook ingest: out of memory");
    }
    ig_inbox_rec rec = {.endpoint_id = ig_json_str(ev, "endpoint_id"),
                        .event_id = ig_json_str(ev, "event_id"),
                        .json = text.p,
                        .json_len = text.n,
                        .blob = body,
                        .blob_len = body_len};
    int rc = ig_inbox_put(inbox, &rec, 1, 0);
    ig_jbuf_free(&text);
    if (rc != INTEG_OK)
        return rc;
    ig_err_clear();
    return rec.duplicate ? INTEG_EEXISTS : INTEG_OK;
}

/* Durability "full" on the built-in SQLite store's file: the batch is
 * committed through the inbox (ig_inbox_put commit 1), under its lock, so
 * no context appending to the inbox takes the same delivery meanwhile.
 * All or nothing; when a record fails it, each event is committed alone,
 * so only the culprit's caller sees the error. */
static void inbox_commit(ig_inbox *inbox, ig_wh_ingest_item **v, size_t n)
{
    ig_wh_ingest_item *s[IG_WH_INGEST_MAX_BATCH];
    mark_repeats(v, n, s);
    /* The records' text, one after another in one buffer. */
    char stack[8192];
    ig_jbuf text = {stack, 0, sizeof stack, 0, 0};
    size_t off[IG_WH_INGEST_MAX_BATCH], len[IG_WH_INGEST_MAX_BATCH];
    int rc = INTEG_OK;
    for (size_t i = 0; rc == INTEG_OK && i < n; i++) {
        off[i] = text.n;
        if (!v[i]->duplicate && ig_json_write(v[i]->ev, &text))
            rc = ig_err(INTEG_ENOMEM, "webhook ingest: out of memory");
        len[i] = text.n - off[i];
    }
    ig_inbox_rec recs[IG_WH_INGEST_MAX_BATCH];
    ig_wh_ingest_item *owner[IG_WH_INGEST_MAX_BATCH];
    size_t m = 0;
    for (size_t i = 0; rc == INTEG_OK && i < n; i++) {
        if (v[i]->duplicate)
            continue;
        owner[m] = v[i];
        recs[m++] = (ig_inbox_rec){.endpoint_id = v[i]->endpoint_id,
                                   .event_id = v[i]->event_id,
                                   .json = text.p + off[i],
                                   .json_len = len[i],
                                   .blob = v[i]->body,
                                   .blob_len = v[i]->body_len,
                                   .obj = v[i]->ev};
    }
    if (rc == INTEG_OK)
        rc = ig_inbox_put(inbox, recs, m, 1);
    ig_jbuf_free(&text);
    /* A record the store refused fails its own caller only: the others go
     * again, each alone. Anything else (busy, I/O) would fail them alike,
     * and each waiting out the busy timeout again would multiply the wait. */
    int culprit = 0;
    for (size_t i = 0; rc != INTEG_OK && i < m; i++)
        culprit |= recs[i].rejected;
    if (rc != INTEG_OK && culprit && n > 1) {
        for (size_t i = 0; i < n; i++)
            inbox_commit(inbox, &v[i], 1);
        return;
    }
    for (size_t i = 0; rc == INTEG_OK && i < m; i++)
        owner[i]->duplicate = recs[i].duplicate;
    for (size_t i = 0; i < n; i++)
        settle(v[i], rc != INTEG_OK ? rc : v[i]->duplicate ? INTEG_EEXISTS : INTEG_OK);
}

static void commit_batch(integ_ctx *ctx, ig_wh_ingest_item **v, size_t n)
{
    ig_inbox *inbox = ig_sqlite_inbox(ctx->store, ctx->store_data, NULL);
    if (inbox) {
        inbox_commit(inbox, v, n);
        return;
    }
    if (n == 1) {
        /* No duplicate query: the unique index answers for one insert. */
        commit_alone(ctx, v[0]);
        return;
    }
    void *tx = NULL;
    int rc = ig_tx_begin(ctx, 1, &tx);
    if (rc != INTEG_OK) {
        /* Nothing item-specific has happened yet: each caller alone would
         * have met the same busy or broken store. */
        for (size_t i = 0; i < n; i++)
            settle(v[i], rc);
        return;
    }
    /* A provider's retry is rare: insert first, and only when the store
     * already holds one of the deliveries (the unique index says so) roll
     * back and decide with a query. */
    rc = ig_tx_end(ctx, tx, 1, insert_batch(ctx, tx, v, n, 0));
    if (rc == INTEG_EEXISTS && (rc = ig_tx_begin(ctx, 1, &tx)) == INTEG_OK)
        rc = ig_tx_end(ctx, tx, 1, insert_batch(ctx, tx, v, n, 1));
    if (rc == INTEG_OK) {
        for (size_t i = 0; i < n; i++)
            settle(v[i], v[i]->duplicate ? INTEG_EEXISTS : INTEG_OK);
        return;
    }
    /* Rolled back (by ig_tx_end, or by the failed commit): give each event
     * its own transaction so only the culprit's caller sees the error. */
    for (size_t i = 0; i < n; i++)
        commit_alone(ctx, v[i]);
}

/* ---- submitting ------------------------------------------------------------ */

/* Are more events about to be queued? Receivers are still preparing theirs,
 * or fewer are queued than the last batch carried: the receivers it
 * released are likely on their way back (an HTTP server's threads between
 * two requests are not "preparing" yet). */
static int expecting(ig_wh_ingest *q)
{
    return q->pending < IG_WH_INGEST_MAX_BATCH && (atomic_load(&q->preparing) > 0 || q->pending < q->last_batch);
}

/* Wait (under mu, bounded) for the events that are expected, but only
 * while receivers outnumber the CPUs: then they queue for a core anyway,
 * so a waiting leader hands its core to one of them and the batch grows
 * for free; with a core each, a leader that waits idles its core and
 * committing at once (overlapping the others' preparation) is faster. A
 * lone receiver never waits. */
static void linger(ig_wh_ingest *q)
{
    long seen = atomic_load(&q->preparing) + (long)q->pending;
    if ((long)q->last_batch > seen)
        seen = (long)q->last_batch;
    if (seen <= q->cpus || !expecting(q))
        return;
    struct timespec until;
    ig_deadline_after_us(&until, IG_WH_INGEST_LINGER_US);
    q->lingering = 1;
    while (expecting(q))
        if (pthread_cond_timedwait(&q->lead_cv, &q->mu, &until) != 0)
            break; /* ETIMEDOUT */
    q->lingering = 0;
}

int ig_wh_ingest_submit(integ_ctx *ctx, json_object *ev, const unsigned char *body, size_t body_len)
{
    ig_wh_ingest *q = &ctx->ingest;
    ig_inbox *inbox = appending(ctx);
    if (inbox)
        return inbox_submit(inbox, ev, body, body_len);
    ig_wh_ingest_item it = {.ev = ev,
                            .endpoint_id = ig_json_str(ev, "endpoint_id"),
                            .event_id = ig_json_str(ev, "event_id"),
                            .body = body,
                            .body_len = body_len};
    pthread_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = &it;
    else
        q->head = &it;
    q->tail = &it;
    q->pending++;
    atomic_fetch_sub(&q->preparing, 1);
    if (q->lingering)
        pthread_cond_signal(&q->lead_cv);
    while (!it.done) {
        if (q->committing) {
            pthread_cond_wait(&q->cv, &q->mu);
            continue;
        }
        q->committing = 1;
        linger(q);
        /* Lead: take what is queued (ours is among it unless more than a
         * batch's worth came first: then this helps and goes round again). */
        ig_wh_ingest_item *v[IG_WH_INGEST_MAX_BATCH];
        size_t n = 0;
        while (q->head && n < IG_WH_INGEST_MAX_BATCH) {
            v[n++] = q->head;
            q->head = q->head->next;
        }
        if (!q->head)
            q->tail = NULL;
        q->pending -= n;
        pthread_mutex_unlock(&q->mu);
        commit_batch(ctx, v, n);
        pthread_mutex_lock(&q->mu);
        /* After this the waiters own their items again (they live on their
         * stacks): v is not touched past the loop. */
        for (size_t i = 0; i < n; i++)
            v[i]->done = 1;
        q->committing = 0;
        q->last_batch = n;
        q->batches++;
        q->events += n;
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    /* The leader's own message may be another caller's error by now. */
    if (it.rc != INTEG_OK && it.rc != INTEG_EEXISTS)
        return ig_err(it.rc, "%s", it.msg);
    ig_err_clear();
    return it.rc;
}
