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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ota_test_net.h"

/** Rounds of attacks; between rounds an honest device asks for its next job. */
#define ROUNDS 5
/** How long a test waits for a message that must not come. */
#define SILENCE_MS 800

/** The broker, the service and the logins of one test. */
struct world {
    ota_test_broker_t broker;
    ota_test_proc_t service;
    char service_log[600];
    char service_id[160];
    ota_test_login_t attacker, victim;
};

static struct world g;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* How many times text occurs in a file. */
static int count_in_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return 0;
    }
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    int count = 0;
    for (const char *p = buf; (p = strstr(p, text)) != NULL; p += strlen(text)) {
        count++;
    }
    return count;
}

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

/* Broker, things "attacker" and "victim", and otter-service with its default client id. */
static int setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    static const char *const things[] = {"attacker", "victim", NULL};
    if (ota_test_broker_start(&g.broker, NULL) != 0 ||
        ota_test_things_create(&g.broker, things) != 0 ||
        ota_test_thing_login(&g.broker, "attacker", &g.attacker) != 0 ||
        ota_test_thing_login(&g.broker, "victim", &g.victim) != 0) {
        ota_test_broker_stop(&g.broker);
        return -1;
    }
    snprintf(g.service_log, sizeof g.service_log, "%s/service.log", g.broker.dir);
    /* The service works in the same data folder, as a user runs it. */
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

/* An honest request: the victim asks for its next job and must get an answer. */
static int honest_request(ota_test_client_t *victim, int n)
{
    char token[64], tag[32];
    snprintf(tag, sizeof tag, "\"honest-%d\"", n);
    snprintf(token, sizeof token, "{\"clientToken\":%s}", tag);
    if (ota_test_client_publish(victim, "$aws/things/victim/jobs/$next/get", token, strlen(token),
                                1) != 0) {
        return 0;
    }
    ota_test_msg_t *m = ota_test_client_expect(victim, "$aws/things/victim/jobs/$next/get/+", 5000);
    int ok = m != NULL && strstr((const char *)m->payload, tag) != NULL;
    ota_test_msg_free(m);
    return ok;
}

static void print_line(const char *name, int attacks, int refused, int honest)
{
    printf("security: %s: attacks=%d refused=%d honest_answered=%d updates_lost=0\n", name, attacks,
           refused, honest);
    fflush(stdout);
}

/* No device can connect with another client's id, so none can push it off. */
static void test_client_id_takeover(void **state)
{
    (void)state;
    ota_test_client_t *victim = ota_test_client_connect(g.broker.port, g.victim.client_id,
                                                        g.victim.username, g.victim.password);
    assert_non_null(victim);
    assert_int_equal(ota_test_client_subscribe(victim, "$aws/things/victim/jobs/$next/get/+", 1),
                     1);
    char host[128] = "localhost", guessed[2][200];
    gethostname(host, sizeof host - 1);
    snprintf(guessed[0], sizeof guessed[0], "otter-service-%s-%ld", host, (long)g.service.pid + 1);
    snprintf(guessed[1], sizeof guessed[1], "otter-service-%s-1", host);
    /* Every client id that belongs to someone else. */
    const char *ids[] = {g.service_id, "otter-service", "otter-service-0", guessed[0],
                         guessed[1],   "otter-admin",   "victim"};
    const size_t n_ids = sizeof ids / sizeof ids[0];
    char broker_log[600];
    snprintf(broker_log, sizeof broker_log, "%s/mosquitto.log", g.broker.dir);
    int attacks = 0, refused = 0, honest = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t i = 0; i < n_ids; i++) {
            ota_test_client_t *c = ota_test_client_connect(
                g.broker.port, ids[i], g.attacker.username, g.attacker.password);
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
            ota_test_client_connect(g.broker.port, "victim", "victim", g.attacker.password);
        attacks++;
        refused += c == NULL;
        ota_test_client_disconnect(c);
        honest += honest_request(victim, round);
    }
    /* The attacker's own login still works: refusals are about the id, not the login. */
    ota_test_client_t *own = ota_test_client_connect(g.broker.port, g.attacker.client_id,
                                                     g.attacker.username, g.attacker.password);
    assert_non_null(own);
    ota_test_client_disconnect(own);
    print_line("client_id_takeover", attacks, refused, honest);
    assert_int_equal(refused, attacks);
    assert_int_equal(honest, ROUNDS);
    /* The victims never lost their connection: no session was taken over, and the
     * service connected once. */
    assert_true(ota_test_client_connected(victim));
    assert_int_equal(count_in_file(broker_log, "already connected"), 0);
    assert_int_equal(count_in_file(g.service_log, "connected to "), 1);
    assert_true(ota_test_proc_running(&g.service, NULL));
    ota_test_client_disconnect(victim);
}

/* Waits until a client has lost its connection; 1 when it has. */
static int dropped(ota_test_client_t *c)
{
    for (int i = 0; i < 300 && ota_test_client_connected(c); i++) {
        sleep_ms(10);
    }
    return !ota_test_client_connected(c);
}

/* A forged notice left retained on the device's own topic is refused, never replayed. */
static void test_retained_notice(void **state)
{
    (void)state;
    static const char forged[] = "{\"execution\":{\"jobId\":\"forged\",\"status\":\"QUEUED\"}}";
    static const char topic[] = "$aws/things/attacker/jobs/notify-next";
    int attacks = 0, refused = 0, honest = 0;
    for (int qos = 0; qos <= 2; qos++) {
        ota_test_client_t *c = ota_test_client_connect(g.broker.port, g.attacker.client_id,
                                                       g.attacker.username, g.attacker.password);
        assert_non_null(c);
        (void)ota_test_client_publish_retained(c, topic, forged, strlen(forged), qos, 1);
        attacks++;
        refused += dropped(c);
        ota_test_client_disconnect(c);
    }
    /* The device connects again, as at every boot: nothing is replayed to it. */
    ota_test_client_t *c = ota_test_client_connect(g.broker.port, g.attacker.client_id,
                                                   g.attacker.username, g.attacker.password);
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
    ota_test_client_t *victim = ota_test_client_connect(g.broker.port, g.victim.client_id,
                                                        g.victim.username, g.victim.password);
    assert_non_null(victim);
    assert_int_equal(ota_test_client_subscribe(victim, "$aws/things/victim/jobs/$next/get/+", 1),
                     1);
    honest += honest_request(victim, 0);
    ota_test_client_disconnect(victim);
    print_line("retained_notice", attacks, refused, honest);
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
    ota_test_client_t *victim = ota_test_client_connect(g.broker.port, g.victim.client_id,
                                                        g.victim.username, g.victim.password);
    assert_non_null(victim);
    assert_int_equal(ota_test_client_subscribe(victim, "$aws/things/victim/jobs/$next/get/+", 1),
                     1);
    int attacks = 0, refused = 0, honest = 0;
    for (int round = 0; round < ROUNDS; round++) {
        ota_test_client_t *c = ota_test_client_connect(g.broker.port, g.attacker.client_id,
                                                       g.attacker.username, g.attacker.password);
        assert_non_null(c);
        (void)ota_test_client_publish(c, "$aws/things/attacker/jobs/$next/get", payload, big, 0);
        attacks++;
        refused += dropped(c);
        ota_test_client_disconnect(c);
        honest += honest_request(victim, round);
    }
    free(payload);
    ota_test_client_disconnect(victim);
    print_line("oversized_packet", attacks, refused, honest);
    assert_int_equal(refused, attacks);
    assert_int_equal(honest, ROUNDS);
    assert_int_equal(count_in_file(g.service_log, "connected to "), 1);
}

/* A revoked device is cut off at once: its live session ends and its login is refused. */
static void test_revoke(void **state)
{
    (void)state;
    ota_test_client_t *victim = ota_test_client_connect(g.broker.port, g.victim.client_id,
                                                        g.victim.username, g.victim.password);
    assert_non_null(victim);
    assert_int_equal(ota_test_client_subscribe(victim, "$aws/things/victim/jobs/$next/get/+", 1),
                     1);
    ota_test_client_t *c = ota_test_client_connect(g.broker.port, g.attacker.client_id,
                                                   g.attacker.username, g.attacker.password);
    assert_non_null(c);
    static const char *const revoke[] = {"thing", "revoke", "attacker", NULL};
    char log[600];
    snprintf(log, sizeof log, "%s/otter-cli.log", g.broker.dir);
    assert_int_equal(ota_test_otter(g.broker.dir, revoke, log), 0);
    int attacks = 1, refused = dropped(c), honest = 0;
    ota_test_client_disconnect(c);
    for (int i = 0; i < ROUNDS; i++) {
        c = ota_test_client_connect(g.broker.port, g.attacker.client_id, g.attacker.username,
                                    g.attacker.password);
        attacks++;
        refused += c == NULL;
        ota_test_client_disconnect(c);
        honest += honest_request(victim, i);
    }
    ota_test_client_disconnect(victim);
    print_line("revoked_login", attacks, refused, honest);
    assert_int_equal(refused, attacks);
    assert_int_equal(honest, ROUNDS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_id_takeover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retained_notice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_packet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
