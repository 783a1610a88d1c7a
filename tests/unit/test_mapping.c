/* The mapping engine: paths, compile errors, every rule both ways, push
 * inversion, explicit reverse, required fields, hostile specs, threads. */
#include <json-c/json.h>
#include <pthread.h>
#include <stdint.h>

#include "error.h"
#include "mapping.h"
#include "test.h"

/* JSON written with ' for " so specs stay readable in C strings, and ` for
 * an escaped quote inside a JSON string (path keys like ["odd.key"]). */
static json_object *js(const char *text)
{
    char *t = malloc(2 * strlen(text) + 1), *o_ = t;
    for (const char *p = text; *p; p++) {
        if (*p == '`')
            *o_++ = '\\';
        *o_++ = *p == '\'' || *p == '`' ? '"' : *p;
    }
    *o_ = '\0';
    json_object *o = json_tokener_parse(t);
    if (!o)
        fprintf(stderr, "  bad test JSON: %s\n", t);
    free(t);
    return o;
}

static ig_mapping *compile(const char *spec)
{
    json_object *s = js(spec);
    ig_mapping *m = NULL;
    CHECK_OK(ig_mapping_compile(s, "mapping", &m));
    json_object_put(s);
    return m;
}

static int compile_rc(const char *spec)
{
    json_object *s = js(spec);
    ig_mapping *m = (ig_mapping *)0x1;
    int rc = ig_mapping_compile(s, "mapping", &m);
    if (rc)
        CHECK(m == NULL);
    ig_mapping_free(rc ? NULL : m);
    json_object_put(s);
    return rc;
}

static int apply(ig_mapping *m, ig_direction dir, const char *in, json_object **out)
{
    json_object *i = js(in);
    int rc = ig_mapping_apply(m, dir, i, out);
    json_object_put(i);
    return rc;
}

/* Structural equality (types included: 12 is not 12.0 is not "12"). */
static int same_json(json_object *got, const char *want)
{
    json_object *w = js(want);
    int eq = json_object_equal(got, w);
    if (!eq)
        fprintf(stderr, "  got  %s\n  want %s\n",
                json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN),
                json_object_to_json_string_ext(w, JSON_C_TO_STRING_PLAIN));
    json_object_put(w);
    return eq;
}

/* Map `in` in `dir` and compare with `want`. */
static void expect(ig_mapping *m, ig_direction dir, const char *in, const char *want)
{
    json_object *out = NULL;
    CHECK_OK(apply(m, dir, in, &out));
    CHECK(out && same_json(out, want));
    json_object_put(out);
}

static void expect_fail(ig_mapping *m, ig_direction dir, const char *in, int rc, const char *msg)
{
    json_object *out = (json_object *)0x1;
    CHECK_RC(apply(m, dir, in, &out), rc);
    CHECK(out == NULL);
    CHECK_MSG(msg);
}

static void expect_compile_fail(const char *spec, const char *msg)
{
    CHECK_RC(compile_rc(spec), INTEG_EINVAL);
    CHECK_MSG(msg);
}

/* A one-rule mapping: field_map {x: in}, then `rule` on x. */
static ig_mapping *rule1(const char *rule_fields)
{
    char spec[1024];
    snprintf(spec, sizeof spec, "{'field_map':{'x':'in'},'transform_rules':[{'target':'x',%s}]}",
             rule_fields);
    return compile(spec);
}

/* Pull {"in": value} through a one-rule mapping and compare x. */
static void pull_x(ig_mapping *m, const char *in_value, const char *want_value)
{
    char in[512], want[512];
    snprintf(in, sizeof in, "{'in':%s}", in_value);
    if (want_value)
        snprintf(want, sizeof want, "{'x':%s}", want_value);
    else
        snprintf(want, sizeof want, "{}");
    expect(m, IG_PULL, in, want);
}

static void pull_x_fail(ig_mapping *m, const char *in_value, const char *msg)
{
    char in[512];
    snprintf(in, sizeof in, "{'in':%s}", in_value);
    expect_fail(m, IG_PULL, in, INTEG_EMAPPING, msg);
}

/* ------------------------------------------------------------------ paths */

static void test_path_syntax_ok(void)
{
    static const char *const ok[] = {
        "a", "a.b.c", "a[0].b", "[\"odd.key\"].x", "a[\"b\\\"c\"]", "['x.y']", "a[0][1]",
        "[0]", "a[100000]", "a b.c-d", "a[007]", "x[\"\"]", "\xc3\xa5r.\xc3\xb8", "a.\"q\""};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        ig_path *p = NULL;
        CHECK_OK(ig_path_parse(ok[i], &p));
        CHECK(p != NULL);
        ig_path_free(p);
    }
    ig_path_free(NULL);
}

static void test_path_syntax_bad(void)
{
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"", "empty"},
        {".a", "invalid path '.a': empty segment at offset 0"},
        {"a.", "invalid path 'a.': empty segment at offset 2"},
        {"a..b", "invalid path 'a..b': empty segment at offset 2"},
        {"a[", "unclosed '[' at offset 1"},
        {"a[1", "unclosed '[' at offset 1"},
        {"a[-1]", "invalid path 'a[-1]': negative index"},
        {"a[]", "empty index"},
        {"a[x]", "an index is a number or a quoted key"},
        {"a[1 ]", "expected ']'"},
        {"a]", "unexpected ']'"},
        {"a[0]b", "expected '.' or '['"},
        {"a.[0]", "empty segment at offset 2"},
        {"a[\"x", "unclosed quote"},
        {"a[\"x\"", "expected ']'"},
        {"a[\"x\"]y", "expected '.' or '['"},
        {"a[100001]", "index above 100000"},
        {"a[999999999]", "index above 100000"},
        {"a[99999999999999999999999]", "index above 100000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ig_path *p = (ig_path *)0x1;
        CHECK_RC(ig_path_parse(bad[i].text, &p), INTEG_EINVAL);
        CHECK(p == NULL);
        CHECK_MSG(bad[i].msg);
    }
    ig_path *p = NULL;
    CHECK_RC(ig_path_parse(NULL, &p), INTEG_EINVAL);
    CHECK_RC(ig_path_parse("a", NULL), INTEG_EINVAL);
    /* Depth: 32 segments parse, 33 do not. */
    char deep[200] = "a";
    for (int i = 1; i < 32; i++)
        strcat(deep, ".a");
    CHECK_OK(ig_path_parse(deep, &p));
    ig_path_free(p);
    strcat(deep, ".a");
    CHECK_RC(ig_path_parse(deep, &p), INTEG_EINVAL);
    CHECK_MSG("deeper than 32 segments");
    char *longp = malloc(3000);
    memset(longp, 'k', 2999);
    longp[2999] = '\0';
    CHECK_RC(ig_path_parse(longp, &p), INTEG_EINVAL);
    CHECK_MSG("longer than 1024 bytes");
    free(longp);
}

static void test_path_get(void)
{
    json_object *doc = js("{'a':{'b':[10,null,{'c':'x'}],'n':null},'odd.key':{'x':1},'b`c':3}");
    static const struct {
        const char *path, *want; /* want NULL: absent */
    } cases[] = {
        {"a.b[0]", "10"},         {"a.b[2].c", "'x'"}, {"[\"odd.key\"].x", "1"},
        {"['odd.key'].x", "1"},   {"a.b[3]", NULL},    {"a.b.c", NULL},
        {"a.b[0].c", NULL},       {"zz", NULL},        {"a.n.x", NULL},
        {"[\"b\\\"c\"]", "3"},    {"[0]", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ig_path *p = NULL;
        CHECK_OK(ig_path_parse(cases[i].path, &p));
        json_object *v = ig_path_get(p, doc);
        if (!cases[i].want)
            CHECK(v == NULL);
        else
            CHECK(v && same_json(v, cases[i].want));
        ig_path_free(p);
    }
    /* null and absent both read as NULL here; the engine tells them apart. */
    ig_path *p = NULL;
    CHECK_OK(ig_path_parse("a.n", &p));
    CHECK(ig_path_get(p, doc) == NULL);
    CHECK(ig_path_get(NULL, doc) == NULL);
    CHECK(ig_path_get(p, NULL) == NULL);
    ig_path_free(p);
    json_object_put(doc);
}

static void set_path(json_object *root, const char *path, json_object *v, int want_rc)
{
    ig_path *p = NULL;
    CHECK_OK(ig_path_parse(path, &p));
    CHECK_RC(ig_path_set(p, root, v), want_rc);
    ig_path_free(p);
}

static void test_path_set(void)
{
    json_object *o = json_object_new_object();
    set_path(o, "a.b.c", json_object_new_int(1), INTEG_OK);
    set_path(o, "list[2].sku", json_object_new_string("S"), INTEG_OK);
    set_path(o, "m[1][0]", json_object_new_boolean(1), INTEG_OK);
    set_path(o, "[\"odd.key\"]", json_object_new_int(5), INTEG_OK);
    set_path(o, "a.b.d", NULL, INTEG_OK); /* JSON null */
    CHECK(same_json(o, "{'a':{'b':{'c':1,'d':null}},'list':[null,null,{'sku':'S'}],"
                       "'m':[null,[true]],'odd.key':5}"));
    /* Replace, fill a null, extend an array. */
    set_path(o, "a.b.c", json_object_new_int(2), INTEG_OK);
    set_path(o, "a.b.d.e", json_object_new_int(3), INTEG_OK);
    set_path(o, "list[0]", json_object_new_string("first"), INTEG_OK);
    set_path(o, "list[4]", json_object_new_string("fifth"), INTEG_OK);
    CHECK(same_json(o, "{'a':{'b':{'c':2,'d':{'e':3}}},'list':['first',null,{'sku':'S'},null,'fifth'],"
                       "'m':[null,[true]],'odd.key':5}"));
    /* Through a scalar or the wrong container: EMAPPING, value released. */
    set_path(o, "a.b.c.x", json_object_new_string("leak?"), INTEG_EMAPPING);
    CHECK_MSG("cannot set 'a.b.c.x': 'a.b.c' is a number, not an object");
    set_path(o, "a.b[0]", json_object_new_int(1), INTEG_EMAPPING);
    CHECK_MSG("'a.b' is an object, not an array");
    set_path(o, "list.x", json_object_new_int(1), INTEG_EMAPPING);
    CHECK_MSG("'list' is an array, not an object");
    set_path(o, "[0]", json_object_new_int(1), INTEG_EMAPPING);
    CHECK_MSG("the root is an object, not an array");
    ig_path *p = NULL;
    CHECK_OK(ig_path_parse("a", &p));
    CHECK_RC(ig_path_set(p, NULL, json_object_new_int(1)), INTEG_EINVAL);
    CHECK_RC(ig_path_set(NULL, o, json_object_new_int(1)), INTEG_EINVAL);
    ig_path_free(p);
    json_object_put(o);

    /* A root array with an index path (adapter use). */
    json_object *arr = json_object_new_array();
    set_path(arr, "[1].id", json_object_new_string("x"), INTEG_OK);
    CHECK(same_json(arr, "[null,{'id':'x'}]"));
    json_object_put(arr);
}

/* ---------------------------------------------------------------- compile */

static void test_compile_errors(void)
{
    static const struct {
        const char *spec, *msg;
    } cases[] = {
        {"[]", "mapping: must be an object"},
        {"{}", "mapping.field_map: required"},
        {"{'field_map':[]}", "mapping.field_map: must be an object"},
        {"{'field_map':{'email':1}}", "mapping.field_map.email: must be a path (a string)"},
        {"{'field_map':{'email':'properties..email'}}",
         "mapping.field_map.email: invalid path 'properties..email': empty segment at offset 11"},
        {"{'field_map':{'a..b':'x'}}",
         "mapping.field_map[\"a..b\"]: invalid path 'a..b': empty segment"},
        {"{'field_map':{'[0]':'x'}}", "mapping.field_map[\"[0]\"]: path '[0]' must start with a field name"},
        {"{'field_map':{'a':'x[-1]'}}", "mapping.field_map.a: invalid path 'x[-1]': negative index"},
        {"{'field_map':{'a':'x[999999999]'}}", "index above 100000"},
        {"{'field_map':{},'source_entity':3}", "mapping.source_entity: must be a string"},
        {"{'field_map':{},'transform_rules':{}}", "mapping.transform_rules: must be an array"},
        {"{'field_map':{},'transform_rules':[1]}", "mapping.transform_rules[0]: must be an object"},
        {"{'field_map':{},'transform_rules':[{'target':'a'}]}", "mapping.transform_rules[0].op: required"},
        {"{'field_map':{},'transform_rules':[{'target':'a','op':7}]}",
         "mapping.transform_rules[0].op: must be a string"},
        {"{'field_map':{},'transform_rules':[{'target':'a','op':'trim'},{'target':'a','op':'trim'},"
         "{'target':'a','op':'lower'}]}",
         "mapping.transform_rules[2].op: unknown rule 'lower'"},
        {"{'field_map':{},'transform_rules':[{'op':'trim'}]}", "mapping.transform_rules[0].target: required"},
        {"{'field_map':{},'transform_rules':[{'op':'trim','target':5}]}",
         "mapping.transform_rules[0].target: must be a path"},
        {"{'field_map':{},'transform_rules':[{'op':'trim','target':'a.'}]}",
         "mapping.transform_rules[0].target: invalid path 'a.'"},
        {"{'field_map':{},'transform_rules':[{'op':'trim','target':'a','value':1}]}",
         "mapping.transform_rules[0].value: not a parameter of 'trim'"},
        {"{'field_map':{},'transform_rules':[{'op':'default','target':'a'}]}",
         "mapping.transform_rules[0].value: required for 'default'"},
        {"{'field_map':{},'transform_rules':[{'op':'date','target':'a','to':'rfc3339'}]}",
         "mapping.transform_rules[0].from: required for 'date'"},
        {"{'field_map':{},'transform_rules':[{'op':'date','target':'a','from':'iso','to':'rfc3339'}]}",
         "mapping.transform_rules[0].from: unknown date format 'iso'"},
        {"{'field_map':{},'transform_rules':[{'op':'date','target':'a','from':'epoch_s','to':1}]}",
         "mapping.transform_rules[0].to: unknown date format"},
        {"{'field_map':{},'transform_rules':[{'op':'concat','target':'a'}]}",
         "mapping.transform_rules[0].sources: required for 'concat'"},
        {"{'field_map':{},'transform_rules':[{'op':'concat','target':'a','sources':[]}]}",
         "mapping.transform_rules[0].sources: must be a non-empty array"},
        {"{'field_map':{},'transform_rules':[{'op':'concat','target':'a','sources':['x','y..z']}]}",
         "mapping.transform_rules[0].sources[1]: invalid path 'y..z'"},
        {"{'field_map':{},'transform_rules':[{'op':'concat','target':'a','sources':['x'],'separator':1}]}",
         "mapping.transform_rules[0].separator: must be a string"},
        {"{'field_map':{},'transform_rules':[{'op':'concat','target':'a','sources':['x'],'seperator':' '}]}",
         "mapping.transform_rules[0].seperator: not a parameter of 'concat'"},
        {"{'field_map':{},'transform_rules':[{'op':'split','target':'a'}]}",
         "mapping.transform_rules[0].separator: required for 'split'"},
        {"{'field_map':{},'transform_rules':[{'op':'split','target':'a','separator':''}]}",
         "mapping.transform_rules[0].separator: must be a non-empty string"},
        {"{'field_map':{},'transform_rules':[{'op':'split','target':'a','separator':',','index':'1'}]}",
         "mapping.transform_rules[0].index: must be an integer"},
        {"{'field_map':{},'transform_rules':[{'op':'split','target':'a','separator':',','index':999999999}]}",
         "mapping.transform_rules[0].index: must be within"},
        {"{'field_map':{},'transform_rules':[{'op':'value_map','target':'a'}]}",
         "mapping.transform_rules[0].map: required for 'value_map'"},
        {"{'field_map':{},'transform_rules':[{'op':'value_map','target':'a','map':{}}]}",
         "mapping.transform_rules[0].map: must be a non-empty object"},
        {"{'field_map':{},'transform_rules':[{'op':'template','target':'a'}]}",
         "mapping.transform_rules[0].template: required for 'template'"},
        {"{'field_map':{},'transform_rules':[{'op':'template','target':'a','template':'{x'}]}",
         "mapping.transform_rules[0].template: unclosed '{' at offset 0"},
        {"{'field_map':{},'transform_rules':[{'op':'template','target':'a','template':'a}'}]}",
         "mapping.transform_rules[0].template: unmatched '}' at offset 1"},
        {"{'field_map':{},'transform_rules':[{'op':'template','target':'a','template':'{}'}]}",
         "mapping.transform_rules[0].template: empty placeholder"},
        {"{'field_map':{},'transform_rules':[{'op':'template','target':'a','template':'{a..b}'}]}",
         "mapping.transform_rules[0].template: invalid path 'a..b'"},
        {"{'field_map':{},'transform_rules':[{'op':'template','target':'a','template':'{a{b}'}]}",
         "'{' inside a placeholder"},
        {"{'field_map':{},'transform_rules':[{'op':'coalesce','target':'a','sources':'x'}]}",
         "mapping.transform_rules[0].sources: must be a non-empty array of paths"},
        {"{'field_map':{},'transform_rules':[{'op':'to_number','target':'a','source':'b['}]}",
         "mapping.transform_rules[0].source: invalid path 'b['"},
        {"{'field_map':{},'required':'email'}", "mapping.required: must be an array"},
        {"{'field_map':{},'required':['email',3]}", "mapping.required[1]: must be a path"},
        {"{'field_map':{},'required':['a[x]']}", "mapping.required[0]: invalid path 'a[x]'"},
        {"{'field_map':{},'reverse':[]}", "mapping.reverse: must be an object"},
        {"{'field_map':{},'reverse':{'fieldmap':{}}}", "mapping.reverse.fieldmap: unknown field"},
        {"{'field_map':{},'reverse':{'field_map':{'properties.email':2}}}",
         "mapping.reverse.field_map[\"properties.email\"]: must be a path"},
        {"{'field_map':{},'reverse':{'transform_rules':[{'op':'lower','target':'x'}]}}",
         "mapping.reverse.transform_rules[0].op: unknown rule 'lower'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int before = t_failed_checks;
        expect_compile_fail(cases[i].spec, cases[i].msg);
        if (t_failed_checks != before)
            fprintf(stderr, "  (case %zu: %s)\n", i, cases[i].spec);
    }
    /* `what` prefixes every location. */
    json_object *s = js("{'field_map':{'a':'b..c'}}");
    ig_mapping *m = NULL;
    CHECK_RC(ig_mapping_compile(s, "request_json.mapping", &m), INTEG_EINVAL);
    CHECK_MSG("request_json.mapping.field_map.a: invalid path");
    CHECK_RC(ig_mapping_compile(s, "mapping", NULL), INTEG_EINVAL);
    CHECK_RC(ig_mapping_compile(NULL, "mapping", &m), INTEG_EINVAL);
    CHECK_MSG("mapping: must be an object");
    json_object_put(s);
    /* Unknown top-level keys are ignored: a stored mapping row compiles as is. */
    CHECK_OK(compile_rc("{'id':'m1','tenant_id':'t','field_map':{},'notes':'x','source_entity':'contacts'}"));
    /* The spec is not borrowed. */
    s = js("{'field_map':{'a':'b'},'transform_rules':[{'op':'default','target':'a','value':{'k':[1]}}]}");
    CHECK_OK(ig_mapping_compile(s, NULL, &m));
    json_object_put(s);
    expect(m, IG_PULL, "{}", "{'a':{'k':[1]}}");
    ig_mapping_free(m);
    ig_mapping_free(NULL);
}

static void test_apply_args(void)
{
    ig_mapping *m = compile("{'field_map':{'a':'b'}}");
    json_object *in = js("{'b':1}"), *arr = js("[1]"), *out = (json_object *)0x1;
    CHECK_RC(ig_mapping_apply(NULL, IG_PULL, in, &out), INTEG_EINVAL);
    CHECK(out == NULL);
    CHECK_RC(ig_mapping_apply(m, (ig_direction)7, in, &out), INTEG_EINVAL);
    CHECK_MSG("invalid argument: direction");
    CHECK_RC(ig_mapping_apply(m, IG_PULL, NULL, &out), INTEG_EINVAL);
    CHECK_RC(ig_mapping_apply(m, IG_PULL, arr, &out), INTEG_EINVAL);
    CHECK_MSG("invalid argument: in");
    CHECK_RC(ig_mapping_apply(m, IG_PULL, in, NULL), INTEG_EINVAL);
    json_object_put(in);
    json_object_put(arr);
    ig_mapping_free(m);
}

/* ------------------------------------------------------------------- pull */

static void test_pull_field_map(void)
{
    ig_mapping *m = compile("{'field_map':{'email':'properties.email','addr.city':'address[0].city',"
                            "'tags[1]':'t','flag':'f','n':'num','d':'dbl','obj':'o','nul':'z',"
                            "'gone':'missing.deep[3]','odd':'[`a.b`][`c]`]'}}");
    expect(m, IG_PULL,
           "{'properties':{'email':'a@b'},'address':[{'city':'Oslo'}],'t':'x','f':false,'num':12,"
           "'dbl':1.5,'o':{'k':[1,{'z':null}]},'z':null,'a.b':{'c]':'q'}}",
           "{'email':'a@b','addr':{'city':'Oslo'},'tags':[null,'x'],'flag':false,'n':12,'d':1.5,"
           "'obj':{'k':[1,{'z':null}]},'nul':null,'odd':'q'}");
    /* Absent sources leave the field absent (never a null). */
    expect(m, IG_PULL, "{}", "{}");
    /* The output owns its values: changing the input afterwards changes nothing. */
    json_object *in = js("{'o':{'k':1},'properties':{'email':'e'}}"), *out = NULL;
    CHECK_OK(ig_mapping_apply(m, IG_PULL, in, &out));
    json_object_object_add(json_object_object_get(in, "o"), "k", json_object_new_int(2));
    json_object_put(in);
    CHECK(same_json(out, "{'email':'e','obj':{'k':1}}"));
    json_object_put(out);
    ig_mapping_free(m);

    /* Conflicting targets are a mapping error on the record, not a crash. */
    m = compile("{'field_map':{'a':'x','a.b':'y'}}");
    expect(m, IG_PULL, "{'x':{'c':1},'y':2}", "{'a':{'c':1,'b':2}}");
    expect_fail(m, IG_PULL, "{'x':'s','y':2}", INTEG_EMAPPING, "cannot set 'a.b': 'a' is a string");
    ig_mapping_free(m);
}

static void test_rule_trim_case(void)
{
    ig_mapping *m = rule1("'op':'trim'");
    pull_x(m, "'  a b \\t\\n'", "'a b'");
    pull_x(m, "'ab'", "'ab'");
    pull_x(m, "'   '", "''");
    pull_x(m, "12", "12");
    pull_x(m, "null", "null");
    pull_x(m, "{'k':' v '}", "{'k':' v '}");
    expect(m, IG_PULL, "{}", "{}");
    ig_mapping_free(m);

    m = rule1("'op':'lowercase'");
    pull_x(m, "'Ann@Example.COM'", "'ann@example.com'");
    /* Only ASCII letters change; UTF-8 stays intact (Å, Ü untouched). */
    pull_x(m, "'\xc3\x85SA \xc3\x9cN\xc3\x8f'", "'\xc3\x85sa \xc3\x9cn\xc3\x8f'");
    pull_x(m, "'already'", "'already'");
    pull_x(m, "true", "true");
    ig_mapping_free(m);

    m = rule1("'op':'uppercase'");
    pull_x(m, "'nok \xc3\xa5'", "'NOK \xc3\xa5'");
    pull_x(m, "[1]", "[1]");
    ig_mapping_free(m);

    /* With "source" the rule reads the remote record and leaves it alone. */
    m = compile("{'field_map':{},'transform_rules':[{'target':'code','op':'uppercase','source':'c'},"
                "{'target':'t','op':'trim','source':'c'}]}");
    json_object *in = js("{'c':' nok '}"), *out = NULL;
    CHECK_OK(ig_mapping_apply(m, IG_PULL, in, &out));
    CHECK(same_json(out, "{'code':' NOK ','t':'nok'}"));
    CHECK(same_json(in, "{'c':' nok '}"));
    json_object_put(out);
    json_object_put(in);
    expect(m, IG_PULL, "{'c':5}", "{'code':5,'t':5}");
    expect(m, IG_PULL, "{}", "{}");
    ig_mapping_free(m);
}

static void test_rule_to_number(void)
{
    ig_mapping *m = rule1("'op':'to_number'");
    pull_x(m, "' 12.5 '", "12.5");
    pull_x(m, "'12'", "12");
    pull_x(m, "'-7'", "-7");
    pull_x(m, "'+3'", "3");
    pull_x(m, "'1e3'", "1000.0");
    pull_x(m, "'.5'", "0.5");
    pull_x(m, "'9223372036854775807'", "9223372036854775807");
    pull_x(m, "'-9223372036854775808'", "-9223372036854775808");
    pull_x(m, "'99999999999999999999'", "1e20");
    pull_x(m, "''", "null");
    pull_x(m, "'  '", "null");
    pull_x(m, "7", "7");
    pull_x(m, "2.25", "2.25");
    pull_x(m, "true", "1");
    pull_x(m, "false", "0");
    pull_x(m, "null", "null");
    pull_x_fail(m, "'abc'", "field 'x': cannot convert \"abc\" to a number");
    pull_x_fail(m, "'0x10'", "cannot convert \"0x10\" to a number");
    pull_x_fail(m, "'1,5'", "cannot convert");
    pull_x_fail(m, "'1e400'", "cannot convert");
    pull_x_fail(m, "'NaN'", "cannot convert");
    pull_x_fail(m, "'1e'", "cannot convert");
    pull_x_fail(m, "'-'", "cannot convert");
    pull_x_fail(m, "{'a':1}", "cannot convert an object to a number");
    pull_x_fail(m, "[1]", "cannot convert an array to a number");

    /* Doubles serialise in their shortest form, not %.17g. */
    json_object *out = NULL;
    CHECK_OK(apply(m, IG_PULL, "{'in':'19.990'}", &out));
    CHECK_STR(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN), "{\"x\":19.99}");
    json_object_put(out);
    CHECK_OK(apply(m, IG_PULL, "{'in':'0.1'}", &out));
    CHECK_STR(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN), "{\"x\":0.1}");
    json_object_put(out);
    /* Long, quoted and control characters in the message stay on one line. */
    CHECK_RC(apply(m, IG_PULL,
                   "{'in':'a\\\"b\\nccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc'}",
                   &out),
             INTEG_EMAPPING);
    CHECK_MSG("cannot convert \"a\\\"b\\u000accc");
    CHECK_MSG("...\" to a number");
    CHECK(!strchr(integ_errmsg(), '\n'));
    ig_mapping_free(m);
}

static void test_rule_to_string(void)
{
    ig_mapping *m = rule1("'op':'to_string'");
    pull_x(m, "12", "'12'");
    pull_x(m, "-3", "'-3'");
    pull_x(m, "12.50", "'12.5'");
    pull_x(m, "12.0", "'12'");
    pull_x(m, "0.1", "'0.1'");
    pull_x(m, "1e21", "'1e+21'");
    pull_x(m, "18446744073709551615", "'18446744073709551615'");
    pull_x(m, "true", "'true'");
    pull_x(m, "false", "'false'");
    pull_x(m, "'s'", "'s'");
    /* Shortest text that reads back as the same double. */
    pull_x(m, "0.05", "'0.05'");
    pull_x(m, "-0.05", "'-0.05'");
    pull_x(m, "1234.5", "'1234.5'");
    pull_x(m, "-1234.125", "'-1234.125'");
    pull_x(m, "123456789.12345678", "'123456789.12345678'");
    pull_x(m, "0.30000000000000004", "'0.30000000000000004'");
    pull_x(m, "1e-7", "'0.0000001'");
    pull_x(m, "1.5e-12", "'1.5e-12'");
    pull_x(m, "-0.0", "'0'");
    pull_x(m, "9007199254740993.0", "'9007199254740992'");
    pull_x(m, "null", "null");
    pull_x_fail(m, "{}", "field 'x': cannot convert an object to a string");
    pull_x_fail(m, "[]", "cannot convert an array to a string");
    ig_mapping_free(m);
}

static void test_rule_to_bool(void)
{
    ig_mapping *m = rule1("'op':'to_bool'");
    static const char *const t[] = {"'true'", "'TRUE'", "' Yes '", "'1'", "1", "1.0", "true"};
    static const char *const f[] = {"'false'", "'False'", "'NO'", "'0'", "0", "0.0", "false"};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        pull_x(m, t[i], "true");
        pull_x(m, f[i], "false");
    }
    pull_x(m, "''", "null");
    pull_x(m, "null", "null");
    pull_x_fail(m, "'maybe'", "field 'x': cannot convert \"maybe\" to a boolean");
    pull_x_fail(m, "'yess'", "cannot convert");
    pull_x_fail(m, "2", "cannot convert 2 to a boolean");
    pull_x_fail(m, "0.5", "cannot convert 0.5 to a boolean");
    pull_x_fail(m, "[true]", "cannot convert an array to a boolean");
    ig_mapping_free(m);
}

static void test_rule_default(void)
{
    ig_mapping *m = rule1("'op':'default','value':'n/a'");
    pull_x(m, "'x'", "'x'");
    pull_x(m, "null", "'n/a'");
    pull_x(m, "''", "'n/a'");
    pull_x(m, "0", "0");
    pull_x(m, "false", "false");
    expect(m, IG_PULL, "{}", "{'x':'n/a'}");
    ig_mapping_free(m);
    m = compile("{'field_map':{},'transform_rules':[{'target':'a.b[1]','op':'default','value':{'k':[1]}},"
                "{'target':'n','op':'default','value':null}]}");
    expect(m, IG_PULL, "{}", "{'a':{'b':[null,{'k':[1]}]},'n':null}");
    ig_mapping_free(m);
}

static void test_rule_date(void)
{
    ig_mapping *m = rule1("'op':'date','from':'epoch_ms','to':'rfc3339'");
    pull_x(m, "1714637460000", "'2024-05-02T08:11:00Z'");
    pull_x(m, "1714637460123", "'2024-05-02T08:11:00.123Z'");
    pull_x(m, "'1714637460123'", "'2024-05-02T08:11:00.123Z'");
    pull_x(m, "0", "'1970-01-01T00:00:00Z'");
    pull_x(m, "-1", "'1969-12-31T23:59:59.999Z'");
    pull_x(m, "null", "null");
    pull_x_fail(m, "'soon'", "field 'x': cannot read \"soon\" as epoch_ms");
    pull_x_fail(m, "true", "cannot read true as epoch_ms");
    pull_x_fail(m, "1e300", "out of range");
    pull_x_fail(m, "253402300800000", "out of range");
    ig_mapping_free(m);

    m = rule1("'op':'date','from':'epoch_s','to':'rfc3339'");
    pull_x(m, "1714637460", "'2024-05-02T08:11:00Z'");
    pull_x(m, "' 1714637460 '", "'2024-05-02T08:11:00Z'");
    pull_x(m, "1714637460.25", "'2024-05-02T08:11:00.250Z'");
    pull_x(m, "'1714637460.5'", "'2024-05-02T08:11:00.500Z'");
    pull_x(m, "253402300799", "'9999-12-31T23:59:59Z'");
    pull_x(m, "-62135596800", "'0001-01-01T00:00:00Z'");
    pull_x_fail(m, "-62135596801", "out of range");
    pull_x_fail(m, "9223372036854775807", "out of range");
    ig_mapping_free(m);

    m = rule1("'op':'date','from':'rfc3339','to':'epoch_ms'");
    pull_x(m, "'2024-05-02T08:11:00.000Z'", "1714637460000");
    pull_x(m, "'2024-05-02T10:11:00+02:00'", "1714637460000");
    pull_x(m, "'2024-05-02'", "1714608000000");
    pull_x_fail(m, "'2024-05-02T08:11Z'", "cannot read \"2024-05-02T08:11Z\" as rfc3339");
    pull_x_fail(m, "'2023-02-29'", "as rfc3339");
    pull_x_fail(m, "1714637460000", "cannot read 1714637460000 as rfc3339");
    ig_mapping_free(m);

    m = rule1("'op':'date','from':'rfc3339','to':'rfc3339'");
    pull_x(m, "'2024-05-02T10:11:00+02:00'", "'2024-05-02T08:11:00Z'");
    pull_x(m, "'2024-05-02T10:11:00.5+02:00'", "'2024-05-02T08:11:00.500Z'");
    pull_x(m, "'2024-05-02T08:11:00.000Z'", "'2024-05-02T08:11:00.000Z'");
    ig_mapping_free(m);

    m = rule1("'op':'date','from':'rfc3339','to':'yyyy-mm-dd'");
    pull_x(m, "'2024-05-02T01:00:00+03:00'", "'2024-05-01'");
    pull_x(m, "'2024-02-29T23:59:59Z'", "'2024-02-29'");
    ig_mapping_free(m);

    m = rule1("'op':'date','from':'yyyy-mm-dd','to':'epoch_s'");
    pull_x(m, "'2024-05-02'", "1714608000");
    pull_x(m, "'1969-12-31'", "-86400");
    pull_x_fail(m, "'2024-05-02T00:00:00Z'", "cannot read \"2024-05-02T00:00:00Z\" as yyyy-mm-dd");
    pull_x_fail(m, "'2024-13-01'", "as yyyy-mm-dd");
    pull_x_fail(m, "'2024-5-2'", "as yyyy-mm-dd");
    ig_mapping_free(m);

    /* epoch_s output floors, also before 1970. */
    m = rule1("'op':'date','from':'epoch_ms','to':'epoch_s'");
    pull_x(m, "1999", "1");
    pull_x(m, "-1", "-1");
    ig_mapping_free(m);
}

static void test_rule_concat(void)
{
    ig_mapping *m = compile("{'field_map':{},'transform_rules':[{'target':'name','op':'concat',"
                            "'sources':['first','middle','last'],'separator':' '},"
                            "{'target':'code','op':'concat','sources':['a','b']}]}");
    expect(m, IG_PULL, "{'first':'Ann','middle':null,'last':'Lee','a':'X','b':7}",
           "{'name':'Ann Lee','code':'X7'}");
    expect(m, IG_PULL, "{'first':'','last':'Lee','b':true}", "{'name':'Lee','code':'true'}");
    expect(m, IG_PULL, "{'middle':null}", "{}");
    expect(m, IG_PULL, "{'a':1.5}", "{'code':'1.5'}");
    expect_fail(m, IG_PULL, "{'first':{'x':1}}", INTEG_EMAPPING,
                "field 'name': cannot use an object from 'first' as text");
    ig_mapping_free(m);
    /* Long results spill from the stack buffer. */
    m = compile("{'field_map':{},'transform_rules':[{'target':'t','op':'concat','sources':['a','a','a'],"
                "'separator':'-'}]}");
    char in[1200], want[4000];
    char big[401];
    memset(big, 'z', 400);
    big[400] = '\0';
    snprintf(in, sizeof in, "{'a':'%s'}", big);
    snprintf(want, sizeof want, "{'t':'%s-%s-%s'}", big, big, big);
    expect(m, IG_PULL, in, want);
    ig_mapping_free(m);
}

static void test_rule_split(void)
{
    ig_mapping *m = compile("{'field_map':{'tags':'tags'},'transform_rules':["
                            "{'target':'tags','op':'split','separator':','},"
                            "{'target':'first','op':'split','source':'name','separator':' ','index':0},"
                            "{'target':'last','op':'split','source':'name','separator':' ','index':-1},"
                            "{'target':'third','op':'split','source':'name','separator':' ','index':2}]}");
    expect(m, IG_PULL, "{'tags':'vip, newsletter,,x','name':'Ann Marie Lee'}",
           "{'tags':['vip','newsletter','','x'],'first':'Ann','last':'Lee','third':'Lee'}");
    expect(m, IG_PULL, "{'tags':'','name':'Ann'}",
           "{'tags':[''],'first':'Ann','last':'Ann','third':null}");
    expect(m, IG_PULL, "{'tags':null}", "{'tags':null}");
    expect(m, IG_PULL, "{}", "{}");
    expect_fail(m, IG_PULL, "{'tags':5}", INTEG_EMAPPING, "field 'tags': cannot split 5");
    ig_mapping_free(m);
    m = compile("{'field_map':{'x':'in'},'transform_rules':[{'target':'x','op':'split','separator':'::',"
                "'index':1}]}");
    pull_x(m, "'a::b::c'", "'b'");
    pull_x(m, "'abc'", "null");
    ig_mapping_free(m);
}

static void test_rule_value_map(void)
{
    ig_mapping *m = rule1("'op':'value_map','map':{'1':'active','0':'inactive','true':'yes',"
                          "'null':'none','A':{'o':1}},'default':'other'");
    pull_x(m, "'1'", "'active'");
    pull_x(m, "1", "'active'");
    pull_x(m, "0", "'inactive'");
    pull_x(m, "true", "'yes'");
    pull_x(m, "null", "'none'");
    pull_x(m, "'A'", "{'o':1}");
    pull_x(m, "'a'", "'other'");
    pull_x(m, "{'k':1}", "'other'");
    expect(m, IG_PULL, "{}", "{}");
    ig_mapping_free(m);
    m = rule1("'op':'value_map','map':{'won':'closed','1.5':'x'}");
    pull_x(m, "'won'", "'closed'");
    pull_x(m, "'lost'", "'lost'");
    pull_x(m, "1.5", "'x'");
    pull_x(m, "[1]", "[1]");
    ig_mapping_free(m);
    /* With a source. */
    m = compile("{'field_map':{},'transform_rules':[{'target':'s','op':'value_map','source':'st',"
                "'map':{'W':'won'}}]}");
    expect(m, IG_PULL, "{'st':'W'}", "{'s':'won'}");
    expect(m, IG_PULL, "{'st':'Q'}", "{'s':'Q'}");
    ig_mapping_free(m);
}

static void test_rule_template(void)
{
    ig_mapping *m = compile("{'field_map':{},'transform_rules':[{'target':'full','op':'template',"
                            "'template':'{p.first} {p.last}'},{'target':'lit','op':'template',"
                            "'template':'{{x}} = {[`a.b`]}%'},{'target':'const','op':'template',"
                            "'template':'v{{1}}'}]}");
    expect(m, IG_PULL, "{'p':{'first':'Ann','last':'Lee'},'a.b':3}",
           "{'full':'Ann Lee','lit':'{x} = 3%','const':'v{1}'}");
    /* Missing placeholders are empty; all missing leaves the field absent. */
    expect(m, IG_PULL, "{'p':{'first':'Ann'}}", "{'full':'Ann ','const':'v{1}'}");
    expect(m, IG_PULL, "{'p':{'first':null,'last':''}}", "{'const':'v{1}'}");
    expect_fail(m, IG_PULL, "{'p':{'first':[1]}}", INTEG_EMAPPING,
                "field 'full': cannot use an array from 'p.first' as text");
    ig_mapping_free(m);
}

static void test_rule_coalesce(void)
{
    ig_mapping *m = compile("{'field_map':{},'transform_rules':[{'target':'phone','op':'coalesce',"
                            "'sources':['mobile','work','home']}]}");
    expect(m, IG_PULL, "{'mobile':null,'work':'','home':'555'}", "{'phone':'555'}");
    expect(m, IG_PULL, "{'mobile':'1','home':'555'}", "{'phone':'1'}");
    expect(m, IG_PULL, "{'work':{'n':1}}", "{'phone':{'n':1}}");
    expect(m, IG_PULL, "{'work':0}", "{'phone':0}");
    expect(m, IG_PULL, "{'mobile':null}", "{}");
    ig_mapping_free(m);
}

static void test_rules_in_order(void)
{
    /* trim then to_number then default: order matters and is kept. */
    ig_mapping *m = compile("{'field_map':{'p':'price'},'transform_rules':["
                            "{'target':'p','op':'trim'},{'target':'p','op':'to_number'},"
                            "{'target':'p','op':'default','value':0}]}");
    expect(m, IG_PULL, "{'price':' 12 '}", "{'p':12}");
    expect(m, IG_PULL, "{'price':'  '}", "{'p':0}");
    expect(m, IG_PULL, "{}", "{'p':0}");
    ig_mapping_free(m);
    /* Rules on nested targets and array elements. */
    m = compile("{'field_map':{'lines':'items'},'transform_rules':["
                "{'target':'lines[0].qty','op':'to_number'},{'target':'lines[1].sku','op':'uppercase'}]}");
    expect(m, IG_PULL, "{'items':[{'qty':'2'},{'sku':'ab'}]}", "{'lines':[{'qty':2},{'sku':'AB'}]}");
    expect(m, IG_PULL, "{'items':[]}", "{'lines':[]}");
    ig_mapping_free(m);
}

static void test_internal_fast_paths(void)
{
    /* Output keys used both whole and nested live in the tree, the others
     * in slots; the result must not depend on which. */
    ig_mapping *m = compile("{'field_map':{'a':'x','b.c':'y','b':'z','d':'w'},'transform_rules':["
                            "{'target':'a','op':'uppercase'},{'target':'b.c','op':'to_number'},"
                            "{'target':'d','op':'trim'}],'required':['a','b.c']}");
    expect(m, IG_PULL, "{'x':'q','y':'1','w':' w '}", "{'a':'Q','b':{'c':1},'d':'w'}");
    expect_fail(m, IG_PULL, "{'x':'q','y':'1','z':{'k':2}}", INTEG_EMAPPING, "field 'b.c' missing");
    ig_mapping_free(m);

    /* A copy that replaces a container its predecessor walked through. */
    m = compile("{'field_map':{'a.b.c':'p','a.b':'q','a.b.d':'r'}}");
    expect(m, IG_PULL, "{'p':1,'q':{'z':0},'r':2}", "{'a':{'b':{'z':0,'d':2}}}");
    expect(m, IG_PULL, "{'p':1,'r':2}", "{'a':{'b':{'c':1,'d':2}}}");
    expect(m, IG_PULL, "{'q':{'z':0},'r':2}", "{'a':{'b':{'z':0,'d':2}}}");
    expect_fail(m, IG_PULL, "{'q':'s','r':2}", INTEG_EMAPPING, "cannot set 'a.b.d': 'a.b' is a string");
    ig_mapping_free(m);

    /* Consecutive sources sharing a prefix that is absent, then present. */
    m = compile("{'field_map':{'a':'p.x','b':'p.y','c':'p.q.z','d':'p.q.w','e':'p'}}");
    expect(m, IG_PULL, "{}", "{}");
    expect(m, IG_PULL, "{'p':{'y':1,'q':{'w':2}}}", "{'b':1,'d':2,'e':{'y':1,'q':{'w':2}}}");
    expect(m, IG_PULL, "{'p':{'x':1,'q':3}}", "{'a':1,'e':{'x':1,'q':3}}");
    ig_mapping_free(m);

    /* More slots than the on-stack arrays hold. */
    char spec[8192] = "{'field_map':{", in[4096] = "{", want[4096] = "{";
    for (int i = 0; i < 80; i++) {
        char f[64];
        snprintf(f, sizeof f, "%s'k%d':'r%d'", i ? "," : "", i, i);
        strcat(spec, f);
        snprintf(f, sizeof f, "%s'r%d':%d", i ? "," : "", i, i);
        strcat(in, f);
        snprintf(f, sizeof f, "%s'k%d':%d", i ? "," : "", i, i);
        strcat(want, f);
    }
    strcat(spec, "},'transform_rules':[{'target':'k79','op':'to_string'}],'required':['k0']}");
    strcat(in, "}");
    strcat(want, "}");
    want[strlen(want) - 3] = '\0';
    strcat(want, "'79'}");
    m = compile(spec);
    expect(m, IG_PULL, in, want);
    expect_fail(m, IG_PULL, "{'r1':1}", INTEG_EMAPPING, "field 'k0' missing (from 'r0')");
    ig_mapping_free(m);

    /* trim on a string longer than the in-place buffer. */
    m = rule1("'op':'trim'");
    char big[700], bin[800], bwant[800];
    memset(big, 'y', 600);
    big[600] = '\0';
    snprintf(bin, sizeof bin, "{'in':'  %s  '}", big);
    snprintf(bwant, sizeof bwant, "{'x':'%s'}", big);
    expect(m, IG_PULL, bin, bwant);
    ig_mapping_free(m);
}

static void test_required(void)
{
    ig_mapping *m = compile("{'field_map':{'email':'properties.email','id':'id'},"
                            "'transform_rules':[{'target':'full','op':'template','template':'{n}'}],"
                            "'required':['email','full','id']}");
    expect(m, IG_PULL, "{'properties':{'email':'e'},'n':'N','id':1}", "{'email':'e','id':1,'full':'N'}");
    expect_fail(m, IG_PULL, "{'n':'N','id':1}", INTEG_EMAPPING,
                "field 'email' missing (from 'properties.email')");
    expect_fail(m, IG_PULL, "{'properties':{'email':null},'n':'N'}", INTEG_EMAPPING,
                "field 'email' missing (from 'properties.email')");
    expect_fail(m, IG_PULL, "{'properties':{'email':'e'},'id':1}", INTEG_EMAPPING, "field 'full' missing");
    /* An empty string is present. */
    expect(m, IG_PULL, "{'properties':{'email':''},'n':'N','id':0}", "{'email':'','id':0,'full':'N'}");
    /* Inverted push does not check the local required list. */
    expect(m, IG_PUSH, "{}", "{}");
    ig_mapping_free(m);
}

/* ------------------------------------------------------------------- push */

static void test_push_plain_inverse(void)
{
    ig_mapping *m = compile("{'field_map':{'email':'properties.email','addr.city':'a[1].c',"
                            "'also_email':'properties.email','n':'num'}}");
    expect(m, IG_PUSH, "{'email':'e','addr':{'city':'Oslo'},'also_email':'other','n':null}",
           "{'properties':{'email':'e'},'a':[null,{'c':'Oslo'}],'num':null}");
    expect(m, IG_PUSH, "{}", "{}");
    ig_mapping_free(m);
}

static void test_push_invertible_rules(void)
{
    /* Identity on push: trim, lowercase, uppercase, default. */
    ig_mapping *m = compile("{'field_map':{'a':'ra','b':'rb','c':'rc','d':'rd'},'transform_rules':["
                            "{'target':'a','op':'trim'},{'target':'b','op':'lowercase'},"
                            "{'target':'c','op':'uppercase'},{'target':'d','op':'default','value':'z'}]}");
    expect(m, IG_PUSH, "{'a':' x ','b':'Bb','c':'cC'}", "{'ra':' x ','rb':'Bb','rc':'cC'}");
    ig_mapping_free(m);

    /* to_number <-> to_string, to_bool -> "true"/"false". */
    m = compile("{'field_map':{'price':'properties.amount','qty':'q','label':'l','vip':'v'},"
                "'transform_rules':[{'target':'price','op':'to_number'},{'target':'label','op':'to_string'},"
                "{'target':'vip','op':'to_bool'}]}");
    expect(m, IG_PULL, "{'properties':{'amount':'12.50'},'l':7,'v':'yes'}",
           "{'price':12.5,'label':'7','vip':true}");
    expect(m, IG_PUSH, "{'price':12.5,'qty':3,'label':'7','vip':true}",
           "{'properties':{'amount':'12.5'},'q':3,'l':7,'v':'true'}");
    expect(m, IG_PUSH, "{'price':12,'label':'','vip':false}",
           "{'properties':{'amount':'12'},'l':null,'v':'false'}");
    expect_fail(m, IG_PUSH, "{'label':'seven'}", INTEG_EMAPPING,
                "field 'l': cannot convert \"seven\" to a number");
    ig_mapping_free(m);

    /* date: from/to swapped. */
    m = compile("{'field_map':{'updated':'ts','day':'d'},'transform_rules':["
                "{'target':'updated','op':'date','from':'epoch_ms','to':'rfc3339'},"
                "{'target':'day','op':'date','from':'rfc3339','to':'yyyy-mm-dd'}]}");
    expect(m, IG_PULL, "{'ts':1714637460123,'d':'2024-05-02T08:11:00Z'}",
           "{'updated':'2024-05-02T08:11:00.123Z','day':'2024-05-02'}");
    expect(m, IG_PUSH, "{'updated':'2024-05-02T08:11:00.123Z','day':'2024-05-02'}",
           "{'ts':1714637460123,'d':'2024-05-02T00:00:00Z'}");
    expect_fail(m, IG_PUSH, "{'updated':'yesterday'}", INTEG_EMAPPING,
                "field 'ts': cannot read \"yesterday\" as rfc3339");
    ig_mapping_free(m);

    /* value_map: one-to-one inverts (values back to their keys). */
    m = compile("{'field_map':{'stage':'properties.dealstage','flag':'f'},'transform_rules':["
                "{'target':'stage','op':'value_map','map':{'closedwon':'won','closedlost':'lost'},"
                "'default':'open'},{'target':'flag','op':'value_map','map':{'Y':true,'N':false}}]}");
    expect(m, IG_PULL, "{'properties':{'dealstage':'closedwon'},'f':'N'}", "{'stage':'won','flag':false}");
    expect(m, IG_PUSH, "{'stage':'lost','flag':true}", "{'properties':{'dealstage':'closedlost'},'f':'Y'}");
    expect(m, IG_PUSH, "{'stage':'open'}", "{'properties':{'dealstage':'open'}}");
    ig_mapping_free(m);

    /* A chain inverts in reverse order: pull trim, to_number, value_map
     * (number keys); push value_map^-1 then to_string. */
    m = compile("{'field_map':{'prio':'p'},'transform_rules':[{'target':'prio','op':'trim'},"
                "{'target':'prio','op':'to_number'},{'target':'prio','op':'value_map',"
                "'map':{'1':'high','2':'low'}}]}");
    expect(m, IG_PULL, "{'p':' 2 '}", "{'prio':'low'}");
    expect(m, IG_PUSH, "{'prio':'low'}", "{'p':'2'}");
    ig_mapping_free(m);

    /* A rule on a field nested in a copied object is inverted inside it. */
    m = compile("{'field_map':{'address':'addr'},'transform_rules':["
                "{'target':'address.zip','op':'to_number'}]}");
    expect(m, IG_PULL, "{'addr':{'zip':'0150','city':'Oslo'}}", "{'address':{'zip':150,'city':'Oslo'}}");
    expect(m, IG_PUSH, "{'address':{'zip':150,'city':'Oslo'}}", "{'addr':{'zip':'150','city':'Oslo'}}");
    ig_mapping_free(m);
}

static void test_push_not_inverted(void)
{
    /* Fields derived by concat/split/template/coalesce, by rules with a
     * source, or by a many-to-one value_map are not pushed. */
    ig_mapping *m = compile(
        "{'field_map':{'name':'n','tags':'t','full':'f','phone':'ph','code':'c','status':'s',"
        "'email':'e','address':'addr'},"
        "'transform_rules':[{'target':'name','op':'concat','sources':['a','b'],'separator':' '},"
        "{'target':'tags','op':'split','separator':','},"
        "{'target':'full','op':'template','template':'{a}'},"
        "{'target':'phone','op':'coalesce','sources':['m','w']},"
        "{'target':'code','op':'uppercase','source':'cc'},"
        "{'target':'status','op':'value_map','map':{'a':'on','b':'on','c':'off'}},"
        "{'target':'address.label','op':'template','template':'{addr.city}'},"
        "{'target':'derived_only','op':'template','template':'{a}'}]}");
    expect(m, IG_PUSH,
           "{'name':'A B','tags':['x'],'full':'A','phone':'1','code':'X','status':'on','email':'e',"
           "'address':{'city':'Oslo','label':'Oslo'},'derived_only':'A'}",
           "{'e':'e','addr':{'city':'Oslo'}}");
    ig_mapping_free(m);
    /* A value_map whose values are objects is not invertible either. */
    m = rule1("'op':'value_map','map':{'a':{'k':1}}");
    expect(m, IG_PUSH, "{'x':{'k':1}}", "{}");
    ig_mapping_free(m);
    /* A non-invertible rule on a parent excludes the fields beneath it. */
    m = compile("{'field_map':{'a.b':'rb','c':'rc'},'transform_rules':["
                "{'target':'a','op':'coalesce','sources':['q']}]}");
    expect(m, IG_PUSH, "{'a':{'b':1},'c':2}", "{'rc':2}");
    ig_mapping_free(m);
}

static void test_push_explicit_reverse(void)
{
    /* reverse.field_map is {"<remote path>": "<local path>"}: in both
     * directions the key is the path written. */
    ig_mapping *m = compile(
        "{'field_map':{'full_name':'properties.fullname','email':'properties.email'},"
        "'transform_rules':[{'target':'email','op':'lowercase'}],"
        "'reverse':{'field_map':{'properties.email':'email','properties.source':'origin'},"
        "'transform_rules':[{'target':'properties.firstname','op':'split','source':'full_name',"
        "'separator':' ','index':0},{'target':'properties.lastname','op':'split',"
        "'source':'full_name','separator':' ','index':-1},"
        "{'target':'properties.label','op':'template','template':'{full_name} <{email}>'},"
        "{'target':'properties.source','op':'default','value':'app'}],"
        "'required':['properties.email']}}");
    expect(m, IG_PUSH, "{'full_name':'Ann Lee','email':'a@x'}",
           "{'properties':{'email':'a@x','firstname':'Ann','lastname':'Lee','label':'Ann Lee <a@x>',"
           "'source':'app'}}");
    expect_fail(m, IG_PUSH, "{'full_name':'Ann Lee'}", INTEG_EMAPPING,
                "field 'properties.email' missing (from 'email')");
    /* Pull is unaffected by reverse. */
    expect(m, IG_PULL, "{'properties':{'fullname':'Ann Lee','email':'A@X'}}",
           "{'full_name':'Ann Lee','email':'a@x'}");
    ig_mapping_free(m);
    /* An empty reverse pushes nothing. */
    m = compile("{'field_map':{'a':'b'},'reverse':{}}");
    expect(m, IG_PUSH, "{'a':1}", "{}");
    ig_mapping_free(m);
}

/* ---------------------------------------------------------------- examples */

static void test_hubspot_contact(void)
{
    ig_mapping *m = compile(
        "{'source_entity':'contacts','target_entity':'contacts',"
        "'field_map':{'email':'properties.email','first_name':'properties.firstname',"
        "'last_name':'properties.lastname','external_updated_at':'properties.lastmodifieddate'},"
        "'transform_rules':[{'target':'email','op':'trim'},{'target':'email','op':'lowercase'},"
        "{'target':'full_name','op':'template','template':'{properties.firstname} {properties.lastname}'}],"
        "'required':['email']}");
    const char *remote = "{'id':'512','properties':{'email':' Ann@Example.com ','firstname':'Ann',"
                         "'lastname':'Lee','lastmodifieddate':'2024-05-02T08:11:00.000Z'}}";
    expect(m, IG_PULL, remote,
           "{'email':'ann@example.com','first_name':'Ann','last_name':'Lee',"
           "'external_updated_at':'2024-05-02T08:11:00.000Z','full_name':'Ann Lee'}");
    /* Push: plain copies back; full_name is derived, so not pushed. */
    expect(m, IG_PUSH,
           "{'email':'ann@example.com','first_name':'Ann','last_name':'Lee',"
           "'external_updated_at':'2024-05-02T08:11:00.000Z','full_name':'Ann Lee'}",
           "{'properties':{'email':'ann@example.com','firstname':'Ann','lastname':'Lee',"
           "'lastmodifieddate':'2024-05-02T08:11:00.000Z'}}");
    expect_fail(m, IG_PULL, "{'id':'513','properties':{'firstname':'Bo'}}", INTEG_EMAPPING,
                "field 'email' missing (from 'properties.email')");
    ig_mapping_free(m);
}

/* ----------------------------------------------------------------- hostile */

static void test_hostile(void)
{
    /* Huge indexes are rejected at compile, never allocated at apply. */
    expect_compile_fail("{'field_map':{'a[999999999]':'b'}}", "index above 100000");
    expect_compile_fail("{'field_map':{'a':'b'},'transform_rules':[{'target':'x[100001]','op':'trim'}]}",
                        "mapping.transform_rules[0].target: invalid path 'x[100001]': index above 100000");
    /* The largest allowed index works and pads with nulls. */
    ig_mapping *m = compile("{'field_map':{'a[100000]':'b'}}");
    json_object *out = NULL;
    CHECK_OK(apply(m, IG_PULL, "{'b':1}", &out));
    CHECK(json_object_array_length(json_object_object_get(out, "a")) == 100001);
    json_object_put(out);
    ig_mapping_free(m);

    /* Deep paths: 32 segments fine, 33 rejected. */
    char spec[600], p32[200] = "k";
    for (int i = 1; i < 32; i++)
        strcat(p32, ".k");
    snprintf(spec, sizeof spec, "{'field_map':{'%s':'%s'}}", p32, p32);
    m = compile(spec);
    ig_mapping_free(m);
    snprintf(spec, sizeof spec, "{'field_map':{'%s.k':'x'}}", p32);
    expect_compile_fail(spec, "deeper than 32 segments");

    /* Too many rules. */
    size_t cap = 1001 * 32 + 100;
    char *big = malloc(cap);
    strcpy(big, "{'field_map':{},'transform_rules':[");
    for (int i = 0; i < 1001; i++)
        strcat(big, i ? ",{'target':'a','op':'trim'}" : "{'target':'a','op':'trim'}");
    strcat(big, "]}");
    expect_compile_fail(big, "mapping.transform_rules: more than 1000 rules");
    free(big);

    /* Input that is not what the spec expects never crashes. */
    m = compile("{'field_map':{'a':'x.y[2].z','b':'x'},'transform_rules':["
                "{'target':'a','op':'to_number'},{'target':'c','op':'concat','sources':['x.w']},"
                "{'target':'d','op':'template','template':'{x[0]}'}]}");
    expect(m, IG_PULL, "{'x':'str'}", "{'b':'str'}");
    expect(m, IG_PULL, "{'x':[1,2]}", "{'b':[1,2],'d':'1'}");
    expect(m, IG_PULL, "{'x':{'y':[0,0,{'z':' 4 '}]}}", "{'b':{'y':[0,0,{'z':' 4 '}]},'a':4}");
    expect(m, IG_PULL, "{'x':{'y':{'2':{'z':'1'}}}}", "{'b':{'y':{'2':{'z':'1'}}}}");
    expect_fail(m, IG_PULL, "{'x':{'w':{'k':1}}}", INTEG_EMAPPING,
                "field 'c': cannot use an object from 'x.w' as text");
    ig_mapping_free(m);

    /* Keys with path syntax, quotes and NULs in values. */
    m = compile("{'field_map':{'[`we.ird[0]`]':'[`a]b`]','v':'s'},'transform_rules':["
                "{'target':'v','op':'to_number'}]}");
    expect(m, IG_PULL, "{'a]b':1}", "{'we.ird[0]':1}");
    expect_fail(m, IG_PULL, "{'s':'1\\u00002'}", INTEG_EMAPPING,
                "field 'v': cannot convert \"1\\u00002\" to a number");
    ig_mapping_free(m);
    m = rule1("'op':'date','from':'rfc3339','to':'epoch_s'");
    pull_x_fail(m, "'2024-05-02T08:11:00Z\\u0000junk'", "as rfc3339");
    ig_mapping_free(m);
}

/* ------------------------------------------------------------------ threads */

typedef struct {
    const ig_mapping *m;
    int failures;
} thr_arg;

static void *thr_main(void *p)
{
    thr_arg *a = p;
    json_object *in = js("{'id':'512','properties':{'email':' Ann@Example.com ','firstname':'Ann',"
                         "'lastname':'Lee','amount':'12.5','ts':1714637460123}}");
    json_object *want = js("{'email':'ann@example.com','full_name':'Ann Lee','amount':12.5,"
                           "'updated':'2024-05-02T08:11:00.123Z'}");
    for (int i = 0; i < 2000; i++) {
        json_object *out = NULL;
        if (ig_mapping_apply(a->m, IG_PULL, in, &out) != INTEG_OK || !json_object_equal(out, want))
            a->failures++;
        json_object_put(out);
    }
    json_object_put(want);
    json_object_put(in);
    return NULL;
}

static void test_threads(void)
{
    ig_mapping *m = compile("{'field_map':{'email':'properties.email','amount':'properties.amount',"
                            "'updated':'properties.ts'},'transform_rules':[{'target':'email','op':'trim'},"
                            "{'target':'email','op':'lowercase'},{'target':'amount','op':'to_number'},"
                            "{'target':'updated','op':'date','from':'epoch_ms','to':'rfc3339'},"
                            "{'target':'full_name','op':'template',"
                            "'template':'{properties.firstname} {properties.lastname}'}]}");
    pthread_t t[4];
    thr_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i].m = m;
        a[i].failures = 0;
        CHECK(pthread_create(&t[i], NULL, thr_main, &a[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(a[i].failures == 0);
    }
    ig_mapping_free(m);
}

int main(void)
{
    RUN(test_path_syntax_ok);
    RUN(test_path_syntax_bad);
    RUN(test_path_get);
    RUN(test_path_set);
    RUN(test_compile_errors);
    RUN(test_apply_args);
    RUN(test_pull_field_map);
    RUN(test_rule_trim_case);
    RUN(test_rule_to_number);
    RUN(test_rule_to_string);
    RUN(test_rule_to_bool);
    RUN(test_rule_default);
    RUN(test_rule_date);
    RUN(test_rule_concat);
    RUN(test_rule_split);
    RUN(test_rule_value_map);
    RUN(test_rule_template);
    RUN(test_rule_coalesce);
    RUN(test_rules_in_order);
    RUN(test_internal_fast_paths);
    RUN(test_required);
    RUN(test_push_plain_inverse);
    RUN(test_push_invertible_rules);
    RUN(test_push_not_inverted);
    RUN(test_push_explicit_reverse);
    RUN(test_hubspot_contact);
    RUN(test_hostile);
    RUN(test_threads);
    TEST_END();
}
