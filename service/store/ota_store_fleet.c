/*
 * otter service: thing attributes and the targeting rules built on them
 * (device types, "already on the target version"). See ota_store.h.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ota_store.h"
#include "otter/ota_version.h"
#include "ota_store_internal.h"

/* ------------------------------------------------------------------------ */
/* Checks                                                                   */
/* ------------------------------------------------------------------------ */

static int chars_ok(const char *s, size_t max, const char *extra)
{
    if (!s || !*s || strlen(s) > max)
        return 0;
    for (const char *c = s; *c; c++) {
        int alnum =
            (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
        if (!alnum && !strchr(extra, *c))
            return 0;
    }
    return 1;
}

int ota_store_new_name_ok(const char *name)
{
    return name && name[0] != '-';
}

int ota_store_valid_attr_key(const char *key)
{
    return chars_ok(key, OTA_STORE_ATTR_KEY_MAX, "_");
}

int ota_store_valid_attr_value(const char *value)
{
    if (!value || !*value || strlen(value) > OTA_STORE_ATTR_VALUE_MAX)
        return 0;
    for (const char *c = value; *c; c++)
        if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\')
            return 0;
    return 1;
}

int ota_store_valid_device_type(const char *name)
{
    return chars_ok(name, OTA_STORE_DEVICE_TYPE_MAX, "_.-");
}

int ota_store_valid_version(const char *v)
{
    uint32_t version;
    return ota_version_parse(v, &version) == 0;
}

int ota_store_valid_device_types(const char *list)
{
    if (!list || !*list || strlen(list) > OTA_STORE_DEVICE_TYPES_MAX)
        return 0;
    char copy[OTA_STORE_DEVICE_TYPES_MAX + 1];
    const char *names[16];
    size_t n = 0;
    snprintf(copy, sizeof copy, "%s", list);
    for (char *start = copy;;) {
        char *comma = strchr(start, ',');
        if (comma)
            *comma = '\0';
        if (!ota_store_valid_device_type(start) || n == 16)
            return 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp(names[i], start) == 0)
                return 0;
        names[n++] = start;
        if (!comma)
            return 1;
        start = comma + 1;
    }
}

/* ------------------------------------------------------------------------ */
/* Skipping what a thing does not need                                      */
/* ------------------------------------------------------------------------ */

/* statusDetails of a skip for execution e (NULL when e is needed), as SQL over
 * jobs j. Attribute values are checked on the way in (no '"' or '\'), so the
 * text is valid JSON. */
#define SKIP_VERDICT                                                                               \
    "(SELECT CASE WHEN j.device_types <> '' AND NOT EXISTS (SELECT 1 FROM thing_attrs a "          \
    "WHERE a.thing = e.thing AND a.key = 'deviceType' AND "                                        \
    "instr(',' || j.device_types || ',', ',' || a.value || ',') > 0) "                             \
    "THEN '{\"skipped\":\"device type ' || COALESCE((SELECT a.value FROM thing_attrs a "           \
    "WHERE a.thing = e.thing AND a.key = 'deviceType'), 'unknown') || "                            \
    "' is not one of ' || j.device_types || '\"}' "                                                \
    "WHEN j.target_version <> '' AND EXISTS (SELECT 1 FROM thing_attrs a WHERE "                   \
    "a.thing = e.thing AND a.key = 'firmwareVersion' AND a.value = j.target_version) "             \
    "THEN '{\"skipped\":\"already on ' || j.target_version || '\"}' END "                          \
    "FROM jobs j WHERE j.id = e.job)"

/* A skipped (job, thing) pair. */
typedef char skip_row_t[2][OTA_STORE_THING_NAME_MAX + 1];

/* Appends a pair to rows (grown as needed); OTA_STORE_ERROR when out of memory. */
static int skip_row_add(ota_store_t *s, skip_row_t **rows, size_t *n, size_t *cap,
                        ota_db_stmt_t *st)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        void *p = realloc(*rows, ncap * sizeof **rows);
        if (!p)
            return fail(s, OTA_STORE_ERROR, "out of memory");
        *rows = p;
        *cap = ncap;
    }
    copy_col((*rows)[*n][0], sizeof(*rows)[*n][0], st, 0);
    copy_col((*rows)[*n][1], sizeof(*rows)[*n][1], st, 1);
    (*n)++;
    return OTA_STORE_OK;
}

/* Binds the job and thing filters (?1, ?2; NULL: any). */
static void skip_bind(ota_db_stmt_t *st, const char *job_id, const char *thing)
{
    if (job_id)
        ota_db_bind_text(st, 1, job_id);
    if (thing)
        ota_db_bind_text(st, 2, thing);
}

/* Skips the queued executions whose thing reports a newer version than the
 * job's: the device would download the image only to refuse it as a
 * downgrade. Only versions that both parse are compared (in C: the SQL of
 * both back-ends cannot compare X.Y.Z safely); the pairs skipped are added to
 * rows. */
static int skip_downgrades(ota_store_t *s, const char *job_id, const char *thing, int64_t now_ms,
                           skip_row_t **rows, size_t *n, size_t *cap)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st,
                  "SELECT e.job, e.thing, j.target_version, a.value FROM executions e "
                  "JOIN jobs j ON j.id = e.job JOIN thing_attrs a ON a.thing = e.thing AND "
                  "a.key = 'firmwareVersion' WHERE e.status = " EX_QUEUED " AND "
                  "(?1 IS NULL OR e.job = ?1) AND (?2 IS NULL OR e.thing = ?2) AND "
                  "j.target_version <> '' AND a.value <> j.target_version");
    if (rc)
        return rc;
    skip_bind(st, job_id, thing);
    size_t first = *n;
    /* why each pair is skipped, beside rows */
    char(*why)[96] = NULL;
    size_t why_cap = 0;
    int r = OTA_DB_DONE;
    while (!rc && (r = ota_db_step(st)) == OTA_DB_ROW) {
        char want[OTA_STORE_VERSION_MAX + 1], have[OTA_STORE_ATTR_VALUE_MAX + 1];
        uint32_t w, h;
        copy_col(want, sizeof want, st, 2);
        copy_col(have, sizeof have, st, 3);
        if (ota_version_parse(want, &w) != 0 || ota_version_parse(have, &h) != 0 || h <= w)
            continue;
        if ((rc = skip_row_add(s, rows, n, cap, st)))
            break;
        if (why_cap < *cap) {
            void *p = realloc(why, *cap * sizeof *why);
            if (!p) {
                rc = fail(s, OTA_STORE_ERROR, "out of memory");
                break;
            }
            why = p;
            why_cap = *cap;
        }
        char hv[OTA_VERSION_TEXT_MAX], wv[OTA_VERSION_TEXT_MAX];
        ota_version_format(h, hv);
        ota_version_format(w, wv);
        snprintf(why[*n - 1], sizeof why[0], "{\"skipped\":\"runs %s, newer than %s\"}", hv, wv);
    }
    if (!rc && r != OTA_DB_DONE)
        rc = fail_db(s, "find downgrades");
    ota_db_finalize(st);
    for (size_t i = first; !rc && i < *n; i++) {
        if ((rc = prep(s, &st,
                       "UPDATE executions SET status = " EX_SKIPPED ", released = 1, "
                       "version = version + 1, updated_ms = ?, deadline_ms = 0, details = ? "
                       "WHERE job = ? AND thing = ? AND status = " EX_QUEUED)))
            break;
        ota_db_bind_int64(st, 1, now_ms);
        ota_db_bind_text(st, 2, why[i]);
        ota_db_bind_text(st, 3, (*rows)[i][0]);
        ota_db_bind_text(st, 4, (*rows)[i][1]);
        rc = step_done(s, st, "skip a downgrade");
        ota_db_finalize(st);
    }
    free(why);
    return rc;
}

int ota_store_skip_unneeded(ota_store_t *s, const char *job_id, const char *thing, int64_t now_ms)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st,
                  "UPDATE executions AS e SET status = " EX_SKIPPED
                  ", released = 1, version = version + 1, "
                  "updated_ms = ?3, deadline_ms = 0, details = " SKIP_VERDICT " "
                  "WHERE e.status = " EX_QUEUED " AND (?1 IS NULL OR e.job = ?1) "
                  "AND (?2 IS NULL OR e.thing = ?2) AND " SKIP_VERDICT " IS NOT NULL "
                  "RETURNING job, thing");
    if (rc)
        return rc;
    skip_bind(st, job_id, thing);
    ota_db_bind_int64(st, 3, now_ms);
    /* Collect what changed before writing more (RETURNING rows come first). */
    size_t n = 0, cap = 0;
    skip_row_t *rows = NULL;
    int r = OTA_DB_DONE;
    while (!rc && (r = ota_db_step(st)) == OTA_DB_ROW)
        rc = skip_row_add(s, &rows, &n, &cap, st);
    if (!rc && r != OTA_DB_DONE)
        rc = fail_db(s, "skip executions");
    ota_db_finalize(st);
    if (!rc)
        rc = skip_downgrades(s, job_id, thing, now_ms, &rows, &n, &cap);
    for (size_t i = 0; !rc && i < n; i++) {
        rc = bump_thing(s, rows[i][1]);
        if (!rc && (i == 0 || strcmp(rows[i][0], rows[i - 1][0]) != 0))
            rc = recheck_job(s, rows[i][0], now_ms);
    }
    /* a job seen again later in the list is rechecked twice: harmless */
    free(rows);
    return rc;
}

int attr_put(ota_store_t *s, const char *thing, const char *key, const char *value, int64_t now_ms)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st,
                  "INSERT INTO thing_attrs(thing, key, value, updated_ms) VALUES(?, ?, ?, ?) "
                  "ON CONFLICT(thing, key) DO UPDATE SET value = excluded.value, "
                  "updated_ms = excluded.updated_ms");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, thing);
    ota_db_bind_text(st, 2, key);
    ota_db_bind_text(st, 3, value);
    ota_db_bind_int64(st, 4, now_ms);
    rc = step_done(s, st, "set attribute");
    ota_db_finalize(st);
    return rc;
}

int ota_store_learn_version(ota_store_t *s, const char *job_id, const char *thing, int64_t now_ms)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st, "SELECT target_version FROM jobs WHERE id = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, job_id);
    char version[OTA_STORE_VERSION_MAX + 1] = "";
    if (ota_db_step(st) == OTA_DB_ROW)
        copy_col(version, sizeof version, st, 0);
    ota_db_finalize(st);
    if (!ota_store_valid_version(version))
        return OTA_STORE_OK; /* a job without a version says nothing about the thing */
    rc = attr_put(s, thing, OTA_STORE_ATTR_FIRMWARE_VERSION, version, now_ms);
    return rc ? rc : ota_store_skip_unneeded(s, NULL, thing, now_ms);
}

/* ------------------------------------------------------------------------ */
/* Attributes                                                               */
/* ------------------------------------------------------------------------ */

const char *ota_store_attr_owner(const char *key)
{
    static const struct {
        const char *key, *owner;
    } owned[] = {
        {"connected", "presence, kept from the brokers' notices"},
        {"connectedTo", "presence, kept from the brokers' notices"},
        {"presenceUnknownOn", "presence, kept from the brokers' notices"},
        {"lastSeen", "written by the service when it hears from the thing (connection notices, "
                     "inventory reports, Jobs requests)"},
        {"disabled", "the broker's word; use 'otter thing disable' or 'otter thing enable'"},
        {"revoked", "written by 'otter thing revoke'; 'otter thing delete' forgets the thing"},
        {"credentialsRotated", "written by 'otter thing rotate'"},
    };
    for (size_t i = 0; key && i < sizeof owned / sizeof owned[0]; i++)
        if (strcmp(key, owned[i].key) == 0)
            return owned[i].owner;
    return NULL;
}

/* Sets or removes an attribute; by_service lets the service's own keys through (not the
 * computed presence ones, which are never stored). */
static int attr_set(ota_store_t *store, const char *thing, const char *key, const char *value,
                    int64_t now_ms, int by_service)
{
    if (!store)
        return OTA_STORE_INVALID;
    int rc = check_thing_name(store, thing, "thing");
    if (rc)
        return rc;
    if (!ota_store_valid_attr_key(key))
        return fail(store, OTA_STORE_INVALID, "invalid attribute key (1..%d of [A-Za-z0-9_])",
                    OTA_STORE_ATTR_KEY_MAX);
    if (value && !ota_store_valid_attr_value(value))
        return fail(store, OTA_STORE_INVALID,
                    "invalid value of '%s' (1..%d printable characters, no '\"' or '\\')", key,
                    OTA_STORE_ATTR_VALUE_MAX);
    const char *owner = ota_store_attr_owner(key);
    if (owner && (!by_service || ota_store_presence_computed(key)))
        return fail(store, OTA_STORE_INVALID, "'%s' is %s; it cannot be set or unset", key, owner);
    if (value && strcmp(key, OTA_STORE_ATTR_DEVICE_TYPE) == 0 &&
        !ota_store_valid_device_type(value))
        return fail(store, OTA_STORE_INVALID, "invalid device type '%s' (1..%d of [A-Za-z0-9_.-])",
                    value, OTA_STORE_DEVICE_TYPE_MAX);
    if (value && strcmp(key, OTA_STORE_ATTR_FIRMWARE_VERSION) == 0 &&
        !ota_store_valid_version(value))
        return fail(store, OTA_STORE_INVALID, "invalid version '%s' (X.Y.Z)", value);
    if ((rc = begin(store)))
        return rc;
    int64_t n = 0;
    rc = query_int(store, "SELECT COUNT(*) FROM things WHERE name = ?", thing, NULL, &n);
    if (!rc && !n)
        rc = fail(store, OTA_STORE_NOT_FOUND, "thing '%s' not found", thing);
    if (!rc && value) {
        /* the attributes the service writes (ota_store_attr_owner()) do not count: a thing
         * with its other attributes at the limit still has its presence and state recorded */
        rc = query_int(store,
                       "SELECT COUNT(*) FROM thing_attrs WHERE thing = ?1 AND key <> ?2 AND key "
                       "NOT IN ('connected', 'connectedTo', 'presenceUnknownOn', 'lastSeen', "
                       "'disabled', 'revoked', 'credentialsRotated')",
                       thing, key, &n);
        if (!rc && !owner && n >= OTA_STORE_ATTRS_MAX)
            rc = fail(store, OTA_STORE_INVALID, "thing '%s' has %d attributes already", thing,
                      OTA_STORE_ATTRS_MAX);
        if (!rc)
            rc = attr_put(store, thing, key, value, now_ms);
    } else if (!rc) {
        ota_db_stmt_t *st;
        if (!(rc = prep(store, &st, "DELETE FROM thing_attrs WHERE thing = ? AND key = ?"))) {
            ota_db_bind_text(st, 1, thing);
            ota_db_bind_text(st, 2, key);
            rc = step_done(store, st, "remove attribute");
            ota_db_finalize(st);
            if (!rc && ota_db_changes(store->db) == 0)
                rc = fail(store, OTA_STORE_NOT_FOUND, "thing '%s' has no attribute '%s'", thing,
                          key);
        }
    }
    /* dynamic groups follow attributes, and targeting the thing's type and version; neither
     * follows presence */
    if (!rc && !ota_store_presence_key(key))
        rc = ota_store_continuous_sync(store, thing, now_ms);
    if (!rc && !ota_store_presence_key(key))
        rc = ota_store_skip_unneeded(store, NULL, thing, now_ms);
    return finish(store, rc);
}

int ota_store_thing_attr_set(ota_store_t *store, const char *thing, const char *key,
                             const char *value, int64_t now_ms)
{
    return attr_set(store, thing, key, value, now_ms, 0);
}

int ota_store_thing_service_attr_set(ota_store_t *store, const char *thing, const char *key,
                                     const char *value, int64_t now_ms)
{
    return attr_set(store, thing, key, value, now_ms, 1);
}

int ota_store_thing_attr_get(ota_store_t *store, const char *thing, const char *key, char *out,
                             size_t cap)
{
    if (!store || !out || cap == 0)
        return OTA_STORE_INVALID;
    *out = '\0';
    if (!ota_store_valid_thing_name(thing) || !ota_store_valid_attr_key(key))
        return fail(store, OTA_STORE_INVALID, "invalid thing name or attribute key");
    if (ota_store_presence_computed(key)) {
        ota_store_presence_t p;
        int rc = ota_store_presence_get(store, thing, &p);
        if (rc)
            return rc;
        return ota_store_presence_attr(&p, key, out, cap)
                   ? OTA_STORE_OK
                   : fail(store, OTA_STORE_NOT_FOUND, "thing '%s' has no attribute '%s'", thing,
                          key);
    }
    ota_db_stmt_t *st;
    int rc = prep(store, &st, "SELECT value FROM thing_attrs WHERE thing = ? AND key = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, thing);
    ota_db_bind_text(st, 2, key);
    int r = ota_db_step(st);
    if (r == OTA_DB_ROW) {
        copy_col(out, cap, st, 0);
        ok(store);
    } else if (r == OTA_DB_DONE) {
        rc = fail(store, OTA_STORE_NOT_FOUND, "thing '%s' has no attribute '%s'", thing, key);
    } else {
        rc = fail_db(store, "get attribute");
    }
    ota_db_finalize(st);
    return rc;
}

int presence_attrs_before(const ota_store_presence_t *p, size_t *next, const char *key,
                          ota_store_attr_cb cb, void *ctx)
{
    /* the computed presence attributes in key order (bytes: the database's collation might be
     * a language's, and strcmp() is what the merge compares with) */
    static const char *const computed[] = {OTA_STORE_ATTR_CONNECTED, OTA_STORE_ATTR_CONNECTED_TO,
                                           OTA_STORE_ATTR_UNKNOWN_ON};
    char v[OTA_STORE_ATTR_VALUE_MAX + 1];
    int stop = 0;
    for (; !stop && *next < 3 && (!key || strcmp(computed[*next], key) < 0); (*next)++)
        if (ota_store_presence_attr(p, computed[*next], v, sizeof v))
            stop = cb(ctx, computed[*next], v, *next == 2 ? p->unknown_since_ms : p->updated_ms);
    return stop;
}

int ota_store_thing_attr_list(ota_store_t *store, const char *thing, ota_store_attr_cb cb,
                              void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    int rc = check_thing_name(store, thing, "thing");
    if (rc)
        return rc;
    ota_store_presence_t p;
    if ((rc = ota_store_presence_get(store, thing, &p)))
        return rc;
    size_t next = 0;
    ota_db_stmt_t *st;
    if ((rc = prep(store, &st,
                   "SELECT key, value, updated_ms FROM thing_attrs WHERE thing = ? "
                   "ORDER BY key COLLATE \"C\"")))
        return rc;
    ota_db_bind_text(st, 1, thing);
    int r = OTA_DB_DONE, stop = 0;
    while (!stop && (r = ota_db_step(st)) == OTA_DB_ROW) {
        const char *key = ota_db_column_text(st, 0);
        if (ota_store_presence_computed(key))
            continue; /* never stored since schema 7 */
        stop = presence_attrs_before(&p, &next, key, cb, ctx);
        if (!stop)
            stop = cb(ctx, key, ota_db_column_text(st, 1), ota_db_column_int64(st, 2));
    }
    if (!stop && r == OTA_DB_DONE)
        stop = presence_attrs_before(&p, &next, NULL, cb, ctx);
    if (!stop && r != OTA_DB_ROW && r != OTA_DB_DONE)
        rc = fail_db(store, "list attributes");
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}
