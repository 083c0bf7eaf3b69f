/*
 * otter CLI tests: the broker configuration `otter broker init` writes, run
 * by a real Mosquitto on a free 127.0.0.1 port. Devices reach only their own
 * jobs and streams topics; the service reaches everything; bad logins fail.
 * (Mutual TLS: test_security_tls.c.)
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

#include <cjson/cJSON.h>

#include "cli_test_util.h"
#include "ota_test_net.h"

/** How long a test waits for a message that must not come. */
#define SILENCE_MS 800
/** How long a test waits for a message that must come. */
#define ARRIVAL_MS 5000

static cli_run_t g_run;

/** The broker of one test and the logins `otter` made. */
struct world {
    int port;
    ota_test_proc_t broker;
    char service_pw[64], a_pw[64], b_pw[64];
};

static struct world g;

/* Reads the "password" of a credentials file. */
static void read_password(const char *path, char out[64])
{
    char *text = (char *)cli_test_read(path, NULL);
    assert_non_null(text);
    cJSON *o = cJSON_Parse(text);
    free(text);
    const cJSON *pw = cJSON_GetObjectItemCaseSensitive(o, "password");
    assert_true(cJSON_IsString(pw));
    snprintf(out, 64, "%s", pw->valuestring);
    cJSON_Delete(o);
}

/* broker init (with TLS), things A and B, then Mosquitto on the generated config. */
static int setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    if (cli_test_begin() != 0) {
        return -1;
    }
    g.port = ota_test_free_port();
    if (g.port <= 0) {
        return -1;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", g.port);
    if (cli_test_run(&g_run, "broker", "init", "--port", port, NULL) != 0 ||
        cli_test_run(&g_run, "thing", "create", "A", NULL) != 0 ||
        cli_test_run(&g_run, "thing", "create", "B", NULL) != 0) {
        fprintf(stderr, "setup: %s\n", g_run.err);
        return -1;
    }
    read_password(cli_test_path("data/broker/service.credentials"), g.service_pw);
    read_password(cli_test_path("data/things/A.json"), g.a_pw);
    read_password(cli_test_path("data/things/B.json"), g.b_pw);
    char conf[600];
    snprintf(conf, sizeof conf, "%s/broker/mosquitto.conf", cli_test_data());
    char *argv[] = {(char *)OTA_MOSQUITTO, (char *)"-c", conf, NULL};
    if (ota_test_proc_start(&g.broker, "mosquitto", argv, cli_test_path("mosquitto.log")) != 0 ||
        ota_test_wait_port(g.port, 5000) != 0) {
        ota_test_proc_stop(&g.broker);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ota_test_proc_stop(&g.broker);
    cli_test_end();
    return 0;
}

/* Connects a login: a thing with its own name as client id, the service with any. */
static ota_test_client_t *connect_as(const char *user, const char *pw)
{
    const char *id = strcmp(user, "otter-service") == 0 ? NULL : user;
    ota_test_client_t *c = ota_test_client_connect(g.port, id, user, pw);
    assert_non_null(c);
    return c;
}

/* Publishes text with QoS 1 and checks it was accepted by the broker. */
static void publish(ota_test_client_t *c, const char *topic, const char *text)
{
    assert_int_equal(ota_test_client_publish(c, topic, text, strlen(text), 1), 0);
}

/* Expects one message on topic with this payload. */
static void expect(ota_test_client_t *c, const char *topic, const char *text)
{
    ota_test_msg_t *m = ota_test_client_expect(c, topic, ARRIVAL_MS);
    if (m == NULL) {
        fail_msg("no message on %s", topic);
    }
    assert_string_equal(m->topic, topic);
    assert_string_equal((const char *)m->payload, text);
    ota_test_msg_free(m);
}

/* Expects no message at all within SILENCE_MS. */
static void expect_nothing(ota_test_client_t *c)
{
    ota_test_msg_t *m = ota_test_client_expect(c, NULL, SILENCE_MS);
    if (m != NULL) {
        fail_msg("unexpected message on %s: %s", m->topic, (const char *)m->payload);
    }
    assert_int_equal(ota_test_client_pending(c, NULL), 0);
}

/* A device publishes its requests and receives the service's answers. */
static void test_device_own_topics(void **state)
{
    (void)state;
    ota_test_client_t *svc = connect_as("otter-service", g.service_pw);
    ota_test_client_t *a = connect_as("A", g.a_pw);
    assert_true(ota_test_client_subscribe(svc, "$aws/things/+/jobs/#", 1) >= 0);
    assert_true(ota_test_client_subscribe(svc, "$aws/things/+/streams/#", 1) >= 0);
    assert_true(ota_test_client_subscribe(a, "$aws/things/A/jobs/notify-next", 1) >= 0);
    assert_true(ota_test_client_subscribe(a, "$aws/things/A/jobs/$next/get/accepted", 1) >= 0);
    assert_true(ota_test_client_subscribe(a, "$aws/things/A/jobs/j1/update/rejected", 1) >= 0);
    assert_true(ota_test_client_subscribe(a, "$aws/things/A/streams/s1/data/cbor", 1) >= 0);

    /* Device -> service: next-job request, status update, block request. */
    publish(a, "$aws/things/A/jobs/$next/get", "{\"clientToken\":\"1:A\"}");
    expect(svc, "$aws/things/A/jobs/$next/get", "{\"clientToken\":\"1:A\"}");
    publish(a, "$aws/things/A/jobs/j1/update", "{\"status\":\"IN_PROGRESS\"}");
    expect(svc, "$aws/things/A/jobs/j1/update", "{\"status\":\"IN_PROGRESS\"}");
    publish(a, "$aws/things/A/streams/s1/get/cbor", "block request");
    expect(svc, "$aws/things/A/streams/s1/get/cbor", "block request");

    /* Service -> device: answers, notifications, file blocks. */
    publish(svc, "$aws/things/A/jobs/$next/get/accepted", "accepted");
    expect(a, "$aws/things/A/jobs/$next/get/accepted", "accepted");
    publish(svc, "$aws/things/A/jobs/notify-next", "notify");
    expect(a, "$aws/things/A/jobs/notify-next", "notify");
    publish(svc, "$aws/things/A/jobs/j1/update/rejected", "rejected");
    expect(a, "$aws/things/A/jobs/j1/update/rejected", "rejected");
    publish(svc, "$aws/things/A/streams/s1/data/cbor", "block 0");
    expect(a, "$aws/things/A/streams/s1/data/cbor", "block 0");
    ota_test_client_disconnect(a);
    ota_test_client_disconnect(svc);
}

/* A receives nothing of B's and cannot publish as B. */
static void test_device_isolation(void **state)
{
    (void)state;
    ota_test_client_t *svc = connect_as("otter-service", g.service_pw);
    ota_test_client_t *a = connect_as("A", g.a_pw);
    ota_test_client_t *b = connect_as("B", g.b_pw);
    /* A tries every filter that would cover B's topics. */
    const char *filters[] = {"$aws/things/B/jobs/#",
                             "$aws/things/B/streams/#",
                             "$aws/things/+/jobs/#",
                             "$aws/things/+/streams/+/data/cbor",
                             "$aws/things/#",
                             "$aws/#",
                             "#"};
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        ota_test_client_subscribe(a, filters[i], 1); /* granted or refused: both fine */
    }
    assert_true(ota_test_client_subscribe(b, "$aws/things/B/jobs/#", 1) >= 0);
    assert_true(ota_test_client_subscribe(b, "$aws/things/B/streams/#", 1) >= 0);
    assert_true(ota_test_client_subscribe(svc, "$aws/things/B/#", 1) >= 0);

    /* The service publishes on B's topics: B gets them, A gets nothing. */
    const char *to_b[] = {"$aws/things/B/streams/s1/data/cbor", "$aws/things/B/jobs/notify-next",
                          "$aws/things/B/jobs/$next/get/accepted",
                          "$aws/things/B/jobs/j1/update/accepted"};
    for (size_t i = 0; i < sizeof to_b / sizeof to_b[0]; i++) {
        publish(svc, to_b[i], "for B only");
        expect(b, to_b[i], "for B only");
        expect(svc, to_b[i], "for B only");
    }
    expect_nothing(a);

    /* A publishes as B (status, block request, next job): nobody receives it. */
    publish(a, "$aws/things/B/jobs/j1/update", "{\"status\":\"SUCCEEDED\"}");
    ota_test_client_publish(a, "$aws/things/B/jobs/j1/update", "q0", 2, 0);
    publish(a, "$aws/things/B/streams/s1/get/cbor", "spoofed request");
    publish(a, "$aws/things/B/jobs/$next/get", "spoofed");
    expect_nothing(svc);
    expect_nothing(b);
    /* Nor outside the $aws tree (the service may not even subscribe there). */
    assert_int_equal(ota_test_client_subscribe(svc, "#", 1), -1);
    publish(a, "otter/anything", "outside");
    expect_nothing(svc);

    /* Control: the same service subscription does receive B's own update. */
    publish(b, "$aws/things/B/jobs/j1/update", "{\"status\":\"IN_PROGRESS\"}");
    expect(svc, "$aws/things/B/jobs/j1/update", "{\"status\":\"IN_PROGRESS\"}");
    expect(b, "$aws/things/B/jobs/j1/update", "{\"status\":\"IN_PROGRESS\"}"); /* its echo */
    /* ... and A's own traffic still flows (A was not disconnected for trying). */
    assert_true(ota_test_client_subscribe(svc, "$aws/things/A/#", 1) >= 0);
    publish(a, "$aws/things/A/jobs/j1/update", "mine");
    expect(svc, "$aws/things/A/jobs/j1/update", "mine");
    expect_nothing(b);
    ota_test_client_disconnect(a);
    ota_test_client_disconnect(b);
    ota_test_client_disconnect(svc);
}

/* Wrong, foreign, unknown and missing credentials are refused. */
static void test_bad_logins(void **state)
{
    (void)state;
    assert_null(ota_test_client_connect(g.port, "A", "A", "wrong password"));
    assert_null(ota_test_client_connect(g.port, "A", "A", g.b_pw));
    assert_null(ota_test_client_connect(g.port, "A", "A", ""));
    assert_null(ota_test_client_connect(g.port, "nobody", "nobody", g.a_pw));
    assert_null(ota_test_client_connect(g.port, NULL, NULL, NULL));
    assert_null(ota_test_client_connect(g.port, NULL, "otter-service", g.a_pw));
    assert_null(ota_test_client_connect(g.port, "otter-admin", "otter-admin", g.a_pw));
    /* The right ones work. */
    ota_test_client_t *a = connect_as("A", g.a_pw);
    ota_test_client_disconnect(a);
}

/* The service reads and writes every thing's topics, shared subscriptions too. */
static void test_service_everything(void **state)
{
    (void)state;
    ota_test_client_t *svc = connect_as("otter-service", g.service_pw);
    ota_test_client_t *a = connect_as("A", g.a_pw);
    ota_test_client_t *b = connect_as("B", g.b_pw);
    assert_true(ota_test_client_subscribe(svc, "$aws/things/#", 1) >= 0);
    /* A shared subscription (several service instances) is granted. */
    assert_true(ota_test_client_subscribe(svc, "$share/otter/$aws/things/+/jobs/+/update", 1) >= 0);
    assert_true(ota_test_client_subscribe(a, "$aws/things/A/jobs/#", 1) >= 0);
    assert_true(ota_test_client_subscribe(a, "$aws/things/A/streams/#", 1) >= 0);
    assert_true(ota_test_client_subscribe(b, "$aws/things/B/jobs/#", 1) >= 0);
    assert_true(ota_test_client_subscribe(b, "$aws/things/B/streams/#", 1) >= 0);
    publish(svc, "$aws/things/A/jobs/notify-next", "a");
    expect(a, "$aws/things/A/jobs/notify-next", "a");
    expect(svc, "$aws/things/A/jobs/notify-next", "a");
    publish(svc, "$aws/things/B/streams/s/description/cbor", "b");
    expect(b, "$aws/things/B/streams/s/description/cbor", "b");
    expect(svc, "$aws/things/B/streams/s/description/cbor", "b");
    /* Topics of a thing that does not exist yet. */
    publish(svc, "$aws/things/later/jobs/notify-next", "c");
    expect(svc, "$aws/things/later/jobs/notify-next", "c");
    publish(b, "$aws/things/B/jobs/j/update", "d");
    expect(svc, "$aws/things/B/jobs/j/update", "d");
    ota_test_client_disconnect(a);
    ota_test_client_disconnect(b);
    ota_test_client_disconnect(svc);
}

/* A thing created while the broker runs can log in at once (the CLI adds it
 * through the plugin's control topic, since the broker owns dynsec.json). */
static void test_reload_new_thing(void **state)
{
    (void)state;
    assert_int_equal(cli_test_run(&g_run, "thing", "create", "C", NULL), 0);
    assert_non_null(strstr(g_run.out, "broker:      running; it took the logins"));
    char pw[64];
    read_password(cli_test_path("data/things/C.json"), pw);
    ota_test_client_t *c = NULL;
    for (int i = 0; i < 50 && c == NULL; i++) {
        c = ota_test_client_connect(g.port, "C", "C", pw);
        if (c == NULL) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    assert_non_null(c);
    ota_test_client_t *svc = connect_as("otter-service", g.service_pw);
    assert_true(ota_test_client_subscribe(svc, "$aws/things/C/#", 1) >= 0);
    publish(c, "$aws/things/C/jobs/$next/get", "hi");
    expect(svc, "$aws/things/C/jobs/$next/get", "hi");
    ota_test_client_disconnect(c);
    ota_test_client_disconnect(svc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_device_own_topics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_logins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_new_thing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
