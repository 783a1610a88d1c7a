/* The C side of tests/oracles/schema_vs_ajv.mjs: runs ig_schema_check and
 * ig_schema_validate (with defaults) over every case of a corpus file
 * ([{schema, instance, note}, ...]) and prints one JSON line per case:
 *   {"index":i,"valid":bool,"schema_error":bool,"instance":<after defaults>,"error":"..."}
 * Exit status: 0 when every case ran (whatever its verdict), 2 on usage or
 * corpus errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "error.h"
#include "schema.h"

/* Corpus cases nest schemas a few levels deep; json-c's default limit of
 * 32 would be too tight once the case and corpus arrays are counted. */
#define CORPUS_MAX_DEPTH 256

static json_object *read_corpus(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "%s: out of memory\n", path);
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(CORPUS_MAX_DEPTH);
    json_object *corpus = tok ? json_tokener_parse_ex(tok, buf, (int)len) : NULL;
    if (!tok || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(corpus, json_type_array)) {
        fprintf(stderr, "%s: not a JSON array of cases (%s)\n", path,
                tok ? json_tokener_error_desc(json_tokener_get_error(tok)) : "out of memory");
        json_object_put(corpus);
        corpus = NULL;
    }
    json_tokener_free(tok);
    free(buf);
    return corpus;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS.json\n", argv[0]);
        return 2;
    }
    json_object *corpus = read_corpus(argv[1]);
    if (!corpus)
        return 2;
    size_t n = json_object_array_length(corpus);
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(corpus, i);
        json_object *schema, *instance;
        if (!json_object_object_get_ex(c, "schema", &schema) ||
            !json_object_object_get_ex(c, "instance", &instance)) {
            fprintf(stderr, "case %zu: needs \"schema\" and \"instance\"\n", i);
            json_object_put(corpus);
            return 2;
        }
        json_object *copy = NULL;
        if (instance && json_object_deep_copy(instance, &copy, NULL) != 0) {
            fprintf(stderr, "case %zu: out of memory\n", i);
            json_object_put(corpus);
            return 2;
        }
        ig_err_clear();
        int schema_error = 0, valid = 0;
        if (ig_schema_check(schema, "schema") != 0)
            schema_error = 1;
        else
            valid = ig_schema_validate(schema, copy, 1, "instance") == 0;
        json_object *out = json_object_new_object();
        json_object_object_add(out, "index", json_object_new_int64((int64_t)i));
        json_object_object_add(out, "valid", json_object_new_boolean(valid));
        json_object_object_add(out, "schema_error", json_object_new_boolean(schema_error));
        json_object_object_add(out, "instance", copy);
        json_object_object_add(out, "error", json_object_new_string(ig_errmsg()));
        puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(out);
    }
    json_object_put(corpus);
    return fflush(stdout) == 0 ? 0 : 2;
}
