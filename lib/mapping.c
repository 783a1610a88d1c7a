/* The mapping engine: a spec is compiled once into two plans (pull and
 * push), each a list of copies, a list of rules and a list of required
 * paths, with every path already split into segments. Applying a plan only
 * walks json-c trees: no path text is parsed, no JSON is serialised, and a
 * compiled mapping is never written after compile, so threads can share it.
 * See doc/mapping.md for the user-facing description. */
#include <ctype.h>
#include <math.h> /* isfinite: a macro, no libm */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "mapping.h"
#include "util.h"

/* Deeper paths would build documents json-c's own parser refuses to read
 * back (its default depth is 32). */
#define PATH_MAX_SEGS 32
/* An index is an array length we may have to pad up to on set: bound it so a
 * hostile spec cannot make one record allocate gigabytes. */
#define PATH_MAX_INDEX 100000
#define PATH_MAX_TEXT 1024
#define MAX_RULES 1000
#define MAX_FIELDS 2000
#define LOC_MAX 512

/* Unix ms of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the range
 * that prints as a four-digit RFC 3339 year. */
#define MS_MIN (-62135596800000LL)
#define MS_MAX 253402300799999LL

/* ---------------------------------------------------------------- paths */

typedef struct seg {
    const char *key; /* NUL-terminated, unescaped; NULL for an index */
    uint32_t len;
    uint32_t index;
    uint32_t end;    /* offset in text just past this segment, for messages */
} seg;

struct ig_path {
    const char *text; /* as written; points into this allocation */
    uint32_t n;
    seg s[];          /* followed by the key bytes and the text */
};

static int path_bad(const char *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int path_bad(const char *text, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return ig_err(INTEG_EINVAL, "invalid path '%.300s': %s", text, why);
}

typedef struct pseg {
    size_t kstart, klen; /* raw span in text; klen is the unescaped length */
    int is_index, quoted;
    uint32_t index;
    size_t end;
} pseg;

int ig_path_parse(const char *text, ig_path **out)
{
    if (out)
        *out = NULL;
    if (!text || !out)
        return ig_err(INTEG_EINVAL, "invalid argument: path");
    size_t tlen = strlen(text);
    if (tlen == 0)
        return ig_err(INTEG_EINVAL, "invalid path '': empty");
    if (tlen > PATH_MAX_TEXT)
        return ig_err(INTEG_EINVAL, "invalid path '%.40s...': longer than %d bytes", text,
                      PATH_MAX_TEXT);

    pseg ps[PATH_MAX_SEGS];
    size_t n = 0, keybytes = 0, i = 0;
    int after_dot = 0;
    for (;;) {
        if (n == PATH_MAX_SEGS)
            return path_bad(text, "deeper than %d segments", PATH_MAX_SEGS);
        pseg *s = &ps[n];
        memset(s, 0, sizeof *s);
        if (text[i] == '[' && !after_dot) {
            size_t open = i++;
            if (text[i] == '"' || text[i] == '\'') {
                char q = text[i++];
                size_t start = i, klen = 0;
                while (text[i] && text[i] != q) {
                    if (text[i] == '\\' && text[i + 1])
                        i++;
                    i++;
                    klen++;
                }
                if (!text[i])
                    return path_bad(text, "unclosed quote at offset %zu", start - 1);
                i++;
                if (text[i] != ']')
                    return path_bad(text, "expected ']' at offset %zu", i);
                i++;
                s->kstart = start;
                s->klen = klen;
                s->quoted = 1;
            } else {
                if (!text[i])
                    return path_bad(text, "unclosed '[' at offset %zu", open);
                if (text[i] == '-')
                    return path_bad(text, "negative index at offset %zu", i);
                if (text[i] == ']')
                    return path_bad(text, "empty index at offset %zu", i);
                if (!isdigit((unsigned char)text[i]))
                    return path_bad(text, "an index is a number or a quoted key (offset %zu)", i);
                uint32_t v = 0;
                while (isdigit((unsigned char)text[i])) {
                    v = v * 10 + (uint32_t)(text[i] - '0');
                    if (v > PATH_MAX_INDEX)
                        return path_bad(text, "index above %d at offset %zu", PATH_MAX_INDEX, open);
                    i++;
                }
                if (!text[i])
                    return path_bad(text, "unclosed '[' at offset %zu", open);
                if (text[i] != ']')
                    return path_bad(text, "expected ']' at offset %zu", i);
                i++;
                s->is_index = 1;
                s->index = v;
            }
        } else {
            size_t start = i;
            while (text[i] && text[i] != '.' && text[i] != '[' && text[i] != ']')
                i++;
            if (text[i] == ']')
                return path_bad(text, "unexpected ']' at offset %zu", i);
            if (i == start)
                return path_bad(text, "empty segment at offset %zu", i);
            s->kstart = start;
            s->klen = i - start;
        }
        if (!s->is_index)
            keybytes += s->klen + 1;
        s->end = i;
        n++;
        after_dot = 0;
        if (!text[i])
            break;
        if (text[i] == '.') {
            after_dot = 1;
            i++;
        } else if (text[i] != '[') {
            return path_bad(text, "expected '.' or '[' at offset %zu", i);
        }
    }

    ig_path *p = malloc(sizeof *p + n * sizeof(seg) + keybytes + tlen + 1);
    if (!p)
        return ig_err(INTEG_ENOMEM, "out of memory");
    char *kb = (char *)(p->s + n);
    char *tb = kb + keybytes;
    memcpy(tb, text, tlen + 1);
    p->text = tb;
    p->n = (uint32_t)n;
    for (size_t k = 0; k < n; k++) {
        seg *d = &p->s[k];
        d->end = (uint32_t)ps[k].end;
        d->index = ps[k].index;
        d->len = 0;
        d->key = NULL;
        if (ps[k].is_index)
            continue;
        d->key = kb;
        d->len = (uint32_t)ps[k].klen;
        const char *r = text + ps[k].kstart;
        for (size_t c = 0; c < ps[k].klen; c++) {
            if (ps[k].quoted && *r == '\\')
                r++;
            *kb++ = *r++;
        }
        *kb++ = '\0';
    }
    *out = p;
    return INTEG_OK;
}

void ig_path_free(ig_path *p) { free(p); }

/* Whether the path is present (JSON null counts as present, and is returned
 * as NULL, json-c's representation of null). The walk starts at segment
 * `from` in trail[from] and records in trail[i] the container segment i was
 * looked up in, with *valid the count of usable entries: consecutive paths
 * that share a prefix ("properties.email", "properties.phone") then skip
 * the hash lookups of the shared part. */
static int lookup_trail(const ig_path *p, uint32_t from, json_object **trail, uint32_t *valid,
                        json_object **val)
{
    json_object *cur = trail[from];
    for (uint32_t i = from; i < p->n; i++) {
        const seg *s = &p->s[i];
        trail[i] = cur;
        *valid = i + 1;
        if (s->key) {
            if (!json_object_is_type(cur, json_type_object) ||
                !json_object_object_get_ex(cur, s->key, &cur))
                return 0;
        } else {
            if (!json_object_is_type(cur, json_type_array) ||
                s->index >= json_object_array_length(cur))
                return 0;
            cur = json_object_array_get_idx(cur, s->index);
        }
    }
    *val = cur;
    return 1;
}

static int lookup(const ig_path *p, json_object *root, json_object **val)
{
    json_object *trail[PATH_MAX_SEGS];
    uint32_t valid;
    trail[0] = root;
    return lookup_trail(p, 0, trail, &valid, val);
}

json_object *ig_path_get(const ig_path *p, json_object *root)
{
    json_object *v = NULL;
    if (!p || !lookup(p, root, &v))
        return NULL;
    return v;
}

static const char *type_word(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null: return "null";
    case json_type_boolean: return "a boolean";
    case json_type_double:
    case json_type_int: return "a number";
    case json_type_string: return "a string";
    case json_type_array: return "an array";
    case json_type_object: return "an object";
    }
    return "a value";
}

/* ig_path_set from segment `from` of a trail, as lookup_trail. */
static int set_trail(const ig_path *p, uint32_t from, json_object **trail, json_object *value)
{
    json_object *cur = trail[from];
    for (uint32_t i = from; i < p->n; i++) {
        const seg *s = &p->s[i];
        trail[i] = cur;
        int last = i + 1 == p->n;
        int want_obj = s->key != NULL;
        if (!json_object_is_type(cur, want_obj ? json_type_object : json_type_array)) {
            json_object_put(value);
            if (i == 0)
                return ig_err(INTEG_EMAPPING, "cannot set '%s': the root is %s, not %s", p->text,
                              type_word(cur), want_obj ? "an object" : "an array");
            return ig_err(INTEG_EMAPPING, "cannot set '%s': '%.*s' is %s, not %s", p->text,
                          (int)p->s[i - 1].end, p->text, type_word(cur),
                          want_obj ? "an object" : "an array");
        }
        json_object *next = NULL;
        if (want_obj) {
            if (last) {
                /* Both branches below add a key; when the object is empty the
                 * lookup json-c would do first is pointless. */
                unsigned opts = json_object_object_length(cur) ? 0 : JSON_C_OBJECT_ADD_KEY_IS_NEW;
                if (json_object_object_add_ex(cur, s->key, value, opts) != 0) {
                    json_object_put(value);
                    return ig_err(INTEG_ENOMEM, "out of memory");
                }
                return INTEG_OK;
            }
            json_object_object_get_ex(cur, s->key, &next);
        } else {
            if (last) {
                if (json_object_array_put_idx(cur, s->index, value) != 0) {
                    json_object_put(value);
                    return ig_err(INTEG_ENOMEM, "out of memory");
                }
                return INTEG_OK;
            }
            if (s->index < json_object_array_length(cur))
                next = json_object_array_get_idx(cur, s->index);
        }
        if (!next) {
            /* Absent or null: make the container the next segment needs. */
            next = p->s[i + 1].key ? json_object_new_object() : json_object_new_array();
            int rc = next ? (want_obj ? json_object_object_add(cur, s->key, next)
                                      : json_object_array_put_idx(cur, s->index, next))
                          : -1;
            if (rc != 0) {
                json_object_put(next);
                json_object_put(value);
                return ig_err(INTEG_ENOMEM, "out of memory");
            }
        }
        cur = next;
    }
    json_object_put(value);
    return INTEG_OK; /* unreachable: paths have at least one segment */
}

int ig_path_set(const ig_path *p, json_object *root, json_object *value)
{
    if (!p || !root) {
        json_object_put(value);
        return ig_err(INTEG_EINVAL, "invalid argument: %s", p ? "root" : "path");
    }
    json_object *trail[PATH_MAX_SEGS];
    trail[0] = root;
    return set_trail(p, 0, trail, value);
}

static void path_remove(const ig_path *p, json_object *root)
{
    json_object *cur = root;
    for (uint32_t i = 0; i + 1 < p->n; i++) {
        const seg *s = &p->s[i];
        if (s->key) {
            if (!json_object_is_type(cur, json_type_object) ||
                !json_object_object_get_ex(cur, s->key, &cur))
                return;
        } else {
            if (!json_object_is_type(cur, json_type_array) ||
                s->index >= json_object_array_length(cur))
                return;
            cur = json_object_array_get_idx(cur, s->index);
        }
    }
    const seg *s = &p->s[p->n - 1];
    if (s->key && json_object_is_type(cur, json_type_object))
        json_object_object_del(cur, s->key);
    else if (!s->key && json_object_is_type(cur, json_type_array) &&
             s->index < json_object_array_length(cur))
        json_object_array_put_idx(cur, s->index, NULL); /* keep later indexes stable */
}

static int seg_eq(const seg *a, const seg *b)
{
    if (!a->key || !b->key)
        return !a->key && !b->key && a->index == b->index;
    return a->len == b->len && memcmp(a->key, b->key, a->len) == 0;
}

/* 1 if `a` equals `b` or names one of its ancestors. */
static int path_prefix(const ig_path *a, const ig_path *b)
{
    if (a->n > b->n)
        return 0;
    for (uint32_t i = 0; i < a->n; i++)
        if (!seg_eq(&a->s[i], &b->s[i]))
            return 0;
    return 1;
}

static int path_eq(const ig_path *a, const ig_path *b) { return a->n == b->n && path_prefix(a, b); }

/* Segments two consecutive paths share, capped so the walk of the second
 * still has a segment of its own to start from. */
static uint32_t shared_prefix(const ig_path *prev, const ig_path *cur)
{
    if (!prev)
        return 0;
    uint32_t cap = (prev->n < cur->n ? prev->n : cur->n) - 1, k = 0;
    while (k < cap && seg_eq(&prev->s[k], &cur->s[k]))
        k++;
    return k;
}

/* `base` followed by the segments of `p` from `from` on: rewrites a local
 * path under a copied field into the remote path it came from. The text is
 * re-parsed, so the result is a path like any other. */
static int path_rebase(const ig_path *base, const ig_path *p, uint32_t from, ig_path **out)
{
    const char *rest = from ? p->text + p->s[from - 1].end : p->text;
    size_t bl = strlen(base->text), rl = strlen(rest);
    char *t = malloc(bl + rl + 1);
    if (!t)
        return ig_err(INTEG_ENOMEM, "out of memory");
    memcpy(t, base->text, bl);
    memcpy(t + bl, rest, rl + 1);
    int rc = ig_path_parse(t, out);
    free(t);
    return rc;
}

/* ------------------------------------------------------- small helpers */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    char local[256];
} sbuf;

static void sb_init(sbuf *b)
{
    b->p = b->local;
    b->len = 0;
    b->cap = sizeof b->local;
}

static int sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap * 2;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = b->p == b->local ? malloc(cap) : realloc(b->p, cap);
        if (!np)
            return ig_err(INTEG_ENOMEM, "out of memory");
        if (b->p == b->local)
            memcpy(np, b->local, b->len);
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return INTEG_OK;
}

static void sb_free(sbuf *b)
{
    if (b->p != b->local)
        free(b->p);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void trim_span(const char **s, size_t *n)
{
    const char *a = *s, *e = *s + *n;
    while (a < e && is_space(*a))
        a++;
    while (e > a && is_space(e[-1]))
        e--;
    *s = a;
    *n = (size_t)(e - a);
}

static const char *str_of(json_object *v, size_t *n)
{
    *n = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

/* Shortest decimal text that reads back as `d`; -1 for NaN/Infinity,
 * which JSON cannot carry. */
static int fmt_double(double d, char buf[40])
{
    if (!isfinite(d))
        return -1;
    if (d == 0)
        return snprintf(buf, 40, "0");
    /* Fast path for the common money-like values: the smallest k with
     * n / 10^k == d (n an integer below 2^53; both operands exact, the
     * division correctly rounded like strtod) gives digits that read back
     * as d, without snprintf("%g") and a strtod check. */
    static const double p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    for (int k = 0; k < 9; k++) {
        double x = d * p10[k];
        if (!(x < 9007199254740992.0 && x > -9007199254740992.0))
            break;
        int64_t v = (int64_t)(x >= 0 ? x + 0.5 : x - 0.5);
        if ((double)v / p10[k] != d)
            continue;
        char digits[24];
        uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        int nd = 0;
        do {
            digits[nd++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        while (nd <= k)
            digits[nd++] = '0'; /* 0.05: a zero before the point */
        int o = 0;
        if (v < 0)
            buf[o++] = '-';
        for (int i = nd - 1; i >= 0; i--) {
            buf[o++] = digits[i];
            if (i == k && k > 0)
                buf[o++] = '.';
        }
        buf[o] = '\0';
        return o;
    }
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, 40, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return n;
}

static int fmt_int(json_object *v, char buf[40])
{
    int64_t i = json_object_get_int64(v);
    if (i == INT64_MAX) /* json-c clamps; the value may be a larger uint64 */
        return snprintf(buf, 40, "%llu", (unsigned long long)json_object_get_uint64(v));
    return snprintf(buf, 40, "%lld", (long long)i);
}

/* The JSON text of a scalar without going through json-c's serialiser
 * (which caches into the object, i.e. writes to the caller's record).
 * -1 for objects, arrays and non-finite numbers. */
static int scalar_text(json_object *v, char buf[40], const char **s, size_t *n)
{
    int k;
    switch (json_object_get_type(v)) {
    case json_type_string: *s = str_of(v, n); return 0;
    case json_type_null: *s = "null"; *n = 4; return 0;
    case json_type_boolean:
        *s = json_object_get_boolean(v) ? "true" : "false";
        *n = strlen(*s);
        return 0;
    case json_type_int: k = fmt_int(v, buf); break;
    case json_type_double: k = fmt_double(json_object_get_double(v), buf); break;
    default: return -1;
    }
    if (k < 0)
        return -1;
    *s = buf;
    *n = (size_t)k;
    return 0;
}

/* A short, one-line rendering of a value for error messages. */
static const char *describe(json_object *v, char *buf, size_t cap)
{
    if (!json_object_is_type(v, json_type_string)) {
        char tmp[40];
        const char *s;
        size_t n;
        if (json_object_is_type(v, json_type_null) || scalar_text(v, tmp, &s, &n) != 0)
            return type_word(v);
        snprintf(buf, cap, "%.*s", (int)n, s);
        return buf;
    }
    size_t n, o = 0;
    const char *s = str_of(v, &n);
    buf[o++] = '"';
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        if (i == 48) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, cap - o, "\\u%04x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* A copy owned by the output: the input record must never be shared into
 * it (json-c refcounts are not atomic, and callers may free `in` first). */
static int dup_value(json_object *v, json_object **out)
{
    *out = NULL;
    if (!v)
        return INTEG_OK;
    switch (json_object_get_type(v)) {
    case json_type_string: {
        size_t n;
        const char *s = str_of(v, &n);
        *out = json_object_new_string_len(s, (int)n);
        break;
    }
    case json_type_boolean: *out = json_object_new_boolean(json_object_get_boolean(v)); break;
    default:
        if (json_object_deep_copy(v, out, NULL) != 0)
            *out = NULL;
        break;
    }
    return *out ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
}

/* Parse trimmed decimal text. Integers that fit int64 stay integers.
 * *canon says whether the text is already the shortest form of the double. */
static int parse_number(const char *s, size_t n, int *is_int, int64_t *iv, double *dv, int *canon)
{
    size_t i = 0, nd = 0, nf = 0, sig = 0;
    int lead_zero = 0, trailing_zero = 0, has_exp = 0, plus = 0;
    if (n == 0 || n > 120)
        return -1;
    if (s[i] == '+' || s[i] == '-') {
        plus = s[i] == '+';
        i++;
    }
    size_t int_start = i;
    while (i < n && isdigit((unsigned char)s[i]))
        i++, nd++;
    if (nd > 1 && s[int_start] == '0')
        lead_zero = 1;
    sig = nd;
    int has_dot = 0;
    if (i < n && s[i] == '.') {
        has_dot = 1;
        i++;
        while (i < n && isdigit((unsigned char)s[i]))
            i++, nf++;
        trailing_zero = nf == 0 || s[i - 1] == '0';
    }
    if (nd + nf == 0)
        return -1;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        has_exp = 1;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t ne = 0;
        while (i < n && isdigit((unsigned char)s[i]))
            i++, ne++;
        if (ne == 0)
            return -1;
    }
    if (i != n)
        return -1;
    if (!has_dot && !has_exp) {
        uint64_t u = 0;
        int over = 0;
        for (size_t k = int_start; k < n; k++) {
            unsigned d = (unsigned)(s[k] - '0');
            if (u > (UINT64_MAX - d) / 10) {
                over = 1;
                break;
            }
            u = u * 10 + d;
        }
        int neg = s[0] == '-';
        if (!over && (neg ? u <= (uint64_t)INT64_MAX + 1 : u <= (uint64_t)INT64_MAX)) {
            *is_int = 1;
            *iv = neg ? (int64_t)(0 - u) : (int64_t)u;
            return 0;
        }
    }
    char buf[128];
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    double d = strtod(buf, &end);
    if (end != buf + n || !isfinite(d))
        return -1;
    *is_int = 0;
    *dv = d;
    if (nf > 0 && sig > 0)
        sig += nf;
    *canon = has_dot && !has_exp && !plus && !lead_zero && !trailing_zero && nd > 0 &&
             sig <= 15 && d != 0;
    return 0;
}

static int new_number_from_text(const char *s, size_t n, json_object **res)
{
    int is_int = 0, canon = 0;
    int64_t iv = 0;
    double dv = 0;
    if (parse_number(s, n, &is_int, &iv, &dv, &canon) != 0)
        return -1;
    if (is_int) {
        *res = json_object_new_int64(iv);
    } else {
        char buf[128];
        if (canon) {
            memcpy(buf, s, n);
            buf[n] = '\0';
        } else {
            fmt_double(dv, buf);
        }
        /* Keep the shortest text as the serialisation: json-c's default
         * %.17g would print 19.99 as 19.989999999999998. */
        *res = json_object_new_double_s(dv, buf);
    }
    return *res ? 0 : 1;
}

/* ---------------------------------------------------------------- dates */

enum { DF_RFC3339, DF_EPOCH_S, DF_EPOCH_MS, DF_DATE };
static const char *const k_date_formats[] = {"rfc3339", "epoch_s", "epoch_ms", "yyyy-mm-dd", NULL};

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)((int64_t)yoe + era * 400 + (*m <= 2));
}

static void put_digits(char *o, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        o[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Formats here rather than with ig_rfc3339: glibc's gmtime_r takes a
 * process-wide lock, which a million-record pull on many threads feels. */
static size_t fmt_time(int64_t ms, int fmt, int with_ms, char out[32])
{
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t rem = ms - days * 86400000;
    int y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    put_digits(out, (unsigned)y, 4);
    out[4] = '-';
    put_digits(out + 5, mo, 2);
    out[7] = '-';
    put_digits(out + 8, d, 2);
    if (fmt == DF_DATE)
        return 10;
    unsigned secs = (unsigned)(rem / 1000);
    out[10] = 'T';
    put_digits(out + 11, secs / 3600, 2);
    out[13] = ':';
    put_digits(out + 14, secs / 60 % 60, 2);
    out[16] = ':';
    put_digits(out + 17, secs % 60, 2);
    size_t n = 19;
    if (with_ms) {
        out[n++] = '.';
        put_digits(out + n, (unsigned)(rem % 1000), 3);
        n += 3;
    }
    out[n++] = 'Z';
    out[n] = '\0';
    return n;
}

/* ---------------------------------------------------------------- rules */

enum {
    OP_TRIM,
    OP_LOWER,
    OP_UPPER,
    OP_TO_NUMBER,
    OP_TO_STRING,
    OP_TO_BOOL,
    OP_DEFAULT,
    OP_DATE,
    OP_CONCAT,
    OP_SPLIT,
    OP_VALUE_MAP,
    OP_TEMPLATE,
    OP_COALESCE,
    OP_REMOVE /* push only: drops a derived field nested in a pushed one */
};

static const char *const k_ops[] = {"trim",    "lowercase", "uppercase", "to_number", "to_string",
                                    "to_bool", "default",   "date",      "concat",    "split",
                                    "value_map", "template", "coalesce", NULL};

/* Parameters each op accepts besides "op", "target", "notes", "description";
 * a leading '!' marks a required one. */
static const char *const k_params[][4] = {
    [OP_TRIM] = {"source"},
    [OP_LOWER] = {"source"},
    [OP_UPPER] = {"source"},
    [OP_TO_NUMBER] = {"source"},
    [OP_TO_STRING] = {"source"},
    [OP_TO_BOOL] = {"source"},
    [OP_DEFAULT] = {"!value"},
    [OP_DATE] = {"!from", "!to", "source"},
    [OP_CONCAT] = {"!sources", "separator"},
    [OP_SPLIT] = {"!separator", "source", "index"},
    [OP_VALUE_MAP] = {"!map", "default", "source"},
    [OP_TEMPLATE] = {"!template"},
    [OP_COALESCE] = {"!sources"},
};

typedef struct vm_ent {
    char *key;
    size_t klen;
    json_object *val; /* owned; NULL is JSON null */
} vm_ent;

typedef struct tpart {
    const char *lit; /* into rule.lits */
    size_t len;
    ig_path *path;   /* NULL for a literal */
} tpart;

typedef struct rule {
    int op;
    ig_path *target;
    ig_path *source;
    ig_path **sources;
    size_t nsources;
    char *sep;
    size_t seplen;
    int64_t index;
    int has_index;
    int from, to;
    json_object *value; /* default's value, value_map's default */
    int has_value;
    vm_ent *map;
    size_t nmap;
    tpart *parts;
    size_t nparts;
    char *lits;
    uint32_t *shared; /* per source or template part: prefix shared with the previous input */
    int slot;         /* target's output slot, or -1 */
} rule;

typedef struct copy {
    ig_path *src, *dst;
    uint32_t src_shared, dst_shared; /* with the previous copy's paths */
    int slot;
} copy;

typedef struct req {
    ig_path *path;
    const char *from; /* text of the copy's source path, or NULL */
    int slot;
} req;

/* Output keys that every path of the plan addresses only as a whole
 * ("email", never "email.x") live in slots during apply: rules and required
 * checks then read and replace them without hashing, and each is inserted
 * into the output object once, at the end. */
typedef struct plan {
    copy *copies;
    size_t ncopies;
    rule *rules;
    size_t nrules;
    req *reqs;
    size_t nreqs;
    const char **slot_keys; /* borrowed from the paths above */
    size_t nslots;
} plan;

struct ig_mapping {
    plan pull, push;
};

static void rule_clear(rule *r)
{
    ig_path_free(r->target);
    ig_path_free(r->source);
    for (size_t i = 0; i < r->nsources; i++)
        ig_path_free(r->sources[i]);
    free(r->sources);
    free(r->sep);
    json_object_put(r->value);
    for (size_t i = 0; i < r->nmap; i++) {
        free(r->map[i].key);
        json_object_put(r->map[i].val);
    }
    free(r->map);
    for (size_t i = 0; i < r->nparts; i++)
        ig_path_free(r->parts[i].path);
    free(r->parts);
    free(r->lits);
    free(r->shared);
    memset(r, 0, sizeof *r);
}

static void plan_clear(plan *pl)
{
    for (size_t i = 0; i < pl->ncopies; i++) {
        ig_path_free(pl->copies[i].src);
        ig_path_free(pl->copies[i].dst);
    }
    free(pl->copies);
    for (size_t i = 0; i < pl->nrules; i++)
        rule_clear(&pl->rules[i]);
    free(pl->rules);
    for (size_t i = 0; i < pl->nreqs; i++)
        ig_path_free(pl->reqs[i].path);
    free(pl->reqs);
    free(pl->slot_keys);
    memset(pl, 0, sizeof *pl);
}

void ig_mapping_free(ig_mapping *m)
{
    if (!m)
        return;
    plan_clear(&m->pull);
    plan_clear(&m->push);
    free(m);
}

static int vm_cmp(const void *a, const void *b)
{
    const vm_ent *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

static const vm_ent *vm_find(const rule *r, const char *s, size_t n)
{
    vm_ent probe = {(char *)s, n, NULL};
    return bsearch(&probe, r->map, r->nmap, sizeof *r->map, vm_cmp);
}

/* --------------------------------------------------------------- compile */

/* vsnprintf, so that -Wformat-truncation does not second-guess locations
 * that are allowed to be cut short. */
static void loc_fmt(char *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void loc_fmt(char *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, LOC_MAX, fmt, ap);
    va_end(ap);
}

static int is_ident(const char *k)
{
    if (!*k)
        return 0;
    for (; *k; k++)
        if (!(isalnum((unsigned char)*k) || *k == '_'))
            return 0;
    return 1;
}

/* A JSON location like `mapping.field_map.email` or, for keys that are
 * themselves paths, `mapping.field_map["properties.email"]`. */
static void loc_key(char *dst, const char *base, const char *key)
{
    if (is_ident(key))
        loc_fmt(dst, "%s.%s", base, key);
    else
        loc_fmt(dst, "%s[\"%.200s\"]", base, key);
}

static int compile_path(const char *text, const char *loc, ig_path **out)
{
    int rc = ig_path_parse(text, out);
    if (rc)
        return ig_err_prefix(rc, loc);
    if (!(*out)->s[0].key) {
        ig_path_free(*out);
        *out = NULL;
        return ig_err(INTEG_EINVAL, "%s: path '%s' must start with a field name, not an index",
                      loc, text);
    }
    return INTEG_OK;
}

static int compile_path_field(json_object *o, const char *key, const char *loc, ig_path **out)
{
    char l[LOC_MAX];
    loc_key(l, loc, key);
    json_object *v = NULL;
    json_object_object_get_ex(o, key, &v);
    if (!json_object_is_type(v, json_type_string))
        return ig_err(INTEG_EINVAL, "%s: must be a path (a string)", l);
    return compile_path(json_object_get_string(v), l, out);
}

static int compile_sources(json_object *arr, const char *loc, rule *r)
{
    if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) == 0)
        return ig_err(INTEG_EINVAL, "%s: must be a non-empty array of paths", loc);
    size_t n = json_object_array_length(arr);
    if (n > 1000)
        return ig_err(INTEG_EINVAL, "%s: more than 1000 sources", loc);
    r->sources = calloc(n, sizeof *r->sources);
    if (!r->sources)
        return ig_err(INTEG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char l[LOC_MAX];
        loc_fmt(l, "%s[%zu]", loc, i);
        json_object *e = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(e, json_type_string))
            return ig_err(INTEG_EINVAL, "%s: must be a path (a string)", l);
        int rc = compile_path(json_object_get_string(e), l, &r->sources[i]);
        r->nsources = i + 1;
        if (rc)
            return rc;
    }
    return INTEG_OK;
}

static int compile_template(const char *t, const char *loc, rule *r)
{
    size_t tl = strlen(t);
    r->lits = malloc(tl + 1);
    /* Parts alternate at worst literal/placeholder: tl + 1 bounds them. */
    r->parts = calloc(tl + 1, sizeof *r->parts);
    if (!r->lits || !r->parts)
        return ig_err(INTEG_ENOMEM, "out of memory");
    char *lo = r->lits;
    const char *lit_start = lo;
    size_t i = 0;
    while (i <= tl) {
        char c = t[i];
        int flush = c == '\0' || (c == '{' && t[i + 1] != '{');
        if (flush) {
            if (lo > lit_start) {
                r->parts[r->nparts].lit = lit_start;
                r->parts[r->nparts].len = (size_t)(lo - lit_start);
                r->nparts++;
            }
            if (c == '\0')
                break;
            const char *close = strchr(t + i + 1, '}');
            if (!close)
                return ig_err(INTEG_EINVAL, "%s: unclosed '{' at offset %zu", loc, i);
            size_t plen = (size_t)(close - (t + i + 1));
            if (plen == 0)
                return ig_err(INTEG_EINVAL, "%s: empty placeholder at offset %zu", loc, i);
            if (memchr(t + i + 1, '{', plen))
                return ig_err(INTEG_EINVAL, "%s: '{' inside a placeholder at offset %zu", loc, i);
            char pt[PATH_MAX_TEXT + 1];
            if (plen > PATH_MAX_TEXT)
                return ig_err(INTEG_EINVAL, "%s: placeholder at offset %zu is too long", loc, i);
            memcpy(pt, t + i + 1, plen);
            pt[plen] = '\0';
            int rc = compile_path(pt, loc, &r->parts[r->nparts].path);
            if (rc)
                return rc;
            r->nparts++;
            i += plen + 2;
            lit_start = lo;
            continue;
        }
        if (c == '{' || c == '}') {
            if (t[i + 1] != c)
                return ig_err(INTEG_EINVAL,
                              "%s: unmatched '}' at offset %zu (write '}}' for a brace)", loc, i);
            *lo++ = c;
            i += 2;
            continue;
        }
        *lo++ = c;
        i++;
    }
    return INTEG_OK;
}

static int compile_value_map(json_object *map, const char *loc, rule *r)
{
    if (!json_object_is_type(map, json_type_object) || json_object_object_length(map) == 0)
        return ig_err(INTEG_EINVAL, "%s: must be a non-empty object", loc);
    size_t n = (size_t)json_object_object_length(map);
    r->map = calloc(n, sizeof *r->map);
    if (!r->map)
        return ig_err(INTEG_ENOMEM, "out of memory");
    struct json_object_iterator it = json_object_iter_begin(map), end = json_object_iter_end(map);
    while (!json_object_iter_equal(&it, &end)) {
        vm_ent *e = &r->map[r->nmap];
        e->key = ig_strdup(json_object_iter_peek_name(&it));
        if (!e->key)
            return ig_err(INTEG_ENOMEM, "out of memory");
        e->klen = strlen(e->key);
        r->nmap++;
        if (dup_value(json_object_iter_peek_value(&it), &e->val))
            return INTEG_ENOMEM;
        json_object_iter_next(&it);
    }
    qsort(r->map, r->nmap, sizeof *r->map, vm_cmp);
    return INTEG_OK;
}

static int find_word(const char *const *list, const char *w)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], w) == 0)
            return i;
    return -1;
}

static int compile_rule_body(json_object *o, const char *loc, rule *r)
{
    char l[LOC_MAX];
    int rc;
    if (!json_object_is_type(o, json_type_object))
        return ig_err(INTEG_EINVAL, "%s: must be an object", loc);
    json_object *opv = NULL;
    json_object_object_get_ex(o, "op", &opv);
    loc_fmt(l, "%s.op", loc);
    if (!opv)
        return ig_err(INTEG_EINVAL, "%s: required", l);
    if (!json_object_is_type(opv, json_type_string))
        return ig_err(INTEG_EINVAL, "%s: must be a string", l);
    const char *opname = json_object_get_string(opv);
    r->op = find_word(k_ops, opname);
    if (r->op < 0)
        return ig_err(INTEG_EINVAL,
                      "%s: unknown rule '%.64s' (one of trim, lowercase, uppercase, to_number, "
                      "to_string, to_bool, default, date, concat, split, value_map, template, "
                      "coalesce)",
                      l, opname);

    const char *const *params = k_params[r->op];
    struct json_object_iterator it = json_object_iter_begin(o), end = json_object_iter_end(o);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *k = json_object_iter_peek_name(&it);
        int known = !strcmp(k, "op") || !strcmp(k, "target") || !strcmp(k, "notes") ||
                    !strcmp(k, "description");
        for (int i = 0; !known && i < 4 && params[i]; i++)
            known = !strcmp(params[i] + (params[i][0] == '!'), k);
        if (!known) {
            loc_key(l, loc, k);
            return ig_err(INTEG_EINVAL, "%s: not a parameter of '%s'", l, opname);
        }
    }
    for (int i = 0; i < 4 && params[i]; i++) {
        if (params[i][0] == '!' && !json_object_object_get_ex(o, params[i] + 1, NULL)) {
            loc_key(l, loc, params[i] + 1);
            return ig_err(INTEG_EINVAL, "%s: required for '%s'", l, opname);
        }
    }
    if (!json_object_object_get_ex(o, "target", NULL)) {
        loc_fmt(l, "%s.target", loc);
        return ig_err(INTEG_EINVAL, "%s: required", l);
    }
    if ((rc = compile_path_field(o, "target", loc, &r->target)))
        return rc;
    if (json_object_object_get_ex(o, "source", NULL) &&
        (rc = compile_path_field(o, "source", loc, &r->source)))
        return rc;

    json_object *v = NULL;
    switch (r->op) {
    case OP_DEFAULT:
        json_object_object_get_ex(o, "value", &v);
        return dup_value(v, &r->value);
    case OP_DATE:
        for (int k = 0; k < 2; k++) {
            const char *name = k ? "to" : "from";
            json_object_object_get_ex(o, name, &v);
            loc_fmt(l, "%s.%s", loc, name);
            int f = json_object_is_type(v, json_type_string)
                        ? find_word(k_date_formats, json_object_get_string(v))
                        : -1;
            if (f < 0)
                return ig_err(INTEG_EINVAL,
                              "%s: unknown date format %s%.40s%s (one of rfc3339, epoch_s, "
                              "epoch_ms, yyyy-mm-dd)",
                              l, v ? "'" : "", v ? json_object_get_string(v) : "null",
                              v ? "'" : "");
            if (k)
                r->to = f;
            else
                r->from = f;
        }
        return INTEG_OK;
    case OP_CONCAT:
    case OP_COALESCE:
        json_object_object_get_ex(o, "sources", &v);
        loc_fmt(l, "%s.sources", loc);
        if ((rc = compile_sources(v, l, r)))
            return rc;
        break;
    case OP_SPLIT:
        json_object_object_get_ex(o, "index", &v);
        if (json_object_object_get_ex(o, "index", NULL)) {
            loc_fmt(l, "%s.index", loc);
            if (!json_object_is_type(v, json_type_int))
                return ig_err(INTEG_EINVAL,
                              "%s: must be an integer (negative counts from the end)", l);
            r->index = json_object_get_int64(v);
            if (r->index > PATH_MAX_INDEX || r->index < -PATH_MAX_INDEX)
                return ig_err(INTEG_EINVAL, "%s: must be within -%d..%d", l, PATH_MAX_INDEX,
                              PATH_MAX_INDEX);
            r->has_index = 1;
        }
        break;
    case OP_VALUE_MAP:
        json_object_object_get_ex(o, "map", &v);
        loc_fmt(l, "%s.map", loc);
        if ((rc = compile_value_map(v, l, r)))
            return rc;
        if (json_object_object_get_ex(o, "default", &v)) {
            r->has_value = 1;
            return dup_value(v, &r->value);
        }
        return INTEG_OK;
    case OP_TEMPLATE:
        json_object_object_get_ex(o, "template", &v);
        loc_fmt(l, "%s.template", loc);
        if (!json_object_is_type(v, json_type_string))
            return ig_err(INTEG_EINVAL, "%s: must be a string", l);
        return compile_template(json_object_get_string(v), l, r);
    default: return INTEG_OK;
    }
    /* concat and split: the separator */
    if (json_object_object_get_ex(o, "separator", &v)) {
        loc_fmt(l, "%s.separator", loc);
        if (!json_object_is_type(v, json_type_string) ||
            (r->op == OP_SPLIT && json_object_get_string_len(v) == 0))
            return ig_err(INTEG_EINVAL, "%s: must be a %sstring", l,
                          r->op == OP_SPLIT ? "non-empty " : "");
        size_t n;
        const char *s = str_of(v, &n);
        r->sep = malloc(n + 1);
        if (!r->sep)
            return ig_err(INTEG_ENOMEM, "out of memory");
        memcpy(r->sep, s, n + 1);
        r->seplen = n;
    }
    return INTEG_OK;
}

static int compile_rule(json_object *o, const char *loc, rule *r)
{
    int rc = compile_rule_body(o, loc, r);
    size_t n = r->nsources ? r->nsources : r->nparts;
    if (rc || !n)
        return rc;
    r->shared = calloc(n, sizeof *r->shared);
    if (!r->shared)
        return ig_err(INTEG_ENOMEM, "out of memory");
    const ig_path *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        const ig_path *p = r->nsources ? r->sources[i] : r->parts[i].path;
        if (p) {
            r->shared[i] = shared_prefix(prev, p);
            prev = p;
        }
    }
    return INTEG_OK;
}

static int same_key(const ig_path *a, const ig_path *b)
{
    return a->s[0].len == b->s[0].len && memcmp(a->s[0].key, b->s[0].key, a->s[0].len) == 0;
}

/* Prefix sharing between consecutive copies, and output slots. */
static int plan_finish(plan *pl)
{
    for (size_t i = 0; i < pl->ncopies; i++) {
        copy *c = &pl->copies[i];
        c->src_shared = i ? shared_prefix(pl->copies[i - 1].src, c->src) : 0;
        c->dst_shared = i ? shared_prefix(pl->copies[i - 1].dst, c->dst) : 0;
    }
    size_t n = pl->ncopies + pl->nrules + pl->nreqs;
    const ig_path **paths = calloc(n + 1, sizeof *paths);
    int **slots = calloc(n + 1, sizeof *slots);
    pl->slot_keys = calloc(n + 1, sizeof *pl->slot_keys);
    if (!paths || !slots || !pl->slot_keys) {
        free(paths);
        free(slots);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < pl->ncopies; i++, k++) {
        paths[k] = pl->copies[i].dst;
        slots[k] = &pl->copies[i].slot;
    }
    for (size_t i = 0; i < pl->nrules; i++, k++) {
        paths[k] = pl->rules[i].target;
        slots[k] = &pl->rules[i].slot;
    }
    for (size_t i = 0; i < pl->nreqs; i++, k++) {
        paths[k] = pl->reqs[i].path;
        slots[k] = &pl->reqs[i].slot;
    }
    /* Quadratic, but bounded by MAX_FIELDS + MAX_RULES and run once. */
    for (size_t i = 0; i < n; i++) {
        int slot = -1, ok = paths[i]->n == 1;
        for (size_t j = 0; ok && j < n; j++) {
            if (!same_key(paths[i], paths[j]))
                continue;
            if (paths[j]->n != 1)
                ok = 0;
            else if (j < i)
                slot = *slots[j];
        }
        if (ok && slot < 0) {
            slot = (int)pl->nslots++;
            pl->slot_keys[slot] = paths[i]->s[0].key;
        }
        *slots[i] = ok ? slot : -1;
    }
    free(paths);
    free(slots);
    return INTEG_OK;
}

/* field_map, transform_rules and required of one direction. In both
 * directions a field_map key is the path written and its value the path
 * read. */
static int compile_plan(json_object *o, const char *loc, int need_field_map, plan *pl)
{
    char l[LOC_MAX];
    int rc;
    json_object *fm = NULL, *tr = NULL, *rq = NULL;
    json_object_object_get_ex(o, "field_map", &fm);
    json_object_object_get_ex(o, "transform_rules", &tr);
    json_object_object_get_ex(o, "required", &rq);

    loc_fmt(l, "%s.field_map", loc);
    if (!fm && need_field_map)
        return ig_err(INTEG_EINVAL,
                      "%s: required (an object of \"<local path>\": \"<remote path>\")", l);
    if (fm) {
        if (!json_object_is_type(fm, json_type_object))
            return ig_err(INTEG_EINVAL, "%s: must be an object of path: path", l);
        size_t n = (size_t)json_object_object_length(fm);
        if (n > MAX_FIELDS)
            return ig_err(INTEG_EINVAL, "%s: more than %d fields", l, MAX_FIELDS);
        pl->copies = calloc(n ? n : 1, sizeof *pl->copies);
        if (!pl->copies)
            return ig_err(INTEG_ENOMEM, "out of memory");
        struct json_object_iterator it = json_object_iter_begin(fm), end = json_object_iter_end(fm);
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
            const char *k = json_object_iter_peek_name(&it);
            json_object *v = json_object_iter_peek_value(&it);
            char kl[LOC_MAX];
            loc_key(kl, l, k);
            copy *c = &pl->copies[pl->ncopies++];
            if ((rc = compile_path(k, kl, &c->dst)))
                return rc;
            if (!json_object_is_type(v, json_type_string))
                return ig_err(INTEG_EINVAL, "%s: must be a path (a string)", kl);
            if ((rc = compile_path(json_object_get_string(v), kl, &c->src)))
                return rc;
        }
    }

    if (tr) {
        loc_fmt(l, "%s.transform_rules", loc);
        if (!json_object_is_type(tr, json_type_array))
            return ig_err(INTEG_EINVAL, "%s: must be an array", l);
        size_t n = json_object_array_length(tr);
        if (n > MAX_RULES)
            return ig_err(INTEG_EINVAL, "%s: more than %d rules", l, MAX_RULES);
        pl->rules = calloc(n ? n : 1, sizeof *pl->rules);
        if (!pl->rules)
            return ig_err(INTEG_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            char rl[LOC_MAX];
            loc_fmt(rl, "%s[%zu]", l, i);
            pl->nrules = i + 1;
            if ((rc = compile_rule(json_object_array_get_idx(tr, i), rl, &pl->rules[i])))
                return rc;
        }
    }

    if (rq) {
        loc_fmt(l, "%s.required", loc);
        if (!json_object_is_type(rq, json_type_array))
            return ig_err(INTEG_EINVAL, "%s: must be an array of paths", l);
        size_t n = json_object_array_length(rq);
        if (n > MAX_FIELDS)
            return ig_err(INTEG_EINVAL, "%s: more than %d paths", l, MAX_FIELDS);
        pl->reqs = calloc(n ? n : 1, sizeof *pl->reqs);
        if (!pl->reqs)
            return ig_err(INTEG_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            char el[LOC_MAX];
            loc_fmt(el, "%s[%zu]", l, i);
            json_object *e = json_object_array_get_idx(rq, i);
            if (!json_object_is_type(e, json_type_string))
                return ig_err(INTEG_EINVAL, "%s: must be a path (a string)", el);
            req *q = &pl->reqs[pl->nreqs++];
            if ((rc = compile_path(json_object_get_string(e), el, &q->path)))
                return rc;
            for (size_t c = 0; c < pl->ncopies && !q->from; c++)
                if (path_eq(pl->copies[c].dst, q->path))
                    q->from = pl->copies[c].src->text;
        }
    }
    return plan_finish(pl);
}

/* ------------------------------------------------------------ inversion */

static int push_rule(plan *pl, size_t *cap, rule **out)
{
    if (pl->nrules == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        rule *nr = realloc(pl->rules, nc * sizeof *nr);
        if (!nr)
            return ig_err(INTEG_ENOMEM, "out of memory");
        pl->rules = nr;
        *cap = nc;
    }
    *out = &pl->rules[pl->nrules++];
    memset(*out, 0, sizeof **out);
    return INTEG_OK;
}

/* value_map inverts when every value is a scalar with a distinct JSON text:
 * the inverse maps that text back to the key (a string). Returns 1 and
 * fills `inv` when invertible, 0 when not, <0 on error. */
static int invert_value_map(const rule *r, rule *inv)
{
    inv->map = calloc(r->nmap, sizeof *inv->map);
    if (!inv->map)
        return ig_err(INTEG_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->nmap; i++) {
        char buf[40];
        const char *s;
        size_t n;
        if (scalar_text(r->map[i].val, buf, &s, &n) != 0)
            return 0;
        vm_ent *e = &inv->map[inv->nmap];
        e->key = malloc(n + 1);
        if (!e->key)
            return ig_err(INTEG_ENOMEM, "out of memory");
        memcpy(e->key, s, n);
        e->key[n] = '\0';
        e->klen = n;
        inv->nmap++;
        e->val = json_object_new_string_len(r->map[i].key, (int)r->map[i].klen);
        if (!e->val)
            return ig_err(INTEG_ENOMEM, "out of memory");
    }
    qsort(inv->map, inv->nmap, sizeof *inv->map, vm_cmp);
    for (size_t i = 1; i < inv->nmap; i++)
        if (vm_cmp(&inv->map[i - 1], &inv->map[i]) == 0)
            return 0;
    return 1;
}

/* Builds the push plan from the pull plan: copies local -> remote, then the
 * inverse of every type-changing rule in reverse order, on the remote path
 * its target came from. A field whose local value a rule derives (concat,
 * split, template, coalesce, a rule with "source", a value_map that is not
 * one-to-one) is not pushed: the remote value would be a guess. */
static int invert_plan(const plan *pull, plan *push)
{
    int rc = INTEG_OK;
    size_t nc = pull->ncopies, nr = pull->nrules, rcap = 0;
    char *excluded = calloc(nc + 1, 1);
    int *pushed = calloc(nc + 1, sizeof *pushed);   /* pull copy index -> pushed? */
    rule *inv = calloc(nr + 1, sizeof *inv);        /* inverse candidates */
    signed char *kind = calloc(nr + 1, 1);          /* 0 identity, 1 inverse, -1 derived */
    if (!excluded || !pushed || !inv || !kind) {
        rc = ig_err(INTEG_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nr; i++) {
        const rule *r = &pull->rules[i];
        if (r->source) {
            kind[i] = -1;
            continue;
        }
        switch (r->op) {
        case OP_TRIM:
        case OP_LOWER:
        case OP_UPPER:
        case OP_DEFAULT: kind[i] = 0; break;
        case OP_TO_NUMBER: inv[i].op = OP_TO_STRING; kind[i] = 1; break;
        case OP_TO_STRING: inv[i].op = OP_TO_NUMBER; kind[i] = 1; break;
        case OP_TO_BOOL: inv[i].op = OP_TO_STRING; kind[i] = 1; break;
        case OP_DATE:
            inv[i].op = OP_DATE;
            inv[i].from = r->to;
            inv[i].to = r->from;
            kind[i] = 1;
            break;
        case OP_VALUE_MAP:
            inv[i].op = OP_VALUE_MAP;
            rc = invert_value_map(r, &inv[i]);
            if (rc < 0)
                goto done;
            kind[i] = rc == 1 ? 1 : -1;
            rc = INTEG_OK;
            break;
        default: kind[i] = -1; break;
        }
        if (kind[i] < 0)
            for (size_t c = 0; c < nc; c++)
                if (path_prefix(r->target, pull->copies[c].dst))
                    excluded[c] = 1;
    }

    push->copies = calloc(nc + 1, sizeof *push->copies);
    if (!push->copies) {
        rc = ig_err(INTEG_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t c = 0; c < nc; c++) {
        if (excluded[c])
            continue;
        int dup = 0;
        for (size_t k = 0; k < push->ncopies && !dup; k++)
            dup = path_eq(push->copies[k].dst, pull->copies[c].src);
        if (dup)
            continue; /* two local fields from one remote path: the first wins */
        copy *pc = &push->copies[push->ncopies++];
        if ((rc = ig_path_parse(pull->copies[c].dst->text, &pc->src)) ||
            (rc = ig_path_parse(pull->copies[c].src->text, &pc->dst)))
            goto done;
        pushed[c] = 1;
    }

    for (size_t j = nr; j-- > 0;) {
        const rule *r = &pull->rules[j];
        if (kind[j] == 0)
            continue;
        /* The pushed copy whose local path holds this target (the deepest). */
        size_t best = nc;
        for (size_t c = 0; c < nc; c++)
            if (pushed[c] && path_prefix(pull->copies[c].dst, r->target) &&
                (best == nc || pull->copies[c].dst->n > pull->copies[best].dst->n))
                best = c;
        if (best == nc)
            continue;
        /* A derived target nested inside a pushed field (kind < 0) is
         * dropped from the pushed value; its own field was excluded above. */
        const copy *c = &pull->copies[best];
        rule *pr = NULL;
        if ((rc = push_rule(push, &rcap, &pr)))
            goto done;
        if (kind[j] > 0) {
            *pr = inv[j];
            memset(&inv[j], 0, sizeof inv[j]);
        } else {
            pr->op = OP_REMOVE;
        }
        if ((rc = path_rebase(c->src, r->target, c->dst->n, &pr->target)))
            goto done;
    }

    rc = plan_finish(push);

done:
    for (size_t i = 0; inv && i < nr; i++)
        rule_clear(&inv[i]);
    free(inv);
    free(kind);
    free(excluded);
    free(pushed);
    return rc;
}

int ig_mapping_compile(json_object *spec, const char *what, ig_mapping **out)
{
    if (out)
        *out = NULL;
    IG_CHECK_ARG(out, "out");
    if (!what)
        what = "mapping";
    if (!json_object_is_type(spec, json_type_object))
        return ig_err(INTEG_EINVAL, "%s: must be an object", what);
    char l[LOC_MAX];
    static const char *const names[] = {"source_entity", "target_entity"};
    for (int i = 0; i < 2; i++) {
        json_object *v = NULL;
        if (json_object_object_get_ex(spec, names[i], &v) &&
            !json_object_is_type(v, json_type_string)) {
            loc_fmt(l, "%s.%s", what, names[i]);
            return ig_err(INTEG_EINVAL, "%s: must be a string", l);
        }
    }
    ig_mapping *m = calloc(1, sizeof *m);
    if (!m)
        return ig_err(INTEG_ENOMEM, "out of memory");
    int rc = compile_plan(spec, what, 1, &m->pull);
    json_object *rev = NULL;
    if (!rc && json_object_object_get_ex(spec, "reverse", &rev)) {
        loc_fmt(l, "%s.reverse", what);
        if (!json_object_is_type(rev, json_type_object)) {
            rc = ig_err(INTEG_EINVAL, "%s: must be an object", l);
        } else {
            static const char *const keys[] = {"field_map", "transform_rules", "required", "notes",
                                               "description", NULL};
            struct json_object_iterator it = json_object_iter_begin(rev),
                                        end = json_object_iter_end(rev);
            for (; !rc && !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
                const char *k = json_object_iter_peek_name(&it);
                if (find_word(keys, k) < 0) {
                    char kl[LOC_MAX];
                    loc_key(kl, l, k);
                    rc = ig_err(INTEG_EINVAL,
                                "%s: unknown field (one of field_map, transform_rules, required)",
                                kl);
                }
            }
            if (!rc)
                rc = compile_plan(rev, l, 0, &m->push);
        }
    } else if (!rc) {
        rc = invert_plan(&m->pull, &m->push);
    }
    if (rc) {
        ig_mapping_free(m);
        return rc;
    }
    *out = m;
    return INTEG_OK;
}

/* ----------------------------------------------------------------- apply */

static int fail_convert(const rule *r, json_object *v, const char *to)
{
    char buf[128];
    return ig_err(INTEG_EMAPPING, "field '%s': cannot convert %s to %s", r->target->text,
                  describe(v, buf, sizeof buf), to);
}

static int new_string(const char *s, size_t n, json_object **res)
{
    *res = json_object_new_string_len(s, (int)n);
    return *res ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
}

static int do_case(const rule *r, json_object *v, int mutable_, json_object **res, int *same)
{
    if (!json_object_is_type(v, json_type_string)) {
        *same = 1;
        return INTEG_OK;
    }
    /* ASCII letters only: bytes of UTF-8 multi-byte sequences are >= 0x80
     * and never change, so the text stays valid UTF-8. */
    char lo = r->op == OP_LOWER ? 'A' : 'a', hi = r->op == OP_LOWER ? 'Z' : 'z';
    size_t n;
    const char *s = str_of(v, &n);
    size_t first = 0;
    while (first < n && !(s[first] >= lo && s[first] <= hi))
        first++;
    if (first == n) {
        *same = 1;
        return INTEG_OK;
    }
    char *w;
    if (mutable_) {
        /* The value is our own fresh copy inside the output: change it in
         * place rather than allocate a second string. */
        w = (char *)s;
        *same = 1;
    } else {
        if (new_string(s, n, res))
            return INTEG_ENOMEM;
        w = (char *)json_object_get_string(*res);
    }
    for (size_t i = first; i < n; i++)
        if (w[i] >= lo && w[i] <= hi)
            w[i] ^= 0x20;
    return INTEG_OK;
}

static int do_to_string(const rule *r, json_object *v, json_object **res, int *same)
{
    char buf[40];
    const char *s;
    size_t n;
    switch (json_object_get_type(v)) {
    case json_type_string:
    case json_type_null: *same = 1; return INTEG_OK;
    case json_type_object:
    case json_type_array: return fail_convert(r, v, "a string");
    default:
        if (scalar_text(v, buf, &s, &n) != 0)
            return fail_convert(r, v, "a string");
        return new_string(s, n, res);
    }
}

static int do_to_number(const rule *r, json_object *v, json_object **res, int *same)
{
    switch (json_object_get_type(v)) {
    case json_type_int:
    case json_type_double:
    case json_type_null: *same = 1; return INTEG_OK;
    case json_type_boolean:
        *res = json_object_new_int(json_object_get_boolean(v) ? 1 : 0);
        return *res ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
    case json_type_string: {
        size_t n;
        const char *s = str_of(v, &n);
        trim_span(&s, &n);
        if (n == 0)
            return INTEG_OK; /* "" -> null: an empty form field has no number */
        int k = new_number_from_text(s, n, res);
        if (k < 0)
            return fail_convert(r, v, "a number");
        return k ? ig_err(INTEG_ENOMEM, "out of memory") : INTEG_OK;
    }
    default: return fail_convert(r, v, "a number");
    }
}

static int do_to_bool(const rule *r, json_object *v, json_object **res, int *same)
{
    int b = -1;
    switch (json_object_get_type(v)) {
    case json_type_boolean:
    case json_type_null: *same = 1; return INTEG_OK;
    case json_type_int: {
        int64_t i = json_object_get_int64(v);
        b = i == 0 ? 0 : i == 1 ? 1 : -1;
        break;
    }
    case json_type_double: {
        double d = json_object_get_double(v);
        b = d == 0 ? 0 : d == 1 ? 1 : -1;
        break;
    }
    case json_type_string: {
        static const char *const yes[] = {"true", "1", "yes", NULL};
        static const char *const no[] = {"false", "0", "no", NULL};
        size_t n;
        const char *s = str_of(v, &n);
        trim_span(&s, &n);
        if (n == 0)
            return INTEG_OK; /* "" -> null, as for to_number */
        for (int i = 0; yes[i] && b < 0; i++) {
            if (strlen(yes[i]) == n && strncasecmp(s, yes[i], n) == 0)
                b = 1;
            else if (strlen(no[i]) == n && strncasecmp(s, no[i], n) == 0)
                b = 0;
        }
        break;
    }
    default: break;
    }
    if (b < 0)
        return fail_convert(r, v, "a boolean");
    *res = json_object_new_boolean(b);
    return *res ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
}

static int date_bad(const rule *r, json_object *v, const char *why)
{
    char buf[128];
    return ig_err(INTEG_EMAPPING, "field '%s': cannot read %s as %s%s", r->target->text,
                  describe(v, buf, sizeof buf), k_date_formats[r->from], why);
}

static int epoch_to_ms(int from, int is_int, int64_t iv, double dv, int64_t *ms)
{
    double scale = from == DF_EPOCH_S ? 1000.0 : 1.0;
    if (is_int) {
        if (from == DF_EPOCH_S ? (iv < MS_MIN / 1000 || iv > MS_MAX / 1000)
                               : (iv < MS_MIN || iv > MS_MAX))
            return -1;
        *ms = from == DF_EPOCH_S ? iv * 1000 : iv;
        return 0;
    }
    double x = dv * scale;
    if (!(x >= (double)MS_MIN && x <= (double)MS_MAX))
        return -1;
    /* Rounded by hand: the library does not link libm. */
    *ms = x >= 0 ? (int64_t)(x + 0.5) : -(int64_t)(-x + 0.5);
    return 0;
}

static int do_date(const rule *r, json_object *v, json_object **res, int *same)
{
    if (!v) {
        *same = 1;
        return INTEG_OK;
    }
    int64_t ms = 0;
    int with_ms = 0;
    enum json_type t = json_object_get_type(v);
    if (r->from == DF_EPOCH_S || r->from == DF_EPOCH_MS) {
        int is_int = 0, canon;
        int64_t iv = 0;
        double dv = 0;
        if (t == json_type_int) {
            is_int = 1;
            iv = json_object_get_int64(v);
        } else if (t == json_type_double) {
            dv = json_object_get_double(v);
        } else if (t == json_type_string) {
            size_t n;
            const char *s = str_of(v, &n);
            trim_span(&s, &n);
            if (parse_number(s, n, &is_int, &iv, &dv, &canon) != 0)
                return date_bad(r, v, "");
        } else {
            return date_bad(r, v, "");
        }
        if (epoch_to_ms(r->from, is_int, iv, dv, &ms) != 0)
            return date_bad(r, v, " (out of range)");
        with_ms = ms % 1000 != 0;
    } else {
        if (t != json_type_string)
            return date_bad(r, v, "");
        size_t n;
        const char *s = str_of(v, &n);
        if (strlen(s) != n)
            return date_bad(r, v, "");
        /* "rfc3339" also takes a bare date: CRMs mix both in one field. */
        if (n == 10) {
            char tmp[24];
            memcpy(tmp, s, 10);
            memcpy(tmp + 10, "T00:00:00Z", 11);
            if (ig_parse_rfc3339(tmp, &ms) != 0)
                return date_bad(r, v, "");
        } else if (r->from == DF_DATE || ig_parse_rfc3339(s, &ms) != 0) {
            return date_bad(r, v, "");
        } else {
            with_ms = s[19] == '.';
        }
        if (ms < MS_MIN || ms > MS_MAX)
            return date_bad(r, v, " (out of range)");
    }
    char buf[32];
    switch (r->to) {
    case DF_EPOCH_S:
        *res = json_object_new_int64(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
        break;
    case DF_EPOCH_MS: *res = json_object_new_int64(ms); break;
    default: {
        size_t n = fmt_time(ms, r->to, with_ms, buf);
        *res = json_object_new_string_len(buf, (int)n);
        break;
    }
    }
    return *res ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
}

static int do_split(const rule *r, json_object *v, json_object **res, int *same)
{
    if (!v) {
        *same = 1;
        return INTEG_OK;
    }
    if (!json_object_is_type(v, json_type_string)) {
        char buf[128];
        return ig_err(INTEG_EMAPPING, "field '%s': cannot split %s", r->target->text,
                      describe(v, buf, sizeof buf));
    }
    size_t n;
    const char *s = str_of(v, &n), *e = s + n;
    if (r->has_index) {
        size_t count = 1;
        for (const char *p = s; (p = memmem(p, (size_t)(e - p), r->sep, r->seplen)); p += r->seplen)
            count++;
        int64_t want = r->index < 0 ? (int64_t)count + r->index : r->index;
        if (want < 0 || want >= (int64_t)count)
            return INTEG_OK; /* no such part: null */
        const char *p = s;
        for (int64_t k = 0; k < want; k++)
            p = (const char *)memmem(p, (size_t)(e - p), r->sep, r->seplen) + r->seplen;
        const char *q = memmem(p, (size_t)(e - p), r->sep, r->seplen);
        size_t len = (size_t)((q ? q : e) - p);
        trim_span(&p, &len);
        return new_string(p, len, res);
    }
    json_object *arr = json_object_new_array();
    if (!arr)
        return ig_err(INTEG_ENOMEM, "out of memory");
    const char *p = s;
    for (;;) {
        const char *q = memmem(p, (size_t)(e - p), r->sep, r->seplen);
        const char *a = p;
        size_t len = (size_t)((q ? q : e) - p);
        trim_span(&a, &len);
        json_object *part = json_object_new_string_len(a, (int)len);
        if (!part || json_object_array_add(arr, part) != 0) {
            json_object_put(part);
            json_object_put(arr);
            return ig_err(INTEG_ENOMEM, "out of memory");
        }
        if (!q)
            break;
        p = q + r->seplen;
    }
    *res = arr;
    return INTEG_OK;
}

static int do_value_map(const rule *r, json_object *v, json_object **res, int *same)
{
    char buf[40];
    const char *s;
    size_t n;
    const vm_ent *e = scalar_text(v, buf, &s, &n) == 0 ? vm_find(r, s, n) : NULL;
    if (e)
        return dup_value(e->val, res);
    if (r->has_value)
        return dup_value(r->value, res);
    *same = 1;
    return INTEG_OK;
}

/* One apply call's state: the output tree and its slots (see plan). */
typedef struct actx {
    json_object *in, *out;
    json_object **sv;  /* slot values; NULL is JSON null */
    unsigned char *sp; /* slot present? */
} actx;

static int out_get(const actx *a, const ig_path *p, int slot, json_object **v)
{
    if (slot < 0)
        return lookup(p, a->out, v);
    *v = a->sv[slot];
    return a->sp[slot];
}

static int out_set(actx *a, const ig_path *p, int slot, json_object *v)
{
    if (slot < 0)
        return ig_path_set(p, a->out, v);
    if (a->sp[slot])
        json_object_put(a->sv[slot]);
    a->sv[slot] = v;
    a->sp[slot] = 1;
    return INTEG_OK;
}

/* The text a concat or template input contributes: 1 when it contributes
 * nothing (absent, null or ""), 0 with s/n set, <0 on error. */
static int input_text(const rule *r, json_object *v, int present, const ig_path *p, char buf[40],
                      const char **s, size_t *n)
{
    if (!present || !v)
        return 1;
    if (scalar_text(v, buf, s, n) != 0) {
        char d[128];
        return ig_err(INTEG_EMAPPING, "field '%s': cannot use %s from '%s' as text",
                      r->target->text, describe(v, d, sizeof d), p->text);
    }
    return *n == 0;
}

static int run_text_rule(const rule *r, actx *a)
{
    sbuf b;
    sb_init(&b);
    json_object *trail[PATH_MAX_SEGS];
    uint32_t valid = 1;
    trail[0] = a->in;
    int rc = INTEG_OK, concat = r->op == OP_CONCAT;
    size_t used = 0, holes = 0, np = concat ? r->nsources : r->nparts;
    for (size_t i = 0; i < np && !rc; i++) {
        const ig_path *p = concat ? r->sources[i] : r->parts[i].path;
        if (!p) {
            rc = sb_put(&b, r->parts[i].lit, r->parts[i].len);
            continue;
        }
        holes++;
        char buf[40];
        const char *s;
        size_t n;
        json_object *v = NULL;
        uint32_t from = r->shared[i] < valid ? r->shared[i] : valid - 1;
        int present = lookup_trail(p, from, trail, &valid, &v);
        int k = input_text(r, v, present, p, buf, &s, &n);
        if (k) {
            rc = k < 0 ? k : INTEG_OK;
            continue;
        }
        if (used++ && concat && r->seplen && (rc = sb_put(&b, r->sep, r->seplen)))
            break;
        rc = sb_put(&b, s, n);
    }
    json_object *res = NULL;
    /* Every input missing: leave the field absent rather than write an
     * empty or separator-only string. */
    int skip = !rc && holes && !used;
    if (!rc && !skip)
        rc = new_string(b.p, b.len, &res);
    sb_free(&b);
    if (rc || skip)
        return rc;
    return out_set(a, r->target, r->slot, res);
}

static int is_empty_string(json_object *v)
{
    return json_object_is_type(v, json_type_string) && json_object_get_string_len(v) == 0;
}

static int do_trim(json_object *v, int mutable_, json_object **res, int *same)
{
    *same = 1;
    if (!json_object_is_type(v, json_type_string))
        return INTEG_OK;
    size_t n, n0;
    const char *s = str_of(v, &n), *s0 = s;
    n0 = n;
    trim_span(&s, &n);
    if (s == s0 && n == n0)
        return INTEG_OK;
    char tmp[256];
    if (mutable_ && n < sizeof tmp) {
        /* Our own copy: shrinking it in place reuses its buffer (json-c
         * copies from `tmp`, so the ranges never overlap). */
        memcpy(tmp, s, n);
        if (json_object_set_string_len(v, tmp, (int)n))
            return INTEG_OK;
    }
    *same = 0;
    return new_string(s, n, res);
}

static int run_rule(const rule *r, actx *a)
{
    json_object *v = NULL, *res = NULL;
    int rc = INTEG_OK, same = 0;
    switch (r->op) {
    case OP_REMOVE:
        if (r->slot >= 0 && a->sp[r->slot]) {
            json_object_put(a->sv[r->slot]);
            a->sv[r->slot] = NULL;
            a->sp[r->slot] = 0;
        } else if (r->slot < 0) {
            path_remove(r->target, a->out);
        }
        return INTEG_OK;
    case OP_DEFAULT:
        if (out_get(a, r->target, r->slot, &v) && v && !is_empty_string(v))
            return INTEG_OK;
        if ((rc = dup_value(r->value, &res)))
            return rc;
        return out_set(a, r->target, r->slot, res);
    case OP_COALESCE: {
        json_object *trail[PATH_MAX_SEGS];
        uint32_t valid = 1;
        trail[0] = a->in;
        for (size_t i = 0; i < r->nsources; i++) {
            uint32_t from = r->shared[i] < valid ? r->shared[i] : valid - 1;
            if (!lookup_trail(r->sources[i], from, trail, &valid, &v) || !v || is_empty_string(v))
                continue;
            if ((rc = dup_value(v, &res)))
                return rc;
            return out_set(a, r->target, r->slot, res);
        }
        return INTEG_OK;
    }
    case OP_CONCAT:
    case OP_TEMPLATE: return run_text_rule(r, a);
    default: break;
    }

    int from_in = r->source != NULL;
    if (!(from_in ? lookup(r->source, a->in, &v) : out_get(a, r->target, r->slot, &v)))
        return INTEG_OK;
    switch (r->op) {
    case OP_TRIM: rc = do_trim(v, !from_in, &res, &same); break;
    case OP_LOWER:
    case OP_UPPER: rc = do_case(r, v, !from_in, &res, &same); break;
    case OP_TO_NUMBER: rc = do_to_number(r, v, &res, &same); break;
    case OP_TO_STRING: rc = do_to_string(r, v, &res, &same); break;
    case OP_TO_BOOL: rc = do_to_bool(r, v, &res, &same); break;
    case OP_DATE: rc = do_date(r, v, &res, &same); break;
    case OP_SPLIT: rc = do_split(r, v, &res, &same); break;
    case OP_VALUE_MAP: rc = do_value_map(r, v, &res, &same); break;
    default: return ig_err(INTEG_EINTERNAL, "mapping: unknown op %d", r->op);
    }
    if (rc) {
        json_object_put(res);
        return rc;
    }
    if (same) {
        if (!from_in)
            return INTEG_OK;
        if ((rc = dup_value(v, &res)))
            return rc;
    }
    return out_set(a, r->target, r->slot, res);
}

static int run_plan(const plan *pl, actx *a)
{
    int rc = INTEG_OK;
    json_object *it[PATH_MAX_SEGS], *ot[PATH_MAX_SEGS];
    uint32_t iv = 1, ov = 1;
    it[0] = a->in;
    ot[0] = a->out;
    for (size_t i = 0; i < pl->ncopies && !rc; i++) {
        const copy *c = &pl->copies[i];
        json_object *v, *dup;
        uint32_t from = c->src_shared < iv ? c->src_shared : iv - 1;
        if (!lookup_trail(c->src, from, it, &iv, &v)) {
            ov = 1; /* the output trail is the previous copy's, not this one's */
            continue; /* absent stays absent: a null would overwrite local data */
        }
        if ((rc = dup_value(v, &dup)))
            break;
        if (c->slot >= 0) {
            rc = out_set(a, c->dst, c->slot, dup);
            ov = 1;
        } else {
            /* Between two copies the only change to the output is the
             * previous set, which leaves the containers above it in place. */
            from = c->dst_shared < ov ? c->dst_shared : ov - 1;
            rc = set_trail(c->dst, from, ot, dup);
            ov = rc ? 1 : c->dst->n;
        }
    }
    for (size_t i = 0; i < pl->nrules && !rc; i++)
        rc = run_rule(&pl->rules[i], a);
    for (size_t i = 0; i < pl->nreqs && !rc; i++) {
        const req *q = &pl->reqs[i];
        json_object *v = NULL;
        if (out_get(a, q->path, q->slot, &v) && v)
            continue;
        if (q->from)
            rc = ig_err(INTEG_EMAPPING, "field '%s' missing (from '%s')", q->path->text, q->from);
        else
            rc = ig_err(INTEG_EMAPPING, "field '%s' missing", q->path->text);
    }
    /* Slot keys never occur in the tree (plan_finish), so they are new. */
    for (size_t i = 0; i < pl->nslots; i++) {
        if (!a->sp[i])
            continue;
        a->sp[i] = 0;
        if (!rc && json_object_object_add_ex(a->out, pl->slot_keys[i], a->sv[i],
                                             JSON_C_OBJECT_ADD_KEY_IS_NEW) != 0)
            rc = ig_err(INTEG_ENOMEM, "out of memory");
        if (rc)
            json_object_put(a->sv[i]);
    }
    return rc;
}

int ig_mapping_apply(const ig_mapping *m, ig_direction dir, json_object *in, json_object **out)
{
    if (out)
        *out = NULL;
    IG_CHECK_ARG(m, "mapping");
    IG_CHECK_ARG(dir == IG_PULL || dir == IG_PUSH, "direction");
    IG_CHECK_ARG(json_object_is_type(in, json_type_object), "in (must be a JSON object)");
    IG_CHECK_ARG(out, "out");
    const plan *pl = dir == IG_PULL ? &m->pull : &m->push;
    json_object *sv_local[64];
    unsigned char sp_local[64];
    actx a = {in, NULL, sv_local, sp_local};
    if (pl->nslots > 64) {
        a.sv = calloc(pl->nslots, sizeof *a.sv);
        a.sp = calloc(pl->nslots, 1);
    }
    a.out = json_object_new_object();
    int rc = INTEG_OK;
    if (!a.out || !a.sv || !a.sp)
        rc = ig_err(INTEG_ENOMEM, "out of memory");
    else {
        memset(a.sp, 0, pl->nslots);
        rc = run_plan(pl, &a);
    }
    if (a.sv != sv_local) {
        free(a.sv);
        free(a.sp);
    }
    if (rc) {
        json_object_put(a.out);
        return rc;
    }
    *out = a.out;
    return INTEG_OK;
}
