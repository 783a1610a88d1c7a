/* Internal: manifest templates — "{namespace.name}" placeholders in URLs,
 * query values, headers and JSON bodies (doc/manifest.md, "URLs and
 * placeholders"). Any other brace is literal text. */
#ifndef IG_TEMPLATE_H
#define IG_TEMPLATE_H

#include <json-c/json.h>

/* Resolve one placeholder: `ns` is "config", "credentials", "since", "id",
 * "token", ... and `name` the part after the dot (NULL when none). Return a
 * borrowed JSON value, or NULL when unset. */
typedef json_object *(*ig_tmpl_lookup)(void *payload, const char *ns, const char *name);

/* The placeholder grammar, for the renderer and the manifest validator
 * alike: is t[i..] a placeholder "{ns}" or "{ns.name}", the namespace
 * [A-Za-z0-9_]+ (ASCII) and the name [A-Za-z0-9_-]+, with no spaces? On
 * success (1) the namespace is t[i + 1 ..] of *ns_len bytes, the name
 * t[*name_off ..] of *name_len bytes (*name_off 0: no name), and *end the
 * index after the '}'. 0 otherwise: the brace is literal text. */
int ig_tmpl_placeholder_at(const char *t, size_t i, size_t *ns_len, size_t *name_off, size_t *name_len,
                           size_t *end);

/* Render a string template. *missing is set when a placeholder had no
 * value (the caller then omits the parameter or header, per the format).
 * Non-string values render as their JSON text (numbers, booleans).
 * *out is malloc'd. */
int ig_tmpl_render(const char *tmpl, ig_tmpl_lookup lookup, void *payload, char **out, int *missing);

/* Render a JSON template: every string is rendered; a string that is
 * exactly one placeholder ("{since}", "{record}") is replaced by the value
 * itself, keeping its JSON type. Returns a new object (owned); members
 * whose value is missing are dropped. Such values, and the template's
 * literals, are shared by reference: a caller that wipes the result
 * (ig_json_wipe_put) renders into a copy (ig_json_copy) first. */
int ig_tmpl_render_json(json_object *tmpl, ig_tmpl_lookup lookup, void *payload, json_object **out);

/* A JSON path of the manifest subset: "$", "$.a.b", "$['@odata.nextLink']",
 * "$.items[0].x", "$.data.edges[*].node". Without [*] it yields at most one
 * value (borrowed, or NULL). */
json_object *ig_jsonpath_get(json_object *root, const char *path);

/* With [*]: every value, appended (with a new reference) to `arr`. */
int ig_jsonpath_collect(json_object *root, const char *path, json_object *arr);

#endif
