/* Internal: fetch the pages of a pull on a second thread while the caller
 * writes the previous ones, so the network wait and the JSON parse of page
 * N+1 overlap the store writes of page N.
 *
 * json-c's reference counts are not atomic, so the two threads share no
 * json-c object: the fetch thread has its own ig_conn (its own copies of
 * the integration, definition and credentials, read from the store), keeps
 * its own copy of the pagination state, and hands each page over whole.
 * The caller owns a page from ig_prefetch_next() on. */
#ifndef IG_PREFETCH_H
#define IG_PREFETCH_H

#include <json-c/json.h>
#include <stdint.h>

#include "engine.h"

typedef struct ig_prefetch ig_prefetch;

/* Work done on each fetched page on the fetch thread, before the hand-over
 * (hashing its records, say). It may read `arg` (shared, so immutable
 * while the prefetch runs) and read and change the page's own objects; it
 * sets page->prep/prep_free. A non-zero return fails that page. */
typedef int (*ig_page_prep_fn)(const void *arg, ig_page *page);

/* Open a connection for tenant/integration and start fetching `entity`
 * from `state` (copied; NULL: the first page) with the incremental
 * watermark since_ms (-1: a full read), at most `depth` pages ahead.
 * prep (may be NULL) runs on every page. */
int ig_prefetch_start(ig_prefetch **out, integ_ctx *ctx, const char *tenant_id, const char *integration_id,
                      const char *entity, json_object *state, int64_t since_ms, int depth, ig_page_prep_fn prep,
                      const void *prep_arg);

/* The next page, in order, waiting for it if needed: what
 * ig_rest_list_page would have returned for it (an error is raised again
 * on the calling thread with its message). Call it again only after a page
 * with a next_state. */
int ig_prefetch_next(ig_prefetch *p, ig_page *out);

/* Give a page taken with ig_prefetch_next back, to be freed on the fetch
 * thread before its next request (a page's memory came from that thread's
 * malloc arena; freeing it there keeps the two threads off each other's
 * arena lock). The caller must hold no reference into it any more. */
void ig_prefetch_release(ig_prefetch *p, ig_page *page);

/* Stop the thread (after its request in flight, if any), free the pages
 * not taken, close its connection. NULL is fine. */
void ig_prefetch_stop(ig_prefetch *p);

#endif /* IG_PREFETCH_H */
