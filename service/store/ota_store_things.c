/*
 * otter service: the store's things. See ota_store.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "ota_store.h"
#include "ota_store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int check_thing_name(ota_store_t *s, const char *name, const char *what)
{
    if (!ota_store_valid_thing_name(name))
        return fail(s, OTA_STORE_INVALID, "invalid %s name '%s' (1..128 of [A-Za-z0-9:_-])", what,
                    name ? name : "(null)");
    return OTA_STORE_OK;
}

int ota_store_thing_create(ota_store_t *store, const char *name, int64_t now_ms)
{
    if (!store)
        return OTA_STORE_INVALID;
    int rc = check_thing_name(store, name, "thing");
    if (rc)
        return rc;
    if (!ota_store_new_name_ok(name))
        return fail(store, OTA_STORE_INVALID, "a thing's name may not start with '-' ('%s')", name);
    ota_db_stmt_t *st;
    if ((rc = prep(store, &st, "INSERT INTO things(name, created_ms) VALUES(?, ?)")))
        return rc;
    ota_db_bind_text(st, 1, name);
    ota_db_bind_int64(st, 2, now_ms);
    int r = ota_db_step(st);
    if (r == OTA_DB_DONE)
        ok(store);
    else if (ota_db_errcode(store->db) == OTA_DB_E_UNIQUE)
        rc = fail(store, OTA_STORE_EXISTS, "thing '%s' already exists", name);
    else
        rc = fail_db(store, "create thing");
    ota_db_finalize(st);
    return rc;
}

int ota_store_thing_get(ota_store_t *store, const char *name, ota_store_thing_t *out)
{
    if (!store || !out)
        return OTA_STORE_INVALID;
    memset(out, 0, sizeof *out);
    int rc = check_thing_name(store, name, "thing");
    if (rc)
        return rc;
    ota_db_stmt_t *st;
    if ((rc = prep(store, &st, "SELECT name, created_ms FROM things WHERE name = ?")))
        return rc;
    ota_db_bind_text(st, 1, name);
    int r = ota_db_step(st);
    if (r == OTA_DB_ROW) {
        copy_col(out->name, sizeof out->name, st, 0);
        out->created_ms = ota_db_column_int64(st, 1);
        ok(store);
    } else if (r == OTA_DB_DONE) {
        rc = fail(store, OTA_STORE_NOT_FOUND, "thing '%s' not found", name);
    } else {
        rc = fail_db(store, "get thing");
    }
    ota_db_finalize(st);
    return rc;
}

/** Lists (name, created_ms) rows of a query with up to one text parameter. */
int list_things(ota_store_t *s, const char *sql, const char *arg, ota_store_thing_cb cb, void *ctx,
                size_t *n)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st, sql);
    if (rc)
        return rc;
    if (arg)
        ota_db_bind_text(st, 1, arg);
    *n = 0;
    int r;
    while ((r = ota_db_step(st)) == OTA_DB_ROW) {
        ota_store_thing_t t;
        copy_col(t.name, sizeof t.name, st, 0);
        t.created_ms = ota_db_column_int64(st, 1);
        (*n)++;
        if (cb(ctx, &t))
            break;
    }
    if (r != OTA_DB_ROW && r != OTA_DB_DONE)
        rc = fail_db(s, "list things");
    ota_db_finalize(st);
    if (!rc)
        ok(s);
    return rc;
}

int ota_store_thing_list(ota_store_t *store, ota_store_thing_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    size_t n;
    return list_things(store, "SELECT name, created_ms FROM things ORDER BY name", NULL, cb, ctx,
                       &n);
}

int ota_store_thing_delete(ota_store_t *store, const char *name)
{
    if (!store)
        return OTA_STORE_INVALID;
    int rc = check_thing_name(store, name, "thing");
    if (rc || (rc = begin(store)))
        return rc;
    int64_t exists = 0, active = 0;
    rc = query_int(store, "SELECT COUNT(*) FROM things WHERE name = ?", name, NULL, &exists);
    if (!rc && !exists)
        rc = fail(store, OTA_STORE_NOT_FOUND, "thing '%s' not found", name);
    if (!rc)
        rc = query_int(store,
                       "SELECT COUNT(*) FROM executions e WHERE thing = ? AND status IN (" EX_QUEUED
                       ", " EX_IN_PROGRESS ")",
                       name, NULL, &active);
    if (!rc && active)
        rc = fail(store, OTA_STORE_CONFLICT,
                  "thing '%s' has %lld pending execution(s); cancel those jobs first", name,
                  (long long)active);
    if (!rc) {
        ota_db_stmt_t *st;
        if (!(rc = prep(store, &st, "DELETE FROM things WHERE name = ?"))) {
            ota_db_bind_text(st, 1, name);
            rc = step_done(store, st, "delete thing");
            ota_db_finalize(st);
        }
    }
    return finish(store, rc);
}
