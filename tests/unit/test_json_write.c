/* ig_json_write must print exactly what json-c prints with
 * JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE (the store's
 * form, which existing databases hold), and with PLAIN alone when asked to
 * escape slashes (the record hashes existing links hold): checked on hand-picked edge
 * cases, on the whole built-in catalog and on thousands of random trees. */
#include <json-c/json.h>
#include <stdint.h>

#include "entities.h"
#include "json.h"
#include "store_schema.h"
#include "test.h"

#define FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static int compared;

/* Write with a small stack start (so the buffer grows onto the heap) and
 * compare with json-c on a deep copy (json-c caches text in the objects),
 * in both forms: the store's, and PLAIN with slashes escaped (record
 * hashes, which existing links hold). */
static void same(json_object *o, const char *what)
{
    for (int escape = 0; escape < 2; escape++) {
        char stack[16];
        ig_jbuf b = {stack, 0, sizeof stack, 0, escape};
        int rc = ig_json_write(o, &b);
        json_object *copy = NULL;
        if (o)
            json_object_deep_copy(o, &copy, NULL);
        const char *want = o ? json_object_to_json_string_ext(copy, escape ? JSON_C_TO_STRING_PLAIN : FLAGS) : "null";
        CHECK(rc == 0);
        if (rc != 0 || !b.p || strcmp(b.p, want) != 0 || strlen(b.p) != b.n) {
            fprintf(stderr, "  %s (%s): wrote %s\n    json-c %s\n", what, escape ? "slashes escaped" : "store form",
                    b.p ? b.p : "(null)", want);
            CHECK(!"same text");
        }
        compared++;
        json_object_put(copy);
        ig_jbuf_free(&b);
    }
}

static void test_edge_cases(void)
{
    static const char *const docs[] = {
        "{}", "[]", "null", "true", "false", "0", "-1", "\"\"",
        "9223372036854775807", "-9223372036854775808", "18446744073709551615", "9223372036854775808",
        "1.5", "1.50", "-0.0", "1e10", "1E-7", "3.141592653589793238",
        "\"a/b\\\\c\\\"d\"", "\"\\u0000x\\u001f\\u007f\\b\\f\\n\\r\\t\"", "\"\\u00e9\\u20ac\\ud83d\\ude00\"",
        "{\"k/\\\"ey\\n\":[1,{\"a\":null},[],{}],\"\":\"\"}",
        "[null,null,[null]]",
        "{\"nested\":{\"deeper\":{\"deepest\":[1,2,3,{\"x\":\"y\"}]}}}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        json_object *o = json_tokener_parse(docs[i]);
        same(o, docs[i]);
        json_object_put(o);
    }
    /* values built, not parsed: doubles without text, big unsigned */
    json_object *o = json_object_new_object();
    json_object_object_add(o, "d", json_object_new_double(0.1));
    json_object_object_add(o, "u", json_object_new_uint64(UINT64_MAX));
    json_object_object_add(o, "i", json_object_new_int64(INT64_MIN));
    json_object_object_add(o, "n", NULL);
    json_object_object_add(o, "s", json_object_new_string_len("a\0b", 3));
    same(o, "built");
    /* a raw value inside a record prints its text */
    json_object *inner = json_tokener_parse("{\"x\":[1,\"/\"]}");
    json_object *rec = json_object_new_object();
    json_object_object_add(rec, "data", ig_json_raw(inner));
    char stack[8];
    ig_jbuf b = {stack, 0, sizeof stack, 0, 0};
    CHECK(ig_json_write(rec, &b) == 0);
    CHECK_STR(b.p, "{\"data\":{\"x\":[1,\"/\"]}}");
    ig_jbuf_free(&b);
    json_object_put(rec);
    json_object_put(inner);
    json_object_put(o);
}

static void test_catalog(void)
{
    integ_ctx *ctx = NULL;
    char *out = NULL;
    CHECK_OK(integ_ctx_open(&ctx, "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\"}"));
    CHECK_OK(integ_definitions_list(ctx, NULL, &out));
    json_object *o = out ? json_tokener_parse(out) : NULL;
    CHECK(json_object_array_length(o) >= 15);
    same(o, "catalog");
    for (size_t i = 0; i < json_object_array_length(o); i++)
        same(json_object_array_get_idx(o, i), "definition");
    json_object_put(o);
    integ_free(out);
    integ_ctx_close(ctx);
}

static uint32_t rng = 12345;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static json_object *random_value(int depth)
{
    switch (rnd() % (depth > 3 ? 6 : 8)) {
    case 0: return NULL;
    case 1: return json_object_new_boolean((int)(rnd() & 1));
    case 2: return json_object_new_int64((int64_t)(((uint64_t)rnd() << 32) | rnd()));
    case 3: return json_object_new_int64((int64_t)(rnd() % 1000) - 500);
    case 4: {
        char s[40];
        size_t n = rnd() % sizeof s;
        for (size_t i = 0; i < n; i++)
            s[i] = (char)(rnd() % 4 ? 1 + rnd() % 127 : 128 + rnd() % 128); /* controls, quotes, high bytes */
        return json_object_new_string_len(s, (int)n);
    }
    case 5: {
        char t[32];
        snprintf(t, sizeof t, "%d.%02u", (int)(rnd() % 2000) - 1000, rnd() % 100);
        return json_tokener_parse(t);
    }
    case 6: {
        json_object *a = json_object_new_array();
        for (uint32_t i = 0, n = rnd() % 5; i < n; i++)
            json_object_array_add(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_object *o = json_object_new_object();
        for (uint32_t i = 0, n = rnd() % 6; i < n; i++) {
            char k[12];
            snprintf(k, sizeof k, "%c%u", "a\"/\\\n\x01z"[rnd() % 7], rnd() % 50);
            json_object_object_add(o, k, random_value(depth + 1));
        }
        return o;
    }
    }
}

static void test_random_trees(void)
{
    for (int i = 0; i < 5000; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "v", random_value(0));
        json_object_object_add(o, "w", random_value(0));
        same(o, "random");
        json_object_put(o);
    }
}

/* The entity record a pull's writer writes without building it: the same
 * bytes as the built record serialised, and the same indexed fields. */
static void test_entity_row_text(void)
{
    static const struct {
        const char *tenant, *entity, *id, *data, *origin;
        int deleted;
        int64_t version, now;
    } cases[] = {
        {"acme", "contacts", "0190b2a0-0000-7000-8000-000000000001", "{\"email\":\"a@b.c\",\"n\":[1,2.50,null]}",
         "sync", 0, 1, 1750000000123},
        {"t\"1\\/x", "deals_2", "id/\n\x01", "{}", "local", 1, 9223372036854775807, 0},
        {"", "e", "x", "\"just a string\"", "sync", 0, -3, 253402300799999},
    };
    const table_spec *t = ig_store_spec(INTEG_KIND_ENTITY);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *data = json_tokener_parse(cases[i].data);
        for (int raw = 0; raw < 2; raw++) {
            json_object *d = raw ? ig_json_raw(data) : json_object_get(data);
            json_object *rec = ig_entity_row(cases[i].tenant, cases[i].entity, cases[i].id, d, cases[i].deleted,
                                             cases[i].origin, cases[i].version, cases[i].now);
            ig_jbuf want = {NULL, 0, 0, 0, 0}, got = {NULL, 0, 0, 0, 0};
            integ_store_field fw[MAX_COLS], fg[MAX_COLS];
            size_t nw = 0, ng = 0;
            CHECK(ig_json_write(rec, &want) == 0);
            CHECK_OK(ig_store_fields_from(t, rec, fw, &nw));
            CHECK_OK(ig_entity_row_text(&got, cases[i].tenant, cases[i].entity, cases[i].id, d, cases[i].deleted,
                                        cases[i].origin, cases[i].version, cases[i].now, fg, &ng));
            CHECK(want.p && got.p && want.n == got.n && strcmp(want.p, got.p) == 0);
            if (!want.p || !got.p || strcmp(want.p, got.p) != 0)
                fprintf(stderr, "  built %s\n  wrote %s\n", want.p ? want.p : "", got.p ? got.p : "");
            CHECK(nw == ng && nw > 0);
            for (size_t k = 0; k < nw && k < ng; k++) {
                CHECK(fw[k].type == fg[k].type);
                if (fw[k].type == INTEG_FIELD_STRING)
                    CHECK(fw[k].str_len == fg[k].str_len && memcmp(fw[k].str, fg[k].str, fw[k].str_len) == 0);
                else if (fw[k].type != INTEG_FIELD_NULL)
                    CHECK(fw[k].num == fg[k].num);
            }
            compared++;
            ig_jbuf_free(&want);
            ig_jbuf_free(&got);
            json_object_put(rec);
            json_object_put(d);
        }
        json_object_put(data);
    }
}

int main(void)
{
    RUN(test_edge_cases);
    RUN(test_catalog);
    RUN(test_random_trees);
    RUN(test_entity_row_text);
    printf("%d texts compared with json-c\n", compared);
    TEST_END();
}
