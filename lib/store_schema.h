/*
 * The store contract's schema (the table in include/integrations/store.h):
 * for each kind its table name, the indexed fields and their types, plus
 * the indexes the library's queries need. The SQLite store generates its
 * DDL and statements from it; the library uses it to extract the indexed
 * fields once, on its side, for stores with put_fields (version 2).
 */
#ifndef IG_STORE_SCHEMA_H
#define IG_STORE_SCHEMA_H

#include <json-c/json.h>

#include "integrations/store.h"

#define MAX_COLS 12
#define MAX_INDEXES 8

typedef struct col_spec {
    const char *name;
    char type;  /* 's' TEXT, 'i' INTEGER, 'b' INTEGER 0/1 */
    int since;  /* schema version that added the column; 0 means 1 */
} col_spec;

typedef struct index_spec {
    const char *cols; /* comma-separated column names, no spaces */
    int unique;
    int since;        /* schema version that added the index; 0 means 1 */
    int until;        /* schema version that dropped it; 0: still in use */
} index_spec;

typedef struct table_spec {
    const char *table;
    int since;                         /* schema version that added the table; 0 means 1 */
    col_spec cols[MAX_COLS];           /* cols[0] is id; ends at name NULL */
    index_spec indexes[MAX_INDEXES];   /* ends at cols NULL */
} table_spec;

/* Indexed by integ_store_kind; entry 0 is empty. */
extern const table_spec ig_tables[INTEG_KIND_END];

/* The kind's spec, or NULL for a value outside the enum. */
const table_spec *ig_store_spec(integ_store_kind kind);

/* Number of indexed fields (id first). */
int ig_store_field_count(const table_spec *t);

/* Position of an indexed field, -1 if the kind has none of that name. */
int ig_store_field_index(const table_spec *t, const char *name);

/* Set field `col` of t in f (one slot per column, as ig_store_fields_from
 * fills them) for a record written as text; str is lent. A column t does
 * not have is skipped. */
void ig_store_field_set(const table_spec *t, integ_store_field *f, const char *col, integ_field_type type,
                        const char *str, int64_t num);

/* "a string", "an integer", "a boolean" for a field type. */
const char *ig_store_type_words(char type);

/* 1 if v is a JSON value of the field type (an integer within int64). */
int ig_store_value_fits(json_object *v, char type);

/*
 * Take the indexed fields out of a parsed record into out[] (room for
 * MAX_COLS), checking them as put must: id a non-empty string, every other
 * field absent/null or of its type. Strings point into obj.
 */
int ig_store_fields_from(const table_spec *t, json_object *obj, integ_store_field *out,
                         size_t *n_out);

#endif /* IG_STORE_SCHEMA_H */
