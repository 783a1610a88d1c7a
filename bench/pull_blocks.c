/* Pull sync, baseline (a): the building blocks alone, timed separately and
 * added up into a serial limit. The same pages the library fetches (HubSpot
 * contacts, 100 per page, the ten properties of bench/mapping10.json):
 *   fetch  — libcurl, one reused easy handle (keep-alive), into a buffer;
 *   parse  — json_tokener_parse of the page;
 *   write  — raw SQLite upsert of the page's pre-mapped rows (mapped and
 *            serialised outside the timed sections), one transaction per
 *            page, prepared statement reused, WAL + synchronous=NORMAL.
 * serial limit = fetch + parse + write; records/s = N / that.
 * For information, (c): the same pages written as the library's data model
 * — per record an entities row and an entity_links row (the link holds the
 * payload hash, the times and the merge base), same DDL and indexes,
 * serialised outside the timed section — model_write; the serial limit of
 * that model = fetch + parse + model_write.
 *
 *   bench_pull_blocks SANDBOX_URL N MAPPING10_JSON DIR
 * Output: pull_blocks records=N fetch_s=.. parse_s=.. write_s=.. serial_s=.. records_per_s=..
 *         model_write_s=.. model_records_per_s=.. peak_rss_kib=.. */
#include <curl/curl.h>
#include <json-c/json.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct buf {
    char *p;
    size_t n, cap;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *u)
{
    struct buf *b = u;
    size_t n = sz * nm;
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

static json_object *get_path(json_object *o, const char *path)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *save = NULL, *k = strtok_r(tmp, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
        o = json_object_object_get(o, k);
    return o;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_pull_blocks SANDBOX_URL N MAPPING10_JSON DIR\n");
        return 2;
    }
    long n = atol(argv[2]);
    json_object *m10 = json_object_from_file(argv[3]);
    if (!m10)
        return 1;
    json_object *field_map = json_object_object_get(m10, "field_map");
    const char *props = json_object_get_string(json_object_object_get(m10, "properties"));
    char db_path[1024];
    snprintf(db_path, sizeof db_path, "%s/bench-blocks-%d.db", argv[4], (int)getpid());

    sqlite3 *db = NULL;
    sqlite3_stmt *up = NULL, *begin = NULL, *commit = NULL;
    if (sqlite3_open(db_path, &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     "CREATE TABLE contacts (external_id TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL,"
                     " remote_updated_at TEXT);",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO contacts VALUES (?,?,?) ON CONFLICT(external_id) DO UPDATE SET"
                           " data=excluded.data, remote_updated_at=excluded.remote_updated_at",
                           -1, &up, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_pull_blocks: sqlite: %s\n", sqlite3_errmsg(db));
        return 1;
    }

    /* (c) The library's data model written raw: per record an entities row
     * and an entity_links row (the link carries the hash, times and the
     * merge base), with the DDL and indexes lib/store_schema.c generates,
     * pre-serialised, one transaction per page. */
    char db2_path[1040];
    snprintf(db2_path, sizeof db2_path, "%s/bench-blocks-model-%d.db", argv[4], (int)getpid());
    sqlite3 *db2 = NULL;
    sqlite3_stmt *ins_e = NULL, *ins_l = NULL, *begin2 = NULL, *commit2 = NULL;
    if (sqlite3_open(db2_path, &db2) != SQLITE_OK ||
        sqlite3_exec(db2,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON;"
                     "CREATE TABLE entities (id TEXT PRIMARY KEY NOT NULL, tenant_id TEXT, entity TEXT,"
                     " deleted INTEGER, updated_at_ms INTEGER, version INTEGER, data TEXT NOT NULL, blob BLOB);"
                     "CREATE INDEX ix_entities_tenant_id_entity_updated_at_ms ON entities (tenant_id, entity,"
                     " updated_at_ms);"
                     "CREATE TABLE entity_links (id TEXT PRIMARY KEY NOT NULL, tenant_id TEXT, integration_id TEXT,"
                     " entity TEXT, external_id TEXT, local_id TEXT, pending INTEGER, data TEXT NOT NULL, blob BLOB);"
                     "CREATE UNIQUE INDEX ux_entity_links_integration_id_entity_external_id ON entity_links"
                     " (integration_id, entity, external_id);"
                     "CREATE INDEX ix_entity_links_local_id ON entity_links (local_id);",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db2, "INSERT INTO entities VALUES (?,'t-bench','contacts',0,?,1,?,NULL)", -1, &ins_e,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db2, "INSERT INTO entity_links VALUES (?,'t-bench',?,'contacts',?,?,0,?,NULL)", -1,
                           &ins_l, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db2, "BEGIN IMMEDIATE", -1, &begin2, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db2, "COMMIT", -1, &commit2, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_pull_blocks: sqlite (model): %s\n", sqlite3_errmsg(db2));
        return 1;
    }
    const char *integ_id = "01a21500-0000-7000-8000-0000000000aa";

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Authorization: Bearer bench-token");
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    struct buf body = {0};
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");

    double t_fetch = 0, t_parse = 0, t_write = 0, t_model = 0;
    char *erows[100], *lrows[100], eids[100][40], lids[100][40];
    long got = 0, pages = 0;
    char after[64] = "", url[2048];
    const char *ids[100];
    char *datas[100];
    const char *upds[100];
    for (;;) {
        snprintf(url, sizeof url, "%s/hubspot/crm/v3/objects/contacts?limit=100&properties=%s&archived=false%s%s",
                 argv[1], props, after[0] ? "&after=" : "", after);
        curl_easy_setopt(h, CURLOPT_URL, url);
        body.n = 0;
        double t0 = now_s();
        CURLcode cc = curl_easy_perform(h);
        double t1 = now_s();
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK || status != 200) {
            fprintf(stderr, "bench_pull_blocks: GET %s: %s %ld\n", url, curl_easy_strerror(cc), status);
            return 1;
        }
        json_object *page = json_tokener_parse(body.p);
        double t2 = now_s();
        t_fetch += t1 - t0;
        t_parse += t2 - t1;
        /* Pre-mapping (untimed): the same ten fields the library maps. */
        json_object *results = json_object_object_get(page, "results");
        size_t k = json_object_array_length(results);
        json_object *mapped[100];
        for (size_t i = 0; i < k && i < 100; i++) {
            json_object *rec = json_object_array_get_idx(results, i), *o = json_object_new_object();
            json_object_object_foreach(field_map, to, from)
            {
                json_object *v = get_path(rec, json_object_get_string(from));
                if (v)
                    json_object_object_add(o, to, json_object_get(v));
            }
            mapped[i] = o;
            ids[i] = json_object_get_string(json_object_object_get(rec, "id"));
            upds[i] = json_object_get_string(json_object_object_get(rec, "updatedAt"));
            datas[i] = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
            /* the library's two records for it, with ids shaped like its UUIDv7s */
            long seq = got + (long)i;
            snprintf(eids[i], sizeof eids[i], "01a21500-%04lx-7000-8000-%012lx", (seq >> 16) & 0xffff, seq);
            snprintf(lids[i], sizeof lids[i], "01a21501-%04lx-7000-8000-%012lx", (seq >> 16) & 0xffff, seq);
            size_t cap = 2 * strlen(datas[i]) + 1024;
            erows[i] = malloc(cap);
            lrows[i] = malloc(cap);
            snprintf(erows[i], cap,
                     "{\"id\":\"%s\",\"tenant_id\":\"t-bench\",\"entity\":\"contacts\",\"data\":%s,"
                     "\"updated_at\":\"2026-11-25T12:00:00.000Z\",\"updated_at_ms\":1764072000000,\"deleted\":false,"
                     "\"version\":1,\"origin\":\"sync\"}",
                     eids[i], datas[i]);
            snprintf(lrows[i], cap,
                     "{\"id\":\"%s\",\"tenant_id\":\"t-bench\",\"integration_id\":\"%s\",\"entity\":\"contacts\","
                     "\"local_entity\":\"contacts\",\"external_id\":\"%s\",\"local_id\":\"%s\","
                     "\"hash\":\"0123456789abcdef0123456789abcdef\",\"remote_updated_at\":\"%s\","
                     "\"remote_updated_at_ms\":1764072000000,\"synced_at\":\"2026-11-25T12:00:00Z\","
                     "\"pending\":false,\"seen_run\":\"01a21502-0000-7000-8000-000000000001\",\"base\":%s,"
                     "\"local_version\":1}",
                     lids[i], integ_id, ids[i], eids[i], upds[i] ? upds[i] : "", datas[i]);
        }
        double t3 = now_s();
        sqlite3_step(begin);
        sqlite3_reset(begin);
        for (size_t i = 0; i < k && i < 100; i++) {
            sqlite3_bind_text(up, 1, ids[i], -1, SQLITE_STATIC);
            sqlite3_bind_text(up, 2, datas[i], -1, SQLITE_STATIC);
            sqlite3_bind_text(up, 3, upds[i], -1, SQLITE_STATIC);
            if (sqlite3_step(up) != SQLITE_DONE) {
                fprintf(stderr, "bench_pull_blocks: upsert: %s\n", sqlite3_errmsg(db));
                return 1;
            }
            sqlite3_reset(up);
        }
        if (sqlite3_step(commit) != SQLITE_DONE) {
            fprintf(stderr, "bench_pull_blocks: commit: %s\n", sqlite3_errmsg(db));
            return 1;
        }
        sqlite3_reset(commit);
        double t4 = now_s();
        t_write += t4 - t3;
        sqlite3_step(begin2);
        sqlite3_reset(begin2);
        for (size_t i = 0; i < k && i < 100; i++) {
            sqlite3_bind_text(ins_e, 1, eids[i], -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins_e, 2, 1764072000000);
            sqlite3_bind_text(ins_e, 3, erows[i], -1, SQLITE_STATIC);
            sqlite3_bind_text(ins_l, 1, lids[i], -1, SQLITE_STATIC);
            sqlite3_bind_text(ins_l, 2, integ_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(ins_l, 3, ids[i], -1, SQLITE_STATIC);
            sqlite3_bind_text(ins_l, 4, eids[i], -1, SQLITE_STATIC);
            sqlite3_bind_text(ins_l, 5, lrows[i], -1, SQLITE_STATIC);
            if (sqlite3_step(ins_e) != SQLITE_DONE || sqlite3_step(ins_l) != SQLITE_DONE) {
                fprintf(stderr, "bench_pull_blocks: insert (model): %s\n", sqlite3_errmsg(db2));
                return 1;
            }
            sqlite3_reset(ins_e);
            sqlite3_reset(ins_l);
        }
        if (sqlite3_step(commit2) != SQLITE_DONE) {
            fprintf(stderr, "bench_pull_blocks: commit (model): %s\n", sqlite3_errmsg(db2));
            return 1;
        }
        sqlite3_reset(commit2);
        t_model += now_s() - t4;
        for (size_t i = 0; i < k && i < 100; i++) {
            free(datas[i]);
            free(erows[i]);
            free(lrows[i]);
            json_object_put(mapped[i]);
        }
        got += (long)k;
        pages++;
        json_object *next = get_path(page, "paging.next.after");
        if (next)
            snprintf(after, sizeof after, "%s", json_object_get_string(next));
        json_object_put(page);
        if (!next)
            break;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double serial = t_fetch + t_parse + t_write;
    double serial_model = t_fetch + t_parse + t_model;
    printf("pull_blocks records=%ld pages=%ld fetch_s=%.3f parse_s=%.3f write_s=%.3f serial_s=%.3f records_per_s=%.0f "
           "model_write_s=%.3f model_records_per_s=%.0f peak_rss_kib=%ld\n",
           got, pages, t_fetch, t_parse, t_write, serial, (double)got / serial, t_model, (double)got / serial_model,
           ru.ru_maxrss);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    free(body.p);
    sqlite3_finalize(up);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_close(db);
    sqlite3_finalize(ins_e);
    sqlite3_finalize(ins_l);
    sqlite3_finalize(begin2);
    sqlite3_finalize(commit2);
    sqlite3_close(db2);
    json_object_put(m10);
    const char *paths[] = {db_path, db2_path};
    for (int i = 0; i < 2; i++) {
        char p[1100];
        unlink(paths[i]);
        snprintf(p, sizeof p, "%s-wal", paths[i]);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", paths[i]);
        unlink(p);
    }
    return got == n ? 0 : 1;
}
