/*
 * otter service: operator actions on jobs beyond create and cancel: cancel one
 * thing's execution, delete a job. See ota_store.h.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ota_store.h"
#include "ota_store_internal.h"

int ota_store_execution_cancel(ota_store_t *store, const char *job_id, const char *thing, int force,
                               int64_t now_ms)
{
    return ota_store_execution_cancel_why(store, job_id, thing, force, NULL, now_ms);
}

int ota_store_execution_cancel_why(ota_store_t *store, const char *job_id, const char *thing,
                                   int force, const char *details, int64_t now_ms)
{
    if (!store)
        return OTA_STORE_INVALID;
    if (!ota_store_valid_job_id(job_id) || !ota_store_valid_thing_name(thing))
        return fail(store, OTA_STORE_INVALID, "invalid job id or thing name");
    int rc = begin(store);
    if (rc)
        return rc;
    int64_t status = -1;
    rc = query_int(store,
                   "SELECT COALESCE((SELECT status FROM executions WHERE job = ? AND thing = ?), "
                   "-1)",
                   job_id, thing, &status);
    if (!rc && status < 0)
        rc = fail(store, OTA_STORE_NOT_FOUND, "thing '%s' has no execution of job '%s'", thing,
                  job_id);
    if (!rc && ota_store_exec_status_is_terminal((int)status))
        rc = fail(store, OTA_STORE_TERMINAL, "the execution is already %s",
                  ota_store_exec_status_name((int)status));
    if (!rc && status == OTA_STORE_EXEC_IN_PROGRESS && !force)
        rc = fail(store, OTA_STORE_CONFLICT, "the execution is IN_PROGRESS");
    ota_db_stmt_t *st;
    if (!rc && !(rc = prep(store, &st,
                           "UPDATE executions SET status = " EX_CANCELED ", version = version + 1, "
                           "updated_ms = ?3, deadline_ms = 0, details = COALESCE(?4, details) "
                           "WHERE job = ?1 AND thing = ?2"))) {
        ota_db_bind_text(st, 1, job_id);
        ota_db_bind_text(st, 2, thing);
        ota_db_bind_int64(st, 3, now_ms);
        if (details)
            ota_db_bind_text(st, 4, details);
        else
            ota_db_bind_null(st, 4);
        rc = step_done(store, st, "cancel execution");
        ota_db_finalize(st);
    }
    if (!rc)
        rc = bump_thing(store, thing);
    if (!rc)
        rc = recheck_job(store, job_id, now_ms);
    return finish(store, rc);
}

/* Paths of a stream's files, when no other job than job_id uses the stream. */
static int stream_paths(ota_store_t *s, const char *job_id, const char *stream, char ***paths,
                        size_t *n)
{
    *paths = NULL;
    *n = 0;
    int64_t others = 0;
    int rc = query_int(s, "SELECT COUNT(*) FROM jobs WHERE stream = ?1 AND id <> ?2", stream,
                       job_id, &others);
    if (rc || others)
        return rc;
    ota_db_stmt_t *st;
    if ((rc = prep(s, &st, "SELECT path FROM stream_files WHERE stream = ?")))
        return rc;
    ota_db_bind_text(st, 1, stream);
    while (!rc && ota_db_step(st) == OTA_DB_ROW) {
        char **p = realloc(*paths, (*n + 1) * sizeof **paths);
        char *path = p ? strdup(ota_db_column_text(st, 0)) : NULL;
        if (p)
            *paths = p;
        if (!path)
            rc = fail(s, OTA_STORE_ERROR, "out of memory");
        else
            (*paths)[(*n)++] = path;
    }
    ota_db_finalize(st);
    return rc;
}

/* Runs one statement with one or two text parameters. */
static int run2(ota_store_t *s, const char *sql, const char *a, const char *b, const char *what)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st, sql);
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, a);
    if (b)
        ota_db_bind_text(st, 2, b);
    rc = step_done(s, st, what);
    ota_db_finalize(st);
    return rc;
}

int ota_store_job_delete(ota_store_t *store, const char *job_id, int force, int64_t now_ms)
{
    (void)now_ms;
    if (!store)
        return OTA_STORE_INVALID;
    if (!ota_store_valid_job_id(job_id))
        return fail(store, OTA_STORE_INVALID, "invalid job id");
    int rc = begin(store);
    if (rc)
        return rc;
    ota_db_stmt_t *st;
    int status = -1;
    char stream[OTA_STORE_STREAM_ID_MAX + 1] = "";
    if (!(rc = prep(store, &st, "SELECT status, COALESCE(stream, '') FROM jobs WHERE id = ?"))) {
        ota_db_bind_text(st, 1, job_id);
        if (ota_db_step(st) == OTA_DB_ROW) {
            status = ota_db_column_int64(st, 0);
            copy_col(stream, sizeof stream, st, 1);
        }
        ota_db_finalize(st);
    }
    if (!rc && status < 0)
        rc = fail(store, OTA_STORE_NOT_FOUND, "job '%s' not found", job_id);
    if (!rc && status == OTA_STORE_JOB_IN_PROGRESS && !force)
        rc = fail(store, OTA_STORE_CONFLICT, "job '%s' is IN_PROGRESS", job_id);
    /* Devices with a pending execution are told their next job changed. */
    if (!rc)
        rc = run2(store,
                  "UPDATE things SET change_seq = change_seq + 1 WHERE name IN (SELECT thing "
                  "FROM executions WHERE job = ? AND status IN (" EX_QUEUED ", " EX_IN_PROGRESS
                  ") AND released = 1)",
                  job_id, NULL, "mark things");
    if (!rc)
        rc = run2(store, "DELETE FROM executions WHERE job = ?", job_id, NULL, "delete executions");
    if (!rc)
        rc = run2(store, "DELETE FROM jobs WHERE id = ?", job_id, NULL, "delete job");
    char **paths = NULL;
    size_t n = 0;
    if (!rc && stream[0]) {
        rc = stream_paths(store, job_id, stream, &paths, &n);
        for (size_t i = 0; !rc && i < n; i++)
            rc = run2(store, "DELETE FROM files WHERE path = ?", paths[i], NULL, "delete file");
        if (!rc && n)
            rc = run2(store, "DELETE FROM streams WHERE id = ?", stream, NULL, "delete stream");
    }
    rc = finish(store, rc);
    for (size_t i = 0; i < n; i++) {
        if (!rc)
            unlink(paths[i]); /* after the commit: a rollback keeps the files */
        free(paths[i]);
    }
    free(paths);
    return rc;
}
