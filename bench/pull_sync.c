/* Pull-sync benchmark: N HubSpot contacts from the sandbox over loopback
 * (100 per page) into a fresh SQLite file, through integ_sync with the
 * 10-field mapping of bench/mapping10.json (field_map only: the transform
 * rules belong to the mapping benchmark). Prints one line: records,
 * seconds, records/s, peak RSS (KiB).
 *
 *   bench_pull_sync SANDBOX_URL N MAPPING10_JSON DIR
 *
 * The sandbox is started by the caller (bench/run.py) with --unlimited and
 * --token bench-token. The definition is a copy of hubspot-crm without its
 * rate budget (the real one would pace the run at 100 requests per 10 s),
 * asking for the ten properties and mapping them. Run it in its own
 * process per N: peak RSS is the process's. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "integrations/integrations.h"

#define TOKEN "bench-token"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *step)
{
    fprintf(stderr, "bench_pull_sync: %s: %s\n", step, integ_errmsg());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_pull_sync SANDBOX_URL N MAPPING10_JSON DIR\n");
        return 2;
    }
    long n = atol(argv[2]);
    char url[256];
    snprintf(url, sizeof url, "%s", argv[1]);
    json_object *m10 = json_object_from_file(argv[3]);
    if (!m10)
        return 1;
    const char *dir = argv[4];
    char db[1024], key[64] = "", opts[2048];
    snprintf(db, sizeof db, "%s/bench-pull-%d.db", dir, (int)getpid());
    char *k = NULL;
    integ_generate_master_key(&k);
    snprintf(key, sizeof key, "%s", k);
    integ_free(k);
    snprintf(opts, sizeof opts,
             "{\"store\":\"sqlite:%s\",\"master_key\":\"%s\",\"http\":{\"allow_private_networks\":true},"
             "\"base_url_overrides\":{\"hubspotbench-crm\":\"%s/hubspot\"}}",
             db, key, url);
    integ_ctx *ctx = NULL;
    integ_session *s = NULL;
    char *res = NULL;
    if (integ_ctx_open(&ctx, opts))
        return die("open");
    if (integ_definition_get(ctx, "hubspot-crm", &res))
        return die("definition");
    json_object *m = json_tokener_parse(res);
    integ_free(res);
    const char *added[] = {"id", "auth_type", "auth_types", "has_app_credentials", "created_at", "updated_at", "rate_limit"};
    for (size_t i = 0; i < sizeof added / sizeof *added; i++)
        json_object_object_del(m, added[i]);
    json_object_object_add(m, "key", json_object_new_string("hubspotbench-crm"));
    json_object *contacts = json_object_object_get(json_object_object_get(m, "entities"), "contacts");
    json_object_object_add(json_object_object_get(json_object_object_get(contacts, "list"), "query"), "properties",
                           json_object_get(json_object_object_get(m10, "properties")));
    json_object *dm = json_object_new_object();
    json_object_object_add(dm, "field_map", json_object_get(json_object_object_get(m10, "field_map")));
    json_object_object_add(contacts, "default_mapping", dm);
    if (integ_definition_register(ctx, json_object_to_json_string(m), NULL))
        return die("register");
    json_object_put(m);
    integ_session_open(&s, ctx, "bench", "bench", "[\"admin\"]");
    if (integ_integration_create(s, "{\"integration_definition_id\":\"hubspotbench-crm\",\"credentials\":{\"api_key\":\"" TOKEN "\"}}", &res))
        return die("create");
    json_object *it = json_tokener_parse(res);
    char id[64];
    snprintf(id, sizeof id, "%s", json_object_get_string(json_object_object_get(it, "id")));
    json_object_put(it);
    integ_free(res);

    double t0 = now_s();
    if (integ_sync(s, id, "{\"entity\":\"contacts\",\"full\":true}", NULL, NULL, &res))
        return die("sync");
    double secs = now_s() - t0;
    json_object *r = json_tokener_parse(res);
    long created = (long)json_object_get_int64(json_object_object_get(r, "records_created"));
    json_object_put(r);
    integ_free(res);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("pull_sync records=%ld created=%ld seconds=%.3f records_per_s=%.0f peak_rss_kib=%ld\n", n, created, secs,
           (double)n / secs, ru.ru_maxrss);
    integ_session_close(s);
    integ_ctx_close(ctx);
    json_object_put(m10);
    char p[1100];
    unlink(db);
    snprintf(p, sizeof p, "%s-wal", db);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", db);
    unlink(p);
    return created == n ? 0 : 1;
}
