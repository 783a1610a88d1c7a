/* json-c helpers: parsing with located errors, field access, serialising. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"

int ig_json_parse(const char *text, const char *what, int allow_null, json_object **out)
{
    *out = NULL;
    if (!text) {
        if (!allow_null)
            return ig_err(INTEG_EINVAL, "%s: must not be NULL", what);
        *out = json_object_new_object();
        return *out ? INTEG_OK : ig_err(INTEG_ENOMEM, "%s: out of memory", what);
    }
    json_tokener *tok = json_tokener_new_ex(64);
    if (!tok)
        return ig_err(INTEG_ENOMEM, "%s: out of memory", what);
    size_t len = strlen(text);
    /* Include the NUL: a bare top-level number ("5") only ends there. */
    json_object *obj = json_tokener_parse_ex(tok, text, (int)len + 1);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_continue) {
        json_object_put(obj);
        json_tokener_free(tok);
        return ig_err(INTEG_EINVAL, "%s: malformed JSON: unexpected end of input", what);
    }
    if (jerr != json_tokener_success) {
        size_t off = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        return ig_err(INTEG_EINVAL, "%s: malformed JSON at offset %zu: %s", what, off,
                      json_tokener_error_desc(jerr));
    }
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    while (end < len && text[end] && strchr(" \t\r\n", text[end]))
        end++;
    if (end != len) {
        json_object_put(obj);
        return ig_err(INTEG_EINVAL, "%s: malformed JSON: trailing data at offset %zu", what, end);
    }
    *out = obj; /* NULL for the JSON literal null */
    return INTEG_OK;
}

int ig_json_parse_object(const char *text, const char *what, int allow_null, json_object **out)
{
    int rc = ig_json_parse(text, what, allow_null, out);
    if (rc)
        return rc;
    if (!json_object_is_type(*out, json_type_object)) {
        json_object_put(*out);
        *out = NULL;
        return ig_err(INTEG_EINVAL, "%s: must be a JSON object", what);
    }
    return INTEG_OK;
}

int ig_json_to_string(json_object *obj, char **out)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (!s)
        return ig_err(INTEG_ENOMEM, "out of memory serialising JSON");
    char *copy = malloc(len + 1);
    if (!copy)
        return ig_err(INTEG_ENOMEM, "out of memory serialising JSON");
    memcpy(copy, s, len + 1);
    *out = copy;
    return INTEG_OK;
}

json_object *ig_json_get(json_object *obj, const char *key)
{
    json_object *v = NULL;
    if (obj && key && json_object_is_type(obj, json_type_object) && json_object_object_get_ex(obj, key, &v))
        return v;
    return NULL;
}

const char *ig_json_str(json_object *obj, const char *key)
{
    json_object *v = ig_json_get(obj, key);
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int64_t ig_json_int(json_object *obj, const char *key, int64_t dflt)
{
    json_object *v = ig_json_get(obj, key);
    return json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : dflt;
}

int ig_json_bool(json_object *obj, const char *key, int dflt)
{
    json_object *v = ig_json_get(obj, key);
    return json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : dflt;
}

int ig_json_limit_offset(json_object *filter, const char *what, int64_t *limit, int64_t *offset)
{
    *limit = 100;
    *offset = 0;
    json_object *l = ig_json_get(filter, "limit");
    json_object *o = ig_json_get(filter, "offset");
    if (l) {
        if (!json_object_is_type(l, json_type_int) || json_object_get_int64(l) < 0 ||
            json_object_get_int64(l) > 10000)
            return ig_err(INTEG_EINVAL, "%s.limit: must be an integer from 0 to 10000", what);
        if (json_object_get_int64(l) > 0)
            *limit = json_object_get_int64(l);
    }
    if (o) {
        if (!json_object_is_type(o, json_type_int) || json_object_get_int64(o) < 0)
            return ig_err(INTEG_EINVAL, "%s.offset: must be a non-negative integer", what);
        *offset = json_object_get_int64(o);
    }
    return INTEG_OK;
}

json_object *ig_json_copy(json_object *obj)
{
    json_object *dst = NULL;
    if (!obj)
        return NULL;
    if (json_object_deep_copy(obj, &dst, NULL) != 0)
        return NULL;
    return dst;
}

json_object *ig_json_raw(json_object *obj)
{
    const char *text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *copy = text ? strdup(text) : NULL;
    json_object *raw = copy ? json_object_new_object() : NULL;
    if (!raw) {
        free(copy);
        return NULL;
    }
    json_object_set_serializer(raw, json_object_userdata_to_json_string, copy, json_object_free_userdata);
    return raw;
}

static void wipe_strings(json_object *o)
{
    switch (json_object_get_type(o)) {
    case json_type_string: {
        char *s = (char *)json_object_get_string(o);
        memset(s, 0, (size_t)json_object_get_string_len(o));
        break;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(o); i++)
            wipe_strings(json_object_array_get_idx(o, i));
        break;
    case json_type_object: {
        json_object_object_foreach(o, k, v)
        {
            (void)k;
            wipe_strings(v);
        }
        break;
    }
    default:
        break;
    }
}

void ig_json_wipe_put(json_object *obj)
{
    if (!obj)
        return;
    /* Serialising reuses the object's print buffer, which may still hold an
     * earlier serialisation of the secret: overwrite it, then zero it. */
    size_t len = 0;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
    if (s)
        memset((char *)s, 0, len);
    wipe_strings(obj);
    json_object_put(obj);
}

size_t ig_json_len(json_object *arr)
{
    return json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
}

json_object *ig_json_parse_len(const char *text, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *obj = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
    json_tokener_free(tok);
    return obj;
}

int ig_json_reply_into(void *payload, const char *json, size_t len)
{
    json_object **out = payload;
    json_object_put(*out);
    *out = ig_json_parse_len(json, len);
    return *out ? 0 : INTEG_EINVAL;
}
