/* Pull sync, baseline (a): the building blocks alone, timed separately and
 * added up into a serial limit. The same pages the library fetches (HubSpot
 * contacts, 100 per page, the ten properties of bench/mapping10.json):
 *   fetch  — libcurl, one reused easy handle (keep-alive), into a buffer;
 *   parse  — json_tokener_parse of the page;
 *   write  — raw SQLite upsert of the page's pre-mapped rows (mapped and
 *            serialised outside the timed sections), one transaction per
 *            page, prepared statement reused, WAL + synchronous=NORMAL.
 * serial limit = fetch + parse + write; records/s = N / that.
 *
 *   bench_pull_blocks SANDBOX_URL N MAPPING10_JSON DIR
 * Output: pull_blocks records=N fetch_s=.. parse_s=.. write_s=.. serial_s=.. records_per_s=.. peak_rss_kib=.. */
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

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Authorization: Bearer bench-token");
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    struct buf body = {0};
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");

    double t_fetch = 0, t_parse = 0, t_write = 0;
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
        t_write += now_s() - t3;
        for (size_t i = 0; i < k && i < 100; i++) {
            free(datas[i]);
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
    printf("pull_blocks records=%ld pages=%ld fetch_s=%.3f parse_s=%.3f write_s=%.3f serial_s=%.3f records_per_s=%.0f "
           "peak_rss_kib=%ld\n",
           got, pages, t_fetch, t_parse, t_write, serial, (double)got / serial, ru.ru_maxrss);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    free(body.p);
    sqlite3_finalize(up);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_close(db);
    json_object_put(m10);
    char p[1100];
    unlink(db_path);
    snprintf(p, sizeof p, "%s-wal", db_path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", db_path);
    unlink(p);
    return got == n ? 0 : 1;
}
