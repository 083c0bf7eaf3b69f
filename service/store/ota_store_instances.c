/*
 * otter service: the store's record of live service instances (heartbeats)
 * and the outbox entries an instance that stopped beating leaves behind.
 * See ota_store.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "ota_store.h"
#include "ota_store_internal.h"

#include <stdlib.h>
#include <string.h>

/** Instances silent this long are forgotten (their row goes). */
#define INSTANCE_FORGET_MS (3600 * 1000)

int ota_store_set_instance(ota_store_t *store, const char *name)
{
    if (!store)
        return OTA_STORE_INVALID;
    if (!name || strlen(name) > OTA_STORE_INSTANCE_MAX)
        return fail(store, OTA_STORE_INVALID, "instance name missing or longer than %d",
                    OTA_STORE_INSTANCE_MAX);
    memcpy(store->instance, name, strlen(name) + 1);
    /* a name the history cannot record leaves the recorder as it was */
    (void)ota_db_set_label(store->db, name);
    ok(store);
    return OTA_STORE_OK;
}

int ota_store_set_recorder(ota_store_t *store, const char *name)
{
    if (!store)
        return OTA_STORE_INVALID;
    if (!name || ota_db_set_label(store->db, name) != 0)
        return fail(store, OTA_STORE_INVALID,
                    "recorder name missing, longer than %d or with spaces, quotes or backslashes",
                    OTA_STORE_INSTANCE_MAX);
    ok(store);
    return OTA_STORE_OK;
}

/** Counts the live instances serving one kind of request. */
static int count_live(ota_store_t *s, const char *sql, int64_t since, int *out)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st, sql);
    if (rc)
        return rc;
    ota_db_bind_int64(st, 1, since);
    int r = ota_db_step(st);
    if (r == OTA_DB_ROW)
        *out = (int)ota_db_column_int64(st, 0);
    else
        rc = fail_db(s, "count live instances");
    ota_db_finalize(st);
    return rc;
}

/** Upserts this instance's heartbeat row and forgets long-silent instances. */
static int beat(ota_store_t *s, int serves_jobs, int serves_streams, int64_t now_ms)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st,
                  "INSERT INTO instances(name, serves_jobs, serves_streams, beat_ms) "
                  "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(name) DO UPDATE SET "
                  "serves_jobs = excluded.serves_jobs, serves_streams = excluded.serves_streams, "
                  "beat_ms = excluded.beat_ms");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, s->instance);
    ota_db_bind_int64(st, 2, serves_jobs ? 1 : 0);
    ota_db_bind_int64(st, 3, serves_streams ? 1 : 0);
    ota_db_bind_int64(st, 4, now_ms);
    rc = step_done(s, st, "record a heartbeat");
    ota_db_finalize(st);
    if (rc)
        return rc;
    if ((rc = prep(s, &st, "DELETE FROM instances WHERE beat_ms < ?")))
        return rc;
    ota_db_bind_int64(st, 1, now_ms - INSTANCE_FORGET_MS);
    rc = step_done(s, st, "forget silent instances");
    ota_db_finalize(st);
    return rc;
}

int ota_store_instance_beat(ota_store_t *store, int serves_jobs, int serves_streams, int64_t now_ms,
                            int64_t live_ms, int *jobs_live, int *streams_live)
{
    if (!store)
        return OTA_STORE_INVALID;
    if (store->instance[0] == '\0')
        return fail(store, OTA_STORE_INVALID, "heartbeat: the handle has no instance name");
    int jobs = 0, streams = 0;
    int rc = begin(store);
    if (!rc)
        rc = beat(store, serves_jobs, serves_streams, now_ms);
    if (!rc)
        rc = count_live(store,
                        "SELECT COUNT(*) FROM instances WHERE serves_jobs = 1 AND beat_ms >= ?",
                        now_ms - live_ms, &jobs);
    if (!rc)
        rc = count_live(store,
                        "SELECT COUNT(*) FROM instances WHERE serves_streams = 1 AND beat_ms >= ?",
                        now_ms - live_ms, &streams);
    rc = finish(store, rc);
    if (!rc) {
        if (jobs_live)
            *jobs_live = jobs;
        if (streams_live)
            *streams_live = streams;
        ok(store);
    }
    return rc;
}

int ota_store_instance_claim_stopped(ota_store_t *store, int64_t now_ms, int64_t live_ms,
                                     char *name, size_t cap)
{
    if (!store || !name || cap < OTA_STORE_INSTANCE_MAX + 1)
        return OTA_STORE_INVALID;
    name[0] = '\0';
    ota_db_stmt_t *st;
    int rc = begin(store);
    if (!rc)
        rc = prep(store, &st,
                  "DELETE FROM instances WHERE name = (SELECT name FROM instances WHERE "
                  "serves_jobs = 1 AND beat_ms < ?1 AND name <> ?2 ORDER BY beat_ms LIMIT 1) "
                  "RETURNING name");
    if (!rc) {
        ota_db_bind_int64(st, 1, now_ms - live_ms);
        ota_db_bind_text(st, 2, store->instance);
        int r = ota_db_step(st);
        if (r == OTA_DB_ROW)
            copy_col(name, cap, st, 0);
        else if (r != OTA_DB_DONE)
            rc = fail_db(store, "claim a stopped instance");
        ota_db_finalize(st);
    }
    rc = finish(store, rc);
    if (rc) {
        name[0] = '\0';
        return rc;
    }
    ok(store);
    return name[0] != '\0';
}

int ota_store_instance_leave(ota_store_t *store)
{
    if (!store)
        return OTA_STORE_INVALID;
    if (store->instance[0] == '\0')
        return fail(store, OTA_STORE_INVALID, "the handle has no instance name");
    ota_db_stmt_t *st;
    int rc = prep(store, &st, "DELETE FROM instances WHERE name = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, store->instance);
    rc = step_done(store, st, "leave the live instances");
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}

/** Makes the entries of instances that are not live this instance's; their ids into *ids. */
static int take_orphans(ota_store_t *s, int64_t since, int64_t **ids, size_t *n)
{
    ota_db_stmt_t *st;
    size_t cap = 0;
    int rc = prep(s, &st,
                  "UPDATE outbox SET owner = ?1 WHERE owner <> ?1 AND owner NOT IN "
                  "(SELECT name FROM instances WHERE beat_ms >= ?2) RETURNING id");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, s->instance);
    ota_db_bind_int64(st, 2, since);
    int r;
    while ((r = ota_db_step(st)) == OTA_DB_ROW) {
        if (*n == cap) {
            size_t c = cap ? 2 * cap : 16;
            int64_t *t = realloc(*ids, c * sizeof *t);
            if (!t) {
                rc = fail(s, OTA_STORE_ERROR, "out of memory");
                break;
            }
            *ids = t;
            cap = c;
        }
        (*ids)[(*n)++] = ota_db_column_int64(st, 0);
    }
    if (!rc && r != OTA_DB_DONE)
        rc = fail_db(s, "take over the outbox of stopped instances");
    ota_db_finalize(st);
    return rc;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int ota_store_outbox_adopt(ota_store_t *store, int64_t now_ms, int64_t live_ms,
                           ota_store_outbox_cb cb, void *ctx, size_t *n)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    if (store->instance[0] == '\0')
        return fail(store, OTA_STORE_INVALID, "outbox: the handle has no instance name");
    int64_t *ids = NULL;
    size_t count = 0;
    int rc = begin(store);
    if (!rc)
        rc = take_orphans(store, now_ms - live_ms, &ids, &count);
    rc = finish(store, rc);
    if (rc)
        count = 0;
    if (count > 1)
        qsort(ids, count, sizeof *ids, cmp_id);
    ota_db_stmt_t *st = NULL;
    for (size_t i = 0; !rc && i < count; i++) {
        if ((rc = prep(store, &st, "SELECT topic, payload FROM outbox WHERE id = ? AND owner = ?")))
            break;
        ota_db_bind_int64(st, 1, ids[i]);
        ota_db_bind_text(st, 2, store->instance);
        int r = ota_db_step(st);
        int stop = 0;
        if (r == OTA_DB_ROW)
            stop = cb(ctx, ids[i], ota_db_column_text(st, 0), ota_db_column_text(st, 1));
        else if (r != OTA_DB_DONE)
            rc = fail_db(store, "read an adopted outbox entry");
        ota_db_finalize(st);
        if (stop)
            break;
    }
    free(ids);
    if (n)
        *n = rc ? 0 : count;
    if (!rc)
        ok(store);
    return rc;
}
