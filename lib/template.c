/* Manifest templates and the JSON path subset. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "template.h"

/* The grammar's identifier characters, in ASCII whatever the locale: a
 * namespace is [A-Za-z0-9_]+, a name also allows '-'. */
static int ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

int ig_tmpl_placeholder_at(const char *t, size_t i, size_t *ns_len, size_t *name_off, size_t *name_len,
                           size_t *end)
{
    if (t[i] != '{')
        return 0;
    size_t j = i + 1, start = j;
    while (ident_char(t[j]))
        j++;
    if (j == start)
        return 0;
    *ns_len = j - start;
    *name_off = 0;
    *name_len = 0;
    if (t[j] == '.') {
        size_t k = ++j;
        while (ident_char(t[j]) || t[j] == '-')
            j++;
        if (j == k)
            return 0;
        *name_off = k;
        *name_len = j - k;
    }
    if (t[j] != '}')
        return 0;
    *end = j + 1;
    return 1;
}

static json_object *lookup_span(const char *t, size_t i, size_t ns_len, size_t name_off,
                                size_t name_len, ig_tmpl_lookup lookup, void *payload)
{
    char ns[64], name[128];
    if (ns_len >= sizeof ns || name_len >= sizeof name)
        return NULL;
    memcpy(ns, t + i + 1, ns_len);
    ns[ns_len] = '\0';
    if (name_off) {
        memcpy(name, t + name_off, name_len);
        name[name_len] = '\0';
    }
    return lookup(payload, ns, name_off ? name : NULL);
}

int ig_tmpl_render(const char *t, ig_tmpl_lookup lookup, void *payload, char **out, int *missing)
{
    *out = NULL;
    if (missing)
        *missing = 0;
    size_t cap = strlen(t) + 64, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return ig_err(INTEG_ENOMEM, "out of memory");
    for (size_t i = 0; t[i];) {
        size_t ns_len, name_off, name_len, end;
        const char *piece = t + i;
        size_t piece_len = 1;
        if (ig_tmpl_placeholder_at(t, i, &ns_len, &name_off, &name_len, &end)) {
            json_object *v = lookup_span(t, i, ns_len, name_off, name_len, lookup, payload);
            if (!v) {
                if (missing)
                    *missing = 1;
                piece_len = 0;
            } else if (json_object_is_type(v, json_type_string)) {
                piece = json_object_get_string(v);
                piece_len = (size_t)json_object_get_string_len(v);
            } else {
                piece = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
                piece_len = strlen(piece);
            }
            i = end;
        } else {
            i++;
        }
        if (len + piece_len + 1 > cap) {
            cap = (len + piece_len + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                return ig_err(INTEG_ENOMEM, "out of memory");
            }
            buf = nb;
        }
        memcpy(buf + len, piece, piece_len);
        len += piece_len;
    }
    buf[len] = '\0';
    *out = buf;
    return INTEG_OK;
}

static int render_value(json_object *t, ig_tmpl_lookup lookup, void *payload, json_object **out)
{
    *out = NULL;
    switch (json_object_get_type(t)) {
    case json_type_string: {
        const char *s = json_object_get_string(t);
        size_t ns_len, name_off, name_len, end;
        if (ig_tmpl_placeholder_at(s, 0, &ns_len, &name_off, &name_len, &end) && s[end] == '\0') {
            json_object *v = lookup_span(s, 0, ns_len, name_off, name_len, lookup, payload);
            /* A reference: a caller that wipes the result copies it first
             * (ig_tmpl_render_json's contract). */
            *out = v ? json_object_get(v) : NULL;
            return INTEG_OK; /* NULL: missing, the member is dropped */
        }
        char *r = NULL;
        int missing = 0;
        int rc = ig_tmpl_render(s, lookup, payload, &r, &missing);
        if (rc)
            return rc;
        if (!missing)
            *out = json_object_new_string(r);
        free(r);
        return INTEG_OK;
    }
    case json_type_array: {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < ig_json_len(t); i++) {
            json_object *v = NULL;
            int rc = render_value(json_object_array_get_idx(t, i), lookup, payload, &v);
            if (rc) {
                json_object_put(a);
                return rc;
            }
            if (v)
                json_object_array_add(a, v);
        }
        *out = a;
        return INTEG_OK;
    }
    case json_type_object: {
        json_object *o = json_object_new_object();
        ig_json_foreach(t, k, v)
        {
            json_object *r = NULL;
            int rc = render_value(v, lookup, payload, &r);
            if (rc) {
                json_object_put(o);
                return rc;
            }
            if (r || !v)
                json_object_object_add(o, k, r);
        }
        *out = o;
        return INTEG_OK;
    }
    default:
        *out = json_object_get(t);
        return INTEG_OK;
    }
}

int ig_tmpl_render_json(json_object *tmpl, ig_tmpl_lookup lookup, void *payload, json_object **out)
{
    return render_value(tmpl, lookup, payload, out);
}

/* ---- JSON paths ---------------------------------------------------------- */

/* Walk `path` from index i over `node`; collect into arr (when non-NULL) or
 * return the single value. */
static json_object *walk(json_object *node, const char *p, json_object *arr)
{
    while (node && *p) {
        if (*p == '.') {
            p++;
            const char *s = p;
            while (*p && *p != '.' && *p != '[')
                p++;
            char key[256];
            size_t n = (size_t)(p - s);
            if (n == 0 || n >= sizeof key)
                return NULL;
            memcpy(key, s, n);
            key[n] = '\0';
            node = ig_json_get(node, key);
        } else if (*p == '[') {
            p++;
            if (*p == '\'' || *p == '"') {
                char q = *p++;
                const char *s = p;
                while (*p && *p != q)
                    p++;
                char key[256];
                size_t n = (size_t)(p - s);
                if (!*p || n >= sizeof key || p[1] != ']')
                    return NULL;
                memcpy(key, s, n);
                key[n] = '\0';
                p += 2;
                node = ig_json_get(node, key);
            } else if (*p == '*') {
                if (p[1] != ']' || !json_object_is_type(node, json_type_array))
                    return NULL;
                p += 2;
                for (size_t i = 0; i < ig_json_len(node); i++) {
                    json_object *v = walk(json_object_array_get_idx(node, i), p, arr);
                    if (v && arr)
                        json_object_array_add(arr, json_object_get(v));
                }
                return NULL;
            } else {
                char *end = NULL;
                long idx = strtol(p, &end, 10);
                if (end == p || *end != ']' || idx < 0 || !json_object_is_type(node, json_type_array))
                    return NULL;
                p = end + 1;
                node = (size_t)idx < ig_json_len(node)
                           ? json_object_array_get_idx(node, (size_t)idx)
                           : NULL;
            }
        } else {
            return NULL;
        }
    }
    return node;
}

json_object *ig_jsonpath_get(json_object *root, const char *path)
{
    if (!path || path[0] != '$')
        return NULL;
    if (strstr(path, "[*]"))
        return NULL;
    return walk(root, path + 1, NULL);
}

int ig_jsonpath_collect(json_object *root, const char *path, json_object *arr)
{
    if (!path || path[0] != '$')
        return ig_err(INTEG_EINVAL, "JSON path '%s' must start with $", path ? path : "");
    if (!strstr(path, "[*]")) {
        json_object *v = walk(root, path + 1, NULL);
        if (v)
            json_object_array_add(arr, json_object_get(v));
        return INTEG_OK;
    }
    walk(root, path + 1, arr);
    return INTEG_OK;
}
