/* Adapter manifests: structural validation (doc/manifest.md) and auth-type
 * inference. The validator stops at the first problem and names it by its
 * JSON path, so a manifest author can fix files one error at a time. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "util.h"
#include "manifest.h"
#include "mapping.h"
#include "schema.h"
#include "template.h"

#define PATH_MAX_LEN 384

/* What one validation run shares between the section checkers. */
typedef struct {
    json_object *manifest;
    json_object *config_props;    /* config_schema.properties (may be NULL) */
    json_object *config_required; /* config_schema.required (may be NULL) */
    json_object *methods;         /* auth.methods */
    unsigned caps_seen;           /* IG_CAP_* bits some entity can back */
} vctx;

enum {
    CAP_PULL = 1u << 0,
    CAP_PUSH = 1u << 1,
    CAP_INCREMENTAL = 1u << 2,
    CAP_WEBHOOKS = 1u << 3,
    CAP_DELETE_DETECTION = 1u << 4,
    CAP_BATCH = 1u << 5,
    CAP_SEND = 1u << 6,
};

static const char *const k_categories[] = {"erp",     "crm",     "accounting",    "ecommerce",
                                           "email",   "storage", "communication", NULL};
static const char *const k_capabilities[] = {"pull",  "push", "incremental", "webhooks",
                                             "delete_detection", "batch", "send", NULL};
static const unsigned k_capability_bits[] = {CAP_PULL,  CAP_PUSH,  CAP_INCREMENTAL, CAP_WEBHOOKS,
                                             CAP_DELETE_DETECTION, CAP_BATCH, CAP_SEND};
static const char *const k_auth_types[] = {"oauth2",  "oauth2_client_credentials", "jwt_bearer",
                                           "api_key", "basic", "session_token", "none", NULL};
static const char *const k_local_entities[] = {"companies", "contacts", "deals",    "products",
                                               "orders",    "invoices", "messages", NULL};
static const char *const k_pagination_types[] = {"cursor", "next_url", "link_header", "page",
                                                 "offset", "graphql_cursor", "none", NULL};
static const char *const k_time_formats[] = {"rfc3339", "iso_local", "sql_datetime", "date",
                                             "epoch_s", "epoch_ms",  "odata_v2_date", NULL};
static const char *const k_http_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};
static const char *const k_list_methods[] = {"GET", "POST", NULL};
static const char *const k_login_methods[] = {"GET", "POST", "PUT", NULL};
static const char *const k_client_auth[] = {"client_secret_post", "client_secret_basic", "private_key_jwt", NULL};
static const char *const k_jwt_algs[] = {"RS256", "RS384", "RS512", "ES256", NULL};
static const char *const k_apply_in[] = {"header", "query", "cookie", "basic", NULL};
static const char *const k_reset_units[] = {"seconds", "epoch", "ms", NULL};
static const char *const k_incremental_in[] = {"query", "filter", "body", "request", NULL};
static const char *const k_handshakes[] = {"woocommerce_ping", "msgraph_validation", NULL};

/* Webhook schemes (API.md) and the secret each one verifies with: a
 * mismatch would make every delivery fail verification. */
static const struct {
    const char *scheme;
    const char *secret_sources; /* space-separated */
} k_schemes[] = {
    {"standard", "generated app_secret"},
    {"standard-ed25519", "public_key"},
    {"github", "generated app_secret"},
    {"github-sha1", "generated app_secret"},
    {"slack", "app_secret generated"},
    {"stripe", "generated app_secret"},
    {"shopify", "app_secret generated"},
    {"woocommerce", "generated app_secret"},
    {"hubspot-v1", "app_secret"},
    {"hubspot-v2", "app_secret"},
    {"hubspot-v3", "app_secret"},
    {"sendgrid", "public_key"},
    {"twilio", "app_secret generated"},
    {"basic", "basic_auth"},
    {"msgraph", "client_state"},
};
static const char *const k_secret_sources[] = {"generated", "app_secret", "public_key",
                                               "client_state", "basic_auth", NULL};

static const char *const k_top_fields[] = {
    "manifest_version", "key",          "name",        "category", "description",
    "docs_url",         "base_url",     "headers",     "auth",     "config_schema",
    "capabilities",     "rate_limit",   "webhook",     "entities", "test_request",
    NULL};

/* ------------------------------------------------------------------ helpers */

static int word_in(const char *word, const char *space_separated)
{
    size_t n = strlen(word);
    for (const char *p = space_separated; *p;) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, word, n) == 0)
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

int ig_manifest_scheme_accepts(const char *scheme, const char *secret_source)
{
    if (!scheme || !secret_source)
        return 0;
    for (size_t i = 0; i < sizeof k_schemes / sizeof k_schemes[0]; i++)
        if (strcmp(scheme, k_schemes[i].scheme) == 0)
            return word_in(secret_source, k_schemes[i].secret_sources);
    return 0;
}

/* Paths only feed error messages, so an over-long one is simply cut. */
static void path_fmt(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void path_fmt(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, PATH_MAX_LEN, fmt, ap);
    va_end(ap);
}

static int is_obj(json_object *o) { return o && json_object_is_type(o, json_type_object); }
static int is_arr(json_object *o) { return o && json_object_is_type(o, json_type_array); }
static int is_str(json_object *o) { return o && json_object_is_type(o, json_type_string); }

static int has(json_object *obj, const char *key)
{
    return json_object_object_get_ex(obj, key, NULL);
}

static int is_ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Every field of `obj` must be listed in one of the (NULL-terminated)
 * lists, or be an "x-" extension: typos must not pass silently. */
static int check_fields(json_object *obj, const char *path, const char *const *a,
                        const char *const *b)
{
    json_object_object_foreach(obj, key, val) {
        (void)val;
        if (strncmp(key, "x-", 2) == 0 || ig_in_list(key, a) || (b && ig_in_list(key, b)))
            continue;
        return ig_err(INTEG_EINVAL, "%s.%s: unknown field", path, key);
    }
    return INTEG_OK;
}

static int need_string(json_object *obj, const char *key, const char *path, int required)
{
    json_object *v = ig_json_get(obj, key);
    if (!v) {
        if (required)
            return ig_err(INTEG_EINVAL, "%s.%s: required", path, key);
        return INTEG_OK;
    }
    if (!is_str(v) || json_object_get_string_len(v) == 0)
        return ig_err(INTEG_EINVAL, "%s.%s: must be a non-empty string", path, key);
    return INTEG_OK;
}

static int need_bool(json_object *obj, const char *key, const char *path)
{
    json_object *v = ig_json_get(obj, key);
    if (v && !json_object_is_type(v, json_type_boolean))
        return ig_err(INTEG_EINVAL, "%s.%s: must be a boolean", path, key);
    return INTEG_OK;
}

static int need_positive(json_object *obj, const char *key, const char *path, int required)
{
    json_object *v = ig_json_get(obj, key);
    if (!v)
        return required ? ig_err(INTEG_EINVAL, "%s.%s: required", path, key) : INTEG_OK;
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0)
        return ig_err(INTEG_EINVAL, "%s.%s: must be a positive integer", path, key);
    return INTEG_OK;
}

static int need_enum(json_object *obj, const char *key, const char *path, int required,
                     const char *const *allowed, const char *what)
{
    json_object *v = ig_json_get(obj, key);
    if (!v)
        return required ? ig_err(INTEG_EINVAL, "%s.%s: required", path, key) : INTEG_OK;
    if (!is_str(v))
        return ig_err(INTEG_EINVAL, "%s.%s: must be a string", path, key);
    if (!ig_in_list(json_object_get_string(v), allowed))
        return ig_err(INTEG_EINVAL, "%s.%s: unknown %s '%s'", path, key, what,
                      json_object_get_string(v));
    return INTEG_OK;
}

/* JSON paths are evaluated by the engine; here we only insist they are
 * rooted, which catches the common "results" for "$.results" slip. */
static int need_jsonpath(json_object *obj, const char *key, const char *path, int required)
{
    json_object *v = ig_json_get(obj, key);
    if (!v)
        return required ? ig_err(INTEG_EINVAL, "%s.%s: required", path, key) : INTEG_OK;
    if (!is_str(v) || json_object_get_string(v)[0] != '$')
        return ig_err(INTEG_EINVAL, "%s.%s: must be a JSON path starting with '$'", path, key);
    return INTEG_OK;
}

static int need_string_map(json_object *obj, const char *key, const char *path)
{
    json_object *v = ig_json_get(obj, key);
    if (!v)
        return INTEG_OK;
    if (!is_obj(v))
        return ig_err(INTEG_EINVAL, "%s.%s: must be an object of strings", path, key);
    json_object_object_foreach(v, k, val) {
        if (!is_str(val))
            return ig_err(INTEG_EINVAL, "%s.%s.%s: must be a string", path, key, k);
    }
    return INTEG_OK;
}

static int need_string_array(json_object *obj, const char *key, const char *path, int unique)
{
    json_object *v = ig_json_get(obj, key);
    if (!v)
        return INTEG_OK;
    if (!is_arr(v))
        return ig_err(INTEG_EINVAL, "%s.%s: must be an array of strings", path, key);
    size_t n = json_object_array_length(v);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        if (!is_str(e) || json_object_get_string_len(e) == 0)
            return ig_err(INTEG_EINVAL, "%s.%s[%zu]: must be a non-empty string", path, key, i);
        for (size_t j = 0; unique && j < i; j++)
            if (strcmp(json_object_get_string(e),
                       json_object_get_string(json_object_array_get_idx(v, j))) == 0)
                return ig_err(INTEG_EINVAL, "%s.%s[%zu]: duplicate '%s'", path, key, i,
                              json_object_get_string(e));
    }
    return INTEG_OK;
}

static int array_has_string(json_object *arr, const char *s)
{
    if (!is_arr(arr))
        return 0;
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (is_str(e) && strcmp(json_object_get_string(e), s) == 0)
            return 1;
    }
    return 0;
}

/* Does any string inside `v` (recursively) contain `needle`? */
static int json_mentions(json_object *v, const char *needle)
{
    if (!v)
        return 0;
    switch (json_object_get_type(v)) {
    case json_type_string:
        return strstr(json_object_get_string(v), needle) != NULL;
    case json_type_array: {
        size_t n = json_object_array_length(v);
        for (size_t i = 0; i < n; i++)
            if (json_mentions(json_object_array_get_idx(v, i), needle))
                return 1;
        return 0;
    }
    case json_type_object: {
        json_object_object_foreach(v, k, val) {
            (void)k;
            if (json_mentions(val, needle))
                return 1;
        }
        return 0;
    }
    default:
        return 0;
    }
}

/* ------------------------------------------------------------- placeholders */

/* A placeholder in the grammar of the renderer (ig_tmpl_placeholder_at,
 * lib/template.c). Any other brace is literal text (GraphQL bodies are
 * full of them). Returns the length of the placeholder at s (0 when s is
 * not one, or its parts do not fit the buffers) and copies its
 * namespace/name out (name empty for "{since}"-style ones). */
static size_t placeholder_at(const char *s, char *ns, size_t ns_sz, char *name, size_t name_sz)
{
    size_t ns_len, name_off, name_len, end;
    if (!ig_tmpl_placeholder_at(s, 0, &ns_len, &name_off, &name_len, &end))
        return 0;
    if (ns_len >= ns_sz || name_len >= name_sz)
        return 0;
    memcpy(ns, s + 1, ns_len);
    ns[ns_len] = '\0';
    memcpy(name, s + name_off, name_len);
    name[name_len] = '\0';
    return end;
}

/* A '{' directly followed by a letter, digit or '_' opens a placeholder
 * for the renderer; when it does not parse ("{config.a.b}", "{config.}",
 * "{id }") the renderer sends it as literal text and the value is silently
 * lost. Literal braces are followed by anything else (a space, a quote,
 * another brace), as in GraphQL and JSON text. */
static int opens_placeholder(const char *p)
{
    return p[0] == '{' && is_ident_char(p[1]);
}

static int malformed_placeholder(const char *p, const char *path)
{
    size_t n = strcspn(p, "} \t\r\n");
    if (n > 40)
        n = 40;
    return ig_err(INTEG_EINVAL,
                  "%s: malformed placeholder '%.*s%s' (placeholders are {namespace} or "
                  "{namespace.name}; a literal '{' must not be followed by a letter, digit or '_')",
                  path, (int)n, p, p[n] == '}' ? "}" : "");
}

/* Tenant-supplied values that end up in a URL must be constrained, or a
 * tenant could point the library's credentials at any host. */
static int check_url_prop(json_object *prop, int whole_origin, const char *path, const char *ph,
                          const char *schema_name)
{
    const char *pattern = ig_json_str(prop, "pattern");
    const char *format = ig_json_str(prop, "format");
    int is_uri = format && strcmp(format, "uri") == 0;
    if (whole_origin) {
        if (!is_uri || !pattern || strncmp(pattern, "^https://", 9) != 0)
            return ig_err(INTEG_EINVAL,
                          "%s: placeholder {%s} is the whole origin: %s needs \"format\": \"uri\" "
                          "and a pattern starting with ^https://",
                          path, ph, schema_name);
    } else if (!pattern && !is_uri) {
        return ig_err(INTEG_EINVAL,
                      "%s: placeholder {%s} must be constrained by \"pattern\" or \"format\": \"uri\" "
                      "in %s",
                      path, ph, schema_name);
    }
    return INTEG_OK;
}

static int check_config_ref(const vctx *v, const char *name, int in_url, int whole_origin,
                            const char *path)
{
    char ph[160];
    snprintf(ph, sizeof ph, "config.%s", name);
    json_object *prop = ig_json_get(v->config_props, name);
    if (!is_obj(prop))
        return ig_err(INTEG_EINVAL, "%s: placeholder {%s} names no property of config_schema", path,
                      ph);
    if (!in_url)
        return INTEG_OK;
    if (!array_has_string(v->config_required, name) && !has(prop, "default"))
        return ig_err(INTEG_EINVAL,
                      "%s: placeholder {%s} must be required or have a default in config_schema",
                      path, ph);
    return check_url_prop(prop, whole_origin, path, ph, "config_schema");
}

/* {credentials.x} in a base URL: only values the provider's token endpoint
 * returns (token_extras), never something the tenant typed in. `method`
 * limits the check to one auth method; NULL means every method. */
static int check_credentials_ref_in_url(const vctx *v, const char *name, int whole_origin,
                                        const char *path, const char *method)
{
    char ph[160];
    snprintf(ph, sizeof ph, "credentials.%s", name);
    json_object_object_foreach(v->methods, mname, mdef) {
        if (method && strcmp(method, mname) != 0)
            continue;
        if (!array_has_string(ig_json_get(mdef, "token_extras"), name))
            return ig_err(INTEG_EINVAL,
                          "%s: placeholder {%s} is not listed in token_extras of auth method '%s'",
                          path, ph, mname);
        json_object *props = ig_json_get(ig_json_get(mdef, "credentials_schema"), "properties");
        json_object *prop = ig_json_get(props, name);
        if (!is_obj(prop))
            return ig_err(INTEG_EINVAL,
                          "%s: placeholder {%s} names no property of the credentials_schema of "
                          "auth method '%s'",
                          path, ph, mname);
        int rc = check_url_prop(prop, whole_origin, path, ph, "credentials_schema");
        if (rc)
            return rc;
    }
    return INTEG_OK;
}

enum {
    URL_ABSOLUTE = 1,  /* must be an absolute https URL */
    URL_RELATIVE = 2,  /* may also be a path relative to base_url */
    URL_ALLOW_ID = 4,  /* {id} of the record an operation targets */
    URL_ALLOW_CREDS = 8,
    URL_ALLOW_VALUE = 16, /* {value}: the searched value of a lookup request */
    /* Never in a URL, only in the query, headers or body of a request: */
    ALLOW_SINCE = 32,     /* {since}: list requests (the incremental watermark) */
    ALLOW_RECORD = 64,    /* {record}: create and update bodies */
    ALLOW_RECORDS = 128,  /* {records}: batch bodies */
};

/* A URL or path template. `method` scopes {credentials.x} (see above). */
static int check_url(const vctx *v, json_object *val, const char *path, int flags,
                     const char *method)
{
    if (!is_str(val))
        return ig_err(INTEG_EINVAL, "%s: must be a string", path);
    const char *s = json_object_get_string(val);
    if (!*s)
        return ig_err(INTEG_EINVAL, "%s: must not be empty", path);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return ig_err(INTEG_EINVAL, "%s: must not contain spaces or control characters", path);

    char ns[64], name[128];
    size_t first = placeholder_at(s, ns, sizeof ns, name, sizeof name);
    int whole_origin = first > 0;
    if (whole_origin) {
        if (s[first] != '\0' && s[first] != '/')
            return ig_err(INTEG_EINVAL, "%s: a placeholder at the start must be the whole origin",
                          path);
    } else if (strncmp(s, "https://", 8) == 0) {
        if (s[8] == '\0' || s[8] == '/')
            return ig_err(INTEG_EINVAL, "%s: must be an absolute https URL", path);
    } else if (s[0] == '/' && (flags & URL_RELATIVE)) {
        /* relative to base_url */
    } else if (flags & URL_RELATIVE) {
        return ig_err(INTEG_EINVAL, "%s: must be a path starting with '/' or an absolute https URL",
                      path);
    } else {
        return ig_err(INTEG_EINVAL, "%s: must be an absolute https URL", path);
    }

    for (const char *p = s; *p; p++) {
        if (*p == '}')
            return ig_err(INTEG_EINVAL, "%s: stray '}'", path);
        if (*p != '{')
            continue;
        size_t len = placeholder_at(p, ns, sizeof ns, name, sizeof name);
        if (!len)
            return ig_err(INTEG_EINVAL, "%s: malformed placeholder", path);
        int at_origin = p == s;
        int rc;
        if (strcmp(ns, "config") == 0 && *name) {
            rc = check_config_ref(v, name, 1, at_origin, path);
        } else if (strcmp(ns, "credentials") == 0 && *name && (flags & URL_ALLOW_CREDS)) {
            rc = check_credentials_ref_in_url(v, name, at_origin, path, method);
        } else if (strcmp(ns, "id") == 0 && !*name && (flags & URL_ALLOW_ID) && !at_origin) {
            rc = INTEG_OK;
        } else if (strcmp(ns, "value") == 0 && !*name && (flags & URL_ALLOW_VALUE) && !at_origin) {
            rc = INTEG_OK;
        } else {
            char ph[200];
            snprintf(ph, sizeof ph, "%s%s%s", ns, *name ? "." : "", name);
            rc = ig_err(INTEG_EINVAL, "%s: placeholder {%s} is not allowed here", path, ph);
        }
        if (rc)
            return rc;
        p += len - 1;
    }
    return INTEG_OK;
}

static int check_url_field(const vctx *v, json_object *obj, const char *key, const char *path,
                           int required, int flags, const char *method)
{
    char p[PATH_MAX_LEN];
    json_object *val = ig_json_get(obj, key);
    path_fmt(p, "%s.%s", path, key);
    if (!val)
        return required ? ig_err(INTEG_EINVAL, "%s: required", p) : INTEG_OK;
    return check_url(v, val, p, flags, method);
}

/* Where an auth template is used decides which values exist there. */
enum {
    T_TOKEN = 1,   /* {token.access_token}: a token the method obtains at runtime */
    T_SESSION = 2, /* {session.expiration_date}: session_token login only */
    T_CLAIM = 4,   /* a JWT claim: readable by anyone who sees the assertion */
};

/* Placeholders inside auth templates (apply values, token params, claims,
 * login requests, scopes) must name something that will exist. */
static int check_auth_template_string(const vctx *v, const char *s, const char *path,
                                      json_object *method_def, int flags)
{
    json_object *cred_props = ig_json_get(ig_json_get(method_def, "credentials_schema"), "properties");
    json_object *extras = ig_json_get(method_def, "token_extras");
    char ns[64], name[128];
    for (const char *p = s; *p; p++) {
        size_t len = placeholder_at(p, ns, sizeof ns, name, sizeof name);
        if (!len) {
            if (opens_placeholder(p))
                return malformed_placeholder(p, path);
            continue;
        }
        int ok;
        if (strcmp(ns, "config") == 0 && *name) {
            int rc = check_config_ref(v, name, 0, 0, path);
            if (rc)
                return rc;
            ok = 1;
        } else if (strcmp(ns, "credentials") == 0 && *name) {
            ok = is_obj(ig_json_get(cred_props, name)) || array_has_string(extras, name);
            if (!ok)
                return ig_err(INTEG_EINVAL,
                              "%s: placeholder {credentials.%s} names no property of credentials_schema",
                              path, name);
            /* The JWT is signed, not encrypted: the signing key must not
             * travel inside it. */
            if ((flags & T_CLAIM) && strcmp(name, "private_key") == 0)
                return ig_err(INTEG_EINVAL,
                              "%s: placeholder {credentials.private_key} must not appear in a JWT "
                              "claim (the assertion is readable)",
                              path);
        } else if (strcmp(ns, "token") == 0 && *name) {
            ok = (flags & T_TOKEN) &&
                 (strcmp(name, "access_token") == 0 || array_has_string(extras, name));
        } else if (strcmp(ns, "session") == 0) {
            ok = (flags & T_SESSION) && strcmp(name, "expiration_date") == 0;
        } else {
            ok = 0;
        }
        if (!ok)
            return ig_err(INTEG_EINVAL, "%s: placeholder {%s%s%s} is not available here", path, ns,
                          *name ? "." : "", name);
        p += len - 1;
    }
    return INTEG_OK;
}

/* Every string inside val (arrays and objects walked, each string's path
 * given), checked by one template checker: auth templates and request
 * templates differ only in what a string may hold. */
struct tmpl_check {
    int (*string)(const vctx *v, const char *s, const char *path, const struct tmpl_check *c);
    json_object *method_def; /* auth: the method whose inputs may be named */
    int flags;               /* auth: T_* / request: ALLOW_* */
    int in_body;             /* request: a body template */
};

static int check_template_strings(const vctx *v, json_object *val, const char *path, const struct tmpl_check *c)
{
    char p[PATH_MAX_LEN];
    switch (json_object_get_type(val)) {
    case json_type_string:
        return c->string(v, json_object_get_string(val), path, c);
    case json_type_array: {
        size_t n = json_object_array_length(val);
        for (size_t i = 0; i < n; i++) {
            path_fmt(p, "%s[%zu]", path, i);
            int rc = check_template_strings(v, json_object_array_get_idx(val, i), p, c);
            if (rc)
                return rc;
        }
        return INTEG_OK;
    }
    case json_type_object: {
        json_object_object_foreach(val, k, child) {
            path_fmt(p, "%s.%s", path, k);
            int rc = check_template_strings(v, child, p, c);
            if (rc)
                return rc;
        }
        return INTEG_OK;
    }
    default:
        return INTEG_OK;
    }
}

static int auth_string(const vctx *v, const char *s, const char *path, const struct tmpl_check *c)
{
    return check_auth_template_string(v, s, path, c->method_def, c->flags);
}

static int check_auth_template(const vctx *v, json_object *val, const char *path,
                               json_object *method_def, int flags)
{
    const struct tmpl_check c = {auth_string, method_def, flags, 0};
    return check_template_strings(v, val, path, &c);
}

static int check_auth_template_field(const vctx *v, json_object *obj, const char *key,
                                     const char *path, json_object *method_def, int flags)
{
    json_object *val = ig_json_get(obj, key);
    if (!val)
        return INTEG_OK;
    char p[PATH_MAX_LEN];
    path_fmt(p, "%s.%s", path, key);
    return check_auth_template(v, val, p, method_def, flags);
}

/* Placeholders in request templates (query and header values, bodies,
 * incremental templates). What exists depends on the request, as the
 * engine renders it (adapter_rest.c, adapter_write.c): {config.x}
 * everywhere; the ALLOW_* and URL_ALLOW_* bits of `allow` add {since},
 * {id}, {value}, and in bodies {record}/{records}. Credentials and tokens
 * are sent by the auth method's `apply` only, never from a request's own
 * templates (a query string ends up in logs and proxies). */
static int check_request_template_string(const vctx *v, const char *s, const char *path, int allow,
                                         int in_body)
{
    char ns[64], name[128];
    for (const char *p = s; *p; p++) {
        if (*p != '{')
            continue;
        size_t len = placeholder_at(p, ns, sizeof ns, name, sizeof name);
        if (!len) {
            if (opens_placeholder(p))
                return malformed_placeholder(p, path);
            continue;
        }
        int ok = 0;
        if (strcmp(ns, "config") == 0 && *name) {
            int rc = check_config_ref(v, name, 0, 0, path);
            if (rc)
                return rc;
            ok = 1;
        } else if (!*name) {
            ok = (strcmp(ns, "since") == 0 && (allow & ALLOW_SINCE)) ||
                 (strcmp(ns, "id") == 0 && (allow & URL_ALLOW_ID)) ||
                 (strcmp(ns, "value") == 0 && (allow & URL_ALLOW_VALUE)) ||
                 (strcmp(ns, "record") == 0 && in_body && (allow & ALLOW_RECORD)) ||
                 (strcmp(ns, "records") == 0 && in_body && (allow & ALLOW_RECORDS));
        }
        if (!ok && (strcmp(ns, "credentials") == 0 || strcmp(ns, "token") == 0))
            return ig_err(INTEG_EINVAL,
                          "%s: placeholder {%s%s%s} is not allowed here (credentials and tokens "
                          "are sent only by the auth method's apply)",
                          path, ns, *name ? "." : "", name);
        if (!ok)
            return ig_err(INTEG_EINVAL, "%s: placeholder {%s%s%s} is not allowed here", path, ns,
                          *name ? "." : "", name);
        p += len - 1;
    }
    return INTEG_OK;
}

static int request_string(const vctx *v, const char *s, const char *path, const struct tmpl_check *c)
{
    return check_request_template_string(v, s, path, c->flags, c->in_body);
}

static int check_request_template(const vctx *v, json_object *val, const char *path, int allow,
                                  int in_body)
{
    const struct tmpl_check c = {request_string, NULL, allow, in_body};
    return check_template_strings(v, val, path, &c);
}

/* An object of string templates (query, headers). */
static int check_template_map(const vctx *v, json_object *obj, const char *key, const char *path,
                              int allow)
{
    int rc = need_string_map(obj, key, path);
    json_object *val = ig_json_get(obj, key);
    if (rc || !val)
        return rc;
    char p[PATH_MAX_LEN];
    path_fmt(p, "%s.%s", path, key);
    return check_request_template(v, val, p, allow, 0);
}

/* ---------------------------------------------------------------- schemas */

static int check_object_schema(json_object *schema, const char *path)
{
    if (!is_obj(schema))
        return ig_err(INTEG_EINVAL, "%s: must be a JSON Schema object", path);
    const char *type = ig_json_str(schema, "type");
    if (!type || strcmp(type, "object") != 0)
        return ig_err(INTEG_EINVAL, "%s.type: must be \"object\"", path);
    return ig_schema_check(schema, path);
}

static int check_config_schema(vctx *v)
{
    json_object *schema = ig_json_get(v->manifest, "config_schema");
    const char *path = "manifest.config_schema";
    int rc = check_object_schema(schema, path);
    if (rc)
        return rc;
    v->config_props = ig_json_get(schema, "properties");
    v->config_required = ig_json_get(schema, "required");
    if (!is_obj(v->config_props))
        return INTEG_OK;
    char p[PATH_MAX_LEN];
    /* A default that fails its own schema would be applied to every
     * integration and then rejected: catch it here. */
    json_object_object_foreach(v->config_props, name, prop) {
        json_object *dflt = ig_json_get(prop, "default");
        if (!dflt)
            continue;
        path_fmt(p, "%s.properties.%s.default", path, name);
        json_object *copy = ig_json_copy(dflt);
        rc = ig_schema_validate(prop, copy, 0, p);
        json_object_put(copy);
        if (rc)
            return rc;
    }
    return INTEG_OK;
}

/* -------------------------------------------------------------------- auth */

static int check_apply_one(const vctx *v, json_object *apply, const char *path, const char *type,
                           json_object *mdef, int tflags)
{
    static const char *const fields[] = {"in", "name", "prefix", "value", "username", "password",
                                         "notes", NULL};
    if (!is_obj(apply))
        return ig_err(INTEG_EINVAL, "%s: must be an object", path);
    int rc = check_fields(apply, path, fields, NULL);
    if (rc)
        return rc;
    const char *in = ig_json_str(apply, "in");
    if (!has(apply, "in") && strcmp(type, "basic") == 0)
        in = "basic";
    if ((rc = need_enum(apply, "in", path, strcmp(type, "basic") != 0, k_apply_in, "location")))
        return rc;
    if (strcmp(type, "api_key") == 0 && strcmp(in, "basic") == 0)
        return ig_err(INTEG_EINVAL, "%s.in: api_key sends a header, query or cookie value", path);
    if (strcmp(in, "basic") == 0) {
        if ((rc = need_string(apply, "username", path, 1)) || (rc = need_string(apply, "password", path, 1)))
            return rc;
    } else {
        if ((rc = need_string(apply, "name", path, 1)) || (rc = need_string(apply, "value", path, 1)))
            return rc;
        json_object *prefix = ig_json_get(apply, "prefix");
        if (prefix && !is_str(prefix))
            return ig_err(INTEG_EINVAL, "%s.prefix: must be a string", path);
    }
    return check_auth_template(v, apply, path, mdef, tflags);
}

static int check_apply(const vctx *v, json_object *mdef, const char *path, const char *type,
                       int tflags)
{
    char p[PATH_MAX_LEN];
    json_object *apply = ig_json_get(mdef, "apply");
    path_fmt(p, "%s.apply", path);
    if (!apply)
        return ig_err(INTEG_EINVAL, "%s: required", p);
    if (!is_arr(apply))
        return check_apply_one(v, apply, p, type, mdef, tflags);
    size_t n = json_object_array_length(apply);
    if (n == 0)
        return ig_err(INTEG_EINVAL, "%s: must not be empty", p);
    for (size_t i = 0; i < n; i++) {
        char pi[PATH_MAX_LEN];
        path_fmt(pi, "%s.apply[%zu]", path, i);
        int rc = check_apply_one(v, json_object_array_get_idx(apply, i), pi, type, mdef, tflags);
        if (rc)
            return rc;
    }
    return INTEG_OK;
}

static int check_token_extras(json_object *mdef, const char *path)
{
    int rc = need_string_array(mdef, "token_extras", path, 1);
    if (rc)
        return rc;
    json_object *extras = ig_json_get(mdef, "token_extras");
    size_t n = extras ? json_object_array_length(extras) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(extras, i));
        for (const char *c = s; *c; c++)
            if (!is_ident_char(*c))
                return ig_err(INTEG_EINVAL, "%s.token_extras[%zu]: must be a plain field name", path, i);
    }
    return INTEG_OK;
}

static int check_auth_method(const vctx *v, const char *type, json_object *mdef, const char *path)
{
    static const char *const common[] = {"apply", "credentials_schema", "base_url", "notes",
                                         "description", NULL};
    static const char *const f_oauth2[] = {
        "authorize_url", "token_url", "scopes", "optional_scopes", "scope_separator", "pkce",
        "client_auth", "authorize_params", "token_params", "token_extras", "refresh", NULL};
    static const char *const f_cc[] = {"token_url", "scopes", "scope_separator", "client_auth",
                                       "token_params", "token_headers", "client_id",
                                       "client_secret", "token_extras", NULL};
    static const char *const f_jwt[] = {"token_url", "audience", "scopes", "scope_separator",
                                        "alg", "claims", "token_extras", NULL};
    static const char *const f_session[] = {"login", "token_path", "expires_path", "lifetime_s",
                                            "renew_before_s", NULL};
    static const char *const f_none[] = {"notes", "description", NULL};
    static const char *const f_empty[] = {NULL};
    static const char *const f_login[] = {"method", "path", "query", "body", "form", "headers",
                                          NULL};

    if (!ig_in_list(type, k_auth_types))
        return ig_err(INTEG_EINVAL, "%s: unknown auth type '%s'", path, type);
    if (!is_obj(mdef))
        return ig_err(INTEG_EINVAL, "%s: must be an object", path);
    if (strcmp(type, "none") == 0)
        return check_fields(mdef, path, f_none, NULL);

    int is_oauth2 = strcmp(type, "oauth2") == 0;
    int is_cc = strcmp(type, "oauth2_client_credentials") == 0;
    int is_jwt = strcmp(type, "jwt_bearer") == 0;
    int is_session = strcmp(type, "session_token") == 0;
    const char *const *own = is_oauth2 ? f_oauth2
                             : is_cc   ? f_cc
                             : is_jwt  ? f_jwt
                             : is_session ? f_session
                                          : f_empty;
    int rc = check_fields(mdef, path, common, own);
    if (rc)
        return rc;

    char p[PATH_MAX_LEN];
    path_fmt(p, "%s.credentials_schema", path);
    if (!has(mdef, "credentials_schema"))
        return ig_err(INTEG_EINVAL, "%s: required", p);
    if ((rc = check_object_schema(ig_json_get(mdef, "credentials_schema"), p)))
        return rc;

    int obtains_token = is_cc || is_jwt || is_session;
    if (is_oauth2 || is_cc || is_jwt) {
        if ((rc = check_token_extras(mdef, path)))
            return rc;
        if ((rc = check_url_field(v, mdef, "token_url", path, 1, URL_ABSOLUTE, NULL)))
            return rc;
        if ((rc = need_string_array(mdef, "scopes", path, 1)) ||
            (rc = need_string(mdef, "scope_separator", path, 0)) ||
            (rc = check_auth_template_field(v, mdef, "scopes", path, mdef, 0)))
            return rc;
    }
    if (is_oauth2 || is_cc) {
        if ((rc = need_enum(mdef, "client_auth", path, 0, k_client_auth, "client_auth")) ||
            (rc = need_string_map(mdef, "token_params", path)) ||
            (rc = check_auth_template_field(v, mdef, "token_params", path, mdef, 0)))
            return rc;
    }
    if (has(mdef, "optional_scopes"))
        return ig_err(INTEG_EINVAL, "%s.optional_scopes: not implemented (the host passes extra "
                      "scopes to integ_oauth_begin); list them in notes", path);
    if (is_oauth2) {
        if ((rc = check_url_field(v, mdef, "authorize_url", path, 1, URL_ABSOLUTE, NULL)) ||
            (rc = need_bool(mdef, "pkce", path)) || (rc = need_bool(mdef, "refresh", path)) ||
            (rc = need_string_map(mdef, "authorize_params", path)) ||
            (rc = check_auth_template_field(v, mdef, "authorize_params", path, mdef, 0)))
            return rc;
    }
    if (is_cc) {
        if ((rc = need_string(mdef, "client_id", path, 0)) ||
            (rc = need_string(mdef, "client_secret", path, 0)) ||
            (rc = need_string_map(mdef, "token_headers", path)) ||
            (rc = check_auth_template_field(v, mdef, "client_id", path, mdef, 0)) ||
            (rc = check_auth_template_field(v, mdef, "client_secret", path, mdef, 0)) ||
            (rc = check_auth_template_field(v, mdef, "token_headers", path, mdef, 0)))
            return rc;
        /* Without templates the engine sends credentials.client_id/secret. */
        json_object *props = ig_json_get(ig_json_get(mdef, "credentials_schema"), "properties");
        if (!has(mdef, "client_id") && !is_obj(ig_json_get(props, "client_id")))
            return ig_err(INTEG_EINVAL, "%s.credentials_schema.properties.client_id: required", path);
        if (!has(mdef, "client_secret") && !is_obj(ig_json_get(props, "client_secret")))
            return ig_err(INTEG_EINVAL, "%s.credentials_schema.properties.client_secret: required",
                          path);
    }
    if (is_jwt) {
        json_object *claims = ig_json_get(mdef, "claims");
        if (claims && !is_obj(claims))
            return ig_err(INTEG_EINVAL, "%s.claims: must be an object", path);
        if ((rc = need_enum(mdef, "alg", path, 0, k_jwt_algs, "algorithm")) ||
            (rc = need_string(mdef, "audience", path, 0)) ||
            (rc = check_auth_template_field(v, mdef, "audience", path, mdef, T_CLAIM)) ||
            (rc = check_auth_template_field(v, mdef, "claims", path, mdef, T_CLAIM)))
            return rc;
    }
    if (is_session) {
        json_object *login = ig_json_get(mdef, "login");
        path_fmt(p, "%s.login", path);
        if (!login)
            return ig_err(INTEG_EINVAL, "%s: required", p);
        if (!is_obj(login))
            return ig_err(INTEG_EINVAL, "%s: must be an object", p);
        if ((rc = check_fields(login, p, f_login, NULL)) ||
            (rc = need_enum(login, "method", p, 1, k_login_methods, "login method")) ||
            (rc = check_url_field(v, login, "path", p, 1, URL_RELATIVE, NULL)) ||
            (rc = need_string_map(login, "query", p)) || (rc = need_string_map(login, "form", p)) ||
            (rc = need_string_map(login, "headers", p)) ||
            (rc = check_auth_template(v, login, p, mdef, T_SESSION)))
            return rc;
        if (has(login, "body") && has(login, "form"))
            return ig_err(INTEG_EINVAL, "%s.form: body and form are exclusive", p);
        if ((rc = need_jsonpath(mdef, "token_path", path, 1)) ||
            (rc = need_jsonpath(mdef, "expires_path", path, 0)) ||
            (rc = need_positive(mdef, "lifetime_s", path, 0)) ||
            (rc = need_positive(mdef, "renew_before_s", path, 0)))
            return rc;
        /* Seconds become milliseconds in int64 arithmetic (auth.c). */
        int64_t life = ig_json_int(mdef, "lifetime_s", 0);
        int64_t renew = ig_json_int(mdef, "renew_before_s", 0);
        if (life > IG_MAX_SESSION_S || renew > IG_MAX_SESSION_S)
            return ig_err(INTEG_EINVAL, "%s.%s: must be at most %d seconds (10 years)", path,
                          life > IG_MAX_SESSION_S ? "lifetime_s" : "renew_before_s", IG_MAX_SESSION_S);
        /* Renewing a session before it starts means a login per request. */
        if (life && renew >= life)
            return ig_err(INTEG_EINVAL, "%s.renew_before_s: must be less than lifetime_s (%lld)", path,
                          (long long)life);
    }
    if (has(mdef, "base_url")) {
        if ((rc = check_url_field(v, mdef, "base_url", path, 0, URL_ABSOLUTE | URL_ALLOW_CREDS, type)))
            return rc;
    }
    return check_apply(v, mdef, path, type, obtains_token ? T_TOKEN : 0);
}

static int check_auth(vctx *v)
{
    static const char *const fields[] = {"default", "methods", "notes", NULL};
    const char *path = "manifest.auth";
    json_object *auth = ig_json_get(v->manifest, "auth");
    if (!is_obj(auth))
        return ig_err(INTEG_EINVAL, "%s: must be an object", path);
    int rc = check_fields(auth, path, fields, NULL);
    if (rc)
        return rc;
    json_object *methods = ig_json_get(auth, "methods");
    if (!methods)
        return ig_err(INTEG_EINVAL, "%s.methods: required", path);
    if (!is_obj(methods) || json_object_object_length(methods) == 0)
        return ig_err(INTEG_EINVAL, "%s.methods: must be a non-empty object", path);
    v->methods = methods;
    if ((rc = need_string(auth, "default", path, 1)))
        return rc;
    const char *dflt = ig_json_str(auth, "default");
    if (!has(methods, dflt))
        return ig_err(INTEG_EINVAL, "%s.default: '%s' is not one of auth.methods", path, dflt);
    char p[PATH_MAX_LEN];
    json_object_object_foreach(methods, type, mdef) {
        path_fmt(p, "%s.methods.%s", path, type);
        if ((rc = check_auth_method(v, type, mdef, p)))
            return rc;
    }
    return INTEG_OK;
}

/* ------------------------------------------------------------ rate limits */

static int check_rate_limit(json_object *rl)
{
    static const char *const fields[] = {"requests", "per_seconds", "daily", "concurrency",
                                         "headers",  "signals",     "retry_after", "notes", NULL};
    static const char *const header_fields[] = {"limit", "remaining", "reset", "reset_unit",
                                                "usage", "usage_format", "daily_limit",
                                                "daily_remaining", "policy", NULL};
    static const char *const signal_fields[] = {"status", "body_contains", "json_path", "equals",
                                                "retry", "notes", NULL};
    const char *path = "manifest.rate_limit";
    if (!is_obj(rl))
        return ig_err(INTEG_EINVAL, "%s: must be an object", path);
    int rc;
    if ((rc = check_fields(rl, path, fields, NULL)) ||
        (rc = need_positive(rl, "requests", path, 0)) ||
        (rc = need_positive(rl, "per_seconds", path, 0)) ||
        (rc = need_positive(rl, "daily", path, 0)) ||
        (rc = need_bool(rl, "retry_after", path)))
        return rc;
    if (has(rl, "concurrency"))
        return ig_err(INTEG_EINVAL, "%s.concurrency: not implemented (requests are paced by the "
                      "budget, not by a concurrency cap); describe it in notes", path);
    if (has(rl, "requests") != has(rl, "per_seconds"))
        return ig_err(INTEG_EINVAL, "%s.%s: required with %s", path,
                      has(rl, "requests") ? "per_seconds" : "requests",
                      has(rl, "requests") ? "requests" : "per_seconds");
    json_object *headers = ig_json_get(rl, "headers");
    char p[PATH_MAX_LEN];
    if (headers) {
        path_fmt(p, "%s.headers", path);
        if (!is_obj(headers))
            return ig_err(INTEG_EINVAL, "%s: must be an object", p);
        if ((rc = check_fields(headers, p, header_fields, NULL)) ||
            (rc = need_string_map(rl, "headers", path)) ||
            (rc = need_enum(headers, "reset_unit", p, 0, k_reset_units, "reset unit")))
            return rc;
        if (has(headers, "usage_format"))
            return ig_err(INTEG_EINVAL, "%s.usage_format: not implemented (a usage header is read "
                          "as 'used/limit' or 'api-usage=used/limit', whichever matches)", p);
    }
    json_object *signals = ig_json_get(rl, "signals");
    if (signals) {
        if (!is_arr(signals))
            return ig_err(INTEG_EINVAL, "%s.signals: must be an array", path);
        size_t n = json_object_array_length(signals);
        for (size_t i = 0; i < n; i++) {
            json_object *s = json_object_array_get_idx(signals, i);
            path_fmt(p, "%s.signals[%zu]", path, i);
            if (!is_obj(s))
                return ig_err(INTEG_EINVAL, "%s: must be an object", p);
            if ((rc = check_fields(s, p, signal_fields, NULL)))
                return rc;
            json_object *st = ig_json_get(s, "status");
            if (!st)
                return ig_err(INTEG_EINVAL, "%s.status: required", p);
            if (!json_object_is_type(st, json_type_int) || json_object_get_int(st) < 100 ||
                json_object_get_int(st) > 599)
                return ig_err(INTEG_EINVAL, "%s.status: must be an HTTP status (100-599)", p);
            if ((rc = need_string(s, "body_contains", p, 0)) ||
                (rc = need_jsonpath(s, "json_path", p, 0)) ||
                (rc = need_string(s, "equals", p, has(s, "json_path"))) ||
                (rc = need_bool(s, "retry", p)))
                return rc;
            if (has(s, "equals") && !has(s, "json_path"))
                return ig_err(INTEG_EINVAL, "%s.json_path: required with equals", p);
        }
    }
    return INTEG_OK;
}

/* ---------------------------------------------------------------- webhook */

static int check_locator(json_object *wh, const char *key, const char *path)
{
    static const char *const fields[] = {"header", "json_path", NULL};
    json_object *loc = ig_json_get(wh, key);
    if (!loc)
        return INTEG_OK;
    char p[PATH_MAX_LEN];
    path_fmt(p, "%s.%s", path, key);
    if (!is_obj(loc))
        return ig_err(INTEG_EINVAL, "%s: must be an object with header or json_path", p);
    int rc = check_fields(loc, p, fields, NULL);
    if (rc)
        return rc;
    if (has(loc, "header") == has(loc, "json_path"))
        return ig_err(INTEG_EINVAL, "%s: needs exactly one of header or json_path", p);
    if ((rc = need_string(loc, "header", p, 0)) || (rc = need_jsonpath(loc, "json_path", p, 0)))
        return rc;
    return INTEG_OK;
}

static int check_webhook(json_object *wh, int *has_scheme)
{
    static const char *const fields[] = {"scheme",   "secret_source", "event_id",  "event_type",
                                         "object_id", "batched",      "handshake", "topics",
                                         "notes",     NULL};
    const char *path = "manifest.webhook";
    *has_scheme = 0;
    if (!wh)
        return INTEG_OK; /* JSON null: no push webhooks */
    if (!is_obj(wh))
        return ig_err(INTEG_EINVAL, "%s: must be an object or null", path);
    int rc = check_fields(wh, path, fields, NULL);
    if (rc)
        return rc;
    if (!has(wh, "scheme"))
        return ig_err(INTEG_EINVAL, "%s.scheme: required (null when the system has no webhooks)", path);
    json_object *scheme = ig_json_get(wh, "scheme");
    if (!scheme)
        return INTEG_OK;
    if (!is_str(scheme))
        return ig_err(INTEG_EINVAL, "%s.scheme: must be a string or null", path);
    const char *s = json_object_get_string(scheme);
    const char *sources = NULL;
    for (size_t i = 0; i < sizeof k_schemes / sizeof k_schemes[0]; i++)
        if (strcmp(s, k_schemes[i].scheme) == 0)
            sources = k_schemes[i].secret_sources;
    if (!sources)
        return ig_err(INTEG_EINVAL, "%s.scheme: unknown webhook scheme '%s'", path, s);
    *has_scheme = 1;
    if ((rc = need_enum(wh, "secret_source", path, 1, k_secret_sources, "secret source")))
        return rc;
    const char *src = ig_json_str(wh, "secret_source");
    if (!word_in(src, sources))
        return ig_err(INTEG_EINVAL, "%s.secret_source: scheme '%s' cannot verify with a '%s' secret",
                      path, s, src);
    if ((rc = check_locator(wh, "event_id", path)) || (rc = check_locator(wh, "event_type", path)) ||
        (rc = check_locator(wh, "object_id", path)) || (rc = need_bool(wh, "batched", path)))
        return rc;
    json_object *hs = ig_json_get(wh, "handshake");
    if (hs) {
        if ((rc = need_enum(wh, "handshake", path, 0, k_handshakes, "handshake")))
            return rc;
        const char *h = json_object_get_string(hs);
        const char *want = strcmp(h, "woocommerce_ping") == 0 ? "woocommerce" : "msgraph";
        if (strcmp(s, want) != 0)
            return ig_err(INTEG_EINVAL, "%s.handshake: '%s' belongs to scheme '%s'", path, h, want);
    }
    return INTEG_OK;
}

/* webhook.topics: event type (or "prefix*") -> {entity, action, mode,
 * record_path}. Checked after the entities, which they name. */
static int check_webhook_topics(json_object *manifest)
{
    json_object *topics = ig_json_get(ig_json_get(manifest, "webhook"), "topics");
    if (!topics)
        return INTEG_OK;
    char p[PATH_MAX_LEN];
    if (!is_obj(topics))
        return ig_err(INTEG_EINVAL, "manifest.webhook.topics: must be an object");
    static const char *const fields[] = {"entity", "action", "mode", "record_path", "notes", NULL};
    static const char *const actions[] = {"upsert", "delete", NULL};
    static const char *const modes[] = {"payload", "fetch", NULL};
    json_object_object_foreach(topics, topic, t) {
        path_fmt(p, "manifest.webhook.topics.%s", topic);
        int rc;
        if (!is_obj(t))
            return ig_err(INTEG_EINVAL, "%s: must be an object", p);
        if ((rc = check_fields(t, p, fields, NULL)))
            return rc;
        const char *entity = ig_json_str(t, "entity");
        json_object *ent = entity ? ig_json_get(ig_json_get(manifest, "entities"), entity) : NULL;
        if (!ent)
            return ig_err(INTEG_EINVAL, "%s.entity: must name an entity of the manifest", p);
        if ((rc = need_enum(t, "action", p, 0, actions, "action")) || (rc = need_enum(t, "mode", p, 0, modes, "mode")))
            return rc;
        const char *mode = ig_json_str(t, "mode");
        if (mode && !strcmp(mode, "fetch") && !ig_json_get(ent, "get"))
            return ig_err(INTEG_EINVAL, "%s.mode: 'fetch' needs a get request on entity '%s'", p, entity);
        const char *rp = ig_json_str(t, "record_path");
        if (ig_json_get(t, "record_path") && (!rp || rp[0] != '$'))
            return ig_err(INTEG_EINVAL, "%s.record_path: must be a JSON path starting with $", p);
    }
    return INTEG_OK;
}

/* --------------------------------------------------------------- entities */

static int check_request(const vctx *v, json_object *req, const char *path, int flags,
                         const char *const *methods, int need_path);

static int check_pagination(json_object *pg, const char *path)
{
    static const char *const f_common[] = {"type", "notes", NULL};
    static const char *const f_cursor[] = {"cursor_path", "param", "in", NULL};
    static const char *const f_next[] = {"next_path", "done_path", NULL};
    static const char *const f_link[] = {"rel", NULL};
    static const char *const f_page[] = {"param", "size_param", "size", "start",
                                         "total_pages_header", "total_pages_path", "total_path",
                                         NULL};
    static const char *const f_offset[] = {"offset_param", "limit_param", "limit", "total_path",
                                           "next_path", NULL};
    static const char *const f_gql[] = {"page_info_path", "cursor_variable", "end_cursor",
                                        "edges_path", NULL};
    static const char *const f_none[] = {NULL};
    static const char *const cursor_in[] = {"query", "body", NULL};
    static const char *const end_cursor[] = {"page_info", "last_edge", NULL};

    if (!pg)
        return ig_err(INTEG_EINVAL, "%s: required", path);
    if (!is_obj(pg))
        return ig_err(INTEG_EINVAL, "%s: must be an object", path);
    int rc = need_enum(pg, "type", path, 1, k_pagination_types, "pagination type");
    if (rc)
        return rc;
    const char *t = ig_json_str(pg, "type");
    if (strcmp(t, "cursor") == 0) {
        if ((rc = check_fields(pg, path, f_common, f_cursor)) ||
            (rc = need_jsonpath(pg, "cursor_path", path, 1)) ||
            (rc = need_string(pg, "param", path, 1)) ||
            (rc = need_enum(pg, "in", path, 0, cursor_in, "cursor location")))
            return rc;
    } else if (strcmp(t, "next_url") == 0) {
        if ((rc = check_fields(pg, path, f_common, f_next)) ||
            (rc = need_jsonpath(pg, "next_path", path, 1)) ||
            (rc = need_jsonpath(pg, "done_path", path, 0)))
            return rc;
    } else if (strcmp(t, "link_header") == 0) {
        if ((rc = check_fields(pg, path, f_common, f_link)) || (rc = need_string(pg, "rel", path, 1)))
            return rc;
    } else if (strcmp(t, "page") == 0) {
        if ((rc = check_fields(pg, path, f_common, f_page)) ||
            (rc = need_string(pg, "param", path, 1)) ||
            (rc = need_string(pg, "size_param", path, 0)) ||
            (rc = need_positive(pg, "size", path, has(pg, "size_param"))) ||
            (rc = need_string(pg, "total_pages_header", path, 0)) ||
            (rc = need_jsonpath(pg, "total_pages_path", path, 0)) ||
            (rc = need_jsonpath(pg, "total_path", path, 0)))
            return rc;
        json_object *start = ig_json_get(pg, "start");
        if (start && (!json_object_is_type(start, json_type_int) ||
                      (json_object_get_int64(start) != 0 && json_object_get_int64(start) != 1)))
            return ig_err(INTEG_EINVAL, "%s.start: must be 0 or 1", path);
    } else if (strcmp(t, "offset") == 0) {
        if ((rc = check_fields(pg, path, f_common, f_offset)) ||
            (rc = need_string(pg, "offset_param", path, 1)) ||
            (rc = need_string(pg, "limit_param", path, 1)) ||
            (rc = need_positive(pg, "limit", path, 1)) ||
            (rc = need_jsonpath(pg, "total_path", path, 0)) ||
            (rc = need_jsonpath(pg, "next_path", path, 0)))
            return rc;
    } else if (strcmp(t, "graphql_cursor") == 0) {
        if ((rc = check_fields(pg, path, f_common, f_gql)) ||
            (rc = need_jsonpath(pg, "page_info_path", path, 1)) ||
            (rc = need_string(pg, "cursor_variable", path, 1)) ||
            (rc = need_enum(pg, "end_cursor", path, 0, end_cursor, "end_cursor source")) ||
            (rc = need_jsonpath(pg, "edges_path", path,
                                ig_json_str(pg, "end_cursor") &&
                                    strcmp(ig_json_str(pg, "end_cursor"), "last_edge") == 0)))
            return rc;
    } else {
        if ((rc = check_fields(pg, path, f_common, f_none)))
            return rc;
    }
    return INTEG_OK;
}

/* An HTTP request description: list, get/create/update/delete/send, the
 * incremental search request, the delete-detection request. */
static int check_request(const vctx *v, json_object *req, const char *path, int flags,
                         const char *const *methods, int need_path)
{
    static const char *const fields[] = {"method", "path", "query", "body", "headers",
                                         "records_path", "pagination", "async", "notes",
                                         "description", NULL};
    if (!is_obj(req))
        return ig_err(INTEG_EINVAL, "%s: must be an object", path);
    int rc;
    if ((rc = check_fields(req, path, fields, NULL)) ||
        (rc = need_enum(req, "method", path, 1, methods, "HTTP method")) ||
        (rc = check_url_field(v, req, "path", path, need_path, URL_RELATIVE | flags, NULL)) ||
        (rc = need_string_map(req, "query", path)) || (rc = need_string_map(req, "headers", path)) ||
        (rc = need_jsonpath(req, "records_path", path, 0)))
        return rc;
    if (has(req, "async"))
        return ig_err(INTEG_EINVAL, "%s.async: not implemented (the engine does not poll jobs); "
                      "describe the behaviour in notes", path);
    if (!(flags & URL_ALLOW_VALUE) && json_mentions(req, "{value}"))
        return ig_err(INTEG_EINVAL, "%s: placeholder {value} is only allowed in lookup requests", path);
    if ((rc = check_template_map(v, req, "query", path, flags)) ||
        (rc = check_template_map(v, req, "headers", path, flags)))
        return rc;
    if (has(req, "body")) {
        char p[PATH_MAX_LEN];
        path_fmt(p, "%s.body", path);
        if ((rc = check_request_template(v, ig_json_get(req, "body"), p, flags, 1)))
            return rc;
    }
    if (has(req, "pagination")) {
        char p[PATH_MAX_LEN];
        path_fmt(p, "%s.pagination", path);
        if ((rc = check_pagination(ig_json_get(req, "pagination"), p)))
            return rc;
    }
    return INTEG_OK;
}

static int check_request_field(const vctx *v, json_object *ent, const char *key, const char *path,
                               int flags, const char *const *methods)
{
    json_object *req = ig_json_get(ent, key);
    if (!req)
        return INTEG_OK;
    char p[PATH_MAX_LEN];
    path_fmt(p, "%s.%s", path, key);
    return check_request(v, req, p, flags, methods, 1);
}

static int check_incremental(const vctx *v, json_object *inc, const char *path)
{
    static const char *const fields[] = {"in", "param", "template", "format", "query", "request",
                                         "result_cap", "notes", NULL};
    if (!is_obj(inc))
        return ig_err(INTEG_EINVAL, "%s: must be an object", path);
    int rc;
    if ((rc = check_fields(inc, path, fields, NULL)) ||
        (rc = need_enum(inc, "in", path, 1, k_incremental_in, "incremental location")) ||
        (rc = need_enum(inc, "format", path, 1, k_time_formats, "time format")) ||
        (rc = need_string(inc, "param", path, 0)) || (rc = need_string(inc, "template", path, 0)) ||
        (rc = check_template_map(v, inc, "query", path, ALLOW_SINCE)) ||
        (rc = need_positive(inc, "result_cap", path, 0)))
        return rc;
    if (has(inc, "template")) {
        char p[PATH_MAX_LEN];
        path_fmt(p, "%s.template", path);
        if ((rc = check_request_template(v, ig_json_get(inc, "template"), p, ALLOW_SINCE, 0)))
            return rc;
    }
    const char *in = ig_json_str(inc, "in");
    const char *tmpl = ig_json_str(inc, "template");
    if (tmpl && !strstr(tmpl, "{since}"))
        return ig_err(INTEG_EINVAL, "%s.template: must contain {since}", path);
    if (strcmp(in, "request") == 0) {
        json_object *req = ig_json_get(inc, "request");
        char p[PATH_MAX_LEN];
        path_fmt(p, "%s.request", path);
        if (!req)
            return ig_err(INTEG_EINVAL, "%s: required when in is 'request'", p);
        if ((rc = check_request(v, req, p, ALLOW_SINCE, k_list_methods, 1)))
            return rc;
        if (!json_mentions(req, "{since}"))
            return ig_err(INTEG_EINVAL, "%s: must use {since} in its query or body", p);
        return INTEG_OK;
    }
    if (has(inc, "request"))
        return ig_err(INTEG_EINVAL, "%s.request: only allowed when in is 'request'", path);
    if (strcmp(in, "query") == 0 && !has(inc, "param")) {
        /* A set of templated query parameters (Magento searchCriteria). */
        if (!json_mentions(ig_json_get(inc, "query"), "{since}"))
            return ig_err(INTEG_EINVAL, "%s.param: required (or a query template using {since})",
                          path);
        return INTEG_OK;
    }
    if (!has(inc, "param"))
        return ig_err(INTEG_EINVAL, "%s.param: required", path);
    if (strcmp(in, "filter") == 0 && !tmpl)
        return ig_err(INTEG_EINVAL, "%s.template: required when in is 'filter'", path);
    return INTEG_OK;
}

static int check_batch(const vctx *v, json_object *batch, const char *path)
{
    static const char *const fields[] = {"max_items", "create", "update", "upsert", "delete",
                                         "notes", NULL};
    if (!is_obj(batch))
        return ig_err(INTEG_EINVAL, "%s: must be an object", path);
    int rc;
    if ((rc = check_fields(batch, path, fields, NULL)) ||
        (rc = need_positive(batch, "max_items", path, 0)))
        return rc;
    static const char *const kinds[] = {"create", "update", "upsert", "delete", NULL};
    int ops = 0;
    for (const char *const *op = kinds; *op; op++) {
        if (!has(batch, *op))
            continue;
        ops++;
        if ((rc = check_request_field(v, batch, *op, path, ALLOW_RECORDS, k_http_methods)))
            return rc;
    }
    if (!ops)
        return ig_err(INTEG_EINVAL, "%s: needs at least one of create, update, upsert, delete", path);
    return INTEG_OK;
}

/* lookup: find a record by a unique field, to reconcile a create whose
 * result was lost (doc/push.md). */
static int check_lookup(const vctx *v, json_object *lk, const char *path)
{
    static const char *const fields[] = {"field", "remote_field", "id_property", "request", "records_path",
                                         "value_escape", "fetch", "notes", NULL};
    static const char *const escapes[] = {"none", "odata", NULL};
    if (!is_obj(lk))
        return ig_err(INTEG_EINVAL, "%s: must be an object", path);
    int rc;
    if ((rc = check_fields(lk, path, fields, NULL)) || (rc = need_string(lk, "field", path, 1)) ||
        (rc = need_string(lk, "remote_field", path, 0)) || (rc = need_string(lk, "id_property", path, 0)) ||
        (rc = need_jsonpath(lk, "records_path", path, 0)) ||
        (rc = need_enum(lk, "value_escape", path, 0, escapes, "value escape")) ||
        (rc = need_bool(lk, "fetch", path)))
        return rc;
    json_object *req = ig_json_get(lk, "request");
    char p[PATH_MAX_LEN];
    path_fmt(p, "%s.request", path);
    if (!req)
        return ig_err(INTEG_EINVAL, "%s: required", p);
    if ((rc = check_request(v, req, p, URL_ALLOW_VALUE, k_http_methods, 1)))
        return rc;
    if (!json_mentions(req, "{value}"))
        return ig_err(INTEG_EINVAL, "%s: must use {value} in its path, query or body", p);
    return INTEG_OK;
}

static int check_entity(vctx *v, const char *name, json_object *ent, const char *path)
{
    static const char *const fields[] = {
        "local_entity", "path",       "records_path", "id_field",  "updated_field",
        "updated_format", "version_field", "list",    "pagination", "incremental",
        "headers",      "fetch_each", "result_cap",   "get",        "create",
        "update",       "delete",     "send",         "batch",      "deletes",
        "default_mapping", "lookup",  "notes",        "description",  NULL};
    static const char *const mapping_fields[] = {"field_map", "transform_rules", "required", "reverse", "notes", NULL};

    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return ig_err(INTEG_EINVAL, "%s: entity names use a-z, 0-9 and '_'", path);
    if (!*name)
        return ig_err(INTEG_EINVAL, "%s: entity names must not be empty", path);
    if (!is_obj(ent))
        return ig_err(INTEG_EINVAL, "%s: must be an object", path);
    int rc;
    if ((rc = check_fields(ent, path, fields, NULL)) ||
        (rc = need_enum(ent, "local_entity", path, 1, k_local_entities, "local entity")) ||
        (rc = check_url_field(v, ent, "path", path, 1, URL_RELATIVE, NULL)) ||
        (rc = need_string(ent, "id_field", path, 0)) ||
        (rc = need_string(ent, "updated_field", path, 0)) ||
        (rc = need_enum(ent, "updated_format", path, 0, k_time_formats, "time format")) ||
        (rc = check_template_map(v, ent, "headers", path, 0)) ||
        (rc = need_bool(ent, "fetch_each", path)) ||
        (rc = need_positive(ent, "result_cap", path, 0)))
        return rc;
    if (has(ent, "version_field"))
        return ig_err(INTEG_EINVAL, "%s.version_field: not implemented (updates send no revision); "
                      "describe the field in notes", path);

    char p[PATH_MAX_LEN];
    json_object *list = ig_json_get(ent, "list");
    int listable = !(list && json_object_is_type(list, json_type_boolean) &&
                     !json_object_get_boolean(list));
    if (listable) {
        v->caps_seen |= CAP_PULL;
        if (list) {
            path_fmt(p, "%s.list", path);
            if ((rc = check_request(v, list, p, ALLOW_SINCE, k_list_methods, 0)))
                return rc;
        }
        if ((rc = need_jsonpath(ent, "records_path", path, 1)) ||
            (rc = need_string(ent, "id_field", path, 1)))
            return rc;
        path_fmt(p, "%s.pagination", path);
        if ((rc = check_pagination(ig_json_get(ent, "pagination"), p)))
            return rc;
        if (ig_json_get(ent, "fetch_each") && json_object_get_boolean(ig_json_get(ent, "fetch_each")) &&
            !has(ent, "get"))
            return ig_err(INTEG_EINVAL, "%s.get: required with fetch_each", path);
    } else {
        static const char *const not_listable[] = {"records_path", "pagination", "incremental",
                                                   "deletes", "fetch_each", NULL};
        for (const char *const *k = not_listable; *k; k++)
            if (has(ent, *k))
                return ig_err(INTEG_EINVAL, "%s.%s: not allowed when list is false", path, *k);
    }
    if (has(ent, "incremental")) {
        path_fmt(p, "%s.incremental", path);
        if ((rc = check_incremental(v, ig_json_get(ent, "incremental"), p)))
            return rc;
        v->caps_seen |= CAP_INCREMENTAL;
    }
    if (has(ent, "send"))
        return ig_err(INTEG_EINVAL, "%s.send: not implemented (no engine sends messages yet)", path);
    if ((rc = check_request_field(v, ent, "get", path, URL_ALLOW_ID, k_http_methods)) ||
        (rc = check_request_field(v, ent, "create", path, ALLOW_RECORD, k_http_methods)) ||
        (rc = check_request_field(v, ent, "update", path, URL_ALLOW_ID | ALLOW_RECORD, k_http_methods)) ||
        (rc = check_request_field(v, ent, "delete", path, URL_ALLOW_ID, k_http_methods)) ||
        (rc = check_request_field(v, ent, "deletes", path, 0, k_list_methods)))
        return rc;
    if (has(ig_json_get(ent, "get"), "body"))
        return ig_err(INTEG_EINVAL, "%s.get.body: not sent (a get request has no body)", path);
    if (has(ent, "create") || has(ent, "update"))
        v->caps_seen |= CAP_PUSH;
    if (has(ent, "deletes"))
        v->caps_seen |= CAP_DELETE_DETECTION;
    if (has(ent, "batch")) {
        path_fmt(p, "%s.batch", path);
        if ((rc = check_batch(v, ig_json_get(ent, "batch"), p)))
            return rc;
        v->caps_seen |= CAP_BATCH | CAP_PUSH;
    }
    if (has(ent, "lookup")) {
        path_fmt(p, "%s.lookup", path);
        if ((rc = check_lookup(v, ig_json_get(ent, "lookup"), p)))
            return rc;
        if (ig_json_bool(ig_json_get(ent, "lookup"), "fetch", 0) && !has(ent, "get"))
            return ig_err(INTEG_EINVAL, "%s.get: required with lookup.fetch", path);
    }
    json_object *dm = ig_json_get(ent, "default_mapping");
    if (dm) {
        path_fmt(p, "%s.default_mapping", path);
        if (!is_obj(dm))
            return ig_err(INTEG_EINVAL, "%s: must be an object", p);
        if ((rc = check_fields(dm, p, mapping_fields, NULL)))
            return rc;
        json_object *fm = ig_json_get(dm, "field_map");
        if (!is_obj(fm))
            return ig_err(INTEG_EINVAL, "%s.field_map: required (an object of strings)", p);
        if ((rc = need_string_map(dm, "field_map", p)))
            return rc;
        json_object *tr = ig_json_get(dm, "transform_rules");
        if (tr && !is_arr(tr))
            return ig_err(INTEG_EINVAL, "%s.transform_rules: must be an array", p);
        /* The mapping engine is the judge of paths and rules. */
        ig_mapping *m = NULL;
        if ((rc = ig_mapping_compile(dm, p, &m)))
            return rc;
        ig_mapping_free(m);
    }
    return INTEG_OK;
}

static int check_entities(vctx *v)
{
    const char *path = "manifest.entities";
    json_object *ents = ig_json_get(v->manifest, "entities");
    if (!ents)
        return INTEG_OK;
    if (!is_obj(ents))
        return ig_err(INTEG_EINVAL, "%s: must be an object", path);
    char p[PATH_MAX_LEN];
    json_object_object_foreach(ents, name, ent) {
        path_fmt(p, "%s.%s", path, name);
        int rc = check_entity(v, name, ent, p);
        if (rc)
            return rc;
    }
    /* The config's entity selector must offer exactly what exists. */
    json_object *en = ig_json_get(ig_json_get(ig_json_get(v->config_props, "entities"), "items"), "enum");
    if (is_arr(en)) {
        size_t n = json_object_array_length(en);
        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(en, i);
            if (!is_str(e) || !has(ents, json_object_get_string(e)))
                return ig_err(INTEG_EINVAL,
                              "manifest.config_schema.properties.entities.items.enum[%zu]: '%s' is "
                              "not an entity of this manifest",
                              i, is_str(e) ? json_object_get_string(e) : "?");
        }
    }
    return INTEG_OK;
}

/* ------------------------------------------------------------ top level */

static int check_key(json_object *m)
{
    const char *key = ig_json_str(m, "key");
    if (!key)
        return ig_err(INTEG_EINVAL, "manifest.key: must be a string");
    /* ^[a-z0-9]+(-[a-z0-9]+)*$ */
    int seg = 0;
    for (const char *c = key;; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')) {
            seg++;
            continue;
        }
        if ((*c == '-' || *c == '\0') && seg > 0) {
            if (*c == '\0')
                break;
            seg = 0;
            continue;
        }
        return ig_err(INTEG_EINVAL, "manifest.key: must match ^[a-z0-9]+(-[a-z0-9]+)*$");
    }
    const char *cat = ig_json_str(m, "category");
    if (!cat)
        return ig_err(INTEG_EINVAL, "manifest.category: must be a string");
    if (!ig_in_list(cat, k_categories))
        return ig_err(INTEG_EINVAL, "manifest.category: unknown category '%s'", cat);
    size_t kl = strlen(key), cl = strlen(cat);
    if (kl < cl + 2 || key[kl - cl - 1] != '-' || strcmp(key + kl - cl, cat) != 0)
        return ig_err(INTEG_EINVAL, "manifest.key: must end with '-%s' (its category)", cat);
    return INTEG_OK;
}

static int check_capabilities(const vctx *v, unsigned *caps)
{
    const char *path = "manifest.capabilities";
    json_object *arr = ig_json_get(v->manifest, "capabilities");
    *caps = 0;
    if (!is_arr(arr))
        return ig_err(INTEG_EINVAL, "%s: must be an array of strings", path);
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (!is_str(e))
            return ig_err(INTEG_EINVAL, "%s[%zu]: must be a string", path, i);
        const char *s = json_object_get_string(e);
        size_t idx = 0;
        while (k_capabilities[idx] && strcmp(k_capabilities[idx], s) != 0)
            idx++;
        if (!k_capabilities[idx])
            return ig_err(INTEG_EINVAL, "%s[%zu]: unknown capability '%s'", path, i, s);
        if (*caps & k_capability_bits[idx])
            return ig_err(INTEG_EINVAL, "%s[%zu]: duplicate capability '%s'", path, i, s);
        if (k_capability_bits[idx] == CAP_SEND)
            return ig_err(INTEG_EINVAL, "%s[%zu]: 'send' is not implemented yet (no engine sends "
                          "messages)", path, i);
        *caps |= k_capability_bits[idx];
    }
    return INTEG_OK;
}

int ig_manifest_validate(json_object *manifest)
{
    static const char *const required[] = {"manifest_version", "key", "name", "category",
                                           "base_url", "auth", "config_schema", "capabilities",
                                           NULL};
    if (!is_obj(manifest))
        return ig_err(INTEG_EINVAL, "manifest: must be a JSON object");
    vctx v = {.manifest = manifest};
    int rc;

    json_object_object_foreach(manifest, key, val) {
        (void)val;
        if (!ig_in_list(key, k_top_fields) && strncmp(key, "x-", 2) != 0)
            return ig_err(INTEG_EINVAL, "manifest.%s: unknown top-level key (extensions start with 'x-')",
                          key);
    }
    for (const char *const *k = required; *k; k++)
        if (!has(manifest, *k))
            return ig_err(INTEG_EINVAL, "manifest.%s: required", *k);

    json_object *ver = ig_json_get(manifest, "manifest_version");
    if (!json_object_is_type(ver, json_type_int) || json_object_get_int64(ver) != 1)
        return ig_err(INTEG_EINVAL, "manifest.manifest_version: must be 1");
    if ((rc = check_key(manifest)) || (rc = need_string(manifest, "name", "manifest", 1)))
        return rc;
    json_object *desc = ig_json_get(manifest, "description");
    if (desc && !is_str(desc))
        return ig_err(INTEG_EINVAL, "manifest.description: must be a string");
    if ((rc = check_config_schema(&v)) || (rc = check_auth(&v)))
        return rc;
    if ((rc = check_url_field(&v, manifest, "base_url", "manifest", 1, URL_ABSOLUTE | URL_ALLOW_CREDS,
                              NULL)) ||
        (rc = check_url_field(&v, manifest, "docs_url", "manifest", 0, URL_ABSOLUTE, NULL)) ||
        (rc = check_template_map(&v, manifest, "headers", "manifest", 0)))
        return rc;
    /* A docs link is for people: no tenant values in it. */
    const char *docs = ig_json_str(manifest, "docs_url");
    if (docs && strchr(docs, '{'))
        return ig_err(INTEG_EINVAL, "manifest.docs_url: must not contain placeholders");

    unsigned caps;
    if ((rc = check_capabilities(&v, &caps)))
        return rc;
    if (has(manifest, "rate_limit") && (rc = check_rate_limit(ig_json_get(manifest, "rate_limit"))))
        return rc;
    int has_scheme = 0;
    if ((rc = check_webhook(ig_json_get(manifest, "webhook"), &has_scheme)))
        return rc;
    if (has_scheme)
        v.caps_seen |= CAP_WEBHOOKS;
    if ((rc = check_entities(&v)) || (rc = check_webhook_topics(manifest)))
        return rc;
    json_object *tr = ig_json_get(manifest, "test_request");
    if (tr && (rc = check_request(&v, tr, "manifest.test_request", 0, k_http_methods, 1)))
        return rc;

    /* Capabilities promise behaviour: each needs a section that backs it,
     * and a declared webhook scheme must be advertised. */
    for (size_t i = 0; k_capabilities[i]; i++) {
        unsigned bit = k_capability_bits[i];
        if ((caps & bit) && !(v.caps_seen & bit)) {
            if (bit == CAP_WEBHOOKS)
                return ig_err(INTEG_EINVAL,
                              "manifest.webhook.scheme: capability 'webhooks' needs a webhook scheme");
            return ig_err(INTEG_EINVAL,
                          "manifest.capabilities: '%s' is declared but no entity supports it",
                          k_capabilities[i]);
        }
    }
    if (has_scheme && !(caps & CAP_WEBHOOKS))
        return ig_err(INTEG_EINVAL,
                      "manifest.capabilities: webhook.scheme is set but 'webhooks' is not listed");
    return INTEG_OK;
}

/* ---------------------------------------------------------------- inference */

static int is_empty_credentials(json_object *c)
{
    return !c || (is_obj(c) && json_object_object_length(c) == 0);
}

const char *ig_manifest_infer_auth_type(json_object *manifest, json_object *credentials)
{
    json_object *methods = ig_json_get(ig_json_get(manifest, "auth"), "methods");
    if (!is_obj(methods))
        return NULL;
    json_object_object_foreach(methods, type, mdef) {
        if (strcmp(type, "none") == 0) {
            if (is_empty_credentials(credentials))
                return type;
            continue;
        }
        json_object *schema = ig_json_get(mdef, "credentials_schema");
        if (!credentials || !is_obj(credentials) || !is_obj(schema))
            continue;
        /* Validation must not touch the caller's object, even with defaults off. */
        json_object *copy = ig_json_copy(credentials);
        if (!copy)
            return NULL;
        int rc = ig_schema_validate(schema, copy, 0, "credentials");
        ig_json_wipe_put(copy); /* a copy of the secret */
        if (rc == INTEG_OK)
            return type;
    }
    return NULL;
}
