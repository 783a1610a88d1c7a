/* A JSON Schema subset validator that agrees with ajv (useDefaults: true,
 * allErrors: false, ajv-formats "full" mode) on the keywords listed in
 * schema.h; tests/oracles/schema_vs_ajv.mjs holds us to that.
 *
 * Validation order for one (sub)schema, stopping at the first violation:
 *   type; enum; const;
 *   numbers: minimum, maximum, exclusiveMinimum, exclusiveMaximum;
 *   strings: minLength, maxLength, pattern, format;
 *   arrays:  minItems, maxItems, uniqueItems, then items in index order;
 *   objects: defaults are inserted, then required (array order), properties
 *            (schema order), additionalProperties (instance order).
 * ajv reports type errors in a slightly different order, but with
 * allErrors: false only the verdict is observable and that is the same. */
#include <locale.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "schema.h"

/* Deep enough for any real configuration; shallow enough that a hostile or
 * cyclic schema cannot exhaust the stack. */
#define IG_SCHEMA_MAX_DEPTH 64

/* Deep equality and hashing recurse over instances, which json-c lets a
 * caller build arbitrarily deep; past this, values are treated as distinct
 * rather than risking the stack. */
#define IG_VALUE_MAX_DEPTH 10000

/* Longest property name quoted in full inside an error path. */
#define IG_PATH_KEY_MAX 128

/* --------------------------------------------------------------------- */
/* Paths: "config.entities[2]", "config[\"weird key\"]".                   */

struct path {
    char buf[4096];
    size_t len;
};

static void path_init(struct path *p, const char *root)
{
    p->len = 0;
    p->buf[0] = '\0';
    if (root) {
        size_t n = strlen(root);
        if (n > sizeof p->buf / 2)
            n = sizeof p->buf / 2;
        memcpy(p->buf, root, n);
        p->len = n;
        p->buf[n] = '\0';
    }
}

/* Error messages are capped at 1 KiB anyway, so silently truncating an
 * absurdly long path loses nothing a reader could use. */
static void path_append(struct path *p, const char *s, size_t n)
{
    size_t room = sizeof p->buf - 1 - p->len;
    if (n > room)
        n = room;
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

static void path_restore(struct path *p, size_t mark)
{
    p->len = mark;
    p->buf[mark] = '\0';
}

static int is_identifier(const char *k)
{
    if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || *k == '_' || *k == '$'))
        return 0;
    for (k++; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') ||
              *k == '_' || *k == '$'))
            return 0;
    return 1;
}

static size_t path_push_key(struct path *p, const char *key)
{
    size_t mark = p->len;
    if (is_identifier(key)) {
        if (p->len)
            path_append(p, ".", 1);
        size_t n = strlen(key);
        path_append(p, key, n > IG_PATH_KEY_MAX ? IG_PATH_KEY_MAX : n);
        if (n > IG_PATH_KEY_MAX)
            path_append(p, "...", 3);
        return mark;
    }
    char tmp[IG_PATH_KEY_MAX * 6 + 16];
    size_t t = 0;
    tmp[t++] = '[';
    tmp[t++] = '"';
    size_t i = 0;
    for (; key[i] && i < IG_PATH_KEY_MAX; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c == '"' || c == '\\') {
            tmp[t++] = '\\';
            tmp[t++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            t += (size_t)snprintf(tmp + t, sizeof tmp - t, "\\u%04x", c);
        } else {
            tmp[t++] = (char)c;
        }
    }
    if (key[i]) {
        memcpy(tmp + t, "...", 3);
        t += 3;
    }
    tmp[t++] = '"';
    tmp[t++] = ']';
    path_append(p, tmp, t);
    return mark;
}

static size_t path_push_index(struct path *p, size_t i)
{
    size_t mark = p->len;
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "[%zu]", i);
    path_append(p, tmp, (size_t)n);
    return mark;
}

/* A keyword step in a schema path: ".minimum", ".items". */
static size_t path_push_word(struct path *p, const char *word)
{
    size_t mark = p->len;
    if (p->len)
        path_append(p, ".", 1);
    path_append(p, word, strlen(word));
    return mark;
}

static int fail(const struct path *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(const struct path *p, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->len == 0)
        return ig_err(INTEG_EINVAL, "%s", msg);
    return ig_err(INTEG_EINVAL, "%s: %s", p->buf, msg);
}

/* --------------------------------------------------------------------- */
/* JSON values: numbers, equality, hashing, printing.                     */

static int is_number(json_object *v)
{
    return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

static int is_integer(json_object *v)
{
    if (json_object_is_type(v, json_type_int))
        return 1;
    if (!json_object_is_type(v, json_type_double))
        return 0;
    double d = json_object_get_double(v);
    return isfinite(d) && floor(d) == d;
}

/* Compare two JSON numbers: <0, 0, >0, or 2 when unordered (NaN). Two
 * integers compare exactly; otherwise as doubles, which is what ajv does. */
static int num_cmp(json_object *a, json_object *b)
{
    if (json_object_is_type(a, json_type_int) && json_object_is_type(b, json_type_int)) {
        int64_t x = json_object_get_int64(a), y = json_object_get_int64(b);
        if (x == INT64_MAX && y == INT64_MAX) {
            /* json-c keeps values above INT64_MAX as uint64. */
            uint64_t ux = json_object_get_uint64(a), uy = json_object_get_uint64(b);
            return ux < uy ? -1 : ux > uy;
        }
        return x < y ? -1 : x > y;
    }
    double x = json_object_get_double(a), y = json_object_get_double(b);
    if (x < y)
        return -1;
    if (x > y)
        return 1;
    if (x == y)
        return 0;
    return 2;
}

static int json_equal(json_object *a, json_object *b, int depth)
{
    if (depth > IG_VALUE_MAX_DEPTH)
        return 0;
    if (is_number(a) && is_number(b))
        return num_cmp(a, b) == 0;
    enum json_type ta = json_object_get_type(a), tb = json_object_get_type(b);
    if (ta != tb)
        return 0;
    switch (ta) {
    case json_type_null:
        return 1;
    case json_type_boolean:
        return !json_object_get_boolean(a) == !json_object_get_boolean(b);
    case json_type_string: {
        int la = json_object_get_string_len(a), lb = json_object_get_string_len(b);
        return la == lb &&
               memcmp(json_object_get_string(a), json_object_get_string(b), (size_t)la) == 0;
    }
    case json_type_array: {
        size_t n = json_object_array_length(a);
        if (n != json_object_array_length(b))
            return 0;
        for (size_t i = 0; i < n; i++)
            if (!json_equal(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i),
                            depth + 1))
                return 0;
        return 1;
    }
    case json_type_object: {
        if (json_object_object_length(a) != json_object_object_length(b))
            return 0;
        json_object_object_foreach(a, key, va)
        {
            json_object *vb;
            if (!json_object_object_get_ex(b, key, &vb) || !json_equal(va, vb, depth + 1))
                return 0;
        }
        return 1;
    }
    default:
        return 0;
    }
}

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* A hash consistent with json_equal: 1 and 1.0 (and 0 and -0) collide, and
 * object members are combined order-independently. */
static uint64_t json_hash(json_object *v, int depth)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    if (depth > IG_VALUE_MAX_DEPTH)
        return h;
    if (is_number(v)) {
        double d = json_object_get_double(v);
        if (d == 0)
            d = 0; /* folds -0 */
        h = fnv(h, "n", 1);
        return fnv(h, &d, sizeof d);
    }
    enum json_type t = json_object_get_type(v);
    unsigned char tag = (unsigned char)t;
    h = fnv(h, &tag, 1);
    switch (t) {
    case json_type_boolean: {
        unsigned char b = (unsigned char)(json_object_get_boolean(v) != 0);
        return fnv(h, &b, 1);
    }
    case json_type_string:
        return fnv(h, json_object_get_string(v), (size_t)json_object_get_string_len(v));
    case json_type_array: {
        size_t n = json_object_array_length(v);
        for (size_t i = 0; i < n; i++) {
            uint64_t e = json_hash(json_object_array_get_idx(v, i), depth + 1);
            h = fnv(h, &e, sizeof e);
        }
        return h;
    }
    case json_type_object: {
        uint64_t sum = 0;
        json_object_object_foreach(v, key, val)
        {
            uint64_t kh = fnv(0xcbf29ce484222325ULL, key, strlen(key));
            uint64_t vh = json_hash(val, depth + 1);
            sum += fnv(kh, &vh, sizeof vh);
        }
        return fnv(h, &sum, sizeof sum);
    }
    default:
        return h;
    }
}

static const char *json_text(json_object *v)
{
    return json_object_to_json_string_ext(v,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* --------------------------------------------------------------------- */
/* Strings: UTF-8 length and the formats.                                 */

/* Code points in s[0..n). An invalid sequence counts as one character per
 * maximal ill-formed subpart, as a decoder substituting U+FFFD would count
 * it (Unicode 3.9, "best practice"), so hostile bytes never crash or
 * underflow the count. */
static size_t utf8_length(const unsigned char *s, size_t n)
{
    size_t count = 0, i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            count++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            i++;
            count++;
            continue;
        }
        i++;
        for (size_t k = 0; k < need && i < n; k++) {
            unsigned char d = s[i];
            if (d < lo || d > hi)
                break;
            lo = 0x80;
            hi = 0xbf;
            i++;
        }
        count++;
    }
    return count;
}

static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alnum(int c) { return is_alpha(c) || is_digit(c); }
static int is_hex(int c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* ECMAScript \s: the byte length of the whitespace character at s, or 0. */
static size_t js_space_len(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r'))
        return 1;
    if (n >= 2 && s[0] == 0xc2 && s[1] == 0xa0)
        return 2;
    if (n >= 3) {
        unsigned cp = 0;
        if ((s[0] & 0xf0) == 0xe0 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80)
            cp = ((unsigned)(s[0] & 0x0f) << 12) | ((unsigned)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
        if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
            cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0xfeff)
            return 3;
    }
    return 0;
}

static int two_digits(const unsigned char *s, int *out)
{
    if (!is_digit(s[0]) || !is_digit(s[1]))
        return 0;
    *out = (s[0] - '0') * 10 + (s[1] - '0');
    return 1;
}

static int is_leap(long y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

/* ajv-formats' full-date: \d\d\d\d-\d\d-\d\d with a real calendar day. */
static int format_date(const unsigned char *s, size_t n)
{
    static const int days[] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int c, y2, m, d;
    if (n != 10 || !two_digits(s, &c) || !two_digits(s + 2, &y2) || s[4] != '-' ||
        !two_digits(s + 5, &m) || s[7] != '-' || !two_digits(s + 8, &d))
        return 0;
    long year = c * 100L + y2;
    if (m < 1 || m > 12 || d < 1)
        return 0;
    return d <= (m == 2 && is_leap(year) ? 29 : days[m]);
}

/* ajv-formats' time with a mandatory offset:
 * (\d\d):(\d\d):(\d\d(\.\d+)?)(z|[+-]\d\d(:?\d\d)?), and 60 seconds only at
 * 23:59 UTC. Deliberately as lenient as ajv ("+01", "+0100") so that the
 * two agree on every input. */
static int format_time(const unsigned char *s, size_t n)
{
    int hr, min, sec, tzh = 0, tzm = 0, sign = 1;
    size_t i = 8;
    if (n < 9 || !two_digits(s, &hr) || s[2] != ':' || !two_digits(s + 3, &min) || s[5] != ':' ||
        !two_digits(s + 6, &sec))
        return 0;
    double secs = sec;
    if (s[i] == '.') {
        double scale = 0.1;
        size_t start = ++i;
        while (i < n && is_digit(s[i])) {
            secs += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start)
            return 0;
    }
    if (i >= n)
        return 0; /* the offset is mandatory */
    if (s[i] == 'z' || s[i] == 'Z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        sign = s[i] == '-' ? -1 : 1;
        i++;
        if (i + 2 > n || !two_digits(s + i, &tzh))
            return 0;
        i += 2;
        if (i < n && s[i] == ':')
            i++;
        if (i < n) {
            if (i + 2 > n || !two_digits(s + i, &tzm))
                return 0;
            i += 2;
        } else if (s[i - 1] == ':') {
            return 0;
        }
    } else {
        return 0;
    }
    if (i != n || tzh > 23 || tzm > 59)
        return 0;
    if (hr <= 23 && min <= 59 && secs < 60)
        return 1;
    int utc_min = min - tzm * sign;
    int utc_hr = hr - tzh * sign - (utc_min < 0 ? 1 : 0);
    return (utc_hr == 23 || utc_hr == -1) && (utc_min == 59 || utc_min == -1) && secs < 61;
}

/* ajv-formats splits on /t|\s/i and wants exactly two parts. */
static int format_date_time(const unsigned char *s, size_t n)
{
    size_t sep = n, seplen = 0;
    for (size_t i = 0; i < n;) {
        size_t w = (s[i] == 't' || s[i] == 'T') ? 1 : js_space_len(s + i, n - i);
        if (w) {
            if (sep != n)
                return 0;
            sep = i;
            seplen = w;
            i += w;
        } else {
            i++;
        }
    }
    if (sep == n)
        return 0;
    return format_date(s, sep) && format_time(s + sep + seplen, n - sep - seplen);
}

static int format_uuid(const unsigned char *s, size_t n)
{
    if (n >= 9 && strncasecmp((const char *)s, "urn:uuid:", 9) == 0) {
        s += 9;
        n -= 9;
    }
    if (n != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!is_hex(s[i])) {
            return 0;
        }
    }
    return 1;
}

static int email_local_char(int c)
{
    return is_alnum(c) || (c && strchr("!#$%&'*+/=?^_`{|}~-", c));
}

/* ajv-formats' full "email": dot-atoms "@" two or more dot-separated
 * labels of letters, digits and inner hyphens. */
static int format_email(const unsigned char *s, size_t n)
{
    size_t at = 0;
    while (at < n && s[at] != '@')
        at++;
    if (at == 0 || at >= n)
        return 0;
    for (size_t i = 0; i < at; i++) {
        if (s[i] == '.') {
            if (i == 0 || i + 1 == at || s[i + 1] == '.')
                return 0;
        } else if (!email_local_char(s[i])) {
            return 0;
        }
    }
    size_t labels = 0, start = at + 1;
    for (size_t i = start; i <= n; i++) {
        if (i == n || s[i] == '.') {
            size_t len = i - start;
            if (len == 0 || s[start] == '-' || s[i - 1] == '-')
                return 0;
            labels++;
            start = i + 1;
        } else if (!is_alnum(s[i]) && s[i] != '-') {
            return 0;
        }
    }
    return labels >= 2;
}

/* RFC 3986 pchar minus pct-encoding: unreserved / sub-delims / ":" / "@". */
static int uri_pchar(int c) { return is_alnum(c) || (c && strchr("-._~!$&'()*+,;=:@", c)); }

/* s[0..n) is all pchar, pct-encoded or chars from `extra`. */
static int uri_chars(const unsigned char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return 0;
            i += 2;
        } else if (!uri_pchar(s[i]) && !(s[i] && strchr(extra, s[i]))) {
            return 0;
        }
    }
    return 1;
}

/* dec-octet as ajv writes it: 25[0-5]|2[0-4]\d|[01]?\d\d? */
static int ipv4_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
        size_t start = i;
        int v = 0;
        while (i < n && is_digit(s[i]) && i - start < 3)
            v = v * 10 + (s[i++] - '0');
        if (i == start || v > 255)
            return 0;
    }
    return i == n;
}

/* Count the pieces of one side of "::": h16 groups, with a dotted IPv4
 * worth two groups allowed only as the final piece. -1 if malformed. */
static int ipv6_side(const unsigned char *s, size_t n, int final)
{
    if (n == 0)
        return 0;
    int groups = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ':')
            continue;
        size_t len = i - start;
        int dotted = memchr(s + start, '.', len) != NULL;
        if (dotted) {
            if (!final || i != n || !ipv4_ok(s + start, len))
                return -1;
            groups += 2;
        } else {
            if (len < 1 || len > 4)
                return -1;
            for (size_t k = start; k < i; k++)
                if (!is_hex(s[k]))
                    return -1;
            groups++;
        }
        start = i + 1;
    }
    return groups;
}

static int ipv6_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] == ':' && s[i + 1] == ':') {
            int left = ipv6_side(s, i, 0);
            int right = ipv6_side(s + i + 2, n - i - 2, 1);
            return left >= 0 && right >= 0 && left + right <= 7;
        }
    }
    return ipv6_side(s, n, 1) == 8;
}

/* "[" (IPv6address / IPvFuture) "]" */
static int ip_literal_ok(const unsigned char *s, size_t n)
{
    if (n >= 4 && (s[0] == 'v' || s[0] == 'V')) {
        size_t i = 1;
        while (i < n && is_hex(s[i]))
            i++;
        if (i == 1 || i >= n || s[i] != '.' || i + 1 >= n)
            return 0;
        for (i++; i < n; i++)
            if (!is_alnum(s[i]) && !(s[i] && strchr("-._~!$&'()*+,;=:", s[i])))
                return 0;
        return 1;
    }
    return ipv6_ok(s, n);
}

/* authority = [userinfo "@"] "[" ip-literal "]" [":" *DIGIT] — the only
 * authority form that is not already a run of pchar (see format_uri). */
static int uri_bracket_authority(const unsigned char *s, size_t n)
{
    const unsigned char *at = memchr(s, '@', n);
    if (at) {
        size_t ulen = (size_t)(at - s);
        if (memchr(s, '[', ulen) || memchr(at + 1, '@', n - ulen - 1) || !uri_chars(s, ulen, ""))
            return 0;
        n -= ulen + 1;
        s = at + 1;
    }
    if (n < 2 || s[0] != '[')
        return 0;
    const unsigned char *close = memchr(s, ']', n);
    if (!close || !ip_literal_ok(s + 1, (size_t)(close - s) - 1))
        return 0;
    size_t i = (size_t)(close - s) + 1;
    if (i == n)
        return 1;
    if (s[i] != ':')
        return 0;
    for (i++; i < n; i++)
        if (!is_digit(s[i]))
            return 0;
    return 1;
}

/* ajv-formats' full "uri": RFC 3986 URI with a scheme. Their regex lets a
 * hier-part be a single "/" plus authority and allows an empty authority,
 * so any run of pchar and "/" is a valid hier-part; the only other accepted
 * shape is an authority holding a bracketed IP literal. */
static int format_uri(const unsigned char *s, size_t n)
{
    if (n == 0 || !is_alpha(s[0]))
        return 0;
    size_t i = 1;
    while (i < n && (is_alnum(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i >= n || s[i] != ':')
        return 0;
    const unsigned char *h = s + i + 1;
    size_t rest = n - i - 1, hlen = 0;
    while (hlen < rest && h[hlen] != '?' && h[hlen] != '#')
        hlen++;
    size_t qend = hlen;
    while (qend < rest && h[qend] != '#')
        qend++;
    if (qend > hlen && !uri_chars(h + hlen + 1, qend - hlen - 1, "/?"))
        return 0;
    if (qend < rest && !uri_chars(h + qend + 1, rest - qend - 1, "/?"))
        return 0;
    if (hlen == 0)
        return 0;
    if (uri_chars(h, hlen, "/"))
        return 1;
    if (h[0] != '/')
        return 0;
    for (size_t off = 1; off <= 2 && off <= hlen; off++) {
        if (off == 2 && h[1] != '/')
            break;
        size_t aend = off;
        while (aend < hlen && h[aend] != '/')
            aend++;
        if (uri_bracket_authority(h + off, aend - off) && uri_chars(h + aend, hlen - aend, "/"))
            return 1;
    }
    return 0;
}

static const char *const known_formats[] = {"uri", "email", "date-time", "uuid"};

static int format_ok(const char *fmt, const unsigned char *s, size_t n)
{
    if (strcmp(fmt, "uri") == 0)
        return format_uri(s, n);
    if (strcmp(fmt, "email") == 0)
        return format_email(s, n);
    if (strcmp(fmt, "date-time") == 0)
        return format_date_time(s, n);
    if (strcmp(fmt, "uuid") == 0)
        return format_uuid(s, n);
    return 1; /* unreachable after ig_schema_check */
}

/* --------------------------------------------------------------------- */
/* pattern: ECMAScript syntax translated to a POSIX ERE.                  */

struct rx_out {
    char *buf;
    size_t len, cap;
    const char *err; /* why the pattern cannot be translated */
};

static void rx_put(struct rx_out *o, const char *s, size_t n)
{
    if (o->err)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = (o->cap ? o->cap * 2 : 64) + n;
        char *b = realloc(o->buf, cap);
        if (!b) {
            o->err = "out of memory";
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void rx_puts(struct rx_out *o, const char *s) { rx_put(o, s, strlen(s)); }

static size_t utf8_encode(unsigned cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* One ECMAScript atom inside or outside a class, after the backslash when
 * `esc`: either a literal (bytes in lit, lit_len) or a class escape
 * (cls = 'd', 'w', 's', 'D', 'W', 'S'). */
struct rx_atom {
    char lit[4];
    size_t lit_len;
    char cls;
};

static int hexval(int c)
{
    return is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
}

/* Parse the escape at p (pointing after '\'); returns bytes consumed or 0
 * and sets o->err. Backreferences and \b are the caller's business. */
static size_t rx_escape(const char *p, int in_class, struct rx_atom *a, struct rx_out *o)
{
    a->cls = 0;
    a->lit_len = 0;
    unsigned cp;
    switch (*p) {
    case 'd':
    case 'w':
    case 's':
    case 'D':
    case 'W':
    case 'S':
        a->cls = *p;
        return 1;
    case 'n':
        cp = '\n';
        break;
    case 't':
        cp = '\t';
        break;
    case 'r':
        cp = '\r';
        break;
    case 'f':
        cp = '\f';
        break;
    case 'v':
        cp = '\v';
        break;
    case 'b':
        if (!in_class) {
            o->err = "internal: \\b outside a class";
            return 0;
        }
        cp = '\b';
        break;
    case 'x':
        if (!is_hex(p[1]) || !is_hex(p[2])) {
            o->err = "malformed \\x escape";
            return 0;
        }
        cp = (unsigned)(hexval(p[1]) * 16 + hexval(p[2]));
        if (cp == 0) {
            o->err = "NUL characters are not supported";
            return 0;
        }
        a->lit_len = utf8_encode(cp, a->lit);
        return 3;
    case 'u': {
        size_t used;
        cp = 0;
        if (p[1] == '{') {
            size_t i = 2;
            while (is_hex(p[i]) && i < 9)
                cp = cp * 16 + (unsigned)hexval(p[i++]);
            if (i == 2 || p[i] != '}' || cp > 0x10ffff) {
                o->err = "malformed \\u{...} escape";
                return 0;
            }
            used = i + 1;
        } else {
            for (size_t i = 1; i <= 4; i++) {
                if (!is_hex(p[i])) {
                    o->err = "malformed \\u escape";
                    return 0;
                }
                cp = cp * 16 + (unsigned)hexval(p[i]);
            }
            used = 5;
            /* A surrogate pair spelled as two escapes is one code point. */
            if (cp >= 0xd800 && cp <= 0xdbff && p[5] == '\\' && p[6] == 'u' && is_hex(p[7]) &&
                is_hex(p[8]) && is_hex(p[9]) && is_hex(p[10])) {
                unsigned lo = (unsigned)(hexval(p[7]) << 12 | hexval(p[8]) << 8 |
                                         hexval(p[9]) << 4 | hexval(p[10]));
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    used = 11;
                }
            }
        }
        if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
            o->err = "NUL and lone surrogate characters are not supported";
            return 0;
        }
        a->lit_len = utf8_encode(cp, a->lit);
        return used;
    }
    case '\0':
        o->err = "trailing backslash";
        return 0;
    default:
        if (is_alnum(*p) || (unsigned char)*p >= 0x80) {
            /* \p{..}, \k<..>, \c.., \0 and friends have no ERE spelling. */
            o->err = "unsupported escape";
            return 0;
        }
        cp = (unsigned char)*p;
        break;
    }
    a->lit[0] = (char)cp;
    a->lit_len = 1;
    return 1;
}

/* Length of the UTF-8 sequence starting at p (1 for stray bytes). */
static size_t utf8_seq_len(const char *p)
{
    unsigned char c = (unsigned char)*p;
    size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    for (size_t i = 1; i < n; i++)
        if (((unsigned char)p[i] & 0xc0) != 0x80)
            return 1;
    return n;
}

/* A range endpoint or literal inside a bracket: the characters that POSIX
 * treats specially there are spelled as collating symbols. */
static void rx_class_endpoint(struct rx_out *body, const struct rx_atom *a)
{
    if (a->lit_len == 1 && strchr("]-^[", a->lit[0])) {
        char tmp[5] = {'[', '.', a->lit[0], '.', ']'};
        rx_put(body, tmp, 5);
    } else {
        rx_put(body, a->lit, a->lit_len);
    }
}

static unsigned utf8_decode(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 1)
        return u[0];
    unsigned cp = u[0] & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
    for (size_t i = 1; i < n; i++)
        cp = (cp << 6) | (u[i] & 0x3f);
    return cp;
}

/* Largest non-ASCII range spelled out character by character. */
#define IG_RX_RANGE_MAX 4096

/* glibc cannot compile ranges with non-ASCII endpoints in C.UTF-8 ("Invalid
 * collation character"), so their non-ASCII part is listed character by
 * character; ECMAScript ranges are by code point, which this reproduces. */
static void rx_class_range(struct rx_out *body, const struct rx_atom *lo, const struct rx_atom *hi,
                           struct rx_out *o)
{
    unsigned a = utf8_decode(lo->lit, lo->lit_len), b = utf8_decode(hi->lit, hi->lit_len);
    if (a > b) {
        o->err = "character class range out of order";
        return;
    }
    if (b < 0x80) {
        rx_class_endpoint(body, lo);
        rx_puts(body, "-");
        rx_class_endpoint(body, hi);
        return;
    }
    if (a < 0x80) {
        struct rx_atom del = {.lit = {0x7f}, .lit_len = 1, .cls = 0};
        rx_class_endpoint(body, lo);
        rx_puts(body, "-");
        rx_class_endpoint(body, &del);
        a = 0x80;
    }
    if (b - a >= IG_RX_RANGE_MAX) {
        o->err = "non-ASCII character class ranges wider than 4096 characters are not supported";
        return;
    }
    for (unsigned cp = a; cp <= b; cp++) {
        char enc[4];
        if (cp >= 0xd800 && cp <= 0xdfff)
            continue;
        rx_put(body, enc, utf8_encode(cp, enc));
    }
}

/* Translate the class starting after '['; returns chars consumed. */
static size_t rx_class(const char *p, struct rx_out *o)
{
    const char *start = p;
    int neg = 0, rbracket = 0, hyphen = 0, caret = 0, lbracket = 0;
    struct rx_out body = {0};
    if (*p == '^') {
        neg = 1;
        p++;
    }
    if (*p == ']') {
        if (!neg) {
            o->err = "empty character class [] is not supported";
            return 0;
        }
        rx_puts(o, "."); /* [^] is "any character" */
        return (size_t)(p + 1 - start);
    }
    while (*p && *p != ']' && !body.err && !o->err) {
        struct rx_atom lo;
        if (*p == '\\') {
            size_t k = rx_escape(p + 1, 1, &lo, o);
            if (!k)
                break;
            p += 1 + k;
        } else {
            lo.cls = 0;
            lo.lit_len = utf8_seq_len(p);
            memcpy(lo.lit, p, lo.lit_len);
            p += lo.lit_len;
        }
        if (lo.cls) {
            switch (lo.cls) {
            case 'd':
                rx_puts(&body, "0-9");
                break;
            case 'w':
                rx_puts(&body, "A-Za-z0-9_");
                break;
            case 's':
                rx_puts(&body, "[:space:]");
                break;
            default:
                o->err = "negated class escapes (\\D, \\W, \\S) inside [...] are not supported";
                break;
            }
            continue;
        }
        if (p[0] == '-' && p[1] && p[1] != ']') {
            struct rx_atom hi;
            const char *q = p + 1;
            if (*q == '\\') {
                size_t k = rx_escape(q + 1, 1, &hi, o);
                if (!k)
                    break;
                q += 1 + k;
            } else {
                hi.cls = 0;
                hi.lit_len = utf8_seq_len(q);
                memcpy(hi.lit, q, hi.lit_len);
                q += hi.lit_len;
            }
            if (!hi.cls) {
                rx_class_range(&body, &lo, &hi, o);
                p = q;
                continue;
            }
            /* [a-\d]: as in non-unicode ECMAScript the hyphen is literal;
             * the class escape is read on the next turn. */
        }
        if (lo.lit_len == 1 && lo.lit[0] == ']')
            rbracket = 1;
        else if (lo.lit_len == 1 && lo.lit[0] == '-')
            hyphen = 1;
        else if (lo.lit_len == 1 && lo.lit[0] == '^')
            caret = 1;
        else if (lo.lit_len == 1 && lo.lit[0] == '[')
            lbracket = 1;
        else
            rx_put(&body, lo.lit, lo.lit_len);
    }
    if (!o->err && body.err)
        o->err = body.err;
    if (!o->err && *p != ']')
        o->err = "unterminated character class";
    if (o->err) {
        free(body.buf);
        return 0;
    }
    /* POSIX wants "]" first, "-" last and "^" anywhere but first. */
    if (caret && !neg && !rbracket && body.len == 0 && !lbracket && !hyphen) {
        rx_puts(o, "\\^");
    } else {
        rx_puts(o, neg ? "[^" : "[");
        if (rbracket)
            rx_puts(o, "]");
        if (body.len)
            rx_put(o, body.buf, body.len);
        if (lbracket)
            rx_puts(o, "[");
        if (caret && !neg && !rbracket && body.len == 0 && !lbracket) {
            rx_puts(o, "-^"); /* hyphen first is literal, then caret */
            hyphen = 0;
        } else if (caret) {
            rx_puts(o, "^");
        }
        if (hyphen)
            rx_puts(o, "-");
        rx_puts(o, "]");
    }
    free(body.buf);
    return (size_t)(p + 1 - start);
}

/* Returns the length of a {n}, {n,} or {n,m} quantifier at p, else 0. */
static size_t rx_brace_quantifier(const char *p)
{
    size_t i = 1;
    if (!is_digit(p[i]))
        return 0;
    while (is_digit(p[i]))
        i++;
    if (p[i] == ',') {
        i++;
        while (is_digit(p[i]))
            i++;
    }
    return p[i] == '}' ? i + 1 : 0;
}

/* Translate ECMAScript `src` into a malloc'd ERE, or NULL with *why set.
 * Only whether some match exists is asked of the result, so lazy
 * quantifiers become greedy ones and (?:...) becomes (...). */
static char *rx_translate(const char *src, const char **why)
{
    struct rx_out o = {0};
    rx_puts(&o, "");
    const char *p = src;
    while (*p && !o.err) {
        char c = *p;
        if (c == '\\') {
            if (p[1] == 'b' || p[1] == 'B') {
                /* glibc's ERE word boundaries; close enough to ECMAScript's. */
                rx_put(&o, p, 2);
                p += 2;
                continue;
            }
            if (p[1] >= '1' && p[1] <= '9') {
                if (is_digit(p[2])) {
                    o.err = "backreferences above \\9 are not supported";
                    break;
                }
                rx_put(&o, p, 2);
                p += 2;
                continue;
            }
            struct rx_atom a;
            size_t k = rx_escape(p + 1, 0, &a, &o);
            if (!k)
                break;
            p += 1 + k;
            if (a.cls) {
                switch (a.cls) {
                case 'd':
                    rx_puts(&o, "[0-9]");
                    break;
                case 'D':
                    rx_puts(&o, "[^0-9]");
                    break;
                case 'w':
                    rx_puts(&o, "[A-Za-z0-9_]");
                    break;
                case 'W':
                    rx_puts(&o, "[^A-Za-z0-9_]");
                    break;
                case 's':
                    rx_puts(&o, "[[:space:]]");
                    break;
                default:
                    rx_puts(&o, "[^[:space:]]");
                    break;
                }
            } else if (a.lit_len == 1 && strchr(".[(){}*+?^$|\\", a.lit[0])) {
                char tmp[2] = {'\\', a.lit[0]};
                rx_put(&o, tmp, 2);
            } else {
                rx_put(&o, a.lit, a.lit_len);
            }
            continue;
        }
        if (c == '[') {
            size_t k = rx_class(p + 1, &o);
            if (!k)
                break;
            p += 1 + k;
            continue;
        }
        if (c == '(' && p[1] == '?') {
            if (p[2] != ':') {
                o.err = "lookaround assertions and named groups are not supported";
                break;
            }
            rx_puts(&o, "(");
            p += 3;
            continue;
        }
        if (c == '.') {
            /* ECMAScript's dot stops at line terminators. */
            rx_puts(&o, "[^\n\r]");
            p++;
            continue;
        }
        if (c == '{') {
            size_t k = rx_brace_quantifier(p);
            if (!k) {
                rx_puts(&o, "\\{");
                p++;
                continue;
            }
            rx_put(&o, p, k);
            p += k;
            if (*p == '?')
                p++; /* lazy */
            continue;
        }
        if (c == '*' || c == '+' || c == '?') {
            rx_put(&o, p, 1);
            p++;
            if (*p == '?')
                p++; /* lazy */
            continue;
        }
        size_t n = utf8_seq_len(p);
        rx_put(&o, p, n);
        p += n;
    }
    if (o.err) {
        *why = o.err;
        free(o.buf);
        return NULL;
    }
    return o.buf;
}

/* Compile and run regexes under C.UTF-8 so that "." and bracket
 * expressions see code points, as ECMAScript's "u" flag does. uselocale is
 * per thread, so this touches no global state. */
struct rx_locale {
    locale_t loc, prev;
};

static void rx_locale_enter(struct rx_locale *l)
{
    l->loc = newlocale(LC_CTYPE_MASK | LC_COLLATE_MASK, "C.UTF-8", (locale_t)0);
    l->prev = l->loc ? uselocale(l->loc) : (locale_t)0;
}

static void rx_locale_leave(struct rx_locale *l)
{
    if (l->loc) {
        uselocale(l->prev);
        freelocale(l->loc);
    }
}

/* Compile `pattern`; on failure fills why[] and returns nonzero. */
static int rx_compile(const char *pattern, regex_t *re, char *why, size_t whylen)
{
    const char *reason = NULL;
    char *ere = rx_translate(pattern, &reason);
    if (!ere) {
        snprintf(why, whylen, "%s", reason);
        return -1;
    }
    int rc = regcomp(re, ere, REG_EXTENDED | REG_NOSUB);
    free(ere);
    if (rc) {
        regerror(rc, re, why, whylen);
        return -1;
    }
    return 0;
}

/* 1 match, 0 no match, -1 the pattern does not compile (why filled). */
static int rx_search(const char *pattern, const char *s, size_t n, char *why, size_t whylen)
{
    struct rx_locale l;
    regex_t re;
    rx_locale_enter(&l);
    int rc = rx_compile(pattern, &re, why, whylen);
    if (rc == 0) {
#ifdef REG_STARTEND
        /* REG_STARTEND lets strings with NUL characters be searched whole. */
        regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)n};
        rc = regexec(&re, s, 1, &m, REG_STARTEND) == 0;
#else
        (void)n;
        rc = regexec(&re, s, 0, NULL, 0) == 0;
#endif
        regfree(&re);
    }
    rx_locale_leave(&l);
    return rc;
}

/* --------------------------------------------------------------------- */
/* Validation.                                                            */

struct vctx {
    int apply_defaults;
    struct path path;
};

static int validate(struct vctx *v, json_object *s, json_object *inst, int depth);

static const char *type_phrase(const char *t)
{
    static const char *const phrases[][2] = {
        {"string", "a string"},   {"number", "a number"},  {"integer", "an integer"},
        {"boolean", "a boolean"}, {"object", "an object"}, {"array", "an array"},
        {"null", "null"},
    };
    for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
        if (strcmp(t, phrases[i][0]) == 0)
            return phrases[i][1];
    return t;
}

static int type_matches(const char *t, json_object *inst)
{
    if (strcmp(t, "integer") == 0)
        return is_integer(inst);
    if (strcmp(t, "number") == 0)
        return json_object_is_type(inst, json_type_int) ||
               (json_object_is_type(inst, json_type_double) &&
                isfinite(json_object_get_double(inst)));
    if (strcmp(t, "string") == 0)
        return json_object_is_type(inst, json_type_string);
    if (strcmp(t, "boolean") == 0)
        return json_object_is_type(inst, json_type_boolean);
    if (strcmp(t, "object") == 0)
        return json_object_is_type(inst, json_type_object);
    if (strcmp(t, "array") == 0)
        return json_object_is_type(inst, json_type_array);
    if (strcmp(t, "null") == 0)
        return inst == NULL;
    return 0;
}

static int check_type(struct vctx *v, json_object *type, json_object *inst)
{
    if (json_object_is_type(type, json_type_string)) {
        const char *t = json_object_get_string(type);
        if (type_matches(t, inst))
            return 0;
        return fail(&v->path, "must be %s", type_phrase(t));
    }
    if (!json_object_is_type(type, json_type_array))
        return fail(&v->path, "invalid schema: \"type\" must be a string or an array");
    size_t n = json_object_array_length(type);
    char msg[256] = "must be ";
    size_t used = strlen(msg);
    for (size_t i = 0; i < n; i++) {
        const char *t = json_object_get_string(json_object_array_get_idx(type, i));
        if (!t)
            continue;
        if (type_matches(t, inst))
            return 0;
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(msg + used, sizeof msg - used, "%s%s", sep, type_phrase(t));
        if (w > 0 && (size_t)w < sizeof msg - used)
            used += (size_t)w;
    }
    return fail(&v->path, "%s", msg);
}

static int check_enum(struct vctx *v, json_object *en, json_object *inst)
{
    size_t n = json_object_array_length(en);
    for (size_t i = 0; i < n; i++)
        if (json_equal(json_object_array_get_idx(en, i), inst, 0))
            return 0;
    char msg[640] = "must be one of ";
    size_t used = strlen(msg);
    for (size_t i = 0; i < n; i++) {
        const char *txt = json_text(json_object_array_get_idx(en, i));
        int w = snprintf(msg + used, sizeof msg - used, "%s%s", i ? ", " : "", txt);
        if (w < 0 || (size_t)w >= sizeof msg - used) {
            /* Too long to list: say so rather than cut a value in half. */
            msg[used] = '\0';
            snprintf(msg + used, sizeof msg - used, "%s...", i ? ", " : "");
            break;
        }
        used += (size_t)w;
    }
    return fail(&v->path, "%s", msg);
}

static int check_number(struct vctx *v, json_object *s, json_object *inst)
{
    static const struct {
        const char *kw, *op;
        int ok_lt, ok_eq, ok_gt;
    } rules[] = {
        {"minimum", ">=", 0, 1, 1},
        {"maximum", "<=", 1, 1, 0},
        {"exclusiveMinimum", ">", 0, 0, 1},
        {"exclusiveMaximum", "<", 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        json_object *lim;
        if (!json_object_object_get_ex(s, rules[i].kw, &lim) || !is_number(lim))
            continue;
        int c = num_cmp(inst, lim);
        int ok = c == -1 ? rules[i].ok_lt : c == 0 ? rules[i].ok_eq : c == 1 ? rules[i].ok_gt : 0;
        if (!ok)
            return fail(&v->path, "must be %s %s", rules[i].op, json_text(lim));
    }
    return 0;
}

static int64_t as_count(json_object *o)
{
    double d = json_object_get_double(o);
    if (json_object_is_type(o, json_type_int))
        return json_object_get_int64(o);
    return d >= 9.2e18 ? INT64_MAX : d <= 0 ? 0 : (int64_t)d;
}

static int check_string(struct vctx *v, json_object *s, json_object *inst)
{
    const char *str = json_object_get_string(inst);
    size_t n = (size_t)json_object_get_string_len(inst);
    json_object *kw;
    int have_min = json_object_object_get_ex(s, "minLength", &kw) && is_number(kw);
    int64_t min = have_min ? as_count(kw) : 0;
    int have_max = json_object_object_get_ex(s, "maxLength", &kw) && is_number(kw);
    int64_t max = have_max ? as_count(kw) : 0;
    if (have_min || have_max) {
        size_t len = utf8_length((const unsigned char *)str, n);
        if (have_min && (int64_t)len < min)
            return fail(&v->path, "must be at least %lld character%s long", (long long)min,
                        min == 1 ? "" : "s");
        if (have_max && (int64_t)len > max)
            return fail(&v->path, "must be at most %lld character%s long", (long long)max,
                        max == 1 ? "" : "s");
    }
    if (json_object_object_get_ex(s, "pattern", &kw) && json_object_is_type(kw, json_type_string)) {
        char why[256];
        int m = rx_search(json_object_get_string(kw), str, n, why, sizeof why);
        if (m < 0)
            return fail(&v->path, "invalid schema: pattern \"%s\": %s", json_object_get_string(kw),
                        why);
        if (!m)
            return fail(&v->path, "must match pattern \"%s\"", json_object_get_string(kw));
    }
    if (json_object_object_get_ex(s, "format", &kw) && json_object_is_type(kw, json_type_string)) {
        const char *fmt = json_object_get_string(kw);
        if (!format_ok(fmt, (const unsigned char *)str, n))
            return fail(&v->path, "must match format \"%s\"", fmt);
    }
    return 0;
}

struct hashed {
    uint64_t h;
    size_t i;
};

static int hashed_cmp(const void *a, const void *b)
{
    const struct hashed *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Duplicate search in O(n log n) so a long hostile array cannot make
 * validation quadratic. Reports the duplicate with the smallest second
 * index, the same pair a left-to-right scan would find. */
static int check_unique(struct vctx *v, json_object *arr)
{
    size_t n = json_object_array_length(arr);
    if (n < 2)
        return 0;
    struct hashed *hs = malloc(n * sizeof *hs);
    if (!hs)
        return ig_err(INTEG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        hs[i].h = json_hash(json_object_array_get_idx(arr, i), 0);
        hs[i].i = i;
    }
    qsort(hs, n, sizeof *hs, hashed_cmp);
    size_t best_i = 0, best_j = SIZE_MAX;
    for (size_t g = 0; g < n;) {
        size_t e = g + 1;
        while (e < n && hs[e].h == hs[g].h)
            e++;
        for (size_t b = g + 1; b < e; b++) {
            if (hs[b].i >= best_j)
                break;
            for (size_t a = g; a < b; a++) {
                if (json_equal(json_object_array_get_idx(arr, hs[a].i),
                               json_object_array_get_idx(arr, hs[b].i), 0)) {
                    best_i = hs[a].i;
                    best_j = hs[b].i;
                    break;
                }
            }
        }
        g = e;
    }
    free(hs);
    if (best_j == SIZE_MAX)
        return 0;
    return fail(&v->path, "must not contain duplicate items ([%zu] and [%zu] are equal)", best_i,
                best_j);
}

static int check_array(struct vctx *v, json_object *s, json_object *inst, int depth)
{
    size_t n = json_object_array_length(inst);
    json_object *kw;
    if (json_object_object_get_ex(s, "minItems", &kw) && is_number(kw) && (int64_t)n < as_count(kw))
        return fail(&v->path, "must have at least %lld item%s", (long long)as_count(kw),
                    as_count(kw) == 1 ? "" : "s");
    if (json_object_object_get_ex(s, "maxItems", &kw) && is_number(kw) && (int64_t)n > as_count(kw))
        return fail(&v->path, "must have at most %lld item%s", (long long)as_count(kw),
                    as_count(kw) == 1 ? "" : "s");
    if (json_object_object_get_ex(s, "uniqueItems", &kw) && json_object_get_boolean(kw)) {
        int rc = check_unique(v, inst);
        if (rc)
            return rc;
    }
    if (json_object_object_get_ex(s, "items", &kw)) {
        for (size_t i = 0; i < n; i++) {
            size_t mark = path_push_index(&v->path, i);
            int rc = validate(v, kw, json_object_array_get_idx(inst, i), depth + 1);
            path_restore(&v->path, mark);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int check_object(struct vctx *v, json_object *s, json_object *inst, int depth)
{
    json_object *props = NULL, *kw;
    if (json_object_object_get_ex(s, "properties", &kw) &&
        json_object_is_type(kw, json_type_object))
        props = kw;
    if (v->apply_defaults && props) {
        json_object_object_foreach(props, key, ps)
        {
            json_object *dflt;
            if (!json_object_is_type(ps, json_type_object) ||
                !json_object_object_get_ex(ps, "default", &dflt) ||
                json_object_object_get_ex(inst, key, NULL))
                continue;
            json_object *copy = ig_json_copy(dflt);
            if (dflt && !copy)
                return ig_err(INTEG_ENOMEM, "out of memory");
            if (json_object_object_add(inst, key, copy) != 0) {
                json_object_put(copy);
                return ig_err(INTEG_ENOMEM, "out of memory");
            }
        }
    }
    if (json_object_object_get_ex(s, "required", &kw) && json_object_is_type(kw, json_type_array)) {
        size_t n = json_object_array_length(kw);
        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(kw, i);
            const char *name =
                json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
            if (name && !json_object_object_get_ex(inst, name, NULL))
                return fail(&v->path, "missing required property '%s'", name);
        }
    }
    if (props) {
        json_object_object_foreach(props, key, ps)
        {
            json_object *val;
            if (!json_object_object_get_ex(inst, key, &val))
                continue;
            size_t mark = path_push_key(&v->path, key);
            int rc = validate(v, ps, val, depth + 1);
            path_restore(&v->path, mark);
            if (rc)
                return rc;
        }
    }
    json_object *addl;
    if (json_object_object_get_ex(s, "additionalProperties", &addl)) {
        json_object_object_foreach(inst, key, val)
        {
            if (props && json_object_object_get_ex(props, key, NULL))
                continue;
            size_t mark = path_push_key(&v->path, key);
            int rc = 0;
            if (json_object_is_type(addl, json_type_boolean) && !json_object_get_boolean(addl))
                rc = fail(&v->path, "additional property not allowed");
            else
                rc = validate(v, addl, val, depth + 1);
            path_restore(&v->path, mark);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int validate(struct vctx *v, json_object *s, json_object *inst, int depth)
{
    if (depth > IG_SCHEMA_MAX_DEPTH)
        return fail(&v->path, "schema nesting deeper than %d levels", IG_SCHEMA_MAX_DEPTH);
    if (json_object_is_type(s, json_type_boolean))
        return json_object_get_boolean(s) ? 0 : fail(&v->path, "no value is allowed here");
    if (!json_object_is_type(s, json_type_object))
        return fail(&v->path, "invalid schema: must be an object or a boolean");
    json_object *kw;
    int rc;
    if (json_object_object_get_ex(s, "type", &kw) && (rc = check_type(v, kw, inst)))
        return rc;
    if (json_object_object_get_ex(s, "enum", &kw) && json_object_is_type(kw, json_type_array) &&
        (rc = check_enum(v, kw, inst)))
        return rc;
    if (json_object_object_get_ex(s, "const", &kw) && !json_equal(kw, inst, 0))
        return fail(&v->path, "must be equal to %s", json_text(kw));
    switch (json_object_get_type(inst)) {
    case json_type_int:
    case json_type_double:
        return check_number(v, s, inst);
    case json_type_string:
        return check_string(v, s, inst);
    case json_type_array:
        return check_array(v, s, inst, depth);
    case json_type_object:
        return check_object(v, s, inst, depth);
    default:
        return 0;
    }
}

int ig_schema_validate(json_object *schema, json_object *instance, int apply_defaults,
                       const char *root)
{
    IG_CHECK_ARG(schema != NULL, "schema");
    struct vctx *v = malloc(sizeof *v);
    if (!v)
        return ig_err(INTEG_ENOMEM, "out of memory");
    v->apply_defaults = apply_defaults;
    path_init(&v->path, root);
    int rc = validate(v, schema, instance, 0);
    free(v);
    return rc;
}

/* --------------------------------------------------------------------- */
/* Checking schemas.                                                      */

static const char *const simple_types[] = {"string", "number", "integer", "boolean",
                                           "object", "array",  "null"};

static int is_simple_type(const char *t)
{
    for (size_t i = 0; i < sizeof simple_types / sizeof simple_types[0]; i++)
        if (strcmp(t, simple_types[i]) == 0)
            return 1;
    return 0;
}

static int is_count(json_object *o)
{
    return is_integer(o) && json_object_get_double(o) >= 0 &&
           (!json_object_is_type(o, json_type_int) || json_object_get_int64(o) >= 0);
}

static int check_schema(struct path *p, json_object *s, int depth);

/* A keyword's own path, for its error; restored by the caller. */
static int kw_fail(struct path *p, const char *kw, const char *msg)
{
    size_t mark = path_push_word(p, kw);
    int rc = fail(p, "%s", msg);
    path_restore(p, mark);
    return rc;
}

static int check_type_kw(struct path *p, json_object *t)
{
    if (json_object_is_type(t, json_type_string)) {
        if (!is_simple_type(json_object_get_string(t)))
            return kw_fail(p, "type",
                           "must be one of \"string\", \"number\", \"integer\", \"boolean\", "
                           "\"object\", \"array\", \"null\"");
        return 0;
    }
    if (!json_object_is_type(t, json_type_array) || json_object_array_length(t) == 0)
        return kw_fail(p, "type", "must be a type name or a non-empty array of type names");
    size_t n = json_object_array_length(t);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(t, i);
        if (!json_object_is_type(e, json_type_string) || !is_simple_type(json_object_get_string(e)))
            return kw_fail(p, "type", "must be a type name or a non-empty array of type names");
        for (size_t j = 0; j < i; j++)
            if (json_equal(e, json_object_array_get_idx(t, j), 0))
                return kw_fail(p, "type", "must not repeat a type");
    }
    return 0;
}

static int check_required_kw(struct path *p, json_object *r)
{
    if (!json_object_is_type(r, json_type_array))
        return kw_fail(p, "required", "must be an array of unique strings");
    size_t n = json_object_array_length(r);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(r, i);
        if (!json_object_is_type(e, json_type_string))
            return kw_fail(p, "required", "must be an array of unique strings");
        for (size_t j = 0; j < i; j++)
            if (json_equal(e, json_object_array_get_idx(r, j), 0)) {
                size_t mark = path_push_word(p, "required");
                int rc = fail(p, "duplicate entry '%s'", json_object_get_string(e));
                path_restore(p, mark);
                return rc;
            }
    }
    return 0;
}

static int is_annotation(const char *k)
{
    static const char *const names[] = {"title", "description", "examples",  "$comment",  "$schema",
                                        "$id",   "readOnly",    "writeOnly", "deprecated"};
    if (strncmp(k, "x-", 2) == 0)
        return 1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(k, names[i]) == 0)
            return 1;
    return 0;
}

static int check_annotation(struct path *p, const char *k, json_object *val)
{
    if (strncmp(k, "x-", 2) == 0)
        return 0;
    if (strcmp(k, "examples") == 0)
        return json_object_is_type(val, json_type_array) ? 0 : kw_fail(p, k, "must be an array");
    if (strcmp(k, "readOnly") == 0 || strcmp(k, "writeOnly") == 0 || strcmp(k, "deprecated") == 0)
        return json_object_is_type(val, json_type_boolean) ? 0 : kw_fail(p, k, "must be a boolean");
    return json_object_is_type(val, json_type_string) ? 0 : kw_fail(p, k, "must be a string");
}

static int check_subschema(struct path *p, const char *kw, json_object *sub, int depth)
{
    size_t mark = path_push_word(p, kw);
    int rc = check_schema(p, sub, depth + 1);
    path_restore(p, mark);
    return rc;
}

/* Check one keyword of a schema object; defaults are checked afterwards. */
static int check_keyword(struct path *p, const char *k, json_object *val, int depth)
{
    if (strcmp(k, "type") == 0)
        return check_type_kw(p, val);
    if (strcmp(k, "enum") == 0) {
        if (!json_object_is_type(val, json_type_array) || json_object_array_length(val) == 0)
            return kw_fail(p, k, "must be a non-empty array");
        return 0;
    }
    if (strcmp(k, "const") == 0 || strcmp(k, "default") == 0)
        return 0;
    if (strcmp(k, "minimum") == 0 || strcmp(k, "maximum") == 0 ||
        strcmp(k, "exclusiveMinimum") == 0 || strcmp(k, "exclusiveMaximum") == 0) {
        if (!is_number(val) || !isfinite(json_object_get_double(val)))
            return kw_fail(p, k, "must be a number");
        return 0;
    }
    if (strcmp(k, "minLength") == 0 || strcmp(k, "maxLength") == 0 || strcmp(k, "minItems") == 0 ||
        strcmp(k, "maxItems") == 0)
        return is_count(val) ? 0 : kw_fail(p, k, "must be a non-negative integer");
    if (strcmp(k, "uniqueItems") == 0)
        return json_object_is_type(val, json_type_boolean) ? 0 : kw_fail(p, k, "must be a boolean");
    if (strcmp(k, "pattern") == 0) {
        if (!json_object_is_type(val, json_type_string))
            return kw_fail(p, k, "must be a string");
        char why[256];
        regex_t re;
        struct rx_locale l;
        rx_locale_enter(&l);
        int bad = rx_compile(json_object_get_string(val), &re, why, sizeof why);
        if (!bad)
            regfree(&re);
        rx_locale_leave(&l);
        if (bad) {
            size_t mark = path_push_word(p, k);
            int rc =
                fail(p, "invalid regular expression \"%s\": %s", json_object_get_string(val), why);
            path_restore(p, mark);
            return rc;
        }
        return 0;
    }
    if (strcmp(k, "format") == 0) {
        if (!json_object_is_type(val, json_type_string))
            return kw_fail(p, k, "must be a string");
        for (size_t i = 0; i < sizeof known_formats / sizeof known_formats[0]; i++)
            if (strcmp(json_object_get_string(val), known_formats[i]) == 0)
                return 0;
        size_t mark = path_push_word(p, k);
        int rc = fail(p, "unsupported format %s (supported: uri, email, date-time, uuid)",
                      json_text(val));
        path_restore(p, mark);
        return rc;
    }
    if (strcmp(k, "required") == 0)
        return check_required_kw(p, val);
    if (strcmp(k, "properties") == 0) {
        if (!json_object_is_type(val, json_type_object))
            return kw_fail(p, k, "must be an object");
        size_t mark = path_push_word(p, k);
        json_object_object_foreach(val, name, sub)
        {
            size_t m2 = path_push_key(p, name);
            int rc = check_schema(p, sub, depth + 1);
            path_restore(p, m2);
            if (rc) {
                path_restore(p, mark);
                return rc;
            }
        }
        path_restore(p, mark);
        return 0;
    }
    if (strcmp(k, "additionalProperties") == 0 || strcmp(k, "items") == 0) {
        if (!json_object_is_type(val, json_type_object) &&
            !json_object_is_type(val, json_type_boolean))
            return kw_fail(p, k, "must be a schema (an object or a boolean)");
        return check_subschema(p, k, val, depth);
    }
    if (is_annotation(k))
        return check_annotation(p, k, val);
    return kw_fail(p, k, "unsupported schema keyword");
}

static int check_schema(struct path *p, json_object *s, int depth)
{
    if (depth > IG_SCHEMA_MAX_DEPTH)
        return fail(p, "schema nesting deeper than %d levels", IG_SCHEMA_MAX_DEPTH);
    if (json_object_is_type(s, json_type_boolean))
        return 0;
    if (!json_object_is_type(s, json_type_object))
        return fail(p, "schema must be an object or a boolean");
    json_object_object_foreach(s, k, val)
    {
        int rc = check_keyword(p, k, val, depth);
        if (rc)
            return rc;
    }
    json_object *dflt;
    if (json_object_object_get_ex(s, "default", &dflt)) {
        /* Checked as it will be used: on a copy, with its own nested
         * defaults filled in. */
        json_object *copy = ig_json_copy(dflt);
        if (dflt && !copy)
            return ig_err(INTEG_ENOMEM, "out of memory");
        size_t mark = path_push_word(p, "default");
        struct vctx *v = malloc(sizeof *v);
        int rc;
        if (!v) {
            rc = ig_err(INTEG_ENOMEM, "out of memory");
        } else {
            v->apply_defaults = 1;
            path_init(&v->path, p->buf);
            rc = validate(v, s, copy, depth);
            free(v);
        }
        path_restore(p, mark);
        json_object_put(copy);
        if (rc)
            return rc;
    }
    return 0;
}

int ig_schema_check(json_object *schema, const char *where)
{
    IG_CHECK_ARG(schema != NULL, "schema");
    struct path *p = malloc(sizeof *p);
    if (!p)
        return ig_err(INTEG_ENOMEM, "out of memory");
    path_init(p, where);
    int rc = check_schema(p, schema, 0);
    free(p);
    return rc;
}
