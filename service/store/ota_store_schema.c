/*
 * otter service: the store's schema, its migrations on each back-end, and
 * opening and closing a store. See ota_store.h.
 *
 * The SQLite schema grew in steps (versions 1 to 8); a database of any
 * older version is brought up to date when opened. PostgreSQL support came
 * with version 3, so its first step creates version 3 at once; later
 * versions add a numbered step to both lists. Statuses are stored as the
 * enum values of ota_store.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "ota_store.h"
#include "ota_store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/** Schema version this build writes; the migration lists bring older ones here. */
#define STORE_SCHEMA_VERSION 8
/** How long an SQLite writer waits for another process's transaction. */
#define STORE_BUSY_TIMEOUT_MS 10000

/* SQLite, version 1. */
static const char schema_v1[] =
    "CREATE TABLE things("
    " name TEXT PRIMARY KEY,"
    " created_ms INTEGER NOT NULL,"
    " change_seq INTEGER NOT NULL DEFAULT 0,"   /* bumped when the next job may change */
    " handled_seq INTEGER NOT NULL DEFAULT 0,"  /* last change_seq a daemon handled */
    " announced_job TEXT NOT NULL DEFAULT '');" /* job id last sent on notify-next */
    "CREATE INDEX things_pending ON things(name) WHERE change_seq <> handled_seq;"
    "CREATE TABLE group_members("
    " grp TEXT NOT NULL,"
    " thing TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,"
    " PRIMARY KEY(grp, thing));"
    "CREATE INDEX group_members_thing ON group_members(thing);"
    "CREATE TABLE files("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " path TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE streams("
    " id TEXT PRIMARY KEY,"
    " version INTEGER NOT NULL,"
    " description TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE stream_files("
    " stream TEXT NOT NULL REFERENCES streams(id) ON DELETE CASCADE,"
    " file_id INTEGER NOT NULL CHECK(file_id BETWEEN 0 AND 255),"
    " path TEXT NOT NULL,"
    " size INTEGER NOT NULL CHECK(size > 0),"
    " PRIMARY KEY(stream, file_id));"
    "CREATE TABLE jobs("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " document TEXT NOT NULL,"
    " stream TEXT REFERENCES streams(id),"
    " status INTEGER NOT NULL,"
    " timeout_min INTEGER NOT NULL,"
    " rollout_per_min INTEGER NOT NULL,"
    " abort_pct INTEGER NOT NULL,"
    " abort_min INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " completed_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX jobs_stream ON jobs(stream);"
    "CREATE TABLE executions("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " thing TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,"
    " status INTEGER NOT NULL,"
    " details TEXT,"
    " version INTEGER NOT NULL,"
    " exec_number INTEGER NOT NULL,"
    " queued_ms INTEGER NOT NULL,"
    " started_ms INTEGER NOT NULL DEFAULT 0,"
    " updated_ms INTEGER NOT NULL,"
    " deadline_ms INTEGER NOT NULL DEFAULT 0,"
    " released INTEGER NOT NULL,"
    " UNIQUE(job, thing));"
    "CREATE INDEX exec_thing ON executions(thing, status);"
    "CREATE INDEX exec_deadline ON executions(deadline_ms) WHERE status = 1 AND deadline_ms > 0;"
    "CREATE INDEX exec_unreleased ON executions(job, seq) WHERE released = 0;";

/* Version 2: the pending-list signature last published on jobs/notify; the
 * MQTT deliveries (session, packet id) of the updates applied, so that an
 * update the broker delivers again after a restart is applied once; and the
 * answers not yet acknowledged by the broker (sent again after a restart). */
static const char schema_v2[] = "ALTER TABLE things ADD COLUMN announced_list INTEGER;"
                                "CREATE TABLE deliveries("
                                " session TEXT NOT NULL,"
                                " mid INTEGER NOT NULL,"
                                " digest INTEGER NOT NULL,"
                                " PRIMARY KEY(session, mid)) WITHOUT ROWID;"
                                "CREATE TABLE outbox("
                                " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                                " topic TEXT NOT NULL,"
                                " payload TEXT NOT NULL,"
                                " created_ms INTEGER NOT NULL);";

/* SQLite, step 2 -> 3: thing attributes, jobs' target version, device types, abort reason. */
static const char schema_v3[] =
    "CREATE TABLE thing_attrs("
    " thing TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,"
    " key TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " PRIMARY KEY(thing, key));"
    "ALTER TABLE jobs ADD COLUMN target_version TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE jobs ADD COLUMN device_types TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE jobs ADD COLUMN reason_code TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE jobs ADD COLUMN reason TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE jobs ADD COLUMN abort_rules TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE jobs ADD COLUMN controlled INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN start_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN win_start INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN win_end INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN phases TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE jobs ADD COLUMN phase_success INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN exp_base INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN exp_factor INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN exp_every INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN exp_on_succ INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN rel_minute INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE jobs ADD COLUMN rel_count INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN continuous INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE groups("
    " name TEXT PRIMARY KEY,"
    " query TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL);"
    "INSERT INTO groups(name, created_ms) SELECT DISTINCT grp, 0 FROM group_members;"
    "CREATE TABLE job_targets("
    " job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " kind INTEGER NOT NULL," /* 0 thing, 1 group */
    " name TEXT NOT NULL,"
    " PRIMARY KEY(job, kind, name));"
    "CREATE INDEX job_targets_name ON job_targets(kind, name);";

/* SQLite, step 3 -> 4: notify-next claims (a thing's claim ends at this time). */
static const char schema_v4[] =
    "ALTER TABLE things ADD COLUMN notify_lease_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE things ADD COLUMN notify_owner INTEGER NOT NULL DEFAULT 0;";

/* SQLite, step 4 -> 5: the live service instances, and which instance owns an outbox entry. */
static const char schema_v5[] = "CREATE TABLE instances("
                                " name TEXT PRIMARY KEY,"
                                " serves_jobs INTEGER NOT NULL,"
                                " serves_streams INTEGER NOT NULL,"
                                " beat_ms INTEGER NOT NULL);"
                                "ALTER TABLE outbox ADD COLUMN owner TEXT NOT NULL DEFAULT '';";

/* Schema 6 on both back-ends: the history's indexes, its first rows (each execution as it
 * stands) and the insert of a trigger (the recorder follows, per back-end). */
#define HISTORY_INDEXES_AND_SEED                                                                   \
    "CREATE INDEX exec_history_exec ON exec_history(job, thing, id);"                              \
    "CREATE INDEX exec_history_thing ON exec_history(thing);"                                      \
    "INSERT INTO exec_history(job, thing, status, details, version, at_ms, recorder)"              \
    " SELECT job, thing, status, details, version, updated_ms, 'schema-6' FROM executions"         \
    " ORDER BY seq;"
#define HISTORY_INSERT_NEW                                                                         \
    " INSERT INTO exec_history(job, thing, status, details, version, at_ms, recorder)"             \
    " VALUES(NEW.job, NEW.thing, NEW.status, NEW.details, NEW.version, NEW.updated_ms,"

/*
 * SQLite, step 5 -> 6: every execution's history. A trigger records each
 * execution as it is created and each change of its status or version (an
 * accepted update, a progress report included), with the writer's label
 * (ota_db_set_label()), in the transaction that made the change: a change
 * rolled back leaves no record, a committed one exactly one. Executions that
 * exist already start their history with their current state.
 */
static const char schema_v6[] =
    "CREATE TABLE exec_history("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " thing TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,"
    " status INTEGER NOT NULL,"
    " details TEXT,"
    " version INTEGER NOT NULL,"
    " at_ms INTEGER NOT NULL,"
    " recorder TEXT NOT NULL);" HISTORY_INDEXES_AND_SEED
    "CREATE TRIGGER exec_history_created AFTER INSERT ON executions BEGIN" HISTORY_INSERT_NEW
    " otter_writer()); END;"
    "CREATE TRIGGER exec_history_changed AFTER UPDATE OF status, version ON executions"
    " WHEN NEW.status <> OLD.status OR NEW.version <> OLD.version BEGIN" HISTORY_INSERT_NEW
    " otter_writer()); END;";

/*
 * Schema 7 on both back-ends (with each one's integer type): presence in its own tables (see
 * ota_store_presence.c), computed when read, instead of the attributes connected, connectedTo
 * and presenceUnknownOn that the service rewrote for every thing at each gap. What those held
 * becomes rows: a broker of connectedTo a known connection, one of presenceUnknownOn unknown
 * (epoch -1) since the attribute's time; a thing with only "connected" is known off (or on, or
 * unknown, as it said) on broker 1. The old attributes are removed; lastSeen stays one.
 */
#define PRESENCE_SCHEMA(INT)                                                                       \
    "CREATE TABLE presence_gaps("                                                                  \
    " broker INTEGER NOT NULL,"                                                                    \
    " epoch " INT " NOT NULL,"                                                                     \
    " at_ms " INT " NOT NULL,"                                                                     \
    " PRIMARY KEY(broker, epoch));"                                                                \
    "CREATE TABLE presence("                                                                       \
    " thing TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,"                              \
    " broker INTEGER NOT NULL,"                                                                    \
    " online INTEGER NOT NULL,"                                                                    \
    " epoch " INT " NOT NULL,"                                                                     \
    " at_ms " INT " NOT NULL,"                                                                     \
    " PRIMARY KEY(thing, broker));" PRESENCE_FROM_ATTR("connectedTo", "1", "0")                    \
        PRESENCE_FROM_ATTR("presenceUnknownOn", "0",                                               \
                           "-1") "INSERT INTO presence(thing, broker, online, epoch, at_ms)"       \
                                 " SELECT a.thing, 1, CASE a.value WHEN 'true' THEN 1 ELSE 0 END," \
                                 " CASE a.value WHEN 'unknown' THEN -1 ELSE 0 END, a.updated_ms "  \
                                 "FROM thing_attrs a"                                              \
                                 " WHERE a.key = 'connected' AND NOT EXISTS (SELECT 1 FROM "       \
                                 "presence p WHERE p.thing = a.thing)"                             \
                                 " ON CONFLICT(thing, broker) DO NOTHING;"                         \
                                 "DELETE FROM thing_attrs WHERE key IN ('connected', "             \
                                 "'connectedTo', 'presenceUnknownOn');"
/* Rows from a legacy set-of-brokers attribute ("1,3"). */
#define PRESENCE_FROM_ATTR(KEY, ONLINE, EPOCH)                                                     \
    "WITH b(k) AS (VALUES (1), (2), (3), (4), (5), (6), (7), (8))"                                 \
    " INSERT INTO presence(thing, broker, online, epoch, at_ms)"                                   \
    " SELECT a.thing, b.k, " ONLINE ", " EPOCH ", a.updated_ms FROM thing_attrs a, b"              \
    " WHERE a.key = '" KEY "' AND instr(',' || a.value || ',', ',' || b.k || ',') > 0"             \
    " ON CONFLICT(thing, broker) DO NOTHING;"

/* SQLite, step 6 -> 7. */
static const char schema_v7[] = PRESENCE_SCHEMA("INTEGER");

/* The history rows kept per execution besides its first, in SQL. */
#define HISTORY_KEPT_TEXT(n) #n
#define HISTORY_KEPT_SQL(n) HISTORY_KEPT_TEXT(n)
#define HISTORY_KEPT HISTORY_KEPT_SQL(OTA_STORE_HISTORY_KEPT)
/* How many history rows an execution has: of the row being updated, of the new history row. */
#define HISTORY_ROWS_OF_EXEC                                                                       \
    "(SELECT COUNT(*) FROM exec_history h"                                                         \
    " WHERE h.job = executions.job AND h.thing = executions.thing)"
#define HISTORY_ROWS_OF_NEW                                                                        \
    "(SELECT COUNT(*) FROM exec_history h WHERE h.job = NEW.job AND h.thing = NEW.thing)"
/* Longer histories cut to the first and the most recent rows, the others counted. */
#define HISTORY_COUNT_CUT                                                                          \
    "UPDATE executions SET history_dropped = " HISTORY_ROWS_OF_EXEC " - " HISTORY_KEPT " - 1"      \
    " WHERE " HISTORY_ROWS_OF_EXEC " > " HISTORY_KEPT " + 1;"
#define HISTORY_CUT                                                                                \
    "DELETE FROM exec_history WHERE id IN (SELECT id FROM (SELECT id,"                             \
    " ROW_NUMBER() OVER (PARTITION BY job, thing ORDER BY id DESC) AS newer,"                      \
    " ROW_NUMBER() OVER (PARTITION BY job, thing ORDER BY id) AS older"                            \
    " FROM exec_history) ranked WHERE newer > " HISTORY_KEPT " AND older > 1);"

/*
 * Schema 8 on both back-ends (with each one's integer type): a bounded history. An execution
 * keeps its first row (its creation) and the most recent OTA_STORE_HISTORY_KEPT; the rows in
 * between are dropped as new ones come, and counted in history_dropped, so that a device
 * updating without end (each update may carry OTA_STORE_DETAILS_MAX bytes) cannot grow the
 * store without end. Longer histories written before are cut the same way here.
 */
#define HISTORY_BOUND_SCHEMA(INT)                                                                  \
    "ALTER TABLE executions ADD COLUMN history_dropped " INT                                       \
    " NOT NULL DEFAULT 0;" HISTORY_COUNT_CUT HISTORY_CUT
/* What the bound does at each new row: at most one row over, the oldest after the first. */
#define HISTORY_BOUND_STEP                                                                         \
    " UPDATE executions SET history_dropped = history_dropped + 1"                                 \
    " WHERE job = NEW.job AND thing = NEW.thing;"                                                  \
    " DELETE FROM exec_history WHERE id = (SELECT id FROM exec_history"                            \
    " WHERE job = NEW.job AND thing = NEW.thing ORDER BY id LIMIT 1 OFFSET 1);"
#define HISTORY_OVER " " HISTORY_ROWS_OF_NEW " > " HISTORY_KEPT " + 1"

/* SQLite, step 7 -> 8. */
static const char schema_v8[] =
    HISTORY_BOUND_SCHEMA("INTEGER") "CREATE TRIGGER exec_history_bound AFTER INSERT ON exec_history"
                                    " WHEN" HISTORY_OVER " BEGIN" HISTORY_BOUND_STEP " END;";

/** SQLite migration steps: migrations[v] turns schema version v into v + 1. */
static const char *const sqlite_migrations[STORE_SCHEMA_VERSION] = {
    schema_v1, schema_v2, schema_v3, schema_v4, schema_v5, schema_v6, schema_v7, schema_v8};

/*
 * PostgreSQL, version 3 in one step: the tables of the SQLite schema with
 * 64-bit integers, identity keys, firmware bytes in file_chunks (so that
 * every instance can serve every file), and instr() as SQLite has it.
 */
static const char pg_schema_v3[] =
    "CREATE FUNCTION instr(haystack TEXT, needle TEXT) RETURNS INTEGER"
    " AS 'SELECT strpos(haystack, needle)' LANGUAGE SQL IMMUTABLE STRICT;"
    "CREATE TABLE things("
    " name TEXT PRIMARY KEY,"
    " created_ms BIGINT NOT NULL,"
    " change_seq BIGINT NOT NULL DEFAULT 0,"
    " handled_seq BIGINT NOT NULL DEFAULT 0,"
    " announced_job TEXT NOT NULL DEFAULT '',"
    " announced_list BIGINT);"
    "CREATE INDEX things_pending ON things(name) WHERE change_seq <> handled_seq;"
    "CREATE TABLE group_members("
    " grp TEXT NOT NULL,"
    " thing TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,"
    " PRIMARY KEY(grp, thing));"
    "CREATE INDEX group_members_thing ON group_members(thing);"
    "CREATE TABLE files("
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " path TEXT NOT NULL,"
    " size BIGINT NOT NULL,"
    " created_ms BIGINT NOT NULL);"
    "CREATE TABLE file_chunks("
    " file_id BIGINT NOT NULL REFERENCES files(id) ON DELETE CASCADE,"
    " n INTEGER NOT NULL,"
    " data BYTEA NOT NULL,"
    " PRIMARY KEY(file_id, n));"
    "CREATE TABLE streams("
    " id TEXT PRIMARY KEY,"
    " version BIGINT NOT NULL,"
    " description TEXT NOT NULL,"
    " created_ms BIGINT NOT NULL);"
    "CREATE TABLE stream_files("
    " stream TEXT NOT NULL REFERENCES streams(id) ON DELETE CASCADE,"
    " file_id INTEGER NOT NULL CHECK(file_id BETWEEN 0 AND 255),"
    " path TEXT NOT NULL,"
    " size BIGINT NOT NULL CHECK(size > 0),"
    " PRIMARY KEY(stream, file_id));"
    "CREATE TABLE jobs("
    " seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " document TEXT NOT NULL,"
    " stream TEXT REFERENCES streams(id),"
    " status INTEGER NOT NULL,"
    " timeout_min BIGINT NOT NULL,"
    " rollout_per_min BIGINT NOT NULL,"
    " abort_pct BIGINT NOT NULL,"
    " abort_min BIGINT NOT NULL,"
    " created_ms BIGINT NOT NULL,"
    " updated_ms BIGINT NOT NULL,"
    " completed_ms BIGINT NOT NULL DEFAULT 0,"
    " target_version TEXT NOT NULL DEFAULT '',"
    " device_types TEXT NOT NULL DEFAULT '',"
    " reason_code TEXT NOT NULL DEFAULT '',"
    " reason TEXT NOT NULL DEFAULT '',"
    " abort_rules TEXT NOT NULL DEFAULT '',"
    " controlled INTEGER NOT NULL DEFAULT 0,"
    " start_ms BIGINT NOT NULL DEFAULT 0,"
    " win_start BIGINT NOT NULL DEFAULT 0,"
    " win_end BIGINT NOT NULL DEFAULT 0,"
    " phases TEXT NOT NULL DEFAULT '',"
    " phase_success BIGINT NOT NULL DEFAULT 0,"
    " exp_base BIGINT NOT NULL DEFAULT 0,"
    " exp_factor BIGINT NOT NULL DEFAULT 0,"
    " exp_every BIGINT NOT NULL DEFAULT 0,"
    " exp_on_succ BIGINT NOT NULL DEFAULT 0,"
    " rel_minute BIGINT NOT NULL DEFAULT -1,"
    " rel_count BIGINT NOT NULL DEFAULT 0,"
    " continuous INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX jobs_stream ON jobs(stream);"
    "CREATE TABLE executions("
    " seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " thing TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,"
    " status INTEGER NOT NULL,"
    " details TEXT,"
    " version BIGINT NOT NULL,"
    " exec_number BIGINT NOT NULL,"
    " queued_ms BIGINT NOT NULL,"
    " started_ms BIGINT NOT NULL DEFAULT 0,"
    " updated_ms BIGINT NOT NULL,"
    " deadline_ms BIGINT NOT NULL DEFAULT 0,"
    " released INTEGER NOT NULL,"
    " UNIQUE(job, thing));"
    "CREATE INDEX exec_thing ON executions(thing, status);"
    "CREATE INDEX exec_deadline ON executions(deadline_ms) WHERE status = 1 AND deadline_ms > 0;"
    "CREATE INDEX exec_unreleased ON executions(job, seq) WHERE released = 0;"
    "CREATE TABLE deliveries("
    " session TEXT NOT NULL,"
    " mid INTEGER NOT NULL,"
    " digest BIGINT NOT NULL,"
    " PRIMARY KEY(session, mid));"
    "CREATE TABLE outbox("
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " topic TEXT NOT NULL,"
    " payload TEXT NOT NULL,"
    " created_ms BIGINT NOT NULL);"
    "CREATE TABLE thing_attrs("
    " thing TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,"
    " key TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " updated_ms BIGINT NOT NULL,"
    " PRIMARY KEY(thing, key));"
    "CREATE TABLE groups("
    " name TEXT PRIMARY KEY,"
    " query TEXT NOT NULL DEFAULT '',"
    " created_ms BIGINT NOT NULL);"
    "CREATE TABLE job_targets("
    " job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " kind INTEGER NOT NULL," /* 0 thing, 1 group */
    " name TEXT NOT NULL,"
    " PRIMARY KEY(job, kind, name));"
    "CREATE INDEX job_targets_name ON job_targets(kind, name);";

/** A migration step: from version `from` to `to`. */
typedef struct {
    int from, to;
    const char *sql;
} step_t;

/* PostgreSQL, step 3 -> 4: as SQLite's. */
static const char pg_schema_v4[] =
    "ALTER TABLE things ADD COLUMN notify_lease_ms BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE things ADD COLUMN notify_owner BIGINT NOT NULL DEFAULT 0;";

/* PostgreSQL, step 4 -> 5: as SQLite's. */
static const char pg_schema_v5[] = "CREATE TABLE instances("
                                   " name TEXT PRIMARY KEY,"
                                   " serves_jobs BIGINT NOT NULL,"
                                   " serves_streams BIGINT NOT NULL,"
                                   " beat_ms BIGINT NOT NULL);"
                                   "ALTER TABLE outbox ADD COLUMN owner TEXT NOT NULL DEFAULT '';";

/* PostgreSQL, step 5 -> 6: as SQLite's; the trigger reads the transaction's otter.writer. */
static const char pg_schema_v6[] =
    "CREATE TABLE exec_history("
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " thing TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,"
    " status INTEGER NOT NULL,"
    " details TEXT,"
    " version BIGINT NOT NULL,"
    " at_ms BIGINT NOT NULL,"
    " recorder TEXT NOT NULL);" HISTORY_INDEXES_AND_SEED
    "CREATE FUNCTION otter_exec_history() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF TG_OP = 'INSERT' OR NEW.status <> OLD.status OR NEW.version <> OLD.version "
    "THEN" HISTORY_INSERT_NEW " COALESCE(current_setting('otter.writer', true), ''));"
    " END IF; RETURN NULL; END $$;"
    "CREATE TRIGGER exec_history AFTER INSERT OR UPDATE OF status, version ON executions"
    " FOR EACH ROW EXECUTE FUNCTION otter_exec_history();";

/* PostgreSQL, step 6 -> 7: as SQLite's. */
static const char pg_schema_v7[] = PRESENCE_SCHEMA("BIGINT");

/* PostgreSQL, step 7 -> 8: as SQLite's. */
static const char pg_schema_v8[] =
    HISTORY_BOUND_SCHEMA("BIGINT") "CREATE FUNCTION otter_exec_history_bound() RETURNS trigger"
                                   " LANGUAGE plpgsql AS $$ BEGIN IF" HISTORY_OVER
                                   " THEN" HISTORY_BOUND_STEP " END IF; RETURN NULL; END $$;"
                                   "CREATE TRIGGER exec_history_bound AFTER INSERT ON exec_history"
                                   " FOR EACH ROW EXECUTE FUNCTION otter_exec_history_bound();";

static const step_t pg_migrations[] = {{0, 3, pg_schema_v3}, {3, 4, pg_schema_v4},
                                       {4, 5, pg_schema_v5}, {5, 6, pg_schema_v6},
                                       {6, 7, pg_schema_v7}, {7, 8, pg_schema_v8}};

/* ------------------------------------------------------------------------ */
/* Migrating                                                                */
/* ------------------------------------------------------------------------ */

/** Runs the steps that bring the schema to STORE_SCHEMA_VERSION, in one write transaction. */
static int migrate(ota_store_t *s)
{
    int rc = begin(s);
    if (rc)
        return rc;
    rc = exec_sql(s, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)");
    int64_t v = 0;
    if (!rc)
        rc = query_int(s, "SELECT COALESCE(MAX(version), 0) FROM schema_version", NULL, NULL, &v);
    if (!rc && v > STORE_SCHEMA_VERSION)
        rc =
            fail(s, OTA_STORE_INVALID, "database schema version %lld is newer than this build's %d",
                 (long long)v, STORE_SCHEMA_VERSION);
    int pg = ota_db_kind(s->db) == OTA_DB_POSTGRESQL;
    while (!rc && v < STORE_SCHEMA_VERSION) {
        if (!pg) {
            rc = exec_sql(s, sqlite_migrations[v]);
            v++;
            continue;
        }
        const step_t *st = NULL;
        for (size_t i = 0; i < sizeof pg_migrations / sizeof pg_migrations[0]; i++)
            if (pg_migrations[i].from == v)
                st = &pg_migrations[i];
        if (!st)
            rc = fail(s, OTA_STORE_INVALID, "no PostgreSQL migration from schema version %lld",
                      (long long)v);
        else if (!(rc = exec_sql(s, st->sql)))
            v = st->to;
    }
    if (!rc) {
        char sql[96];
        snprintf(sql, sizeof sql,
                 "DELETE FROM schema_version; INSERT INTO schema_version VALUES(%d)",
                 STORE_SCHEMA_VERSION);
        rc = exec_sql(s, sql);
    }
    return finish(s, rc);
}

/* ------------------------------------------------------------------------ */
/* Opening                                                                  */
/* ------------------------------------------------------------------------ */

static int mkdir_p(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

/** A handle's notify-next claim id: random, never 0 (no claim). */
static int64_t claim_id(void)
{
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&v, sizeof v, 1, f) != 1)
        v = (uint64_t)ota_store_now_ms() * 2654435761u ^ (uint64_t)getpid();
    if (f)
        fclose(f);
    v &= INT64_MAX;
    return v ? (int64_t)v : 1;
}

int ota_store_location_is_postgresql(const char *location)
{
    return location && (strncmp(location, "postgresql://", 13) == 0 ||
                        strncmp(location, "postgres://", 11) == 0);
}

int ota_store_open(const char *data_dir, ota_store_t **out)
{
    const char *env = getenv("OTTER_STORE");
    return ota_store_open_at(data_dir, env && *env ? env : NULL, out);
}

int ota_store_open_at(const char *data_dir, const char *location, ota_store_t **out)
{
    if (out)
        *out = NULL;
    if (data_dir == NULL || out == NULL || data_dir[0] == '\0')
        return OTA_STORE_INVALID;
    if (location && !ota_store_location_is_postgresql(location)) {
        /* not echoed: it may hold a password */
        fprintf(stderr, "otter store: unknown store location; give postgresql://... or nothing "
                        "(SQLite in the data folder)\n");
        return OTA_STORE_INVALID;
    }
    size_t dlen = strlen(data_dir);
    char *files = malloc(dlen + 8);
    char *dbpath = malloc(dlen + 12);
    ota_store_t *s = calloc(1, sizeof *s);
    if (!files || !dbpath || !s || !(s->data_dir = malloc(dlen + 1))) {
        free(files);
        free(dbpath);
        free(s);
        return OTA_STORE_ERROR;
    }
    memcpy(s->data_dir, data_dir, dlen + 1);
    s->data_version = -1;
    s->claim_id = claim_id();
    snprintf(files, dlen + 8, "%s/files", data_dir);
    snprintf(dbpath, dlen + 12, "%s/otter.db", data_dir);
    char err[600];
    int rc = OTA_STORE_OK;
    if (mkdir_p(data_dir) != 0 || mkdir_p(files) != 0) {
        fprintf(stderr, "otter store: cannot create %s: %s\n", files, strerror(errno));
        rc = OTA_STORE_ERROR;
    } else if ((location ? ota_db_open_pg(location, &s->db, err, sizeof err)
                         : ota_db_open_sqlite(dbpath, STORE_BUSY_TIMEOUT_MS, &s->db, err,
                                              sizeof err)) != 0) {
        fprintf(stderr, "otter store: %s\n", err);
        rc = OTA_STORE_ERROR;
    } else if ((rc = migrate(s)) != OTA_STORE_OK) {
        fprintf(stderr, "otter store: %s: %s\n", location ? "PostgreSQL" : dbpath, s->err);
    }
    free(files);
    free(dbpath);
    if (rc) {
        ota_store_close(s);
        return rc;
    }
    ok(s);
    *out = s;
    return OTA_STORE_OK;
}

void ota_store_close(ota_store_t *store)
{
    if (store == NULL)
        return;
    ota_db_close(store->db);
    free(store->data_dir);
    free(store);
}

const char *ota_store_data_dir(const ota_store_t *store)
{
    return store ? store->data_dir : NULL;
}

int ota_store_is_postgresql(const ota_store_t *store)
{
    return store && ota_db_kind(store->db) == OTA_DB_POSTGRESQL;
}

int ota_store_schema_version(ota_store_t *store, int *version)
{
    if (!store || !version)
        return OTA_STORE_INVALID;
    int64_t v = 0;
    int rc = query_int(store, "SELECT MAX(version) FROM schema_version", NULL, NULL, &v);
    *version = (int)v;
    if (!rc)
        ok(store);
    return rc;
}

int ota_store_schema_check(ota_store_t *store)
{
    int v = 0;
    int rc = ota_store_schema_version(store, &v);
    if (rc)
        return rc;
    if (v > STORE_SCHEMA_VERSION)
        return fail(store, OTA_STORE_CONFLICT,
                    "the database's schema is now version %d, newer than this program's %d: a "
                    "newer otter migrated it; upgrade this program before starting it again",
                    v, STORE_SCHEMA_VERSION);
    return OTA_STORE_OK;
}

int ota_store_poll_changes(ota_store_t *store, int *changed)
{
    if (!store || !changed)
        return OTA_STORE_INVALID;
    int64_t v = 0;
    if (ota_db_data_version(store->db, &v) != 0)
        return fail_db(store, "poll changes");
    *changed = store->data_version != v;
    store->data_version = v;
    ok(store);
    return OTA_STORE_OK;
}
