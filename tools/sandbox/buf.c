/* Output buffer, encodings and time stamps: the hot path of page rendering,
 * so JSON is written straight into a buffer rather than built as a tree. */
#include "sandbox.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void sb_init(sbuf *b)
{
    b->p = NULL;
    b->len = b->cap = 0;
}

void sb_free(sbuf *b)
{
    free(b->p);
    sb_init(b);
}

void sb_reset(sbuf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

static void sb_grow(sbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        /* A loopback test tool: running out of memory is not recoverable
         * in any useful way, and a half-written page would mislead. */
        fputs("sandbox: out of memory\n", stderr);
        abort();
    }
    b->p = p;
    b->cap = cap;
}

void sb_put(sbuf *b, const char *s, size_t n)
{
    sb_grow(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sb_puts(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

void sb_putc(sbuf *b, char c)
{
    sb_grow(b, 1);
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}

void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        sb_put(b, small, (size_t)n);
        return;
    }
    sb_grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sb_int(sbuf *b, int64_t v)
{
    char tmp[24];
    char *e = tmp + sizeof tmp, *p = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    sb_put(b, p, (size_t)(e - p));
}

void sb_jstr(sbuf *b, const char *s)
{
    if (!s) {
        sb_put(b, "null", 4);
        return;
    }
    sb_putc(b, '"');
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sb_put(b, run, (size_t)(s - run));
        switch (c) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        default: sb_printf(b, "\\u%04x", c); break;
        }
        run = s + 1;
    }
    sb_put(b, run, (size_t)(s - run));
    sb_putc(b, '"');
}

void sb_urlenc(sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || strchr("-._~$,:'()", c))
            sb_putc(b, (char)c);
        else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_put(b, e, 3);
        }
    }
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void sb_b64(sbuf *b, const void *data, size_t n, int url_safe)
{
    const char *tab = url_safe ? B64URL : B64;
    const unsigned char *d = data;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        char o[4] = {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], tab[v & 63]};
        sb_put(b, o, 4);
    }
    /* No padding: cursors travel in query strings, where '=' needs care. */
    if (n - i == 1) {
        uint32_t v = (uint32_t)d[i] << 16;
        char o[2] = {tab[v >> 18], tab[(v >> 12) & 63]};
        sb_put(b, o, 2);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
        char o[3] = {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63]};
        sb_put(b, o, 3);
    }
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    /* ' ' is a '+' that went through form decoding on the way. */
    if (c == '+' || c == '-' || c == ' ') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

int b64_decode(const char *s, sbuf *out)
{
    uint32_t acc = 0;
    int bits = 0;
    sb_reset(out);
    for (; *s && *s != '='; s++) {
        int v = b64_val(*s);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            sb_putc(out, (char)((acc >> bits) & 0xff));
        }
    }
    if (!out->p)
        sb_put(out, "", 0);
    return 0;
}

char *sb_steal(sbuf *b, size_t *len)
{
    if (!b->p)
        sb_put(b, "", 0);
    char *p = b->p;
    if (len)
        *len = b->len;
    sb_init(b);
    return p;
}

/* ---- time --------------------------------------------------------------- */

ms_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (ms_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

int time_parse(const char *s, ms_t *out)
{
    if (!s || !*s)
        return -1;
    const char *p = s;
    /* Epoch milliseconds: HubSpot accepts these in search filters. */
    if (strspn(s, "0123456789") == strlen(s) && strlen(s) >= 10) {
        *out = strtoll(s, NULL, 10);
        return 0;
    }
    int Y, M, D, h = 0, m = 0, sec = 0;
    if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' || digits(&p, 2, &D))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31)
        return -1;
    int64_t frac = 0, off = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m))
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec))
                return -1;
        }
        if (*p == '.') {
            p++;
            int nd = 0;
            while (isdigit((unsigned char)*p)) {
                if (nd < 3)
                    frac = frac * 10 + (*p - '0');
                nd++;
                p++;
            }
            if (!nd)
                return -1;
            for (; nd < 3; nd++)
                frac *= 10;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-' || *p == ' ') {
            /* ' ': a '+' offset that was form-decoded in a query string. */
            int sign = *p == '-' ? -1 : 1, oh, om;
            p++;
            if (digits(&p, 2, &oh))
                return -1;
            if (*p == ':')
                p++;
            if (digits(&p, 2, &om))
                return -1;
            off = sign * (oh * 3600 + om * 60);
        } else if (*p) {
            return -1;
        }
        if (h > 23 || m > 59 || sec > 60)
            return -1;
    }
    if (*p)
        return -1;
    struct tm tm = {0};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    *out = ((ms_t)t - off) * 1000 + frac;
    return 0;
}

/* The shop's fixed UTC offset: Shopify renders times in the shop's zone. */
#define SHOP_OFFSET_S (-4 * 3600)

void time_fmt(sbuf *b, ms_t t, enum time_style style)
{
    int64_t secs = t >= 0 ? t / 1000 : -((-t + 999) / 1000);
    int ms = (int)(t - secs * 1000);
    if (style == TS_SHOP)
        secs += SHOP_OFFSET_S;
    time_t tt = (time_t)secs;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char s[40];
    int n;
    switch (style) {
    case TS_MS_Z:
        n = snprintf(s, sizeof s, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
        break;
    case TS_Z:
        n = snprintf(s, sizeof s, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        break;
    case TS_SHOP:
        n = snprintf(s, sizeof s, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     SHOP_OFFSET_S < 0 ? '-' : '+', abs(SHOP_OFFSET_S) / 3600,
                     abs(SHOP_OFFSET_S) % 3600 / 60);
        break;
    default:
        n = snprintf(s, sizeof s, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        break;
    }
    sb_put(b, s, (size_t)n);
}
