/*
 * otter service: the store's periodic work: execution timeouts and rollout releases, and when the
 * next is due. See ota_store.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "ota_store.h"
#include "ota_store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ota_store_expire_timeouts(ota_store_t *store, int64_t now_ms, size_t *n_timed_out)
{
    if (n_timed_out)
        *n_timed_out = 0;
    if (!store)
        return OTA_STORE_INVALID;
    int rc = begin(store);
    if (rc)
        return rc;
    rows_t rows = {0};
    rc = collect(store,
                 "SELECT job, thing, seq, 0 FROM executions WHERE status = " EX_IN_PROGRESS
                 " AND deadline_ms > 0 "
                 "AND deadline_ms <= ?",
                 now_ms, &rows);
    ota_db_stmt_t *st = NULL;
    if (!rc && rows.n)
        rc = prep(store, &st,
                  "UPDATE executions SET status = " EX_TIMED_OUT
                  ", version = version + 1, updated_ms = ?, "
                  "deadline_ms = 0 WHERE seq = ? AND status = " EX_IN_PROGRESS);
    for (size_t i = 0; !rc && i < rows.n; i++) {
        ota_db_reset(st);
        ota_db_bind_int64(st, 1, now_ms);
        ota_db_bind_int64(st, 2, rows.num[i]);
        rc = step_done(store, st, "time out execution");
        if (!rc)
            rc = bump_thing(store, rows.thing[i]);
        if (!rc)
            rc = recheck_job(store, rows.job[i], now_ms);
    }
    ota_db_finalize(st);
    size_t n = rows.n;
    rows_free(&rows);
    rc = finish(store, rc);
    if (!rc && n_timed_out)
        *n_timed_out = n;
    return rc;
}

int ota_store_release_rate(ota_store_t *s, const char *job_id, int64_t rate, int64_t created_ms,
                           int64_t now_ms, size_t *n_released)
{
    int64_t released = 0, elapsed = now_ms > created_ms ? now_ms - created_ms : 0;
    int rc = query_int(s,
                       "SELECT COUNT(*) FROM executions WHERE job = ? AND released = 1 "
                       "AND status <> " EX_SKIPPED,
                       job_id, NULL, &released);
    int64_t allowed = rate * (elapsed / 60000 + 1);
    if (rc || allowed <= released)
        return rc;
    const char *pick = "(SELECT seq FROM executions WHERE job = ?1 AND released = 0 "
                       "ORDER BY seq LIMIT ?2)";
    char sql[512];
    ota_db_stmt_t *st;
    snprintf(sql, sizeof sql,
             "UPDATE things SET change_seq = change_seq + 1 WHERE name IN "
             "(SELECT thing FROM executions WHERE seq IN %s)",
             pick);
    for (int pass = 0; pass < 2 && !rc; pass++) {
        if (pass == 1)
            snprintf(sql, sizeof sql,
                     "UPDATE executions SET released = 1, queued_ms = ?3, updated_ms = ?3 "
                     "WHERE seq IN %s",
                     pick);
        if ((rc = prep(s, &st, sql)))
            break;
        ota_db_bind_text(st, 1, job_id);
        ota_db_bind_int64(st, 2, allowed - released);
        if (pass == 1)
            ota_db_bind_int64(st, 3, now_ms);
        rc = step_done(s, st, "release executions");
        if (!rc && pass == 1 && n_released)
            *n_released += (size_t)ota_db_changes(s->db);
        ota_db_finalize(st);
    }
    return rc ? rc : ota_store_skip_unneeded(s, job_id, NULL, now_ms);
}

int ota_store_rollout_release(ota_store_t *store, int64_t now_ms, size_t *n_released)
{
    if (n_released)
        *n_released = 0;
    if (!store)
        return OTA_STORE_INVALID;
    int rc = begin(store);
    if (rc)
        return rc;
    rows_t rows = {0};
    /* running jobs that still hold executions back: (id, -, created, rate) */
    rc = collect(store,
                 "SELECT id, controlled, created_ms, rollout_per_min FROM jobs j WHERE "
                 "status = " JOB_IN_PROGRESS
                 " AND (rollout_per_min > 0 OR controlled = 1) AND created_ms <= ?1 "
                 "AND EXISTS (SELECT 1 FROM executions e WHERE e.job = j.id AND e.released = 0 "
                 "AND e.status = " EX_QUEUED ")",
                 now_ms, &rows);
    size_t n = 0;
    for (size_t i = 0; !rc && i < rows.n; i++) {
        if (strcmp(rows.thing[i], "1") == 0) /* the "controlled" column */
            rc = ota_store_release_controlled(store, rows.job[i], now_ms, &n);
        else
            rc = ota_store_release_rate(store, rows.job[i], rows.num2[i], rows.num[i], now_ms, &n);
    }
    rows_free(&rows);
    rc = finish(store, rc);
    if (!rc && n_released)
        *n_released = n;
    return rc;
}

int ota_store_next_timed_work(ota_store_t *store, int64_t *out)
{
    if (!store || !out)
        return OTA_STORE_INVALID;
    *out = INT64_MAX;
    int64_t v = 0;
    int rc = query_int(
        store,
        "SELECT COALESCE(MIN(deadline_ms), 0) FROM executions WHERE status = " EX_IN_PROGRESS " "
        "AND deadline_ms > 0",
        NULL, NULL, &v);
    if (rc)
        return rc;
    if (v > 0)
        *out = v;
    /* controlled rollouts: scheduled start, window opening, next minute of the rate */
    if ((rc = ota_store_rollout_next(store, ota_store_now_ms(), out)))
        return rc;
    /* next release: the start of the next minute of each rolling job */
    ota_db_stmt_t *st;
    if ((rc = prep(store, &st,
                   "SELECT j.created_ms, j.rollout_per_min, (SELECT COUNT(*) FROM executions e "
                   "WHERE e.job = j.id AND e.released = 1 AND e.status <> " EX_SKIPPED
                   ") FROM jobs j "
                   "WHERE j.status = " JOB_IN_PROGRESS " AND j.controlled = 0 AND "
                   "j.rollout_per_min > 0 AND EXISTS (SELECT 1 FROM executions e WHERE "
                   "e.job = j.id AND e.released = 0)")))
        return rc;
    int r;
    while ((r = ota_db_step(st)) == OTA_DB_ROW) {
        int64_t created = ota_db_column_int64(st, 0), rate = ota_db_column_int64(st, 1);
        int64_t released = ota_db_column_int64(st, 2);
        /* minute k allows rate * (k + 1): the next release is at minute released / rate */
        int64_t k = rate > 0 ? released / rate : 0;
        int64_t t = created + k * 60000;
        if (t < *out)
            *out = t;
    }
    if (r != OTA_DB_DONE)
        rc = fail_db(store, "next timed work");
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}
