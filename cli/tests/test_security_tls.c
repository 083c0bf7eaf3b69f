/*
 * otter security tests: the mutual-TLS broker `otter broker init --tls` sets
 * up, with certificates `otter thing create` issues, the real Mosquitto and
 * the real otter-service on a free 127.0.0.1 port.
 *
 * A device holding thing A's certificate and key tries to act as thing B or
 * as the service; clients without a certificate, with one from another CA,
 * or without TLS try to connect; then A's certificate is revoked while A is
 * connected. Prints
 *   security: mutual_tls: attacks=N refused=N honest_answered=N updates_lost=N
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ota_test_net.h"
#include "security_util.h"

/** How long a test waits for a message that must not come. */
#define SILENCE_MS 800

/** The broker, the service and the logins of the test. */
static sec_world_t g;

/** The logins of the two things, in the order of setup's list. */
static ota_test_login_t g_logins[2];
#define g_a g_logins[0]
#define g_b g_logins[1]

/* Broker, things A, B and otter-service with its default client id. */
static int setup(void **state)
{
    static const char *const tls[] = {"--tls", NULL};
    static const char *const things[] = {"A", "B", NULL};
    *state = &g;
    return sec_world_start(&g, tls, things, g_logins);
}

static void test_mutual_tls(void **state)
{
    (void)state;
    int attacks = 0, refused = 0, honest = 0;
    /* The honest device B, on its own certificate. */
    ota_test_client_t *b = sec_device(&g, &g_b);
    assert_non_null(b);
    honest += sec_honest_request(b, "B", 0);

    /* A's certificate with B's and the service's client ids: the broker gives the
     * session A's name instead, so nobody is pushed off. */
    const char *ids[] = {"B", g.service_id, "otter-service", "otter-admin"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        ota_test_client_t *a = ota_test_login_connect(g.broker.port, &g_a, ids[i]);
        attacks++;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        refused += ota_test_client_connected(b) && ota_test_proc_running(&g.service, NULL);
        /* ... nor can it speak for B: a forged status update reaches nobody. */
        if (a != NULL) {
            static const char forged[] = "{\"status\":\"SUCCEEDED\"}";
            attacks++;
            assert_int_equal(ota_test_client_publish(a, "$aws/things/B/jobs/j1/update", forged,
                                                     strlen(forged), 1),
                             0);
            ota_test_msg_t *m =
                ota_test_client_expect(b, "$aws/things/B/jobs/+/update/+", SILENCE_MS);
            refused += m == NULL;
            ota_test_msg_free(m);
        }
        ota_test_client_disconnect(a);
        honest += sec_honest_request(b, "B", (int)i + 1);
    }
    assert_int_equal(sec_count_in_file(g.broker_log, "already connected"), 0);
    assert_int_equal(sec_count_in_file(g.service_log, "connected to "), 1);

    /* No certificate, a certificate of another CA for "B", no TLS at all. */
    ota_test_broker_t other;
    static const char *const tls[] = {"--tls", NULL};
    ota_test_login_t foreign;
    assert_int_equal(ota_test_broker_start_with(&other, NULL, tls), 0);
    assert_int_equal(ota_test_thing_login(&other, "B", &foreign), 0);
    ota_test_client_t *c =
        ota_test_client_connect_tls("127.0.0.1", g.broker.port, "B", g_b.cafile, NULL, NULL);
    attacks++;
    refused += c == NULL;
    ota_test_client_disconnect(c);
    c = ota_test_client_connect_tls("127.0.0.1", g.broker.port, "B", g_b.cafile, foreign.certfile,
                                    foreign.keyfile);
    attacks++;
    refused += c == NULL;
    ota_test_client_disconnect(c);
    c = ota_test_client_connect(g.broker.port, "B", "B", "");
    attacks++;
    refused += c == NULL;
    ota_test_client_disconnect(c);
    ota_test_broker_stop(&other);

    /* A is revoked while connected: its session ends and its certificate is refused. */
    ota_test_client_t *a = ota_test_login_connect(g.broker.port, &g_a, NULL);
    assert_non_null(a);
    static const char *const revoke[] = {"thing", "revoke", "A", NULL};
    char cli_log[600];
    snprintf(cli_log, sizeof cli_log, "%s/otter-cli.log", g.broker.dir);
    assert_int_equal(ota_test_otter(g.broker.dir, revoke, cli_log), 0);
    attacks++;
    refused += sec_dropped(a);
    ota_test_client_disconnect(a);
    for (int i = 0; i < 3; i++) {
        c = ota_test_login_connect(g.broker.port, &g_a, NULL);
        attacks++;
        refused += c == NULL;
        ota_test_client_disconnect(c);
    }
    honest += sec_honest_request(b, "B", 10);
    assert_true(ota_test_client_connected(b));
    ota_test_client_disconnect(b);
    sec_report("mutual_tls", attacks, refused, honest);
    assert_int_equal(refused, attacks);
    assert_int_equal(honest, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mutual_tls, setup, sec_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
