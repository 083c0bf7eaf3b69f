/*
 * otter service: the store's jobs: creation, counts, status, listing and reading. See ota_store.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "ota_store.h"
#include "ota_store_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ota_store_job_status_name(int status)
{
    static const char *const names[] = {"IN_PROGRESS", "CANCELED", "COMPLETED", "ABORTED"};
    return status >= 0 && status < 4 ? names[status] : "UNKNOWN";
}

void ota_store_job_free(ota_store_job_t *job)
{
    if (!job)
        return;
    free(job->document);
    memset(job, 0, sizeof *job);
}

/** Marks, for every thing with a non-terminal execution of a job, that its next job may change. */
static int bump_job_things(ota_store_t *s, const char *job_id)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st,
                  "UPDATE things SET change_seq = change_seq + 1 WHERE name IN "
                  "(SELECT thing FROM executions WHERE job = ? AND status IN (" EX_QUEUED
                  ", " EX_IN_PROGRESS ") "
                  "AND released = 1)");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, job_id);
    rc = step_done(s, st, "mark things");
    ota_db_finalize(st);
    return rc;
}

int bump_thing(ota_store_t *s, const char *thing)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st, "UPDATE things SET change_seq = change_seq + 1 WHERE name = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, thing);
    rc = step_done(s, st, "mark thing");
    ota_db_finalize(st);
    return rc;
}

/** Ends a job with a status and a reason, and cancels its non-terminal executions
 *  (inside a transaction). */
static int end_job(ota_store_t *s, const char *job_id, int status, const char *code,
                   const char *why, int64_t now_ms)
{
    int rc = bump_job_things(s, job_id);
    ota_db_stmt_t *st;
    if (!rc && !(rc = prep(s, &st,
                           "UPDATE executions SET status = " EX_CANCELED ", version = version + 1, "
                           "updated_ms = ?, deadline_ms = 0 "
                           "WHERE job = ? AND status IN (" EX_QUEUED ", " EX_IN_PROGRESS ")"))) {
        ota_db_bind_int64(st, 1, now_ms);
        ota_db_bind_text(st, 2, job_id);
        rc = step_done(s, st, "cancel executions");
        ota_db_finalize(st);
    }
    if (!rc && !(rc = prep(s, &st,
                           "UPDATE jobs SET status = ?, updated_ms = ?, completed_ms = ?, "
                           "reason_code = ?, reason = ? WHERE id = ?"))) {
        ota_db_bind_int64(st, 1, status);
        ota_db_bind_int64(st, 2, now_ms);
        ota_db_bind_int64(st, 3, now_ms);
        ota_db_bind_text(st, 4, code);
        ota_db_bind_text(st, 5, why);
        ota_db_bind_text(st, 6, job_id);
        rc = step_done(s, st, "end job");
        ota_db_finalize(st);
    }
    return rc;
}

/** Execution counts of a job, by status; unreleased QUEUED counted apart. */
typedef struct {
    uint32_t by_status[9];
    uint32_t unreleased;
    uint32_t total;
} job_counts_t;

static int count_job(ota_store_t *s, const char *job_id, job_counts_t *c)
{
    memset(c, 0, sizeof *c);
    ota_db_stmt_t *st;
    int rc = prep(s, &st,
                  "SELECT status, released, COUNT(*) FROM executions WHERE job = ? "
                  "GROUP BY status, released");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, job_id);
    int r;
    while ((r = ota_db_step(st)) == OTA_DB_ROW) {
        int status = ota_db_column_int64(st, 0);
        uint32_t n = (uint32_t)ota_db_column_int64(st, 2);
        if (status < 0 || status > OTA_STORE_EXEC_SKIPPED)
            continue;
        if (!ota_db_column_int64(st, 1) && status == OTA_STORE_EXEC_QUEUED)
            c->unreleased += n;
        else
            c->by_status[status] += n;
        c->total += n;
    }
    if (r != OTA_DB_DONE)
        rc = fail_db(s, "count executions");
    ota_db_finalize(st);
    return rc;
}

/**
 * Re-evaluates an IN_PROGRESS job after one of its executions finished
 * (inside a transaction): ABORTED when the abort criteria are met (its
 * remaining executions are canceled), COMPLETED when nothing is left to run.
 */
int recheck_job(ota_store_t *s, const char *job_id, int64_t now_ms)
{
    ota_db_stmt_t *st;
    int64_t status = 0;
    int rc = query_int(s, "SELECT status FROM jobs WHERE id = ?", job_id, NULL, &status);
    if (rc || status != OTA_STORE_JOB_IN_PROGRESS)
        return rc;
    job_counts_t c;
    if ((rc = count_job(s, job_id, &c)))
        return rc;
    char code[33], why[257];
    rc = ota_store_abort_check(s, job_id, c.by_status, code, sizeof code, why, sizeof why);
    if (rc < 0)
        return rc;
    if (rc == 1)
        return end_job(s, job_id, OTA_STORE_JOB_ABORTED, code, why, now_ms);
    uint32_t open =
        c.unreleased + c.by_status[OTA_STORE_EXEC_QUEUED] + c.by_status[OTA_STORE_EXEC_IN_PROGRESS];
    int64_t continuous = 0; /* a continuous job waits for new group members */
    if ((rc = query_int(s, "SELECT continuous FROM jobs WHERE id = ?", job_id, NULL, &continuous)))
        return rc;
    if (open == 0 && !continuous) {
        if (!(rc = prep(s, &st,
                        "UPDATE jobs SET status = " JOB_COMPLETED
                        ", updated_ms = ?, completed_ms = ? "
                        "WHERE id = ?"))) {
            ota_db_bind_int64(st, 1, now_ms);
            ota_db_bind_int64(st, 2, now_ms);
            ota_db_bind_text(st, 3, job_id);
            rc = step_done(s, st, "complete job");
            ota_db_finalize(st);
        }
    }
    return rc;
}

/** Target set being built for a new job: distinct thing names. */
typedef struct {
    ota_store_t *s;
    const char *job_id;
    int64_t now_ms;
    int released;
    ota_db_stmt_t *ins;
    int rc;
} job_targets_t;

static int add_target(job_targets_t *t, const char *thing)
{
    ota_db_reset(t->ins);
    ota_db_bind_text(t->ins, 1, t->job_id);
    ota_db_bind_text(t->ins, 2, thing);
    ota_db_bind_int64(t->ins, 3, t->now_ms);
    ota_db_bind_int64(t->ins, 4, t->now_ms);
    ota_db_bind_int64(t->ins, 5, t->released);
    int r = ota_db_step(t->ins);
    if (r == OTA_DB_DONE)
        return OTA_STORE_OK;
    if (ota_db_errcode(t->s->db) == OTA_DB_E_FOREIGN)
        return fail(t->s, OTA_STORE_NOT_FOUND, "thing '%s' not found", thing);
    return fail_db(t->s, "add execution");
}

static int add_group_member(void *ctx, const ota_store_thing_t *thing)
{
    job_targets_t *t = ctx;
    t->rc = add_target(t, thing->name);
    return t->rc != OTA_STORE_OK;
}

int ota_store_job_create(ota_store_t *store, const ota_store_job_spec_t *spec, int64_t now_ms)
{
    if (!store || !spec)
        return OTA_STORE_INVALID;
    if (!ota_store_valid_job_id(spec->job_id))
        return fail(store, OTA_STORE_INVALID, "invalid job id '%s' (1..64 of [A-Za-z0-9_-])",
                    spec->job_id ? spec->job_id : "(null)");
    if (!ota_store_new_name_ok(spec->job_id))
        return fail(store, OTA_STORE_INVALID, "a job id may not start with '-' ('%s')",
                    spec->job_id);
    if (spec->document && strlen(spec->document) > OTA_STORE_JOB_DOCUMENT_MAX)
        return fail(store, OTA_STORE_INVALID, "job document longer than %u bytes",
                    OTA_STORE_JOB_DOCUMENT_MAX);
    cJSON *doc = spec->document ? cJSON_Parse(spec->document) : NULL;
    int doc_ok = cJSON_IsObject(doc);
    cJSON_Delete(doc);
    if (!doc_ok)
        return fail(store, OTA_STORE_INVALID, "job document is not a JSON object");
    if (spec->n_things + spec->n_groups == 0 || (spec->n_things && !spec->things) ||
        (spec->n_groups && !spec->groups))
        return fail(store, OTA_STORE_INVALID, "a job needs at least one target thing or group");
    if (spec->abort_failure_percent > 100)
        return fail(store, OTA_STORE_INVALID, "abort failure percentage must be 0..100");
    if (spec->target_version && *spec->target_version &&
        !ota_store_valid_version(spec->target_version))
        return fail(store, OTA_STORE_INVALID, "invalid target version (X.Y.Z)");
    if (spec->device_types && *spec->device_types &&
        !ota_store_valid_device_types(spec->device_types))
        return fail(store, OTA_STORE_INVALID, "invalid device types (NAME[,NAME...])");
    if (ota_store_rollout_check(store, spec))
        return OTA_STORE_INVALID;
    int controlled = ota_store_rollout_is_controlled(&spec->rollout);
    if (spec->stream_id && !ota_store_valid_stream_id(spec->stream_id))
        return fail(store, OTA_STORE_INVALID, "invalid stream id");
    for (size_t i = 0; i < spec->n_things; i++)
        if (check_thing_name(store, spec->things[i], "thing"))
            return OTA_STORE_INVALID;
    for (size_t i = 0; i < spec->n_groups; i++)
        if (check_thing_name(store, spec->groups[i], "group"))
            return OTA_STORE_INVALID;

    int rc = begin(store);
    if (rc)
        return rc;
    int64_t n = 0;
    if (spec->stream_id) {
        rc = query_int(store, "SELECT COUNT(*) FROM streams WHERE id = ?", spec->stream_id, NULL,
                       &n);
        if (!rc && !n)
            rc = fail(store, OTA_STORE_NOT_FOUND, "stream '%s' not found", spec->stream_id);
    }
    ota_db_stmt_t *st;
    if (!rc && !(rc = prep(store, &st,
                           "INSERT INTO jobs(id, document, stream, status, timeout_min, "
                           "rollout_per_min, abort_pct, abort_min, created_ms, updated_ms, "
                           "target_version, device_types) "
                           "VALUES(?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)"))) {
        ota_db_bind_text(st, 1, spec->job_id);
        ota_db_bind_text(st, 2, spec->document);
        if (spec->stream_id)
            ota_db_bind_text(st, 3, spec->stream_id);
        ota_db_bind_int64(st, 4, spec->in_progress_timeout_min);
        ota_db_bind_int64(st, 5, spec->rollout_per_minute);
        ota_db_bind_int64(st, 6, spec->abort_failure_percent);
        ota_db_bind_int64(st, 7, spec->abort_min_finished);
        ota_db_bind_int64(st, 8, now_ms);
        ota_db_bind_int64(st, 9, now_ms);
        ota_db_bind_text(st, 10, spec->target_version ? spec->target_version : "");
        ota_db_bind_text(st, 11, spec->device_types ? spec->device_types : "");
        if (ota_db_step(st) != OTA_DB_DONE)
            rc = ota_db_errcode(store->db) == OTA_DB_E_UNIQUE
                     ? fail(store, OTA_STORE_EXISTS, "job '%s' already exists", spec->job_id)
                     : fail_db(store, "create job");
        ota_db_finalize(st);
    }
    if (!rc)
        rc = ota_store_rollout_save(store, spec);
    if (!rc)
        rc = ota_store_job_targets_save(store, spec);
    job_targets_t t = {
        store, spec->job_id, now_ms, spec->rollout_per_minute == 0 && !controlled, NULL, 0};
    if (!rc)
        rc = prep(store, &t.ins,
                  "INSERT INTO executions(job, thing, status, version, exec_number, queued_ms, "
                  "updated_ms, released) VALUES(?, ?, " EX_QUEUED ", 1, 1, ?, ?, ?) "
                  /* named twice (directly and through a group): one execution */
                  "ON CONFLICT(job, thing) DO NOTHING");
    for (size_t i = 0; !rc && i < spec->n_things; i++)
        rc = add_target(&t, spec->things[i]);
    for (size_t i = 0; !rc && i < spec->n_groups; i++) {
        rc = ota_store_group_members(store, spec->groups[i], add_group_member, &t);
        if (!rc)
            rc = t.rc;
    }
    ota_db_finalize(t.ins);
    if (!rc)
        rc = ota_store_skip_unneeded(store, spec->job_id, NULL, now_ms);
    if (!rc && t.released)
        rc = bump_job_things(store, spec->job_id);
    else if (!rc && controlled)
        rc = ota_store_release_controlled(store, spec->job_id, now_ms, NULL);
    else if (!rc)
        rc = ota_store_release_rate(store, spec->job_id, spec->rollout_per_minute, now_ms, now_ms,
                                    NULL);
    return finish(store, rc);
}

static void read_job_row(ota_db_stmt_t *st, ota_store_job_t *j)
{
    copy_col(j->job_id, sizeof j->job_id, st, 0);
    copy_col(j->stream_id, sizeof j->stream_id, st, 1);
    j->status = (ota_store_job_status_t)ota_db_column_int64(st, 2);
    j->in_progress_timeout_min = (uint32_t)ota_db_column_int64(st, 3);
    j->rollout_per_minute = (uint32_t)ota_db_column_int64(st, 4);
    j->abort_failure_percent = (uint32_t)ota_db_column_int64(st, 5);
    j->abort_min_finished = (uint32_t)ota_db_column_int64(st, 6);
    j->created_ms = ota_db_column_int64(st, 7);
    j->updated_ms = ota_db_column_int64(st, 8);
    j->completed_ms = ota_db_column_int64(st, 9);
    j->document = dup_text(ota_db_column_text(st, 10));
    copy_col(j->target_version, sizeof j->target_version, st, 11);
    copy_col(j->device_types, sizeof j->device_types, st, 12);
}

#define JOB_COLS                                                                                   \
    "id, stream, status, timeout_min, rollout_per_min, abort_pct, abort_min, created_ms, "         \
    "updated_ms, completed_ms, document, target_version, device_types"

static int fill_job_counts(ota_store_t *s, ota_store_job_t *j)
{
    if (!j->document)
        return fail(s, OTA_STORE_ERROR, "out of memory");
    job_counts_t c;
    int rc = count_job(s, j->job_id, &c);
    if (rc)
        return rc;
    j->n_executions = c.total;
    j->n_unreleased = c.unreleased;
    j->n_queued = c.by_status[OTA_STORE_EXEC_QUEUED];
    j->n_in_progress = c.by_status[OTA_STORE_EXEC_IN_PROGRESS];
    j->n_succeeded = c.by_status[OTA_STORE_EXEC_SUCCEEDED];
    j->n_failed = c.by_status[OTA_STORE_EXEC_FAILED];
    j->n_timed_out = c.by_status[OTA_STORE_EXEC_TIMED_OUT];
    j->n_rejected = c.by_status[OTA_STORE_EXEC_REJECTED];
    j->n_removed = c.by_status[OTA_STORE_EXEC_REMOVED];
    j->n_canceled = c.by_status[OTA_STORE_EXEC_CANCELED];
    j->n_skipped = c.by_status[OTA_STORE_EXEC_SKIPPED];
    return ota_store_job_extra(s, j);
}

int ota_store_job_get(ota_store_t *store, const char *job_id, ota_store_job_t *out)
{
    if (!store || !out)
        return OTA_STORE_INVALID;
    memset(out, 0, sizeof *out);
    if (!ota_store_valid_job_id(job_id))
        return fail(store, OTA_STORE_INVALID, "invalid job id");
    ota_db_stmt_t *st;
    int rc = prep(store, &st, "SELECT " JOB_COLS " FROM jobs WHERE id = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, job_id);
    int r = ota_db_step(st);
    if (r == OTA_DB_ROW) {
        read_job_row(st, out);
        rc = fill_job_counts(store, out);
    } else if (r == OTA_DB_DONE) {
        rc = fail(store, OTA_STORE_NOT_FOUND, "job '%s' not found", job_id);
    } else {
        rc = fail_db(store, "get job");
    }
    ota_db_finalize(st);
    if (rc)
        ota_store_job_free(out);
    else
        ok(store);
    return rc;
}

int ota_store_job_document(ota_store_t *store, const char *job_id, char **document)
{
    if (!store || !document)
        return OTA_STORE_INVALID;
    *document = NULL;
    if (!ota_store_valid_job_id(job_id))
        return fail(store, OTA_STORE_INVALID, "invalid job id");
    ota_db_stmt_t *st;
    int rc = prep(store, &st, "SELECT document FROM jobs WHERE id = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, job_id);
    int r = ota_db_step(st);
    if (r == OTA_DB_ROW) {
        *document = dup_text(ota_db_column_text(st, 0));
        if (!*document)
            rc = fail(store, OTA_STORE_ERROR, "out of memory");
    } else if (r == OTA_DB_DONE) {
        rc = fail(store, OTA_STORE_NOT_FOUND, "job '%s' not found", job_id);
    } else {
        rc = fail_db(store, "get job document");
    }
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}

int ota_store_job_list(ota_store_t *store, ota_store_job_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    ota_db_stmt_t *st;
    int rc = prep(store, &st, "SELECT " JOB_COLS " FROM jobs ORDER BY seq");
    if (rc)
        return rc;
    int r;
    while ((r = ota_db_step(st)) == OTA_DB_ROW) {
        ota_store_job_t j;
        memset(&j, 0, sizeof j);
        read_job_row(st, &j);
        rc = fill_job_counts(store, &j);
        int stop = rc ? 1 : cb(ctx, &j);
        ota_store_job_free(&j);
        if (stop)
            break;
    }
    if (!rc && r != OTA_DB_ROW && r != OTA_DB_DONE)
        rc = fail_db(store, "list jobs");
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}

int ota_store_job_cancel(ota_store_t *store, const char *job_id, int64_t now_ms)
{
    return ota_store_job_cancel_why(store, job_id, NULL, NULL, now_ms);
}

int ota_store_job_cancel_why(ota_store_t *store, const char *job_id, const char *reason_code,
                             const char *comment, int64_t now_ms)
{
    if (!store)
        return OTA_STORE_INVALID;
    if (!ota_store_valid_job_id(job_id))
        return fail(store, OTA_STORE_INVALID, "invalid job id");
    if (reason_code && (strlen(reason_code) > 32 || !ota_store_valid_attr_key(reason_code)))
        return fail(store, OTA_STORE_INVALID, "reason code: 1..32 of [A-Za-z0-9_]");
    size_t clen = comment ? strlen(comment) : 1;
    for (size_t i = 0; comment && i < clen; i++)
        if (comment[i] < 0x20 || comment[i] > 0x7e)
            clen = 0;
    if (clen == 0 || clen > 256)
        return fail(store, OTA_STORE_INVALID, "comment: 1..256 printable characters");
    int rc = begin(store);
    if (rc)
        return rc;
    int64_t status = -1;
    rc = query_int(store, "SELECT COALESCE((SELECT status FROM jobs WHERE id = ?), -1)", job_id,
                   NULL, &status);
    if (!rc && status < 0)
        rc = fail(store, OTA_STORE_NOT_FOUND, "job '%s' not found", job_id);
    if (!rc && status != OTA_STORE_JOB_IN_PROGRESS)
        rc = fail(store, OTA_STORE_CONFLICT, "job '%s' is already %s", job_id,
                  ota_store_job_status_name((int)status));
    if (!rc)
        rc = end_job(store, job_id, OTA_STORE_JOB_CANCELED, reason_code ? reason_code : "CANCELED",
                     comment ? comment : "", now_ms);
    return finish(store, rc);
}
