/* One version everywhere: the project version in meson.build (which also
 * names the shared library, libintegrations.so.X.Y.Z, and integrations.pc),
 * the INTEG_VERSION_* macros of integrations.h, integ_version() of the
 * library actually linked, the newest symbol version node of
 * lib/integrations.map (INTEGRATIONS_X.Y = MAJOR.MINOR) and the bindings'
 * package versions.
 *
 *   test_version SOURCE_ROOT     (TEST_PROJECT_VERSION: meson.project_version())
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#ifndef TEST_PROJECT_VERSION
#error "build with -DTEST_PROJECT_VERSION=\"<meson.project_version()>\""
#endif

static const char *root;

static char *slurp(const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "  cannot open %s\n", path);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            char *grown = realloc(buf, 2 * cap + 1);
            if (!grown) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static void test_macros_match_project(void)
{
    char joined[64];
    snprintf(joined, sizeof joined, "%d.%d.%d", INTEG_VERSION_MAJOR, INTEG_VERSION_MINOR,
             INTEG_VERSION_PATCH);
    CHECK_STR(INTEG_VERSION_STRING, TEST_PROJECT_VERSION);
    CHECK_STR(joined, TEST_PROJECT_VERSION);
    /* The macros are plain integers, usable in #if. */
#if INTEG_VERSION_MAJOR < 0 || INTEG_VERSION_MINOR < 0 || INTEG_VERSION_PATCH < 0
    CHECK(!"negative version macro");
#endif
}

static void test_library_matches_headers(void)
{
    CHECK_STR(integ_version(), INTEG_VERSION_STRING);
}

/* MAJOR.MINOR of the project is the newest INTEGRATIONS_X.Y node: adding a
 * node (new symbols) means a new minor version. */
static void test_newest_symbol_node(void)
{
    char *map = slurp("lib/integrations.map");
    CHECK(map != NULL);
    if (!map)
        return;
    int best_major = -1, best_minor = -1;
    for (const char *p = map; (p = strstr(p, "INTEGRATIONS_")) != NULL; p++) {
        int major, minor, used = 0;
        if (sscanf(p, "INTEGRATIONS_%d.%d%n", &major, &minor, &used) == 2 && used > 0 &&
            (major > best_major || (major == best_major && minor > best_minor))) {
            best_major = major;
            best_minor = minor;
        }
    }
    free(map);
    CHECK(best_major >= 0);
    if (best_major != INTEG_VERSION_MAJOR || best_minor != INTEG_VERSION_MINOR) {
        fprintf(stderr, "  newest node INTEGRATIONS_%d.%d, version %s\n", best_major, best_minor,
                INTEG_VERSION_STRING);
        CHECK(!"MAJOR.MINOR differs from the newest symbol version node");
    }
}

/* `needle` + version + `"` occurs in the file. */
static void check_declares(const char *rel, const char *needle)
{
    char *text = slurp(rel);
    CHECK(text != NULL);
    if (!text)
        return;
    char want[256];
    snprintf(want, sizeof want, "%s%s\"", needle, TEST_PROJECT_VERSION);
    if (!strstr(text, want)) {
        fprintf(stderr, "  %s lacks the line %s\n", rel, want + (want[0] == '\n'));
        CHECK(!"binding version differs from the project version");
    }
    free(text);
}

static void test_binding_versions(void)
{
    check_declares("bindings/python/pyproject.toml", "\nversion = \"");
    check_declares("bindings/node/package.json", "\"version\": \"");
    check_declares("bindings/python/integrations/__init__.py", "__version__ = \"");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_version SOURCE_ROOT\n");
        return 2;
    }
    root = argv[1];
    RUN(test_macros_match_project);
    RUN(test_library_matches_headers);
    RUN(test_newest_symbol_node);
    RUN(test_binding_versions);
    TEST_END();
}
