/*
 * otter service: the store's private parts, shared by its source files
 * (one per concern, listed in ota_store.c). Not for users of the store:
 * include ota_store.h.
 */
#ifndef OTA_STORE_INTERNAL_H
#define OTA_STORE_INTERNAL_H

#include <stdint.h>

#include "ota_db.h"
#include "ota_store.h"

#define STR_(x) #x
/** A number macro as a string literal. */
#define STR(x) STR_(x)

/* Execution columns, in the order read_exec() expects. */
#define EXEC_COLS                                                                                  \
    "e.job, e.thing, e.status, e.details, e.version, e.exec_number, e.queued_ms, e.started_ms, "   \
    "e.updated_ms, e.deadline_ms, e.released"

/*
 * Statuses as SQL literals: SQL text names them ("status = " EX_QUEUED)
 * instead of repeating their numbers; each is checked against its enum in
 * ota_store.h. (The schema's DDL keeps its numbers: it is versioned text.)
 */
#define EX_QUEUED_N 0
#define EX_IN_PROGRESS_N 1
#define EX_SUCCEEDED_N 2
#define EX_TIMED_OUT_N 4
#define EX_REMOVED_N 6
#define EX_CANCELED_N 7
#define EX_SKIPPED_N 8
#define JOB_IN_PROGRESS_N 0
#define JOB_COMPLETED_N 2
#define EX_QUEUED STR(EX_QUEUED_N)
#define EX_IN_PROGRESS STR(EX_IN_PROGRESS_N)
#define EX_SUCCEEDED STR(EX_SUCCEEDED_N)
#define EX_TIMED_OUT STR(EX_TIMED_OUT_N)
#define EX_REMOVED STR(EX_REMOVED_N)
#define EX_CANCELED STR(EX_CANCELED_N)
#define EX_SKIPPED STR(EX_SKIPPED_N)
#define JOB_IN_PROGRESS STR(JOB_IN_PROGRESS_N)
#define JOB_COMPLETED STR(JOB_COMPLETED_N)
_Static_assert(OTA_STORE_EXEC_QUEUED == EX_QUEUED_N, "EX_QUEUED");
_Static_assert(OTA_STORE_EXEC_IN_PROGRESS == EX_IN_PROGRESS_N, "EX_IN_PROGRESS");
_Static_assert(OTA_STORE_EXEC_SUCCEEDED == EX_SUCCEEDED_N, "EX_SUCCEEDED");
_Static_assert(OTA_STORE_EXEC_TIMED_OUT == EX_TIMED_OUT_N, "EX_TIMED_OUT");
_Static_assert(OTA_STORE_EXEC_REMOVED == EX_REMOVED_N, "EX_REMOVED");
_Static_assert(OTA_STORE_EXEC_CANCELED == EX_CANCELED_N, "EX_CANCELED");
_Static_assert(OTA_STORE_EXEC_SKIPPED == EX_SKIPPED_N, "EX_SKIPPED");
_Static_assert(OTA_STORE_JOB_IN_PROGRESS == JOB_IN_PROGRESS_N, "JOB_IN_PROGRESS");
_Static_assert(OTA_STORE_JOB_COMPLETED == JOB_COMPLETED_N, "JOB_COMPLETED");

/** Collected (job, thing) pairs, so that no statement is open while writing. */
typedef struct {
    char (*job)[OTA_STORE_JOB_ID_MAX + 1];
    char (*thing)[OTA_STORE_THING_NAME_MAX + 1];
    int64_t *num;
    int64_t *num2;
    size_t n, cap;
} rows_t;

/** Adds a row; 0 or -1 (out of memory). */
int rows_push(rows_t *r, const char *job, const char *thing, int64_t num, int64_t num2);
/** Frees the rows. */
void rows_free(rows_t *r);
/** Sorts idx[0..n) by the rows' thing names (tmp holds n entries). */
void sort_idx(const rows_t *r, size_t *idx, size_t *tmp, size_t n);
/** Collects rows of (text, text, int, int) from a query with at most one int parameter. */
int collect(ota_store_t *s, const char *sql, int64_t arg, rows_t *out);
/** A heap copy of a text (NULL for NULL or out of memory). */
char *dup_text(const char *t);

/** An open data directory. */
struct ota_store {
    ota_db_t *db;
    char *data_dir;
    char err[512];
    int64_t data_version; /* last ota_db_data_version() seen; -1 before the first poll */
    int64_t claim_id;     /* owner id of this handle's notify-next claims */
    char instance[OTA_STORE_INSTANCE_MAX + 1]; /* this instance's name (outbox owner); "" unset */
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

/* 1 for the attributes presence is written in (connected, connectedTo, presenceUnknownOn,
 * lastSeen): not known at every moment (a gap in the service's view of the brokers makes them
 * unknown), so no new group query, and no job's targets, follow them; a change of one needs no
 * re-check of groups or executions; they do not count against OTA_STORE_ATTRS_MAX (the count in
 * ota_store_thing_attr_set() names the same four keys). */
int ota_store_presence_key(const char *key);
/** Sets a thing's attribute inside a transaction (no checks). */
int attr_put(ota_store_t *s, const char *thing, const char *key, const char *value, int64_t now_ms);
/** 1 for the presence attributes computed from the presence tables (connected, connectedTo,
 *  presenceUnknownOn), which are never stored as attributes. */
int ota_store_presence_computed(const char *key);
/** A computed presence attribute's value into out: 1, or 0 when the thing has none. */
int ota_store_presence_attr(const ota_store_presence_t *p, const char *key, char *out, size_t cap);
/** The columns of a presence row after its broker: online, current (its notice came in the
 *  broker's current epoch), at_ms and the at_ms of the broker's first gap after it (NULL when
 *  none is kept), for thing column T and broker column B. */
#define PRESENCE_ROW_COLS(T, B)                                                                    \
    T ".online, CASE WHEN " T ".epoch = COALESCE((SELECT MAX(g.epoch) FROM presence_gaps g "       \
      "WHERE g.broker = " B "), 0) THEN 1 ELSE 0 END, " T ".at_ms, (SELECT g.at_ms FROM "          \
      "presence_gaps g WHERE g.broker = " B " AND g.epoch = " T ".epoch + 1)"
/** Adds one presence row (broker, then PRESENCE_ROW_COLS) to a thing's presence. */
void presence_add_row(ota_store_presence_t *p, int64_t broker, int64_t online, int64_t current,
                      int64_t at_ms, int gap_null, int64_t gap_at_ms);
/** Completes a presence after its last row. */
void presence_done(ota_store_presence_t *p);
/**
 * Calls cb for the computed presence attributes that sort before key (bytes), or for all
 * that are left when key is NULL; *next (0 at first) keeps the place between calls.
 * @return cb's nonzero stop, or 0.
 */
int presence_attrs_before(const ota_store_presence_t *p, size_t *next, const char *key,
                          ota_store_attr_cb cb, void *ctx);
/** Which things thing_list_attrs_of() lists: every one, the one named, a static group's. */
enum { LIST_ALL = 0, LIST_ONE = 1, LIST_GROUP = 2 };
/** ota_store_thing_list_attrs() for LIST_ALL, LIST_ONE (arg: the thing) or LIST_GROUP (arg:
 *  a static group: its members); arguments unchecked. */
int thing_list_attrs_of(ota_store_t *store, int which, const char *arg, ota_store_thing_attrs_cb cb,
                        void *ctx);
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

/**
 * Releases what a job's rollout rate (executions per minute since
 * created_ms) allows at now_ms; adds the count to *n_released (may be NULL).
 */
int ota_store_release_rate(ota_store_t *s, const char *job_id, int64_t rate, int64_t created_ms,
                           int64_t now_ms, size_t *n_released);
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
