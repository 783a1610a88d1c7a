/* Pull-sync benchmark: N HubSpot contacts from the sandbox over loopback
 * (100 per page, the default 6-field mapping) into a fresh SQLite file.
 * Prints one line: records, seconds, records/s, peak RSS (KiB).
 *
 *   bench_pull_sync SANDBOX_BINARY N
 *
 * The definition is a copy of hubspot-crm without its rate budget (the
 * real one would pace the run at 100 requests per 10 s). Run it in its own
 * process per N: peak RSS is the process's. */
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
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
    if (argc < 3) {
        fprintf(stderr, "usage: bench_pull_sync SANDBOX_BINARY N\n");
        return 2;
    }
    long n = atol(argv[2]);
    int out[2], in[2];
    if (pipe(out) || pipe(in))
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(in[0], 0);
        close(out[0]);
        close(in[1]);
        char records[64];
        snprintf(records, sizeof records, "hubspot:contacts=%ld", n);
        execl(argv[1], argv[1], "--records", records, "--token", TOKEN, "--max-seconds", "1200", "--stdin-lifetime",
              "--unlimited", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    char line[256] = "", url[128];
    FILE *f = fdopen(out[0], "r");
    if (!f || !fgets(line, sizeof line, f) || !strstr(line, "http://"))
        return 1;
    snprintf(url, sizeof url, "%s", strstr(line, "http://"));
    url[strcspn(url, "\r\n")] = '\0';

    char db[64], key[64] = "", opts[1024];
    snprintf(db, sizeof db, "/tmp/bench-pull-%d.db", (int)getpid());
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
    close(in[1]);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    char p[80];
    unlink(db);
    snprintf(p, sizeof p, "%s-wal", db);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", db);
    unlink(p);
    return created == n ? 0 : 1;
}
