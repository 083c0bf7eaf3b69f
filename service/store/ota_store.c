/*
 * otter service: the store (SQLite + a folder of imported files).
 * See ota_store.h for the contract.
 */
#define _POSIX_C_SOURCE 200809L

#include "ota_store.h"
#include "ota_store_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/** Copy buffer for file imports. */
#define STORE_COPY_CHUNK 65536

#define STR_(x) #x
/** A number macro as a string literal. */
#define STR(x) STR_(x)

/* Execution columns, in the order read_exec() expects. */
#define EXEC_COLS                                                                                  \
    "e.job, e.thing, e.status, e.details, e.version, e.exec_number, e.queued_ms, e.started_ms, "   \
    "e.updated_ms, e.deadline_ms, e.released"

/* ------------------------------------------------------------------------ */
/* Errors and small helpers                                                 */
/* ------------------------------------------------------------------------ */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int fail(ota_store_t *s, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return rc;
}

int fail_db(ota_store_t *s, const char *what)
{
    return fail(s, OTA_STORE_ERROR, "%s: %s", what, ota_db_errmsg(s->db));
}

void ok(ota_store_t *s)
{
    s->err[0] = '\0';
}

const char *ota_store_rc_name(int rc)
{
    switch (rc) {
    case OTA_STORE_OK:
        return "OTA_STORE_OK";
    case OTA_STORE_NOT_FOUND:
        return "OTA_STORE_NOT_FOUND";
    case OTA_STORE_EXISTS:
        return "OTA_STORE_EXISTS";
    case OTA_STORE_CONFLICT:
        return "OTA_STORE_CONFLICT";
    case OTA_STORE_INVALID:
        return "OTA_STORE_INVALID";
    case OTA_STORE_ERROR:
        return "OTA_STORE_ERROR";
    case OTA_STORE_VERSION_MISMATCH:
        return "OTA_STORE_VERSION_MISMATCH";
    case OTA_STORE_TERMINAL:
        return "OTA_STORE_TERMINAL";
    case OTA_STORE_BAD_TRANSITION:
        return "OTA_STORE_BAD_TRANSITION";
    case OTA_STORE_DUPLICATE:
        return "OTA_STORE_DUPLICATE";
    default:
        return "OTA_STORE_UNKNOWN";
    }
}

const char *ota_store_errmsg(const ota_store_t *store)
{
    return store ? store->err : "no store handle";
}

int64_t ota_store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int name_ok(const char *name, size_t max, int allow_colon)
{
    if (name == NULL || name[0] == '\0')
        return 0;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        int good = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '-' || (allow_colon && c == ':');
        if (!good || n >= max)
            return 0;
    }
    return 1;
}

int ota_store_valid_thing_name(const char *name)
{
    return name_ok(name, OTA_STORE_THING_NAME_MAX, 1);
}

int ota_store_valid_job_id(const char *id)
{
    return name_ok(id, OTA_STORE_JOB_ID_MAX, 0);
}

int ota_store_valid_stream_id(const char *id)
{
    return name_ok(id, OTA_STORE_STREAM_ID_MAX, 0);
}

int prep(ota_store_t *s, ota_db_stmt_t **st, const char *sql)
{
    if (ota_db_prepare(s->db, sql, st) != 0) {
        *st = NULL;
        return fail_db(s, "prepare");
    }
    return OTA_STORE_OK;
}

int exec_sql(ota_store_t *s, const char *sql)
{
    if (ota_db_exec(s->db, sql) != 0)
        return fail(s, OTA_STORE_ERROR, "%s: %s", sql, ota_db_errmsg(s->db));
    return OTA_STORE_OK;
}

int begin(ota_store_t *s)
{
    if (ota_db_begin(s->db) != 0)
        return fail_db(s, "begin");
    return OTA_STORE_OK;
}

static int commit(ota_store_t *s)
{
    if (ota_db_commit(s->db) != 0)
        return fail_db(s, "commit");
    return OTA_STORE_OK;
}

void rollback(ota_store_t *s)
{
    ota_db_rollback(s->db);
}

/** Ends a write transaction: commit if rc is OK, else roll back. */
int finish(ota_store_t *s, int rc)
{
    if (rc == OTA_STORE_OK)
        rc = commit(s);
    else
        rollback(s);
    if (rc == OTA_STORE_OK)
        ok(s);
    return rc;
}

/** Runs a statement to completion (no rows expected). */
int step_done(ota_store_t *s, ota_db_stmt_t *st, const char *what)
{
    int r = ota_db_step(st);
    if (r != OTA_DB_DONE && r != OTA_DB_ROW)
        return fail_db(s, what);
    return OTA_STORE_OK;
}

static char *dup_text(const char *t)
{
    if (t == NULL)
        return NULL;
    size_t n = strlen(t);
    char *p = malloc(n + 1);
    if (p)
        memcpy(p, t, n + 1);
    return p;
}

void copy_col(char *dst, size_t cap, ota_db_stmt_t *st, int col)
{
    const char *t = ota_db_column_text(st, col);
    snprintf(dst, cap, "%s", t ? t : "");
}

/** Runs a one-integer query; *out = 0 when there is no row. */
int query_int(ota_store_t *s, const char *sql, const char *arg1, const char *arg2, int64_t *out)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st, sql);
    if (rc)
        return rc;
    if (arg1)
        ota_db_bind_text(st, 1, arg1);
    if (arg2)
        ota_db_bind_text(st, 2, arg2);
    int r = ota_db_step(st);
    if (r == OTA_DB_ROW)
        *out = ota_db_column_int64(st, 0);
    else if (r == OTA_DB_DONE)
        *out = 0;
    else
        rc = fail_db(s, "query");
    ota_db_finalize(st);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Things and groups                                                        */
/* ------------------------------------------------------------------------ */

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
                       "SELECT COUNT(*) FROM executions e WHERE thing = ? AND status IN (0, 1)",
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

/* ------------------------------------------------------------------------ */
/* Streams                                                                  */
/* ------------------------------------------------------------------------ */

int ota_store_stream_create(ota_store_t *store, const char *stream_id, const char *description,
                            const ota_store_stream_file_t *files, size_t n_files, int64_t now_ms)
{
    if (!store)
        return OTA_STORE_INVALID;
    if (!ota_store_valid_stream_id(stream_id))
        return fail(store, OTA_STORE_INVALID, "invalid stream id '%s' (1..128 of [A-Za-z0-9_-])",
                    stream_id ? stream_id : "(null)");
    if (!files || n_files == 0 || n_files > OTA_STORE_FILE_ID_MAX + 1)
        return fail(store, OTA_STORE_INVALID, "a stream needs 1..256 files");
    unsigned char seen[OTA_STORE_FILE_ID_MAX + 1] = {0};
    for (size_t i = 0; i < n_files; i++) {
        if (files[i].file_id > OTA_STORE_FILE_ID_MAX || !files[i].path || !files[i].path[0] ||
            files[i].size == 0 || files[i].size > INT64_MAX || seen[files[i].file_id]++)
            return fail(store, OTA_STORE_INVALID,
                        "stream file %zu: file id must be 0..255 and unique, path set, size > 0",
                        i);
    }
    int rc = begin(store);
    if (rc)
        return rc;
    ota_db_stmt_t *st;
    if (!(rc = prep(
              store, &st,
              "INSERT INTO streams(id, version, description, created_ms) VALUES(?, 1, ?, ?)"))) {
        ota_db_bind_text(st, 1, stream_id);
        ota_db_bind_text(st, 2, description ? description : "");
        ota_db_bind_int64(st, 3, now_ms);
        if (ota_db_step(st) != OTA_DB_DONE)
            rc = ota_db_errcode(store->db) == OTA_DB_E_UNIQUE
                     ? fail(store, OTA_STORE_EXISTS, "stream '%s' already exists", stream_id)
                     : fail_db(store, "create stream");
        ota_db_finalize(st);
    }
    if (!rc && !(rc = prep(store, &st,
                           "INSERT INTO stream_files(stream, file_id, path, size) "
                           "VALUES(?, ?, ?, ?)"))) {
        for (size_t i = 0; i < n_files && !rc; i++) {
            ota_db_reset(st);
            ota_db_bind_text(st, 1, stream_id);
            ota_db_bind_int64(st, 2, (int)files[i].file_id);
            ota_db_bind_text(st, 3, files[i].path);
            ota_db_bind_int64(st, 4, (int64_t)files[i].size);
            rc = step_done(store, st, "add stream file");
        }
        ota_db_finalize(st);
    }
    return finish(store, rc);
}

void ota_store_stream_free(ota_store_stream_t *stream)
{
    if (!stream)
        return;
    free(stream->description);
    free(stream->files);
    memset(stream, 0, sizeof *stream);
}

/** Reads a stream's files into one allocation (array followed by the paths). */
static int read_stream_files(ota_store_t *s, ota_store_stream_t *out)
{
    ota_db_stmt_t *st;
    /* an imported file also has its id: with PostgreSQL it is served from this machine's copy */
    int rc = prep(s, &st,
                  "SELECT sf.file_id, sf.path, sf.size, (SELECT MAX(f.id) FROM files f WHERE "
                  "f.path = sf.path AND f.size = sf.size) FROM stream_files sf WHERE sf.stream = ? "
                  "ORDER BY sf.file_id");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, out->stream_id);
    int pg = ota_store_is_postgresql(s);
    size_t n = 0, bytes = 0;
    int r;
    while ((r = ota_db_step(st)) == OTA_DB_ROW) {
        n++;
        const char *p = ota_db_column_text(st, 1);
        bytes += (p ? strlen(p) : 0) + 1 + (pg ? strlen(s->data_dir) + 48 : 0);
    }
    if (r != OTA_DB_DONE) {
        ota_db_finalize(st);
        return fail_db(s, "read stream files");
    }
    ota_db_reset(st);
    out->files = calloc(1, n * sizeof *out->files + bytes + 1);
    if (!out->files) {
        ota_db_finalize(st);
        return fail(s, OTA_STORE_ERROR, "out of memory");
    }
    char *paths = (char *)(out->files + n);
    size_t i = 0;
    char local[4096];
    while (i < n && ota_db_step(st) == OTA_DB_ROW) {
        const char *p = ota_db_column_text(st, 1);
        if (pg && !ota_db_column_is_null(st, 3)) {
            if ((rc = ota_store_file_local(s, ota_db_column_int64(st, 3),
                                           (uint64_t)ota_db_column_int64(st, 2), local,
                                           sizeof local)))
                break;
            p = local;
        }
        size_t len = p ? strlen(p) : 0;
        memcpy(paths, p ? p : "", len);
        paths[len] = '\0';
        out->files[i].file_id = (uint32_t)ota_db_column_int64(st, 0);
        out->files[i].path = paths;
        out->files[i].size = (uint64_t)ota_db_column_int64(st, 2);
        paths += len + 1;
        i++;
    }
    out->n_files = i;
    ota_db_finalize(st);
    if (rc) {
        free(out->files);
        out->files = NULL;
        out->n_files = 0;
    }
    return rc;
}

static int read_stream_row(ota_store_t *s, ota_db_stmt_t *st, ota_store_stream_t *out)
{
    memset(out, 0, sizeof *out);
    copy_col(out->stream_id, sizeof out->stream_id, st, 0);
    out->version = ota_db_column_int64(st, 1);
    out->description = dup_text(ota_db_column_text(st, 2));
    out->created_ms = ota_db_column_int64(st, 3);
    if (!out->description)
        return fail(s, OTA_STORE_ERROR, "out of memory");
    int rc = read_stream_files(s, out);
    if (rc)
        ota_store_stream_free(out);
    return rc;
}

int ota_store_stream_get(ota_store_t *store, const char *stream_id, ota_store_stream_t *out)
{
    if (!store || !out)
        return OTA_STORE_INVALID;
    memset(out, 0, sizeof *out);
    if (!ota_store_valid_stream_id(stream_id))
        return fail(store, OTA_STORE_INVALID, "invalid stream id");
    ota_db_stmt_t *st;
    int rc =
        prep(store, &st, "SELECT id, version, description, created_ms FROM streams WHERE id = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, stream_id);
    int r = ota_db_step(st);
    if (r == OTA_DB_ROW)
        rc = read_stream_row(store, st, out);
    else if (r == OTA_DB_DONE)
        rc = fail(store, OTA_STORE_NOT_FOUND, "stream '%s' not found", stream_id);
    else
        rc = fail_db(store, "get stream");
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}

int ota_store_stream_list(ota_store_t *store, ota_store_stream_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    ota_db_stmt_t *st;
    int rc =
        prep(store, &st, "SELECT id, version, description, created_ms FROM streams ORDER BY id");
    if (rc)
        return rc;
    int r;
    while (!rc && (r = ota_db_step(st)) == OTA_DB_ROW) {
        ota_store_stream_t one;
        rc = read_stream_row(store, st, &one);
        if (rc)
            break;
        int stop = cb(ctx, &one);
        ota_store_stream_free(&one);
        if (stop)
            break;
    }
    if (!rc && r != OTA_DB_ROW && r != OTA_DB_DONE)
        rc = fail_db(store, "list streams");
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}

int ota_store_thing_may_read_stream(ota_store_t *store, const char *thing, const char *stream_id)
{
    if (!store)
        return OTA_STORE_INVALID;
    if (!ota_store_valid_thing_name(thing) || !ota_store_valid_stream_id(stream_id))
        return 0;
    int64_t yes = 0;
    int rc = query_int(store,
                       "SELECT 1 FROM executions e JOIN jobs j ON j.id = e.job "
                       "WHERE e.thing = ? AND j.stream = ? AND e.released = 1 "
                       "AND e.status NOT IN (6, 7, 8) LIMIT 1",
                       thing, stream_id, &yes);
    if (rc)
        return rc;
    ok(store);
    return yes ? 1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Jobs                                                                     */
/* ------------------------------------------------------------------------ */

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
                  "(SELECT thing FROM executions WHERE job = ? AND status IN (0, 1) "
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
                           "UPDATE executions SET status = 7, version = version + 1, "
                           "released = 1, updated_ms = ?, deadline_ms = 0 "
                           "WHERE job = ? AND status IN (0, 1)"))) {
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
                        "UPDATE jobs SET status = 2, updated_ms = ?, completed_ms = ? "
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

static int release_job(ota_store_t *s, const char *job_id, int64_t rate, int64_t created_ms,
                       int64_t now_ms, size_t *n_released);

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
                  "updated_ms, released) VALUES(?, ?, 0, 1, 1, ?, ?, ?) "
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
        rc = release_job(store, spec->job_id, spec->rollout_per_minute, now_ms, now_ms, NULL);
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

/* ------------------------------------------------------------------------ */
/* Executions                                                               */
/* ------------------------------------------------------------------------ */

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

/* A thing's pending executions in AWS order. */
#define PENDING_SQL                                                                                \
    "SELECT " EXEC_COLS " FROM executions e WHERE thing = ? AND status IN (0, 1) "                 \
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

/* ------------------------------------------------------------------------ */
/* Periodic work                                                            */
/* ------------------------------------------------------------------------ */

/** Collected (job, thing) pairs, so that no statement is open while writing. */
typedef struct {
    char (*job)[OTA_STORE_JOB_ID_MAX + 1];
    char (*thing)[OTA_STORE_THING_NAME_MAX + 1];
    int64_t *num;
    int64_t *num2;
    size_t n, cap;
} rows_t;

static int rows_push(rows_t *r, const char *job, const char *thing, int64_t num, int64_t num2)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        void *a = realloc(r->job, cap * sizeof *r->job);
        if (a)
            r->job = a;
        void *b = realloc(r->thing, cap * sizeof *r->thing);
        if (b)
            r->thing = b;
        void *c = realloc(r->num, cap * sizeof *r->num);
        if (c)
            r->num = c;
        void *d = realloc(r->num2, cap * sizeof *r->num2);
        if (d)
            r->num2 = d;
        if (!a || !b || !c || !d)
            return -1;
        r->cap = cap;
    }
    snprintf(r->job[r->n], sizeof r->job[0], "%s", job ? job : "");
    snprintf(r->thing[r->n], sizeof r->thing[0], "%s", thing ? thing : "");
    r->num[r->n] = num;
    r->num2[r->n] = num2;
    r->n++;
    return 0;
}

static void rows_free(rows_t *r)
{
    free(r->job);
    free(r->thing);
    free(r->num);
    free(r->num2);
    memset(r, 0, sizeof *r);
}

/** Sorts idx[0..n) by the rows' thing names (merge sort; tmp holds n entries). */
static void sort_idx(const rows_t *r, size_t *idx, size_t *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    sort_idx(r, idx, tmp, h);
    sort_idx(r, idx + h, tmp, n - h);
    size_t a = 0, b = h, k = 0;
    while (a < h || b < n)
        tmp[k++] = b >= n || (a < h && strcmp(r->thing[idx[a]], r->thing[idx[b]]) <= 0) ? idx[a++]
                                                                                        : idx[b++];
    memcpy(idx, tmp, n * sizeof *idx);
}

/** Collects rows of (text, text, int, int) from a query with at most one int parameter. */
static int collect(ota_store_t *s, const char *sql, int64_t arg, rows_t *out)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st, sql);
    if (rc)
        return rc;
    if (strchr(sql, '?'))
        ota_db_bind_int64(st, 1, arg);
    int r;
    while ((r = ota_db_step(st)) == OTA_DB_ROW) {
        if (rows_push(out, ota_db_column_text(st, 0), ota_db_column_text(st, 1),
                      ota_db_column_int64(st, 2), ota_db_column_int64(st, 3))) {
            rc = fail(s, OTA_STORE_ERROR, "out of memory");
            break;
        }
    }
    if (!rc && r != OTA_DB_DONE)
        rc = fail_db(s, "collect");
    ota_db_finalize(st);
    return rc;
}

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
                 "SELECT job, thing, seq, 0 FROM executions WHERE status = 1 AND deadline_ms > 0 "
                 "AND deadline_ms <= ?",
                 now_ms, &rows);
    ota_db_stmt_t *st = NULL;
    if (!rc && rows.n)
        rc = prep(store, &st,
                  "UPDATE executions SET status = 4, version = version + 1, updated_ms = ?, "
                  "deadline_ms = 0 WHERE seq = ? AND status = 1");
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

static int release_job(ota_store_t *s, const char *job_id, int64_t rate, int64_t created_ms,
                       int64_t now_ms, size_t *n_released)
{
    int64_t released = 0, elapsed = now_ms > created_ms ? now_ms - created_ms : 0;
    int rc = query_int(s,
                       "SELECT COUNT(*) FROM executions WHERE job = ? AND released = 1 "
                       "AND status <> 8",
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
                 "status = 0 AND (rollout_per_min > 0 OR controlled = 1) AND created_ms <= ?1 "
                 "AND EXISTS (SELECT 1 FROM executions e WHERE e.job = j.id AND e.released = 0 "
                 "AND e.status = 0)",
                 now_ms, &rows);
    size_t n = 0;
    for (size_t i = 0; !rc && i < rows.n; i++) {
        if (strcmp(rows.thing[i], "1") == 0) /* the "controlled" column */
            rc = ota_store_release_controlled(store, rows.job[i], now_ms, &n);
        else
            rc = release_job(store, rows.job[i], rows.num2[i], rows.num[i], now_ms, &n);
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
    int rc = query_int(store,
                       "SELECT COALESCE(MIN(deadline_ms), 0) FROM executions WHERE status = 1 "
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
                   "WHERE e.job = j.id AND e.released = 1 AND e.status <> 8) FROM jobs j "
                   "WHERE j.status = 0 AND j.controlled = 0 AND "
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

/* ------------------------------------------------------------------------ */
/* Notify-next bookkeeping                                                  */
/* ------------------------------------------------------------------------ */

int ota_store_notify_pending(ota_store_t *store, ota_store_notify_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    int64_t now = ota_store_now_ms();
    rows_t rows = {0};
    /* claim in one write transaction: another handle's claim is seen, or waits for this one */
    int rc = begin(store);
    if (!rc)
        rc = collect(store,
                     "UPDATE things SET notify_lease_ms = ?1 + " STR(
                         OTA_STORE_NOTIFY_LEASE_MS) " WHERE change_seq <> handled_seq AND "
                                                    "notify_lease_ms <= ?1 "
                                                    "RETURNING announced_job, name, change_seq, 0",
                     now, &rows);
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
    int rc = prep(store, &st, "INSERT INTO outbox(topic, payload, created_ms) VALUES(?, ?, ?)");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, topic);
    ota_db_bind_text(st, 2, payload);
    ota_db_bind_int64(st, 3, now_ms);
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

int ota_store_outbox_list(ota_store_t *store, ota_store_outbox_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    ota_db_stmt_t *st;
    int rc = prep(store, &st, "SELECT id, topic, payload FROM outbox ORDER BY id");
    if (rc)
        return rc;
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
