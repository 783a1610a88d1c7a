/* Internal: the mapping engine — field maps and transform rules between a
 * remote record and a local entity, both directions.
 *
 * A mapping spec (JSON, as stored by integ_mapping_put and as a manifest's
 * entities.<name>.default_mapping):
 *   {"source_entity": "contacts",          remote entity (manifest name)
 *    "target_entity": "contacts",          local canonical entity
 *    "field_map": {"<local path>": "<remote path>", ...},
 *    "transform_rules": [RULE, ...],       applied in order, after field_map, on pull
 *    "required": ["<local path>", ...],    missing after mapping -> INTEG_EMAPPING
 *    "reverse": {"field_map": {...}, "transform_rules": [...], "required": [...]}
 *                                          optional, for push: the same shape with the
 *                                          roles swapped, i.e. field_map is
 *                                          {"<remote path>": "<local path>"} (the key is
 *                                          always the path written), rule targets and
 *                                          required are remote paths, and rule
 *                                          "source"/"sources" read the local data}
 * Paths are dotted with array indexes: "properties.email", "lines[0].sku",
 * "addresses[2].city"; a key containing dots or brackets is written
 * ["odd.key"]. On pull the field_map copies remote -> local; on push the
 * engine uses "reverse" when given, else the inverse of every plain copy
 * and of every invertible rule (see below), skipping fields produced by
 * rules that cannot be inverted.
 *
 * RULE objects (the "target" is a local path; rules read the *mapped*
 * value of their target unless they name "source"/"sources", which read
 * the remote record):
 *   {"target": P, "op": "trim"|"lowercase"|"uppercase"}                 invertible (identity)
 *   {"target": P, "op": "to_number"|"to_string"|"to_bool"}              invertible (type back)
 *   {"target": P, "op": "default", "value": V}                          set when missing/null/""
 *   {"target": P, "op": "date", "from": F, "to": F}                     F: "rfc3339", "epoch_s",
 *                                                                       "epoch_ms", "yyyy-mm-dd"; invertible
 *   {"target": P, "op": "concat", "sources": [P...], "separator": " "}
 *   {"target": P, "op": "split", "source": P, "separator": ",", "index": N}
 *   {"target": P, "op": "value_map", "map": {"from": "to", ...}, "default": V}
 *                                                                       invertible when the map is one-to-one
 *   {"target": P, "op": "template", "template": "{properties.firstname} {properties.lastname}"}
 *   {"target": P, "op": "coalesce", "sources": [P...]}                  first non-null, non-empty
 *
 * Conversion failures on a record (to_number of "abc", an unparseable date)
 * are INTEG_EMAPPING naming the field; an invalid spec is INTEG_EINVAL
 * naming the JSON path inside it (e.g. "mapping.transform_rules[2].op:
 * unknown rule 'lower'"). */
#ifndef IG_MAPPING_H
#define IG_MAPPING_H

#include <json-c/json.h>

typedef struct ig_mapping ig_mapping;

typedef enum ig_direction { IG_PULL = 1, IG_PUSH = 2 } ig_direction;

/* Validate and compile a spec (paths parsed once). `what` prefixes error
 * paths ("mapping"). The compiled mapping does not borrow `spec`. */
int ig_mapping_compile(json_object *spec, const char *what, ig_mapping **out);

void ig_mapping_free(ig_mapping *m);

/* Map one record. IG_PULL: `in` is the remote record, *out the local data.
 * IG_PUSH: `in` is the local data, *out the remote record. *out is a new
 * object owned by the caller. Safe to call from many threads at once on the
 * same compiled mapping. */
int ig_mapping_apply(const ig_mapping *m, ig_direction dir, json_object *in, json_object **out);

/* Path helpers, shared with the adapter engine. */
typedef struct ig_path ig_path;
int ig_path_parse(const char *text, ig_path **out);  /* INTEG_EINVAL on bad syntax */
void ig_path_free(ig_path *p);
json_object *ig_path_get(const ig_path *p, json_object *root);           /* borrowed, NULL if absent */
int ig_path_set(const ig_path *p, json_object *root, json_object *value); /* takes ownership of value */

#endif
