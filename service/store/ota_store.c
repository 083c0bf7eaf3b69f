/*
 * otter service: the store's common helpers (errors, statements,
 * transactions, names, collected rows). See ota_store.h for the contract;
 * each concern has its file: ota_store_schema.c (schema, migrations,
 * opening), ota_store_things.c, ota_store_groups.c, ota_store_fleet.c
 * (attributes, targeting), ota_store_files.c, ota_store_streams.c,
 * ota_store_jobs.c, ota_store_job_ops.c (cancel, delete),
 * ota_store_executions.c (the execution state machine), ota_store_rollout.c
 * (rollout rules and phases), ota_store_sweeps.c (timeouts and releases),
 * ota_store_notify.c (notify-next claims, deliveries, outbox) and ota_store_instances.c
 * (live service instances, the outbox of stopped ones).
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

#define STR_(x) #x
/** A number macro as a string literal. */
#define STR(x) STR_(x)

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

int64_t ota_store_statements(const ota_store_t *store)
{
    return store ? ota_db_statements(store->db) : 0;
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

char *dup_text(const char *t)
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
/* Collected rows                                                           */
/* ------------------------------------------------------------------------ */

int rows_push(rows_t *r, const char *job, const char *thing, int64_t num, int64_t num2)
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

void rows_free(rows_t *r)
{
    free(r->job);
    free(r->thing);
    free(r->num);
    free(r->num2);
    memset(r, 0, sizeof *r);
}

/** Sorts idx[0..n) by the rows' thing names (merge sort; tmp holds n entries). */
void sort_idx(const rows_t *r, size_t *idx, size_t *tmp, size_t n)
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
int collect(ota_store_t *s, const char *sql, int64_t arg, rows_t *out)
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
