/* Internal: a JSON Schema subset validator (draft 2020-12 semantics for the
 * keywords it knows): type (string or array of strings; "integer" accepts
 * numbers with no fractional part, like ajv), properties, required, enum,
 * const, default, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
 * minLength, maxLength (counted in Unicode code points), pattern (POSIX ERE
 * via regcomp, unanchored search as in ECMAScript), format ("uri", "email",
 * "date-time", "uuid"), additionalProperties (boolean or schema), items,
 * minItems, maxItems, uniqueItems, and the annotations title, description,
 * examples, $comment, $schema, $id, readOnly, writeOnly, deprecated and
 * x-*, which are ignored. */
#ifndef IG_SCHEMA_H
#define IG_SCHEMA_H

#include <json-c/json.h>

/* Check that `schema` only uses supported keywords with well-formed values.
 * Error: INTEG_EINVAL "<where>.properties.x.minimum: must be a number". */
int ig_schema_check(json_object *schema, const char *where);

/* Validate `instance` against `schema`. When apply_defaults, a missing
 * property whose schema has "default" is added (deep copy) to the instance
 * object before validation — recursively in nested objects that exist.
 * Error: INTEG_EINVAL with the JSON path rooted at `root`, e.g.
 * "config.sync_interval: must be >= 60" or "config: missing required property 'shop'".
 * Stops at the first violation. */
int ig_schema_validate(json_object *schema, json_object *instance, int apply_defaults,
                       const char *root);

#endif
