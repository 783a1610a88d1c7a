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

/* What integ_definition_get and integ_definitions_list return, kept by the
 * SHA-256 of each stored record's text: a record read again costs a read
 * and a hash instead of parsing, copying and printing its manifest (15 KB
 * for HubSpot: about 250 µs against 15). A changed record has another
 * digest, so an entry is never stale; the one unused longest makes room.
 * It holds no secret (has_app_credentials only). Owned by the context. */
#define IG_DEF_CACHE_MAX 64
int ig_def_cache_new(struct ig_def_cache **out);
void ig_def_cache_free(struct ig_def_cache *c);

#endif
