/* tools/integctl as a user runs it: exit statuses, where usage goes, that
 * catalog and definition need no master key and create no file, and that a
 * category is escaped into the filter.
 *
 *   test_integctl PATH/TO/integctl
 *
 * Each run is a child process (posix_spawn) in a fresh temporary directory,
 * with INTEG_MASTER_KEY and INTEG_OPTIONS removed from its environment
 * unless a case sets them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

extern char **environ;

static char integctl[PATH_MAX];

struct run {
    int status; /* exit status, or -1 if it did not exit normally */
    char out[1 << 17];
    char err[1 << 14];
};

static struct run r;

static void read_file(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Run integctl with args (NULL-terminated) in `dir`; `env_add` is NULL or
 * one "NAME=value" added to the environment. Fills r. */
static void run_in(const char *dir, const char *env_add, const char *const *args)
{
    char *argv[8];
    size_t argc = 0;
    argv[argc++] = integctl;
    for (; args && *args && argc < 7; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;

    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + 2, sizeof *envp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "INTEG_MASTER_KEY=", 17) && strncmp(environ[i], "INTEG_OPTIONS=", 14))
            envp[m++] = environ[i];
    if (env_add)
        envp[m++] = (char *)env_add;
    envp[m] = NULL;

    char out_path[PATH_MAX + 16], err_path[PATH_MAX + 16];
    snprintf(out_path, sizeof out_path, "%s.out", dir);
    snprintf(err_path, sizeof err_path, "%s.err", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    pid_t pid;
    int rc = posix_spawn(&pid, integctl, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    r.status = -1;
    if (rc) {
        fprintf(stderr, "  posix_spawn %s: %s\n", integctl, strerror(rc));
        CHECK(!"spawned");
        return;
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(ws))
        r.status = WEXITSTATUS(ws);
    read_file(out_path, r.out, sizeof r.out);
    read_file(err_path, r.err, sizeof r.err);
    unlink(out_path);
    unlink(err_path);
}

/* A fresh empty directory under TMPDIR (or /tmp). */
static void make_dir(char *dir, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, cap, "%s/integctl-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
}

/* Number of entries (besides . and ..) in dir. */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[PATH_MAX * 2];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

/* Run in a fresh directory; the directory must stay empty (no store file). */
static void run_clean(const char *env_add, const char *const *args)
{
    char dir[PATH_MAX];
    make_dir(dir, sizeof dir);
    run_in(dir, env_add, args);
    if (entries(dir) != 0) {
        fprintf(stderr, "  integctl %s left files in its working directory\n", args && args[0] ? args[0] : "");
        CHECK(!"no file created");
    }
    remove_dir(dir);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_help(void)
{
    run_clean(NULL, ARGS("--help"));
    CHECK(r.status == 0);
    CHECK(strncmp(r.out, "usage: integctl", 15) == 0);
    CHECK_STR(r.err, "");
    run_clean(NULL, ARGS("-h"));
    CHECK(r.status == 0);
    CHECK(strncmp(r.out, "usage: integctl", 15) == 0);
    CHECK_STR(r.err, "");
}

static void test_bad_usage(void)
{
    const char *const *cases[] = {
        ARGS("bogus"), ARGS("catalog", "crm", "extra"), ARGS("definition"), ARGS("keygen", "x"),
        ARGS("--help", "x"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_clean(NULL, cases[i]);
        CHECK(r.status == 2);
        CHECK(strncmp(r.err, "usage: integctl", 15) == 0);
        CHECK_STR(r.out, "");
    }
    run_clean(NULL, NULL); /* no arguments */
    CHECK(r.status == 2);
    CHECK(strncmp(r.err, "usage: integctl", 15) == 0);
}

static void test_keygen(void)
{
    run_clean(NULL, ARGS("keygen"));
    CHECK(r.status == 0);
    CHECK(strlen(r.out) == 45 && r.out[44] == '\n');
}

/* The output parses as a JSON array; returns it (put by the caller) or NULL. */
static json_object *array_out(void)
{
    json_object *a = json_tokener_parse(r.out);
    if (!a || !json_object_is_type(a, json_type_array)) {
        fprintf(stderr, "  not a JSON array: %.200s\n", r.out);
        CHECK(!"JSON array");
        json_object_put(a);
        return NULL;
    }
    return a;
}

static void test_catalog_without_key(void)
{
    run_clean(NULL, ARGS("catalog"));
    CHECK(r.status == 0);
    CHECK_STR(r.err, "");
    json_object *all = array_out();
    CHECK(all && json_object_array_length(all) > 0);
    json_object_put(all);

    run_clean(NULL, ARGS("catalog", "crm"));
    CHECK(r.status == 0);
    json_object *crm = array_out();
    CHECK(crm && json_object_array_length(crm) > 0);
    for (size_t i = 0; crm && i < json_object_array_length(crm); i++) {
        json_object *cat = NULL;
        json_object_object_get_ex(json_object_array_get_idx(crm, i), "category", &cat);
        CHECK_STR(json_object_get_string(cat), "crm");
    }
    json_object_put(crm);
}

/* The category reaches the library as one JSON string, whatever it holds:
 * an unknown one is refused by name (the library's check of the category),
 * never as malformed JSON or as extra filter keys. */
static void test_category_escaped(void)
{
    const char *const *cases[] = {ARGS("catalog", "x\"y"),
                                  ARGS("catalog", "crm\", \"limit\": 1, \"x\": \"")};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_clean(NULL, cases[i]);
        CHECK(r.status == 1);
        CHECK_STR(r.out, "");
        if (!strstr(r.err, "filter_json.category: must be one of") || strstr(r.err, "malformed")) {
            fprintf(stderr, "  stderr: %s", r.err);
            CHECK(!"category refused as a value");
        }
    }
}

static void test_definition_without_key(void)
{
    run_clean(NULL, ARGS("definition", "hubspot-crm"));
    CHECK(r.status == 0);
    json_object *d = json_tokener_parse(r.out), *key = NULL;
    CHECK(d && json_object_object_get_ex(d, "key", &key));
    CHECK_STR(json_object_get_string(key), "hubspot-crm");
    json_object_put(d);

    run_clean(NULL, ARGS("definition", "no-such-system"));
    CHECK(r.status == 1);
    CHECK(strncmp(r.err, "integctl: ", 10) == 0);
    CHECK_STR(r.out, "");
}

/* A store named in INTEG_OPTIONS is the operator's: opened as given, so it
 * needs its key, and catalog then reads it. */
static void test_named_store(void)
{
    char dir[PATH_MAX], env[PATH_MAX + 256];
    make_dir(dir, sizeof dir);
    snprintf(env, sizeof env, "INTEG_OPTIONS={\"store\": \"sqlite:%s/app.db\"}", dir);
    run_in(dir, env, ARGS("catalog"));
    CHECK(r.status == 1);
    CHECK(strstr(r.err, "no master key") != NULL);

    snprintf(env, sizeof env,
             "INTEG_OPTIONS={\"store\": \"sqlite:%s/app.db\", \"master_key\": \"" TEST_MASTER_KEY "\"}",
             dir);
    run_in(dir, env, ARGS("catalog", "crm"));
    CHECK(r.status == 0);
    json_object *crm = array_out();
    CHECK(crm && json_object_array_length(crm) > 0);
    json_object_put(crm);
    struct stat st;
    char db[PATH_MAX + 16];
    snprintf(db, sizeof db, "%s/app.db", dir);
    CHECK(stat(db, &st) == 0);
    remove_dir(dir);

    run_clean("INTEG_OPTIONS=[1]", ARGS("catalog"));
    CHECK(r.status == 1);
    CHECK(strstr(r.err, "INTEG_OPTIONS") != NULL);
}

int main(int argc, char **argv)
{
    if (argc != 2 || !realpath(argv[1], integctl)) {
        fprintf(stderr, "usage: test_integctl PATH/TO/integctl\n");
        return 2;
    }
    RUN(test_help);
    RUN(test_bad_usage);
    RUN(test_keygen);
    RUN(test_catalog_without_key);
    RUN(test_category_escaped);
    RUN(test_definition_without_key);
    RUN(test_named_store);
    TEST_END();
}
