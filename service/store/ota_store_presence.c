/*
 * otter service: presence as the brokers' notices tell it, and the gaps in
 * the service's view of them. See ota_store.h.
 *
 * Two tables: presence_gaps holds each broker's gaps, numbered per broker
 * (its epoch: 0 before the first); presence holds each thing's last notice
 * per broker, with the epoch its broker was in at the notice's time (notices
 * are ordered by their times, not by when an instance writes them: one older
 * than the row changes nothing). A gap is one row, so its cost does not
 * depend on the fleet; a thing's presence on broker K is known when its last
 * notice there came in K's current epoch, and computed when it is read. A
 * row of epoch -1 is unknown from the start (a notice makes it so on the
 * federation's other brokers that have no row for it).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "ota_store.h"
#include "ota_store_internal.h"

/* Bit K for brokers 1..OTA_STORE_PRESENCE_BROKERS_MAX. */
#define BROKER_BITS ((unsigned)((1u << (OTA_STORE_PRESENCE_BROKERS_MAX + 1u)) - 2u))

/* A broker's current epoch, for broker parameter ?2. */
#define CURRENT_EPOCH "(SELECT COALESCE(MAX(epoch), 0) FROM presence_gaps WHERE broker = ?2)"

/* The epoch of a notice of time ?4 on broker ?2: the current one unless the broker's latest gap
 * is later than the notice (another instance recorded it before this notice was written), then
 * that of the last gap not later than it, or the one before the first gap kept (0 when none was
 * forgotten): unknown since the first gap after it. Read backwards on the gaps' key, it stops at
 * the latest gap for a notice newer than it. */
#define NOTICE_EPOCH                                                                               \
    "COALESCE((SELECT epoch FROM presence_gaps WHERE broker = ?2 AND at_ms <= ?4 "                 \
    "ORDER BY epoch DESC LIMIT 1), (SELECT MIN(epoch) FROM presence_gaps WHERE broker = ?2) - 1, " \
    "0)"

int ota_store_presence_gap(ota_store_t *store, unsigned mask, int64_t now_ms, int *any)
{
    if (any)
        *any = 0;
    if (!store || !(mask & BROKER_BITS))
        return store ? fail(store, OTA_STORE_INVALID, "no broker in 1..%d",
                            OTA_STORE_PRESENCE_BROKERS_MAX)
                     : OTA_STORE_INVALID;
    int rc = begin(store);
    if (rc)
        return rc;
    /* Two instances recording a gap at once make the same epoch: the same gap. Only the last
     * OTA_STORE_PRESENCE_GAPS_KEPT gaps of a broker are kept: a flapping bridge does not grow
     * the table for ever (a thing seen before them reads unknown since its last notice). */
    ota_db_stmt_t *add = NULL, *prune = NULL;
    if (!(rc = prep(store, &add,
                    "INSERT INTO presence_gaps(broker, epoch, at_ms) "
                    "SELECT ?2, " CURRENT_EPOCH
                    " + 1, ?1 WHERE 1 = 1 ON CONFLICT(broker, epoch) DO NOTHING")))
        rc =
            prep(store, &prune,
                 "DELETE FROM presence_gaps WHERE broker = ?2 AND epoch <= " CURRENT_EPOCH " - ?1");
    for (unsigned k = 1; !rc && k <= OTA_STORE_PRESENCE_BROKERS_MAX; k++) {
        if (!(mask & (1u << k)))
            continue;
        ota_db_reset(add);
        ota_db_bind_int64(add, 1, now_ms);
        ota_db_bind_int64(add, 2, k);
        rc = step_done(store, add, "record a presence gap");
        if (rc)
            break;
        ota_db_reset(prune);
        ota_db_bind_int64(prune, 1, OTA_STORE_PRESENCE_GAPS_KEPT);
        ota_db_bind_int64(prune, 2, k);
        rc = step_done(store, prune, "forget old presence gaps");
    }
    ota_db_finalize(add);
    ota_db_finalize(prune);
    int64_t n = 0;
    if (!rc && any &&
        !(rc = query_int(store, "SELECT COUNT(*) FROM (SELECT 1 FROM presence LIMIT 1) x", NULL,
                         NULL, &n)))
        *any = n > 0;
    return finish(store, rc);
}

/* Sets the thing's row on broker: online, in its notice's epoch (or -1: unknown, where it has
 * no row). Several instances write the same things, each up to a second late (the write
 * budget) or after a wait for the store: a notice older than the row leaves it as it is. */
static int put_row(ota_store_t *s, const char *thing, unsigned broker, int online, int unknown,
                   int64_t now_ms)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st,
                  unknown ? "INSERT INTO presence(thing, broker, online, epoch, at_ms) "
                            "VALUES(?1, ?2, ?3, -1, ?4) ON CONFLICT(thing, broker) DO NOTHING"
                          : "INSERT INTO presence(thing, broker, online, epoch, at_ms) "
                            "VALUES(?1, ?2, ?3, " NOTICE_EPOCH ", ?4) "
                            "ON CONFLICT(thing, broker) DO UPDATE SET online = excluded.online, "
                            "epoch = excluded.epoch, at_ms = excluded.at_ms "
                            "WHERE presence.at_ms <= excluded.at_ms");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, thing);
    ota_db_bind_int64(st, 2, broker);
    ota_db_bind_int64(st, 3, online);
    ota_db_bind_int64(st, 4, now_ms);
    rc = step_done(s, st, "record presence");
    ota_db_finalize(st);
    return rc;
}

/* Sets the thing's lastSeen to at_ms unless it is later already (a report, a request, another
 * instance's notice written first). lastSeen's time is its value. */
static int put_last_seen(ota_store_t *s, const char *thing, int64_t at_ms)
{
    char text[24];
    snprintf(text, sizeof text, "%lld", (long long)at_ms);
    ota_db_stmt_t *st;
    int rc = prep(s, &st,
                  "INSERT INTO thing_attrs(thing, key, value, updated_ms) "
                  "VALUES(?1, 'lastSeen', ?2, ?3) ON CONFLICT(thing, key) DO UPDATE SET "
                  "value = excluded.value, updated_ms = excluded.updated_ms "
                  "WHERE thing_attrs.updated_ms <= excluded.updated_ms");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, thing);
    ota_db_bind_text(st, 2, text);
    ota_db_bind_int64(st, 3, at_ms);
    rc = step_done(s, st, "set lastSeen");
    ota_db_finalize(st);
    return rc;
}

int ota_store_presence_notices(ota_store_t *store, const char *thing,
                               const ota_store_presence_note_t *notes, size_t n,
                               unsigned first_unknown)
{
    if (!store)
        return OTA_STORE_INVALID;
    int rc = check_thing_name(store, thing, "thing");
    if (rc)
        return rc;
    if (!notes || n < 1 || n > OTA_STORE_PRESENCE_BROKERS_MAX)
        return fail(store, OTA_STORE_INVALID, "1..%d notices, not %zu",
                    OTA_STORE_PRESENCE_BROKERS_MAX, notes ? n : 0);
    /* Their brokers (bit K), the first and the last of them. */
    unsigned noted = 0;
    int64_t first_ms = notes[0].at_ms, last_ms = notes[0].at_ms;
    for (size_t i = 0; i < n; i++) {
        if (notes[i].broker < 1 || notes[i].broker > OTA_STORE_PRESENCE_BROKERS_MAX)
            return fail(store, OTA_STORE_INVALID, "broker %u is not in 1..%d", notes[i].broker,
                        OTA_STORE_PRESENCE_BROKERS_MAX);
        noted |= 1u << notes[i].broker;
        first_ms = notes[i].at_ms < first_ms ? notes[i].at_ms : first_ms;
        last_ms = notes[i].at_ms > last_ms ? notes[i].at_ms : last_ms;
    }
    /* Most notices are about clients that are no thing (the service, the CLI, bridges):
     * a read refuses them without the write lock. Asked again inside the transaction, for a
     * thing deleted meanwhile. */
    int64_t found = 0;
    if ((rc = query_int(store, "SELECT COUNT(*) FROM things WHERE name = ?", thing, NULL, &found)))
        return rc;
    if (!found)
        return fail(store, OTA_STORE_NOT_FOUND, "thing '%s' not found", thing);
    if ((rc = begin(store)))
        return rc;
    rc = query_int(store, "SELECT COUNT(*) FROM things WHERE name = ?", thing, NULL, &found);
    if (!rc && !found)
        rc = fail(store, OTA_STORE_NOT_FOUND, "thing '%s' not found", thing);
    /* The brokers with a row for the thing (bit K). */
    int64_t have = 0;
    if (!rc)
        rc = query_int(store, "SELECT COALESCE(SUM(1 << broker), 0) FROM presence WHERE thing = ?",
                       thing, NULL, &have);
    /* Never a notice on those of first_unknown without a row (its first notice, a broker the
     * federation gained, a row from schema 6 on broker 1 only): unknown there, not known off,
     * since the first of these notices. */
    for (unsigned k = 1; !rc && k <= OTA_STORE_PRESENCE_BROKERS_MAX; k++)
        if ((first_unknown & (1u << k)) && !(have & (1u << k)) && !(noted & (1u << k)))
            rc = put_row(store, thing, k, 0, 1, first_ms);
    for (size_t i = 0; !rc && i < n; i++)
        rc = put_row(store, thing, notes[i].broker, notes[i].online != 0, 0, notes[i].at_ms);
    if (!rc)
        rc = put_last_seen(store, thing, last_ms);
    return finish(store, rc);
}

int ota_store_presence_notice(ota_store_t *store, const char *thing, unsigned broker, int online,
                              unsigned first_unknown, int64_t now_ms)
{
    ota_store_presence_note_t note = {.broker = broker, .online = online, .at_ms = now_ms};
    return ota_store_presence_notices(store, thing, &note, 1, first_unknown);
}

int ota_store_presence_keep_brokers(ota_store_t *store, unsigned n, int *forgot)
{
    if (forgot)
        *forgot = 0;
    if (!store)
        return OTA_STORE_INVALID;
    if (n < 1 || n > OTA_STORE_PRESENCE_BROKERS_MAX)
        return fail(store, OTA_STORE_INVALID, "a federation of %u brokers is not in 1..%d", n,
                    OTA_STORE_PRESENCE_BROKERS_MAX);
    /* Read first: most starts have nothing to forget and take no write lock. */
    ota_db_stmt_t *any;
    int rc = prep(store, &any, "SELECT 1 FROM presence WHERE broker > ? LIMIT 1");
    if (rc)
        return rc;
    ota_db_bind_int64(any, 1, n);
    int r = ota_db_step(any);
    rc = r == OTA_DB_DONE || r == OTA_DB_ROW ? 0
                                             : fail_db(store, "read the presence of brokers gone");
    ota_db_finalize(any);
    if (rc || r == OTA_DB_DONE) {
        if (!rc)
            ok(store);
        return rc;
    }
    if ((rc = begin(store)))
        return rc;
    ota_db_stmt_t *st;
    if (!(rc = prep(store, &st, "DELETE FROM presence WHERE broker > ?"))) {
        ota_db_bind_int64(st, 1, n);
        rc = step_done(store, st, "forget the presence of brokers gone");
        ota_db_finalize(st);
    }
    rc = finish(store, rc);
    if (!rc && forgot)
        *forgot = 1;
    return rc;
}

void presence_add_row(ota_store_presence_t *p, int64_t broker, int64_t online, int64_t current,
                      int64_t at_ms, int gap_null, int64_t gap_at_ms)
{
    if (broker < 1 || broker > OTA_STORE_PRESENCE_BROKERS_MAX)
        return;
    unsigned bit = 1u << (unsigned)broker;
    p->seen = 1;
    if (at_ms > p->updated_ms)
        p->updated_ms = at_ms;
    if (current) {
        if (online)
            p->on |= bit;
        return;
    }
    /* unknown since the first gap after its notice (or since the notice, for epoch -1) */
    int64_t since = gap_null ? at_ms : gap_at_ms;
    p->unknown |= bit;
    if (since > p->unknown_since_ms)
        p->unknown_since_ms = since;
}

void presence_done(ota_store_presence_t *p)
{
    if (p->unknown_since_ms > p->updated_ms)
        p->updated_ms = p->unknown_since_ms;
}

int ota_store_presence_get(ota_store_t *store, const char *thing, ota_store_presence_t *out)
{
    if (!store || !out)
        return OTA_STORE_INVALID;
    memset(out, 0, sizeof *out);
    int rc = check_thing_name(store, thing, "thing");
    if (rc)
        return rc;
    ota_db_stmt_t *st;
    rc = prep(store, &st,
              "SELECT p.broker, " PRESENCE_ROW_COLS("p", "p.broker") " FROM presence p "
                                                                     "WHERE p.thing = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, thing);
    int r;
    while ((r = ota_db_step(st)) == OTA_DB_ROW)
        presence_add_row(out, ota_db_column_int64(st, 0), ota_db_column_int64(st, 1),
                         ota_db_column_int64(st, 2), ota_db_column_int64(st, 3),
                         ota_db_column_is_null(st, 4), ota_db_column_int64(st, 4));
    presence_done(out);
    if (r != OTA_DB_DONE)
        rc = fail_db(store, "read presence");
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}

const char *ota_store_presence_connected(const ota_store_presence_t *p)
{
    return !p->seen ? NULL : p->on ? "true" : p->unknown ? "unknown" : "false";
}

void ota_store_presence_set_text(unsigned mask, char *out, size_t cap)
{
    if (!out || !cap)
        return;
    out[0] = '\0';
    size_t n = 0;
    for (unsigned k = 1; k <= OTA_STORE_PRESENCE_BROKERS_MAX; k++)
        if ((mask & (1u << k)) && n + 3 <= cap)
            n += (size_t)snprintf(out + n, cap - n, "%s%u", n ? "," : "", k);
}

int ota_store_presence_attr(const ota_store_presence_t *p, const char *key, char *out, size_t cap)
{
    const char *connected = ota_store_presence_connected(p);
    if (strcmp(key, OTA_STORE_ATTR_CONNECTED) == 0) {
        if (!connected)
            return 0;
        snprintf(out, cap, "%s", connected);
    } else if (strcmp(key, OTA_STORE_ATTR_CONNECTED_TO) == 0) {
        if (!p->on)
            return 0;
        ota_store_presence_set_text(p->on, out, cap);
    } else if (strcmp(key, OTA_STORE_ATTR_UNKNOWN_ON) == 0) {
        if (!p->unknown)
            return 0;
        ota_store_presence_set_text(p->unknown, out, cap);
    } else {
        return 0;
    }
    return 1;
}

int ota_store_presence_computed(const char *key)
{
    return key && (strcmp(key, OTA_STORE_ATTR_CONNECTED) == 0 ||
                   strcmp(key, OTA_STORE_ATTR_CONNECTED_TO) == 0 ||
                   strcmp(key, OTA_STORE_ATTR_UNKNOWN_ON) == 0);
}
