/* webhook_cli: reads webhook test cases as JSON lines on stdin, as written by
 * tests/oracles/webhook_oracle.mjs:
 *   {"scheme", "secret", "method", "url", "headers": [[name, value], ...],
 *    "body_b64", "now", "tolerance", "expect", ...}
 * calls integ_webhook_verify for each and prints one line per case:
 *   <verdict>\t<message>
 * where verdict is ok, invalid, signature, replay (INTEG_OK, INTEG_EINVAL,
 * INTEG_ESIGNATURE, INTEG_EREPLAY) or rc:<n> for anything else. A line that
 * is not a case prints "bad-case\t<why>". Exit status 0 unless stdin fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "integrations/integrations.h"

#define MAX_HEADERS 1100

static const char *verdict(int rc, char *buf, size_t size)
{
    switch (rc) {
    case INTEG_OK:
        return "ok";
    case INTEG_EINVAL:
        return "invalid";
    case INTEG_ESIGNATURE:
        return "signature";
    case INTEG_EREPLAY:
        return "replay";
    default:
        snprintf(buf, size, "rc:%d", rc);
        return buf;
    }
}

static const char *str_field(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static void print_msg(const char *verdict_s, const char *msg)
{
    fputs(verdict_s, stdout);
    fputc('\t', stdout);
    for (const char *p = msg; *p; p++)
        fputc(*p == '\n' || *p == '\t' ? ' ' : *p, stdout);
    fputc('\n', stdout);
}

static void run_case(const char *line)
{
    json_object *c = json_tokener_parse(line);
    if (!c || !json_object_is_type(c, json_type_object)) {
        print_msg("bad-case", "not a JSON object");
        json_object_put(c);
        return;
    }
    const char *scheme = str_field(c, "scheme"), *secret = str_field(c, "secret");
    const char *method = str_field(c, "method"), *url = str_field(c, "url");
    const char *b64 = str_field(c, "body_b64");
    json_object *hdrs = NULL, *now_o = NULL, *tol_o = NULL;
    json_object_object_get_ex(c, "headers", &hdrs);
    json_object_object_get_ex(c, "now", &now_o);
    json_object_object_get_ex(c, "tolerance", &tol_o);
    if (!scheme || !secret || !b64 || !json_object_is_type(hdrs, json_type_array)) {
        print_msg("bad-case", "missing scheme, secret, body_b64 or headers");
        json_object_put(c);
        return;
    }
    size_t n = json_object_array_length(hdrs);
    if (n > MAX_HEADERS)
        n = MAX_HEADERS;
    const char **names = calloc(n + 1, sizeof *names), **values = calloc(n + 1, sizeof *values);
    size_t b64_len = strlen(b64);
    unsigned char *body = malloc(b64_len / 4 * 3 + 3);
    size_t body_len = 0;
    if (!names || !values || !body) {
        print_msg("bad-case", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *pair = json_object_array_get_idx(hdrs, i);
        json_object *k = json_object_array_get_idx(pair, 0), *v = json_object_array_get_idx(pair, 1);
        names[i] = k ? json_object_get_string(k) : "";
        values[i] = v ? json_object_get_string(v) : "";
    }
    if (sodium_base642bin(body, b64_len / 4 * 3 + 3, b64, b64_len, NULL, &body_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        print_msg("bad-case", "body_b64 is not base64");
        goto out;
    }
    int64_t now = now_o ? json_object_get_int64(now_o) : 0;
    int tol = tol_o ? json_object_get_int(tol_o) : 0;
    int rc = integ_webhook_verify(scheme, secret, method, url, names, values, n, body, body_len,
                                  now, tol);
    char buf[32];
    print_msg(verdict(rc, buf, sizeof buf), rc ? integ_errmsg() : "");
out:
    free(names);
    free(values);
    free(body);
    json_object_put(c);
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    if (sodium_init() < 0)
        return 2;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (!len)
            continue;
        run_case(line);
    }
    free(line);
    fflush(stdout);
    return ferror(stdin) ? 1 : 0;
}
