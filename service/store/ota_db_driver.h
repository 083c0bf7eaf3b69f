/*
 * otter service: what a database driver provides to ota_db.c (private to the
 * adapter's source files).
 */
#ifndef OTA_DB_DRIVER_H
#define OTA_DB_DRIVER_H

#include "ota_db.h"

/** A driver's functions (see ota_db.h for each one's contract). */
typedef struct ota_db_ops {
    ota_db_kind_t kind;
    void (*close)(ota_db_t *db);
    int (*exec)(ota_db_t *db, const char *sql);
    int (*begin)(ota_db_t *db);
    int (*commit)(ota_db_t *db);
    void (*rollback)(ota_db_t *db);
    int (*in_transaction)(const ota_db_t *db);
    int (*prepare)(ota_db_t *db, const char *sql, ota_db_stmt_t **out);
    void (*bind_text)(ota_db_stmt_t *st, int i, const char *v);
    void (*bind_int64)(ota_db_stmt_t *st, int i, int64_t v);
    int (*step)(ota_db_stmt_t *st);
    void (*reset)(ota_db_stmt_t *st);
    void (*finalize)(ota_db_stmt_t *st);
    const char *(*column_text)(ota_db_stmt_t *st, int i);
    int64_t (*column_int64)(ota_db_stmt_t *st, int i);
    int (*column_is_null)(ota_db_stmt_t *st, int i);
    int64_t (*changes)(ota_db_t *db);
    int64_t (*last_insert_id)(ota_db_t *db);
    int (*data_version)(ota_db_t *db, int64_t *out);
} ota_db_ops_t;

/** The part every driver's handle starts with. */
struct ota_db {
    const ota_db_ops_t *ops;
    int errcode;
    char err[512];
    char label[OTA_DB_LABEL_MAX + 1]; /* who writes through this handle (ota_db_set_label()) */
    int64_t statements;               /* statements run (ota_db_statements()) */
};

/** The part every driver's statement starts with. */
struct ota_db_stmt {
    ota_db_t *db;
    int started; /* stepped since it was prepared or reset (zeroed by the driver's allocation) */
};

/** Records a failure on the handle; returns -1. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int ota_db_set_error(ota_db_t *db, int code, const char *fmt, ...);

#endif /* OTA_DB_DRIVER_H */
