/*
 * Unit tests of presence in the inventory module, without a broker: Mosquitto's connection
 * notices (as Mosquitto 2.0.11 writes them) are handed in with the time, and the thing's
 * attributes are read back from a SQLite store in a temporary folder.
 */
#define _XOPEN_SOURCE 700

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "ota_store.h"
#include "ota_svc_inventory.h"
#include "ota_svc_presence_pace.h"

typedef struct {
    char dir[64];
    ota_store_t *store;
    ota_svc_inventory_t *inv;
    int64_t now;
} fx_t;

static int no_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos)
{
    (void)ctx;
    (void)topic;
    (void)payload;
    (void)len;
    (void)qos;
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A service run: the module on the store, n brokers, connected to broker own. */
static void start(fx_t *fx, unsigned n, unsigned own)
{
    fx->inv = ota_svc_inventory_create(fx->store, no_publish, fx);
    assert_non_null(fx->inv);
    ota_svc_inventory_set_brokers(fx->inv, n);
    ota_svc_inventory_set_broker(fx->inv, own);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/otter-inventory-test-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    assert_int_equal(ota_store_open(fx->dir, &fx->store), OTA_STORE_OK);
    fx->now = 1790000000000;
    static const char *const things[] = {"t1", "t2", "t3"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(ota_store_thing_create(fx->store, things[i], fx->now), OTA_STORE_OK);
    }
    start(fx, 3, 1);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    ota_svc_inventory_destroy(fx->inv);
    ota_store_close(fx->store);
    nftw(fx->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* One notice of broker k (0: the service's own broker, on $SYS), a second later. */
static void notice(fx_t *fx, unsigned k, const char *text)
{
    char topic[64], line[400];
    if (k == 0) {
        snprintf(topic, sizeof topic, "$SYS/broker/log/N");
    } else {
        snprintf(topic, sizeof topic, OTA_SVC_INVENTORY_PRESENCE_PREFIX "%u/log/N", k);
    }
    fx->now += 1000;
    snprintf(line, sizeof line, "%lld: %s", (long long)(fx->now / 1000), text);
    assert_int_equal(ota_svc_inventory_handle(fx->inv, topic, line, strlen(line), fx->now), 1);
}

static void connects(fx_t *fx, unsigned k, const char *thing)
{
    char text[200];
    snprintf(text, sizeof text,
             "New client connected from 127.0.0.1:40000 as %s (p2, c1, k60, u'%s').", thing, thing);
    notice(fx, k, text);
}

static void leaves(fx_t *fx, unsigned k, const char *thing)
{
    char text[200];
    snprintf(text, sizeof text, "Client %s disconnected.", thing);
    notice(fx, k, text);
}

/* Broker n's bridge connecting, in broker k's notices (0: the service's own). */
static void bridge_joins(fx_t *fx, unsigned k, unsigned n)
{
    char text[200];
    snprintf(text, sizeof text,
             "New bridge connected from 127.0.0.1:5 as otter-service-federation-%u (p2, c1, k10, "
             "u'otter-service-federation-%u').",
             n, n);
    notice(fx, k, text);
}

/* A thing known off on every broker (1 on $SYS, 2 and 3 bridged). */
static void known_off(fx_t *fx, const char *thing)
{
    for (unsigned k = 0; k <= 3; k++) {
        if (k != 1) {
            leaves(fx, k, thing);
        }
    }
}

/* A thing's attribute, "-" when unset. */
static const char *attr(fx_t *fx, const char *thing, const char *key)
{
    static char v[OTA_STORE_ATTR_VALUE_MAX + 1];
    if (ota_store_thing_attr_get(fx->store, thing, key, v, sizeof v) != OTA_STORE_OK) {
        snprintf(v, sizeof v, "-");
    }
    return v;
}

/* connected, connectedTo and presenceUnknownOn of a thing. */
static void expect(fx_t *fx, const char *thing, const char *connected, const char *to,
                   const char *unknown)
{
    char got[3][OTA_STORE_ATTR_VALUE_MAX + 1];
    snprintf(got[0], sizeof got[0], "%s", attr(fx, thing, "connected"));
    snprintf(got[1], sizeof got[1], "%s", attr(fx, thing, OTA_SVC_INVENTORY_ATTR_CONNECTED_TO));
    snprintf(got[2], sizeof got[2], "%s", attr(fx, thing, OTA_SVC_INVENTORY_ATTR_UNKNOWN_ON));
    if (strcmp(got[0], connected) != 0 || strcmp(got[1], to) != 0 || strcmp(got[2], unknown) != 0) {
        fail_msg("%s: connected %s, connectedTo %s, presenceUnknownOn %s; expected %s, %s, %s",
                 thing, got[0], got[1], got[2], connected, to, unknown);
    }
}

/* A service restart: the store stays, the module is new, and its start is a gap. */
static void restart(fx_t *fx)
{
    ota_svc_inventory_destroy(fx->inv);
    start(fx, 3, 1);
    fx->now += 5000;
    assert_true(ota_svc_inventory_gap(fx->inv, OTA_SVC_INVENTORY_ALL, "test", fx->now) >= 0);
}

/* Online, a gap, unknown, the next notice makes it known again (either way). */
static void test_gap_then_known(void **state)
{
    fx_t *fx = *state;
    connects(fx, 0, "t1");
    const int64_t t1_seen = fx->now;
    connects(fx, 0, "t2");
    leaves(fx, 0, "t2");
    /* first seen on broker 1: its notices on 2 and 3 were never seen */
    expect(fx, "t1", "true", "1", "2,3");
    expect(fx, "t2", "unknown", "-", "2,3");
    leaves(fx, 2, "t2");
    expect(fx, "t2", "unknown", "-", "3");
    leaves(fx, 3, "t2");
    expect(fx, "t2", "false", "-", "-"); /* known off on every broker */
    expect(fx, "t3", "-", "-", "-");     /* never seen: nothing claimed */
    assert_int_equal(ota_svc_inventory_stream_since(fx->inv, 2), 0);

    restart(fx);
    expect(fx, "t1", "unknown", "-", "1,2,3");
    expect(fx, "t2", "unknown", "-", "1,2,3");
    expect(fx, "t3", "-", "-", "-");
    for (unsigned k = 1; k <= 3; k++) {
        assert_int_equal(ota_svc_inventory_stream_since(fx->inv, k), fx->now);
    }
    /* lastSeen still says when presence was last learned */
    assert_int_equal(strtoll(attr(fx, "t1", "lastSeen"), NULL, 10), t1_seen);

    /* a second gap: nothing more to make unknown, and the same view */
    fx->now += 1000;
    assert_int_equal(ota_svc_inventory_gap(fx->inv, OTA_SVC_INVENTORY_ALL, "test", fx->now), 0);

    /* t1 connects on broker 3: known online there, still unknown on 1 and 2 */
    connects(fx, 3, "t1");
    expect(fx, "t1", "true", "3", "1,2");
    leaves(fx, 3, "t1");
    expect(fx, "t1", "unknown", "-", "1,2"); /* it may still be on 1 or 2 */
    connects(fx, 0, "t1");
    leaves(fx, 0, "t1");
    notice(fx, 2, "Socket error on client t1, disconnecting.");
    expect(fx, "t1", "false", "-", "-"); /* known off everywhere again */
    assert_int_equal(strtoll(attr(fx, "t1", "lastSeen"), NULL, 10), fx->now);
}

/* A spoke's bridge going away makes only that broker's things unknown; a thing known online on
 * another broker stays online. */
static void test_bridge_down_marks_its_broker(void **state)
{
    fx_t *fx = *state;
    known_off(fx, "t1");
    known_off(fx, "t2");
    known_off(fx, "t3");
    connects(fx, 3, "t1"); /* on broker 3 only */
    connects(fx, 3, "t2");
    connects(fx, 0, "t2"); /* on broker 3 and hub 1 */
    connects(fx, 2, "t3"); /* on hub 2 */
    expect(fx, "t2", "true", "1,3", "-");
    notice(fx, 0, "Client otter-service-federation-3 closed its connection.");
    expect(fx, "t1", "unknown", "-", "3");
    expect(fx, "t2", "true", "1", "3");
    expect(fx, "t3", "true", "2", "3"); /* it may have connected to 3 meanwhile */
    assert_int_equal(ota_svc_inventory_stream_since(fx->inv, 3), fx->now);
    assert_int_equal(ota_svc_inventory_stream_since(fx->inv, 2), 0);
    /* the bridge back (on hub 2, relayed): a gap for 3 again; t1 learned anew stays known */
    bridge_joins(fx, 2, 3);
    connects(fx, 3, "t1");
    expect(fx, "t1", "true", "3", "-");
    leaves(fx, 0, "t2");
    expect(fx, "t2", "unknown", "-", "3");
}

/* Hub 1's own bridge (between the hubs) carries every stream but the service's broker's. */
static void test_hub_bridge(void **state)
{
    fx_t *fx = *state;
    known_off(fx, "t1");
    known_off(fx, "t2");
    known_off(fx, "t3");
    connects(fx, 0, "t1");
    connects(fx, 2, "t2");
    connects(fx, 3, "t3");
    notice(fx, 0, "Client otter-service-federation-local closed its connection.");
    expect(fx, "t1", "true", "1", "2,3");
    expect(fx, "t2", "unknown", "-", "2,3");
    expect(fx, "t3", "unknown", "-", "2,3");
    connects(fx, 2, "t2");
    expect(fx, "t2", "true", "2", "3");
    notice(fx, 0, "Connecting bridge (step 1) otter-federation (127.0.0.1:21884)");
    expect(fx, "t2", "unknown", "-", "2,3");
    expect(fx, "t1", "true", "1", "2,3");

    /* the service on hub 2: hub 1's bridge leaving hub 2 is a gap for 1 and 3, not 2 */
    ota_svc_inventory_set_broker(fx->inv, 2);
    connects(fx, 0, "t2");
    notice(fx, 0, "Client otter-service-federation-1 closed its connection.");
    expect(fx, "t2", "true", "2", "1,3");
    expect(fx, "t1", "unknown", "-", "1,2,3");
}

/* No device makes others unknown or forges presence: failed logins under a bridge's or a
 * thing's id, the shared-streams bridge, another login's connect, a report of "connected". */
static void test_no_forgery(void **state)
{
    fx_t *fx = *state;
    known_off(fx, "t1");
    known_off(fx, "t2");
    connects(fx, 0, "t1");
    connects(fx, 3, "t2");
    int64_t since = ota_svc_inventory_stream_since(fx->inv, 3);
    static const char *const hostile[] = {
        "Client otter-service-federation-3 disconnected, not authorised.",
        "Client <unknown> disconnected, not authorised.",
        "Client otter-service-federation-3 disconnected due to using not allowed feature (QoS "
        "too high, retain not supported, or bad AUTH method).",
        "New client connected from 127.0.0.1:6 as otter-service-federation-3 (p2, c1, k60, "
        "u't3').",
        "Client t1 disconnected, not authorised.",
        "Client t1 already connected, closing old connection.",
        "New client connected from 127.0.0.1:7 as t3 (p2, c1, k60, u't1').",
        "Connecting bridge (step 1) otter-shared-streams (127.0.0.1:1883)",
        "Client otter-service-federation-9 closed its connection.",
        "Client otter-service-federation-33 closed its connection.",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        notice(fx, 0, hostile[i]);
    }
    expect(fx, "t1", "true", "1", "-");
    expect(fx, "t2", "true", "3", "-");
    expect(fx, "t3", "-", "-", "-");
    assert_int_equal(ota_svc_inventory_stream_since(fx->inv, 3), since);
    /* a topic of a broker out of range is not presence */
    const char *line = "1: Client t1 disconnected.";
    assert_int_equal(
        ota_svc_inventory_handle(fx->inv, "otter-presence/9/log/N", line, strlen(line), fx->now),
        1);
    expect(fx, "t1", "true", "1", "-");
    /* a device's own report of "connected" is accepted and not taken for presence */
    const char *rep = "{\"state\":{\"reported\":{\"connected\":false}}}";
    assert_int_equal(ota_svc_inventory_handle(fx->inv, "$aws/things/t1/shadow/update", rep,
                                              strlen(rep), fx->now),
                     1);
    expect(fx, "t1", "true", "1", "-");
    rep = "{\"state\":{\"reported\":{\"connected\":true}}}";
    assert_int_equal(ota_svc_inventory_handle(fx->inv, "$aws/things/t3/shadow/update", rep,
                                              strlen(rep), fx->now),
                     1);
    expect(fx, "t3", "-", "-", "-");
}

/* A thing first seen is unknown on every other broker (its notices there were never seen),
 * also while a broker's stream has a gap, and offline only once known off on every broker. */
static void test_first_seen_unknown_elsewhere(void **state)
{
    fx_t *fx = *state;
    fx->now += 1000;
    assert_true(ota_svc_inventory_gap(fx->inv, OTA_SVC_INVENTORY_ALL, "start", fx->now) >= 0);
    notice(fx, 0, "Client otter-service-federation-3 closed its connection.");
    connects(fx, 0, "t1");
    expect(fx, "t1", "true", "1", "2,3");
    leaves(fx, 0, "t1"); /* it may have moved to broker 3, whose notices are lost */
    expect(fx, "t1", "unknown", "-", "2,3");
    bridge_joins(fx, 0, 3);
    expect(fx, "t1", "unknown", "-", "2,3");
    connects(fx, 3, "t1");
    expect(fx, "t1", "true", "3", "2");
    leaves(fx, 3, "t1");
    expect(fx, "t1", "unknown", "-", "2");
    leaves(fx, 2, "t1");
    expect(fx, "t1", "false", "-", "-");
    /* first seen on a spoke, by its disconnect */
    leaves(fx, 3, "t2");
    expect(fx, "t2", "unknown", "-", "1,2");
    /* with one broker, nothing else to be unknown on */
    ota_svc_inventory_destroy(fx->inv);
    start(fx, 1, 1);
    connects(fx, 0, "t3");
    leaves(fx, 0, "t3");
    expect(fx, "t3", "false", "-", "-");
}

/* The bridge between the hubs down (the service on hub 1): its loss is one gap, its retries
 * every 1-3 s are not more, so what is learned meanwhile from the streams that still flow
 * stays known; a sign of the bridge up again (the other hub's notices) ends the gap. */
static void test_hub_bridge_retries_one_gap(void **state)
{
    fx_t *fx = *state;
    static const char retry[] = "Connecting bridge (step 1) otter-federation (127.0.0.1:21884)";
    known_off(fx, "t1");
    known_off(fx, "t2");
    known_off(fx, "t3");
    connects(fx, 3, "t1"); /* on spoke 3, bridged to hub 1 */
    connects(fx, 2, "t2"); /* on hub 2 */
    notice(fx, 0, "Client otter-service-federation-local closed its connection.");
    const int64_t since = ota_svc_inventory_stream_since(fx->inv, 2);
    assert_int_equal(since, fx->now);
    expect(fx, "t1", "unknown", "-", "2,3");
    expect(fx, "t2", "unknown", "-", "2,3");
    leaves(fx, 3, "t1"); /* spoke 3's notices still flow through hub 1 */
    connects(fx, 3, "t1");
    for (int r = 0; r < 3; r++) {
        notice(fx, 0, retry);
        expect(fx, "t1", "true", "3", "2");
        assert_int_equal(ota_svc_inventory_stream_since(fx->inv, 2), since);
    }
    /* hub 2's notices again: the bridge is up; a retry after that is a new gap */
    connects(fx, 2, "t3");
    expect(fx, "t3", "true", "2", "3");
    notice(fx, 0, retry);
    expect(fx, "t3", "unknown", "-", "2,3");
    expect(fx, "t1", "unknown", "-", "2,3");
    assert_int_equal(ota_svc_inventory_stream_since(fx->inv, 2), fx->now);
    connects(fx, 3, "t1");
    notice(fx, 0, retry);
    expect(fx, "t1", "true", "3", "2");
    /* hub 1's bridge back on hub 2: one walk for what was missed, and the gap is over */
    bridge_joins(fx, 2, 1);
    expect(fx, "t1", "unknown", "-", "2,3");
    connects(fx, 3, "t1");
    notice(fx, 0, retry);
    expect(fx, "t1", "unknown", "-", "2,3");
}

/* Makes every write of presence fail (on) or work again (off), as a database that refuses
 * writes does, through another connection to the store's file. */
static void attr_writes_fail(fx_t *fx, int on)
{
    char path[128];
    sqlite3 *db;
    snprintf(path, sizeof path, "%s/otter.db", fx->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    const char *sql = on ? "CREATE TRIGGER no_insert BEFORE INSERT ON presence BEGIN SELECT "
                           "RAISE(ABORT, 'refused'); END; CREATE TRIGGER no_update BEFORE UPDATE "
                           "ON presence BEGIN SELECT RAISE(ABORT, 'refused'); END; "
                           "CREATE TRIGGER no_gap BEFORE INSERT ON presence_gaps BEGIN SELECT "
                           "RAISE(ABORT, 'refused'); END;"
                         : "DROP TRIGGER no_insert; DROP TRIGGER no_update; DROP TRIGGER no_gap;";
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* A disconnect the store could not take is no silent loss: the thing is made unknown on that
 * broker as soon as the store takes writes again (the tick retries each second). */
static void test_lost_write_is_a_gap(void **state)
{
    fx_t *fx = *state;
    ota_svc_inventory_set_brokers(fx->inv, 1);
    connects(fx, 0, "t1");
    expect(fx, "t1", "true", "1", "-");
    attr_writes_fail(fx, 1);
    leaves(fx, 0, "t1"); /* lost */
    assert_int_equal(ota_svc_inventory_tick(fx->inv, fx->now + 1000), -1);
    expect(fx, "t1", "true", "1", "-");
    attr_writes_fail(fx, 0);
    assert_int_equal(ota_svc_inventory_tick(fx->inv, fx->now + 1500), 0); /* within a second */
    expect(fx, "t1", "true", "1", "-");
    assert_int_equal(ota_svc_inventory_tick(fx->inv, fx->now + 2000), 0);
    expect(fx, "t1", "unknown", "-", "1");
    /* done: nothing pending, the next notice (after the gap) is taken */
    fx->now += 9000;
    assert_int_equal(ota_svc_inventory_tick(fx->inv, fx->now), 0);
    connects(fx, 0, "t1");
    expect(fx, "t1", "true", "1", "-");
}

/* Two service instances on one database (two store handles, a module each, as with
 * PostgreSQL): a gap one of them admits makes things unknown for both, on that broker only;
 * the next notice either of them handles makes the thing known again, for both. */
static void test_gap_seen_by_another_instance(void **state)
{
    fx_t *fx = *state;
    ota_store_t *store2;
    assert_int_equal(ota_store_open(fx->dir, &store2), OTA_STORE_OK);
    ota_svc_inventory_t *inv2 = ota_svc_inventory_create(store2, no_publish, fx);
    assert_non_null(inv2);
    ota_svc_inventory_set_brokers(inv2, 3);
    known_off(fx, "t1");
    known_off(fx, "t2");
    connects(fx, 0, "t1"); /* on hub 1 */
    connects(fx, 2, "t2"); /* on hub 2 */
    /* the second instance loses hub 2's stream */
    fx->now += 1000;
    assert_int_equal(ota_svc_inventory_gap(inv2, 1u << 2, "test", fx->now), 0);
    expect(fx, "t1", "true", "1", "2"); /* known off on 2 before: it may be there now */
    expect(fx, "t2", "unknown", "-", "2");
    /* a notice through the second instance makes it known for the first */
    char line[200];
    snprintf(line, sizeof line,
             "1: New client connected from 127.0.0.1:4 as t2 (p2, c1, k60, u't2').");
    fx->now += 1000;
    assert_int_equal(ota_svc_inventory_handle(inv2, OTA_SVC_INVENTORY_PRESENCE_PREFIX "2/log/N",
                                              line, strlen(line), fx->now),
                     1);
    expect(fx, "t2", "true", "2", "-");
    expect(fx, "t1", "true", "1", "2");
    ota_svc_inventory_destroy(inv2);
    ota_store_close(store2);
}

/* Counts the store's presence transactions from now on: each writes the thing's lastSeen once
 * (a trigger through another connection to the store's file). */
static void count_writes(fx_t *fx)
{
    char path[128];
    sqlite3 *db;
    snprintf(path, sizeof path, "%s/otter.db", fx->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE test_writes(n INTEGER); INSERT INTO test_writes VALUES(0); "
                     "CREATE TRIGGER test_seen_insert AFTER INSERT ON thing_attrs WHEN "
                     "NEW.key = 'lastSeen' BEGIN UPDATE test_writes SET n = n + 1; END; "
                     "CREATE TRIGGER test_seen_update AFTER UPDATE ON thing_attrs WHEN "
                     "NEW.key = 'lastSeen' BEGIN UPDATE test_writes SET n = n + 1; END;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
}

/* The presence transactions counted since count_writes(). */
static long writes(fx_t *fx)
{
    char path[128];
    sqlite3 *db;
    sqlite3_stmt *st;
    snprintf(path, sizeof path, "%s/otter.db", fx->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT n FROM test_writes", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* A notice of broker k (0: the service's own) at the time given, not a second later. */
static void notice_on(fx_t *fx, ota_svc_inventory_t *inv, unsigned k, int online, const char *thing,
                      int64_t at_ms)
{
    char topic[64], line[300];
    if (k == 0) {
        snprintf(topic, sizeof topic, "$SYS/broker/log/N");
    } else {
        snprintf(topic, sizeof topic, OTA_SVC_INVENTORY_PRESENCE_PREFIX "%u/log/N", k);
    }
    if (online) {
        snprintf(line, sizeof line,
                 "%lld: New client connected from 127.0.0.1:40000 as %s (p2, c1, k60, u'%s').",
                 (long long)(at_ms / 1000), thing, thing);
    } else {
        snprintf(line, sizeof line, "%lld: Client %s disconnected.", (long long)(at_ms / 1000),
                 thing);
    }
    assert_int_equal(ota_svc_inventory_handle(inv, topic, line, strlen(line), at_ms), 1);
    fx->now = at_ms;
}

static void notice_at(fx_t *fx, unsigned k, int online, const char *thing, int64_t at_ms)
{
    notice_on(fx, fx->inv, k, online, thing, at_ms);
}

/* Two instances read every notice and keep presence in one store. The second reads t1's
 * disconnect and writes it at once; the first has not read it yet (its stream lags: another
 * hub, a wait for the store) and its write budget then writes the connect it held from before:
 * the later notice stays, also when the first stops before it writes its own disconnect. */
static void test_held_notice_older_than_another_instances(void **state)
{
    fx_t *fx = *state;
    ota_store_t *store2;
    assert_int_equal(ota_store_open(fx->dir, &store2), OTA_STORE_OK);
    ota_svc_inventory_t *inv2 = ota_svc_inventory_create(store2, no_publish, fx);
    assert_non_null(inv2);
    ota_svc_inventory_set_brokers(fx->inv, 1);
    ota_svc_inventory_set_brokers(inv2, 1);
    ota_svc_inventory_set_broker(inv2, 1);
    const int64_t t = fx->now + 1000;
    /* both write the connect, then hold the disconnect and the connect that follow */
    for (int i = 0; i < 3; i++) {
        notice_on(fx, fx->inv, 0, i != 1, "t1", t + 100 * i);
        notice_on(fx, inv2, 0, i != 1, "t1", t + 100 * i);
    }
    expect(fx, "t1", "true", "1", "-");
    notice_on(fx, inv2, 0, 0, "t1", t + 1500);
    expect(fx, "t1", "false", "-", "-");
    assert_int_equal(ota_svc_inventory_tick(fx->inv, t + 1600), 0); /* the connect of t + 200 */
    expect(fx, "t1", "false", "-", "-");
    assert_int_equal(strtoll(attr(fx, "t1", "lastSeen"), NULL, 10), t + 1500);
    ota_svc_inventory_destroy(inv2);
    ota_store_close(store2);
}

/* One device reconnecting in a loop (10,000 notices in 10 s on the scripted clock, the tick
 * every 200 ms as the service calls it): its notices cost a bounded number of store writes,
 * another thing's notice meanwhile is written at once, and what the burst ends in is
 * recorded, with its broker, state and time, within a period. */
static void test_flapping_thing_writes_bounded(void **state)
{
    fx_t *fx = *state;
    count_writes(fx);
    const int64_t t0 = fx->now + 1000;
    int64_t last_tick = t0;
    const int notices = 10001; /* connect, disconnect, ..., connect */
    for (int i = 0; i < notices; i++) {
        int64_t t = t0 + i;
        notice_at(fx, 0, i % 2 == 0, "t1", t);
        if (i == 5000) {
            long before = writes(fx);
            notice_at(fx, 0, 1, "t2", t); /* another device: not held back by t1's budget */
            assert_int_equal(writes(fx), before + 1);
            expect(fx, "t2", "true", "1", "2,3");
        }
        if (t - last_tick >= 200) {
            last_tick = t;
            assert_int_equal(ota_svc_inventory_tick(fx->inv, t), 0);
        }
    }
    const int64_t last = t0 + notices - 1;
    /* 10 s of notices: one write a second, and the first, and the other thing's */
    long w = writes(fx);
    if (w > 10 + 2 + 1) {
        fail_msg("%d notices of one thing in 10 s made %ld store writes", notices, w);
    }
    /* the ticks within a period of the last write hold it; the one after it writes it */
    for (int64_t t = last + 200; t <= last + OTA_SVC_PRESENCE_PERIOD_MS + 200; t += 200) {
        assert_int_equal(ota_svc_inventory_tick(fx->inv, t), 0);
    }
    expect(fx, "t1", "true", "1", "2,3");
    assert_int_equal(strtoll(attr(fx, "t1", "lastSeen"), NULL, 10), last);
    assert_true(writes(fx) <= w + 1);

    /* a second burst moving the thing between brokers, ending off on 1 and on 3 */
    int64_t t = last + 5000;
    notice_at(fx, 0, 0, "t1", t); /* written at once: the last write is a period old */
    for (int i = 0; i < 500; i++) {
        notice_at(fx, 3, 1, "t1", ++t);
        notice_at(fx, 0, 1, "t1", ++t);
        notice_at(fx, 3, 0, "t1", ++t);
        notice_at(fx, 0, 0, "t1", ++t);
    }
    notice_at(fx, 3, 1, "t1", ++t);
    const int64_t end = t;
    assert_int_equal(ota_svc_inventory_tick(fx->inv, end + 1000), 0);
    expect(fx, "t1", "true", "3", "2");
    assert_int_equal(strtoll(attr(fx, "t1", "lastSeen"), NULL, 10), end);
    w = writes(fx) - w;
    if (w > 5) {
        fail_msg("2001 notices of one thing in 2 s made %ld store writes", w);
    }
}

/* A notice held back by the budget when a gap comes is written as from before the gap: the
 * thing reads unknown on that broker, not known; the next notice makes it known again. */
static void test_held_notice_before_gap(void **state)
{
    fx_t *fx = *state;
    ota_svc_inventory_set_brokers(fx->inv, 1);
    const int64_t t = fx->now + 1000;
    notice_at(fx, 0, 1, "t1", t);
    notice_at(fx, 0, 0, "t1", t + 10); /* held back */
    expect(fx, "t1", "true", "1", "-");
    assert_int_equal(ota_svc_inventory_gap(fx->inv, OTA_SVC_INVENTORY_ALL, "test", t + 20), 0);
    expect(fx, "t1", "unknown", "-", "1");
    assert_int_equal(strtoll(attr(fx, "t1", "lastSeen"), NULL, 10), t + 10);
    notice_at(fx, 0, 1, "t1", t + 30); /* within a period of the gap's write: held back */
    expect(fx, "t1", "unknown", "-", "1");
    assert_int_equal(ota_svc_inventory_tick(fx->inv, t + 1020), 0);
    expect(fx, "t1", "true", "1", "-");
    /* the service stopping writes what is held back */
    notice_at(fx, 0, 0, "t1", t + 1030);
    ota_svc_inventory_flush(fx->inv, t + 1040);
    expect(fx, "t1", "false", "-", "-");
    assert_int_equal(strtoll(attr(fx, "t1", "lastSeen"), NULL, 10), t + 1030);
}

/* Clients that are no thing, under ever new ids (with their own logins), cost a read each and
 * leave nothing: no write, no entry in the budget's table. */
static void test_strangers_leave_nothing(void **state)
{
    fx_t *fx = *state;
    count_writes(fx);
    int64_t t = fx->now + 1000;
    char name[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "stranger-%d", i);
        notice_at(fx, 0, i % 2, name, ++t);
        if (i % 200 == 0) {
            assert_int_equal(ota_svc_inventory_tick(fx->inv, t), 0);
        }
    }
    assert_int_equal(writes(fx), 0);
    ota_svc_inventory_stats_t st;
    ota_svc_inventory_get_stats(fx->inv, &st);
    assert_int_equal(st.tracked, 0);
    assert_int_equal(st.writes, 0);
    /* a thing's notices are tracked for a period after its write, then forgotten */
    notice_at(fx, 0, 1, "t1", ++t);
    notice_at(fx, 0, 0, "t1", ++t);
    ota_svc_inventory_get_stats(fx->inv, &st);
    assert_int_equal(st.tracked, 1);
    assert_int_equal(st.holding, 1);
    assert_int_equal(st.held, 1);
    assert_int_equal(ota_svc_inventory_tick(fx->inv, t + OTA_SVC_PRESENCE_PERIOD_MS), 0);
    assert_int_equal(ota_svc_inventory_tick(fx->inv, t + 2 * OTA_SVC_PRESENCE_PERIOD_MS), 0);
    ota_svc_inventory_get_stats(fx->inv, &st);
    assert_int_equal(st.tracked, 0);
    assert_int_equal(st.writes, 2);
    assert_int_equal(writes(fx), 2);
}

/* The budget's table holds at most OTA_SVC_PRESENCE_TRACKED_MAX things; a thing beyond them gets
 * no entry (its notices are written at once) until entries expire a period after their write. */
static void test_pace_table_bounded(void **state)
{
    (void)state;
    ota_svc_pace_t *p = ota_svc_pace_create();
    assert_non_null(p);
    char name[32];
    const int64_t t = 1790000000000;
    for (unsigned i = 0; i < OTA_SVC_PRESENCE_TRACKED_MAX; i++) {
        snprintf(name, sizeof name, "thing-%u", i);
        assert_non_null(ota_svc_pace_add(p, name, t));
    }
    assert_null(ota_svc_pace_add(p, "one-more", t));
    assert_int_equal(ota_svc_pace_count(p), OTA_SVC_PRESENCE_TRACKED_MAX);
    ota_svc_pace_thing_t *e = ota_svc_pace_find(p, "thing-7");
    assert_non_null(e);
    ota_svc_pace_hold(p, e, 2, 1, t + 5);
    assert_int_equal(ota_svc_pace_holding(p), 1);
    ota_svc_pace_sweep(p, t + OTA_SVC_PRESENCE_PERIOD_MS - 1, 0, NULL, NULL); /* none due */
    assert_int_equal(ota_svc_pace_count(p), OTA_SVC_PRESENCE_TRACKED_MAX);
    ota_store_presence_note_t notes[OTA_STORE_PRESENCE_BROKERS_MAX];
    assert_int_equal(ota_svc_pace_notes(e, notes), 1);
    assert_int_equal(notes[0].broker, 2);
    assert_int_equal(notes[0].online, 1);
    assert_int_equal(notes[0].at_ms, t + 5);
    ota_svc_pace_written(p, e, t + OTA_SVC_PRESENCE_PERIOD_MS);
    ota_svc_pace_sweep(p, t + OTA_SVC_PRESENCE_PERIOD_MS, 0, NULL, NULL);
    assert_int_equal(ota_svc_pace_count(p), 1); /* the one written just now */
    assert_non_null(ota_svc_pace_add(p, "one-more", t + OTA_SVC_PRESENCE_PERIOD_MS));
    ota_svc_pace_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gap_then_known, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bridge_down_marks_its_broker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_bridge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_forgery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_seen_unknown_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_bridge_retries_one_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_write_is_a_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_seen_by_another_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flapping_thing_writes_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_notice_before_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_notice_older_than_another_instances, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_strangers_leave_nothing, setup, teardown),
        cmocka_unit_test(test_pace_table_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
