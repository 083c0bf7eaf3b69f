/*
 * otter service: the store's private parts, shared by its source files
 * (ota_store.c: things, files, streams, jobs, executions; ota_store_fleet.c:
 * thing attributes and version/device-type targeting). Not for users of the
 * store: include ota_store.h.
 */
#ifndef OTA_STORE_INTERNAL_H
#define OTA_STORE_INTERNAL_H

#include <stdint.h>

#include "ota_db.h"
#include "ota_store.h"

/** An open data directory. */
struct ota_store {
    ota_db_t *db;
    char *data_dir;
    char err[512];
    int64_t data_version; /* last ota_db_data_version() seen; -1 before the first poll */
};

/** Records a failure text on the handle and returns rc. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int fail(ota_store_t *s, int rc, const char *fmt, ...);
/** OTA_STORE_ERROR with SQLite's message about what. */
int fail_db(ota_store_t *s, const char *what);
/** Clears the failure text. */
void ok(ota_store_t *s);
/** Prepares a statement (*st = NULL on failure). */
int prep(ota_store_t *s, ota_db_stmt_t **st, const char *sql);
/** Runs SQL text without results. */
int exec_sql(ota_store_t *s, const char *sql);
/** BEGIN IMMEDIATE. */
int begin(ota_store_t *s);
/** Rolls back an open transaction, if any. */
void rollback(ota_store_t *s);
/** Ends a write transaction: commit if rc is OK, else roll back. */
int finish(ota_store_t *s, int rc);
/** Runs a statement to completion. */
int step_done(ota_store_t *s, ota_db_stmt_t *st, const char *what);
/** Copies a text column (or "") into dst. */
void copy_col(char *dst, size_t cap, ota_db_stmt_t *st, int col);
/** Runs a one-integer query with up to two text parameters; *out = 0 without a row. */
int query_int(ota_store_t *s, const char *sql, const char *arg1, const char *arg2, int64_t *out);
/** OTA_STORE_INVALID with a text when name is not a valid thing/group name. */
int check_thing_name(ota_store_t *s, const char *name, const char *what);
/** Re-evaluates an IN_PROGRESS job after executions finished (inside a transaction). */
int recheck_job(ota_store_t *s, const char *job_id, int64_t now_ms);
/** Marks that a thing's next job may have changed. */
int bump_thing(ota_store_t *s, const char *thing);

/**
 * Skips (status SKIPPED) the QUEUED executions that a thing does not need:
 * the job names device types and the thing's deviceType attribute is not
 * one of them (or is unset), or the job has a target version and the thing's
 * firmwareVersion attribute equals it. job_id and thing filter (NULL = any).
 * Re-evaluates the jobs concerned. Inside a transaction.
 */
int ota_store_skip_unneeded(ota_store_t *s, const char *job_id, const char *thing, int64_t now_ms);

/**
 * After a SUCCEEDED update: the thing now runs the job's target version
 * (when the job has one); records it as the thing's firmwareVersion and skips
 * its other QUEUED executions for that version. Inside a transaction.
 */
int ota_store_learn_version(ota_store_t *s, const char *job_id, const char *thing, int64_t now_ms);

/** 1 if a rollout holds executions back (start, window, phases, exponential rate). */
int ota_store_rollout_is_controlled(const ota_store_rollout_t *r);
/** Checks a spec's abort rules and rollout (OTA_STORE_INVALID with a text). */
int ota_store_rollout_check(ota_store_t *s, const ota_store_job_spec_t *spec);
/** Stores a new job's abort rules and rollout (inside the creating transaction). */
int ota_store_rollout_save(ota_store_t *s, const ota_store_job_spec_t *spec);
/** Releases what a controlled job's rollout allows now; adds the count to *n_released. */
int ota_store_release_controlled(ota_store_t *s, const char *job_id, int64_t now_ms,
                                 size_t *n_released);
/** Lowers *out to the earliest time a controlled rollout has work. */
int ota_store_rollout_next(ota_store_t *s, int64_t now_ms, int64_t *out);
/**
 * Whether a job's abort rules (or a phase finished below its threshold) end
 * it, given its counts by status: 1 with a reason code and text, 0 if not,
 * < 0 on failure.
 */
int ota_store_abort_check(ota_store_t *s, const char *job_id, const uint32_t *by_status, char *code,
                          size_t code_cap, char *why, size_t why_cap);
/** Lists (name, created_ms) rows of a query with up to one text parameter; *n counts them. */
int list_things(ota_store_t *s, const char *sql, const char *arg, ota_store_thing_cb cb, void *ctx,
                size_t *n);
/** Records a new job's targets (things, groups) and whether it is continuous. */
int ota_store_job_targets_save(ota_store_t *s, const ota_store_job_spec_t *spec);
/**
 * Brings a thing's executions of IN_PROGRESS continuous jobs in line with its
 * group memberships: a new member gets an execution, a thing no longer
 * targeted loses its QUEUED one (REMOVED). Inside a transaction.
 */
int ota_store_continuous_sync(ota_store_t *s, const char *thing, int64_t now_ms);

/**
 * PostgreSQL: the path of this machine's copy of file id in path, written
 * from the database's chunks when it is missing or has another size.
 */
int ota_store_file_local(ota_store_t *s, int64_t id, uint64_t size, char *path, size_t cap);

/** Fills a job's abort rules, rollout, open phase and end reason. */
int ota_store_job_extra(ota_store_t *s, ota_store_job_t *j);

#endif /* OTA_STORE_INTERNAL_H */
