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
 *   login is refused from then on.
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
    const char *ids[] = {g.service_id, "otter-service", "otter-service-0", guessed[0],
                         guessed[1],   "otter-admin",   "victim"};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_id_takeover, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_retained_notice, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_oversized_packet, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup, sec_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
