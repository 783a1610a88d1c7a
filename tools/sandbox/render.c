/* Field selection, override substitution and the fake-but-stable values
 * every system draws its records from. */
#include "sandbox.h"

#include <stdlib.h>
#include <string.h>

void sel_all(struct sel *s)
{
    memset(s, 0, sizeof *s);
    s->all = 1;
}

void sel_parse(struct sel *s, const char *list)
{
    memset(s, 0, sizeof *s);
    if (!list) {
        s->all = 1;
        return;
    }
    s->buf = strdup(list);
    if (!s->buf) {
        s->all = 1;
        return;
    }
    char *save = NULL;
    for (char *t = strtok_r(s->buf, ",", &save); t && s->n < 64; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        size_t l = strlen(t);
        while (l && t[l - 1] == ' ')
            t[--l] = '\0';
        if (*t)
            s->names[s->n++] = t;
    }
}

void sel_free(struct sel *s)
{
    free(s->buf);
    s->buf = NULL;
    s->n = 0;
}

int sel_has(const struct sel *s, const char *name)
{
    if (!s || s->all)
        return 1;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0)
            return 1;
    return 0;
}

void em_begin(struct emit *e, sbuf *b, const struct sel *sel, const struct override *ov)
{
    e->b = b;
    e->first = 1;
    e->sel = sel;
    e->extra = NULL;
    e->ov = ov;
    e->used = 0;
    e->blank = ov && ov->created;
    e->keep = NULL;
}

static int em_selected(const struct emit *e, const char *name)
{
    return sel_has(e->sel, name) || (e->extra && sel_has(e->extra, name));
}

int em_key(struct emit *e, const char *name)
{
    if (!em_selected(e, name))
        return 0;
    if (!e->first)
        sb_putc(e->b, ',');
    e->first = 0;
    sb_jstr(e->b, name);
    sb_putc(e->b, ':');
    if (e->ov) {
        for (size_t i = 0; i < e->ov->nfields && i < 64; i++) {
            if (strcmp(e->ov->fields[i].name, name) == 0) {
                sb_puts(e->b, e->ov->fields[i].json);
                e->used |= 1ULL << i;
                return 0;
            }
        }
    }
    /* A created record has only what was written plus server-side fields:
     * generated values would be made-up data the client never sent. */
    if (e->blank && !list_has(e->keep, name)) {
        sb_puts(e->b, "null");
        return 0;
    }
    return 1;
}

void em_str(struct emit *e, const char *name, const char *v)
{
    if (em_key(e, name))
        sb_jstr(e->b, v);
}

void em_int(struct emit *e, const char *name, int64_t v)
{
    if (em_key(e, name))
        sb_int(e->b, v);
}

void em_bool(struct emit *e, const char *name, int v)
{
    if (em_key(e, name))
        sb_puts(e->b, v ? "true" : "false");
}

void em_null(struct emit *e, const char *name)
{
    if (em_key(e, name))
        sb_puts(e->b, "null");
}

void em_time(struct emit *e, const char *name, ms_t t, enum time_style st)
{
    if (em_key(e, name)) {
        sb_putc(e->b, '"');
        time_fmt(e->b, t, st);
        sb_putc(e->b, '"');
    }
}

void em_money(struct emit *e, const char *name, int64_t cents, int as_string)
{
    if (em_key(e, name)) {
        if (as_string)
            sb_putc(e->b, '"');
        sb_printf(e->b, "%lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
        if (as_string)
            sb_putc(e->b, '"');
    }
}

void em_rest(struct emit *e)
{
    if (!e->ov)
        return;
    for (size_t i = 0; i < e->ov->nfields && i < 64; i++) {
        if (e->used & (1ULL << i) || !em_selected(e, e->ov->fields[i].name))
            continue;
        if (!e->first)
            sb_putc(e->b, ',');
        e->first = 0;
        sb_jstr(e->b, e->ov->fields[i].name);
        sb_putc(e->b, ':');
        sb_puts(e->b, e->ov->fields[i].json);
    }
}

/* ---- fake values ---------------------------------------------------------- */

static const char *const FIRST[] = {
    "Ann", "Bjørn", "Carla", "David", "Eva", "Farid", "Greta", "Hiro", "Ingrid", "Jonas",
    "Kari", "Liam", "Maja", "Nils", "Olivia", "Pedro", "Quinn", "Rania", "Sven", "Tove",
    "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe", "Astrid", "Mateo", "Chloé", "Emil",
};
static const char *const LAST[] = {
    "Lee", "Hansen", "García", "O'Brien", "Johansen", "Nakamura", "Smith", "Kowalski",
    "Larsen", "Müller", "Rossi", "Dubois", "Andersen", "Nguyen", "Silva", "Berg", "Khan",
    "Olsen", "Novak", "Eriksen", "Haugen", "Ali", "Brown", "Schmidt", "Moreau",
};
static const char *const CITY[][2] = {
    {"Oslo", "Norway"}, {"Bergen", "Norway"}, {"Stockholm", "Sweden"}, {"Copenhagen", "Denmark"},
    {"Berlin", "Germany"}, {"Paris", "France"}, {"Madrid", "Spain"}, {"New York", "United States"},
    {"Austin", "United States"}, {"Toronto", "Canada"}, {"London", "United Kingdom"},
    {"Tokyo", "Japan"}, {"São Paulo", "Brazil"}, {"Helsinki", "Finland"}, {"Dublin", "Ireland"},
};
static const char *const CO_A[] = {
    "Northwind", "Contoso", "Fabrikam", "Tailspin", "Fjord", "Aurora", "Granite", "Harbor",
    "Lumen", "Nordic", "Pioneer", "Summit", "Tundra", "Vertex", "Willow", "Zephyr",
};
static const char *const CO_B[] = {
    "Traders", "Logistics", "Analytics", "Foods", "Energy", "Systems", "Retail", "Labs",
    "Shipping", "Partners", "Textiles", "Robotics",
};
static const char *const CO_C[] = {"AS", "AB", "GmbH", "Inc.", "Ltd", "& Co", "SA", "Oy"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

const char *gen_pick(const struct store *st, int ent, int64_t i, uint64_t salt,
                     const char *const *list, size_t n)
{
    return list[rec_hash(st, ent, i, salt) % n];
}

const char *gen_first(const struct store *st, int ent, int64_t i)
{
    return gen_pick(st, ent, i, 11, FIRST, N(FIRST));
}

const char *gen_last(const struct store *st, int ent, int64_t i)
{
    return gen_pick(st, ent, i, 12, LAST, N(LAST));
}

const char *gen_city(const struct store *st, int ent, int64_t i, const char **country)
{
    size_t k = rec_hash(st, ent, i, 13) % N(CITY);
    if (country)
        *country = CITY[k][1];
    return CITY[k][0];
}

const char *gen_company(const struct store *st, int ent, int64_t i, sbuf *tmp)
{
    sb_reset(tmp);
    sb_printf(tmp, "%s %s %s", gen_pick(st, ent, i, 14, CO_A, N(CO_A)),
              gen_pick(st, ent, i, 15, CO_B, N(CO_B)), gen_pick(st, ent, i, 16, CO_C, N(CO_C)));
    return tmp->p;
}

void gen_phone(sbuf *b, const struct store *st, int ent, int64_t i)
{
    uint64_t h = rec_hash(st, ent, i, 17);
    sb_printf(b, "+47 %03u %02u %03u", (unsigned)(h % 900 + 100), (unsigned)(h / 1000 % 100),
              (unsigned)(h / 100000 % 1000));
}

/* Unique per record: the index is in the address. */
void gen_email(sbuf *b, const struct store *st, int ent, int64_t i)
{
    const char *f = gen_first(st, ent, i), *l = gen_last(st, ent, i);
    for (const char *p = f; *p; p++)
        if ((unsigned char)*p < 0x80 && *p != '\'')
            sb_putc(b, (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
    sb_putc(b, '.');
    for (const char *p = l; *p; p++)
        if ((unsigned char)*p < 0x80 && *p != '\'')
            sb_putc(b, (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
    sb_printf(b, ".%lld@example.com", (long long)i);
}

int64_t gen_amount(const struct store *st, int ent, int64_t i)
{
    return (int64_t)(rec_hash(st, ent, i, 18) % 5000000) + 1000;
}
