/*
 * otter service: the store's notify-next bookkeeping (claims), MQTT deliveries and the outbox of
 * answers. See ota_store.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "ota_store.h"
#include "ota_store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/** Claims the pending things no other handle holds (this handle's own claims included). */
static int collect_claims(ota_store_t *s, int64_t now, rows_t *rows)
{
    ota_db_stmt_t *st;
    int rc = prep(
        s, &st,
        "UPDATE things SET notify_lease_ms = ?1 + " STR(
            OTA_STORE_NOTIFY_LEASE_MS) ", notify_owner = ?2 WHERE change_seq <> handled_seq AND "
                                       "(notify_lease_ms <= ?1 OR notify_owner = ?2) "
                                       "RETURNING announced_job, name, change_seq");
    if (rc)
        return rc;
    ota_db_bind_int64(st, 1, now);
    ota_db_bind_int64(st, 2, s->claim_id);
    int r;
    while ((r = ota_db_step(st)) == OTA_DB_ROW) {
        if (rows_push(rows, ota_db_column_text(st, 0), ota_db_column_text(st, 1),
                      ota_db_column_int64(st, 2), 0)) {
            rc = fail(s, OTA_STORE_ERROR, "out of memory");
            break;
        }
    }
    if (!rc && r != OTA_DB_DONE)
        rc = fail_db(s, "claim things to notify");
    ota_db_finalize(st);
    return rc;
}

int ota_store_notify_pending(ota_store_t *store, ota_store_notify_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    int64_t now = ota_store_now_ms();
    rows_t rows = {0};
    /* claim in one write transaction: another handle's claim is seen, or waits for this one */
    int rc = begin(store);
    if (!rc)
        rc = collect_claims(store, now, &rows);
    rc = finish(store, rc);
    size_t *idx = rows.n ? malloc(2 * rows.n * sizeof *idx) : NULL;
    if (!rc && rows.n && !idx)
        rc = fail(store, OTA_STORE_ERROR, "out of memory");
    for (size_t i = 0; idx && i < rows.n; i++)
        idx[i] = i;
    if (idx)
        sort_idx(&rows, idx, idx + rows.n, rows.n);
    for (size_t k = 0; !rc && k < rows.n; k++) {
        size_t i = idx[k];
        if (cb(ctx, rows.thing[i], rows.num[i], rows.job[i]))
            break;
    }
    free(idx);
    rows_free(&rows);
    if (!rc)
        ok(store);
    return rc;
}

int ota_store_notify_done(ota_store_t *store, const char *thing, int64_t change_seq,
                          const char *announced_job_id)
{
    if (!store)
        return OTA_STORE_INVALID;
    if (!ota_store_valid_thing_name(thing))
        return fail(store, OTA_STORE_INVALID, "invalid thing name");
    ota_db_stmt_t *st;
    int rc =
        prep(store, &st,
             change_seq >= 0
                 ? "UPDATE things SET announced_job = ?1, handled_seq = ?3, notify_lease_ms = 0 "
                   "WHERE name = ?2 AND handled_seq < ?3"
                 : "UPDATE things SET announced_job = ?1 WHERE name = ?2");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, announced_job_id ? announced_job_id : "");
    ota_db_bind_text(st, 2, thing);
    if (change_seq >= 0)
        ota_db_bind_int64(st, 3, change_seq);
    rc = step_done(store, st, "record notification");
    ota_db_finalize(st);
    if (rc)
        return rc;
    if (ota_db_changes(store->db) == 0) {
        int64_t n = 0;
        if ((rc = query_int(store, "SELECT COUNT(*) FROM things WHERE name = ?", thing, NULL, &n)))
            return rc;
        if (!n)
            return fail(store, OTA_STORE_NOT_FOUND, "thing '%s' not found", thing);
    }
    ok(store);
    return OTA_STORE_OK;
}

int ota_store_deliveries_forget(ota_store_t *store, const char *session)
{
    if (!store || !session)
        return OTA_STORE_INVALID;
    ota_db_stmt_t *st;
    int rc = prep(store, &st, "DELETE FROM deliveries WHERE session = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, session);
    rc = step_done(store, st, "forget deliveries");
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}

int ota_store_notify_list_get(ota_store_t *store, const char *thing, int64_t *signature, int *known)
{
    *signature = 0;
    *known = 0;
    if (!store || !ota_store_valid_thing_name(thing))
        return store ? fail(store, OTA_STORE_INVALID, "invalid thing name") : OTA_STORE_INVALID;
    ota_db_stmt_t *st;
    int rc = prep(store, &st, "SELECT announced_list FROM things WHERE name = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, thing);
    int r = ota_db_step(st);
    if (r == OTA_DB_ROW) {
        *known = !ota_db_column_is_null(st, 0);
        *signature = ota_db_column_int64(st, 0);
    } else if (r == OTA_DB_DONE) {
        rc = fail(store, OTA_STORE_NOT_FOUND, "thing '%s' not found", thing);
    } else {
        rc = fail_db(store, "read announced list");
    }
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}

int ota_store_notify_list_done(ota_store_t *store, const char *thing, int64_t signature)
{
    if (!store || !ota_store_valid_thing_name(thing))
        return store ? fail(store, OTA_STORE_INVALID, "invalid thing name") : OTA_STORE_INVALID;
    ota_db_stmt_t *st;
    int rc = prep(store, &st, "UPDATE things SET announced_list = ? WHERE name = ?");
    if (rc)
        return rc;
    ota_db_bind_int64(st, 1, signature);
    ota_db_bind_text(st, 2, thing);
    rc = step_done(store, st, "record announced list");
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}

int ota_store_outbox_add(ota_store_t *store, const char *topic, const char *payload, int64_t now_ms,
                         int64_t *id)
{
    if (!store || !topic || !payload || !id)
        return store ? fail(store, OTA_STORE_INVALID, "outbox: NULL argument") : OTA_STORE_INVALID;
    ota_db_stmt_t *st;
    int rc = prep(store, &st,
                  "INSERT INTO outbox(topic, payload, created_ms, owner) VALUES(?, ?, ?, ?)");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, topic);
    ota_db_bind_text(st, 2, payload);
    ota_db_bind_int64(st, 3, now_ms);
    ota_db_bind_text(st, 4, store->instance);
    rc = step_done(store, st, "add to the outbox");
    ota_db_finalize(st);
    if (!rc) {
        *id = ota_db_last_insert_id(store->db);
        ok(store);
    }
    return rc;
}

int ota_store_outbox_remove(ota_store_t *store, int64_t id)
{
    if (!store)
        return OTA_STORE_INVALID;
    ota_db_stmt_t *st;
    int rc = prep(store, &st, "DELETE FROM outbox WHERE id = ?");
    if (rc)
        return rc;
    ota_db_bind_int64(st, 1, id);
    rc = step_done(store, st, "remove from the outbox");
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}

/* Deletes the outbox entries sql names (?1 before_ms, ?2 this instance, and ?3 live_since_ms
 * when with_live); *n (if given) how many. */
static int outbox_delete(ota_store_t *store, const char *sql, int64_t before_ms, int with_live,
                         int64_t live_since_ms, const char *what, size_t *n)
{
    if (n)
        *n = 0;
    if (!store)
        return OTA_STORE_INVALID;
    ota_db_stmt_t *st;
    int rc = prep(store, &st, sql);
    if (rc)
        return rc;
    ota_db_bind_int64(st, 1, before_ms);
    ota_db_bind_text(st, 2, store->instance);
    if (with_live)
        ota_db_bind_int64(st, 3, live_since_ms);
    rc = step_done(store, st, what);
    ota_db_finalize(st);
    if (!rc) {
        if (n)
            *n = (size_t)ota_db_changes(store->db);
        ok(store);
    }
    return rc;
}

int ota_store_outbox_expire(ota_store_t *store, int64_t before_ms, size_t *n)
{
    return outbox_delete(store,
                         "DELETE FROM outbox WHERE created_ms < ?1 AND (owner = ?2 OR owner = '')",
                         before_ms, 0, 0, "expire outbox entries", n);
}

int ota_store_outbox_expire_orphans(ota_store_t *store, int64_t before_ms, int64_t now_ms,
                                    int64_t live_ms, size_t *n)
{
    return outbox_delete(
        store,
        "DELETE FROM outbox WHERE created_ms < ?1 AND owner <> ?2 AND owner <> '' AND "
        "owner NOT IN (SELECT name FROM instances WHERE beat_ms >= ?3)",
        before_ms, 1, now_ms - live_ms, "expire outbox entries of stopped instances", n);
}

int ota_store_outbox_list(ota_store_t *store, ota_store_outbox_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    ota_db_stmt_t *st;
    int rc = 0;
    if (store->instance[0] != '\0') {
        rc = prep(store, &st, "UPDATE outbox SET owner = ? WHERE owner = ''");
        if (rc)
            return rc;
        ota_db_bind_text(st, 1, store->instance);
        rc = step_done(store, st, "take over the outbox");
        ota_db_finalize(st);
    }
    if (!rc)
        rc = prep(store, &st, "SELECT id, topic, payload FROM outbox WHERE owner = ? ORDER BY id");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, store->instance);
    int r;
    while ((r = ota_db_step(st)) == OTA_DB_ROW) {
        if (cb(ctx, ota_db_column_int64(st, 0), ota_db_column_text(st, 1),
               ota_db_column_text(st, 2)) != 0)
            break;
    }
    if (r != OTA_DB_ROW && r != OTA_DB_DONE)
        rc = fail_db(store, "list the outbox");
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}
