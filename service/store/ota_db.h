/*
 * otter service: the store's database adapter. One small interface with two
 * drivers, SQLite (ota_db_sqlite.c) and PostgreSQL through libpq
 * (ota_db_pg.c), so that the store's SQL is written once.
 *
 * The SQL the store passes here is a portable subset: placeholders are `?`
 * or `?N` (the PostgreSQL driver turns them into `$N`), upserts are
 * `ON CONFLICT`, and only functions both databases know are used (the
 * PostgreSQL schema defines `instr`). `COLLATE "C"` is byte order on both
 * (the SQLite driver defines it), whatever a PostgreSQL database's
 * collation. Schema text (DDL) is back-end specific and comes from the
 * store's per-driver migration lists.
 *
 * Writers are serialized on both back-ends: SQLite takes its database lock
 * (BEGIN IMMEDIATE), PostgreSQL a transaction-level advisory lock taken by
 * every write transaction, also by the implicit one around a write statement
 * run outside ota_db_begin(). A write therefore sees every write committed
 * before it began, on one machine or across several.
 *
 * A handle is used by one thread at a time and never across fork().
 */
#ifndef OTA_DB_H
#define OTA_DB_H

#include <stddef.h>
#include <stdint.h>

/** An open connection. Opaque. */
typedef struct ota_db ota_db_t;
/** A prepared statement. Opaque. */
typedef struct ota_db_stmt ota_db_stmt_t;

/** The back-end of a handle. */
typedef enum { OTA_DB_SQLITE = 1, OTA_DB_POSTGRESQL = 2 } ota_db_kind_t;

/** Longest writer label (ota_db_set_label()). */
#define OTA_DB_LABEL_MAX 128

/** ota_db_step() results. */
enum {
    OTA_DB_ERROR = -1, /**< failed; ota_db_errmsg(), ota_db_errcode() */
    OTA_DB_ROW = 1,    /**< a row is ready for ota_db_column_*() */
    OTA_DB_DONE = 2    /**< finished */
};

/** ota_db_errcode() values: what failed, as far as the store cares. */
enum {
    OTA_DB_E_OTHER = 1,  /**< anything else */
    OTA_DB_E_UNIQUE = 2, /**< a primary key or UNIQUE constraint */
    OTA_DB_E_FOREIGN = 3 /**< a foreign key */
};

/**
 * Opens an SQLite database file (created if missing) with foreign keys on,
 * WAL journal, a busy wait of busy_ms and the collation "C" (byte order).
 * @param path database file.
 * @param busy_ms how long a writer waits for another process's transaction.
 * @param out receives the handle (NULL on failure).
 * @param err receives a reason on failure.
 * @param err_cap size of err.
 * @return 0 or -1.
 */
int ota_db_open_sqlite(const char *path, int busy_ms, ota_db_t **out, char *err, size_t err_cap);

/**
 * Connects to PostgreSQL.
 * @param conninfo a `postgresql://` URL or libpq key=value string.
 * @param out receives the handle (NULL on failure).
 * @param err receives a reason on failure (the password is never included).
 * @param err_cap size of err.
 * @return 0 or -1.
 */
int ota_db_open_pg(const char *conninfo, ota_db_t **out, char *err, size_t err_cap);

/**
 * Closes a handle; open statements must have been finalized.
 * @param db handle, or NULL (no-op).
 */
void ota_db_close(ota_db_t *db);

/** @return the back-end of db. */
ota_db_kind_t ota_db_kind(const ota_db_t *db);

/** @return the last failure's text (never NULL). */
const char *ota_db_errmsg(const ota_db_t *db);

/** @return the last failure's class (OTA_DB_E_*). */
int ota_db_errcode(const ota_db_t *db);

/**
 * Runs SQL text without parameters or results; several statements separated
 * by semicolons are allowed.
 * @return 0 or -1.
 */
int ota_db_exec(ota_db_t *db, const char *sql);

/**
 * Starts a write transaction that holds the writers' lock until it ends.
 * @return 0 or -1.
 */
int ota_db_begin(ota_db_t *db);

/** Commits the open transaction. @return 0 or -1 (then it was rolled back). */
int ota_db_commit(ota_db_t *db);

/** Rolls back the open transaction, if any. */
void ota_db_rollback(ota_db_t *db);

/** @return 1 inside a transaction begun with ota_db_begin(), else 0. */
int ota_db_in_transaction(const ota_db_t *db);

/**
 * Prepares one statement.
 * @param sql portable SQL with `?` / `?N` placeholders.
 * @param out receives the statement (NULL on failure).
 * @return 0 or -1.
 */
int ota_db_prepare(ota_db_t *db, const char *sql, ota_db_stmt_t **out);

/** Binds text (copied) to parameter i (1-based); NULL binds SQL NULL. */
void ota_db_bind_text(ota_db_stmt_t *st, int i, const char *value);
/** Binds a 64-bit integer to parameter i (1-based). */
void ota_db_bind_int64(ota_db_stmt_t *st, int i, int64_t value);
/** Binds SQL NULL to parameter i (1-based). */
void ota_db_bind_null(ota_db_stmt_t *st, int i);

/**
 * Runs the statement (first call) or moves to its next row.
 * @return OTA_DB_ROW, OTA_DB_DONE or OTA_DB_ERROR.
 */
int ota_db_step(ota_db_stmt_t *st);

/** Makes the statement ready to run again; bindings are kept. */
void ota_db_reset(ota_db_stmt_t *st);

/** Frees a statement. NULL is a no-op. */
void ota_db_finalize(ota_db_stmt_t *st);

/** Text of column i of the current row, or NULL for SQL NULL. */
const char *ota_db_column_text(ota_db_stmt_t *st, int i);
/** Integer value of column i of the current row (0 for NULL). */
int64_t ota_db_column_int64(ota_db_stmt_t *st, int i);
/** 1 if column i of the current row is SQL NULL. */
int ota_db_column_is_null(ota_db_stmt_t *st, int i);

/** Rows changed by the last INSERT, UPDATE or DELETE run on db. */
int64_t ota_db_changes(ota_db_t *db);

/** Id given by the last INSERT into a table with an identity key on db. */
int64_t ota_db_last_insert_id(ota_db_t *db);

/**
 * A number that changes when another connection commits a write (its own
 * commits do not change it).
 * @return 0 or -1.
 */
int ota_db_data_version(ota_db_t *db, int64_t *out);

/**
 * Counts the statements run on a handle: each prepared statement's first
 * ota_db_step() after ota_db_prepare() or ota_db_reset(), and each
 * ota_db_exec(). What a read costs in round trips to the database, for tests
 * and benchmarks that check a listing does not grow with the rows it lists.
 * @return statements run since the handle was opened.
 */
int64_t ota_db_statements(const ota_db_t *db);

/**
 * Names who writes through this handle: the schema's triggers record it with
 * what they record (SQL function otter_writer() on SQLite, the transaction's
 * setting otter.writer on PostgreSQL, set by every ota_db_begin()).
 * @param label printable ASCII without spaces, quotes or backslashes, at most
 *              OTA_DB_LABEL_MAX characters; "" for none.
 * @return 0, or -1 (the label is refused and the old one kept).
 */
int ota_db_set_label(ota_db_t *db, const char *label);

#endif /* OTA_DB_H */
