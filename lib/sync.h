/* Internal: the parts of the sync engine other modules reuse. */
#ifndef IG_SYNC_H
#define IG_SYNC_H

#include <json-c/json.h>

#include "engine.h"

/* Apply remote records of `entity` that arrived outside a paged sync (a
 * webhook's payload or a fetched record): mapped, compared by hash with
 * their links, written with their links in one transaction, as a sync
 * would; `deleted_ids` (array of remote ids, may be NULL) soft-delete their
 * linked local records. Writes a sync log entry with `trigger` and audits
 * it as the given user. *out_result (may be NULL) gets the log entry. */
int ig_sync_apply(ig_conn *c, const char *tenant_id, const char *user_id, const char *entity,
                  json_object *records, json_object *deleted_ids, const char *trigger, json_object **out_result);

/* What a push did. */
/* Count a record that failed in *failed and, among the first 100, log
 * {record (may be NULL), code, message} in errors: a run's error list. */
void ig_sync_log_error(json_object *errors, int64_t *failed, const char *record, int code, const char *message);

/* Field policies on pulled data (`data`, the mapped remote, changed in
 * place): always_local and dont_sync fields, and prefer_remote_unless_blank
 * ones the remote has blank, keep `local`'s value (or stay absent). No-op
 * when policies or local is NULL. Also what a conflict resolved to the
 * remote keeps (sync_push.c). */
void ig_pull_policies(json_object *policies, json_object *data, json_object *local);

/* The mapping spec a sync of `entity` uses: the integration's own (the
 * first stored mapping of {tenant_id, integration_id, source_entity}),
 * else the default_mapping of the entity's definition `edef`, else none
 * (*spec NULL: records are kept as they come). Read in a read transaction
 * of its own. *spec gets a reference (the caller puts it); *policies (may
 * be NULL) its field_policies, borrowed from it (NULL when none); *stored
 * (may be NULL) 1 when it is the integration's own. */
int ig_sync_mapping_spec(integ_ctx *ctx, const char *tenant_id, const char *integration_id, const char *entity,
                         json_object *edef, json_object **spec, json_object **policies, int *stored);

struct ig_push_counts {
    int64_t processed, created, updated, deleted, adopted, skipped, failed;
    json_object *errors; /* [{record, code, message}] (owned) */
};

struct ig_mapping;

/* Push the local records of `local_entity` changed since their last sync
 * (origin "local", version past the link's) to `entity`: creates (a
 * pending link first; a pending link found later is reconciled through the
 * manifest's lookup before creating again), updates, remote deletes when
 * config delete_remote is on; batches where the manifest has them.
 * Records with an open conflict are held. */
int ig_sync_push(ig_conn *c, const char *tenant_id, const char *entity, json_object *edef, const char *local_entity,
                 const struct ig_mapping *mapping, json_object *policies, int dry_run, int full,
                 struct ig_push_counts *out);

/* The next scheduled run after from_ms: sync_interval with +-10% jitter. */
int64_t ig_schedule_next(integ_ctx *ctx, json_object *config, int64_t from_ms);

/* integ_sync with a trigger ("manual", "schedule", "webhook"). */
int ig_sync_run(integ_session *s, const char *integration_id, const char *request_json, integ_progress_cb cb,
                void *payload, const char *trigger, char **out_json);

/* Pull pages the context's runs have committed on the writer thread, and
 * how many of those were applied again because a link appeared after they
 * were planned (for tests). */
void ig_sync_writer_stats(integ_ctx *ctx, uint64_t *pages, uint64_t *retries);

#endif
