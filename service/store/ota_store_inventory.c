/*
 * otter service: the things with their attributes, read in one statement.
 * See ota_store.h.
 *
 * One query gives every thing's row, then its stored attributes in key order
 * (bytes), then its presence rows, all ordered by thing as
 * ota_store_thing_list() orders them; one pass groups them by thing, computes
 * its presence and merges the computed attributes in, as
 * ota_store_thing_attr_list() does for one thing. A listing thus costs one
 * statement whatever the fleet's size.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "ota_store.h"
#include "ota_store_internal.h"

/* Columns: name, created_ms, kind (0 an attribute or none, 1 presence), key, value, then
 * updated_ms for an attribute, or broker and PRESENCE_ROW_COLS for presence. */
#define THING_ROWS(WHERE)                                                                          \
    "SELECT t.name AS name, t.created_ms AS created_ms, 0 AS kind, a.key AS key, "                 \
    "a.value AS value, a.updated_ms AS n1, 0 AS n2, 0 AS n3, 0 AS n4, NULL AS n5 "                 \
    "FROM things t LEFT JOIN thing_attrs a ON a.thing = t.name" WHERE " UNION ALL "                \
    "SELECT t.name, t.created_ms, 1, NULL, NULL, p.broker, " PRESENCE_ROW_COLS(                    \
        "p", "p.broker") " FROM things t JOIN presence p ON p.thing = t.name" WHERE
#define INVENTORY_SQL(WHERE)                                                                       \
    "SELECT name, created_ms, kind, key, value, n1, n2, n3, n4, n5 FROM (" THING_ROWS(             \
        WHERE) ") x ORDER BY name, kind, key COLLATE \"C\""

/** A stored attribute of the thing being read. */
typedef struct {
    char *key, *value;
    int64_t updated_ms;
} stored_t;

/** The thing being read and what was read of it. */
typedef struct {
    ota_store_thing_t thing;
    int have;         /* a thing is being read */
    stored_t *stored; /* its stored attributes, in key order */
    size_t n_stored, cap_stored;
    ota_store_presence_t presence;
    ota_store_attr_t *out; /* what the callback is given */
    size_t n_out, cap_out;
    char computed[3][OTA_STORE_ATTR_VALUE_MAX + 1]; /* the computed attributes' values */
} reading_t;

static void forget_stored(reading_t *r)
{
    for (size_t i = 0; i < r->n_stored; i++) {
        free(r->stored[i].key);
        free(r->stored[i].value);
    }
    r->n_stored = 0;
}

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? 2 * *cap : 16;
    void *p = realloc(*v, c * size);
    if (!p)
        return -1;
    *v = p;
    *cap = c;
    return 0;
}

/* Adds an attribute to what the callback is given (computed values are copied to r). */
static int add_out(void *ctx, const char *key, const char *value, int64_t updated_ms)
{
    reading_t *r = ctx;
    if (grow((void **)&r->out, &r->cap_out, r->n_out, sizeof *r->out))
        return -1;
    if (ota_store_presence_computed(key)) {
        size_t i = strcmp(key, OTA_STORE_ATTR_CONNECTED) == 0      ? 0
                   : strcmp(key, OTA_STORE_ATTR_CONNECTED_TO) == 0 ? 1
                                                                   : 2;
        strncpy(r->computed[i], value, sizeof r->computed[i] - 1);
        r->computed[i][sizeof r->computed[i] - 1] = '\0';
        value = r->computed[i];
    }
    r->out[r->n_out++] = (ota_store_attr_t){key, value, updated_ms};
    return 0;
}

/* Gives the thing read to the callback: 1 to stop, -1 out of memory, else 0. */
static int flush(reading_t *r, ota_store_thing_attrs_cb cb, void *ctx)
{
    if (!r->have)
        return 0;
    r->have = 0;
    presence_done(&r->presence);
    r->n_out = 0;
    size_t next = 0;
    int bad = 0;
    for (size_t i = 0; !bad && i < r->n_stored; i++)
        bad = presence_attrs_before(&r->presence, &next, r->stored[i].key, add_out, r) ||
              add_out(r, r->stored[i].key, r->stored[i].value, r->stored[i].updated_ms);
    if (!bad)
        bad = presence_attrs_before(&r->presence, &next, NULL, add_out, r);
    int stop = bad ? -1 : cb(ctx, &r->thing, r->out, r->n_out) ? 1 : 0;
    forget_stored(r);
    return stop;
}

/* Takes one row: a new thing starts, or an attribute or presence row of the current one. */
static int take_row(reading_t *r, ota_db_stmt_t *st, ota_store_thing_attrs_cb cb, void *ctx)
{
    const char *name = ota_db_column_text(st, 0);
    if (!name)
        return 0;
    if (!r->have || strcmp(name, r->thing.name) != 0) {
        int stop = flush(r, cb, ctx);
        if (stop)
            return stop;
        memset(&r->thing, 0, sizeof r->thing);
        copy_col(r->thing.name, sizeof r->thing.name, st, 0);
        r->thing.created_ms = ota_db_column_int64(st, 1);
        memset(&r->presence, 0, sizeof r->presence);
        r->have = 1;
    }
    if (ota_db_column_int64(st, 2) == 1) {
        presence_add_row(&r->presence, ota_db_column_int64(st, 5), ota_db_column_int64(st, 6),
                         ota_db_column_int64(st, 7), ota_db_column_int64(st, 8),
                         ota_db_column_is_null(st, 9), ota_db_column_int64(st, 9));
        return 0;
    }
    const char *key = ota_db_column_text(st, 3), *value = ota_db_column_text(st, 4);
    if (!key || !value || ota_store_presence_computed(key))
        return 0; /* a thing without attributes; computed ones are never stored since schema 7 */
    if (grow((void **)&r->stored, &r->cap_stored, r->n_stored, sizeof *r->stored))
        return -1;
    stored_t *a = &r->stored[r->n_stored];
    if (!(a->key = strdup(key)) || !(a->value = strdup(value))) {
        free(a->key);
        return -1;
    }
    a->updated_ms = ota_db_column_int64(st, 5);
    r->n_stored++;
    return 0;
}

int thing_list_attrs_of(ota_store_t *store, int which, const char *arg, ota_store_thing_attrs_cb cb,
                        void *ctx)
{
    static const char *const sql[] = {
        INVENTORY_SQL(""), INVENTORY_SQL(" WHERE t.name = ?1"),
        INVENTORY_SQL(" WHERE t.name IN (SELECT thing FROM group_members WHERE grp = ?1)")};
    ota_db_stmt_t *st;
    int rc = prep(store, &st, sql[which]);
    if (rc)
        return rc;
    if (which != LIST_ALL)
        ota_db_bind_text(st, 1, arg);
    reading_t r;
    memset(&r, 0, sizeof r);
    int step = OTA_DB_DONE, stop = 0;
    while (!stop && (step = ota_db_step(st)) == OTA_DB_ROW)
        stop = take_row(&r, st, cb, ctx);
    if (!stop && step == OTA_DB_DONE)
        stop = flush(&r, cb, ctx);
    if (stop < 0)
        rc = fail(store, OTA_STORE_ERROR, "out of memory");
    else if (!stop && step != OTA_DB_DONE)
        rc = fail_db(store, "list things");
    ota_db_finalize(st);
    forget_stored(&r);
    free(r.stored);
    free(r.out);
    if (!rc)
        ok(store);
    return rc;
}

int ota_store_thing_list_attrs(ota_store_t *store, const char *thing, ota_store_thing_attrs_cb cb,
                               void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    int rc = thing ? check_thing_name(store, thing, "thing") : OTA_STORE_OK;
    return rc ? rc : thing_list_attrs_of(store, thing ? LIST_ONE : LIST_ALL, thing, cb, ctx);
}

const char *ota_store_attr_find(const ota_store_attr_t *attrs, size_t n, const char *key)
{
    for (size_t i = 0; key && i < n; i++)
        if (strcmp(attrs[i].key, key) == 0)
            return attrs[i].value;
    return NULL;
}
