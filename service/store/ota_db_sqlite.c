/*
 * otter service: the database adapter's SQLite driver. See ota_db.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "ota_db.h"
#include "ota_db_driver.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    ota_db_t base;
    sqlite3 *db;
    int busy_ms;
} lite_t;

typedef struct {
    ota_db_stmt_t base;
    sqlite3_stmt *st;
} lite_stmt_t;

#define LITE(db) ((lite_t *)(db))
#define LST(st) ((lite_stmt_t *)(st))

static int lite_fail(ota_db_t *db)
{
    sqlite3 *h = LITE(db)->db;
    int ext = sqlite3_extended_errcode(h);
    int code = OTA_DB_E_OTHER;
    if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE)
        code = OTA_DB_E_UNIQUE;
    else if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
        code = OTA_DB_E_FOREIGN;
    return ota_db_set_error(db, code, "%s", sqlite3_errmsg(h));
}

static void lite_close(ota_db_t *db)
{
    sqlite3_close_v2(LITE(db)->db);
    free(db);
}

static int lite_exec(ota_db_t *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(LITE(db)->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = lite_fail(db);
        if (msg)
            ota_db_set_error(db, db->errcode, "%s", msg);
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

static int lite_begin(ota_db_t *db)
{
    return lite_exec(db, "BEGIN IMMEDIATE");
}

static int lite_commit(ota_db_t *db)
{
    if (lite_exec(db, "COMMIT") != 0) {
        sqlite3_exec(LITE(db)->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static void lite_rollback(ota_db_t *db)
{
    if (!sqlite3_get_autocommit(LITE(db)->db))
        sqlite3_exec(LITE(db)->db, "ROLLBACK", NULL, NULL, NULL);
}

static int lite_prepare(ota_db_t *db, const char *sql, ota_db_stmt_t **out)
{
    lite_stmt_t *s = calloc(1, sizeof *s);
    if (!s)
        return ota_db_set_error(db, OTA_DB_E_OTHER, "out of memory");
    if (sqlite3_prepare_v2(LITE(db)->db, sql, -1, &s->st, NULL) != SQLITE_OK) {
        free(s);
        return lite_fail(db);
    }
    s->base.db = db;
    *out = &s->base;
    return 0;
}

static void lite_bind_text(ota_db_stmt_t *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(LST(st)->st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(LST(st)->st, i);
}

static void lite_bind_int64(ota_db_stmt_t *st, int i, int64_t v)
{
    sqlite3_bind_int64(LST(st)->st, i, v);
}

static int lite_step(ota_db_stmt_t *st)
{
    int r = sqlite3_step(LST(st)->st);
    if (r == SQLITE_ROW)
        return OTA_DB_ROW;
    if (r == SQLITE_DONE)
        return OTA_DB_DONE;
    lite_fail(st->db);
    return OTA_DB_ERROR;
}

static void lite_reset(ota_db_stmt_t *st)
{
    sqlite3_reset(LST(st)->st);
}

static void lite_finalize(ota_db_stmt_t *st)
{
    sqlite3_finalize(LST(st)->st);
    free(st);
}

static const char *lite_text(ota_db_stmt_t *st, int i)
{
    return (const char *)sqlite3_column_text(LST(st)->st, i);
}

static int64_t lite_int64(ota_db_stmt_t *st, int i)
{
    return sqlite3_column_int64(LST(st)->st, i);
}

static int lite_is_null(ota_db_stmt_t *st, int i)
{
    return sqlite3_column_type(LST(st)->st, i) == SQLITE_NULL;
}

static int64_t lite_changes(ota_db_t *db)
{
    return sqlite3_changes(LITE(db)->db);
}

static int64_t lite_last_id(ota_db_t *db)
{
    return sqlite3_last_insert_rowid(LITE(db)->db);
}

static int lite_data_version(ota_db_t *db, int64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(LITE(db)->db, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK)
        return lite_fail(db);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return r == SQLITE_ROW ? 0 : lite_fail(db);
}

static int lite_in_tx(const ota_db_t *db)
{
    return !sqlite3_get_autocommit(((const lite_t *)db)->db);
}

static const ota_db_ops_t lite_ops = {
    .kind = OTA_DB_SQLITE,
    .close = lite_close,
    .exec = lite_exec,
    .begin = lite_begin,
    .commit = lite_commit,
    .rollback = lite_rollback,
    .in_transaction = lite_in_tx,
    .prepare = lite_prepare,
    .bind_text = lite_bind_text,
    .bind_int64 = lite_bind_int64,
    .step = lite_step,
    .reset = lite_reset,
    .finalize = lite_finalize,
    .column_text = lite_text,
    .column_int64 = lite_int64,
    .column_is_null = lite_is_null,
    .changes = lite_changes,
    .last_insert_id = lite_last_id,
    .data_version = lite_data_version,
};

/**
 * Switches the database to WAL. Changing the journal mode takes an exclusive
 * lock that SQLite's busy handler does not always wait for (several processes
 * opening a new database at once), so a busy answer is retried here.
 */
static int set_wal(lite_t *l)
{
    for (int waited_ms = 0;; waited_ms += 10) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(l->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
            return lite_fail(&l->base);
        int r = sqlite3_step(st);
        int wal = r == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
        sqlite3_finalize(st);
        if (wal)
            return 0;
        int code = sqlite3_errcode(l->db);
        if ((r == SQLITE_ROW || (code != SQLITE_BUSY && code != SQLITE_LOCKED)) ||
            waited_ms >= l->busy_ms)
            return ota_db_set_error(&l->base, OTA_DB_E_OTHER, "cannot switch to WAL: %s",
                                    sqlite3_errmsg(l->db));
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/** SQL function otter_writer(): the handle's label (ota_db_set_label()), for the triggers. */
static void lite_writer(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    (void)argv;
    const ota_db_t *db = sqlite3_user_data(ctx);
    sqlite3_result_text(ctx, db->label, -1, SQLITE_TRANSIENT);
}

/** Collation "C": byte order, as PostgreSQL's "C" (for `ORDER BY ... COLLATE "C"`). */
static int lite_bytes_cmp(void *ctx, int na, const void *a, int nb, const void *b)
{
    (void)ctx;
    int c = memcmp(a, b, (size_t)(na < nb ? na : nb));
    return c ? c : na - nb;
}

int ota_db_open_sqlite(const char *path, int busy_ms, ota_db_t **out, char *err, size_t err_cap)
{
    *out = NULL;
    lite_t *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    l->base.ops = &lite_ops;
    l->busy_ms = busy_ms;
    if (sqlite3_open_v2(path, &l->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, err_cap, "cannot open %s: %s", path,
                 l->db ? sqlite3_errmsg(l->db) : "out of memory");
        lite_close(&l->base);
        return -1;
    }
    sqlite3_busy_timeout(l->db, busy_ms);
    if (sqlite3_create_function(l->db, "otter_writer", 0, SQLITE_UTF8, &l->base, lite_writer, NULL,
                                NULL) != SQLITE_OK ||
        sqlite3_create_collation(l->db, "C", SQLITE_UTF8, NULL, lite_bytes_cmp) != SQLITE_OK ||
        lite_exec(&l->base, "PRAGMA foreign_keys=ON") || set_wal(l) ||
        lite_exec(&l->base, "PRAGMA synchronous=NORMAL")) {
        snprintf(err, err_cap, "%s: %s", path, l->base.err);
        lite_close(&l->base);
        return -1;
    }
    *out = &l->base;
    return 0;
}
