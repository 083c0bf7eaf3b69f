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
#include <unistd.h>

#include <cmocka.h>

#include "ota_test_net.h"

/** How long a test waits for a message that must not come. */
#define SILENCE_MS 800

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/** The broker, the service and the logins of the test. */
struct world {
    ota_test_broker_t broker;
    ota_test_proc_t service;
    char service_log[600];
    char service_id[160];
    ota_test_login_t a, b, svc;
};

static struct world g;

/* The client id the service logged in with ("connected to H:P as ID"). */
static void read_service_id(char out[160])
{
    FILE *f = fopen(g.service_log, "r");
    char line[1024];
    out[0] = '\0';
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        const char *p = strstr(line, "connected to ");
        const char *as = p ? strstr(p, " as ") : NULL;
        if (as != NULL && sscanf(as + 4, "%159[^ \n]", out) == 1) {
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
}

/* How many times text occurs in a file. */
static int count_in_file(const char *path, const char *text)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    int count = 0;
    for (const char *p = buf; (p = strstr(p, text)) != NULL; p += strlen(text)) {
        count++;
    }
    return count;
}

static int setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    static const char *const tls[] = {"--tls", NULL};
    static const char *const things[] = {"A", "B", NULL};
    if (ota_test_broker_start_with(&g.broker, NULL, tls) != 0 ||
        ota_test_things_create(&g.broker, things) != 0 ||
        ota_test_thing_login(&g.broker, "A", &g.a) != 0 ||
        ota_test_thing_login(&g.broker, "B", &g.b) != 0 ||
        ota_test_service_login(&g.broker, &g.svc) != 0) {
        ota_test_broker_stop(&g.broker);
        return -1;
    }
    snprintf(g.service_log, sizeof g.service_log, "%s/service.log", g.broker.dir);
    static const char *const args[] = {"--share-group", "none", NULL};
    if (ota_test_service_start(&g.service, g.broker.dir, &g.broker, args, g.service_log) != 0) {
        ota_test_proc_stop(&g.service);
        ota_test_broker_stop(&g.broker);
        return -1;
    }
    read_service_id(g.service_id);
    return g.service_id[0] != '\0' ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ota_test_proc_stop(&g.service);
    ota_test_broker_stop(&g.broker);
    return 0;
}

/* Thing B asks for its next job and must get the service's answer. */
static int honest_request(ota_test_client_t *b, int n)
{
    char token[64], tag[32];
    snprintf(tag, sizeof tag, "\"tls-%d\"", n);
    snprintf(token, sizeof token, "{\"clientToken\":%s}", tag);
    if (ota_test_client_publish(b, "$aws/things/B/jobs/$next/get", token, strlen(token), 1) != 0) {
        return 0;
    }
    ota_test_msg_t *m = ota_test_client_expect(b, "$aws/things/B/jobs/$next/get/+", 5000);
    int ok = m != NULL && strstr((const char *)m->payload, tag) != NULL;
    ota_test_msg_free(m);
    return ok;
}

/* Waits until a client has lost its connection; 1 when it has. */
static int dropped(ota_test_client_t *c)
{
    for (int i = 0; i < 300 && ota_test_client_connected(c); i++) {
        sleep_ms(10);
    }
    return !ota_test_client_connected(c);
}

static void test_mutual_tls(void **state)
{
    (void)state;
    int attacks = 0, refused = 0, honest = 0;
    char broker_log[600];
    snprintf(broker_log, sizeof broker_log, "%s/mosquitto.log", g.broker.dir);
    /* The honest device B, on its own certificate. */
    ota_test_client_t *b = ota_test_login_connect(g.broker.port, &g.b, NULL);
    assert_non_null(b);
    assert_int_equal(ota_test_client_subscribe(b, "$aws/things/B/jobs/$next/get/+", 1), 1);
    assert_int_equal(ota_test_client_subscribe(b, "$aws/things/B/jobs/+/update/+", 1), 1);
    honest += honest_request(b, 0);

    /* A's certificate with B's and the service's client ids: the broker gives the
     * session A's name instead, so nobody is pushed off. */
    const char *ids[] = {"B", g.service_id, "otter-service", "otter-admin"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        ota_test_client_t *a = ota_test_login_connect(g.broker.port, &g.a, ids[i]);
        attacks++;
        sleep_ms(100);
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
        honest += honest_request(b, (int)i + 1);
    }
    assert_int_equal(count_in_file(broker_log, "already connected"), 0);
    assert_int_equal(count_in_file(g.service_log, "connected to "), 1);

    /* No certificate, a certificate of another CA for "B", no TLS at all. */
    ota_test_broker_t other;
    static const char *const tls[] = {"--tls", NULL};
    ota_test_login_t foreign;
    assert_int_equal(ota_test_broker_start_with(&other, NULL, tls), 0);
    assert_int_equal(ota_test_thing_login(&other, "B", &foreign), 0);
    ota_test_client_t *c =
        ota_test_client_connect_tls("127.0.0.1", g.broker.port, "B", g.b.cafile, NULL, NULL);
    attacks++;
    refused += c == NULL;
    ota_test_client_disconnect(c);
    c = ota_test_client_connect_tls("127.0.0.1", g.broker.port, "B", g.b.cafile, foreign.certfile,
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
    ota_test_client_t *a = ota_test_login_connect(g.broker.port, &g.a, NULL);
    assert_non_null(a);
    static const char *const revoke[] = {"thing", "revoke", "A", NULL};
    char cli_log[600];
    snprintf(cli_log, sizeof cli_log, "%s/otter-cli.log", g.broker.dir);
    assert_int_equal(ota_test_otter(g.broker.dir, revoke, cli_log), 0);
    attacks++;
    refused += dropped(a);
    ota_test_client_disconnect(a);
    for (int i = 0; i < 3; i++) {
        c = ota_test_login_connect(g.broker.port, &g.a, NULL);
        attacks++;
        refused += c == NULL;
        ota_test_client_disconnect(c);
    }
    honest += honest_request(b, 10);
    assert_true(ota_test_client_connected(b));
    ota_test_client_disconnect(b);
    printf("security: mutual_tls: attacks=%d refused=%d honest_answered=%d updates_lost=0\n",
           attacks, refused, honest);
    assert_int_equal(refused, attacks);
    assert_int_equal(honest, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mutual_tls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
