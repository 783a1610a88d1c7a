/* json-c helpers: parsing with located errors, field access, serialising. */
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_usable_size */
#endif
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "util.h"

/* json-c collects each string token in the tokener's print buffer and
 * frees it as is: zero it first, since API input and decrypted credentials
 * carry secrets (json-c 0.16's tokener and printbuf structs are public). */
static void tokener_free_wiped(json_tokener *tok)
{
    if (!tok)
        return;
    if (tok->pb && tok->pb->buf && tok->pb->size > 0)
        sodium_memzero(tok->pb->buf, (size_t)tok->pb->size);
    json_tokener_free(tok);
}

json_object *ig_json_parse_secret(const char *text, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *obj = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
    if (obj && (json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len)) {
        json_object_put(obj);
        obj = NULL;
    }
    tokener_free_wiped(tok);
    return obj;
}

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
        tokener_free_wiped(tok);
        return ig_err(INTEG_EINVAL, "%s: malformed JSON: unexpected end of input", what);
    }
    if (jerr != json_tokener_success) {
        size_t off = json_tokener_get_parse_end(tok);
        tokener_free_wiped(tok);
        return ig_err(INTEG_EINVAL, "%s: malformed JSON at offset %zu: %s", what, off,
                      json_tokener_error_desc(jerr));
    }
    size_t end = json_tokener_get_parse_end(tok);
    tokener_free_wiped(tok);
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
    /* Written straight into the buffer handed out: no second copy, and no
     * text cached in the objects (ig_json_write prints what json-c would). */
    ig_jbuf b = {NULL, 0, 0, 0, 0};
    if (ig_json_write(obj, &b) || !b.p) {
        ig_jbuf_free(&b);
        return ig_err(INTEG_ENOMEM, "out of memory serialising JSON");
    }
    *out = b.p;
    return INTEG_OK;
}

int ig_json_to_secret_string(json_object *obj, char **out)
{
    ig_jbuf b = {malloc(256), 0, 256, IG_JBUF_SECRET, 0};
    if (!b.p || ig_json_write(obj, &b)) {
        ig_jbuf_free(&b);
        return ig_err(INTEG_ENOMEM, "out of memory serialising JSON");
    }
    *out = b.p;
    return INTEG_OK;
}

int ig_json_public_list(json_object *rows, json_object *(*pub)(json_object *rec), char **out)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < ig_json_len(rows); i++)
        json_object_array_add(arr, pub(json_object_array_get_idx(rows, i)));
    int rc = ig_json_to_string(arr, out);
    json_object_put(arr);
    return rc;
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

int ig_json_filter_query(json_object *filter, const char *const *fields, const char *const *statuses,
                         const char *status_rule, json_object *q)
{
    int64_t limit, offset;
    int rc = ig_json_limit_offset(filter, "filter_json", &limit, &offset);
    ig_json_foreach(filter, k, v)
    {
        if (rc)
            break;
        if (!strcmp(k, "limit") || !strcmp(k, "offset"))
            continue;
        if (!ig_in_list(k, fields) || !json_object_is_type(v, json_type_string)) {
            char use[256] = "";
            for (const char *const *f = fields; *f; f++)
                snprintf(use + strlen(use), sizeof use - strlen(use), "%s%s", f == fields ? "" : ", ", *f);
            rc = ig_err(INTEG_EINVAL, "filter_json.%s: unknown filter or not a string (use %s)", k, use);
        } else if (statuses && !strcmp(k, "status") && !ig_in_list(json_object_get_string(v), statuses)) {
            rc = ig_err(INTEG_EINVAL, "filter_json.status: %s", status_rule);
        } else {
            json_object_object_add(q, k, json_object_get(v));
        }
    }
    if (rc == INTEG_OK) {
        json_object_object_add(q, "limit", json_object_new_int64(limit));
        json_object_object_add(q, "offset", json_object_new_int64(offset));
    }
    return rc;
}

int ig_json_check_keys(json_object *obj, const char *const *known, const char *what, const char *noun)
{
    ig_json_foreach(obj, k, v)
    {
        (void)v;
        if (!ig_in_list(k, known))
            return ig_err(INTEG_EINVAL, "%s.%s: unknown %s", what, k, noun);
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

void ig_jbuf_free(ig_jbuf *b)
{
    if (b->heap == IG_JBUF_SECRET && b->p)
        sodium_memzero(b->p, b->cap);
    if (b->heap)
        free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    b->heap = 0;
}

/* Room for `more` bytes plus the NUL. */
static int jb_reserve(ig_jbuf *b, size_t more)
{
    if (b->n + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more + 1)
        cap *= 2;
    if (b->heap == IG_JBUF_SECRET) { /* no realloc: it would free the old text as is */
        char *p = malloc(cap);
        if (!p)
            return -1;
        memcpy(p, b->p, b->n);
        sodium_memzero(b->p, b->cap);
        free(b->p);
        b->p = p;
        b->cap = cap;
        return 0;
    }
    char *p = b->heap ? realloc(b->p, cap) : malloc(cap);
    if (!p)
        return -1;
    if (!b->heap && b->n)
        memcpy(p, b->p, b->n);
    b->p = p;
    b->cap = cap;
    b->heap = 1;
    return 0;
}

static int jb_put(ig_jbuf *b, const char *s, size_t n)
{
    if (jb_reserve(b, n))
        return -1;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

/* json-c's escaping (json_escape_str); the slash only when asked. */
static int jb_string(ig_jbuf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (jb_reserve(b, len + 2))
        return -1;
    b->p[b->n++] = '"';
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && (c != '/' || !b->escape_slash))
            continue;
        if (jb_put(b, s + start, i - start))
            return -1;
        char esc[6] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '\b': esc[1] = 'b'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\f': esc[1] = 'f'; break;
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '/': esc[1] = '/'; break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (jb_put(b, esc, n))
            return -1;
        start = i + 1;
    }
    if (jb_put(b, s + start, len - start) || jb_put(b, "\"", 1))
        return -1;
    return 0;
}

/* Decimal digits of an unsigned value, right-aligned in buf[20]; returns the start. */
static char *jb_digits(uint64_t v, char buf[20])
{
    char *p = buf + 20;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

static int jb_value(json_object *o, ig_jbuf *b)
{
    if (!o)
        return jb_put(b, "null", 4);
    /* Raw values (ig_json_raw) and parsed doubles keep their text as
     * userdata, which json-c prints unchanged: copy it, without json-c's
     * print buffer in the object. A double built without text is
     * formatted by json-c. */
    const char *text = json_object_get_userdata(o);
    if (text)
        return jb_put(b, text, strlen(text));
    if (json_object_is_type(o, json_type_double)) {
        size_t n = 0;
        int flags = JSON_C_TO_STRING_PLAIN | (b->escape_slash ? 0 : JSON_C_TO_STRING_NOSLASHESCAPE);
        const char *t = json_object_to_json_string_length(o, flags, &n);
        return t ? jb_put(b, t, n) : -1;
    }
    switch (json_object_get_type(o)) {
    case json_type_string:
        return jb_string(b, json_object_get_string(o), (size_t)json_object_get_string_len(o));
    case json_type_int: {
        char num[21];
        int64_t v = json_object_get_int64(o);
        /* json-c keeps integers above INT64_MAX as uint64 and clamps get_int64 */
        uint64_t u = v == INT64_MAX ? json_object_get_uint64(o)
                   : v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        char *d = jb_digits(u, num + 1);
        if (v < 0)
            *--d = '-';
        return jb_put(b, d, (size_t)(num + 21 - d));
    }
    case json_type_boolean:
        return json_object_get_boolean(o) ? jb_put(b, "true", 4) : jb_put(b, "false", 5);
    case json_type_array: {
        size_t n = json_object_array_length(o);
        if (jb_put(b, "[", 1))
            return -1;
        for (size_t i = 0; i < n; i++)
            if ((i && jb_put(b, ",", 1)) || jb_value(json_object_array_get_idx(o, i), b))
                return -1;
        return jb_put(b, "]", 1);
    }
    case json_type_object: {
        int first = 1;
        if (jb_put(b, "{", 1))
            return -1;
        json_object_object_foreach(o, k, v) {
            if ((!first && jb_put(b, ",", 1)) || jb_string(b, k, strlen(k)) || jb_put(b, ":", 1) ||
                jb_value(v, b))
                return -1;
            first = 0;
        }
        return jb_put(b, "}", 1);
    }
    default:
        return jb_put(b, "null", 4);
    }
}

int ig_jbuf_put(ig_jbuf *b, const char *s, size_t n)
{
    return jb_put(b, s, n);
}

int ig_json_write_string(ig_jbuf *b, const char *s, size_t len)
{
    return jb_string(b, s, len);
}

int ig_json_write(json_object *obj, ig_jbuf *b)
{
    return jb_value(obj, b);
}

json_object *ig_json_raw(json_object *obj)
{
    ig_jbuf b = {NULL, 0, 0, 0, 0};
    if (ig_json_write(obj, &b) || !b.p) {
        ig_jbuf_free(&b);
        return NULL;
    }
    char *copy = b.p; /* heap: owned by the raw object from here */
    json_object *raw = json_object_new_object();
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

/* Every json_object has its own print buffer, made by the first
 * json_object_to_json_string*() on that object (a child serialised on its
 * own, as ig_oauth_seal_into does with a nested credentials object, has one
 * apart from its parent's) and freed as is with the object. json-c 0.16
 * keeps the buffer private, but serialising an object again reuses it and
 * returns its start: serialise `o` and each descendant in the shortest
 * format (never longer than an earlier serialisation of the same content,
 * so the buffer is not reallocated, which would free the old block
 * unwiped) and zero the whole block, the tail of a longer earlier
 * serialisation included. Containers first, while the strings they print
 * are intact; objects still referenced elsewhere are zeroed too. */
static void wipe_print_buffers(json_object *o)
{
    if (!o)
        return;
    size_t len = 0;
    char *s = (char *)json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE | JSON_C_TO_STRING_NOZERO, &len);
    if (s) {
#ifdef __GLIBC__
        size_t cap = malloc_usable_size(s);
        sodium_memzero(s, cap > len ? cap : len);
#else
        sodium_memzero(s, len);
#endif
    }
    switch (json_object_get_type(o)) {
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(o); i++)
            wipe_print_buffers(json_object_array_get_idx(o, i));
        break;
    case json_type_object: {
        json_object_object_foreach(o, k, v)
        {
            (void)k;
            wipe_print_buffers(v);
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
    wipe_print_buffers(obj);
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
