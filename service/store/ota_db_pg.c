/*
 * otter service: the database adapter's PostgreSQL driver (libpq). See ota_db.h.
 *
 * Statements are sent with PQexecParams: `?` and `?N` become `$N`, text is
 * sent as type text, integers as int8, NULL as a text NULL.
 * Results are read whole, so a statement's rows stay readable while the
 * same handle runs others.
 *
 * Writers' lock: every write transaction takes the transaction-level
 * advisory lock WRITE_LOCK_KEY right after BEGIN; a write statement outside
 * a transaction runs in an implicit one that does the same. Commits that
 * wrote add one to otter_changes.n, which ota_db_data_version() reads minus
 * this handle's own commits.
 */
#define _POSIX_C_SOURCE 200809L

#include "ota_db.h"
#include "ota_db_driver.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/** The writers' advisory lock ("otter" in ASCII). */
#define WRITE_LOCK_KEY "478560413042"
/** Most parameters one statement may have. */
#define PG_MAX_PARAMS 32
/** PostgreSQL type ids of int8 and text (pg_type.dat). */
#define PG_INT8OID 20
#define PG_TEXTOID 25

typedef struct {
    ota_db_t base;
    PGconn *c;
    int in_tx;          /* inside ota_db_begin() */
    int tx_wrote;       /* the open transaction ran a write statement */
    int64_t changes;    /* rows changed by the last write */
    int64_t own_writes; /* commits of this handle that wrote */
} pg_t;

typedef struct {
    ota_db_stmt_t base;
    char *sql; /* with $N placeholders */
    int is_write;
    int nparams;
    char *values[PG_MAX_PARAMS];
    unsigned int types[PG_MAX_PARAMS];
    PGresult *res;
    int row;
} pg_stmt_t;

#define PG(db) ((pg_t *)(db))
#define PST(st) ((pg_stmt_t *)(st))

static int pg_fail_res(ota_db_t *db, PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    int code = OTA_DB_E_OTHER;
    if (state && strcmp(state, "23505") == 0)
        code = OTA_DB_E_UNIQUE;
    else if (state && strcmp(state, "23503") == 0)
        code = OTA_DB_E_FOREIGN;
    const char *msg = res ? PQresultErrorMessage(res) : "";
    if (!msg || !*msg)
        msg = PQerrorMessage(PG(db)->c);
    int n = (int)strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    return ota_db_set_error(db, code, "%s%s%.*s", what ? what : "", what ? ": " : "", n, msg);
}

/** Runs one command without parameters; 0 or -1. */
static int pg_run(ota_db_t *db, const char *sql)
{
    PGresult *res = PQexec(PG(db)->c, sql);
    ExecStatusType t = PQresultStatus(res);
    int rc = 0;
    if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK)
        rc = pg_fail_res(db, res, NULL);
    PQclear(res);
    return rc;
}

/** Reconnects a broken connection when no transaction is open (a restarted server). */
static void pg_revive(pg_t *p)
{
    if (!p->in_tx && PQstatus(p->c) == CONNECTION_BAD)
        PQreset(p->c);
}

static void pg_close(ota_db_t *db)
{
    PQfinish(PG(db)->c);
    free(db);
}

static int pg_exec(ota_db_t *db, const char *sql)
{
    pg_revive(PG(db));
    return pg_run(db, sql);
}

static int pg_begin(ota_db_t *db)
{
    pg_t *p = PG(db);
    pg_revive(p);
    /* one round trip: BEGIN, the writers' lock and the writer's label for the triggers (its
     * characters are checked by ota_db_set_label(): nothing to quote) */
    char sql[160 + OTA_DB_LABEL_MAX];
    snprintf(sql, sizeof sql,
             "BEGIN; SELECT pg_advisory_xact_lock(" WRITE_LOCK_KEY "), "
             "set_config('otter.writer', '%s', true)",
             db->label);
    int rc = pg_run(db, sql);
    if (PQtransactionStatus(p->c) != PQTRANS_IDLE)
        p->in_tx = 1;
    if (rc != 0) {
        PQclear(PQexec(p->c, "ROLLBACK"));
        p->in_tx = 0;
        return -1;
    }
    p->tx_wrote = 0;
    return 0;
}

static void pg_rollback(ota_db_t *db)
{
    pg_t *p = PG(db);
    if (!p->in_tx)
        return;
    PQclear(PQexec(p->c, "ROLLBACK"));
    p->in_tx = 0;
}

static int pg_commit(ota_db_t *db)
{
    pg_t *p = PG(db);
    /* one round trip: the change counter (when something was written) and COMMIT; after a
     * failed statement the server runs none of what follows, and COMMIT of a failed
     * transaction answers "ROLLBACK" */
    PGresult *res =
        PQexec(p->c, p->tx_wrote ? "UPDATE otter_changes SET n = n + 1; COMMIT" : "COMMIT");
    int rc =
        PQresultStatus(res) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "COMMIT") == 0 ? 0 : -1;
    if (rc)
        pg_fail_res(db, res, "commit");
    PQclear(res);
    if (rc && PQtransactionStatus(p->c) != PQTRANS_IDLE)
        PQclear(PQexec(p->c, "ROLLBACK"));
    p->in_tx = 0;
    if (!rc && p->tx_wrote)
        p->own_writes++;
    return rc;
}

static int pg_in_tx(const ota_db_t *db)
{
    return ((const pg_t *)db)->in_tx;
}

/** Turns `?` / `?N` into `$N` outside quotes and comments; -1 if out of bounds. */
static int translate(const char *sql, char **out, int *nparams)
{
    size_t n = strlen(sql);
    char *o = malloc(n * 3 + 1); /* "?" -> "$NN" at most triples a byte */
    if (!o)
        return -1;
    size_t j = 0;
    int max = 0;
    char quote = 0;
    for (size_t i = 0; i < n; i++) {
        char c = sql[i];
        if (quote) {
            o[j++] = c;
            if (c == quote)
                quote = 0;
            continue;
        }
        if (c == '\'' || c == '"') {
            quote = c;
            o[j++] = c;
            continue;
        }
        if (c != '?') {
            o[j++] = c;
            continue;
        }
        int idx = 0;
        while (i + 1 < n && isdigit((unsigned char)sql[i + 1]))
            idx = idx * 10 + (sql[++i] - '0');
        if (idx == 0)
            idx = max + 1;
        if (idx > PG_MAX_PARAMS) {
            free(o);
            return -1;
        }
        if (idx > max)
            max = idx;
        j += (size_t)sprintf(o + j, "$%d", idx);
    }
    o[j] = '\0';
    *out = o;
    *nparams = max;
    return 0;
}

static int pg_prepare(ota_db_t *db, const char *sql, ota_db_stmt_t **out)
{
    pg_stmt_t *s = calloc(1, sizeof *s);
    if (!s)
        return ota_db_set_error(db, OTA_DB_E_OTHER, "out of memory");
    if (translate(sql, &s->sql, &s->nparams) != 0) {
        free(s);
        return ota_db_set_error(db, OTA_DB_E_OTHER, "statement has more than %d parameters",
                                PG_MAX_PARAMS);
    }
    const char *p = sql;
    while (isspace((unsigned char)*p))
        p++;
    s->is_write = strncasecmp(p, "SELECT", 6) != 0;
    for (int i = 0; i < PG_MAX_PARAMS; i++)
        s->types[i] = PG_TEXTOID; /* unbound parameters are text NULLs */
    s->base.db = db;
    *out = &s->base;
    return 0;
}

static void set_param(ota_db_stmt_t *st, int i, char *v, unsigned int type)
{
    pg_stmt_t *s = PST(st);
    if (i < 1 || i > PG_MAX_PARAMS) {
        free(v);
        return;
    }
    free(s->values[i - 1]);
    s->values[i - 1] = v;
    s->types[i - 1] = type; /* NULL as text: the store's NULL parameters are text filters */
    if (i > s->nparams)
        s->nparams = i;
}

static void pg_bind_text(ota_db_stmt_t *st, int i, const char *v)
{
    set_param(st, i, v ? strdup(v) : NULL, PG_TEXTOID);
}

static void pg_bind_int64(ota_db_stmt_t *st, int i, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    set_param(st, i, strdup(buf), PG_INT8OID);
}

/** Runs the statement once; OTA_DB_ROW/DONE or OTA_DB_ERROR. */
static int pg_run_stmt(pg_stmt_t *s)
{
    pg_t *p = PG(s->base.db);
    int implicit = s->is_write && !p->in_tx;
    if (implicit && pg_begin(&p->base) != 0)
        return OTA_DB_ERROR;
    if (s->is_write)
        p->tx_wrote = 1;
    s->res = PQexecParams(p->c, s->sql, s->nparams, s->types, (const char *const *)s->values, NULL,
                          NULL, 0);
    ExecStatusType t = PQresultStatus(s->res);
    if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) {
        pg_fail_res(&p->base, s->res, NULL);
        PQclear(s->res);
        s->res = NULL;
        if (implicit)
            pg_rollback(&p->base);
        return OTA_DB_ERROR;
    }
    if (s->is_write)
        p->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
    if (implicit && pg_commit(&p->base) != 0) {
        PQclear(s->res);
        s->res = NULL;
        return OTA_DB_ERROR;
    }
    s->row = -1;
    return 0;
}

static int pg_step(ota_db_stmt_t *st)
{
    pg_stmt_t *s = PST(st);
    if (!s->res) {
        pg_revive(PG(st->db));
        if (pg_run_stmt(s) != 0)
            return OTA_DB_ERROR;
    }
    s->row++;
    return s->row < PQntuples(s->res) ? OTA_DB_ROW : OTA_DB_DONE;
}

static void pg_reset(ota_db_stmt_t *st)
{
    PQclear(PST(st)->res);
    PST(st)->res = NULL;
}

static void pg_finalize(ota_db_stmt_t *st)
{
    pg_stmt_t *s = PST(st);
    PQclear(s->res);
    for (int i = 0; i < PG_MAX_PARAMS; i++)
        free(s->values[i]);
    free(s->sql);
    free(s);
}

static int has_cell(pg_stmt_t *s, int i)
{
    return s->res && s->row >= 0 && s->row < PQntuples(s->res) && i >= 0 && i < PQnfields(s->res) &&
           !PQgetisnull(s->res, s->row, i);
}

static const char *pg_col_text(ota_db_stmt_t *st, int i)
{
    pg_stmt_t *s = PST(st);
    return has_cell(s, i) ? PQgetvalue(s->res, s->row, i) : NULL;
}

static int64_t pg_col_int64(ota_db_stmt_t *st, int i)
{
    const char *v = pg_col_text(st, i);
    if (!v)
        return 0;
    if (v[0] == 't' && v[1] == '\0') /* a boolean */
        return 1;
    return strtoll(v, NULL, 10);
}

static int pg_is_null(ota_db_stmt_t *st, int i)
{
    return !has_cell(PST(st), i);
}

static int64_t pg_changes(ota_db_t *db)
{
    return PG(db)->changes;
}

static int64_t pg_last_id(ota_db_t *db)
{
    PGresult *res = PQexec(PG(db)->c, "SELECT lastval()");
    int64_t v = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
                    ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                    : 0;
    PQclear(res);
    return v;
}

static int pg_data_version(ota_db_t *db, int64_t *out)
{
    pg_revive(PG(db));
    PGresult *res = PQexec(PG(db)->c, "SELECT n FROM otter_changes");
    int rc = 0;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        *out = strtoll(PQgetvalue(res, 0, 0), NULL, 10) - PG(db)->own_writes;
    else
        rc = pg_fail_res(db, res, "data version");
    PQclear(res);
    return rc;
}

static const ota_db_ops_t pg_ops = {
    .kind = OTA_DB_POSTGRESQL,
    .close = pg_close,
    .exec = pg_exec,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .in_transaction = pg_in_tx,
    .prepare = pg_prepare,
    .bind_text = pg_bind_text,
    .bind_int64 = pg_bind_int64,
    .step = pg_step,
    .reset = pg_reset,
    .finalize = pg_finalize,
    .column_text = pg_col_text,
    .column_int64 = pg_col_int64,
    .column_is_null = pg_is_null,
    .changes = pg_changes,
    .last_insert_id = pg_last_id,
    .data_version = pg_data_version,
};

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

int ota_db_open_pg(const char *conninfo, ota_db_t **out, char *err, size_t err_cap)
{
    *out = NULL;
    pg_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    p->base.ops = &pg_ops;
    p->c = PQconnectdb(conninfo);
    if (!p->c || PQstatus(p->c) != CONNECTION_OK) {
        const char *m = p->c ? PQerrorMessage(p->c) : "out of memory";
        int n = (int)strlen(m);
        while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
            n--;
        snprintf(err, err_cap, "cannot connect to PostgreSQL: %.*s", n, m);
        pg_close(&p->base);
        return -1;
    }
    PQsetNoticeProcessor(p->c, quiet_notice, NULL);
    /* the change counter, made once under the writers' lock */
    if (pg_run(&p->base, "SET client_min_messages = warning") || pg_begin(&p->base) ||
        pg_run(&p->base, "CREATE TABLE IF NOT EXISTS otter_changes(n BIGINT NOT NULL)") ||
        pg_run(&p->base, "INSERT INTO otter_changes SELECT 0 WHERE NOT EXISTS "
                         "(SELECT 1 FROM otter_changes)")) {
        snprintf(err, err_cap, "PostgreSQL: %s", p->base.err);
        pg_rollback(&p->base);
        pg_close(&p->base);
        return -1;
    }
    if (pg_commit(&p->base) != 0) {
        snprintf(err, err_cap, "PostgreSQL: %s", p->base.err);
        pg_close(&p->base);
        return -1;
    }
    p->own_writes = 0;
    *out = &p->base;
    return 0;
}
