/*
 * otter-service's command line: --help documents every flag, bad arguments
 * exit 2, and a service that cannot reach its broker keeps retrying and still
 * stops cleanly (exit 0) on SIGTERM.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ota_test_net.h"

static char g_dir[64];
static char g_log[128];

static int run(const char *const *args)
{
    char *argv[32];
    size_t n = 0;
    ota_test_proc_t p;
    int status = -1;
    argv[n++] = (char *)OTA_TEST_SERVICE_BIN;
    for (size_t i = 0; args[i] != NULL && n < 31; i++) {
        argv[n++] = (char *)args[i];
    }
    argv[n] = NULL;
    assert_int_equal(ota_test_proc_start(&p, "otter-service", argv, g_log), 0);
    for (int i = 0; i < 1000 && ota_test_proc_running(&p, &status); i++) {
        usleep(10000);
    }
    if (p.pid > 0) {
        ota_test_proc_kill(&p);
        fail_msg("otter-service did not exit");
    }
    return status;
}

static void test_help(void **state)
{
    (void)state;
    static const char *const args[] = {"--help", NULL};
    assert_int_equal(run(args), 0);
    static const char *const flags[] = {"--data-dir", "--host",      "--port",      "--username",
                                        "--password", "--client-id", "--role",      "--share-group",
                                        "--shard",    "--cafile",    "--log-level", "--max-backlog",
                                        "--certfile", "--keyfile",   NULL};
    for (size_t i = 0; flags[i] != NULL; i++) {
        if (ota_test_log_wait(g_log, 0, flags[i], 0) != 0) {
            fail_msg("--help does not mention %s", flags[i]);
        }
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    static const char *const cases[][6] = {
        {"--port", "1883", NULL},
        {"--data-dir", "/tmp/x", "--port", "0", NULL},
        {"--data-dir", "/tmp/x", "--role", "bogus", NULL},
        {"--data-dir", "/tmp/x", "--shard", "2/2", NULL},
        {"--data-dir", "/tmp/x", "--share-group", "a/b", NULL},
        {"--data-dir", "/tmp/x", "--password", "p", NULL},
        {"--data-dir", "/tmp/x", "--frobnicate", "1", NULL},
        {"--data-dir", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(run(cases[i]), 2);
    }
}

static void test_sigterm_without_broker(void **state)
{
    (void)state;
    char data[96];
    char port[16];
    ota_test_proc_t p;
    snprintf(data, sizeof(data), "%s/data", g_dir);
    snprintf(port, sizeof(port), "%d", ota_test_free_port());
    /* Nothing listens on the port: the service retries until told to stop. */
    char *argv[] = {(char *)OTA_TEST_SERVICE_BIN, "--data-dir", data, "--port", port, NULL};
    assert_int_equal(ota_test_proc_start(&p, "otter-service", argv, g_log), 0);
    assert_int_equal(ota_test_log_wait(g_log, 0, "retrying", 5000), 0);
    assert_int_equal(ota_test_proc_stop(&p), 0);
    assert_int_equal(ota_test_log_wait(g_log, 0, "INFO stopped", 1000), 0);
}

/* --cafile, --certfile, --keyfile: the service connects with mutual TLS to the broker
 * `otter broker init --tls` sets up, with the certificate it issued for the service. */
static void test_tls_cafile(void **state)
{
    (void)state;
    char data[96];
    char port[16];
    ota_test_broker_t b;
    ota_test_proc_t p;
    ota_test_login_t login;

    /* The mutual-TLS broker `otter broker init --tls` sets up, and its service login. */
    static const char *const init_tls[] = {"--tls", NULL};
    assert_int_equal(ota_test_broker_start_with(&b, NULL, init_tls), 0);
    assert_int_equal(ota_test_service_login(&b, &login), 0);
    assert_string_equal(login.password, "");
    snprintf(data, sizeof(data), "%s/data", g_dir);
    snprintf(port, sizeof(port), "%d", b.port);
    /* The test support passes --cafile, --certfile and --keyfile from service.credentials. */
    static const char *const id[] = {"--client-id", "otter-service-tls", NULL};
    int rc = ota_test_service_start(&p, data, &b, id, g_log);
    if (rc != 0) {
        ota_test_proc_kill(&p);
        ota_test_broker_stop(&b);
        fail_msg("otter-service with --cafile did not become ready (see %s)", g_log);
    }
    assert_int_equal(ota_test_proc_stop(&p), 0);

    /* Without TLS, or with TLS but no client certificate, the same port gives nothing. */
    char *plain[] = {(char *)OTA_TEST_SERVICE_BIN, "--data-dir", data, "--port", port, NULL};
    char *no_cert[] = {(char *)OTA_TEST_SERVICE_BIN,
                       "--data-dir",
                       data,
                       "--port",
                       port,
                       "--cafile",
                       login.cafile,
                       NULL};
    char **refused[] = {plain, no_cert};
    for (size_t i = 0; i < 2; i++) {
        long from = ota_test_log_size(g_log);
        assert_int_equal(ota_test_proc_start(&p, "otter-service", refused[i], g_log), 0);
        assert_int_equal(ota_test_log_wait(g_log, from, OTA_TEST_SERVICE_READY, 1500), -1);
        assert_int_equal(ota_test_proc_stop(&p), 0);
    }
    ota_test_broker_stop(&b);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/otter-svc-cli-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_log, sizeof(g_log), "%s/out.log", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_sigterm_without_broker),
        cmocka_unit_test(test_tls_cafile),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
