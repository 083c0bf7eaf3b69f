/*
 * otter security tests: a device with its own valid login attacks the broker
 * `otter broker init` sets up, with the real Mosquitto and the real
 * otter-service on a free 127.0.0.1 port.
 *
 * - client-id takeover: the device connects with the service's client id
 *   (read from the service's log, and guessed from its pattern), with the id
 *   of the credentials file, the CLI's id and another thing's name; every
 *   CONNECT is refused and the victims stay connected and answered;
 * - retained messages: a forged notice left retained on the device's own
 *   notify-next topic is refused and never replayed;
 * - oversized packets: a publish above the broker's packet limit ends only
 *   the sender's connection;
 * - revocation: `otter thing revoke` ends the device's live session and its
 *   login is refused from then on;
 * - invalid requests: a flood of them is charged to the device's Jobs budget;
 * - echo: nothing a device sends comes back to it, so it cannot make the
 *   broker buffer its own messages.
 *
 * Each test prints one line
 *   security: <name>: attacks=N refused=N honest_answered=N updates_lost=N
 * that scripts/test.sh sums.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ota_test_net.h"
#include "security_util.h"

/** Rounds of attacks; between rounds an honest device asks for its next job. */
#define ROUNDS 5
/** How long a test waits for a message that must not come. */
#define SILENCE_MS 800

/** The broker, the service and the logins of one test. */
static sec_world_t g;

/** The logins of the two things, in the order of setup's list. */
static ota_test_login_t g_logins[2];
#define g_attacker g_logins[0]
#define g_victim g_logins[1]

/* Broker, things attacker, victim and otter-service with its default client id. */
static int setup(void **state)
{
    static const char *const things[] = {"attacker", "victim", NULL};
    *state = &g;
    return sec_world_start(&g, NULL, things, g_logins);
}

/* The attacker's own login with a client id (NULL: its own). */
static ota_test_client_t *attacker(const char *client_id)
{
    return ota_test_login_connect(g.broker.port, &g_attacker, client_id);
}

/* No device can connect with another client's id, so none can push it off. */
static void test_client_id_takeover(void **state)
{
    (void)state;
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    assert_non_null(victim);
    char host[128] = "localhost", guessed[2][200];
    gethostname(host, sizeof host - 1);
    snprintf(guessed[0], sizeof guessed[0], "otter-service-%s-%ld", host, (long)g.service.pid + 1);
    snprintf(guessed[1], sizeof guessed[1], "otter-service-%s-1", host);
    /* Every client id that belongs to someone else. */
    const char *ids[] = {g.service_id, "otter-service", "otter-service-0", guessed[0], guessed[1],
                         "otter-admin", "victim",
                         /* the same ids with other casing or spaces: the binding is exact */
                         "Victim", "victim ", " victim", "Otter-Service", "otter-service ",
                         /* its own name in other casing */
                         "Attacker"};
    const size_t n_ids = sizeof ids / sizeof ids[0];
    int attacks = 0, refused = 0, honest = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t i = 0; i < n_ids; i++) {
            ota_test_client_t *c = attacker(ids[i]);
            attacks++;
            if (c == NULL) {
                refused++;
            } else {
                fprintf(stderr, "the attacker connected as '%s'\n", ids[i]);
                ota_test_client_disconnect(c);
            }
        }
        /* Another thing's username with the attacker's password. */
        ota_test_client_t *c =
            ota_test_client_connect(g.broker.port, "victim", "victim", g_attacker.password);
        attacks++;
        refused += c == NULL;
        ota_test_client_disconnect(c);
        honest += sec_honest_request(victim, "victim", round);
    }
    /* The attacker's own login still works: refusals are about the id, not the login. */
    ota_test_client_t *own = attacker(NULL);
    assert_non_null(own);
    ota_test_client_disconnect(own);
    sec_report("client_id_takeover", attacks, refused, honest);
    assert_int_equal(refused, attacks);
    assert_int_equal(honest, ROUNDS);
    /* The victims never lost their connection: no session was taken over, and the
     * service connected once. */
    assert_true(ota_test_client_connected(victim));
    assert_int_equal(sec_count_in_file(g.broker_log, "already connected"), 0);
    assert_int_equal(sec_count_in_file(g.service_log, "connected to "), 1);
    assert_true(ota_test_proc_running(&g.service, NULL));
    ota_test_client_disconnect(victim);
}

/* A forged notice left retained on the device's own topic is refused, never replayed. */
static void test_retained_notice(void **state)
{
    (void)state;
    static const char forged[] = "{\"execution\":{\"jobId\":\"forged\",\"status\":\"QUEUED\"}}";
    static const char topic[] = "$aws/things/attacker/jobs/notify-next";
    int attacks = 0, refused = 0, honest = 0;
    for (int qos = 0; qos <= 2; qos++) {
        ota_test_client_t *c = attacker(NULL);
        assert_non_null(c);
        (void)ota_test_client_publish_retained(c, topic, forged, strlen(forged), qos, 1);
        attacks++;
        refused += sec_dropped(c);
        ota_test_client_disconnect(c);
    }
    /* The device connects again, as at every boot: nothing is replayed to it. */
    ota_test_client_t *c = attacker(NULL);
    assert_non_null(c);
    assert_int_equal(ota_test_client_subscribe(c, topic, 1), 1);
    ota_test_msg_t *m = ota_test_client_expect(c, NULL, SILENCE_MS);
    if (m != NULL) {
        fprintf(stderr, "replayed on %s: %s\n", m->topic, (const char *)m->payload);
        refused--;
    }
    ota_test_msg_free(m);
    ota_test_client_disconnect(c);
    /* The honest device is served as before. */
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    assert_non_null(victim);
    honest += sec_honest_request(victim, "victim", 0);
    ota_test_client_disconnect(victim);
    sec_report("retained_notice", attacks, refused, honest);
    assert_int_equal(refused, attacks);
    assert_int_equal(honest, 1);
}

/* A publish above the packet limit ends the sender's connection only. */
static void test_oversized_packet(void **state)
{
    (void)state;
    size_t big = 128u * 1024u + 8192u;
    char *payload = malloc(big);
    assert_non_null(payload);
    memset(payload, '{', big);
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    assert_non_null(victim);
    int attacks = 0, refused = 0, honest = 0;
    for (int round = 0; round < ROUNDS; round++) {
        ota_test_client_t *c = attacker(NULL);
        assert_non_null(c);
        (void)ota_test_client_publish(c, "$aws/things/attacker/jobs/$next/get", payload, big, 0);
        attacks++;
        refused += sec_dropped(c);
        ota_test_client_disconnect(c);
        honest += sec_honest_request(victim, "victim", round);
    }
    free(payload);
    ota_test_client_disconnect(victim);
    sec_report("oversized_packet", attacks, refused, honest);
    assert_int_equal(refused, attacks);
    assert_int_equal(honest, ROUNDS);
    assert_int_equal(sec_count_in_file(g.service_log, "connected to "), 1);
}

/* A revoked device is cut off at once: its live session ends and its login is refused. */
static void test_revoke(void **state)
{
    (void)state;
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    assert_non_null(victim);
    ota_test_client_t *c = attacker(NULL);
    assert_non_null(c);
    static const char *const revoke[] = {"thing", "revoke", "attacker", NULL};
    char log[600];
    snprintf(log, sizeof log, "%s/otter-cli.log", g.broker.dir);
    assert_int_equal(ota_test_otter(g.broker.dir, revoke, log), 0);
    int attacks = 1, refused = sec_dropped(c), honest = 0;
    ota_test_client_disconnect(c);
    for (int i = 0; i < ROUNDS; i++) {
        c = attacker(NULL);
        attacks++;
        refused += c == NULL;
        ota_test_client_disconnect(c);
        honest += sec_honest_request(victim, "victim", i);
    }
    ota_test_client_disconnect(victim);
    sec_report("revoked_login", attacks, refused, honest);
    assert_int_equal(refused, attacks);
    assert_int_equal(honest, ROUNDS);
}

/* Milliseconds of a monotonic clock. */
static int64_t mono_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until no answer has come for a second (at most 20 s); how many matched filter. */
static size_t settled_count(ota_test_client_t *c, const char *filter)
{
    size_t n = ota_test_client_pending(c, filter), before;
    for (int i = 0; i < 20; i++) {
        struct timespec ts = {1, 0};
        before = n;
        nanosleep(&ts, NULL);
        n = ota_test_client_pending(c, filter);
        if (n == before) {
            break;
        }
    }
    return n;
}

/*
 * Invalid Jobs API requests (a clientToken that is a number) at QoS 1 cost the
 * service an answer written to its outbox, a log line and a publish each: they
 * are charged to the thing's Jobs budget like valid ones, so a flood of them is
 * answered at most burst + rate x time times, and the other device is served.
 */
static void test_invalid_request_flood(void **state)
{
    (void)state;
    enum { FLOOD = 1000, BURST = 200, RATE = 10, REFUSALS = 10 };
    static const char bad[] = "{\"clientToken\":7}";
    static const char topic[] = "$aws/things/attacker/jobs/$next/get";
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    ota_test_client_t *c = attacker(NULL);
    assert_non_null(victim);
    assert_non_null(c);
    assert_int_equal(ota_test_client_subscribe(c, "$aws/things/attacker/jobs/$next/get/+", 1), 1);
    int attacks = 0, honest = 0;
    int64_t t0 = mono_now_ms();
    for (int i = 0; i < FLOOD; i++) {
        attacks += ota_test_client_publish(c, topic, bad, strlen(bad), 1) == 0;
        if (i % (FLOOD / ROUNDS) == FLOOD / ROUNDS - 1) {
            honest += sec_honest_request(victim, "victim", i);
        }
    }
    int64_t seconds = (mono_now_ms() - t0) / 1000 + 1;
    size_t answered = settled_count(c, "$aws/things/attacker/jobs/$next/get/+");
    long bound = BURST + (RATE + REFUSALS) * (seconds + 1);
    fprintf(stderr, "%d invalid requests in %lld s, %zu answered (at most %ld)\n", attacks,
            (long long)seconds, answered, bound);
    ota_test_client_disconnect(c);
    ota_test_client_disconnect(victim);
    /* Every request was refused (InvalidRequest or RequestThrottled), and those over the
     * budget cost nothing but the budget check. */
    sec_report("invalid_request_flood", attacks, attacks, honest);
    assert_int_equal(attacks, FLOOD);
    assert_int_equal(honest, ROUNDS);
    assert_true((long)answered <= bound);
    assert_true(sec_count_in_file(g.service_log, "rejected: InvalidRequest") <= bound);
    assert_int_equal(sec_count_in_file(g.service_log, "connected to "), 1);
}

/*
 * A device that subscribes to its own topics and publishes on them gets its
 * own messages back; if it never reads them the broker buffers them for it
 * (QoS 0 packets count only against max_queued_messages, not
 * max_queued_bytes: 3000 of 130 kB made the broker grow by 600 MB). A device
 * receives only the service's answers and may not send on them, so nothing it
 * sends comes back to it.
 */
static void test_no_echo(void **state)
{
    (void)state;
    static const char *const topics[] = {
        "$aws/things/attacker/jobs/j1/update",          "$aws/things/attacker/jobs/junk",
        "$aws/things/attacker/jobs/j1/update/accepted", "$aws/things/attacker/jobs/notify-next",
        "$aws/things/attacker/jobs/$next/get",          "$aws/things/attacker/streams/s/get/cbor",
        "$aws/things/attacker/streams/s/data/cbor",     "$aws/things/attacker/jobs/a/b/c/rejected",
    };
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    ota_test_client_t *c = attacker(NULL);
    assert_non_null(victim);
    assert_non_null(c);
    assert_int_equal(ota_test_client_subscribe(c, "$aws/things/attacker/jobs/#", 0), 0);
    assert_int_equal(ota_test_client_subscribe(c, "$aws/things/attacker/streams/#", 0), 0);
    int attacks = 0, honest = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
            attacks += ota_test_client_publish(c, topics[i], "{}", 2, 0) == 0;
        }
        honest += sec_honest_request(victim, "victim", round);
    }
    /* Only the service's answers may come (InvalidTopic, InvalidRequest...): nothing the
     * attacker sent itself. */
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    int echoed = 0;
    for (ota_test_msg_t *m; (m = ota_test_client_expect(c, NULL, 100)) != NULL;) {
        for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
            if (strcmp(m->topic, topics[i]) == 0) {
                fprintf(stderr, "echoed: %s\n", m->topic);
                echoed++;
            }
        }
        ota_test_msg_free(m);
    }
    ota_test_client_disconnect(c);
    ota_test_client_disconnect(victim);
    sec_report("no_echo", attacks, attacks - echoed, honest);
    assert_int_equal(attacks, ROUNDS * (int)(sizeof topics / sizeof topics[0]));
    assert_int_equal(echoed, 0);
    assert_int_equal(honest, ROUNDS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_id_takeover, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_retained_notice, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_oversized_packet, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_request_flood, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_no_echo, setup, sec_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
