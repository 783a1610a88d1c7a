/* Mapping engine: records per second of ig_mapping_apply (internal) for the
 * 10-field HubSpot contacts mapping with 5 transform rules of
 * bench/mapping10.json, on 1,000 HubSpot-shaped records, against the same
 * mapping hand-written with json-c (the floor a compiled mapping could
 * reach: ten lookups and copies, lowercase, trim, uppercase, a value map,
 * an RFC 3339 to epoch-ms conversion). Reps interleave the two.
 *
 *   bench_mapping MAPPING10_JSON REPS
 * Output: mapping impl=lib|hand rep=R records_per_s=X */
#include <ctype.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "integrations/integrations.h"
#include "mapping.h"

#define NREC 1000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const FIRST[] = {" Ann", "Bob ", "Chloe", "Dag", "Eva", "Finn"};
static const char *const LAST[] = {"Smith", "Hansen", "Berg", "Olsen", "Dahl"};
static const char *const LIFE[] = {"subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                                   "customer"};
static const char *const COUNTRY[] = {"Norway", "Sweden", "Denmark", "Germany"};

static json_object *make_record(int i)
{
    char buf[128];
    json_object *p = json_object_new_object();
    snprintf(buf, sizeof buf, "%s.%s%d@Example.COM", FIRST[i % 6][0] == ' ' ? "ann" : FIRST[i % 6], LAST[i % 5], i);
    json_object_object_add(p, "city", json_object_new_string("Oslo"));
    json_object_object_add(p, "company", json_object_new_string("Nordic Widgets AS"));
    json_object_object_add(p, "country", json_object_new_string(COUNTRY[i % 4]));
    json_object_object_add(p, "createdate", json_object_new_string("2023-12-01T08:00:00.000Z"));
    json_object_object_add(p, "email", json_object_new_string(buf));
    json_object_object_add(p, "firstname", json_object_new_string(FIRST[i % 6]));
    snprintf(buf, sizeof buf, "%d", 1001 + i);
    json_object_object_add(p, "hs_object_id", json_object_new_string(buf));
    json_object_object_add(p, "jobtitle", json_object_new_string("Buyer"));
    snprintf(buf, sizeof buf, "2024-01-%02dT%02d:%02d:17.000Z", 1 + i % 28, i % 24, i % 60);
    json_object_object_add(p, "lastmodifieddate", json_object_new_string(buf));
    json_object_object_add(p, "lastname", json_object_new_string(LAST[i % 5]));
    json_object_object_add(p, "lifecyclestage", json_object_new_string(LIFE[i % 6]));
    json_object_object_add(p, "phone", json_object_new_string("+47 22 33 44 55"));
    json_object *r = json_object_new_object();
    snprintf(buf, sizeof buf, "%d", 1001 + i);
    json_object_object_add(r, "id", json_object_new_string(buf));
    json_object_object_add(r, "properties", p);
    json_object_object_add(r, "createdAt", json_object_new_string("2023-12-01T08:00:00.000Z"));
    json_object_object_add(r, "updatedAt", json_object_get(json_object_object_get(p, "lastmodifieddate")));
    json_object_object_add(r, "archived", json_object_new_boolean(0));
    return r;
}

/* ---- the hand-written mapping --------------------------------------------- */

static void copy(json_object *out, const char *to, json_object *props, const char *from)
{
    json_object *v = json_object_object_get(props, from);
    if (v)
        json_object_object_add(out, to, json_object_get(v));
}

static void recase(json_object *out, const char *k, int upper)
{
    json_object *v = json_object_object_get(out, k);
    if (!v || !json_object_is_type(v, json_type_string))
        return;
    char buf[256];
    const char *s = json_object_get_string(v);
    size_t n = strlen(s);
    if (n >= sizeof buf)
        return;
    for (size_t i = 0; i <= n; i++)
        buf[i] = (char)(upper ? toupper((unsigned char)s[i]) : tolower((unsigned char)s[i]));
    json_object_object_add(out, k, json_object_new_string_len(buf, (int)n));
}

/* Days since 1970-01-01 of a civil date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int num(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* "YYYY-MM-DDTHH:MM:SS[.mmm]Z" only: what the records carry. */
static int64_t parse_rfc3339_ms(const char *s)
{
    if (strlen(s) < 20 || s[4] != '-' || s[10] != 'T')
        return -1;
    int64_t t = days_from_civil(num(s, 4), num(s + 5, 2), num(s + 8, 2)) * 86400 + num(s + 11, 2) * 3600 +
                num(s + 14, 2) * 60 + num(s + 17, 2);
    return t * 1000 + (s[19] == '.' ? num(s + 20, 3) : 0);
}

static json_object *hand_map(json_object *rec)
{
    json_object *p = json_object_object_get(rec, "properties"), *o = json_object_new_object();
    copy(o, "email", p, "email");
    copy(o, "first_name", p, "firstname");
    copy(o, "last_name", p, "lastname");
    copy(o, "phone", p, "phone");
    copy(o, "company_name", p, "company");
    copy(o, "city", p, "city");
    copy(o, "country", p, "country");
    copy(o, "job_title", p, "jobtitle");
    copy(o, "lifecycle_stage", p, "lifecyclestage");
    copy(o, "external_updated_at", rec, "updatedAt");
    recase(o, "email", 0);
    json_object *v = json_object_object_get(o, "first_name");
    if (v) {
        const char *s = json_object_get_string(v);
        size_t n = strlen(s);
        while (n && isspace((unsigned char)s[n - 1]))
            n--;
        while (n && isspace((unsigned char)*s))
            s++, n--;
        json_object_object_add(o, "first_name", json_object_new_string_len(s, (int)n));
    }
    recase(o, "country", 1);
    static const char *const from[] = {"subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
                                       "opportunity", "customer"};
    static const char *const to[] = {"subscriber", "lead", "mql", "sql", "opportunity", "customer"};
    v = json_object_object_get(o, "lifecycle_stage");
    const char *mapped = "other";
    for (int i = 0; v && i < 6; i++)
        if (!strcmp(json_object_get_string(v), from[i]))
            mapped = to[i];
    json_object_object_add(o, "lifecycle_stage", json_object_new_string(mapped));
    v = json_object_object_get(o, "external_updated_at");
    if (v)
        json_object_object_add(o, "external_updated_at", json_object_new_int64(parse_rfc3339_ms(json_object_get_string(v))));
    return o;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_mapping MAPPING10_JSON REPS\n");
        return 2;
    }
    int reps = atoi(argv[2]);
    json_object *file = json_object_from_file(argv[1]), *spec = json_object_new_object();
    json_object_object_add(spec, "source_entity", json_object_new_string("contacts"));
    json_object_object_add(spec, "target_entity", json_object_new_string("contacts"));
    json_object_object_add(spec, "field_map", json_object_get(json_object_object_get(file, "field_map")));
    json_object_object_add(spec, "transform_rules", json_object_get(json_object_object_get(file, "transform_rules")));
    ig_mapping *m = NULL;
    if (ig_mapping_compile(spec, "mapping", &m)) {
        fprintf(stderr, "bench_mapping: compile: %s\n", integ_errmsg());
        return 1;
    }
    json_object *recs[NREC];
    for (int i = 0; i < NREC; i++)
        recs[i] = make_record(i);
    /* Both must agree on every record. */
    for (int i = 0; i < NREC; i++) {
        json_object *a = NULL, *b = hand_map(recs[i]);
        if (ig_mapping_apply(m, IG_PULL, recs[i], &a)) {
            fprintf(stderr, "bench_mapping: apply: %s\n", integ_errmsg());
            return 1;
        }
        if (!json_object_equal(a, b)) {
            fprintf(stderr, "bench_mapping: the engine and the hand-written mapping differ:\n  %s\n  %s\n",
                    json_object_to_json_string(a), json_object_to_json_string(b));
            return 1;
        }
        json_object_put(a);
        json_object_put(b);
    }
    long loops[2] = {0, 0};
    for (int rep = -1; rep < reps; rep++) {
        for (int impl = 0; impl < 2; impl++) {
            long n = rep < 0 ? 20 : loops[impl];
            double t0 = now_s();
            for (long k = 0; k < n; k++)
                for (int i = 0; i < NREC; i++) {
                    json_object *out = NULL;
                    if (impl == 0)
                        ig_mapping_apply(m, IG_PULL, recs[i], &out);
                    else
                        out = hand_map(recs[i]);
                    json_object_put(out);
                }
            double r = (double)n * NREC / (now_s() - t0);
            if (rep < 0)
                loops[impl] = (long)(r * 0.3 / NREC) + 1;
            else
                printf("mapping impl=%s rep=%d records_per_s=%.0f\n", impl ? "hand" : "lib", rep, r);
        }
    }
    fflush(stdout);
    for (int i = 0; i < NREC; i++)
        json_object_put(recs[i]);
    ig_mapping_free(m);
    json_object_put(spec);
    json_object_put(file);
    return 0;
}
