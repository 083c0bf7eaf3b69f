/*
 * otter service: the store. Things, groups, files, streams, jobs and job
 * executions, kept in one SQLite database plus a folder of imported files.
 *
 * Layout of a data directory:
 *   <data_dir>/otter.db   SQLite database (WAL journal, foreign keys on,
 *                         a schema_version table for migrations)
 *   <data_dir>/files/     imported files, one per import, never modified
 *
 * Several processes (the CLI, one or more service daemons) may open the same
 * data directory at once; every write is one short IMMEDIATE transaction and
 * waits (busy timeout) for the others.
 *
 * Host code: uses the heap. A store handle is used by one thread at a time.
 *
 * Conventions:
 *   - Every function returns an ota_store_rc_t: OTA_STORE_OK (0) on success,
 *     a negative code on failure; ota_store_errmsg() gives a readable text of
 *     the last failure on that handle.
 *   - Times are milliseconds since the Unix epoch and come in as a parameter
 *     (now_ms), so tests can drive the clock. ota_store_now_ms() reads the
 *     wall clock for callers that want it.
 *   - Output structures are filled by the store; those with heap fields
 *     (job documents, status details, stream files) have a _free function
 *     that releases them. On failure an output structure is left zeroed, so
 *     calling its _free function is always safe.
 *   - Listing functions call a callback once per row. The row passed to the
 *     callback is valid only during the call. A nonzero return from the
 *     callback stops the listing; the listing function still returns
 *     OTA_STORE_OK.
 */
#ifndef OTA_STORE_H
#define OTA_STORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An open data directory. Opaque; see ota_store_open(). */
typedef struct ota_store ota_store_t;

/** Result of every store call. 0 = success, < 0 = failure. */
typedef enum ota_store_rc {
    OTA_STORE_OK = 0,
    OTA_STORE_NOT_FOUND = -1, /**< no such thing, group, stream, job, execution or file */
    OTA_STORE_EXISTS = -2,    /**< the id is already taken (or the membership exists) */
    OTA_STORE_CONFLICT = -3,  /**< not allowed in the current state (e.g. cancel a finished job) */
    OTA_STORE_INVALID = -4,   /**< a bad argument: name syntax, length, NULL, malformed JSON */
    OTA_STORE_ERROR = -5,     /**< SQLite or file system failure; see ota_store_errmsg() */
    OTA_STORE_VERSION_MISMATCH = -6, /**< execution update: expectedVersion differs */
    OTA_STORE_TERMINAL = -7,         /**< execution update: the execution is already terminal */
    OTA_STORE_BAD_TRANSITION = -8,   /**< execution update: status change not allowed */
    OTA_STORE_DUPLICATE = -9,        /**< execution update: this delivery was applied already */
} ota_store_rc_t;

/** Longest thing name (characters [A-Za-z0-9:_-]). */
#define OTA_STORE_THING_NAME_MAX 128
/** Longest group name (characters [A-Za-z0-9:_-]). */
#define OTA_STORE_GROUP_NAME_MAX 128
/** Longest job id (characters [A-Za-z0-9_-]). */
#define OTA_STORE_JOB_ID_MAX 64
/** Longest stream id (characters [A-Za-z0-9_-]). */
#define OTA_STORE_STREAM_ID_MAX 128
/** Largest step timeout of an execution update, in minutes (7 days, as AWS). */
#define OTA_STORE_STEP_TIMEOUT_MAX 10080
/** Largest stream file id. */
#define OTA_STORE_FILE_ID_MAX 255
/** Longest thing attribute key (characters [A-Za-z0-9_]). */
#define OTA_STORE_ATTR_KEY_MAX 64
/** Longest thing attribute value (printable ASCII, no '"' or '\\'). */
#define OTA_STORE_ATTR_VALUE_MAX 128
/** Attributes a thing may have, besides the four presence attributes the service writes. */
#define OTA_STORE_ATTRS_MAX 32
/** Longest version text, "X.Y.Z" (see ota_store_valid_version()). */
#define OTA_STORE_VERSION_MAX 15
/** Longest device type name (characters [A-Za-z0-9_.-]). */
#define OTA_STORE_DEVICE_TYPE_MAX 64
/** Longest list of device types of a job ("a,b,c"). */
#define OTA_STORE_DEVICE_TYPES_MAX 255
/** The thing attribute holding its device type (set by the operator). */
#define OTA_STORE_ATTR_DEVICE_TYPE "deviceType"
/** Attribute: when 'otter thing rotate' last gave the thing new credentials (ms since the
 *  Unix epoch, decimal); written by the CLI only. */
#define OTA_STORE_ATTR_CREDENTIALS_ROTATED "credentialsRotated"
/** The thing attribute holding the version it runs (learned from the device). */
#define OTA_STORE_ATTR_FIRMWARE_VERSION "firmwareVersion"
/** Presence attribute (computed, see ota_store_presence_get()): "true", "unknown" or "false". */
#define OTA_STORE_ATTR_CONNECTED "connected"
/** Presence attribute (computed): the brokers a thing is known connected to ("1,3"). */
#define OTA_STORE_ATTR_CONNECTED_TO "connectedTo"
/** Presence attribute (computed): the brokers where a thing's presence is unknown ("2,3"). */
#define OTA_STORE_ATTR_UNKNOWN_ON "presenceUnknownOn"
/** Most brokers presence is kept for, numbered 1 to this. */
#define OTA_STORE_PRESENCE_BROKERS_MAX 8
/** Gaps kept per broker (older ones are forgotten; see ota_store_presence_gap()). */
#define OTA_STORE_PRESENCE_GAPS_KEPT 1000
/**
 * Largest MQTT packet the broker takes: the `max_packet_size` that `otter broker init` writes
 * (AWS IoT's 128 KiB payload limit plus 4 KiB for the topic and headers). Mosquitto ends the
 * connection of a client that sends a larger one, so the service never publishes one.
 */
#define OTA_STORE_MQTT_PACKET_MAX (128u * 1024u + 4096u)
/** Largest job document, in bytes (AWS IoT's limit, 32 KiB). */
#define OTA_STORE_JOB_DOCUMENT_MAX 32768u
/**
 * Largest statusDetails of an execution: bytes of their compact JSON text, as stored and sent
 * (AWS allows 10 keys of 128 characters with values of 1024; 16 KiB holds them all in ASCII).
 * With the largest job document, an answer stays below half the broker's packet limit.
 */
#define OTA_STORE_DETAILS_MAX 16384u
/**
 * History rows kept per execution besides the first (its creation): the most recent ones. Older
 * rows are dropped as new ones come, and counted (ota_store_exec_event_t.dropped_before).
 */
#define OTA_STORE_HISTORY_KEPT 100

/**
 * Name of a return code, e.g. "OTA_STORE_NOT_FOUND".
 * @param rc any value; unknown values give "OTA_STORE_UNKNOWN".
 * @return a static string.
 */
const char *ota_store_rc_name(int rc);

/**
 * Text of the last failure on this handle (e.g. "thing 'x' not found").
 * @param store an open store, or NULL (gives a text about the NULL handle).
 * @return a string owned by the store, valid until its next call; "" when the
 *         last call succeeded.
 */
const char *ota_store_errmsg(const ota_store_t *store);

/**
 * Statements this handle ran on its database so far (ota_db_statements()):
 * what a read cost in round trips, for tests and benchmarks.
 * @param store an open store.
 * @return the count, or 0 for NULL.
 */
int64_t ota_store_statements(const ota_store_t *store);

/**
 * Wall-clock time in milliseconds since the Unix epoch (CLOCK_REALTIME).
 * For callers that have no clock of their own. The store itself reads it
 * only to record when a file was imported (ota_store_file_import()).
 */
int64_t ota_store_now_ms(void);

/* ------------------------------------------------------------------------ */
/* Opening                                                                  */
/* ------------------------------------------------------------------------ */

/**
 * Opens (creating when missing) a data directory: the directory itself,
 * data_dir/files/ and the database, and creates or migrates the schema.
 * The database is data_dir/otter.db (SQLite: WAL journaling, a busy timeout
 * of several seconds, foreign keys), or the PostgreSQL database named by the
 * environment variable OTTER_STORE when it is set (see ota_store_open_at()).
 * Safe to call from several processes at once.
 *
 * @param data_dir path of the data directory; copied.
 * @param out      receives the handle (NULL on failure); close it with
 *                 ota_store_close().
 * @return OTA_STORE_OK; OTA_STORE_INVALID (NULL argument, or the database was
 *         written by a newer otter with an unknown schema version);
 *         OTA_STORE_ERROR (directory or database cannot be created/opened).
 *         On failure there is no handle to ask ota_store_errmsg(), so the
 *         reason is written to stderr ("otter store: <path>: <reason>").
 */
int ota_store_open(const char *data_dir, ota_store_t **out);

/**
 * Opens a store on a given database.
 *
 * @param data_dir data directory (created when missing): the SQLite database
 *                 when location is NULL, and files/, where imported files
 *                 are kept (with PostgreSQL: a cache of the files' bytes,
 *                 which are in the database, filled on first use).
 * @param location NULL for SQLite in data_dir, or a PostgreSQL URL
 *                 (`postgresql://user@host:port/db?...` or `postgres://`);
 *                 anything else is refused with OTA_STORE_INVALID.
 * @param out      receives the handle (NULL on failure).
 * @return as ota_store_open().
 */
int ota_store_open_at(const char *data_dir, const char *location, ota_store_t **out);

/**
 * Whether a store location names PostgreSQL.
 * @param location a `--store` value, or NULL.
 * @return 1 for `postgresql://...` and `postgres://...`, else 0.
 */
int ota_store_location_is_postgresql(const char *location);

/**
 * Whether a handle works on PostgreSQL.
 * @param store open store, or NULL (0).
 * @return 1 for PostgreSQL, 0 for SQLite.
 */
int ota_store_is_postgresql(const ota_store_t *store);

/**
 * Closes a handle and frees it.
 * @param store a handle from ota_store_open(), or NULL (no-op).
 */
void ota_store_close(ota_store_t *store);

/**
 * The data directory this handle was opened on.
 * @return a string owned by the store, valid until ota_store_close().
 */
const char *ota_store_data_dir(const ota_store_t *store);

/**
 * Schema version of the open database (the version this build writes).
 * @param store   open store.
 * @param version receives the version stored in the schema_version table.
 * @return OTA_STORE_OK or OTA_STORE_ERROR.
 */
int ota_store_schema_version(ota_store_t *store, int *version);

/**
 * Checks that the database's schema is still the one this build writes: a
 * newer otter (an upgraded instance, CLI or console on the same database)
 * may have migrated it while this process ran, and from then on this
 * process would write what the newer code no longer reads. Long-running
 * programs call it now and then and stop when it fails.
 * @param store open store.
 * @return OTA_STORE_OK; OTA_STORE_CONFLICT (the schema is newer: the message
 *         names both versions and what to do); OTA_STORE_ERROR.
 */
int ota_store_schema_check(ota_store_t *store);

/**
 * Cheap "did another connection write?" check (SQLite: PRAGMA data_version;
 * PostgreSQL: a counter every write transaction increments).
 * The first call on a handle reports a change. Writes made through this same
 * handle are not reported (the caller knows about them).
 *
 * @param store   open store.
 * @param changed receives 1 if another connection (e.g. the CLI or another
 *                daemon) committed since the previous call, else 0.
 * @return OTA_STORE_OK or OTA_STORE_ERROR.
 */
int ota_store_poll_changes(ota_store_t *store, int *changed);

/* ------------------------------------------------------------------------ */
/* Name checks                                                              */
/* ------------------------------------------------------------------------ */

/** 1 if name is a valid thing or group name (1..128 of [A-Za-z0-9:_-]), else 0. */
int ota_store_valid_thing_name(const char *name);
/** 1 if id is a valid job id (1..64 of [A-Za-z0-9_-]), else 0. */
int ota_store_valid_job_id(const char *id);
/** 1 if a new thing, group or job may take name: it does not start with '-' (every
 *  command naming it would need `--`), else 0. Names stored before stay usable. */
int ota_store_new_name_ok(const char *name);
/** 1 if id is a valid stream id (1..128 of [A-Za-z0-9_-]), else 0. */
int ota_store_valid_stream_id(const char *id);

/* ------------------------------------------------------------------------ */
/* Things and groups                                                        */
/* ------------------------------------------------------------------------ */

/** A thing (device). */
typedef struct ota_store_thing {
    char name[OTA_STORE_THING_NAME_MAX + 1];
    int64_t created_ms; /**< when it was created */
} ota_store_thing_t;

/** Callback for ota_store_thing_list(); return nonzero to stop. */
typedef int (*ota_store_thing_cb)(void *ctx, const ota_store_thing_t *thing);

/**
 * Creates a thing.
 * @param name   1..128 characters of [A-Za-z0-9:_-].
 * @param now_ms creation time.
 * @return OTA_STORE_OK; OTA_STORE_INVALID (bad name); OTA_STORE_EXISTS;
 *         OTA_STORE_ERROR.
 */
int ota_store_thing_create(ota_store_t *store, const char *name, int64_t now_ms);

/**
 * Reads a thing.
 * @param out receives the thing.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_thing_get(ota_store_t *store, const char *name, ota_store_thing_t *out);

/**
 * Lists every thing, by name.
 * @return OTA_STORE_OK; OTA_STORE_INVALID (NULL cb); OTA_STORE_ERROR.
 */
int ota_store_thing_list(ota_store_t *store, ota_store_thing_cb cb, void *ctx);

/**
 * Deletes a thing, its group memberships and its finished executions.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND; OTA_STORE_CONFLICT (the thing
 *         still has a QUEUED or IN_PROGRESS execution: cancel that job
 *         first); OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_thing_delete(ota_store_t *store, const char *name);

/* Groups (ota_store_groups.c). A static group lists its members; a dynamic
 * group is a query on thing attributes and its members are the things that
 * match it now. A thing may be in any number of groups. */

/** Longest dynamic group query. */
#define OTA_STORE_QUERY_MAX 512
/** Most terms of a dynamic group query. */
#define OTA_STORE_QUERY_TERMS_MAX 8

/** A group as read back. */
typedef struct ota_store_group {
    char name[OTA_STORE_GROUP_NAME_MAX + 1];
    char query[OTA_STORE_QUERY_MAX + 1]; /**< "" for a static group */
    int64_t created_ms;
    size_t n_members; /**< members now (a dynamic group's: the things matching) */
} ota_store_group_t;

/**
 * Checks a dynamic group query: 1..8 terms separated by commas, each
 * KEY OP VALUE with KEY an attribute key, OP one of = != < <= > >=, VALUE an
 * attribute value without commas; the ordering operators need a version
 * X.Y.Z as VALUE and compare versions. A thing without the attribute
 * matches only a != term. Example: "deviceType=sim,firmwareVersion<1.2.0". The presence
 * attributes (connected, connectedTo, presenceUnknownOn, lastSeen) are refused: presence is
 * not always known, and no job's targets may follow it.
 * @return 1 if valid, else 0.
 */
int ota_store_valid_query(const char *query);

/**
 * Creates a group.
 * @param query NULL or "" for a static group, else a dynamic group's query.
 * @return OTA_STORE_OK; OTA_STORE_EXISTS; OTA_STORE_INVALID (bad name or
 *         query); OTA_STORE_ERROR.
 */
int ota_store_group_create(ota_store_t *store, const char *name, const char *query, int64_t now_ms);

/**
 * Reads a group with its member count.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_group_get(ota_store_t *store, const char *name, ota_store_group_t *out);

/**
 * Deletes a group (its memberships; the things stay).
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND; OTA_STORE_CONFLICT (an
 *         IN_PROGRESS job targets it: cancel or finish that job first);
 *         OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_group_delete(ota_store_t *store, const char *name);

/**
 * Adds a thing to a static group, creating the group if it does not exist.
 * IN_PROGRESS continuous jobs that target the group give the thing an
 * execution.
 * @param group 1..128 characters of [A-Za-z0-9:_-].
 * @param thing an existing thing.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND (no such thing); OTA_STORE_EXISTS
 *         (already a member); OTA_STORE_INVALID (bad name, or the group is
 *         dynamic); OTA_STORE_ERROR.
 */
int ota_store_group_add(ota_store_t *store, const char *group, const char *thing);

/**
 * Removes a thing from a static group. Its QUEUED executions of continuous
 * jobs that no longer target it become REMOVED.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND (not a member); OTA_STORE_INVALID
 *         (bad name, or the group is dynamic); OTA_STORE_ERROR.
 */
int ota_store_group_remove(ota_store_t *store, const char *group, const char *thing);

/**
 * Lists the members of a group, by thing name (a dynamic group: the things
 * that match its query now).
 * @return OTA_STORE_OK (also for a group without members); OTA_STORE_NOT_FOUND
 *         (no such group); OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_group_members(ota_store_t *store, const char *group, ota_store_thing_cb cb,
                            void *ctx);

/** Callback for ota_store_group_list(); return nonzero to stop. */
typedef int (*ota_store_group_cb)(void *ctx, const ota_store_group_t *group);

/**
 * Lists every group by name, with member counts.
 * @return OTA_STORE_OK; OTA_STORE_INVALID (NULL cb); OTA_STORE_ERROR.
 */
int ota_store_group_list(ota_store_t *store, ota_store_group_cb cb, void *ctx);

/**
 * Lists the groups a thing is in now (static and dynamic), by name.
 * @return OTA_STORE_OK; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_thing_groups(ota_store_t *store, const char *thing, ota_store_group_cb cb, void *ctx);

/* ------------------------------------------------------------------------ */
/* Thing attributes (ota_store_fleet.c)                                     */
/* ------------------------------------------------------------------------ */

/** 1 if key is a valid attribute key (1..64 of [A-Za-z0-9_]), else 0. */
int ota_store_valid_attr_key(const char *key);
/** 1 if value is a valid attribute value (1..128 printable ASCII, no '"' or '\\'). */
int ota_store_valid_attr_value(const char *value);
/** 1 if v is a version "X.Y.Z": three decimal numbers without leading zeros,
 *  X and Y 0..255, Z 0..65535 (the image header's range), else 0. */
int ota_store_valid_version(const char *v);
/** 1 if name is a valid device type (1..64 of [A-Za-z0-9_.-]), else 0. */
int ota_store_valid_device_type(const char *name);
/** 1 if list is 1..16 distinct device types separated by single commas, at
 *  most OTA_STORE_DEVICE_TYPES_MAX characters, else 0. */
int ota_store_valid_device_types(const char *list);

/**
 * The attributes the service keeps itself, which operators cannot set or
 * unset: presence (connected, connectedTo, presenceUnknownOn, lastSeen),
 * disabled (otter thing disable/enable), revoked (otter thing revoke) and
 * credentialsRotated (otter thing rotate).
 * @return NULL for any other key, else what keeps the attribute and the
 *         command that changes it ("the broker's word; use 'otter thing
 *         disable' or ..."), for error messages.
 */
const char *ota_store_attr_owner(const char *key);

/**
 * Sets or removes a thing's attribute, as an operator. deviceType must be a
 * valid device type and firmwareVersion a valid version. A change re-checks
 * the thing's QUEUED executions: those it no longer needs become SKIPPED. The
 * service's own attributes (ota_store_attr_owner()) are refused
 * (OTA_STORE_INVALID, the message says what changes them).
 * @param value  the value, or NULL to remove the attribute.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND (no such thing, or removing an
 *         unset attribute); OTA_STORE_INVALID (bad key or value, or more than
 *         OTA_STORE_ATTRS_MAX attributes); OTA_STORE_ERROR.
 */
int ota_store_thing_attr_set(ota_store_t *store, const char *thing, const char *key,
                             const char *value, int64_t now_ms);

/**
 * ota_store_thing_attr_set() for the service and the commands that own an
 * attribute (lastSeen, disabled, revoked, credentialsRotated): the same checks except that those
 * keys are let through; the computed presence attributes are still refused.
 */
int ota_store_thing_service_attr_set(ota_store_t *store, const char *thing, const char *key,
                                     const char *value, int64_t now_ms);

/**
 * Reads one attribute of a thing; connected, connectedTo and
 * presenceUnknownOn are computed (ota_store_presence_get()), unset when empty.
 * @param out receives the value (at most OTA_STORE_ATTR_VALUE_MAX + 1 bytes used).
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND (unset); OTA_STORE_INVALID;
 *         OTA_STORE_ERROR.
 */
int ota_store_thing_attr_get(ota_store_t *store, const char *thing, const char *key, char *out,
                             size_t cap);

/** Callback for ota_store_thing_attr_list(); return nonzero to stop. */
typedef int (*ota_store_attr_cb)(void *ctx, const char *key, const char *value, int64_t updated_ms);

/** An attribute of a thing, as ota_store_thing_list_attrs() gives it. */
typedef struct ota_store_attr {
    const char *key;    /**< its key */
    const char *value;  /**< its value */
    int64_t updated_ms; /**< as ota_store_thing_attr_list() gives it */
} ota_store_attr_t;

/**
 * Callback for ota_store_thing_list_attrs(): a thing and its n attributes in
 * the order and with the values ota_store_thing_attr_list() gives. thing and
 * attrs are valid during the call only. Return nonzero to stop.
 */
typedef int (*ota_store_thing_attrs_cb)(void *ctx, const ota_store_thing_t *thing,
                                        const ota_store_attr_t *attrs, size_t n);

/**
 * Lists things as ota_store_thing_list() does (every thing, by name), or the
 * one named, each with its attributes, computed presence ones among them: one
 * statement, whatever the number of things. The callback may use the store.
 * @param thing  a thing's name, or NULL for every thing (an unknown name lists
 *               nothing).
 * @return OTA_STORE_OK; OTA_STORE_INVALID (NULL cb, bad name); OTA_STORE_ERROR.
 */
int ota_store_thing_list_attrs(ota_store_t *store, const char *thing, ota_store_thing_attrs_cb cb,
                               void *ctx);

/**
 * An attribute's value among those ota_store_thing_list_attrs() gave.
 * @return the value, or NULL when key is not among them.
 */
const char *ota_store_attr_find(const ota_store_attr_t *attrs, size_t n, const char *key);

/**
 * Lists the members of a group as ota_store_group_members() does, each with
 * its attributes as ota_store_thing_list_attrs() gives them: two statements
 * whatever the number of things (the group's, then its members'; a dynamic
 * group's query is matched against every thing's listed attributes). The
 * callback may use the store.
 * @return OTA_STORE_OK (also for a group without members); OTA_STORE_NOT_FOUND
 *         (no such group); OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_group_members_attrs(ota_store_t *store, const char *group,
                                  ota_store_thing_attrs_cb cb, void *ctx);

/**
 * Lists a thing's attributes by key, the computed presence attributes
 * among them (connected and connectedTo with the time of the last notice or
 * gap, presenceUnknownOn with the time it became unknown).
 * @return OTA_STORE_OK (nothing listed for a thing without attributes);
 *         OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_thing_attr_list(ota_store_t *store, const char *thing, ota_store_attr_cb cb,
                              void *ctx);

/* ------------------------------------------------------------------------ */
/* Presence (ota_store_presence.c)                                          */
/* ------------------------------------------------------------------------ */

/*
 * Presence is kept per broker (1..OTA_STORE_PRESENCE_BROKERS_MAX) from the
 * brokers' connection notices: a thing's last notice on each broker, and
 * each broker's gaps (times the notices of that broker may have been lost).
 * Its presence on broker K is known (connected or not) when its last notice
 * there came after K's last gap, unknown otherwise; this is computed when it
 * is read, so a gap costs the same whatever the fleet's size, and a gap
 * recorded through one handle is seen through every other on the same
 * database. The computed attributes connected, connectedTo and
 * presenceUnknownOn are read with ota_store_thing_attr_get() and
 * ota_store_thing_attr_list() like the others, and cannot be set.
 *
 * Several service instances may write the same things, each late by up to
 * its write budget's second or a wait for the store. A notice is ordered by
 * its time, not by when it is written: one older than the thing's row on
 * its broker leaves the row (one of the same time replaces it), one older
 * than the broker's latest gap is not known after that gap, and a notice
 * never moves lastSeen back. (lastSeen written for a Device Shadow report or
 * a Jobs request, by ota_store_thing_service_attr_set(), is written as it
 * comes: across instances it can go back by their clocks' difference.) The
 * instances' clocks must therefore agree.
 */

/** A thing's presence, as read at one moment. */
typedef struct {
    int seen;                 /**< 1 once a notice about the thing was recorded */
    unsigned on;              /**< bit K: known connected to broker K */
    unsigned unknown;         /**< bit K: unknown on broker K */
    int64_t unknown_since_ms; /**< the latest moment one of them became unknown */
    int64_t updated_ms;       /**< the latest notice or gap that changed it */
} ota_store_presence_t;

/**
 * Records a gap in the service's view of the brokers in mask (bit K for
 * broker K): what was learned from their notices before now becomes
 * unknown. One transaction of at most one row per broker; each broker keeps
 * its last OTA_STORE_PRESENCE_GAPS_KEPT gaps (a thing whose last notice
 * there is older than them reads unknown since that notice).
 * @param any  if not NULL, set to 1 when any thing's presence is recorded at
 *             all (the gap may change what is known), else 0.
 * @return OTA_STORE_OK; OTA_STORE_INVALID (no broker in range); OTA_STORE_ERROR.
 */
int ota_store_presence_gap(ota_store_t *store, unsigned mask, int64_t now_ms, int *any);

/**
 * Records a connection notice of time now_ms: the thing is connected
 * (online 1) or not (online 0) to broker, known from then on; its lastSeen
 * attribute becomes now_ms unless it is later already. A notice older than
 * the thing's row on broker (another instance wrote a later one) changes
 * nothing there; one older than the broker's latest gap (recorded by another
 * instance before this one wrote the notice) leaves the thing unknown there
 * since the first gap after the notice. It also makes it unknown on the
 * brokers of first_unknown (bit K) where it has no notice yet (its first
 * notice; a broker the federation gained; presence from schema 6, kept on
 * broker 1 only when the thing had just "connected"): their notices about
 * it were never seen. All in one transaction.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND (no such thing); OTA_STORE_INVALID
 *         (bad name, broker out of range); OTA_STORE_ERROR.
 */
int ota_store_presence_notice(ota_store_t *store, const char *thing, unsigned broker, int online,
                              unsigned first_unknown, int64_t now_ms);

/** A thing's latest notice on one broker, for ota_store_presence_notices(). */
typedef struct {
    unsigned broker; /**< the broker, 1..OTA_STORE_PRESENCE_BROKERS_MAX */
    int online;      /**< 1 connected, 0 not */
    int64_t at_ms;   /**< when the service had it (ms since the epoch): notices are ordered by it */
} ota_store_presence_note_t;

/**
 * Records a thing's latest notices on one or more brokers at once, as
 * ota_store_presence_notice() does for each (a notice held back a while, see
 * the service's presence write budget): each broker's row takes its notice's
 * state and time unless the row is newer, known unless the notice is older
 * than the broker's latest gap; lastSeen becomes the latest of their times
 * unless it is later already; the brokers of first_unknown without a row and
 * without a notice here become unknown since the earliest. One transaction.
 * @param notes the notices, one per broker (a broker given twice: the newer wins); borrowed.
 * @param n     how many, 1..OTA_STORE_PRESENCE_BROKERS_MAX.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND (no such thing); OTA_STORE_INVALID
 *         (bad name, n or broker out of range); OTA_STORE_ERROR.
 */
int ota_store_presence_notices(ota_store_t *store, const char *thing,
                               const ota_store_presence_note_t *notes, size_t n,
                               unsigned first_unknown);

/**
 * The federation has brokers 1..n: forgets the things' notices on brokers
 * above n (a federation that shrank), so that no thing stays unknown on a
 * broker that is gone; a broker added again later starts as a new one (each
 * thing unknown there until its first notice there). Gaps are kept: they
 * are recorded on every broker number. Reads first: nothing is written when
 * nothing is to be forgotten.
 * @param forgot if not NULL, set to 1 when something was forgotten, else 0.
 * @return OTA_STORE_OK; OTA_STORE_INVALID (n not in
 *         1..OTA_STORE_PRESENCE_BROKERS_MAX); OTA_STORE_ERROR.
 */
int ota_store_presence_keep_brokers(ota_store_t *store, unsigned n, int *forgot);

/**
 * Reads a thing's presence now (seen 0 and empty sets for a thing never seen).
 * @return OTA_STORE_OK; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_presence_get(ota_store_t *store, const char *thing, ota_store_presence_t *out);

/** The connected attribute's value ("true", "unknown", "false"), or NULL when never seen. */
const char *ota_store_presence_connected(const ota_store_presence_t *p);

/** A set of brokers (bit K) as text, "1,3" ("" for none), into out[cap]. */
void ota_store_presence_set_text(unsigned mask, char *out, size_t cap);

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

/** An imported file. */
typedef struct ota_store_file {
    int64_t id;      /**< store-wide file number, from 1 */
    char path[4096]; /**< <data_dir>/files/<id>.bin (relative if data_dir is) */
    uint64_t size;   /**< bytes */
} ota_store_file_t;

/**
 * Imports (copies) a file into data_dir/files/ under a new id. The copy uses
 * a fixed-size buffer (bounded memory), is flushed to disk, then renamed into
 * place, so a stored file is never partial.
 *
 * @param src_path file to copy; must be a regular, non-empty file.
 * @param out      receives the new file's id, stored path and size.
 * @return OTA_STORE_OK; OTA_STORE_INVALID (NULL, empty, or not a regular
 *         file); OTA_STORE_NOT_FOUND (src_path does not exist);
 *         OTA_STORE_ERROR (I/O failure; nothing is left behind).
 */
int ota_store_file_import(ota_store_t *store, const char *src_path, ota_store_file_t *out);

/**
 * Reads an imported file's record.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND; OTA_STORE_ERROR.
 */
int ota_store_file_get(ota_store_t *store, int64_t id, ota_store_file_t *out);

/* ------------------------------------------------------------------------ */
/* Streams                                                                  */
/* ------------------------------------------------------------------------ */

/** One file of a stream. */
typedef struct ota_store_stream_file {
    uint32_t file_id; /**< 0..255, what devices put in block requests */
    const char *path; /**< stored path (usually from ota_store_file_import()) */
    uint64_t size;    /**< bytes, > 0 */
} ota_store_stream_file_t;

/** A stream as read back; free with ota_store_stream_free(). */
typedef struct ota_store_stream {
    char stream_id[OTA_STORE_STREAM_ID_MAX + 1];
    int64_t version;   /**< starts at 1 */
    char *description; /**< heap, never NULL after a successful get ("" if none) */
    size_t n_files;
    ota_store_stream_file_t *files; /**< heap, by file id; paths point into this allocation */
    int64_t created_ms;
} ota_store_stream_t;

/**
 * Creates a stream.
 * @param stream_id   1..128 characters of [A-Za-z0-9_-].
 * @param description free text, may be NULL (stored as "").
 * @param files       n_files entries (1..256), distinct file ids 0..255,
 *                    non-NULL paths, sizes > 0. Copied.
 * @return OTA_STORE_OK; OTA_STORE_INVALID; OTA_STORE_EXISTS; OTA_STORE_ERROR.
 */
int ota_store_stream_create(ota_store_t *store, const char *stream_id, const char *description,
                            const ota_store_stream_file_t *files, size_t n_files, int64_t now_ms);

/**
 * Reads a stream (version, description, files sorted by file id).
 * @param out receives the stream; release with ota_store_stream_free().
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_stream_get(ota_store_t *store, const char *stream_id, ota_store_stream_t *out);

/** Releases what ota_store_stream_get() allocated; zeroes *stream. NULL is a no-op. */
void ota_store_stream_free(ota_store_stream_t *stream);

/** Callback for ota_store_stream_list(); return nonzero to stop. */
typedef int (*ota_store_stream_cb)(void *ctx, const ota_store_stream_t *stream);

/**
 * Lists every stream, by id, with its files.
 * @return OTA_STORE_OK; OTA_STORE_INVALID (NULL cb); OTA_STORE_ERROR.
 */
int ota_store_stream_list(ota_store_t *store, ota_store_stream_cb cb, void *ctx);

/**
 * Whether a thing may read a stream: the thing exists, is neither disabled
 * nor revoked (its "disabled" or "revoked" attribute "true": otter thing
 * disable, otter thing revoke) and has an execution that is not CANCELED,
 * SKIPPED or REMOVED (and, if QUEUED, is released by the rollout) of a job
 * whose stream is stream_id.
 * @return 1 = yes, 0 = no, < 0 an ota_store_rc_t failure.
 */
int ota_store_thing_may_read_stream(ota_store_t *store, const char *thing, const char *stream_id);

/* ------------------------------------------------------------------------ */
/* Jobs                                                                     */
/* ------------------------------------------------------------------------ */

/** Job status. */
typedef enum ota_store_job_status {
    OTA_STORE_JOB_IN_PROGRESS = 0, /**< executions are queued or running */
    OTA_STORE_JOB_CANCELED = 1,    /**< canceled by ota_store_job_cancel() */
    OTA_STORE_JOB_COMPLETED = 2,   /**< every execution is terminal */
    OTA_STORE_JOB_ABORTED = 3,     /**< the abort criteria were met */
} ota_store_job_status_t;

/** "IN_PROGRESS", "CANCELED", "COMPLETED", "ABORTED"; "UNKNOWN" otherwise. */
const char *ota_store_job_status_name(int status);

/** Which failures an abort rule counts (AWS AbortCriteria failureType). */
typedef enum ota_store_failure_type {
    OTA_STORE_FAILURE_FAILED = 0,
    OTA_STORE_FAILURE_REJECTED = 1,
    OTA_STORE_FAILURE_TIMED_OUT = 2,
    OTA_STORE_FAILURE_ALL = 3, /**< FAILED, REJECTED and TIMED_OUT */
} ota_store_failure_type_t;

/** "FAILED", "REJECTED", "TIMED_OUT", "ALL"; "UNKNOWN" otherwise. */
const char *ota_store_failure_type_name(int type);

/** Most abort rules of a job. */
#define OTA_STORE_ABORT_RULES_MAX 4
/** Most rollout phases of a job. */
#define OTA_STORE_PHASES_MAX 8

/**
 * One abort rule (AWS AbortCriteria, action CANCEL): the job is ABORTED when
 * at least min_executed things have executed (SUCCEEDED, FAILED, REJECTED or
 * TIMED_OUT; SKIPPED and CANCELED do not count) and failures of this type
 * are at least percent % of them.
 */
typedef struct ota_store_abort_rule {
    ota_store_failure_type_t type;
    uint32_t percent;      /**< 1..100 */
    uint32_t min_executed; /**< 1..1000000 */
} ota_store_abort_rule_t;

/**
 * How a job reaches its targets over time. All zero: every execution is
 * released at creation. Otherwise executions are held (QUEUED, unreleased,
 * invisible to devices) and released by ota_store_rollout_release() and
 * whenever one of the job's executions finishes.
 */
typedef struct ota_store_rollout {
    /** Release nothing before this time (ms since the epoch); 0 = at once. */
    int64_t start_at_ms;
    /** Daily maintenance window in UTC minutes of the day [start, end): releases
     *  happen only inside it (end < start wraps past midnight). Both 0 = none. */
    uint32_t window_start_min, window_end_min;
    /** Phases (hawkBit rollout groups): phase_percent[i] is the cumulative share
     *  of the targets (in creation order) in phases 0..i, increasing, the last
     *  100. Phase i+1 opens when SUCCEEDED + SKIPPED executions of phase i reach
     *  phase_success_percent % of it. n_phases = 0: one phase. */
    uint32_t n_phases;
    uint32_t phase_percent[OTA_STORE_PHASES_MAX];
    uint32_t phase_success_percent; /**< 1..100 when n_phases > 0 */
    /** Exponential rate (AWS exponentialRate): base_per_minute releases per
     *  minute at first, multiplied by factor_x10 / 10 each time another
     *  increase_every things were notified (or SUCCEEDED with
     *  increase_on_succeeded), never above the job's rollout_per_minute when
     *  that is set. base_per_minute = 0: no exponential rate. */
    uint32_t base_per_minute;
    uint32_t factor_x10;     /**< 11..50 (1.1 .. 5.0) */
    uint32_t increase_every; /**< 1..1000000 */
    int increase_on_succeeded;
} ota_store_rollout_t;

/** What ota_store_job_create() needs. Strings and arrays are copied. */
typedef struct ota_store_job_spec {
    const char *job_id;        /**< 1..64 characters of [A-Za-z0-9_-] */
    const char *document;      /**< job document: JSON object text, stored verbatim, at most
                                    OTA_STORE_JOB_DOCUMENT_MAX bytes */
    const char *stream_id;     /**< stream the job uses (must exist), or NULL for none */
    const char *const *things; /**< thing names (must exist) */
    size_t n_things;
    const char *const *groups; /**< group names (must have members) */
    size_t n_groups;
    /** Minutes an execution may stay IN_PROGRESS before TIMED_OUT; 0 = no limit. */
    uint32_t in_progress_timeout_min;
    /** Executions released per minute; 0 = all at once. */
    uint32_t rollout_per_minute;
    /** Abort when failures (FAILED, TIMED_OUT, REJECTED) reach this percentage
     *  of finished executions; 0 = no abort criteria, else 1..100. */
    uint32_t abort_failure_percent;
    /** ... but only once at least this many executions have finished
     *  (SUCCEEDED or a failure). 0 behaves as 1. */
    uint32_t abort_min_finished;
    /** Version the job installs ("X.Y.Z"), or NULL/"" for none. A thing whose
     *  firmwareVersion attribute equals it, or is a newer version (a
     *  downgrade the device would refuse after the download), is SKIPPED,
     *  never sent the job. */
    const char *target_version;
    /** Device types the job is for, "a,b" (ota_store_valid_device_types()), or
     *  NULL/"" for any. A thing whose deviceType attribute is not one of them
     *  (or is unset) is SKIPPED. */
    const char *device_types;
    /** More abort rules (checked with abort_failure_percent, which is an ALL rule). */
    ota_store_abort_rule_t abort_rules[OTA_STORE_ABORT_RULES_MAX];
    size_t n_abort_rules;
    /** Scheduled start, maintenance window, phases, exponential rate. */
    ota_store_rollout_t rollout;
    /** Continuous job (AWS targetSelection CONTINUOUS): things that join a target
     *  group later get an execution, things that leave lose a QUEUED one
     *  (REMOVED); the job stays IN_PROGRESS until canceled. */
    int continuous;
} ota_store_job_spec_t;

/** A job as read back; free with ota_store_job_free(). */
typedef struct ota_store_job {
    char job_id[OTA_STORE_JOB_ID_MAX + 1];
    char stream_id[OTA_STORE_STREAM_ID_MAX + 1]; /**< "" when the job has no stream */
    char *document;                              /**< heap: the job document exactly as created */
    ota_store_job_status_t status;
    uint32_t in_progress_timeout_min;
    uint32_t rollout_per_minute;
    uint32_t abort_failure_percent;
    uint32_t abort_min_finished;
    int64_t created_ms;
    int64_t updated_ms;   /**< last status change */
    int64_t completed_ms; /**< when it left IN_PROGRESS; 0 while IN_PROGRESS */
    char target_version[OTA_STORE_VERSION_MAX + 1];    /**< "" when none */
    char device_types[OTA_STORE_DEVICE_TYPES_MAX + 1]; /**< "" when any */
    ota_store_abort_rule_t abort_rules[OTA_STORE_ABORT_RULES_MAX];
    size_t n_abort_rules;
    ota_store_rollout_t rollout;
    uint32_t current_phase; /**< the open phase (0-based); n_phases when all are open */
    int continuous;         /**< targetSelection CONTINUOUS */
    /** Why the job ended: "ABORT_<failure type>" (with the rule in reason),
     *  "CANCELED" (reason: the operator's comment); "" while IN_PROGRESS or
     *  COMPLETED. */
    char reason_code[33];
    char reason[257];
    /* Execution counts. */
    uint32_t n_executions; /**< targets after group expansion */
    uint32_t n_unreleased; /**< QUEUED but not yet released by the rollout */
    uint32_t n_queued;     /**< QUEUED and released */
    uint32_t n_in_progress;
    uint32_t n_succeeded;
    uint32_t n_failed;
    uint32_t n_timed_out;
    uint32_t n_rejected;
    uint32_t n_removed;
    uint32_t n_canceled;
    uint32_t n_skipped; /**< not needed: already on the version or a newer one, or another
                         *   device type */
} ota_store_job_t;

/**
 * Creates a job and one QUEUED execution per target thing (SKIPPED at once
 * for a thing that does not need it: see target_version and device_types;
 * such an execution is never released nor counted by the rollout). Groups are
 * expanded now, at creation: things added to a group later are not targets.
 * A thing named directly and through a group gets one execution. With a
 * rollout rate the executions are released over time by
 * ota_store_rollout_release(); otherwise all are released at once.
 *
 * @param spec   see ota_store_job_spec_t; at least one target in total.
 * @param now_ms creation time (queuedAt of released executions).
 * @return OTA_STORE_OK; OTA_STORE_INVALID (bad id, document not a JSON
 *         object, no targets, bad percentage); OTA_STORE_EXISTS (job id
 *         taken); OTA_STORE_NOT_FOUND (unknown thing, group or stream;
 *         ota_store_errmsg() names it); OTA_STORE_ERROR. Nothing is written on
 *         failure.
 */
int ota_store_job_create(ota_store_t *store, const ota_store_job_spec_t *spec, int64_t now_ms);

/**
 * Reads a job with its execution counts.
 * @param out receives the job; release with ota_store_job_free().
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_job_get(ota_store_t *store, const char *job_id, ota_store_job_t *out);

/** Releases what ota_store_job_get() allocated; zeroes *job. NULL is a no-op. */
void ota_store_job_free(ota_store_job_t *job);

/**
 * Reads only a job's document (cheaper than ota_store_job_get(), which also
 * counts executions).
 * @param document receives the document text exactly as created (heap; the
 *                 caller frees it with free()); NULL on failure.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_job_document(ota_store_t *store, const char *job_id, char **document);

/** Callback for ota_store_job_list(); return nonzero to stop. */
typedef int (*ota_store_job_cb)(void *ctx, const ota_store_job_t *job);

/**
 * Lists every job, oldest first, with counts and documents.
 * @return OTA_STORE_OK; OTA_STORE_INVALID (NULL cb); OTA_STORE_ERROR.
 */
int ota_store_job_list(ota_store_t *store, ota_store_job_cb cb, void *ctx);

/**
 * Cancels a job: the job becomes CANCELED and every execution that is not
 * terminal (QUEUED, released or not, and IN_PROGRESS) becomes CANCELED, which
 * changes those things' next job (a running daemon publishes notify-next).
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND; OTA_STORE_CONFLICT (the job is
 *         already CANCELED, COMPLETED or ABORTED); OTA_STORE_INVALID;
 *         OTA_STORE_ERROR.
 */
int ota_store_job_cancel(ota_store_t *store, const char *job_id, int64_t now_ms);

/**
 * Cancels a job as ota_store_job_cancel() does and records why.
 * @param reason_code NULL or 1..32 of [A-Za-z0-9_] (default "CANCELED").
 * @param comment     NULL or 1..256 printable characters (stored as reason).
 * @return as ota_store_job_cancel(); OTA_STORE_INVALID for a bad code or comment.
 */
int ota_store_job_cancel_why(ota_store_t *store, const char *job_id, const char *reason_code,
                             const char *comment, int64_t now_ms);

/**
 * Cancels one thing's execution of a job (AWS CancelJobExecution): a QUEUED
 * one (released or not) becomes CANCELED; an IN_PROGRESS one only with
 * force (the device may be writing flash: it learns of the cancel from
 * notify-next and its next update is refused). The job is re-evaluated.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND (no such execution);
 *         OTA_STORE_CONFLICT (IN_PROGRESS without force);
 *         OTA_STORE_TERMINAL (already finished); OTA_STORE_INVALID;
 *         OTA_STORE_ERROR.
 */
int ota_store_execution_cancel(ota_store_t *store, const char *job_id, const char *thing, int force,
                               int64_t now_ms);

/**
 * ota_store_execution_cancel() that also says why: details (a statusDetails
 * JSON object's text, such as {"reason":"thing revoked"}) replaces the
 * execution's statusDetails; NULL keeps them.
 */
int ota_store_execution_cancel_why(ota_store_t *store, const char *job_id, const char *thing,
                                   int force, const char *details, int64_t now_ms);

/**
 * Deletes a job, its executions, its stream (when no other job uses it) and
 * the stream's imported files (AWS DeleteJob). A job still IN_PROGRESS is
 * deleted only with force (its unfinished executions are canceled first, so
 * devices are told).
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND; OTA_STORE_CONFLICT (IN_PROGRESS
 *         without force); OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_job_delete(ota_store_t *store, const char *job_id, int force, int64_t now_ms);

/* ------------------------------------------------------------------------ */
/* Job executions                                                           */
/* ------------------------------------------------------------------------ */

/** Execution status (AWS JobExecutionStatus). */
typedef enum ota_store_exec_status {
    OTA_STORE_EXEC_QUEUED = 0,
    OTA_STORE_EXEC_IN_PROGRESS = 1,
    OTA_STORE_EXEC_SUCCEEDED = 2,
    OTA_STORE_EXEC_FAILED = 3,
    OTA_STORE_EXEC_TIMED_OUT = 4,
    OTA_STORE_EXEC_REJECTED = 5,
    OTA_STORE_EXEC_REMOVED = 6,
    OTA_STORE_EXEC_CANCELED = 7,
    /** otter's own terminal status: the thing did not need the job (it runs the
     *  target version already, or is not of one of the job's device types).
     *  Never a failure; devices are told REMOVED. */
    OTA_STORE_EXEC_SKIPPED = 8,
} ota_store_exec_status_t;

/** "QUEUED", "IN_PROGRESS", … as on the wire; "UNKNOWN" otherwise. */
const char *ota_store_exec_status_name(int status);

/**
 * Parses a wire status name (exact, upper case).
 * @return OTA_STORE_OK; OTA_STORE_INVALID (unknown name or NULL).
 */
int ota_store_exec_status_parse(const char *name, ota_store_exec_status_t *out);

/** 1 if status is terminal (anything but QUEUED and IN_PROGRESS), else 0. */
int ota_store_exec_status_is_terminal(int status);

/** An execution (AWS JobExecution); free with ota_store_execution_free(). */
typedef struct ota_store_execution {
    char job_id[OTA_STORE_JOB_ID_MAX + 1];
    char thing[OTA_STORE_THING_NAME_MAX + 1];
    ota_store_exec_status_t status;
    /** heap: statusDetails JSON object text as last written (the service writes them
     *  compact, at most OTA_STORE_DETAILS_MAX bytes), or NULL if never written */
    char *status_details;
    int64_t version_number;   /**< 1 at creation, +1 on every update */
    int64_t execution_number; /**< 1 (one execution per job and thing) */
    int64_t queued_at_ms;     /**< creation, or release by the rollout */
    int64_t started_at_ms;    /**< first IN_PROGRESS; 0 if never started */
    int64_t last_updated_at_ms;
    int64_t deadline_ms; /**< IN_PROGRESS timeout deadline; 0 = none */
    int released;        /**< 0 while held back by the rollout (invisible to the device), and for
                              one CANCELED while held (it never reached the device) */
} ota_store_execution_t;

/** Releases what an execution getter allocated; zeroes *exec. NULL is a no-op. */
void ota_store_execution_free(ota_store_execution_t *exec);

/** Callback for execution listings; return nonzero to stop. */
typedef int (*ota_store_execution_cb)(void *ctx, const ota_store_execution_t *exec);

/**
 * Reads one execution.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_execution_get(ota_store_t *store, const char *job_id, const char *thing,
                            ota_store_execution_t *out);

/**
 * Lists a job's executions by thing name (for watching a job): all of them,
 * including those the rollout has not released (released = 0).
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND (no such job); OTA_STORE_INVALID;
 *         OTA_STORE_ERROR.
 */
int ota_store_execution_list(ota_store_t *store, const char *job_id, ota_store_execution_cb cb,
                             void *ctx);

/** One entry of an execution's history: its state right after one change. */
typedef struct ota_store_exec_event {
    ota_store_exec_status_t status;
    /** statusDetails JSON object text as it stood after the change, or NULL (valid during the
     *  callback only) */
    const char *status_details;
    int64_t version_number; /**< the execution's version after the change */
    int64_t at_ms;          /**< when (the execution's lastUpdatedAt) */
    /** who recorded it: the service instance's name (its MQTT client id), the program's
     *  name (e.g. "otter-cli"), or "" (valid during the callback only) */
    const char *recorder;
    /** changes recorded between the previous entry and this one that were dropped to bound
     *  the history (OTA_STORE_HISTORY_KEPT); 0 when none */
    int64_t dropped_before;
} ota_store_exec_event_t;

/** Callback for ota_store_execution_history(); return nonzero to stop. */
typedef int (*ota_store_exec_event_cb)(void *ctx, const ota_store_exec_event_t *ev);

/**
 * Lists an execution's history, oldest first: its creation (QUEUED, version
 * 1) and every committed change of its status or version (a device's
 * accepted update, progress reports included; a timeout, a cancel, a skip, a
 * removal), each once, recorded in the transaction that made it. The history
 * is bounded: it keeps the creation and the most recent OTA_STORE_HISTORY_KEPT
 * changes; how many were dropped between them is the second entry's
 * dropped_before.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND (no such execution);
 *         OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_execution_history(ota_store_t *store, const char *job_id, const char *thing,
                                ota_store_exec_event_cb cb, void *ctx);

/**
 * Lists a thing's pending executions in AWS order: IN_PROGRESS first, then
 * released QUEUED, each oldest first (queuedAt, then creation order).
 * Unreleased executions are not listed.
 * @return OTA_STORE_OK (also for an unknown thing: nothing listed);
 *         OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_execution_list_pending(ota_store_t *store, const char *thing,
                                     ota_store_execution_cb cb, void *ctx);

/**
 * The thing's next pending execution: the first of
 * ota_store_execution_list_pending().
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND (nothing pending, or no such
 *         thing); OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_execution_next(ota_store_t *store, const char *thing, ota_store_execution_t *out);

/**
 * Callback for ota_store_thing_executions(): a thing's n executions, by job
 * in ota_store_job_list()'s order, and the index among them of its next one
 * (what ota_store_execution_next() gives), or -1 when nothing is pending.
 * The executions are valid during the call only. Return nonzero to stop.
 */
typedef int (*ota_store_thing_execs_cb)(void *ctx, const char *thing,
                                        const ota_store_execution_t *execs, size_t n, long next);

/**
 * Lists every thing's executions, a thing at a time (things without one are
 * left out): one statement, whatever the number of things and jobs.
 * @return OTA_STORE_OK; OTA_STORE_INVALID (NULL cb); OTA_STORE_ERROR.
 */
int ota_store_thing_executions(ota_store_t *store, ota_store_thing_execs_cb cb, void *ctx);

/** A device's execution update (AWS UpdateJobExecution). */
typedef struct ota_store_exec_update {
    /** New status: IN_PROGRESS, SUCCEEDED, FAILED or REJECTED (others are
     *  OTA_STORE_INVALID). */
    ota_store_exec_status_t status;
    /** statusDetails JSON object text stored verbatim (the service stores them compact), or
     *  NULL to keep the current ones. The caller validates the content; longer than
     *  OTA_STORE_DETAILS_MAX bytes is OTA_STORE_INVALID. */
    const char *status_details;
    /** Required current versionNumber, or 0 for no check. */
    int64_t expected_version;
    /** Step timeout: 1..OTA_STORE_STEP_TIMEOUT_MAX sets the deadline to now +
     *  this many minutes (never beyond the job's in-progress timeout); -1
     *  clears a step deadline; 0 leaves the deadline alone. Only for
     *  IN_PROGRESS. Other values are OTA_STORE_INVALID. */
    int64_t step_timeout_min;
    /** The MQTT delivery that carried the request, so that a redelivery (the
     *  broker sends an unacknowledged message again, with the same packet id,
     *  after the service restarts) is applied once: the session (the service's
     *  client id) or NULL for no tracking ... */
    const char *delivery_session;
    /** ... the packet id 1..65535 (0: QoS 0, never redelivered: no tracking) ... */
    int delivery_id;
    /** ... and a digest of the topic and payload. */
    int64_t delivery_digest;
} ota_store_exec_update_t;

/**
 * Applies a device's status update in one transaction. Allowed transitions:
 * QUEUED -> IN_PROGRESS, SUCCEEDED, FAILED, REJECTED;
 * IN_PROGRESS -> IN_PROGRESS, SUCCEEDED, FAILED.
 * Bumps versionNumber and lastUpdatedAt; the first IN_PROGRESS sets startedAt
 * and the in-progress deadline. A terminal status marks the thing's next job
 * as changed and re-evaluates the job (COMPLETED, or ABORTED by its abort
 * criteria, which cancels its remaining executions).
 *
 * @param upd    the update.
 * @param now_ms time of the update.
 * @param after  if not NULL, receives the execution as it is after the call,
 *               also on OTA_STORE_VERSION_MISMATCH, OTA_STORE_TERMINAL and
 *               OTA_STORE_BAD_TRANSITION (the current state, unchanged), for
 *               rejections that carry the execution state. Release it with
 *               ota_store_execution_free().
 * With a delivery (session and packet id), the update is applied only if
 * that packet id of that session did not last carry the same digest; the
 * delivery is recorded in the same transaction as the update.
 *
 * @return OTA_STORE_OK; OTA_STORE_DUPLICATE (the same delivery was applied
 *         before: nothing changed, *after holds the current state);
 *         OTA_STORE_NOT_FOUND (no such execution, or not yet
 *         released); OTA_STORE_VERSION_MISMATCH; OTA_STORE_TERMINAL (already
 *         terminal); OTA_STORE_BAD_TRANSITION (e.g. IN_PROGRESS -> REJECTED);
 *         OTA_STORE_INVALID (status not settable by a device, bad arguments);
 *         OTA_STORE_ERROR.
 */
int ota_store_execution_update(ota_store_t *store, const char *job_id, const char *thing,
                               const ota_store_exec_update_t *upd, int64_t now_ms,
                               ota_store_execution_t *after);

/* ------------------------------------------------------------------------ */
/* Periodic work for daemons                                                */
/* ------------------------------------------------------------------------ */

/**
 * Moves every IN_PROGRESS execution whose deadline is at or before now_ms to
 * TIMED_OUT (versionNumber +1), marks those things' next job as changed and
 * re-evaluates their jobs. Idempotent; several daemons may call it.
 * @param n_timed_out if not NULL, receives how many executions timed out.
 * @return OTA_STORE_OK or OTA_STORE_ERROR.
 */
int ota_store_expire_timeouts(ota_store_t *store, int64_t now_ms, size_t *n_timed_out);

/**
 * Releases executions held back by a rollout rate. A job with rate R has, at
 * minute k after its creation (k = 0, 1, …), at most R × (k + 1) executions
 * released in total, in creation order; released executions become visible
 * with queuedAt = now_ms. The count released is kept in the database, so a
 * restarted daemon continues where the last one stopped (after a long outage
 * the backlog is released at once).
 * @param n_released if not NULL, receives how many executions were released.
 * @return OTA_STORE_OK or OTA_STORE_ERROR.
 */
int ota_store_rollout_release(ota_store_t *store, int64_t now_ms, size_t *n_released);

/**
 * Earliest time at which ota_store_expire_timeouts() or
 * ota_store_rollout_release() would have work, from the current state.
 * @param out receives that time in ms, or INT64_MAX if there is none.
 * @return OTA_STORE_OK or OTA_STORE_ERROR.
 */
int ota_store_next_timed_work(ota_store_t *store, int64_t *out);

/*
 * Notify-next bookkeeping. Every write that can change a thing's next
 * pending job (job created or released, execution finished, canceled, timed
 * out, aborted) increments that thing's change counter in the same
 * transaction. A daemon lists the things whose counter differs from the one
 * it last handled, computes each next execution, publishes notify-next if the
 * next job differs from the one last announced, and records what it
 * announced. Everything is in the database, so a restarted daemon picks up
 * exactly where the previous one stopped; duplicates after a crash are
 * harmless to devices.
 *
 * Several daemons on one store: listing a thing claims it for the listing
 * handle for OTA_STORE_NOTIFY_LEASE_MS (in a write transaction, so two
 * daemons never list the same thing at once; the same handle lists it again
 * on its next call, so a failed publish is retried at once);
 * ota_store_notify_done() ends the claim. A daemon that dies holding claims
 * delays those things' notifications by at most the lease; nothing is lost.
 */

/** How long a listed thing is claimed by the daemon that listed it. */
#define OTA_STORE_NOTIFY_LEASE_MS 10000

/** Callback for ota_store_notify_pending(). */
typedef int (*ota_store_notify_cb)(void *ctx, const char *thing, int64_t change_seq,
                                   const char *last_announced_job_id);

/**
 * Lists things whose next job may have changed since last handled and that
 * no other handle has claimed, and claims them.
 * @param cb receives the thing, its current change counter (give it back to
 *           ota_store_notify_done()) and the job id last announced on
 *           notify-next ("" = none announced, or "no execution" announced).
 * @return OTA_STORE_OK; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_notify_pending(ota_store_t *store, ota_store_notify_cb cb, void *ctx);

/**
 * Records that a thing's change counter up to change_seq is handled and what
 * was announced. A counter that moved on meanwhile stays pending.
 * @param change_seq  the counter from ota_store_notify_pending(), or -1 to
 *                    leave the counter alone (only record the announcement,
 *                    e.g. after answering $next/get).
 * @param announced_job_id job id announced on notify-next; "" or NULL for an
 *                    announcement without execution.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND (no such thing);
 *         OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_notify_done(ota_store_t *store, const char *thing, int64_t change_seq,
                          const char *announced_job_id);

/**
 * Forgets the deliveries recorded for a session: call it when the broker
 * starts a new session for the service (nothing of the old one can come
 * again), so that reused packet ids are never taken for redeliveries.
 * @param session the service's client id.
 * @return OTA_STORE_OK; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_deliveries_forget(ota_store_t *store, const char *session);

/**
 * The signature of the pending-execution list last published on a thing's
 * jobs/notify topic.
 * @param signature receives it (0 when none was published).
 * @param known     receives 1 if one was published, else 0.
 * @return OTA_STORE_OK; OTA_STORE_NOT_FOUND (no such thing); OTA_STORE_INVALID;
 *         OTA_STORE_ERROR.
 */
int ota_store_notify_list_get(ota_store_t *store, const char *thing, int64_t *signature,
                              int *known);

/**
 * Records the signature of the pending list just published on jobs/notify.
 * @return OTA_STORE_OK; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_notify_list_done(ota_store_t *store, const char *thing, int64_t signature);

/*
 * Outbox: answers a daemon must deliver even if it dies right after the
 * broker received the acknowledgement of their request. A daemon adds an
 * answer before publishing it, removes it when the broker acknowledged it,
 * and publishes what is left when it starts again.
 */

/**
 * Adds an answer to the outbox.
 * @param id receives its id.
 * @return OTA_STORE_OK; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_outbox_add(ota_store_t *store, const char *topic, const char *payload, int64_t now_ms,
                         int64_t *id);

/**
 * Removes a delivered answer (an unknown id is not an error).
 * @return OTA_STORE_OK; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_outbox_remove(ota_store_t *store, int64_t id);

/**
 * Removes this handle's instance's outbox entries (and those without an owner) added before
 * before_ms: answers so old that no device still waits for them.
 * @param n receives how many were removed (may be NULL).
 * @return OTA_STORE_OK; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_outbox_expire(ota_store_t *store, int64_t before_ms, size_t *n);

/**
 * Removes the outbox entries added before before_ms by instances that are not
 * live (no heartbeat at or after now_ms - live_ms): what ota_store_outbox_adopt()
 * would otherwise take over and send again however old.
 * @param n receives how many were removed (may be NULL).
 * @return OTA_STORE_OK; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_outbox_expire_orphans(ota_store_t *store, int64_t before_ms, int64_t now_ms,
                                    int64_t live_ms, size_t *n);

/** Callback for ota_store_outbox_list(); return nonzero to stop. */
typedef int (*ota_store_outbox_cb)(void *ctx, int64_t id, const char *topic, const char *payload);

/**
 * Lists this handle's instance's outbox entries (ota_store_set_instance()),
 * oldest first, after taking over the entries that have no owner (written
 * before instances were named, or by a handle without a name).
 * @return OTA_STORE_OK; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_outbox_list(ota_store_t *store, ota_store_outbox_cb cb, void *ctx);

/*
 * Service instances: each instance that shares requests with others records
 * a heartbeat; the instances whose heartbeat is recent are live. The count
 * of live instances divides the per-thing budgets, and an instance that
 * stopped beating leaves its outbox entries to the others.
 */

/** Longest instance name (an MQTT client id). */
#define OTA_STORE_INSTANCE_MAX 128

/**
 * Names the instance this handle works for: the owner of the outbox entries
 * it adds, and the name its heartbeats record.
 * @param name 1..OTA_STORE_INSTANCE_MAX characters, or "" for none.
 * @return OTA_STORE_OK; OTA_STORE_INVALID (too long, NULL).
 */
int ota_store_set_instance(ota_store_t *store, const char *name);

/**
 * Names who writes through this handle, as execution histories record it
 * (ota_store_execution_history()); ota_store_set_instance() sets it too.
 * @param name printable ASCII without spaces, quotes or backslashes, at most
 *             OTA_STORE_INSTANCE_MAX characters; "" for none.
 * @return OTA_STORE_OK; OTA_STORE_INVALID (the name is refused, the old one kept).
 */
int ota_store_set_recorder(ota_store_t *store, const char *name);

/**
 * Records a heartbeat of this handle's instance (ota_store_set_instance())
 * at now_ms, forgets instances silent for more than an hour, and counts the
 * live instances (heartbeat at or after now_ms - live_ms, this one included)
 * that serve the Jobs API and that serve streams. One write transaction.
 * @param jobs_live    receives the live instances serving the Jobs API (may be NULL).
 * @param streams_live receives the live instances serving streams (may be NULL).
 * @return OTA_STORE_OK; OTA_STORE_INVALID (no instance name); OTA_STORE_ERROR.
 */
int ota_store_instance_beat(ota_store_t *store, int serves_jobs, int serves_streams, int64_t now_ms,
                            int64_t live_ms, int *jobs_live, int *streams_live);

/**
 * Claims one stopped instance that served the Jobs API (heartbeat before
 * now_ms - live_ms, not this one) and removes it from the record, in one
 * write transaction: of several instances asking at once, one gets it. The
 * claimer then drains what the broker kept for the stopped instance's session.
 * @param name receives the stopped instance's name (cap >= OTA_STORE_INSTANCE_MAX + 1).
 * @return 1 claimed; 0 none stopped; < 0 an OTA_STORE_* error.
 */
int ota_store_instance_claim_stopped(ota_store_t *store, int64_t now_ms, int64_t live_ms,
                                     char *name, size_t cap);

/**
 * Removes this handle's instance from the live ones (a clean stop).
 * @return OTA_STORE_OK; OTA_STORE_INVALID; OTA_STORE_ERROR.
 */
int ota_store_instance_leave(ota_store_t *store);

/**
 * Takes over the outbox entries of instances that are not live (no
 * heartbeat at or after now_ms - live_ms) and calls cb for each, oldest
 * first, after the write transaction that made them this instance's
 * committed: two instances never take the same entry.
 * @param n receives how many were taken (may be NULL).
 * @return OTA_STORE_OK; OTA_STORE_INVALID (no instance name); OTA_STORE_ERROR.
 */
int ota_store_outbox_adopt(ota_store_t *store, int64_t now_ms, int64_t live_ms,
                           ota_store_outbox_cb cb, void *ctx, size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* OTA_STORE_H */
