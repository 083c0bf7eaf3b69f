/*
 * Unit tests of the federation watch's rules on a clock of the test's: a split is reported once
 * and healed only by probes that cross both ways, also across the reconnections of the watch
 * and of the main connection; a move back that fails, before or after the CONNACK, is a flap;
 * the watch's connection ending is counted and said once, however often it is reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ota_svc_fed_rules.h"
#include "ota_test_util.h"

#define T0 1000000 /* the clock's start (monotonic ms) */
#define STEP 100   /* the loop's turn in the test (ms) */

typedef struct fx {
    ota_svc_fed_rules_t r;
    int64_t now;
    int errors;
    int healed, reported, crossed, alone, failed;
    int ended; /* "connection to broker ... ended" lines */
    char last[768];
    int moves; /* OTA_SVC_FED_MOVE_HOME answers */
    /* What the network would do: probes reach the other side (a probe sent is seen at once). */
    int to_watch, to_main;
} fx_t;

static fx_t g;

static void on_log(void *ctx, int level, const char *line)
{
    fx_t *f = ctx;
    snprintf(f->last, sizeof f->last, "%s", line);
    f->errors += level == 0;
    f->reported += strstr(line, "federation split:") != NULL;
    f->healed += strstr(line, "federation split healed") != NULL;
    f->crossed += strstr(line, "probes cross both ways") != NULL;
    f->alone += strstr(line, "unreachable for") != NULL;
    f->failed += strstr(line, "after the move back to it") != NULL;
    f->ended += strstr(line, "federation watch: connection to broker") != NULL &&
                strstr(line, "ended") != NULL;
}

/* Runs the loop for ms: the rules' checks every STEP, the probes they ask for delivered as the
 * network allows. Stops at a move back when stop_at_move (returns the time it took), else -1. */
static int64_t run(int64_t ms, int stop_at_move)
{
    for (int64_t end = g.now + ms, start = g.now; g.now < end;) {
        g.now += STEP;
        int probe = 0;
        if (ota_svc_fed_rules_poll(&g.r, g.now, &probe) == OTA_SVC_FED_MOVE_HOME) {
            g.moves++;
            if (stop_at_move) {
                return g.now - start;
            }
        }
        if (probe && g.to_watch) {
            ota_svc_fed_rules_probe_at_watch(&g.r, g.now);
        }
        if (probe && g.to_main) {
            ota_svc_fed_rules_probe_at_main(&g.r, g.now);
        }
    }
    return -1;
}

static int setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    g.now = T0;
    ota_svc_fed_rules_init(&g.r, on_log, &g);
    return 0;
}

/* The main connection up on broker main_index, the watch on the other of two, and both
 * serving (the daemon's on_connect, the watch's CONNACK, the subscriptions done). */
static void pair_up(int main_index)
{
    int other = main_index == 0 ? 1 : 0;
    (void)ota_svc_fed_rules_target(&g.r, main_index, other == 0 ? "hub1" : "hub2", 1883, other,
                                   g.now);
    ota_svc_fed_rules_watch_up(&g.r, g.now);
    ota_svc_fed_rules_main_ready(&g.r, 1, g.now);
}

/* On hub 1 with probes crossing, then the bridge cut: one split reported. */
static void split_once(void)
{
    pair_up(0);
    g.to_watch = g.to_main = 1;
    run(3000, 0);
    assert_string_equal(ota_svc_fed_rules_state(&g.r), "ok");
    assert_int_equal(g.crossed, 1);
    g.to_watch = g.to_main = 0;
    run(8000, 0);
    assert_int_equal(g.reported, 1);
    assert_int_equal(g.errors, 1);
    assert_string_equal(ota_svc_fed_rules_state(&g.r), "split");
    assert_int_equal(ota_svc_fed_rules_stats(&g.r).splits, 1);
}

/* The watch's connection away for ms, then back; the state while away. */
static void watch_away(int64_t ms, const char *state_away)
{
    ota_svc_fed_rules_watch_down(&g.r, g.now);
    run(ms, 0);
    assert_string_equal(ota_svc_fed_rules_state(&g.r), state_away);
    ota_svc_fed_rules_watch_up(&g.r, g.now);
}

/* After ms more without probes crossing: still the one split, said once, not healed. */
static void still_one_split(int64_t ms)
{
    run(ms, 0);
    assert_int_equal(g.healed, 0);
    assert_int_equal(g.reported, 1);
    assert_int_equal(g.errors, 1);
    assert_int_equal(ota_svc_fed_rules_stats(&g.r).splits, 1);
    assert_string_equal(ota_svc_fed_rules_state(&g.r), "split");
}

/* The watch's connection drops and comes back during a split: still one split, not healed. */
static void test_split_survives_watch_reconnect(void **state)
{
    (void)state;
    split_once();
    watch_away(2000, "split"); /* not checked meanwhile: the verdict kept */
    still_one_split(STEP);     /* no probe crossed yet */
    still_one_split(40000);    /* longer than the first pairing's grace, twice */
}

/* The main connection reconnects during a split (the watch ended and made again with it). */
static void test_split_survives_main_reconnect(void **state)
{
    (void)state;
    split_once();
    assert_int_equal(ota_svc_fed_rules_target(&g.r, -1, NULL, 0, -1, g.now),
                     OTA_SVC_FED_END | OTA_SVC_FED_WAS_UP);
    run(1000, 0);
    assert_string_equal(ota_svc_fed_rules_state(&g.r), "split");
    pair_up(0);
    still_one_split(30000);
}

/* Healed only when probes cross both ways in the new pairing, and then said once. */
static void test_split_heals_when_probes_cross_both_ways(void **state)
{
    (void)state;
    split_once();
    watch_away(1000, "split");
    g.to_watch = 1; /* one way only */
    still_one_split(10000);
    g.to_main = 1;
    run(2000, 0);
    assert_int_equal(g.healed, 1);
    assert_non_null(strstr(g.last, "between hub 1 and hub 2 again"));
    assert_string_equal(ota_svc_fed_rules_state(&g.r), "ok");
    run(10000, 0);
    assert_int_equal(g.healed, 1);
    assert_int_equal(g.crossed, 1); /* the heal says it: no second "cross both ways" */
    /* A later split is a second one. */
    g.to_watch = g.to_main = 0;
    run(8000, 0);
    assert_int_equal(g.reported, 2);
    assert_int_equal(ota_svc_fed_rules_stats(&g.r).splits, 2);
}

/* The other hub unreachable for long during a split: "alone"; back, still the same split. */
static void test_split_while_other_hub_unreachable(void **state)
{
    (void)state;
    split_once();
    watch_away(16000, "alone");
    assert_int_equal(g.alone, 1);
    still_one_split(20000);
    g.to_watch = g.to_main = 1;
    run(2000, 0);
    assert_int_equal(g.healed, 1);
    assert_string_equal(ota_svc_fed_rules_state(&g.r), "ok");
}

/* On hub 2, the watch on hub 1 with probes crossing: the move back after the stable time. */
static int64_t move_back(void)
{
    pair_up(1);
    g.to_watch = g.to_main = 1;
    int64_t took = run(120000, 1);
    assert_true(took > 0);
    return took;
}

/* The move back done: the daemon leaves hub 2 (its watch ends with it). */
static void leave_hub2(void)
{
    (void)ota_svc_fed_rules_target(&g.r, -1, NULL, 0, -1, g.now);
    g.now += 200;
}

/* After a move back: the main connection up on hub 1 for ms, then lost; the daemon back on
 * hub 2 (its own failover). */
static void on_hub1_then_lost(int64_t ms)
{
    leave_hub2();
    pair_up(0);
    run(ms, 0);
    ota_svc_fed_rules_main_lost(&g.r, g.now);
    leave_hub2();
    pair_up(1); /* on hub 2 again: no second flap for the same move back */
}

/* A move back whose connection to hub 1 fails before its CONNACK, then one lost after it: two
 * flaps, the stable time 3, 6, then 12 s; a move back that lasts is none. */
static void test_flap_before_and_after_connack(void **state)
{
    (void)state;
    int64_t first = move_back();
    assert_true(first >= 3000 && first < 4000);
    leave_hub2();
    /* Hub 1 closes the connection before the CONNACK: the daemon goes to the next broker. */
    g.now += 1000;
    pair_up(1);
    assert_int_equal(ota_svc_fed_rules_stats(&g.r).flaps, 1);
    assert_int_equal(g.failed, 1);
    assert_int_equal(ota_svc_fed_rules_stable_ms(&g.r), 6000);
    int64_t second = run(120000, 1);
    assert_true(second >= 6000 && second < 7000);
    /* This time hub 1 accepts, then drops the connection 2 s later. */
    on_hub1_then_lost(2000);
    assert_int_equal(ota_svc_fed_rules_stats(&g.r).flaps, 2);
    assert_int_equal(ota_svc_fed_rules_stable_ms(&g.r), 12000);
    int64_t third = run(120000, 1);
    assert_true(third >= 12000 && third < 13000);
    /* A move back that lasts 30 s is no flap, whatever comes later. */
    on_hub1_then_lost(31000);
    assert_int_equal(ota_svc_fed_rules_stats(&g.r).flaps, 2);
    assert_int_equal(ota_svc_fed_rules_stats(&g.r).moves_home, 3);
}

/* The watch's connection ends once, however many places report it: the rules count and log
 * it once (and say it was up once), until it is up again. */
static void test_watch_down_reported_once(void **state)
{
    (void)state;
    pair_up(0);
    assert_true(ota_svc_fed_rules_watch_connected(&g.r));
    assert_int_equal(ota_svc_fed_rules_watch_index(&g.r), 1);
    assert_string_equal(ota_svc_fed_rules_watch_host(&g.r), "hub2");
    assert_int_equal(ota_svc_fed_rules_watch_port(&g.r), 1883);
    /* The watch's client ends: its disconnect callback, the loop's error, the new client. */
    assert_int_equal(ota_svc_fed_rules_watch_down(&g.r, g.now), 1);
    assert_int_equal(ota_svc_fed_rules_watch_down(&g.r, g.now), 0);
    assert_int_equal(ota_svc_fed_rules_watch_down(&g.r, g.now + STEP), 0);
    assert_int_equal(g.ended, 1);
    assert_non_null(strstr(g.last, "broker 2 (hub2:1883) ended"));
    assert_false(ota_svc_fed_rules_watch_connected(&g.r));
    /* Up again, then ended by a new target (the main connection lost): said once, with the
     * broker it was on, and the watch's later reports of it add nothing. */
    ota_svc_fed_rules_watch_up(&g.r, g.now);
    assert_int_equal(ota_svc_fed_rules_target(&g.r, -1, NULL, 0, -1, g.now),
                     OTA_SVC_FED_END | OTA_SVC_FED_WAS_UP);
    assert_int_equal(g.ended, 2);
    assert_non_null(strstr(g.last, "broker 2 (hub2:1883) ended"));
    assert_int_equal(ota_svc_fed_rules_watch_index(&g.r), -1);
    assert_int_equal(ota_svc_fed_rules_watch_down(&g.r, g.now), 0);
    assert_int_equal(ota_svc_fed_rules_watch_down(&g.r, g.now), 0);
    assert_int_equal(g.ended, 2);
    /* A new target while the watch was not up: nothing was up to end. */
    assert_int_equal(ota_svc_fed_rules_target(&g.r, 0, "hub2", 1883, 1, g.now), OTA_SVC_FED_GO);
    assert_int_equal(ota_svc_fed_rules_target(&g.r, 0, "hub3", 1883, 2, g.now), OTA_SVC_FED_GO);
    assert_int_equal(g.ended, 2);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_split_survives_watch_reconnect, setup),
        cmocka_unit_test_setup(test_split_survives_main_reconnect, setup),
        cmocka_unit_test_setup(test_split_heals_when_probes_cross_both_ways, setup),
        cmocka_unit_test_setup(test_split_while_other_hub_unreachable, setup),
        cmocka_unit_test_setup(test_flap_before_and_after_connack, setup),
        cmocka_unit_test_setup(test_watch_down_reported_once, setup),
    };
    return ota_test_main(tests, argc, argv);
}
