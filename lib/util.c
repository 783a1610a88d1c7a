/* Ids, time and small string helpers. */
#include <ctype.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

int64_t ig_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ig_deadline_after_us(struct timespec *ts, int64_t us) { ig_deadline_on(CLOCK_MONOTONIC, ts, us); }

void ig_deadline_on(clockid_t clock, struct timespec *ts, int64_t us)
{
    clock_gettime(clock, ts);
    ts->tv_sec += (time_t)(us / 1000000);
    ts->tv_nsec += (long)(us % 1000000) * 1000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void uuid7_format(char out[37], int64_t ms, int counter, const unsigned char *rnd10)
{
    unsigned char b[16];
    if (rnd10)
        memcpy(b + 6, rnd10, 10);
    else
        randombytes_buf(b + 6, 10);
    if (counter >= 0) {
        b[6] = (unsigned char)((counter >> 8) & 0x0f);
        b[7] = (unsigned char)(counter & 0xff);
    }
    uint64_t t = (uint64_t)ms;
    for (int i = 5; i >= 0; i--) {
        b[i] = (unsigned char)(t & 0xff);
        t >>= 8;
    }
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

int ig_in_list(const char *s, const char *const *list)
{
    for (; s && *list; list++)
        if (!strcmp(s, *list))
            return 1;
    return 0;
}

void ig_uuid7(char out[37], int64_t ms) { uuid7_format(out, ms, -1, NULL); }

void ig_uuid7_next(_Atomic uint64_t *state, const unsigned char key[32], char out[37], int64_t now_ms)
{
    uint64_t last = atomic_load(state), next;
    do {
        next = (uint64_t)now_ms << 12;
        if (next <= last)
            next = last + 1;
    } while (!atomic_compare_exchange_weak(state, &last, next));
    unsigned char nonce[crypto_stream_chacha20_NONCEBYTES], rnd[10];
    for (int i = 0; i < 8; i++)
        nonce[i] = (unsigned char)(next >> (8 * i));
    crypto_stream_chacha20(rnd, sizeof rnd, nonce, key);
    uuid7_format(out, (int64_t)(next >> 12), (int)(next & 0xfff), rnd);
}

void ig_rfc3339(char out[32], int64_t ms, int with_ms)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* Bounded fields keep the text within 32 bytes (and the compiler sure of it). */
    unsigned y = (unsigned)(tm.tm_year + 1900) % 10000u, mo = (unsigned)(tm.tm_mon + 1) % 100u,
             d = (unsigned)tm.tm_mday % 100u, h = (unsigned)tm.tm_hour % 100u,
             mi = (unsigned)tm.tm_min % 100u, se = (unsigned)tm.tm_sec % 100u,
             f = (unsigned)frac % 1000u;
    if (with_ms)
        snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", y, mo, d, h, mi, se, f);
    else
        snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02uZ", y, mo, d, h, mi, se);
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int ig_parse_rfc3339(const char *s, int64_t *out_ms)
{
    int Y, M, D, h, m, sec, ms = 0;
    if (!s || strlen(s) < 20)
        return -1;
    if (digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &m) || s[16] != ':' ||
        digits(s + 17, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (D > mdays[M - 1])
        return -1;
    if (M == 2 && D == 29 && !((Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0))
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        int n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n < 3)
                ms = ms * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0)
            return -1;
        while (n < 3) {
            ms *= 10;
            n++;
        }
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        off = (int64_t)(oh * 60 + om) * 60000;
        if (*p == '+')
            off = -off;
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    if (sec == 60)
        sec = 59; /* leap second: clamp */
    int64_t days = days_from_civil(Y, (unsigned)M, (unsigned)D);
    *out_ms = ((days * 24 + h) * 60 + m) * 60000 + (int64_t)sec * 1000 + ms + off;
    return 0;
}

char *ig_strdup(const char *s) { return s ? strdup(s) : NULL; }

int ig_valid_token(const char *s, size_t max)
{
    if (!s || !*s)
        return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (n >= max || s[n] <= 0x20 || s[n] >= 0x7f)
            return 0;
    }
    return 1;
}
