/*
 * otter service: the database adapter's dispatch to its drivers. See ota_db.h.
 */
#include "ota_db.h"
#include "ota_db_driver.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ota_db_set_error(ota_db_t *db, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->err, sizeof db->err, fmt, ap);
    va_end(ap);
    db->errcode = code;
    return -1;
}

void ota_db_close(ota_db_t *db)
{
    if (db)
        db->ops->close(db);
}

ota_db_kind_t ota_db_kind(const ota_db_t *db)
{
    return db->ops->kind;
}

const char *ota_db_errmsg(const ota_db_t *db)
{
    return db->err;
}

int ota_db_errcode(const ota_db_t *db)
{
    return db->errcode;
}

int ota_db_exec(ota_db_t *db, const char *sql)
{
    db->statements++;
    return db->ops->exec(db, sql);
}

int ota_db_begin(ota_db_t *db)
{
    return db->ops->begin(db);
}

int ota_db_commit(ota_db_t *db)
{
    return db->ops->commit(db);
}

void ota_db_rollback(ota_db_t *db)
{
    db->ops->rollback(db);
}

int ota_db_in_transaction(const ota_db_t *db)
{
    return db->ops->in_transaction(db);
}

int ota_db_prepare(ota_db_t *db, const char *sql, ota_db_stmt_t **out)
{
    *out = NULL;
    return db->ops->prepare(db, sql, out);
}

void ota_db_bind_text(ota_db_stmt_t *st, int i, const char *value)
{
    st->db->ops->bind_text(st, i, value);
}

void ota_db_bind_int64(ota_db_stmt_t *st, int i, int64_t value)
{
    st->db->ops->bind_int64(st, i, value);
}

void ota_db_bind_null(ota_db_stmt_t *st, int i)
{
    st->db->ops->bind_text(st, i, NULL);
}

int ota_db_step(ota_db_stmt_t *st)
{
    if (!st->started) {
        st->started = 1;
        st->db->statements++;
    }
    return st->db->ops->step(st);
}

void ota_db_reset(ota_db_stmt_t *st)
{
    st->started = 0;
    st->db->ops->reset(st);
}

void ota_db_finalize(ota_db_stmt_t *st)
{
    if (st)
        st->db->ops->finalize(st);
}

const char *ota_db_column_text(ota_db_stmt_t *st, int i)
{
    return st->db->ops->column_text(st, i);
}

int64_t ota_db_column_int64(ota_db_stmt_t *st, int i)
{
    return st->db->ops->column_int64(st, i);
}

int ota_db_column_is_null(ota_db_stmt_t *st, int i)
{
    return st->db->ops->column_is_null(st, i);
}

int64_t ota_db_changes(ota_db_t *db)
{
    return db->ops->changes(db);
}

int64_t ota_db_last_insert_id(ota_db_t *db)
{
    return db->ops->last_insert_id(db);
}

int ota_db_data_version(ota_db_t *db, int64_t *out)
{
    return db->ops->data_version(db, out);
}

int64_t ota_db_statements(const ota_db_t *db)
{
    return db->statements;
}

int ota_db_set_label(ota_db_t *db, const char *label)
{
    size_t n = label ? strlen(label) : 0;
    if (!label || n > OTA_DB_LABEL_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = label[i];
        if (c < '!' || c > '~' || c == '\'' || c == '\\')
            return -1;
    }
    memcpy(db->label, label, n + 1);
    return 0;
}
