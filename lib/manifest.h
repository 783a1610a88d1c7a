/* Internal: adapter manifests (doc/manifest.md) and the built-in catalog. */
#ifndef IG_MANIFEST_H
#define IG_MANIFEST_H

#include <json-c/json.h>
#include <stddef.h>

/* Validate a parsed manifest. Error: INTEG_EINVAL naming the JSON path of
 * the offending field ("manifest.auth.methods.oauth2.token_url: must be an
 * https URL"). */
int ig_manifest_validate(json_object *manifest);

/* The auth type a set of credentials belongs to: the first method of the
 * manifest's auth.methods (in manifest order) whose credentials_schema
 * accepts them. NULL when none does. */
const char *ig_manifest_infer_auth_type(json_object *manifest, json_object *credentials);

/* The manifests embedded at build time from adapters/ (generated). */
extern const char *const ig_builtin_manifests[];
extern const size_t ig_builtin_manifest_count;

#endif
