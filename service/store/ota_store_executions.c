/*
 * otter service: the store's executions: reading, the AWS order of a thing's pending executions and
 * the state machine of device updates. See ota_store.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "ota_store.h"
#include "ota_store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ota_store_exec_status_name(int status)
{
    static const char *const names[] = {"QUEUED",  "IN_PROGRESS", "SUCCEEDED",
                                        "FAILED",  "TIMED_OUT",   "REJECTED",
                                        "REMOVED", "CANCELED",    "SKIPPED"};
    return status >= 0 && status < 9 ? names[status] : "UNKNOWN";
}

int ota_store_exec_status_parse(const char *name, ota_store_exec_status_t *out)
{
    if (!name || !out)
        return OTA_STORE_INVALID;
    for (int i = 0; i < 8; i++) {
        if (strcmp(name, ota_store_exec_status_name(i)) == 0) {
            *out = (ota_store_exec_status_t)i;
            return OTA_STORE_OK;
        }
    }
    return OTA_STORE_INVALID;
}

int ota_store_exec_status_is_terminal(int status)
{
    return status != OTA_STORE_EXEC_QUEUED && status != OTA_STORE_EXEC_IN_PROGRESS;
}

void ota_store_execution_free(ota_store_execution_t *exec)
{
    if (!exec)
        return;
    free(exec->status_details);
    memset(exec, 0, sizeof *exec);
}

/** Reads an execution row selected with EXEC_COLS; 0 or OTA_STORE_ERROR (out of memory). */
static int read_exec(ota_store_t *s, ota_db_stmt_t *st, ota_store_execution_t *e)
{
    memset(e, 0, sizeof *e);
    copy_col(e->job_id, sizeof e->job_id, st, 0);
    copy_col(e->thing, sizeof e->thing, st, 1);
    e->status = (ota_store_exec_status_t)ota_db_column_int64(st, 2);
    if (!ota_db_column_is_null(st, 3)) {
        e->status_details = dup_text(ota_db_column_text(st, 3));
        if (!e->status_details)
            return fail(s, OTA_STORE_ERROR, "out of memory");
    }
    e->version_number = ota_db_column_int64(st, 4);
    e->execution_number = ota_db_column_int64(st, 5);
    e->queued_at_ms = ota_db_column_int64(st, 6);
    e->started_at_ms = ota_db_column_int64(st, 7);
    e->last_updated_at_ms = ota_db_column_int64(st, 8);
    e->deadline_ms = ota_db_column_int64(st, 9);
    e->released = ota_db_column_int64(st, 10);
    return OTA_STORE_OK;
}

/** Runs an execution query with up to two text parameters; one row into out, or NOT_FOUND. */
static int get_exec(ota_store_t *s, const char *sql, const char *a1, const char *a2,
                    ota_store_execution_t *out)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st, sql);
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, a1);
    if (a2)
        ota_db_bind_text(st, 2, a2);
    int r = ota_db_step(st);
    if (r == OTA_DB_ROW)
        rc = read_exec(s, st, out);
    else if (r == OTA_DB_DONE)
        rc = OTA_STORE_NOT_FOUND;
    else
        rc = fail_db(s, "get execution");
    ota_db_finalize(st);
    return rc;
}

int ota_store_execution_get(ota_store_t *store, const char *job_id, const char *thing,
                            ota_store_execution_t *out)
{
    if (!store || !out)
        return OTA_STORE_INVALID;
    memset(out, 0, sizeof *out);
    if (!ota_store_valid_job_id(job_id) || !ota_store_valid_thing_name(thing))
        return fail(store, OTA_STORE_INVALID, "invalid job id or thing name");
    int rc = get_exec(store, "SELECT " EXEC_COLS " FROM executions e WHERE job = ? AND thing = ?",
                      job_id, thing, out);
    if (rc == OTA_STORE_NOT_FOUND)
        return fail(store, rc, "no execution of job '%s' for thing '%s'", job_id, thing);
    if (!rc)
        ok(store);
    return rc;
}

static int list_execs(ota_store_t *s, const char *sql, const char *arg, ota_store_execution_cb cb,
                      void *ctx)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st, sql);
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, arg);
    int r;
    while ((r = ota_db_step(st)) == OTA_DB_ROW) {
        ota_store_execution_t e;
        if ((rc = read_exec(s, st, &e)))
            break;
        int stop = cb(ctx, &e);
        ota_store_execution_free(&e);
        if (stop)
            break;
    }
    if (!rc && r != OTA_DB_ROW && r != OTA_DB_DONE)
        rc = fail_db(s, "list executions");
    ota_db_finalize(st);
    if (!rc)
        ok(s);
    return rc;
}

int ota_store_execution_list(ota_store_t *store, const char *job_id, ota_store_execution_cb cb,
                             void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    if (!ota_store_valid_job_id(job_id))
        return fail(store, OTA_STORE_INVALID, "invalid job id");
    int64_t n = 0;
    int rc = query_int(store, "SELECT COUNT(*) FROM jobs WHERE id = ?", job_id, NULL, &n);
    if (rc)
        return rc;
    if (!n)
        return fail(store, OTA_STORE_NOT_FOUND, "job '%s' not found", job_id);
    return list_execs(store, "SELECT " EXEC_COLS " FROM executions e WHERE job = ? ORDER BY thing",
                      job_id, cb, ctx);
}

int ota_store_execution_history(ota_store_t *store, const char *job_id, const char *thing,
                                ota_store_exec_event_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    if (!ota_store_valid_job_id(job_id) || !ota_store_valid_thing_name(thing))
        return fail(store, OTA_STORE_INVALID, "invalid job id or thing name");
    int64_t n = 0;
    int rc = query_int(store, "SELECT COUNT(*) FROM executions WHERE job = ? AND thing = ?", job_id,
                       thing, &n);
    if (rc)
        return rc;
    if (!n)
        return fail(store, OTA_STORE_NOT_FOUND, "no execution of job '%s' for thing '%s'", job_id,
                    thing);
    int64_t dropped = 0;
    if ((rc = query_int(store, "SELECT history_dropped FROM executions WHERE job = ? AND thing = ?",
                        job_id, thing, &dropped)))
        return rc;
    ota_db_stmt_t *st;
    if ((rc = prep(store, &st,
                   "SELECT status, details, version, at_ms, recorder FROM exec_history "
                   "WHERE job = ? AND thing = ? ORDER BY id")))
        return rc;
    ota_db_bind_text(st, 1, job_id);
    ota_db_bind_text(st, 2, thing);
    int r;
    for (int64_t row = 0; (r = ota_db_step(st)) == OTA_DB_ROW; row++) {
        ota_store_exec_event_t ev;
        /* the rows dropped lie between the first (the creation) and the second */
        ev.dropped_before = row == 1 ? dropped : 0;
        ev.status = (ota_store_exec_status_t)ota_db_column_int64(st, 0);
        ev.status_details = ota_db_column_is_null(st, 1) ? NULL : ota_db_column_text(st, 1);
        ev.version_number = ota_db_column_int64(st, 2);
        ev.at_ms = ota_db_column_int64(st, 3);
        ev.recorder = ota_db_column_text(st, 4);
        if (!ev.recorder)
            ev.recorder = "";
        if (cb(ctx, &ev))
            break;
    }
    if (r != OTA_DB_ROW && r != OTA_DB_DONE)
        rc = fail_db(store, "read execution history");
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}

/* A thing's pending executions in AWS order. */
#define PENDING_SQL                                                                                \
    "SELECT " EXEC_COLS " FROM executions e WHERE thing = ? AND status IN (" EX_QUEUED             \
    ", " EX_IN_PROGRESS ") "                                                                       \
    "AND released = 1 ORDER BY status DESC, queued_ms, seq"

int ota_store_execution_list_pending(ota_store_t *store, const char *thing,
                                     ota_store_execution_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    if (!ota_store_valid_thing_name(thing))
        return fail(store, OTA_STORE_INVALID, "invalid thing name");
    return list_execs(store, PENDING_SQL, thing, cb, ctx);
}

int ota_store_execution_next(ota_store_t *store, const char *thing, ota_store_execution_t *out)
{
    if (!store || !out)
        return OTA_STORE_INVALID;
    memset(out, 0, sizeof *out);
    if (!ota_store_valid_thing_name(thing))
        return fail(store, OTA_STORE_INVALID, "invalid thing name");
    int rc = get_exec(store, PENDING_SQL " LIMIT 1", thing, NULL, out);
    if (rc == OTA_STORE_NOT_FOUND)
        return fail(store, rc, "nothing pending for thing '%s'", thing);
    if (!rc)
        ok(store);
    return rc;
}

/** One thing's executions being read by ota_store_thing_executions(). */
typedef struct {
    ota_store_execution_t *v;
    int64_t *seq; /* each one's row number, the last key of PENDING_SQL's order */
    size_t n, cap;
} thing_execs_t;

static void forget_execs(thing_execs_t *x)
{
    for (size_t i = 0; i < x->n; i++)
        ota_store_execution_free(&x->v[i]);
    x->n = 0;
}

/* Which one ota_store_execution_next() gives: the first pending and released one in
 * PENDING_SQL's order (status descending, queued_ms, seq); -1 for none. */
static long next_of(const thing_execs_t *x)
{
    long best = -1;
    for (size_t i = 0; i < x->n; i++) {
        const ota_store_execution_t *e = &x->v[i], *b = best >= 0 ? &x->v[best] : NULL;
        if (!e->released ||
            (e->status != OTA_STORE_EXEC_QUEUED && e->status != OTA_STORE_EXEC_IN_PROGRESS))
            continue;
        if (!b || e->status > b->status ||
            (e->status == b->status &&
             (e->queued_at_ms < b->queued_at_ms ||
              (e->queued_at_ms == b->queued_at_ms && x->seq[i] < x->seq[best]))))
            best = (long)i;
    }
    return best;
}

int ota_store_thing_executions(ota_store_t *store, ota_store_thing_execs_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    ota_db_stmt_t *st;
    int rc = prep(store, &st,
                  "SELECT " EXEC_COLS ", e.seq FROM executions e JOIN jobs j ON j.id = e.job "
                  "ORDER BY e.thing, j.seq");
    if (rc)
        return rc;
    thing_execs_t x = {0};
    int r = OTA_DB_DONE, stop = 0;
    while (!rc && !stop && (r = ota_db_step(st)) == OTA_DB_ROW) {
        const char *thing = ota_db_column_text(st, 1);
        if (x.n > 0 && thing && strcmp(thing, x.v[0].thing) != 0) {
            stop = cb(ctx, x.v[0].thing, x.v, x.n, next_of(&x));
            forget_execs(&x);
            if (stop)
                break;
        }
        if (x.n == x.cap) {
            size_t cap = x.cap ? 2 * x.cap : 16;
            void *v = realloc(x.v, cap * sizeof *x.v),
                 *q = v ? realloc(x.seq, cap * sizeof *x.seq) : NULL;
            if (v)
                x.v = v;
            if (q)
                x.seq = q;
            if (!v || !q) {
                rc = fail(store, OTA_STORE_ERROR, "out of memory");
                break;
            }
            x.cap = cap;
        }
        if ((rc = read_exec(store, st, &x.v[x.n])))
            break;
        x.seq[x.n++] = ota_db_column_int64(st, 11);
    }
    if (!rc && !stop && r == OTA_DB_DONE && x.n > 0)
        (void)cb(ctx, x.v[0].thing, x.v, x.n, next_of(&x));
    if (!rc && !stop && r != OTA_DB_DONE)
        rc = fail_db(store, "list executions");
    forget_execs(&x);
    free(x.v);
    free(x.seq);
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}

/** Validates and applies an update inside a transaction; *cur holds the execution as read. */
static int apply_update(ota_store_t *s, const char *job_id, const char *thing,
                        const ota_store_exec_update_t *upd, int64_t now_ms,
                        ota_store_execution_t *cur)
{
    int rc = get_exec(s, "SELECT " EXEC_COLS " FROM executions e WHERE job = ? AND thing = ?",
                      job_id, thing, cur);
    if (rc == OTA_STORE_NOT_FOUND || (!rc && !cur->released)) {
        ota_store_execution_free(cur);
        return fail(s, OTA_STORE_NOT_FOUND, "no execution of job '%s' for thing '%s'", job_id,
                    thing);
    }
    if (rc)
        return rc;
    if (ota_store_exec_status_is_terminal((int)cur->status))
        return fail(s, OTA_STORE_TERMINAL, "execution of job '%s' for '%s' is already %s", job_id,
                    thing, ota_store_exec_status_name((int)cur->status));
    if (upd->expected_version != 0 && upd->expected_version != cur->version_number)
        return fail(s, OTA_STORE_VERSION_MISMATCH, "expected version %lld, current is %lld",
                    (long long)upd->expected_version, (long long)cur->version_number);
    if (cur->status == OTA_STORE_EXEC_IN_PROGRESS && upd->status == OTA_STORE_EXEC_REJECTED)
        return fail(s, OTA_STORE_BAD_TRANSITION,
                    "a started execution cannot become REJECTED (use FAILED)");
    int64_t timeout_min = 0;
    if ((rc =
             query_int(s, "SELECT timeout_min FROM jobs WHERE id = ?", job_id, NULL, &timeout_min)))
        return rc;
    int64_t started = cur->started_at_ms, deadline = 0;
    if (upd->status == OTA_STORE_EXEC_IN_PROGRESS) {
        if (cur->status == OTA_STORE_EXEC_QUEUED)
            started = now_ms;
        int64_t job_deadline = timeout_min > 0 ? started + timeout_min * 60000 : 0;
        deadline = cur->status == OTA_STORE_EXEC_QUEUED ? job_deadline : cur->deadline_ms;
        if (upd->step_timeout_min > 0) {
            deadline = now_ms + upd->step_timeout_min * 60000;
            if (job_deadline && job_deadline < deadline)
                deadline = job_deadline;
        } else if (upd->step_timeout_min < 0) {
            deadline = job_deadline;
        }
    }
    ota_db_stmt_t *st;
    if ((rc = prep(s, &st,
                   "UPDATE executions SET status = ?, details = COALESCE(?, details), "
                   "version = version + 1, updated_ms = ?, started_ms = ?, deadline_ms = ? "
                   "WHERE job = ? AND thing = ?")))
        return rc;
    ota_db_bind_int64(st, 1, (int)upd->status);
    if (upd->status_details)
        ota_db_bind_text(st, 2, upd->status_details);
    ota_db_bind_int64(st, 3, now_ms);
    ota_db_bind_int64(st, 4, started);
    ota_db_bind_int64(st, 5, deadline);
    ota_db_bind_text(st, 6, job_id);
    ota_db_bind_text(st, 7, thing);
    rc = step_done(s, st, "update execution");
    ota_db_finalize(st);
    /* A status change changes the thing's pending list (jobs/notify), a terminal one
     * possibly its next job (notify-next). */
    if (!rc && upd->status != cur->status)
        rc = bump_thing(s, thing);
    if (!rc && ota_store_exec_status_is_terminal((int)upd->status)) {
        rc = recheck_job(s, job_id, now_ms);
        if (!rc && upd->status == OTA_STORE_EXEC_SUCCEEDED)
            rc = ota_store_learn_version(s, job_id, thing, now_ms);
        if (!rc) /* a phase may open */
            rc = ota_store_release_controlled(s, job_id, now_ms, NULL);
    }
    return rc;
}

/** Whether (session, packet id) last carried a request with this digest (1), or not (0). */
static int delivery_seen(ota_store_t *s, const ota_store_exec_update_t *upd, int *seen)
{
    ota_db_stmt_t *st;
    *seen = 0;
    int rc = prep(s, &st, "SELECT digest FROM deliveries WHERE session = ? AND mid = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, upd->delivery_session);
    ota_db_bind_int64(st, 2, upd->delivery_id);
    int r = ota_db_step(st);
    if (r == OTA_DB_ROW)
        *seen = ota_db_column_int64(st, 0) == upd->delivery_digest;
    else if (r != OTA_DB_DONE)
        rc = fail_db(s, "read delivery");
    ota_db_finalize(st);
    return rc;
}

static int delivery_record(ota_store_t *s, const ota_store_exec_update_t *upd)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st,
                  "INSERT INTO deliveries(session, mid, digest) VALUES(?, ?, ?) "
                  "ON CONFLICT(session, mid) DO UPDATE SET digest = excluded.digest");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, upd->delivery_session);
    ota_db_bind_int64(st, 2, upd->delivery_id);
    ota_db_bind_int64(st, 3, upd->delivery_digest);
    rc = step_done(s, st, "record delivery");
    ota_db_finalize(st);
    return rc;
}

int ota_store_execution_update(ota_store_t *store, const char *job_id, const char *thing,
                               const ota_store_exec_update_t *upd, int64_t now_ms,
                               ota_store_execution_t *after)
{
    if (after)
        memset(after, 0, sizeof *after);
    if (!store || !upd)
        return OTA_STORE_INVALID;
    if (!ota_store_valid_job_id(job_id) || !ota_store_valid_thing_name(thing))
        return fail(store, OTA_STORE_INVALID, "invalid job id or thing name");
    if (upd->status != OTA_STORE_EXEC_IN_PROGRESS && upd->status != OTA_STORE_EXEC_SUCCEEDED &&
        upd->status != OTA_STORE_EXEC_FAILED && upd->status != OTA_STORE_EXEC_REJECTED)
        return fail(store, OTA_STORE_INVALID,
                    "status %s cannot be set by a device (IN_PROGRESS, SUCCEEDED, FAILED, "
                    "REJECTED)",
                    ota_store_exec_status_name((int)upd->status));
    if (upd->step_timeout_min < -1 || upd->step_timeout_min > OTA_STORE_STEP_TIMEOUT_MAX)
        return fail(store, OTA_STORE_INVALID, "step timeout must be -1, 0 or 1..%d minutes",
                    OTA_STORE_STEP_TIMEOUT_MAX);
    if (upd->expected_version < 0)
        return fail(store, OTA_STORE_INVALID, "expected version must be >= 0");
    if (upd->status_details && strlen(upd->status_details) > OTA_STORE_DETAILS_MAX)
        return fail(store, OTA_STORE_INVALID, "statusDetails longer than %u bytes",
                    OTA_STORE_DETAILS_MAX);
    int tracked = upd->delivery_session != NULL && upd->delivery_id > 0;
    if (tracked && (upd->delivery_id > 65535 || upd->delivery_session[0] == '\0'))
        return fail(store, OTA_STORE_INVALID, "delivery id must be 1..65535 with a session");
    int rc = begin(store);
    if (rc)
        return rc;
    ota_store_execution_t cur;
    memset(&cur, 0, sizeof cur);
    int seen = 0;
    if (tracked)
        rc = delivery_seen(store, upd, &seen);
    if (!rc && seen)
        rc = fail(store, OTA_STORE_DUPLICATE, "this delivery was applied already");
    if (!rc)
        rc = apply_update(store, job_id, thing, upd, now_ms, &cur);
    if (!rc && tracked)
        rc = delivery_record(store, upd);
    if (rc == OTA_STORE_OK) {
        rc = finish(store, rc);
    } else {
        rollback(store); /* keeps the refusal's message */
    }
    if (after && (rc == OTA_STORE_OK || rc == OTA_STORE_DUPLICATE)) {
        if (get_exec(store, "SELECT " EXEC_COLS " FROM executions e WHERE job = ? AND thing = ?",
                     job_id, thing, after) != OTA_STORE_OK)
            rc = fail(store, OTA_STORE_ERROR, "cannot read back the execution");
    } else if (after && (rc == OTA_STORE_VERSION_MISMATCH || rc == OTA_STORE_TERMINAL ||
                         rc == OTA_STORE_BAD_TRANSITION)) {
        *after = cur; /* the current state, unchanged */
        memset(&cur, 0, sizeof cur);
    }
    ota_store_execution_free(&cur);
    return rc;
}
