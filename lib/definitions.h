/* Internal: the catalog of definitions. */
#ifndef IG_DEFINITIONS_H
#define IG_DEFINITIONS_H

#include <json-c/json.h>

#include "ctx.h"

/* At open: validate and upsert the built-in manifests, then those of the
 * "adapters_dir" option (which override built-ins with the same key). A
 * built-in replaces only a stored built-in: a definition registered with
 * integ_definition_register or loaded from an adapters_dir stays. */
int ig_definitions_load(integ_ctx *ctx);

/* The stored definition record for a key or id ({id, key, category,
 * manifest, app_credentials_sealed?, ...}); INTEG_ENOTFOUND names it. */
int ig_definition_lookup(integ_ctx *ctx, void *tx, const char *key_or_id, json_object **out);

#endif
