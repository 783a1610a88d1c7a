/* Internal: group commit of received webhook events. Each receiving thread
 * prepares its event record outside any transaction and submits it here;
 * whichever thread finds no batch in flight becomes the leader and commits
 * everything queued (after a bounded wait for the events it expects) in
 * one write transaction, then wakes each waiting thread with its own
 * outcome. One caller alone is a batch of one: the same single
 * insert-and-commit as before. On the SQLite store's inbox
 * (ig_sqlite_inbox) each submitter appends its own event instead. The
 * state is owned by the context (integ_ctx.ingest). */
#ifndef IG_WEBHOOK_INGEST_H
#define IG_WEBHOOK_INGEST_H

#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "integrations/common.h"

/* The most events one transaction carries: bounds the duplicate check's IN
 * list and how long one commit holds the store's write lock. */
#define IG_WH_INGEST_MAX_BATCH 256

typedef struct ig_wh_ingest_item ig_wh_ingest_item;

/* How long a leader waits, at most, for the events it expects (receivers
 * still preparing one, or as many as the last batch carried) when the
 * receivers outnumber the CPUs: the batch grows while the commit is
 * delayed by no more than this (PostgreSQL's commit_delay, only taken when
 * others are in flight). */
#define IG_WH_INGEST_LINGER_US 200

typedef struct ig_wh_ingest {
    pthread_mutex_t mu;
    pthread_cond_t cv;              /* broadcast when a batch is done */
    pthread_cond_t lead_cv;         /* to a lingering leader: an event was queued or abandoned */
    ig_wh_ingest_item *head, *tail; /* submitted, not yet taken by a leader */
    size_t pending;                 /* items between head and tail */
    atomic_long preparing;          /* receivers between ig_wh_ingest_enter and submit or leave */
    size_t last_batch;              /* events in the last batch committed */
    long cpus;                      /* online CPUs: lingering pays only beyond them */
    int committing;                 /* a leader holds the queue (lingering or committing) */
    int lingering;                  /* the leader waits on lead_cv */
    int ready;                      /* the mutex and condition variables exist */
    /* Counters for tests and bench/ingest.c (mean batch size); under mu. */
    uint64_t batches, events;
} ig_wh_ingest;

int ig_wh_ingest_init(ig_wh_ingest *q);

/* Safe on a zeroed or half-initialised struct. No submit may be running. */
void ig_wh_ingest_destroy(ig_wh_ingest *q);

/* A receiver starts preparing an event: a leader may wait a little for it
 * (nothing is counted where each submitter appends to the inbox).
 * Every enter is followed by exactly one ig_wh_ingest_submit or
 * ig_wh_ingest_leave. */
void ig_wh_ingest_enter(integ_ctx *ctx);

/* The receiver that entered answers without queueing anything (401, 404,
 * a handshake, an ignored event type, an error). */
void ig_wh_ingest_leave(integ_ctx *ctx);

/* Insert the webhook_events record `ev` (with "endpoint_id" and
 * "event_id") and its body (after ig_wh_ingest_enter), and return once the
 * transaction holding it has committed: INTEG_OK; INTEG_EEXISTS when that delivery is already queued
 * (nothing written; the message is cleared); or an error with the calling
 * thread's message set. ev and body are only borrowed: another thread may
 * read them until this returns, so the caller must not touch them meanwhile
 * (it is blocked here anyway). */
int ig_wh_ingest_submit(integ_ctx *ctx, json_object *ev, const unsigned char *body, size_t body_len);

/* A snapshot of the counters (any out may be NULL). */
void ig_wh_ingest_stats(ig_wh_ingest *q, uint64_t *batches, uint64_t *events, size_t *pending);

#endif
