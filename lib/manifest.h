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

/* 1 if webhook scheme `scheme` verifies with a secret from `secret_source`
 * ("generated", "app_secret", "public_key", "client_state", "basic_auth"),
 * as the scheme table that validates manifests says; 0 otherwise (also for
 * an unknown scheme or source). */
int ig_manifest_scheme_accepts(const char *scheme, const char *secret_source);

/* The most a session method's lifetime_s / renew_before_s may be: 10 years
 * (the validator's bound; auth.c clamps to it for definitions stored before). */
#define IG_MAX_SESSION_S 315360000

/* The manifests embedded at build time from adapters/ (generated). */
extern const char *const ig_builtin_manifests[];
extern const size_t ig_builtin_manifest_count;

#endif
